#!/usr/bin/env bash
# The HA lab: network namespaces for a VRRP pair (keepalived) and for an
# ECMP group (BIRD 2 over BGP), each node running snatproxy with the configs
# of config/ha/, a client opening connections and holding some open
# (tests/lab/haclient.py). Sourced by tests/lab/ha-demo and by the tests
# tests/integration/ha_*.sh. Needs root.
#
# VRRP:  client 198.18.10.2, nodes a 198.18.10.11 and b 198.18.10.12, the
#        VIP 198.18.10.10, servers 198.18.10.31 and .32: one LAN (a bridge
#        in namespace sw).
# ECMP:  client 198.18.12.2 -- router 198.18.12.1 / 198.18.10.1 -- nodes
#        198.18.10.11..13 (VIP 198.18.11.10/32 on lo, announced over BGP),
#        servers 198.18.10.31 and .32 on the nodes' LAN.
# Namespaces are named snha<pid>-ROLE: unique per run; addresses are the
# same in every run, each run has namespaces of its own. HA_DIR holds the
# configs, pid files, sockets and logs of the run; ha_down (on EXIT) kills
# every process it started and deletes the namespaces.

HA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/nginx.sh
. "$HA_ROOT/tests/nginx.sh"
HA_ID=snha$$
HA_PIDS=()
HA_NS=()
HA_VRRP_VIP=198.18.10.10
HA_ECMP_VIP=198.18.11.10
HA_CLIENT_OPEN=${HA_CLIENT_OPEN:-20}

ha_log() { [ -n "${HA_QUIET:-}" ] || echo "ha: $*" >&2; }
ha_die() { echo "ha: $*" >&2; exit 1; }

# ha_init [DIR]: the run's directory and the cleanup on exit; with DIR (a
# test's, under lib.sh), the caller's trap calls ha_reset.
ha_init() {
	if [ -n "${1:-}" ]; then
		HA_DIR=$1
		mkdir -p "$HA_DIR"
		return
	fi
	HA_DIR=$(mktemp -d "/tmp/snatproxy-ha.XXXXXX")
	chmod 755 "$HA_DIR"
	trap ha_down EXIT
	trap 'exit 1' INT TERM
}

# ha_reset: stops every process and deletes every namespace of the run.
ha_reset() {
	local pid ns
	for pid in "${HA_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${HA_PIDS[@]}"; do
		timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# whatever a namespace still runs (nginx workers) dies with it
	for ns in "${HA_NS[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	HA_PIDS=()
	HA_NS=()
}

ha_down() {
	ha_reset
	[ -n "${HA_KEEP:-}" ] || rm -rf "$HA_DIR"
}

# ha_bg NAME NS CMD...: CMD in namespace NS, in the background, output in
# HA_DIR/NAME.log; its pid in HA_PID_NAME.
ha_bg() {
	local name=$1 ns=$2; shift 2
	ip netns exec "$HA_ID-$ns" "$@" >"$HA_DIR/$name.log" 2>&1 &
	HA_PIDS+=($!)
	eval "HA_PID_${name//[^A-Za-z0-9_]/_}=$!"
}
ha_pid() { eval echo "\$HA_PID_${1//[^A-Za-z0-9_]/_}"; }
in_ns() { local ns=$1; shift; ip netns exec "$HA_ID-$ns" "$@"; }

ha_wait() { # SECONDS CMD...
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt "$end" ] || return 1
		sleep 0.05
	done
}

ha_ns() {
	ip netns add "$HA_ID-$1" || ha_die "cannot create namespace $HA_ID-$1"
	HA_NS+=("$HA_ID-$1")
	in_ns "$1" ip link set lo up
}

# ha_port NS ADDR/LEN SWITCH PORT [IFNAME]: NS's interface (eth0) on the
# bridge of namespace SWITCH, through its port PORT.
ha_port() {
	local ns=$1 addr=$2 sw=$3 port=$4 ifname=${5:-eth0}
	ip link add "$ifname" netns "$HA_ID-$ns" type veth peer name "$port" netns "$HA_ID-$sw" ||
		ha_die "cannot link $ns to $sw"
	in_ns "$sw" ip link set "$port" master br0 up
	in_ns "$ns" ip addr add "$addr" dev "$ifname"
	in_ns "$ns" ip link set "$ifname" up
}

