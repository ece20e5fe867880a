// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <ldns/ldns.h>

#include "dnsmsg.h"

#define EDE_BLOCKED 15 /* RFC 8914 INFO-CODE */

static int name_of(const ldns_rdf *rdf, char *out, size_t len)
{
	char *s = ldns_rdf2str(rdf);
	size_t n, i;

	if (!s)
		return -ENOMEM;
	n = strlen(s);
	if (n > 1 && s[n - 1] == '.')
		s[--n] = '\0';
	if (n >= len) {
		free(s);
		return -ENAMETOOLONG;
	}
	for (i = 0; i <= n; i++)
		out[i] = tolower((unsigned char)s[i]);
	free(s);
	return 0;
}

static int question_of(const ldns_pkt *p, struct dns_question *q)
{
	const ldns_rr_list *qs = ldns_pkt_question(p);
	const ldns_rr *rr;

	if (ldns_pkt_get_opcode(p) != LDNS_PACKET_QUERY || ldns_rr_list_rr_count(qs) != 1)
		return -EBADMSG;
	rr = ldns_rr_list_rr(qs, 0);
	q->id = ldns_pkt_id(p);
	q->qtype = ldns_rr_get_type(rr);
	q->edns = ldns_pkt_edns(p);
	return name_of(ldns_rr_owner(rr), q->name, sizeof(q->name)) ? -EBADMSG : 0;
}

/*
 * A query has one question, no answer or authority records, and at most
 * its EDNS OPT record in the additional section. Anything else is refused
 * before ldns sees it: ldns 1.8.3 leaks what it had parsed when it gives up
 * on some malformed additional sections (found by tests/fuzz/fuzz_dns), and
 * a program inside could send such queries forever.
 */
static bool query_counts_ok(const __u8 *wire, size_t len)
{
	if (len < 12)
		return false;
	return wire[4] == 0 && wire[5] == 1 && /* QDCOUNT 1 */
	       !(wire[6] | wire[7] | wire[8] | wire[9]) && /* ANCOUNT, NSCOUNT 0 */
	       wire[10] == 0 && wire[11] <= 1; /* ARCOUNT 0 or 1 */
}

int dns_clean_query(const __u8 *wire, size_t len, __u8 *out, size_t outlen)
{
	size_t pos = 12, qend, o;
	__u16 size;

	if (len < 12 || outlen < DNS_CLEAN_MAX)
		return -EINVAL;
	while (pos < len && wire[pos]) { /* the question's name: labels, no pointer */
		if (wire[pos] > 63)
			return -EBADMSG;
		pos += 1 + wire[pos];
	}
	qend = pos + 1 + 4; /* the root label, QTYPE, QCLASS */
	if (qend > len || qend - 12 > DNS_NAME_WIRE_MAX + 4)
		return -EBADMSG;
	memcpy(out, wire, 2); /* ID */
	out[2] = wire[2] & 0x01; /* QUERY, RD */
	out[3] = wire[3] & 0x30; /* AD, CD */
	memset(out + 4, 0, 8);
	out[5] = 1; /* QDCOUNT */
	memcpy(out + 12, wire + 12, qend - 12);
	o = qend;
	/* The one additional record, when it is an OPT (root name, type 41):
	 * weir's own, with the asker's UDP size (clamped) and DO bit only. */
	if (wire[11] == 1 && qend + 11 <= len && wire[qend] == 0 && wire[qend + 1] == 0 &&
	    wire[qend + 2] == 41) {
		size = (__u16)(wire[qend + 3] << 8 | wire[qend + 4]);
		size = size < 512 ? 512 : size > 4096 ? 4096 : size;
		out[11] = 1; /* ARCOUNT */
		out[o++] = 0; /* root */
		out[o++] = 0;
		out[o++] = 41; /* OPT */
		out[o++] = size >> 8;
		out[o++] = size & 0xff;
		out[o++] = 0; /* extended RCODE */
		out[o++] = 0; /* version */
		out[o++] = wire[qend + 7] & 0x80; /* DO */
		out[o++] = 0;
		out[o++] = 0; /* no options */
		out[o++] = 0;
	}
	return (int)o;
}

int dns_parse_query(const __u8 *wire, size_t len, struct dns_question *q)
{
	ldns_pkt *p = NULL;
	int err;

	if (!query_counts_ok(wire, len) || ldns_wire2pkt(&p, wire, len) != LDNS_STATUS_OK)
		return -EBADMSG;
	err = ldns_pkt_qr(p) ? -EBADMSG : question_of(p, q);
	ldns_pkt_free(p);
	return err;
}

/* Owner names on the way to the answer: the question and CNAME targets. */
#define CHAIN_MAX 16

static bool in_chain(ldns_rdf *const *c, int n, const ldns_rdf *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (ldns_dname_compare(c[i], name) == 0)
			return true;
	return false;
}

static int follow_cnames(const ldns_rr_list *ans, ldns_rdf **c)
{
	bool grew = true;
	size_t i;
	int n = 1;

	while (grew && n < CHAIN_MAX) {
		grew = false;
		for (i = 0; i < ldns_rr_list_rr_count(ans) && n < CHAIN_MAX; i++) {
			ldns_rr *rr = ldns_rr_list_rr(ans, i);
			ldns_rdf *target = ldns_rr_rdf(rr, 0);

			if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || !target ||
			    !in_chain(c, n, ldns_rr_owner(rr)) || in_chain(c, n, target))
				continue;
			c[n++] = target;
			grew = true;
		}
	}
	return n;
}

