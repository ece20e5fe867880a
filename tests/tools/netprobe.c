// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * netprobe: one connection attempt, reported as the errno a program sees.
 *
 *   netprobe [--v6sock] [--unspec] [--from ADDR[:PORT]] MODE ADDR PORT [PAYLOAD]
 *
 * MODE tcp: connect(), send PAYLOAD, wait (bounded) for the server to close;
 *      udp: sendto() on an unconnected socket;
 *      udpc: connect(), then send();
 *      udpr: sendto() on an unconnected socket, then wait for any reply;
 *      dns: sendto() a DNS query (type A) for the name PAYLOAD on an
 *           unconnected socket, like a stub resolver, and read the reply:
 *           prints "ok ADDR" (first A record), "REFUSED"/"RCODE n", or
 *           "EBADSRC" when the reply does not come from ADDR:PORT.
 * --v6sock: an AF_INET6 socket; an IPv4 ADDR becomes ::ffff:ADDR (the
 *           IPv4-mapped form a dual-stack program uses).
 * --unspec: udp only: the destination's family field says AF_UNSPEC, which
 *           udp_sendmsg() still accepts as IPv4.
 * --from:   bind() the socket to this source address (and port) first:
 *           a client elsewhere, or a client on a server's port.
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

enum mode { M_TCP, M_UDP, M_UDPC, M_UDPR, M_DNS };

struct probe {
	enum mode mode;
	bool v6sock, unspec;
	const char *payload;
	const char *from; /* ADDR or ADDR:PORT ([V6]:PORT), or NULL */
	struct sockaddr_storage ss;
	socklen_t sslen;
};

