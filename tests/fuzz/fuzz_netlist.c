// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer: a cidr_list file (user/policy/netlist.c) (make fuzz). */
#include <stdlib.h>

#include "netlist.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct list_prefix *v;
	char err[512];
	size_t n;

	if (!netlist_parse("fuzz.txt", (const char *)data, len, &v, &n, err, sizeof(err)))
		free(v);
	return 0;
}
