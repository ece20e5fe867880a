// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * flowpeer: both ends of the flow and upload budget tests (tests/e2e/flows.sh).
 *
 *   flowpeer serve LOG ADDR PORT REPLY UDPREPLY
 *   flowpeer tcp [--v6sock] ADDR PORT N
 *   flowpeer udp [--v6sock] ADDR PORT N SIZE
 *
 * serve listens on TCP and UDP at ADDR:PORT. A TCP client's bytes are
 * counted until it shuts down its side; then it gets REPLY bytes and the
 * connection is closed, and one line "tcp RECEIVED" goes to LOG (also when
 * the client resets or goes silent for 5 s). Every UDP datagram is one line
 * "udp SIZE" in LOG and is answered with UDPREPLY bytes (0: not answered).
 *
 * tcp sends N bytes on a new connection, shuts down its side, reads until
 * the server closes. udp sends N bytes as datagrams of SIZE bytes on a
 * connected UDP socket, each waiting (1 s at most) for the answer. Both
 * print "sent S received R" and exit 0 when everything went, 1 when a send
 * failed or stalled for 2 s (then a TCP connection is reset, not closed).
 * --v6sock uses an IPv6 socket, an IPv4 ADDR as ::ffff:ADDR.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#define MAX_CONN 64
#define IDLE_MS 5000
#define STALL_S 2

static volatile sig_atomic_t stop;
static char buf[65536];

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: flowpeer serve LOG ADDR PORT REPLY UDPREPLY\n"
			"       flowpeer tcp [--v6sock] ADDR PORT N\n"
			"       flowpeer udp [--v6sock] ADDR PORT N SIZE\n");
	return 2;
}

static int make_addr(const char *a, const char *port, bool v6sock, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char mapped[64];

	memset(ss, 0, sizeof(*ss));
	if (!v6sock && inet_pton(AF_INET, a, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(atoi(port));
		*len = sizeof(*in);
		return 0;
	}
	if (v6sock && strchr(a, '.') && !strchr(a, ':')) {
		snprintf(mapped, sizeof(mapped), "::ffff:%s", a);
		a = mapped;
	}
	if (inet_pton(AF_INET6, a, &in6->sin6_addr) != 1)
		return -1;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(atoi(port));
	*len = sizeof(*in6);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

struct conn {
	int fd;
	unsigned long long got;
	long long last;
};

static void log_line(const char *path, const char *fmt, unsigned long long n)
{
	FILE *f = fopen(path, "a");

	if (!f)
		return;
	fprintf(f, fmt, n);
	fclose(f);
}

static void send_all(int fd, unsigned long long n)
{
	ssize_t w;

	memset(buf, 'r', sizeof(buf));
	while (n) {
		w = send(fd, buf, n < sizeof(buf) ? n : sizeof(buf), MSG_NOSIGNAL);
		if (w <= 0)
			return;
		n -= w;
	}
}

/* The client is done (eof: it shut down its side, and gets the reply). */
static void conn_end(struct conn *c, const char *log, unsigned long long reply, bool eof)
{
	if (eof)
		send_all(c->fd, reply);
	log_line(log, "tcp %llu\n", c->got);
	close(c->fd);
	c->fd = -1;
}

static void serve_udp(int u, const char *log, unsigned long long reply)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n;

	n = recvfrom(u, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	if (n < 0)
		return;
	log_line(log, "udp %llu\n", (unsigned long long)n);
	if (reply) {
		memset(buf, 'u', reply < sizeof(buf) ? reply : sizeof(buf));
		sendto(u, buf, reply < sizeof(buf) ? reply : sizeof(buf), 0,
		       (struct sockaddr *)&from, fl);
	}
}

static void serve_tcp(struct conn *c, const char *log, unsigned long long reply)
{
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0) {
		c->got += n;
		c->last = now_ms();
		return;
	}
	conn_end(c, log, reply, n == 0);
}

static int serve(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct conn conns[MAX_CONN];
	struct pollfd pfd[MAX_CONN + 2];
	unsigned long long reply, ureply;
	int t, u, one = 1, i, k;
	socklen_t len;

	if (argc != 7 || make_addr(argv[3], argv[4], false, &ss, &len))
		return usage();
	reply = strtoull(argv[5], NULL, 10);
	ureply = strtoull(argv[6], NULL, 10);
	t = socket(ss.ss_family, SOCK_STREAM, 0);
	u = socket(ss.ss_family, SOCK_DGRAM, 0);
	setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (t < 0 || u < 0 || bind(t, (struct sockaddr *)&ss, len) ||
	    bind(u, (struct sockaddr *)&ss, len) || listen(t, 64)) {
		perror("flowpeer: serve");
		return 1;
	}
	for (i = 0; i < MAX_CONN; i++)
		conns[i].fd = -1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		pfd[0] = (struct pollfd){ .fd = t, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = u, .events = POLLIN };
		for (i = 0; i < MAX_CONN; i++)
			pfd[i + 2] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		if (poll(pfd, MAX_CONN + 2, 200) < 0 && errno != EINTR)
			return 1;
		if (pfd[1].revents)
			serve_udp(u, argv[2], ureply);
		for (i = 0; i < MAX_CONN; i++) {
			if (conns[i].fd >= 0 && pfd[i + 2].revents)
				serve_tcp(&conns[i], argv[2], reply);
			else if (conns[i].fd >= 0 && now_ms() - conns[i].last > IDLE_MS)
				conn_end(&conns[i], argv[2], reply, false);
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		k = accept(t, NULL, NULL);
		for (i = 0; k >= 0 && i < MAX_CONN && conns[i].fd >= 0; i++)
			;
		if (k >= 0 && i == MAX_CONN) {
			close(k);
			continue;
		}
		if (k >= 0)
			conns[i] = (struct conn){ .fd = k, .last = now_ms() };
	}
	return 0;
}

/* A stalled or refused client: reset, so what is queued never goes. */
static int give_up(int fd, unsigned long long sent, unsigned long long got, int err)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
	printf("sent %llu received %llu\n", sent, got);
	fprintf(stderr, "flowpeer: %s\n", strerror(err));
	return 1;
}

