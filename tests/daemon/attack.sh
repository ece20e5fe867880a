#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 6, weir daemon under attack: what a process inside an enforced
# cgroup, a local user, or a careless operator could do to the daemon, each
# tried for real (real cgroups, real sockets, a sink that logs what arrives)
# and checked to change nothing.
#
#   WEIR_BUILD=/abs/build bash tests/daemon/attack.sh      (root)
#
# Its own daemon: --socket, --state-dir, --policy-dir in the test's temp
# dir, --pin-root /sys/fs/bpf/weir-datk-PID, cgroups below
# <cgroup2>/weir-datk-PID. Only those are ever removed.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=daemon-attack
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

# shellcheck source=tests/daemon/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
d_init datk
D_START_SECS=20
D_API_SECS=5

LOG=$T/sink.log
NOBODY=65534
AS_NOBODY=(setpriv --reuid "$NOBODY" --regid "$NOBODY" --clear-groups)

# write_policy FILE ALLOWED-IP: a policy allowing ALLOWED-IP:80 only.
write_policy() {
	cat >"$1" <<-EOF
		version: 1
		loopback: deny
		allow:
		  - ip: $2
		    ports: [80]
	EOF
}

setup() {
	e2e_setup_lo 192.0.2.10/32 192.0.2.99/32
	e2e_start_sink sink "$LOG" 192.0.2.10:80 192.0.2.99:80
	e2e_start_dns a.test,192.0.2.10
	mkdir -p "$PDIR" "$CGP" || e2e_die "cannot make $PDIR or $CGP"
	write_policy "$PDIR/alpha.yaml" 192.0.2.10
	cat >"$PDIR/named.yaml" <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: a.test
		    ports: [80]
	EOF
	start_daemon
}

# A cgroup below a delegated one (a user owns its parent's cgroup.procs):
# the user's processes inside could write themselves into a sibling the
# user makes, out of enforcement. The daemon refuses such a target; the
# delegated cgroup itself may be attached (its children stay below it).
test_a_cgroup_below_a_delegated_one_is_refused() {
	local dg=$CGP/deleg cg=$CGP/deleg/inner
	t_begin "attach below a delegated cgroup: refused; the delegated one itself: a move to a sibling stays enforced"
	mkdir -p "$cg"
	chown "$NOBODY:$NOBODY" "$dg" "$dg/cgroup.procs" "$dg/cgroup.subtree_control"
	attach "$cg" alpha >/dev/null
	[ "$CODE" = 403 ] || t_why "below a delegated cgroup: HTTP $CODE, want 403"
	grep -q delegated "$T/api.out" || t_why "the error: $(cat "$T/api.out")"
	if [ "$CODE" = 201 ]; then # what the user's process would do
		api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	fi
	attach "$dg" alpha >/dev/null
	[ "$CODE" = 201 ] || t_why "the delegated cgroup itself: HTTP $CODE $(cat "$T/api.out")"
	# nobody, inside, makes a sibling and moves there: still below the attachment
	"${AS_NOBODY[@]}" mkdir "$dg/sib" 2>/dev/null
	local got moved
	# (the probe itself runs as root there: build/ may be in a 0700 checkout)
	moved=$(in_cg "$dg" "${AS_NOBODY[@]}" sh -c 'echo $$ >"$1/cgroup.procs" && echo moved' \
		sh "$dg/sib" 2>&1)
	[ "$moved" = moved ] || t_why "nobody could not move to its own sibling: $moved"
	got=$(in_cg "$dg/sib" "$NETPROBE" tcp 192.0.2.99 80 weir-deleg 2>/dev/null)
	[ "$got" = EPERM ] || t_why "in a sibling under the attachment: $got, want EPERM"
	grep -q " weir-deleg$" "$LOG" && t_why "192.0.2.99 was reached"
	api POST /v1/detach "{\"cgroup\":\"$dg\"}" >/dev/null
	t_end
}

