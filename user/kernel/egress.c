// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stddef.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "egress.h"
#include "egress.skel.h"
#include "log.h"

#define NPROGS 11
#define HANDLE 0 /* weir run: one cgroup, one handle */

/* The policy in force: what to delete once the next one is in place. */
struct generation {
	bool live;
	__u32 slot;
	struct compiled c;
	__u32 *sets; /* local set index - 1 -> weir_portsets index */
};

struct egress {
	struct egress_bpf *skel;
	struct bpf_link *links[NPROGS];
	__u8 *slot_used, *set_used;
	__u32 nslots, nsets;
	__u32 policy_gen; /* weir_slot.gen of the latest policy written */
	struct generation gen;
};

int egress_task_info(void)
{
	static int cached = -1;

	if (cached >= 0)
		return cached;
	if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_pid_tgid,
				    NULL) > 0 &&
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_comm,
				    NULL) > 0 &&
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_cgroup_id,
				    NULL) > 0)
		cached = WEIR_TASK_HELPERS;
	else if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_current_task,
					 NULL) > 0)
		cached = WEIR_TASK_CORE;
	else
		cached = WEIR_TASK_NONE;
	return cached;
}

int egress_supported(char *why, size_t len)
{
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL) <= 0) {
		snprintf(why, len, "this kernel lacks cgroup/sock_addr BPF programs "
				   "(CONFIG_CGROUP_BPF; Linux 4.17+)");
		return -EOPNOTSUPP;
	}
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) <= 0) {
		snprintf(why, len, "this kernel lacks BPF ring buffers (Linux 5.8+)");
		return -EOPNOTSUPP;
	}
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, NULL) <= 0) {
		snprintf(why, len, "this kernel lacks BPF LPM tries");
		return -EOPNOTSUPP;
	}
	if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_ktime_get_boot_ns,
				    NULL) <= 0) {
		snprintf(why, len, "this kernel lacks bpf_ktime_get_boot_ns (Linux 5.8+)");
		return -EOPNOTSUPP;
	}
	return 0;
}

static int size_maps(struct egress_bpf *skel, const struct egress_opts *o)
{
	int err;

	err = bpf_map__set_max_entries(skel->maps.weir_lpm4, o->lpm_entries);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_lpm6, o->lpm_entries);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_portsets, o->portsets);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_slots, o->slots);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_handles, 1);
	if (!o->dns_port) { /* no resolver: keep the DNS maps tiny */
		err = err ?: bpf_map__set_max_entries(skel->maps.weir_learn, 1);
		err = err ?: bpf_map__set_max_entries(skel->maps.weir_askers, 1);
	}
	return err ?: bpf_map__set_max_entries(skel->maps.weir_events, o->ringbuf_bytes);
}

/* Does this kernel know the attach type? (getpeername hooks are 5.8+) */
static bool attach_type_supported(enum bpf_attach_type type)
{
	/* r0 = 1; exit */
	static const struct bpf_insn ret1[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = type);
	int fd;

	fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL, "Dual BSD/GPL", ret1, 2, &o);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* The DNS hooks only when there is a resolver, and only those the kernel has. */
static void choose_programs(struct egress_bpf *skel, bool dns)
{
	static const struct {
		size_t off;
		enum bpf_attach_type type;
		const char *what;
	} dns_progs[] = {
		{ offsetof(struct egress_bpf, progs.weir_recvmsg4), BPF_CGROUP_UDP4_RECVMSG,
		  "recvmsg4" },
		{ offsetof(struct egress_bpf, progs.weir_recvmsg6), BPF_CGROUP_UDP6_RECVMSG,
		  "recvmsg6" },
		{ offsetof(struct egress_bpf, progs.weir_getpeer4), BPF_CGROUP_INET4_GETPEERNAME,
		  "getpeername4" },
		{ offsetof(struct egress_bpf, progs.weir_getpeer6), BPF_CGROUP_INET6_GETPEERNAME,
		  "getpeername6" },
	};
	size_t i;

	for (i = 0; i < sizeof(dns_progs) / sizeof(dns_progs[0]); i++) {
		struct bpf_program *p = *(struct bpf_program **)((char *)skel + dns_progs[i].off);
		bool ok = dns && attach_type_supported(dns_progs[i].type);

		if (dns && !ok)
			pr_warn("this kernel lacks cgroup/%s: programs will see weir's resolver "
				"address there instead of the server they asked\n",
				dns_progs[i].what);
		bpf_program__set_autoload(p, ok);
	}
}

