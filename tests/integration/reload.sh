#!/usr/bin/env bash
# SIGHUP reload: a reload every second for 20 s under continuous load loses
# no connection and no byte (byte-exact streams that span every reload, and
# a loop of HTTP requests that must all succeed); VIPs come and go; a weight
# change is applied; an invalid config is logged and changes nothing.
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh's bg (through eval)
. "$(dirname "$0")/../lib.sh"
need nginx curl

P=$(pick_port); E=$(pick_port); V=$(pick_port); W=$(pick_port); X=$(pick_port); ADM=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe2 127.0.0.3 "$P"
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo
wait_for 5 listening 127.0.0.2 "$E"
# WITH_EXTRA_VIP=yes also replaces the echo pool's only server: streams
# opened before stay on theirs.
config() { # WEIGHT_OF_FE1 WITH_EXTRA_VIP
	cat <<-CFG
	[global]
	workers = 2
	max_connections = 2000
	admin = 127.0.0.1:$ADM
	[pool web]
	server = fe1 127.0.0.2:$P weight=$1
	server = fe2 127.0.0.3:$P
	[pool echo]
	server = $([ "$2" = yes ] && echo "elsewhere 127.0.0.9:1" || echo "e1 127.0.0.2:$E")
	[vip web]
	listen = 127.0.0.1:$V
	pool = web
	timeout_idle = ${1}m
	[vip echo]
	listen = 127.0.0.1:$W
	pool = echo
	CFG
	[ "$2" = yes ] && printf '[vip extra]\nlisten = 127.0.0.1:%s\npool = web\n' "$X"
	return 0
}
reloads() { grep -c 'SIGHUP: .* reloaded' "$T/proxy.log"; }
# reload: sends SIGHUP and waits until the proxy says it reloaded.
reload() {
	local before
	before=$(reloads)
	kill -HUP "$PID_proxy"
	wait_for 5 eval '[ "$(reloads)" -gt '"$before"' ]'
}
count() { wc -l <"$T/$1.access"; }

config 1 no >"$T/p.ini"
proxy_start proxy "$T/p.ini"

info "20 reloads, one a second, under load: streams and requests all complete"
# 8 streams of 28 MB each way, read at 5 MB/s in all: about 45 s, so every
# stream is open across the reloads (20 to 25 s here, 30 s when three
# builds' suites share 2 cores).
"$TOOLS/streamer" run "127.0.0.1:$W" --conns 8 --bytes 28000000 --rate 5000000 --timeout 150 \
	>"$T/streams.out" 2>&1 &
streams=$!
PIDS+=("$streams")
# All 8 connected to e1 before the first reload replaces the echo pool.
e1_active() { curl -fsS -m 5 "http://127.0.0.1:$ADM/metrics" | grep -qx 'snatproxy_server_connections_active{pool="echo",server="e1"} 8'; }
wait_for 10 e1_active
: >"$T/loop.out"
(while [ ! -e "$T/stop" ]; do
	curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null 2>>"$T/loop.out" || echo "request failed" >>"$T/loop.out"
	echo ok >>"$T/loop.ok"
done) &
loop=$!
PIDS+=("$loop")
t0=$SECONDS
for i in $(seq 20); do
	if [ $((i % 2)) -eq 1 ]; then config 2 yes; else config 1 no; fi >"$T/p.ini"
	reload
	sleep 1
done
touch "$T/stop"
wait "$loop"
[ ! -s "$T/loop.out" ] || fail "requests failed during reloads: $(sort "$T/loop.out" | uniq -c | head -5)"
info "$(wc -l <"$T/loop.ok") requests in $((SECONDS - t0)) s of reloads, none failed"
kill -0 "$streams" 2>/dev/null || fail "the streams ended before the last reload: $(cat "$T/streams.out")"
wait "$streams" || fail "streams across reloads: $(cat "$T/streams.out")"
cat "$T/streams.out"
[ "$(reloads)" -eq 20 ] || fail "$(reloads) reloads logged, expected 20"
grep -E 'WARN|ERROR' "$T/proxy.log" | grep -v 'file descriptors' && fail "warnings or errors during reloads"

info "a VIP added by reload listens, and stops when removed"
config 1 yes >"$T/p.ini"
reload
curl -fsS -m 5 "http://127.0.0.1:$X/" | grep -q '^fe' || fail "added VIP extra does not answer"
config 1 no >"$T/p.ini"
reload
wait_for 5 eval '! listening 127.0.0.1 '"$X"
curl -sS -m 5 "http://127.0.0.1:$X/" 2>/dev/null && fail "removed VIP extra still answers"

info "weight change: fe1 weight 3 gets 3 of every 4 new connections"
config 3 no >"$T/p.ini"
reload
a1=$(count fe1); a2=$(count fe2)
for i in $(seq 40); do curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || fail "request $i"; done
d1=$(($(count fe1) - a1)); d2=$(($(count fe2) - a2))
info "fe1 $d1, fe2 $d2"
[ "$d1" -eq 30 ] && [ "$d2" -eq 10 ] || fail "weights 3:1 gave fe1 $d1 and fe2 $d2 of 40"
curl -fsS -m 5 "http://127.0.0.1:$ADM/metrics" | grep -q '^snatproxy_server_weight{pool="web",server="fe1"} 3$' ||
	fail "metrics do not show the new weight"

info "an invalid config is logged with its errors and changes nothing"
cp "$T/p.ini" "$T/good.ini"
{ config 1 no; printf '[pool broken]\nserver = x not-an-address\nbalance = sometimes\n'; } >"$T/p.ini"
kill -HUP "$PID_proxy"
wait_for 5 grep -q "SIGHUP: $T/p.ini: invalid; keeping the running configuration" "$T/proxy.log"
grep -q "SIGHUP: $T/p.ini:[0-9]*: .*not-an-address" "$T/proxy.log" || fail "the error is not logged with its line"
grep -q "SIGHUP: $T/p.ini:[0-9]*: .*sometimes" "$T/proxy.log" || fail "the second error is not logged"
a1=$(count fe1); a2=$(count fe2)
for i in $(seq 8); do curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || fail "request $i after invalid reload"; done
[ $(($(count fe1) - a1)) -eq 6 ] || fail "weights changed by an invalid reload"

info "a reload that cannot bind a new address changes nothing"
{ config 1 no; printf '[vip elsewhere]\nlisten = 192.0.2.1:%s\npool = web\n' "$X"; } >"$T/p.ini"
kill -HUP "$PID_proxy"
wait_for 5 grep -q "SIGHUP: $T/p.ini: cannot listen on every address; keeping the running configuration" "$T/proxy.log"
curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || fail "VIP web after a refused reload"

info "workers cannot change on reload"
sed 's/^workers = 2/workers = 1/' "$T/good.ini" >"$T/p.ini"
kill -HUP "$PID_proxy"
wait_for 5 grep -q 'workers, buffers and buffer_size change only at a restart' "$T/proxy.log"
proxy_stop proxy
pass "reload"
