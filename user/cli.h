/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The command-line front: exit codes and the subcommands main() dispatches. */
#ifndef WEIR_CLI_H
#define WEIR_CLI_H

/* Exit codes, after env(1), timeout(1) and docker run. */
enum weir_exit {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2, /* bad command line; also "policy check: invalid policy" */
	EXIT_WEIR_FAILED = 125, /* weir run: weir failed, or its command line is wrong */
	EXIT_CANNOT_EXEC = 126,
	EXIT_NOT_FOUND = 127,
};

#define WEIR_VERSION "0.1.0"

/* `git describe --always --dirty` of the build, else WEIR_VERSION. */
const char *weir_version(void);

/* Print "weir: MSG" (if any) and "try 'weir --help'"; returns -EINVAL. */
int cli_usage_error(const char *msg);

int cmd_run(int argc, char **argv);
int cmd_policy(int argc, char **argv);

#endif /* WEIR_CLI_H */
