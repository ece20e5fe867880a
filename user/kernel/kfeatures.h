/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What this kernel offers weir, probed once (the way systemd's
 * socket_bind_supported() does): the kernel features newer than the oldest
 * kernel weir runs on (Debian 12's 6.1) are probed and reported, never left
 * to fail in the verifier. The loader skips the programs whose feature is
 * off (egress.c: optional_programs), `weir status` and `weir run -v` list
 * what is on and off. docs/kernels.md says which kernel brings what.
 *
 * The BPF probes load tiny programs and maps, which needs BPF privileges:
 * without them (weir status as a user) bpf_probed is false and every field
 * that a BPF probe fills is false too; the printers say "unknown".
 *
 * kfeatures.h, not features.h: user/kernel/ is on the include path, and
 * that name would hide glibc's own <features.h>.
 */
#ifndef WEIR_KFEATURES_H
#define WEIR_KFEATURES_H

#include <stdbool.h>
#include <stdio.h>
#include <linux/bpf.h>

struct weir_features {
	char release[65]; /* uname -r: "6.1.0-57-amd64" */
	unsigned int major, minor; /* 6, 1 */
	bool bpf_probed; /* the BPF probes could run (privileges) */
	/* Needed: without them egress_supported() refuses to run. */
	bool ringbuf; /* BPF ring buffer (5.8) */
	bool cgroup_storage; /* BPF_MAP_TYPE_CGROUP_STORAGE (4.19): weir_attach */
	bool sk_storage; /* BPF_MAP_TYPE_SK_STORAGE (5.2): per-socket state */
	/* Optional: off means a narrower weir, said where it matters. */
	bool recvmsg_hooks; /* cgroup/recvmsg4/6 (5.2) */
	bool getpeername_hooks; /* cgroup/getpeername4/6 (5.8) */
	bool sock_release; /* cgroup/sock_release (5.9) */
	bool bpf_loop; /* the bpf_loop helper (5.17) */
	bool cgrp_storage; /* BPF_MAP_TYPE_CGRP_STORAGE, bpf_cgrp_storage_get (6.2) */
	bool unix_hooks; /* cgroup/connect_unix and sendmsg_unix (6.7) */
	/*
	 * BPF LSM active: /sys/kernel/security/lsm names bpf (lsm=...,bpf or
	 * CONFIG_LSM, as Debian's kernels have it) and an LSM program loads.
	 */
	bool bpf_lsm;
	bool lsm_listed; /* /sys/kernel/security/lsm was read */
	char lsm[256]; /* its contents, "" if it could not be read */
	int landlock_abi; /* Landlock ABI version, 0: no Landlock (5.13+) */
};

/* Probe every feature into *f; the first call probes, later ones copy
 * what it found. 0, or a negative errno if even uname failed. */
int features_probe(struct weir_features *f);
/*
 * May a program of this type (and attach point) call helper ID? Loads one
 * that does. Not libbpf_probe_bpf_helper(): libbpf 1.1 takes 6.12's "program
 * of this type cannot use helper" for yes.
 */
bool features_helper_ok(enum bpf_prog_type type, enum bpf_attach_type attach, enum bpf_func_id id);
/* One line per feature: "on"/"off"/"unknown", its name, what it gives. */
void features_print(const struct weir_features *f, FILE *out);
/* {"release": ..., "bpf_lsm": true, ..., "landlock_abi": 6}, no newline. */
void features_print_json(const struct weir_features *f, FILE *out);
/* Two pr_debug lines, "kernel R: on: ..." and "kernel R: off: ..." (-v). */
void features_log(const struct weir_features *f);

#endif /* WEIR_KFEATURES_H */
