// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Policy files: a full policy read back field by field, the defaults, the
 * built-in policy, and every way a file can be wrong, each checked for the
 * FILE:LINE:COL a person would jump to and for what the message says.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "policy.h"
#include "weir/egress.h"

#define assert_has(s, sub) cr_assert(strstr((s), (sub)), "'%s' does not contain '%s'", (s), (sub))

static struct policy *load_len(const char *yaml, size_t len)
{
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = NULL;

	cr_assert_eq(policy_load_buffer("t.yaml", yaml, len, &p, err), 0, "%s", err);
	cr_assert_not_null(p);
	return p;
}

static struct policy *load(const char *yaml)
{
	return load_len(yaml, strlen(yaml));
}

/* YAML must fail with "t.yaml:WHERE: ..." containing WHAT, on one line. */
static void bad_len(const char *yaml, size_t len, const char *where, const char *what)
{
	struct policy *p = (struct policy *)1;
	char err[POLICY_ERR_LEN] = "";
	char prefix[64];
	int ret;

	ret = policy_load_buffer("t.yaml", yaml, len, &p, err);
	cr_assert_eq(ret, -EINVAL, "accepted (%d):\n%s", ret, yaml);
	cr_assert_null(p);
	snprintf(prefix, sizeof(prefix), "t.yaml:%s: ", where);
	cr_assert(!strncmp(err, prefix, strlen(prefix)), "'%s' does not start with '%s'", err,
		  prefix);
	assert_has(err, what);
	cr_assert_null(strchr(err, '\n'), "message has a newline: '%s'", err);
}

static void bad(const char *yaml, const char *where, const char *what)
{
	bad_len(yaml, strlen(yaml), where, what);
}

static void check_cidr(const struct policy_rule *r, int family, const char *addr,
		       unsigned int plen)
{
	__u8 want[16] = { 0 };

	cr_assert_eq(inet_pton(family, addr, want), 1);
	cr_assert_eq(r->kind, RULE_CIDR);
	cr_assert_eq(r->family, family);
	cr_assert_eq(r->prefixlen, plen);
	cr_assert_arr_eq(r->addr, want, 16, "address is not %s", addr);
	cr_assert_null(r->domain);
}

static void check_ports(const struct policy_rule *r, const struct port_range *want, size_t n)
{
	size_t i;

	cr_assert_eq(r->n_ports, n);
	for (i = 0; i < n; i++) {
		cr_assert_eq(r->ports[i].lo, want[i].lo, "ports[%zu].lo %u", i, r->ports[i].lo);
		cr_assert_eq(r->ports[i].hi, want[i].hi, "ports[%zu].hi %u", i, r->ports[i].hi);
	}
}

static void check_at(const struct policy_rule *r, unsigned int line, unsigned int col)
{
	cr_assert_eq(r->line, line, "line %u, not %u", r->line, line);
	cr_assert_eq(r->col, col, "col %u, not %u", r->col, col);
}

/* The comments give the line each rule starts on. */
static const char full_yaml[] =
	"version: 1\n"
	"name: example\n"
	"mode: audit\n"
	"loopback: deny\n"
	"allow:\n"
	"  - domain: GitHub.com.\n" /* 6 */
	"    ports: [443]\n"
	"    proto: tcp\n"
	"  - domain: \"*.npmjs.org\"\n" /* 9 */
	"  - domain: \"**.githubusercontent.com\"\n" /* 10 */
	"  - cidr: 192.0.2.0/24\n" /* 11 */
	"    ports: [80, 8000-8100]\n"
	"    proto: tcp\n"
	"  - ip: 2001:db8::1\n" /* 14 */
	"  - ip: ::ffff:198.51.100.9\n" /* 15 */
	"    ports: 53\n"
	"    proto: udp\n"
	"  - {cidr: \"2001:db8::/32\", ports: [\"8443\"], proto: any}\n" /* 18 */
	"deny:\n"
	"  # a comment\n"
	"  - cidr: 198.51.100.0/24\n" /* 21 */
	"  - domain: evil.example\n" /* 22 */
	"    proto: any\n";

