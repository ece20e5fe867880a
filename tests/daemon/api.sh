#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 6, weir daemon's API from the outside: a real daemon on a socket of
# the test's own, driven with curl --unix-socket and the weir clients
# (attach, detach, ps, reload), in private network and mount namespaces:
# every endpoint and error status, who is refused (nobody; a root process
# inside an enforced cgroup), the metrics parsed line by line (on the socket
# and on --metrics), sd_notify READY=1/STOPPING=1, the clients' errors with
# no daemon and as nobody, a second daemon on a live socket.
#
#   WEIR_BUILD=/abs/build bash tests/daemon/api.sh      (root)
#
# The daemon has its own --socket, --state-dir, --policy-dir (in the test's
# temp dir) and --pin-root (/sys/fs/bpf/weir-atest-PID); the cgroups are
# below <cgroup2>/weir-atest-PID. Only those are ever removed.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=daemon-api
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

# shellcheck source=tests/daemon/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
d_init atest
METRICS=127.0.0.1:9477 # in this test's own network namespace
NOTIFY_PID=

d_on_cleanup() {
	[ -n "$NOTIFY_PID" ] && kill "$NOTIFY_PID" 2>/dev/null
}

# api METHOD PATH [CURL ARGS...]: the reply body in $BODY, the status in $CODE.
CODE= BODY=
api() {
	local method=$1 path=$2
	shift 2
	CODE=$(curl -sS --max-time 20 --unix-socket "$SOCK" -o "$T/api.out" -w '%{http_code}' \
		-X "$method" "$@" "http://localhost$path" 2>"$T/api.err") || CODE=000
	BODY=$(cat "$T/api.out" 2>/dev/null)
}

# x_api WANT_CODE JQ_FILTER: the last answer had that status, and FILTER holds on it.
x_api() {
	[ "$CODE" = "$1" ] || t_why "HTTP $CODE, want $1: $BODY $(t_tail "$T/api.err")"
	[ -z "${2:-}" ] || jq -e "$2" <<<"$BODY" >/dev/null 2>&1 || t_why "not ($2) in: $BODY"
}

# A UNIX datagram socket that writes each datagram it gets on a line: systemd's
# NOTIFY_SOCKET, for the daemon.
start_notify_listener() {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(s.recv(4096).decode(), flush=True)
' "$T/notify.sock" >"$T/notify.log" 2>&1 &
	NOTIFY_PID=$!
	for ((i = 0; i < 50; i++)); do
		grep -qs listening "$T/notify.log" && return 0
		sleep 0.1
	done
	e2e_die "the notify listener did not start: $(cat "$T/notify.log")"
}

# A POST of BODY to PATH with curl, the reply's body then its status on the
# last line of stdout (for run_cmd, as another user or inside a cgroup).
CURL_POST=(curl -sS --max-time 5 -w '\n%{http_code}' -X POST)

setup() {
	e2e_setup_lo 192.0.2.10/32 192.0.2.11/32
	e2e_start_sink sink "$T/sink.log" 192.0.2.10:80 192.0.2.11:80
	e2e_start_dns a.test,192.0.2.10
	mkdir -p "$PDIR" "$CGP/a" "$CGP/b" || e2e_die "cannot make $PDIR or $CGP"
	cat >"$PDIR/alpha.yaml" <<-EOF
		version: 1
		name: alpha
		loopback: deny
		allow:
		  - ip: 192.0.2.10
		    ports: [80]
		  - domain: a.test
		    ports: [80]
	EOF
	start_notify_listener
	NOTIFY_SOCKET=$T/notify.sock start_daemon --metrics "$METRICS"
}

test_ready_notified() {
	t_begin "sd_notify: READY=1 to \$NOTIFY_SOCKET once the socket answers"
	grep -qx 'READY=1' "$T/notify.log" || t_why "notify.log: $(t_tail "$T/notify.log")"
	t_end
}

