#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Adversarial tier, the ways out of issue 14 (docs/threat-model.md): a
# socket inherited from whoever ran weir, root inside leaving its cgroup,
# a multicast join (the kernel's report names the group to the link).
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

# --- 5. multicast joins --------------------------------------------------------

# A join needs no privilege, and the kernel answers it with an IGMP or MLD
# report naming the group the command chose, to the whole link. A veth pair
# (mc0, with a route for multicast, and mc1, where a sniffer logs every
# frame as hex): first the same joins outside weir, to show that the
# sniffer sees their reports; then inside, as nobody and as root: EPERM,
# an event, and no report with the inside's groups on the link.
test_multicast() {
	ip link add mc0 type veth peer name mc1 || e2e_die "ip link add mc0"
	sysctl -qw net.ipv6.conf.mc0.accept_dad=0 net.ipv6.conf.mc1.accept_dad=0
	ip addr add 198.51.100.1/24 dev mc0 && ip link set mc0 up && ip link set mc1 up &&
		ip route add 224.0.0.0/4 dev mc0 || e2e_die "mc0/mc1 set-up"
	cat >"$T/sniff.py" <<-'EOF'
		import socket, sys, time
		s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
		s.bind((sys.argv[1], 0))
		s.settimeout(0.1)
		out = open(sys.argv[2], "w", buffering=1)
		open(sys.argv[3], "w").close()
		end = time.time() + 120
		while time.time() < end and not __import__("os").path.exists(sys.argv[4]):
		    try:
		        out.write(s.recv(65535).hex() + "\n")
		    except socket.timeout:
		        pass
	EOF
	cat >"$T/join.py" <<-'EOF'
		import socket, struct, sys, time
		ifaddr, ifname, g4, g4b, g6 = sys.argv[1:6]
		idx = socket.if_nametoindex(ifname)
		def tryit(f):
		    try:
		        f()
		        return 0
		    except OSError as e:
		        return e.errno
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		a = tryit(lambda: s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
		                               socket.inet_aton(g4) + socket.inet_aton(ifaddr)))
		# MCAST_JOIN_GROUP (42): struct group_req {u32 if; pad; sockaddr_storage}
		req = struct.pack("I4x", idx) + struct.pack("HH4s", socket.AF_INET, 0,
		                                            socket.inet_aton(g4b)).ljust(128, b"\0")
		b = tryit(lambda: s.setsockopt(socket.IPPROTO_IP, 42, req))
		s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
		c = tryit(lambda: s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
		                                socket.inet_pton(socket.AF_INET6, g6) + struct.pack("I", idx)))
		print("ip_add=%d mcast_join=%d ipv6_join=%d" % (a, b, c), flush=True)
		time.sleep(0.3)
	EOF
	chmod 644 "$T/sniff.py" "$T/join.py"
	/usr/bin/python3 "$T/sniff.py" mc1 "$T/frames" "$T/sniff.ready" "$T/sniff.stop" &
	local sniffer=$! hex
	adv_until 50 test -e "$T/sniff.ready" || e2e_die "the sniffer did not start"

	# hex of the groups: 239.83.69.x = "SE" + x; ff0e::5345:4352:<x> = "SECR" + x
	/usr/bin/python3 "$T/join.py" 198.51.100.1 mc0 239.83.69.1 239.83.69.2 ff0e::5345:4352:1 \
		>"$T/out.control" 2>&1
	adv_until 30 grep -q ef534501 "$T/frames"
	t_begin "multicast joins outside weir: allowed, their IGMP and MLD reports seen on the link (the sniffer works)"
	grep -q '^ip_add=0 mcast_join=0 ipv6_join=0$' "$T/out.control" || t_why "outside: $(cat "$T/out.control")"
	for hex in ef534501 ef534502 ff0e0000000000000000534543520001; do
		grep -q "$hex" "$T/frames" || t_why "no report with $hex on mc1"
	done
	t_end

	local who n=2
	for who in nobody root; do
		n=$((n + 1))
		run_weir -u "$who" -p "$POL" -- /usr/bin/python3 "$T/join.py" 198.51.100.1 mc0 \
			"239.83.69.$n" "239.83.69.$((n + 10))" "ff0e::5345:4352:$n"
		sleep 0.5
		t_begin "multicast joins inside weir as $who (IP_ADD_MEMBERSHIP, MCAST_JOIN_GROUP, IPV6_JOIN_GROUP): EPERM, denied on stderr, no report on the link"
		x_rc 0
		x_out "ip_add=1 mcast_join=1 ipv6_join=1"
		x_err_has "denied an IPv4 multicast join \(python3 pid [0-9]+\)"
		x_err_has "denied an IPv6 multicast join \(python3 pid [0-9]+\)"
		for hex in "ef5345$(printf %02x "$n")" "ef5345$(printf %02x $((n + 10)))" \
			"ff0e00000000000000005345435200$(printf %02x "$n")"; do
			grep -q "$hex" "$T/frames" && t_why "a report with $hex reached the link"
		done
		t_end
	done

	# The kernel skips cgroup/setsockopt for 32-bit system calls: the
	# seccomp filter refuses the same joins on the i386 entry.
	local s32
	s32=$(adv_copy "$WEIR_BUILD/bin/sockopt32")
	"$s32" 198.51.100.1 mc0 239.83.69.31 ff0e::5345:4352:31 >"$T/out.c32" 2>&1
	if grep -q '^compat unavailable$' "$T/out.c32"; then
		t_ok "multicast joins through the i386 entry: skipped (no ia32 system calls on $(uname -r))"
	else
		adv_until 30 grep -q ef53451f "$T/frames"
		t_begin "multicast joins through the i386 entry outside weir: allowed, reports seen on the link"
		grep -q '^compat ip_add=0 mcast_join=0 ipv6_join=0$' "$T/out.c32" ||
			t_why "outside: $(cat "$T/out.c32")"
		for hex in ef53451f ef534520 ff0e0000000000000000534543520031; do
			grep -q "$hex" "$T/frames" || t_why "no report with $hex on mc1"
		done
		t_end
		for who in nobody root; do
			n=$((n + 1))
			run_weir -u "$who" -p "$POL" -- "$s32" 198.51.100.1 mc0 "239.83.69.$((n + 30))" \
				"ff0e::5345:4352:$((n + 30))"
			sleep 0.5
			t_begin "multicast joins through the i386 entry inside weir as $who: EPERM (seccomp), no report on the link"
			x_rc 0
			x_out "compat ip_add=1 mcast_join=1 ipv6_join=1"
			for hex in "ef5345$(printf %02x $((n + 30)))" "ef5345$(printf %02x $((n + 31)))" \
				"ff0e00000000000000005345435200$((n + 30))"; do
				grep -q "$hex" "$T/frames" && t_why "a report with $hex reached the link"
			done
			t_end
		done
	fi
	touch "$T/sniff.stop"
	wait "$sniffer"
	ip link del mc0
}

setup
test_inherited
test_socket_stdio
test_root_cgroup
test_root_cgroup_cwd
test_root_cgroup_late_mount
test_cgroupfs_fds
test_multicast
adv_finish
