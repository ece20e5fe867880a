// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "weir.h"
#include "stream.h"

/* --- where it goes ----------------------------------------------------------- */

/* N for /dev/fd/N and its aliases, else -1. */
static int fd_of(const char *arg)
{
	static const char *const dirs[] = { "/dev/fd/", "/proc/self/fd/" };
	char *end;
	size_t i;
	long n;

	if (!strcmp(arg, "/dev/stdin"))
		return 0;
	if (!strcmp(arg, "/dev/stdout"))
		return 1;
	if (!strcmp(arg, "/dev/stderr"))
		return 2;
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (strncmp(arg, dirs[i], strlen(dirs[i])))
			continue;
		arg += strlen(dirs[i]);
		errno = 0;
		n = strtol(arg, &end, 10);
		return *arg >= '0' && *arg <= '9' && !*end && !errno && n < 1 << 20 ? (int)n : -1;
	}
	return -1;
}

/*
 * The lowest descriptor the command inherits (weir's are close-on-exec)
 * that writes to the pipe or file FD does, or -1. `3>&1` without `>/dev/null`
 * leaves stdout on the stream's pipe: the command could forge events.
 */
static int shared_with_command(int fd)
{
	struct stat st, other;
	int i, fl;

	if (fstat(fd, &st) || !(S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode)))
		return -1;
	for (i = 0; i < 1024; i++) {
		if (i == fd)
			continue;
		fl = fcntl(i, F_GETFD);
		if (fl < 0 || (fl & FD_CLOEXEC))
			continue;
		fl = fcntl(i, F_GETFL);
		if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || fstat(i, &other))
			continue;
		if (other.st_dev == st.st_dev && other.st_ino == st.st_ino)
			return i;
	}
	return -1;
}

/*
 * Descriptor N, the caller's: weir keeps a close-on-exec copy and closes N,
 * so the command cannot write into the stream (it would forge events).
 * 0-2 are the command's own stdio: never an event stream of their own.
 */
static int open_fd(struct stream *s, const char *arg, int n, char *why, size_t len)
{
	int fd, other;

	if (n <= 2) {
		snprintf(why, len,
			 "-e %s: the command writes to descriptor %d too; give the events one of "
			 "their own (-e /dev/fd/3 3>&1), or use -e - (stderr, JSON only)",
			 arg, n);
		return -EINVAL;
	}
	fd = fcntl(n, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 && getenv("SUDO_UID")) {
		/* sudo closes every descriptor above 2 (sudoers' closefrom). */
		snprintf(why, len,
			 "-e %s: descriptor %d is not open: sudo passes on only 0, 1 and 2; "
			 "open it under sudo (sudo sh -c 'weir run -e %s -- CMD %d>&1 >/dev/null' "
			 "| jq), or use -e FILE",
			 arg, n, arg, n);
		return -EBADF;
	}
	if (fd < 0) {
		snprintf(why, len, "-e %s: descriptor %d is not open (%s)", arg, n,
			 strerror(errno));
		return -EBADF;
	}
	close(n);
	other = shared_with_command(fd);
	if (other >= 0) {
		snprintf(why, len,
			 "-e %s: the command's descriptor %d writes to the same pipe or file, so "
			 "the command could write into the stream; send its output elsewhere "
			 "(%d>&1 >/dev/null), or use -e FILE",
			 arg, other, n);
		close(fd);
		return -EINVAL;
	}
	/* "w", not "a": that would set O_APPEND on the caller's description. */
	s->f = fdopen(fd, "w");
	if (!s->f) {
		close(fd);
		return -errno;
	}
	return 0;
}

/* Created by root for a sudo user: theirs to read, nobody else's to write. */
static void give_group(int fd)
{
	const char *g = getenv("SUDO_GID");
	char *end;
	long gid;

	if (geteuid() || !g || !*g)
		return;
	gid = strtol(g, &end, 10);
	if (*end || gid <= 0 || gid >= (gid_t)-1)
		return;
	if (!fchown(fd, -1, (gid_t)gid))
		fchmod(fd, 0640);
}

/* SUDO_UID: the user root's weir runs for, else -1. */
static long sudo_uid(void)
{
	const char *u = getenv("SUDO_UID");
	char *end;
	long uid;

	if (!u || !*u)
		return -1;
	uid = strtol(u, &end, 10);
	return *end || uid < 0 ? -1 : uid;
}

/*
 * Whether root may write to the file it found at the path: one that is
 * not a directory or socket, whose only name is the one given (a hard
 * link planted in a shared directory may name any file of root's), and,
 * a regular file or FIFO, that is root's or the sudo user's (another
 * user's would get the run's events, and a FIFO could stall weir).
 */
