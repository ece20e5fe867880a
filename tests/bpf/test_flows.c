// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2: flows and upload budgets (bpf/flows.bpf.h) on a real cgroup: the
 * close event of a real connection counts its payload and names the task
 * that connected; a rule's upload budget lets exactly its bytes out, then
 * refuses, and says so once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <weir/egress.h>
#include <weir/flows.h>

#include "harness.h"
#include "compile.h"

#define PAYLOAD_LEN 11 /* the probe's "weir-probe" and its NUL */

static const char *const policy_flows =
	"version: 1\n"
	"allow:\n"
	"  - ip: 192.0.2.1\n" /* allow[0] */
	"    ports: [8080]\n"
	"  - ip: 192.0.2.2\n" /* allow[1]: two probes' worth, no more */
	"    ports: [8080]\n"
	"    upload_budget: 22B\n"
	"  - ip: 2001:db8::1\n" /* allow[2] */
	"    ports: [8080]\n"
	"  - ip: 203.0.113.77\n" /* allow[3]: no route to it in the test's netns */
	"    ports: [8080]\n";

static struct harness h;

static void setup(void)
{
	h_netns();
	h_start(&h, policy_flows, NULL);
}

static void teardown(void)
{
	h_stop(&h);
}

TestSuite(flows, .init = setup, .fini = teardown, .timeout = 30);

/* The first close event, waiting up to a second for it. */
static const struct weir_event *wait_close(void)
{
	int i;

	for (i = 0; i < 100 && !h.ncl; i++) {
		h_events(&h);
		if (!h.ncl)
			usleep(10000);
	}
	return h.ncl ? &h.closes[0] : NULL;
}

Test(flows, tcp_close_counts_the_payload_and_names_the_connecting_task)
{
	int l = h_listen_tcp("192.0.2.1", 8080), pid;
	struct probe p = { P_TCP, AF_INET, "192.0.2.1", 8080 };
	const struct weir_event *e;

	cr_assert_eq(h_probe(&h, &p, &pid), 0);
	cr_assert(h_tcp_got(l), "the bytes did not arrive");
	e = wait_close();
	cr_assert_not_null(e, "no close event");
	cr_expect_eq(e->tx_bytes, PAYLOAD_LEN, "tx_bytes %llu", (unsigned long long)e->tx_bytes);
	cr_expect_eq(e->rx_bytes, 0);
	cr_expect_eq(e->pid, (__u32)pid, "pid %u, want the child's %d", e->pid, pid);
	cr_expect_eq(e->rule, WEIR_RULE_ID(WEIR_RK_ALLOW, 0));
	cr_expect_eq(e->verdict, WEIR_V_ALLOW);
	cr_expect_eq(e->protocol, 6);
	cr_expect_eq(e->port, 8080);
	cr_expect_gt(e->duration_ns, 0);
	close(l);
}

Test(flows, connected_udp_closes_on_release)
{
	int u = h_listen_udp("192.0.2.1", 8080), pid;
	struct probe p = { P_UDP_CONNECT, AF_INET, "192.0.2.1", 8080 };
	const struct weir_event *e;

	cr_assert_eq(h_probe(&h, &p, &pid), 0);
	cr_assert(h_udp_got(u));
	e = wait_close();
	cr_assert_not_null(e, "no close event");
	cr_expect_eq(e->tx_bytes, PAYLOAD_LEN);
	cr_expect_eq(e->pid, (__u32)pid);
	cr_expect_eq(e->protocol, 17);
	close(u);
}

/* --- TCP sockets' places (weir_tcpsocks) --------------------------------- */

static int to_parent[2], to_child[2];

/* n TCP connections to addr:8080 in turn, each sending the probe's payload;
 * every other one closed with a reset (SO_LINGER 0). 0 or errno. */
struct conns {
	const char *addr;
	int n;
};

static int conns_child(void *arg)
{
	const struct conns *c = arg;
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(8080) };
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	int i, fd;

	inet_pton(AF_INET, c->addr, &s.sin_addr);
	for (i = 0; i < c->n; i++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return errno;
		if (connect(fd, (struct sockaddr *)&s, sizeof(s)) ||
		    send(fd, "weir-probe", PAYLOAD_LEN, 0) < 0)
			return errno;
		/* The payload acknowledged, so that the close event counts it. */
		usleep(20000);
		if (i % 2)
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		close(fd);
	}
	return 0;
}

