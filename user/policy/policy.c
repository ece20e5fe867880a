// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Policy files: YAML in, struct policy out (docs/policy.md is the reference).
 *
 * libyaml's document API builds the node tree; the walk below checks it
 * against the format and reports the first problem as FILE:LINE:COL, the
 * form editors and CI logs know how to jump to. The values inside a rule
 * (addresses, ports, names) are checked by the parsers in rule.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <yaml.h>

#include "dns.h"
#include "fastseq.h"
#include "policy.h"
#include "shipped.h"
#include "unixsock.h"
#include "weir/egress.h"

/* Rule indexes have 24 bits in WEIR_RULE_ID(). */
#define POLICY_MAX_RULES 0xffffffu


static const char *const top_keys[] = { "version", "name", "mode", "loopback", "allow", "deny",
					"dns", "ping", "inbound", "include", "unix", NULL };
static const char *const unix_keys[] = { "deny", "allow", "builtin", NULL };
static const char *const dns_keys[] = { "upstream", "ttl_min", "ttl_max", "max_addresses",
					"static", NULL };
static const char *const rule_keys[] = { "domain", "cidr", "ip", "cidr_list", "ports", "proto",
					 "upload_budget", NULL };
static const char *const target_keys[] = { "domain", "cidr", "ip", "cidr_list", NULL };

struct loader {
	const char *source;
	yaml_document_t *doc;
	struct policy *p;
	char *err;
	char where[48]; /* "allow[2]: " while inside a rule, else "" */
	struct fastseq *fast; /* big inline lists read already (fastseq.h) */
};

