// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* weir daemon: the command line of the long-running enforcer (user/daemon/). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "daemon.h"
#include "api.h"
#include "log.h"
#include "notify.h"
#include "privs.h"

static const char daemon_usage[] =
	"Usage: weir daemon [--socket PATH] [--policy-dir DIR] [--metrics HOST:PORT]\n"
	"                   [--events FILE|-] [--state-dir DIR] [--pin-root DIR]\n"
	"                   [--detach-on-exit] [-v]\n"
	"Enforce policies on many existing cgroups, in the foreground (docs/daemon.md):\n"
	"the BPF programs are loaded once; weir attach, detach, ps and reload talk to it.\n"
	"\n"
	"      --socket PATH      the API's unix socket (default " DAEMON_SOCKET ")\n"
	"      --policy-dir DIR   the policies: DIR/NAME.yaml is policy NAME, reloaded when\n"
	"                         it changes (default " DAEMON_POLICY_DIR ")\n"
	"      --metrics HOST:PORT  serve Prometheus metrics there too (default: off)\n"
	"      --events FILE|-    every decision of every attachment as JSON lines, each\n"
	"                         with \"attachment\": LABEL, appended to FILE; '-': stdout\n"
	"      --state-dir DIR    one file per attachment (default " DAEMON_STATE_DIR ")\n"
	"      --pin-root DIR     where links and maps are pinned, on a bpf file system\n"
	"                         (default " DAEMON_PIN_ROOT ")\n"
	"      --detach-on-exit   SIGTERM/SIGINT detach every attachment; without it they\n"
	"                         stay enforced and the next daemon adopts them\n"
	"  -v, --verbose          more detail (-vv: libbpf debug output)\n"
	"  -h, --help             this help\n"
	"\n"
	"A daemon killed, even with SIGKILL, leaves every attachment enforced (DNS then\n"
	"fails closed); one started again adopts them with no unenforced moment.\n";

enum { OPT_SOCKET = 256, OPT_POLICY_DIR, OPT_METRICS, OPT_EVENTS, OPT_STATE_DIR,
       OPT_PIN_ROOT, OPT_DETACH };

static int parse(int argc, char **argv, struct daemon_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "policy-dir", required_argument, NULL, OPT_POLICY_DIR },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "events", required_argument, NULL, OPT_EVENTS },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "pin-root", required_argument, NULL, OPT_PIN_ROOT },
		{ "detach-on-exit", no_argument, NULL, OPT_DETACH },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c, verbose = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_POLICY_DIR:
			o->policy_dir = optarg;
			break;
		case OPT_METRICS:
			o->metrics = optarg;
			break;
		case OPT_EVENTS:
			o->events = optarg;
			break;
		case OPT_STATE_DIR:
			o->state_dir = optarg;
			break;
		case OPT_PIN_ROOT:
			o->pin_root = optarg;
			break;
		case OPT_DETACH:
			o->detach_on_exit = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			fputs(daemon_usage, stdout);
			return 1;
		default:
			fprintf(stderr, "weir: daemon: %s '%s'\n",
				c == ':' ? "option needs an argument:" : "unknown option",
				argv[optind - 1]);
			return cli_usage_error(NULL);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "weir: daemon: unexpected argument '%s'\n", argv[optind]);
		return cli_usage_error(NULL);
	}
	/* A daemon says what it attaches, adopts and reloads: its log is
	 * the record (journald). */
	log_set_level(verbose > 1 ? LOG_LEVEL_TRACE : verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	return 0;
}

int cmd_daemon(int argc, char **argv)
{
	struct daemon_opts o = { .socket = DAEMON_SOCKET };
	struct daemon *d;
	char why[256];
	int ret;

	ret = parse(argc, argv, &o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	ret = privs_check_bpf(why, sizeof(why));
	if (ret) {
		fprintf(stderr, "weir: %s\n", why);
		return EXIT_FAIL;
	}
	ret = api_socket_free(o.socket, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "weir: %s\n", why);
		return EXIT_FAIL;
	}
	ret = daemon_open(&o, &d);
	if (ret)
		return EXIT_FAIL;
	/* Ready means the socket answers: only now, with every previous
	 * attachment adopted. */
	ret = api_start(d, o.socket, o.metrics, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "weir: %s\n", why);
		daemon_free(d);
		return EXIT_FAIL;
	}
	notify_ready();
	ret = daemon_run(d);
	notify_stopping();
	api_stop();
	daemon_free(d);
	return ret ? EXIT_FAIL : EXIT_OK;
}
