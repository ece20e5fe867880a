// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The unix: section: what a policy may write, the errors for what it may
 * not, and the trie entries it compiles to (the built-in list, overrides,
 * prefixes, abstract names).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>

#include "policy.h"
#include "unixsock.h"

static struct policy *load(const char *yaml)
{
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = NULL;

	cr_assert_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, err), 0, "%s", err);
	return p;
}

static void bad(const char *yaml, const char *what)
{
	char err[POLICY_ERR_LEN] = "";
	struct policy *p = NULL;

	cr_assert_eq(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, err), -EINVAL,
		     "accepted:\n%s", yaml);
	cr_assert(strstr(err, what), "'%s' does not contain '%s'", err, what);
	cr_assert(!strncmp(err, "t.yaml:", 7), "no FILE:LINE: '%s'", err);
}

/* The entry whose key is PATTERN's, or NULL. */
static const struct cunix *entry(const struct cunix *v, size_t n, const char *pattern)
{
	struct weir_unix_key k;
	size_t i;

	cr_assert_eq(unix_key_of(pattern, &k), 0, "%s", pattern);
	for (i = 0; i < n; i++)
		if (v[i].k.prefixlen == k.prefixlen && !memcmp(v[i].k.path, k.path, sizeof(k.path)))
			return &v[i];
	return NULL;
}

Test(unixsock, keys)
{
	struct weir_unix_key k;

	cr_assert_eq(unix_key_of("/run/nscd/socket", &k), 0);
	cr_assert_eq(k.prefixlen, 32 + 17 * 8); /* 16 bytes and the NUL */
	cr_assert_str_eq((char *)k.path, "/run/nscd/socket");
	cr_assert_eq(unix_key_of("/run/containerd/*", &k), 0);
	cr_assert_eq(k.prefixlen, 32 + 16 * 8); /* "/run/containerd/", no NUL */
	cr_assert_eq(unix_key_of("@name", &k), 0);
	cr_assert_eq(k.path[0], 0);
	cr_assert_eq(memcmp(k.path + 1, "name", 5), 0);
	cr_assert_eq(k.prefixlen, 32 + 6 * 8); /* NUL, name, NUL */
	cr_assert_eq(unix_key_of("relative", &k), -EINVAL);
}

Test(unixsock, builtin_list_by_default)
{
	struct policy *p = load("version: 1\n");
	struct cunix *v;
	size_t n;
	char err[UNIX_ERR_LEN];
	const struct cunix *c;

	cr_assert_eq(unix_compile(p, &v, &n, err), 0, "%s", err);
	c = entry(v, n, "/var/run/nscd/socket");
	cr_assert_not_null(c);
	cr_assert_eq(c->v.verdict, WEIR_V_DENY);
	cr_assert_eq(c->v.reason, WEIR_R_UNIX_BUILTIN);
	cr_assert(c->v.flags & WEIR_UF_RESOLVER);
	cr_assert_eq(c->v.hard, 1); /* refused in audit mode too */
	c = entry(v, n, "/var/run/docker.sock");
	cr_assert_not_null(c);
	cr_assert_not(c->v.flags & WEIR_UF_RESOLVER);
	cr_assert_eq(c->v.hard, 0);
	cr_assert_not_null(entry(v, n, "/run/containerd/*"));
	cr_assert_not_null(entry(v, n, "/run/dbus/system_bus_socket"));
	free(v);
	policy_free(p);
}

