#!/usr/bin/env bash
# A reset is relayed as a reset, both ways (README, docs/engine.md step 6):
# a server that resets in the middle of a stream (SO_LINGER {1, 0}) gives the
# client ECONNRESET, and a client that resets reaches the server as a reset,
# not as a FIN. A server killed mid-stream: killed while its client uploads
# (unread data in its socket), its kernel sends a reset, which reaches the
# client as one; killed while it only sends (nothing unread), its kernel
# ends the stream with a FIN, and the client gets a clean early EOF with
# every byte that came before it intact.
# shellcheck disable=SC2154 # PID_NAME is set by bg (lib.sh)
. "$(dirname "$0")/../lib.sh"
R=$(pick_port); E=$(pick_port); K=$(pick_port); D=$(pick_port)
VR=$(pick_port); VE=$(pick_port); VK=$(pick_port); VD=$(pick_port)
bg rst "$TOOLS/streamer" serve "127.0.0.2:$R" source 100000000 --reset-after 1000000
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo --ends
bg killed_echo "$TOOLS/streamer" serve "127.0.0.2:$K" echo
bg killed_source "$TOOLS/streamer" serve "127.0.0.2:$D" source 1000000000
for p in "$R" "$E" "$K" "$D"; do wait_for 5 listening 127.0.0.2 "$p"; done
cat >"$T/p.ini" <<CFG
[global]
workers = 2
[pool rst]
server = rst 127.0.0.2:$R
[pool echo]
server = echo 127.0.0.2:$E
[pool killed_echo]
server = killed_echo 127.0.0.2:$K
[pool killed_source]
server = killed_source 127.0.0.2:$D
[vip rst]
listen = 127.0.0.1:$VR
pool = rst
[vip echo]
listen = 127.0.0.1:$VE
pool = echo
[vip killed_echo]
listen = 127.0.0.1:$VK
pool = killed_echo
[vip killed_source]
listen = 127.0.0.1:$VD
pool = killed_source
CFG
proxy_start proxy "$T/p.ini"
# received OUTPUT-FILE: the bytes a streamer run received, from its last line.
received() { sed -n 's/.*received=\([0-9]*\).*/\1/p' "$1" | tail -n 1; }

info "a server resets after 1 MB of a download: 4 clients each get ECONNRESET"
"$TOOLS/streamer" run "127.0.0.1:$VR" --conns 4 --download 100000000 --expect reset --timeout 20 \
	>"$T/rst.out" 2>&1 || { cat "$T/rst.out"; fail "a server's reset did not reach its client as a reset"; }
cat "$T/rst.out"
# What the client got is byte-exact (checked by streamer) and no more than
# the server sent; the reset may discard what the proxy still held for it.
[ "$(received "$T/rst.out")" -le 4000000 ] || fail "the clients got more than the servers sent"
wait_for 5 lines_at_least 4 "$T/proxy.log" 'conn vip=rst .* end=server-reset'

info "4 clients reset once their 1 MB echo is back: the server sees 4 resets, no FIN"
"$TOOLS/streamer" run "127.0.0.1:$VE" --conns 4 --bytes 1000000 --reset --timeout 20 >"$T/crst.out" 2>&1 ||
	{ cat "$T/crst.out"; fail "the echo before the client's reset failed"; }
cat "$T/crst.out"
wait_for 5 lines_at_least 4 "$T/echo.log" '^end '
grep '^end ' "$T/echo.log"
[ "$(grep -c '^end .* got=1000000 how=reset$' "$T/echo.log")" -eq 4 ] ||
	fail "the server did not see the clients' resets as resets: $(grep '^end ' "$T/echo.log" | tr '\n' ';')"
wait_for 5 lines_at_least 4 "$T/proxy.log" 'conn vip=echo .* end=client-reset'

info "a server killed while its client uploads: the client gets ECONNRESET"
# Stopped first, so that its socket surely holds bytes it has not read
# (Recv-Q > 0) when it is killed: its kernel then answers with a reset.
"$TOOLS/streamer" run "127.0.0.1:$VK" --bytes 200000000 --rate 4000000 --expect reset --timeout 30 \
	>"$T/kecho.out" 2>&1 &
client=$!
PIDS+=("$client")
wait_for 5 bash -c "ss -Htn '( sport = :$K )' | grep -q ."
sleep 0.3 # the client reads some of the echo
kill -STOP "$PID_killed_echo"
unread() { ss -Htn "( sport = :$K )" | awk '$2 > 0 {f = 1} END {exit !f}'; }
wait_for 5 unread
kill -KILL "$PID_killed_echo"
rc=0; wait "$client" || rc=$?
cat "$T/kecho.out"
[ "$rc" -eq 0 ] || fail "the client of a killed server did not get a reset (exit $rc)"
[ "$(received "$T/kecho.out")" -gt 0 ] || fail "the client got nothing before the kill: not mid-stream"
wait_for 5 grep -qE 'conn vip=killed_echo .* end=server-reset' "$T/proxy.log"

info "a server killed while it sends a download: the client gets an early, clean EOF"
"$TOOLS/streamer" run "127.0.0.1:$VD" --download 1000000000 --rate 20000000 --expect eof --timeout 30 \
	>"$T/ksrc.out" 2>&1 &
client=$!
PIDS+=("$client")
wait_for 5 bash -c "ss -Htn '( sport = :$D )' | grep -q ."
sleep 0.5
kill -KILL "$PID_killed_source"
rc=0; wait "$client" || rc=$?
cat "$T/ksrc.out"
[ "$rc" -eq 0 ] || fail "the client of a killed source did not get an early EOF (exit $rc)"
[ "$(received "$T/ksrc.out")" -gt 0 ] || fail "the client got nothing before the kill: not mid-stream"
grep -E 'conn vip=killed' "$T/proxy.log"
proxy_stop proxy
pass "resets relayed as resets both ways; killed servers end their clients' streams"
