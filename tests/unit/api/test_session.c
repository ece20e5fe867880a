// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 1: what the daemon's sessions (user/daemon/session.c) hold for
 * clients that do not read: each its own queue (SESSION_BUF_MAX), and all
 * together bounded (SESSIONS_BUF_MAX, SESSION_BUF_OWN each whatever the
 * others hold). No connection: the records wait, as for a stopped client.
 */
#include <string.h>
#include <criterion/criterion.h>

#include "evrec.h"
#include "session.h"
#include "weir/egress.h"

#define NSESS 6
#define MIB ((size_t)1 << 20)

static struct weir_event ev;
static char json[400];

/* Decisions into S until one is dropped (or LIMIT pushed): how many went in. */
static size_t fill(struct session *s, size_t limit)
{
	size_t n;

	for (n = 0; n < limit; n++) {
		session_push_event(s, &ev, "allowed.test", json, NULL);
		if (session_dropped(s))
			break;
	}
	return n;
}

/* N records of LEN bytes (and a newline each) fill a queue of BOUND: the
 * next one would not fit. */
static void x_filled(size_t n, size_t len, size_t bound, int i)
{
	cr_assert(n * len <= bound && (n + 1) * len > bound,
		  "session %d: %zu records of %zu bytes for a bound of %zu MiB", i, n, len,
		  bound / MIB);
}

Test(session, a_stalled_client_holds_its_own_queue_and_all_together_are_bounded)
{
	char line[EVREC_LINE_MAX];
	struct session *s[NSESS];
	size_t in[NSESS], len;
	int i;

	memset(&ev, 0x5a, sizeof(ev));
	memset(json, 'j', sizeof(json) - 1);
	len = evrec_encode(line, sizeof(line), &ev, "allowed.test", json, NULL) + 1;
	cr_assert_gt(len, 1);
	for (i = 0; i < NSESS; i++) {
		s[i] = session_new();
		cr_assert(s[i]);
		in[i] = fill(s[i], 1000000);
		cr_assert_eq(session_dropped(s[i]), 1, "session %d never dropped", i);
	}
	/* The first four fill their own queues (64 MiB each, 256 MiB in all)... */
	for (i = 0; i < 4; i++)
		x_filled(in[i], len, SESSION_BUF_MAX, i);
	/* ... the others then get their own 4 MiB, never nothing. */
	for (i = 4; i < NSESS; i++)
		x_filled(in[i], len, SESSION_BUF_OWN, i);
	/* The end record always goes in: the client must see the end. */
	for (i = 0; i < NSESS; i++) {
		session_end(s[i], 0, true);
		session_put(s[i]);
	}
}
