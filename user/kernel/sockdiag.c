// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/time.h>

#include "sockdiag.h"

static void fill_end(struct inet_diag_req_v2 *r, int src, const struct sockaddr *sa)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	__be32 *a = src ? r->id.idiag_src : r->id.idiag_dst;
	__be16 *port = src ? &r->id.idiag_sport : &r->id.idiag_dport;

	if (sa->sa_family == AF_INET) {
		a[0] = s4->sin_addr.s_addr;
		*port = s4->sin_port;
	} else {
		memcpy(a, &s6->sin6_addr, 16);
		*port = s6->sin6_port;
	}
}

static int ask(int fd, int protocol, const struct sockaddr *src, const struct sockaddr *dst,
	       __u64 *cookie)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.r = { .sdiag_family = src->sa_family, .sdiag_protocol = protocol,
		       .idiag_states = ~0U },
	};
	union {
		struct nlmsghdr nlh;
		char buf[8192];
	} resp;
	struct inet_diag_msg *m;
	ssize_t n;

	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	fill_end(&req.r, 1, src);
	fill_end(&req.r, 0, dst);
	if (send(fd, &req, sizeof(req), 0) < 0)
		return -errno;
	n = recv(fd, &resp, sizeof(resp), 0);
	if (n < (ssize_t)sizeof(struct nlmsghdr))
		return -EIO;
	if (resp.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return -ENOENT;
	m = NLMSG_DATA(&resp.nlh);
	*cookie = (__u64)m->id.idiag_cookie[0] | (__u64)m->id.idiag_cookie[1] << 32;
	return 0;
}

/* One netlink socket per thread, kept: opening one per query doubled the
 * resolver's cost. */
static __thread int diag_fd = -1;

static int diag_socket(void)
{
	struct timeval tv = { .tv_usec = 200 * 1000 };

	if (diag_fd >= 0)
		return diag_fd;
	diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (diag_fd >= 0)
		setsockopt(diag_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return diag_fd;
}

void sockdiag_close(void)
{
	if (diag_fd >= 0)
		close(diag_fd);
	diag_fd = -1;
}

int sockdiag_cookie(int protocol, const struct sockaddr *peer, const struct sockaddr *local,
		    __u64 *cookie)
{
	int fd, err;

	if (peer->sa_family != local->sa_family)
		return -EAFNOSUPPORT;
	fd = diag_socket();
	if (fd < 0)
		return -errno;
	/*
	 * The kernel reads the 4-tuple from the packet's point of view for
	 * UDP (udp_dump_one: src is the remote end) and from the socket's for
	 * TCP (inet_diag_find_one_icsk): ask the likely order first.
	 */
	if (protocol == IPPROTO_UDP)
		err = ask(fd, protocol, local, peer, cookie);
	else
		err = ask(fd, protocol, peer, local, cookie);
	if (err)
		err = protocol == IPPROTO_UDP ? ask(fd, protocol, peer, local, cookie) :
						ask(fd, protocol, local, peer, cookie);
	return err;
}
