// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The building blocks of a rule: CIDRs and addresses, port ranges, domain
 * names and wildcard matching, rule names, and the --allow syntax.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <criterion/criterion.h>

#include "policy.h"
#include "weir/egress.h"

#define assert_has(s, sub) cr_assert(strstr((s), (sub)), "'%s' does not contain '%s'", (s), (sub))

/* Parse S as a CIDR and check it came out as FAMILY ADDR/PLEN. */
static void cidr_ok(const char *s, int family, const char *addr, unsigned int plen)
{
	struct policy_rule r = { 0 };
	char err[POLICY_ERR_LEN] = "";
	__u8 want[16] = { 0 };

	cr_assert_eq(parse_cidr(s, &r, err, sizeof(err)), 0, "%s: %s", s, err);
	cr_assert_eq(inet_pton(family, addr, want), 1);
	cr_assert_eq(r.kind, RULE_CIDR);
	cr_assert_eq(r.family, family, "%s: family %d", s, r.family);
	cr_assert_eq(r.prefixlen, plen, "%s: /%u", s, r.prefixlen);
	cr_assert_arr_eq(r.addr, want, 16, "%s: address differs", s);
}

static void cidr_bad(const char *s, const char *what)
{
	struct policy_rule r = { 0 };
	char err[POLICY_ERR_LEN] = "";

	cr_assert_eq(parse_cidr(s, &r, err, sizeof(err)), -EINVAL, "%s accepted", s);
	assert_has(err, what);
}

Test(cidr, ipv4)
{
	cidr_ok("192.0.2.0/24", AF_INET, "192.0.2.0", 24);
	cidr_ok("0.0.0.0/0", AF_INET, "0.0.0.0", 0);
	cidr_ok("198.51.100.7/32", AF_INET, "198.51.100.7", 32);
	cidr_ok("10.0.0.0/8", AF_INET, "10.0.0.0", 8);
	cidr_ok("172.16.0.0/12", AF_INET, "172.16.0.0", 12);
}

Test(cidr, ipv6)
{
	cidr_ok("2001:db8::/32", AF_INET6, "2001:db8::", 32);
	cidr_ok("::/0", AF_INET6, "::", 0);
	cidr_ok("2001:db8::1/128", AF_INET6, "2001:db8::1", 128);
	cidr_ok("fd00:ec2::254/128", AF_INET6, "fd00:ec2::254", 128);
	cidr_ok("2001:db8:8000::/33", AF_INET6, "2001:db8:8000::", 33);
}

Test(cidr, mapped_is_normalised_to_ipv4)
{
	cidr_ok("::ffff:192.0.2.0/120", AF_INET, "192.0.2.0", 24);
	cidr_ok("::ffff:192.0.2.1/128", AF_INET, "192.0.2.1", 32);
	cidr_ok("::ffff:0:0/96", AF_INET, "0.0.0.0", 0);
	cidr_ok("::ffff:c000:200/120", AF_INET, "192.0.2.0", 24);
	/* Not mapped: ::/0 stays an IPv6 rule. */
	cidr_ok("::/0", AF_INET6, "::", 0);
}

Test(cidr, mapped_shorter_than_96)
{
	cidr_bad("::ffff:0:0/95", "IPv4-mapped prefix must be /96 or longer");
	cidr_bad("::ffff:0:0/80", "IPv4-mapped prefix must be /96 or longer");
}

Test(cidr, host_bits_suggest_network)
{
	cidr_bad("192.0.2.1/24", "192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?");
	cidr_bad("10.1.2.3/8", "did you mean 10.0.0.0/8?");
	cidr_bad("2001:db8::1/64", "did you mean 2001:db8::/64?");
	cidr_bad("::ffff:192.0.2.1/120", "did you mean 192.0.2.0/24?");
	cidr_bad("0.0.0.1/0", "did you mean 0.0.0.0/0?");
}