/* Places held (taken, not left) and places left, of weir_tcpsocks. */
static void places(int fd, int *held, int *left)
{
	struct weir_tcpsock t;
	__u32 i;

	*held = *left = 0;
	for (i = 0; i < WEIR_TCPSOCK_N; i++) {
		cr_assert_eq(bpf_map_lookup_elem(fd, &i, &t), 0);
		if (t.cookie && !t.left)
			(*held)++;
		else if (t.cookie)
			(*left)++;
	}
}

/* Wait up to 3 s for n close events. */
static void wait_n_closes(int n)
{
	int i;

	for (i = 0; i < 300 && h.ncl < n; i++) {
		h_events(&h);
		if (h.ncl < n)
			usleep(10000);
	}
}

/*
 * A TCP connect() takes a place in weir_tcpsocks (no socket storage), and
 * its flow gives it back when it closes, by FIN or by reset: nothing is
 * held once every connection is closed, and each was reported once, with
 * its payload.
 */
Test(flows, tcp_connections_leave_their_places_and_each_closes_once)
{
	int l = h_listen_tcp("192.0.2.1", 8080), fd = h_map_fd(&h, "weir_tcpsocks");
	struct conns c = { "192.0.2.1", 8 };
	int held, left, i;
	pid_t pid;

	pid = h_spawn(&h, conns_child, &c);
	for (i = 0; i < c.n; i++)
		cr_assert(h_tcp_got(l), "connection %d's bytes did not arrive", i);
	cr_assert_eq(h_wait(pid), 0);
	wait_n_closes(c.n);
	cr_assert_eq(h.ncl, c.n, "%d close events for %d connections", h.ncl, c.n);
	for (i = 0; i < h.ncl; i++) {
		cr_expect_eq(h.closes[i].tx_bytes, PAYLOAD_LEN, "close %d: tx_bytes %llu", i,
			     (unsigned long long)h.closes[i].tx_bytes);
		cr_expect_eq(h.closes[i].pid, (__u32)pid);
		cr_expect_eq(h.closes[i].rule, WEIR_RULE_ID(WEIR_RK_ALLOW, 0));
	}
	places(fd, &held, &left);
	cr_expect_eq(held, 0, "%d places still held", held);
	cr_expect_gt(left, 0, "no connection took a place");
	close(fd);
	close(l);
}

/*
 * Every place held (by sockets of another run, say): a TCP connect() makes
 * a socket storage instead, as before. Still judged (a denied destination
 * is refused), still reported (its close event, its bytes), and the places
 * of the others are left alone.
 */
Test(flows, a_full_table_of_tcp_places_still_judges_and_reports_every_connection)
{
	int l = h_listen_tcp("192.0.2.1", 8080), fd = h_map_fd(&h, "weir_tcpsocks");
	struct probe deny = { P_TCP, AF_INET, "192.0.2.9", 8080 };
	struct conns c = { "192.0.2.1", 2 };
	struct weir_tcpsock t = {};
	int held, left, i;
	pid_t pid;
	__u32 k;

	for (k = 0; k < WEIR_TCPSOCK_N; k++) {
		t.cookie = (1ULL << 40) + k;
		cr_assert_eq(bpf_map_update_elem(fd, &k, &t, BPF_ANY), 0);
	}
	cr_assert_eq(h_probe(&h, &deny, NULL), EPERM, "a denied destination was let through");
	pid = h_spawn(&h, conns_child, &c);
	for (i = 0; i < c.n; i++)
		cr_assert(h_tcp_got(l), "connection %d's bytes did not arrive", i);
	cr_assert_eq(h_wait(pid), 0);
	wait_n_closes(c.n);
	cr_assert_eq(h.ncl, c.n, "%d close events for %d connections", h.ncl, c.n);
	for (i = 0; i < h.ncl; i++)
		cr_expect_eq(h.closes[i].tx_bytes, PAYLOAD_LEN);
	places(fd, &held, &left);
	cr_expect_eq(held, (int)WEIR_TCPSOCK_N, "the others' places were taken: %d held", held);
	close(fd);
	close(l);
}

/* Refused (nobody listens yet), then connected again on the same socket,
 * sending once the parent says so. 0 or errno. */
