/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Inbound: who may connect in (TCP) or send first (UDP) to the sockets of
 * an enforced cgroup, and the replies that answers them.
 *
 * The ingress program judges a TCP SYN reaching a listener, and a datagram
 * reaching an unconnected UDP socket, by its source against the inbound
 * rules (in the tries, under slot | WEIR_SLOT_INBOUND; see
 * include/weir/egress.h). The egress side then lets through what answers a
 * permitted flow instead of judging it as new egress:
 *  - TCP, statelessly: a packet from a local port an inbound rule names to
 *    a peer that rule permits, unless it is a SYN. Safe without state
 *    because a socket only sends a SYN after connect() (or a TCP Fast Open
 *    sendmsg(), which goes through the same pre_connect hook in
 *    __inet_stream_connect) passed the connect hook, and only answers with
 *    a SYN-ACK a SYN this program let in.
 *  - UDP: a datagram to a peer that sent first to the same socket and was
 *    permitted (weir_inflows, by socket cookie).
 *
 * Needs, from the program that includes it: vmlinux.h, bpf/maps.bpf.h,
 * bpf/verdict.bpf.h, bpf/backstop.bpf.h, and weir_att(), weir_slot_get(),
 * weir_judge_dest(), weir_is_resolver(), weir_count_decision(),
 * weir_event_new_how(), weir_submit(), weir_count() and bpf/flows.bpf.h before it.
 */
#ifndef WEIR_INBOUND_BPF_H
#define WEIR_INBOUND_BPF_H

#define WEIR_TCP_SYN 0x02
#define WEIR_TCP_ACK 0x10

/* Peers that sent first, by socket (see struct weir_inflow_key). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct weir_inflow_key);
	__type(value, struct weir_inflow);
} weir_inflows SEC(".maps");

/* A packet coming in, as its headers say. */
struct weir_inpkt {
	struct weir_pkt p; /* p.addr is the local address here */
	__u32 peer[4]; /* source; IPv4 in peer[0] */
	__u16 peer_port;
	__u8 tcp_flags;
};

static __always_inline int weir_in_parse(struct __sk_buff *skb, struct weir_inpkt *in)
{
	int err = weir_parse(skb, &in->p);

	if (err)
		return -1;
	if (in->p.family == AF_INET)
		err = bpf_skb_load_bytes(skb, offsetof(struct iphdr, saddr), in->peer, 4);
	else
		err = bpf_skb_load_bytes(skb, offsetof(struct ipv6hdr, saddr), in->peer, 16);
	if (err || !in->p.l4off)
		return -1;
	if (bpf_skb_load_bytes(skb, in->p.l4off, &in->peer_port, sizeof(in->peer_port)))
		return -1;
	in->peer_port = bpf_ntohs(in->peer_port);
	if (in->p.protocol == WEIR_IPPROTO_TCP &&
	    bpf_skb_load_bytes(skb, in->p.l4off + 13, &in->tcp_flags, 1))
		return -1;
	return 0;
}

static __always_inline const struct weir_lpm_val *weir_in_lookup(__s64 slot, __u8 family,
								 const __u32 addr[4])
{
	__u32 s = (__u32)slot | WEIR_SLOT_INBOUND;

	return family == AF_INET ? weir_lookup4(s, addr[0]) : weir_lookup6(s, addr);
}

/*
 * May this peer connect in to local port lport? Like weir_judge(), on the
 * inbound rules: their allow side only, no learned addresses.
 */
static __always_inline void weir_in_judge(__s64 slot, __u8 family, const __u32 peer[4],
					  __u16 lport, __u8 pclass, bool audit,
					  struct weir_decision *d)
{
	const struct weir_lpm_val *v;
	struct weir_portrange r;

	d->rule = 0;
	d->verdict = WEIR_V_DENY;
	if (slot < 0) {
		d->reason = WEIR_R_NO_POLICY;
		return;
	}
	v = weir_in_lookup(slot, family, peer);
	if (v && weir_match_side(&v->allow, lport, pclass, &r)) {
		d->rule = r.rule;
		d->reason = WEIR_R_ALLOW_RULE;
		d->verdict = WEIR_V_ALLOW;
		return;
	}
	d->reason = v && weir_side_used(&v->allow) ? WEIR_R_PORT : WEIR_R_NO_MATCH;
	if (audit)
		d->verdict = WEIR_V_WOULD_DENY;
}

static __always_inline bool weir_inflow_permits(__u32 handle, __u64 cookie, __u8 family,
						const __u32 addr[4], __u16 port)
{
	struct weir_inflow_key k = {
		.cookie = cookie,
		.family = family,
		.port = port,
		.handle = handle,
	};
	struct weir_inflow *f;

	__builtin_memcpy(k.addr, addr, sizeof(k.addr));
	f = bpf_map_lookup_elem(&weir_inflows, &k);
	/* Whatever policy let it in: a reload must not break a flow's replies
	 * (the peer's next datagram is judged again). */
	return f && f->verdict == WEIR_V_ALLOW;
}

