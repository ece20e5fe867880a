/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The unix: section compiled: the built-in list of resolver and
 * container-engine sockets and the policy's patterns, as weir_unix trie
 * entries (include/weir/unix.h). docs/policy.md, "Unix sockets".
 */
#ifndef WEIR_UNIXSOCK_H
#define WEIR_UNIXSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>
#include <weir/unix.h>

#include "policy.h"

#define UNIX_PER_POLICY 64 /* weir_unix entries one policy may use */
#define UNIX_ERR_LEN 512

/* One trie entry; k.slot is filled in when a slot is written. */
struct cunix {
	struct weir_unix_key k;
	struct weir_unix_val v;
};

/* The built-in deny list, NULL-terminated (patterns as in a policy). */
extern const char *const unix_builtin_deny[];

/*
 * S[0..len) is an absolute path with no empty, "." or ".." component and no
 * trailing '/': the one spelling of its file a string can judge (symlinks
 * aside). bpf/unix.bpf.h's weir_unix_canonical() is the same rule.
 */
bool unix_path_canonical(const char *s, size_t len);

/* Why PATTERN (as the policy wrote it) can never be judged as meant, or NULL. */
const char *unix_pattern_problem(const char *pattern);

/* PATTERN ("/run/x.sock", "@name", a prefix ending in "*") as a key: 0 or -EINVAL. */
int unix_key_of(const char *pattern, struct weir_unix_key *k);

/*
 * The entries of P: the built-in list (unless builtin: off), then the
 * policy's patterns, which replace a built-in entry of the same pattern;
 * a pattern both allowed and denied is denied. *out is malloc'd (freed
 * with free()); -E2BIG with err[] past UNIX_PER_POLICY.
 */
int unix_compile(const struct policy *p, struct cunix **out, size_t *n, char err[UNIX_ERR_LEN]);

/* The pattern of a weir_unix rule id (WEIR_RK_UNIX), for messages. */
const char *unix_rule_pattern(const struct policy *p, __u32 rule);

/*
 * The unix: section as weir enforces it: whether the built-in list is on,
 * then one line per entry unix_compile() makes (the built-in list, a
 * policy's pattern in place of a built-in one, the policy's own; each named
 * as its events' rule field names it), the policy's patterns that have no
 * effect, and whether paths no pattern can judge are refused. Each line
 * starts with PFX ("# ": YAML comments).
 */
void unix_print_effective(FILE *f, const struct policy *p, const char *pfx);
/* The unix: part of `weir policy check`'s summary (policy_print_summary). */
void unix_print_summary(FILE *f, const struct policy *p);

#endif /* WEIR_UNIXSOCK_H */