static int again_child(void *arg)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(8080) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), *sync = arg;
	char c;

	inet_pton(AF_INET, "192.0.2.1", &s.sin_addr);
	if (fd < 0 || !connect(fd, (struct sockaddr *)&s, sizeof(s)) || errno != ECONNREFUSED)
		return 100;
	if (write(sync[1], "x", 1) != 1 || read(sync[2], &c, 1) != 1)
		return 101;
	if (connect(fd, (struct sockaddr *)&s, sizeof(s)))
		return errno;
	if (write(sync[1], "x", 1) != 1 || read(sync[2], &c, 1) != 1)
		return 101;
	if (send(fd, "weir-probe", PAYLOAD_LEN, 0) < 0)
		return errno;
	usleep(20000);
	close(fd);
	return 0;
}

/*
 * A TCP socket left its place when it reached TCP_CLOSE (refused), and
 * connect()s again: it holds the place again, so that no other socket can
 * take it (and wipe its flow) while it is connected (review8 R8-9); its
 * second connection is reported with its bytes.
 */
Test(flows, a_tcp_socket_connecting_again_after_a_refusal_holds_its_place)
{
	int fd = h_map_fd(&h, "weir_tcpsocks"), held, left, l, sync[3], p2c[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(to_parent), 0);
	cr_assert_eq(pipe(p2c), 0);
	sync[0] = to_parent[0];
	sync[1] = to_parent[1];
	sync[2] = p2c[0];
	pid = h_spawn(&h, again_child, sync);
	cr_assert_eq(read(to_parent[0], &c, 1), 1, "the first connect() was not refused");
	places(fd, &held, &left);
	cr_expect_eq(held, 0, "the refused socket still holds its place");
	l = h_listen_tcp("192.0.2.1", 8080);
	cr_assert_eq(write(p2c[1], "x", 1), 1);
	cr_assert_eq(read(to_parent[0], &c, 1), 1, "the second connect() failed");
	places(fd, &held, &left);
	cr_expect_eq(held, 1, "the connected socket holds %d places", held);
	cr_assert_eq(write(p2c[1], "x", 1), 1);
	cr_assert(h_tcp_got(l), "the bytes did not arrive");
	cr_assert_eq(h_wait(pid), 0);
	wait_n_closes(2);
	cr_assert_eq(h.ncl, 2, "%d close events (the refused attempt's and the connection's)",
		     h.ncl);
	cr_expect_eq(h.closes[1].tx_bytes, PAYLOAD_LEN, "tx_bytes %llu",
		     (unsigned long long)h.closes[1].tx_bytes);
	close(l);
	close(fd);
}

/* A connect() the kernel fails after the hook let it through (no route:
 * no SYN goes) gives its place back when the socket is released, and is
 * not reported as a flow (there was no connection). */
Test(flows, a_tcp_connect_that_sends_no_syn_leaves_its_place)
{
	struct probe p = { P_TCP, AF_INET, "203.0.113.77", 8080 };
	int fd = h_map_fd(&h, "weir_tcpsocks"), held, left;

	cr_assert_eq(h_probe(&h, &p, NULL), ENETUNREACH);
	places(fd, &held, &left);
	cr_expect_eq(held, 0, "%d places still held", held);
	cr_expect_eq(left, 1, "%d places left", left);
	h_events(&h);
	cr_expect_eq(h.ncl, 0, "a close event for a connection that never was");
	close(fd);
}

/* n datagrams on one UDP socket connected to [addr6]:port: 0 or errno. */
struct burst {
	const char *addr6;
	int port, n;
};

static int burst_child(void *arg)
{
	const struct burst *b = arg;
	struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(b->port) };
	int fd = socket(AF_INET6, SOCK_DGRAM, 0), i;

	if (fd < 0 || inet_pton(AF_INET6, b->addr6, &s.sin6_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&s, sizeof(s)))
		return errno ?: 100;
	for (i = 0; i < b->n; i++)
		if (send(fd, "weir-probe", PAYLOAD_LEN, 0) < 0)
			return errno;
	close(fd);
	return 0;
}

/*
 * IPv6, connected UDP: every datagram is let out by the backstop's cache
 * hit (read in place, before any parse) and counted for the flow, and none
 * of them is reported as the backstop's own decision.
 */
