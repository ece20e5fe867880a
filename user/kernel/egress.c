// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <linux/bpf.h>

#include "corebtf.h"
#include "egress.h"
#include "egress.skel.h"
#include "kfeatures.h"
#include "unixsock.h"
#include "log.h"
#include "ranges.h"
#include <weir/flows.h>

#define NPROGS 16

/* The policy in force: what to delete once the next one is in place. */
struct generation {
	bool live;
	bool found; /* found in reused maps: no compiled copy, its entries are looked up */
	bool ranges4; /* its IPv4 entries are in weir_ranges4[slot], not the trie */
	__u32 slot;
	struct compiled c;
	__u32 *sets; /* local set index - 1 -> weir_portsets index */
};

/* One handle: one enforced cgroup. */
struct handle {
	bool used;
	__u64 cgroup_id; /* 0: not attached */
	struct bpf_link *links[NPROGS];
	char *pin_dir;
	struct generation gen;
};

/* The BPF LSM programs (bpf/lsm.bpf.h), attached once per load: sockets
 * made outside (socket_connect, socket_sendmsg), then the unix peer's
 * bound path (unix_stream_connect, unix_may_send), then the socket
 * families no cgroup hook sees (socket_create). */
#define NLSM 5
static const char *const lsm_names[NLSM] = {
	"weir_lsm_conn", "weir_lsm_send", "weir_lsm_ustream", "weir_lsm_udgram", "weir_lsm_create",
};

struct egress {
	struct egress_bpf *skel;
	struct handle *h;
	__u32 nhandles;
	__u8 *slot_used, *set_used;
	__u32 nslots, nsets;
	__u32 policy_gen; /* weir_slot.gen of the latest policy written */
	__u32 one; /* the one-handle calls' handle; 0 until they need one */
	struct egress_attach_cfg one_cfg;
	char *map_dir; /* PIN_ROOT/maps, or NULL */
	bool reused; /* the maps were pinned there already */
	struct bpf_link *lsm[NLSM]; /* lsm_progs' links (BPF LSM), or NULL */
	struct bpf_link *keys[NPROGS]; /* egress_hold_keys(), never pinned */
	struct core_btf core; /* until the load: the small BTF, the kfunc's id */
	struct egress_bpf *half; /* the programs loaded beside skel's (split_load), or NULL */
};

static int task_info_of(enum bpf_prog_type type, enum bpf_attach_type attach)
{
	if (features_helper_ok(type, attach, BPF_FUNC_get_current_pid_tgid) &&
	    features_helper_ok(type, attach, BPF_FUNC_get_current_comm) &&
	    features_helper_ok(type, attach, BPF_FUNC_get_current_cgroup_id) &&
	    features_helper_ok(type, attach, BPF_FUNC_get_current_uid_gid))
		return WEIR_TASK_HELPERS;
	if (features_helper_ok(type, attach, BPF_FUNC_get_current_task))
		return WEIR_TASK_CORE;
	return WEIR_TASK_NONE;
}

int egress_task_info(void)
{
	static int cached = -1;

	if (cached < 0)
		cached = task_info_of(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT);
	return cached;
}

/* The same for the cgroup_skb programs: 6.1 gives them none of
 * bpf_get_current_{pid_tgid,comm,cgroup_id,uid_gid}, 6.12 all but comm,
 * 6.18 all four. */
static int egress_skb_task_info(void)
{
	static int cached = -1;

	if (cached < 0)
		cached = task_info_of(BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS);
	return cached;
}

/* The helpers an OUTER attachment reads a process's cgroup ancestors with,
 * in each program type that defers (WEIR_AF_OUTER). */
bool egress_nesting_supported(void)
{
	static int cached = -1;

	if (cached < 0)
		cached = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						 BPF_FUNC_get_current_ancestor_cgroup_id, NULL) > 0 &&
			 libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK,
						 BPF_FUNC_get_current_ancestor_cgroup_id, NULL) > 0 &&
			 libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB,
						 BPF_FUNC_skb_ancestor_cgroup_id, NULL) > 0;
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
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_ranges4, o->slots);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_handles, o->handles);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_cgids, o->handles);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_counts, o->handles);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_inflows, o->inflows ?: 16384);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_budgets, o->budgets ?: 1024);
	if (!o->dns_port && o->handles <= 2) { /* weir run with no resolver: tiny DNS maps */
		err = err ?: bpf_map__set_max_entries(skel->maps.weir_learn, 1);
		err = err ?: bpf_map__set_max_entries(skel->maps.weir_askers, 1);
	}
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_unix, o->slots * UNIX_PER_POLICY);
	err = err ?: bpf_map__set_max_entries(skel->maps.weir_enforced, o->handles);
	return err ?: bpf_map__set_max_entries(skel->maps.weir_events, o->ringbuf_bytes);
}

/*
 * The programs that need a kernel feature newer than the oldest kernel weir
 * runs on (Debian 12's 6.1; docs/kernels.md): each loads only where
 * kfeatures.c found its feature, else it is skipped, never left to fail in
 * the verifier. A program added for a new feature adds a row.
 */
enum opt_say {
	OPT_SAY_DNS, /* warn if this load has a resolver to hide */
	OPT_SAY_ALWAYS, /* warn on every load */
	OPT_SAY_DEBUG, /* -v only */
};

#define OPT(prog, feat) offsetof(struct egress_bpf, progs.prog), offsetof(struct weir_features, feat)
static const struct optional_prog {
	size_t prog, feature;
	enum opt_say say;
	const char *lost; /* what this load does without it */
} optional_progs[] = {
	{ OPT(weir_recvmsg4, recvmsg_hooks), OPT_SAY_DNS,
	  "programs will see weir's resolver address in recvmsg4 instead of the server they asked" },
	{ OPT(weir_recvmsg6, recvmsg_hooks), OPT_SAY_DNS,
	  "programs will see weir's resolver address in recvmsg6 instead of the server they asked" },
	{ OPT(weir_getpeer4, getpeername_hooks), OPT_SAY_DNS,
	  "programs will see weir's resolver address in getpeername4 instead of the server they asked" },
	{ OPT(weir_getpeer6, getpeername_hooks), OPT_SAY_DNS,
	  "programs will see weir's resolver address in getpeername6 instead of the server they asked" },
	/* Close events (bpf/flows.bpf.h) need both TCP's end (sockops, 4.13)
	 * and UDP's (sock_release, 5.9). Without them connections are still
	 * judged and budgets kept; they just end unreported. */
	{ OPT(weir_sockops, sock_release), OPT_SAY_DEBUG, "no close events" },
	{ OPT(weir_sock_release, sock_release), OPT_SAY_DEBUG, "no close events" },
	/* The policy's unix: section (bpf/unix.bpf.h, Linux 6.7+). */
	{ OPT(weir_unix_conn, unix_hooks), OPT_SAY_DEBUG,
	  "unix: paths as typed are not judged (cgroup/connect_unix: Linux 6.7+)" },
	{ OPT(weir_unix_send, unix_hooks), OPT_SAY_DEBUG,
	  "unix: paths as typed are not judged (cgroup/sendmsg_unix: Linux 6.7+)" },
	/* Sockets made outside (bpf/lsm.bpf.h): attached once, not per cgroup. */
	{ OPT(weir_lsm_conn, bpf_lsm), OPT_SAY_DEBUG,
	  "sockets made outside the cgroup are not refused (BPF LSM: lsm=...,bpf)" },
	{ OPT(weir_lsm_send, bpf_lsm), OPT_SAY_DEBUG,
	  "sockets made outside the cgroup are not refused (BPF LSM: lsm=...,bpf)" },
	{ OPT(weir_lsm_ustream, bpf_lsm), OPT_SAY_DEBUG,
	  "unix sockets are judged by the path typed only, not the socket reached (BPF LSM)" },
	{ OPT(weir_lsm_udgram, bpf_lsm), OPT_SAY_DEBUG,
	  "unix sockets are judged by the path typed only, not the socket reached (BPF LSM)" },
	{ OPT(weir_lsm_create, bpf_lsm), OPT_SAY_DEBUG,
	  "packet and vsock sockets are refused by weir run's seccomp filter only (BPF LSM)" },
};
#undef OPT

static bool feature_on(const struct weir_features *f, size_t off)
{
	return *(const bool *)((const char *)f + off);
}

/* Every program, the optional ones only where the kernel has their feature. */
static void choose_programs(struct egress_bpf *skel, bool dns)
{
	struct weir_features f;
	size_t i;

	if (features_probe(&f))
		memset(&f, 0, sizeof(f));
	for (i = 0; i < sizeof(optional_progs) / sizeof(optional_progs[0]); i++) {
		const struct optional_prog *o = &optional_progs[i];
		struct bpf_program *p = *(struct bpf_program **)((char *)skel + o->prog);
		bool ok = feature_on(&f, o->feature);

		if (!ok && (o->say == OPT_SAY_ALWAYS || (o->say == OPT_SAY_DNS && dns)))
			pr_warn("kernel %s lacks what %s needs: %s\n", f.release,
				bpf_program__name(p), o->lost);
		else if (!ok)
			pr_debug("kernel %s: %s skipped: %s\n", f.release, bpf_program__name(p),
				 o->lost);
		bpf_program__set_autoload(p, ok);
	}
}

/*
 * The unix socket hooks (Linux 6.7+): libbpf 1.1 knows no section for
 * them, so the programs are typed connect4/sendmsg4 in the object and get
 * their attach types here (loaded or not: optional_progs decides).
 */
