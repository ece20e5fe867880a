/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel's verdict, in userspace: a policy compiled by
 * user/policy/compile.c as weir run compiles it, judged by weir_judge()
 * of bpf/verdict.bpf.h itself (the same source, built against a small
 * shim that stands in for the BPF maps). For weir policy verify and
 * suggest: no root, no BPF.
 */
#ifndef WEIR_JUDGE_H
#define WEIR_JUDGE_H

#include <stdbool.h>
#include <linux/types.h>

#include "compile.h"
#include "policy.h"

struct matcher;

/* The judgement of one recorded destination. */
struct judgement {
	__u32 rule; /* WEIR_RULE_ID of the deciding rule, 0 if none */
	__u8 verdict; /* WEIR_V_ALLOW or WEIR_V_DENY: enforce mode, whatever P's mode */
	__u8 reason; /* enum weir_reason */
};

/* Compile P (owned by the matcher from here on, even on error). */
int matcher_new(struct policy *p, struct matcher **out, char err[COMPILE_ERR_LEN]);
void matcher_free(struct matcher *m);
const struct policy *matcher_policy(const struct matcher *m);

/*
 * A connection to ADDR (family AF_INET or AF_INET6, IPv4 in addr[0..3];
 * IPv4-mapped and unspecified addresses are judged as the kernel judges
 * them) port PORT, IPPROTO_* PROTOCOL. DOMAIN (may be NULL) is the name the
 * address came from: when the policy allows that name, the address counts
 * as learned from weir's resolver, as it would be at run time.
 */
void judge_conn(const struct matcher *m, int family, const __u8 addr[16], __u16 port,
		__u16 protocol, const char *domain, struct judgement *j);
/* A DNS query for NAME, as weir's resolver judges it. */
void judge_name(const struct matcher *m, const char *name, struct judgement *j);

#endif /* WEIR_JUDGE_H */
