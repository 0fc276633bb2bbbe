#!/usr/bin/env bash
# https health checks with client certificates (mutual TLS), against a real
# nginx that verifies them, on loopback, with a CA and certificates made by
# openssl here: a good certificate keeps the server up; a certificate
# without clientAuth, a wrong CA, a wrong name (SNI) and a TLS alert from the
# server (openssl s_server) each mark it down with their own cause. At start
# and with -t, a key that does not match or an expired certificate is an
# error and a certificate without clientAuth a warning; `snatproxy -C`
# reports what a certificate can serve as, with advice that fits the failure
# (-a CA for a chain that does not verify, the event 61013 advice for a
# missing clientAuth).
. "$(dirname "$0")/../lib.sh"
need nginx curl openssl

K=$T/pki
mkdir -p "$K"
ossl() { openssl "$@" >>"$K/openssl.log" 2>&1 || fail "openssl $1 failed: $(tail -n 3 "$K/openssl.log")"; }
make_ca() { # NAME
	ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1" \
		-keyout "$K/$1.key" -out "$K/$1.pem" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign"
}
make_cert() { # NAME EKU
	ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1.test" \
		-keyout "$K/$1.key" -out "$K/$1.csr"
	printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=$2" "subjectAltName=DNS:pool01.test,IP:127.0.0.2" >"$K/$1.ext"
	ossl x509 -req -in "$K/$1.csr" -CA "$K/ca.pem" -CAkey "$K/ca.key" -CAcreateserial -days 2 \
		-extfile "$K/$1.ext" -out "$K/$1.pem"
}
make_ca ca
make_ca otherca
make_cert fe serverAuth,clientAuth
make_cert noclient serverAuth
# An expired one: `openssl ca` is the tool of 3.0 that takes past dates.
printf '%s\n' "[ca]" "default_ca = d" "[d]" "database = $K/index.txt" "new_certs_dir = $K" \
	"serial = $K/serial" "default_md = sha256" "policy = p" "[p]" "commonName = supplied" >"$K/ca.cnf"
: >"$K/index.txt"; echo 01 >"$K/serial"
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=old.test" \
	-keyout "$K/old.key" -out "$K/old.csr"
ossl ca -batch -config "$K/ca.cnf" -cert "$K/ca.pem" -keyfile "$K/ca.key" -in "$K/old.csr" \
	-out "$K/old.pem" -startdate 20200101000000Z -enddate 20200102000000Z -notext

info "snatproxy -C: what each certificate can serve as"
"$SNATPROXY" -C "$K/fe.pem" -k "$K/fe.key" -a "$K/ca.pem" | tee "$T/c1" || fail "-C refused a good certificate"
grep -q "TLS client:  yes" "$T/c1" && grep -q "TLS server:  yes" "$T/c1" || fail "-C: good cert not usable both ways"
grep -q "private key: .* matches" "$T/c1" || fail "-C: the key does not match?"
rc=0; "$SNATPROXY" -C "$K/noclient.pem" -k "$K/noclient.key" -a "$K/ca.pem" >"$T/c2" || rc=$?
cat "$T/c2"
[ "$rc" -eq 1 ] || fail "-C on a cert without clientAuth exited $rc, expected 1"
grep -q "TLS client:  NO: its extended key usage lacks clientAuth" "$T/c2" || fail "-C: no clientAuth diagnosis"
grep -q "^advice: .*event 61013" "$T/c2" || fail "-C: no advice"
rc=0; "$SNATPROXY" -C "$K/fe.pem" -k "$K/noclient.key" >"$T/c3" || rc=$?
[ "$rc" -eq 1 ] && grep -q "DOES NOT MATCH" "$T/c3" || fail "-C: a wrong key is not reported ($rc)"
rc=0; "$SNATPROXY" -C "$K/old.pem" -k "$K/old.key" -a "$K/ca.pem" >"$T/c4" || rc=$?
[ "$rc" -eq 1 ] && grep -q "EXPIRED" "$T/c4" || fail "-C: an expired certificate is not reported ($rc)"
# The seed's first cause: a root trusted for Server Authentication only.
ossl x509 -in "$K/ca.pem" -addtrust serverAuth -out "$K/ca-serveronly.pem"
rc=0; "$SNATPROXY" -C "$K/fe.pem" -k "$K/fe.key" -a "$K/ca-serveronly.pem" >"$T/c6" || rc=$?
grep chain "$T/c6"
[ "$rc" -eq 1 ] && grep -q "chain as client: certificate rejected: the root's trust settings do not allow Client Authentication" "$T/c6" &&
	grep -q "chain as server: verified" "$T/c6" && grep -q "^advice: " "$T/c6" ||
	fail "-C: a root trusted for serverAuth only is not reported ($rc)"
