/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Policy: the parsed, validated form of a policy YAML file (docs/policy.md)
 * plus the extra rules given with `weir run --allow`.
 *
 * Nothing here touches BPF; user/policy/compile.c turns a policy into map entries.
 */
#ifndef WEIR_POLICY_H
#define WEIR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

#include "netlist.h"

#define POLICY_VERSION 1
#define POLICY_ERR_LEN 512
/*
 * 256 MiB: a million inline rules take some 30 MB, and big address lists
 * belong in `cidr_list:` files anyway (user/policy/netlist.c). The cap
 * bounds what a bad input can make us allocate: libyaml's node tree is
 * some ten times the text.
 */
#define POLICY_MAX_SIZE (256u << 20)
#define POLICY_BUILTIN_NAME "<built-in agent-default>"

enum policy_mode {
	POLICY_ENFORCE = 0,
	POLICY_AUDIT = 1,
};

enum rule_kind {
	RULE_CIDR = 0, /* `cidr:` or `ip:` (an ip is a full-length prefix) */
	RULE_DOMAIN = 1, /* `domain:` */
	RULE_CIDR_LIST = 2, /* `cidr_list: FILE` (user/policy/netlist.h) */
};

/* How a domain rule matches names (see domain_match()). */
enum name_match {
	NAME_EXACT = 0, /* github.com: that name only */
	NAME_ONE = 1, /* *.npmjs.org: exactly one label below npmjs.org */
	NAME_MANY = 2, /* **.githubusercontent.com: one or more labels below */
};

struct port_range {
	__u16 lo; /* inclusive, 1..65535, lo <= hi */
	__u16 hi;
};

/* A `cidr_list:` rule's list: the file as written, and its entries (one
 * rule, one rule id: events name the rule, not the line of the list). */
struct policy_list {
	char *name;
	struct list_prefix *pfx;
	size_t n;
	struct netlist_file file; /* the path opened, and its bytes' SHA-256 */
};

/* 88 bytes: a million inline rules are 88 MB of them. */
struct policy_rule {
	enum rule_kind kind;
	/* RULE_CIDR */
	int family; /* AF_INET or AF_INET6 */
	__u8 addr[16]; /* network byte order, IPv4 in addr[0..3]; host bits zero */
	__u8 prefixlen; /* 0..32 or 0..128 */
	/* Every kind: WEIR_P_* mask (include/weir/egress.h) */
	__u8 protos;
	/* RULE_DOMAIN: lower case, no trailing dot, wildcard labels removed:
	 * "*.npmjs.org" is stored as domain "npmjs.org", match NAME_ONE. */
	enum name_match match;
	char *domain;
	struct policy_list *list; /* RULE_CIDR_LIST */
	/* Every kind. n_ports == 0 means every port. */
	struct port_range *ports;
	size_t n_ports;
	/* allow rules: `upload_budget:` in bytes, 0 for none (docs/policy.md) */
	__u64 upload_budget;
	/* Where the rule came from, for messages: line/col are 1-based, 0 for
	 * rules from the command line; file indexes policy_file_name() (0: the
	 * policy's own file, others: the files it includes). */
	unsigned int line;
	unsigned int col;
	unsigned int file;
};

/* `include:` (docs/policy.md, "Tiers"): one entry as written. */
struct policy_include {
	char *name; /* "base.yaml", "../tiers/ci.yaml" or "preset:npm" */
	unsigned int line, col;
};

/*
 * The top-level settings an included file may not contradict, and where
 * each was written (line 0: not in this file).
 */
enum policy_setting {
	SET_MODE = 0,
	SET_LOOPBACK,
	SET_PING,
	SET_DNS,
	SET_INBOUND,
	SET_N,
};

struct policy_at {
	unsigned int line, col, file;
};

