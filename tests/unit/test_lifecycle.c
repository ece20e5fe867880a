// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 1: weir policy verify and suggest. Golden outputs from the event
 * fixtures in tests/unit/lifecycle/ (the tests run from the source root),
 * and the userspace verdict (bpf/verdict.bpf.h's weir_judge) on cases
 * whose answer the kernel's is known.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "judge.h"
#include "suggest.h"
#include "verify.h"

#define FIX "tests/unit/lifecycle/"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;

	cr_assert(f, "cannot open %s (the tests run from the source root)", path);
	cr_assert(getdelim(&buf, &len, '\0', f) >= 0 || !buf || !*buf);
	fclose(f);
	return buf ? buf : strdup("");
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

static struct matcher *matcher_file(const char *path)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN];
	struct matcher *m;
	struct policy *p;

	cr_assert_eq(policy_load_file(path, &p, err), 0, "%s", err);
	cr_assert_eq(matcher_new(p, &m, cerr), 0, "%s", cerr);
	return m;
}

/* Run suggest; its stdout and stderr in *out and *notes. */
static int run_suggest(const char *base, char *files[], int n, char **out, char **notes)
{
	struct suggest_opts o = { .base_path = base };
	char err[EVREAD_ERR_LEN] = "";
	size_t len = 0, nlen = 0;
	int ret;

	o.base = base ? matcher_file(base) : matcher_of("version: 1\n");
	o.out = open_memstream(out, &len);
	o.notes = open_memstream(notes, &nlen);
	ret = suggest_events(&o, files, n, err);
	fclose(o.out);
	fclose(o.notes);
	matcher_free((struct matcher *)o.base);
	if (ret) {
		free(*notes);
		*notes = strdup(err);
	}
	return ret;
}

static int run_verify(const char *policy, char *files[], int n, char **out)
{
	struct matcher *m = matcher_file(policy);
	char err[EVREAD_ERR_LEN] = "";
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	int ret;

	ret = verify_events(m, files, n, f, err);
	fclose(f);
	matcher_free(m);
	if (ret < 0) {
		free(*out);
		*out = strdup(err);
	}
	return ret;
}

static void assert_golden(const char *got, const char *golden)
{
	char *want = slurp(golden);

	cr_assert_str_eq(got, want, "differs from %s", golden);
	free(want);
}

Test(suggest, golden_from_events)
{
	char *files[] = { FIX "events.jsonl" }, *out, *notes;

	cr_assert_eq(run_suggest(NULL, files, 1, &out, &notes), 0, "%s", notes);
	assert_golden(out, FIX "suggest.golden");
	assert_golden(notes, FIX "suggest.err.golden");
	free(out);
	free(notes);
}

/* Never *.co.uk (a public suffix), never a metadata endpoint or a name
 * weir refuses, never the addresses of a name. */
Test(suggest, never_suggests)
{
	char *files[] = { FIX "events.jsonl" }, *out, *notes;

	cr_assert_eq(run_suggest(NULL, files, 1, &out, &notes), 0);
	cr_assert_null(strstr(out, "*.co.uk"));
	cr_assert_null(strstr(out, "*.two.test"), "two siblings are not a wildcard");
	cr_assert_not_null(strstr(out, "\"*.cdn.test\""));
	cr_assert_null(strstr(out, "169.254"));
	cr_assert_null(strstr(out, "metadata"));
	cr_assert_null(strstr(out, "evil"));
	cr_assert_null(strstr(out, "192.0.2.20\""), "api.app.test's address");
	cr_assert_null(strstr(out, "192.0.2.50\""), "mirror.pkg.test's address, by name");
	cr_assert_not_null(strstr(notes, "left out x\\x5c.evil.test: an escaped"));
	free(out);
	free(notes);
}

/* The suggestion passes the parser, and verify finds it allows what
 * was seen but what suggest left out on purpose. */
Test(suggest, output_is_a_policy_that_covers_the_events)
{
	char *files[] = { FIX "events.jsonl" }, *out, *notes, *vout;
	char path[] = "/tmp/weir-suggest-XXXXXX";
	FILE *f;
	int fd;

	cr_assert_eq(run_suggest(NULL, files, 1, &out, &notes), 0);
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs(out, f);
	fclose(f);
	cr_assert_eq(run_verify(path, files, 1, &vout), 1);
	unlink(path);
	cr_assert_str_eq(vout,
			 "would deny tcp 169.254.169.254:80: 1 decision by python3; metadata-endpoint, metadata\n"
			 "would deny icmp 192.0.2.90:0: 1 decision by ping; no-matching-rule, default\n"
			 "would deny tcp y\\x5c.evil.test:443 (192.0.2.70): 1 decision by dig; no-matching-rule, default\n"
			 "would deny dns bad\\x01name.test: 1 query by dig; name-not-allowed, default\n"
			 "would deny dns metadata.google.internal: 1 query by python3; name-not-allowed, default\n"
			 "would deny dns nope.test: 1 query by getent; name-not-allowed, default\n"
			 "would deny dns x\\x5c.evil.test: 1 query by dig; name-not-allowed, default\n"
			 "7 destinations denied: 3 of 22 connection decisions, 4 of 13 DNS queries\n");
	free(vout);
	free(out);
	free(notes);
}

