// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <ldns/ldns.h>

#include "dnsmsg.h"
#include "log.h"
#include "resolve.h"

struct name_entry {
	__u32 rule_id;
	char *name;
	struct resolved_addr *addrs; /* the hosts file's first, then DNS's */
	size_t n, n_hosts;
	bool resolve; /* look it up in DNS too (else /etc/hosts only) */
	time_t due; /* CLOCK_MONOTONIC seconds of the next lookup */
};

struct resolver {
	struct dns_upstream *up;
	size_t n_up;
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

#define QUERY_TIMEOUT_MS 2000

static __u16 random_id(void)
{
	__u16 id;

	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (__u16)(time(NULL) ^ getpid());
	return id;
}

/* The query for NAME/TYPE in wire form, with a random id in q->id. */
static int make_query(const char *name, ldns_rr_type type, struct dns_question *q, __u8 **wire,
		      size_t *len)
{
	char fqdn[DNS_NAME_MAX + 2];
	ldns_pkt *pkt = NULL;
	int err = 0;

	/* Absolute name: never let a search domain turn it into another one. */
	snprintf(fqdn, sizeof(fqdn), "%s.", name);
	if (ldns_pkt_query_new_frm_str(&pkt, fqdn, type, LDNS_RR_CLASS_IN, LDNS_RD) !=
	    LDNS_STATUS_OK)
		return -EINVAL;
	q->id = random_id();
	q->qtype = type;
	snprintf(q->name, sizeof(q->name), "%s", name);
	ldns_pkt_set_id(pkt, q->id);
	if (ldns_pkt2wire(wire, pkt, len) != LDNS_STATUS_OK)
		err = -ENOMEM;
	ldns_pkt_free(pkt);
	return err;
}

/*
 * One query to one upstream. The UDP socket is connected, so only that
 * server's datagrams reach it (a program in the cgroup may send datagrams
 * to weir's ports on loopback), and an answer counts only if it carries
 * our random id and our question. A truncated answer is asked again over
 * TCP. Returns the number of addresses or a negative errno; *rcode.
 */
static int ask(const struct dns_upstream *u, const struct dns_question *q, const __u8 *wire,
	       size_t len, struct resolved_addr *out, int *rcode)
{
	struct timeval tv = { .tv_sec = QUERY_TIMEOUT_MS / 1000 };
	__u8 buf[DNS_MSG_MAX];
	size_t alen;
	ssize_t n;
	int fd, ret = -ETIMEDOUT, i;

	fd = socket(u->sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&u->sa, u->len) || send(fd, wire, len, 0) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	for (i = 0; i < 16; i++) { /* ignore what is not our answer */
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			/* SO_RCVTIMEO ran out, or an ICMP error (ECONNREFUSED) */
			ret = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
			break;
		}
		ret = dns_parse_answer(buf, n, q, out, RESOLVE_MAX_ADDRS, rcode);
		if (ret == -EBADMSG)
			continue;
		if (n > 2 && (buf[2] & 0x02) && !dns_tcp_exchange(u, wire, len, buf, &alen))
			ret = dns_parse_answer(buf, alen, q, out, RESOLVE_MAX_ADDRS, rcode);
		break;
	}
	close(fd);
	return ret == -EBADMSG ? -ETIMEDOUT : ret;
}

/* TYPE records of NAME from the first upstream that answers. */
static int query_one(const struct dns_upstream *up, size_t n_up, const char *name,
		     ldns_rr_type type, struct resolved_addr *out, size_t *n)
{
	struct dns_question q = {};
	__u8 *wire = NULL;
	size_t len, i;
	int ret = -EHOSTUNREACH, rcode = 0;

	*n = 0;
	if (make_query(name, type, &q, &wire, &len))
		return -EINVAL;
	for (i = 0; i < n_up; i++) {
		ret = ask(&up[i], &q, wire, len, out, &rcode);
		if (ret >= 0 && rcode == LDNS_RCODE_SERVFAIL)
			ret = -EREMOTEIO;
		/* Said once per upstream: the static lookups share the
		 * resolver's account of which upstreams work. */
		dns_upstream_note(&up[i], ret < 0 ? ret : 0);
		if (ret >= 0)
			break;
	}
	free(wire);
	if (ret < 0)
		return ret;
	if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN)
		return -EIO;
	*n = ret;
	return 0;
}

