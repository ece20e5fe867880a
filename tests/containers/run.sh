#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 9, containers: weir oci-hook run by real runtimes (runc bundles for
# the fast cases; podman with runc, hooks.d and `podman kube play` for the
# real path), a real weir daemon, real servers and dnsmasq.
#
#   WEIR_BUILD=/abs/build bash tests/containers/run.sh      (root)
#
# Nothing leaves the machine, and nothing but what the test made is touched:
#  - the containers join a network namespace the test made (bound on a file
#    in its temp dir) holding the only "hosts" (documentation addresses on
#    its lo: a sink on 192.0.2.10/.11/.99 port 80, dnsmasq on 192.0.2.53);
#  - the root file system is built here from busybox-static and a static
#    netprobe, imported into podman from a tarball (no registry);
#  - podman has its own root, runroot, tmpdir, configuration and hooks dir
#    in the temp dir (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), runc its
#    own --root; the cgroups are below <cgroup2>/weir-ctest-PID (and the
#    pod's, below podman's libpod_parent, which only our pod uses);
#  - the daemon has its own socket, state dir, policy dir and pin root.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=containers
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
SOCK=$T/weir.sock
PDIR=$T/policies
STATE=$T/state
PINS=/sys/fs/bpf/weir-ctest-$$
CGN=weir-ctest-$$ # below the cgroup2 mount and, made by runc/podman, the v1 ones
CGP=$CG2/$CGN
NETNS=$T/netns
NS=(nsenter --net="$NETNS")
ROOTFS=$T/rootfs
IMG=localhost/weir-ctest:$$
PAUSE_IMG=localhost/weir-ctest-pause:$$
RUNC=(runc --root "$T/runc")
PM=(podman --root "$T/pm/root" --runroot "$T/pm/run" --tmpdir "$T/pm/tmp")
DPID=
N_CTR=0 # containers started, for unique names
POD_CG= # our pod's cgroup (podman on a hybrid host leaves it in the unified hierarchy)

