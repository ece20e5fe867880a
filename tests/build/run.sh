#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Tier 5: building and installing, as a user would.
#
#   sudo WEIR_BUILD=$PWD/build bash tests/build/run.sh      (or: sudo make test-build)
#
# 1. `sudo make` in a user's checkout leaves nothing in it to root, and the
#    user's next `make` works: a temporary user this script creates (and
#    deletes), a copy of the tree that is theirs with a build/ of root's (as
#    an older sudo make left it), `SUDO_UID=... make` as root, then `make`
#    as the user.
# 2. `make install DESTDIR=... PREFIX=/usr` puts every file in place, the man
#    page renders and names every command and option, the bash completion
#    loads and completes, the systemd unit names the installed binary and
#    passes `systemd-analyze verify` (where there is one), `make uninstall`
#    removes all of it.
# 3. `weir --version` is the build's `git describe`.
#
# Prints "ok - NAME" / "not ok - NAME: WHY" per check, exits 1 on a failure.

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh" # the t_* assertions only
E2E_NAME=build

[ "$(id -u)" = 0 ] || e2e_die "must run as root (sudo): it creates a user"
for b in useradd userdel setpriv man make git; do
	command -v "$b" >/dev/null || e2e_die "$b not found (make deps)"
done
: "${WEIR_BUILD:=$REPO_ROOT/build}"
TMP=$(mktemp -d /tmp/weir-build.XXXXXX) || e2e_die "mktemp failed"
chmod 755 "$TMP"
BUSER=weir-bt-$$
SRC=$TMP/src
DEST=$TMP/dest

cleanup() {
	rm -rf "$TMP"
	id "$BUSER" >/dev/null 2>&1 && userdel "$BUSER" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# as_user CMD...: run CMD as the temporary user, as a login would.
as_user() {
	env -u SUDO_UID -u SUDO_GID -u SUDO_USER HOME="$SRC" \
		setpriv --reuid="$BUSER" --regid="$BUSER" --init-groups -- "$@"
}

# The tree without build products or git, owned by the temporary user.
setup() {
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$BUSER" || e2e_die "useradd $BUSER failed"
	mkdir "$SRC" &&
		tar -C "$REPO_ROOT" --exclude=./build --exclude=./.git --exclude='./bench/results/*' \
			-cf - . | tar -C "$SRC" -xf - || e2e_die "cannot copy the tree"
	chown -R "$BUSER:$BUSER" "$SRC"
	# What an older `sudo make` left: a build/ of root's. The objects of
	# this build, so that only a few are made again (a full build is ~6 s).
	mkdir "$SRC/build" &&
		cp -a "$WEIR_BUILD/bpf" "$WEIR_BUILD"/*.skel.h "$WEIR_BUILD/user" "$SRC/build/" ||
		e2e_die "cannot copy $WEIR_BUILD"
	rm -f "$SRC/build/user/cli/main.o"
	touch "$SRC/user/cli/run.c"
}

test_sudo_make() {
	local uid gid left
	uid=$(id -u "$BUSER") gid=$(id -g "$BUSER")
	t_begin "11 sudo make in the user's checkout: everything in it stays the user's"
	# -j2, not more: other builds may share the machine
	if ! SUDO_UID=$uid SUDO_GID=$gid make -C "$SRC" -j2 all >"$TMP/sudo-make.log" 2>&1; then
		t_why "SUDO_UID=$uid make failed: $(t_tail "$TMP/sudo-make.log")"
	fi
	[ -x "$SRC/build/weir" ] || t_why "no build/weir"
	left=$(find "$SRC" ! -user "$BUSER" | head -3 | tr '\n' ' ')
	[ -z "$left" ] && left=$(find "$SRC" ! -group "$BUSER" | head -3 | tr '\n' ' ')
	[ -z "$left" ] || t_why "not the user's: $left"
	t_end

	t_begin "11 after sudo make, make as the user rebuilds"
	touch "$SRC/user/cli/main.c" "$SRC/user/cli/run.c"
	as_user make -C "$SRC" -j2 all >"$TMP/user-make.log" 2>&1 ||
		t_why "make as $BUSER failed: $(t_tail "$TMP/user-make.log")"
	[ "$SRC/build/weir" -nt "$SRC/user/cli/run.c" ] || t_why "build/weir was not relinked"
	t_end
}

# Every file make install puts under DEST for PREFIX=/usr.
installed_files() {
	local f
	echo usr/bin/weir
	echo usr/share/man/man8/weir.8
	echo usr/share/bash-completion/completions/weir
	echo usr/share/zsh/site-functions/_weir
	echo usr/lib/systemd/system/weir.service
	echo usr/share/weir/prometheus/weir-alerts.yml
	echo usr/share/containers/oci/hooks.d/weir-createRuntime.json
	echo usr/share/containers/oci/hooks.d/weir-poststop.json
	for f in "$SRC"/policy/*.yaml; do
		echo "usr/share/weir/policies/${f##*/}"
	done
	for f in "$SRC"/policy/presets/*.yaml; do
		echo "usr/share/weir/policies/presets/${f##*/}"
	done
	for f in README.md LICENSE "$SRC"/docs/*.md; do
		echo "usr/share/doc/weir/${f##*/}"
	done
}

