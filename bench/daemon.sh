#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# make bench, weir daemon: what a daemon holding many attachments costs, each
# figure against a baseline of the same run. Two daemons of the bench's own
# (own sockets, state dirs, pin roots, in private network and mount
# namespaces): "one" enforces a single cgroup, "many" N (500) cgroups, each
# with a policy of its own of 100 rules.
#   1. attach and detach through the API: p50 and p99 over N attachments
#      (and `weir attach`/`weir detach` as a user runs them);
#   2. what the kernel holds, before any attachment, after 1 and after N;
#   3. the per-call costs of bench/callbench.c and bench/sendperf.c through
#      the daemons' programs: N attachments against 1 against none;
#   4. `weir run -- true` through the daemon, standalone, and `true`.
#
#   WEIR_BUILD=/abs/build bash bench/daemon.sh      (root; run by bench/run.sh)
#
# BENCH_QUICK=1: fewer repetitions and calls; BENCH_DAEMON_N: N (500).
# Tables on stdout, JSON in bench/results/daemon.json and daemon-calls.json.
E2E_NAME=bench-daemon
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init
RESULTS=$REPO_ROOT/bench/results
mkdir -p "$RESULTS"
N=${BENCH_DAEMON_N:-500}
if [ -n "${BENCH_QUICK:-}" ]; then
	REPS=3 SR=10 SN=20000 CLI=10
else
	REPS=5 SR=20 SN=200000 CLI=20
fi
((N >= 2)) || e2e_die "BENCH_DAEMON_N must be 2 or more"
for b in callbench sendperf; do
	[ -x "$WEIR_BUILD/bin/$b" ] || e2e_die "$WEIR_BUILD/bin/$b missing: make $b"
done
T=$E2E_TMP
CGP=$CG2/weir-bench-daemon-$$
PINS=/sys/fs/bpf/weir-bench-daemon-$$
declare -A DPID SOCK

bench_cleanup() {
	local d
	for d in "${!DPID[@]}"; do
		kill -TERM "${DPID[$d]}" 2>/dev/null && e2e_wait_gone "${DPID[$d]}" 100
	done
	[ -d "$CGP" ] && find "$CGP" -depth -type d -exec rmdir {} + 2>/dev/null
	rm -rf "$PINS-one" "$PINS-many"
	e2e_cleanup
}
trap bench_cleanup EXIT

e2e_setup_lo 192.0.2.10/32 203.0.113.66/32
ip route add local 198.18.0.0/15 dev lo || e2e_die "cannot route 198.18.0.0/15 to lo"
e2e_start_dns allowed.test,192.0.2.10
e2e_start_sink sink "$T/sink.log" 192.0.2.10:9002

# --- policies: 100 distinct rules each -----------------------------------------
# policy I, rule J: an IPv4 /30 or an IPv6 /64 of the documentation ranges,
# one port; distinct within a policy, and from policy to policy. "bench"
# (I = 0) begins with what callbench and sendperf reach: 192.0.2.10 and
# 198.18.0.0/15, ports 9000-9002; 203.0.113.66 stays denied.
mkdir -p "$T/policies" "$CGP"
awk -v dir="$T/policies" -v n="$N" 'BEGIN {
	for (i = 0; i < n; i++) {
		f = dir "/" (i ? "q" i : "bench") ".yaml"
		print "version: 1\nallow:" >f
		if (!i)
			printf "  - cidr: 192.0.2.10/32\n    ports: [9000-9002]\n" \
			       "  - cidr: 198.18.0.0/15\n    ports: [9000-9002]\n" >f
		for (j = i ? 0 : 2; j < 100; j++) {
			if (j < 50)
				printf "  - cidr: 198.51.100.%d/30\n", 4 * j >f
			else
				printf "  - cidr: 2001:db8:%x:%x::/64\n", i, j >f
			printf "    ports: [%d]\n", 1000 + (i * 7 + j) % 60000 >f
		}
		close(f)
	} }'
"$WEIR" policy check "$T/policies/bench.yaml" >/dev/null 2>"$T/check.err" ||
	e2e_die "bench.yaml: $(cat "$T/check.err")"