containers_cleanup() {
	local d
	if [ -d "$T/pm" ]; then
		"${PM[@]}" pod rm -a -f -t 0 >/dev/null 2>&1
		"${PM[@]}" rm -a -f -t 0 >/dev/null 2>&1
		"${PM[@]}" system reset -f >/dev/null 2>&1
	fi
	for d in $(ls "$T/runc" 2>/dev/null); do
		"${RUNC[@]}" delete -f "$d" >/dev/null 2>&1
	done
	for d in $(ls "$T/runc2" 2>/dev/null); do
		runc --root "$T/runc2" delete -f "$d" >/dev/null 2>&1
	done
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && e2e_wait_gone "$DPID" 30
	[ -n "$POD_CG" ] && [ -d "$POD_CG" ] && find "$POD_CG" -depth -type d -exec rmdir {} + 2>/dev/null
	# Our cgroups only, in the unified hierarchy and in the v1 ones the
	# runtimes made them in too.
	for d in "$CG2/$CGN" /sys/fs/cgroup/*/"$CGN"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	[ -d "$PINS" ] && rm -rf "$PINS"
	umount "$NETNS" 2>/dev/null
	grep -qs " $T/" /proc/self/mounts &&
		awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
		xargs -r umount -l 2>/dev/null
	e2e_cleanup
}
trap containers_cleanup EXIT

# --- the world: a network namespace with servers, a root fs, a daemon ----------

setup_netns() {
	local i
	touch "$NETNS"
	unshare --net="$NETNS" true || e2e_die "cannot make a network namespace on $NETNS"
	"${NS[@]}" ip link set lo up || e2e_die "lo up in the test's netns"
	for i in 10 11 53 99; do
		"${NS[@]}" ip addr add "192.0.2.$i/32" dev lo || e2e_die "ip addr add 192.0.2.$i"
	done
	: >"$T/sink.log"
	"${NS[@]}" "$SINK" "$T/sink.log" 192.0.2.10:80 192.0.2.11:80 192.0.2.99:80 \
		>"$T/sink.ready" 2>"$T/sink.err" &
	E2E_PIDS+=("$!")
	"${NS[@]}" /usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null \
		--listen-address=192.0.2.53 --bind-interfaces --port=53 --no-resolv --no-hosts \
		--local=/test/ --user=root --group=root --pid-file="$T/dnsmasq.pid" --log-queries \
		--host-record=a.test,192.0.2.10 --host-record=evil.test,192.0.2.99 \
		--log-facility="$T/dnsmasq.log" >"$T/dnsmasq.out" 2>&1 &
	E2E_PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		grep -qs 'started, version' "$T/dnsmasq.log" && grep -qs '^ready$' "$T/sink.ready" &&
			return 0
		sleep 0.1
	done
	e2e_die "sink or dnsmasq did not start: $(t_tail "$T/sink.err") $(t_tail "$T/dnsmasq.out")"
}

# busybox-static and a static netprobe; resolv.conf names the test's dnsmasq.
# The test's own /etc/resolv.conf names an address nobody answers on: a
# resolver that asked the host's nameserver, not the container's, is seen.
setup_rootfs() {
	local a
	mkdir -p "$ROOTFS"/{bin,etc,proc,sys,dev,tmp,run} || e2e_die "mkdir $ROOTFS"
	cp /bin/busybox "$ROOTFS/bin/" || e2e_die "no /bin/busybox (busybox-static: make deps)"
	for a in sh sleep cat true ls; do
		ln -s busybox "$ROOTFS/bin/$a"
	done
	cp "$NETPROBE_STATIC" "$ROOTFS/bin/netprobe"
	printf '#!/bin/sh\ntrap "exit 0" TERM INT\nwhile :; do sleep 1000 & wait $!; done\n' \
		>"$ROOTFS/pause"
	chmod 755 "$ROOTFS/pause"
	echo 'nameserver 192.0.2.53' >"$ROOTFS/etc/resolv.conf"
	echo 'root:x:0:0:root:/:/bin/sh' >"$ROOTFS/etc/passwd"
	echo 'nameserver 192.0.2.54' >"$T/host-resolv.conf"
	mount --bind "$T/host-resolv.conf" /etc/resolv.conf || e2e_die "bind-mount resolv.conf"
	E2E_RESOLV_MOUNTED=1
}

policy() { # NAME < YAML
	cat >"$PDIR/$1.yaml.tmp" && mv "$PDIR/$1.yaml.tmp" "$PDIR/$1.yaml"
}

setup_daemon() {
	local i
	mkdir -p "$PDIR" "$CGP" || e2e_die "mkdir $PDIR $CGP"
	# A container's own policy: 192.0.2.10 and a.test.
	policy web <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: 192.0.2.10
		    ports: [80]
		  - domain: a.test
		    ports: [80]
	EOF
	# The safety net's default: only 192.0.2.99 (deny-all in real life; a
	# destination of its own here, so that "the parent's policy" and "the
	# container's own" and "both" each give another answer).
	policy netdefault <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: 192.0.2.99
		    ports: [80]
	EOF
	start_daemon
}

# start_daemon: the daemon, until its socket answers (bounded).
start_daemon() {
	local i
	"$WEIR" daemon --socket "$SOCK" --policy-dir "$PDIR" --state-dir "$STATE" \
		--pin-root "$PINS" --events "$T/events.jsonl" >>"$T/daemon.out" 2>>"$T/daemon.err" &
	DPID=$!
	disown "$DPID"
	for ((i = 0; i < 200; i++)); do
		curl -sf --max-time 1 --unix-socket "$SOCK" http://weir/v1/health >/dev/null 2>&1 &&
			return 0
		e2e_dead "$DPID" && break
		sleep 0.05
	done
	e2e_die "weir daemon did not answer: $(t_tail "$T/daemon.err")"
}

# ps_json: the daemon's attachments, as weir ps --json prints them.
ps_json() {
	"$WEIR" ps --socket "$SOCK" --json 2>/dev/null
}

# attachments_of FILTER: how many attachments match the jq FILTER.
attachments_of() {
	ps_json | jq "[.attachments[] | select($1)] | length"
}

# wait_attachments FILTER N: until N attachments match (bounded, 5 s).
wait_attachments() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(attachments_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- runc bundles -------------------------------------------------------------

# bundle NAME CGROUP ANNOTATION ARGS...: $T/b/NAME, a runc bundle on the
# shared root fs in the test's netns, with weir oci-hook at createRuntime and
# poststop (HOOK_SOCKET, else the daemon's). ANNOTATION "" for none.
HOOK_SOCKET=
bundle() {
	local name=$1 cg=$2 ann=$3 dir=$T/b/$1 args
	shift 3
	mkdir -p "$dir"
	args=$(printf '%s\n' "$@" | jq -R . | jq -s -c .)
	(cd "$dir" && runc spec) || e2e_die "runc spec"
	jq --arg root "$ROOTFS" --arg cg "$cg" --arg ann "$ann" --arg weir "$WEIR" \
		--arg sock "${HOOK_SOCKET:-$SOCK}" --arg netns "$NETNS" --argjson args "$args" '
		.root = {path: $root, readonly: true} |
		.process.terminal = false | .process.args = $args |
		.linux.cgroupsPath = $cg |
		.linux.namespaces = [.linux.namespaces[] |
			if .type == "network" then .path = $netns else . end] |
		.annotations = (if $ann == "" then {} else {"weir.dev/policy": $ann} end) |
		.hooks = {
			createRuntime: [{path: $weir,
				args: ["weir", "oci-hook", "createRuntime", "--socket", $sock]}],
			poststop: [{path: $weir, args: ["weir", "oci-hook", "poststop", "--socket", $sock]}]
		}' "$dir/config.json" >"$dir/config.json.new" && mv "$dir/config.json.new" "$dir/config.json" ||
		e2e_die "cannot write $dir/config.json"
}

# runc_to_end NAME: bundle NAME run to its end with runc; stdout in $OUT,
# stderr in $ERR, the exit status in RC.
runc_to_end() {
	OUT=$T/$1.out ERR=$T/$1.err
	timeout 30 "${RUNC[@]}" run --bundle "$T/b/$1" "$1" >"$OUT" 2>"$ERR" </dev/null
	RC=$?
	"${RUNC[@]}" delete -f "$1" >/dev/null 2>&1
}

# crun_run NAME CGROUP ANNOTATION ARGS...: a bundle (NAME made unique) run
# to its end (runc_to_end).
crun_run() {
	local name=$1-$$-$((N_CTR += 1))
	shift
	bundle "$name" "$@"
	runc_to_end "$name"
}

# crun_edited NAME CGROUP JQ ARGS...: crun_run's bundle (policy web), its
# config.json edited by the jq filter JQ first; no unique suffix: NAME is.
crun_edited() {
	local name=$1 cg=$2 filter=$3
	shift 3
	bundle "$name" "$cg" web "$@"
	jq "$filter" "$T/b/$name/config.json" >"$T/edit.json" &&
		mv "$T/edit.json" "$T/b/$name/config.json" || e2e_die "cannot edit $name's config.json"
	runc_to_end "$name"
}

out_is() { # WANT [WHAT]
	local got
	got=$(tr -d '\r' <"$OUT" | tail -n 1)
	[ "$got" = "$1" ] || t_why "${2:-output}: '$got', want '$1' (rc $RC; $(t_tail "$ERR"))"
}

arrived() { # PAYLOAD: the sink logged it
	grep -qF -- "$1" "$T/sink.log"
}

test_runc_first_connect_is_judged() {
	t_begin "runc: an annotated container's first connect is judged (denied and allowed)"
	crun_run deny "/$CGN/deny" web netprobe tcp 192.0.2.99 80 "denied-$$"
	out_is EPERM "its first connect to a destination web does not allow"
	arrived "denied-$$" && t_why "the denied payload arrived"
	crun_run allow "/$CGN/allow" web netprobe tcp 192.0.2.10 80 "allowed-$$"
	out_is ok "its first connect to a destination web allows"
	arrived "allowed-$$" || t_why "the allowed payload did not arrive"
	sleep 0.2 # the daemon reads its ring buffer every 50 ms
	jq -e -s --arg id "deny-$$" 'map(select(.verdict == "deny" and .dst == "192.0.2.99" and
		(.attachment | startswith($id[0:12])))) | length >= 1' "$T/events.jsonl" >/dev/null ||
		t_why "no deny event labelled with the container's id"
	wait_attachments "true" 0 || t_why "poststop left attachments: $(ps_json | jq -c .)"
	t_end
}

test_runc_dns_in_its_netns() {
	t_begin "runc: the container's DNS is answered by weir in its netns; refused names never leave"
	crun_run dns "/$CGN/dns" web netprobe dns 192.0.2.53 53 a.test
	out_is "ok 192.0.2.10" "a.test through the container's nameserver"
	crun_run dnsno "/$CGN/dnsno" web netprobe dns 192.0.2.53 53 evil.test
	out_is REFUSED "evil.test"
	# a.test reached dnsmasq from the resolver in the container's netns (the
	# daemon's own netns has no 192.0.2.53; the host's resolv.conf names .54).
	grep -q 'query\[A\] a.test from 192.0.2.53' "$T/dnsmasq.log" ||
		t_why "a.test never reached the container's nameserver: $(t_tail "$T/dnsmasq.log")"
	grep -q 'evil.test' "$T/dnsmasq.log" && t_why "evil.test was forwarded to dnsmasq"
	t_end
}

test_runc_no_annotation() {
	t_begin "runc: no annotation: the hook binds nothing, the container runs"
	crun_run plain "/$CGN/plain" "" netprobe tcp 192.0.2.99 80 "plain-$$"
	out_is ok "an unannotated container, no safety net"
	[ "$(attachments_of true)" = 0 ] || t_why "something was attached: $(ps_json | jq -c .)"
	t_end
}

test_runc_fails_closed() {
	t_begin "runc: daemon down or policy unknown: the hook fails, the container never runs"
	HOOK_SOCKET=$T/nobody.sock crun_run down "/$CGN/down" web netprobe tcp 192.0.2.10 80 "down-$$"
	HOOK_SOCKET=
	[ "$RC" != 0 ] || t_why "runc run succeeded with no daemon"
	grep -q 'weir: oci-hook createRuntime: container down-.*no daemon answers on .*nobody.sock.*the container does not start' "$ERR" ||
		t_why "stderr: $(t_tail "$ERR")"
	crun_run nopol "/$CGN/nopol" nosuchpolicy netprobe tcp 192.0.2.10 80 "nopol-$$"
	[ "$RC" != 0 ] || t_why "runc run succeeded with an unknown policy"
	grep -q 'nosuchpolicy' "$ERR" || t_why "stderr does not name the policy: $(t_tail "$ERR")"
	crun_run badname "/$CGN/badname" "../web" netprobe tcp 192.0.2.10 80 "badname-$$"
	[ "$RC" != 0 ] || t_why "runc run succeeded with the annotation ../web"
	sleep 0.2
	for p in down nopol badname; do
		arrived "$p-$$" && t_why "the $p container's program ran"
	done
	t_end
}

# Review 2's F3: container ids are unique per runtime root only. Container
# A runs (policy web, waiting for a flag before it connects); container B,
# under another runc --root with A's id and a bundle of its own, starts and
# stops: its poststop must not release A's attachment, and A's connect to
# what web denies stays refused, nothing arrived.
test_runc_same_id_other_root() {
	local id=same-$$ i apid
	t_begin "runc: another container with the same id (another --root) stopping leaves the first one enforced"
	mkdir -p "$T/flag-a" && chmod 755 "$T/flag-a"
	bundle "sameA-$$" "/$CGN/sameA" web sh -c \
		'i=0; while [ ! -e /flag/go ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; netprobe tcp 192.0.2.99 80 same-a-$0' "$$"
	jq --arg flag "$T/flag-a" '.mounts += [{destination: "/flag", type: "bind", source: $flag,
		options: ["rbind", "ro"]}]' "$T/b/sameA-$$/config.json" >"$T/sameA.json" &&
		mv "$T/sameA.json" "$T/b/sameA-$$/config.json"
	timeout 60 "${RUNC[@]}" run --bundle "$T/b/sameA-$$" "$id" >"$T/sameA.out" 2>"$T/sameA.err" </dev/null &
	apid=$!
	wait_attachments ".cgroup | endswith(\"/$CGN/sameA\")" 1 ||
		t_why "A was never attached: $(ps_json | jq -c .) $(t_tail "$T/sameA.err")"
	bundle "sameB-$$" "/$CGN/sameB" web true
	timeout 30 runc --root "$T/runc2" run --bundle "$T/b/sameB-$$" "$id" >"$T/sameB.out" \
		2>"$T/sameB.err" </dev/null || t_why "B did not run: $(t_tail "$T/sameB.err")"
	runc --root "$T/runc2" delete -f "$id" >/dev/null 2>&1
	# B's poststop is over (runc run waits for it); A must still be held.
	[ "$(attachments_of ".cgroup | endswith(\"/$CGN/sameA\")")" = 1 ] ||
		t_why "B's poststop released A's attachment: $(ps_json | jq -c .)"
	touch "$T/flag-a/go"
	wait "$apid"
	"${RUNC[@]}" delete -f "$id" >/dev/null 2>&1
	OUT=$T/sameA.out ERR=$T/sameA.err RC=0
	out_is EPERM "A's connect to what web denies, after B stopped"
	sleep 0.2
	arrived "same-a-$$" && t_why "A's denied payload arrived"
	wait_attachments true 0 || t_why "A's poststop left attachments: $(ps_json | jq -c .)"
	t_end
}

# Review 2's F6: the daemon reads a container's etc/resolv.conf from its
# root; what an image put there (a device node, a FIFO) must not be opened
# before it is known to be a regular file. A FIFO shows it: its writer's
# open() returns only once someone opens it for reading.
test_resolv_conf_not_opened() {
	local root=$T/fiforoot wpid
	t_begin "a FIFO at the container root's etc/resolv.conf: the daemon never opens it (its writer stays blocked)"
	mkdir -p "$root/etc" "$CGP/fifo" && mkfifo "$root/etc/resolv.conf"
	(exec 3>"$root/etc/resolv.conf" && echo opened >"$T/fifo-writer") &
	wpid=$!
	curl -s --max-time 20 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
		-d "{\"cgroup\":\"$CGP/fifo\",\"policy\":\"web\",\"holder\":\"fifo-$$\",\"root\":\"$root\",\"nameservers\":\"192.0.2.53\"}" \
		http://weir/v1/attachments >"$T/fifo.out" 2>&1
	sleep 0.3
	[ -e "$T/fifo-writer" ] && t_why "the FIFO was opened for reading (its writer went on)"
	grep -q '"cgroup"' "$T/fifo.out" || t_why "attach: $(t_tail "$T/fifo.out")"
	curl -s --max-time 20 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
		-d "{\"holder\":\"fifo-$$\"}" http://weir/v1/detach >/dev/null 2>&1
	kill "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	t_end
}

# Review 2's F4: a container's own annotations claim a pod (a sandbox id):
# the hook would bind its parent cgroup (every sibling container) with its
# policy. Its parent here is named as no runtime names a pod's: refused,
# the container does not start, the parent is not attached.
test_runc_pod_claim() {
	t_begin "runc: a container claiming a pod (SandboxID annotation) whose parent is no pod's cgroup: refused, not started, the parent not attached"
	crun_edited "spoof-$$" "/$CGN/spoofparent/c" '.annotations["io.kubernetes.cri-o.SandboxID"] = "0123abcd"' \
		netprobe tcp 192.0.2.10 80 "spoof-$$"
	[ "$RC" != 0 ] || t_why "runc run succeeded"
	grep -q "named as no runtime names a pod's" "$ERR" || t_why "stderr: $(t_tail "$ERR")"
	sleep 0.2
	arrived "spoof-$$" && t_why "its program ran"
	[ "$(attachments_of ".cgroup | endswith(\"/spoofparent\")")" = 0 ] ||
		t_why "the parent was attached: $(ps_json | jq -c .)"
	t_end
}

# A container that may use CAP_NET_RAW (AF_PACKET frames no hook sees), or
# another capability that takes it past weir's hooks: the hook refuses it
# unless weir.dev/allow-capabilities names it.
test_runc_capabilities() {
	t_begin "runc: an annotated container that may use CAP_NET_RAW is refused, not started; the annotation accepts it"
	crun_edited "netraw-$$" "/$CGN/netraw-$$" '.process.capabilities.bounding += ["CAP_NET_RAW"]' \
		netprobe tcp 192.0.2.10 80 "netraw-$$"
	[ "$RC" != 0 ] || t_why "runc run succeeded"
	grep -q "it may use CAP_NET_RAW (its bounding set)" "$ERR" || t_why "stderr: $(t_tail "$ERR")"
	crun_edited "netrawok-$$" "/$CGN/netrawok-$$" '.process.capabilities.bounding += ["CAP_NET_RAW"] |
		.annotations["weir.dev/allow-capabilities"] = "NET_RAW"' \
		netprobe tcp 192.0.2.10 80 "netrawok-$$"
	out_is ok "accepted with weir.dev/allow-capabilities=NET_RAW"
	sleep 0.2
	arrived "netraw-$$" && t_why "the refused container's program ran"
	wait_attachments "true" 0 || t_why "attachments left: $(ps_json | jq -c .)"
	t_end
}

test_safety_net_and_nesting() {
	t_begin "safety net: an unannotated container gets the parent's default; an annotated one its own, not both"
	mkdir -p "$CGP/net"
	"$WEIR" attach --socket "$SOCK" --policy netdefault "$CGP/net" >/dev/null 2>"$T/attach.err" ||
		t_why "weir attach of the safety net: $(t_tail "$T/attach.err")"
	crun_run netplain "/$CGN/net/plain" "" netprobe tcp 192.0.2.10 80 "netplain-$$"
	out_is EPERM "unannotated, to 192.0.2.10 (the default denies)"
	crun_run netplain99 "/$CGN/net/plain99" "" netprobe tcp 192.0.2.99 80 "netplain99-$$"
	out_is ok "unannotated, to 192.0.2.99 (the default allows)"
	crun_run netown "/$CGN/net/own" web netprobe tcp 192.0.2.10 80 "netown-$$"
	out_is ok "own policy web, to 192.0.2.10 (web allows; the parent's would deny)"
	crun_run netown99 "/$CGN/net/own99" web netprobe tcp 192.0.2.99 80 "netown99-$$"
	out_is EPERM "own policy web, to 192.0.2.99 (the parent's would allow)"
	arrived "netown99-$$" && t_why "the nested container reached what only its parent allows"
	# Its DNS goes to its own resolver, which the parent's programs let be.
	crun_run netdns "/$CGN/net/dns" web netprobe dns 192.0.2.53 53 a.test
	out_is "ok 192.0.2.10" "own policy web, a.test through its own resolver"
	[ "$(attachments_of '.policy == "netdefault"')" = 1 ] || t_why "the safety net is gone"
	wait_attachments true 1 || t_why "the nested containers left attachments: $(ps_json | jq -c .)"
	"$WEIR" detach --socket "$SOCK" "$CGP/net" >/dev/null 2>&1 || t_why "weir detach of the net"
	t_end
}

# --- podman ---------------------------------------------------------------------

# podman with everything of its own in $T/pm; hooks.d from deploy/oci, with
# the binary and the daemon's socket put in.
setup_podman() {
	local f h
	mkdir -p "$T/pm/hooks" "$T/pm/hooks-dead" "$T/pm/tmp"
	for f in "$REPO_ROOT"/deploy/oci/*.json; do
		for h in hooks:"$SOCK" hooks-dead:"$T/nobody.sock"; do
			jq --arg weir "$WEIR" --arg sock "${h#*:}" \
				'.hook.path = $weir | .hook.args += ["--socket", $sock]' "$f" \
				>"$T/pm/${h%%:*}/${f##*/}" || e2e_die "cannot rewrite $f"
		done
	done
	# The capabilities Debian's /usr/share/containers/containers.conf gives
	# (this file replaces it, and podman's built-in list adds NET_RAW,
	# MKNOD and AUDIT_WRITE): CAP_NET_RAW containers are refused by the hook
	# (test_podman_capabilities).
	cat >"$T/pm/containers.conf" <<-EOF
		[containers]
		default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
		  "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
		default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "none"
		runtime = "runc"
		infra_image = "$PAUSE_IMG"
		hooks_dir = ["$T/pm/hooks"]
	EOF
	cat >"$T/pm/storage.conf" <<-EOF
		[storage]
		driver = "overlay"
		graphroot = "$T/pm/root"
		runroot = "$T/pm/run"
	EOF
	export CONTAINERS_CONF=$T/pm/containers.conf CONTAINERS_STORAGE_CONF=$T/pm/storage.conf
	export CONTAINERS_REGISTRIES_CONF=$T/pm/registries.conf
	: >"$CONTAINERS_REGISTRIES_CONF"
	tar -C "$ROOTFS" -cf "$T/rootfs.tar" . || e2e_die "tar the root fs"
	"${PM[@]}" import "$T/rootfs.tar" "$IMG" >"$T/pm/import.out" 2>&1 &&
		"${PM[@]}" import --change 'CMD ["/pause"]' "$T/rootfs.tar" "$PAUSE_IMG" \
			>>"$T/pm/import.out" 2>&1 ||
		e2e_die "podman import: $(t_tail "$T/pm/import.out")"
}

