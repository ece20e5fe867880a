// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir policy suggest. Each decision the base policy would deny becomes
 * part of a rule: by name when the events know one (the connection's
 * domain, or the one name whose DNS answer held the address), by address
 * otherwise. Sibling names under one registrable domain become a wildcard
 * (libpsl: a public suffix such as co.uk is never one). The flows' close
 * events say how much each rule's destinations sent and received: in the
 * rule's comment, and as a commented upload_budget to start from.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "addrbook.h"
#include "suggest.h"
#include "tally.h"
#include "verify.h"

/* One rule to print. */
struct sdest {
	char *host; /* a name, "*.parent", or an address */
	bool is_name;
	int family; /* addresses: for sorting */
	__u8 addr[16];
	char proto[4]; /* "tcp", "udp"; "" for a name only resolved */
	__u16 *ports;
	size_t n_ports, cap_ports;
	struct tally t;
	char *seen; /* a wildcard: the names it stands for */
	bool folded; /* a name a wildcard stands for: not printed */
	__u64 tx, rx; /* bytes of its flows that ended (close events) */
	unsigned long flows;
};

struct dnsname {
	char *name;
	bool answered; /* some answer held an address */
	struct tally t;
};

/* A connection by address whose name a later DNS event may give. */
struct pending {
	int family;
	__u8 addr[16];
	char dst[48];
	__u16 port;
	__u16 protocol;
	char proto[4];
	char comm[64];
};

/* A flow that ended: put to its rule once the rules are known. */
struct sclose {
	int family;
	__u8 addr[16];
	char dst[48];
	char proto[4];
	char *domain; /* NULL when the event had none */
	__u64 tx, rx;
};

struct note {
	char *text;
	unsigned long count;
};

struct sstate {
	const struct suggest_opts *o;
	struct sdest *d;
	size_t nd, capd;
	struct addrbook book;
	struct dnsname *dn;
	size_t ndn, capdn;
	struct pending *pe;
	size_t npe, cappe;
	struct note *no;
	size_t nno, capno;
	struct sclose *cl;
	size_t ncl, capcl;
	unsigned long conns, names, allowed;
};

static int grow(void *pp, size_t *cap, size_t n, size_t size)
{
	void **p = pp, *q;
	size_t c = *cap ? *cap * 2 : 16;

	if (n < *cap)
		return 0;
	q = realloc(*p, c * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static int note(struct sstate *s, const char *fmt, const char *what)
{
	char text[EVREAD_NAME_MAX * 4 + 256], safe[EVREAD_NAME_MAX * 4 + 1];
	size_t i;

	tally_safe(what, safe, sizeof(safe));
	snprintf(text, sizeof(text), fmt, safe);
	for (i = 0; i < s->nno; i++) {
		if (!strcmp(s->no[i].text, text)) {
			s->no[i].count++;
			return 0;
		}
	}
	if (grow(&s->no, &s->capno, s->nno, sizeof(*s->no)))
		return -ENOMEM;
	s->no[s->nno].text = strdup(text);
	if (!s->no[s->nno].text)
		return -ENOMEM;
	s->no[s->nno++].count = 1;
	return 0;
}

/* --- what is never suggested ---------------------------------------------- */

/* Names of cloud metadata services (their addresses are compile.c's
 * compile_metadata_addrs). */
static const char *const metadata_names[] = {
	"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
	"instance-data.ec2.internal", "metadata.azure.internal",
};

static bool metadata_addr(int family, const __u8 *addr)
{
	size_t i;

	for (i = 0; i < compile_n_metadata_addrs; i++) {
		const struct resolved_addr *m = &compile_metadata_addrs[i];

		if (m->family == family && !memcmp(m->addr, addr, family == AF_INET ? 4 : 16))
			return true;
	}
	return false;
}

static bool metadata_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(metadata_names) / sizeof(metadata_names[0]); i++)
		if (!strcasecmp(name, metadata_names[i]))
			return true;
	return false;
}

/*
 * May NAME be a rule? Not when weir's resolver refuses it whatever the
 * policy says (escaped bytes: ldns writes a dot inside a label or a byte
 * outside ordinary names with a backslash, which dns_judge_name refuses),
 * nor when the policy parser would refuse it: the output must pass
 * weir policy check.
 */
