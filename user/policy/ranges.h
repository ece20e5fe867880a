/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Big IPv4 policies as address intervals: the flattened trie entries of a
 * compiled policy turned into the blocks of weir_ranges4 (the layout is
 * described in <weir/egress.h>, struct weir_rblock; the lookup is
 * bpf/ranges.bpf.h). Written with a few large copies instead of one trie
 * insert per prefix.
 */
#ifndef WEIR_RANGES_H
#define WEIR_RANGES_H

#include <stddef.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "compile.h"

struct rblocks {
	struct weir_rblock *b; /* element i of the inner array, n of them */
	size_t n;
	size_t nblocks; /* data blocks (elements 1..nblocks) */
	size_t nvals; /* distinct values, index 0 (no match) included */
	size_t nintervals;
};

/*
 * Blocks for the IPv4 entries v4[0..n) as compile_flatten() leaves them
 * (sorted by address, then prefix length: covers first). Values keep the
 * compiled policy's local port set indexes (val.*.set, 1-based), for the
 * writer to map. -ENOMEM; -EINVAL if the entries are not in that order;
 * -E2BIG past WEIR_RB_N data blocks.
 */
int rblocks_build(const struct centry *v4, size_t n, struct rblocks *out);
void rblocks_free(struct rblocks *r);

/* The value for host-order address x, as bpf/ranges.bpf.h finds it (the
 * same code; for tests), in *out: 1, or 0 when no prefix contains x. */
int rblocks_lookup(const struct rblocks *r, __u32 x, struct weir_lpm_val *out);
/* The BPF side's own function, here run on the blocks rblocks_lookup() names. */
int weir_range4_find(__u32 slot, __u32 addr, struct weir_lpm_val *out);

#endif /* WEIR_RANGES_H */
