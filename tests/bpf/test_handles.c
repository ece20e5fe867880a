// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2, one load serving many cgroups: the programs of ONE egress object
 * attached to several cgroups, each with its own handle and policy. Each
 * cgroup is judged by its own policy only (the cgroup storage says which),
 * a cgroup below an attached one by its ancestor's, and detaching one
 * leaves the others as they were.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "harness.h"

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
static int fa = -1, fb = -1;
static __u32 ha, hb;

static void setup(void)
{
	struct egress_opts o = { .lpm_entries = 1024, .portsets = 64, .slots = 16, .handles = 8,
				 .ringbuf_bytes = 1 << 20, .task_info = -1 };

	h_netns();
	h_start_bare(&h, &o);
	fa = h_subcgroup(&h, "a");
	fb = h_subcgroup(&h, "b");
	cr_assert_eq(egress_handle_alloc(h.eg, &ha), 0);
	cr_assert_eq(egress_handle_alloc(h.eg, &hb), 0);
	cr_assert_neq(ha, hb);
	cr_assert_eq(egress_attach_handle(h.eg, ha, fa, NULL, NULL), 0);
	cr_assert_eq(egress_attach_handle(h.eg, hb, fb, NULL, NULL), 0);
	h_apply_handle(&h, ha, policy_a);
	h_apply_handle(&h, hb, policy_b);
}

static void teardown(void)
{
	close(fa);
	close(fb);
	h_stop(&h);
}

TestSuite(handles, .init = setup, .fini = teardown, .timeout = 30);

/* A TCP connect + send from cgroup CG to ADDR:8080: the errno, and whether
 * the bytes arrived. */
static int tcp_from(const char *cg, const char *addr, bool *arrived)
{
	struct probe p = { P_TCP, AF_INET, addr, 8080, 0, cg };
	int l = h_listen_tcp(addr, 8080), ret;

	ret = h_probe(&h, &p, NULL);
	*arrived = h_tcp_got(l);
	close(l);
	return ret;
}

static void expect_allowed(const char *cg, const char *addr, __u32 handle)
{
	bool arrived;

	cr_assert_eq(tcp_from(cg, addr, &arrived), 0, "%s -> %s", cg, addr);
	cr_assert(arrived, "%s -> %s: allowed bytes did not arrive", cg, addr);
	cr_expect_eq(h_events(&h)->handle, handle, "%s -> %s: the event's handle", cg, addr);
}

static void expect_refused(const char *cg, const char *addr, __u32 handle, __u8 reason)
{
	bool arrived;

	cr_assert_eq(tcp_from(cg, addr, &arrived), EPERM, "%s -> %s", cg, addr);
	cr_assert_not(arrived, "%s -> %s: denied bytes arrived", cg, addr);
	cr_expect_eq(h_events(&h)->handle, handle, "%s -> %s: the event's handle", cg, addr);
	cr_expect_eq(h_events(&h)->reason, reason, "%s -> %s: reason %u", cg, addr,
		     h_events(&h)->reason);
}

static void expect_denied(const char *cg, const char *addr, __u32 handle)
{
	expect_refused(cg, addr, handle, WEIR_R_NO_MATCH);
}

Test(handles, two_cgroups_one_load_each_sees_only_its_own_policy)
{
	expect_allowed("a", "192.0.2.1", ha);
	expect_denied("a", "203.0.113.9", ha);
	expect_allowed("b", "203.0.113.9", hb);
	expect_denied("b", "192.0.2.1", hb);
}

Test(handles, nested_cgroup_is_judged_by_its_ancestors_policy)
{
	close(h_subcgroup(&h, "a/inner"));
	close(h_subcgroup(&h, "a/inner/deeper"));
	expect_allowed("a/inner/deeper", "192.0.2.1", ha);
	expect_denied("a/inner/deeper", "203.0.113.9", ha);
	expect_allowed("b/inner", "203.0.113.9", hb);
	expect_denied("b/inner", "192.0.2.1", hb);
}

