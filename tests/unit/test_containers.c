// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The container triggers' shared code (user/containers/): the annotation
 * and its names, the OCI state as runtimes write it, and that every way
 * the hook can fail at createRuntime is a failure (the container must not
 * start), never a quiet "nothing to do". The hook with real runtimes and
 * a real daemon: tests/containers/run.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "bind.h"
#include "ocihook.h"

#define assert_has(s, sub) cr_assert(strstr((s), (sub)), "'%s' does not contain '%s'", (s), (sub))

static const char *policy_of(const char *json, char *err, size_t len)
{
	static char keep[300];
	json_object *o = json_tokener_parse(json);
	const char *p = container_policy_annotation(o, err, len);

	snprintf(keep, sizeof(keep), "%s", p ? p : "(null)");
	json_object_put(o);
	return p ? keep : NULL;
}

Test(annotation, a_name_is_taken)
{
	char err[256];

	cr_assert_str_eq(policy_of("{\"weir.dev/policy\":\"web-1.v2_x\"}", err, sizeof(err)),
			 "web-1.v2_x");
	cr_assert_str_eq(err, "");
}

Test(annotation, absent_is_null_without_an_error)
{
	char err[256] = "x";

	cr_assert_null(policy_of("{\"io.kubernetes.cri-o.ContainerType\":\"sandbox\"}", err,
				 sizeof(err)));
	cr_assert_str_eq(err, "");
	cr_assert_null(policy_of("null", err, sizeof(err)));
	cr_assert_str_eq(err, "");
}

Test(annotation, what_is_no_name_is_an_error)
{
	static const char *const bad[] = {
		"{\"weir.dev/policy\":\"\"}",         "{\"weir.dev/policy\":\"../etc/passwd\"}",
		"{\"weir.dev/policy\":\".hidden\"}",  "{\"weir.dev/policy\":\"a/b\"}",
		"{\"weir.dev/policy\":\"web \"}",     "{\"weir.dev/policy\":\"w\\u0000b\"}",
		"{\"weir.dev/policy\":7}",            "{\"weir.dev/policy\":[\"web\"]}",
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_null(policy_of(bad[i], err, sizeof(err)), "%s was taken", bad[i]);
		cr_assert(err[0], "%s: no error", bad[i]);
		assert_has(err, "weir.dev/policy");
	}
}

Test(stage, the_oci_spellings_only)
{
	enum oci_stage s;

	cr_assert_eq(oci_stage_parse("createRuntime", &s), 0);
	cr_assert_eq(s, OCI_CREATE_RUNTIME);
	cr_assert_eq(oci_stage_parse("poststop", &s), 0);
	cr_assert_eq(s, OCI_POSTSTOP);
	cr_assert_eq(oci_stage_parse("prestart", &s), -EINVAL);
	cr_assert_eq(oci_stage_parse("createruntime", &s), -EINVAL);
}

/* The hook on STATE (its stdin), the daemon at a socket nobody answers on. */
static int hook(enum oci_stage stage, const char *state, char *note, char *err, size_t len)
{
	FILE *in = fmemopen((void *)state, strlen(state), "r");
	int ret;

	cr_assert_not_null(in);
	ret = oci_hook(stage, "/nonexistent/weir-test.sock", in, note, 256, err, len);
	fclose(in);
	return ret;
}

