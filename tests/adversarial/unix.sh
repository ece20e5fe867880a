#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Adversarial tier, issue 14's third way out: a command that may not send a
# DNS query asks a daemon outside its cgroup, over a unix socket, to reach
# the network for it. A real nscd from Debian (build/nscd, from `apt-get
# download nscd`: never installed, so no nscd of the machine's is started)
# runs outside weir's cgroup, inside this test's private mount and network
# namespaces, with the test's dnsmasq as its upstream; the private /run it
# gets hides the machine's own /run/nscd, if any. A lookup from inside
# through it must not reach dnsmasq. Then a docker.sock-like HTTP proxy on
# a unix socket, whose far side is a listener on the denied address.
#
# Needs the cgroup unix socket hooks (Linux 6.7+); without them every test
# says it is skipped and why (docs/policy.md, "Unix sockets").
#
#   WEIR_BUILD=/abs/build bash tests/adversarial/unix.sh      (root)

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=unix
# shellcheck source=tests/adversarial/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
adv_on_cleanup() { unest_cleanup; }
NSCD=$WEIR_BUILD/nscd/usr/sbin/nscd

# A /run of this namespace's own, empty: an nscd there is the test's, and
# the machine's own (if any) is hidden. Nothing of the machine's /run is
# bound into the temp dir, which the cleanup removes.
private_run() {
	mount -t tmpfs -o mode=755 weir-test-run /run || e2e_die "tmpfs on /run"
	mkdir -p /run/nscd
}

start_nscd() {
	cat >"$T/nscd.conf" <<-EOF
		debug-level 0
		paranoia no
		enable-cache passwd no
		enable-cache group no
		enable-cache netgroup no
		enable-cache services no
		enable-cache hosts yes
		positive-time-to-live hosts 60
		negative-time-to-live hosts 60
		persistent hosts no
		shared hosts no
	EOF
	"$NSCD" -F -f "$T/nscd.conf" >"$T/nscd.out" 2>&1 &
	E2E_PIDS+=("$!")
	adv_until 50 test -S /run/nscd/socket || e2e_die "nscd did not start: $(t_tail "$T/nscd.out")"
}

# A unix-socket front for a TCP peer, like docker.sock in front of a daemon
# that fetches what it is asked: the first line it gets goes to ADDR:PORT.
start_proxy() {
	local sock=$1
	python3 - "$sock" "$DENIED" "$PORT" >"$T/proxy.out" 2>&1 <<-'EOF' &
		import os, socket, sys
		path, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
		s = socket.socket(socket.AF_UNIX)
		s.bind(path)
		os.chmod(path, 0o666)
		s.listen(8)
		print("ready", flush=True)
		while True:
		    c, _ = s.accept()
		    try:  # a client gone before the answer is no reason to stop
		        line = c.makefile("rb").readline()
		        with socket.create_connection((host, port), timeout=2) as out:
		            out.sendall(line)
		        c.sendall(b"HTTP/1.0 200 OK\r\n\r\nrelayed\n")
		    except OSError:
		        pass
		    c.close()
	EOF
	E2E_PIDS+=("$!")
	adv_wait_ready "$T/proxy.out" "proxy on $sock"
}

setup() {
	adv_setup
	e2e_start_dns "allowed.test,$ALLOWED"
	[ -x "$NSCD" ] || e2e_die "$NSCD missing: make nscd (apt-get download nscd)"
	private_run
	start_nscd
	start_proxy /run/docker.sock
	POL=$(e2e_policy unix <<-EOF
		version: 1
		loopback: deny
		allow:
		  - domain: allowed.test
		    ports: [$PORT]
	EOF
	)
	# What nscd answers from outside, so that a miss inside is weir's.
	getent hosts "esc-nscd-outside-$$.test" >/dev/null
	grep -q "query\[A\] esc-nscd-outside-$$.test" "$T/dnsmasq.log" ||
		e2e_die "nscd does not reach dnsmasq from outside weir: $(t_tail "$T/dnsmasq.log")"
}