Test(cidr, bad_lengths)
{
	cidr_bad("192.0.2.0/33", "bad CIDR '192.0.2.0/33': prefix length must be 0..32");
	cidr_bad("2001:db8::/129", "prefix length must be 0..128");
	cidr_bad("192.0.2.0/", "prefix length must be 0..32");
	cidr_bad("192.0.2.0/-1", "prefix length must be 0..32");
	cidr_bad("192.0.2.0/+24", "prefix length must be 0..32");
	cidr_bad("192.0.2.0/24x", "prefix length must be 0..32");
	cidr_bad("192.0.2.0/ 24", "prefix length must be 0..32");
	cidr_bad("192.0.2.0/0024", "prefix length must be 0..32");
	cidr_bad("192.0.2.0/1e1", "prefix length must be 0..32");
}

Test(cidr, junk)
{
	cidr_bad("192.0.2.0", "missing /LENGTH");
	cidr_bad("", "missing /LENGTH");
	cidr_bad("192.0.2/24", "'192.0.2' is not an IPv4 or IPv6 address");
	cidr_bad("192.0.2.0.0/24", "is not an IPv4 or IPv6 address");
	cidr_bad("256.0.0.0/8", "is not an IPv4 or IPv6 address");
	cidr_bad(" 192.0.2.0/24", "is not an IPv4 or IPv6 address");
	cidr_bad("example.com/24", "is not an IPv4 or IPv6 address");
	cidr_bad("fe80::1%eth0/64", "is not an IPv4 or IPv6 address");
	cidr_bad("192.0.2.0/24/24", "is not an IPv4 or IPv6 address");
	cidr_bad("192.0.2.0/2\n4", "control character");
}

static void port_ok(const char *s, unsigned int lo, unsigned int hi)
{
	struct port_range pr = { 0 };
	char err[POLICY_ERR_LEN] = "";

	cr_assert_eq(parse_port_range(s, &pr, err, sizeof(err)), 0, "%s: %s", s, err);
	cr_assert_eq(pr.lo, lo, "%s: lo %u", s, pr.lo);
	cr_assert_eq(pr.hi, hi, "%s: hi %u", s, pr.hi);
}

static void port_bad(const char *s, const char *what)
{
	struct port_range pr = { 0 };
	char err[POLICY_ERR_LEN] = "";

	cr_assert_eq(parse_port_range(s, &pr, err, sizeof(err)), -EINVAL, "%s accepted", s);
	assert_has(err, what);
}

Test(ports, good)
{
	port_ok("443", 443, 443);
	port_ok("1", 1, 1);
	port_ok("65535", 65535, 65535);
	port_ok("8000-8100", 8000, 8100);
	port_ok("53-53", 53, 53);
	port_ok("1-65535", 1, 65535);
}

Test(ports, bad)
{
	port_bad("0", "port 0 out of range (1-65535)");
	port_bad("65536", "port 65536 out of range (1-65535)");
	port_bad("70000", "port 70000 out of range (1-65535)");
	port_bad("99999999999999999999", "port 99999999999999999999 out of range (1-65535)");
	port_bad("0-80", "port 0 out of range");
	port_bad("80-70000", "port 70000 out of range");
	port_bad("8100-8000", "bad port range '8100-8000': 8100 is above 8000");
	port_bad("http", "bad port 'http': expected a port N or a range N-M");
	port_bad("", "missing port");
	port_bad("-80", "bad port '-80'");
	port_bad("80-", "bad port '80-'");
	port_bad("1-2-3", "bad port '1-2-3'");
	port_bad("+80", "bad port '+80'");
	port_bad(" 80", "bad port ' 80'");
	port_bad("80 ", "bad port '80 '");
	port_bad("0x50", "bad port '0x50'");
	port_bad("80,443", "bad port '80,443'");
}

static void domain_ok(const char *s, const char *want, enum name_match match)
{
	struct policy_rule r = { 0 };
	char err[POLICY_ERR_LEN] = "";

	cr_assert_eq(domain_parse(s, &r, err, sizeof(err)), 0, "%s: %s", s, err);
	cr_assert_eq(r.kind, RULE_DOMAIN);
	cr_assert_str_eq(r.domain, want);
	cr_assert_eq(r.match, match, "%s: match %d", s, r.match);
	free(r.domain);
}

