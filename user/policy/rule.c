// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The values inside a policy rule: addresses and prefixes, port ranges and
 * domain names. Each parser takes one value as a person wrote it and, when it
 * is wrong, says why in one line that quotes the value. policy.c adds where
 * the value was ("agent.yaml:7:11: allow[1]: ...").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "policy.h"
#include "weir/egress.h"

#define DOMAIN_MAX 253 /* RFC 1035 2.3.4, without the trailing dot */
#define LABEL_MAX 63

static int errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Values are quoted back in messages, which must stay on one line. */
static bool has_ctrl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* A string of 1..maxdig decimal digits, nothing else (no sign, no space). */
static int parse_digits(const char *s, size_t n, size_t maxdig, unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0 || n > maxdig)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_addr(const char *s, struct policy_rule *r)
{
	memset(r->addr, 0, sizeof(r->addr));
	if (inet_pton(AF_INET, s, r->addr) == 1) {
		r->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, r->addr) == 1) {
		r->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* ::ffff:0:0/96, the IPv4-mapped block (RFC 4291 2.5.5.2). */
static bool addr_is_mapped(const __u8 *a)
{
	static const __u8 prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(a, prefix, sizeof(prefix));
}

/*
 * The kernel side judges an IPv4-mapped destination by the IPv4 rules, so a
 * rule written in mapped form must become the IPv4 rule it means; left as
 * IPv6 it would silently never match.
 */
static int unmap(const char *s, struct policy_rule *r, char *err, size_t len)
{
	if (r->family != AF_INET6 || !addr_is_mapped(r->addr))
		return 0;
	if (r->prefixlen < 96)
		return errf(err, len,
			    "bad CIDR '%s': an IPv4-mapped prefix must be /96 or longer "
			    "(shorter ones reach outside ::ffff:0:0/96)",
			    s);
	memmove(r->addr, r->addr + 12, 4);
	memset(r->addr + 4, 0, sizeof(r->addr) - 4);
	r->family = AF_INET;
	r->prefixlen -= 96;
	return 0;
}

/* Copy addr with the bits past plen cleared into net; true if any were set. */
static bool host_bits(const __u8 *addr, unsigned int plen, __u8 *net)
{
	unsigned int i;
	bool set = false;

	for (i = 0; i < 16; i++) {
		__u8 mask = 0xff;

		if (plen < 8 * i + 8)
			mask = plen <= 8 * i ? 0 : (__u8)(0xff << (8 - (plen - 8 * i)));
		net[i] = addr[i] & mask;
		set |= net[i] != addr[i];
	}
	return set;
}

static int check_host_bits(const char *s, const struct policy_rule *r, char *err, size_t len)
{
	char txt[INET6_ADDRSTRLEN];
	__u8 net[16];

	if (!host_bits(r->addr, r->prefixlen, net))
		return 0;
	inet_ntop(r->family, net, txt, sizeof(txt));
	return errf(err, len, "%s has host bits set; did you mean %s/%u?", s, txt, r->prefixlen);
}

int parse_cidr(const char *s, struct policy_rule *r, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash;
	unsigned long plen;
	unsigned int max;

	if (has_ctrl(s))
		return errf(err, errlen, "bad CIDR: contains a control character");
	slash = strrchr(s, '/');
	if (!slash)
		return errf(err, errlen, "bad CIDR '%s': missing /LENGTH (as in 192.0.2.0/24)", s);
	if ((size_t)(slash - s) >= sizeof(addr))
		return errf(err, errlen, "bad CIDR '%s': not an IPv4 or IPv6 prefix", s);
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (parse_addr(addr, r))
		return errf(err, errlen, "bad CIDR '%s': '%s' is not an IPv4 or IPv6 address", s,
			    addr);
	max = r->family == AF_INET ? 32 : 128;
	if (parse_digits(slash + 1, strlen(slash + 1), 3, &plen) || plen > max)
		return errf(err, errlen, "bad CIDR '%s': prefix length must be 0..%u", s, max);
	r->kind = RULE_CIDR;
	r->prefixlen = (__u8)plen;
	if (unmap(s, r, err, errlen))
		return -EINVAL;
	return check_host_bits(s, r, err, errlen);
}

static int parse_port(const char *s, size_t n, const char *all, __u16 *out, char *err,
		      size_t len)
{
	unsigned long v;

	/* Seven digits is enough to tell "too big" from "not a number". */
	if (parse_digits(s, n, 7, &v)) {
		if (n > 7 && strspn(s, "0123456789") >= n)
			return errf(err, len, "port %.*s out of range (1-65535)", (int)n, s);
		return errf(err, len, "bad port '%s': expected a port N or a range N-M", all);
	}
	if (v < 1 || v > 65535)
		return errf(err, len, "port %lu out of range (1-65535)", v);
	*out = (__u16)v;
	return 0;
}

int parse_port_range(const char *s, struct port_range *pr, char *err, size_t errlen)
{
	const char *dash;
	size_t n = strlen(s);

	if (has_ctrl(s))
		return errf(err, errlen, "bad port: contains a control character");
	if (!n)
		return errf(err, errlen, "missing port: expected a port N or a range N-M");
	dash = strchr(s, '-');
	if (!dash)
		dash = s + n;
	if (parse_port(s, (size_t)(dash - s), s, &pr->lo, err, errlen))
		return -EINVAL;
	if (!*dash) {
		pr->hi = pr->lo;
		return 0;
	}
	if (parse_port(dash + 1, strlen(dash + 1), s, &pr->hi, err, errlen))
		return -EINVAL;
	if (pr->lo > pr->hi)
		return errf(err, errlen, "bad port range '%s': %u is above %u", s, pr->lo, pr->hi);
	return 0;
}

/* --- upload_budget: a byte count ----------------------------------------- */

int parse_size(const char *s, __u64 *out, char *err, size_t errlen)
{
	static const struct {
		const char *unit;
		__u64 mult;
	} units[] = {
		{ "B", 1 },
		{ "KB", 1000ULL },	     { "MB", 1000ULL * 1000 },	  { "GB", 1000ULL * 1000 * 1000 },
		{ "KiB", 1ULL << 10 },	     { "MiB", 1ULL << 20 },	  { "GiB", 1ULL << 30 },
	};
	const char *p = s, *u;
	__u64 n = 0;
	size_t i;

	if (has_ctrl(s))
		return errf(err, errlen, "bad size: contains a control character");
	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (1ULL << 62) / 10)
			goto big;
		n = n * 10 + (__u64)(*p - '0');
	}
	for (u = p; *u == ' '; u++)
		;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(u, units[i].unit))
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		goto bad;
	if (n > (1ULL << 62) / units[i].mult)
		goto big;
	*out = n * units[i].mult;
	if (!*out)
		return errf(err, errlen, "size '%s' is 0: nothing could be sent (to refuse a "
					 "destination, write a deny rule)", s);
	return 0;
