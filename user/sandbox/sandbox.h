/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the command gets besides the cgroup: a seccomp filter for what the
 * cgroup hooks never see, and the identity it runs as.
 *
 * cgroup/sock_create only sees inet sockets (inet_create, inet6_create), so
 * socket families that reach past the machine without IP (AF_PACKET,
 * AF_VSOCK, AF_BLUETOOTH, AF_CAN, AF_TIPC, AF_RDS, AF_XDP, ...) are refused
 * with EAFNOSUPPORT by seccomp; io_uring, whose socket operations seccomp
 * cannot inspect, is refused with ENOSYS, which liburing users fall back
 * from.
 */
#ifndef WEIR_SANDBOX_H
#define WEIR_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/filter.h>

/* Families a command may create: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK. */
bool sandbox_family_allowed(int family);

/* The filter as classic BPF, built here (libseccomp) before any fork. */
int sandbox_build(struct sock_fprog *out);
void sandbox_free(struct sock_fprog *f);

/* Who the command runs as. */
struct identity {
	bool change; /* false: keep weir's own */
	bool to_user; /* a user was chosen (sudo's, --user): the environment is theirs */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	const char *name; /* for messages */
	/* From the password database, for the command's environment
	 * (userenv.c); NULL for a uid it does not know. */
	char *login, *home, *shell;
};

/*
 * --user USER / --group GROUP (names or numbers); with neither, the user
 * sudo was run by (SUDO_UID), else root. -EINVAL with why[] on unknown names.
 */
int identity_resolve(const char *user, const char *group, struct identity *id, char *why,
		     size_t len);
void identity_free(struct identity *id);

/*
 * Where cgroup2 is mounted (mountinfo), for sandbox_cgroup_ns: a
 * NULL-terminated array (empty when none), freed with _free.
 */
int sandbox_cgroup_mounts(char ***out);
void sandbox_cgroup_mounts_free(char **v);

/*
 * In the child, in its cgroup, before sandbox_enter: a cgroup namespace
 * rooted at that cgroup, so that /proc/self/cgroup says "0::/" and, where
 * the cgroup2 hierarchy has nsdelegate, writing to a cgroup.procs outside
 * fails (ENOENT). The kernel checks that only with nsdelegate: with
 * `mounts` (a command that runs as root), also a mount namespace of its own
 * in which each of them is a fresh cgroup2 mount rooted at its cgroup, so
 * there is no cgroup outside left to write to; Landlock keeps it from
 * unmounting that. Returns 0 or an errno.
 */
int sandbox_cgroup_ns(char *const *mounts);

/*
 * In the child, between clone3 and exec (async-signal-safe calls only):
 * become `id`, drop every capability for good, set no_new_privs, load the
 * filter. Returns 0 or an errno.
 */
int sandbox_enter(const struct identity *id, const struct sock_fprog *filter);

/* The first container engine API socket (/run/docker.sock, ...) ID may
 * connect to by its mode, with why in WHY; NULL if none (or ID is root). */
const char *sandbox_engine_reachable(const struct identity *id, char *why, size_t len);

#endif /* WEIR_SANDBOX_H */
