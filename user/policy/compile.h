/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Compile a policy into the entries of the weir_lpm4/6 tries.
 *
 * Step 1 (compile_collect) lists every prefix constraint: the policy's CIDR
 * rules, the addresses its domain rules resolved to, and the built-in ones
 * (loopback, metadata). Step 2 (compile_flatten) merges
 * them so the value at each prefix already holds the constraints of every
 * prefix that covers it: the BPF side then needs one lookup.
 */
#ifndef WEIR_COMPILE_H
#define WEIR_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>
#include <weir/egress.h>

#include "policy.h"
#include "unixsock.h"

#define COMPILE_ERR_LEN 512

enum cside {
	SIDE_ALLOW = 0,
	SIDE_DENY = 1,
};

/*
 * One prefix constraint before flattening; or one for each entry of a
 * cidr_list (pfx set: the entries share the rule), or of a run of inline
 * rules with neither ports nor a budget, in a row (run set: entry i is
 * rule id rule + i). family, plen and addr are then the entry's.
 */
struct crule {
	__u8 family; /* AF_INET, AF_INET6 */
	__u8 plen;
	__u8 side; /* enum cside */
	__u8 protos; /* WEIR_P_* */
	__u8 flags; /* WEIR_RF_* */
	__u8 addr[16]; /* host bits zero */
	__u32 rule; /* WEIR_RULE_ID */
	const struct port_range *ports; /* n_ports == 0: every port */
	size_t n_ports;
	const struct list_prefix *pfx; /* NULL: this crule's own prefix */
	const struct policy_rule *run; /* NULL: not a run */
	size_t n_pfx; /* entries of pfx or run */
};

/* One trie entry after flattening. val.*.set are 1-based local indexes
 * into compiled.sets; the writer maps them to weir_portsets slots. */
struct centry {
	__u8 family;
	__u8 plen;
	__u8 addr[16];
	struct weir_lpm_val val;
};

/* An allow rule's upload budget (weir_budgets): its rule id, limit, and
 * what it names (policy_rule_ident()), for a reload to carry it over. */
struct cbudget {
	__u32 rule; /* WEIR_RULE_ID() */
	__u32 __pad;
	__u64 limit;
	__u64 ident;
};

struct compiled {
	struct centry *v4, *v6;
	size_t n4, n6;
	/* The inbound rules (written under slot | WEIR_SLOT_INBOUND); their
	 * port sets are in sets too. One allocation, in6 = in4 + nin4. */
	struct centry *in4, *in6;
	size_t nin4, nin6;
	struct weir_portset *sets;
	size_t nsets;
	struct cbudget *budgets;
	size_t nbudgets;
	bool audit;
	bool ping;
	struct cunix *usock; /* the unix: section and the built-in list (unixsock.h) */
	size_t nusock;
};

struct crules {
	struct crule *r;
	size_t n, cap;
};

/* An address a domain rule resolved to. */
struct resolved_addr {
	__u8 family;
	__u8 addr[16];
	__u32 ttl;
};

/* Addresses currently known for a domain rule (see user/dns/resolve.h). */
typedef size_t (*domain_addrs_fn)(void *ctx, __u32 rule_id, const struct resolved_addr **out);

struct compile_input {
	const struct policy *policy;
	domain_addrs_fn domain_addrs; /* may be NULL: domains resolve to nothing */
	void *domain_ctx;
};

int crules_add(struct crules *cr, const struct crule *r);
void crules_free(struct crules *cr);

int compile_collect(const struct compile_input *in, struct crules *out);
int compile_flatten(const struct crules *in, bool audit, struct compiled *out,
		    char err[COMPILE_ERR_LEN]);
/* collect + flatten */
int compile_policy(const struct compile_input *in, struct compiled *out, char err[COMPILE_ERR_LEN]);
void compiled_free(struct compiled *c);

/*
 * BPF map sizes for a compiled policy (struct egress_opts), so no policy is
 * too large for fixed maps. grow is how many host prefixes per family later
 * reloads may add (the addresses static names can resolve to). Room for
 * two generations: a reload writes the new policy before it deletes the
 * old. The tries allocate per entry (BPF_F_NO_PREALLOC), so their size is
 * only a cap; the port sets are an array, and each added prefix can make
 * at most two new sets (allow and deny side of its own value). -E2BIG with
 * err filled when a size does not fit the kernel's 32-bit max_entries.
 */
struct map_sizes {
	__u32 lpm_entries; /* per family */
	__u32 portsets; /* index 0 is never used */
};
int compile_map_sizes(const struct compiled *c, size_t grow, struct map_sizes *out,
		      char err[COMPILE_ERR_LEN]);

/*
 * For `weir policy check`: compile P as weir run would, but resolving no
 * name (domain rules add their addresses at run time), and print what it
 * takes of the maps on f. Catches what only compiling finds (too many port
 * ranges on one prefix). -E2BIG etc. with err filled.
 */
int compile_check(const struct policy *p, FILE *f, char err[COMPILE_ERR_LEN]);

/* The addresses denied in every mode unless an allow rule names them. */
extern const struct resolved_addr compile_metadata_addrs[];
extern const size_t compile_n_metadata_addrs;

/* May an address a name resolved to be allowed (no rebinding to loopback
 * when it is denied, never the unspecified address)? */
bool compile_name_addr_ok(const struct policy *p, const struct resolved_addr *a);

/* nameserver lines of a resolv.conf; missing file -> 0 entries. */
int read_nameservers(const char *path, struct resolved_addr **out, size_t *n);

#endif /* WEIR_COMPILE_H */
