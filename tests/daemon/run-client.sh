#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 6, weir run through the daemon: a weir daemon of the test's own
# (--socket, --state-dir, --policy-dir in the temp dir, --pin-root
# /sys/fs/bpf/weir-rctest-PID), real servers and dnsmasq in private network
# and mount namespaces. What weir run prints, writes and exits with is what
# standalone weir run does (tests/e2e/run.sh and dns.sh also run whole in
# this mode: WEIR_E2E_DAEMON=1, make test-daemon); here, what only this
# mode has: choosing it, a daemon or a weir run that dies mid-run, weir ps.
#
#   WEIR_BUILD=/abs/build bash tests/daemon/run-client.sh      (root)

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=run-client
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

# shellcheck source=tests/daemon/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
d_init rctest
D_STOP=TERM

LOG=$T/sink.log
ORPHAN=   # test_kill9_run's run, by its pid (its cgroup is run-PID)

# Every run of ours is over by then: nothing it enforced is left.
d_on_cleanup() {
	[ -n "$ORPHAN" ] && "$WEIR" cleanup "run-$ORPHAN" >/dev/null 2>&1
}

# ps_has RUN-PID: `weir ps --json` lists the run's cgroup.
ps_has() {
	"$WEIR" ps --socket "$SOCK" --json 2>/dev/null |
		jq -e --arg l "run-$1" '.attachments | any(.label == $l)' >/dev/null
}

# wait_ps PID yes|no: until weir ps lists it (or not), at most 5 s.
wait_ps() {
	local i
	for ((i = 0; i < 50; i++)); do
		if ps_has "$1"; then [ "$2" = yes ] && return 0; else [ "$2" = no ] && return 0; fi
		sleep 0.1
	done
	return 1
}

setup() {
	e2e_setup_lo 192.0.2.10/32 192.0.2.11/32
	e2e_start_sink sink "$LOG" 192.0.2.10:80 192.0.2.11:80
	e2e_start_dns allowed.test,192.0.2.10 other.test,192.0.2.11
	mkdir -p "$T/policies"
	P=$(e2e_policy p <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		    ports: [80]
	EOF
	)
	BURSTP=$(e2e_policy burst <<-EOF
		version: 1
		allow:
		  - ip: 192.0.2.10
		    ports: [9]
	EOF
	)
	BAD=$(e2e_policy bad <<-EOF
		version: 1
		allow:
		  - domian: allowed.test
	EOF
	)
	start_daemon
	export WEIR_SOCKET=$SOCK
	EVENTGEN=$WEIR_BUILD/bin/eventgen
	[ -x "$EVENTGEN" ] || e2e_die "$EVENTGEN missing: make build/bin/eventgen"
}

attaches() { grep -c '^weir: attached ' "$T/daemon.err"; }

test_allowed_and_denied() {
	local tok=ok$RANDOM tok2=no$RANDOM
	t_begin "through the daemon: allowed arrives, denied refused with its line, exit status"
	run_weir -v -p "$P" -e "$T/ev1.jsonl" -- sh -c 'getent ahostsv4 allowed.test >/dev/null
		"$0" tcp 192.0.2.10 80 "$1"; "$0" tcp 192.0.2.11 80 "$2"; exit 3' \
		"$NETPROBE" "$tok" "$tok2"
	x_rc 3
	x_err_has "^weir: through the daemon on $SOCK\$"
	x_arrived "$LOG" "^tcp [^ ]+ $tok\$"
	x_not_arrived "$LOG" " $tok2\$"
	x_err_has '^weir: denied tcp 192\.0\.2\.11:80 \(netprobe pid [0-9]+\)$'
	x_err_has '^weir: summary: [0-9]+ allowed, 1 denied$'
	x_err_has '^weir:   allowed +tcp +allowed\.test:80 \(192\.0\.2\.10\) +x1 \[rule [^]]*/p\.yaml:[0-9]+\]$'
	x_err_has '^weir:   denied +tcp +192\.0\.2\.11:80 +x1$'
	x_err_has '^weir:   dns: [1-9] answered, 0 refused$'
	x_json "$T/ev1.jsonl" '.[0].op == "run-start" and .[-1].op == "run-end" and
		.[-1].exit == 3 and .[-1].decisions.deny == 1'
	x_json "$T/ev1.jsonl" 'map(select(.verdict == "deny")) | length == 1 and
		(.[0] | .dst == "192.0.2.11" and .port == 80 and .comm == "netprobe" and
		 .rule == "default")'
	x_json "$T/ev1.jsonl" 'map(select(.op == "connect4" and .dst == "192.0.2.10")) | length == 1
		and .[0].domain == "allowed.test" and .[0].reason == "learned-from-dns"'
	x_json "$T/ev1.jsonl" 'map(select(.op == "dns" and .name == "allowed.test")) | length >= 1'
	x_json "$T/ev1.jsonl" '(.[0].cgroup_id) as $id | map(select(.cgroup_id)) |
		all(.cgroup_id == $id)'
	t_end
}

