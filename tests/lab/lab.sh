#!/usr/bin/env bash
# The SNAT lab (docs/snat.md): the seed's pool in network namespaces.
#
#   . tests/lab/lab.sh               a library: tests/lab/demo and
#                                    tests/integration/snat_lab.sh use it
#   tests/lab/lab.sh shell [BINARY [auto|off]]
#                                    builds the lab, starts the proxy, and
#                                    opens a shell to explore it; exit the
#                                    shell to tear everything down
#
#                 switch ns: bridge br0, the pool LAN 198.18.0.0/24
#        +----------------+----------------+----------------+
#      proxy             fe1              fe2             client
#   198.18.0.10       198.18.0.11      198.18.0.12      198.18.0.50
#   VIP :444          nginx :444       nginx :444
#   198.18.1.1        (mutual TLS, /LiveServer/MCUFactory/)
#        |
#     rclient 198.18.1.50, another subnet routed through the proxy's
#     namespace (fe1 and fe2 route 198.18.1.0/24 via 198.18.0.10)
#
# Everything lives in namespaces named snatlab-ID-NODE (ID is the creating
# shell's pid), with the bridge in a namespace of its own: the host's network
# is never touched. lab_init installs traps so that lab_down removes every
# process and namespace on exit, failure, INT or TERM.

# shellcheck source=tests/nginx.sh
. "$(dirname "${BASH_SOURCE[0]}")/../nginx.sh"

LAB_VIP=198.18.0.10
LAB_FE1=198.18.0.11
LAB_FE2=198.18.0.12
LAB_CLIENT=198.18.0.50
LAB_RGW=198.18.1.1
LAB_RCLIENT=198.18.1.50
LAB_PORT=444
LAB_HOST=pool01.lab.test
LAB_URLPATH=/LiveServer/MCUFactory/
LAB_NODES=(sw proxy fe1 fe2 client rclient)
LAB_TCPDUMP_FILTER="tcp port $LAB_PORT"
# Where clients connect: the VIP, or a front-end while debugging the lab
# without a proxy (LAB_TARGET=198.18.0.11).
: "${LAB_TARGET:=$LAB_VIP}"

# lab_require COMMAND...: exits 77 (a skip, said plainly) unless this is root,
# the commands are installed and network namespaces can be made here.
lab_require() {
	local c probe=snatlab-probe-$$
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: not root: the SNAT lab needs network namespaces"; exit 77; }
	for c in ip "$@"; do
		command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c is not installed (make deps)"; exit 77; }
	done
	ip netns add "$probe" 2>/dev/null ||
		{ echo "SKIP: ip netns add fails here: no network namespaces for the SNAT lab"; exit 77; }
	ip netns del "$probe"
}

lab_say() { [ -n "${LAB_QUIET:-}" ] || echo "lab: $*" >&2; }
lab_die() { echo "lab: error: $*" >&2; exit 1; }

