// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "compile.h"

const struct resolved_addr compile_metadata_addrs[] = {
	{ .family = AF_INET, .addr = { 169, 254, 169, 254 } }, /* AWS, GCP, Azure, OpenStack, ... */
	{ .family = AF_INET, .addr = { 169, 254, 170, 2 } }, /* AWS ECS task metadata */
	{ .family = AF_INET, .addr = { 100, 100, 100, 200 } }, /* Alibaba Cloud */
	{ .family = AF_INET6, .addr = { 0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54 } }, /* AWS fd00:ec2::254 */
};
const size_t compile_n_metadata_addrs =
	sizeof(compile_metadata_addrs) / sizeof(compile_metadata_addrs[0]);

int crules_add(struct crules *cr, const struct crule *r)
{
	struct crule *n;

	if (cr->n == cr->cap) {
		size_t cap = cr->cap ? cr->cap * 2 : 64;

		n = realloc(cr->r, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		cr->r = n;
		cr->cap = cap;
	}
	cr->r[cr->n++] = *r;
	return 0;
}

void crules_free(struct crules *cr)
{
	free(cr->r);
	memset(cr, 0, sizeof(*cr));
}

static int addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static struct crule rule_crule(const struct policy_rule *pr, __u8 side, __u32 id)
{
	struct crule r = {
		.family = pr->family,
		.plen = pr->prefixlen,
		.side = side,
		.protos = pr->protos,
		.rule = id,
		.ports = pr->ports,
		.n_ports = pr->n_ports,
	};

	memcpy(r.addr, pr->addr, sizeof(r.addr));
	return r;
}

/*
 * May a name's address become an allow? Never 0.0.0.0 or ::, and never
 * loopback when the policy denies loopback: an allowed name that resolves
 * to 127.0.0.1 is DNS rebinding, not a reason to open local services.
 */
bool compile_name_addr_ok(const struct policy *p, const struct resolved_addr *a)
{
	static const __u8 zero[16], v6lo[16] = { [15] = 1 };
	static const __u8 mapped[12] = { [10] = 0xff, [11] = 0xff };
	const __u8 *v4 = a->addr;

	if (a->family == AF_INET6 && !memcmp(a->addr, mapped, 12))
		v4 = a->addr + 12;
	else if (a->family == AF_INET6)
		return memcmp(a->addr, zero, 16) && (p->loopback_allow || memcmp(a->addr, v6lo, 16));
	if (!(v4[0] | v4[1] | v4[2] | v4[3]))
		return false;
	return p->loopback_allow || v4[0] != 127;
}

/*
 * Arrays of a million-prefix policy are tens of MB, and first touching
 * them was a large part of its compile (a page fault per 4 KiB; faults
 * are dear in virtual machines). Where malloc mapped one of its own, ask
 * for transparent huge pages over the part not yet touched: a fault per
 * 2 MiB. Only a hint; nothing changes for small arrays.
 */
void hint_huge(void *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + (2UL << 20) - 1) & ~((2UL << 20) - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~((2UL << 20) - 1);

	if (len >= (8UL << 20) && e > a)
		madvise((void *)a, e - a, MADV_HUGEPAGE);
}

/* The entries of a cidr_list rule, each with the rule's ports and protocols. */
static int collect_list(const struct policy_rule *pr, struct crule *r, struct crules *out)
{
	size_t i, need = out->n + pr->n_pfx;
	struct crule *v;

	if (need > out->cap) {
		/* Room for what comes after too (the built-in rules): growing
		 * a million-entry array again would copy all of it. */
		need += need / 8 + 64;
		v = realloc(out->r, need * sizeof(*v));
		if (!v)
			return -ENOMEM;
		hint_huge(v + out->n, (need - out->n) * sizeof(*v));
		out->r = v;
		out->cap = need;
	}
	for (i = 0; i < pr->n_pfx; i++) {
		r->family = pr->pfx[i].family;
		r->plen = pr->pfx[i].plen;
		memcpy(r->addr, pr->pfx[i].addr, sizeof(r->addr));
		out->r[out->n++] = *r;
	}
	return 0;
}

/* A rule list of the policy (allow, deny or --allow) into constraints. */
static int collect_rules(const struct compile_input *in, const struct policy_rule *rules, size_t n,
			 __u8 side, __u8 kind, struct crules *out)
{
	const struct resolved_addr *addrs;
	struct crule r;
	size_t i, j, na;
	int err;

	for (i = 0; i < n; i++) {
		__u32 id = WEIR_RULE_ID(kind, i);

		r = rule_crule(&rules[i], side, id);
		if (side == SIDE_ALLOW && rules[i].upload_budget)
			r.flags |= WEIR_RF_BUDGET;
		if (rules[i].kind == RULE_CIDR) {
			err = crules_add(out, &r);
			if (err)
				return err;
			continue;
		}
		if (rules[i].kind == RULE_CIDR_LIST) {
			err = collect_list(&rules[i], &r, out);
			if (err)
				return err;
			continue;
		}
		na = in->domain_addrs ? in->domain_addrs(in->domain_ctx, id, &addrs) : 0;
		for (j = 0; j < na; j++) {
			if (side == SIDE_ALLOW && !compile_name_addr_ok(in->policy, &addrs[j]))
				continue;
			r.family = addrs[j].family;
			r.plen = addr_len(r.family) * 8;
			memcpy(r.addr, addrs[j].addr, sizeof(r.addr));
			err = crules_add(out, &r);
			if (err)
				return err;
		}
	}
	return 0;
}

static bool list_names(const struct policy_rule *r, const struct resolved_addr *a)
{
	size_t i;

	for (i = 0; i < r->n_pfx; i++)
		if (r->pfx[i].family == a->family && r->pfx[i].plen == addr_len(a->family) * 8 &&
		    !memcmp(r->pfx[i].addr, a->addr, addr_len(a->family)))
			return true;
	return false;
}

/* Does an allow rule name exactly this address (not merely cover it)? */
static bool names_exactly(const struct policy_rule *rules, size_t n, const struct resolved_addr *a)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (rules[i].kind == RULE_CIDR_LIST && list_names(&rules[i], a))
			return true;
		if (rules[i].kind == RULE_CIDR && rules[i].family == a->family &&
		    rules[i].prefixlen == addr_len(a->family) * 8 &&
		    !memcmp(rules[i].addr, a->addr, addr_len(a->family)))
			return true;
	}
	return false;
}

