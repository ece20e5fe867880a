/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The command's environment. When weir switches to a user (the one who ran
 * sudo, or --user), the command gets that user's HOME, USER, LOGNAME,
 * SHELL, MAIL, XDG_RUNTIME_DIR and PATH, not root's (docs/run.md).
 *
 * PATH, when weir switches to user U:
 *   1. the caller's, if asked (--preserve-env, --preserve-env=PATH);
 *   2. the caller's, if weir runs under sudo for U itself and sudo let
 *      U's PATH through (`sudo --preserve-env=PATH`, or a sudoers without
 *      secure_path): that is, PATH is neither a secure_path of sudoers nor
 *      login.defs' ENV_SUPATH;
 *   3. else what U's login would have on Debian: ~/.local/bin and ~/bin if
 *      they are directories (/etc/skel/.profile adds them), then
 *      login.defs' ENV_PATH (ENV_SUPATH for uid 0).
 * With --preserve-env nothing is changed; --setenv applies last, always.
 */
#ifndef WEIR_USERENV_H
#define WEIR_USERENV_H

#include <stdbool.h>
#include <stddef.h>

#include "sandbox.h"

/* Debian's login.defs values, for a file that does not set them. */
#define USERENV_ENV_PATH "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
#define USERENV_ENV_SUPATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct userenv_opts {
	bool keep_all; /* --preserve-env: the caller's environment as is */
	const char **keep; /* --preserve-env=VAR,...: the lists, as given */
	size_t n_keep;
	const char **set; /* --setenv NAME=VALUE, or NAME: the caller's value */
	size_t n_set;
};

/* Where the system's settings are read (tests point them elsewhere). */
struct userenv_files {
	const char *login_defs; /* /etc/login.defs */
	const char *sudoers; /* /etc/sudoers */
	const char *sudoers_d; /* /etc/sudoers.d */
	const char *run_user; /* /run/user: XDG_RUNTIME_DIR is run_user/UID */
};

extern const struct userenv_files userenv_system;

/*
 * The command's environment from weir's (`env`), for `id`. *out is NULL
 * when the command keeps weir's environment unchanged (no switch, no
 * --setenv), else a NULL-terminated array for userenv_free().
 * Returns 0 or -ENOMEM.
 */
int userenv_build(const struct identity *id, const struct userenv_opts *o, char *const *env,
		  const struct userenv_files *f, char ***out);
void userenv_free(char **envp);

/* "NAME=VALUE" or "NAME", NAME a valid variable name (for --setenv). */
bool userenv_valid_setting(const char *s);
/* A variable name: letters, digits, '_', not starting with a digit. */
bool userenv_valid_name(const char *s, size_t len);
/* NAME[,NAME]... (for --preserve-env=). */
bool userenv_valid_list(const char *list);

/* KEY's value in a login.defs file ("PATH=" before it dropped), or -ENOENT. */
int userenv_login_defs(const char *file, const char *key, char *out, size_t len);

/* secure_path="..." on one sudoers line: 1 and the value, else 0. */
int userenv_secure_path_line(const char *line, char *out, size_t len);

/* What `id`'s login would have as PATH (rule 3 above). */
int userenv_login_path(const struct identity *id, const struct userenv_files *f, char *out,
		       size_t len);

#endif /* WEIR_USERENV_H */
