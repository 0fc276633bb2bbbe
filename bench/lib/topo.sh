#!/usr/bin/env bash
# The benchmark's topology (sourced by bench/run): three network namespaces
# joined by veth pairs, all in 198.18.0.0/15.
#
#   client ns                balancer ns                     server ns
#   eth0 198.18.10.2   ---   cli 198.18.10.1                 
#   + 198.18.10.100-115      VIP 198.18.10.10                
#   default via .10.1        srv 198.18.20.1            ---  eth0 198.18.20.11 (S1)
#                            SNAT pool 198.18.20.21-24        + 198.18.20.12 (S2)
#                            ip_forward = 1                   default via .20.1
#
# The servers' default route goes through the balancer namespace, so the
# `direct` target (the client talking to S1/S2 itself) is routed by the
# balancer namespace's kernel, and replies to any client address come back
# the same way. Names are bench-PID-N-{c,b,s}: two runs never collide, and a
# fresh set (no TIME_WAIT anywhere) costs about half a second.

VIP=198.18.10.10
CLI=198.18.10.2
CLI_SRCS=198.18.10.100-115 # the load generators' client addresses
BAL_C=198.18.10.1
BAL_S=198.18.20.1
S1=198.18.20.11
S2=198.18.20.12
SNAT_POOL="198.18.20.21 198.18.20.22 198.18.20.23 198.18.20.24"
# Every namespace keeps this many TIME_WAIT entries (the default is 131,072
# here). A connection's TIME_WAIT lasts 60 s, and no target here makes
# 50,000 connections a second (direct, the fastest, about 17,500): 50,000 x
# 60 is room for every entry, so none is skipped. A skipped entry
# (TcpExtTCPTimeWaitOverflow) hides the collapse the new-connection runs
# exist to show, and marks their figures invalid in the report. Entries
# cost memory only when made (about 256 bytes each).
TW_BUCKETS=${TW_BUCKETS:-3000000}
TOPO_SEQ=0
TOPO_PIDS=()
NS_C="" NS_B="" NS_S=""

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

# in_ns NS CMD...: runs CMD in namespace NS.
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ns_bg NS LOG CMD...: CMD in the background in NS; its pid is kept for
# topo_down and left in BG_PID.
ns_bg() {
	local ns=$1 log=$2; shift 2
	ip netns exec "$ns" "$@" >"$log" 2>&1 &
	BG_PID=$!
	TOPO_PIDS+=("$BG_PID")
}

# wait_until SECONDS CMD...: polls CMD every 50 ms; returns 1 on timeout.
wait_until() {
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.05
	done
}

ns_listening() { in_ns "$1" ss -Htln "src $2 and sport = :$3" | grep -q LISTEN; }

# topo_up DIR: a fresh set of namespaces with their links, addresses and
# routes, the servers (nginx on S1/S2:80, iperf3 on S1:5201, idlehold on
# S1/S2:9000) started. Logs go to DIR.
topo_up() {
	local d=$1 n x
	TOPO_SEQ=$((TOPO_SEQ + 1))
	n=bench-$$-$TOPO_SEQ
	NS_C=$n-c NS_B=$n-b NS_S=$n-s
	ip netns add "$NS_C" && ip netns add "$NS_B" && ip netns add "$NS_S" ||
		die "cannot create network namespaces ($n-*)"
	ip -n "$NS_C" link add eth0 type veth peer name cli netns "$NS_B"
	ip -n "$NS_S" link add eth0 type veth peer name srv netns "$NS_B"
	topo_addrs
	in_ns "$NS_B" sysctl -qw net.ipv4.ip_forward=1
	for x in "$NS_C" "$NS_B" "$NS_S"; do
		in_ns "$x" sysctl -qw net.ipv4.tcp_max_tw_buckets="$TW_BUCKETS" ||
			die "cannot set net.ipv4.tcp_max_tw_buckets in $x"
	done
	# --no-timestamps: TCP as Windows servers run it by default (no RFC 7323
	# timestamps), so that TIME_WAIT can only be passed by sequence number.
	if [ -n "${NO_TIMESTAMPS:-}" ]; then
		for x in "$NS_C" "$NS_B" "$NS_S"; do in_ns "$x" sysctl -qw net.ipv4.tcp_timestamps=0; done
	fi
	topo_servers "$d"
}