info "snatproxy -C: advice that fits the failure"
grep -q "^advice: " "$T/c1" && fail "-C: advice for a good certificate: $(grep advice "$T/c1")"
grep -q "^advice: .*-a CA" "$T/c2" && fail "-C: chain advice for a chain that verifies"
rc=0; "$SNATPROXY" -C "$K/fe.pem" -k "$K/fe.key" >"$T/c7" || rc=$?
grep advice "$T/c7"
[ "$rc" -eq 1 ] && grep -q "^advice: the chain does not verify against the system's CA store .*give its certificate with -a CA" "$T/c7" ||
	fail "-C: a private CA's certificate without -a gets no advice to give -a"
grep -q "event 61013" "$T/c7" && fail "-C: the 61013 advice for a chain problem"
rc=0; "$SNATPROXY" -C "$K/fe.pem" -k "$K/fe.key" -a "$K/otherca.pem" >"$T/c8" || rc=$?
[ "$rc" -eq 1 ] && grep -q "^advice: .*otherca.pem holds no issuer of .*fe.pem" "$T/c8" ||
	fail "-C: a wrong -a CA gets no advice: $(grep advice "$T/c8")"
grep -q "^advice: .*noclient.key is not the key of" "$T/c3" || fail "-C: no advice for a wrong key"
grep -q "^advice: .*old.pem is expired: issue a new one" "$T/c4" || fail "-C: no advice for an expired certificate"
"$SNATPROXY" -C "$T/nothere.pem" 2>"$T/c5" && fail "-C on a missing file succeeded"
grep -q "cannot open .*nothere.pem" "$T/c5" || fail "-C: no reason for a missing file: $(cat "$T/c5")"

P=$(pick_port); R=$(pick_port); A=$(pick_port)
pool() { # NAME SERVER-PORT EXTRA-LINES...
	local name=$1 port=$2; shift 2
	printf '[pool %s]\ncheck = https\ncheck_interval = 200ms\ncheck_timeout = 2s\ncheck_fall = 1\n' "$name"
	printf 'check_path = /LiveServer/MCUFactory/\ncheck_expect = 200\ncheck_body = MCUFactory\n'
	printf '%s\n' "$@" "server = fe 127.0.0.2:$port"
}
good=("check_host = pool01.test" "check_cert = $K/fe.pem" "check_key = $K/fe.key" "check_ca = $K/ca.pem")

info "start-up: a key that does not match and an expired certificate are errors"
{ pool p "$P" "check_cert = $K/fe.pem" "check_key = $K/noclient.key" "check_ca = $K/ca.pem"
  printf '[vip v]\nlisten = 127.0.0.1:%s\npool = p\n' "$A"; } >"$T/bad.ini"
"$SNATPROXY" -t -c "$T/bad.ini" 2>"$T/bad.err" && fail "-t accepted a key that does not match"
cat "$T/bad.err"
grep -q "bad.ini:10: pool p: the private key in .*noclient.key does not match check_cert .*fe.pem" "$T/bad.err" ||
	fail "no FILE:LINE error for the wrong key"
{ pool p "$P" "check_cert = $K/old.pem" "check_key = $K/old.key" "check_ca = $K/ca.pem"
  printf '[vip v]\nlisten = 127.0.0.1:%s\npool = p\n' "$A"; } >"$T/old.ini"