Test(handles, counts_are_per_handle)
{
	struct weir_counts ca, cb;

	expect_allowed("a", "192.0.2.1", ha);
	expect_allowed("a", "192.0.2.1", ha);
	expect_denied("a", "203.0.113.9", ha);
	expect_denied("b", "192.0.2.1", hb);
	cr_assert_eq(egress_counts(h.eg, ha, &ca), 0);
	cr_assert_eq(egress_counts(h.eg, hb, &cb), 0);
	cr_expect_eq(ca.allow, 2);
	cr_expect_eq(ca.deny, 1);
	cr_expect_eq(cb.allow, 0);
	cr_expect_eq(cb.deny, 1);
	cr_expect_eq(ca.would_deny + ca.dns + cb.would_deny + cb.dns, 0);
	cr_expect_eq(egress_stat(h.eg, WEIR_STAT_DECISIONS), 4, "the sum of every handle's");
}

Test(handles, reload_of_one_handle_leaves_the_other)
{
	h_apply_handle(&h, ha, policy_b);
	expect_allowed("a", "203.0.113.9", ha);
	expect_denied("a", "192.0.2.1", ha);
	expect_allowed("b", "203.0.113.9", hb);
	expect_denied("b", "192.0.2.1", hb);
}

Test(handles, detach_of_one_handle_leaves_the_other_enforced)
{
	struct weir_counts c;
	bool arrived;

	expect_denied("a", "203.0.113.9", ha);
	egress_detach_handle(h.eg, ha);
	cr_expect_eq(egress_handle_cgroup(h.eg, ha), 0);
	cr_assert_eq(tcp_from("a", "203.0.113.9", &arrived), 0, "a is no longer enforced");
	cr_assert(arrived);
	expect_denied("b", "192.0.2.1", hb);
	expect_allowed("b", "203.0.113.9", hb);
	/* The freed handle comes back clean: no counts, no policy. */
	cr_assert_eq(egress_handle_alloc(h.eg, &ha), 0);
	cr_assert_eq(egress_counts(h.eg, ha, &c), 0);
	cr_expect_eq(c.allow + c.deny, 0);
	cr_assert_eq(egress_attach_handle(h.eg, ha, fa, NULL, NULL), 0);
	/* attached, no policy: fails closed */
	expect_refused("a", "192.0.2.1", ha, WEIR_R_NO_POLICY);
}

Test(handles, the_same_cgroup_twice_is_refused)
{
	__u32 hc;

	cr_assert_eq(egress_handle_alloc(h.eg, &hc), 0);
	cr_expect_eq(egress_attach_handle(h.eg, hc, fa, NULL, NULL), -EEXIST);
	cr_expect_eq(egress_attach_handle(h.eg, 0, fa, NULL, NULL), -EINVAL, "handle 0 is none");
	cr_expect_eq(egress_attach_handle(h.eg, ha, fb, NULL, NULL), -EBUSY, "attached already");
}

static __u64 boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void learn(__u32 handle, const char *addr, const struct weir_learn_val *v)
{
	struct weir_learn_key k = { .handle = handle, .family = AF_INET };

	h_addr(addr, k.addr);
	cr_assert_eq(egress_learn_set(h.eg, &k, v), 0, "learn %s for %u", addr, handle);
}

/* Addresses learned for one handle serve that handle only, and go with it:
 * the next cgroup given the same handle number does not inherit them. (The
 * fillers: more entries than one batch of the map's reading.) */
