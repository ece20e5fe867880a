// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Tier 1: the daemon's API layer (user/daemon/api.c, metrics.c, notify.c)
 * and its client (user/client/).
 *
 * The core below is a stand-in: a small `struct daemon` with canned
 * answers, so these tests check the HTTP and JSON handling (status codes,
 * messages, who is refused, body limits, the socket's mode) and nothing
 * else. It is a test of the API layer, not a mock of the system: the
 * enforcement itself is tested through a real daemon in tests/daemon/.
 * This file is linked into a binary of its own (build/tests/api-tests) so
 * that its daemon_* never meet the real core's.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <criterion/criterion.h>
#include <json-c/json.h>

#include "api.h"
#include "client.h"
#include "daemon.h"
#include "metrics.h"
#include "notify.h"
#include "session.h"
#include "weir.h"

/* --- the stand-in core --------------------------------------------------------- */

struct daemon {
	struct attach_info att[8];
	size_t n;
	pid_t enforced_pid; /* daemon_peer_enforced() says yes for this one */
	int calls; /* every daemon_* but the peer check */
	const char *report;
	int reload_ret;
	struct attach_req last; /* the last attach request, its strings in: */
	char last_label[256], last_netns[256], last_holder[256], last_root[256], last_ns[512];
	char released[256]; /* the last holder released, and its cgroup ("" none) */
	char released_cg[256];
	/* the last inline attach (weir run's) */
	char inl_yaml[256], inl_source[256], inl_allow[4][64];
	size_t inl_n_allow;
	bool inl_audit, inl_session;
	struct session *session; /* its session, cgroup id 77 */
};

static struct daemon core;

int daemon_attach(struct daemon *d, const struct attach_req *r, struct attach_info *out,
		  char *err, size_t len)
{
	size_t i;

	d->calls++;
	d->last = *r;
	if (r->label)
		d->last.label = strcpy(d->last_label, r->label);
	if (r->netns)
		d->last.netns = strcpy(d->last_netns, r->netns);
	if (r->holder)
		d->last.holder = strcpy(d->last_holder, r->holder);
	if (r->root)
		d->last.root = strcpy(d->last_root, r->root);
	if (r->nameservers)
		d->last.nameservers = strcpy(d->last_ns, r->nameservers);
	if (!strcmp(r->cgroup, "/sys/fs/cgroup/none")) {
		snprintf(err, len, "no such cgroup: %s", r->cgroup);
		return -ENOENT;
	}
	if (!strcmp(r->policy, "broken")) {
		snprintf(err, len, "policy error: /etc/weir/policies/broken.yaml:3:5: unknown key");
		return -EINVAL;
	}
	for (i = 0; i < d->n; i++) {
		if (strcmp(d->att[i].cgroup, r->cgroup))
			continue;
		if (strcmp(d->att[i].policy, r->policy)) {
			snprintf(err, len, "%s is attached with policy %s", r->cgroup,
				 d->att[i].policy);
			return -EEXIST;
		}
		*out = d->att[i];
		out->existed = true;
		return 0;
	}
	if (d->n == 8)
		return -ENOSPC;
	out = memset(out, 0, sizeof(*out));
	snprintf(out->cgroup, sizeof(out->cgroup), "%s", r->cgroup);
	snprintf(out->label, sizeof(out->label), "%s", r->label ? r->label : "job");
	snprintf(out->policy, sizeof(out->policy), "%s", r->policy);
	snprintf(out->state, sizeof(out->state), "ok");
	out->cgroup_id = 1000 + d->n;
	out->generation = 1;
	out->dns_port = 40000 + d->n;
	out->allowed = 7;
	out->denied = 3;
	d->att[d->n++] = *out;
	return 0;
}

int daemon_detach(struct daemon *d, const char *cgroup, char *err, size_t len)
{
	size_t i;

	d->calls++;
	for (i = 0; i < d->n; i++) {
		if (!strcmp(d->att[i].cgroup, cgroup)) {
			d->att[i] = d->att[--d->n];
			return 0;
		}
	}
	snprintf(err, len, "%s is not attached", cgroup);
	return -ENOENT;
}

/* Holder "c1" held cgroup "pod" with "c2" (not detached) and "ctr" alone. */
int daemon_release(struct daemon *d, const char *holder, const char *cgroup,
		   daemon_release_fn fn, void *ctx, char *err, size_t len)
{
	d->calls++;
	snprintf(d->released, sizeof(d->released), "%s", holder);
	snprintf(d->released_cg, sizeof(d->released_cg), "%s", cgroup ? cgroup : "");
	if (!strcmp(holder, "c1")) {
		fn(ctx, "/sys/fs/cgroup/pod", false);
		fn(ctx, "/sys/fs/cgroup/pod/ctr", true);
	}
	return 0;
}

size_t daemon_list(struct daemon *d, struct attach_info **out)
{
	d->calls++;
	*out = malloc(sizeof(**out) * (d->n ? d->n : 1));
	memcpy(*out, d->att, sizeof(**out) * d->n);
	return d->n;
}

int daemon_reload(struct daemon *d, char *report, size_t len)
{
	d->calls++;
	snprintf(report, len, "%s", d->report ? d->report : "");
	return d->reload_ret;
}

void daemon_metrics(struct daemon *d, FILE *f)
{
	struct metrics_hist h = { 0 };

	fputs("# HELP weir_attachments Cgroups the daemon enforces a policy on.\n"
	      "# TYPE weir_attachments gauge\n", f);
	fprintf(f, "weir_attachments %zu\n", d->n);
	fputs("# HELP weir_decisions_total Decisions.\n# TYPE weir_decisions_total counter\n", f);
	fputs("weir_decisions_total{verdict=\"deny\",policy=\"agent\",unit=", f);
	metrics_label(f, "a \"quoted\"\\label\n");
	fputs("} 3\n", f);
	metrics_hist_observe(&h, 300000);
	metrics_hist_print(f, "weir_dns_latency_seconds", "Resolver latency.", &h);
}

int daemon_attach_inline(struct daemon *d, const struct attach_inline *r,
			 struct attach_info *out, char *err, size_t len)
{
	size_t i;

	d->calls++;
	snprintf(d->inl_yaml, sizeof(d->inl_yaml), "%.*s", (int)r->policy_len, r->policy_yaml);
	snprintf(d->inl_source, sizeof(d->inl_source), "%s", r->policy_source);
	for (i = 0; i < r->n_allow && i < 4; i++)
		snprintf(d->inl_allow[i], sizeof(d->inl_allow[i]), "%s", r->allow[i]);
	d->inl_n_allow = r->n_allow;
	d->inl_audit = r->audit;
	d->inl_session = r->session;
	if (strstr(d->inl_yaml, "broken")) {
		snprintf(err, len, "policy error: %s:2:1: unknown key", r->policy_source);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->cgroup, sizeof(out->cgroup), "%s", r->cgroup);
	snprintf(out->policy, sizeof(out->policy), "inline:%s", r->policy_source);
	out->cgroup_id = 77;
	if (r->session && !d->session)
		d->session = session_new();
	return 0;
}

__u64 daemon_events_lost(struct daemon *d)
{
	(void)d;
	return 0;
}

struct session *daemon_session(struct daemon *d, __u64 cgroup_id)
{
	return cgroup_id == 77 && d->session ? session_get(d->session) : NULL;
}

bool daemon_peer_enforced(struct daemon *d, pid_t pid)
{
	return pid == d->enforced_pid;
}

static void core_reset(void)
{
	session_put(core.session);
	memset(&core, 0, sizeof(core));
	core.enforced_pid = -1;
}

/* --- the handlers, with peers of our own ---------------------------------------- */

static const struct api_peer root_peer = { .pid = 1, .uid = 0, .gid = 0, .pidfd = -1 };

static json_object *call(const struct api_peer *peer, const char *method, const char *url,
			 const char *body, unsigned int want)
{
	struct api_reply r;
	json_object *o;

	api_dispatch(&core, peer, method, url, body, body ? strlen(body) : 0, &r);
	cr_assert_eq(r.status, want, "%s %s: %u, want %u: %.*s", method, url, r.status, want,
		     (int)r.len, r.body);
	cr_assert_str_eq(r.type, "application/json");
	cr_assert(r.len && r.body[r.len - 1] == '\n', "a reply ends in a newline");
	o = json_tokener_parse(r.body);
	cr_assert_not_null(o, "not JSON: %s", r.body);
	free(r.body);
	return o;
}

static const char *str_of(json_object *o, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key,
		  json_object_to_json_string(o));
	return json_object_get_string(v);
}

