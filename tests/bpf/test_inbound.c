// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2: inbound. A server runs inside the enforced cgroup (a forked child
 * that listens there); clients outside, bound to the peer addresses of the
 * test namespace, check whether it answers. Every policy here says
 * `loopback: deny` and allows no egress to the clients, so an answer can
 * only come through the inbound rules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <criterion/criterion.h>

#include "harness.h"

#define PORT 8080
#define SERVE_MS 6000

static struct harness h;
static pid_t server = -1;

static void setup(void)
{
	h_netns();
}

static void teardown(void)
{
	if (server > 0)
		kill(server, SIGKILL);
	h_stop(&h);
}

TestSuite(inbound, .init = setup, .fini = teardown, .timeout = 30);

static socklen_t sockaddr_of(const char *lit, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, lit, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	cr_assert_eq(inet_pton(AF_INET6, lit, &s6->sin6_addr), 1, "bad literal %s", lit);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	return sizeof(*s6);
}

/* A socket bound to lit:port (port 0: any), non-blocking. */
static int bound(const char *lit, int port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(lit, port, &ss);
	int fd, one = 1;

	fd = socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static bool wait_in(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

struct serve_args {
	const char *addr;
	int ready; /* pipe: one byte once bound */
	int stop; /* pipe: readable (EOF) when the test is done */
	int stop_w; /* its write end, which the server must not hold */
};

/*
 * In the cgroup: a TCP and a UDP server on addr:PORT. TCP: read a request,
 * answer "ok". UDP: answer "ok" to every datagram. The exit status counts
 * what arrived: UDP datagrams + 16 x TCP connections.
 */
static int serve(void *arg)
{
	const struct serve_args *a = arg;
	int t = bound(a->addr, PORT, SOCK_STREAM), u = bound(a->addr, PORT, SOCK_DGRAM);
	struct sockaddr_storage from;
	int nudp = 0, ntcp = 0, i, c;
	char buf[64];
	ssize_t n;

	close(a->stop_w);
	if (t < 0 || u < 0 || listen(t, 16) || write(a->ready, "r", 1) != 1)
		return 253;
	for (i = 0; i < SERVE_MS / 20; i++) {
		struct pollfd p[3] = { { .fd = t, .events = POLLIN },
				       { .fd = u, .events = POLLIN },
				       { .fd = a->stop, .events = POLLIN } };
		socklen_t flen = sizeof(from);

		if (poll(p, 3, 20) <= 0)
			continue;
		if (p[2].revents)
			break;
		if (p[0].revents && (c = accept(t, NULL, NULL)) >= 0) {
			ntcp++;
			if (wait_in(c, 500) && recv(c, buf, sizeof(buf), 0) > 0)
				send(c, "ok", 2, MSG_NOSIGNAL);
			close(c);
		}
		if (!p[1].revents)
			continue;
		n = recvfrom(u, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
		if (n < 0)
			continue;
		nudp++;
		sendto(u, "ok", 2, 0, (struct sockaddr *)&from, flen);
	}
	return nudp + 16 * ntcp > 252 ? 252 : nudp + 16 * ntcp;
}

static int stop_fd = -1;

static void start(const char *policy, const char *addr)
{
	static struct serve_args a;
	int p[2], q[2];
	char c;

	h_start(&h, policy, NULL);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(q, O_CLOEXEC), 0);
	a = (struct serve_args){ .addr = addr, .ready = p[1], .stop = q[0], .stop_w = q[1] };
	server = h_spawn(&h, serve, &a);
	close(p[1]);
	close(q[0]);
	stop_fd = q[1];
	cr_assert(wait_in(p[0], 3000) && read(p[0], &c, 1) == 1, "the server did not start");
	close(p[0]);
}

/* Stop the server; what arrived (see serve()). */
static int stop(void)
{
	int ret;

	close(stop_fd);
	stop_fd = -1;
	ret = h_wait(server);
	server = -1;
	return ret;
}

/* A TCP client from src: 0 when the server inside answered, else errno. */
static int ask_tcp(const char *src, const char *dst)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(dst, PORT, &ss);
	int fd = bound(src, 0, SOCK_STREAM), err = 0;
	struct pollfd p = { .events = POLLOUT };
	socklen_t elen = sizeof(err);
	char buf[8] = "";

	cr_assert_geq(fd, 0, "bind %s: %s", src, strerror(-fd));
	p.fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS)
		err = errno;
	else if (poll(&p, 1, 700) != 1)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) || err)
		err = err ?: errno;
	else if (send(fd, "hi", 2, MSG_NOSIGNAL) != 2 || !wait_in(fd, 700) ||
		 recv(fd, buf, sizeof(buf), 0) != 2)
		err = ETIMEDOUT;
	close(fd);
	return err;
}

