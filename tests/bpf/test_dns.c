// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2, DNS-aware paths: port 53 goes to weir's resolver address whatever
 * the program asked, replies appear to come from the server it asked, and
 * addresses in weir_learn allow until they expire, never over a deny rule.
 * The test plays weir's resolver itself on 127.0.0.1/::1:RESOLVER_PORT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "harness.h"
#include "learn.h"
#include "log.h"

#define RESOLVER_PORT 5399

static const char *const policy =
	"version: 1\n"
	"loopback: deny\n"
	"allow:\n"
	"  - domain: allowed.test\n" /* allow[0] */
	"    ports: [8080]\n"
	"deny:\n"
	"  - ip: 192.0.2.9\n"; /* deny[0] */

static struct harness h;

static void setup(void)
{
	struct egress_opts o = { .lpm_entries = 1024, .portsets = 64, .slots = 4,
				 .ringbuf_bytes = 1 << 20, .task_info = -1,
				 .dns_port = RESOLVER_PORT, .dns_ip4 = htonl(INADDR_LOOPBACK) };

	o.dns_ip6[3] = htonl(1);
	h_netns();
	h_start(&h, policy, &o);
}

static void teardown(void)
{
	h_stop(&h);
}

TestSuite(dns, .init = setup, .fini = teardown, .timeout = 30);

static __u64 boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void learn(const char *addr, int port, __s64 ttl_s)
{
	struct weir_learn_key k = {};
	struct weir_learn_val v = { .n = 1, .domain_id = 7 };

	h_addr(addr, k.addr);
	k.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	v.r[0] = (struct weir_portrange){ .lo = port, .hi = port, .protos = WEIR_P_TCP,
					  .rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0) };
	v.expires_ns = boot_ns() + ttl_s * 1000000000LL;
	cr_assert_eq(egress_learn_set(h.eg, &k, &v), 0);
}

Test(dns, learned_address_allows_until_it_expires)
{
	int l = h_listen_tcp("203.0.113.9", 8080);
	struct probe p = { P_TCP, AF_INET, "203.0.113.9", 8080 };
	const struct weir_event *e;

	cr_assert_eq(h_probe(&h, &p, NULL), EPERM, "not learned yet");
	learn("203.0.113.9", 8080, 60);
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l));
	e = h_events(&h);
	cr_expect_eq(e->reason, WEIR_R_LEARNED);
	cr_expect_eq(e->domain_id, 7);
	cr_expect_eq(e->rule, WEIR_RULE_ID(WEIR_RK_ALLOW, 0));
	learn("203.0.113.9", 8080, -1); /* expired, not yet swept */
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM, "an expired address still allowed");
	cr_assert_not(h_tcp_got(l));
}

Test(dns, learned_address_keeps_the_rules_ports)
{
	int l = h_listen_tcp("203.0.113.9", 9090);
	struct probe p = { P_TCP, AF_INET, "203.0.113.9", 9090 };

	learn("203.0.113.9", 8080, 60);
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	cr_expect_eq(h_events(&h)->reason, WEIR_R_PORT);
	cr_expect_eq(h_events(&h)->domain_id, 7, "a port denial names the name too");
	p.mode = P_UDP_SENDTO;
	p.port = 8080;
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM, "tcp-only learned address allowed udp");
}

Test(dns, deny_rule_beats_learned_address)
{
	int l = h_listen_tcp("192.0.2.9", 8080);
	struct probe p = { P_TCP, AF_INET, "192.0.2.9", 8080 };

	learn("192.0.2.9", 8080, 60);
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	cr_expect_eq(h_events(&h)->rule, WEIR_RULE_ID(WEIR_RK_DENY, 0));
}

Test(dns, learned_ipv6_and_mapped)
{
	int l6 = h_listen_tcp("2001:db8::2", 8080), l4 = h_listen_tcp("203.0.113.9", 8080);
	struct probe p = { P_TCP, AF_INET6, "2001:db8::2", 8080 };

	learn("2001:db8::2", 8080, 60);
	learn("203.0.113.9", 8080, 60);
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l6));
	p.addr = "::ffff:203.0.113.9"; /* a learned IPv4 address, reached mapped */
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l4));
}

