// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The command's environment, built in weir before clone3(): the child may
 * only make async-signal-safe calls, so all of this (files read, strings
 * made) happens here. The rules are in userenv.h and docs/run.md.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "userenv.h"

#define ENV_PATH_MAX 8192

const struct userenv_files userenv_system = {
	.login_defs = "/etc/login.defs",
	.sudoers = "/etc/sudoers",
	.sudoers_d = "/etc/sudoers.d",
	.run_user = "/run/user",
};

/* A growing NULL-terminated array of "NAME=VALUE" strings, all owned. */
struct envv {
	char **v;
	size_t n, cap;
};

bool userenv_valid_name(const char *s, size_t len)
{
	size_t i;

	if (!len || isdigit((unsigned char)s[0]))
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

bool userenv_valid_setting(const char *s)
{
	const char *eq = strchr(s, '=');

	return userenv_valid_name(s, eq ? (size_t)(eq - s) : strlen(s));
}

static const char *env_get(char *const *env, const char *name)
{
	size_t len = strlen(name);

	for (; env && *env; env++)
		if (!strncmp(*env, name, len) && (*env)[len] == '=')
			return *env + len + 1;
	return NULL;
}

static void env_del(struct envv *e, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < e->n; i++) {
		if (strncmp(e->v[i], name, len) || e->v[i][len] != '=')
			continue;
		free(e->v[i]);
		e->v[i] = e->v[--e->n];
		e->v[e->n] = NULL;
		return;
	}
}

static bool env_has(const struct envv *e, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (!strncmp(e->v[i], name, len) && e->v[i][len] == '=')
			return true;
	return false;
}

/* Add "NAME=VALUE" (made by the caller, owned from now on), replacing NAME. */
static int env_add(struct envv *e, char *setting)
{
	char **v;

	if (!setting)
		return -ENOMEM;
	env_del(e, setting, strchr(setting, '=') - setting);
	if (e->n + 2 > e->cap) {
		v = realloc(e->v, (e->cap * 2 + 16) * sizeof(*v));
		if (!v) {
			free(setting);
			return -ENOMEM;
		}
		e->v = v;
		e->cap = e->cap * 2 + 16;
	}
	e->v[e->n++] = setting;
	e->v[e->n] = NULL;
	return 0;
}

/* NAME=VALUE, or NAME unset if value is NULL. */
static int env_set(struct envv *e, const char *name, const char *value)
{
	char *s;

	if (!value) {
		env_del(e, name, strlen(name));
		return 0;
	}
	if (asprintf(&s, "%s=%s", name, value) < 0)
		return -ENOMEM;
	return env_add(e, s);
}

/* Is NAME in one of the comma-separated lists of --preserve-env=? */
static bool kept(const struct userenv_opts *o, const char *name)
{
	size_t i, len = strlen(name), n;
	const char *p;

	for (i = 0; i < o->n_keep; i++)
		for (p = o->keep[i]; *p; p += n + (p[n] == ',')) {
			n = strcspn(p, ",");
			if (n == len && !strncmp(p, name, len))
				return true;
		}
	return false;
}

bool userenv_valid_list(const char *list)
{
	size_t n;

	do {
		n = strcspn(list, ",");
		if (!userenv_valid_name(list, n))
			return false;
		list += n;
	} while (*list++);
	return true;
}

/*
 * A directory of UID's own. weir checks as root: a user's symlink to a
 * root-only path must not be followed into the command's PATH, nor tell
 * the user whether that path is a directory.
 */
static bool is_users_dir(const char *path, uid_t uid)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode) && st.st_uid == uid;
}

/* The word after `key` on a login.defs line: "ENV_PATH  PATH=/bin:/usr/bin". */
int userenv_login_defs(const char *file, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key), vlen;
	char line[ENV_PATH_MAX], *p, *v;
	FILE *fp = fopen(file, "re");
	int ret = -ENOENT;

	if (!fp)
		return -errno;
	while (ret && fgets(line, sizeof(line), fp)) {
		p = line + strspn(line, " \t");
		if (strncmp(p, key, klen) || !strchr(" \t", p[klen]) || !p[klen])
			continue;
		v = p + klen + strspn(p + klen, " \t");
		vlen = strcspn(v, " \t\r\n");
		if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
			v++;
			vlen -= 2;
		}
		if (!strncmp(v, "PATH=", 5)) { /* shadow's login drops it too */
			v += 5;
			vlen -= 5;
		}
		if (vlen >= len)
			break;
		memcpy(out, v, vlen);
		out[vlen] = '\0';
		ret = 0;
	}
	fclose(fp);
	return ret;
}

