// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kfeatures.h"
#include "log.h"
#include "privs.h"

/* Newer than the 6.1 headers weir builds with on Debian 12. */
#define WEIR_MAP_TYPE_CGRP_STORAGE 32 /* 6.2 */
#define WEIR_CGROUP_UNIX_CONNECT 49 /* 6.7 */
#define WEIR_CGROUP_UNIX_SENDMSG 50

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif

#define LSM_FILE "/sys/kernel/security/lsm"

/* One reported feature: a bool of struct weir_features. */
struct feature {
	const char *name;
	size_t off;
	bool bpf; /* filled by a BPF probe: unknown without privileges */
	const char *since;
	const char *what;
};

#define F(field) #field, offsetof(struct weir_features, field)
static const struct feature table[] = {
	{ F(ringbuf), true, "5.8", "the event ring buffer (needed)" },
	{ F(cgroup_storage), true, "4.19", "cgroup storage for each attachment (needed)" },
	{ F(sk_storage), true, "5.2", "socket storage (needed)" },
	{ F(recvmsg_hooks), true, "5.2",
	  "cgroup/recvmsg: DNS answers name the server asked, not weir's resolver" },
	{ F(getpeername_hooks), true, "5.8",
	  "cgroup/getpeername: a DNS socket's peer is the server asked" },
	{ F(sock_release), true, "5.9", "cgroup/sock_release: weir sees sockets close" },
	{ F(bpf_loop), true, "5.17", "the bpf_loop helper" },
	{ F(cgrp_storage), true, "6.2", "cgroup local storage (bpf_cgrp_storage_get)" },
	{ F(unix_hooks), true, "6.7",
	  "cgroup/connect_unix, sendmsg_unix: unix socket connects checked" },
	{ F(bpf_lsm), true, "5.7",
	  "BPF LSM: sockets made outside a cgroup can be refused in it" },
};
#undef F

static bool field(const struct weir_features *f, const struct feature *t)
{
	return *(const bool *)((const char *)f + t->off);
}

static void set(struct weir_features *f, const char *name, bool on)
{
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(table[i].name, name))
			*(bool *)((char *)f + table[i].off) = on;
}

/* Does the kernel take a program of this type for this attach point? */
static bool attach_ok(enum bpf_prog_type type, enum bpf_attach_type attach)
{
	/* r0 = 1; exit: "allow" for every cgroup program type used here */
	static const struct bpf_insn ret1[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = attach);
	int fd;

	fd = bpf_prog_load(type, NULL, "Dual BSD/GPL", ret1, 2, &o);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

bool features_helper_ok(enum bpf_prog_type type, enum bpf_attach_type attach, enum bpf_func_id id)
{
	/* call id; r0 = 1; exit. The call's arguments are not set up: a
	 * helper the program type may call fails on them, not on its name. */
	struct bpf_insn prog[] = {
		{ .code = BPF_JMP | BPF_CALL, .imm = id },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char log[4096] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = attach, .log_buf = log,
		    .log_size = sizeof(log), .log_level = 1);
	int fd;

	fd = bpf_prog_load(type, NULL, "GPL", prog, 3, &o);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	/* "unknown func" (6.1), "cannot use helper" (6.12): libbpf 1.1's
	 * libbpf_probe_bpf_helper() knows only the first. An empty log:
	 * refused before the verifier ran. */
	return log[0] && !strstr(log, "unknown func") && !strstr(log, "invalid func") &&
	       !strstr(log, "cannot use helper");
}

/* An LSM program on socket_connect loads: BPF LSM is built and usable. */
static bool lsm_prog_loads(void)
{
	static const struct bpf_insn ret0[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = BPF_LSM_MAC);
	int id, fd;

	id = libbpf_find_vmlinux_btf_id("socket_connect", BPF_LSM_MAC);
	if (id <= 0)
		return false;
	o.attach_btf_id = id;
	fd = bpf_prog_load(BPF_PROG_TYPE_LSM, NULL, "GPL", ret0, 2, &o);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* The active LSMs, comma separated; is bpf among them? */
static bool lsm_has_bpf(struct weir_features *f)
{
	char *p, *tok, *save = NULL, copy[sizeof(f->lsm)];
	ssize_t n;
	int fd;

	fd = open(LSM_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, f->lsm, sizeof(f->lsm) - 1);
	close(fd);
	if (n < 0)
		return false;
	f->lsm[n] = '\0';
	f->lsm[strcspn(f->lsm, "\n")] = '\0';
	f->lsm_listed = true;
	memcpy(copy, f->lsm, sizeof(copy));
	for (p = copy; (tok = strtok_r(p, ",", &save)); p = NULL)
		if (!strcmp(tok, "bpf"))
			return true;
	return false;
}

static void probe_bpf(struct weir_features *f)
{
	const enum bpf_prog_type sa = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;

	set(f, "ringbuf", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) > 0);
	set(f, "cgroup_storage", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_CGROUP_STORAGE, NULL) > 0);
	set(f, "sk_storage", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, NULL) > 0);
	set(f, "cgrp_storage",
	    libbpf_probe_bpf_map_type((enum bpf_map_type)WEIR_MAP_TYPE_CGRP_STORAGE, NULL) > 0);
	set(f, "recvmsg_hooks", attach_ok(sa, BPF_CGROUP_UDP4_RECVMSG) &&
					attach_ok(sa, BPF_CGROUP_UDP6_RECVMSG));
	set(f, "getpeername_hooks", attach_ok(sa, BPF_CGROUP_INET4_GETPEERNAME) &&
					    attach_ok(sa, BPF_CGROUP_INET6_GETPEERNAME));
	set(f, "sock_release",
	    attach_ok(BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_RELEASE));
	set(f, "bpf_loop", features_helper_ok(sa, BPF_CGROUP_INET4_CONNECT, BPF_FUNC_loop));
	set(f, "unix_hooks",
	    attach_ok(sa, (enum bpf_attach_type)WEIR_CGROUP_UNIX_CONNECT) &&
		    attach_ok(sa, (enum bpf_attach_type)WEIR_CGROUP_UNIX_SENDMSG));
	set(f, "bpf_lsm", f->bpf_lsm && lsm_prog_loads());
}

