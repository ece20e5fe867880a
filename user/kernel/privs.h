/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Privilege checks, so a missing capability is named, not a verifier error. */
#ifndef WEIR_PRIVS_H
#define WEIR_PRIVS_H

#include <stddef.h>

/* 0 if this process may load and attach cgroup BPF programs; -EPERM with
 * why[] naming the missing capabilities otherwise. */
int privs_check_bpf(char *why, size_t len);

#endif /* WEIR_PRIVS_H */
