/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Lookups in a policy written as address intervals (WEIR_SF_RANGES4: big
 * IPv4 policies; the layout is described in <weir/egress.h>, struct
 * weir_rblock). Needs bpf/maps.bpf.h (weir_ranges4); the unit tests
 * include it with stand-ins for the map lookups.
 */
#ifndef WEIR_RANGES_BPF_H
#define WEIR_RANGES_BPF_H

#ifndef weir_opaque
#define weir_opaque(v) asm volatile("" : "+r"(v))
#endif

/*
 * The index of the last of w[0..WEIR_RB_N) that is <= x (w ascending, w[0]
 * <= x): a binary search without branches, so the verifier walks one path
 * and the index stays inside the block.
 */
static __always_inline __u32 weir_rsearch(const __u32 *w, __u32 x)
{
	__u32 pos = 0;
	int k;

#pragma unroll
	for (k = WEIR_RB_SHIFT - 1; k >= 0; k--) {
		__u64 d = (__u64)x - w[(pos + (1u << k)) & (WEIR_RB_N - 1)];

		/* Hidden from the compiler, which would turn the sign test
		 * below back into a branch (and the verifier walk 2^13 paths);
		 * a shift, not a mask of -1 or 0, which the verifier forks on. */
		weir_opaque(d);
		pos += (__u32)((d >> 63) ^ 1) << k; /* + 2^k when w[pos + 2^k] <= x */
		/* The compiler makes an OR of that sum, and 6.1's verifier
		 * loses the bounds of an OR of two unknown values: an AND it
		 * cannot drop (pos is hidden from it) gives them back. */
		weir_opaque(pos);
		pos &= WEIR_RB_N - 1;
	}
	return pos & (WEIR_RB_N - 1);
}

/*
 * The value for addr (network order) in a slot written as intervals
 * (WEIR_SF_RANGES4), copied to *out: 1, or 0 when no prefix of the policy
 * contains addr. A global function: the verifier checks it once, on its
 * own, not again inside every program and path that judges an address.
 */
__attribute__((noinline)) int weir_range4_find(__u32 slot, __u32 addr, struct weir_lpm_val *out)
{
	const struct weir_rblock *f, *b, *vb;
	__u32 x = bpf_ntohl(addr), key = 0, blk, v, nb;
	void *inner;

	if (!out)
		return 0;
	inner = bpf_map_lookup_elem(&weir_ranges4, &slot);
	if (!inner)
		return 0;
	f = bpf_map_lookup_elem(inner, &key);
	if (!f)
		return 0;
	nb = f->w[WEIR_RB_N];
	blk = weir_rsearch(f->w, x);
	if (blk >= nb) /* x = 255.255.255.255 meets the fence's padding */
		blk = nb - 1;
	key = 1 + blk;
	b = bpf_map_lookup_elem(inner, &key);
	if (!b)
		return 0;
	v = b->w[WEIR_RB_N + weir_rsearch(b->w, x)];
	if (!v)
		return 0;
	if (v & WEIR_RB_ONE) { /* one rule, every port and protocol, one side */
		struct weir_portrange r = { .lo = 0, .hi = 65535, .protos = WEIR_P_ANY,
					    .rule = v & WEIR_RB_RULE };

		__builtin_memset(out, 0, sizeof(*out));
		if (v & WEIR_RB_DENY)
			out->deny.inl = r;
		else
			out->allow.inl = r;
		return 1;
	}
	key = f->w[WEIR_RB_N + 1] + v / WEIR_RB_VALS;
	vb = bpf_map_lookup_elem(inner, &key);
	if (!vb)
		return 0;
	__builtin_memcpy(out, &vb->w[(v % WEIR_RB_VALS) * 8], sizeof(*out));
	return 1;
}

#endif /* WEIR_RANGES_BPF_H */
