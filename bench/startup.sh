#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make bench's start-up section: what `weir run -- true` adds to `true`,
# standalone (its own BPF load: mostly the kernel's verifier) and through a
# weir daemon of its own, wall time and CPU time (user and system, of weir
# run and what it waited for), interleaved; the daemon's CPU per run; the
# verifier's statistics of each program (weir run -vv). The policy is a
# user's: a file with a domain (weir's resolver starts) and an address.
#
#   WEIR_BUILD=/abs/build bash bench/startup.sh                  (root)
#   WEIR_BASE=/abs/other/build ...    the same, another build interleaved
#                                     (before/after in one run)
#   BENCH_QUICK=1: 10 runs of each instead of 30
#
# Prints a table, writes bench/results/startup.json.

E2E_NAME=bench-startup
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_enter "$@"
bench_need rusage
RUSAGE=$WEIR_BUILD/bin/rusage
if [ -n "${BENCH_QUICK:-}" ]; then SR=10; else SR=30; fi
PINS=/sys/fs/bpf/weir-bench-startup-$$

# The builds compared: this one ("new"), and WEIR_BASE's ("base") if given.
declare -A BIN DPID SOCK
BIN[new]=$WEIR
BUILDS=(new)
if [ -n "${WEIR_BASE:-}" ]; then
	BIN[base]=$(readlink -f "$WEIR_BASE")/weir
	[ -x "${BIN[base]}" ] || e2e_die "WEIR_BASE: ${BIN[base]} missing"
	BUILDS=(base new)
fi

startup_cleanup() {
	local b
	for b in "${!DPID[@]}"; do
		kill -TERM "${DPID[$b]}" 2>/dev/null && e2e_wait_gone "${DPID[$b]}" 100
		rm -rf "$PINS-$b"
	done
	e2e_cleanup
}
trap startup_cleanup EXIT

bench_user_policy
# The daemons read theirs from a directory of their own.
mkdir -p "$T/policies"
cp "$POL" "$T/policies/bench.yaml"
POL=$T/policies/bench.yaml

# A daemon of each build, its socket, state, policies and pins its own.
for b in "${BUILDS[@]}"; do
	SOCK[$b]=$T/$b.sock
	"${BIN[$b]}" daemon --socket "${SOCK[$b]}" --policy-dir "$T/policies" \
		--state-dir "$T/$b-state" --pin-root "$PINS-$b" >"$T/$b.out" 2>"$T/$b.err" &
	DPID[$b]=$!
	for ((i = 0; i < 200; i++)); do
		curl -sf --max-time 1 --unix-socket "${SOCK[$b]}" http://weir/v1/health \
			>/dev/null 2>&1 && break
		e2e_dead "${DPID[$b]}" && break
		sleep 0.05
	done
	e2e_dead "${DPID[$b]}" && e2e_die "the $b daemon did not start: $(t_tail "$T/$b.err")"
done

# ticks NAME: the daemon's user+system clock ticks so far.
ticks() {
	awk '{ print $14 + $15 }' "/proc/${DPID[$1]}/stat"
}

# one KEY CMD...: run CMD under rusage, add "WALL USER SYS" to $T/KEY.
one() {
	local key=$1
	shift
	if "$RUSAGE" "$@" >/dev/null 2>"$T/one.err"; then
		tail -n 1 "$T/one.err" >>"$T/$key"
	else
		echo "bench-startup: failed: $*: $(t_tail "$T/one.err")" >&2
	fi
}

TRUE=$(type -P true) # the program, as weir run starts it: not bash's builtin
declare -A DT
for b in "${BUILDS[@]}"; do DT[$b]=0; done
for ((r = 0; r < SR; r++)); do
	one true "$TRUE"
	for b in "${BUILDS[@]}"; do
		one "$b-standalone" "${BIN[$b]}" run --standalone -q -p "$POL" -- true
		t0=$(ticks "$b")
		one "$b-daemon" "${BIN[$b]}" run --socket "${SOCK[$b]}" -q -p "$POL" -- true
		DT[$b]=$((DT[$b] + $(ticks "$b") - t0))
	done
