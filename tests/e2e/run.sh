#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3: end to end. The real build/weir against real servers (sink) and a
# real resolver (dnsmasq), all inside private network and mount namespaces
# this script creates for itself.
#
#   sudo WEIR_BUILD=$PWD/build bash tests/e2e/run.sh      (or: sudo make test-e2e)
#
# Prints "ok - NAME" / "not ok - NAME: WHY" per check and "N passed, N failed";
# exits 1 if anything failed. E2E_KEEP=1 keeps the temp dir (logs, events).
#
# The test hosts (all on the namespace's lo):
#   192.0.2.1 (.9 .10 .11)  198.51.100.7  169.254.169.254  2001:db8::1 (::2)
#   127.0.0.1, ::1
# each with a sink on TCP+UDP ports 80, 8080, 8100, 8101, 9000; dnsmasq on
# 127.0.0.53 knows allowed.test (192.0.2.10, 2001:db8::1) and other.test
# (192.0.2.11). Every probe carries a payload token of its own, so "did it
# arrive" is a grep for that token in the sink's log.

# shellcheck disable=SC2016 # jq filters and sh -c scripts: single quotes on purpose
E2E_NAME=e2e
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# A setup failure is a failed test, never a skip.
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
LOG=$T/sink.log
CURL=(curl -sS --noproxy '*' --max-time 5)

setup() {
	local a p addrs=()
	e2e_setup_lo 192.0.2.1/24 192.0.2.9/32 192.0.2.10/32 192.0.2.11/32 198.51.100.7/32 \
		169.254.169.254/32 2001:db8::1/128 2001:db8::2/128
	for a in 192.0.2.1 192.0.2.9 192.0.2.10 192.0.2.11 198.51.100.7 169.254.169.254 \
		'[2001:db8::1]' '[2001:db8::2]'; do
		for p in 80 8080 8100 8101 9000; do
			addrs+=("$a:$p")
		done
	done
	e2e_start_sink sink --http "$LOG" "${addrs[@]}" 127.0.0.1:9000 '[::1]:9000'
	e2e_start_dns allowed.test,192.0.2.10,2001:db8::1 other.test,192.0.2.11
	e2e_check_dns allowed.test 192.0.2.10
	e2e_check_dns other.test 192.0.2.11

	# asme PIDFILE CMD...: write our pid, then become CMD (same pid), so a
	# test knows the pid an event must carry.
	printf '#!/bin/sh\necho $$ > "$1"\nshift\nexec "$@"\n' >"$T/asme"
	chmod 755 "$T/asme"

	P_NONE=$(e2e_policy none <<-EOF
		version: 1
		loopback: deny
	EOF
	)
	P_ONE=$(e2e_policy one <<-EOF
		version: 1
		name: one-port
		loopback: deny
		allow:
		  - ip: 192.0.2.1
		    ports: [8080]
		    proto: tcp
	EOF
	)
}

# probe NAME WANT [WEIR-OPTS...] -- [NETPROBE-OPTS...] MODE ADDR PORT
# One weir run of one netprobe, which sends a fresh token. WANT ok: exit 0,
# "ok", the token arrived. WANT EPERM: exit 1, "EPERM", the token did not
# arrive, weir printed a denial.
PROBE_N=0
probe() {
	local name=$1 want=$2 wopts=() tok mode proto
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		wopts+=("$1")
		shift
	done
	shift
	PROBE_N=$((PROBE_N + 1))
	tok=tok$PROBE_N-$RANDOM
	for mode in "$@"; do
		case $mode in tcp) proto=tcp ;; udp | udpc) proto=udp ;; esac
	done
	t_begin "$name"
	if [ -n "${PROBE_RESOLVE:-}" ]; then
		# Look the name up first: weir learns an allowed name's addresses
		# from the answers its resolver relays.
		run_weir "${wopts[@]}" -- sh -c 'getent ahosts "$0" >/dev/null; exec "$@"' \
			"$PROBE_RESOLVE" "$NETPROBE" "$@" "$tok"
	else
		run_weir "${wopts[@]}" -- "$NETPROBE" "$@" "$tok"
	fi
	x_out "$want"
	if [ "$want" = ok ]; then
		x_rc 0
		x_arrived "$LOG" "^$proto [^ ]+ $tok\$"
	else
		x_rc 1
		x_not_arrived "$LOG" " $tok\$"
		if [ "${*: -3:1}" = udpc ]; then
			# A refused UDP connect() sent nothing: no denial, -v says it.
			x_err_lacks "^weir: denied"
			[[ " ${wopts[*]} " == *" -v "* ]] &&
				x_err_has "^weir: refused udp connect to [^ ]+ \(netprobe pid [0-9]+\): nothing sent$"
		else
			x_err_has "^weir: denied $proto "
		fi
	fi
	t_end
}

# 1: curl to an allowed IP:port gets its answer; the server saw the request.
test_allowed_curl() {
	t_begin "1 curl to an allowed ip:port gets HTTP 200"
	run_weir -p "$P_ONE" -- "${CURL[@]}" -o "$T/body1" -w '%{http_code}' \
		http://192.0.2.1:8080/t1-allowed
	x_rc 0
	x_out 200
	x_file_has "$T/body1" '^ok$'
	x_arrived "$LOG" '^tcp 192\.0\.2\.1:8080 GET /t1-allowed HTTP/1\.1$'
	t_end
}

# 2: a destination the policy does not name: EPERM, curl says 7, nothing sent.
# weir's lines are matched without ^ where curl writes too: curl writes its
# error a byte at a time to the same stderr, so weir's whole line may land
# after curl's first byte (seen in the 6.1 guest: "cweir: denied ...").
test_denied_curl() {
	t_begin "2 curl to a denied destination fails (7), nothing arrives, denial printed"
	run_weir -p "$P_ONE" -- "${CURL[@]}" http://198.51.100.7:80/t2-denied
	x_rc 7
	x_not_arrived "$LOG" 'GET /t2-denied '
	x_err_has 'weir: denied tcp 198\.51\.100\.7:80 \(curl pid [0-9]+\)$'
	t_end
}

