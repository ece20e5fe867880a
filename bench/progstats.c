// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * progstats: what each BPF program of one `weir run` cost, by the kernel's
 * own account (BPF_ENABLE_STATS: run_time_ns and run_cnt per program), which
 * a loaded machine disturbs far less than wall time.
 *
 *   progstats CGROUP2_MOUNT -- weir run --standalone ... -- WORKLOAD...
 *
 * Runs the command (it must exec weir run itself: its pid names the run's
 * cgroup, <mount>/weir/run-<pid>), holds the programs attached to that
 * cgroup while it runs (so they can be read after weir detached them),
 * reads their statistics every 10 ms and prints one JSON object: per
 * program, runs, ns per run over the whole run (the mean) and the median
 * of the 10-ms intervals' ns per run (those with 200 runs or more). Root only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define MAXPROGS 64

static int sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static const int types[] = {
	BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT, BPF_CGROUP_UDP4_SENDMSG,
	BPF_CGROUP_UDP6_SENDMSG,  BPF_CGROUP_INET_EGRESS,   BPF_CGROUP_INET_INGRESS,
	BPF_CGROUP_INET_SOCK_CREATE, BPF_CGROUP_INET_SOCK_RELEASE, BPF_CGROUP_SOCK_OPS,
	BPF_CGROUP_SETSOCKOPT, BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP6_RECVMSG,
	BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME,
};

#define MAXIV 4096 /* intervals kept per program */

static int fds[MAXPROGS], nfds;
static __u32 ids[MAXPROGS];
/* Per program: the totals at the last look, and ns per run of each interval
 * between two looks with enough runs in it. The median of those is what a
 * tick, an interrupt or a preemption landing inside a run disturbs least
 * (the total is the mean, which one such outlier moves). */
static __u64 last_ns[MAXPROGS], last_cnt[MAXPROGS];
static double *iv[MAXPROGS];
static int niv[MAXPROGS];

static int info_of(int fd, struct bpf_prog_info *info)
{
	union bpf_attr a;

	memset(info, 0, sizeof(*info));
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(*info);
	a.info.info = (unsigned long)info;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a);
}

/* One look at every program held: an interval for those that ran enough. */
static void sample(void)
{
	struct bpf_prog_info info;
	__u64 dn, dc;
	int i;

	for (i = 0; i < nfds; i++) {
		if (info_of(fds[i], &info))
			continue;
		dn = info.run_time_ns - last_ns[i];
		dc = info.run_cnt - last_cnt[i];
		if (dc < 200)
			continue;
		if (!iv[i])
			iv[i] = calloc(MAXIV, sizeof(double));
		if (iv[i] && niv[i] < MAXIV)
			iv[i][niv[i]++] = (double)dn / dc;
		last_ns[i] = info.run_time_ns;
		last_cnt[i] = info.run_cnt;
	}
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Take a reference to every program attached to the cgroup at DIR. */
static void grab(const char *dir)
{
	int cg = open(dir, O_RDONLY | O_DIRECTORY), fd;
	union bpf_attr a;
	__u32 got[MAXPROGS];
	size_t t;
	int i, j;

	if (cg < 0)
		return;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		memset(&a, 0, sizeof(a));
		a.query.target_fd = cg;
		a.query.attach_type = types[t];
		a.query.prog_ids = (unsigned long)got;
		a.query.prog_cnt = MAXPROGS;
		if (sys_bpf(BPF_PROG_QUERY, &a))
			continue;
		for (i = 0; i < (int)a.query.prog_cnt && nfds < MAXPROGS; i++) {
			for (j = 0; j < nfds && ids[j] != got[i]; j++)
				;
			if (j < nfds)
				continue;
			memset(&a, 0, sizeof(a));
			a.prog_id = got[i];
			fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
			if (fd < 0)
				continue;
			ids[nfds] = got[i];
			fds[nfds++] = fd;
		}
	}
	close(cg);
}

int main(int argc, char **argv)
{
	union bpf_attr a = {};
	struct bpf_prog_info info;
	char dir[4096];
	struct timespec ts = { 0, 2000000 };
	int st, i, sfd, first = 1;
	pid_t pid;

	if (argc < 4 || strcmp(argv[2], "--")) {
		fprintf(stderr, "usage: progstats CGROUP2_MOUNT -- weir run ... -- CMD...\n");
		return 2;
	}
	a.enable_stats.type = BPF_STATS_RUN_TIME;
	sfd = sys_bpf(BPF_ENABLE_STATS, &a);
	if (sfd < 0) {
		perror("progstats: BPF_ENABLE_STATS");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		execvp(argv[3], argv + 3);
		perror("progstats: exec");
		_exit(127);
	}
	snprintf(dir, sizeof(dir), "%s/weir/run-%d", argv[1], pid);
	/* The programs are attached before the command starts; poll until then
	 * and a little after (connect4 first, the rest in the same second). */
	while (waitpid(pid, &st, WNOHANG) == 0) {
		grab(dir);
		if (nfds >= 9) /* the loader has attached: look every 10 ms */
			ts.tv_nsec = 10000000;
		sample();
		nanosleep(&ts, NULL);
	}
	printf("{\"exit\":%d,\"programs\":[", WIFEXITED(st) ? WEXITSTATUS(st) : 128);
	for (i = 0; i < nfds; i++) {
		double med = 0;

		if (info_of(fds[i], &info))
			continue;
		if (niv[i]) {
			qsort(iv[i], niv[i], sizeof(double), cmpd);
			med = iv[i][niv[i] / 2];
		}
		printf("%s{\"name\":\"%s\",\"runs\":%llu,\"run_time_ns\":%llu,\"ns_per_run\":%.1f,"
		       "\"intervals\":%d,\"median_ns_per_run\":%.1f}",
		       first ? "" : ",", info.name, (unsigned long long)info.run_cnt,
		       (unsigned long long)info.run_time_ns,
		       info.run_cnt ? (double)info.run_time_ns / info.run_cnt : 0.0, niv[i], med);
		first = 0;
	}
	printf("]}\n");
	close(sfd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
