#!/usr/bin/env bash
# tls = terminate in the metrics: each way a client's handshake can end is
# counted under its own result of snatproxy_vip_tls_handshakes_total (ok, an
# old protocol, no shared cipher, plain HTTP, a client that does not trust
# our CA, one that closes, one that stays silent), the failures as refusals
# too; bytes count the client's connection as it is on the wire, TLS records
# both ways (a handshake alone moves bytes in both directions); and promtool
# finds nothing to say about /metrics.
. "$(dirname "$0")/../lib.sh"
need nginx curl openssl python3 promtool
P=$(pick_port); Q=$(pick_port); ADM=$(pick_port)
tls_ca
tls_cert one pool01.lab.test
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=other CA" \
	-keyout "$T/other.key" -out "$T/other.pem" >>"$T/openssl.log" 2>&1 || fail "openssl: other CA"
nginx_start fe1 127.0.0.2 "$P"
cat >"$T/p.ini" <<CFG
[global]
workers = 2
admin = 127.0.0.1:$ADM
[pool fes]
server = fe1 127.0.0.2:$P
[vip web]
listen = 127.0.0.1:$Q
pool = fes
tls = terminate
tls_cert = one.pem
tls_key = one.key
timeout_connect = 500ms
CFG
proxy_start proxy "$T/p.ini"
wait_for 5 listening 127.0.0.1 "$ADM"
A="http://127.0.0.1:$ADM"
hs() { metric "snatproxy_vip_tls_handshakes_total{vip=\"web\",result=\"$1\"}"; }
sc() { openssl s_client -connect "127.0.0.1:$Q" -servername pool01.lab.test "$@" </dev/null >>"$T/s_client.log" 2>&1; }

info "3 clients that complete their handshake"
for _ in 1 2 3; do
	curl -fsS -m 5 --cacert "$T/ca.pem" --resolve "pool01.lab.test:$Q:127.0.0.1" \
		"https://pool01.lab.test:$Q/" >/dev/null || fail "curl through the TLS VIP"
done
info "one client of each failure"
sc -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' && fail "a TLS 1.1 client got through"
sc -tls1_2 -cipher AES128-SHA && fail "a client without a forward-secret cipher got through"
curl -sS -m 5 -o /dev/null "http://127.0.0.1:$Q/" 2>/dev/null
sc -CAfile "$T/other.pem" -verify_return_error && fail "a client that does not trust our CA got through"
exec 3<>"/dev/tcp/127.0.0.1/$Q" && exec 3>&- # opens and closes
exec 4<>"/dev/tcp/127.0.0.1/$Q"              # opens and says nothing
# Closed once the handshake timeout has counted it (not after a fixed
# sleep: a late timer on a loaded machine would count an eof instead).
wait_for 10 eval '[ "$(hs timeout)" = 1 ]'
exec 4>&-

declare -A want=([ok]=3 [protocol_version]=1 [no_shared_cipher]=1 [not_tls]=1 [unknown_ca]=1
	[eof]=1 [timeout]=1 [failed]=0 [bad_certificate]=0)
for r in "${!want[@]}"; do
	wait_for 3 eval '[ "$(hs '"$r"')" = "${want['"$r"']}" ]' ||
		fail "result $r: $(hs "$r"), not ${want[$r]}"
done
n=$(metric 'snatproxy_vip_refused_total{vip="web",cause="tls_handshake"}')
[ "$n" = 6 ] || fail "$n refusals for failed handshakes, not 6"

info "bytes are TLS records both ways: a handshake alone moves some each way"
k='snatproxy_vip_bytes_total{vip="web",direction='
s0=$(metric "${k}\"to_server\"}"); c0=$(metric "${k}\"to_client\"}")
sc -CAfile "$T/ca.pem" -verify_return_error || fail "a good client failed its handshake"
wait_for 3 eval '[ "$(hs ok)" = 4 ]'
s1=$(metric "${k}\"to_server\"}"); c1=$(metric "${k}\"to_client\"}")
[ $((s1 - s0)) -ge 200 ] && [ $((c1 - c0)) -ge 500 ] ||
	fail "a handshake alone counted $((s1 - s0)) bytes to the server and $((c1 - c0)) to the client"

info "promtool check metrics"
curl -fsS -m 5 "$A/metrics" >"$T/m"
grep -q '^snatproxy_vip_tls_handshakes_total{vip="web",result="ok"} 4$' "$T/m" || fail "no ok series"
out=$(promtool check metrics <"$T/m" 2>&1) || fail "promtool: $out"
[ -z "$out" ] || fail "promtool: $out"
pass "handshakes counted by result, TLS bytes both ways, promtool clean"