big:
	return errf(err, errlen, "size '%s' is too large (at most 4 EiB)", s);
bad:
	return errf(err, errlen, "bad size '%s': expected a whole number and a unit: B, KB, MB, "
				 "GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), such as 50MiB",
		    s);
}

static __u64 fnv(__u64 h, const void *data, size_t n)
{
	const unsigned char *b = data;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

__u64 policy_rule_ident(const struct policy_rule *r)
{
	__u64 h = fnv(1469598103934665603ULL, &r->kind, sizeof(r->kind));

	switch (r->kind) {
	case RULE_DOMAIN:
		h = fnv(h, &r->match, sizeof(r->match));
		return fnv(h, r->domain, strlen(r->domain));
	case RULE_CIDR_LIST:
		return fnv(h, r->list->name, strlen(r->list->name));
	default:
		h = fnv(h, &r->family, sizeof(r->family));
		h = fnv(h, &r->prefixlen, sizeof(r->prefixlen));
		return fnv(h, r->addr, sizeof(r->addr));
	}
}

/* --- common slips: a URL, a port or a path where a host belongs ---------- */

/* What a URL's scheme means for the port, when the URL names none. */
static unsigned long scheme_port(const char *scheme, size_t n)
{
	static const struct {
		const char *name;
		unsigned long port;
	} known[] = { { "http", 80 }, { "https", 443 }, { "ws", 80 },	 { "wss", 443 },
		      { "ftp", 21 },  { "ssh", 22 },	{ "git", 9418 } };
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == n && !strncasecmp(scheme, known[i].name, n))
			return known[i].port;
	return 0;
}

