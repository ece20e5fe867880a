#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3, the runs on the machine: `weir status` (and --json), `weir
# cleanup`, liveness whichever weir binary asks, and weir under `ip netns
# exec`. Private network and mount namespaces; root.
#
#   WEIR_BUILD=/abs/build bash tests/e2e/runs.sh
#
# Only runs this script started are ever cleaned up. The bare `weir
# cleanup` of test 14 runs in a cgroup namespace whose root is a cgroup
# this script made, with cgroup2 mounted afresh: the only runs it can see
# are the ones started in there.

# shellcheck disable=SC2016 # sh -c scripts and jq filters: single quotes on purpose
E2E_NAME=e2e-runs
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
NETNS= # the network namespace test 15 adds
CGT=   # the cgroup test 14 runs in

runs_cleanup() {
	local i
	[ -n "$NETNS" ] && ip netns del "$NETNS" 2>/dev/null
	if [ -n "$CGT" ] && [ -d "$CGT" ]; then
		echo 1 >"$CGT/cgroup.kill" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			grep -qs '^populated 0' "$CGT/cgroup.events" && break
			sleep 0.1
		done
		find "$CGT" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	e2e_cleanup
}
trap runs_cleanup EXIT

setup() {
	ip link set lo up || e2e_die "ip link set lo up failed"
	# Nothing here looks a name up: the upstream only has to be named.
	P=$(e2e_policy runs <<-EOF
		version: 1
		name: e2e-runs
		loopback: deny
		dns:
		  upstream: [127.0.0.53]
	EOF
	)
}

# wait_file FILE: up to 10 s for FILE to exist.
wait_file() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# What test 14 does inside its cgroup namespace; it prints "KEY VALUE"
# lines, and leaves the output of each weir command in $T.
write_inner() {
	cat >"$T/inner.sh" <<-'EOF'
		# This mount namespace sees only the cgroup namespace: umount the old view.
		umount -l "$CG2" && mount -t cgroup2 none "$CG2" ||
			{ echo "error cannot mount cgroup2"; exit 1; }
		wait_file() {
			local i
			for ((i = 0; i < 200; i++)); do
				[ -e "$1" ] && return 0
				sleep 0.05
			done
			return 1
		}
		# A run of the copy, one process, which ends when told to.
		mkfifo "$T/fifo1"
		env --default-signal=INT,QUIT "$COPY" run -q -p "$P" -- sh -c \
			': >"$1/started"; read -r x <"$1/fifo1"' sh "$T" >"$T/copy1.err" 2>&1 &
		w=$!
		echo "pid1 $w"
		wait_file "$T/started" || echo "error the copy's command did not start"
		"$WEIR" status >"$T/status1" 2>&1
		"$WEIR" status --json >"$T/status1.json" 2>&1
		"$WEIR" cleanup >"$T/cleanup1" 2>&1
		echo "cleanup1_rc $?"
		echo "procs1 $(wc -l <"$CG2/weir/run-$w/cgroup.procs")"
		timeout 5 sh -c 'echo go >"$1"' sh "$T/fifo1"
		wait "$w"
		echo "copy1_rc $?"
		[ -e "$CG2/weir/run-$w" ] && echo "leftover1 run-$w"
		# A run of the copy whose weir gets SIGKILL: its sleep is left.
		env --default-signal=INT,QUIT "$COPY" run -q -p "$P" -- sh -c \
			'sleep 60 & : >"$1/started2"; wait' sh "$T" >"$T/copy2.err" 2>&1 &
		w=$!
		echo "pid2 $w"
		wait_file "$T/started2" || echo "error the second command did not start"
		sleep 0.1
		kill -KILL "$w"
		wait "$w"
		# Its direct child dies with it (parent-death signal): wait for that.
		for ((i = 0; i < 40; i++)); do
			[ "$(wc -l <"$CG2/weir/run-$w/cgroup.procs")" = 1 ] && break
			sleep 0.05
		done
		# A user's process cannot take the lock of a stale run (and so
		# keep it looking alive): it cannot open the directory.
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			flock -n "$CG2/weir/run-$w" true >"$T/flock.err" 2>&1
		echo "nobody_flock_rc $?"
		"$WEIR" status >"$T/status2" 2>&1
		"$WEIR" status --json >"$T/status2.json" 2>&1
		"$WEIR" cleanup "run-$w" >"$T/cleanup2" 2>&1
		echo "cleanup2_rc $?"
		[ -e "$CG2/weir/run-$w" ] && echo "leftover2 run-$w"
	EOF
}

