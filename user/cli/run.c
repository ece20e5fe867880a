// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir run: confine one command (and everything it starts) to a policy.
 *
 * Order matters: the policy is compiled and written, the programs attached
 * to a fresh cgroup, and only then is the command born inside that cgroup.
 * Teardown runs on every path: kill what is left in the cgroup, drain the
 * events, detach, remove the cgroup.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ldns/sha2.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>

#include "attachment.h"
#include "cgroup.h"
#include "cli.h"
#include "compile.h"
#include "dns.h"
#include "egress.h"
#include "events.h"
#include "kfeatures.h"
#include "learn.h"
#include "log.h"
#include "pins.h"
#include "privs.h"
#include "pump.h"
#include "resolve.h"
#include "run.h"
#include "runs.h"
#include "sandbox.h"
#include "shipped.h"
#include "spawn.h"
#include "stream.h"
#include "userenv.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define POLL_MS 50 /* events are submitted without wakeup: poll this often */
/* The pump's backlog: about 140,000 events, as much again as the ring buffer. */
#define PUMP_BYTES (16 << 20)

static const char run_usage[] =
	"Usage: weir run [OPTIONS] -- COMMAND [ARG...]\n"
	"Run COMMAND in its own cgroup; its connections are checked against a policy.\n"
	"\n"
	"  -p, --policy FILE   policy file (docs/policy.md); default: the built-in\n"
	"                      agent-default (package registries and GitHub over HTTPS)\n"
	"  -a, --allow RULE    extra allow rule, repeatable: NAME[:PORT], IP[:PORT],\n"
	"                      CIDR[:PORT], [IPv6]:PORT (PORT is N or N-M)\n"
	"      --audit         deny nothing (but cloud metadata), record what would be denied\n"
	"  -e, --events FILE   every decision as JSON lines, appended to FILE, between a\n"
	"                      run-start and a run-end record (docs/events.md);\n"
	"                      /dev/fd/N: to descriptor N, which COMMAND does not get\n"
	"                      (weir run -e /dev/fd/3 -- CMD 3>&1 >/dev/null | jq;\n"
	"                      under sudo, which closes 3: sudo sh -c 'weir run -e\n"
	"                      /dev/fd/3 -- CMD 3>&1 >/dev/null' | jq);\n"
	"                      '-': to stderr, with weir's own messages as JSON records\n"
	"                      too and -q implied\n"
	"  -u, --user USER     run COMMAND as USER (name or uid), with no capabilities\n"
	"                      and no_new_privs; default: the user who ran sudo, else root\n"
	"  -g, --group GROUP   and with this group (default: USER's)\n"
	"      --preserve-env  keep the caller's environment as is; without it, a\n"
	"                      switch of user sets USER's HOME, USER, LOGNAME, SHELL,\n"
	"                      XDG_RUNTIME_DIR and login PATH (docs/run.md)\n"
	"      --preserve-env=VAR,...  keep the caller's values of these\n"
	"      --setenv NAME=VALUE     set NAME (NAME alone: the caller's), repeatable\n"
	"  -q, --quiet         no per-denial lines on stderr; no summary unless something\n"
	"                      was denied, refused, failed or lost\n"
	"      --socket PATH   enforce through the weir daemon on PATH (default: its\n"
	"                      $WEIR_SOCKET, else /run/weir/weir.sock if a daemon\n"
	"                      answers there, else standalone; a socket given by\n"
	"                      --socket or $WEIR_SOCKET must answer)\n"
	"      --standalone    load weir's own programs even when a daemon runs\n"
	"      --pass-fd N     let COMMAND inherit descriptor N (repeatable); weir\n"
	"                      closes every other one above 2. A socket passed on is\n"
	"                      a hole: what COMMAND sends through it is never checked\n"
	"                      (weir warns when N is an inet socket); one on a cgroup\n"
	"                      file system is refused\n"
	"      --allow-socket-stdio  run COMMAND even when its stdin, stdout or\n"
	"                      stderr is an inet socket (inetd, a socket unit with\n"
	"                      StandardOutput=socket): unchecked, like --pass-fd\n"
	"  -v, --verbose       more detail (-vv: libbpf debug output and, standalone,\n"
	"                      the verifier's statistics of each program); says the mode\n"
	"  -h, --help          this help\n"
	"\n"
	"INT, TERM, HUP and QUIT sent to weir go to COMMAND, which starts with the\n"
	"signal dispositions and mask weir's caller gave (nohup: HUP stays ignored).\n"
	"\n"
	"Exit status: COMMAND's; 128+N if it died of signal N; 125 if weir failed or\n"
	"its command line is wrong; 126 if COMMAND could not be executed; 127 if it\n"
	"was not found.\n";

enum {
	OPT_PRESERVE_ENV = 256,
	OPT_SETENV,
	OPT_SOCKET,
	OPT_STANDALONE,
	OPT_PASS_FD,
	OPT_ALLOW_SOCKET_STDIO,
};

/* --preserve-env[=LIST] and --setenv SETTING. */
static int env_opt(int c, const char *arg, struct userenv_opts *e)
{
	if (c == OPT_PRESERVE_ENV && !arg) {
		e->keep_all = true;
	} else if (c == OPT_PRESERVE_ENV && userenv_valid_list(arg)) {
		e->keep[e->n_keep++] = arg;
	} else if (c == OPT_SETENV && userenv_valid_setting(arg)) {
		e->set[e->n_set++] = arg;
	} else {
		fprintf(stderr, "weir: run: %s'%s': want %s (a NAME is letters, digits, '_')\n",
			c == OPT_SETENV ? "--setenv " : "--preserve-env=", arg,
			c == OPT_SETENV ? "NAME=VALUE or NAME" : "NAME[,NAME]...");
		return cli_usage_error(NULL);
	}
	return 0;
}

