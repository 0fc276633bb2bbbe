#!/usr/bin/env bash
# A VRRP pair in namespaces (tests/lab/ha.sh, the configs of config/ha/):
# keepalived moves the VIP to the other node when the active node's
# snatproxy is killed, and when it is drained (POST /drain), with a gap in
# new connections (one every 50 ms) under 2 s; the drain refuses none. The
# open connections of the node that lost the VIP break (docs/ha.md says why).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
need keepalived nginx curl python3
# shellcheck source=tests/lab/ha.sh
. "$(dirname "$0")/../lab/ha.sh"
HA_QUIET=1 HA_BIN=$SNATPROXY HA_CLIENT_OPEN=5
ha_init "$T/ha"
trap 'ha_reset; cleanup' EXIT
ha_vrrp_up
ha_vrrp_settle

# moved CASE FROM: the VIP is on the other node, the gap under 2 s.
moved() {
	local now gap
	now=$(ha_vrrp_master); gap=$(ha_field "$1" gap_ms)
	echo "$1: VIP $2 -> $now, $(ha_field "$1" failed) of $(ha_field "$1" attempts) new connections failed," \
		"longest gap $gap ms, open broken on $2: $(ha_open "$1" "$(ha_addr "$2")")"
	[ "$now" = "$(ha_other "$2")" ] || fail "$1: the VIP did not move from $2 (now on '$now')"
	[ "$gap" -lt 2000 ] || fail "$1: a gap of $gap ms in new connections"
	[ "$(ha_field "$1" moved_ms)" != - ] || fail "$1: no new connection went to the other node"
}

info "the active node's snatproxy killed"
m=$(ha_vrrp_master)
ha_measure kill 3 "$HA_VRRP_VIP" ha_stop "proxy-$m" >/dev/null
moved kill "$m"
ha_proxy "$m" "$HA_VRRP_VIP"
ha_vrrp_settle

info "the active node drained"
m=$(ha_vrrp_master)
ha_measure drain 3 "$HA_VRRP_VIP" ha_post "$m" drain >/dev/null
moved drain "$m"
pass "ha_vrrp"
