/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * weir daemon: one loaded struct egress enforcing a policy on each of many
 * existing cgroups (attachments), with a policy directory reloaded on
 * change and pins that survive a restart. This is the core's API; the HTTP
 * layer (api.c) calls it from its own thread: every call takes the core's
 * lock, so calls are serialised with each other and with the main loop.
 */
#ifndef WEIR_DAEMON_H
#define WEIR_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/types.h>

#define DAEMON_SOCKET "/run/weir/weir.sock"
#define DAEMON_POLICY_DIR "/etc/weir/policies"
#define DAEMON_STATE_DIR "/run/weir"
#define DAEMON_PIN_ROOT "/sys/fs/bpf/weir/daemon"

struct daemon;

struct daemon_opts {
	const char *socket; /* DAEMON_SOCKET (served by api.c) */
	const char *policy_dir; /* DAEMON_POLICY_DIR */
	const char *metrics; /* HOST:PORT or NULL (served by api.c) */
	const char *events; /* FILE, "-" (stdout) or NULL: no event stream */
	const char *state_dir; /* DAEMON_STATE_DIR */
	const char *pin_root; /* DAEMON_PIN_ROOT */
	bool detach_on_exit; /* TERM/INT detach everything (default: keep enforced) */
};

/*
 * The life of a daemon (user/cli/daemon.c, cmd_daemon):
 *   daemon_open()   load the programs, read the policy directory, lock the
 *                   state dir, adopt the pinned attachments of a previous
 *                   daemon (nothing is detached at any moment)
 *   api_start()     (api.c) serve the socket; READY=1 once it answers
 *   daemon_run()    events, inotify, timers, until SIGTERM/SIGINT
 *   api_stop()
 *   daemon_free()   attachments stay enforced (pinned) unless detach_on_exit and a signal stopped it
 */
int daemon_open(const struct daemon_opts *o, struct daemon **out);
int daemon_run(struct daemon *d);
void daemon_free(struct daemon *d);

struct attach_req {
	const char *cgroup; /* absolute, or relative to the cgroup2 mount */
	const char *policy; /* NAME (policy dir) or path to a file */
	const char *label; /* may be NULL: the cgroup's last component */
	const char *netns; /* may be NULL */
	/* A container trigger's (user/containers/bind.h); each may be NULL: */
	const char *holder; /* the container or sandbox id that holds it */
	const char *root; /* a directory whose etc/resolv.conf, hosts are the cgroup's */
	const char *nameservers; /* "ADDR ADDR...": the upstreams when the policy names none */
	pid_t peer_pid;
	uid_t peer_uid;
};

struct attach_info {
	__u64 cgroup_id;
	char cgroup[4096];
	char label[256];
	char policy[256];
	__u32 generation;
	__u64 allowed, denied, would_deny;
	__u64 budget_refused; /* packets, connects, sends refused past an upload_budget */
	__u16 dns_port;
	char state[1024]; /* "ok" or "policy error: FILE:LINE:COL: msg" */
	unsigned int holders; /* containers holding it (0: attached by hand, or weir run) */
	bool existed; /* daemon_attach: it was already attached, with this policy */
};

/* 0 or -errno; err says why. -EINVAL bad request or policy, -ENOENT no such
 * cgroup or policy, -EEXIST attached with another policy, -EPERM the peer
 * is itself enforced. Attaching the same cgroup with the same policy again
 * returns 0 (idempotent) with out->existed set. */
int daemon_attach(struct daemon *d, const struct attach_req *r, struct attach_info *out,
		  char *err, size_t len);
/*
 * weir run through the daemon: the policy sent inline, as weir run read and
 * checked it (its bytes, --allow rules, --audit); it is not from the policy
 * directory and never reloaded. The resolver reads the peer's /etc while
 * the cgroup is empty. session: keep the attachment's records for its
 * client (daemon_session). Errors as daemon_attach, but attaching again is
 * -EEXIST. The attachment is detached once its cgroup is gone.
 */
#define ATTACH_PASSED_MAX 67 /* --pass-fd's 64 and stdio */

struct attach_inline {
	const char *cgroup;
	const char *label;
	const char *netns;
	const char *policy_yaml;
	size_t policy_len;
	const char *policy_source; /* the policy's name in messages */
	const char *const *allow;
	size_t n_allow;
	/* Socket cookies of what weir run passes on (--pass-fd): excepted from
	 * the BPF LSM's "made outside" refusal for this cgroup, as standalone. */
	const __u64 *passed;
	size_t n_passed;
	bool audit, session;
	bool attribute_all; /* the asker of every query (its client keeps events) */
	pid_t peer_pid;
	uid_t peer_uid;
};

int daemon_attach_inline(struct daemon *d, const struct attach_inline *r,
			 struct attach_info *out, char *err, size_t len);
/* The session of the attachment of CGROUP_ID (a reference: session_put()
 * it), or NULL. */
struct session;
struct session *daemon_session(struct daemon *d, __u64 cgroup_id);

/* 0, -ENOENT not attached. */
int daemon_detach(struct daemon *d, const char *cgroup, char *err, size_t len);
/*
 * HOLDER (a container's id) lets go of the attachment of CGROUP (NULL:
 * every attachment it holds): it leaves its holders, and one whose last
 * holder left is detached. FN(ctx, cgroup path, detached) for each it
 * held. 0 (also when it held nothing: a second poststop), or -errno.
 */
typedef void (*daemon_release_fn)(void *ctx, const char *cgroup, bool detached);
int daemon_release(struct daemon *d, const char *holder, const char *cgroup,
		   daemon_release_fn fn, void *ctx, char *err, size_t len);
/* Every attachment, in a malloc'd array (free() it); returns the count. */
size_t daemon_list(struct daemon *d, struct attach_info **out);
/* Audit events lost since the daemon started: those the ring buffer could
 * not take (the kernel's count, pinned: a restart goes on counting) and
 * the records sessions dropped for a client that did not read. */
__u64 daemon_events_lost(struct daemon *d);
/* Re-read the policy directory now. report: one line per policy,
 * "NAME\tGENERATION\tSTATE\n" (STATE as in attach_info). 0 or -errno. */
int daemon_reload(struct daemon *d, char *report, size_t len);
/* Prometheus text exposition of the daemon's counters. */
void daemon_metrics(struct daemon *d, FILE *f);
/* Is PID inside an enforced cgroup (or below one)? Such a peer may not
 * change enforcement. Errs on the side of true when PID's cgroup cannot
 * be read. */
bool daemon_peer_enforced(struct daemon *d, pid_t pid);

/*
 * weir cleanup: remove the attachments pinned under PIN_ROOT (their links
 * stop enforcing) and its pinned maps, if no daemon owns it (holds its
 * lock). 0 and *removed attachments; -EBUSY a live daemon owns it.
 */
int daemon_cleanup_pins(const char *pin_root, int *removed);

#endif /* WEIR_DAEMON_H */
