/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The event pump: the thread that reads the ring buffer only copies its
 * records out (tens of ns an event) and hands them, a batch at a time, to
 * a writer thread that formats and writes them. A slow write (a file
 * system flushing, a pipe whose reader lags) then no longer leaves the
 * ring buffer full while the kernel side drops events: the backlog waits
 * in memory, up to a bound, and past the bound the reader waits too (the
 * kernel side then counts what it cannot write, as before).
 */
#ifndef WEIR_PUMP_H
#define WEIR_PUMP_H

#include <stddef.h>

struct pump;

/* Called on the writer thread for each record, in order; then FLUSH once
 * the backlog is empty (may be NULL). */
typedef void (*pump_rec_fn)(void *ctx, const void *rec, size_t len);
typedef void (*pump_flush_fn)(void *ctx);

/* MAX_BYTES: the backlog's bound (rounded up to whole batches). */
int pump_new(pump_rec_fn rec, pump_flush_fn flush, void *ctx, size_t max_bytes,
	     struct pump **out);
/* A ring_buffer_sample_fn (ctx: the pump): copy the record into the
 * current batch. Waits while the backlog is at its bound. Returns 0. */
int pump_add(void *pump, void *rec, size_t len);
/* Hand the current batch to the writer (after each read of the ring). */
void pump_commit(struct pump *p);
/* Commit, then wait until the writer has handled every record. */
void pump_sync(struct pump *p);
/* pump_sync(), then end the writer. NULL-safe. */
void pump_free(struct pump *p);

#endif /* WEIR_PUMP_H */
