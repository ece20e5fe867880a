/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The maps shared by every weir program. Sizes here are placeholders:
 * userspace sets the real ones with bpf_map__set_max_entries() before load.
 * Include once per BPF object, after vmlinux.h, <weir/egress.h> and
 * <weir/flows.h>.
 */
#ifndef WEIR_MAPS_BPF_H
#define WEIR_MAPS_BPF_H

/* Holds nothing: its size is the layout version of the maps (WEIR_MAP_ABI),
 * checked before maps pinned by another weir are reused. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEIR_MAP_ABI);
	__type(key, __u32);
	__type(value, __u32);
} weir_abi SEC(".maps");

/* Per enforced cgroup: its handle and resolver (struct weir_attach). The
 * storage of the cgroup the programs are attached to, whatever the
 * attach type (a __u64 key: the cgroup id only). */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, __u64);
	__type(value, struct weir_attach);
} weir_attach SEC(".maps");

/* Flattened allow/deny prefixes of every loaded policy, keyed by slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct weir_key4);
	__type(value, struct weir_lpm_val);
} weir_lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct weir_key6);
	__type(value, struct weir_lpm_val);
} weir_lpm6 SEC(".maps");

/* Big IPv4 policies as sorted intervals (struct weir_rblock, <weir/egress.h>):
 * slot -> an array made for that policy, exactly its size (BPF_F_INNER_MAP:
 * inner arrays of any length). */
struct weir_rblocks {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct weir_rblock)); /* no BTF: only ever a pointer here */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 64);
	__type(key, __u32);
	__array(values, struct weir_rblocks);
} weir_ranges4 SEC(".maps");

/* Out-of-line port sets for prefixes with more than one port range. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct weir_portset);
} weir_portsets SEC(".maps");

/* Per-slot policy settings (mode). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct weir_slot);
} weir_slots SEC(".maps");

/* handle (one per enforced cgroup) -> slot in force. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u32);
} weir_handles SEC(".maps");

/* Every enforced cgroup's id -> its handle: the nearest enforced ancestor
 * of a process judges it (WEIR_AF_OUTER, include/weir/egress.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u64);
	__type(value, __u32);
} weir_cgids SEC(".maps");

/* handle -> its decisions (struct weir_counts). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, struct weir_counts);
} weir_counts SEC(".maps");

/* Addresses learned from DNS answers (weir's resolver writes them). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct weir_learn_key);
	__type(value, struct weir_learn_val);
} weir_learn SEC(".maps");

/* Redirected DNS sockets, by cookie: original peer and asker. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct weir_asker);
} weir_askers SEC(".maps");

/* Per socket: the egress backstop's verdict cache and the flow
 * (struct weir_sock, include/weir/flows.h). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct weir_sock);
} weir_socks SEC(".maps");

/* TCP sockets' weir_sock, by cookie, without an allocation per connect()
 * (struct weir_tcpsock, include/weir/flows.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEIR_TCPSOCK_N);
	__type(key, __u32);
	__type(value, struct weir_tcpsock);
} weir_tcpsocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} weir_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEIR_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} weir_stats SEC(".maps");

#endif /* WEIR_MAPS_BPF_H */