# 3: a domain rule: curl's lookup goes to weir's resolver (whatever server
# it asks), which forwards allowed names to dnsmasq and learns the answer.
test_domain() {
	local pol
	pol=$(
		e2e_policy domain <<-EOF
			version: 1
			loopback: deny
			allow:
			  - domain: allowed.test
			    ports: [80]
		EOF
	)
	t_begin "3 domain rule: curl http://allowed.test/ works (DNS through weir's resolver)"
	run_weir -p "$pol" -e "$T/ev3" -- "${CURL[@]}" -o /dev/null -w '%{http_code}' \
		http://allowed.test/t3-allowed
	x_rc 0
	x_out 200
	x_arrived "$LOG" '^tcp (192\.0\.2\.10|\[2001:db8::1\]):80 GET /t3-allowed HTTP/1\.1$'
	x_json "$T/ev3" 'any(.[]; .verdict == "allow" and .port == 80 and .domain == "allowed.test"
		and (.dst == "192.0.2.10" or .dst == "2001:db8::1") and .rule == "allow[0]" and .comm == "curl")'
	x_json "$T/ev3" 'any(.[]; .verdict == "allow" and .dst == "127.0.0.53" and .port == 53
		and .reason == "dns-to-weir-resolver" and .proto == "udp" and .comm == "curl")'
	x_json "$T/ev3" 'any(.[]; .op == "dns" and .name == "allowed.test" and .verdict == "allow"
		and .rule == "allow[0]" and .comm == "curl" and .server == "127.0.0.53")'
	x_file_has "$T/dnsmasq.log" 'query\[A\] allowed\.test from 127\.'
	t_end

	t_begin "3 domain rule: other.test does not resolve (REFUSED), its address is denied"
	run_weir -p "$pol" -e "$T/ev3b" -- sh -c "${CURL[*]} http://other.test/t3-other; \
		echo curl=\$?; ${CURL[*]} http://192.0.2.11/t3-other-ip; echo curl=\$?"
	x_rc 0
	x_out "$(printf 'curl=6\ncurl=7')"
	x_not_arrived "$LOG" 'GET /t3-other'
	x_err_has 'weir: refused dns A other\.test \(curl pid [0-9]+\)$'
	x_err_has 'weir: denied tcp 192\.0\.2\.11:80 \(curl pid [0-9]+\)$'
	x_json "$T/ev3b" 'any(.[]; .op == "dns" and .name == "other.test" and .verdict == "deny"
		and .rcode == "REFUSED" and .reason == "name-not-allowed")'
	x_json "$T/ev3b" 'any(.[]; .verdict == "deny" and .dst == "192.0.2.11" and .port == 80
		and (has("domain") | not))'
	t_end
}

# 4: netprobe for what curl cannot do: UDP both ways, v6, IPv4-mapped,
# AF_UNSPEC, port ranges, deny over allow.
test_netprobe() {
	local pol
	pol=$(
		e2e_policy probe <<-EOF
			version: 1
			loopback: deny
			allow:
			  - cidr: 192.0.2.0/24
			    ports: [8000-8100]
			  - ip: 2001:db8::1
			    ports: [80]
			    proto: tcp
			deny:
			  - ip: 192.0.2.9
		EOF
	)
	probe "4 udp sendto to an allowed address" ok -p "$pol" -- udp 192.0.2.1 8080
	probe "4 udp sendto to a denied address: EPERM" EPERM -p "$pol" -- udp 198.51.100.7 8080
	probe "4 connected udp to an allowed address" ok -p "$pol" -- udpc 192.0.2.1 8080
	probe "4 connected udp to a denied address: EPERM" EPERM -p "$pol" -- udpc 198.51.100.7 8080
	probe "4 connected udp, -v: the refused connect sent nothing" EPERM -v -p "$pol" -- \
		udpc 198.51.100.7 8080
	probe "4 tcp to allowed [2001:db8::1]:80" ok -p "$pol" -- tcp 2001:db8::1 80
	probe "4 tcp to denied [2001:db8::2]:80: EPERM" EPERM -p "$pol" -- tcp 2001:db8::2 80
	probe "4 udp to [2001:db8::1]:80 (rule is tcp only): EPERM" EPERM -p "$pol" -- udp 2001:db8::1 80
	probe "4 v6 socket, IPv4-mapped denied address (tcp): EPERM" EPERM -p "$pol" -- \
		--v6sock tcp 198.51.100.7 8080
	probe "4 v6 socket, IPv4-mapped denied address (udp): EPERM" EPERM -p "$pol" -- \
		--v6sock udp 198.51.100.7 8080
	probe "4 v6 socket, IPv4-mapped allowed address (tcp) arrives" ok -p "$pol" -- \
		--v6sock tcp 192.0.2.1 8080
	probe "4 v6 socket, IPv4-mapped allowed address (udp) arrives" ok -p "$pol" -- \
		--v6sock udp 192.0.2.1 8080
	probe "4 udp sendto with AF_UNSPEC to a denied address: EPERM" EPERM -p "$pol" -- \
		--unspec udp 198.51.100.7 8080
	probe "4 udp sendto with AF_UNSPEC to an allowed address" ok -p "$pol" -- \
		--unspec udp 192.0.2.1 8080
	probe "4 port range 8000-8100: 8080 allowed" ok -p "$pol" -- tcp 192.0.2.1 8080
	probe "4 port range 8000-8100: 8100 allowed" ok -p "$pol" -- tcp 192.0.2.1 8100
	probe "4 port range 8000-8100: 8101 EPERM" EPERM -p "$pol" -- tcp 192.0.2.1 8101
	probe "4 deny beats allow: 192.0.2.9 (tcp) EPERM" EPERM -p "$pol" -- tcp 192.0.2.9 8080
	probe "4 deny beats allow: 192.0.2.9 (udp) EPERM" EPERM -p "$pol" -- udp 192.0.2.9 8080
}

# 5: --allow, in each of its forms, allows what it names and nothing more.
test_allow_args() {
	probe "5 baseline: the empty policy denies 192.0.2.1:8080" EPERM -p "$P_NONE" -- \
		tcp 192.0.2.1 8080

	probe "5 -a 192.0.2.1:8080 allows it (tcp)" ok -p "$P_NONE" -a 192.0.2.1:8080 -- \
		tcp 192.0.2.1 8080
	probe "5 -a 192.0.2.1:8080 allows it (udp)" ok -p "$P_NONE" -a 192.0.2.1:8080 -- \
		udp 192.0.2.1 8080
	probe "5 -a 192.0.2.1:8080: other port EPERM" EPERM -p "$P_NONE" -a 192.0.2.1:8080 -- \
		tcp 192.0.2.1 8101
	probe "5 -a 192.0.2.1:8080: other address EPERM" EPERM -p "$P_NONE" -a 192.0.2.1:8080 -- \
		tcp 192.0.2.10 8080

	PROBE_RESOLVE=allowed.test probe "5 -a allowed.test:80 allows 192.0.2.10:80" ok -p "$P_NONE" -a allowed.test:80 -- \
		tcp 192.0.2.10 80
	PROBE_RESOLVE=allowed.test probe "5 -a allowed.test:80 allows [2001:db8::1]:80" ok -p "$P_NONE" -a allowed.test:80 -- \
		tcp 2001:db8::1 80
	PROBE_RESOLVE=allowed.test probe "5 -a allowed.test:80: other port EPERM" EPERM -p "$P_NONE" -a allowed.test:80 -- \
		tcp 192.0.2.10 8080
	probe "5 -a allowed.test:80: other.test's address EPERM" EPERM -p "$P_NONE" \
		-a allowed.test:80 -- tcp 192.0.2.11 80

	probe "5 -a [2001:db8::1]:80 allows it" ok -p "$P_NONE" -a '[2001:db8::1]:80' -- \
		tcp 2001:db8::1 80
	probe "5 -a [2001:db8::1]:80: other port EPERM" EPERM -p "$P_NONE" -a '[2001:db8::1]:80' -- \
		tcp 2001:db8::1 8080
	probe "5 -a [2001:db8::1]:80: other v6 address EPERM" EPERM -p "$P_NONE" \
		-a '[2001:db8::1]:80' -- tcp 2001:db8::2 80
	probe "5 -a [2001:db8::1]:80: allowed.test's v4 address EPERM" EPERM -p "$P_NONE" \
		-a '[2001:db8::1]:80' -- tcp 192.0.2.10 80

	t_begin "5 -a https://web.test: 125, a URL is not a rule, suggests web.test:443"
	run_weir -p "$P_NONE" -a https://web.test -- sh -c 'echo ran'
	x_rc 125
	x_out ''
	x_err_has "^weir: --allow 'https://web.test': a URL is not a rule; write web\.test:443$"
	t_end

	t_begin "5 events name the --allow rule"
	run_weir -p "$P_NONE" -a 192.0.2.1:8080 -e "$T/ev5" -- "$NETPROBE" tcp 192.0.2.1 8080 t5-ev
	x_rc 0
	x_json "$T/ev5" 'any(.[]; .verdict == "allow" and .rule == "--allow[0]"
		and .reason == "allow-rule")'
	t_end
}

