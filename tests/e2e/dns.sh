#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3, DNS-aware enforcement: build/weir as the resolver of the process
# tree, against a real upstream (dnsmasq, with its query log as witness),
# in private network and mount namespaces.
#
#   WEIR_BUILD=/abs/build bash tests/e2e/dns.sh      (root)
#
# Hosts on lo: 192.0.2.10-.15, 203.0.113.66, 2001:db8::1, with sinks on
# TCP+UDP 80 and 853; 198.51.100.53 and 2001:db8::53 are "resolvers" that
# nothing answers for except weir (a sink listens on their port 53 to prove
# nothing arrives there). dnsmasq on 127.0.0.53 is the upstream.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=e2e-dns
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
LOG=$T/sink.log
CURL=(curl -sS --noproxy '*' --max-time 5)
CURLS="curl -sS --noproxy '*' --max-time 5" # the same, for sh -c scripts
DIG=(dig +time=2 +tries=1)

setup() {
	e2e_setup_lo 192.0.2.10/32 192.0.2.11/32 192.0.2.12/32 192.0.2.13/32 192.0.2.14/32 \
		192.0.2.15/32 203.0.113.66/32 198.51.100.53/32 2001:db8::1/128 2001:db8::53/128
	e2e_start_sink sink --http "$LOG" 192.0.2.10:80 192.0.2.11:80 192.0.2.12:80 \
		192.0.2.13:80 192.0.2.14:80 192.0.2.15:80 203.0.113.66:80 '[2001:db8::1]:80' \
		198.51.100.53:53 198.51.100.53:853 '[2001:db8::53]:53'
	E2E_DNS_EXTRA=(--cname=alias.test,mid.test --cname=mid.test,target.test
		--txt-record=other.test,"v=spf1 -all"
		--txt-record=big.allowed.test,"weir-00-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-01-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-02-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-04-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-05-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-06-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-07-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-08-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-09-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-10-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","weir-11-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	e2e_start_dns allowed.test,192.0.2.10,2001:db8::1 other.test,192.0.2.11 \
		target.test,192.0.2.12 a.wild.test,192.0.2.13 a.b.wild.test,192.0.2.14 \
		x.y.deep.test,192.0.2.15 exfil.evil.test,203.0.113.66 rebind.test,127.0.0.1
	e2e_check_dns allowed.test 192.0.2.10
	e2e_check_dns alias.test 192.0.2.12
	POL=$(e2e_policy main <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		    ports: [80]
		  - domain: alias.test
		    ports: [80]
		  - domain: "*.wild.test"
		    ports: [80]
		  - domain: "**.deep.test"
		    ports: [80]
		  - domain: big.allowed.test
		deny:
		  - domain: "*.evil.test"
	EOF
	)
}

# The dnsmasq log from here on: upstream_mark; upstream_saw ERE.
upstream_mark() {
	MARK=$(wc -l <"$T/dnsmasq.log")
}

upstream_saw() {
	tail -n +$((MARK + 1)) "$T/dnsmasq.log" | grep -qE -- "$1"
}

x_upstream_not() {
	! upstream_saw "$1" || t_why "the upstream saw /$1/: $(tail -n +$((MARK + 1)) \
		"$T/dnsmasq.log" | grep -E -- "$1" | head -1)"
}

x_upstream() {
	upstream_saw "$1" || t_why "the upstream never saw /$1/"
}

test_getaddrinfo_then_connect() {
	t_begin "getaddrinfo through weir, then the learned address connects"
	upstream_mark
	run_weir -p "$POL" -e "$T/ev1" -- sh -c 'getent ahostsv4 allowed.test | head -1;
		'"$CURLS"' -o /dev/null -w "%{http_code}\n" http://allowed.test/d1'
	x_rc 0
	x_out "$(printf '192.0.2.10      STREAM allowed.test\n200')"
	x_arrived "$LOG" 'GET /d1 '
	x_upstream 'query\[A\] allowed\.test'
	x_json "$T/ev1" 'any(.[]; .op == "connect4" and .dst == "192.0.2.10" and .verdict == "allow"
		and .reason == "learned-from-dns" and .domain == "allowed.test")'
	x_json "$T/ev1" 'any(.[]; .op == "dns" and .name == "allowed.test" and .qtype == "A"
		and .verdict == "allow" and .answers == ["192.0.2.10"] and .comm == "getent")'
	t_end

	t_begin "an address weir did not hand out stays denied (other.test's, by IP)"
	run_weir -p "$POL" -- "$NETPROBE" tcp 192.0.2.11 80 d1b
	x_rc 1
	x_out EPERM
	x_not_arrived "$LOG" ' d1b$'
	t_end
}

