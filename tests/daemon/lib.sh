# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
#
# Helpers shared by the tier-6 scripts (tests/daemon/*.sh): a weir daemon
# of the test's own and the cgroups it enforces. Sourced after
# tests/e2e/lib.sh's e2e_enter_ns and e2e_init, in the private network and
# mount namespaces those make:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   d_init TAG
#
# d_init sets, for the script and for the functions below:
#   T      the test's temp dir ($E2E_TMP)
#   SOCK   $T/weir.sock, the daemon's --socket
#   PDIR   $T/policies (made), its --policy-dir
#   STATE  $T/state, its --state-dir
#   PINS   /sys/fs/bpf/weir-TAG-PID, its --pin-root
#   CGP    <cgroup2>/weir-TAG-PID, the parent of the test's cgroups (not
#          made: a script that needs it makes it)
#   DPID   the daemon's pid, once start_daemon ran
#   D_PIDS every daemon start_daemon started (their <cgroup2>/weir/keys-PID,
#          which a daemon killed with -9 leaves, is removed at exit)
# and arms d_cleanup at exit. Only those are ever removed.
#
# Settings a script may change after d_init:
#   D_STOP       the signal that stops the daemon at exit: KILL (its
#                attachments stay pinned, then removed with PINS) or TERM
#   D_START_SECS how long start_daemon waits for /v1/health (10 s; times
#                WEIR_TEST_SLOW under emulation, tests/kernels/vm.sh)
#   D_API_SECS   curl's --max-time for api (20 s)
#   D_ARGS       an array of arguments every start_daemon adds (none)
# and d_on_cleanup, if the script defines it, runs first at exit (its own
# loops and listeners).

# d_init TAG
d_init() {
	T=$E2E_TMP
	SOCK=$T/weir.sock
	PDIR=$T/policies
	STATE=$T/state
	PINS=/sys/fs/bpf/weir-$1-$$
	CGP=$CG2/weir-$1-$$
	DPID=
	D_PIDS=()
	D_STOP=KILL
	D_START_SECS=10
	D_API_SECS=20
	D_ARGS=()
	mkdir -p "$PDIR" || e2e_die "cannot make $PDIR"
	trap d_cleanup EXIT
}

# d_kill_cgroups DIR: kill everything in the cgroups below DIR, wait (5 s
# at most) until DIR is empty, remove them and DIR.
d_kill_cgroups() {
	local i
	[ -n "$1" ] && [ -d "$1" ] || return 0
	for i in "$1"/*/; do
		[ -e "$i/cgroup.kill" ] && echo 1 >"$i/cgroup.kill"
	done
	for ((i = 0; i < 50; i++)); do
		grep -qs '^populated 0' "$1/cgroup.events" && break
		sleep 0.1
	done
	find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
}

d_cleanup() {
	local tenths=30 p
	declare -F d_on_cleanup >/dev/null && d_on_cleanup
	[ "$D_STOP" = TERM ] && tenths=50
	[ -n "$DPID" ] && kill "-$D_STOP" "$DPID" 2>/dev/null && e2e_wait_gone "$DPID" "$tenths"
	d_kill_cgroups "$CGP"
	for p in "${D_PIDS[@]}"; do rmdir "$CG2/weir/keys-$p" 2>/dev/null; done
	# Our pins only: the cgroups are gone, so nothing they enforced is left.
	[ -n "$PINS" ] && [ -d "$PINS" ] && rm -rf "$PINS"
	e2e_cleanup
}

# start_daemon [ARG...]: start the daemon on our socket, dirs and pin root
# (ARGs added), wait until its socket answers (bounded). Its output goes to
# $T/daemon.{out,err}. An environment for it: VAR=VALUE start_daemon.
start_daemon() {
	local i n=$((D_START_SECS * 20 * ${WEIR_TEST_SLOW:-1}))
	"$WEIR" daemon --socket "$SOCK" --policy-dir "$PDIR" --state-dir "$STATE" \
		--pin-root "$PINS" "${D_ARGS[@]}" "$@" >>"$T/daemon.out" 2>>"$T/daemon.err" &
	DPID=$!
	D_PIDS+=("$DPID")
	disown "$DPID" # killed on purpose: no "Killed" line from bash
	for ((i = 0; i < n; i++)); do
		curl -sf --max-time 1 --unix-socket "$SOCK" http://weir/v1/health >/dev/null 2>&1 &&
			return 0
		e2e_dead "$DPID" && break
		sleep 0.05
	done
	e2e_die "weir daemon did not answer: $(t_tail "$T/daemon.err" 5)"
}

# api METHOD PATH [BODY]: the reply body on stdout (and in $T/api.out); the
# HTTP status in $CODE (000: no answer).
CODE=
api() {
	local out=$T/api.out
	CODE=$(curl -sS --max-time "$D_API_SECS" --unix-socket "$SOCK" -o "$out" \
		-w '%{http_code}' -X "$1" ${3:+-H 'Content-Type: application/json' --data "$3"} \
		"http://weir$2") || CODE=000
	cat "$out" 2>/dev/null
}

attach() { # CGROUP POLICY [LABEL]
	api POST /v1/attachments "{\"cgroup\":\"$1\",\"policy\":\"$2\"${3:+,\"name\":\"$3\"}}"
}

detach() { # CGROUP
	api POST /v1/detach "{\"cgroup\":\"$1\"}"
}

# policy NAME < YAML: $PDIR/NAME.yaml, replaced in one rename (the daemon
# watches the directory and must never read half a file).
policy() {
	cat >"$PDIR/$1.yaml.tmp" && mv "$PDIR/$1.yaml.tmp" "$PDIR/$1.yaml"
}

# in_cg CGROUP CMD...: run CMD inside CGROUP (it moves itself in first).
# "${IN_CG[@]}" CGROUP CMD... & when $! must be CMD's pid (a function in
# the background is a subshell).
# shellcheck disable=SC2016 # the sh -c script: single quotes on purpose
IN_CG=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"')
in_cg() {
	"${IN_CG[@]}" "$@"
}

# probe CGROUP ADDR [TOKEN]: "ok" or the errno name of a TCP connect to
# ADDR:80 from inside CGROUP (TOKEN sent, weir-probe by default).
probe() {
	in_cg "$1" "$NETPROBE" tcp "$2" 80 "${3:-weir-probe}" 2>/dev/null
}
