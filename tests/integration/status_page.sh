#!/usr/bin/env bash
# The status page in a real browser: headless Chromium, driven through
# chromedriver's W3C WebDriver HTTP API with curl, loads the admin page of a
# proxy in front of three nginx servers, s1 to s3. s1 is stopped (down, with
# its check's reason on the page), s2 drained through the admin API (drain),
# s3 drained by typing the admin token and clicking its drain button
# (confirmed by /stats); the page then follows an enable made elsewhere
# without being reloaded (its script updates it from /stats, and writes the
# same text as the server did). p1, of a pool without checks, is down for its
# failed client connects, and the page says so.
# SNATPROXY_SCREENSHOT=FILE keeps the browser's screenshot (docs/status-page.png).
# shellcheck disable=SC2154 # PID_NAME variables are set by lib.sh's bg (through eval)
. "$(dirname "$0")/../lib.sh"
need nginx curl python3 chromium chromedriver

P=$(pick_port); V=$(pick_port); V2=$(pick_port); ADM=$(pick_port); CD=$(pick_port)
nginx_start s1 127.0.0.2 "$P"
nginx_start s2 127.0.0.3 "$P"
nginx_start s3 127.0.0.4 "$P"
for s in s1 s2 s3; do head -c 1000000 /dev/zero >"$T/nginx-$s/html/big"; done
TOKEN=status-page-token-$$-0123456789
echo "$TOKEN" >"$T/token"
cat >"$T/p.ini" <<CFG
[global]
workers = 2
admin = 127.0.0.1:$ADM
admin_token_file = $T/token
[pool web]
check = http
check_interval = 200ms
check_timeout = 1s
check_fall = 2
check_rise = 1
server = s1 127.0.0.2:$P
server = s2 127.0.0.3:$P weight=2
server = s3 127.0.0.4:$P max_conn=100
[vip web]
listen = 127.0.0.1:$V
pool = web
[pool passive]
check_fall = 1
server = p1 127.0.0.5:$P
[vip passive]
listen = 127.0.0.1:$V2
pool = passive
CFG
proxy_start proxy "$T/p.ini"
wait_for 5 listening 127.0.0.1 "$ADM"
A="http://127.0.0.1:$ADM"

# state SERVER: the server's state in /stats.
state() {
	curl -fsS -m 5 "$A/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print([v["state"] for p in s["pools"] for v in p["servers"] if v["name"] == sys.argv[1]][0])' "$1"
}
state_is() { [ "$(state "$1")" = "$2" ]; }

wait_for 5 state_is s3 up
get_big() {
	for _ in $(seq "$1"); do
		curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$V/big" || fail "no answer through the VIP"
	done
}
get_big 4
info "s1 stopped: down; s2 drained through the API"
kill "$PID_nginx_s1"
wait_for 10 state_is s1 down
curl -fsS -m 5 -X POST -H "Authorization: Bearer $TOKEN" "$A/pools/web/servers/s2/drain" >/dev/null ||
	fail "drain through the API"
get_big 3 # all to s3 now
curl -sS -m 5 -o /dev/null "http://127.0.0.1:$V2/" 2>/dev/null && fail "a connection to a closed port went through"
wait_for 10 state_is p1 down
code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST -d "token=wrong" "$A/pools/web/servers/s3/drain")
[ "$code" = 401 ] || fail "a form post with a wrong token got $code, not 401"
state_is s3 up || fail "a refused form post changed s3's state"

# The admin thread samples the connection rate once a second: the peak of
# the connections above shows at the next sample.
rate_peak() { curl -fsS -m 5 "$A/stats" | python3 -c '
import json, sys
sys.exit(0 if [v for v in json.load(sys.stdin)["vips"] if v["name"] == "web"][0]["connection_rate_peak"] > 0 else 1)'; }
wait_for 5 rate_peak
curl -fsS -m 5 "$A/stats" | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = {x["name"]: x for p in d["pools"] for x in p["servers"]}
c = s["s1"]["check"]
assert c["type"] == "http" and c["result"] == "refused" and c["text"] == "connection refused", c
# A check under way when nginx stops may end in a reset instead; and
# checks_failed is read after checks, so a check may end between the two.
k = s["s1"]["checks"]
assert k["refused"] > 0 and 0 <= s["s1"]["checks_failed"] - (sum(k.values()) - k["ok"]) <= 1, s["s1"]
assert s["s1"]["downs"] == 1, s["s1"]
assert s["s3"]["check"]["result"] == "ok" and s["s3"]["check"]["text"] == "200", s["s3"]
# Two counters, read one after the other: a check may end between them.
assert all(abs(sum(x["check_us"]) - sum(x["checks"].values())) <= 1 for x in s.values()), s
assert s["s3"]["max_conn"] == 100 and s["p1"]["check"]["down_reason"].endswith("connection refused"), s
p = {x["name"]: x for x in d["pools"]}
assert p["web"]["servers_up"] == 1 and p["web"]["servers_total"] == 3, p["web"]
v = {x["name"]: x for x in d["vips"]}
assert v["passive"]["refused"]["connect_failed"] == 1 and v["web"]["connection_rate_peak"] > 0, v
' || fail "/stats lacks what the page shows"

# ---- WebDriver ----
bg chromedriver chromedriver --port="$CD"
wait_for 10 listening 127.0.0.1 "$CD"
W="http://127.0.0.1:$CD"
# wd METHOD PATH [JSON]: one WebDriver command; prints its "value" as JSON.
wd() {
	curl -sS -m 30 -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$W$2" |
		python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin).get("value")))'
}
# jget EXPR: reads a JSON value on stdin, prints EXPR of it (v is the value).
jget() { python3 -c "import json, sys; v = json.load(sys.stdin); print($1)"; }

