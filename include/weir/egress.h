/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between bpf/egress.bpf.c and the userspace loader
 * (user/kernel/egress.c): map keys and values, the audit event, load-time config.
 *
 * Data only, fixed-size types, explicit padding. Include <linux/types.h>
 * (userspace) or vmlinux.h (BPF) before this header.
 *
 * How a verdict is reached, in one paragraph: one load of the programs
 * serves every enforced cgroup. Each cgroup they are attached to has its own
 * struct weir_attach in the cgroup storage map weir_attach (the storage of
 * the cgroup the programs are ATTACHED to, so its descendants are judged by
 * it too); it names the cgroup's *handle*. weir_handles[handle] names the
 * *slot* holding the policy currently in force for that cgroup (reloads
 * write a new slot, then flip the handle: one 4-byte store, so a reload is
 * atomic). The slot is part of every LPM key, so one pair of tries holds the
 * policies of many cgroups. Userspace "flattens" the rules before writing
 * them: the value stored at a prefix already contains the constraints of
 * every rule whose prefix covers it, so one longest-prefix lookup answers
 * the whole question. Handle 0 is "no policy": a fresh attachment whose
 * storage userspace has not written yet fails closed.
 */
#ifndef WEIR_EGRESS_H
#define WEIR_EGRESS_H

#define WEIR_PORTSET_MAX 16 /* port ranges in one out-of-line port set */
#define WEIR_LEARN_RANGES 16 /* port ranges of one learned address */
#define WEIR_DNS_PORT 53
#define WEIR_COMM_LEN 16

/* Protocol classes a rule can name; a bit mask in weir_portrange.protos. */
enum weir_proto_class {
	WEIR_P_TCP = 1 << 0, /* SOCK_STREAM: TCP, MPTCP */
	WEIR_P_UDP = 1 << 1, /* UDP, UDP-Lite */
	WEIR_P_OTHER = 1 << 2, /* anything else reaching the hooks (ICMP ping) */
	WEIR_P_ANY = WEIR_P_TCP | WEIR_P_UDP | WEIR_P_OTHER,
};

/*
 * Rule ids carried in values and events: kind in the top byte, index in the
 * rest. Example: 0x01000003 is allow[3] of the policy file; 0x05000000 the
 * built-in metadata deny.
 */
enum weir_rule_kind {
	WEIR_RK_NONE = 0, /* no rule matched: default deny */
	WEIR_RK_ALLOW = 1, /* allow[i] in the policy file */
	WEIR_RK_DENY = 2, /* deny[i] in the policy file */
	WEIR_RK_ARG = 3, /* the i-th --allow on the command line */
	WEIR_RK_LOOPBACK = 4, /* loopback: allow */
	WEIR_RK_METADATA = 5, /* built-in deny of cloud metadata endpoints */
	WEIR_RK_INBOUND = 6, /* inbound[i] in the policy file */
	WEIR_RK_INBOUND_DEFAULT = 7, /* no inbound: section: loopback peers only */
	WEIR_RK_INBOUND_ANY = 8, /* inbound: any */
	WEIR_RK_UNIX = 16, /* unix.deny or unix.allow pattern i, in policy order */
	WEIR_RK_UNIX_BUILTIN = 17, /* entry i of weir's built-in unix list */
};
#define WEIR_RULE_ID(kind, idx) (((__u32)(kind) << 24) | ((__u32)(idx)&0xffffff))
#define WEIR_RULE_KIND(id) ((id) >> 24)
#define WEIR_RULE_IDX(id) ((id)&0xffffff)

/* weir_portrange.flags */
#define WEIR_RF_HARD (1 << 0) /* a deny that audit mode does not soften */
#define WEIR_RF_BUDGET (1 << 1) /* an allow rule with an upload_budget: weir_budgets */

/*
 * A port range with the protocols it applies to and the rule it came from.
 * protos == 0 marks an empty (unused) range.
 * Example: {lo 8000, hi 8100, protos WEIR_P_TCP, rule allow[2]}.
 */
struct weir_portrange {
	__u16 lo; /* host byte order, inclusive; 0..65535 is "any port" */
	__u16 hi;
	__u8 protos; /* enum weir_proto_class bits */
	__u8 flags; /* WEIR_RF_* */
	__u16 __pad;
	__u32 rule; /* WEIR_RULE_ID() */
};
_Static_assert(sizeof(struct weir_portrange) == 12, "weir_portrange ABI");

