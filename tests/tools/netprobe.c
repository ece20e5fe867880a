// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * netprobe: one connection attempt, reported as the errno a program sees.
 *
 *   netprobe [--v6sock] [--unspec] MODE ADDR PORT [PAYLOAD]
 *
 * MODE tcp: connect(), send PAYLOAD, wait (bounded) for the server to close;
 *      udp: sendto() on an unconnected socket;
 *      udpc: connect(), then send().
 * --v6sock: an AF_INET6 socket; an IPv4 ADDR becomes ::ffff:ADDR (the
 *           IPv4-mapped form a dual-stack program uses).
 * --unspec: udp only: the destination's family field says AF_UNSPEC, which
 *           udp_sendmsg() still accepts as IPv4.
 *
 * Prints "ok" or the errno's name ("EPERM"); exits 0 on success, 1 on EPERM
 * (what a weir denial looks like), 2 on anything else. Every wait is 2 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#define TIMEOUT_S 2

enum mode { M_TCP, M_UDP, M_UDPC };

struct probe {
	enum mode mode;
	bool v6sock, unspec;
	const char *payload;
	struct sockaddr_storage ss;
	socklen_t sslen;
};

static int usage(void)
{
	fprintf(stderr, "Usage: netprobe [--v6sock] [--unspec] tcp|udp|udpc ADDR PORT [PAYLOAD]\n");
	return 2;
}

/* Print the outcome, map it to the exit status. */
static int report(int err)
{
	const char *name;

	if (!err) {
		printf("ok\n");
		return 0;
	}
	/* A blocking connect() that runs out of SO_SNDTIMEO says EINPROGRESS. */
	if (err == EINPROGRESS)
		err = ETIMEDOUT;
	name = strerrorname_np(err);
	if (name)
		printf("%s\n", name);
	else
		printf("E%d\n", err);
	return err == EPERM ? 1 : 2;
}

static int parse_dest(struct probe *p, const char *addr, const char *port_s)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&p->ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&p->ss;
	struct in_addr a4;
	char *end;
	long port;

	port = strtol(port_s, &end, 10);
	if (*end || end == port_s || port < 0 || port > 65535)
		return -1;
	memset(&p->ss, 0, sizeof(p->ss));
	if (inet_pton(AF_INET, addr, &a4) == 1 && !p->v6sock) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		s4->sin_addr = a4;
		p->sslen = sizeof(*s4);
		return 0;
	}
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((unsigned short)port);
	p->sslen = sizeof(*s6);
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		/* ::ffff:a.b.c.d */
		s6->sin6_addr.s6_addr[10] = 0xff;
		s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], &a4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1 ? 0 : -1;
}

static int open_socket(const struct probe *p)
{
	struct timeval tv = { .tv_sec = TIMEOUT_S };
	int fd;

	fd = socket(p->ss.ss_family, (p->mode == M_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -1;
	/* SO_SNDTIMEO also bounds a blocking connect(). */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Wait for the server's close, so its log line is written when we exit. */
static void drain(int fd)
{
	char buf[512];
	int i;

	shutdown(fd, SHUT_WR);
	for (i = 0; i < 64; i++)
		if (read(fd, buf, sizeof(buf)) <= 0)
			return;
}

static int run(struct probe *p)
{
	size_t len = strlen(p->payload);
	int fd, err = 0;

	fd = open_socket(p);
	if (fd < 0)
		return errno;
	if (p->mode == M_UDP) {
		if (p->unspec)
			p->ss.ss_family = AF_UNSPEC;
		if (sendto(fd, p->payload, len, 0, (struct sockaddr *)&p->ss, p->sslen) < 0)
			err = errno;
	} else if (connect(fd, (struct sockaddr *)&p->ss, p->sslen)) {
		err = errno;
	} else if (send(fd, p->payload, len, MSG_NOSIGNAL) < 0) {
		err = errno;
	} else if (p->mode == M_TCP) {
		drain(fd);
	}
	close(fd);
	return err;
}

int main(int argc, char **argv)
{
	struct probe p = { .payload = "weir-probe" };
	int i = 1;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--v6sock"))
			p.v6sock = true;
		else if (!strcmp(argv[i], "--unspec"))
			p.unspec = true;
		else
			return usage();
	}
	if (argc - i < 3 || argc - i > 4)
		return usage();
	if (!strcmp(argv[i], "tcp"))
		p.mode = M_TCP;
	else if (!strcmp(argv[i], "udp"))
		p.mode = M_UDP;
	else if (!strcmp(argv[i], "udpc"))
		p.mode = M_UDPC;
	else
		return usage();
	if (p.unspec && p.mode != M_UDP)
		return usage();
	if (argc - i == 4)
		p.payload = argv[i + 3];
	if (parse_dest(&p, argv[i + 1], argv[i + 2])) {
		fprintf(stderr, "netprobe: bad address or port: %s %s\n", argv[i + 1], argv[i + 2]);
		return 2;
	}
	return report(run(&p));
}
