#!/usr/bin/env bash
# The node's readiness for keepalived or a BGP daemon: GET /ready is 200
# while every VIP has a server up, 503 with the reason when a VIP's pool is
# all down, after POST /drain (new connections still served) and during a
# stop; POST /undrain gives 200 back, but not once SIGTERM came (409); the
# POSTs need the admin token like the other ones. The config takes its SNAT
# address from the environment (${NODE_SNAT}), as each node of a cluster
# would, and the servers see that address.
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh's bg (through eval)
. "$(dirname "$0")/../lib.sh"
need nginx curl

P=$(pick_port); Q=$(pick_port); V=$(pick_port); W=$(pick_port); ADM=$(pick_port)
TOKEN=ready-test-token-0123456789
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe2 127.0.0.3 "$Q"
cat >"$T/p.ini" <<'CFG'
[global]
workers = 2
admin = 127.0.0.1:${ADM}
admin_token_file = ${T}/token
drain_delay = 4s
grace = 5s
[pool web]
server = fe1 127.0.0.2:${P}
check = tcp
check_interval = 100ms
check_fall = 1
check_rise = 1
[pool other]
server = fe2 127.0.0.3:${Q}
check = tcp
check_interval = 100ms
check_fall = 1
check_rise = 1
[vip web]
listen = 127.0.0.1:${V}
pool = web
snat = ${NODE_SNAT}   ; this node's own address toward the servers
[vip other]
listen = 127.0.0.1:${W}
pool = other
CFG
export ADM P Q V W T
info "\${NODE_SNAT} unset: -t names the variable and the line"
"$SNATPROXY" -t -c "$T/p.ini" >"$T/t.out" 2>&1 && fail "-t passed without NODE_SNAT"
grep -q 'p.ini:22: ${NODE_SNAT}: no such environment variable' "$T/t.out" ||
	fail "-t without NODE_SNAT: $(cat "$T/t.out")"
export NODE_SNAT=127.0.0.9
proxy_start proxy "$T/p.ini"
A="http://127.0.0.1:$ADM"

# ready CODE WORDS: GET /ready answers CODE with WORDS in its line.
ready() {
	local code
	code=$(curl -s -m 5 -o "$T/ready.body" -w '%{http_code}' "$A/ready")
	[ "$code" = "$1" ] && grep -q -- "$2" "$T/ready.body"
}
post() { curl -s -m 5 -o "$T/post.body" -w '%{http_code}' -X POST "$@"; }
served() { [ "$(curl -s -m 5 "http://127.0.0.1:$V/")" = fe1 ]; }

info "serving: 200, and the server sees the SNAT address from the environment"
wait_for 5 ready 200 'ready: 2 vip(s)'
served || fail "no answer through vip web"
grep -q '^127\.0\.0\.9:' "$T/fe1.access" || fail "fe1 saw $(head -1 "$T/fe1.access"), not 127.0.0.9"
[ "$(curl -s -o /dev/null -w '%{http_code}' -I "$A/ready")" = 200 ] || fail "HEAD /ready"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$A/drain")" = 405 ] || fail "GET /drain is not 405"

info "POST /drain needs the token; then 503 and new connections still served"
[ "$(post "$A/drain")" = 401 ] || fail "POST /drain without the token: $(cat "$T/post.body")"
ready 200 ready || fail "a refused drain changed /ready: $(cat "$T/ready.body")"
[ "$(post -H "Authorization: Bearer $TOKEN" "$A/drain")" = 200 ] || fail "POST /drain: $(cat "$T/post.body")"
ready 503 'draining (POST /drain' || fail "/ready after drain: $(cat "$T/ready.body")"
for _ in 1 2 3; do served || fail "a new connection was not served while drained"; done
[ "$(post -H "Authorization: Bearer $TOKEN" "$A/undrain")" = 200 ] || fail "POST /undrain"
ready 200 ready || fail "/ready after undrain: $(cat "$T/ready.body")"

info "a VIP without a server up: 503 naming it; back to 200 when it returns"
kill "$PID_nginx_fe2"
wait_for 5 ready 503 'vip other: no server of pool other is up'
nginx_start fe2 127.0.0.3 "$Q"
wait_for 5 ready 200 ready

info "SIGTERM: 503 during drain_delay, /undrain refused (409), connections still served"
kill -TERM "$PID_proxy"
wait_for 5 ready 503 'draining before a stop'
[ "$(post -H "Authorization: Bearer $TOKEN" "$A/undrain")" = 409 ] ||
	fail "POST /undrain during a stop: $(cat "$T/post.body")"
served || fail "a new connection within drain_delay was not served"
wait_for 10 grep -q 'no new connections' "$T/proxy.log"
rc=0; wait "$PID_proxy" || rc=$?
[ $rc -eq 0 ] || fail "exit status $rc"
pass "ready"
