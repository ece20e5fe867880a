/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Unix sockets and sockets made outside the cgroup: what the BPF side
 * (bpf/unix.bpf.h, bpf/lsm.bpf.h) and userspace share. Data only.
 */
#ifndef WEIR_UNIX_H
#define WEIR_UNIX_H

/* After <linux/types.h> (userspace) or vmlinux.h (BPF), as egress.h. */
#include "egress.h"

#define WEIR_UNIX_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */

/*
 * weir_unix (an LPM trie): the policy's unix: patterns and the built-in
 * list, per slot (the policy generation, as weir_lpm4/6). The key's bytes
 * are the slot (4, as stored in memory) then sun_path as the program
 * passed it: a path, or a NUL and an abstract name. A pattern covers
 * prefixlen bits: a path or abstract name up to and including its NUL
 * terminator is exact, without it a prefix (a pattern
 * "/run/containerd/" then "*" -> the bytes "/run/containerd/"). The longest pattern that matches decides.
 * Example: slot 3, deny /var/run/docker.sock -> {prefixlen 32 + 21 * 8,
 * slot 3, "/var/run/docker.sock\0"}; a connect() to "/var/run/docker.sock"
 * is looked up with prefixlen 32 + 108 * 8 and the path zero-padded.
 */
struct weir_unix_key {
	__u32 prefixlen;
	__u32 slot;
	__u8 path[WEIR_UNIX_PATH_MAX];
};
_Static_assert(sizeof(struct weir_unix_key) == 116, "weir_unix_key ABI");

#define WEIR_UNIX_KEY_BITS ((4 + WEIR_UNIX_PATH_MAX) * 8) /* slot and path */

/*
 * The unix programs call the kfunc bpf_cast_to_kern_ctx() (6.2+) as a helper
 * of this number, which no kernel has; the loader (user/kernel/corebtf.c)
 * rewrites that call into the kfunc's, with its BTF id, before the load.
 * Why: libbpf 1.1 resolves a kfunc declared __ksym by reading and indexing
 * the kernel's whole BTF, ~40 ms of every weir run --standalone.
 */
#define WEIR_CALL_KERN_CTX 0x7e1f0001

struct weir_unix_val {
	__u8 verdict; /* WEIR_V_ALLOW or WEIR_V_DENY */
	__u8 reason; /* WEIR_R_ALLOW_RULE, WEIR_R_DENY_RULE or WEIR_R_UNIX_BUILTIN */
	__u8 hard; /* 1: a deny audit mode does not soften (the resolvers' sockets) */
	__u8 flags; /* WEIR_UF_* */
	__u32 rule; /* WEIR_RULE_ID() of the pattern, 0 for the built-in list */
};
_Static_assert(sizeof(struct weir_unix_val) == 8, "weir_unix_val ABI");

/* weir_unix_val.flags: a name-service socket (events get WEIR_EF_RESOLVER) */
#define WEIR_UF_RESOLVER (1 << 0)
/*
 * The slot's mark: {prefixlen 32, slot, no path}, written where the policy
 * denies anything (the built-in list or its own). A pathname that is not
 * canonical (relative, or with an empty, "." or ".." component: the
 * patterns cannot tell what it names) is looked up with prefixlen 32 and
 * finds the mark, which refuses it (reason WEIR_R_UNIX_PATH); a full
 * lookup that finds only the mark matched no pattern.
 */
#define WEIR_UF_MARK (1 << 1)

/*
 * An "op" WEIR_OP_UNIX_CONNECT or _SENDMSG record in weir_events: a
 * weir_event (family AF_UNIX, sock_type; no address or port) followed by
 * the path as the program passed it. A record shorter than this is a
 * plain weir_event. Example: nslookup through nscd, denied:
 * {e.op UNIX_CONNECT, e.verdict DENY, e.reason UNIX_BUILTIN, path_len 20,
 * path "/var/run/nscd/socket"}; an abstract name starts with a NUL.
 */
struct weir_unix_event {
	struct weir_event e;
	__u32 path_len; /* bytes of path used (sun_path as given, up to 108) */
	__u8 path[WEIR_UNIX_PATH_MAX];
};
_Static_assert(sizeof(struct weir_unix_event) == sizeof(struct weir_event) + 112,
	       "weir_unix_event ABI");

#endif /* WEIR_UNIX_H */
