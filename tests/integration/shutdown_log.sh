#!/usr/bin/env bash
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh (bg)
# SIGTERM with grace = 0 while clients keep connecting: every connection the
# proxy's side of TCP completed has exactly one access-log line (end=
# shutdown), and none other is logged. Its server is blackholed (SYNs
# dropped in a namespace of the test's own), so the connections opened
# before the signal are all still connecting to it; those whose handshake
# with the VIP completes as the signal comes wait in the listeners' accept
# queues. A client that connected and got no line was reset with a queue
# the proxy closed without accepting from it; one that sees a FIN instead
# of a reset had a socket the proxy never looked at.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need python3 nft
blackhole 198.18.99.1
P=$(pick_port); V=$(pick_port)
cat >"$T/p.ini" <<CFG
[global]
workers = 2
grace = 0
[pool hole]
server = hole 198.18.99.1:$P
[vip v]
listen = 127.0.0.1:$V
pool = hole
timeout_connect = 30s
CFG

# clients PID: a connection every millisecond for 0.8 s, SIGTERM to PID at
# 0.4 s; once PID has exited, one line per connection that the VIP's side
# completed: "PORT rst" or "PORT eof" (how it ended), and a summary.
clients() {
	python3 - "$V" "$1" <<'PY'
import errno, os, resource, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
socks, t0, sent = [], time.monotonic(), False
while time.monotonic() - t0 < 0.8:
    if not sent and time.monotonic() - t0 >= 0.4:
        os.kill(pid, signal.SIGTERM)
        sent = True
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except ConnectionRefusedError:
        s.close()
        continue
    socks.append(s)
    time.sleep(0.001)
while os.path.exists("/proc/%d" % pid) and time.monotonic() - t0 < 10:
    time.sleep(0.05)
time.sleep(0.3)
refused = pending = 0
for s in socks:
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err == errno.ECONNREFUSED:
        refused += 1
        continue
    lport = s.getsockname()[1]
    if err == errno.ECONNRESET:
        print(lport, "rst")
        continue
    try:
        s.getpeername()
    except OSError:
        pending += 1
        continue
    try:
        how = "eof" if s.recv(1) == b"" else "data"
    except ConnectionResetError:
        how = "rst"
    except BlockingIOError:
        how = "open"
    print(lport, how)
print("summary opened=%d refused=%d pending=%d" % (len(socks), refused, pending))
PY
}

for round in 1 2; do
	info "round $round: SIGTERM while connections connect and clients keep coming"
	: >"$T/proxy.log"
	bg proxy "$SNATPROXY" -c "$T/p.ini"
	wait_for 10 grep -q "worker(s)" "$T/proxy.log"
	clients "$PID_proxy" >"$T/clients.out" 2>&1 || fail "client script: $(cat "$T/clients.out")"
	rc=0; wait "$PID_proxy" || rc=$?
	[ "$rc" -eq 0 ] || fail "the proxy exited with status $rc"
	grep -q '^summary ' "$T/clients.out" || fail "client script: $(cat "$T/clients.out")"
	grep -E '^[0-9]+ ' "$T/clients.out" | sort >"$T/connected"
	sed -n 's/.* INFO conn vip=v client=127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$T/proxy.log" | sort >"$T/logged"
	n=$(wc -l <"$T/connected"); l=$(wc -l <"$T/logged")
	info "$(tail -n 1 "$T/clients.out"): $n connected, $l log lines"
	[ "$n" -ge 100 ] || fail "only $n connections were made before the stop"
	dup=$(uniq -d "$T/logged" | head -3)
	[ -z "$dup" ] || fail "client ports logged twice: $dup"
	awk '{print $1}' "$T/connected" | comm -23 - "$T/logged" >"$T/unlogged"
	[ ! -s "$T/unlogged" ] || fail "$(wc -l <"$T/unlogged") connection(s) without a log line: $(
		awk 'NR == FNR {u[$1] = 1; next} u[$1] {print "port " $1 " " $2}' "$T/unlogged" "$T/connected" | head -5 | tr '\n' ';')"
	stray=$(awk '{print $1}' "$T/connected" | comm -13 - "$T/logged" | head -3)
	[ -z "$stray" ] || fail "log lines for clients that did not connect: $stray"
	[ "$(awk '$2 != "rst"' "$T/connected" | wc -l)" -eq 0 ] ||
		fail "connections not reset by the stop: $(awk '$2 != "rst"' "$T/connected" | head -3)"
	[ "$(grep -c ' INFO conn vip=v .* end=shutdown$' "$T/proxy.log")" -eq "$l" ] ||
		fail "lines that do not end with end=shutdown: $(grep ' INFO conn ' "$T/proxy.log" | grep -v 'end=shutdown$' | head -3)"
done
pass "every connection accepted before the stop has exactly one log line, end=shutdown"
