#!/usr/bin/env bash
# Sourced by integration tests: a scratch directory, background processes
# that are always stopped, free ports, nginx servers and the proxy.
# Tests exit 0 (pass), 77 (skip, reason on the last line) or 1 (fail).

set -u
# shellcheck source=tests/nginx.sh
. "$(dirname "${BASH_SOURCE[0]}")/nginx.sh"
T=$(mktemp -d /tmp/snatproxy-test.XXXXXX)
chmod 755 "$T"
PIDS=()
: "${SNATPROXY:?SNATPROXY must name the built binary}"
: "${TOOLS:?TOOLS must name the built tools directory}"

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null
	done
	release_ports
	sanitizer_reports
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
# A data race the ThreadSanitizer build reported in any process's log fails
# the test, whatever the test saw (make SAN=thread; the binary stops at the
# first race with status 66, see main.c).
sanitizer_reports() {
	local f
	for f in "$T"/*.log; do
		[ -f "$f" ] && grep -q 'WARNING: ThreadSanitizer' "$f" || continue
		grep -A 24 -m 1 'WARNING: ThreadSanitizer' "$f" >&2
		echo "FAIL: $(grep -m 1 "SUMMARY: ThreadSanitizer" "$f") (in $(basename "$f"))" >&2
		[ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
		exit 1
	done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
pass() { echo "PASS: $*"; exit 0; }
info() { echo "--- $*"; }

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed (make deps)"
	done
}

# A TCP port nobody uses, from a range the kernel does not hand out as
# ephemeral ports. Tests of several builds run side by side, and nginx and
# the proxy bind with SO_REUSEPORT: two of them on one port would share it
# without an error. So a port is reserved machine-wide (mkdir is atomic) from
# the pick until the test ends; reservations older than a day, left by a test
# that was killed, are taken back. $T/.ports lists this test's own.
PORTS_HELD=/tmp/snatproxy-ports
pick_port() {
	local p
	mkdir -p "$PORTS_HELD"
	find "$PORTS_HELD" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rmdir {} + 2>/dev/null
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 12000))
		ss -Htan "sport = :$p" | grep -q . && continue
		mkdir "$PORTS_HELD/$p" 2>/dev/null || continue
		echo "$p" >>"$T/.ports"
		echo "$p"
		return
	done
	fail "no free port found"
}
release_ports() {
	local p
	[ -f "$T/.ports" ] || return 0
	while read -r p; do rmdir "$PORTS_HELD/$p" 2>/dev/null; done <"$T/.ports"
}

# bg NAME CMD...: runs CMD in the background, output in $T/NAME.log.
bg() {
	local name=$1; shift
	"$@" >"$T/$name.log" 2>&1 &
	PIDS+=($!)
	eval "PID_${name//[^A-Za-z0-9_]/_}=$!"
}

# wait_for SECONDS CMD...: until CMD succeeds, or fails the test.
# The deadline is in microseconds: SECONDS counts whole seconds, so a
# deadline in it could come up to a second early.
wait_for() {
	local limit=$1; shift
	local end=$((${EPOCHREALTIME/./} + limit * 1000000))
	until "$@" >/dev/null 2>&1; do
		[ "${EPOCHREALTIME/./}" -lt $end ] || fail "timed out after ${limit}s waiting for: $*"
		sleep 0.05
	done
}

# lines_at_least N FILE REGEX: FILE has at least N lines matching REGEX (for
# wait_for, which runs it again each time, unlike a test of "$(grep -c)").
lines_at_least() { [ "$(grep -cE -- "$3" "$2")" -ge "$1" ]; }

listening() { ss -Htln "src $1 and sport = :$2" | grep -q LISTEN; }
not_listening() { ! listening "$@"; }

# nginx_serve NAME ADDR PORT LOGFORMAT [LISTEN-OPTIONS [SERVER-LINES]]: an
# nginx server answering "NAME\n" on /, one LOGFORMAT line per request in
# $T/NAME.access. nginx_start and nginx_tls_start are its two uses.
nginx_serve() {
	local name=$1 addr=$2 port=$3 format=$4 opts=${5:-} lines=${6:-} d="$T/nginx-$1"
	mkdir -p "$d/html"
	echo "$name" >"$d/html/index.html"
	nginx_conf "$d" 16384 warn <<-EOF
		log_format peer '$format';
		access_log $T/$name.access peer;
		keepalive_requests 1000000;
		server {
		    listen $addr:$port $opts reuseport;
		    $lines
		    root $d/html;
		    location / { default_type text/plain; }
		}
	EOF
	: >"$T/$name.access"
	bg "nginx-$name" nginx -c "$d/nginx.conf" -e "$d/error.log"
	wait_for 10 listening "$addr" "$port"
}

# nginx_start NAME ADDR PORT: an nginx HTTP server answering "NAME\n" on /,
# logging "$remote_addr:$remote_port" per request to $T/NAME.access.
nginx_start() {
	nginx_serve "$1" "$2" "$3" '$remote_addr:$remote_port $status'
}

# proxy_start NAME CONFIG: the proxy under test, its log in $T/NAME.log.
proxy_start() {
	bg "$1" "$SNATPROXY" -c "$2"
	wait_for 10 grep -q "worker(s)" "$T/$1.log"
}

# Sends SIGTERM and waits for a clean exit; fails on anything else.
proxy_stop() {
	local pid
	pid=$(eval echo "\$PID_${1//[^A-Za-z0-9_]/_}")
	kill -TERM "$pid"
	local rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { tail -n 20 "$T/$1.log" >&2; fail "proxy $1 exited with status $rc"; }
}

# log_ms FILE REGEX: when the first line of FILE matching REGEX was logged,
# in ms since the epoch, from the proxy's own timestamp (not from when a
# test's polling saw it).
log_ms() {
	local l
	l=$(grep -m1 -E "$2" "$1") || fail "no line matching '$2' in $1"
	date -d "${l%% *}" +%s%3N
}

# metric NAME_AND_LABELS: the value of one series, from a fresh scrape of
# $A, the admin endpoint's URL ("missing" when there is no such series);
# admin_at PORT sets A to the endpoint on 127.0.0.1:PORT.
admin_at() { A="http://127.0.0.1:$1"; }
# metric NAME_AND_LABELS FILE reads a scrape kept in FILE instead, so that
# series compared with each other come from one moment.
metric() {
	if [ $# -gt 1 ]; then cat "$2"; else curl -fsS -m 5 "$A/metrics"; fi |
		awk -v k="$1" '$1 == k {print $2; f=1} END {if (!f) print "missing"}'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# RSS of a process in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Re-runs the calling test inside a network namespace of its own (made with
# unshare, so the kernel removes it when the test ends, however it ends).
# Needs root; skips otherwise.
in_netns() {
	[ -n "${SNATPROXY_IN_NETNS:-}" ] && return 0
	[ "$(id -u)" -eq 0 ] || skip "needs root for a private network namespace"
	unshare --net true 2>/dev/null || skip "cannot create a network namespace here"
	rm -rf "$T"
	trap - EXIT
	SNATPROXY_IN_NETNS=1 exec unshare --net bash -c 'ip link set lo up && exec bash "$0"' "$1"
}

# blackhole ADDR: ADDR exists on lo but every SYN to it is dropped, as a
# dead server behind a firewall (in the test's own namespace: in_netns).
blackhole() {
	ip addr add "$1/32" dev lo || fail "cannot add $1"
	nft -f - <<-NFT || fail "cannot load the nftables drop rule for $1"
	table ip blackhole {
		chain input { type filter hook input priority 0; ip daddr $1 tcp flags syn drop; }
	}
	NFT
}

# ---- TLS: a private CA, certificates and nginx HTTPS servers ----

# tls_ca: a P-256 CA in $T/ca.pem and $T/ca.key.
tls_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=snatproxy test CA" -keyout "$T/ca.key" -out "$T/ca.pem" \
		-addext "basicConstraints=critical,CA:TRUE" >>"$T/openssl.log" 2>&1 ||
		fail "openssl could not make the CA (see $T/openssl.log)"
}

# tls_cert NAME DNSNAME [KEYTYPE]: $T/NAME.pem and $T/NAME.key signed by the
# CA, for server and client use; KEYTYPE ec (default) or rsa.
tls_cert() {
	local name=$1 dns=$2 kt=${3:-ec} opts
	if [ "$kt" = rsa ]; then opts=(-newkey rsa:2048); else opts=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
	openssl req -new "${opts[@]}" -nodes -subj "/CN=$dns" -keyout "$T/$name.key" \
		-out "$T/$name.csr" >>"$T/openssl.log" 2>&1 || fail "openssl req $name"
	printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$dns" >"$T/$name.ext"
	openssl x509 -req -in "$T/$name.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
		-days 2 -extfile "$T/$name.ext" -out "$T/$name.pem" >>"$T/openssl.log" 2>&1 ||
		fail "openssl x509 $name"
}

# nginx_tls_start NAME ADDR PORT CERT [CLIENT_CA]: an nginx HTTPS server with
# $T/CERT.pem answering "NAME\n" on /; with CLIENT_CA it requires a client
# certificate signed by it and logs its subject in $T/NAME.access.
nginx_tls_start() {
	local name=$1 cert=$4 cca=${5:-} lines
	lines="ssl_certificate $T/$cert.pem; ssl_certificate_key $T/$cert.key;
	        ssl_session_cache shared:S$name:1m; ssl_protocols TLSv1.2 TLSv1.3;"
	[ -n "$cca" ] && lines+=" ssl_client_certificate $cca; ssl_verify_client on;"
	nginx_serve "$name" "$2" "$3" \
		'$remote_addr:$remote_port $status $ssl_protocol $ssl_session_reused "$ssl_client_s_dn"' \
		ssl "$lines"
}
