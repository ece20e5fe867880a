#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Adversarial tier, issue 14's second way out: sockets made outside the
# cgroup and handed in later (and, in a daemon-attached cgroup, which has
# no seccomp filter of weir's, packet and vsock sockets: R8-1). An accomplice outside weir's cgroup makes a
# TCP socket connected to the denied address and a UDP socket, and passes
# both over a unix socket (SCM_RIGHTS) to a process inside `weir run`,
# which sends a token through each. Where the BPF LSM is active
# (lsm=...,bpf: Debian's kernels; make test-kernels boots one) connect and
# every send on them are refused and nothing arrives; a socket made inside
# still works. Where it is not, the test says it is skipped and why.
#
#   WEIR_BUILD=/abs/build bash tests/adversarial/outside.sh      (root)

# shellcheck disable=SC2016 # python -c scripts: single quotes on purpose
E2E_NAME=outside
# shellcheck source=tests/adversarial/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
adv_on_cleanup() { olsm_cleanup; }

# The accomplice: made outside the cgroup, handed to whoever connects to
# SOCK: a TCP socket connected to DENIED, a UDP socket, both not
# close-on-exec.
start_accomplice() {
	python3 - "$T/pass.sock" "$DENIED" "$PORT" >"$T/acc.out" 2>&1 <<-'EOF' &
		import array, os, socket, sys
		path, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
		tcp = socket.create_connection((host, port))
		udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		srv = socket.socket(socket.AF_UNIX)
		srv.bind(path)
		os.chmod(path, 0o666)
		srv.listen(4)
		print("ready", flush=True)
		while True:
		    c, _ = srv.accept()
		    fds = array.array("i", [tcp.fileno(), udp.fileno()])
		    c.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
		    c.close()
	EOF
	E2E_PIDS+=("$!")
	adv_wait_ready "$T/acc.out" "the accomplice"
}

# Inside: receive the two sockets and send through each, then make a
# socket of its own to the allowed address. One line per attempt: errno.
# What each Python script here starts with: one line per attempt, the
# errno name or ok.
ATTEMPT='
import errno
def attempt(name, fn):
    try:
        fn()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
'

INSIDE=$ATTEMPT'
import array, socket, sys
path, denied, allowed, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = socket.socket(socket.AF_UNIX)
c.connect(path)
fds = array.array("i")
msg, anc, flags, addr = c.recvmsg(1, socket.CMSG_LEN(2 * fds.itemsize))
for level, kind, data in anc:
    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
tcp = socket.socket(fileno=fds[0])
udp = socket.socket(fileno=fds[1])
attempt("tcp-send", lambda: tcp.send(b"esc-scm-tcp\n"))
attempt("udp-sendto", lambda: udp.sendto(b"esc-scm-udp\n", (denied, port)))
attempt("udp-connect", lambda: udp.connect((denied, port)))
mine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("inside-sendto", lambda: mine.sendto(b"esc-born-inside\n", (allowed, port)))
'

# Families no cgroup hook sees: a packet socket sending an IPv4/UDP frame
# from 198.51.100.1 to DENIED:PORT through lo (taken as received: the sink gets
# it unless refused), a vsock socket, and netlink (left alone). One line
# per attempt: errno or ok.
FAMILIES=$ATTEMPT'
import socket, struct, sys
denied, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
def frame():
    udp = struct.pack("!HHHH", 40000, port, 8 + len(token), 0) + token
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     socket.inet_aton("198.51.100.1"), socket.inet_aton(denied))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + udp
def packet():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    s.sendto(frame(), ("lo", 0x0800, 0, 0, bytes(6)))
attempt("packet", packet)
attempt("vsock", lambda: socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM))
attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
'

setup() {
	adv_setup
	start_accomplice
}

test_scm_rights() {
	run_weir -u nobody -p "$POL" -e "$T/ev" -- python3 -c "$INSIDE" "$T/pass.sock" \
		"$DENIED" "$ALLOWED" "$PORT"
	t_begin "sockets made outside, passed in over SCM_RIGHTS: send, sendto, connect refused (EPERM), nothing arrived"
	x_out "tcp-send EPERM
udp-sendto EPERM
udp-connect EPERM
inside-sendto ok"
	x_not_arrived "$LOG" " esc-scm-(tcp|udp)\$"
	x_json "$T/ev" 'any(.[]; .op == "outside-sendmsg" and .verdict == "deny"
		and .reason == "socket-made-outside") and any(.[]; .op == "outside-connect")'
	x_err_has "denied send on an IPv4 socket made outside the cgroup \(python3 pid [0-9]+\)"
	t_end
	t_begin "sanity: a socket made inside still sends to the allowed address"
	x_arrived "$LOG" "^udp $ALLOWED:$PORT esc-born-inside\$"
	t_end
}