static void set_unix_attach_types(struct egress_bpf *skel)
{
	bpf_program__set_expected_attach_type(skel->progs.weir_unix_conn,
					      WEIR_ATTACH_UNIX_CONNECT);
	bpf_program__set_expected_attach_type(skel->progs.weir_unix_send,
					      WEIR_ATTACH_UNIX_SENDMSG);
}

/*
 * -vv: the verifier's statistics of each program (BPF_LOG_STATS: its time,
 * instructions processed, states), which libbpf prints after the load.
 * Where start-up time goes (docs/performance.md); no cost otherwise.
 */
static void verifier_stats(struct egress_bpf *skel)
{
	struct bpf_program *p;

	if (log_get_level() < LOG_LEVEL_TRACE)
		return;
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_log_level(p, 4); /* BPF_LOG_STATS */
}

/* The BPF LSM active (bpf among the LSMs, and an LSM program loads). */
bool egress_lsm_supported(void)
{
	struct weir_features f;

	return !features_probe(&f) && f.bpf_lsm;
}

bool egress_unix_supported(void)
{
	struct weir_features f;

	return !features_probe(&f) && f.unix_hooks;
}

static struct bpf_program *lsm_prog(struct egress *e, int i)
{
	struct bpf_program *p[NLSM] = { e->skel->progs.weir_lsm_conn, e->skel->progs.weir_lsm_send,
					e->skel->progs.weir_lsm_ustream,
					e->skel->progs.weir_lsm_udgram,
					e->skel->progs.weir_lsm_create };

	return p[i];
}

/* Attached once per load: they run for every task and look up the
 * enforced cgroups themselves. A failure leaves the protection off, said. */
static void attach_lsm(struct egress *e)
{
	struct bpf_program *p;
	int i;

	for (i = 0; i < NLSM; i++) {
		p = lsm_prog(e, i);
		if (!bpf_program__autoload(p))
			break;
		e->lsm[i] = bpf_program__attach_lsm(p);
		if (!e->lsm[i]) {
			pr_warn("cannot attach %s (BPF LSM): %s; sockets made outside the cgroup "
				"are not refused\n", bpf_program__name(p), strerror(errno));
			break;
		}
	}
	if (i == NLSM)
		return;
	while (i-- > 0) {
		bpf_link__destroy(e->lsm[i]);
		e->lsm[i] = NULL;
	}
}

bool egress_lsm_on(const struct egress *e)
{
	return e && e->lsm[0] && e->lsm[1];
}

int egress_pass_cookie(struct egress *e, __u32 handle, __u64 cookie)
{
	if (!egress_lsm_on(e))
		return 0;
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_passed), &cookie, &handle, BPF_ANY))
		return -errno;
	return 0;
}

int egress_pass_socket(struct egress *e, __u32 handle, int fd)
{
	__u64 cookie;
	socklen_t len = sizeof(cookie);

	if (!egress_lsm_on(e))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		return -errno;
	return egress_pass_cookie(e, handle, cookie);
}

/* HANDLE's passed sockets forgotten (a daemon's map outlives its runs). */
static void passed_forget(struct egress *e, __u32 handle)
{
	int fd = bpf_map__fd(e->skel->maps.weir_passed);
	__u64 key, next, del[256];
	size_t n = 0, i;
	__u32 h;
	bool first = true;

	while (n < sizeof(del) / sizeof(del[0]) &&
	       !bpf_map_get_next_key(fd, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (!bpf_map_lookup_elem(fd, &key, &h) && h == handle)
			del[n++] = key;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &del[i]);
}


static int pin_maps(struct egress *e, const char *root);
static int rebuild(struct egress *e);

/*
 * The two preallocated LRU maps (weir_inflows, weir_askers: 3-4 ms each to
 * create on this kind of machine, the most of any map) made on a thread
 * while the object is opened and its small BTF built, then handed to
 * libbpf, which creates the others. Made as maps.bpf.h declares them; if
 * the object says otherwise once open (type, sizes, flags, entries), they
 * are dropped and libbpf makes its own: never a map unlike the object's.
 */
struct premade {
	pthread_t thread;
	bool started;
	__u32 inflows, askers; /* max_entries; askers 0: not made (no resolver) */
	int inflows_fd, askers_fd; /* or -errno */
};

static int make_lru(const char *name, __u32 key, __u32 value, __u32 entries)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, name, key, value, entries, NULL);

	return fd < 0 ? -errno : fd;
}

static void *premade_main(void *arg)
{
	struct premade *p = arg;

	p->inflows_fd = make_lru("weir_inflows", sizeof(struct weir_inflow_key),
				 sizeof(struct weir_inflow), p->inflows);
	p->askers_fd =
	    p->askers ? make_lru("weir_askers", sizeof(__u64), sizeof(struct weir_asker), p->askers)
		      : -ENOENT;
	return NULL;
}

/* Started where maps are not pinned (a daemon's are, and reused). */
static void premade_start(struct premade *p, const struct egress_opts *o)
{
	p->inflows_fd = p->askers_fd = -ENOENT;
	if (o->pin_root)
		return;
	p->inflows = o->inflows ?: 16384;
	p->askers = !o->dns_port && o->handles <= 2 ? 0 : 16384;
	p->started = !pthread_create(&p->thread, NULL, premade_main, p);
}

static bool premade_fits(const struct bpf_map *m, int fd, __u32 key, __u32 value)
{
	return fd >= 0 && bpf_map__type(m) == BPF_MAP_TYPE_LRU_HASH && !bpf_map__map_flags(m) &&
	       bpf_map__key_size(m) == key && bpf_map__value_size(m) == value &&
	       !bpf_map__inner_map((struct bpf_map *)m);
}

static void premade_use(struct bpf_map *m, int fd, __u32 key, __u32 value, __u32 entries)
{
	if (premade_fits(m, fd, key, value) && bpf_map__max_entries(m) == entries &&
	    !bpf_map__reuse_fd(m, fd))
		return;
	if (fd >= 0)
		pr_debug("map %s: made by libbpf (the object's differs from the one made ahead)\n",
			 bpf_map__name(m));
}

/* Joined before the load; the maps libbpf now holds (reuse_fd dups). */
static void premade_finish(struct premade *p, struct egress_bpf *skel)
{
	if (!p->started)
		return;
	pthread_join(p->thread, NULL);
	p->started = false;
	if (skel) {
		premade_use(skel->maps.weir_inflows, p->inflows_fd, sizeof(struct weir_inflow_key),
			    sizeof(struct weir_inflow), p->inflows);
		premade_use(skel->maps.weir_askers, p->askers_fd, sizeof(__u64),
			    sizeof(struct weir_asker), p->askers);
	}
	if (p->inflows_fd >= 0)
		close(p->inflows_fd);
	if (p->askers_fd >= 0)
		close(p->askers_fd);
	p->inflows_fd = p->askers_fd = -ENOENT;
}

/* The LSM programs' sections: loaded only where the BPF LSM is on. */
static bool lsm_section(const char *sec)
{
	return !strncmp(sec, "lsm/", 4);
}

/*
 * The object opened with the small BTF of the kernel's types its CO-RE
 * relocations need (corebtf.c: ~1 ms where libbpf's read of the kernel's
 * whole BTF took ~45). Where the LSM programs load, libbpf reads the
 * kernel's BTF anyway (their attach points), so it relocates from that.
 * Any failure to build it: libbpf's way, as before.
 */
static int open_skel(struct egress *e)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct weir_features f;
	const void *obj;
	size_t sz;
	int err;

	obj = egress_bpf__elf_bytes(&sz);
	err = core_btf_prepare(&e->core, obj, sz, features_probe(&f) || !f.bpf_lsm, lsm_section);
	if (err)
		pr_debug("CO-RE: the kernel's whole BTF, through libbpf (%s)\n", strerror(-err));
	else
		pr_debug("CO-RE: %u relocations from %u types of the kernel's BTF\n",
			 e->core.relos, e->core.types);
	if (e->core.fd >= 0)
		oo.btf_custom_path = e->core.path;
	e->skel = egress_bpf__open_opts(&oo);
	if (!e->skel) {
		err = -errno;
		pr_warn("cannot open the BPF object: %s\n", strerror(-err));
		return err;
	}
	return 0;
}

/* The unix programs' kfunc calls given the kernel's id (corebtf.h). */
static int patch_kfunc_calls(struct egress *e, struct bpf_object *obj)
{
	struct bpf_program *p;
	int err;

	bpf_object__for_each_program(p, obj) {
		if (!bpf_program__autoload(p))
			continue;
		err = core_btf_patch_calls(&e->core, p);
		if (err) {
			pr_warn("cannot load %s: the kernel has no kfunc bpf_cast_to_kern_ctx "
				"(%s)\n",
				bpf_program__name(p), strerror(-err));
			return err;
		}
	}
	return 0;
}

/*
 * The load on both cores: the kernel verifies one program at a time per
 * bpf() call, and libbpf 1.1 makes those calls one after the other (~26 ms
 * of verification here). A first copy of the object, loaded with no
 * program, makes the maps; skel and a second copy take them
 * (bpf_map__reuse_fd), and each loads about half the programs, the second
 * on a thread; skel's pointers to the second's programs then point at the
 * loaded ones, so everything after the load uses skel as before. These
 * four take about half of the verifier's time (bench/startup.sh's table).
 */
