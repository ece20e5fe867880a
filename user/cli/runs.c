// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir status and weir cleanup.
 *
 * The runs are the directories <cgroup2>/weir/run-<pid>. A run is alive
 * while its weir holds the lock on that directory (cgroup_create()): the
 * kernel lets go when weir dies, however it dies, and no binary path or
 * version enters into it. `weir status` reads the locks from /proc/locks
 * (anyone may, and it takes nothing); `weir cleanup` takes a run's lock
 * itself, without waiting, before it touches anything, and keeps it until
 * the run is gone: two cleanups, or a cleanup and a starting run, cannot
 * both act on one run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "cli.h"
#include "daemon.h"
#include "kfeatures.h"
#include "log.h"
#include "pins.h"
#include "runs.h"
#include "stream.h"

#define XATTR_STARTED "user.weir.started" /* unix time, decimal */
#define XATTR_POLICY "user.weir.policy" /* the policy's name:, else its file */
#define XATTR_DAEMON "user.weir.daemon" /* the socket of the daemon enforcing it */

enum enforcement { ENF_UNKNOWN, ENF_NOT, ENF_PINNED, ENF_DAEMON };

struct run_info {
	pid_t pid; /* weir's, as the name says (in the pid namespace it ran in) */
	bool alive;
	char cgroup[CGROUP_PATH_MAX];
	const char *rel; /* the cgroup below the mount: "/weir/run-42" */
	char pins[CGROUP_PATH_MAX + 64]; /* where its pins are, "" if not found */
	enum enforcement enf;
	int procs; /* processes in the cgroup itself, -1 if it cannot be read */
	pid_t first; /* one of them, 0 if none */
	pid_t holder; /* holds the lock (/proc/locks): > 0, 0 not visible here, -1 none */
	long long started; /* 0: not recorded */
	char policy[256];
	char daemon[108]; /* through a daemon: its socket, else "" */
	long long lost; /* events_lost(), -1: unknown */
};

void runs_record(int cgfd, const char *policy)
{
	char t[32];

	snprintf(t, sizeof(t), "%lld", (long long)time(NULL));
	if (fsetxattr(cgfd, XATTR_STARTED, t, strlen(t), 0) ||
	    (policy && fsetxattr(cgfd, XATTR_POLICY, policy, strlen(policy), 0)))
		pr_debug("cannot note the start time and policy on the cgroup: %s\n",
			 strerror(errno));
}

void runs_record_daemon(int cgfd, const char *socket)
{
	if (fsetxattr(cgfd, XATTR_DAEMON, socket, strlen(socket), 0))
		pr_debug("cannot note the daemon on the cgroup: %s\n", strerror(errno));
}

/* --- liveness ------------------------------------------------------------- */

/*
 * Who holds a flock on ST's inode: a pid, 0 if the holder is in a pid
 * namespace we cannot see into, -1 if nobody. Unreadable /proc/locks
 * counts as held: status must not call a live run stale.
 */
static pid_t lock_holder(const struct stat *st)
{
	unsigned int maj, mnr;
	char line[256], kind[16];
	unsigned long ino;
	pid_t pid, ret = -1;
	FILE *f;

	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	while (ret < 0 && fgets(line, sizeof(line), f)) {
		/* "1: FLOCK  ADVISORY  WRITE 4242 00:25:7055 0 EOF"; a waiter
		 * has "->" before FLOCK and fails the match. */
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", kind, &pid, &maj, &mnr,
			   &ino) != 5)
			continue;
		if (!strcmp(kind, "FLOCK") && ino == st->st_ino && makedev(maj, mnr) == st->st_dev)
			ret = pid;
	}
	fclose(f);
	return ret;
}

/* The cgroup v2 path of PID, relative to the mount ("/weir/run-42"). */
static bool proc_cgroup(pid_t pid, char *out, size_t len)
{
	char p[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	f = fopen(p, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, "%s", line + 3);
		found = true;
	}
	fclose(f);
	return found;
}

