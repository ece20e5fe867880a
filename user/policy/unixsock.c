// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unixsock.h"

/*
 * Sockets through which a command asks a daemon outside its cgroup to reach
 * the network for it: name resolution (the name leaves the machine though
 * weir refused it: avahi multicasts any name nss-mdns hands it, .local or
 * not), printing (CUPS connects to the device URI a client gives) and
 * container engines (a container of its choosing, in no cgroup of weir's). Both spellings: /var/run is a symlink to /run, and
 * the hooks see the path as written. The D-Bus system bus carries
 * systemd-resolved's resolve1 (and much else): denied too; docs/policy.md
 * says what that breaks and how to allow it back.
 */
const char *const unix_builtin_deny[] = {
	"/run/nscd/socket",
	"/var/run/nscd/socket",
	"/run/systemd/resolve/io.systemd.Resolve",
	"/var/run/systemd/resolve/io.systemd.Resolve",
	"/run/systemd/resolve/io.systemd.Resolve.Monitor",
	"/run/avahi-daemon/socket",
	"/var/run/avahi-daemon/socket",
	"/run/dbus/system_bus_socket",
	"/var/run/dbus/system_bus_socket",
	"/run/cups/cups.sock",
	"/var/run/cups/cups.sock",
	"/run/docker.sock",
	"/var/run/docker.sock",
	"/run/docker/*",
	"/var/run/docker/*",
	"/run/containerd/*",
	"/var/run/containerd/*",
	"/run/podman/podman.sock",
	"/var/run/podman/podman.sock",
	"/run/crio/crio.sock",
	"/var/run/crio/crio.sock",
	"/run/buildkit/*",
	"/var/run/buildkit/*",
	NULL,
};

bool unix_path_canonical(const char *s, size_t len)
{
	int comp = 0; /* the component so far: 0 empty, 1 ".", 2 "..", 3 a name */
	size_t i;

	if (!len || s[0] != '/')
		return false;
	for (i = 1; i < len && s[i]; i++) {
		if (s[i] == '/') {
			if (comp != 3)
				return false;
			comp = 0;
		} else if (s[i] == '.' && comp < 3) {
			comp++;
		} else {
			comp = 3;
		}
	}
	return comp == 3;
}

const char *unix_pattern_problem(const char *pattern)
{
	size_t len = strlen(pattern);

	if (pattern[0] != '/')
		return NULL; /* @abstract: one spelling */
	if (len && pattern[len - 1] == '*') {
		len--;
		if (len && pattern[len - 1] == '/')
			len--;
		if (!len)
			return NULL; /* a "/" and a star: every path */
	}
	if (!unix_path_canonical(pattern, len))
		return "not canonical (an empty, '.' or '..' component, or a trailing '/'): "
		       "the pattern would never match";
	return NULL;
}

int unix_key_of(const char *pattern, struct weir_unix_key *k)
{
	size_t len = strlen(pattern);
	bool prefix = len && pattern[len - 1] == '*';
	const char *name = pattern;
	size_t off = 0;

	memset(k, 0, sizeof(*k));
	if (prefix)
		len--;
	if (pattern[0] == '@') { /* abstract: a NUL, then the name */
		name++;
		len--;
		off = 1;
	} else if (pattern[0] != '/') {
		return -EINVAL;
	}
	if (off + len + !prefix > WEIR_UNIX_PATH_MAX)
		return -EINVAL;
	memcpy(k->path + off, name, len);
	/* Exact: up to and including the terminating NUL. */
	k->prefixlen = 32 + (__u32)(off + len + !prefix) * 8;
	return 0;
}

/* The entry for KEY in V[0..n), or NULL. */
static struct cunix *find(struct cunix *v, size_t n, const struct weir_unix_key *k)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].k.prefixlen == k->prefixlen && !memcmp(v[i].k.path, k->path, sizeof(k->path)))
			return &v[i];
	return NULL;
}

/* nscd, systemd-resolved and avahi: glibc, nss-resolve and nss-mdns try
 * them on lookups. */
static bool is_resolver(const char *pattern)
{
	return strstr(pattern, "/nscd/") || strstr(pattern, "/resolve/io.systemd.Resolve") ||
	       strstr(pattern, "/avahi-daemon/socket");
}

