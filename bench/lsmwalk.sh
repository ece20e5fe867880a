#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The BPF LSM's cost (bpf/lsm.bpf.h): weir_lsm_send runs on every
# sendmsg() of every task of the machine while weir is loaded, and walks the
# sender's cgroup up to the nearest enforced one, or to the root
# (weir_cg_handle, a bpf_loop); inside a run it walks the socket's cgroup
# too. Measured by the kernel's own account (kernel.bpf_stats_enabled:
# run_time_ns / run_cnt of weir_lsm_send) for N send()s on a connected UDP
# socket (bench/sendperf.c), the median of LSMWALK_REPS (3) repetitions:
# from a task outside every weir cgroup at depth 1, 4, 16 and 64 below the
# root (while a `weir run --standalone` holds the programs), and from inside
# `weir run --standalone` at depth 0, 4, 16 and 64 below the run's cgroup
# (that run's own programs, read from inside before it ends); beside it, the
# egress backstop (weir_egress, cgroup_skb) of the same sends, for scale.
#
#   WEIR_BUILD=/abs/build bash bench/lsmwalk.sh      (root)
#
# Needs the BPF LSM active (lsm=...,bpf; docs/kernels.md): without it, says
# it skipped and why. This machine has none; under make test-kernels' 6.12+lsm
# guest (TCG: emulated, so relative figures only):
#   sudo bash tests/kernels/vm.sh --kernel 6.12 \
#       --cmdline-extra 'lsm=lockdown,capability,landlock,yama,apparmor,bpf' \
#       -- bash bench/lsmwalk.sh
# LSMWALK_N: sends per workload (default 20000; BENCH_QUICK: 5000).

E2E_NAME=lsmwalk
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init
N=${LSMWALK_N:-$([ -n "${BENCH_QUICK:-}" ] && echo 5000 || echo 20000)}
SP=$WEIR_BUILD/bin/sendperf
[ -x "$SP" ] || e2e_die "make build/bin/sendperf first"
command -v bpftool >/dev/null || e2e_die "bpftool not found (make deps)"

