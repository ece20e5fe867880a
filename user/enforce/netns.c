// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/types.h>

#include "netns.h"

struct netns_job {
	int nsfd;
	int (*fn)(void *arg);
	void *arg;
	int ret;
};

static void *netns_main(void *p)
{
	struct netns_job *j = p;

	/* Only this thread moves (setns(2) acts on the caller thread); it
	 * ends right after, so nothing else ever runs in a namespace it
	 * did not expect. */
	if (setns(j->nsfd, CLONE_NEWNET))
		j->ret = -errno;
	else
		j->ret = j->fn(j->arg);
	return NULL;
}

/* Is NSFD the calling thread's own network namespace already? */
static bool netns_is_ours(int nsfd)
{
	struct stat ns, ours;

	return !fstat(nsfd, &ns) && !stat("/proc/thread-self/ns/net", &ours) &&
	       ns.st_dev == ours.st_dev && ns.st_ino == ours.st_ino;
}

int netns_run(int nsfd, int (*fn)(void *arg), void *arg)
{
	struct netns_job j = { .nsfd = nsfd, .fn = fn, .arg = arg };
	pthread_t t;
	int err;

	/* The daemon's own namespace (weir run beside it, a host's CI job):
	 * setns() would change nothing, and a thread costs an attach three
	 * hand-offs to the scheduler (a few ms each on a loaded machine). */
	if (nsfd < 0 || netns_is_ours(nsfd))
		return fn(arg);
	err = pthread_create(&t, NULL, netns_main, &j);
	if (err)
		return -err;
	pthread_join(t, NULL);
	return j.ret;
}

__u64 netns_inode(int nsfd)
{
	struct stat st;
	int ret = nsfd >= 0 ? fstat(nsfd, &st) : stat("/proc/thread-self/ns/net", &st);

	return ret ? 0 : st.st_ino;
}

int netns_open_pid(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int netns_open_path(const char *path)
{
	char self[64];
	struct statfs sf;
	int pfd, fd, ret;

	/* O_PATH first: what is not on nsfs is never opened, so a FIFO cannot
	 * block the caller (the daemon's lock) nor a device see an open. */
	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	if (fstatfs(pfd, &sf) || sf.f_type != NSFS_MAGIC) {
		close(pfd);
		return -EINVAL;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	close(pfd);
	if (ret)
		return ret;
	if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

bool ns_of_pid_ours(pid_t pid, const char *kind)
{
	struct stat st, own;
	char path[64];
	bool ours;
	int fd, ufd;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kind);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ufd = ioctl(fd, NS_GET_USERNS);
	close(fd);
	if (ufd < 0)
		return false;
	ours = !fstat(ufd, &st) && !stat("/proc/self/ns/user", &own) && st.st_ino == own.st_ino &&
	       st.st_dev == own.st_dev;
	close(ufd);
	return ours;
}
