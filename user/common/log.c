// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "log.h"

#define LOG_LINE_MAX 2048

static enum log_level log_level = LOG_LEVEL_INFO;
static log_sink_fn log_sink;
static void *log_sink_ctx;

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_set_sink(log_sink_fn fn, void *ctx)
{
	log_sink_ctx = ctx;
	log_sink = fn;
}

/* To the sink as one line without its newline, or to stderr with the prefix. */
static int log_out(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n;

	if (!log_sink) {
		/* One line, whole: the resolver's threads warn too. */
		int ret;

		flockfile(stderr);
		fputs("weir: ", stderr);
		ret = vfprintf(stderr, fmt, ap);
		funlockfile(stderr);
		return ret;
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_sink(level, line, log_sink_ctx);
	return (int)n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_out(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN && log_level < LOG_LEVEL_TRACE)
		return 0;
	/* libbpf's own lines begin "libbpf: " */
	return log_out(level == LIBBPF_WARN ? LOG_LEVEL_WARN : LOG_LEVEL_TRACE, fmt, ap);
}

void log_hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