static size_t collect(const ldns_pkt *p, ldns_rdf *qname, struct resolved_addr *out, size_t max)
{
	const ldns_rr_list *ans = ldns_pkt_answer(p);
	ldns_rdf *chain[CHAIN_MAX] = { qname };
	int nc = follow_cnames(ans, chain);
	size_t i, got = 0;

	for (i = 0; i < ldns_rr_list_rr_count(ans) && got < max; i++) {
		ldns_rr *rr = ldns_rr_list_rr(ans, i);
		ldns_rdf *rd = ldns_rr_rdf(rr, 0);
		ldns_rr_type t = ldns_rr_get_type(rr);
		size_t alen = t == LDNS_RR_TYPE_A ? 4 : t == LDNS_RR_TYPE_AAAA ? 16 : 0;

		if (!alen || !rd || ldns_rdf_size(rd) != alen ||
		    !in_chain(chain, nc, ldns_rr_owner(rr)))
			continue;
		memset(&out[got], 0, sizeof(out[got]));
		out[got].family = alen == 4 ? AF_INET : AF_INET6;
		out[got].ttl = ldns_rr_ttl(rr);
		memcpy(out[got].addr, ldns_rdf_data(rd), alen);
		got++;
	}
	return got;
}

int dns_parse_answer(const __u8 *wire, size_t len, const struct dns_question *q,
		     struct resolved_addr *out, size_t max, int *rcode)
{
	struct dns_question aq;
	ldns_pkt *p = NULL;
	ldns_rdf *qname;
	int ret;

	if (ldns_wire2pkt(&p, wire, len) != LDNS_STATUS_OK)
		return -EBADMSG;
	ret = -EBADMSG;
	if (!ldns_pkt_qr(p) || question_of(p, &aq) || aq.id != q->id || aq.qtype != q->qtype ||
	    strcmp(aq.name, q->name))
		goto out;
	*rcode = ldns_pkt_get_rcode(p);
	qname = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0));
	ret = *rcode == LDNS_RCODE_NOERROR ? (int)collect(p, qname, out, max) : 0;
out:
	ldns_pkt_free(p);
	return ret;
}

static int add_ede(ldns_pkt *r, const char *why)
{
	size_t tlen = strlen(why), n = 2 + tlen;
	ldns_edns_option_list *list;
	ldns_edns_option *opt;
	__u8 *data = malloc(n);

	if (!data)
		return -ENOMEM;
	data[0] = 0;
	data[1] = EDE_BLOCKED;
	memcpy(data + 2, why, tlen);
	opt = ldns_edns_new_from_data(LDNS_EDNS_EDE, n, data);
	free(data);
	list = ldns_edns_option_list_new();
	if (!opt || !list || !ldns_edns_option_list_push(list, opt)) {
		ldns_edns_deep_free(opt);
		ldns_edns_option_list_deep_free(list);
		return -ENOMEM;
	}
	ldns_pkt_set_edns_udp_size(r, 1232);
	ldns_pkt_set_edns_option_list(r, list);
	return 0;
}

/* A reply to wire with rcode, the question copied, nothing else. */
static int reply(const __u8 *wire, size_t len, ldns_pkt_rcode rcode, const char *ede, __u8 *out,
		 size_t outlen)
{
	ldns_pkt *q = NULL, *r = NULL;
	size_t n = 0;
	__u8 *buf = NULL;
	int ret = -EBADMSG;

	if (ldns_wire2pkt(&q, wire, len) != LDNS_STATUS_OK)
		return -EBADMSG;
	r = ldns_pkt_new();
	if (!r)
		goto out;
	ldns_pkt_set_id(r, ldns_pkt_id(q));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_opcode(r, ldns_pkt_get_opcode(q));
	ldns_pkt_set_rd(r, ldns_pkt_rd(q));
	ldns_pkt_set_ra(r, true);
	ldns_pkt_set_rcode(r, rcode);
	ldns_rr_list_deep_free(ldns_pkt_question(r));
	ldns_pkt_set_question(r, ldns_rr_list_clone(ldns_pkt_question(q)));
	ldns_pkt_set_qdcount(r, ldns_rr_list_rr_count(ldns_pkt_question(r)));
	if (ede && ldns_pkt_edns(q) && add_ede(r, ede))
		goto out;
	if (ldns_pkt2wire(&buf, r, &n) != LDNS_STATUS_OK)
		goto out;
	ret = n <= outlen ? (int)n : -ENOSPC;
	if (ret > 0)
		memcpy(out, buf, n);
out:
	free(buf);
	ldns_pkt_free(r);
	ldns_pkt_free(q);
	return ret;
}

int dns_refused(const __u8 *wire, size_t len, const char *why, __u8 *out, size_t outlen)
{
	return reply(wire, len, LDNS_RCODE_REFUSED, why, out, outlen);
}

int dns_servfail(const __u8 *wire, size_t len, __u8 *out, size_t outlen)
{
	return reply(wire, len, LDNS_RCODE_SERVFAIL, NULL, out, outlen);
}

const char *dns_type_name(__u16 type, char *buf, size_t len)
{
	const ldns_rr_descriptor *d = ldns_rr_descript(type);

	/* ldns names data types only; the query-only ones by hand (RFC 1035). */
	switch (type) {
	case 251:
		return "IXFR";
	case 252:
		return "AXFR";
	case 255:
		return "ANY";
	}
	if (d && d->_name && strncmp(d->_name, "TYPE", 4))
		return d->_name;
	snprintf(buf, len, "TYPE%u", type);
	return buf;
}
