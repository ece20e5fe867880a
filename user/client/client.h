/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The client side of weir daemon's API (docs/daemon.md, "API"): HTTP/1.1
 * over the daemon's unix socket (answers read by libhttp-parser), JSON with
 * json-c. Used by
 * weir attach, detach, ps and reload, and by weir run when a daemon answers.
 */
#ifndef WEIR_CLIENT_H
#define WEIR_CLIENT_H

#include <stddef.h>
#include <json-c/json.h>

#define CLIENT_SOCKET_DEFAULT "/run/weir/weir.sock"
#define CLIENT_SOCKET_ENV "WEIR_SOCKET"
#define CLIENT_ERR_LEN 1024

/* The daemon's socket: OPT (--socket), else $WEIR_SOCKET, else the default. */
const char *client_socket(const char *opt);

/* Does anybody listen on SOCKET? A connect(), closed at once: 0, else
 * -errno and err as client_call's. */
int client_probe(const char *socket, char *err, size_t len);
/*
 * METHOD PATH on the daemon at SOCKET, BODY (NULL: none) sent as JSON.
 * 0: *status is the HTTP status and *reply the JSON it answered (put it
 * when done), whatever the status. Else -errno and err says, in words a
 * user can act on:
 *   -ENOENT, -ECONNREFUSED  no daemon answers there (and how to start one)
 *   -EACCES                 not root: the socket is root's
 *   -EPROTO                 the answer is not the daemon's HTTP or JSON
 *   -ETIMEDOUT              no answer in 120 s
 */
int client_call(const char *socket, const char *method, const char *path, json_object *body,
		long *status, json_object **reply, char *err, size_t len);

/*
 * GET PATH on the daemon at SOCKET as a stream of JSON lines (a session,
 * docs/daemon.md): fn(ctx, record) for each, in order, from the calling
 * thread, until the daemon ends the stream (0; -ECONNRESET if it was cut
 * off: the daemon died), fn returns nonzero, or
 * *stop becomes true (checked every 200 ms: -ECANCELED). Else
 * -errno and err says why, as client_call (a refusal: the daemon's words).
 */
typedef int (*client_record_fn)(void *ctx, json_object *rec);
int client_stream(const char *socket, const char *path, client_record_fn fn, void *ctx,
		  const volatile int *stop, char *err, size_t len);
/*
 * The same, each line offered first to line(ctx, text, n) (not
 * NUL-terminated): 1 when it took the line, 0 to have it parsed as JSON
 * for fn. A reader that knows the shape of its hot records parses them
 * faster than json-c does (weir run through the daemon: every decision).
 */
typedef int (*client_line_fn)(void *ctx, const char *line, size_t n);
int client_stream_lines(const char *socket, const char *path, client_line_fn line,
			client_record_fn fn, void *ctx, const volatile int *stop, char *err,
			size_t len);

/* The message of an error reply ({"error": "..."}), else a fallback. */
const char *client_error(json_object *reply);

#endif /* WEIR_CLIENT_H */
