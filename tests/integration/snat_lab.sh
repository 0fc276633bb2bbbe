#!/usr/bin/env bash
# The SNAT lab (tests/lab/lab.sh, docs/snat.md): the seed's pool in network
# namespaces, the proxy holding the VIP on the front-ends' LAN.
#   snat = auto: every request succeeds from fe1 (the hairpin), from a client
#                on the LAN and from a routed client; both front-ends answer;
#                no caller ever sees a SYN-ACK from anything but the VIP.
#   snat = off:  the LAN requests fail; the caller's capture shows a SYN-ACK
#                from a front-end's own address and the caller's reset; the
#                routed client (the proxy is its servers' gateway) succeeds
#                and the servers see its own address.
# Skips when namespaces cannot be made (not root). Keeps the captures and
# logs in tests/lab/results/ when it fails.
set -u
N=4
here=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "FAIL: $*"; failed=1; }
: "${SNATPROXY:?SNATPROXY must name the built binary}"
[ -x "$SNATPROXY" ] || { echo "FAIL: $SNATPROXY is not an executable"; exit 1; }

# shellcheck source=tests/lab/lab.sh
. "$here/lab/lab.sh"
lab_require nginx curl openssl tcpdump nft
failed=0
# shellcheck disable=SC2317 # called by the EXIT trap
keep_on_failure() { # EXIT-STATUS
	local dest
	if [ "$1" -ne 0 ] && [ -n "${out:-}" ] && [ -d "$out" ]; then
		dest=$here/lab/results/test-${BUILD_TAG:-build}-$(date +%Y%m%d-%H%M%S)-$$
		mkdir -p "$dest" && cp -r "$out"/. "$dest"/ && echo "captures and logs kept in $dest"
	fi
	lab_down
}
lab_init
trap 'keep_on_failure $?' EXIT
out=$LAB_DIR/out
mkdir -p "$out"
lab_up

for mode in off auto; do
	echo "--- snat = $mode: $N requests from each of fe1, client, rclient"
	lab_run_mode "$SNATPROXY" "$mode" "$N" "$out" || fail "snat = $mode: the proxy did not exit cleanly"
done
cp "$LAB_DIR"/fe1/access.log "$out/fe1-access.log"
cp "$LAB_DIR"/fe2/access.log "$out/fe2-access.log"

tally() { lab_tally "$out/$1-$2.txt"; }
for mode in off auto; do
	for c in "${LAB_CASES[@]}"; do
		key=${c%%:*}
		echo "$mode $key: $(tally "$mode" "$key")   (ok total answered-by server-saw)"
	done
done

# snat = auto: everything works, both front-ends answer, the servers see the
# proxy, and replies come only from the VIP.
for key in hairpin lan routed; do
	read -r ok _ by seen < <(tally auto "$key")
	[ "$ok" -eq "$N" ] || fail "snat = auto, $key: $ok of $N requests succeeded"
	[[ $by == *fe1* && $by == *fe2* ]] || fail "snat = auto, $key: not both front-ends answered ($by)"
	[ "$seen" = "$LAB_VIP" ] || fail "snat = auto, $key: the servers saw $seen, not the proxy's $LAB_VIP"
done
for node in fe1 client; do
	caller=$(lab_addr_of "$node")
	r=$(lab_resets "$out/auto-$node.pcap" "$caller")
	[ "$r" -eq 0 ] || fail "snat = auto: $node sent $r resets to servers"
	s=$(lab_synack_sources "$out/auto-$node.pcap" "$caller")
	[[ $s == "$LAB_VIP x"* && $s != *,* ]] ||
		fail "snat = auto: $node got SYN-ACKs from '$s', expected the VIP only"
done

# snat = off: the LAN callers fail, and their captures say why.
for c in hairpin:fe1 lan:client; do
	key=${c%%:*}; node=${c#*:}; caller=$(lab_addr_of "$node")
	read -r ok _ by seen < <(tally off "$key")
	[ "$ok" -eq 0 ] || fail "snat = off, $key: $ok of $N requests succeeded, expected none (replies should bypass the proxy)"
	r=$(lab_resets "$out/off-$node.pcap" "$caller")
	[ "$r" -gt 0 ] || fail "snat = off, $key: no reset from $node ($caller) in its capture"
	s=$(lab_synack_sources "$out/off-$node.pcap" "$caller")
	[[ $s == *"$LAB_FE1 x"* || $s == *"$LAB_FE2 x"* ]] ||
		fail "snat = off, $key: no SYN-ACK from a front-end's own address in $node's capture ($s)"
	echo "snat = off, $key: evidence from $node's capture"
	lab_evidence "$out/off-$node.pcap" "$caller"
done

# snat = off, routed: the proxy is the servers' route to the client, so
# transparency works and the servers see the client's own address.
read -r ok _ by seen < <(tally off routed)
[ "$ok" -eq "$N" ] || fail "snat = off, routed: $ok of $N requests succeeded"
[[ $by == *fe1* && $by == *fe2* ]] || fail "snat = off, routed: not both front-ends answered ($by)"
[ "$seen" = "$LAB_RCLIENT" ] || fail "snat = off, routed: the servers saw $seen, not the client's $LAB_RCLIENT"

if [ "$failed" -ne 0 ]; then
	for mode in off auto; do
		echo "--- proxy log, snat = $mode"
		tail -n 15 "$out/proxy-$mode.log"
	done
	exit 1
fi
echo "PASS: snat = auto serves every caller from both front-ends; snat = off fails on the LAN with the caller's reset and works for the routed client"
exit 0