/*
 * The allow (or deny) side of one prefix. Most prefixes need one range and
 * keep it inline (set == 0); a prefix with several ranges points at
 * weir_portsets[set] instead and the inline range is unused.
 */
struct weir_match {
	__u32 set; /* 0: use inl; else index into weir_portsets */
	struct weir_portrange inl;
};
_Static_assert(sizeof(struct weir_match) == 16, "weir_match ABI");

/* Value of weir_lpm4 / weir_lpm6. Deny is checked first: deny beats allow. */
struct weir_lpm_val {
	struct weir_match deny;
	struct weir_match allow;
};
_Static_assert(sizeof(struct weir_lpm_val) == 32, "weir_lpm_val ABI");

/* Value of weir_portsets: ranges r[0..n-1], n <= WEIR_PORTSET_MAX. */
struct weir_portset {
	__u32 n;
	__u32 __pad;
	struct weir_portrange r[WEIR_PORTSET_MAX];
};
_Static_assert(sizeof(struct weir_portset) == 200, "weir_portset ABI");

/*
 * Inbound rules (who may connect in, or send first) live in the same tries
 * as the egress ones, under the slot number with this bit set: the same
 * key and value types, no maps of their own to create, size, pin or adopt.
 * The value's allow side holds the permitted peers; its ports are LOCAL
 * ports (where the peer connects to). The deny side is unused.
 * Example: inbound 198.51.100.0/24 ports 8080 tcp, policy slot 5 ->
 * key {prefixlen 56, slot 0x80000005, addr 198.51.100.0}, value allow
 * {8080, 8080, TCP, inbound[0]}.
 */
#define WEIR_SLOT_INBOUND 0x80000000u

/*
 * LPM keys. prefixlen counts the 32 slot bits too: 192.0.2.0/24 in slot 5 is
 * {prefixlen 56, slot 5, addr 192.0.2.0}. slot is stored in host order; it is
 * always fully covered by the prefix, so its byte order does not matter.
 */
struct weir_key4 {
	__u32 prefixlen;
	__u32 slot;
	__u8 addr[4]; /* network byte order */
};
_Static_assert(sizeof(struct weir_key4) == 12, "weir_key4 ABI");

struct weir_key6 {
	__u32 prefixlen;
	__u32 slot;
	__u8 addr[16];
};
_Static_assert(sizeof(struct weir_key6) == 24, "weir_key6 ABI");

/*
 * Big IPv4 policies (docs/policy.md, "Big lists"): a trie insert is one
 * kernel allocation and lock per prefix, most of a million-prefix load. A
 * policy with at least WEIR_RANGES_MIN IPv4 entries (below it the trie
 * loads in a few tens of ms, and its lookup is what the hot paths were
 * measured with) is written instead as
 * sorted address intervals in an array map of its own (weir_ranges4[slot],
 * the slot flagged WEIR_SF_RANGES4): a few large copies, no per-prefix
 * work in the kernel. The flattened prefixes (nested, each value already
 * merged with its covers') become disjoint intervals [start, next start),
 * each naming the value of the most specific prefix containing it (0: none).
 * A lookup is a binary search for the last start <= the address.
 *
 * Every element of the inner array is one struct weir_rblock of 64 KiB:
 *   [0]                   the fence: w[b] = first start of data block b
 *                         (unused ones 0xffffffff); w[WEIR_RB_N + 0] = the
 *                         number of data blocks, [+ 1] = the element of the
 *                         first value block
 *   [1 .. nblocks]        data blocks: w[i] = start of interval i (ascending;
 *                         the first of all is 0; unused ones repeat the last
 *                         interval), w[WEIR_RB_N + i] = its value index
 *   [vfirst ..]           value blocks: WEIR_RB_VALS struct weir_lpm_val each;
 *                         value index v is block vfirst + v / WEIR_RB_VALS,
 *                         entry v % WEIR_RB_VALS; index 0 means no match
 * Example: 192.0.2.0/24 allow tcp 443 alone is the intervals {0: 0},
 * {192.0.2.0: 1}, {192.0.3.0: 0} and value 1 the /24's. Port sets are shared
 * with the tries (weir_portsets). The inbound rules stay in the tries.
 *
 * A value that is one rule's range of every port and protocol on one side,
 * and nothing on the other (each of a million inline `- ip:` rules has one
 * of its own), is not stored: the interval's word is WEIR_RB_ONE, with
 * WEIR_RB_DENY for the deny side, and the rule id (WEIR_RULE_ID, kinds
 * below 64) in WEIR_RB_RULE. A million values would be 32 MB to build and
 * copy into the kernel, twice the intervals.
 */