/* --pass-fd N: a descriptor above 2 (0-2 are always the command's). */
static int pass_fd_opt(const char *arg, struct run_opts *o)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end || errno || n > 1 << 20) {
		fprintf(stderr, "weir: run: --pass-fd '%s': want a descriptor number\n", arg);
		return cli_usage_error(NULL);
	}
	if (n <= 2) {
		fprintf(stderr, "weir: run: --pass-fd %ld: stdin, stdout and stderr are always "
				"passed on\n", n);
		return cli_usage_error(NULL);
	}
	if (o->n_pass_fds == FDS_PASS_MAX) {
		fprintf(stderr, "weir: run: --pass-fd: at most %d\n", FDS_PASS_MAX);
		return cli_usage_error(NULL);
	}
	o->pass_fds[o->n_pass_fds++] = (int)n;
	return 0;
}

/* getopt's '?' or ':' for ARG (the word it was looking at). */
static int bad_option(int c, const char *arg)
{
	char opt[3] = { '-', (char)optopt, '\0' };

	fprintf(stderr, "weir: run: %s '%s'\n",
		c == ':' ? "option needs an argument:" : "unknown option",
		optopt && arg[1] != '-' ? opt : arg);
	return cli_usage_error(NULL);
}

static int parse_opts(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' }, { "allow", required_argument, NULL, 'a' },
		{ "audit", no_argument, NULL, 'A' },	    { "events", required_argument, NULL, 'e' },
		{ "quiet", no_argument, NULL, 'q' },	    { "verbose", no_argument, NULL, 'v' },
		{ "user", required_argument, NULL, 'u' },   { "group", required_argument, NULL, 'g' },
		{ "preserve-env", optional_argument, NULL, OPT_PRESERVE_ENV },
		{ "setenv", required_argument, NULL, OPT_SETENV },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "standalone", no_argument, NULL, OPT_STANDALONE },
		{ "pass-fd", required_argument, NULL, OPT_PASS_FD },
		{ "allow-socket-stdio", no_argument, NULL, OPT_ALLOW_SOCKET_STDIO },
		{ "help", no_argument, NULL, 'h' },	    {},
	};
	int c, verbose = 0;

	o->allow = calloc(argc, sizeof(*o->allow));
	o->env.keep = calloc(argc, sizeof(*o->env.keep));
	o->env.set = calloc(argc, sizeof(*o->env.set));
	if (!o->allow || !o->env.keep || !o->env.set)
		return -ENOMEM;
	optind = 1;
	opterr = 0; /* bad_option() says it, prefixed like every weir message */
	/* '+': stop at the first non-option, so COMMAND's own flags are its;
	 * ':': a missing argument is ':', not '?'. */
	while ((c = getopt_long(argc, argv, "+:p:a:e:u:g:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->policy_path = optarg;
			break;
		case 'a':
			o->allow[o->n_allow++] = optarg;
			break;
		case 'A':
			o->audit = true;
			break;
		case 'e':
			o->events_path = optarg;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'g':
			o->group = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_STANDALONE:
			o->standalone = true;
			break;
		case OPT_PASS_FD:
			if (pass_fd_opt(optarg, o))
				return -EINVAL;
			break;
		case OPT_ALLOW_SOCKET_STDIO:
			o->allow_socket_stdio = true;
			break;
		case OPT_PRESERVE_ENV:
		case OPT_SETENV:
			if (env_opt(c, optarg, &o->env))
				return -EINVAL;
			break;
		case 'h':
			fputs(run_usage, stdout);
			return 1;
		default:
			return bad_option(c, argv[optind - 1]);
		}
	}
	if (verbose)
		log_set_level(verbose > 1 ? LOG_LEVEL_TRACE : LOG_LEVEL_DEBUG);
	if (optind >= argc)
		return cli_usage_error("run: no COMMAND given");
	if (o->socket && o->standalone)
		return cli_usage_error("run: --socket and --standalone: one or the other");
	o->argv = argv + optind;
	return 0;
}

/* Through the log, so that with -e - they become records like the rest. */
static void print_policy_warnings(const struct policy *p)
{
	char *buf = NULL, *line, *save;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);

	if (!m)
		return;
	policy_print_warnings(m, p);
	fclose(m);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		pr_warn("%s\n", strncmp(line, "weir: ", 6) ? line : line + 6);
	free(buf);
}

/* The policy's bytes are read once: parsed, and hashed for run-start
 * (with the bytes of the files it includes). */
static int read_policy(struct run *r, char *err)
{
	const char *source = POLICY_BUILTIN_NAME;
	struct timespec t0, t1;
	char *buf = NULL;
	const char *text;
	size_t len;
	int ret;

	if (r->o.policy_path) {
		ret = policy_read_file(r->o.policy_path, &buf, &len, err);
		if (ret)
			return ret;
		source = r->o.policy_path;
		text = buf;
	} else {
		text = shipped_policy(POLICY_BUILTIN, &len);
	}
	/* The hash covers the included files too (struct policy's sha256). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = policy_load_buffer(source, text, len, &r->policy, err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ret)
		pr_debug("policy parsed in %.1f ms\n", (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			 (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	/* kept: a daemon gets these bytes */
	r->policy_text = buf ?: malloc(len ?: 1);
	if (r->policy_text && !buf)
		memcpy(r->policy_text, text, len);
	r->policy_len = len;
	if (!ret)
		memcpy(r->policy_sha256, r->policy->sha256, sizeof(r->policy_sha256));
	return ret;
}

static void run_opts_free(struct run_opts *o)
{
	free(o->allow);
	free(o->env.keep);
	free(o->env.set);
}