# inner KEY: the value test 14's inner script printed for KEY.
inner() {
	awk -v k="$1" '$1 == k { print $2; exit }' "$T/inner.out"
}

# x_json_run FILE PID FILTER: the run of PID in `weir status --json` output
# FILE exists once and FILTER, applied to it, is true.
x_json_run() {
	jq -e --argjson p "$2" "[.runs[] | select(.pid == \$p)] | length == 1 and (.[0] | $3)" \
		"$1" >/dev/null 2>&1 || t_why "status --json: not ($3) for pid $2 in: $(cut -c1-400 "$1")"
}

# 14: liveness is the run's lock, not the path of the binary that asks.
test_other_binary() {
	local w1 w2
	CGT=$CG2/weir-e2e-runs-$$
	mkdir "$CGT" || e2e_die "cannot make cgroup $CGT"
	cp "$WEIR" "$T/weir-copy" || e2e_die "cp weir"
	write_inner
	env COPY="$T/weir-copy" WEIR="$WEIR" P="$P" T="$T" CG2="$CG2" sh -c \
		'echo $$ >"$1/cgroup.procs" && exec unshare --cgroup --mount --propagation private bash "$2"' \
		sh "$CGT" "$T/inner.sh" >"$T/inner.out" 2>&1
	w1=$(inner pid1) w2=$(inner pid2)
	grep '^error' "$T/inner.out" >&2

	t_begin "14 a run of a copy of weir at another path is running to build/weir"
	grep -qE "^run-$w1 +running +1 process +enforced \(pinned\)" "$T/status1" ||
		t_why "weir status: $(t_tail "$T/status1")"
	x_json_run "$T/status1.json" "$w1" '.state == "running" and .processes == 1
		and .enforcement == "pinned" and .policy == "e2e-runs"
		and (.cgroup | endswith("/weir/run-\($p)")) and (.pins | endswith("/weir/run-\($p)"))
		and (.started | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))'
	t_end

	t_begin "14 a bare weir cleanup leaves the copy's live run alone"
	[ "$(inner cleanup1_rc)" = 0 ] || t_why "cleanup exit $(inner cleanup1_rc): $(t_tail "$T/cleanup1")"
	grep -q "run-$w1" "$T/cleanup1" && t_why "cleanup: $(t_tail "$T/cleanup1")"
	[ "$(inner procs1)" -ge 1 ] 2>/dev/null || t_why "its command was killed"
	t_end

	t_begin "14 the copy's run then ends normally: exit 0, no cgroup left"
	[ "$(inner copy1_rc)" = 0 ] || t_why "exit $(inner copy1_rc): $(t_tail "$T/copy1.err")"
	[ -n "$(inner leftover1)" ] && t_why "$(inner leftover1) left"
	t_end

	t_begin "14 SIGKILL of the copy's weir: STALE to build/weir (nobody can take its lock), weir cleanup run-N ends it"
	grep -qE "^run-$w2 +STALE +1 process +enforced \(pinned\)" "$T/status2" ||
		t_why "weir status: $(t_tail "$T/status2")"
	x_json_run "$T/status2.json" "$w2" '.state == "stale" and .processes == 1
		and .enforcement == "pinned"'
	[ "$(inner nobody_flock_rc)" = 0 ] && t_why "nobody could flock the run's cgroup"
	grep -q 'Permission denied' "$T/flock.err" || t_why "flock as nobody: $(t_tail "$T/flock.err")"
	[ "$(inner cleanup2_rc)" = 0 ] || t_why "cleanup exit $(inner cleanup2_rc)"
	grep -qx "cleaned run-$w2 (1 process killed)" "$T/cleanup2" ||
		t_why "cleanup: $(t_tail "$T/cleanup2")"
	[ -n "$(inner leftover2)" ] && t_why "$(inner leftover2) left"
	t_end
}

