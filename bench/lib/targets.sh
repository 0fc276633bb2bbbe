#!/usr/bin/env bash
# shellcheck disable=SC2034 # the variables target_start sets (HTTP_URL, RUN_NS, CONF_DIR...) are read by workloads.sh, topo.sh's fill and bench/run
# The targets (sourced by bench/run). target_start NAME DIR starts NAME in
# the balancer namespace of the current topology and sets:
#   HTTP_URL   what wrk aims at (one address)
#   HTTP_DSTS  what loadgen spreads over (comma-separated HOST:PORT)
#   IPERF_HOST IPERF_PORT   the iperf3 server as the client sees it
#   IDLE_DST   the idle-connection server (empty: not measured)
#   BAL_PID    the balancer's main process (empty: no process to weigh)
#   RUN_NS     the namespace the clients run in ("" = the current one)
# Each local target gets the same servers, timeouts (connect 5 s, idle
# 30 min), round robin over S1 and S2, one worker/thread per core, no logs.

LOCAL_TARGETS=(direct kernel-nat haproxy nginx snatproxy snatproxy-pool)
declare -A EXT_TARGETS=()

target_is_local() { local t; for t in "${LOCAL_TARGETS[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

target_vip_defaults() {
	HTTP_URL=http://$VIP:80/ HTTP_DSTS=$VIP:80 IPERF_HOST=$VIP IPERF_PORT=5201
	IDLE_DST=$VIP:9000 RUN_NS=$NS_C
}

target_start() {
	local name=$1 d=$2
	BAL_PID="" CONF_DIR=$d
	if [ -n "${EXT_TARGETS[$name]:-}" ]; then
		target_start_external "$name"
		return
	fi
	target_vip_defaults
	case $name in
	direct)
		HTTP_URL=http://$S1:80/ HTTP_DSTS=$S1:80,$S2:80 IPERF_HOST=$S1 IDLE_DST="" ;;
	kernel-nat)
		fill "$BENCH_DIR/configs/kernel-nat.nft" "$d/kernel-nat.nft"
		in_ns "$NS_B" nft -f "$d/kernel-nat.nft" || die "nft -f $d/kernel-nat.nft failed"
		IDLE_DST="" ;;
	haproxy)
		fill "$BENCH_DIR/configs/haproxy.cfg" "$d/haproxy.cfg"
		ns_bg "$NS_B" "$d/haproxy.log" haproxy -db -f "$d/haproxy.cfg"
		BAL_PID=$BG_PID ;;
	nginx)
		fill "$BENCH_DIR/configs/nginx-stream.conf" "$d/nginx-stream.conf"
		ns_bg "$NS_B" "$d/nginx-stream.log" nginx -c "$d/nginx-stream.conf" -e "$d/nginx-stream.error.log"
		BAL_PID=$BG_PID ;;
	snatproxy | snatproxy-pool)
		SNAT_VALUE=auto
		[ "$name" = snatproxy-pool ] && SNAT_VALUE=$SNAT_POOL
		fill "$BENCH_DIR/configs/snatproxy.ini" "$d/snatproxy.ini"
		ns_bg "$NS_B" "$d/snatproxy.log" "$SNATPROXY" -c "$d/snatproxy.ini"
		BAL_PID=$BG_PID ;;
	*) die "unknown target '$name'" ;;
	esac
	if [ -n "$BAL_PID" ]; then
		wait_until 10 ns_listening "$NS_B" "$VIP" 9000 ||
			die "$name did not start listening on $VIP:9000 (log: $d/$name*.log)"
	fi
}

# --target NAME=HOST:PORT: the client workloads from this namespace against
# an external VIP. Bulk needs --iperf PORT (an iperf3 server behind the VIP);
# idle memory and CPU cannot be read from here.
target_start_external() {
	local hp=${EXT_TARGETS[$1]}
	HTTP_URL=http://$hp/ HTTP_DSTS=$hp IPERF_HOST=${hp%:*} IPERF_PORT=${EXT_IPERF_PORT:-}
	IDLE_DST="" RUN_NS=""
}

# The balancer's processes: BAL_PID and its children (nginx's workers).
bal_pids() {
	[ -n "$BAL_PID" ] || return 0
	echo "$BAL_PID"
	ps -o pid= --ppid "$BAL_PID" 2>/dev/null
}

# CPU seconds (user + system) used so far by the balancer's processes.
bal_cpu() {
	local hz p sum=0 st
	hz=$(getconf CLK_TCK)
	for p in $(bal_pids); do
		[ -r "/proc/$p/stat" ] || continue
		read -r -a st <"/proc/$p/stat"
		# Fields 14 and 15 (utime, stime); the command name has no spaces here.
		sum=$((sum + st[13] + st[14]))
	done
	awk -v t="$sum" -v hz="$hz" 'BEGIN {printf "%.3f\n", t / hz}'
}

# RSS of the balancer's processes in KiB.
bal_rss() {
	local p sum=0 r
	for p in $(bal_pids); do
		r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
		sum=$((sum + ${r:-0}))
	done
	echo "$sum"
}