static long long num_of(json_object *o, const char *key)
{
	json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no '%s'", key);
	cr_assert(json_object_is_type(v, json_type_int), "'%s' is not a number", key);
	return json_object_get_int64(v);
}

/* The error message of a refused request contains WANT. */
static void error_says(const struct api_peer *peer, const char *method, const char *url,
		       const char *body, unsigned int status, const char *want)
{
	json_object *o = call(peer, method, url, body, status);

	cr_assert(strstr(str_of(o, "error"), want), "%s %s %s: '%s' lacks '%s'", method, url,
		  body ? body : "", str_of(o, "error"), want);
	json_object_put(o);
}

Test(api, health, .init = core_reset)
{
	json_object *o = call(&root_peer, "GET", "/v1/health", NULL, 200);

	cr_assert_str_eq(str_of(o, "version"), weir_version());
	cr_assert_eq(num_of(o, "pid"), getpid());
	cr_assert_eq(num_of(o, "attachments"), 0);
	json_object_put(o);
}

Test(api, attach_new_again_and_conflict, .init = core_reset)
{
	const char *body = "{\"cgroup\":\"ci/job-1\",\"policy\":\"agent\",\"name\":\"job 1\"}";
	json_object *o;

	o = call(&root_peer, "POST", "/v1/attachments", body, 201);
	cr_assert_str_eq(str_of(o, "cgroup"), "ci/job-1");
	cr_assert_str_eq(str_of(o, "label"), "job 1");
	cr_assert_str_eq(str_of(o, "policy"), "agent");
	cr_assert_str_eq(str_of(o, "state"), "ok");
	cr_assert_eq(num_of(o, "cgroup_id"), 1000);
	cr_assert_eq(num_of(o, "generation"), 1);
	cr_assert_eq(num_of(o, "allowed"), 7);
	cr_assert_eq(num_of(o, "denied"), 3);
	cr_assert_eq(num_of(o, "would_deny"), 0);
	cr_assert_eq(num_of(o, "dns_port"), 40000);
	json_object_put(o);
	/* the peer's credentials reach the core: it finds the netns by them */
	cr_assert_eq(core.last.peer_pid, 1);
	cr_assert_eq(core.last.peer_uid, 0);
	cr_assert_null(core.last.netns);
	/* the same again is no change: 200, not 201 */
	json_object_put(call(&root_peer, "POST", "/v1/attachments", body, 200));
	cr_assert_eq(core.n, 1);
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"ci/job-1\",\"policy\":\"other\"}", 409,
		   "ci/job-1 is attached with policy agent");
	/* null is a field left out; netns is passed on */
	json_object_put(call(&root_peer, "POST", "/v1/attachments",
			     "{\"cgroup\":\"ci/job-2\",\"policy\":\"agent\",\"name\":null,"
			     "\"netns\":\"/proc/42/ns/net\"}", 201));
	cr_assert_null(core.last.label);
	cr_assert_str_eq(core.last.netns, "/proc/42/ns/net");
}

