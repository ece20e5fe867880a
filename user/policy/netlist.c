// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `cidr_list: FILE` (docs/policy.md, "Big lists"): a file of addresses and
 * prefixes, one a line. Threat-intel lists run to a million lines, so the
 * file is read here line by line, not through libyaml, and IPv4 (nearly
 * all of such lists) is parsed by hand.
 *
 * Accepted, line by line:
 *   192.0.2.0/24, 192.0.2.7, 2001:db8::/32   an address or a prefix
 *   # ..., ; ...                              comments (also after an entry:
 *                                             FireHOL netsets, Spamhaus DROP)
 *   add SET 192.0.2.0/24 [timeout 600 ...]    `ipset save` entries (every
 *                                             set in the file: a file is one list)
 *   create SET hash:net|hash:ip ...           `ipset save` set headers: the type
 *                                             is checked, the rest ignored
 * Anything else (ipset del/flush/swap, nomatch entries, port or interface
 * sets, ranges) is an error naming FILE:LINE: weir does not guess what a
 * line it cannot represent was meant to do.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "netlist.h"
#include "sha256.h"

struct lp {
	const char *name; /* the list file, for messages */
	size_t line;
	char *err;
	size_t errlen;
	struct list_prefix *v;
	size_t n, cap;
};

static int lfail(struct lp *lp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "FILE:LINE: what is wrong" */
static int lfail(struct lp *lp, const char *fmt, ...)
{
	va_list ap;
	int off;

	off = snprintf(lp->err, lp->errlen, "%s:%zu: ", lp->name, lp->line);
	if (off < 0 || (size_t)off >= lp->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(lp->err + off, lp->errlen - (size_t)off, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

bool netlist_parse_v4(const char *s, size_t n, __u8 *out)
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned int v = 0, dig = 0;

		if (part && (i >= n || s[i++] != '.'))
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (dig && !v)
				return false; /* leading zero */
			v = v * 10 + (unsigned int)(s[i++] - '0');
			if (++dig > 3 || v > 255)
				return false;
		}
		if (!dig)
			return false;
		out[part] = (__u8)v;
	}
	return i == n;
}

static bool host_bits_clear(const __u8 *a, unsigned int plen)
{
	unsigned int i;

	for (i = plen / 8; i < 16; i++) {
		__u8 mask = i == plen / 8 ? (__u8)(0xff >> (plen % 8)) : 0xff;

		if (a[i] & mask)
			return false;
	}
	return true;
}

static int push(struct lp *lp, const struct list_prefix *p)
{
	struct list_prefix *v;

	if (lp->n == lp->cap) {
		size_t cap = lp->cap ? lp->cap * 2 : 1024;

		v = realloc(lp->v, cap * sizeof(*v));
		if (!v) {
			snprintf(lp->err, lp->errlen, "%s: out of memory", lp->name);
			return -ENOMEM;
		}
		lp->v = v;
		lp->cap = cap;
	}
	lp->v[lp->n++] = *p;
	return 0;
}

/* One address or prefix, TOK[0..n). */
static int parse_entry(struct lp *lp, const char *tok, size_t n)
{
	static const __u8 mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct list_prefix p = {};
	const char *slash = memchr(tok, '/', n);
	size_t alen = slash ? (size_t)(slash - tok) : n;
	char a[INET6_ADDRSTRLEN];
	unsigned int plen = 0, max, dig = 0;
	size_t i;

	if (netlist_parse_v4(tok, alen, p.addr)) {
		p.family = AF_INET;
	} else if (alen < sizeof(a) && memchr(tok, ':', alen)) {
		memcpy(a, tok, alen);
		a[alen] = '\0';
		if (inet_pton(AF_INET6, a, p.addr) != 1)
			return lfail(lp, "'%.*s' is not an IPv4 or IPv6 address or prefix",
				     (int)(n > 64 ? 64 : n), tok);
		p.family = AF_INET6;
	} else if (memchr(tok, '-', n)) {
		return lfail(lp, "'%.*s': address ranges are not supported; write prefixes",
			     (int)(n > 64 ? 64 : n), tok);
	} else {
		return lfail(lp, "'%.*s' is not an IPv4 or IPv6 address or prefix",
			     (int)(n > 64 ? 64 : n), tok);
	}
	max = p.family == AF_INET ? 32 : 128;
	plen = max;
	if (slash) {
		plen = 0;
		for (i = alen + 1; i < n && tok[i] >= '0' && tok[i] <= '9' && dig < 4; i++, dig++)
			plen = plen * 10 + (unsigned int)(tok[i] - '0');
		if (!dig || i != n || plen > max || (dig > 1 && tok[alen + 1] == '0'))
			return lfail(lp, "'%.*s': prefix length must be 0..%u",
				     (int)(n > 64 ? 64 : n), tok, max);
	}
	if (!host_bits_clear(p.addr, plen))
		return lfail(lp, "%.*s has host bits set", (int)(n > 64 ? 64 : n), tok);
	/* The kernel judges IPv4-mapped destinations by the IPv4 rules (a
	 * mapped prefix shorter than /96 has host bits set: refused above). */
	if (p.family == AF_INET6 && plen >= 96 && !memcmp(p.addr, mapped, 12)) {
		memmove(p.addr, p.addr + 12, 4);
		memset(p.addr + 4, 0, 12);
		p.family = AF_INET;
		plen -= 96;
	}
	p.plen = (__u8)plen;
	return push(lp, &p);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The next whitespace-separated word of [*s, end), or 0 at the end. */
static size_t word(const char **s, const char *end)
{
	const char *b = *s, *e;

	while (b < end && is_space(*b))
		b++;
	for (e = b; e < end && !is_space(*e); e++)
		;
	*s = b;
	return (size_t)(e - b);
}

static bool word_is(const char *w, size_t n, const char *s)
{
	return strlen(s) == n && !memcmp(w, s, n);
}

/* `create SET TYPE ...`: only sets of plain addresses or prefixes. */
static int ipset_create(struct lp *lp, const char *s, const char *end)
{
	size_t n = word(&s, end);

	s += n;
	n = word(&s, end);
	if (word_is(s, n, "hash:net") || word_is(s, n, "hash:ip") || word_is(s, n, "bitmap:ip"))
		return 0;
	return lfail(lp, "ipset type '%.*s' is not supported (only hash:ip, hash:net and "
			 "bitmap:ip sets: addresses and prefixes)", (int)(n > 64 ? 64 : n), s);
}

/* `add SET ENTRY [OPTION ...]`: options such as timeout do not change
 * what the entry is, except nomatch (an exception weir cannot express). */
static int ipset_add(struct lp *lp, const char *s, const char *end)
{
	const char *entry, *o;
	size_t n = word(&s, end), en;

	s += n;
	en = word(&s, end);
	entry = s;
	if (!en)
		return lfail(lp, "ipset add without an entry");
	if (memchr(entry, ',', en))
		return lfail(lp, "'%.*s': ipset entries with ports or interfaces are not "
				 "supported", (int)(en > 64 ? 64 : en), entry);
	for (o = entry + en; (n = word(&o, end)); o += n)
		if (word_is(o, n, "nomatch"))
			return lfail(lp, "ipset 'nomatch' entries (exceptions) are not supported");
	return parse_entry(lp, entry, en);
}

/* The list is not NUL-terminated (a mapped file): no str*() on it. */
static bool all_lower(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < 'a' || s[i] > 'z')
			return false;
	return true;
}

static int parse_line(struct lp *lp, const char *s, const char *end)
{
	const char *c;
	size_t n;

	/* Comments: '#' anywhere, ';' too (Spamhaus DROP: "192.0.2.0/24 ; SBL1"). */
	for (c = s; c < end && *c != '#' && *c != ';'; c++)
		if ((unsigned char)*c < 0x20 && !is_space(*c))
			return lfail(lp, "control character 0x%02x (expected text)",
				     (unsigned char)*c);
	end = c;
	n = word(&s, end);
	if (!n)
		return 0;
	if (word_is(s, n, "add"))
		return ipset_add(lp, s + n, end);
	if (word_is(s, n, "create"))
		return ipset_create(lp, s + n, end);
	if (all_lower(s, n) && s + n < end &&
	    word(&(const char *){ s + n }, end))
		return lfail(lp, "ipset command '%.*s' is not supported (a list is a set: only "
				 "create and add lines)", (int)(n > 16 ? 16 : n), s);
	if (s + n < end && word(&(const char *){ s + n }, end))
		return lfail(lp, "expected one address or prefix per line, got '%.*s'",
			     (int)(end - s > 64 ? 64 : end - s), s);
	if (!memchr(s, '.', n) && !memchr(s, ':', n) && (s[0] < '0' || s[0] > '9'))
		return lfail(lp, "'%.*s' is not an address, a prefix or an ipset add/create "
				 "line", (int)(n > 64 ? 64 : n), s);
	return parse_entry(lp, s, n);
}

/*
 * Transparent huge pages asked for over the untouched array P of LEN bytes
 * (4 MiB or more): a page fault per 2 MiB, not per 4 KiB. Faults are dear
 * in virtual machines (here about 12 us each: 3 ms for each fresh MB), and
 * a million-prefix policy fills a few hundred MB of fresh arrays between
 * its text and the maps. A hint; nothing changes for small arrays.
 */
void hint_huge(void *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + (2UL << 20) - 1) & ~((2UL << 20) - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~((2UL << 20) - 1);

	if (len >= (4UL << 20) && e > a)
		madvise((void *)a, e - a, MADV_HUGEPAGE);
}

/*
 * The line nearly every line of a big list is: a dotted quad, maybe a
 * /length, then the newline. Read here without looking at it twice;
 * anything else (spaces, comments, a bad number, IPv6) returns 0 and goes
 * through parse_line(), which accepts exactly what this does and more.
 * Returns the bytes taken, newline included.
 */
static size_t fast_v4(const char *s, const char *end, struct list_prefix *p)
{
	const char *b = s;
	unsigned int v, plen = 32, part;
	__u32 a = 0;

	for (part = 0; part < 4; part++) {
		if (part && (s >= end || *s++ != '.'))
			return 0;
		if (s >= end || *s < '0' || *s > '9')
			return 0;
		v = (unsigned int)(*s++ - '0');
		if (v && s < end && *s >= '0' && *s <= '9') {
			v = v * 10 + (unsigned int)(*s++ - '0');
			if (s < end && *s >= '0' && *s <= '9')
				v = v * 10 + (unsigned int)(*s++ - '0');
		}
		if (v > 255 || (s < end && *s >= '0' && *s <= '9'))
			return 0; /* too big, four digits, or a leading zero */
		a = a << 8 | v;
	}
	if (s < end && *s == '/') {
		s++;
		if (s >= end || *s < '0' || *s > '9')
			return 0;
		plen = (unsigned int)(*s++ - '0');
		if (plen && s < end && *s >= '0' && *s <= '9')
			plen = plen * 10 + (unsigned int)(*s++ - '0');
		if (plen > 32 || (s < end && *s >= '0' && *s <= '9'))
			return 0;
		if (plen < 32 && (a & (0xffffffffu >> plen)))
			return 0; /* host bits set: parse_line() says so */
	}
	if (s < end && *s != '\n')
		return 0;
	p->family = AF_INET;
	p->plen = (__u8)plen;
	memset(p->addr, 0, sizeof(p->addr));
	a = htonl(a);
	memcpy(p->addr, &a, 4);
	return (size_t)(s - b) + (s < end);
}

int netlist_parse(const char *name, const char *buf, size_t len, struct list_prefix **out,
		  size_t *n, char *err, size_t errlen)
{
	struct lp lp = { .name = name, .err = err, .errlen = errlen };
	const char *s = buf, *end = buf + len, *nl;
	int ret = 0;

	*out = NULL;
	*n = 0;
	/* Room for about one entry per 12 bytes (a FireHOL list has ~14 a
	 * line): a million entries without regrowing, and copying, the array. */
	if (len >= (1 << 20)) {
		lp.cap = len / 12;
		lp.v = malloc(lp.cap * sizeof(*lp.v));
		if (!lp.v) {
			snprintf(err, errlen, "%s: out of memory", name);
			return -ENOMEM;
		}
		hint_huge(lp.v, lp.cap * sizeof(*lp.v));
	}
	while (s < end && !ret) {
		if (lp.n < lp.cap) {
			size_t took = fast_v4(s, end, &lp.v[lp.n]);

			if (took) {
				lp.n++;
				lp.line++;
				s += took;
				continue;
			}
		}
		nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			nl = end;
		lp.line++;
		if (memchr(s, '\0', (size_t)(nl - s)))
			ret = lfail(&lp, "NUL byte (expected text)");
		else
			ret = parse_line(&lp, s, nl);
		s = nl + 1;
	}
	if (ret) {
		free(lp.v);
		return ret;
	}
	*out = lp.v;
	*n = lp.n;
	return 0;
}

static netlist_open_fn open_fn;

void netlist_set_open(netlist_open_fn fn)
{
	open_fn = fn;
}

/* PATH as the policy names it: relative to the policy file's directory. */
static int list_path(const char *policy, const char *path, char *buf, size_t len)
{
	const char *slash = policy ? strrchr(policy, '/') : NULL;
	int w;

	if (path[0] == '/' || !slash)
		w = snprintf(buf, len, "%s", path);
	else
		w = snprintf(buf, len, "%.*s/%s", (int)(slash - policy), policy, path);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

/* SHA-256 of the list's bytes: OpenSSL's (SHA extensions where the CPU
 * has them: a 20 MB list in ~15 ms, where ldns' portable code took ~150). */
static int list_sha256(const void *buf, size_t len, unsigned char out[32])
{
	weir_sha256(buf, len, out);
	return 0;
}

int netlist_load(const char *policy, const char *path, struct list_prefix **out, size_t *n,
		 struct netlist_file *file, char *err, size_t errlen)
{
	char full[4096];
	struct stat st;
	void *map;
	int fd, ret;

	*out = NULL;
	*n = 0;
	if (list_path(policy, path, full, sizeof(full))) {
		snprintf(err, errlen, "cidr_list: path too long");
		return -ENAMETOOLONG;
	}
	if (file) {
		file->path = strdup(full);
		if (!file->path) {
			snprintf(err, errlen, "cidr_list: out of memory");
			return -ENOMEM;
		}
		list_sha256("", 0, file->sha256);
	}
	if (open_fn) {
		fd = open_fn(full, err, errlen);
		if (fd < 0)
			return fd;
	} else {
		fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "cidr_list: cannot open %s: %s", full,
				 strerror(-ret));
			return ret;
		}
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "cidr_list: %s is not a regular file", full);
		return -EINVAL;
	}
	if ((unsigned long long)st.st_size > NETLIST_MAX_SIZE) {
		close(fd);
		snprintf(err, errlen, "cidr_list: %s is larger than %llu bytes", full,
			 (unsigned long long)NETLIST_MAX_SIZE);
		return -EFBIG;
	}
	if (!st.st_size) {
		close(fd);
		return 0;
	}
	/* Mapped, not read: a 20 MB list is parsed where the page cache has it
	 * (mapped in one go: a page fault per 4 KiB was a tenth of a big load). */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		ret = -errno;
		snprintf(err, errlen, "cidr_list: cannot read %s: %s", full, strerror(-ret));
		return ret;
	}
	ret = file ? list_sha256(map, (size_t)st.st_size, file->sha256) : 0;
	if (ret)
		snprintf(err, errlen, "cidr_list: cannot hash %s", full);
	else
		ret = netlist_parse(full, map, (size_t)st.st_size, out, n, err, errlen);
	munmap(map, (size_t)st.st_size);
	return ret;
}