# 6: loopback: deny really denies 127/8, ::1 and 0.0.0.0 (which the kernel
# turns into a loopback connection); loopback: allow allows them.
test_loopback() {
	local allow
	allow=$(
		e2e_policy lo-allow <<-EOF
			version: 1
			loopback: allow
		EOF
	)
	probe "6 loopback: deny: tcp 127.0.0.1:9000 EPERM" EPERM -p "$P_NONE" -- tcp 127.0.0.1 9000
	probe "6 loopback: deny: udp 127.0.0.1:9000 EPERM" EPERM -p "$P_NONE" -- udp 127.0.0.1 9000
	probe "6 loopback: deny: tcp [::1]:9000 EPERM" EPERM -p "$P_NONE" -- tcp ::1 9000
	probe "6 loopback: deny: tcp 0.0.0.0:9000 EPERM" EPERM -p "$P_NONE" -- tcp 0.0.0.0 9000
	probe "6 loopback: allow: tcp 127.0.0.1:9000 arrives" ok -p "$allow" -- tcp 127.0.0.1 9000
	probe "6 loopback: allow: udp 127.0.0.1:9000 arrives" ok -p "$allow" -- udp 127.0.0.1 9000
	probe "6 loopback: allow: tcp [::1]:9000 arrives" ok -p "$allow" -- tcp ::1 9000
	probe "6 loopback: allow: tcp 0.0.0.0:9000 arrives" ok -p "$allow" -e "$T/ev6" -- \
		tcp 0.0.0.0 9000
	t_begin "6 0.0.0.0 is judged by the loopback rule"
	x_json "$T/ev6" 'any(.[]; .dst == "0.0.0.0" and .port == 9000 and .verdict == "allow"
		and .rule == "loopback")'
	t_end
}

# 7: cloud metadata stays denied under allow-all and in audit mode, unless
# an exact ip rule names it.
test_metadata() {
	local all meta
	all=$(
		e2e_policy allow-all <<-EOF
			version: 1
			allow:
			  - cidr: 0.0.0.0/0
		EOF
	)
	meta=$(
		e2e_policy metadata <<-EOF
			version: 1
			allow:
			  - ip: 169.254.169.254
		EOF
	)
	probe "7 metadata denied under cidr 0.0.0.0/0" EPERM -p "$all" -e "$T/ev7" -- \
		tcp 169.254.169.254 80
	t_begin "7 metadata denial has reason metadata-endpoint"
	x_json "$T/ev7" 'any(.[]; .dst == "169.254.169.254" and .verdict == "deny"
		and .reason == "metadata-endpoint" and .rule == "metadata")'
	t_end
	probe "7 cidr 0.0.0.0/0 still allows others" ok -p "$all" -- tcp 198.51.100.7 80
	probe "7 metadata denied under --audit too" EPERM -p "$all" --audit -- tcp 169.254.169.254 80
	probe "7 metadata denied under --audit with no policy rules" EPERM -p "$P_NONE" --audit -- \
		udp 169.254.169.254 80
	probe "7 metadata allowed by an exact ip rule" ok -p "$meta" -- tcp 169.254.169.254 80
}

# 8: audit mode lets a would-be denial through, and says so.
test_audit() {
	local tok=t8-audit-$RANDOM audit
	t_begin "8 --audit: a destination not allowed connects; exit status is the command's"
	run_weir -p "$P_NONE" --audit -e "$T/ev8" -- \
		sh -c "$NETPROBE tcp 198.51.100.7 80 $tok; exit 3"
	x_rc 3
	x_out ok
	x_arrived "$LOG" "^tcp 198\.51\.100\.7:80 $tok\$"
	x_err_has '^weir: would deny tcp 198\.51\.100\.7:80 \(netprobe pid [0-9]+\)$'
	x_err_lacks '^weir: denied '
	x_json "$T/ev8" 'any(.[]; .dst == "198.51.100.7" and .port == 80 and .verdict == "would-deny"
		and .mode == "audit" and .reason == "no-matching-rule")'
	t_end

	audit=$(
		e2e_policy audit <<-EOF
			version: 1
			mode: audit
			loopback: deny
		EOF
	)
	probe "8 mode: audit in the policy file: a destination not allowed connects" ok \
		-p "$audit" -- tcp 198.51.100.7 8080
}

