// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2: weir policy verify's userspace verdict (user/lifecycle/judge.c)
 * against the kernel's on random policies and destinations. Both run
 * bpf/verdict.bpf.h's weir_judge; what this checks is the rest: the
 * userspace longest-prefix match over the compiled entries against the
 * kernel's LPM tries, port sets against weir_portsets, and the address
 * handling before the judgement. Every probe is a real sendto() or
 * connect() in a throwaway cgroup; the kernel's event is the answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <criterion/criterion.h>

#include "harness.h"
#include "judge.h"

#define RULES 14
#define PROBES 120

static const char *const ports[] = { "", "    ports: [80]\n", "    ports: [443, 8000-8100]\n",
				     "    ports: [80, 443, 9000]\n", "    ports: 8050\n" };
static const char *const protos[] = { "", "    proto: tcp\n", "    proto: udp\n" };
static const int probe_ports[] = { 80, 443, 8000, 8050, 8101, 9000 };

/* The rules' first addresses: probes go near them half the time, so the
 * longest prefixes (a /32 inside a /26 inside the /24) are met often. */
static int base4[RULES], base6[RULES], nb4, nb6;

/* A rule on a random prefix of 192.0.2.0/24 (nested often: few bits) or
 * of 2001:db8::/120. */
static void add_rule(char *buf, size_t len, unsigned int *seed)
{
	size_t n = strlen(buf);
	int plen;

	if (rand_r(seed) % 4) {
		plen = 24 + rand_r(seed) % 9;
		base4[nb4] = (rand_r(seed) % 256) & (plen == 24 ? 0 : ~0u << (32 - plen));
		n += snprintf(buf + n, len - n, "  - cidr: 192.0.2.%d/%d\n", base4[nb4++], plen);
	} else {
		plen = 120 + rand_r(seed) % 9;
		base6[nb6] = (rand_r(seed) % 256) & (plen == 120 ? 0 : ~0u << (128 - plen));
		n += snprintf(buf + n, len - n, "  - cidr: 2001:db8::%x/%d\n", base6[nb6++], plen);
	}
	snprintf(buf + n, len - n, "%s%s", ports[rand_r(seed) % 5], protos[rand_r(seed) % 3]);
}

static char *random_policy(unsigned int *seed)
{
	static char allow[8192], deny[8192], out[16384];
	int i;

	nb4 = nb6 = 0;
	strcpy(allow, "allow:\n");
	strcpy(deny, "deny:\n");
	for (i = 0; i < RULES; i++)
		add_rule(rand_r(seed) % 3 ? allow : deny, sizeof(allow), seed);
	snprintf(out, sizeof(out), "version: 1\nloopback: deny\n%s%s", allow,
		 strlen(deny) > 7 ? deny : "");
	return out;
}

static struct matcher *matcher_of(const char *yaml)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN];
	struct matcher *m;
	struct policy *p;

	cr_assert_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, err), 0, "%s", err);
	cr_assert_eq(matcher_new(p, &m, cerr), 0, "%s", cerr);
	return m;
}

static int n_allow, n_deny, n_port;

static void compare(unsigned int seed)
{
	unsigned int s = seed;
	const char *yaml = random_policy(&s);
	struct matcher *m = matcher_of(yaml);
	struct harness h;
	int i;

	h_start(&h, yaml, NULL);
	for (i = 0; i < PROBES; i++) {
		bool v6 = !(rand_r(&s) % 4);
		char addr[64];
		struct probe p = { rand_r(&s) % 2 ? P_TCP : P_UDP_SENDTO, v6 ? AF_INET6 : AF_INET,
				   addr, probe_ports[rand_r(&s) % 6] };
		const struct weir_event *e;
		struct judgement j;
		__u8 a[16] = {};

		int near = rand_r(&s) % 2, off = rand_r(&s) % 3;
		int a4 = near && nb4 ? (base4[rand_r(&s) % nb4] + off) % 256 : rand_r(&s) % 256;
		int a6 = near && nb6 ? (base6[rand_r(&s) % nb6] + off) % 256 : rand_r(&s) % 256;

		if (v6)
			snprintf(addr, sizeof(addr), "2001:db8::%x", a6);
		else if (rand_r(&s) % 8 == 0) /* a dual-stack program's IPv4-mapped form */
			snprintf(addr, sizeof(addr), "::ffff:192.0.2.%d", a4), p.sock_family = AF_INET6;
		else
			snprintf(addr, sizeof(addr), "192.0.2.%d", a4);
		h.nev = 0;
		h_probe(&h, &p, NULL);
		e = h_events(&h);
		cr_assert_not_null(e, "seed %u probe %d: no event", seed, i);
		h_addr(addr, a);
		judge_conn(m, p.sock_family, a, (__u16)p.port, p.mode == P_TCP ? 6 : 17, NULL, &j);
		cr_assert(e->verdict == j.verdict && e->rule == j.rule && e->reason == j.reason,
			  "seed %u probe %d %s %s:%d: kernel verdict %u rule 0x%x reason %u, "
			  "userspace %u 0x%x %u; policy:\n%s",
			  seed, i, p.mode == P_TCP ? "tcp" : "udp", addr, p.port, e->verdict, e->rule,
			  e->reason, j.verdict, j.rule, j.reason, yaml);
		n_allow += j.verdict == WEIR_V_ALLOW;
		n_deny += j.verdict == WEIR_V_DENY;
		n_port += j.reason == WEIR_R_PORT;
	}
	h_stop(&h);
	matcher_free(m);
}

TestSuite(judge, .init = h_netns, .timeout = 120);

Test(judge, userspace_matches_the_kernel_on_random_policies)
{
	unsigned int seeds[] = { 1, 2, 3, (unsigned int)time(NULL) };
	size_t i;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		compare(seeds[i]);
	/* The cases must be mixed for the comparison to mean anything. */
	cr_assert(n_allow > 40 && n_deny > 40 && n_port > 10, "allow %d, deny %d, port %d", n_allow,
		  n_deny, n_port);
}
