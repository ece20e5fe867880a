// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <sys/random.h>

#include "dns.h"
#include "egress.h"
#include "learn.h"
#include "log.h"
#include "sockdiag.h"

#define UDP_TIMEOUT_MS 1500 /* per upstream attempt */
#define TCP_TIMEOUT_MS 3000
#define MAX_PENDING 1024
#define UDP_BATCH 8 /* queries read in one call */
#define ASKERS_KEPT 64 /* sockets udp_asker() remembers */
#define STRANGERS_KEPT 64 /* sources that are no asker, udp_stranger() */
#define STRANGER_MS 1000

/* A source address and port the resolver found no asker behind, until when. */
struct stranger {
	__u8 key[18]; /* address (IPv4 in the first 4 bytes), port */
	__u64 until_ms;
};
#define MAX_KEPT 16 /* upstream sockets kept open between queries, at most */
#define MAX_TCP_CLIENTS 64
#define EDE_TEXT "blocked by weir policy"

enum { L_UDP4, L_UDP6, L_TCP4, L_TCP6, NLISTEN };

/* A UDP query waiting for its upstream. */
struct pending {
	int upfd; /* the upstream socket, -1: none; a slot is free when !query */
	bool kept; /* free, with upfd kept open for the next query (keep_up()) */
	int kept_up; /* ... connected to cfg.up[kept_up] */
	int lfd; /* where the query came in, to answer from */
	struct sockaddr_storage client;
	socklen_t clen;
	__u8 *query;
	size_t qlen;
	int attempt;
	int err; /* why this attempt failed early (ICMP, connect), 0: none yet */
	__u64 deadline_ms;
	struct dns_event ev;
	struct weir_portrange r[WEIR_LEARN_RANGES];
	size_t nr;
};

struct dnsproxy {
	int lfd[NLISTEN];
	struct sockaddr_storage laddr[NLISTEN]; /* what each listener is bound to */
	__u16 port;
	struct dnsproxy_cfg cfg;
	int epfd, timerfd, stopfd;
	pthread_t thread;
	bool running;
	bool busy; /* a TCP client outlived dnsproxy_stop(): never freed */
	atomic_int tcp_clients;
	atomic_bool stop;
	pthread_mutex_t tcp_mu; /* tcp_fds: connections to end at stop */
	int tcp_fds[MAX_TCP_CLIENTS];
	int n_pend; /* slots in use: the timer looks at them only then */
	bool timer_on; /* the retry timer is armed (pend_timer()) */
	/* Past the highest slot ever used no slot has been touched: the walks
	 * at stop (and the timer's) end there. Walking all of pend[] faulted
	 * in its never-used pages, ~3.5 ms at the end of every run. */
	int pend_hi;
	int n_kept; /* free slots holding an upstream socket open (keep_up()) */
	__u32 keep_mask; /* upstreams (the first 32) whose sockets may be kept */
	/* The UDP side's buffers, the proxy thread's own: a daemon runs one
	 * resolver thread per attachment, and static buffers were shared by
	 * all of them. */
	__u8 buf[DNS_MSG_MAX], resp[DNS_MSG_MAX];
	/* Sockets the UDP loop found in weir_askers (udp_asker()), by
	 * cookie: the loop thread's own. */
	__u64 asker_seen[ASKERS_KEPT];
	struct stranger strangers[STRANGERS_KEPT]; /* udp_stranger() */
	struct weir_asker asker[ASKERS_KEPT];
	__u8 qbuf[UDP_BATCH][DNS_MSG_MAX]; /* queries as they came in (udp_queries());
					    * only the pages written are touched */
	struct pending pend[MAX_PENDING]; /* untouched until used: a daemon has
					   * hundreds of resolvers, mostly idle */
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static __u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- upstream health: each failure said once ------------------------------- */

#define UP_TRACKED 32 /* upstreams remembered; more are said every time */
/*
 * After UP_LINES_FREE lines about an upstream (it fails, answers again,
 * fails in another way), the next come at most every UP_REPEAT_MS: the
 * command chooses what it asks, and an upstream that answers UDP but not
 * TCP, or some names but not others, would otherwise make two lines for
 * every two queries it sends.
 */
#define UP_LINES_FREE 4
#define UP_REPEAT_MS 10000

struct up_health {
	struct sockaddr_storage sa;
	socklen_t len;
	int said; /* unreachability last said (negative errno), 0: none since it answered */
	bool servfail_said;
	unsigned int lines; /* unreachable / answers-again lines said */
	__u64 said_at; /* now_ms() of the last of them */
	bool refused_said;
};

/* One account of which upstreams work: per attachment (a daemon's cgroups
 * each reach upstreams of their own, in namespaces of their own, which
 * may share an address), else the process's. */
struct dns_health {
	struct up_health up[UP_TRACKED];
	size_t n;
	pthread_mutex_t mu;
	char who[128]; /* "" or the attachment's name, for the lines */
	log_sink_fn sink; /* NULL: the lines go to the log */
	void *sink_ctx;
	bool bindable_said; /* upstream_bindable()'s line */
};

static struct dns_health process_health = { .mu = PTHREAD_MUTEX_INITIALIZER };

struct dns_health *dns_health_new(const char *who)
{
	struct dns_health *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->mu, NULL);
	snprintf(h->who, sizeof(h->who), "%s", who ?: "");
	return h;
}

void dns_health_set_sink(struct dns_health *h, log_sink_fn fn, void *ctx)
{
	h->sink = fn;
	h->sink_ctx = ctx;
}

/* One line about an upstream: to the account's sink (without its name: the
 * sink knows whose it is), else the log with the name in front. */
__attribute__((format(printf, 3, 4))) static void upstream_say(const struct dns_health *t,
								enum log_level level,
								const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (t->sink)
		t->sink(level, msg, t->sink_ctx);
	else
		log_msg(level, "%s%s%s\n", t->who, t->who[0] ? ": " : "", msg);
}

void dns_health_free(struct dns_health *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static struct dns_health *health_table(const struct dns_upstream *u)
{
	return u->health ?: &process_health;
}

void dns_upstream_format(const struct dns_upstream *u, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&u->sa;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&u->sa;
	char a[INET6_ADDRSTRLEN] = "?";

	if (u->sa.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	}
}

const char *dns_upstream_reason(int err)
{
	if (err == -ETIMEDOUT)
		return "upstream-timeout";
	if (err == DNS_UPSTREAM_REFUSED)
		return "upstream-refused";
	return err == -EREMOTEIO ? "upstream-servfail" : "upstream-unreachable";
}

static const char *unreachable_why(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "timeout";
	case -ECONNREFUSED:
		return "connection refused";
	case -ENETUNREACH:
		return "network unreachable";
	case -EHOSTUNREACH:
		return "host unreachable";
	case -EPIPE:
	case -ECONNRESET:
		return "connection closed";
	default:
		return strerror(-err);
	}
}

