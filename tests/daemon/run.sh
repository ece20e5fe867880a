#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 6, weir daemon: one daemon enforcing policies on many cgroups, with
# real cgroups, real servers and dnsmasq in private network and mount
# namespaces; the API over its unix socket with curl --unix-socket.
#
#   WEIR_BUILD=/abs/build bash tests/daemon/run.sh      (root)
#
# The daemon runs with its own --socket, --state-dir, --policy-dir (in the
# test's temp dir) and --pin-root (/sys/fs/bpf/weir-dtest-PID); the cgroups
# are below <cgroup2>/weir-dtest-PID. Only those are ever removed.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=daemon
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

# shellcheck source=tests/daemon/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
d_init dtest
D_ARGS=(--events "$T/events.jsonl")

LOG=$T/sink.log
LOOPER=  # test_kill9's denied-destination loop
SQUAT=   # test_taken_port's squatter
N=50     # cgroups
DIG=(dig +time=2 +tries=1 +short)

d_on_cleanup() {
	[ -n "$LOOPER" ] && kill "$LOOPER" 2>/dev/null
	[ -n "$SQUAT" ] && kill "$SQUAT" 2>/dev/null
	return 0
}

setup() {
	e2e_setup_lo 192.0.2.10/32 192.0.2.11/32 192.0.2.12/32 192.0.2.99/32
	e2e_start_sink sink "$LOG" 192.0.2.10:80 192.0.2.11:80 192.0.2.12:80 192.0.2.99:80
	e2e_start_dns a.test,192.0.2.10 b.test,192.0.2.11
	mkdir -p "$PDIR" "$CGP" || e2e_die "cannot make $PDIR or $CGP"
	policy alpha <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: 192.0.2.10
		    ports: [80]
		  - domain: a.test
		    ports: [80]
	EOF
	policy beta <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: 192.0.2.11
		    ports: [80]
		  - domain: b.test
		    ports: [80]
	EOF
	start_daemon
}

pol_of() { # I: alpha for even cgroups, beta for odd
	if (($1 % 2)); then echo beta; else echo alpha; fi
}

# The daemon's own empty cgroup (egress_hold_keys, docs/performance.md):
# every program attached, no policy: what is put in it is refused.
test_keys_cgroup() {
	local keys=$CG2/weir/keys-$DPID got
	t_begin "the daemon holds its programs on weir/keys-PID: empty, fail closed"
	if [ -d "$keys" ]; then
		[ -s "$keys/cgroup.procs" ] && t_why "$keys has processes: $(cat "$keys/cgroup.procs")"
		got=$(probe "$keys" 192.0.2.10 weir-keys)
		[ "$got" = EPERM ] || t_why "a connect from inside $keys: $got, want EPERM"
		x_not_arrived "$LOG" 'weir-keys'
	else
		t_why "no $keys"
	fi
	t_end
}

test_fifty_cgroups_each_see_their_own() {
	local i cg bad=0 got want10 want11
	t_begin "$N cgroups, alternating policies: each sees only its own"
	for ((i = 0; i < N; i++)); do
		cg=$CGP/c$i
		mkdir "$cg" || t_why "mkdir $cg"
		attach "$cg" "$(pol_of "$i")" "job-$i" >/dev/null
		[ "$CODE" = 201 ] || { t_why "attach c$i: HTTP $CODE $(cat "$T/api.out")"; bad=1; }
	done
	((bad)) && { t_end; return; }
	for ((i = 0; i < N; i++)); do
		if (($i % 2)); then want10=EPERM want11=ok; else want10=ok want11=EPERM; fi
		got=$(probe "$CGP/c$i" 192.0.2.10)
		[ "$got" = "$want10" ] || t_why "c$i to 192.0.2.10: $got, want $want10"
		got=$(probe "$CGP/c$i" 192.0.2.11)
		[ "$got" = "$want11" ] || t_why "c$i to 192.0.2.11: $got, want $want11"
	done
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" '.[0].attachments | length == 50'
	x_json "$T/list.json" '.[0].attachments | map(select(.label == "job-1" and
		.policy == "beta" and .generation == 1 and .state == "ok" and .denied >= 1)) |
		length == 1'
	sleep 0.2 # the event stream is read every 50 ms
	x_json "$T/events.jsonl" 'map(select(.attachment == "job-3" and .verdict == "deny" and
		.dst == "192.0.2.10")) | length >= 1'
	t_end
}