static int load_policy(struct run *r)
{
	char err[POLICY_ERR_LEN];
	int i, ret;

	ret = read_policy(r, err);
	for (i = 0; !ret && i < r->o.n_allow; i++)
		ret = policy_add_arg(r->policy, r->o.allow[i], err);
	if (ret) {
		pr_warn("%s\n", err);
		return ret;
	}
	if (r->o.audit)
		r->policy->mode = POLICY_AUDIT;
	print_policy_warnings(r->policy);
	return 0;
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct run *r = ctx;
	const struct weir_event *e = data;
	char buf[EVENT_JSON_MAX], dbuf[DNS_NAME_MAX];
	const char *domain;
	int n;

	if (len < sizeof(*e))
		return 0;
	domain = event_domain(&r->ectx, e, dbuf, sizeof(dbuf));
	pthread_mutex_lock(&r->out_mu);
	summary_add_domain(r->summary, r->ectx.policy, e, domain);
	if (r->events) {
		n = event_format_json_dom(&r->ectx, data, len, domain, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n++] = '\n';
			fwrite(buf, 1, n, r->events);
		}
	}
	/* A refused connect() that sent nothing (glibc's source address
	 * probes) is no denial: -v only. */
	if (!r->o.quiet && e->verdict != WEIR_V_ALLOW && event_is_decision(e)) {
		event_format_human_rec(&r->ectx, data, len, buf, sizeof(buf));
		log_msg(event_sent_nothing(e) ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, "%s\n", buf);
	}
	pthread_mutex_unlock(&r->out_mu);
	return 0;
}

/* The pump's writer thread: one record, and the file once it is idle. */
static void on_pumped(void *ctx, const void *rec, size_t len)
{
	on_event(ctx, (void *)rec, len);
}

static void flush_events(void *ctx)
{
	struct run *r = ctx;

	pthread_mutex_lock(&r->out_mu);
	if (r->events)
		fflush(r->events);
	pthread_mutex_unlock(&r->out_mu);
}

/* From the resolver's thread: one query. */
static void on_dns_event(void *ctx, const struct dns_event *e)
{
	struct run *r = ctx;
	char buf[EVENT_JSON_MAX * 2];

	pthread_mutex_lock(&r->out_mu);
	summary_add_dns(r->summary, e);
	if (r->events && event_format_dns_json(&r->ectx, e, buf, sizeof(buf)) > 0) {
		fprintf(r->events, "%s\n", buf);
		fflush(r->events);
	}
	if (!r->o.quiet && e->verdict != WEIR_V_ALLOW) {
		event_format_dns_human(e, buf, sizeof(buf));
		fprintf(stderr, "weir: %s\n", buf);
	}
	pthread_mutex_unlock(&r->out_mu);
}

static int exit_status(const struct run *r)
{
	if (WIFEXITED(r->status))
		return WEXITSTATUS(r->status);
	if (WIFSIGNALED(r->status))
		return 128 + WTERMSIG(r->status);
	return EXIT_WEIR_FAILED;
}

static void log_to_stream(enum log_level level, const char *msg, void *ctx)
{
	struct run *r = ctx;

	stream_message(&r->stream, level == LOG_LEVEL_WARN ? "warning" :
				   level == LOG_LEVEL_INFO ? "info" :
							     "debug",
		       msg);
}

/*
 * First thing: with -e -, stderr carries JSON and nothing else from weir,
 * so every message from here on is a record, and -q is implied (the
 * events say what the denial lines would; run-end is the summary).
 */
static int open_events(struct run *r)
{
	char why[512];
	int ret;

	if (!r->o.events_path)
		return 0;
	ret = stream_open(&r->stream, r->o.events_path, why, sizeof(why));
	if (ret) {
		pr_warn("%s\n", why);
		return ret;
	}
	r->events = r->stream.f;
	if (r->stream.on_stderr) {
		r->o.quiet = true;
		log_set_sink(log_to_stream, r);
	}
	return 0;
}

static const char *const stdio_name[] = { "stdin", "stdout", "stderr" };

/* Is GID the command's, primary or supplementary? */
static bool command_has_gid(const struct identity *id, gid_t gid)
{
	int i;

	if (id->gid == gid)
		return true;
	for (i = 0; i < id->ngroups; i++)
		if (id->groups[i] == gid)
			return true;
	return false;
}

/*
 * -e FILE (or a FIFO) the command could open by its name and write, as the
 * user it runs as (sudo's user's own file, say): it could append records
 * that look like weir's (a run-end with no denials) or truncate the file
 * and erase them (R8-10). A file weir makes is root's, its group's
 * read-only. Through -e /dev/fd/N, a regular file only: the pipe behind
 * `3>&1 | jq` is the caller's own and has no name to open (R8-17).
 */
static int events_file_safe(const struct run *r)
{
	const struct identity *id = &r->id;
	struct stat st;

	if (!r->events || r->stream.on_stderr || !id->change || !id->uid)
		return 0;
	if (fstat(fileno(r->events), &st) || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)))
		return 0;
	/* Through /dev/fd/N only a file has a name the command could open
	 * (`3>>~/events.json`); a pipe has none. */
	if (!r->stream.named && !S_ISREG(st.st_mode))
		return 0;
	if (st.st_uid != id->uid && !(st.st_mode & S_IWOTH) &&
	    !((st.st_mode & S_IWGRP) && command_has_gid(id, st.st_gid)))
		return 0;
	pr_warn("events file %s can be written by %s, whom the command runs as: it could forge "
		"or erase weir's records there; let weir create it (remove it first), or use "
		"-e /dev/fd/N\n", r->o.events_path, id->name ? id->name : "its user");
	return -EACCES;
}

