#!/usr/bin/env bash
# tls = terminate: TLS ends at the VIP with the certificate the client's SNI
# names, sessions resume, close_notify is relayed as a half-close, and a
# client that fails its handshake is closed (counted, logged with the reason)
# without harming the others. The server is connected only once the client
# has finished its handshake and sent more (or stayed silent 2 ms, for
# servers that speak first), so failed and abandoned handshakes cost the
# servers nothing. A bad certificate path is a start error.
. "$(dirname "$0")/../lib.sh"
need nginx curl openssl
P=$(pick_port); Q=$(pick_port); E=$(pick_port); H=$(pick_port); G=$(pick_port); GV=$(pick_port)
tls_ca
tls_cert one pool01.lab.test
tls_cert two www.two.test rsa
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe2 127.0.0.3 "$P"
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo
wait_for 5 listening 127.0.0.2 "$E"
# A server that speaks first, as IMAP and SMTP servers do.
bg greeter python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.sendall(b"220 greeter ready\r\n"); c.close()
' "$G"
wait_for 5 listening 127.0.0.2 "$G"
cat >"$T/p.ini" <<CFG
[global]
workers = 2
[pool fes]
server = fe1 127.0.0.2:$P
server = fe2 127.0.0.3:$P
[vip web]
listen = 127.0.0.1:$Q
pool = fes
tls = terminate
tls_cert = one.pem
tls_key = one.key
tls_cert = two.pem
tls_key = two.key
timeout_connect = 1s
[pool greet]
server = g 127.0.0.2:$G
[vip greet]
listen = 127.0.0.1:$GV
pool = greet
tls = terminate
tls_cert = one.pem
tls_key = one.key
[pool echo]
server = e 127.0.0.2:$E
[vip echo]
listen = 127.0.0.1:$H
pool = echo
tls = terminate
tls_cert = one.pem
tls_key = one.key
CFG
"$SNATPROXY" -t -c "$T/p.ini" || fail "config refused"
proxy_start proxy "$T/p.ini"

get() { # NAME [curl options]: the answer through the VIP, its certificate checked for NAME
	local n=$1; shift
	curl -fsS --cacert "$T/ca.pem" --resolve "$n:$Q:127.0.0.1" "$@" "https://$n:$Q/"
}
subject() { # NAME: the certificate's subject the VIP presents to SNI NAME
	openssl s_client -connect "127.0.0.1:$Q" -servername "$1" </dev/null 2>/dev/null |
		openssl x509 -noout -subject
}

info "the certificate chosen by SNI, checked by curl; requests balanced 3 and 3"
for _ in 1 2 3 4; do get pool01.lab.test || echo failed; done >"$T/a"
for _ in 1 2; do get www.two.test || echo failed; done >>"$T/a"
sort "$T/a" | uniq -c
# Round robin over two servers of weight 1: the pool's first 6 connections
# alternate.
[ "$(grep -cx fe1 "$T/a")" -eq 3 ] && [ "$(grep -cx fe2 "$T/a")" -eq 3 ] ||
	fail "6 requests were not answered 3 by fe1 and 3 by fe2"
subject pool01.lab.test | grep -q "CN = pool01.lab.test" || fail "wrong certificate for pool01.lab.test"
subject www.two.test | grep -q "CN = www.two.test" || fail "wrong certificate for www.two.test"
subject other.test | grep -q "CN = pool01.lab.test" || fail "unknown SNI did not get the first certificate"
get pool01.lab.test --tlsv1.2 --tls-max 1.2 >/dev/null || fail "TLS 1.2 refused"
wait_for 5 grep -qE 'conn vip=web .* end=[a-z-]+ tls=TLSv1.3 cipher=TLS_[A-Z0-9_]+ sni=pool01.lab.test' "$T/proxy.log"
# The line is written when the connection ends, after curl has its answer.
wait_for 5 grep -qE 'tls=TLSv1.2 cipher=ECDHE-' "$T/proxy.log"

info "a large download through the TLS layer"
head -c 3000000 /dev/urandom >"$T/nginx-fe1/html/big"
cp "$T/nginx-fe1/html/big" "$T/nginx-fe2/html/big"
curl -fsS --cacert "$T/ca.pem" --resolve "pool01.lab.test:$Q:127.0.0.1" \
	"https://pool01.lab.test:$Q/big" -o "$T/big.out" || fail "download"
cmp -s "$T/big.out" "$T/nginx-fe1/html/big" || fail "download corrupted"