int egress_open(const struct egress_opts *opts, struct egress **out)
{
	struct egress *e;
	int err;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->nslots = opts->slots;
	e->nsets = opts->portsets;
	e->slot_used = calloc(e->nslots, 1);
	e->set_used = calloc(e->nsets, 1);
	if (!e->slot_used || !e->set_used) {
		err = -ENOMEM;
		goto fail;
	}
	/* Index 0 means "none" in both: never hand it out. */
	e->slot_used[0] = e->set_used[0] = 1;

	e->skel = egress_bpf__open();
	if (!e->skel) {
		err = -errno;
		pr_warn("cannot open the BPF object: %s\n", strerror(-err));
		goto fail;
	}
	err = size_maps(e->skel, opts);
	if (err)
		goto fail;
	e->skel->rodata->weir_cfg.handle = HANDLE;
	e->skel->rodata->weir_cfg.wakeup_bytes = opts->ringbuf_bytes / 4;
	e->skel->rodata->weir_cfg.task_info =
		opts->task_info >= 0 ? opts->task_info : egress_task_info();
	e->skel->rodata->weir_cfg.dns_port = opts->dns_port;
	e->skel->rodata->weir_cfg.dns_ip4 = opts->dns_ip4;
	memcpy(e->skel->rodata->weir_cfg.dns_ip6, opts->dns_ip6, sizeof(opts->dns_ip6));
	choose_programs(e->skel, opts->dns_port != 0);
	err = egress_bpf__load(e->skel);
	if (err) {
		pr_warn("cannot load the BPF programs: %s (run with -v for the verifier log)\n",
			strerror(-err));
		goto fail;
	}
	*out = e;
	return 0;
fail:
	egress_destroy(e);
	return err;
}

int egress_attach(struct egress *e, int cgroup_fd, const char *pin_dir)
{
	char path[4096];
	struct bpf_program *progs[NPROGS] = {
		e->skel->progs.weir_connect4,
		e->skel->progs.weir_connect6,
		e->skel->progs.weir_sendmsg4,
		e->skel->progs.weir_sendmsg6,
		e->skel->progs.weir_recvmsg4,
		e->skel->progs.weir_recvmsg6,
		e->skel->progs.weir_getpeer4,
		e->skel->progs.weir_getpeer6,
		e->skel->progs.weir_sock_create,
		e->skel->progs.weir_setsockopt,
		e->skel->progs.weir_egress,
	};
	int i, err;

	/* bpf_link attachments are always multi-attach: a program attached
	 * to a child cgroup adds to ours, it can never replace it. */
	for (i = 0; i < NPROGS; i++) {
		if (!bpf_program__autoload(progs[i]))
			continue;
		e->links[i] = bpf_program__attach_cgroup(progs[i], cgroup_fd);
		if (!e->links[i]) {
			err = -errno;
			pr_warn("cannot attach %s: %s\n", bpf_program__name(progs[i]),
				strerror(-err));
			return err;
		}
		if (!pin_dir)
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_program__name(progs[i]));
		err = bpf_link__pin(e->links[i], path);
		if (err) {
			pr_warn("cannot pin %s: %s\n", path, strerror(-err));
			return err;
		}
	}
	return 0;
}

void egress_unpin(struct egress *e)
{
	int i;

	for (i = 0; e && i < NPROGS; i++)
		if (e->links[i] && bpf_link__pin_path(e->links[i]))
			bpf_link__unpin(e->links[i]);
}

static int alloc_index(__u8 *used, __u32 n, __u32 *idx)
{
	__u32 i;

	for (i = 1; i < n; i++) {
		if (!used[i]) {
			used[i] = 1;
			*idx = i;
			return 0;
		}
	}
	return -ENOSPC;
}

static void make_key4(const struct centry *c, __u32 slot, struct weir_key4 *k)
{
	k->prefixlen = 32 + c->plen;
	k->slot = slot;
	memcpy(k->addr, c->addr, sizeof(k->addr));
}

static void make_key6(const struct centry *c, __u32 slot, struct weir_key6 *k)
{
	k->prefixlen = 32 + c->plen;
	k->slot = slot;
	memcpy(k->addr, c->addr, sizeof(k->addr));
}

