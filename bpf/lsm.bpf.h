/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Sockets made outside an enforced cgroup (BPF LSM: lsm=...,bpf). The
 * cgroup hooks judge a socket by the cgroup it was made in, so a TCP or UDP
 * socket made outside and handed in (SCM_RIGHTS, an accomplice's
 * pidfd_getfd, an inherited descriptor) reaches anywhere. Here, connect()
 * and every send on an inet socket by a task inside an enforced cgroup are
 * refused unless the socket was made inside that same enforced cgroup (or
 * below it), or weir was told to pass it on (--pass-fd, --allow-socket-
 * stdio: weir_passed).
 *
 * These programs run for every task of the machine, so the common case is
 * cheap: a task outside every enforced cgroup costs one map lookup per
 * level of its cgroup (a few); kernel sockets and other families none.
 * Kernels without BPF LSM active never load them.
 *
 * Included by egress.bpf.c after its helpers.
 */
#ifndef WEIR_LSM_BPF_H
#define WEIR_LSM_BPF_H

#include <bpf/bpf_tracing.h>

#define WEIR_CG_DEPTH 16 /* cgroup levels looked at, from the task's up */
#define WEIR_EPERM 1

/* Enforced cgroups by cgroup id -> handle (egress.c writes it at attach). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u64);
	__type(value, __u32);
} weir_enforced SEC(".maps");

/* Sockets weir passed on on purpose, by socket cookie -> handle. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u32);
} weir_passed SEC(".maps");

/* The handle of the nearest enforced cgroup at or above CG, 0 if none. */
static __always_inline __u32 weir_cg_handle(struct cgroup *cg)
{
	__u32 *h;
	__u64 id;
	int i;

	for (i = 0; i < WEIR_CG_DEPTH; i++) {
		if (!cg)
			return 0;
		id = BPF_CORE_READ(cg, kn, id);
		h = bpf_map_lookup_elem(&weir_enforced, &id);
		if (h)
			return *h;
		/* self is a cgroup's first member: its css is the cgroup. */
		cg = (struct cgroup *)BPF_CORE_READ(cg, self.parent);
	}
	return 0;
}

static __always_inline void weir_emit_outside(__u32 handle, __u8 op, __u32 family, __u32 type,
					      __u8 verdict)
{
	struct weir_event *e;

	weir_count_decision(handle, verdict, WEIR_R_OUTSIDE);
	e = weir_event_new(handle);
	if (!e)
		return;
	e->op = op;
	e->verdict = verdict;
	e->reason = WEIR_R_OUTSIDE;
	e->family = family;
	e->sock_type = type;
	weir_submit(e);
}

static __always_inline int weir_outside(struct socket *sock, __u8 op)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 handle, family, type, flags = 0, gen;
	__u8 verdict = WEIR_V_DENY;
	struct sock *sk;
	__u64 cookie;

	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != 2 && family != 10) /* AF_INET, AF_INET6: the policy's */
		return 0;
	handle = weir_cg_handle(BPF_CORE_READ(task, cgroups, dfl_cgrp));
	if (!handle)
		return 0;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_kern_sock))
		return 0;
	if (weir_cg_handle(BPF_CORE_READ(sk, sk_cgrp_data.cgroup)) == handle)
		return 0;
	cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (cookie && bpf_map_lookup_elem(&weir_passed, &cookie))
		return 0;
	type = BPF_CORE_READ(sock, type);
	if (weir_slot_get(handle, &flags, &gen) >= 0 && (flags & WEIR_SF_AUDIT))
		verdict = WEIR_V_WOULD_DENY;
	weir_emit_outside(handle, op, family, type, verdict);
	return verdict == WEIR_V_DENY ? -WEIR_EPERM : 0;
}

SEC("lsm/socket_connect")
int BPF_PROG(weir_lsm_conn, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	if (ret)
		return ret;
	return weir_outside(sock, WEIR_OP_OUTSIDE_CONNECT);
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(weir_lsm_send, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	if (ret)
		return ret;
	return weir_outside(sock, WEIR_OP_OUTSIDE_SENDMSG);
}

#endif /* WEIR_LSM_BPF_H */
