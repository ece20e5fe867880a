#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3, flows and upload budgets (docs/events.md "Close events",
# docs/policy.md "Upload budgets"): a client inside weir run sends and
# receives known byte counts over TCP and connected UDP to servers
# (tests/tools/flowpeer) in a private network namespace; the close events
# must say how much went each way, who connected, and for how long. Then an
# allow rule with `upload_budget: 1MiB` must stop uploads at the budget,
# however they are split: parallel connections, UDP, IPv4-mapped IPv6,
# reconnecting.
#
#   WEIR_BUILD=/abs/build bash tests/e2e/flows.sh      (root)
#   WEIR_E2E_DAEMON=1 ...: every weir run through a daemon of its own

# shellcheck disable=SC2016 # sh -c scripts and jq filters: single quotes on purpose
E2E_NAME=e2e-flows
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
FP=$WEIR_BUILD/bin/flowpeer
[ -x "$FP" ] || e2e_die "$FP missing: make build/bin/flowpeer"
SRV=192.0.2.1     # flows, and the budgeted destination
SRV6=2001:db8::1
OTHER=192.0.2.2   # another rule's destination, no budget
PORT=9000
BPORT=9001        # the budget tests' servers
BUDGET=1048576    # 1MiB

setup() {
	e2e_setup_lo "$SRV/32" "$OTHER/32" "$SRV6/128"
	e2e_start_dns flow.test,"$SRV","$SRV6"
	e2e_check_dns flow.test "$SRV"
	cat >"$T/named.yaml" <<-EOF
		version: 1
		allow:
		  - domain: flow.test
		    ports: [$PORT]
	EOF
	cat >"$T/probe.yaml" <<-EOF
		version: 1
		allow:
		  - domain: flow.test
	EOF
	cat >"$T/flows.yaml" <<-EOF
		version: 1
		allow:
		  - ip: $SRV
		    ports: [$PORT]
		  - ip: $SRV6
		    ports: [$PORT]
	EOF
	cat >"$T/budget.yaml" <<-EOF
		version: 1
		allow:
		  - ip: $SRV
		    ports: [$BPORT]
		    upload_budget: 1MiB
		  - ip: $OTHER
		    ports: [$BPORT]
	EOF
}

# serve NAME ADDR PORT REPLY UDPREPLY: a flowpeer server logging to $T/NAME.log.
serve() {
	local i pid
	: >"$T/$1.log"
	"$FP" serve "$T/$1.log" "$2" "$3" "$4" "$5" >"$T/$1.ready" 2>"$T/$1.err" &
	pid=$!
	E2E_PIDS+=("$pid")
	for ((i = 0; i < 50; i++)); do
		grep -qs '^ready$' "$T/$1.ready" && return 0
		e2e_dead "$pid" && break
		sleep 0.1
	done
	e2e_die "flowpeer server $1 did not start: $(cat "$T/$1.err")"
}

# lines LOG PROTO N: wait (10 s at most) for N lines of PROTO in LOG.
lines() {
	local i
	for ((i = 0; i < 100; i++)); do
		(($(grep -c "^$2 " "$1") >= $3)) && return 0
		sleep 0.1
	done
	return 1
}

# arrived LOG: the bytes the server counted, every connection and datagram.
arrived() {
	awk '{ n += $2 } END { print n + 0 }' "$1"
}

# close_of FILE PROTO DST: the close event of that flow (the first), compact.
close_of() {
	jq -c -s --arg p "$2" --arg d "$3" \
		'[.[] | select(.op == "close" and .proto == $p and .dst == $d)][0] // empty' "$1"
}

# near GOT WANT: within 5%.
near() {
	[ -n "$1" ] && (($1 * 100 >= $2 * 95 && $1 * 100 <= $2 * 105))
}

# x_close PROTO DST TX RX: the close event of that flow in $T/ev: counts
# within 5%, its process the one that connected, its duration plausible.
x_close() {
	local ev tx rx d cpid
	ev=$(close_of "$T/ev" "$1" "$2")
	[ -n "$ev" ] || {
		t_why "no close event for $1 $2"
		return
	}
	tx=$(jq -r .tx_bytes <<<"$ev")
	rx=$(jq -r .rx_bytes <<<"$ev")
	d=$(jq -r .duration_ns <<<"$ev")
	near "$tx" "$3" || t_why "$1 tx_bytes $tx, want $3 (5%)"
	near "$rx" "$4" || t_why "$1 rx_bytes $rx, want $4 (5%)"
	((d > 0 && d < RUN_TIMEOUT * 1000000000)) || t_why "$1 duration_ns $d"
	[ "$(jq -r .comm <<<"$ev")" = flowpeer ] || t_why "$1 close comm: $ev"
	cpid=$(jq -s --arg p "$1" --arg d "$2" '[.[] | select((.op == "connect4" or
		.op == "connect6") and .proto == $p and .dst == $d)][0].pid' "$T/ev")
	[ "$(jq -r .pid <<<"$ev")" = "$cpid" ] || t_why "$1 close pid is not the connect's ($cpid): $ev"
}

