// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tiers (user/policy/include.c): include: of files (relative to the file
 * that names them) and presets; each rule keeps the file and line it was
 * written at; cycles, missing files, unknown presets, nesting too deep and
 * settings an include contradicts are errors at FILE:LINE:COL; the hash
 * covers every file; the daemon takes a changed include as a new version.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <criterion/criterion.h>

#include "events.h"
#include "policies.h"
#include "policy.h"
#include "shipped.h"

#define assert_has(s, sub) cr_assert(strstr((s), (sub)), "'%s' does not contain '%s'", (s), (sub))

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/weir-include-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(include, .init = setup, .fini = teardown);

/* DIR/NAME (a sub-directory made if named) holding TEXT. */
static void put(const char *name, const char *text)
{
	char path[256], tmp[300], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	slash = strrchr(path, '/');
	*slash = '\0';
	mkdir(path, 0755);
	*slash = '/';
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(rename(tmp, path), 0);
}

static char *path_of(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static struct policy *load(const char *name)
{
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = NULL;

	cr_assert_eq(policy_load_file(path_of(name), &p, err), 0, "%s", err);
	return p;
}

/* Loading NAME fails, the message starting "DIR/WHERE: " and holding WHAT. */
static void bad(const char *name, const char *where, const char *what)
{
	char err[POLICY_ERR_LEN] = "", prefix[256];
	struct policy *p = NULL;

	cr_assert_eq(policy_load_file(path_of(name), &p, err), -EINVAL, "accepted: %s", name);
	cr_assert_null(p);
	snprintf(prefix, sizeof(prefix), "%s/%s: ", dir, where);
	cr_assert(!strncmp(err, prefix, strlen(prefix)), "'%s' does not start with '%s'", err,
		  prefix);
	assert_has(err, what);
}

static const char *origin(const struct policy *p, enum weir_rule_kind kind, __u32 i)
{
	static char buf[512];

	policy_rule_origin(p, WEIR_RULE_ID(kind, i), buf, sizeof(buf));
	return buf;
}

/* top -> tiers/base (relative to top) -> ci (relative to base), and a preset. */
Test(include, tree_rules_keep_their_origin)
{
	struct policy *p;
	char want[512];

	put("top.yaml", "version: 1\nname: app\ninclude:\n  - tiers/base.yaml\n  - preset:npm\n"
			"allow:\n  - domain: app.test\n    ports: [443]\n");
	put("tiers/base.yaml", "version: 1\nname: base\nmode: enforce\ninclude: [ci.yaml]\n"
			       "deny:\n  - cidr: 198.51.100.0/24\n");
	put("tiers/ci.yaml", "version: 1\nallow:\n  - ip: 192.0.2.10\n    ports: [8080]\n");
	p = load("top.yaml");
	cr_assert_str_eq(p->name, "app");
	cr_assert_eq(p->n_allow, 4);
	cr_assert_eq(p->n_deny, 1);
	/* the file's own rules first, then each include's, depth first */
	cr_assert_str_eq(p->allow[0].domain, "app.test");
	snprintf(want, sizeof(want), "%s/top.yaml:7", dir);
	cr_assert_str_eq(origin(p, WEIR_RK_ALLOW, 0), want);
	snprintf(want, sizeof(want), "%s/tiers/ci.yaml:3", dir);
	cr_assert_str_eq(origin(p, WEIR_RK_ALLOW, 1), want);
	cr_assert_str_eq(p->allow[2].domain, "registry.npmjs.org");
	cr_assert(!strncmp(origin(p, WEIR_RK_ALLOW, 2), "preset:npm:", 11), "%s",
		  origin(p, WEIR_RK_ALLOW, 2));
	snprintf(want, sizeof(want), "%s/tiers/base.yaml:6", dir);
	cr_assert_str_eq(origin(p, WEIR_RK_DENY, 0), want);
	/* no origin: a rule in no file, or an index out of range */
	cr_assert_str_eq(origin(p, WEIR_RK_ARG, 0), "");
	cr_assert_str_eq(origin(p, WEIR_RK_ALLOW, 9), "");
	cr_assert_eq(p->n_files, 3);
	policy_free(p);
}

/* The JSON event names the rule's file and line; "rule" stays the id. */
Test(include, event_names_the_origin)
{
	struct weir_event e = { .verdict = WEIR_V_ALLOW, .op = WEIR_OP_CONNECT4,
				.reason = WEIR_R_ALLOW_RULE, .family = AF_INET, .protocol = 6,
				.port = 8080, .rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0) };
	struct event_ctx ctx = {};
	char buf[EVENT_JSON_MAX], want[512];

	put("top.yaml", "version: 1\ninclude: [base.yaml]\n");
	put("base.yaml", "version: 1\n# the CI tier\nallow:\n  - ip: 192.0.2.10\n");
	inet_pton(AF_INET, "192.0.2.10", e.addr);
	ctx.policy = load("top.yaml");
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "\"rule\":\"allow[0]\",\"rule_origin\":\"%s/base.yaml:4\"",
		 dir);
	assert_has(buf, want);
	cr_assert_gt(event_format_human(&ctx, &e, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), " [rule %s/base.yaml:4]", dir);
	assert_has(buf, want);
	e.rule = 0; /* default: no origin */
	cr_assert_gt(event_format_json(&ctx, &e, buf, sizeof(buf)), 0);
	cr_assert_null(strstr(buf, "rule_origin"), "%s", buf);
	policy_free((struct policy *)ctx.policy);
}

