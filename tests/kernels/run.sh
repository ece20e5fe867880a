#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The kernel matrix (make test-kernels): boot each of Debian's kernels
# under qemu (tests/kernels/vm.sh), run the test tiers inside, print a table
# kernel x tier. One boot per row; the tiers run one after the other in it,
# each bounded (tests/kernels/tiers.sh), the boot too.
#
#   sudo make test-kernels                (after make tests-build)
#   WEIR_KERNEL_MATRIX='6.1:unit,bpf 6.12:e2e' sudo make test-kernels
#   WEIR_KERNEL_BUDGET=1320 sudo make test-kernels     (what CI runs)
#
# A row is NAME[+lsm]:TIER,TIER... NAME is a kernel tests/kernels/fetch.sh
# knows; +lsm boots it with lsm=$LSM_BPF (BPF LSM named explicitly). Logs:
# build/kernels/results/ROW/ (console, tier-TIER.log).
#
# With WEIR_KERNEL_BUDGET=SECONDS the whole matrix must fit in that time.
# Under emulation (TCG: no /dev/kvm) the cells whose time, as measured in
# tests/kernels/times, does not fit what is left are skipped before any
# boot, in the order of the matrix, each said with its reason; with KVM
# every cell runs. A cell that was to run and did not finish (out of its
# time, or of the budget) fails; a skipped one is never counted a pass.
#
# Exits 1 if a cell failed or a boot gave no result; 77 (after saying why)
# if no row could boot here at all; else 0.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 2
LSM_BPF=lockdown,capability,landlock,yama,apparmor,bpf
MATRIX=${WEIR_KERNEL_MATRIX:-"6.12+lsm:features,lsm,adversarial 6.1:features,unit,bpf,e2e,adversarial 6.12:features,unit,bpf,e2e"}
BOOT_TIMEOUT=${WEIR_KERNEL_BOOT_TIMEOUT:-7200}
TIER_TIMEOUT=${WEIR_KERNEL_TIER_TIMEOUT:-3600}
# WEIR_KERNEL_DEADLINE: the budget's older name.
BUDGET=${WEIR_KERNEL_BUDGET:-${WEIR_KERNEL_DEADLINE:-0}}
TIMES=$here/times
res=$repo/build/kernels/results

for b in build/weir build/tests/unit-tests build/tests/bpf-tests; do
	[ -x "$b" ] || { echo "kernels: $b missing: make tests-build first" >&2; exit 2; }
done

# As vm.sh chooses: KVM where /dev/kvm is usable, else emulation.
# shellcheck source=tests/kernels/accel.sh
. "$here/accel.sh"
accel=$(vm_accel)
export WEIR_VM_ACCEL=$accel

# est ROW TIER: seconds that cell takes (tests/kernels/times: the row's
# line, else its kernel's, else the tier's "*" line; 600 if none).
# boot: what a boot itself takes.
col=3
[ "$accel" = kvm ] && col=4
est() {
	[ -r "$TIMES" ] || { echo 600; return; }
	awk -v r="$1" -v k="${1%+lsm}" -v t="$2" -v c=$col '
		/^#/ || NF < 4 { next }
		$1 == r && $2 == t { row = $c } $1 == k && $2 == t { ker = $c }
		$1 == "*" && $2 == t { any = $c }
		END { print row != "" ? row : ker != "" ? ker : any != "" ? any : 600 }' "$TIMES"
}

# Tier timeout: three times the estimate and 5 minutes more, at most
# WEIR_KERNEL_TIER_TIMEOUT: a loaded machine may take longer, a hung
# test must not take the whole budget.
tier_tmo() {
	local t=$(($(est "$1" "$2") * 3 + 300))
	[ $t -gt "$TIER_TIMEOUT" ] && t=$TIER_TIMEOUT
	echo "$t"
}

rows=() all_tiers=()
declare -A cell=() took=() rel=() plan=() skip=() why=()
planned=0
for row in $MATRIX; do
	rows+=("$row")
	kname=${row%%:*}
	IFS=, read -r -a ts <<<"${row#*:}"
	first=1
	for t in "${ts[@]}"; do
		[[ " ${all_tiers[*]} " == *" $t "* ]] || all_tiers+=("$t")
		e=$(est "$kname" "$t")
		[ $first = 1 ] && e=$((e + $(est "$kname" boot)))
		if [ "$BUDGET" -gt 0 ] && [ "$accel" = tcg ] && [ $((planned + e)) -gt "$BUDGET" ]; then
			cell[$kname/$t]=skipped
			why[$kname/$t]="about ${e}s under emulation (TCG, tests/kernels/times), $((BUDGET - planned))s of WEIR_KERNEL_BUDGET=${BUDGET}s left"
			skip[$kname]+=" $t"
			continue
		fi
		plan[$kname]+=" $t"
		planned=$((planned + e))
		first=0
	done
done
if [ "$BUDGET" -gt 0 ] || [ "${WEIR_KERNEL_PLAN:-}" = 1 ]; then
	echo "kernels: $accel; budget ${BUDGET}s; planned about ${planned}s:"
	[ "$BUDGET" -gt 0 ] && [ "$planned" -gt "$BUDGET" ] &&
		echo "kernels: warning: that is more than the budget: the last cells may get no time"
	for row in "${rows[@]}"; do
		kname=${row%%:*}
		echo "  $kname:${plan[$kname]:- nothing}${skip[$kname]:+ (skipped, no time under TCG:${skip[$kname]})}"
	done
