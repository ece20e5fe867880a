/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A session: what weir run, as the daemon's client, sees of its own
 * attachment. The core pushes records (JSON objects) as they happen; the
 * API serves them to the client as one chunked response of JSON lines
 * (GET /v1/attachments/CGROUP_ID/events, docs/daemon.md) that ends after
 * the last record. Each session has its own queue: records wait in memory
 * until its client reads them, and past SESSION_BUF_MAX bytes its records
 * are dropped and counted as lost (its client is told). The daemon's one
 * event writer never waits for a client, so a slow one loses only its own
 * records and every other session's flow.
 */
#ifndef WEIR_SESSION_H
#define WEIR_SESSION_H

#include <stdbool.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <linux/types.h>

struct weir_event;

/* A session's queue: about 95,000 decisions (a record is ~700 bytes), a
 * burst's worth for a client that reads as they come; past SESSION_BUF_OWN
 * only while all sessions together hold less than SESSIONS_BUF_MAX, so a
 * daemon's sessions hold at most SESSIONS_BUF_MAX + 64 x SESSION_BUF_OWN
 * (the API serves 64 connections) = 512 MiB whatever their clients do. */
#define SESSION_BUF_MAX (64 << 20)
#define SESSION_BUF_OWN (4 << 20)
#define SESSIONS_BUF_MAX ((size_t)256 << 20)
/* The most a session sends in one piece (one chunk of the HTTP answer). */
#define SESSION_CHUNK_MAX (128 << 10)

struct session;

struct session *session_new(void);
struct session *session_get(struct session *s);
void session_put(struct session *s); /* NULL-safe */
/* One record (REC is consumed). Never blocks; from any thread. */
void session_push(struct session *s, json_object *rec);
/* A decision, its line written by evrec_encode() (user/events/evrec.h).
 * Never waits: with SESSION_BUF_MAX waiting it is dropped and counted. */
void session_push_event(struct session *s, const struct weir_event *e, const char *domain,
			const char *json, const char *human);
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