# A careless operator attaches a policy file its user can write: the user
# (whose processes are in the cgroup) would rewrite it and wait for any
# reload. The daemon refuses such a file.
test_user_writable_policy_file_is_refused() {
	local d=$T/userpol cg=$CGP/userpol
	t_begin "attach with a policy file a user owns (or in a dir a user owns): 400, nothing attached"
	mkdir -p "$d" "$cg"
	write_policy "$d/p.yaml" 192.0.2.10
	chown -R "$NOBODY:$NOBODY" "$d"
	attach "$cg" "$d/p.yaml" >/dev/null
	[ "$CODE" = 400 ] || t_why "user-owned file: HTTP $CODE, want 400"
	grep -q 'owned by uid\|writable' "$T/api.out" || t_why "the error: $(cat "$T/api.out")"
	local code=$CODE
	api POST /v1/reload >/dev/null
	grep -q "$d/p.yaml" "$T/api.out" && t_why "the refused file stays a policy of the daemon: $(cat "$T/api.out")"
	CODE=$code
	if [ "$CODE" = 201 ]; then # what the user does with it
		"${AS_NOBODY[@]}" sh -c 'cat >"$0.tmp" && mv "$0.tmp" "$0"' "$d/p.yaml" <<-EOF
			version: 1
			allow:
			  - ip: 192.0.2.99
			    ports: [80]
		EOF
		api POST /v1/reload >/dev/null
		[ "$(probe "$cg" 192.0.2.99)" = EPERM ] ||
			t_why "the user rewrote the policy of its own cgroup: 192.0.2.99 reached"
		api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	fi
	# root's file in a directory nobody owns: nobody could swap it
	chown root:root "$d/p.yaml"
	attach "$cg" "$d/p.yaml" >/dev/null
	[ "$CODE" = 400 ] || t_why "root's file in nobody's directory: HTTP $CODE, want 400"
	[ "$CODE" = 201 ] && api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	t_end
}

# A file that was root's when attached and is given away later: a reload
# keeps the version in force and says why.
test_policy_file_given_away_later_keeps_the_old_version() {
	local d=$T/rootpol cg=$CGP/givenaway
	t_begin "a policy file chowned to a user after attach: the user's rewrite is not loaded"
	mkdir -p "$d" "$cg"
	write_policy "$d/p.yaml" 192.0.2.10
	attach "$cg" "$d/p.yaml" >/dev/null
	[ "$CODE" = 201 ] || t_why "attach of root's file: HTTP $CODE $(cat "$T/api.out")"
	chown "$NOBODY" "$d/p.yaml"
	"${AS_NOBODY[@]}" sh -c 'cat >"$0"' "$d/p.yaml" <<-EOF
		version: 1
		allow:
		  - ip: 192.0.2.99
		    ports: [80]
	EOF
	api POST /v1/reload >/dev/null
	[ "$(probe "$cg" 192.0.2.99)" = EPERM ] ||
		t_why "the user's version of the policy is in force: 192.0.2.99 reached"
	[ "$(probe "$cg" 192.0.2.10)" = ok ] || t_why "the old version is not in force"
	api GET /v1/attachments >"$T/ps.json"
	jq -e --arg cg "$cg" '.attachments[] | select(.cgroup == $cg) |
		.state | test("policy error: .*owned by uid 65534")' "$T/ps.json" >/dev/null ||
		t_why "its state does not say why: $(jq -c '.attachments' "$T/ps.json" | cut -c1-300)"
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	t_end
}

# A FIFO where a policy file is expected: opening it would block the thread
# holding the daemon's lock, and with it every attach (every weir run and
# container start) and the event stream.
test_fifo_policy_does_not_stall_the_daemon() {
	local cg=$CGP/fifo
	t_begin "a FIFO as a policy (by path, and in the policy dir): refused, the daemon keeps answering"
	mkdir -p "$cg"
	mkfifo "$T/fifo.yaml" "$PDIR/fifo.yaml"
	attach "$cg" "$T/fifo.yaml" >/dev/null
	[ "$CODE" = 400 ] || t_why "attach with a FIFO: HTTP $CODE, want 400"
	api POST /v1/reload >/dev/null
	[ "$CODE" = 200 ] || t_why "reload with a FIFO in the policy dir: HTTP $CODE"
	sleep 0.2 # inotify's rescan too
	api GET /v1/health >/dev/null
	[ "$CODE" = 200 ] || t_why "health after the FIFO: HTTP $CODE (the daemon is stuck)"
	attach "$cg" alpha >/dev/null
	[ "$CODE" = 201 ] || t_why "attach after the FIFO: HTTP $CODE"
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	rm -f "$T/fifo.yaml" "$PDIR/fifo.yaml"
	t_end
}