fi

# WEIR_KERNEL_PLAN=1: say what would run, boot nothing.
[ "${WEIR_KERNEL_PLAN:-}" = 1 ] && exit 0

failed=0 booted=0 novm=
total_start=$(date +%s)
for row in "${rows[@]}"; do
	kname=${row%%:*}
	kernel=${kname%+lsm}
	extra=
	[ "$kname" != "$kernel" ] && extra="lsm=$LSM_BPF"
	read -r -a ts <<<"${plan[$kname]:-}"
	rel[$kname]=$(cat "${WEIR_KERNELS:-$repo/build/kernels}/$kernel/release" 2>/dev/null)
	took[$kname]=0
	[ ${#ts[@]} -gt 0 ] || continue
	out=$res/$kname
	rm -rf "$out"
	mkdir -p "$out"
	if [ -n "$novm" ]; then
		for t in "${ts[@]}"; do cell[$kname/$t]=skipped why[$kname/$t]=$novm; done
		continue
	fi
	# The boot: its tiers' timeouts and two boots more, within what is
	# left of the budget.
	args=() bt=$((2 * $(est "$kname" boot)))
	for t in "${ts[@]}"; do
		tt=$(tier_tmo "$kname" "$t")
		args+=("$t=$tt")
		bt=$((bt + tt))
	done
	[ $bt -gt "$BOOT_TIMEOUT" ] && bt=$BOOT_TIMEOUT
	start=$(date +%s)
	if [ "$BUDGET" -gt 0 ]; then
		left=$((BUDGET - (start - total_start)))
		[ "$left" -lt "$bt" ] && bt=$left
		if [ "$bt" -lt 60 ]; then
			echo "kernels: $kname: no time left in WEIR_KERNEL_BUDGET=${BUDGET}s"
			for t in "${ts[@]}"; do cell[$kname/$t]="NO TIME"; done
			failed=1
			continue
		fi
	fi
	echo "== kernel $kname${extra:+ ($extra)}: ${ts[*]} (at most ${bt}s)"
	bash "$here/vm.sh" --kernel "$kernel" ${extra:+--cmdline-extra "$extra"} \
		--timeout "$bt" --out "$out" -- \
		bash tests/kernels/tiers.sh --tier-timeout "$TIER_TIMEOUT" "${args[@]}"
	st=$?
	took[$kname]=$(($(date +%s) - start))
	rel[$kname]=$(cat "${WEIR_KERNELS:-$repo/build/kernels}/$kernel/release" 2>/dev/null)
	if [ $st = 77 ]; then
		novm="no VM possible here (vm.sh said why above)"
		for t in "${ts[@]}"; do cell[$kname/$t]=skipped why[$kname/$t]=$novm; done
		continue
	fi
	booted=1
	for t in "${ts[@]}"; do
		if [ -f "$out/tier-$t.rc" ]; then
			read -r rc secs <"$out/tier-$t.rc"
			if [ "$rc" = 0 ]; then
				cell[$kname/$t]="pass ${secs}s"
			elif [ "$rc" = 124 ]; then
				cell[$kname/$t]="TIMEOUT"
				failed=1
			else
				cell[$kname/$t]="FAIL"
				failed=1
			fi
		else
			cell[$kname/$t]="no result"
			failed=1
		fi
	done
done

echo
case $accel in
kvm) what=KVM ;;
tcg) what="TCG, emulated: no /dev/kvm here" ;;
*) what=$accel ;;
esac
b=
[ "$BUDGET" -gt 0 ] && b=", budget ${BUDGET}s"
echo "== kernel matrix ($what; $(($(date +%s) - total_start))s in all$b)"
printf '%-40s' "kernel"
for t in "${all_tiers[@]}"; do printf ' %-13s' "$t"; done
printf ' %s\n' "boot"
for row in "${rows[@]}"; do
	kname=${row%%:*}
	printf '%-40s' "$kname (${rel[$kname]:-?})"
	for t in "${all_tiers[@]}"; do printf ' %-13s' "${cell[$kname/$t]:--}"; done
	printf ' %s\n' "${took[$kname]}s"
done
[ "$MATRIX" = "${MATRIX/+lsm/}" ] || echo "(+lsm: booted with lsm=$LSM_BPF)"
npass=0 nfail=0 nskip=0
for row in "${rows[@]}"; do
	kname=${row%%:*}
	IFS=, read -r -a ts <<<"${row#*:}"
	for t in "${ts[@]}"; do
		case ${cell[$kname/$t]:-} in
		pass*) npass=$((npass + 1)) ;;
		skipped)
			nskip=$((nskip + 1))
			echo "-- $kname $t: SKIPPED, not run: ${why[$kname/$t]}" ;;
		*)
			nfail=$((nfail + 1))
			echo "-- $kname $t: ${cell[$kname/$t]:-no result}: last lines of $res/$kname/tier-$t.log"
			tail -n 30 "$res/$kname/tier-$t.log" 2>/dev/null ;;
		esac
	done
done
echo "kernels: $npass passed, $nfail failed, $nskip skipped"
if [ $booted = 0 ] && [ -n "$novm" ]; then
	echo "kernels: skipped (the reason is above)"
	exit 77
fi
exit $failed