# metric 'NAME{LABELS}' VALUE: $T/metrics.txt has that sample, with that value
# (VALUE ">=N": at least N).
metric() {
	local v
	v=$(awk -v k="$1" '$1 == k { print $2 }' "$T/metrics.txt")
	if [[ $2 == ">="* ]]; then
		[ -n "$v" ] && ((v >= ${2#>=})) && return 0
	else
		[ "$v" = "$2" ] && return 0
	fi
	t_why "metric $1 is '${v:-missing}', want $2"
}

test_metrics() {
	t_begin "metrics: decisions and DNS answers by verdict, policy and attachment"
	in_cg "$CGP/c2" "${DIG[@]}" @127.0.0.53 b.test >/dev/null 2>&1
	api GET /metrics >"$T/metrics.txt"
	[ "$CODE" = 200 ] || t_why "GET /metrics: HTTP $CODE"
	metric "weir_attachments" "$N"
	metric 'weir_decisions_total{verdict="deny",policy="beta",unit="job-1"}' '>=1'
	metric 'weir_decisions_total{verdict="allow",policy="beta",unit="job-1"}' '>=1'
	metric 'weir_decisions_total{verdict="deny",policy="alpha",unit="job-2"}' '>=1'
	metric 'weir_dns_refusals_total{policy="alpha",unit="job-2"}' 1
	metric 'weir_dns_answers_total{policy="alpha",unit="job-2"}' 0
	metric 'weir_dns_latency_seconds_count' '>=1'
	metric 'weir_events_lost_total' 0
	metric 'weir_policy_generation{policy="alpha"}' 1
	metric 'weir_map_entries{map="weir_handles"}' "$N"
	metric 'weir_map_entries{map="weir_lpm4"}' '>=50'
	metric 'weir_map_entries{map="weir_slots"}' "$N"
	metric 'weir_map_capacity{map="weir_handles"}' '>=500'
	t_end
}

test_attach_is_idempotent_and_exclusive() {
	t_begin "attach again: same policy 200, another policy 409, no cgroup 404"
	attach "$CGP/c0" alpha >/dev/null
	[ "$CODE" = 200 ] || t_why "same policy: HTTP $CODE, want 200"
	attach "$CGP/c0" beta >/dev/null
	[ "$CODE" = 409 ] || t_why "another policy: HTTP $CODE, want 409"
	attach "$CGP/nosuch" alpha >/dev/null
	[ "$CODE" = 404 ] || t_why "no such cgroup: HTTP $CODE, want 404"
	attach "$CGP/c0" nosuch >/dev/null
	[ "$CODE" = 400 ] || t_why "no such policy: HTTP $CODE, want 400"
	t_end
}

# wait_probe CGROUP ADDR WANT: the probe gives WANT within 5 s.
wait_probe() {
	local i got
	for ((i = 0; i < 50; i++)); do
		got=$(probe "$1" "$2")
		[ "$got" = "$3" ] && return 0
		sleep 0.1
	done
	t_why "$(basename "$1") to $2: $got, want $3"
}

test_hot_reload() {
	t_begin "editing a policy file reloads it for every attachment using it"
	policy alpha <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: 192.0.2.12
		    ports: [80]
		  - domain: a.test
		    ports: [80]
	EOF
	wait_probe "$CGP/c0" 192.0.2.12 ok
	wait_probe "$CGP/c$((N - 2))" 192.0.2.12 ok
	wait_probe "$CGP/c0" 192.0.2.10 EPERM
	wait_probe "$CGP/c1" 192.0.2.11 ok # beta untouched
	[ "$(probe "$CGP/c1" 192.0.2.12)" = EPERM ] || t_why "beta got alpha's new rule"
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" '.[0].attachments | map(select(.policy == "alpha")) |
		all(.generation == 2 and .state == "ok")'
	x_json "$T/list.json" '.[0].attachments | map(select(.policy == "beta")) |
		all(.generation == 1)'
	t_end
}

test_broken_file_keeps_the_old_policy() {
	t_begin "a broken policy file keeps the old version in force and is reported"
	policy alpha <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: 192.0.2.10
		    portz: [80]
	EOF
	sleep 0.5 # inotify: the daemon has read it (nothing to poll for in the kernel)
	[ "$(probe "$CGP/c0" 192.0.2.12)" = ok ] || t_why "generation 2 is no longer in force"
	[ "$(probe "$CGP/c0" 192.0.2.10)" = EPERM ] || t_why "the broken file's rule is in force"
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" '.[0].attachments | map(select(.policy == "alpha")) |
		all(.generation == 2 and (.state | startswith("policy error: ") and
		contains("alpha.yaml:5:")))'
	api POST /v1/reload >"$T/reload.json"
	x_json "$T/reload.json" '.[0].policies | map(select(.name == "alpha")) |
		.[0].state | contains("alpha.yaml:5:")'
	grep -qE 'policy error: .*alpha.yaml:5:[0-9]+: ' "$T/daemon.err" ||
		t_why "the log does not say so: $(t_tail "$T/daemon.err")"
	api GET /metrics >"$T/metrics.txt"
	metric 'weir_policy_ok{policy="alpha"}' 0
	metric 'weir_policy_ok{policy="beta"}' 1
	metric 'weir_policy_load_errors_total{policy="alpha"}' 1
	metric 'weir_policy_generation{policy="alpha"}' 2
	# Fixed again: generation 3.
	policy alpha <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: 192.0.2.12
		    ports: [80]
		  - domain: a.test
		    ports: [80]
	EOF
	wait_probe "$CGP/c0" 192.0.2.12 ok
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" '.[0].attachments | map(select(.policy == "alpha")) |
		all(.generation == 3 and .state == "ok")'
	t_end
}

# A policy that includes a file (docs/policy.md, "Tiers"): a change in the
# included file is a new generation of the policy; weir run does not send
# a daemon a policy that includes files.
test_include_reload() {
	t_begin "a changed include reloads the policy including it; weir run keeps such a policy standalone"
	cat >"$PDIR/tier.inc" <<-EOF
		version: 1
		allow:
		  - ip: 192.0.2.10
		    ports: [80]
	EOF
	policy gamma <<-EOF
		version: 1
		loopback: deny
		include: [tier.inc]
	EOF
	mkdir "$CGP/tiers"
	attach "$CGP/tiers" gamma >/dev/null
	[ "$CODE" = 201 ] || t_why "attach: HTTP $CODE $(cat "$T/api.out")"
	wait_probe "$CGP/tiers" 192.0.2.10 ok
	[ "$(probe "$CGP/tiers" 192.0.2.11)" = EPERM ] || t_why "192.0.2.11 allowed before the change"
	cat >"$PDIR/tier.inc.tmp" <<-EOF
		version: 1
		allow:
		  - ip: 192.0.2.11
		    ports: [80]
	EOF
	mv "$PDIR/tier.inc.tmp" "$PDIR/tier.inc"
	wait_probe "$CGP/tiers" 192.0.2.11 ok
	wait_probe "$CGP/tiers" 192.0.2.10 EPERM
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" '.[0].attachments | map(select(.policy == "gamma")) |
		all(.generation == 2 and .state == "ok")'
	run_cmd "$WEIR" run --socket "$SOCK" -p "$PDIR/gamma.yaml" -- true
	x_rc 125
	x_err_has "gamma\.yaml includes files: a daemon reads no file for weir run's policy"
	detach "$CGP/tiers" >/dev/null
	[ "$CODE" = 200 ] || t_why "detach: HTTP $CODE"
	rmdir "$CGP/tiers"
	t_end
}

test_dns_per_attachment() {
	local a b
	t_begin "each attachment's resolver answers its own policy's names only"
	a=$(in_cg "$CGP/c0" "${DIG[@]}" @127.0.0.53 a.test 2>&1)
	b=$(in_cg "$CGP/c0" "${DIG[@]}" @127.0.0.53 b.test 2>&1)
	[ "$a" = 192.0.2.10 ] || t_why "alpha: a.test gave '$a'"
	[ -z "$b" ] || t_why "alpha: b.test gave '$b', want REFUSED"
	a=$(in_cg "$CGP/c1" "${DIG[@]}" @127.0.0.53 a.test 2>&1)
	b=$(in_cg "$CGP/c1" "${DIG[@]}" @127.0.0.53 b.test 2>&1)
	[ "$b" = 192.0.2.11 ] || t_why "beta: b.test gave '$b'"
	[ -z "$a" ] || t_why "beta: a.test gave '$a', want REFUSED"
	# Two attachments' resolvers serving at once (a thread each) keep
	# their queries apart: 300 queries each, in parallel.
	for i in $(seq 300); do echo a.test; done >"$T/qa"
	for i in $(seq 300); do echo b.test; done >"$T/qb"
	in_cg "$CGP/c0" dig +time=2 +tries=1 +short @127.0.0.53 -f "$T/qa" >"$T/par0" 2>&1 &
	a=$!
	in_cg "$CGP/c1" dig +time=2 +tries=1 +short @127.0.0.53 -f "$T/qb" >"$T/par1" 2>&1 &
	b=$!
	wait "$a" "$b"
	[ "$(sort -u "$T/par0")" = 192.0.2.10 ] && [ "$(wc -l <"$T/par0")" = 300 ] ||
		t_why "alpha's 300 parallel answers: $(sort "$T/par0" | uniq -c | head -3 | tr '\n' ' ')"
	[ "$(sort -u "$T/par1")" = 192.0.2.11 ] && [ "$(wc -l <"$T/par1")" = 300 ] ||
		t_why "beta's 300 parallel answers: $(sort "$T/par1" | uniq -c | head -3 | tr '\n' ' ')"
	# What was learned is the attachment's own: beta learned b.test's
	# 192.0.2.11, which alpha does not allow.
	[ "$(probe "$CGP/c0" 192.0.2.11)" = EPERM ] || t_why "alpha reached beta's learned address"
	sleep 0.2
	x_json "$T/events.jsonl" 'map(select(.op == "dns" and .attachment == "job-0" and
		.verdict == "deny")) | length >= 1'
	t_end
}

test_detach() {
	local pins
	t_begin "detach: the cgroup is free again, its pins and state are gone"
	[ "$(probe "$CGP/c1" 192.0.2.10)" = EPERM ] || t_why "c1 was not enforced"
	detach "$CGP/c1" >/dev/null
	[ "$CODE" = 200 ] || t_why "detach: HTTP $CODE $(cat "$T/api.out")"
	[ "$(probe "$CGP/c1" 192.0.2.10)" = ok ] || t_why "still enforced after detach"
	pins=$(find "$PINS" -maxdepth 1 -name 'att-*' | wc -l)
	[ "$pins" = $((N - 1)) ] || t_why "$pins pin directories, want $((N - 1))"
	[ "$(find "$STATE" -name 'att-*.json' | wc -l)" = $((N - 1)) ] || t_why "state files left"
	detach "$CGP/c1" >/dev/null
	[ "$CODE" = 404 ] || t_why "detach again: HTTP $CODE, want 404"
	# A cgroup removed while attached: detached by the path it had,
	# relative to the mount.
	mkdir "$CGP/gone"
	attach "$CGP/gone" alpha >/dev/null
	[ "$CODE" = 201 ] || t_why "attach gone: HTTP $CODE"
	rmdir "$CGP/gone" || t_why "rmdir gone"
	detach "${CGP#"$CG2"/}/gone" >/dev/null
	[ "$CODE" = 200 ] || t_why "detach of a removed cgroup: HTTP $CODE $(cat "$T/api.out")"
	t_end
}

# A server inside an attached cgroup, `loopback: deny`: it answers the
# peer its inbound rules permit and never sees another (docs/policy.md,
# "Inbound"), TCP and UDP, and the refusal is an event of its attachment.
test_inbound_server() {
	local cg=$CGP/srv w i
	e2e_setup_lo 192.0.2.30/32 198.51.100.7/32 203.0.113.9/32
	policy serve <<-EOF
		version: 1
		loopback: deny
		inbound:
		  - ip: 198.51.100.7
		    ports: [8080]
	EOF
	mkdir "$cg" || e2e_die "mkdir $cg"
	attach "$cg" serve web >/dev/null
	[ "$CODE" = 201 ] || e2e_die "attach $cg: HTTP $CODE $(cat "$T/api.out")"
	: >"$T/srv.log"
	"${IN_CG[@]}" "$cg" "$SINK" --http --echo "$T/srv.log" 192.0.2.30:8080 >"$T/srv.ready" 2>&1 &
	w=$!
	for ((i = 0; i < 50; i++)); do
		grep -qs '^ready$' "$T/srv.ready" && break
		sleep 0.1
	done
	t_begin "inbound: a server in an attached cgroup answers the permitted peer, TCP and UDP"
	[ "$(curl -sS -m 2 --interface 198.51.100.7 http://192.0.2.30:8080/in 2>&1)" = ok ] ||
		t_why "curl from the permitted peer got no answer"
	[ "$("$NETPROBE" --from 198.51.100.7 udpr 192.0.2.30 8080 udp-in)" = ok ] ||
		t_why "no UDP answer for the permitted peer"
	t_end
	t_begin "inbound: another peer is refused, TCP and UDP, and the event names the attachment"
	curl -sS -m 2 --interface 203.0.113.9 http://192.0.2.30:8080/out >/dev/null 2>&1 &&
		t_why "curl from another peer got an answer"
	[ "$("$NETPROBE" --from 203.0.113.9 udpr 192.0.2.30 8080 udp-out)" = ETIMEDOUT ] ||
		t_why "a UDP answer for another peer"
	grep -qE '/out|udp-out' "$T/srv.log" && t_why "the server saw the refused peer"
	sleep 0.2 # the daemon's reader polls the ring buffer
	x_json "$T/events.jsonl" 'map(select(.op == "inbound" and .attachment == "web" and
		.src == "203.0.113.9" and .port == 8080 and .verdict == "deny")) | length == 2'
	t_end
	kill "$w" 2>/dev/null
	wait "$w" 2>/dev/null
	detach "$cg" >/dev/null
	rmdir "$cg" 2>/dev/null
}

