// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <sched.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <weir/egress.h>

#include "log.h"
#include "sandbox.h"

#define FAMILIES_MAX 64 /* above AF_MAX (46 in 6.x): all are listed */

bool sandbox_family_allowed(int family)
{
	return family == AF_UNIX || family == AF_INET || family == AF_INET6 ||
	       family == AF_NETLINK;
}

/* socket(F, ...) and socketpair(F, ...) for a refused F: EAFNOSUPPORT. The
 * family is an int: compare the low 32 bits, as the kernel reads it. */
static int refuse_families(scmp_filter_ctx ctx, int nr)
{
	int f, err;

	for (f = 0; f < FAMILIES_MAX; f++) {
		if (sandbox_family_allowed(f))
			continue;
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffff, f));
		if (err)
			return err;
	}
	return 0;
}

static int refuse_cgroupns_join(scmp_filter_ctx ctx);

/* Mount points in mountinfo have ' ', '\t', '\n' and '\\' as octal escapes. */
static void unescape_mountinfo(char *s)
{
	char *d = s;

	for (; *s; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*d = *s;
		}
	}
	*d = '\0';
}

int sandbox_cgroup_mounts(char ***out)
{
	char line[4096], mp[4096], **v = NULL, **nv;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	size_t n = 0;

	*out = NULL;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, " - cgroup2 ") || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		unescape_mountinfo(mp);
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(mp))) {
			v = nv ?: v;
			v[n] = NULL;
			fclose(f);
			sandbox_cgroup_mounts_free(v);
			return -ENOMEM;
		}
		v = nv;
		v[++n] = NULL;
	}
	fclose(f);
	*out = v;
	return 0;
}

void sandbox_cgroup_mounts_free(char **v)
{
	size_t i;

	for (i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int sandbox_cgroup_ns(char *const *mounts)
{
	size_t i;

	if (unshare(CLONE_NEWCGROUP))
		return errno;
	if (!mounts)
		return 0;
	/* A mount namespace of its own, private both ways: no mount made
	 * outside later (a cgroup2 mount, a chroot tool's rbind of /sys) shows
	 * the machine's cgroup tree in it. In it, over each cgroup2 mount, one
	 * made inside the new cgroup namespace: it shows the command's cgroup
	 * as its root. */
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL))
		return errno;
	for (i = 0; mounts[i]; i++) {
		/* The kernel refuses the same file system twice on one mount
		 * point (EBUSY): the old one goes first. A mount point inside
		 * one detached before it is gone with it (ENOENT). */
		if (umount2(mounts[i], MNT_DETACH) && errno != EINVAL && errno != ENOENT)
			return errno;
		if (mount("cgroup2", mounts[i], "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) &&
		    errno != ENOENT)
			return errno;
	}
	return 0;
}

static int add_rules(scmp_filter_ctx ctx)
{
	static const char *const enosys[] = { "io_uring_setup", "io_uring_enter",
					      "io_uring_register" };
	static const char *const eperm[] = { "ptrace", "process_vm_readv", "process_vm_writev",
					     "pidfd_getfd" };
	size_t i;
	int err;

	/* The other ABIs' socketcall() multiplexer hides the family in
	 * memory: refused whole (glibc calls socket() directly on kernels
	 * since 4.3). */
	err = refuse_families(ctx, SCMP_SYS(socket));
	err = err ?: refuse_families(ctx, SCMP_SYS(socketpair));
	/* socket(AF_INET, SOCK_PACKET, ...): the kernel makes a packet socket
	 * of it (__sock_create), whatever the family says (R8-5). The type's
	 * flags (SOCK_NONBLOCK, SOCK_CLOEXEC) live above its low 4 bits. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET));
	/* request_key(): a key type with an upcall (dns_resolver) has the
	 * kernel run /sbin/request-key as root in the root cgroup, which
	 * looks the caller's name up through the host's resolver (R8-2). */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(request_key), 0);
	for (i = 0; !err && i < sizeof(enosys) / sizeof(enosys[0]); i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), seccomp_syscall_resolve_name(enosys[i]),
				       0);
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(socketcall), 0);
	/* Typing into the operator's terminal runs commands outside the
	 * cgroup once weir exits (TIOCSTI, and TIOCLINUX's paste). */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, TIOCSTI));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, TIOCLINUX));
	/* Reaching into processes of the same uid outside the cgroup: their
	 * sockets (pidfd_getfd) and their memory (ptrace, process_vm_*). */
	for (i = 0; !err && i < sizeof(eperm) / sizeof(eperm[0]); i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
				       seccomp_syscall_resolve_name(eperm[i]), 0);
	if (err && err != -EEXIST)
		return err;
	return refuse_cgroupns_join(ctx);
}