static int fail(struct loader *ld, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Report a problem at node N: "FILE:LINE:COL: [allow[2]: ]what". */
static int fail(struct loader *ld, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	int off;

	off = snprintf(ld->err, POLICY_ERR_LEN, "%s:%zu:%zu: %s", ld->source,
		       n->start_mark.line + 1, n->start_mark.column + 1, ld->where);
	if (off < 0 || off >= POLICY_ERR_LEN)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(ld->err + off, POLICY_ERR_LEN - (size_t)off, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int msgf(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* For the building blocks' convention: a message without a location. */
static int msgf(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int nomem(char *err, const char *source)
{
	snprintf(err, POLICY_ERR_LEN, "%s: out of memory", source);
	return -ENOMEM;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a string";
	}
}

static yaml_node_t *node(struct loader *ld, int index)
{
	return yaml_document_get_node(ld->doc, index);
}

/* `key:` with nothing after it, or ~ / null. */
static bool is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = (const char *)n->data.scalar.value;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* Values are quoted back in messages, which must stay on one line. */
static bool has_ctrl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * The text of scalar N. A double-quoted YAML string can hold "\0" or "\n";
 * the first would cut the value short when used as a C string, the second
 * would break our one-line messages, so both are refused here.
 */
static int scalar_text(struct loader *ld, yaml_node_t *n, const char *what, const char **out)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE)
		return fail(ld, n, "%s: expected a string, got %s", what, node_kind(n));
	s = (const char *)n->data.scalar.value;
	if (strlen(s) != n->data.scalar.length)
		return fail(ld, n, "%s: value contains a NUL character", what);
	if (has_ctrl(s))
		return fail(ld, n, "%s: value contains a control character", what);
	*out = s;
	return 0;
}

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static void join_list(const char *const *list, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (; *list && off < len; list++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", *list);
}

static const char *key_text(struct loader *ld, const yaml_node_pair_t *pair)
{
	const yaml_node_t *k = node(ld, pair->key);

	return k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : NULL;
}

/* The value of KEY in mapping MAP (its first occurrence), or NULL. */
static yaml_node_t *find_value(struct loader *ld, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *pair;
	const char *k;

	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		k = key_text(ld, pair);
		if (k && !strcmp(k, key))
			return node(ld, pair->value);
	}
	return NULL;
}

static int check_key(struct loader *ld, yaml_node_t *map, yaml_node_pair_t *pair,
		     const char *const *keys)
{
	yaml_node_t *k = node(ld, pair->key), *first;
	yaml_node_pair_t *prev;
	char expected[128];
	const char *s;
	int err;

	if (k->type != YAML_SCALAR_NODE)
		return fail(ld, k, "a key must be a string, got %s", node_kind(k));
	err = scalar_text(ld, k, "key", &s);
	if (err)
		return err;
	if (!in_list(keys, s)) {
		join_list(keys, expected, sizeof(expected));
		return fail(ld, k, "unknown key '%s' (expected: %s)", s, expected);
	}
	for (prev = map->data.mapping.pairs.start; prev < pair; prev++) {
		if (strcmp(key_text(ld, prev), s))
			continue;
		first = node(ld, prev->key);
		return fail(ld, k, "duplicate key '%s' (first at line %zu)", s,
			    first->start_mark.line + 1);
	}
	return 0;
}

/* Every key of MAP is one of KEYS (NULL-terminated) and appears once. */
static int check_keys(struct loader *ld, yaml_node_t *map, const char *const *keys)
{
	yaml_node_pair_t *pair;
	int err;

	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		err = check_key(ld, map, pair, keys);
		if (err)
			return err;
	}
	return 0;
}

/*
 * A single address, as a full-length prefix. It goes through parse_cidr so
 * that IPv4-mapped addresses are normalised in one place.
 */
int parse_ip(const char *s, struct policy_rule *r, char *msg, size_t len)
{
	char cidr[INET6_ADDRSTRLEN + 8];
	unsigned char tmp[16];
	int bits;

	if (inet_pton(AF_INET, s, tmp) == 1)
		bits = 32;
	else if (inet_pton(AF_INET6, s, tmp) == 1)
		bits = 128;
	else if (strchr(s, '/'))
		return msgf(msg, len, "ip '%s' is a prefix, not an address; write it as cidr: %s",
			    s, s);
	else
		return msgf(msg, len, "ip '%s' is not an IPv4 or IPv6 address", s);
	snprintf(cidr, sizeof(cidr), "%s/%d", s, bits);
	return parse_cidr(cidr, r, msg, len);
}

/* The protocols of a rule written without `proto:` (or with `proto: any`). */
static __u8 any_protos(const struct policy_rule *r)
{
	/* A port means nothing to ICMP and friends: "any" with ports is TCP+UDP. */
	return r->n_ports ? WEIR_P_TCP | WEIR_P_UDP : WEIR_P_ANY;
}

/* Which of domain/cidr/ip a rule names; exactly one is allowed. */
static int find_target(struct loader *ld, yaml_node_t *rule, const char **key, yaml_node_t **val)
{
	yaml_node_pair_t *pair;
	const char *k;

	*key = NULL;
	for (pair = rule->data.mapping.pairs.start; pair < rule->data.mapping.pairs.top; pair++) {
		k = key_text(ld, pair);
		if (!in_list(target_keys, k))
			continue;
		if (*key)
			return fail(ld, node(ld, pair->key),
				    "a rule names one destination, this one has both '%s' and '%s'",
				    *key, k);
		*key = k;
		*val = node(ld, pair->value);
	}
	if (!*key)
		return fail(ld, rule, "a rule needs one of domain, cidr, ip or cidr_list");
	return 0;
}

/*
 * `cidr_list: FILE`, relative to the policy file. Errors inside the list
 * name the list's FILE:LINE; the policy's line comes after, so an editor
 * jumps to the list and the reader still sees which rule read it.
 */
static int load_list(struct loader *ld, yaml_node_t *v, const char *path, struct policy_rule *r)
{
	char msg[POLICY_ERR_LEN - 64];
	int err;

	if (!*path)
		return fail(ld, v, "cidr_list: expected a file name");
	r->kind = RULE_CIDR_LIST;
	r->list = calloc(1, sizeof(*r->list));
	if (!r->list || !(r->list->name = strdup(path)))
		return nomem(ld->err, ld->source);
	err = netlist_load(ld->source, path, &r->list->pfx, &r->list->n, &r->list->file, msg,
			   sizeof(msg));
	if (err == -ENOMEM)
		return nomem(ld->err, ld->source);
	if (err)
		snprintf(ld->err, POLICY_ERR_LEN, "%s (cidr_list at %s:%zu:%zu)", msg, ld->source,
			 v->start_mark.line + 1, v->start_mark.column + 1);
	return err;
}

static int load_target(struct loader *ld, yaml_node_t *rule, struct policy_rule *r)
{
	char msg[POLICY_ERR_LEN];
	const char *key, *s;
	yaml_node_t *v = NULL;
	int err;

	err = find_target(ld, rule, &key, &v);
	if (!err)
		err = scalar_text(ld, v, key, &s);
	if (err)
		return err;
	if (!strcmp(key, "cidr_list"))
		return load_list(ld, v, s, r);
	if (rule_check_slip(key, s, msg, sizeof(msg)))
		return fail(ld, v, "%s", msg);
	if (!strcmp(key, "domain"))
		err = domain_parse(s, r, msg, sizeof(msg));
	else if (!strcmp(key, "cidr"))
		err = parse_cidr(s, r, msg, sizeof(msg));
	else
		err = parse_ip(s, r, msg, sizeof(msg));
	if (err == -EINVAL)
		return fail(ld, v, "%s", msg);
	return err ? nomem(ld->err, ld->source) : 0;
}

static int load_port(struct loader *ld, yaml_node_t *n, struct policy_rule *r)
{
	char msg[POLICY_ERR_LEN];
	const char *s;
	int err;

	err = scalar_text(ld, n, "ports", &s);
	if (err)
		return err;
	if (parse_port_range(s, &r->ports[r->n_ports], msg, sizeof(msg)))
		return fail(ld, n, "%s", msg);
	r->n_ports++;
	return 0;
}

/* `ports: 443`, or a list of ports and "lo-hi" ranges. */
static int load_ports(struct loader *ld, yaml_node_t *v, struct policy_rule *r)
{
	yaml_node_item_t *it;
	size_t n = 1;

	if (!v)
		return 0;
	if (v->type == YAML_MAPPING_NODE)
		return fail(ld, v,
			    "ports: expected a port, a range or a list of them, got a mapping");
	if (v->type == YAML_SEQUENCE_NODE) {
		n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		if (n == 0)
			return fail(ld, v,
				    "ports: empty list; leave ports out to allow every port");
		if (n > WEIR_PORTSET_MAX)
			return fail(ld, node(ld, v->data.sequence.items.start[WEIR_PORTSET_MAX]),
				    "too many port ranges (%zu; at most %d per rule)", n,
				    WEIR_PORTSET_MAX);
	}
	r->ports = calloc(n, sizeof(*r->ports));
	if (!r->ports)
		return nomem(ld->err, ld->source);
	if (v->type == YAML_SCALAR_NODE)
		return load_port(ld, v, r);
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
		if (load_port(ld, node(ld, *it), r))
			return -EINVAL;
	return 0;
}

static int load_proto(struct loader *ld, yaml_node_t *v, struct policy_rule *r)
{
	const char *s = "any";
	int err;

	if (v) {
		err = scalar_text(ld, v, "proto", &s);
		if (err)
			return err;
	}
	if (!strcmp(s, "tcp"))
		r->protos = WEIR_P_TCP;
	else if (!strcmp(s, "udp"))
		r->protos = WEIR_P_UDP;
	else if (!strcmp(s, "any"))
		r->protos = any_protos(r);
	else
		return fail(ld, v, "proto: expected tcp, udp or any, got '%s'", s);
	return 0;
}

/* `upload_budget: 50MiB`: allow rules only (a deny or inbound rule lets
 * nothing out to count). */
static int load_budget(struct loader *ld, yaml_node_t *v, const char *list, struct policy_rule *r)
{
	char msg[POLICY_ERR_LEN];
	const char *s;
	int err;

	if (!v)
		return 0;
	if (strcmp(list, "allow"))
		return fail(ld, v, "upload_budget: only allow rules have one (this is a%s %s rule)",
			    list[0] == 'i' ? "n" : "", list);
	if (v->type != YAML_SCALAR_NODE)
		return fail(ld, v, "upload_budget: expected a size such as 50MiB, got %s",
			    node_kind(v));
	err = scalar_text(ld, v, "upload_budget", &s);
	if (err)
		return err;
	if (parse_size(s, &r->upload_budget, msg, sizeof(msg)))
		return fail(ld, v, "upload_budget: %s", msg);
	return 0;
}

static int load_rule(struct loader *ld, yaml_node_t *n, const char *list, struct policy_rule *r)
{
	int err;

	if (n->type != YAML_MAPPING_NODE)
		return fail(ld, n, "a rule is a mapping such as 'domain: example.com', got %s",
			    node_kind(n));
	r->line = (unsigned int)n->start_mark.line + 1;
	r->col = (unsigned int)n->start_mark.column + 1;
	err = check_keys(ld, n, rule_keys);
	if (!err)
		err = load_target(ld, n, r);
	if (!err)
		err = load_ports(ld, find_value(ld, n, "ports"), r);
	if (!err)
		err = load_proto(ld, find_value(ld, n, "proto"), r);
	if (!err)
		err = load_budget(ld, find_value(ld, n, "upload_budget"), list, r);
	return err;
}

/* `allow:` or `deny:`: a list of rules; empty or absent means none. */
static int load_rules(struct loader *ld, yaml_node_t *v, const char *list,
		      struct policy_rule **rules, size_t *n)
{
	yaml_node_item_t *it;
	size_t cnt;
	int err;

	if (is_null(v))
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(ld, v, "%s: expected a list of rules, got %s", list, node_kind(v));
	cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (!cnt)
		return 0;
	if (cnt > POLICY_MAX_RULES)
		return fail(ld, v, "%s: %zu rules; at most %u in one list (put addresses in a "
			    "cidr_list: file, which is one rule)", list, cnt, POLICY_MAX_RULES);
	/* Counted before filling in, so policy_free() cleans up a half-done list. */
	*rules = calloc(cnt, sizeof(**rules));
	if (!*rules)
		return nomem(ld->err, ld->source);
	*n = cnt;
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		snprintf(ld->where, sizeof(ld->where), "%s[%zu]: ", list,
			 (size_t)(it - v->data.sequence.items.start));
		err = load_rule(ld, node(ld, *it), list,
				&(*rules)[it - v->data.sequence.items.start]);
		if (err)
			return err;
	}
	ld->where[0] = '\0';
	return 0;
}