test_dns_refused() {
	t_begin "through the daemon: a name the policy does not allow is refused, said once"
	run_weir -p "$P" -- sh -c 'getent hosts other.test; getent hosts allowed.test'
	x_rc 0
	x_out "192.0.2.10      allowed.test"
	x_err_has '^weir: refused dns A other\.test \(getent pid [0-9]+\)$'
	x_err_has '^weir:   dns: [0-9]+ answered, [1-9][0-9]* refused$'
	t_end
}

test_exit_codes() {
	local n
	t_begin "through the daemon: 126, 127, 128+N, and 125 for a bad policy before any attach"
	printf 'echo hi\n' >"$T/noexec"
	chmod 644 "$T/noexec"
	run_weir -q -p "$P" -- "$T/noexec"
	x_rc 126
	run_weir -q -p "$P" -- no-such-command-$$
	x_rc 127
	x_err_has "^weir: no-such-command-$$: command not found"
	run_weir -q -p "$P" -- sh -c 'kill -TERM $$'
	x_rc 143
	n=$(attaches)
	run_weir -p "$BAD" -- true
	x_rc 125
	x_err_has "^weir: $BAD:3:5: "
	[ "$(attaches)" = "$n" ] || t_why "the daemon was asked to attach a bad policy"
	t_end
}

test_dead_socket() {
	t_begin "a socket named and no daemon there: 125 naming it, the command never runs"
	: >"$T/ran"
	rm -f "$T/ran"
	run_cmd env WEIR_SOCKET="$T/none.sock" "$WEIR" run -- touch "$T/ran"
	x_rc 125
	x_err_has "^weir: no daemon answers on $T/none\.sock .*\\\$WEIR_SOCKET"
	[ -e "$T/ran" ] && t_why "the command ran"
	run_cmd "$WEIR" run --socket "$T/none.sock" -- touch "$T/ran"
	x_rc 125
	x_err_has "^weir: no daemon answers on $T/none\.sock .*--socket"
	[ -e "$T/ran" ] && t_why "the command ran"
	run_cmd "$WEIR" run --socket "$SOCK" --standalone -- true
	x_rc 125
	t_end
}

test_default_socket_absent() {
	t_begin "no \$WEIR_SOCKET, nothing on the default socket: standalone, -v says so"
	# A daemon of the machine's own may answer on the default path: hide
	# it, in this private mount namespace only.
	[ -d /run/weir ] && mount -t tmpfs weir-rctest /run/weir
	run_cmd env -u WEIR_SOCKET "$WEIR" run -v -p "$P" -- getent hosts allowed.test
	x_rc 0
	x_err_has '^weir: standalone: no daemon.s socket at /run/weir/weir\.sock$'
	x_err_lacks 'through the daemon'
	run_cmd "$WEIR" run -v --standalone -p "$P" -- true
	x_rc 0
	x_err_has '^weir: standalone \(--standalone\)$'
	mountpoint -q /run/weir && umount /run/weir
	t_end
}

test_ps_while_it_runs() {
	local pid
	t_begin "weir ps lists the run while it lasts, and not after"
	env --default-signal "$WEIR" run -q -p "$P" -- sleep 1 >/dev/null 2>"$T/ps.err" &
	pid=$!
	wait_ps "$pid" yes || t_why "weir ps never listed run-$pid"
	"$WEIR" ps --socket "$SOCK" | grep -q "run-$pid .*inline:" ||
		t_why "weir ps line: $("$WEIR" ps --socket "$SOCK" | grep "run-$pid")"
	wait "$pid"
	wait_ps "$pid" no || t_why "weir ps still lists run-$pid after it ended"
	t_end
}