/* "scheme://": RFC 3986's ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). */
static size_t scheme_len(const char *s)
{
	size_t n;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return 0;
	n = 1 + strspn(s + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
	return strncmp(s + n, "://", 3) ? 0 : n;
}

/* The host and port of a URL's authority (userinfo dropped). */
static void url_host(const char *auth, size_t n, char *host, size_t hlen, unsigned long *port)
{
	const char *at = memchr(auth, '@', n), *end = auth + n, *colon;
	unsigned long p;

	if (at) {
		n -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	if (*auth == '[' && (colon = memchr(auth, ']', n))) {
		snprintf(host, hlen, "%.*s", (int)(colon - auth - 1), auth + 1);
		colon = colon + 1 < end && colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = memchr(auth, ':', n);
		snprintf(host, hlen, "%.*s", (int)((colon ? colon : end) - auth), auth);
	}
	if (colon && !parse_digits(colon + 1, (size_t)(end - colon - 1), 5, &p) && p >= 1 &&
	    p <= 65535)
		*port = p;
}

static bool is_addr(const char *s)
{
	struct policy_rule tmp;

	return !parse_addr(s, &tmp);
}

/* The key that takes HOST as it is, NULL if none does: a suggestion must
 * be a rule weir accepts ("ip: b" for https://a@b, "domain: *" for *:443,
 * "domain: [" for https://[::1 were not). */
static const char *valid_as(const char *host)
{
	struct policy_rule tmp = { 0 };
	char msg[POLICY_ERR_LEN];

	if (is_addr(host))
		return "ip";
	if (strchr(host, '/'))
		return parse_cidr(host, &tmp, msg, sizeof(msg)) ? NULL : "cidr";
	if (domain_parse(host, &tmp, msg, sizeof(msg)))
		return NULL;
	free(tmp.domain);
	return "domain";
}

/* What to write instead, for a file (key: domain, cidr, ip) or --allow (key NULL). */
static int suggest(const char *key, const char *host, unsigned long port, const char *what,
		   char *err, size_t len)
{
	bool v6 = strchr(host, ':') != NULL;
	const char *q = host[0] == '*' ? "\"" : "", *as = valid_as(host);

	if (!as && port)
		return errf(err, len, "%s; write the name or address alone, with ports: [%lu]",
			    what, port);
	if (!as)
		return errf(err, len, "%s; write the host name or address it names", what);
	if (key)
		key = as;
	if (!key && port)
		return errf(err, len, "%s; write %s%s%s:%lu", what, v6 ? "[" : "", host,
			    v6 ? "]" : "", port);
	if (!key)
		return errf(err, len, "%s; write %s (or %s%s%s:PORT for one port)", what, host,
			    v6 ? "[" : "", host, v6 ? "]" : "");
	if (port)
		return errf(err, len, "%s; write %s: %s%s%s with ports: [%lu]", what, key, q, host,
			    q, port);
	return errf(err, len, "%s; write %s: %s%s%s", what, key, q, host, q);
}

static int url_slip(const char *key, const char *s, size_t slen, char *err, size_t len)
{
	const char *auth = s + slen + 3;
	char host[DOMAIN_MAX + 3] = "", what[POLICY_ERR_LEN];
	unsigned long port = scheme_port(s, slen);

	url_host(auth, strcspn(auth, "/?#"), host, sizeof(host), &port);
	if (key)
		snprintf(what, sizeof(what), "%s '%s' is a URL, not a rule", key, s);
	else
		snprintf(what, sizeof(what), "a URL is not a rule");
	if (!*host || !valid_as(host))
		return errf(err, len, "%s; write the host name or address it names", what);
	return suggest(key, host, port, what, err, len);
}

/* "github.com:443" in a file: the port belongs in ports:. */
static int port_slip(const char *key, const char *s, char *err, size_t len)
{
	const char *colon = strrchr(s, ':');
	char host[DOMAIN_MAX + 3], what[POLICY_ERR_LEN];
	unsigned long port;
	size_t hl;

	if (!colon || parse_digits(colon + 1, strlen(colon + 1), 5, &port) || !port ||
	    port > 65535)
		return 0;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), s + 1);
	else if (!memchr(s, ':', hl) && hl < sizeof(host))
		snprintf(host, sizeof(host), "%.*s", (int)hl, s);
	else
		return 0; /* an unbracketed IPv6 address: its colons are its own */
	snprintf(what, sizeof(what), "%s '%s': a port does not go in the %s", key, s,
		 strcmp(key, "domain") ? "address" : "name");
	return suggest(key, host, port, what, err, len);
}

