#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Adversarial tier: tests/adversarial/escape.c runs inside `weir run` and
# tries every way out it knows; a sink on the denied and the allowed address
# proves what arrived. Private network and mount namespaces; root.
#
#   WEIR_BUILD=/abs/build bash tests/adversarial/run.sh

E2E_NAME=adversarial
# shellcheck source=tests/adversarial/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ESCAPE=$WEIR_BUILD/bin/escape
[ -x "$ESCAPE" ] || e2e_die "$ESCAPE missing"

setup() {
	# Let every user open ping sockets here, so that a refusal is weir's.
	sysctl -qw net.ipv4.ping_group_range="0 2147483647" || e2e_die "ping_group_range"
	adv_setup "127.0.0.1:$PORT"
	ESCAPE=$(adv_copy "$WEIR_BUILD/bin/escape")
}

# Each "ok"/"not ok" line of escape's output becomes a test; every token it
# names must never have reached a listener. judge_output FILE MIN: fewer
# than MIN results is a failure too (escape died or never ran).
judge_output() {
	local out=$1 min=$2 line token n=0
	while IFS= read -r line; do
		case $line in
		"ok - "* | "not ok - "*) ;;
		*) continue ;;
		esac
		n=$((n + 1))
		token=
		[[ $line == *" token "* ]] && token=${line##* token }
		if [[ $line == ok* ]]; then
			if [ -n "$token" ] && grep -q " $token\$" "$LOG"; then
				t_not_ok "${line#ok - }" "token $token arrived at a listener"
			else
				t_ok "${line#ok - }"
			fi
		else
			t_not_ok "${line#not ok - }" "(see above)"
		fi
	done <"$out"
	((n >= min)) || t_not_ok "$(basename "$out"): escape reported $n results, want $min or more" \
		"$(t_tail "$ERR")"
}

test_unprivileged() {
	local victim
	# A process of the same uid outside the cgroup: not to be touched.
	setpriv --reuid=65534 --regid=65534 --clear-groups sleep 60 &
	victim=$!
	E2E_PIDS+=("$victim")
	run_weir -q -u nobody -p "$POL" -- "$ESCAPE" user "$DENIED" "$ALLOWED" "$PORT" "$victim"
	[ -s "$OUT" ] || t_not_ok "escape ran as nobody" "no output: $(t_tail "$ERR")"
	judge_output "$OUT" 20
	t_begin "sanity: the allowed datagram before the denied one in sendmmsg arrived"
	x_arrived "$LOG" " esc-mm-ok1$"
	x_not_arrived "$LOG" " esc-mm-ok2$"
	t_end
	t_begin "sanity: the datagrams that primed each socket's cache arrived"
	for tok in esc-prime-ok1 esc-prime-ok2 esc-prime-ok3 esc-prime-ok4; do
		x_arrived "$LOG" " $tok\$"
	done
	t_end
}

test_root() {
	run_weir -q -u root -p "$POL" -- "$ESCAPE" root "$DENIED" "$ALLOWED" "$PORT"
	judge_output "$OUT" 20
}

