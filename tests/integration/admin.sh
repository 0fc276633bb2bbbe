#!/usr/bin/env bash
# The admin endpoint: every line of /metrics is valid Prometheus text
# exposition and the counters move with traffic; /stats is JSON and / is an
# HTML page; drain under load sends no new connection to the drained server
# (nginx access logs) while an open stream through it finishes byte-exact;
# disable closes a server's open connections; garbage requests get 4xx with a
# one-line reason, and the data path keeps answering meanwhile.
. "$(dirname "$0")/../lib.sh"
need nginx curl python3 promtool

P=$(pick_port); E=$(pick_port); V=$(pick_port); W=$(pick_port); ADM=$(pick_port)
nginx_start fe1 127.0.0.2 "$P"
nginx_start fe2 127.0.0.3 "$P"
bg e1 "$TOOLS/streamer" serve "127.0.0.2:$E" echo --peers
bg e2 "$TOOLS/streamer" serve "127.0.0.3:$E" echo --peers
wait_for 5 listening 127.0.0.2 "$E"
wait_for 5 listening 127.0.0.3 "$E"
cat >"$T/p.ini" <<CFG
[global]
workers = 2
max_connections = 1000
admin = 127.0.0.1:$ADM
drain_delay = 0
[pool web]
server = fe1 127.0.0.2:$P
server = fe2 127.0.0.3:$P
[pool echo]
server = e1 127.0.0.2:$E
server = e2 127.0.0.3:$E
[vip web]
listen = 127.0.0.1:$V
pool = web
[vip echo]
listen = 127.0.0.1:$W
pool = echo
CFG
proxy_start proxy "$T/p.ini"
wait_for 5 listening 127.0.0.1 "$ADM"
A="http://127.0.0.1:$ADM"

# Strict exposition check: every line is a HELP, a TYPE or a sample with
# valid names, labels and value; each family has one TYPE, given before its
# samples; counters end in _total; no series appears twice; a histogram's
# buckets never decrease and its +Inf bucket equals its _count.
validate_metrics() {
	python3 - "$1" <<'PY'
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
help_re = re.compile(r'^# HELP (' + name + r') [^\n]*$')
type_re = re.compile(r'^# TYPE (' + name + r') (counter|gauge|histogram|summary|untyped)$')
sample_re = re.compile(r'^(' + name + r')(\{' + label + r'(?:,' + label + r')*\})? '
                       r'(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|[+-]Inf|NaN)$')
types, seen, errors, samples = {}, set(), [], 0
buckets = {}  # histogram series (labels without le) -> counts in order, and _count
def family(n):
    for suffix in ('_bucket', '_sum', '_count'):
        if n.endswith(suffix) and types.get(n[:-len(suffix)]) == 'histogram':
            return n[:-len(suffix)]
    return n
text = open(sys.argv[1], encoding='utf-8').read()
if not text.endswith('\n'):
    errors.append('no newline at the end')
for n, line in enumerate(text.split('\n')[:-1], 1):
    m = type_re.match(line)
    if m:
        if m.group(1) in types:
            errors.append(f'{n}: second TYPE for {m.group(1)}')
        types[m.group(1)] = m.group(2)
        if m.group(2) == 'counter' and not m.group(1).endswith('_total'):
            errors.append(f'{n}: counter {m.group(1)} does not end in _total')
        continue
    if help_re.match(line):
        continue
    m = sample_re.match(line)
    if not m:
        errors.append(f'{n}: not valid exposition: {line!r}')
        continue
    samples += 1
    fam = family(m.group(1))
    if fam not in types:
        errors.append(f'{n}: sample of {m.group(1)} before its TYPE')
    if types.get(fam) == 'histogram' and fam != m.group(1):
        key = fam + re.sub(r',?le="[^"]*"', '', m.group(2) or '').replace('{,', '{').replace('{}', '')
        h = buckets.setdefault(key, {'b': [], 'count': None})
        if m.group(1).endswith('_bucket'):
            h['b'].append(float(m.group(3)))
        elif m.group(1).endswith('_count'):
            h['count'] = float(m.group(3))
    series = m.group(1) + (m.group(2) or '')
    if series in seen:
        errors.append(f'{n}: series {series} appears twice')
    seen.add(series)
for key, h in buckets.items():
    if h['b'] != sorted(h['b']) or not h['b'] or h['b'][-1] != h['count']:
        errors.append(f'histogram {key}: buckets {h["b"]}, count {h["count"]}')
for e in errors[:20]:
    print(e)
print(f'{samples} samples, {len(types)} families, {len(errors)} errors')
sys.exit(1 if errors or samples == 0 else 0)
PY
}

