// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir_judge() of bpf/verdict.bpf.h, run in userspace over a compiled
 * policy. The header is the kernel's own decision code; what it asks of
 * BPF (map lookups, the boot clock) is answered by the shim below, so a
 * change to the kernel's verdict is a change to verify's, with nothing to
 * keep in step by hand.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "dns.h"
#include "judge.h"

/* --- the shim: stand-ins for the maps verdict.bpf.h names ------------------ */

struct shim_lpm4 {
	int unused;
};
struct shim_lpm6 {
	int unused;
};
struct shim_portsets {
	int unused;
};
struct shim_learn {
	int unused;
};
static struct shim_lpm4 weir_lpm4;
static struct shim_lpm6 weir_lpm6;
static struct shim_portsets weir_portsets;
static struct shim_learn weir_learn;

/* What the maps hold for the judgement under way (one thread judges). */
struct shim_state {
	const struct matcher *m;
	const struct weir_learn_val *learned; /* NULL: the address was not learned */
};
static __thread struct shim_state shim;

static const struct weir_lpm_val *shim_lpm4_lookup(const struct weir_key4 *k);
static const struct weir_lpm_val *shim_lpm6_lookup(const struct weir_key6 *k);
static const struct weir_portset *shim_portset_lookup(const __u32 *set);
static const struct weir_learn_val *shim_learn_lookup(const struct weir_learn_key *k);

/* The map is told apart by its type, as the BPF side tells it by name. */
#define bpf_map_lookup_elem(map, key)                                                         \
	_Generic((map), struct shim_lpm4 *: shim_lpm4_lookup,                                 \
		 struct shim_lpm6 *: shim_lpm6_lookup,                                         \
		 struct shim_portsets *: shim_portset_lookup,                                  \
		 struct shim_learn *: shim_learn_lookup)(key)

/* Learned entries are made to expire at 1: never stale at "now" 0. */
static inline __u64 bpf_ktime_get_boot_ns(void)
{
	return 0;
}

/* The BPF build has -Wall but not -Wextra: the header compares an int
 * loop counter with a __u32 count (bounded loops the verifier accepts). */
/* The header's global BPF functions are this file's own here. */
#define WEIR_GLOBAL static
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "../../bpf/verdict.bpf.h"
#pragma GCC diagnostic pop

/* --- the compiled tries, as longest-prefix-match tables ------------------- */

/* Entries of one family grouped by prefix length, longest first, each
 * group sorted by address: a lookup is one binary search per length. */
struct lpm_group {
	__u8 plen;
	size_t start, n;
};

struct lpm_table {
	struct centry *e;
	size_t n, alen;
	struct lpm_group g[129];
	size_t ng;
};

struct matcher {
	struct policy *p;
	struct compiled c;
	struct lpm_table t4, t6;
};

static int entry_cmp(const void *a, const void *b, void *alen)
{
	const struct centry *x = a, *y = b;

	if (x->plen != y->plen)
		return x->plen > y->plen ? -1 : 1;
	return memcmp(x->addr, y->addr, *(size_t *)alen);
}

static void mask_addr(__u8 *a, size_t alen, unsigned int plen)
{
	size_t i;

	for (i = 0; i < alen; i++, plen = plen > 8 ? plen - 8 : 0)
		if (plen < 8)
			a[i] &= (__u8)(0xff00 >> plen);
}

static void table_build(struct lpm_table *t, struct centry *e, size_t n, size_t alen)
{
	size_t i;

	t->e = e;
	t->n = n;
	t->alen = alen;
	for (i = 0; i < n; i++)
		mask_addr(e[i].addr, alen, e[i].plen);
	qsort_r(e, n, sizeof(*e), entry_cmp, &alen);
	for (i = 0; i < n; i++) {
		if (!t->ng || t->g[t->ng - 1].plen != e[i].plen)
			t->g[t->ng++] = (struct lpm_group){ .plen = e[i].plen, .start = i };
		t->g[t->ng - 1].n++;
	}
}