test_sigkill() {
	local w
	rm -f "$T/go" "$T/afterkill.out"
	# The grandchild outlives weir (its direct child dies with weir).
	env --default-signal=INT,QUIT "$WEIR" run -q -u nobody -p "$POL" -- \
		sh -c "$ESCAPE wait $T/go $DENIED $PORT >$T/afterkill.out 2>&1 & wait" \
		>"$T/kill.out" 2>&1 &
	w=$!
	# escape is waiting once its output file exists.
	adv_until 100 test -e "$T/afterkill.out"
	sleep 0.2
	kill -KILL "$w"
	wait "$w" 2>/dev/null
	t_begin "after SIGKILL of weir: its run is listed as stale and still enforced"
	"$WEIR" status >"$T/status.out"
	# its own pinned programs; through a daemon (WEIR_E2E_DAEMON=1), the daemon's
	local how=pinned
	[ "${WEIR_E2E_DAEMON:-}" = 1 ] && how=daemon
	grep -qE "^run-$w +STALE .*enforced \($how\)" "$T/status.out" ||
		t_why "weir status: $(cat "$T/status.out")"
	t_end
	touch "$T/go"
	adv_until 50 grep -qs 'udp sendto after' "$T/afterkill.out"
	judge_output "$T/afterkill.out" 2
	t_begin "weir cleanup ends the stale run: processes, pins and cgroup gone"
	# By name: never a run this test did not start.
	"$WEIR" cleanup "run-$w" >"$T/cleanup.out" 2>&1 ||
		t_why "weir cleanup run-$w failed: $(cat "$T/cleanup.out")"
	grep -q "^cleaned run-$w " "$T/cleanup.out" ||
		t_why "weir cleanup run-$w: $(cat "$T/cleanup.out")"
	[ -e "$CG2/weir/run-$w" ] && t_why "cgroup $CG2/weir/run-$w is still there"
	ls /sys/fs/bpf/weir/run-"$w" >/dev/null 2>&1 && t_why "pins of run-$w are still there"
	pgrep -f "escape wait $T/go" >/dev/null && t_why "escape is still running"
	t_end
}

# one_process_in CGROUP: exactly one process is left in it
one_process_in() {
	[ "$(wc -l 2>/dev/null <"$1/cgroup.procs")" = 1 ]
}

# A stale run whose pins live in a bpffs only its namespace has (weir under
# `ip netns exec`): weir cleanup finds them through /proc/PID/root of a
# process of the run. An accomplice outside the run gives that process a
# namespace in which the pins are a symlink to a directory of root's.
test_pins_symlink() {
	local w acc
	mkdir -m 755 "$T/precious" && echo keep >"$T/precious/file" || e2e_die "mkdir precious"
	rm -rf "$T/joined" "$T/plant.sock"
	unshare --mount --propagation private sh -c 'umount /sys/fs/bpf 2>/dev/null
		exec env --default-signal=INT,QUIT "$@"' sh "$WEIR" run -q -u nobody -p "$POL" -- \
		sh -c "$ESCAPE join $T/plant.sock $T/joined & wait" >"$T/plant.out" 2>&1 &
	w=$!
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$ESCAPE" plant "$T/plant.sock" "$w" "$T/precious" >"$T/accomplice.out" 2>&1 &
	acc=$!
	E2E_PIDS+=("$acc")
	adv_until 100 test -e "$T/joined"
	kill -KILL "$w"
	wait "$w" 2>/dev/null
	# Only the process in the accomplice's namespace is left in the run.
	adv_until 50 one_process_in "$CG2/weir/run-$w"
	if grep -q '^unshare:' "$T/accomplice.out"; then
		# No unprivileged user namespaces here: the attack cannot be made.
		t_ok "a stale run's pins through a user's namespace: skipped ($(head -1 "$T/accomplice.out"))"
		"$WEIR" cleanup "run-$w" >/dev/null 2>&1
		return
	fi
	t_begin "a stale run's process in a namespace where its pins are a symlink: joined"
	[ -e "$T/joined" ] || t_why "escape join: $(t_tail "$T/plant.out") $(t_tail "$T/accomplice.out")"
	t_end
	t_begin "weir cleanup of that run removes nothing the symlink points to"
	"$WEIR" cleanup "run-$w" >"$T/cleanup-sym.out" 2>&1
	[ -e "$T/precious/file" ] || t_why "root's $T/precious/file was removed: $(cat "$T/cleanup-sym.out")"
	[ -e "$CG2/weir/run-$w" ] && t_why "cgroup run-$w left: $(cat "$T/cleanup-sym.out")"
	t_end
}

