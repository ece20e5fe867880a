/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Start a command inside a cgroup with clone3(CLONE_INTO_CGROUP). */
#ifndef WEIR_SPAWN_H
#define WEIR_SPAWN_H

#include <signal.h>
#include <sys/types.h>

#include "sandbox.h"

struct spawn_opts {
	char **argv; /* argv[0] is looked up in the command's PATH */
	int cgroup_fd; /* the child is born in this cgroup */
	const sigset_t *mask; /* the child's signal mask */
	const sigset_t *sig_reset; /* dispositions weir changed: back to SIG_DFL, */
	const sigset_t *sig_ign; /* or to SIG_IGN, as weir's caller had them */
	const struct identity *id; /* who it runs as */
	char **envp; /* its environment (PATH is searched in it); NULL: weir's */
	const struct sock_fprog *filter; /* seccomp, or len 0 */
	const int *keep_fds; /* inherited besides 0-2 (--pass-fd); all else closed */
	int n_keep_fds;
	char *const *cgroup_mounts; /* sandbox_cgroup_ns's; NULL: none remounted */
};

/*
 * Start the command. On return *pid is the child; *exec_errno is 0 if exec
 * succeeded, else its errno (the child has then exited 126 or 127, or 125
 * when it could not take on its identity or filter: *setup_failed).
 * Returns 0 or a negative errno when no child could be made.
 */
int spawn_in_cgroup(const struct spawn_opts *o, pid_t *pid, int *exec_errno, bool *setup_failed);

#endif /* WEIR_SPAWN_H */
