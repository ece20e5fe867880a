// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2: the real egress programs on a real cgroup. Each test asserts the
 * errno the program inside saw, whether the listener got the bytes, and
 * the event the kernel side reported.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#include "compile.h"
#include "harness.h"

static const char *const policy_std =
	"version: 1\n"
	"name: bpf-test\n"
	"loopback: deny\n"
	"allow:\n"
	"  - cidr: 192.0.2.0/24\n" /* allow[0] */
	"    ports: [7000, 8000-8100]\n"
	"  - ip: 2001:db8::1\n" /* allow[1] */
	"    ports: [8080]\n"
	"  - ip: 198.51.100.7\n" /* allow[2]: inside deny[1] */
	"  - ip: 203.0.113.5\n" /* allow[3]: tcp only */
	"    ports: [8080]\n"
	"    proto: tcp\n"
	"deny:\n"
	"  - ip: 192.0.2.9\n" /* deny[0]: inside allow[0] */
	"  - cidr: 198.51.100.0/24\n"; /* deny[1] */

static struct harness h;

static void setup(void)
{
	h_netns();
	h_start(&h, policy_std, NULL);
}

static void teardown(void)
{
	h_stop(&h);
}

TestSuite(egress, .init = setup, .fini = teardown, .timeout = 30);

/* The newest event must say this. */
static void expect_event(__u8 verdict, __u8 op, __u32 rule, const char *dst, int port)
{
	const struct weir_event *e = h_events(&h);
	__u8 a[16];

	cr_assert_not_null(e, "no event");
	h_addr(dst, a);
	cr_expect_eq(e->verdict, verdict, "verdict %u, want %u", e->verdict, verdict);
	cr_expect_eq(e->op, op, "op %u, want %u", e->op, op);
	cr_expect_eq(e->rule, rule, "rule 0x%x, want 0x%x", e->rule, rule);
	cr_expect_eq(e->port, port);
	cr_expect_eq(memcmp(e->addr, a, e->family == AF_INET ? 4 : 16), 0, "dst");
}

#define ALLOW(i) WEIR_RULE_ID(WEIR_RK_ALLOW, i)
#define DENY(i) WEIR_RULE_ID(WEIR_RK_DENY, i)

Test(egress, tcp4_allowed_arrives_and_is_reported)
{
	int l = h_listen_tcp("192.0.2.1", 8080), pid;
	struct probe p = { P_TCP, AF_INET, "192.0.2.1", 8080 };
	const struct weir_event *e;

	cr_assert_eq(h_probe(&h, &p, &pid), 0);
	cr_assert(h_tcp_got(l), "allowed bytes did not arrive");
	expect_event(WEIR_V_ALLOW, WEIR_OP_CONNECT4, ALLOW(0), "192.0.2.1", 8080);
	e = h_events(&h);
	cr_expect_eq(e->pid, (__u32)pid);
	cr_expect_eq(e->tid, (__u32)pid);
	cr_expect_eq(e->uid, 0);
	cr_expect_eq(e->family, AF_INET);
	cr_expect_eq(e->protocol, IPPROTO_TCP);
	cr_expect_eq(e->sock_type, SOCK_STREAM);
	cr_expect_eq(e->reason, WEIR_R_ALLOW_RULE);
	cr_expect_neq(e->cgroup_id, 0);
	cr_expect_neq(e->ts_ns, 0);
	cr_expect_str_eq(e->comm, "bpf-tests");
}

Test(egress, tcp4_unlisted_is_eperm_and_nothing_arrives)
{
	int l = h_listen_tcp("203.0.113.9", 8080);
	struct probe p = { P_TCP, AF_INET, "203.0.113.9", 8080 };

	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	expect_event(WEIR_V_DENY, WEIR_OP_CONNECT4, 0, "203.0.113.9", 8080);
	cr_expect_eq(h_events(&h)->reason, WEIR_R_NO_MATCH);
}

Test(egress, port_ranges_and_single_ports)
{
	static const struct {
		int port, want;
	} cases[] = { { 7000, 0 }, { 6999, EPERM }, { 7001, EPERM }, { 8000, 0 },
		      { 8050, 0 }, { 8100, 0 },	    { 8101, EPERM }, { 443, EPERM } };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int l = h_listen_udp("192.0.2.1", cases[i].port);
		struct probe p = { P_UDP_SENDTO, AF_INET, "192.0.2.1", cases[i].port };

		cr_expect_eq(h_probe(&h, &p, NULL), cases[i].want, "port %d", cases[i].port);
		cr_expect_eq(h_udp_got(l), cases[i].want == 0, "port %d arrival", cases[i].port);
		if (cases[i].want)
			cr_expect_eq(h_events(&h)->reason, WEIR_R_PORT, "port %d", cases[i].port);
		close(l);
	}
}