test_refused_never_upstream() {
	local label
	label=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
	t_begin "names outside the policy: REFUSED + EDE, never forwarded (A, AAAA, TXT, exfil label)"
	upstream_mark
	run_weir -p "$POL" -e "$T/ev2" -- sh -c "
		${DIG[*]} @127.0.0.53 other.test A;
		${DIG[*]} @127.0.0.53 other.test AAAA | grep status;
		${DIG[*]} @127.0.0.53 other.test TXT | grep status;
		${DIG[*]} @127.0.0.53 $label.evil.test TXT | grep status;
		${DIG[*]} @127.0.0.53 +noedns other.test ANY | grep -E 'status|OPT'"
	x_rc 0
	[ "$(grep -c 'status: REFUSED' "$OUT")" = 5 ] ||
		t_why "want 5 REFUSED, got: $(grep -c 'status: REFUSED' "$OUT")"
	grep -q 'EDE: 15 (Blocked)' "$OUT" || t_why "no Extended DNS Error 15 in dig's output"
	grep -q 'OPT PSEUDOSECTION' <(tail -1 "$OUT") && t_why "an OPT record answered a query without EDNS"
	x_upstream_not 'other\.test'
	x_upstream_not "$label"
	# (dig asks from a thread named isc-net-0000)
	x_err_has "^weir: refused dns TXT $label\\.evil\\.test \\([^ ]+ pid [0-9]+\\)\$"
	x_json "$T/ev2" 'any(.[]; .op == "dns" and .name == $n and .verdict == "deny"
		and .rule == "deny[0]" and .reason == "deny-rule" and .qtype == "TXT")' \
		--arg n "$label.evil.test"
	x_json "$T/ev2" 'any(.[]; .op == "dns" and .name == "other.test" and .qtype == "ANY"
		and .verdict == "deny" and .rule == "default" and .reason == "name-not-allowed")'
	t_end
}

test_any_resolver_address() {
	t_begin "dig to any resolver address (UDP, TCP, IPv6, IPv4-mapped) gets weir's answer"
	upstream_mark
	run_weir -p "$POL" -- sh -c "
		${DIG[*]} +short @198.51.100.53 allowed.test;
		${DIG[*]} +short +tcp @198.51.100.53 allowed.test;
		${DIG[*]} +short -6 @2001:db8::53 allowed.test AAAA;
		${DIG[*]} +tcp @198.51.100.53 other.test | grep -c 'status: REFUSED'"
	x_rc 0
	x_out "$(printf '192.0.2.10\n192.0.2.10\n2001:db8::1\n1')"
	x_not_arrived "$LOG" '(198\.51\.100\.53|2001:db8::53)\]?:53 '
	x_upstream_not 'other\.test'
	t_end

	t_begin "a raw UDP socket asking any address: answer from the address it asked"
	run_weir -p "$POL" -- sh -c "$NETPROBE dns 198.51.100.53 53 allowed.test;
		$NETPROBE --v6sock dns 198.51.100.53 53 allowed.test;
		$NETPROBE dns 2001:db8::53 53 allowed.test;
		$NETPROBE --v6sock dns 198.51.100.53 53 other.test; true"
	x_out "$(printf 'ok 192.0.2.10\nok 192.0.2.10\nok 192.0.2.10\nREFUSED')"
	x_not_arrived "$LOG" '(198\.51\.100\.53|2001:db8::53)\]?:53 '
	t_end

	t_begin "non-DNS bytes to port 53 anywhere reach only weir's resolver"
	run_weir -p "$POL" -- sh -c "$NETPROBE udp 198.51.100.53 53 d3u; $NETPROBE tcp 198.51.100.53 53 d3t; true"
	x_not_arrived "$LOG" ' d3[ut]$'
	t_end

	t_begin "DNS over TLS (853) to an address the policy does not allow: EPERM"
	run_weir -p "$POL" -- "$NETPROBE" tcp 198.51.100.53 853 d3dot
	x_rc 1
	x_out EPERM
	x_not_arrived "$LOG" ' d3dot$'
	t_end
}

