#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3, the policy lifecycle: audit a workload, weir policy suggest a
# policy from its events, enforce it (0 denials; what the workload never
# reached stays denied), and weir policy verify in a CI-like script. Real
# weir runs, real servers and a real dnsmasq in private network and mount
# namespaces.
#
#   WEIR_BUILD=/abs/build bash tests/e2e/lifecycle.sh      (root)
#
# Hosts on lo: api.app.test 192.0.2.20 (HTTP 80), a/b/c.cdn.test
# 192.0.2.21-.23 (HTTP 80: three siblings, one wildcard), never.test
# 192.0.2.24 (never reached in the audit run), 198.51.100.20 (TCP 8080,
# reached by address), 203.0.113.20 (UDP 9000, by address).

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=e2e-lifecycle
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
LOG=$T/sink.log
CURLS="curl -sS --noproxy '*' --max-time 5 -o /dev/null"

setup() {
	e2e_setup_lo 192.0.2.20/32 192.0.2.21/32 192.0.2.22/32 192.0.2.23/32 192.0.2.24/32 \
		198.51.100.20/32 203.0.113.20/32
	e2e_start_sink sink --http "$LOG" 192.0.2.20:80 192.0.2.21:80 192.0.2.22:80 \
		192.0.2.23:80 192.0.2.24:80 198.51.100.20:8080 203.0.113.20:9000
	e2e_start_dns api.app.test,192.0.2.20 a.cdn.test,192.0.2.21 b.cdn.test,192.0.2.22 \
		c.cdn.test,192.0.2.23 never.test,192.0.2.24
	e2e_check_dns api.app.test 192.0.2.20
	# The workload: names through weir's resolver, two destinations by
	# address, and a cloud metadata endpoint (denied in audit mode too; no
	# route leaves this namespace anyway).
	cat >"$T/workload.sh" <<-EOF
		set -e
		$CURLS http://api.app.test/w1
		for h in a b c; do $CURLS http://\$h.cdn.test/w2; done
		$NETPROBE tcp 198.51.100.20 8080 w3
		$NETPROBE udp 203.0.113.20 9000 w4
		$NETPROBE tcp 169.254.169.254 80 w5 || true
	EOF
}