#define HALF(prog) offsetof(struct egress_bpf, progs.prog)
static const size_t half_progs[] = { HALF(weir_egress), HALF(weir_ingress), HALF(weir_sendmsg6),
				     HALF(weir_unix_send) };
#undef HALF

static struct bpf_program **prog_at(struct egress_bpf *skel, size_t off)
{
	return (struct bpf_program **)((char *)skel + off);
}

static void *half_main(void *arg)
{
	struct egress_bpf *half = arg;

	return (void *)(long)egress_bpf__load(half);
}

/* Every map of SKEL the one of the same name in MAPS, created already. */
static int take_maps(struct egress_bpf *skel, const struct egress_bpf *maps)
{
	struct bpf_map *m, *from;
	int err;

	bpf_object__for_each_map(m, skel->obj) {
		from = bpf_object__find_map_by_name(maps->obj, bpf_map__name(m));
		if (!from)
			return -ENOENT;
		err = bpf_map__reuse_fd(m, bpf_map__fd(from));
		if (err)
			return err;
	}
	return 0;
}

/* An open copy of the object, configured as e->skel is; LOAD: the programs
 * of half_progs skel would load (else none). */
static struct egress_bpf *copy_skel(struct egress *e, const struct egress_opts *o, bool load)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct egress_bpf *c;
	struct bpf_program *p;
	size_t i;

	if (e->core.fd >= 0)
		oo.btf_custom_path = e->core.path;
	c = egress_bpf__open_opts(&oo);
	if (!c)
		return NULL;
	*c->rodata = *e->skel->rodata;
	if (size_maps(c, o)) {
		egress_bpf__destroy(c);
		errno = EINVAL;
		return NULL;
	}
	bpf_object__for_each_program(p, c->obj)
		bpf_program__set_autoload(p, false);
	for (i = 0; load && i < sizeof(half_progs) / sizeof(half_progs[0]); i++)
		bpf_program__set_autoload(*prog_at(c, half_progs[i]),
					  bpf_program__autoload(*prog_at(e->skel, half_progs[i])));
	set_unix_attach_types(c);
	return c;
}

static int split_load(struct egress *e, const struct egress_opts *o, struct premade *pm)
{
	struct egress_bpf *maps = copy_skel(e, o, false), *half = copy_skel(e, o, true);
	pthread_t t;
	void *ret;
	size_t i;
	int err;

	if (!maps || !half) {
		err = -errno;
		goto out;
	}
	premade_finish(pm, maps);
	err = patch_kfunc_calls(e, half->obj);
	err = err ?: egress_bpf__load(maps);
	err = err ?: take_maps(e->skel, maps);
	err = err ?: take_maps(half, maps);
	if (err)
		goto out;
	for (i = 0; i < sizeof(half_progs) / sizeof(half_progs[0]); i++)
		bpf_program__set_autoload(*prog_at(e->skel, half_progs[i]), false);
	if (pthread_create(&t, NULL, half_main, half)) {
		err = egress_bpf__load(half);
		err = err ?: egress_bpf__load(e->skel);
	} else {
		err = egress_bpf__load(e->skel);
		pthread_join(t, &ret);
		err = err ?: (int)(long)ret;
	}
	if (err)
		goto out;
	for (i = 0; i < sizeof(half_progs) / sizeof(half_progs[0]); i++)
		*prog_at(e->skel, half_progs[i]) = *prog_at(half, half_progs[i]);
	e->half = half;
	half = NULL;
out:
	egress_bpf__destroy(maps); /* skel and half hold the maps */
	egress_bpf__destroy(half);
	return err;
}

int egress_open(const struct egress_opts *opts, struct egress **out)
{
	struct egress_opts o = *opts;
	struct premade pm = { .started = false };
	struct egress *e;
	int err;

	if (!o.handles)
		o.handles = 2; /* "none" and the one-handle calls' */
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->core.fd = -1;
	e->nslots = o.slots;
	e->nsets = o.portsets;
	e->nhandles = o.handles;
	e->slot_used = calloc(e->nslots, 1);
	e->set_used = calloc(e->nsets, 1);
	e->h = calloc(e->nhandles, sizeof(*e->h));
	if (!e->slot_used || !e->set_used || !e->h) {
		err = -ENOMEM;
		goto fail;
	}
	/* Index 0 means "none" in all three: never hand it out. */
	e->slot_used[0] = e->set_used[0] = 1;
	e->h[0].used = true;
	e->one_cfg.dns_port = o.dns_port;
	e->one_cfg.dns_ip4 = o.dns_ip4;
	memcpy(e->one_cfg.dns_ip6, o.dns_ip6, sizeof(o.dns_ip6));

	premade_start(&pm, &o);
	err = open_skel(e);
	if (err)
		goto fail;
	err = size_maps(e->skel, &o);
	if (err)
		goto fail;
	e->skel->rodata->weir_cfg.wakeup_bytes = o.ringbuf_bytes / 4;
	e->skel->rodata->weir_cfg.task_info = o.task_info >= 0 ? o.task_info : egress_task_info();
	/* A fallback asked for (tests: CORE, NONE) applies to these too. */
	e->skel->rodata->weir_cfg.skb_task_info =
		o.task_info == WEIR_TASK_CORE || o.task_info == WEIR_TASK_NONE ? o.task_info
									      : egress_skb_task_info();
	e->skel->rodata->weir_cfg.nesting = egress_nesting_supported();
	choose_programs(e->skel, o.dns_port || o.handles > 2);
	set_unix_attach_types(e->skel);
	err = patch_kfunc_calls(e, e->skel->obj);
	if (err)
		goto fail;
	verifier_stats(e->skel);
	if (o.pin_root) {
		err = pin_maps(e, o.pin_root);
		if (err)
			goto fail;
	}
	/* Pinned maps (a daemon's, loaded once), -vv (whose statistics come
	 * one program after the other) and the kernel's whole BTF (each copy
	 * of the object would read it again) load as libbpf does. */
	if (o.pin_root || log_get_level() >= LOG_LEVEL_TRACE || e->core.fd < 0) {
		premade_finish(&pm, e->skel);
		err = egress_bpf__load(e->skel);
	} else {
		err = split_load(e, &o, &pm);
	}
	core_btf_release(&e->core);
	if (err && e->reused) {
		pr_warn("cannot reuse the maps pinned in %s: they differ from this weir's "
			"(other sizes or types: libbpf's line above names the map). Nothing "
			"was changed: the attachments pinned with them stay enforced as "
			"they are\n",
			e->map_dir);
		goto fail;
	}
	if (err) {
		pr_warn("cannot load the BPF programs: %s (run with -v for the verifier log)\n",
			strerror(-err));
		goto fail;
	}
	attach_lsm(e);
	if (e->reused) {
		err = rebuild(e);
		if (err) {
			pr_warn("cannot read the maps pinned in %s: %s\n", e->map_dir,
				strerror(-err));
			goto fail;
		}
	}
	*out = e;
	return 0;
fail:
	premade_finish(&pm, NULL);
	egress_close(e); /* nothing attached; pinned maps (another weir's) stay pinned */
	return err;
}

/*
 * Every program, in the order they are attached: setsockopt first, as it
 * is the one whose fail-closed default (no handle yet) changes nothing a
 * policy would allow; the cgroup's storage is written right after it, so
 * the others never see the cgroup without its handle.
 */
static void programs(const struct egress *e, struct bpf_program *p[NPROGS])
{
	struct bpf_program *all[NPROGS] = {
		e->skel->progs.weir_setsockopt,
		e->skel->progs.weir_connect4,
		e->skel->progs.weir_connect6,
		e->skel->progs.weir_sendmsg4,
		e->skel->progs.weir_sendmsg6,
		e->skel->progs.weir_recvmsg4,
		e->skel->progs.weir_recvmsg6,
		e->skel->progs.weir_getpeer4,
		e->skel->progs.weir_getpeer6,
		e->skel->progs.weir_sock_create,
		e->skel->progs.weir_egress,
		e->skel->progs.weir_ingress,
		e->skel->progs.weir_sockops,
		e->skel->progs.weir_sock_release,
		e->skel->progs.weir_unix_conn,
		e->skel->progs.weir_unix_send,
	};

	memcpy(p, all, sizeof(all));
}

static struct handle *handle_get(const struct egress *e, __u32 handle)
{
	if (!handle || handle >= e->nhandles || !e->h[handle].used)
		return NULL;
	return &e->h[handle];
}

int egress_handle_alloc(struct egress *e, __u32 *handle)
{
	__u32 i;

	for (i = 1; i < e->nhandles; i++) {
		if (!e->h[i].used) {
			e->h[i].used = true;
			*handle = i;
			return 0;
		}
	}
	return -ENOSPC;
}

static int cgroup_fd_id(int cgroup_fd, __u64 *id)
{
	struct stat st;

	/* kernfs: the inode number is the cgroup id on 64-bit kernels. */
	if (fstat(cgroup_fd, &st))
		return -errno;
	*id = st.st_ino;
	return 0;
}

/* Replaced whole: the programs see the old value or the new one. */
static int write_storage_raw(struct egress *e, __u64 cgroup_id, const struct weir_attach *a)
{
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_attach), &cgroup_id, a, BPF_ANY))
		return -errno;
	return 0;
}

