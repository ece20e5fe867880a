// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: the event stream's JSON strings, its run records, where it opens. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <criterion/criterion.h>
#include <ldns/sha2.h>

#include "stream.h"

static char *json_of(const char *in)
{
	static char out[256];
	FILE *f = fmemopen(out, sizeof(out), "w");

	stream_json_str(f, in);
	fclose(f);
	return out;
}

Test(stream, json_strings)
{
	cr_assert_str_eq(json_of("a\"b\\c\n\x1b"), "\"a\\\"b\\\\c\\u000a\\u001b\"");
	/* valid UTF-8 is kept as it is */
	cr_assert_str_eq(json_of("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
			 "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* a stray byte, an overlong '/', a surrogate, a cut-off sequence */
	cr_assert_str_eq(json_of("\xff"), "\"\\ufffd\"");
	cr_assert_str_eq(json_of("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
	cr_assert_str_eq(json_of("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
	cr_assert_str_eq(json_of("x\xe2\x82"), "\"x\\ufffd\\ufffd\"");
}

/* policy_sha256 comes from ldns: FIPS 180-2's "abc". */
Test(stream, sha256_abc)
{
	static const unsigned char want[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	unsigned char got[32];

	ldns_sha256((unsigned char *)"abc", 3, got);
	cr_assert_eq(memcmp(got, want, 32), 0);
}

static char tmpdir[64];

static void mk_tmp(void)
{
	strcpy(tmpdir, "/tmp/weir-stream.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

Test(stream, file_appends_and_refuses_symlinks, .init = mk_tmp, .fini = rm_tmp)
{
	struct stream s = {};
	char path[128], link[128], why[256], buf[64] = "";
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ev", tmpdir);
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	f = fopen(path, "w");
	fputs("old\n", f);
	fclose(f);
	cr_assert_eq(stream_open(&s, path, why, sizeof(why)), 0, "%s", why);
	fputs("new\n", s.f);
	stream_close(&s);
	f = fopen(path, "r");
	cr_assert_eq(fread(buf, 1, sizeof(buf) - 1, f), 8);
	fclose(f);
	cr_assert_str_eq(buf, "old\nnew\n");

	cr_assert_eq(symlink(path, link), 0);
	cr_assert_eq(stream_open(&s, link, why, sizeof(why)), -ELOOP);
	cr_assert_not_null(strstr(why, "symbolic link"), "%s", why);

	unlink(path);
	cr_assert_eq(stream_open(&s, path, why, sizeof(why)), 0, "%s", why);
	stream_close(&s);
	cr_assert_eq(stat(path, &st), 0);
	if (geteuid() || !getenv("SUDO_GID"))
		cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
}

Test(stream, fds)
{
	struct stream s = {};
	char why[256], arg[32];
	int p[2];

	cr_assert_eq(stream_open(&s, "/dev/stdout", why, sizeof(why)), -EINVAL);
	cr_assert_eq(stream_open(&s, "/dev/fd/2", why, sizeof(why)), -EINVAL);
	cr_assert_eq(stream_open(&s, "/proc/self/fd/0", why, sizeof(why)), -EINVAL);
	cr_assert_eq(stream_open(&s, "/dev/fd/999", why, sizeof(why)), -EBADF);
	cr_assert_eq(pipe(p), 0);
	snprintf(arg, sizeof(arg), "/dev/fd/%d", p[1]);
	cr_assert_eq(stream_open(&s, arg, why, sizeof(why)), 0, "%s", why);
	/* N is closed: the command cannot inherit it; weir's copy is close-on-exec */
	cr_assert_eq(fcntl(p[1], F_GETFD), -1);
	cr_assert(fcntl(fileno(s.f), F_GETFD) & FD_CLOEXEC);
	stream_close(&s);
	close(p[0]);
}
