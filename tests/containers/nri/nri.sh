#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# `weir nri`, the NRI plugin, against a stand-in runtime (nri_runtime.py:
# NRI's trunk multiplexing, ttrpc and protobuf on a unix socket, requests
# built from fixtures/). No NRI runtime runs here (Debian 12's containerd is
# 1.6): the stand-in plays the runtime; everything else is real: a private
# weir daemon, real cgroups laid out as the kubelet lays out a pod's (systemd
# slices, and cgroupfs), a pod network namespace held by a "pause" process,
# and real connects from a process in the pod's container cgroup.
#
#   WEIR_BUILD=/abs/build bash tests/containers/nri/nri.sh      (root)
#
# Ours only: the daemon's --socket, --state-dir, --policy-dir in the temp
# dir, --pin-root /sys/fs/bpf/weir-nri-PID, cgroups <cgroup2>/weirnriPID.slice
# and <cgroup2>/weir-nri-PID.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=nri
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
HERE=$REPO_ROOT/tests/containers/nri
SOCK=$T/weir.sock
NRISOCK=$T/nri.sock
PDIR=$T/policies
PINS=/sys/fs/bpf/weir-nri-$$
SLICE=weirnri$$ # kubepods' place in the systemd driver's slice names
ROOT=weir-nri-$$ # the cgroupfs driver's /kubepods
PY=/usr/bin/python3
DPID='' PPID_NRI='' RT_PID='' PAUSE=''

nri_cleanup() {
	local d
	[ -n "$PPID_NRI" ] && kill -TERM "$PPID_NRI" 2>/dev/null
	[ -n "$RT_PID" ] && kill -TERM "$RT_PID" 2>/dev/null
	[ -n "$PAUSE" ] && kill -KILL "$PAUSE" 2>/dev/null
	[ -n "$DPID" ] && kill -CONT "$DPID" 2>/dev/null && kill -KILL "$DPID" 2>/dev/null &&
		e2e_wait_gone "$DPID" 30
	for d in "$CG2/$SLICE.slice" "$CG2/$ROOT"; do
		[ -d "$d" ] || continue
		[ -e "$d/cgroup.kill" ] && echo 1 >"$d/cgroup.kill"
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	[ -d "$PINS" ] && rm -rf "$PINS"
	exec {RT_IN}>&- 2>/dev/null
	e2e_cleanup
}
trap nri_cleanup EXIT

start_daemon() {
	local i
	"$WEIR" daemon --socket "$SOCK" --policy-dir "$PDIR" --state-dir "$T/state" \
		--pin-root "$PINS" >>"$T/daemon.out" 2>>"$T/daemon.err" &
	DPID=$!
	disown "$DPID"
	for ((i = 0; i < 200; i++)); do
		"$WEIR" health --socket "$SOCK" >/dev/null 2>&1 && return 0
		e2e_dead "$DPID" && break
		sleep 0.05
	done
	e2e_die "weir daemon did not answer: $(t_tail "$T/daemon.err" 5)"
}

# The stand-in runtime, driven through a FIFO; its answers in $T/rt.out.
start_runtime() {
	local i
	mkfifo "$T/rt.in"
	"$PY" "$HERE/nri_runtime.py" "$NRISOCK" "$HERE/fixtures" <"$T/rt.in" >"$T/rt.out" \
		2>"$T/rt.err" &
	RT_PID=$!
	exec {RT_IN}>"$T/rt.in"
	for ((i = 0; i < 100; i++)); do
		grep -qs '^listening' "$T/rt.out" && return 0
		e2e_dead "$RT_PID" && break
		sleep 0.05
	done
	e2e_die "the stand-in runtime did not start: $(t_tail "$T/rt.err" 5)"
}

# rt COMMAND...: one command to the stand-in; its answer in $ANS (15 s at most).
ANS=
rt() {
	local n i
	n=$(wc -l <"$T/rt.out")
	echo "$*" >&"$RT_IN"
	for ((i = 0; i < 300; i++)); do
		if (($(wc -l <"$T/rt.out") > n)); then
			ANS=$(sed -n "$((n + 1))p" "$T/rt.out")
			return 0
		fi
		sleep 0.05
	done
	ANS="(no answer to: $*)"
}

x_ans() { # ERE: $ANS matches
	[[ $ANS =~ $1 ]] || t_why "runtime got '$ANS', want /$1/"
}

start_plugin() {
	"$WEIR" nri --nri-socket "$NRISOCK" --socket "$SOCK" >>"$T/nri.out" 2>>"$T/nri.err" &
	PPID_NRI=$!
	disown "$PPID_NRI"
}