static struct up_health *health_of(struct dns_health *t, const struct dns_upstream *u)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->up[i].len == u->len && !memcmp(&t->up[i].sa, &u->sa, u->len))
			return &t->up[i];
	if (t->n == UP_TRACKED)
		return NULL;
	t->up[t->n] = (struct up_health){ .sa = u->sa, .len = u->len };
	return &t->up[t->n++];
}

enum up_line { UP_NONE, UP_AGAIN, UP_SERVFAIL, UP_REFUSED, UP_UNREACHABLE };

/* Which line ERR calls for, if any; h's account is updated (under up_mu). */
static enum up_line upstream_line(struct up_health *h, int err)
{
	/* Said a moment ago: what was said stands for now. */
	bool quiet = h && h->lines >= UP_LINES_FREE && now_ms() - h->said_at < UP_REPEAT_MS;

	if (!err) {
		if (!h || !h->said || quiet)
			return UP_NONE;
		h->said = 0;
	} else if (err == -EREMOTEIO) {
		if (h && h->servfail_said)
			return UP_NONE;
		if (h)
			h->servfail_said = true;
		return UP_SERVFAIL;
	} else if (err == DNS_UPSTREAM_REFUSED) {
		if (h && h->refused_said)
			return UP_NONE;
		if (h)
			h->refused_said = true;
		return UP_REFUSED;
	} else {
		if (quiet || (h && h->said == err))
			return UP_NONE;
		if (h)
			h->said = err;
	}
	if (h) {
		h->lines++;
		h->said_at = now_ms();
	}
	return err ? UP_UNREACHABLE : UP_AGAIN;
}

/*
 * SERVFAIL is said once per upstream, ever: an upstream that answers other
 * names is working, and one broken name must not make a line per query.
 * Called on every answer: the upstream's name is only formatted for a line.
 */
bool dns_upstream_note(const struct dns_upstream *u, int err)
{
	struct dns_health *t = health_table(u);
	char who[INET6_ADDRSTRLEN + 8];
	enum up_line line;

	pthread_mutex_lock(&t->mu);
	line = upstream_line(health_of(t, u), err);
	pthread_mutex_unlock(&t->mu);
	if (line == UP_NONE)
		return false;
	dns_upstream_format(u, who, sizeof(who));
	switch (line) {
	case UP_AGAIN:
		upstream_say(t, LOG_LEVEL_INFO, "DNS upstream %s answers again", who);
		break;
	case UP_SERVFAIL:
		upstream_say(t, LOG_LEVEL_WARN, "DNS upstream %s failing: it answered SERVFAIL",
			     who);
		break;
	case UP_REFUSED:
		upstream_say(t, LOG_LEVEL_WARN, "DNS upstream %s failing: it answered REFUSED (it "
			     "does not resolve for weir: no recursion, or no upstream of its own)",
			     who);
		break;
	default:
		upstream_say(t, LOG_LEVEL_WARN, "DNS upstream %s unreachable: %s", who,
			     unreachable_why(err));
	}
	return true;
}

bool dns_upstream_failing(const struct dns_upstream *u)
{
	struct dns_health *t = health_table(u);
	struct up_health *h;
	bool bad;

	pthread_mutex_lock(&t->mu);
	h = health_of(t, u);
	bad = h && (h->said || h->servfail_said || h->refused_said);
	pthread_mutex_unlock(&t->mu);
	return bad;
}

/* --- policy ---------------------------------------------------------------- */

static void add_ranges(const struct policy_rule *pr, __u32 id, struct weir_portrange *r,
		       size_t *nr)
{
	struct weir_portrange x = { .lo = 0, .hi = 65535, .protos = pr->protos, .rule = id,
				    .flags = pr->upload_budget ? WEIR_RF_BUDGET : 0 };
	size_t i;

	if (!pr->n_ports) {
		if (*nr < WEIR_LEARN_RANGES)
			r[(*nr)++] = x;
		return;
	}
	for (i = 0; i < pr->n_ports && *nr < WEIR_LEARN_RANGES; i++) {
		x.lo = pr->ports[i].lo;
		x.hi = pr->ports[i].hi;
		r[(*nr)++] = x;
	}
}

static bool rule_names(const struct policy_rule *pr, const char *name)
{
	return pr->kind == RULE_DOMAIN && domain_match(pr->domain, pr->match, name);
}

static void allow_rules(const struct policy_rule *rules, size_t n, __u8 kind, const char *name,
			__u32 *rule, struct weir_portrange *r, size_t *nr)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!rule_names(&rules[i], name))
			continue;
		if (!*rule)
			*rule = WEIR_RULE_ID(kind, i);
		add_ranges(&rules[i], WEIR_RULE_ID(kind, i), r, nr);
	}
}

int dns_judge_name(const struct policy *p, const char *name, __u32 *rule,
		   struct weir_portrange *r, size_t *nr)
{
	size_t i;

	*rule = 0;
	*nr = 0;
	/* Names come in presentation form: ldns writes a dot inside a label,
	 * or any byte outside ordinary names, with a backslash. Such a label
	 * ("x\.wild.test" is one label "x.wild" then "test") would otherwise
	 * match a wildcard it is not under. No policy names them. */
	if (strchr(name, '\\'))
		return 0;
	for (i = 0; i < p->n_deny; i++) {
		if (rule_names(&p->deny[i], name)) {
			*rule = WEIR_RULE_ID(WEIR_RK_DENY, i);
			return 0;
		}
	}
	allow_rules(p->allow, p->n_allow, WEIR_RK_ALLOW, name, rule, r, nr);
	allow_rules(p->args, p->n_args, WEIR_RK_ARG, name, rule, r, nr);
	return *rule != 0;
}

/* --- sockets ---------------------------------------------------------------- */