static void domain_bad(const char *s, const char *what)
{
	struct policy_rule r = { 0 };
	char err[POLICY_ERR_LEN] = "";

	cr_assert_eq(domain_parse(s, &r, err, sizeof(err)), -EINVAL, "%s accepted", s);
	cr_assert_null(r.domain);
	assert_has(err, what);
}

Test(domain, parse)
{
	domain_ok("github.com", "github.com", NAME_EXACT);
	domain_ok("GitHub.COM.", "github.com", NAME_EXACT);
	domain_ok("*.npmjs.org", "npmjs.org", NAME_ONE);
	domain_ok("**.githubusercontent.com", "githubusercontent.com", NAME_MANY);
	domain_ok("*.NPMJS.org.", "npmjs.org", NAME_ONE);
	domain_ok("_dmarc.example.com", "_dmarc.example.com", NAME_EXACT);
	domain_ok("localhost", "localhost", NAME_EXACT);
	domain_ok("xn--bcher-kva.example", "xn--bcher-kva.example", NAME_EXACT);
	domain_ok("a-b.c0.example", "a-b.c0.example", NAME_EXACT);
	domain_ok("123.example.com", "123.example.com", NAME_EXACT);
}

Test(domain, length_limits)
{
	char label63[64], label64[65], name[300];

	memset(label63, 'a', 63);
	label63[63] = '\0';
	memset(label64, 'a', 64);
	label64[64] = '\0';
	snprintf(name, sizeof(name), "%s.com", label63);
	domain_ok(name, name, NAME_EXACT);
	snprintf(name, sizeof(name), "%s.com", label64);
	domain_bad(name, "is longer than 63 characters");
	/* 4 labels of 63 + 3 dots = 255 > 253; 3 labels + "a.b" = 195 fits. */
	snprintf(name, sizeof(name), "%s.%s.%s.%s", label63, label63, label63, label63);
	domain_bad(name, "name longer than 253 characters");
	snprintf(name, sizeof(name), "%s.%s.%s.%.61s", label63, label63, label63, label63);
	cr_assert_eq(strlen(name), 253);
	domain_ok(name, name, NAME_EXACT);
}

Test(domain, bad_wildcards)
{
	domain_bad("foo.*.com", "domain 'foo.*.com': a wildcard must be the whole first label "
				"('*.' or '**.')");
	domain_bad("foo*.bar.com", "a wildcard must be the whole first label");
	domain_bad("*foo.bar.com", "a wildcard must be the whole first label");
	domain_bad("***.bar.com", "a wildcard must be the whole first label");
	domain_bad("example.*", "a wildcard must be the whole first label");
	domain_bad("*.*.example.com", "a wildcard must be the whole first label");
	domain_bad("*", "a wildcard must be the whole first label");
	domain_bad("**", "a wildcard must be the whole first label");
	domain_bad("*.com", "domain '*.com': too broad");
	domain_bad("**.com", "too broad");
	domain_bad("*.com.", "too broad");
	domain_bad("*.", "a wildcard must be the whole first label");
	domain_bad("**..", "empty label");
}

Test(domain, bad_names)
{
	domain_bad("", "empty name");
	domain_bad("192.0.2.1", "domain '192.0.2.1' is an IP address; write it as ip: 192.0.2.1");
	domain_bad("2001:db8::1", "is an IP address");
	domain_bad("10.0.0", "the last label '0' is all digits");
	domain_bad("300.1.1.1", "is all digits");
	domain_bad("a..b.com", "empty label");
	domain_bad(".example.com", "empty label");
	domain_bad("example.com..", "empty label");
	domain_bad(".", "empty label");
	domain_bad("-foo.com", "label '-foo' starts or ends with '-'");
	domain_bad("foo-.com", "label 'foo-' starts or ends with '-'");
	domain_bad("exa mple.com", "invalid character ' ' in label 'exa mple'");
	domain_bad("example.com:443", "invalid character ':'");
	domain_bad("example.com/x", "invalid character '/'");
	domain_bad("b\xc3\xbc" "cher.example", "non-ASCII character");
	domain_bad("exa\tmple.com", "control character");
}

