// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "cli.h"
#include "spawn.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* In the child, between clone3 and exec: async-signal-safe calls only. */
static void __attribute__((noreturn)) child_exec(char **argv, const sigset_t *mask, int errpipe,
						       pid_t parent)
{
	int err;

	/* If weir dies, its links (and so enforcement) go with it: take the
	 * command down too. The getppid() check closes the race with a weir
	 * that died before the prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(EXIT_WEIR_FAILED);
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvp(argv[0], argv);
	err = errno;
	if (write(errpipe, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(err == ENOENT ? 127 : 126);
}

int spawn_in_cgroup(char **argv, int cgroup_fd, const sigset_t *child_mask, pid_t *pid,
		    int *exec_errno)
{
	struct clone_args args = {
		.flags = CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.cgroup = (__u64)cgroup_fd,
	};
	pid_t parent = getpid();
	int pipefd[2], err = 0;
	ssize_t n;
	long ret;

	*exec_errno = 0;
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	/* The child is born inside the cgroup: it never owns a socket made
	 * outside enforcement, and there is no window before a move. */
	ret = syscall(SYS_clone3, &args, sizeof(args));
	if (ret == 0) {
		close(pipefd[0]);
		child_exec(argv, child_mask, pipefd[1], parent);
	}
	close(pipefd[1]);
	if (ret < 0) {
		err = -errno;
		close(pipefd[0]);
		return err;
	}
	*pid = ret;
	/* EOF: exec succeeded (the pipe was close-on-exec). */
	do
		n = read(pipefd[0], exec_errno, sizeof(*exec_errno));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(*exec_errno))
		*exec_errno = 0;
	close(pipefd[0]);
	return 0;
}