test_nscd() {
	local name=esc-nscd-$$.test
	run_weir -q -u nobody -p "$POL" -e "$T/ev-nscd" -- getent hosts "$name"
	t_begin "a lookup through nscd (outside the cgroup) from inside: refused, never reaches the upstream"
	[ "$RC" = 2 ] || t_why "getent exit status $RC, want 2 (not found): $(t_tail "$OUT")"
	x_not_arrived "$T/dnsmasq.log" "$name"
	# glibc asked nscd first: refused, and (like every lookup's) not reported
	x_json "$T/ev-nscd" 'all(.[]; .op != "unix-connect")'
	t_end
	# The same name, allowed: weir's resolver forwards it, nscd or not.
	run_weir -q -u nobody -p "$POL" -- getent hosts allowed.test
	t_begin "sanity: an allowed name still resolves inside (through weir's resolver)"
	x_rc 0
	x_file_has "$OUT" "^$ALLOWED "
	t_end
}

test_proxy() {
	run_weir -u nobody -p "$POL" -- curl -s --max-time 3 --unix-socket /run/docker.sock \
		-o /dev/null "http://docker/esc-proxy-builtin"
	t_begin "docker.sock-like proxy outside: denied by the built-in list, nothing relayed"
	x_rc 7
	x_err_has "denied unix stream connect to /run/docker.sock \(curl pid [0-9]+\): weir's built-in list"
	x_not_arrived "$LOG" "esc-proxy-builtin"
	t_end

	mkdir -p "$T/sock" && chmod 755 "$T/sock"
	start_proxy "$T/sock/proxy.sock"
	local pol
	pol=$(e2e_policy unix-own <<-EOF
		version: 1
		loopback: deny
		unix:
		  deny: ["$T/sock/*"]
		  allow: [/run/docker.sock]
	EOF
	)
	run_weir -u nobody -p "$pol" -- curl -s --max-time 3 --unix-socket "$T/sock/proxy.sock" \
		-o /dev/null "http://x/esc-proxy-policy"
	t_begin "a proxy under a denied prefix (unix.deny: DIR/*): denied, nothing relayed"
	x_rc 7
	x_err_has "denied unix stream connect to $T/sock/proxy.sock \(curl pid [0-9]+\) \[rule "
	x_not_arrived "$LOG" "esc-proxy-policy"
	t_end
	run_weir -q -u nobody -p "$pol" -- curl -s --max-time 3 --unix-socket /run/docker.sock \
		"http://docker/esc-proxy-allowed"
	t_begin "sanity: unix.allow overrides the built-in list (the proxy relays)"
	x_rc 0
	x_arrived "$LOG" "esc-proxy-allowed"
	t_end
}

# An abstract name (no file: only the name) and a datagram sendto().
# R8-2: nss-mdns asks avahi-daemon over its socket ("RESOLVE-HOSTNAME-IPV4
# NAME"), and avahi multicasts the name on every link, .local or not; CUPS
# connects to a device URI its client gives. Stand-ins at their paths (in
# this test's private /run) relay what they get to the denied address.
test_avahi_cups() {
	mkdir -p /run/avahi-daemon /run/cups
	start_proxy /run/avahi-daemon/socket
	run_weir -q -u nobody -p "$POL" -e "$T/ev-avahi" -- python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    s.sendall(b"RESOLVE-HOSTNAME-IPV4 esc-avahi-" + sys.argv[2].encode() + b".exfil.test\n")
    print("connected")
except OSError as e:
    print(e.strerror)' /run/avahi-daemon/socket "$$"
	t_begin "an avahi-like resolver socket (nss-mdns) outside: refused, unreported like nscd, nothing relayed"
	x_file_has "$OUT" '^Operation not permitted$'
	x_not_arrived "$LOG" "esc-avahi-"
	x_json "$T/ev-avahi" 'all(.[]; .op != "unix-connect")'
	t_end
	start_proxy /run/cups/cups.sock
	run_weir -u nobody -p "$POL" -- curl -s --max-time 3 --unix-socket /run/cups/cups.sock \
		-o /dev/null "http://cups/esc-cups-$$"
	t_begin "a CUPS-like socket outside: denied by the built-in list, nothing relayed"
	x_rc 7
	x_err_has "denied unix stream connect to /run/cups/cups.sock \(curl pid [0-9]+\): weir's built-in list"
	x_not_arrived "$LOG" "esc-cups-"
	t_end
}

