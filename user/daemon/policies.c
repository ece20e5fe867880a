// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <ldns/sha2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "log.h"
#include "policies.h"

/* A directory holding cidr_list files of some policy: watched, and the
 * names in it that matter (an event for another file there changes nothing). */
struct list_dir {
	int wd;
	char **names;
	size_t n;
};

struct policies {
	char dir[PATH_MAX];
	int ino_fd;
	int dir_wd; /* the policy directory's watch */
	struct policy_entry **e;
	size_t n;
	struct list_dir *lists;
	size_t n_lists;
};

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)

static int open_safe(const char *path, char *err, size_t len);

int policies_open(const char *dir, struct policies **out)
{
	struct policies *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return -ENOMEM;
	netlist_set_open(open_safe); /* cidr_list files: the same rules */
	snprintf(ps->dir, sizeof(ps->dir), "%s", dir);
	ps->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ps->dir_wd = -1;
	if (ps->ino_fd >= 0 && (ps->dir_wd = inotify_add_watch(ps->ino_fd, dir, WATCH_MASK)) < 0) {
		pr_warn("cannot watch the policy directory %s: %s (weir reload reads it)\n", dir,
			strerror(errno));
		close(ps->ino_fd);
		ps->ino_fd = -1;
	}
	*out = ps;
	return 0;
}

static struct policy_entry *find(struct policies *ps, const char *name)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		if (!strcmp(ps->e[i]->name, name))
			return ps->e[i];
	return NULL;
}

static struct policy_entry *add(struct policies *ps, const char *name, const char *path)
{
	struct policy_entry **v, *e;

	v = realloc(ps->e, (ps->n + 1) * sizeof(*v));
	if (!v)
		return NULL;
	ps->e = v;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	snprintf(e->name, sizeof(e->name), "%s", name);
	snprintf(e->path, sizeof(e->path), "%s", path);
	ps->e[ps->n++] = e;
	return e;
}

/* Writable by someone other than us (root) or root's group? */
static bool others_write(const struct stat *st)
{
	return (st->st_mode & S_IWOTH) || ((st->st_mode & S_IWGRP) && st->st_gid != 0) ||
	       (st->st_uid != 0 && st->st_uid != geteuid());
}

/*
 * Can nobody change DIR from here? Root's and on a read-only mount: a
 * Kubernetes ConfigMap volume, whose root the kubelet makes mode 0777 and
 * which the DaemonSet mounts read-only (its host side is below
 * /var/lib/kubelet/pods, 0750: the kubelet alone writes it). Only root can
 * make a mount, so only root could have put a read-only view on a
 * directory others can write elsewhere.
 */
static bool read_only_mount(const char *dir, const struct stat *st)
{
	struct statvfs sv;

	return st->st_uid == 0 && !statvfs(dir, &sv) && (sv.f_flag & ST_RDONLY);
}

/*
 * REAL (a resolved path) and every directory above it must be beyond the
 * reach of other users: whoever can change a policy file changes what the
 * daemon enforces at its next reload, restart or adoption, and a process
 * inside a cgroup often runs as the user owning the file it was attached
 * with. A sticky directory (/tmp) is fine: others cannot replace our entry.
 */
static int unsafe_dirs(const char *real, char *err, size_t len)
{
	char dir[PATH_MAX], *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", real);
	while ((slash = strrchr(dir, '/'))) {
		slash[slash == dir] = '\0'; /* "/a" -> "/", "/" -> end */
		if (stat(dir, &st))
			return -errno;
		if (!(st.st_uid == 0 && (st.st_mode & S_ISVTX)) && others_write(&st) &&
		    !read_only_mount(dir, &st)) {
			snprintf(err, len, "%.200s: its directory %.200s is writable by uid %u or others "
				 "(refusing: they could change the policy)", real, dir,
				 (unsigned int)st.st_uid);
			return -EPERM;
		}
		if (slash == dir)
			break;
	}
	return 0;
}

int policies_dir_private(const char *dir, char *err, size_t len)
{
	char real[PATH_MAX], probe[PATH_MAX + 2];

	if (!realpath(dir, real)) {
		snprintf(err, len, "%.400s: %s", dir, strerror(errno));
		return -errno;
	}
	snprintf(probe, sizeof(probe), "%s/.", real); /* REAL itself, and above */
	return unsafe_dirs(probe, err, len);
}

