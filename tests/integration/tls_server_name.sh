#!/usr/bin/env bash
# server_tls with server_ca verifies the server's name, as nginx's
# proxy_ssl_verify does: server_name= (server or pool level) is sent as SNI
# and must be in the certificate; without one, the server's address must be
# (an IP SAN). A mismatch fails the connection, and the log names the name
# expected; an https check fails with the same reason.
. "$(dirname "$0")/../lib.sh"
need nginx curl openssl
P=$(pick_port); V1=$(pick_port); V2=$(pick_port); V3=$(pick_port); V4=$(pick_port); V5=$(pick_port)
tls_ca
tls_cert vip pool01.lab.test
tls_cert fe1 fe1.pool.lab
# A certificate for an address: IP SAN 127.0.0.5.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.5" \
	-keyout "$T/ip.key" -out "$T/ip.csr" >>"$T/openssl.log" 2>&1 || fail "openssl req ip"
printf 'subjectAltName=IP:127.0.0.5\nextendedKeyUsage=serverAuth\n' >"$T/ip.ext"
openssl x509 -req -in "$T/ip.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
	-extfile "$T/ip.ext" -out "$T/ip.pem" >>"$T/openssl.log" 2>&1 || fail "openssl x509 ip"
tls_server() { # NAME ADDR CERT: nginx logging the SNI it was sent
	nginx_serve "$1" "$2" "$P" '$remote_addr $status sni=$ssl_server_name' ssl \
		"ssl_certificate $T/$3.pem; ssl_certificate_key $T/$3.key;"
}
tls_server fe1 127.0.0.2 fe1
tls_server ip 127.0.0.5 ip
tls_server noip 127.0.0.6 fe1
vip() { # NAME PORT POOL
	printf '[vip %s]\nlisten = 127.0.0.1:%s\npool = %s\ntls = terminate\ntls_cert = vip.pem\n' "$1" "$2" "$3"
	printf 'tls_key = vip.key\nserver_tls = on\nserver_ca = ca.pem\n'
}
{
	printf '[global]\nworkers = 1\n'
	printf '[pool good]\nserver = fe1 127.0.0.2:%s server_name=fe1.pool.lab\n' "$P"
	printf '[pool wrong]\nserver = fe1 127.0.0.2:%s server_name=fe2.pool.lab\n' "$P"
	printf '[pool level]\nserver = fe1 127.0.0.2:%s\nserver_name = fe1.pool.lab\n' "$P"
	printf '[pool ip]\nserver = ip 127.0.0.5:%s\n' "$P"
	printf '[pool noip]\nserver = noip 127.0.0.6:%s\n' "$P"
	printf '[pool checked]\nserver = fe1 127.0.0.2:%s server_name=fe2.pool.lab\n' "$P"
	printf 'server = fe1ok 127.0.0.2:%s server_name=fe1.pool.lab\n' "$P"
	printf 'check = https\ncheck_ca = ca.pem\ncheck_interval = 200ms\ncheck_fall = 1\n'
	vip good "$V1" good; vip wrong "$V2" wrong; vip level "$V3" level; vip ip "$V4" ip
	vip noip "$V5" noip
} >"$T/p.ini"
"$SNATPROXY" -t -c "$T/p.ini" || fail "config refused"
proxy_start proxy "$T/p.ini"
get() { curl -fsS -m 5 --cacert "$T/ca.pem" --resolve "pool01.lab.test:$1:127.0.0.1" "https://pool01.lab.test:$1/"; }

info "matching names pass: server_name= (sent as SNI), the pool's server_name, an IP SAN"
get "$V1" | grep -qx fe1 || fail "server_name=fe1.pool.lab refused"
get "$V3" | grep -qx fe1 || fail "the pool's server_name refused"
get "$V4" | grep -qx ip || fail "the server's address as an IP SAN refused"
[ "$(grep -c ' 200 sni=fe1.pool.lab$' "$T/fe1.access")" -ge 2 ] ||
	fail "fe1 was not sent server_name as SNI: $(cat "$T/fe1.access")"

info "mismatches are refused, and the log names the name expected"
get "$V2" >/dev/null 2>&1 && fail "a server whose certificate names fe1.pool.lab passed as fe2.pool.lab"
wait_for 5 grep -qE 'conn vip=wrong .*end=tls-handshake-failed .*tls_error="certificate verify failed: hostname mismatch \(expected fe2.pool.lab\)"' "$T/proxy.log"
grep -E 'vip wrong: TLS handshake with server fe1 127.0.0.2:[0-9]+ failed: certificate verify failed: hostname mismatch \(expected fe2.pool.lab\)' "$T/proxy.log" ||
	fail "the mismatch is not logged with the server and the name expected"
get "$V5" >/dev/null 2>&1 && fail "a server whose certificate lacks its address passed"
wait_for 5 grep -E 'vip noip: TLS handshake with server noip 127.0.0.6:[0-9]+ failed: certificate verify failed: IP address mismatch \(expected 127.0.0.6\)' "$T/proxy.log"
[ -s "$T/noip.access" ] && fail "a request reached the unverified server"

info "an https check verifies server_name too"
wait_for 5 grep -q "server fe1 127.0.0.2:$P of pool checked is DOWN: certificate verify failure: hostname mismatch (server certificate for 'fe2.pool.lab'" "$T/proxy.log"
sleep 0.5
grep -q "server fe1ok .* of pool checked is DOWN" "$T/proxy.log" && fail "the matching server was marked down"
proxy_stop proxy
pass "server names verified: matches pass, mismatches refused and logged"