static int collect_builtin(const struct compile_input *in, struct crules *out)
{
	const struct policy *p = in->policy;
	struct crule r;
	size_t i;
	int err = 0;

	if (p->loopback_allow) {
		r = (struct crule){ .family = AF_INET, .plen = 8, .protos = WEIR_P_ANY,
				    .rule = WEIR_RULE_ID(WEIR_RK_LOOPBACK, 0), .addr = { 127 } };
		err = crules_add(out, &r);
		r = (struct crule){ .family = AF_INET6, .plen = 128, .protos = WEIR_P_ANY,
				    .rule = WEIR_RULE_ID(WEIR_RK_LOOPBACK, 1), .addr = { [15] = 1 } };
		err = err ?: crules_add(out, &r);
	}
	for (i = 0; !err && i < compile_n_metadata_addrs; i++) {
		const struct resolved_addr *a = &compile_metadata_addrs[i];

		if (names_exactly(p->allow, p->n_allow, a) || names_exactly(p->args, p->n_args, a))
			continue;
		r = (struct crule){ .family = a->family, .plen = addr_len(a->family) * 8,
				    .side = SIDE_DENY, .protos = WEIR_P_ANY, .flags = WEIR_RF_HARD,
				    .rule = WEIR_RULE_ID(WEIR_RK_METADATA, i) };
		memcpy(r.addr, a->addr, sizeof(r.addr));
		err = crules_add(out, &r);
	}
	return err;
}

int compile_collect(const struct compile_input *in, struct crules *out)
{
	const struct policy *p = in->policy;
	int err;

	err = collect_rules(in, p->allow, p->n_allow, SIDE_ALLOW, WEIR_RK_ALLOW, out);
	err = err ?: collect_rules(in, p->deny, p->n_deny, SIDE_DENY, WEIR_RK_DENY, out);
	err = err ?: collect_rules(in, p->args, p->n_args, SIDE_ALLOW, WEIR_RK_ARG, out);
	return err ?: collect_builtin(in, out);
}

