// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2: the small BTF (user/kernel/corebtf.c) relocates every program as
 * libbpf does from the kernel's whole BTF; the load split over two copies
 * of the object attaches every program, on one set of maps. The object is loaded twice on
 * this kernel, once each way, with the programs weir would load here, and
 * every program's instructions after the load (CO-RE relocated, the
 * kfunc's call given its id) must be the same but for the maps' fds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <criterion/criterion.h>

#include "corebtf.h"
#include "harness.h"
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

/*
 * The load split over two copies of the object (egress.c split_load): each
 * program weir attaches is on the run's cgroup under its own name, those
 * the second copy loaded included (egress, ingress, sendmsg6, the unix
 * sendmsg hook where the kernel has it), and all share one set of maps.
 */
static const char *prog_on(int cgfd, enum bpf_attach_type type, char *name, size_t len)
{
	__u32 ids[8], n = 8;
	struct bpf_prog_info info = {};
	__u32 ilen = sizeof(info);
	int fd;

	if (bpf_prog_query(cgfd, type, 0, NULL, ids, &n) || n != 1)
		return NULL;
	fd = bpf_prog_get_fd_by_id(ids[0]);
	if (fd < 0)
		return NULL;
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		close(fd);
		return NULL;
	}
	close(fd);
	snprintf(name, len, "%s", info.name);
	return name;
}

static __u32 map_ids_of(int cgfd, enum bpf_attach_type type, __u32 *ids, __u32 cap)
{
	struct bpf_prog_info info = {};
	__u32 pids[8], n = 8, ilen = sizeof(info);
	int fd;

	if (bpf_prog_query(cgfd, type, 0, NULL, pids, &n) || n != 1)
		return 0;
	fd = bpf_prog_get_fd_by_id(pids[0]);
	if (fd < 0)
		return 0;
	info.nr_map_ids = cap;
	info.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		info.nr_map_ids = 0;
	close(fd);
	return info.nr_map_ids < cap ? info.nr_map_ids : cap;
}

static struct harness lh;

static void load_setup(void)
{
	h_netns();
}

static void load_teardown(void)
{
	h_stop(&lh);
}

Test(corebtf, split_load_attached, .init = load_setup, .fini = load_teardown, .timeout = 60)
{
	static const struct {
		enum bpf_attach_type type;
		const char *name;
	} want[] = {
		{ BPF_CGROUP_INET4_CONNECT, "weir_connect4" },
		{ BPF_CGROUP_INET6_CONNECT, "weir_connect6" },
		{ BPF_CGROUP_UDP4_SENDMSG, "weir_sendmsg4" },
		{ BPF_CGROUP_UDP6_SENDMSG, "weir_sendmsg6" },
		{ BPF_CGROUP_INET_EGRESS, "weir_egress" },
		{ BPF_CGROUP_INET_INGRESS, "weir_ingress" },
		{ BPF_CGROUP_INET_SOCK_CREATE, "weir_sock_creat" }, /* BPF_OBJ_NAME_LEN */
		{ BPF_CGROUP_SETSOCKOPT, "weir_setsockopt" },
	};
	__u32 a[64], b[64], na, nb, i, j;
	struct weir_features f;
	char name[BPF_OBJ_NAME_LEN];

	h_start(&lh, "version: 1\nallow:\n  - ip: 192.0.2.1\n", NULL);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_not_null(prog_on(lh.cgfd, want[i].type, name, sizeof(name)),
				   "attach type %d: none", want[i].type);
		cr_assert_str_eq(name, want[i].name);
	}
	cr_assert_eq(features_probe(&f), 0);
	if (f.unix_hooks) {
		cr_assert_not_null(prog_on(lh.cgfd, WEIR_ATTACH_UNIX_SENDMSG, name, sizeof(name)));
		cr_assert_str_eq(name, "weir_unix_send");
	}
	/* One set of maps: every map of the backstop is one of connect4's
	 * (by id), not a copy of its own. */
	na = map_ids_of(lh.cgfd, BPF_CGROUP_INET4_CONNECT, a, 64);
	nb = map_ids_of(lh.cgfd, BPF_CGROUP_INET_EGRESS, b, 64);
	cr_assert_gt(nb, 3);
	for (i = 0; i < nb; i++) {
		for (j = 0; j < na && a[j] != b[i]; j++)
			;
		if (j == na) {
			struct bpf_map_info mi = {};
			__u32 ml = sizeof(mi);
			int fd = bpf_map_get_fd_by_id(b[i]);

			cr_assert_geq(fd, 0);
			cr_assert_eq(bpf_obj_get_info_by_fd(fd, &mi, &ml), 0);
			close(fd);
			/* maps connect4 never uses are fine; a second weir_events
			 * or weir_socks would not be */
			cr_assert(strcmp(mi.name, "weir_events") && strcmp(mi.name, "weir_socks") &&
					  strcmp(mi.name, "weir_attach") && strcmp(mi.name, "weir_stats"),
				  "the backstop has its own %s", mi.name);
		}
	}
}