/* PATH, opened for reading only if it is a regular file that only root
 * (the daemon's user) can change, in directories only root can change; a
 * FIFO or a device never blocks the daemon (O_NONBLOCK, then refused). */
static int open_safe(const char *path, char *err, size_t len)
{
	char real[PATH_MAX];
	struct stat st;
	int fd, ret;

	if (!realpath(path, real)) {
		ret = -errno;
		snprintf(err, len, "%.400s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	fd = open(real, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, len, "%.400s: cannot open: %s", path, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode))
		snprintf(err, len, "%.400s: not a regular file", path);
	else if (others_write(&st))
		snprintf(err, len, "%.300s: owned by uid %u or writable by others (refusing: they "
			 "could change the policy; make it root's, mode 0644)", path,
			 (unsigned int)st.st_uid);
	else if ((ret = unsafe_dirs(real, err, len)) == 0)
		return fcntl(fd, F_SETFL, 0) ? -errno : fd;
	close(fd);
	return -EPERM;
}

/* A file a policy includes is held to the same rules as the policy. */
static int read_safe(void *ctx, const char *path, char **bufp, size_t *lenp,
		     char err[POLICY_ERR_LEN])
{
	int fd = open_safe(path, err, POLICY_ERR_LEN);

	return fd < 0 ? fd : policy_read_fd(fd, path, bufp, lenp, err);
}

static struct list_dir *list_dir_of(struct policies *ps, int wd)
{
	size_t i;

	for (i = 0; i < ps->n_lists; i++)
		if (ps->lists[i].wd == wd)
			return &ps->lists[i];
	return NULL;
}

static bool list_dir_has(const struct list_dir *ld, const char *name)
{
	size_t i;

	for (i = 0; i < ld->n; i++)
		if (!strcmp(ld->names[i], name))
			return true;
	return false;
}

/* Watch the directory of the list file PATH for changes to that file
 * (a directory, not the file: an editor or `mv` replaces the file). */
static int watch_list(struct policies *ps, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], **names, *name;
	struct list_dir *ld, *more;
	int wd;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) ?: 1 : 1,
		 slash ? path : ".");
	name = (char *)(slash ? slash + 1 : path);
	wd = inotify_add_watch(ps->ino_fd, dir, WATCH_MASK);
	if (wd < 0)
		return -errno;
	ld = list_dir_of(ps, wd);
	if (!ld) {
		more = realloc(ps->lists, (ps->n_lists + 1) * sizeof(*more));
		if (!more)
			return -ENOMEM;
		ps->lists = more;
		ld = &ps->lists[ps->n_lists++];
		*ld = (struct list_dir){ .wd = wd };
	}
	if (list_dir_has(ld, name))
		return 0;
	names = realloc(ld->names, (ld->n + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	ld->names = names;
	ld->names[ld->n] = strdup(name);
	return ld->names[ld->n] ? (ld->n++, 0) : -ENOMEM;
}

/* The cidr_list files of P: an edited list reloads the policies using it. */
static void watch_lists(struct policies *ps, const struct policy *p)
{
	const struct policy_rule *sets[] = { p->allow, p->deny, p->inbound };
	const size_t n[] = { p->n_allow, p->n_deny, p->n_inbound };
	size_t i, j;
	int ret;

	if (ps->ino_fd < 0)
		return;
	for (i = 0; i < 3; i++) {
		for (j = 0; j < n[i]; j++) {
			const struct policy_list *l = sets[i][j].list;
			const char *path = l ? l->file.path : NULL;

			if (sets[i][j].kind != RULE_CIDR_LIST || !path)
				continue;
			ret = watch_list(ps, path);
			if (ret)
				pr_warn("cannot watch the cidr_list file %s: %s (weir reload reads "
					"it)\n", path, strerror(-ret));
		}
	}
}

static void drop_parsed(struct policy_entry *e)
{
	policy_free(e->parsed);
	e->parsed = NULL;
}

/*
 * Read E's file again. A new good version takes over (generation + 1);
 * a bad one is reported and the old one stays. Returns 1 if the version
 * in force changed.
 */
static int reload(struct policies *ps, struct policy_entry *e)
{
	char err[POLICY_ERR_LEN];
	unsigned char sha[LDNS_SHA256_DIGEST_LENGTH];
	struct policy *p = NULL;
	bool was_gone = e->gone;
	char *buf = NULL;
	size_t len;
	int ret;

	drop_parsed(e); /* never older than the last read */
	ret = open_safe(e->path, err, sizeof(err));
	if (ret >= 0)
		ret = policy_read_fd(ret, e->path, &buf, &len, err);
	if (ret == -ENOENT) {
		e->gone = true;
		if (e->text)
			snprintf(e->state, sizeof(e->state),
				 "policy error: %.900s: deleted; generation %u stays in force", e->path,
				 e->generation);
		return 0;
	}
	e->gone = false;
	if (!ret) {
		/* The hash covers the files it includes: a change in one is a
		 * new version of this policy. */
		ret = policy_load_tree(e->path, buf, len, read_safe, NULL, sha, &p, err);
		if (p)
			watch_lists(ps, p);
		if (e->have_sha && !memcmp(sha, e->sha, sizeof(sha))) {
			/* Put back as it was (a restore, a mv back): not
			 * "deleted" for ever, whatever the bytes said then. */
			if (was_gone && ret)
				snprintf(e->state, sizeof(e->state), "policy error: %s", err);
			else if (was_gone)
				snprintf(e->state, sizeof(e->state), "ok");
			policy_free(p);
			free(buf);
			return 0; /* the same bytes: nothing to do, nothing to say */
		}
		memcpy(e->sha, sha, sizeof(sha));
		e->have_sha = true;
	}
	if (ret) {
		free(buf);
		e->load_errors++;
		snprintf(e->state, sizeof(e->state), "policy error: %s", err);
		pr_warn("%s%s\n", e->state,
			e->text ? "; the previous version stays in force" : "");
		return 0;
	}
	e->parsed = p; /* for the attachments using it, next */
	free(e->text);
	e->text = buf;
	e->len = len;
	e->generation++;
	snprintf(e->state, sizeof(e->state), "ok");
	return 1;
}

static bool is_policy_file(const char *name)
{
	return name[0] != '.' && !fnmatch("*.yaml", name, 0);
}

static int scan_dir(struct policies *ps, policies_changed_fn changed, void *ctx)
{
	char name[256], path[PATH_MAX + 256];
	struct policy_entry *e;
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(ps->dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (!is_policy_file(de->d_name) || len - 5 >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 5), de->d_name);
		if (find(ps, name))
			continue; /* read below with the others */
		snprintf(path, sizeof(path), "%s/%s", ps->dir, de->d_name);
		e = add(ps, name, path);
		if (e)
			e->in_dir = true;
	}
	closedir(d);
	return n;
}