# prun ARGS...: podman run --rm in the test's netns, below our cgroup; $OUT, $ERR, RC.
prun() {
	OUT=$T/prun-$((N_CTR += 1)).out ERR=$T/prun-$N_CTR.err
	timeout 60 "${PM[@]}" run --rm --pull never --network "ns:$NETNS" \
		--cgroup-parent "/$CGN/pm" "$@" >"$OUT" 2>"$ERR" </dev/null
	RC=$?
}

test_podman_first_connect_and_dns() {
	t_begin "podman: an annotated container: first connect judged, DNS in its netns, poststop releases"
	prun --annotation weir.dev/policy=web "$IMG" netprobe tcp 192.0.2.99 80 "pdeny-$$"
	out_is EPERM "podman, to 192.0.2.99"
	prun --annotation weir.dev/policy=web "$IMG" netprobe tcp 192.0.2.10 80 "pallow-$$"
	out_is ok "podman, to 192.0.2.10"
	arrived "pallow-$$" || t_why "the allowed payload did not arrive"
	arrived "pdeny-$$" && t_why "the denied payload arrived"
	prun --annotation weir.dev/policy=web --dns 192.0.2.53 "$IMG" netprobe dns 192.0.2.53 53 a.test
	out_is "ok 192.0.2.10" "podman, a.test"
	prun --annotation weir.dev/policy=web --dns 192.0.2.53 "$IMG" netprobe dns 192.0.2.53 53 \
		evil.test
	out_is REFUSED "podman, evil.test"
	grep -q 'evil.test' "$T/dnsmasq.log" && t_why "evil.test was forwarded to dnsmasq"
	wait_attachments "true" 0 || t_why "podman's poststop left attachments: $(ps_json | jq -c .)"
	t_end
}

