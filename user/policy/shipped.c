// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>

#include "shipped.h"

/* From user/policy/builtin_policy.S. */
extern const char weir_builtin_policy[], weir_policy_demo[];
extern const unsigned long weir_builtin_policy_len, weir_policy_demo_len;

static const struct {
	const char *name;
	const char *text;
	const unsigned long *len;
} shipped[] = {
	{ POLICY_BUILTIN, weir_builtin_policy, &weir_builtin_policy_len },
	{ "demo", weir_policy_demo, &weir_policy_demo_len },
};

#define N_SHIPPED (sizeof(shipped) / sizeof(shipped[0]))

const char *shipped_policy(const char *name, size_t *len)
{
	size_t i;

	for (i = 0; i < N_SHIPPED; i++) {
		if (!strcmp(shipped[i].name, name)) {
			*len = *shipped[i].len;
			return shipped[i].text;
		}
	}
	return NULL;
}

void shipped_policy_list(FILE *f)
{
	size_t i;

	for (i = 0; i < N_SHIPPED; i++)
		fprintf(f, "%s%s", i ? ", " : "", shipped[i].name);
}
