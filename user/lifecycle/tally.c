// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>

#include "tally.h"

void tally_safe(const char *in, char *out, size_t len)
{
	size_t j = 0;

	for (; *in && j + 5 < len; in++) {
		unsigned char c = (unsigned char)*in;

		j += (size_t)snprintf(out + j, len - j,
				      c < 0x20 || c >= 0x7f || c == '\\' ? "\\x%02x" : "%c", c);
	}
	out[j] = '\0';
}

void tally_add(struct tally *t, const char *comm)
{
	char safe[64];
	size_t i;

	t->count++;
	tally_safe(comm && *comm ? comm : "?", safe, sizeof(safe));
	for (i = 0; i < t->n_comm; i++)
		if (!strcmp(t->comm[i], safe))
			return;
	if (t->n_comm < TALLY_COMMS)
		strcpy(t->comm[t->n_comm++], safe);
	else
		t->more_comms++; /* counts decisions of unlisted names, not names */
}

void tally_print_comms(FILE *f, const struct tally *t)
{
	size_t i;

	for (i = 0; i < t->n_comm; i++)
		fprintf(f, "%s%s", i ? ", " : "", t->comm[i]);
	if (!t->n_comm)
		fputs("?", f);
	if (t->more_comms)
		fputs(" and others", f);
}
