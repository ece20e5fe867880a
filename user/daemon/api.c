// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir daemon's API: HTTP/1.1 over a unix socket, served by libmicrohttpd
 * on one internal thread, bodies in and out as JSON through json-c.
 *
 * Who may ask: the socket is root's, mode 0600, and every request is
 * checked again with SO_PEERCRED (uid 0 only) and refused when the peer
 * lives in a cgroup the daemon enforces, so a process inside can never
 * change its own enforcement, whatever its uid. The check is made on the
 * headers, before the body is read. One handler per resource; the handlers
 * (api_route) know nothing of the transport, so the unit tests drive them
 * with peers of their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <json-c/json.h>
#include "httpd.h"

#include "api.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "session.h"
#include "weir.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define API_ERR_LEN 1024
/* A new attachment's body may carry a policy's text (weir run sends the
 * file it read; a million inline rules are 22 MB): any policy weir loads
 * (POLICY_MAX_SIZE), each byte at most two in JSON ("\n", "\/"), and the
 * other fields. */
#define API_ATTACH_BODY_MAX (2 * (size_t)POLICY_MAX_SIZE + API_BODY_MAX)

static struct MHD_Daemon *api_httpd;
static char api_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static dev_t api_dev;
static ino_t api_ino;

/* --- replies ---------------------------------------------------------------- */

static void reply_json(struct api_reply *r, unsigned int status, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
	int n = s ? asprintf(&r->body, "%s\n", s) : -1;

	r->status = n < 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : status;
	r->type = "application/json";
	r->len = n < 0 ? 0 : (size_t)n;
	if (n < 0)
		r->body = NULL;
	json_object_put(o);
}

__attribute__((format(printf, 3, 4))) static void reply_error(struct api_reply *r,
							      unsigned int status,
							      const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[API_ERR_LEN + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	reply_json(r, status, o);
}

/* A core call's -errno as HTTP: the design's table (docs/daemon.md). */
static void reply_errno(struct api_reply *r, int ret, const char *err)
{
	unsigned int status;

	switch (ret) {
	case -EINVAL:
	case -E2BIG: /* a policy that does not compile: too many port ranges */
		status = MHD_HTTP_BAD_REQUEST;
		break;
	case -ENOENT:
		status = MHD_HTTP_NOT_FOUND;
		break;
	case -EEXIST:
		status = MHD_HTTP_CONFLICT;
		break;
	case -EPERM:
	case -EACCES:
		status = MHD_HTTP_FORBIDDEN;
		break;
	default:
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	reply_error(r, status, "%s", *err ? err : strerror(-ret));
}

/* --- request bodies ------------------------------------------------------------ */

static const char *json_type_said(json_object *o)
{
	return o ? json_type_to_name(json_object_get_type(o)) : "null";
}

/* The body as one JSON object, or NULL with a 400 reply saying where it broke. */
static json_object *parse_object(const char *body, size_t len, struct api_reply *r)
{
	struct json_tokener *tok = json_tokener_new();
	enum json_tokener_error e;
	json_object *o;
	size_t end;

	if (!tok) {
		reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, body, len);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (e == json_tokener_continue)
		reply_error(r, MHD_HTTP_BAD_REQUEST, "bad JSON: the body ends inside a value");
	else if (e != json_tokener_success)
		reply_error(r, MHD_HTTP_BAD_REQUEST, "bad JSON at byte %zu: %s", end,
			    json_tokener_error_desc(e));
	else if ((end += strspn(body + end, " \t\r\n")) < len)
		reply_error(r, MHD_HTTP_BAD_REQUEST, "bad JSON at byte %zu: more after the value",
			    end);
	else if (!json_object_is_type(o, json_type_object))
		reply_error(r, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object, not %s",
			    json_type_said(o));
	else
		return o;
	json_object_put(o);
	return NULL;
}

struct field {
	const char *key;
	const char **val; /* NULL when absent or null */
	size_t max; /* longest value, bytes */
	bool required;
};

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static struct field *field_find(struct field *f, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(f[i].key, key))
			return &f[i];
	return NULL;
}

/* One string field's value, checked: 0, or -EINVAL with a 400 reply. */
static int field_take(struct field *f, json_object *v, struct api_reply *r)
{
	const char *s;

	if (!v)
		return 0; /* "name": null is the field left out */
	if (!json_object_is_type(v, json_type_string)) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'%s' must be a string, not %s", f->key,
			    json_type_said(v));
		return -EINVAL;
	}
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v) || has_control(s)) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'%s' contains a control character", f->key);
		return -EINVAL;
	}
	if (strlen(s) > f->max) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'%s' is longer than %zu bytes", f->key,
			    f->max);
		return -EINVAL;
	}
	*f->val = s;
	return 0;
}

