#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 7, Kubernetes packaging, offline (no cluster runs here):
#  - deploy/kubernetes/weir.yaml and the Helm chart read into the Kubernetes
#    API types and checked for what weir needs (tests/kubernetes/validate.py);
#  - a policy directory laid out as the kubelet lays out a ConfigMap volume
#    (files that are symlinks into ..data, itself a symlink to a timestamped
#    directory, swapped by a rename; the volume mounted read-only), watched
#    by a real daemon: an edit reloads on its own and a connect from the
#    attached cgroup sees it.
#
#   WEIR_BUILD=/abs/build bash tests/kubernetes/run.sh      (root)
#
# The daemon has its own --socket, --state-dir, --policy-dir (in the test's
# temp dir) and --pin-root (/sys/fs/bpf/weir-ktest-PID); the cgroups are
# below <cgroup2>/weir-ktest-PID. Only those are ever removed.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=kubernetes
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
SOCK=$T/weir.sock
VOL=$T/volume   # what the kubelet writes (the host side of the volume)
PDIR=$T/policies # the daemon's view: VOL, mounted read-only
PINS=/sys/fs/bpf/weir-ktest-$$
CGP=$CG2/weir-ktest-$$
DPID=
PY=/usr/bin/python3 # Debian's, with python3-kubernetes and python3-yaml

k8s_cleanup() {
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && e2e_wait_gone "$DPID" 30
	if [ -d "$CGP" ]; then
		[ -e "$CGP/cgroup.kill" ] && echo 1 >"$CGP/cgroup.kill"
		find "$CGP" -depth -type d -exec rmdir {} + 2>/dev/null
	fi
	[ -d "$PINS" ] && rm -rf "$PINS"
	mountpoint -q "$PDIR" 2>/dev/null && umount "$PDIR"
	e2e_cleanup
}
trap k8s_cleanup EXIT

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

probe() { # CGROUP ADDR: ok or the errno name of a TCP connect to ADDR:80
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$1" "$NETPROBE" tcp "$2" 80 weir-probe \
		2>/dev/null
}

wait_probe() { # CGROUP ADDR WANT: within 3 s
	local i got
	for ((i = 0; i < 60; i++)); do
		got=$(probe "$1" "$2")
		[ "$got" = "$3" ] && return 0
		sleep 0.05
	done
	t_why "connect to $2 from $(basename "$1"): $got, want $3"
}

# cm_write N NAME=TEXT...: the kubelet's atomic update of a ConfigMap volume
# (its AtomicWriter): the new payload in a fresh hidden directory, then
# ..data_tmp -> it, renamed over ..data (one rename: the switch), then a
# symlink NAME -> ..data/NAME for each new key and the old directory
# removed. Files 0644, directories 0755, the volume's root 0777, as the
# kubelet makes them (root's).
cm_write() {
	local gen=$1 kv name old
	shift
	mkdir -m 0755 "$VOL/..gen_$gen"
	for kv in "$@"; do
		name=${kv%%=*}
		printf '%s\n' "${kv#*=}" >"$VOL/..gen_$gen/$name"
		chmod 0644 "$VOL/..gen_$gen/$name"
	done
	old=$(readlink "$VOL/..data" 2>/dev/null)
	ln -s "..gen_$gen" "$VOL/..data_tmp"
	mv -T "$VOL/..data_tmp" "$VOL/..data"
	for kv in "$@"; do
		name=${kv%%=*}
		[ -L "$VOL/$name" ] || ln -s "..data/$name" "$VOL/$name"
	done
	[ -n "$old" ] && rm -rf "${VOL:?}/$old"
	return 0
}

ALLOW10='version: 1
loopback: deny
allow:
  - ip: 192.0.2.10
    ports: [80]'
ALLOW12='version: 1
loopback: deny
allow:
  - ip: 192.0.2.12
    ports: [80]'

test_manifests_validate() {
	t_begin "deploy/kubernetes/weir.yaml and the Helm chart are valid Kubernetes objects weir can run as"
	if ! "$PY" -c 'import kubernetes, yaml' 2>/dev/null; then
		t_why "$PY lacks python3-kubernetes or python3-yaml (make deps)"
	else
		run_cmd "$PY" "$REPO_ROOT/tests/kubernetes/validate.py" "$WEIR"
		x_rc 0
	fi
	t_end
}

test_configmap_volume_reloads() {
	t_begin "a policy ConfigMap volume (..data symlink swap, read-only) reloads on an edit"
	mkdir -p "$VOL" "$PDIR" "$CGP/pod" || e2e_die "mkdir"
	chmod 0777 "$VOL"
	cm_write 1 "web.yaml=$ALLOW10"
	if ! mount --bind "$VOL" "$PDIR" || ! mount -o remount,bind,ro "$PDIR"; then
		e2e_die "cannot mount $VOL read-only on $PDIR"
	fi
	start_daemon
	run_cmd "$WEIR" attach --socket "$SOCK" --policy web "$CGP/pod"
	x_rc 0
	wait_probe "$CGP/pod" 192.0.2.10 ok
	wait_probe "$CGP/pod" 192.0.2.12 EPERM
	cm_write 2 "web.yaml=$ALLOW12" "other.yaml=$ALLOW10"
	wait_probe "$CGP/pod" 192.0.2.12 ok
	wait_probe "$CGP/pod" 192.0.2.10 EPERM
	run_cmd "$WEIR" ps --socket "$SOCK" --json
	x_json "$OUT" '.[0].attachments | map(select(.policy == "web")) |
		all(.generation == 2 and .state == "ok")'
	# A key added by the update: usable by name without a reload.
	mkdir -p "$CGP/pod2"
	run_cmd "$WEIR" attach --socket "$SOCK" --policy other "$CGP/pod2"
	x_rc 0
	wait_probe "$CGP/pod2" 192.0.2.10 ok
	x_err_lacks 'writable|refusing'
	t_end
}

e2e_setup_lo 192.0.2.10/32 192.0.2.12/32
e2e_start_sink sink "$T/sink.log" 192.0.2.10:80 192.0.2.12:80
# The DaemonSet's probes run weir health.
test_health_probe() {
	t_begin "weir health (the probes): exit 0 and one line when the daemon answers, 1 when not"
	run_cmd "$WEIR" health --socket "$SOCK"
	x_rc 0
	grep -qE '^ok: weir daemon .+, pid [0-9]+, [0-9]+ attachments$' "$OUT" ||
		t_why "stdout: $(t_tail "$OUT")"
	run_cmd "$WEIR" health --socket "$T/nobody.sock"
	x_rc 1
	x_err_has "no daemon answers on $T/nobody.sock"
	run_cmd "$WEIR" health --socket "$SOCK" extra
	x_rc 2
	t_end
}

test_manifests_validate
test_configmap_volume_reloads
test_health_probe
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
