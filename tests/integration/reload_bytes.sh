#!/usr/bin/env bash
# shellcheck disable=SC2154 # PID_proxy: set by lib.sh's bg
# Bytes of a connection that outlives a reload keep counting: a stream of
# 8,000,000 bytes each way, reloaded (SIGHUP) a quarter of the way through,
# shows every byte in the VIP's and the server's counters, and none twice.
# Before, the new generation started from the old one's totals, and what
# the open connection moved afterwards was counted only in the old
# generation, which the metrics no longer read (an OCS connection lasts
# 30 minutes and more: a reload hid most of its bytes).
. "$(dirname "$0")/../lib.sh"
need curl

E=$(pick_port); V=$(pick_port); ADM=$(pick_port)
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo
wait_for 5 listening 127.0.0.2 "$E"
cat >"$T/p.ini" <<CFG
[global]
workers = 2
admin = 127.0.0.1:$ADM
drain_delay = 0
[pool p]
server = e 127.0.0.2:$E
[vip v]
listen = 127.0.0.1:$V
pool = p
CFG
bg proxy "$SNATPROXY" -c "$T/p.ini"
wait_for 10 grep -q "worker(s)" "$T/proxy.log"
admin_at "$ADM"
vk() { echo "snatproxy_vip_bytes_total{vip=\"v\",direction=\"$1\"}"; }
sk() { echo "snatproxy_server_bytes_total{pool=\"p\",server=\"e\",direction=\"$1\"}"; }

n=8000000
info "a stream of $n bytes each way, read at 2,000,000 bytes/s"
"$TOOLS/streamer" run "127.0.0.1:$V" --conns 1 --bytes "$n" --rate 2000000 --timeout 30 \
	>"$T/stream.out" 2>&1 &
stream=$!
PIDS+=("$stream")
wait_for 5 eval '[ "$(metric "$(sk to_client)")" -gt 1000000 ] 2>/dev/null'
echo "before the reload: $(metric "$(sk to_client)") bytes to the client"
kill -HUP "$PID_proxy"
wait_for 5 grep -q "SIGHUP: .* reloaded" "$T/proxy.log"
wait "$stream" || fail "the stream broke across the reload: $(cat "$T/stream.out")"
cat "$T/stream.out"
for d in to_server to_client; do
	got_v=$(metric "$(vk $d)") got_s=$(metric "$(sk $d)")
	echo "$d: vip $got_v, server $got_s (sent: $n)"
	[ "$got_v" = "$n" ] && [ "$got_s" = "$n" ] ||
		fail "$d: the counters show $got_v (vip) and $got_s (server) of the $n bytes moved"
done
info "a second stream after the reload adds to the same counters"
"$TOOLS/streamer" run "127.0.0.1:$V" --conns 1 --bytes 1000 --timeout 10 >/dev/null || fail "stream after the reload"
wait_for 5 metric_is "$(vk to_client)" $((n + 1000))
metric_is "$(sk to_server)" $((n + 1000)) || fail "server to_server: $(metric "$(sk to_server)")"
proxy_stop proxy
pass "bytes counted across a reload"