# The netns of an attach (the API's "netns", weir nri's from the runtime's
# message, the state file's at adoption) that is not a network namespace:
# a FIFO there blocked the open, under the daemon's lock, for good; a
# regular file failed later with a message about the policy.
test_netns_that_is_a_fifo_or_a_file_is_refused() {
	local cg=$CGP/nsfifo
	t_begin "a netns path that is a FIFO, a regular file or another namespace: 400 saying so; a real one binds, the daemon keeps answering"
	mkdir -p "$cg"
	mkfifo "$T/ns.fifo"
	: >"$T/ns.file"
	api POST /v1/attachments "{\"cgroup\":\"$cg\",\"policy\":\"alpha\",\"netns\":\"$T/ns.fifo\"}" \
		>"$T/nsfifo.out"
	[ "$CODE" = 400 ] || t_why "attach with a FIFO as netns: HTTP $CODE, want 400"
	grep -q 'not a network namespace' "$T/nsfifo.out" ||
		t_why "the FIFO's error does not say why: $(head -c 300 "$T/nsfifo.out")"
	api POST /v1/attachments "{\"cgroup\":\"$cg\",\"policy\":\"alpha\",\"netns\":\"$T/ns.file\"}" \
		>"$T/nsfile.out"
	[ "$CODE" = 400 ] || t_why "attach with a regular file as netns: HTTP $CODE, want 400"
	grep -q 'not a network namespace' "$T/nsfile.out" ||
		t_why "the file's error does not say why: $(head -c 300 "$T/nsfile.out")"
	api POST /v1/attachments "{\"cgroup\":\"$cg\",\"policy\":\"alpha\",\"netns\":\"/proc/$$/ns/mnt\"}" \
		>/dev/null
	[ "$CODE" = 400 ] || t_why "attach with a mount namespace as netns: HTTP $CODE, want 400"
	api GET /v1/health >/dev/null
	[ "$CODE" = 200 ] || t_why "health after the FIFO: HTTP $CODE (the daemon is stuck)"
	api POST /v1/attachments "{\"cgroup\":\"$cg\",\"policy\":\"alpha\",\"netns\":\"/proc/$$/ns/net\"}" \
		>/dev/null
	[ "$CODE" = 201 ] || t_why "attach with a real netns after the FIFO: HTTP $CODE"
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	rm -f "$T/ns.fifo" "$T/ns.file"
	t_end
}

# --detach-on-exit is for SIGTERM/SIGINT. A daemon restarted after a crash
# adopts the pinned attachments, then may fail to start its API (here: a
# user holds the metrics port first); it must exit leaving them enforced,
# not detach what it adopted on its way out.
test_a_failed_restart_with_detach_on_exit_keeps_enforcing() {
	local d=$T/dx cg=$CGP/dx pins=/sys/fs/bpf/weir-datk-$$-dx port=9163 a b holder i rc got
	t_begin "--detach-on-exit, kill -9, a restart whose API fails (a user took its port): still enforced"
	mkdir -p "$d/state" "$cg"
	local args=(daemon --socket "$d/s" --policy-dir "$PDIR" --state-dir "$d/state"
		--pin-root "$pins" --detach-on-exit --metrics "127.0.0.1:$port")
	"$WEIR" "${args[@]}" >>"$d/a.out" 2>&1 &
	a=$!
	disown "$a"
	for ((i = 0; i < 400; i++)); do
		curl -sf --max-time 1 --unix-socket "$d/s" http://weir/v1/health >/dev/null 2>&1 &&
			break
		sleep 0.05
	done
	curl -sS --max-time 5 --unix-socket "$d/s" -o /dev/null -w '%{http_code}' \
		-H 'Content-Type: application/json' -X POST \
		--data "{\"cgroup\":\"$cg\",\"policy\":\"alpha\"}" http://weir/v1/attachments \
		>"$d/code" 2>/dev/null
	[ "$(cat "$d/code")" = 201 ] || t_why "attach with the first daemon: HTTP $(cat "$d/code")"
	kill -KILL "$a" 2>/dev/null
	e2e_wait_gone "$a" 30
	"${AS_NOBODY[@]}" /usr/bin/python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(30)' "$port" &
	holder=$!
	sleep 0.3
	timeout 20 "$WEIR" "${args[@]}" >>"$d/b.out" 2>&1 &
	b=$!
	wait "$b"
	rc=$?
	[ "$rc" != 0 ] || t_why "the second daemon started although its port was taken"
	got=$(in_cg "$cg" "$NETPROBE" tcp 192.0.2.99 80 weir-dx 2>/dev/null)
	[ "$got" = EPERM ] || t_why "after the failed restart: $got to 192.0.2.99, want EPERM"
	grep -q " weir-dx$" "$LOG" && t_why "192.0.2.99 was reached"
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	"$WEIR" cleanup --pin-root "$pins" >/dev/null 2>&1
	rm -rf "$pins"
	t_end
}

