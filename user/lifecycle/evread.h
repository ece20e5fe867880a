/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading recorded events back (docs/events.md): the JSON lines of
 * `weir run -e`, one decision each, for weir policy verify and suggest.
 * Only what a replay needs is kept; records and ops it has no use for
 * (run-start, run-end, message, socket, setsockopt, inbound, ops a later
 * weir adds) are skipped, as the schema asks of a consumer.
 */
#ifndef WEIR_EVREAD_H
#define WEIR_EVREAD_H

#include <stdbool.h>
#include <linux/types.h>

/* Names as recorded may hold escapes: room for more than a DNS name. */
#define EVREAD_NAME_MAX 1024

#define EVREAD_ERR_LEN 512
#define EVREAD_ANSWERS 16 /* the events list at most 16 */

enum evkind {
	EV_CONN, /* connect4/6, sendmsg4/6, egress: a destination */
	EV_DNS, /* a query to weir's resolver */
	EV_CLOSE, /* close: a flow ended (no verdict; what it carried) */
};

struct evrec {
	enum evkind kind;
	const char *file; /* as given; "-" for standard input */
	unsigned long line;
	char verdict[16]; /* allow, deny, would-deny */
	char reason[40];
	char comm[64]; /* as recorded (the program chose it: unescaped bytes) */
	/* EV_CONN */
	int family; /* of addr: AF_INET or AF_INET6, as recorded */
	__u8 addr[16];
	char dst[48]; /* as recorded */
	__u16 port;
	__u16 protocol; /* IPPROTO_*; 0 when proto is one weir names but no rule can */
	char proto[16]; /* as recorded: tcp, udp, udplite, icmp, ... */
	bool sent_nothing; /* "sent": false: a datagram connect(), nothing sent */
	__u64 tx_bytes, rx_bytes; /* EV_CLOSE: sent and received in the flow */
	char domain[EVREAD_NAME_MAX]; /* "" when absent */
	/* EV_DNS */
	char name[EVREAD_NAME_MAX];
	char qtype[16];
	char rcode[16]; /* "" when absent */
	struct evaddr {
		int family;
		__u8 addr[16];
	} answers[EVREAD_ANSWERS];
	size_t n_answers;
};

/* Called for each decision; nonzero stops the reading (returned as is). */
typedef int (*evrec_fn)(const struct evrec *r, void *ctx);

/*
 * Read FILES (NULL or none: standard input) line by line. A line that is
 * not an event (not JSON, not an object, a decision without its
 * destination) is -EINVAL with err "FILE:LINE: what is wrong"; an I/O
 * error -errno with err naming FILE.
 */
int evread_files(char *const *files, int n, evrec_fn fn, void *ctx, char err[EVREAD_ERR_LEN]);

#endif /* WEIR_EVREAD_H */
