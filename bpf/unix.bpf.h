/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Unix sockets (Linux 6.7+): connect() and an addressed sendmsg() on an
 * AF_UNIX socket are judged against the policy's unix: patterns and the
 * built-in list of resolver and container-engine sockets (include/weir/
 * unix.h). The path is the one the program passed, before the kernel
 * resolves it: a symlink, a relative path or another mount of the same
 * socket is another string (docs/policy.md, "Unix sockets", says what that
 * leaves open). Kernels without the unix hooks never load these programs.
 *
 * Included by egress.bpf.c after its helpers (weir_att, weir_slot_get,
 * weir_event_new, weir_submit, weir_count_decision).
 */
#ifndef WEIR_UNIX_BPF_H
#define WEIR_UNIX_BPF_H

#include <weir/unix.h>

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 256);
	__type(key, struct weir_unix_key);
	__type(value, struct weir_unix_val);
} weir_unix SEC(".maps");

/* Scratch for the lookup key (116 bytes): off the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weir_unix_key);
} weir_unix_scratch SEC(".maps");

/* bpf_cast_to_kern_ctx() (6.2+; only programs loaded where the unix hooks
 * are, 6.7+, call it), a call the loader turns into the kfunc's
 * (WEIR_CALL_KERN_CTX, include/weir/unix.h). */
static void *(*const weir_kern_ctx)(void *ctx) = (void *)WEIR_CALL_KERN_CTX;

static __always_inline void weir_unix_emit(__u32 handle, __u8 op, __u32 type,
					   const struct weir_unix_key *k, __u32 len,
					   __u8 verdict, __u8 reason, __u32 rule, __u8 flags)
{
	struct weir_unix_event *u;
	struct weir_task t = {};

	weir_count_decision(handle, verdict, reason);
	u = bpf_ringbuf_reserve(&weir_events, sizeof(*u), 0);
	if (!u) {
		weir_count(WEIR_STAT_LOST);
		return;
	}
	__builtin_memset(u, 0, sizeof(*u));
	u->e.ts_ns = bpf_ktime_get_boot_ns();
	weir_get_task(&t, u->e.comm, weir_cfg.task_info);
	u->e.pid = t.pid;
	u->e.tid = t.tid;
	u->e.cgroup_id = t.cgroup_id;
	u->e.uid = t.uid;
	u->e.gid = t.gid;
	u->e.handle = handle;
	u->e.op = op;
	u->e.verdict = verdict;
	u->e.reason = reason;
	u->e.rule = rule;
	u->e.family = 1; /* AF_UNIX */
	u->e.sock_type = type;
	u->e.flags = flags;
	u->path_len = len;
	__builtin_memcpy(u->path, k->path, sizeof(u->path));
	weir_submit(u);
}

/*
 * The path the program passed, zero-padded, behind the slot: the same bytes
 * as the patterns. 0 for an unnamed address (autobind): nothing to judge;
 * WEIR_UNIX_UNREAD when the address could not be read: refused, never
 * taken for an unnamed one (R8-8).
 */
#define WEIR_UNIX_UNREAD ((__u32)-1)

static __always_inline __u32 weir_unix_read(struct bpf_sock_addr *ctx, struct weir_unix_key *k)
{
	struct bpf_sock_addr_kern *sa = weir_kern_ctx(ctx);
	__u32 len = sa->uaddrlen;
	const char *addr;
	__u64 n;

	if (len <= 2) /* offsetof(struct sockaddr_un, sun_path) */
		return 0;
	len -= 2;
	if (len > WEIR_UNIX_PATH_MAX)
		len = WEIR_UNIX_PATH_MAX;
	/* The path as given, zero-padded: nothing past its length (stack
	 * bytes of the kernel's copy, a sockaddr_storage). One read of a
	 * bounded size, no loop: a loop testing i against len had the
	 * verifier walk every length apart (55k instructions a program). */
	__builtin_memset(k->path, 0, sizeof(k->path));
	n = len;
	/* The bound tested on the register the helper gets (the compiler
	 * clamps another copy, and the verifier would see no bound). */
	asm volatile("if %[n] <= %[max] goto +1\n\t"
		     "%[n] = %[max]"
		     : [n] "+r"(n)
		     : [max] "i"(WEIR_UNIX_PATH_MAX));
	/* The address's pointer read, not loaded: loading a pointer from the
	 * context has the verifier look its type's trust up by name in the
	 * kernel's BTF, linear scans of ~126k types each time it walks the
	 * load (~5 ms of every load of the two programs); read, it is a
	 * number, as the helper takes it anyway. */
	if (bpf_core_read(&addr, sizeof(addr), &sa->uaddr) ||
	    bpf_probe_read_kernel(k->path, n, addr + 2))
		return WEIR_UNIX_UNREAD;
	return len;
}

/*
 * Is the path one the patterns can judge: absolute, and with no empty, "."
 * or ".." component (the kernel resolves "//run/x", "/run/./x" and
 * "/tmp/../run/x" to the file "/run/x" names)? The bytes past the length
 * given are zero (weir_unix_read).
 */
struct weir_unix_canon {
	const struct weir_unix_key *k;
	__u32 comp; /* the component so far: 0 empty, 1 ".", 2 "..", 3 a name */
	__u32 bad; /* an empty, "." or ".." component ended */
};

