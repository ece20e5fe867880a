/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The policies shipped in policy/, compiled into the binary (weir policy show). */
#ifndef WEIR_SHIPPED_H
#define WEIR_SHIPPED_H

#include <stddef.h>
#include <stdio.h>

/* The shipped policy weir run enforces when given none. */
#define POLICY_BUILTIN "agent-default"

/* The text of policy/NAME.yaml (NAME "preset:X": policy/presets/X.yaml),
 * byte for byte (NUL-terminated), and its length; NULL if no such policy
 * was shipped. */
const char *shipped_policy(const char *name, size_t *len);
/* "agent-default, demo, preset:anthropic, ..." */
void shipped_policy_list(FILE *f);
/* "anthropic, crates, ..." (the presets, without "preset:") */
void shipped_preset_names(char *buf, size_t len);

#endif /* WEIR_SHIPPED_H */