/* --- flattening ----------------------------------------------------------- */

/*
 * The flattening's scratch arrays run to hundreds of MB at a million
 * prefixes, and first touching them was a third of the compile (a page
 * fault per 4 KiB). Big ones are mapped with transparent huge pages asked
 * for: a fault per 2 MiB. Zeroed; the length is kept in front.
 */
#define BIG_HDR 64
#define BIG_MIN (4UL << 20)
#define HUGE_SZ (2UL << 20)

static void *big_alloc(size_t n)
{
	size_t len = n + BIG_HDR;
	char *p;

	if (len < BIG_MIN) {
		p = calloc(1, len); /* zeroed, as a fresh mapping is */
		if (!p)
			return NULL;
		*(size_t *)p = 0;
		return p + BIG_HDR;
	}
	len = (len + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_HUGEPAGE); /* a hint: no error if THP is off */
	*(size_t *)p = len;
	return p + BIG_HDR;
}

static void big_free(void *q)
{
	char *p = q ? (char *)q - BIG_HDR : NULL;

	if (p && *(size_t *)p)
		munmap(p, *(size_t *)p);
	else
		free(p);
}


/* A distinct prefix, its own constraints, and the prefix that covers it. */
struct node {
	__u8 family, plen;
	__u8 addr[16];
	size_t first, count; /* its constraints in the sorted crule array */
	struct node *parent;
	/* Its own ranges per side, deduplicated once (struct ranges pool):
	 * a prefix named by 400 rules is then one range to its descendants. */
	size_t own_off[2];
	__u8 own_n[2];
	__u8 own_overflow[2];
};

struct ranges {
	struct weir_portrange *r;
	size_t n, cap;
};

/* Network-order bytes compare like big-endian numbers: two words, not a
 * byte loop (this sort is most of a 1M-rule compile). */
static __u64 addr_word(const __u8 *a, int i)
{
	__u64 w;

	memcpy(&w, a + 8 * i, 8);
	return be64toh(w);
}