test_podman_exec_and_rm() {
	local id
	t_begin "podman: exec'd processes are enforced; rm releases the attachment"
	id=$(timeout 60 "${PM[@]}" run -d --pull never --network "ns:$NETNS" \
		--cgroup-parent "/$CGN/pm" --annotation weir.dev/policy=web "$IMG" /pause 2>"$T/prun-d.err")
	[ -n "$id" ] || t_why "podman run -d: $(t_tail "$T/prun-d.err")"
	[ "$(attachments_of ".label == \"${id:0:12}\" and .holders == 1")" = 1 ] ||
		t_why "no attachment held by ${id:0:12}: $(ps_json | jq -c .)"
	OUT=$T/exec.out ERR=$T/exec.err
	timeout 30 "${PM[@]}" exec "$id" netprobe tcp 192.0.2.99 80 "pexec-$$" >"$OUT" 2>"$ERR"
	out_is EPERM "podman exec, to 192.0.2.99"
	timeout 30 "${PM[@]}" exec "$id" netprobe tcp 192.0.2.10 80 "pexec-ok-$$" >"$OUT" 2>"$ERR"
	out_is ok "podman exec, to 192.0.2.10"
	timeout 60 "${PM[@]}" rm -f -t 1 "$id" >/dev/null 2>&1
	wait_attachments "true" 0 || t_why "rm left attachments: $(ps_json | jq -c .)"
	t_end
}