Test(unixsock, policy_overrides_builtin_and_deny_wins)
{
	struct policy *p = load("version: 1\n"
				"unix:\n"
				"  deny: [/srv/proxy.sock, \"@abs*\", /run/containerd/*]\n"
				"  allow: [/run/docker.sock, /run/containerd/public.sock]\n");
	struct cunix *v;
	size_t n;
	char err[UNIX_ERR_LEN];
	const struct cunix *c;

	cr_assert_eq(p->n_unix, 5);
	cr_assert_eq(unix_compile(p, &v, &n, err), 0, "%s", err);
	c = entry(v, n, "/run/docker.sock");
	cr_assert_eq(c->v.verdict, WEIR_V_ALLOW);
	cr_assert_eq(WEIR_RULE_KIND(c->v.rule), WEIR_RK_UNIX);
	c = entry(v, n, "/run/containerd/*");
	cr_assert_eq(c->v.verdict, WEIR_V_DENY);
	cr_assert_eq(c->v.reason, WEIR_R_DENY_RULE); /* the policy's now */
	cr_assert_eq(entry(v, n, "/run/containerd/public.sock")->v.verdict, WEIR_V_ALLOW);
	cr_assert_eq(entry(v, n, "@abs*")->v.verdict, WEIR_V_DENY);
	cr_assert_str_eq(unix_rule_pattern(p, entry(v, n, "/srv/proxy.sock")->v.rule),
			 "/srv/proxy.sock");
	free(v);
	policy_free(p);
}

/* The slot's mark: {prefixlen 32, no path}, or NULL. */
static const struct cunix *mark(const struct cunix *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].k.prefixlen == 32)
			return &v[i];
	return NULL;
}

Test(unixsock, builtin_off)
{
	struct policy *p = load("version: 1\nunix:\n  builtin: off\n  deny: [/x.sock]\n");
	struct cunix *v;
	size_t n;
	char err[UNIX_ERR_LEN];

	cr_assert_eq(unix_compile(p, &v, &n, err), 0, "%s", err);
	cr_assert_null(entry(v, n, "/run/nscd/socket"));
	cr_assert_not_null(entry(v, n, "/x.sock"));
	cr_assert_not_null(mark(v, n)); /* something is denied */
	free(v);
	policy_free(p);
}

Test(unixsock, canonical_paths)
{
	cr_assert(unix_path_canonical("/run/docker.sock", 16));
	cr_assert(unix_path_canonical("/run/.hidden/..x/...", 20));
	cr_assert(unix_path_canonical("/a", 2));
	cr_assert_not(unix_path_canonical("run/docker.sock", 15));
	cr_assert_not(unix_path_canonical("//run/docker.sock", 17));
	cr_assert_not(unix_path_canonical("/run//docker.sock", 17));
	cr_assert_not(unix_path_canonical("/run/./docker.sock", 18));
	cr_assert_not(unix_path_canonical("/tmp/../run/docker.sock", 23));
	cr_assert_not(unix_path_canonical("/run/docker.sock/", 17));
	cr_assert_not(unix_path_canonical("/run/.", 6));
	cr_assert_not(unix_path_canonical("/run/..", 7));
	cr_assert_not(unix_path_canonical("/", 1));
	cr_assert_not(unix_path_canonical("", 0));
	/* Up to the length given, or the first NUL (as the kernel reads it). */
	cr_assert(unix_path_canonical("/run/x\0/../y", 12));
	cr_assert(unix_path_canonical("/run/x/../y", 6));
}

/* Where anything is denied, what no pattern can judge is refused: the mark
 * (the spellings the BPF side's scan finds). */
Test(unixsock, mark)
{
	struct policy *p = load("version: 1\nunix:\n  allow: [/run/docker.sock]\n");
	struct cunix *v;
	size_t n;
	char err[UNIX_ERR_LEN];
	const struct cunix *c;

	cr_assert_eq(unix_compile(p, &v, &n, err), 0, "%s", err);
	c = mark(v, n);
	cr_assert_not_null(c);
	cr_assert_eq(c->v.verdict, WEIR_V_DENY);
	cr_assert_eq(c->v.reason, WEIR_R_UNIX_PATH);
	cr_assert_eq(c->v.flags, WEIR_UF_MARK);
	/* podman reaches its attach sockets as /proc/self/fd/N/attach: not refused */
	cr_assert_null(entry(v, n, "/proc/*"));
	free(v);
	policy_free(p);

	/* Nothing denied: no mark, relative paths and the rest go through. */
	p = load("version: 1\nunix:\n  builtin: off\n  allow: [/run/docker.sock]\n");
	cr_assert_eq(unix_compile(p, &v, &n, err), 0, "%s", err);
	cr_assert_null(mark(v, n));
	free(v);
	policy_free(p);
}

