#!/usr/bin/env bash
# health_config: the check_* keys with `snatproxy -t`: good values pass,
# each mistake is one "FILE:LINE: message" naming the right line; a missing
# certificate file is reported where it is named.
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/confcheck.sh
. tests/confcheck.sh

vip='[vip v]
listen = 198.18.0.10:444
pool = p'

expect_ok <<EOF
[pool p]
server = a 198.18.0.11
server = b 198.18.0.12:8443 backup
check = https
check_port = 444
check_path = /LiveServer/MCUFactory/
check_method = HEAD
check_host = pool01.lab.test
check_expect = 200-299,405
check_body = MCUFactory
check_interval = 500ms
check_timeout = 300ms
check_rise = 1
check_fall = 5
$vip
EOF
expect_error 3 "bad value for 'check': expected none, tcp, http or https, got 'icmp'" <<EOF
[pool p]
server = a 198.18.0.11:80
check = icmp
$vip
EOF
expect_error 4 "bad value for 'check_expect'" <<EOF
[pool p]
server = a 198.18.0.11:80
check = http
check_expect = 200-100
$vip
EOF
expect_error 3 "bad value for 'check_path'" <<EOF
[pool p]
server = a 198.18.0.11:80
check_path = LiveServer
$vip
EOF
expect_error 3 "bad value for 'check_interval'" <<EOF
[pool p]
server = a 198.18.0.11:80
check_interval = 2
$vip
EOF
expect_error 3 "bad value for 'check_fall': expected a number from 1 to 100, got '0'" <<EOF
[pool p]
server = a 198.18.0.11:80
check_fall = 0
$vip
EOF
expect_error 3 "pool p: server a has no port, so its checks need check_port = PORT" <<EOF
[pool p]
server = a 198.18.0.11
check = tcp
$vip
EOF
expect_error 4 "pool p: check_key without check_cert" <<EOF
[pool p]
server = a 198.18.0.11:443
check = https
check_key = fe.key
$vip
EOF
expect_error 4 "pool p: check_cert and check_ca need check = https" <<EOF
[pool p]
server = a 198.18.0.11:80
check = http
check_ca = ca.pem
$vip
EOF
# Files are relative to the config's directory, and a missing one is named.
expect_error 4 "pool p: check_cert: cannot open $tmp/nothere.pem: No such file or directory" <<EOF
[pool p]
server = a 198.18.0.11:443
check = https
check_cert = nothere.pem
check_ca = /etc/ssl/certs/ca-certificates.crt
$vip
EOF
expect_error 4 "pool p: check_ca $tmp/noca.pem: cannot load CA certificates" <<EOF
[pool p]
server = a 198.18.0.11:443
check = https
check_ca = noca.pem
$vip
EOF
confcheck_done