# lab_init: names for this run, a scratch directory, and the traps.
lab_init() {
	LAB_ID=${LAB_ID:-$$}
	while [ -e "/run/netns/snatlab-$LAB_ID-sw" ]; do LAB_ID=$$-$RANDOM; done
	LAB_DIR=$(mktemp -d /tmp/snatlab.XXXXXX) || lab_die "mktemp failed"
	chmod 755 "$LAB_DIR"
	LAB_PIDS=()
	LAB_MADE_NS=()
	LAB_DOWN_DONE=
	trap lab_down EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

lab_ns() { echo "snatlab-$LAB_ID-$1"; }

# lab_exec NODE CMD...: runs CMD inside NODE's namespace.
lab_exec() {
	local node=$1; shift
	ip netns exec "$(lab_ns "$node")" "$@"
}

# lab_wait SECONDS WHAT CMD...: polls CMD until it succeeds; fails the run
# after SECONDS, naming WHAT.
lab_wait() {
	local limit=$1 what=$2; shift 2
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || lab_die "timed out after ${limit}s waiting for $what"
		sleep 0.05
	done
}

# lab_bg NODE NAME CMD...: CMD in the background inside NODE, output in
# $LAB_DIR/NAME.log, pid in LAB_PID_NAME.
lab_bg() {
	local node=$1 name=$2; shift 2
	ip netns exec "$(lab_ns "$node")" "$@" >"$LAB_DIR/$name.log" 2>&1 &
	LAB_PIDS+=($!)
	printf -v "LAB_PID_${name//[^A-Za-z0-9_]/_}" %s $!
}

lab_pid() { local v="LAB_PID_${1//[^A-Za-z0-9_]/_}"; echo "${!v:-}"; }

# lab_stop NAME [SIGNAL]: signals a process started by lab_bg and waits up to
# 5 seconds for it (then kills it). Returns its exit status.
lab_stop() {
	local pid rc=0
	pid=$(lab_pid "$1")
	[ -n "$pid" ] || return 0
	kill -"${2:-TERM}" "$pid" 2>/dev/null
	if ! timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null; then
		lab_say "$1 (pid $pid) did not stop within 5s; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || rc=$?
	printf -v "LAB_PID_${1//[^A-Za-z0-9_]/_}" %s ""
	return "$rc"
}

# lab_down: stops what lab_bg started, then anything else still running in
# the run's namespaces (a straggling curl), deletes the namespaces (which
# removes their links and the bridge) and the scratch directory. Idempotent.
lab_down() {
	local pid ns
	[ -z "${LAB_DOWN_DONE:-}" ] || return 0
	LAB_DOWN_DONE=1
	for pid in "${LAB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${LAB_PIDS[@]}"; do
		timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	done
	for ns in "${LAB_MADE_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
	done
	for ns in "${LAB_MADE_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ -n "${LAB_KEEP:-}" ] || rm -rf "$LAB_DIR"
	[ -z "${LAB_KEEP:-}" ] || echo "lab: kept $LAB_DIR" >&2
}

# lab_ns_add NODE: a namespace with loopback up and no IPv6 (so that the
# captures hold only the lab's traffic). Returns non-zero if it cannot be made.
lab_ns_add() {
	local ns
	ns=$(lab_ns "$1")
	ip netns add "$ns" || return 1
	LAB_MADE_NS+=("$ns")
	ip -n "$ns" link set lo up
	lab_exec "$1" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
		echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null
	return 0
}

# lab_port NODE ADDR/LEN: NODE's eth0, a veth whose other end is a port of
# the bridge.
lab_port() {
	local node=$1 addr=$2 sw
	sw=$(lab_ns sw)
	ip -n "$sw" link add "$node" type veth peer name eth0 netns "$(lab_ns "$node")" || return 1
	ip -n "$sw" link set "$node" master br0 up || return 1
	ip -n "$(lab_ns "$node")" addr add "$addr" dev eth0 || return 1
	ip -n "$(lab_ns "$node")" link set eth0 up
}

lab_net_up() {
	local n
	for n in "${LAB_NODES[@]}"; do lab_ns_add "$n" || lab_die "cannot create namespace $(lab_ns "$n")"; done
	ip -n "$(lab_ns sw)" link add br0 type bridge || lab_die "cannot create the bridge"
	ip -n "$(lab_ns sw)" link set br0 up
	lab_port proxy "$LAB_VIP/24" || lab_die "cannot wire the proxy"
	lab_port fe1 "$LAB_FE1/24" || lab_die "cannot wire fe1"
	lab_port fe2 "$LAB_FE2/24" || lab_die "cannot wire fe2"
	lab_port client "$LAB_CLIENT/24" || lab_die "cannot wire the client"

	# The routed client's own link to the proxy's namespace.
	ip -n "$(lab_ns proxy)" link add eth1 type veth peer name eth0 netns "$(lab_ns rclient)" ||
		lab_die "cannot wire the routed client"
	ip -n "$(lab_ns proxy)" addr add "$LAB_RGW/24" dev eth1
	ip -n "$(lab_ns proxy)" link set eth1 up
	ip -n "$(lab_ns rclient)" addr add "$LAB_RCLIENT/24" dev eth0
	ip -n "$(lab_ns rclient)" link set eth0 up
	ip -n "$(lab_ns rclient)" route add default via "$LAB_RGW"
	for n in fe1 fe2; do
		ip -n "$(lab_ns "$n")" route add 198.18.1.0/24 via "$LAB_VIP" ||
			lab_die "cannot route 198.18.1.0/24 from $n"
	done
	lab_transparent_policy || lab_die "cannot set up the transparent-proxy policy in $(lab_ns proxy)"
}

# In the proxy's namespace: forwarding (it is the routed client's gateway),
# and the usual TPROXY policy. A server's reply to a client's address (the
# routed client, in snat = off) arrives for an address that is not local;
# the socket match marks it when a transparent socket owns that 4-tuple, and
# table 100 turns marked packets into local deliveries instead of forwarding
# them to the client, who never opened that connection.
lab_transparent_policy() {
	lab_exec proxy sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward
		for i in all default eth0 eth1; do echo 0 >/proc/sys/net/ipv4/conf/$i/rp_filter; done' || return 1
	lab_exec proxy nft -f - <<-'EOF' || return 1
	table ip snatlab {
		chain divert {
			type filter hook prerouting priority mangle; policy accept;
			meta l4proto tcp socket transparent 1 meta mark set 1
		}
	}
	EOF
	ip -n "$(lab_ns proxy)" rule add fwmark 1 lookup 100 || return 1
	ip -n "$(lab_ns proxy)" route add local 0.0.0.0/0 dev lo table 100
}

# lab_certs: a lab CA and ECDSA P-256 certificates carrying both serverAuth
# and clientAuth (the MCU factory path is mutual TLS: the caller presents its
# own certificate), valid for the pool name so that either front-end passes
# verification behind the VIP.
lab_certs() {
	local d=$LAB_DIR/pki n
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=snatproxy lab CA" -keyout "$d/ca.key" -out "$d/ca.pem" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >"$d/openssl.log" 2>&1 ||
		lab_die "openssl could not make the lab CA (see $d/openssl.log)"
	for n in fe1:$LAB_FE1 fe2:$LAB_FE2 client:$LAB_CLIENT; do
		lab_cert "${n%%:*}" "${n#*:}" || lab_die "openssl could not make the ${n%%:*} certificate"
	done
}

lab_cert() {
	local name=$1 ip=$2 d=$LAB_DIR/pki
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$name.lab.test" -keyout "$d/$name.key" -out "$d/$name.csr" >>"$d/openssl.log" 2>&1 || return 1
	printf '%s\n' "basicConstraints=CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth,clientAuth" \
		"subjectAltName=DNS:$name.lab.test,DNS:$LAB_HOST,IP:$ip" >"$d/$name.ext"
	openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/$name.ext" -out "$d/$name.pem" >>"$d/openssl.log" 2>&1
}

# lab_nginx NAME ADDR: Debian's nginx, by hand, in NAME's namespace, with
# its config, pid, logs and temp paths in the scratch directory. The body
# names the front-end and the address it saw the caller as.
lab_nginx() {
	local name=$1 addr=$2 d=$LAB_DIR/$1
	nginx_conf "$d" 512 info <<-EOF
		log_format lab '\$remote_addr:\$remote_port "\$request" \$status "\$ssl_client_s_dn"';
		access_log $d/access.log lab;
		server {
		    listen $addr:$LAB_PORT ssl;
		    server_name $LAB_HOST $name.lab.test;
		    ssl_certificate $LAB_DIR/pki/$name.pem;
		    ssl_certificate_key $LAB_DIR/pki/$name.key;
		    ssl_client_certificate $LAB_DIR/pki/ca.pem;
		    ssl_verify_client on;
		    location $LAB_URLPATH {
		        default_type text/plain;
		        return 200 "MCUFactory $name saw \$remote_addr:\$remote_port\n";
		    }
		    location / { return 404; }
		}
	EOF
	lab_bg "$name" "nginx-$name" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
}

lab_listening() { # NODE ADDR PORT
	lab_exec "$1" ss -Htln "src $2 and sport = :$3" | grep -q LISTEN
}

# lab_up: the network, the certificates and both front-ends, ready.
lab_up() {
	lab_net_up
	lab_certs
	lab_nginx fe1 "$LAB_FE1"
	lab_nginx fe2 "$LAB_FE2"
	lab_wait 10 "nginx on fe1 (log: $LAB_DIR/fe1/error.log)" lab_listening fe1 "$LAB_FE1" "$LAB_PORT"
	lab_wait 10 "nginx on fe2 (log: $LAB_DIR/fe2/error.log)" lab_listening fe2 "$LAB_FE2" "$LAB_PORT"
}

# lab_proxy_start BINARY MODE: the proxy in its namespace with snat = MODE
# (auto or off), log in $LAB_DIR/proxy-MODE.log; waits for the VIP.
# LAB_POOL_EXTRA, when set, holds more lines for the pool (health checks).
lab_proxy_start() {
	local bin=$1 mode=$2 cfg=$LAB_DIR/proxy-$2.ini pid
	cat >"$cfg" <<-EOF
	; The seed's pool: one VIP in front of two front-ends on its own LAN.
	[global]
	workers = 1
	grace = 1s
	max_connections = 5000

	[pool frontends]
	balance = roundrobin
	${LAB_POOL_EXTRA:-}
	server = fe1 $LAB_FE1
	server = fe2 $LAB_FE2

	[vip mcu]
	listen = $LAB_VIP:$LAB_PORT
	pool = frontends
	snat = $mode
	timeout_connect = 1s
	EOF
	lab_bg proxy "proxy-$mode" "$bin" -c "$cfg"
	pid=$(lab_pid "proxy-$mode")
	local end=$((SECONDS + 10))
	until lab_listening proxy "$LAB_VIP" "$LAB_PORT"; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; then
			sed 's/^/  | /' "$LAB_DIR/proxy-$mode.log" >&2
			lab_die "the proxy (snat = $mode) did not start listening on $LAB_VIP:$LAB_PORT"
		fi
		sleep 0.05
	done
}

# lab_proxy_stop MODE: SIGTERM, and its exit status.
lab_proxy_stop() { lab_stop "proxy-$1" TERM; }

# lab_capture_start NODE NAME [IFACE]: tcpdump on NODE's IFACE (eth0) into
# $LAB_DIR/NAME.pcap (headers only), ready when it returns. Immediate mode:
# a capture stopped right after the traffic still holds all of it.
lab_capture_start() {
	local node=$1 name=$2
	lab_bg "$node" "cap-$name" tcpdump -i "${3:-eth0}" -nn -U --immediate-mode -s 128 -Z root \
		-w "$LAB_DIR/$name.pcap" "$LAB_TCPDUMP_FILTER"
	lab_wait 5 "tcpdump in $node" grep -q "listening on" "$LAB_DIR/cap-$name.log"
}

# tcpdump writes its last packets when it stops: stop it with INT.
lab_capture_stop() { lab_stop "cap-$1" INT || true; }

lab_cert_of() { # NODE: the certificate a caller in NODE presents
	case $1 in fe1 | fe2) echo "$1" ;; *) echo client ;; esac
}

