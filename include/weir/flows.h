/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Flows and upload budgets: the contract between bpf/flows.bpf.h and
 * userspace (user/kernel/egress.c). Include <weir/egress.h> first.
 *
 * A flow is a TCP connection or a connected UDP socket whose connect() an
 * enforced cgroup's programs let through. Its record lives in the socket's
 * storage (weir_socks) from that connect() to the flow's end, when it
 * becomes one WEIR_OP_CLOSE event. An upload budget is an allow rule's
 * `upload_budget:` (docs/policy.md): one weir_budgets entry per attachment
 * and rule, charged by the egress backstop with the payload of every packet
 * the rule lets through.
 */
#ifndef WEIR_FLOWS_H
#define WEIR_FLOWS_H

/* weir_flow.state */
enum weir_flow_state {
	WEIR_FLOW_OPEN = 1, /* connect() allowed it; its end is still to come */
	WEIR_FLOW_ARMED = 2, /* TCP: the sockops program watches for TCP_CLOSE */
	WEIR_FLOW_DONE = 3, /* reported */
};

/*
 * What a close event repeats of the decision that started its record (a
 * flow's or an unconnected UDP socket's destination's): who, when, what was
 * judged and how. pid, comm and the rest are the calling task's, taken in
 * its own context: the end of a record is often seen from softirq, where
 * the running task is anybody's.
 */
struct weir_rec {
	__u64 start_ns; /* CLOCK_BOOTTIME of the connect() or first datagram */
	__u64 cgroup_id;
	__u32 pid, tid, uid, gid;
	__u32 handle; /* the attachment that judged (the innermost, nested) */
	__u32 rule; /* WEIR_RULE_ID() of the rule that decided */
	__u32 domain_id; /* as in weir_event */
	__u32 addr[4];	 /* the address as the program gave it (IPv4 in [0]) */
	__u16 port;
	__u16 protocol;
	__u8 family; /* of addr */
	__u8 flags;  /* WEIR_EF_* of the close event */
	__u8 verdict; /* ALLOW or WOULD_DENY (audit) */
	__u8 reason;
	__u8 sock_type;
	__u8 op; /* the decision's: CONNECT4/6, SENDMSG4/6 */
	__u8 __pad[2];
	char comm[WEIR_COMM_LEN];
};
_Static_assert(sizeof(struct weir_rec) == 88, "weir_rec ABI");

/*
 * One flow, as its connect() saw it (struct weir_sock's flow). Example: curl
 * (pid 4242) connecting to web.test's 192.0.2.10 port 443, allowed by
 * allow[0] -> {r {start_ns, pid 4242, comm "curl", handle 1, rule allow[0],
 * domain_id of web.test, addr 192.0.2.10, port 443, family AF_INET,
 * protocol 6}, judged 192.0.2.10, state OPEN}.
 */
struct weir_flow {
	struct weir_rec r;
	__u64 tx_bytes;	    /* UDP: payload sent, counted by the backstop */
	__u64 rx_bytes;	    /* UDP: payload received, counted by the ingress program */
	__u32 judged[4];    /* the address judged, as packets carry it (IPv4 in [0]) */
	__u8 judged_family; /* of judged */
	__u8 state;	    /* enum weir_flow_state */
	__u8 __pad[6];
};
_Static_assert(sizeof(struct weir_flow) == 128, "weir_flow ABI");

/*
 * weir_socks (socket storage): what weir keeps per socket, the backstop's
 * cached verdict (struct weir_skcache, <weir/egress.h>) and the flow, in one
 * storage: a connect() allocates one, and a packet on the backstop's
 * cache-hit path finds both with one lookup. A socket that never connected
 * has flow.state 0; one never judged, cache.family 0 (no packet matches).
 */
struct weir_sock {
	struct weir_skcache cache;
	__u32 __pad;
	struct weir_flow flow;
};
_Static_assert(sizeof(struct weir_sock) == 168, "weir_sock ABI");

