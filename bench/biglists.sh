#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make bench, big lists (docs/policy.md, "Big lists"): a policy of
# 1,000,000 prefixes, from a cidr_list file and inline in YAML, loaded by
# `weir run --standalone -- true` end to end; weir run -v's split into
# parse, compile and map writes; CPU time beside wall time (on a shared
# machine the wall time is mostly waiting for a core). Called by
# bench/run.sh; in namespaces of its own.
#
#   WEIR_BUILD=/abs/build bash bench/biglists.sh      (root)

E2E_NAME=bench-biglists
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init
RESULTS=$REPO_ROOT/bench/results
mkdir -p "$RESULTS"
T=$E2E_TMP
if [ -n "${BENCH_QUICK:-}" ]; then REPS=1; else REPS=3; fi
N=1000000
STANDALONE=()
"$WEIR" run --help 2>&1 | grep -q -- '--standalone' && STANDALONE=(--standalone)

median() {
	sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

ip link set lo up
# Random host prefixes (unsorted, as the worst case for the compiler's sort).
awk -v n=$N 'BEGIN { srand(1); for (i = 0; i < n; i++)
	printf "%d.%d.%d.%d\n", 1 + int(rand() * 222), int(rand() * 256), int(rand() * 256), int(rand() * 256) }' \
	>"$T/list.txt"
printf 'version: 1\nallow:\n  - cidr_list: list.txt\n' >"$T/list.yaml"
{
	printf 'version: 1\nallow:\n'
	sed 's/^/  - ip: /' "$T/list.txt"
} >"$T/inline.yaml"

# one KIND POLICY: REPS runs of weir run -v -- true; wall and CPU ms, and
# the -v split of the last run.
declare -A R
one() {
	local kind=$1 pol=$2 r t0 wall=() cpu=() line
	for ((r = 0; r < REPS; r++)); do
		t0=$EPOCHREALTIME
		/usr/bin/time -f '%U %S' -o "$T/time" \
			"$WEIR" run "${STANDALONE[@]}" -v -p "$pol" -- true >/dev/null 2>"$T/err" ||
			e2e_die "weir run with $kind failed: $(t_tail "$T/err")"
		wall+=("$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
		cpu+=("$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$T/time")")
	done
	R[$kind-wall]=$(printf '%s\n' "${wall[@]}" | median)
	R[$kind-cpu]=$(printf '%s\n' "${cpu[@]}" | median)
	R[$kind-parse]=$(sed -n 's/^weir: policy parsed in \([0-9.]*\) ms$/\1/p' "$T/err" | tail -1)
	line=$(grep 'policy in force' "$T/err" | tail -1)
	R[$kind-compile]=$(sed -n 's/.*compiled in \([0-9.]*\) ms.*/\1/p' <<<"$line")
	R[$kind-write]=$(sed -n 's/.*written in \([0-9.]*\) ms.*/\1/p' <<<"$line")
}

one list "$T/list.yaml"
one inline "$T/inline.yaml"

echo
echo "Big lists: weir run ${STANDALONE[*]} -- true with $N prefixes (median of $REPS; ms)"
printf '%-22s %8s %8s %8s %8s %8s\n' "" wall cpu parse compile write
for k in list inline; do
	printf '%-22s %8s %8s %8s %8s %8s\n' "$k" "${R[$k-wall]}" "${R[$k-cpu]}" \
		"${R[$k-parse]:--}" "${R[$k-compile]:--}" "${R[$k-write]:--}"
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"
jq -n --arg n $N --arg reps $REPS --arg la "$(cut -d' ' -f1 /proc/loadavg)" \
	--arg lw "${R[list-wall]}" --arg lc "${R[list-cpu]}" --arg lp "${R[list-parse]}" \
	--arg lk "${R[list-compile]}" --arg lr "${R[list-write]}" \
	--arg iw "${R[inline-wall]}" --arg ic "${R[inline-cpu]}" --arg ip "${R[inline-parse]}" \
	--arg ik "${R[inline-compile]}" --arg ir "${R[inline-write]}" \
	'def num: if . == "" then null else tonumber end;
	{bench: "biglists", prefixes: ($n | tonumber), repetitions: ($reps | tonumber),
	 loadavg: ($la | num),
	 list_ms: {wall: ($lw | num), cpu: ($lc | num), parse: ($lp | num), compile: ($lk | num),
		   write: ($lr | num)},
	 inline_ms: {wall: ($iw | num), cpu: ($ic | num), parse: ($ip | num), compile: ($ik | num),
		     write: ($ir | num)}}' >"$RESULTS/biglists.json"
echo "(JSON: bench/results/biglists.json)"