static int bind_one(int family, int type, __u16 port)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd, one = 1;

	fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Room for a flood from outside while the resolver waits for a CPU
	 * (R7-8: with the default ~200 KiB it filled in milliseconds and the
	 * run's own queries were dropped by the kernel); charged only while
	 * datagrams wait. */
	if (type == SOCK_DGRAM)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ 4 << 20 }, sizeof(int));
	if (bind(fd, family == AF_INET ? (struct sockaddr *)&s4 : (struct sockaddr *)&s6,
		 family == AF_INET ? sizeof(s4) : sizeof(s6)) ||
	    (type == SOCK_STREAM && listen(fd, 128))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static __u16 local_port(int fd)
{
	struct sockaddr_in s = {};
	socklen_t len = sizeof(s);

	getsockname(fd, (struct sockaddr *)&s, &len);
	return ntohs(s.sin_port);
}

/* One port for UDP and TCP: pick it with UDP, then try to get TCP too;
 * or PORT itself, when it is given (a restarted daemon's resolver goes
 * back where the programs send the queries). */
static unsigned int unpriv_port_start(void);

/* A port /etc/services names (udp or tcp): a service of this machine may
 * want it later, and weir holding 127.0.0.1 there would keep it out. */
static bool service_port(unsigned int port)
{
	struct servent se, *r = NULL;
	char buf[1024];

	if (!getservbyport_r(htons(port), "udp", &se, buf, sizeof(buf), &r) && r)
		return true;
	r = NULL;
	return !getservbyport_r(htons(port), "tcp", &se, buf, sizeof(buf), &r) && r;
}

/* UDP and TCP on 127.0.0.1:PORT: 0, or the first bind's -errno. */
static int bind_v4(struct dnsproxy *p, __u16 port)
{
	int i;

	for (i = 0; i < NLISTEN; i++)
		p->lfd[i] = -1;
	p->lfd[L_UDP4] = bind_one(AF_INET, SOCK_DGRAM, port);
	if (p->lfd[L_UDP4] < 0)
		return p->lfd[L_UDP4];
	p->port = local_port(p->lfd[L_UDP4]);
	p->lfd[L_TCP4] = bind_one(AF_INET, SOCK_STREAM, p->port);
	if (p->lfd[L_TCP4] >= 0)
		return 0;
	close(p->lfd[L_UDP4]);
	p->lfd[L_UDP4] = -1;
	return -EADDRINUSE;
}

/*
 * A free port below ip_unprivileged_port_start (R7-3): a port any user may
 * bind would be theirs to take the moment weir is gone (a daemon
 * restarting, a weir run killed), and the cgroup's port-53 traffic, still
 * redirected there, would go to them. Below it only root (CAP_NET_BIND_SERVICE)
 * can. Ports /etc/services names are left to their services. 0 when none
 * could be had (then a port of the kernel's choosing, and weir says so).
 */
static int bind_privileged(struct dnsproxy *p)
{
	unsigned int start = unpriv_port_start(), port, r;
	int tries, err;

	for (tries = 0; start > 1 && tries < 128; tries++) {
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = (unsigned int)now_ns() ^ (unsigned int)getpid() * 2654435761u;
		port = 1 + r % (start - 1);
		if (port == 53 || service_port(port))
			continue;
		err = bind_v4(p, port);
		if (!err)
			return 0;
		if (err == -EACCES || err == -EPERM)
			break; /* no CAP_NET_BIND_SERVICE */
	}
	pr_warn("weir's DNS resolver gets a port any local user may bind (%s): one who takes it "
		"once weir is gone gets the DNS queries still redirected there "
		"(docs/threat-model.md)\n",
		start <= 1 ? "ip_unprivileged_port_start is 0" :
			     "none free below ip_unprivileged_port_start, or no CAP_NET_BIND_SERVICE");
	return -EADDRNOTAVAIL;
}

/*
 * A daemon adopting a run asks for the run's old port. Taken (by whoever
 * bound it while no weir held it), or one any local user may bind (a run
 * from before R7-3), it is left for a new one: the caller points the
 * cgroup's redirect there (daemon.c, adopt_move_port()).
 */
static bool old_port_kept(struct dnsproxy *p, __u16 port)
{
	unsigned int start = unpriv_port_start();
	int err;

	if (start > 1 && port >= start) {
		pr_warn("weir's DNS resolver leaves its old port %u, which any local user may bind "
			"(ip_unprivileged_port_start is %u), for a new one\n", port, start);
		return false;
	}
	err = bind_v4(p, port);
	if (!err)
		return true;
	pr_warn("weir's DNS resolver cannot have its old port %u back (%s): it moves to a new "
		"one\n", port, strerror(-err));
	return false;
}

static int bind_all(struct dnsproxy *p, __u16 port)
{
	int tries, err = 0;

	if (port && old_port_kept(p, port))
		err = 0;
	else if (bind_privileged(p))
		for (tries = 0; tries < 32; tries++) /* TCP may hold the UDP port */
			if ((err = bind_v4(p, 0)) != -EADDRINUSE)
				break;
	if (err)
		return err;
	/* IPv6 is optional: without ::1, IPv6 DNS sockets cannot be redirected. */
	p->lfd[L_UDP6] = bind_one(AF_INET6, SOCK_DGRAM, p->port);
	p->lfd[L_TCP6] = bind_one(AF_INET6, SOCK_STREAM, p->port);
	if (p->lfd[L_UDP6] < 0 || p->lfd[L_TCP6] < 0) {
		pr_warn("cannot listen on [::1]:%u; DNS over IPv6 sockets will fail\n", p->port);
		if (p->lfd[L_UDP6] >= 0)
			close(p->lfd[L_UDP6]);
		if (p->lfd[L_TCP6] >= 0)
			close(p->lfd[L_TCP6]);
		p->lfd[L_UDP6] = p->lfd[L_TCP6] = -1;
	}
	return 0;
}

int dnsproxy_open(struct dnsproxy **out)
{
	return dnsproxy_open_port(0, out);
}

/*
 * Its own mapping: ~2 MB of which an idle resolver touches a few pages
 * (pend[], qbuf[]). From calloc() it came from the heap once glibc's
 * mmap threshold had grown past it (the first free raises it), and calloc
 * zeroed all of it: a daemon spent ~40% of its CPU per `weir run` there.
 */
static struct dnsproxy *proxy_alloc(void)
{
	void *m = mmap(NULL, sizeof(struct dnsproxy), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return m == MAP_FAILED ? NULL : m;
}

int dnsproxy_open_port(__u16 port, struct dnsproxy **out)
{
	struct dnsproxy *p = proxy_alloc();
	int err, i;

	if (!p)
		return -ENOMEM;
	p->epfd = p->timerfd = p->stopfd = -1;
	pthread_mutex_init(&p->tcp_mu, NULL);
	for (i = 0; i < MAX_TCP_CLIENTS; i++)
		p->tcp_fds[i] = -1;
	err = bind_all(p, port);
	if (err) {
		pr_warn("cannot open weir's DNS resolver on 127.0.0.1%s%.0u: %s\n", port ? ":" : "",
			port, strerror(-err));
		dnsproxy_free(p);
		return err;
	}
	for (i = 0; i < NLISTEN; i++) {
		socklen_t len = sizeof(p->laddr[i]);

		if (p->lfd[i] >= 0)
			getsockname(p->lfd[i], (struct sockaddr *)&p->laddr[i], &len);
	}
	*out = p;
	return 0;
}

__u16 dnsproxy_port(const struct dnsproxy *p)
{
	return p->port;
}

bool dnsproxy_has_ipv6(const struct dnsproxy *p)
{
	return p->lfd[L_UDP6] >= 0;
}

/* --- the decision for one query -------------------------------------------- */

static const struct sockaddr_storage *listener_addr(struct dnsproxy *p, int lfd)
{
	int i;

	for (i = 0; i < NLISTEN; i++)
		if (p->lfd[i] == lfd)
			return &p->laddr[i];
	return &p->laddr[0];
}

/* The socket behind PEER (the one that sent what came in on LFD): its
 * cookie, or 0. */
static __u64 asker_cookie(struct dnsproxy *p, int proto, const struct sockaddr_storage *peer,
			  int lfd)
{
	const struct sockaddr_storage *local = listener_addr(p, lfd);
	__u64 cookie;

	if (sockdiag_cookie(proto, (const struct sockaddr *)peer, (const struct sockaddr *)local,
			    &cookie))
		return 0;
	return cookie;
}

/*
 * The socket's entry in weir_askers, if this resolver's attachment is the
 * one that redirected it. A daemon's attachments share one weir_askers map,
 * and every resolver's port is in /proc/net/udp for anyone to read: a
 * socket one attachment redirected must not ask another's resolver (whose
 * policy may allow names its own refuses).
 */
static int own_asker(struct dnsproxy *p, __u64 cookie, struct weir_asker *a)
{
	int ret = egress_asker(p->cfg.egress, cookie, a);

	/* Handle 0: redirected by the programs an upgraded daemon replaced at
	 * adoption (they left the field zero); judged as before, until the
	 * socket is redirected again. Handles start at 1. */
	return ret ?: a->handle == p->cfg.handle || !a->handle ? 0 : -ENOENT;
}

static void find_asker(struct dnsproxy *p, int proto, const struct sockaddr_storage *peer,
		       int lfd, struct dns_event *ev)
{
	__u64 cookie = asker_cookie(p, proto, peer, lfd);

	if (cookie && !own_asker(p, cookie, &ev->asker))
		ev->have_asker = true;
}

/*
 * find_asker() for the UDP loop, remembering the sockets it found: a socket
 * that this run's programs redirected here once is theirs for good (a
 * socket's cgroup never changes, and a cookie is never reused while the
 * machine runs), so its next query skips the weir_askers lookup, a system
 * call (~1-2 us here). sock_diag is still asked every time: the asker is
 * the socket that sent this datagram, never one that had its port before.
 * Who it is (pid, thread, comm) may have changed since (another process
 * sharing it): FRESH (an events file wants them on every query, a refusal
 * line names them) looks it up again. *COOKIE: for that.
 */
static void udp_asker(struct dnsproxy *p, const struct sockaddr_storage *peer, int lfd,
		      bool fresh, struct dns_event *ev, __u64 *cookie)
{
	unsigned int i;

	*cookie = asker_cookie(p, IPPROTO_UDP, peer, lfd);
	if (!*cookie)
		return;
	i = *cookie % ASKERS_KEPT;
	if (!fresh && p->asker_seen[i] == *cookie) {
		ev->asker = p->asker[i];
		ev->have_asker = true;
		return;
	}
	if (own_asker(p, *cookie, &ev->asker))
		return;
	ev->have_asker = true;
	p->asker_seen[i] = *cookie;
	p->asker[i] = ev->asker;
}

/*
 * Judge a query. Returns 1 to forward it (ranges in r/nr), 0 when resp
 * holds the reply to send instead (*resplen bytes; 0: drop).
 */
static int judge(struct dnsproxy *p, const __u8 *q, size_t qlen, struct dns_event *ev,
		 struct weir_portrange *r, size_t *nr, __u8 *resp, int *resplen)
{
	bool audit = p->cfg.policy->mode == POLICY_AUDIT;
	int allowed;

	ev->rcode = -1;
	if (dns_parse_query(q, qlen, &ev->q)) {
		*resplen = 0; /* not a query we can read: no answer at all */
		return 0;
	}
	allowed = dns_judge_name(p->cfg.policy, ev->q.name, &ev->rule, r, nr);
	if (allowed) {
		ev->verdict = WEIR_V_ALLOW;
		ev->reason = "allowed-name";
		return 1;
	}
	ev->reason = WEIR_RULE_KIND(ev->rule) == WEIR_RK_DENY ? "deny-rule" : "name-not-allowed";
	if (audit) {
		ev->verdict = WEIR_V_WOULD_DENY;
		return 1;
	}
	ev->verdict = WEIR_V_DENY;
	ev->rcode = 5; /* REFUSED */
	*resplen = dns_refused(q, qlen, EDE_TEXT, resp, DNS_MSG_MAX);
	if (*resplen < 0)
		*resplen = 0;
	return 0;
}

/* An upstream answer: learn its addresses, then it may be released. */
static void learn_answer(struct dnsproxy *p, const __u8 *a, size_t alen, struct dns_event *ev,
			 const struct weir_portrange *r, size_t nr)
{
	struct resolved_addr addrs[64];
	int n, i, kept = 0;

	n = dns_parse_answer(a, alen, &ev->q, addrs, 64, &ev->rcode);
	if (n <= 0)
		return;
	/* The event says what the upstream answered; learned is what passes. */
	ev->n_answers = (size_t)n < DNS_EVENT_ANSWERS ? (size_t)n : DNS_EVENT_ANSWERS;
	memcpy(ev->answers, addrs, ev->n_answers * sizeof(addrs[0]));
	for (i = 0; i < n; i++)
		if (compile_name_addr_ok(p->cfg.policy, &addrs[i]))
			addrs[kept++] = addrs[i];
	if (kept < n)
		pr_warn("%s: %d loopback or unspecified address(es) in the answer not allowed\n",
			ev->q.name, n - kept);
	if (ev->verdict == WEIR_V_ALLOW && p->cfg.learn && kept)
		learn_add(p->cfg.learn, ev->q.name, r, nr, addrs, kept);
	else if (ev->verdict == WEIR_V_WOULD_DENY && p->cfg.learn && kept)
		learn_seen(p->cfg.learn, ev->q.name, addrs, kept); /* to name them */
}

static void report(struct dnsproxy *p, struct dns_event *ev)
{
	ev->took_ns = now_ns() - ev->asked_ns;
	if (p->cfg.on_event)
		p->cfg.on_event(p->cfg.ctx, ev);
}

/* The program gets SERVFAIL for an allowed name: mark the event so. */
static void upstream_failed(struct dns_event *ev, int err)
{
	ev->rcode = 2; /* SERVFAIL */
	ev->reason = dns_upstream_reason(err);
	ev->upstream_failed = true;
}

/*
 * An answer came back from U: SERVFAIL is the upstream failing too, and so
 * is REFUSED (a server that will not resolve for weir), relayed as it is.
 */
static void upstream_answered(const struct dns_upstream *u, struct dns_event *ev)
{
	if (ev->rcode == 5) {
		dns_upstream_note(u, DNS_UPSTREAM_REFUSED);
		if (ev->verdict != WEIR_V_DENY) {
			ev->reason = dns_upstream_reason(DNS_UPSTREAM_REFUSED);
			ev->upstream_failed = true;
		}
		return;
	}
	if (ev->rcode != 2) {
		dns_upstream_note(u, 0);
		return;
	}
	dns_upstream_note(u, -EREMOTEIO);
	if (ev->verdict != WEIR_V_DENY)
		upstream_failed(ev, -EREMOTEIO);
}

/* --- UDP ------------------------------------------------------------------- */

/*
 * The retry timer ticks only while queries wait: an idle resolver (a daemon
 * has hundreds) never wakes for it. It is armed by the first query and
 * disarmed by a tick that finds none waiting, not by the answer: arming and
 * disarming it around every query were two timerfd_settime() calls, ~3 us
 * of each query's time (and latency) here. An idle resolver wakes once more
 * after its last query, at most 100 ms later.
 */
static void pend_timer(struct dnsproxy *p, bool on)
{
	struct itimerspec its = {};

	if (on == p->timer_on)
		return;
	if (on)
		its.it_interval.tv_nsec = its.it_value.tv_nsec = 100 * 1000 * 1000;
	if (p->timerfd >= 0 && !timerfd_settime(p->timerfd, 0, &its, NULL))
		p->timer_on = on;
}

static const struct dns_upstream *pend_upstream(struct dnsproxy *p, const struct pending *pd)
{
	return &p->cfg.up[pd->attempt % p->cfg.n_up];
}

/*
 * A socket to a loopback upstream (systemd-resolved's 127.0.0.53, a local
 * dnsmasq) serves the slot's next query too: a new socket per query was a
 * quarter of the resolver's time (socket, connect, two epoll_ctl, close).
 * Only loopback, and only after an answer: a fresh random source port per
 * query is what keeps an off-path attacker from guessing where to send a
 * forged answer (RFC 5452), and on loopback nobody is off-path (a
 * connected socket takes datagrams from the upstream's address and port
 * alone, and 127/8 never arrives from outside). A query that timed out
 * or failed never leaves its socket to the next. Not when the upstream's
 * port is one any user may bind (upstream_bindable()), and at most
 * MAX_KEPT: a burst of queries would otherwise leave a socket open per
 * slot, up to MAX_PENDING of them, for the rest of the run.
 */
static bool keep_up(const struct dns_upstream *u)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&u->sa;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&u->sa;

	if (u->sa.ss_family == AF_INET)
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	return u->sa.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

/* The first port of this network namespace a process without
 * CAP_NET_BIND_SERVICE may bind (1024 unless changed; 0 in some container
 * set-ups). */
static unsigned int unpriv_port_start(void)
{
	unsigned int v = 1024;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");

	if (f) {
		if (fscanf(f, "%u", &v) != 1)
			v = 1024;
		fclose(f);
	}
	return v;
}

/*
 * A loopback upstream on a port any user may bind: a process of this
 * machine, the command weir guards among them, can bind it too beside the
 * server (dnsmasq sets SO_REUSEADDR, which lets anyone share a UDP port)
 * or while it is down, and answer weir's queries itself: weir would learn
 * the addresses it chose for an allowed name. Said once per account of
 * upstreams (an attachment's: weir run through the daemon shows it).
 */
static bool upstream_bindable(const struct dns_upstream *u, unsigned int start)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&u->sa;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&u->sa;
	unsigned int port = ntohs(u->sa.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
	struct dns_health *t = health_table(u);
	char host[INET6_ADDRSTRLEN] = "?";
	bool say;

	if (!keep_up(u) || port < start)
		return false;
	pthread_mutex_lock(&t->mu);
	say = !t->bindable_said;
	t->bindable_said = true;
	pthread_mutex_unlock(&t->mu);
	if (!say)
		return true;
	inet_ntop(u->sa.ss_family,
		  u->sa.ss_family == AF_INET ? (const void *)&s4->sin_addr :
					       (const void *)&s6->sin6_addr,
		  host, sizeof(host));
	upstream_say(t, LOG_LEVEL_WARN,
		     "upstream nameserver %s port %u is on loopback at a port any local user may "
		     "bind (ip_unprivileged_port_start is %u): a process of this machine could "
		     "answer for it; use a port below that (docs/threat-model.md)",
		     host, port, start);
	return true;
}

/* Which upstreams' sockets may be kept between queries (keep_up()). */
static __u32 keep_mask(const struct dnsproxy_cfg *cfg)
{
	unsigned int start = unpriv_port_start();
	__u32 mask = 0;
	size_t i;

	for (i = 0; i < cfg->n_up && i < 32; i++)
		if (keep_up(&cfg->up[i]) && !upstream_bindable(&cfg->up[i], start))
			mask |= 1u << i;
	return mask;
}

/* Free a slot; KEEP: its query was answered, its socket may serve the next. */
static void pend_free(struct dnsproxy *p, struct pending *pd, bool keep)
{
	int fd = pd->upfd, up = pd->attempt % (int)p->cfg.n_up;

	keep = keep && fd >= 0 && up < 32 && (p->keep_mask & (1u << up)) && p->n_kept < MAX_KEPT;
	if (fd >= 0 && !keep) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
		close(fd);
	}
	if (pd->query)
		p->n_pend--; /* the timer's next tick disarms it (pend_timer()) */
	free(pd->query);
	memset(pd, 0, sizeof(*pd));
	pd->upfd = keep ? fd : -1;
	pd->kept = keep;
	pd->kept_up = up;
	p->n_kept += keep;
}

/* A slot's kept socket is taken (by its next query) or closed. */
static void unkeep(struct dnsproxy *p, struct pending *pd)
{
	if (pd->kept)
		p->n_kept--;
	pd->kept = false;
}

/* Close the sockets free slots kept (the loop's epoll set goes at stop). */
static void close_kept(struct dnsproxy *p)
{
	int i;

	for (i = 0; i < p->pend_hi; i++) {
		struct pending *pd = &p->pend[i];

		if (!pd->kept)
			continue;
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, pd->upfd, NULL);
		close(pd->upfd);
		pd->upfd = -1;
		unkeep(p, pd);
	}
}