test_socket_mode() {
	local st
	t_begin "the socket is root's, mode 0600"
	st=$(stat -c '%F %U:%G %a' "$SOCK")
	[ "$st" = "socket root:root 600" ] || t_why "$SOCK: $st"
	t_end
}

test_endpoints() {
	t_begin "curl --unix-socket: every endpoint answers as docs/daemon.md says"
	api GET /v1/health
	x_api 200 ".pid == $DPID and .attachments == 0 and (.version | length > 0) and
		.events_lost == 0"
	api POST /v1/attachments -d "{\"cgroup\":\"$CGP/a\",\"policy\":\"alpha\",\"name\":\"job-a\"}"
	x_api 201 ".cgroup == \"$CGP/a\" and .label == \"job-a\" and .policy == \"alpha\" and
		.generation == 1 and .state == \"ok\" and .cgroup_id > 0 and .dns_port > 0 and
		.allowed == 0 and .denied == 0 and .would_deny == 0"
	api POST /v1/attachments -d "{\"cgroup\":\"$CGP/a\",\"policy\":\"alpha\",\"name\":\"job-a\"}"
	x_api 200 '.label == "job-a"'
	api GET /v1/attachments
	x_api 200 '(.attachments | length == 1 and .[0].label == "job-a") and .events_lost == 0'
	api POST /v1/reload
	x_api 200 '.policies | map(select(.name == "alpha" and .state == "ok")) | length == 1'
	api GET /metrics
	x_api 200
	grep -q '^weir_attachments 1$' "$T/api.out" || t_why "/metrics lacks weir_attachments 1"
	api HEAD /v1/health -I
	x_api 200
	t_end

	t_begin "curl --unix-socket: 400, 404, 405, 409, 413 with a message"
	api POST /v1/attachments -d '{"cgroup":'
	x_api 400 '.error | test("bad JSON")'
	api POST /v1/attachments -d "{\"cgroup\":\"$CGP/a\",\"policy\":\"alpha\",\"lable\":\"x\"}"
	x_api 400 '.error | test("unknown field .lable.")'
	api POST /v1/attachments -d "{\"cgroup\":\"$CGP/none\",\"policy\":\"alpha\"}"
	x_api 404 '.error | length > 0'
	api POST /v1/attachments -d "{\"cgroup\":\"$CGP/a\",\"policy\":\"$PDIR/alpha.yaml\"}"
	x_api 409 '.error | length > 0'
	api POST /v1/detach -d "{\"cgroup\":\"$CGP/b\"}"
	x_api 404 '.error | length > 0'
	api GET /v1/nothing
	x_api 404 '.error | test("no such endpoint")'
	api DELETE /v1/attachments
	x_api 405 '.error | test("method not allowed")'
	head -c $((1024 * 1024 + 1)) /dev/zero >"$T/big"
	api POST /v1/detach --data-binary "@$T/big"
	x_api 413 '.error | test("larger than 1048576 bytes")'
	# a new attachment's may hold a policy's text (weir run's), up to 2 x 256 MiB + 1 MiB
	api POST /v1/attachments --data-binary "@$T/big"
	x_api 400 '.error | test("bad JSON")'
	api GET /v1/health
	x_api 200 # still serving
	t_end
}

test_nobody_refused() {
	t_begin "nobody: the 0600 socket refuses the connect; opened up, the API says 403"
	run_cmd setpriv --reuid=65534 --regid=65534 --clear-groups \
		curl -sS --max-time 5 --unix-socket "$SOCK" http://localhost/v1/health
	[ "$RC" = 7 ] || t_why "curl as nobody: exit $RC, want 7 (couldn't connect)"
	run_cmd setpriv --reuid=65534 --regid=65534 --clear-groups "$WEIR" ps --socket "$SOCK"
	x_rc 1
	x_err_has "^weir: $SOCK: permission denied: the daemon's socket is root's; run this as root"
	# The daemon checks again: a socket made reachable is not an open door.
	chmod 0666 "$SOCK"
	run_cmd setpriv --reuid=65534 --regid=65534 --clear-groups "${CURL_POST[@]}" \
		--unix-socket "$SOCK" -d "{\"cgroup\":\"$CGP/a\"}" http://localhost/v1/detach
	[ "$(tail -1 "$OUT")" = 403 ] || t_why "as nobody: HTTP $(tail -1 "$OUT"), want 403"
	grep -q 'only root may use weir.s API (the caller is uid 65534)' "$OUT" ||
		t_why "403 body: $(cat "$OUT")"
	chmod 0600 "$SOCK"
	api GET /v1/attachments
	x_api 200 '.attachments | length == 1' # the detach did not happen
	t_end
}