# promtool_clean FILE: Prometheus's own linter has nothing to say.
promtool_clean() {
	local out rc=0
	out=$(promtool check metrics <"$1" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] && [ -z "$out" ] || { echo "$out" >&2; return 1; }
}

info "GET /metrics: every line valid"
curl -fsS -m 5 -D "$T/h1" "$A/metrics" >"$T/m1" || fail "GET /metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$T/h1" || fail "wrong Content-Type: $(cat "$T/h1")"
validate_metrics "$T/m1" || fail "/metrics is not valid exposition format"
promtool_clean "$T/m1" || fail "promtool check metrics finds fault with /metrics"
for fam in snatproxy_vip_connections_active snatproxy_server_connect_failures_total \
	snatproxy_server_state snatproxy_pool_retries_total snatproxy_worker_ring_submissions_total \
	snatproxy_worker_ring_cq_overflows_total snatproxy_worker_buffer_exhausted_total \
	snatproxy_snat_port_exhausted_total snatproxy_server_check_seconds; do
	grep -q "^# TYPE $fam " "$T/m1" || fail "/metrics lacks $fam"
done

info "counters move with traffic: 20 requests"
v0=$(metric 'snatproxy_vip_connections_total{vip="web"}')
for i in $(seq 20); do curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || fail "request $i"; done
wait_for 5 metric_is 'snatproxy_vip_connections_active{vip="web"}' 0
v1=$(metric 'snatproxy_vip_connections_total{vip="web"}')
[ "$((v1 - v0))" -eq 20 ] || fail "vip connections_total went from $v0 to $v1 after 20 requests"
f1=$(metric 'snatproxy_server_connections_total{pool="web",server="fe1"}')
f2=$(metric 'snatproxy_server_connections_total{pool="web",server="fe2"}')
[ "$((f1 + f2))" -eq 20 ] && [ "$f1" -gt 0 ] && [ "$f2" -gt 0 ] || fail "server totals $f1 + $f2"
b=$(metric 'snatproxy_vip_bytes_total{vip="web",direction="to_client"}')
[ "$b" -gt 2000 ] || fail "bytes to clients: $b"
curl -fsS -m 5 "$A/metrics" >"$T/m2"
validate_metrics "$T/m2" || fail "/metrics after traffic is not valid"
promtool_clean "$T/m2" || fail "promtool check metrics finds fault with /metrics after traffic"
wait_for 3 eval '[ "$(metric "snatproxy_worker_ring_completions_total{worker=\"0\"}")" -gt 0 ]'
# The loop's batch histograms count the same batches twice: by completions
# and by time.
n=$(metric 'snatproxy_worker_loop_batch_completions_count{worker="0"}')
t=$(metric 'snatproxy_worker_loop_batch_seconds_count{worker="0"}')
[ "$n" != missing ] && [ "$n" -gt 0 ] && [ "$((t - n))" -ge -100 ] && [ "$((t - n))" -le 100 ] ||
	fail "batch histograms: $n batches by completions, $t by time"

info "GET /stats is JSON, GET / is HTML"
curl -fsS -m 5 "$A/stats" | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = {x["name"]: x for p in d["pools"] for x in p["servers"]}
assert s["fe1"]["state"] == "up" and s["fe1"]["connections_total"] > 0, s
assert len(d["workers"]) == 2 and d["vips"][0]["name"] == "web"
' || fail "/stats"
curl -fsS -m 5 "$A/" | grep -q '<td>fe2</td>' || fail "/ does not list fe2"

info "drain e1 under a streaming load: open streams finish, new ones go to e2"
"$TOOLS/streamer" run "127.0.0.1:$W" --conns 2 --bytes 24000000 --rate 6000000 --timeout 30 \
	>"$T/stream.out" 2>&1 &
