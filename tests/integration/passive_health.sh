#!/usr/bin/env bash
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh (bg)
# A dead server in a pool without active checks (check = none): three
# servers in round robin, one of them blackholed (its SYNs dropped in a
# namespace of the test's own), timeout_connect 500ms, fail_timeout 6s
# (long, so that the steps timed against it fit on a loaded machine).
#  - at first it costs at most check_fall slow requests (each retried on a
#    live server: its log line says retries=1 retry=connect-timeout and ends
#    with how the connection ended), not every other request;
#  - then it is skipped for fail_timeout, and the live servers alternate;
#  - then one request tries it (slow again), and it is skipped again;
#  - a reload keeps it down, with its timer: no request pays for it again,
#    and its trial comes when it would have;
#  - once it answers, its trial brings it back into the rotation;
#  - down again (refused), a reload that moves it to another address, where
#    a server answers, gives it its share at once: a new address is a new
#    server.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need nginx curl nft
blackhole 198.18.99.1
P=$(pick_port); V=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe3 127.0.0.4 "$P"
config() { # ADDRESS_OF_HOLE TIMEOUT_IDLE
	cat >"$T/p.ini" <<-CFG
	[global]
	workers = 2
	[pool p]
	check_fall = 2
	fail_timeout = 6s
	server = fe1 127.0.0.2:$P
	server = hole $1:$P
	server = fe3 127.0.0.4:$P
	[vip v]
	listen = 127.0.0.1:$V
	pool = p
	timeout_connect = 500ms
	timeout_idle = $2
	CFG
}
# reload N: sends SIGHUP and waits for the N-th "reloaded" line.
reload() {
	kill -HUP "$PID_proxy"
	wait_for 5 lines_at_least "$1" "$T/proxy.log" 'SIGHUP: .* reloaded'
}
config 198.18.99.1 1m
proxy_start proxy "$T/p.ini"

# requests N: N requests in turn; $T/answers gets "NAME SECONDS" for each,
# and $slow is how many took longer than the connect timeout's 500ms could
# hide (a retried request takes at least that).
requests() {
	local i out
	: >"$T/answers"
	for i in $(seq "$1"); do
		out=$(curl -sS -m 5 -w ' %{time_total}' "http://127.0.0.1:$V/") || fail "request $i failed"
		echo "$out" | tr -d '\n' >>"$T/answers"
		echo >>"$T/answers"
	done
	slow=$(awk '$2 >= 0.45' "$T/answers" | wc -l)
	echo "$(awk '{print $1}' "$T/answers" | sort | uniq -c | tr -s ' \n' ' ')| $slow slow"
}
# sleep_until MS: until that time (date +%s%3N), if it is still to come.
sleep_until() {
	local r=$(($1 - $(date +%s%3N)))
	[ "$r" -le 0 ] || sleep "$(printf '%d.%03d' $((r / 1000)) $((r % 1000)))"
}
answered() { awk -v n="$1" '$1 == n' "$T/answers" | wc -l; }

info "9 requests: at most check_fall (2) pay the connect timeout, then it is down"
requests 9
t_down=$(date +%s%3N)
[ "$slow" -ge 1 ] && [ "$slow" -le 2 ] || fail "$slow of 9 requests paid the connect timeout, expected 1 or 2"
[ "$(answered hole)" -eq 0 ] || fail "the blackholed server answered"
grep -q "WARN server hole 198.18.99.1:$P of pool p is DOWN: 2 client connects in a row failed (last: connect timeout); one connection tries it again in 6000 ms (fail_timeout)" \
	"$T/proxy.log" || fail "no DOWN line: $(grep hole "$T/proxy.log")"
n=$(grep -cE "conn vip=v client=127\.0\.0\.1:[0-9]+ snat=127\.0\.0\.1:[0-9]+ server=fe[13]/127\.0\.0\.[24]:$P .* retries=1 retry=connect-timeout end=client-closed$" "$T/proxy.log")
[ "$n" -eq "$slow" ] || fail "$n retried lines for $slow slow requests: $(grep 'retries=1' "$T/proxy.log")"

info "while fail_timeout runs: no request pays, and the live servers alternate"
requests 10
[ "$slow" -eq 0 ] || fail "$slow requests paid the connect timeout while the server was down"
[ "$(answered fe1)" -eq 5 ] && [ "$(answered fe3)" -eq 5 ] || fail "uneven rotation: $(sort "$T/answers" | uniq -c)"
[ $(($(date +%s%3N) - t_down)) -lt 5500 ] || fail "too slow to tell: the wait may have ended meanwhile"

info "fail_timeout over: one request tries it (and pays), then it is skipped again"
sleep_until $((t_down + 6300))
requests 6
[ "$slow" -eq 1 ] || fail "$slow of 6 requests paid the connect timeout after fail_timeout, expected 1 (the trial)"
wait_for 5 grep -q "INFO server hole 198.18.99.1:$P of pool p is still down: a client connect failed (connect timeout); one connection tries it again in 6000 ms" "$T/proxy.log"
t_down=$(date +%s%3N)
requests 6
[ "$slow" -eq 0 ] || fail "$slow requests paid after the failed trial"

info "a reload (timeout_idle changed) keeps it down with its timer: no request pays"
# Half way through the wait: a timer started again by the reload would
# put the trial 3 s after the one the next step waits for.
sleep_until $((t_down + 3000))
config 198.18.99.1 2m
reload 1
requests 6
[ "$slow" -eq 0 ] || fail "$slow requests paid the connect timeout after the reload: its down state was reset"
[ "$(answered hole)" -eq 0 ] || fail "the blackholed server answered"
[ $(($(date +%s%3N) - t_down)) -lt 5500 ] || fail "too slow to tell: the wait may have ended meanwhile"

info "the server comes back: its trial connects, and it is in the rotation again"
nft delete table ip blackhole || fail "cannot remove the drop rule"
nginx_start hole 198.18.99.1 "$P"
sleep_until $((t_down + 6300))
requests 3
wait_for 5 grep -q "INFO server hole 198.18.99.1:$P of pool p is UP: a client connected to it" "$T/proxy.log"
requests 9
[ "$slow" -eq 0 ] && [ "$(answered hole)" -eq 3 ] && [ "$(answered fe1)" -eq 3 ] ||
	fail "after its return: $(sort "$T/answers" | uniq -c)"
grep -E "hole|retries=1" "$T/proxy.log"

info "down again (refused), then moved by a reload to an address that answers: served at once"
kill -TERM "$PID_nginx_hole"
wait "$PID_nginx_hole" 2>/dev/null
ip addr add 198.18.99.2/32 dev lo || fail "cannot add 198.18.99.2"
nginx_start moved 198.18.99.2 "$P"
requests 6
wait_for 5 grep -q "WARN server hole 198.18.99.1:$P of pool p is DOWN: 2 client connects in a row failed (last: connection refused)" "$T/proxy.log"
config 198.18.99.2 2m
reload 2
requests 6
[ "$(answered moved)" -eq 2 ] || fail "hole at its new address: $(sort "$T/answers" | uniq -c)"
proxy_stop proxy
pass "a dead server without checks: at most check_fall slow requests, then skipped for fail_timeout, one trial each time, across reloads too"
