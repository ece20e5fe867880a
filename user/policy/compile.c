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
	{ .family = AF_INET, .addr = { 169, 254, 170, 23 } }, /* AWS EKS Pod Identity agent */
	{ .family = AF_INET, .addr = { 100, 100, 100, 200 } }, /* Alibaba Cloud */
	{ .family = AF_INET, .addr = { 168, 63, 129, 16 } }, /* Azure WireServer (GitHub's runners) */
	{ .family = AF_INET6, .addr = { 0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54 } }, /* AWS fd00:ec2::254 */
	{ .family = AF_INET6, .addr = { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23 } }, /* EKS Pod Identity fd00:ec2::23 */
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

/* A cidr_list rule: one crule for all its entries (they share the rule's
 * ports and protocols), read where the list holds them. */
static int collect_list(const struct policy_rule *pr, struct crule *r, struct crules *out)
{
	if (!pr->list->n)
		return 0;
	r->pfx = pr->list->pfx;
	r->n_pfx = pr->list->n;
	return crules_add(out, r);
}

/*
 * How many rules from rules[i] on make a run: prefixes in a row with
 * every port, no budget and the protocols of the first. Their constraints
 * differ only in prefix and rule id, so one crule stands for them all (a
 * million inline rules are not 64 MB of crules, each read again, out of
 * order, as the sorted prefixes name them).
 */
static size_t run_len(const struct policy_rule *rules, size_t n, size_t i)
{
	size_t j;

	for (j = i; j < n && rules[j].kind == RULE_CIDR && !rules[j].n_ports &&
		    !rules[j].upload_budget && rules[j].protos == rules[i].protos;
	     j++)
		;
	return j - i;
}

/* A rule list of the policy (allow, deny, --allow or inbound) into
 * constraints. */
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
			j = run_len(rules, n, i);
			if (j > 1) {
				r.run = &rules[i];
				r.n_pfx = j;
				i += j - 1;
			}
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

/* Bit k when prefix FAMILY/PLEN/ADDR is metadata address k itself. */
static unsigned int metadata_bit(__u8 family, __u8 plen, const __u8 *addr)
{
	size_t k;

	if (plen != addr_len(family) * 8)
		return 0;
	for (k = 0; k < compile_n_metadata_addrs; k++)
		if (compile_metadata_addrs[k].family == family &&
		    !memcmp(compile_metadata_addrs[k].addr, addr, addr_len(family)))
			return 1u << k;
	return 0;
}

/* The metadata addresses allow rules name exactly (not merely cover), as
 * bits: one pass over the rules and their lists' entries, not one for
 * each address. */
static unsigned int names_exactly(const struct policy_rule *rules, size_t n)
{
	unsigned int m = 0;
	size_t i, j;

	for (i = 0; i < n; i++) {
		const struct policy_rule *r = &rules[i];

		if (r->kind == RULE_CIDR)
			m |= metadata_bit((__u8)r->family, r->prefixlen, r->addr);
		for (j = 0; r->kind == RULE_CIDR_LIST && j < r->list->n; j++)
			m |= metadata_bit(r->list->pfx[j].family, r->list->pfx[j].plen,
					  r->list->pfx[j].addr);
	}
	return m;
}

static int collect_builtin(const struct compile_input *in, struct crules *out)
{
	const struct policy *p = in->policy;
	unsigned int named = names_exactly(p->allow, p->n_allow) | names_exactly(p->args, p->n_args);
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

		if (named & (1u << i))
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
	size_t need = p->n_allow + p->n_deny + p->n_args + 8;
	struct crule *r;
	int err;

	/* A crule a rule (names may add more): a million inline rules are
	 * not copied over and over as the array doubles. */
	if (need > out->cap) {
		r = realloc(out->r, need * sizeof(*r));
		if (!r)
			return -ENOMEM;
		hint_huge(r + out->n, (need - out->n) * sizeof(*r));
		out->r = r;
		out->cap = need;
	}

	err = collect_rules(in, p->allow, p->n_allow, SIDE_ALLOW, WEIR_RK_ALLOW, out);
	err = err ?: collect_rules(in, p->deny, p->n_deny, SIDE_DENY, WEIR_RK_DENY, out);
	err = err ?: collect_rules(in, p->args, p->n_args, SIDE_ALLOW, WEIR_RK_ARG, out);
	return err ?: collect_builtin(in, out);
}

/* --- flattening ----------------------------------------------------------- */

