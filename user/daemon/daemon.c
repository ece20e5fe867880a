// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir daemon, the core: one struct egress for the daemon's life, one
 * attachment per enforced cgroup, the policy directory, the state dir and
 * the adoption of a previous daemon's attachments.
 *
 * Locking: d->mu serialises the API calls (the HTTP thread) with the main
 * loop (signals, inotify, static-name refreshes). The resolvers' threads
 * never take it: their events go out under out_mu only, since detaching
 * stops (joins) a resolver while holding d->mu.
 *
 * The event path takes no d->mu either, so that a burst of decisions
 * neither stalls the API nor waits for it: a reader thread only copies the
 * ring buffer's records into the pump (user/events/pump.h), under rb_mu;
 * the pump's writer thread formats each record for the attachment it
 * belongs to, found under ev_mu. Whatever the writer reads of an attachment
 * (by_handle[], its ectx, its session) changes under ev_mu too, so ev_mu
 * comes after d->mu and the writer never waits for d->mu.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/timerfd.h>
#include <bpf/libbpf.h>

#include "attachment.h"
#include "cgroup.h"
#include "daemon.h"
#include "egress.h"
#include "events.h"
#include "evrec.h"
#include "log.h"
#include "metrics.h"
#include "netns.h"
#include "policies.h"
#include "pump.h"
#include "session.h"

#define MAX_HANDLES 4096 /* attachments at once, handle 0 is "none" */
#define POLL_MS 50 /* events are submitted without wakeup: read this often */
/* The pump's backlog: about 140,000 events, as much again as the ring buffer. */
#define PUMP_BYTES (16 << 20)
#define STATE_SUFFIX ".json"

enum { EV_SIGNAL = 1, EV_INOTIFY, EV_TIMER, EV_NOTIFY };
#define EV_KEY(kind, handle) (((__u64)(kind) << 32) | (handle))

struct att {
	struct daemon *d;
	struct attachment *a;
	__u32 handle;
	__u64 cgid;
	int cgfd;
	char cgpath[CGROUP_PATH_MAX]; /* absolute */
	char label[256];
	char label_json[256 * 6 + 3]; /* the label as a JSON string, for --events */
	char policy[256]; /* policy entry name (or path) */
	char netns[PATH_MAX]; /* as asked, "" if none */
	__u64 netns_ino;
	char nameservers[512]; /* the cgroup's, read once when it was attached */
	char *hosts; /* its /etc/hosts then (NULL: not taken) */
	bool nss_bypass; /* its NSS answered without DNS then */
	bool ns_known;
	__u16 dns_port;
	__u32 generation; /* of the version in force here */
	char state[POLICIES_STATE_LEN]; /* "ok" or why the last change failed */
	struct event_ctx ectx;
	struct event_memo memo; /* the writer thread's, under ev_mu */
	atomic_ullong dns[3]; /* queries by verdict */
	/* A policy sent inline (weir run): {policy_yaml, policy_source, allow,
	 * audit}, kept for adoption; never from the policy dir, never reloaded.
	 * NULL: a policy of the directory (or a file). */
	json_object *inline_spec;
	/* The ids of the containers (pod sandboxes) that bound it through a
	 * container trigger (user/containers/bind.h), an array of strings: the
	 * last to let go detaches it. NULL: attached by hand or by weir run,
	 * which no container's release detaches. */
	json_object *holders;
	struct session *session; /* weir run's records, or NULL */
	bool attribute_all; /* its client writes an events file */
	__u64 lost_base; /* the events lost before it was attached */
};

struct daemon {
	struct daemon_opts o;
	char policy_dir[PATH_MAX], state_dir[PATH_MAX], pin_root[PATH_MAX];
	pthread_mutex_t mu;
	pthread_mutex_t out_mu; /* the event stream */
	pthread_mutex_t ev_mu; /* what the pump's writer reads of the attachments */
	pthread_mutex_t rb_mu; /* the ring buffer and the pump's reader side */
	struct egress *eg;
	struct policies *ps;
	struct att *by_handle[MAX_HANDLES];
	size_t n_atts;
	char cgmnt[CGROUP_PATH_MAX];
	char own_cgroup[CGROUP_PATH_MAX]; /* ours, below the mount */
	int sigfd, epfd, timerfd, state_lock, pin_lock;
	int keys_fd; /* hold_keys()'s cgroup, locked while we live; or -1 */
	char keys_path[CGROUP_PATH_MAX];
	struct ring_buffer *rb;
	struct pump *pump;
	pthread_t reader;
	bool reader_on;
	int reader_stop; /* an eventfd: the reader thread ends */
	__u64 sessions_dropped; /* by the sessions that ended */
	struct metrics_hist dns_latency;
	FILE *events;
	__u64 reloads, reload_errors;
};

/* --- small helpers --------------------------------------------------------- */

/* The cgroup v2 path of PID, below the mount ("/kubepods/pod1"). */
static int proc_cgroup(pid_t pid, char *out, size_t len)
{
	char p[64], line[CGROUP_PATH_MAX + 8];
	int ret = -ENOENT;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	while (ret && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, "%.4000s", line + 3);
		ret = 0;
	}
	fclose(f);
	return ret;
}

/* Is cgroup REL (below the mount) ANCESTOR or below it? */
static bool cgroup_within(const char *rel, const char *ancestor)
{
	size_t n = strlen(ancestor);

	if (n == 1) /* "/" */
		return true;
	return !strncmp(rel, ancestor, n) && (rel[n] == '\0' || rel[n] == '/');
}

static const char *rel_of(const struct daemon *d, const char *abs)
{
	const char *r = abs + strlen(d->cgmnt);

	return *r ? r : "/";
}

static bool is_cgroup2(const char *path)
{
	struct statfs sf;

	return !statfs(path, &sf) && sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* CGROUP as asked (absolute, or relative to the mount) -> its real path. */
static int resolve_cgroup(struct daemon *d, const char *cg, char *out, size_t len)
{
	char tmp[CGROUP_PATH_MAX * 2];

	if (!cg || !*cg)
		return -EINVAL;
	if (cg[0] == '/' && realpath(cg, out) && is_cgroup2(out) &&
	    !strncmp(out, d->cgmnt, strlen(d->cgmnt)))
		return 0;
	snprintf(tmp, sizeof(tmp), "%s/%s", d->cgmnt, cg + (cg[0] == '/'));
	if (!realpath(tmp, out))
		return -errno;
	if (!is_cgroup2(out) || strncmp(out, d->cgmnt, strlen(d->cgmnt)))
		return -ENOENT;
	(void)len;
	return 0;
}

/* A process in the cgroup or below it (0: none). */
static pid_t pid_in_cgroup(const char *path, int depth)
{
	char p[CGROUP_PATH_MAX + 32];
	struct dirent *de;
	pid_t pid = 0;
	FILE *f;
	DIR *dir;

	snprintf(p, sizeof(p), "%s/cgroup.procs", path);
	f = fopen(p, "re");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid || depth > 8 || !(dir = opendir(path)))
		return pid;
	while (!pid && (de = readdir(dir))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		pid = pid_in_cgroup(p, depth + 1);
	}
	closedir(dir);
	return pid;
}

/* An attachment's pin directory and what is left in it: the links of a
 * cgroup that is gone (removing the pins lets the links go). */
static void pin_dir_remove(const char *dir)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void att_pin_dir(const struct daemon *d, __u64 cgid, char *out, size_t len)
{
	snprintf(out, len, "%s/att-%llu", d->pin_root, (unsigned long long)cgid);
}

static void att_state_file(const struct daemon *d, __u64 cgid, char *out, size_t len)
{
	snprintf(out, len, "%s/att-%llu" STATE_SUFFIX, d->state_dir, (unsigned long long)cgid);
}

static struct att *find_cgid(struct daemon *d, __u64 cgid)
{
	__u32 h;

	for (h = 1; h < MAX_HANDLES; h++)
		if (d->by_handle[h] && d->by_handle[h]->cgid == cgid)
			return d->by_handle[h];
	return NULL;
}

static struct att *find_path(struct daemon *d, const char *path)
{
	__u32 h;

	for (h = 1; h < MAX_HANDLES; h++)
		if (d->by_handle[h] && !strcmp(d->by_handle[h]->cgpath, path))
			return d->by_handle[h];
	return NULL;
}

/* --- the state dir ------------------------------------------------------- */

/* Written (tmp + rename) before the request is answered, and before the
 * links exist: a daemon that dies at any point finds what it pinned. */
static int state_write(struct daemon *d, const struct att *t)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
	struct json_object *o = json_object_new_object();
	int ret = 0;

	json_object_object_add(o, "cgroup", json_object_new_string(t->cgpath));
	json_object_object_add(o, "cgroup_id", json_object_new_uint64(t->cgid));
	json_object_object_add(o, "label", json_object_new_string(t->label));
	json_object_object_add(o, "policy", json_object_new_string(t->policy));
	json_object_object_add(o, "handle", json_object_new_int64(t->handle));
	json_object_object_add(o, "dns_port", json_object_new_int(t->dns_port));
	json_object_object_add(o, "netns", json_object_new_string(t->netns));
	json_object_object_add(o, "netns_inode", json_object_new_uint64(t->netns_ino));
	if (t->ns_known)
		json_object_object_add(o, "nameservers", json_object_new_string(t->nameservers));
	if (t->inline_spec)
		json_object_object_add(o, "inline", json_object_get(t->inline_spec));
	if (t->holders)
		json_object_object_add(o, "holders", json_object_get(t->holders));
	if (t->hosts) {
		json_object_object_add(o, "hosts", json_object_new_string(t->hosts));
		json_object_object_add(o, "nss_bypass", json_object_new_boolean(t->nss_bypass));
	}
	att_state_file(d, t->cgid, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PLAIN) || rename(tmp, path))
		ret = -errno ?: -EIO;
	json_object_put(o);
	if (ret)
		pr_warn("cannot write %s: %s\n", path, strerror(-ret));
	return ret;
}

