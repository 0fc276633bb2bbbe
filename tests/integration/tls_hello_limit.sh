#!/usr/bin/env bash
# tls = route near the 16 KiB limit of a ClientHello: a hello that fits in
# 16,384 bytes of records is routed by its SNI and reaches the server byte for
# byte (an echo server returns it); records totalling 16,384 bytes that
# announce a longer hello (issue 10: a 16,375-byte handshake body) are refused
# at once with end=bad-hello:EMSGSIZE, not held until timeout_connect.
. "$(dirname "$0")/../lib.sh"
need python3
E=$(pick_port); Q=$(pick_port)
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo --peers
wait_for 5 listening 127.0.0.2 "$E"
cat >"$T/p.ini" <<CFG
[global]
workers = 1
[pool echo]
server = e1 127.0.0.2:$E
[pool other]
server = e2 127.0.0.3:$E
[vip route]
listen = 127.0.0.1:$Q
pool = other
tls = route
route = pool01.lab.test echo
timeout_connect = 3s
CFG
proxy_start proxy "$T/p.ini"

# hello.py BODY RECORD SENT: a ClientHello for pool01.lab.test whose
# handshake body announces BODY bytes (padded with RFC 7685 padding), cut
# into records of RECORD payload bytes; only its first SENT payload bytes
# are sent. Prints "closed SECONDS" when the proxy closes first, or "echo OK"
# when the echo server returned every byte sent.
hello() {
	python3 - "$Q" "$@" <<'PY'
import socket, sys, time
port, body, record, sent = (int(x) for x in sys.argv[1:5])
name = b"pool01.lab.test"
sni = (0).to_bytes(2, "big") + (len(name) + 5).to_bytes(2, "big") + \
      (len(name) + 3).to_bytes(2, "big") + b"\0" + len(name).to_bytes(2, "big") + name
fixed = 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + len(sni) + 4
pad = body - fixed
exts = sni + (21).to_bytes(2, "big") + pad.to_bytes(2, "big") + bytes(pad)
hs = b"\x03\x03" + bytes(32) + b"\0" + b"\x00\x02\x13\x01" + b"\x01\x00" + \
     len(exts).to_bytes(2, "big") + exts
msg = (b"\x01" + len(hs).to_bytes(3, "big") + hs)[:sent]
wire = b"".join(b"\x16\x03\x01" + len(msg[i:i + record]).to_bytes(2, "big") + msg[i:i + record]
                for i in range(0, len(msg), record))
s = socket.create_connection(("127.0.0.1", port), timeout=10)
t0 = time.monotonic()
got = b""
try:
    s.sendall(wire)
except (BrokenPipeError, ConnectionResetError):
    pass  # refused before the last byte: recv says so
while len(got) < len(wire):
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        chunk = b""
    if not chunk:
        print("closed %.3f after %d bytes sent, %d received" % (time.monotonic() - t0, len(wire), len(got)))
        sys.exit(0)
    got += chunk
print("echo OK %d bytes" % len(wire) if got == wire else "echo differs")
PY
}

info "a hello of exactly 16384 bytes of records is routed and echoed byte for byte"
out=$(hello 16375 16379 16379)
echo "$out"
[ "$out" = "echo OK 16384 bytes" ] || fail "one record of 16384 bytes: $out"
out=$(hello 16370 16000 16374)
echo "$out"
[ "$out" = "echo OK 16384 bytes" ] || fail "two records totalling 16384 bytes: $out"
wait_for 5 grep -q 'conn vip=route .*server=e1/.* sni=pool01.lab.test$' "$T/proxy.log"

info "records totalling 16384 bytes announcing a longer hello: refused at once"
out=$(hello 16375 16000 16374)
echo "$out"
case $out in
closed*) ;;
*) fail "not closed: $out" ;;
esac
secs=$(echo "$out" | awk '{print $2}')
awk -v s="$secs" 'BEGIN {exit !(s < 2.0)}' ||
	fail "closed after ${secs}s: waited for the rest (timeout_connect is 3s)"
wait_for 5 grep -q 'conn vip=route .* end=bad-hello:EMSGSIZE' "$T/proxy.log"
grep -q 'end=hello-timeout' "$T/proxy.log" && fail "a hello timed out: $(grep hello-timeout "$T/proxy.log")"

info "one byte too many for two records, sent whole: refused at once"
out=$(hello 16371 16000 16375)
echo "$out"
case $out in
closed*) ;;
*) fail "not closed: $out" ;;
esac
awk -v s="$(echo "$out" | awk '{print $2}')" 'BEGIN {exit !(s < 2.0)}' || fail "closed late: $out"
[ "$(grep -c 'end=bad-hello:EMSGSIZE' "$T/proxy.log")" -ge 2 ] || fail "second refusal not logged"
proxy_stop proxy
pass "ClientHello at the 16 KiB limit: fits and parses, or is refused at once"