/*
 * An inbound rule names its peer by address. A name is refused: the
 * source of an arriving packet is an address, and what a forward lookup
 * of a name says (where its servers are) is not who may send from where.
 */
static int check_inbound_rules(struct loader *ld, yaml_node_t *v)
{
	struct policy *p = ld->p;
	yaml_node_t *rule, *dom;
	size_t i;

	for (i = 0; i < p->n_inbound; i++) {
		if (p->inbound[i].kind != RULE_DOMAIN)
			continue;
		rule = node(ld, v->data.sequence.items.start[i]);
		dom = find_value(ld, rule, "domain");
		snprintf(ld->where, sizeof(ld->where), "inbound[%zu]: ", i);
		return fail(ld, dom ? dom : rule,
			    "domain: an inbound rule names its peers by address (ip: or cidr:); "
			    "a connecting peer comes with an address, not a name");
	}
	return 0;
}

/* `inbound:` absent or null: loopback peers; `any`; or a list of rules. */
static int load_inbound(struct loader *ld, yaml_node_t *v)
{
	struct policy *p = ld->p;
	const char *s;
	int err;

	if (is_null(v))
		return 0;
	if (v->type == YAML_SCALAR_NODE) {
		err = scalar_text(ld, v, "inbound", &s);
		if (err)
			return err;
		if (strcmp(s, "any"))
			return fail(ld, v, "inbound: expected 'any' or a list of rules, got '%s'",
				    s);
		p->inbound_mode = INBOUND_ANY;
		return 0;
	}
	p->inbound_mode = INBOUND_RULES;
	err = load_rules(ld, v, "inbound", &p->inbound, &p->n_inbound);
	return err ?: check_inbound_rules(ld, v);
}

static int load_choice(struct loader *ld, yaml_node_t *v, const char *key, const char *yes,
		       const char *no, bool *out)
{
	const char *s;
	int err;

	err = scalar_text(ld, v, key, &s);
	if (err)
		return err;
	if (strcmp(s, yes) && strcmp(s, no))
		return fail(ld, v, "%s: expected '%s' or '%s', got '%s'", key, yes, no, s);
	*out = !strcmp(s, yes);
	return 0;
}

static int load_name(struct loader *ld, yaml_node_t *v)
{
	const char *s;
	int err;

	if (is_null(v))
		return 0;
	err = scalar_text(ld, v, "name", &s);
	if (err)
		return err;
	ld->p->name = strdup(s);
	return ld->p->name ? 0 : nomem(ld->err, ld->source);
}

/*
 * Checked before anything else, so a file written for a later format gets
 * "unsupported version" rather than complaints about keys we do not know.
 */
static int load_version(struct loader *ld, yaml_node_t *root)
{
	yaml_node_t *v = find_value(ld, root, "version");
	const char *s;
	int err;

	if (!v)
		return fail(ld, root, "missing 'version: 1' (the policy format version)");
	err = scalar_text(ld, v, "version", &s);
	if (err)
		return err;
	if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !strcmp(s, "1"))
		return 0;
	if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && *s &&
	    strspn(s, "0123456789") == strlen(s))
		return fail(ld, v, "unsupported policy version %s (this weir reads version %d)", s,
			    POLICY_VERSION);
	return fail(ld, v, "version: expected the integer %d, got '%s'", POLICY_VERSION, s);
}

static int load_uint(struct loader *ld, yaml_node_t *v, const char *key, unsigned long min,
		     unsigned long max, __u32 *out)
{
	unsigned long x;
	const char *s;
	char *end;
	int err;

	err = scalar_text(ld, v, key, &s);
	if (err)
		return err;
	errno = 0;
	x = strtoul(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || *s == '+' || x < min || x > max)
		return fail(ld, v, "%s: expected a whole number %lu..%lu, got '%s'", key, min, max, s);
	*out = x;
	return 0;
}

static int load_upstream(struct loader *ld, yaml_node_t *v, struct policy_dns *d)
{
	struct dns_upstream u;
	yaml_node_t *n;
	const char *s;
	size_t cnt;
	int err;

	if (v->type == YAML_SCALAR_NODE) /* `upstream: 192.0.2.53` */
		cnt = 1;
	else if (v->type == YAML_SEQUENCE_NODE)
		cnt = v->data.sequence.items.top - v->data.sequence.items.start;
	else
		return fail(ld, v, "dns.upstream: expected a list of addresses, got %s",
			    node_kind(v));
	if (!cnt || cnt > POLICY_DNS_MAX_UPSTREAMS)
		return fail(ld, v, "dns.upstream: give 1..%d addresses", POLICY_DNS_MAX_UPSTREAMS);
	d->upstream = calloc(cnt, sizeof(*d->upstream));
	if (!d->upstream)
		return nomem(ld->err, ld->source);
	for (d->n_upstream = 0; d->n_upstream < cnt; d->n_upstream++) {
		n = v->type == YAML_SCALAR_NODE ?
			    v :
			    node(ld, v->data.sequence.items.start[d->n_upstream]);
		err = scalar_text(ld, n, "dns.upstream", &s);
		if (err)
			return err;
		if (dns_parse_upstream(s, &u))
			return fail(ld, n, "dns.upstream: '%s' is not IP, IP:PORT or [IPv6]:PORT", s);
		d->upstream[d->n_upstream] = strdup(s);
		if (!d->upstream[d->n_upstream])
			return nomem(ld->err, ld->source);
	}
	return 0;
}

static int load_static(struct loader *ld, yaml_node_t *v, struct policy_dns *d)
{
	static const char *const names[] = { "auto", "always", "never" };
	const char *s;
	int err, i;

	err = scalar_text(ld, v, "dns.static", &s);
	if (err)
		return err;
	for (i = 0; i < 3; i++) {
		if (!strcmp(s, names[i])) {
			d->static_mode = i;
			return 0;
		}
	}
	return fail(ld, v, "dns.static: expected 'auto', 'always' or 'never', got '%s'", s);
}