ha_switch() {
	ha_ns "$1"
	in_ns "$1" ip link add br0 type bridge
	in_ns "$1" ip link set br0 up
}

# ha_servers NS ADDR...: nginx answering every request with the address it
# came from (the SNAT address of the node that carried it).
ha_servers() {
	local ns=$1 d="$HA_DIR/nginx" listen="" a; shift
	for a in "$@"; do listen+="listen $a:80 reuseport; "; done
	nginx_conf "$d" 4096 warn <<-EOF
		access_log off;
		keepalive_timeout 600s;
		keepalive_requests 1000000;
		server {
		    $listen
		    location / { default_type text/plain; return 200 "\$remote_addr\n"; }
		}
	EOF
	ha_bg nginx "$ns" nginx -c "$d/nginx.conf" -e "$d/error.log"
	ha_wait 10 in_ns "$ns" ss -Htln "sport = :80" || ha_die "nginx did not start (see $d/error.log)"
}

# ha_proxy NODE VIP: snatproxy in namespace NODE with config/ha/snatproxy.ini,
# its own address as NODE_SNAT.
ha_proxy() {
	local node=$1 vip=$2 addr
	addr=$(ha_addr "$node")
	HA_BIN=${HA_BIN:-$HA_ROOT/build/snatproxy}
	ha_bg "proxy-$node" "$node" env VIP="$vip" NODE_SNAT="$addr" "$HA_BIN" \
		-c "$HA_ROOT/config/ha/snatproxy.ini"
	ha_wait 10 grep -q 'worker(s)' "$HA_DIR/proxy-$node.log" ||
		ha_die "snatproxy on $node did not start: $(tail -3 "$HA_DIR/proxy-$node.log")"
}

ha_addr() {
	case $1 in
	a | n1) echo 198.18.10.11 ;;
	b | n2) echo 198.18.10.12 ;;
	n3) echo 198.18.10.13 ;;
	esac
}


ha_ready() { [ "$(in_ns "$1" curl -s -m 1 -o /dev/null -w '%{http_code}' http://127.0.0.1:9900/ready)" = 200 ]; }

# ---- VRRP ----

ha_vrrp_up() {
	command -v keepalived >/dev/null || ha_die "keepalived is not installed (make deps)"
	ha_switch sw
	for n in client a b srv; do ha_ns "$n"; done
	ha_port client 198.18.10.2/24 sw p-client
	ha_port a 198.18.10.11/24 sw p-a
	ha_port b 198.18.10.12/24 sw p-b
	ha_port srv 198.18.10.31/24 sw p-srv
	in_ns srv ip addr add 198.18.10.32/24 dev eth0
	ha_servers srv 198.18.10.31 198.18.10.32
	for n in a b; do
		# the VIP is on one node at a time: the other binds it anyway
		in_ns "$n" sysctl -qw net.ipv4.ip_nonlocal_bind=1
		ha_proxy "$n" "$HA_VRRP_VIP"
		ha_keepalived "$n"
	done
	ha_wait 15 ha_vrrp_master_is_set || ha_die "no node took the VIP (see $HA_DIR/keepalived-*.log)"
	ha_wait 10 in_ns client curl -sf -m 1 "http://$HA_VRRP_VIP/" ||
		ha_die "the client cannot reach the VIP"
}

ha_keepalived() {
	local n=$1 peer=b run="$HA_DIR/ka-$1"
	[ "$n" = b ] && peer=a
	mkdir -p "$run"
	sed -e "s|@NODE@|$n|; s|@ADDR@|$(ha_addr "$n")|; s|@PEER@|$(ha_addr $peer)|; s|@RUN@|$run|" \
		"$HA_ROOT/config/ha/keepalived.conf" >"$run/keepalived.conf"
	# Its own pid files and no syslog: nothing shared with a packaged
	# keepalived or another run.
	ha_bg "keepalived-$n" "$n" keepalived -n -l -D -P -f "$run/keepalived.conf" \
		-p "$run/keepalived.pid" -r "$run/vrrp.pid"
	ha_bg "poller-$n" "$n" "$HA_ROOT/config/ha/ready-poller" http://127.0.0.1:9900/ready file \
		"$run/notready"
}

