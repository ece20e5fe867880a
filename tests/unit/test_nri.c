// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tier 1: the NRI plugin's pure parts: a pod's cgroup from what the runtime
 * says, and the trunk/ttrpc framing over a socketpair. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "nri.h"
#include "wire.h"

static const char *cg(const char *parent, const char *path)
{
	static char out[4096];
	char err[256] = "";
	int ret = nri_pod_cgroup(parent, path, out, sizeof(out), err, sizeof(err));

	return ret ? NULL : out;
}

Test(nri, systemd_slices_expand)
{
	cr_assert_str_eq(cg("kubepods-besteffort-pod12_ab.slice", NULL),
			 "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12_ab.slice");
	cr_assert_str_eq(cg("kubepods-pod9.slice", ""), "kubepods.slice/kubepods-pod9.slice");
	cr_assert_str_eq(cg("kubepods.slice", NULL), "kubepods.slice");
}

Test(nri, cgroupfs_paths_are_below_the_mount)
{
	cr_assert_str_eq(cg("/kubepods/burstable/pod1", NULL), "kubepods/burstable/pod1");
	cr_assert_str_eq(cg("kubepods/pod1", NULL), "kubepods/pod1");
}

Test(nri, the_sandbox_path_gives_its_parent)
{
	cr_assert_str_eq(cg("", "kubepods-burstable-pod7.slice:cri-containerd:abc"),
			 "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7.slice");
	cr_assert_str_eq(cg(NULL, "/kubepods/pod7/crio-abc"), "kubepods/pod7");
}

Test(nri, refused)
{
	char out[64], err[256];

	cr_assert_null(cg(NULL, NULL));
	cr_assert_null(cg("", ""));
	cr_assert_null(cg("/kubepods/../etc", NULL));
	cr_assert_null(cg("/..", NULL));
	cr_assert_null(cg("/", NULL));
	cr_assert_null(cg("a//b", NULL));
	cr_assert_null(cg("-kubepods.slice", NULL));
	cr_assert_null(cg("kubepods--pod.slice", NULL));
	cr_assert_null(cg("kubepods-.slice", NULL));
	cr_assert_null(cg(NULL, "noparent"));
	cr_assert_eq(nri_pod_cgroup("a-b-c-d-e-f-g.slice", NULL, out, 20, err, sizeof(err)),
		     -ENAMETOOLONG);
	cr_assert_neq(strstr(err, "too long"), NULL, "%s", err);
	/* "..." and "..x" are names, not the parent. */
	cr_assert_str_eq(cg("/kubepods/...", NULL), "kubepods/...");
	cr_assert_str_eq(cg("/kubepods/..x", NULL), "kubepods/..x");
}

static void frame(int fd, uint32_t conn, const void *p, uint32_t n)
{
	uint32_t h[2] = { htobe32(conn), htobe32(n) };

	cr_assert_eq(write(fd, h, 8), 8);
	cr_assert_eq(write(fd, p, n), (ssize_t)n);
}

static size_t ttrpc(unsigned char *buf, uint32_t stream, uint8_t type, const char *body)
{
	uint32_t n = htobe32(strlen(body)), s = htobe32(stream);

	memcpy(buf, &n, 4);
	memcpy(buf + 4, &s, 4);
	buf[8] = type;
	buf[9] = 0;
	memcpy(buf + 10, body, strlen(body));
	return 10 + strlen(body);
}

Test(nri, a_message_split_across_frames_and_two_in_one)
{
	unsigned char a[64], b[64], both[128];
	struct wire_msg m;
	struct wire w;
	size_t na, nb;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	wire_init(&w, sv[0]);
	na = ttrpc(a, 1, WIRE_REQUEST, "hello");
	frame(sv[1], 1, a, 3); /* a message in three frames */
	frame(sv[1], 1, a + 3, 4);
	frame(sv[1], 1, a + 7, na - 7);
	cr_assert_eq(wire_recv(&w, &m, 1000), 0);
	cr_assert_eq(m.conn, 1);
	cr_assert_eq(m.stream, 1);
	cr_assert_eq(m.type, WIRE_REQUEST);
	cr_assert_eq(m.len, 5);
	cr_assert_eq(memcmp(m.data, "hello", 5), 0);
	na = ttrpc(both, 3, WIRE_REQUEST, "one");
	nb = ttrpc(both + na, 5, WIRE_REQUEST, "two!");
	frame(sv[1], 1, both, na + nb); /* two messages in one frame */
	frame(sv[1], 7, "ignored", 7); /* a stream nobody uses */
	nb = ttrpc(b, 1, WIRE_RESPONSE, "");
	frame(sv[1], 2, b, nb);
	cr_assert_eq(wire_recv(&w, &m, 1000), 0);
	cr_assert_eq(m.conn, 2); /* the runtime's stream first */
	cr_assert_eq(m.len, 0);
	cr_assert_eq(wire_recv(&w, &m, 1000), 0);
	cr_assert_eq(m.stream, 3);
	cr_assert_eq(memcmp(m.data, "one", 3), 0);
	cr_assert_eq(wire_recv(&w, &m, 1000), 0);
	cr_assert_eq(m.stream, 5);
	cr_assert_eq(memcmp(m.data, "two!", 4), 0);
	cr_assert_eq(wire_recv(&w, &m, 50), -ETIMEDOUT);
	close(sv[1]);
	cr_assert_eq(wire_recv(&w, &m, 1000), -ECONNRESET);
	wire_free(&w);
	close(sv[0]);
}

Test(nri, oversized_is_a_protocol_error)
{
	unsigned char h[10] = { 0 };
	uint32_t big = htobe32(WIRE_MSG_MAX + 1);
	struct wire_msg m;
	struct wire w;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	wire_init(&w, sv[0]);
	memcpy(h, &big, 4);
	frame(sv[1], 1, h, sizeof(h));
	cr_assert_eq(wire_recv(&w, &m, 1000), -EPROTO);
	wire_free(&w);
	close(sv[0]);
	close(sv[1]);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	wire_init(&w, sv[0]);
	{
		uint32_t hdr[2] = { htobe32(1), htobe32(64u << 20) }; /* a 64 MiB frame */

		cr_assert_eq(write(sv[1], hdr, 8), 8);
	}
	cr_assert_eq(wire_recv(&w, &m, 1000), -EPROTO);
	wire_free(&w);
	close(sv[0]);
	close(sv[1]);
}

Test(nri, send_is_one_frame_the_peer_can_read)
{
	unsigned char buf[64];
	uint32_t v;
	struct wire w;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	wire_init(&w, sv[0]);
	cr_assert_eq(wire_send(&w, 2, 9, WIRE_RESPONSE, 0, "abc", 3), 0);
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 8 + 10 + 3);
	memcpy(&v, buf, 4);
	cr_assert_eq(be32toh(v), 2);
	memcpy(&v, buf + 4, 4);
	cr_assert_eq(be32toh(v), 13);
	memcpy(&v, buf + 8, 4);
	cr_assert_eq(be32toh(v), 3);
	memcpy(&v, buf + 12, 4);
	cr_assert_eq(be32toh(v), 9);
	cr_assert_eq(buf[16], WIRE_RESPONSE);
	cr_assert_eq(memcmp(buf + 18, "abc", 3), 0);
	wire_free(&w);
	close(sv[0]);
	close(sv[1]);
}