Test(api, container_binds_and_releases_by_holder, .init = core_reset)
{
	json_object *o, *a, *e;

	o = call(&root_peer, "POST", "/v1/attachments",
		 "{\"cgroup\":\"pod\",\"policy\":\"web\",\"holder\":\"c1\",\"root\":\"/r\","
		 "\"nameservers\":\"192.0.2.53 [2001:db8::53]:5353\"}", 201);
	cr_assert_eq(num_of(o, "holders"), 0); /* the stand-in core counts none */
	json_object_put(o);
	cr_assert_str_eq(core.last.holder, "c1");
	cr_assert_str_eq(core.last.root, "/r");
	cr_assert_str_eq(core.last.nameservers, "192.0.2.53 [2001:db8::53]:5353");
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"pod\",\"policy\":\"web\",\"holder\":7}", 400,
		   "'holder' must be a string");

	o = call(&root_peer, "POST", "/v1/detach", "{\"holder\":\"c1\"}", 200);
	cr_assert_str_eq(str_of(o, "holder"), "c1");
	cr_assert(json_object_object_get_ex(o, "released", &a));
	cr_assert_eq(json_object_array_length(a), 2);
	e = json_object_array_get_idx(a, 0);
	cr_assert_str_eq(str_of(e, "cgroup"), "/sys/fs/cgroup/pod");
	cr_assert(json_object_object_get_ex(e, "detached", &e));
	cr_assert(!json_object_get_boolean(e), "pod is still held by another");
	json_object_put(o);
	cr_assert_str_eq(core.released_cg, "");
	/* a holder that held nothing is no error: a second poststop */
	o = call(&root_peer, "POST", "/v1/detach", "{\"holder\":\"gone\",\"cgroup\":\"pod\"}", 200);
	cr_assert(json_object_object_get_ex(o, "released", &a));
	cr_assert_eq(json_object_array_length(a), 0);
	json_object_put(o);
	cr_assert_str_eq(core.released, "gone");
	cr_assert_str_eq(core.released_cg, "pod");
}

Test(api, inline_attach_takes_the_policy_its_rules_and_flags, .init = core_reset)
{
	json_object *o;

	o = call(&root_peer, "POST", "/v1/attachments",
		 "{\"cgroup\":\"/sys/fs/cgroup/weir/run-9\",\"name\":\"run-9\","
		 "\"policy_yaml\":\"version: 1\\nloopback: deny\\n\",\"policy_source\":\"p.yaml\","
		 "\"allow\":[\"a.test:443\",\"192.0.2.1\"],\"audit\":true,\"session\":true}", 201);
	cr_assert_str_eq(str_of(o, "cgroup"), "/sys/fs/cgroup/weir/run-9");
	cr_assert_str_eq(str_of(o, "policy"), "inline:p.yaml");
	json_object_put(o);
	cr_assert_str_eq(core.inl_yaml, "version: 1\nloopback: deny\n");
	cr_assert_str_eq(core.inl_source, "p.yaml");
	cr_assert_eq(core.inl_n_allow, 2);
	cr_assert_str_eq(core.inl_allow[0], "a.test:443");
	cr_assert_str_eq(core.inl_allow[1], "192.0.2.1");
	cr_assert(core.inl_audit && core.inl_session);
	/* nothing but the policy and the cgroup: no rules, enforce, no session */
	json_object_put(call(&root_peer, "POST", "/v1/attachments",
			     "{\"cgroup\":\"x\",\"policy_yaml\":\"version: 1\\n\"}", 201));
	cr_assert_eq(core.inl_n_allow, 0);
	cr_assert(!core.inl_audit && !core.inl_session);
	cr_assert_str_eq(core.inl_source, "inline");
}

