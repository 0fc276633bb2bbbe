#!/usr/bin/env bash
# server_tls = on: a terminating VIP opens TLS again to nginx servers that
# require client certificates (mutual TLS); requests succeed and are balanced,
# the proxy presents server_cert, verifies the servers against server_ca and
# resumes its sessions with each server. A server whose certificate does not
# chain to server_ca fails the handshake, logged with the reason.
. "$(dirname "$0")/../lib.sh"
need nginx curl openssl
P=$(pick_port); Q=$(pick_port); R=$(pick_port)
tls_ca
tls_cert vip pool01.lab.test
tls_cert fe1 fe1.lab.test
tls_cert fe2 fe2.lab.test rsa
tls_cert proxy proxy.lab.test
nginx_tls_start fe1 127.0.0.2 "$P" fe1 "$T/ca.pem"
nginx_tls_start fe2 127.0.0.3 "$P" fe2 "$T/ca.pem"
# A CA of its own, unknown to the proxy.
mkdir -p "$T/other"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=other CA" \
	-keyout "$T/other/ca.key" -out "$T/other/ca.pem" >>"$T/openssl.log" 2>&1 || fail "other CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=rogue" \
	-keyout "$T/rogue.key" -out "$T/rogue.pem" >>"$T/openssl.log" 2>&1 || fail "rogue cert"
nginx_tls_start rogue 127.0.0.4 "$P" rogue
cat >"$T/p.ini" <<CFG
[global]
workers = 2
[pool fes]
server = fe1 127.0.0.2:$P server_name=fe1.lab.test
server = fe2 127.0.0.3:$P server_name=fe2.lab.test
[pool rogue]
server = rogue 127.0.0.4:$P
[vip web]
listen = 127.0.0.1:$Q
pool = fes
tls = terminate
tls_cert = vip.pem
tls_key = vip.key
server_tls = on
server_cert = proxy.pem
server_key = proxy.key
server_ca = ca.pem
[vip bad]
listen = 127.0.0.1:$R
pool = rogue
tls = terminate
tls_cert = vip.pem
tls_key = vip.key
server_tls = on
server_ca = ca.pem
CFG
"$SNATPROXY" -t -c "$T/p.ini" || fail "config refused"
proxy_start proxy "$T/p.ini"

get() { curl -fsS --cacert "$T/ca.pem" --resolve "pool01.lab.test:$1:127.0.0.1" "https://pool01.lab.test:$1/"; }

info "curl through the terminating VIP to nginx servers requiring client certificates"
for i in $(seq 8); do get "$Q" || fail "request $i"; done >"$T/a"
sort "$T/a" | uniq -c
[ "$(grep -c fe1 "$T/a")" -eq 4 ] && [ "$(grep -c fe2 "$T/a")" -eq 4 ] || fail "not balanced 4:4"
grep -q 'CN=proxy.lab.test' "$T/fe1.access" || fail "fe1 did not see the proxy's client certificate"
grep -q 'CN=proxy.lab.test' "$T/fe2.access" || fail "fe2 did not see the proxy's client certificate"
wait_for 5 grep -qE 'conn vip=web .* tls=TLSv1.3 .* server_tls=TLSv1.3' "$T/proxy.log"

info "sessions with each server are resumed"
# Each worker keeps the latest session per server, and takes it as soon as
# the server's ticket arrives (before its answer): of a server's 4
# connections, only the first one each worker makes can be a full
# handshake, so with 2 workers at least 2 are resumed. nginx logs "r" when
# the session was reused.
for s in fe1 fe2; do
	n=$(grep -cE ' 200 TLSv1.3 r ' "$T/$s.access")
	echo "$s: $n of 4 sessions resumed"
	[ "$n" -ge 2 ] || { cat "$T/$s.access"; fail "$s resumed $n of its 4 sessions, not at least 2"; }
done
# The proxy's log says the same of every connection.
wait_for 5 lines_at_least 8 "$T/proxy.log" 'conn vip=web '
[ "$(grep -c 'conn vip=web .* server_resumed' "$T/proxy.log")" -eq \
	"$(cat "$T/fe1.access" "$T/fe2.access" | grep -cE ' 200 TLSv1.3 r ')" ] ||
	fail "the proxy's log and nginx's disagree on which sessions were resumed"

info "a server whose certificate is not from server_ca: handshake failure, logged"
get "$R" >/dev/null 2>&1 && fail "a request reached an unverified server"
wait_for 5 grep -qE 'conn vip=bad .*end=tls-handshake-failed .*tls_error="certificate verify failed: self-signed certificate"' "$T/proxy.log"
grep -q 'vip bad: TLS handshake with server rogue 127.0.0.4:[0-9]* failed: certificate verify failed' "$T/proxy.log" ||
	fail "server handshake failure not logged"
[ "$(get "$Q")" != "" ] || fail "the good VIP stopped working"
proxy_stop proxy
pass "mutual TLS to the servers, balanced, sessions resumed, unverified server refused"
