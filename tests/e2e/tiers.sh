#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3, tiers (docs/policy.md, "Tiers"): a policy that includes a base
# tier (relative to itself), which includes a CI tier, and a preset; weir
# run with it against real servers and dnsmasq in private network and mount
# namespaces. The events, the denial lines and the summary name the file
# and line of the rule that decided; run-start hashes every file.
#
#   WEIR_BUILD=/abs/build bash tests/e2e/tiers.sh      (root)
#
# dnsmasq answers registry.npmjs.org with 192.0.2.20 (only inside the
# namespace: nothing leaves it), so preset:npm is tried for real.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=e2e-tiers
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
LOG=$T/sink.log
CURLS="curl -sS --noproxy '*' --max-time 5"

setup() {
	e2e_setup_lo 192.0.2.10/32 192.0.2.11/32 192.0.2.20/32 198.51.100.7/32
	e2e_start_sink sink --http "$LOG" 192.0.2.10:80 192.0.2.11:80 192.0.2.20:443 \
		192.0.2.20:80 198.51.100.7:80
	e2e_start_dns app.test,192.0.2.10 ci.test,192.0.2.11 registry.npmjs.org,192.0.2.20
	e2e_check_dns ci.test 192.0.2.11
	e2e_check_dns registry.npmjs.org 192.0.2.20
	mkdir -p "$T/app/tiers"
	cat >"$T/app/agent.yaml" <<-EOF
		version: 1
		name: app
		loopback: deny
		include:
		  - tiers/base.yaml
		  - preset:npm
		allow:
		  - domain: app.test
		    ports: [80]
	EOF
	cat >"$T/app/tiers/base.yaml" <<-EOF
		version: 1
		name: base
		loopback: deny
		include: [ci.yaml]
		deny:
		  - cidr: 198.51.100.0/24
	EOF
	cat >"$T/app/tiers/ci.yaml" <<-EOF
		version: 1
		# the CI tier
		allow:
		  - domain: ci.test
		    ports: [80]
		  - cidr: 198.51.100.0/24
	EOF
	POL=$T/app/agent.yaml
}

test_check() {
	t_begin "weir policy check: every rule by FILE:LINE, the included files listed"
	run_cmd "$WEIR" policy check "$POL"
	x_rc 0
	x_file_has "$OUT" "^include: $T/app/tiers/base\\.yaml, $T/app/tiers/ci\\.yaml, preset:npm\$"
	x_file_has "$OUT" "^$T/app/agent\\.yaml:8: allow\\[0\\]: domain app\\.test ports 80\$"
	x_file_has "$OUT" "^$T/app/tiers/ci\\.yaml:4: allow\\[1\\]: domain ci\\.test ports 80\$"
	x_file_has "$OUT" "^preset:npm:[0-9]+: allow\\[3\\]: domain registry\\.npmjs\\.org ports 443"
	x_file_has "$OUT" "^$T/app/tiers/base\\.yaml:6: deny\\[0\\]: cidr 198\\.51\\.100\\.0/24\$"
	t_end
}

test_include_tree() {
	t_begin "a rule of an included file allows; the event names its file:line"
	run_weir -p "$POL" -e "$T/ev1" -- sh -c "$CURLS -o /dev/null -w '%{http_code}\n' http://ci.test/t1"
	x_rc 0
	x_out 200
	x_arrived "$LOG" 'GET /t1 '
	x_json "$T/ev1" 'any(.[]; .op == "connect4" and .dst == "192.0.2.11" and .verdict == "allow"
		and .rule == "allow[1]" and .rule_origin == $o)' --arg o "$T/app/tiers/ci.yaml:4"
	x_json "$T/ev1" 'any(.[]; .op == "dns" and .name == "ci.test" and .rule_origin == $o)' \
		--arg o "$T/app/tiers/ci.yaml:4"
	t_end

	t_begin "a deny rule of the base tier wins over the CI tier's allow; stderr says where"
	run_weir -p "$POL" -e "$T/ev2" -- "$NETPROBE" tcp 198.51.100.7 80 t2
	x_rc 1
	x_out EPERM
	x_not_arrived "$LOG" ' t2$'
	x_err_has "^weir: denied tcp 198\\.51\\.100\\.7:80 \\(netprobe pid [0-9]+\\) \\[rule $T/app/tiers/base\\.yaml:6\\]\$"
	x_err_has "^weir: +denied +tcp +198\\.51\\.100\\.7:80 +x1 \\[rule $T/app/tiers/base\\.yaml:6\\]\$"
	x_json "$T/ev2" 'any(.[]; .verdict == "deny" and .rule == "deny[0]"
		and .rule_origin == $o)' --arg o "$T/app/tiers/base.yaml:6"
	t_end

	t_begin "run-start: policy_sha256 covers every file of the tree"
	want=$(cat "$POL" "$T/app/tiers/base.yaml" "$T/app/tiers/ci.yaml" <("$WEIR" policy show preset:npm) |
		sha256sum | cut -d' ' -f1)
	x_json "$T/ev1" 'any(.[]; .op == "run-start" and .policy_sha256 == $h)' --arg h "$want"
	t_end

	t_begin "an include that contradicts the top file's setting: FILE:LINE:COL, exit 125"
	sed -i 's/^loopback: deny$/loopback: allow/' "$T/app/tiers/base.yaml"
	run_weir -p "$POL" -- true
	x_rc 125
	x_err_has "tiers/base\\.yaml:3:11: loopback: allow conflicts with deny at .*/agent\\.yaml:3"
	sed -i 's/^loopback: allow$/loopback: deny/' "$T/app/tiers/base.yaml"
	t_end
}

test_preset() {
	t_begin "preset:npm allows registry.npmjs.org:443 through weir's resolver"
	run_weir -p "$POL" -e "$T/ev3" -- sh -c "$CURLS -o /dev/null -w '%{http_code}\n' http://registry.npmjs.org:443/t3"
	x_rc 0
	x_out 200
	x_arrived "$LOG" 'GET /t3 '
	x_json "$T/ev3" 'any(.[]; .op == "connect4" and .dst == "192.0.2.20" and .port == 443
		and .verdict == "allow" and .domain == "registry.npmjs.org"
		and (.rule_origin | test("^preset:npm:[0-9]+$")))'
	t_end

	t_begin "... and no other port of it (proto tcp, port 443 only)"
	run_weir -p "$POL" -e "$T/ev4" -- sh -c "$CURLS http://registry.npmjs.org:80/t4; echo rc=\$?"
	x_not_arrived "$LOG" 'GET /t4 '
	x_json "$T/ev4" 'any(.[]; .op == "connect4" and .dst == "192.0.2.20" and .port == 80
		and .verdict == "deny")'
	t_end
}

setup
test_check
test_include_tree
test_preset
e2e_finish
