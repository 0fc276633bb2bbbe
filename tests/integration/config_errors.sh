#!/usr/bin/env bash
# config_errors: `snatproxy -t -c FILE` accepts good configs (every
# config/*.ini among them) and rejects each kind of mistake with exit status 1
# and "FILE:LINE: message" on stderr, naming the right line, facts of this
# host that would stop the start included (user, access_log, admin address,
# SNAT addresses), without leaving a trace (no access_log created); every row that
# `snatproxy --keys` prints appears verbatim in docs/configuration.md, and the
# doc's key table has no row the binary does not print.
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/confcheck.sh
. tests/confcheck.sh

pool='[pool p]
server = a 198.18.0.11'
vip='[vip v]
listen = 198.18.0.10:444
pool = p'

# ---- good configs ----
for f in config/*.ini; do
	# tls.ini needs its certificate beside it: tls_versions.sh and service.sh run it.
	[ "$f" = config/tls.ini ] && continue
	[ -e "$f" ] && expect_ok "$f"
done
cat >"$tmp/good.ini" <<'EOF'
; every key, with values other than the defaults
[global]
workers = 2
max_connections = 5000
grace = 30s
buffer_size = 64k
buffers = 1024
log_connections = off

[pool web]
balance = source
fail_timeout = 30s
server = w1 198.18.0.11:8080 weight=2 max_conn=100
server = w2 [2001:db8::12]:8080 backup
	w3 198.18.0.13          ; continuation of `server`, no port

[vip front]
listen = 198.18.0.10:80
listen = [2001:db8::10]:80
pool = web
; SNAT addresses must be this host's: loopback ones are
snat = 127.0.0.20 127.0.0.21
snat = ::1
timeout_connect = 500ms
timeout_idle = 2h
EOF
expect_ok "$tmp/good.ini"

# ---- one mistake each ----
expect_error 1 "outside any section" <<EOF
workers = 2
$pool
$vip
EOF
expect_error 3 "unknown section kind '[backend]'" <<EOF
$pool
[backend b]
server = x 198.18.0.12
$vip
EOF
expect_error 3 "section [pool] needs a name" <<EOF
$pool
[pool]
server = x 198.18.0.12
$vip
EOF
expect_error 3 "duplicate pool p (first on line 1)" <<EOF
$pool
[pool p]
server = x 198.18.0.12
$vip
EOF
expect_error 6 "duplicate vip v (first on line 3)" <<EOF
$pool
$vip
[vip v]
listen = 198.18.0.10:443
pool = p
EOF
expect_error 2 "unknown key 'worker' in a [global] section" <<EOF
[global]
worker = 4
$pool
$vip
EOF
expect_error 3 "unknown key 'listen' in a [pool NAME] section" <<EOF
$pool
listen = 198.18.0.10:80
$vip
EOF
expect_error 6 "unknown key 'timeout' in a [vip NAME] section" <<EOF
$pool
$vip
timeout = 5s
EOF
expect_error 2 "bad value for 'workers': expected auto or a number from 1 to 64, got '65'" <<EOF
[global]
workers = 65
$pool
$vip
EOF
expect_error 2 "bad value for 'buffer_size'" <<EOF
[global]
buffer_size = 10000
$pool
$vip
EOF
expect_error 3 "bad value for 'balance'" <<EOF
$pool
balance = fastest
$vip
EOF
expect_error 3 "bad value for 'fail_timeout': expected 0 or a duration up to 1h" <<EOF
$pool
fail_timeout = 2h
$vip
EOF
expect_error 3 "server b: bad weight" <<EOF
$pool
server = b 198.18.0.12 weight=300
$vip
EOF
expect_error 3 "duplicate server name 'a'" <<EOF
$pool
server = a 198.18.0.12
$vip
EOF
expect_error 6 "bad value for 'timeout_idle'" <<EOF
$pool
$vip
timeout_idle = 30
EOF
expect_error 6 "bad value for 'listen'" <<EOF
$pool
$vip
listen = 198.18.0.10
EOF
expect_error 6 "bad value for 'snat'" <<EOF
$pool
$vip
snat = 198.18.0.20:1024
EOF
expect_error 1 "pool p has no server" <<EOF
[pool p]
$vip
EOF
expect_error 3 "vip v has no listen" <<EOF
$pool
[vip v]
pool = p
EOF
expect_error 3 "vip v has no pool" <<EOF
$pool
[vip v]
listen = 198.18.0.10:444
EOF
expect_error 6 "pool other is not defined" <<EOF
$pool
[vip v]
listen = 198.18.0.10:444
; the error names the line of the pool key
pool = other
EOF
expect_error 7 "listen 198.18.0.10:444 is already used by vip v (line 3)" <<EOF
$pool
$vip
[vip w]
listen = 198.18.0.10:444
pool = p
EOF
expect_error 4 "line too long" <<EOF
$pool
; the next line is longer than inih's 200-byte line buffer
server = b 198.18.0.12 ; $(printf '%0250d' 0)
$vip
EOF
expect_error 6 "expected 'key = value' or '[section]'" <<EOF
$pool
$vip
pool p
EOF
expect_error 6 "bad value for 'tls'" <<EOF
$pool
$vip
tls = decrypt
EOF
expect_error 6 "vip v: route needs tls = route" <<EOF
$pool
$vip
route = a.test p
EOF
expect_error 7 "route a.test: pool nope is not defined" <<EOF
$pool
$vip
tls = route
route = a.test nope
EOF
expect_error 7 "route: bad server name 'a..test'" <<EOF
$pool
$vip
tls = route
route = a..test p
EOF
expect_error 8 "route a.test is given twice in vip v (first on line 7)" <<EOF
$pool
$vip
tls = route
route = A.test p
route = a.test p
EOF
expect_error 6 "vip v: tls = terminate needs tls_cert and tls_key" <<EOF
$pool
$vip
tls = terminate
EOF
expect_error 7 "vip v: 1 tls_cert but 0 tls_key" <<EOF
$pool
$vip
tls = terminate
tls_cert = /nonexistent.pem
EOF
expect_error 7 "vip v: certificate /nonexistent.pem: No such file or directory" <<EOF
$pool
$vip
tls = terminate
tls_cert = /nonexistent.pem
tls_key = /nonexistent.key
EOF
expect_error 6 "tls_cert, tls_key and tls_client_ca need tls = terminate" <<EOF
$pool
$vip
tls_client_ca = /etc/ssl/certs/ca-certificates.crt
EOF
expect_error 6 "vip v: server_tls needs tls = terminate" <<EOF
$pool
$vip
server_tls = on
EOF
expect_error 6 "server_cert, server_key and server_ca need server_tls = on" <<EOF
$pool
$vip
server_ca = /etc/ssl/certs/ca-certificates.crt
EOF

# ---- facts of this host: what the start would trip over, -t says first ----
cat >"$tmp/host-ok.ini" <<EOF
[global]
user = root
access_log = $tmp/logs/access.log
admin = 127.0.0.1:9900
[pool p]
server = a 198.18.0.11
[vip v]
listen = 127.0.0.1:9901
pool = p
snat = 127.0.0.20
EOF
mkdir "$tmp/logs"
expect_ok "$tmp/host-ok.ini"
[ ! -e "$tmp/logs/access.log" ] || fail "-t created the access_log file"
expect_error 2 "user no_such_user: no such user on this host" <<EOF
[global]
user = no_such_user
$pool
$vip
EOF
expect_error 2 "access_log $tmp/no/such/dir/a.log: cannot be created: directory $tmp/no/such/dir: No such file or directory" <<EOF
[global]
access_log = $tmp/no/such/dir/a.log
$pool
$vip
EOF
mkdir "$tmp/access.d"
expect_error 2 "access_log $tmp/access.d: Is a directory" <<EOF
[global]
access_log = $tmp/access.d
$pool
$vip
EOF
expect_error 2 "admin 198.18.0.10:444 clashes with listen 198.18.0.10:444 of vip v (line 5)" <<EOF
[global]
admin = 198.18.0.10:444
$pool
$vip
EOF
expect_error 2 "admin 0.0.0.0:444 clashes with listen 198.18.0.10:444 of vip v (line 5)" <<EOF
[global]
admin = 0.0.0.0:444
$pool
$vip
EOF
expect_error 7 "vip v: snat address 198.18.0.20 is not an address of this host" <<EOF
$pool
$vip
; 127.0.0.20 is on lo (all of 127/8 is); 198.18.0.20 is on no interface
snat = 127.0.0.20 198.18.0.20
EOF
expect_error 6 "vip v: snat address 2001:db8::20 is not an address of this host" <<EOF
[pool p]
server = a [2001:db8::11]
[vip v]
listen = [2001:db8::10]:444
pool = p
snat = 2001:db8::20
EOF

# ---- several mistakes, all in one run ----
cases=$((cases + 1))
cat >"$tmp/many.ini" <<'EOF'
[global]
workers = lots
user = no_such_user
[pool p]
[vip v]
listen = 198.18.0.10:80
pool = missing
snat = 198.18.0.20
EOF
check "$tmp/many.ini"
[ "$rc" -eq 1 ] || fail "many.ini: exit $rc, expected 1"
for l in 2 3 4 7 8; do
	grep -qF "$tmp/many.ini:$l: " "$tmp/err" || fail "many.ini: no error on line $l: $(cat "$tmp/err")"
done

# ---- an unreadable file ----
cases=$((cases + 1))
check "$tmp/does-not-exist.ini"
[ "$rc" -eq 1 ] && grep -qF "does-not-exist.ini" "$tmp/err" ||
	fail "missing file: exit $rc, stderr: $(cat "$tmp/err")"

# ---- the key reference in the docs is the binary's ----
cases=$((cases + 1))
doc=docs/configuration.md
if ! timeout 20 "$SNATPROXY" --keys >"$tmp/keys" || [ ! -s "$tmp/keys" ]; then
	fail "snatproxy --keys printed nothing"
elif [ ! -f "$doc" ]; then
	fail "$doc is missing"
else
	while IFS= read -r row; do
		grep -qxF -- "$row" "$doc" || fail "$doc lacks this row of --keys: $row"
	done <"$tmp/keys"
	# Rows of the doc's table that the binary no longer prints are stale.
	sed -n '/^## Key reference/,/^## /p' "$doc" | grep '^| `\[' | while IFS= read -r row; do
		grep -qxF -- "$row" "$tmp/keys" || echo "$row"
	done >"$tmp/stale"
	[ ! -s "$tmp/stale" ] || fail "$doc has key rows --keys does not print: $(cat "$tmp/stale")"
fi

confcheck_done