/* The fields of BODY into F: strings only, no unknown key, required ones there. */
static int get_fields(json_object *body, struct field *f, size_t n, const char *known,
		      struct api_reply *r)
{
	struct field *fi;
	size_t i;

	json_object_object_foreach(body, key, val)
	{
		fi = field_find(f, n, key);
		if (!fi) {
			reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown field '%s' (known: %s)", key,
				    known);
			return -EINVAL;
		}
		if (field_take(fi, val, r))
			return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (f[i].required && (!*f[i].val || !**f[i].val)) {
			reply_error(r, MHD_HTTP_BAD_REQUEST, "'%s' is required", f[i].key);
			return -EINVAL;
		}
	}
	return 0;
}

/* --- handlers ------------------------------------------------------------------- */

static json_object *attach_json(const struct attach_info *a)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "cgroup", json_object_new_string(a->cgroup));
	json_object_object_add(o, "cgroup_id", json_object_new_uint64(a->cgroup_id));
	json_object_object_add(o, "label", json_object_new_string(a->label));
	json_object_object_add(o, "policy", json_object_new_string(a->policy));
	json_object_object_add(o, "generation", json_object_new_uint64(a->generation));
	json_object_object_add(o, "allowed", json_object_new_uint64(a->allowed));
	json_object_object_add(o, "denied", json_object_new_uint64(a->denied));
	json_object_object_add(o, "would_deny", json_object_new_uint64(a->would_deny));
	json_object_object_add(o, "budget_refused", json_object_new_uint64(a->budget_refused));
	json_object_object_add(o, "dns_port", json_object_new_int(a->dns_port));
	json_object_object_add(o, "state", json_object_new_string(a->state));
	json_object_object_add(o, "holders", json_object_new_int(a->holders));
	return o;
}

static void h_health(struct daemon *d, const struct api_peer *peer, json_object *body,
		     struct api_reply *r)
{
	json_object *o = json_object_new_object();
	struct attach_info *list = NULL;
	size_t n = daemon_list(d, &list);

	free(list);
	json_object_object_add(o, "version", json_object_new_string(weir_version()));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "attachments", json_object_new_uint64(n));
	json_object_object_add(o, "events_lost", json_object_new_uint64(daemon_events_lost(d)));
	reply_json(r, MHD_HTTP_OK, o);
}

static void h_list(struct daemon *d, const struct api_peer *peer, json_object *body,
		   struct api_reply *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct attach_info *list = NULL;
	size_t i, n = daemon_list(d, &list);

	for (i = 0; i < n; i++)
		json_object_array_add(a, attach_json(&list[i]));
	free(list);
	json_object_object_add(o, "attachments", a);
	json_object_object_add(o, "events_lost", json_object_new_uint64(daemon_events_lost(d)));
	reply_json(r, MHD_HTTP_OK, o);
}

/* --- weir run's inline attach ------------------------------------------------ */

#define INLINE_KNOWN "cgroup, name, netns, policy_yaml, policy_source, allow, audit, session, passed"
static const char *const inline_known[] = { "cgroup",	     "name",  "netns",	 "policy_yaml",
					    "policy_source", "allow", "audit",	 "session",
					    "passed" };

