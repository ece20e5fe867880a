#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The feature probes against the kernel they run on (a tier of the kernel
# matrix, run as root in each guest; it runs on any machine): what `weir
# status --json` says of each feature must be what this kernel's version
# brings (docs/kernels.md), and BPF LSM must be on exactly when
# /sys/kernel/security/lsm names bpf. Debian's kernels have every option
# these need built in (CONFIG_BPF_LSM, CONFIG_CGROUP_BPF, ...); a kernel
# built without one fails here, and says which.
set -uo pipefail
LSM_FILE=/sys/kernel/security/lsm

cd "$(dirname "$0")/../.."
WEIR=${WEIR_BUILD:-build}/weir
pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }

[ "$(id -u)" = 0 ] || { echo "features: must run as root"; exit 1; }
json=$("$WEIR" status --json) || { echo "not ok - weir status --json failed"; echo "0 passed, 1 failed"; exit 1; }
k=$(jq -c .kernel <<<"$json")
echo "# $k"
IFS=.- read -r maj min _ <<<"$(uname -r)"
ver=$((maj * 1000 + min))

# expect NAME SINCE: on from Linux SINCE on, off before.
expect() {
	local name=$1 since=$2 want got
	want=false
	[ "$ver" -ge $((${since%%.*} * 1000 + ${since#*.})) ] && want=true
	got=$(jq -r ".$name" <<<"$k")
	if [ "$got" = "$want" ]; then
		ok "$name is $got on $(uname -r) (Linux $since+)"
	else
		bad "$name is $got on $(uname -r), Linux $since+ should make it $want"
	fi
}

[ "$(jq -r .bpf_probed <<<"$k")" = true ] && ok "the BPF probes ran" || bad "the BPF probes did not run as root"
[ "$(jq -r .release <<<"$k")" = "$(uname -r)" ] && ok "release is uname -r" || bad "release is not $(uname -r)"
expect ringbuf 5.8
expect cgroup_storage 4.19
expect sk_storage 5.2
expect recvmsg_hooks 5.2
expect getpeername_hooks 5.8
expect sock_release 5.9
expect bpf_loop 5.17
expect cgrp_storage 6.2
expect unix_hooks 6.7

if lsm=$(cat $LSM_FILE 2>/dev/null); then
	want=false
	case ",$lsm," in *,bpf,*) want=true ;; esac
	got=$(jq -r .bpf_lsm <<<"$k")
	[ "$got" = "$want" ] && ok "bpf_lsm is $got with LSMs '$lsm'" ||
		bad "bpf_lsm is $got with LSMs '$lsm' (want $want)"
	[ "$(jq -r .lsm <<<"$k")" = "$lsm" ] && ok "lsm is /sys/kernel/security/lsm" || bad "lsm differs"
	got=$(jq -r .landlock_abi <<<"$k")
	case ",$lsm," in
	*,landlock,*) [ "$got" -ge 1 ] && ok "landlock_abi is $got" || bad "landlock_abi is $got with LSMs '$lsm'" ;;
	*) [ "$got" = 0 ] && ok "landlock_abi is 0 without Landlock" || bad "landlock_abi is $got with LSMs '$lsm'" ;;
	esac
else
	# No securityfs here (this kind of machine): nothing says which LSMs run.
	[ "$(jq -r '.bpf_lsm, .lsm' <<<"$k" | tr '\n' ' ')" = "false null " ] &&
		ok "without $LSM_FILE: bpf_lsm off, lsm null" || bad "without the LSM list: $k"
fi
# weir run -v says the same, in two lines.
"$WEIR" run -v --allow 127.0.0.1 -- true 2>&1 | grep -E '^weir: kernel .*: (on|off):' >/tmp/weir-features.$$
[ "$(wc -l </tmp/weir-features.$$)" = 2 ] && ok "weir run -v lists what is on and off" ||
	bad "weir run -v: $(cat /tmp/weir-features.$$)"
rm -f /tmp/weir-features.$$
echo "$pass passed, $fail failed"
[ $fail = 0 ]
