// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The stream of a session. libmicrohttpd runs every connection on one
 * thread, so the content reader never waits: with nothing to send it
 * suspends its connection and returns 0, and the next push resumes it
 * (microhttpd.h, MHD_ContentReaderCallback: 0 only with a suspend, else
 * the thread spins). Suspend and resume are both made under the session's
 * lock, so a push cannot slip in between the reader's "empty" and its
 * suspend and be left unsent.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "session.h"

struct session {
	pthread_mutex_t mu;
	int refs;
	char *buf; /* records not yet sent: buf[off, len) */
	size_t len, off, cap;
	__u64 dropped;
	bool ended;
	struct MHD_Connection *conn; /* while served */
	bool suspended;
	struct session *next; /* in served */
};

/* Sessions being served: session_stop_all() resumes them. */
static pthread_mutex_t served_mu = PTHREAD_MUTEX_INITIALIZER;
static struct session *served;

struct session *session_new(void)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	s->refs = 1;
	return s;
}

struct session *session_get(struct session *s)
{
	pthread_mutex_lock(&s->mu);
	s->refs++;
	pthread_mutex_unlock(&s->mu);
	return s;
}

void session_put(struct session *s)
{
	bool last;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	last = !--s->refs;
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s->buf);
	free(s);
}

/* Under s->mu: whoever waits for data gets it now. */
static void wake(struct session *s)
{
	if (!s->suspended)
		return;
	s->suspended = false;
	mhd.resume_connection(s->conn);
}

static bool append(struct session *s, const char *line, size_t n)
{
	size_t need = s->len + n + 1;
	char *p;

	if (s->off && s->off == s->len)
		s->off = s->len = 0;
	if (s->len - s->off + n > SESSION_BUF_MAX)
		return false;
	if (need > s->cap) {
		if (s->off) { /* make room at the front first */
			memmove(s->buf, s->buf + s->off, s->len - s->off);
			s->len -= s->off;
			s->off = 0;
			need = s->len + n + 1;
		}
		p = need > s->cap ? realloc(s->buf, need * 2) : s->buf;
		if (!p)
			return false;
		s->cap = need > s->cap ? need * 2 : s->cap;
		s->buf = p;
	}
	memcpy(s->buf + s->len, line, n);
	s->buf[s->len + n] = '\n';
	s->len += n + 1;
	return true;
}

void session_push(struct session *s, json_object *rec)
{
	const char *line = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);

	pthread_mutex_lock(&s->mu);
	if (s->ended || !line || !append(s, line, strlen(line)))
		s->dropped += !s->ended;
	else
		wake(s);
	pthread_mutex_unlock(&s->mu);
	json_object_put(rec);
}

void session_end(struct session *s, __u64 lost, bool detached)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "t", json_object_new_string("end"));
	json_object_object_add(o, "lost", json_object_new_uint64(lost));
	json_object_object_add(o, "detached", json_object_new_boolean(detached));
	session_push(s, o);
	pthread_mutex_lock(&s->mu);
	s->ended = true;
	wake(s);
	pthread_mutex_unlock(&s->mu);
}

__u64 session_dropped(struct session *s)
{
	__u64 n;

	pthread_mutex_lock(&s->mu);
	n = s->dropped;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* libmicrohttpd's thread: what is there, else the end, else wait. */
static ssize_t session_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct session *s = cls;
	ssize_t n;

	(void)pos;
	pthread_mutex_lock(&s->mu);
	if (s->len > s->off) {
		n = s->len - s->off < max ? s->len - s->off : max;
		memcpy(buf, s->buf + s->off, n);
		s->off += n;
	} else if (s->ended) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		mhd.suspend_connection(s->conn);
		s->suspended = true;
		n = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void unserve(struct session *s)
{
	struct session **p;

	pthread_mutex_lock(&served_mu);
	for (p = &served; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&served_mu);
}

/* The response is gone (the end sent, or the client went away). */
static void session_done(void *cls)
{
	struct session *s = cls;

	unserve(s);
	pthread_mutex_lock(&s->mu);
	s->conn = NULL;
	s->suspended = false;
	s->ended = true; /* nobody reads any more */
	pthread_mutex_unlock(&s->mu);
	session_put(s);
}

int session_serve(struct session *s, struct MHD_Connection *conn)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	pthread_mutex_lock(&s->mu);
	if (s->conn) {
		pthread_mutex_unlock(&s->mu);
		return -EBUSY;
	}
	s->conn = conn;
	pthread_mutex_unlock(&s->mu);
	resp = mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, session_read,
						 session_get(s), session_done);
	if (!resp) {
		pthread_mutex_lock(&s->mu);
		s->conn = NULL;
		pthread_mutex_unlock(&s->mu);
		session_put(s);
		return -ENOMEM;
	}
	pthread_mutex_lock(&served_mu);
	s->next = served;
	served = s;
	pthread_mutex_unlock(&served_mu);
	mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
	ret = mhd.queue_response(conn, MHD_HTTP_OK, resp);
	mhd.destroy_response(resp);
	return ret == MHD_YES ? 0 : -EIO;
}

void session_stop_all(void)
{
	struct session *s;

	pthread_mutex_lock(&served_mu);
	for (s = served; s; s = s->next) {
		pthread_mutex_lock(&s->mu);
		s->ended = true;
		wake(s);
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&served_mu);
}
