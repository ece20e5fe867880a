#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 6, big lists through the daemon: a policy with a million-line
# cidr_list attached to a cgroup, then its file replaced by a version with
# another million-line list. A process in the cgroup connects to an address
# both versions allow, over and over, the whole time: not one of its
# connections may fail during the reload (the new policy is written beside
# the old one and takes over in one slot flip). And the daemon watches list
# files: an edited list reloads the policy using it, a bad one is refused
# with its FILE:LINE and the version in force stays. And weir run through
# the daemon with a million rules inline in its policy file (the text goes
# in the attach request: 22 MB, where other requests stop at 1 MiB).
#
#   WEIR_BUILD=/abs/build bash tests/daemon/biglists.sh      (root)
#
# Own --socket, --state-dir, --policy-dir (in the test's temp dir),
# --pin-root /sys/fs/bpf/weir-dbig-PID and cgroup <cgroup2>/weir-dbig-PID.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=daemon-biglists
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

# shellcheck source=tests/daemon/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
d_init dbig
D_START_SECS=60
D_API_SECS=180

LOG=$T/sink.log
CG=$CGP/c0
CG1=$CGP/c1
LOOPER=
N=1000000

d_on_cleanup() {
	[ -n "$LOOPER" ] && kill "$LOOPER" 2>/dev/null
}

# biglist FILE FIRST-OCTET: a million host prefixes in FIRST-OCTET/8, and
# 192.0.2.10, which both versions allow.
biglist() {
	awk -v n=$N -v o="$2" 'BEGIN {
		print "192.0.2.10"
		for (i = 0; i < n - 1; i++)
			printf "%d.%d.%d.%d\n", o, int(i / 65536), int(i / 256) % 256, i % 256
	}' >"$1.tmp" && mv "$1.tmp" "$1"
}

setup() {
	e2e_setup_lo 192.0.2.10/32 192.0.2.11/32 192.0.2.12/32
	e2e_start_sink sink "$LOG" 192.0.2.10:80 192.0.2.11:80 192.0.2.12:80
	mkdir -p "$PDIR" "$T/lists" "$CG" "$CG1" || e2e_die "cannot make $PDIR or $CG"
	biglist "$T/lists/v1.txt" 10
	biglist "$T/lists/v2.txt" 11
	policy big <<-EOF
		version: 1
		loopback: deny
		allow:
		  - cidr_list: $T/lists/v1.txt
		    ports: [80]
	EOF
	start_daemon
}

probe() { # ADDR [CGROUP]: ok or the errno name, from inside the cgroup
	in_cg "${2:-$CG}" "$NETPROBE" tcp "$1" 80 p 2>/dev/null
}

