// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: flattening a policy into trie entries, without BPF. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>

#include "compile.h"

static struct policy *load(const char *yaml)
{
	char err[POLICY_ERR_LEN];
	struct policy *p;

	cr_assert_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, err), 0, "%s", err);
	return p;
}

static const struct centry *find(const struct compiled *c, const char *pfx)
{
	char a[64];
	__u8 addr[16] = {};
	int plen, fam;
	size_t i, n;
	const struct centry *v;

	cr_assert_eq(sscanf(pfx, "%63[^/]/%d", a, &plen), 2);
	fam = strchr(a, ':') ? AF_INET6 : AF_INET;
	cr_assert_eq(inet_pton(fam, a, addr), 1);
	v = fam == AF_INET ? c->v4 : c->v6;
	n = fam == AF_INET ? c->n4 : c->n6;
	for (i = 0; i < n; i++)
		if (v[i].plen == plen && !memcmp(v[i].addr, addr, 16))
			return &v[i];
	return NULL;
}

static void compile(const char *yaml, struct compiled *c, struct policy **pp)
{
	struct compile_input in = { .policy = load(yaml) };
	char err[COMPILE_ERR_LEN];

	cr_assert_eq(compile_policy(&in, c, err), 0, "%s", err);
	*pp = (struct policy *)in.policy;
}

#define A(i) WEIR_RULE_ID(WEIR_RK_ALLOW, i)
#define D(i) WEIR_RULE_ID(WEIR_RK_DENY, i)

Test(compile, covering_constraints_are_merged_into_narrower_prefixes)
{
	struct compiled c;
	struct policy *p;
	const struct centry *e;

	compile("version: 1\nloopback: deny\nallow:\n"
		"  - cidr: 192.0.2.0/24\n    ports: [80]\n"
		"  - ip: 192.0.2.7\n    ports: [443]\n",
		&c, &p);
	e = find(&c, "192.0.2.7/32");
	cr_assert_not_null(e);
	/* Two ranges: its own 443 first, then the /24's 80. */
	cr_assert_neq(e->val.allow.set, 0);
	cr_assert_eq(c.sets[e->val.allow.set - 1].n, 2);
	cr_expect_eq(c.sets[e->val.allow.set - 1].r[0].lo, 443);
	cr_expect_eq(c.sets[e->val.allow.set - 1].r[0].rule, A(1));
	cr_expect_eq(c.sets[e->val.allow.set - 1].r[1].lo, 80);
	cr_expect_eq(c.sets[e->val.allow.set - 1].r[1].rule, A(0));
	e = find(&c, "192.0.2.0/24");
	cr_assert_not_null(e);
	cr_expect_eq(e->val.allow.set, 0);
	cr_expect_eq(e->val.allow.inl.lo, 80);
	cr_expect_eq(e->val.allow.inl.protos, WEIR_P_TCP | WEIR_P_UDP);
	compiled_free(&c);
	policy_free(p);
}

Test(compile, wider_deny_reaches_narrower_allow)
{
	struct compiled c;
	struct policy *p;
	const struct centry *e;

	compile("version: 1\nloopback: deny\nallow:\n  - ip: 198.51.100.7\n"
		"deny:\n  - cidr: 198.51.100.0/24\n",
		&c, &p);
	e = find(&c, "198.51.100.7/32");
	cr_assert_not_null(e);
	cr_expect_eq(e->val.deny.inl.rule, D(0));
	cr_expect_eq(e->val.deny.inl.protos, WEIR_P_ANY);
	cr_expect_eq(e->val.allow.inl.rule, A(0));
	compiled_free(&c);
	policy_free(p);
}

Test(compile, sibling_prefixes_do_not_leak)
{
	struct compiled c;
	struct policy *p;
	const struct centry *e;

	compile("version: 1\nloopback: deny\nallow:\n  - cidr: 192.0.2.0/25\n    ports: [1]\n"
		"  - cidr: 192.0.2.128/25\n    ports: [2]\n  - ip: 192.0.2.200\n    ports: [3]\n",
		&c, &p);
	e = find(&c, "192.0.2.200/32");
	cr_assert_neq(e->val.allow.set, 0);
	cr_assert_eq(c.sets[e->val.allow.set - 1].n, 2);
	cr_expect_eq(c.sets[e->val.allow.set - 1].r[0].lo, 3);
	cr_expect_eq(c.sets[e->val.allow.set - 1].r[1].lo, 2, "took the wrong /25");
	compiled_free(&c);
	policy_free(p);
}