# x_end_counts FILE DENY DNSDENY: the run-end record's denial counts.
x_end_counts() {
	x_json "$1" "any(.[]; .op == \"run-end\" and .decisions.deny == $2 and
		.decisions[\"would-deny\"] == 0 and .dns.deny == $3)"
}

test_audit_suggest_enforce() {
	t_begin "audit run of the workload: every destination reached, events recorded"
	run_weir --audit -e "$T/audit.jsonl" -- sh "$T/workload.sh"
	x_rc 0
	x_arrived "$LOG" 'GET /w1 '
	x_arrived "$LOG" ' w3$'
	x_arrived "$LOG" ' w4$'
	x_json "$T/audit.jsonl" 'any(.[]; .op == "connect4" and .domain == "b.cdn.test")'
	t_end

	t_begin "weir policy suggest: names, a wildcard for the siblings, addresses only when reached by address"
	run_cmd "$WEIR" policy suggest "$T/audit.jsonl"
	cp "$OUT" "$T/suggested.yaml"
	cp "$ERR" "$T/suggest.err"
	x_rc 0
	x_file_has "$T/suggested.yaml" '^  - domain: "api\.app\.test"$'
	x_file_has "$T/suggested.yaml" '^  - domain: "\*\.cdn\.test"$'
	x_file_has "$T/suggested.yaml" '^  - ip: "198\.51\.100\.20"$'
	x_file_has "$T/suggested.yaml" '^  - ip: "203\.0\.113\.20"$'
	x_file_has "$T/suggested.yaml" '^    ports: \[8080\]$'
	x_file_has "$T/suggested.yaml" '^    proto: udp$'
	x_file_has "$T/suggested.yaml" '# [0-9]+ connections? by curl; seen: a\.cdn\.test, b\.cdn\.test, c\.cdn\.test'
	! grep -qE '192\.0\.2\.2[0-3]|169\.254|never' "$T/suggested.yaml" ||
		t_why "an address of a name, the metadata endpoint or never.test was suggested"
	x_err_has 'left out 169\.254\.169\.254: a cloud metadata endpoint'
	run_cmd "$WEIR" policy check "$T/suggested.yaml"
	x_rc 0
	t_end

	t_begin "the workload under the suggested policy (enforce): 0 denials"
	: >"$T/enforce.jsonl"
	run_weir -p "$T/suggested.yaml" -e "$T/enforce.jsonl" -- sh -c \
		"$(grep -v 169.254 "$T/workload.sh")"
	x_rc 0
	x_end_counts "$T/enforce.jsonl" 0 0
	t_end

	t_begin "a destination the audit run never reached stays denied"
	run_weir -p "$T/suggested.yaml" -e "$T/never.jsonl" -- sh -c \
		"$CURLS http://never.test/w6; $NETPROBE tcp 192.0.2.24 80 w7"
	[ "$RC" != 0 ] || t_why "exit status 0"
	x_not_arrived "$LOG" 'GET /w6 | w7$'
	x_json "$T/never.jsonl" 'any(.[]; .op == "dns" and .name == "never.test" and .verdict == "deny")'
	x_json "$T/never.jsonl" 'any(.[]; .op == "connect4" and .dst == "192.0.2.24" and .verdict == "deny")'
	t_end
}

# What a CI job does: the production policy must cover what the
# integration's audit run reached.
test_verify_ci() {
	local prod
	prod=$(e2e_policy prod <<-EOF
		version: 1
		allow:
		  - domain: api.app.test
		    ports: [80]
		    proto: tcp
		  - domain: "*.cdn.test"
		    ports: [80]
		    proto: tcp
		  - ip: 198.51.100.20
		    ports: [8080]
	EOF
	)
	cat >"$T/ci.sh" <<-'EOF'
		if ! "$WEIR" policy verify --policy "$1" "$2" >"$3"; then
			echo "CI: the policy lacks a host this integration reaches" >&2
			exit 1
		fi
	EOF
	t_begin "verify (CI): a host the production policy lacks fails the job, named"
	run_cmd env WEIR="$WEIR" bash "$T/ci.sh" "$prod" "$T/enforce.jsonl" "$T/verify.out"
	x_rc 1
	x_file_has "$T/verify.out" '^would deny udp 203\.0\.113\.20:9000: 1 decision by netprobe; no-matching-rule, default$'
	x_file_has "$T/verify.out" '^1 destination denied'
	t_end

	t_begin "verify (CI): passes once the host is added"
	printf '  - ip: 203.0.113.20\n    ports: [9000]\n    proto: udp\n' >>"$prod"
	run_cmd env WEIR="$WEIR" bash "$T/ci.sh" "$prod" "$T/enforce.jsonl" "$T/verify.out"
	x_rc 0
	x_file_has "$T/verify.out" '^0 destinations denied'
	t_end

	t_begin "verify: the suggested policy covers the audit run but its metadata endpoint"
	run_cmd "$WEIR" policy verify --policy "$T/suggested.yaml" "$T/audit.jsonl" "$T/enforce.jsonl"
	x_rc 1
	x_file_has "$OUT" '^would deny tcp 169\.254\.169\.254:80: 1 decision by netprobe; metadata-endpoint, metadata$'
	x_file_has "$OUT" '^1 destination denied: 1 of [0-9]+ connection decisions, 0 of [0-9]+ DNS queries$'
	[ "$(wc -l <"$OUT")" = 2 ] || t_why "more than one destination denied: $(t_tail "$OUT")"
	t_end
}

# Tiers: a stable base, and suggest --base prints the application tier.
test_suggest_base() {
	e2e_policy base >/dev/null <<-EOF
		version: 1
		allow:
		  - domain: api.app.test
		    ports: [80]
		    proto: tcp
		  - ip: 198.51.100.20
		    ports: [8080]
		    proto: tcp
	EOF
	t_begin "suggest --base: include: of the base, and only what the base lacks"
	run_cmd sh -c 'cd "$1" && "$2" policy suggest --base base.yaml audit.jsonl >app.yaml' \
		sh "$T" "$WEIR"
	x_rc 0
	x_file_has "$T/app.yaml" '^include: \["base\.yaml"\]$'
	x_file_has "$T/app.yaml" '^  - domain: "\*\.cdn\.test"$'
	x_file_has "$T/app.yaml" '^  - ip: "203\.0\.113\.20"$'
	! grep -qE 'api\.app\.test|198\.51\.100\.20' "$T/app.yaml" ||
		t_why "a destination the base allows was suggested: $(grep -E 'api|198' "$T/app.yaml")"
	x_err_has 'decisions the base policy allows already'
	run_cmd "$WEIR" policy check "$T/app.yaml"
	x_rc 0
	t_end

	t_begin "the workload under base + application tier (enforce): 0 denials"
	run_weir -p "$T/app.yaml" -e "$T/tiers.jsonl" -- sh -c "$(grep -v 169.254 "$T/workload.sh")"
	x_rc 0
	x_end_counts "$T/tiers.jsonl" 0 0
	t_end
}

setup
test_audit_suggest_enforce
test_verify_ci
test_suggest_base
e2e_finish