# --- the daemons ---------------------------------------------------------------
start_daemon() { # NAME
	local i
	SOCK[$1]=$T/$1.sock
	"$WEIR" daemon --socket "${SOCK[$1]}" --policy-dir "$T/policies" --state-dir "$T/$1-state" \
		--pin-root "$PINS-$1" --detach-on-exit 2>"$T/$1.err" &
	DPID[$1]=$!
	for ((i = 0; i < 200; i++)); do
		curl -sf --max-time 1 --unix-socket "${SOCK[$1]}" http://weir/v1/health >/dev/null 2>&1 &&
			return 0
		e2e_dead "${DPID[$1]}" && break
		sleep 0.05
	done
	e2e_die "daemon $1 did not start: $(t_tail "$T/$1.err")"
}

# batch NAME PATH < BODIES: one request per line of JSON, in order, from one
# curl (one connection); prints "STATUS SECONDS" for each (curl's
# time_total: the request as the daemon serves it, not curl's start-up).
batch() {
	awk -v sock="${SOCK[$1]}" -v url="http://weir$2" '{
		gsub(/"/, "\\\"")
		printf "unix-socket = \"%s\"\nurl = \"%s\"\ndata = \"%s\"\n", sock, url, $0
		printf "header = \"Content-Type: application/json\"\noutput = \"/dev/null\"\n"
		printf "write-out = \"%%{http_code} %%{time_total}\\n\"\nnext\n" }' >"$T/batch.cfg"
	curl -sS -K "$T/batch.cfg" 2>>"$T/curl.err" | grep .
}

# times OUT COUNT < STATUS SECONDS: append the seconds to OUT; fails unless
# there are COUNT answers, all 200 or 201.
times() {
	awk -v out="$1" -v want="$2" '$1 !~ /^20[01]$/ { bad++ } { print $2 >>out }
		END { if (bad || NR != want) {
			printf "bench-daemon: %d of %d requests failed\n", bad + want - NR, want
			exit 1 } }' >&2
}

# kmem PID: what the kernel holds for this daemon, one line "MAP_BYTES
# MAPS LINKS PROGS SOCKET_BYTES SOCKETS". Maps: the kernel's own account
# (fdinfo memlock, each map once); links and programs: counted; sockets:
# counted, each at its slab's object size (/proc/slabinfo).
kmem() {
	local fd id maps=0 nmaps=0
	declare -A seen
	while read -r fd; do
		id=$(awk '/^map_id:/ { print $2 }' "/proc/$1/fdinfo/$fd")
		[ -n "${seen[$id]:-}" ] && continue
		seen[$id]=1
		nmaps=$((nmaps + 1))
		maps=$((maps + $(awk '/^memlock:/ { print $2 }' "/proc/$1/fdinfo/$fd")))
	done < <(find /proc/"$1"/fd -lname 'anon_inode:bpf-map' -printf '%f\n')
	# A socket's slab by its table (UDP, UDPv6, TCP, TCPv6; else not counted).
	find /proc/"$1"/fd -printf '%l\n' | awk -v maps="$maps" -v nmaps="$nmaps" '
		BEGIN { slab["udp"] = "UDP"; slab["udp6"] = "UDPv6"; slab["tcp"] = "TCP"
			slab["tcp6"] = "TCPv6" }
		FILENAME == "/proc/slabinfo" { size[$1] = $4; next }
		FILENAME ~ /net/ { n = split(FILENAME, p, "/")
			if (FNR > 1) kind[$10] = slab[p[n]]; next }
		/^anon_inode:bpf_link/ { links++ }
		/^anon_inode:bpf-prog/ { progs++ }
		/^socket:/ { i = substr($1, 9, length($1) - 9); if (i in kind) { bytes += size[kind[i]]; ns++ } }
		END { print maps, nmaps, links + 0, progs + 0, bytes + 0, ns + 0 }' \
		/proc/slabinfo /proc/"$1"/net/udp /proc/"$1"/net/udp6 /proc/"$1"/net/tcp \
		/proc/"$1"/net/tcp6 -
}

percentile() { # P < numbers
	sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p + 0.5); if (i < 1) i = 1; print v[i] }'
}
median() { percentile 0.5; }
ms_list() { awk '{ printf "%.3f\n", $1 * 1000 }' "$1"; }

start_daemon many
start_daemon one
read -r -a MEM0 <<<"$(kmem "${DPID[many]}")"