static const char *name_problem(const char *name)
{
	struct policy_rule r = {};
	char err[POLICY_ERR_LEN];
	const char *p;

	for (p = name; *p; p++)
		if (*p == '\\' || (unsigned char)*p < 0x21 || (unsigned char)*p >= 0x7f)
			return "an escaped or malformed DNS name (weir's resolver refuses it)";
	if (strchr(name, '*') || domain_parse(name, &r, err, sizeof(err)))
		return "a malformed DNS name (weir's resolver refuses it)";
	free(r.domain);
	if (metadata_name(name))
		return "a cloud metadata endpoint";
	return NULL;
}

/* --- collecting ------------------------------------------------------------ */

static struct sdest *dest_get(struct sstate *s, const char *host, bool is_name, const char *proto)
{
	struct sdest *d;
	size_t i;

	for (i = 0; i < s->nd; i++) {
		d = &s->d[i];
		if (d->is_name == is_name && !strcmp(d->proto, proto) && !strcmp(d->host, host))
			return d;
	}
	if (grow(&s->d, &s->capd, s->nd, sizeof(*s->d)))
		return NULL;
	d = &s->d[s->nd];
	memset(d, 0, sizeof(*d));
	d->host = strdup(host);
	if (!d->host)
		return NULL;
	d->is_name = is_name;
	snprintf(d->proto, sizeof(d->proto), "%s", proto);
	if (!is_name) {
		d->family = strchr(host, ':') ? AF_INET6 : AF_INET;
		inet_pton(d->family, host, d->addr);
	}
	s->nd++;
	return d;
}

static int dest_port(struct sdest *d, __u16 port)
{
	size_t i;

	for (i = 0; i < d->n_ports; i++)
		if (d->ports[i] == port)
			return 0;
	if (grow(&d->ports, &d->cap_ports, d->n_ports, sizeof(*d->ports)))
		return -ENOMEM;
	d->ports[d->n_ports++] = port;
	return 0;
}

static int add_dest(struct sstate *s, const char *host, bool is_name, const char *proto,
		    __u16 port, const char *comm)
{
	struct sdest *d = dest_get(s, host, is_name, proto);

	if (!d)
		return -ENOMEM;
	tally_add(&d->t, comm);
	return dest_port(d, port);
}

/* The judged address: IPv4-mapped IPv6 is IPv4 (as the kernel judges it). */
static void plain_addr(const struct evrec *r, int *family, __u8 addr[16], char *text, size_t len)
{
	*family = r->family;
	memcpy(addr, r->addr, 16);
	addr_unmap(family, addr);
	inet_ntop(*family, addr, text, (socklen_t)len);
}

static int on_conn(struct sstate *s, const struct evrec *r)
{
	const char *proto, *why;
	struct judgement j;
	struct pending *p;
	char text[48];
	__u8 addr[16];
	int family;

	proto = r->protocol == 6 || r->protocol == 262 ? "tcp" :
		r->protocol == 17 || r->protocol == 136 ? "udp" : NULL;
	plain_addr(r, &family, addr, text, sizeof(text));
	if (metadata_addr(family, addr) || !strcmp(r->reason, "metadata-endpoint"))
		return note(s, "left out %s: a cloud metadata endpoint", text);
	s->conns++;
	judge_conn(s->o->base, r->family, r->addr, r->port, r->protocol,
		   r->domain[0] ? r->domain : NULL, &j);
	if (j.verdict == WEIR_V_ALLOW) {
		s->allowed++;
		return 0;
	}
	if (!proto) {
		char what[80];

		snprintf(what, sizeof(what), "%s %s", r->proto, text);
		return note(s, "left out %s: rules name tcp and udp ports, not this protocol "
			       "(ping: allow is a top-level key)", what);
	}
	if (r->domain[0]) {
		why = name_problem(r->domain);
		if (why) {
			char fmt[200];

			snprintf(fmt, sizeof(fmt), "left out %%s: %s", why);
			return note(s, fmt, r->domain);
		}
		return add_dest(s, r->domain, true, proto, r->port, r->comm);
	}
	/* The name may be in a DNS event further on: decided at the end. */
	if (grow(&s->pe, &s->cappe, s->npe, sizeof(*s->pe)))
		return -ENOMEM;
	p = &s->pe[s->npe++];
	p->family = family;
	memcpy(p->addr, addr, 16);
	snprintf(p->dst, sizeof(p->dst), "%s", text);
	p->port = r->port;
	p->protocol = r->protocol;
	snprintf(p->proto, sizeof(p->proto), "%s", proto);
	snprintf(p->comm, sizeof(p->comm), "%s", r->comm);
	return 0;
}