[ -r /sys/kernel/security/lsm ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
if [ "$("$WEIR" status --json | jq -r .kernel.bpf_lsm)" != true ]; then
	echo "lsmwalk: skipped: the BPF LSM is not active on $(uname -r) (LSMs: $(cat /sys/kernel/security/lsm 2>/dev/null)); docs/kernels.md says how to boot a kernel with it"
	exit 0
fi

e2e_setup_lo 192.0.2.10/32
e2e_start_sink sink "$E2E_TMP/sink.log" 192.0.2.10:9000
POL=$(e2e_policy lsmwalk <<-POLICY
	version: 1
	allow:
	  - ip: 192.0.2.10
POLICY
)

STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
OUTCG=$CG2/weir-lsmwalk-$$
HOLDER=
lw_cleanup() {
	local d
	[ -n "$HOLDER" ] && kill -TERM "$HOLDER" 2>/dev/null && e2e_wait_gone "$HOLDER" 50
	if [ -d "$OUTCG" ]; then
		find "$OUTCG" -depth -type d | while read -r d; do rmdir "$d" 2>/dev/null; done
	fi
	sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
	e2e_cleanup
}
trap lw_cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1 || e2e_die "cannot turn on kernel.bpf_stats_enabled"

# snap: "LSM_NS LSM_RUNS EGRESS_NS EGRESS_RUNS", the statistics of the
# programs named weir_lsm_send and weir_egress now loaded (summed: one weir
# is loaded at a time here). A script, so that a command inside weir run
# (as root) can take it around its own sends, before its run unloads them.
cat >"$E2E_TMP/snap.sh" <<'SNAP'
#!/bin/sh
for n in weir_lsm_send weir_egress; do
	bpftool -j prog show name "$n" 2>/dev/null |
		jq -rs '[.[] | if type == "array" then .[] else . end] |
			"\(map(.run_time_ns // 0) | add // 0) \(map(.run_cnt // 0) | add // 0)"'
done | paste -sd' '
SNAP
chmod 755 "$E2E_TMP/snap.sh"

# A run that holds the programs loaded while tasks outside it send (the LSM
# ones attach to the whole machine).
start_holder() {
	"$WEIR" run --standalone -q -p "$POL" -- sleep 3600 >"$E2E_TMP/holder.out" 2>&1 &
	HOLDER=$!
	for ((i = 0; i < 100 * ${WEIR_TEST_SLOW:-1}; i++)); do
		bpftool prog show name weir_lsm_send >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	e2e_die "weir_lsm_send is not loaded: $(t_tail "$E2E_TMP/holder.out")"
}

stop_holder() {
	kill -TERM "$HOLDER"
	e2e_wait_gone "$HOLDER" $((50 * ${WEIR_TEST_SLOW:-1})) || e2e_die "the holder run did not stop"
	HOLDER=
}

# outside DEPTH: N sends by a task outside every weir cgroup, DEPTH levels
# below the root; prints snap's figures before and after.
outside() {
	local d=$OUTCG i
	for ((i = 2; i <= $1; i++)); do d=$d/l$i; done
	mkdir -p "$d" || e2e_die "mkdir $d"
	sh -c 'echo $$ >"$1/cgroup.procs" && "$2" && "$3" udp 192.0.2.10 9000 "$4" >/dev/null &&
		exec "$2"' sh "$d" "$E2E_TMP/snap.sh" "$SP" "$N"
}

# inside DEPTH: the same inside weir run, DEPTH levels below its cgroup,
# the run's own programs measured
inside() {
	"$WEIR" run --standalone -q -u root -p "$POL" -- sh -c '
		d=/sys/fs/cgroup
		i=0
		while [ $i -lt "$0" ]; do i=$((i + 1)); d=$d/l$i; mkdir "$d" || exit 3; done
		[ "$0" = 0 ] || echo $$ >"$d/cgroup.procs" || exit 4
		"$1" && "$2" udp 192.0.2.10 9000 "$3" >/dev/null && exec "$1"' \
		"$1" "$E2E_TMP/snap.sh" "$SP" "$N"
}

# measure LABEL CMD...: REPS times N sends by CMD; one line, one JSON object
# (the median of the repetitions' ns per run).
REPS=${LSMWALK_REPS:-3}
J='['
measure() {
	local label=$1 r out a lns=() ens=() runs=0 eruns=0
	shift
	for ((r = 0; r < REPS; r++)); do
		out=$("$@" 2>"$E2E_TMP/measure.err") || e2e_die "$label: $out $(t_tail "$E2E_TMP/measure.err")"
		read -r -a a <<<"$(echo "$out" | tr '\n' ' ')"
		[ ${#a[@]} = 8 ] || e2e_die "$label: $out $(t_tail "$E2E_TMP/measure.err")"
		runs=$((a[5] - a[1])) eruns=$((a[7] - a[3]))
		((runs > 0)) || e2e_die "$label: weir_lsm_send never ran ($out)"
		lns+=($(((a[4] - a[0]) / runs)))
		((eruns > 0)) && ens+=($(((a[6] - a[2]) / eruns)))
	done
	lm=$(printf '%s\n' "${lns[@]}" | sort -n | sed -n "$(((REPS + 1) / 2))p")
	em=-
	((${#ens[@]})) && em=$(printf '%s\n' "${ens[@]}" | sort -n | sed -n "$(((${#ens[@]} + 1) / 2))p")
	printf '  %-34s weir_lsm_send %6d runs, %6s ns per run (%s); weir_egress %6d runs, %s ns per run\n' \
		"$label" "$runs" "$lm" "${lns[*]}" "$eruns" "$em"
	J+=$(jq -nc --arg l "$label" --argjson r "$runs" --argjson m "$lm" --arg all "${lns[*]}" \
		--argjson er "$eruns" --arg em "$em" \
		'{workload: $l, lsm_runs: $r, lsm_ns_per_run_median: $m,
		  lsm_ns_per_run: ($all | split(" ") | map(tonumber)), egress_runs: $er,
		  egress_ns_per_run_median: (if $em == "-" then null else ($em | tonumber) end)}'),
}

echo "the BPF LSM's cgroup walk on $(uname -r): $N send()s each, median of $REPS (kernel BPF statistics)"
start_holder
for d in 1 4 16 64; do measure "outside weir, depth $d" outside "$d"; done
stop_holder
for d in 0 4 16 64; do measure "inside weir run, depth $d below it" inside "$d"; done
mkdir -p "$REPO_ROOT/bench/results" 2>/dev/null
echo "${J%,}]" | jq --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg k "$(uname -r)" \
	'{bench: "lsmwalk", kernel: $k, loadavg: $load, workloads: .}' \
	>"${LSMWALK_JSON:-$REPO_ROOT/bench/results/lsmwalk.json}" 2>/dev/null ||
	echo "${J%,}]"
echo "(load average $(cut -d' ' -f1-3 /proc/loadavg))"
