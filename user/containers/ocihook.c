// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir oci-hook createRuntime|poststop: the OCI state in, a bind or a
 * release out (bind.h). What the hook learns from the runtime:
 *
 *   state (stdin)      id, pid (createRuntime: the container's init, in
 *                      its final cgroup, before pivot_root and before the
 *                      user's program), bundle, annotations (runc and crun
 *                      copy config.json's; the bundle's config.json is
 *                      read when the state has none)
 *   /proc/PID/cgroup   the cgroup to bind (its "0::" line: on a hybrid
 *                      host runc puts the container in the unified
 *                      hierarchy at the same path as in the v1 ones)
 *   config.json        root.path: the container's root file system, seen
 *                      through /proc/PID/root (its mount namespace, with
 *                      the runtime's bind mounts of /etc/resolv.conf and
 *                      /etc/hosts), so that its resolver asks the
 *                      nameservers the container would have asked
 *
 * A container of a pod (a sandbox id among its annotations) binds the
 * pod's cgroup, the parent of its own: every container of the pod is then
 * enforced from the first one's start, by one attachment that each
 * container holds (docs/containers.md, "Pods").
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <ldns/sha2.h>

#include "bind.h"
#include "ocihook.h"

#define OCI_STATE_MAX (1 << 20) /* a state with many annotations is some kB */

/* Which annotations say a container belongs to a pod, by runtime. */
static const char *const sandbox_id_keys[] = {
	"io.kubernetes.cri-o.SandboxID", /* CRI-O, and podman's pods */
	"io.kubernetes.cri.sandbox-id", /* containerd's CRI plugin */
};
static const char *const container_type_keys[] = {
	"io.kubernetes.cri-o.ContainerType", /* "sandbox" or "container" */
	"io.kubernetes.cri.container-type",
};

struct oci_state {
	json_object *state, *config;
	const char *id, *bundle;
	pid_t pid;
	json_object *annotations; /* the state's, else config.json's (may be NULL) */
	char holder[CONTAINER_ID_MAX + 1]; /* what the daemon knows it by (oci_holder) */
};

