#!/usr/bin/env bash
# The admin endpoint under hostile load (issue 10), in a network namespace of
# its own: idle connections from one address get 503 beyond a few and are
# closed within about a second, while a scrape from another address gets 200
# at once; a request with bare LF line ends gets 400 at once (not a 408 after
# the timeout); with admin_token_file, a POST needs the bearer token (401
# without it or with a wrong one), and so does a GET when the admin address is
# not on loopback; a reload reads the token file again; -t warns about an admin address off loopback without a
# token, and reports a bad token file at FILE:LINE.
. "$(dirname "$0")/../lib.sh"
need python3 curl ip
in_netns "$0"
ip addr add 198.18.0.1/32 dev lo || fail "cannot add 198.18.0.1 in the namespace"

P=$(pick_port); V=$(pick_port); ADM=$(pick_port); ADM2=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
TOKEN=Zm9vYmFyLXRva2VuLTAxMjM0NTY3ODk=
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"
config() { # ADMIN_ADDR [TOKEN_LINE]
	cat <<CFG
[global]
workers = 1
admin = $1
$2
drain_delay = 0
[pool web]
server = fe1 127.0.0.2:$P
[vip web]
listen = 127.0.0.1:$V
pool = web
CFG
}
config "127.0.0.1:$ADM" "admin_token_file = token" >"$T/p.ini"
"$SNATPROXY" -t -c "$T/p.ini" >"$T/t.out" 2>&1 || fail "config refused: $(cat "$T/t.out")"
grep -q warning "$T/t.out" && fail "-t warned about a loopback admin with a token: $(cat "$T/t.out")"
proxy_start proxy "$T/p.ini"
wait_for 5 listening 127.0.0.1 "$ADM"

# client.py: raw admin clients.
#   raw ADDR PORT BYTES: sends BYTES (Python escapes), prints the status
#     line's code and the seconds until the endpoint closed.
#   idle ADDR PORT N SRC: N connections from SRC that send nothing; says
#     "connected" on stderr once all are, then prints each one's status
#     code (or "-" for none) and when it was closed.
cat >"$T/client.py" <<'PY'
import socket, sys, time, threading
def session(addr, port, data, src=None, out=None, connected=None):
    t0 = time.monotonic()
    s = socket.socket()
    s.settimeout(10)
    if src:
        s.bind((src, 0))
    s.connect((addr, port))
    if connected:
        connected.release()
    if data:
        s.sendall(data)
    got = b""
    try:
        while True:
            c = s.recv(4096)
            if not c:
                break
            got += c
    except (ConnectionResetError, socket.timeout):
        pass
    dt = time.monotonic() - t0
    code = got.split(b" ", 2)[1].decode() if got.startswith(b"HTTP/1.1 ") else "-"
    line = "%s %.3f" % (code, dt)
    if out is None:
        print(line)
    else:
        out.append(line)
if sys.argv[1] == "raw":
    session(sys.argv[2], int(sys.argv[3]), sys.argv[4].encode().decode("unicode_escape").encode("latin-1"))
else:
    out, threads, connected = [], [], threading.Semaphore(0)
    for _ in range(int(sys.argv[4])):
        t = threading.Thread(target=session, args=(sys.argv[2], int(sys.argv[3]), b"", sys.argv[5], out, connected))
        t.start()
        threads.append(t)
        connected.acquire()
    print("connected", file=sys.stderr, flush=True)
    for t in threads:
        t.join()
    print("\n".join(sorted(out)))
PY
raw() { python3 "$T/client.py" raw "$@"; }
# within LIMIT SECONDS: is SECONDS below LIMIT?
within() { awk -v l="$1" -v s="$2" 'BEGIN {exit !(s < l)}'; }
# scrape SRC [CURL-ARGS]: GET /metrics from source address SRC; prints "CODE SECONDS".
scrape() {
	local src=$1; shift
	curl -sS -m 5 -o /dev/null -w '%{http_code} %{time_total}\n' --interface "$src" "$@" \
		"http://127.0.0.1:$ADM/metrics"
}

info "20 idle connections from 127.0.0.1; scrapes from 127.0.0.2 and 127.0.0.3 get 200 at once"
python3 "$T/client.py" idle 127.0.0.1 "$ADM" 20 127.0.0.1 >"$T/idle.out" 2>"$T/idle.err" &
idle=$!
PIDS+=("$idle")
wait_for 5 grep -q connected "$T/idle.err"
sleep 0.2 # for the endpoint to take them in
for src in 127.0.0.2 127.0.0.3; do
	read -r code secs < <(scrape "$src")
	echo "scrape from $src: $code in ${secs}s"
	[ "$code" = 200 ] || fail "a scrape from $src got $code while 127.0.0.1 held idle connections"
	within 0.9 "$secs" || fail "the scrape from $src took ${secs}s"
done
wait "$idle"
sort "$T/idle.out" | uniq -c | awk '{print "  " $0}' | head -5
[ "$(grep -c '^503 ' "$T/idle.out")" -eq 16 ] || fail "expected 16 of 20 idle connections refused with 503: $(cat "$T/idle.out")"
awk '$1 == 503 && $2 >= 0.9 {exit 1}' "$T/idle.out" || fail "a 503 was not at once: $(cat "$T/idle.out")"
[ "$(grep -c '^408 ' "$T/idle.out")" -eq 4 ] || fail "expected 4 idle connections timed out with 408: $(cat "$T/idle.out")"
awk '$1 == 408 && ($2 < 0.9 || $2 > 2.0) {exit 1}' "$T/idle.out" ||
	fail "idle connections were not closed about 1s after they opened: $(cat "$T/idle.out")"
