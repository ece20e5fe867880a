#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Run one command as root under another kernel: Debian's kernel NAME booted
# under qemu (KVM where /dev/kvm is there, else TCG: see below), with this
# machine's root filesystem shared read-only (9p) under a tmpfs overlay, so
# the checkout, its build/ and every installed tool are there at the same
# paths, and nothing the guest writes reaches this machine. The guest has its
# own cgroup2 mount, bpffs, /tmp, /run and network namespaces.
#
#   bash tests/kernels/vm.sh [OPTIONS] -- CMD [ARG...]
#     --kernel NAME         6.1 or 6.12 (tests/kernels/fetch.sh; default 6.12)
#     --cmdline-extra ARGS  added to the kernel command line,
#                           e.g. 'lsm=lockdown,capability,landlock,yama,apparmor,bpf'
#     --timeout SECONDS     the whole boot, command included (default 900)
#     --mem MB              guest memory (default 2048)
#     --cpus N              guest CPUs (default 2)
#     --out DIR             keep the console log, output and exit status there
#                           (default: a temp dir, removed)
#     --quiet               do not stream the command's output
#
# CMD runs in the current directory (under / of this machine; the guest's
# /tmp is its own unless the checkout or that directory is in /tmp) with
# bash, as root, with
# WEIR_VM_KERNEL=NAME and WEIR_VM_OUT=/weirout (a directory shared with the
# host: --out) and, under TCG, WEIR_TEST_SLOW=8 (tests/common/slow.h). Its exit status is vm.sh's; 124
# when the boot ran out of time, 77 when the VM could not run at all here
# (no qemu, or no way to run it: the message says why).
#
# Without /dev/kvm (this kind of machine is itself a virtual machine and has
# none), qemu emulates the CPU (TCG): the same kernel and the same tests,
# several times slower. WEIR_VM_ACCEL=kvm|tcg forces one; =none (or
# WEIR_VM_TCG=0 with no /dev/kvm) makes vm.sh skip with exit 77.
set -uo pipefail

die() { echo "vm: $*" >&2; exit 2; }
skip() { echo "vm: skipped: $*" >&2; exit 77; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
kernel=6.12 extra= timeout=900 mem=2048 cpus=2 out= quiet=
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=${2:?}; shift 2 ;;
	--cmdline-extra) extra=${2?}; shift 2 ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--cpus) cpus=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	--quiet) quiet=1; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '3,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (try --help)" ;;
	esac
done
[ $# -gt 0 ] || die "no command (vm.sh [OPTIONS] -- CMD ...)"
[ "$(id -u)" = 0 ] || die "must run as root (qemu shares / with the guest's root)"

# shellcheck source=tests/kernels/accel.sh
. "$here/accel.sh"
accel=$(vm_accel)
case $accel in
kvm) [ -w /dev/kvm ] || skip "no /dev/kvm here (WEIR_VM_ACCEL=kvm)"
     qaccel=(-accel kvm -cpu host) ;;
tcg) qaccel=(-accel tcg,thread=multi,tb-size=512 -cpu "${WEIR_VM_CPU:-max}") ;;
none) skip "no /dev/kvm here, and emulation (TCG) is turned off" ;;
*) die "WEIR_VM_ACCEL=$accel: kvm, tcg or none" ;;
esac
qemu=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not found (make deps: qemu-system-x86)"
[ "$(uname -m)" = x86_64 ] || skip "the kernel matrix runs Debian's amd64 kernels on x86_64 only"

kdir=${WEIR_KERNELS:-$repo/build/kernels}/$kernel
if [ ! -f "$kdir/initramfs.cpio.gz" ]; then
	bash "$here/fetch.sh" "$(dirname "$kdir")" "$kernel" || die "cannot prepare kernel $kernel"
fi
rel=$(cat "$kdir/release")

cwd=$(pwd -P)
if [ -n "$out" ]; then
	mkdir -p "$out" && out=$(readlink -f "$out")
	rm -f "$out/rc" "$out/output" "$out/console" "$out/cmd" "$out/cwd"
else
	out=$(mktemp -d /tmp/weir-vm.XXXXXX)
	trap 'rm -rf "$out"' EXIT
fi
{
	printf 'cd %q || exit 125\n' "$cwd"
	printf 'export WEIR_VM_KERNEL=%q WEIR_VM_OUT=/weirout\n' "$kernel"
	# Emulation is slower: the tests' timeouts stretch (tests/common/slow.h).
	[ "$accel" = tcg ] && printf 'export WEIR_TEST_SLOW=%q\n' "${WEIR_TEST_SLOW:-8}"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$out/cmd"
echo "$kdir/lib/modules/$rel" >"$out/modules"
echo "$cwd" >"$out/cwd"
: >"$out/output"

if [ -z "$quiet" ]; then
	tail -n +1 -F "$out/output" 2>/dev/null &
	tailpid=$!
fi
# A boot that dies before the guest is up (a loaded host can make an
# emulated kernel think its timer is broken) is tried once more.
boot() {
	timeout -k 10 "$timeout" "$qemu" -nodefaults -no-user-config -no-reboot \
		-machine pc "${qaccel[@]}" -smp "$cpus" -m "$mem" \
		-display none -monitor none -serial "file:$out/console" \
		-kernel "$kdir/boot/vmlinuz-$rel" -initrd "$kdir/initramfs.cpio.gz" \
		-append "console=ttyS0 panic=-1 loglevel=4 no_timer_check weir.dir=$repo $extra" \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$out,mount_tag=weirout,security_model=none,multidevs=remap" \
		>"$out/qemu.log" 2>&1
}
start=$(date +%s)
boot
qst=$?
if [ ! -f "$out/rc" ] && [ $qst != 124 ] && [ $qst != 137 ] && ! grep -q '^weir-guest: .* up' "$out/console"; then
	echo "vm: $kernel: the guest died before it was up; booting it again" >&2
	tail -n 5 "$out/console" >&2
	mv "$out/console" "$out/console.1"
	boot
	qst=$?
fi
secs=$(($(date +%s) - start))
if [ -n "${tailpid:-}" ]; then
	sleep 0.3
	kill "$tailpid" 2>/dev/null
	wait "$tailpid" 2>/dev/null
fi
# The command's last line may lack its newline: ours start on a line.
[ -z "$quiet" ] && [ -s "$out/output" ] && [ -n "$(tail -c1 "$out/output")" ] && echo >&2
if [ -f "$out/rc" ]; then
	rc=$(cat "$out/rc")
	echo "vm: $kernel ($rel, $accel${extra:+, $extra}): exit $rc after ${secs}s" >&2
	exit "$rc"
fi
if [ $qst = 124 ] || [ $qst = 137 ]; then
	echo "vm: $kernel ($rel, $accel): no result after ${timeout}s: stopped" >&2
	rc=124
else
	echo "vm: $kernel ($rel, $accel): the guest stopped without a result (qemu exit $qst)" >&2
	rc=125
fi
echo "vm: last lines of the console:" >&2
tail -n 25 "$out/console" >&2
cat "$out/qemu.log" >&2
exit $rc
