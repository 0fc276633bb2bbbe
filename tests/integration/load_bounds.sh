#!/usr/bin/env bash
# 5,000 concurrent connections relayed byte-exact within the memory the
# configuration allows, and a slow reader that cannot make the proxy buffer
# what the fast server sends: it gets its data at its own pace, its
# connection holds no more receive buffers than flow control allows
# (docs/engine.md: a half's receive stops at four buffers' worth of unsent
# bytes), and the proxy allocates nothing for it beyond the buffer pool.
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh's bg (through eval)
. "$(dirname "$0")/../lib.sh"
need curl
# 5,000 connections through the proxy: 10,000 descriptors in the proxy and
# 10,000 in the client and server tools. Root may raise the hard limit.
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 12000 ]; then
	[ "$(id -u)" -eq 0 ] || skip "needs a hard file limit of 12000 (ulimit -Hn is $(ulimit -Hn)), or root to raise it"
	ulimit -Hn 12000 2>/dev/null ||
		skip "needs a hard file limit of 12000 (ulimit -Hn is $(ulimit -Hn)), and root cannot raise it here (no CAP_SYS_RESOURCE)"
fi
ulimit -n "$(ulimit -Hn)"

E=$(pick_port); S=$(pick_port); V=$(pick_port); W=$(pick_port); ADM=$(pick_port)
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo
bg source "$TOOLS/streamer" serve "127.0.0.2:$S" source 100000000
wait_for 5 listening 127.0.0.2 "$E"
wait_for 5 listening 127.0.0.2 "$S"
WORKERS=2 BUFFERS=256 BUFSIZE=16384
cat >"$T/p.ini" <<CFG
[global]
workers = $WORKERS
max_connections = 6000
buffers = $BUFFERS
buffer_size = $BUFSIZE
log_connections = off
admin = 127.0.0.1:$ADM
drain_delay = 0
[pool echo]
server = e 127.0.0.2:$E
[pool source]
server = s 127.0.0.2:$S
[vip echo]
listen = 127.0.0.1:$V
pool = echo
[vip source]
listen = 127.0.0.1:$W
pool = source
CFG
proxy_start proxy "$T/p.ini"
wait_for 5 listening 127.0.0.1 "$ADM"
pid=$PID_proxy
KIB=1024
POOL_KIB=$((WORKERS * BUFFERS * BUFSIZE / KIB)) # every receive buffer there is: 8 MiB
CONN_KIB=1 # a connection's own state (about 200 bytes, docs/engine.md), with the allocator's share
SLACK_KIB=512 # the rest of the process moving a little (admin answers, logs, allocator)
# Under AddressSanitizer RSS measures the sanitizer too (its quarantine keeps
# freed memory, its shadow grows with what is touched): the figures are
# shown, the memory bounds apply to the normal build.
RSS_BOUNDS=1
ldd "$SNATPROXY" 2>/dev/null | grep -q libasan && RSS_BOUNDS=""
# rss_bound GROWN BOUND WHAT: fails when GROWN KiB exceed BOUND KiB.
rss_bound() {
	[ -n "$RSS_BOUNDS" ] || { echo "(RSS not bounded under AddressSanitizer)"; return 0; }
	[ "$1" -le "$2" ] || fail "the proxy grew $1 KiB for $3, more than $2 KiB"
}