test_abstract_and_dgram() {
	local pol
	pol=$(e2e_policy unix-abs <<-EOF
		version: 1
		unix:
		  deny: ["@esc-abstract*", /run/esc-dgram.sock]
	EOF
	)
	: >"$T/abs.log"
	python3 - "$T/abs.log" <<-'EOF' &
		import socket, sys, time
		log = open(sys.argv[1], "a")
		a = socket.socket(socket.AF_UNIX)
		a.bind("\0esc-abstract-1")
		a.listen(4)
		d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		d.bind("/run/esc-dgram.sock")
		import os; os.chmod("/run/esc-dgram.sock", 0o666)
		a.settimeout(0.1); d.settimeout(0.1)
		end = time.time() + 15
		while time.time() < end:
		    for s in (a, d):
		        try:
		            if s is a:
		                c, _ = a.accept(); log.write("abstract " + c.recv(64).decode() + "\n")
		            else:
		                log.write("dgram " + d.recv(64).decode() + "\n")
		            log.flush()
		        except OSError:
		            pass
	EOF
	E2E_PIDS+=("$!")
	sleep 0.3
	run_weir -q -u nobody -p "$pol" -- python3 -c '
import socket
for what, fam, addr in (("abstract", socket.SOCK_STREAM, "\0esc-abstract-1"),
                        ("dgram", socket.SOCK_DGRAM, "/run/esc-dgram.sock")):
    s = socket.socket(socket.AF_UNIX, fam)
    try:
        if fam == socket.SOCK_STREAM:
            s.connect(addr); s.send(b"esc-abs-token")
        else:
            s.sendto(b"esc-dgram-token", addr)
        print(what, "ok")
    except OSError as e:
        print(what, e.errno)'
	t_begin "abstract name (@esc-abstract*) and a datagram sendto() to a denied path: EPERM, nothing arrived"
	x_out "abstract 1
dgram 1"
	x_not_arrived "$T/abs.log" "esc-(abs|dgram)-token"
	t_end
}

# Review 2's F2: the hooks see the path as the program typed it, so every
# other spelling of a denied socket's path was a way past the patterns.
# Each is tried against the docker.sock-like proxy (built-in list): EPERM
# for every one, and nothing relayed to the denied listener.
test_spellings() {
	mkdir -p "$T/sp" && chmod 755 "$T/sp"
	run_weir -q -u nobody -p "$POL" -e "$T/ev-spell" -- python3 -c '
import os, socket
def try_(what, path, cwd="/"):
    os.chdir(cwd)
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        s.sendall(b"GET /esc-spell-" + what.encode() + b" HTTP/1.0\r\n\r\n")
        print(what, "connected")
    except OSError as e:
        print(what, e.errno)
    s.close()
try_("slashes", "//run/docker.sock")
try_("inner-slashes", "/run//docker.sock")
try_("dot", "/run/./docker.sock")
try_("dotdot", "/tmp/../run/docker.sock")
try_("relative", "docker.sock", "/run")
try_("relative-dotdot", "../run/docker.sock", "/tmp")
'
	t_begin "other spellings of a denied socket's path (//, /./, /../, relative): EPERM, nothing relayed"
	x_out "slashes 1
inner-slashes 1
dot 1
dotdot 1
relative 1
relative-dotdot 1"
	x_not_arrived "$LOG" "esc-spell"
	x_json "$T/ev-spell" '[.[] | select(.op == "unix-connect" and .verdict == "deny" and
		.reason == "unix-path-not-canonical")] | length == 6'
	t_end

	# A datagram sent to another spelling of a denied path.
	local pol
	pol=$(e2e_policy unix-dgram-spell <<-EOF
		version: 1
		unix:
		  deny: [$T/sp/dgram.sock]
	EOF
	)
	: >"$T/sp.log"
	python3 - "$T/sp/dgram.sock" "$T/sp.log" <<-'EOF' &
		import os, socket, sys, time
		d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		d.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
		d.settimeout(0.2)
		log = open(sys.argv[2], "a")
		end = time.time() + 15
		while time.time() < end:
		    try:
		        log.write(d.recv(64).decode() + "\n"); log.flush()
		    except OSError:
		        pass
	EOF
	E2E_PIDS+=("$!")
	adv_until 50 test -S "$T/sp/dgram.sock"
	run_weir -q -u nobody -p "$pol" -- python3 -c '
