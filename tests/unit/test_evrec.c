// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: a decision as weir daemon sends it to weir run
 * (user/events/evrec.c): what the daemon writes by hand, weir run reads
 * back by hand, and json-c (any other reader) reads the same; a line in
 * json-c's own spelling is read the same or left to json-c, never misread. */
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "evrec.h"

/* A string of N bytes from POOL (NUL-terminated; N < len). */
static void rand_str(char *out, size_t len, const char *pool, size_t n)
{
	size_t i, k = strlen(pool);

	cr_assert_lt(n, len);
	for (i = 0; i < n; i++)
		out[i] = pool[rand() % k];
	out[n] = '\0';
}

static void rand_event(struct weir_event *e)
{
	unsigned char *b = (unsigned char *)e;
	size_t i;

	for (i = 0; i < sizeof(*e); i++)
		b[i] = rand() & 0xff;
}

/* Printable ASCII, quotes and backslashes, control characters (not NUL),
 * and the bytes of UTF-8 'é'. */
static const char pool[] = "abc{}:,\"\"\\\\/ \x01\x1f\t\n\r\x7f\xc3\xa9xyz019";

static const char *get(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

Test(evrec, hand_written_reads_back_and_parses_as_json)
{
	char dom[200], json[900], human[300], line[EVREC_LINE_MAX];
	struct weir_event e, back;
	struct evrec r;
	const char *hex;
	json_object *o;
	unsigned int x;
	size_t n, i;
	int k;

	srand(15);
	for (k = 0; k < 3000; k++) {
		rand_event(&e);
		rand_str(dom, sizeof(dom), pool, rand() % 100);
		rand_str(json, sizeof(json), pool, rand() % 800);
		rand_str(human, sizeof(human), pool, rand() % 200);
		n = evrec_encode(line, sizeof(line), &e, k % 3 ? dom : NULL, k % 5 ? json : NULL,
				 k % 2 ? human : NULL);
		cr_assert_gt(n, 0);
		cr_assert_eq(strlen(line), n);

		cr_assert(evrec_decode(line, n, &r), "%s", line);
		cr_assert_eq(memcmp(&r.e, &e, sizeof(e)), 0);
		cr_assert_eq(r.has_domain, k % 3 != 0);
		cr_assert_eq(r.has_json, k % 5 != 0);
		cr_assert_eq(r.has_human, k % 2 != 0);
		if (r.has_domain)
			cr_assert_str_eq(r.domain, dom);
		if (r.has_json) {
			cr_assert_str_eq(r.json, json);
			cr_assert_eq(r.json_len, strlen(json));
		}
		if (r.has_human)
			cr_assert_str_eq(r.human, human);

		o = json_tokener_parse(line);
		cr_assert_not_null(o, "json-c cannot read %s", line);
		cr_assert_str_eq(get(o, "t"), "event");
		hex = get(o, "raw");
		cr_assert_eq(strlen(hex), 2 * sizeof(e));
		for (i = 0; i < sizeof(e); i++) {
			cr_assert_eq(sscanf(hex + 2 * i, "%2x", &x), 1);
			((unsigned char *)&back)[i] = x;
		}
		cr_assert_eq(memcmp(&back, &e, sizeof(e)), 0);
		cr_assert_str_eq(get(o, "domain") ?: "(none)", k % 3 ? dom : "(none)");
		cr_assert_str_eq(get(o, "json") ?: "(none)", k % 5 ? json : "(none)");
		cr_assert_str_eq(get(o, "human") ?: "(none)", k % 2 ? human : "(none)");
		json_object_put(o);
	}
}

/* What the daemon sent before evrec: json-c's spelling of the same record
 * (escapes such as \n and \/). Read the same, or left to json-c. */
Test(evrec, json_c_spelling_read_the_same_or_left)
{
	char dom[200], json[900], human[300], hex[2 * sizeof(struct weir_event) + 1];
	struct weir_event e;
	struct evrec r;
	const char *line;
	json_object *o;
	size_t i;
	int k, read = 0;

	srand(16);
	for (k = 0; k < 2000; k++) {
		rand_event(&e);
		for (i = 0; i < sizeof(e); i++)
			snprintf(hex + 2 * i, 3, "%02x", ((unsigned char *)&e)[i]);
		rand_str(dom, sizeof(dom), pool, rand() % 100);
		rand_str(json, sizeof(json), pool, rand() % 800);
		rand_str(human, sizeof(human), pool, rand() % 200);
		o = json_object_new_object();
		json_object_object_add(o, "t", json_object_new_string("event"));
		json_object_object_add(o, "raw", json_object_new_string(hex));
		json_object_object_add(o, "domain", json_object_new_string(dom));
		json_object_object_add(o, "json", json_object_new_string(json));
		if (k % 2)
			json_object_object_add(o, "human", json_object_new_string(human));
		line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								 (k % 3 ? JSON_C_TO_STRING_NOSLASHESCAPE : 0));
		if (evrec_decode(line, strlen(line), &r)) {
			read++;
			cr_assert_eq(memcmp(&r.e, &e, sizeof(e)), 0);
			cr_assert(r.has_domain && r.has_json && r.has_human == (k % 2));
			cr_assert_str_eq(r.domain, dom);
			cr_assert_str_eq(r.json, json);
			if (k % 2)
				cr_assert_str_eq(r.human, human);
		}
		json_object_put(o);
	}
	cr_assert_gt(read, 1000, "json-c's spelling was read only %d times of 2000", read);
}

Test(evrec, anything_else_is_left_to_json_c)
{
	char line[EVREC_LINE_MAX], bad[EVREC_LINE_MAX];
	struct weir_event e = { .pid = 7 };
	struct evrec r;
	size_t n;

	n = evrec_encode(line, sizeof(line), &e, "a.test", "{\"v\":1}", NULL);
	cr_assert(evrec_decode(line, n, &r));
	cr_assert_not(evrec_decode(line, n - 1, &r), "cut short");
	cr_assert_not(evrec_decode("{\"t\":\"dns\",\"verdict\":0}", 23, &r));
	cr_assert_not(evrec_decode("{\"t\":\"event\",\"raw\":\"00\"}", 25, &r), "short raw");
	/* An escape the daemon never writes, a non-ASCII \u, a NUL, bad hex. */
	n = evrec_encode(line, sizeof(line), &e, "a.test", "x", NULL);
	snprintf(bad, sizeof(bad), "%.*s\\x\"}", (int)n - 3, line);
	cr_assert_not(evrec_decode(bad, strlen(bad), &r), "%s", bad);
	snprintf(bad, sizeof(bad), "%.*s\\u00e9\"}", (int)n - 3, line);
	cr_assert_not(evrec_decode(bad, strlen(bad), &r), "%s", bad);
	snprintf(bad, sizeof(bad), "%.*s\\u0000\"}", (int)n - 3, line);
	cr_assert_not(evrec_decode(bad, strlen(bad), &r), "%s", bad);
	memcpy(bad, line, n);
	bad[30] = 'g';
	cr_assert_not(evrec_decode(bad, n, &r), "bad hex");
	/* Fields out of order, or one it does not know. */
	snprintf(bad, sizeof(bad), "%.*s,\"zzz\":\"1\"}", (int)n - 1, line);
	cr_assert_not(evrec_decode(bad, strlen(bad), &r), "%s", bad);
	/* Too long to hold: not cut short. */
	memset(bad, 'a', 100);
	bad[100] = '\0';
	cr_assert_eq(evrec_encode(line, 300, &e, NULL, bad, NULL), 0);
}