# kill -9 of weir run: its command goes on, still enforced; weir cleanup
# ends it, and the daemon lets the attachment go with the cgroup.
test_kill9_run() {
	local i cg tok=k9$RANDOM n0 n1
	t_begin "kill -9 of weir run: the command stays enforced; gone after weir cleanup"
	# Its child dies with weir (PDEATHSIG); a grandchild lives on.
	env --default-signal "$WEIR" run -q -p "$P" -- sh -c '
		(while :; do "$0" tcp 192.0.2.11 80 "$1" >>"$2"; sleep 0.05; done) & wait' \
		"$NETPROBE" "$tok" "$T/k9.out" >/dev/null 2>"$T/k9.err" &
	ORPHAN=$!
	cg=$CG2/weir/run-$ORPHAN
	for ((i = 0; i < 50; i++)); do
		[ -s "$T/k9.out" ] && break
		sleep 0.1
	done
	kill -KILL "$ORPHAN"
	wait "$ORPHAN" 2>/dev/null
	n0=$(wc -l <"$T/k9.out")
	sleep 0.5
	n1=$(wc -l <"$T/k9.out")
	[ "$n1" -gt "$n0" ] || t_why "the command stopped trying ($n0 -> $n1 lines)"
	grep -qv '^EPERM$' "$T/k9.out" && t_why "a try was not EPERM: $(grep -v '^EPERM$' "$T/k9.out" | head -1)"
	x_not_arrived "$LOG" " $tok\$"
	ps_has "$ORPHAN" || t_why "weir ps does not list the orphaned run"
	"$WEIR" status | grep -qE "^run-$ORPHAN +STALE .*enforced \(daemon\)" ||
		t_why "weir status: $("$WEIR" status | grep "run-$ORPHAN")"
	"$WEIR" cleanup "run-$ORPHAN" >/dev/null 2>"$T/k9.clean" || t_why "weir cleanup: $(t_tail "$T/k9.clean")"
	[ -d "$cg" ] && t_why "$cg is still there"
	wait_ps "$ORPHAN" no || t_why "the daemon keeps the attachment of a gone cgroup"
	ls -d "$PINS"/att-* >/dev/null 2>&1 && t_why "pins left: $(ls -d "$PINS"/att-*)"
	ORPHAN=
	t_end
}

# kill -9 of the daemon: the run goes on enforced (its pins), weir run says
# it no longer sees the events, and exits with its command's status.
test_kill9_daemon() {
	local pid tok=d9$RANDOM
	t_begin "kill -9 of the daemon mid-run: still enforced, said, the command's status, the record marked incomplete"
	env --default-signal "$WEIR" run -q -p "$P" -e "$T/d9.json" -- sh -c '
		sleep 0.5; "$0" tcp 192.0.2.11 80 "$1"; exit 4' "$NETPROBE" "$tok" \
		>"$T/d9.out" 2>"$T/d9.err" &
	pid=$!
	wait_ps "$pid" yes || t_why "weir ps never listed run-$pid"
	kill -KILL "$DPID"
	e2e_wait_gone "$DPID" 50
	wait "$pid"
	RC=$? ERR=$T/d9.err
	x_rc 4
	grep -qx EPERM "$T/d9.out" || t_why "the probe got $(cat "$T/d9.out"), want EPERM"
	x_not_arrived "$LOG" " $tok\$"
	x_err_has "^weir: the daemon on $SOCK went away: sh stays enforced"
	x_err_has "^weir: the daemon on $SOCK did not detach "
	# What the daemon decided after it went away is in no record of the
	# run: the counts say so, never "0 lost".
	x_err_has "^weir: WARNING: these counts are incomplete: the daemon on $SOCK went away while sh ran"
	tail -n1 "$T/d9.json" | jq -e '.op == "run-end" and .incomplete == true' >/dev/null ||
		t_why "run-end not marked incomplete: $(tail -n1 "$T/d9.json")"
	# The next daemon finds the pins of a cgroup that is gone: removed.
	start_daemon
	wait_ps "$pid" no || t_why "the restarted daemon lists the gone run"
	ls -d "$PINS"/att-* >/dev/null 2>&1 && t_why "pins left: $(ls -d "$PINS"/att-*)"
	t_end
}