static const struct weir_lpm_val *table_lookup(const struct lpm_table *t, const __u8 *addr)
{
	__u8 k[16];
	size_t i;

	for (i = 0; i < t->ng; i++) {
		size_t lo = t->g[i].start, hi = lo + t->g[i].n;

		memcpy(k, addr, t->alen);
		mask_addr(k, t->alen, t->g[i].plen);
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = memcmp(t->e[mid].addr, k, t->alen);

			if (!c)
				return &t->e[mid].val;
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return NULL;
}

static const struct weir_lpm_val *shim_lpm4_lookup(const struct weir_key4 *k)
{
	return table_lookup(&shim.m->t4, k->addr);
}

static const struct weir_lpm_val *shim_lpm6_lookup(const struct weir_key6 *k)
{
	return table_lookup(&shim.m->t6, k->addr);
}

/* val.*.set are 1-based indexes into compiled.sets (compile.h). */
static const struct weir_portset *shim_portset_lookup(const __u32 *set)
{
	const struct compiled *c = &shim.m->c;

	return *set && *set <= c->nsets ? &c->sets[*set - 1] : NULL;
}

static const struct weir_learn_val *shim_learn_lookup(const struct weir_learn_key *k)
{
	return shim.learned;
}

/* --- the matcher ---------------------------------------------------------- */

int matcher_new(struct policy *p, struct matcher **out, char err[COMPILE_ERR_LEN])
{
	struct compile_input in = { .policy = p };
	struct matcher *m;
	int ret;

	m = calloc(1, sizeof(*m));
	if (!m) {
		policy_free(p);
		snprintf(err, COMPILE_ERR_LEN, "out of memory");
		return -ENOMEM;
	}
	m->p = p;
	ret = compile_policy(&in, &m->c, err);
	if (ret) {
		matcher_free(m);
		return ret;
	}
	table_build(&m->t4, m->c.v4, m->c.n4, 4);
	table_build(&m->t6, m->c.v6, m->c.n6, 16);
	*out = m;
	return 0;
}

void matcher_free(struct matcher *m)
{
	if (!m)
		return;
	compiled_free(&m->c);
	policy_free(m->p);
	free(m);
}

const struct policy *matcher_policy(const struct matcher *m)
{
	return m->p;
}

/* What weir's resolver would have taught the kernel about ADDR for NAME. */
static bool learn_for(const struct matcher *m, const char *name, int family, const __u8 *addr,
		      struct weir_learn_val *l)
{
	struct resolved_addr a = { .family = (__u8)family };
	size_t nr = 0;
	__u32 rule;

	memcpy(a.addr, addr, family == AF_INET ? 4 : 16);
	if (!name || !*name || dns_judge_name(m->p, name, &rule, l->r, &nr) != 1 ||
	    !compile_name_addr_ok(m->p, &a))
		return false;
	l->n = (__u32)nr;
	l->domain_id = 1;
	l->expires_ns = 1;
	return true;
}

void judge_conn(const struct matcher *m, int family, const __u8 addr[16], __u16 port,
		__u16 protocol, const char *domain, struct judgement *j)
{
	struct weir_learn_key to = {};
	struct weir_decision d = {};
	struct weir_learn_val l = {};
	const struct weir_lpm_val *v;
	__u8 a[16] = {};

	memcpy(a, addr, family == AF_INET ? 4 : 16);
	/* As weir_judge_dest() in bpf/egress.bpf.c: mapped IPv4 is IPv4,
	 * the unspecified address is loopback. */
	if (family == AF_INET6 && !memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12)) {
		memmove(a, a + 12, 4);
		memset(a + 4, 0, 12);
		family = AF_INET;
	}
	if (family == AF_INET && !memcmp(a, "\0\0\0\0", 4))
		memcpy(a, "\x7f\0\0\x01", 4);
	if (family == AF_INET6 && !memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16))
		a[15] = 1;
	shim.m = m;
	shim.learned = learn_for(m, domain, family, a, &l) ? &l : NULL;
	if (family == AF_INET) {
		__u32 a4;

		memcpy(&a4, a, 4);
		v = weir_lookup4(0, a4);
	} else {
		v = weir_lookup6(0, (const __u32 *)a);
	}
	to.family = (__u8)family;
	memcpy(to.addr, a, 16);
	weir_judge(v, &to, port, weir_proto_class(protocol), false, &d);
	j->rule = d.rule;
	j->verdict = d.verdict;
	j->reason = d.reason;
	shim.m = NULL;
	shim.learned = NULL;
}

void judge_name(const struct matcher *m, const char *name, struct judgement *j)
{
	struct weir_portrange r[WEIR_LEARN_RANGES];
	size_t nr = 0;
	int ok;

	ok = dns_judge_name(m->p, name, &j->rule, r, &nr);
	j->verdict = ok == 1 ? WEIR_V_ALLOW : WEIR_V_DENY;
	j->reason = ok == 1 ? WEIR_R_ALLOW_RULE :
		    WEIR_RULE_KIND(j->rule) == WEIR_RK_DENY ? WEIR_R_DENY_RULE : WEIR_R_NO_MATCH;
}