#define WEIR_RANGES_MIN 65536
#define WEIR_RB_SHIFT 13
#define WEIR_RB_N (1u << WEIR_RB_SHIFT) /* intervals per data block */
#define WEIR_RB_VALS (2 * WEIR_RB_N * 4 / 32) /* struct weir_lpm_val per value block */
#define WEIR_RB_ONE (1u << 31) /* the word is one rule's value, not an index */
#define WEIR_RB_DENY (1u << 30) /* with WEIR_RB_ONE: the rule is on the deny side */
#define WEIR_RB_RULE (WEIR_RB_DENY - 1) /* with WEIR_RB_ONE: the rule id */
struct weir_rblock {
	__u32 w[2 * WEIR_RB_N];
};
_Static_assert(sizeof(struct weir_rblock) == 65536, "weir_rblock ABI");

/* weir_slots value: per-policy settings. flags: */
#define WEIR_SF_LOADED (1 << 0) /* slot holds a complete policy */
#define WEIR_SF_AUDIT (1 << 1) /* mode: audit (deny nothing but hard denies) */
#define WEIR_SF_PING (1 << 2) /* ping sockets (SOCK_DGRAM + ICMP) may be created */
#define WEIR_SF_RANGES4 (1 << 3) /* the IPv4 egress entries are in weir_ranges4[slot] */
struct weir_slot {
	__u32 flags;
	__u32 gen; /* grows with every policy written: cached verdicts older are stale */
};
_Static_assert(sizeof(struct weir_slot) == 8, "weir_slot ABI");

enum weir_op {
	WEIR_OP_CONNECT4 = 1,
	WEIR_OP_CONNECT6 = 2,
	WEIR_OP_SENDMSG4 = 3,
	WEIR_OP_SENDMSG6 = 4,
	WEIR_OP_SOCKET = 5, /* cgroup/sock_create: family, sock_type, protocol */
	WEIR_OP_EGRESS = 6, /* cgroup_skb/egress: a packet, judged by the backstop */
	WEIR_OP_SETSOCKOPT = 7, /* cgroup/setsockopt: an option that reroutes packets */
	WEIR_OP_INBOUND = 8, /* cgroup_skb/ingress: a peer connecting in (TCP SYN) or
			      * sending first (UDP); addr/peer_port is the peer,
			      * port the local port */
	WEIR_OP_CLOSE = 9, /* a flow ended (include/weir/flows.h): no decision, a record */
	/* 16 and up: include/weir/unix.h (unix sockets, sockets made outside). */
	WEIR_OP_UNIX_CONNECT = 16, /* cgroup/connect_unix: a struct weir_unix_event */
	WEIR_OP_UNIX_SENDMSG = 17, /* cgroup/sendmsg_unix: a struct weir_unix_event */
	WEIR_OP_OUTSIDE_CONNECT = 18, /* BPF LSM: connect() on a socket made outside */
	WEIR_OP_OUTSIDE_SENDMSG = 19, /* BPF LSM: a send on a socket made outside */
};

enum weir_verdict {
	WEIR_V_DENY = 0,
	WEIR_V_ALLOW = 1,
	WEIR_V_WOULD_DENY = 2, /* audit mode: allowed, but enforce would deny */
};

