#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make bench, big lists (docs/policy.md, "Big lists"; issue 11's target: a
# policy of 1,000,000 prefixes loads in under 1 s end to end, and a reload
# of it is atomic). Through the paths users run, against baselines of the
# same run:
#   1. `weir run --standalone -v -- true` with 1M prefixes: from a cidr_list
#      file (random hosts; a FireHOL-like mix, 90% hosts and 10% /16../24;
#      the worst case, no host prefix at all) and inline in YAML (the mix);
#      wall time added over `true` alone and over a one-rule policy, CPU
#      time, and -v's split into parse, compile and map writes; and a list
#      of 100,000 IPv6 prefixes (those stay in the trie: the row shows
#      what that costs at a size past published IPv6 lists);
#   2. through a daemon of the bench's own: `weir attach` of the 1M mix,
#      then its file replaced by another 1M list and `weir reload`: how long
#      until that returns (the new version answering then), while a process
#      in the cgroup connects to an address both versions allow, over and
#      over: the connections that failed (the reload is atomic: 0). The
#      same with the two mixes inline in the YAML. A one-rule policy
#      attached and reloaded the same way is the baseline.
#   3. `weir run -- true` through that daemon (the way a user's `weir run`
#      goes when a daemon runs: the policy's text sent in the attach
#      request) with the one-rule policy, the mix list and the mix inline:
#      wall time, weir run's CPU time and the daemon's.
# In namespaces of its own; called by bench/run.sh.
#
#   WEIR_BUILD=/abs/build bash bench/biglists.sh      (root; BENCH_QUICK=1: 1 repetition)

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=bench-biglists
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init
RESULTS=$REPO_ROOT/bench/results
mkdir -p "$RESULTS"
T=$E2E_TMP
if [ -n "${BENCH_QUICK:-}" ]; then REPS=1; else REPS=3; fi
N=1000000
STANDALONE=()
"$WEIR" run --help 2>&1 | grep -q -- '--standalone' && STANDALONE=(--standalone)
SOCK=$T/weir.sock
PDIR=$T/policies
PINS=/sys/fs/bpf/weir-bench-big-$$
CGP=$CG2/weir-bench-big-$$
DPID=
LOOPER=