# A burst through the daemon (its event path: a reader thread copying the
# ring buffer into the pump, the pump's writer formatting for weir run's
# session, weir run writing its file): every decision is a line of weir
# run's events file, none lost, and the daemon's socket answers weir ps
# meanwhile, as weir status answers. The burst goes on (rounds of 25,000
# UDP connect()s from two processes) until both have answered, 200,000 at
# most: a weir run that reads as they come stays well within what its
# session keeps in the daemon (64 MiB, about 95,000 records), so it may
# delay the lines but must not lose one.
test_burst() {
	local i sum f=$T/burst.jsonl g=$T/burst.gen pid
	t_begin "a burst through the daemon: every decision in the events file, weir ps answers during it"
	rm -f "$f" "$g" "$T/burst.stop"
	env --default-signal "$WEIR" run -q -p "$BURSTP" -e "$f" -- sh -c '
		for i in 1 2 3 4 5 6 7 8; do
			[ -e "$1" ] && break
			"$0" 192.0.2.10 25000 2 || exit 9
		done' "$EVENTGEN" "$T/burst.stop" >"$g" 2>"$T/burst.err" &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$g" ] && break
		sleep 0.05
	done
	[ -s "$g" ] || t_why "no round of the burst ended in 5 s"
	# During the burst: the daemon's control socket answers (a bounded wait).
	timeout 20 "$WEIR" ps --socket "$SOCK" --json >"$T/burst.ps" 2>&1 ||
		t_why "weir ps did not answer during the burst: $(t_tail "$T/burst.ps")"
	jq -e --arg l "run-$pid" '(.attachments | any(.label == $l)) and .events_lost == 0' \
		"$T/burst.ps" >/dev/null || t_why "weir ps during the burst: $(cut -c1-300 "$T/burst.ps")"
	timeout 20 "$WEIR" status >"$T/burst.status" 2>&1 ||
		t_why "weir status did not answer during the burst: $(t_tail "$T/burst.status")"
	grep -qE "^run-$pid " "$T/burst.status" ||
		t_why "weir status during the burst does not list run-$pid"
	timeout 20 "$WEIR" status --json >"$T/burst.status.json" 2>&1
	jq -e --argjson p "$pid" '.runs | any(.pid == $p and .enforcement == "daemon" and
		.events_lost == 0)' "$T/burst.status.json" >/dev/null ||
		t_why "weir status --json during the burst: $(cut -c1-400 "$T/burst.status.json")"
	kill -0 "$pid" 2>/dev/null || t_why "the burst was over before weir ps and status answered"
	: >"$T/burst.stop"
	wait "$pid"
	RC=$? ERR=$T/burst.err
	x_rc 0
	sum=$(jq -s 'map(.decisions) | add' "$g")
	[ "${sum:-0}" -ge 25000 ] || t_why "the generator reported $sum decisions"
	# Every line whole JSON (jq reads them all), one per decision, none lost.
	x_json "$f" '.[0].op == "run-start" and .[-1].op == "run-end" and
		.[-1].lost == 0 and .[-1].decisions.allow == $n and (map(select(.op == "connect4" and
		.dst == "192.0.2.10" and .port == 9 and .verdict == "allow")) | length) == $n' \
		--argjson n "$sum"
	x_err_lacks 'lost'
	t_end
}