# 15: `ip netns exec` remounts /sys, and cgroup2 and bpffs with it.
test_netns_exec() {
	local w
	NETNS=weir-t-$RANDOM
	ip netns add "$NETNS" || e2e_die "ip netns add $NETNS failed"
	ip -n "$NETNS" link set lo up || e2e_die "lo up in $NETNS failed"

	t_begin "15 ip netns exec NS weir run -- true: exit 0, no cgroup left"
	run_cmd ip netns exec "$NETNS" "$WEIR" run -q -p "$P" -- true
	x_rc 0
	[ -e "$CG2/weir/run-$CPID" ] && t_why "$CG2/weir/run-$CPID left"
	t_end

	t_begin "15 a run under ip netns exec: running and pinned to weir status --json outside"
	mkfifo "$T/nsfifo"
	ip netns exec "$NETNS" "$WEIR" run -q -p "$P" -- sh -c \
		': >"$1/nsstarted"; read -r x <"$1/nsfifo"' sh "$T" >"$T/ns.err" 2>&1 &
	w=$!
	wait_file "$T/nsstarted" || t_why "the command did not start: $(t_tail "$T/ns.err")"
	"$WEIR" status --json >"$T/ns.json" 2>&1
	x_json_run "$T/ns.json" "$w" '.state == "running" and .enforcement == "pinned"
		and .processes == 1'
	timeout 5 sh -c 'echo go >"$1"' sh "$T/nsfifo"
	wait "$w" || t_why "weir exit $?: $(t_tail "$T/ns.err")"
	[ -e "$CG2/weir/run-$w" ] && t_why "$CG2/weir/run-$w left"
	t_end
}

# 16: pins left under a run name whose cgroup is gone (a dead run whose
# cgroup someone removed by hand) do not stop the next weir of that pid.
# A pid namespace makes weir pid 1, so the name is known: run-1.
test_leftover_pins() {
	local bpffs pins
	bpffs=$(awk '$9 == "bpf" { print $5; exit }' /proc/self/mountinfo)
	pins=$bpffs/weir/run-1
	t_begin "16 leftover pins of a dead run-1 without its cgroup: the next run-1 starts, and they are gone"
	if [ -z "$bpffs" ] || [ -e "$CG2/weir/run-1" ] || [ -e "$pins" ]; then
		# Not ours to touch: another weir's run-1 (or no bpffs yet).
		t_end
		return
	fi
	mkdir -p "$pins" &&
		bpftool map create "$pins/weir_connect4" type array key 4 value 4 entries 1 \
			name weir_leftover || t_why "could not plant the leftover pins"
	run_cmd unshare --pid --fork --mount-proc "$WEIR" run -q -p "$P" -- true
	x_rc 0
	[ -e "$pins" ] && t_why "$pins is still there" && rm -rf "$pins"
	[ -e "$CG2/weir/run-1" ] && t_why "$CG2/weir/run-1 left"
	t_end
}

