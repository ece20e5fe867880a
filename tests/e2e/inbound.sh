#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3, inbound (docs/policy.md, "Inbound"): a server inside `weir run`
# (tests/tools/sink, HTTP over TCP and an echo over UDP) and clients outside
# bound to the peer addresses of a private network namespace. Every policy
# says `loopback: deny` and allows no egress to the clients, so an answer
# can only come through the inbound rules.
#
#   WEIR_BUILD=/abs/build bash tests/e2e/inbound.sh      (root)

E2E_NAME=e2e-inbound
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
SRV=192.0.2.1      # the server inside
PEER=198.51.100.7  # a peer the rules permit
OTHER=203.0.113.9  # a peer they do not
SRV6=2001:db8::1
PEER6=2001:db8::7
PORT=8080
LOG=$T/sink.log
W=        # weir's pid while a server runs
WERR=$T/weir.err
EV=$T/events.json

setup() {
	e2e_setup_lo "$SRV/32" "$PEER/32" "$OTHER/32" "$SRV6/128" "$PEER6/128"
	e2e_start_dns web.test,"$SRV"
}

# serve POLICY ADDR:PORT...: weir run with the sink inside, in the
# background; returns once it listens.
serve() {
	local pol=$1 i
	shift
	: >"$LOG"
	rm -f "$EV" "$T/ready"
	env --default-signal "$WEIR" run -p "$pol" --events "$EV" -- \
		"$SINK" --http --echo "$LOG" "$@" >"$T/ready" 2>"$WERR" &
	W=$!
	WEIR_RUNS=$((WEIR_RUNS + 1))
	for ((i = 0; i < 50; i++)); do
		grep -qs '^ready$' "$T/ready" && return 0
		e2e_dead "$W" && break
		sleep 0.1
	done
	e2e_die "the server inside weir run did not start: $(t_tail "$WERR")"
}

# unserve: stop it (weir passes SIGTERM on), keep its stderr in $WERR.
unserve() {
	kill -TERM "$W" 2>/dev/null
	e2e_wait_gone "$W" 50 || kill -KILL "$W" 2>/dev/null
	wait "$W" 2>/dev/null
	[ -e "$CG2/weir/run-$W" ] && LEFTOVER+=("$CG2/weir/run-$W")
	W=
}

# ask_http SRC URL: curl from SRC; RC and OUT as run_cmd sets them.
ask_http() {
	run_cmd curl -sS -m 2 --interface "$1" "$2"
}

# ask_udp SRC ADDR TOKEN: a datagram from SRC, waiting for the echo.
ask_udp() {
	run_cmd "$NETPROBE" --from "$1" udpr "$2" "$PORT" "$3"
}

x_weir_err_has() {
	grep -qE -- "$1" "$WERR" || t_why "weir's stderr lacks /$1/ (stderr: $(t_tail "$WERR" 4))"
}

test_rules() {
	local pol
	pol=$(e2e_policy rules <<-EOF
		version: 1
		loopback: deny
		inbound:
		  - ip: $PEER
		    ports: [$PORT]
		  - ip: $PEER6
		    ports: [$PORT]
	EOF
	)
	serve "$pol" "$SRV:$PORT" "[$SRV6]:$PORT"

	t_begin "inbound rules: TCP from the permitted peer gets the server's answer"
	ask_http "$PEER" "http://$SRV:$PORT/permitted"
	x_rc 0
	x_out ok
	x_arrived "$LOG" "^tcp $SRV:$PORT GET /permitted "
	t_end

	t_begin "inbound rules: TCP from another peer is refused, nothing arrives"
	ask_http "$OTHER" "http://$SRV:$PORT/other"
	[ "$RC" = 28 ] || t_why "curl exit $RC, want 28 (timeout): $(t_tail "$ERR")"
	x_not_arrived "$LOG" "/other"
	t_end

	t_begin "inbound rules: UDP from the permitted peer gets the echo"
	ask_udp "$PEER" "$SRV" udp-permitted
	x_rc 0
	x_arrived "$LOG" "^udp $SRV:$PORT udp-permitted$"
	t_end

	t_begin "inbound rules: UDP from another peer is dropped before the server sees it"
	ask_udp "$OTHER" "$SRV" udp-other
	x_rc 2
	x_out ETIMEDOUT
	x_not_arrived "$LOG" "udp-other"
	t_end

	t_begin "inbound rules: IPv6 peers, TCP and UDP"
	ask_http "$PEER6" "http://[$SRV6]:$PORT/v6"
	x_rc 0
	x_out ok
	ask_udp "$PEER6" "$SRV6" udp-v6
	x_rc 0
	x_arrived "$LOG" "^udp \[$SRV6\]:$PORT udp-v6$"
	t_end

	unserve
	t_begin "inbound rules: refusals on stderr, in the summary and in the events"
	x_weir_err_has "^weir: refused inbound tcp from $OTHER:[0-9]+ to port $PORT$"
	x_weir_err_has "^weir: refused inbound udp from $OTHER:[0-9]+ to port $PORT$"
	x_weir_err_has "^weir:   denied +tcp +inbound from $OTHER to port $PORT +x1$"
	grep -q "$PEER" "$WERR" && t_why "the permitted peer was reported: $(grep "$PEER" "$WERR")"
	x_json "$EV" 'map(select(.op == "inbound")) | length == 2 and
		all(.verdict == "deny" and .src == "'"$OTHER"'" and .port == '"$PORT"' and
		    .src_port > 0 and .reason == "no-matching-rule" and .rule == "default")'
	x_json "$EV" 'map(select(.op == "run-end"))[0].decisions.deny == 2'
	t_end
}