Test(egress, deny_beats_allow)
{
	int l = h_listen_tcp("192.0.2.9", 8080);
	struct probe p = { P_TCP, AF_INET, "192.0.2.9", 8080 };

	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	expect_event(WEIR_V_DENY, WEIR_OP_CONNECT4, DENY(0), "192.0.2.9", 8080);
	cr_expect_eq(h_events(&h)->reason, WEIR_R_DENY_RULE);
}

Test(egress, wider_deny_beats_narrower_allow)
{
	int l = h_listen_tcp("198.51.100.7", 8080);
	struct probe p = { P_TCP, AF_INET, "198.51.100.7", 8080 };

	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	expect_event(WEIR_V_DENY, WEIR_OP_CONNECT4, DENY(1), "198.51.100.7", 8080);
}

Test(egress, udp4_sendto)
{
	int ok = h_listen_udp("192.0.2.1", 8080), bad = h_listen_udp("192.0.2.9", 8080);
	struct probe p = { P_UDP_SENDTO, AF_INET, "192.0.2.1", 8080 };

	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_udp_got(ok));
	expect_event(WEIR_V_ALLOW, WEIR_OP_SENDMSG4, ALLOW(0), "192.0.2.1", 8080);
	cr_expect_eq(h_events(&h)->protocol, IPPROTO_UDP);
	p.addr = "192.0.2.9";
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_udp_got(bad));
	expect_event(WEIR_V_DENY, WEIR_OP_SENDMSG4, DENY(0), "192.0.2.9", 8080);
}

Test(egress, udp4_connected)
{
	int ok = h_listen_udp("192.0.2.1", 8080), bad = h_listen_udp("192.0.2.9", 8080);
	struct probe p = { P_UDP_CONNECT, AF_INET, "192.0.2.1", 8080 };

	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_udp_got(ok));
	expect_event(WEIR_V_ALLOW, WEIR_OP_CONNECT4, ALLOW(0), "192.0.2.1", 8080);
	p.addr = "192.0.2.9";
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_udp_got(bad));
}

Test(egress, protocol_constraint)
{
	int lt = h_listen_tcp("203.0.113.5", 8080), lu = h_listen_udp("203.0.113.5", 8080);
	struct probe p = { P_TCP, AF_INET, "203.0.113.5", 8080 };

	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(lt));
	expect_event(WEIR_V_ALLOW, WEIR_OP_CONNECT4, ALLOW(3), "203.0.113.5", 8080);
	p.mode = P_UDP_SENDTO;
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM, "a tcp-only rule must not allow udp");
	cr_assert_not(h_udp_got(lu));
	cr_expect_eq(h_events(&h)->reason, WEIR_R_PORT);
}

Test(egress, ipv6_tcp_and_udp)
{
	int lt1 = h_listen_tcp("2001:db8::1", 8080), lt2 = h_listen_tcp("2001:db8::2", 8080);
	int lu1 = h_listen_udp("2001:db8::1", 8080), lu2 = h_listen_udp("2001:db8::2", 8080);
	struct probe p = { P_TCP, AF_INET6, "2001:db8::1", 8080 };

	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(lt1));
	expect_event(WEIR_V_ALLOW, WEIR_OP_CONNECT6, ALLOW(1), "2001:db8::1", 8080);
	cr_expect_eq(h_events(&h)->family, AF_INET6);
	p.addr = "2001:db8::2";
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(lt2));
	p = (struct probe){ P_UDP_SENDTO, AF_INET6, "2001:db8::1", 8080 };
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_udp_got(lu1));
	expect_event(WEIR_V_ALLOW, WEIR_OP_SENDMSG6, ALLOW(1), "2001:db8::1", 8080);
	p.addr = "2001:db8::2";
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_udp_got(lu2));
	p = (struct probe){ P_UDP_CONNECT, AF_INET6, "2001:db8::2", 8080 };
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_udp_got(lu2));
}