test_enforced_peer_refused() {
	t_begin "a root process inside an enforced cgroup is refused (403), for every endpoint"
	run_cmd "${IN_CG[@]}" "$CGP/a" "${CURL_POST[@]}" --unix-socket "$SOCK" \
		-d "{\"cgroup\":\"$CGP/a\"}" http://localhost/v1/detach
	[ "$(tail -1 "$OUT")" = 403 ] || t_why "from inside: HTTP $(tail -1 "$OUT"), want 403"
	grep -q 'is inside a cgroup weir enforces' "$OUT" || t_why "403 body: $(cat "$OUT")"
	# below the attached cgroup is inside it too
	mkdir -p "$CGP/a/sub"
	run_cmd "${IN_CG[@]}" "$CGP/a/sub" "${CURL_POST[@]}" --unix-socket "$SOCK" \
		-d "{\"cgroup\":\"$CGP/a\"}" http://localhost/v1/detach
	[ "$(tail -1 "$OUT")" = 403 ] || t_why "from a child cgroup: HTTP $(tail -1 "$OUT"), want 403"
	run_cmd "${IN_CG[@]}" "$CGP/a" "$WEIR" ps --socket "$SOCK"
	x_rc 1
	x_err_has '^weir: ps: refused: the caller \(pid [0-9]+\) is inside a cgroup weir enforces'
	api GET /v1/attachments
	x_api 200 '.attachments | length == 1 and .[0].label == "job-a"'
	t_end
}

# Every line of FILE is Prometheus text: promtool when there is one, else
# the exposition format's grammar; histograms cumulative, +Inf == _count.
x_prometheus() {
	local file=$1 bad
	if command -v promtool >/dev/null; then
		promtool check metrics <"$file" >"$T/promtool.out" 2>&1 ||
			t_why "promtool check metrics: $(t_tail "$T/promtool.out")"
	fi
	bad=$(python3 - "$file" <<-'PY'
		import re, sys
		name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
		label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
		sample = re.compile(r'^(%s)(\{%s(?:,%s)*\})? (-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|[-+]Inf|NaN)$' % (name, label, label))
		meta = re.compile(r'^# (?:HELP %s .*|TYPE (%s) (?:counter|gauge|histogram|summary|untyped))$' % (name, name))
		text = open(sys.argv[1]).read()
		if not text.endswith('\n'):
		    print('no final newline'); sys.exit()
		buckets, counts, types = {}, {}, {}
		for line in text.splitlines():
		    if line.startswith('#'):
		        m = meta.match(line)
		        if not m:
		            print('bad: ' + line); sys.exit()
		        if m.group(1):
		            if m.group(1) in types:
		                print('TYPE twice: ' + line); sys.exit()
		            types[m.group(1)] = True
		        continue
		    m = sample.match(line)
		    if not m:
		        print('bad: ' + line); sys.exit()
		    if m.group(1).endswith('_bucket'):
		        buckets.setdefault(m.group(1)[:-7], []).append(float(m.group(3)))
		    if m.group(1).endswith('_count'):
		        counts[m.group(1)[:-6]] = float(m.group(3))
		for h, b in buckets.items():
		    if b != sorted(b) or b[-1] != counts.get(h):
		        print('histogram %s: buckets %s, count %s' % (h, b, counts.get(h)))
		PY
	)
	[ -z "$bad" ] || t_why "not Prometheus text: $bad"
}