/*
 * `Defaults secure_path="/usr/sbin:/usr/bin"`, also scoped (Defaults:alice)
 * and among other settings (Defaults env_reset, secure_path=/bin).
 */
int userenv_secure_path_line(const char *line, char *out, size_t len)
{
	const char *p = line + strspn(line, " \t"), *k, *v;
	size_t vlen;

	if (strncmp(p, "Defaults", 8) || !strchr(" \t:@!>", p[8]) || !p[8])
		return 0;
	for (k = strstr(p + 8, "secure_path"); k; k = strstr(k + 1, "secure_path")) {
		v = k + 11 + strspn(k + 11, " \t");
		if (strchr(" \t,", k[-1]) && *v == '=')
			break;
	}
	if (!k)
		return 0;
	v++;
	v += strspn(v, " \t");
	if (*v == '"')
		vlen = strcspn(++v, "\"");
	else
		vlen = strcspn(v, ", \t\r\n");
	if (vlen >= len)
		return 0;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return 1;
}

static bool file_has_secure_path(const char *file, const char *path)
{
	char line[ENV_PATH_MAX], sp[ENV_PATH_MAX];
	FILE *fp = fopen(file, "re");
	bool found = false;

	if (!fp)
		return false;
	while (!found && fgets(line, sizeof(line), fp))
		found = userenv_secure_path_line(line, sp, sizeof(sp)) && !strcmp(sp, path);
	fclose(fp);
	return found;
}

/* Is `path` a secure_path of sudoers? The files sudo reads by default:
 * sudoers, and sudoers.d/ less names with a '.' or ending in '~'. */
