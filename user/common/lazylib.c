// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* dlopen() on first use: see lazylib.h for why. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include "lazylib.h"

int lazylib_open(const char *soname, const char *pkg, const struct lazy_sym *syms, size_t n,
		 char *err, size_t len)
{
	void *h = dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
	size_t i;

	if (!h) {
		snprintf(err, len, "cannot load %s (package %s): %s", soname, pkg, dlerror());
		return -ENOENT;
	}
	for (i = 0; i < n; i++) {
		*syms[i].fn = dlsym(h, syms[i].name);
		if (!*syms[i].fn) {
			snprintf(err, len, "%s has no %s: a version weir was not built for", soname,
				 syms[i].name);
			dlclose(h);
			return -ENOENT;
		}
	}
	return 0; /* h stays open for the process's life */
}