/* --pass-fd: open, not the event stream; a socket said to be a hole. */
static int check_pass_fds(const struct run *r)
{
	int i, fd, ev = r->o.events_path ? stream_fd_of(r->o.events_path) : -1;
	char desc[128];

	for (i = 0; i < r->o.n_pass_fds; i++) {
		fd = r->o.pass_fds[i];
		if (fcntl(fd, F_GETFD) < 0) {
			pr_warn("--pass-fd %d: not an open descriptor\n", fd);
			return -EBADF;
		}
		if (fd == ev) {
			pr_warn("--pass-fd %d: that is the event stream (-e %s), which %s must "
				"not get\n", fd, r->o.events_path, r->o.argv[0]);
			return -EINVAL;
		}
		if (fds_on_cgroupfs(fd)) {
			pr_warn("--pass-fd %d is on a cgroup file system: through it %s could "
				"leave its cgroup; not passing it (docs/run.md)\n", fd,
				r->o.argv[0]);
			return -EPERM;
		}
		if (fds_is_inet_socket(fd, desc, sizeof(desc)))
			pr_warn("--pass-fd %d is %s: what %s sends through it is not checked "
				"(a hole: docs/run.md)\n", fd, desc, r->o.argv[0]);
	}
	return 0;
}

/* An inet socket on stdin, stdout or stderr: refused, unless the user
 * said --allow-socket-stdio. */
static int check_stdio(const struct run *r)
{
	char desc[128];
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fds_on_cgroupfs(fd)) {
			pr_warn("%s's %s (fd %d) is on a cgroup file system: through it %s "
				"could leave its cgroup; not running it (docs/run.md)\n",
				r->o.argv[0], stdio_name[fd], fd, r->o.argv[0]);
			return -EPERM;
		}
		if (!fds_is_inet_socket(fd, desc, sizeof(desc)))
			continue;
		if (!r->o.allow_socket_stdio) {
			pr_warn("%s's %s (fd %d) is %s: weir cannot check what goes through it; "
				"not running %s (--allow-socket-stdio runs it anyway, unchecked: "
				"docs/run.md)\n", r->o.argv[0], stdio_name[fd], fd, desc,
				r->o.argv[0]);
			return -EPERM;
		}
		pr_warn("%s's %s (fd %d) is %s: what %s sends through it is not checked "
			"(--allow-socket-stdio)\n", r->o.argv[0], stdio_name[fd], fd, desc,
			r->o.argv[0]);
	}
	return 0;
}

/* Socket activation (LISTEN_FDS): its descriptors 3.. are closed too. */
static void check_listen_fds(const struct run *r)
{
	const char *v = getenv("LISTEN_FDS");
	int i, n = v ? atoi(v) : 0;

	for (i = 0; i < r->o.n_pass_fds; i++)
		if (r->o.pass_fds[i] >= 3 && r->o.pass_fds[i] < 3 + n)
			return;
	if (n > 0)
		pr_warn("LISTEN_FDS=%d: %s does not get the socket-activation descriptors "
			"3-%d (--pass-fd passes them, unchecked: docs/run.md)\n", n,
			r->o.argv[0], 2 + n);
}

/*
 * Before weir opens a descriptor of its own: the command inherits 0-2 and
 * the --pass-fd ones, nothing else. A socket made outside was never judged,
 * and the backstop does not see its packets (they are not the cgroup's).
 */
static int inherited_fds(struct run *r)
{
	int ret;

	ret = check_pass_fds(r);
	ret = ret ?: check_stdio(r);
	if (ret)
		return ret;
	check_listen_fds(r);
	ret = fds_close_on_exec(r->o.pass_fds, r->o.n_pass_fds);
	if (ret)
		pr_warn("cannot close the inherited descriptors: %s\n", strerror(-ret));
	return ret;
}

/* The command is about to start: the stream's first record. */
static int begin_stream(struct run *r)
{
	const struct passwd *pw = getpwuid(r->id.uid); /* SUDO_UID gives a number */
	struct stream_run sr = {
		.argv = r->o.argv,
		.policy_name = r->policy->name,
		.policy_source = r->policy->source,
		.policy_sha256 = r->policy_sha256,
		.allow = r->o.allow,
		.n_allow = r->o.n_allow,
		.audit = r->policy->mode == POLICY_AUDIT,
		.user = pw ? pw->pw_name : r->id.name,
		.uid = r->id.uid,
		.gid = r->id.gid,
		.cgroup = r->ectx.cgroup_path,
		.cgroup_id = r->ectx.cgroup_id,
	};

	stream_run_start(&r->stream, &sr);
	return 0;
}

/* The last record, once nothing else can write an event. */
static void end_stream(struct run *r, __u64 lost)
{
	struct stream_end se = { .lost = lost, .incomplete = r->incomplete };
	bool on_stderr = r->stream.on_stderr;

	if (r->child_done) {
		se.exit = exit_status(r);
		se.signal = WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0;
	} else {
		se.exit = EXIT_WEIR_FAILED;
		se.weir_failed = true;
	}
	if (r->summary)
		summary_counts(r->summary, &se.counts);
	stream_run_end(&r->stream, &se);
	log_set_sink(NULL, NULL);
	/* A full disk, or a reader gone: every record is written at once, so
	 * the stream's error flag says whether any was lost on the way (the
	 * command may fill the file system to hide its attempts). */
	if (stream_close(&r->stream) && !on_stderr)
		pr_warn("WARNING: the event stream %s is incomplete: records could not be "
			"written (file system full, or its reader went away)\n",
			r->o.events_path);
	r->events = NULL;
}

