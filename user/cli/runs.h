/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The runs on this machine: `weir status` lists them, `weir cleanup` ends
 * the stale ones. A run is <cgroup2>/weir/run-<pid>; it is running while
 * its weir holds the lock on that directory (cgroup_create()), whichever
 * weir binary started it and whichever one asks.
 */
#ifndef WEIR_RUNS_H
#define WEIR_RUNS_H

/* Note on the run's cgroup when it started and under which policy, for
 * `weir status --json` (user xattrs; best effort). */
void runs_record(int cgfd, const char *policy);
/* ... and that the daemon on SOCKET enforces it (weir run through a daemon). */
void runs_record_daemon(int cgfd, const char *socket);

int cmd_status(int argc, char **argv);
int cmd_cleanup(int argc, char **argv);

#endif /* WEIR_RUNS_H */