/* A UDP client from src: 0 when the server inside answered, else ETIMEDOUT. */
static int ask_udp(const char *src, const char *dst, int *sport)
{
	struct sockaddr_storage ss, me;
	socklen_t len = sockaddr_of(dst, PORT, &ss), mlen = sizeof(me);
	int fd = bound(src, 0, SOCK_DGRAM), err = 0;
	char buf[8] = "";

	cr_assert_geq(fd, 0, "bind %s: %s", src, strerror(-fd));
	getsockname(fd, (struct sockaddr *)&me, &mlen);
	if (sport)
		*sport = ntohs(((struct sockaddr_in *)&me)->sin_port);
	cr_assert_eq(sendto(fd, "hi", 2, 0, (struct sockaddr *)&ss, len), 2);
	if (!wait_in(fd, 500) || recv(fd, buf, sizeof(buf), 0) != 2)
		err = ETIMEDOUT;
	close(fd);
	return err;
}

/* The newest INBOUND event, or NULL. */
static const struct weir_event *last_inbound(void)
{
	int i;

	h_events(&h);
	for (i = h.nev - 1; i >= 0; i--)
		if (h.ev[i].op == WEIR_OP_INBOUND)
			return &h.ev[i];
	return NULL;
}

static int count_inbound(void)
{
	int i, n = 0;

	h_events(&h);
	for (i = 0; i < h.nev; i++)
		n += h.ev[i].op == WEIR_OP_INBOUND;
	return n;
}

static void expect_refused_at(const char *peer, int lport, __u8 proto, __u8 verdict,
			      __u8 reason)
{
	const struct weir_event *e = last_inbound();
	__u8 a[16];

	cr_assert_not_null(e, "no inbound event");
	h_addr(peer, a);
	cr_expect_eq(e->verdict, verdict, "verdict %u", e->verdict);
	cr_expect_eq(e->reason, reason, "reason %u", e->reason);
	cr_expect_eq(e->protocol, proto);
	cr_expect_eq(e->port, lport, "the local port");
	cr_expect_neq(e->peer_port, 0);
	cr_expect_eq(memcmp(e->addr, a, e->family == AF_INET ? 4 : 16), 0, "the peer");
	cr_expect_eq(e->pid, 0, "no task connected in");
}

#define expect_refused(peer, ...) expect_refused_at(peer, PORT, __VA_ARGS__)

static const char *const policy_rules = "version: 1\n"
					"loopback: deny\n"
					"inbound:\n"
					"  - ip: 198.51.100.7\n"
					"    ports: [8080]\n"
					"    proto: tcp\n"
					"  - ip: 198.51.100.8\n"
					"    ports: [8080]\n"
					"    proto: udp\n"
					"  - ip: 2001:db8::2\n"
					"    ports: [8080]\n";

Test(inbound, tcp_permitted_peer_is_answered_and_another_refused)
{
	start(policy_rules, "192.0.2.1");
	cr_expect_eq(ask_tcp("198.51.100.7", "192.0.2.1"), 0, "the permitted peer got no answer");
	cr_expect_eq(ask_tcp("203.0.113.9", "192.0.2.1"), ETIMEDOUT);
	expect_refused("203.0.113.9", 6, WEIR_V_DENY, WEIR_R_NO_MATCH);
	/* Permitted for UDP only: the port/protocol reason. */
	cr_expect_eq(ask_tcp("198.51.100.8", "192.0.2.1"), ETIMEDOUT);
	expect_refused("198.51.100.8", 6, WEIR_V_DENY, WEIR_R_PORT);
	cr_expect_eq(stop() / 16, 1, "one connection accepted");
	cr_expect_geq(egress_stat(h.eg, WEIR_STAT_INBOUND_DROPS), 2);
}