# A weir run that stops reading (SIGSTOP) during a burst: its records fill
# its own queue in the daemon (64 MiB, about 95,000), then are dropped and
# counted; the other end of the count is weir run's run-end and summary, and
# weir ps says so meanwhile. Every decision is a line or counted lost: none
# goes missing.
test_stopped_client() {
	local i sum lines lost f=$T/stop.jsonl g=$T/stop.gen pid
	t_begin "a weir run that stops reading: its records dropped once its queue is full, every one counted"
	rm -f "$f" "$g"
	env --default-signal "$WEIR" run -q -p "$BURSTP" -e "$f" -- sh -c '
		i=0; while [ ! -e "$1" ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i + 1)); done
		"$0" 192.0.2.10 300000 2' \
		"$EVENTGEN" "$T/stop.go" >"$g" 2>"$T/stop.err" &
	pid=$!
	wait_ps "$pid" yes || t_why "weir ps never listed run-$pid"
	kill -STOP "$pid"
	: >"$T/stop.go"
	for ((i = 0; i < 200; i++)); do
		[ -s "$g" ] && break
		sleep 0.1
	done
	[ -s "$g" ] || t_why "the generator did not end in 20 s"
	for ((i = 0; i < 100; i++)); do
		"$WEIR" ps --socket "$SOCK" >/dev/null 2>"$T/stop.ps" && grep -q lost "$T/stop.ps" && break
		sleep 0.1
	done
	grep -qE '^weir: [1-9][0-9]* audit events were lost since the daemon started' "$T/stop.ps" ||
		t_why "weir ps did not count the dropped records: $(t_tail "$T/stop.ps")"
	kill -CONT "$pid"
	wait "$pid"
	RC=$? ERR=$T/stop.err
	x_rc 0
	sum=$(jq .decisions "$g")
	lines=$(jq -s 'map(select(.op == "connect4")) | length' "$f")
	lost=$(tail -n1 "$f" | jq .lost)
	[ "${lost:-0}" -gt 0 ] || t_why "run-end counts no loss (lines $lines of $sum)"
	[ $((lines + lost)) = "$sum" ] || t_why "$lines lines + $lost lost != $sum decisions"
	x_err_has "^weir: WARNING: $lost audit events were lost"
	x_err_has '^weir: this run reads its audit events slower than they come'
	t_end
}

# One weir run reads its events slowly (stopped 0.4 s, then let run 0.05 s,
# over and over: it keeps taking from the daemon, never idle for the second
# that marks a client stopped) during a flood of its own; a second run,
# started once the daemon drops from the first, makes 20,000 decisions
# meanwhile and its command waits for every one of them to be a line of its
# events file before it exits. The daemon's one writer must not wait for
# the slow client (it did: then the ring buffer filled and the kernel lost
# the second run's events too): the slow run loses its own records
# (counted in its run-end, told on its stderr), the second's all arrive
# while it runs and its run-end counts none lost.
test_slow_client() {
	local i sum lines lost sum2 pid spid
	local f=$T/slow.jsonl g=$T/slow.gen f2=$T/quick.jsonl g2=$T/quick.gen
	t_begin "a weir run that reads slowly loses only its own records: another run's all arrive"
	rm -f "$f" "$g" "$f2" "$g2" "$T/slow.stop" "$T/slow.fast"
	env --default-signal "$WEIR" run -q -p "$BURSTP" -e "$f" -- sh -c '
		for i in $(seq 40); do
			[ -e "$1" ] && break
			"$0" 192.0.2.10 50000 2 || exit 9
		done' "$EVENTGEN" "$T/slow.stop" >"$g" 2>"$T/slow.err" &
	pid=$!
	wait_ps "$pid" yes || t_why "weir ps never listed run-$pid"
	(
		while [ ! -e "$T/slow.fast" ]; do
			kill -STOP "$pid"
			sleep 0.4
			kill -CONT "$pid"
			sleep 0.05
		done
	) &
	spid=$!
	# Until the slow run's queue is full and the daemon drops from it.
	for ((i = 0; i < 300; i++)); do
		"$WEIR" ps --socket "$SOCK" >/dev/null 2>"$T/slow.ps" && grep -q lost "$T/slow.ps" && break
		sleep 0.1
	done
	grep -q lost "$T/slow.ps" || t_why "the slow run's records were never dropped in 30 s"
	"$WEIR" run -q -p "$BURSTP" -e "$f2" -- sh -c '
		"$0" 192.0.2.10 20000 1 >"$2" || exit 9
		i=0
		while [ "$(grep -c "\"op\":\"connect4\"" "$1")" -lt 20000 ] && [ $i -lt 300 ]; do
			sleep 0.1; i=$((i + 1))
		done
		[ $i -lt 300 ]' "$EVENTGEN" "$f2" "$g2" 2>"$T/quick.err"
	RC=$? ERR=$T/quick.err
	x_rc 0
	sum2=$(jq .decisions "$g2")
	x_json "$f2" '.[-1].op == "run-end" and .[-1].lost == 0 and (map(select(.op == "connect4"
		and .verdict == "allow")) | length) == $n' --argjson n "${sum2:-0}"
	x_err_lacks 'lost|slower'
	kill -0 "$pid" 2>/dev/null ||
		t_why "the slow run's flood was over before the second run ended"
	: >"$T/slow.fast"
	: >"$T/slow.stop"
	wait "$spid"
	kill -CONT "$pid"
	wait "$pid"
	RC=$? ERR=$T/slow.err
	x_rc 0
	sum=$(jq -s 'map(.decisions) | add' "$g")
	lines=$(jq -s 'map(select(.op == "connect4")) | length' "$f")
	lost=$(tail -n1 "$f" | jq .lost)
	[ "${lost:-0}" -gt 0 ] || t_why "the slow run's run-end counts no loss (lines $lines of $sum)"
	[ $((lines + lost)) = "$sum" ] || t_why "slow run: $lines lines + $lost lost != $sum decisions"
	x_err_has "^weir: WARNING: $lost audit events were lost"
	x_err_has '^weir: this run reads its audit events slower than they come'
	t_end
}