Test(flows, connected_udp6_counts_each_datagram_on_the_cache_hit_path)
{
	int u = h_listen_udp("2001:db8::1", 8080), i;
	struct burst b = { "2001:db8::1", 8080, 5 };
	const struct weir_event *e;
	pid_t pid;

	pid = h_spawn(&h, burst_child, &b);
	cr_assert_eq(h_wait(pid), 0);
	for (i = 0; i < b.n; i++)
		cr_assert(h_udp_got(u), "datagram %d did not arrive", i);
	e = wait_close();
	cr_assert_not_null(e, "no close event");
	cr_expect_eq(e->tx_bytes, b.n * PAYLOAD_LEN, "tx_bytes %llu",
		     (unsigned long long)e->tx_bytes);
	cr_expect_eq(e->family, AF_INET6);
	cr_expect_eq(e->pid, (__u32)pid);
	cr_expect_eq(e->rule, WEIR_RULE_ID(WEIR_RK_ALLOW, 2));
	for (i = 0; i < h.nev; i++)
		cr_expect_neq(h.ev[i].op, WEIR_OP_EGRESS, "the backstop reported allowed traffic");
	close(u);
}

/* How many events say a budget is spent; *rule: the last one's rule. */
static int budget_events(__u32 *rule)
{
	int i, n = 0;

	h_events(&h);
	for (i = 0; i < h.nev; i++) {
		if (h.ev[i].reason != WEIR_R_BUDGET)
			continue;
		n++;
		*rule = h.ev[i].rule;
	}
	return n;
}

Test(flows, upload_budget_lets_its_bytes_out_then_refuses_once)
{
	int u = h_listen_udp("192.0.2.2", 8080);
	struct probe p = { P_UDP_CONNECT, AF_INET, "192.0.2.2", 8080 };
	struct probe v6 = { P_UDP_CONNECT, AF_INET6, "::ffff:192.0.2.2", 8080 };
	__u32 rule = 0;
	int i;

	for (i = 0; i < 2; i++) {
		cr_assert_eq(h_probe(&h, &p, NULL), 0, "probe %d within the budget", i);
		cr_assert(h_udp_got(u));
	}
	cr_expect_eq(budget_events(&rule), 0);
	cr_expect_eq(h_probe(&h, &p, NULL), EPERM, "past the budget");
	cr_expect_eq(h_probe(&h, &v6, NULL), EPERM, "past the budget, IPv4-mapped");
	cr_expect_not(h_udp_got(u), "a datagram past the budget arrived");
	cr_expect_eq(budget_events(&rule), 1, "one event per attachment and rule");
	cr_expect_eq(rule, WEIR_RULE_ID(WEIR_RK_ALLOW, 1), "rule 0x%x", rule);
	close(u);
}

/* --- unconnected UDP: each allowed destination reported once ------------- */

static const char *const policy_udests = "version: 1\n"
					 "allow:\n"
					 "  - ip: 192.0.2.1\n" /* allow[0] */
					 "    ports: [8080, 8081]\n";


/* n datagrams from fd to addr:port; how many were refused with EPERM. */
static int sendto_n(int fd, const char *addr, int port, int n)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
	int i, eperm = 0;

	inet_pton(AF_INET, addr, &s.sin_addr);
	for (i = 0; i < n; i++)
		if (sendto(fd, "weir-probe", 10, 0, (struct sockaddr *)&s, sizeof(s)) < 0)
			eperm += errno == EPERM;
	return eperm;
}

/* 5 datagrams to 8080, 3 to 8081 (allowed), 2 to 192.0.2.9 (denied). */
static int udests_child(void *arg)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0), bad = 0;

	bad += sendto_n(fd, "192.0.2.1", 8080, 5);
	bad += sendto_n(fd, "192.0.2.1", 8081, 3);
	if (bad || sendto_n(fd, "192.0.2.9", 8080, 2) != 2)
		return 1;
	close(fd);
	return 0;
}

/* Decision events of op, verdict and port; close events of addr:port with
 * WEIR_EF_DEST, their datagrams in *dg (in order). */
static int count_ev(__u8 op, __u8 verdict, int port)
{
	int i, n = 0;

	for (i = 0; i < h.nev; i++)
		n += h.ev[i].op == op && h.ev[i].verdict == verdict && h.ev[i].port == port;
	return n;
}

static int dest_closes(int port, __u64 dg[4], __u32 *pid)
{
	int i, n = 0;

	for (i = 0; i < h.ncl; i++) {
		if (!(h.closes[i].flags & WEIR_EF_DEST) || h.closes[i].port != port)
			continue;
		if (n < 4)
			dg[n] = h.closes[i].datagrams;
		*pid = h.closes[i].pid;
		n++;
	}
	return n;
}