test_metrics() {
	local i
	t_begin "metrics: every line Prometheus text, on the socket and on --metrics; denials counted"
	# one denial and one allowed connect in job-a
	in_cg "$CGP/a" "$NETPROBE" tcp 192.0.2.11 80 atest-deny >/dev/null 2>&1
	in_cg "$CGP/a" "$NETPROBE" tcp 192.0.2.10 80 atest-allow >/dev/null 2>&1
	x_arrived "$T/sink.log" '^tcp [^ ]+ atest-allow$'
	x_not_arrived "$T/sink.log" 'atest-deny' 
	for ((i = 0; i < 20; i++)); do
		api GET /metrics
		grep -qE '^weir_decisions_total\{.*unit="job-a".*\} [1-9]' "$T/api.out" && break
		sleep 0.1
	done
	x_api 200
	cp "$T/api.out" "$T/metrics.sock"
	x_prometheus "$T/metrics.sock"
	grep -qE '^weir_decisions_total\{(.*,)?verdict="deny"(,.*)?\} [1-9]' "$T/metrics.sock" &&
		grep -qE '^weir_decisions_total\{.*unit="job-a".*\} [1-9]' "$T/metrics.sock" ||
		t_why "no deny counted for job-a: $(grep weir_decisions_total "$T/metrics.sock" | head -3)"
	grep -qE '^weir_policy_generation\{policy="alpha"\} 1$' "$T/metrics.sock" ||
		t_why "no weir_policy_generation{policy=\"alpha\"} 1"
	grep -qE '^weir_api_requests_total\{code="200"\} [1-9]' "$T/metrics.sock" ||
		t_why "no weir_api_requests_total{code=\"200\"}"
	# every metric docs/daemon.md lists is there, with its type
	while read -r m type; do
		grep -qx "# TYPE $m $type" "$T/metrics.sock" || t_why "no '# TYPE $m $type' in /metrics"
	done < <(sed -n 's/^| `\(weir_[a-z_]*\)`\(, `\(weir_[a-z_]*\)`\)\? | \([a-z]*\) |.*/\1 \4\n\3 \4/p' \
		"$REPO_ROOT/docs/daemon.md" | grep '^weir_')
	[ "$(sed -n '/^| `weir_/p' "$REPO_ROOT/docs/daemon.md" | wc -l)" -ge 10 ] ||
		t_why "docs/daemon.md: the metrics table was not found"
	curl -sS --max-time 5 -o "$T/metrics.tcp" -D "$T/metrics.hdr" "http://$METRICS/metrics" ||
		t_why "GET http://$METRICS/metrics failed"
	grep -qi '^content-type: text/plain; version=0.0.4' "$T/metrics.hdr" ||
		t_why "content type: $(grep -i content-type "$T/metrics.hdr")"
	x_prometheus "$T/metrics.tcp"
	grep -q '^weir_attachments 1$' "$T/metrics.tcp" || t_why "--metrics lacks weir_attachments 1"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/v1/health")" = 404 ] ||
		t_why "--metrics serves more than /metrics"
	t_end
}

