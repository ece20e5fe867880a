#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 3, the command's identity and environment: `sudo weir run` and
# `weir run --user` give the command the user's HOME, USER, LOGNAME, SHELL,
# XDG_RUNTIME_DIR and a PATH that finds ~/.local/bin (docs/run.md).
#
#   WEIR_BUILD=/abs/build bash tests/e2e/env.sh      (root)
#
# The test user is made here (useradd, a name with this script's pid) and
# deleted at exit (userdel); its home is under the temp dir, with
# ~/.local/bin/tool and ~/bin/tool2, and no other user's files are used.
# (Not bind-mounted copies of /etc/passwd: another useradd on the machine
# renames a new file over it, and the kernel then drops the mount.) sudo is
# run for real too, with a private copy of /etc/sudoers, bind-mounted in
# this script's mount namespace only, that lets that user run anything.

# shellcheck disable=SC2016 # sh -c scripts: single quotes on purpose
E2E_NAME=e2e-env
E2E_TAP=1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_enter_ns "$0" "$@"
e2e_init

T=$E2E_TMP
# What Debian's sudo sets PATH to (sudoers' secure_path), and what its
# login gives a user (login.defs' ENV_PATH, also in /etc/profile).
SECURE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV_PATH=$(awk '$1 == "ENV_PATH" { sub(/^PATH=/, "", $2); print $2 }' /etc/login.defs 2>/dev/null)
: "${ENV_PATH:=/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games}"

USER_MADE= NUM_MADE= GROUP_MADE=
env_cleanup() {
	if [ -n "$USER_MADE" ]; then
		userdel "$USER_MADE" || echo "$E2E_NAME: userdel $USER_MADE failed" >&2
	fi
	if [ -n "$NUM_MADE" ]; then
		userdel "$NUM_MADE" || echo "$E2E_NAME: userdel $NUM_MADE failed" >&2
	fi
	if [ -n "$GROUP_MADE" ]; then
		groupdel "$GROUP_MADE" || echo "$E2E_NAME: groupdel $GROUP_MADE failed" >&2
	fi
	e2e_cleanup
}
trap env_cleanup EXIT

# bind_copy FILE LINE: FILE, privately, with LINE appended.
bind_copy() {
	local copy
	copy=$T/etc/$(basename "$1")
	mkdir -p "$T/etc"
	if ! { cp -p "$1" "$copy" && printf '%s\n' "$2" >>"$copy" && mount --bind "$copy" "$1"; }; then
		e2e_die "cannot make a private $1"
	fi
}

setup() {
	e2e_setup_lo 192.0.2.10/32 2001:db8::10/128
	e2e_start_dns allowed.test,192.0.2.10,2001:db8::10
	P_NONE=$(e2e_policy none <<-EOF
		version: 1
	EOF
	)
	P_TCP=$(e2e_policy tcp <<-EOF
		version: 1
		allow:
		  - domain: allowed.test
		    ports: [80]
		    proto: tcp
	EOF
	)
	command -v useradd >/dev/null || e2e_die "useradd not found (package passwd)"
	U=weirenv$$
	H=$T/home/$U
	getent passwd "$U" >/dev/null && e2e_die "user $U exists already: not ours to use"
	# A supplementary group of its own: sudo weir run keeps the user's groups.
	SUPP=weirenvg$$
	getent group "$SUPP" >/dev/null && e2e_die "group $SUPP exists already: not ours to use"
	groupadd "$SUPP" || e2e_die "groupadd $SUPP failed"
	GROUP_MADE=$SUPP
	SUPP_GID=$(getent group "$SUPP" | cut -d: -f3)
	useradd --no-create-home --home-dir "$H" --shell /bin/sh --user-group --groups "$SUPP" \
		--comment "weir e2e env test" "$U" || e2e_die "useradd $U failed"
	USER_MADE=$U
	UID_=$(id -u "$U") GID_=$(id -g "$U")
	mkdir -p "$H/.local/bin" "$H/bin"
	printf '#!/bin/sh\necho "tool ran as $(id -u)"\n' >"$H/.local/bin/tool"
	printf '#!/bin/sh\necho tool2\n' >"$H/bin/tool2"
	chmod 755 "$H/.local/bin/tool" "$H/bin/tool2"
	chown -R "$UID_:$GID_" "$H"
	LOGIN_PATH=$H/.local/bin:$H/bin:$ENV_PATH
	# Its XDG_RUNTIME_DIR, as pam_systemd would make it: a private /run/user.
	mount -t tmpfs -o mode=755 weir-e2e-run-user /run/user || e2e_die "cannot mount /run/user"
	# What the command reports about itself.
	SHOW='echo "uid=$(id -u) gid=$(id -g)"; echo "groups=$(id -G)"; echo "CG=$(sed -n "s/^0:://p" /proc/self/cgroup)"; echo "CGNS=$(readlink /proc/self/ns/cgroup)"; for v in HOME USER LOGNAME SHELL PATH XDG_RUNTIME_DIR MAIL FOO A; do eval "echo $v=\${$v-(unset)}"; done'
}

