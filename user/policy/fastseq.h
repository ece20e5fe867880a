/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Big inline rule lists read without libyaml's node tree (fastseq.c):
 * top-level `allow:`/`deny:` runs of `- ip: ADDR` / `- cidr: PREFIX` lines.
 */
#ifndef WEIR_FASTSEQ_H
#define WEIR_FASTSEQ_H

#include <stddef.h>

#include "policy.h"

/* Runs shorter than this go through libyaml as before (a variable: the
 * tests and the fuzzer set it to 1 to compare both ways on small files). */
#define FASTSEQ_MIN_RULES 1024
extern size_t fastseq_min_rules;

#define FASTSEQ_RUNS 2 /* allow and deny (a second of one is a duplicate key) */

struct fastseq_run {
	int which; /* 0: allow, 1: deny */
	size_t key_line; /* 0-based line of its `allow:` / `deny:` */
	struct policy_rule *rules; /* as policy.c's load_rule() makes them */
	size_t n;
	bool taken; /* policy.c found the key where it should be */
};

struct fastseq {
	char *text; /* the policy with the runs' lines emptied (newlines kept) */
	size_t len;
	struct fastseq_run runs[FASTSEQ_RUNS];
	size_t nruns;
};

/* 1: runs found (out filled: parse out->text instead, then take the runs'
 * rules); 0: none, or something the ordinary parse must say; -ENOMEM. */
int fastseq_scan(const char *buf, size_t len, struct fastseq *out);
void fastseq_free(struct fastseq *f);

#endif /* WEIR_FASTSEQ_H */