/*
 * The command's cgroup namespace is rooted at its cgroup (sandbox_enter);
 * a root command that joined another one (pid 1's, through
 * /proc/1/ns/cgroup) could move itself out again. setns() with nstype 0
 * (any type: the descriptor decides) or with CLONE_NEWCGROUP, which a
 * pidfd's flags may carry, fails with EPERM; setns() into other named
 * namespace types stays open (nsenter -n, rootless containers).
 */
static int refuse_cgroupns_join(scmp_filter_ctx ctx)
{
	int err;

	err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setns), 1,
			       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, 0));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setns), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, CLONE_NEWCGROUP,
					       CLONE_NEWCGROUP));
	return err == -EEXIST ? 0 : err;
}

/*
 * The kernel runs cgroup/setsockopt for native system calls only (it skips
 * the hook when in_compat_syscall()), so on the i386 and x32 ABIs what
 * weir_setsockopt refuses is refused here, with the same EPERM (and no
 * event): multicast joins and source-filter changes, whose IGMP/MLD report
 * carries the group the caller chose, and source routes (the lists:
 * include/weir/egress.h; here IP_OPTIONS whole, the hook's only non-empty).
 */
static int refuse_sockopt(scmp_filter_ctx ctx, int level, int name)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt), 2,
				SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, level),
				SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffff, name));
}

static int add_compat_rules(scmp_filter_ctx ctx)
{
	const __u64 ip = WEIR_MCAST_IP | WEIR_SRCRT_IP, ip6 = WEIR_MCAST_IPV6 | WEIR_SRCRT_IPV6;
	int err, name;

	err = add_rules(ctx);
	for (name = 0; !err && name < 64; name++) {
		if ((ip >> name) & 1)
			err = refuse_sockopt(ctx, IPPROTO_IP, name);
		if (!err && (ip6 >> name) & 1)
			err = refuse_sockopt(ctx, IPPROTO_IPV6, name);
	}
	return err == -EEXIST ? 0 : err;
}

static scmp_filter_ctx new_filter(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

	/* An unknown architecture is not ours to guess about. */
	if (ctx)
		seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	return ctx;
}

/*
 * The other ABIs this machine runs (i386, x32): the native rules and
 * compat_sockopts, in a filter of their own merged into CTX (libseccomp
 * adds a rule to every architecture of a filter).
 */
static int add_compat_abis(scmp_filter_ctx ctx)
{
	static const uint32_t arches[] = { SCMP_ARCH_X86, SCMP_ARCH_X32 };
	scmp_filter_ctx compat = new_filter();
	int err = compat ? seccomp_arch_remove(compat, SCMP_ARCH_NATIVE) : -ENOMEM;
	size_t i, n = 0;

	for (i = 0; !err && i < sizeof(arches) / sizeof(arches[0]); i++) {
		err = seccomp_arch_add(compat, arches[i]);
		if (!err)
			n++;
		else if (err == -EEXIST || err == -EINVAL) /* native, or unknown here */
			err = 0;
	}
	if (!err && n)
		err = add_compat_rules(compat);
	if (!err && n && !(err = seccomp_merge(ctx, compat)))
		return 0; /* merged: compat is ctx's now */
	if (compat)
		seccomp_release(compat);
	return err;
}