/* -q: a summary only when there is something to look at. */
static bool want_summary(const struct run *r, __u64 lost)
{
	struct summary_counts c;

	if (r->stream.on_stderr)
		return false; /* run-end carries the counts */
	if (!r->o.quiet)
		return true;
	summary_counts(r->summary, &c);
	return c.decisions[WEIR_V_DENY] || c.decisions[WEIR_V_WOULD_DENY] ||
	       c.dns[WEIR_V_DENY] || c.dns[WEIR_V_WOULD_DENY] || c.dns_failed || lost ||
	       r->incomplete;
}

/*
 * Even with -q: the command's user may connect to a container engine's
 * socket (root) by its mode, and without the BPF LSM a link or a
 * /proc/self/root/... spelling reaches it past the unix: section.
 */
static void warn_engine(const struct run *r)
{
	char why[96];
	const char *sock = sandbox_engine_reachable(&r->id, why, sizeof(why));

	if (sock && !egress_lsm_supported())
		pr_warn("%s may connect to %s (%s), which is root: the unix: section refuses its "
			"paths as spelled, but without the BPF LSM a symlink or /proc/self/root%s "
			"reaches it (docs/threat-model.md); use --user with a user who cannot\n",
			r->o.argv[0], sock, why, sock);
}

/* Set sig's disposition for weir, remembering the caller's for the command. */
static int take_signal(struct run *r, int sig, void (*handler)(int))
{
	struct sigaction sa = { .sa_handler = handler }, old;

	if (sigaction(sig, &sa, &old))
		return -errno;
	sigaddset(&r->sig_reset, sig);
	if (old.sa_handler == SIG_IGN)
		sigaddset(&r->sig_ign, sig);
	return 0;
}

/*
 * weir reads INT, TERM, HUP, QUIT and CHLD from a signalfd, so they are
 * blocked, and set to SIG_DFL: a caller's SIG_IGN (nohup's HUP, the INT
 * and QUIT of a background job in a script) is inherited over exec, and
 * an ignored SIGCHLD makes the kernel reap the command itself, so weir
 * could never learn its exit status (do_notify_parent). Blocking comes
 * first: no signal the caller ignored can kill weir in between. The
 * command gets the caller's dispositions and mask back (spawn.c).
 */
static int setup_signals(struct run *r)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD };
	sigset_t mask;
	size_t i;
	int ret = 0;

	sigemptyset(&mask);
	sigemptyset(&r->sig_reset);
	sigemptyset(&r->sig_ign);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&mask, sigs[i]);
	if (sigprocmask(SIG_BLOCK, &mask, &r->oldmask))
		return -errno;
	for (i = 0; !ret && i < sizeof(sigs) / sizeof(sigs[0]); i++)
		ret = take_signal(r, sigs[i], SIG_DFL);
	/* A closed stderr pipe must not kill weir mid-run (the command could
	 * close it on purpose). */
	ret = ret ?: take_signal(r, SIGPIPE, SIG_IGN);
	if (ret)
		return ret;
	r->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return r->sigfd < 0 ? -errno : 0;
}

/*
 * The maps are sized from the compiled policy, so a policy is never too
 * large for them; they grow with what refreshing the static names may add
 * (RESOLVE_MAX_ADDRS per name and family). All before any cgroup exists.
 */
static int open_maps(struct run *r)
{
	struct egress_opts eo = {
		.slots = 4, /* 0 unused; the policy in force and the next */
		/* With an events file every event is a line to write, and a
		 * reader descheduled on a busy machine must not cost lines:
		 * 16 MiB is ~140,000 events, 1.6 s at 90k/s (bench/stream.sh
		 * lost some at load 15 with 4 MiB). Without one, events feed
		 * the summary only, which keeps up in 4 MiB. */
		.ringbuf_bytes = r->events ? 16 << 20 : 4 << 20,
		.task_info = -1,
	};
	struct egress_attach_cfg ac;
	struct map_sizes ms;
	char err[512];
	int ret;

	ret = attachment_map_sizes(r->att, &ms, err, sizeof(err));
	if (ret) {
		pr_warn("%s\n", err);
		return ret;
	}
	eo.lpm_entries = ms.lpm_entries;
	eo.portsets = ms.portsets;
	/* The one-handle resolver settings size the DNS maps as before. */
	attachment_dns_cfg(r->att, &ac);
	eo.dns_port = ac.dns_port;
	eo.dns_ip4 = ac.dns_ip4;
	memcpy(eo.dns_ip6, ac.dns_ip6, sizeof(eo.dns_ip6));
	ret = egress_open(&eo, &r->egress);
	ret = ret ?: egress_handle_alloc(r->egress, &r->handle);
	if (ret)
		return ret;
	ret = attachment_bind(r->att, r->egress, r->handle, err, sizeof(err));
	if (ret)
		pr_warn("%s\n", err);
	r->ectx.learn = attachment_learn(r->att);
	return ret;
}

int run_make_cgroup(struct run *r)
{
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "run-%d", getpid());
	r->cgfd = cgroup_create(r->cgmnt, name, r->cgpath, sizeof(r->cgpath));
	if (r->cgfd < 0) {
		ret = r->cgfd;
		r->cgpath[0] = '\0';
		if (ret == -EEXIST) /* pid reused since a weir of that pid was killed */
			pr_warn("%s/weir/%s is still there: see weir status, weir cleanup %s\n",
				r->cgmnt, name, name);
		else
			pr_warn("cannot create a cgroup under %s/weir: %s\n", r->cgmnt,
				strerror(-ret));
		return ret;
	}
	runs_record(r->cgfd, r->policy->name ?: r->policy->source);
	r->ectx.cgroup_path = r->cgpath + strlen(r->cgmnt);
	return cgroup_id(r->cgpath, &r->ectx.cgroup_id);
}

