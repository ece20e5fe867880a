// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: a policy file through the parser and, when it loads, the
 * compiler and the summary `weir policy check` prints (make fuzz). The
 * files it names (include:, cidr_list:) are not read: a fuzzer that found
 * /dev/stdin or a 1 GB file would measure the disk, not the parser
 * (fuzz_netlist takes the lists).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "compile.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

static int no_file(void *ctx, const char *path, char **bufp, size_t *lenp,
		   char err[POLICY_ERR_LEN])
{
	snprintf(err, POLICY_ERR_LEN, "%s: not read while fuzzing", path);
	return -ENOENT;
}

static int no_list(const char *path, char *err, size_t len)
{
	snprintf(err, len, "%s: not read while fuzzing", path);
	return -ENOENT;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN];
	struct policy *p;
	struct compiled c;
	FILE *devnull;

	netlist_set_open(no_list);
	if (policy_load_tree("fuzz.yaml", (const char *)data, len, no_file, NULL, NULL, &p, err))
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
