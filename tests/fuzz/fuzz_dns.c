// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: DNS messages as weir's resolver meets them (user/dns/dnsmsg.c):
 * the input is a query, or a query's first bytes followed by an answer to
 * it; the REFUSED and SERVFAIL replies built from the query (make fuzz).
 */
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "dnsmsg.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct resolved_addr addrs[16];
	struct dns_question q;
	__u8 out[4096];
	size_t split;
	int rcode;

	if (dns_parse_query(data, len, &q) == 0) {
		dns_refused(data, len, "fuzz", out, sizeof(out));
		dns_servfail(data, len, out, sizeof(out));
	}
	if (len < 2)
		return 0;
	/* The first byte says where the query ends and the answer starts. */
	split = 1 + data[0] % (len - 1);
	if (dns_parse_query(data + 1, split - 1, &q) == 0)
		dns_parse_answer(data + split, len - split, &q, addrs, 16, &rcode);
	return 0;
}
