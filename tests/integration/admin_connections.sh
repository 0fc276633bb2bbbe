#!/usr/bin/env bash
# The SNAT ledger: with 3,000 connections open through two workers and an
# SNAT pool of two addresses, GET /connections?snat=ADDR:PORT names the
# client behind a source address and port seen at the server (from ss in
# the server's namespace), and that client really holds a connection to the
# VIP; ?client=, ?server=, ?vip= and ?limit= filter and bound the answer;
# bad queries get 400 with a reason; the data path answers meanwhile.
# Named admin_* so that the ThreadSanitizer build runs it too (the admin
# thread reads what the workers own).
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh's bg (through eval)
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need curl python3 ss nginx openssl
[ -x "$TOOLS/idlehold" ] || fail "$TOOLS/idlehold is missing"

N=3000
VIP=198.18.40.1 S1=198.18.40.10 S2=198.18.40.11 SRV=198.18.41.1 C1=198.18.42.1 C2=198.18.42.2
for a in $VIP $S1 $S2 $SRV $C1 $C2; do ip addr add "$a/32" dev lo || fail "cannot add $a"; done
P=$(pick_port); V=$(pick_port); W=$(pick_port); ADM=$(pick_port); Q=$(pick_port); NP=$(pick_port)
bg srv "$TOOLS/idlehold" serve "$SRV:$P"
tls_ca
tls_cert one pool01.lab.test
nginx_tls_start tlsfe "$SRV" "$NP" one
bg echo "$TOOLS/streamer" serve "$SRV:$W" echo
wait_for 5 listening "$SRV" "$P"
wait_for 5 listening "$SRV" "$W"
cat >"$T/p.ini" <<CFG
[global]
workers = 2
admin = 127.0.0.1:$ADM
log_connections = off
[pool idle]
server = s1 $SRV:$P
[pool echo]
server = e1 $SRV:$W
[vip idle]
listen = $VIP:$V
pool = idle
snat = $S1 $S2
timeout_idle = 120s
[vip echo]
listen = $VIP:$W
pool = echo
[pool tls]
server = t1 $SRV:$NP
[vip tls]
listen = $VIP:$Q
pool = tls
tls = route
route = pool01.lab.test tls
CFG
proxy_start proxy "$T/p.ini"
A="http://127.0.0.1:$ADM"

info "$N connections held open through the proxy"
bg hold "$TOOLS/idlehold" hold --src "$C1,$C2" --parallel 200 --timeout 20 --hold 60 \
	--steps "$N" "$VIP:$V"
wait_for 25 grep -q "^ready" "$T/hold.log"
grep -q "^ready n=$N ok=$N " "$T/hold.log" || fail "idlehold: $(cat "$T/hold.log")"

# The server sees only SNAT addresses and ports: take three of them.
ss -Htn state established "( sport = :$P )" | awk '{print $4}' | shuf -n 3 >"$T/peers"
[ "$(wc -l <"$T/peers")" -eq 3 ] || fail "the server shows no connections: $(ss -Htn | head -3)"
while read -r peer; do
	info "GET /connections?snat=$peer"
	curl -fsS -m 5 "$A/connections?snat=$peer" >"$T/one.json" || fail "GET /connections?snat=$peer"
	client=$(python3 - "$T/one.json" "$peer" "$SRV:$P" "$C1" "$C2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 1, d
c = d[0]
assert c["snat"] == sys.argv[2] and c["server"] == sys.argv[3] and c["vip"] == "idle", c
assert c["client"].split(":")[0] in sys.argv[4:], c
assert c["to_client"] == 1 and c["to_server"] == 0 and c["age_ms"] >= 0, c
print(c["client"])
PY
	) || fail "/connections?snat=$peer: $(cat "$T/one.json")"
	# That client holds a connection to the VIP from that very port.
	ss -Htn state established "( src $client and dst $VIP:$V )" | grep -q . ||
		fail "client $client named for $peer has no connection to the VIP"
	n=$(curl -fsS -m 5 "$A/connections?client=$client" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
	[ "$n" -eq 1 ] || fail "?client=$client gave $n connections"
done <"$T/peers"

info "filters and limits"
count() { curl -fsS -m 10 -D "$T/h" "$A/connections$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
[ "$(count "")" -eq 1000 ] && grep -qi '^X-Snatproxy-Truncated: 1' "$T/h" || fail "default limit: $(count "")"
[ "$(count "?limit=10")" -eq 10 ] || fail "?limit=10"
[ "$(count "?limit=10000")" -eq "$N" ] && ! grep -qi '^X-Snatproxy-Truncated' "$T/h" || fail "?limit=10000"
n1=$(count "?snat=$S1&limit=10000") n2=$(count "?snat=$S2&limit=10000")
[ "$((n1 + n2))" -eq "$N" ] && [ "$n1" -gt 1000 ] && [ "$n2" -gt 1000 ] || fail "per SNAT address: $n1 + $n2"
[ "$(count "?client=$C1&limit=10000")" -eq $((N / 2)) ] || fail "?client=$C1"
[ "$(count "?server=$SRV:$P&vip=idle&limit=10000")" -eq "$N" ] || fail "?server&vip"
[ "$(count "?vip=echo")" -eq 0 ] || fail "?vip=echo"
[ "$(count "?server=$SRV:1")" -eq 0 ] || fail "?server with another port"

info "the echo VIP answers while /connections walks $N connections"
walkers=()
# Three: the endpoint serves four at a time per client address, and one of
# this script's earlier requests may not have been let go yet.
for i in 1 2 3; do
	curl -fsS -m 10 -o "$T/walk$i" "$A/connections?limit=10000" &
	walkers+=($!)
done
"$TOOLS/streamer" run "$VIP:$W" --conns 4 --bytes 100000 --timeout 10 >"$T/echo.out" 2>&1 ||
	fail "echo through the proxy: $(cat "$T/echo.out")"
for p in "${walkers[@]}"; do wait "$p" || fail "a GET /connections during the echo failed"; done

info "a TLS client's server name"
# Its input is a pipe this script holds open: the connection lasts until
# the client is killed, however slow the machine.
mkfifo "$T/tls.in"
bg tls_client sh -c 'exec openssl s_client -connect "$1" -servername pool01.lab.test -quiet <"$2"' sh "$VIP:$Q" "$T/tls.in"
exec 5>"$T/tls.in"
tls_listed() { curl -fsS -m 5 "$A/connections?vip=tls" | grep -q '"sni":"pool01.lab.test"'; }
wait_for 5 tls_listed
curl -fsS -m 5 "$A/connections?vip=tls" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d) == 1 and d[0]["sni"] == "pool01.lab.test" and d[0]["to_server"] > 200, d
assert "sni" not in json.loads(sys.argv[1])[0], "a plain connection with an sni"' "$(cat "$T/one.json")" ||
	fail "/connections?vip=tls: $(curl -sS "$A/connections?vip=tls")"
kill "$PID_tls_client" 2>/dev/null
exec 5>&-

info "bad queries"
for q in "limit=0" "limit=10001" "limit=x" "snat=nonsense" "colour=red" "client" "vip=%00"; do
	code=$(curl -sS -m 5 -o "$T/bad" -w '%{http_code}' "$A/connections?$q")
	[ "$code" = 400 ] && [ "$(wc -l <"$T/bad")" -eq 1 ] || fail "?$q: $code $(cat "$T/bad")"
done
code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST "$A/connections")
[ "$code" = 405 ] || fail "POST /connections: $code"

kill "$PID_hold"
proxy_stop proxy
pass "/connections names the client behind an SNAT address and port among $N"