Test(include, cycles)
{
	put("a.yaml", "version: 1\ninclude: [a.yaml]\n");
	bad("a.yaml", "a.yaml:2:11", "include 'a.yaml': an include cycle");
	put("a.yaml", "version: 1\ninclude:\n  - b.yaml\n");
	put("b.yaml", "version: 1\nallow:\n  - ip: 192.0.2.1\ninclude:\n  - ./a.yaml\n");
	bad("a.yaml", "b.yaml:5:5", "an include cycle");
	bad("a.yaml", "b.yaml:5:5", "a.yaml -> ");
}

/* Two ways to one file (a diamond) is no cycle: its rules come in once. */
Test(include, diamond_once)
{
	struct policy *p;

	put("top.yaml", "version: 1\ninclude: [l.yaml, r.yaml]\n");
	put("l.yaml", "version: 1\ninclude: [common.yaml]\n");
	put("r.yaml", "version: 1\ninclude: [common.yaml]\n");
	put("common.yaml", "version: 1\nallow:\n  - ip: 192.0.2.1\n");
	p = load("top.yaml");
	cr_assert_eq(p->n_allow, 1);
	policy_free(p);
}

Test(include, missing_file_and_bad_entries)
{
	put("top.yaml", "version: 1\nname: x\ninclude:\n  - preset:npm\n  - nope.yaml\n");
	bad("top.yaml", "top.yaml:5:5", "include 'nope.yaml': ");
	bad("top.yaml", "top.yaml:5:5", "cannot open: No such file or directory");
	put("top.yaml", "version: 1\ninclude: base.yaml\n");
	bad("top.yaml", "top.yaml:2:10", "include: expected a list of files or presets");
	put("top.yaml", "version: 1\ninclude: [[a]]\n");
	bad("top.yaml", "top.yaml:2:11", "include: expected a string, got a list");
	put("top.yaml", "version: 1\ninclude: ['']\n");
	bad("top.yaml", "top.yaml:2:11", "include: empty name");
	/* an error inside an included file names that file */
	put("top.yaml", "version: 1\ninclude: [b.yaml]\n");
	put("b.yaml", "version: 1\nallow:\n  - domain: a..test\n");
	bad("top.yaml", "b.yaml:3:13", "");
}

