/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * DNS wire format, through ldns: what a query asks, which addresses an
 * answer gives, and the REFUSED reply weir sends for names it blocks.
 * No hand-written parsing of untrusted bytes here.
 */
#ifndef WEIR_DNSMSG_H
#define WEIR_DNSMSG_H

#include <stddef.h>
#include <linux/types.h>

#include "compile.h"

#define DNS_NAME_MAX 256
#define DNS_MSG_MAX 65535

struct dns_question {
	__u16 id;
	__u16 qtype;
	char name[DNS_NAME_MAX]; /* lower case, no trailing dot; "." for the root */
	int edns; /* the query carried an OPT record */
};

/*
 * The query weir forwards for one it judged (dns_parse_query() took it):
 * the asker's ID, RD, AD and CD bits and question, and, when it had EDNS,
 * an OPT of weir's own with its UDP size (512-4096) and DO bit. Nothing
 * else the asker wrote (other records, EDNS options, flags) goes on: they
 * could carry data past the judgement (R8-14). Returns the length written
 * to out (at least DNS_CLEAN_MAX bytes), or a negative errno.
 */
#define DNS_NAME_WIRE_MAX 255
#define DNS_CLEAN_MAX (12 + DNS_NAME_WIRE_MAX + 4 + 11)
int dns_clean_query(const __u8 *wire, size_t len, __u8 *out, size_t outlen);
/* Parse a query: exactly one question, opcode QUERY. -EBADMSG otherwise. */
int dns_parse_query(const __u8 *wire, size_t len, struct dns_question *q);
/*
 * Parse an answer to q: same id and question; its A/AAAA records reachable
 * from the question name through CNAMEs go to out (at most max).
 * Returns the number of addresses or -EBADMSG; *rcode gets the rcode.
 */
int dns_parse_answer(const __u8 *wire, size_t len, const struct dns_question *q,
		     struct resolved_addr *out, size_t max, int *rcode);
/*
 * REFUSED for the query in wire, with an RFC 8914 Extended DNS Error
 * (INFO-CODE 15, Blocked) when the query had EDNS. Returns the length
 * written to out, or a negative errno.
 */
int dns_refused(const __u8 *wire, size_t len, const char *why, __u8 *out, size_t outlen);
/* SERVFAIL: no upstream answered. */
int dns_servfail(const __u8 *wire, size_t len, __u8 *out, size_t outlen);
/* "A", "AAAA", "TXT", ... or "TYPE65". */
const char *dns_type_name(__u16 type, char *buf, size_t len);

#endif /* WEIR_DNSMSG_H */