# No inbound: section: loopback peers only (the browser on the same machine
# reaches an agent's dev server), everyone else refused.
test_default() {
	local pol
	pol=$(e2e_policy default <<-EOF
		version: 1
		loopback: deny
	EOF
	)
	serve "$pol" "0.0.0.0:$PORT"

	t_begin "no inbound section: a loopback peer reaches a server on 127.0.0.2"
	ask_http 127.0.0.1 "http://127.0.0.2:$PORT/local"
	x_rc 0
	x_out ok
	ask_udp 127.0.0.1 127.0.0.2 udp-local
	x_rc 0
	t_end

	t_begin "no inbound section: a peer elsewhere is refused, TCP and UDP"
	ask_http "$PEER" "http://$SRV:$PORT/elsewhere"
	[ "$RC" = 28 ] || t_why "curl exit $RC, want 28 (timeout)"
	ask_udp "$PEER" "$SRV" udp-elsewhere
	x_out ETIMEDOUT
	x_not_arrived "$LOG" "elsewhere"
	t_end
	unserve
	t_begin "no inbound section: the refusals name the default"
	x_weir_err_has "^weir: refused inbound tcp from $PEER:[0-9]+ to port $PORT$"
	grep -q "denied tcp 127.0.0" "$WERR" && t_why "the loopback answer was denied"
	t_end
}

test_any() {
	local pol
	pol=$(e2e_policy any <<-EOF
		version: 1
		loopback: deny
		inbound: any
	EOF
	)
	serve "$pol" "$SRV:$PORT"
	t_begin "inbound: any: every peer gets answers, TCP and UDP"
	ask_http "$OTHER" "http://$SRV:$PORT/any"
	x_rc 0
	x_out ok
	ask_udp "$OTHER" "$SRV" udp-any
	x_rc 0
	t_end
	unserve
	t_begin "inbound: any: nothing refused or denied"
	x_weir_err_has "^weir: summary: [0-9]+ allowed, 0 denied$"
	t_end
}

test_audit() {
	local pol
	pol=$(e2e_policy audit <<-EOF
		version: 1
		mode: audit
		loopback: deny
		inbound: []
	EOF
	)
	serve "$pol" "$SRV:$PORT"
	t_begin "audit: an inbound peer nobody permitted gets in, and it is said"
	ask_http "$OTHER" "http://$SRV:$PORT/audit"
	x_rc 0
	unserve
	x_weir_err_has "^weir: would refuse inbound tcp from $OTHER:[0-9]+ to port $PORT$"
	x_json "$EV" 'any(.op == "inbound" and .verdict == "would-deny")'
	t_end
}

test_check() {
	local pol
	pol=$(e2e_policy check <<-EOF
		version: 1
		inbound:
		  - cidr: 198.51.100.0/24
		    ports: [8080, 9000-9100]
		    proto: tcp
	EOF
	)
	t_begin "weir policy check shows the inbound rules"
	run_cmd "$WEIR" policy check "$pol"
	x_rc 0
	x_file_has "$OUT" '^.*/check\.yaml:3: inbound\[0\]: cidr 198\.51\.100\.0/24 ports 8080,9000-9100 proto tcp$'
	x_file_has "$OUT" '; inbound: 1 IPv4 prefix, 0 IPv6 prefixes$'
	t_end

	pol=$(e2e_policy badname <<-EOF
		version: 1
		inbound:
		  - domain: ci.example.com
	EOF
	)
	t_begin "an inbound rule naming a domain: FILE:LINE:COL, exit 2 (run: 125)"
	run_cmd "$WEIR" policy check "$pol"
	x_rc 2
	x_err_has "badname\.yaml:3:13: inbound\[0\]: domain: an inbound rule names its peers by address"
	run_weir -p "$pol" -- true
	x_rc 125
	x_err_has "badname\.yaml:3:13: inbound\[0\]: domain:"
	t_end
}

test_no_leftover_cgroups() {
	local IFS=';'
	if ((${#LEFTOVER[@]})); then
		t_not_ok "inbound no weir cgroup left after any of $WEIR_RUNS runs" "${LEFTOVER[*]}"
	else
		t_ok "inbound no weir cgroup left after any of $WEIR_RUNS runs"
	fi
}

main() {
	local start=$SECONDS
	setup
	test_rules
	test_default
	test_any
	test_audit
	test_check
	test_no_leftover_cgroups
	echo "# $((SECONDS - start)) s, $WEIR_RUNS weir runs"
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" = 0 ]
}

main
