// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir run through the daemon (docs/run.md, "Through the daemon"). weir run
 * keeps everything about the command: options, the policy and its errors,
 * identity, environment, sandbox, its cgroup and that cgroup's lock,
 * signals, exit codes, the -e stream, the summary. The daemon does the
 * kernel side with its programs loaded once: it attaches the policy weir
 * run sends (its bytes, --allow, --audit), serves the resolver in weir
 * run's network namespace, and sends back, as a session of JSON records,
 * what standalone weir run would print: each decision (its bytes, its JSON
 * line, its human line), each query, the resolver's notes, and at the end
 * the events lost.
 *
 * The order keeps the command enforced from its first instruction to its
 * last: the cgroup is attached before the command is born in it, and
 * detached only once it is empty. If weir run dies, the attachment stays
 * until the cgroup is gone; if the daemon dies, its pins keep enforcing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "client.h"
#include "egress.h"
#include "evrec.h"
#include "fds.h"
#include "log.h"
#include "policy.h"
#include "run.h"
#include "runs.h"

/* --- which mode ------------------------------------------------------------ */

/* Included files other than presets (the daemon has its own presets). */
static bool includes_files(const struct policy *p)
{
	size_t i;

	for (i = 0; i < p->n_files; i++)
		if (strncmp(p->files[i], "preset:", 7))
			return true;
	return false;
}

int run_pick_mode(struct run *r)
{
	const char *env = getenv(CLIENT_SOCKET_ENV);
	bool named = r->o.socket || (env && *env);
	char err[CLIENT_ERR_LEN];
	int ret;

	if (r->o.standalone) {
		pr_debug("standalone (--standalone)\n");
		return 0;
	}
	/* A daemon is sent the policy's text and reads no file for it. */
	if (includes_files(r->policy)) {
		if (!named) {
			pr_debug("standalone: the policy includes files\n");
			return 0;
		}
		pr_warn("%s includes files: a daemon reads no file for weir run's policy "
			"(presets only); run it with --standalone\n", r->policy->source);
		return -EINVAL;
	}
	r->sock = client_socket(r->o.socket);
	if (!named && access(r->sock, F_OK)) {
		pr_debug("standalone: no daemon's socket at %s\n", r->sock);
		return 0;
	}
	/* Somebody listens: the attach request says whether it is a daemon. */
	ret = client_probe(r->sock, err, sizeof(err));
	if (!ret) {
		r->daemon = true;
		pr_debug("through the daemon on %s\n", r->sock);
	} else if (named) {
		pr_warn("%s (the socket comes from %s)\n", err,
			r->o.socket ? "--socket" : "$" CLIENT_SOCKET_ENV);
	} else {
		pr_debug("standalone: %s\n", err);
		ret = 0;
	}
	return ret;
}

/* --- the session's records ------------------------------------------------- */