/* "web.test/path": a rule names a host; prefixes are for addresses. */
static int path_slip(const char *key, const char *s, char *err, size_t len)
{
	const char *slash = strchr(s, '/');
	char host[DOMAIN_MAX + 1], what[POLICY_ERR_LEN];
	size_t hl;

	if (!slash || slash == s || strchr(s, ':') || (size_t)(slash - s) >= sizeof(host))
		return 0;
	hl = (size_t)(slash - s);
	snprintf(host, sizeof(host), "%.*s", (int)hl, s);
	if (is_addr(host))
		return 0; /* a prefix: parse_cidr judges it */
	if (key)
		snprintf(what, sizeof(what), "%s '%s': a rule names a host, not a path", key, s);
	else
		snprintf(what, sizeof(what), "a rule names a host, not a path");
	return suggest(key, host, 0, what, err, len);
}

int rule_check_slip(const char *key, const char *s, char *err, size_t errlen)
{
	size_t n = scheme_len(s);

	if (n)
		return url_slip(key, s, n, err, errlen);
	if (key && !strcmp(key, "domain") && path_slip(key, s, err, errlen))
		return -EINVAL;
	if (!key && path_slip(key, s, err, errlen))
		return -EINVAL;
	if (key && port_slip(key, s, err, errlen))
		return -EINVAL;
	return 0;
}

/* "*." and "**." are the only wildcards; strip one and say which it was. */
static const char *strip_wildcard(const char *name, enum name_match *match)
{
	*match = NAME_EXACT;
	if (!strncmp(name, "**.", 3)) {
		*match = NAME_MANY;
		return name + 3;
	}
	if (!strncmp(name, "*.", 2)) {
		*match = NAME_ONE;
		return name + 2;
	}
	return name;
}

