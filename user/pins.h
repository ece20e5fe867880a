/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Fail closed: a run's bpf_links are pinned under <bpffs>/weir/run-<pid>
 * (root only), so if weir dies, even by SIGKILL, its programs stay attached
 * and whatever is left in the cgroup stays enforced. `weir status` lists
 * runs; `weir cleanup` ends the ones whose weir is gone.
 */
#ifndef WEIR_PINS_H
#define WEIR_PINS_H

#include <stddef.h>
#include <sys/types.h>

#define PINS_SUBDIR "weir"

/* The bpffs mount (mounting one at /sys/fs/bpf if there is none). */
int pins_bpffs(char *mnt, size_t len);
/* Make <bpffs>/weir/run-<pid> (mode 0700); its path in dir[]. */
int pins_dir_create(pid_t pid, char *dir, size_t len);
/* Remove a run's pin directory and whatever pins are left in it. */
int pins_dir_remove(const char *dir);

int cmd_status(int argc, char **argv);
int cmd_cleanup(int argc, char **argv);

#endif /* WEIR_PINS_H */
