#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# PID 1 of a kernel-matrix guest, after tests/kernels/init has put the
# host's root (read-only, under a tmpfs overlay) in place. Gives the guest
# what a booted machine has for the tests (cgroup2, bpffs, its own /tmp and
# /run, lo up, this kernel's modules for modprobe), runs /weirout/cmd (written
# by tests/kernels/vm.sh) with its output in /weirout/output and its exit
# status in /weirout/rc, then powers off. Not meant to be run by hand.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

off() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 10
}

say() { echo "weir-guest: $*" >/dev/console; }

mountpoint -q /dev/pts || { mkdir -p /dev/pts && mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts; }
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 shm /dev/shm
# What udev or systemd make on a booted machine: /dev/stdin is how
# `weir policy check /dev/stdin` reads a pipe.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
for n in 0:stdin 1:stdout 2:stderr; do
	[ -e "/dev/${n#*:}" ] || ln -s "/proc/self/fd/${n%%:*}" "/dev/${n#*:}"
done
# A /tmp of its own, unless the checkout or the command's directory is in
# the host's /tmp (a CI clone there): the overlay keeps the guest's writes
# to it in the guest anyway.
case " $(sed -n 's/.* weir\.dir=\([^ ]*\).*/\1/p' /proc/cmdline)/ $(cat /weirout/cwd 2>/dev/null)/" in
*" /tmp/"*) ;;
*) mount -t tmpfs -o mode=1777 tmp /tmp ;;
esac
mount -t tmpfs -o mode=755 run /run
# As on a booted machine (systemd-logind's /run/user: tests/e2e/env.sh
# mounts its own over it).
mkdir -p -m 755 /run/user /run/lock
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t bpf -o mode=700 bpf /sys/fs/bpf
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# The guest kernel's modules, from its package (tests/kernels/fetch.sh):
# loaded on demand (veth, nf_tables, ...) by the host's modprobe.
rel=$(uname -r)
if [ -f /weirout/modules ]; then
	mkdir -p "/lib/modules/$rel"
	mount --bind "$(cat /weirout/modules)" "/lib/modules/$rel"
fi
echo /sbin/modprobe >/proc/sys/kernel/modprobe 2>/dev/null
hostname weir-guest
ip link set lo up

say "$rel up ($(cat /proc/cmdline))"
[ -f /weirout/cmd ] || { say "no /weirout/cmd"; off; }
bash /weirout/cmd </dev/null >/weirout/output 2>&1
echo $? >/weirout/rc
say "done: exit $(cat /weirout/rc)"
off
