// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The container triggers' side of the daemon's API: POST /v1/attachments
 * with a holder, POST /v1/detach by holder (docs/daemon.md, "Holders").
 * Nothing here decides that a failure is harmless: every error goes back
 * to the trigger, which then keeps the container from starting.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bind.h"
#include "client.h"

static void add_str(json_object *o, const char *key, const char *val)
{
	if (val && *val)
		json_object_object_add(o, key, json_object_new_string(val));
}

/* The daemon's status as -errno: what it refused, and why, in ERR. */
static int status_errno(long status, json_object *reply, const char *what, char *err,
			size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, client_error(reply));
	switch (status) {
	case 400:
		return -EINVAL;
	case 403:
		return -EPERM;
	case 404:
		return -ENOENT;
	case 409:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static int call(const char *socket, const char *path, json_object *body, const char *what,
		char *err, size_t errlen)
{
	json_object *reply = NULL;
	long status = 0;
	int ret;

	ret = client_call(client_socket(socket), "POST", path, body, &status, &reply, err, errlen);
	json_object_put(body);
	if (ret)
		return ret;
	if (status != 200 && status != 201)
		ret = status_errno(status, reply, what, err, errlen);
	json_object_put(reply);
	return ret;
}

int container_bind(const char *socket, const struct container_bind *b, char *err,
		   size_t errlen)
{
	char label[13];
	json_object *o;

	if (!b->id || !*b->id || strlen(b->id) > CONTAINER_ID_MAX || !b->policy || !b->cgroup) {
		snprintf(err, errlen, "a bind needs a container id (at most %d bytes), a policy "
			 "and a cgroup", CONTAINER_ID_MAX);
		return -EINVAL;
	}
	snprintf(label, sizeof(label), "%.12s", b->id);
	o = json_object_new_object();
	add_str(o, "cgroup", b->cgroup);
	add_str(o, "policy", b->policy);
	add_str(o, "name", b->name ?: label);
	add_str(o, "netns", b->netns);
	add_str(o, "holder", b->id);
	add_str(o, "root", b->root);
	add_str(o, "nameservers", b->nameservers);
	return call(socket, "/v1/attachments", o, b->cgroup, err, errlen);
}

int container_release(const char *socket, const char *id, const char *cgroup, char *err,
		      size_t errlen)
{
	json_object *o;

	if (!id || !*id || strlen(id) > CONTAINER_ID_MAX) {
		snprintf(err, errlen, "a release needs a container id (at most %d bytes)",
			 CONTAINER_ID_MAX);
		return -EINVAL;
	}
	o = json_object_new_object();
	add_str(o, "holder", id);
	add_str(o, "cgroup", cgroup);
	return call(socket, "/v1/detach", o, id, err, errlen);
}

/* A policy directory entry's NAME: no path, no hidden file, no surprise. */
static bool policy_name_ok(const char *s, size_t n)
{
	size_t i;

	if (!n || n > 255 || s[0] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

const char *container_policy_annotation(struct json_object *annotations, char *err,
					size_t errlen)
{
	json_object *v;
	const char *s;

	err[0] = '\0';
	if (!annotations || !json_object_is_type(annotations, json_type_object))
		return NULL;
	/* A misspelled key (weir.dev/Policy, weir.dev/policies, a trailing
	 * space) would start the container unconfined: hooks.d matches every
	 * weir.dev/ key, and any but ours is an error. */
	json_object_object_foreach(annotations, key, val)
	{
		(void)val;
		if (!strncmp(key, CONTAINER_ANNOTATION_PREFIX, strlen(CONTAINER_ANNOTATION_PREFIX)) &&
		    strcmp(key, CONTAINER_POLICY_ANNOTATION) && strcmp(key, CONTAINER_CAPS_ANNOTATION)) {
			snprintf(err, errlen, "unknown annotation '%.100s' (weir knows %s and %s "
				 "only: misspelled?)", key, CONTAINER_POLICY_ANNOTATION,
				 CONTAINER_CAPS_ANNOTATION);
			return NULL;
		}
	}
	if (!json_object_object_get_ex(annotations, CONTAINER_POLICY_ANNOTATION, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "annotation %s must be a string", CONTAINER_POLICY_ANNOTATION);
		return NULL;
	}
	s = json_object_get_string(v);
	if (!policy_name_ok(s, json_object_get_string_len(v)) ||
	    strlen(s) != (size_t)json_object_get_string_len(v)) {
		snprintf(err, errlen, "annotation %s=\"%.255s\": not a policy name (letters, digits, "
			 "'.', '_', '-'; 1-255 bytes, not starting with '.')",
			 CONTAINER_POLICY_ANNOTATION, s);
		return NULL;
	}
	return s;
}

int container_cgroup_of(pid_t pid, char *out, size_t len, char *err, size_t errlen)
{
	char path[64], line[4200];
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s (has the container's process exited?)", path,
			 strerror(-ret));
		return ret;
	}
	while (ret && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		if ((size_t)snprintf(out, len, "%s", line + 3) >= len)
			ret = -ENAMETOOLONG;
		else
			ret = 0;
	}
	fclose(f);
	if (ret == -ENOENT)
		snprintf(err, errlen, "pid %d is in no cgroup v2 (%s has no \"0::\" line): the "
			 "runtime left it in the v1 hierarchies only", (int)pid, path);
	else if (ret)
		snprintf(err, errlen, "%s: the cgroup path is too long", path);
	return ret;
}