# as_sudo [VAR=VALUE...] -- WEIR-RUN-ARGS...: weir run with the environment
# `sudo` on Debian gives it (env_reset, secure_path): root's HOME, USER,
# LOGNAME, SHELL and MAIL, secure_path, SUDO_*; VAR=VALUE add or replace.
as_sudo() {
	local extra=()
	while [ "$1" != -- ]; do
		extra+=("$1")
		shift
	done
	shift
	run_weir_env -i TERM=dumb HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
		MAIL=/var/mail/root PATH=$SECURE_PATH XDG_RUNTIME_DIR=/run/user/0 \
		SUDO_UID="$UID_" SUDO_GID="$GID_" SUDO_USER="$U" SUDO_COMMAND="$WEIR run $*" \
		"${extra[@]}" -- "$@"
}

# x_var NAME WANT: the command printed NAME=WANT.
x_var() {
	grep -qxF -- "$1=$2" "$OUT" || t_why "$(grep -m1 "^$1=" "$OUT" || echo "no $1"), want $1=$2"
}

# x_cg_gone: the command ran at the root of a cgroup namespace of its own
# (CG=/, CGNS not the test's: docs/run.md), and the cgroup weir -v said it
# started it in is gone: for weir under real sudo, whose pid the test does
# not know.
x_cg_gone() {
	local cg ns run
	cg=$(sed -n 's/^CG=//p' "$OUT")
	ns=$(sed -n 's/^CGNS=//p' "$OUT")
	[ "$cg" = / ] && [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/cgroup)" ] ||
		t_why "the command was in cgroup '$cg' (namespace $ns), not at the root of a cgroup namespace of its own"
	run=$(grep -oE " in $CG2/weir/run-[0-9]+\$" "$ERR" | sed 's/^ in //')
	if [ -z "$run" ]; then
		t_why "weir -v did not say which cgroup it started the command in: $(t_tail "$ERR")"
	elif [ -e "$run" ]; then
		LEFTOVER+=("$run (under sudo)")
	fi
	WEIR_RUNS=$((WEIR_RUNS + 1))
}

# x_user_env: what the command printed is the test user's own environment.
x_user_env() {
	x_rc 0
	x_var uid "$UID_ gid=$GID_"
	x_var groups "$GID_ $SUPP_GID"
	x_var HOME "$H"
	x_var USER "$U"
	x_var LOGNAME "$U"
	x_var SHELL /bin/sh
	x_var PATH "$LOGIN_PATH"
}

test_sudo() {
	t_begin "env sudo: the command has the user's id, groups, HOME, USER, LOGNAME, SHELL, login PATH"
	as_sudo -- -p "$P_NONE" -- sh -c "$SHOW"
	x_user_env
	x_var MAIL "/var/mail/$U"
	x_var XDG_RUNTIME_DIR '(unset)'
	t_end

	# An account whose login name is the test user's uid (useradd takes
	# all-digit names): SUDO_UID is a number, never a name to look up.
	t_begin "env sudo: SUDO_UID is the user's uid even when an account is named that number"
	if grep -q "^$UID_:" /etc/passwd; then
		t_end # not ours
	else
		useradd --no-create-home --home-dir / --shell /bin/sh --user-group \
			--comment "weir e2e env test" "$UID_" || t_why "useradd $UID_ failed"
		NUM_MADE=$UID_
		as_sudo -- -p "$P_NONE" -- sh -c "$SHOW"
		userdel "$UID_" && NUM_MADE=
		x_user_env
		t_end
	fi

	t_begin "env sudo: weir finds ~/.local/bin/tool in the command's PATH, and so does its shell"
	as_sudo -- -p "$P_NONE" -- tool
	x_rc 0
	x_out "tool ran as $UID_"
	as_sudo -- -p "$P_NONE" -- sh -c 'tool2 && command -v tool'
	x_rc 0
	x_out "tool2
$H/.local/bin/tool"
	t_end

	t_begin "env sudo: XDG_RUNTIME_DIR is /run/user/UID when it exists"
	mkdir -m 700 "/run/user/$UID_" && chown "$UID_:$GID_" "/run/user/$UID_"
	as_sudo -- -p "$P_NONE" -- sh -c "$SHOW"
	x_var XDG_RUNTIME_DIR "/run/user/$UID_"
	rmdir "/run/user/$UID_"
	t_end

	t_begin "env sudo --preserve-env=PATH: the PATH the user had comes through"
	as_sudo PATH=/opt/weir-test/bin:/usr/bin:/bin -- -p "$P_NONE" -- sh -c "$SHOW"
	x_var PATH /opt/weir-test/bin:/usr/bin:/bin
	x_var HOME "$H"
	t_end
}

