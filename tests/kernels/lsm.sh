#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The lsm tier of the kernel matrix: run in a guest booted with
# lsm=...,bpf (the 6.12+lsm row), as root. The checks that need the BPF LSM
# (issue 14's sockets made outside the cgroup: tests/adversarial/outside.sh,
# and the scripts named in tests/kernels/lsm.list) skip on a kernel without
# it, which is right on a developer's machine and wrong here: this tier
# fails unless weir finds the BPF LSM on, and turns a script's "skipped"
# into a failure, so the row can never pass without having run them.
#
#   bash tests/kernels/lsm.sh          (in the guest; tiers.sh runs it)
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2
export WEIR_BUILD=${WEIR_BUILD:-$PWD/build}
WEIR=$WEIR_BUILD/weir
pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }

[ "$(id -u)" = 0 ] || { echo "lsm: must run as root"; exit 1; }
lsm=$(cat /sys/kernel/security/lsm 2>/dev/null)
got=$("$WEIR" status --json | jq -r .kernel.bpf_lsm)
if [ "$got" = true ]; then
	ok "weir finds the BPF LSM on $(uname -r) (LSMs: $lsm)"
else
	bad "weir finds no BPF LSM on $(uname -r) (bpf_lsm: $got, LSMs: '$lsm'): the row proves nothing"
	echo "$pass passed, $fail failed"
	exit 1
fi

scripts=(tests/adversarial/outside.sh)
while read -r line; do
	line=${line%%#*}
	line=${line//[[:space:]]/}
	[ -n "$line" ] && scripts+=("$line")
done <tests/kernels/lsm.list

for s in "${scripts[@]}"; do
	echo "== $s"
	if [ ! -f "$s" ]; then
		bad "$s: no such script (tests/kernels/lsm.list)"
		continue
	fi
	log=$(mktemp /tmp/weir-lsm.XXXXXX)
	bash "$s" >"$log" 2>&1
	rc=$?
	cat "$log"
	if [ $rc != 0 ]; then
		bad "$s: exit $rc"
	elif grep -qi 'skipped' "$log"; then
		bad "$s: skipped under lsm=...,bpf: $(grep -i -m1 skipped "$log")"
	elif ! grep -Eq '^[0-9]+ passed, 0 failed' "$log"; then
		bad "$s: no 'N passed, 0 failed' line"
	else
		ok "$s: $(grep -E '^[0-9]+ passed, 0 failed' "$log" | tail -n1)"
	fi
	rm -f "$log"
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