static int write_storage(struct egress *e, __u64 cgroup_id, __u32 handle,
			 const struct egress_attach_cfg *cfg)
{
	struct weir_attach a = { .handle = handle };

	if (cfg) {
		a.dns_port = cfg->dns_port;
		a.dns_ip4 = cfg->dns_ip4;
		memcpy(a.dns_ip6, cfg->dns_ip6, sizeof(a.dns_ip6));
	}
	return write_storage_raw(e, cgroup_id, &a);
}

/* The cgroup is enforced with HANDLE: attachments above it leave its
 * processes to it (WEIR_AF_OUTER). Written once its links and storage are
 * there: until then an attachment above judges them, never nobody. */
static int cgid_set(struct egress *e, __u64 cgroup_id, __u32 handle)
{
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_cgids), &cgroup_id, &handle, BPF_ANY))
		return -errno;
	return 0;
}

/* HANDLE's cgroup id and the storage the programs read for it. */
static int storage_of(struct egress *e, __u32 handle, __u64 *id, struct weir_attach *a)
{
	const struct handle *h = handle_get(e, handle);

	if (!h || !h->cgroup_id)
		return -ENOENT;
	*id = h->cgroup_id;
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.weir_attach), id, a))
		return -errno;
	return 0;
}

int egress_set_outer(struct egress *e, __u32 handle, bool outer)
{
	struct weir_attach a;
	__u64 id;
	int err = storage_of(e, handle, &id, &a);

	if (err)
		return err;
	if (!!(a.flags & WEIR_AF_OUTER) == outer)
		return 0;
	a.flags = outer ? a.flags | WEIR_AF_OUTER : a.flags & ~WEIR_AF_OUTER;
	return write_storage_raw(e, id, &a);
}

/* Where an attachment's DNS goes (its resolver moved: a daemon's adoption);
 * the rest of its storage as it was. */
int egress_set_dns(struct egress *e, __u32 handle, const struct egress_attach_cfg *cfg)
{
	struct weir_attach a;
	__u64 id;
	int err = storage_of(e, handle, &id, &a);

	if (err)
		return err;
	a.dns_port = cfg->dns_port;
	a.dns_ip4 = cfg->dns_ip4;
	memcpy(a.dns_ip6, cfg->dns_ip6, sizeof(a.dns_ip6));
	return write_storage_raw(e, id, &a);
}

/* Unpin (if pinned) and detach one link, whoever else holds it. */
static void link_drop(struct bpf_link **l)
{
	if (!*l)
		return;
	if (bpf_link__pin_path(*l))
		bpf_link__unpin(*l);
	bpf_link__detach(*l);
	bpf_link__destroy(*l);
	*l = NULL;
}

static void handle_detach_links(struct handle *h)
{
	int i;

	for (i = 0; i < NPROGS; i++)
		link_drop(&h->links[i]);
	h->cgroup_id = 0;
}

static int attach_one(struct bpf_program *prog, int cgroup_fd, const char *pin_dir,
		      struct bpf_link **out)
{
	char path[4096];
	int err;

	*out = bpf_program__attach_cgroup(prog, cgroup_fd);
	if (!*out) {
		err = -errno;
		pr_warn("cannot attach %s: %s\n", bpf_program__name(prog), strerror(-err));
		return err;
	}
	if (!pin_dir)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_program__name(prog));
	err = bpf_link__pin(*out, path);
	if (err)
		pr_warn("cannot pin %s: %s\n", path, strerror(-err));
	return err;
}

/*
 * cgroup_bpf_enabled_key[attach type] goes on with the first program of
 * that type anywhere and off with the last, and each time the kernel
 * rewrites its code on every CPU (text_poke: 46% of a daemon's CPU when
 * weir runs came and went one at a time). Attached here once, the keys
 * stay on: every socket's cgroup is then looked at, as while any run is.
 */
int egress_hold_keys(struct egress *e, int cgroup_fd)
{
	struct bpf_program *progs[NPROGS];
	int i;

	programs(e, progs);
	for (i = 0; i < NPROGS; i++) {
		if (!bpf_program__autoload(progs[i]) || e->keys[i])
			continue;
		e->keys[i] = bpf_program__attach_cgroup(progs[i], cgroup_fd);
		if (!e->keys[i])
			return -errno;
	}
	return 0;
}

int egress_attach_handle(struct egress *e, __u32 handle, int cgroup_fd,
			 const struct egress_attach_cfg *cfg, const char *pin_dir)
{
	struct bpf_program *progs[NPROGS];
	struct handle *h = handle_get(e, handle);
	__u64 id = 0;
	__u32 i;
	int err;

	if (!h)
		return -EINVAL;
	if (h->cgroup_id)
		return -EBUSY;
	err = cgroup_fd_id(cgroup_fd, &id);
	if (err)
		return err;
	for (i = 1; i < e->nhandles; i++) {
		if (e->h[i].cgroup_id == id) {
			pr_warn("cgroup %llu is enforced by this weir already (handle %u)\n",
				(unsigned long long)id, i);
			return -EEXIST;
		}
	}
	programs(e, progs);
	h->cgroup_id = id;
	for (i = 0; i < NPROGS; i++) {
		if (!bpf_program__autoload(progs[i]))
			continue;
		err = attach_one(progs[i], cgroup_fd, pin_dir, &h->links[i]);
		/* The storage exists once a program using it is attached. */
		if (!err && i == 0) {
			err = write_storage(e, id, handle, cfg);
			if (err)
				pr_warn("cannot write the cgroup's weir_attach storage: %s\n",
					strerror(-err));
		}
		if (err)
			goto fail;
	}
	if (pin_dir) {
		h->pin_dir = strdup(pin_dir);
		if (!h->pin_dir) {
			err = -ENOMEM;
			goto fail;
		}
	}
	/* For the LSM programs, which run outside the cgroup hooks. */
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_enforced), &id, &handle, BPF_ANY)) {
		err = -errno;
		pr_warn("cannot write the cgroup into weir_enforced: %s\n", strerror(-err));
		goto fail;
	}
	return cgid_set(e, id, handle);
fail:
	handle_detach_links(h);
	return err;
}

int egress_attach(struct egress *e, int cgroup_fd, const char *pin_dir)
{
	int err = 0;

	if (!e->one)
		err = egress_handle_alloc(e, &e->one);
	return err ?: egress_attach_handle(e, e->one, cgroup_fd, &e->one_cfg, pin_dir);
}

void egress_unpin(struct egress *e)
{
	__u32 i;
	int j;

	for (i = 0; e && i < e->nhandles; i++) {
		for (j = 0; j < NPROGS; j++)
			if (e->h[i].links[j] && bpf_link__pin_path(e->h[i].links[j]))
				bpf_link__unpin(e->h[i].links[j]);
	}
	for (j = 0; e && j < NLSM; j++)
		if (e->lsm[j] && bpf_link__pin_path(e->lsm[j]))
			bpf_link__unpin(e->lsm[j]);
}

/*
 * The LSM links pinned in PIN_DIR, so that they outlive this process as
 * the cgroup links do: weir run's beside its cgroup links (weir cleanup
 * removes them with the rest), a daemon's in PIN_ROOT/lsm, where a pin of
 * an earlier load (a daemon that stopped) is replaced once this load's
 * links are attached: no moment without, and the old programs go with
 * their last reference.
 */
int egress_pin_lsm(struct egress *e, const char *pin_dir)
{
	char path[4096];
	int j, err;

	for (j = 0; j < NLSM; j++) {
		if (!e->lsm[j] || bpf_link__pin_path(e->lsm[j]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, lsm_names[j]);
		if (unlink(path) && errno != ENOENT) {
			err = -errno;
			pr_warn("cannot replace %s: %s\n", path, strerror(-err));
			return err;
		}
		err = bpf_link__pin(e->lsm[j], path);
		if (err) {
			pr_warn("cannot pin %s: %s\n", path, strerror(-err));
			return err;
		}
	}
	return 0;
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

/* The inbound entries of slot S are written under S | WEIR_SLOT_INBOUND. */
static const struct centry *entries_of(const struct compiled *c, int family, bool in, size_t *n)
{
	if (family == AF_INET) {
		*n = in ? c->nin4 : c->n4;
		return in ? c->in4 : c->v4;
	}
	*n = in ? c->nin6 : c->n6;
	return in ? c->in6 : c->v6;
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
	const struct centry *ents;
	size_t n;
	int err = 0, in;

	for (in = 0; !err && in < 2; in++) {
		__u32 slot = g->slot | (in ? WEIR_SLOT_INBOUND : 0);

		ents = entries_of(&g->c, AF_INET, in, &n);
		if (!in && g->ranges4)
			n = 0; /* written as intervals (write_ranges()) */
		err = write_batch(bpf_map__fd(e->skel->maps.weir_lpm4), n, sizeof(struct weir_key4),
				  ents, slot, g->sets, key4_of);
		ents = entries_of(&g->c, AF_INET6, in, &n);
		err = err ?: write_batch(bpf_map__fd(e->skel->maps.weir_lpm6), n,
					 sizeof(struct weir_key6), ents, slot, g->sets, key6_of);
	}
	return err;
}

static void sets_mark(struct egress *e, const struct weir_lpm_val *v, __u8 used);

/*
 * A big policy's IPv4 entries as intervals (<weir/egress.h>, struct
 * weir_rblock): an array made for it, filled with one copy per 64 KiB
 * block, then put in weir_ranges4[slot]. Until the slot is flagged and a
 * handle flipped to it, no program looks there. Small policies, and
 * kernels that refuse the array, keep the trie (no error).
 */
static int write_ranges(struct egress *e, struct generation *g, const struct compiled *c)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_INNER_MAP);
	int outer = bpf_map__fd(e->skel->maps.weir_ranges4), fd, err;
	struct weir_lpm_val *v;
	struct rblocks rb;
	__u32 k;
	size_t i;

	if (c->n4 < WEIR_RANGES_MIN)
		return 0;
	err = rblocks_build(c->v4, c->n4, &rb);
	if (err == -EINVAL || err == -E2BIG)
		return 0;
	if (err)
		return err;
	/* The port set indexes: local to the policy until here. */
	v = (struct weir_lpm_val *)rb.b[1 + rb.nblocks].w;
	for (i = 0; i < rb.nvals; i++)
		map_sets(&v[i], g->sets);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "weir_rblocks", sizeof(__u32),
			    sizeof(struct weir_rblock), (__u32)rb.n, &o);
	if (fd < 0) {
		pr_debug("intervals not available here (%s): the trie holds the policy\n",
			 strerror(errno));
		rblocks_free(&rb);
		return 0;
	}
	for (k = 0; !err && k < rb.n; k++)
		if (bpf_map_update_elem(fd, &k, &rb.b[k], BPF_ANY))
			err = -errno;
	if (!err && bpf_map_update_elem(outer, &g->slot, &fd, BPF_ANY))
		err = -errno;
	close(fd);
	rblocks_free(&rb);
	if (!err)
		g->ranges4 = true;
	return err;
}