info "resumption: s_client -sess_out, then -sess_in reports Reused"
# A request whose answer is awaited (-ign_eof): TLS 1.3 tickets come after
# the handshake, and s_client must still be reading when they do.
req() { printf 'GET / HTTP/1.0\r\nHost: x\r\n\r\n'; }
for v in -tls1_2 -tls1_3; do
	req | openssl s_client -ign_eof -connect "127.0.0.1:$Q" -servername pool01.lab.test $v \
		-sess_out "$T/sess$v" -CAfile "$T/ca.pem" >"$T/s1$v" 2>&1
	[ -s "$T/sess$v" ] || { cat "$T/s1$v"; fail "no session saved ($v)"; }
	req | openssl s_client -ign_eof -connect "127.0.0.1:$Q" -servername pool01.lab.test $v \
		-sess_in "$T/sess$v" -CAfile "$T/ca.pem" >"$T/s2$v" 2>&1
	grep -q "^Reused" "$T/s2$v" || { cat "$T/s2$v"; fail "session not reused ($v)"; }
done

info "close_notify from the client is relayed as a half-close"
# A client that sends 600 KB, then its close_notify, and reads on: the echo
# server gets a FIN only if the proxy relays the close_notify as a
# half-close, and only then ends its echo; the whole echo must come back
# after the close_notify, then the proxy's own close_notify (a clean EOF).
python3 - "$H" "$T/ca.pem" >"$T/hc" 2>&1 <<'PY' || { cat "$T/hc"; fail "the half-close was not relayed"; }
import select, socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
N = 600000
data = bytes((i * 7 + i // 251) & 0xff for i in range(N))
ctx = ssl.create_default_context(cafile=ca)
inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inb, outb, server_hostname="pool01.lab.test")
sock = socket.create_connection(("127.0.0.1", port))
sock.setblocking(False)
pending, got, wrote, notified, eof = b"", bytearray(), 0, None, None
deadline = time.monotonic() + 20
handshaken = False
while eof is None:
    if time.monotonic() > deadline:
        sys.exit(f"timeout: {len(got)} of {N} bytes echoed, close_notify sent: {notified is not None}")
    if not handshaken:
        try:
            tls.do_handshake()
            handshaken = True
        except ssl.SSLWantReadError:
            pass
    if handshaken and wrote < N and outb.pending < 65536:
        wrote += tls.write(data[wrote:wrote + 16384])
    if handshaken and wrote == N and notified is None:
        try:
            tls.unwrap()  # queues our close_notify; the peer's comes later
        except ssl.SSLWantReadError:
            pass
        notified = len(got)
    pending += outb.read()
    r, w, _ = select.select([sock], [sock] if pending else [], [], 0.2)
    if w:
        pending = pending[sock.send(pending):]
    if r:
        chunk = sock.recv(65536)
        if chunk:
            inb.write(chunk)
        else:
            inb.write_eof()
    while handshaken:
        try:
            got += tls.read(65536)
        except ssl.SSLWantReadError:
            break
        except ssl.SSLZeroReturnError:
            eof = "close_notify"
            break
        except ssl.SSLEOFError:
            eof = "TCP EOF without close_notify"
            break
print(f"{len(got)} bytes echoed, {len(got) - notified} of them after our close_notify; ended by {eof}")
if bytes(got) != data:
    sys.exit(f"the echo differs: {len(got)} bytes of {N}")
if len(got) == notified:
    sys.exit("every byte came back before our close_notify: the half-close was not exercised")
if eof != "close_notify":
    sys.exit(f"the stream ended by {eof}")
PY
cat "$T/hc"
wait_for 5 grep -qE 'conn vip=echo .*end=client-closed' "$T/proxy.log"
# The client's connection as on the wire: the 600000 bytes in TLS records,
# after the server's handshake messages.
tc=$(grep -m1 -oE 'conn vip=echo .* to_client=[0-9]+ .*end=client-closed' "$T/proxy.log" |
	sed -E 's/.* to_client=([0-9]+) .*/\1/')
[ "$tc" -gt 601000 ] || fail "to_client=$tc: not the 600000 bytes as TLS records"

info "a garbage client and a truncated handshake are closed; others go on"
exec 3<>"/dev/tcp/127.0.0.1/$Q"
(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3) 2>/dev/null
rc=0; timeout 5 cat <&3 >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 124 ] || fail "garbage client not closed"
exec 3<&-
wait_for 5 grep -qE 'end=tls-handshake-failed tls=- sni=- tls_error="[^"]+"' "$T/proxy.log"
grep -q 'TLS handshake with the client failed' "$T/proxy.log" || fail "failure not logged"
exec 3<>"/dev/tcp/127.0.0.1/$Q"
(printf '\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03' >&3) 2>/dev/null
get www.two.test >/dev/null || fail "a half-open handshake blocked another client"
exec 3<&-

info "a failed or abandoned handshake opens no server connection"
# The server is chosen and connected once the client's handshake is done:
# before, each of these opened a connection to fe1 or fe2 (server=fe1/...).
for _ in 1 2 3 4 5; do
	openssl s_client -connect "127.0.0.1:$Q" -servername pool01.lab.test -tls1_2 \
		-cipher aNULL </dev/null >/dev/null 2>&1 && fail "a handshake with no common cipher passed"
	exec 3<>"/dev/tcp/127.0.0.1/$Q"
	exec 3<&-
