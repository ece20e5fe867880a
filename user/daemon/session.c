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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	pthread_cond_t room; /* a decision waits: the client took some */
	__u64 taken; /* pieces taken by the client, ever */
	bool stalled; /* its client took nothing for SESSION_STALL_MS */
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
	pthread_cond_init(&s->room, NULL);
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
	pthread_cond_destroy(&s->room);
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

/* LINE and a newline at the tail; a line never spans two chunks. */
static bool append(struct session *s, const char *line, size_t n, size_t limit)
{
	struct chunk *c = s->tail;

	if (s->pending + n + 1 > limit || n + 1 > CHUNK_BYTES)
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
	return true;
}

static void push_line(struct session *s, const char *line, size_t n, size_t limit)
{
	pthread_mutex_lock(&s->mu);
	if (s->ended || !line || !append(s, line, n, limit))
		s->dropped += !s->ended;
	else
		wake(s);
	pthread_mutex_unlock(&s->mu);
}

void session_push(struct session *s, json_object *rec)
{
	const char *line = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);

	push_line(s, line, line ? strlen(line) : 0, SESSION_BUF_MAX);
	json_object_put(rec);
}

static __s64 now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/*
 * A decision waits for room while its client reads: a burst then backs up
 * into the daemon's pump and the ring buffer before anything is lost. It
 * does not wait for a client that took nothing for SESSION_STALL_MS (one
 * stopped, or gone): that session drops and counts until it has read half
 * its backlog, and the other attachments' events go on. Nor while *HURRY:
 * someone waits for the writer (a detach reading an attachment's last
 * events) and may hold the very thread that serves the client; then the
 * record goes in past the bound, up to SESSION_BUF_HARD.
 */
static void push_wait(struct session *s, const char *line, size_t n, const atomic_int *hurry)
{
	__s64 since = 0;
	__u64 seen = 0;
	struct timespec t;

	pthread_mutex_lock(&s->mu);
	while (!s->ended && s->pending + n + 1 > SESSION_BUF_MAX && !s->stalled &&
	       !(hurry && atomic_load(hurry))) {
		if (!since || s->taken != seen) {
			since = now_ms();
			seen = s->taken;
		} else if (now_ms() - since > SESSION_STALL_MS) {
			s->stalled = true;
			break;
		}
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 10 * 1000000; /* and look at HURRY again */
		if (t.tv_nsec >= 1000000000) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->room, &s->mu, &t);
	}
	if (s->ended)
		; /* nobody reads any more: not a loss of this session's */
	else if (append(s, line, n, hurry && atomic_load(hurry) ? SESSION_BUF_HARD : SESSION_BUF_MAX))
		wake(s);
	else
		s->dropped++;
	pthread_mutex_unlock(&s->mu);
}

void session_push_event(struct session *s, const struct weir_event *e, const char *domain,
			const char *json, const char *human, const atomic_int *hurry)
{
	char buf[EVREC_LINE_MAX];
	size_t n = evrec_encode(buf, sizeof(buf), e, domain, json, human);

	if (n)
		push_wait(s, buf, n, hurry);
	else
		push_line(s, NULL, 0, 0);
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
	s->taken++;
	if (s->stalled && s->pending < SESSION_BUF_MAX / 2)
		s->stalled = false; /* it reads again */
	pthread_cond_broadcast(&s->room);
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
