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

/* Cgroup levels walked up from a task's or a socket's cgroup. Deeper than
 * that, no answer: refused (WEIR_CG_TOO_DEEP), never "outside every
 * enforced cgroup". cgroup.max.depth is unlimited by default. */
#define WEIR_CG_LEVELS 4096
#define WEIR_CG_TOO_DEEP ((__u32)-1)
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

struct weir_cg_walk {
	__u64 cg; /* the struct cgroup * looked at next; 0 past the root */
	__u32 handle;
};

static long weir_cg_step(__u32 i, void *data)
{
	struct weir_cg_walk *w = data;
	struct cgroup *cg = (struct cgroup *)w->cg;
	__u32 *h;
	__u64 id;

	if (!cg)
		return 1;
	id = BPF_CORE_READ(cg, kn, id);
	h = bpf_map_lookup_elem(&weir_enforced, &id);
	if (h) {
		w->handle = *h;
		return 1;
	}
	/* self is a cgroup's first member: its css is the cgroup. */
	w->cg = (__u64)BPF_CORE_READ(cg, self.parent);
	return 0;
}

/*
 * The handle of the nearest enforced cgroup at or above CG, 0 if none,
 * WEIR_CG_TOO_DEEP if the root was not reached in WEIR_CG_LEVELS levels
 * (bpf_loop: no bound of the verifier's on the depth of a cgroup a task
 * inside can make below its own).
 */
static __always_inline __u32 weir_cg_handle(struct cgroup *cg)
{
	struct weir_cg_walk w = { .cg = (__u64)cg };

	bpf_loop(WEIR_CG_LEVELS, weir_cg_step, &w, 0);
	if (!w.handle && w.cg)
		return WEIR_CG_TOO_DEEP;
	return w.handle;
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
	if (handle == WEIR_CG_TOO_DEEP) /* no handle to report it on */
		return -WEIR_EPERM;
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

/*
 * The socket a unix connect or send reaches, judged by the path it was
 * bound to (the listener's own name, as its server wrote it) against the
 * task's policy's unix: patterns: a symlink, a hard link or a bind mount
 * of a denied socket, which the cgroup unix hooks (the path as typed)
 * cannot tell, reach the same bound socket. Before Linux 6.7 these are the
 * only unix checks. An unnamed peer (socketpair) has no path: not judged.
 * Denials are reported as the cgroup hooks' are, with the bound path and
 * WEIR_EF_PEER. True: refused.
 */
static __always_inline bool weir_unix_refused(struct sock *other, __u8 op, __u32 type)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 zero = 0, handle, flags = 0, gen, len;
	struct unix_address *addr;
	const struct weir_unix_val *v;
	struct weir_unix_key *k;
	__u8 verdict;
	__s64 slot;
	__u32 i;

	if (!other)
		return false;
	handle = weir_cg_handle(BPF_CORE_READ(task, cgroups, dfl_cgrp));
	if (!handle)
		return false;
	if (handle == WEIR_CG_TOO_DEEP)
		return true;
	addr = BPF_CORE_READ((struct unix_sock *)other, addr);
	if (!addr)
		return false;
	len = BPF_CORE_READ(addr, len);
	if (len <= 2) /* offsetof(struct sockaddr_un, sun_path) */
		return false;
	len -= 2;
	if (len > WEIR_UNIX_PATH_MAX)
		len = WEIR_UNIX_PATH_MAX;
	k = bpf_map_lookup_elem(&weir_unix_scratch, &zero);
	if (!k)
		return false;
	if (bpf_core_read(k->path, sizeof(k->path), &addr->name[0].sun_path))
		return true; /* what it is bound to is unknown: refused (R8-8) */
	for (i = 0; i < WEIR_UNIX_PATH_MAX; i++)
		if (i >= len)
			k->path[i] = 0;
	slot = weir_slot_get(handle, &flags, &gen);
	if (slot < 0) {
		/* No policy in force: fail closed, as for every connection. */
		weir_unix_emit(handle, op, type, k, len, WEIR_V_DENY, WEIR_R_NO_POLICY, 0,
			       WEIR_EF_PEER);
		return true;
	}
	k->prefixlen = WEIR_UNIX_KEY_BITS;
	k->slot = (__u32)slot;
	v = bpf_map_lookup_elem(&weir_unix, k);
	/* No pattern (the mark alone: the server chose its name), or allowed
	 * (counted by the cgroup hook where there is one). */
	if (!v || (v->flags & WEIR_UF_MARK) || v->verdict == WEIR_V_ALLOW)
		return false;
	verdict = v->verdict;
	if (verdict == WEIR_V_DENY && (flags & WEIR_SF_AUDIT) && !v->hard)
		verdict = WEIR_V_WOULD_DENY;
	/* nscd, resolved: glibc's every lookup, where this is the only check
	 * (before 6.7); refused unreported, as in weir_unix_judge. */
	if ((v->flags & WEIR_UF_RESOLVER) && verdict == WEIR_V_DENY)
		return true;
	weir_unix_emit(handle, op, type, k, len, verdict, v->reason, v->rule,
		       WEIR_EF_PEER | (v->flags & WEIR_UF_RESOLVER ? WEIR_EF_RESOLVER : 0));
	return verdict == WEIR_V_DENY;
}