test_cname_and_wildcards() {
	t_begin "a CNAME chain teaches the final address"
	run_weir -p "$POL" -e "$T/ev4" -- sh -c 'getent ahosts alias.test >/dev/null &&
		'"$CURLS"' -o /dev/null -w "%{http_code}" http://alias.test/d4'
	x_rc 0
	x_out 200
	x_arrived "$LOG" '^tcp 192\.0\.2\.12:80 GET /d4 '
	x_json "$T/ev4" 'any(.[]; .dst == "192.0.2.12" and .domain == "alias.test"
		and .verdict == "allow")'
	t_end

	t_begin "wildcards: *. one label, **. one or more"
	run_weir -p "$POL" -- sh -c "
		$CURLS -o /dev/null -w '%{http_code}\n' http://a.wild.test/d5a;
		$CURLS -o /dev/null -w '%{http_code}\n' http://a.b.wild.test/d5b 2>/dev/null; echo \$?;
		$CURLS -o /dev/null -w '%{http_code}\n' http://x.y.deep.test/d5c"
	x_out "$(printf '200\n000\n6\n200')"
	x_arrived "$LOG" 'GET /d5a '
	x_not_arrived "$LOG" 'GET /d5b '
	x_arrived "$LOG" 'GET /d5c '
	t_end
}

test_truncation_and_edns() {
	t_begin "a truncated UDP answer (TC) makes dig retry over TCP, through weir"
	upstream_mark
	run_weir -p "$POL" -e "$T/ev11" -- sh -c "${DIG[*]} +noedns +nocookie @198.51.100.53 big.allowed.test TXT"
	x_rc 0
	grep -q 'Truncated, retrying in TCP mode' "$OUT" || t_why "dig saw no truncation: $(t_tail "$OUT")"
	[ "$(grep -c 'weir-[0-9][0-9]-' "$OUT")" -ge 1 ] || t_why "no TXT answer over TCP: $(t_tail "$OUT")"
	x_json "$T/ev11" 'any(.[]; .op == "dns" and .name == "big.allowed.test" and .proto == "tcp"
		and .verdict == "allow")'
	t_end

	t_begin "EDNS0 passes through: the answer carries the upstream's OPT record"
	run_weir -p "$POL" -- "${DIG[@]}" +edns=0 +bufsize=1232 @198.51.100.53 big.allowed.test TXT
	x_rc 0
	grep -q 'OPT PSEUDOSECTION' "$OUT" || t_why "no OPT record in the answer"
	grep -q 'udp: ' "$OUT" || t_why "no EDNS udp size in the answer"
	grep -q 'weir-11-' "$OUT" || t_why "the full answer did not arrive over UDP with EDNS"
	t_end
}

test_ttl_expiry() {
	local pol
	pol=$(e2e_policy ttl <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		    ports: [80]
		dns:
		  ttl_min: 1
		  ttl_max: 2
	EOF
	)
	t_begin "a learned address expires with its TTL (dnsmasq TTL 2 s, ttl_max 2)"
	run_weir -p "$pol" -- sh -c "getent ahosts allowed.test >/dev/null;
		$NETPROBE tcp 192.0.2.10 80 d6a; sleep 3.5; $NETPROBE tcp 192.0.2.10 80 d6b; true"
	x_out "$(printf 'ok\nEPERM')"
	x_arrived "$LOG" ' d6a$'
	x_not_arrived "$LOG" ' d6b$'
	t_end
}