static void map_sets(struct weir_lpm_val *v, const __u32 *sets)
{
	if (v->deny.set)
		v->deny.set = sets[v->deny.set - 1];
	if (v->allow.set)
		v->allow.set = sets[v->allow.set - 1];
}

#define BATCH 65536

/*
 * Write n entries: batch updates where the kernel has them for LPM tries
 * (one bpf() call per 64k entries instead of one per entry), else one by
 * one. key(i, buf) writes entry i's key.
 */
static int write_batch(int fd, size_t n, size_t ksize, const struct centry *ents, __u32 slot,
		       const __u32 *sets, void (*key)(const struct centry *, __u32, void *))
{
	static int have_batch = -1;
	struct weir_lpm_val *vals;
	size_t i, done, m;
	__u32 cnt;
	char *keys;
	int err = 0;

	keys = malloc(BATCH * ksize);
	vals = malloc(BATCH * sizeof(*vals));
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (done = 0; !err && done < n; done += m) {
		m = n - done < BATCH ? n - done : BATCH;
		for (i = 0; i < m; i++) {
			key(&ents[done + i], slot, keys + i * ksize);
			vals[i] = ents[done + i].val;
			map_sets(&vals[i], sets);
		}
		cnt = m;
		if (have_batch != 0 && !bpf_map_update_batch(fd, keys, vals, &cnt, NULL)) {
			have_batch = 1;
			continue;
		}
		if (have_batch == 1) {
			err = -errno;
			break;
		}
		have_batch = 0; /* no batch ops for this map type here */
		for (i = 0; !err && i < m; i++)
			if (bpf_map_update_elem(fd, keys + i * ksize, &vals[i], BPF_ANY))
				err = -errno;
	}
out:
	free(keys);
	free(vals);
	return err;
}

static void key4_of(const struct centry *c, __u32 slot, void *k)
{
	make_key4(c, slot, k);
}

static void key6_of(const struct centry *c, __u32 slot, void *k)
{
	make_key6(c, slot, k);
}

static int write_entries(struct egress *e, const struct generation *g)
{
	int err;

	err = write_batch(bpf_map__fd(e->skel->maps.weir_lpm4), g->c.n4, sizeof(struct weir_key4),
			  g->c.v4, g->slot, g->sets, key4_of);
	return err ?: write_batch(bpf_map__fd(e->skel->maps.weir_lpm6), g->c.n6,
				  sizeof(struct weir_key6), g->c.v6, g->slot, g->sets, key6_of);
}

static int write_sets(struct egress *e, struct generation *g)
{
	int fd = bpf_map__fd(e->skel->maps.weir_portsets);
	size_t i;
	int err;

	g->sets = calloc(g->c.nsets ? g->c.nsets : 1, sizeof(*g->sets));
	if (!g->sets)
		return -ENOMEM;
	for (i = 0; i < g->c.nsets; i++) {
		err = alloc_index(e->set_used, e->nsets, &g->sets[i]);
		if (err)
			return err;
		if (bpf_map_update_elem(fd, &g->sets[i], &g->c.sets[i], BPF_ANY))
			return -errno;
	}
	return 0;
}

/*
 * Delete a generation's entries, shortest prefixes first: a lookup racing
 * the deletion then finds either the old value or no match (deny), never a
 * wider prefix's allow that a longer prefix used to override.
 */
static void delete_entries(struct egress *e, const struct generation *g)
{
	int fd4 = bpf_map__fd(e->skel->maps.weir_lpm4);
	int fd6 = bpf_map__fd(e->skel->maps.weir_lpm6);
	struct weir_key4 k4;
	struct weir_key6 k6;
	size_t i;
	int plen;

	for (plen = 0; plen <= 128; plen++) {
		for (i = 0; plen <= 32 && i < g->c.n4; i++) {
			if (g->c.v4[i].plen != plen)
				continue;
			make_key4(&g->c.v4[i], g->slot, &k4);
			bpf_map_delete_elem(fd4, &k4);
		}
		for (i = 0; i < g->c.n6; i++) {
			if (g->c.v6[i].plen != plen)
				continue;
			make_key6(&g->c.v6[i], g->slot, &k6);
			bpf_map_delete_elem(fd6, &k6);
		}
	}
}

static void release_generation(struct egress *e, struct generation *g)
{
	struct weir_slot none = {};
	size_t i;

	if (g->slot) {
		bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_slots), &g->slot, &none,
				    BPF_ANY);
		delete_entries(e, g);
		e->slot_used[g->slot] = 0;
	}
	for (i = 0; g->sets && i < g->c.nsets; i++)
		if (g->sets[i])
			e->set_used[g->sets[i]] = 0;
	free(g->sets);
	compiled_free(&g->c);
	memset(g, 0, sizeof(*g));
}