# in_use: receive buffers in use over all workers, from /metrics.
in_use() {
	curl -fsS -m 2 "http://127.0.0.1:$ADM/metrics" | awk '
		$1 ~ /^snatproxy_worker_buffers\{/ {all += $2}
		$1 ~ /^snatproxy_worker_buffers_free\{/ {free += $2}
		END {if (all == 0) exit 1; print all - free}'
}
# sample SECONDS: RSS and buffers in use every 0.1 s; peaks in PEAK_RSS, PEAK_BUFS.
sample() {
	local r b
	PEAK_RSS=0 PEAK_BUFS=0
	for _ in $(seq $(($1 * 10))); do
		r=$(rss_kib "$pid") && [ "$r" -gt "$PEAK_RSS" ] && PEAK_RSS=$r
		b=$(in_use) && [ "$b" -gt "$PEAK_BUFS" ] && PEAK_BUFS=$b
		sleep 0.1
	done
}

info "5000 concurrent connections, 16 KiB each way, byte-exact"
base=$(rss_kib "$pid")
"$TOOLS/streamer" run "127.0.0.1:$V" --conns 5000 --bytes 16384 --timeout 120 >"$T/conc.out" 2>&1 &
conc=$!
PIDS+=("$conc")
peak=$base
while kill -0 "$conc" 2>/dev/null; do
	r=$(rss_kib "$pid") && [ "$r" -gt "$peak" ] && peak=$r
	sleep 0.1
done
wait "$conc" || { cat "$T/conc.out"; fail "concurrent streams"; }
cat "$T/conc.out"
bound=$((POOL_KIB + 5000 * CONN_KIB + SLACK_KIB))
echo "proxy RSS: at start ${base} KiB, peak ${peak} KiB: grown $((peak - base)) KiB (bound: pool ${POOL_KIB} + 5000 x ${CONN_KIB} + ${SLACK_KIB} = ${bound} KiB)"
rss_bound $((peak - base)) "$bound" "5000 connections"

info "slow reader: the server sends 100 MB as fast as it can, the client reads 4 MB/s for 5 s"
# Every buffer of the pool has been touched by now: what the slow reader
# costs beyond its connection's state is memory outside the pool. The 5000
# connections' ends may still be under way in the proxy (a loaded machine,
# a sanitizer build): their buffers are back before the reader starts, so
# that the peak below is the reader's own.
no_buffers_held() { [ "$(in_use)" = 0 ]; }
(wait_for 30 no_buffers_held) || fail "receive buffers still held after the 5000 connections ended: $(in_use)"
base=$(rss_kib "$pid")
"$TOOLS/streamer" run "127.0.0.1:$W" --download 100000000 --rate 4000000 --timeout 5 >"$T/slow.out" 2>&1 &
reader=$!
PIDS+=("$reader")
sample 4
rc=0; wait "$reader" || rc=$?
cat "$T/slow.out"
got=$(sed -n 's/.*received=\([0-9]*\).*/\1/p' "$T/slow.out")
echo "the slow reader got ${got:-nothing} bytes in 5 s (its pace allows 20,000,000)"
# It stops at its timeout with the download unfinished (exit 1), having
# read at its own pace: at least 90 % of 4 MB/s x 5 s.
[ "$rc" -eq 1 ] && grep -q '^timeout: 1 connection(s) unfinished' "$T/slow.out" ||
	fail "the slow reader did not run its 5 s (exit $rc)"
[ -n "$got" ] && [ "$got" -ge 18000000 ] && [ "$got" -le 20100000 ] ||
	fail "the slow reader got ${got:-no} bytes, not 18,000,000 to 20,100,000: the proxy did not keep its pace"
grown=$((PEAK_RSS - base))
echo "proxy RSS: before ${base} KiB, peak ${PEAK_RSS} KiB, grown ${grown} KiB; receive buffers in use at most ${PEAK_BUFS} of $((WORKERS * BUFFERS))"
rss_bound "$grown" $((8 * BUFSIZE / KIB + CONN_KIB + SLACK_KIB)) "a slow reader"
# Flow control stops a half's receive at 4 buffers' worth of unsent bytes;
# a receive already under way may bring as many again: 8 buffers. More is
# the slow reader taking buffers the worker's other connections need.
[ "$PEAK_BUFS" -le 8 ] ||
	fail "the slow reader's connection held ${PEAK_BUFS} receive buffers ($((PEAK_BUFS * BUFSIZE / KIB)) KiB), more than 8"

info "a full-speed download still completes byte-exact afterwards"
"$TOOLS/streamer" run "127.0.0.1:$W" --download 100000000 --timeout 60 || fail "download after slow reader"
proxy_stop proxy
pass "bounded load"