static int pend_send(struct dnsproxy *p, struct pending *pd)
{
	const struct dns_upstream *u = pend_upstream(p, pd);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = pd };

	if (pd->kept && pd->kept_up == pd->attempt % (int)p->cfg.n_up) {
		unkeep(p, pd);
		if (send(pd->upfd, pd->query, pd->qlen, 0) < 0)
			return -errno;
		pd->deadline_ms = now_ms() + UDP_TIMEOUT_MS;
		return 0;
	}
	unkeep(p, pd);
	if (pd->upfd >= 0) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, pd->upfd, NULL);
		close(pd->upfd);
	}
	pd->upfd = socket(u->sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (pd->upfd < 0)
		return -errno;
	if (connect(pd->upfd, (const struct sockaddr *)&u->sa, u->len) ||
	    send(pd->upfd, pd->query, pd->qlen, 0) < 0 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, pd->upfd, &ev))
		return -errno;
	pd->deadline_ms = now_ms() + UDP_TIMEOUT_MS;
	return 0;
}

static void udp_reply(struct pending *pd, const __u8 *buf, size_t len)
{
	if (len)
		sendto(pd->lfd, buf, len, 0, (struct sockaddr *)&pd->client, pd->clen);
}

static unsigned int stranger_key(const struct sockaddr_storage *sa, __u8 key[18])
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	unsigned int h = 2166136261u, i;

	memset(key, 0, 18);
	if (sa->ss_family == AF_INET) {
		memcpy(key, &s4->sin_addr, 4);
		memcpy(key + 16, &s4->sin_port, 2);
	} else {
		memcpy(key, &s6->sin6_addr, 16);
		memcpy(key + 16, &s6->sin6_port, 2);
	}
	for (i = 0; i < 18; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % STRANGERS_KEPT;
}