static void state_remove(struct daemon *d, __u64 cgid)
{
	char path[PATH_MAX + 64];

	att_state_file(d, cgid, path, sizeof(path));
	unlink(path);
}

/* --- events ------------------------------------------------------------ */

/* {"attachment":LABEL, + the event's own fields (N bytes, no newline). */
static void emit(struct daemon *d, const struct att *t, const char *json, size_t n)
{
	if (!d->events || json[0] != '{' || !n)
		return;
	pthread_mutex_lock(&d->out_mu);
	fputs("{\"attachment\":", d->events);
	fputs(t->label_json, d->events);
	fputc(',', d->events);
	fwrite(json + 1, 1, n - 1, d->events);
	fputc('\n', d->events);
	pthread_mutex_unlock(&d->out_mu);
}

/* --- a session: what weir run prints, from its attachment ---------------- */

static json_object *record(const char *type)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "t", json_object_new_string(type));
	return o;
}

static void rec_str(json_object *o, const char *key, const char *val)
{
	if (val)
		json_object_object_add(o, key, json_object_new_string(val));
}

/* One query to the attachment's resolver (its thread). */
static void session_dns(struct att *t, const struct dns_event *e)
{
	char buf[EVENT_JSON_MAX * 2];
	json_object *o = record("dns");

	json_object_object_add(o, "verdict", json_object_new_int(e->verdict));
	json_object_object_add(o, "upstream_failed", json_object_new_boolean(e->upstream_failed));
	if (event_format_dns_json(&t->ectx, e, buf, sizeof(buf)) > 0)
		rec_str(o, "json", buf);
	if (e->verdict != WEIR_V_ALLOW && event_format_dns_human(e, buf, sizeof(buf)) > 0)
		rec_str(o, "human", buf);
	session_push(t->session, o);
}

/* The resolver's notes (an upstream failing): the client's stderr. */
static void session_log(enum log_level level, const char *msg, void *ctx)
{
	struct att *t = ctx;
	json_object *o = record("log");

	json_object_object_add(o, "level", json_object_new_int(level));
	rec_str(o, "msg", msg);
	if (t->session)
		session_push(t->session, o);
	else
		json_object_put(o);
}

/*
 * The pump's writer thread: one record of the ring buffer, for the
 * attachment it names (found, and formatted for, under ev_mu: it stays as
 * it is). For weir run's session: the event's bytes (the client counts its
 * summary from them), and what only the daemon can write, since the
 * learned names are here: the summary row's name, the JSON line, the human
 * line of a refusal. The session's own queue takes it or drops it
 * (session.h): the writer never waits for a client.
 */
static void on_record(void *ctx, const void *rec, size_t len)
{
	struct daemon *d = ctx;
	const struct weir_event *e = rec;
	char json[EVENT_JSON_MAX], human[EVENT_JSON_MAX], dom[DNS_NAME_MAX];
	const char *domain = NULL;
	struct session *s = NULL;
	bool refused = false;
	struct att *t;
	int n = 0;

	if (len < sizeof(*e) || e->handle >= MAX_HANDLES)
		return;
	pthread_mutex_lock(&d->ev_mu);
	t = d->by_handle[e->handle];
	if (t && (d->events || t->session)) {
		domain = event_domain(&t->ectx, e, dom, sizeof(dom));
		n = event_format_json_dom(&t->ectx, rec, len, domain, json, sizeof(json));
		if (n > 0)
			emit(d, t, json, n);
	}
	if (t && t->session) {
		s = session_get(t->session);
		refused = e->verdict != WEIR_V_ALLOW && event_is_decision(e) &&
			  event_format_human_rec(&t->ectx, rec, len, human, sizeof(human)) > 0;
	}
	pthread_mutex_unlock(&d->ev_mu);
	if (s) {
		session_push_event(s, e, domain, n > 0 ? json : NULL, refused ? human : NULL);
		session_put(s);
	}
}

/* The writer has nothing more for now: out goes the file. */
static void on_idle(void *ctx)
{
	struct daemon *d = ctx;

	pthread_mutex_lock(&d->out_mu);
	if (d->events)
		fflush(d->events);
	pthread_mutex_unlock(&d->out_mu);
}

/* Every record the ring buffer holds now, handled: before an attachment
 * goes (its last events) and before the daemon does. */
static void drain(struct daemon *d)
{
	pthread_mutex_lock(&d->rb_mu);
	if (d->rb)
		ring_buffer__consume(d->rb);
	if (d->pump)
		pump_sync(d->pump);
	pthread_mutex_unlock(&d->rb_mu);
}

/* From an attachment's resolver thread: never d->mu. */
static void on_dns_event(void *ctx, const struct dns_event *e)
{
	struct att *t = ctx;
	char buf[EVENT_JSON_MAX * 2];
	int n;

	if (e->verdict < 3)
		atomic_fetch_add(&t->dns[e->verdict], 1);
	metrics_hist_observe(&t->d->dns_latency, e->took_ns);
	if (t->d->events && (n = event_format_dns_json(&t->ectx, e, buf, sizeof(buf))) > 0) {
		emit(t->d, t, buf, n);
		pthread_mutex_lock(&t->d->out_mu);
		fflush(t->d->events);
		pthread_mutex_unlock(&t->d->out_mu);
	}
	if (t->session)
		session_dns(t, e);
}

static int open_events(struct daemon *d)
{
	int fd;

	if (!d->o.events)
		return 0;
	if (!strcmp(d->o.events, "-")) {
		d->events = stdout;
		return 0;
	}
	fd = open(d->o.events, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || !(d->events = fdopen(fd, "a"))) {
		pr_warn("cannot open the event stream %s: %s\n", d->o.events, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	/* stdio's 4 KiB would be a write() every dozen lines of a burst; the
	 * pump's writer flushes whenever it has nothing more. */
	setvbuf(d->events, NULL, _IOFBF, 1 << 20);
	return 0;
}

static bool peer_enforced(struct daemon *d, pid_t pid);
static int adopt_inline(struct daemon *d, struct att *t);
static void reap_inline(struct daemon *d);

/* --- attachments ---------------------------------------------------------- */

/* What the attachment's upload budgets refused (a few entries: cheap). */
static __u64 budget_refused(struct daemon *d, __u32 handle)
{
	struct egress_budget b[64];
	__u64 sum = 0;
	int i, n = egress_budgets(d->eg, handle, b, 64);

	for (i = 0; i < n; i++)
		sum += b[i].refused;
	return sum;
}

static void info_of(struct daemon *d, const struct att *t, struct attach_info *out)
{
	struct weir_counts c = {};

	memset(out, 0, sizeof(*out));
	egress_counts(d->eg, t->handle, &c);
	out->cgroup_id = t->cgid;
	snprintf(out->cgroup, sizeof(out->cgroup), "%s", t->cgpath);
	snprintf(out->label, sizeof(out->label), "%s", t->label);
	snprintf(out->policy, sizeof(out->policy), "%s", t->policy);
	out->generation = t->generation;
	out->allowed = c.allow;
	out->denied = c.deny;
	out->would_deny = c.would_deny;
	out->budget_refused = budget_refused(d, t->handle);
	out->dns_port = t->dns_port;
	out->holders = t->holders ? json_object_array_length(t->holders) : 0;
	snprintf(out->state, sizeof(out->state), "%s", t->state);
}

/* The attachment's state: its own failure first, else its policy file's. */
static void att_state(struct att *t, const struct policy_entry *e, const char *own)
{
	snprintf(t->state, sizeof(t->state), "%s", own ?: e ? e->state : "ok");
}

/*
 * A process of the cgroup whose view (its /etc, its network namespace) the
 * daemon may take: not one in namespaces an unprivileged user made (unshare
 * -Urm), where it would choose the cgroup's nameservers and hosts, and so
 * the addresses allowed names open. 0: none.
 */
static pid_t pid_to_view(const struct att *t)
{
	pid_t pid = pid_in_cgroup(t->cgpath, 0);

	if (pid && !(ns_of_pid_ours(pid, "mnt") && ns_of_pid_ours(pid, "net"))) {
		pr_warn("%s: pid %d in it is in namespaces a user made: the cgroup's resolver "
			"takes the daemon's network namespace and files (name one with netns)\n",
			t->cgpath, (int)pid);
		return 0;
	}
	return pid;
}

/* Where the resolver goes (*nsfd, -1: ours): the netns asked for, else a
 * process's in the cgroup, else the peer's. root[]: a process's view of
 * /etc, if any. 0 or -errno with err filled. */
static int pick_netns(struct att *t, const char *netns, pid_t peer, int *nsfd, char *root,
		      size_t len, char *err, size_t elen)
{
	pid_t pid = pid_to_view(t);
	int fd;

	*nsfd = -1;
	root[0] = '\0';
	if (pid)
		snprintf(root, len, "/proc/%d/root", pid);
	if (netns && *netns) {
		fd = netns_open_path(netns);
		if (fd < 0) {
			snprintf(err, elen, "netns %s: %s", netns, fd == -EINVAL ?
				 "not a network namespace (/run/netns/NAME, /proc/PID/ns/net)" :
				 strerror(-fd));
			return fd;
		}
		snprintf(t->netns, sizeof(t->netns), "%s", netns);
		*nsfd = fd;
		return 0;
	}
	if (!pid)
		pid = peer;
	if (pid <= 0)
		return 0;
	fd = netns_open_pid(pid);
	if (fd < 0) {
		snprintf(err, elen, "cannot open /proc/%d/ns/net (the network namespace of %s, "
			 "for its resolver): %s", pid, pid == peer ? "the caller" :
			 "a process in the cgroup", strerror(-fd));
		return fd;
	}
	*nsfd = fd;
	return 0;
}

/* P is owned from here on, also on failure. */
static int att_open_policy(struct daemon *d, struct att *t, struct policy *p, int nsfd,
			   const char *root, __u16 port, char *err, size_t len)
{
	struct attachment_cfg cfg = {
		.egress = d->eg,
		.handle = t->handle,
		.netns_fd = nsfd,
		.root = root[0] ? root : NULL,
		.dns_port = port,
		.attribute_all = d->events != NULL || t->attribute_all,
		.on_dns_event = on_dns_event,
		.ctx = t,
		.on_log = t->inline_spec ? session_log : NULL,
		.name = t->label,
		.nameservers = t->ns_known ? t->nameservers : NULL,
		.hosts = t->hosts,
		.nss_bypass = t->nss_bypass,
	};
	int ret;

	ret = attachment_open(&cfg, p, &t->a, err, len);
	if (ret)
		return ret;
	t->netns_ino = netns_inode(nsfd);
	attachment_nameservers(t->a, t->nameservers, sizeof(t->nameservers));
	t->ns_known = true;
	if (!t->hosts) {
		const char *h = attachment_hosts(t->a, &t->nss_bypass);

		t->hosts = h ? strdup(h) : NULL;
	}
	pthread_mutex_lock(&d->ev_mu);
	t->ectx.policy = attachment_policy(t->a);
	t->ectx.learn = attachment_learn(t->a);
	pthread_mutex_unlock(&d->ev_mu);
	return 0;
}

static int att_open(struct daemon *d, struct att *t, const struct policy_entry *e, int nsfd,
		    const char *root, __u16 port, char *err, size_t len)
{
	char perr[POLICY_ERR_LEN];
	struct policy *p;
	int ret;

	ret = policies_parse(e, &p, perr);
	if (ret) {
		snprintf(err, len, "policy error: %s", perr);
		return ret;
	}
	ret = att_open_policy(d, t, p, nsfd, root, port, err, len);
	if (!ret)
		t->generation = e->generation;
	return ret;
}

static int watch_notify(struct daemon *d, struct att *t)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_KEY(EV_NOTIFY, t->handle) };

	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, attachment_notify_fd(t->a), &ev) ? -errno : 0;
}