# lab_curl NODE: one HTTPS request with a client certificate from NODE to the
# pool name, bounded to 4 seconds (the proxy gives up on its servers sooner).
lab_curl() {
	local node=$1 c p=$LAB_DIR/pki
	c=$(lab_cert_of "$node")
	timeout -k 1 6 ip netns exec "$(lab_ns "$node")" curl -sS -f --connect-timeout 3 -m 4 \
		--cacert "$p/ca.pem" --cert "$p/$c.pem" --key "$p/$c.key" \
		--resolve "$LAB_HOST:$LAB_PORT:$LAB_TARGET" "https://$LAB_HOST:$LAB_PORT$LAB_URLPATH"
}

# lab_requests NODE COUNT: COUNT requests from NODE, all at once (a failing
# one costs seconds; together they cost it once). One line per request:
#   ok FRONTEND SEEN-AS        (SEEN-AS: the caller's address as the server saw it)
#   fail - - CURL-ERROR
lab_requests() {
	local node=$1 n=$2 i d pids=()
	d=$(mktemp -d "$LAB_DIR/req-$node.XXXX")
	for i in $(seq "$n"); do
		lab_curl "$node" >"$d/$i.out" 2>"$d/$i.err" &
		pids+=($!)
	done
	for i in $(seq "$n"); do
		if wait "${pids[$((i - 1))]}"; then
			awk '$1 == "MCUFactory" { print "ok", $2, $4; f = 1 } END { if (!f) print "fail - - unexpected body" }' "$d/$i.out"
		else
			printf 'fail - - %s\n' "$(tr '\n' ' ' <"$d/$i.err" | sed 's/ *$//')"
		fi
	done
}

