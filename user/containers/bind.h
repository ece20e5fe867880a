/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the container triggers share (the OCI hook, user/containers/ocihook.c;
 * the NRI plugin): ask weir daemon to enforce a container's or a pod's
 * policy on its cgroup, and to let go of it when the container is gone.
 *
 * The daemon keeps the bookkeeping (docs/daemon.md, "Holders"): each bind
 * names its holder (the container or pod sandbox id); a second bind of the
 * same cgroup with the same policy and network namespace adds a holder to
 * the attachment that is there instead of making another, and a release
 * removes one holder, detaching when the last is gone. So two hooks racing,
 * a container restarted, a hook run twice, or a daemon restarted between
 * bind and release all end with one attachment, or none.
 */
#ifndef WEIR_CONTAINERS_BIND_H
#define WEIR_CONTAINERS_BIND_H

#include <stddef.h>
#include <sys/types.h>
#include <json-c/json.h>

/* The annotation a container or pod names its policy with. */
#define CONTAINER_POLICY_ANNOTATION "weir.dev/policy"
/* Capabilities weir refuses a container (oci-hook) that are accepted: a
 * list such as "NET_RAW,NET_ADMIN" (docs/containers.md, "Capabilities"). */
#define CONTAINER_CAPS_ANNOTATION "weir.dev/allow-capabilities"
/* Every annotation under this prefix is weir's: one it does not know is an
 * error (a misspelling must not start a container unconfined). */
#define CONTAINER_ANNOTATION_PREFIX "weir.dev/"
/* A holder id (a container or sandbox id) is at most this long. */
#define CONTAINER_ID_MAX 255

struct container_bind {
	const char *id; /* container or pod sandbox id (the runtime's): the holder */
	const char *policy; /* policy NAME in the daemon's policy dir (annotation weir.dev/policy) */
	const char *cgroup; /* cgroup v2 path to bind, absolute or below the cgroup2 mount
			     * (the container's, or the pod's: the parent of its containers) */
	const char *netns; /* the network namespace (/proc/PID/ns/net, /var/run/netns/X), NULL:
			    * that of a process in the cgroup */
	pid_t pid; /* a process in the container, 0 if none yet */
	/* Optional (NULL: left to the daemon): */
	const char *name; /* label in weir ps, events, metrics (NULL: the id's first 12 chars) */
	const char *root; /* the container's root file system as its runtime mounted it
			   * (/proc/PID/root/ROOTFS before pivot_root): its etc/resolv.conf
			   * gives the resolver's upstreams, etc/hosts its static names */
	const char *nameservers; /* "IP IP:PORT [IPv6]:PORT": the upstreams when the policy names
				  * none (the pod's DNS config); wins over ROOT's resolv.conf */
};

/*
 * Ask the daemon at SOCKET (NULL: $WEIR_SOCKET, else /run/weir/weir.sock) to
 * enforce B. Idempotent, keyed by cgroup and network namespace: a second
 * bind of the same cgroup and netns with the same policy succeeds without a
 * second attachment (B->id is added to its holders); another policy, or
 * another netns, on that cgroup is -EEXIST. Returns 0, or -errno with a
 * message a person can act on in ERR. Never "allow" on failure: the caller
 * must not let the container start.
 */
int container_bind(const char *socket, const struct container_bind *b, char *err,
		   size_t errlen);

/*
 * Release what container ID held (poststop, RemovePodSandbox): ID leaves
 * the holders of every attachment it held (CGROUP: only that one's; NULL:
 * all), and an attachment whose last holder left is detached. Releasing
 * what ID does not hold (a second poststop) is 0. 0 or -errno and ERR.
 */
int container_release(const char *socket, const char *id, const char *cgroup, char *err,
		      size_t errlen);

/*
 * The policy name in ANNOTATIONS (a json-c object of string values: the OCI
 * state's or config.json's annotations, a pod's): weir.dev/policy. NULL if
 * absent, or if present but no valid NAME, or if another weir.dev/ key is
 * there (then ERR says why, and the caller must fail: an annotated
 * container never runs unconfined); with no annotation ERR is "". NAME is a policy directory entry: [A-Za-z0-9._-],
 * 1-255 bytes, not starting with '.'.
 */
const char *container_policy_annotation(struct json_object *annotations, char *err,
					size_t errlen);

/*
 * The cgroup v2 path of PID below the cgroup2 mount ("/machine.slice/
 * libpod-ID.scope"), from /proc/PID/cgroup's "0::" line. 0 or -errno (and
 * ERR): -ENOENT the process is in no cgroup v2 (a runtime that left it in
 * the v1 hierarchies only) or is gone.
 */
int container_cgroup_of(pid_t pid, char *out, size_t len, char *err, size_t errlen);

#endif /* WEIR_CONTAINERS_BIND_H */
