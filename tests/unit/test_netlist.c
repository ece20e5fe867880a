// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Big lists (`cidr_list: FILE`, user/policy/netlist.c): the formats, errors
 * by FILE:LINE, a million lines, a list in a policy and through the
 * compiler; and the nesting limit that keeps a hostile policy file from
 * taking libyaml quadratic time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#include "compile.h"
#include "netlist.h"
#include "policy.h"

#define assert_has(s, sub) cr_assert(strstr((s), (sub)), "'%s' does not contain '%s'", (s), (sub))

static size_t parse(const char *text, struct list_prefix **v)
{
	char err[POLICY_ERR_LEN] = "";
	size_t n;

	cr_assert_eq(netlist_parse("l.txt", text, strlen(text), v, &n, err, sizeof(err)), 0, "%s",
		     err);
	return n;
}

static void bad(const char *text, const char *where, const char *what)
{
	char err[POLICY_ERR_LEN] = "", prefix[64];
	struct list_prefix *v;
	size_t n;

	cr_assert_eq(netlist_parse("l.txt", text, strlen(text), &v, &n, err, sizeof(err)), -EINVAL,
		     "accepted: %s", text);
	snprintf(prefix, sizeof(prefix), "l.txt:%s: ", where);
	cr_assert(!strncmp(err, prefix, strlen(prefix)), "'%s' does not start with '%s'", err,
		  prefix);
	assert_has(err, what);
}

static void check(const struct list_prefix *p, int family, const char *addr, unsigned int plen)
{
	__u8 want[16] = {};

	cr_assert_eq(inet_pton(family, addr, want), 1);
	cr_assert_eq(p->family, family, "%s", addr);
	cr_assert_eq(p->plen, plen, "%s", addr);
	cr_assert_arr_eq(p->addr, want, 16, "%s", addr);
}

Test(netlist, plain_lines_comments_and_firehol)
{
	struct list_prefix *v;
	size_t n = parse("#\n# FireHOL netset\n#\n192.0.2.0/24\n  198.51.100.7  # a host\r\n"
			 "\n2001:db8::/32\n203.0.113.0/25 ; SBL123 (Spamhaus DROP)\n"
			 "::ffff:198.51.100.0/120\n0.0.0.0/0\n2001:db8::1",
			 &v);

	cr_assert_eq(n, 7);
	check(&v[0], AF_INET, "192.0.2.0", 24);
	check(&v[1], AF_INET, "198.51.100.7", 32);
	check(&v[2], AF_INET6, "2001:db8::", 32);
	check(&v[3], AF_INET, "203.0.113.0", 25);
	check(&v[4], AF_INET, "198.51.100.0", 24); /* IPv4-mapped: judged as IPv4 */
	check(&v[5], AF_INET, "0.0.0.0", 0);
	check(&v[6], AF_INET6, "2001:db8::1", 128);
	free(v);
}

Test(netlist, ipset_save)
{
	struct list_prefix *v;
	size_t n = parse("create bl hash:net family inet hashsize 1024 maxelem 65536\n"
			 "add bl 192.0.2.0/24\nadd bl 198.51.100.9 timeout 600\n"
			 "create bl6 hash:ip family inet6\nadd bl6 2001:db8::5\n",
			 &v);

	cr_assert_eq(n, 3);
	check(&v[0], AF_INET, "192.0.2.0", 24);
	check(&v[1], AF_INET, "198.51.100.9", 32);
	check(&v[2], AF_INET6, "2001:db8::5", 128);
	free(v);
}

Test(netlist, errors_name_the_line)
{
	char err[POLICY_ERR_LEN];
	struct list_prefix *v;
	size_t n;

	bad("192.0.2.0/24\n\n192.0.2.300\n", "3", "'192.0.2.300' is not an IPv4 or IPv6");
	bad("# x\n192.0.2.1/24\n", "2", "192.0.2.1/24 has host bits set");
	bad("192.0.2.0/33\n", "1", "prefix length must be 0..32");
	bad("2001:db8::/129\n", "1", "prefix length must be 0..128");
	bad("192.0.2.0/024\n", "1", "prefix length");
	bad("192.0.2.01\n", "1", "is not an IPv4 or IPv6");
	bad("192.0.2.0/24 192.0.2.0/24\n", "1", "one address or prefix per line");
	bad("example.com\n", "1", "'example.com' is not an IPv4 or IPv6");
	bad("hello\n", "1", "is not an address, a prefix or an ipset add/create line");
	bad("192.0.2.1-192.0.2.9\n", "1", "address ranges are not supported");
	bad("ok\x01\n", "1", "control character 0x01");
	bad("add s 192.0.2.0/24 nomatch\n", "1", "'nomatch' entries (exceptions) are not supported");
	bad("add s 192.0.2.1,tcp:80\n", "1", "entries with ports or interfaces are not supported");
	bad("create s hash:ip,port family inet\n", "1", "ipset type 'hash:ip,port' is not supported");
	bad("del s 192.0.2.0/24\n", "1", "ipset command 'del' is not supported");
	bad("add s\n", "1", "ipset add without an entry");
	cr_assert_eq(netlist_parse("l.txt", "192.0.2.0/24\n1\0\n", 16, &v, &n, err, sizeof(err)),
		     -EINVAL);
	cr_assert_str_eq(err, "l.txt:2: NUL byte (expected text)");
}