topo_addrs() {
	local a last=${CLI_SRCS##*-}
	{
		echo "link set lo up"
		echo "addr add $CLI/24 dev eth0"
		for ((a = 100; a <= last; a++)); do echo "addr add 198.18.10.$a/24 dev eth0"; done
		echo "link set eth0 up"
		echo "route add default via $BAL_C"
	} | ip -n "$NS_C" -batch - || die "cannot configure $NS_C"
	{
		echo "link set lo up"
		echo "addr add $BAL_C/24 dev cli"
		echo "addr add $VIP/24 dev cli"
		echo "addr add $BAL_S/24 dev srv"
		for a in $SNAT_POOL; do echo "addr add $a/24 dev srv"; done
		echo "link set cli up"
		echo "link set srv up"
	} | ip -n "$NS_B" -batch - || die "cannot configure $NS_B"
	printf '%s\n' "link set lo up" "addr add $S1/24 dev eth0" "addr add $S2/24 dev eth0" \
		"link set eth0 up" "route add default via $BAL_S" | ip -n "$NS_S" -batch - ||
		die "cannot configure $NS_S"
}

# fill TEMPLATE OUT: a config template with its @VARS@ replaced.
fill() {
	sed -e "s|@DIR@|$CONF_DIR|g" -e "s|@VIP@|$VIP|g" -e "s|@S1@|$S1|g" -e "s|@S2@|$S2|g" \
		-e "s|@SIDE@|srv|g" -e "s|@MAXCONN@|$MAXCONN|g" -e "s|@NOFILE@|$NOFILE|g" -e "s|@WCONN@|$WCONN|g" -e "s|@SNAT@|${SNAT_VALUE:-auto}|g" "$1" >"$2"
}

topo_servers() {
	local d=$1
	CONF_DIR=$d
	mkdir -p "$d/html" "$d/tmp"
	# A small answer, as a health page or an API call would be.
	head -c 100 /dev/zero | tr '\0' 'x' >"$d/html/index.html"
	fill "$BENCH_DIR/configs/servers.nginx.conf" "$d/servers.conf"
	ns_bg "$NS_S" "$d/servers.log" nginx -c "$d/servers.conf" -e "$d/servers.error.log"
	ns_bg "$NS_S" "$d/iperf3.log" iperf3 -s -B "$S1" -p 5201
	ns_bg "$NS_S" "$d/idlehold.log" "$TOOLS/idlehold" serve "$S1:9000" "$S2:9000"
	wait_until 10 ns_listening "$NS_S" "$S2" 80 && wait_until 10 ns_listening "$NS_S" "$S1" 5201 &&
		wait_until 10 ns_listening "$NS_S" "$S2" 9000 ||
		die "the servers did not start (logs in $d)"
}

# stop_pids PID...: TERM, then KILL whatever is left after 3 s.
stop_pids() {
	local p
	for p in "$@"; do kill "$p" 2>/dev/null; done
	for p in "$@"; do
		timeout 3 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null
	done
	wait "$@" 2>/dev/null
}

# topo_down: every process started in the topology, then its namespaces.
topo_down() {
	[ ${#TOPO_PIDS[@]} -eq 0 ] || stop_pids "${TOPO_PIDS[@]}"
	TOPO_PIDS=()
	local ns
	for ns in "$NS_C" "$NS_B" "$NS_S"; do
		[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
	done
	NS_C="" NS_B="" NS_S=""
}

# topo_cleanup_all: the EXIT trap's last resort; also kills anything still
# running inside this run's namespaces.
topo_cleanup_all() {
	topo_down
	local ns p
	for ns in $(ip netns list 2>/dev/null | awk -v p="bench-$$-" 'index($1, p) == 1 {print $1}'); do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
}