Test(inbound, udp_permitted_peer_is_answered_and_another_dropped)
{
	int sport = 0;

	start(policy_rules, "192.0.2.1");
	cr_expect_eq(ask_udp("198.51.100.8", "192.0.2.1", NULL), 0,
		     "the permitted peer got no answer");
	cr_expect_eq(ask_udp("203.0.113.9", "192.0.2.1", &sport), ETIMEDOUT);
	expect_refused("203.0.113.9", 17, WEIR_V_DENY, WEIR_R_NO_MATCH);
	cr_expect_eq(last_inbound()->peer_port, sport);
	/* Permitted for TCP only. */
	cr_expect_eq(ask_udp("198.51.100.7", "192.0.2.1", NULL), ETIMEDOUT);
	expect_refused("198.51.100.7", 17, WEIR_V_DENY, WEIR_R_PORT);
	cr_expect_eq(stop() % 16, 1, "only the permitted datagram arrived");
}

Test(inbound, ipv6_peers)
{
	start(policy_rules, "2001:db8::1");
	cr_expect_eq(ask_tcp("2001:db8::2", "2001:db8::1"), 0);
	cr_expect_eq(ask_udp("2001:db8::2", "2001:db8::1", NULL), 0);
	cr_expect_eq(ask_tcp("::1", "2001:db8::1"), ETIMEDOUT);
	expect_refused("::1", 6, WEIR_V_DENY, WEIR_R_NO_MATCH);
	stop();
}

/* No inbound: section: loopback peers only, on every port. */
Test(inbound, default_is_loopback_peers_only)
{
	start("version: 1\nloopback: deny\n", "0.0.0.0");
	cr_expect_eq(ask_tcp("127.0.0.1", "127.0.0.1"), 0, "a loopback peer got no answer");
	cr_expect_eq(ask_udp("127.0.0.1", "127.0.0.1", NULL), 0);
	cr_expect_eq(ask_tcp("198.51.100.7", "192.0.2.1"), ETIMEDOUT);
	expect_refused("198.51.100.7", 6, WEIR_V_DENY, WEIR_R_NO_MATCH);
	cr_expect_eq(ask_udp("198.51.100.7", "192.0.2.1", NULL), ETIMEDOUT);
	expect_refused("198.51.100.7", 17, WEIR_V_DENY, WEIR_R_NO_MATCH);
	cr_expect_eq(stop(), 16 + 1);
}

Test(inbound, any_lets_everyone_in)
{
	start("version: 1\nloopback: deny\ninbound: any\n", "192.0.2.1");
	cr_expect_eq(ask_tcp("203.0.113.9", "192.0.2.1"), 0);
	cr_expect_eq(ask_udp("203.0.113.9", "192.0.2.1", NULL), 0);
	cr_expect_eq(count_inbound(), 0, "nothing refused");
	stop();
}

/* Audit: nothing is refused, what would be is reported once per peer. */
Test(inbound, audit_reports_would_deny_once)
{
	start("version: 1\nmode: audit\nloopback: deny\ninbound: []\n", "192.0.2.1");
	cr_expect_eq(ask_udp("203.0.113.9", "192.0.2.1", NULL), 0);
	expect_refused("203.0.113.9", 17, WEIR_V_WOULD_DENY, WEIR_R_NO_MATCH);
	cr_expect_eq(ask_tcp("203.0.113.9", "192.0.2.1"), 0);
	expect_refused("203.0.113.9", 6, WEIR_V_WOULD_DENY, WEIR_R_NO_MATCH);
	cr_expect_eq(count_inbound(), 2);
	cr_expect_eq(egress_stat(h.eg, WEIR_STAT_INBOUND_DROPS), 0);
	stop();
}

/* A peer that keeps sending makes one event, not one per datagram. */
Test(inbound, refused_peer_reported_once_per_flow)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of("192.0.2.1", PORT, &ss);
	int fd, i;

	start(policy_rules, "192.0.2.1");
	fd = bound("203.0.113.9", 0, SOCK_DGRAM);
	for (i = 0; i < 5; i++)
		sendto(fd, "hi", 2, 0, (struct sockaddr *)&ss, len);
	close(fd);
	cr_expect_eq(stop(), 0, "a refused datagram arrived");
	cr_expect_eq(count_inbound(), 1);
	cr_expect_eq(egress_stat(h.eg, WEIR_STAT_INBOUND_DROPS), 5);
}