/* `dns:` (docs/dns.md): weir's resolver. */
static int load_dns(struct loader *ld, yaml_node_t *v)
{
	struct policy_dns *d = &ld->p->dns;
	yaml_node_pair_t *pair;
	const char *key;
	yaml_node_t *val;
	int err;

	if (is_null(v))
		return 0;
	if (v->type != YAML_MAPPING_NODE)
		return fail(ld, v, "dns: expected a mapping (upstream, ttl_min, ...), got %s",
			    node_kind(v));
	err = check_keys(ld, v, dns_keys);
	for (pair = v->data.mapping.pairs.start; !err && pair < v->data.mapping.pairs.top; pair++) {
		key = key_text(ld, pair);
		val = node(ld, pair->value);
		if (!strcmp(key, "upstream"))
			err = load_upstream(ld, val, d);
		else if (!strcmp(key, "ttl_min"))
			err = load_uint(ld, val, "dns.ttl_min", 1, 86400, &d->ttl_min);
		else if (!strcmp(key, "ttl_max"))
			err = load_uint(ld, val, "dns.ttl_max", 1, 604800, &d->ttl_max);
		else if (!strcmp(key, "max_addresses"))
			err = load_uint(ld, val, "dns.max_addresses", 1, 4096, &d->max_addresses);
		else if (!strcmp(key, "static"))
			err = load_static(ld, val, d);
	}
	if (!err && d->ttl_min > d->ttl_max)
		err = fail(ld, v, "dns: ttl_min (%u) is above ttl_max (%u)", d->ttl_min,
			   d->ttl_max);
	return err;
}

/*
 * A unix: pattern: an absolute path or @abstract name, up to 107 bytes,
 * with at most one '*', and only at the end (a prefix).
 */
static int check_unix_pattern(struct loader *ld, yaml_node_t *n, const char *list, const char *s)
{
	const char *star = strchr(s, '*'), *why;
	size_t len = strlen(s);

	if (s[0] != '/' && s[0] != '@')
		return fail(ld, n, "unix.%s: '%s': want an absolute path (/run/...) or an "
			    "abstract name (@name)", list, s);
	if (star && star[1])
		return fail(ld, n, "unix.%s: '%s': '*' only at the end (a prefix: "
			    "/run/containerd/*)", list, s);
	if (len - (star ? 1 : 0) > 107 || len < 2)
		return fail(ld, n, "unix.%s: '%s': a socket path is 1 to 107 bytes", list, s);
	why = unix_pattern_problem(s);
	if (why)
		return fail(ld, n, "unix.%s: '%s': %s", list, s, why);
	return 0;
}

static int load_unix_list(struct loader *ld, yaml_node_t *v, const char *list, bool deny)
{
	struct policy *p = ld->p;
	struct policy_unix_rule *r;
	yaml_node_item_t *it;
	const char *s;
	yaml_node_t *n;
	size_t cnt;
	int err;

	if (is_null(v))
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(ld, v, "unix.%s: expected a list of socket paths, got %s", list,
			    node_kind(v));
	cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	r = realloc(p->unix_rules, (p->n_unix + cnt + 1) * sizeof(*r));
	if (!r)
		return nomem(ld->err, ld->source);
	p->unix_rules = r;
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		n = node(ld, *it);
		err = scalar_text(ld, n, list, &s);
		err = err ?: check_unix_pattern(ld, n, list, s);
		if (err)
			return err;
		r = &p->unix_rules[p->n_unix];
		memset(r, 0, sizeof(*r));
		r->pattern = strdup(s);
		if (!r->pattern)
			return nomem(ld->err, ld->source);
		r->deny = deny;
		r->line = (unsigned int)n->start_mark.line + 1;
		r->col = (unsigned int)n->start_mark.column + 1;
		p->n_unix++;
	}
	return 0;
}

/* `unix:` (docs/policy.md): patterns for connect/sendmsg on unix sockets. */
static int load_unix(struct loader *ld, yaml_node_t *v)
{
	yaml_node_pair_t *pair;
	bool on = true;
	const char *key;
	yaml_node_t *val;
	size_t i, j;
	int err;

	if (is_null(v))
		return 0;
	if (v->type != YAML_MAPPING_NODE)
		return fail(ld, v, "unix: expected a mapping (deny, allow, builtin), got %s",
			    node_kind(v));
	err = check_keys(ld, v, unix_keys);
	for (pair = v->data.mapping.pairs.start; !err && pair < v->data.mapping.pairs.top; pair++) {
		key = key_text(ld, pair);
		val = node(ld, pair->value);
		if (!strcmp(key, "builtin")) {
			err = load_choice(ld, val, "unix.builtin", "on", "off", &on);
			ld->p->unix_builtin = on ? UNIX_BUILTIN_ON : UNIX_BUILTIN_OFF;
		} else {
			err = load_unix_list(ld, val, key, !strcmp(key, "deny"));
		}
	}
	for (i = 0; !err && i < ld->p->n_unix; i++)
		for (j = 0; !err && j < i; j++)
			if (!strcmp(ld->p->unix_rules[i].pattern, ld->p->unix_rules[j].pattern))
				err = fail(ld, v, "unix: '%s' is listed twice (line %u and %u)",
					   ld->p->unix_rules[i].pattern,
					   ld->p->unix_rules[j].line, ld->p->unix_rules[i].line);
	return err;
}

/* `include:`: a list of strings, read later (include.c). */
static int load_include(struct loader *ld, yaml_node_t *v)
{
	struct policy *p = ld->p;
	yaml_node_item_t *it;
	const char *s;
	yaml_node_t *n;
	size_t cnt;
	int err;

	if (is_null(v))
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(ld, v, "include: expected a list of files or presets, got %s",
			    node_kind(v));
	cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	p->includes = calloc(cnt ? cnt : 1, sizeof(*p->includes));
	if (!p->includes)
		return nomem(ld->err, ld->source);
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		n = node(ld, *it);
		err = scalar_text(ld, n, "include", &s);
		if (err)
			return err;
		if (!*s)
			return fail(ld, n, "include: empty name (a file, or preset:NAME)");
		p->includes[p->n_includes].name = strdup(s);
		if (!p->includes[p->n_includes].name)
			return nomem(ld->err, ld->source);
		p->includes[p->n_includes].line = (unsigned int)n->start_mark.line + 1;
		p->includes[p->n_includes].col = (unsigned int)n->start_mark.column + 1;
		p->n_includes++;
	}
	return 0;
}

/* Where a setting was written, for the includes' conflicts (include.c). */
static void mark_setting(struct loader *ld, const char *key, const yaml_node_t *v)
{
	static const char *const names[SET_N] = { "mode", "loopback", "ping", "dns", "inbound" };
	int i;

	for (i = 0; i < SET_N; i++) {
		if (strcmp(key, names[i]) || is_null(v))
			continue;
		ld->p->set_at[i].line = (unsigned int)v->start_mark.line + 1;
		ld->p->set_at[i].col = (unsigned int)v->start_mark.column + 1;
	}
}

static int load_key(struct loader *ld, const char *key, yaml_node_t *v)
{
	struct policy *p = ld->p;
	bool enforce = true;
	int err;

	mark_setting(ld, key, v);
	if (!strcmp(key, "include"))
		return load_include(ld, v);
	if (!strcmp(key, "name"))
		return load_name(ld, v);
	if (!strcmp(key, "mode")) {
		err = load_choice(ld, v, "mode", "enforce", "audit", &enforce);
		p->mode = enforce ? POLICY_ENFORCE : POLICY_AUDIT;
		return err;
	}
	if (!strcmp(key, "loopback"))
		return load_choice(ld, v, "loopback", "allow", "deny", &p->loopback_allow);
	if (!strcmp(key, "allow"))
		return load_rules(ld, v, "allow", &p->allow, &p->n_allow);
	if (!strcmp(key, "deny"))
		return load_rules(ld, v, "deny", &p->deny, &p->n_deny);
	if (!strcmp(key, "dns"))
		return load_dns(ld, v);
	if (!strcmp(key, "ping"))
		return load_choice(ld, v, "ping", "allow", "deny", &p->ping_allow);
	if (!strcmp(key, "inbound"))
		return load_inbound(ld, v);
	if (!strcmp(key, "unix"))
		return load_unix(ld, v);
	return 0; /* version: see load_version() */
}