Test(compile, any_port_rule_absorbs_narrower_ranges)
{
	struct compiled c;
	struct policy *p;
	const struct centry *e;

	compile("version: 1\nloopback: deny\nallow:\n  - cidr: 192.0.2.0/24\n"
		"  - ip: 192.0.2.7\n    ports: [443]\n",
		&c, &p);
	e = find(&c, "192.0.2.7/32");
	/* 443 is listed (most specific first), the /24's any-port follows. */
	cr_assert_neq(e->val.allow.set, 0);
	cr_expect_eq(c.sets[e->val.allow.set - 1].r[1].hi, 65535);
	compiled_free(&c);
	policy_free(p);
}

Test(compile, too_many_ranges_is_an_error_naming_the_prefix)
{
	struct compile_input in = {};
	char err[COMPILE_ERR_LEN] = "";
	struct compiled c;

	in.policy = load("version: 1\nallow:\n"
			 "  - cidr: 192.0.2.0/24\n    ports: [1,3,5,7,9,11,13,15,17]\n"
			 "  - ip: 192.0.2.7\n    ports: [2,4,6,8,10,12,14,16,18]\n");
	cr_assert_lt(compile_policy(&in, &c, err), 0);
	cr_expect(strstr(err, "192.0.2.7/32"), "%s", err);
	policy_free((struct policy *)in.policy);
}

Test(compile, builtin_loopback_and_metadata)
{
	struct compile_input in = {};
	char err[COMPILE_ERR_LEN];
	struct compiled c;
	const struct centry *e;

	in.policy = load("version: 1\n");
	cr_assert_eq(compile_policy(&in, &c, err), 0);
	e = find(&c, "127.0.0.0/8");
	cr_assert_not_null(e);
	cr_expect_eq(WEIR_RULE_KIND(e->val.allow.inl.rule), WEIR_RK_LOOPBACK);
	cr_assert_not_null(find(&c, "::1/128"));
	e = find(&c, "169.254.169.254/32");
	cr_assert_not_null(e);
	cr_expect(e->val.deny.inl.flags & WEIR_RF_HARD);
	cr_assert_not_null(find(&c, "fd00:ec2::254/128"));
	compiled_free(&c);
	policy_free((struct policy *)in.policy);
}

Test(compile, metadata_opened_only_by_exact_rule)
{
	struct compiled c;
	struct policy *p;

	compile("version: 1\nloopback: deny\nallow:\n  - cidr: 169.254.0.0/16\n", &c, &p);
	cr_expect_not_null(find(&c, "169.254.169.254/32"), "a wide CIDR must not open metadata");
	compiled_free(&c);
	policy_free(p);
	compile("version: 1\nloopback: deny\nallow:\n  - ip: 169.254.169.254\n", &c, &p);
	cr_expect_eq(find(&c, "169.254.169.254/32")->val.deny.inl.protos, 0);
	compiled_free(&c);
	policy_free(p);
	/* each address by its own rule only; the others stay denied */
	compile("version: 1\nallow:\n  - ip: 192.0.2.1\n  - ip: fd00:ec2::254\n"
		"  - ip: 100.100.100.200\n",
		&c, &p);
	cr_expect_eq(find(&c, "fd00:ec2::254/128")->val.deny.inl.protos, 0);
	cr_expect_eq(find(&c, "100.100.100.200/32")->val.deny.inl.protos, 0);
	cr_expect_eq(find(&c, "169.254.169.254/32")->val.deny.inl.flags, WEIR_RF_HARD);
	cr_expect_eq(find(&c, "169.254.170.2/32")->val.deny.inl.flags, WEIR_RF_HARD);
	compiled_free(&c);
	policy_free(p);
	/* R8-6: EKS Pod Identity and Azure's WireServer, under a wide allow. */
	compile("version: 1\nallow:\n  - cidr: 0.0.0.0/0\n  - cidr: ::/0\n", &c, &p);
	cr_expect_eq(find(&c, "169.254.170.23/32")->val.deny.inl.flags, WEIR_RF_HARD);
	cr_expect_eq(find(&c, "168.63.129.16/32")->val.deny.inl.flags, WEIR_RF_HARD);
	cr_expect_eq(find(&c, "fd00:ec2::23/128")->val.deny.inl.flags, WEIR_RF_HARD);
	compiled_free(&c);
	policy_free(p);
}

