// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2, pinned state and a restarted daemon: maps pinned in a pin root
 * of the test's own (a fresh directory of bpffs), links pinned per
 * attachment. Closing the egress without detaching is what kill -9 does:
 * the cgroup stays enforced while no process holds anything; a new egress
 * opened on the same pin root reuses the maps and adopts the links, and
 * the policy, the counters and the events go on.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "harness.h"
#include "pins.h"

static const char *const policy_a =
	"version: 1\n"
	"loopback: deny\n"
	"allow:\n"
	"  - ip: 192.0.2.1\n"
	"    ports: [8080]\n";

static const char *const policy_b =
	"version: 1\n"
	"loopback: deny\n"
	"allow:\n"
	"  - ip: 203.0.113.9\n"
	"    ports: [8080]\n";

static struct harness h;
static struct egress_opts opts = { .lpm_entries = 1024, .portsets = 64, .slots = 16,
				   .handles = 8, .ringbuf_bytes = 1 << 20, .task_info = -1 };
static char root[300], pin_a[320];
static int fa = -1;
static __u32 ha;

static void setup(void)
{
	char mnt[200];

	h_netns();
	cr_assert_eq(pins_bpffs(mnt, sizeof(mnt)), 0);
	snprintf(root, sizeof(root), "%s/weir-test-XXXXXX", mnt);
	cr_assert_not_null(mkdtemp(root), "mkdtemp in bpffs: %s", strerror(errno));
	opts.pin_root = root;
	snprintf(pin_a, sizeof(pin_a), "%s/att-a", root);
	cr_assert_eq(mkdir(pin_a, 0700), 0);
	h_start_bare(&h, &opts);
	fa = h_subcgroup(&h, "a");
	cr_assert_eq(egress_handle_alloc(h.eg, &ha), 0);
	cr_assert_eq(egress_attach_handle(h.eg, ha, fa, NULL, pin_a), 0);
	h_apply_handle(&h, ha, policy_a);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* The egress (if any) detaches and unpins what it holds; the pins left
 * (a killed egress's) go with the pin root: unpinning what no process
 * holds detaches it. */
static void teardown(void)
{
	close(fa);
	h_stop(&h);
	if (root[0])
		nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	root[0] = '\0';
}

TestSuite(adopt, .init = setup, .fini = teardown, .timeout = 30);

static int tcp_from(const char *cg, const char *addr, bool *arrived)
{
	struct probe p = { P_TCP, AF_INET, addr, 8080, 0, cg };
	int l = h_listen_tcp(addr, 8080), ret;

	ret = h_probe(&h, &p, NULL);
	*arrived = h_tcp_got(l);
	close(l);
	return ret;
}

/* Enforced by policy_a (or b), whether anyone reads events or not. */
static void expect_policy(const char *allowed, const char *denied)
{
	bool arrived;

	cr_assert_eq(tcp_from("a", allowed, &arrived), 0, "%s", allowed);
	cr_assert(arrived, "%s: allowed bytes did not arrive", allowed);
	cr_assert_eq(tcp_from("a", denied, &arrived), EPERM, "%s", denied);
	cr_assert_not(arrived, "%s: denied bytes arrived", denied);
}

/* What kill -9 leaves: nothing held by any process but the pins. */
static void kill9(void)
{
	ring_buffer__free(h.rb);
	egress_close(h.eg);
	h.rb = NULL;
	h.eg = NULL;
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct harness *hh = ctx;

	if (hh->nev < H_MAX_EVENTS && len >= sizeof(struct weir_event))
		memcpy(&hh->ev[hh->nev++], data, sizeof(struct weir_event));
	return 0;
}

static void reopen(void)
{
	cr_assert_eq(egress_open(&opts, &h.eg), 0, "egress_open on the pinned maps");
	h.nev = 0;
	h.rb = ring_buffer__new(egress_events_fd(h.eg), on_event, &h, NULL);
	cr_assert_not_null(h.rb);
}

static __u32 pinned_prog_id(const char *name)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_a, name);
	fd = bpf_obj_get(path);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	return info.prog_id;
}

static bool prog_gone(__u32 id)
{
	struct timespec ts = { 0, 20 * 1000000 };
	int i, fd;

	for (i = 0; i < 100; i++) {
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0 && errno == ENOENT)
			return true;
		if (fd >= 0)
			close(fd);
		nanosleep(&ts, NULL);
	}
	return false;
}

/* Keys of the pinned IPv4 trie, and how many policy slots they span (a
 * slot's inbound entries, under slot | WEIR_SLOT_INBOUND, are its own). */