/* The port sets a slot's intervals use, marked used or free (a policy
 * found in reused maps has no compiled copy to name them). */
static void ranges_sets_mark(struct egress *e, __u32 slot, __u8 used)
{
	struct bpf_map_info info = {};
	__u32 id, len = sizeof(info), k, nvals;
	struct weir_rblock *b;
	int fd;

	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.weir_ranges4), &slot, &id))
		return;
	fd = bpf_map_get_fd_by_id(id);
	b = malloc(sizeof(*b));
	if (fd < 0 || !b || bpf_obj_get_info_by_fd(fd, &info, &len))
		goto out;
	k = 0;
	if (bpf_map_lookup_elem(fd, &k, b))
		goto out;
	nvals = WEIR_RB_VALS;
	for (k = b->w[WEIR_RB_N + 1]; k && k < info.max_entries; k++) {
		const struct weir_lpm_val *v = (const struct weir_lpm_val *)b->w;
		__u32 i;

		if (bpf_map_lookup_elem(fd, &k, b))
			break;
		for (i = 0; i < nvals; i++)
			sets_mark(e, &v[i], used);
	}
out:
	free(b);
	if (fd >= 0)
		close(fd);
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
static void delete_entries(struct egress *e, const struct generation *g, bool in)
{
	int fd4 = bpf_map__fd(e->skel->maps.weir_lpm4);
	int fd6 = bpf_map__fd(e->skel->maps.weir_lpm6);
	__u32 slot = g->slot | (in ? WEIR_SLOT_INBOUND : 0);
	const struct centry *v4, *v6;
	struct weir_key4 k4;
	struct weir_key6 k6;
	size_t i, n4, n6;
	int plen;

	v4 = entries_of(&g->c, AF_INET, in, &n4);
	v6 = entries_of(&g->c, AF_INET6, in, &n6);
	if (!in && g->ranges4)
		n4 = 0; /* in weir_ranges4: dropped whole by release_generation() */
	for (plen = 0; plen <= 128; plen++) {
		for (i = 0; plen <= 32 && i < n4; i++) {
			if (v4[i].plen != plen)
				continue;
			make_key4(&v4[i], slot, &k4);
			bpf_map_delete_elem(fd4, &k4);
		}
		for (i = 0; i < n6; i++) {
			if (v6[i].plen != plen)
				continue;
			make_key6(&v6[i], slot, &k6);
			bpf_map_delete_elem(fd6, &k6);
		}
	}
}

/* The common head of weir_key4 and weir_key6. */
struct key_head {
	__u32 prefixlen;
	__u32 slot;
};

/* Every key of an LPM trie of KSIZE-byte keys (malloc'd, *n of them). */
static int trie_keys(int fd, size_t ksize, char **out, size_t *n)
{
	char prev[sizeof(struct weir_key6)], next[sizeof(struct weir_key6)], *keys = NULL, *more;
	size_t cap = 0;
	int err = 0;

	*n = 0;
	while (!bpf_map_get_next_key(fd, *n ? prev : NULL, next)) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 256;
			more = realloc(keys, cap * ksize);
			if (!more) {
				err = -ENOMEM;
				break;
			}
			keys = more;
		}
		memcpy(keys + *n * ksize, next, ksize);
		memcpy(prev, next, ksize);
		(*n)++;
	}
	if (!err && errno != ENOENT)
		err = -errno;
	if (err) {
		free(keys);
		return err;
	}
	*out = keys;
	return 0;
}

static int by_prefixlen(const void *a, const void *b)
{
	const struct key_head *x = a, *y = b;

	return (x->prefixlen > y->prefixlen) - (x->prefixlen < y->prefixlen);
}

static void sets_mark(struct egress *e, const struct weir_lpm_val *v, __u8 used)
{
	if (v->deny.set && v->deny.set < e->nsets)
		e->set_used[v->deny.set] = used;
	if (v->allow.set && v->allow.set < e->nsets)
		e->set_used[v->allow.set] = used;
}

/*
 * Entries of a policy found in reused maps (no compiled copy to name them):
 * looked up by slot, deleted shortest prefix first (as delete_entries()),
 * their port sets freed.
 */
static void delete_slot_in(struct egress *e, int fd, size_t ksize, __u32 slot)
{
	struct weir_lpm_val v;
	size_t i, n, m = 0;
	char *keys;

	if (trie_keys(fd, ksize, &keys, &n))
		return;
	for (i = 0; i < n; i++)
		if (((struct key_head *)(keys + i * ksize))->slot == slot)
			memmove(keys + m++ * ksize, keys + i * ksize, ksize);
	qsort(keys, m, ksize, by_prefixlen);
	for (i = 0; i < m; i++) {
		if (!bpf_map_lookup_elem(fd, keys + i * ksize, &v))
			sets_mark(e, &v, 0);
		bpf_map_delete_elem(fd, keys + i * ksize);
	}
	free(keys);
}

static void delete_slot(struct egress *e, __u32 slot)
{
	delete_slot_in(e, bpf_map__fd(e->skel->maps.weir_lpm4), sizeof(struct weir_key4), slot);
	delete_slot_in(e, bpf_map__fd(e->skel->maps.weir_lpm6), sizeof(struct weir_key6), slot);
}

/* Every weir_unix entry of SLOT: gone (stale ones of a slot used before
 * too, whatever wrote them). */
static void unix_delete_slot(struct egress *e, __u32 slot)
{
	int fd = bpf_map__fd(e->skel->maps.weir_unix);
	struct weir_unix_key k, next, *del;
	size_t n = 0, cap = bpf_map__max_entries(e->skel->maps.weir_unix), i;
	void *prev = NULL;

	del = calloc(cap ?: 1, sizeof(*del));
	if (!del)
		return;
	while (n < cap && !bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		if (k.slot == slot)
			del[n++] = k;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &del[i]);
	free(del);
}

static int unix_write(struct egress *e, __u32 slot, const struct compiled *c)
{
	int fd = bpf_map__fd(e->skel->maps.weir_unix);
	struct weir_unix_key k;
	size_t i;

	unix_delete_slot(e, slot);
	for (i = 0; i < c->nusock; i++) {
		k = c->usock[i].k;
		k.slot = slot;
		if (bpf_map_update_elem(fd, &k, &c->usock[i].v, BPF_ANY))
			return -errno;
	}
	return 0;
}

static void release_generation(struct egress *e, struct generation *g)
{
	struct weir_slot none = {};
	size_t i;

	if (g->slot) {
		bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_slots), &g->slot, &none,
				    BPF_ANY);
		unix_delete_slot(e, g->slot);
		if (g->found) {
			ranges_sets_mark(e, g->slot, 0);
			delete_slot(e, g->slot);
			delete_slot(e, g->slot | WEIR_SLOT_INBOUND);
		} else {
			delete_entries(e, g, false);
			delete_entries(e, g, true);
		}
		/* A big policy's intervals: one array, freed whole. */
		if (g->found || g->ranges4)
			bpf_map_delete_elem(bpf_map__fd(e->skel->maps.weir_ranges4), &g->slot);
		e->slot_used[g->slot] = 0;
	}
	for (i = 0; g->sets && i < g->c.nsets; i++)
		if (g->sets[i])
			e->set_used[g->sets[i]] = 0;
	free(g->sets);
	compiled_free(&g->c);
	memset(g, 0, sizeof(*g));
}

/* One allocation of n4 + n6 entries, v6 right after v4 (compiled_free()). */
static struct centry *copy_pair(const struct centry *v4, size_t n4, const struct centry *v6,
				size_t n6, struct centry **v6out)
{
	struct centry *a = malloc((n4 + n6 ? n4 + n6 : 1) * sizeof(*a));

	if (!a)
		return NULL;
	memcpy(a, v4, n4 * sizeof(*a));
	memcpy(a + n4, v6, n6 * sizeof(*a));
	*v6out = a + n4;
	return a;
}

/* A generation's own copy of what it wrote (to delete it later); without
 * the IPv4 entries when they went to weir_ranges4 (dropped whole). */