static size_t two_addrs(void *ctx, __u32 rule, const struct resolved_addr **out)
{
	static const struct resolved_addr a[] = {
		{ .family = AF_INET, .addr = { 192, 0, 2, 10 } },
		{ .family = AF_INET6, .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } },
	};

	*out = a;
	return rule == A(0) ? 2 : 0;
}

Test(compile, domain_rules_become_host_prefixes)
{
	struct compile_input in = { .domain_addrs = two_addrs };
	char err[COMPILE_ERR_LEN];
	struct compiled c;
	const struct centry *e;

	in.policy = load("version: 1\nloopback: deny\nallow:\n  - domain: allowed.test\n"
			 "    ports: [443]\n");
	cr_assert_eq(compile_policy(&in, &c, err), 0);
	e = find(&c, "192.0.2.10/32");
	cr_assert_not_null(e);
	cr_expect_eq(e->val.allow.inl.lo, 443);
	cr_expect_eq(e->val.allow.inl.rule, A(0));
	cr_assert_not_null(find(&c, "2001:db8::1/128"));
	compiled_free(&c);
	policy_free((struct policy *)in.policy);
}

/* Ranges carry their rule, so one rule's prefixes share one port set. */
Test(compile, port_sets_are_shared_by_one_rules_prefixes)
{
	struct compile_input in = { .domain_addrs = two_addrs };
	char err[COMPILE_ERR_LEN];
	struct compiled c;

	in.policy = load("version: 1\nloopback: deny\nallow:\n  - domain: allowed.test\n"
			 "    ports: [80, 443]\n");
	cr_assert_eq(compile_policy(&in, &c, err), 0);
	cr_expect_neq(find(&c, "192.0.2.10/32")->val.allow.set, 0);
	cr_expect_eq(find(&c, "192.0.2.10/32")->val.allow.set,
		     find(&c, "2001:db8::1/128")->val.allow.set);
	cr_expect_eq(c.nsets, 1);
	compiled_free(&c);
	policy_free((struct policy *)in.policy);
}

Test(compile, audit_flag_follows_mode)
{
	struct compiled c;
	struct policy *p;

	compile("version: 1\nmode: audit\n", &c, &p);
	cr_expect(c.audit);
	compiled_free(&c);
	policy_free(p);
}

static size_t rebinding_addrs(void *ctx, __u32 rule, const struct resolved_addr **out)
{
	static const struct resolved_addr a[] = {
		{ .family = AF_INET, .addr = { 127, 0, 0, 1 } },
		{ .family = AF_INET, .addr = { 0, 0, 0, 0 } },
		{ .family = AF_INET6, .addr = { [15] = 1 } },
		{ .family = AF_INET6, .addr = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 2 } },
		{ .family = AF_INET, .addr = { 192, 0, 2, 10 } },
	};

	*out = a;
	return 5;
}

/* A name may not open loopback when the policy denies it (DNS rebinding),
 * nor ever the unspecified address. */
Test(compile, name_addresses_cannot_rebind_to_loopback)
{
	struct compile_input in = { .domain_addrs = rebinding_addrs };
	char err[COMPILE_ERR_LEN];
	struct compiled c;

	in.policy = load("version: 1\nloopback: deny\nallow:\n  - domain: rebind.test\n");
	cr_assert_eq(compile_policy(&in, &c, err), 0);
	cr_expect_null(find(&c, "127.0.0.1/32"));
	cr_expect_null(find(&c, "127.0.0.2/32"));
	cr_expect_null(find(&c, "0.0.0.0/32"));
	cr_expect_null(find(&c, "::1/128"));
	cr_expect_not_null(find(&c, "192.0.2.10/32"));
	compiled_free(&c);
	policy_free((struct policy *)in.policy);
	in.policy = load("version: 1\nloopback: allow\nallow:\n  - domain: rebind.test\n");
	cr_assert_eq(compile_policy(&in, &c, err), 0);
	cr_expect_not_null(find(&c, "127.0.0.1/32"), "loopback: allow lets a name use it");
	cr_expect_null(find(&c, "0.0.0.0/32"));
	compiled_free(&c);
	policy_free((struct policy *)in.policy);
}

