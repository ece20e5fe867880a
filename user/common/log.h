/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* One logging module: every message goes to stderr prefixed "weir: ". */
#ifndef WEIR_LOG_H
#define WEIR_LOG_H

enum log_level {
	LOG_LEVEL_WARN = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_DEBUG = 2,
	LOG_LEVEL_TRACE = 3, /* -vv: libbpf's own debug output too */
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Send every message to FN instead of stderr (NULL: back to stderr): one
 * call per message, without the "weir: " prefix and the newline. From any
 * thread. weir run -e - turns them into JSON records of the event stream.
 */
typedef void (*log_sink_fn)(enum log_level level, const char *msg, void *ctx);
void log_set_sink(log_sink_fn fn, void *ctx);
/* Route libbpf's own messages through log_msg (debug ones only with -vv). */
void log_hook_libbpf(void);
/* weir's stderr (fprintf(stderr) and the log) waits for room on EAGAIN:
 * the command may set O_NONBLOCK on the fd 2 it shares with weir. */
void log_stderr_init(void);

#define pr_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif /* WEIR_LOG_H */
