# Sourced by integration tests: a scratch directory, background processes
# that are always stopped, free ports, nginx servers and the proxy.
# Tests exit 0 (pass), 77 (skip, reason on the last line) or 1 (fail).

set -u
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
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
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

# A TCP port nobody listens on, from a range the kernel does not hand out
# as ephemeral ports.
pick_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 12000))
		ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
	fail "no free port found"
}

# bg NAME CMD...: runs CMD in the background, output in $T/NAME.log.
bg() {
	local name=$1; shift
	"$@" >"$T/$name.log" 2>&1 &
	PIDS+=($!)
	eval "PID_${name//[^A-Za-z0-9_]/_}=$!"
}

# wait_for SECONDS CMD...: until CMD succeeds, or fails the test.
wait_for() {
	local limit=$1; shift
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || fail "timed out after ${limit}s waiting for: $*"
		sleep 0.05
	done
}

listening() { ss -Htln "src $1 and sport = :$2" | grep -q LISTEN; }

# nginx_start NAME ADDR PORT: an nginx HTTP server answering "NAME\n" on /,
# logging "$remote_addr:$remote_port" per request to $T/NAME.access.
nginx_start() {
	local name=$1 addr=$2 port=$3 d="$T/nginx-$1"
	mkdir -p "$d/html"
	echo "$name" >"$d/html/index.html"
	cat >"$d/nginx.conf" <<-EOF
	user root;
	daemon off;
	worker_processes 1;
	pid $d/nginx.pid;
	error_log $d/error.log warn;
	events { worker_connections 16384; }
	http {
	    log_format peer '\$remote_addr:\$remote_port \$status';
	    access_log $T/$name.access peer;
	    client_body_temp_path $d/tmp; proxy_temp_path $d/tmp; fastcgi_temp_path $d/tmp;
	    uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
	    keepalive_requests 1000000;
	    server {
	        listen $addr:$port reuseport;
	        root $d/html;
	        location / { default_type text/plain; }
	    }
	}
	EOF
	: >"$T/$name.access"
	bg "nginx-$name" nginx -c "$d/nginx.conf" -e "$d/error.log"
	wait_for 10 listening "$addr" "$port"
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
