# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
#
# What the scripts of the adversarial tier (tests/adversarial/*.sh) share,
# on top of tests/e2e/lib.sh. Sourced first thing, after E2E_NAME is set:
# it re-runs the script in private network and mount namespaces, finds the
# binaries, makes the temp dir ($T) and arms the cleanup, which calls the
# script's adv_on_cleanup first if it defines one (cgroups, pins, daemons
# of its own).
#
#   E2E_NAME=waysout
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   adv_setup                 # lo, the sink, $POL
#   test_...                  # t_begin / x_* / t_end (tests/e2e/lib.sh)
#   adv_finish                # no cgroup left; "N passed, M failed"; status
#
# Every escape attempt sends a token to DENIED:PORT; the sink logs what
# arrived in $LOG, and nothing of an attempt may be there.

# shellcheck disable=SC2034 # E2E_TAP, T, LOG, POL...: for the sourcing script
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

adv_cleanup() {
	declare -F adv_on_cleanup >/dev/null && adv_on_cleanup
	e2e_cleanup
}
trap adv_cleanup EXIT

T=$E2E_TMP
LOG=$T/sink.log
DENIED=203.0.113.66
ALLOWED=192.0.2.10
PORT=9000

# adv_setup [ADDR:PORT...]: DENIED and ALLOWED on lo, a sink on both at
# PORT (and on each ADDR:PORT given), and POL: a policy that allows
# ALLOWED:PORT alone, loopback denied. $T is writable by the unprivileged
# side (--user nobody).
adv_setup() {
	e2e_setup_lo "$DENIED/32" "$ALLOWED/32"
	e2e_start_sink sink "$LOG" "$DENIED:$PORT" "$ALLOWED:$PORT" "$@"
	POL=$(e2e_policy "$E2E_NAME" <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: $ALLOWED
		    ports: [$PORT]
	EOF
	)
	chmod 1777 "$T"
}

# adv_copy FILE: FILE copied into $T, world-readable and executable, its
# path printed. The checkout may sit in a directory only root can enter (a
# fresh CI clone under mktemp -d): the unprivileged side runs the copy.
adv_copy() {
	local to
	to=$T/$(basename "$1")
	cp "$1" "$to" && chmod 755 "$to" || e2e_die "cp $1 $to"
	echo "$to"
}

# adv_until TENTHS CMD...: run CMD every tenth of a second until it
# succeeds, for up to TENTHS tenths, stretched on a slow machine (an
# emulated CPU under make test-kernels: WEIR_TEST_SLOW); CMD's last status.
adv_until() {
	local i n=$(($1 * ${WEIR_TEST_SLOW:-1}))
	shift
	for ((i = 1; i < n; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# adv_wait_ready FILE WHAT: wait for a helper started in the background to
# print "ready" in FILE.
adv_wait_ready() {
	adv_until 50 grep -qs '^ready$' "$1" || e2e_die "$2 did not start: $(t_tail "$1")"
}

# lsm_active: the BPF LSM is active as weir sees it (the active LSMs list
# bpf, and an LSM program loads); securityfs is mounted in this namespace
# if it is not, so that weir can read the list.
lsm_active() {
	[ -r /sys/kernel/security/lsm ] ||
		mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
	"$WEIR" run -v --standalone -p "$(echo 'version: 1' | e2e_policy lsm-probe)" -- true 2>&1 |
		grep -q 'sockets made outside the cgroup: refused'
}

# adv_finish: every run's cgroup gone, the count, the exit status.
adv_finish() {
	e2e_finish
	exit
}

# adv_skip WHY: the whole script cannot run here; one line that says so.
adv_skip() {
	t_ok "$1"
	echo "1 passed, 0 failed"
	exit 0
}
