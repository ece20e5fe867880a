/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The descriptors the command inherits: its stdin, stdout and stderr, and
 * those the user names with --pass-fd, nothing else.
 *
 * A socket made outside the cgroup was judged by no hook when it was made
 * or connected, and its packets are not the cgroup's (the backstop sees a
 * socket's packets by the cgroup it was born in). Inherited, it would reach
 * wherever it leads. So every other descriptor of weir's caller is made
 * close-on-exec before weir opens anything, and again in the child.
 */
#ifndef WEIR_FDS_H
#define WEIR_FDS_H

#include <stdbool.h>
#include <stddef.h>

#define FDS_PASS_MAX 64 /* --pass-fd, at most */

/*
 * Every descriptor above 2 but keep[0..n) close-on-exec; keep[] loses it.
 * Returns 0 or a negative errno.
 */
int fds_close_on_exec(const int *keep, int n);

/* In the child, between clone3 and exec: the same, async-signal-safe. */
void fds_close_on_exec_child(const int *keep, int n);

/*
 * If FD is an AF_INET or AF_INET6 socket: true, with what it is ("a TCP
 * socket connected to 203.0.113.5:443", "a UDP socket") in desc.
 */
bool fds_is_inet_socket(int fd, char *desc, size_t len);

/*
 * Is FD a file or directory of a cgroup file system (v2 or v1)? Handed to
 * the command, a directory of the machine's cgroup tree reaches every
 * cgroup.procs below it (openat, /proc/self/fd/N/...), and a cgroup.procs
 * opened outside moves whoever writes to it with its opener's rights: a
 * way out of the cgroup, so never passed on.
 */
bool fds_on_cgroupfs(int fd);

#endif /* WEIR_FDS_H */