test_podman_safety_net() {
	t_begin "podman: under the safety net, an unannotated container gets the default, an annotated one its own"
	mkdir -p "$CGP/pm"
	"$WEIR" attach --socket "$SOCK" --policy netdefault "$CGP/pm" >/dev/null 2>"$T/attach.err" ||
		t_why "weir attach of podman's parent: $(t_tail "$T/attach.err")"
	prun "$IMG" netprobe tcp 192.0.2.10 80 "pnet-$$"
	out_is EPERM "unannotated, to 192.0.2.10 (the default denies)"
	prun "$IMG" netprobe tcp 192.0.2.99 80 "pnet99-$$"
	out_is ok "unannotated, to 192.0.2.99 (the default allows)"
	prun --annotation weir.dev/policy=web "$IMG" netprobe tcp 192.0.2.10 80 "pnetown-$$"
	out_is ok "annotated web, to 192.0.2.10"
	prun --annotation weir.dev/policy=web "$IMG" netprobe tcp 192.0.2.99 80 "pnetown99-$$"
	out_is EPERM "annotated web, to 192.0.2.99"
	wait_attachments true 1 || t_why "containers left attachments: $(ps_json | jq -c .)"
	"$WEIR" detach --socket "$SOCK" "$CGP/pm" >/dev/null 2>&1 || t_why "weir detach of podman's parent"
	t_end
}

