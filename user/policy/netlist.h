/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * List files of `cidr_list: FILE` rules: one address or prefix a line,
 * FireHOL netsets and `ipset save` output (user/policy/netlist.c).
 */
#ifndef WEIR_NETLIST_H
#define WEIR_NETLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

/* 1 GiB: some 60 million lines; far past any published list. */
#define NETLIST_MAX_SIZE (1ULL << 30)

struct list_prefix {
	__u8 family; /* AF_INET or AF_INET6 (IPv4-mapped entries become IPv4) */
	__u8 plen;
	__u8 addr[16]; /* network byte order, host bits zero */
};

/* Parse BUF (NAME in messages). -EINVAL with err "NAME:LINE: what". */
int netlist_parse(const char *name, const char *buf, size_t len, struct list_prefix **out,
		  size_t *n, char *err, size_t errlen);
/* What netlist_load() read, besides the entries. */
struct netlist_file {
	char *path; /* as opened (relative to the policy's directory), malloc'd */
	unsigned char sha256[32]; /* of its bytes: the run-start hash covers lists too */
};

/* Read and parse PATH, relative to the directory of the file POLICY when
 * not absolute (POLICY may be NULL). Errors: "cidr_list: ..." or those of
 * netlist_parse(). FILE (may be NULL) gets the path opened (also on a
 * parse error, so that a daemon can watch it) and the hash of the bytes. */
int netlist_load(const char *policy, const char *path, struct list_prefix **out, size_t *n,
		 struct netlist_file *file, char *err, size_t errlen);

/*
 * How list files are opened: NULL (the default) opens any regular file the
 * process can read. The daemon installs its own, which refuses files other
 * users could change (a list is as much the policy as the policy file).
 * Returns an fd, or -errno with err filled.
 */
typedef int (*netlist_open_fn)(const char *path, char *err, size_t errlen);
void netlist_set_open(netlist_open_fn fn);

/* A.B.C.D exactly (N bytes at S), each part 0..255 without a leading zero
 * (inet_pton's rules): the fast line readers of list files and inline runs. */
bool netlist_parse_v4(const char *s, size_t n, __u8 *out);

/* Transparent huge pages asked for over the untouched array P of LEN bytes
 * (4 MiB or more): a page fault per 2 MiB when it is first written. */
void hint_huge(void *p, size_t len);

#endif /* WEIR_NETLIST_H */
