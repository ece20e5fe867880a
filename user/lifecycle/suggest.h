/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * weir policy suggest: a policy allowing what recorded events show the
 * workload reached (docs/policy.md, "Lifecycle").
 */
#ifndef WEIR_SUGGEST_H
#define WEIR_SUGGEST_H

#include <stdio.h>

#include "evread.h"
#include "judge.h"

#define SUGGEST_WILDCARD_MIN 3 /* sibling names that make a wildcard */

struct suggest_opts {
	const struct matcher *base; /* what is allowed already (an empty policy: loopback) */
	const char *base_path; /* printed as include: [BASE_PATH]; NULL: none */
	FILE *out; /* the policy */
	FILE *notes; /* what was left out, and why */
};

/* Read FILES (none: stdin) and print the policy. 0, or a negative errno
 * with err filled (a malformed line: "FILE:LINE: ..."). */
int suggest_events(const struct suggest_opts *o, char *const *files, int n,
		   char err[EVREAD_ERR_LEN]);

#endif /* WEIR_SUGGEST_H */