int policies_scan(struct policies *ps, policies_changed_fn changed, void *ctx)
{
	size_t i;
	int n = 0, ret;

	ret = scan_dir(ps, changed, ctx);
	if (ret < 0)
		pr_warn("cannot read the policy directory %s: %s\n", ps->dir, strerror(-ret));
	for (i = 0; i < ps->n; i++) {
		if (!reload(ps, ps->e[i]))
			continue;
		n++;
		if (changed)
			changed(ctx, ps->e[i]);
		drop_parsed(ps->e[i]); /* not held once the change is done */
	}
	return n;
}

int policies_inotify_fd(const struct policies *ps)
{
	return ps->ino_fd;
}

int policies_on_inotify(struct policies *ps, policies_changed_fn changed, void *ctx)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	const struct list_dir *ld;
	bool any = false;
	ssize_t n, off;

	while ((n = read(ps->ino_fd, buf, sizeof(buf))) > 0) {
		for (off = 0; off < n; off += (ssize_t)(sizeof(*ev) + ev->len)) {
			ev = (const struct inotify_event *)(buf + off);
			/* Anything in the policy directory; in a list's
			 * directory (maybe /etc or a shared one), only the
			 * lists: a big list is not parsed again for nothing. */
			ld = ev->wd == ps->dir_wd ? NULL : list_dir_of(ps, ev->wd);
			if (ev->wd == ps->dir_wd || (ev->mask & IN_Q_OVERFLOW) ||
			    (ld && ev->len && list_dir_has(ld, ev->name)))
				any = true;
		}
	}
	/* Which file does not matter much: reading them all again is cheap,
	 * and an unchanged file (same bytes) changes nothing. */
	return any ? policies_scan(ps, changed, ctx) : 0;
}