test_audit_mode() {
	t_begin "--audit: names outside the policy are answered and logged as would-deny"
	upstream_mark
	run_weir -p "$POL" --audit -e "$T/ev7" -- "${DIG[@]}" +short @127.0.0.53 other.test
	x_rc 0
	x_out 192.0.2.11
	x_err_has '^weir: would refuse dns A other\.test \([^ ]+ pid [0-9]+\)$'
	x_json "$T/ev7" 'any(.[]; .op == "dns" and .name == "other.test" and .verdict == "would-deny")'
	t_end
}

audit_flag() {
	[ "$1" = audit ] && echo --audit
}

# Issue 9, item 3: glibc's getaddrinfo() connect()s a UDP socket to each
# address it found (RFC 6724 source address selection) and sends nothing.
# Under a tcp-only policy those connects are refused, quietly: the event
# stream marks them "sent":false, stderr and the summary say nothing.
test_udp_probes_are_not_denials() {
	local pol mode
	pol=$(e2e_policy tcponly <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		    ports: [80]
		    proto: tcp
	EOF
	)
	for mode in enforce audit; do
		t_begin "$mode: curl to an allowed name under proto: tcp: no phantom udp denial"
		run_weir -p "$pol" $(audit_flag $mode) -e "$T/ev-probe-$mode" -- \
			"${CURL[@]}" -o /dev/null -w '%{http_code}\n' http://allowed.test/p-$mode
		x_rc 0
		x_out 200
		x_arrived "$LOG" "GET /p-$mode "
		x_err_lacks '(denied|would deny|would-deny) +udp'
		x_err_has '^weir: summary: [0-9]+ allowed, 0 denied$'
		x_json "$T/ev-probe-$mode" 'any(.[]; (.op == "connect4" or .op == "connect6") and
			.proto == "udp" and .port == 80 and .sent == false and .verdict != "allow"
			and .domain == "allowed.test")'
		x_json "$T/ev-probe-$mode" 'all(.[]; .sent != false or .proto == "udp")'
		t_end
	done

	t_begin "-v shows the refused probes as such"
	run_weir -v -p "$pol" -- "${CURL[@]}" -o /dev/null http://allowed.test/p-v
	x_rc 0
	x_err_has 'weir: refused udp connect to allowed\.test:80 \((192\.0\.2\.10|2001:db8::1), curl pid [0-9]+\): nothing sent$'
	x_err_lacks 'denied udp'
	t_end

	t_begin "UDP that really goes to a denied port is still a denial, named"
	run_weir -p "$pol" -e "$T/ev-udp" -- sh -c "getent ahostsv4 allowed.test >/dev/null;
		$NETPROBE udp 192.0.2.10 80 u1"
	x_rc 1
	x_out EPERM
	x_not_arrived "$LOG" ' u1$'
	x_err_has '^weir: denied udp allowed\.test:80 \(192\.0\.2\.10, netprobe pid [0-9]+\)$'
	x_err_has '^weir: summary: [0-9]+ allowed, 1 denied$'
	x_err_has '^weir:   denied +udp +allowed\.test:80 \(192\.0\.2\.10\) +x1$'
	t_end

	t_begin "audit: a UDP connect() then send(): the datagram is the would-deny, named"
	run_weir -p "$pol" --audit -e "$T/ev-udpc" -- sh -c "getent ahostsv4 allowed.test >/dev/null;
		$NETPROBE udpc 192.0.2.10 80 u2"
	x_rc 0
	x_arrived "$LOG" ' u2$'
	x_err_has '^weir: would deny udp allowed\.test:80 \(192\.0\.2\.10, netprobe pid [0-9]+\)$'
	x_err_has '^weir: summary: [0-9]+ allowed, 0 denied, 1 would be denied$'
	x_json "$T/ev-udpc" '[.[] | select(.verdict == "would-deny" and .op != "dns" and
		.sent != false)] | length == 1 and .[0].op == "egress" and .[0].domain == "allowed.test"'
	x_json "$T/ev-udpc" 'any(.[]; .op == "connect4" and .sent == false)'
	t_end
}