"$SNATPROXY" -t -c "$T/old.ini" 2>"$T/old.err" && fail "-t accepted an expired certificate"
cat "$T/old.err"
grep -q "old.ini:9: pool p: check_cert .*old.pem expired on Jan  2 00:00:00 2020 GMT" "$T/old.err" ||
	fail "no FILE:LINE error for the expired certificate"

info "nginx with mutual TLS, openssl s_server that sends an alert"
d=$T/nginx-tls
nginx_conf "$d" 256 info <<EOF
access_log $d/access.log;
server {
    listen 127.0.0.2:$P ssl;
    server_name pool01.test;
    ssl_certificate $K/fe.pem;
    ssl_certificate_key $K/fe.key;
    ssl_client_certificate $K/ca.pem;
    ssl_verify_client on;
    location /LiveServer/MCUFactory/ { default_type text/plain; return 200 "MCUFactory fe\n"; }
}
EOF
bg nginx-tls nginx -c "$d/nginx.conf" -e "$d/error.log"
wait_for 10 listening 127.0.0.2 "$P"
bg sserver openssl s_server -accept "127.0.0.2:$R" -cert "$K/fe.pem" -key "$K/fe.key" \
	-CAfile "$K/ca.pem" -Verify 1 -verify_return_error -www -naccept 1000
wait_for 10 listening 127.0.0.2 "$R"

{ printf '[global]\nworkers = 2\n'
  pool good "$P" "${good[@]}"
  pool noclient "$P" "check_host = pool01.test" "check_cert = $K/noclient.pem" "check_key = $K/noclient.key" "check_ca = $K/ca.pem"
  pool wrongca "$P" "check_host = pool01.test" "check_cert = $K/fe.pem" "check_key = $K/fe.key" "check_ca = $K/otherca.pem"
  pool wrongsni "$P" "check_host = wrong.test" "check_cert = $K/fe.pem" "check_key = $K/fe.key" "check_ca = $K/ca.pem"
  pool alert "$R" "check_host = pool01.test" "check_cert = $K/noclient.pem" "check_key = $K/noclient.key" "check_ca = $K/ca.pem"
  printf '[vip v]\nlisten = 127.0.0.1:%s\npool = good\n' "$A"; } >"$T/p.ini"
"$SNATPROXY" -t -c "$T/p.ini" 2>"$T/t.err" || fail "the test's config is refused: $(cat "$T/t.err")"
grep -q "warning: pool noclient: check_cert .*noclient.pem cannot be used for client authentication: its extended key usage lacks clientAuth.*snatproxy -C .*noclient.pem says what to change" \
	"$T/t.err" || fail "-t gives no warning for the certificate without clientAuth"
proxy_start proxy "$T/p.ini"
grep -q "warning: pool noclient: check_cert" "$T/proxy.log" || fail "no start-up warning in the log"

info "each failure with its own cause"
wait_for 5 grep -q "of pool noclient is DOWN: unexpected status: 'HTTP/1.1 400 Bad Request'; check_cert .*noclient.pem lacks the clientAuth purpose" "$T/proxy.log"
wait_for 5 grep -q "of pool wrongca is DOWN: certificate verify failure: unable to get local issuer certificate" "$T/proxy.log"
wait_for 5 grep -q "of pool wrongsni is DOWN: certificate verify failure: hostname mismatch (server certificate for 'wrong.test'" "$T/proxy.log"
wait_for 5 grep -q "of pool alert is DOWN: TLS alert from the server: unsupported certificate" "$T/proxy.log"
grep "is DOWN" "$T/proxy.log"
grep -q "of pool good is DOWN" "$T/proxy.log" && fail "the good check failed"
grep -q 'GET /LiveServer/MCUFactory/ HTTP/1.1" 200' "$d/access.log" || fail "nginx logged no successful check"

info "the good pool serves through the VIP"
curl -fsS -m 3 --cacert "$K/ca.pem" --cert "$K/fe.pem" --key "$K/fe.key" \
	--resolve "pool01.test:$A:127.0.0.1" "https://pool01.test:$A/LiveServer/MCUFactory/" ||
	fail "no answer through the VIP"
proxy_stop proxy
pass "https checks with client certificates"
