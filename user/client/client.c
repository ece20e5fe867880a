// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The daemon's API from the other end: HTTP/1.1 over the unix socket. The
 * request is written here (a request line, three headers and the body:
 * formatting, not parsing); the answer is read by libhttp-parser (status,
 * headers, Content-Length and chunked bodies), json-c reads the JSON in it.
 *
 * Why not libcurl: it brings some thirty shared objects (TLS, Kerberos,
 * LDAP, SSH...) whose loading took ~25 ms of the ~30 ms weir run may add
 * through the daemon (docs/performance.md). libhttp-parser is one small
 * library that depends on nothing but libc, so it is simply linked.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <http_parser.h>

#include "client.h"
#include "daemon.h"

#define CLIENT_REPLY_MAX (64 << 20) /* a ps of many thousand attachments */
#define CLIENT_CONNECT_S 5 /* a daemon whose backlog is full */
/* attaching waits for the core's lock, behind others' attaches */
#define CLIENT_CALL_S 120
#define CLIENT_STOP_MS 200 /* how often a stream looks at *stop */

const char *client_socket(const char *opt)
{
	const char *env = getenv(CLIENT_SOCKET_ENV);

	if (opt && *opt)
		return opt;
	return env && *env ? env : CLIENT_SOCKET_DEFAULT;
}

const char *client_error(json_object *reply)
{
	json_object *e;

	if (reply && json_object_object_get_ex(reply, "error", &e) &&
	    json_object_is_type(e, json_type_string))
		return json_object_get_string(e);
	return "the daemon gave no reason";
}

/* Why nobody answers on SOCKET, in words: who is (not) there, and what to do. */
static int client_absent(int oserr, const char *socket, char *err, size_t len)
{
	if (oserr == EACCES) {
		snprintf(err, len, "%s: permission denied: the daemon's socket is root's; run "
			 "this as root (sudo)%s", socket, geteuid() ? "" : " with access to it");
		return -EACCES;
	}
	if (oserr == ENOENT || oserr == ECONNREFUSED || oserr == ENOTDIR) {
		/* A daemon started as the hint says must answer where we looked. */
		if (strcmp(socket, DAEMON_SOCKET))
			snprintf(err, len, "no daemon answers on %s (start one: sudo weir daemon "
				 "--socket %s)", socket, socket);
		else
			snprintf(err, len, "no daemon answers on %s (start one: sudo weir daemon, "
				 "or systemctl start weir)", socket);
		return oserr == ECONNREFUSED ? -ECONNREFUSED : -ENOENT;
	}
	snprintf(err, len, "%s: cannot connect: %s", socket, strerror(oserr));
	return -oserr;
}

struct buf {
	char *p;
	size_t len;
};

static int buf_add(struct buf *b, const char *data, size_t n)
{
	char *p;

	if (b->len + n > CLIENT_REPLY_MAX)
		return -EFBIG;
	p = realloc(b->p, b->len + n + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p + b->len, data, n);
	b->len += n;
	p[b->len] = '\0';
	b->p = p;
	return 0;
}

/* A connected socket, or -errno and err says why (client_absent's words). */
static int client_connect(const char *path, char *err, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CLIENT_CONNECT_S };
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, len, "%s: longer than a socket's path may be", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, len, "%s: socket: %s", path, strerror(-ret));
		return ret;
	}
	/* A unix socket's connect() waits on a full backlog for SO_SNDTIMEO. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = client_absent(errno, path, err, len);
		close(fd);
		return ret;
	}
	return fd;
}

/* Is anybody there? A connect() closed at once. */
int client_probe(const char *path, char *err, size_t len)
{
	int fd = client_connect(path, err, len);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/*
 * Talk only to a daemon that runs as root (or as us: the tests' servers),
 * checked once connected, before the request goes: a socket a user made at
 * the path (a --socket or WEIR_SOCKET it chose, a directory it can write)
 * would otherwise be told to attach, and answer that the command is
 * enforced when it is not. (The socket is close-on-exec from socket() on:
 * a command weir run starts cannot inherit its connection to the daemon.)
 */
static int client_peer_ok(int fd, const char *socket, char *err, size_t len)
{
	struct ucred cred;
	socklen_t n = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n)) {
		n = errno;
		snprintf(err, len, "%s: SO_PEERCRED: %s", socket, strerror(n));
		return -(int)n;
	}
	if (cred.uid != 0 && cred.uid != geteuid()) {
		snprintf(err, len, "%s: the server there runs as uid %ld, not root: it is not "
			 "weir's daemon (refusing to use it)", socket, (long)cred.uid);
		return -EPERM;
	}
	return 0;
}

