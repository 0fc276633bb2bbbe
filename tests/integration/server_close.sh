#!/usr/bin/env bash
# When the server closes first, the proxy ends the server connection with a
# reset once the client has closed too, so that no TIME_WAIT is left on the
# server for the proxy's SNAT address and port (docs/snat.md: new-connection
# rates). When the client closes first, the ordinary FIN handshake is kept.
# In a namespace of its own, so that the TCP counters are this test's alone.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need nginx ss nstat
P=$(pick_port); V=$(pick_port); E=$(pick_port); W=$(pick_port)
nginx_start web 127.0.0.2 "$P"
bg echo "$TOOLS/streamer" serve "127.0.0.2:$E" echo
wait_for 5 listening 127.0.0.2 "$E"
cat >"$T/p.ini" <<CFG
[global]
workers = 1
max_connections = 1000
[pool web]
server = web 127.0.0.2:$P
[vip web]
listen = 127.0.0.1:$V
pool = web
[pool echo]
server = echo 127.0.0.2:$E
[vip echo]
listen = 127.0.0.1:$W
pool = echo
CFG
proxy_start proxy "$T/p.ini"
server_tw() { ss -Htan state time-wait "( src 127.0.0.2 and sport = :$P )" | wc -l; }
N=20

info "HTTP/1.0: the server closes first, the client after reading to the end"
before=$(server_tw)
for i in $(seq $N); do
	exec 3<>"/dev/tcp/127.0.0.1/$V"
	printf 'GET / HTTP/1.0\r\n\r\n' >&3
	reply=$(cat <&3)
	exec 3>&-
	[[ $reply == "HTTP/1.1 200 OK"*web* ]] || fail "request $i: incomplete reply: $reply"
done
wait_for 5 bash -c "[ \$(grep -c 'end=server-closed' '$T/proxy.log') -ge $N ]"
after=$(server_tw)
echo "server-side TIME_WAIT: $before before, $after after $N connections"
[ "$after" -le "$before" ] || fail "the server holds $((after - before)) connections in TIME_WAIT"

info "the client closes first (half-close, then the echo server closes): orderly, no reset"
aborts() { nstat -az TcpExtTCPAbortOnData | awk 'NR > 1 {print $2}'; }
# The proxy queues its closes after it logs a connection's end: count from
# once the first part's have all reached the kernel (the counter still).
a0=$(aborts)
for _ in $(seq 20); do
	sleep 0.25
	[ "$(aborts)" = "$a0" ] && break
	a0=$(aborts)
done
"$TOOLS/streamer" run "127.0.0.1:$W" --conns 5 --bytes 100000 --timeout 10 || fail "echo through the proxy"
wait_for 5 bash -c "[ \$(grep -c 'vip=echo .*end=client-closed' '$T/proxy.log') -ge 5 ]"
a1=$(aborts)
echo "zero-linger closes in this namespace: $a0 before, $a1 after"
[ "$a1" -eq "$a0" ] || fail "a client-first close ended with a reset"
proxy_stop proxy
pass "server-first closes leave no TIME_WAIT on the server; client-first closes stay orderly"
