/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * weir daemon's API: HTTP/1.1 and JSON over a unix socket (libmicrohttpd,
 * json-c). The endpoints are in docs/daemon.md, "API".
 */
#ifndef WEIR_API_H
#define WEIR_API_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

struct daemon;
struct MHD_Connection;

#define API_SOCKET_DEFAULT "/run/weir/weir.sock"
#define API_BODY_MAX (1024 * 1024) /* larger bodies get 413 (POST /v1/attachments: api.c) */

/*
 * Listen on SOCKET_PATH (root's, mode 0600 before it accepts anything; a
 * stale socket there is replaced, a live daemon's is not) and, when
 * METRICS_ADDR is not NULL, on HOST:PORT for GET /metrics. Requests are
 * served on threads of their own from the moment this returns: call it once
 * the core can answer. 0 or -errno, err says why.
 */
int api_start(struct daemon *d, const char *socket_path, const char *metrics_addr, char *err,
	      size_t len);
/* Stop both servers; remove the socket if it is still the one we made. */
/* 0 when no live daemon answers on PATH (a dead one's socket is removed). */
int api_socket_free(const char *path, char *err, size_t len);
void api_stop(void);

/* Who asked: SO_PEERCRED of the connection. */
struct api_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd; /* SO_PEERPIDFD (Linux 6.5+), else -1 */
};

struct api_reply {
	unsigned int status;
	const char *type; /* Content-Type */
	const char *allow; /* 405: the Allow header */
	char *body; /* malloc'd */
	size_t len;
};

/*
 * One request, whole: the handlers without the transport (the unit tests
 * call it with peers of their own). Fills REPLY; never fails.
 */
void api_dispatch(struct daemon *d, const struct api_peer *peer, const char *method,
		  const char *url, const char *body, size_t body_len, struct api_reply *reply);

/* For metrics.c: libmicrohttpd's messages through weir's log. */
void api_mhd_log(void *cls, const char *fmt, va_list ap);

#endif /* WEIR_API_H */