enum weir_reason {
	WEIR_R_ALLOW_RULE = 1, /* an allow rule matched address, port and protocol */
	WEIR_R_DENY_RULE = 2, /* a deny rule matched */
	WEIR_R_NO_MATCH = 3, /* no rule names this address */
	WEIR_R_PORT = 4, /* rules name the address, not this port/protocol */
	WEIR_R_NO_POLICY = 5, /* no policy loaded for this attachment: fail closed */
	WEIR_R_DNS_REDIRECT = 6, /* port 53: sent to weir's resolver instead */
	WEIR_R_LEARNED = 7, /* an address weir's resolver gave for an allowed name */
	WEIR_R_SOCKET = 8, /* a socket the address hooks cannot judge (raw, SCTP...) */
	WEIR_R_SOURCE_ROUTE = 9, /* IPv4 options or an IPv6 routing header */
	WEIR_R_INBOUND_REPLY = 10, /* answers a flow a permitted inbound peer started */
	WEIR_R_BUDGET = 11, /* the deciding allow rule's upload_budget is spent */
	WEIR_R_UNIX_BUILTIN = 16, /* weir's built-in list of unix sockets (resolvers, engines) */
	WEIR_R_OUTSIDE = 17, /* a socket not made inside the cgroup */
	WEIR_R_UNIX_PATH = 18, /* a unix path no pattern can judge (relative, //, /./, /../,
				* /proc/, /dev/fd/): refused where the policy denies any */
	WEIR_R_MULTICAST = 19, /* a multicast join: the kernel's report carries the group */
};

/*
 * Socket options refused to the command, by level, as bit N for option
 * number N: cgroup/setsockopt refuses them (weir_setsockopt) and, since the
 * kernel skips that hook for 32-bit system calls, the seccomp filter of the
 * i386 and x32 ABIs too (user/sandbox/sandbox.c). One list for both.
 *
 * Multicast joins and the source filters of a joined group: a join needs
 * no privilege, and the kernel answers it with an IGMP or MLD report that
 * names the group (and sources) the caller chose, to every host on the
 * link. Leaving stays allowed. SOL_IP: IP_ADD_MEMBERSHIP 35,
 * IP_UNBLOCK_SOURCE 37, IP_BLOCK_SOURCE 38, IP_ADD_SOURCE_MEMBERSHIP 39,
 * IP_MSFILTER 41; both levels: MCAST_JOIN_GROUP 42, MCAST_BLOCK_SOURCE 43,
 * MCAST_UNBLOCK_SOURCE 44, MCAST_JOIN_SOURCE_GROUP 46, MCAST_MSFILTER 48;
 * SOL_IPV6: IPV6_ADD_MEMBERSHIP 20, IPV6_JOIN_ANYCAST 27.
 *
 * Source routes: IP_OPTIONS 4 (the hook refuses a non-empty one only),
 * IPV6_2292RTHDR 5, IPV6_2292PKTOPTIONS 6, IPV6_RTHDR 57.
 */
#define WEIR_SOL_IP 0
#define WEIR_SOL_IPV6 41
#define WEIR_IP_OPTIONS 4
#define WEIR_MCAST_BOTH ((1ULL << 42) | (1ULL << 43) | (1ULL << 44) | (1ULL << 46) | (1ULL << 48))
#define WEIR_MCAST_IP                                                                        \
	(WEIR_MCAST_BOTH | (1ULL << 35) | (1ULL << 37) | (1ULL << 38) | (1ULL << 39) | \
	 (1ULL << 41))
#define WEIR_MCAST_IPV6 (WEIR_MCAST_BOTH | (1ULL << 20) | (1ULL << 27))
#define WEIR_SRCRT_IP (1ULL << WEIR_IP_OPTIONS)
#define WEIR_SRCRT_IPV6 ((1ULL << 5) | (1ULL << 6) | (1ULL << 57))

/* weir_event.flags */
#define WEIR_EF_MAPPED (1 << 0) /* IPv4-mapped IPv6, judged by IPv4 rules */
#define WEIR_EF_UNSPEC (1 << 1) /* 0.0.0.0 or ::, judged as loopback */
/* CLOSE: the end of one destination of an unconnected UDP socket (struct
 * weir_udest, include/weir/flows.h), with its datagrams counted. */
#define WEIR_EF_DEST (1 << 2)
/* A unix op refused at a name-service socket the C library tries on every
 * lookup (nscd, systemd-resolved) before falling back to DNS: nothing was
 * sent, and it is no denial worth a line (as glibc's UDP probes). */
#define WEIR_EF_RESOLVER (1 << 6)
/* A unix op judged by the path the socket reached was bound to (BPF LSM),
 * not the one the program typed: a link or another mount of it. */
