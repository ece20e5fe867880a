#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Inside a kernel-matrix guest (tests/kernels/vm.sh): run the named tiers of
# the checkout one after the other, each bounded in time, and leave each
# one's exit status and log in $WEIR_VM_OUT/tier-NAME.{rc,log} for
# tests/kernels/run.sh to read. The build/ is the host's (make tests-build
# ran there): nothing is built here.
#
#   bash tests/kernels/tiers.sh [--tier-timeout S] TIER[=SECONDS]...
#   TIER: unit bpf e2e adversarial daemon (the make test-* targets), features
#   (tests/kernels/features.sh: what weir probes against what this kernel is),
#   lsm (tests/kernels/lsm.sh: the checks that need the BPF LSM, which must be on)
#
# The tiers made of scripts (e2e, adversarial, daemon) run script by script,
# as make test-TIER lists them, each to its end even when one before it
# failed, with a line for each in the tier's log: "tiers: SCRIPT: exit RC
# after Ns (N passed, M failed)" (bash tests/kernels/tiers.sh --scripts TIER).
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2

# scripts_of TIER: the commands make test-TIER runs a script with, one a line
scripts_of() {
	make -n --no-print-directory "test-$1" 2>/dev/null |
		grep -E '^([A-Za-z_0-9]+=[^ ]+ )*bash tests/[^ ]+\.sh$'
}

# --scripts TIER: run them, each timed; exit 1 if one failed.
if [ "${1:-}" = --scripts ]; then
	mapfile -t lines < <(scripts_of "$2")
	[ ${#lines[@]} -gt 0 ] || { echo "tiers: make test-$2 lists no scripts"; exit 2; }
	st=0
	for line in "${lines[@]}"; do
		start=$(date +%s)
		log=$(mktemp /tmp/weir-tier.XXXXXX)
		bash -c "$line" </dev/null 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
		echo "tiers: ${line##* bash }: exit $rc after $(($(date +%s) - start))s ($(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1))"
		rm -f "$log"
		[ "$rc" = 0 ] || st=1
	done
	exit $st
fi

out=${WEIR_VM_OUT:?not in a kernel-matrix guest}
tmo=1200
if [ "${1:-}" = --tier-timeout ]; then
	tmo=$2
	shift 2
fi
# stale_objects TIER: what make test-TIER would compile here, but for
# version.o (its header is remade on every make, and a compile of it is a
# second's work).
stale_objects() {
	make -n --no-print-directory "test-$1" 2>/dev/null |
		sed -n 's/.* -c .* -o \([^ ]*\.o\)$/\1/p' | grep -v '/version\.o$' | head -n 3 | paste -sd' '
}

st=0
for arg in "$@"; do
	t=${arg%%=*} tt=$tmo
	[ "$t" != "$arg" ] && tt=${arg#*=}
	case $t in
	unit|bpf) cmd=(make --no-print-directory "test-$t") ;;
	e2e|adversarial|daemon) cmd=(bash tests/kernels/tiers.sh --scripts "$t") ;;
	features) cmd=(bash tests/kernels/features.sh) ;;
	lsm) cmd=(bash tests/kernels/lsm.sh) ;;
	*) echo "tiers: unknown tier $t" >&2; echo 2 >"$out/tier-$t.rc"; st=1; continue ;;
	esac
	echo "== $(uname -r): $t (at most ${tt}s)"
	if stale=$(stale_objects "$t") && [ -n "$stale" ]; then
		echo "tiers: build/ is older than the sources ($stale): make tests-build on the host first; not compiling under emulation" |
			tee "$out/tier-$t.log"
		echo "2 0" >"$out/tier-$t.rc"
		st=1
		continue
	fi
	start=$(date +%s)
	timeout -k 10 "$tt" "${cmd[@]}" </dev/null >"$out/tier-$t.log" 2>&1
	rc=$?
	echo "$rc $(($(date +%s) - start))" >"$out/tier-$t.rc"
	grep '^tiers: ' "$out/tier-$t.log"
	tail -n 3 "$out/tier-$t.log"
	echo "== $(uname -r): $t: exit $rc after $(($(date +%s) - start))s"
	[ $rc = 0 ] || st=1
done
exit $st