# 9: the JSON events: valid, complete, and about the right process.
test_events() {
	local pol line bad=0 p1 p2 p3 p4 cg
	pol=$(
		e2e_policy events <<-EOF
			version: 1
			loopback: deny
			allow:
			  - ip: 192.0.2.1
			    ports: [8080]
			  - ip: 2001:db8::1
			    ports: [80]
			    proto: tcp
		EOF
	)
	rm -f "$T"/pid9.*
	t_begin "9 -e FILE: valid JSON lines, every field, right pid/comm/dst/port/verdict"
	run_weir -p "$pol" -e "$T/ev9" -- sh -c "
		$T/asme $T/pid9.1 $NETPROBE tcp 192.0.2.1 8080 t9-a
		$T/asme $T/pid9.2 $NETPROBE tcp 198.51.100.7 80 t9-b
		$T/asme $T/pid9.3 $NETPROBE udp 192.0.2.1 8080 t9-c
		$T/asme $T/pid9.4 $NETPROBE tcp 2001:db8::1 80 t9-d
		true"
	x_rc 0
	x_out $'ok\nEPERM\nok\nok'
	p1=$(cat "$T/pid9.1") p2=$(cat "$T/pid9.2") p3=$(cat "$T/pid9.3") p4=$(cat "$T/pid9.4")
	cg=/weir/run-$CPID
	while IFS= read -r line; do
		printf '%s\n' "$line" | jq -e . >/dev/null 2>&1 || bad=$((bad + 1))
	done <"$T/ev9"
	[ "$bad" = 0 ] || t_why "$bad lines are not valid JSON"
	x_json "$T/ev9" 'map(select(.verdict)) | length == 4'
	x_json "$T/ev9" 'all(.[] | select(.verdict); .v == 1 and (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))
		and (.verdict | IN("allow", "deny", "would-deny")) and .mode == "enforce"
		and (.op | IN("connect4", "connect6", "sendmsg4", "sendmsg6"))
		and (.proto | IN("tcp", "udp")) and (.family | IN("ipv4", "ipv6"))
		and (.dst | type == "string") and (.port | type == "number")
		and (.rule | type == "string") and (.reason | type == "string")
		and .tid == .pid and .uid == 0 and .gid == 0 and .comm == "netprobe"
		and .cgroup == $cg and (.cgroup_id | type == "number" and . > 0))' --arg cg "$cg"
	x_json "$T/ev9" 'any(.[]; .pid == $p and .verdict == "allow" and .op == "connect4"
		and .proto == "tcp" and .family == "ipv4" and .dst == "192.0.2.1" and .port == 8080
		and .rule == "allow[0]" and .reason == "allow-rule")' --argjson p "${p1:-0}"
	x_json "$T/ev9" 'any(.[]; .pid == $p and .verdict == "deny" and .op == "connect4"
		and .dst == "198.51.100.7" and .port == 80 and .rule == "default"
		and .reason == "no-matching-rule")' --argjson p "${p2:-0}"
	x_json "$T/ev9" 'any(.[]; .pid == $p and .verdict == "allow" and .op == "sendmsg4"
		and .proto == "udp" and .dst == "192.0.2.1" and .port == 8080)' --argjson p "${p3:-0}"
	x_json "$T/ev9" 'any(.[]; .pid == $p and .verdict == "allow" and .op == "connect6"
		and .family == "ipv6" and .dst == "2001:db8::1" and .port == 80
		and .rule == "allow[1]")' --argjson p "${p4:-0}"
	t_end

	t_begin "9 -e -: the JSON goes to stderr, and nothing else of weir's"
	run_weir -p "$pol" -e - -- "$NETPROBE" tcp 198.51.100.7 80 t9-stderr
	x_rc 1
	grep '^{' "$ERR" >"$T/ev9err"
	x_json "$T/ev9err" 'map(select(.verdict)) | length == 1 and .[0].dst == "198.51.100.7"
		and .[0].verdict == "deny"'
	x_err_lacks '^weir: '
	t_end

	t_begin "9 -q: no denial lines on stderr, the JSON still written; the root warning stays"
	run_weir -p "$pol" -q -e "$T/ev9q" -- "$NETPROBE" tcp 198.51.100.7 80 t9-quiet
	x_rc 1
	x_out EPERM
	x_err_lacks 'weir: denied'
	x_err_has '^weir: [^ ]*netprobe runs as root: '
	x_err_has '^weir: summary: 0 allowed, 1 denied$'
	x_json "$T/ev9q" 'any(.[]; .dst == "198.51.100.7" and .verdict == "deny")'
	t_end

	t_begin "9 -q: no summary when nothing was denied, refused or lost"
	run_weir -p "$pol" -q -- "$NETPROBE" tcp 192.0.2.1 8080 t9-quiet-ok
	x_rc 0
	x_out ok
	x_err_lacks 'summary'
	run_weir -p "$pol" -- "$NETPROBE" tcp 192.0.2.1 8080 t9-quiet-ok2
	x_err_has '^weir: summary: 1 allowed, 0 denied$'
	t_end
}