Test(unixsock, errors)
{
	bad("version: 1\nunix:\n  deny: [nscd/socket]\n", "want an absolute path");
	bad("version: 1\nunix:\n  deny: [/run/*/bus]\n", "'*' only at the end");
	bad("version: 1\nunix:\n  deny: [/a.sock]\n  allow: [/a.sock]\n", "listed twice");
	bad("version: 1\nunix:\n  builtin: maybe\n", "unix.builtin: expected 'on' or 'off'");
	bad("version: 1\nunix:\n  denny: [/a]\n", "unknown key 'denny'");
	bad("version: 1\nunix: [/a]\n", "unix: expected a mapping");
	/* Patterns that could never match what they spell. */
	bad("version: 1\nunix:\n  deny: [//run/x.sock]\n", "not canonical");
	bad("version: 1\nunix:\n  deny: [/run/../x.sock]\n", "not canonical");
	bad("version: 1\nunix:\n  allow: [/run/./x/*]\n", "not canonical");
	bad("version: 1\nunix:\n  deny: [/run/x/]\n", "not canonical");
}

/* weir policy check's summary says what the unix: section does. */
Test(unixsock, summary)
{
	struct policy *p = load("version: 1\n"
				"unix:\n"
				"  deny: [/srv/proxy.sock]\n"
				"  allow: [/run/docker.sock]\n");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	unix_print_summary(f, p);
	fclose(f);
	cr_assert(strstr(out, "unix: built-in list on (23 sockets"), "%s", out);
	cr_assert(strstr(out, "t.yaml:3: unix[0]: deny /srv/proxy.sock\n"), "%s", out);
	/* In the built-in list's place, after the entries before it. */
	cr_assert(strstr(out, "unix-builtin: deny /var/run/cups/cups.sock\n"
			      "t.yaml:4: unix[1]: allow /run/docker.sock (in place of the "
			      "built-in deny)\n"
			      "unix-builtin: deny /var/run/docker.sock\n"),
		  "%s", out);
	cr_assert(strstr(out, "unix-builtin: deny /run/nscd/socket (a resolver: refused in audit "
			      "mode too)\n"),
		  "%s", out);
	cr_assert(strstr(out, "paths no pattern can judge are refused"), "%s", out);
	free(out);
	policy_free(p);
	p = load("version: 1\nunix:\n  builtin: off\n");
	out = NULL;
	f = open_memstream(&out, &len);
	unix_print_summary(f, p);
	fclose(f);
	cr_assert_str_eq(out, "unix: built-in list off\n"
			      "unix: nothing denied: every unix socket may be reached\n");
	free(out);
	policy_free(p);
}

/* weir policy show's lines: the same, each behind the prefix. */
Test(unixsock, effective_prefixed)
{
	struct policy *p = load("version: 1\nunix:\n  builtin: off\n  deny: [\"@x*\"]\n");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	unix_print_effective(f, p, "# ");
	fclose(f);
	cr_assert_str_eq(out, "# unix: built-in list off\n"
			      "# t.yaml:4: unix[0]: deny @x*\n"
			      "# unix: paths no pattern can judge are refused (relative; //, /./, "
			      "/../)\n");
	free(out);
	policy_free(p);
}

/* Every built-in entry allowed back: nothing is denied, nothing refused. */
Test(unixsock, effective_all_allowed)
{
	char yaml[4096] = "version: 1\nunix:\n  allow:\n";
	char *out = NULL;
	struct policy *p;
	size_t i, len = 0;
	FILE *f;

	for (i = 0; unix_builtin_deny[i]; i++)
		snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml), "    - \"%s\"\n",
			 unix_builtin_deny[i]);
	p = load(yaml);
	f = open_memstream(&out, &len);
	unix_print_effective(f, p, "");
	fclose(f);
	cr_assert_null(strstr(out, "unix-builtin: deny"), "%s", out);
	cr_assert(strstr(out, "unix: nothing denied: every unix socket may be reached\n"), "%s",
		  out);
	free(out);
	policy_free(p);
}
