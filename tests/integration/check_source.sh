#!/usr/bin/env bash
# check_source: a pool's health checks leave from the address its VIP's
# traffic uses (snat), from a given address, or from the kernel's choice
# (auto), so that a server's firewall and logs see checks and clients alike.
# In a network namespace of its own, with 198.18.0.0/15 addresses on lo; the
# servers' nginx logs say which source each request came from.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need nginx curl ip
for a in 198.18.0.10 198.18.0.20 198.18.0.21 198.18.0.22 198.18.0.30 198.18.0.31; do
	ip addr add "$a/32" dev lo || fail "cannot add $a"
done
P=$(pick_port); V=$(pick_port)
for s in 1 2 3; do
	nginx_serve "s$s" "198.18.0.2$((s - 1))" "$P" '$remote_addr $http_user_agent'
done
cat >"$T/p.ini" <<CFG
[global]
workers = 2
[pool snat]
server = s1 198.18.0.20:$P
check = http
check_interval = 100ms
check_source = snat
[pool addr]
server = s2 198.18.0.21:$P
check = http
check_interval = 100ms
check_source = 198.18.0.31
[pool auto]
server = s3 198.18.0.22:$P
check = http
check_interval = 100ms
[vip web]
listen = 198.18.0.10:$V
pool = snat
snat = 198.18.0.30
CFG
"$SNATPROXY" -t -c "$T/p.ini" || fail "config refused"
proxy_start proxy "$T/p.ini"
for i in 1 2 3; do curl -fsS -m 5 "http://198.18.0.10:$V/" | grep -qx s1 || fail "request $i"; done
checks() { grep -c 'snatproxy-health/' "$T/$1.access"; }
wait_for 5 lines_at_least 3 "$T/s1.access" 'snatproxy-health/'
wait_for 5 lines_at_least 3 "$T/s2.access" 'snatproxy-health/'
wait_for 5 lines_at_least 3 "$T/s3.access" 'snatproxy-health/'
proxy_stop proxy
for s in s1 s2 s3; do
	echo "$s saw: $(awk '{print $1, $2}' "$T/$s.access" | sed 's|/.*||' | sort | uniq -c | paste -sd,)"
done
# sources FILE AGENT: the distinct sources of AGENT's requests.
sources() { grep " $2/" "$T/$1.access" | awk '{print $1}' | sort -u | paste -sd,; }
[ "$(sources s1 curl)" = 198.18.0.30 ] || fail "clients reached s1 from $(sources s1 curl), not the snat address"
[ "$(sources s1 snatproxy-health)" = 198.18.0.30 ] ||
	fail "check_source = snat: s1's checks came from $(sources s1 snatproxy-health), not the VIP's snat address 198.18.0.30"
[ "$(sources s2 snatproxy-health)" = 198.18.0.31 ] ||
	fail "check_source = 198.18.0.31: s2's checks came from $(sources s2 snatproxy-health)"
[ "$(sources s3 snatproxy-health)" = 198.18.0.22 ] ||
	fail "check_source = auto: s3's checks came from $(sources s3 snatproxy-health), not the kernel's choice (the server's own address on lo)"

info "-t: an address not of this host, snat without a VIP, a check_source without checks"
cat >"$T/bad.ini" <<CFG
[pool a]
server = a 198.18.0.20:$P
check = tcp
check_source = 198.18.0.99
[pool b]
server = b 198.18.0.20:$P
check = tcp
check_source = snat
[pool c]
server = c 198.18.0.20:$P
check_source = 198.18.0.31
[vip web]
listen = 198.18.0.10:$V
pool = a
CFG
"$SNATPROXY" -t -c "$T/bad.ini" >"$T/bad.out" 2>&1 && fail "bad check_source passed -t"
cat "$T/bad.out"
grep -q 'bad.ini:4: check_source 198.18.0.99 cannot be bound: .*not an address of this host' "$T/bad.out" ||
	fail "foreign address not reported"
grep -q 'bad.ini:8: pool b: check_source = snat, but no VIP sends its traffic to this pool' "$T/bad.out" ||
	fail "snat without a VIP not reported"
grep -q 'bad.ini:11: pool c: check_source needs a check' "$T/bad.out" || fail "no check not reported"
pass "checks leave from the snat address, the given address, or the kernel's choice"