test_tcp_udp() {
	serve f4 "$SRV" "$PORT" 120000 500
	serve f6 "$SRV6" "$PORT" 70000 0
	t_begin "TCP: one close event, tx/rx within 5% of what the client sent and got"
	run_weir -p "$T/flows.yaml" -e "$T/ev" -- sh -c \
		"'$FP' tcp $SRV $PORT 300000 && '$FP' udp $SRV $PORT 60000 1200 &&
		 '$FP' tcp $SRV6 $PORT 250000"
	x_rc 0
	x_file_has "$OUT" '^sent 300000 received 120000$'
	x_close tcp "$SRV" 300000 120000
	x_json "$T/ev" '[.[] | select(.op == "close" and .proto == "tcp" and .dst == $d)] | length == 1
		and .[0].rule == "allow[0]" and (.[0].rule_origin | endswith("flows.yaml:3"))
		and .[0].reason == "allow-rule" and (.[0] | has("verdict") | not) and .[0].port == 9000
		and .[0].cgroup_id > 0' --arg d "$SRV"
	t_end

	t_begin "connected UDP: one close event, payload counted both ways"
	x_file_has "$OUT" '^sent 60000 received 25000$'
	x_close udp "$SRV" 60000 25000
	t_end

	t_begin "IPv6 TCP: the same"
	x_close tcp "$SRV6" 250000 70000
	t_end

	t_begin "close events are no decisions: not in the summary, no stderr line"
	x_json "$T/ev" '([.[] | select(.op == "connect4" or .op == "connect6")] | length) as $n
		| any(.[]; .op == "run-end" and .decisions.allow == $n)'
	x_err_lacks 'close'
	t_end

	t_begin "a destination reached by name: the close event names it"
	run_weir -p "$T/named.yaml" -e "$T/ev2" -- sh -c \
		"a=\$(getent ahostsv4 flow.test | head -n1 | cut -d' ' -f1); '$FP' tcp \$a $PORT 5000"
	x_rc 0
	x_json "$T/ev2" 'any(.[]; .op == "close" and .domain == "flow.test" and .tx_bytes == 5000
		and .rx_bytes == 120000 and .rule == "allow[0]")'
	t_end

	t_begin "a UDP socket that sent nothing (glibc's address probes) makes no close event"
	run_weir -p "$T/probe.yaml" -e "$T/ev3" -- getent ahosts flow.test
	x_rc 0
	x_json "$T/ev3" 'any(.[]; (.op == "connect4" or .op == "connect6") and .proto == "udp"
		and .port != 53 and .verdict == "allow")'
	x_json "$T/ev3" 'all(.[]; .op != "close")'
	t_end
}

test_budget() {
	serve b "$SRV" "$BPORT" 0 0
	serve o "$OTHER" "$BPORT" 0 0
	t_begin "upload_budget 1MiB: a 3 MB upload stops at the budget, one event says why"
	run_weir -p "$T/budget.yaml" -e "$T/bev" -- "$FP" tcp "$SRV" "$BPORT" 3000000
	lines "$T/b.log" tcp 1 || t_why "the server saw no end of the connection"
	got=$(arrived "$T/b.log")
	((got <= BUDGET && got >= BUDGET / 2)) || t_why "the server got $got bytes, budget $BUDGET"
	x_json "$T/bev" '[.[] | select(.reason == "upload-budget")] | length == 1
		and .[0].verdict == "deny" and .[0].rule == "allow[0]"
		and (.[0].rule_origin | endswith("budget.yaml:3")) and .[0].comm == "flowpeer"'
	x_err_has '^weir: denied tcp 192\.0\.2\.1:9001 \(flowpeer pid [0-9]+\): upload budget spent \[rule .*budget\.yaml:3\]$'
	x_json "$T/bev" 'any(.[]; .op == "close" and .tx_bytes <= 1048576)'
	t_end

	t_begin "... then a new connection is refused and another rule's destination still works"
	: >"$T/b.log"
	run_weir -p "$T/budget.yaml" -e "$T/bev2" -- sh -c \
		"'$FP' tcp $SRV $BPORT 1500000; '$FP' tcp $SRV $BPORT 100 && echo second-ok;
		 '$FP' udp $SRV $BPORT 1000 100 && echo udp-ok; '$FP' tcp $OTHER $BPORT 3000000"
	x_file_has "$OUT" '^sent 3000000 received 0$'
	x_err_has 'flowpeer: Operation not permitted'
	! grep -q -- '-ok$' "$OUT" || t_why "sent after the budget was spent: $(grep -- '-ok$' "$OUT")"
	lines "$T/o.log" tcp 1 && [ "$(arrived "$T/o.log")" = 3000000 ] ||
		t_why "the other destination got $(arrived "$T/o.log") of 3000000"
	lines "$T/b.log" tcp 1
	got=$(arrived "$T/b.log")
	((got <= BUDGET)) || t_why "the budgeted server got $got bytes"
	x_json "$T/bev2" '[.[] | select(.reason == "upload-budget")] | length == 1'
	t_end
}