static void att_free(struct daemon *d, struct att *t, bool detach)
{
	char pins[PATH_MAX + 32];

	/* The pump's writer no longer finds it (nor is using it now). */
	pthread_mutex_lock(&d->ev_mu);
	if (d->by_handle[t->handle] == t) {
		d->by_handle[t->handle] = NULL;
		d->n_atts--;
	}
	pthread_mutex_unlock(&d->ev_mu);
	if (t->a)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, attachment_notify_fd(t->a), NULL);
	attachment_free(t->a); /* stops its resolver: no event refers to t after */
	if (t->session) {
		session_end(t->session, egress_stat(d->eg, WEIR_STAT_LOST) - t->lost_base +
						session_dropped(t->session), detach);
		d->sessions_dropped += session_dropped(t->session);
		session_put(t->session);
	}
	json_object_put(t->inline_spec);
	json_object_put(t->holders);
	if (detach) {
		egress_detach_handle(d->eg, t->handle);
		att_pin_dir(d, t->cgid, pins, sizeof(pins));
		pin_dir_remove(pins);
		state_remove(d, t->cgid);
	}
	if (t->cgfd >= 0)
		close(t->cgfd);
	free(t->hosts);
	free(t);
}

static struct att *att_new(struct daemon *d, const char *cgpath, __u64 cgid, const char *label,
			   const char *policy)
{
	struct att *t = calloc(1, sizeof(*t));
	const char *base = strrchr(cgpath, '/');

	if (!t)
		return NULL;
	t->d = d;
	t->cgid = cgid;
	t->cgfd = -1;
	snprintf(t->cgpath, sizeof(t->cgpath), "%s", cgpath);
	snprintf(t->label, sizeof(t->label), "%s", label && *label ? label : base ? base + 1 : cgpath);
	snprintf(t->policy, sizeof(t->policy), "%s", policy);
	snprintf(t->state, sizeof(t->state), "ok");
	evrec_json_str(t->label_json, sizeof(t->label_json), t->label);
	t->ectx.cgroup_id = cgid;
	t->ectx.cgroup_path = rel_of(d, t->cgpath);
	t->ectx.memo = &t->memo;
	event_ctx_init_clock(&t->ectx);
	return t;
}

/*
 * A process moves between two cgroups by writing the cgroup.procs of their
 * common ancestor (cgroup_procs_write_permission): if any cgroup above the
 * target is delegated (its cgroup.procs owned or writable by another
 * user), that user's processes inside could move to a sibling, out of
 * enforcement. Attach at or above the delegated cgroup instead. The target
 * itself may be delegated: its own children stay below the attachment.
 */
static int check_delegation(struct daemon *d, const char *cgpath, char *err, size_t len)
{
	char dir[PATH_MAX], procs[PATH_MAX + 16];
	size_t root = strlen(d->cgmnt);
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", cgpath);
	while ((slash = strrchr(dir, '/')) && (size_t)(slash - dir) >= root) {
		*slash = '\0';
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		if (stat(procs, &st))
			continue;
		if (st.st_uid == 0 && !(st.st_mode & 0022))
			continue;
		snprintf(err, len,
			 "%s is delegated (its cgroup.procs belongs to uid %u or others may write "
			 "it): processes in %s could move out of enforcement; attach %s or a "
			 "cgroup above it instead",
			 dir, (unsigned int)st.st_uid, cgpath, dir);
		return -EPERM;
	}
	return 0;
}

static int check_target(struct daemon *d, const char *cgpath, char *err, size_t len)
{
	if (cgroup_within(d->own_cgroup, rel_of(d, cgpath))) {
		snprintf(err, len, "%s holds weir daemon itself: refusing to enforce on it",
			 cgpath);
		return -EINVAL;
	}
	return check_delegation(d, cgpath, err, len);
}

/* The new attachment, in order: policy in its slot, resolver bound, state
 * file, links (the storage they read is written last: until then the
 * cgroup is "no policy", which denies). */
static int attach_new(struct daemon *d, const struct attach_req *r, struct att *t,
		      const struct policy_entry *e, struct policy *p, char *err, size_t len)
{
	struct egress_attach_cfg ac;
	char root[PATH_MAX], pins[PATH_MAX + 32];
	int nsfd, ret;

	t->cgfd = open(t->cgpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->cgfd < 0) {
		ret = -errno;
		snprintf(err, len, "%s: %s", t->cgpath, strerror(-ret));
		policy_free(p);
		return ret;
	}
	ret = egress_handle_alloc(d->eg, &t->handle);
	if (ret) {
		snprintf(err, len, "no free attachment handle (%d at most)", MAX_HANDLES - 1);
		policy_free(p);
		return ret;
	}
	pthread_mutex_lock(&d->ev_mu);
	d->by_handle[t->handle] = t;
	d->n_atts++;
	pthread_mutex_unlock(&d->ev_mu);
	ret = pick_netns(t, r->netns, r->peer_pid, &nsfd, root, sizeof(root), err, len);
	if (ret) {
		policy_free(p);
		return ret;
	}
	/* weir run's cgroup is still empty: its resolver reads weir run's /etc */
	if (!root[0] && p && r->peer_pid > 0)
		snprintf(root, sizeof(root), "/proc/%d/root", r->peer_pid);
	/* A container at createRuntime has not made its root file system its
	 * root yet: /proc/PID/root is still the host's; the hook names it. */
	if (r->root && *r->root)
		snprintf(root, sizeof(root), "%s", r->root);
	if (r->nameservers && *r->nameservers) {
		snprintf(t->nameservers, sizeof(t->nameservers), "%s", r->nameservers);
		t->ns_known = true;
	}
	ret = e ? att_open(d, t, e, nsfd, root, 0, err, len) :
		  att_open_policy(d, t, p, nsfd, root, 0, err, len);
	if (nsfd >= 0)
		close(nsfd);
	if (ret)
		return ret;
	attachment_dns_cfg(t->a, &ac);
	t->dns_port = ac.dns_port;
	att_pin_dir(d, t->cgid, pins, sizeof(pins));
	ret = state_write(d, t);
	if (!ret && mkdir(pins, 0700) && errno != EEXIST)
		ret = -errno;
	if (ret) {
		snprintf(err, len, "cannot record the attachment: %s", strerror(-ret));
		return ret;
	}
	ret = egress_attach_handle(d->eg, t->handle, t->cgfd, &ac, pins);
	if (ret) {
		snprintf(err, len, "cannot attach to %s: %s", t->cgpath, strerror(-ret));
		return ret;
	}
	ret = attachment_start(t->a);
	ret = ret ?: watch_notify(d, t);
	if (ret)
		snprintf(err, len, "attached, but its resolver did not start: %s",
			 strerror(-ret));
	return ret;
}

/* Does an attachment use the policy NAME? */
static bool policy_used(void *ctx, const char *name)
{
	struct daemon *d = ctx;
	__u32 h;

	for (h = 1; h < MAX_HANDLES; h++)
		if (d->by_handle[h] && !strcmp(d->by_handle[h]->policy, name))
			return true;
	return false;
}

/* Has T enforced cgroups below it? */
static bool has_nested(struct daemon *d, const struct att *t)
{
	__u32 h;

	for (h = 1; h < MAX_HANDLES; h++)
		if (d->by_handle[h] && d->by_handle[h] != t &&
		    cgroup_within(d->by_handle[h]->cgpath, t->cgpath))
			return true;
	return false;
}

/*
 * PATH was attached or detached: the attachments at and above it are
 * OUTER (they leave a process to the nearest attachment above it) exactly
 * while an attachment lies below them. Attachments nest: a container's
 * own policy replaces a node's default, it is not combined with it.
 */
static void outer_update(struct daemon *d, const char *path)
{
	struct att *t;
	__u32 h;
	int ret;

	for (h = 1; h < MAX_HANDLES; h++) {
		t = d->by_handle[h];
		if (!t || !cgroup_within(path, t->cgpath))
			continue;
		ret = egress_set_outer(d->eg, t->handle, has_nested(d, t));
		if (ret)
			pr_warn("%s: cannot mark what is nested below it: %s (both policies judge "
				"its nested cgroups)\n", t->cgpath, strerror(-ret));
	}
}

/* Is ID among T's holders? Its index, or -1. */
static int holder_find(const struct att *t, const char *id)
{
	size_t i, n = t->holders ? json_object_array_length(t->holders) : 0;

	for (i = 0; i < n; i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(t->holders, i)), id))
			return (int)i;
	return -1;
}