/*
 * A run fastseq.c read for this key: the key on the run's line in column
 * 0 of the root block mapping, its value empty (the run's lines, emptied,
 * were its value): the run's rules are its value.
 */
static void take_run(struct loader *ld, yaml_node_t *root, yaml_node_pair_t *pair)
{
	yaml_node_t *k = node(ld, pair->key), *v = node(ld, pair->value);
	struct policy *p = ld->p;
	size_t i;

	if (!ld->fast || root->data.mapping.style != YAML_BLOCK_MAPPING_STYLE ||
	    k->start_mark.column != 0 || v->type != YAML_SCALAR_NODE ||
	    v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || v->data.scalar.length)
		return;
	for (i = 0; i < ld->fast->nruns; i++) {
		struct fastseq_run *run = &ld->fast->runs[i];
		struct policy_rule **rules = run->which ? &p->deny : &p->allow;
		size_t *n = run->which ? &p->n_deny : &p->n_allow;

		if (run->taken || run->key_line != k->start_mark.line || *rules ||
		    strcmp(key_text(ld, pair), run->which ? "deny" : "allow") ||
		    run->n > POLICY_MAX_RULES)
			continue;
		*rules = run->rules;
		*n = run->n;
		run->rules = NULL;
		run->taken = true;
	}
}

static int load_root(struct loader *ld, yaml_node_t *root)
{
	yaml_node_pair_t *pair;
	int err;

	if (root->type != YAML_MAPPING_NODE)
		return fail(ld, root, "a policy is a mapping ('version: 1', 'allow: ...'), got %s",
			    node_kind(root));
	err = load_version(ld, root);
	if (!err)
		err = check_keys(ld, root, top_keys);
	for (pair = root->data.mapping.pairs.start; !err && pair < root->data.mapping.pairs.top;
	     pair++) {
		err = load_key(ld, key_text(ld, pair), node(ld, pair->value));
		if (!err)
			take_run(ld, root, pair);
	}
	return err;
}

static void offset_to_mark(const char *buf, size_t len, size_t off, size_t *line, size_t *col)
{
	size_t i, bol = 0;

	*line = 1;
	for (i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			bol = i + 1;
		}
	}
	*col = off - bol + 1;
}

/* libyaml reader errors (bad UTF-8, control characters) carry a byte offset. */
static int reader_fail(struct loader *ld, yaml_parser_t *ps, const char *buf, size_t len)
{
	size_t line, col;

	offset_to_mark(buf, len, ps->problem_offset, &line, &col);
	if (ps->problem_value < 0)
		snprintf(ld->err, POLICY_ERR_LEN, "%s:%zu:%zu: invalid input: %s", ld->source, line,
			 col, ps->problem);
	else
		snprintf(ld->err, POLICY_ERR_LEN, "%s:%zu:%zu: invalid input: %s (0x%02x)",
			 ld->source, line, col, ps->problem, ps->problem_value);
	return -EINVAL;
}

/*
 * The byte a mark points at, len if none. libyaml counts the mark's index
 * and column in characters, not bytes: a comment in UTF-8 ("# Zürich")
 * before the mark put its index past the text it meant.
 */
static size_t mark_offset(const char *buf, size_t len, const yaml_mark_t *m)
{
	size_t i = 0, line = 0, col = 0;

	while (i < len && line < m->line) {
		if (buf[i] == '\n' || (buf[i] == '\r' && (i + 1 == len || buf[i + 1] != '\n')))
			line++;
		i++;
	}
	for (; i < len && col < m->column; i++)
		if (((unsigned char)buf[i] & 0xc0) != 0x80)
			col++;
	/* past the last character's continuation bytes */
	while (i < len && ((unsigned char)buf[i] & 0xc0) == 0x80)
		i++;
	return i;
}

/*
 * "domain: *.npmjs.org": YAML reads an unquoted leading '*' as an alias
 * (and '.' cannot be in an alias name). Say what was meant, with the text
 * as written, rather than libyaml's "while scanning an alias". WHAT leads
 * the message: the text itself, or libyaml's problem when the alias could
 * be a real one ("found undefined alias").
 */
static int alias_fail(struct loader *ld, const yaml_mark_t *m, const char *what, const char *buf,
		      size_t len)
{
	size_t off = mark_offset(buf, len, m), n = 0;
	const char *t = buf + off, *q;

	while (off + n < len && !strchr(" \t\r\n,]}", t[n]))
		n++;
	if (n < 2 || n > 256 || *t != '*')
		return 0;
	q = memchr(t, '\'', n) ? "\"" : "'";
	snprintf(ld->err, POLICY_ERR_LEN,
		 "%s:%zu:%zu: %s%.*s: YAML reads an unquoted leading '*' as an alias; quote it: "
		 "%s%.*s%s",
		 ld->source, m->line + 1, m->column + 1, what, (int)n, t, q, (int)n, t, q);
	return -EINVAL;
}

static int yaml_fail(struct loader *ld, yaml_parser_t *ps, const char *buf, size_t len)
{
	const yaml_mark_t *m = &ps->problem_mark;

	if (ps->error == YAML_MEMORY_ERROR)
		return nomem(ld->err, ld->source);
	if (ps->error == YAML_READER_ERROR)
		return reader_fail(ld, ps, buf, len);
	if (ps->context && !strcmp(ps->context, "while scanning an alias") &&
	    alias_fail(ld, &ps->context_mark, "", buf, len))
		return -EINVAL;
	if (ps->problem && !strcmp(ps->problem, "found undefined alias") &&
	    alias_fail(ld, m, "invalid YAML: found undefined alias ", buf, len))
		return -EINVAL;
	if (ps->context)
		snprintf(ld->err, POLICY_ERR_LEN, "%s:%zu:%zu: invalid YAML: %s (%s at line %zu)",
			 ld->source, m->line + 1, m->column + 1, ps->problem, ps->context,
			 ps->context_mark.line + 1);
	else
		snprintf(ld->err, POLICY_ERR_LEN, "%s:%zu:%zu: invalid YAML: %s", ld->source,
			 m->line + 1, m->column + 1, ps->problem ? ps->problem : "parse error");
	return -EINVAL;
}

/* A policy is one document: a second one is most likely a pasting accident. */
static int check_single_doc(struct loader *ld, yaml_parser_t *ps, const char *buf, size_t len)
{
	yaml_document_t extra;
	yaml_node_t *root;
	int err = 0;

	if (!yaml_parser_load(ps, &extra))
		return yaml_fail(ld, ps, buf, len);
	root = yaml_document_get_root_node(&extra);
	if (root) {
		ld->doc = &extra;
		err = fail(ld, root,
			   "more than one YAML document ('---'); a policy is one document");
	}
	yaml_document_delete(&extra);
	return err;
}

