#!/usr/bin/env bash
# Out of descriptors, nobody is dropped: with an open-file limit of 256 and
# 1,000 clients at once, the proxy stops accepting (the clients wait in the
# kernel's backlog), serves them as descriptors come back, resets nobody,
# logs a handful of lines and does not spin. Once with max_connections =
# auto (derived from the limit: accepts near it take one connection at a
# time, so descriptors never run out; before, a multishot accept overshot
# and about 1 in 10 clients was reset in the sanitizer build; and a worker
# that closed connections lowered the shared count before its closes were
# submitted, so on a loaded machine the other one accepted into descriptors
# not yet free), once with a max_connections the limit
# cannot hold (then server sockets run out too and connections wait), and
# once with all 1,000 already in the backlog when the proxy accepts: one
# accept then takes every descriptor before any server socket is opened.
# Without the workers' spare descriptors every such connection waited for
# one that only another's end would free, and none ever got one; with them
# the first few go on and each end frees two, so all are served, the last
# after a few seconds (timeout_connect, which bounds that wait, is 30 s,
# far more than a loaded machine needs).
. "$(dirname "$0")/../lib.sh"
need python3 prlimit curl
ulimit -n 4096 2>/dev/null || skip "needs 4096 open files for the clients (ulimit -Hn is $(ulimit -Hn))"

E=$(pick_port); A=$(pick_port); V=$(pick_port)
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo
wait_for 5 listening 127.0.0.2 "$E"

# clients N HOLD: N clients at once, each sends 4 bytes, expects them back,
# holds the connection HOLD seconds, closes. Prints "ok=N reset=N timeout=N".
clients() {
	python3 - "$1" "$2" "127.0.0.1" "$V" <<-'PY'
	import asyncio, sys
	n, hold, host, port = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
	res = {"ok": 0, "reset": 0, "timeout": 0}
	async def one():
	    try:
	        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
	        w.write(b"ping")
	        await w.drain()
	        if await asyncio.wait_for(r.readexactly(4), 40) != b"ping":
	            raise ConnectionResetError
	        await asyncio.sleep(hold)
	        w.close()
	        res["ok"] += 1
	    except asyncio.TimeoutError:
	        res["timeout"] += 1
	    except (OSError, asyncio.IncompleteReadError):
	        res["reset"] += 1
	async def main():
	    await asyncio.gather(*(one() for _ in range(n)))
	asyncio.run(main())
	print("ok=%d reset=%d timeout=%d" % (res["ok"], res["reset"], res["timeout"]))
	PY
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME MAXCONN [burst]: the proxy under a hard limit of 256
# descriptors; with burst, stopped while the clients connect.
run() {
	local name=$1 max=$2 burst=${3:-} pid t0 c0 out lines cpu wall
	cat >"$T/$name.ini" <<-CFG
	[global]
	workers = 2
	max_connections = $max
	admin = 127.0.0.1:$A
	log_connections = off
	[pool echo]
	server = e 127.0.0.2:$E
	[vip echo]
	listen = 127.0.0.1:$V
	pool = echo
	timeout_connect = 30s
	CFG
	bg "$name" prlimit --nofile=256:256 "$SNATPROXY" -c "$T/$name.ini"
	wait_for 10 grep -q "worker(s)" "$T/$name.log"
	pid=$(eval echo "\$PID_$name")
	t0=$(date +%s%N); c0=$(cpu_ticks "$pid")
	if [ -n "$burst" ]; then
		kill -STOP "$pid"
		(sleep 3; kill -CONT "$pid") &
	fi
	out=$(clients 1000 1)
	wall=$((($(date +%s%N) - t0) / 1000000))
	cpu=$((($(cpu_ticks "$pid") - c0) * 1000 / $(getconf CLK_TCK)))
	lines=$(wc -l <"$T/$name.log")
	echo "$name: $out in ${wall} ms, proxy CPU ${cpu} ms, ${lines} log lines"
	curl -fsS "http://127.0.0.1:$A/metrics" | grep -E '^snatproxy_(accept_paused|descriptor_waits|max_connections)' | tee "$T/$name.metrics"
	[ "$out" = "ok=1000 reset=0 timeout=0" ] || { tail -n 20 "$T/$name.log"; fail "$name: clients dropped: $out"; }
	[ "$lines" -le 20 ] || { head -n 30 "$T/$name.log"; fail "$name: $lines log lines"; }
	# Spinning on a failing accept burns both workers; serving 1000 echoes
	# takes a small fraction of the wall time.
	[ "$cpu" -le $((wall / 2)) ] || fail "$name: proxy used ${cpu} ms CPU in ${wall} ms"
	curl -fsS "http://127.0.0.1:$A/metrics" | grep -Eq '^snatproxy_accept_paused_total\{reason="[a-z_]+"\} [1-9]' ||
		fail "$name: no pause counted"
	proxy_stop "$name"
}

info "max_connections = auto under 256 descriptors: derived, not promised"
run auto auto
# What auto derives, the descriptors hold: accepting stops at the limit, one
# connection at a time near it, so none ever waits for a server socket.
grep -Eq '^snatproxy_(descriptor_waits_total|accept_paused_total\{reason="descriptors"\}) [1-9]' "$T/auto.metrics" &&
	fail "auto: descriptors ran out under the derived max_connections"
info "max_connections = 1000 under 256 descriptors: accept and server sockets run out"
run over 1000
grep -q "needs .* file descriptors" "$T/over.log" || fail "no warning that max_connections exceeds the limit"
info "1000 clients in the backlog before the first accept"
run burst 1000 burst
pass "descriptor exhaustion"