static int add(struct cunix *v, size_t *n, const char *pattern, __u8 verdict, __u8 reason,
	       __u32 rule, char err[UNIX_ERR_LEN])
{
	struct weir_unix_key k;
	struct cunix *c;

	if (unix_key_of(pattern, &k)) {
		snprintf(err, UNIX_ERR_LEN, "unix: '%s' is not a socket path or @name", pattern);
		return -EINVAL;
	}
	c = find(v, *n, &k);
	if (c && c->v.reason != WEIR_R_UNIX_BUILTIN && c->v.verdict == WEIR_V_DENY)
		return 0; /* allowed and denied by the policy: denied */
	if (!c) {
		if (*n == UNIX_PER_POLICY) {
			snprintf(err, UNIX_ERR_LEN, "unix: more than %d patterns (the built-in "
				 "list included)", UNIX_PER_POLICY);
			return -E2BIG;
		}
		c = &v[(*n)++];
	}
	c->k = k;
	memset(&c->v, 0, sizeof(c->v));
	c->v.verdict = verdict;
	c->v.reason = reason;
	c->v.rule = rule;
	/* A lookup through them goes around weir's resolver: refused in audit
	 * mode too, so that glibc falls back to DNS and the resolver records
	 * the name (a would-deny let through would hide it). */
	if (is_resolver(pattern) && verdict == WEIR_V_DENY) {
		c->v.flags = WEIR_UF_RESOLVER;
		c->v.hard = 1;
	} else if (is_resolver(pattern)) {
		c->v.flags = WEIR_UF_RESOLVER;
	}
	return 0;
}

/*
 * Where anything is denied, the spellings no pattern can judge are refused:
 * the slot's mark (include/weir/unix.h, WEIR_UF_MARK), which the BPF side
 * finds for a path its scan calls not canonical. Paths through /proc and
 * /dev/fd are not among them: podman and conmon reach their attach sockets
 * as /proc/self/fd/N/NAME (sun_path is 108 bytes); where the BPF LSM is
 * active the socket reached is judged by its bound path instead.
 */
static int add_mark(struct cunix *v, size_t *n, char err[UNIX_ERR_LEN])
{
	struct cunix *c;
	size_t i;
	bool deny = false;

	for (i = 0; i < *n; i++)
		deny |= v[i].v.verdict == WEIR_V_DENY;
	if (!deny)
		return 0;
	if (*n == UNIX_PER_POLICY) {
		snprintf(err, UNIX_ERR_LEN, "unix: more than %d patterns (the built-in list "
			 "included)", UNIX_PER_POLICY);
		return -E2BIG;
	}
	c = &v[(*n)++];
	memset(c, 0, sizeof(*c));
	c->k.prefixlen = 32; /* the slot alone */
	c->v.verdict = WEIR_V_DENY;
	c->v.reason = WEIR_R_UNIX_PATH;
	c->v.rule = WEIR_RULE_ID(WEIR_RK_UNIX_BUILTIN, 0);
	c->v.flags = WEIR_UF_MARK;
	return 0;
}

int unix_compile(const struct policy *p, struct cunix **out, size_t *n, char err[UNIX_ERR_LEN])
{
	struct cunix *v = calloc(UNIX_PER_POLICY, sizeof(*v));
	const struct policy_unix_rule *r;
	size_t i;
	int ret = 0;

	*out = NULL;
	*n = 0;
	if (!v)
		return -ENOMEM;
	for (i = 0; p->unix_builtin != UNIX_BUILTIN_OFF && !ret && unix_builtin_deny[i]; i++)
		ret = add(v, n, unix_builtin_deny[i], WEIR_V_DENY, WEIR_R_UNIX_BUILTIN,
			  WEIR_RULE_ID(WEIR_RK_UNIX_BUILTIN, i), err);
	for (i = 0; !ret && i < p->n_unix; i++) {
		r = &p->unix_rules[i];
		ret = add(v, n, r->pattern, r->deny ? WEIR_V_DENY : WEIR_V_ALLOW,
			  r->deny ? WEIR_R_DENY_RULE : WEIR_R_ALLOW_RULE,
			  WEIR_RULE_ID(WEIR_RK_UNIX, i), err);
	}
	if (!ret)
		ret = add_mark(v, n, err);
	if (ret) {
		free(v);
		*n = 0;
		return ret;
	}
	*out = v;
	return 0;
}

const char *unix_rule_pattern(const struct policy *p, __u32 rule)
{
	if (!p || WEIR_RULE_KIND(rule) != WEIR_RK_UNIX || WEIR_RULE_IDX(rule) >= p->n_unix)
		return NULL;
	return p->unix_rules[WEIR_RULE_IDX(rule)].pattern;
}

