// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sink: the test servers of the end-to-end tests and the demo.
 *
 *   sink [--http] [--echo] LOGFILE ADDR:PORT...
 *
 * Listens on TCP and UDP at every ADDR:PORT (IPv6 as [2001:db8::1]:80) and
 * appends one line per arrival to LOGFILE:
 *
 *   tcp 192.0.2.1:8080 weir-probe
 *   udp [2001:db8::1]:80 GET / HTTP/1.1
 *
 * The address is the one the arrival was bound to; the rest is the first
 * line of the payload, printable ASCII only. A test asserts on these lines:
 * a line means bytes arrived, no line means nothing did.
 *
 * With --http, a TCP client gets a fixed "200 ok" once its request headers
 * are in, so curl succeeds. With --echo, every UDP datagram is answered
 * with "ok\n" to its sender (a server whose replies a test can wait for).
 * "ready" on stdout says every socket is bound.
 * Runs until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define MAX_LISTEN 64 /* ADDR:PORT arguments */
#define MAX_CONN 128  /* TCP connections open at once */
#define REQ_MAX 4096  /* bytes of a request kept */
#define IDLE_MS 5000  /* a silent client is logged and dropped after this */

static const char http_reply[] = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

struct listener {
	int tcp, udp;
	char name[64]; /* "192.0.2.1:8080", "[2001:db8::1]:80" */
};

struct conn {
	int fd;
	const struct listener *l;
	size_t len;
	bool answered; /* --http: reply sent; drain until the client closes */
	long long since_ms;
	char buf[REQ_MAX + 1];
};

static volatile sig_atomic_t stop;
static int log_fd = -1;
static bool http, echo;
static struct listener listeners[MAX_LISTEN];
static int n_listeners;
static struct conn *conns[MAX_CONN];

static void on_stop(int sig)
{
	stop = 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* One whole line in one write(): O_APPEND keeps concurrent lines apart. */
static void log_arrival(const char *proto, const struct listener *l, const char *data, size_t len)
{
	char line[256];
	int n;
	size_t i;

	n = snprintf(line, sizeof(line), "%s %s ", proto, l->name);
	for (i = 0; i < len && data[i] != '\n' && data[i] != '\r' && n < (int)sizeof(line) - 2;
	     i++) {
		if (data[i] >= 0x20 && data[i] < 0x7f)
			line[n++] = data[i];
	}
	line[n++] = '\n';
	if (write(log_fd, line, n) != n)
		perror("sink: write log");
}

/* "ADDR:PORT" or "[V6ADDR]:PORT" into a sockaddr; 0 or -1. */
static int parse_addr(const char *arg, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char host[64];
	const char *colon, *h = arg;
	size_t hlen;
	char *end;
	long port;

	colon = strrchr(arg, ':');
	if (!colon)
		return -1;
	hlen = (size_t)(colon - arg);
	if (*arg == '[') {
		if (hlen < 2 || arg[hlen - 1] != ']')
			return -1;
		h = arg + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 1 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1 && *arg != '[') {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		*sslen = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		*sslen = sizeof(*s6);
		return 0;
	}
	return -1;
}

static void format_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else {
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	}
}

static int bound_socket(const struct sockaddr_storage *ss, socklen_t sslen, int type,
			const char *name)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	/* A v6 socket must not also take the v4 port of another listener. */
	if (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, sslen))
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 64))
		goto fail;
	return fd;