/* N IPv6 host rules, then an IPv4 rule with two port ranges (one port set). */
static char *many_rules(int n)
{
	char *y = malloc(32 + (size_t)n * 32 + 64), *w = y;
	int i;

	cr_assert_not_null(y);
	w += sprintf(w, "version: 1\nloopback: deny\nallow:\n");
	for (i = 1; i <= n; i++)
		w += sprintf(w, "  - ip: 2001:db8:1::%x\n", i);
	sprintf(w, "  - ip: 192.0.2.1\n    ports: [80, 8080]\n");
	return y;
}

/* The maps are sized from the policy: no policy is too large for them. */
Test(compile, map_sizes_fit_the_policy_two_generations_and_growth)
{
	struct compile_input in = {};
	char err[COMPILE_ERR_LEN] = "", *yaml = many_rules(20000);
	struct map_sizes ms;
	struct compiled c;

	in.policy = load(yaml);
	cr_assert_eq(compile_policy(&in, &c, err), 0, "%s", err);
	cr_assert_eq(c.n6, 20000 + 2, "20000 rules and the two metadata addresses");
	cr_assert_eq(c.nsets, 1);
	cr_assert_eq(compile_map_sizes(&c, 0, &ms, err), 0, "%s", err);
	cr_expect_geq(ms.lpm_entries, 2 * c.n6, "room for a reload's second generation");
	cr_expect_geq(ms.portsets, 2 * c.nsets + 1, "index 0 is never used");
	/* 10 static names may each come to hold 64 addresses per family. */
	cr_assert_eq(compile_map_sizes(&c, 640, &ms, err), 0, "%s", err);
	cr_expect_geq(ms.lpm_entries, 2 * (c.n6 + 640));
	cr_expect_geq(ms.portsets, 2 * (c.nsets + 4 * 640) + 1);
	compiled_free(&c);
	policy_free((struct policy *)in.policy);
	free(yaml);
}

Test(compile, map_sizes_past_32_bits_say_need_and_limit)
{
	struct compiled c = { .n4 = 3000000000u, .n6 = 1 };
	char err[COMPILE_ERR_LEN] = "";
	struct map_sizes ms;

	cr_assert_eq(compile_map_sizes(&c, 0, &ms, err), -E2BIG);
	cr_expect_str_eq(err, "policy needs 6000000002 trie entries per family; the limit is "
			      "4294967295 (split the policy)");
	c = (struct compiled){ .nsets = UINT32_MAX };
	cr_assert_eq(compile_map_sizes(&c, 0, &ms, err), -E2BIG);
	cr_expect(strstr(err, "port sets; the limit is 4294967295"), "%s", err);
}

/* weir policy check compiles too: what only compiling finds is caught there. */
Test(compile, check_prints_counts_and_catches_compile_errors)
{
	/* 192.0.2.0/24, 127.0.0.0/8, ::1 and the metadata addresses; names
	 * add theirs at run time. */
	struct policy *p = load("version: 1\nallow:\n  - cidr: 192.0.2.0/24\n    ports: [80, 443]\n"
				"  - domain: example.com\n");
	char err[COMPILE_ERR_LEN] = "", *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	cr_assert_eq(compile_check(p, f, err), 0, "%s", err);
	fclose(f);
	cr_expect_str_eq(out, "compiled: 7 IPv4 prefixes, 3 IPv6 prefixes, 1 port set (the maps "
			      "are sized to fit); inbound: 1 IPv4 prefix, 1 IPv6 prefix\n");
	free(out);
	policy_free(p);
	p = load("version: 1\nallow:\n"
		 "  - cidr: 192.0.2.0/24\n    ports: [1,3,5,7,9,11,13,15,17]\n"
		 "  - ip: 192.0.2.7\n    ports: [2,4,6,8,10,12,14,16,18]\n");
	cr_assert_eq(compile_check(p, stdout, err), -E2BIG);
	cr_expect(strstr(err, "more than 16 distinct port ranges apply to 192.0.2.7/32"), "%s", err);
	policy_free(p);
}

static const struct centry *find_in(const struct compiled *c, int fam, const char *addr, int plen)
{
	__u8 a[16] = {};
	const struct centry *v = fam == AF_INET ? c->in4 : c->in6;
	size_t i, n = fam == AF_INET ? c->nin4 : c->nin6;

	cr_assert_eq(inet_pton(fam, addr, a), 1);
	for (i = 0; i < n; i++)
		if (v[i].plen == plen && !memcmp(v[i].addr, a, 16))
			return &v[i];
	return NULL;
}

