// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* weir oci-hook STAGE [--socket PATH]: the OCI runtime hook (user/containers/). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "ocihook.h"

static const char oci_hook_usage[] =
	"Usage: weir oci-hook STAGE [--socket PATH]\n"
	"An OCI runtime hook (podman and CRI-O run it through hooks.d: deploy/oci/).\n"
	"It reads the container's OCI state (JSON) on standard input. A container\n"
	"annotated weir.dev/policy=NAME gets the policy NAME of the weir daemon's\n"
	"policy directory, enforced from its first packet; without the annotation the\n"
	"hook does nothing.\n"
	"\n"
	"  STAGE               createRuntime: ask the daemon to attach NAME to the\n"
	"                      container's cgroup (a pod's container: to the pod's, the\n"
	"                      parent of its containers) before the container's program\n"
	"                      starts; if it cannot, the hook fails and the container\n"
	"                      does not start\n"
	"                      poststop: release what the container held (the last\n"
	"                      container of a pod detaches the pod's attachment)\n"
	"      --socket PATH   the daemon's socket (default: $WEIR_SOCKET, else\n"
	"                      /run/weir/weir.sock)\n"
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 enforced, released, or not annotated; 1 the container must not\n"
	"start (the reason is on standard error); 2 a bad command line. At poststop a\n"
	"daemon that cannot be reached is a warning (exit 0): the daemon drops a\n"
	"container's attachment by itself once its cgroup is gone.\n"
	"See docs/containers.md.\n";

enum { OPT_SOCKET = 256 };

int cmd_oci_hook(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *socket = NULL;
	char note[512], err[2048];
	enum oci_stage stage;
	int c, ret;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(oci_hook_usage, stdout);
			return EXIT_OK;
		} else if (c == OPT_SOCKET) {
			socket = optarg;
		} else {
			fprintf(stderr, "weir: oci-hook: %s '%s'\n", c == ':' ?
				"option needs an argument:" : "unknown option", argv[optind - 1]);
			cli_usage_error(NULL);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || oci_stage_parse(argv[optind], &stage)) {
		cli_usage_error(argc - optind != 1 ? "oci-hook: one STAGE: createRuntime or poststop" :
			       "oci-hook: STAGE is createRuntime or poststop");
		return EXIT_USAGE;
	}
	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "weir: oci-hook: reads the OCI state on standard input, as a "
			"runtime gives it; it is not run by hand\n");
		return EXIT_USAGE;
	}
	ret = oci_hook(stage, client_socket(socket), stdin, note, sizeof(note), err,
		       sizeof(err));
	if (ret && stage == OCI_POSTSTOP) {
		fprintf(stderr, "weir: oci-hook poststop: %s (the daemon drops the attachment "
			"once the container's cgroup is gone)\n", err);
		return EXIT_OK;
	}
	if (ret) {
		fprintf(stderr, "weir: oci-hook createRuntime: %s: the container does not start\n",
			err);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
