#!/usr/bin/env bash
# Round robin between two nginx servers on 127.0.0.2 and 127.0.0.3, the
# address they see (SNAT auto, then an SNAT pool), byte-exact streams both
# ways with half-close, and a clean SIGTERM.
. "$(dirname "$0")/../lib.sh"
need nginx curl

P=$(pick_port); V=$(pick_port); E=$(pick_port); V2=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe2 127.0.0.3 "$P"
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo --peers
wait_for 5 listening 127.0.0.2 "$E"

cat >"$T/p.ini" <<CFG
[global]
workers = 2

[pool web]
balance = roundrobin
server = fe1 127.0.0.2        ; no port: the port the client connected to
server = fe2 127.0.0.3

[pool echo]
server = e1 127.0.0.2:$E

[vip web]
listen = 127.0.0.1:$P
pool = web
snat = auto

[vip pooled]
listen = 127.0.0.1:$V
listen = 127.0.0.1:$V2
pool = echo
snat = 127.0.0.7 127.0.0.8
CFG
proxy_start proxy "$T/p.ini"

info "round robin: 20 requests from 127.0.0.5 alternate between fe1 and fe2"
for i in $(seq 20); do
	curl -fsS --interface 127.0.0.5 "http://127.0.0.1:$P/" || fail "request $i failed"
done >"$T/answers"
n1=$(grep -c '^fe1$' "$T/answers"); n2=$(grep -c '^fe2$' "$T/answers")
echo "fe1=$n1 fe2=$n2"
[ "$n1" -eq 10 ] && [ "$n2" -eq 10 ] || fail "expected 10/10, got fe1=$n1 fe2=$n2"

info "the servers see the proxy's address (127.0.0.1), never the client's 127.0.0.5"
cat "$T/fe1.access" "$T/fe2.access" | cut -d: -f1 | sort | uniq -c
grep -q '^127\.0\.0\.5:' "$T/fe1.access" "$T/fe2.access" && fail "a server saw the client's address"
[ "$(cat "$T/fe1.access" "$T/fe2.access" | grep -c '^127\.0\.0\.1:')" -eq 20 ] || fail "servers did not see 127.0.0.1"

info "byte-exact 8 MiB each way on 8 connections, with half-close, through an SNAT pool"
"$TOOLS/streamer" run "127.0.0.1:$V" --conns 8 --bytes 8388608 --timeout 60 || fail "stream check failed"
"$TOOLS/streamer" run "127.0.0.1:$V2" --conns 1 --bytes 1 --timeout 10 || fail "1-byte stream failed"
"$TOOLS/streamer" run "127.0.0.1:$V" --conns 4 --bytes 0 --timeout 10 || fail "empty stream failed"
grep '^peer' "$T/echo.log" | cut -d: -f1 | sort | uniq -c
grep '^peer' "$T/echo.log" | grep -vqE '^peer 127\.0\.0\.[78]:' && fail "echo server saw an address outside the SNAT pool"
grep -q '^peer 127.0.0.7:' "$T/echo.log" && grep -q '^peer 127.0.0.8:' "$T/echo.log" || fail "SNAT pool not spread over both addresses"

info "one log line per connection, naming VIP, client, SNAT address, server, bytes, reason"
grep -m1 'conn vip=pooled' "$T/proxy.log"
grep -qE 'conn vip=pooled client=127\.0\.0\.1:[0-9]+ snat=127\.0\.0\.[78]:[0-9]+ server=e1/127\.0\.0\.2:[0-9]+ to_server=8388608 to_client=8388608 duration_ms=[0-9]+ retries=0 end=client-closed' "$T/proxy.log" \
	|| fail "connection log line missing or malformed"
grep -qE 'conn vip=web client=127\.0\.0\.5:[0-9]+ snat=127\.0\.0\.1:[0-9]+ server=fe[12]/127\.0\.0\.[23]:'"$P"' ' "$T/proxy.log" \
	|| fail "web log line missing or malformed"

proxy_stop proxy
grep -q "stopped" "$T/proxy.log" || fail "no clean stop"
pass "relay basics"
