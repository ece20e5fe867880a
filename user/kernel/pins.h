/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Fail closed: a run's bpf_links are pinned under <bpffs>/weir/run-<pid>
 * (root only), so if weir dies, even by SIGKILL, its programs stay attached
 * and whatever is left in the cgroup stays enforced (runs.c lists the runs
 * and ends the stale ones).
 */
#ifndef WEIR_PINS_H
#define WEIR_PINS_H

#include <stddef.h>
#include <sys/types.h>

#define PINS_SUBDIR "weir"

/* The bpffs mount (mounting one at /sys/fs/bpf if there is none). */
int pins_bpffs(char *mnt, size_t len);
/*
 * Make <bpffs>/weir/run-<pid> (mode 0700); its path in dir[]. Call it only
 * holding the cgroup run-<pid>: leftover pins of that name are removed.
 */
int pins_dir_create(pid_t pid, char *dir, size_t len);
/* Remove a run's pin directory and whatever pins are left in it. */
int pins_dir_remove(const char *dir);

/*
 * Where run RUN's pin directory is, as the mount namespace of process VIA
 * sees it (0: ours), through /proc/VIA/root: a weir in a mount namespace
 * with no bpffs (`ip netns exec` remounts /sys) mounts one of its own, and
 * only that namespace sees it. 0 and the path in dir[] if it is there.
 */
int pins_dir_find(pid_t via, pid_t run, char *dir, size_t len);
/* An O_PATH fd of DIR's parent (<bpffs>/weir): it keeps that bpffs reachable
 * after the namespace DIR was found through is gone. */
int pins_dir_open(const char *dir);
/* pins_dir_remove() for run-RUN below PARENT (from pins_dir_open()). */
int pins_dir_remove_at(int parent, pid_t run);

#endif /* WEIR_PINS_H */