static bool sudo_set_path(const struct userenv_files *f, const char *path)
{
	char file[PATH_MAX];
	struct dirent *de;
	bool found;
	DIR *d;

	found = file_has_secure_path(f->sudoers, path);
	d = found ? NULL : opendir(f->sudoers_d);
	while (d && !found && (de = readdir(d))) {
		if (strchr(de->d_name, '.') || de->d_name[strlen(de->d_name) - 1] == '~')
			continue;
		snprintf(file, sizeof(file), "%s/%s", f->sudoers_d, de->d_name);
		found = file_has_secure_path(file, path);
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * Rule 2 of userenv.h: under sudo, for the user who ran it, a PATH that
 * sudo did not set (secure_path) and that is not root's login PATH came
 * from that user: `sudo --preserve-env=PATH`, or no secure_path at all.
 */
static bool path_from_caller(const struct identity *id, char *const *env,
			     const struct userenv_files *f)
{
	const char *sudo_uid = env_get(env, "SUDO_UID"), *path = env_get(env, "PATH");
	char supath[ENV_PATH_MAX], *end;
	unsigned long uid;

	if (!path || !sudo_uid)
		return false;
	errno = 0;
	uid = strtoul(sudo_uid, &end, 10);
	if (errno || *end || end == sudo_uid || uid != id->uid)
		return false;
	if (userenv_login_defs(f->login_defs, "ENV_SUPATH", supath, sizeof(supath)))
		strcpy(supath, USERENV_ENV_SUPATH);
	return strcmp(path, supath) && strcmp(path, USERENV_ENV_SUPATH) && !sudo_set_path(f, path);
}

/* Append "HOME/SUB:" to out if it is a directory of UID's. */
static void add_dir(char *out, size_t len, uid_t uid, const char *home, const char *sub)
{
	char dir[PATH_MAX];
	size_t n = strlen(out);

	if (snprintf(dir, sizeof(dir), "%s/%s", home, sub) < (int)sizeof(dir) &&
	    is_users_dir(dir, uid))
		snprintf(out + n, len - n, "%s:", dir);
}

int userenv_login_path(const struct identity *id, const struct userenv_files *f, char *out,
		       size_t len)
{
	const char *key = id->uid ? "ENV_PATH" : "ENV_SUPATH";
	char sys[ENV_PATH_MAX];
	size_t n;

	if (userenv_login_defs(f->login_defs, key, sys, sizeof(sys)) || !*sys)
		strcpy(sys, id->uid ? USERENV_ENV_PATH : USERENV_ENV_SUPATH);
	out[0] = '\0';
	/* /etc/skel/.profile puts ~/bin first, then ~/.local/bin before it. */
	if (id->home && id->home[0] == '/' && id->home[1]) {
		add_dir(out, len, id->uid, id->home, ".local/bin");
		add_dir(out, len, id->uid, id->home, "bin");
	}
	n = strlen(out);
	if ((size_t)snprintf(out + n, len - n, "%s", sys) >= len - n)
		return -ENAMETOOLONG;
	return 0;
}

/* Variable NAME gets VALUE (NULL: unset) unless --preserve-env=NAME. */
static int set_unless_kept(struct envv *e, const struct userenv_opts *o, const char *name,
			   const char *value)
{
	return kept(o, name) ? 0 : env_set(e, name, value);
}

static int switch_user(struct envv *e, const struct identity *id, const struct userenv_opts *o,
		       char *const *env, const struct userenv_files *f)
{
	char num[16], rt[PATH_MAX], mail[PATH_MAX], path[ENV_PATH_MAX];
	const char *login = id->login;
	int ret;

	/* A uid the password database does not know: its number, HOME=/. */
	snprintf(num, sizeof(num), "%u", id->uid);
	if (!login)
		login = num;
	snprintf(rt, sizeof(rt), "%s/%u", f->run_user, id->uid);
	snprintf(mail, sizeof(mail), "/var/mail/%s", login);
	ret = set_unless_kept(e, o, "HOME", id->home && *id->home ? id->home : "/");
	ret = ret ?: set_unless_kept(e, o, "USER", login);
	ret = ret ?: set_unless_kept(e, o, "LOGNAME", login);
	ret = ret ?: set_unless_kept(e, o, "SHELL",
				     id->shell && *id->shell ? id->shell : "/bin/sh");
	if (env_get(env, "MAIL")) /* sudo sets it: root's mailbox is not theirs */
		ret = ret ?: set_unless_kept(e, o, "MAIL", mail);
	/* pam_systemd makes /run/user/UID at login; if U has none, root's is
	 * still not theirs to use. */
	ret = ret ?: set_unless_kept(e, o, "XDG_RUNTIME_DIR", is_users_dir(rt, id->uid) ? rt : NULL);
	if (ret || path_from_caller(id, env, f))
		return ret;
	ret = userenv_login_path(id, f, path, sizeof(path));
	return ret ?: set_unless_kept(e, o, "PATH", path);
}

/* --setenv NAME=VALUE, or NAME: the caller's value (unset if none). */
static int apply_setenv(struct envv *e, const char *s, char *const *env)
{
	if (strchr(s, '='))
		return env_add(e, strdup(s));
	return env_set(e, s, env_get(env, s));
}

int userenv_build(const struct identity *id, const struct userenv_opts *o, char *const *env,
		  const struct userenv_files *f, char ***out)
{
	struct envv e = {};
	size_t i;
	int ret = 0;

	*out = NULL;
	if (!id->to_user && !o->n_set)
		return 0;
	/* A name twice: the first, as getenv() and the rules below read it. */
	for (i = 0; !ret && env && env[i]; i++)
		if (strchr(env[i], '=') && !env_has(&e, env[i], strchr(env[i], '=') - env[i]))
			ret = env_add(&e, strdup(env[i]));
	if (!ret && id->to_user && !o->keep_all)
		ret = switch_user(&e, id, o, env, f);
	for (i = 0; !ret && i < o->n_set; i++)
		ret = apply_setenv(&e, o->set[i], env);
	if (!ret && !e.v) /* an empty environment is still one */
		e.v = calloc(1, sizeof(*e.v));
	if (ret || !e.v) {
		userenv_free(e.v);
		return ret ?: -ENOMEM;
	}
	*out = e.v;
	return 0;
}

void userenv_free(char **envp)
{
	char **p;

	for (p = envp; p && *p; p++)
		free(*p);
	free(envp);
}