# lab_tally FILE: "OK TOTAL ANSWERED SEEN", e.g. "6 6 fe1x3,fe2x3 198.18.0.10",
# from lab_requests' output ("-" where nothing answered).
lab_tally() {
	awk '{ total++ }
	$1 == "ok" { ok++; by[$2]++; a = $3; sub(/:[0-9]+$/, "", a); seen[a] = 1 }
	END {
		ans = ""; n = 0
		for (f in by) names[++n] = f
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (names[j] < names[i]) { t = names[i]; names[i] = names[j]; names[j] = t }
		for (i = 1; i <= n; i++) ans = ans (i > 1 ? "," : "") names[i] "x" by[names[i]]
		s = ""
		for (a in seen) s = s (s == "" ? "" : ",") a
		printf "%d %d %s %s\n", ok, total, ans == "" ? "-" : ans, s == "" ? "-" : s
	}' "$1"
}

lab_name_of() { # ADDR: the lab's name for an address
	case $1 in
	"$LAB_VIP") echo VIP ;; "$LAB_FE1") echo fe1 ;; "$LAB_FE2") echo fe2 ;;
	"$LAB_CLIENT") echo client ;; "$LAB_RCLIENT") echo rclient ;; *) echo "$1" ;;
	esac
}

# lab_packets PCAP: one line per packet, "TIME SRC SPORT DST DPORT FLAGS LEN".
lab_packets() {
	tcpdump -nn -tt -r "$1" 2>/dev/null | awk '{
		for (i = 1; i <= NF; i++) if ($i == "IP") break
		if (i > NF) next
		src = $(i + 1); dst = $(i + 3); sub(/:$/, "", dst)
		fl = "?"; len = 0
		for (j = i; j <= NF; j++) {
			if ($j == "Flags") { fl = $(j + 1); gsub(/[\[\],]/, "", fl) }
			if ($j == "length") len = $(j + 1) + 0
		}
		sp = src; sub(/.*\./, "", sp); sub(/\.[0-9]+$/, "", src)
		dp = dst; sub(/.*\./, "", dp); sub(/\.[0-9]+$/, "", dst)
		print $1, src, sp, dst, dp, fl, len
	}'
}

