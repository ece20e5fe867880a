#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make bench: weir's costs, each against a baseline measured in the same
# run, inside private network and mount namespaces made here (so nothing
# leaves the machine and nothing outlives the run). BENCH_QUICK=1: shorter.
#
#   WEIR_BUILD=/abs/build bash bench/run.sh      (root)
#
# Writes a table to stdout and JSON to bench/results/.

E2E_NAME=bench
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_enter "$@"

if [ -n "${BENCH_QUICK:-}" ]; then REPS=3; else REPS=5; fi

bench_user_policy 203.0.113.66/32
# 198.18.0.0/15 (RFC 2544, for benchmarks) is local here: a spread of
# destinations without adding thousands of addresses.
ip route add local 198.18.0.0/15 dev lo || e2e_die "cannot route 198.18.0.0/15 to lo"
e2e_start_sink sink "$E2E_TMP/sink.log" 192.0.2.10:9000
SENDPERF=$WEIR_BUILD/bin/sendperf

# 1-3. Per-call cost and policy load: weir against no enforcement, an empty
# program, iptables+ipset and nftables (bench/callbench.c).
"$WEIR_BUILD/bin/callbench" ${BENCH_QUICK:+--quick} "$RESULTS/calls.json" ||
	e2e_die "callbench failed"
echo "(JSON: bench/results/calls.json)"

# 4. Start-up: `weir run -- true` against `true`, standalone and through a
# daemon, wall and CPU, and the verifier's statistics (bench/startup.sh, in
# namespaces of its own; WEIR_BASE=/abs/build interleaves another build).
bench_sub startup

# 5. The audit stream and DNS through weir's resolver (bench/stream.sh, in
# namespaces of its own).
bench_sub stream

# The egress backstop: send() on a connected socket runs no connect or
# sendmsg hook, only cgroup_skb/egress (its per-socket cache hit; for UDP,
# the flow's byte count too). The same sends, outside weir, inside it, and
# inside it to a rule with an upload_budget (charged per packet, under the
# budget's lock), interleaved.
POL_BUDGET=$(e2e_policy bench-budget <<-POLICY
	version: 1
	allow:
	  - ip: 192.0.2.10
	    upload_budget: 64GiB
POLICY
)
if [ -n "${BENCH_QUICK:-}" ]; then SN=20000; else SN=200000; fi
declare -A SEND
for ((r = 1; r <= REPS; r++)); do
	for proto in udp tcp; do
		SEND[direct-$proto]+="$("$SENDPERF" $proto 192.0.2.10 9000 $SN | jq .median_ns) "
		SEND[weir-$proto]+="$("$WEIR" run "${STANDALONE[@]}" -q -p "$POL" -- "$SENDPERF" $proto 192.0.2.10 9000 $SN 2>/dev/null |
			jq .median_ns) "
		SEND[budget-$proto]+="$("$WEIR" run "${STANDALONE[@]}" -q -p "$POL_BUDGET" -- "$SENDPERF" $proto 192.0.2.10 9000 $SN 2>/dev/null |
			jq .median_ns) "
	done
done
echo
echo "send() on a connected socket: the egress backstop's cost per packet"
echo "($REPS repetitions, $SN sends each, interleaved; median of medians)"
printf '%-28s %12s %12s %8s %10s %12s %8s %10s\n' "" "direct (ns)" "weir (ns)" "ratio" \
	"delta (ns)" "budget (ns)" "ratio" "delta (ns)"
for proto in udp tcp; do
	d=$(median_of "${SEND[direct-$proto]}")
	w=$(median_of "${SEND[weir-$proto]}")
	b=$(median_of "${SEND[budget-$proto]}")
	printf '%-28s %12.0f %12.0f %8.2f %10.0f %12.0f %8.2f %10.0f\n' "$proto send()" "$d" "$w" \
		"$(awk -v a="$w" -v b="$d" 'BEGIN { print a / b }')" \
		"$(awk -v a="$w" -v b="$d" 'BEGIN { print a - b }')" "$b" \
		"$(awk -v a="$b" -v b="$d" 'BEGIN { print a / b }')" \
		"$(awk -v a="$b" -v b="$d" 'BEGIN { print a - b }')"
done
jq -n --arg reps "$REPS" --arg n "$SN" --arg du "${SEND[direct-udp]}" --arg wu "${SEND[weir-udp]}" \
	--arg dt "${SEND[direct-tcp]}" --arg wt "${SEND[weir-tcp]}" \
	--arg bu "${SEND[budget-udp]}" --arg bt "${SEND[budget-tcp]}" \
	'def nums: split(" ") | map(select(. != "") | tonumber);
	{bench: "backstop", repetitions: ($reps | tonumber), sends: ($n | tonumber),
	 udp_median_ns: {direct: ($du | nums), weir: ($wu | nums), weir_budget: ($bu | nums)},
	 tcp_median_ns: {direct: ($dt | nums), weir: ($wt | nums), weir_budget: ($bt | nums)}}' \
	>"$RESULTS/backstop.json"
echo "(JSON: bench/results/backstop.json)"

# Per-program cost by the kernel's own statistics, through weir run with a
# policy file (bench/progstats.sh, in namespaces of its own).
bench_sub progstats

# The BPF LSM's cgroup walk on every send of the machine (bench/lsmwalk.sh,
# in namespaces of its own; it says it skipped where the BPF LSM is not
# active, as on the development machines: make test-kernels' 6.12+lsm
# guest has it, docs/kernels.md).
env -u WEIR_E2E_IN_NS WEIR_BUILD="$WEIR_BUILD" bash "$REPO_ROOT/bench/lsmwalk.sh" ||
	e2e_die "bench/lsmwalk.sh failed"

# weir daemon: attach and detach, kernel memory per attachment, per-call
# costs at 1 and 500 attachments, weir run through it (bench/daemon.sh,
# in namespaces of its own).
bench_sub daemon

# Big lists: a policy of 1M prefixes, from a cidr_list and inline in YAML,
# loaded end to end (bench/biglists.sh, in namespaces of its own).
bench_sub biglists