# --pass-fd of an inet socket: the user's choice, not refused.
test_pass_fd() {
	exec 5<>"/dev/udp/$ALLOWED/$PORT" || e2e_die "fd 5"
	run_weir -q -u nobody -p "$POL" --pass-fd 5 -- sh -c 'echo esc-passed-fd >&5'
	exec 5>&-
	t_begin "--pass-fd 5 (a UDP socket made outside): passed on on purpose, not refused"
	x_rc 0
	x_arrived "$LOG" "^udp $ALLOWED:$PORT esc-passed-fd\$"
	t_end
}

# Review 2's F9: the LSM looked only 16 cgroup levels up from the task:
# root inside moves itself 20 levels below its cgroup (in its own cgroup
# namespace) and uses the sockets made outside from there.
test_deep_cgroup() {
	run_weir -u root -p "$POL" -- sh -c '
		d=/sys/fs/cgroup
		for i in $(seq 20); do d=$d/l$i; mkdir "$d" || exit 3; done
		echo $$ >"$d/cgroup.procs" || exit 4
		echo "level $(cat /proc/self/cgroup)"
		exec python3 -c "$0" "$@"' "$INSIDE" "$T/pass.sock" "$DENIED" "$ALLOWED" "$PORT"
	t_begin "sockets made outside, used from a cgroup 20 levels below the run's (root inside): refused (EPERM), nothing arrived"
	x_file_has "$OUT" '^level 0::/l1/l2/.*/l20$'
	x_file_has "$OUT" '^tcp-send EPERM$'
	x_file_has "$OUT" '^udp-sendto EPERM$'
	x_not_arrived "$LOG" " esc-scm-(tcp|udp)\$"
	t_end
}

# Review 2's F2, where the BPF LSM is active: a symlink to a denied socket
# is another string for the cgroup unix hooks, but reaches the same bound
# socket, whose own path the LSM judges (unix_stream_connect, and
# unix_may_send for a datagram).
test_unix_symlink() {
	local pol
	mkdir -p "$T/us" && chmod 755 "$T/us"
	python3 - "$T/us" "$DENIED" "$PORT" >"$T/us.out" 2>&1 <<-'EOF' &
		import os, socket, sys, threading
		d, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
		s = socket.socket(socket.AF_UNIX); s.bind(d + "/denied.sock"); s.listen(4)
		g = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); g.bind(d + "/denied.dgram")
		for p in ("denied.sock", "denied.dgram"):
		    os.chmod(d + "/" + p, 0o666)
		def relay(line):
		    with socket.create_connection((host, port), timeout=2) as out:
		        out.sendall(line)
		def dgram():
		    while True:
		        relay(g.recv(64) + b"\n")
		threading.Thread(target=dgram, daemon=True).start()
		print("ready", flush=True)
		while True:
		    c, _ = s.accept()
		    try:
		        relay(c.makefile("rb").readline())
		    except OSError:
		        pass
		    c.close()
	EOF
	E2E_PIDS+=("$!")
	adv_wait_ready "$T/us.out" "the unix listeners"
	ln -s "$T/us/denied.sock" "$T/us/link.sock"
	ln -s "$T/us/denied.dgram" "$T/us/link.dgram"
	pol=$(e2e_policy unix-link <<-EOF
		version: 1
		unix:
		  deny: [$T/us/denied.sock, $T/us/denied.dgram]
	EOF
	)
	run_weir -q -u nobody -p "$pol" -e "$T/ev-link" -- python3 -c '
import socket, sys
d = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(d + "/link.sock"); s.sendall(b"esc-unix-link\n"); print("stream connected")
except OSError as e:
    print("stream", e.errno)
g = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    g.sendto(b"esc-unix-link-dgram", d + "/link.dgram"); print("dgram sent")
except OSError as e:
    print("dgram", e.errno)' "$T/us"
	t_begin "a symlink to a denied unix socket (stream connect, datagram sendto): refused by the socket's own path (EPERM), nothing relayed"
	x_out "stream 1
dgram 1"
	sleep 0.3
	x_not_arrived "$LOG" "esc-unix-link"
	x_json "$T/ev-link" 'any(.[]; .op == "unix-connect" and .verdict == "deny" and
		.path == "'"$T/us/denied.sock"'")'
	t_end
}

# The daemon's LSM links are pinned (PIN_ROOT/lsm) like its cgroup links:
# with the daemon stopped (no --detach-on-exit), its attachment stays
# enforced and a socket made outside is still refused there; a daemon
# started again replaces the pins, and weir cleanup --pin-root removes them.
OLSM_PINS= OLSM_CG=
olsm_cleanup() {
	[ -n "$OLSM_CG" ] && [ -d "$OLSM_CG" ] && echo 1 >"$OLSM_CG/cgroup.kill" 2>/dev/null &&
		sleep 0.1 && rmdir "$OLSM_CG" 2>/dev/null
	[ -n "$OLSM_PINS" ] && [ -d "$OLSM_PINS" ] &&
		"$WEIR" cleanup --pin-root "$OLSM_PINS" >/dev/null 2>&1
	return 0
}