/* --- redirect -------------------------------------------------------------- */

struct exchange {
	int family; /* socket */
	int type;
	const char *server; /* what the program asks */
	int connect_first;
};

/*
 * In the cgroup: send a query to server:53, read the reply, and check it
 * claims to come from server:53 (recvfrom for unconnected UDP, getpeername
 * when connected). 0 on success, 1 wrong source, else errno.
 */
static int do_exchange(void *arg)
{
	const struct exchange *x = arg;
	struct sockaddr_storage ss = {}, from = {};
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	socklen_t len, flen = sizeof(from);
	struct pollfd pfd;
	char buf[64];
	int fd;

	if (inet_pton(AF_INET, x->server, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(53);
		len = sizeof(*s4);
	} else {
		inet_pton(AF_INET6, x->server, &s6->sin6_addr);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(53);
		len = sizeof(*s6);
	}
	fd = socket(x->family, x->type, 0);
	if (fd < 0)
		return errno;
	if (x->connect_first || x->type == SOCK_STREAM) {
		if (connect(fd, (struct sockaddr *)&ss, len) || send(fd, "q", 1, 0) != 1)
			return errno;
		if (getpeername(fd, (struct sockaddr *)&from, &flen))
			return errno;
	} else if (sendto(fd, "q", 1, 0, (struct sockaddr *)&ss, len) != 1) {
		return errno;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 2000) != 1)
		return ETIMEDOUT;
	if (x->type == SOCK_DGRAM && !x->connect_first) {
		flen = sizeof(from);
		if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen) <= 0)
			return errno;
	} else if (recv(fd, buf, sizeof(buf), 0) <= 0) {
		return errno;
	}
	if (from.ss_family == AF_INET)
		return ((struct sockaddr_in *)&from)->sin_port == htons(53) &&
				       !memcmp(&((struct sockaddr_in *)&from)->sin_addr,
					       &s4->sin_addr, 4) ?
			       0 :
			       1;
	if (ss.ss_family == AF_INET) /* asked IPv4 on an IPv6 socket: mapped */
		return ((struct sockaddr_in6 *)&from)->sin6_port == htons(53) &&
				       !memcmp(&((struct sockaddr_in6 *)&from)->sin6_addr.s6_addr[12],
					       &s4->sin_addr, 4) ?
			       0 :
			       1;
	return ((struct sockaddr_in6 *)&from)->sin6_port == htons(53) &&
			       !memcmp(&((struct sockaddr_in6 *)&from)->sin6_addr, &s6->sin6_addr, 16) ?
		       0 :
		       1;
}

/* Play the resolver: answer one message, on UDP or TCP. */
static bool serve_one(int udp, int tcp)
{
	struct pollfd pfd[2] = { { .fd = udp, .events = POLLIN }, { .fd = tcp, .events = POLLIN } };
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char buf[64];
	int c;

	if (poll(pfd, 2, 2000) <= 0)
		return false;
	if (pfd[0].revents) {
		if (recvfrom(udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen) <= 0)
			return false;
		return sendto(udp, "a", 1, 0, (struct sockaddr *)&from, flen) == 1;
	}
	c = accept(tcp, NULL, NULL);
	if (c < 0)
		return false;
	pfd[0] = (struct pollfd){ .fd = c, .events = POLLIN };
	if (poll(pfd, 1, 2000) != 1 || recv(c, buf, sizeof(buf), 0) <= 0 || send(c, "a", 1, 0) != 1) {
		close(c);
		return false;
	}
	usleep(100 * 1000);
	close(c);
	return true;
}

