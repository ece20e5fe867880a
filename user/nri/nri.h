/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * weir's NRI plugin (`weir nri`, docs/kubernetes.md): connects to the
 * container runtime's NRI socket (containerd >= 1.7, CRI-O >= 1.26),
 * registers, and when the runtime creates a pod sandbox whose annotations
 * name a policy (weir.dev/policy), asks the weir daemon to bind the pod's
 * cgroup (the parent of all its containers) and network namespace before
 * the runtime starts any of its containers: the same bind as the OCI hook
 * (user/containers/bind.h). A bind that fails fails the pod.
 */
#ifndef WEIR_NRI_H
#define WEIR_NRI_H

#include <signal.h>
#include <stddef.h>

#define NRI_SOCKET_DEFAULT "/var/run/nri/nri.sock"
#define NRI_PLUGIN_NAME "weir"
#define NRI_PLUGIN_IDX "10"

struct nri_opts {
	const char *nri_socket; /* the runtime's NRI socket */
	const char *socket; /* the weir daemon's (NULL: $WEIR_SOCKET, else the default) */
	const char *name; /* plugin name the runtime logs */
	const char *idx; /* two digits: the runtime calls plugins in this order */
};

/*
 * Serve the runtime at O->nri_socket until *STOP: connect, register, answer;
 * when the runtime closes the connection (a restart) or is not there yet,
 * try again every second. Returns 0 when stopped.
 */
int nri_run(const struct nri_opts *o, volatile sig_atomic_t *stop);

/*
 * The pod's cgroup below the cgroup2 mount, in the form the daemon takes
 * (no leading '/'), from NRI's LinuxPodSandbox: CGROUP_PARENT (systemd
 * driver: "kubepods-besteffort-pod<uid>.slice", expanded to
 * "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice";
 * cgroupfs driver: "/kubepods/besteffort/pod<uid>"), else the parent of
 * the sandbox's own CGROUPS_PATH ("SLICE:PREFIX:NAME" or a path). 0, or
 * -EINVAL with ERR saying why (none given, "..", not a slice name).
 */
int nri_pod_cgroup(const char *cgroup_parent, const char *cgroups_path, char *out, size_t len,
		   char *err, size_t errlen);

#endif /* WEIR_NRI_H */