static int copy_compiled(const struct compiled *src, struct compiled *dst)
{
	size_t n = src->n4 + src->n6;

	*dst = *src;
	dst->v4 = malloc((n ? n : 1) * sizeof(*dst->v4));
	dst->sets = malloc((src->nsets ? src->nsets : 1) * sizeof(*dst->sets));
	if (!dst->v4 || !dst->sets) {
		free(dst->v4);
		free(dst->sets);
		return -ENOMEM;
	}
	memcpy(dst->v4, src->v4, src->n4 * sizeof(*dst->v4));
	memcpy(dst->v4 + src->n4, src->v6, src->n6 * sizeof(*dst->v4));
	dst->v6 = dst->v4 + src->n4;
	memcpy(dst->sets, src->sets, src->nsets * sizeof(*dst->sets));
	return 0;
}

int egress_apply(struct egress *e, const struct compiled *c)
{
	struct generation g = {};
	struct weir_slot s = { .flags = WEIR_SF_LOADED | (c->audit ? WEIR_SF_AUDIT : 0) |
					(c->ping ? WEIR_SF_PING : 0),
			       .gen = ++e->policy_gen };
	__u32 handle = HANDLE;
	int err;

	err = copy_compiled(c, &g.c);
	if (err)
		return err;
	err = alloc_index(e->slot_used, e->nslots, &g.slot);
	err = err ?: write_sets(e, &g);
	err = err ?: write_entries(e, &g);
	if (!err && bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_slots), &g.slot, &s, 0))
		err = -errno;
	/* The flip: one 4-byte array store, seen whole by every program. */
	if (!err && bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_handles), &handle, &g.slot,
					BPF_ANY))
		err = -errno;
	if (err) {
		pr_warn("cannot write the policy into the BPF maps: %s%s\n", strerror(-err),
			err == -E2BIG || err == -ENOSPC ? " (policy too large for the maps)" : "");
		release_generation(e, &g);
		return err;
	}
	if (e->gen.live)
		release_generation(e, &e->gen);
	e->gen = g;
	e->gen.live = true;
	return 0;
}

int egress_learn_set(struct egress *e, struct weir_learn_key *k, const struct weir_learn_val *v)
{
	k->handle = HANDLE;
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_learn), k, v, BPF_ANY))
		return -errno;
	return 0;
}

int egress_learn_del(struct egress *e, struct weir_learn_key *k)
{
	k->handle = HANDLE;
	if (bpf_map_delete_elem(bpf_map__fd(e->skel->maps.weir_learn), k) && errno != ENOENT)
		return -errno;
	return 0;
}

int egress_asker(struct egress *e, __u64 cookie, struct weir_asker *out)
{
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.weir_askers), &cookie, out))
		return -errno;
	return 0;
}

int egress_events_fd(const struct egress *e)
{
	return bpf_map__fd(e->skel->maps.weir_events);
}

__u64 egress_stat(const struct egress *e, __u32 stat)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals, sum = 0;
	int i;

	if (ncpu <= 0)
		return 0;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return 0;
	if (!bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.weir_stats), &stat, vals))
		for (i = 0; i < ncpu; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

void egress_detach(struct egress *e)
{
	int i;

	for (i = 0; i < NPROGS; i++) {
		bpf_link__destroy(e->links[i]);
		e->links[i] = NULL;
	}
}

__u64 egress_map_bytes(const struct egress *e)
{
	struct bpf_map *m;
	char path[64], line[128];
	__u64 sum = 0, v;
	FILE *f;

	bpf_object__for_each_map(m, e->skel->obj) {
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", bpf_map__fd(m));
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "memlock: %llu", (unsigned long long *)&v) == 1)
				sum += v;
		fclose(f);
	}
	return sum;
}

void egress_destroy(struct egress *e)
{
	int i;

	if (!e)
		return;
	for (i = 0; i < NPROGS; i++)
		bpf_link__destroy(e->links[i]);
	if (e->gen.live) {
		free(e->gen.sets);
		compiled_free(&e->gen.c);
	}
	egress_bpf__destroy(e->skel);
	free(e->slot_used);
	free(e->set_used);
	free(e);
}