static void expect_redirected(int family, int type, const char *server, int connect_first)
{
	bool v6 = strchr(server, ':') && !strstr(server, "::ffff:");
	const char *local = v6 ? "::1" : "127.0.0.1";
	int udp = h_listen_udp(local, RESOLVER_PORT), tcp = h_listen_tcp(local, RESOLVER_PORT);
	int real = type == SOCK_DGRAM ? h_listen_udp(v6 ? "2001:db8::2" : "198.51.100.8", 53) :
					h_listen_tcp(v6 ? "2001:db8::2" : "198.51.100.8", 53);
	struct exchange x = { family, type, server, connect_first };
	const struct weir_event *e;
	pid_t c;

	c = h_spawn(&h, do_exchange, &x);
	cr_expect(serve_one(udp, tcp), "%s (type %d, connected %d): the query did not reach "
				       "weir's resolver", server, type, connect_first);
	cr_expect_eq(h_wait(c), 0, "%s: the reply did not look like it came from the server",
		     server);
	cr_expect_not(type == SOCK_DGRAM ? h_udp_got(real) : h_tcp_got(real),
		      "%s: the query reached the server it named", server);
	cr_assert_not_null(h_events(&h));
	for (e = h.ev; e < h.ev + h.nev; e++)
		if (e->reason == WEIR_R_DNS_REDIRECT && e->port == 53)
			break;
	cr_expect(e < h.ev + h.nev, "%s: no redirect event for port 53", server);
	close(udp);
	close(tcp);
	close(real);
}

Test(dns, udp_sendto_any_server_is_redirected)
{
	expect_redirected(AF_INET, SOCK_DGRAM, "198.51.100.8", 0);
}

Test(dns, connected_udp_is_redirected)
{
	expect_redirected(AF_INET, SOCK_DGRAM, "198.51.100.8", 1);
}

Test(dns, tcp_is_redirected)
{
	expect_redirected(AF_INET, SOCK_STREAM, "198.51.100.8", 0);
}

Test(dns, ipv6_is_redirected)
{
	expect_redirected(AF_INET6, SOCK_DGRAM, "2001:db8::2", 0);
	expect_redirected(AF_INET6, SOCK_STREAM, "2001:db8::2", 0);
}

Test(dns, ipv4_mapped_connected_udp_is_redirected)
{
	expect_redirected(AF_INET6, SOCK_DGRAM, "::ffff:198.51.100.8", 1);
}

Test(dns, ipv4_mapped_is_redirected)
{
	expect_redirected(AF_INET6, SOCK_DGRAM, "::ffff:198.51.100.8", 0);
	expect_redirected(AF_INET6, SOCK_STREAM, "::ffff:198.51.100.8", 0);
}

/* Port 853 (DNS over TLS) is not DNS to weir: the policy decides. */
Test(dns, dot_is_judged_by_policy)
{
	int l = h_listen_tcp("198.51.100.8", 853);
	struct probe p = { P_TCP, AF_INET, "198.51.100.8", 853 };

	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
}

/* What weir said, through the log sink. */
static char said[8][256];
static int nsaid;

static void catch_log(enum log_level level, const char *msg, void *ctx)
{
	if (level == LOG_LEVEL_WARN && nsaid < 8)
		snprintf(said[nsaid++], sizeof(said[0]), "%s", msg);
}

static int said_n(const char *needle)
{
	int i, n = 0;

	for (i = 0; i < nsaid; i++)
		n += strstr(said[i], needle) != NULL;
	return n;
}

/* A full name table and the per-name cap fail closed, and say so: once per
 * table, and the per-name cap at most once every 10 s (a command asking
 * again and again must not flood weir's stderr). A full pair table makes
 * room from the pair that expires soonest (R8-7), said once. */
