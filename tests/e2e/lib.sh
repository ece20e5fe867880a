# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
#
# Helpers shared by tests/e2e/run.sh and tests/e2e/demo.sh. Sourced, not run.
#
# Everything happens in a private network namespace (and a private mount
# namespace, for the test /etc/resolv.conf) that e2e_enter_ns creates: the
# only "hosts" are addresses from the documentation ranges put on that
# namespace's lo, the only nameserver is a dnsmasq on 127.0.0.53, and no
# packet can leave. Every wait below is bounded.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
DNS_ADDR=127.0.0.53
# seconds one weir run may take before it is stopped (WEIR_TEST_SLOW: the
# kernel matrix under emulation, tests/kernels/vm.sh)
RUN_TIMEOUT=$((20 * ${WEIR_TEST_SLOW:-1}))

E2E_TMP=
E2E_PIDS=() # servers to stop at exit
E2E_RESOLV_MOUNTED=

# e2e_die MSG: setup failed. With E2E_TAP=1 (the test scripts) it is also
# a failed test in the TAP-style output; a script may define e2e_on_die to
# report it otherwise.
e2e_die() {
	echo "${E2E_NAME:-e2e}: $*" >&2
	if declare -F e2e_on_die >/dev/null; then
		e2e_on_die "$*"
	elif [ -n "${E2E_TAP:-}" ]; then
		echo "not ok - setup: $*"
		echo "0 passed, 1 failed"
	fi
	exit 1
}

