// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "weir.h"
#include "version.h" /* build/version.h: WEIR_GIT_DESCRIBE, made by the Makefile */

const char *weir_version(void)
{
	/* Empty when not built from a git checkout (a release tarball). */
	return WEIR_GIT_DESCRIBE[0] ? WEIR_GIT_DESCRIBE : WEIR_VERSION;
}