test_podman_daemon_down() {
	t_begin "podman: no daemon behind the hook: the annotated container does not start"
	OUT=$T/pdown.out ERR=$T/pdown.err
	timeout 60 "${PM[@]}" --hooks-dir "$T/pm/hooks-dead" run --rm --pull never \
		--network "ns:$NETNS" --cgroup-parent "/$CGN/pm" --annotation weir.dev/policy=web \
		"$IMG" netprobe tcp 192.0.2.10 80 "pdown-$$" >"$OUT" 2>"$ERR" </dev/null
	RC=$?
	[ "$RC" != 0 ] || t_why "podman run succeeded"
	grep -q 'no daemon answers on' "$ERR" || t_why "stderr: $(t_tail "$ERR")"
	sleep 0.2
	arrived "pdown-$$" && t_why "its program ran"
	# The same without the annotation: the hook is not even run.
	timeout 60 "${PM[@]}" --hooks-dir "$T/pm/hooks-dead" run --rm --pull never \
		--network "ns:$NETNS" --cgroup-parent "/$CGN/pm" "$IMG" true >"$OUT" 2>"$ERR"
	RC=$?
	[ "$RC" = 0 ] || t_why "an unannotated container did not start: $(t_tail "$ERR")"
	t_end
}

# Review 2's F5: hooks.d matches every weir.dev/ annotation, and the hook
# refuses one it does not know: a misspelled policy key no longer starts
# the container unconfined.
test_podman_misspelled_annotation() {
	t_begin "podman: a misspelled annotation (weir.dev/Policy): the hook refuses, the container does not start"
	prun --annotation weir.dev/Policy=web "$IMG" netprobe tcp 192.0.2.99 80 "pmisspelt-$$"
	[ "$RC" != 0 ] || t_why "podman run succeeded"
	grep -q "unknown annotation 'weir.dev/Policy'" "$ERR" || t_why "stderr: $(t_tail "$ERR")"
	sleep 0.2
	arrived "pmisspelt-$$" && t_why "its program ran"
	t_end
}