static const char *rec_str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static __s64 rec_int(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* A decision, as standalone's on_event() prints it; under out_mu. */
static void decision(struct run *r, const struct weir_event *e, const char *domain,
		     const char *json, size_t json_len, const char *human)
{
	summary_add_domain(r->summary, r->policy, e, domain);
	if (r->events && json) {
		fwrite(json, 1, json_len, r->events);
		fputc('\n', r->events);
	}
	if (!r->o.quiet && human)
		log_msg(event_sent_nothing(e) ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, "%s\n", human);
}

/* The same from json-c's reading of the line. */
static void on_decision(struct run *r, json_object *rec)
{
	const char *json = rec_str(rec, "json"), *hex = rec_str(rec, "raw");
	struct weir_event e;
	unsigned int x;
	size_t i;

	if (!hex || strlen(hex) != 2 * sizeof(e))
		return;
	for (i = 0; i < sizeof(e); i++) {
		if (sscanf(hex + 2 * i, "%2x", &x) != 1)
			return;
		((unsigned char *)&e)[i] = x;
	}
	decision(r, &e, rec_str(rec, "domain"), json, json ? strlen(json) : 0,
		 rec_str(rec, "human"));
}

/* The fast path of a burst: a decision as the daemon writes it, read
 * without json-c (user/events/evrec.h); any other line goes to json-c. */
static int on_line(void *ctx, const char *line, size_t n)
{
	struct run *r = ctx;
	struct evrec rec;

	if (!evrec_decode(line, n, &rec))
		return 0;
	pthread_mutex_lock(&r->out_mu);
	decision(r, &rec.e, rec.has_domain ? rec.domain : NULL, rec.has_json ? rec.json : NULL,
		 rec.json_len, rec.has_human ? rec.human : NULL);
	pthread_mutex_unlock(&r->out_mu);
	return 1;
}

/* A query to the resolver, as standalone's on_dns_event() prints it. */
static void on_query(struct run *r, json_object *rec)
{
	const char *json = rec_str(rec, "json"), *human = rec_str(rec, "human");
	struct dns_event e = { .verdict = rec_int(rec, "verdict") };
	json_object *v;

	e.upstream_failed = json_object_object_get_ex(rec, "upstream_failed", &v) &&
			    json_object_get_boolean(v);
	summary_add_dns(r->summary, &e);
	if (r->events && json) {
		fprintf(r->events, "%s\n", json);
		fflush(r->events);
	}
	if (!r->o.quiet && human)
		fprintf(stderr, "weir: %s\n", human);
}

static void on_end(struct run *r, json_object *rec)
{
	json_object *v;

	r->rx_end = true;
	r->rx_lost = rec_int(rec, "lost");
	if (json_object_object_get_ex(rec, "detached", &v) && !json_object_get_boolean(v))
		pr_warn("the daemon on %s stopped: %s stays enforced (its programs are pinned), "
			"but what it does is no longer shown\n", r->sock, r->o.argv[0]);
}

static int on_record(void *ctx, json_object *rec)
{
	struct run *r = ctx;
	const char *t = rec_str(rec, "t");

	if (!t)
		return 0;
	if (!strcmp(t, "log")) { /* the log takes its own lock */
		log_msg(rec_int(rec, "level"), "%s\n", rec_str(rec, "msg") ?: "");
		return 0;
	}
	pthread_mutex_lock(&r->out_mu);
	if (!strcmp(t, "event"))
		on_decision(r, rec);
	else if (!strcmp(t, "dns"))
		on_query(r, rec);
	else if (!strcmp(t, "end"))
		on_end(r, rec);
	pthread_mutex_unlock(&r->out_mu);
	return 0;
}

static void *rx_main(void *arg)
{
	struct run *r = arg;
	char path[96], err[CLIENT_ERR_LEN];
	int ret;

	snprintf(path, sizeof(path), "/v1/attachments/%llu/events",
		 (unsigned long long)r->ectx.cgroup_id);
	ret = client_stream_lines(r->sock, path, on_line, on_record, r, &r->rx_stop, err,
				  sizeof(err));
	if (ret && ret != -ECANCELED && ret != -ECONNRESET)
		pr_warn("the daemon's records of %s: %s\n", r->cgpath, err);
	else if (ret != -ECANCELED && !r->rx_end && !r->rx_stop)
		pr_warn("the daemon on %s went away: %s stays enforced (its programs are pinned; "
			"DNS fails until a daemon adopts it), but what it does is no longer "
			"shown\n", r->sock, r->o.argv[0]);
	return NULL;
}

/* --- attach and detach ----------------------------------------------------- */

/*
 * The inet sockets the user passes on (--pass-fd; stdio with
 * --allow-socket-stdio), by cookie: the daemon's BPF LSM lets them through
 * for this cgroup, as a standalone run's does (pass_sockets in run.c).
 */
static json_object *passed_cookies(const struct run *r)
{
	json_object *a = json_object_new_array();
	char desc[128], num[24];
	socklen_t len;
	__u64 cookie;
	int i, fd;

	for (i = 0; i < r->o.n_pass_fds + 3; i++) {
		fd = i < 3 ? i : r->o.pass_fds[i - 3];
		if ((i < 3 && !r->o.allow_socket_stdio) || !fds_is_inet_socket(fd, desc, sizeof(desc)))
			continue;
		len = sizeof(cookie);
		if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
			continue; /* then refused by the LSM, as before */
		snprintf(num, sizeof(num), "%llu", (unsigned long long)cookie);
		json_object_array_add(a, json_object_new_string(num));
	}
	return a;
}

/* The policy as weir run read it: its bytes, its name for messages, the
 * --allow rules, --audit. */
static json_object *attach_body(const struct run *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	char label[64];
	int i;

	snprintf(label, sizeof(label), "run-%d", getpid());
	json_object_object_add(o, "cgroup", json_object_new_string(r->cgpath));
	json_object_object_add(o, "name", json_object_new_string(label));
	json_object_object_add(o, "policy_yaml",
			       json_object_new_string_len(r->policy_text, (int)r->policy_len));
	json_object_object_add(o, "policy_source", json_object_new_string(r->policy->source));
	for (i = 0; i < r->o.n_allow; i++)
		json_object_array_add(a, json_object_new_string(r->o.allow[i]));
	json_object_object_add(o, "allow", a);
	json_object_object_add(o, "audit", json_object_new_boolean(r->o.audit));
	json_object_object_add(o, "session", json_object_new_boolean(1));
	json_object_object_add(o, "passed", passed_cookies(r));
	return o;
}

static int attach(struct run *r)
{
	json_object *body = attach_body(r), *reply = NULL;
	char err[CLIENT_ERR_LEN];
	long status = 0;
	int ret;

	ret = client_call(r->sock, "POST", "/v1/attachments", body, &status, &reply, err,
			  sizeof(err));
	json_object_put(body);
	if (!ret && status != 201) {
		snprintf(err, sizeof(err), "%s", client_error(reply));
		ret = status == 400 ? -EINVAL : -EIO;
	}
	json_object_put(reply);
	if (ret == -EINVAL) { /* the policy's fault (it did not compile): as standalone says it */
		pr_warn("%s\n", err);
		return ret;
	}
	if (ret) {
		pr_warn("the daemon on %s did not enforce on %s: %s\n", r->sock, r->cgpath, err);
		return ret;
	}
	r->attached = true;
	runs_record_daemon(r->cgfd, r->sock);
	pr_debug("the daemon on %s enforces on %s\n", r->sock, r->cgpath);
	/* The daemon's own load decides; this kernel's answer is what it had.
	 * Asked at -v only: the probe loads BPF programs (a few ms a run). */
	if (log_get_level() >= LOG_LEVEL_DEBUG)
		pr_debug("sockets made outside the cgroup: %s\n",
			 egress_lsm_supported() ?
				 "refused by the daemon's BPF LSM programs (but for "
				 "--pass-fd and --allow-socket-stdio sockets)" :
				 "not refused: the BPF LSM is not active (lsm=...,bpf; "
				 "docs/threat-model.md)");
	return 0;
}

int run_daemon_attach(struct run *r)
{
	int ret;

	ret = run_make_cgroup(r);
	ret = ret ?: attach(r);
	if (ret)
		return ret; /* teardown removes the cgroup: the command never starts */
	ret = pthread_create(&r->rx, NULL, rx_main, r);
	if (ret) {
		pr_warn("cannot start reading the daemon's records: %s\n", strerror(ret));
		return -ret;
	}
	r->rx_started = true;
	return 0;
}

bool run_daemon_detach(struct run *r, __u64 *lost, bool detach)
{
	json_object *body, *reply = NULL;
	char err[CLIENT_ERR_LEN];
	long status = 0;
	int ret;

	if (!r->attached)
		return false;
	if (!detach) { /* left attached: the stream has no end to wait for */
		r->rx_stop = 1;
		if (r->rx_started)
			pthread_join(r->rx, NULL);
		r->incomplete = true;
		*lost = r->rx_lost;
		return true;
	}
	body = json_object_new_object();
	json_object_object_add(body, "cgroup", json_object_new_string(r->cgpath));
	ret = client_call(r->sock, "POST", "/v1/detach", body, &status, &reply, err, sizeof(err));
	json_object_put(body);
	if (!ret && status != 200)
		snprintf(err, sizeof(err), "%s", client_error(reply));
	json_object_put(reply);
	if (ret || status != 200) {
		/* The daemon detaches it on its own once the cgroup is gone. */
		pr_warn("the daemon on %s did not detach %s: %s\n", r->sock, r->cgpath, err);
		r->rx_stop = 1;
	}
	/* Detached: the stream ends after the last record. */
	if (r->rx_started)
		pthread_join(r->rx, NULL);
	/* No end record: the daemon went away (or restarted and adopted the
	 * run) while the command ran, and what it decided since is not in
	 * this run's records. The count is unknown, so it is never 0. */
	r->incomplete = !r->rx_end;
	*lost = r->rx_lost;
	return true;
}