static int file_ok(const char *path, const struct stat *st, char *why, size_t len)
{
	long su = sudo_uid();

	if (S_ISDIR(st->st_mode) || S_ISSOCK(st->st_mode)) {
		snprintf(why, len, "events file %s: not a file, pipe or device", path);
		return -EINVAL;
	}
	if (geteuid() || !(S_ISREG(st->st_mode) || S_ISFIFO(st->st_mode)))
		return 0;
	if (S_ISREG(st->st_mode) && st->st_nlink > 1) {
		snprintf(why, len, "events file %s has %ju hard links: weir, as root, would write "
			 "to every name of it (remove it, or name another file)", path,
			 (uintmax_t)st->st_nlink);
		return -EACCES;
	}
	if (st->st_uid && st->st_uid != su) {
		snprintf(why, len, "events file %s belongs to uid %ju, neither root nor the user "
			 "who ran sudo: weir does not write events there (remove it, or name "
			 "another file)", path, (uintmax_t)st->st_uid);
		return -EACCES;
	}
	return 0;
}

/*
 * A file: appended to, as log files are. O_NOFOLLOW: weir runs as root,
 * the directory may be a user's, and a symlink planted there must not
 * point weir's writes at a file of root's choosing; file_ok() judges what
 * is there (not O_CREAT, whose protected_regular would refuse the sudo
 * user's own file in /tmp too). O_NONBLOCK: a FIFO nobody reads fails at
 * once rather than stalling weir with its signals blocked.
 */
static int open_file(struct stream *s, const char *path, char *why, size_t len)
{
	int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
	bool created = true;
	struct stat st;
	int fd, ret;

	fd = open(path, flags | O_CREAT | O_EXCL, 0600);
	if (fd < 0 && errno == EEXIST) {
		created = false;
		fd = open(path, flags);
	}
	if (fd < 0) {
		int err = errno;

		snprintf(why, len, "cannot open events file %s: %s", path,
			 err == ELOOP ? "it is a symbolic link (weir does not follow one here: "
					"name the file it points to)" :
			 err == ENXIO ? "it is a FIFO nobody reads" :
					strerror(err));
		return -err;
	}
	if (fstat(fd, &st) || fcntl(fd, F_SETFL, O_APPEND)) {
		ret = -errno;
		snprintf(why, len, "events file %s: %s", path, strerror(-ret));
	} else {
		ret = file_ok(path, &st, why, len);
	}
	if (ret) {
		close(fd);
		return ret;
	}
	if (created)
		give_group(fd);
	s->named = true;
	s->f = fdopen(fd, "a");
	if (!s->f) {
		close(fd);
		return -errno;
	}
	return 0;
}

/*
 * A file or pipe of weir's own gets a big buffer: at a million events a
 * second, stdio's default (st_blksize, 4 KiB: a dozen lines) made a
 * write() every 12 events. The reader flushes after each batch it drains.
 */
#define STREAM_BUF (1 << 20)

int stream_open(struct stream *s, const char *arg, char *why, size_t len)
{
	int n, ret;

	if (!strcmp(arg, "-")) {
		/* Unbuffered: each record is one write(), whole among the
		 * command's own stderr writes. */
		s->f = stderr;
		s->on_stderr = true;
		return 0;
	}
	n = fd_of(arg);
	ret = n >= 0 ? open_fd(s, arg, n, why, len) : open_file(s, arg, why, len);
	if (!ret)
		setvbuf(s->f, NULL, _IOFBF, STREAM_BUF);
	return ret;
}

/* --- records ----------------------------------------------------------------- */

/* Bytes in the UTF-8 sequence at s (1-4), or 0 if it is not valid. */
static int utf8_len(const unsigned char *s)
{
	int n, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, above U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void stream_json_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	int n;

	fputc('"', f);
	while (*s) {
		n = utf8_len(s);
		if (!n) {
			fputs("\\ufffd", f);
			s++;
		} else if (*s == '"' || *s == '\\') {
			fprintf(f, "\\%c", *s++);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s++);
		} else {
			fwrite(s, 1, n, f);
			s += n;
		}
	}
	fputc('"', f);
}

