#!/usr/bin/env bash
# The client workloads (sourced by bench/run). Each runs in RUN_NS against
# the current target, and records figures with `record FIGURE VALUE` (bench/
# run's raw.tsv: rep, target, figure, value). A workload that produced no
# output records nothing, which the report shows as missing.

# client CMD...: runs a client in the target's client namespace, bounded.
client() {
	local s=${WL_SECS:-10} limit
	limit=$((${s%.*} + 60))
	if [ -n "$RUN_NS" ]; then
		timeout -k 5 "$limit" ip netns exec "$RUN_NS" "$@"
	else
		timeout -k 5 "$limit" "$@"
	fi
}

# with_cpu NAME CMD...: runs CMD and records the balancer's CPU seconds
# during it as cpu_NAME_s.
with_cpu() {
	local name=$1 c0 c1; shift
	c0=$(bal_cpu)
	"$@"
	c1=$(bal_cpu)
	[ -n "$BAL_PID" ] && record "cpu_${name}_s" "$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')"
	return 0
}

# Counters that reveal trouble, as nstat names them.
COUNTERS="TcpExtTCPSynRetrans TcpExtPAWSTimewait TcpOutRsts TcpExtTCPTimeWaitOverflow"

# counters_snap FILE: "ns counter value" for each namespace in play.
counters_snap() {
	local ns label
	: >"$1"
	for label in client balancer server; do
		case $label in client) ns=$NS_C ;; balancer) ns=$NS_B ;; server) ns=$NS_S ;; esac
		[ -n "$RUN_NS" ] || { [ "$label" = client ] || continue; ns=""; }
		if [ -n "$ns" ]; then
			in_ns "$ns" nstat -asz $COUNTERS
		else
			nstat -asz $COUNTERS
		fi | awk -v l="$label" '!/^#/ {print l, $1, $2}' >>"$1"
	done
}

