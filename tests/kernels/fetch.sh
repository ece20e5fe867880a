#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Bring Debian's kernels for the kernel matrix into build/kernels/, from
# Debian's own apt (the sources this machine already has: Debian 12's
# bookworm and bookworm-security carry both 6.1 and 6.12, no backports
# needed), without installing them: `apt-get download` the linux-image
# package a Debian metapackage points at, then `dpkg-deb -x` it. Nothing
# goes to /boot and no initramfs or bootloader hook runs on this machine.
#
#   bash tests/kernels/fetch.sh OUT [NAME[=METAPACKAGE]...]
#   e.g. fetch.sh build/kernels            (every kernel of KERNELS below)
#        fetch.sh build/kernels 6.1
#
# Each NAME becomes OUT/NAME/ with boot/vmlinuz-*, lib/modules/RELEASE/
# (depmod run on it, so the guest's modprobe finds its modules), a file
# `release` (uname -r of the kernel), `package` (the .deb it came from) and
# initramfs.cpio.gz (tests/kernels/initramfs.sh). A NAME whose package is
# already there is left alone (its initramfs remade if its sources changed).
KERNELS="6.1=linux-image-amd64 6.12=linux-image-6.12-amd64"

set -euo pipefail

die() { echo "kernels: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: fetch.sh OUT [NAME[=METAPACKAGE]...]"
out=$1
shift
[ $# -gt 0 ] || set -- $KERNELS
here=$(cd "$(dirname "$0")" && pwd)
for t in apt-cache apt-get dpkg-deb depmod; do
	command -v "$t" >/dev/null || die "$t not found (make deps)"
done
mkdir -p "$out/debs"
out=$(readlink -f "$out")

# The linux-image-RELEASE package a metapackage depends on (its candidate).
image_of() {
	apt-cache depends "$1" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}

for spec in "$@"; do
	name=${spec%%=*}
	meta=${spec#*=}
	if [ "$meta" = "$spec" ]; then
		meta=
		for k in $KERNELS; do
			[ "${k%%=*}" = "$name" ] && meta=${k#*=}
		done
		[ -n "$meta" ] || die "$name: not a kernel of the matrix ($KERNELS)"
	fi
	pkg=$(image_of "$meta")
	if [ -z "$pkg" ]; then
		# An old apt list, or none yet (a fresh machine): read it once.
		apt-get update -qq >/dev/null 2>&1 || true
		pkg=$(image_of "$meta")
	fi
	[ -n "$pkg" ] || die "$name: Debian's apt has no $meta here (apt-get update?)"
	dir=$out/$name
	if [ -f "$dir/package" ] && [ "$(cat "$dir/package")" = "$pkg" ]; then
		init=$dir/initramfs.cpio.gz
		if [ ! -f "$init" ] || [ "$here/init" -nt "$init" ] || [ "$here/initramfs.sh" -nt "$init" ]; then
			bash "$here/initramfs.sh" "$dir"
		fi
		continue
	fi
	echo "kernels: $name: $pkg (from $meta, Debian's apt)"
	rm -rf "$dir" "$out/debs/$pkg"
	mkdir -p "$out/debs/$pkg"
	# apt's sandbox user must be able to write where it downloads.
	chmod 777 "$out/debs/$pkg" 2>/dev/null || true
	(cd "$out/debs/$pkg" && apt-get download -q "$pkg" >/dev/null) ||
		die "$name: apt-get download $pkg failed"
	mkdir -p "$dir.tmp"
	dpkg-deb -x "$out/debs/$pkg"/*.deb "$dir.tmp"
	rel=$(basename "$(ls -d "$dir.tmp"/lib/modules/*/)")
	[ -f "$dir.tmp/boot/vmlinuz-$rel" ] || die "$name: no boot/vmlinuz-$rel in $pkg"
	depmod -b "$dir.tmp" "$rel"
	echo "$rel" >"$dir.tmp/release"
	echo "$pkg" >"$dir.tmp/package"
	rm -rf "$out/debs/$pkg"
	bash "$here/initramfs.sh" "$dir.tmp"
	mv "$dir.tmp" "$dir"
done