int sandbox_build(struct sock_fprog *out)
{
	scmp_filter_ctx ctx;
	struct stat st;
	int fd = -1, err;

	memset(out, 0, sizeof(*out));
	ctx = new_filter();
	if (!ctx)
		return -ENOMEM;
	err = add_rules(ctx);
	err = err ?: add_compat_abis(ctx);
	if (!err) {
		fd = memfd_create("weir-seccomp", MFD_CLOEXEC);
		err = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
	}
	if (!err && fstat(fd, &st))
		err = -errno;
	if (!err) {
		out->len = st.st_size / sizeof(struct sock_filter);
		out->filter = malloc(st.st_size);
		if (!out->filter || pread(fd, out->filter, st.st_size, 0) != st.st_size)
			err = -EIO;
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	if (err) {
		pr_warn("cannot build the seccomp filter: %s\n", strerror(-err));
		sandbox_free(out);
	}
	return err;
}

void sandbox_free(struct sock_fprog *f)
{
	free(f->filter);
	f->filter = NULL;
	f->len = 0;
}

/* BY_ID: USER is a number (sudo's SUDO_UID), never a login name, even one
 * that is all digits. */
static int lookup_user(const char *user, bool by_id, struct identity *id, char *why, size_t len)
{
	struct passwd *pw;
	char *end;
	long n;

	pw = by_id ? NULL : getpwnam(user);
	if (!pw) {
		errno = 0;
		n = strtol(user, &end, 10);
		/* (uid_t)-1 means "unchanged" to setresuid(): ids stop below it. */
		if (!*user || *end || errno || n < 0 || n >= (long)UINT32_MAX) {
			snprintf(why, len, "--user '%s': no such user", user);
			return -EINVAL;
		}
		pw = getpwuid(n);
		if (!pw) { /* a bare number is fine */
			id->uid = n;
			id->gid = n;
			return 0;
		}
	}
	if (!pw) {
		snprintf(why, len, "--user '%s': no such user", user);
		return -EINVAL;
	}
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	id->login = strdup(pw->pw_name);
	id->home = strdup(pw->pw_dir);
	id->shell = strdup(pw->pw_shell);
	if (!id->login || !id->home || !id->shell) {
		snprintf(why, len, "--user '%s': out of memory", user);
		return -ENOMEM;
	}
	id->groups = calloc(64, sizeof(gid_t));
	id->ngroups = 64;
	if (!id->groups || getgrouplist(pw->pw_name, pw->pw_gid, id->groups, &id->ngroups) < 0)
		id->ngroups = 0;
	return 0;
}

static int lookup_group(const char *group, struct identity *id, char *why, size_t len)
{
	struct group *gr = getgrnam(group);
	char *end;
	long n;

	if (gr) {
		id->gid = gr->gr_gid;
		return 0;
	}
	errno = 0;
	n = strtol(group, &end, 10);
	if (*group && !*end && !errno && n >= 0 && n < (long)UINT32_MAX) {
		id->gid = n;
		return 0;
	}
	snprintf(why, len, "--group '%s': no such group", group);
	return -EINVAL;
}

static int sudo_group(const char *gid, struct identity *id, char *why, size_t len)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(gid, &end, 10);
	if (*end || errno || n < 0 || n >= (long)UINT32_MAX) {
		snprintf(why, len, "SUDO_GID '%s': not a group id", gid);
		return -EINVAL;
	}
	id->gid = n;
	return 0;
}

int identity_resolve(const char *user, const char *group, struct identity *id, char *why,
		     size_t len)
{
	const char *sudo_uid = getenv("SUDO_UID"), *sudo_gid = getenv("SUDO_GID");
	bool by_sudo = false;
	int err = 0;

	memset(id, 0, sizeof(*id));
	id->uid = getuid();
	id->gid = getgid();
	if (!user && sudo_uid && *sudo_uid && strcmp(sudo_uid, "0")) {
		/* `sudo weir run -- cmd`: cmd runs as whoever typed it. */
		user = sudo_uid;
		by_sudo = true;
	}
	if (user) {
		err = lookup_user(user, by_sudo, id, why, len);
		id->change = true;
		id->to_user = true;
	}
	/* sudo's gid is the caller's own: it keeps their groups, unlike -g. */
	if (!err && by_sudo && !group && sudo_gid && *sudo_gid)
		err = sudo_group(sudo_gid, id, why, len);
	if (!err && group) {
		err = lookup_group(group, id, why, len);
		id->change = true;
		id->ngroups = 0; /* -g GROUP: that group only, none of USER's */
	}
	id->name = user ? user : "root";
	return err;
}