Test(api, inline_attach_bad_fields_are_400, .init = core_reset)
{
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"x\",\"policy_yaml\":\"v\",\"allow\":\"a.test\"}", 400,
		   "'allow' must be an array");
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"x\",\"policy_yaml\":\"v\",\"allow\":[1]}", 400,
		   "'allow'[0] must be a rule");
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"x\",\"policy_yaml\":\"v\",\"audit\":\"yes\"}", 400,
		   "'audit' must be true or false");
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"x\",\"policy_yaml\":7}", 400, "'policy_yaml' must be");
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"policy_yaml\":\"version: 1\"}", 400, "'cgroup' is required");
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"x\",\"policy_yaml\":\"v\",\"policy\":\"agent\"}", 400,
		   "unknown field 'policy'");
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"x\",\"policy_yaml\":\"broken\",\"policy_source\":\"q.yaml\"}",
		   400, "policy error: q.yaml:2:1: unknown key");
}

Test(api, attach_errors_from_the_core, .init = core_reset)
{
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"/sys/fs/cgroup/none\",\"policy\":\"agent\"}", 404,
		   "no such cgroup: /sys/fs/cgroup/none");
	error_says(&root_peer, "POST", "/v1/attachments",
		   "{\"cgroup\":\"x\",\"policy\":\"broken\"}", 400,
		   "policy error: /etc/weir/policies/broken.yaml:3:5: unknown key");
}

Test(api, bad_bodies_are_400_with_a_reason, .init = core_reset)
{
	static const struct {
		const char *body, *says;
	} cases[] = {
		{ "", "bad JSON: the body ends inside a value" },
		{ "{\"cgroup\": \"x\"", "bad JSON: the body ends inside a value" },
		{ "{\"cgroup\" \"x\"}", "bad JSON at byte 10" },
		{ "{\"cgroup\":\"x\",\"policy\":\"p\"} {}", "bad JSON at byte 28: more after" },
		{ "[1]", "the body must be a JSON object, not array" },
		{ "\"x\"", "the body must be a JSON object, not string" },
		{ "{\"policy\":\"p\"}", "'cgroup' is required" },
		{ "{\"cgroup\":\"\",\"policy\":\"p\"}", "'cgroup' is required" },
		{ "{\"cgroup\":\"x\"}", "'policy' is required" },
		{ "{\"cgroup\":\"x\",\"policy\":\"p\",\"lable\":\"l\"}",
		  "unknown field 'lable' (known: cgroup, policy, name, netns, holder, root, "
		  "nameservers)" },
		{ "{\"cgroup\":7,\"policy\":\"p\"}", "'cgroup' must be a string, not int" },
		{ "{\"cgroup\":\"x\",\"policy\":\"p\",\"name\":[]}", "'name' must be a string" },
		{ "{\"cgroup\":\"x\\u0000y\",\"policy\":\"p\"}", "'cgroup' contains a control" },
		{ "{\"cgroup\":\"x\",\"policy\":\"p\",\"name\":\"a\\nb\"}",
		  "'name' contains a control character" },
	};
	char big[400];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		error_says(&root_peer, "POST", "/v1/attachments", cases[i].body, 400,
			   cases[i].says);
	memset(big, 'a', sizeof(big));
	memcpy(big, "{\"cgroup\":\"x\",\"policy\":\"p\",\"name\":\"", 35);
	strcpy(big + sizeof(big) - 3, "\"}");
	error_says(&root_peer, "POST", "/v1/attachments", big, 400,
		   "'name' is longer than 255 bytes");
	cr_assert_eq(core.calls, 0, "a bad request reached the core");
}

Test(api, detach_list_and_reload, .init = core_reset)
{
	json_object *o, *a;

	json_object_put(call(&root_peer, "POST", "/v1/attachments",
			     "{\"cgroup\":\"a\",\"policy\":\"p\"}", 201));
	json_object_put(call(&root_peer, "POST", "/v1/attachments",
			     "{\"cgroup\":\"b\",\"policy\":\"q\"}", 201));
	o = call(&root_peer, "GET", "/v1/attachments", NULL, 200);
	cr_assert(json_object_object_get_ex(o, "attachments", &a));
	cr_assert_eq(json_object_array_length(a), 2);
	cr_assert_str_eq(str_of(json_object_array_get_idx(a, 1), "policy"), "q");
	json_object_put(o);

	o = call(&root_peer, "POST", "/v1/detach", "{\"cgroup\":\"a\"}", 200);
	cr_assert_str_eq(str_of(o, "cgroup"), "a");
	json_object_put(o);
	error_says(&root_peer, "POST", "/v1/detach", "{\"cgroup\":\"a\"}", 404, "a is not attached");
	error_says(&root_peer, "POST", "/v1/detach", "{}", 400, "'cgroup' is required");

	core.report = "agent\t3\tok\nci\t1\tpolicy error: /p/ci.yaml:2:1: bad\n";
	o = call(&root_peer, "POST", "/v1/reload", NULL, 200);
	cr_assert(json_object_object_get_ex(o, "policies", &a));
	cr_assert_eq(json_object_array_length(a), 2);
	cr_assert_str_eq(str_of(json_object_array_get_idx(a, 0), "name"), "agent");
	cr_assert_eq(num_of(json_object_array_get_idx(a, 0), "generation"), 3);
	cr_assert_str_eq(str_of(json_object_array_get_idx(a, 1), "state"),
			 "policy error: /p/ci.yaml:2:1: bad");
	json_object_put(o);
	json_object_put(call(&root_peer, "POST", "/v1/reload", "{}", 200));
	error_says(&root_peer, "POST", "/v1/reload", "{\"now\":\"yes\"}", 400, "unknown field");
	core.reload_ret = -EIO;
	core.report = "cannot read /etc/weir/policies";
	error_says(&root_peer, "POST", "/v1/reload", NULL, 500, "cannot read /etc/weir/policies");
}

