// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* weir policy verify: replay, group the denials, print them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "addrbook.h"
#include "events.h"
#include "tally.h"
#include "verify.h"

#define GROUP_ADDRS 4 /* addresses listed for a named destination */

/* One denied destination: a name or address, port and protocol. */
struct vgroup {
	enum evkind kind;
	char *host; /* the name when known, else the address */
	__u16 port;
	char proto[16];
	char addrs[GROUP_ADDRS][48]; /* for a name: the addresses it had */
	size_t n_addrs;
	struct judgement j; /* of the first decision */
	struct tally t;
};

/* A connection recorded without a domain: judged once every DNS answer
 * is known. */
struct vpending {
	int family;
	__u8 addr[16];
	char dst[48];
	__u16 port;
	__u16 protocol;
	char proto[16];
	char comm[64];
};

struct vstate {
	const struct matcher *m;
	struct vgroup *g;
	size_t n, cap;
	struct addrbook book;
	struct vpending *pe;
	size_t npe, cappe;
	unsigned long conns, conns_denied, names, names_denied;
};

bool verify_skips(const struct evrec *r)
{
	return r->kind == EV_CLOSE || (r->kind == EV_CONN && (r->sent_nothing ||
				       !strcmp(r->reason, "dns-to-weir-resolver")));
}

static struct vgroup *group_find(struct vstate *s, enum evkind kind, const char *host,
				 __u16 port, const char *proto)
{
	struct vgroup *g;
	size_t i;

	for (i = 0; i < s->n; i++) {
		g = &s->g[i];
		if (g->kind == kind && g->port == port && !strcmp(g->proto, proto) &&
		    !strcmp(g->host, host))
			return g;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;

		g = realloc(s->g, cap * sizeof(*g));
		if (!g)
			return NULL;
		s->g = g;
		s->cap = cap;
	}
	g = &s->g[s->n];
	memset(g, 0, sizeof(*g));
	g->host = strdup(host);
	if (!g->host)
		return NULL;
	g->kind = kind;
	g->port = port;
	snprintf(g->proto, sizeof(g->proto), "%s", proto);
	s->n++;
	return g;
}

static void group_addr(struct vgroup *g, const char *addr)
{
	size_t i;

	for (i = 0; i < g->n_addrs; i++)
		if (!strcmp(g->addrs[i], addr))
			return;
	if (g->n_addrs < GROUP_ADDRS)
		snprintf(g->addrs[g->n_addrs++], sizeof(g->addrs[0]), "%s", addr);
}

/* A denied decision into its group. */
static int deny(struct vstate *s, enum evkind kind, const char *host, __u16 port,
		const char *proto, const char *addr, const char *comm, const struct judgement *j)
{
	char safe[EVREAD_NAME_MAX * 4 + 1];
	struct vgroup *g;

	if (kind == EV_DNS)
		s->names_denied++;
	else
		s->conns_denied++;
	tally_safe(host, safe, sizeof(safe));
	g = group_find(s, kind, safe, port, proto);
	if (!g)
		return -ENOMEM;
	if (!g->t.count)
		g->j = *j;
	if (addr)
		group_addr(g, addr);
	tally_add(&g->t, comm);
	return 0;
}

