// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include "egress.h"
#include "learn.h"
#include "log.h"

/* One name -> address pair. */
struct pair {
	__u32 name_id;
	__u8 family;
	__u8 addr[16];
	struct weir_portrange r[WEIR_LEARN_RANGES];
	__u32 nr;
	__u64 expires_ns; /* CLOCK_BOOTTIME, as the BPF side compares */
	bool written; /* the map took its last write: unchanged() may skip the next */
};

/* An address seen in an answer weir relayed but learned nothing from. */
struct seen {
	__u32 name_id;
	__s32 next; /* the next in its hash bucket, -1: none */
	__u8 family;
	__u8 addr[16];
};

struct learn {
	struct egress *eg;
	struct learn_opts o;
	pthread_mutex_t mu;
	struct pair *p;
	size_t n, cap;
	char **names; /* id - 1 -> name */
	size_t nnames;
	struct seen *seen; /* a ring of LEARN_SEEN_MAX */
	__s32 *seen_head; /* LEARN_SEEN_BUCKETS chains into seen[]: each event asks */
	size_t nseen, seen_next;
	bool said_names_full, said_pairs_full; /* a full table is said once */
	bool said_map_full; /* the kernel map, shared with other attachments */
	__u64 said_per_name_ns; /* when the per-name cap was last said */
};

static __u64 boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int learn_new(struct egress *eg, const struct learn_opts *o, struct learn **out)
{
	struct learn *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->eg = eg;
	l->o = *o;
	if (!l->o.max_names)
		l->o.max_names = LEARN_MAX_NAMES;
	if (!l->o.max_pairs)
		l->o.max_pairs = LEARN_MAX_PAIRS;
	pthread_mutex_init(&l->mu, NULL);
	*out = l;
	return 0;
}

#define LEARN_SEEN_MAX 4096
#define LEARN_SEEN_BUCKETS 8192 /* a power of two */
#define LEARN_SAY_EVERY_NS (10 * 1000000000ULL) /* per-name cap lines */

static __u32 name_id(struct learn *l, const char *name)
{
	char **names;
	size_t i;

	for (i = 0; i < l->nnames; i++)
		if (!strcmp(l->names[i], name))
			return i + 1;
	if (l->nnames >= l->o.max_names)
		return 0; /* learn nothing more: fails closed */
	names = realloc(l->names, (l->nnames + 1) * sizeof(*names));
	if (!names)
		return 0;
	l->names = names;
	names[l->nnames] = strdup(name);
	return names[l->nnames] ? ++l->nnames : 0;
}

static bool same_addr(const struct pair *p, __u8 family, const __u8 *addr)
{
	return p->family == family && !memcmp(p->addr, addr, 16);
}

/* Write the union of the live pairs of one address, or delete it. */
static int sync_addr(struct learn *l, __u8 family, const __u8 *addr)
{
	struct weir_learn_key k = { .handle = l->o.handle, .family = family };
	struct weir_learn_val v = {};
	size_t i, j;

	memcpy(k.addr, addr, 16);
	for (i = 0; i < l->n; i++) {
		const struct pair *p = &l->p[i];

		if (!same_addr(p, family, addr))
			continue;
		for (j = 0; j < p->nr && v.n < WEIR_LEARN_RANGES; j++)
			v.r[v.n++] = p->r[j];
		if (p->expires_ns > v.expires_ns) {
			v.expires_ns = p->expires_ns;
			v.domain_id = p->name_id;
		}
	}
	return v.n ? egress_learn_set(l->eg, &k, &v) : egress_learn_del(l->eg, &k);
}

static struct pair *find_pair(struct learn *l, __u32 id, const struct resolved_addr *a,
			      size_t *live)
{
	struct pair *found = NULL;
	size_t i;

	*live = 0;
	for (i = 0; i < l->n; i++) {
		if (l->p[i].name_id != id)
			continue;
		(*live)++;
		if (same_addr(&l->p[i], a->family, a->addr))
			found = &l->p[i];
	}
	return found;
}

static struct pair *new_pair(struct learn *l)
{
	struct pair *p;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;

		p = realloc(l->p, cap * sizeof(*p));
		if (!p)
			return NULL;
		l->p = p;
		l->cap = cap;
	}
	p = &l->p[l->n++];
	memset(p, 0, sizeof(*p));
	return p;
}

static __u32 clamp_ttl(const struct learn *l, __u32 ttl)
{
	if (ttl < l->o.ttl_min)
		return l->o.ttl_min;
	return ttl > l->o.ttl_max ? l->o.ttl_max : ttl;
}

/*
 * The same answer again (a program asking for the same name in a loop, a
 * cache behind weir): same ranges, and an expiry the map already has to
 * within a quarter of the TTL (at most a second). Writing it would be a
 * map update per answer for nothing; not writing leaves the address live
 * for at least three quarters of its TTL from now, never longer than the
 * answer says.
 */