# Issue 9, item 4: one decision per connection attempt in audit mode (not a
# connect event and a backstop event), and names on every line.
test_one_decision_per_attempt() {
	t_begin "audit: 4 connections to denied destinations are 4 would-deny decisions"
	run_weir -p "$POL" --audit -e "$T/ev-four" -- sh -c "
		$CURLS -o /dev/null http://other.test/f1; $CURLS -o /dev/null http://target.test/f2;
		$NETPROBE tcp 192.0.2.11 80 f3; $NETPROBE tcp 203.0.113.66 80 f4"
	x_rc 0
	x_arrived "$LOG" ' f4$'
	x_err_has '^weir: summary: [0-9]+ allowed, 0 denied, 4 would be denied$'
	x_json "$T/ev-four" '[.[] | select(.verdict == "would-deny" and .op != "dns" and
		.sent != false)] | length == 4'
	x_json "$T/ev-four" 'all(.[]; .op != "egress")'
	t_end

	# The name audit mode answers but would refuse: its addresses are not
	# learned (nothing is allowed by them), and still named.
	t_begin "audit: connections to a name the policy would refuse name it (stderr, summary, events)"
	run_weir -p "$POL" --audit -e "$T/ev-aname" -- sh -c "
		$CURLS -4 -o /dev/null http://other.test/n1; $CURLS -4 -o /dev/null http://other.test/n2"
	x_rc 0
	x_arrived "$LOG" ' /n2'
	x_err_has '^weir: would deny tcp other\.test:80 \(192\.0\.2\.11, curl pid [0-9]+\)$'
	x_err_lacks '^weir: would deny tcp 192\.0\.2\.11:80 '
	x_err_has '^weir:   would-deny +tcp +other\.test:80 \(192\.0\.2\.11\) +x2$'
	x_json "$T/ev-aname" '[.[] | select(.op == "connect4" and .port == 80)] | length == 2
		and all(.[]; .verdict == "would-deny" and .domain == "other.test")'
	t_end

	local mode line row
	for mode in enforce audit; do
		t_begin "$mode: a port denial of an allowed name names it (stderr, summary)"
		run_weir -p "$POL" $(audit_flag $mode) -e "$T/ev-port-$mode" -- \
			"${CURL[@]}" -4 -o /dev/null http://allowed.test:8080/
		line=denied row=denied
		[ $mode = audit ] && line='would deny' row=would-deny
		x_err_has "^weir: $line tcp allowed\.test:8080 \(192\.0\.2\.10, curl pid [0-9]+\)$"
		x_err_has "^weir:   $row +tcp +allowed\.test:8080 \(192\.0\.2\.10\) +x1$"
		x_json "$T/ev-port-$mode" 'any(.[]; .op == "connect4" and .port == 8080 and
			.reason == "port-or-protocol-not-allowed" and .domain == "allowed.test")'
		t_end
	done
}

test_upstream_setting() {
	local pol
	pol=$(e2e_policy up <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		dns:
		  upstream: [127.0.0.53]
	EOF
	)
	# resolv.conf names a server that does not exist: only dns.upstream works.
	printf 'nameserver 198.51.100.99\n' >"$T/resolv.conf"
	t_begin "dns.upstream overrides /etc/resolv.conf"
	run_weir -p "$pol" -- "${DIG[@]}" +short @198.51.100.53 allowed.test
	x_rc 0
	x_out 192.0.2.10
	t_end
	printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$DNS_ADDR" >"$T/resolv.conf"
	t_begin "an upstream on port 53 draws no warning of a port anyone may bind"
	x_err_lacks "any local user may bind"
	t_end
	# A loopback upstream on a port any user may bind (dnsmasq there would
	# share it with whoever binds it too, SO_REUSEADDR): weir says so.
	pol=$(e2e_policy up2 <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		dns:
		  upstream: ["127.0.0.53:5353"]
	EOF
	)
	t_begin "a loopback upstream on an unprivileged port is named on stderr"
	run_weir -p "$pol" -- "${DIG[@]}" +short +tries=1 +time=2 @198.51.100.53 allowed.test
	x_err_has "upstream nameserver 127.0.0.53 port 5353 is on loopback at a port any local user may bind"
	t_end
}