Test(handles, learned_addresses_are_per_handle_and_go_with_it)
{
	struct weir_learn_val v = { .n = 1, .domain_id = 1, .expires_ns = boot_ns() + 60000000000ULL };
	char filler[32];
	__u32 again;
	int i;

	v.r[0] = (struct weir_portrange){ .lo = 8080, .hi = 8080, .protos = WEIR_P_TCP,
					  .rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0) };
	for (i = 0; i < 3000; i++) {
		snprintf(filler, sizeof(filler), "10.%d.%d.1", i / 250, i % 250);
		learn(i % 3 ? hb : ha, filler, &v);
	}
	learn(ha, "198.51.100.8", &v);
	learn(hb, "203.0.113.5", &v);
	expect_allowed("a", "198.51.100.8", ha);
	expect_denied("b", "198.51.100.8", hb);
	egress_detach_handle(h.eg, ha);
	expect_allowed("b", "203.0.113.5", hb); /* b's stay */
	cr_assert_eq(egress_handle_alloc(h.eg, &again), 0);
	cr_assert_eq(again, ha, "the lowest free handle is given again");
	cr_assert_eq(egress_attach_handle(h.eg, again, fa, NULL, NULL), 0);
	h_apply_handle(&h, again, policy_a);
	expect_denied("a", "198.51.100.8", again);
}

/* A cgroup attached below another attached one: both policies judge it
 * (the kernel runs every program of the path, each with its own cgroup's
 * storage), and a call goes through only if both allow it. */
Test(handles, attached_below_attached_both_policies_judge)
{
	struct weir_counts ca, cc;
	int fc = h_subcgroup(&h, "a/inner");
	bool arrived;
	__u32 hc;

	cr_assert_eq(egress_handle_alloc(h.eg, &hc), 0);
	cr_assert_eq(egress_attach_handle(h.eg, hc, fc, NULL, NULL), 0);
	h_apply_handle(&h, hc, policy_b);
	close(fc);
	cr_assert_eq(tcp_from("a/inner", "192.0.2.1", &arrived), EPERM, "a allows, inner not");
	cr_assert_not(arrived);
	cr_assert_eq(tcp_from("a/inner", "203.0.113.9", &arrived), EPERM, "inner allows, a not");
	cr_assert_not(arrived);
	cr_assert_eq(egress_counts(h.eg, ha, &ca), 0);
	cr_assert_eq(egress_counts(h.eg, hc, &cc), 0);
	cr_expect(ca.allow == 1 && ca.deny == 1, "a: %llu allowed, %llu denied",
		  (unsigned long long)ca.allow, (unsigned long long)ca.deny);
	cr_expect(cc.allow == 1 && cc.deny == 1, "inner: %llu allowed, %llu denied",
		  (unsigned long long)cc.allow, (unsigned long long)cc.deny);
	expect_allowed("a", "192.0.2.1", ha);
}

static int to_parent[2], to_child[2];

/* Connected UDP to 198.51.100.8:8080: send, let the parent reload, send. */
static int revoke_child(void *arg)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(8080) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char c = 0;

	inet_pton(AF_INET, "198.51.100.8", &s.sin_addr);
	if (connect(fd, (struct sockaddr *)&s, sizeof(s)) || send(fd, "weir-probe", 10, 0) < 0)
		return errno;
	if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1)
		return 100;
	return send(fd, "weir-probe", 10, 0) < 0 ? errno : 0;
}

/*
 * The backstop lets a flow a learned address allowed outlive that address.
 * Below two attachments, that is each attachment's own say: the outer one
 * allowing by a learned address does not keep a flow the inner one's
 * reload revokes.
 */
Test(handles, a_revocation_below_is_not_undone_by_the_learned_allow_above)
{
	struct weir_learn_key k = { .handle = ha, .family = AF_INET };
	struct weir_learn_val v = { .n = 1, .domain_id = 1, .expires_ns = boot_ns() + 60000000000ULL };
	int l = h_listen_udp("198.51.100.8", 8080), fc = h_subcgroup(&h, "a/inner");
	char c;
	pid_t pid;
	__u32 hc;

	v.r[0] = (struct weir_portrange){ .lo = 8080, .hi = 8080, .protos = WEIR_P_UDP,
					  .rule = WEIR_RULE_ID(WEIR_RK_ALLOW, 0) };
	h_addr("198.51.100.8", k.addr);
	cr_assert_eq(egress_learn_set(h.eg, &k, &v), 0);
	cr_assert_eq(egress_handle_alloc(h.eg, &hc), 0);
	cr_assert_eq(egress_attach_handle(h.eg, hc, fc, NULL, NULL), 0);
	h_apply_handle(&h, hc, "version: 1\nloopback: deny\nallow:\n  - ip: 198.51.100.8\n");
	close(fc);

	cr_assert_eq(pipe(to_parent), 0);
	cr_assert_eq(pipe(to_child), 0);
	pid = h_spawn_in(&h, "a/inner", revoke_child, NULL);
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	cr_assert(h_udp_got(l), "the first datagram, allowed by both, did not arrive");
	h_apply_handle(&h, hc, policy_b);
	cr_assert_eq(write(to_child[1], "x", 1), 1);
	cr_assert_eq(h_wait(pid), EPERM, "revoked below, yet sent");
	cr_assert_not(h_udp_got(l), "a datagram arrived after the revocation");
	close(l);
}

