// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Flattened IPv4 prefixes to address intervals (user/policy/ranges.h).
 *
 * The entries nest (sorted by address then length, a cover comes before
 * what it covers), and each value already holds its covers' constraints.
 * One sweep with a stack of open prefixes turns them into disjoint
 * intervals: at a prefix's first address its value starts; at its end the
 * value of the prefix around it (or none) resumes. Equal neighbours merge.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ranges.h"

struct sweep {
	__u32 *start, *val;
	size_t n, cap;
};

/* An interval from s on with value v: replaces one of zero length at s,
 * merges into the previous one when the value is the same. */
static void emit(struct sweep *w, __u32 s, __u32 v)
{
	if (w->n && w->start[w->n - 1] == s) {
		w->val[w->n - 1] = v;
		if (w->n >= 2 && w->val[w->n - 2] == v)
			w->n--;
		return;
	}
	if (w->n && w->val[w->n - 1] == v)
		return;
	w->start[w->n] = s;
	w->val[w->n++] = v;
}

/* Values deduplicated: a million list entries of one rule share one. */
struct vals {
	struct weir_lpm_val *v;
	size_t n, cap;
	__u32 *slots; /* open addressing: index + 1, 0 empty */
	size_t nslots;
};

static __u64 val_hash(const struct weir_lpm_val *v)
{
	__u64 w[4], h = 0x9e3779b97f4a7c15ULL;
	int i;

	memcpy(w, v, sizeof(w));
	for (i = 0; i < 4; i++) {
		h ^= w[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	return h;
}

static int vals_grow(struct vals *t, size_t want)
{
	size_t i, h, nslots = t->nslots ? 2 * t->nslots : 1024;
	__u32 *slots;

	while (nslots < 2 * want)
		nslots *= 2;
	slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	hint_huge(slots, nslots * sizeof(*slots)); /* calloc() mapped it fresh */
	for (i = 0; i < t->n; i++) {
		for (h = val_hash(&t->v[i]) & (nslots - 1); slots[h]; h = (h + 1) & (nslots - 1))
			;
		slots[h] = (__u32)i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

static int vals_put(struct vals *t, const struct weir_lpm_val *v, __u32 *idx)
{
	struct weir_lpm_val *more;
	size_t h;

	if (2 * (t->n + 1) > t->nslots && vals_grow(t, t->n + 1))
		return -ENOMEM;
	for (h = val_hash(v) & (t->nslots - 1); t->slots[h]; h = (h + 1) & (t->nslots - 1)) {
		if (!memcmp(&t->v[t->slots[h] - 1], v, sizeof(*v))) {
			*idx = t->slots[h] - 1;
			return 0;
		}
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		more = realloc(t->v, t->cap * sizeof(*more));
		if (!more)
			return -ENOMEM;
		t->v = more;
	}
	t->v[t->n] = *v;
	t->slots[h] = (__u32)++t->n;
	*idx = (__u32)t->n - 1;
	return 0;
}

/*
 * The interval word that stands for value v when v is one rule's range of
 * every port and protocol on one side and nothing on the other (what each
 * inline `- ip:` rule of a big list has: no value stored, <weir/egress.h>);
 * 0 when v is not such a value.
 */
static __u32 one_rule_word(const struct weir_lpm_val *v)
{
	static const struct weir_match none;
	const struct weir_match *m, *other;
	bool deny = v->deny.inl.rule != 0;

	m = deny ? &v->deny : &v->allow;
	other = deny ? &v->allow : &v->deny;
	if (memcmp(other, &none, sizeof(none)) || m->set || m->inl.lo || m->inl.hi != 65535 ||
	    m->inl.protos != WEIR_P_ANY || m->inl.flags || m->inl.__pad || !m->inl.rule ||
	    m->inl.rule > WEIR_RB_RULE)
		return 0;
	return WEIR_RB_ONE | (deny ? WEIR_RB_DENY : 0) | m->inl.rule;
}

struct open_pfx {
	__u64 end; /* first address past it */
	__u32 val;
};

/* Close the open prefixes that end at or before s (all of them: s = 2^32). */
static void close_to(struct sweep *w, struct open_pfx *st, int *sp, __u64 s)
{
	while (*sp && st[*sp - 1].end <= s) {
		__u64 end = st[--*sp].end;

		if (end < (1ULL << 32))
			emit(w, (__u32)end, *sp ? st[*sp - 1].val : 0);
	}
}

static int sweep(const struct centry *v4, size_t n, struct sweep *w, struct vals *t)
{
	static const struct weir_lpm_val none;
	struct open_pfx st[34];
	__u64 prev = 0, s;
	size_t i;
	__u32 a, vi;
	int sp = 0, err;

	err = vals_put(t, &none, &vi); /* index 0: no match */
	if (err)
		return err;
	emit(w, 0, 0);
	for (i = 0; i < n; i++) {
		if (v4[i].family != AF_INET || v4[i].plen > 32)
			return -EINVAL;
		memcpy(&a, v4[i].addr, 4);
		s = be32toh(a);
		if (s < prev)
			return -EINVAL; /* not sorted */
		prev = s;
		close_to(w, st, &sp, s);
		if (sp && s + (1ULL << (32 - v4[i].plen)) > st[sp - 1].end)
			return -EINVAL; /* overlaps the open prefix without nesting in it */
		/* A value equal to "none" is judged as none: no rule names it.
		 * A list's entries mostly have their neighbour's value. */
		if (!i || memcmp(&v4[i].val, &v4[i - 1].val, sizeof(v4[i].val))) {
			vi = one_rule_word(&v4[i].val);
			err = vi ? 0 : vals_put(t, &v4[i].val, &vi);
			if (err)
				return err;
		}
		emit(w, (__u32)s, vi);
		st[sp].end = s + (1ULL << (32 - v4[i].plen));
		st[sp++].val = vi;
	}
	close_to(w, st, &sp, 1ULL << 32);
	return 0;
}

static size_t div_up(size_t a, size_t b)
{
	return (a + b - 1) / b;
}

/* The array's elements from the intervals and values (<weir/egress.h>). */
static int layout(const struct sweep *w, const struct vals *t, struct rblocks *out)
{
	size_t nb = div_up(w->n, WEIR_RB_N), nvb = div_up(t->n, WEIR_RB_VALS), b, i, k;

	if (nb > WEIR_RB_N || t->n > WEIR_RB_RULE)
		return -E2BIG;
	out->n = 1 + nb + nvb;
	out->b = malloc(out->n * sizeof(*out->b));
	if (!out->b)
		return -ENOMEM;
	hint_huge(out->b, out->n * sizeof(*out->b));
	out->nblocks = nb;
	out->nvals = t->n;
	out->nintervals = w->n;
	memset(out->b[0].w, 0xff, sizeof(out->b[0].w));
	for (b = 0; b < nb; b++) {
		struct weir_rblock *d = &out->b[1 + b];

		out->b[0].w[b] = w->start[b * WEIR_RB_N];
		for (i = 0; i < WEIR_RB_N; i++) {
			/* Past the last interval: copies of it (see weir_rsearch). */
			k = b * WEIR_RB_N + i < w->n ? b * WEIR_RB_N + i : w->n - 1;
			d->w[i] = w->start[k];
			d->w[WEIR_RB_N + i] = w->val[k];
		}
	}
	out->b[0].w[WEIR_RB_N] = (__u32)nb;
	out->b[0].w[WEIR_RB_N + 1] = (__u32)(1 + nb);
	memset(out->b + 1 + nb, 0, nvb * sizeof(*out->b));
	memcpy(out->b + 1 + nb, t->v, t->n * sizeof(*t->v));
	return 0;
}

int rblocks_build(const struct centry *v4, size_t n, struct rblocks *out)
{
	struct sweep w = {};
	struct vals t = {};
	int err = -ENOMEM;

	memset(out, 0, sizeof(*out));
	/* Room for a value per prefix (an inline rule each has its own) from
	 * the start: a million of them are not rehashed and copied as the
	 * table doubles. Pages not needed are never touched. */
	t.cap = n + 1;
	t.v = malloc(t.cap * sizeof(*t.v));
	if (!t.v || vals_grow(&t, n < 512 ? 512 : n + 1)) {
		free(t.v);
		return -ENOMEM;
	}
	hint_huge(t.v, t.cap * sizeof(*t.v));
	/* Each prefix opens one interval and closes at most one. */
	w.cap = 2 * n + 1;
	w.start = malloc(w.cap * sizeof(*w.start));
	w.val = malloc(w.cap * sizeof(*w.val));
	if (w.start && w.val) {
		hint_huge(w.start, w.cap * sizeof(*w.start));
		hint_huge(w.val, w.cap * sizeof(*w.val));
		err = sweep(v4, n, &w, &t);
	}
	if (!err)
		err = layout(&w, &t, out);
	free(w.start);
	free(w.val);
	free(t.v);
	free(t.slots);
	return err;
}

void rblocks_free(struct rblocks *r)
{
	free(r->b);
	memset(r, 0, sizeof(*r));
}

/* --- the BPF lookup, run here on the blocks (for tests) -------------------- */

struct shim_outer {
	int unused;
};
static struct shim_outer weir_ranges4;
static __thread const struct rblocks *shim_r;

static void *shim_lookup(const void *map, const __u32 *key)
{
	if (map == &weir_ranges4)
		return (void *)shim_r;
	return *key < shim_r->n ? (void *)&shim_r->b[*key] : NULL;
}

#define bpf_map_lookup_elem(map, key) shim_lookup(map, key)
#define bpf_ntohl(x) ntohl(x)
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#include "../../bpf/ranges.bpf.h"
#pragma GCC diagnostic pop

int rblocks_lookup(const struct rblocks *r, __u32 x, struct weir_lpm_val *out)
{
	shim_r = r;
	return weir_range4_find(0, htonl(x), out);
}