# The node holding the VIP, or nothing.
ha_vrrp_master() {
	local n
	for n in a b; do
		in_ns "$n" ip -4 -o addr show dev eth0 2>/dev/null | grep -q " $HA_VRRP_VIP/" && echo "$n"
	done
}
ha_vrrp_master_is_set() { [ "$(ha_vrrp_master | wc -l)" = 1 ]; }
ha_other() { if [ "$1" = a ]; then echo b; else echo a; fi; }

# ---- ECMP ----

ha_ecmp_up() {
	command -v bird >/dev/null || ha_die "bird (bird2) is not installed (make deps)"
	local nodes=${1:-3} i
	HA_ECMP_NODES=()
	for ((i = 1; i <= nodes; i++)); do HA_ECMP_NODES+=("n$i"); done
	ha_switch sw
	for n in client router srv "${HA_ECMP_NODES[@]}"; do ha_ns "$n"; done
	ip link add eth0 netns "$HA_ID-client" type veth peer name eth0 netns "$HA_ID-router"
	in_ns client ip addr add 198.18.12.2/24 dev eth0
	in_ns client ip link set eth0 up
	in_ns client ip route add default via 198.18.12.1
	in_ns router ip addr add 198.18.12.1/24 dev eth0
	in_ns router ip link set eth0 up
	ha_port router 198.18.10.1/24 sw p-router eth1
	in_ns router sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
	ha_port srv 198.18.10.31/24 sw p-srv
	in_ns srv ip addr add 198.18.10.32/24 dev eth0
	ha_servers srv 198.18.10.31 198.18.10.32
	ha_bird router "$HA_ROOT/config/ha/bird-router.conf"
	for n in "${HA_ECMP_NODES[@]}"; do
		ha_port "$n" "$(ha_addr "$n")/24" sw "p-$n"
		in_ns "$n" ip addr add "$HA_ECMP_VIP/32" dev lo
		in_ns "$n" ip route add default via 198.18.10.1
		ha_proxy "$n" "$HA_ECMP_VIP"
		ha_bird "$n" "$HA_ROOT/config/ha/bird-node.conf"
		ha_bg "poller-$n" "$n" env DRAIN_DEADLINE="${HA_DRAIN_DEADLINE:-5}" \
			"$HA_ROOT/config/ha/ready-poller" http://127.0.0.1:9900/ready bird \
			"$HA_DIR/bird-$n/bird.ctl" vip
	done
	ha_wait 20 ha_ecmp_paths_are "$nodes" ||
		ha_die "the router has not $nodes paths to the VIP: $(in_ns router ip route show "$HA_ECMP_VIP")"
	ha_wait 10 in_ns client curl -sf -m 1 "http://$HA_ECMP_VIP/" ||
		ha_die "the client cannot reach the VIP"
}

# ha_bird NS TEMPLATE: BIRD with its own config, socket and pid file.
ha_bird() {
	local ns=$1 run="$HA_DIR/bird-$1"
	mkdir -p "$run"
	sed "s|@ADDR@|$(ha_addr "$ns")|g" "$2" >"$run/bird.conf"
	ha_bg "bird-$ns" "$ns" bird -f -c "$run/bird.conf" -s "$run/bird.ctl" -P "$run/bird.pid"
	ha_wait 10 test -S "$run/bird.ctl" || ha_die "bird did not start in $ns"
}

# The router's next hops toward the VIP.
ha_ecmp_paths() {
	in_ns router ip route show "$HA_ECMP_VIP" | grep -o 'via [0-9.]*' | wc -l
}
ha_ecmp_paths_are() { [ "$(ha_ecmp_paths)" = "$1" ]; }