static int pass_sockets(struct run *r);

static int setup_bpf(struct run *r)
{
	struct egress_attach_cfg ac;
	int ret;

	ret = open_maps(r);
	ret = ret ?: run_make_cgroup(r);
	if (!ret) {
		ret = pins_dir_create(getpid(), r->pins, sizeof(r->pins));
		if (ret) {
			pr_warn("cannot make a pin directory in bpffs: %s\n", strerror(-ret));
			r->pins[0] = '\0';
		}
	}
	attachment_dns_cfg(r->att, &ac);
	ret = ret ?: egress_attach_handle(r->egress, r->handle, r->cgfd, &ac, r->pins);
	ret = ret ?: r->pins[0] ? egress_pin_lsm(r->egress, r->pins) : 0;
	ret = ret ?: pass_sockets(r);
	if (ret)
		return ret;
	/* With an events file, what reads the ring buffer only copies: a
	 * thread of its own formats and writes (user/events/pump.h). */
	if (r->events && pump_new(on_pumped, flush_events, r, PUMP_BYTES, &r->pump))
		r->pump = NULL; /* no thread: the loop formats, as it did */
	r->rb = r->pump ? ring_buffer__new(egress_events_fd(r->egress), pump_add, r->pump, NULL) :
			  ring_buffer__new(egress_events_fd(r->egress), on_event, r, NULL);
	if (!r->rb) {
		ret = -errno;
		pr_warn("cannot open the event ring buffer: %s\n", strerror(-ret));
		return ret;
	}
	return attachment_start(r->att);
}

/*
 * Sockets made outside are refused to the command where the BPF LSM is
 * active; the ones the user passes on (--pass-fd, --allow-socket-stdio)
 * are excepted, as the user asked.
 */
static int pass_sockets(struct run *r)
{
	char desc[128];
	int i, fd, ret = 0;

	pr_debug("sockets made outside the cgroup: %s\n",
		 egress_lsm_on(r->egress) ? "refused (BPF LSM)" :
					    "not refused: the BPF LSM is not active "
					    "(lsm=...,bpf; docs/threat-model.md)");
	for (i = 0; !ret && i < r->o.n_pass_fds + 3; i++) {
		fd = i < 3 ? i : r->o.pass_fds[i - 3];
		if ((i < 3 && !r->o.allow_socket_stdio) || !fds_is_inet_socket(fd, desc, sizeof(desc)))
			continue;
		ret = egress_pass_socket(r->egress, r->handle, fd);
		if (ret)
			pr_warn("cannot pass on descriptor %d (%s): %s\n", fd, desc, strerror(-ret));
	}
	return ret;
}

static int setup_loop(struct run *r)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret = 0;

	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	ev.data.fd = r->sigfd;
	ret = epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->sigfd, &ev);
	if (r->daemon) /* its records come on a thread of their own */
		return ret ? -errno : 0;
	r->dnsfd = attachment_notify_fd(r->att);
	ev.data.fd = r->dnsfd;
	ret = ret ?: epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->dnsfd, &ev);
	ev.data.fd = ring_buffer__epoll_fd(r->rb);
	ret = ret ?: epoll_ctl(r->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	return ret ? -errno : 0;
}

/* A signal for weir: reap the child, or pass it on. */
static void on_signal(struct run *r)
{
	struct signalfd_siginfo si;
	int status;

	while (read(r->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		/* A terminal's ^C already reached the child: same process
		 * group. Only pass on what was sent to weir alone. */
		if (si.ssi_code == SI_KERNEL && getpgid(r->child) == getpgrp())
			continue;
		pr_debug("forwarding signal %d to %d\n", si.ssi_signo, r->child);
		kill(r->child, si.ssi_signo);
	}
	if (!r->child_done && waitpid(r->child, &status, WNOHANG) == r->child) {
		r->status = status;
		r->child_done = true;
	}
}

static void on_dns_change(struct run *r)
{
	pr_debug("addresses changed; reloading the policy\n");
	/* A failed reload leaves the previous policy in force. */
	attachment_refresh(r->att);
}

static int loop(struct run *r)
{
	struct epoll_event evs[4];
	int i, n;

	while (!r->child_done) {
		n = epoll_wait(r->epfd, evs, 4, POLL_MS);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd == r->sigfd)
				on_signal(r);
			else if (evs[i].data.fd == r->dnsfd)
				on_dns_change(r);
		}
		if (r->rb)
			ring_buffer__consume(r->rb);
		if (r->pump)
			pump_commit(r->pump); /* its writer flushes */
		else
			flush_events(r);
	}
	return 0;
}