static bool valid_name(const char *s)
{
	if (!*s || *s == '.')
		return false;
	for (; *s; s++)
		if (!(*s == '-' || *s == '_' || *s == '.' || (*s >= '0' && *s <= '9') ||
		      (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

struct policy_entry *policies_get(struct policies *ps, const char *name, char *err, size_t len)
{
	char path[PATH_MAX];
	struct policy_entry *e;

	if (strchr(name, '/')) {
		if (name[0] != '/' || !realpath(name, path)) {
			snprintf(err, len, "policy file %s: %s", name,
				 name[0] != '/' ? "give an absolute path" : strerror(errno));
			return NULL;
		}
		if (strlen(path) >= sizeof(e->name)) { /* its name: the path, whole */
			snprintf(err, len, "policy file %.300s: a path of at most %zu bytes", path,
				 sizeof(e->name) - 1);
			return NULL;
		}
		e = find(ps, path) ?: add(ps, path, path);
		if (e && !e->text)
			reload(ps, e);
	} else if (!valid_name(name)) {
		snprintf(err, len, "policy '%s': a NAME is letters, digits, '-', '_', '.' (a "
			 "file NAME.yaml in %s), or give a path to a file", name, ps->dir);
		return NULL;
	} else {
		e = find(ps, name);
		if (!e) { /* created since the last scan, inotify not read yet */
			policies_scan(ps, NULL, NULL);
			e = find(ps, name);
		}
		if (!e || (!e->text && e->gone)) {
			snprintf(err, len, "no policy '%s' (no file %s/%s.yaml)", name, ps->dir,
				 name);
			return NULL;
		}
	}
	if (!e) {
		snprintf(err, len, "%s", strerror(ENOMEM));
		return NULL;
	}
	if (!e->text) {
		snprintf(err, len, "%s", e->state[0] ? e->state : "policy never loaded");
		return NULL;
	}
	return e;
}

void policies_forget_failed(struct policies *ps, const char *name,
			    bool (*used)(void *ctx, const char *name), void *ctx)
{
	char path[PATH_MAX];
	struct policy_entry *e;
	size_t i;

	if (!strchr(name, '/') || name[0] != '/' || !realpath(name, path))
		return;
	for (i = 0; i < ps->n; i++) {
		e = ps->e[i];
		if (strcmp(e->name, path) || e->in_dir || e->text || used(ctx, e->name))
			continue;
		drop_parsed(e);
		free(e);
		ps->e[i] = ps->e[--ps->n];
		return;
	}
}

int policies_parse(const struct policy_entry *e, struct policy **out, char err[POLICY_ERR_LEN])
{
	struct policy_entry *me = (struct policy_entry *)e; /* the cache is not the version */

	if (me->parsed) {
		*out = me->parsed;
		me->parsed = NULL;
		return 0;
	}
	/* The included files as they are now (an include that went bad
	 * since fails here, it never loosens the policy). */
	return policy_load_tree(e->path, e->text, e->len, read_safe, NULL, NULL, out, err);
}

struct policy_entry *policies_at(struct policies *ps, size_t i)
{
	return i < ps->n ? ps->e[i] : NULL;
}

void policies_free(struct policies *ps)
{
	size_t i, j;

	if (!ps)
		return;
	for (i = 0; i < ps->n; i++) {
		drop_parsed(ps->e[i]);
		free(ps->e[i]->text);
		free(ps->e[i]);
	}
	free(ps->e);
	for (i = 0; i < ps->n_lists; i++) {
		for (j = 0; j < ps->lists[i].n; j++)
			free(ps->lists[i].names[j]);
		free(ps->lists[i].names);
	}
	free(ps->lists);
	if (ps->ino_fd >= 0)
		close(ps->ino_fd);
	free(ps);
}