Test(policy, full)
{
	static const struct port_range p443[] = { { 443, 443 } };
	static const struct port_range pweb[] = { { 80, 80 }, { 8000, 8100 } };
	static const struct port_range p53[] = { { 53, 53 } };
	static const struct port_range p8443[] = { { 8443, 8443 } };
	struct policy *p = load(full_yaml);
	struct policy_rule *a = p->allow;

	cr_assert_str_eq(p->source, "t.yaml");
	cr_assert_str_eq(p->name, "example");
	cr_assert_eq(p->mode, POLICY_AUDIT);
	cr_assert_eq(p->loopback_allow, false);
	cr_assert_eq(p->n_allow, 7);
	cr_assert_eq(p->n_deny, 2);
	cr_assert_eq(p->n_args, 0);

	cr_assert_eq(a[0].kind, RULE_DOMAIN);
	cr_assert_str_eq(a[0].domain, "github.com");
	cr_assert_eq(a[0].match, NAME_EXACT);
	check_ports(&a[0], p443, 1);
	cr_assert_eq(a[0].protos, WEIR_P_TCP);
	check_at(&a[0], 6, 5);

	cr_assert_str_eq(a[1].domain, "npmjs.org");
	cr_assert_eq(a[1].match, NAME_ONE);
	check_ports(&a[1], NULL, 0);
	cr_assert_eq(a[1].protos, WEIR_P_ANY);
	check_at(&a[1], 9, 5);

	cr_assert_str_eq(a[2].domain, "githubusercontent.com");
	cr_assert_eq(a[2].match, NAME_MANY);
	cr_assert_eq(a[2].protos, WEIR_P_ANY);
	check_at(&a[2], 10, 5);

	check_cidr(&a[3], AF_INET, "192.0.2.0", 24);
	check_ports(&a[3], pweb, 2);
	cr_assert_eq(a[3].protos, WEIR_P_TCP);
	check_at(&a[3], 11, 5);

	check_cidr(&a[4], AF_INET6, "2001:db8::1", 128);
	check_ports(&a[4], NULL, 0);
	cr_assert_eq(a[4].protos, WEIR_P_ANY);
	check_at(&a[4], 14, 5);

	/* IPv4-mapped: judged by the IPv4 rules, so stored as IPv4. */
	check_cidr(&a[5], AF_INET, "198.51.100.9", 32);
	check_ports(&a[5], p53, 1);
	cr_assert_eq(a[5].protos, WEIR_P_UDP);
	check_at(&a[5], 15, 5);

	check_cidr(&a[6], AF_INET6, "2001:db8::", 32);
	check_ports(&a[6], p8443, 1);
	cr_assert_eq(a[6].protos, WEIR_P_TCP | WEIR_P_UDP);
	check_at(&a[6], 18, 5);

	check_cidr(&p->deny[0], AF_INET, "198.51.100.0", 24);
	cr_assert_eq(p->deny[0].protos, WEIR_P_ANY);
	check_at(&p->deny[0], 21, 5);
	cr_assert_str_eq(p->deny[1].domain, "evil.example");
	cr_assert_eq(p->deny[1].protos, WEIR_P_ANY);
	check_at(&p->deny[1], 22, 5);
	policy_free(p);
}

Test(policy, defaults)
{
	struct policy *p = load("version: 1\n");

	cr_assert_null(p->name);
	cr_assert_eq(p->mode, POLICY_ENFORCE);
	cr_assert_eq(p->loopback_allow, true);
	cr_assert_eq(p->n_allow, 0);
	cr_assert_null(p->allow);
	cr_assert_eq(p->n_deny, 0);
	cr_assert_null(p->deny);
	policy_free(p);

	p = load("version: 1\nmode: enforce\nloopback: allow\nallow: []\ndeny:\nname: ~\n");
	cr_assert_eq(p->mode, POLICY_ENFORCE);
	cr_assert_eq(p->loopback_allow, true);
	cr_assert_null(p->name);
	cr_assert_eq(p->n_allow, 0);
	cr_assert_eq(p->n_deny, 0);
	policy_free(p);

	p = load("{version: 1, mode: audit, allow: [{ip: 192.0.2.1}]}\n...\n");
	cr_assert_eq(p->mode, POLICY_AUDIT);
	cr_assert_eq(p->n_allow, 1);
	policy_free(p);
}

Test(policy, protos)
{
	struct policy *p = load("version: 1\n"
				"allow:\n"
				"  - domain: a.example\n"
				"  - domain: a.example\n    ports: 443\n"
				"  - domain: a.example\n    proto: any\n"
				"  - domain: a.example\n    proto: any\n    ports: [1-2]\n"
				"  - domain: a.example\n    proto: tcp\n"
				"  - domain: a.example\n    proto: udp\n    ports: [53]\n");

	cr_assert_eq(p->allow[0].protos, WEIR_P_ANY);
	cr_assert_eq(p->allow[1].protos, WEIR_P_TCP | WEIR_P_UDP);
	cr_assert_eq(p->allow[2].protos, WEIR_P_ANY);
	cr_assert_eq(p->allow[3].protos, WEIR_P_TCP | WEIR_P_UDP);
	cr_assert_eq(p->allow[4].protos, WEIR_P_TCP);
	cr_assert_eq(p->allow[5].protos, WEIR_P_UDP);
	policy_free(p);
}

Test(policy, sixteen_port_ranges)
{
	struct policy *p = load("version: 1\nallow:\n  - ip: 192.0.2.1\n"
				"    ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
				" 11, 12, 13, 14, 15, 16-20]\n");

	cr_assert_eq(p->allow[0].n_ports, WEIR_PORTSET_MAX);
	cr_assert_eq(p->allow[0].ports[15].lo, 16);
	cr_assert_eq(p->allow[0].ports[15].hi, 20);
	policy_free(p);
}

