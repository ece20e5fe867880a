// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/syscall.h>

#include "privs.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif

static bool have_cap(const struct __user_cap_data_struct d[2], int cap)
{
	return d[cap / 32].effective & (1U << (cap % 32));
}

/*
 * In a user namespace other than the initial one, root holds every
 * capability over that namespace only: bpf() and cgroup attachment want
 * them in the initial one, and the kernel refuses (the feature probe would
 * read its EPERM as "no such program type", R8-16). The initial namespace
 * maps every id to itself: "0 0 4294967295".
 */
static bool initial_userns(void)
{
	unsigned long inside, outside, count;
	bool initial = true;
	FILE *f = fopen("/proc/self/uid_map", "re");

	if (!f)
		return true; /* no /proc: let the kernel say */
	if (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
		initial = inside == 0 && outside == 0 && count == 4294967295UL;
	fclose(f);
	return initial;
}

int privs_check_bpf(char *why, size_t len)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};
	char missing[128] = "";

	if (!initial_userns()) {
		snprintf(why, len,
			 "weir run needs root in the host's user namespace (CAP_BPF, CAP_NET_ADMIN "
			 "and CAP_SYS_ADMIN there): it cannot run inside a rootless container or "
			 "another user namespace; run it on the host (sudo weir run ...)");
		return -EPERM;
	}
	if (syscall(SYS_capget, &h, d))
		return -errno;
	/* Loading needs CAP_BPF (or CAP_SYS_ADMIN on kernels before 5.8),
	 * attaching to a cgroup CAP_NET_ADMIN, and making a cgroup and the
	 * task-reading fallback want CAP_SYS_ADMIN as well. */
	if (!have_cap(d, CAP_SYS_ADMIN))
		strcat(missing, " CAP_SYS_ADMIN");
	if (!have_cap(d, CAP_NET_ADMIN))
		strcat(missing, " CAP_NET_ADMIN");
	if (!have_cap(d, CAP_BPF) && !have_cap(d, CAP_SYS_ADMIN))
		strcat(missing, " CAP_BPF");
	if (!missing[0])
		return 0;
	snprintf(why, len,
		 "weir run needs root (or CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN); "
		 "missing:%s. Try: sudo weir run ...",
		 missing);
	return -EPERM;
}