# 9: the event stream: run records around the events, appended, piped.
test_stream() {
	local sum host sgid
	sum=$(sha256sum "$P_ONE" | cut -d' ' -f1)
	host=$(hostname)
	rm -f "$T/evs"
	t_begin "9 -e FILE appends: two runs, each between run-start and run-end"
	run_weir -p "$P_ONE" -e "$T/evs" -- "$NETPROBE" tcp 198.51.100.7 80 t9s-a
	x_rc 1
	local pid1=$CPID
	run_weir -p "$P_ONE" -a 192.0.2.10:80 -e "$T/evs" -- sh -c 'exit 7'
	x_rc 7
	x_json "$T/evs" 'map(.op) | . == ["run-start", "connect4", "run-end", "run-start", "run-end"]'
	x_json "$T/evs" '.[0].weir_pid == $p1 and .[3].weir_pid == $p2 and .[2].weir_pid == $p1
		and .[4].exit == 7' --argjson p1 "$pid1" --argjson p2 "$CPID"
	[ "$(stat -c %a "$T/evs")" = 600 ] || t_why "mode $(stat -c %a "$T/evs"), want 600"
	t_end

	t_begin "9 the run-start record: version, command, policy and its sha256, user, host, cgroup"
	x_json "$T/evs" '.[0] | .v == 1 and (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))
		and (.weir | type == "string" and length > 0)
		and .argv == [$np, "tcp", "198.51.100.7", "80", "t9s-a"]
		and .policy == "one-port" and .policy_source == $pol and .policy_sha256 == $sum
		and .mode == "enforce" and .allow == [] and .user == "root" and .uid == 0 and .gid == 0
		and .host == $host and .weir_pid == $p1 and .cgroup == "/weir/run-\($p1)"
		and (.cgroup_id | type == "number" and . > 0)' --arg np "$NETPROBE" --arg pol "$P_ONE" \
		--arg sum "$sum" --arg host "$host" --argjson p1 "$pid1"
	x_json "$T/evs" '.[3].allow == ["192.0.2.10:80"] and .[3].argv == ["sh", "-c", "exit 7"]'
	t_end

	t_begin "9 the run-end record: exit status, counts by verdict, dns counts, lost events"
	x_json "$T/evs" '.[2] | .v == 1 and .exit == 1 and (has("signal") | not)
		and .decisions == {"allow": 0, "deny": 1, "would-deny": 0}
		and .dns == {"allow": 0, "deny": 0, "would-deny": 0} and .lost == 0
		and (.duration_ms | type == "number")'
	run_weir -p "$P_NONE" -e "$T/evsig" -- sh -c 'kill -TERM $$'
	x_rc 143
	x_json "$T/evsig" 'last | .op == "run-end" and .exit == 143 and .signal == 15'
	t_end

	t_begin "9 -e FILE: a symlink is refused (125), its target untouched; created 0640 for SUDO_GID"
	: >"$T/evtarget"
	ln -sf "$T/evtarget" "$T/evlink"
	run_weir -p "$P_NONE" -e "$T/evlink" -- true
	x_rc 125
	x_err_has 'evlink: it is a symbolic link'
	[ -s "$T/evtarget" ] && t_why "the symlink's target was written to"
	rm -f "$T/evgrp"
	run_cmd env SUDO_GID=65534 "$WEIR" run -p "$P_NONE" -e "$T/evgrp" -- true
	x_rc 0
	sgid=$(stat -c '%a %g' "$T/evgrp" 2>/dev/null)
	[ "$sgid" = "640 65534" ] || t_why "mode and group '$sgid', want '640 65534'"
	t_end

	# Another user plants names in a shared directory for root's weir to
	# write to: a FIFO (weir would block in open(), its signals blocked, or
	# feed that user the run's events), a hard link to a file of root's
	# (made here by root: protected_hardlinks may forbid it to the user),
	# a file of its own.
	t_begin "9 -e FILE: another user's FIFO, file, or a hard link to root's file is refused (125) at once; so is one the command could write"
	mkdir -m 1777 "$T/shared"
	echo precious >"$T/rootfile"
	ln "$T/rootfile" "$T/shared/evhard"
	setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \
		'mkfifo "$1/evfifo" && : >"$1/evnobody"' sh "$T/shared" || t_why "nobody's files"
	for f in "evfifo:a FIFO nobody reads" "evhard:has 2 hard links" \
		"evnobody:belongs to uid 65534"; do
		run_weir -p "$P_NONE" -e "$T/shared/${f%%:*}" -- true
		x_rc 125
		x_err_has "${f#*:}"
	done
	[ "$(cat "$T/rootfile")" = precious ] || t_why "root's file was written to"
	[ -s "$T/shared/evnobody" ] && t_why "nobody's file got the events"
	# R8-10: the sudo user's own file, while the command runs as that user,
	# could be appended to (forged records) or truncated by the command.
	run_cmd env SUDO_UID=65534 "$WEIR" run -p "$P_NONE" -e "$T/shared/evnobody" -- true
	x_rc 125
	x_err_has "evnobody can be written by .*, whom the command runs as"
	[ -s "$T/shared/evnobody" ] && t_why "the file the command could write got the events"
	run_cmd env SUDO_UID=65534 "$WEIR" run -p "$P_NONE" --user root -e "$T/shared/evnobody" \
		-- true
	x_rc 0
	[ -s "$T/shared/evnobody" ] || t_why "the sudo user's own file did not get a root command's events"
	# The same file behind -e /dev/fd/3: the command could open it by name.
	: >"$T/shared/evnobody" 2>/dev/null
	run_cmd env SUDO_UID=65534 bash -c 'exec "$1" run -p "$2" -e /dev/fd/3 -- true 3>>"$3"' \
		bash "$WEIR" "$P_NONE" "$T/shared/evnobody"
	x_rc 125
	x_err_has "can be written by .*, whom the command runs as"
	t_end

	t_begin "9 -e /dev/fd/3 3>&1 | jq: every line parses; the command cannot write to fd 3"
	rm -f "$T/fd3res" "$T/fd3out"
	# shellcheck disable=SC2016
	run_cmd bash -c '"$1" run -p "$2" -e /dev/fd/3 -- sh -c "
		\"\$0\" tcp 198.51.100.7 80 t9s-fd >/dev/null
		if echo {\\\"forged\\\":true} 2>/dev/null >&3; then echo wrote; else echo ebadf; fi >$3/fd3res
		[ -e /proc/self/fd/3 ] && echo fd3-open >>$3/fd3res; exit 0" "$4" 3>&1 >/dev/null |
		jq -c . >"$3/fd3out"; echo "${PIPESTATUS[*]}"' bash "$WEIR" "$P_ONE" "$T" "$NETPROBE"
	x_rc 0
	x_out "0 0"
	[ "$(cat "$T/fd3res" 2>/dev/null)" = ebadf ] ||
		t_why "the command's write to fd 3: $(cat "$T/fd3res" 2>/dev/null)"
	x_json "$T/fd3out" 'map(.op) == ["run-start", "connect4", "run-end"]
		and .[1].verdict == "deny" and all(.[]; has("forged") | not)'
	x_err_has 'weir: denied tcp 198\.51\.100\.7:80 '
	t_end

	# The command fills the file system the events file is on, then tries
	# what it wants kept out of the audit log (30 records: more than the
	# events file's last page holds).
	t_begin "9 -e FILE on a file system the command filled: the lost records are said"
	mkdir -p "$T/small" && mount -t tmpfs -o size=64k,mode=1777 weir-e2e-small "$T/small" ||
		t_why "cannot mount a small tmpfs"
	# nobody may not reach build/ (a checkout under /root, a 0700 temp dir):
	# a copy in the test's own 0755 directory.
	install -m 0755 "$NETPROBE" "$T/netprobe-nobody" || t_why "cannot copy netprobe"
	run_weir -u nobody -p "$P_NONE" -e "$T/small/ev" -- sh -c "
		cat /dev/zero >$T/small/fill 2>/dev/null
		i=0; while [ \$i -lt 30 ]; do $T/netprobe-nobody tcp 198.51.100.7 80 t9full >/dev/null
		i=\$((i + 1)); done; exit 0"
	x_rc 0
	x_err_has "^weir: WARNING: the event stream $T/small/ev is incomplete: records could not be written"
	umount "$T/small"
	t_end

	# 3>&1 without >/dev/null: the command's stdout is the stream's pipe.
	t_begin "9 -e /dev/fd/3 with the command's stdout (or --pass-fd 4) on the same pipe or file: 125, nothing forged; fd 4 not passed: closed"
	# shellcheck disable=SC2016
	run_cmd bash -c '"$1" run -p "$2" -e /dev/fd/3 -- echo "{\"forged\":true}" 3>&1 |
		cat >"$3/fd3same"' bash "$WEIR" "$P_NONE" "$T"
	x_rc 0
	x_err_has "^weir: -e /dev/fd/3: the command's descriptor 1 writes to the same pipe or file"
	grep -q forged "$T/fd3same" && t_why "the command wrote into the stream: $(cat "$T/fd3same")"
	# fd 4 is not the command's unless --pass-fd 4 (docs/run.md, Descriptors).
	: >"$T/fd3log"
	run_cmd bash -c '"$1" run -p "$2" -e /dev/fd/3 -- sh -c "echo {\"forged\":true} >&4" \
		3>>"$3/fd3log" 4>>"$3/fd3log"' bash "$WEIR" "$P_NONE" "$T"
	x_err_has "4: Bad file descriptor"
	grep -qx '{"forged":true}' "$T/fd3log" && t_why "the command wrote into the stream through fd 4"
	run_cmd bash -c '"$1" run -p "$2" -e /dev/fd/3 --pass-fd 4 -- true 3>>"$3/fd3log" \
		4>>"$3/fd3log"' bash "$WEIR" "$P_NONE" "$T"
	x_rc 125
	x_err_has "descriptor 4 writes to the same pipe or file"
	t_end

	# sudo closes every descriptor above 2: weir's own signalfd took
	# number 3, -e /dev/fd/3 closed it, and weir never saw its command exit.
	t_begin "9 -e /dev/fd/3 with 3 closed (as sudo leaves it): 125, never a descriptor of weir's"
	run_cmd bash -c 'exec "$1" run -p "$2" -e /dev/fd/3 -- true 3>&-' bash "$WEIR" "$P_NONE"
	fd_closed_left
	x_rc 125
	x_err_has '^weir: -e /dev/fd/3: descriptor 3 is not open '
	run_cmd env SUDO_UID=65534 SUDO_GID=65534 bash -c \
		'exec "$1" run -p "$2" -e /dev/fd/3 -- true 3>&-' bash "$WEIR" "$P_NONE"
	fd_closed_left
	x_rc 125
	x_err_has "^weir: -e /dev/fd/3: descriptor 3 is not open: sudo passes on only 0, 1 and 2; "
	x_err_has "sudo sh -c 'weir run -e /dev/fd/3 -- CMD 3>&1 >/dev/null' \| jq"
	t_end

	t_begin "9 -e - 2>&1 | jq: nothing but JSON, weir's warnings as records"
	rm -f "$T/dashout"
	run_cmd bash -c '"$1" run -p "$2" -e - -- "$3" tcp 198.51.100.7 80 t9s-dash 2>&1 >/dev/null |
		jq -c . >"$4"; echo "${PIPESTATUS[*]}"' bash "$WEIR" "$P_ONE" "$NETPROBE" "$T/dashout"
	x_rc 0
	x_out "1 0"
	x_json "$T/dashout" '.[0].op == "run-start" and last.op == "run-end"
		and last.decisions.deny == 1
		and any(.[]; .op == "message" and .level == "warning"
			and (.message | test("netprobe runs as root: ")))
		and any(.[]; .op == "connect4" and .verdict == "deny" and .dst == "198.51.100.7")'
	t_end
}

# A run of the -e /dev/fd/3 test that hung (and was killed) is a leftover,
# cleaned up here by its name: it is this script's own.
fd_closed_left() {
	WEIR_RUNS=$((WEIR_RUNS + 1))
	[ -e "$CG2/weir/run-$CPID" ] || return 0
	LEFTOVER+=("$CG2/weir/run-$CPID (-e /dev/fd/3, 3 closed)")
	"$WEIR" cleanup "run-$CPID" >/dev/null
}

# 10: exit statuses, weir's and the command's.
test_exit_codes() {
	local bad good
	bad=$(
		e2e_policy bad <<-EOF
			version: 1
			loopback: deny
			allow:
			  - ip: 192.0.2.1
			    ports: [70000]
		EOF
	)
	good=$P_ONE
	printf '#!/bin/sh\necho never\n' >"$T/noexec"
	chmod 644 "$T/noexec"

	t_begin "10 exit status of the command: 42"
	run_weir -p "$P_NONE" -- sh -c 'exit 42'
	x_rc 42
	t_end
	t_begin "10 command killed by SIGTERM: 143"
	run_weir -p "$P_NONE" -- sh -c 'kill -TERM $$'
	x_rc 143
	t_end
	t_begin "10 command not found: 127"
	run_weir -p "$P_NONE" -- /nonexistent/weir-no-such-command
	x_rc 127
	x_err_has 'command not found'
	t_end
	t_begin "10 command not executable: 126"
	run_weir -p "$P_NONE" -- "$T/noexec"
	x_rc 126
	t_end
	t_begin "10 weir run with a bad policy: 125 and FILE:LINE"
	run_weir -p "$bad" -- true
	x_rc 125
	x_err_has "$bad:5:"
	t_end
	t_begin "10 weir policy check on a bad policy: 2 and FILE:LINE"
	run_cmd "$WEIR" policy check "$bad"
	x_rc 2
	x_err_has "$bad:5:"
	t_end
	t_begin "10 weir policy check on a good policy: 0"
	run_cmd "$WEIR" policy check "$good"
	x_rc 0
	t_end
	t_begin "10 weir run without a command: 125, try 'weir run --help'"
	run_weir -p "$P_NONE"
	x_rc 125
	x_err_has "^try 'weir run --help'\$"
	run_weir -p "$P_NONE" --
	x_rc 125
	t_end
	t_begin "10 weir run with an unknown option: 125, names it"
	run_weir --bogus -- true
	x_rc 125
	x_err_has "^weir: run: unknown option '--bogus'\$"
	x_err_has "^try 'weir run --help'\$"
	run_weir -p
	x_rc 125
	x_err_has "^weir: run: option needs an argument: '-p'\$"
	t_end
	t_begin "10 the command's own exit status 2 is 2 (not a usage error)"
	run_weir -p "$P_NONE" -- sh -c 'exit 2'
	x_rc 2
	x_err_lacks 'try .weir'
	t_end
	t_begin "10 weir policy check --help: usage on stdout, exit 0"
	run_cmd "$WEIR" policy check --help
	x_rc 0
	x_file_has "$OUT" '^Usage: weir policy check FILE$'
	[ -s "$ERR" ] && t_why "stderr: $(t_tail "$ERR")"
	run_cmd "$WEIR" policy show --help
	x_rc 0
	x_file_has "$OUT" '^Usage: weir policy check FILE$'
	t_end
	t_begin "10 weir policy show prints agent-default; policy check reads it back"
	run_cmd sh -c '"$1" policy show | "$1" policy check /dev/stdin' sh "$WEIR"
	x_rc 0
	x_file_has "$OUT" '^policy: agent-default '
	run_cmd "$WEIR" policy show
	cmp -s "$OUT" "$REPO_ROOT/policy/agent-default.yaml" ||
		t_why "weir policy show differs from policy/agent-default.yaml"
	run_cmd "$WEIR" policy show demo
	x_rc 0
	cmp -s "$OUT" "$REPO_ROOT/policy/demo.yaml" ||
		t_why "weir policy show demo differs from policy/demo.yaml"
	t_end
	t_begin "10 weir policy show: the unix: section weir enforces on stderr (YAML comments), as policy check prints it"
	run_cmd "$WEIR" policy show
	x_rc 0
	x_err_has '^# unix: built-in list on \(23 sockets: '
	x_err_has '^# unix-builtin: deny /run/nscd/socket \(a resolver: refused in audit mode too\)$'
	x_err_has '^# unix-builtin: deny /run/docker.sock$'
	x_err_has '^# unix: paths no pattern can judge are refused'
	sed -n 's/^# unix/unix/p' "$ERR" >"$E2E_TMP/show-unix"
	"$WEIR" policy check "$REPO_ROOT/policy/agent-default.yaml" 2>/dev/null |
		grep '^unix' >"$E2E_TMP/check-unix"
	cmp -s "$E2E_TMP/show-unix" "$E2E_TMP/check-unix" ||
		t_why "show's unix lines differ from check's: $(diff "$E2E_TMP/show-unix" "$E2E_TMP/check-unix" | head -3 | tr '\n' '|')"
	run_cmd sh -c '"$1" policy show demo 2>&1 | "$1" policy check /dev/stdin' sh "$WEIR"
	x_rc 0
	t_end
	t_begin "10 weir policy show NAME: an unknown NAME lists the shipped ones, exit 2"
	run_cmd "$WEIR" policy show no-such-policy
	x_rc 2
	x_err_has "no shipped policy 'no-such-policy'; there are: agent-default, demo, preset:anthropic, .*preset:npm, .*preset:ubuntu\$"
	t_end
	t_begin "10 weir run unprivileged: 125, says why"
	run_cmd setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
		"$WEIR" run -- true
	x_rc 125
	x_err_has 'root|CAP_'
	t_end
	# R8-16: root of a user namespace of its own (a rootless container)
	# holds every capability there, and none over bpf() or the host's
	# cgroups: said as such, not as a kernel without cgroup BPF.
	t_begin "10 weir run in a user namespace of its own: 125, says it needs the host's"
	# nobody may not reach build/ (a checkout under /root, a 0700 temp
	# dir): a copy in the test's own 0755 directory.
	install -m 0755 "$WEIR" "$T/weir-nobody" || t_why "cannot copy weir"
	run_cmd setpriv --reuid=65534 --regid=65534 --clear-groups \
		unshare -Ur "$T/weir-nobody" run --standalone -- true
	x_rc 125
	x_err_has "needs root in the host's user namespace"
	x_err_lacks 'this kernel lacks'
	t_end
}

# weir_bg ENV-OPTS... -- WEIR-RUN-ARGS...: start `env ENV-OPTS weir run ARGS`
# in the background (stdout $T/out11, stderr $T/err11), set BG; wait (at most
# 5 s) for the command to run in weir's cgroup: its pid in BG_CMD. Not
# while it is still weir's child before exec, or an `env` that has yet to
# set a disposition: a signal then could find the wrong one.
BG='' BG_CMD=''
weir_bg() {
	local envo=() i
	while [ "$1" != -- ]; do
		envo+=("$1")
		shift
	done
	shift
	# No core file from SIGQUIT: the command's cwd is the caller's.
	(
		ulimit -c 0
		exec env "${envo[@]}" "$WEIR" run "$@"
	) >"$T/out11" 2>"$T/err11" &
	BG=$!
	for ((i = 0; i < 50; i++)); do
		BG_CMD=$(head -1 "$CG2/weir/run-$BG/cgroup.procs" 2>/dev/null)
		[ -n "$BG_CMD" ] && ! grep -qsxE 'weir|env' "/proc/$BG_CMD/comm" && return 0
		sleep 0.1
	done
	t_why "the command never started"
}

# weir_bg_end WANT TENTHS: weir exits WANT within TENTHS/10 s (else it is
# killed), and its cgroup is gone.
weir_bg_end() {
	local st
	if e2e_wait_gone "$BG" "$2"; then
		wait "$BG"
		st=$?
		[ "$st" = "$1" ] || t_why "exit status $st, want $1 (stderr: $(t_tail "$T/err11"))"
	else
		t_why "weir still running after $(($2 / 10)) s"
		kill -KILL "$BG"
		wait "$BG"
	fi
	WEIR_RUNS=$((WEIR_RUNS + 1))
	[ -e "$CG2/weir/run-$BG" ] && LEFTOVER+=("$CG2/weir/run-$BG (signal test)")
}

# signal_weir SIG WANT: weir run -- sleep 30, SIG to weir, exit WANT in 3 s.
# Every disposition at its default, even when the suite runs under nohup.
signal_weir() {
	local sig=$1 want=$2
	t_begin "11 SIG$sig to weir: forwarded, exit $want within 3 s"
	weir_bg --default-signal -- -p "$P_NONE" -- sleep 30
	kill -"$sig" "$BG"
	weir_bg_end "$want" 30
	t_end
}

# x_sigmask FIELD WANT: the SigIgn/SigBlk line the command printed is WANT
# in signals 1-31 (glibc keeps 32 and 33 for itself: env cannot reset them).
x_sigmask() {
	local got
	got=$(awk -v f="$1:" '$1 == f { print $2 }' "$OUT")
	[ -n "$got" ] && got=$(printf '%08x' $((16#$got & 0x7fffffff)))
	[ "$got" = "$2" ] || t_why "the command's $1 (signals 1-31) is '$got', want $2"
}

test_signals() {
	signal_weir TERM 143
	signal_weir INT 130
	signal_weir HUP 129
	signal_weir QUIT 131

	# HUP is bit 0, PIPE bit 12, USR1 bit 9 (signal N is bit N-1).
	t_begin "11 the command gets its caller's ignored signals (HUP, PIPE) and mask (USR1)"
	run_weir_env --default-signal --ignore-signal=HUP,PIPE --block-signal=USR1 -- \
		-p "$P_NONE" -- grep -E '^Sig(Ign|Blk):' /proc/self/status
	x_rc 0
	x_sigmask SigIgn 00001001
	x_sigmask SigBlk 00000200
	t_end
	t_begin "11 a caller with nothing ignored: neither is the command (not even PIPE)"
	run_weir_env --default-signal -- -p "$P_NONE" -- grep -E '^Sig(Ign|Blk):' /proc/self/status
	x_rc 0
	x_sigmask SigIgn 00000000
	t_end
	# The kernel reaps the children of a process that ignores SIGCHLD.
	t_begin "11 SIGCHLD ignored by the caller: weir still reports the exit status"
	run_weir_env --default-signal --ignore-signal=CHLD -- -p "$P_NONE" -- sh -c 'exit 42'
	x_rc 42
	t_end

	t_begin "11 under nohup: HUP forwarded; a command with HUP at default dies of it: 129"
	weir_bg --default-signal --ignore-signal=HUP -- -p "$P_NONE" -- \
		env --default-signal=HUP sleep 30
	kill -HUP "$BG"
	weir_bg_end 129 30
	t_end
	t_begin "11 under nohup: HUP ignored by the command as by its caller; weir stays with it"
	weir_bg --default-signal --ignore-signal=HUP -- -p "$P_NONE" -- sleep 30
	kill -HUP "$BG"
	e2e_sleep_ms 300
	e2e_dead "$BG" && t_why "weir exited on a HUP its command ignores"
	e2e_dead "$BG_CMD" && t_why "the command died of a HUP it was told to ignore"
	kill -TERM "$BG"
	weir_bg_end 143 30
	t_end
	# A HUP after weir's last read of its signals, as the command ends,
	# must not kill weir (at SIG_DFL for itself) when it unblocks them.
	t_begin "11 under nohup: HUPs up to weir's last moment; it exits with the command's status"
	weir_bg --default-signal --ignore-signal=HUP -- -p "$P_NONE" -- sh -c 'sleep 0.3; exit 3'
	(while kill -HUP "$BG" 2>/dev/null; do :; done) &
	weir_bg_end 3 30
	wait $!
	t_end
}

# 12: nothing outlives weir: processes, child cgroups, its own cgroup.
test_cleanup() {
	local bg inner tok=t12-$RANDOM
	rm -f "$T/bgpid" "$T/inner" "$T/incg" "$T/inner_a"
	t_begin "12 a background process the command left behind is dead after weir returns"
	run_weir -p "$P_NONE" -- sh -c "sleep 100 & echo \$! > $T/bgpid"
	x_rc 0
	bg=$(cat "$T/bgpid" 2>/dev/null)
	if [ -z "$bg" ]; then
		t_why "no pid recorded"
	elif ! e2e_dead "$bg"; then
		t_why "pid $bg ($(cat "/proc/$bg/comm" 2>/dev/null)) still alive"
		kill -KILL "$bg" 2>/dev/null
	fi
	t_end

	t_begin "12 a child cgroup the command creates is still enforced, and removed at exit"
	# shellcheck disable=SC2016
	run_weir -p "$P_ONE" -- sh -c '
		cg=$(sed -n "s/^0:://p" /proc/self/cgroup)
		d="$1$cg/inner"
		echo "$d" > "$2/inner"
		mkdir "$d" && echo $$ > "$d/cgroup.procs" || exit 99
		sed -n "s/^0:://p" /proc/self/cgroup > "$2/incg"
		"$3" tcp 192.0.2.1 8080 "$4-a" > "$2/inner_a"
		exec "$3" tcp 198.51.100.7 80 "$4-d"' sh "$CG2" "$T" "$NETPROBE" "$tok"
	x_rc 1
	x_out EPERM
	inner=$(cat "$T/inner" 2>/dev/null)
	grep -qs '/inner$' "$T/incg" ||
		t_why "the command did not get into its child cgroup ($(cat "$T/incg" 2>/dev/null))"
	[ "$(cat "$T/inner_a" 2>/dev/null)" = ok ] ||
		t_why "allowed probe from the child cgroup: $(cat "$T/inner_a" 2>/dev/null)"
	x_not_arrived "$LOG" " $tok-d\$"
	if [ -z "$inner" ] || [ -e "$inner" ]; then
		t_why "child cgroup '$inner' still there"
	fi
	t_end
}

# 13: the summary counts what happened.
test_summary() {
	t_begin "13 summary: 1 allowed, 1 denied"
	run_weir -p "$P_ONE" -- \
		sh -c "$NETPROBE tcp 192.0.2.1 8080 t13-a; $NETPROBE tcp 198.51.100.7 80 t13-d; exit 0"
	x_rc 0
	x_err_has '^weir: summary: 1 allowed, 1 denied$'
	t_end
}

# 12, last: no run left its cgroup behind.
test_no_leftover_cgroups() {
	local IFS=';'
	if ((${#LEFTOVER[@]})); then
		t_not_ok "12 no weir cgroup left after any of $WEIR_RUNS runs" "${LEFTOVER[*]}"
	else
		t_ok "12 no weir cgroup left after any of $WEIR_RUNS runs"
	fi
}

# Policy size: the maps are sized to the compiled policy (the old fixed
# tries held 16384 prefixes per family), and what only compiling finds
# fails in `weir policy check` and in `weir run` before anything starts.
test_policy_size() {
	local big=$T/big.yaml ranges
	{
		printf 'version: 1\nloopback: deny\nallow:\n'
		awk 'BEGIN { for (i = 1; i <= 20000; i++) printf "  - ip: 2001:db8:1::%x\n", i }'
		printf '  - ip: 192.0.2.1\n    ports: [8080]\n'
	} >"$big"
	ranges=$(e2e_policy ranges <<-EOF
		version: 1
		loopback: deny
		allow:
		  - cidr: 192.0.2.0/24
		    ports: [1, 3, 5, 7, 9, 11, 13, 15, 17]
		  - ip: 192.0.2.7
		    ports: [2, 4, 6, 8, 10, 12, 14, 16, 18]
	EOF
	)

	t_begin "size: weir policy check, 20000 IPv6 rules: valid, counts printed"
	run_cmd "$WEIR" policy check "$big"
	x_rc 0
	x_file_has "$OUT" '^compiled: 6 IPv4 prefixes, 20002 IPv6 prefixes, 0 port sets \(the maps are sized to fit\); inbound: 1 IPv4 prefix, 1 IPv6 prefix$'
	t_end
	probe "size: weir run, 20000 IPv6 rules: the last rule allows 192.0.2.1:8080" ok \
		-p "$big" -- tcp 192.0.2.1 8080
	probe "size: weir run, 20000 IPv6 rules: 192.0.2.1:8081 EPERM" EPERM \
		-p "$big" -- tcp 192.0.2.1 8081

	t_begin "size: weir policy check, 18 port ranges on one prefix: 2, names the prefix"
	run_cmd "$WEIR" policy check "$ranges"
	x_rc 2
	x_err_has "^weir: $ranges: more than 16 distinct port ranges apply to 192\.0\.2\.7/32"
	t_end
	t_begin "size: weir run with it: 125, the command never starts"
	run_weir -p "$ranges" -- sh -c 'echo ran'
	x_rc 125
	x_out ''
	x_err_has "^weir: $ranges: more than 16 distinct port ranges apply to 192\.0\.2\.7/32"
	t_end
}

# 13: with no /proc (a chroot, a mount namespace without it) the small BTF
# (user/kernel/corebtf.c) cannot be handed to libbpf by its /proc/self/fd
# path: the load takes libbpf's way to the kernel's whole BTF instead, and
# the run is enforced as ever. (A root command needs /proc for its cgroup2
# mounts: --user.)
test_no_proc() {
	local tok=t13-$$
	t_begin "13 no /proc: the kernel's whole BTF through libbpf, enforced as ever"
	# nobody may not reach build/ (a 0700 checkout): netprobe from here.
	install -m 0755 "$NETPROBE" "$T/netprobe-nobody" || t_why "cannot copy netprobe"
	run_cmd unshare -m --propagation private sh -c 'umount -l /proc && exec "$@"' sh \
		"$WEIR" run --standalone -v --user nobody -p "$P_ONE" -- sh -c \
		"$T/netprobe-nobody tcp 192.0.2.1 8080 $tok-a; $T/netprobe-nobody tcp 198.51.100.7 80 $tok-d"
	x_rc 1
	x_err_has "^weir: CO-RE: the kernel's whole BTF"
	x_arrived "$LOG" "^tcp [^ ]+ $tok-a\$"
	x_not_arrived "$LOG" " $tok-d\$"
	t_end
}

main() {
	local start=$SECONDS
	setup
	test_allowed_curl
	test_denied_curl
	test_domain
	test_netprobe
	test_allow_args
	test_loopback
	test_metadata
	test_audit
	test_events
	test_stream
	test_exit_codes
	test_policy_size
	test_signals
	test_cleanup
	test_summary
	test_no_proc
	test_no_leftover_cgroups
	echo "# $((SECONDS - start)) s, $WEIR_RUNS weir runs"
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" = 0 ]
}

main
