// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dnsperf: how fast a resolver answers, from where this runs.
 *
 *   dnsperf latency SERVER N NAME     N sequential A queries; per-query times
 *   dnsperf qps SERVER SECONDS NAME   64 queries kept in flight for SECONDS
 *
 * SERVER is an IPv4 address (port 53). Prints one JSON object. Bounded: every
 * wait has a 1 s timeout, and a run stops at N queries or SECONDS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#define INFLIGHT 64

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static size_t query(const char *name, unsigned short id, unsigned char *q)
{
	size_t n = 12, len;
	const char *dot;

	memset(q, 0, 12);
	q[0] = id >> 8;
	q[1] = id & 0xff;
	q[2] = 0x01;
	q[5] = 1;
	while (*name) {
		dot = strchr(name, '.');
		len = dot ? (size_t)(dot - name) : strlen(name);
		q[n++] = len;
		memcpy(q + n, name, len);
		n += len;
		name += len + (dot ? 1 : 0);
	}
	memcpy(q + n, "\0\0\1\0\1", 5);
	return n + 5;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int open_udp(const char *server)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(53) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || inet_pton(AF_INET, server, &s.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&s, sizeof(s))) {
		perror("dnsperf: socket");
		exit(2);
	}
	return fd;
}

static int latency(const char *server, int n, const char *name)
{
	unsigned char q[300], r[1500];
	double *t = calloc(n, sizeof(*t)), t0;
	struct pollfd p;
	int i, ok = 0, fd = open_udp(server);
	size_t qlen;

	for (i = 0; i < n; i++) {
		qlen = query(name, i, q);
		t0 = now_us();
		if (send(fd, q, qlen, 0) < 0)
			break;
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) != 1 || recv(fd, r, sizeof(r), 0) < 12)
			continue;
		t[ok++] = now_us() - t0;
	}
	qsort(t, ok, sizeof(*t), cmp);
	printf("{\"queries\":%d,\"answered\":%d,\"median_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f}\n",
	       n, ok, ok ? t[ok / 2] : 0, ok ? t[(int)(ok * 0.99)] : 0,
	       ok ? t[(int)(ok * 0.999)] : 0);
	return ok == n ? 0 : 1;
}

static int qps(const char *server, double secs, const char *name)
{
	unsigned char q[300], r[1500];
	double start = now_us(), end = start + secs * 1e6;
	long sent = 0, got = 0;
	struct pollfd p;
	int fd = open_udp(server), i;
	size_t qlen;

	for (i = 0; i < INFLIGHT; i++, sent++) {
		qlen = query(name, sent, q);
		if (send(fd, q, qlen, 0) < 0)
			return 2;
	}
	while (now_us() < end) {
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) != 1) {
			/* lost in flight: top the window up again */
			for (i = 0; i < 8; i++, sent++) {
				qlen = query(name, sent, q);
				send(fd, q, qlen, 0);
			}
			continue;
		}
		if (recv(fd, r, sizeof(r), 0) < 12)
			continue;
		got++;
		qlen = query(name, sent++, q);
		send(fd, q, qlen, 0);
	}
	printf("{\"seconds\":%.1f,\"answered\":%ld,\"qps\":%.0f}\n", secs, got,
	       got / ((now_us() - start) / 1e6));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		goto usage;
	if (!strcmp(argv[1], "latency"))
		return latency(argv[2], atoi(argv[3]), argv[4]);
	if (!strcmp(argv[1], "qps"))
		return qps(argv[2], atof(argv[3]), argv[4]);
usage:
	fprintf(stderr, "usage: dnsperf latency|qps SERVER N|SECONDS NAME\n");
	return 2;
}