Test(domain, match_exact)
{
	cr_assert(domain_match("github.com", NAME_EXACT, "github.com"));
	cr_assert(domain_match("github.com", NAME_EXACT, "GitHub.Com"));
	cr_assert(domain_match("github.com", NAME_EXACT, "github.com."));
	cr_assert_not(domain_match("github.com", NAME_EXACT, "github.com.."));
	cr_assert_not(domain_match("github.com", NAME_EXACT, "api.github.com"));
	cr_assert_not(domain_match("github.com", NAME_EXACT, "xgithub.com"));
	cr_assert_not(domain_match("github.com", NAME_EXACT, "github.co"));
	cr_assert_not(domain_match("github.com", NAME_EXACT, ""));
}

Test(domain, match_one_label)
{
	cr_assert(domain_match("npmjs.org", NAME_ONE, "registry.npmjs.org"));
	cr_assert(domain_match("npmjs.org", NAME_ONE, "Registry.NPMJS.org."));
	cr_assert_not(domain_match("npmjs.org", NAME_ONE, "npmjs.org"));
	cr_assert_not(domain_match("npmjs.org", NAME_ONE, "npmjs.org."));
	cr_assert_not(domain_match("npmjs.org", NAME_ONE, "a.b.npmjs.org"));
	cr_assert_not(domain_match("npmjs.org", NAME_ONE, ".npmjs.org"));
	cr_assert_not(domain_match("npmjs.org", NAME_ONE, "evilnpmjs.org"));
	cr_assert_not(domain_match("npmjs.org", NAME_ONE, "registry.npmjs.org.evil"));
}

Test(domain, match_many_labels)
{
	cr_assert(domain_match("githubusercontent.com", NAME_MANY, "raw.githubusercontent.com"));
	cr_assert(domain_match("npmjs.org", NAME_MANY, "a.b.npmjs.org"));
	cr_assert(domain_match("npmjs.org", NAME_MANY, "A.B.C.NpmJS.org."));
	cr_assert_not(domain_match("npmjs.org", NAME_MANY, "npmjs.org"));
	cr_assert_not(domain_match("npmjs.org", NAME_MANY, "NPMJS.ORG."));
	cr_assert_not(domain_match("npmjs.org", NAME_MANY, "evilnpmjs.org"));
	cr_assert_not(domain_match("npmjs.org", NAME_MANY, ".npmjs.org"));
	cr_assert_not(domain_match("npmjs.org", NAME_MANY, "a..npmjs.org"));
	cr_assert_not(domain_match("npmjs.org", NAME_MANY, "npmjs.org.evil.com"));
}

Test(rule_name, every_kind)
{
	static const struct {
		__u32 id;
		const char *name;
	} cases[] = {
		{ WEIR_RULE_ID(WEIR_RK_ALLOW, 3), "allow[3]" },
		{ WEIR_RULE_ID(WEIR_RK_ALLOW, 0), "allow[0]" },
		{ WEIR_RULE_ID(WEIR_RK_DENY, 0), "deny[0]" },
		{ WEIR_RULE_ID(WEIR_RK_ARG, 1), "--allow[1]" },
		{ WEIR_RULE_ID(WEIR_RK_LOOPBACK, 0), "loopback" },
		{ WEIR_RULE_ID(WEIR_RK_METADATA, 0), "metadata" },
		{ 0, "default" },
		{ WEIR_RULE_ID(WEIR_RK_INBOUND, 2), "inbound[2]" },
		{ WEIR_RULE_ID(WEIR_RK_INBOUND_DEFAULT, 1), "inbound-loopback" },
		{ WEIR_RULE_ID(WEIR_RK_INBOUND_ANY, 0), "inbound-any" },
		{ 0x09000001, "rule#0x9000001" },
		{ 0x01ffffff, "allow[16777215]" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		policy_rule_name(cases[i].id, buf, sizeof(buf));
		cr_assert_str_eq(buf, cases[i].name);
	}
	policy_rule_name(WEIR_RULE_ID(WEIR_RK_ALLOW, 123), buf, 5);
	cr_assert_str_eq(buf, "allo");
}

static struct policy *empty_policy(void)
{
	static const char yaml[] = "version: 1\n";
	char err[POLICY_ERR_LEN];
	struct policy *p;

	cr_assert_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, err), 0, "%s", err);
	return p;
}

