/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A decision as weir daemon sends it to weir run (a session record,
 * docs/daemon.md "Sessions"): one JSON line,
 *
 *   {"t":"event","raw":HEX,"domain":D,"json":J,"human":H}
 *
 * the fields in this order, domain, json and human each left out when
 * there is none. Both ends are written by hand: a burst makes one a
 * decision, and json-c's objects and parser cost more than all the rest of
 * the daemon's and weir run's work on it. The line is JSON all the same: a
 * reader that does not know this shape (or an older weir run) reads it with
 * any parser.
 */
#ifndef WEIR_EVREC_H
#define WEIR_EVREC_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "dns.h"
#include "events.h"

/* The longest line: the event's hex and three strings, each escaped. */
#define EVREC_LINE_MAX 16384

struct evrec {
	struct weir_event e;
	bool has_domain, has_json, has_human;
	size_t json_len;
	char domain[DNS_NAME_MAX * 2];
	char json[EVENT_JSON_MAX * 2];
	char human[EVENT_JSON_MAX * 2];
};

/*
 * S as a JSON string, quoted: '"', '\\' and control characters escaped,
 * every other byte as it is (as json-c writes it). Its length, NUL
 * terminated, or 0 when it does not fit in LEN.
 */
size_t evrec_json_str(char *out, size_t len, const char *s);
/* The line for E (no newline; NUL terminated): its length, or 0 when it
 * does not fit in LEN. DOMAIN, JSON, HUMAN: NULL when none. */
size_t evrec_encode(char *buf, size_t len, const struct weir_event *e, const char *domain,
		    const char *json, const char *human);
/*
 * LINE (N bytes, not NUL terminated) into OUT: true when it is a decision
 * in the shape evrec_encode() writes, false for anything else, or anything
 * unexpected in one (an escape it does not write, a string too long): the
 * caller then hands the line to a JSON parser.
 */
bool evrec_decode(const char *line, size_t n, struct evrec *out);

#endif /* WEIR_EVREC_H */
