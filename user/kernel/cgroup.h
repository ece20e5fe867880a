/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* cgroup v2: find the mount, make a cgroup for a run, empty and remove it. */
#ifndef WEIR_CGROUP_H
#define WEIR_CGROUP_H

#include <stddef.h>
#include <linux/types.h>

#define CGROUP_PATH_MAX 4096

/*
 * The cgroup2 mount point from a mountinfo file (/proc/self/mountinfo):
 * /sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on hybrid systems.
 * -ENOENT when there is none.
 */
int cgroup_find_v2(const char *mountinfo, char *mnt, size_t len);
/* The first mount of file system TYPE ("bpf", ...), the same way. */
int mount_find(const char *mountinfo, const char *type, char *mnt, size_t len);

/* Where weir mounts cgroup2 when none is (`ip netns exec` remounts /sys). */
#define CGROUP_OWN_MOUNT "/run/weir/cgroup2"
/*
 * The cgroup2 mount: the first in /proc/self/mountinfo, or, for root when
 * there is none, one weir mounts at CGROUP_OWN_MOUNT in the current mount
 * namespace (the same hierarchy: the host sees the same cgroups).
 */
int cgroup_mount_v2(char *mnt, size_t len);

/* A run's cgroup while its weir makes it, and once weir holds its lock. */
#define CGROUP_MODE_STARTING 0700
#define CGROUP_MODE_LOCKED 0711
/*
 * mkdir MNT/weir/NAME and take its lock (flock LOCK_EX, held as long as the
 * returned O_DIRECTORY fd is open: close it after cgroup_remove()); path in
 * path[]. -EEXIST: a run of that name is still there.
 */
int cgroup_create(const char *mnt, const char *name, char *path, size_t len);
/* The cgroup id (what bpf_get_current_cgroup_id() returns) of a path. */
int cgroup_id(const char *path, __u64 *id);
/* SIGKILL every process in the cgroup and its children and wait until it
 * is empty (cgroup.kill on 5.14+, else freeze + kill loop). */
int cgroup_kill_all(const char *path);
/* rmdir the cgroup and any child cgroups, deepest first. */
int cgroup_remove(const char *path);

#endif /* WEIR_CGROUP_H */
