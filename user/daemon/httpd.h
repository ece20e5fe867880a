/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libmicrohttpd, loaded when the daemon starts its servers rather than
 * when any weir starts (lazylib.h: it brings GnuTLS and more with it).
 * api.c and metrics.c call it through this table.
 */
#ifndef WEIR_HTTPD_H
#define WEIR_HTTPD_H

#include <stddef.h>
#include <microhttpd.h>

struct mhd_fns {
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_lookup_connection_value) *lookup_connection_value;
	__typeof__(MHD_get_connection_info) *get_connection_info;
	/* a session's stream (session.c) */
	__typeof__(MHD_create_response_from_callback) *create_response_from_callback;
	__typeof__(MHD_suspend_connection) *suspend_connection;
	__typeof__(MHD_resume_connection) *resume_connection;
};
extern struct mhd_fns mhd;

/* Load it (once; later calls return the first answer). 0 or -errno, err says why. */
int httpd_load(char *err, size_t len);

#endif /* WEIR_HTTPD_H */
