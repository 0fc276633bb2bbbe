#!/usr/bin/env bash
# Weights, least connections and source stickiness, seen by real clients
# through nginx servers.
. "$(dirname "$0")/../lib.sh"
need nginx curl
P=$(pick_port); Q=$(pick_port); R=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe2 127.0.0.3 "$P"
cat >"$T/p.ini" <<CFG
[global]
workers = 1
[pool weighted]
server = fe1 127.0.0.2:$P weight=3
server = fe2 127.0.0.3:$P
[pool sticky]
balance = source
server = fe1 127.0.0.2:$P
server = fe2 127.0.0.3:$P
[vip weighted]
listen = 127.0.0.1:$Q
pool = weighted
[vip sticky]
listen = 127.0.0.1:$R
pool = sticky
CFG
proxy_start proxy "$T/p.ini"

info "weights 3:1 over 40 requests"
for i in $(seq 40); do curl -fsS "http://127.0.0.1:$Q/" || fail "request $i"; done >"$T/w"
sort "$T/w" | uniq -c
[ "$(grep -c fe1 "$T/w")" -eq 30 ] && [ "$(grep -c fe2 "$T/w")" -eq 10 ] || fail "weights not honoured"

info "source: each of 16 client addresses keeps its server over 5 requests"
for c in $(seq 10 25); do
	for i in $(seq 5); do curl -fsS --interface "127.0.0.$c" "http://127.0.0.1:$R/"; done | sort -u >"$T/s$c"
	[ "$(wc -l <"$T/s$c")" -eq 1 ] || fail "client 127.0.0.$c moved between servers"
done
cat "$T"/s* | sort | uniq -c
[ "$(cat "$T"/s* | sort -u | wc -l)" -eq 2 ] || fail "source hashing used one server only"
proxy_stop proxy

info "least connections: with a long connection open on one server, new ones go to the other"
cat >"$T/l.ini" <<CFG
[global]
workers = 1
[pool lc]
balance = leastconn
server = fe1 127.0.0.2:$P
server = fe2 127.0.0.3:$P
[vip lc]
listen = 127.0.0.1:$Q
pool = lc
CFG
proxy_start lc "$T/l.ini"
# An idle connection held open by the client pins one server.
(exec 3<>"/dev/tcp/127.0.0.1/$Q"; sleep 60) &
holder=$!
PIDS+=("$holder")
busy_on() { ss -Htn state established "dst $1 and dport = :$P" | grep -q .; }
wait_for 5 bash -c "ss -Htn state established 'dport = :$P' | grep -q ."
if busy_on 127.0.0.2; then other=fe2; else other=fe1; fi
for i in $(seq 6); do curl -fsS "http://127.0.0.1:$Q/" || fail "leastconn request $i"; done >"$T/lc"
sort "$T/lc" | uniq -c
[ "$(grep -c "$other" "$T/lc")" -eq 6 ] || fail "leastconn sent requests to the busy server"
kill $holder 2>/dev/null
proxy_stop lc
pass "balancing"
