#!/usr/bin/env bash
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh (bg)
# tls = route across reloads: a connection accepted before a reload whose
# ClientHello comes after it is routed in its own generation, the one it was
# accepted in. The reload lists the pools in the other order (a route's pool
# is an index into its own configuration's pools), and a second reload
# frees the generation in between while the connection is still open: its
# server must not be of that freed generation (ASan sees any use of it).
. "$(dirname "$0")/../lib.sh"
need nginx python3 openssl
P=$(pick_port); Q=$(pick_port)
tls_ca
tls_cert one pool01.lab.test
tls_cert two www.two.test
nginx_tls_start fe1 127.0.0.2 "$P" one
nginx_tls_start fe2 127.0.0.3 "$P" two
config() { # FIRST SECOND: the two pools, in this order
	{
		printf '[global]\nworkers = 1\n'
		for p in "$@"; do
			case $p in
			ones) printf '[pool ones]\nserver = fe1 127.0.0.2:%s\n' "$P" ;;
			twos) printf '[pool twos]\nserver = fe2 127.0.0.3:%s\n' "$P" ;;
			esac
		done
		printf '[vip route]\nlisten = 127.0.0.1:%s\npool = ones\ntls = route\n' "$Q"
		printf 'route = pool01.lab.test ones\nroute = *.two.test twos\ntimeout_connect = 20s\n'
	} >"$T/p.ini"
}
reloads() { grep -c 'SIGHUP: .* reloaded' "$T/proxy.log"; }
freed() { grep -c 'a configuration replaced by SIGHUP has no connection left: freed' "$T/proxy.log"; }

config ones twos
bg proxy "$SNATPROXY" -v -c "$T/p.ini"
wait_for 10 grep -q "worker(s)" "$T/proxy.log"

# The client: connects, waits for $T/go1, then sends its hello and a
# request (SNI pool01.lab.test, certificate checked), waits for $T/go2 and
# sends a second request on the same connection.
python3 - "$Q" "$T" >"$T/client.out" 2>&1 <<'PY' &
import os, socket, ssl, sys, time
port, t = int(sys.argv[1]), sys.argv[2]
def wait(name):
    end = time.monotonic() + 20
    while not os.path.exists(os.path.join(t, name)):
        if time.monotonic() > end:
            sys.exit("no " + name)
        time.sleep(0.02)
def get(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: pool01.lab.test\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print("answer", data.split(b"\r\n\r\n", 1)[-1].decode().strip(), flush=True)
raw = socket.create_connection(("127.0.0.1", port))
print("connected", flush=True)
wait("go1")
ctx = ssl.create_default_context(cafile=os.path.join(t, "ca.pem"))
s = ctx.wrap_socket(raw, server_hostname="pool01.lab.test")
get(s)
wait("go2")
get(s)
s.close()
PY
client=$!
PIDS+=("$client")
wait_for 5 grep -q connected "$T/client.out"
sleep 0.3 # accepted: waiting for its hello

info "reload with the pools the other way round, then the hello"
config twos ones
kill -HUP "$PID_proxy"
wait_for 5 eval '[ "$(reloads)" -ge 1 ]'
touch "$T/go1"
answered_or_gone() { grep -q '^answer' "$T/client.out" || ! kill -0 "$client" 2>/dev/null; }
wait_for 5 answered_or_gone
grep -qx 'answer fe1' "$T/client.out" ||
	fail "the hello after a reload was routed elsewhere: $(tail -n 1 "$T/client.out"); $(grep 'conn vip=route' "$T/proxy.log")"

info "another reload frees the generation in between; the connection goes on"
config ones twos
kill -HUP "$PID_proxy"
wait_for 5 eval '[ "$(reloads)" -ge 2 ]'
wait_for 5 eval '[ "$(freed)" -ge 1 ]'
touch "$T/go2"
rc=0; wait "$client" || rc=$?
[ "$rc" -eq 0 ] || fail "client: $(cat "$T/client.out")"
[ "$(grep -c '^answer fe1$' "$T/client.out")" -eq 2 ] || fail "second request: $(cat "$T/client.out")"
wait_for 5 grep -q 'conn vip=route .*server=fe1/.* sni=pool01.lab.test$' "$T/proxy.log"
grep -E 'WARN|ERROR|AddressSanitizer' "$T/proxy.log" && fail "warnings or errors"
proxy_stop proxy
pass "a hello after reloads is routed in its connection's own generation"
