/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Work done in another network namespace. A socket belongs to the
 * namespace it was created in, for its whole life, whichever thread uses
 * it later; a thread created by a thread that joined a namespace starts
 * in it too. So an attachment's resolver binds 127.0.0.1 inside the
 * container's namespace and starts its threads (whose upstream sockets
 * and sock_diag queries must see that namespace) from a short-lived
 * thread that joined it: the daemon's own threads never change namespace.
 */
#ifndef WEIR_NETNS_H
#define WEIR_NETNS_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

/* Run fn(arg) on a thread of its own inside the network namespace NSFD
 * (-1, or the caller's own namespace: fn runs right here). Returns fn's
 * result, or -errno when the namespace cannot be joined. */
int netns_run(int nsfd, int (*fn)(void *arg), void *arg);
/* The inode of the network namespace NSFD (-1: ours), 0 if unknown. */
__u64 netns_inode(int nsfd);
/* An fd of PID's network namespace, or -errno. */
int netns_open_pid(pid_t pid);
/* An fd of the network namespace PATH names (/run/netns/NAME,
 * /proc/PID/ns/net), or -errno: -EINVAL when PATH is something else (a
 * FIFO, a device or a file is never opened for reading). */
int netns_open_path(const char *path);
/*
 * Is PID's namespace KIND ("net", "mnt") owned by our user namespace, that
 * is, made by root (a container runtime), not by an unprivileged user who
 * made a user namespace of its own (unshare -Ur) and so controls it?
 */
bool ns_of_pid_ours(pid_t pid, const char *kind);

#endif /* WEIR_NETNS_H */
