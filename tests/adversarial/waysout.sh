#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Adversarial tier, the ways out of issue 14 (docs/threat-model.md): a
# socket inherited from whoever ran weir, root inside leaving its cgroup.
# Each tries from inside weir run and checks that nothing arrived at a
# listener on the denied address. Private network and mount namespaces;
# root. With WEIR_E2E_DAEMON=1 every run goes through a daemon of its own.
#
#   WEIR_BUILD=/abs/build bash tests/adversarial/waysout.sh

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=waysout
# shellcheck source=tests/adversarial/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
adv_on_cleanup() { wo_cg_cleanup; }

setup() {
	adv_setup
	PROBE=$(adv_copy "$NETPROBE")
}

# --- 1. inherited sockets ------------------------------------------------------

# A TCP and a connected UDP socket to the denied address, made by the shell
# that runs weir, open as fds 5 and 6 (not close-on-exec): the command writes
# a token into each.
test_inherited() {
	exec 5<>"/dev/tcp/$DENIED/$PORT" 6<>"/dev/udp/$DENIED/$PORT" ||
		e2e_die "cannot open the test's own sockets to $DENIED:$PORT"
	run_weir -q -u nobody -p "$POL" -- sh -c \
		'echo esc-inherit-tcp >&5; echo "tcp=$?"; echo esc-inherit-udp >&6; echo "udp=$?"'
	# The sink logs a connection's first line: ours, once it is closed, if
	# the command's never came; a datagram of ours after the command's.
	echo esc-outside-tcp >&5
	echo esc-outside-udp >&6
	exec 5>&- 6>&-
	t_begin "inherited fd 5 (TCP to $DENIED) and fd 6 (UDP): closed for the command, nothing arrived"
	x_rc 0
	x_out "tcp=2
udp=2"
	x_arrived "$LOG" " esc-(inherit|outside)-tcp\$"
	x_arrived "$LOG" " esc-outside-udp\$"
	x_not_arrived "$LOG" " esc-inherit-(tcp|udp)\$"
	t_end

	# --pass-fd passes exactly what it names, and says so of a socket.
	exec 5<>"/dev/tcp/$ALLOWED/$PORT" 7>"$T/passed" || e2e_die "fd 5 or 7"
	run_weir -q -u nobody -p "$POL" --pass-fd 7 --pass-fd 5 -- sh -c \
		'echo esc-passed >&7; ls /proc/self/fd | tr "\n" " "'
	exec 5>&- 7>&-
	t_begin "--pass-fd 7 --pass-fd 5: both passed, 5 named a hole on stderr"
	x_rc 0
	x_file_has "$T/passed" '^esc-passed$'
	x_err_has "--pass-fd 5 is a TCP socket connected to $ALLOWED:$PORT: what sh sends through it is not checked"
	grep -qE '^0 1 2 3 5 7 $' "$OUT" || t_why "descriptors inside: $(cat "$OUT")"
	t_end

	t_begin "--pass-fd of a closed descriptor, of 2, of the event stream: refused (125)"
	run_weir -q -u nobody -p "$POL" --pass-fd 9 -- true
	x_rc 125
	x_err_has "--pass-fd 9: not an open descriptor"
	run_weir -q -u nobody -p "$POL" --pass-fd 2 -- true
	x_rc 125
	run_weir -q -u nobody -p "$POL" -e /dev/fd/8 --pass-fd 8 -- true 8>"$T/ev8"
	x_rc 125
	x_err_has "--pass-fd 8: that is the event stream"
	t_end
}

