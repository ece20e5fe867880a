/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * weir oci-hook: an OCI runtime hook (podman and CRI-O through hooks.d,
 * any runtime through config.json's hooks). At createRuntime the
 * container's init is in its final cgroup, not yet running the user's
 * program: the hook asks the daemon to enforce the weir.dev/policy
 * annotation's policy there, and fails (the container does not start) if
 * it cannot. At poststop it releases what the container held.
 */
#ifndef WEIR_CONTAINERS_OCIHOOK_H
#define WEIR_CONTAINERS_OCIHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bind.h"

enum oci_stage {
	OCI_CREATE_RUNTIME,
	OCI_POSTSTOP,
};

/* "createRuntime" or "poststop" (the OCI spec's spelling): 0, else -EINVAL. */
int oci_stage_parse(const char *s, enum oci_stage *out);

/*
 * The container's holder name in the daemon: its ID, "@" and 16 hex digits
 * of SHA-256(ID, NUL, BUNDLE) ("web@3f2a91c07d5e8b14"; the id cut to fit in
 * CONTAINER_ID_MAX bytes, the hash covering all of it). An id is unique
 * only per runtime root (runc --root, containerd's namespaces, CRI-O next
 * to a user's runc), often chosen by the caller; the bundle is the
 * container's own directory, and both stages' states carry it. So the
 * poststop of another container with the same id releases nothing of this
 * one's. Without a BUNDLE: ID.
 */
void oci_holder(const char *id, const char *bundle, char out[CONTAINER_ID_MAX + 1]);

/*
 * Is POD (a cgroup path) named as the runtimes name a pod's cgroup:
 * kubelet's kubepods[-QOS]-pod<uid>.slice or pod<uid>, podman's
 * machine-libpod_pod_<id>.slice or libpod_parent/<id>? Only then are a
 * container's pod annotations trusted to bind its parent.
 */
bool oci_pod_cgroup_ok(const char *pod);

/*
 * Run the hook: the OCI state JSON from IN (the runtime writes it to the
 * hook's standard input), the daemon at SOCKET (NULL: $WEIR_SOCKET, else
 * /run/weir/weir.sock). 0: done, or nothing to do (no annotation; what it
 * did is in NOTE, "" if nothing). -errno: the container must not start
 * (createRuntime), or could not be released (poststop); ERR says why.
 */
int oci_hook(enum oci_stage stage, const char *socket, FILE *in, char *note, size_t notelen,
	     char *err, size_t errlen);

#endif /* WEIR_CONTAINERS_OCIHOOK_H */
