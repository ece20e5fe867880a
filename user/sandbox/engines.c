// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The container engines' API sockets (all in the built-in unix: list,
 * user/policy/unixsock.c): whoever connects to one is root (a privileged
 * container, the host's / mounted). Without the BPF LSM the cgroup unix
 * hooks judge a path as the program spells it, so a symlink or
 * /proc/self/root/... reaches the socket whatever the unix: section says,
 * and the socket's own mode is all that stands between the command and
 * root. weir run says so when the command's user passes that mode.
 */
#include <grp.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>

#include "sandbox.h"

static const char *const engine_sockets[] = {
	"/run/docker.sock",	      "/run/containerd/containerd.sock", "/run/podman/podman.sock",
	"/run/crio/crio.sock",	      "/run/buildkit/buildkitd.sock",
};

static bool in_groups(gid_t g, const struct identity *id)
{
	gid_t own[256];
	int i, n;

	if (id->change) {
		for (i = 0; i < id->ngroups; i++)
			if (id->groups[i] == g)
				return true;
		return id->gid == g;
	}
	n = getgroups(256, own);
	for (i = 0; i < n; i++)
		if (own[i] == g)
			return true;
	return getegid() == g;
}

/* Whether ID may connect to the socket ST by its mode (ACLs not read), and
 * by which of its classes in WHY. */
static bool may_connect(const struct identity *id, const struct stat *st, char *why, size_t len)
{
	const struct group *g;

	if (id->uid == st->st_uid) {
		snprintf(why, len, "it owns the socket");
		return st->st_mode & S_IWUSR;
	}
	if (in_groups(st->st_gid, id)) {
		g = getgrgid(st->st_gid);
		snprintf(why, len, "by group %s", g ? g->gr_name : "?");
		return st->st_mode & S_IWGRP;
	}
	snprintf(why, len, "the socket is writable by all");
	return st->st_mode & S_IWOTH;
}

const char *sandbox_engine_reachable(const struct identity *id, char *why, size_t len)
{
	struct stat st;
	size_t i;

	if (!id->uid)
		return NULL; /* root reaches everything: said on its own */
	for (i = 0; i < sizeof(engine_sockets) / sizeof(engine_sockets[0]); i++)
		if (!stat(engine_sockets[i], &st) && S_ISSOCK(st.st_mode) &&
		    may_connect(id, &st, why, len))
			return engine_sockets[i];
	return NULL;
}