/* Add ARG as the only --allow and return the rule it made. */
static const struct policy_rule *arg_ok(struct policy *p, const char *arg)
{
	char err[POLICY_ERR_LEN] = "";
	size_t n = p->n_args;

	cr_assert_eq(policy_add_arg(p, arg, err), 0, "%s: %s", arg, err);
	cr_assert_eq(p->n_args, n + 1);
	cr_assert_eq(p->args[n].line, 0);
	cr_assert_eq(p->args[n].col, 0);
	return &p->args[n];
}

static void arg_bad(const char *arg, const char *what)
{
	struct policy *p = empty_policy();
	char err[POLICY_ERR_LEN] = "";
	char prefix[POLICY_ERR_LEN];

	cr_assert_eq(policy_add_arg(p, arg, err), -EINVAL, "%s accepted", arg);
	cr_assert_eq(p->n_args, 0);
	snprintf(prefix, sizeof(prefix), "--allow '%s': ", arg);
	cr_assert(!strncmp(err, prefix, strlen(prefix)), "'%s' does not start with '%s'", err,
		  prefix);
	assert_has(err, what);
	policy_free(p);
}

static void check_addr(const struct policy_rule *r, int family, const char *addr,
		       unsigned int plen)
{
	__u8 want[16] = { 0 };

	cr_assert_eq(inet_pton(family, addr, want), 1);
	cr_assert_eq(r->kind, RULE_CIDR);
	cr_assert_eq(r->family, family);
	cr_assert_eq(r->prefixlen, plen);
	cr_assert_arr_eq(r->addr, want, 16);
}

static void check_port(const struct policy_rule *r, unsigned int lo, unsigned int hi)
{
	cr_assert_eq(r->n_ports, 1);
	cr_assert_eq(r->ports[0].lo, lo);
	cr_assert_eq(r->ports[0].hi, hi);
	cr_assert_eq(r->protos, WEIR_P_TCP | WEIR_P_UDP);
}

static void check_no_port(const struct policy_rule *r)
{
	cr_assert_eq(r->n_ports, 0);
	cr_assert_null(r->ports);
	cr_assert_eq(r->protos, WEIR_P_ANY);
}

Test(allow_arg, names)
{
	struct policy *p = empty_policy();
	const struct policy_rule *r;

	r = arg_ok(p, "example.com");
	cr_assert_eq(r->kind, RULE_DOMAIN);
	cr_assert_str_eq(r->domain, "example.com");
	cr_assert_eq(r->match, NAME_EXACT);
	check_no_port(r);
	r = arg_ok(p, "Example.COM:443");
	cr_assert_str_eq(r->domain, "example.com");
	check_port(r, 443, 443);
	r = arg_ok(p, "*.example.com:8000-8100");
	cr_assert_str_eq(r->domain, "example.com");
	cr_assert_eq(r->match, NAME_ONE);
	check_port(r, 8000, 8100);
	r = arg_ok(p, "**.example.com");
	cr_assert_eq(r->match, NAME_MANY);
	cr_assert_eq(p->n_args, 4);
	policy_free(p);
}