# An unprivileged process in the cgroup when it is attached (the one whose
# view of /etc the daemon takes) makes a user and mount namespace of its
# own after the attach, and mounts an /etc/hosts naming an allowed name at
# an address of its choosing (and an nsswitch.conf that makes weir honour
# /etc/hosts). The daemon must not read it again at the next reload.
test_hosts_file_of_a_process_inside_is_not_reread() {
	local cg=$CGP/hosts pid i
	t_begin "a process inside mounts its own /etc/hosts after the attach: a reload, a restart do not allow its address"
	mkdir -p "$cg" "$T/evil"
	chmod 755 "$T/evil"
	printf '192.0.2.99 a.test\n' >"$T/evil/hosts"
	printf 'hosts: files resolve dns\n' >"$T/evil/nsswitch.conf"
	# the attacker: alone in the cgroup when it is attached, nobody
	"${IN_CG[@]}" "$cg" "${AS_NOBODY[@]}" sh -c '
		while [ ! -e "$0/go" ]; do sleep 0.05; done
		exec unshare -Urm sh -c "mount --bind $0/evil/hosts /etc/hosts &&
			mount --bind $0/evil/nsswitch.conf /etc/nsswitch.conf;
			exec sleep 60"' "$T" &
	pid=$!
	sleep 0.2
	attach "$cg" named >/dev/null
	[ "$CODE" = 201 ] || t_why "attach: HTTP $CODE $(cat "$T/api.out")"
	touch "$T/go"
	for ((i = 0; i < 50; i++)); do
		grep -qs 192.0.2.99 "/proc/$pid/root/etc/hosts" && break
		sleep 0.1
	done
	grep -qs 192.0.2.99 "/proc/$pid/root/etc/hosts" || t_why "the attacker's mount did not happen"
	[ "$(probe "$cg" 192.0.2.10)" = EPERM ] || t_why "sanity: 192.0.2.10 before any lookup"
	printf '# an operator edit\n' >>"$PDIR/named.yaml" # a reload, from inotify
	api POST /v1/reload >/dev/null
	[ "$(probe "$cg" 192.0.2.99)" = EPERM ] ||
		t_why "192.0.2.99, the attacker's address for a.test, reached from inside"
	# a restarted daemon adopts the cgroup with the view it had
	kill -KILL "$DPID"
	e2e_wait_gone "$DPID" 30
	start_daemon
	[ "$(probe "$cg" 192.0.2.99)" = EPERM ] ||
		t_why "after a restart and adoption: 192.0.2.99 reached from inside"
	kill "$pid" 2>/dev/null
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	t_end
}

# A workload that is in its cgroup when it is attached puts FIFOs where
# the daemon reads the cgroup's resolv.conf, hosts and nsswitch.conf: the
# attach must neither hang (and the whole daemon with it) nor fail.
test_fifos_in_a_cgroups_etc_do_not_stall_the_daemon() {
	local cg=$CGP/fifoetc pid i
	t_begin "FIFOs as the cgroup's /etc/resolv.conf, hosts, nsswitch.conf: the attach answers"
	mkdir -p "$cg" "$T/fifoetc"
	chmod 755 "$T/fifoetc"
	mkfifo "$T/fifoetc/resolv.conf" "$T/fifoetc/hosts" "$T/fifoetc/nsswitch.conf"
	# a container's: a mount namespace root made, its process nobody
	"${IN_CG[@]}" "$cg" unshare -m sh -c '
		for f in resolv.conf hosts nsswitch.conf; do
			mount --bind "$0/$f" "/etc/$f" || exit 1
		done
		exec "$@"' "$T/fifoetc" "${AS_NOBODY[@]}" sleep 60 &
	pid=$!
	for ((i = 0; i < 50; i++)); do
		[ -p "/proc/$pid/root/etc/hosts" ] && break
		sleep 0.1
	done
	[ -p "/proc/$pid/root/etc/hosts" ] || t_why "the FIFOs were not mounted"
	attach "$cg" alpha >/dev/null
	[ "$CODE" = 201 ] || t_why "attach: HTTP $CODE (want 201 at once) $(cat "$T/api.out")"
	api GET /v1/health >/dev/null
	[ "$CODE" = 200 ] || t_why "health after the attach: HTTP $CODE (the daemon is stuck)"
	[ "$(probe "$cg" 192.0.2.99)" = EPERM ] || t_why "the cgroup is not enforced"
	kill "$pid" 2>/dev/null
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	t_end
}

