// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The daemon's API from the other end: libcurl speaks HTTP/1.1 over the
 * unix socket (CURLOPT_UNIX_SOCKET_PATH; the host in the URL is only a
 * name), json-c reads the answers. libcurl is loaded on the first call
 * that finds a daemon (lazylib.h): a plain connect() first tells "no
 * daemon" (no socket, or nobody listening) and "not root" (EACCES) apart,
 * without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
/* Plain declarations, not the type-checking macros: they would name the
 * functions themselves, and weir does not link libcurl. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "client.h"
#include "lazylib.h"

#ifndef WEIR_CURL_SONAME
#define WEIR_CURL_SONAME "libcurl.so.4"
#endif

static struct {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
} curl;

static struct {
	pthread_once_t once;
	int ret;
	char err[512];
} curl_loaded = { .once = PTHREAD_ONCE_INIT };

static void curl_load_once(void)
{
	static const struct lazy_sym syms[] = {
		LAZY_SYM(curl_global_init, curl.global_init),
		LAZY_SYM(curl_easy_init, curl.easy_init),
		LAZY_SYM(curl_easy_setopt, curl.easy_setopt),
		LAZY_SYM(curl_easy_perform, curl.easy_perform),
		LAZY_SYM(curl_easy_getinfo, curl.easy_getinfo),
		LAZY_SYM(curl_easy_cleanup, curl.easy_cleanup),
		LAZY_SYM(curl_easy_strerror, curl.easy_strerror),
		LAZY_SYM(curl_slist_append, curl.slist_append),
		LAZY_SYM(curl_slist_free_all, curl.slist_free_all),
	};
	int ret;

	ret = lazylib_open(WEIR_CURL_SONAME, "libcurl4", syms, sizeof(syms) / sizeof(syms[0]),
			   curl_loaded.err, sizeof(curl_loaded.err));
	if (!ret && curl.global_init(CURL_GLOBAL_NOTHING) != CURLE_OK) {
		snprintf(curl_loaded.err, sizeof(curl_loaded.err),
			 "libcurl: curl_global_init failed");
		ret = -EIO;
	}
	curl_loaded.ret = ret;
}

/* Once per process, whichever thread asks first (client_preload's, or the
 * caller's, which then waits for it). */
static int curl_load(char *err, size_t len)
{
	pthread_once(&curl_loaded.once, curl_load_once);
	if (curl_loaded.ret)
		snprintf(err, len, "%s", curl_loaded.err);
	return curl_loaded.ret;
}

static void *preload_main(void *arg)
{
	(void)arg;
	pthread_once(&curl_loaded.once, curl_load_once);
	return NULL;
}

void client_preload(void)
{
	pthread_attr_t a;
	pthread_t t;

	if (pthread_attr_init(&a))
		return;
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_create(&t, &a, preload_main, NULL); /* failed: loaded when used */
	pthread_attr_destroy(&a);
}

#define CLIENT_REPLY_MAX (64 << 20) /* a ps of many thousand attachments */

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

struct buf {
	char *p;
	size_t len;
};

static size_t client_write(char *data, size_t size, size_t n, void *ctx)
{
	struct buf *b = ctx;
	char *p;

	n *= size;
	if (b->len + n > CLIENT_REPLY_MAX)
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	p = realloc(b->p, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, data, n);
	b->len += n;
	p[b->len] = '\0';
	b->p = p;
	return n;
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
		snprintf(err, len, "no daemon answers on %s (start one: sudo weir daemon, or "
			 "systemctl start weir)", socket);
		return oserr == ECONNREFUSED ? -ECONNREFUSED : -ENOENT;
	}
	snprintf(err, len, "%s: cannot connect: %s", socket, strerror(oserr));
	return -oserr;
}

/* Is anybody there? A connect() of our own, before libcurl is loaded. */
int client_probe(const char *path, char *err, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, len, "%s: longer than a socket's path may be", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		ret = client_absent(errno, path, err, len);
	close(fd);
	return ret;
}

