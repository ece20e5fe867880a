/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * weir's resolver: the BPF programs send every DNS query of the enforced
 * cgroup here (port 53 of any address, UDP and TCP). Names the policy
 * allows are forwarded upstream and the addresses of the answer are learned
 * (learn.h) before the answer is released; any other name gets REFUSED with
 * an Extended DNS Error and never leaves the machine.
 */
#ifndef WEIR_DNS_H
#define WEIR_DNS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "compile.h"
#include "dnsmsg.h"
#include "log.h"
#include "policy.h"

struct dnsproxy;
struct egress;
struct learn;

#define DNS_EVENT_ANSWERS 16

struct dns_health;

struct dns_upstream {
	struct sockaddr_storage sa;
	socklen_t len;
	struct dns_health *health; /* whose account of it (dns_upstream_note):
				    * NULL the process's */
};

/* An account of which upstreams work, of one attachment: WHO names it in
 * the lines (NULL: none). */
struct dns_health *dns_health_new(const char *who);
void dns_health_free(struct dns_health *h);
/* Say its lines to FN (without WHO) instead of the log: weir run through
 * the daemon gets its attachment's lines on its own stderr. */
void dns_health_set_sink(struct dns_health *h, log_sink_fn fn, void *ctx);

/* One query, for the audit stream. */
struct dns_event {
	__u8 verdict; /* enum weir_verdict */
	__u8 protocol; /* IPPROTO_UDP or IPPROTO_TCP */
	const char *reason; /* "allowed-name", "name-not-allowed", "deny-rule", ... */
	__u32 rule; /* WEIR_RULE_ID of the deciding rule, 0 if none */
	struct dns_question q;
	int rcode; /* of the answer relayed, -1 if none */
	bool upstream_failed; /* allowed, but the program got SERVFAIL: no upstream
			       * answered, or one answered SERVFAIL (reason says) */
	bool have_asker;
	struct weir_asker asker; /* who asked, and which server it meant */
	size_t n_answers;
	struct resolved_addr answers[DNS_EVENT_ANSWERS];
	__u64 asked_ns, took_ns; /* CLOCK_MONOTONIC when it came in; how long
				  * until its answer (or refusal) went out */
};

typedef void (*dns_event_fn)(void *ctx, const struct dns_event *e);

struct dnsproxy_cfg {
	const struct policy *policy;
	const struct dns_upstream *up;
	size_t n_up;
	struct learn *learn;
	struct egress *egress; /* for weir_askers */
	__u32 handle; /* the attachment served: an asker redirected by another is not */
	dns_event_fn on_event;
	void *ctx;
	bool attribute_all; /* find the asker of every query, not only refused
			     * ones (an events file wants pid/comm on each) */
};

/* What the policy says of NAME: allowed (1) with the port ranges of every
 * allow rule naming it, or not (0); *rule is the deciding rule. */
int dns_judge_name(const struct policy *p, const char *name, __u32 *rule,
		   struct weir_portrange *r, size_t *nr);

/* Bind UDP and TCP on 127.0.0.1 and ::1, one free port for all, in the
 * caller thread's network namespace. */
int dnsproxy_open(struct dnsproxy **out);
/* The same on PORT (0: a free one). */
int dnsproxy_open_port(__u16 port, struct dnsproxy **out);
__u16 dnsproxy_port(const struct dnsproxy *p);
bool dnsproxy_has_ipv6(const struct dnsproxy *p);
/* Serve on a thread of its own until dnsproxy_free(). The thread (and
 * the TCP clients' threads it starts) are in the caller thread's network
 * namespace: the upstreams are reached from there. After dnsproxy_stop(),
 * start again serves the same sockets with a new cfg (queries that come
 * in between wait in the sockets); -EBUSY if a TCP client still runs. */
int dnsproxy_start(struct dnsproxy *p, const struct dnsproxy_cfg *cfg);
/* Stop serving; queries left waiting on a failing upstream are reported
 * as failed. dnsproxy_free() stops it too. */
void dnsproxy_stop(struct dnsproxy *p);
void dnsproxy_free(struct dnsproxy *p);

/* One query over TCP to one upstream (bounded by timeouts). */
int dns_tcp_exchange(const struct dns_upstream *u, const __u8 *q, size_t qlen, __u8 *ans,
		     size_t *alen);

/*
 * How one exchange with upstream U went: 0 it answered, -EREMOTEIO it
 * answered SERVFAIL, else why it could not be reached (-ETIMEDOUT,
 * -ECONNREFUSED, -ENETUNREACH, ...). A failure is said once on stderr
 * ("DNS upstream 192.0.2.53:53 unreachable: timeout"), per upstream and
 * kind, not per query; an unreachable upstream that answers again is said
 * to, and a later failure is said again (after four such lines, at most
 * one every 10 s). Thread-safe. Returns whether it said something. The
 * account is U's health (per attachment), else the process's.
 */
bool dns_upstream_note(const struct dns_upstream *u, int err);
/* dns_upstream_note()'s err for an upstream that answered REFUSED. */
#define DNS_UPSTREAM_REFUSED (-EACCES)
/* Has U failed since it last answered (dns_upstream_note)? */
bool dns_upstream_failing(const struct dns_upstream *u);
/* The event reason of a failed query: "upstream-timeout" (-ETIMEDOUT),
 * "upstream-servfail" (-EREMOTEIO), "upstream-refused"
 * (DNS_UPSTREAM_REFUSED), else "upstream-unreachable". */
const char *dns_upstream_reason(int err);
/* "192.0.2.53:53", "[2001:db8::53]:53" */
void dns_upstream_format(const struct dns_upstream *u, char *buf, size_t len);

/* "IP", "IP:PORT", "[IPv6]:PORT" -> upstream (default port 53). */
int dns_parse_upstream(const char *s, struct dns_upstream *u);

#endif /* WEIR_DNS_H */