static int pend(struct vstate *s, const struct evrec *r)
{
	struct vpending *p;

	if (s->npe == s->cappe) {
		size_t cap = s->cappe ? s->cappe * 2 : 16;

		p = realloc(s->pe, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->pe = p;
		s->cappe = cap;
	}
	p = &s->pe[s->npe++];
	p->family = r->family;
	memcpy(p->addr, r->addr, 16);
	snprintf(p->dst, sizeof(p->dst), "%s", r->dst);
	p->port = r->port;
	p->protocol = r->protocol;
	snprintf(p->proto, sizeof(p->proto), "%s", r->proto);
	snprintf(p->comm, sizeof(p->comm), "%s", r->comm);
	return 0;
}

static int verify_one(const struct evrec *r, void *ctx)
{
	struct vstate *s = ctx;
	struct judgement j;
	size_t i;

	if (verify_skips(r))
		return 0;
	if (r->kind == EV_CONN) {
		s->conns++;
		if (!r->domain[0])
			return pend(s, r);
		judge_conn(s->m, r->family, r->addr, r->port, r->protocol, r->domain, &j);
		return j.verdict == WEIR_V_ALLOW ? 0 :
		       deny(s, EV_CONN, r->domain, r->port, r->proto, r->dst, r->comm, &j);
	}
	s->names++;
	for (i = 0; i < r->n_answers; i++)
		if (addrbook_add(&s->book, r->answers[i].family, r->answers[i].addr, r->name))
			return -ENOMEM;
	judge_name(s->m, r->name, &j);
	return j.verdict == WEIR_V_ALLOW ? 0 :
	       deny(s, EV_DNS, r->name, 0, "dns", NULL, r->comm, &j);
}

/* By address alone, or as learned from any name whose answer held it
 * (weir's resolver would have taught the kernel, had the policy allowed
 * the name). */
static int settle(struct vstate *s)
{
	size_t i, k;

	for (i = 0; i < s->npe; i++) {
		const struct vpending *p = &s->pe[i];
		const struct abentry *e = addrbook_find(&s->book, p->family, p->addr);
		struct judgement j, jn;

		judge_conn(s->m, p->family, p->addr, p->port, p->protocol, NULL, &j);
		for (k = 0; e && j.verdict != WEIR_V_ALLOW && k < e->n; k++) {
			judge_conn(s->m, p->family, p->addr, p->port, p->protocol, e->names[k], &jn);
			if (jn.verdict == WEIR_V_ALLOW)
				j = jn;
		}
		if (j.verdict != WEIR_V_ALLOW &&
		    deny(s, EV_CONN, p->dst, p->port, p->proto, NULL, p->comm, &j))
			return -ENOMEM;
	}
	return 0;
}

static int group_cmp(const void *a, const void *b)
{
	const struct vgroup *x = a, *y = b;
	int c;

	if (x->kind != y->kind)
		return x->kind == EV_CONN ? -1 : 1;
	c = strcmp(x->host, y->host);
	if (c)
		return c;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return strcmp(x->proto, y->proto);
}

static void group_print(FILE *f, const struct policy *p, const struct vgroup *g)
{
	struct weir_event e = { .rule = g->j.rule, .reason = g->j.reason };
	char rule[32], origin[POLICY_ERR_LEN];
	size_t i;

	if (g->kind == EV_DNS)
		fprintf(f, "would deny dns %s", g->host);
	else if (strchr(g->host, ':'))
		fprintf(f, "would deny %s [%s]:%u", g->proto, g->host, g->port);
	else
		fprintf(f, "would deny %s %s:%u", g->proto, g->host, g->port);
	for (i = 0; i < g->n_addrs; i++)
		fprintf(f, "%s%s", i ? ", " : " (", g->addrs[i]);
	if (g->n_addrs)
		fputs(")", f);
	fprintf(f, ": %lu %s by ", g->t.count,
		g->kind == EV_DNS ? (g->t.count == 1 ? "query" : "queries") :
				    (g->t.count == 1 ? "decision" : "decisions"));
	tally_print_comms(f, &g->t);
	policy_rule_name(g->j.rule, rule, sizeof(rule));
	if (!g->j.rule)
		snprintf(rule, sizeof(rule), "default");
	fprintf(f, "; %s, %s", g->kind == EV_DNS && g->j.reason == WEIR_R_NO_MATCH ?
				       "name-not-allowed" : event_reason_name(&e), rule);
	policy_rule_origin(p, g->j.rule, origin, sizeof(origin));
	fprintf(f, origin[0] ? " (%s)\n" : "\n", origin);
}

int verify_events(const struct matcher *m, char *const *files, int n, FILE *out,
		  char err[EVREAD_ERR_LEN])
{
	struct vstate s = { .m = m };
	size_t i;
	int ret;

	ret = evread_files(files, n, verify_one, &s, err);
	if (!ret)
		ret = settle(&s);
	if (ret == -ENOMEM)
		snprintf(err, EVREAD_ERR_LEN, "out of memory");
	if (!ret) {
		qsort(s.g, s.n, sizeof(*s.g), group_cmp);
		for (i = 0; i < s.n; i++)
			group_print(out, matcher_policy(m), &s.g[i]);
		fprintf(out, "%zu destination%s denied: %lu of %lu connection decisions, "
			     "%lu of %lu DNS queries\n", s.n, s.n == 1 ? "" : "s",
			s.conns_denied, s.conns, s.names_denied, s.names);
		ret = s.n ? 1 : 0;
	}
	for (i = 0; i < s.n; i++)
		free(s.g[i].host);
	free(s.g);
	free(s.pe);
	addrbook_free(&s.book);
	return ret;
}