/* A container trigger's fields: the root a directory, each nameserver an
 * address. 0 or -EINVAL and err. */
static int check_container_fields(const struct attach_req *r, char *err, size_t len)
{
	char *copy, *tok, *save = NULL;
	struct dns_upstream u;
	struct stat st;
	int ret = 0;

	if (r->root && *r->root && (r->root[0] != '/' || stat(r->root, &st) ||
				    !S_ISDIR(st.st_mode))) {
		snprintf(err, len, "root %s: not an absolute path to a directory", r->root);
		return -EINVAL;
	}
	if (!r->nameservers || !*r->nameservers)
		return 0;
	copy = strdup(r->nameservers);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, " ", &save); tok && !ret; tok = strtok_r(NULL, " ", &save)) {
		if (dns_parse_upstream(tok, &u)) {
			snprintf(err, len, "nameservers: '%.100s' is not an address (IP, IP:PORT, "
				 "[IPv6]:PORT)", tok);
			ret = -EINVAL;
		}
	}
	free(copy);
	return ret;
}

/*
 * The cgroup is attached: the same policy again is the same attachment
 * (0, existed), a container's bind adding its holder. Keyed by cgroup and
 * network namespace: a bind naming another namespace than the one its
 * resolver serves in would leave that one's port 53 unanswered: -EEXIST.
 */
static int attach_again(struct daemon *d, struct att *t, const struct attach_req *r,
			const struct policy_entry *e, struct attach_info *out, char *err,
			size_t len)
{
	int fd;

	if (strcmp(t->policy, e->name)) {
		snprintf(err, len, "%s is attached with policy %s already (detach it first)",
			 t->cgpath, t->policy);
		return -EEXIST;
	}
	if (r->netns && *r->netns && t->netns_ino) {
		fd = netns_open_path(r->netns); /* never a FIFO's open: nsfs only */
		if (fd < 0) {
			snprintf(err, len, "netns %s: %s", r->netns, fd == -EINVAL ?
				 "not a network namespace (/run/netns/NAME, /proc/PID/ns/net)" :
				 strerror(-fd));
			return fd;
		}
		if (netns_inode(fd) != t->netns_ino) {
			close(fd);
			snprintf(err, len, "%s is attached with another network namespace than %s "
				 "(its resolver serves in that one; detach it first)", t->cgpath,
				 r->netns);
			return -EEXIST;
		}
		close(fd);
	}
	/* Only what containers bound is theirs to release: an attachment made
	 * by hand stays until it is detached by hand. */
	if (r->holder && *r->holder && t->holders && holder_find(t, r->holder) < 0) {
		json_object_array_add(t->holders, json_object_new_string(r->holder));
		state_write(d, t);
		pr_info("%s (%s): held by %s too\n", t->cgpath, t->label, r->holder);
	}
	info_of(d, t, out);
	out->existed = true;
	return 0;
}

int daemon_attach(struct daemon *d, const struct attach_req *r, struct attach_info *out,
		  char *err, size_t len)
{
	char path[CGROUP_PATH_MAX];
	struct policy_entry *e;
	struct att *t;
	__u64 cgid;
	int ret;

	pthread_mutex_lock(&d->mu);
	ret = resolve_cgroup(d, r->cgroup, path, sizeof(path));
	if (ret) {
		snprintf(err, len, "no cgroup %s (below %s)", r->cgroup ?: "(none)", d->cgmnt);
		ret = -ENOENT;
		goto out;
	}
	ret = cgroup_id(path, &cgid);
	ret = ret ?: check_target(d, path, err, len);
	if (ret)
		goto out;
	if (r->peer_pid > 0 && peer_enforced(d, r->peer_pid)) {
		snprintf(err, len, "a process inside an enforced cgroup cannot attach");
		ret = -EPERM;
		goto out;
	}
	e = policies_get(d->ps, r->policy ?: "", err, len);
	if (!e) {
		policies_forget_failed(d->ps, r->policy ?: "", policy_used, d);
		ret = -EINVAL;
		goto out;
	}
	t = find_cgid(d, cgid);
	if (t) {
		ret = attach_again(d, t, r, e, out, err, len);
		goto out;
	}
	ret = check_container_fields(r, err, len);
	if (ret)
		goto out;
	t = att_new(d, path, cgid, r->label, e->name);
	if (t && r->holder && *r->holder) {
		t->holders = json_object_new_array();
		json_object_array_add(t->holders, json_object_new_string(r->holder));
	}
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	ret = attach_new(d, r, t, e, NULL, err, len);
	if (ret) {
		pr_warn("attach %s: %s\n", path, err);
		att_free(d, t, t->handle != 0);
		goto out;
	}
	att_state(t, e, NULL);
	info_of(d, t, out);
	outer_update(d, t->cgpath);
	pr_info("attached %s (%s): policy %s generation %u, DNS port %u\n", path, t->label,
		t->policy, t->generation, t->dns_port);
out:
	pthread_mutex_unlock(&d->mu);
	return ret;
}

