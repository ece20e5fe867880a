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
#
# A row is NAME[+lsm]:TIER,TIER... NAME is a kernel tests/kernels/fetch.sh
# knows; +lsm boots it with lsm=$LSM_BPF (BPF LSM named explicitly). Logs:
# build/kernels/results/ROW/ (console, tier-TIER.log). Exits 1 if a tier
# failed or a boot gave no result; 77 (after saying why) if no row could
# boot here at all.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 2
LSM_BPF=lockdown,capability,landlock,yama,apparmor,bpf
MATRIX=${WEIR_KERNEL_MATRIX:-"6.1:unit,bpf,e2e,features 6.12:unit,bpf,e2e,features 6.12+lsm:features,adversarial"}
BOOT_TIMEOUT=${WEIR_KERNEL_BOOT_TIMEOUT:-2700}
TIER_TIMEOUT=${WEIR_KERNEL_TIER_TIMEOUT:-1500}
# The whole matrix, when it must fit a budget (CI): a row starts only with
# its boot bounded by what is left, and a row there is no time for fails.
DEADLINE=${WEIR_KERNEL_DEADLINE:-0}
res=$repo/build/kernels/results

for b in build/weir build/tests/unit-tests build/tests/bpf-tests; do
	[ -x "$b" ] || { echo "kernels: $b missing: make tests-build first" >&2; exit 2; }
done

# Probe once whether a VM can run at all; vm.sh says why not (exit 77).
bash "$here/vm.sh" --kernel "${MATRIX%%[:+]*}" --timeout 300 --quiet -- true
st=$?
[ $st = 77 ] && { echo "kernels: skipped (the reason is above)"; exit 77; }
[ $st = 0 ] || { echo "kernels: a first boot failed (exit $st)" >&2; exit 1; }

rows=() all_tiers=()
for row in $MATRIX; do
	rows+=("$row")
	IFS=, read -r -a ts <<<"${row#*:}"
	for t in "${ts[@]}"; do
		[[ " ${all_tiers[*]} " == *" $t "* ]] || all_tiers+=("$t")
	done
done

failed=0
declare -A cell=() took=() rel=()
total_start=$(date +%s)
for row in "${rows[@]}"; do
	kname=${row%%:*}
	kernel=${kname%+lsm}
	extra=
	[ "$kname" != "$kernel" ] && extra="lsm=$LSM_BPF"
	IFS=, read -r -a ts <<<"${row#*:}"
	out=$res/$kname
	rm -rf "$out"
	mkdir -p "$out"
	echo "== kernel $kname${extra:+ ($extra)}: ${ts[*]}"
	start=$(date +%s)
	bt=$BOOT_TIMEOUT
	if [ "$DEADLINE" -gt 0 ]; then
		left=$((DEADLINE - (start - total_start)))
		[ $left -lt $bt ] && bt=$left
		if [ $bt -lt 60 ]; then
			echo "kernels: $kname: no time left in WEIR_KERNEL_DEADLINE=${DEADLINE}s"
			took[$kname]=0
			rel[$kname]=$(cat "build/kernels/$kernel/release" 2>/dev/null)
			failed=1
			continue
		fi
	fi
	bash "$here/vm.sh" --kernel "$kernel" ${extra:+--cmdline-extra "$extra"} \
		--timeout "$bt" --out "$out" -- \
		bash tests/kernels/tiers.sh --tier-timeout "$TIER_TIMEOUT" "${ts[@]}"
	took[$kname]=$(($(date +%s) - start))
	rel[$kname]=$(cat "build/kernels/$kernel/release" 2>/dev/null)
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
accel=KVM
[ -w /dev/kvm ] || accel="TCG, emulated: no /dev/kvm here"
[ -n "${WEIR_VM_ACCEL:-}" ] && accel=$WEIR_VM_ACCEL
echo "== kernel matrix ($accel; $(($(date +%s) - total_start))s in all)"
printf '%-40s' "kernel"
for t in "${all_tiers[@]}"; do printf ' %-13s' "$t"; done
printf ' %s\n' "boot"
for row in "${rows[@]}"; do
	kname=${row%%:*}
	label="$kname (${rel[$kname]})"
	printf '%-40s' "$label"
	for t in "${all_tiers[@]}"; do printf ' %-13s' "${cell[$kname/$t]:--}"; done
	printf ' %s\n' "${took[$kname]}s"
done
[ "$MATRIX" = "${MATRIX/+lsm/}" ] || echo "(+lsm: booted with lsm=$LSM_BPF)"
for row in "${rows[@]}"; do
	kname=${row%%:*}
	IFS=, read -r -a ts <<<"${row#*:}"
	for t in "${ts[@]}"; do
		case ${cell[$kname/$t]} in
		pass*) ;;
		*) echo "-- $kname $t: last lines of $res/$kname/tier-$t.log"
		   tail -n 30 "$res/$kname/tier-$t.log" 2>/dev/null ;;
		esac
	done
done
exit $failed
