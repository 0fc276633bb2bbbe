#!/usr/bin/env bash
# Health checks over plain HTTP and TCP against real nginx servers on
# loopback: a stopped server is marked down within interval * fall + timeout,
# once, with its cause, and gets no new connections; restarted, it is up
# again after `rise` checks; an unexpected status and a missing body text
# each give their own cause; passive checking marks a server down after
# `fall` failed client connects; with every primary down a backup serves;
# with nothing left, clients are refused at once.
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh's bg (through eval)
. "$(dirname "$0")/../lib.sh"
need nginx curl

P=$(pick_port); Q=$(pick_port)
A=$(pick_port); B=$(pick_port); C=$(pick_port); D=$(pick_port); E=$(pick_port); F=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe2 127.0.0.3 "$Q"
cat >"$T/p.ini" <<CFG
[global]
workers = 2
[pool web]
check = http
check_interval = 200ms
check_timeout = 300ms
check_fall = 2
check_rise = 2
check_body = fe
server = fe1 127.0.0.2:$P
server = fe2 127.0.0.3:$Q
[pool status]
check = http
check_path = /missing
check_expect = 200-299,405
check_interval = 200ms
check_fall = 1
server = fe1 127.0.0.2:$P
[pool body]
check = http
check_body = MCUFactory
check_interval = 200ms
check_fall = 1
server = fe1 127.0.0.2:$P
[pool spare]
check = tcp
check_interval = 200ms
check_fall = 1
server = dead 127.0.0.9:$P
server = spare 127.0.0.2:$P backup
[pool nothing]
check = tcp
check_interval = 200ms
check_fall = 1
server = dead 127.0.0.9:$P
[pool passive]
check = tcp
check_interval = 1h
check_fall = 2
server = gone 127.0.0.9:$P
server = fe1 127.0.0.2:$P
[vip web]
listen = 127.0.0.1:$A
pool = web
[vip status]
listen = 127.0.0.1:$B
pool = status
[vip body]
listen = 127.0.0.1:$C
pool = body
[vip spare]
listen = 127.0.0.1:$D
pool = spare
[vip nothing]
listen = 127.0.0.1:$E
pool = nothing
[vip passive]
listen = 127.0.0.1:$F
pool = passive
CFG
"$SNATPROXY" -t -c "$T/p.ini" || fail "the test's config is refused"
proxy_start proxy "$T/p.ini"
now_ms() { date +%s%3N; }
downs() { grep -c "server $1 .* of pool $2 is DOWN" "$T/proxy.log"; }

# answers N: N requests to VIP web in turn, the answers in $T/answers ("failed"
# for a request without one), and their tally.
answers() {
	for _ in $(seq "$1"); do curl -fsS -m 2 "http://127.0.0.1:$A/" || echo failed; done >"$T/answers"
	sort "$T/answers" | uniq -c
}
# Round robin over two servers of weight 1: any run of consecutive requests
# alternates, so 4 in a row are 2 and 2.
two_and_two() { [ "$(grep -cx fe1 "$T/answers")" -eq 2 ] && [ "$(grep -cx fe2 "$T/answers")" -eq 2 ]; }

info "both servers of pool web are up: requests reach both, 2 and 2"
answers 4
two_and_two || fail "4 requests were not answered 2 by fe1 and 2 by fe2"

info "each wrong answer gives its own cause"
wait_for 3 grep -q "of pool status is DOWN: unexpected status: 'HTTP/1.1 404 Not Found'" "$T/proxy.log"
wait_for 3 grep -q "of pool body is DOWN: body mismatch: .* lacks 'MCUFactory'" "$T/proxy.log"
wait_for 3 grep -q "server dead 127.0.0.9:$P of pool nothing is DOWN: connection refused" "$T/proxy.log"

