#!/usr/bin/env bash
# bigip_import: `snatproxy --import-bigip` converts the OCS 2007 R2 sample
# (config/bigip-ocs2007r2.conf) with exit 0: one stderr line per object
# skipped or converted in part, the virtual without SNAT warned about; the
# output names the certificate files of the BIG-IP, fails -t until they
# exist, then passes it; the proxy starts on it and balances a client of the
# VIP's port 5061 to the front-ends. A broken file exits 1 with FILE:LINE.
# docs/bigip.md shows the same stderr lines.
. "$(dirname "$0")/../lib.sh"
in_netns "$0"
need nginx curl openssl
cd "$(dirname "$0")/../.." || fail "no repository"
sample=config/bigip-ocs2007r2.conf

info "--help names the option"
"$SNATPROXY" --help | grep -q -- "--import-bigip FILE" || fail "--help does not mention --import-bigip"

info "the sample converts: exit 0, one line per object not converted whole"
rc=0
"$SNATPROXY" --import-bigip "$sample" >"$T/out.ini" 2>"$T/notes" || rc=$?
cat "$T/notes"
[ "$rc" -eq 0 ] || fail "--import-bigip exited $rc"
[ "$(wc -l <"$T/notes")" -eq 7 ] || fail "expected 7 lines on stderr, got $(wc -l <"$T/notes")"
expect_note() { # REGEX: one line of stderr matches it
	[ "$(grep -cE -- "$1" "$T/notes")" -eq 1 ] || fail "no single stderr line matching: $1"
}
expect_note "^$sample:230: ltm virtual /Common/ocs_pool01_444: warning: no SNAT: .*replies will bypass the balancer"
expect_note "^$sample:244: ltm virtual /Common/ocs_pool01_5060_udp: skipped: ip-protocol udp"
expect_note "^$sample:197: ltm virtual /Common/ocs_pool01_443: converted in part: .*one-connect.*iRule /Common/ocs_web_xff"
expect_note "^$sample:157: ltm rule /Common/ocs_web_xff: skipped: iRules are not converted"
expect_note "^$sample:152: ltm profile one-connect /Common/ocs_oneconnect: skipped"
expect_note "^$sample:24: ltm monitor http /Common/ocs_http_old: skipped: no converted virtual or pool uses it"
expect_note "^$sample:63: ltm pool /Common/ocs_fe_443: converted in part"
sed -n '/^\$ snatproxy --import-bigip/,/^```/p' docs/bigip.md | sed '1d;$d' >"$T/doc_notes"
diff "$T/doc_notes" "$T/notes" >"$T/doc.diff" || fail "docs/bigip.md shows other stderr lines: $(cat "$T/doc.diff")"
for port in 135 443 444 5061 5065 5069; do
	grep -qx "listen = 198.18.0.10:$port" "$T/out.ini" || fail "no listen for port $port"
done
grep -qx "check_path = /LiveServer/MCUFactory/" "$T/out.ini" || fail "the MCU factory check is missing"
[ "$(grep -c '^\[vip ' "$T/out.ini")" -eq 6 ] || fail "expected 6 VIPs"
[ "$(grep -c '^\[pool ' "$T/out.ini")" -eq 6 ] || fail "expected 6 pools"

info "-t refuses the output until the certificate files it names exist"
ip addr add 198.18.0.20/32 dev lo && ip addr add 198.18.0.21/32 dev lo || fail "cannot add the SNAT addresses"
rc=0
"$SNATPROXY" -t -c "$T/out.ini" >"$T/t1.out" 2>"$T/t1.err" || rc=$?
[ "$rc" -eq 1 ] || fail "-t passed without certificate files (exit $rc)"
grep -q "pool01.lab.test.crt" "$T/t1.err" || fail "-t did not name pool01.lab.test.crt: $(cat "$T/t1.err")"

info "with the certificates, -t passes"
tls_ca
tls_cert pool01 pool01.lab.test
tls_cert fe ocs_fe.lab.test
cp "$T/ca.pem" "$T/lab_ca.crt"
cp "$T/pool01.pem" "$T/pool01.lab.test.crt" && cp "$T/pool01.key" "$T/pool01.lab.test.key"
cp "$T/fe.pem" "$T/ocs_fe.crt" && cp "$T/fe.key" "$T/ocs_fe.key"
"$SNATPROXY" -t -c "$T/out.ini" >"$T/t2.out" 2>"$T/t2.err" ||
	fail "-t refused the converted sample: $(cat "$T/t2.err")"
grep -q "configuration is valid" "$T/t2.out" || fail "-t said: $(cat "$T/t2.out")"

info "the proxy runs the converted pool: a client of VIP:5061 reaches a front-end"
for a in 198.18.0.10 198.18.0.11 198.18.0.12; do
	ip addr add "$a/32" dev lo || fail "cannot add $a"
done
nginx_start fe1 198.18.0.11 5061
nginx_start fe2 198.18.0.12 5061
proxy_start proxy "$T/out.ini"
for i in 1 2 3 4; do
	curl -fsS -m 5 "http://198.18.0.10:5061/" >>"$T/answers" || fail "request $i through VIP:5061"
done
grep -q fe1 "$T/answers" && grep -q fe2 "$T/answers" ||
	fail "leastconn over fe1 and fe2 should reach both: $(sort "$T/answers" | uniq -c)"
proxy_stop proxy

info "a broken file: exit 1 and FILE:LINE: message"
cp "$sample" "$T/broken.conf"
printf 'ltm pool /Common/broken {\n    members {\n' >>"$T/broken.conf"
line=$(($(wc -l <"$sample") + 2))
rc=0
"$SNATPROXY" --import-bigip "$T/broken.conf" >"$T/b.out" 2>"$T/b.err" || rc=$?
[ "$rc" -eq 1 ] || fail "a broken file exited $rc"
grep -qx "$T/broken.conf:$line: '{' is never closed" "$T/b.err" ||
	fail "expected '$T/broken.conf:$line: '{' is never closed', got: $(cat "$T/b.err")"
[ ! -s "$T/b.out" ] || fail "a broken file still wrote a configuration"
rc=0
"$SNATPROXY" --import-bigip "$T/missing.conf" >/dev/null 2>"$T/m.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "$T/missing.conf: No such file" "$T/m.err" ||
	fail "a missing file: exit $rc, $(cat "$T/m.err")"
pass "the OCS sample converted with every object accounted for; -t and a real client on the output"
