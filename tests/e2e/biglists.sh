#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3, big lists (docs/policy.md, "Big lists"): `cidr_list: FILE` with a
# million lines through `weir run`, in allow and deny rules; an address in
# the list is handled as the rule says, one outside is not; the rule's
# ports apply to every entry; a bad line stops weir run with FILE:LINE.
# And the same million inline in the YAML (`- ip:` lines, read without
# libyaml's node tree), with a run of 2,000 inline deny rules: the same
# verdicts, at the middle and at the end of each run, events naming the
# line's rule, a bad line refused with FILE:LINE:COL.
#
#   WEIR_BUILD=/abs/build bash tests/e2e/biglists.sh      (root)

E2E_NAME=e2e-biglists
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init
RUN_TIMEOUT=120 # a million prefixes, on a machine that may be busy

T=$E2E_TMP
IN=192.0.2.1      # in the list
OUT_=198.51.100.7 # not in the list
END=203.0.113.9   # the last of the inline allow rules
LOG=$T/sink.log
N=1000000

setup() {
	e2e_setup_lo "$IN/32" "$OUT_/32" "$END/32"
	e2e_start_sink sink "$LOG" "$IN:8080" "$IN:8081" "$OUT_:8080" "$END:8080"
	mkdir -p "$T/lists"
	# A million host prefixes in 10/8, the test address among them (line
	# 500001), with the comments and header of a FireHOL netset.
	awk -v n=$N -v in_="$IN" 'BEGIN {
		print "#\n# firehol-style netset: test list\n#"
		for (i = 0; i < n - 1; i++) {
			if (i == n / 2) print in_ "  # the test host"
			printf "10.%d.%d.%d/32\n", int(i / 65536), int(i / 256) % 256, i % 256
		}
	}' >"$T/lists/big.netset"
}

# probes POLICY ADDR:PORT=WANT...: one weir run (loading a million
# prefixes takes a while on a loaded machine: one run for several
# connections) of a shell running one netprobe (tcp) per destination, each
# with a fresh token. WANT ok: it connected and arrived; EPERM: refused,
# and nothing arrived.
PROBE_N=0
probes() {
	local pol=$1 d script='' toks=() wants=() i got
	shift
	for d in "$@"; do
		PROBE_N=$((PROBE_N + 1))
		toks+=("tok$PROBE_N-$RANDOM")
		wants+=("${d#*=}")
		d=${d%=*}
		script+="\"\$0\" tcp ${d%:*} ${d##*:} ${toks[-1]}; "
	done
	run_weir -p "$pol" -e "$T/ev" -- sh -c "${script}exit 0" "$NETPROBE"
	x_rc 0
	for i in "${!toks[@]}"; do
		got=$(sed -n "$((i + 1))p" "$OUT")
		[ "$got" = "${wants[i]}" ] || t_why "probe $((i + 1)) ($*): '$got', want '${wants[i]}'"
		if [ "${wants[i]}" = ok ]; then
			x_arrived "$LOG" "^tcp [^ ]+ ${toks[i]}\$"
		else
			x_not_arrived "$LOG" " ${toks[i]}\$"
		fi
	done
}

test_allow() {
	local pol t0 t1
	pol=$(e2e_policy allow <<-EOF
		version: 1
		loopback: deny
		allow:
		  - cidr_list: lists/big.netset
		    ports: [8080]
		    proto: tcp
	EOF
	)
	t_begin "a 1M-line allow list: an address in it connects on the rule's port only; one outside is denied"
	t0=$(date +%s%N)
	probes "$pol" "$IN:8080=ok" "$IN:8081=EPERM" "$OUT_:8080=EPERM"
	t1=$(date +%s%N)
	x_json "$T/ev" 'map(select(.verdict == "allow" and .dst == "'"$IN"'")) | .[0].rule == "allow[0]"'
	x_json "$T/ev" 'map(select(.verdict == "deny")) | length == 2'
	t_end
	echo "# weir run with a 1M-line cidr_list and three connections: $(((t1 - t0) / 1000000)) ms"
}

test_deny() {
	local pol
	pol=$(e2e_policy deny <<-EOF
		version: 1
		loopback: deny
		allow:
		  - cidr: 192.0.2.0/24
		  - cidr: 198.51.100.0/24
		deny:
		  - cidr_list: $T/lists/big.netset
	EOF
	)
	t_begin "a 1M-line deny list: an address in it is denied by deny[0]; one outside is allowed"
	rm -f "$T/ev"
	probes "$pol" "$IN:8080=EPERM" "$OUT_:8080=ok"
	x_json "$T/ev" 'map(select(.verdict == "deny" and .dst == "'"$IN"'")) | .[0].rule == "deny[0]"'
	t_end
}