static bool label_char_ok(char c)
{
	/* '_' is not a host name character, but SRV-style and some CDN names
	 * use it and resolvers accept it. */
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int check_label(const char *orig, const char *l, size_t n, char *err, size_t len)
{
	size_t i;

	if (n == 0)
		return errf(err, len,
			    "domain '%s': empty label (a leading dot or two dots in a row)", orig);
	if (n > LABEL_MAX)
		return errf(err, len, "domain '%s': label '%.*s' is longer than %d characters",
			    orig, (int)n, l, LABEL_MAX);
	for (i = 0; i < n; i++) {
		if ((unsigned char)l[i] >= 0x80)
			return errf(err, len,
				    "domain '%s': non-ASCII character; write the name in its "
				    "xn-- (punycode) form",
				    orig);
		if (!label_char_ok(l[i]))
			return errf(err, len, "domain '%s': invalid character '%c' in label '%.*s'",
				    orig, l[i], (int)n, l);
	}
	if (l[0] == '-' || l[n - 1] == '-')
		return errf(err, len, "domain '%s': label '%.*s' starts or ends with '-'", orig,
			    (int)n, l);
	return 0;
}

/* Check every label of NAME (lower case, no wildcard); count them. */
static int check_labels(const char *orig, const char *name, size_t *nlabels, char *err,
			size_t len)
{
	const char *l = name, *dot;

	*nlabels = 0;
	for (;;) {
		dot = strchr(l, '.');
		if (check_label(orig, l, dot ? (size_t)(dot - l) : strlen(l), err, len))
			return -EINVAL;
		(*nlabels)++;
		if (!dot)
			break;
		l = dot + 1;
	}
	/* No top-level domain is all digits; such a "name" is a typo'd address
	 * that would otherwise go to DNS. */
	if (strspn(l, "0123456789") == strlen(l))
		return errf(err, len,
			    "domain '%s': the last label '%s' is all digits; not a host name "
			    "(for an address use ip: or cidr:)",
			    orig, l);
	return 0;
}

static int check_name(const char *orig, const char *base, enum name_match match, char *err,
		      size_t len)
{
	size_t nlabels;

	if (strchr(base, '*'))
		return errf(err, len,
			    "domain '%s': a wildcard must be the whole first label ('*.' or '**.')",
			    orig);
	if (check_labels(orig, base, &nlabels, err, len))
		return -EINVAL;
	if (strlen(base) > DOMAIN_MAX)
		return errf(err, len, "domain '%s': name longer than %d characters", orig,
			    DOMAIN_MAX);
	if (match != NAME_EXACT && nlabels < 2)
		return errf(err, len,
			    "domain '%s': too broad: a wildcard needs at least two labels after it "
			    "(as in '*.example.com')",
			    orig);
	return 0;
}

int domain_parse(const char *s, struct policy_rule *r, char *err, size_t errlen)
{
	struct policy_rule tmp;
	enum name_match match;
	const char *base;
	char *name;
	size_t i, n;

	if (has_ctrl(s))
		return errf(err, errlen, "domain: name contains a control character");
	if (!*s)
		return errf(err, errlen, "domain: empty name");
	if (!parse_addr(s, &tmp))
		return errf(err, errlen, "domain '%s' is an IP address; write it as ip: %s", s, s);
	name = strdup(s);
	if (!name) {
		errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n = strlen(name);
	for (i = 0; i < n; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
			name[i] = (char)(name[i] - 'A' + 'a');
	if (name[n - 1] == '.')
		name[n - 1] = '\0';
	base = strip_wildcard(name, &match);
	if (check_name(s, base, match, err, errlen)) {
		free(name);
		return -EINVAL;
	}
	memmove(name, base, strlen(base) + 1);
	r->kind = RULE_DOMAIN;
	r->domain = name;
	r->match = match;
	return 0;
}

/* Is the part of a name in front of a wildcard's base what MATCH allows? */
static bool prefix_ok(const char *p, size_t n, enum name_match match)
{
	size_t i;

	if (n == 0 || p[0] == '.')
		return false;
	if (match == NAME_ONE)
		return !memchr(p, '.', n);
	/* NAME_MANY: one or more labels, none of them empty. */
	for (i = 0; i < n; i++)
		if (p[i] == '.' && (i + 1 == n || p[i + 1] == '.'))
			return false;
	return true;
}

bool domain_match(const char *domain, enum name_match match, const char *name)
{
	size_t dl, nl, pl;

	if (!domain || !name || !*domain)
		return false;
	dl = strlen(domain);
	nl = strlen(name);
	if (nl && name[nl - 1] == '.')
		nl--;
	if (match == NAME_EXACT)
		return nl == dl && !strncasecmp(name, domain, dl);
	/* At least "x." in front of the base. */
	if (nl < dl + 2)
		return false;
	pl = nl - dl - 1;
	if (name[pl] != '.' || strncasecmp(name + pl + 1, domain, dl))
		return false;
	return prefix_ok(name, pl, match);
}

void policy_rule_name(__u32 rule_id, char *buf, size_t len)
{
	__u32 idx = WEIR_RULE_IDX(rule_id);

	switch (WEIR_RULE_KIND(rule_id)) {
	case WEIR_RK_NONE:
		snprintf(buf, len, "default");
		break;
	case WEIR_RK_ALLOW:
		snprintf(buf, len, "allow[%u]", idx);
		break;
	case WEIR_RK_DENY:
		snprintf(buf, len, "deny[%u]", idx);
		break;
	case WEIR_RK_ARG:
		snprintf(buf, len, "--allow[%u]", idx);
		break;
	case WEIR_RK_LOOPBACK:
		snprintf(buf, len, "loopback");
		break;
	case WEIR_RK_METADATA:
		snprintf(buf, len, "metadata");
		break;
	case WEIR_RK_INBOUND:
		snprintf(buf, len, "inbound[%u]", idx);
		break;
	case WEIR_RK_INBOUND_DEFAULT:
		snprintf(buf, len, "inbound-loopback");
		break;
	case WEIR_RK_INBOUND_ANY:
		snprintf(buf, len, "inbound-any");
		break;
	case WEIR_RK_UNIX:
		snprintf(buf, len, "unix[%u]", idx);
		break;
	case WEIR_RK_UNIX_BUILTIN:
		snprintf(buf, len, "unix-builtin");
		break;
	default:
		snprintf(buf, len, "rule#0x%x", rule_id);
		break;
	}
}
