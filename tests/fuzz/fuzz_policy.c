// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: a policy file through the parser and, when it loads, the
 * compiler and the summary `weir policy check` prints (make fuzz). The
 * files it names (include:, cidr_list:) are not read: a fuzzer that found
 * /dev/stdin or a 1 GB file would measure the disk, not the parser
 * (fuzz_netlist takes the lists). Each input is also read with the
 * fast path for big inline lists taken for any run (fastseq.c) and never:
 * the two must agree, rule by rule, or fail with the same message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "fastseq.h"
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

static void same_rules(const struct policy_rule *a, const struct policy_rule *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i].kind != b[i].kind || a[i].family != b[i].family ||
		    a[i].prefixlen != b[i].prefixlen || memcmp(a[i].addr, b[i].addr, 16) ||
		    a[i].protos != b[i].protos || a[i].n_ports != b[i].n_ports ||
		    a[i].line != b[i].line || a[i].col != b[i].col ||
		    a[i].upload_budget != b[i].upload_budget || !a[i].domain != !b[i].domain ||
		    (a[i].domain && strcmp(a[i].domain, b[i].domain)))
			abort();
}

/* The fast path for big inline lists against libyaml alone. */
static void both_ways(const unsigned char *data, size_t len)
{
	char e1[POLICY_ERR_LEN] = "", e2[POLICY_ERR_LEN] = "";
	struct policy *a = NULL, *b = NULL;
	int r1, r2;

	fastseq_min_rules = 1;
	r1 = policy_load_one("fuzz.yaml", (const char *)data, len, &a, e1);
	fastseq_min_rules = (size_t)-1;
	r2 = policy_load_one("fuzz.yaml", (const char *)data, len, &b, e2);
	fastseq_min_rules = FASTSEQ_MIN_RULES;
	if (r1 != r2 || (r1 && strcmp(e1, e2)))
		abort();
	if (!r1) {
		if (a->n_allow != b->n_allow || a->n_deny != b->n_deny ||
		    a->n_inbound != b->n_inbound)
			abort();
		same_rules(a->allow, b->allow, a->n_allow);
		same_rules(a->deny, b->deny, a->n_deny);
		same_rules(a->inbound, b->inbound, a->n_inbound);
	}
	policy_free(a);
	policy_free(b);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN];
	struct policy *p;
	struct compiled c;
	FILE *devnull;

	netlist_set_open(no_list);
	both_ways(data, len);
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