/* Only what no rule named may be a reply: a deny rule (and the metadata
 * hard deny) still wins over an inbound rule. */
static __always_inline bool weir_in_may_answer(const struct weir_decision *d)
{
	return d->verdict != WEIR_V_ALLOW &&
	       (d->reason == WEIR_R_NO_MATCH || d->reason == WEIR_R_PORT);
}

/*
 * sendmsg/connect hooks: a UDP datagram to a peer that sent first to this
 * socket and was let in is a reply. to: the destination as judged
 * (IPv4-mapped already made IPv4).
 */
static __always_inline bool weir_in_reply_sa(struct bpf_sock_addr *ctx,
					     const struct weir_learn_key *to, __u16 port,
					     __u8 pclass, struct weir_decision *d)
{
	if (pclass != WEIR_P_UDP || !weir_in_may_answer(d))
		return false;
	if (!weir_inflow_permits(to->handle, bpf_get_socket_cookie(ctx), to->family,
				 (const __u32 *)to->addr, port))
		return false;
	d->verdict = WEIR_V_ALLOW;
	d->reason = WEIR_R_INBOUND_REPLY;
	d->rule = 0;
	return true;
}

/* The backstop: does this packet, which no rule allows, answer a permitted
 * inbound flow? (see the top of this file) */
static __always_inline bool weir_in_reply_pkt(struct __sk_buff *skb, struct bpf_sock *sk,
					      __u32 handle, const struct weir_pkt *p, __s64 slot,
					      struct weir_decision *d)
{
	const struct weir_lpm_val *v;
	struct weir_portrange r;
	__u8 pclass = weir_proto_class(p->protocol), flags = 0;

	if (slot < 0 || !p->l4off || !weir_in_may_answer(d))
		return false;
	if (pclass == WEIR_P_TCP) {
		if (bpf_skb_load_bytes(skb, p->l4off + 13, &flags, 1) ||
		    (flags & (WEIR_TCP_SYN | WEIR_TCP_ACK)) == WEIR_TCP_SYN)
			return false;
		v = weir_in_lookup(slot, p->family, p->addr);
		if (!v || !weir_match_side(&v->allow, sk->src_port, WEIR_P_TCP, &r))
			return false;
	} else if (pclass != WEIR_P_UDP ||
		   !weir_inflow_permits(handle, bpf_get_socket_cookie(skb), p->family, p->addr,
					p->port)) {
		return false;
	}
	d->verdict = WEIR_V_ALLOW;
	d->reason = WEIR_R_INBOUND_REPLY;
	d->rule = 0;
	return true;
}

/*
 * A datagram that answers this socket's own traffic is never judged as
 * inbound: from the destination the socket last sent to (its cache),
 * from weir's resolver, or from anywhere the egress policy allows.
 */
static __always_inline bool weir_in_is_answer(const struct weir_attach *at, struct bpf_sock *sk,
					      const struct weir_inpkt *in, __s64 slot, __u32 sflags)
{
	struct weir_dest dst = { .family = in->p.family, .port = in->peer_port };
	struct weir_learn_key to = {};
	struct weir_decision d = {};
	struct weir_skcache *c = NULL;
	struct weir_sock *s;

	/* This attachment's own verdict only (nested attachments share the
	 * cache; the other may allow what this one does not). */
	s = bpf_sk_storage_get(&weir_socks, sk, 0, 0);
	if (s)
		c = &s->cache;
	if (c && c->handle == at->handle && c->verdict != WEIR_V_DENY &&
	    c->family == in->p.family &&
	    c->port == in->peer_port && c->addr[0] == in->peer[0] && c->addr[1] == in->peer[1] &&
	    c->addr[2] == in->peer[2] && c->addr[3] == in->peer[3])
		return true;
	__builtin_memcpy(dst.ip6, in->peer, sizeof(dst.ip6));
	if (weir_is_resolver(at, &dst))
		return true;
	weir_judge_dest(at->handle, &dst, WEIR_P_UDP, slot, sflags & ~WEIR_SF_AUDIT, &to, &d);
	return d.verdict == WEIR_V_ALLOW;
}

/* Who connected in is not the task running now (softirq, or the peer's own
 * process on loopback): report the cgroup of the socket, and no task. */
