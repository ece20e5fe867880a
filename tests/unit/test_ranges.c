// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Big IPv4 policies as intervals (user/policy/ranges.c): the blocks built
 * from flattened prefixes, searched by the BPF side's own lookup
 * (bpf/ranges.bpf.h, run here on the blocks), answer what a longest-prefix
 * match over the same prefixes answers: at random addresses, at every
 * prefix's first and last address and the one after, across blocks, and at
 * both ends of the address space.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <criterion/criterion.h>

#include "ranges.h"

static __u32 addr_of(const struct centry *e)
{
	__u32 a;

	memcpy(&a, e->addr, 4);
	return be32toh(a);
}

static struct centry entry(__u32 a, __u8 plen, __u32 id)
{
	struct centry e = { .family = AF_INET, .plen = plen };
	__u32 be;

	a &= plen ? ~0u << (32 - plen) : 0;
	be = htobe32(a);
	memcpy(e.addr, &be, 4);
	e.val.allow.inl = (struct weir_portrange){ .lo = 0, .hi = 65535, .protos = WEIR_P_TCP,
						   .rule = id };
	return e;
}

static int by_addr_plen(const void *a, const void *b)
{
	const struct centry *x = a, *y = b;
	__u32 p = addr_of(x), q = addr_of(y);

	if (p != q)
		return p < q ? -1 : 1;
	return x->plen - y->plen;
}

/* Sorted as compile_flatten() leaves them, duplicates dropped. */
static size_t sort_dedup(struct centry *v, size_t n)
{
	size_t i, m = 0;

	qsort(v, n, sizeof(*v), by_addr_plen);
	for (i = 0; i < n; i++)
		if (!m || by_addr_plen(&v[m - 1], &v[i]))
			v[m++] = v[i];
	return m;
}

/* The reference: the longest prefix containing x, by binary search per length. */
static const struct centry *lpm(const struct centry *v, size_t n, __u32 x)
{
	int plen;

	for (plen = 32; plen >= 0; plen--) {
		struct centry k = entry(x, (__u8)plen, 0);
		const struct centry *hit = bsearch(&k, v, n, sizeof(*v), by_addr_plen);

		if (hit)
			return hit;
	}
	return NULL;
}

static void agree(const struct rblocks *rb, const struct centry *v, size_t n, __u32 x)
{
	const struct centry *want = lpm(v, n, x);
	struct weir_lpm_val got;
	int found = rblocks_lookup(rb, x, &got);

	if (!want) {
		cr_assert_eq(found, 0, "%08x: found rule %u, no prefix contains it", x,
			     got.allow.inl.rule);
		return;
	}
	cr_assert_eq(found, 1, "%08x: not found, want rule %u", x, want->val.allow.inl.rule);
	cr_assert_eq(got.allow.inl.rule, want->val.allow.inl.rule, "%08x: rule %u, want %u", x,
		     got.allow.inl.rule, want->val.allow.inl.rule);
	cr_assert(!memcmp(&got, &want->val, sizeof(got)), "%08x: value differs", x);
}

Test(ranges, one_prefix_is_three_intervals)
{
	struct centry v[] = { entry(0xc0000200, 24, 1) }; /* 192.0.2.0/24 */
	struct rblocks rb;

	cr_assert_eq(rblocks_build(v, 1, &rb), 0);
	cr_assert_eq(rb.nintervals, 3);
	cr_assert_eq(rb.nblocks, 1);
	cr_assert_eq(rb.nvals, 2); /* none, and the /24's */
	agree(&rb, v, 1, 0xc00001ff);
	agree(&rb, v, 1, 0xc0000200);
	agree(&rb, v, 1, 0xc00002ff);
	agree(&rb, v, 1, 0xc0000300);
	agree(&rb, v, 1, 0);
	agree(&rb, v, 1, 0xffffffff);
	rblocks_free(&rb);
}

Test(ranges, edges_of_the_address_space)
{
	struct centry v[] = { entry(0, 0, 1), entry(0, 32, 2), entry(0xffffffff, 32, 3),
			      entry(0xfffffffe, 31, 4) };
	size_t n = sort_dedup(v, 4);
	struct rblocks rb;

	cr_assert_eq(rblocks_build(v, n, &rb), 0);
	agree(&rb, v, n, 0);
	agree(&rb, v, n, 1);
	agree(&rb, v, n, 0x80000000);
	agree(&rb, v, n, 0xfffffffd);
	agree(&rb, v, n, 0xfffffffe);
	agree(&rb, v, n, 0xffffffff);
	rblocks_free(&rb);
}

Test(ranges, equal_neighbours_merge)
{
	/* A million list entries of one rule: adjacent hosts share one interval. */
	struct centry v[256];
	struct rblocks rb;
	int i;

	for (i = 0; i < 256; i++)
		v[i] = entry(0xc6336400 + (__u32)i, 32, 7); /* 198.51.100.0 .. .255 */
	cr_assert_eq(rblocks_build(v, 256, &rb), 0);
	cr_assert_eq(rb.nintervals, 3);
	cr_assert_eq(rb.nvals, 2);
	agree(&rb, v, 256, 0xc6336480);
	agree(&rb, v, 256, 0xc6336500);
	rblocks_free(&rb);
}

