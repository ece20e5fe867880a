// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "pump.h"

#define BATCH_BYTES (256 << 10)
#define FREE_KEEP 4 /* spare batches kept for reuse, not freed */

/* Records one after another: a header, then the bytes, 8-byte aligned. */
struct rec_hdr {
	__u32 len;
	__u32 __pad;
};

struct batch {
	struct batch *next;
	size_t used;
	unsigned char data[BATCH_BYTES];
};

struct pump {
	pump_rec_fn rec;
	pump_flush_fn flush;
	void *ctx;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work; /* the writer waits: a batch, or stop */
	pthread_cond_t room; /* the reader waits: room in the backlog, or all handled */
	struct batch *head, *tail; /* committed, not yet handled */
	struct batch *spare;
	size_t n_spare;
	struct batch *cur; /* the one the reader fills: the reader's own */
	size_t queued, max; /* batches committed and not yet handled; the bound */
	unsigned long committed, handled;
	bool stop;
};

static void handle(struct pump *p, const struct batch *b)
{
	const struct rec_hdr *h;
	size_t off = 0;

	while (off < b->used) {
		h = (const struct rec_hdr *)(b->data + off);
		p->rec(p->ctx, h + 1, h->len);
		off += sizeof(*h) + ((h->len + 7) & ~7u);
	}
}

/* Back to the spares, or freed when there are enough; under mu. */
static void recycle(struct pump *p, struct batch *b)
{
	if (p->n_spare >= FREE_KEEP) {
		free(b);
		return;
	}
	b->next = p->spare;
	p->spare = b;
	p->n_spare++;
}

static void *writer_main(void *arg)
{
	struct pump *p = arg;
	struct batch *b;
	bool idle;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if (!p->head)
			break;
		b = p->head;
		p->head = b->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		handle(p, b);
		pthread_mutex_lock(&p->mu);
		idle = !p->head;
		if (idle && p->flush) {
			/* Nothing more to write for now: out it goes. */
			pthread_mutex_unlock(&p->mu);
			p->flush(p->ctx);
			pthread_mutex_lock(&p->mu);
		}
		recycle(p, b);
		p->queued--;
		p->handled++;
		pthread_cond_broadcast(&p->room);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int pump_new(pump_rec_fn rec, pump_flush_fn flush, void *ctx, size_t max_bytes,
	     struct pump **out)
{
	struct pump *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return -ENOMEM;
	p->rec = rec;
	p->flush = flush;
	p->ctx = ctx;
	p->max = (max_bytes + BATCH_BYTES - 1) / BATCH_BYTES ?: 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->room, NULL);
	err = pthread_create(&p->thread, NULL, writer_main, p);
	if (err) {
		free(p);
		return -err;
	}
	*out = p;
	return 0;
}

void pump_commit(struct pump *p)
{
	struct batch *b = p->cur;

	if (!b || !b->used)
		return;
	p->cur = NULL;
	b->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = b;
	else
		p->head = b;
	p->tail = b;
	p->queued++;
	p->committed++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

/* An empty batch for the reader, once the backlog has room for it. */
static struct batch *take(struct pump *p)
{
	struct batch *b;

	pthread_mutex_lock(&p->mu);
	while (p->queued >= p->max)
		pthread_cond_wait(&p->room, &p->mu);
	b = p->spare;
	if (b) {
		p->spare = b->next;
		p->n_spare--;
	}
	pthread_mutex_unlock(&p->mu);
	if (!b)
		b = malloc(sizeof(*b));
	if (b)
		b->used = 0;
	return b;
}

int pump_add(void *pump, void *rec, size_t len)
{
	struct pump *p = pump;
	size_t need = sizeof(struct rec_hdr) + ((len + 7) & ~(size_t)7);
	struct rec_hdr *h;

	if (p->cur && p->cur->used + need > BATCH_BYTES)
		pump_commit(p);
	if (!p->cur)
		p->cur = need <= BATCH_BYTES ? take(p) : NULL;
	if (!p->cur) {
		/* Out of memory (or a record bigger than a batch, which the
		 * ring buffer never holds): in order, on this thread. */
		pump_sync(p);
		p->rec(p->ctx, rec, len);
		return 0;
	}
	h = (struct rec_hdr *)(p->cur->data + p->cur->used);
	h->len = (__u32)len;
	h->__pad = 0;
	memcpy(h + 1, rec, len);
	p->cur->used += need;
	return 0;
}

void pump_sync(struct pump *p)
{
	pump_commit(p);
	pthread_mutex_lock(&p->mu);
	while (p->handled < p->committed)
		pthread_cond_wait(&p->room, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

void pump_free(struct pump *p)
{
	struct batch *b;

	if (!p)
		return;
	pump_sync(p);
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	while ((b = p->spare)) {
		p->spare = b->next;
		free(b);
	}
	free(p->cur);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->room);
	free(p);
}