test_install() {
	local f opt missing=() rendered
	t_begin "12 make install DESTDIR PREFIX=/usr: binary, man page, completions, policies, docs"
	env -u SUDO_UID -u SUDO_GID make -C "$SRC" install DESTDIR="$DEST" PREFIX=/usr \
		>"$TMP/install.log" 2>&1 || t_why "make install failed: $(t_tail "$TMP/install.log")"
	while read -r f; do
		[ -f "$DEST/$f" ] || missing+=("$f")
	done < <(installed_files)
	((${#missing[@]} == 0)) || t_why "missing: ${missing[*]}"
	[ -x "$DEST/usr/bin/weir" ] || t_why "usr/bin/weir is not executable"
	"$DEST/usr/bin/weir" policy show | cmp -s - "$DEST/usr/share/weir/policies/agent-default.yaml" ||
		t_why "the installed agent-default.yaml is not what weir policy show prints"
	"$DEST/usr/bin/weir" policy show preset:npm |
		cmp -s - "$DEST/usr/share/weir/policies/presets/npm.yaml" ||
		t_why "the installed presets/npm.yaml is not what weir policy show preset:npm prints"
	for f in createRuntime poststop; do
		jq -e --arg s "$f" '.hook.path == "/usr/bin/weir" and .hook.args == ["weir", "oci-hook", $s]
			and .stages == [$s] and .when.annotations["^weir\\.dev/"] == ".*"' \
			"$DEST/usr/share/containers/oci/hooks.d/weir-$f.json" >/dev/null 2>&1 ||
			t_why "hooks.d/weir-$f.json does not run /usr/bin/weir oci-hook $f when annotated"
	done
	t_end

	t_begin "12 man -l renders weir(8) without warnings; it names every command and option"
	rendered=$(MANWIDTH=100 man --warnings -l "$DEST/usr/share/man/man8/weir.8" 2>"$TMP/man.err")
	[ -s "$TMP/man.err" ] && t_why "man warnings: $(t_tail "$TMP/man.err")"
	grep -q '^NAME' <<<"$rendered" && grep -q 'weir - confine' <<<"$rendered" ||
		t_why "the page does not render (no NAME section)"
	for opt in $({ for c in run daemon attach detach ps reload oci-hook; do
		"$DEST/usr/bin/weir" "$c" --help 2>/dev/null; done
		for c in verify suggest; do "$DEST/usr/bin/weir" policy "$c" --help; done; } |
		grep -oE -- '--[a-z][a-z-]+' | sort -u) \
		$("$DEST/usr/bin/weir" --help | awk '/^Commands:/ { c = 1; next } !NF { c = 0 } c { print $1 }'); do
		grep -qF -- "$opt" <<<"$rendered" || t_why "the man page does not mention $opt"
	done
	for opt in "policy check" "policy show" "policy verify" "policy suggest" --version; do
		grep -qF -- "$opt" <<<"$rendered" || t_why "the man page does not mention $opt"
	done
	t_end

	t_begin "12 the bash completion loads and completes 'weir r<TAB>' and policy names"
	# shellcheck disable=SC2016
	if ! bash -c 'set -eu
		. "$1"
		complete -p weir >/dev/null
		COMP_WORDS=(weir r) COMP_CWORD=1; _weir; [ "${COMPREPLY[*]}" = "run reload" ] ||
			{ echo "weir r: ${COMPREPLY[*]}"; exit 1; }
		COMP_WORDS=(weir run --po) COMP_CWORD=2; _weir; [ "${COMPREPLY[*]}" = --policy ] ||
			{ echo "weir run --po: ${COMPREPLY[*]}"; exit 1; }
		COMP_WORDS=(weir a) COMP_CWORD=1; _weir; [ "${COMPREPLY[*]}" = attach ] ||
			{ echo "weir a: ${COMPREPLY[*]}"; exit 1; }
		COMP_WORDS=(weir attach --po) COMP_CWORD=2; _weir; [ "${COMPREPLY[*]}" = --policy ] ||
			{ echo "weir attach --po: ${COMPREPLY[*]}"; exit 1; }
		COMP_WORDS=(weir ps --j) COMP_CWORD=2; _weir; [ "${COMPREPLY[*]}" = --json ] ||
			{ echo "weir ps --j: ${COMPREPLY[*]}"; exit 1; }
		COMP_WORDS=("$2" policy show "") COMP_CWORD=3; _weir
		[[ "${COMPREPLY[*]}" == "agent-default demo preset:anthropic "*" preset:npm "* ]] ||
			{ echo "weir policy show: ${COMPREPLY[*]}"; exit 1; }' \
		bash "$DEST/usr/share/bash-completion/completions/weir" "$DEST/usr/bin/weir" \
		>"$TMP/comp.out" 2>&1; then
		t_why "$(t_tail "$TMP/comp.out")"
	fi
	t_end

	t_begin "12 weir.service: Type=notify, runs the installed weir daemon, verifies"
	f=$DEST/usr/lib/systemd/system/weir.service
	grep -qx 'Type=notify' "$f" || t_why "not Type=notify"
	grep -qx 'ExecStart=/usr/bin/weir daemon' "$f" || t_why "ExecStart: $(grep ExecStart= "$f")"
	grep -qx 'ProtectSystem=strict' "$f" || t_why "no ProtectSystem=strict"
	if command -v systemd-analyze >/dev/null; then
		# the binary at its DESTDIR path: verify checks that it is there
		sed "s|/usr/bin/weir|$DEST/usr/bin/weir|" "$f" >"$TMP/weir.service"
		systemd-analyze verify --man=no "$TMP/weir.service" >"$TMP/verify.log" 2>&1 ||
			t_why "systemd-analyze verify failed: $(t_tail "$TMP/verify.log")"
		[ -s "$TMP/verify.log" ] && t_why "systemd-analyze verify: $(t_tail "$TMP/verify.log")"
	else
		echo "# systemd-analyze not found: weir.service not verified"
	fi
	t_end

	t_begin "12 make uninstall DESTDIR PREFIX=/usr leaves nothing of weir's"
	env -u SUDO_UID -u SUDO_GID make -C "$SRC" uninstall DESTDIR="$DEST" PREFIX=/usr \
		>"$TMP/uninstall.log" 2>&1 || t_why "make uninstall failed: $(t_tail "$TMP/uninstall.log")"
	f=$(find "$DEST" ! -type d | head -3 | tr '\n' ' ')
	[ -z "$f" ] || t_why "left behind: $f"
	for f in usr/share/weir usr/share/doc/weir; do
		[ -e "$DEST/$f" ] && t_why "left behind: $f/"
	done
	t_end
}

test_version() {
	local want
	t_begin "12 weir --version and weir version: git describe of the build, else the number"
	want=$(GIT_OPTIONAL_LOCKS=0 git -c safe.directory="$REPO_ROOT" -C "$REPO_ROOT" \
		describe --always --dirty 2>/dev/null)
	[ -n "$want" ] || want=$(sed -n 's/^#define WEIR_VERSION "\(.*\)"$/\1/p' "$REPO_ROOT/user/common/weir.h")
	[ "$("$WEIR_BUILD/weir" --version)" = "weir $want" ] ||
		t_why "build/weir --version: '$("$WEIR_BUILD/weir" --version)', want 'weir $want'"
	[ "$("$WEIR_BUILD/weir" version)" = "weir $want" ] || t_why "weir version differs"
	"$WEIR_BUILD/weir" version --help | grep -q '^Usage: weir version' ||
		t_why "weir version --help prints no usage"
	# The copy has no .git: the number.
	want=$(sed -n 's/^#define WEIR_VERSION "\(.*\)"$/\1/p' "$SRC/user/common/weir.h")
	[ "$("$SRC/build/weir" --version)" = "weir $want" ] ||
		t_why "outside git: '$("$SRC/build/weir" --version)', want 'weir $want'"
	t_end
}

test_alert_rules() {
	local f=$REPO_ROOT/deploy/prometheus/weir-alerts.yml
	t_begin "12 the example Prometheus alerts load: denial spike, lost events, policy error"
	if command -v promtool >/dev/null; then
		promtool check rules "$f" >"$TMP/promtool.log" 2>&1 ||
			t_why "promtool: $(t_tail "$TMP/promtool.log")"
	fi
	# shellcheck disable=SC2016
	python3 -c 'import sys, yaml
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]]
for r in rules:
    assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r
    assert r["alert"] and r["expr"].strip(), r
names = {r["alert"]: r["expr"] for r in rules}
assert "weir_decisions_total" in names["WeirDenialSpike"]
assert "weir_events_lost_total" in names["WeirEventsLost"]
assert "weir_policy_ok" in names["WeirPolicyError"]' "$f" >"$TMP/alerts.log" 2>&1 ||
		t_why "$(t_tail "$TMP/alerts.log")"
	t_end
}

test_lazy_libraries() {
	local libs hp
	t_begin "12 weir links no libmicrohttpd (loaded when used) and no libcurl at all; libhttp_parser is on libc alone; built as make builds it, weir maps only libc and libpsl's chain at exec"
	libs=$(ldd "$WEIR_BUILD/weir" 2>&1) || t_why "ldd failed: $libs"
	grep -E 'libcurl|libmicrohttpd|libgnutls|libkrb5|libldap' <<<"$libs" &&
		t_why "linked: $(grep -oE 'lib(curl|microhttpd|gnutls|krb5|ldap)[^ ]*' <<<"$libs" |
			tr '\n' ' ')"
	# The API's clients read answers with libhttp-parser: never a dlopen of libcurl.
	grep -aq 'libcurl\.so' "$WEIR_BUILD/weir" && t_why "weir still names libcurl.so (a dlopen)"
	if hp=$(grep -oE '/[^ ]*libhttp_parser\.so[^ ]*' <<<"$libs"); then
		# Built with WEIR_STATIC_LIBS= (every library shared).
		[ "$(ldd "$hp" | grep -cvE 'linux-vdso|libc\.so|ld-linux')" = 0 ] ||
			t_why "libhttp_parser needs more than libc: $(ldd "$hp" 2>&1 | tr '\n' ' ')"
	else
		# The libraries with a .a are linked in (Makefile, WEIR_STATIC_LIBS):
		# what is left for the dynamic loader at every start is this.
		grep -vE 'linux-vdso|ld-linux|lib(c|psl|idn2|unistring)\.so' <<<"$libs" | grep . &&
			t_why "weir loads more shared objects than libc and libpsl's: $(tr '\n' ' ' <<<"$libs")"
	fi
	t_end
}

main() {
	local start=$SECONDS
	setup
	test_sudo_make
	test_install
	test_version
	test_lazy_libraries
	test_alert_rules
	echo "# $((SECONDS - start)) s"
	echo "$T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" = 0 ]
}

main