/* The pattern of entry C as written: the built-in list's or the policy's. */
static const char *entry_pattern(const struct policy *p, const struct cunix *c)
{
	__u32 idx = WEIR_RULE_IDX(c->v.rule);

	if (WEIR_RULE_KIND(c->v.rule) == WEIR_RK_UNIX_BUILTIN)
		return unix_builtin_deny[idx];
	return p->unix_rules[idx].pattern;
}

static bool is_builtin(const char *pattern)
{
	size_t i;

	for (i = 0; unix_builtin_deny[i]; i++)
		if (!strcmp(unix_builtin_deny[i], pattern))
			return true;
	return false;
}

/* "FILE:LINE: unix[N]: " of the policy's pattern N, as its events name it. */
static void print_rule_origin(FILE *f, const struct policy *p, size_t idx, const char *pfx)
{
	const struct policy_unix_rule *r = &p->unix_rules[idx];

	fputs(pfx, f);
	if (r->line)
		fprintf(f, "%s:%u: ", r->file && r->file <= p->n_files ? p->files[r->file - 1] :
									  p->source,
			r->line);
	fprintf(f, "unix[%zu]: ", idx);
}

/* One line per entry of V, in the order weir writes them. */
static void print_entries(FILE *f, const struct policy *p, const struct cunix *v, size_t n,
			  const char *pfx)
{
	const char *pattern, *verdict;
	bool builtin;
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i].v.flags & WEIR_UF_MARK)
			continue; /* said once, at the end */
		pattern = entry_pattern(p, &v[i]);
		builtin = WEIR_RULE_KIND(v[i].v.rule) == WEIR_RK_UNIX_BUILTIN;
		verdict = v[i].v.verdict == WEIR_V_DENY ? "deny" : "allow";
		if (builtin)
			fprintf(f, "%sunix-builtin: ", pfx);
		else
			print_rule_origin(f, p, WEIR_RULE_IDX(v[i].v.rule), pfx);
		fprintf(f, "%s %s", verdict, pattern);
		if (!builtin && p->unix_builtin != UNIX_BUILTIN_OFF && is_builtin(pattern))
			fputs(v[i].v.verdict == WEIR_V_DENY ? " (also in the built-in list)" :
							      " (in place of the built-in deny)",
			      f);
		if (v[i].v.hard)
			fputs(" (a resolver: refused in audit mode too)", f);
		fputc('\n', f);
	}
}

/* The policy's patterns that are in no entry: allowed and denied, denied. */
static void print_overruled(FILE *f, const struct policy *p, const struct cunix *v, size_t n,
			    const char *pfx)
{
	size_t i, j;

	for (i = 0; i < p->n_unix; i++) {
		for (j = 0; j < n; j++)
			if (WEIR_RULE_KIND(v[j].v.rule) == WEIR_RK_UNIX &&
			    WEIR_RULE_IDX(v[j].v.rule) == i)
				break;
		if (j < n)
			continue;
		print_rule_origin(f, p, i, pfx);
		fprintf(f, "%s %s (no effect: the policy denies it too)\n",
			p->unix_rules[i].deny ? "deny" : "allow", p->unix_rules[i].pattern);
	}
}

void unix_print_effective(FILE *f, const struct policy *p, const char *pfx)
{
	char err[UNIX_ERR_LEN];
	struct cunix *v;
	size_t i, n, nb = 0;
	bool mark = false;

	while (unix_builtin_deny[nb])
		nb++;
	if (p->unix_builtin != UNIX_BUILTIN_OFF)
		fprintf(f, "%sunix: built-in list on (%zu sockets: nscd, systemd-resolved, avahi, the "
			"D-Bus system bus, CUPS, docker, containerd, podman, CRI-O, BuildKit; both "
			"/run and /var/run)\n", pfx, nb);
	else
		fprintf(f, "%sunix: built-in list off\n", pfx);
	if (unix_compile(p, &v, &n, err)) {
		fprintf(f, "%sunix: %s\n", pfx, err);
		return;
	}
	print_entries(f, p, v, n, pfx);
	print_overruled(f, p, v, n, pfx);
	for (i = 0; i < n; i++)
		mark |= !!(v[i].v.flags & WEIR_UF_MARK);
	if (mark)
		fprintf(f, "%sunix: paths no pattern can judge are refused (relative; //, /./, "
			"/../)\n", pfx);
	else
		fprintf(f, "%sunix: nothing denied: every unix socket may be reached\n", pfx);
	free(v);
}

void unix_print_summary(FILE *f, const struct policy *p)
{
	unix_print_effective(f, p, "");
}
