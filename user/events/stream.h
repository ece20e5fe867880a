/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The event stream of weir run -e (docs/events.md): where it goes, and the
 * records around the decision events: run-start first, run-end last, and
 * with -e - weir's own messages as message records.
 */
#ifndef WEIR_STREAM_H
#define WEIR_STREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/types.h>

#include "events.h"

struct stream {
	FILE *f; /* NULL: no -e */
	bool on_stderr; /* -e -: messages become records, never human lines */
	bool named; /* -e FILE: opened by its name (not -e -, not /dev/fd/N) */
	bool started; /* the run-start record is out: run-end must follow */
	__s64 start_ns; /* CLOCK_MONOTONIC at run-start, for duration_ms */
	/* Message records from before run-start, written right after it so
	 * that run-start is the first line (or at close, if it never came). */
	char *pending;
	size_t n_pending;
};

/*
 * Open -e ARG: "-" is stderr; /dev/fd/N (/proc/self/fd/N, /dev/stdout,
 * /dev/stderr) is descriptor N, moved to a close-on-exec one so the command
 * never holds it; anything else a file, appended to, created 0600 (0640
 * with the group of the user who ran sudo), never through a symlink.
 * Returns 0 or a negative errno with why[].
 */
int stream_open(struct stream *s, const char *arg, char *why, size_t len);

/* The descriptor -e ARG names (/dev/fd/N and its aliases), else -1. */
int stream_fd_of(const char *arg);

/* What the run-start record says. */
struct stream_run {
	char *const *argv; /* the command */
	const char *policy_name; /* `name:`, or NULL */
	const char *policy_source; /* file name, or the built-in's */
	const unsigned char *policy_sha256; /* of the policy file's bytes */
	const char *const *allow; /* --allow rules */
	int n_allow;
	bool audit;
	const char *user; /* who the command runs as */
	uid_t uid;
	gid_t gid;
	const char *cgroup; /* below the cgroup2 mount */
	__u64 cgroup_id;
};

/* What the run-end record says. */
struct stream_end {
	int exit; /* weir's exit status */
	int signal; /* the command died of it; 0 if not */
	bool weir_failed; /* exit 125 is weir's, not the command's */
	struct summary_counts counts;
	__u64 lost; /* events the ring buffer had no room for */
	bool incomplete; /* decisions are missing, how many is unknown (a daemon went away) */
};

void stream_run_start(struct stream *s, const struct stream_run *run);
void stream_run_end(struct stream *s, const struct stream_end *end);
/* A message record: {"op":"message","level":"warning","message":...}. */
void stream_message(struct stream *s, const char *level, const char *msg);
/* -EIO if a record could not be written (a full disk, a reader gone). */
int stream_close(struct stream *s);

/* JSON string of arbitrary bytes: valid UTF-8 kept, control characters
 * escaped, invalid bytes as U+FFFD. */
void stream_json_str(FILE *f, const char *str);

#endif /* WEIR_STREAM_H */
