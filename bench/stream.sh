#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make bench, the audit stream and DNS (run by bench/run.sh; in private
# network and mount namespaces of its own):
#   1. the audit stream: decisions as fast as 1, 2 and 4 processes make them
#      (UDP connect() in a loop, each one an event) under `weir run -e FILE`,
#      for a bounded count; how many JSON lines arrived, how many weir
#      reports lost, and weir's own CPU time (the reader's cost);
#   2. DNS: dnsperf straight to the upstream and through weir's resolver.
#
#   WEIR_BUILD=/abs/build bash bench/stream.sh      (root)
#
# BENCH_QUICK=1: shorter. BENCH_STREAM=events|dns: one part only.
# Tables on stdout, JSON in bench/results/events.json and dns.json.
E2E_NAME=bench-stream
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_enter "$@"
bench_need dnsperf eventgen
PERF=$WEIR_BUILD/bin/dnsperf
GEN=$WEIR_BUILD/bin/eventgen

if [ -n "${BENCH_QUICK:-}" ]; then
	N=500 SECS=1 REPS=3 EN=300000
else
	N=3000 SECS=3 REPS=5 EN=2000000
fi

bench_user_policy

# 1. The audit stream. Every decision must come out as a JSON line or be
# counted lost: the lines are counted (less run-start and run-end), and so
# are the decisions run-end reports, which must add up.
stream_bench() {
	local procs rate lost lines cpu missing json='[' f=$E2E_TMP/events.json
	echo
	echo "audit stream ($EN decisions per run, JSON lines to a file; load $(cut -d' ' -f1-3 /proc/loadavg))"
	printf '  %-10s %14s %12s %10s %8s %12s\n' "processes" "decisions/s" "JSON lines" "lost" \
		"missing" "weir CPU s"
	for procs in 1 2 4; do
		rm -f "$f" # -e appends
		/usr/bin/time -f '%U %S' -o "$E2E_TMP/time.out" \
			"$WEIR" run "${STANDALONE[@]}" -q -p "$POL" -e "$f" -- "$GEN" \
			192.0.2.10 "$EN" "$procs" >"$E2E_TMP/eventgen.out" 2>"$E2E_TMP/eventgen.err" ||
			e2e_die "weir run eventgen failed: $(cat "$E2E_TMP/eventgen.err")"
		rate=$(jq .per_second "$E2E_TMP/eventgen.out")
		lost=$(tail -n1 "$f" | jq .lost)
		lines=$(($(wc -l <"$f") - 2)) # less run-start and run-end
		# Every decision is a line or counted lost; none may go missing.
		missing=$((EN / procs * procs - lines - lost))
		# time(1) counts the generators too (weir waits for its command):
		# weir's own CPU, reading and writing, is the rest.
		cpu=$(awk -v g="$(jq .cpu_s "$E2E_TMP/eventgen.out")" '{ printf "%.2f", $1 + $2 - g }' \
			"$E2E_TMP/time.out")
		printf '  %-10s %14s %12s %10s %8s %12s\n' "$procs" "$rate" "$lines" "$lost" "$missing" "$cpu"
		json+="{\"processes\":$procs,\"per_second\":$rate,\"json_lines\":$lines,\"lost\":$lost,"
		json+="\"missing\":$missing,\"weir_cpu_s\":$cpu},"
	done
	echo "${json%,}]" | jq '{bench: "events", runs: .}' >"$RESULTS/events.json"
}

# 2. DNS: the same dnsperf, straight to the upstream and through weir (the
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
	echo "(JSON: bench/results/events.json, bench/results/dns.json)"
}

case "${BENCH_STREAM:-}" in
events) stream_bench ;;
dns) dns_bench ;;
*) stream_bench && dns_bench ;;
esac
