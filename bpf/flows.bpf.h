/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Flows (one close event per connection, with its byte counts) and upload
 * budgets (bytes a rule lets out, per attachment). See include/weir/flows.h.
 *
 * A flow starts in the connect hooks, which are the only ones that run in
 * the connecting task's context: pid, comm and the deciding rule are kept
 * in the socket's storage (weir_socks, struct weir_sock) then. It ends:
 *  - TCP: when the socket reaches TCP_CLOSE (the sockops program asks for
 *    state callbacks at BPF_SOCK_OPS_TCP_CONNECT_CB, tcp_connect()). Then
 *    the kernel's own counters are final: tcp_sock bytes_acked (what the
 *    peer acknowledged) and bytes_received (what arrived in order), less
 *    the one sequence number a SYN and a FIN each take. close() returning
 *    is not the end: data still queued goes out (and is counted) after it.
 *  - connected UDP: when the socket is released (cgroup/sock_release,
 *    inet_release()), with the payload the backstop and the ingress
 *    program counted on the way.
 *
 * Needs, from the program that includes it: vmlinux.h, bpf/maps.bpf.h,
 * bpf/verdict.bpf.h, bpf/backstop.bpf.h, struct weir_dest, struct weir_who,
 * weir_att(), weir_count(), weir_count_decision(), weir_event_new_how()
 * and weir_submit().
 */
#ifndef WEIR_FLOWS_BPF_H
#define WEIR_FLOWS_BPF_H

#include <weir/flows.h>

/* Unconnected UDP sockets' destinations, each reported once (flows.h). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct weir_udests);
} weir_udests SEC(".maps");

/* Sized by userspace (egress_opts.budgets). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct weir_budget_key);
	__type(value, struct weir_budget);
} weir_budgets SEC(".maps");

/* --- upload budgets ------------------------------------------------------ */

/* weir_budget_charge() results */
#define WEIR_BUDGET_OK 0
#define WEIR_BUDGET_SAY 1 /* past it, and this caller reports it */
#define WEIR_BUDGET_QUIET 2 /* past it, reported already */

/*
 * Charge bytes of payload to rule's budget for this attachment; 0 bytes
 * asks whether a new connection or datagram may start. The first refusal
 * marks the budget spent: nothing more fits, whatever its size, until a
 * reload raises the limit. No entry for a rule flagged WEIR_RF_BUDGET (a
 * policy half written): refused, and said every time.
 */
static __always_inline int weir_budget_charge(__u32 handle, __u32 rule, __u64 bytes)
{
	struct weir_budget_key k = { .handle = handle, .rule = rule };
	struct weir_budget *b = bpf_map_lookup_elem(&weir_budgets, &k);
	int ret = WEIR_BUDGET_OK;

	if (!b)
		return WEIR_BUDGET_SAY;
	bpf_spin_lock(&b->lock);
	if (!b->spent && (bytes ? b->used + bytes <= b->limit : b->used < b->limit)) {
		b->used += bytes;
	} else {
		b->spent = 1;
		b->refused++;
		ret = b->said ? WEIR_BUDGET_QUIET : WEIR_BUDGET_SAY;
		b->said = 1;
	}
	bpf_spin_unlock(&b->lock);
	return ret;
}

/*
 * connect()/sendmsg(): a destination an allow rule with a spent budget
 * decides is refused (audit: let through, would-deny). Returns true when
 * the decision must make no event: the budget's one event went already.
 */
static __always_inline bool weir_budget_gate(__u32 handle, bool audit, struct weir_decision *d)
{
	int r;

	if (d->verdict != WEIR_V_ALLOW || !d->budget)
		return false;
	r = weir_budget_charge(handle, d->rule, 0);
	if (r == WEIR_BUDGET_OK)
		return false;
	weir_count(WEIR_STAT_BUDGET_DROPS);
	d->verdict = audit ? WEIR_V_WOULD_DENY : WEIR_V_DENY;
	d->reason = WEIR_R_BUDGET;
	return r == WEIR_BUDGET_QUIET;
}

/* Payload of a packet the backstop parsed: what a budget and a UDP flow
 * count. A later fragment has no transport header: all of it counts. */
static __always_inline __u64 weir_payload(struct __sk_buff *skb, const struct weir_pkt *p)
{
	__u32 hl = 8;
	__u8 off;

	if (!p->l4off)
		return skb->len;
	if (p->protocol == WEIR_IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, p->l4off + 12, &off, 1))
			return skb->len - p->l4off;
		hl = (off >> 4) * 4;
	}
	return skb->len > p->l4off + hl ? skb->len - p->l4off - hl : 0;
}

