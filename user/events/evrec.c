// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>

#include "evrec.h"

static const char hex[] = "0123456789abcdef";

static bool plain(unsigned char c)
{
	return c >= 0x20 && c != '"' && c != '\\';
}

size_t evrec_json_str(char *out, size_t len, const char *s)
{
	size_t n = strlen(s), o = 0, i;
	/* Room for every byte escaped: no check a byte (the hot path, a
	 * decision's JSON line of a few hundred bytes in EVREC_LINE_MAX). */
	bool roomy = len >= 3 && n <= (len - 3) / 6;

	if (len < 3)
		return 0;
	out[o++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (!roomy && o + 8 > len) /* the longest escape, the quote, the NUL */
			return 0;
		if (plain(c)) {
			out[o++] = c;
		} else if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = c;
		} else {
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[c >> 4];
			out[o + 5] = hex[c & 15];
			o += 6;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return o;
}

/* ,"KEY":VALUE at *POS: false when it does not fit. */
static bool put_field(char *buf, size_t len, size_t *pos, const char *key, const char *val)
{
	size_t k = strlen(key), n;

	if (*pos + k + 4 >= len)
		return false;
	buf[(*pos)++] = ',';
	buf[(*pos)++] = '"';
	memcpy(buf + *pos, key, k);
	*pos += k;
	buf[(*pos)++] = '"';
	buf[(*pos)++] = ':';
	n = evrec_json_str(buf + *pos, len - *pos, val);
	*pos += n;
	return n > 0;
}

size_t evrec_encode(char *buf, size_t len, const struct weir_event *e, const char *domain,
		    const char *json, const char *human)
{
	static const char head[] = "{\"t\":\"event\",\"raw\":\"";
	const unsigned char *b = (const unsigned char *)e;
	size_t i, pos = sizeof(head) - 1;

	if (pos + 2 * sizeof(*e) + 1 >= len)
		return 0;
	memcpy(buf, head, pos);
	for (i = 0; i < sizeof(*e); i++) {
		buf[pos++] = hex[b[i] >> 4];
		buf[pos++] = hex[b[i] & 15];
	}
	buf[pos++] = '"';
	if ((domain && !put_field(buf, len, &pos, "domain", domain)) ||
	    (json && !put_field(buf, len, &pos, "json", json)) ||
	    (human && !put_field(buf, len, &pos, "human", human)) || pos + 2 > len)
		return 0;
	buf[pos++] = '}';
	buf[pos] = '\0';
	return pos;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2 * LEN hex digits into OUT. */
static bool unhex(const char *s, size_t n, void *out, size_t len)
{
	unsigned char *b = out;
	int hi, lo;
	size_t i;

	if (n != 2 * len)
		return false;
	for (i = 0; i < len; i++) {
		hi = hexval(s[2 * i]);
		lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		b[i] = hi << 4 | lo;
	}
	return true;
}

/* The escape at S (past its backslash) as one byte, or -1: a \uXXXX
 * other than ASCII (or a NUL) is for a JSON parser to judge. */
static int unescape_one(const char *s, const char *end, size_t *used)
{
	int c, d;

	*used = 1;
	switch (*s) {
	case '"':
	case '\\':
	case '/':
		return *s;
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'u':
		if (end - s < 5 || hexval(s[1]) || hexval(s[2]))
			return -1;
		c = hexval(s[3]);
		d = hexval(s[4]);
		if (c < 0 || c > 7 || d < 0 || !(c | d))
			return -1;
		*used = 5;
		return c << 4 | d;
	default:
		return -1;
	}
}

/* The JSON string at *P (past its opening quote) into OUT (CAP bytes, NUL
 * terminated), *P then past its closing quote. */
static bool unescape(const char **p, const char *end, char *out, size_t cap, size_t *n)
{
	const char *s = *p;
	size_t o = 0, used;
	int c;

	while (s < end && *s != '"') {
		if (o + 1 >= cap)
			return false;
		if (*s != '\\') {
			out[o++] = *s++;
			continue;
		}
		if (++s >= end || (c = unescape_one(s, end, &used)) < 0)
			return false;
		out[o++] = (char)c;
		s += used;
	}
	if (s >= end)
		return false;
	out[o] = '\0';
	*n = o;
	*p = s + 1;
	return true;
}

/* ,"KEY":" next at *P: then its string into OUT; false (and *P as it
 * was) when KEY is not next; -1 when it is, but bad. */
static int field(const char **p, const char *end, const char *key, char *out, size_t cap,
		 size_t *n)
{
	size_t k = strlen(key);
	const char *s = *p;

	if ((size_t)(end - s) < k + 5 || s[0] != ',' || s[1] != '"' || memcmp(s + 2, key, k) ||
	    s[k + 2] != '"' || s[k + 3] != ':')
		return 0;
	s += k + 4;
	if (*s != '"')
		return -1;
	s++;
	if (!unescape(&s, end, out, cap, n))
		return -1;
	*p = s;
	return 1;
}

bool evrec_decode(const char *line, size_t n, struct evrec *out)
{
	static const char head[] = "{\"t\":\"event\",\"raw\":\"";
	const char *end = line + n, *p, *q;
	size_t dn, hn;
	int r;

	if (n < sizeof(head) - 1 || memcmp(line, head, sizeof(head) - 1))
		return false;
	p = line + sizeof(head) - 1;
	q = memchr(p, '"', end - p);
	if (!q || !unhex(p, q - p, &out->e, sizeof(out->e)))
		return false;
	p = q + 1;
	r = field(&p, end, "domain", out->domain, sizeof(out->domain), &dn);
	if (r < 0)
		return false;
	out->has_domain = r;
	r = field(&p, end, "json", out->json, sizeof(out->json), &out->json_len);
	if (r < 0)
		return false;
	out->has_json = r;
	r = field(&p, end, "human", out->human, sizeof(out->human), &hn);
	if (r < 0)
		return false;
	out->has_human = r;
	return p + 1 == end && *p == '}';
}