test_kill9_and_adoption() {
	local got old
	t_begin "kill -9, restart: adopted with no unenforced moment"
	old=$DPID
	: >"$T/looper.out"
	# Denied for alpha: tried without pause through the kill and the restart.
	"${IN_CG[@]}" "$CGP/c0" sh -c 'while :; do "$0" tcp 192.0.2.99 80 weir-escape; done' \
		"$NETPROBE" >>"$T/looper.out" 2>&1 &
	LOOPER=$!
	disown "$LOOPER"
	sleep 0.3
	kill -KILL "$DPID"
	e2e_wait_gone "$DPID" 30 || t_why "the daemon did not die"
	sleep 0.3
	[ "$(probe "$CGP/c0" 192.0.2.12)" = ok ] || t_why "the policy left with the daemon"
	[ "$(probe "$CGP/c0" 192.0.2.11)" = EPERM ] || t_why "enforcement left with the daemon"
	start_daemon
	sleep 0.3
	kill "$LOOPER"
	e2e_wait_gone "$LOOPER" 30
	LOOPER=
	x_not_arrived "$LOG" 'tcp 192.0.2.99:80'
	grep -q EPERM "$T/looper.out" || t_why "the loop never ran: $(t_tail "$T/looper.out")"
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" ".[0].attachments | length == $((N - 1))"
	x_json "$T/list.json" '.[0].attachments | map(select(.label == "job-0")) |
		.[0] | .policy == "alpha" and .state == "ok"'
	got=$(in_cg "$CGP/c0" "${DIG[@]}" @127.0.0.53 a.test 2>&1)
	[ "$got" = 192.0.2.10 ] || t_why "DNS after adoption: '$got'"
	grep -q 'adopted' "$T/daemon.err" || t_why "the log does not say adopted"
	# The dead daemon's keys cgroup (its lock gone) is removed at start.
	[ -e "$CG2/weir/keys-$old" ] && t_why "weir/keys-$old is left after the restart"
	[ -d "$CG2/weir/keys-$DPID" ] || t_why "no weir/keys-$DPID after the restart"
	wait_probe "$CGP/c2" 192.0.2.12 ok
	wait_probe "$CGP/c3" 192.0.2.11 ok
	t_end
}

