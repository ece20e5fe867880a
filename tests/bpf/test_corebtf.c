// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2: the small BTF (user/kernel/corebtf.c) relocates every program as
 * libbpf does from the kernel's whole BTF. The object is loaded twice on
 * this kernel, once each way, with the programs weir would load here, and
 * every program's instructions after the load (CO-RE relocated, the
 * kfunc's call given its id) must be the same but for the maps' fds.
 */
#include <errno.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <criterion/criterion.h>

#include "corebtf.h"
#include "egress.h"
#include "egress.skel.h"
#include "kfeatures.h"
#include <weir/unix.h>

static bool lsm_section(const char *sec)
{
	return !strncmp(sec, "lsm/", 4);
}

/* The object opened and loaded; SMALL: through the small BTF. */
static struct egress_bpf *load(bool small, struct core_btf *cb)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct weir_features f;
	struct egress_bpf *skel;
	struct bpf_program *p;
	const void *obj;
	size_t sz;
	int err;

	cr_assert_eq(features_probe(&f), 0, "features_probe");
	obj = egress_bpf__elf_bytes(&sz);
	err = core_btf_prepare(cb, obj, sz, small, lsm_section);
	if (small) {
		cr_assert_eq(err, 0, "core_btf_prepare: %s", strerror(-err));
		cr_assert_geq(cb->fd, 0);
		cr_assert_gt(cb->relos, 0);
		oo.btf_custom_path = cb->path;
	}
	skel = egress_bpf__open_opts(&oo);
	cr_assert_not_null(skel, "open");
	bpf_object__for_each_program(p, skel->obj) {
		const char *sec = bpf_program__section_name(p);

		if (lsm_section(sec) ||
		    (!f.unix_hooks && (p == skel->progs.weir_unix_conn ||
				       p == skel->progs.weir_unix_send)) ||
		    (!f.recvmsg_hooks && strstr(sec, "recvmsg")) ||
		    (!f.getpeername_hooks && strstr(sec, "getpeername")) ||
		    (!f.sock_release && (!strcmp(sec, "sockops") || strstr(sec, "sock_release"))))
			bpf_program__set_autoload(p, false);
	}
	bpf_program__set_expected_attach_type(skel->progs.weir_unix_conn,
					      WEIR_ATTACH_UNIX_CONNECT);
	bpf_program__set_expected_attach_type(skel->progs.weir_unix_send,
					      WEIR_ATTACH_UNIX_SENDMSG);
	bpf_object__for_each_program(p, skel->obj)
		if (bpf_program__autoload(p))
			cr_assert_eq(core_btf_patch_calls(cb, p), 0, "%s: kfunc",
				     bpf_program__name(p));
	err = egress_bpf__load(skel);
	cr_assert_eq(err, 0, "load (%s BTF): %s", small ? "small" : "whole", strerror(-err));
	core_btf_release(cb);
	return skel;
}

static bool map_ref(const struct bpf_insn *i)
{
	return i->code == (BPF_LD | BPF_IMM | BPF_DW) &&
	       (i->src_reg == BPF_PSEUDO_MAP_FD || i->src_reg == BPF_PSEUDO_MAP_VALUE ||
		i->src_reg == BPF_PSEUDO_MAP_IDX || i->src_reg == BPF_PSEUDO_MAP_IDX_VALUE);
}

Test(corebtf, same_instructions, .timeout = 60)
{
	struct core_btf small_cb, whole_cb;
	struct egress_bpf *small = load(true, &small_cb), *whole = load(false, &whole_cb);
	struct bpf_program *ps, *pw;
	size_t n, i, progs = 0;

	cr_assert_gt(small_cb.types, 0);
	pw = bpf_object__next_program(whole->obj, NULL);
	bpf_object__for_each_program(ps, small->obj) {
		const struct bpf_insn *a = bpf_program__insns(ps), *b;

		cr_assert_not_null(pw);
		cr_assert_str_eq(bpf_program__name(ps), bpf_program__name(pw));
		b = bpf_program__insns(pw);
		n = bpf_program__insn_cnt(ps);
		if (bpf_program__autoload(ps)) {
			cr_assert_eq(n, bpf_program__insn_cnt(pw), "%s: count",
				     bpf_program__name(ps));
			for (i = 0; i < n; i++) {
				if (map_ref(&a[i]) && i + 1 < n) {
					/* the maps' fds: each object has its own */
					cr_assert_eq(a[i].src_reg, b[i].src_reg);
					cr_assert_eq(a[i + 1].imm, b[i + 1].imm);
					i++;
					continue;
				}
				cr_assert_eq(memcmp(&a[i], &b[i], sizeof(a[i])), 0,
					     "%s: instruction %zu differs", bpf_program__name(ps), i);
			}
			progs++;
		}
		pw = bpf_object__next_program(whole->obj, pw);
	}
	cr_assert_geq(progs, 10, "programs compared: %zu", progs);
	egress_bpf__destroy(small);
	egress_bpf__destroy(whole);
}

/* No kfunc call left for the verifier to refuse: every loaded program that
 * had the placeholder has the kfunc's call, and nothing else was touched. */
Test(corebtf, kfunc_patched, .timeout = 60)
{
	struct weir_features f;
	struct core_btf cb;
	struct egress_bpf *skel;
	const struct bpf_insn *in;
	size_t n, i, calls = 0;

	cr_assert_eq(features_probe(&f), 0);
	if (!f.unix_hooks)
		cr_skip_test("no unix hooks on this kernel (6.7+)");
	skel = load(true, &cb);
	cr_assert_gt(cb.kern_ctx_id, 0);
	in = bpf_program__insns(skel->progs.weir_unix_conn);
	n = bpf_program__insn_cnt(skel->progs.weir_unix_conn);
	for (i = 0; i < n; i++) {
		cr_assert_neq(in[i].imm, WEIR_CALL_KERN_CTX, "placeholder left at %zu", i);
		if (in[i].code == (BPF_JMP | BPF_CALL) && in[i].src_reg == BPF_PSEUDO_KFUNC_CALL) {
			cr_assert_eq(in[i].imm, cb.kern_ctx_id);
			calls++;
		}
	}
	cr_assert_eq(calls, 1, "kfunc calls: %zu", calls);
	egress_bpf__destroy(skel);
}