# x_err_count N ERE: exactly N stderr lines match ERE.
x_err_count() {
	local n
	n=$(grep -cE -- "$2" "$ERR")
	[ "$n" = "$1" ] || t_why "$n stderr lines match /$2/, want $1 (stderr: $(t_tail "$ERR" 6))"
}

test_upstream_failures() {
	local pol
	# 127.0.0.54: nothing listens (ICMP port unreachable, at once);
	# 198.51.100.99: no route at all; 203.0.113.99: routed into lo, where
	# no address has it: the packets vanish and the query times out.
	ip route add 203.0.113.99/32 dev lo || e2e_die "cannot route 203.0.113.99 into lo"
	pol=$(e2e_policy dead <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		    ports: [80]
		deny:
		  - domain: deny.test
		dns:
		  upstream: [127.0.0.54, 198.51.100.99]
	EOF
	)
	t_begin "upstream refused / no route: said once each, SERVFAIL, counted as failed"
	upstream_mark
	run_weir -p "$pol" -e "$T/ev12" -- sh -c "
		${DIG[*]} @198.51.100.53 allowed.test | grep status;
		${DIG[*]} @198.51.100.53 allowed.test AAAA | grep status;
		${DIG[*]} +tcp @198.51.100.53 allowed.test | grep status;
		${DIG[*]} @198.51.100.53 other.test | grep status"
	x_rc 0
	[ "$(grep -c 'status: SERVFAIL' "$OUT")" = 3 ] ||
		t_why "want 3 SERVFAIL, got: $(t_tail "$OUT" 4)"
	grep -q 'status: REFUSED' "$OUT" || t_why "other.test was not REFUSED"
	# Static lookup of deny.test (A, AAAA) + 3 queries x 2 attempts: one line each.
	x_err_count 1 '^weir: DNS upstream 127\.0\.0\.54:53 unreachable: connection refused$'
	x_err_count 1 '^weir: DNS upstream 198\.51\.100\.99:53 unreachable: network unreachable$'
	x_err_count 0 'cannot resolve'
	x_err_has '^weir:   dns: 0 answered, 1 refused, 3 failed \(upstream unreachable or failing\)$'
	x_json "$T/ev12" '[.[] | select(.op == "dns" and .name == "allowed.test")] | length == 3
		and all(.verdict == "allow" and .rcode == "SERVFAIL"
			and .reason == "upstream-unreachable")'
	t_end

	pol=$(e2e_policy slow <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		dns:
		  upstream: [203.0.113.99]
	EOF
	)
	# weir gives up after 2 x 1.5 s: dig waits longer than that.
	# -q: the failure is still said, and makes the summary worth printing.
	t_begin "upstream timeout: said once for 3 queries, SERVFAIL in ~3 s, counted as failed"
	run_weir -q -p "$pol" -e "$T/ev13" -- sh -c "
		for q in A AAAA TXT; do dig +time=6 +tries=1 @198.51.100.53 allowed.test \$q & done
		wait" 
	x_rc 0
	[ "$(grep -c 'status: SERVFAIL' "$OUT")" = 3 ] ||
		t_why "want 3 SERVFAIL, got: $(grep -E 'status|timed out' "$OUT" | tr '\n' '|')"
	x_err_count 1 '^weir: DNS upstream 203\.0\.113\.99:53 unreachable: timeout$'
	x_err_has '^weir:   dns: 0 answered, 0 refused, 3 failed \(upstream unreachable or failing\)$'
	x_json "$T/ev13" '[.[] | select(.op == "dns")] | length == 3
		and all(.rcode == "SERVFAIL" and .reason == "upstream-timeout")'
	x_json "$T/ev13" 'any(.[]; .op == "run-end" and .dns_failed == 3 and .dns.allow == 3)'
	t_end

	# The program gives up first (2 s; weir's first attempt timed out at
	# 1.5 s, its second was still waiting): curl with resolv.conf's
	# timeout:1 attempts:2 does so. Those queries failed too.
	t_begin "upstream timeout, the program gives up before weir: said, counted as failed"
	run_weir -p "$pol" -e "$T/ev14" -- sh -c "
		for q in A AAAA TXT; do dig +time=2 +tries=1 @198.51.100.53 allowed.test \$q & done
		wait"
	x_rc 0
	[ "$(grep -c 'timed out' "$OUT")" = 3 ] ||
		t_why "want 3 dig timeouts, got: $(grep -E 'status|timed out' "$OUT" | tr '\n' '|')"
	x_err_count 1 '^weir: DNS upstream 203\.0\.113\.99:53 unreachable: timeout$'
	x_err_has '^weir:   dns: 0 answered, 0 refused, 3 failed \(upstream unreachable or failing\)$'
	x_json "$T/ev14" '[.[] | select(.op == "dns")] | length == 3
		and all(.rcode == "SERVFAIL" and .reason == "upstream-timeout")'
	x_json "$T/ev14" 'last | .op == "run-end" and .dns_failed == 3'
	t_end

	# dnsmasq with no upstream of its own answers REFUSED outside .test:
	# the upstream is no use for that name, and curl would only say
	# "Could not resolve host".
	pol=$(e2e_policy refusing <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: registry.example
	EOF
	)
	t_begin "upstream answers REFUSED for an allowed name: said once, counted as failed, relayed"
	run_weir -p "$pol" -e "$T/ev15" -- sh -c "
		${DIG[*]} @198.51.100.53 registry.example | grep status;
		${DIG[*]} @198.51.100.53 registry.example AAAA | grep status"
	x_rc 0
	[ "$(grep -c 'status: REFUSED' "$OUT")" = 2 ] || t_why "want 2 REFUSED, got: $(t_tail "$OUT" 2)"
	x_err_count 1 '^weir: DNS upstream 127\.0\.0\.53:53 failing: it answered REFUSED \('
	x_err_has '^weir:   dns: 0 answered, 0 refused, 2 failed \(upstream unreachable or failing\)$'
	x_json "$T/ev15" '[.[] | select(.op == "dns")] | length == 2
		and all(.verdict == "allow" and .rcode == "REFUSED" and .reason == "upstream-refused")'
	x_json "$T/ev15" 'last | .op == "run-end" and .dns_failed == 2'
	t_end
	ip route del 203.0.113.99/32 dev lo
}

