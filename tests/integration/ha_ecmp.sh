#!/usr/bin/env bash
# An ECMP group in namespaces (tests/lab/ha.sh, the configs of config/ha/):
# two snatproxy nodes announce the VIP over BGP (BIRD 2) to a router. When a
# node's snatproxy is killed its route is withdrawn and every new connection
# goes to the other node; a node drained on purpose keeps its route until
# its drain deadline, refusing no connection meanwhile, then is withdrawn.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
need bird birdc nginx curl python3
# shellcheck source=tests/lab/ha.sh
. "$(dirname "$0")/../lab/ha.sh"
HA_QUIET=1 HA_BIN=$SNATPROXY HA_CLIENT_OPEN=10 HA_DRAIN_DEADLINE=1
ha_init "$T/ha"
trap 'ha_reset; cleanup' EXIT
ha_ecmp_up 2
ha_ecmp_settle

# only_n1 CASE: after the route went, new connections all succeed, on n1.
only_n1() {
	local gone
	gone=$(ha_gone_ms "$1")
	echo "$1: route gone after $gone ms, $(ha_field "$1" failed) of $(ha_field "$1" attempts) new connections" \
		"failed, n2 last took one $(ha_last "$1" "$(ha_addr n2)") ms after, spread after: $(ha_field "$1" after)"
	[ "$gone" != - ] || fail "$1: the router kept n2's route"
	[ "$(ha_ecmp_paths)" = 1 ] || fail "$1: the router has $(ha_ecmp_paths) paths, not 1"
	local last
	last=$(ha_last "$1" "$(ha_addr n2)")
	[ "${last:--1000}" -le "$gone" ] || fail "$1: n2 took a new connection $last ms after, its route went at $gone ms"
}

info "n2's snatproxy killed: its route is withdrawn"
ha_measure kill 3 "$HA_ECMP_VIP" eval 'ha_watch_withdraw "$(ha_addr n2)" kill; ha_stop proxy-n2' >/dev/null
only_n1 kill
[ "$(ha_field kill recover_ms)" -lt 3000 ] || fail "kill: new connections failed for $(ha_field kill recover_ms) ms"
ha_proxy n2 "$HA_ECMP_VIP"
ha_ecmp_settle

info "n2 drained: served until the deadline (1 s), then withdrawn"
ha_measure drain 4 "$HA_ECMP_VIP" eval 'ha_watch_withdraw "$(ha_addr n2)" drain; ha_post n2 drain' >/dev/null
only_n1 drain
# Until the route goes, nothing fails. A connection under way at that
# moment may: the router re-hashes its next packets to another node, which
# has no state for it (plain ECMP; docs/ha.md). On a loaded machine a
# request takes long enough to be caught so now and then.
gone=$(ha_gone_ms drain)
ha_field drain fails | tr ',' '\n' | awk -F: -v g="$gone" '
	NF == 3 && !($1 <= g + 100 && $1 + $3 >= g - 100) { bad++ } END { exit bad > 0 }' ||
	fail "drain: new connections failed while the route was up (start ms:error:duration ms): $(ha_field drain fails)"
[ "$(ha_gone_ms drain)" -ge 500 ] || fail "drain: withdrawn after $(ha_gone_ms drain) ms, before the deadline"
pass "ha_ecmp"
