#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Per-program cost of weir's BPF programs by the kernel's own account
# (BPF_ENABLE_STATS: run_time_ns / run_cnt), through `weir run --standalone`
# with a policy file, for the paths of issue 15: UDP connect(), unconnected
# UDP sendto(), TCP connect(), send() on a connected UDP socket (the
# backstop alone). Figures a loaded machine disturbs far less than wall
# time. Part of `make bench`; alone:
#
#   WEIR_BUILD=/abs/build bash bench/progstats.sh      (root)
#
# PROGSTATS_N=calls per workload (default 100000; BENCH_QUICK: 20000; TCP
# connections: a tenth). PROGSTATS_ONLY="udp-connect ...": those workloads only.
# Writes bench/results/progstats.json.

E2E_NAME=progstats
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init
RESULTS=$REPO_ROOT/bench/results
mkdir -p "$RESULTS"
N=${PROGSTATS_N:-$([ -n "${BENCH_QUICK:-}" ] && echo 20000 || echo 100000)}
PS=$WEIR_BUILD/bin/progstats
SP=$WEIR_BUILD/bin/sendperf
[ -x "$PS" ] && [ -x "$SP" ] || e2e_die "make build/bin/progstats build/bin/sendperf first"

e2e_setup_lo 192.0.2.10/32
ip route add local 198.18.0.0/15 dev lo || e2e_die "cannot route 198.18.0.0/15 to lo"
e2e_start_sink sink "$E2E_TMP/sink.log" 192.0.2.10:9000
POL=$(e2e_policy progstats <<-POLICY
	version: 1
	allow:
	  - ip: 192.0.2.10
	  - cidr: 198.18.0.0/15
POLICY
)

# workload LABEL MODE PORT N: one weir run (the workload as nobody); prints a
# JSON object: the workload's own median (wall ns per call) and per program
# its runs and ns per run.
workload() {
	local out
	out=$("$PS" "$CG2" -- "$WEIR" run --standalone -q -u nobody -p "$POL" -- \
		"$SP" "$2" 192.0.2.10 "$3" "$4") || e2e_die "$1: $out"
	jq -sc --arg l "$1" '{workload: $l, median_ns: .[0].median_ns,
		programs: [.[1].programs[] | select(.runs > 0)]}' <<<"$out" ||
		e2e_die "$1: $out"
}

echo "per-program cost, kernel BPF statistics ($N calls per workload; ns per run)"
J='['
for w in "udp-connect connect 9000 $N" "udp-sendto sendto 9000 $N" "udp-send udp 9000 $N" \
	"tcp-connect tcpconnect 9000 $((N / 10))"; do
	set -- $w
	[[ " ${PROGSTATS_ONLY:-$1} " == *" $1 "* ]] || continue
	r=$(workload "$@")
	J+="$r,"
	jq -r '"  \(.workload) (\(.median_ns) ns per call):", (.programs[] | "    \(.name) \(.runs) runs, \(.ns_per_run | floor) ns (median of \(.intervals) intervals: \(.median_ns_per_run | floor) ns)")' <<<"$r"
done
echo "${J%,}]" | jq --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	'{bench: "progstats", loadavg: $load, workloads: .}' >"$RESULTS/progstats.json"
echo "(JSON: bench/results/progstats.json; load average $(cut -d' ' -f1-3 /proc/loadavg))"