# One weir_askers map serves every attachment of a daemon, and every
# resolver's port is in /proc/net/udp: a socket that run A's programs
# redirected to A's resolver asks run B's resolver directly for a name
# only B allows. B's resolver must not answer it, nor forward it.
test_other_runs_resolver() {
	local pa pb bpid port before
	pb=$(e2e_policy pb <<-EOF
		version: 1
		allow:
		  - domain: other.test
		    ports: [80]
	EOF
	)
	pa=$(e2e_policy pa <<-EOF
		version: 1
		allow:
		  - domain: allowed.test
		    ports: [80]
	EOF
	)
	cat >"$T/cross.py" <<-'EOF'
		import socket, struct, sys
		def q(name, qid):
		    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + b"".join(
		        bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		s.settimeout(2)
		s.sendto(q("allowed.test", 1), ("198.51.100.53", 53))  # its own resolver: an asker now
		try:
		    own = s.recv(512)[3] & 15
		except socket.timeout:
		    own = "none"
		s.sendto(q("other.test", 2), ("127.0.0.1", int(sys.argv[1])))
		try:
		    d = s.recv(512)
		    other = "rcode%d-answers%d" % (d[3] & 15, struct.unpack("!H", d[6:8])[0])
		except socket.timeout:
		    other = "none"
		print("own=%s other=%s" % (own, other))
	EOF
	chmod 644 "$T/cross.py"
	env --default-signal "$WEIR" run -q -p "$pb" -- sleep 10 >/dev/null 2>&1 &
	bpid=$!
	t_begin "through one daemon: run A's socket asking run B's resolver for a name only B allows gets nothing, and nothing is forwarded"
	wait_ps "$bpid" yes || t_why "weir ps never listed run-$bpid"
	port=$("$WEIR" ps --socket "$SOCK" --json |
		jq -r --arg l "run-$bpid" '.attachments[] | select(.label == $l) | .dns_port')
	[[ $port =~ ^[0-9]+$ ]] || t_why "run B's resolver port: '$port'"
	before=$(grep -c 'query\[A\] other.test' "$E2E_TMP/dnsmasq.log")
	run_weir -u nobody -p "$pa" -- /usr/bin/python3 "$T/cross.py" "$port"
	x_rc 0
	x_out "own=0 other=none"
	[ "$(grep -c 'query\[A\] other.test' "$E2E_TMP/dnsmasq.log")" = "$before" ] ||
		t_why "the upstream got run A's query for other.test"
	kill "$bpid" 2>/dev/null
	wait "$bpid" 2>/dev/null
	t_end
}

setup
test_burst
test_stopped_client
test_slow_client
test_allowed_and_denied
test_dns_refused
test_exit_codes
test_dead_socket
test_default_socket_absent
test_ps_while_it_runs
test_other_runs_resolver
test_kill9_run
test_kill9_daemon
echo "$T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" = 0 ]
