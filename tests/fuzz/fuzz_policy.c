// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: a policy file through the parser and, when it loads, the
 * compiler and the summary `weir policy check` prints (make fuzz).
 */
#include <stdio.h>
#include <stdlib.h>

#include "compile.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN];
	struct policy *p;
	struct compiled c;
	FILE *devnull;

	if (policy_load_buffer("fuzz.yaml", (const char *)data, len, &p, err))
		return 0;
	struct compile_input in = { .policy = p };

	if (!compile_policy(&in, &c, cerr))
		compiled_free(&c);
	devnull = fopen("/dev/null", "w");
	if (devnull) {
		policy_print_summary(devnull, p);
		policy_print_warnings(devnull, p);
		fclose(devnull);
	}
	policy_free(p);
	return 0;
}
