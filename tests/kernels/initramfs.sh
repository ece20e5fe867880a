#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The initramfs for one kernel of the matrix: busybox (static, Debian's
# busybox-static), tests/kernels/init, and the modules it loads before the
# root is there (9p over virtio, overlay, virtio_pci where it is a module),
# taken from that kernel's own package, uncompressed (busybox insmod).
#
#   bash tests/kernels/initramfs.sh build/kernels/6.12
# writes build/kernels/6.12/initramfs.cpio.gz
set -euo pipefail

die() { echo "kernels: $*" >&2; exit 1; }

[ $# = 1 ] || die "usage: initramfs.sh KERNEL_DIR"
kdir=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
rel=$(cat "$kdir/release")
mods=$kdir/lib/modules/$rel
busybox=$(command -v busybox) || die "busybox not found (make deps: busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static (package busybox-static)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/modules" "$tmp/proc" "$tmp/sys" "$tmp/dev"
cp "$busybox" "$tmp/bin/busybox"
cp "$here/init" "$tmp/init"
chmod 755 "$tmp/init"

# The modules and what they need, dependencies first (modules.dep lists a
# module's dependencies; loading them in reverse order of discovery, each
# once, puts every one after what it needs).
declare -A seen=()
order=()
add() {
	local m=$1 path deps d
	path=$(grep -m1 -E "(^|/)$m\.ko(\.xz|\.zst|\.gz)?:" "$mods/modules.dep" | cut -d: -f1) || true
	if [ -z "$path" ]; then
		grep -qE "(^|/)$m\.ko$" "$mods/modules.builtin" && return 0
		die "$rel: no module $m"
	fi
	[ -n "${seen[$path]:-}" ] && return 0
	seen[$path]=1
	deps=$(grep -m1 "^$path:" "$mods/modules.dep" | cut -d: -f2)
	for d in $deps; do
		d=$(basename "$d")
		add "${d%%.ko*}"
	done
	order+=("$path")
}
for m in virtio_pci 9pnet_virtio 9p overlay; do
	add "$m"
done
: >"$tmp/modules.list"
for p in "${order[@]}"; do
	b=$(basename "$p")
	case $b in
	*.xz) xz -dc "$mods/$p" >"$tmp/modules/${b%.xz}" ;;
	*.zst) zstd -qdc "$mods/$p" >"$tmp/modules/${b%.zst}" ;;
	*.gz) gzip -dc "$mods/$p" >"$tmp/modules/${b%.gz}" ;;
	*) cp "$mods/$p" "$tmp/modules/$b" ;;
	esac
	echo "${b%.ko*}.ko" >>"$tmp/modules.list"
done
(cd "$tmp" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$kdir/initramfs.cpio.gz.tmp"
mv "$kdir/initramfs.cpio.gz.tmp" "$kdir/initramfs.cpio.gz"