/*
 * ::ffff:a.b.c.d on an AF_INET6 socket goes straight to the IPv4 code
 * without running connect4/sendmsg4: connect6/sendmsg6 must judge it by
 * the IPv4 rules, on every path.
 */
Test(egress, ipv4_mapped_judged_by_ipv4_rules)
{
	static const enum probe_mode modes[] = { P_TCP, P_UDP_SENDTO, P_UDP_CONNECT };
	size_t i;

	for (i = 0; i < 3; i++) {
		bool tcp = modes[i] == P_TCP;
		int bad = tcp ? h_listen_tcp("192.0.2.9", 8080) : h_listen_udp("192.0.2.9", 8080);
		int ok = tcp ? h_listen_tcp("192.0.2.1", 8080) : h_listen_udp("192.0.2.1", 8080);
		struct probe p = { modes[i], AF_INET6, "::ffff:192.0.2.9", 8080 };
		const struct weir_event *e;

		cr_expect_eq(h_probe(&h, &p, NULL), EPERM, "mode %d", modes[i]);
		cr_expect_not(tcp ? h_tcp_got(bad) : h_udp_got(bad), "mode %d leaked", modes[i]);
		e = h_events(&h);
		cr_expect_eq(e->rule, DENY(0));
		/* udpv6_sendmsg turns a mapped destination into an IPv4 one
		 * before its hook: sendmsg4 judges it. connect6 sees it mapped. */
		if (modes[i] == P_UDP_SENDTO) {
			cr_expect_eq(e->op, WEIR_OP_SENDMSG4);
		} else {
			cr_expect_eq(e->op, WEIR_OP_CONNECT6);
			cr_expect(e->flags & WEIR_EF_MAPPED);
		}
		p.addr = "::ffff:192.0.2.1";
		cr_expect_eq(h_probe(&h, &p, NULL), 0, "mode %d allowed", modes[i]);
		cr_expect(tcp ? h_tcp_got(ok) : h_udp_got(ok), "mode %d allowed arrival", modes[i]);
		cr_expect_eq(h_events(&h)->rule, ALLOW(0));
		close(bad);
		close(ok);
	}
}

/* The address decides, not the family field: AF_UNSPEC still sends. */
Test(egress, af_unspec_sendto_is_judged_by_address)
{
	int bad = h_listen_udp("192.0.2.9", 8080), ok = h_listen_udp("192.0.2.1", 8080);
	struct probe p = { P_UDP_SENDTO, AF_INET, "192.0.2.9", 8080, AF_UNSPEC };

	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_udp_got(bad));
	p.addr = "192.0.2.1";
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_udp_got(ok));
}

/* An AF_INET sockaddr on an AF_INET6 UDP socket takes the IPv4 path. */
Test(egress, ipv4_sockaddr_on_ipv6_socket)
{
	int bad = h_listen_udp("192.0.2.9", 8080);
	struct probe p = { P_UDP_SENDTO, AF_INET6, "192.0.2.9", 8080 };

	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_udp_got(bad));
	cr_expect_eq(h_events(&h)->op, WEIR_OP_SENDMSG4);
}

Test(egress, loopback_deny_and_unspecified_addresses)
{
	int l4 = h_listen_tcp("127.0.0.1", 8080), l6 = h_listen_tcp("::1", 8080);
	static const char *const dsts[] = { "127.0.0.1", "0.0.0.0", "::1", "::", "::ffff:0.0.0.0" };
	size_t i;

	for (i = 0; i < sizeof(dsts) / sizeof(dsts[0]); i++) {
		int fam = strchr(dsts[i], ':') ? AF_INET6 : AF_INET;
		struct probe p = { P_TCP, fam, dsts[i], 8080 };

		cr_expect_eq(h_probe(&h, &p, NULL), EPERM, "%s", dsts[i]);
		cr_expect_not(h_tcp_got(l4), "%s reached 127.0.0.1", dsts[i]);
		cr_expect_not(h_tcp_got(l6), "%s reached ::1", dsts[i]);
	}
	cr_expect(h_events(&h)->flags & WEIR_EF_UNSPEC);
}