/*
 * A run made by a weir from before the lock (its cgroup is 0755): alive
 * while a process of its pid lives outside the run's cgroup. A reused pid
 * only keeps a stale run from being cleaned: the safe mistake.
 */
static bool legacy_alive(pid_t pid, const char *rel)
{
	size_t rl = strlen(rel);
	char cg[4096];

	if (!proc_cgroup(pid, cg, sizeof(cg)))
		return false;
	return strncmp(cg, rel, rl) || (cg[rl] != '\0' && cg[rl] != '/');
}

/*
 * Nobody holds the lock: is the run alive all the same? Its weir may be
 * between mkdir and flock (the mode is still CGROUP_MODE_STARTING), or be
 * a weir from before the lock. Any other mode: weir held the lock once
 * and has let go, so it is gone (or has just removed the run).
 */
static bool alive_unlocked(const struct run_info *ri, mode_t mode)
{
	if (!(mode & 0077))
		return !kill(ri->pid, 0) || errno == EPERM;
	if (mode & 0044)
		return legacy_alive(ri->pid, ri->rel);
	return false;
}

/* --- what status shows ---------------------------------------------------- */

static void read_procs(struct run_info *ri)
{
	char p[CGROUP_PATH_MAX + 32];
	FILE *f;
	int pid;

	ri->procs = -1;
	snprintf(p, sizeof(p), "%s/cgroup.procs", ri->cgroup);
	f = fopen(p, "re");
	if (!f)
		return;
	ri->procs = 0;
	while (fscanf(f, "%d", &pid) == 1) {
		if (!ri->first)
			ri->first = pid;
		ri->procs++;
	}
	fclose(f);
}

static void read_record(struct run_info *ri)
{
	char t[32];
	ssize_t n;

	n = getxattr(ri->cgroup, XATTR_STARTED, t, sizeof(t) - 1);
	if (n > 0) {
		t[n] = '\0';
		ri->started = strtoll(t, NULL, 10);
	}
	n = getxattr(ri->cgroup, XATTR_POLICY, ri->policy, sizeof(ri->policy) - 1);
	ri->policy[n > 0 ? n : 0] = '\0';
	n = getxattr(ri->cgroup, XATTR_DAEMON, ri->daemon, sizeof(ri->daemon) - 1);
	ri->daemon[n > 0 ? n : 0] = '\0';
}

/* A run through a daemon: the daemon's programs are on its cgroup (the
 * links it pinned keep them there whether or not the daemon lives). */
static bool daemon_enforces(const struct run_info *ri)
{
	__u32 n = 0;
	int fd, ret;

	fd = open(ri->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ret = bpf_prog_query(fd, BPF_CGROUP_INET4_CONNECT, 0, NULL, NULL, &n);
	close(fd);
	return !ret && n > 0;
}

/* The per-CPU WEIR_STAT_LOST of the map MAP_ID if it is weir_stats, else -1. */
static long long stats_lost(__u32 map_id)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), key = WEIR_STAT_LOST;
	int fd, ncpu = libbpf_num_possible_cpus(), i;
	long long sum = -1;
	__u64 *vals;

	fd = bpf_map_get_fd_by_id(map_id);
	if (fd < 0)
		return -1;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && !strcmp(info.name, "weir_stats") &&
	    ncpu > 0 && (vals = calloc(ncpu, sizeof(*vals)))) {
		if (!bpf_map_lookup_elem(fd, &key, vals))
			for (sum = 0, i = 0; i < ncpu; i++)
				sum += vals[i];
		free(vals);
	}
	close(fd);
	return sum;
}

/*
 * The audit events the kernel could not write (its ring buffer full), as
 * the programs enforcing the run count them: run-end's lost so far for a
 * standalone run; for a run through a daemon the daemon's count, shared by
 * its attachments (weir ps adds what its sessions dropped). Read from the
 * weir_stats map of the connect4 program on the cgroup, whether weir still
 * runs or not (stale). -1: unknown (not root, nothing attached).
 */