static int cmp_crule(const void *a, const void *b)
{
	const struct crule *x = a, *y = b;
	__u64 p, q;
	int i;

	if (x->family != y->family)
		return x->family - y->family;
	for (i = 0; i < 2; i++) {
		p = addr_word(x->addr, i);
		q = addr_word(y->addr, i);
		if (p != q)
			return p < q ? -1 : 1;
	}
	if (x->plen != y->plen)
		return x->plen - y->plen;
	/* Same prefix: deterministic order, so the lowest rule id is reported. */
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/*
 * The order of cmp_crule(), by LSD radix sort on (family, address, length)
 * of a 24-byte key: stable, so equal prefixes keep collection order, which
 * is rule id order. A byte equal in every key costs no pass: IPv4 lists
 * sort in five. qsort of the 48-byte crules was half of a 1M-prefix load.
 */
struct skey {
	__u64 hi, lo;
	__u32 fp; /* family << 8 | plen */
	__u32 idx;
};

static __u8 skey_byte(const struct skey *k, int b)
{
	if (b == 0)
		return (__u8)k->fp; /* plen: least significant */
	if (b <= 8)
		return (__u8)(k->lo >> (8 * (b - 1)));
	if (b <= 16)
		return (__u8)(k->hi >> (8 * (b - 9)));
	return (__u8)(k->fp >> 8); /* family: most significant */
}

#define SKEY_BYTES 18

static bool sorted_crules(const struct crule *r, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (cmp_crule(&r[i - 1], &r[i]) > 0)
			return false;
	return true;
}

static int sort_crules(const struct crule *in, size_t n, struct crule *out)
{
	size_t (*cnt)[256]; /* [SKEY_BYTES][256], not static: the daemon compiles in threads */
	struct skey *a, *b, *t;
	size_t i, pos, sum;
	int d;

	if (sorted_crules(in, n)) { /* published lists mostly are */
		if (n)
			memcpy(out, in, n * sizeof(*out));
		return 0;
	}
	a = big_alloc(n * sizeof(*a));
	b = big_alloc(n * sizeof(*b));
	cnt = calloc(SKEY_BYTES, sizeof(*cnt));
	if (!a || !b || !cnt) {
		big_free(a);
		big_free(b);
		free(cnt);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		a[i] = (struct skey){ .hi = addr_word(in[i].addr, 0), .lo = addr_word(in[i].addr, 1),
				      .fp = (__u32)in[i].family << 8 | in[i].plen, .idx = i };
		for (d = 0; d < SKEY_BYTES; d++)
			cnt[d][skey_byte(&a[i], d)]++;
	}
	for (d = 0; d < SKEY_BYTES; d++) {
		if (cnt[d][skey_byte(&a[0], d)] == n)
			continue; /* every key has this byte */
		for (i = 0, sum = 0; i < 256; i++) {
			pos = cnt[d][i];
			cnt[d][i] = sum;
			sum += pos;
		}
		for (i = 0; i < n; i++)
			b[cnt[d][skey_byte(&a[i], d)]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	for (i = 0; i < n; i++)
		out[i] = in[a[i].idx];
	big_free(a);
	big_free(b);
	free(cnt);
	return 0;
}

static bool covers(const struct node *outer, const struct node *inner)
{
	int full = outer->plen / 8, rest = outer->plen % 8;

	if (outer->family != inner->family || outer->plen > inner->plen)
		return false;
	if (memcmp(outer->addr, inner->addr, full))
		return false;
	if (!rest)
		return true;
	return !((outer->addr[full] ^ inner->addr[full]) & (0xff << (8 - rest)));
}

/* Ranges gathered for one side of one prefix, most specific rule first. */
struct rangeset {
	struct weir_portrange r[WEIR_PORTSET_MAX];
	size_t n;
	bool overflow;
};

static bool range_covered(const struct rangeset *rs, const struct weir_portrange *r)
{
	size_t i;

	for (i = 0; i < rs->n; i++) {
		const struct weir_portrange *o = &rs->r[i];

		if (o->lo <= r->lo && o->hi >= r->hi && (o->protos & r->protos) == r->protos &&
		    (o->flags & WEIR_RF_HARD) >= (r->flags & WEIR_RF_HARD))
			return true;
	}
	return false;
}

static void rangeset_add(struct rangeset *rs, const struct weir_portrange *r)
{
	if (range_covered(rs, r))
		return;
	if (rs->n == WEIR_PORTSET_MAX) {
		rs->overflow = true;
		return;
	}
	rs->r[rs->n++] = *r;
}

/* The ranges of a node's own constraints on one side, deduplicated. */
static void own_ranges(const struct crule *rules, const struct node *n, __u8 side,
		       struct rangeset *rs)
{
	struct weir_portrange r;
	size_t i, j;

	for (i = n->first; i < n->first + n->count; i++) {
		const struct crule *c = &rules[i];

		if (c->side != side)
			continue;
		r = (struct weir_portrange){ .lo = 0, .hi = 65535, .protos = c->protos,
					     .flags = c->flags, .rule = c->rule };
		if (!c->n_ports) {
			rangeset_add(rs, &r);
			continue;
		}
		for (j = 0; j < c->n_ports; j++) {
			r.lo = c->ports[j].lo;
			r.hi = c->ports[j].hi;
			rangeset_add(rs, &r);
		}
	}
}

static int store_own(const struct crule *rules, struct node *n, struct ranges *pool)
{
	struct weir_portrange *r;
	int side;

	for (side = 0; side < 2; side++) {
		struct rangeset rs = {};

		own_ranges(rules, n, side, &rs);
		if (pool->n + rs.n > pool->cap) {
			size_t cap = pool->cap ? pool->cap * 2 : 1024;

			while (cap < pool->n + rs.n)
				cap *= 2;
			r = realloc(pool->r, cap * sizeof(*r));
			if (!r)
				return -ENOMEM;
			hint_huge(r + pool->n, (cap - pool->n) * sizeof(*r));
			pool->r = r;
			pool->cap = cap;
		}
		/* pool->r is NULL until the first range: no memcpy of nothing to it. */
		if (rs.n)
			memcpy(pool->r + pool->n, rs.r, rs.n * sizeof(rs.r[0]));
		n->own_off[side] = pool->n;
		n->own_n[side] = rs.n;
		n->own_overflow[side] = rs.overflow;
		pool->n += rs.n;
	}
	return 0;
}

/* A node's ranges on one side: its own, then each cover's, most specific
 * first (the first match decides which rule an event names). */
static void gather(const struct ranges *pool, const struct node *n, __u8 side,
		   struct rangeset *rs)
{
	size_t i;

	for (; n; n = n->parent) {
		if (n->own_overflow[side])
			rs->overflow = true;
		for (i = 0; i < n->own_n[side]; i++)
			rangeset_add(rs, &pool->r[n->own_off[side] + i]);
	}
}

/* Port sets are deduplicated: 1M prefixes with "ports: [443]" share one. */
struct setidx {
	struct weir_portset *sets;
	size_t n, cap;
	__u32 *slots; /* open addressing: 1-based index into sets, 0 empty */
	size_t nslots;
};

static __u64 set_hash(const struct weir_portset *s)
{
	const unsigned char *p = (const unsigned char *)s;
	__u64 h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < sizeof(*s); i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int setidx_grow(struct setidx *si)
{
	size_t i, nslots = si->nslots ? si->nslots * 2 : 64;
	__u32 *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < si->n; i++) {
		size_t h = set_hash(&si->sets[i]) & (nslots - 1);

		while (slots[h])
			h = (h + 1) & (nslots - 1);
		slots[h] = i + 1;
	}
	free(si->slots);
	si->slots = slots;
	si->nslots = nslots;
	return 0;
}

static int setidx_put(struct setidx *si, const struct weir_portset *s, __u32 *idx)
{
	struct weir_portset *sets;
	size_t h;

	if ((si->n + 1) * 2 > si->nslots && setidx_grow(si))
		return -ENOMEM;
	for (h = set_hash(s) & (si->nslots - 1); si->slots[h]; h = (h + 1) & (si->nslots - 1)) {
		if (!memcmp(&si->sets[si->slots[h] - 1], s, sizeof(*s))) {
			*idx = si->slots[h];
			return 0;
		}
	}
	if (si->n == si->cap) {
		size_t cap = si->cap ? si->cap * 2 : 16;

		sets = realloc(si->sets, cap * sizeof(*sets));
		if (!sets)
			return -ENOMEM;
		si->sets = sets;
		si->cap = cap;
	}
	si->sets[si->n++] = *s;
	si->slots[h] = si->n;
	*idx = si->n;
	return 0;
}

static int side_value(const struct rangeset *rs, struct setidx *si, struct weir_match *m)
{
	struct weir_portset s = {};

	memset(m, 0, sizeof(*m));
	if (rs->n <= 1) {
		if (rs->n)
			m->inl = rs->r[0];
		return 0;
	}
	s.n = rs->n;
	memcpy(s.r, rs->r, rs->n * sizeof(s.r[0]));
	return setidx_put(si, &s, &m->set);
}

static void format_prefix(const struct node *n, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(n->family, n->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, n->plen);
}

static int node_value(const struct ranges *pool, const struct node *n, struct setidx *si,
		      struct centry *e, char err[COMPILE_ERR_LEN])
{
	struct rangeset allow = {}, deny = {};
	char pfx[64];
	int ret;

	gather(pool, n, SIDE_DENY, &deny);
	gather(pool, n, SIDE_ALLOW, &allow);
	if (allow.overflow || deny.overflow) {
		format_prefix(n, pfx, sizeof(pfx));
		snprintf(err, COMPILE_ERR_LEN,
			 "more than %d distinct port ranges apply to %s (counting the rules whose "
			 "prefixes cover it); merge some port lists",
			 WEIR_PORTSET_MAX, pfx);
		return -E2BIG;
	}
	e->family = n->family;
	e->plen = n->plen;
	memcpy(e->addr, n->addr, sizeof(e->addr));
	ret = side_value(&deny, si, &e->val.deny);
	return ret ?: side_value(&allow, si, &e->val.allow);
}

/* Distinct prefixes of sorted rules, each linked to its closest cover. */
static struct node *build_nodes(const struct crule *r, size_t n, size_t *count)
{
	struct node *nodes = big_alloc((n ? n : 1) * sizeof(*nodes));
	struct node *stack[130];
	size_t i, nn = 0;
	int depth = 0;

	if (!nodes)
		return NULL;
	for (i = 0; i < n; i++) {
		struct node *cur;

		if (nn && nodes[nn - 1].family == r[i].family && nodes[nn - 1].plen == r[i].plen &&
		    !memcmp(nodes[nn - 1].addr, r[i].addr, 16)) {
			nodes[nn - 1].count++;
			continue;
		}
		cur = &nodes[nn++];
		cur->family = r[i].family;
		cur->plen = r[i].plen;
		memcpy(cur->addr, r[i].addr, 16);
		cur->first = i;
		cur->count = 1;
		/* Sorted by (address, length): covers come first and nest. */
		while (depth && !covers(stack[depth - 1], cur))
			depth--;
		cur->parent = depth ? stack[depth - 1] : NULL;
		stack[depth++] = cur;
	}
	*count = nn;
	return nodes;
}

int compile_flatten(const struct crules *in, bool audit, struct compiled *out,
		    char err[COMPILE_ERR_LEN])
{
	struct crule *rules = NULL;
	struct ranges pool = {};
	struct setidx si = {};
	struct node *nodes;
	size_t i, nn = 0;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	out->audit = audit;
	rules = big_alloc((in->n ? in->n : 1) * sizeof(*rules));
	if (!rules)
		goto fail;
	if (sort_crules(in->r, in->n, rules))
		goto fail;
	nodes = build_nodes(rules, in->n, &nn);
	if (!nodes)
		goto fail;
	out->v4 = calloc(nn ? nn : 1, sizeof(*out->v4));
	if (!out->v4)
		goto fail_nodes;
	hint_huge(out->v4, nn * sizeof(*out->v4));
	/* Most prefixes have one range of their own: no regrowing (copying)
	 * the pool at a million of them. */
	pool.cap = nn + 1024;
	pool.r = malloc(pool.cap * sizeof(*pool.r));
	if (!pool.r)
		goto fail_nodes;
	hint_huge(pool.r, pool.cap * sizeof(*pool.r));
	for (i = 0; i < nn; i++)
		if (store_own(rules, &nodes[i], &pool))
			goto fail_nodes;
	for (i = 0; i < nn; i++) {
		ret = node_value(&pool, &nodes[i], &si, &out->v4[i], err);
		if (ret)
			goto fail_nodes;
	}
	/* Sorted by family: AF_INET (2) entries come before AF_INET6 (10). */
	for (i = 0; i < nn && out->v4[i].family == AF_INET; i++)
		;
	out->n4 = i;
	out->v6 = out->v4 + i;
	out->n6 = nn - i;
	out->sets = si.sets;
	out->nsets = si.n;
	free(pool.r);
	free(si.slots);
	big_free(nodes);
	big_free(rules);
	return 0;
fail_nodes:
	free(pool.r);
	big_free(nodes);
fail:
	if (ret == -ENOMEM)
		snprintf(err, COMPILE_ERR_LEN, "out of memory compiling the policy");
	free(si.sets);
	free(si.slots);
	big_free(rules);
	free(out->v4);
	memset(out, 0, sizeof(*out));
	return ret;
}

/*
 * The inbound rules as allow-side constraints on the peer's address (their
 * ports are local ports). Absent: loopback peers, every port; `any`:
 * everyone. There is no deny side, and no name (the parser refuses them).
 */
static int collect_inbound(const struct policy *p, struct crules *out)
{
	static const struct crule lo4 = { .family = AF_INET, .plen = 8, .protos = WEIR_P_ANY,
					  .rule = WEIR_RULE_ID(WEIR_RK_INBOUND_DEFAULT, 0),
					  .addr = { 127 } };
	static const struct crule lo6 = { .family = AF_INET6, .plen = 128, .protos = WEIR_P_ANY,
					  .rule = WEIR_RULE_ID(WEIR_RK_INBOUND_DEFAULT, 1),
					  .addr = { [15] = 1 } };
	static const struct crule any4 = { .family = AF_INET, .protos = WEIR_P_ANY,
					   .rule = WEIR_RULE_ID(WEIR_RK_INBOUND_ANY, 0) };
	static const struct crule any6 = { .family = AF_INET6, .protos = WEIR_P_ANY,
					   .rule = WEIR_RULE_ID(WEIR_RK_INBOUND_ANY, 1) };
	struct crule r;
	size_t i;
	int err = 0;

	if (p->inbound_mode == INBOUND_DEFAULT)
		return crules_add(out, &lo4) ?: crules_add(out, &lo6);
	if (p->inbound_mode == INBOUND_ANY)
		return crules_add(out, &any4) ?: crules_add(out, &any6);
	for (i = 0; !err && i < p->n_inbound; i++) {
		r = rule_crule(&p->inbound[i], SIDE_ALLOW, WEIR_RULE_ID(WEIR_RK_INBOUND, i));
		if (p->inbound[i].kind == RULE_CIDR_LIST)
			err = collect_list(&p->inbound[i], &r, out);
		else if (p->inbound[i].kind == RULE_CIDR)
			err = crules_add(out, &r);
	}
	return err;
}

/* Flatten the inbound rules and add them to out: entries in in4/in6, their
 * port sets after out's own (set indexes shifted to match). */
static int compile_inbound(const struct policy *p, struct compiled *out,
			   char err[COMPILE_ERR_LEN])
{
	struct weir_portset *sets;
	struct compiled in = {};
	struct crules cr = {};
	size_t i;
	int ret;

	ret = collect_inbound(p, &cr);
	if (ret) {
		snprintf(err, COMPILE_ERR_LEN, "out of memory compiling the policy");
		goto out;
	}
	ret = compile_flatten(&cr, false, &in, err);
	if (ret)
		goto out;
	sets = realloc(out->sets, (out->nsets + in.nsets + 1) * sizeof(*sets));
	if (!sets) {
		snprintf(err, COMPILE_ERR_LEN, "out of memory compiling the policy");
		ret = -ENOMEM;
		goto out;
	}
	if (in.nsets)
		memcpy(sets + out->nsets, in.sets, in.nsets * sizeof(*sets));
	for (i = 0; i < in.n4 + in.n6; i++)
		if (in.v4[i].val.allow.set)
			in.v4[i].val.allow.set += out->nsets;
	out->sets = sets;
	out->nsets += in.nsets;
	out->in4 = in.v4;
	out->in6 = in.v6;
	out->nin4 = in.n4;
	out->nin6 = in.n6;
	in.v4 = NULL;
out:
	compiled_free(&in);
	crules_free(&cr);
	return ret;
}

/* The allow rules' upload budgets (bpf/flows.bpf.h). */
static int compile_budgets(const struct policy *p, struct compiled *out, char err[COMPILE_ERR_LEN])
{
	size_t i, n = 0;

	for (i = 0; i < p->n_allow; i++)
		n += p->allow[i].upload_budget != 0;
	if (!n)
		return 0;
	out->budgets = calloc(n, sizeof(*out->budgets));
	if (!out->budgets) {
		snprintf(err, COMPILE_ERR_LEN, "out of memory compiling the policy");
		return -ENOMEM;
	}
	for (i = 0; i < p->n_allow; i++) {
		if (!p->allow[i].upload_budget)
			continue;
		out->budgets[out->nbudgets++] = (struct cbudget){
			.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, i),
			.limit = p->allow[i].upload_budget,
			.ident = policy_rule_ident(&p->allow[i]),
		};
	}
	return 0;
}

int compile_policy(const struct compile_input *in, struct compiled *out, char err[COMPILE_ERR_LEN])
{
	struct crules cr = {};
	int ret;

	ret = compile_collect(in, &cr);
	if (ret) {
		snprintf(err, COMPILE_ERR_LEN, "out of memory compiling the policy");
		crules_free(&cr);
		return ret;
	}
	ret = compile_flatten(&cr, in->policy->mode == POLICY_AUDIT, out, err);
	out->ping = in->policy->ping_allow;
	crules_free(&cr);
	if (!ret)
		ret = compile_inbound(in->policy, out, err);
	if (!ret)
		ret = compile_budgets(in->policy, out, err);
	if (!ret)
		ret = unix_compile(in->policy, &out->usock, &out->nusock, err);
	if (ret)
		compiled_free(out);
	return ret;
}

void compiled_free(struct compiled *c)
{
	free(c->v4); /* v6 points into the same allocation */
	free(c->in4); /* and in6 into this one */
	free(c->sets);
	free(c->budgets);
	free(c->usock);
	memset(c, 0, sizeof(*c));
}

static int size_check(const char *what, __u64 need, __u32 *out, char err[COMPILE_ERR_LEN])
{
	if (need > UINT32_MAX) {
		snprintf(err, COMPILE_ERR_LEN,
			 "policy needs %llu %s; the limit is %u (split the policy)",
			 (unsigned long long)need, what, UINT32_MAX);
		return -E2BIG;
	}
	*out = (__u32)need;
	return 0;
}

int compile_map_sizes(const struct compiled *c, size_t grow, struct map_sizes *out,
		      char err[COMPILE_ERR_LEN])
{
	__u64 n4 = (__u64)c->n4 + c->nin4 + grow, n6 = (__u64)c->n6 + c->nin6 + grow;
	__u64 sets = (__u64)c->nsets + 4 * (__u64)grow; /* 2 families x 2 sides */
	int ret;

	ret = size_check("trie entries per family", 2 * (n4 > n6 ? n4 : n6) + 2,
			 &out->lpm_entries, err);
	return ret ?: size_check("port sets", 2 * sets + 1, &out->portsets, err);
}

int compile_check(const struct policy *p, FILE *f, char err[COMPILE_ERR_LEN])
{
	struct compile_input in = { .policy = p };
	struct map_sizes ms;
	struct compiled c;
	int ret;

	ret = compile_policy(&in, &c, err);
	if (ret)
		return ret;
	ret = compile_map_sizes(&c, 0, &ms, err);
	if (!ret)
		fprintf(f, "compiled: %zu IPv4 prefix%s, %zu IPv6 prefix%s, %zu port set%s "
			   "(the maps are sized to fit); inbound: %zu IPv4 prefix%s, "
			   "%zu IPv6 prefix%s\n",
			c.n4, c.n4 == 1 ? "" : "es", c.n6, c.n6 == 1 ? "" : "es", c.nsets,
			c.nsets == 1 ? "" : "s", c.nin4, c.nin4 == 1 ? "" : "es", c.nin6,
			c.nin6 == 1 ? "" : "es");
	compiled_free(&c);
	return ret;
}

int read_nameservers(const char *path, struct resolved_addr **out, size_t *n)
{
	struct resolved_addr *a = NULL, *tmp;
	char line[512], addr[256];
	size_t cnt = 0;
	FILE *f;

	*out = NULL;
	*n = 0;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		struct resolved_addr r = {};
		char *pct;

		if (sscanf(line, " nameserver %255s", addr) != 1)
			continue;
		pct = strchr(addr, '%'); /* fe80::1%eth0: the zone is not ours to judge */
		if (pct)
			*pct = '\0';
		if (inet_pton(AF_INET, addr, r.addr) == 1)
			r.family = AF_INET;
		else if (inet_pton(AF_INET6, addr, r.addr) == 1)
			r.family = AF_INET6;
		else
			continue;
		tmp = realloc(a, (cnt + 1) * sizeof(*a));
		if (!tmp) {
			free(a);
			fclose(f);
			return -ENOMEM;
		}
		a = tmp;
		a[cnt++] = r;
	}
	fclose(f);
	*out = a;
	*n = cnt;
	return 0;
}
