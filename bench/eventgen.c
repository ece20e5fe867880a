// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * eventgen: N decisions as fast as one process makes them: UDP connect()
 * to ADDR:9 in a loop (each one a connect4 event under weir). Prints JSON.
 *
 *   eventgen ADDR N
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct timespec a, b;
	long n, i;
	double secs;
	int fd;

	if (argc != 3 || inet_pton(AF_INET, argv[1], &s.sin_addr) != 1 || (n = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: eventgen ADDR N\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		connect(fd, (struct sockaddr *)&s, sizeof(s));
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("{\"decisions\":%ld,\"seconds\":%.3f,\"per_second\":%.0f}\n", n, secs, n / secs);
	return 0;
}
