// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: the resolver's decisions and DNS wire handling, without sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <ldns/ldns.h>

#include "dns.h"
#include "dnsmsg.h"
#include "../common/slow.h" /* once per test binary: unit-tests */

static struct policy *load(const char *yaml)
{
	char err[POLICY_ERR_LEN];
	struct policy *p;

	cr_assert_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, err), 0, "%s", err);
	return p;
}

static const char *const pol = "version: 1\n"
			       "allow:\n"
			       "  - domain: github.com\n" /* allow[0] */
			       "    ports: [443]\n"
			       "    proto: tcp\n"
			       "  - domain: \"*.npmjs.org\"\n" /* allow[1] */
			       "  - domain: \"**.githubusercontent.com\"\n" /* allow[2] */
			       "    ports: [443, 8000-8100]\n"
			       "deny:\n"
			       "  - domain: \"*.evil.npmjs.org\"\n"; /* deny[0] */

Test(dns, judge_names)
{
	static const struct {
		const char *name;
		int allowed;
		__u32 rule;
	} cases[] = {
		{ "github.com", 1, WEIR_RULE_ID(WEIR_RK_ALLOW, 0) },
		{ "api.github.com", 0, 0 },
		{ "registry.npmjs.org", 1, WEIR_RULE_ID(WEIR_RK_ALLOW, 1) },
		{ "npmjs.org", 0, 0 },
		{ "a.b.npmjs.org", 0, 0 },
		{ "x.evil.npmjs.org", 0, WEIR_RULE_ID(WEIR_RK_DENY, 0) },
		{ "raw.githubusercontent.com", 1, WEIR_RULE_ID(WEIR_RK_ALLOW, 2) },
		{ "a.b.c.githubusercontent.com", 1, WEIR_RULE_ID(WEIR_RK_ALLOW, 2) },
		{ "githubusercontent.com", 0, 0 },
		{ "secret-0123.attacker.example", 0, 0 },
		/* One label "x.evil" (a dot inside it) and "npmjs" "org": under
		 * npmjs.org only as two labels, never as "*.npmjs.org". */
		{ "x\\.evil.npmjs.org", 0, 0 },
		{ "a\\000b.npmjs.org", 0, 0 },
		{ ".", 0, 0 },
	};
	struct weir_portrange r[WEIR_LEARN_RANGES];
	struct policy *p = load(pol);
	size_t i, nr;
	__u32 rule;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(dns_judge_name(p, cases[i].name, &rule, r, &nr), cases[i].allowed, "%s",
			     cases[i].name);
		cr_expect_eq(rule, cases[i].rule, "%s: rule 0x%x", cases[i].name, rule);
	}
	cr_assert_eq(dns_judge_name(p, "github.com", &rule, r, &nr), 1);
	cr_expect_eq(nr, 1);
	cr_expect_eq(r[0].lo, 443);
	cr_expect_eq(r[0].protos, WEIR_P_TCP);
	cr_assert_eq(dns_judge_name(p, "x.githubusercontent.com", &rule, r, &nr), 1);
	cr_expect_eq(nr, 2);
	cr_expect_eq(r[1].lo, 8000);
	cr_expect_eq(r[1].hi, 8100);
	policy_free(p);
}

Test(dns, names_from_several_rules_union_their_ports)
{
	struct policy *p = load("version: 1\nallow:\n  - domain: a.example.com\n    ports: [443]\n"
				"  - domain: \"*.example.com\"\n    ports: [80]\n");
	struct weir_portrange r[WEIR_LEARN_RANGES];
	size_t nr;
	__u32 rule;

	cr_assert_eq(dns_judge_name(p, "a.example.com", &rule, r, &nr), 1);
	cr_expect_eq(rule, WEIR_RULE_ID(WEIR_RK_ALLOW, 0));
	cr_expect_eq(nr, 2);
	policy_free(p);
}

Test(dns, upstream_parsing)
{
	struct dns_upstream u;

	cr_expect_eq(dns_parse_upstream("192.0.2.53", &u), 0);
	cr_expect_eq(ntohs(((struct sockaddr_in *)&u.sa)->sin_port), 53);
	cr_expect_eq(dns_parse_upstream("192.0.2.53:5353", &u), 0);
	cr_expect_eq(ntohs(((struct sockaddr_in *)&u.sa)->sin_port), 5353);
	cr_expect_eq(dns_parse_upstream("2001:db8::53", &u), 0);
	cr_expect_eq(u.sa.ss_family, AF_INET6);
	cr_expect_eq(dns_parse_upstream("[2001:db8::53]:5353", &u), 0);
	cr_expect_eq(ntohs(((struct sockaddr_in6 *)&u.sa)->sin6_port), 5353);
	cr_expect_neq(dns_parse_upstream("dns.example", &u), 0);
	cr_expect_neq(dns_parse_upstream("192.0.2.53:0", &u), 0);
	cr_expect_neq(dns_parse_upstream("192.0.2.53:70000", &u), 0);
	cr_expect_neq(dns_parse_upstream("[2001:db8::53", &u), 0);
}