/*
 * R7-8: a process outside the run can send datagrams to the resolver's
 * port, and each cost a sock_diag round trip before it was dropped: a
 * flood left the run's own queries unanswered. A source found to be no
 * asker is dropped unasked for STRANGER_MS. It only makes a flood from one
 * socket cheap (one from many ports still costs a lookup per new port),
 * and a socket of the run that gets a port a stranger had within that
 * second has its queries dropped until then (its client asks again).
 */
static bool udp_stranger(struct dnsproxy *p, const struct sockaddr_storage *sa)
{
	__u8 key[18];
	struct stranger *st = &p->strangers[stranger_key(sa, key)];

	return st->until_ms > now_ms() && !memcmp(st->key, key, sizeof(key));
}

static void udp_stranger_add(struct dnsproxy *p, const struct sockaddr_storage *sa)
{
	__u8 key[18];
	struct stranger *st = &p->strangers[stranger_key(sa, key)];

	memcpy(st->key, key, sizeof(key));
	st->until_ms = now_ms() + STRANGER_MS;
}

/* One query from CLIENT: judged, then refused, forwarded or dropped. */
static void udp_query(struct dnsproxy *p, int lfd, const __u8 *buf, ssize_t n,
		      const struct sockaddr_storage *client, socklen_t clen)
{
	__u8 *resp = p->resp, clean[DNS_CLEAN_MAX];
	struct pending *pd = NULL;
	struct dns_event ev = { .protocol = IPPROTO_UDP, .asked_ns = now_ns() };
	struct weir_portrange r[WEIR_LEARN_RANGES];
	size_t nr, i;
	int resplen, fwd;
	__u64 cookie;

	if (n <= 0)
		return;
	/* Before any answer: the asker's socket may close right after it. */
	/* Only queries this run's programs redirected here are served: other
	 * runs' commands and host processes can reach 127.0.0.1 too. */
	if (udp_stranger(p, client))
		return;
	udp_asker(p, client, lfd, p->cfg.attribute_all, &ev, &cookie);
	if (!ev.have_asker) {
		udp_stranger_add(p, client);
		return;
	}
	fwd = judge(p, buf, n, &ev, r, &nr, resp, &resplen);
	if (fwd) { /* the question judged, and nothing else of the asker's */
		n = dns_clean_query(buf, n, clean, sizeof(clean));
		buf = clean;
		fwd = n > 0;
		resplen = 0;
	}
	if (ev.q.name[0] && ev.verdict != WEIR_V_ALLOW && !p->cfg.attribute_all)
		egress_asker(p->cfg.egress, cookie, &ev.asker); /* named in its line */
	if (!fwd) {
		if (resplen)
			sendto(lfd, resp, resplen, 0, (struct sockaddr *)client, clen);
		if (ev.q.name[0])
			report(p, &ev);
		return;
	}
	for (i = 0; i < MAX_PENDING && !pd; i++)
		if (!p->pend[i].query)
			pd = &p->pend[i];
	if (!pd || !(pd->query = malloc(n))) {
		pr_warn("resolver busy: %d queries in flight; answering SERVFAIL\n", MAX_PENDING);
		resplen = dns_servfail(buf, n, resp, DNS_MSG_MAX);
		if (resplen > 0)
			sendto(lfd, resp, resplen, 0, (struct sockaddr *)client, clen);
		return;
	}
	if (pd - p->pend >= p->pend_hi)
		p->pend_hi = pd - p->pend + 1;
	p->n_pend++;
	pend_timer(p, true);
	if (!pd->kept)
		pd->upfd = -1;
	memcpy(pd->query, buf, n);
	pd->qlen = n;
	pd->lfd = lfd;
	pd->client = *client;
	pd->clen = clen;
	pd->ev = ev;
	memcpy(pd->r, r, sizeof(r));
	pd->nr = nr;
	pd->err = pend_send(p, pd);
	if (pd->err)
		pd->deadline_ms = 0; /* let the timer retry or fail it */
}

