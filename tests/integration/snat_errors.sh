#!/usr/bin/env bash
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh (bg)
# SNAT errors at run time: an SNAT address that leaves the host after the
# start makes its connections end in internal-error; the log names the VIP
# and the address at fault, and the connection's line has snat=- (nothing
# was bound), not the server's address. A connection closed while it is
# still connecting also shows snat=-. -t and a reload refuse the address.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need nginx curl nft
ip addr add 198.18.77.1/32 dev lo || fail "cannot add 198.18.77.1"
ip addr add 198.18.77.2/32 dev lo || fail "cannot add 198.18.77.2"
# 198.18.77.3 never answers: every SYN to it is dropped.
blackhole 198.18.77.3
P=$(pick_port); A=$(pick_port); B=$(pick_port); M=$(pick_port)
nginx_start fe1 198.18.77.2 "$P"
cat >"$T/p.ini" <<CFG
[global]
workers = 1
admin = 127.0.0.1:$M
[pool web]
server = fe1 198.18.77.2:$P
[pool black]
server = hole 198.18.77.3:$P
[vip v]
listen = 127.0.0.1:$A
pool = web
snat = 198.18.77.1
[vip b]
listen = 127.0.0.1:$B
pool = black
snat = 198.18.77.1
timeout_connect = 30s
[global]
drain_delay = 0
CFG
"$SNATPROXY" -t -c "$T/p.ini" || fail "-t refused the config while 198.18.77.1 is here"
proxy_start proxy "$T/p.ini"

info "the SNAT address is here: connections leave from it"
curl -fsS -m 5 "http://127.0.0.1:$A/" >/dev/null || fail "request with the SNAT address present"
wait_for 5 grep -qE "conn vip=v client=127\.0\.0\.1:[0-9]+ snat=198\.18\.77\.1:[0-9]+ server=fe1/198\.18\.77\.2:$P .* end=client-closed$" "$T/proxy.log"

info "a connection closed while connecting has no source address yet: snat=-"
curl -sS -m 10 "http://127.0.0.1:$B/" >/dev/null 2>&1 &
cpid=$!
wait_for 5 ss -Htn "dst 198.18.77.3"
# An operator's disable closes the server's connections, connecting ones too.
curl -fsS -m 5 -X POST "http://127.0.0.1:$M/pools/black/servers/hole/disable" >/dev/null ||
	fail "cannot disable the server"
wait "$cpid"
wait_for 5 grep -q "conn vip=b " "$T/proxy.log"
grep -E "conn vip=b " "$T/proxy.log"
grep -qE "conn vip=b client=127\.0\.0\.1:[0-9]+ snat=- server=hole/198\.18\.77\.3:$P .* end=server-disabled$" "$T/proxy.log" ||
	fail "the line of a connection closed while connecting is wrong"
proxy_stop proxy

info "the SNAT address leaves the host: connections fail, and the log says which address"
proxy_start proxy2 "$T/p.ini"
ip addr del 198.18.77.1/32 dev lo || fail "cannot remove 198.18.77.1"
for i in 1 2 3; do
	curl -sS -m 5 "http://127.0.0.1:$A/" >/dev/null 2>&1 && fail "request $i succeeded without its SNAT address"
done
wait_for 5 grep -q "conn vip=v .*end=internal-error" "$T/proxy2.log"
grep -E "SNAT|conn vip=v" "$T/proxy2.log"
grep -q "ERROR vip v: cannot bind SNAT address 198.18.77.1: Cannot assign requested address: not an address of this host (any more)" "$T/proxy2.log" ||
	fail "no message naming the SNAT address at fault"
[ "$(grep -c "cannot bind SNAT address" "$T/proxy2.log")" -eq 1 ] || fail "the message is not rate-limited"
[ "$(grep -cE "conn vip=v client=127\.0\.0\.1:[0-9]+ snat=- server=fe1/198\.18\.77\.2:$P .* end=internal-error:EADDRNOTAVAIL$" "$T/proxy2.log")" -eq 3 ] ||
	fail "the connections' lines do not say snat=- and end=internal-error:EADDRNOTAVAIL"
"$SNATPROXY" -t -c "$T/p.ini" 2>"$T/t.err" && fail "-t accepted an SNAT address that is not here"
grep -qF "$T/p.ini:11: vip v: snat address 198.18.77.1 is not an address of this host" "$T/t.err" ||
	fail "-t: $(cat "$T/t.err")"
info "a reload checks the SNAT addresses too, and keeps the running config"
kill -HUP "$PID_proxy2"
wait_for 5 grep -qF "SIGHUP: $T/p.ini:11: vip v: snat address 198.18.77.1 is not an address of this host" "$T/proxy2.log"
proxy_stop proxy2
pass "SNAT errors name the address"
