#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make bench, the audit stream and DNS (run by bench/run.sh; in private
# network and mount namespaces of its own):
#   1. the audit stream: decisions as fast as 1, 2 and 4 processes make them
#      (UDP connect() in a loop, each one an event) under `weir run -e FILE`,
#      for a bounded count; how many JSON lines arrived, how many weir
#      reports lost, and weir's own CPU time (the reader's cost); standalone
#      and through a weir daemon of the bench's own;
#   2. what one decision costs in CPU time, the generator's and weir's,
#      and so how many cores 1,000,000 decisions a second would take;
#   3. DNS: dnsperf straight to the upstream and through weir's resolver.
#
#   WEIR_BUILD=/abs/build bash bench/stream.sh      (root)
#
# BENCH_QUICK=1: shorter. BENCH_STREAM=events|cost|dns: one part only.
# BENCH_STREAM_VIA="standalone daemon" (both, the default), or one of them.
# Tables on stdout, JSON in bench/results/events.json, decision-cost.json
# and dns.json.
E2E_NAME=bench-stream
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_enter "$@"
bench_need dnsperf eventgen
PERF=$WEIR_BUILD/bin/dnsperf
GEN=$WEIR_BUILD/bin/eventgen

if [ -n "${BENCH_QUICK:-}" ]; then
	N=500 SECS=1 REPS=3 EN=300000 CN=200000
else
	N=3000 SECS=3 REPS=5 EN=2000000 CN=1000000
fi

bench_user_policy

# 1. The audit stream. Every decision must come out as a JSON line or be
# counted lost: the lines are counted (less run-start and run-end), and so
# are the decisions run-end reports, which must add up. VIA: standalone
# (weir run's own BPF load and reader) or daemon (weir run as the client of
# a weir daemon of the bench's own: the daemon reads the ring buffer and
# sends weir run each decision, weir run writes the file).
# weir's CPU: weir run's (time(1) less the generators'), and the daemon's
# (its utime+stime before and after).
proc_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

stream_bench() {
	local via=$1 procs rate lost lines cpu dcpu d0 missing f=$E2E_TMP/events.json
	local -a mode=("${STANDALONE[@]}")
	[ "$via" = daemon ] && mode=()
	echo
	echo "audit stream, $via ($EN decisions per run, JSON lines to a file; load $(cut -d' ' -f1-3 /proc/loadavg))"
	printf '  %-10s %14s %12s %10s %8s %12s %12s\n' "processes" "decisions/s" "JSON lines" \
		"lost" "missing" "weir CPU s" "daemon CPU s"
	for procs in 1 2 4; do
		rm -f "$f" # -e appends
		d0=0
		[ "$via" = daemon ] && d0=$(proc_cpu "$E2E_DAEMON_PID")
		/usr/bin/time -f '%U %S' -o "$E2E_TMP/time.out" \
			"$WEIR" run "${mode[@]}" -q -p "$POL" -e "$f" -- "$GEN" \
			192.0.2.10 "$EN" "$procs" >"$E2E_TMP/eventgen.out" 2>"$E2E_TMP/eventgen.err" ||
			e2e_die "weir run eventgen failed: $(cat "$E2E_TMP/eventgen.err")"
		dcpu=-
		[ "$via" = daemon ] &&
			dcpu=$(awk -v a="$d0" -v b="$(proc_cpu "$E2E_DAEMON_PID")" 'BEGIN { printf "%.2f", b - a }')
		rate=$(jq .per_second "$E2E_TMP/eventgen.out")
		lost=$(tail -n1 "$f" | jq .lost)
		lines=$(($(wc -l <"$f") - 2)) # less run-start and run-end
		# Every decision is a line or counted lost; none may go missing.
		missing=$((EN / procs * procs - lines - lost))
		# time(1) counts the generators too (weir waits for its command):
		# weir's own CPU, reading and writing, is the rest.
		cpu=$(awk -v g="$(jq .cpu_s "$E2E_TMP/eventgen.out")" '{ printf "%.2f", $1 + $2 - g }' \
			"$E2E_TMP/time.out")
		printf '  %-10s %14s %12s %10s %8s %12s %12s\n' "$procs" "$rate" "$lines" "$lost" \
			"$missing" "$cpu" "$dcpu"
		EV_JSON+="{\"via\":\"$via\",\"processes\":$procs,\"per_second\":$rate,"
		EV_JSON+="\"json_lines\":$lines,\"lost\":$lost,\"missing\":$missing,\"weir_cpu_s\":$cpu"
		[ "$via" = daemon ] && EV_JSON+=",\"daemon_cpu_s\":$dcpu"
		EV_JSON+="},"
	done
}