Test(egress, lost_events_are_counted_and_verdicts_unchanged)
{
	struct egress_opts o = { .lpm_entries = 1024, .portsets = 64, .slots = 4,
				 .ringbuf_bytes = 4096, .task_info = -1 };
	int l = h_listen_udp("192.0.2.1", 8080), i, fails = 0;
	struct probe p = { P_UDP_SENDTO, AF_INET, "192.0.2.1", 8080 };

	h_stop(&h);
	h_start(&h, policy_std, &o);
	cr_assert_eq(egress_stat(h.eg, WEIR_STAT_LOST), 0);
	/* 4 KiB holds ~40 events; nobody consumes: most of 100 are lost. */
	for (i = 0; i < 100; i++)
		fails += h_probe(&h, &p, NULL) != 0;
	cr_assert_eq(fails, 0, "a full ring buffer changed a verdict");
	cr_assert_geq(egress_stat(h.eg, WEIR_STAT_LOST), 50);
	cr_assert_eq(egress_stat(h.eg, WEIR_STAT_DECISIONS), 100);
	cr_assert(h_udp_got(l));
}

Test(egress, nested_cgroup_inherits_enforcement)
{
	int bad = h_listen_tcp("192.0.2.9", 8080), ok = h_listen_tcp("192.0.2.1", 8080);
	struct probe p = { P_TCP, AF_INET, "192.0.2.9", 8080, 0, "child/grandchild" };
	char sub[CGROUP_PATH_MAX + 16];

	snprintf(sub, sizeof(sub), "%s/child", h.cgpath);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(bad));
	cr_expect_neq(h_events(&h)->cgroup_id, 0);
	p.addr = "192.0.2.1";
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(ok));
}

Test(egress, task_info_core_fallback_reports_the_same)
{
	struct egress_opts o = { .lpm_entries = 1024, .portsets = 64, .slots = 4,
				 .ringbuf_bytes = 1 << 20, .task_info = WEIR_TASK_CORE };
	struct probe p = { P_TCP, AF_INET, "192.0.2.1", 8080 };
	int l = h_listen_tcp("192.0.2.1", 8080), pid;
	const struct weir_event *e;

	h_stop(&h);
	h_start(&h, policy_std, &o);
	cr_assert_eq(h_probe(&h, &p, &pid), 0);
	cr_assert(h_tcp_got(l));
	e = h_events(&h);
	cr_assert_not_null(e);
	cr_expect_eq(e->pid, (__u32)pid);
	cr_expect_str_eq(e->comm, "bpf-tests");
	cr_expect_neq(e->cgroup_id, 0);
}

Test(egress, no_policy_loaded_fails_closed)
{
	int l = h_listen_tcp("192.0.2.1", 8080);
	struct probe p = { P_TCP, AF_INET, "192.0.2.1", 8080 };

	h_stop(&h);
	h_start_empty(&h, NULL);
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	cr_expect_eq(h_events(&h)->reason, WEIR_R_NO_POLICY);
}

/* --- policies other than the standard one ---------------------------------- */

static void restart(const char *yaml)
{
	h_stop(&h);
	h_start(&h, yaml, NULL);
}

Test(egress, loopback_allow)
{
	int l = h_listen_tcp("127.0.0.1", 8080), l6 = h_listen_tcp("::1", 8080);
	struct probe p = { P_TCP, AF_INET, "127.0.0.1", 8080 };

	restart("version: 1\nloopback: allow\n");
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l));
	cr_expect_eq(h_events(&h)->rule, WEIR_RULE_ID(WEIR_RK_LOOPBACK, 0));
	p.addr = "0.0.0.0"; /* the kernel connects this to 127.0.0.1 */
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l));
	p = (struct probe){ P_TCP, AF_INET6, "::1", 8080 };
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l6));
}

Test(egress, loopback_deny_with_explicit_port)
{
	int ok = h_listen_tcp("127.0.0.1", 8080), bad = h_listen_tcp("127.0.0.1", 9090);
	struct probe p = { P_TCP, AF_INET, "127.0.0.1", 8080 };

	restart("version: 1\nloopback: deny\nallow:\n  - ip: 127.0.0.1\n    ports: [8080]\n");
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(ok));
	p.port = 9090;
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(bad));
}

static void expect_metadata_denied(void)
{
	int l = h_listen_tcp("169.254.169.254", 80);
	struct probe p = { P_TCP, AF_INET, "169.254.169.254", 80 };

	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	cr_expect_eq(WEIR_RULE_KIND(h_events(&h)->rule), WEIR_RK_METADATA);
	cr_expect_eq(h_events(&h)->verdict, WEIR_V_DENY);
	p = (struct probe){ P_TCP, AF_INET6, "::ffff:169.254.169.254", 80 };
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	close(l);
	l = h_listen_tcp("fd00:ec2::254", 80);
	p = (struct probe){ P_TCP, AF_INET6, "fd00:ec2::254", 80 };
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
	cr_assert_not(h_tcp_got(l));
	cr_expect_eq(WEIR_RULE_KIND(h_events(&h)->rule), WEIR_RK_METADATA);
	close(l);
}