/* A signal that arrived before the command started ends the run. */
static int pending_stop(struct run *r)
{
	struct signalfd_siginfo si;

	while (read(r->sigfd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo != SIGCHLD)
			return si.ssi_signo;
	return 0;
}

/* NAME in the command's environment. */
static const char *command_getenv(const struct run *r, const char *name)
{
	size_t len = strlen(name);
	char **e;

	if (!r->envp)
		return getenv(name);
	for (e = r->envp; *e; e++)
		if (!strncmp(*e, name, len) && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}

static const char *command_path(const struct run *r)
{
	return command_getenv(r, "PATH");
}

static int start_command(struct run *r)
{
	int ret, exec_errno, sig;

	sig = pending_stop(r);
	if (sig) {
		pr_warn("got signal %d before starting %s; stopping\n", sig, r->o.argv[0]);
		return -EINTR;
	}
	struct spawn_opts so = {
		.argv = r->o.argv,
		.cgroup_fd = r->cgfd,
		.mask = &r->oldmask,
		.sig_reset = &r->sig_reset,
		.sig_ign = &r->sig_ign,
		.id = &r->id,
		.envp = r->envp,
		.filter = &r->filter,
		.keep_fds = r->o.pass_fds,
		.n_keep_fds = r->o.n_pass_fds,
		.cgroup_mounts = r->cgmounts,
	};
	bool setup_failed;

	ret = spawn_in_cgroup(&so, &r->child, &exec_errno, &setup_failed);
	if (ret) {
		pr_warn("cannot start %s in cgroup %s: %s%s\n", r->o.argv[0], r->cgpath,
			strerror(-ret),
			ret == -ENOSYS ? " (clone3 with CLONE_INTO_CGROUP needs Linux 5.7+)" : "");
		return ret;
	}
	if (exec_errno && setup_failed) {
		pr_warn("cannot run %s as %s (uid %u, gid %u): %s\n", r->o.argv[0], r->id.name,
			r->id.uid, r->id.gid, strerror(exec_errno));
		waitpid(r->child, &r->status, 0);
		r->child_done = true;
		r->status = EXIT_WEIR_FAILED << 8;
		return -exec_errno;
	}
	if (exec_errno == ENOENT && !strchr(r->o.argv[0], '/')) {
		pr_warn("%s: command not found (PATH=%s)\n", r->o.argv[0],
			command_path(r) ?: "unset");
	} else if (exec_errno) {
		pr_warn("%s: %s\n", r->o.argv[0],
			exec_errno == ENOENT ? "command not found" : strerror(exec_errno));
	}
	if (exec_errno) {
		waitpid(r->child, &r->status, 0);
		r->child_done = true;
		return exec_errno == ENOENT ? -ENOENT : -EACCES;
	}
	pr_debug("started %s as pid %d in %s\n", r->o.argv[0], r->child, r->cgpath);
	return 0;
}

static void teardown(struct run *r)
{
	bool counted = false, emptied = true;
	__u64 lost = 0;

	/* What survived SIGKILL (a task in uninterruptible sleep) would run on
	 * unenforced once it wakes: the run keeps its programs, pinned, and its
	 * cgroup, as after a SIGKILL of weir, for `weir cleanup` (R8-11). */
	if (r->cgpath[0] && cgroup_kill_all(r->cgpath)) {
		emptied = false;
		pr_warn("%s stays enforced (its programs pinned in %s): once its processes are "
			"gone, `sudo weir cleanup` removes it\n", r->cgpath,
			r->pins[0] ? r->pins : "the daemon");
	}
	attachment_stop(r->att); /* its last failures count in the summary */
	if (r->rb) {
		ring_buffer__consume(r->rb);
		pump_free(r->pump); /* every record written before the summary */
		r->pump = NULL;
		lost = egress_stat(r->egress, WEIR_STAT_LOST);
		counted = true;
	}
	if (r->daemon) /* the cgroup is empty: detach, then its last records */
		counted = run_daemon_detach(r, &lost, emptied);
	if (counted && r->child && want_summary(r, lost)) {
		summary_print(r->summary, stderr, lost);
		if (r->incomplete)
			pr_warn("WARNING: these counts are incomplete: the daemon on %s went away "
				"while %s ran, and what it decided after that is not in this "
				"run's records (the daemon's own log and events have it)\n",
				r->sock, r->o.argv[0]);
	}
	pump_free(r->pump); /* (set up, but the ring buffer was not) */
	attachment_free(r->att); /* before the maps it writes go; the policy too */
	if (!r->att)
		policy_free(r->policy);
	ring_buffer__free(r->rb);
	if (emptied) {
		egress_unpin(r->egress);
		egress_destroy(r->egress); /* detaches: the cgroup is empty by now */
		if (r->pins[0])
			pins_dir_remove(r->pins);
		if (r->cgpath[0])
			cgroup_remove(r->cgpath);
	} else {
		egress_close(r->egress); /* the pins keep the links attached */
	}
	if (r->cgfd >= 0)
		close(r->cgfd); /* the run's lock: held until the run is gone */
	if (r->sigfd >= 0)
		close(r->sigfd);
	if (r->epfd >= 0)
		close(r->epfd);
	/* Signals stay blocked until weir exits: one that came after the last
	 * read would otherwise act now, at SIG_DFL, and weir would die of it
	 * with the command's exit status in hand. */
	end_stream(r, lost); /* last: teardown's own warnings go before run-end */
	summary_free(r->summary);
	sandbox_free(&r->filter);
	sandbox_cgroup_mounts_free(r->cgmounts);
	userenv_free(r->envp);
	identity_free(&r->id);
	free(r->policy_text);
	run_opts_free(&r->o);
}

/*
 * A working directory inside a cgroup2 mount survives the remount that
 * gives a root command its own view (it holds the old mount): through it,
 * `echo $$ > ../../cgroup.procs` would leave the run's cgroup. Refused.
 */
static int refuse_cgroup_cwd(void)
{
	struct statfs sf;

	if (statfs(".", &sf) || sf.f_type != CGROUP2_SUPER_MAGIC)
		return 0;
	pr_warn("the working directory is inside a cgroup2 file system: a command run as "
		"root could leave its cgroup through it; cd elsewhere, or use --user\n");
	return -EPERM;
}

/*
 * The policy, its upstreams (the policy's dns.upstream, else resolv.conf)
 * and its static names: one attachment (user/enforce/), as weir daemon
 * makes for each of its cgroups. It owns the policy from here on.
 */
static int prepare_attachment(struct run *r)
{
	struct attachment_cfg cfg = {
		.netns_fd = -1,
		.attribute_all = r->events != NULL,
		.require_upstream = true,
		.on_dns_event = on_dns_event,
		.ctx = r,
	};
	char err[512];
	int ret;

	ret = attachment_prepare(&cfg, r->policy, &r->att, err, sizeof(err));
	if (ret) {
		r->policy = NULL; /* freed with the attachment */
		pr_warn("%s\n", err);
	}
	return ret;
}

/* Built here: the child, between clone3 and exec, may not allocate. */
static int command_env(struct run *r)
{
	const char *path;
	int ret;

	ret = userenv_build(&r->id, &r->o.env, environ, &userenv_system, &r->envp);
	if (ret) {
		pr_warn("cannot make the environment of %s: %s\n", r->o.argv[0], strerror(-ret));
		return ret;
	}
	path = command_path(r);
	if (r->envp)
		pr_debug("%s runs with HOME=%s PATH=%s\n", r->o.argv[0],
			 command_getenv(r, "HOME") ?: "(unset)", path ?: "(unset)");
	return 0;
}

/* Standalone loads the programs itself: its privileges and kernel. */
static int standalone_checks(struct run *r)
{
	char why[256];
	int ret;

	(void)r;
	ret = privs_check_bpf(why, sizeof(why));
	if (ret) {
		if (ret == -EPERM)
			pr_warn("%s\n", why);
		return ret;
	}
	ret = egress_supported(why, sizeof(why));
	if (ret)
		pr_warn("%s\n", why);
	return ret;
}

/* -v: what this kernel offers (the daemon's is the same kernel). */
static void log_features(void)
{
	struct weir_features f;

	if (!features_probe(&f))
		features_log(&f);
}

/*
 * The seccomp filter (libseccomp: ~2 ms of CPU) is built on a thread of its
 * own while weir run parses the policy and the daemon attaches it, or the
 * kernel verifies the programs; the command needs it only once it starts.
 */
static void *sandbox_main(void *arg)
{
	struct run *r = arg;

	r->sb_ret = sandbox_build(&r->filter);
	return NULL;
}

static void sandbox_start(struct run *r)
{
	r->sb_started = !pthread_create(&r->sb, NULL, sandbox_main, r);
	if (!r->sb_started) /* then here and now */
		r->sb_ret = sandbox_build(&r->filter);
}

static int sandbox_wait(struct run *r)
{
	if (r->sb_started) {
		pthread_join(r->sb, NULL);
		r->sb_started = false;
	}
	return r->sb_ret;
}

static int prepare(struct run *r)
{
	char why[256];
	int ret;

	ret = load_policy(r);
	if (!ret) {
		ret = identity_resolve(r->o.user, r->o.group, &r->id, why, sizeof(why));
		if (ret)
			pr_warn("%s\n", why);
	}
	ret = ret ?: events_file_safe(r);
	ret = ret ?: command_env(r);
	ret = ret ?: run_pick_mode(r);
	ret = ret ?: r->daemon ? 0 : standalone_checks(r);
	if (ret)
		return ret;
	if (log_get_level() >= LOG_LEVEL_DEBUG)
		log_features();
	ret = cgroup_mount_v2(r->cgmnt, sizeof(r->cgmnt));
	if (ret) {
		pr_warn("no cgroup v2 hierarchy is mounted (looked in /proc/self/mountinfo), "
			"and mounting one at %s failed: %s\n", CGROUP_OWN_MOUNT, strerror(-ret));
		return ret;
	}
	if (!r->id.uid) /* even with -q: this weakens the boundary */
		pr_warn("%s runs as root: it could detach weir's programs and leave its cgroup "
			"(docs/threat-model.md); use --user to run it unprivileged\n",
			r->o.argv[0]);
	warn_engine(r);
	/* Root could write to a cgroup.procs outside its cgroup namespace
	 * where cgroup2 lacks nsdelegate: it gets mounts of its own. */
	if (!r->id.uid) {
		ret = sandbox_cgroup_mounts(&r->cgmounts);
		if (ret)
			pr_warn("cannot read the cgroup2 mounts: %s\n", strerror(-ret));
		else
			ret = refuse_cgroup_cwd();
	}
	if (ret)
		return ret;
	r->summary = summary_new();
	if (!r->summary)
		return -ENOMEM;
	r->ectx.policy = r->policy;
	r->ectx.memo = &r->memo;
	event_ctx_init_clock(&r->ectx);
	if (r->daemon) /* the daemon's attachment, in the daemon */
		return 0;
	return prepare_attachment(r);
}

int cmd_run(int argc, char **argv)
{
	struct run r = { .cgfd = -1, .sigfd = -1, .epfd = -1, .dnsfd = -1,
			 .out_mu = PTHREAD_MUTEX_INITIALIZER };
	int ret;

	ret = parse_opts(argc, argv, &r.o);
	if (ret) {
		run_opts_free(&r.o);
		/* Not 2: COMMAND's own exit status could be 2. */
		return ret > 0 ? EXIT_OK : EXIT_WEIR_FAILED;
	}
	/* Before weir opens a descriptor of its own: -e /dev/fd/N must name
	 * the caller's N, never weir's signalfd or resolver socket (sudo
	 * closes N, and weir's next descriptor would take its number). */
	ret = inherited_fds(&r);
	ret = ret ?: open_events(&r);
	ret = ret ?: setup_signals(&r);
	if (!ret)
		sandbox_start(&r);
	ret = ret ?: prepare(&r);
	ret = ret ?: r.daemon ? run_daemon_attach(&r) : setup_bpf(&r);
	ret = sandbox_wait(&r) ?: ret;
	ret = ret ?: setup_loop(&r);
	ret = ret ?: begin_stream(&r);
	ret = ret ?: start_command(&r);
	ret = ret ?: loop(&r);
	teardown(&r);
	if (r.child_done)
		return exit_status(&r);
	return EXIT_WEIR_FAILED;
}
