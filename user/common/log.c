// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "log.h"

#define LOG_LINE_MAX 2048
#define LOG_PREFIX "weir: "
#define LOG_PREFIX_LEN (sizeof(LOG_PREFIX) - 1)

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

/*
 * All of BUF to fd 2, resumed after a signal or a short write. The command
 * shares fd 2's open file description with weir and may set O_NONBLOCK on
 * it and fill the pipe, so that weir's denial lines and summary fail with
 * EAGAIN: weir then waits for room, as a blocking descriptor would.
 */
static void write_all(const char *buf, size_t n)
{
	struct pollfd p = { .fd = STDERR_FILENO, .events = POLLOUT };
	ssize_t w;

	while (n) {
		w = write(STDERR_FILENO, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return;
			continue;
		}
		if (w <= 0)
			return;
		buf += w;
		n -= (size_t)w;
	}
}

static ssize_t stderr_write(void *cookie, const char *buf, size_t n)
{
	(void)cookie;
	write_all(buf, n);
	return (ssize_t)n;
}

void log_stderr_init(void)
{
	cookie_io_functions_t io = { .write = stderr_write };
	FILE *f = fopencookie(NULL, "w", io);

	/* Unbuffered, as stderr is: each fprintf is one write_all(). */
	if (f && !setvbuf(f, NULL, _IONBF, 0))
		stderr = f;
	else if (f)
		fclose(f);
}

/*
 * Prefix and message in one write(): a command inside weir run writes to the
 * same stderr, and anything it wrote between two writes of ours (curl writes
 * its error a byte at a time) would land inside our line.  stdio's stderr is
 * unbuffered, so fputs + vfprintf were two writes or more.
 */
static int log_stderr(const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX], *buf = line;
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(line + LOG_PREFIX_LEN, sizeof(line) - LOG_PREFIX_LEN, fmt, ap);
	if (n < 0) {
		va_end(again);
		return n;
	}
	if ((size_t)n >= sizeof(line) - LOG_PREFIX_LEN) {
		/* Longer than the stack line: the whole of it, not a cut one. */
		buf = malloc(LOG_PREFIX_LEN + (size_t)n + 1);
		if (buf)
			vsnprintf(buf + LOG_PREFIX_LEN, (size_t)n + 1, fmt, again);
		else {
			buf = line;
			n = sizeof(line) - LOG_PREFIX_LEN - 1;
		}
	}
	va_end(again);
	memcpy(buf, LOG_PREFIX, LOG_PREFIX_LEN);
	write_all(buf, LOG_PREFIX_LEN + (size_t)n);
	if (buf != line)
		free(buf);
	return n;
}

/* To the sink as one line without its newline, or to stderr with the prefix. */
static int log_out(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n;

	if (!log_sink)
		return log_stderr(fmt, ap);
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