static bool unchanged(const struct learn *l, const struct pair *p, const struct weir_portrange *r,
		      size_t nr, const struct resolved_addr *a)
{
	__u64 ttl_ns = clamp_ttl(l, a->ttl) * 1000000000ULL, grain = ttl_ns / 4;
	__u64 expires = boot_ns() + ttl_ns;

	if (grain > 1000000000ULL)
		grain = 1000000000ULL;
	if (nr > WEIR_LEARN_RANGES)
		nr = WEIR_LEARN_RANGES;
	return p->written && p->nr == nr && !memcmp(p->r, r, nr * sizeof(*r)) &&
	       expires >= p->expires_ns && expires - p->expires_ns < grain;
}

enum learn_refusal { REF_PER_NAME, REF_NAMES_FULL };

/*
 * The table is at max_pairs: the pair that expires soonest leaves (its
 * address is denied again unless another live name holds it), and says so
 * once. What a command resolved last is what it is about to use; a cap
 * that refused new answers instead would leave it only old ones (R8-7).
 */
static void make_room(struct learn *l)
{
	size_t i, soonest = 0;
	struct pair gone;

	for (i = 1; i < l->n; i++)
		if (l->p[i].expires_ns < l->p[soonest].expires_ns)
			soonest = i;
	gone = l->p[soonest];
	l->p[soonest] = l->p[--l->n];
	sync_addr(l, gone.family, gone.addr);
	if (!l->said_pairs_full) {
		pr_warn("learned-address table full (%u addresses): the addresses that expire "
			"soonest are forgotten for new answers, so connections to them are "
			"denied until they are resolved again\n",
			l->o.max_pairs);
		l->said_pairs_full = true;
	}
}

/* Why some addresses of NAME were not learned; said under l->mu, sparingly. */
static void say_refused(struct learn *l, const char *name, int refused, enum learn_refusal why)
{
	__u64 now = boot_ns();

	if (why == REF_NAMES_FULL && !l->said_names_full) {
		pr_warn("learned-name table full (%u names): answers for new names are not "
			"learned, so connections to them are denied\n",
			l->o.max_names);
		l->said_names_full = true;
	} else if (why == REF_PER_NAME &&
		   (!l->said_per_name_ns || now - l->said_per_name_ns >= LEARN_SAY_EVERY_NS)) {
		pr_warn("%s: %d address(es) not learned: more than %u live addresses for one "
			"name\n",
			name, refused, l->o.max_per_name);
		l->said_per_name_ns = now;
	}
}

int learn_add(struct learn *l, const char *name, const struct weir_portrange *r, size_t nr,
	      const struct resolved_addr *a, size_t n)
{
	enum learn_refusal why = REF_PER_NAME;
	int refused = 0, map_full = 0, err = 0;
	size_t i, live;
	struct pair *p;
	__u32 id;

	pthread_mutex_lock(&l->mu);
	id = name_id(l, name);
	if (!id && n && l->nnames >= l->o.max_names) {
		refused = n;
		why = REF_NAMES_FULL;
	} else if (!id && n) {
		err = -ENOMEM;
	}
	for (i = 0; id && !err && i < n; i++) {
		p = find_pair(l, id, &a[i], &live);
		if (!p && live >= l->o.max_per_name) {
			refused++;
			continue;
		}
		if (!p && l->n && l->n >= l->o.max_pairs)
			make_room(l);
		if (p && unchanged(l, p, r, nr, &a[i]))
			continue;
		if (!p && !(p = new_pair(l))) {
			err = -ENOMEM;
			break;
		}
		p->name_id = id;
		p->family = a[i].family;
		memcpy(p->addr, a[i].addr, 16);
		p->nr = nr < WEIR_LEARN_RANGES ? nr : WEIR_LEARN_RANGES;
		memcpy(p->r, r, p->nr * sizeof(*r));
		p->expires_ns = boot_ns() + clamp_ttl(l, a[i].ttl) * 1000000000ULL;
		err = sync_addr(l, p->family, p->addr);
		/* A failed write (the map full) is tried again by the next
		 * answer, not skipped as unchanged for the rest of the TTL. */
		p->written = !err;
		if (err == -E2BIG) { /* the map, full of other attachments' */
			map_full++;
			err = 0;
		}
	}
	if (refused)
		say_refused(l, name, refused, why);
	if (map_full && !l->said_map_full) {
		pr_warn("the learned-address map every attachment shares is full: %s and later "
			"answers are not learned while it is, so connections to them are denied\n",
			name);
		l->said_map_full = true;
	}
	pthread_mutex_unlock(&l->mu);
	if (err)
		pr_warn("cannot learn the addresses of %s: %s\n", name, strerror(-err));
	return err ?: refused + map_full;
}

int learn_expire(struct learn *l)
{
	__u64 now = boot_ns();
	struct pair gone;
	size_t i = 0;
	int n = 0;

	pthread_mutex_lock(&l->mu);
	while (i < l->n) {
		if (l->p[i].expires_ns > now) {
			i++;
			continue;
		}
		gone = l->p[i];
		l->p[i] = l->p[--l->n];
		sync_addr(l, gone.family, gone.addr);
		n++;
	}
	pthread_mutex_unlock(&l->mu);
	return n;
}