test_podman_capabilities() {
	t_begin "podman: --cap-add NET_RAW or --privileged with a policy: refused, not started"
	prun --cap-add NET_RAW --annotation weir.dev/policy=web "$IMG" netprobe tcp 192.0.2.10 80 \
		"pnetraw-$$"
	[ "$RC" != 0 ] || t_why "podman run --cap-add NET_RAW succeeded"
	grep -q "it may use CAP_NET_RAW" "$ERR" || t_why "stderr: $(t_tail "$ERR")"
	prun --privileged --annotation weir.dev/policy=web "$IMG" netprobe tcp 192.0.2.10 80 \
		"ppriv-$$"
	[ "$RC" != 0 ] || t_why "podman run --privileged succeeded"
	grep -q "it may use CAP_" "$ERR" || t_why "stderr: $(t_tail "$ERR")"
	sleep 0.2
	arrived "pnetraw-$$" && t_why "the NET_RAW container's program ran"
	arrived "ppriv-$$" && t_why "the privileged container's program ran"
	t_end
}

# A pod of two containers sharing one netns, from podman kube play.
POD_YAML=
setup_pod_yaml() {
	POD_YAML=$T/pod.yaml
	cat >"$POD_YAML" <<-EOF
		apiVersion: v1
		kind: Pod
		metadata:
		  name: wpod-$$
		  annotations:
		    weir.dev/policy: web
		spec:
		  containers:
		  - name: a
		    image: $IMG
		    command: ["/pause"]
		  - name: b
		    image: $IMG
		    command: ["/pause"]
	EOF
}

# pod_servers: the pod's netns (podman's pods take no ns: network: it is a
# --network none one, the infra container's) gets the test's hosts on its lo
# and a sink on them, for this round (a restarted pod has a new netns).
POD_SINK=
pod_servers() {
	local infra pid i
	infra=$("${PM[@]}" pod inspect "wpod-$$" --format '{{.InfraContainerID}}' 2>/dev/null)
	pid=$("${PM[@]}" inspect "$infra" --format '{{.State.Pid}}' 2>/dev/null)
	[ -n "$pid" ] && [ "$pid" != 0 ] || { t_why "no infra process ($infra)"; return 1; }
	nsenter --net="/proc/$pid/ns/net" sh -c 'ip link set lo up &&
		ip addr replace 192.0.2.10/32 dev lo && ip addr replace 192.0.2.99/32 dev lo' ||
		{ t_why "cannot put the test's hosts in the pod's netns"; return 1; }
	: >"$T/pod-sink.ready"
	nsenter --net="/proc/$pid/ns/net" "$SINK" "$T/sink.log" 192.0.2.10:80 192.0.2.99:80 \
		>"$T/pod-sink.ready" 2>&1 &
	POD_SINK=$!
	E2E_PIDS+=("$POD_SINK")
	for ((i = 0; i < 50; i++)); do
		grep -qs '^ready$' "$T/pod-sink.ready" && return 0
		sleep 0.1
	done
	t_why "the pod's sink did not start: $(t_tail "$T/pod-sink.ready")"
	return 1
}

