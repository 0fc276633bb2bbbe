# 5,000 concurrent connections relayed byte-exact, and a slow reader that
# cannot make the proxy buffer what the fast server sends.
. "$(dirname "$0")/../lib.sh"
[ "$(ulimit -Hn)" -ge 12000 ] || skip "needs a hard file limit of 12000 (ulimit -Hn is $(ulimit -Hn))"
ulimit -n "$(ulimit -Hn)"

E=$(pick_port); S=$(pick_port); V=$(pick_port); W=$(pick_port)
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo
bg source "$TOOLS/streamer" serve "127.0.0.2:$S" source 100000000
wait_for 5 listening 127.0.0.2 "$E"
wait_for 5 listening 127.0.0.2 "$S"
cat >"$T/p.ini" <<CFG
[global]
workers = 2
max_connections = 6000
buffers = 256
log_connections = off
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
pid=$PID_proxy

info "5000 concurrent connections, 16 KiB each way, byte-exact"
"$TOOLS/streamer" run "127.0.0.1:$V" --conns 5000 --bytes 16384 --timeout 120 || fail "concurrent streams"

info "slow reader: the server sends 100 MB as fast as it can, the client reads 4 MB/s for 5 s"
base=$(rss_kib "$pid")
"$TOOLS/streamer" run "127.0.0.1:$W" --download 100000000 --rate 4000000 --timeout 5 >/dev/null 2>&1 &
reader=$!
PIDS+=($reader)
peak=$base
for _ in $(seq 40); do
	sleep 0.1
	r=$(rss_kib "$pid"); [ "$r" -gt "$peak" ] && peak=$r
done
wait $reader
grown=$((peak - base))
echo "proxy RSS: before ${base} KiB, peak ${peak} KiB, grown ${grown} KiB"
# 2 workers x 256 buffers x 16 KiB = 8 MiB of buffers exist in all; the
# proxy holds at most a few of them per connection.
[ "$grown" -lt 12288 ] || fail "proxy grew ${grown} KiB for a slow reader"

info "a full-speed download still completes byte-exact afterwards"
"$TOOLS/streamer" run "127.0.0.1:$W" --download 100000000 --timeout 60 || fail "download after slow reader"
proxy_stop proxy
pass "bounded load"