int resolve_name(const char *name, const struct dns_upstream *up, size_t n_up,
		 struct resolved_addr **out, size_t *n)
{
	struct resolved_addr *a;
	size_t n4 = 0, n6 = 0;
	int err, err4;

	*out = NULL;
	*n = 0;
	if (!n_up)
		return -EHOSTUNREACH;
	a = calloc(2 * RESOLVE_MAX_ADDRS, sizeof(*a));
	if (!a)
		return -ENOMEM;
	/* Either family may fail alone (a server refusing AAAA, say). */
	err4 = query_one(up, n_up, name, LDNS_RR_TYPE_A, a, &n4);
	err = query_one(up, n_up, name, LDNS_RR_TYPE_AAAA, a + n4, &n6);
	if (!err4 || !err)
		err = 0;
	if (err) {
		free(a);
		return err;
	}
	*out = a;
	*n = n4 + n6;
	return 0;
}

static int add_rules(struct resolver *r, const struct policy_rule *rules, size_t n, __u8 kind,
		     bool resolve)
{
	struct name_entry *e;
	size_t i;

	for (i = 0; i < n; i++) {
		/* A wildcard cannot be resolved ahead of time: weir's resolver
		 * learns its names' addresses from the answers it relays. */
		if (rules[i].kind != RULE_DOMAIN || rules[i].match != NAME_EXACT)
			continue;
		e = realloc(r->e, (r->n + 1) * sizeof(*e));
		if (!e)
			return -ENOMEM;
		r->e = e;
		e = &r->e[r->n];
		memset(e, 0, sizeof(*e));
		e->rule_id = WEIR_RULE_ID(kind, i);
		e->resolve = resolve;
		e->name = strdup(rules[i].domain);
		if (!e->name)
			return -ENOMEM;
		r->n++;
	}
	return 0;
}

int resolver_new(const struct policy *p, const struct dns_upstream *up, size_t n_up,
		 bool with_allow, struct resolver **out)
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
	r->up = calloc(n_up ? n_up : 1, sizeof(*up));
	if (r->up && n_up)
		memcpy(r->up, up, n_up * sizeof(*up));
	r->n_up = n_up;
	err = r->up ? 0 : -ENOMEM;
	err = err ?: add_rules(r, p->deny, p->n_deny, WEIR_RK_DENY, true);
	err = err ?: add_rules(r, p->allow, p->n_allow, WEIR_RK_ALLOW, with_allow);
	err = err ?: add_rules(r, p->args, p->n_args, WEIR_RK_ARG, with_allow);
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

/* A failure of the upstreams themselves (not of weir, not of this name). */
static bool upstream_error(int err)
{
	return err != -ENOMEM && err != -EINVAL && err != -EIO;
}

/* Store a lookup's result (mutex held); true if the address set changed. */
static bool store(struct name_entry *e, int err, struct resolved_addr *a, size_t n)
{
	struct resolved_addr *all;
	bool changed;

	if (err) {
		/* Keep what we had: a resolver hiccup must not cut working
		 * connections, and it allows nothing new. Try again soon. An
		 * upstream failure was said once already (dns_upstream_note). */
		log_msg(upstream_error(err) ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
			"cannot resolve %s: %s; keeping its %zu known address(es)\n", e->name,
			err == -EREMOTEIO ? "SERVFAIL" : strerror(-err), e->n);
		e->due = mono_now() + RESOLVE_RETRY;
		return false;
	}
	all = malloc((e->n_hosts + n + 1) * sizeof(*all));
	if (!all) {
		free(a);
		e->due = mono_now() + RESOLVE_RETRY;
		return false;
	}
	/* e->addrs and a are NULL when empty: no memcpy from NULL, even of 0. */
	if (e->n_hosts)
		memcpy(all, e->addrs, e->n_hosts * sizeof(*all));
	if (n)
		memcpy(all + e->n_hosts, a, n * sizeof(*all));
	changed = !same_addrs(e->addrs, e->n, all, e->n_hosts + n);
	free(e->addrs);
	free(a);
	e->addrs = all;
	e->n = e->n_hosts + n;
	e->due = mono_now() + min_ttl(all + e->n_hosts, n);
	if (!e->n)
		pr_warn("%s has no A or AAAA records; its rule allows nothing for now\n", e->name);
	return changed;
}