/* Random nested prefixes over several blocks, every boundary probed. */
Test(ranges, random_prefixes_match_longest_prefix_lookup, .timeout = 120)
{
	size_t n = 60000, i, m;
	struct centry *v = malloc(n * sizeof(*v));
	struct rblocks rb;
	__u32 x;

	cr_assert(v);
	srandom(11);
	for (i = 0; i < n; i++) {
		/* Mostly hosts, some /8 to /31, clustered so they nest. */
		__u8 plen = random() % 4 ? 32 : (__u8)(8 + random() % 24);

		x = (__u32)(random() % 64) << 24 | (__u32)random() % (1u << 24);
		v[i] = entry(x, plen, (__u32)i + 1);
	}
	m = sort_dedup(v, n);
	cr_assert_eq(rblocks_build(v, m, &rb), 0);
	cr_assert_gt(rb.nblocks, 4, "%zu blocks: the test should cross blocks", rb.nblocks);
	cr_assert_eq(rb.n, 1 + rb.nblocks + (rb.nvals + WEIR_RB_VALS - 1) / WEIR_RB_VALS);
	for (i = 0; i < m; i++) {
		__u32 a = addr_of(&v[i]), last = a + (__u32)((1ULL << (32 - v[i].plen)) - 1);

		agree(&rb, v, m, a);
		agree(&rb, v, m, last);
		agree(&rb, v, m, last + 1);
		if (a)
			agree(&rb, v, m, a - 1);
	}
	for (i = 0; i < 200000; i++)
		agree(&rb, v, m, (__u32)random() << 1 ^ (__u32)random());
	rblocks_free(&rb);
	free(v);
}

/*
 * A value that is one rule's range of every port and protocol on one side
 * is written into the interval's word, not stored: what the lookup returns
 * is still the value itself, on either side; every other kind of value
 * (a protocol, a port, a flag, both sides) is stored as before.
 */
Test(ranges, one_rule_values_live_in_the_interval, .timeout = 60)
{
	size_t n = 40000, i, m, stored = 0;
	struct centry *v = malloc(n * sizeof(*v));
	struct rblocks rb;
	__u32 x;

	cr_assert(v);
	srandom(12);
	for (i = 0; i < n; i++) {
		__u8 plen = random() % 4 ? 32 : (__u8)(8 + random() % 24);
		struct weir_portrange any = { .lo = 0, .hi = 65535, .protos = WEIR_P_ANY };

		x = (__u32)(random() % 64) << 24 | (__u32)random() % (1u << 24);
		v[i] = entry(x, plen, 0);
		memset(&v[i].val, 0, sizeof(v[i].val));
		switch (i % 6) {
		case 0: /* allow[i]: one word */
		case 1:
			any.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, i);
			v[i].val.allow.inl = any;
			break;
		case 2: /* deny[i]: one word */
			any.rule = WEIR_RULE_ID(WEIR_RK_DENY, i);
			v[i].val.deny.inl = any;
			break;
		case 3: /* tcp only: stored */
			any.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, i);
			any.protos = WEIR_P_TCP;
			v[i].val.allow.inl = any;
			break;
		case 4: /* a hard deny (the metadata's), port 443 only: stored */
			any.rule = WEIR_RULE_ID(WEIR_RK_METADATA, i % 3);
			any.flags = WEIR_RF_HARD;
			v[i].val.deny.inl = any;
			any.lo = any.hi = 443;
			any.flags = 0;
			any.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, i);
			v[i].val.allow.inl = any;
			break;
		default: /* both sides: stored */
			any.rule = WEIR_RULE_ID(WEIR_RK_ALLOW, i);
			v[i].val.allow.inl = any;
			any.rule = WEIR_RULE_ID(WEIR_RK_DENY, i);
			v[i].val.deny.inl = any;
			break;
		}
	}
	m = sort_dedup(v, n);
	for (i = 0; i < m; i++)
		stored += v[i].val.allow.inl.protos != WEIR_P_ANY ||
			  v[i].val.allow.inl.hi != 65535 ||
			  (v[i].val.allow.inl.rule && v[i].val.deny.inl.rule);
	cr_assert_eq(rblocks_build(v, m, &rb), 0);
	cr_assert_gt(rb.nblocks, 4, "%zu blocks: the test should cross blocks", rb.nblocks);
	cr_assert_leq(rb.nvals, 1 + stored, "%zu values stored for %zu entries that need one",
		      rb.nvals, stored);
	cr_assert_gt(rb.nvals, stored / 2);
	for (i = 0; i < m; i++) {
		__u32 a = addr_of(&v[i]), last = a + (__u32)((1ULL << (32 - v[i].plen)) - 1);

		agree(&rb, v, m, a);
		agree(&rb, v, m, last);
		agree(&rb, v, m, last + 1);
	}
	for (i = 0; i < 100000; i++)
		agree(&rb, v, m, (__u32)random() << 1 ^ (__u32)random());
	rblocks_free(&rb);
	free(v);
}

Test(ranges, refuses_unsorted_or_overlapping_entries)
{
	struct centry unsorted[] = { entry(0xc0000300, 24, 1), entry(0xc0000200, 24, 2) };
	struct centry family[] = { entry(0xc0000200, 24, 1) };
	struct rblocks rb;

	cr_assert_eq(rblocks_build(unsorted, 2, &rb), -EINVAL);
	family[0].family = AF_INET6;
	cr_assert_eq(rblocks_build(family, 1, &rb), -EINVAL);
}
