// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Big inline rule lists (user/policy/fastseq.h): a top-level `allow:` or
 * `deny:` followed by thousands of lines of one shape,
 *
 *   allow:
 *     - ip: 192.0.2.7
 *     - cidr: 198.51.100.0/24   # a comment
 *
 * is read here, line by line, instead of as libyaml's node tree (a node,
 * a token and a malloc'd string per value: 3.4 s of a 1M-rule policy's
 * 4.6 s load). What is read must be exactly what libyaml would build, so
 * the shape is narrow and anything else ends the run. The run's lines are
 * then emptied (newlines kept, so every line number after them stays
 * right) and libyaml reads the rest; policy.c checks that it found the
 * key on that line in the root block mapping with an empty value, and
 * puts these rules there. Any doubt, any error: the caller parses the
 * original text the ordinary way, which says what is wrong.
 *
 * Why emptying cannot change the meaning of the rest: up to the key's
 * line both texts are the same bytes, so libyaml is in the same state
 * there; the run ends at the end of the text or at a line starting in
 * column 0 (the next top-level key), where the run's block sequence ends
 * in one text and the empty value in the other, back in the root mapping.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "fastseq.h"
#include "netlist.h"

size_t fastseq_min_rules = FASTSEQ_MIN_RULES;

static bool is_val_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       c == '.' || c == ':' || c == '/';
}

/* The end of the line starting at s (its '\n', or end). */
static const char *eol(const char *s, const char *end)
{
	const char *nl = memchr(s, '\n', (size_t)(end - s));

	return nl ? nl : end;
}

/* Printable ASCII only: what a run's line may hold, comments included
 * (libyaml's reader refuses control characters anywhere, and reads
 * other bytes as UTF-8 it checks: a run leaves both to it). */