# e2e_enter_ns SCRIPT ARGS...: re-run SCRIPT as root in fresh network and
# mount namespaces. Not `ip netns exec`: it remounts /sys, which hides the
# cgroup2 mount these scripts look at (weir itself copes: tests/e2e/runs.sh).
e2e_enter_ns() {
	local script
	script=$(readlink -f "$1")
	shift
	[ "${WEIR_E2E_IN_NS:-}" = 1 ] && return 0
	[ "$(id -u)" = 0 ] || e2e_die "must run as root (sudo)"
	((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) ||
		e2e_die "needs bash 5.1 or later (wait -n -p)"
	command -v unshare >/dev/null || e2e_die "unshare not found (package util-linux)"
	export WEIR_E2E_IN_NS=1
	exec unshare --net --mount --propagation private -- bash "$script" "$@"
}

# e2e_init: find the binaries, check the namespace is empty, make the temp
# dir and arm the cleanup.
e2e_init() {
	local b
	: "${WEIR_BUILD:=$REPO_ROOT/build}"
	WEIR_BUILD=$(readlink -f "$WEIR_BUILD")
	WEIR=$WEIR_BUILD/weir
	SINK=$WEIR_BUILD/bin/sink
	NETPROBE=$WEIR_BUILD/bin/netprobe
	for b in "$WEIR" "$SINK" "$NETPROBE"; do
		[ -x "$b" ] || e2e_die "$b missing: make build/weir build/bin/sink build/bin/netprobe"
	done
	for b in ip curl jq /usr/sbin/dnsmasq getent; do
		command -v "$b" >/dev/null || e2e_die "$b not found (make deps)"
	done
	[ "${WEIR_E2E_IN_NS:-}" = 1 ] || e2e_die "not in the private namespaces"
	# The network-safety guard: a fresh namespace has lo and nothing else.
	[ "$(ip -o link show | wc -l)" = 1 ] ||
		e2e_die "refusing to run: this network namespace has interfaces besides lo"
	CG2=$(awk '/ - cgroup2 / { print $5; exit }' /proc/self/mountinfo)
	[ -d "${CG2:-/nonexistent}" ] || e2e_die "no cgroup2 mount in /proc/self/mountinfo"
	# Tools must not wander off to a proxy named in the environment.
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
	E2E_TMP=$(mktemp -d /tmp/weir-e2e.XXXXXX) || e2e_die "mktemp failed"
	chmod 755 "$E2E_TMP"
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[ "${WEIR_E2E_DAEMON:-}" = 1 ] && e2e_start_daemon
	return 0
}

# With WEIR_E2E_DAEMON=1 (tests/daemon/run-client.sh) every weir run of the
# script goes through a weir daemon of its own ($WEIR_SOCKET; its state dir
# and policy dir in the temp dir, its pin root /sys/fs/bpf/weir-e2e-PID):
# the same checks, in the daemon's mode.
E2E_DAEMON_PID= E2E_DAEMON_PINS=
e2e_start_daemon() {
	local i d=$E2E_TMP/daemon
	mkdir -p "$d/policies"
	E2E_DAEMON_PINS=/sys/fs/bpf/weir-e2e-$$
	export WEIR_SOCKET=$d/weir.sock
	"$WEIR" daemon --socket "$WEIR_SOCKET" --policy-dir "$d/policies" --state-dir "$d/state" \
		--pin-root "$E2E_DAEMON_PINS" >"$d/out" 2>"$d/err" &
	E2E_DAEMON_PID=$!
	for ((i = 0; i < 200; i++)); do
		curl -sf --max-time 1 --unix-socket "$WEIR_SOCKET" http://weir/v1/health \
			>/dev/null 2>&1 && return 0
		e2e_dead "$E2E_DAEMON_PID" && break
		sleep 0.05
	done
	e2e_die "weir daemon did not answer: $(tail -n 3 "$d/err" | tr '\n' '|')"
}

e2e_stop_daemon() {
	[ -n "$E2E_DAEMON_PID" ] || return 0
	kill -TERM "$E2E_DAEMON_PID" 2>/dev/null
	e2e_wait_gone "$E2E_DAEMON_PID" 50 || kill -KILL "$E2E_DAEMON_PID" 2>/dev/null
	# Its keys cgroup, which only a daemon killed with -9 leaves.
	e2e_wait_gone "$E2E_DAEMON_PID" 30 && rmdir "$CG2/weir/keys-$E2E_DAEMON_PID" 2>/dev/null
	# Ours only, and its runs are over: nothing it enforced is left.
	[ -n "$E2E_DAEMON_PINS" ] && rm -rf "$E2E_DAEMON_PINS"
	E2E_DAEMON_PID=
}

# e2e_umount_below DIR: detach every mount at or below DIR, deepest first.
e2e_umount_below() {
	local m
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	return 0
}

e2e_cleanup() {
	local pid
	e2e_stop_daemon
	for pid in "${E2E_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${E2E_PIDS[@]}"; do
		e2e_wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null
	done
	[ -n "$E2E_RESOLV_MOUNTED" ] && umount /etc/resolv.conf 2>/dev/null
	# A test killed halfway may leave a mount below its directory (a
	# cgroup2 one, say): rm must never walk into it.
	[ -n "$E2E_TMP" ] && [ -z "${E2E_KEEP:-}" ] && e2e_umount_below "$E2E_TMP" &&
		rm -rf --one-file-system "$E2E_TMP"
	[ -n "${E2E_KEEP:-}" ] && echo "${E2E_NAME:-e2e}: kept $E2E_TMP" >&2
	return 0
}

# e2e_sleep_ms N
e2e_sleep_ms() {
	sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

# e2e_dead PID: gone, or a zombie nobody reaped yet whose threads are all
# gone too. A killed process's leader turns zombie while its other threads
# may still be exiting, and those hold its files (and their flock()s) until
# the last one is gone: a daemon's pin-root lock outlived a 49-attachment
# daemon's zombie leader by seconds on a loaded machine.
e2e_dead() {
	local st t
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$st" ] && return 0
	[ "$st" = Z ] || [ "$st" = X ] || return 1
	for t in /proc/"$1"/task/*; do
		[ "$t" = "/proc/$1/task/$1" ] || [ ! -e "$t" ] || return 1
	done
	return 0
}

# e2e_wait_gone PID TENTHS: wait up to TENTHS/10 s for PID to die.
e2e_wait_gone() {
	local i
	for ((i = 0; i < $2; i++)); do
		e2e_dead "$1" && return 0
		sleep 0.1
	done
	e2e_dead "$1"
}

# e2e_setup_lo ADDR/PLEN...: lo up, and the test hosts on it.
e2e_setup_lo() {
	local a
	ip link set lo up || e2e_die "ip link set lo up failed"
	for a in "$@"; do
		if [[ $a == *:* ]]; then
			ip -6 addr add "$a" dev lo nodad || e2e_die "ip -6 addr add $a failed"
		else
			ip addr add "$a" dev lo || e2e_die "ip addr add $a failed"
		fi
	done
}

# e2e_start_dns NAME,ADDR[,ADDR]...: dnsmasq on $DNS_ADDR:53 answering for
# these names only (everything under .test else is NXDOMAIN, nothing is
# forwarded), and /etc/resolv.conf pointing at it (bind mount, private to
# this mount namespace). Extra dnsmasq options: E2E_DNS_EXTRA (array).
E2E_DNS_EXTRA=()
e2e_start_dns() {
	local rec args=() i pid
	for rec in "$@"; do
		args+=("--host-record=$rec")
	done
	/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null \
		--listen-address="$DNS_ADDR" --bind-interfaces --port=53 \
		--no-resolv --no-hosts --local=/test/ --local-ttl=2 \
		--user=root --group=root --pid-file="$E2E_TMP/dnsmasq.pid" \
		--log-queries --log-facility="$E2E_TMP/dnsmasq.log" "${args[@]}" "${E2E_DNS_EXTRA[@]}" \
		>"$E2E_TMP/dnsmasq.out" 2>&1 &
	pid=$!
	E2E_PIDS+=("$pid")
	for ((i = 0; i < 50; i++)); do
		grep -qs 'started, version' "$E2E_TMP/dnsmasq.log" && break
		e2e_dead "$pid" && break
		sleep 0.1
	done
	grep -qs 'started, version' "$E2E_TMP/dnsmasq.log" ||
		e2e_die "dnsmasq did not start: $(cat "$E2E_TMP/dnsmasq.out" "$E2E_TMP/dnsmasq.log" 2>/dev/null)"
	printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$DNS_ADDR" >"$E2E_TMP/resolv.conf"
	mount --bind "$E2E_TMP/resolv.conf" /etc/resolv.conf ||
		e2e_die "cannot bind-mount the test resolv.conf over /etc/resolv.conf"
	E2E_RESOLV_MOUNTED=1
}

# e2e_check_dns NAME ADDR: NAME resolves to ADDR through the test resolver.
e2e_check_dns() {
	getent ahosts "$1" | grep -qF "$2" ||
		e2e_die "$1 does not resolve to $2 through dnsmasq: $(getent ahosts "$1" 2>&1)"
}

# e2e_start_sink NAME [--http] ADDR:PORT...: a sink logging to $E2E_TMP/NAME.log;
# returns once it has bound every socket.
e2e_start_sink() {
	local name=$1 i pid
	shift
	: >"$E2E_TMP/$name.log"
	"$SINK" "$@" >"$E2E_TMP/$name.ready" 2>"$E2E_TMP/$name.err" &
	pid=$!
	E2E_PIDS+=("$pid")
	for ((i = 0; i < 50; i++)); do
		grep -qs '^ready$' "$E2E_TMP/$name.ready" && return 0
		e2e_dead "$pid" && break
		sleep 0.1
	done
	e2e_die "sink $name did not start: $(cat "$E2E_TMP/$name.err")"
}

# e2e_policy NAME < YAML: write a policy file, print its path.
e2e_policy() {
	cat >"$E2E_TMP/$1.yaml"
	echo "$E2E_TMP/$1.yaml"
}

# run_cmd CMD...: run CMD (bounded by RUN_TIMEOUT) with stdout in $OUT,
# stderr in $ERR; sets RC and CPID (its pid: weir's, as env execs it).
# Every signal disposition is reset: bash has background jobs ignore SIGINT
# and SIGQUIT, and a suite run under nohup ignores SIGHUP.
OUT='' ERR='' RC='' CPID=
run_cmd() {
	local dog done_pid st
	OUT=$E2E_TMP/out ERR=$E2E_TMP/err
	env --default-signal "$@" >"$OUT" 2>"$ERR" &
	CPID=$!
	sleep "$RUN_TIMEOUT" &
	dog=$!
	wait -n -p done_pid "$CPID" "$dog"
	st=$?
	if [ "$done_pid" = "$CPID" ]; then
		RC=$st
		kill "$dog" 2>/dev/null
		wait "$dog" 2>/dev/null
		return 0
	fi
	echo "(timed out after ${RUN_TIMEOUT}s: $*)" >>"$ERR"
	kill -TERM "$CPID" 2>/dev/null
	e2e_wait_gone "$CPID" 30 || kill -KILL "$CPID" 2>/dev/null
	wait "$CPID" 2>/dev/null
	RC=timeout
}

# run_weir ARGS...: `weir run ARGS...` through run_cmd, then check that its
# cgroup is gone (the cgroup name holds weir's pid).
WEIR_RUNS=0
LEFTOVER=()
run_weir() {
	run_weir_env -- "$@"
}

# run_weir_env ENV-OPTS... -- ARGS...: run_weir, with weir started by `env
# ENV-OPTS` (signal dispositions and mask: --ignore-signal=, --block-signal=).
run_weir_env() {
	local envo=()
	while [ "$1" != -- ]; do
		envo+=("$1")
		shift
	done
	shift
	run_cmd env "${envo[@]}" "$WEIR" run "$@"
	WEIR_RUNS=$((WEIR_RUNS + 1))
	[ -e "$CG2/weir/run-$CPID" ] && LEFTOVER+=("$CG2/weir/run-$CPID (weir run $*)")
	return 0
}

# --- assertions ---------------------------------------------------------------
# One test line per t_begin/t_end; the x_* checks in between collect reasons.
T_PASS=0 T_FAIL=0 T_NAME='' T_WHY=()

t_ok() {
	T_PASS=$((T_PASS + 1))
	echo "ok - $1"
}

t_not_ok() {
	T_FAIL=$((T_FAIL + 1))
	echo "not ok - $1: $2"
}

t_begin() {
	T_NAME=$1
	T_WHY=()
}

t_why() {
	T_WHY+=("$*")
}

t_end() {
	local IFS=';'
	if ((${#T_WHY[@]})); then
		t_not_ok "$T_NAME" "${T_WHY[*]}"
	else
		t_ok "$T_NAME"
	fi
}

# The last lines of a file, on one line, for a failure message.
t_tail() {
	tail -n "${2:-3}" "$1" 2>/dev/null | tr '\n' '|'
}

x_rc() {
	[ "$RC" = "$1" ] || t_why "exit status $RC, want $1 (stderr: $(t_tail "$ERR"))"
}

# x_out WANT: stdout, less its last newline, is exactly WANT.
x_out() {
	local got
	got=$(cat "$OUT")
	[ "$got" = "$1" ] || t_why "stdout '$(t_tail "$OUT")', want '$1'"
}

x_err_has() {
	grep -qE -- "$1" "$ERR" || t_why "stderr lacks /$1/ (stderr: $(t_tail "$ERR"))"
}

x_err_lacks() {
	! grep -qE -- "$1" "$ERR" || t_why "stderr has /$1/: $(grep -E -- "$1" "$ERR" | head -1)"
}

x_file_has() {
	grep -qE -- "$2" "$1" || t_why "$(basename "$1") lacks /$2/"
}

# x_arrived LOG ERE: a line matching ERE shows up in the sink LOG within
# 5 s, stretched on a slow machine (an emulated CPU under make
# test-kernels: WEIR_TEST_SLOW).
x_arrived() {
	local i
	for ((i = 0; i < 50 * ${WEIR_TEST_SLOW:-1}; i++)); do
		grep -qE -- "$2" "$1" && return 0
		sleep 0.1
	done
	t_why "nothing matching /$2/ arrived at the sink"
}

# x_not_arrived LOG ERE: no such line, after a moment for stragglers.
x_not_arrived() {
	sleep 0.1
	! grep -qE -- "$2" "$1" || t_why "arrived at the sink: $(grep -E -- "$2" "$1" | head -1)"
}

# x_json FILE FILTER [JQ ARGS...]: FILTER, applied to the array of all the
# events in FILE (jq -s), is true.
x_json() {
	local file=$1 filter=$2
	shift 2
	jq -e -s "$@" "$filter" "$file" >/dev/null 2>&1 ||
		t_why "events: not ($filter) in: $(jq -c -s 'map({verdict, op, dst, port, rule, pid})' \
			"$file" 2>&1 | cut -c1-400)"
}

# e2e_finish: the closing checks of a script: every weir run's cgroup gone,
# the count, and the script's exit status (the last command).
e2e_finish() {
	if ((${#LEFTOVER[@]})); then
		t_not_ok "no weir cgroup left" "${LEFTOVER[*]}"
	else
		t_ok "no weir cgroup left after $WEIR_RUNS runs"
	fi
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" = 0 ]
}