# Inbound (docs/policy.md, "Inbound"): PEER may connect in to LPORT, so
# what a server on LPORT sends PEER passes as a reply. First that the
# exemption is live (a server inside answers PEER), then that a program
# cannot use it to start flows of its own from LPORT.
test_inbound() {
	local pol w
	PEER=198.51.100.7
	LPORT=8080
	e2e_setup_lo "$PEER/32" 192.0.2.20/32
	e2e_start_sink peersink "$LOG" "$PEER:$PORT"
	pol=$(e2e_policy inbound <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: $ALLOWED
		    ports: [$PORT]
		inbound:
		  - ip: $PEER
		    ports: [$LPORT]
	EOF
	)
	: >"$T/inserver.log"
	chmod 666 "$T/inserver.log"
	env --default-signal "$WEIR" run -q -u nobody -p "$pol" -- \
		"$(adv_copy "$SINK")" --http --echo "$T/inserver.log" "192.0.2.20:$LPORT" >"$T/inserver.ready" 2>&1 &
	w=$!
	adv_until 50 grep -qs '^ready$' "$T/inserver.ready"
	t_begin "inbound: a server inside on port $LPORT answers the permitted peer (TCP, UDP)"
	grep -qs '^ready$' "$T/inserver.ready" || t_why "the server did not start: $(t_tail "$T/inserver.ready")"
	run_cmd "$NETPROBE" --from "$PEER" tcp 192.0.2.20 "$LPORT" esc-in-control
	x_out ok
	run_cmd "$NETPROBE" --from "$PEER" udpr 192.0.2.20 "$LPORT" esc-in-control-udp
	x_out ok
	t_end
	kill -TERM "$w" 2>/dev/null
	e2e_wait_gone "$w" 50 || kill -KILL "$w" 2>/dev/null
	wait "$w" 2>/dev/null
	WEIR_RUNS=$((WEIR_RUNS + 1))
	run_weir -q -u nobody -p "$pol" -- "$ESCAPE" inbound "$DENIED" "$PEER" "$PORT" "$LPORT"
	judge_output "$OUT" 8
}

# The command shares weir's stderr: it sets O_NONBLOCK on it (a pipe) and
# fills the pipe, then makes a denied connection. weir's denial line and
# summary must still come out once the reader drains the pipe, not fail
# with EAGAIN and vanish.
test_silenced_stderr() {
	cat >"$T/nb.py" <<-'EOF'
		import fcntl, os, socket, sys
		fl = fcntl.fcntl(2, fcntl.F_GETFL)
		fcntl.fcntl(2, fcntl.F_SETFL, fl | os.O_NONBLOCK)
		n = 0
		try:
		    while True:
		        n += os.write(2, b"." * 4096)
		except BlockingIOError:
		    pass
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		try:
		    s.sendto(b"esc-nonblock", (sys.argv[1], int(sys.argv[2])))
		    print("sent")
		except OSError as e:
		    print("errno=%d" % e.errno)
	EOF
	chmod 644 "$T/nb.py"
	run_cmd bash -c '"$0" run -u nobody -p "$1" -- /usr/bin/python3 "$2" "$3" "$4" 2>&1 >"$5" |
		{ sleep 1; sed "s/^[.]*//" >"$6"; }' "$WEIR" "$POL" "$T/nb.py" "$DENIED" "$PORT" "$T/nb.out" "$T/nb.err"
	WEIR_RUNS=$((WEIR_RUNS + 1))
	t_begin "the command sets O_NONBLOCK on the shared stderr and fills it: weir's denial line and summary still come out"
	x_rc 0
	grep -qx 'errno=1' "$T/nb.out" || t_why "the command got $(cat "$T/nb.out"), want errno=1"
	grep -q "weir: denied udp $DENIED:$PORT" "$T/nb.err" || t_why "no denial line: $(t_tail "$T/nb.err")"
	grep -q '^weir: summary: 0 allowed, 1 denied' "$T/nb.err" || t_why "no summary: $(t_tail "$T/nb.err")"
	x_not_arrived "$LOG" " esc-nonblock\$"
	t_end
}

setup
test_inbound
test_pins_symlink
test_unprivileged
test_root
test_sigkill
test_silenced_stderr
adv_finish