/* A million lines: every one comes back, in order. */
/*
 * Big lists (1 MiB and more) read most lines through a fast path for
 * "A.B.C.D[/N]\n"; everything it does not take goes the general way. The
 * two must agree on every line: each candidate below is parsed alone (the
 * general way) and after 1 MiB of lines (the fast path first), and the
 * entry, or the error with its line number, must be the same.
 */
static const char *const fast_cases[] = {
	"192.0.2.7", "0.0.0.0", "255.255.255.255", "0.0.0.0/0", "10.0.0.0/8", "192.0.2.0/24",
	"192.0.2.7/32", "192.0.2.128/25", "1.2.3.4/31", "1.2.3.0/30", "100.64.0.0/10",
	"192.0.2.07", "192.0.2.256", "192.0.2.1000", "192.0.2", "192.0.2.", "192.0.2.7.",
	"192.0.2.7/", "192.0.2.7/33", "192.0.2.7/032", "192.0.2.0/024", "192.0.2.0/00",
	"192.0.2.7/24", "0.0.0.1/0", "192.0.2.7 ", " 192.0.2.7", "192.0.2.7\r", "192.0.2.7#x",
	"192.0.2.7 # c", "192.0.2.7;x", "192.0.2.7/24x", "1.2.3.4x", "01.2.3.4", "1..3.4",
	"1.2.3.4/3 2", "::ffff:192.0.2.7", "2001:db8::/32", "192.0.2.7/8", "add s 192.0.2.7",
	"00.1.2.3", "1.2.3.4/1", "128.0.0.0/1", "999.1.1.1", "1.2.3.4/", "", "#", "-1.2.3.4",
	"1.2.3.4/-1", "1.2.3.4/+8", "+1.2.3.4",
};

static int parse_any(const char *text, size_t len, struct list_prefix **v, size_t *n,
		     char *err, size_t errlen)
{
	return netlist_parse("l.txt", text, len, v, n, err, errlen);
}

Test(netlist, fast_path_agrees_with_the_general_one)
{
	const size_t pad_lines = (1 << 20) / 8 + 1;
	size_t pad = pad_lines * 8, i;
	char *big = malloc(pad + 64);

	cr_assert_not_null(big);
	for (i = 0; i < pad_lines; i++)
		memcpy(big + 8 * i, "1.2.3.4\n", 8);
	for (i = 0; i < sizeof(fast_cases) / sizeof(fast_cases[0]); i++) {
		char e1[POLICY_ERR_LEN] = "", e2[POLICY_ERR_LEN] = "", line[64], want[POLICY_ERR_LEN];
		struct list_prefix *v1 = NULL, *v2 = NULL;
		size_t n1 = 0, n2 = 0, len = strlen(fast_cases[i]);
		int r1, r2, nl;

		for (nl = 0; nl < 2; nl++) { /* with a newline, and at the end of the file */
			snprintf(line, sizeof(line), "%s%s", fast_cases[i], nl ? "\n" : "");
			memcpy(big + pad, line, len + nl);
			r1 = parse_any(line, len + nl, &v1, &n1, e1, sizeof(e1));
			r2 = parse_any(big, pad + len + nl, &v2, &n2, e2, sizeof(e2));
			cr_assert_eq(r1, r2, "'%s': %d alone, %d after 1 MiB (%s / %s)",
				     fast_cases[i], r1, r2, e1, e2);
			if (r1) {
				/* "l.txt:1: what" alone, "l.txt:N: what" after the pad */
				snprintf(want, sizeof(want), "l.txt:%zu: %s", pad_lines + 1,
					 strchr(e1, ' ') + 1);
				cr_assert_str_eq(e2, want, "'%s'", fast_cases[i]);
				continue;
			}
			cr_assert_eq(n2, pad_lines + n1, "'%s'", fast_cases[i]);
			if (n1)
				cr_assert_eq(memcmp(&v2[pad_lines], v1, sizeof(*v1)), 0, "'%s'",
					     fast_cases[i]);
			check(&v2[0], AF_INET, "1.2.3.4", 32);
			free(v1);
			free(v2);
		}
	}
	free(big);
}