static int load_doc(struct loader *ld, yaml_parser_t *ps, const char *buf, size_t len)
{
	yaml_document_t doc;
	yaml_node_t *root;
	int err;

	if (!yaml_parser_load(ps, &doc))
		return yaml_fail(ld, ps, buf, len);
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		snprintf(ld->err, POLICY_ERR_LEN,
			 "%s:1:1: empty policy (expected at least 'version: 1')", ld->source);
		err = -EINVAL;
	} else {
		err = check_single_doc(ld, ps, buf, len);
	}
	ld->doc = &doc;
	if (!err)
		err = load_root(ld, root);
	yaml_document_delete(&doc);
	return err;
}

/*
 * libyaml would refuse a NUL byte too, but saying so plainly helps the
 * person who fed us a binary or UTF-16 file.
 */
static int check_text(struct loader *ld, const char *buf, size_t len)
{
	const char *nul = memchr(buf, '\0', len);
	size_t line, col;

	if (len > POLICY_MAX_SIZE) {
		snprintf(ld->err, POLICY_ERR_LEN,
			 "%s: policy larger than %u MiB (put big address lists in cidr_list: files)",
			 ld->source, POLICY_MAX_SIZE >> 20);
		return -EFBIG;
	}
	if (!nul)
		return 0;
	offset_to_mark(buf, len, (size_t)(nul - buf), &line, &col);
	snprintf(ld->err, POLICY_ERR_LEN, "%s:%zu:%zu: NUL byte in policy (expected UTF-8 text)",
		 ld->source, line, col);
	return -EINVAL;
}

/*
 * libyaml's scanner takes time quadratic in the nesting depth of flow
 * collections ("allow: [[[[...": 100 KB took 6.5 s, 1 MB 632 s). A policy
 * needs four levels; anything past POLICY_MAX_DEPTH is refused here, in
 * one linear pass, before libyaml sees it. The pass counts every [ and {
 * outside comments, also those libyaml would read as text (in quotes, or
 * in "x[y"): knowing less YAML than libyaml, it must never count fewer
 * levels than libyaml nests ("&a[[[": an anchor, then flow collections).
 * A policy has no use for 33 unclosed brackets in a string.
 */
#define POLICY_MAX_DEPTH 32

struct depth_scan {
	size_t line, col; /* of the current byte, 0-based */
	unsigned int depth;
};

static int depth_fail(struct loader *ld, const struct depth_scan *ds)
{
	snprintf(ld->err, POLICY_ERR_LEN,
		 "%s:%zu:%zu: YAML nested deeper than %d levels (a policy needs four)", ld->source,
		 ds->line + 1, ds->col + 1, POLICY_MAX_DEPTH);
	return -EINVAL;
}

/*
 * Block collections nest one level per indicator in "- - - x" or "? ? x"
 * on one line (by indentation, depth costs its square in bytes, so a
 * file's size bounds it). Linear in libyaml, but some 160 bytes of
 * memory for each byte of such a line: refused too. Returns the index of
 * the line's first byte after the indicators.
 */
static size_t block_indicators(const char *buf, size_t len, size_t i, struct depth_scan *ds,
			       unsigned int *n)
{
	*n = 0;
	for (;;) {
		while (i < len && buf[i] == ' ') {
			i++;
			ds->col++;
		}
		if (i + 1 >= len || (buf[i] != '-' && buf[i] != '?') ||
		    (buf[i + 1] != ' ' && buf[i + 1] != '\t'))
			return i;
		if (++*n > POLICY_MAX_DEPTH)
			return i;
		i++;
		ds->col++;
	}
}

static int check_depth(struct loader *ld, const char *buf, size_t len)
{
	struct depth_scan ds = {};
	unsigned int blocks;
	size_t i;

	for (i = 0; i < len; i++, ds.col++) {
		char c;

		if (!ds.col && !ds.depth) {
			i = block_indicators(buf, len, i, &ds, &blocks);
			if (blocks > POLICY_MAX_DEPTH)
				return depth_fail(ld, &ds);
			if (i >= len)
				break;
		}
		c = buf[i];
		if (c == '\n') {
			ds.line++;
			ds.col = (size_t)-1;
		} else if (c == '#' && (!i || strchr(" \t\r\n", buf[i - 1]))) {
			/* a comment in YAML, or text in a quoted string: no levels */
			while (i + 1 < len && buf[i + 1] != '\n')
				i++;
		} else if (c == '[' || c == '{') {
			if (++ds.depth > POLICY_MAX_DEPTH)
				return depth_fail(ld, &ds);
		} else if ((c == ']' || c == '}') && ds.depth) {
			ds.depth--;
		}
	}
	return 0;
}

static int parse_yaml(struct loader *ld, const char *buf, size_t len)
{
	yaml_parser_t ps;
	int ret;

	if (!yaml_parser_initialize(&ps))
		return nomem(ld->err, ld->source);
	yaml_parser_set_input_string(&ps, (const unsigned char *)buf, len);
	ret = load_doc(ld, &ps, buf, len);
	yaml_parser_delete(&ps);
	return ret;
}

static struct policy *policy_new(const char *source);

/*
 * Big inline lists read by fastseq.c, the rest by libyaml: 1 with *out
 * when every run found its place; 0 when there were none or anything went
 * otherwise (the ordinary parse then runs and says what is wrong).
 */
static int parse_fast(const char *source, const char *buf, size_t len, struct policy **out,
		      char *err)
{
	struct fastseq fs;
	struct loader ld = { .source = source, .err = err, .fast = &fs };
	size_t i;
	int ret;

	*out = NULL;
	ret = fastseq_scan(buf, len, &fs);
	if (ret <= 0)
		return ret;
	ld.p = policy_new(source);
	ret = ld.p ? parse_yaml(&ld, fs.text, fs.len) : -ENOMEM;
	for (i = 0; !ret && i < fs.nruns; i++)
		if (!fs.runs[i].taken)
			ret = -EINVAL;
	fastseq_free(&fs);
	err[0] = '\0';
	if (ret) {
		policy_free(ld.p);
		return ret == -ENOMEM ? ret : 0;
	}
	*out = ld.p;
	return 1;
}

static int parse_policy(struct policy *p, const char *buf, size_t len, char *err)
{
	struct loader ld = { .source = p->source, .p = p, .err = err };

	return parse_yaml(&ld, buf, len);
}

/* The checks every text passes before libyaml (or fastseq.c) reads it. */
static int precheck(const char *source, const char *buf, size_t len, char *err)
{
	struct loader ld = { .source = source, .err = err };

	return check_text(&ld, buf, len) ?: check_depth(&ld, buf, len);
}