struct reply_args {
	const char *dst;
	int port;
};

/* Inside: send to dst:port from an unconnected socket on 192.0.2.1:7777,
 * wait for an answer. 0: "ok" came first; 1 sendto failed, 2 nothing
 * came, 3 something else came first. */
static int send_and_wait(void *arg)
{
	const struct reply_args *a = arg;
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(a->dst, a->port, &ss);
	int fd = bound("192.0.2.1", 7777, SOCK_DGRAM);
	char buf[8] = "";

	if (fd < 0 || sendto(fd, "hi", 2, 0, (struct sockaddr *)&ss, len) != 2)
		return 1;
	if (!wait_in(fd, 700) || recv(fd, buf, sizeof(buf), 0) <= 0)
		return 2;
	return memcmp(buf, "ok", 2) ? 3 : 0;
}

/* Replies to the cgroup's own traffic are never inbound, even with nobody
 * let in: an egress-allowed server answers an unconnected socket. A
 * stranger's datagram to the same socket, sent just before, is dropped. */
Test(inbound, replies_to_own_udp_pass)
{
	static struct reply_args a = { "198.51.100.7", 9000 };
	struct sockaddr_storage from, me;
	socklen_t flen = sizeof(from), mlen = sockaddr_of("192.0.2.1", 7777, &me);
	int srv, n, stranger;
	pid_t c;
	char buf[8];

	h_start(&h, "version: 1\nloopback: deny\ninbound: []\nallow:\n  - ip: 198.51.100.7\n"
		    "    ports: [9000]\n    proto: udp\n",
		NULL);
	srv = bound("198.51.100.7", 9000, SOCK_DGRAM);
	cr_assert_geq(srv, 0);
	c = h_spawn(&h, send_and_wait, &a);
	cr_assert(wait_in(srv, 1000), "the datagram did not go out");
	n = recvfrom(srv, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	cr_assert_eq(n, 2);
	stranger = bound("203.0.113.9", 0, SOCK_DGRAM);
	cr_assert_eq(sendto(stranger, "no", 2, 0, (struct sockaddr *)&me, mlen), 2);
	usleep(50000);
	cr_assert_eq(sendto(srv, "ok", 2, 0, (struct sockaddr *)&from, flen), 2);
	n = h_wait(c);
	cr_expect_neq(n, 3, "the stranger's datagram came in");
	cr_expect_eq(n, 0, "the answer was dropped");
	expect_refused_at("203.0.113.9", 7777, 17, WEIR_V_DENY, WEIR_R_NO_MATCH);
	cr_expect_eq(count_inbound(), 1, "only the stranger was refused");
	close(stranger);
	close(srv);
}

/* Inside: a socket bound to the inbound port that starts talking. */
static int active_from_inbound_port(void *arg)
{
	const struct reply_args *a = arg;
	struct sockaddr_storage ss, me;
	socklen_t len = sockaddr_of(a->dst, a->port, &ss), mlen;
	int fd, one = 1, ret = 0;

	mlen = sockaddr_of("192.0.2.9", PORT, &me);
	fd = socket(AF_INET, (a->port == 9001 ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&me, mlen))
		return 3;
	if (a->port == 9001)
		ret = connect(fd, (struct sockaddr *)&ss, len) ? errno : 0;
	else
		ret = sendto(fd, "hi", 2, 0, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	close(fd);
	return ret;
}

/* The exemption is for answers: a socket on the inbound port cannot open
 * a flow to a permitted peer that never sent first, while the server on
 * that port answers the same peers. */
Test(inbound, inbound_port_cannot_start_flows)
{
	static struct reply_args tcp = { "198.51.100.7", 9001 }, udp = { "198.51.100.8", 9002 };
	int lt, lu;

	start(policy_rules, "192.0.2.1");
	cr_expect_eq(ask_tcp("198.51.100.7", "192.0.2.1"), 0, "the server does not answer");
	cr_expect_eq(ask_udp("198.51.100.8", "192.0.2.1", NULL), 0, "the server does not answer");
	lt = h_listen_tcp("198.51.100.7", 9001);
	lu = h_listen_udp("198.51.100.8", 9002);
	cr_expect_eq(h_wait(h_spawn(&h, active_from_inbound_port, &tcp)), EPERM);
	cr_expect_eq(h_wait(h_spawn(&h, active_from_inbound_port, &udp)), EPERM);
	cr_expect_not(wait_in(lt, 300), "a connection arrived");
	cr_expect_not(wait_in(lu, 50), "a datagram arrived");
	close(lt);
	close(lu);
	stop();
}

/* --- nested attachments ------------------------------------------------------ */

struct nested_args {
	int ready; /* pipe: one byte once bound */
	int go; /* pipe: readable once the peer has sent */
};

/* In the inner cgroup: a UDP socket on 192.0.2.1:7777; once the peer has
 * sent, reply to it. Bit 0: its datagram came in; bit 1: sendto failed
 * with EPERM. */
static int inner_udp(void *arg)
{
	const struct nested_args *a = arg;
	struct sockaddr_storage peer;
	socklen_t len = sockaddr_of("198.51.100.7", 9002, &peer);
	int fd = bound("192.0.2.1", 7777, SOCK_DGRAM), ret = 0;
	char buf[8];

	if (fd < 0 || write(a->ready, "r", 1) != 1)
		return 253;
	if (!wait_in(a->go, 3000))
		return 252;
	if (wait_in(fd, 300) && recv(fd, buf, sizeof(buf), 0) > 0)
		ret |= 1;
	if (sendto(fd, "out", 3, 0, (struct sockaddr *)&peer, len) < 0 && errno == EPERM)
		ret |= 2;
	return ret;
}

/*
 * Below two attachments, each judges with its own rules: the outer one
 * lets everyone in, the inner one nobody. The peer's datagram is dropped,
 * and the inner cgroup's socket cannot answer it because the outer one
 * would have let it in.
 */
Test(inbound, nested_attachments_each_need_their_own_rules)
{
	struct egress_opts o = { .lpm_entries = 1024, .portsets = 64, .slots = 16, .handles = 8,
				 .ringbuf_bytes = 1 << 20, .task_info = -1 };
	static struct nested_args a;
	struct sockaddr_storage srv;
	socklen_t len = sockaddr_of("192.0.2.1", 7777, &srv);
	int fo, fi, peer, p[2], g[2], ret;
	__u32 ho, hi;
	pid_t c;
	char ch;

	h_start_bare(&h, &o);
	fo = h_subcgroup(&h, "o");
	fi = h_subcgroup(&h, "o/i");
	cr_assert_eq(egress_handle_alloc(h.eg, &ho), 0);
	cr_assert_eq(egress_handle_alloc(h.eg, &hi), 0);
	cr_assert_eq(egress_attach_handle(h.eg, ho, fo, NULL, NULL), 0);
	cr_assert_eq(egress_attach_handle(h.eg, hi, fi, NULL, NULL), 0);
	h_apply_handle(&h, ho, "version: 1\nloopback: deny\ninbound: any\n");
	h_apply_handle(&h, hi, "version: 1\nloopback: deny\ninbound: []\n");
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(g, O_CLOEXEC), 0);
	a = (struct nested_args){ .ready = p[1], .go = g[0] };
	c = h_spawn_in(&h, "o/i", inner_udp, &a);
	cr_assert(wait_in(p[0], 3000) && read(p[0], &ch, 1) == 1, "the server did not start");
	peer = bound("198.51.100.7", 9002, SOCK_DGRAM);
	cr_assert_geq(peer, 0);
	cr_assert_eq(sendto(peer, "in", 2, 0, (struct sockaddr *)&srv, len), 2);
	cr_assert_eq(write(g[1], "g", 1), 1);
	ret = h_wait(c);
	cr_expect_eq(ret & 1, 0, "the inner rules let the peer in");
	cr_expect_eq(ret & 2, 2, "the inner socket could answer a peer only the outer rules permit");
	cr_expect_not(wait_in(peer, 100), "a datagram reached the peer");
	close(peer);
	close(fo);
	close(fi);
	close(p[0]);
	close(p[1]);
	close(g[0]);
	close(g[1]);
}
