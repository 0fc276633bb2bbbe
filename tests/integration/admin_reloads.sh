#!/usr/bin/env bash
# shellcheck disable=SC2154 # PID_proxy: set by lib.sh's bg
# Reloads faster than the admin endpoint's thread wakes (it looks for a new
# generation every 250 ms at most): each replaced generation is still freed.
# Before, a generation handed to the admin endpoint and replaced before it
# was taken kept its reference for ever (about 5 KB each, RSS +2.6 MiB over
# 400 reloads).
. "$(dirname "$0")/../lib.sh"
need curl

A=$(pick_port); P=$(pick_port); V=$(pick_port)
cat >"$T/p.ini" <<CFG
[global]
workers = 2
admin = 127.0.0.1:$A
drain_delay = 0
[pool p]
server = a 127.0.0.2:$P
[vip v]
listen = 127.0.0.1:$V
pool = p
CFG
bg proxy "$SNATPROXY" -v -c "$T/p.ini"
wait_for 10 grep -q "worker(s)" "$T/proxy.log"
n=200
info "$n reloads 10 ms apart, the admin endpoint answering meanwhile"
for _ in $(seq $n); do
	kill -HUP "$PID_proxy"
	sleep 0.01
done
curl -fsS -m 5 "http://127.0.0.1:$A/stats" >/dev/null || fail "admin endpoint after the reloads"
freed() { grep -c 'replaced by SIGHUP has no connection left: freed' "$T/proxy.log"; }
reloaded() { grep -c 'SIGHUP: .* reloaded' "$T/proxy.log"; }
# Signals sent close together may be merged into one: count the reloads
# that happened. Every generation replaced must be freed, but the first: it
# holds what outlives generations (counters, worker figures) until exit.
all_freed() { [ "$(freed)" -ge $(($(reloaded) - 1)) ]; }
for _ in $(seq 100); do all_freed && break; sleep 0.1; done
echo "$(reloaded) reloads, $(freed) generations freed"
[ "$(reloaded)" -ge 20 ] || fail "only $(reloaded) reloads happened: the test proves little"
all_freed || fail "$(($(reloaded) - 1 - $(freed))) replaced generation(s) never freed"
proxy_stop proxy
pass "generations replaced faster than the admin endpoint looks are freed"
