// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The daemon's API from the other end: libcurl speaks HTTP/1.1 over the
 * unix socket (CURLOPT_UNIX_SOCKET_PATH; the host in the URL is only a
 * name), json-c reads the answers. What curl calls "couldn't connect" is
 * told apart by the errno of the connect() (CURLINFO_OS_ERRNO): no socket
 * or nobody listening is "no daemon", EACCES is "not root".
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>

#include "client.h"

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

/* A failed transfer in words: who is (not) there, and what to do. */
static int client_failed(CURL *c, CURLcode rc, const char *socket, char *err, size_t len)
{
	long oserr = 0;

	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
	if (rc == CURLE_COULDNT_CONNECT && oserr == EACCES) {
		snprintf(err, len, "%s: permission denied: the daemon's socket is root's; run "
			 "this as root (sudo)%s", socket, geteuid() ? "" : " with access to it");
		return -EACCES;
	}
	if (rc == CURLE_COULDNT_CONNECT &&
	    (oserr == ENOENT || oserr == ECONNREFUSED || oserr == ENOTDIR || !oserr)) {
		snprintf(err, len, "no daemon answers on %s (start one: sudo weir daemon, or "
			 "systemctl start weir)", socket);
		return oserr == ENOENT ? -ENOENT : -ECONNREFUSED;
	}
	snprintf(err, len, "%s: %s%s%s", socket, curl_easy_strerror(rc), oserr ? ": " : "",
		 oserr ? strerror(oserr) : "");
	return oserr ? -oserr : -EIO;
}

static CURL *client_handle(const char *socket, const char *method, const char *url,
			   const char *body, struct curl_slist *hdrs, struct buf *b)
{
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	/* attaching waits for the core's lock, behind others' attaches */
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, client_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
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
	static bool inited;
	struct curl_slist *hdrs = NULL;
	struct buf b = { 0 };
	char url[512];
	CURLcode rc;
	CURL *c;
	int ret;

	if (!inited && curl_global_init(CURL_GLOBAL_NOTHING) == CURLE_OK)
		inited = true;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:"); /* the body at once, no 100-continue */
	c = client_handle(socket, method, url,
			  body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) :
				 NULL, hdrs, &b);
	if (!c || !hdrs) {
		snprintf(err, len, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		ret = client_failed(c, rc, socket, err, len);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	ret = client_parse(&b, socket, reply, err, len);
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(b.p);
	return ret;
}