Test(policy, builtin)
{
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = NULL;
	FILE *devnull;
	size_t i;

	cr_assert_eq(policy_load_builtin(&p, err), 0, "%s", err);
	cr_assert_str_eq(p->source, POLICY_BUILTIN_NAME);
	cr_assert_str_eq(p->name, "agent-default");
	cr_assert_eq(p->mode, POLICY_ENFORCE);
	cr_assert_eq(p->loopback_allow, true);
	cr_assert_gt(p->n_allow, 0);
	cr_assert_eq(p->n_deny, 0);
	for (i = 0; i < p->n_allow; i++) {
		const struct policy_rule *r = &p->allow[i];

		cr_assert_eq(r->kind, RULE_DOMAIN, "allow[%zu]", i);
		cr_assert_eq(r->match, NAME_EXACT, "allow[%zu] %s", i, r->domain);
		cr_assert_eq(r->n_ports, 1, "allow[%zu] %s", i, r->domain);
		cr_assert_eq(r->ports[0].lo, 443);
		cr_assert_eq(r->ports[0].hi, 443);
		cr_assert_eq(r->protos, WEIR_P_TCP, "allow[%zu] %s", i, r->domain);
	}
	devnull = fopen("/dev/null", "w");
	cr_assert_eq(policy_print_warnings(devnull, p), 0);
	fclose(devnull);
	policy_free(p);
}

Test(policy, builtin_names)
{
	static const char *const want[] = { "github.com", "registry.npmjs.org", "pypi.org",
					    "files.pythonhosted.org", "crates.io",
					    "proxy.golang.org" };
	char err[POLICY_ERR_LEN];
	struct policy *p;
	size_t i, j;

	cr_assert_eq(policy_load_builtin(&p, err), 0, "%s", err);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		for (j = 0; j < p->n_allow; j++)
			if (!strcmp(p->allow[j].domain, want[i]))
				break;
		cr_assert_lt(j, p->n_allow, "%s missing from the built-in policy", want[i]);
	}
	policy_free(p);
}

/* Run F on P and return what it printed (malloc'd). */
static char *capture_summary(const struct policy *p)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	cr_assert_not_null(f);
	policy_print_summary(f, p);
	fclose(f);
	return out;
}

/* The unix: lines of a policy with no unix: section: the built-in list. */
#define UNIX_RESOLVER " (a resolver: refused in audit mode too)\n"
#define UNIX_BUILTIN_LINES                                                                         \
	"unix-builtin: deny /run/nscd/socket" UNIX_RESOLVER                                        \
	"unix-builtin: deny /var/run/nscd/socket" UNIX_RESOLVER                                    \
	"unix-builtin: deny /run/systemd/resolve/io.systemd.Resolve" UNIX_RESOLVER                 \
	"unix-builtin: deny /var/run/systemd/resolve/io.systemd.Resolve" UNIX_RESOLVER             \
	"unix-builtin: deny /run/systemd/resolve/io.systemd.Resolve.Monitor" UNIX_RESOLVER         \
	"unix-builtin: deny /run/avahi-daemon/socket" UNIX_RESOLVER                                \
	"unix-builtin: deny /var/run/avahi-daemon/socket" UNIX_RESOLVER                            \
	"unix-builtin: deny /run/dbus/system_bus_socket\n"                                         \
	"unix-builtin: deny /var/run/dbus/system_bus_socket\n"                                     \
	"unix-builtin: deny /run/cups/cups.sock\n"                                                 \
	"unix-builtin: deny /var/run/cups/cups.sock\n"                                             \
	"unix-builtin: deny /run/docker.sock\n"                                                    \
	"unix-builtin: deny /var/run/docker.sock\n"                                                \
	"unix-builtin: deny /run/docker/*\n"                                                       \
	"unix-builtin: deny /var/run/docker/*\n"                                                   \
	"unix-builtin: deny /run/containerd/*\n"                                                   \
	"unix-builtin: deny /var/run/containerd/*\n"                                               \
	"unix-builtin: deny /run/podman/podman.sock\n"                                             \
	"unix-builtin: deny /var/run/podman/podman.sock\n"                                         \
	"unix-builtin: deny /run/crio/crio.sock\n"                                                 \
	"unix-builtin: deny /var/run/crio/crio.sock\n"                                             \
	"unix-builtin: deny /run/buildkit/*\n"                                                     \
	"unix-builtin: deny /var/run/buildkit/*\n"

Test(policy, summary)
{
	static const char want[] = "policy: example (source: t.yaml)\n"
				   "mode: audit\n"
				   "loopback: deny\n"
				   "t.yaml:6: allow[0]: domain github.com ports 443 proto tcp\n"
				   "t.yaml:9: allow[1]: domain *.npmjs.org\n"
				   "t.yaml:10: allow[2]: domain **.githubusercontent.com\n"
				   "t.yaml:11: allow[3]: cidr 192.0.2.0/24 ports 80,8000-8100 proto tcp\n"
				   "t.yaml:14: allow[4]: ip 2001:db8::1\n"
				   "t.yaml:15: allow[5]: ip 198.51.100.9 ports 53 proto udp\n"
				   "t.yaml:18: allow[6]: cidr 2001:db8::/32 ports 8443\n"
				   "t.yaml:21: deny[0]: cidr 198.51.100.0/24\n"
				   "t.yaml:22: deny[1]: domain evil.example\n"
				   "--allow[0]: domain example.com ports 443\n"
				   "--allow[1]: cidr 2001:db8::/32 ports 1-1024\n"
				   "inbound: loopback peers only (no inbound: section)\n"
				   "dns: upstream (/etc/resolv.conf); ttl 5..3600 s; max 64 addresses per "
				   "name; static auto\n"
				   "unix: built-in list on (23 sockets: nscd, systemd-resolved, avahi, the "
				   "D-Bus system bus, CUPS, docker, containerd, podman, CRI-O, BuildKit; "
				   "both /run and /var/run)\n" UNIX_BUILTIN_LINES
				   "unix: paths no pattern can judge are refused (relative; //, /./, "
				   "/../)\n"
				   "9 allow rules, 2 deny rules\n";
	struct policy *p = load(full_yaml);
	char err[POLICY_ERR_LEN];
	char *out;

	cr_assert_eq(policy_add_arg(p, "example.com:443", err), 0, "%s", err);
	cr_assert_eq(policy_add_arg(p, "[2001:db8::/32]:1-1024", err), 0, "%s", err);
	out = capture_summary(p);
	cr_assert_str_eq(out, want);
	free(out);
	policy_free(p);
}

