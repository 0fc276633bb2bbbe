#!/usr/bin/env bash
# The benchmark harness in smoke mode (bench/run --smoke: tiny loads, about a
# second per workload): every target must produce every figure, or "n/a"
# where the target cannot have it by nature (no balancer process to weigh
# for direct and kernel-nat). Never asserts a speed. Against the sanitizer
# build it runs only haproxy and snatproxy, to keep `make test` short.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" -eq 0 ] || skip "not root: the benchmark needs network namespaces"
need ip nft nstat iperf3 wrk haproxy nginx
probe=bench-smoke-probe-$$
ip netns add "$probe" 2>/dev/null || skip "ip netns add fails here: no network namespaces"
ip netns del "$probe"
[ -x "$TOOLS/loadgen" ] && [ -x "$TOOLS/idlehold" ] || fail "$TOOLS/loadgen or idlehold is missing"

root=$(cd "$(dirname "$0")/../.." && pwd)
targets=direct,kernel-nat,haproxy,nginx,snatproxy,snatproxy-pool
[ "${BUILD_TAG:-build}" = build-san ] && targets=haproxy,snatproxy
out=$T/results
info "bench/run --smoke --only $targets"
rc=0
SNATPROXY=$SNATPROXY TOOLS=$TOOLS "$root/bench/run" --smoke --only "$targets" --out "$out" || rc=$?
[ "$rc" -ne 77 ] || skip "bench/run skipped itself"
if [ "$rc" -ne 0 ]; then
	tail -n 20 "$out/results.md" 2>/dev/null
	fail "bench/run --smoke exited with $rc (missing figures: $(tr '\n' ';' <"$out/missing.txt" 2>/dev/null))"
fi
for f in results.md results.csv chart.svg; do
	[ -s "$out/$f" ] || fail "bench/run produced no $f"
done

# Every figure of every target has a number, or n/a where by nature.
nfig=$(awk -F, 'NR > 1 {print $1}' "$out/results.csv" | sort -u | wc -l)
[ "$nfig" -ge 25 ] || fail "results.csv names only $nfig figures"
for t in ${targets//,/ }; do
	got=$(awk -F, -v t="$t" 'NR > 1 && $4 == t' "$out/results.csv" | wc -l)
	[ "$got" -eq "$nfig" ] || fail "$t has $got of $nfig figures in results.csv"
	bad=$(awk -F, -v t="$t" 'NR > 1 && $4 == t && $5 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ && $5 != "n/a" {print $1 "=" $5}' "$out/results.csv")
	[ -z "$bad" ] || fail "$t: figures without a value: $bad"
	na=$(awk -F, -v t="$t" 'NR > 1 && $4 == t && $5 == "n/a" {print $1}' "$out/results.csv")
	case $t in
	direct | kernel-nat) ;;
	*) [ -z "$na" ] || fail "$t: no value for $(echo $na)" ;;
	esac
	for id in $na; do
		[[ $id == idle* || $id == cpu_* ]] || fail "$t: $id is n/a, but only memory and CPU may be"
	done
done
# The table has a row per figure and a column per target.
cols=$(grep -m1 '^| figure |' "$out/results.md" | tr -cd '|' | wc -c)
[ "$cols" -eq $(($(tr ',' '\n' <<<"$targets" | wc -l) + 3)) ] || fail "results.md table has $cols bars in its header"
grep -q '<svg' "$out/chart.svg" || fail "chart.svg is not an SVG"

# The same client workloads against an "external" VIP (the FIN gap needs the
# balancer's namespace: n/a there): here an nginx on
# loopback, with several client addresses.
port=$(pick_port)
nginx_start ext 127.0.0.1 "$port"
info "bench/run --smoke --target ext=127.0.0.1:$port"
rc=0
SNATPROXY=$SNATPROXY TOOLS=$TOOLS "$root/bench/run" --smoke --target "ext=127.0.0.1:$port" \
	--src 127.0.0.100-103 --out "$T/ext" || rc=$?
[ "$rc" -eq 0 ] || fail "bench/run --target exited with $rc"
bad=$(awk -F, 'NR > 1 && $5 !~ /^-?[0-9.]+$/ && !($5 == "n/a" && $1 ~ /^(bulk|idle|cpu_|fin_)/) {print $1 "=" $5}' "$T/ext/results.csv")
[ -z "$bad" ] || fail "external target: figures without a value: $bad"
grep -q '^sust_cps,[^,]*,[^,]*,ext,[0-9]' "$T/ext/results.csv" || fail "external target: no sustained rate"
pass "every target ($targets) and an external VIP produced all $nfig figures"
