#!/usr/bin/env bash
# shellcheck disable=SC2154 # PID_proxy: set by lib.sh's bg
# A refused reload frees only the listeners it opened, and never reads the
# state of the listeners the workers keep: the workers change it whenever an
# accept ends (here by running out of descriptors), and the main thread
# reading it was a data race (make SAN=thread reported it, with
# worker_reload_discard's read of `armed` against relay_on_accept's write).
# A refused reload, accepts that end for want of a descriptor, another refused
# reload: the VIP serves after each, and the proxy stops cleanly.
. "$(dirname "$0")/../lib.sh"
need nginx curl python3 prlimit

P=$(pick_port); V=$(pick_port); W=$(pick_port); X=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
config() { # [EXTRA-SECTION-LINES]
	cat <<-CFG
	[global]
	workers = 1
	max_connections = 1000
	[pool web]
	server = fe1 127.0.0.2:$P
	[vip web]
	listen = 127.0.0.1:$V
	pool = web
	[vip more]
	listen = 127.0.0.1:$W
	pool = web
	CFG
	printf '%b' "${1:-}"
}
config | sed '/^\[vip more\]/,$d' >"$T/p.ini"
proxy_start proxy "$T/p.ini"
logged() { grep -c "$1" "$T/proxy.log"; }
more_logged() { [ "$(logged "$1")" -gt "$2" ]; } # PATTERN COUNT
# reload WHAT-IT-LOGS [EXTRA]: config plus EXTRA, SIGHUP, until it is logged.
reload() {
	local before
	before=$(logged "$1")
	config "${2:-}" >"$T/p.ini"
	kill -HUP "$PID_proxy"
	wait_for 5 more_logged "$1" "$before"
	curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || fail "VIP web after a reload"
}
refused() { reload 'cannot listen on every address' "[vip elsewhere]\nlisten = 192.0.2.1:$X\npool = web\n"; }

# An accept request keeps the descriptor limit it was armed under: VIP
# more's, armed by a reload under a soft limit of 96, is the only one to run
# out when more descriptors are open.
info "VIP more added by a reload under a descriptor limit of 96"
limit=$(prlimit --pid "$PID_proxy" --nofile --noheadings --output SOFT)
prlimit --pid "$PID_proxy" --nofile=96: || fail "cannot lower the proxy's descriptor limit"
reload ' reloaded'
# Served: the accept request was submitted (its limit taken) meanwhile.
curl -fsS -m 5 "http://127.0.0.1:$W/" >/dev/null || fail "VIP more after the reload"
prlimit --pid "$PID_proxy" --nofile="$limit":

info "a refused reload"
refused

info "45 clients of VIP web take the descriptors below 96, then VIP more's accept ends with EMFILE"
python3 - "$V" "$W" "$T/release" >"$T/hold.out" 2>&1 <<-'PY' &
	import os, socket, sys, time
	def serve(port):  # keep-alive: the connection stays open once served
	    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
	    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
	    return s, b"fe1" in s.recv(4096)
	held = [serve(sys.argv[1]) for _ in range(45)] + [serve(sys.argv[2]) for _ in range(5)]
	print("served", sum(ok for _, ok in held), flush=True)
	while not os.path.exists(sys.argv[3]):
	    time.sleep(0.05)
PY
holder=$!
PIDS+=("$holder")
wait_for 20 grep -qE 'served|Error' "$T/hold.out"
grep -q 'out of file descriptors' "$T/proxy.log" || fail "no accept ran out of descriptors: the test proves nothing"
grep -qx 'served 50' "$T/hold.out" || fail "clients held while the accept was armed again: $(cat "$T/hold.out")"
touch "$T/release"
wait "$holder"
info "accepting paused for want of descriptors (logged $(grep -c 'out of file descriptors' "$T/proxy.log") time(s)); the 50 clients were all served"

info "a refused reload after the accept was armed again"
refused
proxy_stop proxy
pass "refused reloads around a descriptor shortage"