Test(egress, metadata_denied_even_under_allow_all)
{
	restart("version: 1\nallow:\n  - cidr: 0.0.0.0/0\n  - cidr: ::/0\n");
	expect_metadata_denied();
}

Test(egress, metadata_denied_in_audit_mode)
{
	restart("version: 1\nmode: audit\n");
	expect_metadata_denied();
}

Test(egress, metadata_allowed_when_named_exactly)
{
	int l = h_listen_tcp("169.254.169.254", 80);
	struct probe p = { P_TCP, AF_INET, "169.254.169.254", 80 };

	restart("version: 1\nallow:\n  - ip: 169.254.169.254\n    ports: [80]\n");
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l));
}

Test(egress, audit_mode_allows_and_says_would_deny)
{
	int l = h_listen_tcp("203.0.113.9", 8080);
	struct probe p = { P_TCP, AF_INET, "203.0.113.9", 8080 };

	restart("version: 1\nmode: audit\ndeny:\n  - ip: 203.0.113.9\n");
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l));
	cr_expect_eq(h_events(&h)->verdict, WEIR_V_WOULD_DENY);
	cr_expect_eq(h_events(&h)->rule, DENY(0));
}

/* The events one call made: those collected after *from. */
static int new_events(int *from)
{
	int n;

	h_events(&h);
	n = h.nev - *from;
	*from = h.nev;
	return n;
}

/*
 * Audit mode: one decision per attempt. The connect and sendmsg hooks fill
 * the backstop's cache with their decision, so the packets they let through
 * (the SYN, the datagram) are cache hits, not a second event; for that the
 * cache must hold the address the packets carry (mapped: IPv4; 0.0.0.0:
 * 127.0.0.1).
 */
Test(egress, audit_mode_one_event_per_attempt)
{
	static const struct {
		enum probe_mode mode;
		int family;
		const char *addr, *listen;
	} cases[] = {
		{ P_TCP, AF_INET, "203.0.113.9", "203.0.113.9" },
		{ P_TCP, AF_INET6, "2001:db8::2", "2001:db8::2" },
		{ P_TCP, AF_INET6, "::ffff:203.0.113.9", "203.0.113.9" },
		{ P_TCP, AF_INET, "0.0.0.0", "127.0.0.1" },
		{ P_TCP, AF_INET6, "::", "::1" },
		{ P_UDP_SENDTO, AF_INET, "203.0.113.9", "203.0.113.9" },
		{ P_UDP_SENDTO, AF_INET6, "2001:db8::2", "2001:db8::2" },
	};
	int from = 0, n, l;
	size_t i;

	restart("version: 1\nmode: audit\nloopback: deny\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct probe p = { cases[i].mode, cases[i].family, cases[i].addr, 8080 };
		bool tcp = cases[i].mode == P_TCP;

		l = tcp ? h_listen_tcp(cases[i].listen, 8080) : h_listen_udp(cases[i].listen, 8080);
		cr_assert_eq(h_probe(&h, &p, NULL), 0, "%s", cases[i].addr);
		cr_assert(tcp ? h_tcp_got(l) : h_udp_got(l), "%s did not arrive", cases[i].addr);
		n = new_events(&from);
		cr_expect_eq(n, 1, "%s: %d events for one attempt", cases[i].addr, n);
		cr_expect_eq(h.ev[h.nev - 1].verdict, WEIR_V_WOULD_DENY, "%s", cases[i].addr);
		cr_expect_neq(h.ev[h.nev - 1].op, WEIR_OP_EGRESS, "%s", cases[i].addr);
		close(l);
	}
	cr_expect_eq(egress_stat(h.eg, WEIR_STAT_DECISIONS), sizeof(cases) / sizeof(cases[0]));
}

/* A UDP connect() only: what glibc's getaddrinfo() does to pick a source
 * address. */