Test(allow_arg, addresses)
{
	struct policy *p = empty_policy();

	check_no_port(arg_ok(p, "192.0.2.7"));
	check_addr(&p->args[0], AF_INET, "192.0.2.7", 32);
	check_addr(arg_ok(p, "192.0.2.7:80"), AF_INET, "192.0.2.7", 32);
	check_port(&p->args[1], 80, 80);
	check_addr(arg_ok(p, "192.0.2.0/24"), AF_INET, "192.0.2.0", 24);
	check_addr(arg_ok(p, "192.0.2.0/24:1-1024"), AF_INET, "192.0.2.0", 24);
	check_port(&p->args[3], 1, 1024);
	check_addr(arg_ok(p, "[2001:db8::1]:443"), AF_INET6, "2001:db8::1", 128);
	check_port(&p->args[4], 443, 443);
	check_addr(arg_ok(p, "[2001:db8::/32]:53"), AF_INET6, "2001:db8::", 32);
	check_addr(arg_ok(p, "[2001:db8::1]"), AF_INET6, "2001:db8::1", 128);
	check_no_port(&p->args[6]);
	policy_free(p);
}

Test(allow_arg, bare_ipv6_has_no_port)
{
	struct policy *p = empty_policy();

	/* More than one colon and no brackets: all of it is the address. */
	check_addr(arg_ok(p, "2001:db8::1"), AF_INET6, "2001:db8::1", 128);
	check_addr(arg_ok(p, "2001:db8::1:443"), AF_INET6, "2001:db8::1:443", 128);
	check_no_port(&p->args[1]);
	check_addr(arg_ok(p, "2001:db8::/32"), AF_INET6, "2001:db8::", 32);
	check_addr(arg_ok(p, "::1"), AF_INET6, "::1", 128);
	check_addr(arg_ok(p, "::ffff:192.0.2.1"), AF_INET, "192.0.2.1", 32);
	check_addr(arg_ok(p, "[::ffff:192.0.2.0/120]:80"), AF_INET, "192.0.2.0", 24);
	policy_free(p);
}

Test(allow_arg, errors)
{
	arg_bad("", "missing the name, address or prefix");
	arg_bad(":443", "missing the name, address or prefix");
	arg_bad("example.com:", "missing port");
	arg_bad("example.com:0", "port 0 out of range (1-65535)");
	arg_bad("example.com:70000", "port 70000 out of range (1-65535)");
	arg_bad("example.com:https", "bad port 'https'");
	arg_bad("example.com:90-80", "90 is above 80");
	arg_bad("192.0.2.1/24:80", "192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?");
	arg_bad("192.0.2.0/33", "prefix length must be 0..32");
	arg_bad("[2001:db8::1", "missing ']'");
	arg_bad("[2001:db8::1]443", "expected ':PORT' after ']'");
	arg_bad("[2001:db8::1]:", "missing port");
	arg_bad("[192.0.2.1]:80", "brackets are for IPv6 addresses only");
	arg_bad("[example.com]:80", "brackets are for IPv6 addresses only");
	arg_bad("2001:db8::zz", "'2001:db8::zz' is not an IPv6 address");
	arg_bad("foo.*.com", "a wildcard must be the whole first label");
	arg_bad("*.com:443", "too broad");
	arg_bad("300.1.2.3", "is all digits");
	arg_bad("exa mple.com", "invalid character ' '");
}

Test(allow_arg, urls_and_paths_suggest_the_rule)
{
	arg_bad("https://web.test", "a URL is not a rule; write web.test:443");
	arg_bad("http://web.test/path?q=1", "a URL is not a rule; write web.test:80");
	arg_bad("https://user@web.test:8443/x", "write web.test:8443");
	arg_bad("https://[2001:db8::1]/", "write [2001:db8::1]:443");
	arg_bad("HTTPS://192.0.2.7", "write 192.0.2.7:443");
	arg_bad("gopher://web.test", "write web.test (or web.test:PORT for one port)");
	arg_bad("https://", "a URL is not a rule; write the host name or address it names");
	arg_bad("web.test/path", "a rule names a host, not a path; write web.test");
	/* Prefixes are not paths. */
	arg_bad("192.0.2.1/24", "did you mean 192.0.2.0/24?");
}