static int probe(struct weir_features *f)
{
	struct utsname u;
	char why[256];
	long abi;

	memset(f, 0, sizeof(*f));
	if (uname(&u))
		return -errno;
	snprintf(f->release, sizeof(f->release), "%s", u.release);
	if (sscanf(u.release, "%u.%u", &f->major, &f->minor) != 2)
		f->major = f->minor = 0;
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* _VERSION */);
	f->landlock_abi = abi > 0 ? (int)abi : 0;
	f->bpf_lsm = lsm_has_bpf(f); /* confirmed by a load below */
	f->bpf_probed = privs_check_bpf(why, sizeof(why)) == 0;
	if (f->bpf_probed)
		probe_bpf(f);
	else
		f->bpf_lsm = false;
	return 0;
}

int features_probe(struct weir_features *f)
{
	static struct weir_features cached;
	static int state; /* 0: not probed, 1: probed, else -errno */

	if (!state) {
		state = probe(&cached);
		if (!state)
			state = 1;
	}
	if (state < 0)
		return state;
	*f = cached;
	return 0;
}

/* Why a feature is off, where the number alone does not say. */
static const char *off_reason(const struct weir_features *f, const struct feature *t)
{
	if (strcmp(t->name, "bpf_lsm"))
		return NULL;
	if (!f->lsm_listed)
		return "cannot read " LSM_FILE " (securityfs not mounted?)";
	if (!strstr(f->lsm, "bpf"))
		return "bpf is not among the active LSMs: boot with lsm=...,bpf";
	return "an LSM program does not load";
}

void features_print(const struct weir_features *f, FILE *out)
{
	const char *state, *why;
	size_t i;

	fprintf(out, "kernel %s\n", f->release);
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct feature *t = &table[i];
		bool on = field(f, t);

		state = t->bpf && !f->bpf_probed ? "unknown" : on ? "on" : "off";
		why = !on && f->bpf_probed ? off_reason(f, t) : NULL;
		fprintf(out, "  %-7s %-18s %-5s %s%s%s\n", state, t->name, t->since, t->what,
			why ? "; " : "", why ?: "");
	}
	if (f->landlock_abi)
		fprintf(out, "  %-7s %-18s %-5s Landlock ABI %d around the command\n", "on",
			"landlock", "5.13", f->landlock_abi);
	else
		fprintf(out, "  %-7s %-18s %-5s Landlock around the command (lsm=...,landlock)\n",
			"off", "landlock", "5.13");
	if (!f->bpf_probed)
		fprintf(out, "  (BPF features are probed as root: unknown here)\n");
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", *s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

void features_print_json(const struct weir_features *f, FILE *out)
{
	size_t i;

	fputs("{\"release\":", out);
	json_str(out, f->release);
	fprintf(out, ",\"bpf_probed\":%s", f->bpf_probed ? "true" : "false");
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		fprintf(out, ",\"%s\":%s", table[i].name,
			table[i].bpf && !f->bpf_probed ? "null"
			: field(f, &table[i])	       ? "true"
						       : "false");
	fputs(",\"lsm\":", out);
	if (f->lsm_listed)
		json_str(out, f->lsm);
	else
		fputs("null", out);
	fprintf(out, ",\"landlock_abi\":%d}", f->landlock_abi);
}

void features_log(const struct weir_features *f)
{
	char on[512] = "", off[512] = "";
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char *dst = field(f, &table[i]) ? on : off;
		size_t n = strlen(dst);

		if (table[i].bpf && !f->bpf_probed)
			continue;
		if (dst == on)
			snprintf(dst + n, 512 - n, " %s", table[i].name);
		else
			snprintf(dst + n, 512 - n, " %s (%s+)", table[i].name, table[i].since);
	}
	pr_debug("kernel %s: on:%s landlock_abi=%d\n", f->release, on, f->landlock_abi);
	pr_debug("kernel %s: off:%s%s\n", f->release, off[0] ? off : " nothing",
		 f->bpf_probed ? "" : " (BPF features unknown: no BPF privileges)");
}