/* `dns:` (docs/policy.md, "DNS"): weir's resolver. */
#define POLICY_DNS_TTL_MIN 5
#define POLICY_DNS_TTL_MAX 3600
#define POLICY_DNS_MAX_ADDRESSES 64
#define POLICY_DNS_MAX_UPSTREAMS 8
enum dns_static {
	DNS_STATIC_AUTO = 0, /* only when NSS answers without DNS traffic (nscd, nss-resolve) */
	DNS_STATIC_ALWAYS = 1,
	DNS_STATIC_NEVER = 2,
};

struct policy_dns {
	enum dns_static static_mode; /* resolve exact names ahead of time? */
	char **upstream; /* "IP", "IP:PORT", "[IPv6]:PORT"; none: /etc/resolv.conf */
	size_t n_upstream;
	__u32 ttl_min; /* learned addresses live TTL seconds, clamped to this ... */
	__u32 ttl_max; /* ... and this */
	__u32 max_addresses; /* live learned addresses per name */
};

/* `inbound:` (docs/policy.md, "Inbound"): who may connect in or send first. */
enum inbound_mode {
	INBOUND_DEFAULT = 0, /* section absent: loopback peers only */
	INBOUND_ANY = 1, /* `inbound: any` */
	INBOUND_RULES = 2, /* a list of rules (possibly empty: nobody) */
};

/*
 * One pattern of the unix: section (docs/policy.md, "Unix sockets"): a
 * socket path ("/run/nscd/socket"), a prefix ("/run/containerd/" then "*"), an
 * abstract name ("@name", "@prefix*"). Stored as written.
 */
struct policy_unix_rule {
	char *pattern;
	bool deny;
	unsigned int line, col, file;
};

enum unix_builtin {
	UNIX_BUILTIN_UNSET = 0, /* on, unless an included file says off */
	UNIX_BUILTIN_ON = 1,
	UNIX_BUILTIN_OFF = 2,
};

struct policy {
	char *source; /* file name, or POLICY_BUILTIN_NAME */
	char *name; /* `name:`, or NULL */
	enum policy_mode mode;
	bool loopback_allow; /* `loopback: allow` (the default is allow) */
	bool ping_allow; /* `ping: allow`: ping sockets may be made (default deny) */
	struct policy_rule *allow;
	size_t n_allow;
	struct policy_rule *deny;
	size_t n_deny;
	enum inbound_mode inbound_mode;
	struct policy_rule *inbound; /* INBOUND_RULES: peers (cidr/ip only), LOCAL ports */
	size_t n_inbound;
	struct policy_rule *args; /* --allow rules, in command-line order */
	size_t n_args;
	struct policy_dns dns;
	struct policy_unix_rule *unix_rules; /* unix: deny then allow, as written */
	size_t n_unix;
	enum unix_builtin unix_builtin; /* unix: builtin: */
	struct policy_include *includes; /* as written in this file */
	size_t n_includes;
	struct policy_at set_at[SET_N];
	/* The included files, in the order read: rule.file - 1 indexes them. */
	char **files;
	size_t n_files;
	/* SHA-256 of the bytes of every file of the tree, in the order read
	 * (the file itself first): for a policy without includes, its bytes'. */
	unsigned char sha256[32];
};

/*
 * Parse and validate, with the files it includes (user/policy/include.c).
 * On error return a negative errno (-EINVAL for a bad policy, -ENOENT etc.
 * for I/O) and fill err with one line "FILE:LINE:COL: what is wrong" (no
 * trailing newline).
 */
int policy_load_file(const char *path, struct policy **out, char err[POLICY_ERR_LEN]);
int policy_load_buffer(const char *source, const char *buf, size_t len, struct policy **out,
		       char err[POLICY_ERR_LEN]);
/* Reads an included file PATH (as the tree names it) like policy_read_file(). */
typedef int (*policy_read_fn)(void *ctx, const char *path, char **bufp, size_t *lenp,
			      char err[POLICY_ERR_LEN]);
/* policy_load_buffer() reading the included files with READ (NULL:
 * policy_read_file), for a caller with rules of its own about files. SHA
 * (may be NULL) gets the hash of all the bytes read, also on failure: the
 * daemon tells a changed tree from an unchanged one by it. */