Test(policy, summary_unnamed)
{
	struct policy *p = load("version: 1\nallow:\n  - ip: 192.0.2.1\n");
	char *out = capture_summary(p);

	cr_assert_str_eq(out, "policy: (unnamed) (source: t.yaml)\n"
			      "mode: enforce\n"
			      "loopback: allow\n"
			      "t.yaml:3: allow[0]: ip 192.0.2.1\n"
			      "inbound: loopback peers only (no inbound: section)\n"
			      "dns: upstream (/etc/resolv.conf); ttl 5..3600 s; max 64 addresses per "
			      "name; static auto\n"
			      "unix: built-in list on (23 sockets: nscd, systemd-resolved, avahi, the "
			      "D-Bus system bus, CUPS, docker, containerd, podman, CRI-O, BuildKit; "
			      "both /run and /var/run)\n" UNIX_BUILTIN_LINES
			      "unix: paths no pattern can judge are refused (relative; //, /./, "
			      "/../)\n"
			      "1 allow rule, 0 deny rules\n");
	free(out);
	policy_free(p);
}

/* Allowed wildcards work through weir's resolver: no warning. A denied
 * wildcard cannot deny addresses, and says so. */
Test(policy, warnings)
{
	const char *y = "version: 1\nallow:\n  - domain: \"*.npmjs.org\"\n"
			"deny:\n  - domain: \"**.evil.example\"\n  - domain: bad.example\n";
	struct policy *p = load(full_yaml);
	char err[POLICY_ERR_LEN];
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_eq(policy_add_arg(p, "**.example.com:443", err), 0, "%s", err);
	f = open_memstream(&out, &len);
	cr_assert_eq(policy_print_warnings(f, p), 0);
	fclose(f);
	free(out);
	policy_free(p);
	p = load(y);
	out = NULL;
	f = open_memstream(&out, &len);
	cr_assert_eq(policy_print_warnings(f, p), 1);
	fclose(f);
	cr_assert_str_eq(out, "weir: t.yaml:5:5: warning: deny[0] '**.evil.example': a wildcard "
			      "deny refuses these names at weir's resolver, but cannot deny their "
			      "addresses (list them with cidr: to deny those)\n");
	free(out);
	policy_free(p);
}

Test(policy, free_null)
{
	policy_free(NULL);
}

Test(errors, document)
{
	bad("", "1:1", "empty policy");
	bad("# nothing but a comment\n", "1:1", "empty policy");
	bad("version: 1\n---\nversion: 1\n", "3:1", "more than one YAML document");
	bad("- version: 1\n", "1:1", "a policy is a mapping");
	bad("version 1\n", "1:1", "a policy is a mapping");
	bad("version: 1\nallow: [\n", "3:1", "invalid YAML: did not find expected node content");
	bad("version: 1\n\tallow: []\n", "2:1", "invalid YAML: found a tab character");
	bad("version: 1\nname: a: b\n", "2:8", "invalid YAML: mapping values are not allowed");
	bad("version: 1\nname: *x\n", "2:7", "invalid YAML: found undefined alias");
	bad("version: 1\nname: \"open\n", "3:1", "invalid YAML: found unexpected end of stream");
	bad("version: 1\nallow:\n  - domain: a.com\n   ports: 1\n", "4:4", "invalid YAML");
}

Test(errors, bytes)
{
	static const char nul[] = "version: 1\nname: a\0b\n";

	bad("version: 1\nname: \xff\n", "2:7", "invalid input: invalid leading UTF-8 octet");
	/* libyaml points at the byte that broke the sequence. */
	bad("version: 1\nname: caf\xc3\n", "2:11", "invalid input: invalid trailing UTF-8 octet");
	bad("version: 1\nname: x\n\x01", "3:1", "control characters are not allowed");
	bad_len(nul, sizeof(nul) - 1, "2:8", "NUL byte in policy");
	bad("version: 1\nname: \"a\\nb\"\n", "2:7", "name: value contains a control character");
	bad("version: 1\nname: \"a\\0b\"\n", "2:7", "name: value contains a NUL character");
	bad("version: 1\nallow:\n  - domain: \"github.com\\0.evil\"\n", "3:13",
	    "allow[0]: domain: value contains a NUL character");
}

Test(errors, too_large)
{
	size_t len = (256 << 20) + 1; /* the cap, stated in the message */
	char *big = malloc(len);
	struct policy *p;
	char err[POLICY_ERR_LEN];

	cr_assert_not_null(big);
	memset(big, ' ', len);
	cr_assert_eq(policy_load_buffer("t.yaml", big, len, &p, err), -EFBIG);
	assert_has(err, "t.yaml: policy larger than 256 MiB");
	free(big);
}