static int trie_slots_in(int *nkeys, int *ninbound)
{
	struct { __u32 prefixlen, slot; __u8 addr[4]; } k, prev;
	__u32 slots[16], slot;
	char path[400];
	int fd, n = 0, i;
	bool first = true;

	*nkeys = *ninbound = 0;
	snprintf(path, sizeof(path), "%s/maps/weir_lpm4", root);
	fd = bpf_obj_get(path);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	while (!bpf_map_get_next_key(fd, first ? NULL : &prev, &k)) {
		first = false;
		prev = k;
		(*nkeys)++;
		*ninbound += !!(k.slot & WEIR_SLOT_INBOUND);
		slot = k.slot & ~WEIR_SLOT_INBOUND;
		for (i = 0; i < n && slots[i] != slot; i++)
			;
		if (i == n && n < 16)
			slots[n++] = slot;
	}
	close(fd);
	return n;
}

static int trie_slots(int *nkeys)
{
	int nin;

	return trie_slots_in(nkeys, &nin);
}

Test(adopt, kill9_keeps_enforcing_and_a_new_egress_adopts_policy_counts_and_events)
{
	struct egress_attach_cfg cfg = { .dns_port = 1 };
	struct weir_counts c;
	__u32 old = pinned_prog_id("weir_connect4"), got = 0;
	char path[400];
	int nkeys, fb;

	expect_policy("192.0.2.1", "203.0.113.9");
	kill9();
	/* No process holds the programs or the maps: the pins do. */
	expect_policy("192.0.2.1", "203.0.113.9");
	/* A program this weir has and the one that attached did not. */
	snprintf(path, sizeof(path), "%s/weir_getpeer4", pin_a);
	cr_assert_eq(unlink(path), 0);

	reopen();
	fb = h_subcgroup(&h, "b");
	cr_expect_lt(egress_adopt(h.eg, fb, pin_a, &got, &cfg), 0, "pins of another cgroup");
	close(fb);
	cr_assert_eq(egress_adopt(h.eg, fa, pin_a, &got, &cfg), 0);
	cr_expect_eq(got, ha, "the handle the cgroup's storage names");
	cr_expect_eq(cfg.dns_port, 0, "no resolver was given");
	cr_expect_eq(access(path, F_OK), 0, "the missing link was attached and pinned");
	cr_expect_neq(pinned_prog_id("weir_connect4"), old, "the link runs this egress's program");
	cr_expect(prog_gone(old), "the old program is freed: no link runs it any more");

	expect_policy("192.0.2.1", "203.0.113.9");
	cr_assert_not_null(h_events(&h));
	cr_expect_eq(h_events(&h)->handle, ha, "events reach the new reader");
	cr_assert_eq(egress_counts(h.eg, ha, &c), 0);
	cr_expect_eq(c.allow, 3, "counts go on across the restart");
	cr_expect_eq(c.deny, 3);

	/* A new policy through the adopted handle; the old one's entries go. */
	h_apply_handle(&h, ha, policy_b);
	expect_policy("203.0.113.9", "192.0.2.1");
	cr_expect_eq(trie_slots(&nkeys), 1, "entries of one slot only");
	cr_expect_gt(nkeys, 0);
}

static int raw_socket(void *arg)
{
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/*
 * Between the links' creation and weir writing the storage, the cgroup's
 * weir_attach is zero: handle 0. egress_attach_handle() writes it right
 * after the first link, so the test writes zero itself through the pinned
 * map: every call is refused, with no policy as the reason.
 */
Test(adopt, storage_still_zero_fails_closed)
{
	struct weir_attach zero = {};
	char path[400];
	struct stat st;
	bool arrived;
	int fd;

	snprintf(path, sizeof(path), "%s/maps/weir_attach", root);
	fd = bpf_obj_get(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fa, &st), 0);
	cr_assert_eq(bpf_map_update_elem(fd, &st.st_ino, &zero, BPF_ANY), 0);
	close(fd);
	cr_assert_eq(tcp_from("a", "192.0.2.1", &arrived), EPERM, "allowed by the policy, but");
	cr_assert_not(arrived);
	cr_expect_eq(h_events(&h)->handle, 0);
	cr_expect_eq(h_events(&h)->reason, WEIR_R_NO_POLICY);
	cr_expect_eq(h_wait(h_spawn_in(&h, "a", raw_socket, NULL)), EPERM, "raw sockets too");
}

static void pin_abi(unsigned int version)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/maps/weir_abi", root);
	cr_assert_eq(unlink(path), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "weir_abi", 4, 4, version, NULL);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bpf_obj_pin(fd, path), 0);
	close(fd);
}