import socket, sys
d = sys.argv[1].rsplit("/", 1)
for what, path in (("double", d[0] + "//" + d[1]), ("dot", d[0] + "/./" + d[1])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(b"esc-dgram-spell-" + what.encode(), path); print(what, "sent")
    except OSError as e:
        print(what, e.errno)' "$T/sp/dgram.sock"
	t_begin "a datagram sendto() to another spelling of a denied path: EPERM, nothing arrived"
	x_out "double 1
dot 1"
	sleep 0.3
	x_not_arrived "$T/sp.log" "esc-dgram-spell"
	t_end

	# Where nothing is denied, nothing is refused: relative paths work.
	pol=$(e2e_policy unix-open <<-EOF
		version: 1
		unix:
		  builtin: off
	EOF
	)
	run_weir -q -u nobody -p "$pol" -- python3 -c '
import os, socket
os.chdir("/run")
s = socket.socket(socket.AF_UNIX)
s.connect("docker.sock"); s.sendall(b"GET /esc-spell-open HTTP/1.0\r\n\r\n"); print(s.recv(64)[:15])'
	t_begin "sanity: with nothing denied (builtin: off), a relative path connects"
	x_rc 0
	x_arrived "$LOG" "esc-spell-open"
	t_end
}

# Review 2's F10: audit mode let a lookup through nscd go around weir's
# resolver, unrecorded. nscd's socket stays refused in audit mode (a hard
# deny), so glibc asks weir's resolver, whose dns event names the lookup,
# and nscd never sees it.
test_audit_resolver() {
	local name=esc-nscd-audit-$$.test pol
	pol=$(e2e_policy unix-audit <<-EOF
		version: 1
		mode: audit
	EOF
	)
	run_weir -q -u nobody -p "$pol" -e "$T/ev-audit" -- getent hosts "$name"
	t_begin "audit mode: a lookup does not go through nscd (refused there too); weir's resolver records the name"
	x_json "$T/ev-audit" 'any(.[]; .op == "dns" and (.name // "" | test("esc-nscd-audit")))'
	x_json "$T/ev-audit" 'all(.[]; .op != "unix-connect")'
	t_end
}

# Review 2's F1: under an outer attachment (a node's safety net), a
# cgroup attached below it with its own policy is judged by that policy
# alone, unix: section included: the outer's built-in list does not refuse
# what the inner allows, and still refuses a process of its own.
UNEST=
unest_cleanup() {
	local d
	[ -n "$UNEST" ] && [ -d "$UNEST" ] || return 0
	for d in "$UNEST/in" "$UNEST"; do
		[ -e "$d/cgroup.kill" ] && echo 1 >"$d/cgroup.kill"
	done
	sleep 0.2
	rmdir "$UNEST/in" "$UNEST" 2>/dev/null
	return 0
}

