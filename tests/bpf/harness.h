/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Tier-2 harness: the real BPF object, loaded by the real loader
 * (user/kernel/egress.c), attached to a throwaway cgroup; calls are made by a
 * forked child that moves itself into that cgroup, against listeners on
 * addresses of a private network namespace made per test.
 */
#ifndef WEIR_TEST_HARNESS_H
#define WEIR_TEST_HARNESS_H

#include <stdbool.h>
#include <sys/socket.h>
#include <bpf/libbpf.h>
#include <weir/egress.h>

#include "cgroup.h"
#include "egress.h"
#include "policy.h"

#define H_MAX_EVENTS 512

struct harness {
	struct policy *pol;
	struct egress *eg;
	struct ring_buffer *rb;
	char cgmnt[CGROUP_PATH_MAX], cgpath[CGROUP_PATH_MAX];
	int cgfd;
	struct weir_event ev[H_MAX_EVENTS]; /* decisions */
	int nev;
	struct weir_event closes[H_MAX_EVENTS]; /* WEIR_OP_CLOSE: flows' ends */
	int ncl;
};

/* What the child inside the cgroup does. */
enum probe_mode {
	P_TCP, /* connect + send */
	P_UDP_SENDTO, /* unconnected sendto */
	P_UDP_CONNECT, /* connect + send */
};

struct probe {
	enum probe_mode mode;
	int sock_family; /* AF_INET or AF_INET6 socket */
	const char *addr; /* literal: "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.9" */
	int port;
	int sa_family; /* 0: as the address says; AF_UNSPEC: lie in the sockaddr */
	const char *subcgroup; /* run in this child cgroup of the test cgroup */
};

/* New network namespace with the test addresses on lo. */
void h_netns(void);
/* Load, apply POLICY (YAML text), attach. opts NULL: defaults. */
void h_start(struct harness *h, const char *policy_yaml, const struct egress_opts *opts);
/* Load and attach, but write no policy. */
void h_start_empty(struct harness *h, const struct egress_opts *opts);
/* Load and make the test cgroup, attach nothing (tests of many handles). */
void h_start_bare(struct harness *h, const struct egress_opts *opts);
/* mkdir the test cgroup's child NAME (if need be); its O_DIRECTORY fd. */
int h_subcgroup(struct harness *h, const char *name);
/* Compile POLICY (YAML text) and make it handle's policy in force. */
void h_apply_handle(struct harness *h, __u32 handle, const char *policy_yaml);
void h_stop(struct harness *h);

/* Run the probe in a child inside the cgroup; 0 or the errno it got.
 * *pid (if not NULL) receives the child's pid. */
int h_probe(struct harness *h, const struct probe *p, int *pid);
/* Run fn(arg) in a forked child inside the cgroup; its return value
 * (0..253) is the result. The child is started and not waited for:
 * h_wait() collects it. */
pid_t h_spawn(struct harness *h, int (*fn)(void *arg), void *arg);
/* The same in the test cgroup's child SUBCGROUP (which must exist). */
pid_t h_spawn_in(struct harness *h, const char *subcgroup, int (*fn)(void *arg), void *arg);
int h_wait(pid_t pid);

/* Collect pending events into h->ev; returns the newest, or NULL. */
const struct weir_event *h_events(struct harness *h);

/* Listeners outside the cgroup; *_got() wait up to 300 ms for one arrival. */
int h_listen_tcp(const char *addr, int port);
int h_listen_udp(const char *addr, int port);
bool h_tcp_got(int lfd);
bool h_udp_got(int fd);

/* An fd of the map NAME of the programs attached to the test cgroup. */
int h_map_fd(struct harness *h, const char *name);
/* The same, for the programs attached to the cgroup CGFD. */
int h_cgroup_map_fd(int cgfd, const char *name);

/* Address of a literal, for comparing with weir_event.addr. */
void h_addr(const char *lit, __u8 out[16]);

#endif /* WEIR_TEST_HARNESS_H */
