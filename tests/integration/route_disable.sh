#!/usr/bin/env bash
# An operator's disable closes the open connections of that server, also
# those a tls = route VIP sent to a pool other than its default by SNI.
# Before, the check looked the server up in the VIP's default pool: the
# routed connection stayed open, and a server index past the default pool's
# servers was read out of bounds.
. "$(dirname "$0")/../lib.sh"
need nginx curl openssl
P=$(pick_port); Q=$(pick_port); A=$(pick_port)
tls_ca
tls_cert two www.two.test
nginx_tls_start fe1 127.0.0.2 "$P" two
nginx_tls_start fe2a 127.0.0.3 "$P" two
nginx_tls_start fe2b 127.0.0.4 "$P" two
cat >"$T/p.ini" <<CFG
[global]
workers = 1
admin = 127.0.0.1:$A
drain_delay = 0
[pool ones]
server = fe1 127.0.0.2:$P
[pool twos]
server = fe2a 127.0.0.3:$P
server = fe2b 127.0.0.4:$P
[vip route]
listen = 127.0.0.1:$Q
pool = ones
tls = route
route = *.two.test twos
CFG
proxy_start proxy "$T/p.ini"

info "two open connections routed to pool twos: one on fe2a, one on fe2b"
for i in 1 2; do
	(sleep 30 | openssl s_client -connect "127.0.0.1:$Q" -servername www.two.test \
		-CAfile "$T/ca.pem" >"$T/c$i.out" 2>&1) &
	PIDS+=("$!")
	wait_for 5 grep -q "CN = www.two.test" "$T/c$i.out"
done
active() { # SERVER: its open connections, from /metrics
	curl -fsS "http://127.0.0.1:$A/metrics" |
		awk -v s="server=\"$1\"" '/^snatproxy_server_connections_active/ && index($0, s) {print $2}'
}
active_is() { [ "$(active "$1")" = "$2" ]; }
wait_for 10 active_is fe2a 1
wait_for 10 active_is fe2b 1

info "disable twos/fe2b: its connection ends, fe2a's goes on"
curl -fsS -m 5 -X POST "http://127.0.0.1:$A/pools/twos/servers/fe2b/disable" >/dev/null ||
	fail "disable fe2b"
wait_for 5 grep -q 'conn vip=route .*server=fe2b/.* end=server-disabled' "$T/proxy.log"
sleep 0.3
[ "$(active fe2a)" = 1 ] || fail "fe2a's connection was closed too"
! grep -q 'server=fe2a/.*end=' "$T/proxy.log" || fail "fe2a's connection ended"
proxy_stop proxy
pass "disable reaches connections routed by SNI to another pool"
