// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/magic.h>

#include "fds.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static bool kept(int fd, const int *keep, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (keep[i] == fd)
			return true;
	return false;
}

static int keep_open(const int *keep, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (fcntl(keep[i], F_SETFD, 0))
			return -errno;
	return 0;
}

/* Kernels before 5.11 have no CLOSE_RANGE_CLOEXEC: every open descriptor,
 * as /proc lists them. */
static int cloexec_by_proc(const int *keep, int n)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int fd, ret = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd <= 2 || fd == dirfd(d) || kept(fd, keep, n))
			continue;
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) && errno != EBADF) {
			ret = -errno;
			break;
		}
	}
	closedir(d);
	return ret;
}

int fds_close_on_exec(const int *keep, int n)
{
	int ret;

	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC))
		ret = cloexec_by_proc(keep, n);
	else
		ret = 0;
	return ret ?: keep_open(keep, n);
}

void fds_close_on_exec_child(const int *keep, int n)
{
	int fd;

	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC))
		for (fd = 3; fd < 1024; fd++) /* weir's own, opened after the parent's pass */
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	keep_open(keep, n);
}

static void describe_peer(int fd, const char *kind, char *desc, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "";
	unsigned int port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		snprintf(desc, len, "a %s socket", kind);
		return;
	}
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		port = ntohs(s4->sin_port);
		snprintf(desc, len, "a %s socket connected to %s:%u", kind, addr, port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		port = ntohs(s6->sin6_port);
		snprintf(desc, len, "a %s socket connected to [%s]:%u", kind, addr, port);
	}
}

bool fds_is_inet_socket(int fd, char *desc, size_t len)
{
	int domain = 0, type = 0;
	socklen_t sl = sizeof(domain);
	struct stat st;

	if (fstat(fd, &st) || !S_ISSOCK(st.st_mode))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl))
		return false;
	if (domain != AF_INET && domain != AF_INET6)
		return false;
	sl = sizeof(type);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl);
	describe_peer(fd, type == SOCK_STREAM ? "TCP" : type == SOCK_DGRAM ? "UDP" : "inet",
		      desc, len);
	return true;
}

bool fds_on_cgroupfs(int fd)
{
	struct statfs sf;

	return !fstatfs(fd, &sf) &&
	       (sf.f_type == CGROUP2_SUPER_MAGIC || sf.f_type == CGROUP_SUPER_MAGIC);
}