static void hosts_line(struct resolver *r, char *line)
{
	struct resolved_addr a = { .ttl = RESOLVE_TTL_MAX };
	char *tok, *save = NULL, *hash = strchr(line, '#');
	size_t i;

	if (hash)
		*hash = '\0';
	tok = strtok_r(line, " \t\r\n", &save);
	if (!tok)
		return;
	if (inet_pton(AF_INET, tok, a.addr) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, tok, a.addr) == 1)
		a.family = AF_INET6;
	else
		return;
	while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
		for (i = 0; i < r->n; i++) {
			struct name_entry *e = &r->e[i];
			struct resolved_addr *n;

			if (strcasecmp(tok, e->name) || e->n != e->n_hosts)
				continue;
			n = realloc(e->addrs, (e->n + 1) * sizeof(*n));
			if (!n)
				return;
			e->addrs = n;
			e->addrs[e->n++] = a;
			e->n_hosts++;
		}
	}
}

void resolver_load_hosts_stream(struct resolver *r, FILE *f)
{
	char line[1024];

	while (fgets(line, sizeof(line), f))
		hosts_line(r, line);
}

int resolver_load_hosts(struct resolver *r, const char *path)
{
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	resolver_load_hosts_stream(r, f);
	fclose(f);
	return 0;
}

bool resolve_nss_bypasses_dns(const char *nsswitch, const char *nscd_socket)
{
	char line[1024], *tok, *save = NULL;
	bool bypass = false;
	FILE *f;

	if (nscd_socket && !access(nscd_socket, F_OK))
		return true;
	f = fopen(nsswitch, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "hosts:", 6))
			continue;
		for (tok = strtok_r(line + 6, " \t\r\n", &save); tok;
		     tok = strtok_r(NULL, " \t\r\n", &save))
			if (!strcmp(tok, "resolve") || !strcmp(tok, "mdns") ||
			    !strncmp(tok, "mdns4", 5) || !strncmp(tok, "mdns6", 5))
				bypass = true;
	}
	fclose(f);
	return bypass;
}

int resolver_resolve_all(struct resolver *r)
{
	struct resolved_addr *a;
	int failed = 0, err;
	size_t i, n;

	for (i = 0; i < r->n; i++) {
		if (!r->e[i].resolve)
			continue;
		err = resolve_name(r->e[i].name, r->up, r->n_up, &a, &n);
		pthread_mutex_lock(&r->mu);
		store(&r->e[i], err, err ? NULL : a, err ? 0 : n);
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
		if (r->e[i].resolve && (!next || r->e[i].due < next->due))
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
		err = name ? resolve_name(name, r->up, r->n_up, &a, &n) : -ENOMEM;
		free(name);
		pthread_mutex_lock(&r->mu);
		if (store(e, err, err ? NULL : a, err ? 0 : n) &&
		    write(r->notify_fd, &one, sizeof(one)) < 0)
			pr_warn("cannot signal an address change: %s\n", strerror(errno));
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

size_t resolver_n_resolving(const struct resolver *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->n; i++)
		n += r->e[i].resolve;
	return n;
}

int resolver_start(struct resolver *r, int notify_fd)
{
	size_t i;
	int err;

	for (i = 0; i < r->n && !r->e[i].resolve; i++)
		;
	if (i == r->n) /* nothing to refresh */
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
	free(r->up);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cond);
	free(r);
}
