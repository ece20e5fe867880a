// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2: flows and upload budgets (bpf/flows.bpf.h) on a real cgroup: the
 * close event of a real connection counts its payload and names the task
 * that connected; a rule's upload budget lets exactly its bytes out, then
 * refuses, and says so once.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "harness.h"

#define PAYLOAD_LEN 11 /* the probe's "weir-probe" and its NUL */

static const char *const policy_flows =
	"version: 1\n"
	"allow:\n"
	"  - ip: 192.0.2.1\n" /* allow[0] */
	"    ports: [8080]\n"
	"  - ip: 192.0.2.2\n" /* allow[1]: two probes' worth, no more */
	"    ports: [8080]\n"
	"    upload_budget: 22B\n";

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