/* A boolean field, or absent: 0, else -EINVAL with a 400 reply. */
static int bool_take(json_object *body, const char *key, bool *out, struct api_reply *r)
{
	json_object *v;

	if (!json_object_object_get_ex(body, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'%s' must be true or false, not %s", key,
			    json_type_said(v));
		return -EINVAL;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

/* "allow": an array of --allow rules (strings); pointers into BODY. */
static int allow_take(json_object *body, struct attach_inline *req, struct api_reply *r)
{
	json_object *a, *v;
	size_t i, n;

	if (!json_object_object_get_ex(body, "allow", &a) || !a)
		return 0;
	if (!json_object_is_type(a, json_type_array)) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'allow' must be an array of rules, not %s",
			    json_type_said(a));
		return -EINVAL;
	}
	n = json_object_array_length(a);
	req->allow = calloc(n ?: 1, sizeof(*req->allow));
	if (!req->allow)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_string) || has_control(json_object_get_string(v))) {
			reply_error(r, MHD_HTTP_BAD_REQUEST, "'allow'[%zu] must be a rule (a string)",
				    i);
			return -EINVAL;
		}
		((const char **)req->allow)[req->n_allow++] = json_object_get_string(v);
	}
	return 0;
}

/*
 * "passed": the socket cookies (decimal strings) of the descriptors weir
 * run hands its command on purpose (--pass-fd, --allow-socket-stdio), which
 * the BPF LSM is to let through (the daemon never sees the descriptors).
 */
static int passed_take(json_object *body, struct attach_inline *req, struct api_reply *r)
{
	json_object *a, *v;
	const char *s;
	char *end;
	size_t i, n;

	if (!json_object_object_get_ex(body, "passed", &a) || !a)
		return 0;
	if (!json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) > ATTACH_PASSED_MAX) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'passed' must be an array of at most %d "
			    "socket cookies", ATTACH_PASSED_MAX);
		return -EINVAL;
	}
	req->passed = calloc(n ?: 1, sizeof(*req->passed));
	if (!req->passed)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		errno = 0;
		((__u64 *)req->passed)[i] = strtoull(s, &end, 10);
		if (!*s || *end || errno || !req->passed[i]) {
			reply_error(r, MHD_HTTP_BAD_REQUEST, "'passed'[%zu] must be a socket cookie "
				    "(a decimal string)", i);
			return -EINVAL;
		}
		req->n_passed++;
	}
	return 0;
}

/* The policy's text: any bytes but NUL (YAML's own errors come from the parser). */
static int yaml_take(json_object *body, struct attach_inline *req, struct api_reply *r)
{
	json_object *v;

	json_object_object_get_ex(body, "policy_yaml", &v);
	if (!json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'policy_yaml' must be the policy's text");
		return -EINVAL;
	}
	req->policy_yaml = json_object_get_string(v);
	req->policy_len = json_object_get_string_len(v);
	return 0;
}

/* Every key of BODY is one this request knows. */
static int inline_keys(json_object *body, struct api_reply *r)
{
	size_t i;

	json_object_object_foreach(body, key, val)
	{
		(void)val;
		for (i = 0; i < sizeof(inline_known) / sizeof(*inline_known); i++)
			if (!strcmp(key, inline_known[i]))
				break;
		if (i == sizeof(inline_known) / sizeof(*inline_known)) {
			reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown field '%s' (known: %s)", key,
				    INLINE_KNOWN);
			return -EINVAL;
		}
	}
	return 0;
}

static void h_attach_inline(struct daemon *d, const struct api_peer *peer, json_object *body,
			    struct api_reply *r)
{
	struct attach_inline req = { .peer_pid = peer->pid, .peer_uid = peer->uid,
				     .policy_source = "inline" };
	struct field f[] = {
		{ "cgroup", &req.cgroup, sizeof(((struct attach_info *)0)->cgroup) - 1, true },
		{ "name", &req.label, sizeof(((struct attach_info *)0)->label) - 1, false },
		{ "netns", &req.netns, 4095, false },
		{ "policy_source", &req.policy_source, 4095, false },
	};
	char err[API_ERR_LEN] = "";
	struct attach_info *info = NULL;
	int ret;

	ret = inline_keys(body, r);
	json_object_object_foreach(body, key, val)
	{
		struct field *fi = field_find(f, 4, key);

		if (!ret && fi)
			ret = field_take(fi, val, r);
	}
	if (!ret && (!req.cgroup || !*req.cgroup)) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'cgroup' is required");
		ret = -EINVAL;
	}
	ret = ret ?: yaml_take(body, &req, r);
	ret = ret ?: bool_take(body, "audit", &req.audit, r);
	ret = ret ?: bool_take(body, "session", &req.session, r);
	ret = ret ?: allow_take(body, &req, r);
	ret = ret ?: passed_take(body, &req, r);
	req.attribute_all = req.session; /* its client may keep an events file */
	if (!ret && !(info = calloc(1, sizeof(*info))))
		ret = -ENOMEM;
	if (ret == -ENOMEM)
		reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	if (!ret) {
		ret = daemon_attach_inline(d, &req, info, err, sizeof(err));
		if (ret < 0)
			reply_errno(r, ret, err);
		else
			reply_json(r, MHD_HTTP_CREATED, attach_json(info));
	}
	free((void *)req.allow);
	free((void *)req.passed);
	free(info);
}

