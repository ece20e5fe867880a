// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "attachment.h"
#include "compile.h"
#include "learn.h"
#include "log.h"
#include "netns.h"
#include "resolve.h"

struct attachment {
	struct attachment_cfg cfg;
	char name[256];
	bool named; /* cfg.name given: messages say whose they are */
	char root[64]; /* "" or "/proc/PID/root" */
	int netns_fd;
	struct policy *policy;
	struct dns_upstream *up; /* in use */
	size_t n_up;
	struct dns_upstream *ns; /* the cgroup's nameservers (read_nameserver_list) */
	size_t n_ns;
	struct resolver *resolver;
	struct dnsproxy *dns;
	struct dns_health *health; /* which of its upstreams work: its own */
	struct learn *learn;
	int notify_fd;
	bool started;
};

/*
 * The nameservers of a cgroup: read once, when it is attached, from its own
 * resolv.conf (a container's), else ours; kept from then on (and by the
 * daemon across restarts), so that a process inside that rewrites its
 * resolv.conf later does not choose whom weir's resolver asks.
 */
static int read_nameserver_list(struct attachment *a, const char *list)
{
	struct resolved_addr *ns = NULL;
	char path[128], *copy, *tok, *save = NULL;
	size_t i, n = 0;

	if (list) {
		copy = strdup(list);
		a->ns = calloc(strlen(list) / 2 + 1, sizeof(*a->ns));
		for (tok = copy ? strtok_r(copy, " ", &save) : NULL; tok && a->ns;
		     tok = strtok_r(NULL, " ", &save))
			if (!dns_parse_upstream(tok, &a->ns[a->n_ns]))
				a->n_ns++;
		free(copy);
		return a->ns ? 0 : -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/etc/resolv.conf", a->root);
	if ((read_nameservers(path, &ns, &n) || !n) && a->root[0])
		read_nameservers("/etc/resolv.conf", &ns, &n);
	a->ns = calloc(n ?: 1, sizeof(*a->ns));
	for (i = 0; a->ns && i < n; i++) {
		char s[INET6_ADDRSTRLEN + 2] = "[";

		inet_ntop(ns[i].family, ns[i].addr, s + 1, sizeof(s) - 2);
		strcat(s, "]");
		if (!dns_parse_upstream(s, &a->ns[a->n_ns]))
			a->n_ns++;
	}
	free(ns);
	return a->ns ? 0 : -ENOMEM;
}

/* The policy's dns.upstream, else the cgroup's nameservers. */
static int read_upstreams(const struct attachment *a, const struct policy *p,
			  struct dns_upstream **out, size_t *n_out)
{
	const struct policy_dns *pd = &p->dns;
	struct dns_upstream *up;
	size_t i, k = 0;

	up = calloc((pd->n_upstream ?: a->n_ns) ?: 1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	for (i = 0; i < pd->n_upstream; i++)
		if (!dns_parse_upstream(pd->upstream[i], &up[k]))
			k++;
	for (i = 0; !pd->n_upstream && i < a->n_ns; i++)
		up[k++] = a->ns[i];
	for (i = 0; i < k; i++)
		up[i].health = a->health;
	*out = up;
	*n_out = k;
	return 0;
}

/* Everything a policy needs before it can be written: upstreams and its
 * static names, resolved in the namespace (they answer from there). */
struct prep {
	struct attachment *a;
	const struct policy *p;
	struct dns_upstream *up;
	size_t n_up;
	struct resolver *resolver;
};

static int prep_in_ns(void *arg)
{
	struct prep *pr = arg;
	struct attachment *a = pr->a;
	enum dns_static mode = pr->p->dns.static_mode;
	char nss[128], nscd[128], hosts[128];
	int ret;

	snprintf(nss, sizeof(nss), "%s/etc/nsswitch.conf", a->root);
	snprintf(nscd, sizeof(nscd), "%s/var/run/nscd/socket", a->root);
	snprintf(hosts, sizeof(hosts), "%s/etc/hosts", a->root);
	if (mode == DNS_STATIC_AUTO)
		mode = resolve_nss_bypasses_dns(nss, nscd) ? DNS_STATIC_ALWAYS : DNS_STATIC_NEVER;
	if (mode == DNS_STATIC_ALWAYS)
		pr_debug("resolving allowed names ahead of time (NSS answers without DNS)\n");
	ret = read_upstreams(a, pr->p, &pr->up, &pr->n_up);
	ret = ret ?: resolver_new(pr->p, pr->up, pr->n_up, mode == DNS_STATIC_ALWAYS,
				  &pr->resolver);
	if (ret)
		return ret;
	ret = resolver_load_hosts(pr->resolver, hosts);
	if (ret && !a->root[0])
		pr_warn("cannot read %s: %s\n", hosts, strerror(-ret));
	else if (ret)
		pr_debug("%s: cannot read %s: %s\n", a->name, hosts, strerror(-ret));
	resolver_resolve_all(pr->resolver);
	return 0;
}

static int compile_with(const struct policy *p, struct resolver *r, struct compiled *c,
			char *err, size_t len)
{
	struct compile_input in = {
		.policy = p,
		.domain_addrs = resolver_addrs,
		.domain_ctx = r,
	};
	char cerr[COMPILE_ERR_LEN];
	int ret;

	resolver_lock(r);
	ret = compile_policy(&in, c, cerr);
	resolver_unlock(r);
	if (ret)
		snprintf(err, len, "%s: %s", p->source, cerr);
	return ret;
}

static int write_with(struct attachment *a, const struct policy *p, struct resolver *r,
		      char *err, size_t len)
{
	struct compiled c;
	int ret;

	ret = compile_with(p, r, &c, err, len);
	if (ret)
		return ret;
	ret = egress_apply_handle(a->cfg.egress, a->cfg.handle, &c);
	pr_debug("%s%spolicy in force: %zu IPv4 and %zu IPv6 prefixes, %zu port sets\n",
		 a->named ? a->name : "", a->named ? ": " : "", c.n4, c.n6, c.nsets);
	if (ret)
		snprintf(err, len, "%s: cannot write the policy into the BPF maps: %s",
			 p->source, strerror(-ret));
	compiled_free(&c);
	return ret;
}

static void dns_cfg(struct attachment *a, struct dnsproxy_cfg *c)
{
	*c = (struct dnsproxy_cfg){
		.policy = a->policy,
		.up = a->up,
		.n_up = a->n_up,
		.learn = a->learn,
		.egress = a->cfg.egress,
		.on_event = a->cfg.on_dns_event,
		.ctx = a->cfg.ctx,
		.attribute_all = a->cfg.attribute_all,
	};
}

static int open_dns_in_ns(void *arg)
{
	struct attachment *a = arg;

	return dnsproxy_open_port(a->cfg.dns_port, &a->dns);
}

#define NO_UPSTREAM "no upstream nameserver for weir's resolver (none in resolv.conf; set " \
		    "dns.upstream in the policy): DNS fails"

static int start_in_ns(void *arg)
{
	struct attachment *a = arg;
	struct dnsproxy_cfg c;
	int ret = 0;

	dns_cfg(a, &c);
	if (a->dns && (a->n_up || a->cfg.require_upstream))
		ret = dnsproxy_start(a->dns, &c); /* says why it cannot */
	else if (a->dns && a->cfg.on_log)
		a->cfg.on_log(LOG_LEVEL_WARN, NO_UPSTREAM, a->cfg.ctx);
	else if (a->dns)
		pr_warn("%s: " NO_UPSTREAM "\n", a->name);
	return ret ?: resolver_start(a->resolver, a->notify_fd);
}

static struct attachment *attachment_new(const struct attachment_cfg *cfg)
{
	struct attachment *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->cfg = *cfg;
	snprintf(a->name, sizeof(a->name), "%s", cfg->name ?: "weir");
	a->named = cfg->name != NULL;
	snprintf(a->root, sizeof(a->root), "%s", cfg->root ?: "");
	a->cfg.name = a->name;
	a->cfg.root = a->root;
	a->netns_fd = cfg->netns_fd >= 0 ? fcntl(cfg->netns_fd, F_DUPFD_CLOEXEC, 0) : -1;
	a->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->health = dns_health_new(cfg->name); /* weir run's lines: no name */
	if (a->health && cfg->on_log)
		dns_health_set_sink(a->health, cfg->on_log, cfg->ctx);
	if (a->notify_fd < 0 || !a->health || (cfg->netns_fd >= 0 && a->netns_fd < 0)) {
		attachment_free(a);
		return NULL;
	}
	return a;
}

int attachment_prepare(const struct attachment_cfg *cfg, struct policy *p,
		       struct attachment **out, char *err, size_t len)
{
	struct attachment *a = attachment_new(cfg);
	struct prep pr = { .a = a, .p = p };
	int ret;

	if (!a) {
		policy_free(p);
		snprintf(err, len, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	a->policy = p;
	ret = read_nameserver_list(a, cfg->nameservers);
	ret = ret ?: netns_run(a->netns_fd, prep_in_ns, &pr);
	a->up = pr.up;
	a->n_up = pr.n_up;
	a->resolver = pr.resolver;
	if (ret)
		snprintf(err, len, "%s: cannot prepare the policy: %s", p->source, strerror(-ret));
	if (!ret && !cfg->no_dns) {
		ret = netns_run(a->netns_fd, open_dns_in_ns, a);
		if (ret)
			snprintf(err, len, "cannot open a resolver on 127.0.0.1%s in the cgroup's "
				 "network namespace: %s", cfg->dns_port ? " (its old port)" : "",
				 strerror(-ret));
	}
	if (ret) {
		attachment_free(a);
		return ret;
	}
	*out = a;
	return 0;
}

int attachment_map_sizes(struct attachment *a, struct map_sizes *ms, char *err, size_t len)
{
	char cerr[COMPILE_ERR_LEN];
	struct compiled c;
	int ret;

	ret = compile_with(a->policy, a->resolver, &c, err, len);
	if (ret)
		return ret;
	ret = compile_map_sizes(&c, resolver_n_resolving(a->resolver) * RESOLVE_MAX_ADDRS, ms,
				cerr);
	if (ret)
		snprintf(err, len, "%s: %s", a->policy->source, cerr);
	compiled_free(&c);
	return ret;
}

int attachment_bind(struct attachment *a, struct egress *e, __u32 handle, char *err,
		    size_t len)
{
	const struct policy *p = a->policy;
	struct learn_opts lo = {
		.ttl_min = p->dns.ttl_min,
		.ttl_max = p->dns.ttl_max,
		.max_per_name = p->dns.max_addresses,
		.handle = handle,
	};
	int ret;

	a->cfg.egress = e;
	a->cfg.handle = handle;
	ret = learn_new(e, &lo, &a->learn);
	return ret ?: write_with(a, p, a->resolver, err, len);
}

int attachment_open(const struct attachment_cfg *cfg, struct policy *p,
		    struct attachment **out, char *err, size_t len)
{
	struct attachment *a;
	int ret;

	ret = attachment_prepare(cfg, p, &a, err, len);
	if (ret)
		return ret;
	ret = attachment_bind(a, cfg->egress, cfg->handle, err, len);
	if (ret) {
		attachment_free(a);
		return ret;
	}
	*out = a;
	return 0;
}

void attachment_stop(struct attachment *a)
{
	if (a)
		dnsproxy_stop(a->dns);
}

void attachment_dns_cfg(const struct attachment *a, struct egress_attach_cfg *out)
{
	memset(out, 0, sizeof(*out));
	if (!a->dns)
		return;
	out->dns_port = dnsproxy_port(a->dns);
	out->dns_ip4 = htonl(INADDR_LOOPBACK);
	if (dnsproxy_has_ipv6(a->dns)) {
		out->dns_ip6[3] = htonl(1); /* ::1 */
	} else {
		out->dns_ip6[2] = htonl(0xffff); /* ::ffff:127.0.0.1 */
		out->dns_ip6[3] = htonl(INADDR_LOOPBACK);
	}
}

int attachment_start(struct attachment *a)
{
	int ret = netns_run(a->netns_fd, start_in_ns, a);

	a->started = !ret;
	return ret;
}

static bool judge_learned(void *ctx, const char *name, struct weir_portrange *r, size_t *nr)
{
	__u32 rule;

	return dns_judge_name(ctx, name, &rule, r, nr) == 1;
}

int attachment_set_policy(struct attachment *a, struct policy *p, char *err, size_t len)
{
	struct prep pr = { .a = a, .p = p };
	struct dns_upstream *old_up;
	struct policy *old_p;
	int ret;

	ret = netns_run(a->netns_fd, prep_in_ns, &pr);
	if (ret)
		snprintf(err, len, "%s: cannot prepare the policy: %s", p->source, strerror(-ret));
	ret = ret ?: write_with(a, p, pr.resolver, err, len);
	if (ret) {
		resolver_free(pr.resolver);
		free(pr.up);
		policy_free(p);
		return ret;
	}
	/* In force in the kernel: now the resolver and what it learned. The
	 * resolver stops and starts again on the same sockets: queries that
	 * come in between wait in them. */
	if (a->dns && a->started)
		dnsproxy_stop(a->dns);
	resolver_free(a->resolver);
	old_up = a->up;
	old_p = a->policy;
	a->resolver = pr.resolver;
	a->up = pr.up;
	a->n_up = pr.n_up;
	a->policy = p;
	learn_rejudge(a->learn, judge_learned, p);
	ret = a->started ? netns_run(a->netns_fd, start_in_ns, a) : 0;
	if (ret)
		snprintf(err, len, "%s: in force, but its resolver did not restart: %s",
			 p->source, strerror(-ret));
	free(old_up);
	policy_free(old_p);
	return ret;
}

int attachment_notify_fd(const struct attachment *a)
{
	return a->notify_fd;
}

int attachment_refresh(struct attachment *a)
{
	char err[512];
	__u64 n;
	int ret;

	if (read(a->notify_fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	/* A failure leaves the previous addresses in force. */
	ret = write_with(a, a->policy, a->resolver, err, sizeof(err));
	if (ret && a->named)
		pr_warn("%s: %s\n", a->name, err);
	else if (ret)
		pr_warn("%s\n", err);
	return ret;
}

void attachment_nameservers(const struct attachment *a, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < a->n_ns && off + 1 < len; i++) {
		if (i)
			buf[off++] = ' ';
		buf[off] = '\0';
		dns_upstream_format(&a->ns[i], buf + off, len - off);
		off += strlen(buf + off);
	}
}

const struct policy *attachment_policy(const struct attachment *a)
{
	return a->policy;
}

struct learn *attachment_learn(const struct attachment *a)
{
	return a->learn;
}

void attachment_free(struct attachment *a)
{
	if (!a)
		return;
	dnsproxy_free(a->dns); /* before the maps it writes go */
	resolver_free(a->resolver);
	learn_free(a->learn);
	dns_health_free(a->health); /* after every thread that notes in it */
	policy_free(a->policy);
	free(a->up);
	free(a->ns);
	if (a->notify_fd >= 0)
		close(a->notify_fd);
	if (a->netns_fd >= 0)
		close(a->netns_fd);
	free(a);
}