static void wait_closes(int n)
{
	int i;

	for (i = 0; i < 100 && h.ncl < n; i++) {
		h_events(&h);
		if (h.ncl < n)
			usleep(10000);
	}
}

Test(flows, unconnected_udp_reports_each_allowed_destination_once_and_counts_it)
{
	int a = h_listen_udp("192.0.2.1", 8080), b = h_listen_udp("192.0.2.1", 8081);
	__u64 dg[4] = {};
	__u32 cpid = 0;
	pid_t pid;

	h_stop(&h);
	h_start(&h, policy_udests, NULL);
	pid = h_spawn(&h, udests_child, NULL);
	cr_assert_eq(h_wait(pid), 0, "an allowed datagram was refused or a denied one sent");
	cr_assert(h_udp_got(a));
	cr_assert(h_udp_got(b));
	wait_closes(2);
	cr_expect_eq(count_ev(WEIR_OP_SENDMSG4, WEIR_V_ALLOW, 8080), 1, "8080: one event");
	cr_expect_eq(count_ev(WEIR_OP_SENDMSG4, WEIR_V_ALLOW, 8081), 1, "8081: one event");
	cr_expect_eq(count_ev(WEIR_OP_SENDMSG4, WEIR_V_DENY, 8080), 2, "denied: per datagram");
	cr_assert_eq(dest_closes(8080, dg, &cpid), 1);
	cr_expect_eq(dg[0], 5);
	cr_expect_eq(cpid, (__u32)pid);
	cr_assert_eq(dest_closes(8081, dg, &cpid), 1);
	cr_expect_eq(dg[0], 3);
	cr_expect_eq(h.closes[0].rule, WEIR_RULE_ID(WEIR_RK_ALLOW, 0));
	cr_expect_eq(h.closes[0].verdict, WEIR_V_ALLOW);
	close(a);
	close(b);
}

/* 2 datagrams, then the parent reloads (same policy), 2 more, then the
 * parent reloads a policy denying it, 2 more (refused). */
static int reload_child(void *arg)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char c;

	if (sendto_n(fd, "192.0.2.1", 8080, 2) || write(to_parent[1], "x", 1) != 1 ||
	    read(to_child[0], &c, 1) != 1)
		return 1;
	if (sendto_n(fd, "192.0.2.1", 8080, 2) || write(to_parent[1], "x", 1) != 1 ||
	    read(to_child[0], &c, 1) != 1)
		return 2;
	if (sendto_n(fd, "192.0.2.1", 8080, 2) != 2)
		return 3;
	close(fd);
	return 0;
}

static void apply(const char *y)
{
	struct compile_input in = {};
	char err[POLICY_ERR_LEN];
	struct policy *pol;
	struct compiled c;

	cr_assert_eq(policy_load_buffer("t.yaml", y, strlen(y), &pol, err), 0, "%s", err);
	in.policy = pol;
	cr_assert_eq(compile_policy(&in, &c, err), 0, "%s", err);
	cr_assert_eq(egress_apply(h.eg, &c), 0);
	compiled_free(&c);
	policy_free(pol);
}

Test(flows, unconnected_udp_destination_is_judged_and_reported_again_after_a_reload)
{
	int a = h_listen_udp("192.0.2.1", 8080);
	__u64 dg[4] = {};
	__u32 cpid = 0;
	pid_t pid;
	char c;

	h_stop(&h);
	h_start(&h, policy_udests, NULL);
	cr_assert_eq(pipe(to_parent), 0);
	cr_assert_eq(pipe(to_child), 0);
	pid = h_spawn(&h, reload_child, NULL);
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	apply(policy_udests); /* the same rules, a new generation */
	cr_assert_eq(write(to_child[1], "x", 1), 1);
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	apply("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: [9999]\n");
	cr_assert_eq(write(to_child[1], "x", 1), 1);
	cr_assert_eq(h_wait(pid), 0, "the child saw another outcome than allow, allow, deny");
	cr_assert(h_udp_got(a));
	wait_closes(2);
	cr_expect_eq(count_ev(WEIR_OP_SENDMSG4, WEIR_V_ALLOW, 8080), 2,
		     "one event per policy generation");
	cr_expect_eq(count_ev(WEIR_OP_SENDMSG4, WEIR_V_DENY, 8080), 2, "denied after: per datagram");
	cr_assert_eq(dest_closes(8080, dg, &cpid), 2);
	cr_expect_eq(dg[0], 2);
	cr_expect_eq(dg[1], 2);
	close(a);
}