# ---- measuring ----

# ha_measure NAME DURATION VIP ACTION...: runs the client for DURATION
# seconds; once its open connections are up and a second has passed, runs
# ACTION (and records the time). The figures: haclient.py --report, in
# HA_DIR/NAME.txt and on stdout.
ha_measure() {
	local name=$1 duration=$2 vip=$3 out; shift 3
	out="$HA_DIR/$name.json"
	rm -f "$out" "$out.ready" "$HA_DIR/$name.event"
	ha_bg "client-$name" client python3 "$HA_ROOT/tests/lab/haclient.py" "$vip" 80 "$out" \
		--open "$HA_CLIENT_OPEN" --duration "$duration" --event "$HA_DIR/$name.event"
	ha_wait 15 test -e "$out.ready" || ha_die "the client did not open its connections"
	sleep 1
	date +%s.%N >"$HA_DIR/$name.event"
	"$@"
	wait "$(ha_pid "client-$name")" || ha_die "the client failed: $(tail -3 "$HA_DIR/client-$name.log")"
	python3 "$HA_ROOT/tests/lab/haclient.py" --report "$out" | tee "$HA_DIR/$name.txt"
}

# ha_field FILE KEY: one figure of a report.
ha_field() { tr ' ' '\n' <"$HA_DIR/$1.txt" | sed -n "s/^$2=//p"; }

# ha_open NAME ADDR [others]: "BROKEN/OPEN" of the open connections through
# the node of ADDR (with `others`: through every other node).
ha_open() {
	ha_field "$1" open | tr ',' '\n' | awk -F: -v a="$2" -v o="${3:-}" '
		($1 == a) == (o == "") { n += $2; b += $3 } END { printf "%d/%d\n", b, n }'
}

# ha_last NAME ADDR: ms after the action when the node of ADDR last took a
# new connection.
ha_last() { ha_field "$1" last | tr ',' '\n' | awk -F: -v a="$2" '$1 == a { print $2 }'; }

# ha_stop NAME [SIGNAL]: stops a process ha_bg started, and reaps it quietly.
ha_stop() {
	local pid
	pid=$(ha_pid "$1")
	kill "-${2:-KILL}" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# Both nodes ready, one holding the VIP, and a second for keepalived to see
# the poller's word (it says it again every second).
ha_vrrp_settle() {
	ha_wait 20 ha_ready a && ha_wait 20 ha_ready b && ha_wait 20 ha_vrrp_master_is_set ||
		ha_die "the pair did not settle: $(ha_vrrp_master)"
	sleep 1.2
}

# Every node ready and announced.
ha_ecmp_settle() {
	local n
	for n in "${HA_ECMP_NODES[@]}"; do ha_wait 20 ha_ready "$n" || ha_die "$n is not ready"; done
	ha_wait 30 ha_ecmp_paths_are "${#HA_ECMP_NODES[@]}" ||
		ha_die "the router has $(ha_ecmp_paths) paths, not ${#HA_ECMP_NODES[@]}"
}

ha_post() { in_ns "$1" curl -s -m 2 -o /dev/null -X POST "http://127.0.0.1:9900/$2"; }

# ha_watch_withdraw ADDR NAME: in the background, notes in HA_DIR/NAME.gone
# when the router's route to the VIP loses its next hop ADDR (10 ms steps,
# for at most 20 s); ha_gone_ms NAME: how long after the action that was.
ha_watch_withdraw() {
	(
		end=$((SECONDS + 20))
		while in_ns router ip route show "$HA_ECMP_VIP" | grep -q "via $1 " && [ $SECONDS -lt $end ]; do
			sleep 0.01
		done
		date +%s.%N >"$HA_DIR/$2.gone"
	) &
}
ha_gone_ms() {
	[ -s "$HA_DIR/$1.gone" ] && [ -s "$HA_DIR/$1.event" ] || { echo -; return; }
	echo "$(cat "$HA_DIR/$1.gone") $(cat "$HA_DIR/$1.event")" | awk '{ printf "%d\n", ($1 - $2) * 1000 }'
}