done

TW=$(median 1 <"$T/true")
HZ=$(getconf CLK_TCK)
echo
echo "start-up ($SR runs each, interleaved; median ms; CPU: user and system time of weir"
echo "run and what it waited for, the command and weir's resolver included)"
printf '  %-46s %8s %8s %8s %8s\n' "" wall added user sys
JSON='{"bench":"startup","runs":'$SR',"rows":['
row() { # LABEL KEY
	local w u s
	w=$(median 1 <"$T/$2") u=$(median 2 <"$T/$2") s=$(median 3 <"$T/$2")
	printf '  %-46s %8.1f %8.1f %8.1f %8.1f\n' "$1" "$w" "$(awk -v a="$w" -v b="$TW" 'BEGIN { print a - b }')" "$u" "$s"
	JSON+="{\"label\":\"$1\",\"wall_ms\":$w,\"user_ms\":$u,\"sys_ms\":$s},"
}
row "$TRUE" true
for b in "${BUILDS[@]}"; do
	tag=
	[ ${#BUILDS[@]} -gt 1 ] && tag="$b: "
	row "${tag}weir run --standalone -- true" "$b-standalone"
	row "${tag}weir run -- true, through a daemon" "$b-daemon"
done
for b in "${BUILDS[@]}"; do
	printf '  %-46s %8.1f ms\n' "${b}'s daemon, CPU per run (mean)" \
		"$(awk -v t="${DT[$b]}" -v n="$SR" -v hz="$HZ" 'BEGIN { print t * 1000 / hz / n }')"
done

# The verifier's own account of each program (BPF_LOG_STATS), from -vv.
echo
echo "verifier (weir run --standalone -vv -- true: BPF_LOG_STATS per program)"
printf '  %-20s' program
for b in "${BUILDS[@]}"; do printf ' %12s %10s' "$b insns" "$b us"; done
echo
for b in "${BUILDS[@]}"; do
	"${BIN[$b]}" run --standalone -vv -p "$POL" -- true 2>&1 | awk '
		/BEGIN PROG LOAD LOG/ { match($0, /prog .[a-z0-9_]+/); p = substr($0, RSTART + 6, RLENGTH - 6) }
		/^verification time/ { t = $3 }
		/^processed/ { print p, $2, t }' >"$T/$b.verifier"
done
awk -v builds="${BUILDS[*]}" -v dir="$T" '
	BEGIN {
		nb = split(builds, b, " ")
		for (i = 1; i <= nb; i++)
			while ((getline line < (dir "/" b[i] ".verifier")) > 0) {
				split(line, f, " ")
				if (!(f[1] in seen)) { seen[f[1]] = 1; order[++n] = f[1] }
				ins[b[i], f[1]] = f[2]; us[b[i], f[1]] = f[3]
				ti[b[i]] += f[2]; tu[b[i]] += f[3]
			}
		for (j = 1; j <= n; j++) {
			printf "  %-20s", order[j]
			for (i = 1; i <= nb; i++)
				printf " %12s %10s", ((b[i], order[j]) in ins) ? ins[b[i], order[j]] : "-", ((b[i], order[j]) in us) ? us[b[i], order[j]] : "-"
			printf "\n"
		}
		printf "  %-20s", "all"
		for (i = 1; i <= nb; i++) printf " %12s %10s", ti[b[i]] + 0, tu[b[i]] + 0
		printf "\n"
	}'
echo "(verification time: the kernel's, in microseconds, for this run only; a build that"
echo " prints no statistics at -vv shows none)"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "(load average: $LOAD; $(nproc) cores)"
for b in "${BUILDS[@]}"; do
	JSON+="{\"label\":\"$b daemon cpu per run\",\"ms\":$(awk -v t="${DT[$b]}" -v n="$SR" -v hz="$HZ" 'BEGIN { print t * 1000 / hz / n }')},"
done
echo "${JSON%,}],\"load\":\"$LOAD\"}" | jq . >"$RESULTS/startup.json"
echo "(JSON: bench/results/startup.json)"
