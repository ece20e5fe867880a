#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# weir daemon: how long attaching one more cgroup takes, and detaching it.
# N (default 500) cgroups, each attached then detached through the API
# (curl --unix-socket, time_total: the request as the daemon serves it, not
# curl's own start-up); p50 and p99 of each. Private network and mount
# namespaces, a daemon of its own (own socket, state dir, pin root).
#
#   WEIR_BUILD=/abs/build bash bench/attach.sh [N]      (root)
E2E_NAME=bench-attach
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init
N=${1:-500}
T=$E2E_TMP
SOCK=$T/weir.sock
PINS=/sys/fs/bpf/weir-bench-$$
CGP=$CG2/weir-bench-$$
DPID=

bench_cleanup() {
	[ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && e2e_wait_gone "$DPID" 50
	[ -d "$CGP" ] && find "$CGP" -depth -type d -exec rmdir {} + 2>/dev/null
	[ -d "$PINS" ] && rm -rf "$PINS"
	e2e_cleanup
}
trap bench_cleanup EXIT

ip link set lo up
mkdir -p "$T/policies" "$CGP"
printf 'version: 1\nloopback: deny\ndns:\n  upstream: [127.0.0.53]\nallow:\n  - cidr: 192.0.2.0/24\n    ports: [443]\n' \
	>"$T/policies/p.yaml"
"$WEIR" daemon --socket "$SOCK" --policy-dir "$T/policies" --state-dir "$T/state" \
	--pin-root "$PINS" --detach-on-exit 2>"$T/daemon.err" &
DPID=$!
for ((i = 0; i < 200; i++)); do
	curl -sf --unix-socket "$SOCK" http://weir/v1/health >/dev/null 2>&1 && break
	sleep 0.05
done
for ((i = 0; i < N; i++)); do
	mkdir "$CGP/c$i"
	curl -sS --unix-socket "$SOCK" -o /dev/null -w '%{http_code} %{time_total}\n' \
		-H 'Content-Type: application/json' \
		--data "{\"cgroup\":\"$CGP/c$i\",\"policy\":\"p\"}" http://weir/v1/attachments >>"$T/attach"
	curl -sS --unix-socket "$SOCK" -o /dev/null -w '%{http_code} %{time_total}\n' \
		-H 'Content-Type: application/json' \
		--data "{\"cgroup\":\"$CGP/c$i\"}" http://weir/v1/detach >>"$T/detach"
	rmdir "$CGP/c$i"
done
# Then N at once, each with a policy of its own, held together.
for ((i = 0; i < N; i++)); do
	printf 'version: 1\nloopback: deny\ndns:\n  upstream: [127.0.0.53]\nallow:\n  - cidr: 198.51.100.%d/32\n    ports: [%d]\n' \
		$((i % 250)) $((1000 + i)) >"$T/policies/q$i.yaml"
done
curl -sS --unix-socket "$SOCK" -o /dev/null -X POST http://weir/v1/reload
for ((i = 0; i < N; i++)); do
	mkdir "$CGP/h$i"
	curl -sS --unix-socket "$SOCK" -o /dev/null -w '%{http_code} %{time_total}\n' \
		-H 'Content-Type: application/json' \
		--data "{\"cgroup\":\"$CGP/h$i\",\"policy\":\"q$i\"}" http://weir/v1/attachments >>"$T/held"
done
held=$(curl -sS --unix-socket "$SOCK" http://weir/v1/attachments | jq '.attachments | length')
echo "held at once: $held attachments, distinct policies; daemon threads: $(ls /proc/"$DPID"/task | wc -l)," \
	"RSS $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' /proc/"$DPID"/status)"
# What 500 idle attachments cost: the daemon's CPU over 5 s of nothing.
cpu() { awk '{ print $14 + $15 }' "/proc/$DPID/stat"; }
c0=$(cpu)
sleep 5
echo "idle with $held attachments: $(( ($(cpu) - c0) * 1000 / $(getconf CLK_TCK) / 5 )) ms CPU per second"
stats() { # FILE WHAT
	awk -v what="$2" '$1 >= 300 { bad++ } { print $2 * 1000 }
		END { if (bad) printf "%d failed\n", bad > "/dev/stderr" }' "$1" | sort -n |
		awk -v what="$2" '{ v[NR] = $1 } END {
			printf "%s: n=%d p50=%.1f ms p99=%.1f ms max=%.1f ms\n", what, NR,
				v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)], v[NR] }'
}
stats "$T/attach" attach
stats "$T/detach" detach
stats "$T/held" "attach, up to $N held"