/* Byte i + 1 of the path; 1: stop. bpf_loop's callback: the verifier
 * checks it as one body, not once per byte and state (the unrolled loop
 * was 14.8k of the 15.9k instructions of each unix program). */
static long weir_unix_canon_step(__u64 i, void *ctx)
{
	struct weir_unix_canon *s = ctx;
	__u8 c;

	if (i >= WEIR_UNIX_PATH_MAX - 1)
		return 1;
	c = s->k->path[i + 1];
	if (!c)
		return 1;
	if (c == '/') {
		if (s->comp != 3) {
			s->bad = 1;
			return 1;
		}
		s->comp = 0;
	} else if (c == '.' && s->comp < 3) {
		s->comp++; /* "...": a name */
	} else {
		s->comp = 3;
	}
	return 0;
}

static __always_inline bool weir_unix_canonical(const struct weir_unix_key *k)
{
	struct weir_unix_canon s = { .k = k };

	if (k->path[0] != '/')
		return false;
	/* bpf_loop fails only on bad arguments: then not canonical (refused
	 * where the policy denies anything). */
	if (bpf_loop(WEIR_UNIX_PATH_MAX - 1, weir_unix_canon_step, &s, 0) < 0)
		return false;
	return !s.bad && s.comp == 3;
}

static __always_inline int weir_unix_judge(struct bpf_sock_addr *ctx, __u8 op)
{
	__u32 zero = 0, handle, flags = 0, gen, len, rule = 0;
	__u8 verdict = WEIR_V_ALLOW, reason = WEIR_R_NO_MATCH;
	const struct weir_unix_val *v;
	struct weir_unix_key *k;
	__s64 slot;

	k = bpf_map_lookup_elem(&weir_unix_scratch, &zero);
	if (!k)
		return 0;
	len = weir_unix_read(ctx, k);
	if (!len)
		return 1;
	if (len == WEIR_UNIX_UNREAD) { /* what it names is unknown: refused */
		__builtin_memset(k->path, 0, sizeof(k->path));
		weir_unix_emit(weir_att()->handle, op, ctx->type, k, 0, WEIR_V_DENY,
			       WEIR_R_UNIX_PATH, 0, 0);
		return 0;
	}
	/* A nearer attachment's programs judge this process (its policy's
	 * unix: section replaces ours, as for connections). */
	if (weir_nested(weir_att()))
		return 1;
	handle = weir_att()->handle;
	slot = weir_slot_get(handle, &flags, &gen);
	if (slot < 0) {
		/* No policy in force: fail closed, as for every connection. */
		weir_unix_emit(handle, op, ctx->type, k, len, WEIR_V_DENY, WEIR_R_NO_POLICY, 0, 0);
		return 0;
	}
	k->slot = (__u32)slot;
	/* A path spelled so that no pattern can tell what it names, where the
	 * policy denies something: the slot's mark (prefix: the slot alone)
	 * refuses it. Abstract names (a NUL first) have one spelling. */
	k->prefixlen = k->path[0] && !weir_unix_canonical(k) ? 32 : WEIR_UNIX_KEY_BITS;
	v = bpf_map_lookup_elem(&weir_unix, k);
	if (!v || (k->prefixlen == WEIR_UNIX_KEY_BITS && (v->flags & WEIR_UF_MARK)))
		return 1; /* no pattern: unix sockets are allowed */
	verdict = v->verdict;
	reason = v->reason;
	rule = v->rule;
	if (verdict == WEIR_V_DENY && (flags & WEIR_SF_AUDIT) && !v->hard)
		verdict = WEIR_V_WOULD_DENY;
	/* Allowed by a pattern: counted, not reported (as allowed connects
	 * are, unless attributed); denials always are. */
	if (verdict == WEIR_V_ALLOW) {
		weir_count_decision(handle, verdict, reason);
		return 1;
	}
	/* glibc and nss-resolve try nscd's and resolved's sockets before
	 * every lookup and then ask DNS (weir's resolver): a refusal there
	 * sent nothing and tells a hostile try from that apart in no way.
	 * Refused, not reported: every lookup would be a "denial". Audit mode
	 * refuses them too (hard), so the lookup reaches weir's resolver,
	 * which records the name, instead of going around it. */
	if ((v->flags & WEIR_UF_RESOLVER) && verdict == WEIR_V_DENY)
		return 0;
	weir_unix_emit(handle, op, ctx->type, k, len, verdict, reason, rule,
		       v->flags & WEIR_UF_RESOLVER ? WEIR_EF_RESOLVER : 0);
	return verdict != WEIR_V_DENY;
}

/* Typed as connect4/sendmsg4 for libbpf (1.1 does not know the unix
 * sections); egress.c sets the unix attach types before load. */
SEC("cgroup/connect4")
int weir_unix_conn(struct bpf_sock_addr *ctx)
{
	return weir_unix_judge(ctx, WEIR_OP_UNIX_CONNECT);
}

SEC("cgroup/sendmsg4")
int weir_unix_send(struct bpf_sock_addr *ctx)
{
	return weir_unix_judge(ctx, WEIR_OP_UNIX_SENDMSG);
}

#endif /* WEIR_UNIX_BPF_H */