bench_cleanup() {
	local c i
	[ -n "$LOOPER" ] && kill "$LOOPER" 2>/dev/null
	[ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && e2e_wait_gone "$DPID" 100
	for c in "$CGP"/*/; do
		[ -d "$c" ] || continue
		echo 1 >"$c/cgroup.kill" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			grep -qs '^populated 0' "$c/cgroup.events" && break
			sleep 0.1
		done
	done
	[ -d "$CGP" ] && find "$CGP" -depth -type d -exec rmdir {} + 2>/dev/null
	[ -d "$PINS" ] && rm -rf "$PINS"
	e2e_cleanup
}
trap bench_cleanup EXIT

median() {
	sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ms_since() { # T0 (an $EPOCHREALTIME)
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }'
}

e2e_setup_lo 192.0.2.10/32 192.0.2.11/32
e2e_start_sink sink "$T/sink.log" 192.0.2.10:80 192.0.2.11:80

# Lists, unsorted (the compiler's worst case for its sort); 192.0.2.10 on
# the first line of each (the address the daemon part connects to).
#   hosts: N random host addresses
#   mix:   FireHOL level lists: 90% hosts, 10% /16 to /24 networks
#   nets:  the worst case: no host prefix at all, /16 to /31
# OCTET (the mix only): first octets from OCTET on, so that a second list
# differs from the first.
mklist() { # KIND FILE [SEED]
	awk -v n=$N -v kind="$1" -v seed="${3:-1}" 'BEGIN { srand(seed); print "192.0.2.10"
		for (i = 1; i < n; i++) {
			a = 1 + int(rand() * 222); b = int(rand() * 256)
			c = int(rand() * 256); d = int(rand() * 256)
			if (kind == "hosts" || (kind == "mix" && rand() < 0.9)) {
				printf "%d.%d.%d.%d\n", a, b, c, d; continue
			}
			p = kind == "mix" ? 16 + int(rand() * 9) : 16 + int(rand() * 16)
			x = a * 16777216 + b * 65536 + c * 256 + d
			x -= x % (2 ^ (32 - p))
			printf "%d.%d.%d.%d/%d\n", int(x / 16777216), int(x / 65536) % 256,
				int(x / 256) % 256, x % 256, p
		} }' >"$2"
}
for k in hosts mix nets; do
	mklist $k "$T/$k.txt"
	printf 'version: 1\nallow:\n  - cidr_list: %s.txt\n' $k >"$T/list-$k.yaml"
done
{
	printf 'version: 1\nallow:\n'
	awk '{ print (index($0, "/") ? "  - cidr: " : "  - ip: ") $0 }' "$T/mix.txt"
} >"$T/inline-mix.yaml"
# IPv6: 100,000 prefixes, half hosts, half /32 to /64 in 2001:db8::/32
awk -v n=100000 'BEGIN { srand(3); for (i = 0; i < n; i++) {
		a = int(rand() * 65536); b = int(rand() * 65536); c = int(rand() * 65536)
		if (i % 2) printf "2001:db8:%x:%x::%x\n", a, b, c
		else printf "2001:db8:%x::/48\n", a } }' >"$T/v6.txt"
printf 'version: 1\nallow:\n  - cidr_list: v6.txt\n' >"$T/list-v6.yaml"
printf 'version: 1\nallow:\n  - ip: 192.0.2.10\n' >"$T/one.yaml"

# --- 1. weir run -------------------------------------------------------------
declare -A R
# one KIND POLICY: REPS runs of weir run -v -- true; wall and CPU ms, and
# the -v split of the last run.
one() {
	local kind=$1 pol=$2 r t0 wall=() cpu=() line
	for ((r = 0; r < REPS; r++)); do
		t0=$EPOCHREALTIME
		/usr/bin/time -f '%U %S' -o "$T/time" \
			"$WEIR" run "${STANDALONE[@]}" -v -p "$pol" -- true >/dev/null 2>"$T/err" ||
			e2e_die "weir run with $kind failed: $(t_tail "$T/err")"
		wall+=("$(ms_since "$t0")")
		cpu+=("$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$T/time")")
	done
	R[$kind-wall]=$(printf '%s\n' "${wall[@]}" | median)
	R[$kind-cpu]=$(printf '%s\n' "${cpu[@]}" | median)
	R[$kind-parse]=$(sed -n 's/^weir: policy parsed in \([0-9.]*\) ms$/\1/p' "$T/err" | tail -1)
	line=$(grep 'policy in force' "$T/err" | tail -1)
	R[$kind-compile]=$(sed -n 's/.*compiled in \([0-9.]*\) ms.*/\1/p' <<<"$line")
	R[$kind-write]=$(sed -n 's/.*written in \([0-9.]*\) ms.*/\1/p' <<<"$line")
}

TRUE_MS=()
for ((r = 0; r < 5; r++)); do
	t0=$EPOCHREALTIME
	true
	/bin/true
	TRUE_MS+=("$(ms_since "$t0")")
done
R[true-wall]=$(printf '%s\n' "${TRUE_MS[@]}" | median)
one one "$T/one.yaml"
for k in hosts mix nets; do
	one list-$k "$T/list-$k.yaml"
done
one inline-mix "$T/inline-mix.yaml"
one list-v6 "$T/list-v6.yaml"

echo
echo "Big lists: weir run ${STANDALONE[*]} -- true with $N prefixes (median of $REPS; ms)"
printf '%-22s %8s %10s %10s %8s %8s %8s %8s\n' "" wall "over true" "over 1" cpu parse compile write
for k in one list-hosts list-mix list-nets inline-mix list-v6; do
	printf '%-22s %8s %10s %10s %8s %8s %8s %8s\n' "$k" "${R[$k-wall]}" \
		"$((R[$k-wall] - R[true-wall]))" "$((R[$k-wall] - R[one-wall]))" "${R[$k-cpu]}" \
		"${R[$k-parse]:--}" "${R[$k-compile]:--}" "${R[$k-write]:--}"
done
echo "(true alone: ${R[true-wall]} ms; one: a one-rule policy; list-nets: no host prefix, the worst case;"
echo " list-v6: 100,000 IPv6 prefixes, in the trie)"

# --- 2. the daemon: weir attach, weir reload ---------------------------------
probe() { # CGROUP ADDR: ok or the errno name, from inside the cgroup
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$1" "$NETPROBE" tcp "$2" 80 p 2>/dev/null
}
policy() { # NAME LIST: allow the list's addresses on port 80 (inline*: on every port, inline)
	if [[ $1 == inline* ]]; then
		{
			printf 'version: 1\nloopback: deny\nallow:\n'
			awk '{ print (index($0, "/") ? "  - cidr: " : "  - ip: ") $0 }' "$2"
		} >"$PDIR/$1.yaml.tmp"
	else
		printf 'version: 1\nloopback: deny\nallow:\n  - cidr_list: %s\n    ports: [80]\n' "$2" \
			>"$PDIR/$1.yaml.tmp"
	fi
	mv "$PDIR/$1.yaml.tmp" "$PDIR/$1.yaml"
}

mkdir -p "$PDIR" "$CGP/big" "$CGP/small" "$CGP/inline" || e2e_die "cannot make $PDIR or $CGP"
mklist mix "$T/mix2.txt" 2
printf '192.0.2.10\n' >"$T/small1.txt"
printf '192.0.2.10\n192.0.2.11\n' >"$T/small2.txt"
echo 192.0.2.11 >>"$T/mix2.txt" # only the second version allows it
policy big "$T/mix.txt"
policy small "$T/small1.txt"
policy inline "$T/mix.txt"
"$WEIR" daemon --socket "$SOCK" --policy-dir "$PDIR" --state-dir "$T/state" \
	--pin-root "$PINS" >>"$T/daemon.out" 2>>"$T/daemon.err" &
DPID=$!
disown "$DPID"
for ((i = 0; i < 600; i++)); do
	curl -sf --max-time 1 --unix-socket "$SOCK" http://weir/v1/health >/dev/null 2>&1 && break
	e2e_dead "$DPID" && e2e_die "weir daemon died: $(t_tail "$T/daemon.err" 5)"
	sleep 0.1
done

# attach_reload NAME NEWLIST: weir attach's time, then the list replaced in
# the policy file and weir reload's time (the new version answers when it
# returns), with a looper connecting all along.
attach_reload() {
	local name=$1 cg=$CGP/$1 t0 ok bad
	t0=$EPOCHREALTIME
	"$WEIR" attach --socket "$SOCK" --policy "$name" "$cg" >/dev/null 2>"$T/attach.err" ||
		e2e_die "weir attach $name failed: $(t_tail "$T/attach.err")"
	R[$name-attach]=$(ms_since "$t0")
	[ "$(probe "$cg" 192.0.2.10)" = ok ] || e2e_die "$name: 192.0.2.10 not reachable"
	: >"$T/loop.out"
	rm -f "$T/stop"
	sh -c 'echo $$ >"$0/cgroup.procs" && while [ ! -e "$1" ]; do
		"$2" tcp 192.0.2.10 80 loop >>"$3" 2>&1; done' \
		"$cg" "$T/stop" "$NETPROBE" "$T/loop.out" &
	LOOPER=$!
	for ((i = 0; i < 50; i++)); do
		[ -s "$T/loop.out" ] && break
		sleep 0.1
	done
	t0=$EPOCHREALTIME
	policy "$name" "$2"
	"$WEIR" reload --socket "$SOCK" >"$T/reload.out" 2>&1 ||
		e2e_die "weir reload failed: $(cat "$T/reload.out")"
	R[$name-reload]=$(ms_since "$t0")
	R[$name-new]=$(probe "$cg" 192.0.2.11)
	sleep 0.3
	touch "$T/stop"
	e2e_wait_gone "$LOOPER" 50
	LOOPER=
	ok=$(grep -c '^ok$' "$T/loop.out")
	bad=$(grep -vc '^ok$' "$T/loop.out")
	R[$name-ok]=$ok
	R[$name-failed]=$bad
}
attach_reload small "$T/small2.txt"
attach_reload big "$T/mix2.txt"
attach_reload inline "$T/mix2.txt"

echo
echo "Big lists through a daemon: weir attach, then the policy's list replaced and weir reload (ms)"
printf '%-22s %8s %8s %14s %12s %12s\n' "" attach reload "new answers" connections failed
for k in small big inline; do
	printf '%-22s %8s %8s %14s %12s %12s\n' "$k" "${R[$k-attach]}" "${R[$k-reload]}" \
		"${R[$k-new]}" "${R[$k-ok]}" "${R[$k-failed]}"
done
echo "(small: 1 prefix, then 2; big: the 1M mix, then another 1M mix, as list files; inline:"
echo " the same two inline in the YAML; connections: made by a process in the cgroup during the"
echo " reload, to an address both versions allow)"
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"

# --- 3. weir run -- true through the daemon ----------------------------------
dcpu() { awk '{ print ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"' }' "/proc/$DPID/stat"; }
# via KIND POLICY: REPS runs; wall, weir run's CPU, the daemon's CPU (ms)
via() {
	local kind=$1 pol=$2 r t0 d0 wall=() cpu=() dc=()
	for ((r = 0; r < REPS; r++)); do
		t0=$EPOCHREALTIME
		d0=$(dcpu)
		if ! /usr/bin/time -f '%U %S' -o "$T/time" \
			"$WEIR" run --socket "$SOCK" -p "$pol" -- true >/dev/null 2>"$T/err"; then
			R[via-$kind-wall]="failed: $(grep -v 'runs as root' "$T/err" | head -1 | sed 's/.*: //' | cut -c1-50)"
			return
		fi
		wall+=("$(ms_since "$t0")")
		cpu+=("$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$T/time")")
		dc+=("$(($(dcpu) - d0))")
	done
	R[via-$kind-wall]=$(printf '%s\n' "${wall[@]}" | median)
	R[via-$kind-cpu]=$(printf '%s\n' "${cpu[@]}" | median)
	R[via-$kind-dcpu]=$(printf '%s\n' "${dc[@]}" | median)
}
via one "$T/one.yaml"
via list-mix "$T/list-mix.yaml"
via inline-mix "$T/inline-mix.yaml"
echo
echo "weir run -- true through the daemon (median of $REPS; ms)"
printf '%-22s %8s %10s %12s\n' "" wall "run's cpu" "daemon's cpu"
for k in one list-mix inline-mix; do
	printf '%-22s %8s %10s %12s\n' "$k" "${R[via-$k-wall]}" "${R[via-$k-cpu]:--}" \
		"${R[via-$k-dcpu]:--}"
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"

row() { # KIND: its figures as JSON
	jq -n --arg w "${R[$1-wall]}" --arg c "${R[$1-cpu]}" --arg p "${R[$1-parse]}" \
		--arg k "${R[$1-compile]}" --arg r "${R[$1-write]}" --arg t "${R[true-wall]}" \
		--arg o "${R[one-wall]}" \
		'def num: if . == "" then null else tonumber end;
		{wall: ($w | num), over_true: (($w | num) - ($t | num)),
		 over_one_rule: (($w | num) - ($o | num)), cpu: ($c | num), parse: ($p | num),
		 compile: ($k | num), write: ($r | num)}'
}
vrow() { # KIND
	jq -n --arg w "${R[via-$1-wall]}" --arg c "${R[via-$1-cpu]}" --arg d "${R[via-$1-dcpu]}" \
		'def num: if . == "" then null else (tonumber? // .) end;
		{wall: ($w | num), run_cpu: ($c | num), daemon_cpu: ($d | num)}'
}
drow() { # NAME
	jq -n --arg a "${R[$1-attach]}" --arg r "${R[$1-reload]}" --arg n "${R[$1-new]}" \
		--arg o "${R[$1-ok]}" --arg f "${R[$1-failed]}" \
		'{attach_ms: ($a | tonumber), reload_ms: ($r | tonumber), new_version: $n,
		  connections: ($o | tonumber), failed: ($f | tonumber)}'
}
jq -n --arg n $N --arg reps $REPS --arg la "$(cut -d' ' -f1 /proc/loadavg)" \
	--arg tw "${R[true-wall]}" --argjson one "$(row one)" \
	--argjson lh "$(row list-hosts)" --argjson lm "$(row list-mix)" \
	--argjson ln "$(row list-nets)" --argjson im "$(row inline-mix)" \
	--argjson l6 "$(row list-v6)" \
	--argjson ds "$(drow small)" --argjson db "$(drow big)" --argjson di "$(drow inline)" \
	--argjson vo "$(vrow one)" --argjson vl "$(vrow list-mix)" --argjson vi "$(vrow inline-mix)" \
	'{bench: "biglists", prefixes: ($n | tonumber), repetitions: ($reps | tonumber),
	  loadavg: ($la | tonumber), true_ms: ($tw | tonumber),
	  run_ms: {one_rule: $one, list_hosts: $lh, list_mix: $lm, list_nets: $ln,
		   inline_mix: $im, list_v6: $l6},
	  daemon: {small: $ds, big: $db, inline: $di},
	  run_through_daemon_ms: {one_rule: $vo, list_mix: $vl, inline_mix: $vi}}' \
	>"$RESULTS/biglists.json"
echo "(JSON: bench/results/biglists.json)"
