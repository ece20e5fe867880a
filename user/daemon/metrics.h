/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Prometheus text format (exposition format 0.0.4) for weir daemon: the
 * helpers daemon_metrics() writes with, the page GET /metrics returns, and
 * the --metrics HOST:PORT server. The metric names are listed in
 * docs/daemon.md, "Metrics".
 */
#ifndef WEIR_METRICS_H
#define WEIR_METRICS_H

#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

struct daemon;

/* VALUE as a quoted label value: "..." with \, " and newline escaped. */
void metrics_label(FILE *f, const char *value);

/*
 * A latency histogram fed from any thread without a lock (relaxed atomic
 * adds: a scrape may see one observation in _count and not yet in a bucket,
 * which Prometheus tolerates). The buckets are fixed: 100 us to 2.5 s.
 */
#define METRICS_HIST_BUCKETS 14
struct metrics_hist {
	unsigned long long bucket[METRICS_HIST_BUCKETS + 1]; /* last: above every bound */
	unsigned long long count;
	unsigned long long sum_ns;
};
void metrics_hist_observe(struct metrics_hist *h, __u64 ns);
/* NAME_bucket{le=...}, NAME_sum (seconds), NAME_count, with # HELP and # TYPE. */
void metrics_hist_print(FILE *f, const char *name, const char *help,
			const struct metrics_hist *h);

/* The API's own counter, by HTTP status of each answered request. */
void metrics_count_request(unsigned int status);

/* The whole page: daemon_metrics() and the API's own metrics. Malloc'd. */
int metrics_render(struct daemon *d, char **text, size_t *len);
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Serve GET /metrics on HOST:PORT over TCP ("127.0.0.1:9477", "[::1]:9477",
 * ":9477" for every address) on a thread of its own. 0 or -errno, err says
 * why.
 */
int metrics_start(struct daemon *d, const char *addr, char *err, size_t len);
void metrics_stop(void);

#endif /* WEIR_METRICS_H */
