/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* sd_notify(3) for weir daemon under systemd's Type=notify. */
#ifndef WEIR_NOTIFY_H
#define WEIR_NOTIFY_H

/*
 * Send STATE ("READY=1", "STOPPING=1", "STATUS=...", newline-separated) as
 * one datagram to $NOTIFY_SOCKET: a path, or "@name" for an abstract
 * socket. 0 when sent or when $NOTIFY_SOCKET is unset (not under systemd),
 * else -errno.
 */
int notify_send(const char *state);
static inline int notify_ready(void)
{
	return notify_send("READY=1");
}
static inline int notify_stopping(void)
{
	return notify_send("STOPPING=1");
}

#endif /* WEIR_NOTIFY_H */
