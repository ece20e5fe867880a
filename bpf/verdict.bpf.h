/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The verdict: given a policy slot, a destination and a protocol class,
 * which rule decides and how. Header-only so every program (and tests) can
 * share it. Needs bpf/maps.bpf.h.
 */
#ifndef WEIR_VERDICT_BPF_H
#define WEIR_VERDICT_BPF_H

#ifndef AF_INET
#define AF_INET 2
#define AF_INET6 10
#endif

#define WEIR_IPPROTO_TCP 6
#define WEIR_IPPROTO_UDP 17
#define WEIR_IPPROTO_UDPLITE 136
#define WEIR_IPPROTO_MPTCP 262

struct weir_decision {
	__u32 rule;
	__u32 domain_id;
	__u8 verdict; /* enum weir_verdict */
	__u8 reason; /* enum weir_reason */
	__u8 budget; /* the allow rule has an upload_budget (bpf/flows.bpf.h) */
};

/* Rules speak of tcp and udp; anything else only matches proto-any rules. */
static __always_inline __u8 weir_proto_class(__u32 protocol)
{
	switch (protocol) {
	case WEIR_IPPROTO_TCP:
	case WEIR_IPPROTO_MPTCP:
		return WEIR_P_TCP;
	case WEIR_IPPROTO_UDP:
	case WEIR_IPPROTO_UDPLITE:
		return WEIR_P_UDP;
	default:
		return WEIR_P_OTHER;
	}
}

#ifndef weir_opaque
#define weir_opaque(v) asm volatile("" : "+r"(v))
#endif

/*
 * Does range r cover port for protocol class pclass? One branch instead of
 * three: each term has its top bit set when its test fails (port < lo,
 * port > hi, no common protocol), hidden from the compiler, which would
 * make branches of them again (and the verifier walk each).
 */
static __always_inline bool weir_range_hit(const struct weir_portrange *r, __u32 port, __u32 pclass)
{
	__u64 below = (__u64)port - r->lo, above = (__u64)r->hi - port;
	__u64 none = (__u64)(r->protos & pclass) - 1;

	weir_opaque(below);
	weir_opaque(above);
	weir_opaque(none);
	return !((below | above | none) >> 63);
}

/*
 * A global function: the verifier checks it once per program, on its own,
 * instead of walking its loop again at every call site and in every state
 * the caller reaches it with (most of a program's verification time when it
 * was inlined: docs/performance.md, "Start-up"). user/lifecycle/judge.c,
 * which builds this header in userspace, makes it an ordinary static one.
 */
#ifndef WEIR_GLOBAL
#define WEIR_GLOBAL __attribute__((noinline))
#endif

/* The port ranges of a port set and of a learned address: one scan for both. */
struct weir_ranges {
	struct weir_portrange r[WEIR_PORTSET_MAX];
};
_Static_assert(WEIR_PORTSET_MAX == WEIR_LEARN_RANGES, "one scan for port sets and learned ranges");

/*
 * The first of rs->r[0..n) that covers port/pclass, copied to *out: 1, or 0
 * when none does. (A global function returns a number, never a pointer into
 * a map.)
 */
WEIR_GLOBAL int weir_ranges_find(const struct weir_ranges *rs, __u32 n, __u32 port, __u32 pclass,
				 struct weir_portrange *out)
{
	int i;

	if (!rs || !out)
		return 0;
	for (i = 0; i < WEIR_PORTSET_MAX; i++) {
		if (i >= n)
			break;
		if (weir_range_hit(&rs->r[i], port, pclass)) {
			__builtin_memcpy(out, &rs->r[i], sizeof(*out));
			return 1;
		}
	}
	return 0;
}

/* The range of one side (allow or deny) that covers port/pclass, copied to
 * *out: 1, or 0 when none does. */
static __always_inline int weir_match_side(const struct weir_match *m, __u32 port, __u32 pclass,
					   struct weir_portrange *out)
{
	const struct weir_portset *ps;
	__u32 set = m->set;

	if (!set) {
		if (!weir_range_hit(&m->inl, port, pclass))
			return 0;
		__builtin_memcpy(out, &m->inl, sizeof(*out));
		return 1;
	}
	ps = bpf_map_lookup_elem(&weir_portsets, &set);
	if (!ps)
		return 0;
	return weir_ranges_find((const struct weir_ranges *)ps->r, ps->n, port, pclass, out);
}

/* Does any rule on either side name this prefix at all? (for the reason) */
static __always_inline bool weir_side_used(const struct weir_match *m)
{
	return m->set || m->inl.protos;
}

/*
 * Deny beats allow; no allow means deny. The tries answer first (their deny
 * side included); addresses learned from DNS answers can only add an allow.
 * Audit mode lets everything through but hard denies (cloud metadata), and
 * says what it let through.
 */
static __always_inline void weir_judge(const struct weir_lpm_val *v,
				       const struct weir_learn_key *lkey, __u16 port, __u8 pclass,
				       bool audit, struct weir_decision *d)
{
	const struct weir_learn_val *l;
	struct weir_portrange m;
	bool named = false;

	d->rule = 0;
	d->verdict = WEIR_V_DENY;
	if (v) {
		if (weir_match_side(&v->deny, port, pclass, &m)) {
			d->rule = m.rule;
			d->reason = WEIR_R_DENY_RULE;
			if (m.flags & WEIR_RF_HARD)
				return;
			goto soften;
		}
		if (weir_match_side(&v->allow, port, pclass, &m)) {
			d->rule = m.rule;
			d->reason = WEIR_R_ALLOW_RULE;
			d->verdict = WEIR_V_ALLOW;
			d->budget = m.flags & WEIR_RF_BUDGET;
			return;
		}
		named = weir_side_used(&v->allow) || weir_side_used(&v->deny);
	}
	l = bpf_map_lookup_elem(&weir_learn, lkey);
	if (l && l->expires_ns > bpf_ktime_get_boot_ns()) {
		if (weir_ranges_find((const struct weir_ranges *)l->r, l->n, port, pclass, &m)) {
			d->rule = m.rule;
			d->domain_id = l->domain_id;
			d->reason = WEIR_R_LEARNED;
			d->verdict = WEIR_V_ALLOW;
			d->budget = m.flags & WEIR_RF_BUDGET;
			return;
		}
		/* Not this port or protocol: the name still says what it was. */
		d->domain_id = l->domain_id;
		named = true;
	}
	d->reason = named ? WEIR_R_PORT : WEIR_R_NO_MATCH;
soften:
	if (audit)
		d->verdict = WEIR_V_WOULD_DENY;
}

static __always_inline const struct weir_lpm_val *weir_lookup4(__u32 slot, __u32 addr)
{
	struct weir_key4 key = {
		.prefixlen = 32 + 32,
		.slot = slot,
	};

	__builtin_memcpy(key.addr, &addr, sizeof(addr));
	return bpf_map_lookup_elem(&weir_lpm4, &key);
}

static __always_inline const struct weir_lpm_val *weir_lookup6(__u32 slot, const __u32 addr[4])
{
	struct weir_key6 key = {
		.prefixlen = 32 + 128,
		.slot = slot,
	};

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&weir_lpm6, &key);
}

#endif /* WEIR_VERDICT_BPF_H */
