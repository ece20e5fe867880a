/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The egress backstop: what the packet says, not what the program said.
 * Parsing of IPv4 and IPv6 headers from a cgroup_skb context (skb->data is
 * the network header there). Needs vmlinux.h and bpf/maps.bpf.h.
 */
#ifndef WEIR_BACKSTOP_BPF_H
#define WEIR_BACKSTOP_BPF_H

#define WEIR_ETH_P_IP 0x0800
#define WEIR_ETH_P_IPV6 0x86DD
#define WEIR_NEXTHDR_HOP 0
#define WEIR_NEXTHDR_ROUTING 43
#define WEIR_NEXTHDR_FRAGMENT 44
#define WEIR_NEXTHDR_DEST 60
#define WEIR_IPV6_EXT_MAX 4 /* extension headers walked before giving up */

/* Where a packet is going, as its headers say. */
struct weir_pkt {
	__u32 addr[4]; /* IPv4 in addr[0] */
	__u16 port; /* 0 when there is none (ICMP) or it is not in this fragment */
	__u8 family;
	__u8 protocol;
	__u8 reroute; /* IPv4 options or an IPv6 routing header */
	__u8 later_fragment; /* not the first fragment: no transport header */
	__u16 l4off; /* offset of the TCP/UDP header, when port is set */
};

static __always_inline int weir_l4_port(struct __sk_buff *skb, __u32 off, struct weir_pkt *p)
{
	__be16 port;

	if (p->protocol != WEIR_IPPROTO_TCP && p->protocol != WEIR_IPPROTO_UDP &&
	    p->protocol != WEIR_IPPROTO_UDPLITE)
		return 0;
	if (bpf_skb_load_bytes(skb, off + 2, &port, sizeof(port)))
		return -1;
	p->port = bpf_ntohs(port);
	p->l4off = off;
	return 0;
}

static __always_inline int weir_parse4(struct __sk_buff *skb, struct weir_pkt *p)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
		return -1;
	p->family = AF_INET;
	p->addr[0] = ip.daddr;
	p->protocol = ip.protocol;
	/* Source routing lives in the options: no options at all, then. */
	p->reroute = ip.ihl != 5;
	if (ip.frag_off & bpf_htons(0x1fff)) {
		p->later_fragment = 1;
		return 0;
	}
	return weir_l4_port(skb, ip.ihl * 4, p);
}

static __always_inline int weir_parse6(struct __sk_buff *skb, struct weir_pkt *p)
{
	struct ipv6hdr ip6;
	struct {
		__u8 nexthdr;
		__u8 len;
		__be16 frag_off; /* the fragment header's; unused otherwise */
	} ext;
	__u32 off = sizeof(ip6);
	__u8 next;
	int i;

	if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
		return -1;
	p->family = AF_INET6;
	__builtin_memcpy(p->addr, &ip6.daddr, sizeof(p->addr));
	next = ip6.nexthdr;
	for (i = 0; i < WEIR_IPV6_EXT_MAX; i++) {
		if (next == WEIR_NEXTHDR_ROUTING) {
			p->reroute = 1;
			return 0;
		}
		if (next != WEIR_NEXTHDR_HOP && next != WEIR_NEXTHDR_DEST &&
		    next != WEIR_NEXTHDR_FRAGMENT)
			break;
		if (bpf_skb_load_bytes(skb, off, &ext, sizeof(ext)))
			return -1;
		if (next == WEIR_NEXTHDR_FRAGMENT) {
			if (ext.frag_off & bpf_htons(0xfff8)) {
				p->later_fragment = 1;
				p->protocol = ext.nexthdr;
				return 0;
			}
			off += 8;
		} else {
			off += (ext.len + 1) * 8;
		}
		next = ext.nexthdr;
	}
	/* Still an extension header after WEIR_IPV6_EXT_MAX of them: more
	 * than any sane packet carries, refuse. */
	if (next == WEIR_NEXTHDR_HOP || next == WEIR_NEXTHDR_DEST ||
	    next == WEIR_NEXTHDR_FRAGMENT || next == WEIR_NEXTHDR_ROUTING)
		p->reroute = 1;
	p->protocol = next;
	return weir_l4_port(skb, off, p);
}

/* Where a packet goes (or, coming in, comes to), by its network protocol:
 * 0; -1 when its headers cannot be read; 1 when it is neither IPv4 nor IPv6. */
static __always_inline int weir_parse(struct __sk_buff *skb, struct weir_pkt *p)
{
	if (skb->protocol == bpf_htons(WEIR_ETH_P_IP))
		return weir_parse4(skb, p);
	if (skb->protocol == bpf_htons(WEIR_ETH_P_IPV6))
		return weir_parse6(skb, p);
	return 1;
}

#endif /* WEIR_BACKSTOP_BPF_H */