Test(suggest, base_only_what_it_lacks)
{
	char *files[] = { FIX "events.jsonl" }, *out, *notes;

	cr_assert_eq(run_suggest(FIX "base.yaml", files, 1, &out, &notes), 0, "%s", notes);
	assert_golden(out, FIX "suggest-base.golden");
	cr_assert_not_null(strstr(notes, "decisions the base policy allows already"));
	free(out);
	free(notes);
}

/*
 * Flows' close events: each rule's comment says what its destinations
 * sent and received (a wildcard: its names together), and a commented
 * upload_budget of twice what was sent follows. Closes of what the base
 * allows, or of flows no decision named, change nothing.
 */
Test(suggest, bytes_from_close_events)
{
	char *files[] = { FIX "flows.jsonl" }, *out, *notes;

	cr_assert_eq(run_suggest(NULL, files, 1, &out, &notes), 0, "%s", notes);
	assert_golden(out, FIX "suggest-flows.golden");
	cr_assert_null(strstr(out, "203.0.113.77"), "a close is not a decision");
	cr_assert_null(strstr(out, "127.0.0.1"));
	free(out);
	free(notes);
}

/* Uncommented, the hints are a policy with those budgets; and verify,
 * which skips close events, finds nothing the suggestion denies. */
Test(suggest, budget_hints_uncommented_load)
{
	char *files[] = { FIX "flows.jsonl" }, *out, *notes, *vout, *p, *q;
	char path[] = "/tmp/weir-suggest-XXXXXX", err[POLICY_ERR_LEN];
	struct policy *pol;
	size_t i, budgets = 0, upload = 0;
	FILE *f;
	int fd;

	cr_assert_eq(run_suggest(NULL, files, 1, &out, &notes), 0, "%s", notes);
	while ((p = strstr(out, "    # upload_budget: "))) {
		memmove(p + 4, p + 6, strlen(p + 6) + 1); /* the "# " */
		q = strstr(p, "  # ");
		cr_assert_not_null(q);
		memmove(q, strchr(q, '\n'), strlen(strchr(q, '\n')) + 1);
	}
	cr_assert_eq(policy_load_buffer("s.yaml", out, strlen(out), &pol, err), 0, "%s\n%s", err,
		     out);
	for (i = 0; i < pol->n_allow; i++) {
		budgets += pol->allow[i].upload_budget != 0;
		if (pol->allow[i].kind != RULE_DOMAIN ||
		    strcmp(pol->allow[i].domain, "upload.flow.test"))
			continue;
		cr_expect_eq(pol->allow[i].upload_budget, 8ULL << 20, "8MiB for 3.0 MB");
		upload++;
	}
	cr_expect_eq(upload, 1);
	cr_expect_eq(budgets, 3, "no budget where nothing was sent");
	policy_free(pol);
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs(out, f);
	fclose(f);
	cr_assert_eq(run_verify(path, files, 1, &vout), 0, "%s", vout);
	unlink(path);
	free(vout);
	free(out);
	free(notes);
}

Test(suggest, malformed_line_named)
{
	char *files[] = { FIX "events.jsonl", FIX "bad-noport.jsonl" }, *out, *notes;

	cr_assert_eq(run_suggest(NULL, files, 2, &out, &notes), -EINVAL);
	cr_assert_str_eq(notes, FIX "bad-noport.jsonl:3: missing integer field: port");
	free(out);
	free(notes);
}

Test(verify, golden_grouped_exit_1)
{
	char *files[] = { FIX "events.jsonl" }, *out;

	cr_assert_eq(run_verify(FIX "base.yaml", files, 1, &out), 1);
	assert_golden(out, FIX "verify.golden");
	free(out);
}

Test(verify, nothing_denied_exit_0)
{
	char *files[] = { FIX "events.jsonl" }, *out;

	cr_assert_eq(run_verify(FIX "base.yaml", files, 1, &out), 1);
	free(out);
	files[0] = FIX "allowed.jsonl";
	cr_assert_eq(run_verify(FIX "base.yaml", files, 1, &out), 0);
	cr_assert_str_eq(out, "0 destinations denied: 0 of 2 connection decisions, 0 of 1 DNS queries\n");
	free(out);
}