static int copy_compiled(const struct compiled *src, bool no_v4, struct compiled *dst)
{
	*dst = *src;
	dst->budgets = NULL; /* written to weir_budgets; the copy needs none */
	dst->nbudgets = 0;
	if (no_v4)
		dst->n4 = 0;
	dst->v4 = copy_pair(src->v4, dst->n4, src->v6, src->n6, &dst->v6);
	dst->in4 = copy_pair(src->in4, src->nin4, src->in6, src->nin6, &dst->in6);
	dst->sets = malloc((src->nsets ? src->nsets : 1) * sizeof(*dst->sets));
	dst->usock = malloc((src->nusock ? src->nusock : 1) * sizeof(*dst->usock));
	if (!dst->v4 || !dst->in4 || !dst->sets || !dst->usock) {
		free(dst->v4);
		free(dst->in4);
		free(dst->sets);
		free(dst->usock);
		return -ENOMEM;
	}
	memcpy(dst->sets, src->sets, src->nsets * sizeof(*dst->sets));
	if (src->nusock)
		memcpy(dst->usock, src->usock, src->nusock * sizeof(*dst->usock));
	return 0;
}

/* --- upload budgets (weir_budgets, bpf/flows.bpf.h) ---------------------- */

struct budget_ent {
	struct weir_budget_key k;
	struct weir_budget v;
};

/* Every weir_budgets entry of handle (a small map: a few per attachment). */
static int budgets_of(const struct egress *e, __u32 handle, struct budget_ent **out, size_t *n)
{
	int fd = bpf_map__fd(e->skel->maps.weir_budgets);
	struct weir_budget_key k, prev;
	struct budget_ent *a = NULL, *more;
	size_t cap = 0;
	bool first = true;

	*n = 0;
	while (!bpf_map_get_next_key(fd, first ? NULL : &prev, &k)) {
		first = false;
		prev = k;
		if (k.handle != handle)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			more = realloc(a, cap * sizeof(*a));
			if (!more) {
				free(a);
				return -ENOMEM;
			}
			a = more;
		}
		a[*n].k = k;
		if (!bpf_map_lookup_elem(fd, &k, &a[*n].v))
			(*n)++;
	}
	*out = a;
	return 0;
}

static const struct budget_ent *budget_find(const struct budget_ent *old, size_t n,
					    const struct cbudget *b)
{
	size_t i;

	for (i = 0; i < n; i++) /* the same rule id first: the entry in use */
		if (old[i].k.rule == b->rule && old[i].v.ident == b->ident)
			return &old[i];
	for (i = 0; i < n; i++)
		if (old[i].v.ident == b->ident)
			return &old[i];
	return NULL;
}

/*
 * The new policy's budgets, before it is flipped in: what a rule naming
 * the same destination (policy_rule_ident()) had used goes on counting.
 * An entry whose key, destination and limit stay is left alone (no
 * packet's charge lost); otherwise the bytes of packets sent between the
 * read and the flip are not carried over.
 */
static int budgets_write(struct egress *e, __u32 handle, const struct compiled *c,
			 const struct budget_ent *old, size_t nold)
{
	int fd = bpf_map__fd(e->skel->maps.weir_budgets);
	const struct budget_ent *o;
	struct weir_budget_key k = { .handle = handle };
	struct weir_budget v;
	size_t i;

	for (i = 0; i < c->nbudgets; i++) {
		o = budget_find(old, nold, &c->budgets[i]);
		if (o && o->k.rule == c->budgets[i].rule && o->v.limit == c->budgets[i].limit)
			continue;
		memset(&v, 0, sizeof(v));
		v.limit = c->budgets[i].limit;
		v.ident = c->budgets[i].ident;
		if (o) {
			v.used = o->v.used;
			v.refused = o->v.refused;
			/* A lower limit already passed says so at the next packet. */
			v.spent = v.used >= v.limit;
			v.said = o->v.said && o->v.limit == v.limit;
		}
		k.rule = c->budgets[i].rule;
		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* After the flip: the entries no rule of the policy in force names. */
static void budgets_sweep(struct egress *e, __u32 handle, const struct compiled *c,
			  const struct budget_ent *old, size_t nold)
{
	int fd = bpf_map__fd(e->skel->maps.weir_budgets);
	size_t i, j;

	for (i = 0; i < nold; i++) {
		for (j = 0; c && j < c->nbudgets; j++)
			if (c->budgets[j].rule == old[i].k.rule)
				break;
		if (!c || j == c->nbudgets)
			bpf_map_delete_elem(fd, &old[i].k);
	}
}

int egress_budgets(const struct egress *e, __u32 handle, struct egress_budget *out, size_t max)
{
	struct budget_ent *a;
	size_t i, n;

	if (budgets_of(e, handle, &a, &n))
		return -ENOMEM;
	for (i = 0; i < n && i < max; i++)
		out[i] = (struct egress_budget){ .rule = a[i].k.rule, .limit = a[i].v.limit,
						 .used = a[i].v.used, .refused = a[i].v.refused,
						 .spent = a[i].v.spent };
	free(a);
	return (int)(n < max ? n : max);
}

int egress_apply_handle(struct egress *e, __u32 handle, const struct compiled *c)
{
	struct budget_ent *old = NULL;
	size_t nold = 0;
	struct weir_slot s = { .flags = WEIR_SF_LOADED | (c->audit ? WEIR_SF_AUDIT : 0) |
					(c->ping ? WEIR_SF_PING : 0),
			       .gen = ++e->policy_gen };
	struct handle *h = handle_get(e, handle);
	struct generation g = {};
	int err;

	if (!h)
		return -EINVAL;
	/* A big policy's IPv4 entries are not copied (tens of MB) unless the
	 * intervals turn out not to be possible here. */
	err = copy_compiled(c, c->n4 >= WEIR_RANGES_MIN, &g.c);
	if (err)
		return err;
	err = alloc_index(e->slot_used, e->nslots, &g.slot);
	err = err ?: write_sets(e, &g);
	err = err ?: write_ranges(e, &g, c);
	if (!err && !g.ranges4 && g.c.n4 != c->n4) {
		compiled_free(&g.c);
		err = copy_compiled(c, false, &g.c);
	}
	err = err ?: write_entries(e, &g);
	err = err ?: unix_write(e, g.slot, c);
	if (g.ranges4)
		s.flags |= WEIR_SF_RANGES4;
	err = err ?: budgets_of(e, handle, &old, &nold);
	err = err ?: budgets_write(e, handle, c, old, nold);
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
		free(old);
		return err;
	}
	budgets_sweep(e, handle, c, old, nold);
	free(old);
	if (h->gen.live)
		release_generation(e, &h->gen);
	h->gen = g;
	h->gen.live = true;
	return 0;
}

int egress_apply(struct egress *e, const struct compiled *c)
{
	int err = 0;

	if (!e->one)
		err = egress_handle_alloc(e, &e->one);
	return err ?: egress_apply_handle(e, e->one, c);
}

#define LEARN_CHUNK 1024

/* Keep the keys of handle's entries among n read ones; -ENOMEM. */
static int learn_pick(const struct weir_learn_key *keys, __u32 n, __u32 handle,
		      struct weir_learn_key **del, size_t *ndel, size_t *cap)
{
	struct weir_learn_key *more;
	__u32 i;

	for (i = 0; i < n; i++) {
		if (keys[i].handle != handle)
			continue;
		if (*ndel == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			more = realloc(*del, *cap * sizeof(**del));
			if (!more)
				return -ENOMEM;
			*del = more;
		}
		(*del)[(*ndel)++] = keys[i];
	}
	return 0;
}

/*
 * Keys of weir_learn that belong to handle, deleted. The map holds every
 * attachment's addresses: read in batches of LEARN_CHUNK (a few bpf()
 * calls, not one per entry), one by one where the kernel has no batches.
 */
static void learn_forget(struct egress *e, __u32 handle)
{
	int fd = bpf_map__fd(e->skel->maps.weir_learn), err = 0;
	struct weir_learn_key *keys, *del = NULL, token, next;
	struct weir_learn_val *vals;
	size_t ndel = 0, cap = 0, i;
	void *in = NULL;
	__u32 n;

	keys = malloc(LEARN_CHUNK * sizeof(*keys));
	vals = malloc(LEARN_CHUNK * sizeof(*vals));
	while (keys && vals && !err) {
		n = LEARN_CHUNK;
		err = bpf_map_lookup_batch(fd, in, &token, keys, vals, &n, NULL) ? -errno : 0;
		if (err && err != -ENOENT && !in) /* no batches here */
			break;
		if (learn_pick(keys, n, handle, &del, &ndel, &cap))
			break;
		in = &token;
	}
	if (err && err != -ENOENT && !in) {
		in = NULL;
		while (!bpf_map_get_next_key(fd, in, &next) &&
		       !learn_pick(&next, 1, handle, &del, &ndel, &cap)) {
			token = next;
			in = &token;
		}
	}
	for (i = 0; i < ndel; i++)
		bpf_map_delete_elem(fd, &del[i]);
	free(del);
	free(keys);
	free(vals);
}

static void budgets_forget(struct egress *e, __u32 handle)
{
	struct budget_ent *old;
	size_t n;

	if (!budgets_of(e, handle, &old, &n)) {
		budgets_sweep(e, handle, NULL, old, n);
		free(old);
	}
}

static void counts_reset(struct egress *e, __u32 handle)
{
	int ncpu = libbpf_num_possible_cpus();
	struct weir_counts *zero;

	if (ncpu <= 0)
		return;
	zero = calloc(ncpu, sizeof(*zero));
	if (zero)
		bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_counts), &handle, zero, BPF_ANY);
	free(zero);
}

