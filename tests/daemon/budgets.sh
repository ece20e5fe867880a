#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 6, upload budgets in the daemon (docs/policy.md "Upload budgets"):
# two cgroups attached with the same policy have a budget each; a reload
# keeps what was used for the rule naming the same destination, wherever
# it moved in the file, and a raised limit lets traffic through again;
# weir ps and /metrics count the refusals.
#
#   WEIR_BUILD=/abs/build bash tests/daemon/budgets.sh      (root)
#
# The daemon has its own --socket, --state-dir, --policy-dir (in the test's
# temp dir) and --pin-root (/sys/fs/bpf/weir-btest-PID); the cgroups are
# below <cgroup2>/weir-btest-PID. Only those are ever removed.

E2E_NAME=daemon-budgets
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

# shellcheck source=tests/daemon/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
d_init btest
D_STOP=TERM
D_ARGS=(--events "$T/events.jsonl")

FP=$WEIR_BUILD/bin/flowpeer
[ -x "$FP" ] || e2e_die "$FP missing: make build/bin/flowpeer"
SRV=192.0.2.1
PORT=9001
BUDGET=1048576

# upload CGROUP N: flowpeer tcp inside CGROUP; the server's total after it.
upload() {
	local before=$(($(arrived)))
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGP/$1" "$FP" tcp "$SRV" "$PORT" "$2" \
		>>"$T/up.out" 2>&1
	e2e_sleep_ms 300 # a reset reaches the server
	echo $(($(arrived) - before))
}

arrived() {
	awk '{ n += $2 } END { print n + 0 }' "$T/srv.log"
}

# generation_is N: the policy "up" reloaded to generation N (5 s at most).
generation_is() {
	local i
	for ((i = 0; i < 50; i++)); do
		api GET /v1/attachments | jq -e --argjson g "$1" \
			'.attachments | map(select(.policy == "up")) | length == 2 and
			 all(.generation == $g and .state == "ok")' >/dev/null && return 0
		sleep 0.1
	done
	return 1
}

setup() {
	e2e_setup_lo "$SRV/32" 192.0.2.2/32
	mkdir -p "$PDIR" "$CGP/a" "$CGP/b" || e2e_die "cannot make $PDIR or $CGP"
	: >"$T/srv.log"
	"$FP" serve "$T/srv.log" "$SRV" "$PORT" 0 0 >"$T/srv.ready" 2>&1 &
	E2E_PIDS+=($!)
	policy up <<-EOF
		version: 1
		allow:
		  - ip: $SRV
		    ports: [$PORT]
		    upload_budget: 1MiB
	EOF
	start_daemon
	grep -qs '^ready$' "$T/srv.ready" || e2e_die "flowpeer server did not start"
	api POST /v1/attachments "{\"cgroup\":\"$CGP/a\",\"policy\":\"up\",\"name\":\"a\"}" >/dev/null
	api POST /v1/attachments "{\"cgroup\":\"$CGP/b\",\"policy\":\"up\",\"name\":\"b\"}" >/dev/null
	generation_is 1 || e2e_die "attach failed: $(t_tail "$T/daemon.err")"
}

test_reload_keeps_the_count() {
	local a1 a2 b1 a3
	t_begin "a reload that moves the rule keeps what was used; another attachment has its own"
	a1=$(upload a 700000)
	[ "$a1" = 700000 ] || t_why "first 700000 to a: $a1 arrived"
	policy up <<-EOF
		version: 1
		allow:
		  - ip: 192.0.2.2
		  - ip: $SRV
		    ports: [$PORT]
		    upload_budget: 1MiB
	EOF
	generation_is 2 || t_why "the edited policy was not reloaded"
	a2=$(upload a 700000)
	((a1 + a2 <= BUDGET)) || t_why "a got $a1 + $a2 bytes across the reload, budget $BUDGET"
	((a2 > 0)) || t_why "nothing of what was left of a's budget arrived"
	b1=$(upload b 700000)
	[ "$b1" = 700000 ] || t_why "b (its own budget) got $b1 of 700000"
	jq -e -s 'map(select(.reason == "upload-budget")) | length == 1 and
		.[0].rule == "allow[1]"' "$T/events.jsonl" >/dev/null ||
		t_why "not one upload-budget event: $(grep -c upload-budget "$T/events.jsonl")"
	t_end

	t_begin "weir ps and /metrics count what the budget refused"
	api GET /v1/attachments | jq -e '.attachments | map(select(.label == "a"))[0].budget_refused > 0
		and (map(select(.label == "b"))[0].budget_refused == 0)' >/dev/null ||
		t_why "ps: $(api GET /v1/attachments | jq -c '.attachments | map({label, budget_refused})')"
	api GET /metrics | grep -qE '^weir_budget_refused_total\{.*\} [1-9]' ||
		t_why "no weir_budget_refused_total above 0"
	t_end

	t_begin "a raised limit lets a's uploads through again, up to the new limit"
	policy up <<-EOF
		version: 1
		allow:
		  - ip: 192.0.2.2
		  - ip: $SRV
		    ports: [$PORT]
		    upload_budget: 2MiB
	EOF
	generation_is 3 || t_why "the raised limit was not reloaded"
	a3=$(upload a 700000)
	[ "$a3" = 700000 ] || t_why "a got $a3 of 700000 under the raised limit"
	t_end
}

setup
test_reload_keeps_the_count
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
