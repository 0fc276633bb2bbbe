#!/usr/bin/env bash
# A server that refuses connections and one that never answers (blackholed)
# are each retried once on another server, so clients still get answers; a
# pool with only a bad server closes its clients with the cause in the log.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need nginx curl
need nft
# A blackholed server: its address exists, but every SYN to it is dropped.
blackhole 198.18.99.1

P=$(pick_port); A=$(pick_port); B=$(pick_port); C=$(pick_port); D=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
cat >"$T/p.ini" <<CFG
[global]
workers = 1
[pool refused]
server = dead 127.0.0.3:$P
server = fe1 127.0.0.2:$P
[pool black]
server = hole 198.18.99.1:$P
server = fe1 127.0.0.2:$P
[pool only_refused]
server = dead 127.0.0.3:$P
[pool only_black]
server = hole 198.18.99.1:$P
[vip a]
listen = 127.0.0.1:$A
pool = refused
[vip b]
listen = 127.0.0.1:$B
pool = black
timeout_connect = 300ms
[vip c]
listen = 127.0.0.1:$C
pool = only_refused
[vip d]
listen = 127.0.0.1:$D
pool = only_black
timeout_connect = 300ms
CFG
proxy_start proxy "$T/p.ini"

# answers VIP-PORT N: N requests in turn; the answers in $T/answers, one a
# line ("failed" for a request without one), then their tally.
answers() {
	for _ in $(seq "$2"); do curl -fsS -m 5 "http://127.0.0.1:$1/" || echo failed; done >"$T/answers"
	sort "$T/answers" | uniq -c
}

info "refused server: 10 requests all answered by fe1"
answers "$A" 10
[ "$(grep -cx fe1 "$T/answers")" -eq 10 ] || fail "not all 10 requests via the refused pool were answered by fe1"
grep -qE 'conn vip=a .* server=fe1/.* retries=1 ' "$T/proxy.log" || fail "no retried connection logged"

info "blackholed server: 6 requests answered after a 300ms connect timeout at most"
start=$(date +%s%N)
answers "$B" 6
ms=$((($(date +%s%N) - start) / 1000000))
echo "6 requests in $ms ms"
[ "$(grep -cx fe1 "$T/answers")" -eq 6 ] || fail "not all 6 requests via the blackholed pool were answered by fe1"
wait_for 5 lines_at_least 6 "$T/proxy.log" 'conn vip=b '
n=$(grep -cE 'conn vip=b .* server=fe1/.* retries=1 ' "$T/proxy.log")
echo "$n of them met the blackhole first"
[ "$n" -ge 1 ] || fail "no request via the blackholed pool was retried: the blackhole was never tried"
# Each retried request waited one 300 ms connect timeout; a margin of 3 s
# for a loaded machine.
[ "$ms" -le $((n * 300 + 3000)) ] || fail "blackholed retries took $ms ms"

info "pool with only a refusing server: the client is closed at once, cause logged"
curl -sS -m 5 "http://127.0.0.1:$C/" && fail "request through a dead pool succeeded"
wait_for 5 grep -qE 'conn vip=c .*server=dead/127\.0\.0\.3:[0-9]+ .*end=connect-refused' "$T/proxy.log"

info "pool with only a blackholed server: closed after the connect timeout"
curl -sS -m 5 "http://127.0.0.1:$D/" && fail "request through a blackholed pool succeeded"
wait_for 5 grep -qE 'conn vip=d .*end=connect-timeout' "$T/proxy.log"
grep -E 'vip=[cd] ' "$T/proxy.log"
proxy_stop proxy
pass "failover"