/* The slot (and its settings) in force for HANDLE. */
static __u32 slot_of(int fdh, int fds, __u32 handle, struct weir_slot *s)
{
	__u32 slot;

	cr_assert_eq(bpf_map_lookup_elem(fdh, &handle, &slot), 0);
	cr_assert_eq(bpf_map_lookup_elem(fds, &slot, s), 0);
	return slot;
}

/* Connected UDP to 192.0.2.1:8080: send, let the parent reload, send. */
static int resend_child(void *arg)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(8080) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char c = 0;

	inet_pton(AF_INET, "192.0.2.1", &s.sin_addr);
	if (connect(fd, (struct sockaddr *)&s, sizeof(s)) || send(fd, "weir-probe", 10, 0) < 0)
		return errno;
	if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1)
		return 100;
	return send(fd, "weir-probe", 10, 0) < 0 ? errno : 0;
}

/*
 * Two attachments that both judge a socket (below each other, neither
 * OUTER) share its one cached verdict: the outer one's must never pass for
 * the inner one's, even under an equal generation (review6: the cache hit
 * compared gen, not the handle). The inner policy is reloaded to revoke the
 * destination and its generation made the outer one's, as a second loader
 * of the same maps or a wrapped counter could leave it: the next datagram
 * must still be dropped.
 */
Test(handles, a_verdict_cached_by_one_handle_never_passes_for_another)
{
	int l = h_listen_udp("192.0.2.1", 8080), fc = h_subcgroup(&h, "a/inner"), fdh, fds;
	struct weir_slot sa, sc;
	__u32 hc, slot_c;
	pid_t pid;
	char c;

	cr_assert_eq(egress_handle_alloc(h.eg, &hc), 0);
	cr_assert_eq(egress_attach_handle(h.eg, hc, fc, NULL, NULL), 0);
	h_apply_handle(&h, hc, "version: 1\nloopback: deny\nallow:\n  - ip: 192.0.2.1\n");
	fdh = h_cgroup_map_fd(fc, "weir_handles");
	fds = h_cgroup_map_fd(fc, "weir_slots");
	close(fc);

	cr_assert_eq(pipe(to_parent), 0);
	cr_assert_eq(pipe(to_child), 0);
	pid = h_spawn_in(&h, "a/inner", resend_child, NULL);
	cr_assert_eq(read(to_parent[0], &c, 1), 1);
	cr_assert(h_udp_got(l), "the first datagram, allowed by both, did not arrive");
	h_apply_handle(&h, hc, policy_b);
	slot_of(fdh, fds, ha, &sa);
	slot_c = slot_of(fdh, fds, hc, &sc);
	cr_assert_neq(sa.gen, sc.gen);
	sc.gen = sa.gen;
	cr_assert_eq(bpf_map_update_elem(fds, &slot_c, &sc, BPF_ANY), 0);
	cr_assert_eq(write(to_child[1], "x", 1), 1);
	cr_assert_eq(h_wait(pid), EPERM, "revoked below, yet sent on the outer's verdict");
	cr_assert_not(h_udp_got(l), "a datagram arrived after the revocation");
	close(fdh);
	close(fds);
	close(l);
}