static long long events_lost(const struct run_info *ri)
{
	__u32 progs[8], n = 8, maps[64], i, k;
	struct bpf_prog_info info;
	long long lost = -1;
	__u32 len;
	int fd, pfd;

	fd = open(ri->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (bpf_prog_query(fd, BPF_CGROUP_INET4_CONNECT, 0, NULL, progs, &n))
		n = 0;
	close(fd);
	for (i = 0; i < n && i < 8 && lost < 0; i++) {
		pfd = bpf_prog_get_fd_by_id(progs[i]);
		if (pfd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		info.nr_map_ids = 64;
		info.map_ids = (__u64)(unsigned long)maps;
		len = sizeof(info);
		if (!bpf_obj_get_info_by_fd(pfd, &info, &len))
			for (k = 0; k < info.nr_map_ids && k < 64 && lost < 0; k++)
				lost = stats_lost(maps[k]);
		close(pfd);
	}
	return lost;
}

/*
 * Its pins: in the bpffs we see, else in the one its processes or its weir
 * see (a weir under `ip netns exec` mounts a bpffs only its namespace has).
 * bpffs is root's (mode 0700): anyone else cannot tell.
 */
static void find_pins(struct run_info *ri)
{
	ri->enf = ENF_UNKNOWN;
	if (geteuid())
		return;
	ri->enf = ENF_PINNED;
	if (!pins_dir_find(0, ri->pid, ri->pins, sizeof(ri->pins)))
		return;
	if (ri->first > 0 && !pins_dir_find(ri->first, ri->pid, ri->pins, sizeof(ri->pins)))
		return;
	if (ri->holder > 0 && !pins_dir_find(ri->holder, ri->pid, ri->pins, sizeof(ri->pins)))
		return;
	ri->pins[0] = '\0';
	ri->enf = ri->daemon[0] && daemon_enforces(ri) ? ENF_DAEMON : ENF_NOT;
}

/* Everything status shows but liveness. */
static void run_inspect(struct run_info *ri)
{
	read_procs(ri);
	read_record(ri);
	find_pins(ri);
	ri->lost = geteuid() ? -1 : events_lost(ri);
}

static void run_init(struct run_info *ri, const char *cg2, pid_t pid)
{
	memset(ri, 0, sizeof(*ri));
	ri->pid = pid;
	ri->holder = -1;
	snprintf(ri->cgroup, sizeof(ri->cgroup), "%s/weir/run-%d", cg2, pid);
	ri->rel = ri->cgroup + strlen(cg2);
}

/* "run-42" (a run's cgroup name) or "42": the pid, or -1. */
static pid_t parse_run(const char *s)
{
	char *end;
	long n;

	if (!strncmp(s, "run-", 4))
		s += 4;
	if (*s < '1' || *s > '9')
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	return *end || errno || n > INT_MAX ? -1 : (pid_t)n;
}

typedef void (*run_fn)(struct run_info *ri, void *ctx);

/* Every run with a cgroup, live or stale: cgroups are the complete list. */
static void for_each_run(const char *cg2, run_fn fn, void *ctx)
{
	char dir[CGROUP_PATH_MAX];
	struct run_info ri;
	struct dirent *de;
	struct stat st;
	pid_t pid;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/weir", cg2);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		pid = strncmp(de->d_name, "run-", 4) ? -1 : parse_run(de->d_name);
		if (pid <= 0)
			continue;
		run_init(&ri, cg2, pid);
		if (stat(ri.cgroup, &st))
			continue; /* ended meanwhile */
		ri.holder = lock_holder(&st);
		ri.alive = ri.holder >= 0 || alive_unlocked(&ri, st.st_mode);
		run_inspect(&ri);
		fn(&ri, ctx);
	}
	closedir(d);
}

static const char *enf_human(const struct run_info *ri)
{
	switch (ri->enf) {
	case ENF_PINNED:
		return "enforced (pinned)";
	case ENF_DAEMON:
		return "enforced (daemon)";
	case ENF_NOT:
		return "NOT enforced";
	default:
		return "enforcement unknown (needs root)";
	}
}

static void print_human(struct run_info *ri, void *ctx)
{
	(*(int *)ctx)++;
	printf("run-%d  %-8s %d process%s  %s  cgroup %s\n", ri->pid,
	       ri->alive ? "running" : "STALE", ri->procs < 0 ? 0 : ri->procs,
	       ri->procs == 1 ? "" : "es", enf_human(ri), ri->cgroup);
	/* As run-end and weir ps: lost audit events are news, said when any. */
	if (ri->lost > 0)
		printf("        %lld audit events lost%s (ring buffer full); verdicts were not "
		       "affected\n",
		       ri->lost, ri->enf == ENF_DAEMON ? " by its daemon" : "");
}

static void json_field(const char *name, const char *val)
{
	printf(",\"%s\":", name);
	/* Anyone's bytes: valid UTF-8 as it is (a policy named café),
	 * the rest escaped, so the output is valid JSON whatever they hold. */
	if (val && *val)
		stream_json_str(stdout, val);
	else
		printf("null");
}

static void print_json(struct run_info *ri, void *ctx)
{
	static const char *const enf[] = { "unknown", "not", "pinned", "daemon" };
	char started[32] = "";
	time_t t = ri->started;
	struct tm tm;

	if (t && gmtime_r(&t, &tm))
		strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s{\"run\":\"run-%d\",\"pid\":%d,\"state\":\"%s\",\"processes\":",
	       (*(int *)ctx)++ ? "," : "", ri->pid, ri->pid, ri->alive ? "running" : "stale");
	if (ri->procs < 0)
		printf("null");
	else
		printf("%d", ri->procs);
	printf(",\"enforcement\":\"%s\"", enf[ri->enf]);
	json_field("cgroup", ri->cgroup);
	json_field("pins", ri->pins);
	json_field("started", started);
	json_field("policy", ri->policy);
	json_field("daemon", ri->daemon);
	if (ri->lost < 0)
		printf(",\"events_lost\":null");
	else
		printf(",\"events_lost\":%lld", ri->lost);
	putchar('}');
}

static const char status_usage[] =
	"Usage: weir status [--json]\n"
	"List weir runs on this machine (<cgroup2>/weir/run-PID; PID is weir's):\n"
	"  running   its weir is alive (it holds the run's lock, whichever weir binary)\n"
	"  STALE     its weir is gone; its programs stay pinned, so what is left in\n"
	"            the run stays enforced until `weir cleanup`\n"
	"with the processes in its cgroup and whether its programs are pinned:\n"
	"`enforced (pinned)`, `enforced (daemon)` (a run through weir daemon: the\n"
	"daemon's programs are on its cgroup), `NOT enforced`, or, for anyone but\n"
	"root (bpffs is root's), `enforcement unknown (needs root)`; and, on a line\n"
	"of its own when any were, the audit events its programs lost (ring buffer\n"
	"full: run-end's lost so far; a daemon's count is shared by its runs, and\n"
	"`weir ps` adds what the daemon dropped for a client that read too slowly).\n"
	"Then what this kernel offers weir, each feature on, off or unknown (the\n"
	"BPF ones are probed as root), with the Linux version that brings it\n"
	"(docs/kernels.md).\n"
	"\n"
	"      --json   one JSON object: {\"runs\": [{\"run\", \"pid\", \"state\"\n"
	"               (running|stale), \"processes\", \"enforcement\"\n"
	"               (pinned|daemon|not|unknown), \"cgroup\", \"pins\", \"started\",\n"
	"               \"policy\", \"daemon\" (its socket), \"events_lost\"}, ...]};\n"
	"               unknown values are null; \"kernel\": {\"release\",\n"
	"               \"bpf_probed\", one true|false|null per feature (\"bpf_lsm\",\n"
	"               \"unix_hooks\", ...), \"lsm\", \"landlock_abi\"}\n"
	"  -h, --help   this help\n";

int cmd_status(int argc, char **argv)
{
	char cg2[CGROUP_PATH_MAX - 64];
	struct weir_features feat;
	bool json = false;
	int i, n = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(status_usage, stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--json")) {
			fprintf(stderr, "weir: status: unknown argument '%s'\n", argv[i]);
			cli_usage_error(NULL);
			return EXIT_USAGE;
		}
		json = true;
	}
	if (cgroup_mount_v2(cg2, sizeof(cg2)))
		cg2[0] = '\0';
	features_probe(&feat);
	if (json) {
		printf("{\"runs\":[");
		if (cg2[0])
			for_each_run(cg2, print_json, &n);
		printf("],\"kernel\":");
		features_print_json(&feat, stdout);
		printf("}\n");
		return EXIT_OK;
	}
	if (cg2[0])
		for_each_run(cg2, print_human, &n);
	if (!n)
		printf("no weir runs\n");
	putchar('\n');
	features_print(&feat, stdout);
	return EXIT_OK;
}

