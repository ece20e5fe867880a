// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * NRI's trunk and ttrpc framing (wire.h). Reads go into one buffer for the
 * trunk; each whole frame's payload is appended to its stream's buffer,
 * from which whole ttrpc messages are taken: a message may span frames and
 * a frame may hold parts of two messages, whatever the writer did.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

#define TRUNK_HDR 8
#define TTRPC_HDR 10
/* A trunk frame carries at most one message and its header. */
#define FRAME_MAX (TTRPC_HDR + WIRE_MSG_MAX)

void wire_init(struct wire *w, int fd)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
}

void wire_free(struct wire *w)
{
	size_t i;

	free(w->in.p);
	free(w->msg);
	for (i = 0; i < 3; i++)
		free(w->conn[i].p);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

static int buf_append(struct wire_buf *b, const void *p, size_t n)
{
	if (!n) /* an empty frame: nothing, and maybe no buffer yet */
		return 0;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		unsigned char *q;

		while (cap < b->len + n)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return -ENOMEM;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static void buf_consume(struct wire_buf *b, size_t n)
{
	if (!n)
		return;
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static uint32_t be32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static void put_be32(unsigned char *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

/* Move each whole trunk frame in W->in to its stream's buffer. */
static int split_frames(struct wire *w)
{
	uint32_t id, n;
	size_t off = 0;
	int ret = 0;

	while (w->in.len - off >= TRUNK_HDR) {
		id = be32(w->in.p + off);
		n = be32(w->in.p + off + 4);
		if (n > FRAME_MAX) {
			ret = -EPROTO;
			break;
		}
		if (w->in.len - off - TRUNK_HDR < n)
			break;
		/* A stream NRI does not use: nobody listens there; dropped. */
		if (id == WIRE_PLUGIN_CONN || id == WIRE_RUNTIME_CONN) {
			if (w->conn[id].len + n > 2 * (size_t)FRAME_MAX) {
				ret = -EPROTO;
				break;
			}
			ret = buf_append(&w->conn[id], w->in.p + off + TRUNK_HDR, n);
			if (ret)
				break;
		}
		off += TRUNK_HDR + n;
	}
	buf_consume(&w->in, off);
	return ret;
}

/* A whole message on stream ID: 1 (M filled in), 0 none yet, -EPROTO. */
static int take_message(struct wire *w, uint32_t id, struct wire_msg *m)
{
	struct wire_buf *b = &w->conn[id];
	uint32_t n;

	if (b->len < TTRPC_HDR)
		return 0;
	n = be32(b->p);
	if (n > WIRE_MSG_MAX)
		return -EPROTO;
	if (b->len < TTRPC_HDR + (size_t)n)
		return 0;
	m->conn = id;
	m->stream = be32(b->p + 4);
	m->type = b->p[8];
	m->flags = b->p[9];
	m->len = n;
	/* A copy (freed at the next call): the stream's buffer moves on. */
	m->data = malloc(n ? n : 1);
	if (!m->data)
		return -ENOMEM;
	memcpy(m->data, b->p + TTRPC_HDR, n);
	buf_consume(b, TTRPC_HDR + n);
	return 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int wire_recv(struct wire *w, struct wire_msg *m, int timeout_ms)
{
	long long end = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;
	unsigned char chunk[65536];
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
	uint32_t id;
	ssize_t n;
	int ret, left;

	free(w->msg);
	w->msg = NULL;
	for (;;) {
		/* The runtime's answers first: registered, then configured. */
		for (id = WIRE_RUNTIME_CONN; id >= WIRE_PLUGIN_CONN; id--) {
			ret = take_message(w, id, m);
			if (ret) {
				if (ret > 0)
					w->msg = m->data;
				return ret < 0 ? ret : 0;
			}
		}
		left = timeout_ms < 0 ? -1 : (int)(end - now_ms());
		if (timeout_ms >= 0 && left < 0)
			left = 0; /* one look, without waiting */
		ret = poll(&pfd, 1, left);
		if (ret < 0 && errno == EINTR)
			return -EINTR;
		if (ret < 0)
			return -errno;
		if (!ret)
			return -ETIMEDOUT;
		n = recv(w->fd, chunk, sizeof(chunk), 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		if (!n)
			return -ECONNRESET;
		ret = buf_append(&w->in, chunk, n);
		if (!ret)
			ret = split_frames(w);
		if (ret)
			return ret;
	}
}

static int send_all(int fd, const void *p, size_t n)
{
	const unsigned char *c = p;
	ssize_t k;

	while (n) {
		k = send(fd, c, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		c += k;
		n -= k;
	}
	return 0;
}

int wire_send(struct wire *w, uint32_t conn, uint32_t stream, uint8_t type, uint8_t flags,
	      const void *data, size_t len)
{
	unsigned char hdr[TRUNK_HDR + TTRPC_HDR];
	int ret;

	if (len > WIRE_MSG_MAX)
		return -EMSGSIZE;
	/* One frame: the message and its header fit in a frame's largest. */
	put_be32(hdr, conn);
	put_be32(hdr + 4, TTRPC_HDR + len);
	put_be32(hdr + 8, len);
	put_be32(hdr + 12, stream);
	hdr[16] = type;
	hdr[17] = flags;
	ret = send_all(w->fd, hdr, sizeof(hdr));
	return ret ? ret : send_all(w->fd, data, len);
}
