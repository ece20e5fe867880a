// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir daemon, the core: attachments, the policy directory, the state dir.
 * (Stub bodies: the API is fixed first so that the HTTP layer can build
 * against it; the core follows.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

int daemon_open(const struct daemon_opts *o, struct daemon **out)
{
	return -ENOSYS;
}

int daemon_run(struct daemon *d)
{
	return -ENOSYS;
}

void daemon_free(struct daemon *d)
{
}

int daemon_attach(struct daemon *d, const struct attach_req *r, struct attach_info *out,
		  char *err, size_t len)
{
	snprintf(err, len, "not implemented yet");
	return -ENOSYS;
}

int daemon_detach(struct daemon *d, const char *cgroup, char *err, size_t len)
{
	snprintf(err, len, "not implemented yet");
	return -ENOSYS;
}

size_t daemon_list(struct daemon *d, struct attach_info **out)
{
	*out = NULL;
	return 0;
}

int daemon_reload(struct daemon *d, char *report, size_t len)
{
	if (len)
		report[0] = '\0';
	return -ENOSYS;
}

void daemon_metrics(struct daemon *d, FILE *f)
{
}

bool daemon_peer_enforced(struct daemon *d, pid_t pid)
{
	return true;
}