int daemon_detach(struct daemon *d, const char *cgroup, char *err, size_t len)
{
	char path[CGROUP_PATH_MAX];
	struct att *t = NULL;
	__u64 cgid;

	pthread_mutex_lock(&d->mu);
	if (!resolve_cgroup(d, cgroup, path, sizeof(path)) && !cgroup_id(path, &cgid))
		t = find_cgid(d, cgid);
	if (!t && cgroup && cgroup[0] == '/') /* the cgroup is gone: by the path it had */
		t = find_path(d, cgroup);
	if (!t && cgroup) { /* ... or relative to the mount */
		snprintf(path, sizeof(path), "%.1000s/%.3000s", d->cgmnt, cgroup + (cgroup[0] == '/'));
		t = find_path(d, path);
	}
	if (!t) {
		snprintf(err, len, "%s is not attached", cgroup ?: "(none)");
		pthread_mutex_unlock(&d->mu);
		return -ENOENT;
	}
	pr_info("detached %s (%s)\n", t->cgpath, t->label);
	drain(d); /* its last events, before it goes */
	snprintf(path, sizeof(path), "%s", t->cgpath);
	att_free(d, t, true);
	outer_update(d, path);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

/* HOLDER leaves T: 1 when it held T (T is detached, and freed, if it was
 * the last), else 0. */
static int release_one(struct daemon *d, struct att *t, const char *holder,
		       daemon_release_fn fn, void *ctx)
{
	int i = holder_find(t, holder);
	char path[CGROUP_PATH_MAX];
	bool last;

	if (i < 0)
		return 0;
	json_object_array_del_idx(t->holders, i, 1);
	last = !json_object_array_length(t->holders);
	snprintf(path, sizeof(path), "%s", t->cgpath);
	if (last) {
		pr_info("detached %s (%s): its last holder %s let go\n", t->cgpath, t->label,
			holder);
		drain(d); /* its last events, before it goes */
		att_free(d, t, true);
		outer_update(d, path);
	} else {
		pr_info("%s (%s): %s let go, %zu still hold it\n", t->cgpath, t->label, holder,
			json_object_array_length(t->holders));
		state_write(d, t);
	}
	if (fn)
		fn(ctx, path, last);
	return 1;
}

int daemon_release(struct daemon *d, const char *holder, const char *cgroup,
		   daemon_release_fn fn, void *ctx, char *err, size_t len)
{
	char path[CGROUP_PATH_MAX];
	struct att *t = NULL;
	__u64 cgid;
	__u32 h;

	if (!holder || !*holder) {
		snprintf(err, len, "no holder to release");
		return -EINVAL;
	}
	pthread_mutex_lock(&d->mu);
	if (cgroup && *cgroup) {
		if (!resolve_cgroup(d, cgroup, path, sizeof(path)) && !cgroup_id(path, &cgid))
			t = find_cgid(d, cgid);
		if (!t && cgroup[0] == '/') /* the cgroup is gone: by the path it had */
			t = find_path(d, cgroup);
		if (!t) {
			snprintf(path, sizeof(path), "%.1000s/%.3000s", d->cgmnt,
				 cgroup + (cgroup[0] == '/'));
			t = find_path(d, path);
		}
		if (t && t->holders)
			release_one(d, t, holder, fn, ctx);
	} else {
		for (h = 1; h < MAX_HANDLES; h++)
			if (d->by_handle[h] && d->by_handle[h]->holders)
				release_one(d, d->by_handle[h], holder, fn, ctx);
	}
	pthread_mutex_unlock(&d->mu);
	return 0;
}

__u64 daemon_events_lost(struct daemon *d)
{
	__u64 n;
	__u32 h;

	pthread_mutex_lock(&d->mu);
	n = egress_stat(d->eg, WEIR_STAT_LOST) + d->sessions_dropped;
	for (h = 1; h < MAX_HANDLES; h++)
		if (d->by_handle[h] && d->by_handle[h]->session)
			n += session_dropped(d->by_handle[h]->session);
	pthread_mutex_unlock(&d->mu);
	return n;
}

size_t daemon_list(struct daemon *d, struct attach_info **out)
{
	size_t n = 0;
	__u32 h;

	pthread_mutex_lock(&d->mu);
	*out = calloc(d->n_atts ?: 1, sizeof(**out));
	for (h = 1; *out && h < MAX_HANDLES && n < d->n_atts; h++)
		if (d->by_handle[h])
			info_of(d, d->by_handle[h], &(*out)[n++]);
	pthread_mutex_unlock(&d->mu);
	return n;
}

/* --- policy reloads ------------------------------------------------------- */

static int adopt_serve(struct daemon *d, struct att *t, const struct policy_entry *e, char *err,
		       size_t len);

/* A policy file changed: every attachment using it takes the new version,
 * each atomically; one that cannot keeps the old and says why. */
static void on_policy_changed(void *ctx, struct policy_entry *e)
{
	struct daemon *d = ctx;
	char err[POLICIES_STATE_LEN], perr[POLICY_ERR_LEN];
	struct policy *p;
	struct att *t;
	__u32 h;
	int ret;

	d->reloads++;
	pr_info("policy %s: generation %u\n", e->name, e->generation);
	for (h = 1; h < MAX_HANDLES; h++) {
		t = d->by_handle[h];
		if (!t || t->inline_spec || strcmp(t->policy, e->name))
			continue;
		if (!t->a) { /* adopted while its file did not load: now it does */
			if (!adopt_serve(d, t, e, err, sizeof(err)))
				att_state(t, e, NULL);
			continue;
		}
		if (policies_parse(e, &p, perr)) {
			snprintf(t->state, sizeof(t->state), "policy error: %s", perr);
			continue;
		}
		/* It frees the policy t->ectx names: not while the writer
		 * formats with it. */
		pthread_mutex_lock(&d->ev_mu);
		ret = attachment_set_policy(t->a, p, err, sizeof(err));
		if (!ret) {
			t->ectx.policy = attachment_policy(t->a);
			memset(&t->memo, 0, sizeof(t->memo)); /* keyed by the old one's address */
		}
		pthread_mutex_unlock(&d->ev_mu);
		if (ret) {
			d->reload_errors++;
			pr_warn("%s: %s; generation %u stays in force\n", t->label, err,
				t->generation);
			snprintf(t->state, sizeof(t->state), "policy error: %.900s", err);
			continue;
		}
		t->generation = e->generation;
		att_state(t, e, NULL);
	}
}

/* Attachments follow their file's state (a bad file is reported on each). */
static void sync_states(struct daemon *d)
{
	struct policy_entry *e;
	struct att *t;
	size_t i;
	__u32 h;

	for (h = 1; h < MAX_HANDLES; h++) {
		t = d->by_handle[h];
		for (i = 0; t && !t->inline_spec && (e = policies_at(d->ps, i)); i++)
			if (!strcmp(t->policy, e->name) && t->generation == e->generation)
				att_state(t, e, NULL);
	}
}

static void rescan(struct daemon *d, bool inotify)
{
	if (inotify)
		policies_on_inotify(d->ps, on_policy_changed, d);
	else
		policies_scan(d->ps, on_policy_changed, d);
	sync_states(d);
}

int daemon_reload(struct daemon *d, char *report, size_t len)
{
	struct policy_entry *e;
	size_t i, off = 0;
	int n;

	pthread_mutex_lock(&d->mu);
	rescan(d, false);
	if (len)
		report[0] = '\0';
	for (i = 0; (e = policies_at(d->ps, i)) && off < len; i++) {
		n = snprintf(report + off, len - off, "%s\t%u\t%s\n", e->name, e->generation,
			     e->state[0] ? e->state : "ok");
		off += n > 0 ? (size_t)n : 0;
	}
	pthread_mutex_unlock(&d->mu);
	return 0;
}

/* --- metrics (docs/daemon.md, "Metrics") ----------------------------------- */

static void metric_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* NAME{[verdict="V",]policy="P",unit="LABEL"} VALUE */
static void metric_att(FILE *f, const char *name, const char *verdict, const struct att *t,
		       __u64 v)
{
	fprintf(f, "%s{", name);
	if (verdict)
		fprintf(f, "verdict=\"%s\",", verdict);
	fputs("policy=", f);
	metrics_label(f, t->policy);
	fputs(",unit=", f);
	metrics_label(f, t->label);
	fprintf(f, "} %llu\n", (unsigned long long)v);
}

static void metric_policy(FILE *f, const char *name, const struct policy_entry *e, __u64 v)
{
	fprintf(f, "%s{policy=", name);
	metrics_label(f, e->name);
	fprintf(f, "} %llu\n", (unsigned long long)v);
}

static void metrics_decisions(struct daemon *d, FILE *f)
{
	struct weir_counts c;
	struct att *t;
	__u32 h;

	metric_head(f, "weir_decisions_total", "counter",
		    "Connection decisions (connect, sendmsg, backstop), by verdict.");
	for (h = 1; h < MAX_HANDLES; h++) {
		if (!(t = d->by_handle[h]) || egress_counts(d->eg, h, &c))
			continue;
		metric_att(f, "weir_decisions_total", "allow", t, c.allow);
		metric_att(f, "weir_decisions_total", "deny", t, c.deny);
		metric_att(f, "weir_decisions_total", "would_deny", t, c.would_deny);
	}
	metric_head(f, "weir_budget_refused_total", "counter",
		    "Packets dropped, connects and sends refused past an upload_budget.");
	for (h = 1; h < MAX_HANDLES; h++)
		if ((t = d->by_handle[h]))
			metric_att(f, "weir_budget_refused_total", NULL, t, budget_refused(d, h));
}

static void metrics_dns(struct daemon *d, FILE *f)
{
	struct att *t;
	__u32 h;

	metric_head(f, "weir_dns_answers_total", "counter",
		    "Queries the attachment's resolver answered (allowed names).");
	for (h = 1; h < MAX_HANDLES; h++)
		if ((t = d->by_handle[h]))
			metric_att(f, "weir_dns_answers_total", NULL, t,
				   atomic_load(&t->dns[WEIR_V_ALLOW]) +
					   atomic_load(&t->dns[WEIR_V_WOULD_DENY]));
	metric_head(f, "weir_dns_refusals_total", "counter",
		    "Queries refused: a name the policy does not allow.");
	for (h = 1; h < MAX_HANDLES; h++)
		if ((t = d->by_handle[h]))
			metric_att(f, "weir_dns_refusals_total", NULL, t,
				   atomic_load(&t->dns[WEIR_V_DENY]));
	metrics_hist_print(f, "weir_dns_latency_seconds",
			   "Time from a query to its answer or refusal.", &d->dns_latency);
}

static void metrics_policies(struct daemon *d, FILE *f)
{
	struct policy_entry *e;
	size_t i;

	metric_head(f, "weir_policy_generation", "gauge", "The generation of each policy in force.");
	for (i = 0; (e = policies_at(d->ps, i)); i++)
		metric_policy(f, "weir_policy_generation", e, e->generation);
	metric_head(f, "weir_policy_ok", "gauge",
		    "1 when the policy's file loads, 0 when it does not (the previous "
		    "generation stays in force).");
	for (i = 0; (e = policies_at(d->ps, i)); i++)
		metric_policy(f, "weir_policy_ok", e, !strcmp(e->state, "ok"));
	metric_head(f, "weir_policy_load_errors_total", "counter",
		    "Versions of the policy's file that did not load.");
	for (i = 0; (e = policies_at(d->ps, i)); i++)
		metric_policy(f, "weir_policy_load_errors_total", e, e->load_errors);
}

static void metrics_maps(struct daemon *d, FILE *f)
{
	struct egress_map_fill m[16];
	size_t i, n = egress_map_fill(d->eg, m, 16);

	metric_head(f, "weir_map_entries", "gauge", "Entries in each BPF map attachments fill.");
	for (i = 0; i < n; i++)
		fprintf(f, "weir_map_entries{map=\"%s\"} %llu\n", m[i].map,
			(unsigned long long)m[i].entries);
	metric_head(f, "weir_map_capacity", "gauge", "The most entries each of those maps holds.");
	for (i = 0; i < n; i++)
		fprintf(f, "weir_map_capacity{map=\"%s\"} %llu\n", m[i].map,
			(unsigned long long)m[i].capacity);
}

void daemon_metrics(struct daemon *d, FILE *f)
{
	pthread_mutex_lock(&d->mu);
	metric_head(f, "weir_attachments", "gauge", "Cgroups the daemon enforces a policy on.");
	fprintf(f, "weir_attachments %zu\n", d->n_atts);
	metrics_decisions(d, f);
	metrics_dns(d, f);
	metric_head(f, "weir_events_lost_total", "counter",
		    "Events the ring buffer could not take (enforcement is unaffected).");
	fprintf(f, "weir_events_lost_total %llu\n",
		(unsigned long long)egress_stat(d->eg, WEIR_STAT_LOST));
	metrics_policies(d, f);
	pthread_mutex_unlock(&d->mu);
	/* Out of the lock: walking the tries' keys takes a while with many
	 * policies (a third of a second at 500), and attach, detach and ps
	 * must not wait for a scrape. The maps outlive every request. */
	metrics_maps(d, f);
}

static bool peer_enforced(struct daemon *d, pid_t pid)
{
	char rel[CGROUP_PATH_MAX];
	bool in = false;
	__u32 h;

	if (proc_cgroup(pid, rel, sizeof(rel)))
		return true; /* cannot tell: refuse */
	for (h = 1; !in && h < MAX_HANDLES; h++) {
		struct att *t = d->by_handle[h];

		in = t && cgroup_within(rel, rel_of(d, t->cgpath));
	}
	return in;
}

bool daemon_peer_enforced(struct daemon *d, pid_t pid)
{
	bool in;

	pthread_mutex_lock(&d->mu);
	in = peer_enforced(d, pid);
	pthread_mutex_unlock(&d->mu);
	return in;
}

/* --- adoption: a previous daemon's attachments ---------------------------- */

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static __u64 jnum(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

/* The netns the resolver was in: the path recorded, else a process in the
 * cgroup whose namespace has the recorded inode. -1: ours. */
static int adopt_netns(struct att *t, char *root, size_t len)
{
	pid_t pid = pid_to_view(t);
	int fd = -1;

	root[0] = '\0';
	if (pid)
		snprintf(root, len, "/proc/%d/root", pid);
	if (t->netns[0])
		fd = netns_open_path(t->netns);
	else if (pid)
		fd = netns_open_pid(pid);
	if (fd >= 0 && t->netns_ino && netns_inode(fd) != t->netns_ino) {
		close(fd);
		fd = -1;
	}
	if (fd < 0 && t->netns_ino && t->netns_ino != netns_inode(-1))
		pr_warn("%s: its network namespace is not found; its resolver serves from the "
			"daemon's\n", t->label);
	return fd < 0 ? -1 : fd;
}

/*
 * The resolver of an adopted attachment could not have its old port back
 * (taken while no weir held it, or one any user may bind: dns.c,
 * old_port_kept()): the cgroup's DNS is sent to the new one from now on.
 * Not done, the programs keep sending it to the old port, to whoever holds
 * it: the attachment says so in its state.
 */
static int adopt_move_port(struct daemon *d, struct att *t, char *err, size_t len)
{
	struct egress_attach_cfg ac;
	int ret;

	attachment_dns_cfg(t->a, &ac);
	if (!ac.dns_port || ac.dns_port == t->dns_port)
		return 0;
	ret = egress_set_dns(d->eg, t->handle, &ac);
	if (ret) {
		snprintf(err, len, "its resolver moved to port %u, but the cgroup's DNS still goes "
			 "to the old port %u: %s", ac.dns_port, t->dns_port, strerror(-ret));
		return ret;
	}
	pr_info("%s: DNS now goes to weir's resolver on port %u (was %u)\n", t->cgpath,
		ac.dns_port, t->dns_port);
	t->dns_port = ac.dns_port;
	return 0;
}

/* An adopted attachment takes its policy again and serves DNS on the port
 * its programs send queries to, in its namespace. On failure it stays
 * enforced by what the kernel holds, and says why in its state. */
static int adopt_serve(struct daemon *d, struct att *t, const struct policy_entry *e, char *err,
		       size_t len)
{
	char root[64];
	int nsfd, ret;

	nsfd = adopt_netns(t, root, sizeof(root));
	ret = att_open(d, t, e, nsfd, root, t->dns_port, err, len);
	if (nsfd >= 0)
		close(nsfd);
	ret = ret ?: attachment_start(t->a);
	ret = ret ?: adopt_move_port(d, t, err, len);
	ret = ret ?: watch_notify(d, t);
	if (ret) {
		snprintf(t->state, sizeof(t->state), "%.1000s", err);
		pr_warn("%s: adopted, still enforced, but: %s\n", t->cgpath, err);
		return ret;
	}
	state_write(d, t);
	return 0;
}

/* --- policies sent inline: weir run through the daemon --------------------- */

static json_object *inline_spec_new(const struct attach_inline *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	size_t i;

	json_object_object_add(o, "policy_yaml",
			       json_object_new_string_len(r->policy_yaml, (int)r->policy_len));
	json_object_object_add(o, "policy_source", json_object_new_string(r->policy_source));
	for (i = 0; i < r->n_allow; i++)
		json_object_array_add(a, json_object_new_string(r->allow[i]));
	json_object_object_add(o, "allow", a);
	json_object_object_add(o, "audit", json_object_new_boolean(r->audit));
	return o;
}

/* weir run's policy is its text alone: the daemon reads no file a caller
 * names in it (presets are built in), whatever it could say about them. */
static int no_file(void *ctx, const char *path, char **bufp, size_t *lenp,
		   char err[POLICY_ERR_LEN])
{
	snprintf(err, POLICY_ERR_LEN,
		 "a policy sent by weir run includes presets only (run it with --standalone)");
	return -EPERM;
}

/* The policy as weir run built it: its bytes, its --allow rules, --audit. */
static int inline_parse(json_object *spec, struct policy **out, char *err, size_t len)
{
	char perr[POLICY_ERR_LEN] = "";
	json_object *text = NULL, *allow = NULL, *audit = NULL;
	size_t i, n;
	int ret;

	*out = NULL;
	json_object_object_get_ex(spec, "policy_yaml", &text);
	json_object_object_get_ex(spec, "allow", &allow);
	json_object_object_get_ex(spec, "audit", &audit);
	ret = policy_load_tree(jstr(spec, "policy_source"), json_object_get_string(text),
			       json_object_get_string_len(text), no_file, NULL, NULL, out, perr);
	n = json_object_is_type(allow, json_type_array) ? json_object_array_length(allow) : 0;
	for (i = 0; !ret && i < n; i++)
		ret = policy_add_arg(*out, json_object_get_string(json_object_array_get_idx(allow, i)),
				     perr);
	if (!ret && json_object_get_boolean(audit))
		(*out)->mode = POLICY_AUDIT;
	if (ret) {
		snprintf(err, len, "policy error: %s", perr);
		policy_free(*out);
		*out = NULL;
	}
	return ret;
}

/* An adopted run: its policy again from the state file, its resolver back
 * on its port. Its session is gone with the daemon that had it. */
static int adopt_inline(struct daemon *d, struct att *t)
{
	char root[64], err[POLICIES_STATE_LEN];
	struct policy *p;
	int nsfd, ret;

	ret = inline_parse(t->inline_spec, &p, err, sizeof(err));
	if (!ret) {
		nsfd = adopt_netns(t, root, sizeof(root));
		ret = att_open_policy(d, t, p, nsfd, root, t->dns_port, err, sizeof(err));
		if (nsfd >= 0)
			close(nsfd);
	}
	ret = ret ?: attachment_start(t->a);
	ret = ret ?: adopt_move_port(d, t, err, sizeof(err));
	ret = ret ?: watch_notify(d, t);
	if (ret) {
		snprintf(t->state, sizeof(t->state), "%.1000s", err);
		pr_warn("%s: adopted, still enforced, but: %s\n", t->cgpath, err);
		return 0;
	}
	t->generation = 1;
	pr_info("adopted %s (%s): policy %s, DNS port %u\n", t->cgpath, t->label, t->policy,
		t->dns_port);
	return 0;
}

/* What daemon_attach checks of a target, for an inline one. */
static int inline_target(struct daemon *d, const struct attach_inline *r, char *path,
			 __u64 *cgid, char *err, size_t len)
{
	int ret = resolve_cgroup(d, r->cgroup, path, CGROUP_PATH_MAX);

	if (ret) {
		snprintf(err, len, "no cgroup %s (below %s)", r->cgroup ?: "(none)", d->cgmnt);
		return -ENOENT;
	}
	ret = cgroup_id(path, cgid);
	ret = ret ?: check_target(d, path, err, len);
	if (ret)
		return ret;
	if (r->peer_pid > 0 && peer_enforced(d, r->peer_pid)) {
		snprintf(err, len, "a process inside an enforced cgroup cannot attach");
		return -EPERM;
	}
	if (find_cgid(d, *cgid)) {
		snprintf(err, len, "%s is attached already", path);
		return -EEXIST;
	}
	return 0;
}

static int attach_inline_locked(struct daemon *d, const struct attach_inline *r,
				json_object *spec, struct policy *p, struct attach_info *out,
				char *err, size_t len)
{
	struct attach_req req = { .cgroup = r->cgroup, .label = r->label, .netns = r->netns,
				  .peer_pid = r->peer_pid, .peer_uid = r->peer_uid };
	char path[CGROUP_PATH_MAX], name[256];
	struct att *t;
	__u64 cgid;
	size_t i;
	int ret;

	ret = inline_target(d, r, path, &cgid, err, len);
	snprintf(name, sizeof(name), "inline:%.240s", p->name ?: p->source);
	t = ret ? NULL : att_new(d, path, cgid, r->label, name);
	if (!t) {
		policy_free(p);
		json_object_put(spec);
		return ret ?: -ENOMEM;
	}
	t->inline_spec = spec;
	t->attribute_all = r->attribute_all;
	t->generation = 1;
	t->lost_base = egress_stat(d->eg, WEIR_STAT_LOST);
	t->session = r->session ? session_new() : NULL;
	ret = attach_new(d, &req, t, NULL, p, err, len);
	for (i = 0; !ret && i < r->n_passed; i++) {
		ret = egress_pass_cookie(d->eg, t->handle, r->passed[i]);
		if (ret)
			snprintf(err, len, "cannot pass on socket %llu: %s",
				 (unsigned long long)r->passed[i], strerror(-ret));
	}
	if (ret) {
		pr_warn("attach %s: %s\n", path, err);
		att_free(d, t, t->handle != 0);
		return ret;
	}
	info_of(d, t, out);
	pr_info("attached %s (%s): policy %s, DNS port %u%s\n", path, t->label, t->policy,
		t->dns_port, t->session ? ", a session" : "");
	return 0;
}

int daemon_attach_inline(struct daemon *d, const struct attach_inline *r,
			 struct attach_info *out, char *err, size_t len)
{
	json_object *spec = inline_spec_new(r);
	struct policy *p;
	int ret;

	ret = inline_parse(spec, &p, err, len); /* before the lock: it may be slow */
	if (ret) {
		json_object_put(spec);
		return -EINVAL;
	}
	pthread_mutex_lock(&d->mu);
	ret = attach_inline_locked(d, r, spec, p, out, err, len);
	pthread_mutex_unlock(&d->mu);
	return ret;
}

struct session *daemon_session(struct daemon *d, __u64 cgroup_id)
{
	struct session *s = NULL;
	struct att *t;

	pthread_mutex_lock(&d->mu);
	t = find_cgid(d, cgroup_id);
	if (t && t->session)
		s = session_get(t->session);
	pthread_mutex_unlock(&d->mu);
	return s;
}

/* A run's cgroup is gone (weir run was killed, then weir cleanup removed
 * it), or a container's (its runtime removed it; the poststop hook that
 * releases it may come later, or never: a runtime killed): nothing is left
 * to enforce on. A cgroup is removed only once empty. An attachment made
 * by hand stays until detached: it is the operator's to end. */
static void reap_inline(struct daemon *d)
{
	char path[CGROUP_PATH_MAX];
	struct att *t;
	__u64 now;
	__u32 h;

	for (h = 1; h < MAX_HANDLES; h++) {
		t = d->by_handle[h];
		if (!t || !(t->inline_spec || t->holders) ||
		    (!cgroup_id(t->cgpath, &now) && now == t->cgid))
			continue;
		pr_info("%s (%s) is gone: detached\n", t->cgpath, t->label);
		drain(d);
		snprintf(path, sizeof(path), "%s", t->cgpath);
		att_free(d, t, true);
		outer_update(d, path);
	}
}

/* Pins and a state file: take the links over (nothing detaches), then
 * write the policy again and serve DNS on the same port. */
static int adopt_one(struct daemon *d, struct att *t)
{
	char pins[PATH_MAX + 32], err[POLICIES_STATE_LEN];
	struct egress_attach_cfg ac;
	struct policy_entry *e;
	int ret;

	att_pin_dir(d, t->cgid, pins, sizeof(pins));
	ret = egress_adopt(d->eg, t->cgfd, pins, &t->handle, &ac);
	if (ret) {
		pr_warn("%s: cannot adopt its pinned links: %s\n", t->cgpath, strerror(-ret));
		return ret;
	}
	pthread_mutex_lock(&d->ev_mu);
	d->by_handle[t->handle] = t;
	d->n_atts++;
	pthread_mutex_unlock(&d->ev_mu);
	t->dns_port = ac.dns_port;
	if (t->inline_spec)
		return adopt_inline(d, t);
	e = policies_get(d->ps, t->policy, err, sizeof(err));
	if (!e) {
		/* The kernel keeps the old policy in its slot: still enforced. */
		snprintf(t->state, sizeof(t->state), "policy error: %.900s; the policy of the "
			 "previous daemon stays in force", err);
		pr_warn("%s: %s\n", t->cgpath, t->state);
		return 0;
	}
	if (adopt_serve(d, t, e, err, sizeof(err)))
		return 0;
	att_state(t, e, NULL);
	pr_info("adopted %s (%s): policy %s generation %u, DNS port %u\n", t->cgpath, t->label,
		t->policy, t->generation, t->dns_port);
	return 0;
}

static void adopt_file(struct daemon *d, const char *file)
{
	struct json_object *o = json_object_from_file(file), *v;
	char pins[PATH_MAX + 32];
	struct att *t;
	__u64 cgid, now;

	if (!o)
		return;
	cgid = jnum(o, "cgroup_id");
	t = att_new(d, jstr(o, "cgroup"), cgid, jstr(o, "label"), jstr(o, "policy"));
	if (t)
		snprintf(t->netns, sizeof(t->netns), "%s", jstr(o, "netns"));
	if (t)
		t->netns_ino = jnum(o, "netns_inode");
	if (t)
		t->handle = jnum(o, "handle"); /* for a gone cgroup; else adopt's */
	if (t && json_object_object_get_ex(o, "nameservers", NULL)) {
		snprintf(t->nameservers, sizeof(t->nameservers), "%s", jstr(o, "nameservers"));
		t->ns_known = true;
	}
	if (t && json_object_object_get_ex(o, "inline", &v))
		t->inline_spec = json_object_get(v);
	if (t && json_object_object_get_ex(o, "holders", &v) &&
	    json_object_is_type(v, json_type_array))
		t->holders = json_object_get(v);
	if (t && json_object_object_get_ex(o, "hosts", NULL)) {
		t->hosts = strdup(jstr(o, "hosts"));
		t->nss_bypass = jnum(o, "nss_bypass");
	}
	json_object_put(o);
	if (!t)
		return;
	att_pin_dir(d, cgid, pins, sizeof(pins));
	t->cgfd = open(t->cgpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->cgfd < 0 || cgroup_id(t->cgpath, &now) || now != cgid) {
		/* The cgroup is gone (or another took its name): nothing left
		 * to enforce on. */
		pr_info("%s is gone: removing its pins\n", t->cgpath);
		if (t->handle)
			egress_detach_handle(d->eg, t->handle);
		pin_dir_remove(pins);
		unlink(file);
		att_free(d, t, false);
		return;
	}
	if (access(pins, F_OK) || adopt_one(d, t)) {
		if (!access(pins, F_OK))
			pr_warn("%s: left as it is (pinned, enforced by the previous daemon's "
				"policy)\n", t->cgpath);
		else
			unlink(file); /* never attached (died before the links) */
		att_free(d, t, false);
	}
}

static void adopt_all(struct daemon *d)
{
	char path[PATH_MAX * 2];
	struct dirent *de;
	DIR *dir = opendir(d->state_dir);
	size_t n;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		n = strlen(de->d_name);
		if (strncmp(de->d_name, "att-", 4) || n < sizeof(STATE_SUFFIX) ||
		    strcmp(de->d_name + n - strlen(STATE_SUFFIX), STATE_SUFFIX))
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->state_dir, de->d_name);
		adopt_file(d, path);
	}
	closedir(dir);
	for (n = 1; n < MAX_HANDLES; n++)
		if (d->by_handle[n])
			outer_update(d, d->by_handle[n]->cgpath);
}