fail:
	fprintf(stderr, "sink: %s %s: %s\n", type == SOCK_STREAM ? "tcp" : "udp", name,
		strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int add_listener(const char *arg)
{
	struct listener *l = &listeners[n_listeners];
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (n_listeners == MAX_LISTEN) {
		fprintf(stderr, "sink: at most %d addresses\n", MAX_LISTEN);
		return -1;
	}
	if (parse_addr(arg, &ss, &sslen)) {
		fprintf(stderr, "sink: '%s': expected ADDR:PORT or [IPV6]:PORT\n", arg);
		return -1;
	}
	format_name(&ss, l->name, sizeof(l->name));
	l->tcp = bound_socket(&ss, sslen, SOCK_STREAM, l->name);
	l->udp = l->tcp < 0 ? -1 : bound_socket(&ss, sslen, SOCK_DGRAM, l->name);
	if (l->udp < 0)
		return -1;
	n_listeners++;
	return 0;
}

static void conn_close(int i)
{
	close(conns[i]->fd);
	free(conns[i]);
	conns[i] = NULL;
}

static void on_accept(const struct listener *l)
{
	struct conn *c;
	int fd, i;

	fd = accept4(l->tcp, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (i = 0; i < MAX_CONN && conns[i]; i++)
		;
	c = i < MAX_CONN ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		static const char msg[] = "(dropped: too many connections)";

		log_arrival("tcp", l, msg, sizeof(msg) - 1);
		close(fd);
		return;
	}
	c->fd = fd;
	c->l = l;
	c->since_ms = now_ms();
	conns[i] = c;
}

static bool headers_done(const struct conn *c)
{
	return strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n");
}

/*
 * --http: log the request line and answer. The connection stays open until
 * the client closes it: closing with a request body still unread would send
 * a RST, which can destroy the reply before the client reads it.
 */
static void answer(struct conn *c)
{
	log_arrival("tcp", c->l, c->buf, c->len);
	if (write(c->fd, http_reply, sizeof(http_reply) - 1) < 0)
		perror("sink: write reply");
	shutdown(c->fd, SHUT_WR);
	c->answered = true;
}

/* Read what there is; log and close at EOF, or (--http) answer the request. */
static void on_conn(int i)
{
	struct conn *c = conns[i];
	char scratch[4096];
	ssize_t n;

	if (c->len < REQ_MAX && !c->answered)
		n = read(c->fd, c->buf + c->len, REQ_MAX - c->len);
	else
		n = read(c->fd, scratch, sizeof(scratch)); /* keep draining, keep nothing */
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		if (c->answered || c->len == REQ_MAX)
			return;
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		if (http && headers_done(c))
			answer(c);
		return;
	}
	if (!c->answered)
		log_arrival("tcp", c->l, c->buf, c->len);
	conn_close(i);
}

static void on_udp(const struct listener *l)
{
	char buf[65536];
	ssize_t n;

	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);

	n = recvfrom(l->udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	if (n < 0)
		return;
	log_arrival("udp", l, buf, (size_t)n);
	if (echo && sendto(l->udp, "ok\n", 3, 0, (struct sockaddr *)&from, flen) < 0)
		log_arrival("udp", l, "(echo failed)", 13);
}

/* A client that stays silent must not hold a connection forever. */
static void expire_idle(void)
{
	long long t = now_ms();
	int i;

	for (i = 0; i < MAX_CONN; i++) {
		if (conns[i] && t - conns[i]->since_ms > IDLE_MS) {
			if (!conns[i]->answered)
				log_arrival("tcp", conns[i]->l, conns[i]->buf, conns[i]->len);
			conn_close(i);
		}
	}
}

static void serve(void)
{
	struct pollfd pfd[2 * MAX_LISTEN + MAX_CONN];
	int conn_of[MAX_CONN];
	int i, n, nc;

	while (!stop) {
		n = 0;
		for (i = 0; i < n_listeners; i++) {
			pfd[n++] = (struct pollfd){ .fd = listeners[i].tcp, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = listeners[i].udp, .events = POLLIN };
		}
		for (i = 0, nc = 0; i < MAX_CONN; i++) {
			if (!conns[i])
				continue;
			conn_of[nc++] = i;
			pfd[n++] = (struct pollfd){ .fd = conns[i]->fd, .events = POLLIN };
		}
		if (poll(pfd, n, 1000) < 0) {
			if (errno == EINTR)
				continue;
			perror("sink: poll");
			return;
		}
		for (i = 0; i < n_listeners; i++) {
			if (pfd[2 * i].revents)
				on_accept(&listeners[i]);
			if (pfd[2 * i + 1].revents)
				on_udp(&listeners[i]);
		}
		for (i = 0; i < nc; i++)
			if (pfd[2 * n_listeners + i].revents && conns[conn_of[i]])
				on_conn(conn_of[i]);
		expire_idle();
	}
}

static int usage(void)
{
	fprintf(stderr, "Usage: sink [--http] [--echo] LOGFILE ADDR:PORT...\n"
			"  ADDR:PORT  192.0.2.1:8080 or [2001:db8::1]:80; TCP and UDP on each\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_stop };
	int i = 1;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--http"))
			http = true;
		else if (!strcmp(argv[i], "--echo"))
			echo = true;
		else
			return usage();
	}
	if (argc - i < 2)
		return usage();
	log_fd = open(argv[i], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		fprintf(stderr, "sink: %s: %s\n", argv[i], strerror(errno));
		return 1;
	}
	for (i++; i < argc; i++)
		if (add_listener(argv[i]))
			return 1;
	/* No SA_RESTART: poll() returns EINTR and the loop sees stop. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	fflush(stdout);
	serve();
	return 0;
}
