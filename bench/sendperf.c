// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sendperf: the cost of one socket call, timed in the process that makes it.
 *
 *   sendperf udp|tcp ADDR PORT N     N send()s of 64 bytes on a connected
 *                                    socket: the path where only weir's
 *                                    egress backstop runs
 *   sendperf sendto ADDR PORT N      N sendto()s on one unconnected UDP
 *                                    socket: 1 in 8 to ADDR, the rest spread
 *                                    over 4096 addresses of 198.18.0.0/15
 *   sendperf connect ADDR PORT N     N UDP connect()s on one socket, to the
 *                                    same destinations (no packet)
 *   sendperf tcpconnect ADDR PORT N  N TCP connections to ADDR, each reset
 *
 * Prints JSON. The receiving side must be there (a sink, a listener; the
 * spread of 198.18.0.0/15 routed locally, as bench/run.sh does).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#define NDEST 4096

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The destinations callbench uses too: the same seeded spread. */
static void make_dests(struct sockaddr_in *d, const struct sockaddr_in *s)
{
	unsigned int r = 0x9e3779b9;
	int i;

	for (i = 0; i < NDEST; i++) {
		r ^= r << 13;
		r ^= r >> 17;
		r ^= r << 5;
		d[i] = *s;
		if (i % 8)
			d[i].sin_addr.s_addr = htonl(0xc6120000 | (r & 0x1ffff) | 1);
	}
}

int main(int argc, char **argv)
{
	static struct sockaddr_in d[NDEST];
	struct sockaddr_in s = { .sin_family = AF_INET };
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	char buf[64] = "sendperf";
	const char *mode;
	double *t, t0;
	int fd = -1, n, i, r;

	if (argc != 5)
		goto usage;
	mode = argv[1];
	n = atoi(argv[4]);
	s.sin_port = htons(atoi(argv[3]));
	if (n <= 0 || inet_pton(AF_INET, argv[2], &s.sin_addr) != 1)
		goto usage;
	make_dests(d, &s);
	t = calloc(n, sizeof(*t));
	if (!t)
		return 1;
	if (!strcmp(mode, "udp") || !strcmp(mode, "tcp")) {
		fd = socket(AF_INET, !strcmp(mode, "tcp") ? SOCK_STREAM : SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&s, sizeof(s)))
			goto fail;
	} else if (!strcmp(mode, "sendto") || !strcmp(mode, "connect")) {
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd < 0)
			goto fail;
	} else if (strcmp(mode, "tcpconnect")) {
		goto usage;
	}
	for (i = 0; i < n; i++) {
		const struct sockaddr *to = (const struct sockaddr *)&d[i % NDEST];

		t0 = now_ns();
		switch (mode[0]) {
		case 's':
			r = sendto(fd, buf, sizeof(buf), 0, to, sizeof(s));
			break;
		case 'c':
			r = connect(fd, to, sizeof(s));
			break;
		case 't':
			if (mode[3] == 'c') {
				fd = socket(AF_INET, SOCK_STREAM, 0);
				t0 = now_ns();
				r = connect(fd, (struct sockaddr *)&s, sizeof(s));
				t[i] = now_ns() - t0;
				/* A reset, not a FIN: no TIME_WAIT, whose ports
				 * would run out before N connections did. */
				setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
				close(fd);
				if (r)
					goto fail;
				continue;
			}
			/* fallthrough */
		default:
			r = send(fd, buf, sizeof(buf), 0);
		}
		t[i] = now_ns() - t0;
		if (r < 0)
			goto fail;
	}
	qsort(t, n, sizeof(*t), cmp);
	printf("{\"mode\":\"%s\",\"calls\":%d,\"median_ns\":%.0f,\"p99_ns\":%.0f}\n", mode, n,
	       t[n / 2], t[(int)(n * 0.99)]);
	return 0;
fail:
	perror("sendperf");
	return 1;
usage:
	fprintf(stderr, "usage: sendperf udp|tcp|sendto|connect|tcpconnect ADDR PORT N\n");
	return 2;
}
