# A server that never answers (its SYNs dropped by nftables, in a network
# namespace of the test's own) is marked down by its checks with a timeout
# as the cause, within check_interval * check_fall + check_timeout of the
# first check, and clients then go to the other server without waiting for
# a connect timeout.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need nginx curl nft
ip addr add 198.18.99.1/32 dev lo || fail "cannot add 198.18.99.1"
nft -f - <<'NFT' || fail "cannot load the nftables drop rule"
table ip blackhole {
	chain input { type filter hook input priority 0; ip daddr 198.18.99.1 tcp flags syn drop; }
}
NFT
P=$(pick_port); A=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
cat >"$T/p.ini" <<CFG
[global]
workers = 1
[pool p]
check = http
check_interval = 200ms
check_timeout = 300ms
check_fall = 2
server = hole 198.18.99.1:$P
server = fe1 127.0.0.2:$P
[vip v]
listen = 127.0.0.1:$A
pool = p
timeout_connect = 2s
CFG
t0=$(date +%s%3N)
proxy_start proxy "$T/p.ini"
wait_for 5 grep -q "server hole .* is DOWN" "$T/proxy.log"
dt=$(($(date +%s%3N) - t0))
grep "is DOWN" "$T/proxy.log"
echo "marked down ${dt} ms after the start (bound: 200ms * 2 + 300ms = 700 ms, plus the start)"
grep -q "server hole 198.18.99.1:$P of pool p is DOWN: timeout: no answer to connect within check_timeout (300 ms) (2 failed http checks in a row)" \
	"$T/proxy.log" || fail "the cause is not a connect timeout"
[ "$dt" -le 1500 ] || fail "marked down ${dt} ms after the start"
start=$(date +%s%3N)
for i in 1 2 3 4; do curl -fsS -m 5 "http://127.0.0.1:$A/" >/dev/null || fail "request $i"; done
dt=$(($(date +%s%3N) - start))
echo "4 requests in ${dt} ms"
[ "$dt" -lt 2000 ] || fail "requests waited for the blackholed server (${dt} ms)"
proxy_stop proxy
pass "a blackholed server is marked down by a timeout"
