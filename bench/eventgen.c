// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * eventgen: decisions as fast as P processes make them: UDP connect() to
 * ADDR:9 in a loop (each one a connect4 event under weir). Prints JSON with
 * the aggregate rate and the generators' CPU time.
 *
 *   eventgen ADDR N [P]      N decisions in all, from P processes (default 1)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

static void loop(const struct sockaddr_in *s, long n)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	long i;

	for (i = 0; i < n; i++)
		connect(fd, (const struct sockaddr *)s, sizeof(*s));
}

int main(int argc, char **argv)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct timespec a, b;
	struct rusage ru;
	long n, p = 1, i;
	double secs, cpu;

	if (argc < 3 || argc > 4 || inet_pton(AF_INET, argv[1], &s.sin_addr) != 1 ||
	    (n = atol(argv[2])) <= 0 || (argc == 4 && (p = atol(argv[3])) <= 0) || p > 64) {
		fprintf(stderr, "usage: eventgen ADDR N [P]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < p; i++) {
		if (fork() == 0) {
			loop(&s, n / p);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	/* The generators' own CPU time, so that a bench can tell weir's from it. */
	getrusage(RUSAGE_CHILDREN, &ru);
	cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("{\"decisions\":%ld,\"processes\":%ld,\"seconds\":%.3f,\"per_second\":%.0f,"
	       "\"cpu_s\":%.3f}\n",
	       n / p * p, p, secs, (n / p * p) / secs, cpu);
	return 0;
}