static struct dnsname *dnsname_get(struct sstate *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->ndn; i++)
		if (!strcmp(s->dn[i].name, name))
			return &s->dn[i];
	if (grow(&s->dn, &s->capdn, s->ndn, sizeof(*s->dn)))
		return NULL;
	memset(&s->dn[s->ndn], 0, sizeof(s->dn[0]));
	s->dn[s->ndn].name = strdup(name);
	return s->dn[s->ndn].name ? &s->dn[s->ndn++] : NULL;
}

static int on_dns(struct sstate *s, const struct evrec *r)
{
	struct judgement j;
	struct dnsname *n;
	const char *why;
	size_t i;

	why = name_problem(r->name);
	for (i = 0; !why && i < r->n_answers; i++)
		if (metadata_addr(r->answers[i].family, r->answers[i].addr))
			why = "its answer is a cloud metadata endpoint";
	if (why) {
		char fmt[200];

		snprintf(fmt, sizeof(fmt), "left out %%s: %s", why);
		return note(s, fmt, r->name);
	}
	s->names++;
	for (i = 0; i < r->n_answers; i++)
		if (addrbook_add(&s->book, r->answers[i].family, r->answers[i].addr, r->name))
			return -ENOMEM;
	judge_name(s->o->base, r->name, &j);
	if (j.verdict == WEIR_V_ALLOW) {
		s->allowed++;
		return 0;
	}
	n = dnsname_get(s, r->name);
	if (!n)
		return -ENOMEM;
	n->answered |= r->n_answers > 0;
	tally_add(&n->t, r->comm);
	return 0;
}

static int on_close(struct sstate *s, const struct evrec *r)
{
	const char *proto = r->protocol == 6 || r->protocol == 262 ? "tcp" :
			    r->protocol == 17 || r->protocol == 136 ? "udp" : NULL;
	struct sclose *c;

	if (!proto)
		return 0;
	if (grow(&s->cl, &s->capcl, s->ncl, sizeof(*s->cl)))
		return -ENOMEM;
	c = &s->cl[s->ncl];
	memset(c, 0, sizeof(*c));
	plain_addr(r, &c->family, c->addr, c->dst, sizeof(c->dst));
	snprintf(c->proto, sizeof(c->proto), "%s", proto);
	if (r->domain[0] && !(c->domain = strdup(r->domain)))
		return -ENOMEM;
	c->tx = r->tx_bytes;
	c->rx = r->rx_bytes;
	s->ncl++;
	return 0;
}

static int on_event(const struct evrec *r, void *ctx)
{
	if (r->kind == EV_CLOSE)
		return on_close(ctx, r);
	if (verify_skips(r))
		return 0;
	return r->kind == EV_DNS ? on_dns(ctx, r) : on_conn(ctx, r);
}

/* Connections by address: by name if exactly one DNS name answered with
 * the address (a name the base allows: allowed already). */
static int settle_pending(struct sstate *s)
{
	size_t i;
	int ret;

	for (i = 0; i < s->npe; i++) {
		const struct pending *p = &s->pe[i];
		const struct abentry *e = addrbook_find(&s->book, p->family, p->addr);
		const char *name = e && e->n == 1 && !e->more ? e->names[0] : NULL;
		struct judgement j;

		if (name) {
			judge_conn(s->o->base, p->family, p->addr, p->port, p->protocol, name, &j);
			if (j.verdict == WEIR_V_ALLOW) {
				s->allowed++;
				continue;
			}
		}
		ret = add_dest(s, name ? name : p->dst, name != NULL, p->proto, p->port, p->comm);
		if (ret)
			return ret;
	}
	return 0;
}

/* Names only resolved: a rule without ports, or a note when no answer
 * had an address (nothing to reach; often a search-list expansion). */
static int settle_names(struct sstate *s)
{
	size_t i, k;

	for (i = 0; i < s->ndn; i++) {
		struct dnsname *n = &s->dn[i];
		struct sdest *d;
		bool covered = false;

		for (k = 0; k < s->nd && !covered; k++)
			covered = s->d[k].is_name && !strcmp(s->d[k].host, n->name);
		if (covered)
			continue;
		if (!n->answered) {
			if (note(s, "left out %s: no answer held an address", n->name))
				return -ENOMEM;
			continue;
		}
		d = dest_get(s, n->name, true, "");
		if (!d)
			return -ENOMEM;
		d->t = n->t;
	}
	return 0;
}

