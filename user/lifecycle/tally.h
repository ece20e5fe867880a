/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What verify and suggest say of a group of decisions: how many, and
 * which processes (comm) made them.
 */
#ifndef WEIR_TALLY_H
#define WEIR_TALLY_H

#include <stddef.h>
#include <stdio.h>

#define TALLY_COMMS 8 /* names kept; more are "and N more" */

struct tally {
	unsigned long count;
	char comm[TALLY_COMMS][64]; /* printable: see tally_safe() */
	size_t n_comm;
	unsigned long more_comms;
};

void tally_add(struct tally *t, const char *comm);
/* "curl, python3 and 2 more" (or "?" when no process was known). */
void tally_print_comms(FILE *f, const struct tally *t);
/* IN with every byte outside printable ASCII (and the backslash) written
 * as \xNN: names and comm are chosen by the program, and end up in a
 * terminal, a YAML comment, a CI log. */
void tally_safe(const char *in, char *out, size_t len);

#endif /* WEIR_TALLY_H */