# Everything at once, then one by one: the sum of what arrived is the bound.
test_budget_attacks() {
	t_begin "adversarial: parallel connections, UDP, IPv4-mapped, reconnects stay within the budget"
	: >"$T/b.log"
	run_weir -p "$T/budget.yaml" -e "$T/bev3" -- sh -c "
		for i in 1 2 3 4 5 6; do '$FP' tcp $SRV $BPORT 400000 & done
		'$FP' udp $SRV $BPORT 400000 1400 & '$FP' tcp --v6sock $SRV $BPORT 400000 & wait
		for i in 1 2 3 4 5 6 7 8 9 10; do '$FP' tcp $SRV $BPORT 50000; '$FP' udp $SRV $BPORT 1400 1400;
		  '$FP' udp --v6sock $SRV $BPORT 1400 1400; done"
	e2e_sleep_ms 300 # the last resets reach the server
	got=$(arrived "$T/b.log")
	((got <= BUDGET)) || t_why "the server got $got bytes, budget $BUDGET"
	((got >= BUDGET / 2)) || t_why "only $got bytes arrived: the budget was not what stopped them"
	x_json "$T/bev3" '[.[] | select(.reason == "upload-budget")] | length == 1'
	t_end

	t_begin "two attachments never share a budget: two runs at once each get their own"
	: >"$T/b.log"
	"$WEIR" run -p "$T/budget.yaml" -- "$FP" tcp "$SRV" "$BPORT" 900000 >"$T/r1.out" 2>&1 &
	r1=$!
	run_weir -p "$T/budget.yaml" -e "$T/bev4" -- "$FP" tcp "$SRV" "$BPORT" 900000
	wait "$r1" || t_why "the other run failed: $(t_tail "$T/r1.out")"
	lines "$T/b.log" tcp 2
	[ "$(arrived "$T/b.log")" = 1800000 ] ||
		t_why "the server got $(arrived "$T/b.log") of 2 x 900000 ($(tr '\n' ' ' <"$T/b.log"))"
	x_json "$T/bev4" 'all(.[]; .reason != "upload-budget")'
	t_end
}

# Unconnected UDP (docs/events.md "Close events"): an allowed destination is
# reported once per socket (its first datagram's sendmsg event), its
# datagrams counted into one close event; a denied one, every datagram.
test_udests() {
	cat >"$T/udests.yaml" <<-EOF
		version: 1
		allow:
		  - ip: $SRV
		    ports: [$PORT, 9002]
	EOF
	t_begin "unconnected UDP: one event per allowed destination, its datagrams in its close event; denied: each"
	run_weir -p "$T/udests.yaml" -e "$T/evu" -- /usr/bin/python3 -c "
import errno, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(4): s.sendto(b'weir-probe', ('$SRV', $PORT))
for i in range(3): s.sendto(b'weir-probe', ('$SRV', 9002))
refused = 0
for i in range(2):
    try: s.sendto(b'weir-probe', ('$OTHER', $PORT))
    except PermissionError: refused += 1
s.close()
print('refused', refused)"
	x_rc 0
	x_file_has "$OUT" '^refused 2$'
	x_json "$T/evu" '[.[] | select(.op == "sendmsg4" and .verdict == "allow" and .dst == $d)]
		| length == 2 and (map(.port) | sort) == [9000, 9002]' --arg d "$SRV"
	x_json "$T/evu" '[.[] | select(.op == "sendmsg4" and .verdict == "deny" and .dst == $o)]
		| length == 2' --arg o "$OTHER"
	x_json "$T/evu" '[.[] | select(.op == "close" and .dst == $d and .proto == "udp")]
		| length == 2 and (map([.port, .datagrams]) | sort) == [[9000, 4], [9002, 3]]
		and all(.[]; .comm == "python3" and .rule == "allow[0]" and .reason == "allow-rule"
		and (has("tx_bytes") | not) and .duration_ns >= 0)' --arg d "$SRV"
	x_json "$T/evu" '([.[] | select(.op == "sendmsg4" and .verdict == "allow")][0].pid) as $p
		| all(.[]; .op != "close" or .pid == $p)'
	x_json "$T/evu" 'any(.[]; .op == "run-end" and .decisions.allow == 2 and .decisions.deny == 2)'
	t_end
}

test_check() {
	t_begin "a bad upload_budget: FILE:LINE:COL and what units there are"
	printf 'version: 1\nallow:\n  - ip: 192.0.2.1\n    upload_budget: 5XB\n' >"$T/bad.yaml"
	run_cmd "$WEIR" policy check "$T/bad.yaml"
	x_rc 2
	x_err_has "bad\\.yaml:4:20: allow\\[0\\]: upload_budget: bad size '5XB'.*KiB, MiB, GiB"
	t_end
}

setup
test_tcp_udp
test_budget
test_budget_attacks
test_udests
test_check
e2e_finish
