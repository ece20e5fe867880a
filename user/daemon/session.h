/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A session: what weir run, as the daemon's client, sees of its own
 * attachment. The core pushes records (JSON objects) as they happen; the
 * API serves them to the client as one chunked response of JSON lines
 * (GET /v1/attachments/CGROUP_ID/events, docs/daemon.md) that ends after
 * the last record. Records wait in memory until the client reads them; past
 * SESSION_BUF_MAX bytes they are dropped and counted as lost.
 */
#ifndef WEIR_SESSION_H
#define WEIR_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <linux/types.h>

struct weir_event;

#define SESSION_BUF_MAX (16 << 20)
/* A decision waits this long for a client that reads nothing, then drops. */
#define SESSION_STALL_MS 1000
/* Past SESSION_BUF_MAX when the writer may not wait (session_push_event). */
#define SESSION_BUF_HARD (64 << 20)
/* The most a session sends in one piece (one chunk of the HTTP answer). */
#define SESSION_CHUNK_MAX (128 << 10)

struct session;

struct session *session_new(void);
struct session *session_get(struct session *s);
void session_put(struct session *s); /* NULL-safe */
/* One record (REC is consumed). Never blocks; from any thread. */
void session_push(struct session *s, json_object *rec);
/*
 * A decision, its line written by evrec_encode() (user/events/evrec.h).
 * With SESSION_BUF_MAX waiting it waits for the client to read (a burst
 * backs up into the daemon's pump, not lost), unless the client read
 * nothing for SESSION_STALL_MS or *HURRY is nonzero (then it goes in up to
 * SESSION_BUF_HARD): see session.c.
 */
void session_push_event(struct session *s, const struct weir_event *e, const char *domain,
			const char *json, const char *human, const atomic_int *hurry);
/* The last record, {"t":"end","lost":N,"detached":B}: nothing after it. */
void session_end(struct session *s, __u64 lost, bool detached);
/* Records dropped because the client did not read them. */
__u64 session_dropped(struct session *s);
/* Serve S's records on CONN until the end (takes a reference of S). A
 * session is served once: -EBUSY if it is already. */
int session_serve(struct session *s, struct MHD_Connection *conn);
/* Before MHD_stop_daemon(): no connection may stay suspended. */
void session_stop_all(void);

#endif /* WEIR_SESSION_H */