/*
 * The queries waiting on a listener, up to UDP_BATCH in one recvmmsg(): under
 * load a wakeup finds several, and one epoll_wait() and recvfrom() each was
 * a tenth of the resolver's time (a system call is ~1 us in this kind of VM).
 * One waiting costs the same single call as recvfrom().
 */
static void udp_queries(struct dnsproxy *p, int lfd)
{
	struct sockaddr_storage cl[UDP_BATCH];
	struct mmsghdr m[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	int i, n;

	for (i = 0; i < UDP_BATCH; i++) {
		iov[i] = (struct iovec){ .iov_base = p->qbuf[i], .iov_len = DNS_MSG_MAX };
		m[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &cl[i],
						      .msg_namelen = sizeof(cl[i]),
						      .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	n = recvmmsg(lfd, m, UDP_BATCH, MSG_DONTWAIT, NULL);
	for (i = 0; i < n; i++)
		udp_query(p, lfd, p->qbuf[i], m[i].msg_len, &cl[i], m[i].msg_hdr.msg_namelen);
}

static void udp_answer(struct dnsproxy *p, struct pending *pd)
{
	__u8 *buf = p->buf;
	ssize_t n;

	n = recv(pd->upfd, buf, DNS_MSG_MAX, 0);
	if (!pd->query) /* a kept socket, idle: a late duplicate */
		return;
	if (n < 0 && (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)) {
		/* An ICMP error on the connected socket: no need to wait for
		 * the timeout, the timer moves on at its next tick. */
		pd->err = -errno;
		pd->deadline_ms = 0;
		return;
	}
	if (n <= 0)
		return;
	/* Only the answer to this query (the socket is connected, so only the
	 * upstream can send; the id and question must match too). */
	if (n < 12 || ((buf[0] << 8) | buf[1]) != pd->ev.q.id)
		return;
	learn_answer(p, buf, n, &pd->ev, pd->r, pd->nr);
	upstream_answered(pend_upstream(p, pd), &pd->ev);
	udp_reply(pd, buf, n); /* after learn: the first connect finds the address */
	report(p, &pd->ev);
	pend_free(p, pd, true);
}

static void udp_timeouts(struct dnsproxy *p)
{
	__u8 *resp = p->resp;
	__u64 now = now_ms();
	int i, n, err;

	for (i = 0; p->n_pend && i < p->pend_hi; i++) {
		struct pending *pd = &p->pend[i];

		if (!pd->query || pd->deadline_ms > now)
			continue;
		err = pd->err ?: -ETIMEDOUT;
		dns_upstream_note(pend_upstream(p, pd), err);
		if (++pd->attempt < (int)p->cfg.n_up * 2) {
			pd->err = pend_send(p, pd);
			if (!pd->err)
				continue;
			pd->deadline_ms = 0; /* this one failed at once: next tick */
			continue;
		}
		n = dns_servfail(pd->query, pd->qlen, resp, DNS_MSG_MAX);
		if (n > 0)
			udp_reply(pd, resp, n);
		upstream_failed(&pd->ev, err);
		report(p, &pd->ev);
		pend_free(p, pd, false);
	}
	if (!p->n_pend)
		pend_timer(p, false);
}

/* --- TCP: a thread per connection (rare, and simpler blocking) -------------- */

struct tcp_client {
	struct dnsproxy *p;
	int fd, lfd, slot;
	struct sockaddr_storage peer;
};

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = recv(fd, (char *)buf + got, len - got, 0);
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		got += n;
	}
	return 0;
}

static int write_msg(int fd, const __u8 *msg, size_t len)
{
	__u8 hdr[2] = { len >> 8, len & 0xff };

	if (send(fd, hdr, 2, MSG_NOSIGNAL | MSG_MORE) != 2 ||
	    send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -EPIPE;
	return 0;
}

static int read_msg(int fd, __u8 *buf, size_t *len)
{
	__u8 hdr[2];
	int err;

	err = read_full(fd, hdr, 2);
	*len = (hdr[0] << 8) | hdr[1];
	return err ?: read_full(fd, buf, *len);
}

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A blocking socket's SO_SNDTIMEO/SO_RCVTIMEO running out is a timeout. */
static int io_error(int err)
{
	return err == -EAGAIN || err == -EWOULDBLOCK || err == -EINPROGRESS ? -ETIMEDOUT : err;
}

int dns_tcp_exchange(const struct dns_upstream *u, const __u8 *q, size_t qlen, __u8 *ans,
		     size_t *alen)
{
	int fd, err;

	fd = socket(u->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_timeouts(fd, TCP_TIMEOUT_MS);
	if (connect(fd, (const struct sockaddr *)&u->sa, u->len))
		err = io_error(-errno);
	else if (write_msg(fd, q, qlen))
		err = -EPIPE;
	else
		err = io_error(read_msg(fd, ans, alen));
	close(fd);
	return err;
}

/* Ask the upstreams over TCP in turn; the answer goes to ans, and *from
 * is the one that gave it. Returns the last failure if none did. */
static int tcp_forward(struct dnsproxy *p, const __u8 *q, size_t qlen, __u8 *ans, size_t *alen,
		       const struct dns_upstream **from)
{
	int err = -EHOSTUNREACH;
	size_t i;

	for (i = 0; i < p->cfg.n_up; i++) {
		*from = &p->cfg.up[i];
		err = dns_tcp_exchange(*from, q, qlen, ans, alen);
		if (!err)
			return 0;
		dns_upstream_note(*from, err);
	}
	return err;
}

static void tcp_one(struct tcp_client *c, __u8 *q, size_t qlen, __u8 *resp)
{
	struct dns_event ev = { .protocol = IPPROTO_TCP, .asked_ns = now_ns() };
	struct weir_portrange r[WEIR_LEARN_RANGES];
	const struct dns_upstream *from = NULL;
	__u8 clean[DNS_CLEAN_MAX];
	size_t nr, alen;
	int resplen, fwd, err = 0, cl = 0;

	fwd = judge(c->p, q, qlen, &ev, r, &nr, resp, &resplen);
	find_asker(c->p, IPPROTO_TCP, &c->peer, c->lfd, &ev);
	if (fwd) { /* the question judged, and nothing else of the asker's */
		cl = dns_clean_query(q, qlen, clean, sizeof(clean));
		fwd = cl > 0;
		resplen = 0;
	}
	if (fwd)
		err = tcp_forward(c->p, clean, (size_t)cl, resp, &alen, &from);
	if (!fwd) {
		if (resplen)
			write_msg(c->fd, resp, resplen);
	} else if (err) {
		resplen = dns_servfail(q, qlen, resp, DNS_MSG_MAX);
		if (resplen > 0)
			write_msg(c->fd, resp, resplen);
		upstream_failed(&ev, err);
	} else {
		learn_answer(c->p, resp, alen, &ev, r, nr);
		upstream_answered(from, &ev);
		write_msg(c->fd, resp, alen);
	}
	if (ev.q.name[0])
		report(c->p, &ev);
}

static void *tcp_main(void *arg)
{
	struct tcp_client *c = arg;
	__u8 *q = malloc(DNS_MSG_MAX), *resp = malloc(DNS_MSG_MAX);
	size_t qlen;

	struct dns_event who = {};

	set_timeouts(c->fd, 10000); /* idle clients go after 10 s */
	/* Only connections this run's programs redirected here. */
	find_asker(c->p, IPPROTO_TCP, &c->peer, c->lfd, &who);
	while (who.have_asker && q && resp && !atomic_load(&c->p->stop) &&
	       !read_msg(c->fd, q, &qlen))
		tcp_one(c, q, qlen, resp);
	free(q);
	free(resp);
	sockdiag_close();
	pthread_mutex_lock(&c->p->tcp_mu);
	c->p->tcp_fds[c->slot] = -1;
	pthread_mutex_unlock(&c->p->tcp_mu);
	close(c->fd);
	atomic_fetch_sub(&c->p->tcp_clients, 1);
	free(c);
	return NULL;
}

static void tcp_accept(struct dnsproxy *p, int lfd)
{
	struct tcp_client *c;
	socklen_t len;
	pthread_t t;
	int fd;

	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	len = sizeof(c->peer);
	fd = accept4(lfd, (struct sockaddr *)&c->peer, &len, SOCK_CLOEXEC);
	if (fd < 0 || atomic_fetch_add(&p->tcp_clients, 1) >= MAX_TCP_CLIENTS) {
		if (fd >= 0) {
			atomic_fetch_sub(&p->tcp_clients, 1);
			close(fd);
		}
		free(c);
		return;
	}
	c->p = p;
	c->fd = fd;
	c->lfd = lfd;
	pthread_mutex_lock(&p->tcp_mu);
	for (c->slot = 0; c->slot < MAX_TCP_CLIENTS && p->tcp_fds[c->slot] >= 0; c->slot++)
		;
	if (c->slot < MAX_TCP_CLIENTS)
		p->tcp_fds[c->slot] = fd;
	pthread_mutex_unlock(&p->tcp_mu);
	if (c->slot == MAX_TCP_CLIENTS || pthread_create(&t, NULL, tcp_main, c)) {
		if (c->slot < MAX_TCP_CLIENTS) {
			pthread_mutex_lock(&p->tcp_mu);
			p->tcp_fds[c->slot] = -1;
			pthread_mutex_unlock(&p->tcp_mu);
		}
		atomic_fetch_sub(&p->tcp_clients, 1);
		close(fd);
		free(c);
		return;
	}
	pthread_detach(t);
}

/* --- the loop --------------------------------------------------------------- */

static void *proxy_main(void *arg)
{
	struct dnsproxy *p = arg;
	struct epoll_event evs[64];
	__u64 ticks, last_expire = now_ms();
	int i, n;

	while (!atomic_load(&p->stop)) {
		n = epoll_wait(p->epfd, evs, 64, 1000);
		for (i = 0; i < n; i++) {
			void *d = evs[i].data.ptr;

			if (d == &p->lfd[L_UDP4] || d == &p->lfd[L_UDP6])
				udp_queries(p, *(int *)d);
			else if (d == &p->lfd[L_TCP4] || d == &p->lfd[L_TCP6])
				tcp_accept(p, *(int *)d);
			else if (d == &p->timerfd) {
				if (read(p->timerfd, &ticks, sizeof(ticks)) > 0)
					udp_timeouts(p);
			} else if (d != &p->stopfd) {
				udp_answer(p, d);
			}
		}
		if (p->cfg.learn && now_ms() - last_expire >= 1000) {
			learn_expire(p->cfg.learn);
			last_expire = now_ms();
		}
	}
	sockdiag_close();
	return NULL;
}

static void close_loop_fds(struct dnsproxy *p)
{
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->timerfd >= 0)
		close(p->timerfd);
	if (p->stopfd >= 0)
		close(p->stopfd);
	p->epfd = p->timerfd = p->stopfd = -1;
}

int dnsproxy_start(struct dnsproxy *p, const struct dnsproxy_cfg *cfg)
{
	struct itimerspec its = { .it_interval = { 0, 100 * 1000 * 1000 },
				  .it_value = { 0, 100 * 1000 * 1000 } };
	struct epoll_event ev = { .events = EPOLLIN };
	int i, err;

	if (!cfg->n_up) {
		pr_warn("no upstream nameserver for weir's resolver (none in /etc/resolv.conf; "
			"set dns.upstream in the policy)\n");
		return -EINVAL;
	}
	if (p->running || p->busy)
		return -EBUSY;
	p->cfg = *cfg;
	memset(p->asker_seen, 0, sizeof(p->asker_seen)); /* another egress, maybe */
	memset(p->strangers, 0, sizeof(p->strangers));
	p->keep_mask = keep_mask(cfg);
	close_loop_fds(p); /* a restart (dnsproxy_stop, then start again) */
	atomic_store(&p->stop, false);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->epfd < 0 || p->timerfd < 0 || p->stopfd < 0 ||
	    timerfd_settime(p->timerfd, 0, p->n_pend ? &its : &(struct itimerspec){}, NULL))
		return -errno;
	p->timer_on = p->n_pend > 0;
	for (i = 0; i < NLISTEN; i++) {
		if (p->lfd[i] < 0)
			continue;
		ev.data.ptr = &p->lfd[i];
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->lfd[i], &ev))
			return -errno;
	}
	ev.data.ptr = &p->timerfd;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->timerfd, &ev))
		return -errno;
	ev.data.ptr = &p->stopfd;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->stopfd, &ev))
		return -errno;
	err = pthread_create(&p->thread, NULL, proxy_main, p);
	if (err)
		return -err;
	p->running = true;
	return 0;
}

