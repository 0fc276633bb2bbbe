#!/usr/bin/env bash
# The report (sourced by bench/run): medians of raw.tsv into results.csv,
# results.md and chart.svg.

# id|better|unit|label. better: H (higher is better), L (lower), R (a ratio
# shown as is), C (a count of trouble: shown, never divided).
FIGURES='bulk1_gbps|H|Gbit/s|Bulk throughput, 1 stream (iperf3)
bulk8_gbps|H|Gbit/s|Bulk throughput, 8 streams (iperf3)
ka_rps|H|req/s|Keep-alive request rate (wrk)
ka_p99_ms|L|ms|Keep-alive p99 latency (wrk, closed loop)
ka_err|C|count|Keep-alive errors
lat_p50_us|L|µs|Open-loop latency p50 at LAT_RATE req/s
lat_p99_us|L|µs|Open-loop latency p99 at LAT_RATE req/s
lat_p999_us|L|µs|Open-loop latency p99.9 at LAT_RATE req/s
lat_err|C|count|Open-loop failed or unsent requests
lathi_p50_us|L|µs|Open-loop latency p50 at LAT_RATE_HI req/s
lathi_p99_us|L|µs|Open-loop latency p99 at LAT_RATE_HI req/s
lathi_p999_us|L|µs|Open-loop latency p99.9 at LAT_RATE_HI req/s
lathi_err|C|count|Open-loop failed or unsent requests at LAT_RATE_HI req/s
fin_p50_us|L|µs|Server FIN to client FIN through the balancer, p50 (one connection at a time)
fin_p99_us|L|µs|Server FIN to client FIN through the balancer, p99
burst_cps|H|conn/s|New connections/s, burst (BURST s, fresh servers)
burst_err|C|count|Burst: failed requests
burst_synretrans|C|count|Burst: SYN retransmits (all namespaces)
burst_paws|C|count|Burst: PAWS rejects in TIME_WAIT (all namespaces)
burst_rsts|C|count|Burst: resets sent (all namespaces)
burst_twoverflow|C|count|Burst: TIME_WAIT entries not made, table full (all namespaces)
sust_cps|H|conn/s|New connections/s, sustained SUST s, mean
sust_end_cps|H|conn/s|Sustained: mean of the last 10 s
sust_worst_cps|H|conn/s|Sustained: worst second (after the first)
sust_keep|R|ratio|Sustained last 10 s / burst rate
sust_err|C|count|Sustained: failed requests
sust_synretrans|C|count|Sustained: SYN retransmits (all namespaces)
sust_paws|C|count|Sustained: PAWS rejects in TIME_WAIT (all namespaces)
sust_rsts|C|count|Sustained: resets sent (all namespaces)
sust_twoverflow|C|count|Sustained: TIME_WAIT entries not made, table full (all namespaces)
idle_base_mib|L|MiB|Balancer RSS after warm-up, before the idle connections
idle1_kib|L|KiB|Balancer RSS per idle connection at IDLE1 connections
idle2_kib|L|KiB|Balancer RSS per idle connection at IDLE2 connections
cpu_bulk1_s|L|s|Balancer CPU seconds, bulk 1 stream
cpu_bulk8_s|L|s|Balancer CPU seconds, bulk 8 streams
cpu_ka_s|L|s|Balancer CPU seconds, keep-alive
cpu_lat_s|L|s|Balancer CPU seconds, open-loop latency
cpu_lathi_s|L|s|Balancer CPU seconds, open-loop latency at LAT_RATE_HI req/s
cpu_burst_s|L|s|Balancer CPU seconds, new-connection burst
cpu_sust_s|L|s|Balancer CPU seconds, sustained new connections'

# Figures a target cannot have by its nature (no balancer process, no
# iperf3 server behind an external VIP): "n/a", not missing.
figure_na() { # TARGET FIGURE
	case $2 in
	idle* | cpu_*)
		[ "$1" = direct ] || [ "$1" = kernel-nat ] || [ -n "${EXT_TARGETS[$1]:-}" ] ;;
	bulk*) [ -n "${EXT_TARGETS[$1]:-}" ] && [ -z "${EXT_IPERF_PORT:-}" ] ;;
	fin_*) [ -n "${EXT_TARGETS[$1]:-}" ] ;; # needs the balancer's namespace
	*) return 1 ;;
	esac
}