/* The uid of a server that is not the daemon (client_prereq), -1 if none. */
static __thread long client_not_root = -1;
static __thread curl_socket_t client_fd = CURL_SOCKET_BAD; /* this thread's transfer's */

/* Close-on-exec from the start: weir run's connection to the daemon, open
 * while it starts the command, must not be inherited by it (the daemon
 * takes whoever holds it for weir run). */
static curl_socket_t client_opensocket(void *ctx, curlsocktype purpose,
				       struct curl_sockaddr *a)
{
	client_fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return client_fd;
}

/*
 * Talk only to a daemon that runs as root (or as us: the tests' servers),
 * checked once connected, before the request goes: a socket a user made at
 * the path (a --socket or WEIR_SOCKET it chose, a directory it can write)
 * would otherwise be told to attach, and answer that the command is
 * enforced when it is not. (libcurl before 7.80 has no such callback.)
 */
static int client_prereq(void *ctx, char *ip, char *local_ip, int port, int local_port)
{
	struct ucred cred;
	socklen_t n = sizeof(cred);

	client_not_root = -1;
	if (client_fd == CURL_SOCKET_BAD ||
	    getsockopt(client_fd, SOL_SOCKET, SO_PEERCRED, &cred, &n))
		return CURL_PREREQFUNC_ABORT;
	if (cred.uid != 0 && cred.uid != geteuid()) {
		client_not_root = cred.uid;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/* A failed transfer: the daemon went away, or answered nothing we could read. */
static int client_failed(CURL *c, CURLcode rc, const char *socket, char *err, size_t len)
{
	long oserr = 0;

	if (client_not_root >= 0) {
		snprintf(err, len, "%s: the server there runs as uid %ld, not root: it is not "
			 "weir's daemon (refusing to use it)", socket, client_not_root);
		return -EPERM;
	}
	curl.easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
	if (rc == CURLE_COULDNT_CONNECT && oserr)
		return client_absent(oserr, socket, err, len);
	snprintf(err, len, "%s: %s%s%s", socket, curl.easy_strerror(rc), oserr ? ": " : "",
		 oserr ? strerror(oserr) : "");
	return oserr ? -oserr : -EIO;
}

static CURL *client_handle(const char *socket, const char *method, const char *url,
			   const char *body, struct curl_slist *hdrs, struct buf *b)
{
	CURL *c = curl.easy_init();

	client_fd = CURL_SOCKET_BAD;
	client_not_root = -1;

	if (!c)
		return NULL;
	curl.easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket);
	curl.easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, client_opensocket);
	curl.easy_setopt(c, CURLOPT_PREREQFUNCTION, client_prereq);
	curl.easy_setopt(c, CURLOPT_URL, url);
	curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	/* attaching waits for the core's lock, behind others' attaches */
	curl.easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, client_write);
	curl.easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (body) {
		curl.easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	return c;
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

int client_call(const char *socket, const char *method, const char *path, json_object *body,
		long *status, json_object **reply, char *err, size_t len)
{
	struct curl_slist *hdrs = NULL;
	struct buf b = { 0 };
	char url[512];
	CURLcode rc;
	CURL *c;
	int ret;

	ret = client_probe(socket, err, len);
	ret = ret ?: curl_load(err, len);
	if (ret)
		return ret;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	hdrs = curl.slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl.slist_append(hdrs, "Expect:"); /* the body at once, no 100-continue */
	c = client_handle(socket, method, url,
			  body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) :
				 NULL, hdrs, &b);
	if (!c || !hdrs) {
		snprintf(err, len, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	rc = curl.easy_perform(c);
	if (rc != CURLE_OK) {
		ret = client_failed(c, rc, socket, err, len);
		goto out;
	}
	curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	ret = client_parse(&b, socket, reply, err, len);
out:
	if (c)
		curl.easy_cleanup(c);
	curl.slist_free_all(hdrs);
	free(b.p);
	return ret;
}

/* --- a stream of JSON lines ------------------------------------------------ */

struct stream_rx {
	CURL *c;
	client_record_fn fn;
	void *ctx;
	const volatile int *stop;
	struct buf line; /* a record not ended yet */
	struct buf other; /* a reply that is not 200: the daemon's error */
	int fn_ret;
};

static int stream_line(struct stream_rx *rx, const char *s, size_t n)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, s, (int)n) : NULL;

	json_tokener_free(tok);
	if (!o)
		return 0; /* not a record: skipped */
	rx->fn_ret = rx->fn(rx->ctx, o);
	json_object_put(o);
	return rx->fn_ret;
}