/* End the TCP client threads: shut their sockets down, wait (bounded). */
static bool stop_tcp_clients(struct dnsproxy *p)
{
	int i;

	pthread_mutex_lock(&p->tcp_mu);
	for (i = 0; i < MAX_TCP_CLIENTS; i++)
		if (p->tcp_fds[i] >= 0)
			shutdown(p->tcp_fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&p->tcp_mu);
	/* Each waits at most for its upstream exchanges (TCP_TIMEOUT_MS each). */
	for (i = 0; i < 2000 && atomic_load(&p->tcp_clients) > 0; i++)
		usleep(10 * 1000);
	return atomic_load(&p->tcp_clients) == 0;
}

/*
 * Queries still waiting when the resolver stops, on an upstream that has
 * failed them once already (a timeout, ICMP): the program gave up before
 * weir did, and they count as failed, not as nothing. The others were
 * simply cut short.
 */
static void report_unanswered(struct dnsproxy *p)
{
	int i;

	for (i = 0; i < p->pend_hi; i++) {
		struct pending *pd = &p->pend[i];
		int err = pd->err;

		if (!pd->query)
			continue;
		if (!err && (pd->attempt || dns_upstream_failing(pend_upstream(p, pd))))
			err = -ETIMEDOUT;
		if (err) {
			upstream_failed(&pd->ev, err);
			report(p, &pd->ev);
		}
		pend_free(p, pd, false);
	}
}

