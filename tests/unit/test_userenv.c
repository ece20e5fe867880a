// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: the command's environment when weir switches user (userenv.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "userenv.h"

#define SECURE "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* A fake /etc and /run/user under a temp dir, and a user with a home. */
static char root[64];
static char p_defs[128], p_sudoers[128], p_sudoers_d[128], p_run[128], p_home[128];
static struct userenv_files files;
static struct identity alice;
/* alice's uid: one that owns the directories the test makes for her (weir
 * takes ~/bin and /run/user/UID only from their owner). As root, 4242
 * with chown; otherwise the tester's own. */
static uid_t a_uid;
static char sudo_alice[32], sudo_other[32], run_alice[16];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static void mkdirs(const char *fmt, const char *a)
{
	char p[256], *s;

	snprintf(p, sizeof(p), fmt, a);
	for (s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
	if (chown(p, a_uid, a_uid) && errno != EPERM)
		cr_log_warn("chown %s: %s", p, strerror(errno));
}

static void setup(void)
{
	a_uid = getuid() ? getuid() : 4242;
	snprintf(sudo_alice, sizeof(sudo_alice), "SUDO_UID=%u", a_uid);
	snprintf(sudo_other, sizeof(sudo_other), "SUDO_UID=%u", a_uid + 1);
	snprintf(run_alice, sizeof(run_alice), "%u", a_uid);
	strcpy(root, "/tmp/weir-userenv.XXXXXX");
	cr_assert(mkdtemp(root));
	snprintf(p_defs, sizeof(p_defs), "%s/login.defs", root);
	snprintf(p_sudoers, sizeof(p_sudoers), "%s/sudoers", root);
	snprintf(p_sudoers_d, sizeof(p_sudoers_d), "%s/sudoers.d", root);
	snprintf(p_run, sizeof(p_run), "%s/run/user", root);
	snprintf(p_home, sizeof(p_home), "%s/home/alice", root);
	mkdirs("%s", p_sudoers_d);
	mkdirs("%s", p_run);
	mkdirs("%s", p_home);
	write_file(p_defs, "# comment\nENV_SUPATH\tPATH=/su/bin:/su/sbin\n"
			   "ENV_PATH        PATH=/usr/bin:/bin\n");
	write_file(p_sudoers, "Defaults\tenv_reset\nDefaults\tsecure_path=\"" SECURE "\"\n");
	files = (struct userenv_files){ p_defs, p_sudoers, p_sudoers_d, p_run };
	alice = (struct identity){ .change = true, .to_user = true, .uid = a_uid, .gid = a_uid,
				   .name = "alice", .login = "alice", .home = p_home,
				   .shell = "/bin/zsh" };
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(userenv, .init = setup, .fini = teardown);

static const char *get(char **env, const char *name)
{
	size_t len = strlen(name);

	for (; env && *env; env++)
		if (!strncmp(*env, name, len) && (*env)[len] == '=')
			return *env + len + 1;
	return NULL;
}

static char **build(const struct identity *id, const struct userenv_opts *o, char **in)
{
	char **out = NULL;

	cr_assert_eq(userenv_build(id, o, in, &files, &out), 0);
	return out;
}

Test(userenv, names)
{
	cr_expect(userenv_valid_setting("FOO=bar=baz"));
	cr_expect(userenv_valid_setting("_X1="));
	cr_expect(userenv_valid_setting("HOME"));
	cr_expect_not(userenv_valid_setting("=x"));
	cr_expect_not(userenv_valid_setting("1X=y"));
	cr_expect_not(userenv_valid_setting("A-B=y"));
	cr_expect(userenv_valid_list("PATH,HOME"));
	cr_expect_not(userenv_valid_list("PATH,,HOME"));
	cr_expect_not(userenv_valid_list("PATH,"));
	cr_expect_not(userenv_valid_list(""));
}

Test(userenv, secure_path_lines)
{
	char v[256];

	cr_expect_eq(userenv_secure_path_line("Defaults\tsecure_path=\"" SECURE "\"\n", v,
					      sizeof(v)), 1);
	cr_expect_str_eq(v, SECURE);
	cr_expect_eq(userenv_secure_path_line("  Defaults env_reset, secure_path = /a:/b, x", v,
					      sizeof(v)), 1);
	cr_expect_str_eq(v, "/a:/b");
	cr_expect_eq(userenv_secure_path_line("Defaults:alice secure_path=/c\n", v, sizeof(v)), 1);
	cr_expect_str_eq(v, "/c");
	cr_expect_eq(userenv_secure_path_line("# Defaults secure_path=/d", v, sizeof(v)), 0);
	cr_expect_eq(userenv_secure_path_line("Defaults !secure_path", v, sizeof(v)), 0);
	cr_expect_eq(userenv_secure_path_line("Defaults my_secure_path=/e", v, sizeof(v)), 0);
	cr_expect_eq(userenv_secure_path_line("Defaultsx secure_path=/f", v, sizeof(v)), 0);
}

Test(userenv, login_defs)
{
	char v[256];

	cr_expect_eq(userenv_login_defs(p_defs, "ENV_PATH", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "/usr/bin:/bin");
	cr_expect_eq(userenv_login_defs(p_defs, "ENV_SUPATH", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "/su/bin:/su/sbin");
	cr_expect_eq(userenv_login_defs(p_defs, "ENV", v, sizeof(v)), -ENOENT);
	cr_expect_lt(userenv_login_defs("/nonexistent/login.defs", "ENV_PATH", v, sizeof(v)), 0);
}

Test(userenv, login_path_order)
{
	char v[512], want[512];

	cr_assert_eq(userenv_login_path(&alice, &files, v, sizeof(v)), 0);
	cr_expect_str_eq(v, "/usr/bin:/bin", "no private bins yet");
	mkdirs("%s/.local/bin", p_home);
	mkdirs("%s/bin", p_home);
	cr_assert_eq(userenv_login_path(&alice, &files, v, sizeof(v)), 0);
	snprintf(want, sizeof(want), "%s/.local/bin:%s/bin:/usr/bin:/bin", p_home, p_home);
	cr_expect_str_eq(v, want);
	files.login_defs = "/nonexistent";
	cr_assert_eq(userenv_login_path(&alice, &files, v, sizeof(v)), 0);
	snprintf(want, sizeof(want), "%s/.local/bin:%s/bin:" USERENV_ENV_PATH, p_home, p_home);
	cr_expect_str_eq(v, want, "Debian's ENV_PATH without login.defs");
}

Test(userenv, private_bins_only_of_the_users_own)
{
	char v[512], link[256];

	/* As root, weir must not follow her symlink to a directory of root's
	 * (nor tell her, through PATH, that it is one). */
	snprintf(link, sizeof(link), "%s/bin", p_home);
	cr_assert_eq(symlink("/usr", link), 0);
	cr_assert_eq(userenv_login_path(&alice, &files, v, sizeof(v)), 0);
	cr_expect_str_eq(v, "/usr/bin:/bin", "~/bin -> /usr (root's) is not hers");
}

Test(userenv, no_switch_no_change)
{
	struct identity root_id = { .change = false };
	struct userenv_opts o = {};
	char *in[] = { "HOME=/root", "PATH=/x", NULL };
	char **out = (char **)1;

	struct identity group_only = { .change = true, .gid = 100 };

	cr_assert_eq(userenv_build(&root_id, &o, in, &files, &out), 0);
	cr_expect_null(out, "root without a switch keeps weir's environment");
	out = (char **)1;
	cr_assert_eq(userenv_build(&group_only, &o, in, &files, &out), 0);
	cr_expect_null(out, "--group alone: still root's environment");
}

Test(userenv, sudo_reset_env_becomes_the_users)
{
	char *in[] = { "HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash",
		       "MAIL=/var/mail/root", "XDG_RUNTIME_DIR=/run/user/0", "PATH=" SECURE,
		       sudo_alice, "SUDO_USER=alice", "TERM=xterm", NULL };
	struct userenv_opts o = {};
	char **out, want[512];

	mkdirs("%s/.local/bin", p_home);
	out = build(&alice, &o, in);
	cr_expect_str_eq(get(out, "HOME"), p_home);
	cr_expect_str_eq(get(out, "USER"), "alice");
	cr_expect_str_eq(get(out, "LOGNAME"), "alice");
	cr_expect_str_eq(get(out, "SHELL"), "/bin/zsh");
	cr_expect_str_eq(get(out, "MAIL"), "/var/mail/alice");
	cr_expect_null(get(out, "XDG_RUNTIME_DIR"), "root's runtime dir dropped");
	snprintf(want, sizeof(want), "%s/.local/bin:/usr/bin:/bin", p_home);
	cr_expect_str_eq(get(out, "PATH"), want, "secure_path replaced by the login PATH");
	cr_expect_str_eq(get(out, "TERM"), "xterm");
	cr_expect_str_eq(get(out, "SUDO_USER"), "alice");
	userenv_free(out);

	snprintf(want, sizeof(want), "%s/%s", p_run, run_alice);
	mkdirs("%s", want);
	out = build(&alice, &o, in);
	cr_expect_str_eq(get(out, "XDG_RUNTIME_DIR"), want);
	userenv_free(out);
}

Test(userenv, path_through_sudo_is_kept)
{
	char *in[] = { "PATH=/home/alice/venv/bin:/usr/bin", sudo_alice, NULL };
	char *other[] = { "PATH=/home/alice/venv/bin:/usr/bin", sudo_other, NULL };
	char *no_sudo[] = { "PATH=/home/alice/venv/bin:/usr/bin", NULL };
	char *supath[] = { "PATH=/su/bin:/su/sbin", sudo_alice, NULL };
	struct userenv_opts o = {};
	char **out;

	out = build(&alice, &o, in);
	cr_expect_str_eq(get(out, "PATH"), "/home/alice/venv/bin:/usr/bin",
			 "sudo --preserve-env=PATH: the caller's PATH");
	userenv_free(out);
	out = build(&alice, &o, other);
	cr_expect_str_eq(get(out, "PATH"), "/usr/bin:/bin", "--user another: their login PATH");
	userenv_free(out);
	out = build(&alice, &o, no_sudo);
	cr_expect_str_eq(get(out, "PATH"), "/usr/bin:/bin", "root's --user: the login PATH");
	userenv_free(out);
	out = build(&alice, &o, supath);
	cr_expect_str_eq(get(out, "PATH"), "/usr/bin:/bin", "ENV_SUPATH is root's, not alice's");
	userenv_free(out);
	/* A secure_path from sudoers.d (files with a '.' are not read). */
	write_file(p_sudoers, "");
	write_file(strcat(strcpy((char[256]){}, p_sudoers_d), "/weir"),
		   "Defaults secure_path=/home/alice/venv/bin:/usr/bin\n");
	out = build(&alice, &o, in);
	cr_expect_str_eq(get(out, "PATH"), "/usr/bin:/bin");
	userenv_free(out);
}

Test(userenv, preserve_and_setenv)
{
	char *in[] = { "HOME=/root", "USER=root", "PATH=" SECURE, "FOO=caller", NULL };
	const char *keep[] = { "HOME,FOO", "PATH" };
	const char *set[] = { "A=1", "FOO", "B", "USER=u=v" };
	struct userenv_opts o = { .keep = keep, .n_keep = 2, .set = set, .n_set = 4 };
	struct identity root_id = { .change = false };
	char **out;

	out = build(&alice, &o, in);
	cr_expect_str_eq(get(out, "HOME"), "/root");
	cr_expect_str_eq(get(out, "PATH"), SECURE);
	cr_expect_str_eq(get(out, "LOGNAME"), "alice");
	cr_expect_str_eq(get(out, "A"), "1");
	cr_expect_str_eq(get(out, "FOO"), "caller");
	cr_expect_null(get(out, "B"), "--setenv B, unset in the caller: unset");
	cr_expect_str_eq(get(out, "USER"), "u=v", "--setenv comes last");
	userenv_free(out);

	o = (struct userenv_opts){ .keep_all = true };
	out = build(&alice, &o, in);
	cr_expect_str_eq(get(out, "HOME"), "/root");
	cr_expect_str_eq(get(out, "USER"), "root");
	cr_expect_null(get(out, "LOGNAME"), "--preserve-env: nothing added");
	userenv_free(out);

	o = (struct userenv_opts){ .set = set, .n_set = 1 };
	out = build(&root_id, &o, in);
	cr_expect_str_eq(get(out, "A"), "1", "--setenv without a switch");
	cr_expect_str_eq(get(out, "HOME"), "/root");
	userenv_free(out);
}

/* A name the caller's environment holds twice: the command gets the value
 * weir judged (the first, as getenv() reads it), once. */
Test(userenv, duplicate_names_keep_the_first)
{
	char *in[] = { "PATH=/home/alice/venv/bin:/usr/bin", sudo_alice, "FOO=1",
		       "PATH=/tmp/evil", "FOO=2", NULL };
	struct userenv_opts o = {};
	char **out, **p;
	int paths = 0;

	out = build(&alice, &o, in);
	for (p = out; *p; p++)
		paths += !strncmp(*p, "PATH=", 5);
	cr_expect_eq(paths, 1);
	cr_expect_str_eq(get(out, "PATH"), "/home/alice/venv/bin:/usr/bin");
	cr_expect_str_eq(get(out, "FOO"), "1");
	userenv_free(out);
}

Test(userenv, unknown_uid)
{
	struct identity n = { .change = true, .to_user = true, .uid = 54321, .gid = 54321,
			      .name = "54321" };
	struct userenv_opts o = {};
	char *in[] = { "HOME=/root", NULL };
	char **out;

	out = build(&n, &o, in);
	cr_expect_str_eq(get(out, "HOME"), "/");
	cr_expect_str_eq(get(out, "USER"), "54321");
	cr_expect_str_eq(get(out, "SHELL"), "/bin/sh");
	userenv_free(out);
}