test_clients() {
	t_begin "weir attach, ps, ps --json | jq, reload, detach: through --socket and WEIR_SOCKET"
	# CGROUP relative to the cgroup2 mount, the policy by NAME
	run_cmd "$WEIR" attach --socket "$SOCK" --policy alpha --name job-b "${CGP#"$CG2"/}/b"
	x_rc 0
	x_out "attached $CGP/b: policy alpha (generation 1), label job-b, dns port $(
		jq -r ".attachments[] | select(.label == \"job-b\") | .dns_port" < <(
			curl -s --unix-socket "$SOCK" http://localhost/v1/attachments)), ok"
	run_cmd env WEIR_SOCKET="$SOCK" "$WEIR" ps --json
	x_rc 0
	jq -e '.attachments | length == 2 and (map(.label) | sort == ["job-a", "job-b"]) and
		all(has("cgroup") and has("cgroup_id") and has("policy") and has("generation") and
		has("allowed") and has("denied") and has("would_deny") and has("dns_port") and
		has("state"))' "$OUT" >/dev/null || t_why "ps --json: $(cat "$OUT")"
	run_cmd env WEIR_SOCKET="$SOCK" "$WEIR" ps
	x_rc 0
	head -1 "$OUT" | grep -qE '^CGROUP +LABEL +POLICY +GEN +ALLOWED +DENIED +DNS +STATE$' ||
		t_why "ps header: $(head -1 "$OUT")"
	[ "$(grep -cE ' alpha +1 +[0-9]+ +[0-9]+ +[0-9]+ +ok$' "$OUT")" = 2 ] ||
		t_why "ps lines: $(t_tail "$OUT")"
	grep -qE "^$CGP/a +job-a +alpha +1 +[0-9]+ +[1-9][0-9]* " "$OUT" ||
		t_why "ps: job-a's denial not counted: $(grep job-a "$OUT")"
	run_cmd "$WEIR" reload --socket "$SOCK"
	x_rc 0
	grep -qx "alpha generation 1: ok" "$OUT" || t_why "reload: $(t_tail "$OUT")"
	grep -v ': ok$' "$OUT" && t_why "reload: not all ok: $(t_tail "$OUT")"
	run_cmd "$WEIR" detach --socket "$SOCK" "${CGP#"$CG2"/}/b"
	x_rc 0
	x_out "detached ${CGP#"$CG2"/}/b"
	run_cmd "$WEIR" detach --socket "$SOCK" "${CGP#"$CG2"/}/b"
	x_rc 1
	x_err_has '^weir: detach: .* is not attached'
	t_end

	t_begin "weir attach --policy FILE: a relative path is sent absolute; errors said, exit 1"
	mkdir -p "$T/here" && cp "$PDIR/alpha.yaml" "$T/here/mine.yaml"
	run_cmd sh -c 'cd "$1/here" && exec "$2" attach --socket "$3" --policy ./mine.yaml "$4"' \
		sh "$T" "$WEIR" "$SOCK" "$CGP/b"
	x_rc 0
	x_err_lacks .
	grep -q "^attached $CGP/b: policy .*mine" "$OUT" || t_why "stdout: $(cat "$OUT")"
	run_cmd "$WEIR" detach --socket "$SOCK" "$CGP/b"
	x_rc 0
	run_cmd "$WEIR" attach --socket "$SOCK" --policy nosuch "$CGP/b"
	x_rc 1
	x_err_has '^weir: attach: .*nosuch'
	run_cmd "$WEIR" attach --socket "$SOCK" "$CGP/b"
	x_rc 2
	x_err_has '^weir: attach: --policy is required'
	t_end
}

test_no_daemon() {
	t_begin "no daemon: the clients say so and how to start one, exit 1"
	run_cmd "$WEIR" ps --socket "$T/none.sock"
	x_rc 1
	x_err_has "^weir: no daemon answers on $T/none.sock \(start one: sudo weir daemon --socket $T/none.sock\)$"
	run_cmd env WEIR_SOCKET="$T/none.sock" "$WEIR" attach --policy alpha "$CGP/b"
	x_rc 1
	x_err_has "^weir: no daemon answers on $T/none.sock "
	t_end
}

test_second_daemon_refused() {
	t_begin "a second daemon on a live daemon's socket exits; the first keeps answering"
	run_cmd "$WEIR" daemon --socket "$SOCK" --policy-dir "$PDIR" --state-dir "$T/state2" \
		--pin-root "$PINS-2"
	[ "$RC" != 0 ] && [ "$RC" != timeout ] || t_why "exit status $RC"
	x_err_has "a daemon already answers on $SOCK"
	[ -e "$PINS-2" ] && rm -rf "$PINS-2"
	api GET /v1/health
	x_api 200 ".pid == $DPID"
	t_end
}

test_stopping_notified() {
	t_begin "SIGTERM: STOPPING=1, the socket removed"
	kill -TERM "$DPID"
	e2e_wait_gone "$DPID" 50 || t_why "the daemon did not exit"
	DPID=
	grep -qx 'STOPPING=1' "$T/notify.log" || t_why "notify.log: $(t_tail "$T/notify.log")"
	[ -e "$SOCK" ] && t_why "$SOCK is still there"
	t_end
}

# The capabilities deploy/systemd/weir.service leaves the daemon, as setpriv
# arguments: "+bpf,+perfmon,...".
unit_caps() {
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$REPO_ROOT/deploy/systemd/weir.service" |
		sed -n 's/^CapabilityBoundingSet=//p' | tr -s ' \t' '\n' | grep . |
		sed 's/^CAP_/+/' | tr 'A-Z' 'a-z' | paste -sd,
}

test_unit_capabilities() {
	local caps port pid
	t_begin "under weir.service's capability bounding set and no_new_privs: attach, enforce, resolve"
	caps=$(unit_caps)
	[[ $caps == *+bpf* && $caps == *+sys_admin* ]] || t_why "no capabilities parsed: '$caps'"
	SOCK=$T/cap.sock
	setpriv --bounding-set="-all,$caps" --inh-caps=-all --no-new-privs -- \
		"$WEIR" daemon --socket "$SOCK" --policy-dir "$PDIR" --state-dir "$T/state-cap" \
		--pin-root "$PINS-cap" --detach-on-exit >>"$T/daemon.out" 2>>"$T/daemon-cap.err" &
	DPID=$!
	for ((i = 0; i < 200; i++)); do
		curl -sf --max-time 1 --unix-socket "$SOCK" http://localhost/v1/health >/dev/null 2>&1 &&
			break
		e2e_dead "$DPID" && break
		sleep 0.05
	done
	grep -q "^CapBnd:.*$(printf '%016x' 0)" "/proc/$DPID/status" 2>/dev/null &&
		t_why "the bounding set is empty"
	api POST /v1/attachments -d "{\"cgroup\":\"$CGP/b\",\"policy\":\"alpha\"}"
	x_api 201 '.state == "ok"'
	port=$(jq -r .dns_port <<<"$BODY")
	[ "$(in_cg "$CGP/b" "$NETPROBE" tcp 192.0.2.10 80 cap-allow 2>/dev/null)" = ok ] ||
		t_why "allowed connect failed"
	[ "$(in_cg "$CGP/b" "$NETPROBE" tcp 192.0.2.11 80 cap-deny 2>/dev/null)" = EPERM ] ||
		t_why "denied connect not EPERM"
	# port 53, whichever server: redirected to the attachment's resolver
	[ "$(in_cg "$CGP/b" dig +time=2 +tries=1 +short @127.0.0.53 a.test 2>&1)" = 192.0.2.10 ] ||
		t_why "the resolver (port $port) did not answer a.test"
	[ -z "$(in_cg "$CGP/b" dig +time=2 +tries=1 +short @127.0.0.53 b.test 2>&1)" ] ||
		t_why "the resolver answered b.test"
	pid=$DPID
	kill -TERM "$pid"
	e2e_wait_gone "$pid" 50 || t_why "the daemon did not exit"
	DPID=
	[ "$(in_cg "$CGP/b" "$NETPROBE" tcp 192.0.2.11 80 cap-after 2>/dev/null)" = ok ] ||
		t_why "--detach-on-exit: still enforced"
	grep -qiE 'cannot|fail|error|denied|not permitted' "$T/daemon-cap.err" &&
		t_why "daemon: $(t_tail "$T/daemon-cap.err")"
	[ -d "$PINS-cap" ] && rm -rf "$PINS-cap"
	t_end
}

setup
test_ready_notified
test_socket_mode
test_endpoints
test_nobody_refused
test_enforced_peer_refused
test_metrics
test_clients
test_no_daemon
test_second_daemon_refused
test_stopping_notified
test_unit_capabilities
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