# 17: the policy's name in weir status --json is the name, in UTF-8 as
# written (it was escaped byte by byte: "café" read as "cafÃ©").
test_utf8_policy() {
	local w p
	p=$(e2e_policy runs-utf8 <<-EOF
		version: 1
		name: "e2e-café-ü"
		loopback: deny
		dns:
		  upstream: [127.0.0.53]
	EOF
	)
	t_begin "17 a policy named e2e-café-ü is that name to weir status --json"
	mkfifo "$T/u8fifo"
	"$WEIR" run -q -p "$p" -- sh -c ': >"$1/u8started"; read -r x <"$1/u8fifo"' sh "$T" \
		>"$T/u8.err" 2>&1 &
	w=$!
	wait_file "$T/u8started" || t_why "the command did not start: $(t_tail "$T/u8.err")"
	"$WEIR" status --json >"$T/u8.json" 2>&1
	x_json_run "$T/u8.json" "$w" '.state == "running" and .policy == "e2e-café-ü"'
	timeout 5 sh -c 'echo go >"$1"' sh "$T/u8fifo"
	wait "$w" || t_why "weir exit $?: $(t_tail "$T/u8.err")"
	t_end
}

# 18: the audit events a run's programs lost (ring buffer full) are in weir
# status as in run-end: none for a run that lost none; for one whose weir
# is stopped while its command makes 400,000 decisions, the count, read
# from the programs on its cgroup, and run-end's lost at least as many.
test_events_lost() {
	local w n lost p gen=$WEIR_BUILD/bin/eventgen
	[ -x "$gen" ] || e2e_die "$gen missing: make build/bin/eventgen"
	e2e_setup_lo 192.0.2.10/32
	p=$(e2e_policy lost <<-EOF
		version: 1
		name: e2e-lost
		allow:
		  - ip: 192.0.2.10
		    ports: [9]
	EOF
	)
	t_begin "18 weir status: the audit events a run lost, 0 when none, as run-end counts them"
	rm -f "$T/lost.go" "$T/lost.gen" "$T/lost.end" "$T/lost.jsonl"
	env --default-signal "$WEIR" run -q -p "$p" -e "$T/lost.jsonl" -- sh -c '
		: >"$1/lost.started"
		i=0; while [ ! -e "$1/lost.go" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
		"$0" 192.0.2.10 400000 2 >"$1/lost.gen.tmp" && mv "$1/lost.gen.tmp" "$1/lost.gen"
		i=0; while [ ! -e "$1/lost.end" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done' \
		"$gen" "$T" >"$T/lost.out" 2>"$T/lost.err" &
	w=$!
	wait_file "$T/lost.started" || t_why "the command did not start: $(t_tail "$T/lost.err")"
	"$WEIR" status --json >"$T/lost0.json" 2>&1
	x_json_run "$T/lost0.json" "$w" '.state == "running" and .events_lost == 0'
	"$WEIR" status >"$T/lost0.txt" 2>&1
	grep -q 'events lost' "$T/lost0.txt" && t_why "weir status: $(t_tail "$T/lost0.txt")"
	kill -STOP "$w"
	: >"$T/lost.go"
	wait_file "$T/lost.gen" || t_why "the generator did not end in 10 s"
	"$WEIR" status --json >"$T/lost1.json" 2>&1
	"$WEIR" status >"$T/lost1.txt" 2>&1
	kill -CONT "$w"
	: >"$T/lost.end"
	wait "$w" || t_why "weir exit $?: $(t_tail "$T/lost.err")"
	n=$(jq --argjson p "$w" '.runs[] | select(.pid == $p) | .events_lost' "$T/lost1.json")
	[ "${n:-0}" -gt 0 ] 2>/dev/null || t_why "status --json counts no loss: $(cut -c1-400 "$T/lost1.json")"
	grep -qE "^ +$n audit events lost \(ring buffer full\); verdicts were not affected$" \
		"$T/lost1.txt" || t_why "weir status: $(t_tail "$T/lost1.txt")"
	lost=$(tail -n1 "$T/lost.jsonl" | jq .lost)
	[ "${lost:-0}" -ge "${n:-1}" ] 2>/dev/null || t_why "run-end's lost $lost < status's $n"
	t_end
}

setup
test_other_binary
test_netns_exec
test_leftover_pins
test_utf8_policy
test_events_lost
echo "$T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" = 0 ]