info "stop fe2: down within interval * fall + timeout = 700 ms, once, with its cause"
# Timed from the moment fe2 stops listening (nginx's master takes a few
# hundred ms to close its sockets after SIGTERM) to the DOWN line's own
# timestamp, so that this script's polling on a loaded machine is not in it.
kill -TERM "$PID_nginx_fe2"
wait_for 5 eval '! listening 127.0.0.3 "$Q"'
t0=$(now_ms)
wait_for 5 grep -q "server fe2 .* of pool web is DOWN" "$T/proxy.log"
dt=$(($(log_ms "$T/proxy.log" "server fe2 .* of pool web is DOWN") - t0))
echo "fe2 marked down ${dt} ms after it stopped listening"
# 500 ms of margin for a late timer on a loaded machine (the sanitizer
# builds' suites run beside this one on 2 cores, and ThreadSanitizer slows
# the proxy several times over).
[ "$dt" -le $((200 * 2 + 300 + 500)) ] || fail "fe2 was marked down after ${dt} ms, more than 700 ms (+500 ms margin)"
grep "of pool web is DOWN" "$T/proxy.log"
grep -q "server fe2 127.0.0.3:$Q of pool web is DOWN: connection refused (2 failed http checks in a row)" \
	"$T/proxy.log" || fail "the DOWN line does not give the cause"
lines_before=$(grep -c 'conn vip=web ' "$T/proxy.log")
answers 8
[ "$(grep -cx fe1 "$T/answers")" -eq 8 ] || fail "with fe2 down, not all 8 requests were answered by fe1"
wait_for 3 lines_at_least $((lines_before + 8)) "$T/proxy.log" 'conn vip=web '
grep 'conn vip=web ' "$T/proxy.log" | tail -n 8 >"$T/after"
grep -q 'server=fe2' "$T/after" && fail "a connection went to fe2 while it was down: $(grep fe2 "$T/after")"
grep -q 'retries=[1-9]' "$T/after" && fail "connections were retried: fe2 was still tried"
sleep 0.5 # more failed checks must not log again
[ "$(downs fe2 web)" -eq 1 ] || fail "fe2's DOWN was logged $(downs fe2 web) times"

info "restart fe2: up again after rise = 2 checks"
t0=$(now_ms)
nginx_start fe2 127.0.0.3 "$Q"
wait_for 5 grep -q "server fe2 .* of pool web is UP: 2 successful http checks in a row" "$T/proxy.log"
echo "fe2 up again $(($(log_ms "$T/proxy.log" "server fe2 .* of pool web is UP") - t0)) ms after its restart"
answers 4
two_and_two || fail "with fe2 back, 4 requests were not answered 2 by fe1 and 2 by fe2"

info "every primary down, a backup: the backup serves without a retry"
out=$(curl -fsS -m 2 "http://127.0.0.1:$D/") || fail "the backup did not serve"
[ "$out" = fe1 ] || fail "unexpected answer via the backup: $out"
wait_for 3 grep -qE 'conn vip=spare .*server=spare/.* retries=0 ' "$T/proxy.log"

info "nothing left: clients are refused at once"
curl -sS -m 5 "http://127.0.0.1:$E/" 2>"$T/curl.err" && fail "a pool with no server up served"
echo "refused: $(cat "$T/curl.err")"
# The proxy's own account of how long the client was held: no connect was
# tried, so nothing to wait for (a connect would have been logged with its
# server, and a connect timeout lasts seconds).
wait_for 3 grep -qE 'conn vip=nothing .*end=no-server' "$T/proxy.log"
grep -E 'conn vip=nothing .*end=no-server' "$T/proxy.log"
grep -qE 'conn vip=nothing .*server=-/- .*duration_ms=[0-9]{1,2} .*end=no-server' "$T/proxy.log" ||
	fail "the refusal was not at once (under 100 ms, no server tried)"

info "passive: 2 failed client connects to 'gone' mark it down before any second check"
for i in 1 2 3 4; do curl -fsS -m 2 "http://127.0.0.1:$F/" >/dev/null || fail "request $i via pool passive"; done
wait_for 3 grep -q "server gone 127.0.0.9:$P of pool passive is DOWN: 2 client connects in a row failed (last: connection refused)" "$T/proxy.log"
grep "is DOWN\|is UP" "$T/proxy.log"
proxy_stop proxy
pass "health checks"