static int udp_connect_child(void *arg)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(8080) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ret = 0;

	inet_pton(AF_INET, "203.0.113.9", &s.sin_addr);
	if (connect(fd, (struct sockaddr *)&s, sizeof(s)))
		ret = errno;
	else if (arg && send(fd, "weir-probe", 10, 0) < 0)
		ret = errno;
	close(fd);
	return ret;
}

/*
 * A UDP connect() sends nothing: in audit mode the backstop judges, and
 * reports, the socket's first datagram (with its own event); a socket that
 * never sends makes the connect event alone. Enforce mode refuses the
 * connect (a connected socket's send() has no hook but the backstop).
 */
Test(egress, udp_connect_leaves_the_first_datagram_to_the_backstop)
{
	int l = h_listen_udp("203.0.113.9", 8080), from = 0;

	cr_assert_eq(h_wait(h_spawn(&h, udp_connect_child, NULL)), EPERM);
	cr_assert_eq(new_events(&from), 1);
	cr_expect_eq(h.ev[0].op, WEIR_OP_CONNECT4);
	cr_expect_eq(h.ev[0].verdict, WEIR_V_DENY);
	cr_expect_eq(h.ev[0].sock_type, SOCK_DGRAM);
	restart("version: 1\nmode: audit\n");
	from = 0;
	cr_assert_eq(h_wait(h_spawn(&h, udp_connect_child, NULL)), 0);
	cr_assert_eq(new_events(&from), 1, "a connect alone");
	cr_expect_eq(h.ev[0].op, WEIR_OP_CONNECT4);
	cr_expect_eq(h.ev[0].verdict, WEIR_V_WOULD_DENY);
	cr_assert_eq(h_wait(h_spawn(&h, udp_connect_child, "send")), 0);
	cr_assert(h_udp_got(l));
	cr_assert_eq(new_events(&from), 2, "a connect, then its datagram");
	cr_expect_eq(h.ev[1].op, WEIR_OP_CONNECT4);
	cr_expect_eq(h.ev[2].op, WEIR_OP_EGRESS);
	cr_expect_eq(h.ev[2].verdict, WEIR_V_WOULD_DENY);
	cr_expect_eq(h.ev[2].protocol, IPPROTO_UDP);
	cr_expect_eq(h.ev[2].port, 8080);
	cr_expect_eq(h.ev[2].reason, WEIR_R_NO_MATCH);
	cr_expect_neq(h.ev[2].pid, 0, "the event came out filled");
}

/* A reload replaces the policy whole: nothing of the old one survives. */
Test(egress, reload_replaces_policy)
{
	int a = h_listen_tcp("192.0.2.1", 8080), b = h_listen_tcp("203.0.113.9", 8080);
	struct probe pa = { P_TCP, AF_INET, "192.0.2.1", 8080 };
	struct probe pb = { P_TCP, AF_INET, "203.0.113.9", 8080 };
	struct compile_input in = {};
	char err[POLICY_ERR_LEN];
	struct policy *pol;
	struct compiled c;
	int i;

	for (i = 0; i < 3; i++) { /* flip back and forth: slots are reused */
		cr_assert_eq(h_probe(&h, &pa, NULL), 0);
		cr_assert(h_tcp_got(a));
		cr_assert_eq(policy_load_buffer("b.yaml", "version: 1\nallow:\n  - ip: 203.0.113.9\n",
						strlen("version: 1\nallow:\n  - ip: 203.0.113.9\n"), &pol, err),
			     0, "%s", err);
		in.policy = pol;
		cr_assert_eq(compile_policy(&in, &c, err), 0);
		cr_assert_eq(egress_apply(h.eg, &c), 0);
		compiled_free(&c);
		policy_free(pol);
		cr_assert_eq(h_probe(&h, &pa, NULL), EPERM, "old policy survived the reload");
		cr_assert_not(h_tcp_got(a));
		cr_assert_eq(h_probe(&h, &pb, NULL), 0);
		cr_assert(h_tcp_got(b));
		in.policy = h.pol;
		cr_assert_eq(compile_policy(&in, &c, err), 0);
		cr_assert_eq(egress_apply(h.eg, &c), 0);
		compiled_free(&c);
		cr_assert_eq(h_probe(&h, &pb, NULL), EPERM);
	}
}

/* --- the egress backstop ----------------------------------------------------- */

static int to_parent[2], to_child[2];

