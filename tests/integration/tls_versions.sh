#!/usr/bin/env bash
# What the TLS front door accepts, seen by openssl s_client: by default TLS
# 1.1 is refused and a CBC suite of TLS 1.2 accepted; a VIP with
# tls_min_version = 1.0 accepts TLS 1.1 and 1.0 (and relays over them) and
# -t warns about it naming the VIP; config/tls.ini (the hardened example of
# docs/tls.md, run as shipped but for its ports and files) refuses the CBC
# suite and negotiates ALPN. -t names the file:line of a bad cipher and of
# min > max.
. "$(dirname "$0")/../lib.sh"
need nginx openssl
here=$(cd "$(dirname "$0")/../.." && pwd)
P=$(pick_port); D=$(pick_port); O=$(pick_port); H=$(pick_port)
tls_ca
mkdir -p "$T/tls"
tls_cert vip pool01.lab.test
cp "$T/vip.pem" "$T/vip.key" "$T/tls/"
nginx_start fe1 127.0.0.2 "$P"

# The example as shipped, on this test's ports, toward fe1 only.
sed -e "s/127.0.0.1:8443/127.0.0.1:$H/" -e "s/^server = web1 .*/server = web1 127.0.0.2:$P/" \
	-e '/^server = web2 /d' -e '/^admin = /d' "$here/config/tls.ini" >"$T/hard.ini"
cat >"$T/p.ini" <<CFG
[pool web]
server = fe1 127.0.0.2:$P
[vip def]
listen = 127.0.0.1:$D
pool = web
tls = terminate
tls_cert = vip.pem
tls_key = vip.key
[vip old]
listen = 127.0.0.1:$O
pool = web
tls = terminate
tls_cert = vip.pem
tls_key = vip.key
tls_min_version = 1.0
tls_alpn = http/1.1
CFG
"$SNATPROXY" -t -c "$T/hard.ini" || fail "the hardened example is refused"
"$SNATPROXY" -t -c "$T/p.ini" >"$T/t.out" 2>&1 || fail "config refused: $(cat "$T/t.out")"
grep -q "p.ini:15: warning: vip old: tls_min_version 1.0 allows TLS 1.0 and 1.1" "$T/t.out" ||
	fail "no warning for TLS 1.0 naming the VIP: $(cat "$T/t.out")"

info "-t: min above max, an unknown cipher, a TLS 1.3 suite misspelt"
sed -e 's/^tls_min_version = 1.0/tls_min_version = 1.3\ntls_max_version = 1.2/' \
	-e 's/^tls_alpn = .*/tls_ciphers = ECDHE+AESGCM:NO-SUCH-CIPHER\ntls_ciphersuites = TLS_AES_999/' \
	"$T/p.ini" >"$T/bad.ini"
"$SNATPROXY" -t -c "$T/bad.ini" >"$T/bad.out" 2>&1 && fail "a bad TLS setting passed -t"
cat "$T/bad.out"
grep -q "bad.ini:16: vip old: tls_min_version 1.3 is above tls_max_version 1.2" "$T/bad.out" ||
	fail "min > max not reported at its line"
grep -q "bad.ini:17: vip old: tls_ciphers: 'NO-SUCH-CIPHER' names no cipher" "$T/bad.out" ||
	fail "unknown cipher not reported at its line"
grep -q "bad.ini:18: vip old: tls_ciphersuites: 'TLS_AES_999' is not a TLS 1.3 cipher suite" \
	"$T/bad.out" || fail "unknown TLS 1.3 suite not reported at its line"

proxy_start proxy "$T/p.ini"
proxy_start hard "$T/hard.ini"
[ "$(grep -c 'warning: vip old: tls_min_version 1.0 allows' "$T/proxy.log")" -eq 1 ] ||
	fail "the start did not warn once about TLS 1.0: $(head -n 3 "$T/proxy.log")"