/* --- life ---------------------------------------------------------------- */

/* One daemon per state dir and per pin root: flock held for our life.
 * weir cleanup takes the pin root's lock to know no daemon owns it. */
static int lock_dir(const char *dir, int *fd)
{
	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (flock(*fd, LOCK_EX | LOCK_NB))
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

static int mkdirs(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	char *s;

	snprintf(p, sizeof(p), "%s", path);
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, mode) && errno != EEXIST ? -errno : 0;
}

static int open_dirs(struct daemon *d)
{
	struct statfs sfs;
	char err[512];
	int ret;

	ret = mkdirs(d->state_dir, 0700);
	if (ret) {
		pr_warn("cannot make the state dir %s: %s\n", d->state_dir, strerror(-ret));
		return ret;
	}
	/* Its files say what a restarted daemon adopts (policy, nameservers,
	 * hosts): another user able to change them would choose them. */
	ret = policies_dir_private(d->state_dir, err, sizeof(err));
	if (ret) {
		pr_warn("state dir: %s\n", err);
		return ret;
	}
	ret = mkdirs(d->pin_root, 0700);
	if (ret) {
		pr_warn("cannot make the pin root %s: %s (it must be on a bpf file system)\n",
			d->pin_root, strerror(-ret));
		return ret;
	}
	/* libbpf's own words for this are "failed to create: Invalid argument". */
	if (statfs(d->pin_root, &sfs) == 0 && sfs.f_type != BPF_FS_MAGIC) {
		pr_warn("--pin-root %s is not on a bpf file system (use a directory below "
			"/sys/fs/bpf, or mount -t bpf bpf DIR)\n", d->pin_root);
		return -EINVAL;
	}
	ret = lock_dir(d->state_dir, &d->state_lock);
	if (ret == -EBUSY)
		pr_warn("another weir daemon owns the state dir %s\n", d->state_dir);
	else if (ret)
		pr_warn("cannot lock %s: %s\n", d->state_dir, strerror(-ret));
	if (ret)
		return ret;
	ret = lock_dir(d->pin_root, &d->pin_lock);
	if (ret == -EBUSY)
		pr_warn("another weir daemon owns the pin root %s\n", d->pin_root);
	else if (ret)
		pr_warn("cannot lock %s: %s\n", d->pin_root, strerror(-ret));
	return ret;
}