int learn_rejudge(struct learn *l, learn_judge_fn judge, void *ctx)
{
	struct weir_portrange r[WEIR_LEARN_RANGES];
	size_t i = 0, nr;
	struct pair p;
	int n = 0;

	pthread_mutex_lock(&l->mu);
	while (i < l->n) {
		p = l->p[i];
		nr = 0;
		if (judge(ctx, l->names[p.name_id - 1], r, &nr) && nr) {
			l->p[i].nr = nr < WEIR_LEARN_RANGES ? nr : WEIR_LEARN_RANGES;
			memcpy(l->p[i].r, r, l->p[i].nr * sizeof(*r));
			i++;
		} else {
			l->p[i] = l->p[--l->n];
			n++;
		}
		sync_addr(l, p.family, p.addr);
	}
	pthread_mutex_unlock(&l->mu);
	return n;
}

static size_t seen_bucket(__u8 family, const __u8 *addr)
{
	__u64 h = 1469598103934665603ULL ^ family;
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 1099511628211ULL;
	return h & (LEARN_SEEN_BUCKETS - 1);
}

/* The index of ADDR in the ring, or -1. */
static __s32 seen_find(const struct learn *l, __u8 family, const __u8 *addr)
{
	__s32 i;

	for (i = l->seen_head[seen_bucket(family, addr)]; i >= 0; i = l->seen[i].next)
		if (l->seen[i].family == family && !memcmp(l->seen[i].addr, addr, 16))
			return i;
	return -1;
}

/* Take slot I (the oldest, when the ring is full) out of its bucket. */
static void seen_unlink(struct learn *l, __s32 i)
{
	__s32 *p = &l->seen_head[seen_bucket(l->seen[i].family, l->seen[i].addr)];

	while (*p >= 0 && *p != i)
		p = &l->seen[*p].next;
	if (*p == i)
		*p = l->seen[i].next;
}

/* Where a's name goes in the ring: its own slot, or the next. */
static struct seen *seen_slot(struct learn *l, const struct resolved_addr *a)
{
	__s32 i = seen_find(l, a->family, a->addr);

	if (i >= 0)
		return &l->seen[i];
	if (l->nseen < LEARN_SEEN_MAX) {
		i = l->nseen++;
	} else {
		i = l->seen_next;
		l->seen_next = (i + 1) % LEARN_SEEN_MAX;
		seen_unlink(l, i);
	}
	l->seen[i].family = a->family;
	memcpy(l->seen[i].addr, a->addr, 16);
	l->seen[i].next = l->seen_head[seen_bucket(a->family, a->addr)];
	l->seen_head[seen_bucket(a->family, a->addr)] = i;
	return &l->seen[i];
}

static bool seen_alloc(struct learn *l)
{
	size_t i;

	if (l->seen)
		return true;
	l->seen = calloc(LEARN_SEEN_MAX, sizeof(*l->seen));
	l->seen_head = malloc(LEARN_SEEN_BUCKETS * sizeof(*l->seen_head));
	if (!l->seen || !l->seen_head) {
		free(l->seen);
		free(l->seen_head);
		l->seen = NULL;
		l->seen_head = NULL;
		return false;
	}
	for (i = 0; i < LEARN_SEEN_BUCKETS; i++)
		l->seen_head[i] = -1;
	return true;
}

void learn_seen(struct learn *l, const char *name, const struct resolved_addr *a, size_t n)
{
	size_t i;
	__u32 id;

	pthread_mutex_lock(&l->mu);
	id = seen_alloc(l) ? name_id(l, name) : 0;
	for (i = 0; id && i < n; i++)
		seen_slot(l, &a[i])->name_id = id;
	pthread_mutex_unlock(&l->mu);
}

const char *learn_seen_name(struct learn *l, __u8 family, const __u8 *addr, char *buf,
			    size_t len)
{
	const char *ret = NULL;
	__s32 i;

	if (!l)
		return NULL;
	pthread_mutex_lock(&l->mu);
	i = l->seen ? seen_find(l, family, addr) : -1;
	if (i >= 0) {
		snprintf(buf, len, "%s", l->names[l->seen[i].name_id - 1]);
		ret = buf;
	}
	pthread_mutex_unlock(&l->mu);
	return ret;
}

const char *learn_name(struct learn *l, __u32 id, char *buf, size_t len)
{
	const char *ret = NULL;

	if (!l || !id)
		return NULL;
	pthread_mutex_lock(&l->mu);
	if (id <= l->nnames) {
		snprintf(buf, len, "%s", l->names[id - 1]);
		ret = buf;
	}
	pthread_mutex_unlock(&l->mu);
	return ret;
}

void learn_free(struct learn *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->nnames; i++)
		free(l->names[i]);
	free(l->names);
	free(l->p);
	free(l->seen);
	free(l->seen_head);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
