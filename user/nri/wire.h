/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The framing of an NRI connection, as the runtime speaks it on its unix
 * socket (docs/kubernetes.md, "The NRI plugin"):
 *
 *  - the socket is a trunk of multiplexed byte streams: each frame is the
 *    stream's id (big-endian u32), the payload's length (u32) and the
 *    payload. Stream 1 carries the plugin's service (the runtime asks, the
 *    plugin answers), stream 2 the runtime's (the plugin asks: register).
 *  - on each stream, ttrpc messages: length (u32, at most 4 MiB), stream id
 *    (u32; a caller's requests use odd ids), type (1 request, 2 response,
 *    3 data), flags (u8), then a protobuf Request or Response.
 *
 * No protobuf here: bytes in, bytes out.
 */
#ifndef WEIR_NRI_WIRE_H
#define WEIR_NRI_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_PLUGIN_CONN 1 /* the plugin's service: requests from the runtime */
#define WIRE_RUNTIME_CONN 2 /* the runtime's service: our requests */
#define WIRE_MSG_MAX (4u << 20) /* ttrpc's largest message */
#define WIRE_REQUEST 1
#define WIRE_RESPONSE 2

struct wire_buf {
	unsigned char *p;
	size_t len, cap;
};

struct wire {
	int fd;
	struct wire_buf in; /* bytes read from the trunk, not yet a whole frame */
	struct wire_buf conn[3]; /* [1], [2]: each stream's bytes, not yet a whole message */
	unsigned char *msg; /* the last message handed out */
};

struct wire_msg {
	uint32_t conn; /* WIRE_PLUGIN_CONN or WIRE_RUNTIME_CONN */
	uint32_t stream;
	uint8_t type, flags;
	unsigned char *data; /* the protobuf; valid until the next wire_recv */
	size_t len;
};

void wire_init(struct wire *w, int fd);
/* Frees the buffers; the descriptor is the caller's. */
void wire_free(struct wire *w);

/*
 * The next whole ttrpc message from either stream, waiting at most
 * TIMEOUT_MS (-1: for ever). 0; -ETIMEDOUT; -ECONNRESET the runtime closed
 * the socket; -EPROTO a frame or message that breaks the framing (over
 * 4 MiB, or a trunk frame larger than any message); else -errno.
 */
int wire_recv(struct wire *w, struct wire_msg *m, int timeout_ms);

/* One ttrpc message on stream CONN, cut into trunk frames. 0 or -errno. */
int wire_send(struct wire *w, uint32_t conn, uint32_t stream, uint8_t type, uint8_t flags,
	      const void *data, size_t len);

#endif /* WEIR_NRI_WIRE_H */
