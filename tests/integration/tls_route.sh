#!/usr/bin/env bash
# tls = route: the pool is chosen by the ClientHello's SNI and the bytes go
# through untouched (the client sees each nginx server's own certificate);
# garbage, a truncated or oversized hello, or none at all is closed without
# harming the other clients.
. "$(dirname "$0")/../lib.sh"
need nginx curl openssl
P=$(pick_port); Q=$(pick_port)
tls_ca
tls_cert one pool01.lab.test
tls_cert two www.two.test
nginx_tls_start fe1 127.0.0.2 "$P" one
nginx_tls_start fe2 127.0.0.3 "$P" two
cat >"$T/p.ini" <<CFG
[global]
workers = 2
[pool ones]
server = fe1 127.0.0.2:$P
[pool twos]
server = fe2 127.0.0.3:$P
[vip route]
listen = 127.0.0.1:$Q
pool = ones
tls = route
route = pool01.lab.test ones
route = *.two.test twos
timeout_connect = 1s
CFG
"$SNATPROXY" -t -c "$T/p.ini" || fail "config refused"
proxy_start proxy "$T/p.ini"

get() { # NAME: what the server reached by SNI NAME answers, its certificate checked
	curl -fsS --cacert "$T/ca.pem" --resolve "$1:$Q:127.0.0.1" "https://$1:$Q/"
}

info "SNI chooses the pool; the certificate is the server's own"
[ "$(get pool01.lab.test)" = fe1 ] || fail "pool01.lab.test did not reach fe1"
[ "$(get www.two.test)" = fe2 ] || fail "www.two.test did not reach fe2"
wait_for 5 grep -q 'conn vip=route .*server=fe2/.* end=[a-z-]* sni=www.two.test$' "$T/proxy.log"

info "a hello in many small records and TCP segments"
openssl s_client -connect "127.0.0.1:$Q" -servername www.two.test -max_send_frag 512 \
	-CAfile "$T/ca.pem" -verify_return_error </dev/null >"$T/frag.out" 2>&1 ||
	{ cat "$T/frag.out"; fail "fragmented hello refused"; }
grep -q "CN = www.two.test" "$T/frag.out" || fail "fragmented hello went to the wrong server"

info "no SNI, or an unknown one: the VIP's own pool"
curl -fsS -k "https://127.0.0.1:$Q/" | grep -qx fe1 || fail "no SNI did not reach the default pool"

info "a silent client is closed after timeout_connect while others go on"
exec 3<>"/dev/tcp/127.0.0.1/$Q"
[ "$(get www.two.test)" = fe2 ] || fail "a silent client blocked another"
wait_for 5 grep -q 'conn vip=route .* end=hello-timeout' "$T/proxy.log"
rc=0; timeout 2 cat <&3 >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 124 ] || fail "the silent client's connection was not closed"
exec 3<&-

info "garbage, a truncated hello and an oversized one are closed"
send() { # BYTES [wait]: sends BYTES, then closes at once or waits for the proxy to close
	exec 4<>"/dev/tcp/127.0.0.1/$Q"
	printf "$1" >&4
	[ -z "${2:-}" ] || timeout 5 cat <&4 >/dev/null 2>&1
	exec 4<&-
}
send 'GET / HTTP/1.0\r\n\r\n' wait
wait_for 5 grep -q 'end=bad-hello:EBADMSG' "$T/proxy.log"
send '\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03'
wait_for 5 grep -q 'end=bad-hello:ENODATA' "$T/proxy.log"
send '\x16\x03\x01\x00\x40\x01\x01\x00\x00\x03\x03' wait
wait_for 5 grep -q 'end=bad-hello:EMSGSIZE' "$T/proxy.log"
[ "$(get pool01.lab.test)" = fe1 ] || fail "the proxy stopped serving after bad hellos"
proxy_stop proxy
pass "SNI routing, fragmented hellos and bad clients"