int policy_load_tree(const char *source, const char *buf, size_t len, policy_read_fn read,
		     void *ctx, unsigned char sha[32], struct policy **out,
		     char err[POLICY_ERR_LEN]);
/* One file alone: its include: entries are listed, not read. */
int policy_load_one(const char *source, const char *buf, size_t len, struct policy **out,
		    char err[POLICY_ERR_LEN]);
/* "agent.yaml", "preset:npm": the file rule R was written in. */
const char *policy_rule_file(const struct policy *p, const struct policy_rule *r);
/* "agent.yaml:12", "preset:npm:7" for a rule id, or "" when the rule is in
 * no file (--allow, loopback, default, ...). */
void policy_rule_origin(const struct policy *p, __u32 rule_id, char *buf, size_t len);
/* Read all of PATH into a malloc'd buffer, refusing more than the size cap
 * (the bytes policy_load_buffer() then parses: weir run hashes them). */
int policy_read_file(const char *path, char **bufp, size_t *lenp, char err[POLICY_ERR_LEN]);
/* The same from an open FD (closed here); PATH names it in errors. */
int policy_read_fd(int fd, const char *path, char **bufp, size_t *lenp,
		   char err[POLICY_ERR_LEN]);
/* The built-in policy/agent-default.yaml. */
int policy_load_builtin(struct policy **out, char err[POLICY_ERR_LEN]);
void policy_free(struct policy *p);

/*
 * Append one --allow RULE: NAME[:PORT], IP[:PORT], CIDR[:PORT], [IPv6]:PORT
 * or a bare IPv6 address/CIDR. PORT is N or N-M; protocol is any.
 * Error text: "--allow 'RULE': what is wrong".
 */
int policy_add_arg(struct policy *p, const char *rule, char err[POLICY_ERR_LEN]);

/* "allow[3]", "deny[0]", "--allow[1]" ... for a rule id (WEIR_RULE_ID). */
void policy_rule_name(__u32 rule_id, char *buf, size_t len);
/* Human summary for `weir policy check`: name, mode, loopback, each rule. */
void policy_print_summary(FILE *f, const struct policy *p);
/* One line per rule that cannot be enforced as fully as it reads (a
 * wildcard deny cannot deny addresses); returns how many it printed. */
int policy_print_warnings(FILE *f, const struct policy *p);

/* Building blocks, exposed for --allow and the unit tests. */
int parse_cidr(const char *s, struct policy_rule *r, char *err, size_t errlen);
/* `ip: ADDR`: a full-length prefix (IPv4-mapped addresses become IPv4). */
int parse_ip(const char *s, struct policy_rule *r, char *err, size_t errlen);
int parse_port_range(const char *s, struct port_range *pr, char *err, size_t errlen);
/* A byte count with a unit: "50MiB", "1 GB", "4096B" (B, KB/MB/GB are
 * powers of 1000, KiB/MiB/GiB of 1024); more than 0, below 2^62. */
int parse_size(const char *s, __u64 *out, char *err, size_t errlen);
/* A hash of what a rule names (kind and domain, prefix or list file; not
 * ports or budget): an upload budget follows its rule across a reload by it. */
__u64 policy_rule_ident(const struct policy_rule *r);
int domain_parse(const char *s, struct policy_rule *r, char *err, size_t errlen);
/*
 * Common slips in the value of KEY (domain, cidr, ip; NULL for --allow): a
 * URL ("https://web.test/x"), a port inside the value ("github.com:443"),
 * a path ("web.test/x"). -EINVAL with what to write instead, else 0.
 */
int rule_check_slip(const char *key, const char *s, char *err, size_t errlen);
/* Does NAME (any case, optional trailing dot) match pattern DOMAIN/MATCH? */
bool domain_match(const char *domain, enum name_match match, const char *name);

#endif /* WEIR_POLICY_H */