Test(errors, top_level_keys)
{
	bad("version: 1\nfoo: bar\n", "2:1",
	    "unknown key 'foo' (expected: version, name, mode, loopback, allow, deny, dns, ping, "
	    "inbound, include, unix)");
	bad("version: 1\nmode: audit\nmode: enforce\n", "3:1",
	    "duplicate key 'mode' (first at line 2)");
	bad("version: 1\nversion: 1\n", "2:1", "duplicate key 'version' (first at line 1)");
	bad("version: 1\n[a]: b\n", "2:1", "a key must be a string, got a list");
	bad("version: 1\nallow: []\nAllow: []\n", "3:1", "unknown key 'Allow'");
}

Test(errors, version)
{
	bad("mode: audit\n", "1:1", "missing 'version: 1'");
	bad("name: x\nallow: []\n", "1:1", "missing 'version: 1'");
	bad("version: 2\n", "1:10", "unsupported policy version 2 (this weir reads version 1)");
	/* A newer format's keys are not the complaint: its version is. */
	bad("new_key: 1\nversion: 3\n", "2:10", "unsupported policy version 3");
	bad("version: 0\n", "1:10", "unsupported policy version 0");
	bad("version: \"1\"\n", "1:10", "version: expected the integer 1, got '1'");
	bad("version: 1.0\n", "1:10", "version: expected the integer 1, got '1.0'");
	bad("version: one\n", "1:10", "version: expected the integer 1, got 'one'");
	bad("version:\n", "1:9", "version: expected the integer 1, got ''");
	bad("version: [1]\n", "1:10", "version: expected a string, got a list");
}

Test(errors, scalars)
{
	bad("version: 1\nname: example\nloopback: allow\nmode: block\n", "4:7",
	    "mode: expected 'enforce' or 'audit', got 'block'");
	bad("version: 1\nmode: Enforce\n", "2:7", "got 'Enforce'");
	bad("version: 1\nmode: [audit]\n", "2:7", "mode: expected a string, got a list");
	bad("version: 1\nloopback: yes\n", "2:11",
	    "loopback: expected 'allow' or 'deny', got 'yes'");
	bad("version: 1\nloopback:\n", "2:10", "loopback: expected 'allow' or 'deny', got ''");
	bad("version: 1\nname: {a: b}\n", "2:7", "name: expected a string, got a mapping");
}

Test(errors, rule_lists)
{
	bad("version: 1\nallow: github.com\n", "2:8",
	    "allow: expected a list of rules, got a string");
	bad("version: 1\ndeny:\n  domain: a.com\n", "3:3",
	    "deny: expected a list of rules, got a mapping");
	bad("version: 1\nallow:\n  - github.com\n", "3:5",
	    "allow[0]: a rule is a mapping such as 'domain: example.com', got a string");
	bad("version: 1\nallow:\n  - [a]\n", "3:5", "allow[0]: a rule is a mapping");
}

Test(errors, rule_keys)
{
	bad("version: 1\n"
	    "allow:\n"
	    "  - domain: a.example\n"
	    "  - domain: b.example\n"
	    "  - domain: c.example\n"
	    "    port: 443\n",
	    "6:5",
	    "allow[2]: unknown key 'port' (expected: domain, cidr, ip, cidr_list, ports, proto, upload_budget)");
	bad("version: 1\nallow:\n  - domain: a.com\n    ports: 1\n    ports: 2\n", "5:5",
	    "allow[0]: duplicate key 'ports' (first at line 4)");
	bad("version: 1\nallow:\n  - ports: [443]\n    proto: tcp\n", "3:5",
	    "allow[0]: a rule needs one of domain, cidr, ip or cidr_list");
	bad("version: 1\nallow:\n  - {}\n", "3:5", "allow[0]: a rule needs one of domain");
	bad("version: 1\nallow:\n  - domain: a.com\n    ip: 192.0.2.1\n", "4:5",
	    "allow[0]: a rule names one destination, this one has both 'domain' and 'ip'");
	bad("version: 1\ndeny:\n  - cidr: 192.0.2.0/24\n    cidr: 192.0.2.0/24\n", "4:5",
	    "deny[0]: duplicate key 'cidr'");
	bad("version: 1\nallow:\n  - domain: [a.com]\n", "3:13",
	    "allow[0]: domain: expected a string, got a list");
}

Test(errors, cidr_and_ip)
{
	bad("version: 1\n"
	    "allow:\n"
	    "  - domain: a.example\n"
	    "  - domain: b.example\n"
	    "    ports: [443]\n"
	    "  -\n"
	    "    cidr: 192.0.2.0/33\n",
	    "7:11", "allow[2]: bad CIDR '192.0.2.0/33': prefix length must be 0..32");
	bad("version: 1\nallow:\n  - cidr: 192.0.2.1/24\n", "3:11",
	    "allow[0]: 192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?");
	bad("version: 1\nallow:\n  - cidr: 192.0.2.1\n", "3:11", "missing /LENGTH");
	bad("version: 1\nallow:\n  - cidr: ::ffff:0:0/64\n", "3:11",
	    "IPv4-mapped prefix must be /96 or longer");
	bad("version: 1\ndeny:\n  - cidr: 2001:db8::/129\n", "3:11",
	    "deny[0]: bad CIDR '2001:db8::/129': prefix length must be 0..128");
	bad("version: 1\nallow:\n  - ip: 192.0.2.0/24\n", "3:9",
	    "allow[0]: ip '192.0.2.0/24' is a prefix, not an address; write it as cidr: "
	    "192.0.2.0/24");
	bad("version: 1\nallow:\n  - ip: example.com\n", "3:9",
	    "allow[0]: ip 'example.com' is not an IPv4 or IPv6 address");
	bad("version: 1\nallow:\n  - ip: 192.0.2.256\n", "3:9", "is not an IPv4 or IPv6 address");
	bad("version: 1\nallow:\n  - ip:\n", "3:8", "ip '' is not an IPv4 or IPv6 address");
}