static struct sdest *dest_find(struct sstate *s, const char *host, bool is_name,
			       const char *proto)
{
	size_t i;

	for (i = 0; i < s->nd; i++)
		if (s->d[i].is_name == is_name && !strcmp(s->d[i].proto, proto) &&
		    !strcmp(s->d[i].host, host))
			return &s->d[i];
	return NULL;
}

/* Each ended flow to the rule suggested for its destination, found as a
 * connection was: by its domain, the one name that answered with its
 * address, or the address. Flows of what the base allows have none. */
static void settle_closes(struct sstate *s)
{
	size_t i;

	for (i = 0; i < s->ncl; i++) {
		const struct sclose *c = &s->cl[i];
		const struct abentry *e = addrbook_find(&s->book, c->family, c->addr);
		const char *name = c->domain ?: e && e->n == 1 && !e->more ? e->names[0] : NULL;
		struct sdest *d = name ? dest_find(s, name, true, c->proto) : NULL;

		d = d ?: dest_find(s, c->dst, false, c->proto);
		if (!d)
			continue;
		d->tx += c->tx;
		d->rx += c->rx;
		d->flows++;
	}
}

/* --- wildcards -------------------------------------------------------------- */

static const char *parent_of(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot && dot[1] ? dot + 1 : NULL;
}

/* May "*.PARENT" be suggested? Only at or below a registrable domain:
 * never *.co.uk, *.github.io or *.com. */
static bool wildcard_ok(const psl_ctx_t *psl, const char *parent)
{
	return psl && !psl_is_public_suffix(psl, parent) && psl_registrable_domain(psl, parent);
}

static int append_seen(struct sdest *w, const char *name)
{
	size_t len = w->seen ? strlen(w->seen) : 0;
	char *p = realloc(w->seen, len + strlen(name) + 3);

	if (!p)
		return -ENOMEM;
	sprintf(p + len, "%s%s", len ? ", " : "", name);
	w->seen = p;
	return 0;
}

static int fold_into(struct sstate *s, size_t wi, const char *parent, const char *proto)
{
	size_t i, k;

	for (i = 0; i < s->nd; i++) {
		struct sdest *d = &s->d[i];
		struct sdest *w = &s->d[wi]; /* s->d does not move below */
		const char *pa = parent_of(d->host);

		if (i == wi || !d->is_name || d->folded || d->host[0] == '*' || !pa ||
		    strcmp(pa, parent) || strcmp(d->proto, proto))
			continue;
		d->folded = true;
		for (k = 0; k < d->n_ports; k++)
			if (dest_port(w, d->ports[k]))
				return -ENOMEM;
		w->t.count += d->t.count;
		for (k = 0; k < d->t.n_comm; k++) {
			unsigned long c = w->t.count;

			tally_add(&w->t, d->t.comm[k]);
			w->t.count = c;
		}
		w->t.more_comms += d->t.more_comms;
		w->tx += d->tx;
		w->rx += d->rx;
		w->flows += d->flows;
		if (append_seen(w, d->host))
			return -ENOMEM;
	}
	return 0;
}

static int make_wildcards(struct sstate *s, const psl_ctx_t *psl)
{
	size_t i, k, n = s->nd;

	for (i = 0; i < n; i++) {
		const char *parent = parent_of(s->d[i].host);
		char proto[4], wild[EVREAD_NAME_MAX + 3];
		size_t siblings = 0;

		if (!s->d[i].is_name || s->d[i].folded || s->d[i].host[0] == '*' ||
		    !s->d[i].proto[0] || !parent)
			continue;
		for (k = 0; k < n; k++) {
			const char *pa = parent_of(s->d[k].host);

			siblings += s->d[k].is_name && !s->d[k].folded && pa &&
				    !strcmp(pa, parent) && !strcmp(s->d[k].proto, s->d[i].proto);
		}
		if (siblings < SUGGEST_WILDCARD_MIN || !wildcard_ok(psl, parent))
			continue;
		snprintf(wild, sizeof(wild), "*.%s", parent);
		snprintf(proto, sizeof(proto), "%s", s->d[i].proto);
		if (!dest_get(s, wild, true, proto) || fold_into(s, s->nd - 1, wild + 2, proto))
			return -ENOMEM;
	}
	return 0;
}