static void h_attach(struct daemon *d, const struct api_peer *peer, json_object *body,
		     struct api_reply *r)
{
	struct attach_req req = { .peer_pid = peer->pid, .peer_uid = peer->uid };
	struct field f[] = {
		{ "cgroup", &req.cgroup, sizeof(((struct attach_info *)0)->cgroup) - 1, true },
		{ "policy", &req.policy, 4095, true },
		{ "name", &req.label, sizeof(((struct attach_info *)0)->label) - 1, false },
		{ "netns", &req.netns, 4095, false },
		{ "holder", &req.holder, 255, false },
		{ "root", &req.root, 4095, false },
		{ "nameservers", &req.nameservers, 511, false },
	};
	char err[API_ERR_LEN] = "";
	struct attach_info *info;
	int ret;

	if (json_object_object_get_ex(body, "policy_yaml", NULL))
		return h_attach_inline(d, peer, body, r);
	if (get_fields(body, f, 7, "cgroup, policy, name, netns, holder, root, nameservers", r))
		return;
	info = calloc(1, sizeof(*info));
	if (!info) {
		reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	ret = daemon_attach(d, &req, info, err, sizeof(err));
	if (ret < 0)
		reply_errno(r, ret, err);
	else /* existed: that cgroup had that policy already */
		reply_json(r, info->existed ? MHD_HTTP_OK : MHD_HTTP_CREATED, attach_json(info));
	free(info);
}

static void released(void *ctx, const char *cgroup, bool detached)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "cgroup", json_object_new_string(cgroup));
	json_object_object_add(o, "detached", json_object_new_boolean(detached));
	json_object_array_add(ctx, o);
}

/* A container's release: {"holder", "released": [{"cgroup", "detached"}]}. */
static void h_release(struct daemon *d, const char *holder, const char *cgroup,
		      struct api_reply *r)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	char err[API_ERR_LEN] = "";
	int ret;

	ret = daemon_release(d, holder, cgroup, released, a, err, sizeof(err));
	if (ret < 0) {
		json_object_put(a);
		json_object_put(o);
		reply_errno(r, ret, err);
		return;
	}
	json_object_object_add(o, "holder", json_object_new_string(holder));
	json_object_object_add(o, "released", a);
	reply_json(r, MHD_HTTP_OK, o);
}

static void h_detach(struct daemon *d, const struct api_peer *peer, json_object *body,
		     struct api_reply *r)
{
	const char *cgroup = NULL, *holder = NULL;
	struct field f[] = { { "cgroup", &cgroup, 4095, false }, { "holder", &holder, 255, false } };
	char err[API_ERR_LEN] = "";
	json_object *o;
	int ret;

	if (get_fields(body, f, 2, "cgroup, holder", r))
		return;
	if (holder && *holder)
		return h_release(d, holder, cgroup, r);
	if (!cgroup || !*cgroup) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "'cgroup' is required");
		return;
	}
	ret = daemon_detach(d, cgroup, err, sizeof(err));
	if (ret < 0) {
		reply_errno(r, ret, err);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "cgroup", json_object_new_string(cgroup));
	json_object_object_add(o, "detached", json_object_new_boolean(1));
	reply_json(r, MHD_HTTP_OK, o);
}

/* One line of daemon_reload()'s report, "NAME\tGENERATION\tSTATE". */
static json_object *policy_json(char *line)
{
	char *gen = strchr(line, '\t'), *state = gen ? strchr(gen + 1, '\t') : NULL;
	json_object *o = json_object_new_object();

	if (!state) { /* not the agreed form: the line as the state */
		json_object_object_add(o, "state", json_object_new_string(line));
		return o;
	}
	*gen++ = '\0';
	*state++ = '\0';
	json_object_object_add(o, "name", json_object_new_string(line));
	json_object_object_add(o, "generation", json_object_new_uint64(strtoull(gen, NULL, 10)));
	json_object_object_add(o, "state", json_object_new_string(state));
	return o;
}