void egress_detach_handle(struct egress *e, __u32 handle)
{
	struct handle *h = handle_get(e, handle);
	__u32 none = 0;

	if (!h)
		return;
	/* Forgotten first: an attachment above judges its processes again
	 * (both did until its links go), never nobody. */
	if (h->cgroup_id)
		bpf_map_delete_elem(bpf_map__fd(e->skel->maps.weir_cgids), &h->cgroup_id);
	if (h->cgroup_id)
		bpf_map_delete_elem(bpf_map__fd(e->skel->maps.weir_enforced), &h->cgroup_id);
	handle_detach_links(h);
	/* Detached first: no cgroup runs with this handle any more. */
	bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_handles), &handle, &none, BPF_ANY);
	if (h->gen.live)
		release_generation(e, &h->gen);
	learn_forget(e, handle);
	passed_forget(e, handle);
	counts_reset(e, handle);
	budgets_forget(e, handle);
	free(h->pin_dir);
	memset(h, 0, sizeof(*h));
	if (e->one == handle)
		e->one = 0;
}

__u64 egress_handle_cgroup(const struct egress *e, __u32 handle)
{
	const struct handle *h = handle_get(e, handle);

	return h ? h->cgroup_id : 0;
}

int egress_counts(const struct egress *e, __u32 handle, struct weir_counts *out)
{
	int ncpu = libbpf_num_possible_cpus(), i, err = 0;
	struct weir_counts *v;

	memset(out, 0, sizeof(*out));
	if (ncpu <= 0)
		return ncpu ?: -EINVAL;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(e->skel->maps.weir_counts), &handle, v))
		err = -errno;
	for (i = 0; !err && i < ncpu; i++) {
		out->allow += v[i].allow;
		out->deny += v[i].deny;
		out->would_deny += v[i].would_deny;
		out->dns += v[i].dns;
	}
	free(v);
	return err;
}

static __u64 decisions(const struct egress *e)
{
	struct weir_counts c;
	__u64 sum = 0;
	__u32 i;

	for (i = 0; i < e->nhandles; i++)
		if (e->h[i].used && !egress_counts(e, i, &c))
			sum += c.allow + c.deny + c.would_deny + c.dns;
	return sum;
}

/* One attachment among many keeps at most this share of weir_learn, which
 * they all share: one that fills its share makes room from its own (R8-7). */
#define LEARN_SHARE_DIV 8

__u32 egress_learn_share(const struct egress *e)
{
	__u32 n = bpf_map__max_entries(e->skel->maps.weir_learn);

	return e->nhandles > 2 ? n / LEARN_SHARE_DIV : n;
}

int egress_learn_set(struct egress *e, struct weir_learn_key *k, const struct weir_learn_val *v)
{
	if (!k->handle)
		k->handle = e->one;
	if (bpf_map_update_elem(bpf_map__fd(e->skel->maps.weir_learn), k, v, BPF_ANY))
		return -errno;
	return 0;
}

int egress_learn_del(struct egress *e, struct weir_learn_key *k)
{
	if (!k->handle)
		k->handle = e->one;
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

	if (stat == WEIR_STAT_DECISIONS)
		return decisions(e);
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
	if (e->one)
		handle_detach_links(&e->h[e->one]);
}

static __u32 count_used(const __u8 *used, __u32 n)
{
	__u32 i, k = 0;

	for (i = 1; i < n; i++) /* 0 is "none" */
		k += used[i] != 0;
	return k;
}

static __u64 count_keys(const struct bpf_map *m)
{
	char key[64], next[64];
	__u64 n = 0;
	int fd = bpf_map__fd(m);

	if (bpf_map__key_size(m) > sizeof(key))
		return 0;
	/* NULL first: the first key. */
	if (bpf_map_get_next_key(fd, NULL, next))
		return 0;
	do {
		n++;
		memcpy(key, next, bpf_map__key_size(m));
	} while (!bpf_map_get_next_key(fd, key, next));
	return n;
}

size_t egress_map_fill(const struct egress *e, struct egress_map_fill *out, size_t max)
{
	const struct bpf_map *tries[] = { e->skel->maps.weir_lpm4, e->skel->maps.weir_lpm6,
					  e->skel->maps.weir_learn, e->skel->maps.weir_askers };
	__u32 i, handles = 0;
	size_t n = 0;

	for (i = 1; i < e->nhandles; i++)
		handles += e->h[i].used;
	for (i = 0; i < sizeof(tries) / sizeof(tries[0]) && n < max; i++)
		out[n++] = (struct egress_map_fill){ bpf_map__name(tries[i]), count_keys(tries[i]),
						     bpf_map__max_entries(tries[i]) };
	if (n < max)
		out[n++] = (struct egress_map_fill){ "weir_portsets", count_used(e->set_used, e->nsets),
						     e->nsets - 1 };
	if (n < max)
		out[n++] = (struct egress_map_fill){ "weir_slots", count_used(e->slot_used, e->nslots),
						     e->nslots - 1 };
	if (n < max)
		out[n++] = (struct egress_map_fill){ "weir_handles", handles, e->nhandles - 1 };
	return n;
}

static __u64 fd_memlock(int fd)
{
	char path[64], line[128];
	__u64 sum = 0, v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", (unsigned long long *)&v) == 1)
			sum += v;
	fclose(f);
	return sum;
}

__u64 egress_map_bytes(const struct egress *e)
{
	int outer = bpf_map__fd(e->skel->maps.weir_ranges4), fd;
	struct bpf_map *m;
	__u64 sum = 0;
	__u32 i, id;

	bpf_object__for_each_map(m, e->skel->obj)
		sum += fd_memlock(bpf_map__fd(m));
	/* The interval arrays of big policies are maps of their own. */
	for (i = 0; i < e->nslots; i++) {
		if (bpf_map_lookup_elem(outer, &i, &id))
			continue;
		fd = bpf_map_get_fd_by_id(id);
		if (fd >= 0) {
			sum += fd_memlock(fd);
			close(fd);
		}
	}
	return sum;
}

/* The maps' pins, once nothing of this egress is attached any more. */
static void unpin_maps(struct egress *e)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, e->skel->obj)
		if (bpf_map__is_pinned(m))
			bpf_map__unpin(m, NULL);
	rmdir(e->map_dir);
}

/* Free what this process holds; detach: every link too (and the maps'
 * pins), else only the links no pin keeps. */
static void egress_free(struct egress *e, bool detach)
{
	__u32 i;
	int j;

	if (!e)
		return;
	for (i = 0; e->h && i < e->nhandles; i++) {
		struct handle *h = &e->h[i];

		if (detach)
			handle_detach_links(h);
		for (j = 0; j < NPROGS; j++)
			bpf_link__destroy(h->links[j]);
		if (h->gen.live) {
			free(h->gen.sets);
			compiled_free(&h->gen.c);
		}
		free(h->pin_dir);
	}
	core_btf_release(&e->core);
	for (j = 0; j < NPROGS; j++)
		bpf_link__destroy(e->keys[j]);
	for (j = 0; j < NLSM; j++) {
		if (detach && e->lsm[j] && bpf_link__pin_path(e->lsm[j]))
			bpf_link__unpin(e->lsm[j]);
		bpf_link__destroy(e->lsm[j]);
	}
	if (detach && e->skel && e->map_dir)
		unpin_maps(e);
	egress_bpf__destroy(e->skel);
	egress_bpf__destroy(e->half);
	free(e->map_dir);
	free(e->h);
	free(e->slot_used);
	free(e->set_used);
	free(e);
}

void egress_destroy(struct egress *e)
{
	egress_free(e, true);
}

void egress_close(struct egress *e)
{
	egress_free(e, false);
}

/* --- pinned maps, and a restarted daemon taking over -------------------- */

/*
 * Maps pinned by a weir whose layout differs (WEIR_MAP_ABI) are refused:
 * its programs would read our values, or ours its. There is no conversion:
 * the attachments made with them stay enforced by the programs that made
 * them until they are detached (their pins removed), then a new layout can
 * be pinned in their place.
 */
static int check_abi(const char *dir)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), have = 0;
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/weir_abi", dir);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (!bpf_obj_get_info_by_fd(fd, &info, &len))
			have = info.max_entries;
		close(fd);
		if (have == WEIR_MAP_ABI)
			return 0;
	} else {
		snprintf(path, sizeof(path), "%s/weir_attach", dir);
		if (access(path, F_OK))
			return 0; /* nothing pinned yet */
	}
	pr_warn("the maps pinned in %s have another layout (version %u; this weir's is %u): "
		"not reusing them. Nothing was changed: the attachments pinned with them stay "
		"enforced as they are; detach them with the weir that made them (or remove "
		"their pins) first\n",
		dir, have, WEIR_MAP_ABI);
	return -EPROTO;
}

/* Pin every map in PIN_ROOT/maps; libbpf reuses those already there (and
 * refuses one of another type, key, value, size or flags). */
