// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "log.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

int mount_find(const char *mountinfo, const char *type, char *mnt, size_t len)
{
	char *line = NULL, *sep, point[CGROUP_PATH_MAX], fstype[64];
	size_t cap = 0;
	int ret = -ENOENT;
	FILE *f;

	f = fopen(mountinfo, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		/* "36 25 0:31 / /sys/fs/cgroup/unified rw,... - cgroup2 cgroup2 rw" */
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep, " - %63s", fstype) != 1 || strcmp(fstype, type))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
			continue;
		unescape(point);
		if (strlen(point) >= len) {
			ret = -ENAMETOOLONG;
			break;
		}
		strcpy(mnt, point);
		ret = 0;
		break;
	}
	free(line);
	fclose(f);
	return ret;
}

int cgroup_find_v2(const char *mountinfo, char *mnt, size_t len)
{
	return mount_find(mountinfo, "cgroup2", mnt, len);
}

int cgroup_mount_v2(char *mnt, size_t len)
{
	int ret;

	ret = cgroup_find_v2("/proc/self/mountinfo", mnt, len);
	if (ret != -ENOENT || geteuid())
		return ret;
	/* Not at /sys/fs/cgroup: that may be a cgroup v1 tmpfs, or read-only. */
	if ((mkdir("/run/weir", 0755) && errno != EEXIST) ||
	    (mkdir(CGROUP_OWN_MOUNT, 0755) && errno != EEXIST))
		return -errno;
	if (mount("cgroup2", CGROUP_OWN_MOUNT, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		return -errno;
	pr_debug("mounted cgroup2 at %s\n", CGROUP_OWN_MOUNT);
	if ((size_t)snprintf(mnt, len, "%s", CGROUP_OWN_MOUNT) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * The cgroup is also the run's lock: its weir holds flock(LOCK_EX) on the
 * directory from just after mkdir until after rmdir, and the kernel lets go
 * when weir dies, however it dies. cgroupfs is one hierarchy whichever
 * mount namespace looks at it, so every weir sees the same lock. The mode
 * keeps everyone but root from opening the directory (a process left in a
 * stale run could otherwise hold the lock and make the run look alive);
 * 0700 until the lock is taken, 0711 after, so that `weir cleanup` can tell
 * a run still starting from one whose weir is gone (runs.c).
 */
int cgroup_create(const char *mnt, const char *name, char *path, size_t len)
{
	struct stat held, now;
	int fd, ret;

	if ((size_t)snprintf(path, len, "%s/weir", mnt) >= len)
		return -ENAMETOOLONG;
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(path, len, "%s/weir/%s", mnt, name) >= len)
		return -ENAMETOOLONG;
	if (mkdir(path, CGROUP_MODE_STARTING))
		return -errno;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		rmdir(path);
		return ret;
	}
	/* Only a `weir cleanup` looking at it can hold it now, briefly. */
	if (flock(fd, LOCK_EX) || fstat(fd, &held) || fchmod(fd, CGROUP_MODE_LOCKED)) {
		ret = -errno;
		goto fail;
	}
	/* It took us for stale (a pid it could not see) and removed us. */
	if (stat(path, &now) || now.st_ino != held.st_ino) {
		ret = -EAGAIN;
		close(fd);
		return ret;
	}
	return fd;
fail:
	close(fd);
	rmdir(path);
	return ret;
}

int cgroup_id(const char *path, __u64 *id)
{
	struct stat st;

	/* kernfs: the inode number is the cgroup id on 64-bit kernels. */
	if (stat(path, &st))
		return -errno;
	*id = st.st_ino;
	return 0;
}

static int write_file(const char *dir, const char *file, const char *val)
{
	char p[CGROUP_PATH_MAX + 32];
	int fd, ret = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static bool populated(const char *dir)
{
	char p[CGROUP_PATH_MAX + 32], line[128];
	bool pop = true;
	FILE *f;

	snprintf(p, sizeof(p), "%s/cgroup.events", dir);
	f = fopen(p, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "populated ", 10))
			pop = line[10] != '0';
	fclose(f);
	return pop;
}

/* Kernels without cgroup.kill: kill what cgroup.procs lists, children too. */
static void kill_listed(const char *dir)
{
	char p[CGROUP_PATH_MAX + 32];
	struct dirent *de;
	DIR *d;
	FILE *f;
	int pid;

	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	f = fopen(p, "re");
	if (f) {
		while (fscanf(f, "%d", &pid) == 1)
			kill(pid, SIGKILL);
		fclose(f);
	}
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		kill_listed(p);
	}
	closedir(d);
}

int cgroup_kill_all(const char *path)
{
	struct timespec tick = { 0, 2 * 1000 * 1000 };
	bool have_kill;
	int i;

	have_kill = !write_file(path, "cgroup.kill", "1");
	if (!have_kill)
		write_file(path, "cgroup.freeze", "1"); /* stop forks racing the kill loop */
	for (i = 0; i < 5000 && populated(path); i++) { /* ~10 s */
		if (!have_kill)
			kill_listed(path);
		nanosleep(&tick, NULL);
	}
	if (populated(path)) {
		pr_warn("processes in %s survived SIGKILL for 10 s\n", path);
		return -EBUSY;
	}
	return 0;
}

static int remove_tree(const char *dir)
{
	char p[CGROUP_PATH_MAX + 256];
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		ret = remove_tree(p) ?: ret;
	}
	closedir(d);
	if (rmdir(dir) && errno != ENOENT)
		ret = -errno;
	return ret;
}

int cgroup_remove(const char *path)
{
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	int i, ret;

	/* rmdir can see EBUSY for a moment after the last task exited. */
	for (i = 0; i < 200; i++) {
		ret = remove_tree(path);
		if (ret != -EBUSY)
			break;
		nanosleep(&tick, NULL);
	}
	if (ret)
		pr_warn("cannot remove cgroup %s: %s\n", path, strerror(-ret));
	return ret;
}