static void h_reload(struct daemon *d, const struct api_peer *peer, json_object *body,
		     struct api_reply *r)
{
	json_object *o, *a;
	char *report, *line, *save;
	int ret;

	if (body && get_fields(body, NULL, 0, "none", r))
		return;
	report = calloc(1, 65536);
	if (!report) {
		reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	ret = daemon_reload(d, report, 65536);
	if (ret < 0) {
		reply_errno(r, ret, report);
		free(report);
		return;
	}
	a = json_object_new_array();
	for (line = strtok_r(report, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		json_object_array_add(a, policy_json(line));
	free(report);
	o = json_object_new_object();
	json_object_object_add(o, "policies", a);
	reply_json(r, MHD_HTTP_OK, o);
}

static void h_metrics(struct daemon *d, const struct api_peer *peer, json_object *body,
		      struct api_reply *r)
{
	if (metrics_render(d, &r->body, &r->len)) {
		reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	r->status = MHD_HTTP_OK;
	r->type = METRICS_CONTENT_TYPE;
}

enum body_kind { BODY_NONE, BODY_OPTIONAL, BODY_REQUIRED };

struct route {
	const char *path;
	const char *method;
	enum body_kind body;
	void (*fn)(struct daemon *d, const struct api_peer *peer, json_object *body,
		   struct api_reply *r);
};

static const struct route routes[] = {
	{ "/v1/health", "GET", BODY_NONE, h_health },
	{ "/v1/attachments", "GET", BODY_NONE, h_list },
	{ "/v1/attachments", "POST", BODY_REQUIRED, h_attach },
	{ "/v1/detach", "POST", BODY_REQUIRED, h_detach },
	{ "/v1/reload", "POST", BODY_OPTIONAL, h_reload },
	{ "/metrics", "GET", BODY_NONE, h_metrics },
};
#define ROUTES (sizeof(routes) / sizeof(routes[0]))

/* The methods PATH takes, for 405's Allow header ("" when it is unknown). */
static const char *route_allow(const char *path)
{
	bool get = false, post = false;
	size_t i;

	for (i = 0; i < ROUTES; i++) {
		if (strcmp(routes[i].path, path))
			continue;
		get |= !strcmp(routes[i].method, "GET");
		post |= !strcmp(routes[i].method, "POST");
	}
	return get && post ? "GET, HEAD, POST" : get ? "GET, HEAD" : post ? "POST" : "";
}

static const struct route *route_find(const char *method, const char *path)
{
	size_t i;

	if (!strcmp(method, "HEAD"))
		method = "GET"; /* libmicrohttpd leaves the body out */
	for (i = 0; i < ROUTES; i++)
		if (!strcmp(routes[i].path, path) && !strcmp(routes[i].method, method))
			return &routes[i];
	return NULL;
}

static void api_route(struct daemon *d, const struct api_peer *peer, const char *method,
		      const char *url, const char *body, size_t len, struct api_reply *r)
{
	const struct route *rt = route_find(method, url);
	json_object *o = NULL;

	if (!rt) {
		r->allow = route_allow(url);
		if (*r->allow)
			reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED,
				    "%s %s: method not allowed (%s)", method, url, r->allow);
		else
			reply_error(r, MHD_HTTP_NOT_FOUND,
				    "no such endpoint: %s (see docs/daemon.md)", url);
		return;
	}
	if (rt->body == BODY_REQUIRED || (rt->body == BODY_OPTIONAL && len)) {
		o = parse_object(body, len, r);
		if (!o)
			return;
	}
	rt->fn(d, peer, o, r);
	json_object_put(o);
}

/* --- who asks ------------------------------------------------------------------- */

/* Refused peers get a 403 in R: not root, inside an attachment, or gone. */
static bool api_peer_refused(struct daemon *d, const struct api_peer *peer, struct api_reply *r)
{
	if (peer->uid != 0) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "only root may use weir's API (the caller is "
			    "uid %u)", (unsigned int)peer->uid);
		return true;
	}
	if (daemon_peer_enforced(d, peer->pid)) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "refused: the caller (pid %d) is inside a "
			    "cgroup weir enforces: nothing enforced may use weir's API",
			    (int)peer->pid);
		return true;
	}
	/* The check read /proc/PID: if that process is gone, PID may now be
	 * another's, and the answer says nothing of the caller. */
	if (peer->pidfd >= 0 && syscall(SYS_pidfd_send_signal, peer->pidfd, 0, NULL, 0) &&
	    errno == ESRCH) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "refused: the caller (pid %d) has exited",
			    (int)peer->pid);
		return true;
	}
	return false;
}