/* Inbound rules get entries of their own (written under the inbound slot
 * bit): the default is loopback peers, every port; their port sets follow
 * the egress ones and keep their indexes straight. */
Test(compile, inbound_entries)
{
	struct compiled c;
	struct policy *p;
	const struct centry *e;
	const struct weir_portset *s;

	compile("version: 1\n", &c, &p);
	cr_assert_eq(c.nin4, 1);
	cr_assert_eq(c.nin6, 1);
	e = find_in(&c, AF_INET, "127.0.0.0", 8);
	cr_assert_not_null(e);
	cr_expect_eq(e->val.allow.inl.rule, WEIR_RULE_ID(WEIR_RK_INBOUND_DEFAULT, 0));
	cr_expect_eq(e->val.allow.inl.hi, 65535);
	cr_expect_not_null(find_in(&c, AF_INET6, "::1", 128));
	cr_expect_null(find(&c, "198.51.100.7/32"));
	compiled_free(&c);
	policy_free(p);

	compile("version: 1\nallow:\n  - ip: 192.0.2.7\n    ports: [80, 443]\n"
		"inbound:\n  - cidr: 198.51.100.0/24\n    ports: [8080, 9000]\n    proto: tcp\n"
		"  - ip: 198.51.100.7\n    ports: [53]\n    proto: udp\n",
		&c, &p);
	cr_expect_eq(c.nin6, 0, "no loopback default once the list is given");
	cr_expect_null(find_in(&c, AF_INET, "127.0.0.0", 8));
	e = find_in(&c, AF_INET, "198.51.100.7", 32);
	cr_assert_not_null(e);
	cr_assert_neq(e->val.allow.set, 0);
	cr_assert_leq(e->val.allow.set, c.nsets);
	s = &c.sets[e->val.allow.set - 1];
	cr_assert_eq(s->n, 3, "its own 53/udp, then the /24's 8080 and 9000");
	cr_expect_eq(s->r[0].lo, 53);
	cr_expect_eq(s->r[0].rule, WEIR_RULE_ID(WEIR_RK_INBOUND, 1));
	cr_expect_eq(s->r[1].protos, WEIR_P_TCP);
	/* The egress entry's set is still its own. */
	e = find(&c, "192.0.2.7/32");
	cr_assert_not_null(e);
	cr_expect_eq(c.sets[e->val.allow.set - 1].r[0].lo, 80);
	cr_expect_null(find(&c, "198.51.100.7/32"), "inbound peers are not egress destinations");
	compiled_free(&c);
	policy_free(p);

	compile("version: 1\ninbound: any\n", &c, &p);
	e = find_in(&c, AF_INET, "0.0.0.0", 0);
	cr_assert_not_null(e);
	cr_expect_eq(e->val.allow.inl.rule, WEIR_RULE_ID(WEIR_RK_INBOUND_ANY, 0));
	cr_expect_not_null(find_in(&c, AF_INET6, "::", 0));
	compiled_free(&c);
	policy_free(p);
}

/*
 * The flattening against a brute-force model of what it means: each
 * distinct prefix gets, per side, the ranges of every prefix covering it
 * (itself included), most specific first, each prefix's constraints in
 * rule order, a range covered by an earlier one dropped. Random policies
 * of nested IPv4 and IPv6 prefixes, list rules and runs of inline rules
 * (one crule, a rule id per entry) among them, both sides.
 */
struct mcon {
	__u8 family, plen, side, protos, flags;
	__u8 addr[16];
	__u32 rule;
	const struct port_range *ports;
	size_t n_ports;
};

static bool m_covers(const struct mcon *o, const struct mcon *i)
{
	int b;

	if (o->family != i->family || o->plen > i->plen)
		return false;
	for (b = 0; b < o->plen; b++)
		if ((o->addr[b / 8] ^ i->addr[b / 8]) & (0x80 >> (b % 8)))
			return false;
	return true;
}

static bool m_same(const struct mcon *a, const struct mcon *b)
{
	return a->family == b->family && a->plen == b->plen && !memcmp(a->addr, b->addr, 16);
}

