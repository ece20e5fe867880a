/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the BPF object needs of the kernel's BTF, without libbpf reading
 * and indexing all of it (5.5 MB, ~40 ms of every standalone load): the
 * types its CO-RE relocations name, with only the members they reach, as
 * a BTF of its own for libbpf's btf_custom_path; and the BTF id of the
 * kfunc the unix programs call (WEIR_CALL_KERN_CTX).
 */
#ifndef WEIR_COREBTF_H
#define WEIR_COREBTF_H

#include <stdbool.h>
#include <stddef.h>

struct bpf_program;

struct core_btf {
	int fd;		    /* the small BTF (a memfd), -1: none, libbpf reads the kernel's */
	char path[32];	    /* /proc/self/fd/FD: for btf_custom_path */
	int kern_ctx_id;    /* bpf_cast_to_kern_ctx's id in the kernel's BTF, 0: none */
	unsigned int types; /* types in the small BTF, relocations it serves */
	unsigned int relos;
};

/*
 * SMALL: the small BTF for the CO-RE relocations of OBJ (the BPF ELF
 * object) in the sections SKIP does not reject (NULL: all). 0, or a
 * negative errno: cb->fd is then -1 and the caller lets libbpf read the
 * kernel's BTF as before. The kfunc's id is looked up either way.
 */
int core_btf_prepare(struct core_btf *cb, const void *obj, size_t obj_sz, bool small,
		     bool (*skip)(const char *sec));
void core_btf_release(struct core_btf *cb);

/* PROG's WEIR_CALL_KERN_CTX calls made the kfunc's: 0, or -ENOENT when it
 * has such a call and the kernel has no such kfunc. Before the load. */
int core_btf_patch_calls(const struct core_btf *cb, struct bpf_program *prog);

#endif