#define WEIR_EF_PEER (1 << 7)

/*
 * One decision, as written to the weir_events ring buffer.
 * Example: curl (pid 4242) connecting to 198.51.100.7:443 and denied:
 * {op CONNECT4, verdict DENY, reason NO_MATCH, protocol 6, family 2,
 *  addr 198.51.100.7, port 443, rule 0, ...}.
 * 198.51.100.7:51234 refused connecting in to a server on port 8080:
 * {op INBOUND, verdict DENY, reason NO_MATCH, protocol 6, family 2,
 *  addr 198.51.100.7, port 8080, peer_port 51234, pid 0, ...}.
 * The end of curl's allowed connection that sent 812 bytes and got 53,001
 * back in 0.2 s: {op CLOSE, verdict ALLOW, reason ALLOW_RULE, addr, port,
 * rule and pid/comm as at its connect, tx_bytes 812, rx_bytes 53001,
 * duration_ns 200000000}. The three counters are 0 in every other op.
 * An unconnected UDP socket that sent 40 datagrams to 192.0.2.53:53 (each
 * let through; only the first made a sendmsg4 event) ends with, per such
 * destination: {op CLOSE, flags WEIR_EF_DEST, addr, port, rule and
 * pid/comm as at its first datagram, datagrams 40, duration_ns from the
 * first datagram to the socket's release; tx_bytes and rx_bytes 0}.
 */
struct weir_event {
	__u64 ts_ns; /* CLOCK_BOOTTIME */
	__u64 cgroup_id; /* cgroup v2 id of the calling task */
	__u32 pid; /* tgid, as userspace sees it in the init pid namespace */
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__u32 rule; /* WEIR_RULE_ID() of the deciding rule, 0 if none */
	__u32 handle; /* the attachment (enforced cgroup) that decided */
	__u8 verdict; /* enum weir_verdict */
	__u8 op; /* enum weir_op */
	__u8 reason; /* enum weir_reason */
	__u8 family; /* AF_INET or AF_INET6: the family of addr as given */
	__u16 protocol; /* IPPROTO_* of the socket (IPPROTO_MPTCP is 262) */
	__u8 sock_type; /* SOCK_STREAM, SOCK_DGRAM, ... */
	__u8 flags; /* WEIR_EF_* */
	__u16 port; /* destination port, host byte order (INBOUND: the local port) */
	__u16 peer_port; /* INBOUND: the peer's (source) port; else 0 */
	__u8 addr[16]; /* destination as the program gave it; IPv4 in addr[0..3] */
	char comm[WEIR_COMM_LEN];
	__u32 domain_id; /* learned addresses: the name's id (weir_learn_val), else 0 */
	__u64 tx_bytes; /* CLOSE: payload bytes sent (TCP: acknowledged by the peer) */
	__u64 rx_bytes; /* CLOSE: payload bytes received */
	__u64 duration_ns; /* CLOSE: from the connect() that started the flow to its end */
	__u64 datagrams; /* CLOSE with WEIR_EF_DEST: datagrams let through to addr:port */
};
_Static_assert(sizeof(struct weir_event) == 120, "weir_event ABI");

/*
 * weir_learn: addresses weir's resolver handed out for allowed names, per
 * enforced cgroup (handle). Checked after the tries, so deny rules still
 * win. Example: github.com answered 140.82.121.3, TTL 60, rule allow[0]
 * ports 443/tcp -> key {handle 1, AF_INET, 140.82.121.3}, value {r[0] =
 * {443, 443, TCP, allow[0]}, n 1, domain_id 1, expires_ns now+60s}.
 */
struct weir_learn_key {
	__u32 handle;
	__u8 family; /* AF_INET or AF_INET6 */
	__u8 __pad[3];
	__u8 addr[16]; /* IPv4 in addr[0..3] */
};
_Static_assert(sizeof(struct weir_learn_key) == 24, "weir_learn_key ABI");

struct weir_learn_val {
	struct weir_portrange r[WEIR_LEARN_RANGES];
	__u32 n;
	__u32 domain_id; /* for events: which name taught this address */
	__u64 expires_ns; /* CLOCK_BOOTTIME; stale entries are ignored */
};
_Static_assert(sizeof(struct weir_learn_val) == 208, "weir_learn_val ABI");

