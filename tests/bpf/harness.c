// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "compile.h"
#include "harness.h"
#include "../common/slow.h"

#define PAYLOAD "weir-probe"

void h_netns(void)
{
	static const char *const setup =
		"ip link set lo up && "
		"for a in 192.0.2.1/24 192.0.2.9/32 198.51.100.7/32 198.51.100.8/32 "
		"203.0.113.5/32 203.0.113.9/32 169.254.169.254/32; do "
		"ip addr add $a dev lo || exit 1; done && "
		"ip addr add 2001:db8::1/128 dev lo nodad && "
		"ip addr add 2001:db8::2/128 dev lo nodad && "
		"ip addr add fd00:ec2::254/128 dev lo nodad";

	cr_assert_eq(geteuid(), 0, "BPF tests need root (sudo make test)");
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	cr_assert_eq(system(setup), 0, "cannot set up the test addresses");
}

static struct egress_opts default_opts(void)
{
	return (struct egress_opts){
		.lpm_entries = 1024,
		.portsets = 64,
		.slots = 4,
		.ringbuf_bytes = 1 << 20,
		.task_info = -1,
	};
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct harness *h = ctx;
	const struct weir_event *e = data;

	if (len < sizeof(*e))
		return 0;
	if (e->op == WEIR_OP_CLOSE && h->ncl < H_MAX_EVENTS)
		memcpy(&h->closes[h->ncl++], e, sizeof(*e));
	else if (e->op != WEIR_OP_CLOSE && h->nev < H_MAX_EVENTS)
		memcpy(&h->ev[h->nev++], e, sizeof(*e));
	return 0;
}

void h_start_bare(struct harness *h, const struct egress_opts *opts)
{
	struct egress_opts o = opts ? *opts : default_opts();
	char name[64];

	memset(h, 0, sizeof(*h));
	h->cgfd = -1;
	cr_assert_eq(cgroup_find_v2("/proc/self/mountinfo", h->cgmnt, sizeof(h->cgmnt)), 0);
	cr_assert_eq(egress_open(&o, &h->eg), 0, "egress_open");
	snprintf(name, sizeof(name), "test-%d", getpid());
	h->cgfd = cgroup_create(h->cgmnt, name, h->cgpath, sizeof(h->cgpath));
	cr_assert_geq(h->cgfd, 0, "cgroup_create: %s", strerror(-h->cgfd));
	h->rb = ring_buffer__new(egress_events_fd(h->eg), on_event, h, NULL);
	cr_assert_not_null(h->rb);
}

void h_start_empty(struct harness *h, const struct egress_opts *opts)
{
	h_start_bare(h, opts);
	cr_assert_eq(egress_attach(h->eg, h->cgfd, NULL), 0, "egress_attach");
}

int h_subcgroup(struct harness *h, const char *name)
{
	char sub[CGROUP_PATH_MAX + 64];
	int fd;

	snprintf(sub, sizeof(sub), "%s/%s", h->cgpath, name);
	cr_assert(mkdir(sub, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", sub, strerror(errno));
	fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", sub, strerror(errno));
	return fd;
}

void h_apply_handle(struct harness *h, __u32 handle, const char *policy_yaml)
{
	struct compile_input in = {};
	char err[POLICY_ERR_LEN];
	struct policy *pol;
	struct compiled c;

	cr_assert_eq(policy_load_buffer("test.yaml", policy_yaml, strlen(policy_yaml), &pol, err),
		     0, "policy: %s", err);
	in.policy = pol;
	cr_assert_eq(compile_policy(&in, &c, err), 0, "compile: %s", err);
	cr_assert_eq(egress_apply_handle(h->eg, handle, &c), 0, "egress_apply_handle");
	compiled_free(&c);
	policy_free(pol);
}

void h_start(struct harness *h, const char *policy_yaml, const struct egress_opts *opts)
{
	struct compile_input in = {};
	char err[POLICY_ERR_LEN];
	struct compiled c;

	h_start_empty(h, opts);
	cr_assert_eq(policy_load_buffer("test.yaml", policy_yaml, strlen(policy_yaml), &h->pol,
					err),
		     0, "policy: %s", err);
	in.policy = h->pol;
	cr_assert_eq(compile_policy(&in, &c, err), 0, "compile: %s", err);
	cr_assert_eq(egress_apply(h->eg, &c), 0, "egress_apply");
	compiled_free(&c);
}

void h_stop(struct harness *h)
{
	ring_buffer__free(h->rb);
	egress_destroy(h->eg);
	if (h->cgfd >= 0)
		close(h->cgfd);
	if (h->cgpath[0]) {
		cgroup_kill_all(h->cgpath);
		cgroup_remove(h->cgpath);
	}
	policy_free(h->pol);
	memset(h, 0, sizeof(*h));
}

static int enter_cgroup(const char *dir)
{
	char p[CGROUP_PATH_MAX + 128];
	int fd, ret = 0;

	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "0", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

static socklen_t make_sockaddr(const struct probe *p, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, p->addr, &s4->sin_addr) == 1) {
		s4->sin_family = p->sa_family ? p->sa_family : AF_INET;
		s4->sin_port = htons(p->port);
		return sizeof(*s4);
	}
	cr_assert_eq(inet_pton(AF_INET6, p->addr, &s6->sin6_addr), 1, "bad literal %s", p->addr);
	s6->sin6_family = p->sa_family ? p->sa_family : AF_INET6;
	s6->sin6_port = htons(p->port);
	return sizeof(*s6);
}

/* In the child: 0 or errno. */
static int do_probe(const struct probe *p)
{
	int type = p->mode == P_TCP ? SOCK_STREAM : SOCK_DGRAM;
	struct sockaddr_storage ss;
	socklen_t len = make_sockaddr(p, &ss);
	int fd, ret = 0;

	fd = socket(p->sock_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (p->mode == P_UDP_SENDTO) {
		if (sendto(fd, PAYLOAD, sizeof(PAYLOAD), 0, (struct sockaddr *)&ss, len) < 0)
			ret = errno;
	} else if (connect(fd, (struct sockaddr *)&ss, len) < 0 ||
		   send(fd, PAYLOAD, sizeof(PAYLOAD), 0) < 0) {
		ret = errno;
	}
	close(fd);
	return ret;
}

int h_probe(struct harness *h, const struct probe *p, int *pid)
{
	char sub[CGROUP_PATH_MAX + 64];
	int status;
	pid_t c;

	snprintf(sub, sizeof(sub), "%s/%s", h->cgpath, p->subcgroup ? p->subcgroup : "");
	if (p->subcgroup)
		cr_assert(mkdir(sub, 0755) == 0 || errno == EEXIST);
	c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		if (enter_cgroup(sub))
			_exit(254);
		_exit(do_probe(p));
	}
	cr_assert_eq(waitpid(c, &status, 0), c);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 254, "child could not enter cgroup");
	if (pid)
		*pid = c;
	return WEXITSTATUS(status);
}

