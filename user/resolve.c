// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <ldns/ldns.h>

#include "log.h"
#include "resolve.h"

struct name_entry {
	__u32 rule_id;
	char *name;
	struct resolved_addr *addrs;
	size_t n;
	time_t due; /* CLOCK_MONOTONIC seconds of the next lookup */
};

struct resolver {
	char *resolv_conf;
	struct name_entry *e;
	size_t n;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stop;
	int notify_fd;
};

static time_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Owner names that lead to the answer: the query name and CNAME targets. */
struct chain {
	ldns_rdf *names[16];
	int n;
};

static bool in_chain(const struct chain *c, const ldns_rdf *name)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (ldns_dname_compare(c->names[i], name) == 0)
			return true;
	return false;
}

/* Follow CNAMEs from the query name; ignore records off the chain. */
static void follow_cnames(const ldns_rr_list *ans, struct chain *c)
{
	bool grew = true;
	size_t i;

	while (grew && c->n < 16) {
		grew = false;
		for (i = 0; i < ldns_rr_list_rr_count(ans) && c->n < 16; i++) {
			ldns_rr *rr = ldns_rr_list_rr(ans, i);
			ldns_rdf *target;

			if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME ||
			    !in_chain(c, ldns_rr_owner(rr)))
				continue;
			target = ldns_rr_rdf(rr, 0);
			if (target && !in_chain(c, target)) {
				c->names[c->n++] = target;
				grew = true;
			}
		}
	}
}

static int collect(ldns_pkt *pkt, ldns_rdf *qname, ldns_rr_type type, struct resolved_addr *out,
		   size_t max, size_t *n)
{
	ldns_rr_list *ans = ldns_pkt_answer(pkt);
	struct chain c = { .names = { qname }, .n = 1 };
	size_t i, got = 0;
	int len = type == LDNS_RR_TYPE_A ? 4 : 16;

	follow_cnames(ans, &c);
	for (i = 0; i < ldns_rr_list_rr_count(ans) && got < max; i++) {
		ldns_rr *rr = ldns_rr_list_rr(ans, i);
		ldns_rdf *rd = ldns_rr_rdf(rr, 0);

		if (ldns_rr_get_type(rr) != type || !rd || ldns_rdf_size(rd) != (size_t)len ||
		    !in_chain(&c, ldns_rr_owner(rr)))
			continue;
		out[got] = (struct resolved_addr){ .family = len == 4 ? AF_INET : AF_INET6,
						   .ttl = ldns_rr_ttl(rr) };
		memcpy(out[got].addr, ldns_rdf_data(rd), len);
		got++;
	}
	*n = got;
	return 0;
}

static int query_one(ldns_resolver *res, ldns_rdf *qname, ldns_rr_type type,
		     struct resolved_addr *out, size_t *n)
{
	ldns_pkt *pkt;
	int rcode, err;

	*n = 0;
	pkt = ldns_resolver_query(res, qname, type, LDNS_RR_CLASS_IN, LDNS_RD);
	if (!pkt)
		return -EHOSTUNREACH;
	rcode = ldns_pkt_get_rcode(pkt);
	if (rcode == LDNS_RCODE_NXDOMAIN)
		err = 0;
	else if (rcode != LDNS_RCODE_NOERROR)
		err = -EIO;
	else
		err = collect(pkt, qname, type, out, RESOLVE_MAX_ADDRS, n);
	ldns_pkt_free(pkt);
	return err;
}

int resolve_name(const char *name, const char *resolv_conf, struct resolved_addr **out, size_t *n)
{
	struct resolved_addr *a;
	ldns_resolver *res = NULL;
	ldns_rdf *qname = NULL;
	char fqdn[260];
	size_t n4 = 0, n6 = 0;
	int err;

	*out = NULL;
	*n = 0;
	a = calloc(2 * RESOLVE_MAX_ADDRS, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (ldns_resolver_new_frm_file(&res, resolv_conf) != LDNS_STATUS_OK) {
		err = -ENOENT;
		goto out;
	}
	ldns_resolver_set_retry(res, 2);
	ldns_resolver_set_timeout(res, (struct timeval){ .tv_sec = 2 });
	/* Absolute name: never let a search domain turn it into another one. */
	snprintf(fqdn, sizeof(fqdn), "%s.", name);
	qname = ldns_dname_new_frm_str(fqdn);
	if (!qname) {
		err = -EINVAL;
		goto out;
	}
	err = query_one(res, qname, LDNS_RR_TYPE_A, a, &n4);
	if (!err)
		err = query_one(res, qname, LDNS_RR_TYPE_AAAA, a + n4, &n6);
out:
	if (qname)
		ldns_rdf_deep_free(qname);
	if (res)
		ldns_resolver_deep_free(res);
	if (err) {
		free(a);
		return err;
	}
	*out = a;
	*n = n4 + n6;
	return 0;
}

static int add_rules(struct resolver *r, const struct policy_rule *rules, size_t n, __u8 kind)
{
	struct name_entry *e;
	size_t i;

	for (i = 0; i < n; i++) {
		/* Wildcards name no address until the DNS-aware resolver. */
		if (rules[i].kind != RULE_DOMAIN || rules[i].match != NAME_EXACT)
			continue;
		e = realloc(r->e, (r->n + 1) * sizeof(*e));
		if (!e)
			return -ENOMEM;
		r->e = e;
		e = &r->e[r->n];
		memset(e, 0, sizeof(*e));
		e->rule_id = WEIR_RULE_ID(kind, i);
		e->name = strdup(rules[i].domain);
		if (!e->name)
			return -ENOMEM;
		r->n++;
	}
	return 0;
}

int resolver_new(const struct policy *p, const char *resolv_conf, struct resolver **out)
{
	struct resolver *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	int err;

	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->notify_fd = -1;
	r->resolv_conf = strdup(resolv_conf);
	err = r->resolv_conf ? 0 : -ENOMEM;
	err = err ?: add_rules(r, p->allow, p->n_allow, WEIR_RK_ALLOW);
	err = err ?: add_rules(r, p->deny, p->n_deny, WEIR_RK_DENY);
	err = err ?: add_rules(r, p->args, p->n_args, WEIR_RK_ARG);
	if (err) {
		resolver_free(r);
		return err;
	}
	*out = r;
	return 0;
}

static __u32 min_ttl(const struct resolved_addr *a, size_t n)
{
	__u32 ttl = RESOLVE_TTL_MAX;
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i].ttl < ttl)
			ttl = a[i].ttl;
	return ttl < RESOLVE_TTL_MIN ? RESOLVE_TTL_MIN : ttl;
}

