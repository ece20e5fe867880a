// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sendperf: the cost of one send() on a connected socket, the path where
 * only weir's egress backstop runs (no connect or sendmsg hook).
 *
 *   sendperf udp|tcp ADDR PORT N     N sends of 64 bytes; prints JSON
 *
 * The receiving side must be there (a sink); bounded by N.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

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

int main(int argc, char **argv)
{
	struct sockaddr_in s = { .sin_family = AF_INET };
	char buf[64] = "sendperf";
	double *t, t0;
	int fd, n, i, tcp;

	if (argc != 5)
		goto usage;
	tcp = !strcmp(argv[1], "tcp");
	if (!tcp && strcmp(argv[1], "udp"))
		goto usage;
	n = atoi(argv[4]);
	s.sin_port = htons(atoi(argv[3]));
	if (n <= 0 || inet_pton(AF_INET, argv[2], &s.sin_addr) != 1)
		goto usage;
	t = calloc(n, sizeof(*t));
	fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (!t || fd < 0 || connect(fd, (struct sockaddr *)&s, sizeof(s))) {
		perror("sendperf");
		return 1;
	}
	for (i = 0; i < n; i++) {
		t0 = now_ns();
		if (send(fd, buf, sizeof(buf), 0) < 0) {
			perror("sendperf: send");
			return 1;
		}
		t[i] = now_ns() - t0;
	}
	qsort(t, n, sizeof(*t), cmp);
	printf("{\"sends\":%d,\"median_ns\":%.0f,\"p99_ns\":%.0f}\n", n, t[n / 2],
	       t[(int)(n * 0.99)]);
	return 0;
usage:
	fprintf(stderr, "usage: sendperf udp|tcp ADDR PORT N\n");
	return 2;
}
