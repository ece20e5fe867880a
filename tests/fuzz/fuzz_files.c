// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: the system files weir reads, written to a temp file and read
 * back as /proc/self/mountinfo (the cgroup2 mount), /etc/resolv.conf (the
 * nameservers) and /etc/hosts (the resolver's static names) (make fuzz).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "compile.h"
#include "policy.h"
#include "resolve.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

static char path[] = "/tmp/weir-fuzz-files-XXXXXX";
static struct policy *pol;
static struct resolver *res;

static int setup(void)
{
	static const char yaml[] = "version: 1\nallow:\n  - domain: web.test\n  - domain: '*.a.test'\n";
	char err[POLICY_ERR_LEN];
	int fd = mkstemp(path);

	if (fd < 0 || policy_load_buffer("t.yaml", yaml, sizeof(yaml) - 1, &pol, err))
		return -1;
	close(fd);
	return resolver_new(pol, NULL, 0, false, &res);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	struct resolved_addr *ns;
	char mnt[4096];
	size_t n;
	FILE *f;

	if (!res && setup())
		abort();
	f = fopen(path, "w");
	if (!f)
		abort();
	fwrite(data, 1, len, f);
	fclose(f);
	cgroup_find_v2(path, mnt, sizeof(mnt));
	mount_find(path, "bpf", mnt, sizeof(mnt));
	if (!read_nameservers(path, &ns, &n))
		free(ns);
	resolver_load_hosts(res, path);
	return 0;
}
