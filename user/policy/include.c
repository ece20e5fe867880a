// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tiers: `include:` (docs/policy.md, "Tiers"). A policy names other files
 * (relative to itself) or built-in presets; their rules join its own, each
 * keeping the file and line it was written at, so that events and `weir
 * policy check` can say where a decision came from.
 *
 * The top file owns the settings (mode, loopback, ping, dns, inbound: any):
 * an included file may repeat them, never change them. A base tier that
 * could turn the policy including it to audit mode, or a preset that could
 * open loopback, would make every include a way around the top file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "sha256.h"
#include "shipped.h"
#include "weir/egress.h"

/* Levels of include below the top file: far above any real tree, and a
 * bound for a cycle spelled with different paths (a.yaml, ./x/../a.yaml). */
#define INCLUDE_MAX_DEPTH 8
#define PRESET_PREFIX "preset:"

struct tree {
	struct policy *top;
	policy_read_fn read;
	void *ctx;
	weir_sha256_ctx sha; /* SHA-256 of the files read, in order, and of the lists */
	/* The files being read, the top first: a name met again is a cycle. */
	const char *chain[INCLUDE_MAX_DEPTH + 1];
	char *err;
};

static bool is_preset(const char *name)
{
	return !strncmp(name, PRESET_PREFIX, strlen(PRESET_PREFIX));
}

