// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: what a runtime sends weir nri (any bytes on its NRI socket):
 * the trunk and ttrpc framing (user/nri/wire.c), each message decoded as a
 * ttrpc Request and its payload as every request the plugin serves, and a
 * decoded pod's cgroup and policy annotation worked out as the plugin does
 * (make fuzz). Inputs beyond 64 KiB are cut: the socket pair holds them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <json-c/json.h>

#include "bind.h"
#include "nri.h"
#include "nri.pb-c.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len);

static void pod(const Weir__Nri__PodSandbox *p)
{
	char out[4096], err[1024];
	json_object *ann;
	size_t i;

	if (!p)
		return;
	if (p->linux_sandbox)
		nri_pod_cgroup(p->linux_sandbox->cgroup_parent, p->linux_sandbox->cgroups_path, out,
			       sizeof(out), err, sizeof(err));
	ann = json_object_new_object();
	for (i = 0; i < p->n_annotations; i++)
		json_object_object_add(ann, p->annotations[i]->key,
				       json_object_new_string(p->annotations[i]->value));
	container_policy_annotation(ann, err, sizeof(err));
	json_object_put(ann);
}

static void payload(const ProtobufCBinaryData *d)
{
	Weir__Nri__SynchronizeRequest *sync;
	Weir__Nri__PodSandboxRequest *run;
	Weir__Nri__StateChangeEvent *ev;
	Weir__Nri__ConfigureRequest *conf;
	Weir__Nri__Response *resp;
	size_t i;

	if ((sync = weir__nri__synchronize_request__unpack(NULL, d->len, d->data))) {
		for (i = 0; i < sync->n_pods; i++)
			pod(sync->pods[i]);
		weir__nri__synchronize_request__free_unpacked(sync, NULL);
	}
	if ((run = weir__nri__pod_sandbox_request__unpack(NULL, d->len, d->data))) {
		pod(run->pod);
		weir__nri__pod_sandbox_request__free_unpacked(run, NULL);
	}
	if ((ev = weir__nri__state_change_event__unpack(NULL, d->len, d->data))) {
		pod(ev->pod);
		weir__nri__state_change_event__free_unpacked(ev, NULL);
	}
	if ((conf = weir__nri__configure_request__unpack(NULL, d->len, d->data)))
		weir__nri__configure_request__free_unpacked(conf, NULL);
	if ((resp = weir__nri__response__unpack(NULL, d->len, d->data)))
		weir__nri__response__free_unpacked(resp, NULL);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t len)
{
	Weir__Nri__Request *rq;
	struct wire_msg m;
	struct wire w;
	int sv[2], n = 0;

	if (len > 65536)
		len = 65536;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
	if (len && write(sv[1], data, len) != (ssize_t)len)
		abort();
	close(sv[1]);
	wire_init(&w, sv[0]);
	while (n++ < 4096 && !wire_recv(&w, &m, 0)) {
		rq = weir__nri__request__unpack(NULL, m.len, m.data);
		if (!rq)
			continue;
		payload(&rq->payload);
		weir__nri__request__free_unpacked(rq, NULL);
	}
	wire_free(&w);
	close(sv[0]);
	return 0;
}