test_gone_cgroup_pins_are_removed() {
	local id
	t_begin "restart: pins of a cgroup that is gone are removed"
	id=$(stat -c %i "$CGP/c$((N - 1))")
	kill -KILL "$DPID"
	e2e_wait_gone "$DPID" 30
	rmdir "$CGP/c$((N - 1))" || t_why "rmdir"
	start_daemon
	[ -e "$PINS/att-$id" ] && t_why "$PINS/att-$id is still there"
	[ -e "$STATE/att-$id.json" ] && t_why "its state file is still there"
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" ".[0].attachments | length == $((N - 2))"
	t_end
}

# A squatter in the test's namespace that took the resolver's old port
# (both transports) while no daemon held it, and writes what it got.
squat() {
	/usr/bin/python3 - "$1" "$2" <<-'PY' &
	import socket, sys, threading
	port, out = int(sys.argv[1]), open(sys.argv[2], "a", buffering=1)
	u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	u.bind(("127.0.0.1", port))
	t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	t.bind(("127.0.0.1", port))
	t.listen(8)
	out.write("bound\n")
	def tcp():
	    while True:
	        c, _ = t.accept()
	        out.write("tcp %r\n" % c.recv(512))
	threading.Thread(target=tcp, daemon=True).start()
	while True:
	    out.write("udp %r\n" % u.recvfrom(512)[0])
	PY
	SQUAT=$!
	disown "$SQUAT"
}

