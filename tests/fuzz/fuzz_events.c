// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: events as the ring buffer hands them over (any bytes: the
 * kernel side is trusted, but a bug there must not become one here),
 * formatted as JSON and as the human line, with a policy to name rules
 * from (make fuzz).
 */
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

static struct policy *pol;

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	static const char yaml[] = "version: 1\nallow:\n  - domain: web.test\n  - cidr: 192.0.2.0/24\n"
				   "deny:\n  - domain: '*.evil.test'\n";
	struct event_ctx ctx = { .cgroup_id = 7, .cgroup_path = "/weir/run-1" };
	struct weir_event e;
	char err[POLICY_ERR_LEN], buf[4096];

	if (!pol && policy_load_buffer("t.yaml", yaml, sizeof(yaml) - 1, &pol, err))
		abort();
	if (len < sizeof(e) + sizeof(ctx.boot_to_real_ns))
		return 0;
	memcpy(&e, data, sizeof(e));
	memcpy(&ctx.boot_to_real_ns, data + sizeof(e), sizeof(ctx.boot_to_real_ns));
	ctx.policy = data[len - 1] & 1 ? pol : NULL;
	event_format_json(&ctx, &e, buf, sizeof(buf));
	event_format_human(&ctx, &e, buf, sizeof(buf));
	event_format_dest(&e, buf, sizeof(buf));
	return 0;
}
