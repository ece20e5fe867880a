// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sd_notify, written here rather than linked from libsystemd: the protocol
 * is one datagram of "KEY=VALUE" lines to the AF_UNIX socket named in
 * $NOTIFY_SOCKET, documented as stable for reimplementation (sd_notify(3),
 * systemd's NOTIFY_SOCKET interface). Twenty lines do not justify a runtime
 * dependency of a root daemon on libsystemd, which also is not on every
 * machine weir is built on (containers, CI images).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "notify.h"

/* The address of $NOTIFY_SOCKET; its length (abstract names have no NUL). */
static int notify_addr(const char *name, struct sockaddr_un *sa, socklen_t *salen)
{
	size_t n = strlen(name);

	if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof(sa->sun_path))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@')
		sa->sun_path[0] = '\0'; /* Linux's abstract namespace */
	*salen = offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/');
	return 0;
}

int notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	ssize_t n;
	int fd, ret;

	if (!name || !*name)
		return 0;
	ret = notify_addr(name, &sa, &salen);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	ret = n < 0 ? -errno : 0;
	close(fd);
	return ret;
}