# An unprivileged process in the cgroup when it is attached makes a user
# and mount namespace of its own first and mounts a resolv.conf naming a
# nameserver it runs (here 127.0.0.54, answering a.test with 192.0.2.99):
# the daemon must not take that process's view for the cgroup's upstreams.
test_user_made_namespaces_do_not_choose_the_upstream() {
	local cg=$CGP/upstream pid i got
	t_begin "a process inside at attach, in a user namespace with its own resolv.conf: not the cgroup's upstream"
	mkdir -p "$cg" "$T/evilns"
	chmod 755 "$T/evilns"
	printf 'nameserver 127.0.0.54\n' >"$T/evilns/resolv.conf"
	/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null --listen-address=127.0.0.54 \
		--bind-interfaces --port=53 --no-resolv --no-hosts --user=root --group=root \
		--pid-file="$T/evil-dnsmasq.pid" --host-record=a.test,192.0.2.99 \
		>"$T/evil-dnsmasq.out" 2>&1 &
	E2E_PIDS+=("$!")
	"${IN_CG[@]}" "$cg" "${AS_NOBODY[@]}" unshare -Urm sh -c '
		mount --bind "$0/resolv.conf" /etc/resolv.conf && exec sleep 60' "$T/evilns" &
	pid=$!
	for ((i = 0; i < 50; i++)); do
		grep -qs 127.0.0.54 "/proc/$pid/root/etc/resolv.conf" && break
		sleep 0.1
	done
	grep -qs 127.0.0.54 "/proc/$pid/root/etc/resolv.conf" || t_why "the attacker's mount did not happen"
	attach "$cg" named >/dev/null
	[ "$CODE" = 201 ] || t_why "attach: HTTP $CODE $(cat "$T/api.out")"
	got=$(in_cg "$cg" dig +time=2 +tries=1 +short @127.0.0.53 a.test 2>&1)
	[ "$got" = 192.0.2.99 ] && t_why "a.test answered by the attacker's nameserver"
	[ "$(probe "$cg" 192.0.2.99)" = EPERM ] ||
		t_why "192.0.2.99, the attacker's address for a.test, reached from inside"
	kill "$pid" 2>/dev/null
	api POST /v1/detach "{\"cgroup\":\"$cg\"}" >/dev/null
	t_end
}

# A user (or a command weir ran, leaving WEIR_SOCKET for the next sudo -E)
# serves a socket of its own where root's client looks for the daemon: the
# client must not believe what it says (that a cgroup is enforced).
test_a_users_fake_daemon_is_not_believed() {
	local fake=$T/fake/weir.sock i
	t_begin "a server run by a user at the socket path: the clients refuse it (not root)"
	mkdir -p "$T/fake"
	chown "$NOBODY" "$T/fake"
	"${AS_NOBODY[@]}" /usr/bin/python3 -c '
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200, b"{\"attachments\":[]}\n")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply(201, b"{\"cgroup\":\"/x\",\"cgroup_id\":1,\"label\":\"x\",\"policy\":\"alpha\",\"generation\":1,\"allowed\":0,\"denied\":0,\"would_deny\":0,\"dns_port\":53,\"state\":\"ok\"}\n")
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    def get_request(self):
        c, _ = self.socket.accept()
        return c, ("fake", 0)
S(sys.argv[1], H).serve_forever()' "$fake" &
	E2E_PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		[ -S "$fake" ] && break
		sleep 0.1
	done
	[ -S "$fake" ] || t_why "the fake daemon did not start"
	run_cmd "$WEIR" attach --socket "$fake" --policy alpha "$CGP"
	x_rc 1
	x_err_has 'runs as uid 65534, not root'
	run_cmd env WEIR_SOCKET="$fake" "$WEIR" ps
	x_rc 1
	x_err_has 'not root'
	t_end
}

