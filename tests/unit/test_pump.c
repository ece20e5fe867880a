// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: the event pump (user/events/pump.c): records reach the writer
 * thread whole and in order, sync waits for all of them, and a writer that
 * lags holds the reader at the backlog's bound. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "pump.h"

struct sink {
	unsigned long n, bad, flushes;
	unsigned long next; /* the sequence number expected */
	unsigned delay_us; /* per record: a lagging writer */
	atomic_ulong seen;
};

static void on_rec(void *ctx, const void *rec, size_t len)
{
	struct sink *s = ctx;
	unsigned char want[300];
	unsigned long seq;

	memcpy(&seq, rec, sizeof(seq));
	memset(want, (int)(seq & 0xff), sizeof(want));
	if (seq != s->next || len != 16 + seq % 200 ||
	    memcmp((const unsigned char *)rec + 8, want, len - 8))
		s->bad++;
	s->next = seq + 1;
	s->n++;
	atomic_store(&s->seen, s->n);
	if (s->delay_us)
		usleep(s->delay_us);
}

static void on_flush(void *ctx)
{
	((struct sink *)ctx)->flushes++;
}

static void add(struct pump *p, unsigned long seq)
{
	unsigned char rec[300];
	size_t len = 16 + seq % 200;

	memset(rec, (int)(seq & 0xff), sizeof(rec));
	memcpy(rec, &seq, sizeof(seq));
	cr_assert_eq(pump_add(p, rec, len), 0);
}

Test(pump, every_record_whole_and_in_order)
{
	struct sink s = {};
	struct pump *p;
	unsigned long i;

	cr_assert_eq(pump_new(on_rec, on_flush, &s, 1 << 20, &p), 0);
	for (i = 0; i < 200000; i++) {
		add(p, i);
		if (i % 1000 == 999)
			pump_commit(p); /* a read of the ring buffer ends */
	}
	pump_sync(p);
	cr_expect_eq(s.n, 200000);
	cr_expect_eq(s.bad, 0);
	cr_expect_gt(s.flushes, 0, "the writer flushes once idle");
	pump_free(p);
}

/* A writer stuck on its first record (gate closed): the reader stops at
 * the backlog's bound instead of growing it, and goes on once the writer
 * does. 1 MiB is four batches of 256 KiB, records of 24-224 bytes. */
static atomic_bool gate_open;
static atomic_ulong added;

static void on_rec_gated(void *ctx, const void *rec, size_t len)
{
	int i;

	for (i = 0; i < 100000 && !atomic_load(&gate_open); i++)
		usleep(100);
	on_rec(ctx, rec, len);
}

static void *adder(void *arg)
{
	unsigned long i;

	for (i = 0; i < 50000; i++) {
		add(arg, i);
		atomic_store(&added, i + 1);
	}
	return NULL;
}

Test(pump, a_stuck_writer_holds_the_reader_at_the_bound)
{
	struct sink s = {};
	unsigned long last = 0, now;
	struct pump *p;
	pthread_t t;
	int i;

	cr_assert_eq(pump_new(on_rec_gated, NULL, &s, 1 << 20, &p), 0);
	cr_assert_eq(pthread_create(&t, NULL, adder, p), 0);
	/* Records take 128 bytes on average here: four batches are ~8,200.
	 * Wait (at most 3 s, however loaded the machine) until the reader
	 * has filled them and then stays put. */
	for (i = 0; i < 60; i++) {
		usleep(50000);
		now = atomic_load(&added);
		if (now >= 4000 && now == last)
			break;
		last = now;
	}
	cr_expect_geq(last, 4000, "the reader stopped early, at %lu", last);
	cr_expect_lt(last, 12000, "the reader got %lu records ahead of a stuck writer", last);
	atomic_store(&gate_open, true);
	pthread_join(t, NULL);
	pump_free(p); /* syncs first */
	cr_expect_eq(s.n, 50000);
	cr_expect_eq(s.bad, 0);
}