/* Every line kind a bad file can have, named by FILE:LINE. */
Test(verify, malformed_lines)
{
	static const char *const cases[][2] = {
		{ "{\"v\":1,\"op\":\"dns\",\n", "not a JSON event: the line ends inside the JSON value" },
		{ "[1,2]\n", "not a JSON object" },
		{ "{\"op\":\"dns\"}\n", "missing integer field: v" },
		{ "{\"v\":2,\"op\":\"dns\"}\n", "unknown schema version (this weir reads \"v\":1)" },
		{ "{\"v\":1}\n", "missing string field: op" },
		{ "{\"v\":1,\"op\":\"dns\",\"verdict\":\"deny\",\"reason\":\"x\"}\n",
		  "missing string field: name" },
		{ "{\"v\":1,\"op\":\"egress\",\"verdict\":\"deny\",\"reason\":\"x\",\"dst\":\"nope\","
		  "\"proto\":\"tcp\",\"port\":1}\n", "dst is not an IP address: nope" },
		{ "{\"v\":1,\"op\":\"connect4\",\"verdict\":\"deny\",\"reason\":\"x\",\"dst\":\"192.0.2.1\","
		  "\"proto\":\"tcp\",\"port\":70000}\n", "port out of range" },
		{ "{\"v\":1,\"op\":\"run-end\"} trailing\n", "not a JSON event: something follows the JSON value" },
		{ "weir: a human line\n", "not a JSON event" },
	};
	char path[] = "/tmp/weir-verify-XXXXXX", want[600], *files[] = { path }, *out;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = mkstemp(path);
		FILE *f = fdopen(fd, "w");

		fprintf(f, "{\"v\":1,\"op\":\"run-start\"}\n\n%s", cases[i][0]);
		fclose(f);
		cr_assert_eq(run_verify(FIX "base.yaml", files, 1, &out), -EINVAL, "case %zu", i);
		snprintf(want, sizeof(want), "%s:3: %s", path, cases[i][1]);
		cr_assert(!strncmp(out, want, strlen(want)), "case %zu: '%s', want '%s'", i, out,
			  want);
		free(out);
		unlink(path);
		strcpy(path, "/tmp/weir-verify-XXXXXX");
	}
}

static void conn(const struct matcher *m, const char *addr, __u16 port, __u16 proto,
		 const char *domain, struct judgement *j)
{
	__u8 a[16] = {};
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	cr_assert_eq(inet_pton(family, addr, a), 1);
	judge_conn(m, family, a, port, proto, domain, j);
}

/* The kernel's rules, in userspace: deny beats allow whatever the prefix
 * lengths, port sets, protocol classes, the metadata hard deny, learned
 * names, IPv4-mapped and unspecified addresses. */
Test(judge, kernel_semantics)
{
	struct matcher *m = matcher_of("version: 1\nmode: audit\nloopback: deny\n"
				       "allow:\n"
				       "  - cidr: 192.0.2.0/24\n    ports: [80, 443, 8000-8100]\n    proto: tcp\n"
				       "  - ip: 192.0.2.9\n    ports: [53, 9000]\n    proto: udp\n"
				       "  - domain: web.test\n    ports: [443]\n    proto: tcp\n"
				       "  - cidr: 2001:db8::/32\n"
				       "deny:\n  - cidr: 192.0.2.128/25\n    ports: [443]\n");
	struct judgement j;

	conn(m, "192.0.2.7", 443, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW);
	cr_assert_eq(j.reason, WEIR_R_ALLOW_RULE);
	conn(m, "192.0.2.7", 8050, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW, "a port inside a range of the set");
	conn(m, "192.0.2.7", 8101, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_DENY);
	cr_assert_eq(j.reason, WEIR_R_PORT);
	conn(m, "192.0.2.7", 443, 17, NULL, &j);
	cr_assert_eq(j.reason, WEIR_R_PORT, "udp is not tcp");
	conn(m, "192.0.2.7", 443, 262, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW, "MPTCP is tcp");
	conn(m, "192.0.2.9", 9000, 136, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW, "UDP-Lite is udp");
	conn(m, "192.0.2.200", 443, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_DENY, "deny beats allow");
	cr_assert_eq(j.reason, WEIR_R_DENY_RULE);
	cr_assert_eq(j.rule, WEIR_RULE_ID(WEIR_RK_DENY, 0));
	conn(m, "192.0.2.200", 80, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW, "the deny names 443 only");
	conn(m, "198.51.100.1", 443, 6, NULL, &j);
	cr_assert_eq(j.reason, WEIR_R_NO_MATCH);
	conn(m, "198.51.100.1", 443, 6, "web.test", &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW, "learned from an allowed name");
	cr_assert_eq(j.reason, WEIR_R_LEARNED);
	conn(m, "198.51.100.1", 80, 6, "web.test", &j);
	cr_assert_eq(j.reason, WEIR_R_PORT, "the name's rule says 443");
	conn(m, "198.51.100.1", 443, 6, "other.test", &j);
	cr_assert_eq(j.reason, WEIR_R_NO_MATCH);
	conn(m, "192.0.2.200", 443, 6, "web.test", &j);
	cr_assert_eq(j.reason, WEIR_R_DENY_RULE, "a learned address does not beat a deny");
	conn(m, "169.254.169.254", 80, 6, "web.test", &j);
	cr_assert_eq(j.verdict, WEIR_V_DENY, "metadata, even learned");
	cr_assert_eq(WEIR_RULE_KIND(j.rule), WEIR_RK_METADATA);
	conn(m, "::ffff:192.0.2.7", 443, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW, "IPv4-mapped is judged as IPv4");
	conn(m, "0.0.0.0", 80, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_DENY, "unspecified is loopback, denied here");
	conn(m, "2001:db8::5", 1, 17, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW);
	conn(m, "127.0.0.1", 80, 6, "web.test", &j);
	cr_assert_eq(j.verdict, WEIR_V_DENY, "no rebinding to a denied loopback");
	judge_name(m, "web.test", &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW);
	judge_name(m, "x.web.test", &j);
	cr_assert_eq(j.verdict, WEIR_V_DENY);
	matcher_free(m);
}