/*
 * weir_tcpsocks (array, preallocated): the weir_sock of a TCP socket whose
 * connect() was let through, found by the socket's cookie in one of two
 * places (its cookie's low bits, and half the table away). Making a socket
 * storage is two allocations from a slab cache that refills pages at the rate of
 * connections (closed sockets' storages return after an RCU grace period):
 * ~1.2 us of a TCP connect(). A place is taken by the connect hook (under
 * lock), and left by sockops when the socket reaches TCP_CLOSE, or at its
 * release when no SYN went. A place left keeps its cookie until another
 * socket takes it: a reset sent after TCP_CLOSE (close() with SO_LINGER 0)
 * still finds its verdict. Both places taken: a socket storage, as before
 * (weir_socks), never a connection without its cache and flow. Example:
 * curl's socket, cookie 8193 -> {left 0, cookie 8193, s {cache, flow}} at
 * place 1 (8193 & 4095) or, if that one is held, place 2049.
 */
#define WEIR_TCPSOCK_BITS 12
#define WEIR_TCPSOCK_N (1u << WEIR_TCPSOCK_BITS)
struct weir_tcpsock {
	struct bpf_spin_lock lock; /* guards taking the place */
	__u32 left; /* 1: the socket left it (free to take); its cookie stays */
	__u64 cookie; /* the socket's cookie (bpf_get_socket_cookie); 0: never taken */
	struct weir_sock s;
};
_Static_assert(sizeof(struct weir_tcpsock) == 184, "weir_tcpsock ABI");

/*
 * weir_udests (socket storage): the destinations an unconnected UDP socket
 * sent to that the sendmsg hooks let through (verdict ALLOW), so that each
 * is reported once, by its first datagram's sendmsg event, and the rest are
 * counted: at the socket's release every destination becomes one CLOSE
 * event (WEIR_EF_DEST) with its count. WEIR_UDEST_N places per socket, a
 * destination's place chosen by a hash of it; a destination whose place
 * another holds is reported per datagram, as are denied ones. A datagram
 * judged under another policy (a reload: gen) or by another rule ends its
 * destination's record (its CLOSE event goes then) and starts a new one.
 * Example: a stub resolver's socket that sent 3 queries to 192.0.2.53:53
 * allowed by allow[1] -> one place {r {start_ns, pid, comm "dig", handle 1,
 * rule allow[1], addr 192.0.2.53, port 53, flags WEIR_EF_DEST}, gen 4,
 * datagrams 3, used 1}.
 */
#define WEIR_UDEST_N 16 /* a power of two */

struct weir_udest {
	struct weir_rec r; /* flags: WEIR_EF_DEST and the first datagram's event's */
	__u64 datagrams;   /* let through, the first included */
	__u32 gen;	   /* weir_slot.gen of the policy that judged */
	__u32 used;	   /* 1: this place holds a destination */
};
_Static_assert(sizeof(struct weir_udest) == 104, "weir_udest ABI");

struct weir_udests {
	struct weir_udest d[WEIR_UDEST_N];
};

/*
 * weir_budgets (hash): the upload budget of one rule for one attachment, so
 * two attachments (nested cgroups, the daemon's many) never share one.
 * Written by userspace with every policy (used carried over a reload for
 * the rule naming the same destination, see ident), charged by the
 * programs under the lock. Example: allow[2] `domain: github.com,
 * upload_budget: 50MiB` of handle 3 after 1 MB sent -> key {3, allow[2]},
 * value {limit 52428800, used 1000000, refused 0, ident hash of
 * "domain:github.com", spent 0}.
 */
struct weir_budget_key {
	__u32 handle;
	__u32 rule; /* WEIR_RULE_ID() */
};
_Static_assert(sizeof(struct weir_budget_key) == 8, "weir_budget_key ABI");

struct weir_budget {
	struct bpf_spin_lock lock; /* guards used, refused and spent */
	__u32 spent; /* a packet did not fit: everything further is refused */
	__u64 limit; /* bytes */
	__u64 used; /* payload bytes let through (retransmissions included) */
	__u64 refused; /* packets dropped and connects/sends refused past the limit */
	__u64 ident; /* which destination the rule names (reloads match by it) */
	__u32 said; /* the upload-budget event was sent */
	__u32 __pad;
};
_Static_assert(sizeof(struct weir_budget) == 48, "weir_budget ABI");

#endif /* WEIR_FLOWS_H */