Test(api, unknown_paths_and_methods, .init = core_reset)
{
	struct api_reply r;

	error_says(&root_peer, "GET", "/v1/nothing", NULL, 404, "no such endpoint: /v1/nothing");
	error_says(&root_peer, "GET", "/v1/health/", NULL, 404, "no such endpoint");
	error_says(&root_peer, "DELETE", "/v1/attachments", NULL, 405, "method not allowed");
	api_dispatch(&core, &root_peer, "GET", "/v1/detach", NULL, 0, &r);
	cr_assert_eq(r.status, 405);
	cr_assert_str_eq(r.allow, "POST");
	free(r.body);
	api_dispatch(&core, &root_peer, "PUT", "/v1/attachments", NULL, 0, &r);
	cr_assert_str_eq(r.allow, "GET, HEAD, POST");
	free(r.body);
	cr_assert_eq(core.calls, 0);
}

Test(api, refused_peers, .init = core_reset)
{
	struct api_peer user = { .pid = 2, .uid = 1000, .pidfd = -1 };
	struct api_peer inside = { .pid = 3, .uid = 0, .pidfd = -1 };

	core.enforced_pid = 3;
	error_says(&user, "GET", "/v1/health", NULL, 403,
		   "only root may use weir's API (the caller is uid 1000)");
	error_says(&user, "POST", "/v1/attachments", "{\"cgroup\":\"a\",\"policy\":\"p\"}", 403,
		   "only root");
	error_says(&inside, "POST", "/v1/detach", "{\"cgroup\":\"a\"}", 403,
		   "refused: the caller (pid 3) is inside a cgroup weir enforces");
	error_says(&inside, "GET", "/metrics", NULL, 403, "inside a cgroup weir enforces");
	cr_assert_eq(core.calls, 0, "a refused peer reached the core");
}

Test(api, refused_when_the_peer_is_gone, .init = core_reset)
{
	struct api_peer gone = { .uid = 0 };
	pid_t pid = fork();

	if (!pid)
		_exit(0);
	gone.pid = pid;
	gone.pidfd = syscall(SYS_pidfd_open, pid, 0);
	cr_assert_geq(gone.pidfd, 0);
	waitpid(pid, NULL, 0);
	error_says(&gone, "GET", "/v1/health", NULL, 403, "has exited");
	close(gone.pidfd);
}

/* --- Prometheus text ----------------------------------------------------------- */

/* Every line of TEXT is a comment, a HELP/TYPE line or a sample. */
static void assert_prometheus_text(const char *text)
{
	static const char sample[] =
		"^[a-zA-Z_:][a-zA-Z0-9_:]*"
		"(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\[\\\\\"n])*\""
		"(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\[\\\\\"n])*\")*\\})?"
		" (-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$";
	static const char meta[] = "^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|"
				   "TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
				   "(counter|gauge|histogram|summary|untyped))$";
	char *copy = strdup(text), *line, *save;
	regex_t rs, rm;

	cr_assert_eq(regcomp(&rs, sample, REG_EXTENDED | REG_NOSUB), 0);
	cr_assert_eq(regcomp(&rm, meta, REG_EXTENDED | REG_NOSUB), 0);
	cr_assert(*text && text[strlen(text) - 1] == '\n', "the text ends with a newline");
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		cr_assert(!regexec(line[0] == '#' ? &rm : &rs, line, 0, NULL, 0),
			  "not Prometheus text: '%s'", line);
	regfree(&rs);
	regfree(&rm);
	free(copy);
}

Test(metrics, label_escaping)
{
	char buf[64] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	metrics_label(f, "a\"b\\c\nd");
	fclose(f);
	cr_assert_str_eq(buf, "\"a\\\"b\\\\c\\nd\"");
}