Test(hook, no_annotation_is_nothing_to_do)
{
	char note[256], err[512] = "";

	cr_assert_eq(hook(OCI_CREATE_RUNTIME,
			  "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"pid\":1,\"bundle\":\"/nonexistent\","
			  "\"annotations\":{\"io.container.manager\":\"libpod\"}}",
			  note, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(note, "");
	cr_assert_eq(hook(OCI_POSTSTOP, "{\"id\":\"c1\",\"status\":\"stopped\"}", note, err,
			  sizeof(err)),
		     0, "%s", err);
}

Test(hook, a_bad_state_fails)
{
	static const char *const bad[] = {
		"", "not json", "[1,2]", "{\"pid\":1}", "{\"id\":\"\",\"pid\":1}",
		"{\"id\":\"a b\",\"pid\":1}",
	};
	char note[256], err[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(hook(OCI_CREATE_RUNTIME, bad[i], note, err, sizeof(err)), -EINVAL,
			     "'%s' was taken", bad[i]);
		cr_assert(err[0], "'%s': no message", bad[i]);
	}
}

Test(hook, a_bad_annotation_fails_at_both_stages)
{
	const char *st = "{\"id\":\"c2\",\"pid\":1,\"annotations\":{\"weir.dev/policy\":\"../x\"}}";
	char note[256], err[512];

	cr_assert_eq(hook(OCI_CREATE_RUNTIME, st, note, err, sizeof(err)), -EINVAL);
	assert_has(err, "container c2: annotation weir.dev/policy=\"../x\"");
	cr_assert_eq(hook(OCI_POSTSTOP, st, note, err, sizeof(err)), -EINVAL);
}

/* Review 2's F5: hooks.d runs the hook for every weir.dev/ key; a key weir
 * does not know (a misspelling) fails the container instead of leaving it
 * unconfined, at createRuntime (and is said at poststop). */
Test(hook, an_unknown_weir_annotation_fails)
{
	static const char *const keys[] = { "weir.dev/Policy", "weir.dev/policies",
					    "weir.dev/policy ", "weir.dev/" };
	char st[256], note[256], err[512];
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(st, sizeof(st), "{\"id\":\"c3\",\"pid\":1,\"annotations\":{\"%s\":\"web\"}}",
			 keys[i]);
		cr_assert_eq(hook(OCI_CREATE_RUNTIME, st, note, err, sizeof(err)), -EINVAL, "%s",
			     keys[i]);
		assert_has(err, "unknown annotation");
		assert_has(err, keys[i]);
	}
	/* Beside a good one, too; other prefixes are none of weir's business. */
	snprintf(st, sizeof(st), "{\"id\":\"c3\",\"pid\":1,\"annotations\":"
		 "{\"weir.dev/policy\":\"web\",\"weir.dev/polcy\":\"x\"}}");
	cr_assert_eq(hook(OCI_CREATE_RUNTIME, st, note, err, sizeof(err)), -EINVAL);
	cr_assert_null(policy_of("{\"weir.devx/policy\":\"a\",\"io.weir.dev/p\":\"b\"}", err,
				 sizeof(err)));
	cr_assert_str_eq(err, "");
}

/* Runtimes that leave the annotations out of the state: config.json's. */
Test(hook, the_bundles_annotations_when_the_state_has_none)
{
	char dir[] = "/tmp/weir-bundle-XXXXXX", path[64], state[256], note[256], err[512];
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("{\"root\":{\"path\":\"rootfs\"},\"annotations\":{\"weir.dev/policy\":\"a/b\"}}", f);
	fclose(f);
	snprintf(state, sizeof(state), "{\"id\":\"c3\",\"pid\":1,\"bundle\":\"%s\"}", dir);
	cr_assert_eq(hook(OCI_CREATE_RUNTIME, state, note, err, sizeof(err)), -EINVAL);
	assert_has(err, "\"a/b\"");
	unlink(path);
	rmdir(dir);
}

/* A bundle dir holding CONFIG as its config.json (its path in DIR). */
static void bundle_with(char dir[32], const char *config)
{
	char path[64];
	FILE *f;

	snprintf(dir, 32, "/tmp/weir-bundle-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(config, f);
	fclose(f);
}

static void bundle_rm(const char *dir)
{
	char path[64];

	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	rmdir(dir);
}

/* The hook at createRuntime for a container whose config.json is CONFIG
 * and whose annotations are ANN (a JSON object's members). */
static int hook_caps(const char *config, const char *ann, char *err, size_t len)
{
	char dir[32], state[512], note[256];
	int ret;

	bundle_with(dir, config);
	snprintf(state, sizeof(state),
		 "{\"id\":\"c6\",\"pid\":%d,\"bundle\":\"%s\",\"annotations\":"
		 "{\"weir.dev/policy\":\"web\"%s%s}}",
		 (int)getpid(), dir, ann[0] ? "," : "", ann);
	err[0] = '\0';
	ret = hook(OCI_CREATE_RUNTIME, state, note, err, len);
	bundle_rm(dir);
	return ret;
}

#define CAPS(set, list) "{\"process\":{\"capabilities\":{\"" set "\":[" list "]}}}"

/*
 * Capabilities that take a container past weir's hooks (AF_PACKET with
 * NET_RAW, tc/netfilter with NET_ADMIN, bpf() with SYS_ADMIN or BPF, modules)
 * refuse it before the daemon is asked, in whichever set they are, unless
 * weir.dev/allow-capabilities names them.
 */
Test(hook, a_capability_past_weir_refuses_the_container)
{
	static const char *const sets[] = { "bounding", "effective", "permitted", "ambient",
					    "inheritable" };
	char config[256], err[1024];
	size_t i;

	for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		snprintf(config, sizeof(config),
			 "{\"process\":{\"capabilities\":{\"%s\":[\"CAP_KILL\",\"CAP_NET_RAW\"]}}}",
			 sets[i]);
		cr_assert_eq(hook_caps(config, "", err, sizeof(err)), -EPERM, "%s: %s", sets[i], err);
		assert_has(err, "CAP_NET_RAW");
		assert_has(err, sets[i]);
		assert_has(err, "AF_PACKET");
		assert_has(err, "weir.dev/allow-capabilities=NET_RAW");
	}
	cr_assert_eq(hook_caps(CAPS("bounding", "\"CAP_NET_ADMIN\""), "", err, sizeof(err)), -EPERM);
	assert_has(err, "CAP_NET_ADMIN");
	cr_assert_eq(hook_caps(CAPS("effective", "\"CAP_SYS_ADMIN\""), "", err, sizeof(err)), -EPERM);
	assert_has(err, "CAP_SYS_ADMIN");
	cr_assert_eq(hook_caps(CAPS("effective", "\"cap_bpf\""), "", err, sizeof(err)), -EPERM);
	assert_has(err, "CAP_BPF");
	cr_assert_eq(hook_caps(CAPS("bounding", "\"CAP_SYS_MODULE\""), "", err, sizeof(err)), -EPERM);
	/* The common sets are none of those: on to the daemon (none answers). */
	cr_assert_eq(hook_caps(CAPS("bounding", "\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\",\"CAP_CHOWN\""),
			       "", err, sizeof(err)),
		     -ENOENT, "%s", err);
	assert_has(err, "no daemon answers");
}

Test(hook, the_annotation_accepts_what_it_names_only)
{
	const char *two = CAPS("bounding", "\"CAP_NET_RAW\",\"CAP_NET_ADMIN\"");
	char err[1024];

	cr_assert_eq(hook_caps(two, "\"weir.dev/allow-capabilities\":\"NET_RAW\"", err,
			       sizeof(err)),
		     -EPERM);
	assert_has(err, "CAP_NET_ADMIN");
	cr_assert_eq(hook_caps(two, "\"weir.dev/allow-capabilities\":\"net_raw, CAP_NET_ADMIN\"",
			       err, sizeof(err)),
		     -ENOENT, "%s", err);
	cr_assert_eq(hook_caps(two, "\"weir.dev/allow-capabilities\":\"NET_RAWW\"", err,
			       sizeof(err)),
		     -EINVAL);
	assert_has(err, "'NET_RAWW' is none of the capabilities weir refuses");
	cr_assert_eq(hook_caps(two, "\"weir.dev/allow-capabilities\":[\"NET_RAW\"]", err,
			       sizeof(err)),
		     -EINVAL);
}

/* In a user namespace of its own, bpf() and modules are out of its reach;
 * a packet socket in its own network namespace is not. */
Test(hook, a_user_namespace_keeps_only_the_network_ones)
{
	char err[1024];

	cr_assert_eq(hook_caps("{\"linux\":{\"namespaces\":[{\"type\":\"user\"}]},"
			       "\"process\":{\"capabilities\":{\"bounding\":[\"CAP_SYS_ADMIN\"]}}}",
			       "", err, sizeof(err)),
		     -ENOENT, "%s", err);
	cr_assert_eq(hook_caps("{\"linux\":{\"namespaces\":[{\"type\":\"user\"}]},"
			       "\"process\":{\"capabilities\":{\"bounding\":[\"CAP_NET_RAW\"]}}}",
			       "", err, sizeof(err)),
		     -EPERM);
	/* A user namespace joined by path may be the initial one's. */
	cr_assert_eq(hook_caps("{\"linux\":{\"namespaces\":[{\"type\":\"user\",\"path\":"
			       "\"/proc/1/ns/user\"}]},\"process\":{\"capabilities\":"
			       "{\"bounding\":[\"CAP_SYS_ADMIN\"]}}}",
			       "", err, sizeof(err)),
		     -EPERM);
}

/* No config.json to read: the capabilities are unknown, the container does
 * not start. */
Test(hook, no_config_refuses_the_container)
{
	char state[256], note[256], err[512];

	snprintf(state, sizeof(state),
		 "{\"id\":\"c7\",\"pid\":%d,\"bundle\":\"/nonexistent\",\"annotations\":"
		 "{\"weir.dev/policy\":\"web\"}}",
		 (int)getpid());
	cr_assert_eq(hook(OCI_CREATE_RUNTIME, state, note, err, sizeof(err)), -EINVAL);
	assert_has(err, "cannot read /nonexistent/config.json");
}

/* Annotated, valid, and no daemon: the container must not start. */
Test(hook, no_daemon_fails_createRuntime)
{
	char dir[32], state[256], note[256], err[512];

	bundle_with(dir, "{}");
	snprintf(state, sizeof(state),
		 "{\"id\":\"c4\",\"pid\":%d,\"bundle\":\"%s\",\"annotations\":"
		 "{\"weir.dev/policy\":\"web\"}}",
		 (int)getpid(), dir);
	cr_assert_lt(hook(OCI_CREATE_RUNTIME, state, note, err, sizeof(err)), 0);
	bundle_rm(dir);
	assert_has(err, "container c4 (policy web)");
	assert_has(err, "no daemon answers on /nonexistent/weir-test.sock");
	cr_assert_str_eq(note, "");
	/* no pid: no container process to bind */
	cr_assert_eq(hook(OCI_CREATE_RUNTIME,
			  "{\"id\":\"c5\",\"annotations\":{\"weir.dev/policy\":\"web\"}}", note, err,
			  sizeof(err)),
		     -EINVAL);
	assert_has(err, "no \"pid\"");
}

Test(bind, a_bind_needs_an_id_a_policy_and_a_cgroup)
{
	struct container_bind b = { .policy = "web", .cgroup = "/x" };
	char err[256];

	cr_assert_eq(container_bind("/nonexistent/s", &b, err, sizeof(err)), -EINVAL);
	b.id = "c";
	b.policy = NULL;
	cr_assert_eq(container_bind("/nonexistent/s", &b, err, sizeof(err)), -EINVAL);
	cr_assert_eq(container_release("/nonexistent/s", "", NULL, err, sizeof(err)), -EINVAL);
	cr_assert_eq(container_release("/nonexistent/s", "c", NULL, err, sizeof(err)), -ENOENT);
	assert_has(err, "no daemon answers");
}

Test(bind, the_cgroup_of_a_process)
{
	char cg[4096], err[256];

	cr_assert_eq(container_cgroup_of(getpid(), cg, sizeof(cg), err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(cg[0], '/');
	cr_assert_lt(container_cgroup_of(0x7ffffff0, cg, sizeof(cg), err, sizeof(err)), 0);
	assert_has(err, "/proc/");
}

/* Review 2's F3: a container is held by id and bundle, so another with the
 * same id (another runtime root) cannot release it. */
Test(hook, the_holder_is_the_id_and_the_bundle)
{
	char a[CONTAINER_ID_MAX + 1], b[CONTAINER_ID_MAX + 1], c[CONTAINER_ID_MAX + 1];
	char longid[CONTAINER_ID_MAX + 1];

	oci_holder("web", "/run/runc-a/web", a);
	oci_holder("web", "/run/runc-b/web", b);
	oci_holder("web", "/run/runc-a/web", c);
	cr_assert_str_neq(a, b);
	cr_assert_str_eq(a, c);
	cr_assert_eq(strlen(a), 3 + 1 + 16, "%s", a);
	cr_assert(!strncmp(a, "web@", 4), "%s", a);
	oci_holder("web", NULL, a);
	cr_assert_str_eq(a, "web");
	oci_holder("web", "", a);
	cr_assert_str_eq(a, "web");
	/* The longest id: cut, the hash (of all of it) kept, within the limit. */
	memset(longid, 'x', CONTAINER_ID_MAX);
	longid[CONTAINER_ID_MAX] = '\0';
	oci_holder(longid, "/b", a);
	cr_assert_eq(strlen(a), CONTAINER_ID_MAX);
	longid[CONTAINER_ID_MAX - 1] = 'y';
	oci_holder(longid, "/b", b);
	cr_assert_str_neq(a, b);
}

/* Review 2's F4: a container's pod annotations bind its parent only where
 * the parent is named as a pod's cgroup is. */
Test(hook, a_pod_is_a_pod_cgroup)
{
	static const char *const pods[] = {
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b_3c.slice",
		"/kubepods.slice/kubepods-pod1a2b.slice",
		"/kubepods/besteffort/pod1a2b-3c4d",
		"/machine.slice/machine-libpod_pod_0123abcd.slice",
		"/libpod_parent/0123abcd",
		"/weir-ctest-1/libpod_parent/0123abcd",
	};
	static const char *const not_pods[] = {
		"/machine.slice", "/libpod_parent", "/libpod_parent/libpod-0123abcd", "/system.slice",
		"/kubepods.slice", "/kubepods.slice/kubepods-besteffort.slice", "/", "", "/pod",
		"/user.slice/user-1000.slice", "/weir-ctest-1/pm",
	};
	size_t i;

	for (i = 0; i < sizeof(pods) / sizeof(pods[0]); i++)
		cr_assert(oci_pod_cgroup_ok(pods[i]), "%s", pods[i]);
	for (i = 0; i < sizeof(not_pods) / sizeof(not_pods[0]); i++)
		cr_assert_not(oci_pod_cgroup_ok(not_pods[i]), "%s", not_pods[i]);
}