/* --- printing --------------------------------------------------------------- */

static int port_cmp(const void *a, const void *b)
{
	return (int)*(const __u16 *)a - (int)*(const __u16 *)b;
}

/* Names in domain order, label by label from the right: siblings and
 * their wildcard end up together. */
static int name_cmp(const char *x, const char *y)
{
	const char *xe = x + strlen(x), *ye = y + strlen(y);

	if (*x == '*')
		x += 2;
	if (*y == '*')
		y += 2;
	while (xe > x && ye > y) {
		const char *xs = xe, *ys = ye;
		size_t xl, yl;
		int c;

		while (xs > x && xs[-1] != '.')
			xs--;
		while (ys > y && ys[-1] != '.')
			ys--;
		xl = (size_t)(xe - xs);
		yl = (size_t)(ye - ys);
		c = strncmp(xs, ys, xl < yl ? xl : yl);
		if (c || xl != yl)
			return c ? c : xl < yl ? -1 : 1;
		xe = xs > x ? xs - 1 : xs;
		ye = ys > y ? ys - 1 : ys;
		if (xs == x || ys == y)
			return ((xs == x) - (ys == y)) ? (xs == x ? -1 : 1) : 0;
	}
	return 0;
}

static int dest_cmp(const void *a, const void *b)
{
	const struct sdest *x = a, *y = b;
	int c;

	if (x->is_name != y->is_name)
		return x->is_name ? -1 : 1;
	if (x->is_name)
		c = name_cmp(x->host, y->host);
	else if (x->family != y->family)
		c = x->family == AF_INET ? -1 : 1;
	else
		c = memcmp(x->addr, y->addr, 16);
	return c ? c : strcmp(x->proto, y->proto);
}

/* "[80, 443, 8000-8002]"; false when more ranges than a rule may hold. */
static bool print_ports(FILE *f, struct sdest *d)
{
	size_t i, n = 0;

	qsort(d->ports, d->n_ports, sizeof(*d->ports), port_cmp);
	for (i = 0; i < d->n_ports; i++)
		n += !i || d->ports[i] != d->ports[i - 1] + 1;
	if (n > WEIR_LEARN_RANGES || !d->n_ports || d->ports[0] == 0)
		return false;
	fputs("    ports: [", f);
	for (i = 0; i < d->n_ports; i++) {
		size_t k = i;

		while (k + 1 < d->n_ports && d->ports[k + 1] == d->ports[k] + 1)
			k++;
		fprintf(f, "%s%u", i ? ", " : "", d->ports[i]);
		if (k > i)
			fprintf(f, "-%u", d->ports[k]);
		i = k;
	}
	fputs("]\n", f);
	return true;
}

/* "512 bytes", "1.5 kB", "300.0 MB": decimal units, as `ls -h --si`. */
static void fmt_bytes(__u64 n, char *buf, size_t len)
{
	static const char *const unit[] = { "kB", "MB", "GB", "TB" };
	double v = (double)n;
	int u = -1;

	if (n < 1000) {
		snprintf(buf, len, "%llu byte%s", (unsigned long long)n, n == 1 ? "" : "s");
		return;
	}
	while (v >= 1000 && u < 3) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[u]);
}

/*
 * A budget to start from: twice what was sent, up to a power of two of
 * KiB, MiB or GiB (64KiB at least). Commented out: what one run sent is
 * a floor, not a limit, and an upload_budget refuses past it.
 */
static void print_budget_hint(FILE *f, const struct sdest *d)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	__u64 want = d->tx > (1ULL << 50) ? (1ULL << 51) : 2 * d->tx, v = 64ULL << 10;
	char sent[32];
	int u = 0;

	while (v < want)
		v *= 2;
	for (v >>= 10; v >= 1024 && u < 3; u++)
		v /= 1024;
	fmt_bytes(d->tx, sent, sizeof(sent));
	fprintf(f, "    # upload_budget: %llu%s  # twice the %s sent here; past it, uploads "
		   "are refused\n", (unsigned long long)v, unit[u], sent);
}