Test(slip, values_that_are_fine_pass)
{
	static const char *const fine[][2] = {
		{ "domain", "github.com" },   { "domain", "*.npmjs.org" }, { "ip", "2001:db8::80" },
		{ "ip", "::ffff:192.0.2.1" }, { "cidr", "2001:db8::/32" }, { NULL, "example.com:443" },
		{ NULL, "[2001:db8::1]:443" }, { NULL, "192.0.2.0/24:80" }, { NULL, "2001:db8::/32" },
	};
	char err[POLICY_ERR_LEN];
	size_t i;

	for (i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
		cr_assert_eq(rule_check_slip(fine[i][0], fine[i][1], err, sizeof(err)), 0,
			     "%s: %s", fine[i][1], err);
}

Test(allow_arg, control_characters_are_not_echoed)
{
	struct policy *p = empty_policy();
	char err[POLICY_ERR_LEN] = "";

	cr_assert_eq(policy_add_arg(p, "example.com\n:443", err), -EINVAL);
	cr_assert_str_eq(err, "--allow: argument contains a control character");
	cr_assert_eq(p->n_args, 0);
	policy_free(p);
}

/* What a slip says to write is itself a rule weir takes; a host that is
 * none (empty, a lone '*', a bracket, a zone id) gets no suggestion. */
static void slip_says(const char *key, const char *s, const char *want)
{
	char err[POLICY_ERR_LEN] = "";

	cr_assert_eq(rule_check_slip(key, s, err, sizeof(err)), -EINVAL, "%s accepted", s);
	cr_assert(strstr(err, want), "%s: got '%s', want '%s'", s, err, want);
}

Test(slip, suggestions_are_rules_weir_takes)
{
	slip_says("domain", ":443", "':443': a port does not go in the name; write the name "
				    "or address alone, with ports: [443]");
	slip_says("domain", "*:443", "write the name or address alone, with ports: [443]");
	slip_says("domain", "[:443", "write the name or address alone, with ports: [443]");
	slip_says("domain", "https://[2001:db8::1",
		  "is a URL, not a rule; write the host name or address it names");
	slip_says("ip", "https://[fe80::1%25eth0]:443", "write the host name or address it names");
	slip_says("ip", "https://a@web.test", "write domain: web.test with ports: [443]");
	slip_says("cidr", "https://web.test", "write domain: web.test with ports: [443]");
	slip_says("cidr", "192.0.2.7:80", "write ip: 192.0.2.7 with ports: [80]");
	slip_says("ip", "web.test:80", "write domain: web.test with ports: [80]");
	slip_says("domain", "[2001:db8::1]:443", "write ip: 2001:db8::1 with ports: [443]");
	slip_says("cidr", "192.0.2.0/24:443", "write cidr: 192.0.2.0/24 with ports: [443]");
	slip_says(NULL, "https://*", "a URL is not a rule; write the host name or address it names");
	slip_says(NULL, "https://a@", "write the host name or address it names");
	slip_says(NULL, "https://web.test:8443", "write web.test:8443");
}

/* A slip only ever refuses; odd and long values end in an error, never
 * in acceptance, and never run past the message buffer. */
Test(slip, odd_values_fail_closed)
{
	static const char *const odd[] = { "https://", "https://[]:80", "https://:443", "x://",
					   "https://\xc3\xa4.test", "a://b@c@d:1/" };
	char err[POLICY_ERR_LEN], big[2048];
	size_t i;

	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		cr_assert_eq(rule_check_slip("domain", odd[i], err, sizeof(err)), -EINVAL, "%s",
			     odd[i]);
		cr_assert_eq(rule_check_slip(NULL, odd[i], err, sizeof(err)), -EINVAL, "%s",
			     odd[i]);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "https://", 8);
	cr_assert_eq(rule_check_slip("domain", big, err, sizeof(err)), -EINVAL);
	cr_assert_lt(strlen(err), sizeof(err));
}
