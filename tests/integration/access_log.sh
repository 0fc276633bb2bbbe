#!/usr/bin/env bash
# access_log: per-connection lines go to a file, as text or JSON, and SIGUSR1
# reopens it under its name after a rotation (mv, then the signal): lines
# before the signal are in the old file, lines after it in the new one.
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh's bg (through eval)
. "$(dirname "$0")/../lib.sh"
need nginx curl python3

P=$(pick_port); V=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
config() { # FORMAT
	cat <<-CFG
	[global]
	workers = 2
	access_log = $T/access.log
	log_format = $1
	[pool web]
	server = fe1 127.0.0.2:$P
	[vip web]
	listen = 127.0.0.1:$V
	pool = web
	CFG
}
requests() { for i in $(seq "$1"); do curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || fail "request $i"; done; }
lines() { [ -f "$1" ] && [ "$(wc -l <"$1")" -eq "$2" ]; }

info "json: one valid object per connection, in the file and not on stderr"
config json >"$T/json.ini"
proxy_start proxy "$T/json.ini"
requests 5
wait_for 5 lines "$T/access.log" 5
python3 - "$T/access.log" <<'PY' || fail "bad JSON access log: $(head -2 "$T/access.log")"
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert set(d) == {"time", "vip", "client", "snat", "server", "server_addr", "to_server",
                      "to_client", "duration_ms", "retries", "end", "error"}, d
    assert d["vip"] == "web" and d["server"] == "fe1" and d["end"] == "client-closed", d
    assert d["to_client"] > 100 and d["error"] is None and d["time"].endswith("Z"), d
PY
grep -q 'conn vip=' "$T/proxy.log" && fail "connection lines also went to stderr"

info "rotation: mv, SIGUSR1, and the next lines go to a new file"
mv "$T/access.log" "$T/access.log.1"
requests 2 # before the signal: still the old (renamed) file
wait_for 5 lines "$T/access.log.1" 7
kill -USR1 "$PID_proxy"
wait_for 5 grep -q "access_log $T/access.log reopened" "$T/proxy.log"
requests 3
wait_for 5 lines "$T/access.log" 3
lines "$T/access.log.1" 7 || fail "old file has $(wc -l <"$T/access.log.1") lines, expected 7"

info "a reopen that fails keeps the old file and says why"
rm "$T/access.log"
mkdir "$T/access.log" # the name is now a directory: open() fails
kill -USR1 "$PID_proxy"
wait_for 5 grep -q "cannot reopen access_log $T/access.log: Is a directory; still writing to the old file" "$T/proxy.log"
requests 1
rmdir "$T/access.log"
proxy_stop proxy

info "text: the README's line format, in the file"
rm -f "$T/access.log"
config text >"$T/text.ini"
proxy_start text "$T/text.ini"
requests 3
wait_for 5 lines "$T/access.log" 3
grep -vqE '^[0-9T:.-]+Z INFO conn vip=web client=127\.0\.0\.1:[0-9]+ snat=[0-9.:]+ server=fe1/127\.0\.0\.2:[0-9]+ to_server=[0-9]+ to_client=[0-9]+ duration_ms=[0-9]+ retries=0 end=client-closed$' \
	"$T/access.log" && fail "unexpected text line: $(head -3 "$T/access.log")"
proxy_stop text

info "an access_log that cannot be opened stops the start with the reason"
sed "s|^access_log = .*|access_log = $T/no/such/dir/a.log|" "$T/text.ini" >"$T/bad.ini"
"$SNATPROXY" -c "$T/bad.ini" >"$T/bad.log" 2>&1 && fail "started with an unwritable access_log"
grep -q "^$T/bad.ini:3: access_log $T/no/such/dir/a.log: cannot be created: directory $T/no/such/dir: No such file or directory$" "$T/bad.log" ||
	fail "no clear error: $(cat "$T/bad.log")"
info "a retried connection: why its first connect failed, apart from how it ended"
D=$(pick_port) # nothing listens there: connects are refused
retry_config() { # FORMAT: the first server refuses, the second answers
	sed -e "s|^server = fe1 .*|server = dead 127.0.0.3:$D\nserver = fe1 127.0.0.2:$P|" \
		-e "s|^access_log = .*|access_log = $T/retry-$1.log|" "$T/$1.ini" >"$T/retry-$1.ini"
}
for f in json text; do
	retry_config $f
	proxy_start "r$f" "$T/retry-$f.ini"
	curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || fail "$f: request via a refusing server"
	wait_for 5 lines "$T/retry-$f.log" 1
	proxy_stop "r$f"
done
cat "$T/retry-json.log" "$T/retry-text.log"
python3 - "$T/retry-json.log" <<'PY' || fail "bad JSON line of a retried connection"
import json, sys
d = json.loads(open(sys.argv[1]).readline())
assert d["server"] == "fe1" and d["retries"] == 1 and d["retry"] == "connect-refused", d
assert d["retry_error"] is None and d["end"] == "client-closed" and d["error"] is None, d
PY
grep -qE ' server=fe1/127\.0\.0\.2:[0-9]+ .* retries=1 retry=connect-refused end=client-closed$' "$T/retry-text.log" ||
	fail "bad text line of a retried connection: $(cat "$T/retry-text.log")"
pass "access log"