# The UDP port weir's resolver for the run of weir WPID listens on (on
# 127.0.0.1): weir's own socket, or the daemon's for that run.
resolver_port() {
	if [ "${WEIR_E2E_DAEMON:-}" = 1 ]; then
		"$WEIR" ps --json 2>/dev/null |
			jq -r --arg l "run-$1" '.attachments[] | select(.label == $l) | .dns_port'
	else
		ss -Hulnp 'src 127.0.0.1' 2>/dev/null | grep "pid=$1," | awk '{ print $4 }' |
			sed 's/.*://' | head -1
	fi
}

# Only queries the run's programs redirected are served: a process outside
# the run (here the test itself) that finds the resolver's port and asks it
# directly gets nothing, before and after the run's own queries (the
# resolver remembers the sockets it found, never one it did not).
test_outsider_unserved() {
	local w port i
	t_begin "a process outside the run asking weir's resolver directly: the run goes on"
	rm -f "$T/os.started" "$T/os.go" "$T/os.inside"
	"$WEIR" run -q -p "$POL" -- sh -c 'getent ahostsv4 allowed.test >"$1/os.inside"
		: >"$1/os.started"
		i=0; while [ ! -e "$1/os.go" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
		getent ahostsv4 allowed.test >>"$1/os.inside"' sh "$T" 2>"$T/os.err" &
	w=$!
	for ((i = 0; i < 200; i++)); do
		[ -e "$T/os.started" ] && break
		sleep 0.05
	done
	port=$(resolver_port "$w")
	[ -n "$port" ] && [ "$port" != null ] || t_why "no resolver port found for weir $w"
	"${DIG[@]}" @127.0.0.1 -p "${port:-1}" allowed.test A >"$T/os.dig1" 2>&1
	"${DIG[@]}" +tcp @127.0.0.1 -p "${port:-1}" allowed.test A >"$T/os.dig2" 2>&1
	: >"$T/os.go"
	wait "$w" || t_why "weir exit $?: $(t_tail "$T/os.err")"
	ERR=$T/os.err
	t_end

	# R7-3: a port any user may bind would be theirs once weir is gone
	# (the cgroup's port 53 still redirected there): below
	# ip_unprivileged_port_start only root can, and nobody cannot now.
	t_begin "weir's resolver listens on a port only root may bind"
	[ -n "$port" ] && [ "$port" != null ] &&
		[ "$port" -lt "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)" ] ||
		t_why "resolver port ${port:-none} is one any user may bind"
	x_err_lacks 'a port any local user may bind'
	setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))' "${port:-1}" 2>"$T/os.bind" &&
		t_why "nobody bound 127.0.0.1:$port once weir was gone"
	grep -q PermissionError "$T/os.bind" || t_why "nobody's bind: $(t_tail "$T/os.bind")"
	t_end

	t_begin "a process outside the run gets no answer from it (UDP, TCP)"
	grep -q 'ANSWER SECTION' "$T/os.dig1" && t_why "UDP from outside answered: $(t_tail "$T/os.dig1")"
	grep -q 'ANSWER SECTION' "$T/os.dig2" && t_why "TCP from outside answered: $(t_tail "$T/os.dig2")"
	[ "$(grep -c '^192\.0\.2\.10 ' "$T/os.inside")" -ge 2 ] ||
		t_why "the run's own lookups: $(cat "$T/os.inside")"
	t_end
}