stream=$!
PIDS+=("$stream")
wait_for 5 metric_is 'snatproxy_server_connections_active{pool="echo",server="e1"}' 1
# Bytes show while the connection is open, not only once it ends (the
# stream lasts 4 s at least; the wait is long for a loaded sanitizer build,
# and the stream must still be open after it).
k='{pool="echo",server="e1",direction="to_client"}'
# shellcheck disable=SC2034 # read by the eval'd condition below
b0=$(metric "snatproxy_server_bytes_total$k")
wait_for 8 eval '[ "$(metric "snatproxy_server_bytes_total$k")" -gt $((b0 + 1000000)) ]'
metric_is 'snatproxy_server_connections_active{pool="echo",server="e1"}' 1 ||
	fail "the stream ended before its bytes were seen moving"
curl -fsS -m 5 -X POST "$A/pools/echo/servers/e1/drain" | grep -qx 'pool echo server e1: drain, now drain' ||
	fail "drain e1"
metric_is 'snatproxy_server_state{pool="echo",server="e1",state="drain"}' 1 || fail "e1 not in state drain"
n_e1=$(grep -c '^peer' "$T/e1.log")
"$TOOLS/streamer" run "127.0.0.1:$W" --conns 10 --bytes 10000 --timeout 20 || fail "new streams after drain"
[ "$(grep -c '^peer' "$T/e1.log")" -eq "$n_e1" ] || fail "a new connection reached drained e1"
metric_is 'snatproxy_server_connections_active{pool="echo",server="e1"}' 1 || fail "e1's open stream is gone"
wait "$stream" || fail "the stream through drained e1 broke: $(cat "$T/stream.out")"
metric_is 'snatproxy_server_connections_active{pool="echo",server="e1"}' 0 || fail "e1 still has connections"

info "drain fe1 under a request loop: nginx fe1 sees no new request"
(for i in $(seq 150); do curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || echo "request $i failed"; done) \
	>"$T/loop.out" 2>&1 &
loop=$!
PIDS+=("$loop")
wait_for 30 eval '[ "$(wc -l <"$T/fe2.access")" -ge 30 ]'
curl -fsS -m 5 -X POST "$A/pools/web/servers/fe1/drain" >/dev/null || fail "drain fe1"
wait_for 5 metric_is 'snatproxy_server_connections_active{pool="web",server="fe1"}' 0
n1=$(wc -l <"$T/fe1.access")
n2=$(wc -l <"$T/fe2.access")
wait "$loop"
[ ! -s "$T/loop.out" ] || fail "requests failed during the drain: $(head -3 "$T/loop.out")"
[ "$(wc -l <"$T/fe1.access")" -eq "$n1" ] || fail "drained fe1 got $(($(wc -l <"$T/fe1.access") - n1)) new requests"
[ "$(wc -l <"$T/fe2.access")" -gt "$n2" ] || fail "fe2 got nothing after the drain"

info "enable fe1: it takes requests again, half of them"
curl -fsS -m 5 -X POST "$A/pools/web/servers/fe1/enable" >/dev/null || fail "enable fe1"
for _ in $(seq 4); do curl -fsS -m 5 "http://127.0.0.1:$V/" || echo failed; done >"$T/after-enable"
sort "$T/after-enable" | uniq -c
# Round robin over two servers of weight 1: 4 requests in a row are 2 and 2.
[ "$(grep -cx fe1 "$T/after-enable")" -eq 2 ] && [ "$(grep -cx fe2 "$T/after-enable")" -eq 2 ] ||
	fail "4 requests after enable were not answered 2 by fe1 and 2 by fe2"

info "disable e2: its open stream is closed at once"
# e1 stays drained, so the stream goes to e2.
"$TOOLS/streamer" run "127.0.0.1:$W" --conns 1 --bytes 24000000 --rate 2000000 --timeout 30 \
	>"$T/stream2.out" 2>&1 &
stream=$!
PIDS+=("$stream")
wait_for 5 metric_is 'snatproxy_server_connections_active{pool="echo",server="e2"}' 1
curl -fsS -m 5 -X POST "$A/pools/echo/servers/e2/disable" >/dev/null || fail "disable e2"
wait_for 3 metric_is 'snatproxy_server_connections_active{pool="echo",server="e2"}' 0
wait_for 3 grep -q 'server=e2/.*end=server-disabled' "$T/proxy.log"
wait "$stream" && fail "a stream through disabled e2 went on"
"$TOOLS/streamer" run "127.0.0.1:$W" --conns 1 --bytes 1000 --timeout 5 >/dev/null 2>&1 &&
	fail "a connection was made with e1 drained and e2 disabled"