Test(include, presets)
{
	char err[POLICY_ERR_LEN], names[256];
	struct policy *p;
	size_t len;

	put("top.yaml", "version: 1\ninclude: [preset:nosuch]\n");
	bad("top.yaml", "top.yaml:2:11", "include 'preset:nosuch': no such preset (there are: ");
	bad("top.yaml", "top.yaml:2:11", "npm");
	put("top.yaml", "version: 1\ninclude: [preset:../demo]\n");
	bad("top.yaml", "top.yaml:2:11", "no such preset");
	/* every name the issue lists is there, and loads */
	shipped_preset_names(names, sizeof(names));
	for (const char *const *n = (const char *const[]){ "github", "npm", "pypi", "crates",
							   "go", "rubygems", "maven", "debian",
							   "ubuntu", "docker-hub", "ghcr",
							   "github-actions",
							   "anthropic", "openai", NULL };
	     *n; n++) {
		char name[64], src[96];

		snprintf(name, sizeof(name), "preset:%s", *n);
		cr_assert_not_null(shipped_policy(name, &len), "%s", name);
		snprintf(src, sizeof(src), "version: 1\ninclude: [%s]\n", name);
		cr_assert_eq(policy_load_buffer("t.yaml", src, strlen(src), &p, err), 0, "%s", err);
		cr_assert_gt(p->n_allow, 0, "%s", name);
		policy_free(p);
	}
	/* a preset (and the built-in) has no directory: presets only */
	snprintf(names, sizeof(names), "version: 1\ninclude: [x.yaml]\n");
	cr_assert_eq(policy_load_buffer(POLICY_BUILTIN_NAME, names, strlen(names), &p, err),
		     -EINVAL);
	assert_has(err, "includes presets only");
}

/* The built-in default is a list of presets, the same rules as before. */
Test(include, builtin_is_presets)
{
	char err[POLICY_ERR_LEN];
	struct policy *p;
	size_t i;

	cr_assert_eq(policy_load_builtin(&p, err), 0, "%s", err);
	cr_assert_eq(p->n_allow, 16);
	for (i = 0; i < p->n_allow; i++)
		cr_assert(!strncmp(policy_rule_file(p, &p->allow[i]), "preset:", 7), "%s",
			  policy_rule_file(p, &p->allow[i]));
	cr_assert_str_eq(p->allow[0].domain, "github.com");
	cr_assert_str_eq(p->allow[15].domain, "repo.maven.apache.org");
	policy_free(p);
}

Test(include, conflicting_settings)
{
	put("top.yaml", "version: 1\nmode: audit\ninclude: [base.yaml]\n");
	put("base.yaml", "version: 1\nmode: enforce\n");
	bad("top.yaml", "base.yaml:2:7", "mode: enforce conflicts with audit at ");
	bad("top.yaml", "base.yaml:2:7", "top.yaml:2");
	/* the top's default counts: an include cannot open loopback or ping */
	put("top.yaml", "version: 1\ninclude: [base.yaml]\n");
	put("base.yaml", "version: 1\nloopback: deny\n");
	bad("top.yaml", "base.yaml:2:11", "loopback: deny conflicts with allow at ");
	put("base.yaml", "version: 1\nping: allow\n");
	bad("top.yaml", "base.yaml:2:7", "ping: allow conflicts");
	put("base.yaml", "version: 1\ndns:\n  ttl_max: 60\n");
	bad("top.yaml", "base.yaml:3:3", "dns: ");
	/* two includes that disagree: inbound rules, then inbound: any */
	put("top.yaml", "version: 1\ninclude: [a.yaml, b.yaml]\n");
	put("a.yaml", "version: 1\ninbound:\n  - cidr: 198.51.100.0/24\n");
	put("b.yaml", "version: 1\ninbound: any\n");
	bad("top.yaml", "b.yaml:2:10", "inbound: any conflicts with a list of rules at ");
	bad("top.yaml", "b.yaml:2:10", "a.yaml:3");
}

/* Repeating the top's settings is fine; inbound rules add up. */
Test(include, same_settings_and_inbound_rules)
{
	struct policy *p;

	put("top.yaml", "version: 1\nmode: audit\ninbound:\n  - ip: 192.0.2.1\n"
			"include: [base.yaml]\n");
	put("base.yaml", "version: 1\nmode: audit\nloopback: allow\ninbound:\n  - ip: 192.0.2.2\n");
	p = load("top.yaml");
	cr_assert_eq(p->mode, POLICY_AUDIT);
	cr_assert_eq(p->inbound_mode, INBOUND_RULES);
	cr_assert_eq(p->n_inbound, 2);
	policy_free(p);
}

