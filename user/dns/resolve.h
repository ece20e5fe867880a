/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Static resolution of exact domain rules. weir's resolver (dns.h) learns
 * the addresses programs are actually given; this covers the lookups that
 * produce no DNS traffic from the cgroup for it to see: names answered by a
 * daemon outside the cgroup over a unix socket (nscd, systemd-resolved via
 * nss-resolve) and names in /etc/hosts. Names are resolved (A and AAAA,
 * following CNAME chains) through the same upstreams when the policy loads,
 * then again as each answer's TTL runs out, on a thread of their own. When
 * the addresses of any name change, the notify fd becomes readable and the
 * owner recompiles the policy (compile.h: domain_addrs_fn is resolver_addrs).
 */
#ifndef WEIR_RESOLVE_H
#define WEIR_RESOLVE_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <linux/types.h>

#include "compile.h"
#include "dns.h"
#include "policy.h"

#define RESOLVE_TTL_MIN 5 /* seconds: a TTL of 0 must not spin */
#define RESOLVE_TTL_MAX 3600
#define RESOLVE_RETRY 10 /* seconds after a failed lookup */
#define RESOLVE_MAX_ADDRS 64 /* per name and family */

struct resolver;

/* One query pair (A, AAAA) for NAME via the upstreams (port of the first).
 * Why no server answered (-ETIMEDOUT, -ECONNREFUSED, ...: see
 * dns_upstream_note(), which says it once), -EREMOTEIO on SERVFAIL, -EIO
 * on other failure codes;
 * NXDOMAIN and NODATA are success with no addresses. */
int resolve_name(const char *name, const struct dns_upstream *up, size_t n_up,
		 struct resolved_addr **out, size_t *n);

/* Exact deny names are always resolved ahead of time (their addresses stay
 * denied however a program reaches them); exact allow names only when
 * with_allow is set (see "Static names" in docs/dns.md). */
int resolver_new(const struct policy *p, const struct dns_upstream *up, size_t n_up,
		 bool with_allow, struct resolver **out);
/*
 * Would getaddrinfo() answer without DNS traffic from the cgroup, so weir's
 * resolver never sees the lookup? True when nsswitch.conf's hosts line uses
 * a daemon (resolve: systemd-resolved over varlink; or nscd is running).
 */
bool resolve_nss_bypasses_dns(const char *nsswitch, const char *nscd_socket);
/* Addresses of exact domain rules listed in a hosts file (/etc/hosts):
 * they resolve with no DNS traffic at all, so they are always allowed. */
int resolver_load_hosts(struct resolver *r, const char *path);
/* The same, from a hosts file read earlier. */
void resolver_load_hosts_stream(struct resolver *r, FILE *f);
/* Resolve every exact domain rule now. Failures are warned about, not fatal:
 * a name that does not resolve allows nothing. Returns how many failed. */
int resolver_resolve_all(struct resolver *r);
/* How many names are looked up in DNS (each may come to hold up to
 * RESOLVE_MAX_ADDRS addresses per family when refreshed). */
size_t resolver_n_resolving(const struct resolver *r);
/* Start refreshing on TTL expiry; notify_fd (an eventfd) is written to
 * whenever the addresses of a name change. */
int resolver_start(struct resolver *r, int notify_fd);
/* Hold the lock while compiling from resolver_addrs(). */
void resolver_lock(struct resolver *r);
void resolver_unlock(struct resolver *r);
size_t resolver_addrs(void *resolver, __u32 rule_id, const struct resolved_addr **out);
/* Stops the thread; NULL-safe. */
void resolver_free(struct resolver *r);

#endif /* WEIR_RESOLVE_H */
