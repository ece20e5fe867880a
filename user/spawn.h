/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Start a command inside a cgroup with clone3(CLONE_INTO_CGROUP). */
#ifndef WEIR_SPAWN_H
#define WEIR_SPAWN_H

#include <signal.h>
#include <sys/types.h>

/*
 * Start argv[0] (PATH lookup) as a child born in cgroup_fd, with signal
 * mask child_mask. On return *pid is the child; *exec_errno is 0 if exec
 * succeeded, else its errno (the child has then exited 126 or 127).
 * Returns 0 or a negative errno when no child could be made.
 */
int spawn_in_cgroup(char **argv, int cgroup_fd, const sigset_t *child_mask, pid_t *pid,
		    int *exec_errno);

#endif /* WEIR_SPAWN_H */
