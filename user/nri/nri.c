// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir's NRI plugin (nri.h): one connection to the runtime at a time, one
 * thread reading it; the runtime sends one request at a time. What the
 * runtime sends is decoded with the messages of nri.proto (protobuf-c);
 * what is not understood is answered "unimplemented", never "ok".
 *
 * Fail closed: an annotated pod whose bind fails gets an error answer to
 * RunPodSandbox, and the runtime then fails the pod (its sandbox is torn
 * down; the kubelet tries again). The runtime gives a plugin a deadline
 * (2 s unless configured) and a plugin that misses it is dropped, as if it
 * had never been there: the bind runs in a thread of its own and the
 * answer goes back before the deadline either way; a bind that finishes
 * after its pod was failed is released at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "bind.h"
#include "log.h"
#include "nri.h"
#include "nri.pb-c.h"
#include "wire.h"

/* NRI's service and method names: the wire interface (api.proto). */
#define SVC_PLUGIN "nri.pkg.api.v1alpha1.Plugin"
#define SVC_RUNTIME "nri.pkg.api.v1alpha1.Runtime"

/* NRI's events (enum Event) and gRPC's status codes. */
enum { EV_RUN_POD_SANDBOX = 1, EV_STOP_POD_SANDBOX = 2, EV_REMOVE_POD_SANDBOX = 3 };
enum { CODE_INVALID_ARGUMENT = 3, CODE_FAILED_PRECONDITION = 9, CODE_UNIMPLEMENTED = 12,
       CODE_INTERNAL = 13 };

#define EVENT_BIT(e) (1 << ((e) - 1))
#define REGISTER_TIMEOUT_MS 5000 /* NRI's default for the whole registration */
#define REQUEST_TIMEOUT_MS 2000 /* NRI's default per request, until Configure says */
#define ERR_LEN 1024

struct session {
	const struct nri_opts *o;
	struct wire w;
	bool registered;
	int request_ms; /* the runtime's deadline for one request */
	uint32_t stream; /* of the request being answered */
	char runtime[128];
};

/* --- cgroups --------------------------------------------------------------- */

static bool has_dotdot(const char *p)
{
	const char *c;

	for (c = p; (c = strstr(c, "..")); c += 2)
		if ((c == p || c[-1] == '/') && (c[2] == '\0' || c[2] == '/'))
			return true;
	return false;
}

/* systemd's slice "a-b-c.slice" is a.slice/a-b.slice/a-b-c.slice. */
static int expand_slice(const char *slice, char *out, size_t len)
{
	size_t n = strlen(slice) - strlen(".slice"), i, used = 0;
	int k;

	if (!n || slice[0] == '-' || slice[n - 1] == '-' || strstr(slice, "--"))
		return -EINVAL;
	for (i = 0; i <= n; i++) {
		if (i < n && slice[i] != '-')
			continue;
		k = snprintf(out + used, len - used, "%s%.*s.slice", used ? "/" : "", (int)i, slice);
		if (k < 0 || (size_t)k >= len - used)
			return -ENAMETOOLONG;
		used += k;
	}
	return 0;
}

static bool is_slice_name(const char *s)
{
	size_t n = strlen(s);

	return !strchr(s, '/') && n > 6 && !strcmp(s + n - 6, ".slice");
}