/*
 * weir_askers (LRU, by socket cookie): where a redirected DNS socket meant
 * to go, and who asked. recvmsg/getpeername put the original peer back;
 * weir's resolver reads the asker for its audit event.
 */
struct weir_asker {
	__u32 ip6[4]; /* original destination; IPv4 in ip6[0] */
	__u16 port; /* original port, host order */
	__u8 family; /* AF_INET or AF_INET6 (mapped: AF_INET6) */
	__u8 __pad;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__u32 handle; /* the attachment that redirected it: only its resolver serves it
		       * (one weir_askers map serves every attachment of a daemon); 0
		       * from the programs of a weir before this field (it was padding:
		       * the layout stays WEIR_MAP_ABI 6, so a daemon upgrades in place) */
	__u64 cgroup_id;
	char comm[WEIR_COMM_LEN];
};
_Static_assert(sizeof(struct weir_asker) == 64, "weir_asker ABI");

/*
 * The backstop's last verdict for a socket (struct weir_sock's cache, in
 * the socket storage weir_socks, include/weir/flows.h), so only the first
 * packet to a destination, per policy, pays for a lookup.
 * One per socket, whichever attachment judged last: a socket in a cgroup
 * below two attached ones is judged by both, and a verdict counts only for
 * the handle that judged it, under the generation in force.
 */
struct weir_skcache {
	__u32 gen; /* weir_slot.gen it was judged under */
	__u32 handle; /* the attachment that judged */
	__u32 addr[4]; /* destination judged; IPv4 in addr[0] */
	__u16 port;
	__u8 family;
	__u8 verdict; /* enum weir_verdict */
	__u8 reason; /* enum weir_reason */
	__u8 budget; /* the deciding rule has an upload_budget (WEIR_RF_BUDGET) */
	__u8 __pad[2];
	__u32 rule; /* the deciding rule: with budget, its weir_budgets entry */
};
_Static_assert(sizeof(struct weir_skcache) == 36, "weir_skcache ABI");

/*
 * weir_attach (cgroup storage, key: the cgroup id, shared by every attach
 * type of that cgroup): what one enforced cgroup is. Written by userspace
 * once the programs are attached (zero until then: handle 0, fail closed),
 * replaced whole by a map update (the programs see the old or the new
 * value, never a mix). Example: a pod's cgroup, handle 7, its resolver on
 * 127.0.0.1:40053 and [::1]:40053 of the pod's network namespace ->
 * {handle 7, dns_port 40053, dns_ip4 127.0.0.1, dns_ip6 ::1}.
 */
struct weir_attach {
	__u32 handle; /* index into weir_handles and weir_counts; 0: no policy */
	__u16 dns_port; /* the resolver's port, host order; 0: no DNS redirect */
	__u16 flags; /* WEIR_AF_* */
	__u32 dns_ip4; /* the resolver, network order (127.0.0.1) */
	__u32 dns_ip6[4]; /* and for IPv6 sockets (::1, or ::ffff:127.0.0.1) */
};
_Static_assert(sizeof(struct weir_attach) == 28, "weir_attach ABI");

/*
 * weir_attach.flags. Attachments nest (a node's default on a parent cgroup,
 * a container's own policy below it), and the kernel runs the programs of
 * every attached ancestor of a socket's cgroup, nearest first, any "deny"
 * winning. So that a process is judged by the nearest attachment only (its
 * own policy replaces the default, it is not combined with it), an
 * attachment with enforced cgroups below it is marked OUTER: its programs
 * look the process's cgroup and ancestors up in weir_cgids (enforced cgroup
 * id -> handle) and let through, untouched, what a nearer attachment judges.
 * Example: machine.slice (handle 1, OUTER) and machine.slice/ctr (handle 2):
 * a connect from ctr/sub runs handle 2's programs (judged), then handle 1's
 * (ctr is nearer: allowed as is). Without the OUTER flag no lookup is made.
 */
#define WEIR_AF_OUTER (1 << 0)

/*
 * weir_counts (per-CPU array, by handle): the decisions taken for one
 * enforced cgroup, as the events report them (each event is one decision,
 * whether the ring buffer had room for it or not). Example: 3 connects
 * allowed, 1 denied, 2 DNS queries sent to the resolver -> {3, 1, 0, 2}.
 */
