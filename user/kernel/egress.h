/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Userspace side of bpf/egress.bpf.c: load the programs once, attach them
 * to any number of cgroups, write compiled policies into the maps, read the
 * counters.
 *
 * One struct egress owns the maps and the programs (one verifier run). Each
 * enforced cgroup is one *handle*: its links, its policy, its learned
 * addresses, its counters; the cgroup's weir_attach storage names the
 * handle and the cgroup's resolver. Writing a policy never edits the one in
 * force: it fills a free slot and then flips the handle.
 *
 * weir run uses the one-handle calls (egress_attach, egress_apply, ...):
 * wrappers around a handle of their own, allocated on first use.
 */
#ifndef WEIR_EGRESS_USER_H
#define WEIR_EGRESS_USER_H

#include <stdbool.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "compile.h"

struct egress;

/* BPF_CGROUP_UNIX_CONNECT and _SENDMSG (Linux 6.7): the UAPI headers weir
 * builds with may predate them. */
#define WEIR_ATTACH_UNIX_CONNECT 49
#define WEIR_ATTACH_UNIX_SENDMSG 50

/* Does this kernel run programs on unix socket connect/sendmsg (6.7+)? */
bool egress_unix_supported(void);
/* Is the BPF LSM active (/sys/kernel/security/lsm names bpf)? */
bool egress_lsm_supported(void);
/*
 * Are sockets made outside an enforced cgroup refused to its tasks (the
 * LSM programs loaded and attached)? egress_pass_socket: except this one,
 * for HANDLE's cgroup (--pass-fd, --allow-socket-stdio); 0 when the LSM
 * programs are off (nothing to except it from).
 */
bool egress_lsm_on(const struct egress *e);
int egress_pass_socket(struct egress *e, __u32 handle, int fd);
/* The same by the socket's cookie (SO_COOKIE): a daemon, for weir run's. */
int egress_pass_cookie(struct egress *e, __u32 handle, __u64 cookie);
/* weir run: its LSM links pinned in PIN_DIR too (0 when there are none). */
int egress_pin_lsm(struct egress *e, const char *pin_dir);
/*
 * A daemon: every program attached to CGROUP_FD, an empty cgroup of its own
 * (no storage: anything put there is refused, fail closed), unpinned, until
 * egress_destroy/close. The kernel's static key of each attach type then
 * stays on between two runs instead of being patched on and off with each
 * attach and detach (docs/performance.md, "The daemon's static keys").
 */
int egress_hold_keys(struct egress *e, int cgroup_fd);

struct egress_opts {
	__u32 lpm_entries; /* per family, room for two generations (a cap: no prealloc) */
	__u32 portsets;
	__u32 slots; /* policies at once: 2 per handle (in force, next) + 1 */
	__u32 handles; /* attachments at once + 1 (handle 0 is "none"); 0: 2 */
	__u32 ringbuf_bytes; /* power of two, >= page size */
	__u32 inflows; /* peers that sent first, remembered (LRU); 0: 16384 */
	__u32 budgets; /* upload budgets of every attachment, 2 policies each; 0: 1024 */
	int task_info; /* enum weir_task_info, or -1: probe */
	/*
	 * NULL: nothing pinned. Else the maps are pinned in PIN_ROOT/maps (on
	 * bpffs; made if need be) and, when they are already there (a
	 * restarted daemon), reused: which handles, slots and port sets are
	 * taken is read back from them. Maps of other sizes or types, or of
	 * another layout (WEIR_MAP_ABI: -EPROTO), fail egress_open with a
	 * message; nothing attached is touched, nothing is unpinned.
	 */
	const char *pin_root;
	/* The resolver of the one-handle egress_attach() (weir run); 0: none.
	 * Attachments made with egress_attach_handle() bring their own. */
	__u16 dns_port;
	__u32 dns_ip4; /* network order */
	__u32 dns_ip6[4];
};

/* One attachment's resolver, as its cgroup's programs redirect DNS to it. */
struct egress_attach_cfg {
	__u16 dns_port; /* 0: no resolver for this cgroup (DNS judged by policy) */
	__u32 dns_ip4; /* network order, 127.0.0.1 */
	__u32 dns_ip6[4]; /* ::1 (or ::ffff:127.0.0.1 with no IPv6 resolver) */
};

/* Can this kernel run weir at all? 0, or -EOPNOTSUPP with why[] filled. */
int egress_supported(char *why, size_t len);
/* Which way the programs read pid/comm/cgroup on this kernel (cached). */
int egress_task_info(void);
/* Can an attachment defer to the nested ones below it (WEIR_AF_OUTER; the
 * cgroup ancestor helpers, Linux 5.7+)? Without, both judge (cached). */
bool egress_nesting_supported(void);

int egress_open(const struct egress_opts *opts, struct egress **out);

/* A free handle (no policy, not attached); -ENOSPC when all are taken. */
int egress_handle_alloc(struct egress *e, __u32 *handle);
/*
 * Attach every program to cgroup_fd as bpf_links (multi-attach: a child
 * cgroup's programs add to these, never replace them), pin them in pin_dir
 * (an existing directory; NULL: not pinned), then write the cgroup's
 * weir_attach storage: until then the cgroup fails closed.
 */