static void print_dest(struct sstate *s, struct sdest *d)
{
	FILE *f = s->o->out;
	char fmt[64], tx[32], rx[32];

	fprintf(f, "  # %lu %s by ", d->t.count,
		!d->proto[0] ? (d->t.count == 1 ? "query" : "queries") :
			       (d->t.count == 1 ? "connection" : "connections"));
	tally_print_comms(f, &d->t);
	if (d->seen)
		fprintf(f, "; seen: %s", d->seen);
	if (!d->proto[0])
		fputs("; resolved, no connection seen: every port", f);
	if (d->flows) {
		fmt_bytes(d->tx, tx, sizeof(tx));
		fmt_bytes(d->rx, rx, sizeof(rx));
		fprintf(f, "; sent %s, received %s (%lu flow%s ended)", tx, rx, d->flows,
			d->flows == 1 ? "" : "s");
	}
	fprintf(f, "\n  - %s: \"%s\"\n", d->is_name ? "domain" : "ip", d->host);
	if (!d->proto[0])
		return;
	if (!print_ports(f, d)) {
		snprintf(fmt, sizeof(fmt), "%%s: more than %d port ranges (%s): suggested for every port",
			 WEIR_LEARN_RANGES, d->proto);
		note(s, fmt, d->host);
	}
	fprintf(f, "    proto: %s\n", d->proto);
	if (d->flows && d->tx)
		print_budget_hint(f, d);
}

static void print_yaml_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void print_policy(struct sstate *s)
{
	FILE *f = s->o->out;
	size_t i, shown = 0;

	qsort(s->d, s->nd, sizeof(*s->d), dest_cmp);
	fprintf(f, "# Suggested by weir policy suggest from %lu connection decisions and %lu DNS\n"
		   "# queries: what the workload reached%s.\n# Review it before use.\n"
		   "version: 1\n",
		s->conns, s->names, s->o->base_path ? ", less what the included base allows" : "");
	if (s->o->base_path) {
		fputs("include: [", f);
		print_yaml_str(f, s->o->base_path);
		fputs("]\n", f);
	}
	for (i = 0; i < s->nd; i++)
		shown += !s->d[i].folded;
	fputs(shown ? "allow:\n" : "allow: []\n", f);
	for (i = 0; i < s->nd; i++)
		if (!s->d[i].folded)
			print_dest(s, &s->d[i]);
}

static void print_notes(struct sstate *s)
{
	size_t i;

	for (i = 0; i < s->nno; i++) {
		fprintf(s->o->notes, "weir: policy suggest: %s", s->no[i].text);
		if (s->no[i].count > 1)
			fprintf(s->o->notes, " (%lu times)", s->no[i].count);
		fputc('\n', s->o->notes);
	}
	if (s->allowed)
		fprintf(s->o->notes, "weir: policy suggest: %lu decisions the %s allows already\n",
			s->allowed, s->o->base_path ? "base policy" : "default (loopback)");
}

static void state_free(struct sstate *s)
{
	size_t i;

	for (i = 0; i < s->nd; i++) {
		free(s->d[i].host);
		free(s->d[i].ports);
		free(s->d[i].seen);
	}
	for (i = 0; i < s->ndn; i++)
		free(s->dn[i].name);
	for (i = 0; i < s->nno; i++)
		free(s->no[i].text);
	for (i = 0; i < s->ncl; i++)
		free(s->cl[i].domain);
	free(s->cl);
	free(s->d);
	addrbook_free(&s->book);
	free(s->dn);
	free(s->pe);
	free(s->no);
}

int suggest_events(const struct suggest_opts *o, char *const *files, int n,
		   char err[EVREAD_ERR_LEN])
{
	/* The Public Suffix List: the system's newest copy (publicsuffix
	 * package), else the one built into libpsl. */
	psl_ctx_t *latest = psl_latest(NULL);
	const psl_ctx_t *psl = latest ? latest : psl_builtin();
	struct sstate s = { .o = o };
	int ret;

	ret = evread_files(files, n, on_event, &s, err);
	if (!ret)
		ret = settle_pending(&s);
	if (!ret)
		ret = settle_names(&s);
	if (!ret)
		settle_closes(&s);
	if (!ret)
		ret = make_wildcards(&s, psl);
	if (ret == -ENOMEM)
		snprintf(err, EVREAD_ERR_LEN, "out of memory");
	if (!ret) {
		print_policy(&s);
		print_notes(&s);
	}
	state_free(&s);
	psl_free(latest);
	return ret;
}
