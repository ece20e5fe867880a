# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash disable=SC2034 # T, STANDALONE, POL: for the scripts that source this
#
# What the bench scripts share. Each sets E2E_NAME, sources this file and
# calls bench_enter "$@" first:
#
#   E2E_NAME=bench-x
#   # shellcheck source=bench/lib.sh
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   bench_enter "$@"
#
# bench_enter        the script again in private network and mount namespaces
#                    (tests/e2e/lib.sh: nothing leaves the machine, nothing
#                    outlives the run), the binaries ($WEIR, $WEIR_BUILD), a
#                    temp dir ($E2E_TMP, also $T) removed on exit, $RESULTS
#                    for the JSON, and STANDALONE
# STANDALONE         (--standalone) where weir run has it: a bench that times
#                    weir run times its own BPF load, even if a daemon answers
#                    on the default socket (bench/daemon.sh measures those)
# bench_need TOOL... $WEIR_BUILD/bin/TOOL, each, or the make target to build it
# bench_user_policy [ADDR/32...]
#                    lo with 192.0.2.10 (and ADDRs), dnsmasq on 127.0.0.53
#                    answering allowed.test with it, and POL: a user's policy
#                    file allowing that domain (so weir's resolver starts) and
#                    that address
# median [COLUMN]    the median of the numbers on stdin (COLUMN: of that
#                    whitespace-separated column)
# median_of "N N.."  the median of a list of numbers in one string
# bench_sub NAME     bench/NAME.sh, in namespaces of its own, or die

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.sh"

bench_enter() {
	e2e_enter_ns "$0" "$@"
	e2e_init
	T=$E2E_TMP
	RESULTS=$REPO_ROOT/bench/results
	mkdir -p "$RESULTS"
	STANDALONE=()
	"$WEIR" run --help 2>&1 | grep -q -- '--standalone' && STANDALONE=(--standalone)
	return 0
}

bench_need() {
	local b
	for b in "$@"; do
		[ -x "$WEIR_BUILD/bin/$b" ] || e2e_die "$WEIR_BUILD/bin/$b missing: make build/bin/$b"
	done
}

# shellcheck disable=SC2120 # its addresses are optional
bench_user_policy() {
	e2e_setup_lo 192.0.2.10/32 "$@"
	e2e_start_dns allowed.test,192.0.2.10
	POL=$(e2e_policy bench <<-POLICY
		version: 1
		allow:
		  - domain: allowed.test
		  - ip: 192.0.2.10
	POLICY
	)
}

median() {
	awk -v c="${1:-1}" '{ print $c }' | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

median_of() {
	tr ' ' '\n' <<<"$1" | grep . | median 1
}

bench_sub() {
	env -u WEIR_E2E_IN_NS WEIR_BUILD="$WEIR_BUILD" bash "$REPO_ROOT/bench/$1.sh" ||
		e2e_die "bench/$1.sh failed"
}