static __always_inline void weir_in_emit(__u32 handle, struct __sk_buff *skb,
					 const struct weir_inpkt *in, __u16 lport,
					 const struct weir_decision *d)
{
	struct weir_event *e;

	weir_count_decision(handle, d->verdict, d->reason);
	e = weir_event_new_how(handle, WEIR_TASK_NONE);
	if (!e)
		return;
	e->pid = e->tid = e->uid = e->gid = 0;
	__builtin_memset(e->comm, 0, sizeof(e->comm));
	e->cgroup_id = bpf_skb_cgroup_id(skb);
	e->op = WEIR_OP_INBOUND;
	e->verdict = d->verdict;
	e->reason = d->reason;
	e->rule = d->rule;
	e->family = in->p.family;
	e->protocol = in->p.protocol;
	e->sock_type = in->p.protocol == WEIR_IPPROTO_TCP ? 1 : 2;
	e->port = lport;
	e->peer_port = in->peer_port;
	__builtin_memcpy(e->addr, in->peer, sizeof(e->addr));
	weir_submit(e);
}

/*
 * The judgement of a packet weir_inbound() parsed. A global function: every
 * outcome of the parse meets one walk of it in the verifier, instead of
 * each multiplying the paths through all of it; the socket and the
 * attachment are looked up again here (a global function takes no socket
 * pointer).
 */
__attribute__((noinline)) int weir_inbound_judge(struct __sk_buff *skb, struct weir_inpkt *in)
{
	const struct weir_attach *at = weir_att();
	struct weir_inflow_key k = {};
	struct weir_decision d = {};
	struct weir_inflow rec = {};
	struct weir_inflow *f;
	struct bpf_sock *sk;
	__u32 flags = 0, gen = 0;
	__u8 pclass;
	__u16 lport;
	__s64 slot;

	if (!in)
		return 0;
	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	pclass = weir_proto_class(sk->protocol);
	lport = sk->src_port;
	slot = weir_slot_get(at->handle, &flags, &gen);
	k.cookie = bpf_get_socket_cookie(skb);
	k.handle = at->handle;
	k.family = in->p.family;
	k.port = in->peer_port;
	__builtin_memcpy(k.addr, in->peer, sizeof(k.addr));
	f = bpf_map_lookup_elem(&weir_inflows, &k);
	/* Let in under this policy already (a reload judges the peer again). */
	if (slot >= 0 && f && f->gen == gen && f->verdict != WEIR_V_DENY)
		return 1;
	if (slot >= 0 && pclass == WEIR_P_UDP && weir_in_is_answer(at, sk, in, slot, flags))
		return 1;
	weir_in_judge(slot, in->p.family, in->peer, lport, pclass, flags & WEIR_SF_AUDIT, &d);
	if (d.verdict == WEIR_V_DENY)
		weir_count(WEIR_STAT_INBOUND_DROPS);
	/* A peer that keeps knocking (SYN retransmits, a datagram stream) is
	 * reported once per socket, peer and policy. */
	if (d.verdict != WEIR_V_ALLOW && !(f && f->gen == gen))
		weir_in_emit(at->handle, skb, in, lport, &d);
	/* TCP needs no record of what it let in (the egress side is stateless
	 * for TCP); UDP's replies look the peer up. */
	if (slot >= 0 && (pclass == WEIR_P_UDP || d.verdict != WEIR_V_ALLOW)) {
		rec.gen = gen;
		rec.verdict = d.verdict;
		bpf_map_update_elem(&weir_inflows, &k, &rec, BPF_ANY);
	}
	return d.verdict != WEIR_V_DENY;
}

/*
 * cgroup_skb/ingress: 1 lets the packet in, 0 drops it. Only a TCP SYN
 * (SYN without ACK) reaching a listener and a datagram reaching an
 * unconnected UDP socket are judged; everything else belongs to a flow
 * that was judged already.
 */
static __always_inline int weir_inbound(struct __sk_buff *skb)
{
	const struct weir_attach *at = weir_att();
	struct weir_inpkt in = {};
	struct bpf_sock *sk;
	__u8 pclass;

	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	if (weir_nested_skb(skb, at))
		return 1;
	pclass = weir_proto_class(sk->protocol);
	/* Established and connecting sockets: their peer passed the connect
	 * hook, or came in through a listener. */
	if (pclass == WEIR_P_TCP && sk->state != BPF_TCP_LISTEN)
		return 1;
	/* A connected UDP socket only receives from its peer (the kernel's
	 * socket lookup, compute_score()), which connect() judged; what it
	 * receives is its flow's (bpf/flows.bpf.h). */
	if (pclass == WEIR_P_UDP && sk->dst_port) {
		weir_flow_rx(skb, sk, at->handle);
		return 1;
	}
	if (pclass == WEIR_P_OTHER)
		return 1;
	if (weir_in_parse(skb, &in))
		return 0; /* a listener's packet we cannot read: fail closed */
	if (pclass == WEIR_P_TCP && (in.tcp_flags & (WEIR_TCP_SYN | WEIR_TCP_ACK)) != WEIR_TCP_SYN)
		return 1;
	/* Anything but 1 from a global function drops (the verifier wants
	 * 0-3 here and knows nothing of what it returns). */
	return weir_inbound_judge(skb, &in) == 1;
}

#endif /* WEIR_INBOUND_BPF_H */