void api_dispatch(struct daemon *d, const struct api_peer *peer, const char *method,
		  const char *url, const char *body, size_t body_len, struct api_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	if (!api_peer_refused(d, peer, reply))
		api_route(d, peer, method, url, body, body_len, reply);
	metrics_count_request(reply->status);
}

static int api_peer_of(struct MHD_Connection *conn, struct api_peer *peer)
{
	const union MHD_ConnectionInfo *ci;
	struct ucred cred;
	socklen_t n = sizeof(cred);
	int fd;

	peer->pidfd = -1;
	ci = mhd.get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return -EBADF;
	fd = ci->connect_fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n))
		return -errno;
	peer->pid = cred.pid;
	peer->uid = cred.uid;
	peer->gid = cred.gid;
	n = sizeof(peer->pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &peer->pidfd, &n))
		peer->pidfd = -1; /* before 6.5: the pid alone */
	return 0;
}

/* --- the transport ------------------------------------------------------------------ */

struct api_req {
	struct api_peer peer;
	char *body;
	size_t len, cap;
	size_t max; /* the largest body this request may have */
	bool too_big;
};

static enum MHD_Result api_queue(struct MHD_Connection *conn, struct api_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!r->body) { /* out of memory on the way: say 500 without a body */
		r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		r->len = 0;
	}
	resp = mhd.create_response_from_buffer(r->len, r->body ? r->body : (void *)"",
					       r->body ? MHD_RESPMEM_MUST_FREE :
							 MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(r->body);
		return MHD_NO;
	}
	if (r->type)
		mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type);
	if (r->allow && *r->allow)
		mhd.add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	ret = mhd.queue_response(conn, r->status, resp);
	mhd.destroy_response(resp);
	return ret;
}

static enum MHD_Result api_too_big(struct MHD_Connection *conn, const struct api_req *q)
{
	struct api_reply r = { 0 };

	reply_error(&r, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is larger than %zu bytes",
		    q->max);
	metrics_count_request(r.status);
	return api_queue(conn, &r);
}

/* The headers are in: who asks, and how much they mean to send. */
static enum MHD_Result api_begin(struct daemon *d, struct MHD_Connection *conn, const char *url,
				 const char *method, struct api_req *q)
{
	const char *cl = mhd.lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	struct api_reply r = { 0 };
	int ret = api_peer_of(conn, &q->peer);

	if (ret) {
		pr_warn("api: cannot read a caller's credentials: %s\n", strerror(-ret));
		return MHD_NO; /* nobody unknown gets an answer */
	}
	if (api_peer_refused(d, &q->peer, &r)) {
		metrics_count_request(r.status);
		return api_queue(conn, &r);
	}
	q->max = !strcmp(method, "POST") && !strcmp(url, "/v1/attachments") ?
			 API_ATTACH_BODY_MAX :
			 API_BODY_MAX;
	/* A body somewhat too large is read and dropped, so that the client,
	 * still sending, gets the 413 and not a reset; an absurd one (64
	 * times the most, or more than a policy's) is answered at once, and
	 * the connection closed. */
	if (cl && strtoull(cl, NULL, 10) > (q->max == API_BODY_MAX ? 64 * q->max : 2 * q->max))
		return api_too_big(conn, q);
	return MHD_YES;
}

static enum MHD_Result api_upload(struct api_req *q, const char *data, size_t *len)
{
	char *body;