/*
 * An empty cgroup of this daemon's, <cgroup2>/weir/keys-PID, holds one of
 * each program (egress_hold_keys) so that attaching and detaching a run
 * does not patch the kernel's code each time. Its lock (cgroup_create) says
 * the daemon lives; one nobody holds is a dead daemon's, removed here. Only
 * a cost: without it the runs are enforced the same.
 */
static void remove_stale_keys(const struct daemon *d)
{
	char dir[CGROUP_PATH_MAX + 8], path[2 * CGROUP_PATH_MAX + 16];
	struct dirent *de;
	DIR *dd;
	int fd;

	snprintf(dir, sizeof(dir), "%s/weir", d->cgmnt);
	dd = opendir(dir);
	if (!dd)
		return;
	while ((de = readdir(dd))) {
		if (strncmp(de->d_name, "keys-", 5))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!flock(fd, LOCK_EX | LOCK_NB))
			rmdir(path); /* fails if anything is in it */
		close(fd);
	}
	closedir(dd);
}

static void hold_keys(struct daemon *d)
{
	char name[32];
	int ret;

	if (!d->cgmnt[0])
		return;
	remove_stale_keys(d);
	snprintf(name, sizeof(name), "keys-%d", getpid());
	d->keys_fd = cgroup_create(d->cgmnt, name, d->keys_path, sizeof(d->keys_path));
	ret = d->keys_fd < 0 ? d->keys_fd : egress_hold_keys(d->eg, d->keys_fd);
	if (ret)
		pr_debug("cannot hold the programs on %s: %s (attaching and detaching "
			 "cost more)\n",
			 d->keys_path, strerror(-ret));
}

/* After egress_close/destroy: the links are gone. */
static void drop_keys(struct daemon *d)
{
	if (d->keys_fd < 0)
		return;
	rmdir(d->keys_path);
	close(d->keys_fd);
}

/*
 * The BPF LSM programs serve every attachment: pinned in PIN_ROOT/lsm, they
 * stay with the attachments when the daemon stops or dies, and the next
 * daemon's replace them (egress_pin_lsm); --detach-on-exit unpins them with
 * the rest, weir cleanup removes them. Unpinned, they are still attached
 * while this daemon lives: said, not fatal.
 */
static void pin_lsm(struct daemon *d)
{
	char dir[PATH_MAX + 8];
	int ret;

	if (!egress_lsm_on(d->eg))
		return;
	snprintf(dir, sizeof(dir), "%s/lsm", d->pin_root);
	ret = mkdirs(dir, 0700);
	ret = ret ?: egress_pin_lsm(d->eg, dir);
	if (ret)
		pr_warn("cannot pin the BPF LSM links in %s: %s; a restart will pause the "
			"refusal of sockets made outside\n", dir, strerror(-ret));
}

static int open_egress(struct daemon *d)
{
	struct egress_opts eo = {
		/* A cap, not an allocation (the tries allocate per entry): room for
		 * the policies in force and a reload of a 1M-prefix one beside
		 * them (docs/policy.md, "Big lists"). */
		.lpm_entries = 1 << 24,
		.portsets = 1 << 16,
		.slots = 2 * MAX_HANDLES + 2, /* each policy in force, and the next */
		.handles = MAX_HANDLES,
		.ringbuf_bytes = 16 << 20,
		.task_info = -1,
		.pin_root = d->pin_root,
	};
	char why[256];
	int ret;

	ret = egress_supported(why, sizeof(why));
	if (ret) {
		pr_warn("%s\n", why);
		return ret;
	}
	ret = egress_open(&eo, &d->eg);
	if (ret) {
		pr_warn("cannot load the BPF programs (pinned in %s): %s\n", d->pin_root,
			strerror(-ret));
		return ret;
	}
	pin_lsm(d);
	hold_keys(d);
	return 0;
}