# until_probe ADDR WANT CGROUP: polled (the daemon reloads on its own)
until_probe() {
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(probe "$1" "$3")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

test_attach() {
	local t0 t1
	t_begin "a policy with a 1M-line cidr_list attaches through the daemon"
	t0=$(date +%s%N)
	api POST /v1/attachments "{\"cgroup\":\"$CG\",\"policy\":\"big\"}" >/dev/null
	t1=$(date +%s%N)
	[ "$CODE" = 200 ] || [ "$CODE" = 201 ] ||
		t_why "attach: HTTP $CODE: $(cat "$T/api.out") $(t_tail "$T/daemon.err")"
	[ "$(probe 192.0.2.10)" = ok ] || t_why "192.0.2.10 (in both lists) is not reachable"
	[ "$(probe 192.0.2.11)" = EPERM ] || t_why "192.0.2.11 (in no list) is reachable"
	t_end
	echo "# attach with 1M prefixes: $(((t1 - t0) / 1000000)) ms"
}

test_reload_is_atomic() {
	local i ok=0 bad=0 t0 t1
	t_begin "a reload of a 1M-prefix policy: a process connecting all along never fails"
	# The looper: a connection to 192.0.2.10 after another, each result a line.
	sh -c 'echo $$ >"$0/cgroup.procs" && while [ ! -e "$1" ]; do
		"$2" tcp 192.0.2.10 80 loop >>"$3" 2>&1; done' \
		"$CG" "$T/stop" "$NETPROBE" "$T/loop.out" &
	LOOPER=$!
	for ((i = 0; i < 50; i++)); do
		[ -s "$T/loop.out" ] && break
		sleep 0.1
	done
	t0=$(date +%s%N)
	policy big <<-EOF
		version: 1
		loopback: deny
		allow:
		  - cidr_list: $T/lists/v2.txt
		    ports: [80]
		  - ip: 192.0.2.11
		    ports: [80]
	EOF
	for ((i = 0; i < 1800; i++)); do
		[ "$(probe 192.0.2.11)" = ok ] && break
		sleep 0.1
	done
	t1=$(date +%s%N)
	[ "$(probe 192.0.2.11)" = ok ] || t_why "the new version never took over: $(t_tail "$T/daemon.err")"
	sleep 0.3 # a few more connections after the flip
	touch "$T/stop"
	e2e_wait_gone "$LOOPER" 50
	LOOPER=
	ok=$(grep -c '^ok$' "$T/loop.out")
	bad=$(grep -vc '^ok$' "$T/loop.out")
	((ok >= 5)) || t_why "only $ok connections during the reload"
	((bad == 0)) || t_why "$bad of $((ok + bad)) connections failed: $(sort "$T/loop.out" | uniq -c | tr '\n' ' ')"
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" '.[0].attachments | map(select(.policy == "big")) | all(.generation == 2)'
	t_end
	echo "# reload with 1M prefixes until the new version answers: $(((t1 - t0) / 1000000)) ms; $ok connections during it"
}

# Reloads between the intervals (65,536+ IPv4 entries) and the trie (fewer),
# back and forth, while a process connects to an address no version allows
# and to one every version allows: no moment lets the first through or
# refuses the second (the slot flip, and the old slot's release after it).
test_ranges_trie_flips() {
	local cg=$CGP/c2 i k ok=0 bad=0 den=0 leak=0
	t_begin "reloads between intervals and trie, back and forth: the denied address never connects, the allowed one never fails"
	mkdir -p "$cg"
	# 70,000 hosts in 10/8: past WEIR_RANGES_MIN (65,536), so written as intervals.
	awk 'BEGIN { print "192.0.2.10"
		for (i = 0; i < 70000; i++)
			printf "10.%d.%d.%d\n", int(i / 65536), int(i / 256) % 256, i % 256 }' \
		>"$T/lists/mid.txt"
	policy flip <<-EOF
		version: 1
		loopback: deny
		allow:
		  - cidr_list: $T/lists/mid.txt
		    ports: [80]
	EOF
	api POST /v1/attachments "{\"cgroup\":\"$cg\",\"policy\":\"flip\"}" >/dev/null
	[ "$CODE" = 201 ] || t_why "attach: HTTP $CODE $(cat "$T/api.out")"
	sh -c 'echo $$ >"$0/cgroup.procs" && while [ ! -e "$1" ]; do
		"$2" tcp 192.0.2.12 80 flipdeny >>"$3.deny" 2>&1
		"$2" tcp 192.0.2.10 80 flipallow >>"$3.allow" 2>&1; done' \
		"$cg" "$T/stop2" "$NETPROBE" "$T/flip" &
	LOOPER=$!
	for ((k = 0; k < 6; k++)); do
		if ((k % 2 == 0)); then
			policy flip <<-EOF
				version: 1
				loopback: deny
				allow:
				  - ip: 192.0.2.10
				    ports: [80]
				  - ip: 192.0.2.11
				    ports: [80]
			EOF
		else
			policy flip <<-EOF
				version: 1
				loopback: deny
				allow:
				  - cidr_list: $T/lists/mid.txt
				    ports: [80]
			EOF
		fi
		api POST /v1/reload >/dev/null
		[ "$CODE" = 200 ] || t_why "reload $k: HTTP $CODE"
		for ((i = 0; i < 100; i++)); do
			[ "$(probe 192.0.2.11 "$cg")" = "$( ((k % 2 == 0)) && echo ok || echo EPERM)" ] &&
				break
			sleep 0.05
		done
	done
	touch "$T/stop2"
	e2e_wait_gone "$LOOPER" 50
	LOOPER=
	ok=$(grep -c '^ok$' "$T/flip.allow")
	bad=$(grep -vc '^ok$' "$T/flip.allow")
	den=$(grep -c '^EPERM$' "$T/flip.deny")
	leak=$(grep -vc '^EPERM$' "$T/flip.deny")
	((ok >= 5 && den >= 5)) || t_why "too few connections: $ok allowed, $den denied"
	((bad == 0)) || t_why "$bad allowed connections failed: $(sort "$T/flip.allow" | uniq -c | tr '\n' ' ')"
	((leak == 0)) || t_why "$leak denied connections did not get EPERM: $(sort "$T/flip.deny" | uniq -c | tr '\n' ' ')"
	grep -q " flipdeny$" "$LOG" && t_why "192.0.2.12 was reached"
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	t_end
}

# The state the daemon reports for the attachment of policy NAME.
att_state() {
	api GET /v1/attachments >"$T/att.json"
	jq -r --arg p "$1" '.attachments | map(select(.policy == $p)) | .[0].state' \
		"$T/att.json"
}

