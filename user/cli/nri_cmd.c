// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* weir nri: the command line of the NRI plugin (user/nri/). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "nri.h"

static const char nri_usage[] =
	"Usage: weir nri [--nri-socket PATH] [--socket PATH] [--plugin-name NAME]\n"
	"                [--plugin-idx NN] [-v]\n"
	"Bind each pod's policy when the container runtime creates the pod, before any\n"
	"of its containers starts: an NRI plugin (containerd >= 1.7 with NRI enabled,\n"
	"CRI-O >= 1.26) in the foreground (docs/kubernetes.md). A pod annotated\n"
	"weir.dev/policy: NAME gets policy NAME (DIR/NAME.yaml in the daemon's policy\n"
	"directory) on its cgroup, with its resolver in the pod's network namespace;\n"
	"if the daemon cannot bind it, the runtime is told to fail the pod.\n"
	"\n"
	"      --nri-socket PATH  the runtime's NRI socket (default " NRI_SOCKET_DEFAULT ")\n"
	"      --socket PATH      the weir daemon's socket (default: $WEIR_SOCKET, else\n"
	"                         /run/weir/weir.sock)\n"
	"      --plugin-name NAME the name the runtime knows the plugin by (default "
	NRI_PLUGIN_NAME ")\n"
	"      --plugin-idx NN    two digits: the runtime calls plugins in this order\n"
	"                         (default " NRI_PLUGIN_IDX ")\n"
	"  -v, --verbose          more detail\n"
	"  -h, --help             this help\n"
	"\n"
	"Runs until SIGTERM or SIGINT; when the runtime restarts or is not there yet it\n"
	"connects again every second, and binds the annotated pods the runtime lists\n"
	"then (Synchronize). Exit status: 0 stopped by a signal; 2 a bad command line.\n";

enum { OPT_NRI_SOCKET = 256, OPT_SOCKET, OPT_NAME, OPT_IDX };

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	stop = 1;
}

static int parse(int argc, char **argv, struct nri_opts *o)
{
	static const struct option longopts[] = {
		{ "nri-socket", required_argument, NULL, OPT_NRI_SOCKET },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "plugin-name", required_argument, NULL, OPT_NAME },
		{ "plugin-idx", required_argument, NULL, OPT_IDX },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c, verbose = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_NRI_SOCKET:
			o->nri_socket = optarg;
			break;
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_NAME:
			o->name = optarg;
			break;
		case OPT_IDX:
			o->idx = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			fputs(nri_usage, stdout);
			return 1;
		case ':':
			fprintf(stderr, "weir: nri: option needs an argument: '%s'\n",
				argv[optind - 1]);
			return cli_usage_error(NULL);
		default:
			fprintf(stderr, "weir: nri: unknown option '%s'\n", argv[optind - 1]);
			return cli_usage_error(NULL);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "weir: nri: unknown argument '%s'\n", argv[optind]);
		return cli_usage_error(NULL);
	}
	if (strlen(o->idx) != 2 || o->idx[0] < '0' || o->idx[0] > '9' || o->idx[1] < '0' ||
	    o->idx[1] > '9') {
		fprintf(stderr, "weir: nri: --plugin-idx '%s': two digits, 00 to 99\n", o->idx);
		return cli_usage_error(NULL);
	}
	if (!*o->name || strchr(o->name, '/')) {
		fprintf(stderr, "weir: nri: --plugin-name '%s': a name, without '/'\n", o->name);
		return cli_usage_error(NULL);
	}
	log_set_level(verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	return 0;
}

int cmd_nri(int argc, char **argv)
{
	struct nri_opts o = { .nri_socket = NRI_SOCKET_DEFAULT, .name = NRI_PLUGIN_NAME,
			      .idx = NRI_PLUGIN_IDX };
	struct sigaction sa = { .sa_handler = on_stop }; /* no SA_RESTART: poll wakes */
	int ret;

	ret = parse(argc, argv, &o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	nri_run(&o, &stop);
	pr_info("nri: stopped\n");
	return EXIT_OK;
}