/* A weir whose maps differ (another size; another layout) refuses to start
 * on them, and detaches or unpins nothing. */
Test(adopt, incompatible_pinned_maps_are_refused_and_nothing_is_detached)
{
	struct egress_attach_cfg cfg;
	struct egress_opts other = opts;
	struct egress *e = NULL;
	char path[400];
	__u32 got;

	snprintf(path, sizeof(path), "%s/maps/weir_attach", root);
	kill9();
	other.handles = 16;
	cr_assert_lt(egress_open(&other, &e), 0, "other sizes");
	cr_assert_null(e);
	expect_policy("192.0.2.1", "203.0.113.9");
	cr_assert_eq(access(path, F_OK), 0, "the maps stay pinned");

	pin_abi(WEIR_MAP_ABI + 1);
	cr_assert_eq(egress_open(&opts, &e), -EPROTO, "another layout");
	expect_policy("192.0.2.1", "203.0.113.9");
	cr_assert_eq(access(path, F_OK), 0, "the maps stay pinned");

	pin_abi(WEIR_MAP_ABI); /* the weir of that layout takes them over */
	reopen();
	cr_assert_eq(egress_adopt(h.eg, fa, pin_a, &got, &cfg), 0);
	expect_policy("192.0.2.1", "203.0.113.9");
}

/*
 * A handle found in the pinned maps that no one adopts (its cgroup went
 * while the daemon was down, and its pins with it) stays taken, so it is
 * never given to another cgroup with its policy still there, until it is
 * detached: then its policy's entries go.
 */
Test(adopt, handles_found_but_not_adopted_stay_taken_until_detached)
{
	struct egress_attach_cfg cfg;
	char pin_b[340], pin_c[340];
	__u32 hb, hc, got, next;
	int fb, fc, nkeys;

	snprintf(pin_b, sizeof(pin_b), "%s/att-b", root);
	cr_assert_eq(mkdir(pin_b, 0700), 0);
	fb = h_subcgroup(&h, "b");
	cr_assert_eq(egress_handle_alloc(h.eg, &hb), 0);
	cr_assert_eq(egress_attach_handle(h.eg, hb, fb, NULL, pin_b), 0);
	h_apply_handle(&h, hb, policy_b);
	close(fb);
	/* And one attached, given no policy yet: named by its storage only. */
	snprintf(pin_c, sizeof(pin_c), "%s/att-c", root);
	cr_assert_eq(mkdir(pin_c, 0700), 0);
	fc = h_subcgroup(&h, "c");
	cr_assert_eq(egress_handle_alloc(h.eg, &hc), 0);
	cr_assert_eq(egress_attach_handle(h.eg, hc, fc, NULL, pin_c), 0);
	close(fc);
	cr_assert_eq(trie_slots(&nkeys), 2);
	kill9();
	cr_assert_eq(nftw(pin_b, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);

	reopen();
	cr_assert_eq(egress_adopt(h.eg, fa, pin_a, &got, &cfg), 0);
	cr_assert_eq(egress_handle_alloc(h.eg, &next), 0);
	cr_expect_neq(next, hb, "a handle with a policy in the maps is not given again");
	cr_expect_neq(next, ha);
	cr_expect_neq(next, hc, "nor one a cgroup's storage names");
	cr_expect_eq(trie_slots(&nkeys), 2, "its policy is still there");
	egress_detach_handle(h.eg, hb);
	cr_expect_eq(trie_slots(&nkeys), 1, "detached: its policy's entries are gone");
	expect_policy("192.0.2.1", "203.0.113.9");
}

/* Entries of a slot no handle points at (a reload cut short by kill -9:
 * written, never flipped to) are deleted when the maps are reused. */
Test(adopt, entries_of_a_reload_cut_short_are_swept)
{
	struct { __u32 prefixlen, slot; __u8 addr[4]; } k = { 64, 9, { 198, 51, 100, 8 } };
	struct weir_lpm_val v = {};
	struct egress_attach_cfg cfg;
	char path[400];
	int fd, nkeys, nin;
	__u32 got;

	kill9();
	snprintf(path, sizeof(path), "%s/maps/weir_lpm4", root);
	fd = bpf_obj_get(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
	close(fd);
	cr_assert_eq(trie_slots(&nkeys), 2);
	reopen();
	cr_expect_eq(trie_slots_in(&nkeys, &nin), 1);
	cr_expect_eq(nin, 1, "the live policy's inbound entry (127.0.0.0/8) is kept");
	cr_assert_eq(egress_adopt(h.eg, fa, pin_a, &got, &cfg), 0);
	expect_policy("192.0.2.1", "203.0.113.9");
}