static __s64 now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (__s64)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* {"v":1,"ts":"...","op":"OP" -- the head every record has. */
static void head(FILE *f, const char *op)
{
	__s64 ns = now_ns(CLOCK_REALTIME);
	time_t sec = ns / 1000000000LL;
	struct tm tm;

	gmtime_r(&sec, &tm);
	fprintf(f, "{\"v\":%d,\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ\",\"op\":\"%s\"",
		EVENTS_SCHEMA_VERSION, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		tm.tm_min, tm.tm_sec, (long long)(ns % 1000000000LL), op);
}

/*
 * Build the record in memory and write it at once: one line, one write on
 * stderr (unbuffered), never torn by the decision events other threads
 * write (stdio locks the FILE per call).
 */
static void emit(struct stream *s, char *buf, size_t n)
{
	if (buf && n) {
		fwrite(buf, 1, n, s->f);
		fflush(s->f);
	}
	free(buf);
}

/* Messages come from the resolver's thread too. */
static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;

/* Hold BUF back until run-start is out; false if it is. */
static bool hold(struct stream *s, char *buf, size_t n)
{
	char *p;
	bool held = false;

	pthread_mutex_lock(&pending_mu);
	if (!s->started && buf) {
		p = realloc(s->pending, s->n_pending + n);
		if (p) {
			memcpy(p + s->n_pending, buf, n);
			s->pending = p;
			s->n_pending += n;
			held = true;
		}
	}
	pthread_mutex_unlock(&pending_mu);
	if (held)
		free(buf);
	return held;
}

static void flush_pending(struct stream *s)
{
	pthread_mutex_lock(&pending_mu);
	emit(s, s->pending, s->n_pending);
	s->pending = NULL;
	s->n_pending = 0;
	pthread_mutex_unlock(&pending_mu);
}

void stream_message(struct stream *s, const char *level, const char *msg)
{
	size_t n = 0;
	char *buf = NULL;
	FILE *m;

	if (!s->f || !(m = open_memstream(&buf, &n)))
		return;
	head(m, "message");
	fprintf(m, ",\"level\":\"%s\",\"message\":", level);
	stream_json_str(m, msg);
	fputs("}\n", m);
	fclose(m);
	if (!hold(s, buf, n))
		emit(s, buf, n);
}

static void put_str_list(FILE *m, const char *key, const char *const *v, int n)
{
	int i;

	fprintf(m, ",\"%s\":[", key);
	for (i = 0; n < 0 ? v[i] != NULL : i < n; i++) {
		if (i)
			fputc(',', m);
		stream_json_str(m, v[i]);
	}
	fputc(']', m);
}

static void put_policy(FILE *m, const struct stream_run *run)
{
	int i;

	fputs(",\"policy\":", m);
	if (run->policy_name)
		stream_json_str(m, run->policy_name);
	else
		fputs("null", m);
	fputs(",\"policy_source\":", m);
	stream_json_str(m, run->policy_source);
	fputs(",\"policy_sha256\":\"", m);
	for (i = 0; i < 32; i++)
		fprintf(m, "%02x", run->policy_sha256[i]);
	fprintf(m, "\",\"mode\":\"%s\"", run->audit ? "audit" : "enforce");
	put_str_list(m, "allow", run->allow, run->n_allow);
}

void stream_run_start(struct stream *s, const struct stream_run *run)
{
	char host[256] = "", *buf = NULL;
	size_t n = 0;
	FILE *m;

	if (!s->f || !(m = open_memstream(&buf, &n)))
		return;
	gethostname(host, sizeof(host) - 1);
	head(m, "run-start");
	fputs(",\"weir\":", m);
	stream_json_str(m, weir_version());
	put_str_list(m, "argv", (const char *const *)run->argv, -1);
	put_policy(m, run);
	fputs(",\"user\":", m);
	stream_json_str(m, run->user ? run->user : "");
	fprintf(m, ",\"uid\":%u,\"gid\":%u,\"host\":", run->uid, run->gid);
	stream_json_str(m, host);
	fprintf(m, ",\"weir_pid\":%d,\"cgroup\":", (int)getpid());
	stream_json_str(m, run->cgroup);
	fprintf(m, ",\"cgroup_id\":%llu}\n", (unsigned long long)run->cgroup_id);
	fclose(m);
	emit(s, buf, n);
	pthread_mutex_lock(&pending_mu);
	s->started = true;
	pthread_mutex_unlock(&pending_mu);
	flush_pending(s);
	s->start_ns = now_ns(CLOCK_MONOTONIC);
}

static void put_counts(FILE *m, const char *key, const __u64 c[3])
{
	fprintf(m, ",\"%s\":{\"allow\":%llu,\"deny\":%llu,\"would-deny\":%llu}", key,
		(unsigned long long)c[1], (unsigned long long)c[0], (unsigned long long)c[2]);
}

void stream_run_end(struct stream *s, const struct stream_end *end)
{
	size_t n = 0;
	char *buf = NULL;
	FILE *m;

	if (!s->f || !s->started || !(m = open_memstream(&buf, &n)))
		return;
	head(m, "run-end");
	fprintf(m, ",\"exit\":%d", end->exit);
	if (end->signal)
		fprintf(m, ",\"signal\":%d", end->signal);
	if (end->weir_failed)
		fputs(",\"weir_failed\":true", m);
	fprintf(m, ",\"duration_ms\":%lld",
		(long long)((now_ns(CLOCK_MONOTONIC) - s->start_ns) / 1000000));
	put_counts(m, "decisions", end->counts.decisions);
	put_counts(m, "dns", end->counts.dns);
	fprintf(m, ",\"dns_failed\":%llu", (unsigned long long)end->counts.dns_failed);
	if (end->incomplete)
		fputs(",\"incomplete\":true", m);
	fprintf(m, ",\"lost\":%llu,\"weir_pid\":%d}\n", (unsigned long long)end->lost,
		(int)getpid());
	fclose(m);
	emit(s, buf, n);
}

int stream_close(struct stream *s)
{
	int ret = 0;

	if (s->f)
		flush_pending(s); /* weir failed before run-start: say why */
	if (s->f && (fflush(s->f) || ferror(s->f)))
		ret = -EIO;
	if (s->f && s->f != stderr && fclose(s->f))
		ret = -EIO;
	s->f = NULL;
	return ret;
}

int stream_fd_of(const char *arg)
{
	return strcmp(arg, "-") ? fd_of(arg) : 2;
}