/* The request, whole: the daemon reads it to its end before it answers. */
static int client_send(int fd, const char *method, const char *path, const char *body)
{
	size_t blen = body ? strlen(body) : 0, off = 0, n;
	char *req = NULL;
	ssize_t w;
	int len;

	len = asprintf(&req, "%s %s HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n"
		       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		       method, path, blen, body ?: "");
	if (len < 0)
		return -ENOMEM;
	for (n = len; off < n; off += w) {
		w = send(fd, req + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR) {
			w = 0;
		} else if (w < 0) {
			free(req);
			return -errno;
		}
	}
	free(req);
	return 0;
}

/* --- the answer ------------------------------------------------------------ */

struct rx {
	http_parser p;
	const char *socket;
	bool done; /* the whole message is in */
	struct buf body; /* a call's answer, or a stream's refusal */
	/* a stream: each line of a 200 answer goes to line_fn, else to fn */
	client_line_fn line_fn;
	client_record_fn fn;
	void *ctx;
	struct buf line; /* a record not ended yet */
	int fn_ret;
	int err; /* why a callback stopped the parser: -errno */
};

static int rx_complete(http_parser *p)
{
	((struct rx *)p->data)->done = true;
	http_parser_pause(p, 1); /* nothing after it is ours */
	return 0;
}

static int rx_record(struct rx *rx, const char *s, size_t n)
{
	struct json_tokener *tok;
	json_object *o;

	if (rx->line_fn && rx->line_fn(rx->ctx, s, n))
		return 0;
	tok = json_tokener_new();
	o = tok ? json_tokener_parse_ex(tok, s, (int)n) : NULL;
	json_tokener_free(tok);
	if (!o)
		return 0; /* not a record: skipped */
	rx->fn_ret = rx->fn(rx->ctx, o);
	json_object_put(o);
	return rx->fn_ret;
}

/* A stream's piece of body: whole lines to fn, the rest kept for the next. */
static int rx_lines(struct rx *rx, const char *data, size_t n)
{
	const char *nl;
	size_t i, end;

	for (i = 0; (nl = memchr(data + i, '\n', n - i)); i = end + 1) {
		end = nl - data;
		if (rx->line.len) { /* the rest of one begun in an earlier piece */
			rx->err = buf_add(&rx->line, data + i, end - i);
			if (rx->err || rx_record(rx, rx->line.p, rx->line.len))
				return 1;
			rx->line.len = 0;
		} else if (rx_record(rx, data + i, end - i)) {
			return 1;
		}
	}
	rx->err = buf_add(&rx->line, data + i, n - i);
	return !!rx->err;
}

static int rx_body(http_parser *p, const char *at, size_t n)
{
	struct rx *rx = p->data;

	if (rx->fn && p->status_code == 200)
		return rx_lines(rx, at, n);
	rx->err = buf_add(&rx->body, at, n);
	return !!rx->err;
}

static const http_parser_settings rx_settings = {
	.on_body = rx_body,
	.on_message_complete = rx_complete,
};

/*
 * Read the answer on FD into RX until it is whole (0), STOP becomes true
 * (-ECANCELED), fn wanted no more (0), or the daemon is gone or speaks
 * something else: -errno and err says why. TIMEOUT_S 0: none.
 */