# stdin or stdout an inet socket: weir refuses to start the command, unless
# --allow-socket-stdio.
test_socket_stdio() {
	run_cmd bash -c 'exec "$@" >"/dev/tcp/'"$DENIED/$PORT"'"' bash \
		"$WEIR" run -q -u nobody -p "$POL" -- sh -c 'echo esc-stdout-sock'
	WEIR_RUNS=$((WEIR_RUNS + 1))
	t_begin "stdout a TCP socket to $DENIED: refused (125), said why, nothing arrived"
	x_rc 125
	x_err_has "sh's stdout \(fd 1\) is a TCP socket connected to $DENIED:$PORT: weir cannot check"
	x_err_has "--allow-socket-stdio"
	x_not_arrived "$LOG" " esc-stdout-sock\$"
	t_end

	run_cmd bash -c 'exec "$@" <>"/dev/udp/'"$DENIED/$PORT"'"' bash \
		"$WEIR" run -q -u nobody -p "$POL" -- sh -c 'echo esc-stdin-sock >&0'
	WEIR_RUNS=$((WEIR_RUNS + 1))
	t_begin "stdin a UDP socket to $DENIED: refused (125), nothing arrived"
	x_rc 125
	x_err_has "sh's stdin \(fd 0\) is a UDP socket connected to $DENIED:$PORT"
	x_not_arrived "$LOG" " esc-stdin-sock\$"
	t_end

	run_cmd bash -c 'exec "$@" >"/dev/tcp/'"$ALLOWED/$PORT"'"' bash \
		"$WEIR" run -q -u nobody -p "$POL" --allow-socket-stdio -- sh -c 'echo esc-stdout-allowed'
	WEIR_RUNS=$((WEIR_RUNS + 1))
	t_begin "--allow-socket-stdio: runs, with a warning (the user's choice)"
	x_rc 0
	x_err_has "sh's stdout \(fd 1\) is a TCP socket connected to $ALLOWED:$PORT: what sh sends through it is not checked"
	x_arrived "$LOG" " esc-stdout-allowed\$"
	t_end
}

# --- 4. root inside leaving its cgroup ----------------------------------------

