#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# A job of tests/action/run.sh with dockerd's socket there, as on GitHub's
# runners: CMD runs in a mount namespace of its own whose /run (and so
# /var/run) is an overlay, this machine's /run below and a tmpfs above, with
# a stand-in for dockerd (tests/action/dockerd-standin.py) listening on
# /run/docker.sock. Nothing is written to this machine's /run, and the
# namespace's mounts go with its last process.
#
#   dockerns.sh DIR LOG SECONDS CMD...
#     DIR      an empty directory for the tmpfs
#     LOG      where the stand-in writes a line per request
#     SECONDS  how long the stand-in serves (it stops by itself)
set -u
dir=$1 log=$2 secs=$3
shift 3
if [ "${WEIR_DOCKERNS_IN:-}" != 1 ]; then
	export WEIR_DOCKERNS_IN=1
	exec unshare --mount --propagation private -- bash "$0" "$dir" "$log" "$secs" "$@"
fi
unset WEIR_DOCKERNS_IN
mount -t tmpfs -o mode=700 weir-docker "$dir" && mkdir "$dir/up" "$dir/work" &&
	mount -t overlay weir-docker -o "lowerdir=/run,upperdir=$dir/up,workdir=$dir/work" /run ||
	{ echo "dockerns: cannot put an overlay on /run in this mount namespace" >&2; exit 98; }
[ -e /run/docker.sock ] && { echo "dockerns: /run/docker.sock is already there" >&2; exit 98; }
: >"$log"
python3 "$(dirname "$0")/dockerd-standin.py" /run/docker.sock "$log" "$secs" >"$dir/standin.out" 2>&1 &
srv=$!
for ((i = 0; i < 50; i++)); do
	grep -qs '^ready$' "$dir/standin.out" && break
	sleep 0.1
done
[ -S /run/docker.sock ] || { echo "dockerns: the stand-in did not start: $(cat "$dir/standin.out")" >&2; exit 98; }
"$@"
rc=$?
kill "$srv" 2>/dev/null
exit $rc
