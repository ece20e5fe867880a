#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# The stand-in for the runner's Runner.Worker process (tests/action/run.sh):
#
#   worker.sh DIR USER CGROUP ACTION
#
# moves itself into CGROUP (as the worker lives in a cgroup of its own on a
# hosted runner), becomes USER (root, or a user with sudo), names itself
# Runner.Worker (the action finds the worker by that name, walking up from
# its own process), then runs one job as the runner does:
#
#   0. DIR/before.sh, if there is one, in the background;
#   1. the action's main entry point: node ACTION/deploy/github-action/main.js
#      with INPUT_<NAME> from DIR/inputs/<name> (upper-cased, dashes kept),
#      GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV and GITHUB_STEP_SUMMARY files
#      of the step's own, RUNNER_TEMP, GITHUB_WORKSPACE (the cwd) and
#      GITHUB_ACTION_PATH;
#   2. each DIR/steps/NN-name.sh, in order, with `bash -e` (a run: step);
#      a main step that failed stops the job, as it does on GitHub (the
#      steps are not run: DIR/rc/NN-name stays absent);
#   3. the post entry point, with main's GITHUB_STATE as STATE_<name>
#      (always: post steps run even when a step failed).
#
# Each step's exit status goes to DIR/rc/STEP, its output to DIR/out/STEP,
# its files to DIR/files/STEP/. As the runner does, each step's start is a
# line of the Worker log, DIR/_diag/Worker_*.log (the action names the step
# of each event from it; WEIR_ACTION_RUNNER_DIAG points it there).
set -u
D=$1 AS=$2 CG=$3 ACT=$4

if [ "${WEIR_WORKER_INNER:-}" != 1 ]; then
	echo $$ >"$CG/cgroup.procs" || exit 99
	export WEIR_WORKER_INNER=1
	[ "$AS" = root ] && exec bash "$0" "$@"
	exec setpriv --reuid="$AS" --regid="$(id -g "$AS")" --clear-groups -- bash "$0" "$@"
fi
printf 'Runner.Worker' >"/proc/$$/comm"
mkdir -p "$D/rc" "$D/out" "$D/files"
export RUNNER_TEMP=$D/runner-temp GITHUB_WORKSPACE=$D/workspace GITHUB_ACTION_PATH=$ACT
mkdir -p "$RUNNER_TEMP" "$GITHUB_WORKSPACE" "$D/_diag"
export WEIR_ACTION_RUNNER_DIAG=$D/_diag

next_second() {
	sleep "0.$(printf '%09d' $((1000000000 - 10#$(date +%N))))"
}

# trace NAME: the runner's trace line as a step starts.
trace() {
	printf "[%s INFO StepsRunner] Processing step: DisplayName='%s'\n" "$(date -u '+%F %TZ')" "$1" \
		>>"$D/_diag/Worker_20261205-000000-utc.log"
}
: >"$D/job-env"

# step_files NAME: the step's own command files, exported.
step_files() {
	local f=$D/files/$1
	mkdir -p "$f"
	: >"$f/output"
	: >"$f/state"
	: >"$f/env"
	: >"$f/summary"
	export GITHUB_OUTPUT=$f/output GITHUB_STATE=$f/state GITHUB_ENV=$f/env GITHUB_STEP_SUMMARY=$f/summary
}

# The runner's file-command format: NAME=VALUE, or NAME<<DELIM ... DELIM.
# load_kv FILE PREFIX: export PREFIX<NAME>=VALUE for each entry.
load_kv() {
	local line name delim val
	while IFS= read -r line; do
		if [[ $line =~ ^([^=]+)\<\<(.+)$ ]]; then
			name=${BASH_REMATCH[1]} delim=${BASH_REMATCH[2]} val=
			while IFS= read -r line && [ "$line" != "$delim" ]; do
				val+=${val:+$'\n'}$line
			done
		elif [[ $line == *=* ]]; then
			name=${line%%=*} val=${line#*=}
		else
			continue
		fi
		export "$2$name=$val"
	done <"$1"
}

inputs_env() {
	local f n
	for f in "$D"/inputs/*; do
		[ -e "$f" ] || continue
		n=$(basename "$f")
		printf 'INPUT_%s\0%s\0' "${n^^}" "$(cat "$f")"
	done
}

# action ENTRY [extra env...]: node on the entry point, as the runner runs it.
action() {
	local entry=$1 envs=()
	shift
	while IFS= read -r -d '' k && IFS= read -r -d '' v; do
		envs+=("$k=$v")
	done < <(inputs_env)
	step_files "$entry"
	(cd "$GITHUB_WORKSPACE" && env "${envs[@]}" "$@" node "$ACT/deploy/github-action/$entry.js") \
		>"$D/out/$entry" 2>&1
	echo $? >"$D/rc/$entry"
}

# DIR/before.sh: a process of the worker's cgroup started before the weir
# step (as the runner's own connections to GitHub are), in the background.
[ -e "$D/before.sh" ] && bash "$D/before.sh" >"$D/out/before" 2>&1 &
trace 'Run ./'
action main
load_kv "$D/files/main/env" ''
if [ "$(cat "$D/rc/main")" = 0 ]; then
	for s in "$D"/steps/*.sh; do
		[ -e "$s" ] || continue
		n=$(basename "$s" .sh)
		step_files "$n"
		# With DIR/whole-seconds, a step's trace line has a second of its
		# own, no event of another step in it (the log has whole seconds: the
		# action names "A or B" when it cannot tell which step it was).
		[ -e "$D/whole-seconds" ] && next_second
		trace "$n"
		[ -e "$D/whole-seconds" ] && next_second
		(cd "$GITHUB_WORKSPACE" && bash -e "$s") >"$D/out/$n" 2>&1
		echo $? >"$D/rc/$n"
	done
fi
# post: main's state as STATE_<name>.
(
	load_kv "$D/files/main/state" STATE_
	[ -e "$D/whole-seconds" ] && next_second
	trace 'Post Run ./'
	action post
)
exit 0