grep -q 'refused 127.0.0.1:[0-9]*: too many admin connections from this address' "$T/proxy.log" ||
	fail "the refusals were not logged"

info "bare LF line ends: 400 at once"
for req in 'GET /metrics HTTP/1.1\nHost: x\n\n' 'GET /metrics HTTP/1.1\r\nHost: x\n\r\n'; do
	read -r code secs < <(raw 127.0.0.1 "$ADM" "$req")
	echo "$req: $code in ${secs}s"
	[ "$code" = 400 ] || fail "bare LF request got $code"
	within 0.9 "$secs" || fail "the 400 for bare LF took ${secs}s"
done

info "admin_token_file: POST needs the token, GET on loopback does not"
A="http://127.0.0.1:$ADM"
post() { curl -sS -m 5 -o "$T/body" -D "$T/head" -w '%{http_code}' -X POST "$@" "$A/pools/web/servers/fe1/enable"; }
[ "$(post)" = 401 ] || fail "POST without a token got $(cat "$T/head")"
grep -qi '^WWW-Authenticate: Bearer' "$T/head" || fail "401 without WWW-Authenticate"
grep -q 'needs a token' "$T/body" || fail "401 body: $(cat "$T/body")"
[ "$(post -H "Authorization: Bearer wrong-$TOKEN")" = 401 ] || fail "POST with a wrong token was taken"
[ "$(post -H "Authorization: Basic $TOKEN")" = 401 ] || fail "POST with Basic was taken"
[ "$(post -H "Authorization: Bearer ${TOKEN%?}")" = 401 ] || fail "POST with a token prefix was taken"
[ "$(post -H "Authorization: Bearer $TOKEN")" = 200 ] || fail "POST with the token: $(cat "$T/head" "$T/body")"
grep -qx 'pool web server fe1: enable, now up' "$T/body" || fail "POST answer: $(cat "$T/body")"
[ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$A/stats")" = 200 ] || fail "GET on loopback needed a token"
grep -q "admin 127.0.0.1:[0-9]*: 401 POST /pools/web/servers/fe1/enable: no token" "$T/proxy.log" ||
	fail "the 401 was not logged"

info "a reload reads the token file again"
printf '%s\n' "new-$TOKEN" >"$T/token"
# shellcheck disable=SC2154 # PID_proxy is set by lib.sh's bg
kill -HUP "$PID_proxy"
wait_for 5 grep -q "SIGHUP: $T/p.ini reloaded" "$T/proxy.log"
# The endpoint takes the new generation at its next turn (250 ms, later on
# a loaded machine).
new_token_works() { [ "$(post -H "Authorization: Bearer new-$TOKEN")" = 200 ]; }
wait_for 5 new_token_works
[ "$(post -H "Authorization: Bearer $TOKEN")" = 401 ] || fail "the old token still works after a reload"
TOKEN=new-$TOKEN
proxy_stop proxy

info "admin on 198.18.0.1 (not loopback): GET needs the token too"
config "198.18.0.1:$ADM2" "admin_token_file = $T/token" >"$T/q.ini"
proxy_start proxy2 "$T/q.ini"
wait_for 5 listening 198.18.0.1 "$ADM2"
B="http://198.18.0.1:$ADM2"
[ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "$B/metrics")" = 401 ] || fail "GET off loopback without a token"
[ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -I "$B/metrics")" = 401 ] || fail "HEAD off loopback without a token"
[ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$B/metrics")" = 200 ] ||
	fail "GET off loopback with the token"
[ "$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
	"$B/pools/web/servers/fe1/drain")" = 200 ] || fail "POST off loopback with the token"
proxy_stop proxy2

info "-t: a warning for an admin off loopback without a token; token file errors at FILE:LINE"
config "0.0.0.0:$ADM2" "" >"$T/r.ini"
"$SNATPROXY" -t -c "$T/r.ini" >"$T/r.out" 2>&1 || fail "-t refused: $(cat "$T/r.out")"
grep -qx "$T/r.ini:3: warning: admin 0.0.0.0:$ADM2 is not on loopback and has no admin_token_file: anyone who reaches it can read the status and drain or disable servers" "$T/r.out" ||
	fail "no warning from -t: $(cat "$T/r.out")"
proxy_start proxy3 "$T/r.ini"
grep -q "warning: admin 0.0.0.0:$ADM2 is not on loopback" "$T/proxy3.log" || fail "no warning at start"
proxy_stop proxy3
config "127.0.0.1:$ADM2" "admin_token_file = missing" >"$T/s.ini"
"$SNATPROXY" -t -c "$T/s.ini" >"$T/s.out" 2>&1 && fail "-t took a missing token file"
grep -qx "$T/s.ini:4: admin_token_file $T/missing: No such file or directory" "$T/s.out" ||
	fail "-t did not name the token file's line: $(cat "$T/s.out")"
pass "admin endpoint: per-address limit, short timeouts, bare LF, bearer token"