/* --- cleanup -------------------------------------------------------------- */

/* Kill first, unpin second: never an unenforced moment. A run whose
 * processes survive keeps its pins. RI's lock is ours. */
static int end_run(struct run_info *ri)
{
	int pfd = -1, ret;

	/* Reach its pins before the kill: if they are in the bpffs of its
	 * own mount namespace, that may go with its last process. */
	if (ri->pins[0])
		pfd = pins_dir_open(ri->pins);
	if (cgroup_kill_all(ri->cgroup)) {
		pr_warn("run-%d: processes survive SIGKILL; left enforced\n", ri->pid);
		ret = -EBUSY;
		goto out;
	}
	ret = pfd >= 0 ? pins_dir_remove_at(pfd, ri->pid) : 0;
	if (ret)
		pr_warn("run-%d: cannot remove its pins %s: %s\n", ri->pid, ri->pins, strerror(-ret));
	ret = cgroup_remove(ri->cgroup) ?: ret;
	if (!ret)
		printf("cleaned run-%d (%d process%s killed)\n", ri->pid,
		       ri->procs < 0 ? 0 : ri->procs, ri->procs == 1 ? "" : "es");
out:
	if (pfd >= 0)
		close(pfd);
	return ret;
}

/*
 * End run PID if it is stale. 0: ended, or not there / alive and not asked
 * for by name (NAMED); else a negative errno, said on stderr.
 */