static bool printable(const char *s, const char *e)
{
	for (; s < e; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* Spaces, then the end of the line or a comment. */
static bool rest_blank(const char *s, const char *e)
{
	while (s < e && *s == ' ')
		s++;
	return s == e || *s == '#';
}

/* `KEY:` alone on a line in column 0 (a comment may follow a space). */
static bool key_line(const char *s, const char *e, const char *key)
{
	size_t n = strlen(key);

	if ((size_t)(e - s) < n + 1 || memcmp(s, key, n) || s[n] != ':')
		return false;
	s += n + 1;
	return s == e || (*s == ' ' && rest_blank(s, e));
}

/* A dotted quad, each part 0..255 without leading zeros (inet_pton's rules). */
/*
 * `ip: A.B.C.D` or `cidr: A.B.C.D/N` (N without a leading zero, host bits
 * clear) as policy.c's parse_ip() and rule.c's parse_cidr() make them; false for
 * anything else, which those functions then read (IPv6, odd spellings).
 */
static bool fast_v4(bool cidr, const char *v, size_t n, struct policy_rule *r)
{
	const char *slash = cidr ? memchr(v, '/', n) : NULL;
	unsigned int plen = 32;
	__u32 a;
	size_t i;

	if (cidr && !slash)
		return false;
	if (!netlist_parse_v4(v, slash ? (size_t)(slash - v) : n, r->addr))
		return false;
	if (slash) {
		i = (size_t)(slash - v) + 1;
		if (i >= n || n - i > 2 || (n - i == 2 && v[i] == '0'))
			return false;
		for (plen = 0; i < n; i++) {
			if (v[i] < '0' || v[i] > '9')
				return false;
			plen = plen * 10 + (unsigned int)(v[i] - '0');
		}
		if (plen > 32)
			return false;
		memcpy(&a, r->addr, 4);
		if (plen < 32 && (ntohl(a) & (0xffffffffu >> plen)))
			return false;
	}
	r->kind = RULE_CIDR;
	r->family = AF_INET;
	r->prefixlen = (__u8)plen;
	return true;
}

/* One value, as policy.c's load_target() would read it. */
static int read_value(bool cidr, const char *v, size_t n, struct policy_rule *r)
{
	char s[INET6_ADDRSTRLEN + 8], msg[POLICY_ERR_LEN];

	if (fast_v4(cidr, v, n, r))
		return 0;
	if (n >= sizeof(s))
		return -EINVAL;
	memcpy(s, v, n);
	s[n] = '\0';
	memset(r, 0, sizeof(*r));
	if (rule_check_slip(cidr ? "cidr" : "ip", s, msg, sizeof(msg)))
		return -EINVAL;
	return cidr ? parse_cidr(s, r, msg, sizeof(msg)) : parse_ip(s, r, msg, sizeof(msg));
}

/*
 * An item line: INDENT spaces, "- ip: " or "- cidr: " (more spaces may
 * follow the colon), a value of address characters, then spaces and maybe
 * a comment. *indent is the run's (set by its first item). 1: an item in
 * *r; 0: not one; <0: its value does not parse (the ordinary way says why).
 */
static int item_line(const char *s, const char *e, size_t *indent, bool first,
		     struct policy_rule *r)
{
	const char *b = s, *v;
	unsigned int col;
	bool cidr;

	while (s < e && *s == ' ')
		s++;
	if (first)
		*indent = (size_t)(s - b);
	else if ((size_t)(s - b) != *indent)
		return 0;
	if (e - s < 4 || s[0] != '-' || s[1] != ' ')
		return 0;
	col = (unsigned int)(s - b) + 3; /* the mapping starts at its key */
	s += 2;
	if (e - s > 3 && !memcmp(s, "ip:", 3)) {
		cidr = false;
		s += 3;
	} else if (e - s > 5 && !memcmp(s, "cidr:", 5)) {
		cidr = true;
		s += 5;
	} else {
		return 0;
	}
	if (s >= e || *s != ' ')
		return 0;
	while (s < e && *s == ' ')
		s++;
	for (v = s; s < e && is_val_char(*s); s++)
		;
	/* A value ending in ':' would be a key; a space must come before a
	 * comment; nothing else may follow. */
	if (s == v || s[-1] == ':' || (s < e && *s != ' ') || !rest_blank(s, e))
		return 0;
	if (read_value(cidr, v, (size_t)(s - v), r))
		return -EINVAL;
	r->col = col;
	r->protos = WEIR_P_ANY; /* no ports, no proto: policy.c's any_protos() */
	return 1;
}

/*
 * How many rules the run from s on can have: its lines are items, blank
 * lines and comments (it ends at the first line starting, after spaces,
 * with anything else), and only "- " lines of 7 bytes or more ("- ip: X")
 * can be items. One more: the slot next_rule() clears for a line that is
 * none. So the array is allocated once and asks for huge pages (a million
 * rules are 88 MB: grown by realloc() they were copied, and as 4 KiB pages
 * each was a fault of its own). It stops where the run must: every
 * `allow:` line may start one, and counting the whole text after each
 * made a file of such lines quadratic.
 */
static size_t run_room(const char *s, const char *end)
{
	const char *e, *t;
	size_t n = 1;

	while (s < end) {
		e = eol(s, end);
		for (t = s; t < e && *t == ' '; t++)
			;
		if (t < e && *t != '-' && *t != '#')
			break;
		n += e - t >= 7 && t[0] == '-' && t[1] == ' ';
		s = e + 1;
	}
	return n;
}

/* false when there is no memory for it: then no run is read here (the
 * ordinary parse reads the text, and says what it says). */
static bool alloc_rules(const char *s, const char *end, struct fastseq_run *run, size_t *cap)
{
	*cap = run_room(s, end);
	run->rules = malloc(*cap * sizeof(*run->rules));
	if (!run->rules)
		return false;
	hint_huge(run->rules, *cap * sizeof(*run->rules));
	return true;
}

/* The next rule of the run, zeroed (alloc_rules() made room for it). */
static struct policy_rule *next_rule(struct fastseq_run *run)
{
	memset(&run->rules[run->n], 0, sizeof(run->rules[0]));
	return &run->rules[run->n];
}

/*
 * The run from *sp (line *line, 0-based): its rules, and in *sp and *line
 * the line that ended it. 1: a run that may be taken; 0: none (it does not
 * end at a column-0 line or the end, has too few rules, or there is no memory
 * for them); or -EINVAL for a value that does not parse.
 */
static int read_run(const char **sp, const char *end, size_t *line, struct fastseq_run *run)
{
	const char *s = *sp, *e;
	size_t indent = 0, cap;
	int ret;

	if (!alloc_rules(s, end, run, &cap))
		return 0;
	for (; s < end && run->n < cap; s = e < end ? e + 1 : end, (*line)++) {
		struct policy_rule *r = next_rule(run);

		e = eol(s, end);
		if (!printable(s, e))
			break; /* libyaml refuses some bytes even in comments */
		ret = item_line(s, e, &indent, run->n == 0, r);
		if (ret < 0)
			return ret;
		if (ret) {
			r->line = (unsigned int)*line + 1;
			run->n++;
			continue;
		}
		if (rest_blank(s, e)) /* empty, spaces, a comment */
			continue;
		break;
	}
	*sp = s;
	/* The next top-level key, or the end; never a '-' (a sequence the
	 * run would then be part of) or an indented line (part of an item). */
	if (s < end && (*s == ' ' || *s == '-'))
		return 0;
	return run->n >= fastseq_min_rules && run->n > 0;
}

/*
 * Line breaks libyaml counts besides '\n' and '\r': NEL (U+0085), LS
 * (U+2028), PS (U+2029), in UTF-8. With one of them in the text, the
 * lines counted here would not be libyaml's, and a run could be matched
 * to a key on another line than its own.
 */
static bool other_breaks(const char *buf, size_t len)
{
	const char *s, *end = buf + len;

	/* memchr() for their lead bytes: three memmem() passes were a tenth
	 * of a million-rule policy's parse */
	for (s = buf; (s = memchr(s, 0xc2, (size_t)(end - s))); s++)
		if (end - s >= 2 && s[1] == '\x85')
			return true;
	for (s = buf; (s = memchr(s, 0xe2, (size_t)(end - s))); s++)
		if (end - s >= 3 && s[1] == '\x80' && (s[2] == '\xa8' || s[2] == '\xa9'))
			return true;
	return false;
}

int fastseq_scan(const char *buf, size_t len, struct fastseq *out)
{
	static const char *const keys[] = { "allow", "deny" };
	const char *s = buf, *end = buf + len, *e, *copied = buf, *after;
	size_t line = 0, o = 0, k, at;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (memchr(buf, '\r', len) || memchr(buf, '\t', len) || other_breaks(buf, len))
		return 0; /* line ends and tabs of other kinds: the ordinary way */
	while (s < end && out->nruns < FASTSEQ_RUNS) {
		struct fastseq_run *run = &out->runs[out->nruns];

		e = eol(s, end);
		for (k = 0; k < 2 && !key_line(s, e, keys[k]); k++)
			;
		if (k == 2 || e == end) {
			s = e < end ? e + 1 : end;
			line++;
			continue;
		}
		after = e + 1;
		at = line + 1;
		ret = read_run(&after, end, &at, run);
		if (ret <= 0) {
			free(run->rules);
			memset(run, 0, sizeof(*run));
			if (ret < 0)
				break;
			s = e + 1;
			line++;
			continue;
		}
		run->which = (int)k;
		run->key_line = line;
		if (!out->text && !(out->text = malloc(len + 1))) {
			ret = -ENOMEM;
			break;
		}
		/* the text up to the run, then only its newlines: one a line,
		 * but for a last line the text ends in without one */
		memcpy(out->text + o, copied, (size_t)(e + 1 - copied));
		o += (size_t)(e + 1 - copied);
		k = at - line - 1 - (after == end && after > e + 1 && end[-1] != '\n');
		memset(out->text + o, '\n', k);
		o += k;
		copied = after;
		out->nruns++;
		s = after;
		line = at;
	}
	if (ret < 0 || !out->nruns) {
		fastseq_free(out);
		return ret == -ENOMEM ? ret : 0;
	}
	memcpy(out->text + o, copied, (size_t)(end - copied));
	out->len = o + (size_t)(end - copied);
	return 1;
}

void fastseq_free(struct fastseq *f)
{
	size_t i;

	for (i = 0; i < FASTSEQ_RUNS; i++)
		free(f->runs[i].rules);
	free(f->text);
	memset(f, 0, sizeof(*f));
}
