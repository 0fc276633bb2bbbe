#!/usr/bin/env bash
# The harness of the tests of `snatproxy -t -c FILE` (config_errors.sh,
# health_config.sh), sourced from the repository's root: a scratch directory
# $tmp (removed on exit), the counts, and the checks below. Exits 77 when
# SNATPROXY is not built.
set -u
if [ -z "${SNATPROXY:-}" ] || [ ! -x "$SNATPROXY" ]; then
	echo "SNATPROXY (${SNATPROXY:-unset}) is not an executable: build first"
	exit 77
fi
tmp=$(mktemp -d "/tmp/$(basename "$0" .sh).$$.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0 cases=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# check FILE: runs `snatproxy -t -c FILE`, leaving its status in $rc and its
# stderr in $tmp/err.
check() {
	rc=0
	timeout 20 "$SNATPROXY" -t -c "$1" >"$tmp/out" 2>"$tmp/err" || rc=$?
}

# expect_ok [FILE]: a valid config, FILE or else read from stdin: exit 0
# and nothing on stderr.
expect_ok() {
	local f=${1:-}
	cases=$((cases + 1))
	if [ -z "$f" ]; then
		f=$tmp/ok$cases.ini
		cat >"$f"
	fi
	check "$f"
	[ "$rc" -eq 0 ] || fail "$f: exit $rc, expected 0; stderr: $(cat "$tmp/err")"
	[ ! -s "$tmp/err" ] || fail "$f: valid config but stderr says: $(cat "$tmp/err")"
}

# expect_error LINE TEXT < config: exit 1 and exactly one message,
# "FILE:LINE: ...TEXT...".
expect_error() {
	local line=$1 text=$2 f="$tmp/case$cases.ini"
	cases=$((cases + 1))
	cat >"$f"
	check "$f"
	if [ "$rc" -ne 1 ]; then
		fail "case $cases ($text): exit $rc, expected 1; stderr: $(cat "$tmp/err")"
	elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -qF "$f:$line: " "$tmp/err" ||
		! grep -F "$f:$line: " "$tmp/err" | grep -qF -- "$text"; then
		fail "case $cases: expected one error \"$f:$line: ...$text...\", got: $(cat "$tmp/err")"
	fi
}

# confcheck_done: the summary line; the test's status.
confcheck_done() {
	echo "$cases cases, $failures failed"
	[ "$failures" -eq 0 ]
}