static void m_add(struct weir_portrange *r, size_t *n, const struct weir_portrange *x)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (r[i].lo <= x->lo && r[i].hi >= x->hi && (r[i].protos & x->protos) == x->protos &&
		    (r[i].flags & WEIR_RF_HARD) >= (x->flags & WEIR_RF_HARD))
			return;
	cr_assert_lt(*n, WEIR_PORTSET_MAX);
	r[(*n)++] = *x;
}

/* The model's ranges for prefix P on SIDE, in R[0..*n). */
static void m_value(const struct mcon *m, size_t nm, const struct mcon *p, int side,
		    struct weir_portrange *r, size_t *n)
{
	int plen, j;
	size_t i;

	*n = 0;
	for (plen = p->plen; plen >= 0; plen--) {
		for (i = 0; i < nm; i++) {
			struct weir_portrange x = { .lo = 0, .hi = 65535, .protos = m[i].protos,
						    .flags = m[i].flags, .rule = m[i].rule };

			if (m[i].plen != plen || m[i].side != side || !m_covers(&m[i], p))
				continue;
			if (!m[i].n_ports)
				m_add(r, n, &x);
			for (j = 0; j < (int)m[i].n_ports; j++) {
				x.lo = m[i].ports[j].lo;
				x.hi = m[i].ports[j].hi;
				m_add(r, n, &x);
			}
		}
	}
}

static void m_check_side(const struct compiled *c, const struct weir_match *got,
			 const struct weir_portrange *r, size_t n)
{
	const struct weir_portset *s;

	if (n <= 1) {
		cr_assert_eq(got->set, 0);
		if (n)
			cr_assert_eq(memcmp(&got->inl, r, sizeof(*r)), 0);
		return;
	}
	cr_assert_neq(got->set, 0);
	cr_assert_leq(got->set, c->nsets);
	s = &c->sets[got->set - 1];
	cr_assert_eq(s->n, n);
	cr_assert_eq(memcmp(s->r, r, n * sizeof(*r)), 0);
}