caps='{"capabilities":{"alwaysMatch":{"browserName":"chrome","goog:chromeOptions":{
 "binary":"'"$(command -v chromium)"'","args":["--headless=new","--no-sandbox","--disable-gpu",
 "--disable-dev-shm-usage","--window-size=1900,1000","--user-data-dir='"$T"'/chrome"]}}}}'
wd POST /session "$caps" >"$T/session.json"
SID=$(jget 'v.get("sessionId", "")' <"$T/session.json" 2>/dev/null)
if [ -z "$SID" ]; then
	why=$(jget 'str(v.get("message", v))[:300].replace("\n", " ")' <"$T/session.json" 2>/dev/null)
	skip "headless chromium cannot run here: no WebDriver session: ${why:-no answer from chromedriver}"
fi
trap 'wd DELETE "/session/$SID" >/dev/null 2>&1; cleanup' EXIT
S="/session/$SID"
# el CSS: the element's id; text CSS: its rendered text.
el() {
	wd POST "$S/element" "$(python3 -c 'import json, sys; print(json.dumps({"using": "css selector", "value": sys.argv[1]}))' "$1")" |
		jget 'list(v.values())[0] if isinstance(v, dict) and len(v) == 1 else ""'
}
text() {
	local e
	e=$(el "$1")
	[ -n "$e" ] || { echo "(no element $1)"; return; }
	wd GET "$S/element/$e/text" | jget v
}
text_is() { [ "$(text "$1")" = "$2" ]; }
row() { echo "tr[data-pool=\"web\"][data-server=\"$1\"] [data-k=\"$2\"]"; }

wd POST "$S/url" "{\"url\":\"$A/\"}" >/dev/null
t=$(text h1)
[ "$t" = "snatproxy 0.1.0" ] || [[ $t == snatproxy* ]] || fail "the page did not load: h1 is '$t'"
info "the rendered page: s1 down with its reason, s2 drain"
[ "$(text "$(row s1 state)")" = down ] || fail "s1 shows '$(text "$(row s1 state)")', not down"
reason=$(text "$(row s1 check)")
[[ $reason == "http: connection refused ("*" ms)" ]] || fail "s1's last check reads '$reason'"
t=$(text 'tr[data-pool="passive"][data-server="p1"] [data-k="check"]')
[ "$t" = "none; client connects failed: connection refused" ] || fail "p1 (no checks) reads '$t'"
[ "$(text "$(row s2 state)")" = drain ] || fail "s2 shows '$(text "$(row s2 state)")', not drain"
[[ $(text "$(row s3 check)") == "http 200 in "*" ms" ]] || fail "s3's check reads '$(text "$(row s3 check)")'"
[[ $(text "$(row s3 to_client)") == *" MiB" ]] || fail "s3's bytes read '$(text "$(row s3 to_client)")', not MiB"
[ "$(text '[data-p="web"] [data-k="up"]')" = "1 of 3" ] || fail "the pool shows '$(text '[data-p="web"] [data-k="up"]')' servers up"

info "typing the token and clicking s3's drain button"
tok=$(el 'input[name="token"]')
[ -n "$tok" ] || fail "no token field on the page, though a token is configured"
wd POST "$S/element/$tok/value" "{\"text\":\"$TOKEN\"}" >/dev/null
btn=$(el 'button[formaction="/pools/web/servers/s3/drain"]')
[ -n "$btn" ] || fail "no drain button for s3"
wd POST "$S/element/$btn/click" '{}' >/dev/null
wait_for 15 state_is s3 drain
wait_for 15 text_is "$(row s3 state)" drain
url=$(wd GET "$S/url" | jget v)
[ "$url" = "$A/" ] || fail "after the click the browser is at $url, not back on the page"
shot=$(wd GET "$S/screenshot" | jget v)
echo "$shot" | base64 -d >"$T/status.png" || fail "the screenshot is not base64"
[ "$(head -c 4 "$T/status.png" | tail -c 3)" = PNG ] || fail "the screenshot is not a PNG"
[ -n "${SNATPROXY_SCREENSHOT:-}" ] && cp "$T/status.png" "$SNATPROXY_SCREENSHOT"

info "an enable made elsewhere shows without reloading the page"
curl -fsS -m 5 -X POST -H "Authorization: Bearer $TOKEN" "$A/pools/web/servers/s3/enable" >/dev/null ||
	fail "enable through the API"
wait_for 15 text_is "$(row s3 state)" up
[[ $(text '#upd') == updated* ]] || fail "the page's script did not update it: '$(text '#upd')'"
t=$(text 'tr[data-pool="passive"][data-server="p1"] [data-k="check"]')
[ "$t" = "none; client connects failed: connection refused" ] || fail "p1 reads '$t' once the script updated it"
t=$(text "$(row s1 check)")
[[ $t == "http: connection refused ("*" ms)" ]] || fail "s1's check reads '$t' once the script updated it"
[[ $(text "$(row s3 to_client)") == *" MiB" ]] || fail "s3's bytes read '$(text "$(row s3 to_client)")' once updated"
[ "$(wd GET "$S/url" | jget v)" = "$A/" ] || fail "the page was left"
grep -q "admin 127.0.0.1:[0-9]*: pool web server s3: drain" "$T/proxy.log" ||
	fail "the proxy did not log the browser's drain"
pass "the page shows down (with the reason) and drain; its buttons drain; it updates in place"