test_taken_port_moves_at_adoption() {
	local old new got i
	t_begin "restart: a resolver port taken while the daemon was down moves; nothing reaches the taker"
	api GET /v1/attachments >"$T/list.json"
	old=$(jq -r '.attachments[] | select(.label == "job-0") | .dns_port' "$T/list.json")
	kill -KILL "$DPID"
	e2e_wait_gone "$DPID" 300 || t_why "the daemon did not die"
	: >"$T/squat.out"
	squat "$old" "$T/squat.out"
	for ((i = 0; i < 50; i++)); do
		grep -q bound "$T/squat.out" && break
		sleep 0.1
	done
	grep -q bound "$T/squat.out" || t_why "the squatter could not bind $old"
	start_daemon
	api GET /v1/attachments >"$T/list.json"
	new=$(jq -r '.attachments[] | select(.label == "job-0") | .dns_port' "$T/list.json")
	[ "$new" != "$old" ] && [ "$new" -gt 0 ] || t_why "DNS port $old -> '$new'"
	x_json "$T/list.json" '.[0].attachments | map(select(.label == "job-0")) | .[0].state == "ok"'
	grep -q "cannot have its old port $old" "$T/daemon.err" || t_why "the log does not say it moved"
	got=$(in_cg "$CGP/c0" "${DIG[@]}" @127.0.0.53 a.test 2>&1)
	[ "$got" = 192.0.2.10 ] || t_why "DNS after the move: '$got'"
	in_cg "$CGP/c0" "${DIG[@]}" +tcp @198.51.100.53 secret.exfil.test >/dev/null 2>&1
	kill "$SQUAT" 2>/dev/null
	e2e_wait_gone "$SQUAT" 30
	SQUAT=
	grep -v '^bound$' "$T/squat.out" | grep -q . &&
		t_why "the squatter got: $(t_tail "$T/squat.out")"
	t_end
}

