// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer: `weir run --allow RULE`, then the compiler (make fuzz). */
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN], *rule;
	struct policy *p;
	struct compiled c;

	if (policy_load_buffer("t.yaml", "version: 1\n", 11, &p, err))
		abort();
	rule = strndup((const char *)data, len); /* argv strings end at a NUL */
	if (rule && !policy_add_arg(p, rule, err)) {
		struct compile_input in = { .policy = p };

		if (!compile_policy(&in, &c, cerr))
			compiled_free(&c);
	}
	free(rule);
	policy_free(p);
	return 0;
}