static int usage(void)
{
	fprintf(stderr, "Usage: netprobe [--v6sock] [--unspec] [--from ADDR[:PORT]] "
			"tcp|udp|udpc|udpr|dns ADDR PORT [PAYLOAD]\n");
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

/* --from: "ADDR", "ADDR:PORT" or "[V6]:PORT", in the family of the socket. */
static int bind_from(const struct probe *p, int fd)
{
	struct sockaddr_storage ss = { .ss_family = p->ss.ss_family };
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	char host[64], *port = NULL, *c;
	int one = 1;

	snprintf(host, sizeof(host), "%s", *p->from == '[' ? p->from + 1 : p->from);
	c = *p->from == '[' ? strchr(host, ']') : strrchr(host, ':');
	if (c && (*p->from == '[' || !strchr(host, ':') || c == strchr(host, ':'))) {
		port = c[0] == ']' ? (c[1] == ':' ? c + 2 : NULL) : c + 1;
		*c = '\0';
	}
	if (ss.ss_family == AF_INET) {
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return EINVAL;
		s4->sin_port = htons(port ? atoi(port) : 0);
	} else {
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return EINVAL;
		s6->sin6_port = htons(port ? atoi(port) : 0);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	return bind(fd, (struct sockaddr *)&ss, p->sslen) ? errno : 0;
}

static int open_socket(const struct probe *p)
{
	struct timeval tv = { .tv_sec = TIMEOUT_S };
	int fd, err;

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
	if (p->from && (err = bind_from(p, fd))) {
		close(fd);
		errno = err;
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

/* A query for name, type A, class IN, RD set. */
static size_t build_query(const char *name, unsigned char *q)
{
	size_t n = 12, len;
	const char *dot;

	memset(q, 0, 12);
	q[0] = 0x4a;
	q[1] = 0x17; /* id */
	q[2] = 0x01; /* RD */
	q[5] = 1; /* QDCOUNT */
	while (*name) {
		dot = strchr(name, '.');
		len = dot ? (size_t)(dot - name) : strlen(name);
		q[n++] = len;
		memcpy(q + n, name, len);
		n += len;
		name += len + (dot ? 1 : 0);
	}
	q[n++] = 0;
	q[n++] = 0;
	q[n++] = 1; /* A */
	q[n++] = 0;
	q[n++] = 1; /* IN */
	return n;
}

/* Skip a (possibly compressed) name; 0 if it runs off the end. */
static size_t skip_name(const unsigned char *m, size_t len, size_t off)
{
	while (off < len) {
		if ((m[off] & 0xc0) == 0xc0)
			return off + 2;
		if (!m[off])
			return off + 1;
		off += m[off] + 1;
	}
	return 0;
}

static bool same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return !memcmp(&((struct sockaddr_in *)a)->sin_addr,
			       &((struct sockaddr_in *)b)->sin_addr, 4) &&
		       ((struct sockaddr_in *)a)->sin_port == ((struct sockaddr_in *)b)->sin_port;
	return !memcmp(&((struct sockaddr_in6 *)a)->sin6_addr, &((struct sockaddr_in6 *)b)->sin6_addr,
		       16) &&
	       ((struct sockaddr_in6 *)a)->sin6_port == ((struct sockaddr_in6 *)b)->sin6_port;
}

static int run_dns(struct probe *p, int fd)
{
	unsigned char q[300], r[1500];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	size_t off, i, an;
	ssize_t n;
	char a[INET_ADDRSTRLEN];

	if (sendto(fd, q, build_query(p->payload, q), 0, (struct sockaddr *)&p->ss, p->sslen) < 0)
		return errno;
	n = recvfrom(fd, r, sizeof(r), 0, (struct sockaddr *)&from, &flen);
	if (n < 12)
		return n < 0 ? errno : EPROTO;
	if (!same_peer(&from, &p->ss)) {
		printf("EBADSRC\n");
		exit(2);
	}
	if ((r[3] & 0xf) == 5) {
		printf("REFUSED\n");
		exit(1);
	}
	if (r[3] & 0xf) {
		printf("RCODE %d\n", r[3] & 0xf);
		exit(2);
	}
	an = (r[6] << 8) | r[7];
	off = skip_name(r, n, 12) + 4;
	for (i = 0; i < an && off && off + 10 <= (size_t)n; i++) {
		off = skip_name(r, n, off);
		if (!off || off + 10 > (size_t)n)
			break;
		if (r[off] == 0 && r[off + 1] == 1 && r[off + 9] == 4 && off + 14 <= (size_t)n) {
			inet_ntop(AF_INET, r + off + 10, a, sizeof(a));
			printf("ok %s\n", a);
			exit(0);
		}
		off += 10 + ((r[off + 8] << 8) | r[off + 9]);
	}
	printf("ok\n");
	exit(0);
}

static int run(struct probe *p)
{
	size_t len = strlen(p->payload);
	char buf[512];
	int fd, err = 0;

	fd = open_socket(p);
	if (fd < 0)
		return errno;
	if (p->mode == M_DNS) {
		err = run_dns(p, fd);
	} else if (p->mode == M_UDP || p->mode == M_UDPR) {
		if (p->unspec)
			p->ss.ss_family = AF_UNSPEC;
		if (sendto(fd, p->payload, len, 0, (struct sockaddr *)&p->ss, p->sslen) < 0)
			err = errno;
		else if (p->mode == M_UDPR && recv(fd, buf, sizeof(buf), 0) < 0)
			err = errno == EAGAIN ? ETIMEDOUT : errno;
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
		else if (!strcmp(argv[i], "--from") && i + 1 < argc)
			p.from = argv[++i];
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
	else if (!strcmp(argv[i], "udpr"))
		p.mode = M_UDPR;
	else if (!strcmp(argv[i], "dns"))
		p.mode = M_DNS;
	else
		return usage();
	if (p.unspec && p.mode != M_UDP && p.mode != M_UDPR)
		return usage();
	if (argc - i == 4)
		p.payload = argv[i + 3];
	if (parse_dest(&p, argv[i + 1], argv[i + 2])) {
		fprintf(stderr, "netprobe: bad address or port: %s %s\n", argv[i + 1], argv[i + 2]);
		return 2;
	}
	return report(run(&p));
}