olsm_daemon() { # EXTRA-ARGS...: a daemon of the test's own; its pid in DPID
	local i d=$T/olsm
	"$WEIR" daemon --socket "$d/sock" --policy-dir "$d/policies" --state-dir "$d/state" \
		--pin-root "$OLSM_PINS" "$@" >>"$d/out" 2>>"$d/err" &
	DPID=$!
	for ((i = 0; i < 200 * ${WEIR_TEST_SLOW:-1}; i++)); do
		curl -sf --max-time 1 --unix-socket "$d/sock" http://weir/v1/health >/dev/null 2>&1 &&
			return 0
		e2e_dead "$DPID" && break
		sleep 0.05
	done
	e2e_die "the test's daemon did not answer: $(t_tail "$d/err")"
}

test_daemon_lsm_pinned() {
	local d=$T/olsm
	OLSM_PINS=/sys/fs/bpf/weir-olsm-$$ OLSM_CG=$CG2/weir-olsm-$$
	mkdir -p "$d/policies" "$OLSM_CG" || e2e_die "mkdir $d $OLSM_CG"
	cp "$POL" "$d/policies/outside.yaml"
	olsm_daemon --events "$T/olsm.ev"
	"$WEIR" attach --socket "$d/sock" --policy outside "$OLSM_CG" >/dev/null 2>"$d/attach.err" ||
		e2e_die "weir attach: $(t_tail "$d/attach.err")"
	# A daemon-attached cgroup has no seccomp filter of weir's: root in it
	# (a container's) tries the families only the BPF LSM sees.
	OUT=$T/families.out
	# The frame's source is no address of ours: a reverse-path filter
	# (Debian's sysctl.d sets loose, which new namespaces inherit) drops it.
	sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.lo.rp_filter=0
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec python3 -c "$@"' sh "$OLSM_CG" \
		"$FAMILIES" "$DENIED" "$PORT" esc-packet-inside >"$OUT" 2>&1
	python3 -c "$FAMILIES" "$DENIED" "$PORT" esc-packet-outside >"$T/families-out.out" 2>&1
	t_begin "a daemon-attached cgroup, root inside: packet and vsock sockets refused (EPERM), nothing arrived; netlink left alone"
	x_file_has "$OUT" '^packet EPERM$'
	x_file_has "$OUT" '^vsock EPERM$'
	x_file_has "$OUT" '^netlink ok$'
	x_not_arrived "$LOG" " esc-packet-inside\$"
	# The frame is a way out where nothing refuses it: outside the cgroup.
	x_file_has "$T/families-out.out" '^packet ok$'
	x_arrived "$LOG" "^udp $DENIED:$PORT esc-packet-outside\$"
	sleep 0.2
	x_json "$T/olsm.ev" 'any(.[]; .op == "socket" and .verdict == "deny" and
		.family == "packet") and any(.[]; .op == "socket" and .family == "vsock")'
	t_end
	kill -TERM "$DPID"
	e2e_wait_gone "$DPID" $((50 * ${WEIR_TEST_SLOW:-1}))
	OUT=$T/olsm.out
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec python3 -c "$@"' sh "$OLSM_CG" \
		"$INSIDE" "$T/pass.sock" "$DENIED" "$ALLOWED" "$PORT" >"$OUT" 2>&1
	t_begin "daemon stopped (its attachment pinned): its BPF LSM links are pinned too, a socket made outside is still refused, nothing arrived"
	[ -e "$OLSM_PINS/lsm/weir_lsm_conn" ] && [ -e "$OLSM_PINS/lsm/weir_lsm_ustream" ] ||
		t_why "no LSM pins in $OLSM_PINS/lsm: $(ls "$OLSM_PINS" "$OLSM_PINS/lsm" 2>&1 | tr '\n' ' ')"
	x_file_has "$OUT" '^tcp-send EPERM$'
	x_file_has "$OUT" '^udp-sendto EPERM$'
	x_not_arrived "$LOG" " esc-scm-(tcp|udp)\$"
	t_end
	# Started again, with --detach-on-exit: it adopts, then a stop unpins all.
	olsm_daemon --detach-on-exit
	kill -TERM "$DPID"
	e2e_wait_gone "$DPID" $((50 * ${WEIR_TEST_SLOW:-1}))
	t_begin "a daemon started again replaces the LSM pins; --detach-on-exit removes them"
	[ -e "$OLSM_PINS/lsm/weir_lsm_conn" ] && t_why "LSM pins left: $(ls "$OLSM_PINS/lsm")"
	grep -q "cannot pin the BPF LSM" "$d/err" && t_why "$(t_tail "$d/err")"
	t_end
	olsm_cleanup
}

lsm_active || adv_skip "sockets made outside: skipped (the BPF LSM is not active on $(uname -r), or refuses programs; make test-kernels boots a kernel with it)"
setup
test_scm_rights
test_pass_fd
test_deep_cgroup
test_unix_symlink
[ "${WEIR_E2E_DAEMON:-}" = 1 ] || test_daemon_lsm_pinned
adv_finish