# 1 and 2. N attachments held at once, the first "bench", then one policy
# each; the kernel's share before, after 1 and after N.
MS=()
for ((i = 0; i < N; i++)); do
	MS+=("$CGP/m$i")
done
mkdir "${MS[@]}"
echo "{\"cgroup\":\"$CGP/m0\",\"policy\":\"bench\"}" | batch many /v1/attachments |
	times "$T/attach" 1 || e2e_die "attach: $(t_tail "$T/curl.err")"
read -r -a MEM1 <<<"$(kmem "${DPID[many]}")"
for ((i = 1; i < N; i++)); do
	echo "{\"cgroup\":\"$CGP/m$i\",\"policy\":\"q$i\"}"
done | batch many /v1/attachments | times "$T/attach" $((N - 1)) ||
	e2e_die "attach: $(t_tail "$T/curl.err")"
read -r -a MEMN <<<"$(kmem "${DPID[many]}")"
held=$(curl -sS --unix-socket "${SOCK[many]}" http://weir/v1/attachments | jq '.attachments | length')
[ "$held" = "$N" ] || e2e_die "daemon holds $held attachments, want $N"
bad=$(curl -sS --unix-socket "${SOCK[many]}" http://weir/v1/attachments |
	jq '[.attachments[] | select(.state != "ok")] | length')
[ "$bad" = 0 ] || e2e_die "$bad attachments not ok"
rss_kib=$(awk '/VmRSS/ { print $2 }' "/proc/${DPID[many]}/status")
cpu() { awk '{ print $14 + $15 }' "/proc/${DPID[many]}/stat"; }
c0=$(cpu)
sleep 2
idle_ms=$((($(cpu) - c0) * 1000 / $(getconf CLK_TCK) / 2))

mkdir "$CGP/one" "$CGP/none"
echo "{\"cgroup\":\"$CGP/one\",\"policy\":\"bench\"}" | batch one /v1/attachments |
	times "$T/attach-one" 1 || e2e_die "attach: $(t_tail "$T/curl.err")"
# `weir attach` and `weir detach` as a user runs them: a process each, the
# client's start-up included, with the N attachments held.
for ((i = 0; i < CLI; i++)); do
	mkdir "$CGP/c$i"
	t0=$EPOCHREALTIME
	"$WEIR" attach --socket "${SOCK[many]}" --policy bench "$CGP/c$i" >/dev/null ||
		e2e_die "weir attach $CGP/c$i failed"
	t1=$EPOCHREALTIME
	"$WEIR" detach --socket "${SOCK[many]}" "$CGP/c$i" >/dev/null ||
		e2e_die "weir detach $CGP/c$i failed"
	t2=$EPOCHREALTIME
	rmdir "$CGP/c$i"
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >>"$T/cli-attach"
	awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }' >>"$T/cli-detach"
done

echo
echo "weir daemon: attach and detach ($N cgroups, 100-rule policies, each its own;"
echo "through the API, curl --unix-socket time_total; ms)"
printf '  %-40s %6s %8s %8s %8s\n' "" n p50 p99 max
row() { # LABEL FILE
	printf '  %-40s %6d %8.2f %8.2f %8.2f\n' "$1" "$(wc -l <"$2")" \
		"$(ms_list "$2" | percentile 0.5)" "$(ms_list "$2" | percentile 0.99)" \
		"$(ms_list "$2" | percentile 1)"
}
row "attach, 0 to $N held" "$T/attach"
row "weir attach (the command), $N held" "$T/cli-attach"
row "weir detach (the command), $N held" "$T/cli-detach"
echo "  with $N held: daemon RSS $((rss_kib / 1024)) MiB, idle CPU $idle_ms ms/s"

# A link's size from the kernel's BTF (96 bytes on 6.18).
LINK_B=$(bpftool btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null |
	awk "/STRUCT 'bpf_cgroup_link' size=/ { sub(\"size=\", \"\", \$4); print \$4; exit }")