/*
 * The budget's one event, from the backstop: an egress event naming the
 * packet. TCP sends from softirq and timers as often as from send(): the
 * task is the one that connected (its flow's), where the socket has one.
 */
static __always_inline void weir_budget_say(struct bpf_sock *sk, const struct weir_sock *s,
					    __u32 handle, const struct weir_pkt *p, __u32 rule,
					    __u8 verdict)
{
	const struct weir_flow *f = s ? &s->flow : NULL;
	struct weir_event *e;

	weir_count_decision(handle, verdict, WEIR_R_BUDGET);
	e = weir_event_new_how(handle, weir_cfg.skb_task_info);
	if (!e)
		return;
	if (f && f->state && f->r.handle == handle) {
		e->pid = f->r.pid;
		e->tid = f->r.tid;
		e->uid = f->r.uid;
		e->gid = f->r.gid;
		e->cgroup_id = f->r.cgroup_id;
		__builtin_memcpy(e->comm, f->r.comm, sizeof(e->comm));
	}
	e->rule = rule;
	e->verdict = verdict;
	e->reason = WEIR_R_BUDGET;
	e->op = WEIR_OP_EGRESS;
	e->family = p->family;
	e->protocol = p->protocol;
	e->sock_type = sk->type;
	e->port = p->port;
	__builtin_memcpy(e->addr, p->addr, sizeof(e->addr));
	weir_submit(e);
}

/*
 * The backstop, for a packet its rule lets through: charge its payload to
 * the rule's budget. Returns 0 to drop it. Packets without payload (ACKs,
 * FIN, RST) are neither counted nor dropped: a connection past its budget
 * can still receive and be closed.
 */
static __always_inline int weir_budget_pkt(struct bpf_sock *sk, const struct weir_sock *s,
					   __u32 handle, const struct weir_pkt *p, __u64 payload,
					   __u32 rule, bool audit)
{
	__u8 verdict = audit ? WEIR_V_WOULD_DENY : WEIR_V_DENY;
	int r;

	if (!payload)
		return 1;
	r = weir_budget_charge(handle, rule, payload);
	if (r == WEIR_BUDGET_OK)
		return 1;
	if (!audit)
		weir_count(WEIR_STAT_BUDGET_DROPS);
	if (r == WEIR_BUDGET_SAY)
		weir_budget_say(sk, s, handle, p, rule, verdict);
	else
		weir_count_decision(handle, verdict, WEIR_R_BUDGET);
	return audit;
}

/* --- close events --------------------------------------------------------- */

/* A record starts (a flow's at its connect(), a destination's at its first
 * datagram): who and when (w), what was judged (dst) and how (d). */
static __always_inline void weir_rec_start(struct weir_rec *r, const struct weir_who *w,
					   __u32 handle, const struct weir_dest *dst,
					   const struct weir_decision *d,
					   const struct bpf_sock_addr *ctx)
{
	r->start_ns = w->ts_ns;
	r->cgroup_id = w->t.cgroup_id;
	r->pid = w->t.pid;
	r->tid = w->t.tid;
	r->uid = w->t.uid;
	r->gid = w->t.gid;
	__builtin_memcpy(r->comm, w->comm, sizeof(r->comm));
	r->handle = handle;
	r->rule = d->rule;
	r->domain_id = d->domain_id;
	__builtin_memcpy(r->addr, dst->ip6, sizeof(r->addr));
	r->port = dst->port;
	r->protocol = ctx->protocol;
	r->family = dst->family;
	r->flags = dst->flags;
	r->verdict = d->verdict;
	r->reason = d->reason;
	r->sock_type = ctx->type;
	r->op = dst->op;
}

/*
 * The close event of a record: a flow's, with its bytes, or a destination's,
 * with its datagrams. Not a decision: not counted in weir_counts. A global
 * function, verified once per program, not on every path that ends a record
 * (sock_release ends up to WEIR_UDEST_N of them and a flow).
 */