static int clean_run(const char *cg2, pid_t pid, bool named)
{
	struct stat held, now;
	struct run_info ri;
	int fd, ret = 0;

	run_init(&ri, cg2, pid);
	fd = open(ri.cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			pr_warn("run-%d: cannot open %s: %s\n", pid, ri.cgroup, strerror(-ret));
		else if (named)
			pr_warn("run-%d: no such run (no %s)\n", pid, ri.cgroup);
		return ret == -ENOENT && !named ? 0 : ret;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto out;
	}
	/* The run may have ended as we opened it, and a new one taken the name. */
	if (fstat(fd, &held) || stat(ri.cgroup, &now) || now.st_ino != held.st_ino) {
		ret = named ? -ENOENT : 0;
		if (named)
			pr_warn("run-%d: ended meanwhile\n", pid);
		goto out;
	}
	if (alive_unlocked(&ri, held.st_mode)) {
		ret = -EBUSY;
		goto out;
	}
	run_inspect(&ri);
	ret = end_run(&ri);
out:
	if (ret == -EBUSY && named)
		pr_warn("run-%d is running (its weir is alive); left alone\n", pid);
	else if (ret == -EBUSY)
		ret = 0;
	close(fd);
	return ret;
}

struct clean_ctx {
	const char *cg2;
	int failed;
};