static size_t stream_write(char *data, size_t size, size_t n, void *ctx)
{
	struct stream_rx *rx = ctx;
	long status = 0;
	size_t i, start = 0;
	char *nl;

	n *= size;
	curl.easy_getinfo(rx->c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return client_write(data, 1, n, &rx->other);
	for (i = 0; (nl = memchr(data + i, '\n', n - i)); i = start) {
		start = nl - data + 1;
		if (rx->line.len) { /* the rest of one begun in an earlier piece */
			if (client_write(data + i, 1, start - 1 - i, &rx->line) != start - 1 - i)
				return 0;
			if (stream_line(rx, rx->line.p, rx->line.len))
				return 0;
			rx->line.len = 0;
		} else if (stream_line(rx, data + i, start - 1 - i)) {
			return 0;
		}
	}
	return client_write(data + start, 1, n - start, &rx->line) == n - start ? n : 0;
}

static int stream_progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct stream_rx *rx = ctx;

	(void)a, (void)b, (void)c, (void)d;
	return rx->stop && *rx->stop;
}

int client_stream(const char *socket, const char *path, client_record_fn fn, void *ctx,
		  const volatile int *stop, char *err, size_t len)
{
	struct stream_rx rx = { .fn = fn, .ctx = ctx, .stop = stop };
	json_object *reply = NULL;
	long status = 0;
	char url[512];
	CURLcode rc;
	int ret;

	ret = client_probe(socket, err, len);
	ret = ret ?: curl_load(err, len);
	if (ret)
		return ret;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	rx.c = client_handle(socket, "GET", url, NULL, NULL, &rx.other);
	if (!rx.c) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	curl.easy_setopt(rx.c, CURLOPT_TIMEOUT, 0L); /* as long as the run */
	curl.easy_setopt(rx.c, CURLOPT_WRITEFUNCTION, stream_write);
	curl.easy_setopt(rx.c, CURLOPT_WRITEDATA, &rx);
	curl.easy_setopt(rx.c, CURLOPT_NOPROGRESS, 0L);
	curl.easy_setopt(rx.c, CURLOPT_XFERINFOFUNCTION, stream_progress);
	curl.easy_setopt(rx.c, CURLOPT_XFERINFODATA, &rx);
	rc = curl.easy_perform(rx.c);
	curl.easy_getinfo(rx.c, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(err, len, "stopped");
		ret = -ECANCELED;
	} else if (rc == CURLE_WRITE_ERROR && rx.fn_ret) {
		ret = 0; /* fn had what it wanted */
	} else if (status == 200 && (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR ||
				     rc == CURLE_GOT_NOTHING)) {
		snprintf(err, len, "%s: the daemon went away", socket);
		ret = -ECONNRESET;
	} else if (rc != CURLE_OK) {
		ret = client_failed(rx.c, rc, socket, err, len);
	} else if (status != 200) {
		ret = client_parse(&rx.other, socket, &reply, err, len);
		if (!ret)
			snprintf(err, len, "%s", client_error(reply));
		json_object_put(reply);
		ret = status == 404 ? -ENOENT : -EPROTO;
	}
	curl.easy_cleanup(rx.c);
	free(rx.line.p);
	free(rx.other.p);
	return ret;
}
