/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The names DNS events answered with each address: what weir's resolver
 * would teach the kernel, for connections recorded without a domain (the
 * events of a DNS query and of the connection that follows are not in
 * order: the whole stream is read first).
 */
#ifndef WEIR_ADDRBOOK_H
#define WEIR_ADDRBOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define ADDRBOOK_NAMES 4 /* names kept per address */

struct abentry {
	int family;
	__u8 addr[16];
	char *names[ADDRBOOK_NAMES];
	size_t n; /* names kept */
	bool more; /* more names answered with it than kept */
};

struct addrbook {
	struct abentry *e;
	size_t n, cap;
};

/* ADDR (IPv4-mapped IPv6 is stored as IPv4) was an answer for NAME. */
int addrbook_add(struct addrbook *b, int family, const __u8 addr[16], const char *name);
const struct abentry *addrbook_find(const struct addrbook *b, int family, const __u8 addr[16]);
void addrbook_free(struct addrbook *b);
/* IPv4-mapped IPv6 to IPv4, in place, as the kernel judges it. */
void addr_unmap(int *family, __u8 addr[16]);

#endif /* WEIR_ADDRBOOK_H */
