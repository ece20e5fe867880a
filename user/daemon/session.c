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
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evrec.h"
#include "httpd.h"
#include "session.h"

/* Records not yet sent wait in a list of chunks: a burst appends at the
 * tail and the connection sends from the head, and no byte is moved twice
 * (a single buffer moved what was left to its front, over and over). */
#define CHUNK_BYTES (256 << 10)

struct chunk {
	struct chunk *next;
	size_t len, off; /* data[off, len) not sent yet */
	char data[CHUNK_BYTES];
};

struct session {
	pthread_mutex_t mu;
	int refs;
	struct chunk *head, *tail;
	struct chunk *spare; /* one emptied chunk, kept for the next */
	size_t pending; /* bytes not sent yet */
	__u64 dropped;
	bool told; /* its client was told that records are dropped */
	bool ended;
	struct MHD_Connection *conn; /* while served */
	bool suspended;
	struct session *next; /* in served */
};

/* What all sessions hold, for SESSIONS_BUF_MAX (under each one's mu). */
static _Atomic size_t all_pending;

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
	atomic_fetch_sub(&all_pending, s->pending);
	pthread_mutex_destroy(&s->mu);
	while (s->head) {
		struct chunk *c = s->head;

		s->head = c->next;
		free(c);
	}
	free(s->spare);
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

/*
 * Under s->mu: may N more bytes wait? Up to SESSION_BUF_OWN always, up to
 * SESSION_BUF_MAX while all sessions together hold less than
 * SESSIONS_BUF_MAX: a client that reads as its records come stays well
 * below its own share, and what a few stalled clients hold stays bounded.
 */
static bool room(const struct session *s, size_t n)
{
	size_t after = s->pending + n + 1;

	return after <= SESSION_BUF_OWN ||
	       (after <= SESSION_BUF_MAX && atomic_load(&all_pending) + n + 1 <= SESSIONS_BUF_MAX);
}

/* LINE and a newline at the tail; a line never spans two chunks. LIMIT:
 * SIZE_MAX for the records that always go in (the end, a note), else
 * room() decides. */
static bool append(struct session *s, const char *line, size_t n, size_t limit)
{
	struct chunk *c = s->tail;

	if ((limit != SIZE_MAX && !room(s, n)) || n + 1 > CHUNK_BYTES)
		return false;
	if (!c || c->len + n + 1 > CHUNK_BYTES) {
		c = s->spare ? s->spare : malloc(sizeof(*c));
		if (!c)
			return false;
		s->spare = NULL;
		c->next = NULL;
		c->len = c->off = 0;
		if (s->tail)
			s->tail->next = c;
		else
			s->head = c;
		s->tail = c;
	}
	memcpy(c->data + c->len, line, n);
	c->data[c->len + n] = '\n';
	c->len += n + 1;
	s->pending += n + 1;
	atomic_fetch_add(&all_pending, n + 1);
	return true;
}

/*
 * Under s->mu: a record dropped. Its client hears of it at once, the first
 * time (past the bound, as the end record goes: a few bytes), and run-end's
 * lost counts every one.
 */
static void drop(struct session *s)
{
	static const char note[] =
		"{\"t\":\"log\",\"level\":0,\"msg\":\"this run reads its audit events slower "
		"than they come: the daemon drops what does not fit in what it keeps for it "
		"(64 MiB at most), and counts them (run-end's lost)\"}";

	s->dropped++;
	if (s->told)
		return;
	s->told = true;
	if (append(s, note, sizeof(note) - 1, SIZE_MAX))
		wake(s);
}

static void push_line(struct session *s, const char *line, size_t n, size_t limit)
{
	pthread_mutex_lock(&s->mu);
	if (s->ended)
		; /* nobody reads any more */
	else if (line && append(s, line, n, limit))
		wake(s);
	else
		drop(s);
	pthread_mutex_unlock(&s->mu);
}

void session_push(struct session *s, json_object *rec)
{
	const char *line = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);

	push_line(s, line, line ? strlen(line) : 0, SESSION_BUF_MAX);
	json_object_put(rec);
}

/*
 * A decision goes into its session's own queue or is dropped: the daemon's
 * one event writer never waits for a client, so a client that reads slower
 * than its decisions come loses its own records (counted, and told) while
 * every other attachment's records flow. Waiting here made them all wait for the
 * slowest client that still read a little, and once the daemon's buffers
 * were full the kernel lost everyone's events.
 */
void session_push_event(struct session *s, const struct weir_event *e, const char *domain,
			const char *json, const char *human)
{
	char buf[EVREC_LINE_MAX];
	size_t n = evrec_encode(buf, sizeof(buf), e, domain, json, human);

	pthread_mutex_lock(&s->mu);
	if (s->ended)
		; /* nobody reads any more: not a loss of this session's */
	else if (n && append(s, buf, n, SESSION_BUF_MAX))
		wake(s);
	else
		drop(s);
	pthread_mutex_unlock(&s->mu);
}

void session_end(struct session *s, __u64 lost, bool detached)
{
	char line[96];
	int n;

	/* The last record goes in whatever waits before it: without it the
	 * client cannot tell the end from a daemon gone, nor what was lost. */
	n = snprintf(line, sizeof(line), "{\"t\":\"end\",\"lost\":%llu,\"detached\":%s}",
		     (unsigned long long)lost, detached ? "true" : "false");
	push_line(s, line, n, SIZE_MAX);
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

/* Under s->mu: up to MAX bytes from the head; emptied chunks go. */
static size_t take(struct session *s, char *buf, size_t max)
{
	struct chunk *c;
	size_t n = 0, k;

	while (n < max && (c = s->head)) {
		k = c->len - c->off < max - n ? c->len - c->off : max - n;
		memcpy(buf + n, c->data + c->off, k);
		c->off += k;
		n += k;
		if (c->off < c->len)
			break;
		s->head = c->next;
		if (!s->head)
			s->tail = NULL;
		if (s->spare)
			free(c);
		else
			s->spare = c;
	}
	s->pending -= n;
	atomic_fetch_sub(&all_pending, n);
	return n;
}

/* libmicrohttpd's thread: what is there, else the end, else wait. */
static ssize_t session_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct session *s = cls;
	ssize_t n;

	(void)pos;
	pthread_mutex_lock(&s->mu);
	if (s->pending) {
		n = take(s, buf, max);
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
	resp = mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, SESSION_CHUNK_MAX, session_read,
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