# lab_resets PCAP CALLER: how many resets CALLER sent to an address other
# than the VIP (replies it never asked for).
lab_resets() {
	lab_packets "$1" | awk -v c="$2" -v vip="$LAB_VIP" '
		$2 == c && $4 != vip && $6 ~ /R/ { n++ } END { print n + 0 }'
}

# lab_synack_sources PCAP CALLER: who sent CALLER its SYN-ACKs, as
# "ADDRxCOUNT ..." (with SNAT, only the VIP).
lab_synack_sources() {
	lab_packets "$1" | awk -v c="$2" '$4 == c && $6 == "S." { n[$2]++ }
		END { for (a in n) printf "%s%s x%d", (s++ ? ", " : ""), a, n[a]; print "" }'
}

# lab_evidence PCAP CALLER: the first connection that CALLER reset, as a
# readable trace up to that reset, like the seed's Network Monitor capture.
# Returns 1 if CALLER reset nothing.
lab_evidence() {
	local pcap=$1 caller=$2 port
	port=$(lab_packets "$pcap" | awk -v c="$caller" -v vip="$LAB_VIP" '
		$2 == c && $4 != vip && $6 ~ /R/ { print $3; exit }')
	[ -n "$port" ] || return 1
	lab_packets "$pcap" | awk -v c="$caller" -v p="$port" -v vip="$LAB_VIP" \
		-v names="$LAB_VIP=VIP $LAB_FE1=fe1 $LAB_FE2=fe2 $LAB_CLIENT=client $LAB_RCLIENT=rclient" '
	BEGIN { n = split(names, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], x, "="); nm[x[1]] = x[2] } }
	function name(a) { return (a in nm) ? nm[a] : a }
	function what(f, len) {
		if (f == "S") return "SYN"
		if (f == "S.") return "SYN-ACK"
		if (f ~ /R/) return "RST"
		if (f ~ /F/) return "FIN"
		if (len > 0) return "data " len " B"
		return "ACK"
	}
	!(($2 == c && $3 == p) || ($4 == c && $5 == p)) { next }
	{
		if (t0 == "") t0 = $1
		w = what($6, $7); note = ""
		if ($6 == "S." && $2 != vip)
			note = "<- from " name($2) "\x27s own address, not the VIP"
		else if ($6 == "S" && $2 == $4)
			note = "<- the proxy\x27s SYN claims " name($4) "\x27s own address: dropped"
		else if ($6 ~ /R/ && $2 == c && $4 != vip)
			note = "<- " name(c) " resets it: it only called the VIP"
		else if ($6 == "S" && $4 == vip)
			note = "(" name(c) " calls the pool VIP)"
		if (done) { more++; next }
		line = sprintf("    %7.1f ms  %-17s > %-17s  %-10s %s", ($1 - t0) * 1000, $2 ":" $3, $4 ":" $5, w, note)
		sub(/ +$/, "", line)
		print line
		if ($6 ~ /R/ && $2 == c && $4 != vip) done = 1
	}
	END { if (more) printf "    (%d more packets of this connection: tcpdump -nn -r PCAP port %s)\n", more, p }' |
		sed "s|PCAP|$pcap|"
}