figure_meta() {
	local i1=${IDLE_STEPS%%,*} i2=${IDLE_STEPS##*,}
	sed -e "s/LAT_RATE_HI/${LAT_RATE_HI:-20000}/; s/LAT_RATE/$LAT_RATE/" \
		-e "s/BURST s/$BURST s/; s/SUST s/$SUST s/" \
		-e "s/IDLE1/$i1/; s/IDLE2/$i2/" <<<"$FIGURES"
}

# medians.tsv: target, figure, median, min, max, n.
report_medians() {
	sort -t$'\t' -k2,2 -k3,3 -k4,4g "$OUT/raw.tsv" | awk -F'\t' -v OFS='\t' '
		function flush() { if (n) print key, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[1], v[n], n; n = 0 }
		{k = $2 OFS $3; if (k != key) {flush(); key = k} v[++n] = $4}
		END {flush()}' >"$OUT/medians.tsv"
	# Derived: what the sustained run kept of the burst rate.
	awk -F'\t' -v OFS='\t' '$2 == "burst_cps" {b[$1] = $3} $2 == "sust_end_cps" {e[$1] = $3}
		END {for (t in e) if (b[t] > 0) print t, "sust_keep", sprintf("%.2f", e[t] / b[t]), "", "", 1}' \
		"$OUT/medians.tsv" >"$OUT/derived.tsv"
	cat "$OUT/derived.tsv" >>"$OUT/medians.tsv"
}

# invalid.txt: "target kind count" for each new-connection run (kind burst
# or sust) in which a namespace skipped TIME_WAIT entries (its table full:
# TcpExtTCPTimeWaitOverflow), summed over repetitions. Such a run cannot show
# the collapse it exists for: its figures are marked invalid.
report_invalid() {
	: >"$OUT/invalid.txt"
	[ -s "$OUT/raw.tsv" ] || return 0
	awk -F'\t' '$3 ~ /^(burst|sust)_twoverflow$/ {k = $2 " " substr($3, 1, index($3, "_") - 1); s[k] += $4}
		END {for (k in s) if (s[k] > 0) print k, s[k]}' "$OUT/raw.tsv" | sort >"$OUT/invalid.txt"
}

# The table, CSV and the missing list from medians.tsv and the metadata.
report_tables() {
	local targets="$*"
	figure_meta >"$OUT/figures.txt"
	report_invalid
	: >"$OUT/na.txt"
	local t id
	for t in $targets; do
		while IFS='|' read -r id _; do figure_na "$t" "$id" && echo "$t $id" >>"$OUT/na.txt"; done <"$OUT/figures.txt"
	done
	awk -F'\t' -v targets="$targets" -v csv="$OUT/results.csv" -v missing="$OUT/missing.txt" '
		function fmt(x, b) { return b == "C" ? sprintf("%.0f", x) : b == "R" ? sprintf("%.2f", x) : x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
		FILENAME ~ /na.txt$/ {split($0, a, " "); na[a[1] SUBSEP a[2]] = 1; next}
		FILENAME ~ /invalid.txt$/ {split($0, a, " "); inv[a[1] SUBSEP a[2]] = a[3]; next}
		FILENAME ~ /medians.tsv$/ {med[$1 SUBSEP $2] = $3; lo[$1 SUBSEP $2] = $4; hi[$1 SUBSEP $2] = $5; cnt[$1 SUBSEP $2] = $6; next}
		{split($0, m, "|"); id[++nf] = m[1]; better[nf] = m[2]; unit[nf] = m[3]; label[nf] = m[4]}
		END {
			nt = split(targets, T, " ")
			print "figure,unit,better,target,median,min,max,reps,ratio_direct,ratio_haproxy" > csv
			head = "| figure | unit |"; sep = "|---|---|"
			for (j = 1; j <= nt; j++) { head = head " " T[j] " |"; sep = sep "---:|" }
			print head; print sep
			for (i = 1; i <= nf; i++) {
				row = "| " label[i] " | " unit[i] " |"
				for (j = 1; j <= nt; j++) {
					k = T[j] SUBSEP id[i]
					if (!(k in med)) {
						if (k in na) { row = row " n/a |"; v = "n/a" }
						else { row = row " **missing** |"; v = "missing"; print T[j], id[i] > missing }
						print id[i] "," unit[i] "," better[i] "," T[j] "," v ",,,,," >> csv
						continue
					}
					x = med[k]; cell = fmt(x, better[i]); rd = ""; rh = ""
					# A run that skipped TIME_WAIT entries: its rates, and the
					# counts that TIME_WAIT entries would have caused, are
					# invalid.
					kind = id[i] ~ /^burst_(cps|paws|synretrans)$/ ? "burst" : id[i] ~ /^sust_(cps|end_cps|worst_cps|paws|synretrans)$/ ? "sust" : ""
					bad = kind != "" ? inv[T[j] SUBSEP kind] + 0 : 0
					if (id[i] == "sust_keep") bad = inv[T[j] SUBSEP "sust"] + inv[T[j] SUBSEP "burst"]
					if (better[i] == "H" || better[i] == "L") {
						if ((T[j] SUBSEP id[i]) in med && ("direct" SUBSEP id[i]) in med && med["direct" SUBSEP id[i]] > 0)
							rd = sprintf("%.2f", x / med["direct" SUBSEP id[i]])
						if (("haproxy" SUBSEP id[i]) in med && med["haproxy" SUBSEP id[i]] > 0)
							rh = sprintf("%.2f", x / med["haproxy" SUBSEP id[i]])
						if (T[j] != "direct" && T[j] != "haproxy" && (rd != "" || rh != ""))
							cell = cell " (" (rd == "" ? "–" : rd) " / " (rh == "" ? "–" : rh) ")"
						else if (T[j] == "haproxy" && rd != "")
							cell = cell " (" rd " / 1)"
					}
					if (bad > 0) cell = cell " **invalid: " bad " TIME_WAIT overflows**"
					row = row " " cell " |"
					print id[i] "," unit[i] "," better[i] "," T[j] "," x "," lo[k] "," hi[k] "," cnt[k] "," rd "," rh >> csv
				}
				print row
			}
		}' "$OUT/na.txt" "$OUT/invalid.txt" "$OUT/medians.tsv" "$OUT/figures.txt" >"$OUT/table.md"
}

# Per-namespace counters of the new-connection runs (sums over repetitions).
report_counters() {
	[ -s "$OUT/counters.tsv" ] || return 0
	echo "| target | run | namespace | SYN retransmits | PAWS rejects (TIME_WAIT) | resets sent | TIME_WAIT overflows |"
	echo "|---|---|---|---:|---:|---:|---:|"
	awk -F'\t' '{k = $2 "|" $3 "|" $4; if (!(k in seen)) {seen[k] = 1; order[++n] = k} v[k, $5] += $6}
		END {for (i = 1; i <= n; i++) { split(order[i], a, "|");
			printf "| %s | %s | %s | %d | %d | %d | %d |\n", a[1], a[2], a[3], v[order[i], "TcpExtTCPSynRetrans"],
				v[order[i], "TcpExtPAWSTimewait"], v[order[i], "TcpOutRsts"], v[order[i], "TcpExtTCPTimeWaitOverflow"] }}' "$OUT/counters.tsv"
}

# chart.svg: above, each target's figures relative to HAProxy's, turned so
# that higher is better (HAProxy = 1); below, the sustained new-connection
# rate second by second.
report_chart() {
	local targets="$*" t ids="bulk1_gbps bulk8_gbps ka_rps lat_p99_us burst_cps sust_end_cps idle2_kib"
	command -v gnuplot >/dev/null || { say "gnuplot is missing: no chart (make deps)"; return 0; }
	awk -F'\t' -v ids="$ids" -v targets="$targets" '
		{med[$1, $2] = $3}
		END {
			n = split(ids, I, " "); nt = split(targets, T, " ")
			split("bulk1|bulk8|keep-alive|p99 latency^{-1}|burst conn/s|sustained conn/s|idle RSS^{-1}", L, "|")
			printf "figure"; for (j = 1; j <= nt; j++) printf "\t%s", T[j]; print ""
			for (i = 1; i <= n; i++) {
				printf "\"%s\"", L[i]; h = med["haproxy", I[i]]
				for (j = 1; j <= nt; j++) {
					v = med[T[j], I[i]]
					if (v == "" || h == "" || v <= 0 || h <= 0) printf "\t-"
					else printf "\t%.3f", (I[i] ~ /_us$|_kib$/) ? h / v : v / h
				}
				print ""
			}
		}' "$OUT/medians.tsv" >"$OUT/chart-ratios.dat"
	for t in $targets; do
		awk -F'\t' -v t="$t" '$1 == t && $2 == 1 {print $3, $4}' "$OUT/series.tsv" >"$OUT/series-$t.dat" 2>/dev/null
	done
	local nt plots="" i=0
	nt=$(wc -w <<<"$targets")
	for t in $targets; do
		i=$((i + 1))
		[ -s "$OUT/series-$t.dat" ] && plots+="${plots:+, }'$OUT/series-$t.dat' using 1:2 with linespoints pt 7 ps 0.4 lw 1.5 title '$t'"
	done
	{
		echo "set terminal svg size 1100,900 dynamic font 'sans,11' background rgb 'white'"
		echo "set output '$OUT/chart.svg'"
		echo "set datafile missing '-'"
		echo "set multiplot layout 2,1 title 'snatproxy benchmark, $(date -u +%F) ($MODE mode, medians of $REPS)'"
		echo "set title 'relative to HAProxy (= 1), higher is better (axis cut at 4: see the table)'"
		echo "set style data histograms; set style histogram clustered gap 1; set style fill solid 0.85 border -1"
		echo "set boxwidth 0.9; set yrange [0:4]; set grid ytics; set key outside top center horizontal"
		echo "set xtics nomirror; set ytics nomirror"
		echo "plot for [c=2:$((nt + 1))] '$OUT/chart-ratios.dat' using c:xtic(1) title columnheader(c), 1 with lines lc rgb 'black' dt 2 notitle"
		echo "set title 'new connections per second, sustained (one request per connection)'"
		echo "set style data linespoints; set xlabel 'second'; set ylabel 'conn/s'; set autoscale x; set yrange [0:*]; set key outside top center horizontal"
		[ -n "$plots" ] && echo "plot $plots" || echo "plot 0 notitle"
		echo "unset multiplot"
	} >"$OUT/chart.gp"
	gnuplot "$OUT/chart.gp" 2>"$OUT/logs/gnuplot.log" || say "gnuplot failed (see $OUT/logs/gnuplot.log)"
}
