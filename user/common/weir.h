/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What every floor may use: weir's exit codes and its version. */
#ifndef WEIR_WEIR_H
#define WEIR_WEIR_H

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

#endif /* WEIR_WEIR_H */