int nri_pod_cgroup(const char *cgroup_parent, const char *cgroups_path, char *out, size_t len,
		   char *err, size_t errlen)
{
	char src[4096], *cut;
	int ret;

	if (cgroup_parent && *cgroup_parent) {
		snprintf(src, sizeof(src), "%s", cgroup_parent);
	} else if (cgroups_path && *cgroups_path) {
		/* The sandbox's own cgroup: its parent is the pod's. */
		snprintf(src, sizeof(src), "%s", cgroups_path);
		cut = strchr(src, ':'); /* systemd's "SLICE:PREFIX:NAME" */
		if (!cut)
			cut = strrchr(src, '/');
		if (!cut || cut == src) {
			snprintf(err, errlen, "sandbox cgroups path \"%.300s\": no parent in it",
				 cgroups_path);
			return -EINVAL;
		}
		*cut = '\0';
	} else {
		snprintf(err, errlen, "the runtime gave the pod no cgroup parent (nor a sandbox "
			 "cgroups path)");
		return -EINVAL;
	}
	if (is_slice_name(src)) {
		ret = expand_slice(src, out, len);
		if (ret)
			snprintf(err, errlen, "cgroup parent \"%.300s\": %s", src,
				 ret == -EINVAL ? "not a systemd slice name" : "too long");
		return ret;
	}
	if (has_dotdot(src) || strstr(src, "//") || !src[strspn(src, "/")]) {
		snprintf(err, errlen, "cgroup parent \"%.300s\": not a cgroup below the root", src);
		return -EINVAL;
	}
	/* cgroupfs's "/kubepods/..." is below the cgroup2 mount: relative. */
	if ((size_t)snprintf(out, len, "%s", src + strspn(src, "/")) >= len) {
		snprintf(err, errlen, "cgroup parent \"%.300s\": too long", src);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* --- a bind with a deadline ---------------------------------------------- */

struct bind_job {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done, abandoned;
	bool keep_late; /* a bind done after the answer stays (a running pod's) */
	int ret;
	char *socket, *id, *policy, *cgroup, *netns, *name;
	pid_t pid;
	char err[ERR_LEN];
};

static void job_free(struct bind_job *j)
{
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	free(j->socket);
	free(j->id);
	free(j->policy);
	free(j->cgroup);
	free(j->netns);
	free(j->name);
	free(j);
}

static void *bind_thread(void *arg)
{
	struct bind_job *j = arg;
	struct container_bind b = { .id = j->id, .policy = j->policy, .cgroup = j->cgroup,
				    .netns = j->netns, .pid = j->pid, .name = j->name };
	char err[ERR_LEN] = "";
	bool abandoned;
	int ret;

	ret = container_bind(j->socket, &b, err, sizeof(err));
	pthread_mutex_lock(&j->lock);
	j->ret = ret;
	snprintf(j->err, sizeof(j->err), "%s", err);
	j->done = true;
	abandoned = j->abandoned;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
	if (!abandoned)
		return NULL;
	if (ret || j->keep_late) { /* nothing bound; or a running pod's, now bound */
		if (!ret)
			pr_info("nri: pod %s: bound, after the answer to the runtime\n", j->id);
		job_free(j);
		return NULL;
	}
	/* Its pod was failed already: what it bound would have no holder. */
	if (container_release(j->socket, j->id, j->cgroup, err, sizeof(err)))
		pr_warn("nri: pod %s: a bind that came too late could not be released: %s\n",
			j->id, err);
	else
		pr_info("nri: pod %s: its bind came after the pod was failed: released\n", j->id);
	job_free(j);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/*
 * B, given at most MS milliseconds. 0, or -errno and ERR. A bind that
 * finishes later is released, unless KEEP_LATE (a pod that runs already:
 * better bound late than not).
 */
static int bind_by(const char *socket, const struct container_bind *b, int ms, bool keep_late,
		   char *err, size_t errlen)
{
	struct bind_job *j = calloc(1, sizeof(*j));
	pthread_condattr_t ca;
	struct timespec until;
	pthread_t t;
	int ret = 0;

	if (!j || !(j->id = strdup(b->id)) || !(j->policy = strdup(b->policy)) ||
	    !(j->cgroup = strdup(b->cgroup))) {
		if (j) {
			free(j->id);
			free(j->policy);
			free(j);
		}
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	j->socket = dup_or_null(socket);
	j->netns = dup_or_null(b->netns);
	j->name = dup_or_null(b->name);
	j->pid = b->pid;
	j->keep_late = keep_late;
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the wall clock may jump */
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((ret = -pthread_create(&t, NULL, bind_thread, j))) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(-ret));
		job_free(j);
		return ret;
	}
	pthread_detach(t);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j->lock);
	while (!j->done && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&j->cond, &j->lock, &until);
	if (!j->done) {
		j->abandoned = true; /* the thread frees it */
		pthread_mutex_unlock(&j->lock);
		snprintf(err, errlen, "the weir daemon did not answer within %d ms (the runtime's "
			 "deadline)", ms);
		return -ETIMEDOUT;
	}
	pthread_mutex_unlock(&j->lock);
	ret = j->ret;
	snprintf(err, errlen, "%s", j->err);
	job_free(j);
	return ret;
}

/* --- pods ------------------------------------------------------------------- */

static json_object *annotations_of(const Weir__Nri__PodSandbox *pod)
{
	json_object *o = json_object_new_object();
	size_t i;

	for (i = 0; o && i < pod->n_annotations; i++)
		json_object_object_add(o, pod->annotations[i]->key,
				       json_object_new_string(pod->annotations[i]->value));
	return o;
}

/* The pod's network namespace: the runtime's path for it, else its pid's. */
static const char *netns_of(const Weir__Nri__PodSandbox *pod, char *buf, size_t len)
{
	const Weir__Nri__LinuxPodSandbox *l = pod->linux_sandbox;
	size_t i;

	for (i = 0; l && i < l->n_namespaces; i++)
		if (!strcmp(l->namespaces[i]->type, "network") && *l->namespaces[i]->path)
			return l->namespaces[i]->path;
	if (pod->pid) {
		snprintf(buf, len, "/proc/%u/ns/net", pod->pid);
		return buf;
	}
	return NULL; /* the daemon takes a process in the cgroup's */
}

/*
 * Bind POD if it names a policy, in MS milliseconds (RUNNING: the pod runs
 * already, a late bind is kept). 1: bound; 0: nothing to bind (no
 * annotation); else -errno and ERR: the pod must not run.
 */
static int pod_bind(struct session *s, const Weir__Nri__PodSandbox *pod, int ms, bool running,
		    char *err, size_t errlen)
{
	const Weir__Nri__LinuxPodSandbox *l = pod->linux_sandbox;
	char why[ERR_LEN], cgroup[4096], nsbuf[64], label[256];
	struct container_bind b = { 0 };
	json_object *ann = annotations_of(pod);
	const char *policy;
	int ret;

	policy = ann ? container_policy_annotation(ann, why, sizeof(why)) : NULL;
	if (!policy) {
		json_object_put(ann);
		if (!ann || why[0]) {
			snprintf(err, errlen, "pod %.253s/%.253s: %.500s", pod->namespace_,
				 pod->name, ann ? why : strerror(ENOMEM));
			return -EINVAL;
		}
		return 0; /* no weir.dev/policy: not ours */
	}
	ret = nri_pod_cgroup(l ? l->cgroup_parent : NULL, l ? l->cgroups_path : NULL, cgroup,
			     sizeof(cgroup), why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "pod %.253s/%.253s: %.500s", pod->namespace_, pod->name,
			 why);
		json_object_put(ann);
		return ret;
	}
	snprintf(label, sizeof(label), "%s/%s", pod->namespace_, pod->name);
	b.id = pod->id;
	b.policy = policy;
	b.cgroup = cgroup;
	b.netns = netns_of(pod, nsbuf, sizeof(nsbuf));
	b.pid = pod->pid;
	b.name = label;
	ret = bind_by(s->o->socket, &b, ms, running, why, sizeof(why));
	if (ret)
		snprintf(err, errlen, "pod %.255s: policy %.100s on %.300s: %.300s", label, policy,
			 cgroup, why);
	else
		pr_info("nri: pod %s: policy %s on %s\n", label, policy, cgroup);
	json_object_put(ann);
	return ret ?: 1;
}