Test(metrics, histogram_is_cumulative)
{
	struct metrics_hist h = { 0 };
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	metrics_hist_observe(&h, 50000); /* 50 us: the first bucket */
	metrics_hist_observe(&h, 1000000); /* 1 ms: on a bound, counted in it */
	metrics_hist_observe(&h, 3000000000ULL); /* 3 s: above every bound */
	metrics_hist_print(f, "x_seconds", "help", &h);
	fclose(f);
	assert_prometheus_text(text);
	cr_assert(strstr(text, "x_seconds_bucket{le=\"0.0001\"} 1\n"), "%s", text);
	cr_assert(strstr(text, "x_seconds_bucket{le=\"0.0005\"} 1\n"));
	cr_assert(strstr(text, "x_seconds_bucket{le=\"0.001\"} 2\n"));
	cr_assert(strstr(text, "x_seconds_bucket{le=\"2.5\"} 2\n"));
	cr_assert(strstr(text, "x_seconds_bucket{le=\"+Inf\"} 3\n"));
	cr_assert(strstr(text, "x_seconds_sum 3.001050000\n"));
	cr_assert(strstr(text, "x_seconds_count 3\n"));
	cr_assert(strstr(text, "# TYPE x_seconds histogram\n"));
	free(text);
}

Test(metrics, page_is_the_core_and_the_api, .init = core_reset)
{
	struct api_reply r;

	api_dispatch(&core, &root_peer, "GET", "/metrics", NULL, 0, &r);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.type, METRICS_CONTENT_TYPE);
	r.body[r.len - 1] = '\0'; /* the trailing newline, for strstr */
	cr_assert(strstr(r.body, "weir_attachments 0\n"));
	cr_assert(strstr(r.body, "unit=\"a \\\"quoted\\\"\\\\label\\n\"} 3\n"), "%s", r.body);
	cr_assert(strstr(r.body, "weir_api_requests_total{code=\"200\"}"));
	cr_assert(strstr(r.body, "weir_build_info{version="));
	r.body[r.len - 1] = '\n';
	assert_prometheus_text(r.body);
	free(r.body);
}

/* --- over a real socket ------------------------------------------------------------ */

static char dir[64], sock[128];

static void server_up(void)
{
	char err[256];

	core_reset();
	snprintf(dir, sizeof(dir), "/tmp/weir-api-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/run/weir.sock", dir); /* run/: api_start makes it */
	cr_assert_eq(api_start(&core, sock, NULL, err, sizeof(err)), 0, "%s", err);
}