# A pod: its cgroup (made as the kubelet would, with a sandbox cgroup below
# it holding a "pause" process in a new network namespace); sets POD (the
# cgroup's path), PAUSE, and NETNS (/proc/PAUSE/ns/net). pod_cg CGROUP
new_pod() {
	local i
	POD=$CG2/$1
	mkdir -p "$POD/sandbox" || e2e_die "mkdir $POD/sandbox"
	sh -c 'echo $$ >"$0/cgroup.procs" && exec unshare --net sleep 600' "$POD/sandbox" &
	PAUSE=$!
	disown "$PAUSE"
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink /proc/$PAUSE/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
		sleep 0.02
	done
	NETNS=/proc/$PAUSE/ns/net
	nsenter --net="$NETNS" ip link set lo up
	nsenter --net="$NETNS" ip addr add 192.0.2.10/32 dev lo
	nsenter --net="$NETNS" ip addr add 192.0.2.12/32 dev lo
	printf '#!/bin/sh\nexec nsenter --net=%s %s "$@"\n' "$NETNS" "$REAL_SINK" >"$T/podsink"
	chmod +x "$T/podsink"
	SINK=$T/podsink e2e_start_sink "sink$PAUSE" "$T/sink$PAUSE.log" 192.0.2.10:80 192.0.2.12:80
}

# probe ADDR: ok or the errno name of a TCP connect to ADDR:80 from a
# process of the pod's app container (a cgroup made after the bind, as the
# runtime makes it, in the pod's network namespace).
probe() {
	mkdir -p "$POD/app"
	nsenter --net="$NETNS" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$POD/app" \
		"$NETPROBE" tcp "$1" 80 weir-probe 2>/dev/null
}

x_probe() { # ADDR WANT
	local got
	got=$(probe "$1")
	[ "$got" = "$2" ] || t_why "connect to $1 from the pod: $got, want $2"
}

# attached CGROUP: how many attachments the daemon has on it (by path).
attached() {
	"$WEIR" ps --socket "$SOCK" --json | jq --arg c "$1" '[.attachments[] |
		select(.cgroup == $c or .cgroup == ("'"$CG2"'/" + $c))] | length'
}

x_attached() { # CGROUP N [LABEL POLICY]
	local n
	n=$(attached "$1")
	[ "$n" = "$2" ] || t_why "$2 attachment(s) on $1 expected, the daemon has $n"
	[ -z "${3:-}" ] && return 0
	"$WEIR" ps --socket "$SOCK" --json | jq -e --arg c "$1" --arg l "$3" --arg p "$4" \
		'.attachments[] | select(.cgroup | endswith($c)) | select(.label == $l and
		.policy == $p)' >/dev/null || t_why "$1 is not labelled $3 with policy $4"
}

pod_kill() {
	[ -n "$PAUSE" ] && kill -KILL "$PAUSE" 2>/dev/null && e2e_wait_gone "$PAUSE" 30
	PAUSE=
}

# Fixture substitutions for a pod of the systemd driver / of cgroupfs.
UID1=0e6f3a2c-5b1d-4e8f-9a7c-2d4b6f8e1a01
SUB1=(ID=a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90 "UID=$UID1"
      "USLICE=${UID1//-/_}" "SLICE=$SLICE" POLICY=web)