Test(netlist, a_million_lines)
{
	const size_t N = 1000000;
	char *buf = malloc(N * 20), *s = buf;
	struct list_prefix *v;
	size_t i, n;

	cr_assert_not_null(buf);
	for (i = 0; i < N; i++)
		s += sprintf(s, "10.%zu.%zu.%zu\n", i >> 16, (i >> 8) & 255, i & 255);
	*s = '\0';
	n = parse(buf, &v);
	cr_assert_eq(n, N);
	for (i = 0; i < N; i += 99991) {
		__u8 want[4] = { 10, (__u8)(i >> 16), (__u8)(i >> 8), (__u8)i };

		cr_assert_arr_eq(v[i].addr, want, 4, "line %zu", i + 1);
		cr_assert_eq(v[i].plen, 32);
	}
	free(v);
	free(buf);
}

static char dir[] = "/tmp/weir-netlist-XXXXXX";

static void put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static void mkdir_tmp(void)
{
	char sub[256];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/lists", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
}

static void rm_tmp(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static int load_policy(const char *name, struct policy **p, char *err)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return policy_load_file(path, p, err);
}

/* Relative to the policy file; the rule's ports and protocol apply to every entry. */
Test(netlist, in_a_policy_and_compiled, .init = mkdir_tmp, .fini = rm_tmp)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN];
	struct compiled c;
	struct policy *p;
	size_t i;

	put("lists/allow.txt", "192.0.2.0/24\n2001:db8::/48\n");
	put("lists/deny.ipset", "create d hash:ip family inet\nadd d 198.51.100.66\n");
	put("p.yaml", "version: 1\nallow:\n  - cidr_list: lists/allow.txt\n    ports: [443]\n"
		      "    proto: tcp\ndeny:\n  - cidr_list: lists/deny.ipset\n");
	cr_assert_eq(load_policy("p.yaml", &p, err), 0, "%s", err);
	cr_assert_eq(p->n_allow, 1);
	cr_assert_eq(p->allow[0].kind, RULE_CIDR_LIST);
	cr_assert_str_eq(p->allow[0].list->name, "lists/allow.txt");
	cr_assert_eq(p->allow[0].list->n, 2);
	cr_assert_eq(p->deny[0].list->n, 1);

	struct compile_input in = { .policy = p };

	cr_assert_eq(compile_policy(&in, &c, cerr), 0, "%s", cerr);
	for (i = 0; i < c.n4; i++) {
		const struct centry *e = &c.v4[i];

		if (e->addr[0] == 192 && e->plen == 24) {
			cr_assert_eq(e->val.allow.inl.lo, 443);
			cr_assert_eq(e->val.allow.inl.hi, 443);
			cr_assert_eq(e->val.allow.inl.protos, WEIR_P_TCP);
			cr_assert_eq(e->val.allow.inl.rule, WEIR_RULE_ID(WEIR_RK_ALLOW, 0));
		}
		if (e->addr[0] == 198 && e->plen == 32)
			cr_assert_eq(e->val.deny.inl.rule, WEIR_RULE_ID(WEIR_RK_DENY, 0));
	}
	cr_assert_eq(c.n6, 4); /* the list's prefix, ::1 and the metadata fd00:ec2::254, ::23 */
	compiled_free(&c);
	policy_free(p);
}

/* The policy's hash (run-start's policy_sha256, the daemon's "changed?")
 * covers the bytes of its lists: a list edited is a new version. */
Test(netlist, policy_hash_covers_the_lists, .init = mkdir_tmp, .fini = rm_tmp)
{
	unsigned char first[32], again[32];
	char err[POLICY_ERR_LEN];
	struct policy *p;

	put("lists/l.txt", "192.0.2.0/24\n");
	put("p.yaml", "version: 1\nallow:\n  - cidr_list: lists/l.txt\n");
	cr_assert_eq(load_policy("p.yaml", &p, err), 0, "%s", err);
	memcpy(first, p->sha256, sizeof(first));
	cr_assert_not_null(strstr(p->allow[0].list->file.path, "/lists/l.txt"));
	policy_free(p);

	cr_assert_eq(load_policy("p.yaml", &p, err), 0, "%s", err);
	cr_assert(!memcmp(first, p->sha256, sizeof(first)), "same files, another hash");
	policy_free(p);

	put("lists/l.txt", "192.0.2.0/24\n198.51.100.0/24\n");
	cr_assert_eq(load_policy("p.yaml", &p, err), 0, "%s", err);
	memcpy(again, p->sha256, sizeof(again));
	cr_assert(memcmp(first, again, sizeof(first)), "the list changed, the hash did not");
	policy_free(p);

	put("lists/l.txt", "192.0.2.0/24\n");
	cr_assert_eq(load_policy("p.yaml", &p, err), 0, "%s", err);
	cr_assert(!memcmp(first, p->sha256, sizeof(first)), "the list put back, another hash");
	policy_free(p);
}

