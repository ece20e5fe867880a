/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Addresses learned from the answers weir's resolver relays. Each (name,
 * address) pair lives for the record's TTL clamped to [ttl_min, ttl_max];
 * the BPF value of an address is the union of the port ranges of every
 * live name that maps to it, and lives as long as the longest of them.
 * Thread-safe: the resolver adds, a timer expires, events read names.
 */
#ifndef WEIR_LEARN_H
#define WEIR_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "compile.h"

struct egress;
struct learn;

struct learn_opts {
	__u32 ttl_min; /* seconds */
	__u32 ttl_max;
	__u32 max_per_name; /* live addresses per name */
	__u32 max_names; /* names remembered in all; 0: LEARN_MAX_NAMES */
	__u32 max_pairs; /* (name, address) pairs in all, then the soonest to expire
			  * makes room; 0: LEARN_MAX_PAIRS */
	__u32 handle; /* the attachment whose weir_learn entries these are */
};

/* Bounds on what a command can make weir (outside its cgroup) remember. */
#define LEARN_MAX_NAMES 65536
#define LEARN_MAX_PAIRS 262144

int learn_new(struct egress *eg, const struct learn_opts *o, struct learn **out);
/*
 * NAME (allowed with ranges r[0..nr-1]) resolved to a[0..n-1]: every
 * address is in the BPF map when this returns. Returns how many were
 * refused by a cap (per name, or a full table): those are not learned, so
 * connections to them are denied; weir says so on stderr, once per table
 * and at most once every 10 s for the per-name cap.
 */
int learn_add(struct learn *l, const char *name, const struct weir_portrange *r, size_t nr,
	      const struct resolved_addr *a, size_t n);
/* Is NAME allowed, and with which port ranges (r[0..*nr-1])? */
typedef bool (*learn_judge_fn)(void *ctx, const char *name, struct weir_portrange *r,
			       size_t *nr);
/* A new policy: every learned pair is judged again, keeps the ranges the
 * new policy gives its name, or is forgotten (and its address, when no
 * other name holds it). Returns how many were forgotten. */
int learn_rejudge(struct learn *l, learn_judge_fn judge, void *ctx);
/* Drop what has expired; returns how many pairs went. */
int learn_expire(struct learn *l);
/*
 * NAME resolved to a[0..n-1], and nothing was learned (audit mode: a name
 * the policy would refuse). Remembered to name those addresses in events,
 * never to allow them: the last LEARN_SEEN_MAX addresses, no TTL.
 */
void learn_seen(struct learn *l, const char *name, const struct resolved_addr *a, size_t n);
/* The name an address was last seen for (learn_seen), copied into buf. */
const char *learn_seen_name(struct learn *l, __u8 family, const __u8 *addr, char *buf,
			    size_t len);
/* The name behind a domain_id (0 if none), copied into buf. */
const char *learn_name(struct learn *l, __u32 id, char *buf, size_t len);
void learn_free(struct learn *l);

#endif /* WEIR_LEARN_H */