CG1=$SLICE.slice/$SLICE-besteffort.slice/$SLICE-besteffort-pod${UID1//-/_}.slice
UID2=7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c02
SUB2=(ID=b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1 "UID=$UID2"
      "ROOT=$ROOT" POLICY=web)
CG2P=$ROOT/burstable/pod$UID2

test_register_and_configure() {
	t_begin "the plugin connects, registers as 10-weir and subscribes to the pod events"
	start_plugin
	rt accept
	x_ans '^registered weir 10$'
	rt configure
	x_ans '^events 7$' # RunPodSandbox, StopPodSandbox, RemovePodSandbox
	t_end
}

test_run_pod_binds_its_cgroup() {
	t_begin "RunPodSandbox (containerd, systemd slices) binds the pod's cgroup: its containers are enforced"
	new_pod "$CG1"
	rt run pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	x_attached "$CG1" 1 shop/web-6f7c9d8b5-x2k4q web
	x_probe 192.0.2.10 ok
	x_probe 192.0.2.12 EPERM
	x_not_arrived "$T/sink$PAUSE.log" '192\.0\.2\.12'
	# DNS from the pod goes to weir's resolver, in the pod's namespace:
	# a name the policy does not allow is refused by weir (no server
	# listens on port 53 in that namespace, nothing else could answer).
	mkdir -p "$POD/app"
	nsenter --net="$NETNS" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$POD/app" \
		dig +time=2 +tries=1 @192.0.2.10 blocked.test >"$T/dig.out" 2>&1
	grep -q 'status: REFUSED' "$T/dig.out" ||
		t_why "the pod's query was not refused by weir: $(t_tail "$T/dig.out" 3)"
	rt run pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	x_attached "$CG1" 1
	t_end
}

test_stop_releases() {
	t_begin "StopPodSandbox and RemovePodSandbox release the pod's attachment"
	rt stop pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	x_attached "$CG1" 0
	x_probe 192.0.2.12 ok
	rt remove pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	pod_kill
	t_end
}

test_statechange_cgroupfs() {
	t_begin "the older NRI's StateChange (CRI-O fixture, cgroupfs paths) binds and releases the same"
	new_pod "$CG2P"
	rt statechange run pod-crio-cgroupfs.json "${SUB2[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	x_attached "$CG2P" 1 jobs/batch-7x9q2 web
	x_probe 192.0.2.10 ok
	x_probe 192.0.2.12 EPERM
	rt statechange stop pod-crio-cgroupfs.json "${SUB2[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	x_attached "$CG2P" 0
	pod_kill
	t_end
}

test_unannotated_pod_is_left_alone() {
	t_begin "a pod without weir.dev/policy runs, unbound"
	new_pod "$ROOT/besteffort/pod-plain"
	rt run pod-unannotated.json ID=c3 UID=-plain ROOT="$ROOT" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	x_attached "$ROOT/besteffort/pod-plain" 0
	x_probe 192.0.2.12 ok
	pod_kill
	t_end
}

test_fails_closed() {
	t_begin "the runtime is told to fail the pod: bad annotation, unknown policy, no cgroup, daemon down"
	new_pod "$CG1"
	rt run pod-bad-annotation.json ID=d4 UID=x ROOT="$ROOT" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^error 3 .*weir\.dev/policy="\.\./\.\./etc/shadow": not a policy name'
	rt run pod-containerd-systemd.json "${SUB1[@]/POLICY=web/POLICY=nosuch}" NETNS="$NETNS" \
		PID="$PAUSE"
	x_ans "^error [0-9]+ .*no policy 'nosuch'"
	rt run pod-no-cgroup.json ID=e5 UID=y POLICY=web
	x_ans '^error 3 .*no cgroup parent'
	kill -KILL "$DPID"
	e2e_wait_gone "$DPID" 30
	DPID=
	rt run pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^error 9 .*no daemon answers'
	start_daemon
	x_attached "$CG1" 0
	x_probe 192.0.2.12 ok
	t_end
}

test_deadline() {
	t_begin "a daemon slower than the runtime's deadline: the pod is failed in time, the late bind released"
	kill -STOP "$DPID"
	rt run pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	kill -CONT "$DPID"
	x_ans '^error 9 .*did not answer within 1500 ms'
	rt last-ms # as the runtime saw it: from its request to the answer
	if ! [[ $ANS =~ ^ms\ ([0-9]+)$ ]] || ((BASH_REMATCH[1] < 1400 || BASH_REMATCH[1] >= 2000)); then
		t_why "answered in '$ANS': the runtime (2 s) would drop the plugin, or it did not wait"
	fi
	for ((i = 0; i < 100; i++)); do
		grep -q 'came after the pod was failed: released' "$T/nri.err" && break
		sleep 0.05
	done
	grep -q 'came after the pod was failed: released' "$T/nri.err" ||
		t_why "the late bind was not released: $(t_tail "$T/nri.err" 2)"
	x_attached "$CG1" 0
	x_probe 192.0.2.12 ok
	pod_kill
	t_end
}

test_cgroups_path_only() {
	t_begin "a pod with only the sandbox's cgroups path (SLICE:cri-containerd:ID) binds its parent"
	local uid=4b3a2c1d-0e9f-4a8b-9c7d-6e5f4a3b2c03 cg
	cg=$SLICE.slice/$SLICE-burstable.slice/$SLICE-burstable-pod${uid//-/_}.slice
	new_pod "$cg"
	rt run pod-cgroups-path-only.json ID=f6 UID="$uid" USLICE="${uid//-/_}" SLICE="$SLICE" \
		POLICY=web NETNS="$NETNS"
	x_ans '^ok$'
	x_attached "$cg" 1 legacy/old-runtime-4d5e6 web
	x_probe 192.0.2.12 EPERM
	rt remove pod-cgroups-path-only.json ID=f6 UID="$uid" USLICE="${uid//-/_}" SLICE="$SLICE" \
		POLICY=web NETNS="$NETNS"
	x_attached "$cg" 0
	pod_kill
	t_end
}

test_protocol_edges() {
	t_begin "what the plugin does not serve is 'unimplemented', garbage is refused, the connection lives on"
	rt call nri.pkg.api.v1alpha1.Plugin CreateContainer
	x_ans '^error 12 '
	rt call some.other.Service RunPodSandbox
	x_ans '^error 12 '
	rt garbage
	x_ans '^error 3 '
	rt configure
	x_ans '^events 7$'
	t_end
}

test_reconnect_and_synchronize() {
	t_begin "the runtime restarts: the plugin registers again and Synchronize binds the running annotated pods"
	new_pod "$CG1"
	rt close
	rt accept
	x_ans '^registered weir 10$'
	rt configure
	x_ans '^events 7$'
	rt sync sync-running-pods.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok more=False$'
	x_attached "$CG1" 1 shop/api-59d8f7c6b4-lm3np web
	x_probe 192.0.2.12 EPERM
	x_probe 192.0.2.10 ok
	rt sync sync-running-pods.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok more=False$'
	x_attached "$CG1" 1
	rt shutdown
	x_ans '^ok$'
	rt accept
	x_ans '^registered weir 10$'
	rt stop pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_attached "$CG1" 0
	pod_kill
	t_end
}

test_synchronize_with_a_slow_daemon() {
	t_begin "Synchronize with a daemon slower than the deadline: answered in time, the pod bound after"
	new_pod "$CG1"
	kill -STOP "$DPID"
	rt sync sync-running-pods.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok more=False$'
	rt last-ms
	if ! [[ $ANS =~ ^ms\ ([0-9]+)$ ]] || ((BASH_REMATCH[1] >= 2000)); then
		t_why "answered in '$ANS': the runtime (2 s) would drop the plugin"
	fi
	kill -CONT "$DPID"
	for ((i = 0; i < 100; i++)); do
		[ "$(attached "$CG1")" = 1 ] && break
		sleep 0.05
	done
	x_attached "$CG1" 1 shop/api-59d8f7c6b4-lm3np web
	x_probe 192.0.2.12 EPERM
	rt remove pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_attached "$CG1" 0
	pod_kill
	t_end
}

# The DaemonSet's upgrade: the old daemon gets SIGTERM, a new one starts on
# the same state and pins.
test_upgrade_keeps_the_pod_enforced() {
	t_begin "a daemon replaced (SIGTERM, a new one adopts): the pod stays enforced, the plugin releases it after"
	new_pod "$CG1"
	rt run pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	kill -TERM "$DPID"
	e2e_wait_gone "$DPID" 100 || t_why "the daemon did not stop on SIGTERM"
	DPID=
	x_probe 192.0.2.12 EPERM # no daemon at all
	x_probe 192.0.2.10 ok
	start_daemon
	x_attached "$CG1" 1 shop/web-6f7c9d8b5-x2k4q web
	x_probe 192.0.2.12 EPERM
	rt stop pod-containerd-systemd.json "${SUB1[@]}" NETNS="$NETNS" PID="$PAUSE"
	x_ans '^ok$'
	x_attached "$CG1" 0 # the holder was adopted with the attachment
	x_probe 192.0.2.12 ok
	pod_kill
	t_end
}

test_sigterm() {
	t_begin "weir nri stops on SIGTERM"
	kill -TERM "$PPID_NRI"
	e2e_wait_gone "$PPID_NRI" 50 || t_why "weir nri did not stop"
	PPID_NRI=
	grep -q 'nri: stopped' "$T/nri.err" || t_why "no 'stopped' in its log"
	t_end
}

mkdir -p "$PDIR"
cat >"$PDIR/web.yaml" <<-EOF
	version: 1
	loopback: deny
	allow:
	  - ip: 192.0.2.10
	    ports: [80]
EOF
REAL_SINK=$SINK
start_daemon
start_runtime
test_register_and_configure
test_run_pod_binds_its_cgroup
test_stop_releases
test_statechange_cgroupfs
test_unannotated_pod_is_left_alone
test_fails_closed
test_deadline
test_cgroups_path_only
test_protocol_edges
test_reconnect_and_synchronize
test_synchronize_with_a_slow_daemon
test_upgrade_keeps_the_pod_enforced
test_sigterm
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