__attribute__((noinline)) int weir_close_emit(const struct weir_rec *r, __u64 tx, __u64 rx,
					      __u64 datagrams)
{
	struct weir_event *e;
	__u64 now = bpf_ktime_get_boot_ns();

	if (!r)
		return 0;
	e = bpf_ringbuf_reserve(&weir_events, sizeof(*e), 0);
	if (!e) {
		weir_count(WEIR_STAT_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = now;
	e->cgroup_id = r->cgroup_id;
	e->pid = r->pid;
	e->tid = r->tid;
	e->uid = r->uid;
	e->gid = r->gid;
	e->rule = r->rule;
	e->handle = r->handle;
	e->verdict = r->verdict;
	e->op = WEIR_OP_CLOSE;
	e->reason = r->reason;
	e->family = r->family;
	e->protocol = r->protocol;
	e->sock_type = r->sock_type;
	e->flags = r->flags;
	e->port = r->port;
	__builtin_memcpy(e->addr, r->addr, sizeof(e->addr));
	__builtin_memcpy(e->comm, r->comm, sizeof(e->comm));
	e->domain_id = r->domain_id;
	e->tx_bytes = tx;
	e->rx_bytes = rx;
	e->datagrams = datagrams;
	e->duration_ns = now > r->start_ns ? now - r->start_ns : 0;
	weir_submit(e);
	return 0;
}

/* --- flows --------------------------------------------------------------- */

static __always_inline bool weir_flow_live(const struct weir_flow *f, __u32 handle)
{
	return f && f->r.handle == handle &&
	       (f->state == WEIR_FLOW_OPEN || f->state == WEIR_FLOW_ARMED);
}

/* The close event of flow f. */
static __always_inline void weir_flow_emit(struct weir_flow *f, __u64 tx, __u64 rx)
{
	f->state = WEIR_FLOW_DONE;
	weir_close_emit(&f->r, tx, rx, 0);
}

/* A UDP flow ends: reported if anything went either way (glibc's
 * getaddrinfo() connects UDP sockets only to pick a source address). */
static __always_inline void weir_flow_end_udp(struct weir_flow *f)
{
	if (f->tx_bytes || f->rx_bytes)
		weir_flow_emit(f, f->tx_bytes, f->rx_bytes);
	else
		f->state = WEIR_FLOW_DONE;
}

static __always_inline bool weir_flow_same_dest(const struct weir_flow *f,
						const struct weir_learn_key *to, __u16 port)
{
	const __u32 *a = (const __u32 *)to->addr;

	return f->r.port == port && f->judged_family == to->family && f->judged[0] == a[0] &&
	       f->judged[1] == a[1] && f->judged[2] == a[2] && f->judged[3] == a[3];
}

/*
 * connect() let a TCP or UDP socket through: its flow starts. A UDP socket
 * connected again ends its flow to the old peer first. Nested attachments
 * each run this for the same connect(): the innermost (it runs first)
 * keeps the flow and reports it. s: the socket's weir_sock, when the caller
 * has it already (NULL: looked up, or made, here).
 */
static __always_inline void weir_flow_start(struct bpf_sock_addr *ctx, struct weir_sock *s,
					    __u32 handle, const struct weir_dest *dst,
					    const struct weir_learn_key *to,
					    const struct weir_decision *d, const struct weir_who *w)
{
	struct weir_flow *f;

	if (d->verdict == WEIR_V_DENY || weir_proto_class(ctx->protocol) == WEIR_P_OTHER ||
	    (dst->op != WEIR_OP_CONNECT4 && dst->op != WEIR_OP_CONNECT6))
		return;
	if (!s) /* the cache was left alone (weir_prefill()) */
		s = bpf_sk_storage_get(&weir_socks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return;
	f = &s->flow;
	if (f->state == WEIR_FLOW_OPEN || f->state == WEIR_FLOW_ARMED) {
		if (f->r.handle != handle && weir_flow_same_dest(f, to, dst->port))
			return;
		if (f->r.handle == handle && weir_proto_class(f->r.protocol) == WEIR_P_UDP)
			weir_flow_end_udp(f);
	}
	weir_rec_start(&f->r, w, handle, dst, d, ctx);
	f->tx_bytes = 0;
	f->rx_bytes = 0;
	__builtin_memcpy(f->judged, to->addr, sizeof(f->judged));
	f->judged_family = to->family;
	f->state = WEIR_FLOW_OPEN;
}

/* The backstop let a packet of a UDP socket through: its flow's payload
 * (f: the socket's, whatever state it is in). */
static __always_inline void weir_flow_tx(struct weir_flow *f, __u32 handle,
					 const struct weir_pkt *p, __u64 payload)
{
	if (weir_proto_class(p->protocol) != WEIR_P_UDP)
		return;
	if (!weir_flow_live(f, handle) || f->r.port != p->port || f->judged[0] != p->addr[0] ||
	    f->judged[1] != p->addr[1] || f->judged[2] != p->addr[2] || f->judged[3] != p->addr[3])
		return;
	__sync_fetch_and_add(&f->tx_bytes, payload);
}

/* A datagram reached a connected UDP socket (only its peer's can: the
 * kernel's socket lookup): its payload, IPv6 extension headers included. */
static __always_inline void weir_flow_rx(struct __sk_buff *skb, struct bpf_sock *sk, __u32 handle)
{
	struct weir_sock *s = bpf_sk_storage_get(&weir_socks, sk, 0, 0);
	struct weir_flow *f = s ? &s->flow : NULL;
	__u32 hl = 40 + 8;
	__u8 vihl;

	if (!weir_flow_live(f, handle))
		return;
	if (skb->protocol == bpf_htons(WEIR_ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, &vihl, 1))
			return;
		hl = (vihl & 0xf) * 4 + 8;
	}
	if (skb->len > hl)
		__sync_fetch_and_add(&f->rx_bytes, skb->len - hl);
}

/* --- destinations of unconnected UDP sockets ------------------------------ */

/* The close event of one destination (its count); frees its place. */
static __always_inline void weir_udest_emit(struct weir_udest *u)
{
	u->used = 0;
	weir_close_emit(&u->r, 0, 0, u->datagrams);
}

/* A destination's place among a socket's WEIR_UDEST_N. */
static __always_inline __u32 weir_udest_place(const struct weir_dest *dst)
{
	__u32 h = dst->ip6[0] ^ dst->ip6[1] ^ dst->ip6[2] ^ dst->ip6[3] ^ dst->port;

	return ((h * 0x9e3779b1u) >> 24) & (WEIR_UDEST_N - 1);
}

static __always_inline bool weir_udest_is(const struct weir_udest *u, __u32 handle,
					  const struct weir_dest *dst)
{
	return u->r.handle == handle && u->r.port == dst->port && u->r.family == dst->family &&
	       u->r.addr[0] == dst->ip6[0] && u->r.addr[1] == dst->ip6[1] &&
	       u->r.addr[2] == dst->ip6[2] && u->r.addr[3] == dst->ip6[3];
}

/*
 * An allowed datagram of an unconnected UDP socket (sendmsg4/6): true when
 * its destination was reported already under the same policy and rule (it
 * is counted, and makes no event); false when this one is to be reported:
 * its destination's first, one judged anew (the old record's close event
 * goes now), or one whose place another destination holds.
 */
static __always_inline bool weir_udest_seen(struct bpf_sock_addr *ctx,
					    const struct weir_dest *dst,
					    const struct weir_decision *d,
					    const struct weir_who *w, __u32 handle, __u32 gen)
{
	struct weir_udests *s;
	struct weir_udest *u;

	if (d->verdict != WEIR_V_ALLOW || weir_proto_class(ctx->protocol) != WEIR_P_UDP)
		return false;
	s = bpf_sk_storage_get(&weir_udests, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return false;
	u = &s->d[weir_udest_place(dst)];
	if (u->used) {
		if (!weir_udest_is(u, handle, dst))
			return false;
		if (u->gen == gen && u->r.rule == d->rule && u->r.reason == d->reason &&
		    u->r.domain_id == d->domain_id && u->r.flags == (dst->flags | WEIR_EF_DEST)) {
			__sync_fetch_and_add(&u->datagrams, 1);
			return true;
		}
		weir_udest_emit(u);
	}
	weir_rec_start(&u->r, w, handle, dst, d, ctx);
	u->r.flags |= WEIR_EF_DEST;
	u->datagrams = 1;
	u->gen = gen;
	u->used = 1;
	return false;
}

/* What weir_decide() hands to weir_sendmsg_done(): one pointer, five
 * arguments at most. */
struct weir_sent {
	struct weir_dest dst;
	struct weir_decision d;
	struct weir_learn_key to;
	struct weir_who w;
	__u32 handle;
	__u32 gen;
	__s32 slot; /* < 0: no policy in force */
};

/*
 * The rest of a sendmsg4/6 decision once judged: report it (count it, and
 * its event), but an allowed destination of an unconnected UDP socket only
 * once (weir_udest_seen()); then tell the backstop (weir_prefill()). A
 * global function, verified once per program: inlined, its branches
 * multiplied the sendmsg programs' paths.
 */
__attribute__((noinline)) int weir_sendmsg_done(struct bpf_sock_addr *ctx, struct weir_sent *r)
{
	if (!ctx || !r)
		return 0;
	if (r->slot < 0 || !weir_udest_seen(ctx, &r->dst, &r->d, &r->w, r->handle, r->gen))
		weir_emit_who(&r->w, r->handle, &r->dst, ctx->protocol, ctx->type, &r->d);
	if (r->slot >= 0)
		weir_prefill(ctx, &r->dst, &r->to, r->gen, &r->d, false);
	return 0;
}

/* A socket is released: its destinations' close events (handle's only:
 * nested attachments each release theirs). */
static __always_inline void weir_udests_end(struct bpf_sock *sk, __u32 handle)
{
	struct weir_udests *s = bpf_sk_storage_get(&weir_udests, sk, 0, 0);
	int i;

	if (!s)
		return;
	for (i = 0; i < WEIR_UDEST_N; i++)
		if (s->d[i].used && s->d[i].r.handle == handle)
			weir_udest_emit(&s->d[i]);
}

/*
 * TCP: sequence space counts a SYN and a FIN as one byte each; payload is
 * what is left. The SYN is in bytes_acked once the connection was made;
 * our FIN was acknowledged when the socket closes from FIN_WAIT2, CLOSING
 * or LAST_ACK (tcp_rcv_state_process(), tcp_time_wait() -> tcp_done()); the
 * peer's FIN was received in CLOSE_WAIT, LAST_ACK and CLOSING, and on the
 * usual way out of FIN_WAIT2 (tcp_fin()): a FIN_WAIT2 that ends by its
 * timeout or a reset instead is one byte short in rx_bytes.
 */
static __always_inline void weir_flow_end_tcp(struct weir_flow *f, struct bpf_sock_ops *skops)
{
	__u64 tx = skops->bytes_acked, rx = skops->bytes_received;
	__u32 old = skops->args[0];
	bool our_fin = old == BPF_TCP_FIN_WAIT2 || old == BPF_TCP_CLOSING ||
		       old == BPF_TCP_LAST_ACK;
	bool their_fin = old == BPF_TCP_CLOSE_WAIT || old == BPF_TCP_LAST_ACK ||
			 old == BPF_TCP_CLOSING || old == BPF_TCP_FIN_WAIT2;

	if (tx)
		tx--;
	if (tx && our_fin)
		tx--;
	if (rx && their_fin)
		rx--;
	weir_flow_emit(f, tx, rx);
}

/*
 * TCP flows: ask for state callbacks when the SYN is about to go
 * (tcp_connect(), process context, once the connect hook let it through),
 * report at TCP_CLOSE. Other callbacks pass. Always returns 1.
 */
SEC("sockops")
int weir_sockops(struct bpf_sock_ops *skops)
{
	struct weir_tcpsock *t = NULL;
	struct weir_flow *f = NULL;
	struct weir_sock *s;
	struct bpf_sock *sk;

	/* Some ten callbacks per connection: only two need the flow. */
	if (skops->op == BPF_SOCK_OPS_STATE_CB ? skops->args[1] != BPF_TCP_CLOSE :
						 skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	s = bpf_sk_storage_get(&weir_socks, sk, 0, 0);
	if (!s) {
		t = weir_tcpsock_find(bpf_get_socket_cookie(skops));
		if (t)
			s = &t->s;
	}
	if (s)
		f = &s->flow;
	if (!weir_flow_live(f, weir_att()->handle))
		return 1;
	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		if (!bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							      BPF_SOCK_OPS_STATE_CB_FLAG))
			f->state = WEIR_FLOW_ARMED;
		return 1;
	}
	if (skops->args[1] == BPF_TCP_CLOSE && f->state == WEIR_FLOW_ARMED) {
		weir_flow_end_tcp(f, skops);
		if (t) /* its place is free for the next connect() */
			t->left = 1;
	}
	return 1;
}

/*
 * UDP flows end when their socket is released (the last close() of it), and
 * so do the records of an unconnected UDP socket's destinations.
 * A TCP flow whose SYN never went (connect() failed before tcp_connect())
 * ends here too, unreported: there was no connection.
 */
SEC("cgroup/sock_release")
int weir_sock_release(struct bpf_sock *sk)
{
	__u32 handle = weir_att()->handle;
	struct weir_tcpsock *t = NULL;
	struct weir_flow *f = NULL;
	struct weir_sock *s;

	if (sk->type == 2) /* SOCK_DGRAM */
		weir_udests_end(sk, handle);
	s = bpf_sk_storage_get(&weir_socks, sk, 0, 0);
	if (!s && sk->type == WEIR_SOCK_STREAM) {
		t = weir_tcpsock_find(bpf_get_socket_cookie(sk));
		if (t)
			s = &t->s;
	}
	if (s)
		f = &s->flow;
	if (!weir_flow_live(f, handle))
		return 1;
	if (weir_proto_class(f->r.protocol) == WEIR_P_UDP) {
		weir_flow_end_udp(f);
	} else if (f->state == WEIR_FLOW_OPEN) {
		f->state = WEIR_FLOW_DONE;
		if (t) /* no SYN went: sockops will not see it close */
			t->left = 1;
	}
	return 1;
}

#endif /* WEIR_FLOWS_BPF_H */