static struct policy *policy_new(const char *source)
{
	struct policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->source = strdup(source);
	if (!p->source) {
		free(p);
		return NULL;
	}
	p->mode = POLICY_ENFORCE;
	p->loopback_allow = true;
	p->dns.ttl_min = POLICY_DNS_TTL_MIN;
	p->dns.ttl_max = POLICY_DNS_TTL_MAX;
	p->dns.max_addresses = POLICY_DNS_MAX_ADDRESSES;
	return p;
}

int policy_load_one(const char *source, const char *buf, size_t len, struct policy **out,
		    char err[POLICY_ERR_LEN])
{
	struct policy *p;
	int ret;

	*out = NULL;
	err[0] = '\0';
	ret = precheck(source, buf, len, err);
	if (ret)
		return ret;
	ret = parse_fast(source, buf, len, out, err);
	if (ret)
		return ret < 0 ? nomem(err, source) : 0;
	p = policy_new(source);
	if (!p)
		return nomem(err, source);
	ret = parse_policy(p, buf, len, err);
	if (ret) {
		policy_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

/* All of F (closed here), at most the size cap and one byte more (so
 * check_text() can refuse it by size). The buffer grows as it fills: the
 * cap is far above what most policies need. */
static int read_stream(FILE *f, const char *path, char **bufp, size_t *lenp,
		       char err[POLICY_ERR_LEN])
{
	size_t len = 0, cap = 1 << 16, got;
	char *buf = NULL, *nb;
	struct stat st;
	int ret = 0;

	/* A regular file's size up front: a 20 MB policy is not copied over
	 * and over as the buffer doubles (one byte more: to see it end). */
	if (!fstat(fileno(f), &st) && S_ISREG(st.st_mode) && st.st_size > (off_t)cap)
		cap = (unsigned long long)st.st_size > POLICY_MAX_SIZE ? (size_t)POLICY_MAX_SIZE + 1 :
									 (size_t)st.st_size;
	for (;;) {
		nb = realloc(buf, cap + 1);
		if (!nb) {
			free(buf);
			fclose(f);
			return nomem(err, path);
		}
		if (!buf)
			hint_huge(nb, cap + 1);
		buf = nb;
		got = fread(buf + len, 1, cap + 1 - len, f);
		len += got;
		if (len <= cap || cap > POLICY_MAX_SIZE)
			break;
		cap = cap * 2 > POLICY_MAX_SIZE ? (size_t)POLICY_MAX_SIZE + 1 : cap * 2;
	}
	if (ferror(f)) {
		ret = errno ? -errno : -EIO;
		snprintf(err, POLICY_ERR_LEN, "%s: cannot read: %s", path, strerror(-ret));
	}
	fclose(f);
	if (ret) {
		free(buf);
		return ret;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

int policy_read_file(const char *path, char **bufp, size_t *lenp, char err[POLICY_ERR_LEN])
{
	FILE *f = fopen(path, "re");
	int ret;

	if (!f) {
		ret = -errno;
		snprintf(err, POLICY_ERR_LEN, "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	return read_stream(f, path, bufp, lenp, err);
}

int policy_read_fd(int fd, const char *path, char **bufp, size_t *lenp,
		   char err[POLICY_ERR_LEN])
{
	FILE *f = fdopen(fd, "r");
	int ret;

	if (!f) {
		ret = -errno;
		close(fd);
		snprintf(err, POLICY_ERR_LEN, "%s: cannot read: %s", path, strerror(-ret));
		return ret;
	}
	return read_stream(f, path, bufp, lenp, err);
}

static void free_rules(struct policy_rule *rules, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!rules[i].domain && !rules[i].ports && !rules[i].list)
			continue; /* nothing of its own (a million inline rules: no calls) */
		free(rules[i].domain);
		free(rules[i].ports);
		if (rules[i].list) {
			free(rules[i].list->name);
			free(rules[i].list->file.path);
			free(rules[i].list->pfx);
			free(rules[i].list);
		}
	}
	free(rules);
}

void policy_free(struct policy *p)
{
	size_t i;

	if (!p)
		return;
	free_rules(p->allow, p->n_allow);
	free_rules(p->deny, p->n_deny);
	free_rules(p->args, p->n_args);
	free_rules(p->inbound, p->n_inbound);
	for (i = 0; i < p->n_unix; i++)
		free(p->unix_rules[i].pattern);
	free(p->unix_rules);
	for (i = 0; i < p->dns.n_upstream; i++)
		free(p->dns.upstream[i]);
	free(p->dns.upstream);
	for (i = 0; i < p->n_includes; i++)
		free(p->includes[i].name);
	free(p->includes);
	for (i = 0; i < p->n_files; i++)
		free(p->files[i]);
	free(p->files);
	free(p->name);
	free(p->source);
	free(p);
}

/*
 * Split an --allow argument "HOST[:PORT]" in place. An IPv6 address has
 * colons of its own, so with a port it must be bracketed ("[2001:db8::1]:443");
 * more than one colon and no brackets means the whole argument is an address.
 */
static int split_arg(char *s, char **host, char **port, char *msg, size_t len)
{
	char *c;

	*host = s;
	*port = NULL;
	if (*s != '[') {
		c = strchr(s, ':');
		if (c && !strchr(c + 1, ':')) {
			*c = '\0';
			*port = c + 1;
		}
		return 0;
	}
	c = strchr(s, ']');
	if (!c)
		return msgf(msg, len, "missing ']' after the IPv6 address");
	*c = '\0';
	*host = s + 1;
	if (!strchr(*host, ':'))
		return msgf(msg, len, "brackets are for IPv6 addresses only");
	if (c[1] == ':')
		*port = c + 2;
	else if (c[1])
		return msgf(msg, len, "expected ':PORT' after ']'");
	return 0;
}

/* HOST of an --allow: a prefix, an address, else a domain name. */
static int parse_host(const char *host, struct policy_rule *r, char *msg, size_t len)
{
	if (!*host)
		return msgf(msg, len, "missing the name, address or prefix");
	if (strchr(host, '/'))
		return parse_cidr(host, r, msg, len);
	if (!parse_ip(host, r, msg, len))
		return 0;
	/* Names never contain ':'; this was meant as an IPv6 address. */
	if (strchr(host, ':'))
		return msgf(msg, len, "'%s' is not an IPv6 address", host);
	return domain_parse(host, r, msg, len);
}

static int parse_arg(const char *arg, struct policy_rule *r, char *msg, size_t len)
{
	char *copy, *host, *port;
	int ret;

	if (rule_check_slip(NULL, arg, msg, len))
		return -EINVAL;
	copy = strdup(arg);
	if (!copy)
		return -ENOMEM;
	ret = split_arg(copy, &host, &port, msg, len);
	if (!ret)
		ret = parse_host(host, r, msg, len);
	if (!ret && port) {
		r->ports = calloc(1, sizeof(*r->ports));
		ret = r->ports ? parse_port_range(port, r->ports, msg, len) : -ENOMEM;
		r->n_ports = 1;
	}
	r->protos = any_protos(r);
	free(copy);
	return ret;
}

int policy_add_arg(struct policy *p, const char *rule, char err[POLICY_ERR_LEN])
{
	struct policy_rule r = { 0 }, *args;
	/* Leaves room for the "--allow 'RULE': " in front. */
	char msg[POLICY_ERR_LEN - 96] = "out of memory";
	int ret;

	if (has_ctrl(rule)) {
		snprintf(err, POLICY_ERR_LEN, "--allow: argument contains a control character");
		return -EINVAL;
	}
	ret = parse_arg(rule, &r, msg, sizeof(msg));
	if (!ret) {
		args = realloc(p->args, (p->n_args + 1) * sizeof(*args));
		if (args) {
			p->args = args;
			p->args[p->n_args++] = r;
			return 0;
		}
		ret = -ENOMEM;
		snprintf(msg, sizeof(msg), "out of memory");
	}
	free(r.domain);
	free(r.ports);
	snprintf(err, POLICY_ERR_LEN, "--allow '%s': %s", rule, msg);
	return ret;
}

/* "*.npmjs.org" back from domain "npmjs.org", match NAME_ONE. */
static const char *wildcard_prefix(enum name_match m)
{
	return m == NAME_ONE ? "*." : m == NAME_MANY ? "**." : "";
}

static void print_target(FILE *f, const struct policy_rule *r)
{
	char txt[INET6_ADDRSTRLEN];

	if (r->kind == RULE_DOMAIN) {
		fprintf(f, "domain %s%s", wildcard_prefix(r->match), r->domain);
		return;
	}
	if (r->kind == RULE_CIDR_LIST) {
		fprintf(f, "cidr_list %s (%zu prefix%s)", r->list->name, r->list->n,
			r->list->n == 1 ? "" : "es");
		return;
	}
	inet_ntop(r->family, r->addr, txt, sizeof(txt));
	/* A full-length prefix is what `ip:` makes; say it the short way. */
	if (r->prefixlen == (r->family == AF_INET ? 32 : 128))
		fprintf(f, "ip %s", txt);
	else
		fprintf(f, "cidr %s/%u", txt, r->prefixlen);
}

/* "t.yaml:6: allow[0]: domain ...": where it is written, then its id. */
static void print_rule(FILE *f, const struct policy *p, const struct policy_rule *r, __u32 id)
{
	char name[32];
	size_t i;

	policy_rule_name(id, name, sizeof(name));
	if (r->line)
		fprintf(f, "%s:%u: ", policy_rule_file(p, r), r->line);
	fprintf(f, "%s: ", name);
	print_target(f, r);
	for (i = 0; i < r->n_ports; i++) {
		fputs(i ? "," : " ports ", f);
		if (r->ports[i].lo == r->ports[i].hi)
			fprintf(f, "%u", r->ports[i].lo);
		else
			fprintf(f, "%u-%u", r->ports[i].lo, r->ports[i].hi);
	}
	/* TCP+UDP and "every protocol" are both what `proto: any` gives. */
	if (r->protos == WEIR_P_TCP)
		fputs(" proto tcp", f);
	else if (r->protos == WEIR_P_UDP)
		fputs(" proto udp", f);
	if (r->upload_budget)
		fprintf(f, " upload_budget %llu bytes", (unsigned long long)r->upload_budget);
	fputc('\n', f);
}

static void print_rules(FILE *f, const struct policy *p, const struct policy_rule *rules, size_t n,
			enum weir_rule_kind kind)
{
	size_t i;

	for (i = 0; i < n; i++)
		print_rule(f, p, &rules[i], WEIR_RULE_ID(kind, i));
}

static void print_inbound(FILE *f, const struct policy *p)
{
	if (p->inbound_mode == INBOUND_DEFAULT)
		fprintf(f, "inbound: loopback peers only (no inbound: section)\n");
	else if (p->inbound_mode == INBOUND_ANY)
		fprintf(f, "inbound: any\n");
	else if (!p->n_inbound)
		fprintf(f, "inbound: none\n");
	print_rules(f, p, p->inbound, p->n_inbound, WEIR_RK_INBOUND);
}

static void print_dns(FILE *f, const struct policy_dns *d)
{
	static const char *const stat[] = { "auto", "always", "never" };
	size_t i;

	fprintf(f, "dns: upstream ");
	for (i = 0; i < d->n_upstream; i++)
		fprintf(f, "%s%s", i ? "," : "", d->upstream[i]);
	if (!d->n_upstream)
		fprintf(f, "(/etc/resolv.conf)");
	fprintf(f, "; ttl %u..%u s; max %u addresses per name; static %s\n", d->ttl_min,
		d->ttl_max, d->max_addresses, stat[d->static_mode]);
}

void policy_print_summary(FILE *f, const struct policy *p)
{
	size_t n_allow = p->n_allow + p->n_args, i;

	fprintf(f, "policy: %s (source: %s)\n", p->name ? p->name : "(unnamed)", p->source);
	fprintf(f, "mode: %s\n", p->mode == POLICY_AUDIT ? "audit" : "enforce");
	fprintf(f, "loopback: %s\n", p->loopback_allow ? "allow" : "deny");
	if (p->ping_allow)
		fprintf(f, "ping: allow\n");
	for (i = 0; i < p->n_files; i++)
		fprintf(f, "%s%s%s", i ? ", " : "include: ", p->files[i],
			i + 1 == p->n_files ? "\n" : "");
	print_rules(f, p, p->allow, p->n_allow, WEIR_RK_ALLOW);
	print_rules(f, p, p->deny, p->n_deny, WEIR_RK_DENY);
	print_rules(f, p, p->args, p->n_args, WEIR_RK_ARG);
	print_inbound(f, p);
	print_dns(f, &p->dns);
	unix_print_summary(f, p);
	fprintf(f, "%zu allow rule%s, %zu deny rule%s\n", n_allow, n_allow == 1 ? "" : "s",
		p->n_deny, p->n_deny == 1 ? "" : "s");
}

/*
 * Allowed wildcards work through weir's resolver (it learns what the
 * program is told). A denied wildcard can only refuse names there: its
 * addresses cannot be resolved ahead of time, so a program that reaches
 * them without a lookup is judged by the other rules.
 */
static int warn_rules(FILE *f, const struct policy *p, const struct policy_rule *rules, size_t n,
		      enum weir_rule_kind kind)
{
	char name[32];
	int count = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct policy_rule *r = &rules[i];

		if (r->kind != RULE_DOMAIN || r->match == NAME_EXACT)
			continue;
		policy_rule_name(WEIR_RULE_ID(kind, i), name, sizeof(name));
		if (r->line)
			fprintf(f, "weir: %s:%u:%u: warning: ", policy_rule_file(p, r), r->line,
				r->col);
		else
			fprintf(f, "weir: warning: ");
		fprintf(f,
			"%s '%s%s': a wildcard deny refuses these names at weir's resolver, but "
			"cannot deny their addresses (list them with cidr: to deny those)\n",
			name, wildcard_prefix(r->match), r->domain);
		count++;
	}
	return count;
}

int policy_print_warnings(FILE *f, const struct policy *p)
{
	return warn_rules(f, p, p->deny, p->n_deny, WEIR_RK_DENY);
}
