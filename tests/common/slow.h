/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * WEIR_TEST_SLOW=N: every Criterion timeout of this test binary N times
 * longer. The kernel matrix sets it when its guests run under emulation
 * (tests/kernels/vm.sh without /dev/kvm: TCG is several times slower), so
 * a timeout there means a hang, not a slow CPU. What a test checks is not
 * touched. Include once per test binary.
 */
#ifndef WEIR_TESTS_SLOW_H
#define WEIR_TESTS_SLOW_H

#include <stdlib.h>
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/internal/ordered-set.h>

static void slow_tests(struct criterion_ordered_set *tests, double k)
{
	struct criterion_test *t;

	FOREACH_SET(t, tests)
	{
		if (t->data)
			t->data->timeout *= k;
	}
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	const char *e = getenv("WEIR_TEST_SLOW");
	double k = e ? atof(e) : 0;
	struct criterion_suite_set *s;

	if (k <= 1)
		return;
	FOREACH_SET(s, set->suites)
	{
		if (s->suite.data)
			s->suite.data->timeout *= k;
		slow_tests(s->tests, k);
	}
}

#endif /* WEIR_TESTS_SLOW_H */