Test(dns, policy_section)
{
	struct policy *p = load("version: 1\ndns:\n  upstream: [192.0.2.53, \"[2001:db8::53]:5353\"]\n"
				"  ttl_min: 1\n  ttl_max: 30\n  max_addresses: 8\n  static: never\n");

	cr_expect_eq(p->dns.n_upstream, 2);
	cr_expect_str_eq(p->dns.upstream[1], "[2001:db8::53]:5353");
	cr_expect_eq(p->dns.ttl_min, 1);
	cr_expect_eq(p->dns.ttl_max, 30);
	cr_expect_eq(p->dns.max_addresses, 8);
	cr_expect_eq(p->dns.static_mode, DNS_STATIC_NEVER);
	policy_free(p);
	p = load("version: 1\n");
	cr_expect_eq(p->dns.ttl_min, POLICY_DNS_TTL_MIN);
	cr_expect_eq(p->dns.ttl_max, POLICY_DNS_TTL_MAX);
	cr_expect_eq(p->dns.static_mode, DNS_STATIC_AUTO);
	policy_free(p);
}

static void expect_error(const char *yaml, const char *where, const char *what)
{
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = NULL;

	cr_assert_lt(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, err), 0, "%s", yaml);
	cr_expect(strstr(err, where), "want %s in: %s", where, err);
	cr_expect(strstr(err, what), "want %s in: %s", what, err);
	cr_expect_null(p);
}

Test(dns, policy_section_errors)
{
	expect_error("version: 1\ndns:\n  upstream: [dns.example]\n", "t.yaml:3:14:",
		     "not IP, IP:PORT");
	expect_error("version: 1\ndns:\n  ttl_min: -1\n", "t.yaml:3:12:", "dns.ttl_min");
	expect_error("version: 1\ndns:\n  ttl_min: 60\n  ttl_max: 10\n", "t.yaml:3:3:",
		     "ttl_min (60) is above ttl_max (10)");
	expect_error("version: 1\ndns:\n  static: sometimes\n", "t.yaml:3:11:", "dns.static");
	expect_error("version: 1\ndns:\n  upstreams: [192.0.2.53]\n", "t.yaml:3:3:",
		     "unknown key 'upstreams'");
	expect_error("version: 1\ndns: [192.0.2.53]\n", "t.yaml:2:6:", "expected a mapping");
}

/* --- wire format ------------------------------------------------------------- */