: "${LINK_B:=96}"
echo
echo "kernel memory held by daemon \"many\" (maps: fdinfo memlock, the kernel's"
echo "account; links counted, each a struct bpf_cgroup_link of $LINK_B bytes;"
echo "sockets counted, each at its slab's object size)"
printf '  %-22s %12s %6s %6s %6s %12s %8s\n' "" "map bytes" maps links progs "socket bytes" sockets
printf '  %-22s %12s %6s %6s %6s %12s %8s\n' "no attachment" "${MEM0[@]}"
printf '  %-22s %12s %6s %6s %6s %12s %8s\n' "1 attachment" "${MEM1[@]}"
printf '  %-22s %12s %6s %6s %6s %12s %8s\n' "$N attachments" "${MEMN[@]}"
per() { # MEM[@] of K attachments: bytes per attachment, maps + links + sockets
	awk -v k="$1" -v m="$2" -v m0="${MEM0[0]}" -v l="$4" -v l0="${MEM0[2]}" -v s="$6" \
		-v s0="${MEM0[4]}" -v lb="$LINK_B" 'BEGIN {
		printf "%.0f %.0f %.0f %.0f", (m - m0) / k, (l - l0) * lb / k, (s - s0) / k,
			((m - m0) + (l - l0) * lb + (s - s0)) / k }'
}
read -r -a PER1 <<<"$(per 1 "${MEM1[@]}")"
read -r -a PERN <<<"$(per "$N" "${MEMN[@]}")"
printf '  %-22s %12s %12s %12s %12s\n' "bytes per attachment" maps links sockets total
printf '  %-22s %12s %12s %12s %12s\n' "the first" "${PER1[@]}"
printf '  %-22s %12s %12s %12s %12s\n' "mean of $N" "${PERN[@]}"

# 3. The per-call costs: the child moves between a cgroup nobody guards,
# the one cgroup of daemon "one" and the first of daemon "many"; all three
# in every repetition, in a shuffled order.
echo
"$WEIR_BUILD/bin/callbench" ${BENCH_QUICK:+--quick} --cgroups "$RESULTS/daemon-calls.json" \
	"no enforcement=$CGP/none" "daemon, 1 attachment=$CGP/one" \
	"daemon, $N attachments=$CGP/m0" 2>"$T/callbench.err" ||
	e2e_die "callbench failed: $(t_tail "$T/callbench.err")"
echo "(JSON: bench/results/daemon-calls.json)"

# sendperf in a cgroup: the backstop alone (send() on a connected socket).
incg() { # CGROUP CMD...
	bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' incg "$@"
}
declare -A SEND
CGS=(none one m0)
for ((r = 0; r < REPS; r++)); do
	for proto in udp tcp; do
		for cg in $(printf '%s\n' "${CGS[@]}" | shuf); do
			SEND[$cg-$proto]+="$(incg "$CGP/$cg" "$WEIR_BUILD/bin/sendperf" $proto 192.0.2.10 \
				9002 $SN | jq .median_ns) "
		done
	done
done
echo
echo "send() on a connected socket, through the daemons' backstop ($REPS repetitions,"
echo "$SN sends each, interleaved; median of medians, ns)"
printf '  %-10s %12s %14s %14s %10s %10s\n' "" none "1 attachment" "$N attachments" "$N vs none" \
	"$N vs 1"
SEND_JSON=
for proto in udp tcp; do
	s0=$(tr ' ' '\n' <<<"${SEND[none-$proto]}" | grep . | median)
	s1=$(tr ' ' '\n' <<<"${SEND[one-$proto]}" | grep . | median)
	sn=$(tr ' ' '\n' <<<"${SEND[m0-$proto]}" | grep . | median)
	printf '  %-10s %12.0f %14.0f %14.0f %10.2f %10.2f\n' "$proto" "$s0" "$s1" "$sn" \
		"$(awk -v a="$sn" -v b="$s0" 'BEGIN { print a / b }')" \
		"$(awk -v a="$sn" -v b="$s1" 'BEGIN { print a / b }')"
	SEND_JSON+="\"$proto\":{\"none\":\"${SEND[none-$proto]}\",\"one\":\"${SEND[one-$proto]}\","
	SEND_JSON+="\"many\":\"${SEND[m0-$proto]}\"},"
done