# weir run through the daemon keeps a connection to it (the session's
# stream) while it starts the command; the daemon takes whoever holds it
# for weir run (root, outside): the command must not inherit it.
test_weir_run_command_inherits_no_daemon_connection() {
	t_begin "weir run through the daemon: the command holds no socket to the daemon"
	write_policy "$T/run.yaml" 192.0.2.10
	# sockets the command holds that are connected to the daemon's socket:
	# their peers (ss) are the daemon's accepted ends of $SOCK
	run_cmd "$WEIR" run --socket "$SOCK" --user nobody --policy "$T/run.yaml" -- \
		sh -c 'sleep 0.3; ls -l /proc/$$/fd/ | sed -n "s/.*socket:\[\([0-9]*\)\]/\1/p"'
	for ino in $(cat "$OUT"); do
		ss -xp 2>/dev/null | awk -v i="$ino" '$6 == i || $8 == i' | grep -q "$SOCK" &&
			t_why "the command holds socket $ino, connected to the daemon"
	done
	cp "$OUT" "$T/fds.txt"
	run_cmd "$WEIR" run --socket "$SOCK" --user nobody --policy "$T/run.yaml" -- \
		sh -c 'cat /proc/$$/cgroup'
	grep -q "^0::/" "$OUT" || t_why "no cgroup line: $(cat "$OUT")"
	t_end
}

# A careless operator gives a state dir another user can write (made by
# that user, or under its directory): the state files say what a restarted
# daemon adopts, with which policy, nameservers and hosts. Refused.
test_a_state_dir_a_user_can_write_is_refused() {
	local st=$T/userstate sock2=$T/weir2.sock pins2=$PINS-2 pid i
	t_begin "weir daemon with a state dir a user owns: refuses to start, says why"
	mkdir -p "$st"
	chown "$NOBODY" "$st"
	"$WEIR" daemon --socket "$sock2" --policy-dir "$PDIR" --state-dir "$st" \
		--pin-root "$pins2" >"$T/daemon2.out" 2>"$T/daemon2.err" &
	pid=$!
	for ((i = 0; i < 50; i++)); do
		e2e_dead "$pid" && break
		curl -sf --max-time 1 --unix-socket "$sock2" http://weir/v1/health >/dev/null 2>&1 &&
			break
		sleep 0.1
	done
	if ! e2e_dead "$pid"; then
		t_why "it started on $st (owned by uid $NOBODY)"
		kill -TERM "$pid"
		e2e_wait_gone "$pid" 50 || kill -KILL "$pid"
	fi
	wait "$pid" 2>/dev/null
	grep -q "state dir: .*writable by uid $NOBODY" "$T/daemon2.err" ||
		t_why "no reason given: $(t_tail "$T/daemon2.err")"
	[ -d "$pins2" ] && rm -rf "$pins2"
	t_end
}

# A cgroup's name may hold any byte but '/', and it is the default label:
# bytes that are not UTF-8 (or a carriage return) in a label make
# Prometheus refuse the whole page, every other attachment's denials with it.
test_a_cgroup_name_that_is_not_utf8_keeps_metrics_valid() {
	local cg=$CGP/$'bad\xff\xc3(name'
	t_begin "metrics: a cgroup named with bytes that are not UTF-8: the page stays UTF-8 text"
	mkdir -p "$cg"
	printf '{"cgroup":"%s","policy":"alpha"}' "$cg" >"$T/bad.json"
	curl -sS --max-time 5 --unix-socket "$SOCK" -o "$T/bad.out" -X POST \
		-H 'Content-Type: application/json' --data-binary @"$T/bad.json" http://weir/v1/attachments
	api GET /metrics >"$T/metrics.bad"
	grep -q 'unit="bad' "$T/metrics.bad" || t_why "not attached: $(cat "$T/bad.out")"
	iconv -f UTF-8 -t UTF-8 "$T/metrics.bad" >/dev/null 2>&1 || t_why "the page is not UTF-8"
	printf '{"cgroup":"%s"}' "$cg" >"$T/bad.json"
	curl -sS --max-time 5 --unix-socket "$SOCK" -o /dev/null -X POST \
		--data-binary @"$T/bad.json" http://weir/v1/detach
	rmdir "$cg"
	t_end
}

setup
test_a_cgroup_name_that_is_not_utf8_keeps_metrics_valid
test_a_cgroup_below_a_delegated_one_is_refused
test_a_state_dir_a_user_can_write_is_refused
test_weir_run_command_inherits_no_daemon_connection
test_a_users_fake_daemon_is_not_believed
test_user_made_namespaces_do_not_choose_the_upstream
test_fifos_in_a_cgroups_etc_do_not_stall_the_daemon
test_hosts_file_of_a_process_inside_is_not_reread
test_user_writable_policy_file_is_refused
test_policy_file_given_away_later_keeps_the_old_version
test_fifo_policy_does_not_stall_the_daemon
test_netns_that_is_a_fifo_or_a_file_is_refused
test_a_failed_restart_with_detach_on_exit_keeps_enforcing
echo "$T_PASS passed, $T_FAIL failed"
((T_FAIL == 0))