Test(errors, domain)
{
	bad("version: 1\nallow:\n  - domain: foo.*.com\n", "3:13",
	    "allow[0]: domain 'foo.*.com': a wildcard must be the whole first label ('*.' or "
	    "'**.')");
	bad("version: 1\nallow:\n  - domain: \"foo*.bar.com\"\n", "3:13",
	    "a wildcard must be the whole first label");
	bad("version: 1\nallow:\n  - domain: \"*.com\"\n", "3:13", "domain '*.com': too broad");
	bad("version: 1\nallow:\n  - domain: \"**.com\"\n", "3:13", "too broad");
	bad("version: 1\nallow:\n  - domain: 192.0.2.1\n", "3:13",
	    "domain '192.0.2.1' is an IP address; write it as ip: 192.0.2.1");
	bad("version: 1\nallow:\n  - domain: \"\"\n", "3:13", "allow[0]: domain: empty name");
	bad("version: 1\nallow:\n  - domain:\n", "3:12", "empty name");
	bad("version: 1\nallow:\n  - domain: a..com\n", "3:13", "empty label");
	bad("version: 1\nallow:\n  - domain: -a.com\n", "3:13", "starts or ends with '-'");
	bad("version: 1\nallow:\n  - domain: \"a b.com\"\n", "3:13", "invalid character ' '");
}

/* Slips a new user makes: each message says what to write instead. */
Test(errors, common_slips)
{
	bad("version: 1\nallow:\n  - domain: *.npmjs.org\n    ports: [443]\n", "3:13",
	    "*.npmjs.org: YAML reads an unquoted leading '*' as an alias; quote it: "
	    "'*.npmjs.org'");
	bad("version: 1\nallow:\n  - domain: **.example.com\n", "3:13",
	    "quote it: '**.example.com'");
	bad("version: 1\nallow: [{domain: *.npmjs.org, ports: 443}]\n", "2:18",
	    "quote it: '*.npmjs.org'");
	bad("version: 1\nallow:\n  - domain: https://web.test/path\n", "3:13",
	    "allow[0]: domain 'https://web.test/path' is a URL, not a rule; write domain: "
	    "web.test with ports: [443]");
	bad("version: 1\nallow:\n  - domain: http://web.test\n", "3:13",
	    "write domain: web.test with ports: [80]");
	bad("version: 1\nallow:\n  - domain: https://192.0.2.7:8443/\n", "3:13",
	    "write ip: 192.0.2.7 with ports: [8443]");
	bad("version: 1\nallow:\n  - domain: github.com:443\n", "3:13",
	    "allow[0]: domain 'github.com:443': a port does not go in the name; write domain: "
	    "github.com with ports: [443]");
	bad("version: 1\ndeny:\n  - domain: \"*.evil.test:80\"\n", "3:13",
	    "write domain: \"*.evil.test\" with ports: [80]");
	bad("version: 1\nallow:\n  - ip: 192.0.2.7:80\n", "3:9",
	    "ip '192.0.2.7:80': a port does not go in the address; write ip: 192.0.2.7 with "
	    "ports: [80]");
	bad("version: 1\nallow:\n  - cidr: 192.0.2.0/24:443\n", "3:11",
	    "write cidr: 192.0.2.0/24 with ports: [443]");
	bad("version: 1\nallow:\n  - domain: web.test/path\n", "3:13",
	    "domain 'web.test/path': a rule names a host, not a path; write domain: web.test");
	/* An alias that could be real keeps libyaml's words, with the hint. */
	bad("version: 1\nname: *x\n", "2:7", "found undefined alias *x: YAML reads");
}

/* libyaml's marks count characters: UTF-8 before the slip (a comment, a
 * name) still finds the text; a buffer ends where its length says. */
Test(errors, alias_hint_after_utf8_and_at_the_end)
{
	bad("version: 1\n# Z\xc3\xbcrich \xe2\x82\xac\xe2\x82\xac\nallow:\n  - domain: *.npmjs.org\n",
	    "4:13", "*.npmjs.org: YAML reads an unquoted leading '*' as an alias; quote it: "
		    "'*.npmjs.org'");
	bad("version: 1\nallow: [{domain: \"\xc3\xbc.test\"}, {domain: *.npmjs.org}]\n", "2:38",
	    "quote it: '*.npmjs.org'");
	bad("version: 1\rallow:\r  - domain: *.npmjs.org\r", "3:13", "quote it: '*.npmjs.org'");
	bad_len("version: 1\nname: *xyz", strlen("version: 1\nname: *x"), "2:7",
		"found undefined alias *x: YAML reads an unquoted leading '*' as an alias; "
		"quote it: '*x'");
}