# 4. `weir run -- true`: through daemon "many" (N held), standalone, and
# `true`, interleaved. Needs a weir run that is the daemon's client.
ST=
if "$WEIR" run --help 2>&1 | grep -q -- '--standalone'; then
	ms() { # CMD...: its wall time, nothing if it failed
		local t0=$EPOCHREALTIME
		if "$@" >/dev/null 2>"$T/ms.err"; then
			awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", (b - a) * 1000 }'
		else
			echo "bench-daemon: failed: $*: $(t_tail "$T/ms.err")" >&2
		fi
	}
	declare -A STT
	TRUE=$(type -P true) # the program, as weir run starts it: not bash's builtin
	for ((r = 0; r < SR; r++)); do
		STT[true]+="$(ms "$TRUE") "
		STT[daemon]+="$(ms "$WEIR" run --socket "${SOCK[many]}" -q -p "$T/policies/bench.yaml" \
			-- true) "
		STT[standalone]+="$(ms "$WEIR" run --standalone -q -p "$T/policies/bench.yaml" -- true) "
	done
	t=$(tr ' ' '\n' <<<"${STT[true]}" | grep . | median)
	d=$(tr ' ' '\n' <<<"${STT[daemon]}" | grep . | median)
	s=$(tr ' ' '\n' <<<"${STT[standalone]}" | grep . | median)
	echo
	echo "start-up ($SR runs each, interleaved; median ms)"
	printf '  %-48s %10.2f\n' "$TRUE" "$t" \
		"weir run -- true, through the daemon ($N held)" "$d" \
		"weir run --standalone -- true" "$s"
	printf '  %-48s %10.2f\n' "added through the daemon" "$(awk -v a="$d" -v b="$t" 'BEGIN { print a - b }')" \
		"added standalone" "$(awk -v a="$s" -v b="$t" 'BEGIN { print a - b }')"
	ST="\"startup_ms\":{\"true\":\"${STT[true]}\",\"daemon\":\"${STT[daemon]}\","
	ST+="\"standalone\":\"${STT[standalone]}\"},"
else
	echo
	echo "start-up through the daemon: NOT MEASURED: this weir run is not a client of"
	echo "the daemon yet (no --standalone in weir run --help); bench/run.sh's start-up"
	echo "row is the standalone figure"
fi

# Detach them all, the last first: detach times with N down to 1 held.
for ((i = N - 1; i >= 0; i--)); do
	echo "{\"cgroup\":\"$CGP/m$i\"}"
done | batch many /v1/detach | times "$T/detach" "$N" ||
	e2e_die "detach: $(t_tail "$T/curl.err")"
rmdir "${MS[@]}"
echo
printf '  %-40s %6s %8s %8s %8s\n' "" n p50 p99 max
row "detach, $N to 0 held" "$T/detach"

jq -n --arg n "$N" --arg att "$(ms_list "$T/attach")" --arg det "$(ms_list "$T/detach")" \
	--arg catt "$(ms_list "$T/cli-attach")" --arg cdet "$(ms_list "$T/cli-detach")" \
	--arg m0 "${MEM0[*]}" --arg m1 "${MEM1[*]}" --arg mn "${MEMN[*]}" --arg lb "$LINK_B" \
	--arg rss "$rss_kib" --arg idle "$idle_ms" --argjson extra "{${SEND_JSON%,}${ST:+,${ST%,}}}" '
	def nums: split("\n") | map(select(. != "") | tonumber);
	def words: split(" ") | map(select(. != "") | tonumber);
	def pct(p): sort | .[((length * p + 0.5) | floor) - 1];
	def kmem: words | {map_bytes: .[0], maps: .[1], links: .[2], progs: .[3],
		socket_bytes: .[4], sockets: .[5]};
	{bench: "daemon", attachments: ($n | tonumber),
	 attach_ms: ($att | nums), detach_ms: ($det | nums),
	 attach_p50_ms: ($att | nums | pct(0.5)), attach_p99_ms: ($att | nums | pct(0.99)),
	 detach_p50_ms: ($det | nums | pct(0.5)), detach_p99_ms: ($det | nums | pct(0.99)),
	 cli_attach_ms: ($catt | nums), cli_detach_ms: ($cdet | nums),
	 kernel: {none: ($m0 | kmem), one: ($m1 | kmem), all: ($mn | kmem),
		  link_bytes: ($lb | tonumber)},
	 daemon_rss_kib: ($rss | tonumber), idle_cpu_ms_per_s: ($idle | tonumber),
	 send_median_ns: ($extra | del(.startup_ms) | map_values(map_values(words))),
	 startup_ms: ($extra.startup_ms // null | if . then map_values(words) else null end)}' \
	>"$RESULTS/daemon.json" || e2e_die "cannot write daemon.json"
echo "(JSON: bench/results/daemon.json)"
