// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

#include "cgroup.h"
#include "log.h"
#include "pins.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static int find_bpffs(char *mnt, size_t len)
{
	return mount_find("/proc/self/mountinfo", "bpf", mnt, len);
}

int pins_bpffs(char *mnt, size_t len)
{
	struct statfs st;

	if (!find_bpffs(mnt, len))
		return 0;
	/* Mounting bpffs at its usual place is what systemd does at boot. */
	snprintf(mnt, len, "/sys/fs/bpf");
	if (!statfs(mnt, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(mnt, 0700) && errno != EEXIST)
		return -errno;
	if (mount("bpf", mnt, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"))
		return -errno;
	pr_debug("mounted bpffs at %s\n", mnt);
	return 0;
}

int pins_dir_create(pid_t pid, char *dir, size_t len)
{
	char mnt[CGROUP_PATH_MAX];
	int ret;

	ret = pins_bpffs(mnt, sizeof(mnt));
	if (ret)
		return ret;
	if ((size_t)snprintf(dir, len, "%s/%s", mnt, PINS_SUBDIR) >= len)
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(dir, len, "%s/%s/run-%d", mnt, PINS_SUBDIR, pid) >= len)
		return -ENAMETOOLONG;
	if (!mkdir(dir, 0700))
		return 0;
	if (errno != EEXIST)
		return -errno;
	/* The caller made and holds the cgroup run-<pid>, so no live run has
	 * this name: these are the pins of a dead one whose cgroup is gone
	 * (their links went with it). Left, they would make pinning fail. */
	pr_debug("removing leftover pins of an earlier run-%d in %s\n", pid, dir);
	ret = pins_dir_remove(dir);
	if (ret)
		return ret;
	return mkdir(dir, 0700) ? -errno : 0;
}

/* -EXDEV unless FD is on a bpffs. */
static int on_bpffs(int fd)
{
	struct statfs st;

	if (fstatfs(fd, &st))
		return -errno;
	return st.f_type == BPF_FS_MAGIC ? 0 : -EXDEV;
}

/*
 * Open PATH, a directory on a bpffs, following no symlink: PATH may lead
 * through /proc/PID/root of a process of a stale run, into a mount
 * namespace its user made, where any of it may be a symlink to root's
 * files (and cleanup removes what it finds there, as root). Only the
 * /proc/PID/root link itself is followed: it is the kernel's.
 */
static int open_pins_path(const char *path, int flags)
{
	struct open_how how = { .flags = flags | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH };
	const char *rel = path + 1;
	char root[64] = "/";
	int rfd, fd, n = 0, ret;

	if (path[0] != '/')
		return -EINVAL;
	if (sscanf(path, "/proc/%*d/root/%n", &n) == 0 && n > 0) {
		snprintf(root, sizeof(root), "%.*s", n - 1, path);
		rel = path + n;
	}
	rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -errno;
	fd = syscall(SYS_openat2, rfd, rel, &how, sizeof(how));
	ret = fd < 0 ? -errno : on_bpffs(fd);
	close(rfd);
	if (ret && fd >= 0)
		close(fd);
	return ret ?: fd;
}

int pins_dir_find(pid_t via, pid_t run, char *dir, size_t len)
{
	char mi[64], root[64] = "", mnt[CGROUP_PATH_MAX];
	int fd;

	snprintf(mi, sizeof(mi), "/proc/self/mountinfo");
	if (via) {
		snprintf(mi, sizeof(mi), "/proc/%d/mountinfo", via);
		snprintf(root, sizeof(root), "/proc/%d/root", via);
	}
	if (mount_find(mi, "bpf", mnt, sizeof(mnt)))
		return -ENOENT;
	if ((size_t)snprintf(dir, len, "%s%s/%s/run-%d", root, mnt, PINS_SUBDIR, run) >= len)
		return -ENAMETOOLONG;
	fd = open_pins_path(dir, O_PATH);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int pins_dir_open(const char *dir)
{
	char parent[CGROUP_PATH_MAX];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	return open_pins_path(parent, O_PATH);
}

int pins_dir_remove_at(int parent, pid_t run)
{
	char name[32];
	struct dirent *de;
	DIR *d;
	int fd, ret;

	snprintf(name, sizeof(name), "run-%d", run);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = on_bpffs(parent) ?: on_bpffs(fd);
	if (ret) {
		close(fd);
		return ret;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		unlinkat(fd, de->d_name, 0); /* the last reference to a link: it detaches */
	}
	closedir(d);
	return unlinkat(parent, name, AT_REMOVEDIR) && errno != ENOENT ? -errno : 0;
}

int pins_dir_remove(const char *dir)
{
	const char *base = strrchr(dir, '/');
	pid_t run;
	int fd, ret;

	if (!base || sscanf(base, "/run-%d", &run) != 1)
		return -EINVAL;
	fd = pins_dir_open(dir);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	ret = pins_dir_remove_at(fd, run);
	close(fd);
	return ret;
}