/* A loopback rule stays allowed without rules; mode: audit does not make
 * verify allow (it judges as enforce). */
Test(judge, defaults)
{
	struct matcher *m = matcher_of("version: 1\nmode: audit\n");
	struct judgement j;

	conn(m, "127.0.0.1", 80, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW);
	conn(m, "::1", 80, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_ALLOW);
	conn(m, "192.0.2.1", 80, 6, NULL, &j);
	cr_assert_eq(j.verdict, WEIR_V_DENY);
	matcher_free(m);
}

/* Tiers: the output of --base includes the base, and the two together
 * allow what was seen but what suggest left out on purpose. */
Test(suggest, base_output_includes_the_base)
{
	char *files[] = { FIX "events.jsonl" }, *out, *notes, *vout, *base;
	char dir[] = "/tmp/weir-suggest-XXXXXX", path[64];
	FILE *f;

	base = realpath(FIX "base.yaml", NULL);
	cr_assert_not_null(base);
	cr_assert_eq(run_suggest(base, files, 1, &out, &notes), 0, "%s", notes);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/app.yaml", dir);
	f = fopen(path, "w");
	fputs(out, f);
	fclose(f);
	cr_assert_eq(run_verify(path, files, 1, &vout), 1);
	unlink(path);
	rmdir(dir);
	cr_assert_str_eq(vout,
			 "would deny tcp 169.254.169.254:80: 1 decision by python3; metadata-endpoint, metadata\n"
			 "would deny icmp 192.0.2.90:0: 1 decision by ping; no-matching-rule, default\n"
			 "would deny tcp y\\x5c.evil.test:443 (192.0.2.70): 1 decision by dig; no-matching-rule, default\n"
			 "would deny dns bad\\x01name.test: 1 query by dig; name-not-allowed, default\n"
			 "would deny dns metadata.google.internal: 1 query by python3; name-not-allowed, default\n"
			 "would deny dns nope.test: 1 query by getent; name-not-allowed, default\n"
			 "would deny dns x\\x5c.evil.test: 1 query by dig; name-not-allowed, default\n"
			 "7 destinations denied: 3 of 22 connection decisions, 4 of 13 DNS queries\n");
	free(vout);
	free(out);
	free(notes);
	free(base);
}

/* A deny rule that decides is named by its file and line, also in an
 * included file. */
Test(verify, deny_rule_named_by_origin)
{
	char dir[] = "/tmp/weir-verify-XXXXXX", top[64], inc[64], want[256], *out;
	char *files[] = { FIX "events.jsonl" };
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(inc, sizeof(inc), "%s/base.yaml", dir);
	snprintf(top, sizeof(top), "%s/top.yaml", dir);
	f = fopen(inc, "w");
	fputs("version: 1\nallow:\n  - cidr: 192.0.2.0/24\ndeny:\n  - ip: 192.0.2.20\n", f);
	fclose(f);
	f = fopen(top, "w");
	fputs("version: 1\ninclude: [base.yaml]\n", f);
	fclose(f);
	cr_assert_eq(run_verify(top, files, 1, &out), 1);
	snprintf(want, sizeof(want), "would deny tcp api.app.test:443 (192.0.2.20): 2 decisions by "
		 "curl, python3; deny-rule, deny[0] (%s:5)\n", inc);
	cr_assert_not_null(strstr(out, want), "%s", out);
	unlink(inc);
	unlink(top);
	rmdir(dir);
	free(out);
}