/* -EPERM if REFUSED, else 0; never "-refused": the verifiers of 6.1 and
 * 6.12 know nothing of a negated register, and the program's return must
 * be proven within [-4095, 0]. */
static __always_inline int weir_eperm_if(bool refused)
{
	int eperm = -WEIR_EPERM;

	asm volatile("" : "+r"(eperm)); /* opaque to the compiler: no folding */
	return refused ? eperm : 0;
}

SEC("lsm/unix_stream_connect")
int BPF_PROG(weir_lsm_ustream, struct sock *sock, struct sock *other, struct sock *newsk, int ret)
{
	if (ret)
		return ret;
	return weir_eperm_if(weir_unix_refused(other, WEIR_OP_UNIX_CONNECT,
						 BPF_CORE_READ(sock, sk_type)));
}

SEC("lsm/unix_may_send")
int BPF_PROG(weir_lsm_udgram, struct socket *sock, struct socket *other, int ret)
{
	if (ret)
		return ret;
	return weir_eperm_if(weir_unix_refused(BPF_CORE_READ(other, sk), WEIR_OP_UNIX_SENDMSG,
						 BPF_CORE_READ(sock, type)));
}

/*
 * Socket families the cgroup hooks never see (cgroup/sock_create runs for
 * inet ones only): a packet socket (AF_PACKET) sends whole frames past every
 * hook, vsock reaches the hypervisor's host services. weir run refuses them
 * with seccomp; a cgroup a daemon attaches (containers, pods, the Action's
 * later steps) has only this. Unix, inet, inet6 and netlink are left to
 * the other programs, as seccomp leaves them; kernel sockets to the kernel.
 */
/* V, as a constant the compiler cannot trade for a register it knows
 * holds the same value on that path (a handle of 0 returned as "0"):
 * 6.12's verifier would see that register's whole range at exit. */
static __always_inline int weir_lsm_ret(int v)
{
	asm volatile("" : "+r"(v));
	return v;
}

SEC("lsm/socket_create")
int BPF_PROG(weir_lsm_create, int family, int type, int protocol, int kern, int ret)
{
	struct task_struct *task;
	__u32 handle, flags = 0, gen;
	__u8 verdict = WEIR_V_DENY;

	if (ret) /* refused before (another BPF LSM program): refused */
		return weir_lsm_ret(-WEIR_EPERM);
	if (kern || family == 1 || family == 2 || family == 10 || family == 16)
		return weir_lsm_ret(0);
	task = bpf_get_current_task_btf();
	handle = weir_cg_handle(BPF_CORE_READ(task, cgroups, dfl_cgrp));
	if (!handle)
		return weir_lsm_ret(0);
	if (handle == WEIR_CG_TOO_DEEP) /* no handle to report it on */
		return weir_lsm_ret(-WEIR_EPERM);
	if (weir_slot_get(handle, &flags, &gen) >= 0 && (flags & WEIR_SF_AUDIT))
		verdict = WEIR_V_WOULD_DENY;
	weir_emit_socket(handle, WEIR_OP_SOCKET, (__u32)family, (__u32)type, (__u32)protocol,
			 verdict, WEIR_R_SOCKET);
	return weir_lsm_ret(verdict == WEIR_V_DENY ? -WEIR_EPERM : 0);
}

#endif /* WEIR_LSM_BPF_H */