# s_client PORT ARGS...: a handshake (and a request), its output in $T/s.out;
# OpenSSL's own security level is lowered so that the client never refuses
# what the test wants the server to decide.
s_client() {
	local port=$1; shift
	printf 'GET / HTTP/1.0\r\nHost: pool01.lab.test\r\n\r\n' |
		timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername pool01.lab.test \
			-CAfile "$T/ca.pem" -ign_eof "$@" >"$T/s.out" 2>&1
}
accepted() { # WHAT PORT ARGS...
	local what=$1; shift
	s_client "$@" || fail "$what: refused: $(grep -iE 'error|alert' "$T/s.out" | head -3)"
	grep -q '^fe1$' "$T/s.out" || fail "$what: no answer from fe1 through the VIP"
	echo "$what: accepted ($(grep -E '^ +(Protocol|Cipher) +:' "$T/s.out" | tr -s ' ' | paste -sd,))"
}
refused() { # WHAT PORT ARGS...
	local what=$1; shift
	s_client "$@" && fail "$what: accepted: $(grep -E '^ +(Protocol|Cipher) +:' "$T/s.out" | tr -s ' ')"
	grep -q '^fe1$' "$T/s.out" && fail "$what: a request went through"
	echo "$what: refused ($(grep -oE 'alert [a-z ]+|no protocols available|no ciphers available' "$T/s.out" | head -1))"
}
CBC=ECDHE-ECDSA-AES128-SHA256
GCM=ECDHE-ECDSA-AES128-GCM-SHA256

info "default: TLS 1.1 refused, TLS 1.2 with a CBC suite accepted, TLS 1.3 accepted"
refused "default, -tls1_1" "$D" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
refused "default, -tls1" "$D" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
accepted "default, -tls1_2 $CBC" "$D" -tls1_2 -cipher "$CBC"
grep -qE "^ +Cipher +: $CBC" "$T/s.out" || fail "not $CBC"
accepted "default, -tls1_3" "$D" -tls1_3
grep -q 'No ALPN negotiated' "$T/s.out" || fail "ALPN negotiated without tls_alpn"

info "tls_min_version = 1.0: TLS 1.1 and 1.0 accepted"
accepted "min 1.0, -tls1_1" "$O" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
grep -qE '^ +Protocol +: TLSv1.1$' "$T/s.out" || fail "not TLS 1.1"
accepted "min 1.0, -tls1" "$O" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
grep -qE '^ +Protocol +: TLSv1$' "$T/s.out" || fail "not TLS 1.0"
info "ALPN: the VIP's choice among the client's offers, or none in common"
accepted "min 1.0, -alpn h2,http/1.1" "$O" -alpn h2,http/1.1
grep -q '^ALPN protocol: http/1.1$' "$T/s.out" || fail "ALPN http/1.1 not negotiated"
accepted "min 1.0, -alpn h2" "$O" -alpn h2
grep -q 'No ALPN negotiated' "$T/s.out" || fail "ALPN negotiated with nothing in common"

info "hardened example: no CBC suite, no TLS 1.1, GCM and TLS 1.3 fine, ALPN"
refused "hardened, -tls1_2 $CBC" "$H" -tls1_2 -cipher "$CBC"
refused "hardened, -tls1_2 ECDHE-ECDSA-AES256-SHA" "$H" -tls1_2 -cipher ECDHE-ECDSA-AES256-SHA
refused "hardened, -tls1_1" "$H" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
accepted "hardened, -tls1_2 $GCM" "$H" -tls1_2 -cipher "$GCM"
accepted "hardened, -tls1_3 -alpn h2,http/1.1" "$H" -tls1_3 -alpn h2,http/1.1
grep -q '^ALPN protocol: http/1.1$' "$T/s.out" || fail "ALPN not negotiated by the example"
proxy_stop proxy
proxy_stop hard
pass "versions, cipher suites and ALPN enforced as configured"