# pod_check ROUND: both containers enforced, one attachment held by both.
pod_check() {
	local c
	pod_servers || return
	for c in a b; do
		OUT=$T/pod.out ERR=$T/pod.err
		timeout 30 "${PM[@]}" exec "wpod-$$-$c" /bin/netprobe tcp 192.0.2.99 80 "pod$1$c-$$" \
			>"$OUT" 2>"$ERR"
		out_is EPERM "$1: container $c to 192.0.2.99"
		arrived "pod$1$c-$$" && t_why "$1: container $c reached 192.0.2.99"
		timeout 30 "${PM[@]}" exec "wpod-$$-$c" /bin/netprobe tcp 192.0.2.10 80 "pod$1${c}ok-$$" \
			>"$OUT" 2>"$ERR"
		out_is ok "$1: container $c to 192.0.2.10"
		arrived "pod$1${c}ok-$$" || t_why "$1: container $c's allowed payload did not arrive"
	done
	[ "$(attachments_of true)" = 1 ] && [ "$(attachments_of '.holders == 2')" = 1 ] ||
		t_why "$1: not one attachment held by both: $(ps_json | jq -c '[.attachments[] |
			{cgroup, holders}]')"
	[ "$(find "$PINS" -maxdepth 1 -name 'att-*' | wc -l)" = 1 ] ||
		t_why "$1: pins: $(ls "$PINS")"
	kill "$POD_SINK" 2>/dev/null
	e2e_wait_gone "$POD_SINK" 30
}

test_podman_pod() {
	local i podid
	t_begin "podman kube play: a pod's two containers share its attachment, over restarts"
	setup_pod_yaml
	timeout 120 "${PM[@]}" kube play --network none "$POD_YAML" >"$T/play.out" 2>&1 ||
		t_why "kube play: $(t_tail "$T/play.out")"
	podid=$("${PM[@]}" pod inspect "wpod-$$" --format '{{.Id}}' 2>/dev/null)
	POD_CG=$(ps_json | jq -r --arg id "$podid" '.attachments[] | select(.cgroup |
		endswith("/" + $id)) | .cgroup' | head -n 1)
	[ "$(attachments_of ".cgroup | endswith(\"/$podid\")")" = 1 ] ||
		t_why "the pod's cgroup (.../$podid) is not attached: $(ps_json | jq -c .)"
	pod_check start
	# A daemon killed and started again keeps who holds what (its state dir).
	kill -KILL "$DPID"
	e2e_wait_gone "$DPID" 30
	start_daemon
	pod_check "after a daemon restart"
	for ((i = 1; i <= 3; i++)); do
		timeout 120 "${PM[@]}" pod stop -t 1 "wpod-$$" >"$T/restart.out" 2>&1 ||
			t_why "pod stop $i: $(t_tail "$T/restart.out")"
		wait_attachments true 0 || t_why "stopped pod $i: $(ps_json | jq -c .)"
		timeout 120 "${PM[@]}" pod start "wpod-$$" >"$T/restart.out" 2>&1 ||
			t_why "pod start $i: $(t_tail "$T/restart.out")"
		pod_check "restart $i"
	done
	timeout 120 "${PM[@]}" kube down "$POD_YAML" >"$T/down.out" 2>&1 ||
		t_why "kube down: $(t_tail "$T/down.out")"
	wait_attachments true 0 || t_why "after kube down: $(ps_json | jq -c .)"
	[ -z "$(find "$PINS" -maxdepth 1 -name 'att-*')" ] || t_why "pins left: $(ls "$PINS")"
	t_end
}

command -v runc >/dev/null || e2e_die "runc not found (make deps)"
command -v podman >/dev/null || e2e_die "podman not found (make deps)"
NETPROBE_STATIC=$WEIR_BUILD/bin/netprobe-static
[ -x "$NETPROBE_STATIC" ] || e2e_die "$NETPROBE_STATIC missing: make build/bin/netprobe-static"
setup_netns
setup_rootfs
setup_daemon
test_runc_first_connect_is_judged
test_runc_dns_in_its_netns
test_runc_no_annotation
test_runc_fails_closed
test_runc_same_id_other_root
test_resolv_conf_not_opened
test_runc_pod_claim
test_runc_capabilities
test_safety_net_and_nesting
setup_podman
test_podman_first_connect_and_dns
test_podman_exec_and_rm
test_podman_safety_net
test_podman_daemon_down
test_podman_misspelled_annotation
test_podman_capabilities
test_podman_pod
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