wait_for 3 eval '[ "$(metric "snatproxy_vip_no_server_total{vip=\"echo\"}")" -ge 1 ]'
metric_is 'snatproxy_vip_refused_total{vip="echo",cause="no_server"}' "$(metric 'snatproxy_vip_no_server_total{vip="echo"}')" ||
	fail "refusals for want of a server counted apart from no_server_total"
for s in e1 e2; do
	curl -fsS -m 5 -X POST "$A/pools/echo/servers/$s/enable" >/dev/null || fail "enable $s"
done
"$TOOLS/streamer" run "127.0.0.1:$W" --conns 4 --bytes 1000 --timeout 5 || fail "echo after enable"

info "garbage requests get 4xx with a one-line reason; the data path keeps answering"
# raw REQUEST: the status line and body of the answer to bytes sent as is.
raw() {
	timeout 8 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1; printf "%b" "$2" >&3; cat <&3' \
		_ "$ADM" "$1" 2>/dev/null | tr -d '\r'
}
expect() { # STATUS REQUEST
	local out
	out=$(raw "$2")
	echo "$out" | head -1 | grep -q "^HTTP/1.1 $1 " || fail "expected $1 for '$2', got: $(echo "$out" | head -1)"
	[ "$(echo "$out" | sed '1,/^$/d' | wc -l)" -eq 1 ] || fail "reason for '$2' is not one line: $out"
}
(for i in $(seq 100); do curl -fsS -m 5 "http://127.0.0.1:$V/" >/dev/null || echo "request $i failed"; done) \
	>"$T/loop2.out" 2>&1 &
loop=$!
PIDS+=("$loop")
expect 400 'garbage\r\n\r\n'
expect 400 'GET /metrics\r\n\r\n'
expect 400 'GET metrics HTTP/1.1\r\n\r\n'
expect 400 'GET /metrics HTTP/9.9\r\n\r\n'
expect 400 'GET /\x01 HTTP/1.1\r\n\r\n'
expect 404 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n'
expect 404 'GET //metrics HTTP/1.1\r\n\r\n'
expect 404 'POST /pools/web/servers/zz/drain HTTP/1.1\r\n\r\n'
expect 404 'POST /pools/web/servers/fe1/explode HTTP/1.1\r\n\r\n'
expect 405 'DELETE /metrics HTTP/1.1\r\n\r\n'
expect 405 'GET /pools/web/servers/fe1/drain HTTP/1.1\r\n\r\n'
expect 413 'POST /pools/web/servers/fe1/enable HTTP/1.1\r\nContent-Length: 99999\r\n\r\n'
expect 414 "GET /$(head -c 400 /dev/zero | tr '\0' a) HTTP/1.1\r\n\r\n"
expect 431 "GET / HTTP/1.1\r\nX: $(head -c 5000 /dev/zero | tr '\0' a)\r\n\r\n"
expect 501 'POST /pools/web/servers/fe1/enable HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'
expect 200 'POST /pools/web/servers/fe1/enable HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd'
# A client that never finishes its request gets 408 once its time is up;
# more idle clients than the endpoint takes get 503; neither stops the data path.
t0=$SECONDS
expect 408 'GET / HTTP/1.1\r\n'
[ $((SECONDS - t0)) -le 7 ] || fail "the 408 took $((SECONDS - t0))s"
idle=()
for i in $(seq 20); do
	timeout 8 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; head -1 <&3' _ "$ADM" >"$T/idle.$i" 2>/dev/null &
	idle+=($!)
done
wait_for 7 eval 'grep -ql "503" "$T"/idle.*'
wait "$loop"
[ ! -s "$T/loop2.out" ] || fail "requests failed during the garbage: $(head -3 "$T/loop2.out")"
wait "${idle[@]}"
grep -q 408 "$T"/idle.* || fail "idle admin clients were not timed out"
curl -fsS -m 5 "$A/metrics" >"$T/m3" && validate_metrics "$T/m3" >/dev/null || fail "admin broken after garbage"
proxy_stop proxy
pass "admin endpoint"
