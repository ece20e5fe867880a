#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 6, weir daemon under attack: what a process inside an enforced
# cgroup, a local user, or a careless operator could do to the daemon, each
# tried for real (real cgroups, real sockets, a sink that logs what arrives)
# and checked to change nothing.
#
#   WEIR_BUILD=/abs/build bash tests/daemon/attack.sh      (root)
#
# Its own daemon: --socket, --state-dir, --policy-dir in the test's temp
# dir, --pin-root /sys/fs/bpf/weir-datk-PID, cgroups below
# <cgroup2>/weir-datk-PID. Only those are ever removed.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=daemon-attack
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
LOG=$T/sink.log
SOCK=$T/weir.sock
PDIR=$T/policies
STATE=$T/state
PINS=/sys/fs/bpf/weir-datk-$$
CGP=$CG2/weir-datk-$$
DPID=
NOBODY=65534
AS_NOBODY=(setpriv --reuid "$NOBODY" --regid "$NOBODY" --clear-groups)

attack_cleanup() {
	local i
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && e2e_wait_gone "$DPID" 30
	if [ -d "$CGP" ]; then
		for i in "$CGP"/*/; do
			[ -e "$i/cgroup.kill" ] && echo 1 >"$i/cgroup.kill"
		done
		for ((i = 0; i < 50; i++)); do
			grep -qs '^populated 0' "$CGP/cgroup.events" && break
			sleep 0.1
		done
		find "$CGP" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	[ -d "$PINS" ] && rm -rf "$PINS"
	e2e_cleanup
}
trap attack_cleanup EXIT

# api METHOD PATH [BODY]: the reply body on stdout; HTTP status in $CODE.
CODE=
api() {
	local out=$T/api.out
	CODE=$(curl -sS --max-time 5 --unix-socket "$SOCK" -o "$out" -w '%{http_code}' \
		-X "$1" ${3:+-H 'Content-Type: application/json' --data "$3"} "http://weir$2") ||
		CODE=000
	cat "$out" 2>/dev/null
}

attach() { # CGROUP POLICY
	api POST /v1/attachments "{\"cgroup\":\"$1\",\"policy\":\"$2\"}"
}

start_daemon() {
	local i
	"$WEIR" daemon --socket "$SOCK" --policy-dir "$PDIR" --state-dir "$STATE" \
		--pin-root "$PINS" "$@" >>"$T/daemon.out" 2>>"$T/daemon.err" &
	DPID=$!
	disown "$DPID"
	for ((i = 0; i < 200; i++)); do
		curl -sf --max-time 1 --unix-socket "$SOCK" http://weir/v1/health >/dev/null 2>&1 &&
			return 0
		e2e_dead "$DPID" && break
		sleep 0.05
	done
	e2e_die "weir daemon did not answer: $(t_tail "$T/daemon.err" 5)"
}

IN_CG=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"')
in_cg() {
	"${IN_CG[@]}" "$@"
}

# probe CGROUP ADDR: "ok" or the errno name of a TCP connect to ADDR:80.
probe() {
	in_cg "$1" "$NETPROBE" tcp "$2" 80 weir-probe 2>/dev/null
}

# write_policy FILE ALLOWED-IP: a policy allowing ALLOWED-IP:80 only.
write_policy() {
	cat >"$1" <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: $2
		    ports: [80]
	EOF
}

setup() {
	e2e_setup_lo 192.0.2.10/32 192.0.2.99/32
	e2e_start_sink sink "$LOG" 192.0.2.10:80 192.0.2.99:80
	mkdir -p "$PDIR" "$CGP" || e2e_die "cannot make $PDIR or $CGP"
	write_policy "$PDIR/alpha.yaml" 192.0.2.10
	start_daemon
}

# A careless operator attaches a policy file its user can write: the user
# (whose processes are in the cgroup) would rewrite it and wait for any
# reload. The daemon refuses such a file.
test_user_writable_policy_file_is_refused() {
	local d=$T/userpol cg=$CGP/userpol
	t_begin "attach with a policy file a user owns (or in a dir a user owns): 400, nothing attached"
	mkdir -p "$d" "$cg"
	write_policy "$d/p.yaml" 192.0.2.10
	chown -R "$NOBODY:$NOBODY" "$d"
	attach "$cg" "$d/p.yaml" >/dev/null
	[ "$CODE" = 400 ] || t_why "user-owned file: HTTP $CODE, want 400"
	grep -q 'owned by uid\|writable' "$T/api.out" || t_why "the error: $(cat "$T/api.out")"
	if [ "$CODE" = 201 ]; then # what the user does with it
		"${AS_NOBODY[@]}" sh -c 'cat >"$0.tmp" && mv "$0.tmp" "$0"' "$d/p.yaml" <<-EOF
			version: 1
			allow:
			  - ip: 192.0.2.99
			    ports: [80]
		EOF
		api POST /v1/reload >/dev/null
		[ "$(probe "$cg" 192.0.2.99)" = EPERM ] ||
			t_why "the user rewrote the policy of its own cgroup: 192.0.2.99 reached"
		api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	fi
	# root's file in a directory nobody owns: nobody could swap it
	chown root:root "$d/p.yaml"
	attach "$cg" "$d/p.yaml" >/dev/null
	[ "$CODE" = 400 ] || t_why "root's file in nobody's directory: HTTP $CODE, want 400"
	[ "$CODE" = 201 ] && api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	t_end
}

# A file that was root's when attached and is given away later: a reload
# keeps the version in force and says why.
test_policy_file_given_away_later_keeps_the_old_version() {
	local d=$T/rootpol cg=$CGP/givenaway
	t_begin "a policy file chowned to a user after attach: the user's rewrite is not loaded"
	mkdir -p "$d" "$cg"
	write_policy "$d/p.yaml" 192.0.2.10
	attach "$cg" "$d/p.yaml" >/dev/null
	[ "$CODE" = 201 ] || t_why "attach of root's file: HTTP $CODE $(cat "$T/api.out")"
	chown "$NOBODY" "$d/p.yaml"
	"${AS_NOBODY[@]}" sh -c 'cat >"$0"' "$d/p.yaml" <<-EOF
		version: 1
		allow:
		  - ip: 192.0.2.99
		    ports: [80]
	EOF
	api POST /v1/reload >/dev/null
	[ "$(probe "$cg" 192.0.2.99)" = EPERM ] ||
		t_why "the user's version of the policy is in force: 192.0.2.99 reached"
	[ "$(probe "$cg" 192.0.2.10)" = ok ] || t_why "the old version is not in force"
	api GET /v1/attachments >"$T/ps.json"
	jq -e --arg cg "$cg" '.attachments[] | select(.cgroup == $cg) |
		.state | test("policy error: .*owned by uid 65534")' "$T/ps.json" >/dev/null ||
		t_why "its state does not say why: $(jq -c '.attachments' "$T/ps.json" | cut -c1-300)"
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	t_end
}

# A FIFO where a policy file is expected: opening it would block the thread
# holding the daemon's lock, and with it every attach (every weir run and
# container start) and the event stream.
test_fifo_policy_does_not_stall_the_daemon() {
	local cg=$CGP/fifo
	t_begin "a FIFO as a policy (by path, and in the policy dir): refused, the daemon keeps answering"
	mkdir -p "$cg"
	mkfifo "$T/fifo.yaml" "$PDIR/fifo.yaml"
	attach "$cg" "$T/fifo.yaml" >/dev/null
	[ "$CODE" = 400 ] || t_why "attach with a FIFO: HTTP $CODE, want 400"
	api POST /v1/reload >/dev/null
	[ "$CODE" = 200 ] || t_why "reload with a FIFO in the policy dir: HTTP $CODE"
	sleep 0.2 # inotify's rescan too
	api GET /v1/health >/dev/null
	[ "$CODE" = 200 ] || t_why "health after the FIFO: HTTP $CODE (the daemon is stuck)"
	attach "$cg" alpha >/dev/null
	[ "$CODE" = 201 ] || t_why "attach after the FIFO: HTTP $CODE"
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	rm -f "$T/fifo.yaml" "$PDIR/fifo.yaml"
	t_end
}

setup
test_user_writable_policy_file_is_refused
test_policy_file_given_away_later_keeps_the_old_version
test_fifo_policy_does_not_stall_the_daemon
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
