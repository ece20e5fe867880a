// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libmicrohttpd through dlopen(): see httpd.h and lazylib.h. */
#include "httpd.h"
#include "lazylib.h"

#ifndef WEIR_MHD_SONAME
#define WEIR_MHD_SONAME "libmicrohttpd.so.12"
#endif

struct mhd_fns mhd;

int httpd_load(char *err, size_t len)
{
	static const struct lazy_sym syms[] = {
		LAZY_SYM(MHD_start_daemon, mhd.start_daemon),
		LAZY_SYM(MHD_stop_daemon, mhd.stop_daemon),
		LAZY_SYM(MHD_create_response_from_buffer, mhd.create_response_from_buffer),
		LAZY_SYM(MHD_add_response_header, mhd.add_response_header),
		LAZY_SYM(MHD_queue_response, mhd.queue_response),
		LAZY_SYM(MHD_destroy_response, mhd.destroy_response),
		LAZY_SYM(MHD_lookup_connection_value, mhd.lookup_connection_value),
		LAZY_SYM(MHD_get_connection_info, mhd.get_connection_info),
		LAZY_SYM(MHD_create_response_from_callback, mhd.create_response_from_callback),
		LAZY_SYM(MHD_suspend_connection, mhd.suspend_connection),
		LAZY_SYM(MHD_resume_connection, mhd.resume_connection),
	};
	static int ret = 1;

	if (ret > 0)
		ret = lazylib_open(WEIR_MHD_SONAME, "libmicrohttpd12", syms,
				   sizeof(syms) / sizeof(syms[0]), err, len);
	return ret;
}
