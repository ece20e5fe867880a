/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Userspace side of bpf/egress.bpf.c: load the programs, attach them to a
 * cgroup, write compiled policies into the maps, read the counters.
 *
 * One struct egress owns the maps; each enforced cgroup is one handle with
 * its own attachment (weir run uses handle 0). Writing a policy never edits
 * the one in force: it fills a free slot and then flips the handle.
 */
#ifndef WEIR_EGRESS_USER_H
#define WEIR_EGRESS_USER_H

#include <stdbool.h>
#include <linux/types.h>

#include "compile.h"

struct egress;

struct egress_opts {
	__u32 lpm_entries; /* per family, room for two generations */
	__u32 portsets;
	__u32 slots;
	__u32 ringbuf_bytes; /* power of two, >= page size */
	int task_info; /* enum weir_task_info, or -1: probe */
	__u16 dns_port; /* weir's resolver: port 53 is redirected here; 0: off */
	__u32 dns_ip4; /* network order */
	__u32 dns_ip6[4];
};

/* Can this kernel run weir at all? 0, or -EOPNOTSUPP with why[] filled. */
int egress_supported(char *why, size_t len);
/* Which way the programs read pid/comm/cgroup on this kernel (cached). */
int egress_task_info(void);

int egress_open(const struct egress_opts *opts, struct egress **out);
/* Attach the programs to cgroup_fd (bpf_link, multi-attach), pinning each
 * link in pin_dir (if not NULL) so that they outlive this process. */
int egress_attach(struct egress *e, int cgroup_fd, const char *pin_dir);
/* Unpin the links (they detach when this process lets go of them). */
void egress_unpin(struct egress *e);
/* Detach from the cgroup, keep the maps and the policy (benchmarks). */
void egress_detach(struct egress *e);
/* Kernel memory of the maps (fdinfo memlock), in bytes. */
__u64 egress_map_bytes(const struct egress *e);
/* Make `c` the policy in force, atomically. */
int egress_apply(struct egress *e, const struct compiled *c);
int egress_events_fd(const struct egress *e);
/* Learned addresses (weir_learn); handle is filled in by these. */
int egress_learn_set(struct egress *e, struct weir_learn_key *k, const struct weir_learn_val *v);
int egress_learn_del(struct egress *e, struct weir_learn_key *k);
/* Who sent the DNS query on socket `cookie` (weir_askers). */
int egress_asker(struct egress *e, __u64 cookie, struct weir_asker *out);
__u64 egress_stat(const struct egress *e, __u32 stat);
/* Detach and free; NULL-safe. */
void egress_destroy(struct egress *e);

#endif /* WEIR_EGRESS_USER_H */