/* Let go of what POD held (stopped, removed); a pod never bound is fine. */
static void pod_release(struct session *s, const Weir__Nri__PodSandbox *pod, const char *why)
{
	char err[ERR_LEN];
	size_t i;

	if (!pod || !*pod->id)
		return;
	/* A pod's annotations never change: without the key it never held any. */
	for (i = 0; i < pod->n_annotations; i++)
		if (!strcmp(pod->annotations[i]->key, CONTAINER_POLICY_ANNOTATION))
			break;
	if (i == pod->n_annotations)
		return;
	if (container_release(s->o->socket, pod->id, NULL, err, sizeof(err)))
		pr_warn("nri: pod %s/%s (%s): release: %s\n", pod->namespace_, pod->name, why,
			err);
}

/* --- answers ------------------------------------------------------------------ */

static int reply(struct session *s, uint32_t stream, const ProtobufCMessage *payload, int code,
		 const char *message)
{
	Weir__Nri__Response r = WEIR__NRI__RESPONSE__INIT;
	Weir__Nri__Status st = WEIR__NRI__STATUS__INIT;
	uint8_t *pl = NULL, *buf;
	size_t n;
	int ret;

	if (code) {
		st.code = code;
		st.message = (char *)message;
		r.status = &st;
	} else if (payload) {
		r.payload.len = protobuf_c_message_get_packed_size(payload);
		pl = malloc(r.payload.len ?: 1);
		if (!pl)
			return -ENOMEM;
		protobuf_c_message_pack(payload, pl);
		r.payload.data = pl;
	}
	n = weir__nri__response__get_packed_size(&r);
	buf = malloc(n ?: 1);
	if (!buf) {
		free(pl);
		return -ENOMEM;
	}
	weir__nri__response__pack(&r, buf);
	ret = wire_send(&s->w, WIRE_PLUGIN_CONN, stream, WIRE_RESPONSE, 0, buf, n);
	free(buf);
	free(pl);
	return ret;
}