/*
 * A million-prefix policy's scratch arrays are tens of MB, and first
 * touching fresh memory was most of its compile (the kernel zeroes each
 * page, and in a virtual machine the host may have to back it first: up
 * to 2 ms per MB here). So the flattening keeps little per prefix: a
 * cidr_list rule stays one crule (its entries are read where they are),
 * IPv4 prefixes are sorted as 8-byte keys, and the covers are a stack,
 * not a node per prefix. Big scratch arrays are mapped with transparent
 * huge pages asked for: a fault per 2 MiB. The length is kept in front.
 */
#define BIG_HDR 64
#define BIG_MIN (4UL << 20)
#define HUGE_SZ (2UL << 20)

static void *big_alloc(size_t n)
{
	size_t len = n + BIG_HDR;
	char *p;

	if (len < BIG_MIN) {
		p = malloc(len);
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

/* How many constraints a crule stands for (a list or a run: one per entry). */
static size_t crule_count(const struct crule *c)
{
	return c->pfx || c->run ? c->n_pfx : 1;
}

/* Entry i of crule c: its family, length and address. */
static void crule_entry(const struct crule *c, size_t i, __u8 *family, __u8 *plen,
			const __u8 **addr)
{
	if (c->pfx) {
		*family = c->pfx[i].family;
		*plen = c->pfx[i].plen;
		*addr = c->pfx[i].addr;
	} else if (c->run) {
		*family = (__u8)c->run[i].family;
		*plen = c->run[i].prefixlen;
		*addr = c->run[i].addr;
	} else {
		*family = c->family;
		*plen = c->plen;
		*addr = c->addr;
	}
}

/* Network-order bytes compare like big-endian numbers: two words, not a
 * byte loop. */
static __u64 addr_word(const __u8 *a, int i)
{
	__u64 w;

	memcpy(&w, a + 8 * i, 8);
	return be64toh(w);
}

/*
 * The order the flattening needs: by family, address, then prefix length
 * (a cover comes before what it covers), equal prefixes in collection
 * order, which is rule id order (allow, deny, --allow, built-in), so the
 * lowest rule id is reported. IPv4: one 8-byte key per constraint,
 * address << 32 | length << 26 | its number in collection order (26 bits:
 * 67 million prefixes; the interval layout holds as many). IPv6: the same
 * as three words.
 */
#define K4_CSHIFT 26
#define K4_CMAX (1u << K4_CSHIFT)

static __u64 key4(const __u8 *addr, __u8 plen, __u32 c)
{
	__u32 a;

	memcpy(&a, addr, 4);
	return (__u64)be32toh(a) << 32 | (__u64)plen << K4_CSHIFT | c;
}

struct key6 {
	__u64 hi, lo;
	__u32 plen;
	__u32 c;
};

static bool key4_le(const void *x, const void *y)
{
	return *(const __u64 *)x <= *(const __u64 *)y;
}

static __u8 key4_byte(const void *k, int d)
{
	return (__u8)(*(const __u64 *)k >> (8 * d));
}

static bool key6_le(const void *a, const void *b)
{
	const struct key6 *x = a, *y = b;

	if (x->hi != y->hi)
		return x->hi < y->hi;
	if (x->lo != y->lo)
		return x->lo < y->lo;
	if (x->plen != y->plen)
		return x->plen < y->plen;
	return x->c <= y->c;
}

static __u8 key6_byte(const void *p, int d)
{
	const struct key6 *k = p;

	if (d == 0)
		return (__u8)k->plen;
	if (d <= 8)
		return (__u8)(k->lo >> (8 * (d - 1)));
	return (__u8)(k->hi >> (8 * (d - 9)));
}

/*
 * LSD radix sort of n keys of size bytes at a, by the digits byte(k, 0)
 * (least significant) to byte(k, digits - 1), stable: equal prefixes stay
 * in collection order. A byte equal in every key costs no pass (a list of
 * hosts of one rule sorts in four); already sorted input (published lists
 * mostly are) costs one look. Inlined into each caller with its key's
 * functions, so those are no calls in the loops.
 */
static inline __attribute__((always_inline)) int
radix_sort(void *a, size_t n, size_t size, int digits, bool (*le)(const void *, const void *),
	   __u8 (*byte)(const void *, int))
{
	size_t (*cnt)[256], i, pos, sum;
	char *b, *t, *src = a;
	int d;

	for (i = 1; i < n && le(src + (i - 1) * size, src + i * size); i++)
		;
	if (i >= n)
		return 0;
	cnt = calloc((size_t)digits, sizeof(*cnt));
	b = big_alloc(n * size);
	if (!cnt || !b) {
		free(cnt);
		big_free(b);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		for (d = 0; d < digits; d++)
			cnt[d][byte(src + i * size, d)]++;
	for (d = 0; d < digits; d++) {
		if (cnt[d][byte(src, d)] == n)
			continue; /* every key has this byte */
		for (i = 0, sum = 0; i < 256; i++) {
			pos = cnt[d][i];
			cnt[d][i] = sum;
			sum += pos;
		}
		for (i = 0; i < n; i++)
			memcpy(b + size * cnt[d][byte(src + i * size, d)]++, src + i * size, size);
		t = src;
		src = b;
		b = t;
	}
	if (src != a) {
		memcpy(a, src, n * size);
		b = src;
	}
	big_free(b);
	free(cnt);
	return 0;
}

static int sort_keys4(__u64 *a, size_t n)
{
	return radix_sort(a, n, sizeof(*a), 8, key4_le, key4_byte);
}

static int sort_keys6(struct key6 *a, size_t n)
{
	return radix_sort(a, n, sizeof(*a), 17, key6_le, key6_byte);
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

/* Constraint c's ranges (rule: its rule id) added to the set of its side. */
static void crule_ranges(const struct crule *c, __u32 rule, struct rangeset rs[2])
{
	struct weir_portrange r = { .lo = 0, .hi = 65535, .protos = c->protos,
				    .flags = c->flags, .rule = rule };
	size_t j;

	if (!c->n_ports) {
		rangeset_add(&rs[c->side], &r);
		return;
	}
	for (j = 0; j < c->n_ports; j++) {
		r.lo = c->ports[j].lo;
		r.hi = c->ports[j].hi;
		rangeset_add(&rs[c->side], &r);
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
	struct weir_portset s;

	memset(m, 0, sizeof(*m));
	if (rs->n <= 1) {
		if (rs->n)
			m->inl = rs->r[0];
		return 0;
	}
	memset(&s, 0, sizeof(s)); /* hashed and compared whole */
	s.n = rs->n;
	memcpy(s.r, rs->r, rs->n * sizeof(s.r[0]));
	return setidx_put(si, &s, &m->set);
}

/* A distinct prefix: its address, length, and its constraints' crules. */
struct pfx {
	__u8 family, plen;
	__u8 addr[16];
};

static bool covers(const struct pfx *outer, const struct pfx *inner)
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

/*
 * The open covers, outermost at the bottom, each with its own ranges
 * (deduplicated once: a prefix named by 400 rules is one range to what it
 * covers) in a pool that grows and shrinks with the stack.
 */
#define STACK_MAX 130

struct cover {
	struct pfx p;
	size_t off[2];
	__u8 n[2];
	bool overflow[2];
};

struct flat {
	const struct crules *in;
	__u32 *first; /* first[c]: the number of crule c's first constraint; [in->n]: all */
	struct setidx si;
	struct cover st[STACK_MAX];
	int depth;
	struct weir_portrange pool[STACK_MAX * 2 * WEIR_PORTSET_MAX];
	size_t npool;
	struct centry *out;
	size_t nout;
	char *err;
};

static void format_prefix(const struct pfx *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->plen);
}

/* The crule of constraint number k, and in *rule its rule id. */
static const struct crule *con(const struct flat *f, __u32 k, __u32 *rule)
{
	size_t lo = 0, hi = f->in->n, mid;
	const struct crule *c;

	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (f->first[mid] <= k)
			lo = mid;
		else
			hi = mid;
	}
	c = &f->in->r[lo];
	*rule = c->run ? c->rule + (k - f->first[lo]) : c->rule;
	return c;
}

/* Most of a big list: a host no other prefix covers, named by one rule
 * without ports. Its value is that rule's one range (flat_one() would
 * find the same, at ten times the work). */
static int flat_host(struct flat *f, const struct pfx *p, const struct crule *c, __u32 rule)
{
	struct centry *e = &f->out[f->nout++];
	struct weir_match *m = c->side == SIDE_DENY ? &e->val.deny : &e->val.allow;

	e->family = p->family;
	e->plen = p->plen;
	memcpy(e->addr, p->addr, sizeof(e->addr));
	memset(&e->val, 0, sizeof(e->val));
	m->inl = (struct weir_portrange){ .lo = 0, .hi = 65535, .protos = c->protos,
					  .flags = c->flags, .rule = rule };
	return 0;
}

/*
 * One distinct prefix P, named by the constraints cs[0..n) (in rule order):
 * its entry, its own ranges then each cover's, most specific first (the
 * first match decides which rule an event names).
 */
static int flat_one(struct flat *f, const struct pfx *p, const __u32 *cs, size_t n)
{
	struct rangeset own[2], all[2]; /* not zeroed: 1.2 KB a prefix */
	const struct crule *c;
	struct centry *e;
	char pfx[64];
	size_t i, k;
	int side, d, ret;
	__u32 rule;

	for (side = 0; side < 2; side++) {
		own[side].n = 0;
		own[side].overflow = false;
	}

	while (f->depth && !covers(&f->st[f->depth - 1].p, p)) {
		f->depth--;
		f->npool = f->st[f->depth].off[0];
	}
	c = con(f, cs[0], &rule);
	if (n == 1 && !f->depth && !c->n_ports && p->plen == (p->family == AF_INET ? 32 : 128))
		return flat_host(f, p, c, rule);
	for (i = 0; i < n; i++) {
		c = con(f, cs[i], &rule);
		crule_ranges(c, rule, own);
	}
	for (side = 0; side < 2; side++) {
		all[side].n = own[side].n;
		all[side].overflow = own[side].overflow;
		memcpy(all[side].r, own[side].r, own[side].n * sizeof(own[side].r[0]));
		for (d = f->depth - 1; d >= 0; d--) {
			const struct cover *o = &f->st[d];

			if (o->overflow[side])
				all[side].overflow = true;
			for (k = 0; k < o->n[side]; k++)
				rangeset_add(&all[side], &f->pool[o->off[side] + k]);
		}
	}
	if (all[SIDE_ALLOW].overflow || all[SIDE_DENY].overflow) {
		format_prefix(p, pfx, sizeof(pfx));
		snprintf(f->err, COMPILE_ERR_LEN,
			 "more than %d distinct port ranges apply to %s (counting the rules whose "
			 "prefixes cover it); merge some port lists",
			 WEIR_PORTSET_MAX, pfx);
		return -E2BIG;
	}
	e = &f->out[f->nout++];
	e->family = p->family;
	e->plen = p->plen;
	memcpy(e->addr, p->addr, sizeof(e->addr));
	ret = side_value(&all[SIDE_DENY], &f->si, &e->val.deny);
	ret = ret ?: side_value(&all[SIDE_ALLOW], &f->si, &e->val.allow);
	if (ret || p->plen == (p->family == AF_INET ? 32 : 128))
		return ret; /* a full-length prefix covers nothing else */
	if (f->depth == STACK_MAX)
		return -EINVAL; /* cannot happen: 129 lengths */
	f->st[f->depth] = (struct cover){ .p = *p };
	for (side = 0; side < 2; side++) {
		f->st[f->depth].off[side] = f->npool;
		f->st[f->depth].n[side] = (__u8)own[side].n;
		f->st[f->depth].overflow[side] = own[side].overflow;
		memcpy(&f->pool[f->npool], own[side].r, own[side].n * sizeof(own[side].r[0]));
		f->npool += own[side].n;
	}
	f->depth++;
	return 0;
}

/* The sorted IPv4 keys, each run of equal prefixes one entry. */
static int flat_v4(struct flat *f, const __u64 *k, size_t n)
{
	const __u64 pmask = ~(__u64)(K4_CMAX - 1);
	__u32 cs[64], *more = NULL, *c = cs;
	size_t i = 0, j, m, cap = 64;
	struct pfx p = { .family = AF_INET };
	__u32 a;
	int ret = 0;

	while (!ret && i < n) {
		for (j = i + 1; j < n && (k[j] & pmask) == (k[i] & pmask); j++)
			;
		if (j - i > cap) {
			cap = j - i;
			free(more);
			c = more = malloc(cap * sizeof(*more));
			if (!more)
				return -ENOMEM;
		}
		for (m = i; m < j; m++)
			c[m - i] = (__u32)(k[m] & (K4_CMAX - 1));
		a = htobe32((__u32)(k[i] >> 32));
		memcpy(p.addr, &a, 4);
		p.plen = (__u8)((k[i] >> K4_CSHIFT) & 0x3f);
		ret = flat_one(f, &p, c, j - i);
		i = j;
	}
	free(more);
	return ret;
}

static int flat_v6(struct flat *f, const struct key6 *k, size_t n)
{
	__u32 cs[64], *more = NULL, *c = cs;
	size_t i = 0, j, m, cap = 64;
	struct pfx p = { .family = AF_INET6 };
	__u64 w;
	int ret = 0;

	while (!ret && i < n) {
		for (j = i + 1; j < n && k[j].hi == k[i].hi && k[j].lo == k[i].lo &&
				k[j].plen == k[i].plen;
		     j++)
			;
		if (j - i > cap) {
			cap = j - i;
			free(more);
			c = more = malloc(cap * sizeof(*more));
			if (!more)
				return -ENOMEM;
		}
		for (m = i; m < j; m++)
			c[m - i] = k[m].c;
		w = htobe64(k[i].hi);
		memcpy(p.addr, &w, 8);
		w = htobe64(k[i].lo);
		memcpy(p.addr + 8, &w, 8);
		p.plen = (__u8)k[i].plen;
		ret = flat_one(f, &p, c, j - i);
		i = j;
	}
	free(more);
	return ret;
}

/* The sort keys of every constraint, per family, numbered in collection
 * order; first[c] the number of crule c's first one. */
static int make_keys(const struct crules *in, __u32 *first, __u64 **k4, size_t *n4,
		     struct key6 **k6, size_t *n6)
{
	size_t c, i, a = 0, b = 0, cnt;
	const __u8 *addr;
	__u8 fam, plen;
	__u32 k = 0;

	*n4 = *n6 = 0;
	for (c = 0; c < in->n; c++) {
		cnt = crule_count(&in->r[c]);
		for (i = 0; i < cnt; i++) {
			crule_entry(&in->r[c], i, &fam, &plen, &addr);
			*(fam == AF_INET ? n4 : n6) += 1;
		}
	}
	if (*n4 + *n6 >= K4_CMAX)
		return -E2BIG;
	*k4 = big_alloc((*n4 ?: 1) * sizeof(**k4));
	*k6 = big_alloc((*n6 ?: 1) * sizeof(**k6));
	if (!*k4 || !*k6)
		return -ENOMEM;
	for (c = 0; c < in->n; c++) {
		cnt = crule_count(&in->r[c]);
		first[c] = k;
		for (i = 0; i < cnt; i++, k++) {
			crule_entry(&in->r[c], i, &fam, &plen, &addr);
			if (fam == AF_INET) {
				(*k4)[a++] = key4(addr, plen, k);
				continue;
			}
			(*k6)[b++] = (struct key6){ .hi = addr_word(addr, 0),
						    .lo = addr_word(addr, 1),
						    .plen = plen, .c = k };
		}
	}
	first[in->n] = k;
	return 0;
}

int compile_flatten(const struct crules *in, bool audit, struct compiled *out,
		    char err[COMPILE_ERR_LEN])
{
	struct flat *f = calloc(1, sizeof(*f));
	struct key6 *k6 = NULL;
	__u64 *k4 = NULL;
	size_t n4 = 0, n6 = 0;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	out->audit = audit;
	if (!f)
		goto fail;
	f->in = in;
	f->err = err;
	f->first = malloc((in->n + 1) * sizeof(*f->first));
	if (!f->first)
		goto fail;
	ret = make_keys(in, f->first, &k4, &n4, &k6, &n6);
	if (ret == -E2BIG)
		snprintf(err, COMPILE_ERR_LEN,
			 "policy has %zu prefixes; the limit is %u (split it)", n4 + n6,
			 K4_CMAX - 1);
	if (ret)
		goto fail;
	ret = -ENOMEM;
	if (sort_keys4(k4, n4) || sort_keys6(k6, n6))
		goto fail;
	/* At most an entry per constraint; pages past the distinct prefixes
	 * are never touched. */
	f->out = malloc((n4 + n6 ?: 1) * sizeof(*f->out));
	if (!f->out)
		goto fail;
	hint_huge(f->out, (n4 + n6) * sizeof(*f->out));
	ret = flat_v4(f, k4, n4);
	out->n4 = f->nout;
	f->depth = 0;
	f->npool = 0;
	ret = ret ?: flat_v6(f, k6, n6);
	if (ret)
		goto fail;
	out->v4 = f->out;
	out->v6 = f->out + out->n4;
	out->n6 = f->nout - out->n4;
	out->sets = f->si.sets;
	out->nsets = f->si.n;
	free(f->si.slots);
	free(f->first);
	free(f);
	big_free(k4);
	big_free(k6);
	return 0;
fail:
	if (ret == -ENOMEM)
		snprintf(err, COMPILE_ERR_LEN, "out of memory compiling the policy");
	if (f) {
		free(f->si.sets);
		free(f->si.slots);
		free(f->out);
		free(f->first);
	}
	free(f);
	big_free(k4);
	big_free(k6);
	memset(out, 0, sizeof(*out));
	out->audit = audit;
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
	const struct compile_input none = { .policy = p }; /* inbound rules name no names */

	if (p->inbound_mode == INBOUND_DEFAULT)
		return crules_add(out, &lo4) ?: crules_add(out, &lo6);
	if (p->inbound_mode == INBOUND_ANY)
		return crules_add(out, &any4) ?: crules_add(out, &any6);
	return collect_rules(&none, p->inbound, p->n_inbound, SIDE_ALLOW, WEIR_RK_INBOUND, out);
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
