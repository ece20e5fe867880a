// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 2: the unix programs' test of a path's spelling (bpf/unix.bpf.h,
 * weir_unix_canonical), byte by byte at its edges. Where the policy denies
 * any unix socket (the built-in list does), a path no pattern can judge
 * (relative; an empty, "." or ".." component) is refused with EPERM before
 * the kernel looks it up; any other path reaches the lookup (ENOENT here:
 * none of these exists). Kernels without the unix hooks (before 6.7) skip.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <criterion/criterion.h>

#include "harness.h"

static struct harness h;

static void setup(void)
{
	h_netns();
}

static void teardown(void)
{
	h_stop(&h);
}

TestSuite(unix_spelling, .init = setup, .fini = teardown);

struct spelling {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t len; /* bytes of sun_path given: 0, strlen */
};

/* 1: refused (EPERM), 2: looked up (ENOENT, ECONNREFUSED), 3: else. */
static int try_connect(void *arg)
{
	const struct spelling *s = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = s->len ?: strlen(s->path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), r;

	if (fd < 0)
		return 3;
	memcpy(sa.sun_path, s->path, len);
	r = connect(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + len);
	close(fd);
	if (!r)
		return 3;
	if (errno == EPERM)
		return 1;
	return errno == ENOENT || errno == ECONNREFUSED ? 2 : 3;
}

static int spelled(const char *path, size_t len)
{
	struct spelling s = { .len = len };

	memcpy(s.path, path, len ?: strlen(path) + 1);
	return h_wait(h_spawn(&h, try_connect, &s));
}

#define REFUSED(p) cr_expect_eq(spelled(p, 0), 1, "%s: not refused", p)
#define LOOKED_UP(p) cr_expect_eq(spelled(p, 0), 2, "%s: refused", p)

Test(unix_spelling, edges)
{
	char full[sizeof(((struct sockaddr_un *)0)->sun_path)];

	if (!egress_unix_supported())
		cr_skip_test("no cgroup unix hooks on this kernel (6.7+)");
	h_start(&h, "version: 1\nallow:\n  - ip: 198.51.100.7\n", NULL);

	LOOKED_UP("/weir-nope/sock");
	LOOKED_UP("/weir-nope/.../sock"); /* "...": a name */
	LOOKED_UP("/weir-nope/.sock");
	LOOKED_UP("/weir-nope/sock.");
	LOOKED_UP("/weir-nope/..sock");
	LOOKED_UP("/w");
	REFUSED("/weir-nope//sock");
	REFUSED("/weir-nope/./sock");
	REFUSED("/weir-nope/../sock");
	REFUSED("/weir-nope/sock/"); /* ends with an empty component */
	REFUSED("/weir-nope/sock/.");
	REFUSED("/weir-nope/sock/..");
	REFUSED("/");
	REFUSED("//");
	REFUSED("/./x");
	REFUSED("weir-nope/sock"); /* relative */
	REFUSED("./sock");

	/* The whole sun_path, no NUL: the last byte is judged too. */
	memset(full, 'a', sizeof(full));
	full[0] = '/';
	cr_expect_eq(spelled(full, sizeof(full)), 2, "a %zu-byte name: refused", sizeof(full));
	full[sizeof(full) - 2] = '/';
	full[sizeof(full) - 1] = '.';
	cr_expect_eq(spelled(full, sizeof(full)), 1, "a %zu-byte path ending in /.: not refused",
		     sizeof(full));
	full[sizeof(full) - 1] = 'b';
	cr_expect_eq(spelled(full, sizeof(full)), 2, "a %zu-byte path ending in /b: refused",
		     sizeof(full));

	/* An abstract name has one spelling: judged by the patterns alone. */
	cr_expect_eq(spelled("\0weir-nope", 10), 2, "an abstract name: refused");
}
