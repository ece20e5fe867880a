// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

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
	char root[PATH_MAX]; /* "", "/proc/PID/root", or a container's root file system */
	bool view; /* root's files taken (take_view): never read again */
	char *hosts; /* root's /etc/hosts as it was then */
	size_t hosts_len;
	bool nss_bypass; /* root's NSS answered without DNS then */
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
	/* The policy as attachment_map_sizes() compiled it, kept for
	 * attachment_bind() to write: a million-prefix policy is compiled
	 * once, not twice (its resolver refreshes nothing before the bind). */
	struct compiled sized;
	bool have_sized;
	double sized_ms; /* how long that compile took (-v) */
};

#define VIEW_MAX (1 << 20)

/*
 * REL as a process of the cgroup sees it, in a malloc'd buffer (NULL: none).
 * Its symlinks are resolved inside ROOT (an absolute one would otherwise
 * lead to the daemon's own files), and only a regular file is read, never
 * waiting (a FIFO or /proc/kmsg there would stall the daemon for good). It
 * is found with O_PATH and opened for reading only once it is known to be
 * a regular file: opening a device node or a FIFO an image put there runs
 * its driver's open (a watchdog arms, a FIFO's writer goes on).
 */
static char *view_read(const char *root, const char *rel, size_t *len)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), pfd = -1, fd = -1;
	char *buf = NULL, self[64];
	struct stat st;
	ssize_t n;

	*len = 0;
	if (dfd >= 0)
		pfd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	if (pfd >= 0 && !fstat(pfd, &st) && S_ISREG(st.st_mode)) {
		/* The same inode (the O_PATH descriptor holds it), now readable. */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		fd = open(self, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	}
	if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && (buf = malloc(VIEW_MAX + 1))) {
		while (*len < VIEW_MAX && (n = read(fd, buf + *len, VIEW_MAX - *len)) > 0)
			*len += n;
		buf[*len] = '\0';
	}
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	if (dfd >= 0)
		close(dfd);
	return buf;
}

static bool view_exists(const char *root, const char *rel)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -1;

	if (dfd >= 0)
		fd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return fd >= 0;
}

/* TEXT as a file a path-taking reader can open: /proc/self/fd/N of a memfd. */
static int text_fd(const char *text, size_t len, char *path, size_t plen)
{
	int fd = memfd_create("weir-view", MFD_CLOEXEC);

	if (fd >= 0 && write(fd, text, len) != (ssize_t)len) {
		close(fd);
		fd = -1;
	}
	snprintf(path, plen, "/proc/self/fd/%d", fd);
	return fd;
}

/*
 * What a cgroup's own files say (hosts, nsswitch.conf, nscd), taken once,
 * when it is attached (or as a restarted daemon kept it): a process inside
 * that later mounts or writes its own /etc/hosts does not choose which
 * addresses an allowed name opens at the next reload. With no ROOT, ours
 * (root's files, read at each reload as weir run always did).
 */
static int take_view(struct attachment *a, const struct attachment_cfg *cfg)
{
	char path[64], *nss;
	size_t len;
	int fd;

	if (cfg->hosts) {
		a->hosts = strdup(cfg->hosts);
		a->hosts_len = strlen(cfg->hosts);
		a->nss_bypass = cfg->nss_bypass;
		a->view = true;
		return a->hosts ? 0 : -ENOMEM;
	}
	if (!a->root[0])
		return 0;
	a->view = true;
	a->hosts = view_read(a->root, "etc/hosts", &a->hosts_len);
	a->nss_bypass = view_exists(a->root, "var/run/nscd/socket");
	nss = view_read(a->root, "etc/nsswitch.conf", &len);
	if (nss && !a->nss_bypass) {
		fd = text_fd(nss, len, path, sizeof(path));
		a->nss_bypass = fd >= 0 && resolve_nss_bypasses_dns(path, NULL);
		if (fd >= 0)
			close(fd);
	}
	free(nss);
	return 0;
}

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
	if (a->root[0]) {
		char *text = view_read(a->root, "etc/resolv.conf", &n);
		int fd = text ? text_fd(text, n, path, sizeof(path)) : -1;

		n = 0;
		if (fd >= 0)
			read_nameservers(path, &ns, &n);
		if (fd >= 0)
			close(fd);
		free(text);
	}
	if (!n) {
		free(ns);
		read_nameservers("/etc/resolv.conf", &ns, &n);
	}
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

