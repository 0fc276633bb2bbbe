#!/usr/bin/env bash
# A server that never answers (its SYNs dropped by nftables, in a network
# namespace of the test's own) is marked down by its checks with a timeout
# as the cause, within check_interval * check_fall + check_timeout of the
# first check, and clients then go to the other server without waiting for
# a connect timeout. Its checks' durations count in the histogram's bucket
# of the timeout (300 ms: none under 100 ms), the other server's in the
# lowest.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need nginx curl nft
blackhole 198.18.99.1
P=$(pick_port); V=$(pick_port); ADM=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
cat >"$T/p.ini" <<CFG
[global]
workers = 1
admin = 127.0.0.1:$ADM
[pool p]
check = http
check_interval = 200ms
check_timeout = 300ms
check_fall = 2
server = hole 198.18.99.1:$P
server = fe1 127.0.0.2:$P
[vip v]
listen = 127.0.0.1:$V
pool = p
timeout_connect = 2s
CFG
proxy_start proxy "$T/p.ini"
wait_for 5 grep -q "server hole .* is DOWN" "$T/proxy.log"
# From the proxy's own timestamps (its start line to its DOWN line), so that
# neither its start-up nor this script's polling is in the figure.
dt=$(($(log_ms "$T/proxy.log" "server hole .* is DOWN") - $(log_ms "$T/proxy.log" "worker\(s\)")))
grep "is DOWN" "$T/proxy.log"
echo "marked down ${dt} ms after the start (bound: 200ms * 2 + 300ms = 700 ms)"
grep -q "server hole 198.18.99.1:$P of pool p is DOWN: timeout: no answer to connect within check_timeout (300 ms) (2 failed http checks in a row)" \
	"$T/proxy.log" || fail "the cause is not a connect timeout"
# 500 ms of margin for a late timer on a loaded machine (the sanitizer
# builds' suites run beside this one on 2 cores, and ThreadSanitizer slows
# the proxy several times over).
[ "$dt" -le $((200 * 2 + 300 + 500)) ] || fail "marked down ${dt} ms after the start (bound 700 ms + 500 ms margin)"
n0=$(grep -c 'conn vip=v ' "$T/proxy.log")
for i in 1 2 3 4; do curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || fail "request $i"; done
# None of them tried the blackholed server: each went to fe1 at once
# (a try of hole would be a retry after timeout_connect = 2 s).
wait_for 5 lines_at_least $((n0 + 4)) "$T/proxy.log" 'conn vip=v '
grep 'conn vip=v ' "$T/proxy.log" | tail -n 4 | tee "$T/after"
[ "$(grep -cE 'server=fe1/.* retries=0 ' "$T/after")" -eq 4 ] ||
	fail "requests tried the blackholed server after it was marked down"
admin_at "$ADM"
h='snatproxy_server_check_seconds'
# One scrape: checks go on every 200 ms, and a check that ended between two
# scrapes would put the count and the buckets one apart.
curl -fsS -m 5 "$A/metrics" >"$T/m" || fail "GET /metrics"
n=$(metric "${h}_count{pool=\"p\",server=\"hole\"}" "$T/m")
fast=$(metric "${h}_bucket{pool=\"p\",server=\"hole\",le=\"0.1\"}" "$T/m")
sum=$(metric "${h}_sum{pool=\"p\",server=\"hole\"}" "$T/m")
echo "hole: $n checks, $fast under 100 ms, $sum s in all"
[ "$n" -ge 2 ] && [ "$fast" -eq 0 ] || fail "timed-out checks counted under 100 ms: $fast of $n"
awk -v s="$sum" -v n="$n" 'BEGIN {exit !(s / n >= 0.3 && s / n < 2.5)}' || fail "mean check time $sum / $n s"
n=$(metric "${h}_count{pool=\"p\",server=\"fe1\"}" "$T/m")
[ "$n" -ge 2 ] && [ "$(metric "${h}_bucket{pool=\"p\",server=\"fe1\",le=\"+Inf\"}" "$T/m")" -eq "$n" ] ||
	fail "fe1's checks are not counted: $n"
proxy_stop proxy
pass "a blackholed server is marked down by a timeout"