static int reply_empty(struct session *s, uint32_t stream)
{
	Weir__Nri__Empty e = WEIR__NRI__EMPTY__INIT;

	return reply(s, stream, &e.base, 0, NULL);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The time left to answer: the request's own deadline or the runtime's,
 * less a margin for the answer's way back. */
static int budget_ms(const struct session *s, const Weir__Nri__Request *rq)
{
	long long ms = s->request_ms;

	if (rq->timeout_nano > 0 && rq->timeout_nano / 1000000 < ms)
		ms = rq->timeout_nano / 1000000;
	ms = ms * 3 / 4;
	return ms < 100 ? 100 : (int)ms;
}

static int on_configure(struct session *s, const Weir__Nri__Request *rq)
{
	Weir__Nri__ConfigureResponse out = WEIR__NRI__CONFIGURE_RESPONSE__INIT;
	Weir__Nri__ConfigureRequest *in;

	in = weir__nri__configure_request__unpack(NULL, rq->payload.len, rq->payload.data);
	if (!in)
		return reply(s, s->stream, NULL, CODE_INVALID_ARGUMENT,
			     "weir: Configure: not a ConfigureRequest");
	snprintf(s->runtime, sizeof(s->runtime), "%s %s", in->runtime_name, in->runtime_version);
	if (in->request_timeout > 0)
		s->request_ms = in->request_timeout > 3600000 ? 3600000 : (int)in->request_timeout;
	pr_info("nri: configured by %s (NRI %s), request timeout %d ms\n", s->runtime,
		*in->nri_version ? in->nri_version : "version not said", s->request_ms);
	weir__nri__configure_request__free_unpacked(in, NULL);
	out.events = EVENT_BIT(EV_RUN_POD_SANDBOX) | EVENT_BIT(EV_STOP_POD_SANDBOX) |
		     EVENT_BIT(EV_REMOVE_POD_SANDBOX);
	return reply(s, s->stream, &out.base, 0, NULL);
}

/* The pods running when we (re)connect: bind the annotated ones. None can
 * be failed now; one that does not bind is said, and the safety net (a
 * parent cgroup's policy, docs/kubernetes.md) is what holds it. */
static int on_synchronize(struct session *s, const Weir__Nri__Request *rq)
{
	Weir__Nri__SynchronizeResponse out = WEIR__NRI__SYNCHRONIZE_RESPONSE__INIT;
	Weir__Nri__SynchronizeRequest *in;
	char err[ERR_LEN];
	size_t i, bound = 0;
	long long end, left;
	int ret;

	in = weir__nri__synchronize_request__unpack(NULL, rq->payload.len, rq->payload.data);
	if (!in)
		return reply(s, s->stream, NULL, CODE_INVALID_ARGUMENT,
			     "weir: Synchronize: not a SynchronizeRequest");
	/* One deadline for the whole list: binds still going when it comes
	 * finish after the answer (a slow daemon must not get us dropped). */
	end = mono_ms() + budget_ms(s, rq);
	for (i = 0; i < in->n_pods; i++) {
		left = end - mono_ms();
		ret = pod_bind(s, in->pods[i], left > 1 ? (int)left : 1, true, err, sizeof(err));
		if (ret == -ETIMEDOUT)
			pr_info("nri: synchronize: %s; it goes on after the answer\n", err);
		else if (ret < 0)
			pr_warn("nri: synchronize: %s (the pod runs on; only a safety net "
				"policy on a parent cgroup holds it now)\n", err);
		else
			bound += ret;
	}
	pr_info("nri: synchronized: %zu pods known to the runtime, %zu with a policy bound\n",
		in->n_pods, bound);
	out.more = in->more;
	weir__nri__synchronize_request__free_unpacked(in, NULL);
	return reply(s, s->stream, &out.base, 0, NULL);
}

static int on_pod_event(struct session *s, const Weir__Nri__Request *rq, int event,
			const Weir__Nri__PodSandbox *pod)
{
	char err[ERR_LEN];
	int ret;

	if (!pod)
		return reply(s, s->stream, NULL, CODE_INVALID_ARGUMENT,
			     "weir: a pod event without its pod");
	if (event == EV_RUN_POD_SANDBOX) {
		ret = pod_bind(s, pod, budget_ms(s, rq), false, err, sizeof(err));
		if (ret < 0) {
			pr_warn("nri: refusing %s\n", err);
			return reply(s, s->stream, NULL,
				     ret == -EINVAL ? CODE_INVALID_ARGUMENT :
				     CODE_FAILED_PRECONDITION, err);
		}
	} else if (event == EV_STOP_POD_SANDBOX || event == EV_REMOVE_POD_SANDBOX) {
		pod_release(s, pod, event == EV_STOP_POD_SANDBOX ? "stopped" : "removed");
	}
	return reply_empty(s, s->stream);
}

static int on_pod_request(struct session *s, const Weir__Nri__Request *rq, int event)
{
	Weir__Nri__PodSandboxRequest *in;
	int ret;

	in = weir__nri__pod_sandbox_request__unpack(NULL, rq->payload.len, rq->payload.data);
	if (!in)
		return reply(s, s->stream, NULL, CODE_INVALID_ARGUMENT,
			     "weir: not a pod sandbox request");
	ret = on_pod_event(s, rq, event, in->pod);
	weir__nri__pod_sandbox_request__free_unpacked(in, NULL);
	return ret;
}

/* The runtimes whose NRI sends pod events as StateChange. */
static int on_state_change(struct session *s, const Weir__Nri__Request *rq)
{
	Weir__Nri__StateChangeEvent *in;
	int ret;

	in = weir__nri__state_change_event__unpack(NULL, rq->payload.len, rq->payload.data);
	if (!in)
		return reply(s, s->stream, NULL, CODE_INVALID_ARGUMENT,
			     "weir: StateChange: not a StateChangeEvent");
	if (in->event >= EV_RUN_POD_SANDBOX && in->event <= EV_REMOVE_POD_SANDBOX)
		ret = on_pod_event(s, rq, in->event, in->pod);
	else
		ret = reply_empty(s, s->stream); /* not subscribed: nothing to do */
	weir__nri__state_change_event__free_unpacked(in, NULL);
	return ret;
}

/* One request of the runtime. 0; 1 the runtime shuts us down; -errno. */
static int serve(struct session *s, const struct wire_msg *m)
{
	Weir__Nri__Request *rq;
	const char *fn;
	int ret;

	rq = weir__nri__request__unpack(NULL, m->len, m->data);
	if (!rq) {
		pr_warn("nri: %s sent a request that is no ttrpc Request (%zu bytes)\n",
			s->runtime[0] ? s->runtime : "the runtime", m->len);
		return -EPROTO;
	}
	s->stream = m->stream;
	fn = rq->method;
	if (strcmp(rq->service, SVC_PLUGIN))
		ret = reply(s, m->stream, NULL, CODE_UNIMPLEMENTED, "weir: no such service");
	else if (!strcmp(fn, "Configure"))
		ret = on_configure(s, rq);
	else if (!strcmp(fn, "Synchronize"))
		ret = on_synchronize(s, rq);
	else if (!strcmp(fn, "RunPodSandbox"))
		ret = on_pod_request(s, rq, EV_RUN_POD_SANDBOX);
	else if (!strcmp(fn, "StopPodSandbox"))
		ret = on_pod_request(s, rq, EV_STOP_POD_SANDBOX);
	else if (!strcmp(fn, "RemovePodSandbox"))
		ret = on_pod_request(s, rq, EV_REMOVE_POD_SANDBOX);
	else if (!strcmp(fn, "StateChange"))
		ret = on_state_change(s, rq);
	else if (!strcmp(fn, "Shutdown"))
		ret = reply_empty(s, m->stream) ?: 1;
	else
		ret = reply(s, m->stream, NULL, CODE_UNIMPLEMENTED, "weir: not implemented");
	weir__nri__request__free_unpacked(rq, NULL);
	return ret;
}

/* --- the connection ------------------------------------------------------------ */

static int dial(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a unix socket", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

static int send_register(struct session *s)
{
	Weir__Nri__RegisterPluginRequest reg = WEIR__NRI__REGISTER_PLUGIN_REQUEST__INIT;
	Weir__Nri__Request rq = WEIR__NRI__REQUEST__INIT;
	uint8_t *pl, *buf;
	size_t n;
	int ret = -ENOMEM;

	reg.plugin_name = (char *)s->o->name;
	reg.plugin_idx = (char *)s->o->idx;
	rq.service = SVC_RUNTIME;
	rq.method = "RegisterPlugin";
	rq.timeout_nano = REGISTER_TIMEOUT_MS * 1000000LL;
	rq.payload.len = weir__nri__register_plugin_request__get_packed_size(&reg);
	pl = malloc(rq.payload.len ?: 1);
	if (!pl)
		return ret;
	weir__nri__register_plugin_request__pack(&reg, pl);
	rq.payload.data = pl;
	n = weir__nri__request__get_packed_size(&rq);
	buf = malloc(n);
	if (buf) {
		weir__nri__request__pack(&rq, buf);
		ret = wire_send(&s->w, WIRE_RUNTIME_CONN, 1, WIRE_REQUEST, 0, buf, n);
	}
	free(buf);
	free(pl);
	return ret;
}

/* The runtime's answer to our RegisterPlugin. 0 or -errno. */
static int on_registered(struct session *s, const struct wire_msg *m)
{
	Weir__Nri__Response *r = weir__nri__response__unpack(NULL, m->len, m->data);
	int ret = 0;

	if (!r) {
		pr_warn("nri: the answer to RegisterPlugin is no ttrpc Response\n");
		return -EPROTO;
	}
	if (r->status && r->status->code) {
		pr_warn("nri: the runtime refused to register the plugin %s-%s: %s (code %d)\n",
			s->o->idx, s->o->name, r->status->message, r->status->code);
		ret = -EPERM;
	} else {
		s->registered = true;
		pr_info("nri: registered as %s-%s\n", s->o->idx, s->o->name);
	}
	weir__nri__response__free_unpacked(r, NULL);
	return ret;
}

/* One connection, until it ends. 0: the runtime went away (or shut us
 * down), try again; -errno: likewise, after a reason was said. */
static int session(const struct nri_opts *o, int fd, volatile sig_atomic_t *stop)
{
	struct session s = { .o = o, .request_ms = REQUEST_TIMEOUT_MS };
	struct timespec t0, t;
	struct wire_msg m;
	int ret;

	wire_init(&s.w, fd);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = send_register(&s);
	while (!ret && !*stop) {
		ret = wire_recv(&s.w, &m, 500);
		if (ret == -ETIMEDOUT || ret == -EINTR) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			ret = 0;
			if (!s.registered && t.tv_sec - t0.tv_sec > REGISTER_TIMEOUT_MS / 1000) {
				pr_warn("nri: the runtime did not answer RegisterPlugin\n");
				ret = -ETIMEDOUT;
			}
			continue;
		}
		if (ret)
			break;
		if (m.conn == WIRE_RUNTIME_CONN && m.type == WIRE_RESPONSE && m.stream == 1)
			ret = on_registered(&s, &m);
		else if (m.conn == WIRE_PLUGIN_CONN && m.type == WIRE_REQUEST)
			ret = serve(&s, &m);
		/* anything else (data frames, stray answers) is nobody's */
	}
	if (ret == -ECONNRESET)
		pr_info("nri: the runtime closed the connection\n");
	else if (ret == -EPROTO)
		pr_warn("nri: the runtime's messages do not follow NRI's framing\n");
	else if (ret == 1)
		pr_info("nri: the runtime shut the plugin down\n");
	else if (ret < 0 && ret != -ETIMEDOUT && ret != -EPERM)
		pr_warn("nri: connection: %s\n", strerror(-ret));
	wire_free(&s.w);
	close(fd);
	return ret > 0 ? 0 : ret;
}

static void nap(volatile sig_atomic_t *stop, int ms)
{
	struct timespec ts = { 0, 50 * 1000000L };

	for (; ms > 0 && !*stop; ms -= 50)
		nanosleep(&ts, NULL);
}

int nri_run(const struct nri_opts *o, volatile sig_atomic_t *stop)
{
	char err[ERR_LEN], last[ERR_LEN] = "";
	int fd;

	while (!*stop) {
		fd = dial(o->nri_socket, err, sizeof(err));
		if (fd < 0) {
			if (strcmp(err, last)) /* said once, not every second */
				pr_warn("nri: cannot reach the runtime's NRI socket %s (is NRI "
					"enabled in the runtime?); trying every second\n", err);
			snprintf(last, sizeof(last), "%s", err);
			nap(stop, 1000);
			continue;
		}
		last[0] = '\0';
		pr_info("nri: connected to %s\n", o->nri_socket);
		session(o, fd, stop);
		nap(stop, 200);
	}
	return 0;
}