int oci_stage_parse(const char *s, enum oci_stage *out)
{
	if (!strcmp(s, "createRuntime"))
		*out = OCI_CREATE_RUNTIME;
	else if (!strcmp(s, "poststop"))
		*out = OCI_POSTSTOP;
	else
		return -EINVAL;
	return 0;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The whole of IN, bounded, as one JSON object. */
static json_object *read_json(FILE *in, char *err, size_t len)
{
	enum json_tokener_error e = json_tokener_success;
	char *buf = malloc(OCI_STATE_MAX + 1);
	json_object *o = NULL;
	size_t n = 0, r;

	if (!buf) {
		snprintf(err, len, "out of memory");
		return NULL;
	}
	while (n < OCI_STATE_MAX && (r = fread(buf + n, 1, OCI_STATE_MAX - n, in)) > 0)
		n += r;
	buf[n] = '\0';
	if (n == OCI_STATE_MAX)
		snprintf(err, len, "the OCI state on standard input is larger than %d bytes",
			 OCI_STATE_MAX);
	else if (!n)
		snprintf(err, len, "no OCI state on standard input (the runtime writes it there)");
	else if (!(o = json_tokener_parse_verbose(buf, &e)) ||
		 !json_object_is_type(o, json_type_object))
		snprintf(err, len, "the OCI state on standard input is not a JSON object (%s)",
			 o ? "another type" : json_tokener_error_desc(e));
	free(buf);
	if (o && (n == OCI_STATE_MAX || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static bool id_ok(const char *id)
{
	const char *p;

	if (!id || !*id || strlen(id) > CONTAINER_ID_MAX)
		return false;
	for (p = id; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* config.json of the bundle (NULL if there is none to read: a state
 * without a bundle). */
static json_object *read_config(const char *bundle)
{
	char path[PATH_MAX];

	if (!bundle || bundle[0] != '/' ||
	    (size_t)snprintf(path, sizeof(path), "%s/config.json", bundle) >= sizeof(path))
		return NULL;
	return json_object_from_file(path);
}

void oci_holder(const char *id, const char *bundle, char out[CONTAINER_ID_MAX + 1])
{
	unsigned char sha[LDNS_SHA256_DIGEST_LENGTH];
	size_t idlen = strlen(id), blen;
	unsigned char *buf;
	int i, j, keep;

	snprintf(out, CONTAINER_ID_MAX + 1, "%s", id);
	if (!bundle || !*bundle)
		return;
	blen = strlen(bundle);
	buf = malloc(idlen + 1 + blen);
	if (!buf)
		return; /* the id alone: a release then matches it as before */
	memcpy(buf, id, idlen + 1);
	memcpy(buf + idlen + 1, bundle, blen);
	ldns_sha256(buf, (unsigned int)(idlen + 1 + blen), sha);
	free(buf);
	/* "@" and 16 hex digits after as much of the id as fits (the hash
	 * covers all of it). */
	keep = idlen > CONTAINER_ID_MAX - 17 ? CONTAINER_ID_MAX - 17 : (int)idlen;
	i = snprintf(out, CONTAINER_ID_MAX + 1, "%.*s@", keep, id);
	for (j = 0; j < 8; j++)
		i += snprintf(out + i, CONTAINER_ID_MAX + 1 - (size_t)i, "%02x", sha[j]);
}

static int state_parse(FILE *in, struct oci_state *st, char *err, size_t len)
{
	json_object *v;

	memset(st, 0, sizeof(*st));
	st->state = read_json(in, err, len);
	if (!st->state)
		return -EINVAL;
	st->id = jstr(st->state, "id");
	if (!id_ok(st->id)) {
		snprintf(err, len, "the OCI state has no valid \"id\" (1-%d printable bytes)",
			 CONTAINER_ID_MAX);
		return -EINVAL;
	}
	if (json_object_object_get_ex(st->state, "pid", &v))
		st->pid = json_object_get_int(v);
	st->bundle = jstr(st->state, "bundle");
	oci_holder(st->id, st->bundle, st->holder);
	st->config = read_config(st->bundle);
	if (json_object_object_get_ex(st->state, "annotations", &v) &&
	    json_object_is_type(v, json_type_object) && json_object_object_length(v))
		st->annotations = v;
	else if (json_object_object_get_ex(st->config, "annotations", &v))
		st->annotations = v;
	return 0;
}

static void state_free(struct oci_state *st)
{
	json_object_put(st->state);
	json_object_put(st->config);
}

static const char *first_of(json_object *ann, const char *const *keys, size_t n)
{
	const char *v;
	size_t i;

	for (i = 0; i < n; i++)
		if ((v = jstr(ann, keys[i])) && *v)
			return v;
	return NULL;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool is_sandbox(json_object *ann)
{
	const char *t = first_of(ann, container_type_keys, N_OF(container_type_keys));

	return t && !strcmp(t, "sandbox");
}

static bool in_pod(json_object *ann)
{
	return is_sandbox(ann) || first_of(ann, sandbox_id_keys, N_OF(sandbox_id_keys));
}

/* The container's root file system as it sees it now: /proc/PID/root/
 * ROOT.PATH (relative to the bundle when it is relative). "" if unknown. */
static void root_of(const struct oci_state *st, char *out, size_t len)
{
	json_object *root = NULL;
	const char *p;
	int n;

	out[0] = '\0';
	if (!json_object_object_get_ex(st->config, "root", &root) || !(p = jstr(root, "path")) ||
	    !*p)
		return;
	if (p[0] == '/')
		n = snprintf(out, len, "/proc/%d/root%s", (int)st->pid, p);
	else if (st->bundle)
		n = snprintf(out, len, "/proc/%d/root%s/%s", (int)st->pid, st->bundle, p);
	else
		return;
	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';
}

/* The label in weir ps: the pod's namespace/name, else a short id. */
static void label_of(json_object *ann, const char *id, bool pod, char *out, size_t len)
{
	const char *ns = jstr(ann, "io.kubernetes.pod.namespace");
	const char *name = jstr(ann, "io.kubernetes.pod.name");

	if (pod && ns && name)
		snprintf(out, len, "%.100s/%.100s", ns, name);
	else if (pod)
		snprintf(out, len, "pod-%.12s", first_of(ann, sandbox_id_keys,
							    N_OF(sandbox_id_keys)) ?: id);
	else
		snprintf(out, len, "%.12s", id);
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && !memcmp(s + n - k, suffix, k);
}

bool oci_pod_cgroup_ok(const char *pod)
{
	const char *last = strrchr(pod, '/'), *up;
	size_t n;

	if (!last || !last[1])
		return false;
	last++;
	n = strlen(last);
	for (up = last - 1; up > pod && up[-1] != '/'; up--)
		;
	/* kubelet: kubepods[-QOS]-pod<uid>.slice (systemd), pod<uid> (cgroupfs) */
	if (!strncmp(last, "kubepods", 8) && strstr(last, "-pod") && ends_with(last, n, ".slice"))
		return true;
	if (!strncmp(last, "pod", 3) && n > 3)
		return true;
	/* podman: machine-libpod_pod_<id>.slice (systemd), libpod_parent/<id> (cgroupfs;
	 * its containers are libpod_parent/libpod-<id>) */
	if (!strncmp(last, "machine-libpod_pod_", 19) && ends_with(last, n, ".slice"))
		return true;
	return !strncmp(up, "libpod_parent/", 14) && strncmp(last, "libpod", 6);
}

/*
 * The pod's cgroup: the parent of the container's. The pod annotations are
 * the container creator's to write (podman run --annotation ...): trusted
 * only where the parent is named as runtimes name a pod's cgroup, else any
 * container could have the hook bind its parent (machine.slice,
 * libpod_parent: every container of the host) with its policy.
 */
static int pod_cgroup(const char *own, char *out, size_t len, char *err, size_t errlen)
{
	const char *slash = strrchr(own, '/');

	if (!slash || slash == own) {
		snprintf(err, errlen, "the pod's container is in cgroup %.300s: it has no parent "
			 "below the root to bind the pod on", own);
		return -EINVAL;
	}
	snprintf(out, len, "%.*s", (int)(slash - own), own);
	if (!oci_pod_cgroup_ok(out)) {
		snprintf(err, errlen, "its annotations say it is a pod's, but its parent cgroup "
			 "%.300s is named as no runtime names a pod's (kubepods-...-pod<uid>.slice, "
			 "pod<uid>, machine-libpod_pod_<id>.slice, libpod_parent/<id>): not binding "
			 "it (docs/containers.md)", out);
		return -EPERM;
	}
	return 0;
}

/*
 * Capabilities that take a container past every hook weir attaches to its
 * cgroup: where one is in any of its process's sets (bounding included: a
 * file capability on a binary of the image raises it at exec), the hook
 * refuses the container unless weir.dev/allow-capabilities names it. The
 * last three act outside the container only from the initial user
 * namespace: a container with a user namespace of its own is not refused
 * for them.
 */
static const struct {
	const char *name; /* without CAP_ */
	bool userns_harmless;
	const char *why;
} refused_caps[] = {
	{ "NET_RAW", false, "packet sockets (AF_PACKET) send frames no hook of weir's sees" },
	{ "NET_ADMIN", false, "tc and netfilter in its network namespace can rewrite a packet "
			      "after weir judged it" },
	{ "SYS_ADMIN", true, "it can detach weir's programs (bpf())" },
	{ "BPF", true, "it can load BPF programs and rewrite weir's maps" },
	{ "SYS_MODULE", true, "it can load kernel modules" },
};

#define N_REFUSED_CAPS (sizeof(refused_caps) / sizeof(refused_caps[0]))

/* NAME (CAP_X or X, any case) is refused_caps[i]? */
static bool cap_is(const char *name, size_t len, size_t i)
{
	if (len > 4 && !strncasecmp(name, "CAP_", 4)) {
		name += 4;
		len -= 4;
	}
	return len == strlen(refused_caps[i].name) && !strncasecmp(name, refused_caps[i].name, len);
}

/* Which refused capabilities the annotation accepts (bit i: refused_caps[i]). */
static int caps_accepted(json_object *ann, unsigned int *mask, char *err, size_t len)
{
	const char *s, *p, *end;
	json_object *v;
	size_t i, n;

	*mask = 0;
	if (!ann || !json_object_object_get_ex(ann, CONTAINER_CAPS_ANNOTATION, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, len, "annotation %s must be a string", CONTAINER_CAPS_ANNOTATION);
		return -EINVAL;
	}
	for (s = json_object_get_string(v); *s; s = *end ? end + 1 : end) {
		end = s + strcspn(s, ", "); /* NET_RAW,NET_ADMIN or NET_RAW, NET_ADMIN */
		p = s;
		n = (size_t)(end - p);
		if (!n)
			continue;
		for (i = 0; i < N_REFUSED_CAPS && !cap_is(p, n, i); i++)
			;
		if (i == N_REFUSED_CAPS) {
			snprintf(err, len, "annotation %s: '%.*s' is none of the capabilities weir "
				 "refuses (NET_RAW, NET_ADMIN, SYS_ADMIN, BPF, SYS_MODULE)",
				 CONTAINER_CAPS_ANNOTATION, (int)(n > 64 ? 64 : n), p);
			return -EINVAL;
		}
		*mask |= 1u << i;
	}
	return 0;
}

/* A user namespace of its own (one the runtime makes, not one it joins). */
static bool own_userns(json_object *config)
{
	json_object *lx, *ns, *e;
	size_t i;

	if (!json_object_object_get_ex(config, "linux", &lx) ||
	    !json_object_object_get_ex(lx, "namespaces", &ns) ||
	    !json_object_is_type(ns, json_type_array))
		return false;
	for (i = 0; i < json_object_array_length(ns); i++) {
		e = json_object_array_get_idx(ns, i);
		if (jstr(e, "type") && !strcmp(jstr(e, "type"), "user") && !jstr(e, "path"))
			return true;
	}
	return false;
}

/* The first refused capability of the process's sets, or -1; *set names
 * the set it is in. */
static int first_refused_cap(json_object *config, unsigned int accepted, const char **set)
{
	static const char *const sets[] = { "bounding", "effective", "permitted", "ambient",
					    "inheritable" };
	json_object *proc, *caps, *list, *c;
	bool userns = own_userns(config);
	size_t s, i, k;

	if (!json_object_object_get_ex(config, "process", &proc) ||
	    !json_object_object_get_ex(proc, "capabilities", &caps))
		return -1;
	for (s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		if (!json_object_object_get_ex(caps, sets[s], &list) ||
		    !json_object_is_type(list, json_type_array))
			continue;
		for (k = 0; k < json_object_array_length(list); k++) {
			c = json_object_array_get_idx(list, k);
			if (!json_object_is_type(c, json_type_string))
				continue;
			for (i = 0; i < N_REFUSED_CAPS; i++) {
				if ((accepted & (1u << i)) || (userns && refused_caps[i].userns_harmless) ||
				    !cap_is(json_object_get_string(c),
					    (size_t)json_object_get_string_len(c), i))
					continue;
				*set = sets[s];
				return (int)i;
			}
		}
	}
	return -1;
}

/* The container may use no capability that would take it past weir, unless
 * its annotations accept that; its config.json must say. */
static int caps_check(const struct oci_state *st, char *err, size_t len)
{
	unsigned int accepted;
	const char *set = "";
	int ret, i;

	if (!st->config) {
		snprintf(err, len, "cannot read %s/config.json to see the capabilities it may use",
			 st->bundle ? st->bundle : "(no bundle in the OCI state)");
		return -EINVAL;
	}
	ret = caps_accepted(st->annotations, &accepted, err, len);
	if (ret)
		return ret;
	i = first_refused_cap(st->config, accepted, &set);
	if (i < 0)
		return 0;
	snprintf(err, len, "it may use CAP_%s (its %s set): %s. Drop it (podman or docker run "
		 "--cap-drop %s; Kubernetes: securityContext.capabilities.drop), or accept that "
		 "with the annotation %s=%s (docs/containers.md, \"Capabilities\")",
		 refused_caps[i].name, set, refused_caps[i].why, refused_caps[i].name,
		 CONTAINER_CAPS_ANNOTATION, refused_caps[i].name);
	return -EPERM;
}

static int hook_create(const struct oci_state *st, const char *policy, const char *socket,
		       char *note, size_t notelen, char *err, size_t errlen)
{
	char own[PATH_MAX], pod[PATH_MAX], netns[64], root[PATH_MAX], label[256];
	struct container_bind b = { .id = st->holder, .policy = policy, .pid = st->pid,
				    .netns = netns, .name = label };
	bool pod_member = in_pod(st->annotations);
	int ret;

	if (st->pid <= 0) {
		snprintf(err, errlen, "the OCI state has no \"pid\": is this stage createRuntime?");
		return -EINVAL;
	}
	ret = caps_check(st, err, errlen);
	ret = ret ?: container_cgroup_of(st->pid, own, sizeof(own), err, errlen);
	ret = ret ?: pod_member ? pod_cgroup(own, pod, sizeof(pod), err, errlen) : 0;
	if (ret)
		return ret;
	snprintf(netns, sizeof(netns), "/proc/%d/ns/net", (int)st->pid);
	root_of(st, root, sizeof(root));
	b.root = root[0] ? root : NULL;
	b.cgroup = pod_member ? pod : own;
	label_of(st->annotations, st->id, pod_member, label, sizeof(label));
	ret = container_bind(socket, &b, err, errlen);
	/* A container of its own policy in a pod bound with another: its own
	 * cgroup, below the pod's; the nearest attachment governs it. */
	if (ret == -EEXIST && pod_member && !is_sandbox(st->annotations)) {
		b.cgroup = own;
		label_of(st->annotations, st->id, false, label, sizeof(label));
		ret = container_bind(socket, &b, err, errlen);
	}
	if (!ret)
		snprintf(note, notelen, "container %.12s: policy %s on %.400s", st->id, policy,
			 b.cgroup);
	return ret;
}

int oci_hook(enum oci_stage stage, const char *socket, FILE *in, char *note, size_t notelen,
	     char *err, size_t errlen)
{
	char aerr[512], why[1024];
	struct oci_state st;
	const char *policy;
	int ret;

	note[0] = '\0';
	ret = state_parse(in, &st, err, errlen);
	if (ret) {
		state_free(&st);
		return ret;
	}
	policy = container_policy_annotation(st.annotations, aerr, sizeof(aerr));
	if (!policy && aerr[0]) {
		snprintf(err, errlen, "container %.12s: %s", st.id, aerr);
		ret = -EINVAL;
	} else if (policy && stage == OCI_CREATE_RUNTIME) {
		ret = hook_create(&st, policy, socket, note, notelen, why, sizeof(why));
		if (ret)
			snprintf(err, errlen, "container %.12s (policy %s): %s", st.id, policy, why);
	} else if (policy) {
		ret = container_release(socket, st.holder, NULL, why, sizeof(why));
		if (ret)
			snprintf(err, errlen, "container %.12s: cannot release: %s", st.id, why);
		else
			snprintf(note, notelen, "container %.12s: released", st.id);
	}
	state_free(&st);
	return ret;
}
