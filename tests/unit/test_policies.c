// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The daemon's policy directory (user/daemon/policies.c): generations grow
 * with every good change and only then; a broken file keeps the previous
 * version in force and says FILE:LINE:COL; a deleted file keeps it too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "policies.h"

#define assert_has(s, sub) cr_assert(strstr((s), (sub)), "'%s' does not contain '%s'", (s), (sub))

static char dir[64];
static int changes;
static char last_changed[256];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/weir-policies-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	changes = 0;
	last_changed[0] = '\0';
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(policies, .init = setup, .fini = teardown);

static void put(const char *name, const char *text)
{
	char path[256], tmp[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(rename(tmp, path), 0);
}

static void on_changed(void *ctx, struct policy_entry *e)
{
	changes++;
	snprintf(last_changed, sizeof(last_changed), "%s", e->name);
}

static const char *good1 = "version: 1\nname: web\nallow:\n  - domain: a.test\n";
static const char *good2 = "version: 1\nname: web\nallow:\n  - domain: b.test\n";
static const char *broken = "version: 1\nname: web\nallow:\n  - domian: a.test\n";

/* The domain of the first allow rule of the version in force. */
static void expect_domain(struct policy_entry *e, const char *domain)
{
	char err[POLICY_ERR_LEN];
	struct policy *p;

	cr_assert_eq(policies_parse(e, &p, err), 0, "%s", err);
	cr_assert_str_eq(p->allow[0].domain, domain);
	policy_free(p);
}

Test(policies, a_good_change_is_a_new_generation)
{
	struct policies *ps;
	struct policy_entry *e;
	char err[512];

	put("web.yaml", good1);
	put("notes.txt", "not a policy");
	cr_assert_eq(policies_open(dir, &ps), 0);
	cr_assert_eq(policies_scan(ps, on_changed, NULL), 1);
	e = policies_get(ps, "web", err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	cr_expect_eq(e->generation, 1);
	cr_expect_str_eq(e->state, "ok");
	cr_expect_null(policies_get(ps, "notes", err, sizeof(err)), "only *.yaml files");
	put("web.yaml", good2);
	cr_assert_eq(policies_scan(ps, on_changed, NULL), 1);
	cr_expect_eq(changes, 2);
	cr_expect_str_eq(last_changed, "web");
	cr_expect_eq(e->generation, 2);
	expect_domain(e, "b.test");
	/* The same bytes again (an editor's save without change): nothing. */
	put("web.yaml", good2);
	cr_expect_eq(policies_scan(ps, on_changed, NULL), 0);
	cr_expect_eq(e->generation, 2);
	policies_free(ps);
}

Test(policies, a_broken_file_keeps_the_old_version_and_says_where)
{
	struct policies *ps;
	struct policy_entry *e;
	char err[512], want[128];

	put("web.yaml", good1);
	cr_assert_eq(policies_open(dir, &ps), 0);
	policies_scan(ps, NULL, NULL);
	put("web.yaml", broken);
	cr_expect_eq(policies_scan(ps, on_changed, NULL), 0, "no change in force");
	cr_expect_eq(changes, 0);
	e = policies_get(ps, "web", err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	cr_expect_eq(e->generation, 1);
	snprintf(want, sizeof(want), "policy error: %s/web.yaml:4:5: ", dir);
	cr_expect(!strncmp(e->state, want, strlen(want)), "'%s' does not start '%s'", e->state,
		  want);
	assert_has(e->state, "domian");
	expect_domain(e, "a.test");
	/* Fixed: the next generation, and the error is gone. */
	put("web.yaml", good2);
	cr_expect_eq(policies_scan(ps, on_changed, NULL), 1);
	cr_expect_eq(e->generation, 2);
	cr_expect_str_eq(e->state, "ok");
	policies_free(ps);
}

Test(policies, a_file_broken_from_the_start_cannot_be_used)
{
	struct policies *ps;
	char err[512];

	put("bad.yaml", broken);
	cr_assert_eq(policies_open(dir, &ps), 0);
	cr_expect_eq(policies_scan(ps, NULL, NULL), 0);
	cr_expect_null(policies_get(ps, "bad", err, sizeof(err)));
	assert_has(err, "policy error: ");
	assert_has(err, "bad.yaml:4:5");
	cr_expect_null(policies_get(ps, "nosuch", err, sizeof(err)));
	assert_has(err, "no policy 'nosuch'");
	cr_expect_null(policies_get(ps, "../etc/x", err, sizeof(err)));
	assert_has(err, "absolute path");
	cr_expect_null(policies_get(ps, "a b", err, sizeof(err)));
	assert_has(err, "a NAME is");
	policies_free(ps);
}

Test(policies, a_deleted_file_keeps_its_last_version)
{
	struct policies *ps;
	struct policy_entry *e;
	char err[512], path[256];

	put("web.yaml", good1);
	cr_assert_eq(policies_open(dir, &ps), 0);
	policies_scan(ps, NULL, NULL);
	snprintf(path, sizeof(path), "%s/web.yaml", dir);
	cr_assert_eq(unlink(path), 0);
	cr_expect_eq(policies_scan(ps, on_changed, NULL), 0);
	e = policies_get(ps, "web", err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	cr_expect(e->gone);
	assert_has(e->state, "deleted");
	expect_domain(e, "a.test");
	/* Back again, with new bytes: a new generation. */
	put("web.yaml", good2);
	cr_expect_eq(policies_scan(ps, on_changed, NULL), 1);
	cr_expect_eq(e->generation, 2);
	cr_expect_not(e->gone);
	policies_free(ps);
}

Test(policies, a_deleted_file_put_back_as_it_was_is_ok_again)
{
	struct policies *ps;
	struct policy_entry *e;
	char err[512], path[256];

	put("web.yaml", good1);
	cr_assert_eq(policies_open(dir, &ps), 0);
	policies_scan(ps, NULL, NULL);
	snprintf(path, sizeof(path), "%s/web.yaml", dir);
	cr_assert_eq(unlink(path), 0);
	policies_scan(ps, on_changed, NULL);
	e = policies_get(ps, "web", err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	assert_has(e->state, "deleted");
	/* The same bytes: the same generation, and its state ok again. */
	put("web.yaml", good1);
	cr_expect_eq(policies_scan(ps, on_changed, NULL), 0);
	cr_expect_eq(e->generation, 1);
	cr_expect_not(e->gone);
	cr_expect_str_eq(e->state, "ok");
	policies_free(ps);
}

Test(policies, a_file_by_path_and_inotify)
{
	struct policies *ps;
	struct policy_entry *e;
	char err[512], path[256];

	cr_assert_eq(policies_open(dir, &ps), 0);
	cr_assert_geq(policies_inotify_fd(ps), 0);
	cr_expect_eq(policies_on_inotify(ps, on_changed, NULL), 0, "nothing happened yet");
	put("new.yaml", good1);
	cr_expect_eq(policies_on_inotify(ps, on_changed, NULL), 1);
	cr_expect_str_eq(last_changed, "new");
	snprintf(path, sizeof(path), "%s/new.yaml", dir);
	e = policies_get(ps, path, err, sizeof(err));
	cr_assert_not_null(e, "%s", err);
	cr_expect_str_eq(e->name, path, "a path is its own policy");
	policies_free(ps);
}