void identity_free(struct identity *id)
{
	free(id->groups);
	free(id->login);
	free(id->home);
	free(id->shell);
	id->groups = NULL;
	id->login = id->home = id->shell = NULL;
}

static int drop_bounding_set(void)
{
	int cap;

	for (cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			return errno;
	return 0;
}

static int clear_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return errno;
	return syscall(SYS_capset, &h, d) ? errno : 0;
}

/*
 * Raw syscalls, not the libc wrappers: the child of clone3() in a threaded
 * weir has one thread, but glibc still lists weir's others and its
 * set*id() would signal them and wait for answers that never come (the
 * setxid broadcast). The kernel's credentials are per thread, and this
 * thread is all there is.
 */
static int raw_setids(const struct identity *id)
{
	if (syscall(SYS_setgroups, id->ngroups, id->groups))
		return errno;
	if (syscall(SYS_setresgid, id->gid, id->gid, id->gid))
		return errno;
	if (id->uid && syscall(SYS_setresuid, id->uid, id->uid, id->uid))
		return errno;
	return 0;
}

/* struct landlock_ruleset_attr as of ABI 6 (Linux 6.12); older headers
 * lack the fields the kernel reads by size. */
struct ll_ruleset_attr {
	__u64 handled_access_fs;
	__u64 handled_access_net;
	__u64 scoped;
};

#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_ACCESS_FS_MAKE_BLOCK (1ULL << 11)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

/*
 * A Landlock domain around the command. Being in one is what matters: a
 * process in a domain may not ptrace, read or write the memory of
 * (/proc/PID/mem), or take file descriptors from (pidfd_getfd) processes
 * outside it, same uid or not (Landlock ABI 1, Linux 5.13). From ABI 6
 * (6.12) it may also not signal them (weir included) nor connect to
 * their abstract unix sockets. The one file-system right handled, making
 * block devices, is granted nowhere. Without Landlock: 0, the rest holds.
 */
static int landlock_enter(void)
{
	struct ll_ruleset_attr attr = { .handled_access_fs = LL_ACCESS_FS_MAKE_BLOCK };
	long abi;
	int fd, err = 0;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 1)
		return 0;
	if (abi >= 6)
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
	fd = syscall(SYS_landlock_create_ruleset, &attr,
		     abi >= 6 ? sizeof(attr) : sizeof(attr.handled_access_fs), 0);
	if (fd < 0)
		return errno;
	if (syscall(SYS_landlock_restrict_self, fd, 0))
		err = errno;
	close(fd);
	return err;
}

int sandbox_enter(const struct identity *id, const struct sock_fprog *filter)
{
	int err = 0;

	if (id->change && id->uid != 0) {
		/* Order matters: the bounding set needs CAP_SETPCAP, groups and
		 * gid need root; the uid goes last. */
		err = drop_bounding_set();
		if (!err)
			err = raw_setids(id);
		/* Trust, then check: the command must not start as anyone else. */
		if (!err && (syscall(SYS_getuid) != id->uid || syscall(SYS_geteuid) != id->uid ||
			     syscall(SYS_getgid) != id->gid || syscall(SYS_getegid) != id->gid))
			err = EPERM;
		if (!err)
			err = clear_caps();
		if (!err && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
			err = errno;
	} else if (id->change && syscall(SYS_setresgid, id->gid, id->gid, id->gid)) {
		err = errno;
	}
	/* Landlock needs no_new_privs or CAP_SYS_ADMIN: root keeps the latter. */
	if (!err)
		err = landlock_enter();
	if (!err && filter->len &&
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (unsigned long)filter, 0, 0))
		err = errno;
	return err;
}