	if (!q->too_big && q->len + *len > q->max) {
		q->too_big = true; /* the rest is read and dropped: the 413 comes at the end */
		free(q->body);
		q->body = NULL;
	}
	if (!q->too_big && q->len + *len + 1 > q->cap) {
		/* doubled: a policy's 22 MB come in 16 KiB pieces, and a realloc
		 * for each one copied the body over and over */
		size_t cap = q->cap ? q->cap : 4096;

		while (cap < q->len + *len + 1)
			cap *= 2;
		body = realloc(q->body, cap);
		if (!body)
			return MHD_NO;
		q->body = body;
		q->cap = cap;
	}
	if (!q->too_big) {
		memcpy(q->body + q->len, data, *len);
		q->len += *len;
		q->body[q->len] = '\0';
	}
	*len = 0;
	return MHD_YES;
}

/* GET /v1/attachments/CGROUP_ID/events: a session's records, as they come. */
static bool stream_url(const char *url, __u64 *cgid)
{
	char tail[8];
	unsigned long long id;
	int n = 0;

	if (sscanf(url, "/v1/attachments/%llu/%7[a-z]%n", &id, tail, &n) != 2 || url[n] ||
	    strcmp(tail, "events"))
		return false;
	*cgid = id;
	return true;
}

static enum MHD_Result api_stream(struct daemon *d, struct MHD_Connection *conn,
				  const char *method, __u64 cgid)
{
	struct session *s = NULL;
	struct api_reply r = { 0 };
	int ret = -ENOENT;

	if (strcmp(method, "GET"))
		reply_error(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s: method not allowed (GET)", method);
	else if (!(s = daemon_session(d, cgid)))
		reply_error(&r, MHD_HTTP_NOT_FOUND, "no session on cgroup %llu (attach it with "
			    "\"session\": true)", (unsigned long long)cgid);
	else if ((ret = session_serve(s, conn)))
		reply_error(&r, ret == -EBUSY ? MHD_HTTP_CONFLICT : MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "the session of cgroup %llu %s", (unsigned long long)cgid,
			    ret == -EBUSY ? "is read already" : "cannot be served");
	session_put(s);
	metrics_count_request(ret ? r.status : MHD_HTTP_OK);
	if (r.status == MHD_HTTP_METHOD_NOT_ALLOWED)
		r.allow = "GET";
	return ret ? api_queue(conn, &r) : MHD_YES;
}

static enum MHD_Result api_handler(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version, const char *upload,
				   size_t *upload_len, void **req_cls)
{
	struct api_req *q = *req_cls;
	struct api_reply r = { 0 };
	__u64 cgid;

	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		q->peer.pidfd = -1;
		*req_cls = q;
		return api_begin(cls, conn, url, method, q);
	}
	if (*upload_len)
		return api_upload(q, upload, upload_len);
	if (q->too_big)
		return api_too_big(conn, q);
	if (stream_url(url, &cgid))
		return api_stream(cls, conn, method, cgid);
	api_route(cls, &q->peer, method, url, q->body ? q->body : "", q->len, &r);
	metrics_count_request(r.status);
	if (r.status >= 500)
		pr_warn("api: %s %s: %.*s\n", method, url, (int)(r.len ? r.len - 1 : 0),
			r.body ? r.body : "");
	return api_queue(conn, &r);
}

static void api_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			  enum MHD_RequestTerminationCode why)
{
	struct api_req *q = *req_cls;

	if (!q)
		return;
	if (q->peer.pidfd >= 0)
		close(q->peer.pidfd);
	free(q->body);
	free(q);
	*req_cls = NULL;
}

void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pr_warn("http: %s\n", msg);
}

/* --- the socket --------------------------------------------------------------------- */