# The callers of the lab, as KEY:NODE:LABEL.
LAB_CASES=("hairpin:fe1:fe1 -> VIP (hairpin)" "lan:client:client -> VIP (same LAN)"
	"routed:rclient:rclient -> VIP (routed)")

lab_addr_of() { # NODE
	case $1 in
	proxy) echo "$LAB_VIP" ;; fe1) echo "$LAB_FE1" ;; fe2) echo "$LAB_FE2" ;;
	client) echo "$LAB_CLIENT" ;; rclient) echo "$LAB_RCLIENT" ;;
	esac
}

# lab_run_mode BINARY MODE N OUT: the proxy with snat = MODE, captures in
# fe1, the client and the proxy, N requests from each caller of LAB_CASES in
# turn. Leaves in OUT: MODE-KEY.txt (lab_requests' lines), MODE-NODE.pcap,
# proxy-MODE.log and .ini. Returns non-zero if the proxy did not exit cleanly
# on SIGTERM.
lab_run_mode() {
	local bin=$1 mode=$2 n=$3 out=$4 c key node rc=0
	lab_proxy_start "$bin" "$mode"
	lab_capture_start fe1 "$mode-fe1"
	lab_capture_start client "$mode-client"
	lab_capture_start proxy "$mode-proxy" any
	for c in "${LAB_CASES[@]}"; do
		key=${c%%:*}; node=${c#*:}; node=${node%%:*}
		lab_requests "$node" "$n" >"$out/$mode-$key.txt"
	done
	for c in fe1 client proxy; do lab_capture_stop "$mode-$c"; done
	lab_proxy_stop "$mode" || rc=$?
	[ "$rc" -eq 0 ] || echo "lab: the proxy (snat = $mode) exited with status $rc on SIGTERM" >&2
	cp "$LAB_DIR/$mode"-*.pcap "$LAB_DIR/proxy-$mode.log" "$LAB_DIR/proxy-$mode.ini" "$out/" 2>/dev/null
	return "$rc"
}

# lab_main: the command form.
lab_main() {
	case ${1:-} in
	shell)
		local bin=${2:-} mode=${3:-auto}
		[ "$(id -u)" -eq 0 ] || lab_die "needs root (network namespaces)"
		lab_init
		lab_up
		if [ -n "$bin" ]; then
			lab_proxy_start "$bin" "$mode"
			echo "lab: snatproxy (snat = $mode) on $LAB_VIP:$LAB_PORT, log $LAB_DIR/proxy-$mode.log"
		fi
		cat <<-EOF
		lab: namespaces $(lab_ns NODE) with NODE in: ${LAB_NODES[*]}
		lab: try   ip netns exec $(lab_ns fe1) curl -sS --cacert $LAB_DIR/pki/ca.pem \\
		             --cert $LAB_DIR/pki/fe1.pem --key $LAB_DIR/pki/fe1.key \\
		             --resolve $LAB_HOST:$LAB_PORT:$LAB_TARGET https://$LAB_HOST:$LAB_PORT$LAB_URLPATH
		lab: exit this shell to tear the lab down
		EOF
		LAB_DIR=$LAB_DIR PS1="[snatlab-$LAB_ID] \\w# " bash --norc -i
		;;
	*)
		echo "usage: tests/lab/lab.sh shell [BINARY [auto|off]]   (or source it)" >&2
		return 2
		;;
	esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	lab_main "$@"
fi