test_nested() {
	local pdir out
	[ -n "$E2E_DAEMON_PID" ] || e2e_start_daemon
	pdir=$E2E_TMP/daemon/policies
	printf 'version: 1\n' >"$pdir/unest-outer.yaml"
	printf 'version: 1\nunix:\n  allow: [/run/docker.sock]\n' >"$pdir/unest-inner.yaml"
	curl -sf --max-time 10 --unix-socket "$WEIR_SOCKET" -X POST http://weir/v1/reload >/dev/null
	UNEST=$CG2/weir-unest-$$
	mkdir -p "$UNEST/in" || e2e_die "mkdir $UNEST/in"
	for out in "$UNEST:unest-outer" "$UNEST/in:unest-inner"; do
		curl -sf --max-time 10 --unix-socket "$WEIR_SOCKET" -X POST \
			-H 'Content-Type: application/json' \
			-d "{\"cgroup\":\"${out%%:*}\",\"policy\":\"${out##*:}\"}" \
			http://weir/v1/attachments >/dev/null ||
			e2e_die "cannot attach ${out%%:*}"
	done
	out=$(for cg in in .; do
		sh -c 'echo $$ >"$1/cgroup.procs" && exec python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(\"/run/docker.sock\")
    s.sendall(b\"GET /esc-nest-\" + sys.argv[1].encode() + b\" HTTP/1.0\r\n\r\n\")
    s.recv(64); print(sys.argv[1], \"connected\")
except OSError as e:
    print(sys.argv[1], e.errno)" "$2"' sh "$UNEST/$cg" "${cg/./outer}"
	done 2>&1)
	t_begin "nested attachments: the inner policy's unix.allow holds below a safety net, whose built-in list still refuses its own"
	[ "$out" = "in connected
outer 1" ] || t_why "got '$(echo "$out" | tr '\n' '|')', want 'in connected|outer 1'"
	x_arrived "$LOG" "esc-nest-in"
	x_not_arrived "$LOG" "esc-nest-outer"
	t_end
	unest_cleanup
}

# A container engine's socket the command's user may connect to by its
# mode (a developer in the docker group): without the BPF LSM a link or
# /proc/self/root/... reaches it past the unix: section, and weir says so
# even with -q; with the LSM, or a mode that keeps the user out, nothing.
# A stand-in socket on a tmpfs over /run in this mount namespace only.
test_engine_warning() {
	mount -t tmpfs -o mode=755 weir-engine /run || e2e_die "tmpfs over /run (private mount namespace)"
	/usr/bin/python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \
		/run/docker.sock || e2e_die "the stand-in socket"
	chgrp nogroup /run/docker.sock && chmod 660 /run/docker.sock
	run_weir -q -u nobody -p "$POL" -- true
	t_begin "a docker socket nobody may reach by group: said with -q where the BPF LSM is not active"
	x_rc 0
	if lsm_active; then
		x_err_lacks "may connect to /run/docker.sock"
	else
		x_err_has "^weir: true may connect to /run/docker.sock \(by group nogroup\), which is root: .* /proc/self/root/run/docker.sock"
	fi
	t_end
	chmod 600 /run/docker.sock
	run_weir -q -u nobody -p "$POL" -- true
	t_begin "the same socket root's alone (0600): nothing said"
	x_rc 0
	x_err_lacks "may connect to"
	t_end
	umount /run
}

# The cgroup unix hooks (6.7+) judge the path as typed; without them (6.1-6.6)
# the BPF LSM alone judges the socket reached, by the path it was bound to:
# every test but the spellings' (which reach the same bound socket there,
# and are refused as it is: outside.sh's symlink test) holds as well.
HOOKS=1
if ! "$WEIR" status -v 2>/dev/null | grep -qiE 'unix.*on|connect_unix.*on' &&
	[ "$(uname -r | awk -F. '{ print ($1 > 6 || ($1 == 6 && $2 >= 7)) }')" != 1 ]; then
	HOOKS=0
	lsm_active || adv_skip "unix sockets: skipped (kernel $(uname -r) lacks cgroup/connect_unix, Linux 6.7+, and the BPF LSM is not active: the unix: section is not enforced here)"
fi
setup
test_nscd
test_proxy
test_avahi_cups
test_abstract_and_dgram
if [ "$HOOKS" = 1 ]; then
	test_spellings
else
	t_ok "other spellings of a denied path: skipped on $(uname -r) (no cgroup unix hooks: the BPF LSM judges the socket reached by its bound path, whatever the spelling)"
fi
test_audit_resolver
test_nested
test_engine_warning
adv_finish
