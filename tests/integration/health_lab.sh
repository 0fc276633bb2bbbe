#!/usr/bin/env bash
# The issue's "done when", in the SNAT lab (tests/lab/lab.sh): the proxy
# checks both front-ends the way the MCU factory's callers reach them (https
# on 444, /LiveServer/MCUFactory/, a client certificate). Stopping fe2's
# nginx moves every new MCU factory request to fe1 within
# check_interval * check_fall + check_timeout, with one log line saying why;
# starting it again brings the balance back after check_rise checks.
# Skips when namespaces cannot be made (not root).
set -u
N=6
here=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "FAIL: $*"; [ -n "${LOG:-}" ] && grep -v ' conn ' "$LOG" | tail -n 15; exit 1; }
: "${SNATPROXY:?SNATPROXY must name the built binary}"

# shellcheck source=tests/lab/lab.sh
. "$here/lab/lab.sh"
lab_require nginx curl openssl nft
LAB_QUIET=1
lab_init
lab_up
P=$LAB_DIR/pki
LAB_POOL_EXTRA="check = https
check_port = $LAB_PORT
check_path = $LAB_URLPATH
check_host = $LAB_HOST
check_expect = 200
check_body = MCUFactory
check_cert = $P/client.pem
check_key = $P/client.key
check_ca = $P/ca.pem
check_interval = 200ms
check_timeout = 500ms
check_fall = 2
check_rise = 2"
lab_proxy_start "$SNATPROXY" auto
LOG=$LAB_DIR/proxy-auto.log
now_ms() { date +%s%3N; }
round() { # LABEL: N requests from the client, their tally "OK TOTAL ANSWERED SEEN"
	lab_requests client "$N" >"$LAB_DIR/$1.txt"
	lab_tally "$LAB_DIR/$1.txt"
}

sleep 0.5 # a few checks: both stay up
grep -q "is DOWN" "$LOG" && fail "a front-end was marked down while both serve"
read -r ok _ by _ < <(round before)
echo "both up: $ok of $N answered, by $by"
[ "$ok" -eq "$N" ] && [[ $by == *fe1* && $by == *fe2* ]] || fail "before: not both front-ends answered ($ok, $by)"

# Timed from the moment fe2 stops listening: nginx's master takes a few
# hundred ms to close its sockets after SIGTERM (and lab_stop polls once a
# second), neither of which is the proxy's doing.
kill -TERM "$(lab_pid nginx-fe2)"
not_listening() { ! lab_listening fe2 "$LAB_FE2" "$LAB_PORT"; }
lab_wait 5 "nginx on fe2 to stop" not_listening
t0=$(now_ms)
lab_wait 5 "fe2 marked down" grep -q "server fe2 .* is DOWN" "$LOG"
# From the DOWN line's own timestamp: this script's polling of a loaded
# machine is not in the figure.
down=$(grep -m1 "server fe2 .* is DOWN" "$LOG")
dt=$(($(date -d "${down%% *}" +%s%3N) - t0))
lab_stop nginx-fe2
echo "fe2 stopped: marked down after $dt ms (bound: 200ms * 2 + 500ms = 900 ms)"
# 500 ms of margin for a late timer on a loaded 2-core machine (the
# sanitizer builds' suites run beside this one).
[ "$dt" -le $((200 * 2 + 500 + 500)) ] || fail "fe2 marked down after $dt ms (bound 900 ms + 500 ms margin)"
conns=$(grep -c ' conn ' "$LOG")
read -r ok _ by _ < <(round down)
echo "fe2 down: $ok of $N answered, by $by"
[ "$ok" -eq "$N" ] && [ "$by" = "fe1x$N" ] || fail "with fe2 down: $ok of $N, answered by $by"
conn_lines_at_least() { [ "$(grep -c ' conn ' "$LOG")" -ge "$1" ]; }
lab_wait 5 "the connection lines" conn_lines_at_least $((conns + N))
tail -n "$N" <(grep ' conn ' "$LOG") | grep -q 'retries=[1-9]' && fail "a connection still tried fe2"
n=$(grep -c "fe2" <(grep -v ' conn ' "$LOG"))
[ "$n" -eq 1 ] || fail "$n log lines about fe2, expected one"
grep "server fe2 198.18.0.12:444 of pool frontends is DOWN: connection refused (2 failed https checks in a row)" "$LOG" ||
	fail "the DOWN line does not say why"

lab_nginx fe2 "$LAB_FE2"
lab_wait 10 "nginx on fe2" lab_listening fe2 "$LAB_FE2" "$LAB_PORT"
lab_wait 5 "fe2 up again" grep -q "server fe2 .* is UP" "$LOG"
grep "server fe2 .* is UP" "$LOG"
read -r ok _ by _ < <(round after)
echo "fe2 back: $ok of $N answered, by $by"
[ "$ok" -eq "$N" ] && [ "$by" = "fe1x$((N / 2)),fe2x$((N / 2))" ] || fail "after: the balance is not restored ($ok, $by)"
lab_proxy_stop auto || fail "the proxy did not exit cleanly"
echo "PASS: stopping fe2 moved every MCU factory request to fe1 with one log line; restarting it restored the balance"