# counters_record PREFIX BEFORE AFTER: per-namespace deltas into
# counters.tsv, and their sums as PREFIX_synretrans, _paws, _rsts and
# _twoverflow (TIME_WAIT entries not made: the table was full).
counters_record() {
	local prefix=$1 before=$2 after=$3 sums
	sums=$(awk -v rep="$REP" -v t="$TARGET" -v w="$prefix" -v out="$OUT/counters.tsv" '
		NR == FNR {b[$1 " " $2] = $3; next}
		{d = $3 - b[$1 " " $2]; s[$2] += d; print rep "\t" t "\t" w "\t" $1 "\t" $2 "\t" d >> out}
		END {print s["TcpExtTCPSynRetrans"] + 0, s["TcpExtPAWSTimewait"] + 0, s["TcpOutRsts"] + 0, s["TcpExtTCPTimeWaitOverflow"] + 0}
	' "$before" "$after")
	read -r sr paws rst twov <<<"$sums"
	record "${prefix}_synretrans" "$sr"
	record "${prefix}_paws" "$paws"
	record "${prefix}_rsts" "$rst"
	record "${prefix}_twoverflow" "$twov"
}

wl_bulk() { # STREAMS
	local n=$1 f="$LOGDIR/bulk$1.json" bps
	[ -n "$IPERF_PORT" ] || return 0
	WL_SECS=$DUR with_cpu "bulk$n" client iperf3 -c "$IPERF_HOST" -p "$IPERF_PORT" -t "$DUR" \
		-P "$n" $IPERF_OMIT -J >"$f" 2>&1
	bps=$(awk '/"sum_received"/ {f = 1} f && /"bits_per_second"/ {gsub(/[^0-9.e+]/, "", $2); print $2; exit}' "$f")
	[ -n "$bps" ] && record "bulk${n}_gbps" "$(awk -v b="$bps" 'BEGIN {printf "%.2f", b / 1e9}')"
	return 0
}

# wrk's latency to milliseconds: 512.00us, 1.20ms, 2.01s.
wrk_ms() { awk -v v="$1" 'BEGIN {n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/) n *= 1000; printf "%.3f", n}'; }

wl_keepalive() {
	local f="$LOGDIR/keepalive.txt" rps p99 errs
	WL_SECS=$DUR with_cpu ka client wrk -t2 -c"$KA_CONNS" -d"${DUR}s" --latency "$HTTP_URL" >"$f" 2>&1
	rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
	p99=$(awk '$1 == "99%" {print $2}' "$f")
	errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$f")
	[ -n "$rps" ] && record ka_rps "$rps"
	[ -n "$p99" ] && record ka_p99_ms "$(wrk_ms "$p99")"
	[ -n "$rps" ] && record ka_err "$errs"
	return 0
}

# loadgen_field FILE KEY: a key=value of loadgen's result line.
loadgen_field() { awk -v k="$2" '/^result / {for (i = 2; i <= NF; i++) {split($i, kv, "="); if (kv[1] == k) print kv[2]}}' "$1"; }

# wl_latency RATE ID: open-loop keep-alive requests at RATE a second; the
# figures ID_p50_us, ID_p99_us, ID_p999_us, ID_err and cpu_ID_s.
wl_latency() {
	local rate=$1 id=$2 f="$LOGDIR/latency-$1.txt" q
	WL_SECS=$DUR with_cpu "$id" client "$TOOLS/loadgen" --rate "$rate" --keepalive --conns 256 \
		--duration "$DUR" --timeout 5 --quiet ${HTTP_DSTS//,/ } >"$f" 2>&1
	grep -q '^result ' "$f" || return 0
	for q in p50 p99 p999; do record "${id}_${q}_us" "$(loadgen_field "$f" "${q}_us")"; done
	record "${id}_err" "$(loadgen_field "$f" err)"
}

# wl_fingap: how soon the balancer passes a server's FIN on to the client.
# One connection at a time asks for a close (wrk, "Connection: close", for
# FIN_SECS), and tcpdump in the balancer's namespace stamps each FIN from
# port 80 as it comes in from the servers' side and as it leaves on the
# clients' side: one kernel clock for both. With a single connection open
# the pairs never interleave. Figures fin_p50_us and fin_p99_us (what the
# balancer adds between the server's last byte and the client learning of
# it; direct and kernel-nat show the forwarding alone).
wl_fingap() {
	local f="$LOGDIR/fingap.pcap.txt" tpid
	[ -n "$RUN_NS" ] && [ -n "$NS_B" ] || return 0
	# Not through in_ns: a function in the background is a subshell, which
	# would not pass the SIGINT below on (ip netns exec execs timeout, which
	# does).
	ip netns exec "$NS_B" timeout -k 2 $((FIN_SECS + 10)) tcpdump -i any -nn -tt -l -Q inout \
		'tcp[tcpflags] & tcp-fin != 0 and src port 80' >"$f" 2>"$f.err" &
	tpid=$!
	wait_until 5 grep -q 'listening on' "$f.err" || { kill "$tpid" 2>/dev/null; return 0; }
	WL_SECS=$FIN_SECS client wrk -t1 -c1 -d"${FIN_SECS}s" -H 'Connection: close' "${HTTP_URL}${FIN_PATH:-}" \
		>"$LOGDIR/fingap.wrk.txt" 2>&1
	sleep 0.3
	kill -INT "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null
	# "TIME IF In|Out IP SRC > DST: Flags [F.]...": a FIN in from srv opens
	# a pair, the next one out on cli closes it.
	awk '$2 == "srv" && $3 == "In" {t = $1; next}
		$2 == "cli" && $3 == "Out" && t {printf "%.1f\n", ($1 - t) * 1e6; t = 0}' "$f" |
		sort -n >"$LOGDIR/fingap.us"
	[ -s "$LOGDIR/fingap.us" ] || return 0
	record fin_p50_us "$(awk '{v[NR] = $1} END {print v[int((NR - 1) * 0.5) + 1]}' "$LOGDIR/fingap.us")"
	record fin_p99_us "$(awk '{v[NR] = $1} END {print v[int((NR - 1) * 0.99) + 1]}' "$LOGDIR/fingap.us")"
}

# wl_newconn burst|sust SECONDS: one request per connection, closed loop
# (NEWCONN_INFLIGHT at once), from the client addresses CLI_SRCS, with the
# counters of every namespace before and after, sampled each second.
wl_newconn() {
	local kind=$1 secs=$2 f="$LOGDIR/$1.txt" c0="$LOGDIR/$1.c0" c1="$LOGDIR/$1.c1" src=()
	[ -n "$RUN_NS" ] && src=(--src "$CLI_SRCS")
	[ -n "${CLIENT_SRCS:-}" ] && src=(--src "$CLIENT_SRCS")
	counters_snap "$c0"
	sampler "$LOGDIR/$kind.samples" &
	local spid=$!
	WL_SECS=$secs with_cpu "$kind" client "$TOOLS/loadgen" --max "$NEWCONN_INFLIGHT" --duration "$secs" \
		--timeout 10 "${src[@]}" ${HTTP_DSTS//,/ } >"$f" 2>&1
	kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
	counters_snap "$c1"
	grep -q '^result ' "$f" || return 0
	record "${kind}_cps" "$(loadgen_field "$f" rate)"
	record "${kind}_err" "$(loadgen_field "$f" err)"
	counters_record "$kind" "$c0" "$c1"
	[ "$kind" = sust ] && newconn_series "$f" "$LOGDIR/$kind.samples"
	return 0
}

# sampler FILE: the counters of each namespace once a second (a sampling
# period, not a wait), "second ns counter value".
sampler() {
	local t=0 snap
	# A background subshell inherits bench/run's traps: the EXIT one would
	# tear the topology down when this sampler is stopped.
	trap - EXIT INT
	trap 'exit 0' TERM
	snap=$LOGDIR/sampler.snap
	# Ends with bench/run ($$ is its pid, even in this subshell).
	while kill -0 $$ 2>/dev/null; do
		counters_snap "$snap"
		awk -v t="$t" '{print t, $0}' "$snap" >>"$1"
		t=$((t + 1))
		sleep 1 &
		wait $! # interruptible, unlike a foreground sleep
	done
}

# The sustained run's per-second rate into series.tsv, and its mean over the
# last 10 seconds (or last half) and its worst second after the first.
newconn_series() {
	local f=$1 samples=$2 n
	awk -v t="$TARGET" -v rep="$REP" '/^tick / {split($2, a, "="); split($3, b, "="); split($4, c, "=");
		print t "\t" rep "\t" a[2] "\t" b[2] "\t" c[2]}' "$f" >>"$OUT/series.tsv"
	n=$(grep -c '^tick ' "$f")
	[ "$n" -gt 0 ] || return 0
	record sust_end_cps "$(awk -v n="$n" '/^tick / {split($3, b, "="); i++; w = n >= 20 ? 10 : int((n + 1) / 2);
		if (i > n - w) {s += b[2]; k++}} END {printf "%.0f", s / k}' "$f")"
	record sust_worst_cps "$(awk '/^tick / {split($3, b, "="); i++; if (i > 1 && (m == "" || b[2] < m)) m = b[2]}
		END {print m == "" ? 0 : m}' "$f")"
	cp "$samples" "$OUT/logs/sust-counters-$TARGET.txt" 2>/dev/null
	return 0
}

# Idle connections: the balancer's RSS before, then with IDLE_STEPS open
# (each one known to reach a server), per connection in KiB. A second of
# bulk traffic first brings the balancer to its steady state (buffer pools
# touched, allocators warm), so that the figure is what one more idle
# connection costs, not a one-time warm-up; that base is idle_base_mib.
wl_idle() {
	[ -n "$IDLE_DST" ] && [ -n "$BAL_PID" ] || return 0
	local f="$LOGDIR/idle.txt" rss0 rss k=0 step line ok pid
	[ "$MODE" = smoke ] ||
		WL_SECS=1 client iperf3 -c "$IPERF_HOST" -p "$IPERF_PORT" -t 1 -P 8 >"$LOGDIR/warmup.json" 2>&1
	rss0=$(bal_rss)
	record idle_base_mib "$(awk -v a="$rss0" 'BEGIN {printf "%.1f", a / 1024}')"
	ns_bg "$RUN_NS" "$f" "$TOOLS/idlehold" hold --src "$CLI_SRCS" --parallel 128 --timeout 60 \
		--hold 300 --steps "$IDLE_STEPS" "$IDLE_DST"
	pid=$BG_PID
	for step in ${IDLE_STEPS//,/ }; do
		k=$((k + 1))
		wait_until 90 idle_ready "$f" "$k" || { say "$TARGET: idle step $step not reached"; break; }
		line=$(grep '^ready ' "$f" | sed -n "${k}p")
		ok=$(sed 's/.* ok=\([0-9]*\).*/\1/' <<<"$line")
		rss=$(bal_rss)
		echo "step $step: $line rss0=${rss0}KiB rss=${rss}KiB" >>"$LOGDIR/idle-rss.txt"
		[ "$ok" -gt 0 ] && record "idle${k}_kib" "$(awk -v a="$rss0" -v b="$rss" -v n="$ok" 'BEGIN {printf "%.2f", (b - a) / n}')"
		[ "$ok" -eq "$step" ] || say "$TARGET: idle step $step: only $ok connections held"
		kill -USR1 "$pid" 2>/dev/null
	done
	stop_pids "$pid"
}

idle_ready() { [ "$(grep -c '^ready ' "$1")" -ge "$2" ]; }
