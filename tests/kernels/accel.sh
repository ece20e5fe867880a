# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
#
# How qemu runs a guest here, for tests/kernels/vm.sh and run.sh (sourced):
# kvm where /dev/kvm is usable, else emulation (tcg), or none when
# WEIR_VM_TCG=0 turns emulation off; WEIR_VM_ACCEL=kvm|tcg|none forces one.

# vm_accel: print kvm, tcg or none.
vm_accel() {
	if [ -n "${WEIR_VM_ACCEL:-}" ]; then
		echo "$WEIR_VM_ACCEL"
	elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		echo kvm
	elif [ "${WEIR_VM_TCG:-1}" = 0 ]; then
		echo none
	else
		echo tcg
	fi
}