test_user() {
	t_begin "env --user USER (root, no sudo): the same environment"
	run_weir_env -i HOME=/root USER=root LOGNAME=root PATH=/root/bin:$SECURE_PATH \
		-- -p "$P_NONE" --user "$U" -- sh -c "$SHOW"
	x_user_env
	x_var MAIL '(unset)'
	t_end

	t_begin "env --user UID: the same environment"
	run_weir_env -i HOME=/root PATH=$SECURE_PATH -- -p "$P_NONE" --user "$UID_" -- tool
	x_rc 0
	x_out "tool ran as $UID_"
	t_end
}

test_options() {
	t_begin "env --preserve-env: the caller's environment as is"
	as_sudo FOO=bar -- -p "$P_NONE" --preserve-env -- sh -c "$SHOW"
	x_rc 0
	x_var uid "$UID_ gid=$GID_"
	x_var HOME /root
	x_var USER root
	x_var PATH "$SECURE_PATH"
	x_var XDG_RUNTIME_DIR /run/user/0
	x_var FOO bar
	t_end

	t_begin "env --preserve-env=HOME,PATH: those two are the caller's, the rest the user's"
	as_sudo -- -p "$P_NONE" --preserve-env=HOME,PATH -- sh -c "$SHOW"
	x_rc 0
	x_var HOME /root
	x_var PATH "$SECURE_PATH"
	x_var USER "$U"
	t_end

	t_begin "env --setenv NAME=VALUE and --setenv NAME (the caller's value), after the rest"
	as_sudo FOO=from-caller -- -p "$P_NONE" --setenv A=1=2 --setenv FOO \
		--setenv USER=someone -- sh -c "$SHOW"
	x_rc 0
	x_var A 1=2
	x_var FOO from-caller
	x_var USER someone
	x_var HOME "$H"
	t_end

	t_begin "env bad --setenv and --preserve-env= lists: 125, says which"
	run_weir --setenv '=x' -- true
	x_rc 125
	x_err_has "--setenv '=x'"
	run_weir --preserve-env=PATH,,HOME -- true
	x_rc 125
	x_err_has "--preserve-env='PATH,,HOME'"
	t_end
}

test_root_unchanged() {
	local want
	t_begin "env root without sudo or --user keeps its environment exactly"
	run_weir_env -i HOME=/root USER=root PATH=/usr/bin:/bin FOO=bar XDG_RUNTIME_DIR=/run/user/0 \
		-- -p "$P_NONE" -- env
	x_rc 0
	want=$(printf '%s\n' FOO=bar HOME=/root PATH=/usr/bin:/bin USER=root XDG_RUNTIME_DIR=/run/user/0)
	[ "$(sort "$OUT")" = "$want" ] || t_why "environment: $(sort "$OUT" | tr '\n' ' ')"
	t_end
}