pid_t h_spawn(struct harness *h, int (*fn)(void *arg), void *arg)
{
	return h_spawn_in(h, NULL, fn, arg);
}

pid_t h_spawn_in(struct harness *h, const char *subcgroup, int (*fn)(void *arg), void *arg)
{
	char sub[CGROUP_PATH_MAX + 64];
	pid_t c;

	snprintf(sub, sizeof(sub), "%s/%s", h->cgpath, subcgroup ? subcgroup : "");
	c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		if (enter_cgroup(sub))
			_exit(254);
		_exit(fn(arg));
	}
	return c;
}

int h_wait(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 254, "child could not enter cgroup");
	return WEXITSTATUS(status);
}

const struct weir_event *h_events(struct harness *h)
{
	ring_buffer__consume(h->rb);
	return h->nev ? &h->ev[h->nev - 1] : NULL;
}

static int bound_socket(const char *addr, int port, int type)
{
	struct probe p = { .addr = addr, .port = port };
	struct sockaddr_storage ss;
	socklen_t len = make_sockaddr(&p, &ss);
	int fd, one = 1;

	fd = socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind %s:%d: %s", addr, port,
		     strerror(errno));
	return fd;
}

int h_listen_tcp(const char *addr, int port)
{
	int fd = bound_socket(addr, port, SOCK_STREAM);

	cr_assert_eq(listen(fd, 16), 0);
	return fd;
}

int h_listen_udp(const char *addr, int port)
{
	return bound_socket(addr, port, SOCK_DGRAM);
}

static bool readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 300) == 1;
}

bool h_tcp_got(int lfd)
{
	char buf[64] = "";
	int c;

	if (!readable(lfd))
		return false;
	c = accept(lfd, NULL, NULL);
	if (c < 0)
		return false;
	if (readable(c) && recv(c, buf, sizeof(buf) - 1, 0) > 0 && strstr(buf, PAYLOAD)) {
		close(c);
		return true;
	}
	close(c);
	return false;
}

bool h_udp_got(int fd)
{
	char buf[64] = "";

	return readable(fd) && recv(fd, buf, sizeof(buf) - 1, 0) > 0 && strstr(buf, PAYLOAD);
}

void h_addr(const char *lit, __u8 out[16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, lit, out) != 1)
		cr_assert_eq(inet_pton(AF_INET6, lit, out), 1);
}

int h_map_fd(struct harness *h, const char *name)
{
	return h_cgroup_map_fd(h->cgfd, name);
}

int h_cgroup_map_fd(int cgfd, const char *name)
{
	__u32 ids[8], cnt = 8, maps[64], i, len;
	struct bpf_prog_info pi = {};
	struct bpf_map_info mi;
	int pfd, fd;

	cr_assert_eq(bpf_prog_query(cgfd, BPF_CGROUP_INET_EGRESS, 0, NULL, ids, &cnt), 0);
	cr_assert_gt(cnt, 0);
	pfd = bpf_prog_get_fd_by_id(ids[0]);
	cr_assert_geq(pfd, 0);
	pi.nr_map_ids = 64;
	pi.map_ids = (__u64)(unsigned long)maps;
	len = sizeof(pi);
	cr_assert_eq(bpf_obj_get_info_by_fd(pfd, &pi, &len), 0);
	close(pfd);
	for (i = 0; i < pi.nr_map_ids && i < 64; i++) {
		fd = bpf_map_get_fd_by_id(maps[i]);
		if (fd < 0)
			continue;
		memset(&mi, 0, sizeof(mi));
		len = sizeof(mi);
		if (!bpf_obj_get_info_by_fd(fd, &mi, &len) && !strcmp(mi.name, name))
			return fd;
		close(fd);
	}
	cr_assert_fail("no map %s", name);
	return -1;
}
