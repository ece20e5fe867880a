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

#include <stdbool.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <linux/types.h>

#define SESSION_BUF_MAX (16 << 20)

struct session;

struct session *session_new(void);
struct session *session_get(struct session *s);
void session_put(struct session *s); /* NULL-safe */
/* One record (REC is consumed). Never blocks; from any thread. */
void session_push(struct session *s, json_object *rec);
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
