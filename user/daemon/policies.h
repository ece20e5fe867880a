/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The daemon's policies: every *.yaml of the policy directory (NAME is the
 * file name without .yaml), and files named by path in an attach request.
 * Each keeps the bytes of its last good version and a generation that
 * grows with every good change. A file that no longer parses keeps the old
 * version in force and carries the error ("policy error: FILE:LINE:COL:
 * message") until it is fixed; a deleted file keeps its last version too
 * (an attachment never loses its policy to a file operation).
 */
#ifndef WEIR_POLICIES_H
#define WEIR_POLICIES_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "policy.h"

#define POLICIES_STATE_LEN 1024

struct policy_entry {
	char name[256]; /* NAME, or the file's absolute path */
	char path[4096];
	char *text; /* the version in force; NULL: none ever parsed */
	size_t len;
	unsigned char sha[32]; /* of the bytes last read, good or bad */
	bool have_sha;
	__u32 generation; /* of the version in force; 0: none */
	char state[POLICIES_STATE_LEN]; /* "ok", or "policy error: ..." */
	bool gone; /* deleted: the last version stays in force */
	bool in_dir; /* a file of the policy directory */
	__u64 load_errors; /* versions read that did not load */
	/* That version as read to hash it, for the first policies_parse()
	 * right after: a changed million-prefix policy is parsed once, not
	 * twice (NULL once taken, or after the change was handled). */
	struct policy *parsed;
};

struct policies;

typedef void (*policies_changed_fn)(void *ctx, struct policy_entry *e);

int policies_open(const char *dir, struct policies **out);
/* Read every file again; changed(ctx, e) for each entry whose version in
 * force changed (its generation grew). Returns how many changed. */
int policies_scan(struct policies *ps, policies_changed_fn changed, void *ctx);
/* inotify on the directory (IN_CLOSE_WRITE, IN_MOVED_TO, IN_DELETE...),
 * -1 if it could not be watched. When readable: policies_on_inotify(). */
int policies_inotify_fd(const struct policies *ps);
int policies_on_inotify(struct policies *ps, policies_changed_fn changed, void *ctx);
/*
 * NAME (a file of the directory) or a path (it contains a '/'): the entry,
 * read now if it is a path not seen before. NULL with err filled when
 * there is no such policy, or it never parsed.
 */
struct policy_entry *policies_get(struct policies *ps, const char *name_or_path, char *err,
				  size_t len);
/*
 * A refused attach by path leaves the entry policies_get() made for it:
 * forget it when it never loaded and nothing uses it (used(ctx, name)), or
 * reload and metrics would report the refused file for ever. An entry an
 * adopted attachment uses stays: a later fix of the file must reach it.
 */
void policies_forget_failed(struct policies *ps, const char *name_or_path,
			    bool (*used)(void *ctx, const char *name), void *ctx);
/* A fresh struct policy of the version in force (the one reading the
 * file just made, if no one took it yet: the caller owns it either way). */
int policies_parse(const struct policy_entry *e, struct policy **out, char err[POLICY_ERR_LEN]);
/* Every entry: i from 0 until NULL. */
struct policy_entry *policies_at(struct policies *ps, size_t i);
/* 0 if DIR and the directories above it are root's (or sticky) and no one
 * else can write to them; else -EPERM (or -errno) with err saying which. */
int policies_dir_private(const char *dir, char *err, size_t len);
void policies_free(struct policies *ps);

#endif /* WEIR_POLICIES_H */
