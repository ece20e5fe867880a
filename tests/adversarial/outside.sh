#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Adversarial tier, issue 14's second way out: sockets made outside the
# cgroup and handed in later. An accomplice outside weir's cgroup makes a
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
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
LOG=$T/sink.log
DENIED=203.0.113.66
ALLOWED=192.0.2.10
PORT=9000

# As weir sees it (the active LSMs list bpf, and an LSM program loads):
# securityfs mounted in this namespace if it is not, so that weir can read.
lsm_active() {
	[ -r /sys/kernel/security/lsm ] ||
		mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
	"$WEIR" run -v --standalone -p "$(echo 'version: 1' | e2e_policy lsm-probe)" -- true 2>&1 |
		grep -q 'sockets made outside the cgroup: refused'
}

# The accomplice: made outside the cgroup, handed to whoever connects to
# SOCK: a TCP socket connected to DENIED, a UDP socket, both not
# close-on-exec.
start_accomplice() {
	local i
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
	for ((i = 0; i < 50; i++)); do
		grep -qs '^ready$' "$T/acc.out" && return 0
		sleep 0.1
	done
	e2e_die "the accomplice did not start: $(t_tail "$T/acc.out")"
}

# Inside: receive the two sockets and send through each, then make a
# socket of its own to the allowed address. One line per attempt: errno.
INSIDE='
import array, errno, socket, sys
path, denied, allowed, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = socket.socket(socket.AF_UNIX)
c.connect(path)
fds = array.array("i")
msg, anc, flags, addr = c.recvmsg(1, socket.CMSG_LEN(2 * fds.itemsize))
for level, kind, data in anc:
    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
tcp = socket.socket(fileno=fds[0])
udp = socket.socket(fileno=fds[1])
def attempt(name, fn):
    try:
        fn()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
attempt("tcp-send", lambda: tcp.send(b"esc-scm-tcp\n"))
attempt("udp-sendto", lambda: udp.sendto(b"esc-scm-udp\n", (denied, port)))
attempt("udp-connect", lambda: udp.connect((denied, port)))
mine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt("inside-sendto", lambda: mine.sendto(b"esc-born-inside\n", (allowed, port)))
'

setup() {
	e2e_setup_lo "$DENIED/32" "$ALLOWED/32"
	e2e_start_sink sink "$LOG" "$DENIED:$PORT" "$ALLOWED:$PORT"
	POL=$(e2e_policy outside <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: $ALLOWED
		    ports: [$PORT]
	EOF
	)
	chmod 1777 "$T"
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

if ! lsm_active; then
	t_ok "sockets made outside: skipped (the BPF LSM is not active on $(uname -r), or refuses programs; make test-kernels boots a kernel with it)"
	echo "1 passed, 0 failed"
	exit 0
fi
setup
test_scm_rights
[ "${WEIR_E2E_DAEMON:-}" = 1 ] || test_pass_fd
if ((${#LEFTOVER[@]})); then
	t_not_ok "no weir cgroup left" "${LEFTOVER[*]}"
else
	t_ok "no weir cgroup left after $WEIR_RUNS runs"
fi
echo "$T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" = 0 ]