static size_t make_query(const char *name, ldns_rr_type type, bool edns, __u8 *out)
{
	ldns_pkt *q = NULL;
	__u8 *wire = NULL;
	size_t len = 0;

	cr_assert_eq(ldns_pkt_query_new_frm_str(&q, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
		     LDNS_STATUS_OK);
	ldns_pkt_set_id(q, 0x1234);
	if (edns)
		ldns_pkt_set_edns_udp_size(q, 1232);
	cr_assert_eq(ldns_pkt2wire(&wire, q, &len), LDNS_STATUS_OK);
	memcpy(out, wire, len);
	free(wire);
	ldns_pkt_free(q);
	return len;
}

/* A broken upstream is said once per kind of failure, not once per query. */
Test(dns, upstream_failures_said_once, .init = cr_redirect_stderr)
{
	struct dns_upstream a, b;
	int i, lines = 0;
	char who[64];

	cr_assert_eq(dns_parse_upstream("192.0.2.53", &a), 0);
	cr_assert_eq(dns_parse_upstream("[2001:db8::53]:5353", &b), 0);
	dns_upstream_format(&b, who, sizeof(who));
	cr_expect_str_eq(who, "[2001:db8::53]:5353");
	cr_expect(dns_upstream_note(&a, -ETIMEDOUT));
	cr_expect_not(dns_upstream_note(&a, -ETIMEDOUT));
	cr_expect_not(dns_upstream_note(&a, -ETIMEDOUT));
	cr_expect(dns_upstream_note(&b, -ETIMEDOUT), "each upstream is said");
	cr_expect(dns_upstream_note(&a, -ECONNREFUSED), "another kind is said");
	cr_expect_not(dns_upstream_note(&a, -ECONNREFUSED));
	cr_expect(dns_upstream_note(&a, 0), "recovery is said");
	cr_expect_not(dns_upstream_note(&a, 0));
	cr_expect(dns_upstream_note(&a, -ECONNREFUSED), "failing again is said again");
	/* SERVFAIL: once per upstream, answers in between or not. */
	cr_expect(dns_upstream_note(&a, -EREMOTEIO));
	cr_expect_not(dns_upstream_note(&a, -EREMOTEIO));
	cr_expect(dns_upstream_note(&b, 0), "b's recovery is its own");
	/* The command picks what it asks: an upstream that answers some
	 * queries and not others (UDP and not TCP) must not make a line for
	 * each. After four, a while passes between two. */
	cr_expect_not(dns_upstream_note(&a, 0), "a fifth line at once");
	for (i = 0; i < 100; i++)
		lines += dns_upstream_note(&a, 0) + dns_upstream_note(&a, -ECONNRESET);
	cr_expect_eq(lines, 0, "%d lines for 100 answers and failures in turn", lines);
	cr_expect(dns_upstream_note(&b, -ECONNREFUSED), "b has lines of its own");
	cr_expect_str_eq(dns_upstream_reason(-ETIMEDOUT), "upstream-timeout");
	cr_expect_str_eq(dns_upstream_reason(-ECONNREFUSED), "upstream-unreachable");
	cr_expect_str_eq(dns_upstream_reason(-EREMOTEIO), "upstream-servfail");
}

Test(dnsmsg, parse_query)
{
	struct dns_question q;
	__u8 w[512];
	size_t n = make_query("Secret.Attacker.Example.", LDNS_RR_TYPE_TXT, true, w);

	cr_assert_eq(dns_parse_query(w, n, &q), 0);
	cr_expect_str_eq(q.name, "secret.attacker.example");
	cr_expect_eq(q.qtype, LDNS_RR_TYPE_TXT);
	cr_expect_eq(q.id, 0x1234);
	cr_expect(q.edns);
	cr_expect_neq(dns_parse_query(w, 5, &q), 0, "a truncated query parsed");
	cr_expect_neq(dns_parse_query((const __u8 *)"garbage-bytes-not-dns", 21, &q), 0);
}

/* Only the shape of a query reaches ldns (it leaks on some malformed
 * additional sections: the fuzzer's input below). */
Test(dnsmsg, query_shape_checked_before_ldns)
{
	static const char leaky[] =
		"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x6c\x00\x03web";
	struct dns_question q;
	__u8 w[512];
	size_t n = make_query("a.example.", LDNS_RR_TYPE_A, false, w);

	cr_assert_eq(dns_parse_query(w, n, &q), 0, "a plain query");
	w[11] = 2; /* ARCOUNT 2 */
	cr_expect_neq(dns_parse_query(w, n, &q), 0, "two additional records");
	w[11] = 0;
	w[7] = 1; /* ANCOUNT 1 */
	cr_expect_neq(dns_parse_query(w, n, &q), 0, "an answer in a query");
	w[7] = 0;
	w[5] = 2; /* QDCOUNT 2 */
	cr_expect_neq(dns_parse_query(w, n, &q), 0, "two questions");
	cr_expect_neq(dns_parse_query((const __u8 *)leaky, sizeof(leaky) - 1, &q), 0,
		      "108 additional records");
}

/*
 * R8-14: what weir forwards for an allowed name is the question and its
 * own OPT, never the asker's other bytes: an additional record (a TXT
 * carrying data), EDNS options (a cookie, padding), header bits.
 */
Test(dnsmsg, forwarded_query_carries_the_question_only)
{
	static const __u8 txt[] = { 9, 's', 'e', 'c', 'r', 'e', 't', '-', 'a', 'r', 0,
				    0, 16, 0, 1, 0, 0, 0, 60, 0, 7, 6, 's', 'e', 'c', 'r', 'e', 't' };
	static const __u8 opt[] = { 0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 12, 0, 10, 0, 8,
				    'c', 'o', 'o', 'k', 'i', 'e', '!', '!' };
	__u8 w[512], out[DNS_CLEAN_MAX];
	struct dns_question q;
	size_t n = make_query("ok.example.", LDNS_RR_TYPE_A, false, w), qend = n;
	int m;

	/* A TXT record in the additional section: dropped. */
	memcpy(w + n, txt, sizeof(txt));
	w[11] = 1;
	w[2] |= 0x04 | 0x02; /* AA, TC: not the asker's to set */
	cr_assert_eq(dns_parse_query(w, n + sizeof(txt), &q), 0, "ldns takes it");
	m = dns_clean_query(w, n + sizeof(txt), out, sizeof(out));
	cr_assert_eq(m, (int)qend, "the header and the question only");
	cr_expect_eq(out[11], 0, "ARCOUNT 0");
	cr_expect_eq(out[2], 0x01, "RD kept, AA and TC not");
	cr_expect(!memcmp(out + 12, w + 12, qend - 12), "the question as asked");
	cr_expect(!memmem(out, m, "secret", 6));
	/* An OPT with a cookie option and a 4096 size, DO set: weir's own. */
	memcpy(w + qend, opt, sizeof(opt));
	m = dns_clean_query(w, qend + sizeof(opt), out, sizeof(out));
	cr_assert_eq(m, (int)qend + 11, "an OPT with no options");
	cr_expect_eq(out[11], 1);
	cr_expect_eq(out[qend + 3] << 8 | out[qend + 4], 4096);
	cr_expect_eq(out[qend + 7], 0x80, "DO kept");
	cr_expect(!memmem(out, m, "cookie", 6));
	/* A pointer in the question's name: no query weir writes. */
	w[12] = 0xc0;
	cr_expect_lt(dns_clean_query(w, qend, out, sizeof(out)), 0);
}

Test(dnsmsg, refused_carries_ede_only_with_edns)
{
	__u8 w[512], r[512];
	size_t n = make_query("x.example.", LDNS_RR_TYPE_A, true, w);
	ldns_pkt *p = NULL;
	ldns_edns_option_list *opts;
	int len;

	len = dns_refused(w, n, "blocked by weir policy", r, sizeof(r));
	cr_assert_gt(len, 0);
	cr_assert_eq(ldns_wire2pkt(&p, r, len), LDNS_STATUS_OK);
	cr_expect_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	cr_expect_eq(ldns_pkt_id(p), 0x1234);
	cr_expect(ldns_pkt_qr(p));
	cr_expect_eq(ldns_pkt_ancount(p), 0);
	opts = ldns_pkt_edns_get_option_list(p);
	cr_assert_not_null(opts, "no EDNS options");
	cr_assert_eq(ldns_edns_get_code(ldns_edns_option_list_get_option(opts, 0)), LDNS_EDNS_EDE);
	cr_expect_eq(ldns_edns_get_data(ldns_edns_option_list_get_option(opts, 0))[1], 15);
	ldns_pkt_free(p);

	n = make_query("x.example.", LDNS_RR_TYPE_A, false, w);
	len = dns_refused(w, n, "blocked by weir policy", r, sizeof(r));
	cr_assert_gt(len, 0);
	cr_assert_eq(ldns_wire2pkt(&p, r, len), LDNS_STATUS_OK);
	cr_expect_not(ldns_pkt_edns(p), "OPT in the answer to a query without EDNS");
	ldns_pkt_free(p);
}

/* An answer with a CNAME chain and an off-chain record weir must ignore. */
Test(dnsmsg, answer_follows_cname_chain_only)
{
	static const char *const rrs[] = {
		"alias.test. 60 IN CNAME mid.test.",
		"mid.test. 60 IN CNAME target.test.",
		"target.test. 30 IN A 192.0.2.12",
		"unrelated.test. 60 IN A 203.0.113.66",
	};
	struct resolved_addr a[8];
	struct dns_question q = { .id = 7, .qtype = LDNS_RR_TYPE_A };
	ldns_pkt *p = NULL;
	ldns_rr *rr;
	__u8 *wire = NULL;
	size_t len, i;
	int rcode, n;

	strcpy(q.name, "alias.test");
	cr_assert_eq(ldns_pkt_query_new_frm_str(&p, "alias.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
						LDNS_RD),
		     LDNS_STATUS_OK);
	ldns_pkt_set_id(p, 7);
	ldns_pkt_set_qr(p, true);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	}
	cr_assert_eq(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	n = dns_parse_answer(wire, len, &q, a, 8, &rcode);
	cr_assert_eq(n, 1);
	cr_expect_eq(rcode, 0);
	cr_expect_eq(a[0].family, AF_INET);
	cr_expect_eq(a[0].ttl, 30);
	cr_expect_eq(memcmp(a[0].addr, "\xc0\x00\x02\x0c", 4), 0);
	q.id = 8; /* not the answer to our query */
	cr_expect_lt(dns_parse_answer(wire, len, &q, a, 8, &rcode), 0);
	free(wire);
	ldns_pkt_free(p);
}

#include "sandbox.h"

/* (uid_t)-1 means "leave unchanged" to setresuid(): never accepted. */
Test(dns, identity_rejects_impossible_ids)
{
	struct identity id;
	char why[256];

	cr_expect_neq(identity_resolve("4294967295", NULL, &id, why, sizeof(why)), 0);
	cr_expect_neq(identity_resolve("4294967296", NULL, &id, why, sizeof(why)), 0);
	cr_expect_neq(identity_resolve("-1", NULL, &id, why, sizeof(why)), 0);
	cr_expect_neq(identity_resolve("nobody", "4294967295", &id, why, sizeof(why)), 0);
	identity_free(&id);
	cr_assert_eq(identity_resolve("65534", NULL, &id, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(id.uid, 65534);
	identity_free(&id);
}