static int pin_maps(struct egress *e, const char *root)
{
	char path[4096];
	struct bpf_map *m;
	int err;

	if (asprintf(&e->map_dir, "%s/maps", root) < 0) {
		e->map_dir = NULL;
		return -ENOMEM;
	}
	if ((mkdir(root, 0700) && errno != EEXIST) || (mkdir(e->map_dir, 0700) && errno != EEXIST)) {
		err = -errno;
		pr_warn("cannot make %s: %s\n", e->map_dir, strerror(-err));
		return err;
	}
	err = check_abi(e->map_dir);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/weir_attach", e->map_dir);
	e->reused = !access(path, F_OK);
	bpf_object__for_each_map(m, e->skel->obj) {
		if (bpf_map__is_internal(m)) /* .rodata, .bss: this process's own */
			continue;
		snprintf(path, sizeof(path), "%s/%s", e->map_dir, bpf_map__name(m));
		err = bpf_map__set_pin_path(m, path);
		if (err)
			return err;
	}
	return 0;
}

/* Entries of slots no handle points at (a reload cut short) deleted; the
 * port sets of the others taken. */
static int sweep_trie(struct egress *e, int fd, size_t ksize, const __u8 *live)
{
	struct weir_lpm_val v;
	size_t i, n;
	char *keys;
	int err;

	err = trie_keys(fd, ksize, &keys, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		char *k = keys + i * ksize;
		/* The inbound entries of a slot live and die with it. */
		__u32 slot = ((struct key_head *)k)->slot & ~WEIR_SLOT_INBOUND;

		if (slot >= e->nslots || !live[slot])
			bpf_map_delete_elem(fd, k);
		else if (!bpf_map_lookup_elem(fd, k, &v))
			sets_mark(e, &v, 1);
	}
	free(keys);
	return 0;
}

/* Handles some cgroup's storage names (attached, with a policy or not
 * yet): taken, or the next cgroup given one would share its policy. */
static int storage_handles(struct egress *e)
{
	int fd = bpf_map__fd(e->skel->maps.weir_attach);
	__u64 key, prev = 0;
	struct weir_attach a;
	bool first = true;

	while (!bpf_map_get_next_key(fd, first ? NULL : &prev, &key)) {
		first = false;
		prev = key;
		if (!bpf_map_lookup_elem(fd, &key, &a) && a.handle < e->nhandles)
			e->h[a.handle].used = true;
	}
	return errno == ENOENT ? 0 : -errno;
}

/*
 * Maps reused from a weir that is gone: which handles, slots and port sets
 * are taken, from the cgroups' storage, weir_handles and the tries
 * themselves. Every handle found stays taken until it is adopted or
 * detached. The generation counter goes on from the highest found, so that
 * no socket's cached verdict is taken for one of a later policy.
 */
static int rebuild(struct egress *e)
{
	int fdh = bpf_map__fd(e->skel->maps.weir_handles);
	int fds = bpf_map__fd(e->skel->maps.weir_slots);
	struct weir_slot v, none = {};
	__u8 *live = calloc(e->nslots, 1);
	__u32 i, slot;
	int err = 0;

	if (!live)
		return -ENOMEM;
	for (i = 1; !err && i < e->nhandles; i++) {
		if (bpf_map_lookup_elem(fdh, &i, &slot)) {
			err = -errno;
			break;
		}
		if (!slot || slot >= e->nslots)
			continue;
		e->h[i].used = true;
		e->h[i].gen = (struct generation){ .live = true, .found = true, .slot = slot };
		live[slot] = e->slot_used[slot] = 1;
	}
	for (i = 1; !err && i < e->nslots; i++) {
		if (bpf_map_lookup_elem(fds, &i, &v)) {
			err = -errno;
			break;
		}
		if (v.gen > e->policy_gen)
			e->policy_gen = v.gen;
		if (!live[i] && v.flags)
			bpf_map_update_elem(fds, &i, &none, BPF_ANY);
		/* A big policy's intervals: the sets of a live one taken, the
		 * array of a dead one dropped. */
		if (live[i])
			ranges_sets_mark(e, i, 1);
		else
			bpf_map_delete_elem(bpf_map__fd(e->skel->maps.weir_ranges4), &i);
	}
	err = err ?: storage_handles(e);
	err = err ?: sweep_trie(e, bpf_map__fd(e->skel->maps.weir_lpm4), sizeof(struct weir_key4),
				live);
	err = err ?: sweep_trie(e, bpf_map__fd(e->skel->maps.weir_lpm6), sizeof(struct weir_key6),
				live);
	free(live);
	return err;
}

static __u32 fd_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* Does program PROG_ID use map MAP_ID? */
static bool prog_uses_map(__u32 prog_id, __u32 map_id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[64], i;
	bool found = false;
	int fd;

	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return false;
	info.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
	info.map_ids = (__u64)(unsigned long)ids;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		for (i = 0; i < info.nr_map_ids && i < sizeof(ids) / sizeof(ids[0]); i++)
			found |= ids[i] == map_id;
	close(fd);
	return found;
}

/*
 * A pinned link we may take over: a cgroup link of that cgroup, of the
 * program's attach type, whose program reads OUR weir_attach map. The
 * kernel keeps a link's cgroup storage across bpf_link_update (it is the
 * old program's map's): a program of other maps would read it as ours.
 */
static int check_link(struct bpf_link *l, const struct bpf_program *prog, __u64 cgroup_id,
		      __u32 attach_map_id, const char *path)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_link__fd(l), &info, &len))
		return -errno;
	if (info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != cgroup_id ||
	    info.cgroup.attach_type != bpf_program__expected_attach_type(prog)) {
		pr_warn("%s is not a link of this cgroup's %s program\n", path,
			bpf_program__name(prog));
		return -EINVAL;
	}
	if (!prog_uses_map(info.prog_id, attach_map_id)) {
		pr_warn("%s runs a program of other maps than those pinned in the pin root: not "
			"taking it over (it stays as it is)\n",
			path);
		return -EINVAL;
	}
	return 0;
}

/* Which handle the cgroup's storage names: taken for this egress. */
static int adopt_handle(struct egress *e, __u64 cgroup_id, struct weir_attach *a)
{
	int err;

	if (a->handle >= e->nhandles) {
		pr_warn("cgroup %llu names handle %u, beyond this weir's %u\n",
			(unsigned long long)cgroup_id, a->handle, e->nhandles);
		return -ERANGE;
	}
	if (!a->handle) { /* attached, never given a handle: give one now */
		err = egress_handle_alloc(e, &a->handle);
		err = err ?: write_storage_raw(e, cgroup_id, a);
		return err;
	}
	if (e->h[a->handle].cgroup_id) {
		pr_warn("cgroup %llu and %llu both name handle %u\n", (unsigned long long)cgroup_id,
			(unsigned long long)e->h[a->handle].cgroup_id, a->handle);
		return -EEXIST;
	}
	e->h[a->handle].used = true;
	return 0;
}

int egress_adopt(struct egress *e, int cgroup_fd, const char *pin_dir, __u32 *handle,
		 struct egress_attach_cfg *cfg)
{
	int fda = bpf_map__fd(e->skel->maps.weir_attach);
	struct bpf_link *links[NPROGS] = {};
	struct bpf_program *progs[NPROGS];
	struct weir_attach a;
	char path[4096];
	__u64 id = 0;
	struct handle *h;
	int i, err;

	err = cgroup_fd_id(cgroup_fd, &id);
	if (err)
		return err;
	for (i = 1; i < (int)e->nhandles; i++)
		if (e->h[i].cgroup_id == id)
			return -EEXIST;
	if (bpf_map_lookup_elem(fda, &id, &a)) {
		err = -errno;
		pr_warn("cgroup %llu has no weir_attach storage in %s: no program of these maps "
			"is attached to it\n",
			(unsigned long long)id, e->map_dir ? e->map_dir : "this weir's maps");
		return err;
	}
	/* Check every pinned link before changing any. */
	programs(e, progs);
	for (i = 0; i < NPROGS; i++) {
		if (!bpf_program__autoload(progs[i]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_program__name(progs[i]));
		if (access(path, F_OK) && errno == ENOENT)
			continue; /* a program the weir that attached did not have */
		links[i] = bpf_link__open(path);
		err = links[i] ? check_link(links[i], progs[i], id, fd_id(fda), path) : -errno;
		if (err)
			goto fail;
	}
	for (i = 0; i < NPROGS; i++) {
		if (!bpf_program__autoload(progs[i]))
			continue;
		err = links[i] ? bpf_link__update_program(links[i], progs[i])
			       : attach_one(progs[i], cgroup_fd, pin_dir, &links[i]);
		if (err) {
			pr_warn("cannot take over %s/%s: %s\n", pin_dir, bpf_program__name(progs[i]),
				strerror(-err));
			goto fail;
		}
	}
	err = adopt_handle(e, id, &a);
	if (err)
		goto fail;
	h = &e->h[a.handle];
	h->pin_dir = strdup(pin_dir);
	if (!h->pin_dir) {
		err = -ENOMEM;
		goto fail;
	}
	h->cgroup_id = id;
	memcpy(h->links, links, sizeof(links));
	*handle = a.handle;
	/* An older weir's maps had no weir_cgids: written again in any case. */
	if (cgid_set(e, id, a.handle))
		pr_warn("cgroup %llu: cannot record it in weir_cgids: attachments above it "
			"judge its processes too\n", (unsigned long long)id);
	cfg->dns_port = a.dns_port;
	cfg->dns_ip4 = a.dns_ip4;
	memcpy(cfg->dns_ip6, a.dns_ip6, sizeof(cfg->dns_ip6));
	return 0;
fail:
	/* Let go without detaching: the pins keep them, as they were. */
	for (i = 0; i < NPROGS; i++)
		bpf_link__destroy(links[i]);
	return err;
}