Test(errors, ports)
{
	bad("version: 1\n"
	    "allow:\n"
	    "  - domain: a.example\n"
	    "  - domain: b.example\n"
	    "  - domain: c.example\n"
	    "  - domain: d.example\n"
	    "    proto: tcp\n"
	    "    ports:\n"
	    "      - 443\n"
	    "      - 8443\n"
	    "      - 8000-8100\n"
	    "    ports: [80, 70000]\n",
	    "12:5", "allow[3]: duplicate key 'ports'");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: [80, 70000]\n", "4:17",
	    "allow[0]: port 70000 out of range (1-65535)");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: [0]\n", "4:13",
	    "allow[0]: port 0 out of range (1-65535)");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: 65536\n", "4:12",
	    "port 65536 out of range (1-65535)");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: [8100-8000]\n", "4:13",
	    "bad port range '8100-8000': 8100 is above 8000");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: [https]\n", "4:13",
	    "allow[0]: bad port 'https': expected a port N or a range N-M");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: []\n", "4:12",
	    "allow[0]: ports: empty list; leave ports out to allow every port");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports:\n", "4:11", "missing port");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: {a: 1}\n", "4:12",
	    "ports: expected a port, a range or a list of them, got a mapping");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    ports: [[80]]\n", "4:13",
	    "ports: expected a string, got a list");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n"
	    "    ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]\n",
	    "4:68", "allow[0]: too many port ranges (17; at most 16 per rule)");
}

Test(errors, proto)
{
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    proto: icmp\n", "4:12",
	    "allow[0]: proto: expected tcp, udp or any, got 'icmp'");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    proto: TCP\n", "4:12", "got 'TCP'");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    proto: [tcp]\n", "4:12",
	    "proto: expected a string, got a list");
}

Test(errors, first_problem_wins)
{
	/* allow[0] is fine, allow[1] is wrong, deny[0] is wrong too. */
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n  - ip: nope\ndeny:\n  - ip: nope\n", "4:9",
	    "allow[1]: ip 'nope'");
}