Test(include, depth)
{
	char name[32], text[64];
	struct policy *p;
	int i;

	/* top + 8 levels: fine; a 9th: refused at the entry that goes deeper */
	for (i = 0; i < 9; i++) {
		snprintf(name, sizeof(name), "d%d.yaml", i);
		snprintf(text, sizeof(text), "version: 1\ninclude: [d%d.yaml]\n", i + 1);
		put(name, text);
	}
	put("d9.yaml", "version: 1\nallow:\n  - ip: 192.0.2.9\n");
	put("d8.yaml", "version: 1\n");
	p = load("d0.yaml");
	policy_free(p);
	put("d8.yaml", "version: 1\ninclude: [d9.yaml]\n");
	bad("d0.yaml", "d8.yaml:2:11", "includes nested deeper than 8 files");
}

/* The hash is of every file's bytes, in the order read. */
Test(include, hash_covers_included_bytes)
{
	static const char top[] = "version: 1\ninclude: [b.yaml]\n";
	unsigned char sha[LDNS_SHA256_DIGEST_LENGTH], before[32];
	ldns_sha256_CTX c;
	struct policy *p;

	put("top.yaml", top);
	put("b.yaml", "version: 1\n");
	p = load("top.yaml");
	ldns_sha256_init(&c);
	ldns_sha256_update(&c, (const uint8_t *)top, strlen(top));
	ldns_sha256_update(&c, (const uint8_t *)"version: 1\n", 11);
	ldns_sha256_final(sha, &c);
	cr_assert_arr_eq(p->sha256, sha, sizeof(sha));
	memcpy(before, p->sha256, sizeof(before));
	policy_free(p);
	put("b.yaml", "version: 1\n# changed\n");
	p = load("top.yaml");
	cr_assert_arr_neq(p->sha256, before, sizeof(before));
	policy_free(p);
	/* without includes: the file's own hash, as before */
	p = load("b.yaml");
	ldns_sha256((unsigned char *)"version: 1\n# changed\n", 21, sha);
	cr_assert_arr_eq(p->sha256, sha, sizeof(sha));
	policy_free(p);
}

static int changes;

static void on_changed(void *ctx, struct policy_entry *e)
{
	changes++;
}

/* The daemon's policy directory: a change in an included file is a new
 * version of the policy including it; a broken include keeps the old one. */
Test(include, daemon_reloads_on_include_change)
{
	char err[POLICY_ERR_LEN];
	struct policies *ps;
	struct policy_entry *e;
	struct policy *p;

	put("app.yaml", "version: 1\ninclude: [tiers/base.inc]\n");
	put("tiers/base.inc", "version: 1\nallow:\n  - ip: 192.0.2.1\n");
	cr_assert_eq(policies_open(dir, &ps), 0);
	policies_scan(ps, on_changed, NULL);
	e = policies_get(ps, "app", err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	cr_assert_eq(e->generation, 1);
	changes = 0;
	cr_assert_eq(policies_scan(ps, on_changed, NULL), 0, "nothing changed");
	put("tiers/base.inc", "version: 1\nallow:\n  - ip: 192.0.2.2\n");
	cr_assert_eq(policies_scan(ps, on_changed, NULL), 1);
	cr_assert_eq(e->generation, 2);
	cr_assert_eq(policies_parse(e, &p, err), 0, "%s", err);
	cr_assert_eq(p->n_allow, 1);
	cr_assert_eq(p->allow[0].addr[3], 2);
	policy_free(p);
	put("tiers/base.inc", "version: 1\nallow:\n  - ip: nope\n");
	cr_assert_eq(policies_scan(ps, on_changed, NULL), 0);
	cr_assert_eq(e->generation, 2);
	assert_has(e->state, "tiers/base.inc:3:9: ");
	policies_free(ps);
}
