#!/usr/bin/env bash
# Health checks across SIGHUP reloads: the new configuration's checks take
# over from the old one's (each worker cancels the old checks and frees them
# as their requests come back); a server that was down stays down in the new
# generation until its checks bring it back up; a server whose pool loses its
# checks is not left down for ever.
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh's bg (through eval)
. "$(dirname "$0")/../lib.sh"
need nginx curl
P=$(pick_port); Q=$(pick_port); A=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe2 127.0.0.3 "$Q"
config() { # WEIGHT CHECK [RISE]
	cat >"$T/p.ini" <<-CFG
	[global]
	workers = 2
	[pool web]
	check = $2
	check_interval = 200ms
	check_timeout = 1s
	check_fall = 2
	check_rise = ${3:-2}
	server = fe1 127.0.0.2:$P weight=$1
	server = fe2 127.0.0.3:$Q
	[vip web]
	listen = 127.0.0.1:$A
	pool = web
	CFG
}
answers() { for _ in 1 2 3 4 5 6; do curl -fsS -m 2 "http://127.0.0.1:$A/" || echo failed; done | sort | uniq -c | tr -s ' \n' ' '; }
conns() { grep -c 'conn vip=web ' "$T/proxy.log"; }
reload() { # N-TH
	kill -HUP "$PID_proxy"
	wait_for 5 bash -c "[ \$(grep -c 'SIGHUP: .* reloaded' '$T/proxy.log') -ge $1 ]"
}
config 1 http
proxy_start proxy "$T/p.ini"

info "fe2 stopped: down; after a reload it stays down in the new generation"
kill -TERM "$PID_nginx_fe2"
wait "$PID_nginx_fe2" 2>/dev/null
wait_for 5 grep -q "server fe2 .* is DOWN" "$T/proxy.log"
config 2 http
reload 1
n0=$(conns)
r=$(answers)
echo "after the reload: $r"
[[ $r == " 6 fe1 " ]] || fail "requests after the reload: $r (expected all on fe1)"
# A retry to fe1 would hide a reset of fe2's state: fe2 tried first, refused,
# then fe1. None of the 6 may have gone to fe2 or needed a retry.
wait_for 5 lines_at_least $((n0 + 6)) "$T/proxy.log" 'conn vip=web '
grep 'conn vip=web ' "$T/proxy.log" | tail -n 6 >"$T/after-reload"
[ "$(grep -cE 'server=fe1/.* retries=0 ' "$T/after-reload")" -eq 6 ] ||
	{ cat "$T/after-reload"; fail "after the reload, a connection went to fe2 or was retried: fe2's down state was reset"; }

info "fe2 restarted: the new generation's checks bring it back up"
nginx_start fe2 127.0.0.3 "$Q"
wait_for 5 grep -q "server fe2 .* is UP" "$T/proxy.log"
r=$(answers)
echo "fe2 back: $r"
[[ $r == *fe1* && $r == *fe2* ]] || fail "fe2 does not serve again: $r"

info "several reloads in a row, checks still running and the state still right"
# rise = 50 (10 s): from here on, only the reload below can bring fe2 back.
for n in 2 3 4; do config "$n" http 50; reload "$n"; done
kill -TERM "$PID_nginx_fe2"
wait "$PID_nginx_fe2" 2>/dev/null
wait_for 5 bash -c "[ \$(grep -c 'server fe2 .* is DOWN' '$T/proxy.log') -ge 2 ]"

info "fe2 down, then its pool's checks are removed: fe2 is no longer held down"
nginx_start fe2 127.0.0.3 "$Q"
config 1 none
reload 5
r=$(answers)
echo "without checks: $r"
[[ $r == *fe1* && $r == *fe2* ]] || fail "fe2 stays down without checks: $r"
[ "$(grep -c 'is DOWN' "$T/proxy.log")" -eq 2 ] || fail "a DOWN line too many: $(grep 'is DOWN' "$T/proxy.log")"
proxy_stop proxy
pass "health checks follow reloads"