static int client(int argc, char **argv, bool udp)
{
	struct timeval tv = { .tv_sec = STALL_S };
	struct sockaddr_storage ss;
	unsigned long long n, size, sent = 0, got = 0;
	bool v6sock = argc > 2 && !strcmp(argv[2], "--v6sock");
	int i = v6sock ? 3 : 2, fd;
	socklen_t len;
	ssize_t w;

	if (argc != i + (udp ? 4 : 3) || make_addr(argv[i], argv[i + 1], v6sock, &ss, &len))
		return usage();
	n = strtoull(argv[i + 2], NULL, 10);
	size = udp ? strtoull(argv[i + 3], NULL, 10) : sizeof(buf);
	if (!size || size > sizeof(buf))
		return usage();
	fd = socket(ss.ss_family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0)
		return give_up(fd, 0, 0, errno);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	tv.tv_sec = udp ? 1 : STALL_S;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len))
		return give_up(fd, 0, 0, errno);
	memset(buf, 's', sizeof(buf));
	while (sent < n) {
		w = send(fd, buf, n - sent < size ? n - sent : size, MSG_NOSIGNAL);
		if (w <= 0)
			return give_up(fd, sent, got, w < 0 ? errno : EPIPE);
		sent += w;
		if (udp && (w = recv(fd, buf, sizeof(buf), 0)) > 0)
			got += w;
	}
	if (!udp) {
		shutdown(fd, SHUT_WR);
		while ((w = recv(fd, buf, sizeof(buf), 0)) > 0)
			got += w;
		if (w < 0)
			return give_up(fd, sent, got, errno);
	}
	close(fd);
	printf("sent %llu received %llu\n", sent, got);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "serve"))
		return serve(argc, argv);
	if (!strcmp(argv[1], "tcp"))
		return client(argc, argv, false);
	if (!strcmp(argv[1], "udp"))
		return client(argc, argv, true);
	return usage();
}
