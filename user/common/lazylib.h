/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Libraries loaded when first used, not when weir starts. libmicrohttpd
 * (the daemon's server) brings some thirty shared
 * objects with them (TLS, Kerberos, LDAP, SSH...): linked, every weir
 * process maps and relocates them at exec, weir run included, for about
 * 25 ms on a CI-sized machine. dlopen()ed, only the commands that talk to
 * a daemon, and the daemon, pay for them.
 */
#ifndef WEIR_LAZYLIB_H
#define WEIR_LAZYLIB_H

#include <stddef.h>

struct lazy_sym {
	const char *name;
	void **fn; /* where dlsym()'s answer goes */
};

/*
 * dlopen SONAME and fill every SYMS[i].fn. 0, or -ENOENT with err naming
 * the library (and the package that has it: PKG) or the missing symbol.
 * Call it once per library, from one thread.
 */
int lazylib_open(const char *soname, const char *pkg, const struct lazy_sym *syms, size_t n,
		 char *err, size_t len);

/* One entry of a table: the symbol NAME into the pointer PTR of its type. */
#define LAZY_SYM(name, ptr) { #name, (void **)&(ptr) }

#endif /* WEIR_LAZYLIB_H */