/* An error in the list names the list's FILE:LINE, then the rule's place. */
Test(netlist, policy_errors, .init = mkdir_tmp, .fini = rm_tmp)
{
	char err[POLICY_ERR_LEN], want[512];
	struct policy *p;

	put("lists/l.txt", "192.0.2.0/24\n# fine\nnot-an-address\n");
	put("p.yaml", "version: 1\ndeny:\n  - cidr_list: lists/l.txt\n");
	cr_assert_eq(load_policy("p.yaml", &p, err), -EINVAL);
	snprintf(want, sizeof(want), "%s/lists/l.txt:3: ", dir);
	cr_assert(!strncmp(err, want, strlen(want)), "'%s' does not start with '%s'", err, want);
	snprintf(want, sizeof(want), "(cidr_list at %s/p.yaml:3:16)", dir);
	assert_has(err, want);

	put("q.yaml", "version: 1\nallow:\n  - cidr_list: missing.txt\n");
	cr_assert_eq(load_policy("q.yaml", &p, err), -ENOENT);
	assert_has(err, "missing.txt: No such file or directory");
	put("r.yaml", "version: 1\nallow:\n  - cidr_list: lists\n");
	cr_assert_eq(load_policy("r.yaml", &p, err), -EINVAL);
	assert_has(err, "is not a regular file");
	put("s.yaml", "version: 1\nallow:\n  - cidr_list: lists/l.txt\n    cidr: 192.0.2.0/24\n");
	cr_assert_eq(load_policy("s.yaml", &p, err), -EINVAL);
	assert_has(err, "a rule names one destination");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 MB of '[' took libyaml 632 s; refused by the linear pre-scan instead. */
Test(nesting, deep_flow_collections_are_refused_fast)
{
	const size_t N = 1 << 20;
	char *buf = malloc(N + 32), err[POLICY_ERR_LEN];
	struct policy *p;
	double t;

	cr_assert_not_null(buf);
	strcpy(buf, "version: 1\nallow: ");
	memset(buf + strlen(buf), '[', N);
	buf[19 + N] = '\0';
	t = now();
	cr_assert_eq(policy_load_buffer("t.yaml", buf, strlen(buf), &p, err), -EINVAL);
	t = now() - t;
	cr_assert_str_eq(err, "t.yaml:2:40: YAML nested deeper than 32 levels (a policy needs four)");
	cr_assert_lt(t, 0.5, "took %.3f s", t);
	free(buf);
}

Test(nesting, block_indicators_on_one_line)
{
	char buf[4096] = "version: 1\nallow:\n  ", err[POLICY_ERR_LEN];
	struct policy *p;
	int i;

	for (i = 0; i < 40; i++)
		strcat(buf, "- ");
	strcat(buf, "x\n");
	cr_assert_eq(policy_load_buffer("t.yaml", buf, strlen(buf), &p, err), -EINVAL);
	assert_has(err, "t.yaml:3:67: YAML nested deeper than 32 levels");
}

/* Brackets in comments are not counted; in strings they are (safe side). */
Test(nesting, comments_do_not_count)
{
	static const char yaml[] =
		"version: 1 # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
		"# {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n"
		"name: \"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]] #[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n"
		"allow: [{cidr: '192.0.2.0/24', ports: [443, '80-81']}, {domain: 'a.test'}]\n";
	char err[POLICY_ERR_LEN];
	struct policy *p;

	cr_assert_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, err), 0, "%s", err);
	cr_assert_eq(p->n_allow, 2);
	policy_free(p);
	/* "&a[[[": an anchor, then flow collections, not a plain scalar */
	cr_assert_eq(policy_load_buffer("t.yaml", "version: 1\nallow: &a[[[[[[[[[[[[[[[[[[[[[[[["
					"[[[[[[[[[[[[[[[[[[[[[\n", 63, &p, err), -EINVAL);
	assert_has(err, "t.yaml:2:42: YAML nested deeper than 32 levels");
}

/* Past the old 1 MiB cap: a policy of 2 MiB of rules loads. */
Test(limits, policy_past_one_mib)
{
	const size_t N = 100000;
	char *buf = malloc(N * 32 + 64), *s = buf, err[POLICY_ERR_LEN];
	struct policy *p;
	size_t i;

	cr_assert_not_null(buf);
	s += sprintf(s, "version: 1\nallow:\n");
	for (i = 0; i < N; i++)
		s += sprintf(s, "  - cidr: 10.%zu.%zu.%zu/32\n", i >> 16, (i >> 8) & 255, i & 255);
	cr_assert_gt(s - buf, 2 << 20);
	cr_assert_eq(policy_load_buffer("t.yaml", buf, (size_t)(s - buf), &p, err), 0, "%s", err);
	cr_assert_eq(p->n_allow, N);
	policy_free(p);
	free(buf);
}