test_sigterm_keeps_enforcement() {
	t_begin "SIGTERM: the daemon exits, attachments stay enforced"
	kill -TERM "$DPID"
	e2e_wait_gone "$DPID" 50 || t_why "the daemon did not exit on SIGTERM"
	[ "$(probe "$CGP/c0" 192.0.2.11)" = EPERM ] || t_why "not enforced after SIGTERM"
	[ -S "$SOCK" ] && t_why "the socket is left behind"
	[ -e "$CG2/weir/keys-$DPID" ] && t_why "weir/keys-$DPID is left behind"
	start_daemon
	api GET /v1/attachments >"$T/list.json"
	x_json "$T/list.json" ".[0].attachments | length == $((N - 2))"
	t_end
}

test_resolver_in_the_cgroups_netns() {
	local h inner a c
	t_begin "a cgroup in a network namespace of its own: its resolver lives there"
	mkdir "$CGP/ns"
	# A "container": its own lo, hosts, nameserver (dnsmasq on its own
	# 127.0.0.53) and server, none of them reachable from the test's netns.
	"${IN_CG[@]}" "$CGP/ns" unshare --net sh -c 'ip link set lo up &&
		ip addr add 192.0.2.20/32 dev lo && exec sleep 120' &
	h=$!
	disown "$h"
	E2E_PIDS+=("$h")
	for ((i = 0; i < 50; i++)); do
		[ "$(readlink "/proc/$h/ns/net")" != "$(readlink /proc/self/ns/net)" ] &&
			nsenter --net="/proc/$h/ns/net" ip -o addr show lo | grep -q 192.0.2.20 && break
		sleep 0.05
	done
	inner=(nsenter --net="/proc/$h/ns/net")
	"${inner[@]}" /usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null \
		--listen-address=127.0.0.53 --bind-interfaces --port=53 --no-resolv --no-hosts \
		--local=/test/ --user=root --group=root --pid-file="$T/inner-dnsmasq.pid" --log-queries \
		--host-record=c.test,192.0.2.20 --host-record=d.test,192.0.2.20 \
		--log-facility="$T/inner-dnsmasq.log" >/dev/null 2>&1 &
	E2E_PIDS+=("$!")
	: >"$T/inner-sink.log"
	"${inner[@]}" "$SINK" "$T/inner-sink.log" 192.0.2.20:80 >"$T/inner-sink.ready" 2>&1 &
	E2E_PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		grep -qs 'started, version' "$T/inner-dnsmasq.log" &&
			grep -qs '^ready$' "$T/inner-sink.ready" && break
		sleep 0.1
	done
	policy gamma <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: c.test
		    ports: [80]
	EOF
	attach "$CGP/ns" gamma ns >/dev/null
	[ "$CODE" = 201 ] || t_why "attach: HTTP $CODE $(cat "$T/api.out")"
	a=$(in_cg "$CGP/ns" "${inner[@]}" "${DIG[@]}" @127.0.0.53 c.test 2>&1)
	[ "$a" = 192.0.2.20 ] || t_why "c.test in the container gave '$a'"
	a=$(in_cg "$CGP/ns" "${inner[@]}" "${DIG[@]}" @127.0.0.53 d.test 2>&1)
	[ -z "$a" ] || t_why "d.test in the container gave '$a', want REFUSED"
	c=$(in_cg "$CGP/ns" "${inner[@]}" "$NETPROBE" tcp 192.0.2.20 80 weir-ns 2>/dev/null)
	[ "$c" = ok ] || t_why "connect to c.test's address: $c"
	x_arrived "$T/inner-sink.log" 'tcp 192.0.2.20:80 weir-ns'
	grep -q 'query\[A\] c.test' "$T/inner-dnsmasq.log" ||
		t_why "the container's own nameserver never saw c.test"
	grep -q 'c.test' "$T/dnsmasq.log" && t_why "the host's nameserver saw c.test"
	# Its nameservers are the ones it had when attached: a process inside
	# that rewrites resolv.conf does not choose whom weir asks, not after
	# a reload either.
	cp "$T/resolv.conf" "$T/resolv.conf.orig"
	printf 'nameserver 127.0.0.54\n' >"$T/resolv.conf"
	policy gamma <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: c.test
		    ports: [80, 8080]
	EOF
	for ((i = 0; i < 50; i++)); do
		api GET /v1/attachments | jq -e '.attachments[] | select(.label == "ns") |
			.generation == 2' >/dev/null && break
		sleep 0.1
	done
	a=$(in_cg "$CGP/ns" "${inner[@]}" "${DIG[@]}" @127.0.0.53 c.test 2>&1)
	[ "$a" = 192.0.2.20 ] || t_why "c.test after resolv.conf changed and a reload: '$a'"
	cat "$T/resolv.conf.orig" >"$T/resolv.conf"
	t_end
}