/* Only a candidate: clean_run() decides again, under the lock. */
static void clean_stale(struct run_info *ri, void *ctx)
{
	struct clean_ctx *c = ctx;

	if (!ri->alive && clean_run(c->cg2, ri->pid, false))
		c->failed++;
}

static const char cleanup_usage[] =
	"Usage: weir cleanup [RUN...]\n"
	"       weir cleanup --pin-root DIR\n"
	"End stale runs (their weir is gone): kill what is left in each cgroup, then\n"
	"unpin its programs and remove the cgroup. RUN is run-PID or PID, as `weir\n"
	"status` lists them; with none, every stale run. A running run is never\n"
	"touched, whichever weir binary started it: naming one is an error. Root only.\n"
	"\n"
	"With no RUN, also the pins of a weir daemon that is gone (no daemon holds\n"
	"the lock of its pin root, " DAEMON_PIN_ROOT "): its attachments\n"
	"are unpinned, so those cgroups are no longer enforced; their processes are\n"
	"left alone. --pin-root DIR: only the daemon pins under DIR.\n"
	"Exit status: 0 if every run asked for (or every stale run) was ended.\n";

/* The pins of a daemon that is gone; a live daemon's are left alone. */
static int clean_daemon_pins(const char *pin_root, bool named)
{
	bool there = access(pin_root, F_OK) == 0 || errno != ENOENT;
	int ret, n;

	ret = daemon_cleanup_pins(pin_root, &n);
	if (ret == -EBUSY) {
		if (named)
			pr_warn("%s: a weir daemon is running; left alone\n", pin_root);
		return named ? ret : 0;
	}
	if (ret) {
		pr_warn("%s: cannot remove the daemon's pins: %s\n", pin_root, strerror(-ret));
		return ret;
	}
	/* A mistyped DIR must not read as "done": say there was nothing. */
	if (named && !there)
		printf("no daemon pins at %s: no such directory\n", pin_root);
	else if (n || named)
		printf("cleaned %d daemon attachment%s (%s)\n", n, n == 1 ? "" : "s", pin_root);
	return 0;
}

int cmd_cleanup(int argc, char **argv)
{
	char cg2[CGROUP_PATH_MAX - 64];
	int i, ret, failed = 0;
	pid_t pid;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(cleanup_usage, stdout);
			return EXIT_OK;
		}
		if (!strcmp(argv[i], "--pin-root") && i == 1 && argc == 3) {
			if (geteuid()) {
				pr_warn("weir cleanup needs root\n");
				return EXIT_FAIL;
			}
			return clean_daemon_pins(argv[2], true) ? EXIT_FAIL : EXIT_OK;
		}
		if (parse_run(argv[i]) <= 0) {
			fprintf(stderr, "weir: cleanup: '%s' is not a run (run-PID or PID)\n", argv[i]);
			cli_usage_error(NULL);
			return EXIT_USAGE;
		}
	}
	if (geteuid()) {
		pr_warn("weir cleanup needs root\n");
		return EXIT_FAIL;
	}
	ret = cgroup_mount_v2(cg2, sizeof(cg2));
	if (ret) {
		pr_warn("no cgroup v2 hierarchy: %s\n", strerror(-ret));
		return EXIT_FAIL;
	}
	if (argc < 2) {
		struct clean_ctx c = { .cg2 = cg2 };

		for_each_run(cg2, clean_stale, &c);
		if (clean_daemon_pins(DAEMON_PIN_ROOT, false))
			c.failed++;
		return c.failed ? EXIT_FAIL : EXIT_OK;
	}
	for (i = 1; i < argc; i++) {
		pid = parse_run(argv[i]);
		if (clean_run(cg2, pid, true))
			failed++;
	}
	return failed ? EXIT_FAIL : EXIT_OK;
}