test_static_names() {
	local pol
	pol=$(e2e_policy static <<-EOF
		version: 1
		loopback: deny
		allow:
		  - cidr: 192.0.2.0/24
		    ports: [80]
		  - domain: hosts-only.test
		    ports: [80]
		deny:
		  - domain: other.test
	EOF
	)
	t_begin "a deny name's addresses are denied even when reached by address"
	run_weir -p "$pol" -e "$T/ev9" -- "$NETPROBE" tcp 192.0.2.11 80 d9a
	x_out EPERM
	x_not_arrived "$LOG" ' d9a$'
	x_json "$T/ev9" 'any(.[]; .dst == "192.0.2.11" and .rule == "deny[0]"
		and .domain == "other.test")'
	t_end

	# A name only /etc/hosts knows: no DNS traffic, so weir reads the file.
	printf '127.0.0.1 localhost\n203.0.113.66 hosts-only.test\n' >"$T/hosts"
	mount --bind "$T/hosts" /etc/hosts || e2e_die "cannot bind-mount a test /etc/hosts"
	t_begin "names in /etc/hosts are allowed at their addresses there"
	upstream_mark
	run_weir -p "$pol" -- sh -c "getent ahostsv4 hosts-only.test >/dev/null &&
		$NETPROBE tcp 203.0.113.66 80 d9b"
	x_out ok
	x_arrived "$LOG" ' d9b$'
	x_upstream_not 'hosts-only'
	t_end
	umount /etc/hosts
}

test_rebinding() {
	local pol
	pol=$(e2e_policy rebind <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: rebind.test
	EOF
	)
	t_begin "DNS rebinding: an allowed name answering 127.0.0.1 does not open loopback"
	run_weir -p "$pol" -e "$T/ev10" -- sh -c "getent ahostsv4 rebind.test | head -1;
		$NETPROBE tcp 127.0.0.1 9000 d10"
	x_out "$(printf '127.0.0.1       STREAM rebind.test\nEPERM')"
	x_json "$T/ev10" 'any(.[]; .op == "dns" and .name == "rebind.test" and .answers == ["127.0.0.1"])'
	t_end
}

setup
test_rebinding
test_static_names
test_getaddrinfo_then_connect
test_refused_never_upstream
test_any_resolver_address
test_cname_and_wildcards
test_truncation_and_edns
test_ttl_expiry
test_audit_mode
test_udp_probes_are_not_denials
test_one_decision_per_attempt
test_upstream_setting
test_upstream_failures
test_outsider_unserved
e2e_finish