done
wait_for 10 lines_at_least 11 "$T/proxy.log" 'conn vip=web .*end=tls-handshake-failed'
grep 'conn vip=web .*end=tls-handshake-failed' "$T/proxy.log" | grep -v ' server=-/- ' &&
	fail "a failed handshake was given a server"

info "a client that finishes its handshake and goes opens no server connection"
# s_time resets each connection right after its handshake: before, each
# opened a connection to a server. The wait for the client's next bytes is
# 2 ms, so a loaded machine may connect some (a client descheduled for
# longer); before, every one connected. A quarter at least must not.
n0=$(grep -c 'conn vip=web ' "$T/proxy.log")
openssl s_time -connect "127.0.0.1:$Q" -new -time 1 >"$T/s_time" 2>&1 || { cat "$T/s_time"; fail "s_time"; }
hs=$(awk '/connections in [0-9.]+ real/ {print $1}' "$T/s_time")
[ "${hs:-0}" -ge 20 ] || { cat "$T/s_time"; fail "s_time made ${hs:-no} handshakes"; }
wait_for 5 eval '[ "$(($(grep -c "conn vip=web " "$T/proxy.log") - n0))" -ge "$hs" ]'
none=$(tail -n +"$((n0 + 1))" "$T/proxy.log" | grep 'conn vip=web ' | grep -c ' server=-/- .*end=client-')
echo "$hs handshakes, $none ended without a server connection"
[ "$((none * 4))" -ge "$hs" ] || fail "only $none of $hs abandoned handshakes went without a server connection"
info "a server that speaks first is connected without waiting for the client"
python3 - "$GV" <<'PY' || fail "no greeting through the TLS VIP"
import socket, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t0 = time.monotonic()
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname="pool01.lab.test") as s:
        line = s.recv(100)
print("greeting %r after %.1f ms" % (line, (time.monotonic() - t0) * 1000))
sys.exit(0 if line.startswith(b"220 greeter") else 1)
PY

info "a silent client is closed after timeout_connect, others go on"
exec 3<>"/dev/tcp/127.0.0.1/$Q"
get pool01.lab.test >/dev/null || fail "a silent client blocked another"
wait_for 5 grep -q 'conn vip=web .*end=tls-handshake-timeout' "$T/proxy.log"
rc=0; timeout 3 cat <&3 >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 124 ] || fail "the silent client's connection was not closed"
exec 3<&-
proxy_stop proxy

info "tls_client_ca: a client without a certificate fails its handshake, one with it passes"
tls_cert client client.lab.test
R=$(pick_port)
cat >>"$T/p.ini" <<CFG
[vip mtls]
listen = 127.0.0.1:$R
pool = fes
tls = terminate
tls_cert = one.pem
tls_key = one.key
tls_client_ca = ca.pem
CFG
proxy_start proxy2 "$T/p.ini"
curl -fsS --cacert "$T/ca.pem" --resolve "pool01.lab.test:$R:127.0.0.1" \
	"https://pool01.lab.test:$R/" >/dev/null 2>&1 && fail "a client without certificate got through"
curl -fsS --cacert "$T/ca.pem" --resolve "pool01.lab.test:$R:127.0.0.1" --cert "$T/client.pem" \
	--key "$T/client.key" "https://pool01.lab.test:$R/" | grep -qE '^fe[12]$' ||
	fail "a client with a certificate was refused"
wait_for 5 grep -q 'conn vip=mtls .*end=tls-handshake-failed .*tls_error=' "$T/proxy2.log"
proxy_stop proxy2

info "a bad certificate path and a key that does not match: start errors with FILE:LINE"
sed 's/^tls_cert = two.pem/tls_cert = missing.pem/' "$T/p.ini" >"$T/bad1.ini"
rc=0; "$SNATPROXY" -c "$T/bad1.ini" 2>"$T/bad1.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "bad1.ini:12: vip web: certificate $T/missing.pem: No such file or directory" "$T/bad1.err" ||
	{ cat "$T/bad1.err"; fail "missing certificate not reported"; }
sed 's/^tls_key = two.key/tls_key = one.key/' "$T/p.ini" >"$T/bad2.ini"
rc=0; "$SNATPROXY" -t -c "$T/bad2.ini" 2>"$T/bad2.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "bad2.ini:12: vip web: key $T/one.key does not match certificate $T/two.pem" "$T/bad2.err" ||
	{ cat "$T/bad2.err"; fail "mismatched key not reported"; }
pass "termination, SNI certificates, resumption, half-close, bad clients, bad files"