static char *write_temp(const char *text)
{
	char *path = strdup("/tmp/weir-test-policy-XXXXXX");
	int fd;

	cr_assert_not_null(path);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(file, load)
{
	char *path = write_temp(full_yaml);
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = NULL;

	cr_assert_eq(policy_load_file(path, &p, err), 0, "%s", err);
	cr_assert_str_eq(p->source, path);
	cr_assert_eq(p->n_allow, 7);
	policy_free(p);
	unlink(path);
	free(path);
}

Test(file, error_names_the_file)
{
	char *path = write_temp("version: 1\nloopback: block\n");
	char err[POLICY_ERR_LEN] = "", want[POLICY_ERR_LEN];
	struct policy *p = NULL;

	cr_assert_eq(policy_load_file(path, &p, err), -EINVAL);
	cr_assert_null(p);
	snprintf(want, sizeof(want), "%s:2:11: loopback: expected 'allow' or 'deny', got 'block'",
		 path);
	cr_assert_str_eq(err, want);
	unlink(path);
	free(path);
}

Test(file, missing)
{
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = (struct policy *)1;

	cr_assert_eq(policy_load_file("/nonexistent/weir/policy.yaml", &p, err), -ENOENT);
	cr_assert_null(p);
	assert_has(err, "/nonexistent/weir/policy.yaml: cannot open: No such file or directory");
}

Test(file, directory)
{
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = (struct policy *)1;

	cr_assert_eq(policy_load_file("/tmp", &p, err), -EISDIR);
	cr_assert_null(p);
	assert_has(err, "/tmp: cannot read: Is a directory");
}

/* inbound: absent is loopback peers only; `any`; a list of address rules
 * whose ports are local ports; `[]` is nobody. */
Test(inbound, modes_and_rules)
{
	struct policy *p = load("version: 1\n");

	cr_expect_eq(p->inbound_mode, INBOUND_DEFAULT);
	policy_free(p);
	p = load("version: 1\ninbound:\n");
	cr_expect_eq(p->inbound_mode, INBOUND_DEFAULT, "null is the default, as for dns:");
	policy_free(p);
	p = load("version: 1\ninbound: any\n");
	cr_expect_eq(p->inbound_mode, INBOUND_ANY);
	policy_free(p);
	p = load("version: 1\ninbound: []\n");
	cr_expect_eq(p->inbound_mode, INBOUND_RULES);
	cr_expect_eq(p->n_inbound, 0);
	policy_free(p);
	p = load("version: 1\ninbound:\n  - cidr: 198.51.100.0/24\n    ports: [8080, 9000-9010]\n"
		 "    proto: tcp\n  - ip: 2001:db8::7\n");
	cr_assert_eq(p->inbound_mode, INBOUND_RULES);
	cr_assert_eq(p->n_inbound, 2);
	cr_expect_eq(p->inbound[0].prefixlen, 24);
	cr_expect_eq(p->inbound[0].n_ports, 2);
	cr_expect_eq(p->inbound[0].ports[1].hi, 9010);
	cr_expect_eq(p->inbound[0].protos, WEIR_P_TCP);
	cr_expect_eq(p->inbound[1].family, AF_INET6);
	cr_expect_eq(p->inbound[1].protos, WEIR_P_ANY);
	cr_expect_eq(p->n_allow, 0, "inbound rules are not egress rules");
	policy_free(p);
}

Test(inbound, errors)
{
	bad("version: 1\ninbound: all\n", "2:10", "inbound: expected 'any' or a list of rules, got 'all'");
	bad("version: 1\ninbound:\n  - domain: ci.example.com\n", "3:13",
	    "inbound[0]: domain: an inbound rule names its peers by address (ip: or cidr:)");
	bad("version: 1\ninbound:\n  - ip: 192.0.2.1\n  - cidr: 192.0.2.1/24\n", "4:11",
	    "inbound[1]: 192.0.2.1/24 has host bits set");
	bad("version: 1\ninbound:\n  - ip: 192.0.2.1\n    port: 80\n", "4:5",
	    "inbound[0]: unknown key 'port'");
	bad("version: 1\ninbound:\n  ip: 192.0.2.1\n", "3:3",
	    "inbound: expected a list of rules, got a mapping");
	bad("version: 1\ninbound: any\ninbound: []\n", "3:1", "duplicate key 'inbound'");
}

Test(inbound, summary)
{
	struct policy *p = load("version: 1\ninbound:\n  - cidr: 198.51.100.0/24\n    ports: [8080]\n"
				"    proto: tcp\n");
	char *out = capture_summary(p);

	assert_has(out, "\nt.yaml:3: inbound[0]: cidr 198.51.100.0/24 ports 8080 proto tcp\n");
	free(out);
	policy_free(p);
	p = load("version: 1\ninbound: any\n");
	out = capture_summary(p);
	assert_has(out, "\ninbound: any\n");
	free(out);
	policy_free(p);
	p = load("version: 1\ninbound: []\n");
	out = capture_summary(p);
	assert_has(out, "\ninbound: none\n");
	free(out);
	policy_free(p);
}

/* --- upload_budget ---------------------------------------------------------- */

Test(budget, units_decimal_and_binary)
{
	static const struct {
		const char *s;
		__u64 want;
	} ok[] = {
		{ "1B", 1 },		     { "4096B", 4096 },
		{ "1KB", 1000 },	     { "1KiB", 1024 },
		{ "50MB", 50000000 },	     { "50MiB", 52428800 },
		{ "2 GB", 2000000000 },	     { "2GiB", 2147483648ULL },
		{ "1073741824 GiB", 1ULL << 60 },
	};
	static const char *const bad_sizes[] = { "", "5", "5XB", "1.5GB", "-1MiB", "0B", "MiB",
						 "5 mib", "5MiB ", "1 TiB", "99999999999 GiB" };
	char err[256];
	__u64 v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_expect_eq(parse_size(ok[i].s, &v, err, sizeof(err)), 0, "%s: %s", ok[i].s, err);
		cr_expect_eq(v, ok[i].want, "%s: %llu", ok[i].s, (unsigned long long)v);
	}
	for (i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
		cr_expect_eq(parse_size(bad_sizes[i], &v, err, sizeof(err)), -EINVAL, "'%s' accepted",
			     bad_sizes[i]);
}

Test(budget, on_an_allow_rule)
{
	struct policy *p = load("version: 1\n"
				"allow:\n"
				"  - domain: github.com\n"
				"    upload_budget: 50MiB\n"
				"  - ip: 192.0.2.1\n");

	cr_expect_eq(p->allow[0].upload_budget, 52428800);
	cr_expect_eq(p->allow[1].upload_budget, 0);
	policy_free(p);
}

Test(budget, errors_name_the_line)
{
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    upload_budget: 5XB\n", "4:20",
	    "allow[0]: upload_budget: bad size '5XB': expected a whole number and a unit");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    upload_budget: 0MiB\n", "4:20",
	    "is 0: nothing could be sent");
	bad("version: 1\nallow:\n  - ip: 192.0.2.1\n    upload_budget: [1MiB]\n", "4:20",
	    "upload_budget: expected a size such as 50MiB, got a list");
	bad("version: 1\ndeny:\n  - ip: 192.0.2.1\n    upload_budget: 1MiB\n", "4:20",
	    "deny[0]: upload_budget: only allow rules have one (this is a deny rule)");
	bad("version: 1\ninbound:\n  - ip: 192.0.2.1\n    upload_budget: 1MiB\n", "4:20",
	    "upload_budget: only allow rules have one (this is an inbound rule)");
}

/* A reload carries a budget by what the rule names, not where it is. */
Test(budget, ident_follows_the_destination)
{
	struct policy *a = load("version: 1\nallow:\n  - domain: github.com\n    upload_budget: 1MiB\n"
				"  - ip: 192.0.2.1\n");
	struct policy *b = load("version: 1\nallow:\n  - ip: 192.0.2.1\n"
				"  - domain: github.com\n    ports: [443]\n    upload_budget: 2MiB\n");

	cr_expect_eq(policy_rule_ident(&a->allow[0]), policy_rule_ident(&b->allow[1]));
	cr_expect_eq(policy_rule_ident(&a->allow[1]), policy_rule_ident(&b->allow[0]));
	cr_expect_neq(policy_rule_ident(&a->allow[0]), policy_rule_ident(&a->allow[1]));
	policy_free(a);
	policy_free(b);
}