/* Connected UDP: send, let the parent change the policy, send again. */
static int revoke_child(void *arg)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(8080) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char c = 0;

	inet_pton(AF_INET, "192.0.2.1", &s.sin_addr);
	if (connect(fd, (struct sockaddr *)&s, sizeof(s)) || send(fd, "weir-probe", 10, 0) < 0)
		return errno;
	if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1)
		return 100;
	return send(fd, "weir-probe", 10, 0) < 0 ? errno : 0;
}

/*
 * Revocation: a connected UDP socket sends without any connect or sendmsg
 * hook. After a policy change its next datagram is judged again, by the
 * backstop, and refused.
 */
Test(egress, connected_udp_is_revoked_by_a_policy_change)
{
	int l = h_listen_udp("192.0.2.1", 8080);
	const char *y = "version: 1\nloopback: deny\nallow:\n  - ip: 203.0.113.9\n";
	struct compile_input in = {};
	char err[POLICY_ERR_LEN], c;
	struct policy *pol;
	struct compiled cp;
	const struct weir_event *e;
	pid_t pid;

	cr_assert_eq(pipe(to_parent), 0);
	cr_assert_eq(pipe(to_child), 0);
	pid = h_spawn(&h, revoke_child, NULL);
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	cr_assert(h_udp_got(l), "the first datagram, allowed, did not arrive");
	cr_assert_eq(policy_load_buffer("new.yaml", y, strlen(y), &pol, err), 0, "%s", err);
	in.policy = pol;
	cr_assert_eq(compile_policy(&in, &cp, err), 0);
	cr_assert_eq(egress_apply(h.eg, &cp), 0);
	compiled_free(&cp);
	policy_free(pol);
	cr_assert_eq(write(to_child[1], "x", 1), 1);
	cr_assert_eq(h_wait(pid), EPERM, "a revoked connected socket could still send");
	cr_assert_not(h_udp_got(l), "a datagram arrived after revocation");
	e = h_events(&h);
	cr_assert_not_null(e);
	cr_expect_eq(e->op, WEIR_OP_EGRESS);
	cr_expect_eq(e->verdict, WEIR_V_DENY);
	cr_expect_eq(egress_stat(h.eg, WEIR_STAT_BACKSTOP_DROPS), 1);
}

/* The same socket, same policy: the backstop answers from its cache and
 * reports nothing. */
Test(egress, backstop_is_quiet_on_allowed_traffic)
{
	int l = h_listen_udp("192.0.2.1", 8080), i, fails = 0;
	struct probe p = { P_UDP_CONNECT, AF_INET, "192.0.2.1", 8080 };

	for (i = 0; i < 5; i++)
		fails += h_probe(&h, &p, NULL) != 0;
	cr_assert_eq(fails, 0);
	cr_assert(h_udp_got(l));
	h_events(&h);
	for (i = 0; i < h.nev; i++)
		cr_expect_neq(h.ev[i].op, WEIR_OP_EGRESS, "the backstop reported allowed traffic");
	cr_expect_eq(egress_stat(h.eg, WEIR_STAT_BACKSTOP_DROPS), 0);
}

/* TCP: connect and send, let the parent change the policy, send again. */
static int revoke_tcp_child(void *arg)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(8080) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char c = 0;

	inet_pton(AF_INET, "192.0.2.1", &s.sin_addr);
	if (connect(fd, (struct sockaddr *)&s, sizeof(s)) || send(fd, "first", 5, 0) < 0)
		return errno;
	if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1)
		return 100;
	send(fd, "after-revocation", 16, 0); /* queued; must never arrive */
	usleep(500 * 1000);
	return 0;
}

/* An established TCP connection is cut by a policy change: its next
 * segments are dropped by the backstop (the connection then stalls). */