# What a decision costs, and so what 1,000,000 a second would take: one
# generator process, CN decisions, CPU time per decision of the generator
# (its connect(): the syscall, weir's BPF program, the event into the ring
# buffer) and of weir (weir run, and the daemon's threads through it), for
# no enforcement, weir without and with an events file, standalone and
# through a daemon. Cores for 1M/s = (generator + weir) us x 1M / 1e6 s.
# weir's start and end (the same command with `true`) are left out.
# weir's CPU time (and its daemon's) for `"$@" true`: its start and end,
# which the rows below leave out (loading BPF is not a decision's cost).
start_cpu() {
	local d0=0 d1=0
	[ -n "${E2E_DAEMON_PID:-}" ] && d0=$(proc_cpu "$E2E_DAEMON_PID")
	/usr/bin/time -f '%U %S' -o "$E2E_TMP/time0.out" "$@" true >/dev/null 2>&1
	[ -n "${E2E_DAEMON_PID:-}" ] && d1=$(proc_cpu "$E2E_DAEMON_PID")
	awk -v a="$d0" -v b="$d1" '{ print $1 + $2 + b - a }' "$E2E_TMP/time0.out"
}

cost_row() {
	local name=$1 d0=0 d1=0 gen wcpu dcpu=0 rate base=0
	shift
	[ $# -gt 0 ] && base=$(start_cpu "$@")
	[ -n "${E2E_DAEMON_PID:-}" ] && d0=$(proc_cpu "$E2E_DAEMON_PID")
	/usr/bin/time -f '%U %S' -o "$E2E_TMP/time.out" "$@" "$GEN" 192.0.2.10 "$CN" 1 \
		>"$E2E_TMP/eventgen.out" 2>"$E2E_TMP/eventgen.err" ||
		e2e_die "$name: $(cat "$E2E_TMP/eventgen.err")"
	[ -n "${E2E_DAEMON_PID:-}" ] && d1=$(proc_cpu "$E2E_DAEMON_PID") &&
		dcpu=$(awk -v a="$d0" -v b="$d1" 'BEGIN { print b - a }')
	gen=$(jq .cpu_s "$E2E_TMP/eventgen.out")
	rate=$(jq .per_second "$E2E_TMP/eventgen.out")
	wcpu=$(awk -v g="$gen" -v b="$base" '{ print $1 + $2 - g - b }' "$E2E_TMP/time.out")
	[ $# = 0 ] && wcpu=0
	awk -v n="$name" -v r="$rate" -v g="$gen" -v w="$wcpu" -v d="$dcpu" -v c="$CN" 'BEGIN {
		gu = g / c * 1e6; wu = (w + d) / c * 1e6
		printf "  %-28s %12d %12.2f %12.2f %12.2f\n", n, r, gu, wu, gu + wu }'
	COST_JSON+="{\"case\":\"$name\",\"per_second\":$rate,\"generator_cpu_s\":$gen,"
	COST_JSON+="\"weir_cpu_s\":$(awk -v w="$wcpu" -v d="$dcpu" 'BEGIN { print w + d }')},"
}

cost_bench() {
	local f=$E2E_TMP/cost.json
	COST_JSON='['
	echo
	echo "what a decision costs ($CN UDP connect()s from one process; CPU us per decision; load $(cut -d' ' -f1-3 /proc/loadavg))"
	# us per decision x 1,000,000 a second = cores
	printf '  %-28s %12s %12s %12s %12s\n' "" "decisions/s" "generator" "weir" "cores@1M/s"
	cost_row "no enforcement"
	cost_row "weir run, no events file" "$WEIR" run "${STANDALONE[@]}" -q -p "$POL" --
	rm -f "$f"
	cost_row "weir run -e FILE" "$WEIR" run "${STANDALONE[@]}" -q -p "$POL" -e "$f" --
	if "$WEIR" daemon --help >/dev/null 2>&1; then
		e2e_start_daemon
		rm -f "$f"
		cost_row "weir run -e FILE, daemon" "$WEIR" run -q -p "$POL" -e "$f" --
		e2e_stop_daemon
		unset WEIR_SOCKET
	fi
	echo "${COST_JSON%,}]" | jq '{bench: "decision-cost", decisions: '"$CN"', runs: .}' \
		>"$RESULTS/decision-cost.json"
}

stream_benches() {
	local via
	EV_JSON='['
	for via in ${BENCH_STREAM_VIA:-standalone daemon}; do
		if [ "$via" = daemon ]; then
			"$WEIR" daemon --help >/dev/null 2>&1 || continue
			e2e_start_daemon
		fi
		stream_bench "$via"
		[ "$via" = daemon ] && e2e_stop_daemon && unset WEIR_SOCKET
	done
	echo "${EV_JSON%,}]" | jq '{bench: "events", runs: .}' >"$RESULTS/events.json"
}

# 3. DNS: the same dnsperf, straight to the upstream and through weir (the
# program asks 127.0.0.53; weir redirects it to its resolver, which forwards
# to 127.0.0.53). The two interleave within each repetition.
dns_bench() {
	local r cfg run ld lw qd qw
	local -A LAT QPS
	for ((r = 1; r <= REPS; r++)); do
		for cfg in direct weir; do
			if [ $cfg = direct ]; then
				run=("$PERF")
			else
				run=("$WEIR" run "${STANDALONE[@]}" -q -p "$POL" -- "$PERF")
			fi
			LAT[$cfg]+="$("${run[@]}" latency 127.0.0.53 "$N" allowed.test 2>/dev/null | jq .median_us) "
			QPS[$cfg]+="$("${run[@]}" qps 127.0.0.53 "$SECS" allowed.test 2>/dev/null | jq .qps) "
		done
	done
	ld=$(median_of "${LAT[direct]}")
	lw=$(median_of "${LAT[weir]}")
	qd=$(median_of "${QPS[direct]}")
	qw=$(median_of "${QPS[weir]}")
	echo
	echo "DNS through weir's resolver vs. the upstream (dnsmasq) directly"
	echo "($REPS repetitions, interleaved; median of the per-repetition medians; load $(cut -d' ' -f1-3 /proc/loadavg))"
	printf '%-28s %12s %12s %8s\n' "" "direct" "weir" "ratio"
	printf '%-28s %12.1f %12.1f %8.2f\n' "latency per query (us)" "$ld" "$lw" \
		"$(awk -v a="$lw" -v b="$ld" 'BEGIN { print a / b }')"
	printf '%-28s %12.0f %12.0f %8.2f\n' "queries per second" "$qd" "$qw" \
		"$(awk -v a="$qw" -v b="$qd" 'BEGIN { print a / b }')"
	printf '%-28s %12s %12.1f\n' "added latency (us)" "" \
		"$(awk -v a="$lw" -v b="$ld" 'BEGIN { print a - b }')"
	jq -n --arg reps "$REPS" --arg lat_d "${LAT[direct]}" --arg lat_w "${LAT[weir]}" \
		--arg qps_d "${QPS[direct]}" --arg qps_w "${QPS[weir]}" \
		'def nums: split(" ") | map(select(. != "") | tonumber);
		{bench: "dns", repetitions: ($reps | tonumber),
		 latency_median_us: {direct: ($lat_d | nums), weir: ($lat_w | nums)},
		 qps: {direct: ($qps_d | nums), weir: ($qps_w | nums)}}' >"$RESULTS/dns.json"
	echo "(JSON: bench/results/events.json, decision-cost.json, dns.json)"
}

case "${BENCH_STREAM:-}" in
events) stream_benches ;;
cost) cost_bench ;;
dns) dns_bench ;;
*) stream_benches && cost_bench && dns_bench ;;
esac
