/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * weir policy verify: replay recorded decisions against a policy and say
 * what it would deny (docs/policy.md, "Lifecycle").
 */
#ifndef WEIR_VERIFY_H
#define WEIR_VERIFY_H

#include <stdio.h>

#include "evread.h"
#include "judge.h"

/*
 * Judge every decision of FILES (none: stdin) by M and print, on OUT, each
 * destination it would deny, grouped, and a last line with the totals.
 * Returns 0 when nothing would be denied, 1 when something would, or a
 * negative errno with err filled (a malformed line: "FILE:LINE: ...").
 */
int verify_events(const struct matcher *m, char *const *files, int n, FILE *out,
		  char err[EVREAD_ERR_LEN]);

/* A decision replay leaves out: a DNS socket sent to weir's resolver
 * (whatever the policy), a datagram connect() that sent nothing, and a
 * flow's close (not a decision). */
bool verify_skips(const struct evrec *r);

#endif /* WEIR_VERIFY_H */