/* mkdir -p of PATH's directory, 0755 (/run/weir after a reboot). */
static int api_mkdirs(const char *path)
{
	char dir[sizeof(api_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	for (p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* A socket left at PATH: a live daemon's is kept (-EADDRINUSE), a dead one's removed. */
static int api_clear_stale(const char *path, const struct sockaddr_un *sa, char *err,
			   size_t len)
{
	struct stat st;
	int fd, ret;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, len, "%s exists and is not a socket (not removing it)", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : 0;
	close(fd);
	if (ret == 0 || ret == -EAGAIN) { /* EAGAIN: its backlog is full, it lives */
		snprintf(err, len, "a daemon already answers on %s", path);
		return -EADDRINUSE;
	}
	if (ret != -ECONNREFUSED) {
		snprintf(err, len, "%s: cannot tell whether a daemon answers: %s", path,
			 strerror(-ret));
		return ret;
	}
	return unlink(path) && errno != ENOENT ? -errno : 0;
}

/*
 * Root's, 0600, from its birth: bind() makes the file with the umask's
 * mode, so the umask is 0177 for that one call, and nothing is changed by
 * path afterwards (a chmod() or chown() by path would follow a symlink a
 * user swapped in, in a directory the user can write). lstat() then checks
 * what bind() made. Until listen() a connect() is refused anyway. (The
 * daemon is root; the unit tests' servers, under any uid, keep their own.)
 */
static int api_bind(int fd, const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	mode_t old = umask(0177);
	int ret = 0;

	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		ret = -errno;
	umask(old);
	if (ret)
		return ret;
	if (lstat(path, &st) || listen(fd, 64))
		ret = -errno;
	else if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0177))
		ret = -EPERM; /* not what bind() made: someone replaced it */
	if (ret) {
		unlink(path);
		return ret;
	}
	api_dev = st.st_dev;
	api_ino = st.st_ino;
	return 0;
}

/*
 * Before the daemon loads and pins anything: a second daemon started on a
 * live daemon's socket (with another state dir and pin root) would
 * otherwise pin a fresh set of maps, then refuse, and leave them behind.
 */
int api_socket_free(const char *path, char *err, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/') {
		snprintf(err, len, "--socket %s: an absolute path of at most %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	*err = '\0';
	ret = api_clear_stale(path, &sa, err, len);
	if (ret && !*err)
		snprintf(err, len, "%s: %s", path, strerror(-ret));
	return ret;
}

static int api_listen(const char *path, char *err, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/') {
		snprintf(err, len, "--socket %s: an absolute path of at most %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -EINVAL;
	}
	strcpy(sa.sun_path, path);
	ret = api_mkdirs(path);
	if (ret) {
		snprintf(err, len, "cannot make the directory of %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = api_clear_stale(path, &sa, err, len);
	if (ret) {
		if (!*err)
			snprintf(err, len, "%s: %s", path, strerror(-ret));
		return ret;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = api_bind(fd, path, &sa);
	if (ret) {
		snprintf(err, len, "cannot listen on %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	snprintf(api_path, sizeof(api_path), "%s", path);
	return fd;
}

int api_start(struct daemon *d, const char *socket_path, const char *metrics_addr, char *err,
	      size_t len)
{
	int fd, ret;

	*err = '\0';
	ret = httpd_load(err, len);
	if (ret)
		return ret;
	if (metrics_addr) {
		ret = metrics_start(d, metrics_addr, err, len);
		if (ret)
			return ret;
	}
	fd = api_listen(socket_path, err, len);
	if (fd < 0) {
		metrics_stop();
		return fd;
	}
	/* epoll: past FD_SETSIZE, where a daemon with hundreds of attachments is */
	api_httpd = mhd.start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
					     MHD_ALLOW_SUSPEND_RESUME, 0, NULL,
				     NULL, api_handler, d, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log,
				     NULL, MHD_OPTION_LISTEN_SOCKET, fd,
				     MHD_OPTION_NOTIFY_COMPLETED, api_completed, NULL,
				     MHD_OPTION_CONNECTION_TIMEOUT, 30U,
				     MHD_OPTION_CONNECTION_LIMIT, 64U,
				     /* A session's chunks come out of this (32 KiB
				      * by default): a burst goes in big pieces. */
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SESSION_CHUNK_MAX * 2,
				     MHD_OPTION_END);
	if (!api_httpd) {
		snprintf(err, len, "%s: the HTTP server did not start", socket_path);
		close(fd);
		unlink(socket_path);
		metrics_stop();
		return -EIO;
	}
	return 0;
}

void api_stop(void)
{
	struct stat st;

	session_stop_all(); /* none may stay suspended */
	if (api_httpd)
		mhd.stop_daemon(api_httpd);
	api_httpd = NULL;
	/* a daemon started since on the same path has its own socket there */
	if (*api_path && !stat(api_path, &st) && st.st_dev == api_dev && st.st_ino == api_ino)
		unlink(api_path);
	*api_path = '\0';
	metrics_stop();
}
