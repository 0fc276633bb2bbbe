#!/usr/bin/env bash
# The TLS benchmark in smoke mode (bench/tls --smoke: about a second per
# workload, tiny loads): HAProxy and snatproxy, each with the ECDSA and the
# RSA certificate, must produce every figure (handshakes, keep-alive, bulk,
# idle memory, CPU seconds, failure counts), and snatproxy's handshake
# failure counts must be 0. Never asserts a speed.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" -eq 0 ] || skip "not root: the benchmark needs network namespaces"
need ip openssl wrk haproxy nginx iperf3 python3
probe=bench-tls-probe-$$
ip netns add "$probe" 2>/dev/null || skip "ip netns add fails here: no network namespaces"
ip netns del "$probe"
[ -x "$TOOLS/idlehold" ] || fail "$TOOLS/idlehold is missing"

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$T/results
info "bench/tls --smoke"
rc=0
SNATPROXY=$SNATPROXY TOOLS=$TOOLS "$root/bench/tls" --smoke --out "$out" || rc=$?
[ "$rc" -ne 77 ] || skip "bench/tls skipped itself"
if [ "$rc" -ne 0 ]; then
	tail -n 30 "$out/results.md" 2>/dev/null
	fail "bench/tls --smoke exited with $rc (missing figures: $(tr '\n' ';' <"$out/missing.txt" 2>/dev/null))"
fi
for f in results.md results.csv chart.svg; do
	[ -s "$out/$f" ] || fail "bench/tls produced no $f"
done
grep -q '<svg' "$out/chart.svg" || fail "chart.svg is not an SVG"

# Every figure, for both targets and both certificates, has a number.
nfig=$(awk -F, 'NR > 1 {print $1}' "$out/results.csv" | sort -u | wc -l)
[ "$nfig" -eq 30 ] || fail "results.csv names $nfig figures, not 30 (15 per certificate)"
for k in ecdsa rsa; do
	for id in hs_new hs_reuse eff_new eff_reuse err_new ka bulk idle cpu_new cli_new cpu_bulk; do
		grep -q "^${id}_${k}[_,]" "$out/results.csv" || fail "no $id figure for $k in results.csv"
	done
done
for t in haproxy snatproxy; do
	got=$(awk -F, -v t="$t" 'NR > 1 && $4 == t' "$out/results.csv" | wc -l)
	[ "$got" -eq "$nfig" ] || fail "$t has $got of $nfig figures in results.csv"
	bad=$(awk -F, -v t="$t" 'NR > 1 && $4 == t && $5 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ {print $1 "=" $5}' "$out/results.csv")
	[ -z "$bad" ] || fail "$t: figures without a value: $bad"
done
# The handshake failure counts are counts of trouble, not just numbers: a
# handshake through snatproxy must never fail.
for k in ecdsa rsa; do
	for id in err_new err_reuse; do
		v=$(awk -F, -v f="${id}_$k" '$1 == f && $4 == "snatproxy" {print $5}' "$out/results.csv")
		[ "$v" = 0 ] || fail "snatproxy: ${id}_$k is '$v', not 0 (s_time ERRORs in $out/logs)"
	done
done
# snatproxy's figures carry their ratio to HAProxy's.
r=$(awk -F, '$1 == "hs_new_rsa" && $4 == "snatproxy" {print $10}' "$out/results.csv")
[[ $r =~ ^[0-9.]+$ ]] || fail "no ratio to HAProxy for snatproxy's full handshakes (got '$r')"
cols=$(grep -m1 '^| figure |' "$out/results.md" | tr -cd '|' | wc -c)
[ "$cols" -eq 5 ] || fail "results.md table has $cols bars in its header, not 5"
pass "haproxy and snatproxy, ECDSA and RSA: all $nfig figures"