void dnsproxy_stop(struct dnsproxy *p)
{
	__u64 one = 1;

	if (!p || !p->running)
		return;
	p->running = false;
	atomic_store(&p->stop, true);
	if (write(p->stopfd, &one, sizeof(one)) < 0)
		pr_debug("resolver stop: %s\n", strerror(errno));
	pthread_join(p->thread, NULL);
	report_unanswered(p);
	close_kept(p);
	if (!stop_tcp_clients(p)) {
		/* A client thread still runs (an upstream slower than its
		 * timeouts): leave p to it rather than free under it. */
		pr_warn("a DNS-over-TCP client is still being served; not freeing it\n");
		p->busy = true;
	}
}

void dnsproxy_free(struct dnsproxy *p)
{
	int i;

	if (!p)
		return;
	dnsproxy_stop(p);
	if (p->busy)
		return;
	for (i = 0; i < p->pend_hi; i++)
		if (p->pend[i].query)
			pend_free(p, &p->pend[i], false);
	for (i = 0; i < NLISTEN; i++)
		if (p->lfd[i] >= 0)
			close(p->lfd[i]);
	close_loop_fds(p);
	munmap(p, sizeof(*p));
}

int dns_parse_upstream(const char *s, struct dns_upstream *u)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&u->sa;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&u->sa;
	char host[INET6_ADDRSTRLEN + 2];
	const char *port = NULL, *end;
	unsigned long pn = 53;
	char *e;

	memset(u, 0, sizeof(*u));
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || (size_t)(end - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, end - s - 1);
		host[end - s - 1] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		end = strchr(s, ':');
		if (end && strchr(end + 1, ':'))
			end = NULL; /* bare IPv6 */
		if (strlen(s) >= sizeof(host))
			return -EINVAL;
		strcpy(host, s);
		if (end) {
			host[end - s] = '\0';
			port = end + 1;
		}
	}
	if (port) {
		errno = 0;
		pn = strtoul(port, &e, 10);
		if (errno || *e || !*port || pn < 1 || pn > 65535)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(pn);
		u->len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(pn);
		u->len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}
