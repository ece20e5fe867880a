// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sockopt32: multicast joins through the i386 system call entry (int $0x80)
 * of a 64-bit process, where the kernel skips cgroup/setsockopt
 * (in_compat_syscall()); weir's seccomp filter refuses them there
 * (tests/adversarial/waysout.sh, docs/threat-model.md).
 *
 *   sockopt32 IFADDR IFNAME GROUP4 GROUP6
 *
 * Joins GROUP4 (IP_ADD_MEMBERSHIP on IFADDR, then MCAST_JOIN_GROUP of
 * GROUP4 + 1) and GROUP6 (IPV6_ADD_MEMBERSHIP on IFNAME) with i386's
 * setsockopt (366), holds them 0.3 s, and prints one line:
 *   compat ip_add=E mcast_join=E ipv6_join=E    (E: 0 or the errno)
 *   compat unavailable                           (no ia32 entry here)
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define I386_GETPID 20
#define I386_SETSOCKOPT 366

static sigjmp_buf no_ia32;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(no_ia32, 1);
}

static long sys32(long nr, long a, long b, long c, long d, long e)
{
	long ret;

	asm volatile("int $0x80"
		     : "=a"(ret)
		     : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
		     : "memory", "r8", "r9", "r10", "r11", "cc");
	return ret;
}

/* 0, or the errno of an i386 setsockopt with OPT (below 4 GiB). */
static int join32(int fd, int level, int name, const void *opt, size_t len)
{
	long r = sys32(I386_SETSOCKOPT, fd, level, name, (long)opt, (long)len);

	return r < 0 ? (int)-r : 0;
}

int main(int argc, char **argv)
{
	char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	struct ip_mreq *m4 = (void *)low;
	struct group_req *gr = (void *)(low + 64);
	struct ipv6_mreq *m6 = (void *)(low + 512);
	struct sockaddr_in *g;
	int s4, s6, a, b, c;

	if (argc != 5 || low == MAP_FAILED) {
		fprintf(stderr, "usage: sockopt32 IFADDR IFNAME GROUP4 GROUP6\n");
		return 2;
	}
	signal(SIGSEGV, on_segv);
	if (sigsetjmp(no_ia32, 1) || sys32(I386_GETPID, 0, 0, 0, 0, 0) != getpid()) {
		printf("compat unavailable\n");
		return 0;
	}
	signal(SIGSEGV, SIG_DFL);
	s4 = socket(AF_INET, SOCK_DGRAM, 0);
	s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	inet_pton(AF_INET, argv[3], &m4->imr_multiaddr);
	inet_pton(AF_INET, argv[1], &m4->imr_interface);
	a = join32(s4, IPPROTO_IP, IP_ADD_MEMBERSHIP, m4, sizeof(*m4));
	gr->gr_interface = if_nametoindex(argv[2]);
	g = (struct sockaddr_in *)&gr->gr_group;
	g->sin_family = AF_INET;
	g->sin_addr.s_addr = htonl(ntohl(m4->imr_multiaddr.s_addr) + 1);
	/* i386's struct group_req: the address right after the 4-byte index. */
	memmove((char *)gr + 4, g, sizeof(*g));
	b = join32(s4, IPPROTO_IP, MCAST_JOIN_GROUP, gr, 4 + 128);
	inet_pton(AF_INET6, argv[4], &m6->ipv6mr_multiaddr);
	m6->ipv6mr_interface = if_nametoindex(argv[2]);
	c = join32(s6, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, m6, sizeof(*m6));
	printf("compat ip_add=%d mcast_join=%d ipv6_join=%d\n", a, b, c);
	fflush(stdout);
	usleep(300000);
	return 0;
}