struct weir_counts {
	__u64 allow;
	__u64 deny;
	__u64 would_deny; /* audit mode: allowed, but enforce would deny */
	__u64 dns; /* queries redirected to the attachment's resolver */
};
_Static_assert(sizeof(struct weir_counts) == 32, "weir_counts ABI");

/*
 * weir_inflows (LRU): peers that sent first to a socket of the cgroup, as
 * the ingress program judged them. A permitted peer's entry lets the same
 * socket's replies to it pass the sendmsg hook and the backstop (UDP); a
 * refused one keeps a retrying peer from making one event per packet.
 * Example: 198.51.100.7:5353 sends to a UDP server on port 8053 whose
 * inbound rules permit it -> key {cookie of the server's socket, AF_INET,
 * port 5353, 198.51.100.7, handle 1}, value {verdict ALLOW, gen of the
 * policy}.
 */
struct weir_inflow_key {
	__u64 cookie; /* socket cookie of the local socket */
	__u8 family; /* AF_INET or AF_INET6 */
	__u8 __pad;
	__u16 port; /* the peer's port, host order */
	__u32 addr[4]; /* the peer; IPv4 in addr[0] */
	__u32 handle; /* the attachment whose rules judged (nested ones each judge) */
};
_Static_assert(sizeof(struct weir_inflow_key) == 32, "weir_inflow_key ABI");

struct weir_inflow {
	__u32 gen; /* weir_slot.gen of the policy that judged */
	__u8 verdict; /* enum weir_verdict */
	__u8 __pad[3];
};
_Static_assert(sizeof(struct weir_inflow) == 8, "weir_inflow ABI");

/* weir_stats (per-CPU array) indexes: what is not any one cgroup's. */
enum weir_stat {
	WEIR_STAT_LOST = 0, /* events dropped: ring buffer full */
	WEIR_STAT_DECISIONS = 1, /* unused by the programs: userspace sums weir_counts */
	WEIR_STAT_BACKSTOP_DROPS = 2, /* packets the egress backstop dropped */
	WEIR_STAT_INBOUND_DROPS = 3, /* TCP SYNs and UDP datagrams refused coming in */
	WEIR_STAT_BUDGET_DROPS = 4, /* packets and connects refused past an upload_budget */
	WEIR_STAT_MAX,
};

/*
 * Bumped whenever a pinned map changes meaning (a key, a value, a map's
 * type): a daemon finding maps of another version pinned refuses to reuse
 * them rather than run its programs on values it misreads. It is the
 * max_entries of the map weir_abi, so it is set when the maps are made.
 */
/* 2: the inbound rules (slot | WEIR_SLOT_INBOUND), weir_inflows; 3: weir_ranges4;
 * 4: weir_skcache.rule, weir_flows, weir_budgets, 112-byte events;
 * 5: weir_udests, 120-byte events (datagrams); 6: weir_socks (the backstop's
 * cache and the flow in one socket storage) instead of weir_skcache and weir_flows */
#define WEIR_MAP_ABI 6

/* Load-time settings, in the programs' .rodata: the same for every cgroup. */
struct weir_config {
	__u32 wakeup_bytes; /* force a consumer wakeup above this fill level */
	__u8 task_info; /* enum weir_task_info: how to read pid, comm, cgroup */
	__u8 skb_task_info; /* the same in cgroup_skb programs (6.1: CORE) */
	/* 1: the programs can read a process's cgroup ancestors
	 * (bpf_get_current_ancestor_cgroup_id, 5.7+), so OUTER attachments
	 * defer to nested ones; 0: nested attachments both apply */
	__u8 nesting;
	__u8 __pad[1];
};

/*
 * bpf_get_current_{pid_tgid,comm,cgroup_id} reached cgroup/sock_addr
 * programs only in later kernels; older ones can still read the task with
 * bpf_get_current_task() and CO-RE. Userspace probes and picks.
 */
enum weir_task_info {
	WEIR_TASK_NONE = 0, /* neither: pid, tid, comm and cgroup stay 0 */
	WEIR_TASK_HELPERS = 1,
	WEIR_TASK_CORE = 2,
};

#endif /* WEIR_EGRESS_H */