test_check() {
	local pol
	pol=$(e2e_policy check <<-EOF
		version: 1
		deny:
		  - cidr_list: lists/big.netset
	EOF
	)
	t_begin "weir policy check counts the list's prefixes"
	run_cmd "$WEIR" policy check "$pol"
	x_rc 0
	grep -q "deny\[0\]: cidr_list lists/big.netset ($N prefixes)$" "$OUT" ||
		t_why "no count line: $(t_tail "$OUT" 4)"
	# the list, 127/8 and five metadata addresses
	grep -q "^compiled: $((N + 6)) IPv4 prefixes" "$OUT" ||
		t_why "no compiled count: $(grep compiled "$OUT")"
	t_end

	printf '192.0.2.0/24\n# ok\n192.0.2.1/24\n' >"$T/lists/bad.txt"
	pol=$(e2e_policy bad <<-EOF
		version: 1
		deny:
		  - cidr_list: lists/bad.txt
	EOF
	)
	t_begin "a bad line in a list: weir run refuses with the list's FILE:LINE (125)"
	run_weir -p "$pol" -- true
	x_rc 125
	x_err_has "lists/bad\.txt:3: 192\.0\.2\.1/24 has host bits set \(cidr_list at .*bad\.yaml:3:16\)"
	t_end
	t_begin "a missing list: weir run refuses (125), nothing runs"
	rm -f "$T/lists/bad.txt"
	run_weir -p "$pol" -- touch "$T/ran"
	x_rc 125
	x_err_has "bad\.txt: No such file or directory"
	[ ! -e "$T/ran" ] || t_why "the command ran"
	t_end
}

test_inline() {
	local pol=$T/inline.yaml
	{
		printf 'version: 1\nloopback: deny\nallow:\n'
		sed -n 's|^\([0-9.]*\)/32$|  - ip: \1|p; s|^\([0-9.]*\)  # .*|  - ip: \1   # here|p' \
			"$T/lists/big.netset"
		printf '  - ip: %s\ndeny:\n' "$END"
		# 2,000 rules in 198.18.0.0/15, the probe's address 2nd to last
		awk -v out="$OUT_" 'BEGIN { for (i = 0; i < 2000; i++)
			if (i == 1998) print "  - cidr: " out "/32"
			else printf "  - ip: 198.18.%d.%d\n", int(i / 256), i % 256 }'
	} >"$pol"
	t_begin "a 1M-rule inline allow list: addresses in its middle and at its end connect, their rules named by line; one in the deny run is denied by its rule"
	rm -f "$T/ev"
	probes "$pol" "$IN:8080=ok" "$END:8080=ok" "$OUT_:8080=EPERM"
	x_json "$T/ev" 'map(select(.verdict == "allow" and .dst == "'"$IN"'")) |
		.[0].rule == "allow[500000]" and (.[0].rule_origin | endswith("/inline.yaml:500004"))'
	x_json "$T/ev" 'map(select(.verdict == "allow" and .dst == "'"$END"'")) |
		.[0].rule == "allow[1000000]" and (.[0].rule_origin | endswith("/inline.yaml:1000004"))'
	x_json "$T/ev" 'map(select(.verdict == "deny" and .dst == "'"$OUT_"'")) |
		.[0].rule == "deny[1998]" and (.[0].rule_origin | endswith("/inline.yaml:1002004"))'
	t_end

	t_begin "a bad line among 1M inline rules: weir run refuses with its FILE:LINE:COL (125)"
	sed -i '700004s|.*|  - ip: 10.300.0.1|' "$pol"
	run_weir -p "$pol" -- true
	x_rc 125
	x_err_has "inline\.yaml:700004:9: allow\[700000\]: ip '10\.300\.0\.1' is not an IPv4 or IPv6 address"
	t_end
}

test_no_leftover_cgroups() {
	local IFS=';'
	if ((${#LEFTOVER[@]})); then
		t_not_ok "biglists no weir cgroup left after any of $WEIR_RUNS runs" "${LEFTOVER[*]}"
	else
		t_ok "biglists no weir cgroup left after any of $WEIR_RUNS runs"
	fi
}

main() {
	local start=$SECONDS
	setup
	test_allow
	test_deny
	test_check
	test_inline
	test_no_leftover_cgroups
	echo "# $((SECONDS - start)) s, $WEIR_RUNS weir runs"
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" = 0 ]
}

main