# Through the real sudo, as the test user, with sudoers as Debian ships it
# plus one line for that user.
test_real_sudo() {
	local sudo_as cg
	if ! command -v sudo >/dev/null; then
		t_not_ok "env real sudo" "sudo not found (make deps installs it)"
		return
	fi
	bind_copy /etc/sudoers "$U ALL=(ALL:ALL) NOPASSWD: ALL"
	sudo_as=(setpriv --reuid="$UID_" --regid="$GID_" --init-groups
		env -i HOME="$H" USER="$U" LOGNAME="$U" TERM=dumb PATH="/opt/weir-test/bin:$ENV_PATH")

	t_begin "env real sudo: sudo weir run -- tool runs the user's ~/.local/bin/tool as the user"
	run_cmd "${sudo_as[@]}" sudo "$WEIR" run -p "$P_NONE" -- tool
	x_rc 0
	x_out "tool ran as $UID_"
	run_cmd "${sudo_as[@]}" sudo "$WEIR" run -v -p "$P_NONE" -- sh -c "$SHOW"
	x_user_env
	x_cg_gone
	t_end

	t_begin "env real sudo -E: the user's HOME and login PATH (Debian's secure_path beats -E)"
	run_cmd "${sudo_as[@]}" sudo -E "$WEIR" run -v -p "$P_NONE" -- sh -c "$SHOW"
	x_user_env
	x_cg_gone
	t_end

	t_begin "env real sudo --preserve-env=PATH: the user's own PATH"
	run_cmd "${sudo_as[@]}" sudo --preserve-env=PATH "$WEIR" run -v -p "$P_NONE" -- sh -c "$SHOW"
	x_rc 0
	x_var PATH "/opt/weir-test/bin:$ENV_PATH"
	x_var HOME "$H"
	x_cg_gone
	t_end

	# sudo closes every descriptor above 2, so the caller's 3 never gets to
	# weir: it says so (it used to take its own signalfd for it and hang).
	t_begin "env real sudo -e /dev/fd/3 3>FILE: 125, sudo closed it, and the form that works"
	run_cmd "${sudo_as[@]}" sudo "$WEIR" run -p "$P_NONE" -e /dev/fd/3 -- true 3>"$T/fd3-sudo"
	x_rc 125
	x_err_has '^weir: -e /dev/fd/3: descriptor 3 is not open: sudo passes on only 0, 1 and 2; '
	[ -s "$T/fd3-sudo" ] && t_why "the descriptor sudo closed got: $(t_tail "$T/fd3-sudo")"
	t_end

	t_begin "env real sudo sh -c 'weir run -e /dev/fd/3 -- CMD 3>&1 >/dev/null' | jq: the events, as the user"
	run_cmd "${sudo_as[@]}" sudo sh -c \
		"$WEIR run -p $P_NONE -e /dev/fd/3 -- sh -c 'echo to-devnull' 3>&1 >/dev/null"
	x_rc 0
	x_json "$OUT" '.[0].op == "run-start" and .[0].user == $u and .[0].uid == $uid
		and last.op == "run-end" and last.exit == 0 and length == 2' \
		--arg u "$U" --argjson uid "$UID_"
	cg=$(jq -rs '.[0].cgroup // empty' "$OUT" 2>/dev/null)
	[ -n "$cg" ] && [ -e "$CG2$cg" ] && LEFTOVER+=("$CG2$cg (under sudo sh -c)")
	WEIR_RUNS=$((WEIR_RUNS + 2))
	t_end

	# weir run --help's own sudo form, as written there (CMD: true).
	local form
	form=$("$WEIR" run --help | tr -s ' \n' ' ' |
		grep -o "sudo sh -c 'weir run -e /dev/fd/3 -- CMD [^']*' | jq")
	t_begin "env real sudo: weir run --help's sudo sh -c '... -e /dev/fd/3 ...' | jq works as written"
	[ -n "$form" ] || t_why "no \"sudo sh -c 'weir run -e /dev/fd/3 -- CMD ...' | jq\" in weir run --help"
	form=${form//weir run/$WEIR run -p $P_NONE}
	run_cmd "${sudo_as[@]}" sh -c "${form//CMD/true} -c .op"
	x_rc 0
	x_out "$(printf '"run-start"\n"run-end"')"
	WEIR_RUNS=$((WEIR_RUNS + 1))
	t_end

	# The README's own filter, as written there: curl to an allowed name
	# with an A and an AAAA record, whose getaddrinfo() probes both
	# addresses with UDP connect()s that a tcp-only policy refuses.
	local filter
	filter=$(sed -n "s/^sudo sh -c 'weir run -e \/dev\/fd\/3 -- npm install 3>&1 >\/dev\/null' | jq -c '\(.*\)'\$/\1/p" \
		"$REPO_ROOT/README.md")
	t_begin "env real sudo: the README's events | jq example lists the denial, not glibc's probes"
	[ -n "$filter" ] || t_why "no 'sudo sh -c ... | jq -c FILTER' example in README.md"
	run_cmd "${sudo_as[@]}" sh -c "sudo sh -c '$WEIR run -p $P_TCP -e /dev/fd/3 -- sh -c \
		\"curl -sS --max-time 3 http://allowed.test/; curl -sS --max-time 3 -4 http://allowed.test:8080/\" \
		3>&1 >/dev/null' | jq -c '${filter:-.}'"
	x_rc 0
	x_json "$OUT" 'length == 1 and .[0].op == "connect4" and .[0].port == 8080
		and .[0].domain == "allowed.test"'
	WEIR_RUNS=$((WEIR_RUNS + 1))
	t_end
}

# No run this script started left its cgroup behind.
test_no_leftover_cgroups() {
	local IFS=';'
	if ((${#LEFTOVER[@]})); then
		t_not_ok "env no weir cgroup left after any of $WEIR_RUNS runs" "${LEFTOVER[*]}"
	else
		t_ok "env no weir cgroup left after any of $WEIR_RUNS runs"
	fi
}

main() {
	local start=$SECONDS
	setup
	test_sudo
	test_user
	test_options
	test_root_unchanged
	test_real_sudo
	test_no_leftover_cgroups
	echo "# $((SECONDS - start)) s, $WEIR_RUNS weir runs"
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" = 0 ]
}

main