test_list_edits() {
	local i st
	t_begin "an edited cidr_list file is picked up by the daemon (no weir reload)"
	printf '# small list\n192.0.2.10\n' >"$T/lists/small.txt"
	policy small <<-EOF
		version: 1
		loopback: deny
		allow:
		  - cidr_list: $T/lists/small.txt
		    ports: [80]
	EOF
	api POST /v1/attachments "{\"cgroup\":\"$CG1\",\"policy\":\"small\"}" >/dev/null
	[ "$CODE" = 200 ] || [ "$CODE" = 201 ] || t_why "attach: HTTP $CODE: $(cat "$T/api.out")"
	[ "$(probe 192.0.2.11 "$CG1")" = EPERM ] || t_why "192.0.2.11 reachable before the edit"
	# Replaced whole (an editor, mv), as lists are usually updated.
	printf '# small list\n192.0.2.10\n192.0.2.11\n' >"$T/lists/small.tmp"
	mv "$T/lists/small.tmp" "$T/lists/small.txt"
	until_probe 192.0.2.11 ok "$CG1" ||
		t_why "192.0.2.11, added to the list, never became reachable: $(t_tail "$T/daemon.err")"
	t_end

	t_begin "a bad line written into a list: refused with FILE:LINE, the version in force stays"
	# Written in place this time (close after write).
	printf '192.0.2.99/24\n' >>"$T/lists/small.txt"
	for ((i = 0; i < 300; i++)); do
		st=$(att_state small)
		[[ $st == *small.txt:4:* ]] && break
		sleep 0.1
	done
	[[ $st == "policy error: "*"/lists/small.txt:4: 192.0.2.99/24 has host bits set"* ]] ||
		t_why "state '$st', want the list's FILE:LINE"
	grep -q 'small\.txt:4: 192\.0\.2\.99/24 has host bits set' "$T/daemon.err" ||
		t_why "the daemon's log does not name the list's line: $(t_tail "$T/daemon.err")"
	[ "$(probe 192.0.2.11 "$CG1")" = ok ] || t_why "the policy in force was dropped (192.0.2.11)"
	[ "$(probe 192.0.2.10 "$CG1")" = ok ] || t_why "the policy in force was dropped (192.0.2.10)"
	[ "$(probe 192.0.2.12 "$CG1")" = EPERM ] || t_why "192.0.2.12 (in no list) is reachable"
	t_end

	t_begin "the list fixed: taken again, the attachment's state is ok"
	printf '192.0.2.10\n192.0.2.12\n' >"$T/lists/small.txt"
	until_probe 192.0.2.12 ok "$CG1" || t_why "192.0.2.12 never became reachable"
	[ "$(probe 192.0.2.11 "$CG1")" = EPERM ] || t_why "192.0.2.11, now out of the list, is reachable"
	[ "$(att_state small)" = ok ] || t_why "state '$(att_state small)'"
	t_end
}

test_run_inline() {
	local pol=$T/inline.yaml
	{
		printf 'version: 1\nloopback: deny\nallow:\n'
		awk -v n=$N 'BEGIN { for (i = 0; i < n - 1; i++)
			printf "  - ip: 10.%d.%d.%d\n", int(i / 65536), int(i / 256) % 256, i % 256 }'
		printf '  - ip: 192.0.2.10\n'
	} >"$pol"
	t_begin "weir run through the daemon, 1M rules inline: the last one's address connects, named by its line; one outside is denied"
	"$WEIR" run --socket "$SOCK" -p "$pol" -e "$T/inline.ev" -- \
		sh -c '"$0" tcp 192.0.2.10 80 in$$; "$0" tcp 192.0.2.11 80 out$$; exit 0' "$NETPROBE" \
		>"$T/inline.out" 2>"$T/inline.err" || t_why "weir run failed: $(t_tail "$T/inline.err")"
	[ "$(sed -n 1p "$T/inline.out")" = ok ] || t_why "192.0.2.10: '$(sed -n 1p "$T/inline.out")'"
	[ "$(sed -n 2p "$T/inline.out")" = EPERM ] || t_why "192.0.2.11: '$(sed -n 2p "$T/inline.out")'"
	grep -q "^weir: attached .*policy inline:$pol" "$T/daemon.err" ||
		t_why "not through the daemon: $(t_tail "$T/daemon.err")"
	x_json "$T/inline.ev" 'map(select(.verdict == "allow" and .dst == "192.0.2.10")) |
		.[0].rule == "allow[999999]" and (.[0].rule_origin | endswith("/inline.yaml:1000003"))'
	t_end
}

setup
test_attach
test_reload_is_atomic
test_ranges_trie_flips
test_list_edits
test_run_inline
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