static void server_down(void)
{
	char cmd[128];

	api_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Criterion does not run .fini for a skipped test: take the server down first. */
static void skip_without_root(const char *why)
{
	server_down();
	cr_skip_test("%s", why);
}

/* Root gets answers; anyone else the daemon's 403. */
static unsigned int as_us(unsigned int want)
{
	return geteuid() == 0 ? want : 403;
}

Test(socket, root_only_mode_and_a_round_trip, .init = server_up, .fini = server_down)
{
	json_object *reply, *body;
	char err[CLIENT_ERR_LEN];
	struct stat st;
	long status;

	cr_assert_eq(stat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_uid, geteuid()); /* root's, as the daemon is root */
	cr_assert_eq(client_call(sock, "GET", "/v1/health", NULL, &status, &reply, err,
				 sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, as_us(200));
	json_object_put(reply);

	body = json_tokener_parse("{\"cgroup\":\"ci/x\",\"policy\":\"agent\"}");
	cr_assert_eq(client_call(sock, "POST", "/v1/attachments", body, &status, &reply, err,
				 sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, as_us(201));
	if (status == 201) {
		cr_assert_str_eq(str_of(reply, "cgroup"), "ci/x");
		/* SO_PEERCRED: this process */
		cr_assert_eq(core.last.peer_pid, getpid());
	} else {
		cr_assert(strstr(client_error(reply), "only root may use"));
	}
	json_object_put(reply);
	json_object_put(body);
}

Test(socket, a_body_over_1_MiB_is_413, .init = server_up, .fini = server_down)
{
	size_t n = API_BODY_MAX + 100;
	char *big = malloc(n + 1), err[CLIENT_ERR_LEN];
	json_object *reply, *body;
	long status;

	if (geteuid())
		skip_without_root("the peer check comes first: only root reaches the size check");
	memset(big, 'a', n);
	big[n] = '\0';
	body = json_object_new_object();
	json_object_object_add(body, "cgroup", json_object_new_string(big));
	cr_assert_eq(client_call(sock, "POST", "/v1/detach", body, &status, &reply, err,
				 sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 413);
	cr_assert(strstr(client_error(reply), "larger than 1048576 bytes"));
	json_object_put(reply);
	cr_assert_eq(core.calls, 0);
	/* a new attachment's body may carry a policy's text (weir run's): read,
	 * and here refused for what it says */
	cr_assert_eq(client_call(sock, "POST", "/v1/attachments", body, &status, &reply, err,
				 sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 400, "%ld: %s", status, client_error(reply));
	json_object_put(reply);
	json_object_put(body);
	free(big);
	/* the server is still there */
	cr_assert_eq(client_call(sock, "GET", "/v1/health", NULL, &status, &reply, err,
				 sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 200);
	json_object_put(reply);
}

Test(socket, a_live_daemon_is_not_replaced, .init = server_up, .fini = server_down)
{
	char err[256], want[256];

	cr_assert_eq(api_start(&core, sock, NULL, err, sizeof(err)), -EADDRINUSE);
	snprintf(want, sizeof(want), "a daemon already answers on %s", sock);
	cr_assert_str_eq(err, want);
}

static void tmp_up(void)
{
	snprintf(dir, sizeof(dir), "/tmp/weir-api-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/weir.sock", dir);
	core_reset();
}

static void tmp_down(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* A socket nobody listens on, as a daemon killed with -9 leaves it. */
static void dead_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

Test(socket, a_dead_daemons_socket_is_replaced_and_ours_removed, .init = tmp_up,
     .fini = tmp_down)
{
	char err[256];
	struct stat st;

	dead_socket(sock);
	cr_assert_eq(api_start(&core, sock, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(sock, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	api_stop();
	cr_assert_eq(stat(sock, &st), -1, "api_stop left the socket");
}

Test(socket, a_bad_metrics_address_is_said_and_nothing_listens, .init = tmp_up,
     .fini = tmp_down)
{
	static const char *const bad[] = { "9477", "127.0.0.1:", "::1:9477", "[::1]",
					    "127.0.0.1:http" };
	char err[256];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(api_start(&core, sock, bad[i], err, sizeof(err)), -EINVAL, "%s",
			     bad[i]);
		cr_assert(strstr(err, "--metrics"), "%s: %s", bad[i], err);
		cr_assert_eq(stat(sock, &st), -1, "%s: the socket was made", bad[i]);
	}
}

Test(socket, a_file_that_is_not_a_socket_is_left_alone, .init = tmp_up, .fini = tmp_down)
{
	char err[256];
	struct stat st;
	int fd = open(sock, O_CREAT | O_WRONLY, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "keep", 4), 4);
	close(fd);
	cr_assert_eq(api_start(&core, sock, NULL, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "exists and is not a socket"), "%s", err);
	cr_assert_eq(stat(sock, &st), 0);
	cr_assert_eq(st.st_size, 4);
	cr_assert_eq(api_start(&core, "relative.sock", NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "an absolute path"), "%s", err);
}

Test(client, no_daemon_says_how_to_start_one, .init = tmp_up, .fini = tmp_down)
{
	char err[CLIENT_ERR_LEN], want[CLIENT_ERR_LEN];
	json_object *reply;
	long status;

	snprintf(want, sizeof(want), "no daemon answers on %s (start one: sudo weir daemon "
		 "--socket %s)", sock, sock);
	/* nothing there */
	cr_assert_eq(client_call(sock, "GET", "/v1/health", NULL, &status, &reply, err,
				 sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, want);
	/* a socket nobody listens on */
	dead_socket(sock);
	cr_assert_eq(client_call(sock, "GET", "/v1/health", NULL, &status, &reply, err,
				 sizeof(err)), -ECONNREFUSED);
	cr_assert_str_eq(err, want);
}

Test(client, not_root_is_said, .init = server_up, .fini = server_down)
{
	char err[CLIENT_ERR_LEN];
	json_object *reply;
	int st, pfd[2];
	long status;
	pid_t pid;

	if (geteuid())
		skip_without_root("needs root, to be someone else than the socket's owner");
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	if (!pid) {
		/* nobody: the 0600 socket of root's refuses the connect() */
		if (setgid(65534) || setuid(65534))
			_exit(2);
		st = client_call(sock, "GET", "/v1/health", NULL, &status, &reply, err,
				 sizeof(err));
		dprintf(pfd[1], "%d %s", st, err);
		_exit(0);
	}
	close(pfd[1]);
	memset(err, 0, sizeof(err));
	cr_assert_gt(read(pfd[0], err, sizeof(err) - 1), 0);
	close(pfd[0]);
	waitpid(pid, &st, 0);
	cr_assert(strstr(err, "permission denied: the daemon's socket is root's; run this as root"),
		  "%s", err);
	cr_assert_eq(atoi(err), -EACCES);
	cr_assert_eq(core.calls, 0);
}

Test(client, socket_from_option_env_default)
{
	unsetenv(CLIENT_SOCKET_ENV);
	cr_assert_str_eq(client_socket(NULL), "/run/weir/weir.sock");
	setenv(CLIENT_SOCKET_ENV, "/tmp/env.sock", 1);
	cr_assert_str_eq(client_socket(NULL), "/tmp/env.sock");
	cr_assert_str_eq(client_socket("/tmp/opt.sock"), "/tmp/opt.sock");
	unsetenv(CLIENT_SOCKET_ENV);
}

/* --- sd_notify --------------------------------------------------------------------- */

/* A datagram socket at NAME ("@..." abstract) as systemd's notify socket. */
static int notify_listener(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	strcpy(sa.sun_path, name);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		len++;
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0, "%s", strerror(errno));
	return fd;
}

static void notify_gets(int fd, const char *want)
{
	char buf[64] = "";

	cr_assert_eq(recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT), (ssize_t)strlen(want));
	cr_assert_str_eq(buf, want);
}

Test(notify, ready_and_stopping_to_a_path_and_an_abstract_socket, .init = tmp_up,
     .fini = tmp_down)
{
	char abstract[64];
	int fd;

	fd = notify_listener(sock);
	setenv("NOTIFY_SOCKET", sock, 1);
	cr_assert_eq(notify_ready(), 0);
	notify_gets(fd, "READY=1");
	cr_assert_eq(notify_stopping(), 0);
	notify_gets(fd, "STOPPING=1");
	close(fd);

	snprintf(abstract, sizeof(abstract), "@weir-notify-test-%d", getpid());
	fd = notify_listener(abstract);
	setenv("NOTIFY_SOCKET", abstract, 1);
	cr_assert_eq(notify_ready(), 0);
	notify_gets(fd, "READY=1");
	close(fd);

	setenv("NOTIFY_SOCKET", "relative", 1);
	cr_assert_eq(notify_ready(), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
	cr_assert_eq(notify_ready(), 0, "not under systemd: nothing to say");
}

/* curl(1) itself, as the docs use it: the status of METHOD URL with ARGS. */
static int curl_status(const char *args, const char *url)
{
	char cmd[512], out[16] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null -w '%%{http_code}' --unix-socket %s %s "
		 "http://localhost%s", sock, args, url);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(out, sizeof(out), p));
	pclose(p);
	return atoi(out);
}

Test(socket, curl_chunked_bodies_and_head, .init = server_up, .fini = server_down)
{
	char big[128];

	if (geteuid())
		skip_without_root("the peer check comes first: only root reaches the rest");
	snprintf(big, sizeof(big), "%s/big", dir);
	snprintf(big, sizeof(big), "head -c %d /dev/zero >%s/big", API_BODY_MAX + 1, dir);
	cr_assert_eq(system(big), 0);
	/* no Content-Length: the body is counted as it comes */
	snprintf(big, sizeof(big), "-H 'Transfer-Encoding: chunked' --data-binary @%s/big", dir);
	cr_assert_eq(curl_status(big, "/v1/detach"), 413);
	cr_assert_eq(curl_status("-H 'Transfer-Encoding: chunked' "
				 "-d '{\"cgroup\":\"c\",\"policy\":\"p\"}'", "/v1/attachments"),
		     201);
	cr_assert_eq(curl_status("-I", "/v1/health"), 200);
	cr_assert_eq(curl_status("-X DELETE", "/v1/health"), 405);
	cr_assert_eq(curl_status("", "/nothing"), 404);
	cr_assert_eq(curl_status("-d '{'", "/v1/detach"), 400);
	cr_assert_eq(core.calls, 2); /* the attach, and HEAD's list */
}

/* --- a session's stream -------------------------------------------------------------- */

struct got {
	char lines[8][128];
	int n;
};

static int got_record(void *ctx, json_object *rec)
{
	struct got *g = ctx;

	if (g->n < 8)
		snprintf(g->lines[g->n++], sizeof(g->lines[0]), "%s",
			 json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN));
	return 0;
}

/* Records pushed while the reader waits (its connection suspended). */
static void *pusher(void *arg)
{
	struct session *s = arg;
	json_object *o;
	int i;

	for (i = 0; i < 3; i++) {
		usleep(20000);
		o = json_object_new_object();
		json_object_object_add(o, "t", json_object_new_string("event"));
		json_object_object_add(o, "n", json_object_new_int(i));
		session_push(s, o);
	}
	usleep(20000);
	session_end(s, 5, true);
	return NULL;
}

Test(socket, a_session_streams_its_records_then_ends, .init = server_up, .fini = server_down)
{
	json_object *reply, *body;
	char err[CLIENT_ERR_LEN];
	struct got g = { 0 };
	pthread_t th;
	long status;

	if (geteuid() != 0)
		return; /* the daemon answers root only */
	body = json_tokener_parse("{\"cgroup\":\"/x\",\"policy_yaml\":\"version: 1\",\"session\":true}");
	cr_assert_eq(client_call(sock, "POST", "/v1/attachments", body, &status, &reply, err,
				 sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 201);
	json_object_put(reply);
	json_object_put(body);
	/* one record before the reader comes: it waits for it */
	body = json_object_new_object();
	json_object_object_add(body, "t", json_object_new_string("log"));
	session_push(core.session, body);
	cr_assert_eq(pthread_create(&th, NULL, pusher, core.session), 0);
	cr_assert_eq(client_stream(sock, "/v1/attachments/77/events", got_record, &g, NULL, err,
				   sizeof(err)), 0, "%s", err);
	pthread_join(th, NULL);
	cr_assert_eq(g.n, 5);
	cr_assert_str_eq(g.lines[0], "{\"t\":\"log\"}");
	cr_assert_str_eq(g.lines[1], "{\"t\":\"event\",\"n\":0}");
	cr_assert_str_eq(g.lines[3], "{\"t\":\"event\",\"n\":2}");
	cr_assert_str_eq(g.lines[4], "{\"t\":\"end\",\"lost\":5,\"detached\":true}");
	/* no session there */
	cr_assert_eq(client_stream(sock, "/v1/attachments/78/events", got_record, &g, NULL, err,
				   sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "no session on cgroup 78"), "%s", err);
}