Test(dns, full_learn_tables_are_said_once_and_fail_closed)
{
	struct learn_opts lo = { .ttl_min = 1, .ttl_max = 60, .max_per_name = 2,
				 .max_names = 2, .max_pairs = 3 };
	struct weir_portrange r = { .lo = 8080, .hi = 8080, .protos = WEIR_P_TCP,
				    .rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0) };
	struct resolved_addr a[3] = { { .family = AF_INET, .ttl = 60 },
				      { .family = AF_INET, .ttl = 60 },
				      { .family = AF_INET, .ttl = 60 } };
	struct probe p = { P_TCP, AF_INET, "203.0.113.9", 8080 };
	struct learn *l;
	int i, lis = h_listen_tcp("203.0.113.9", 8080);

	h_addr("203.0.113.7", a[0].addr);
	h_addr("203.0.113.8", a[1].addr);
	h_addr("203.0.113.9", a[2].addr);
	cr_assert_eq(learn_new(h.eg, &lo, &l), 0);
	log_set_sink(catch_log, NULL);
	cr_expect_eq(learn_add(l, "a.test", &r, 1, a, 3), 1, "the third over the per-name cap");
	cr_expect_eq(learn_add(l, "a.test", &r, 1, a, 3), 1);
	cr_expect_eq(said_n("more than 2 live addresses for one name"), 1, "said once in 10 s");
	cr_expect_eq(learn_add(l, "b.test", &r, 1, &a[2], 1), 0, "pair 3 of 3");
	cr_expect_eq(learn_add(l, "b.test", &r, 1, &a[0], 1), 0,
		     "pair 4: a.test's 203.0.113.7, the soonest to expire, makes room");
	cr_expect_eq(learn_add(l, "c.test", &r, 1, &a[1], 1), 1, "name 3 of 2: table full");
	cr_expect_eq(learn_add(l, "d.test", &r, 1, &a[1], 1), 1);
	for (i = 0; i < 5; i++)
		learn_add(l, "b.test", &r, 1, &a[1], 1);
	log_set_sink(NULL, NULL);
	cr_expect_eq(said_n("learned-address table full (3 addresses)"), 1, "%d lines", nsaid);
	cr_expect_eq(said_n("learned-name table full (2 names)"), 1, "%d lines", nsaid);
	cr_expect_eq(nsaid, 3, "three lines in all, not one per refusal");
	/* What was learned allows; b.test's address does. */
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(lis));
	learn_free(l);
}

/*
 * R8-7: attachments share weir_learn. One that resolves without end keeps
 * at most its share (max_pairs), making room from its own pairs; another's
 * learned address stays, and its connection goes through.
 */
Test(dns, a_flood_of_answers_stays_in_its_share)
{
	struct learn_opts lo = { .ttl_min = 1, .ttl_max = 60, .max_per_name = 4, .max_pairs = 2 };
	struct weir_portrange r = { .lo = 8080, .hi = 8080, .protos = WEIR_P_TCP,
				    .rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0) };
	struct resolved_addr a = { .family = AF_INET, .ttl = 60 };
	struct probe mine = { P_TCP, AF_INET, "203.0.113.33", 8080 };
	struct probe first = { P_TCP, AF_INET, "203.0.113.40", 8080 };
	struct probe last = { P_TCP, AF_INET, "203.0.113.49", 8080 };
	struct learn *flood, *other;
	int lis, lf, ll, i;
	char name[32], ip[32];

	/* The test's own addresses, on lo of the harness's namespace. */
	cr_assert_eq(system("ip addr replace 203.0.113.32/27 dev lo"), 0);
	lis = h_listen_tcp("203.0.113.33", 8080);
	lf = h_listen_tcp("203.0.113.40", 8080);
	ll = h_listen_tcp("203.0.113.49", 8080);

	cr_assert_eq(learn_new(h.eg, &lo, &other), 0);
	cr_assert_eq(learn_new(h.eg, &lo, &flood), 0);
	h_addr("203.0.113.33", a.addr);
	cr_assert_eq(learn_add(other, "mine.test", &r, 1, &a, 1), 0);
	log_set_sink(catch_log, NULL);
	nsaid = 0;
	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%d.flood.test", i);
		snprintf(ip, sizeof(ip), "203.0.113.%d", 40 + i);
		h_addr(ip, a.addr);
		cr_expect_eq(learn_add(flood, name, &r, 1, &a, 1), 0, "%s", name);
	}
	log_set_sink(NULL, NULL);
	cr_expect_eq(said_n("learned-address table full (2 addresses)"), 1, "%d lines", nsaid);
	cr_assert_eq(h_probe(&h, &mine, NULL), 0, "the other's learned address");
	cr_assert(h_tcp_got(lis));
	cr_assert_eq(h_probe(&h, &last, NULL), 0, "the flood's newest");
	cr_assert(h_tcp_got(ll));
	cr_assert_eq(h_probe(&h, &first, NULL), EPERM, "the flood's oldest, forgotten");
	cr_assert_not(h_tcp_got(lf));
	learn_free(flood);
	learn_free(other);
}