Test(egress, established_tcp_is_revoked_by_a_policy_change)
{
	const char *y = "version: 1\nloopback: deny\nallow:\n  - ip: 203.0.113.9\n";
	int l = h_listen_tcp("192.0.2.1", 8080), c;
	struct compile_input in = {};
	char err[POLICY_ERR_LEN], buf[64] = "", x;
	struct pollfd pfd;
	struct policy *pol;
	struct compiled cp;
	pid_t pid;

	cr_assert_eq(pipe(to_parent), 0);
	cr_assert_eq(pipe(to_child), 0);
	pid = h_spawn(&h, revoke_tcp_child, NULL);
	cr_assert_eq(read(to_parent[0], &x, 1), 1);
	pfd = (struct pollfd){ .fd = l, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 1000), 1);
	c = accept(l, NULL, NULL);
	cr_assert_geq(c, 0);
	pfd = (struct pollfd){ .fd = c, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 1000), 1);
	cr_assert_eq(recv(c, buf, sizeof(buf), 0), 5, "the first bytes, allowed, did not arrive");
	cr_assert_eq(policy_load_buffer("new.yaml", y, strlen(y), &pol, err), 0, "%s", err);
	in.policy = pol;
	cr_assert_eq(compile_policy(&in, &cp, err), 0);
	cr_assert_eq(egress_apply(h.eg, &cp), 0);
	compiled_free(&cp);
	policy_free(pol);
	cr_assert_eq(write(to_child[1], "x", 1), 1);
	cr_assert_eq(h_wait(pid), 0);
	cr_assert_eq(poll(&pfd, 1, 300), 0, "bytes arrived after revocation");
	cr_expect_geq(egress_stat(h.eg, WEIR_STAT_BACKSTOP_DROPS), 1);
	close(c);
}

/*
 * Maps sized by compile_map_sizes() hold a 20000-prefix policy (more than
 * the old fixed 16384 per family) twice over: the policy in force and a
 * reload's next one, which is written before the old one is deleted.
 */
Test(egress, large_policy_in_sized_maps_applies_and_reloads)
{
	struct egress_opts o = { .slots = 4, .ringbuf_bytes = 1 << 20, .task_info = -1 };
	struct probe p = { P_TCP, AF_INET, "192.0.2.1", 8080 };
	char err[COMPILE_ERR_LEN], *yaml = malloc(20000 * 32 + 128), *w = yaml;
	struct compile_input in = {};
	struct policy *pol;
	struct map_sizes ms;
	struct compiled c;
	int l = h_listen_tcp("192.0.2.1", 8080), i;

	cr_assert_not_null(yaml);
	w += sprintf(w, "version: 1\nloopback: deny\nallow:\n");
	for (i = 1; i <= 20000; i++)
		w += sprintf(w, "  - ip: 2001:db8:1::%x\n", i);
	sprintf(w, "  - ip: 192.0.2.1\n    ports: [8080]\n");
	cr_assert_eq(policy_load_buffer("big.yaml", yaml, strlen(yaml), &pol, err), 0, "%s", err);
	free(yaml);
	in.policy = pol;
	cr_assert_eq(compile_policy(&in, &c, err), 0, "%s", err);
	cr_assert_eq(compile_map_sizes(&c, 0, &ms, err), 0, "%s", err);
	o.lpm_entries = ms.lpm_entries;
	o.portsets = ms.portsets;
	h_stop(&h);
	h_start_empty(&h, &o);
	h.pol = pol; /* h_stop frees it */
	cr_assert_eq(egress_apply(h.eg, &c), 0, "the first generation");
	cr_assert_eq(egress_apply(h.eg, &c), 0, "a reload: two generations at once");
	compiled_free(&c);
	cr_assert_eq(h_probe(&h, &p, NULL), 0);
	cr_assert(h_tcp_got(l));
	p.port = 8081;
	cr_assert_eq(h_probe(&h, &p, NULL), EPERM);
}

/* connect() of an AF_INET6 TCP socket to a 28-byte AF_INET sockaddr whose
 * padding holds an allowed IPv6 address (allow[1]): in the kernel's eyes no
 * destination at all (tcp_v6_connect() refuses the family). */
static int v6_socket_v4_family(void *arg)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET, .sin6_port = htons(8080) };
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	(void)arg;
	inet_pton(AF_INET6, "2001:db8::1", &s.sin6_addr);
	if (fd < 0)
		return 100;
	return connect(fd, (struct sockaddr *)&s, sizeof(s)) ? errno : 0;
}

/* R7-6: it is refused unjudged, and nothing is reported: before, the hook
 * judged the padding and recorded "allowed tcp [2001:db8::1]:8080". */
Test(egress, ipv4_family_on_ipv6_tcp_socket_is_refused_unjudged)
{
	int l = h_listen_tcp("2001:db8::1", 8080), before;

	h_events(&h);
	before = h.nev;
	cr_assert_eq(h_wait(h_spawn(&h, v6_socket_v4_family, NULL)), EPERM);
	cr_assert_not(h_tcp_got(l));
	h_events(&h);
	cr_expect_eq(h.nev, before, "%d events for a call with no destination", h.nev - before);
	close(l);
}