int egress_attach_handle(struct egress *e, __u32 handle, int cgroup_fd,
			 const struct egress_attach_cfg *cfg, const char *pin_dir);
/*
 * A restarted daemon (egress_opts.pin_root, maps reused): take over the
 * links pinned in pin_dir for cgroup_fd (bpf_link_update them to this
 * process's programs), read the cgroup's storage (handle, resolver) into
 * *handle and *cfg, and own that handle and its policy from now on. Links
 * missing from pin_dir (programs this version added) are attached and
 * pinned. Nothing is detached at any moment; on failure the pinned links
 * go on enforcing as they were. Adopt every attachment before making new
 * ones: a handle whose storage still says 0 gets a fresh one here.
 */
int egress_adopt(struct egress *e, int cgroup_fd, const char *pin_dir, __u32 *handle,
		 struct egress_attach_cfg *cfg);
/* Make `c` the policy in force for handle, atomically. */
int egress_apply_handle(struct egress *e, __u32 handle, const struct compiled *c);
/*
 * Detach the handle's links (unpinned first; the pin directory itself is the
 * caller's), drop its policy, learned addresses and counters, free it. Also
 * for a handle found in reused maps but never adopted (its cgroup is gone):
 * such a handle stays taken until then. Remove its pins first: a cgroup
 * still attached with it would be judged by the next attachment given it.
 */
void egress_detach_handle(struct egress *e, __u32 handle);
/*
 * OUTER: enforced cgroups lie below handle's: its programs leave their
 * processes to the nearest attachment above them (WEIR_AF_OUTER). The
 * caller (the daemon, which knows the cgroups' paths) keeps it true.
 */
int egress_set_outer(struct egress *e, __u32 handle, bool outer);
/* Point HANDLE's cgroup at another resolver (CFG's dns_* fields). */
int egress_set_dns(struct egress *e, __u32 handle, const struct egress_attach_cfg *cfg);
/* The decisions taken for handle, summed over CPUs. */
int egress_counts(const struct egress *e, __u32 handle, struct weir_counts *out);
/* One upload budget of an attachment (weir_budgets). */
struct egress_budget {
	__u32 rule; /* WEIR_RULE_ID() in the policy in force */
	__u64 limit, used; /* bytes */
	__u64 refused; /* packets dropped, connects and sends refused past it */
	bool spent;
};
/* handle's budgets, at most max of them; how many, or a negative errno. */
int egress_budgets(const struct egress *e, __u32 handle, struct egress_budget *out, size_t max);
/* The id of the cgroup handle is attached to, or 0. */
__u64 egress_handle_cgroup(const struct egress *e, __u32 handle);

/* The one-handle calls (weir run, tests, bench): attach the programs to
 * cgroup_fd with opts' resolver, pinning each link in pin_dir (if not NULL)
 * so that they outlive this process. */
int egress_attach(struct egress *e, int cgroup_fd, const char *pin_dir);
/* Unpin every link (they detach when this process lets go of them). */
void egress_unpin(struct egress *e);
/* Detach from the cgroup, keep the maps and the policy (benchmarks). */
void egress_detach(struct egress *e);
/* Make `c` the policy in force, atomically. */
int egress_apply(struct egress *e, const struct compiled *c);

/* How full the maps are that attachments fill: entries in use and the
 * most there is room for, per map (the daemon's weir_map_entries). Counting
 * a trie walks its keys: for a scrape, not for a hot path. */
struct egress_map_fill {
	const char *map;
	__u64 entries, capacity;
};
size_t egress_map_fill(const struct egress *e, struct egress_map_fill *out, size_t max);
/* Kernel memory of the maps (fdinfo memlock), in bytes, big policies' interval
 * arrays included. */
__u64 egress_map_bytes(const struct egress *e);
int egress_events_fd(const struct egress *e);
/* Learned addresses (weir_learn) of handle k->handle; 0 there means the
 * one-handle calls' handle. */
int egress_learn_set(struct egress *e, struct weir_learn_key *k, const struct weir_learn_val *v);
/* How many learned addresses one attachment may keep in weir_learn: all of
 * it for a one-handle load (weir run), an eighth of it where many share it
 * (a daemon), so that one cannot fill it for the others. */
__u32 egress_learn_share(const struct egress *e);
int egress_learn_del(struct egress *e, struct weir_learn_key *k);
/* Who sent the DNS query on socket `cookie` (weir_askers). */
int egress_asker(struct egress *e, __u64 cookie, struct weir_asker *out);
/* enum weir_stat; WEIR_STAT_DECISIONS is the sum of every handle's counts. */
__u64 egress_stat(const struct egress *e, __u32 stat);
/* Detach every link this process holds (unpinning them), unpin the maps
 * and free; NULL-safe. */
void egress_destroy(struct egress *e);
/*
 * Free, detaching nothing that is pinned: what kill -9 does to a daemon.
 * Pinned links go on enforcing with the pinned maps. NULL-safe.
 */
void egress_close(struct egress *e);

#endif /* WEIR_EGRESS_USER_H */