Test(compile, flatten_matches_a_brute_force_model)
{
	static const struct port_range pr[] = { { 80, 80 }, { 443, 443 }, { 1000, 2000 },
						{ 1, 65535 }, { 53, 53 } };
	unsigned int seed, round;

	for (seed = 1, round = 0; round < 40; round++) {
		struct crules cr = {};
		struct mcon *m = calloc(4000, sizeof(*m));
		struct list_prefix *lists[4] = {};
		struct policy_rule *runs[600] = {};
		size_t nm = 0, i, k, e4 = 0, e6 = 0;
		char err[COMPILE_ERR_LEN];
		struct compiled c;

		srand(seed + round);
		cr_assert_not_null(m);
		for (i = 0; i < 300 + (size_t)(rand() % 300); i++) {
			struct crule r = {};
			struct mcon x = {};
			int six = rand() % 4 == 0, base = rand() % 4;

			x.family = six ? AF_INET6 : AF_INET;
			/* few bases, so prefixes nest and repeat */
			x.addr[0] = six ? 0x20 : (__u8)(192 + base);
			x.addr[1] = six ? 0x01 : 0;
			x.addr[2] = (__u8)(rand() % 3);
			x.addr[3] = (__u8)(rand() % 4 * 64);
			x.plen = (__u8)(six ? 16 + rand() % 113 : 8 + rand() % 25);
			for (k = x.plen; k < (six ? 128u : 32u); k++)
				x.addr[k / 8] &= (__u8) ~(0x80 >> (k % 8));
			x.side = rand() % 3 == 0 ? SIDE_DENY : SIDE_ALLOW;
			x.protos = rand() % 2 ? WEIR_P_ANY : WEIR_P_TCP;
			x.flags = rand() % 7 == 0 ? WEIR_RF_HARD : 0;
			x.rule = WEIR_RULE_ID(x.side == SIDE_DENY ? WEIR_RK_DENY : WEIR_RK_ALLOW, i);
			k = (size_t)(rand() % 3);
			x.ports = k ? &pr[rand() % 4] : NULL;
			x.n_ports = k;
			r = (struct crule){ .family = x.family, .plen = x.plen, .side = x.side,
					    .protos = x.protos, .flags = x.flags, .rule = x.rule,
					    .ports = x.ports, .n_ports = x.n_ports };
			memcpy(r.addr, x.addr, 16);
			if (i < 4 && rand() % 2) {
				/* a list rule: 20 entries sharing its template */
				size_t j;

				lists[i] = calloc(20, sizeof(*lists[i]));
				for (j = 0; j < 20; j++) {
					struct mcon y = x;

					y.family = j % 5 ? AF_INET : AF_INET6;
					y.addr[0] = y.family == AF_INET ? 192 : 0x20;
					y.addr[3] = (__u8)(rand() % 4 * 64);
					y.plen = y.family == AF_INET ? 32 : 128;
					memset(y.addr + (y.family == AF_INET ? 4 : 8), 0, 8);
					lists[i][j] = (struct list_prefix){ .family = y.family,
									    .plen = y.plen };
					memcpy(lists[i][j].addr, y.addr, 16);
					m[nm++] = y;
				}
				r.pfx = lists[i];
				r.n_pfx = 20;
			} else if (i >= 4 && rand() % 8 == 0) {
				/* a run: 2 to 6 rules in a row, each its own prefix
				 * and rule id, every port */
				size_t j, nr = 2 + (size_t)(rand() % 5);

				runs[i] = calloc(nr, sizeof(*runs[i]));
				cr_assert_not_null(runs[i]);
				for (j = 0; j < nr; j++) {
					struct mcon y = x;

					y.family = rand() % 4 ? AF_INET : AF_INET6;
					y.addr[0] = y.family == AF_INET ? (__u8)(192 + rand() % 4) :
									  0x20;
					y.addr[1] = y.family == AF_INET ? 0 : 0x01;
					y.addr[3] = (__u8)(rand() % 4 * 64);
					y.plen = (__u8)(y.family == AF_INET ? 8 + rand() % 25 :
									      16 + rand() % 113);
					for (k = y.plen; k < 128; k++)
						y.addr[k / 8] &= (__u8) ~(0x80 >> (k % 8));
					y.rule = x.rule + (__u32)j;
					y.ports = NULL;
					y.n_ports = 0;
					runs[i][j] = (struct policy_rule){ .kind = RULE_CIDR,
									   .family = y.family,
									   .prefixlen = y.plen,
									   .protos = y.protos };
					memcpy(runs[i][j].addr, y.addr, 16);
					m[nm++] = y;
				}
				r.run = runs[i];
				r.n_pfx = nr;
				r.ports = NULL;
				r.n_ports = 0;
			} else {
				m[nm++] = x;
			}
			cr_assert_eq(crules_add(&cr, &r), 0);
		}
		cr_assert_eq(compile_flatten(&cr, false, &c, err), 0, "%s", err);
		/* every distinct prefix once, sorted, with the model's value */
		for (i = 0; i < nm; i++) {
			const struct centry *v = m[i].family == AF_INET ? c.v4 : c.v6;
			size_t n = m[i].family == AF_INET ? c.n4 : c.n6, j, hits = 0;
			struct weir_portrange r[WEIR_PORTSET_MAX];
			size_t nr;

			for (k = 0; k < i && !m_same(&m[k], &m[i]); k++)
				;
			if (k < i)
				continue; /* seen */
			*(m[i].family == AF_INET ? &e4 : &e6) += 1;
			for (j = 0; j < n; j++) {
				struct mcon y = { .family = v[j].family, .plen = v[j].plen };

				memcpy(y.addr, v[j].addr, 16);
				if (!m_same(&y, &m[i]))
					continue;
				hits++;
				m_value(m, nm, &m[i], SIDE_DENY, r, &nr);
				m_check_side(&c, &v[j].val.deny, r, nr);
				m_value(m, nm, &m[i], SIDE_ALLOW, r, &nr);
				m_check_side(&c, &v[j].val.allow, r, nr);
			}
			cr_assert_eq(hits, 1, "round %u: prefix %zu found %zu times", round, i, hits);
		}
		cr_assert_eq(c.n4, e4);
		cr_assert_eq(c.n6, e6);
		for (i = 1; i < c.n4 + c.n6; i++) {
			const struct centry *a = &c.v4[i - 1], *b = &c.v4[i];
			int d = a->family != b->family ? a->family - b->family :
							 memcmp(a->addr, b->addr, 16);

			cr_assert(d < 0 || (d == 0 && a->plen < b->plen), "entries not sorted at %zu",
				  i);
		}
		compiled_free(&c);
		crules_free(&cr);
		for (i = 0; i < 4; i++)
			free(lists[i]);
		for (i = 0; i < 600; i++)
			free(runs[i]);
		free(m);
	}
}
