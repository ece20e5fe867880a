// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: user/common/log.c writes each message to stderr in one write(),
 * prefix included, so a command writing to the same stderr cannot land
 * inside weir's line.  fd 2 is one end of a SOCK_SEQPACKET pair: every
 * write() arrives as its own packet, so a line split in two shows up as two. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <criterion/criterion.h>

#include "log.h"

static int peer = -1;

/* fd 2 becomes a seqpacket socket; PEER reads what was written to it. */
static void stderr_to_packets(void)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_eq(dup2(sv[0], STDERR_FILENO), STDERR_FILENO);
	close(sv[0]);
	peer = sv[1];
	log_set_sink(NULL, NULL);
	log_set_level(LOG_LEVEL_INFO);
}

/* The next write() as one packet; its length. */
static ssize_t next_packet(char *buf, size_t len)
{
	ssize_t n = recv(peer, buf, len - 1, MSG_DONTWAIT);

	if (n >= 0)
		buf[n] = '\0';
	return n;
}

Test(log, one_write_per_line, .init = stderr_to_packets)
{
	char buf[256];

	pr_warn("denied tcp %s:%d\n", "192.0.2.11", 80);
	pr_info("second %s\n", "line");
	cr_assert_eq(next_packet(buf, sizeof(buf)), (ssize_t)strlen("weir: denied tcp 192.0.2.11:80\n"));
	cr_assert_str_eq(buf, "weir: denied tcp 192.0.2.11:80\n");
	cr_assert_eq(next_packet(buf, sizeof(buf)), (ssize_t)strlen("weir: second line\n"));
	cr_assert_str_eq(buf, "weir: second line\n");
	cr_assert_lt(next_packet(buf, sizeof(buf)), 0, "a third write: a line was split");
}

Test(log, below_the_level_writes_nothing, .init = stderr_to_packets)
{
	char buf[64];

	pr_debug("not shown\n");
	cr_assert_lt(next_packet(buf, sizeof(buf)), 0);
}

/* Longer than the 2 KiB stack line: still whole, still one write. */
Test(log, a_long_line_whole_in_one_write, .init = stderr_to_packets)
{
	size_t len = 10000;
	char *msg = malloc(len + 1), *buf = malloc(len + 64);

	cr_assert(msg && buf);
	memset(msg, 'x', len);
	msg[len] = '\0';
	pr_warn("%s|end\n", msg);
	cr_assert_eq(next_packet(buf, len + 64), (ssize_t)(strlen("weir: ") + len + strlen("|end\n")));
	cr_assert_eq(strncmp(buf, "weir: xxx", 9), 0);
	cr_assert_str_eq(buf + strlen("weir: ") + len, "|end\n");
	free(msg);
	free(buf);
}
