/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One enforced cgroup on top of a loaded struct egress: the policy in
 * force (compiled into the handle's slot), its resolver (weir's DNS,
 * bound on 127.0.0.1 and ::1 inside the cgroup's network namespace), the
 * addresses it learned, the static names it keeps resolving. The daemon
 * keeps one per cgroup; the links themselves are the caller's business
 * (egress_attach_handle / egress_adopt / egress_detach_handle), since a
 * restarted daemon adopts links it never made.
 */
#ifndef WEIR_ATTACHMENT_H
#define WEIR_ATTACHMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "dns.h"
#include "egress.h"
#include "policy.h"

struct attachment;

struct attachment_cfg {
	struct egress *egress;
	__u32 handle; /* allocated (egress_handle_alloc) or adopted */
	int netns_fd; /* where the resolver lives (-1: ours); kept open */
	const char *root; /* "/proc/PID/root" of a process in the cgroup: its
			   * resolv.conf, hosts and nsswitch.conf; NULL: ours */
	const char *nameservers; /* "IP:PORT [IP:PORT]...", the upstreams when the
				  * policy names none (a restarted daemon's, as
				  * attachment_nameservers() gave them); NULL: read
				  * ROOT/etc/resolv.conf now, once */
	const char *hosts; /* ROOT's /etc/hosts as attachment_hosts() gave it (a
			    * restarted daemon's), with nss_bypass; NULL: read
			    * ROOT's hosts, nsswitch.conf and nscd now, once */
	bool nss_bypass;
	__u16 dns_port; /* 0: a free port; else this one (adoption) */
	bool no_dns; /* no resolver at all (port 53 then fails closed) */
	bool require_upstream; /* no nameserver is an error (weir run), not a
				* warning (a daemon's cgroup: its DNS fails) */
	bool attribute_all; /* find the asker of every query (an events stream) */
	dns_event_fn on_dns_event;
	void *ctx;
	/* Its resolver's notes (an upstream failing): to this sink, not the
	 * log (NULL: the log, with the name in front). ctx as above. */
	log_sink_fn on_log;
	const char *name; /* for messages */
};

/*
 * Take P (owned from now on, also on failure), resolve its static names,
 * write it as the handle's policy, bind the resolver. Nothing is served
 * until attachment_start(). err: why it failed, one line.
 */
int attachment_open(const struct attachment_cfg *cfg, struct policy *p,
		    struct attachment **out, char *err, size_t len);
/*
 * attachment_open() in two steps, for weir run, which sizes the maps of
 * its one attachment from the policy before it loads them: prepare (no
 * kernel: upstreams, static names, the resolver's sockets, so its port is
 * known), then bind to the loaded egress and handle (cfg's egress and
 * handle are not used before that).
 */
int attachment_prepare(const struct attachment_cfg *cfg, struct policy *p,
		       struct attachment **out, char *err, size_t len);
/* The map sizes the policy needs, with room for its static names to grow.
 * The compiled policy is kept for attachment_bind() to write. */
int attachment_map_sizes(struct attachment *a, struct map_sizes *ms, char *err, size_t len);
int attachment_bind(struct attachment *a, struct egress *e, __u32 handle, char *err,
		    size_t len);
/* Stop serving DNS (queries left waiting are reported as failed): the
 * last events before a summary. attachment_free() does it too. */
void attachment_stop(struct attachment *a);
/* The resolver's address for struct egress_attach_cfg (port 0: none). */
void attachment_dns_cfg(const struct attachment *a, struct egress_attach_cfg *out);
/* Serve DNS and refresh the static names (threads in the namespace). */
int attachment_start(struct attachment *a);
/*
 * Make P the policy in force (P owned from now on). Atomic: on any
 * failure the previous policy stays in force and nothing changes; err
 * says why. Addresses learned under the previous policy are judged again
 * by the new one: kept with the new ports, or forgotten.
 */
int attachment_set_policy(struct attachment *a, struct policy *p, char *err, size_t len);
/* An eventfd: readable when static names resolve to new addresses; then
 * call attachment_refresh(). -1 when nothing is refreshed. */
int attachment_notify_fd(const struct attachment *a);
int attachment_refresh(struct attachment *a);
/* The cgroup's nameservers, kept from attachment_open() on, as
 * cfg.nameservers takes them. */
void attachment_nameservers(const struct attachment *a, char *buf, size_t len);
/* The cgroup's /etc/hosts as taken when it was attached, and whether its
 * NSS answered without DNS; NULL when no process's view was taken. */
const char *attachment_hosts(const struct attachment *a, bool *nss_bypass);
const struct policy *attachment_policy(const struct attachment *a);
struct learn *attachment_learn(const struct attachment *a);
/* Stop serving and free. The handle, its links and its maps are left as
 * they are (egress_detach_handle them, or keep them enforced). NULL-safe. */
void attachment_free(struct attachment *a);

#endif /* WEIR_ATTACHMENT_H */