static int load_hosts_text(const struct attachment *a, struct resolver *r)
{
	FILE *f;

	if (!a->hosts_len)
		return 0;
	f = fmemopen(a->hosts, a->hosts_len, "r");
	if (!f)
		return -errno;
	resolver_load_hosts_stream(r, f);
	fclose(f);
	return 0;
}

static int prep_in_ns(void *arg)
{
	struct prep *pr = arg;
	struct attachment *a = pr->a;
	enum dns_static mode = pr->p->dns.static_mode;
	char nss[PATH_MAX + 32], nscd[PATH_MAX + 32], hosts[PATH_MAX + 32];
	int ret;

	snprintf(nss, sizeof(nss), "%s/etc/nsswitch.conf", a->root);
	snprintf(nscd, sizeof(nscd), "%s/var/run/nscd/socket", a->root);
	snprintf(hosts, sizeof(hosts), "%s/etc/hosts", a->root);
	if (mode == DNS_STATIC_AUTO && a->view)
		mode = a->nss_bypass ? DNS_STATIC_ALWAYS : DNS_STATIC_NEVER;
	else if (mode == DNS_STATIC_AUTO)
		mode = resolve_nss_bypasses_dns(nss, nscd) ? DNS_STATIC_ALWAYS : DNS_STATIC_NEVER;
	if (mode == DNS_STATIC_ALWAYS)
		pr_debug("resolving allowed names ahead of time (NSS answers without DNS)\n");
	ret = read_upstreams(a, pr->p, &pr->up, &pr->n_up);
	ret = ret ?: resolver_new(pr->p, pr->up, pr->n_up, mode == DNS_STATIC_ALWAYS,
				  &pr->resolver);
	if (ret)
		return ret;
	ret = a->view ? load_hosts_text(a, pr->resolver) : resolver_load_hosts(pr->resolver, hosts);
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

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int write_with(struct attachment *a, const struct policy *p, struct resolver *r,
		      char *err, size_t len)
{
	double t0 = mono_ms(), t1;
	struct compiled c;
	int ret = 0;

	if (a->have_sized && p == a->policy && r == a->resolver) {
		c = a->sized; /* compiled for the map sizes, just before */
		a->have_sized = false;
		memset(&a->sized, 0, sizeof(a->sized));
		t0 -= a->sized_ms;
	} else {
		ret = compile_with(p, r, &c, err, len);
	}
	if (ret)
		return ret;
	t1 = mono_ms();
	ret = egress_apply_handle(a->cfg.egress, a->cfg.handle, &c);
	/* -v: where a big policy's load goes (docs/performance.md) */
	pr_debug("%s%spolicy in force: %zu IPv4 and %zu IPv6 prefixes, %zu port sets "
		 "(compiled in %.1f ms, written in %.1f ms)\n",
		 a->named ? a->name : "", a->named ? ": " : "", c.n4, c.n6, c.nsets, t1 - t0,
		 mono_ms() - t1);
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
		.handle = a->cfg.handle,
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
	ret = take_view(a, cfg);
	ret = ret ?: read_nameserver_list(a, cfg->nameservers);
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
	double t0 = mono_ms();
	struct compiled c;
	int ret;

	ret = compile_with(a->policy, a->resolver, &c, err, len);
	if (ret)
		return ret;
	ret = compile_map_sizes(&c, resolver_n_resolving(a->resolver) * RESOLVE_MAX_ADDRS, ms,
				cerr);
	if (ret) {
		snprintf(err, len, "%s: %s", a->policy->source, cerr);
		compiled_free(&c);
		return ret;
	}
	if (a->have_sized)
		compiled_free(&a->sized);
	a->sized = c;
	a->have_sized = true;
	a->sized_ms = mono_ms() - t0;
	return 0;
}

int attachment_bind(struct attachment *a, struct egress *e, __u32 handle, char *err,
		    size_t len)
{
	const struct policy *p = a->policy;
	struct learn_opts lo = {
		.ttl_min = p->dns.ttl_min,
		.ttl_max = p->dns.ttl_max,
		.max_per_name = p->dns.max_addresses,
		.max_pairs = egress_learn_share(e),
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

const char *attachment_hosts(const struct attachment *a, bool *nss_bypass)
{
	*nss_bypass = a->nss_bypass;
	return a->view ? (a->hosts ?: "") : NULL;
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
	if (a->have_sized)
		compiled_free(&a->sized);
	free(a->up);
	free(a->ns);
	free(a->hosts);
	if (a->notify_fd >= 0)
		close(a->notify_fd);
	if (a->netns_fd >= 0)
		close(a->netns_fd);
	free(a);
}
