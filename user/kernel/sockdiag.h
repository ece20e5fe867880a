/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The socket cookie of a local peer, from its 4-tuple (NETLINK_SOCK_DIAG). */
#ifndef WEIR_SOCKDIAG_H
#define WEIR_SOCKDIAG_H

#include <sys/socket.h>
#include <linux/types.h>

/*
 * Cookie of the socket at `peer` talking to us at `local` (protocol
 * IPPROTO_UDP or IPPROTO_TCP). 0 or a negative errno.
 */
int sockdiag_cookie(int protocol, const struct sockaddr *peer, const struct sockaddr *local,
		    __u64 *cookie);
/* Close this thread's netlink socket (at thread exit). */
void sockdiag_close(void);

#endif /* WEIR_SOCKDIAG_H */
