// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * callbench: what weir costs per call, next to no enforcement, an empty BPF
 * program on the same hooks, iptables+ipset and nftables, all in one run.
 *
 *   callbench [--quick] RESULTS.json      (root, inside bench/run.sh's namespace)
 *   callbench [--quick] --cgroups RESULTS.json NAME=CGROUP...
 *
 * A child process sits in a cgroup of its own and makes the calls; the
 * parent switches what guards that cgroup between measurements. Every
 * repetition measures every configuration, in a shuffled order, and the
 * ratios compare with the baseline of the same repetition.
 *
 * With --cgroups the configurations are cgroups someone else guards (weir
 * daemons, bench/daemon.sh): the parent moves the child into each in turn
 * (its sockets are made afterwards, so they belong there); the first is the
 * baseline, and every later one is also compared with the second.
 *
 * Addresses (set up by bench/run.sh on lo, in a private namespace):
 * 192.0.2.10 (a /32 rule), 198.18.0.0/15 (routed locally: a short-prefix
 * rule, 4096 distinct destinations in it), 203.0.113.66 (denied).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "compile.h"
#include "egress.h"
#include "log.h"

#define UDP_PORT 9000
#define TCP_PORT 9001
#define NDEST 4096
#define SIZES 3

enum op { OP_UDP_CONNECT, OP_SENDTO, OP_TCP_CONNECT, OP_SEND, OP_DENY, NOPS };
static const char *const op_names[NOPS] = { "udp connect()", "udp sendto()", "tcp connect()",
					    "udp send() connected", "deny path (sendto)" };
static const char *const op_keys[NOPS] = { "udp_connect", "udp_sendto", "tcp_connect",
					   "udp_send", "deny_sendto" };

enum cfg { C_BASE, C_EMPTY, C_WEIR, C_IPSET = C_WEIR + SIZES, C_NFT = C_IPSET + SIZES,
	   NCFG = C_NFT + SIZES };

struct result {
	double median, p99, p999; /* ns */
};

static int quick, reps, calls[NOPS];
static size_t sizes[SIZES] = { 10, 10000, 1000000 };
static char cgpath[CGROUP_PATH_MAX], cgmnt[CGROUP_PATH_MAX];
static int cgfd;
static struct egress *weir[SIZES];
static int empty_links[5] = { -1, -1, -1, -1, -1 };
static bool have_ipset, have_nft;
static struct result res[16][NCFG][NOPS]; /* [rep][cfg][op] */
static int ncfg = NCFG;
static char **cg_names, **cg_paths; /* --cgroups: NAME=CGROUP, in order */
static pid_t child;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static const char *cfg_name(int c, char *buf, size_t len)
{
	if (cg_names)
		return cg_names[c];
	if (c == C_BASE)
		return "no enforcement";
	if (c == C_EMPTY)
		return "empty BPF program";
	snprintf(buf, len, "%s, %zu rules",
		 c < C_IPSET ? "weir" : c < C_NFT ? "iptables+ipset" : "nftables",
		 sizes[(c - C_WEIR) % SIZES]);
	return buf;
}

/* --- rules: deterministic, a mix of prefix lengths ------------------------ */

static __u32 rng_state = 0x9e3779b9;

static __u32 rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Prefixes that must not cover the benchmark's own addresses. */
static bool overlaps_ours(__u32 a, int plen)
{
	static const struct {
		__u32 net;
		int plen;
	} ours[] = { { 0x7f000000, 8 }, { 0xc0000200, 24 }, { 0xc6120000, 15 },
		     { 0xcb007100, 24 } };
	size_t i;

	for (i = 0; i < 4; i++) {
		int p = plen < ours[i].plen ? plen : ours[i].plen;
		__u32 m = p ? 0xffffffffu << (32 - p) : 0;

		if ((a & m) == (ours[i].net & m))
			return true;
	}
	return false;
}

/* rules[0] 192.0.2.10/32, rules[1] 198.18.0.0/15, the rest random. */
static __u32 *gen_rules(size_t n, __u8 **plens)
{
	static const int lens[] = { 8, 12, 16, 20, 24, 24, 28, 32, 32, 32 };
	__u32 *a = calloc(n, sizeof(*a));
	size_t i = 2;

	*plens = calloc(n, 1);
	a[0] = 0xc000020a;
	(*plens)[0] = 32;
	a[1] = 0xc6120000;
	(*plens)[1] = 15;
	rng_state = 0x9e3779b9;
	while (i < n) {
		int p = lens[rng() % 10];
		__u32 v = rng() & (0xffffffffu << (32 - p));

		if (overlaps_ours(v, p))
			continue;
		a[i] = v;
		(*plens)[i++] = p;
	}
	return a;
}

/* --- configurations --------------------------------------------------------- */

static int load_weir(int k, double *load_ms, double *reload_ms, __u64 *bytes)
{
	struct egress_opts o = { .lpm_entries = sizes[k] * 2 + 64, .portsets = 16, .slots = 4,
				 .ringbuf_bytes = 1 << 22, .task_info = -1 };
	struct crules cr = {};
	char err[COMPILE_ERR_LEN];
	struct compiled c;
	__u8 *pl;
	__u32 *a = gen_rules(sizes[k], &pl);
	double t0;
	size_t i;
	int ret;

	for (i = 0; i < sizes[k]; i++) {
		struct crule r = { .family = AF_INET, .plen = pl[i], .protos = WEIR_P_ANY,
				   .rule = WEIR_RULE_ID(WEIR_RK_ALLOW, i) };
		__u32 be = htonl(a[i]);

		memcpy(r.addr, &be, 4);
		crules_add(&cr, &r);
	}
	free(a);
	free(pl);
	ret = egress_open(&o, &weir[k]);
	if (ret)
		return ret;
	t0 = now_ns();
	ret = compile_flatten(&cr, false, &c, err) ?: egress_apply(weir[k], &c);
	*load_ms = (now_ns() - t0) / 1e6;
	t0 = now_ns();
	if (!ret && sizes[k] <= 10000)
		ret = egress_apply(weir[k], &c); /* a reload: write a new slot, flip */
	*reload_ms = sizes[k] <= 10000 ? (now_ns() - t0) / 1e6 : 0;
	*bytes = egress_map_bytes(weir[k]);
	compiled_free(&c);
	crules_free(&cr);
	return ret;
}

static void write_netfilter_files(int k)
{
	char path[64];
	__u8 *pl;
	__u32 *a = gen_rules(sizes[k], &pl);
	FILE *fi, *fn;
	size_t i;

	snprintf(path, sizeof(path), "/tmp/weirbench-ipset-%d", k);
	fi = fopen(path, "we");
	snprintf(path, sizeof(path), "/tmp/weirbench-nft-%d", k);
	fn = fopen(path, "we");
	fprintf(fi, "create wb%d hash:net family inet hashsize 65536 maxelem %zu\n", k,
		sizes[k] * 2);
	fprintf(fn, "add table inet weirbench\nadd set inet weirbench a%d "
		    "{ type ipv4_addr; flags interval; auto-merge; }\n", k);
	fprintf(fn, "add element inet weirbench a%d {", k);
	for (i = 0; i < sizes[k]; i++) {
		fprintf(fi, "add wb%d %u.%u.%u.%u/%u\n", k, a[i] >> 24, (a[i] >> 16) & 255,
			(a[i] >> 8) & 255, a[i] & 255, pl[i]);
		fprintf(fn, "%s%u.%u.%u.%u/%u", i % 10000 ? "," : " ", a[i] >> 24,
			(a[i] >> 16) & 255, (a[i] >> 8) & 255, a[i] & 255, pl[i]);
		if (i % 10000 == 9999 && i + 1 < sizes[k])
			fprintf(fn, " }\nadd element inet weirbench a%d {", k);
	}
	fprintf(fn, " }\n");
	fclose(fi);
	fclose(fn);
	free(a);
	free(pl);
}

static double run_timed(const char *cmd)
{
	double t0 = now_ns();

	if (system(cmd)) {
		fprintf(stderr, "callbench: failed: %s (see /tmp/weirbench-err)\n", cmd);
		return -1;
	}
	return (now_ns() - t0) / 1e6;
}

static int empty_attach(void)
{
	static const enum bpf_attach_type types[5] = {
		BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP4_SENDMSG,
		BPF_CGROUP_UDP6_SENDMSG, BPF_CGROUP_INET_EGRESS,
	};
	struct bpf_insn ret1[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int i, prog;

	for (i = 0; i < 5; i++) {
		LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = types[i]);

		prog = bpf_prog_load(i == 4 ? BPF_PROG_TYPE_CGROUP_SKB : BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
				     NULL, "GPL", ret1, 2, &o);
		if (prog < 0)
			return -errno;
		empty_links[i] = bpf_link_create(prog, cgfd, types[i], NULL);
		close(prog);
		if (empty_links[i] < 0)
			return -errno;
	}
	return 0;
}

static void empty_detach(void)
{
	int i;

	for (i = 0; i < 5; i++) {
		if (empty_links[i] >= 0)
			close(empty_links[i]);
		empty_links[i] = -1;
	}
}

/* A netfilter configuration whose tool is missing. */
static bool cfg_skip(int c)
{
	if (cg_names)
		return false;
	return (c >= C_IPSET && c < C_NFT && !have_ipset) || (c >= C_NFT && !have_nft);
}

/* --cgroups: the child's next sockets belong to cgroup c. */
static int move_child(int c)
{
	char p[CGROUP_PATH_MAX + 32];
	int fd, n, ret = 0;

	snprintf(p, sizeof(p), "%s/cgroup.procs", cg_paths[c]);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = dprintf(fd, "%d", child);
	if (n <= 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int guard(int c, bool on)
{
	char cmd[256];
	int k = (c - C_WEIR) % SIZES;

	if (cg_names)
		return on ? move_child(c) : 0;
	if (c == C_BASE)
		return 0;
	if (c == C_EMPTY) {
		if (on)
			return empty_attach();
		empty_detach();
		return 0;
	}
	if (c < C_IPSET) {
		if (on)
			return egress_attach(weir[k], cgfd, NULL);
		egress_detach(weir[k]);
		return 0;
	}
	if (c < C_NFT) {
		if (!on)
			return system("iptables -w -F WEIRBENCH");
		snprintf(cmd, sizeof(cmd),
			 "iptables -w -A WEIRBENCH -m set --match-set wb%d dst -j ACCEPT && "
			 "iptables -w -A WEIRBENCH -j DROP", k);
		return system(cmd);
	}
	if (!on)
		return system("nft flush chain inet weirbench out");
	snprintf(cmd, sizeof(cmd),
		 "nft add rule inet weirbench out ip daddr @a%d accept && "
		 "nft add rule inet weirbench out ip protocol '{ tcp, udp }' drop", k);
	return system(cmd);
}

/* --- an event consumer, as weir run has one ----------------------------------- */

static int drop_event(void *ctx, void *data, size_t len)
{
	return 0;
}

static void *consumer(void *arg)
{
	struct ring_buffer *rb[SIZES] = {};
	int k;

	for (k = 0; k < SIZES; k++)
		rb[k] = ring_buffer__new(egress_events_fd(weir[k]), drop_event, NULL, NULL);
	for (;;) /* weir run's loop: poll every 50 ms, and on wakeups */
		for (k = 0; k < SIZES; k++)
			if (rb[k])
				ring_buffer__poll(rb[k], 50 / SIZES);
	return NULL;
}

/* --- the measuring child ------------------------------------------------------- */

static struct sockaddr_in dests[NDEST];

static void make_dests(void)
{
	int i;

	for (i = 0; i < NDEST; i++) {
		dests[i].sin_family = AF_INET;
		dests[i].sin_port = htons(UDP_PORT);
		dests[i].sin_addr.s_addr =
			i % 8 == 0 ? htonl(0xc000020a) : htonl(0xc6120000 | (rng() & 0x1ffff));
		if ((ntohl(dests[i].sin_addr.s_addr) & 0xff) == 0)
			dests[i].sin_addr.s_addr |= htonl(1);
	}
}

static double one_call(int op, int i, int *fds)
{
	struct sockaddr_in tcp = dests[i % NDEST], deny = dests[0];
	char b[16] = "callbench";
	double t0, t;
	int fd;

	switch (op) {
	case OP_UDP_CONNECT:
		t0 = now_ns();
		connect(fds[0], (struct sockaddr *)&dests[i % NDEST], sizeof(dests[0]));
		return now_ns() - t0;
	case OP_SENDTO:
		t0 = now_ns();
		sendto(fds[1], b, sizeof(b), 0, (struct sockaddr *)&dests[i % NDEST],
		       sizeof(dests[0]));
		return now_ns() - t0;
	case OP_SEND:
		t0 = now_ns();
		send(fds[2], b, sizeof(b), 0);
		return now_ns() - t0;
	case OP_DENY:
		deny.sin_addr.s_addr = htonl(0xcb007142); /* 203.0.113.66 */
		t0 = now_ns();
		sendto(fds[1], b, sizeof(b), 0, (struct sockaddr *)&deny, sizeof(deny));
		return now_ns() - t0;
	default:
		tcp.sin_port = htons(TCP_PORT);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		t0 = now_ns();
		connect(fd, (struct sockaddr *)&tcp, sizeof(tcp));
		t = now_ns() - t0;
		close(fd);
		return t;
	}
}

static struct result measure(int op)
{
	double *t = calloc(calls[op], sizeof(*t));
	struct result r;
	int fds[3], i;

	fds[0] = socket(AF_INET, SOCK_DGRAM, 0);
	fds[1] = socket(AF_INET, SOCK_DGRAM, 0);
	fds[2] = socket(AF_INET, SOCK_DGRAM, 0);
	connect(fds[2], (struct sockaddr *)&dests[0], sizeof(dests[0]));
	for (i = 0; i < calls[op] / 10; i++) /* warm up */
		one_call(op, i, fds);
	for (i = 0; i < calls[op]; i++)
		t[i] = one_call(op, i, fds);
	qsort(t, calls[op], sizeof(*t), cmpd);
	r.median = t[calls[op] / 2];
	r.p99 = t[(int)(calls[op] * 0.99)];
	r.p999 = t[(int)(calls[op] * 0.999)];
	for (i = 0; i < 3; i++)
		close(fds[i]);
	free(t);
	return r;
}

/* The child: enter the cgroup, then measure what the parent asks for. */
static void child_loop(int in, int out)
{
	char p[CGROUP_PATH_MAX + 32];
	struct result r;
	int op, fd;

	snprintf(p, sizeof(p), "%s/cgroup.procs", cgpath);
	fd = open(p, O_WRONLY);
	if (fd < 0 || write(fd, "0", 1) != 1)
		_exit(1);
	close(fd);
	while (read(in, &op, sizeof(op)) == sizeof(op)) {
		r = measure(op);
		if (write(out, &r, sizeof(r)) != sizeof(r))
			_exit(1);
	}
	_exit(0);
}

/* --- the TCP server the connects go to -------------------------------------- */

static void *acceptor(void *arg)
{
	int l = *(int *)arg, c;

	for (;;) {
		c = accept(l, NULL, NULL);
		if (c >= 0)
			close(c);
	}
	return NULL;
}

static void servers(void)
{
	static int tcp;
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(TCP_PORT) };
	struct sockaddr_in u = { .sin_family = AF_INET, .sin_port = htons(UDP_PORT) };
	int one = 1, udp, small = 4096;
	pthread_t t;

	tcp = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bind(tcp, (struct sockaddr *)&s, sizeof(s));
	listen(tcp, 4096);
	pthread_create(&t, NULL, acceptor, &tcp);
	/* Datagrams land here and are dropped once its small buffer is full. */
	udp = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	bind(udp, (struct sockaddr *)&u, sizeof(u));
}

/* --- report --------------------------------------------------------------------- */

static double median_of(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmpd);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void report(FILE *json, const double *load_ms, const double *reload_ms,
		   const __u64 *bytes, const double ipset_ms[SIZES], const double nft_ms[SIZES])
{
	double v[16], base[16], ratio[16], delta[16];
	char name[64];
	int c, op, r;

	fprintf(json, "{\"bench\":\"calls\",\"repetitions\":%d,\"calls\":{", reps);
	for (op = 0; op < NOPS; op++) {
		printf("\n%s (%d calls per repetition; ns; ratio and delta vs. no enforcement "
		       "in the same repetition)\n",
		       op_names[op], calls[op]);
		printf("  %-28s %9s %9s %9s %8s %9s\n", "", "median", "p99", "p99.9", "ratio",
		       "delta");
		fprintf(json, "%s\"%s\":{", op ? "," : "", op_keys[op]);
		for (c = 0; c < ncfg; c++) {
			double p99[16], p999[16], to2[16], spread, med, rat, del, r2 = 0;

			if (cfg_skip(c))
				continue;
			for (r = 0; r < reps; r++) {
				v[r] = res[r][c][op].median;
				base[r] = res[r][C_BASE][op].median;
				ratio[r] = v[r] / base[r];
				delta[r] = v[r] - base[r];
				to2[r] = v[r] / res[r][1][op].median;
				p99[r] = res[r][c][op].p99;
				p999[r] = res[r][c][op].p999;
			}
			med = median_of(v, reps);
			spread = v[reps - 1] - v[0];
			rat = median_of(ratio, reps);
			del = median_of(delta, reps);
			if (cg_names && c > 1)
				r2 = median_of(to2, reps);
			printf("  %-28s %9.0f %9.0f %9.0f %8.2f %9.0f%s",
			       cfg_name(c, name, sizeof(name)), med, median_of(p99, reps),
			       median_of(p999, reps), rat, del,
			       c != C_BASE && spread > (del < 0 ? -del : del) ? "  (noisy)" : "");
			if (r2 > 0)
				printf("  %.2f x %s", r2, cfg_name(1, name, sizeof(name)));
			printf("\n");
			fprintf(json, "%s\"%s\":{\"median_ns\":%.0f,\"p99_ns\":%.0f,\"p999_ns\":%.0f,"
				      "\"ratio\":%.3f,\"delta_ns\":%.0f,\"spread_ns\":%.0f",
				c ? "," : "", cfg_name(c, name, sizeof(name)), med,
				median_of(p99, reps), median_of(p999, reps), rat, del, spread);
			if (r2 > 0)
				fprintf(json, ",\"ratio_to_second\":%.3f", r2);
			fprintf(json, "}");
		}
		fprintf(json, "}");
	}
	if (cg_names) {
		fprintf(json, "}}\n");
		return;
	}
	printf("\npolicy load (ms) and kernel memory of weir's maps\n");
	printf("  %-10s %12s %12s %14s %12s %12s\n", "rules", "weir load", "weir reload",
	       "weir maps", "ipset", "nft -f");
	fprintf(json, "},\"load\":[");
	for (r = 0; r < SIZES; r++) {
		char rl[32] = "-";

		if (reload_ms[r] > 0)
			snprintf(rl, sizeof(rl), "%.1f", reload_ms[r]);
		printf("  %-10zu %12.1f %12s %12.1fMB %12.1f %12.1f\n", sizes[r], load_ms[r], rl,
		       bytes[r] / 1048576.0, ipset_ms[r], nft_ms[r]);
		fprintf(json, "%s{\"rules\":%zu,\"weir_load_ms\":%.1f,\"weir_reload_ms\":%.1f,"
			      "\"weir_map_bytes\":%llu,\"ipset_restore_ms\":%.1f,\"nft_load_ms\":%.1f}",
			r ? "," : "", sizes[r], load_ms[r], reload_ms[r],
			(unsigned long long)bytes[r], ipset_ms[r], nft_ms[r]);
	}
	fprintf(json, "]}\n");
}

static void cleanup(void)
{
	int k;

	empty_detach();
	for (k = 0; k < SIZES; k++)
		egress_destroy(weir[k]);
	/* Everything vanishes with the namespace anyway; be tidy regardless. */
	if (system("iptables -w -D OUTPUT -j WEIRBENCH 2>/dev/null; iptables -w -F WEIRBENCH "
		   "2>/dev/null; iptables -w -X WEIRBENCH 2>/dev/null; nft delete table inet "
		   "weirbench 2>/dev/null; for k in 0 1 2; do ipset destroy wb$k 2>/dev/null; done; "
		   "rm -f /tmp/weirbench-*") < 0)
		perror("callbench: cleanup");
	if (cgpath[0]) {
		cgroup_kill_all(cgpath);
		cgroup_remove(cgpath);
	}
}

/* Load weir at every size and the netfilter sets; time the loads. */
static int setup_standalone(double *load_ms, double *reload_ms, __u64 *bytes, double *ipset_ms,
			    double *nft_ms)
{
	char cmd[256];
	int k;

	have_ipset = !system("command -v ipset >/dev/null && command -v iptables >/dev/null");
	have_nft = !system("command -v nft >/dev/null");
	if (!have_ipset)
		printf("iptables+ipset: not installed, skipped (make deps installs it)\n");
	if (!have_nft)
		printf("nftables: not installed, skipped (make deps installs it)\n");
	for (k = 0; k < SIZES; k++) {
		if (load_weir(k, &load_ms[k], &reload_ms[k], &bytes[k])) {
			fprintf(stderr, "callbench: cannot load weir with %zu rules\n", sizes[k]);
			return 1;
		}
		write_netfilter_files(k);
		/* -exist: the random rules repeat a few prefixes, as real lists do. */
		snprintf(cmd, sizeof(cmd),
			 "ipset -exist restore < /tmp/weirbench-ipset-%d 2>/tmp/weirbench-err", k);
		ipset_ms[k] = have_ipset ? run_timed(cmd) : -1;
		snprintf(cmd, sizeof(cmd), "nft -f /tmp/weirbench-nft-%d 2>/tmp/weirbench-err", k);
		nft_ms[k] = have_nft ? run_timed(cmd) : -1;
	}
	if (have_ipset && system("iptables -w -N WEIRBENCH && iptables -w -A OUTPUT -j WEIRBENCH"))
		have_ipset = false;
	if (have_nft && system("nft add chain inet weirbench out "
			       "'{ type filter hook output priority 0; policy accept; }'"))
		have_nft = false;
	return 0;
}

/* --cgroups NAME=CGROUP...: at least a baseline and one more. */
static int parse_cgroups(int n, char **args)
{
	int i;

	if (n < 2 || n > NCFG)
		return -1;
	cg_names = calloc(n, sizeof(*cg_names));
	cg_paths = calloc(n, sizeof(*cg_paths));
	for (i = 0; i < n; i++) {
		char *eq = strchr(args[i], '=');

		if (!eq || eq == args[i] || !eq[1])
			return -1;
		*eq = '\0';
		cg_names[i] = args[i];
		cg_paths[i] = eq + 1;
	}
	ncfg = n;
	return 0;
}

/* One repetition: every configuration once, in a shuffled order. */
static int repetition(int r, int to, int from)
{
	int order[NCFG], c, i, k, op;
	char name[64];

	for (c = 0; c < ncfg; c++)
		order[c] = c;
	for (c = ncfg - 1; c > 0; c--) { /* Fisher-Yates, seeded per repetition */
		i = rng() % (c + 1);
		k = order[c];
		order[c] = order[i];
		order[i] = k;
	}
	for (i = 0; i < ncfg; i++) {
		c = order[i];
		if (cfg_skip(c))
			continue;
		if (guard(c, true)) {
			fprintf(stderr, "callbench: cannot set up %s\n", cfg_name(c, name, sizeof(name)));
			return 1;
		}
		for (op = 0; op < NOPS; op++) {
			if (write(to, &op, sizeof(op)) != sizeof(op) ||
			    read(from, &res[r][c][op], sizeof(res[0][0][0])) != sizeof(res[0][0][0]))
				return 1;
		}
		guard(c, false);
	}
	return 0;
}

int main(int argc, char **argv)
{
	double load_ms[SIZES] = {}, reload_ms[SIZES] = {}, ipset_ms[SIZES] = {}, nft_ms[SIZES] = {};
	__u64 bytes[SIZES] = {};
	int to_child[2], from_child[2], r, op, a = 1;
	char name[64];
	FILE *json;

	quick = argc > a && !strcmp(argv[a], "--quick");
	a += quick;
	if (argc > a && !strcmp(argv[a], "--cgroups")) {
		if (argc < a + 2 || parse_cgroups(argc - a - 2, argv + a + 2)) {
			fprintf(stderr, "usage: callbench [--quick] --cgroups RESULTS.json "
					"NAME=CGROUP NAME=CGROUP...\n");
			return 2;
		}
		a++;
	} else if (argc != a + 1) {
		fprintf(stderr, "usage: callbench [--quick] RESULTS.json\n");
		return 2;
	}
	json = fopen(argv[a], "w");
	if (!json) {
		perror(argv[a]);
		return 1;
	}
	reps = quick ? 3 : 5;
	if (quick)
		sizes[2] = 100000;
	for (op = 0; op < NOPS; op++)
		calls[op] = (op == OP_TCP_CONNECT ? 2000 : 20000) / (quick ? 4 : 1);
	log_hook_libbpf();
	atexit(cleanup);
	signal(SIGINT, exit);
	signal(SIGTERM, exit);
	if (cgroup_find_v2("/proc/self/mountinfo", cgmnt, sizeof(cgmnt)))
		return 1;
	snprintf(name, sizeof(name), "bench-%d", getpid());
	cgfd = cgroup_create(cgmnt, name, cgpath, sizeof(cgpath));
	if (cgfd < 0)
		return 1;
	if (!cg_names && setup_standalone(load_ms, reload_ms, bytes, ipset_ms, nft_ms))
		return 1;
	servers();
	make_dests();
	if (pipe(to_child) || pipe(from_child))
		return 1;
	child = fork();
	if (child == 0) {
		close(to_child[1]);
		close(from_child[0]);
		child_loop(to_child[0], from_child[1]);
	}
	close(to_child[0]);
	close(from_child[1]);
	if (!cg_names) { /* a daemon reads its own events */
		pthread_t t;

		pthread_create(&t, NULL, consumer, NULL);
	}
	for (r = 0; r < reps; r++) {
		if (repetition(r, to_child[1], from_child[0]))
			return 1;
		fprintf(stderr, "callbench: repetition %d/%d done\n", r + 1, reps);
	}
	close(to_child[1]);
	waitpid(child, NULL, 0);
	report(json, load_ms, reload_ms, bytes, ipset_ms, nft_ms);
	fclose(json);
	return 0;
}
