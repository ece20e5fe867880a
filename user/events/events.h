/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Audit events: turn struct weir_event into JSON lines (docs/events.md),
 * one-line human messages, and the end-of-run summary.
 */
#ifndef WEIR_EVENTS_H
#define WEIR_EVENTS_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "dns.h"
#include "policy.h"

struct learn;

#define EVENTS_SCHEMA_VERSION 1
#define EVENT_JSON_MAX 1024

/*
 * The last rule's JSON (name and origin), kept by the one thread that
 * formats a stream's events. Keyed by the policy's address: a caller that
 * frees a policy and loads another must zero it (or use none).
 */
struct event_memo {
	const struct policy *policy;
	__u32 rule;
	bool redirect;
	size_t len; /* 0: empty */
	char json[640];
};

struct event_ctx {
	const struct policy *policy; /* rule names and domains; may be NULL */
	__s64 boot_to_real_ns; /* CLOCK_REALTIME - CLOCK_BOOTTIME */
	__u64 cgroup_id; /* the enforced cgroup ... */
	const char *cgroup_path; /* ... and its path below the cgroup2 mount */
	struct learn *learn; /* names behind learned addresses; may be NULL */
	struct event_memo *memo; /* may be NULL; see above */
};

/* Fill boot_to_real_ns from the clocks now. */
void event_ctx_init_clock(struct event_ctx *ctx);

const char *event_op_name(__u8 op);
const char *event_verdict_name(__u8 verdict);
const char *event_reason_name(const struct weir_event *e);
/* "tcp", "udp", "icmp", or the protocol number. */
const char *event_proto_name(__u16 protocol, char *buf, size_t len);
/* Every op but "close" (a flow's end: a record, no decision of its own):
 * decisions are what the summary counts and what stderr lines report. */
bool event_is_decision(const struct weir_event *e);
/*
 * A datagram socket's connect() (UDP, UDP-Lite, ping) that was refused, or
 * in audit mode would have been: connect() sends nothing (glibc's
 * getaddrinfo() connects UDP sockets only to pick a source address), so it
 * is no denial; what such a socket sends in audit mode meets the backstop.
 */
bool event_sent_nothing(const struct weir_event *e);
/* The name an address was learned from or the domain the deciding rule
 * names (copied into buf), or NULL. */
const char *event_domain(const struct event_ctx *ctx, const struct weir_event *e, char *buf,
			 size_t len);

/* One JSON object, no newline. Returns its length, or -ENOSPC. */
int event_format_json(const struct event_ctx *ctx, const struct weir_event *e, char *buf,
		      size_t len);
/*
 * "denied tcp 198.51.100.7:443 (curl pid 4242)", or with the name the
 * address was learned from "denied tcp web.test:8080 (192.0.2.10, curl pid
 * 4242)". ctx: as for event_domain().
 */
int event_format_human(const struct event_ctx *ctx, const struct weir_event *e, char *buf,
		       size_t len);
/*
 * The same for a ring-buffer record of RECLEN bytes, which for the unix
 * ops (include/weir/unix.h) carries the socket's path after the event:
 * "path" in JSON, "denied unix stream connect to /run/nscd/socket (getent
 * pid 42): weir's built-in list". -EINVAL for a record too short.
 */
int event_format_json_rec(const struct event_ctx *ctx, const void *rec, size_t reclen, char *buf,
			  size_t len);
/* The same with the event's domain found already (event_domain(), which
 * the summary wants too: looked up once an event). */
int event_format_json_dom(const struct event_ctx *ctx, const void *rec, size_t reclen,
			  const char *domain, char *buf, size_t len);
int event_format_human_rec(const struct event_ctx *ctx, const void *rec, size_t reclen, char *buf,
			   size_t len);
/* "198.51.100.7:443" or "[2001:db8::1]:443" */
void event_format_dest(const struct weir_event *e, char *buf, size_t len);
/* A query to weir's resolver: JSON (op "dns") and the human line. */
int event_format_dns_json(const struct event_ctx *ctx, const struct dns_event *e, char *buf,
			  size_t len);
int event_format_dns_human(const struct dns_event *e, char *buf, size_t len);

/* Counts of decisions per destination for the exit summary. */
struct summary;
struct summary *summary_new(void);
/* Leaves out events that sent nothing (event_sent_nothing()) and close
 * events (event_is_decision()); rows are
 * keyed by event_domain() when there is one (ctx may be NULL). */
void summary_add(struct summary *s, const struct event_ctx *ctx, const struct weir_event *e);
/* The same with the row's name known already (event_domain() where the
 * learned names are: weir run through the daemon gets it from there); P
 * (may be NULL) names the deciding rule's file and line. */
void summary_add_domain(struct summary *s, const struct policy *p, const struct weir_event *e,
			const char *domain);
void summary_add_dns(struct summary *s, const struct dns_event *e);
void summary_print(const struct summary *s, FILE *f, __u64 lost);
void summary_free(struct summary *s);

/* The totals, indexed by verdict (WEIR_V_DENY, WEIR_V_ALLOW, WEIR_V_WOULD_DENY):
 * the run-end record of the event stream, and whether -q has news. */
struct summary_counts {
	__u64 decisions[3];
	__u64 dns[3]; /* queries to weir's resolver */
	__u64 dns_failed; /* of those, forwarded and failed upstream (SERVFAIL) */
};

void summary_counts(const struct summary *s, struct summary_counts *out);

#endif /* WEIR_EVENTS_H */
