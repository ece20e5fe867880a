/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * weir run's state, shared by run.c (options, policy, command, standalone
 * enforcement) and run_client.c (enforcement through a daemon).
 */
#ifndef WEIR_RUN_H
#define WEIR_RUN_H

#include <ldns/sha2.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/filter.h>

#include "cgroup.h"
#include "events.h"
#include "fds.h"
#include "sandbox.h"
#include "stream.h"
#include "userenv.h"

struct run_opts {
	const char *policy_path;
	const char **allow;
	int n_allow;
	bool audit, quiet;
	const char *events_path;
	const char *user, *group;
	struct userenv_opts env; /* --preserve-env, --setenv */
	const char *socket; /* --socket */
	bool standalone; /* --standalone */
	int pass_fds[FDS_PASS_MAX]; /* --pass-fd N: inherited, beside 0-2 */
	int n_pass_fds;
	bool allow_socket_stdio; /* --allow-socket-stdio */
	char **argv;
};

struct run {
	struct run_opts o;
	struct policy *policy; /* the attachment's, once it has it */
	struct attachment *att; /* the enforced cgroup: policy, resolver, learned */
	__u32 handle;
	pthread_mutex_t out_mu; /* events file, stderr lines, summary: two threads */
	struct egress *egress;
	struct identity id;
	char **envp; /* the command's environment; NULL: weir's own */
	struct sock_fprog filter;
	pthread_t sb; /* builds filter meanwhile (sandbox_start) */
	bool sb_started;
	int sb_ret;
	char **cgmounts; /* a root command's cgroup2 mounts, remounted in its namespace */
	struct ring_buffer *rb;
	struct pump *pump; /* with an events file: its writer thread */
	struct summary *summary;
	struct event_ctx ectx;
	struct event_memo memo; /* ectx's: the policy never changes in a run */
	struct stream stream; /* -e: records around the events */
	FILE *events; /* stream.f, or NULL */
	unsigned char policy_sha256[LDNS_SHA256_DIGEST_LENGTH];
	char cgmnt[CGROUP_PATH_MAX], cgpath[CGROUP_PATH_MAX], pins[CGROUP_PATH_MAX];
	int cgfd, sigfd, epfd, dnsfd; /* dnsfd: the attachment's (not ours to close) */
	sigset_t oldmask; /* the caller's mask: the command's */
	sigset_t sig_reset, sig_ign; /* dispositions weir changed; the caller ignored */
	pid_t child;
	int status;
	bool child_done;
	/* Through the daemon (run_client.c): */
	bool daemon; /* a daemon answers: it enforces */
	const char *sock;
	char *policy_text; /* the policy's bytes, as read: sent inline */
	size_t policy_len;
	bool attached;
	pthread_t rx; /* reads the session's records */
	bool rx_started;
	volatile int rx_stop;
	bool rx_end; /* the end record came */
	bool incomplete; /* the daemon went away: its records of the run stop there */
	__u64 rx_lost;
};

/*
 * Through the daemon (run_client.c). run_pick_mode: r->daemon when one
 * answers on --socket, $WEIR_SOCKET or the default path; a socket named by
 * the first two must answer (else -ECONNREFUSED, said); the default one
 * not answering means standalone. run_daemon_attach: the cgroup is made
 * (r->cgfd, r->cgpath), attached by the daemon with the policy inline, and
 * its records read on a thread. run_daemon_detach: once the cgroup is
 * empty; its last records read; false if nothing was ever attached. With
 * DETACH false (processes survived SIGKILL) it stays attached, and the
 * records stop where they are.
 */
int run_pick_mode(struct run *r);
int run_daemon_attach(struct run *r);
bool run_daemon_detach(struct run *r, __u64 *lost, bool detach);
/* run.c: make the run's cgroup, weir/run-PID, with its lock. */
int run_make_cgroup(struct run *r);

#endif /* WEIR_RUN_H */