static bool same_addrs(const struct resolved_addr *a, size_t na, const struct resolved_addr *b,
		       size_t nb)
{
	size_t i, j;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++) {
		for (j = 0; j < nb; j++)
			if (a[i].family == b[j].family && !memcmp(a[i].addr, b[j].addr, 16))
				break;
		if (j == nb)
			return false;
	}
	return true;
}

/* Store a lookup's result (mutex held); true if the address set changed. */
static bool store(struct name_entry *e, int err, struct resolved_addr *a, size_t n)
{
	bool changed;

	if (err) {
		/* Keep what we had: a resolver hiccup must not cut working
		 * connections, and it allows nothing new. Try again soon. */
		pr_warn("cannot resolve %s: %s; keeping its %zu known address(es)\n", e->name,
			err == -EHOSTUNREACH ? "no nameserver answered" : strerror(-err), e->n);
		e->due = mono_now() + RESOLVE_RETRY;
		return false;
	}
	changed = !same_addrs(e->addrs, e->n, a, n);
	free(e->addrs);
	e->addrs = a;
	e->n = n;
	e->due = mono_now() + min_ttl(a, n);
	if (!n)
		pr_warn("%s has no A or AAAA records; its rule allows nothing for now\n", e->name);
	return changed;
}

int resolver_resolve_all(struct resolver *r)
{
	struct resolved_addr *a;
	int failed = 0, err;
	size_t i, n;

	for (i = 0; i < r->n; i++) {
		err = resolve_name(r->e[i].name, r->resolv_conf, &a, &n);
		pthread_mutex_lock(&r->mu);
		store(&r->e[i], err, err ? NULL : a, n);
		pthread_mutex_unlock(&r->mu);
		pr_debug("resolved %s: %zu address(es)\n", r->e[i].name, err ? 0 : n);
		failed += !!err;
	}
	return failed;
}

static struct name_entry *next_due(struct resolver *r, time_t *due)
{
	struct name_entry *next = NULL;
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!next || r->e[i].due < next->due)
			next = &r->e[i];
	if (next)
		*due = next->due;
	return next;
}

static void *refresh_main(void *arg)
{
	struct resolver *r = arg;
	struct resolved_addr *a;
	struct name_entry *e;
	__u64 one = 1;
	char *name;
	time_t due;
	size_t n;
	int err;

	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		e = next_due(r, &due);
		if (!e || due > mono_now()) {
			struct timespec ts = { .tv_sec = e ? due : mono_now() + 3600 };

			pthread_cond_timedwait(&r->cond, &r->mu, &ts);
			continue;
		}
		name = strdup(e->name);
		pthread_mutex_unlock(&r->mu);
		err = name ? resolve_name(name, r->resolv_conf, &a, &n) : -ENOMEM;
		free(name);
		pthread_mutex_lock(&r->mu);
		if (store(e, err, err ? NULL : a, n) && write(r->notify_fd, &one, sizeof(one)) < 0)
			pr_warn("cannot signal an address change: %s\n", strerror(errno));
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int resolver_start(struct resolver *r, int notify_fd)
{
	int err;

	if (!r->n)
		return 0;
	r->notify_fd = notify_fd;
	err = pthread_create(&r->thread, NULL, refresh_main, r);
	if (err)
		return -err;
	r->running = true;
	return 0;
}

void resolver_lock(struct resolver *r)
{
	pthread_mutex_lock(&r->mu);
}

void resolver_unlock(struct resolver *r)
{
	pthread_mutex_unlock(&r->mu);
}

size_t resolver_addrs(void *resolver, __u32 rule_id, const struct resolved_addr **out)
{
	struct resolver *r = resolver;
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (r->e[i].rule_id == rule_id) {
			*out = r->e[i].addrs;
			return r->e[i].n;
		}
	}
	return 0;
}

void resolver_free(struct resolver *r)
{
	size_t i;

	if (!r)
		return;
	if (r->running) {
		pthread_mutex_lock(&r->mu);
		r->stop = true;
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->mu);
		/* A lookup in flight finishes within its timeout (2 s x 2). */
		pthread_join(r->thread, NULL);
	}
	for (i = 0; i < r->n; i++) {
		free(r->e[i].name);
		free(r->e[i].addrs);
	}
	free(r->e);
	free(r->resolv_conf);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cond);
	free(r);
}
