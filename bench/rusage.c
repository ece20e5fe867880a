// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rusage: what a command costs, it and the children it waited for: wall,
 * user and system time in milliseconds (microsecond resolution, where
 * /usr/bin/time rounds to 10 ms). bench/startup.sh times `weir run -- true`
 * with it.
 *
 *   rusage CMD [ARG...]      prints "WALL USER SYS" (ms) on stderr's last
 *                            line; exits with CMD's status (125: not run)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

static double ms(const struct timeval *t)
{
	return t->tv_sec * 1e3 + t->tv_usec / 1e3;
}

int main(int argc, char **argv)
{
	struct timespec a, b;
	struct rusage ru;
	int status;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: rusage CMD [ARG...]\n");
		return 125;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rusage: fork: %s\n", strerror(errno));
		return 125;
	}
	if (!pid) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "rusage: %s: %s\n", argv[1], strerror(errno));
		_exit(125);
	}
	/* The command's own usage, its waited-for children included (a
	 * weir run's command, its resolver's threads). */
	if (wait4(pid, &status, 0, &ru) < 0) {
		fprintf(stderr, "rusage: wait4: %s\n", strerror(errno));
		return 125;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	fprintf(stderr, "%.3f %.3f %.3f\n",
		(b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6, ms(&ru.ru_utime),
		ms(&ru.ru_stime));
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