test_cleanup_leaves_a_live_daemon_alone() {
	t_begin "weir cleanup --pin-root: a live daemon's pins stay; a dead one's go"
	run_cmd "$WEIR" cleanup --pin-root "$PINS"
	x_rc 1
	x_err_has 'a weir daemon is running; left alone'
	[ "$(probe "$CGP/c0" 192.0.2.11)" = EPERM ] || t_why "c0 lost its enforcement"
	kill -KILL "$DPID"
	# Its exit closes ~800 links and maps: seconds on a loaded machine.
	e2e_wait_gone "$DPID" 300 || t_why "the killed daemon is still exiting after 30 s"
	DPID=
	run_cmd "$WEIR" cleanup --pin-root "$PINS"
	x_rc 0
	x_out "cleaned $((N - 1)) daemon attachments ($PINS)"
	[ -e "$PINS" ] && t_why "$PINS is still there: $(ls "$PINS")"
	[ "$(probe "$CGP/c0" 192.0.2.11)" = ok ] || t_why "c0 is still enforced"
	t_end
}

setup
test_keys_cgroup
test_fifty_cgroups_each_see_their_own
test_metrics
test_attach_is_idempotent_and_exclusive
test_hot_reload
test_broken_file_keeps_the_old_policy
test_include_reload
test_dns_per_attachment
test_detach
test_inbound_server
test_kill9_and_adoption
test_gone_cgroup_pins_are_removed
test_taken_port_moves_at_adoption
test_sigterm_keeps_enforcement
test_resolver_in_the_cgroups_netns
test_cleanup_leaves_a_live_daemon_alone
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