# As root inside (no --user): write its pid to the machine's root cgroup
# through the cgroup2 mount weir's caller sees, through a fresh cgroup2
# mount, and after joining pid 1's cgroup namespace; after each, a connect
# to the denied address from a new process.
test_root_cgroup() {
	local script
	script='
		probe() { "$N" tcp "$D" "$P" "$1"; }
		echo "self: $(grep "^0::" /proc/self/cgroup)"
		for m in "$@"; do
			(echo $$ >"$m/cgroup.procs") 2>/dev/null
			probe esc-cg-mount
		done
		mkdir -p "$W/cgmnt" && mount -t cgroup2 none "$W/cgmnt" 2>/dev/null &&
			{ (echo $$ >"$W/cgmnt/cgroup.procs") 2>/dev/null; umount "$W/cgmnt"; }
		probe esc-cg-fresh
		nsenter --cgroup=/proc/1/ns/cgroup -- sh -c \
			"echo \$\$ >\"$1/cgroup.procs\"; exec \"$N\" tcp $D $P esc-cg-setns" 2>/dev/null
		echo "after: $(grep "^0::" /proc/self/cgroup)"'
	# Every cgroup2 mount of this namespace (/sys/fs/cgroup, or
	# /sys/fs/cgroup/unified on a hybrid host, and the test's own).
	mapfile -t mounts < <(awk '$9 == "cgroup2" { print $5 }' /proc/self/mountinfo)
	run_weir -q -u root -p "$POL" -- env N="$PROBE" D="$DENIED" P="$PORT" W="$T" \
		sh -c "$script" sh "${mounts[@]}"
	t_begin "root inside: /proc/self/cgroup is 0::/ (a cgroup namespace rooted at its cgroup)"
	x_file_has "$OUT" '^self: 0::/$'
	x_file_has "$OUT" '^after: 0::/$'
	t_end
	t_begin "root inside, after writing its pid to ${mounts[*]}/cgroup.procs, a fresh cgroup2 mount's, and through pid 1's cgroup namespace: still denied, nothing arrived"
	# nsenter itself may be refused (Landlock, seccomp): no line of its own
	[ "$(grep -c '^EPERM$' "$OUT")" -ge $((${#mounts[@]} + 1)) ] ||
		t_why "want EPERM after each attempt: $(t_tail "$OUT" 9)"
	grep -q '^ok' "$OUT" && t_why "a connect went through: $(t_tail "$OUT" 9)"
	x_not_arrived "$LOG" " esc-cg-(mount|fresh|setns)\$"
	t_end
}

# Root inside, started from a working directory inside the cgroup2 mount:
# the directory outlives weir's remount (it holds the old mount) and
# ../cgroup.procs would be the machine's. weir refuses to start (125).
test_root_cgroup_cwd() {
	local m
	m=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	cd "$m" || e2e_die "cd $m"
	run_weir -q -u root -p "$POL" -- sh -c \
		'echo $$ >cgroup.procs; "$0" tcp '"$DENIED $PORT"' esc-cg-cwd' "$PROBE"
	cd "$T" || e2e_die "cd $T"
	t_begin "root inside, started with its working directory in $m: refused (125), said why, nothing arrived"
	x_rc 125
	x_err_has 'working directory is inside a cgroup2'
	x_not_arrived "$LOG" " esc-cg-cwd\$"
	t_end
}

# Root inside; after it started, a cgroup2 file system is mounted outside
# on a shared mount (as a chroot tool's rbind of /sys would): it must not
# appear in the command's mount namespace, where writing its cgroup.procs
# would move the command out. Read-only here (what is checked is that it
# does not show), so that nothing can remove a cgroup through it.
test_root_cgroup_late_mount() {
	local mounter
	mkdir -p "$T/late/cg" && mount --bind "$T/late" "$T/late" &&
		mount --make-shared "$T/late" || e2e_die "a shared mount for the late-mount test"
	(
		for ((i = 0; i < 100 * ${WEIR_TEST_SLOW:-1}; i++)); do
			[ -e "$T/late-started" ] && break
			sleep 0.05
		done
		mount -t cgroup2 -o ro none "$T/late/cg" && touch "$T/late-go"
	) &
	mounter=$!
	run_weir -q -u root -p "$POL" -- env N="$PROBE" D="$DENIED" P="$PORT" T="$T" sh -c '
		touch "$T/late-started"
		i=0
		while [ ! -e "$T/late-go" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
		[ -e "$T/late/cg/cgroup.controllers" ] && echo "late mount seen"
		(echo $$ >"$T/late/cg/cgroup.procs") 2>/dev/null
		"$N" tcp "$D" "$P" esc-cg-late'
	wait "$mounter"
	t_begin "root inside: a cgroup2 mount made outside after the start does not show inside; still denied, nothing arrived"
	[ -e "$T/late-go" ] || t_why "the late mount was not made"
	grep -q '^late mount seen' "$OUT" && t_why "the late cgroup2 mount propagated into the command's namespace"
	grep -q '^EPERM$' "$OUT" || t_why "want EPERM: $(t_tail "$OUT" 5)"
	x_not_arrived "$LOG" " esc-cg-late\$"
	t_end
	umount "$T/late/cg" 2>/dev/null
	umount "$T/late" 2>/dev/null
}

# A descriptor on the cgroup2 file system handed to the command: a
# directory (--pass-fd) reaches every cgroup.procs below it through
# /proc/self/fd/N/..., and a cgroup.procs opened outside as its stdout
# moves whoever writes a pid to it, with the opener's rights (even as
# nobody). weir refuses to start (125); the target cgroup stays empty.
WO_CG=
wo_cg_cleanup() {
	[ -n "$WO_CG" ] && [ -d "$WO_CG" ] || return 0
	echo 1 >"$WO_CG/cgroup.kill" 2>/dev/null
	sleep 0.1
	rmdir "$WO_CG" 2>/dev/null
	return 0
}

test_cgroupfs_fds() {
	WO_CG=$CG2/weir-wo-$$
	mkdir -p "$WO_CG" || e2e_die "mkdir $WO_CG"
	run_cmd bash -c 'exec 5<"$0"; exec "$@"' "$WO_CG" "$WEIR" run -q -u root -p "$POL" \
		--pass-fd 5 -- sh -c 'echo $$ >/proc/self/fd/5/cgroup.procs; "$0" tcp '"$DENIED $PORT"' esc-cg-passfd' "$PROBE"
	WEIR_RUNS=$((WEIR_RUNS + 1))
	t_begin "--pass-fd 5 of a directory on the cgroup2 mount (root inside): refused (125), said why, nothing arrived, the cgroup stays empty"
	x_rc 125
	x_err_has 'pass-fd 5 is on a cgroup file system'
	x_not_arrived "$LOG" " esc-cg-passfd\$"
	[ -s "$WO_CG/cgroup.procs" ] && t_why "a process moved into $WO_CG"
	t_end
	run_cmd bash -c 'exec >"$0"; exec "$@"' "$WO_CG/cgroup.procs" "$WEIR" run -q -u nobody \
		-p "$POL" -- sh -c 'echo $$; "$0" tcp '"$DENIED $PORT"' esc-cg-stdout >&2' "$PROBE"
	WEIR_RUNS=$((WEIR_RUNS + 1))
	t_begin "stdout a cgroup.procs opened outside (nobody inside): refused (125), said why, nothing arrived, the cgroup stays empty"
	x_rc 125
	x_err_has "stdout \(fd 1\) is on a cgroup file system"
	x_not_arrived "$LOG" " esc-cg-stdout\$"
	[ -s "$WO_CG/cgroup.procs" ] && t_why "a process moved into $WO_CG"
	t_end
	wo_cg_cleanup
}

setup
test_inherited
test_socket_stdio
test_root_cgroup
test_root_cgroup_cwd
test_root_cgroup_late_mount
test_cgroupfs_fds
adv_finish