/*
 * The reader thread: the ring buffer's records into the pump, at once when
 * the kernel wakes it (past a quarter full), else every POLL_MS. It copies
 * only, and takes no d->mu: however long a burst, the API still answers.
 */
static void *reader_main(void *arg)
{
	struct daemon *d = arg;
	struct epoll_event evs[2];
	int epfd = epoll_create1(EPOLL_CLOEXEC), n;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 1 };
	bool stop = false;

	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(d->rb), &ev)) {
		pr_warn("the event reader: %s; events are read every %d ms only\n",
			strerror(errno), POLL_MS);
	} else {
		ev.data.u32 = 2;
		epoll_ctl(epfd, EPOLL_CTL_ADD, d->reader_stop, &ev);
	}
	while (!stop) {
		n = epfd >= 0 ? epoll_wait(epfd, evs, 2, POLL_MS) : 0;
		if (epfd < 0)
			usleep(POLL_MS * 1000);
		while (n-- > 0)
			stop |= evs[n].data.u32 == 2;
		pthread_mutex_lock(&d->rb_mu);
		ring_buffer__consume(d->rb);
		pump_commit(d->pump);
		pthread_mutex_unlock(&d->rb_mu);
	}
	if (epfd >= 0)
		close(epfd);
	return NULL;
}

/* After open_loop(): the threads inherit its blocked signals, which only
 * the main loop's signalfd reads. */
static int start_reader(struct daemon *d)
{
	int ret;

	ret = pump_new(on_record, on_idle, d, PUMP_BYTES, &d->pump);
	if (ret) {
		pr_warn("cannot start the event writer thread: %s\n", strerror(-ret));
		return ret;
	}
	d->rb = ring_buffer__new(egress_events_fd(d->eg), pump_add, d->pump, NULL);
	if (!d->rb) {
		ret = -errno;
		pr_warn("cannot open the event ring buffer: %s\n", strerror(-ret));
		return ret;
	}
	d->reader_stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->reader_stop < 0)
		return -errno;
	ret = pthread_create(&d->reader, NULL, reader_main, d);
	if (ret) {
		pr_warn("cannot start the event reader thread: %s\n", strerror(ret));
		return -ret;
	}
	d->reader_on = true;
	return 0;
}

static void stop_reader(struct daemon *d)
{
	__u64 one = 1;

	if (d->reader_on) {
		if (write(d->reader_stop, &one, sizeof(one)) < 0)
			pr_warn("cannot stop the event reader: %s\n", strerror(errno));
		pthread_join(d->reader, NULL);
		d->reader_on = false;
	}
}

static int open_loop(struct daemon *d)
{
	struct itimerspec its = { .it_interval = { 0, POLL_MS * 1000000 },
				  .it_value = { 0, POLL_MS * 1000000 } };
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;
	int ret = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN); /* an events reader gone must not kill us */
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->sigfd < 0 || d->epfd < 0 || d->timerfd < 0 ||
	    timerfd_settime(d->timerfd, 0, &its, NULL))
		return -errno;
	ev.data.u64 = EV_KEY(EV_SIGNAL, 0);
	ret = epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ev);
	ev.data.u64 = EV_KEY(EV_TIMER, 0);
	ret = ret ?: epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->timerfd, &ev);
	if (!ret && policies_inotify_fd(d->ps) >= 0) {
		ev.data.u64 = EV_KEY(EV_INOTIFY, 0);
		ret = epoll_ctl(d->epfd, EPOLL_CTL_ADD, policies_inotify_fd(d->ps), &ev);
	}
	return ret ? -errno : 0;
}

static void set_path(char *dst, size_t len, const char *val, const char *def)
{
	snprintf(dst, len, "%s", val && *val ? val : def);
}

int daemon_open(const struct daemon_opts *o, struct daemon **out)
{
	struct daemon *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	d->o = *o;
	d->sigfd = d->epfd = d->timerfd = d->state_lock = d->pin_lock = d->reader_stop = -1;
	d->keys_fd = -1;
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_init(&d->out_mu, NULL);
	pthread_mutex_init(&d->ev_mu, NULL);
	pthread_mutex_init(&d->rb_mu, NULL);
	set_path(d->policy_dir, sizeof(d->policy_dir), o->policy_dir, DAEMON_POLICY_DIR);
	set_path(d->state_dir, sizeof(d->state_dir), o->state_dir, DAEMON_STATE_DIR);
	set_path(d->pin_root, sizeof(d->pin_root), o->pin_root, DAEMON_PIN_ROOT);
	ret = cgroup_mount_v2(d->cgmnt, sizeof(d->cgmnt));
	if (ret)
		pr_warn("no cgroup v2 hierarchy is mounted: %s\n", strerror(-ret));
	ret = ret ?: proc_cgroup(getpid(), d->own_cgroup, sizeof(d->own_cgroup));
	ret = ret ?: open_dirs(d);
	ret = ret ?: open_events(d);
	ret = ret ?: policies_open(d->policy_dir, &d->ps);
	if (!ret)
		policies_scan(d->ps, NULL, NULL);
	ret = ret ?: open_egress(d);
	ret = ret ?: open_loop(d);
	ret = ret ?: start_reader(d);
	if (ret) {
		daemon_free(d);
		return ret;
	}
	adopt_all(d);
	*out = d;
	return 0;
}

static volatile sig_atomic_t stopping;

static void on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		pr_info("signal %d: stopping (attachments %s)\n", si.ssi_signo,
			d->o.detach_on_exit ? "detached: --detach-on-exit" : "stay enforced");
		stopping = 1;
	}
}

static void on_notify(struct daemon *d, __u32 h)
{
	if (h < MAX_HANDLES && d->by_handle[h] && d->by_handle[h]->a)
		attachment_refresh(d->by_handle[h]->a);
}

int daemon_run(struct daemon *d)
{
	struct epoll_event evs[16];
	__u64 ticks;
	int i, n;

	while (!stopping) {
		n = epoll_wait(d->epfd, evs, 16, -1);
		if (n < 0 && errno != EINTR)
			return -errno;
		pthread_mutex_lock(&d->mu);
		for (i = 0; i < n; i++) {
			__u32 kind = evs[i].data.u64 >> 32, h = (__u32)evs[i].data.u64;

			if (kind == EV_SIGNAL)
				on_signal(d);
			else if (kind == EV_INOTIFY)
				rescan(d, true);
			else if (kind == EV_TIMER && read(d->timerfd, &ticks, sizeof(ticks)) < 0)
				continue;
			else if (kind == EV_NOTIFY)
				on_notify(d, h);
		}
		reap_inline(d);
		pthread_mutex_unlock(&d->mu);
	}
	return 0;
}

/* Attachments stay enforced (their links and maps are pinned) unless the
 * daemon was told to detach them: a stopped daemon must not open the
 * cgroups it guarded; the next one adopts them. */
void daemon_free(struct daemon *d)
{
	/* --detach-on-exit answers a stop asked by a signal only: a daemon
	 * leaving on an error (a restart that adopted the pins, then could
	 * not start its API) keeps every attachment enforced. */
	bool detach;
	__u32 h;

	if (!d)
		return;
	detach = d->o.detach_on_exit && stopping;
	stop_reader(d);
	pthread_mutex_lock(&d->mu);
	drain(d);
	for (h = 1; h < MAX_HANDLES; h++)
		if (d->by_handle[h])
			att_free(d, d->by_handle[h], detach);
	pthread_mutex_unlock(&d->mu);
	pump_free(d->pump); /* (nothing is left: drained, every attachment gone) */
	ring_buffer__free(d->rb);
	if (d->reader_stop >= 0)
		close(d->reader_stop);
	if (detach) {
		char lsm[PATH_MAX + 8];

		egress_destroy(d->eg); /* the LSM links unpinned too */
		snprintf(lsm, sizeof(lsm), "%s/lsm", d->pin_root);
		rmdir(lsm);
	} else {
		egress_close(d->eg); /* the pinned links and maps stay */
	}
	drop_keys(d);
	policies_free(d->ps);
	if (d->events && d->events != stdout)
		fclose(d->events);
	else if (d->events)
		fflush(d->events);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->timerfd >= 0)
		close(d->timerfd);
	if (d->state_lock >= 0)
		close(d->state_lock);
	if (d->pin_lock >= 0)
		close(d->pin_lock);
	free(d);
}

/* --- weir cleanup: pins no daemon owns ------------------------------------ */

/* Unlink every pin in DIRFD/NAME (no symlink followed), then the directory. */
static int remove_pin_subdir(int dirfd, const char *name)
{
	struct dirent *de;
	int fd, ret = 0;
	DIR *d;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && unlinkat(fd, de->d_name, 0))
			ret = -errno;
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR))
		ret = ret ?: -errno;
	return ret;
}

int daemon_cleanup_pins(const char *pin_root, int *removed)
{
	struct statfs sf;
	struct dirent *de;
	int fd, ret = 0;
	DIR *d;

	*removed = 0;
	fd = open(pin_root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstatfs(fd, &sf) || sf.f_type != BPF_FS_MAGIC) {
		close(fd);
		return -ENOTDIR; /* not a bpf file system: not ours to empty */
	}
	/* The daemon's lock: held as long as it lives, however it dies. */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return ret;
	}
	d = fdopendir(dup(fd));
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "att-", 4) && strcmp(de->d_name, "maps") &&
		    strcmp(de->d_name, "lsm"))
			continue;
		int r = remove_pin_subdir(fd, de->d_name);

		if (r)
			ret = r;
		else if (de->d_name[0] == 'a')
			(*removed)++;
	}
	if (d)
		closedir(d);
	rmdir(pin_root); /* if nothing else is in it */
	close(fd);
	return ret;
}
