// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "weir.h"
#include "fds.h"
#include "spawn.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* In the child, between clone3 and exec: async-signal-safe calls only. */
/* What the child reports on the pipe: a phase and an errno. */
struct child_err {
	int setup; /* 1: identity or seccomp, 0: exec */
	int err;
};

static void __attribute__((noreturn)) child_fail(int errpipe, int setup, int err)
{
	struct child_err ce = { setup, err };

	if (write(errpipe, &ce, sizeof(ce)) < 0)
		_exit(EXIT_WEIR_FAILED);
	_exit(setup ? EXIT_WEIR_FAILED : err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/* The caller's dispositions: SIG_IGN survives exec, and is what nohup is for. */
static void restore_dispositions(const struct spawn_opts *o)
{
	struct sigaction sa = {};
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (!sigismember(o->sig_reset, sig))
			continue;
		sa.sa_handler = sigismember(o->sig_ign, sig) ? SIG_IGN : SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
}

static void __attribute__((noreturn)) child_exec(const struct spawn_opts *o, int errpipe,
						       pid_t parent)
{
	int err;

	/* If weir dies, the command goes too. The getppid() check closes the
	 * race with a weir that died before the prctl. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(EXIT_WEIR_FAILED);
	/* weir's caller's were made close-on-exec before weir opened any of
	 * its own; this catches what weir opened since without O_CLOEXEC. */
	fds_close_on_exec_child(o->keep_fds, o->n_keep_fds);
	err = sandbox_cgroup_ns(o->cgroup_mounts);
	err = err ?: sandbox_enter(o->id, o->filter);
	if (err)
		child_fail(errpipe, 1, err);
	/* PDEATHSIG is cleared by a change of credentials: set it again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(EXIT_WEIR_FAILED);
	restore_dispositions(o);
	sigprocmask(SIG_SETMASK, o->mask, NULL);
	/* execvp() searches the PATH of environ: make that the command's. A
	 * pointer store in the child's own copy of memory; the search runs
	 * as the command's user, as its shell's would. */
	if (o->envp)
		environ = o->envp;
	execvp(o->argv[0], o->argv);
	child_fail(errpipe, 0, errno);
}

int spawn_in_cgroup(const struct spawn_opts *o, pid_t *pid, int *exec_errno, bool *setup_failed)
{
	struct clone_args args = {
		.flags = CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.cgroup = (__u64)o->cgroup_fd,
	};
	struct child_err ce = {};
	pid_t parent = getpid();
	int pipefd[2], err = 0;
	ssize_t n;
	long ret;

	*exec_errno = 0;
	*setup_failed = false;
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	/* The child is born inside the cgroup: it never owns a socket made
	 * outside enforcement, and there is no window before a move. */
	ret = syscall(SYS_clone3, &args, sizeof(args));
	if (ret == 0) {
		close(pipefd[0]);
		child_exec(o, pipefd[1], parent);
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
		n = read(pipefd[0], &ce, sizeof(ce));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(ce)) {
		*exec_errno = ce.err;
		*setup_failed = ce.setup;
	}
	close(pipefd[0]);
	return 0;
}
