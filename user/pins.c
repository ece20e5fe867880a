// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "cgroup.h"
#include "cli.h"
#include "log.h"
#include "pins.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static int find_bpffs(char *mnt, size_t len)
{
	return mount_find("/proc/self/mountinfo", "bpf", mnt, len);
}

int pins_bpffs(char *mnt, size_t len)
{
	struct statfs st;

	if (!find_bpffs(mnt, len))
		return 0;
	/* Mounting bpffs at its usual place is what systemd does at boot. */
	snprintf(mnt, len, "/sys/fs/bpf");
	if (!statfs(mnt, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(mnt, 0700) && errno != EEXIST)
		return -errno;
	if (mount("bpf", mnt, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"))
		return -errno;
	pr_debug("mounted bpffs at %s\n", mnt);
	return 0;
}

int pins_dir_create(pid_t pid, char *dir, size_t len)
{
	char mnt[CGROUP_PATH_MAX];
	int ret;

	ret = pins_bpffs(mnt, sizeof(mnt));
	if (ret)
		return ret;
	if ((size_t)snprintf(dir, len, "%s/%s", mnt, PINS_SUBDIR) >= len)
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(dir, len, "%s/%s/run-%d", mnt, PINS_SUBDIR, pid) >= len)
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int pins_dir_remove(const char *dir)
{
	char p[CGROUP_PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p); /* the last reference to a link: it detaches */
	}
	closedir(d);
	return rmdir(dir) && errno != ENOENT ? -errno : 0;
}

/* --- weir status / weir cleanup ------------------------------------------- */

struct run_state {
	pid_t pid;
	bool alive; /* its weir is still running */
	char pins[CGROUP_PATH_MAX];
	char cgroup[CGROUP_PATH_MAX];
	int procs; /* processes left in the cgroup, -1 if it is gone */
};

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
 * Is weir still running as PID, for the run whose cgroup is RUN_CG (path
 * below the mount)? A leftover in the run could fork until it gets the
 * pid, and even exec weir: but it cannot leave the run's cgroup, and weir
 * itself is never in it.
 */
static bool weir_alive(pid_t pid, const char *run_cg)
{
	char p[64], exe[4096], self[4096], cg[4096];
	size_t rl = strlen(run_cg);
	ssize_t n, m;

	snprintf(p, sizeof(p), "/proc/%d/exe", pid);
	n = readlink(p, exe, sizeof(exe) - 1);
	m = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0 || m <= 0 || !proc_cgroup(pid, cg, sizeof(cg)))
		return false;
	exe[n] = self[m] = '\0';
	if (!strncmp(cg, run_cg, rl) && (cg[rl] == '\0' || cg[rl] == '/'))
		return false;
	/* weir upgraded while running: its exe reads "PATH (deleted)". */
	return !strncmp(exe, self, m) && (exe[m] == '\0' || !strcmp(exe + m, " (deleted)"));
}

static int count_procs(const char *cg)
{
	char p[CGROUP_PATH_MAX + 32];
	int n = 0, pid;
	FILE *f;

	snprintf(p, sizeof(p), "%s/cgroup.procs", cg);
	f = fopen(p, "re");
	if (!f)
		return -1;
	while (fscanf(f, "%d", &pid) == 1)
		n++;
	fclose(f);
	return n;
}

typedef void (*state_fn)(struct run_state *s, void *ctx);

/* Every run with pins or a cgroup, live or stale. */
static int for_each_run(state_fn fn, void *ctx)
{
	char mnt[CGROUP_PATH_MAX - 64], cg2[CGROUP_PATH_MAX - 64], dir[CGROUP_PATH_MAX];
	struct run_state s;
	struct dirent *de;
	bool have_pins;
	DIR *d;
	int pid;

	have_pins = !find_bpffs(mnt, sizeof(mnt));
	if (cgroup_find_v2("/proc/self/mountinfo", cg2, sizeof(cg2)))
		cg2[0] = '\0';
	/* cgroups are the complete list: a run always has one. */
	snprintf(dir, sizeof(dir), "%s/weir", cg2);
	d = cg2[0] ? opendir(dir) : NULL;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (sscanf(de->d_name, "run-%d", &pid) != 1)
			continue;
		memset(&s, 0, sizeof(s));
		s.pid = pid;
		snprintf(s.cgroup, sizeof(s.cgroup), "%s/weir/run-%d", cg2, pid);
		s.alive = weir_alive(pid, s.cgroup + strlen(cg2));
		if (have_pins)
			snprintf(s.pins, sizeof(s.pins), "%s/%s/run-%d", mnt, PINS_SUBDIR, pid);
		s.procs = count_procs(s.cgroup);
		fn(&s, ctx);
	}
	closedir(d);
	return 0;
}

static void print_state(struct run_state *s, void *ctx)
{
	struct stat st;
	bool pinned = s->pins[0] && !stat(s->pins, &st);
	const char *enf;

	/* bpffs is root's (mode 0700): anyone else cannot tell. */
	if (geteuid())
		enf = "enforcement unknown (run as root)";
	else
		enf = pinned ? "enforced (pinned)" : "NOT enforced";
	(*(int *)ctx)++;
	printf("run-%d  %-8s %d process%s  %s  cgroup %s\n", s->pid,
	       s->alive ? "running" : "STALE", s->procs < 0 ? 0 : s->procs,
	       s->procs == 1 ? "" : "es", enf, s->cgroup);
}

int cmd_status(int argc, char **argv)
{
	int n = 0;

	if (argc > 1) {
		printf("Usage: weir status\n"
		       "List weir runs on this machine: running, or STALE (weir is gone; its\n"
		       "programs stay pinned, so what is left stays enforced until `weir cleanup`).\n");
		return strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? EXIT_USAGE : EXIT_OK;
	}
	for_each_run(print_state, &n);
	if (!n)
		printf("no weir runs\n");
	return EXIT_OK;
}

static void clean_state(struct run_state *s, void *ctx)
{
	int *failed = ctx;

	if (s->alive)
		return;
	/* Kill first, unpin second: never an unenforced moment. A run whose
	 * processes survive keeps its pins. */
	if (cgroup_kill_all(s->cgroup)) {
		printf("run-%d: processes survive SIGKILL; left enforced\n", s->pid);
		(*failed)++;
		return;
	}
	if ((s->pins[0] && pins_dir_remove(s->pins)) || cgroup_remove(s->cgroup)) {
		printf("run-%d: could not remove everything (see above)\n", s->pid);
		(*failed)++;
		return;
	}
	printf("cleaned run-%d (%d process%s killed)\n", s->pid, s->procs < 0 ? 0 : s->procs,
	       s->procs == 1 ? "" : "es");
}

int cmd_cleanup(int argc, char **argv)
{
	int failed = 0;

	if (argc > 1) {
		printf("Usage: weir cleanup\n"
		       "End stale runs (their weir is gone): kill what is left in each cgroup,\n"
		       "then unpin its programs and remove the cgroup. Running runs are left alone.\n");
		return strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? EXIT_USAGE : EXIT_OK;
	}
	if (geteuid()) {
		pr_warn("weir cleanup needs root\n");
		return EXIT_FAIL;
	}
	for_each_run(clean_state, &failed);
	return failed ? EXIT_FAIL : EXIT_OK;
}