/* "./a//b.yaml" -> "a/b.yaml": one spelling per path, for cycles and repeats. */
static void normalize(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if ((r == s || r[-1] == '/') && r[0] == '.' && r[1] == '/') {
			r += 2;
		} else if (*r == '/' && r[1] == '/') {
			r++;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static int fail_at(struct tree *t, const char *file, unsigned int line, unsigned int col,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail_at(struct tree *t, const char *file, unsigned int line, unsigned int col,
		   const char *fmt, ...)
{
	va_list ap;
	int off;

	off = snprintf(t->err, POLICY_ERR_LEN, "%s:%u:%u: ", file, line, col);
	if (off < 0 || off >= POLICY_ERR_LEN)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(t->err + off, POLICY_ERR_LEN - (size_t)off, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * The name of include entry E of file FROM: "preset:NAME", or the path
 * joined to FROM's directory. A preset or the built-in policy has no
 * directory: it includes presets only.
 */
static int resolve(struct tree *t, const char *from, const struct policy_include *e, char **out)
{
	const char *slash = strrchr(from, '/');
	int n;

	*out = NULL;
	if (is_preset(e->name)) {
		*out = strdup(e->name);
	} else if (is_preset(from) || !strcmp(from, POLICY_BUILTIN_NAME)) {
		return fail_at(t, from, e->line, e->col,
			       "include '%s': a preset or the built-in policy includes presets only",
			       e->name);
	} else if (e->name[0] == '/' || !slash) {
		*out = strdup(e->name);
	} else {
		n = asprintf(out, "%.*s/%s", (int)(slash - from), from, e->name);
		if (n < 0)
			*out = NULL;
	}
	if (!*out)
		return -ENOMEM;
	normalize(*out);
	return 0;
}

static int read_preset(struct tree *t, const char *from, const struct policy_include *e,
		       const char *name, char **bufp, size_t *lenp)
{
	char list[256];
	const char *text;
	size_t len;

	text = shipped_policy(name, &len);
	if (!text || strspn(name + strlen(PRESET_PREFIX), "abcdefghijklmnopqrstuvwxyz0123456789-") !=
			     strlen(name + strlen(PRESET_PREFIX))) {
		shipped_preset_names(list, sizeof(list));
		return fail_at(t, from, e->line, e->col, "include '%s': no such preset (there are: %s)",
			       e->name, list);
	}
	*bufp = malloc(len ? len : 1);
	if (!*bufp)
		return -ENOMEM;
	memcpy(*bufp, text, len);
	*lenp = len;
	return 0;
}

/* The bytes of NAME; errors at the include entry that named it. */
static int read_one(struct tree *t, const char *from, const struct policy_include *e,
		    const char *name, char **bufp, size_t *lenp)
{
	char msg[POLICY_ERR_LEN];
	int ret;

	if (is_preset(name))
		return read_preset(t, from, e, name, bufp, lenp);
	/* -EINVAL: the policy is bad (its include names what is not there),
	 * not missing itself (the daemon keeps a deleted policy's version). */
	ret = t->read(t->ctx, name, bufp, lenp, msg);
	if (ret && ret != -ENOMEM)
		return fail_at(t, from, e->line, e->col, "include '%s': %s", e->name, msg);
	return ret;
}

static bool seen(const struct tree *t, const char *name)
{
	size_t i;

	if (!strcmp(t->chain[0], name))
		return true;
	for (i = 0; i < t->top->n_files; i++)
		if (!strcmp(t->top->files[i], name))
			return true;
	return false;
}

/* "a.yaml -> b.yaml -> a.yaml" */
static int cycle_fail(struct tree *t, const char *from, const struct policy_include *e,
		      int depth, const char *name)
{
	char path[POLICY_ERR_LEN / 2] = "";
	size_t off = 0;
	int i;

	for (i = 0; i <= depth && off < sizeof(path); i++)
		off += (size_t)snprintf(path + off, sizeof(path) - off, "%s -> ", t->chain[i]);
	if (off < sizeof(path))
		snprintf(path + off, sizeof(path) - off, "%s", name);
	return fail_at(t, from, e->line, e->col, "include '%s': an include cycle: %s", e->name,
		       path);
}

static int check_entry(struct tree *t, const char *from, const struct policy_include *e,
		       int depth, const char *name)
{
	int i;

	for (i = 0; i <= depth; i++)
		if (!strcmp(t->chain[i], name))
			return cycle_fail(t, from, e, depth, name);
	if (depth + 1 > INCLUDE_MAX_DEPTH)
		return fail_at(t, from, e->line, e->col,
			       "include '%s': includes nested deeper than %d files", e->name,
			       INCLUDE_MAX_DEPTH);
	return 0;
}

static bool same_dns(const struct policy_dns *a, const struct policy_dns *b)
{
	size_t i;

	if (a->static_mode != b->static_mode || a->ttl_min != b->ttl_min ||
	    a->ttl_max != b->ttl_max || a->max_addresses != b->max_addresses ||
	    a->n_upstream != b->n_upstream)
		return false;
	for (i = 0; i < a->n_upstream; i++)
		if (strcmp(a->upstream[i], b->upstream[i]))
			return false;
	return true;
}

/* Setting I of SUB against the top's: is it the same? Its two values. */
static bool same_setting(const struct policy *top, const struct policy *sub, int i,
			 const char **mine, const char **theirs)
{
	static const char *const inb[] = { "loopback peers only", "any", "a list of rules" };

	switch (i) {
	case SET_MODE:
		*mine = sub->mode == POLICY_AUDIT ? "audit" : "enforce";
		*theirs = top->mode == POLICY_AUDIT ? "audit" : "enforce";
		return sub->mode == top->mode;
	case SET_LOOPBACK:
		*mine = sub->loopback_allow ? "allow" : "deny";
		*theirs = top->loopback_allow ? "allow" : "deny";
		return sub->loopback_allow == top->loopback_allow;
	case SET_PING:
		*mine = sub->ping_allow ? "allow" : "deny";
		*theirs = top->ping_allow ? "allow" : "deny";
		return sub->ping_allow == top->ping_allow;
	case SET_DNS:
		*mine = "this dns: section";
		*theirs = "another";
		return same_dns(&sub->dns, &top->dns);
	default: /* rules add up; `any` and rules do not mix */
		*mine = inb[sub->inbound_mode];
		*theirs = inb[top->inbound_mode];
		if (sub->inbound_mode == INBOUND_ANY)
			return top->inbound_mode == INBOUND_ANY;
		return top->inbound_mode != INBOUND_ANY;
	}
}

static int check_settings(struct tree *t, const char *name, const struct policy *sub)
{
	static const char *const keys[SET_N] = { "mode", "loopback", "ping", "dns", "inbound" };
	const struct policy_at *at, *top_at;
	const char *mine, *theirs;
	char where[POLICY_ERR_LEN / 2];
	int i;

	for (i = 0; i < SET_N; i++) {
		at = &sub->set_at[i];
		if (!at->line || same_setting(t->top, sub, i, &mine, &theirs))
			continue;
		top_at = &t->top->set_at[i];
		if (top_at->line)
			snprintf(where, sizeof(where), "%s:%u", top_at->file ?
				 t->top->files[top_at->file - 1] : t->top->source, top_at->line);
		else
			snprintf(where, sizeof(where), "%s (the default)", t->top->source);
		return fail_at(t, name, at->line, at->col,
			       "%s: %s conflicts with %s at %s: top-level settings come from the "
			       "top file, an included file may only repeat them",
			       keys[i], mine, theirs, where);
	}
	return 0;
}

/* Move LIST's N rules of SUB to the end of the top's, marked as file FILE. */
static int move_rules(struct policy_rule **to, size_t *n_to, struct policy_rule **from,
		      size_t *n_from, unsigned int file)
{
	struct policy_rule *v;
	size_t i;

	if (!*n_from)
		return 0;
	v = realloc(*to, (*n_to + *n_from) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < *n_from; i++) {
		v[*n_to + i] = (*from)[i];
		v[*n_to + i].file = file;
	}
	*to = v;
	*n_to += *n_from;
	free(*from); /* the strings now belong to the top */
	*from = NULL;
	*n_from = 0;
	return 0;
}

/* The unix: patterns of SUB after the top's; its builtin: where the top
 * said nothing. */
static int move_unix(struct policy *top, struct policy *sub, unsigned int file)
{
	struct policy_unix_rule *v;
	size_t i;

	if (top->unix_builtin == UNIX_BUILTIN_UNSET)
		top->unix_builtin = sub->unix_builtin;
	if (!sub->n_unix)
		return 0;
	v = realloc(top->unix_rules, (top->n_unix + sub->n_unix) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < sub->n_unix; i++) {
		v[top->n_unix + i] = sub->unix_rules[i];
		v[top->n_unix + i].file = file;
	}
	top->unix_rules = v;
	top->n_unix += sub->n_unix;
	free(sub->unix_rules);
	sub->unix_rules = NULL;
	sub->n_unix = 0;
	return 0;
}

static int merge(struct tree *t, struct policy *sub, unsigned int file)
{
	struct policy *top = t->top;
	int ret;

	if (sub->inbound_mode == INBOUND_RULES && top->inbound_mode == INBOUND_DEFAULT) {
		top->inbound_mode = INBOUND_RULES;
		top->set_at[SET_INBOUND] = sub->set_at[SET_INBOUND];
		top->set_at[SET_INBOUND].file = file;
	}
	ret = move_rules(&top->allow, &top->n_allow, &sub->allow, &sub->n_allow, file);
	if (!ret)
		ret = move_rules(&top->deny, &top->n_deny, &sub->deny, &sub->n_deny, file);
	if (!ret)
		ret = move_rules(&top->inbound, &top->n_inbound, &sub->inbound, &sub->n_inbound,
				 file);
	return ret ?: move_unix(top, sub, file);
}

static int add_file(struct policy *top, char *name)
{
	char **v = realloc(top->files, (top->n_files + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	top->files = v;
	top->files[top->n_files++] = name;
	return 0;
}

static int expand(struct tree *t, const struct policy *f, int depth);

/* Entry E of file FROM (at DEPTH): read, check, merge, then its own includes. */
static int include_one(struct tree *t, const char *from, const struct policy_include *e,
		       int depth)
{
	struct policy *sub = NULL;
	char *name, *buf = NULL;
	size_t len = 0;
	int ret;

	ret = resolve(t, from, e, &name);
	if (!ret)
		ret = check_entry(t, from, e, depth, name);
	if (ret || seen(t, name)) { /* met before: its rules are in already */
		free(name);
		return ret;
	}
	ret = add_file(t->top, name);
	if (ret) {
		free(name);
		return ret;
	}
	ret = read_one(t, from, e, name, &buf, &len);
	if (!ret) {
		weir_sha256_update(&t->sha, buf, len);
		ret = policy_load_one(name, buf, len, &sub, t->err);
	}
	free(buf);
	if (!ret)
		ret = check_settings(t, name, sub);
	if (!ret)
		ret = merge(t, sub, (unsigned int)t->top->n_files);
	t->chain[depth + 1] = name;
	if (!ret)
		ret = expand(t, sub, depth + 1);
	policy_free(sub);
	return ret;
}

static int expand(struct tree *t, const struct policy *f, int depth)
{
	size_t i;
	int ret;

	for (i = 0; i < f->n_includes; i++) {
		ret = include_one(t, t->chain[depth], &f->includes[i], depth);
		if (ret == -ENOMEM)
			snprintf(t->err, POLICY_ERR_LEN, "%s: out of memory", t->chain[depth]);
		if (ret)
			return ret;
	}
	return 0;
}

/* The cidr_list files of the tree: each list's path and the hash of its
 * bytes, in rule order, after the policy files' bytes. A list changed is a
 * new version of the policy (the daemon reloads it; run-start says so). */
static void hash_lists(weir_sha256_ctx *sha, const struct policy_rule *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct netlist_file *f = r[i].list ? &r[i].list->file : NULL;

		if (!f || !f->path)
			continue;
		weir_sha256_update(sha, "cidr_list\0", 10);
		weir_sha256_update(sha, f->path, strlen(f->path) + 1);
		weir_sha256_update(sha, f->sha256, sizeof(f->sha256));
	}
}

/* The bytes alone (a policy that did not load: the daemon still tells a
 * changed file from the same one). OpenSSL's SHA-256 uses the CPU's SHA
 * extensions (docs/performance.md: ldns' portable code took 220 ms for 17 MB). */
static void bytes_sha256(const char *buf, size_t len, unsigned char sha[32])
{
	weir_sha256(buf, len, sha);
}

static int read_path(void *ctx, const char *path, char **bufp, size_t *lenp,
		     char err[POLICY_ERR_LEN])
{
	return policy_read_file(path, bufp, lenp, err);
}

int policy_load_tree(const char *source, const char *buf, size_t len, policy_read_fn read,
		     void *ctx, unsigned char sha[32], struct policy **out,
		     char err[POLICY_ERR_LEN])
{
	struct tree t = { .read = read ?: read_path, .ctx = ctx, .err = err };
	char *top_name;
	int ret;

	*out = NULL;
	ret = policy_load_one(source, buf, len, &t.top, err);
	if (ret) {
		if (sha)
			bytes_sha256(buf, len, sha);
		return ret;
	}
	top_name = strdup(source);
	if (!top_name) {
		policy_free(t.top);
		if (sha)
			bytes_sha256(buf, len, sha);
		snprintf(err, POLICY_ERR_LEN, "%s: out of memory", source);
		return -ENOMEM;
	}
	normalize(top_name);
	t.chain[0] = top_name;
	weir_sha256_init(&t.sha);
	weir_sha256_update(&t.sha, buf, len);
	ret = expand(&t, t.top, 0);
	hash_lists(&t.sha, t.top->allow, t.top->n_allow);
	hash_lists(&t.sha, t.top->deny, t.top->n_deny);
	hash_lists(&t.sha, t.top->inbound, t.top->n_inbound);
	weir_sha256_final(&t.sha, t.top->sha256);
	if (sha)
		memcpy(sha, t.top->sha256, sizeof(t.top->sha256));
	free(top_name);
	if (ret) {
		policy_free(t.top);
		return ret;
	}
	*out = t.top;
	return 0;
}

int policy_load_buffer(const char *source, const char *buf, size_t len, struct policy **out,
		       char err[POLICY_ERR_LEN])
{
	return policy_load_tree(source, buf, len, NULL, NULL, NULL, out, err);
}

int policy_load_file(const char *path, struct policy **out, char err[POLICY_ERR_LEN])
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	ret = policy_read_file(path, &buf, &len, err);
	if (ret)
		return ret;
	ret = policy_load_buffer(path, buf, len, out, err);
	free(buf);
	return ret;
}

int policy_load_builtin(struct policy **out, char err[POLICY_ERR_LEN])
{
	size_t len;
	const char *text = shipped_policy(POLICY_BUILTIN, &len);

	return policy_load_buffer(POLICY_BUILTIN_NAME, text, len, out, err);
}

const char *policy_rule_file(const struct policy *p, const struct policy_rule *r)
{
	return r->file && r->file <= p->n_files ? p->files[r->file - 1] : p->source;
}

void policy_rule_origin(const struct policy *p, __u32 rule_id, char *buf, size_t len)
{
	const struct policy_rule *rules = NULL;
	__u32 idx = WEIR_RULE_IDX(rule_id);
	size_t n = 0;

	buf[0] = '\0';
	if (!p)
		return;
	switch (WEIR_RULE_KIND(rule_id)) {
	case WEIR_RK_ALLOW:
		rules = p->allow, n = p->n_allow;
		break;
	case WEIR_RK_DENY:
		rules = p->deny, n = p->n_deny;
		break;
	case WEIR_RK_INBOUND:
		rules = p->inbound, n = p->n_inbound;
		break;
	case WEIR_RK_UNIX:
		if (idx < p->n_unix && p->unix_rules[idx].line)
			snprintf(buf, len, "%s:%u",
				 p->unix_rules[idx].file && p->unix_rules[idx].file <= p->n_files ?
					 p->files[p->unix_rules[idx].file - 1] :
					 p->source,
				 p->unix_rules[idx].line);
		return;
	default:
		return;
	}
	if (idx < n && rules[idx].line)
		snprintf(buf, len, "%s:%u", policy_rule_file(p, &rules[idx]), rules[idx].line);
}
