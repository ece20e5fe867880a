// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addrbook.h"

void addr_unmap(int *family, __u8 addr[16])
{
	if (*family != AF_INET6 || memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12))
		return;
	memmove(addr, addr + 12, 4);
	memset(addr + 4, 0, 12);
	*family = AF_INET;
}

const struct abentry *addrbook_find(const struct addrbook *b, int family, const __u8 addr[16])
{
	__u8 a[16];
	size_t i;

	memcpy(a, addr, 16);
	addr_unmap(&family, a);
	for (i = 0; i < b->n; i++)
		if (b->e[i].family == family && !memcmp(b->e[i].addr, a, 16))
			return &b->e[i];
	return NULL;
}

int addrbook_add(struct addrbook *b, int family, const __u8 addr[16], const char *name)
{
	struct abentry *e = (struct abentry *)addrbook_find(b, family, addr);
	size_t i;

	if (!e) {
		if (b->n == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 16;

			e = realloc(b->e, cap * sizeof(*e));
			if (!e)
				return -ENOMEM;
			b->e = e;
			b->cap = cap;
		}
		e = &b->e[b->n++];
		memset(e, 0, sizeof(*e));
		e->family = family;
		memcpy(e->addr, addr, 16);
		addr_unmap(&e->family, e->addr);
	}
	for (i = 0; i < e->n; i++)
		if (!strcmp(e->names[i], name))
			return 0;
	if (e->n == ADDRBOOK_NAMES) {
		e->more = true;
		return 0;
	}
	e->names[e->n] = strdup(name);
	if (!e->names[e->n])
		return -ENOMEM;
	e->n++;
	return 0;
}

void addrbook_free(struct addrbook *b)
{
	size_t i, k;

	for (i = 0; i < b->n; i++)
		for (k = 0; k < b->e[i].n; k++)
			free(b->e[i].names[k]);
	free(b->e);
	memset(b, 0, sizeof(*b));
}