static int rx_read(struct rx *rx, int fd, int timeout_s, const volatile int *stop, char *err,
		   size_t len)
{
	time_t end = time(NULL) + timeout_s;
	char data[1 << 16]; /* a burst's records come in big pieces */
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	size_t used;

	http_parser_init(&rx->p, HTTP_RESPONSE);
	rx->p.data = rx;
	while (!rx->done) {
		if (stop && *stop) {
			snprintf(err, len, "stopped");
			return -ECANCELED;
		}
		if (timeout_s && time(NULL) > end) {
			snprintf(err, len, "%s: the daemon did not answer in %d s", rx->socket,
				 timeout_s);
			return -ETIMEDOUT;
		}
		n = poll(&pfd, 1, stop ? CLIENT_STOP_MS : 1000);
		if (n <= 0) {
			if (n < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		n = read(fd, data, sizeof(data));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			snprintf(err, len, "%s: the daemon went away: %s", rx->socket,
				 strerror(-n));
			return rx->p.status_code ? -ECONNRESET : (int)n;
		}
		/* n == 0: the end, which may complete an answer without a length */
		used = http_parser_execute(&rx->p, &rx_settings, data, n);
		if (rx->done)
			break;
		if (rx->fn_ret)
			return 0; /* fn had what it wanted */
		if (rx->err) {
			snprintf(err, len, "%s: the answer: %s", rx->socket, strerror(-rx->err));
			return rx->err;
		}
		if (!n || HTTP_PARSER_ERRNO(&rx->p) == HPE_INVALID_EOF_STATE) {
			snprintf(err, len, "%s: the daemon went away", rx->socket);
			return -ECONNRESET;
		}
		if (HTTP_PARSER_ERRNO(&rx->p) != HPE_OK) {
			snprintf(err, len, "%s: the answer is not HTTP (%s): is this weir's daemon?",
				 rx->socket, http_errno_description(HTTP_PARSER_ERRNO(&rx->p)));
			return -EPROTO;
		}
		if (used < (size_t)n) { /* stopped without an error: nothing to stop it */
			snprintf(err, len, "%s: the answer is cut short", rx->socket);
			return -EPROTO;
		}
	}
	return 0;
}

static int client_parse(const struct buf *b, const char *socket, json_object **reply, char *err,
			size_t len)
{
	enum json_tokener_error e;

	*reply = json_tokener_parse_verbose(b->p ? b->p : "", &e);
	if (*reply)
		return 0;
	snprintf(err, len, "%s: the answer is not JSON (%s): is this weir's daemon?", socket,
		 json_tokener_error_desc(e));
	return -EPROTO;
}

/* Connect, send METHOD PATH with BODY: the socket, or -errno and err. */
static int client_request(const char *socket, const char *method, const char *path,
			  const char *body, char *err, size_t len)
{
	int fd = client_connect(socket, err, len), ret;

	if (fd < 0)
		return fd;
	ret = client_peer_ok(fd, socket, err, len);
	if (ret) {
		close(fd);
		return ret;
	}
	ret = client_send(fd, method, path, body);
	if (ret) {
		snprintf(err, len, "%s: the daemon went away: %s", socket, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

int client_call(const char *socket, const char *method, const char *path, json_object *body,
		long *status, json_object **reply, char *err, size_t len)
{
	struct rx rx = { .socket = socket };
	int fd, ret;

	fd = client_request(socket, method, path,
			    body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) :
				   NULL, err, len);
	if (fd < 0)
		return fd;
	ret = rx_read(&rx, fd, CLIENT_CALL_S, NULL, err, len);
	close(fd);
	if (!ret) {
		*status = rx.p.status_code;
		ret = client_parse(&rx.body, socket, reply, err, len);
	}
	free(rx.body.p);
	return ret == -ECONNRESET ? -EIO : ret;
}

/* --- a stream of JSON lines ------------------------------------------------ */

int client_stream(const char *socket, const char *path, client_record_fn fn, void *ctx,
		  const volatile int *stop, char *err, size_t len)
{
	return client_stream_lines(socket, path, NULL, fn, ctx, stop, err, len);
}

int client_stream_lines(const char *socket, const char *path, client_line_fn line,
			client_record_fn fn, void *ctx, const volatile int *stop, char *err,
			size_t len)
{
	struct rx rx = { .socket = socket, .line_fn = line, .fn = fn, .ctx = ctx };
	json_object *reply = NULL;
	int fd, ret;

	fd = client_request(socket, "GET", path, NULL, err, len);
	if (fd < 0)
		return fd;
	ret = rx_read(&rx, fd, 0, stop, err, len); /* as long as the run */
	close(fd);
	if (!ret && !rx.fn_ret && rx.p.status_code != 200) {
		ret = client_parse(&rx.body, socket, &reply, err, len);
		if (!ret)
			snprintf(err, len, "%s", client_error(reply));
		json_object_put(reply);
		ret = rx.p.status_code == 404 ? -ENOENT : -EPROTO;
	}
	free(rx.line.p);
	free(rx.body.p);
	return ret;
}
