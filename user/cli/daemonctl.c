// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * weir attach, detach, ps and reload: clients of a running weir daemon,
 * through its API (user/client/). They print what the daemon answered, and
 * its error message as it gave it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "client.h"

#define JSON_PLAIN (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

#define SOCKET_HELP                                                                     \
	"      --socket PATH   the daemon's socket (default: $WEIR_SOCKET, else\n"      \
	"                      /run/weir/weir.sock)\n"

static const char attach_usage[] =
	"Usage: weir attach [--socket PATH] --policy NAME_OR_FILE [--name LABEL] CGROUP\n"
	"Ask the running weir daemon to enforce a policy on an existing cgroup v2\n"
	"directory and everything below it, processes already inside included.\n"
	"CGROUP is absolute (/sys/fs/cgroup/ci/job-42) or relative to the cgroup2\n"
	"mount (ci/job-42).\n"
	"\n"
	"  -p, --policy NAME_OR_FILE  NAME: the file NAME.yaml in the daemon's policy\n"
	"                      directory (/etc/weir/policies); or a policy file (a\n"
	"                      path with a '/', or a file that exists here)\n"
	"      --name LABEL    the attachment's label in events, metrics and ps\n"
	"                      (default: CGROUP's last component)\n" SOCKET_HELP
	"  -h, --help          this help\n"
	"\n"
	"Attaching the same policy again changes nothing; another policy on an\n"
	"attached cgroup is refused (detach first). Exit status: 0 attached; 1 the\n"
	"daemon refused (its reason is printed) or no daemon answers; 2 a bad\n"
	"command line.\n";

static const char detach_usage[] =
	"Usage: weir detach [--socket PATH] CGROUP\n"
	"Ask the running weir daemon to stop enforcing on CGROUP (as given to attach):\n"
	"its programs are detached and its resolver closed; the processes in it go\n"
	"on, unconfined.\n"
	"\n" SOCKET_HELP
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 detached; 1 not attached, or no daemon answers; 2 a bad\n"
	"command line.\n";

static const char ps_usage[] =
	"Usage: weir ps [--socket PATH] [--json]\n"
	"List the running weir daemon's attachments, one line each: CGROUP, LABEL,\n"
	"POLICY and its generation (GEN, one more on every reload that changed it),\n"
	"ALLOWED and DENIED decisions, the DNS resolver's port in the cgroup's\n"
	"network namespace (- for none), and STATE: ok, or `policy error:\n"
	"FILE:LINE:COL: message` when the policy file was changed into one that does\n"
	"not load (the previous generation stays in force). Audit events lost since\n"
	"the daemon started, if any, are counted on stderr.\n"
	"\n"
	"      --json          the daemon's answer: {\"attachments\": [{\"cgroup\",\n"
	"                      \"cgroup_id\", \"label\", \"policy\", \"generation\",\n"
	"                      \"allowed\", \"denied\", \"would_deny\",\n"
	"                      \"budget_refused\", \"dns_port\", \"state\", \"holders\"}, ...],\n"
	"                      \"events_lost\"}: holders, the containers holding it\n"
	"                      (weir oci-hook; 0: attached by hand)\n" SOCKET_HELP
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0; 1 no daemon answers; 2 a bad command line.\n";

static const char reload_usage[] =
	"Usage: weir reload [--socket PATH]\n"
	"Make the running weir daemon read its policy directory again now (it also\n"
	"watches it and reloads a changed file on its own). A file that does not\n"
	"load keeps its previous version in force; each policy is printed with its\n"
	"generation and state.\n"
	"\n" SOCKET_HELP
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 every policy loads; 1 one does not (its error is printed), or\n"
	"no daemon answers; 2 a bad command line.\n";

static const char health_usage[] =
	"Usage: weir health [--socket PATH]\n"
	"Ask the running weir daemon whether it answers (GET /v1/health) and print\n"
	"its version, pid and number of attachments on one line. Made for probes\n"
	"(a Kubernetes exec probe, a monitoring check): it reads nothing else.\n"
	"\n" SOCKET_HELP
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 the daemon answered; 1 no daemon answers, or not as a weir\n"
	"daemon does; 2 a bad command line.\n";

struct ctl_opts {
	const char *socket;
	const char *policy;
	const char *name;
	bool json;
	char **args; /* the operands */
	int n_args;
};

enum { OPT_SOCKET = 256, OPT_NAME, OPT_JSON };

static int ctl_bad_option(const char *cmd, int c, const char *arg)
{
	fprintf(stderr, "weir: %s: %s '%s'\n", cmd,
		c == ':' ? "option needs an argument:" : "unknown option", arg);
	return cli_usage_error(NULL);
}

/*
 * The options COMMAND takes (OPTS: "pnj" for --policy, --name, --json; every
 * command takes --socket and --help). 1: --help was printed; 0; else -EINVAL.
 */
static int ctl_parse(int argc, char **argv, const char *opts, const char *usage,
		     struct ctl_opts *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "policy", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 1;
		} else if (c == OPT_SOCKET) {
			o->socket = optarg;
		} else if (c == 'p' && strchr(opts, 'p')) {
			o->policy = optarg;
		} else if (c == OPT_NAME && strchr(opts, 'n')) {
			o->name = optarg;
		} else if (c == OPT_JSON && strchr(opts, 'j')) {
			o->json = true;
		} else {
			return ctl_bad_option(argv[0], c, argv[optind - 1]);
		}
	}
	o->args = argv + optind;
	o->n_args = argc - optind;
	o->socket = client_socket(o->socket);
	return 0;
}

/*
 * KEY's string in O, for a terminal: control characters (a cgroup's name
 * may hold any byte but '/') shown as '?'. In one of four buffers that take
 * turns, so that one printf() can take four.
 */
static const char *jstr(json_object *o, const char *key)
{
	static char bufs[4][4096];
	static unsigned int turn;
	char *b = bufs[turn++ % 4], *p;
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return "-";
	snprintf(b, sizeof(bufs[0]), "%s", json_object_get_string(v));
	for (p = b; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return b;
}

/* One call; a transport failure or an error status said on stderr (-1). */
static int ctl_call(const char *cmd, const struct ctl_opts *o, const char *method,
		    const char *path, json_object *body, long *status, json_object **reply)
{
	char err[CLIENT_ERR_LEN];

	*reply = NULL;
	if (client_call(o->socket, method, path, body, status, reply, err, sizeof(err))) {
		fprintf(stderr, "weir: %s\n", err);
		return -1;
	}
	if (*status >= 300) {
		const char *why = jstr(*reply, "error");

		if (!strcmp(why, "-"))
			why = client_error(*reply);
		fprintf(stderr, "weir: %s: %s\n", cmd, why);
		json_object_put(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}


static unsigned long long jnum(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

/*
 * --policy as the daemon must see it: a file given here (a '/' in it, or a
 * file that exists) as an absolute path, since the daemon has its own
 * working directory; anything else as a NAME in its policy directory.
 */
static int policy_arg(const char *arg, char *out, size_t len)
{
	char real[PATH_MAX];
	struct stat st;

	if (!strchr(arg, '/') && (stat(arg, &st) || !S_ISREG(st.st_mode))) {
		snprintf(out, len, "%s", arg);
		return 0;
	}
	if (!realpath(arg, real)) {
		fprintf(stderr, "weir: attach: --policy %s: %s\n", arg, strerror(errno));
		return -errno;
	}
	snprintf(out, len, "%s", real);
	return 0;
}

static json_object *attach_body(const struct ctl_opts *o, const char *policy)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "cgroup", json_object_new_string(o->args[0]));
	json_object_object_add(b, "policy", json_object_new_string(policy));
	if (o->name)
		json_object_object_add(b, "name", json_object_new_string(o->name));
	return b;
}

int cmd_attach(int argc, char **argv)
{
	struct ctl_opts o = { 0 };
	json_object *body, *reply;
	char policy[PATH_MAX];
	long status;
	int ret;

	ret = ctl_parse(argc, argv, "pn", attach_usage, &o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (!o.policy || o.n_args != 1) {
		cli_usage_error(!o.policy ? "attach: --policy is required" :
			o.n_args ? "attach: one CGROUP only" : "attach: no CGROUP given");
		return EXIT_USAGE;
	}
	if (policy_arg(o.policy, policy, sizeof(policy)))
		return EXIT_FAIL;
	body = attach_body(&o, policy);
	ret = ctl_call("attach", &o, "POST", "/v1/attachments", body, &status, &reply);
	json_object_put(body);
	if (ret)
		return EXIT_FAIL;
	printf("%s %s: policy %s (generation %llu), label %s, dns port %llu, %s\n",
	       status == 201 ? "attached" : "already attached", jstr(reply, "cgroup"),
	       jstr(reply, "policy"), jnum(reply, "generation"), jstr(reply, "label"),
	       jnum(reply, "dns_port"), jstr(reply, "state"));
	json_object_put(reply);
	return EXIT_OK;
}

int cmd_detach(int argc, char **argv)
{
	struct ctl_opts o = { 0 };
	json_object *body, *reply;
	long status;
	int ret;

	ret = ctl_parse(argc, argv, "", detach_usage, &o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (o.n_args != 1) {
		cli_usage_error(o.n_args ? "detach: one CGROUP only" : "detach: no CGROUP given");
		return EXIT_USAGE;
	}
	body = json_object_new_object();
	json_object_object_add(body, "cgroup", json_object_new_string(o.args[0]));
	ret = ctl_call("detach", &o, "POST", "/v1/detach", body, &status, &reply);
	json_object_put(body);
	if (ret)
		return EXIT_FAIL;
	printf("detached %s\n", jstr(reply, "cgroup"));
	json_object_put(reply);
	return EXIT_OK;
}

/* --- ps ----------------------------------------------------------------------- */

struct ps_width {
	int cgroup, label, policy;
};

/* W at least as wide as KEY's value in A. */
static void ps_widen(int *w, json_object *a, const char *key)
{
	int n = (int)strlen(jstr(a, key));

	if (n > *w)
		*w = n;
}

static void ps_widths(json_object *list, struct ps_width *w)
{
	size_t i, n = json_object_array_length(list);
	json_object *a;

	*w = (struct ps_width){ 6, 5, 6 }; /* the headers */
	for (i = 0; i < n; i++) {
		a = json_object_array_get_idx(list, i);
		ps_widen(&w->cgroup, a, "cgroup");
		ps_widen(&w->label, a, "label");
		ps_widen(&w->policy, a, "policy");
	}
}

static void ps_print(json_object *list)
{
	size_t i, n = json_object_array_length(list);
	struct ps_width w;
	char dns[8];
	json_object *a;

	if (!n) {
		printf("no attachments\n");
		return;
	}
	ps_widths(list, &w);
	printf("%-*s  %-*s  %-*s  %4s  %10s  %8s  %5s  %s\n", w.cgroup, "CGROUP", w.label,
	       "LABEL", w.policy, "POLICY", "GEN", "ALLOWED", "DENIED", "DNS", "STATE");
	for (i = 0; i < n; i++) {
		a = json_object_array_get_idx(list, i);
		if (jnum(a, "dns_port"))
			snprintf(dns, sizeof(dns), "%llu", jnum(a, "dns_port"));
		else
			strcpy(dns, "-");
		printf("%-*s  %-*s  %-*s  %4llu  %10llu  %8llu  %5s  %s\n", w.cgroup,
		       jstr(a, "cgroup"), w.label, jstr(a, "label"), w.policy, jstr(a, "policy"),
		       jnum(a, "generation"), jnum(a, "allowed"), jnum(a, "denied"), dns,
		       jstr(a, "state"));
	}
}

/* Lost audit events are news: said on stderr, the table stays as it is. */
static void ps_lost(json_object *reply)
{
	__u64 n = jnum(reply, "events_lost");

	if (n)
		fprintf(stderr, "weir: %llu audit events were lost since the daemon started "
			"(its event buffers were full, or a weir run did not read them); verdicts "
			"were not affected\n", (unsigned long long)n);
}

int cmd_ps(int argc, char **argv)
{
	struct ctl_opts o = { 0 };
	json_object *reply, *list;
	long status;
	int ret;

	ret = ctl_parse(argc, argv, "j", ps_usage, &o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (o.n_args) {
		fprintf(stderr, "weir: ps: unknown argument '%s'\n", o.args[0]);
		cli_usage_error(NULL);
		return EXIT_USAGE;
	}
	if (ctl_call("ps", &o, "GET", "/v1/attachments", NULL, &status, &reply))
		return EXIT_FAIL;
	if (!json_object_object_get_ex(reply, "attachments", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		fprintf(stderr, "weir: ps: %s: no attachment list in the answer\n", o.socket);
		json_object_put(reply);
		return EXIT_FAIL;
	}
	if (o.json) {
		printf("%s\n", json_object_to_json_string_ext(reply, JSON_PLAIN));
	} else {
		ps_print(list);
		ps_lost(reply);
	}
	json_object_put(reply);
	return EXIT_OK;
}

int cmd_reload(int argc, char **argv)
{
	struct ctl_opts o = { 0 };
	json_object *reply, *list, *p;
	size_t i, n;
	long status;
	int ret, bad = 0;

	ret = ctl_parse(argc, argv, "", reload_usage, &o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (o.n_args) {
		fprintf(stderr, "weir: reload: unknown argument '%s'\n", o.args[0]);
		cli_usage_error(NULL);
		return EXIT_USAGE;
	}
	if (ctl_call("reload", &o, "POST", "/v1/reload", NULL, &status, &reply))
		return EXIT_FAIL;
	if (!json_object_object_get_ex(reply, "policies", &list) ||
	    !json_object_is_type(list, json_type_array))
		list = NULL;
	n = list ? json_object_array_length(list) : 0;
	for (i = 0; i < n; i++) {
		p = json_object_array_get_idx(list, i);
		bad += strcmp(jstr(p, "state"), "ok") != 0;
		printf("%s generation %llu: %s\n", jstr(p, "name"), jnum(p, "generation"),
		       jstr(p, "state"));
	}
	if (!n)
		printf("no policies in the daemon's policy directory\n");
	json_object_put(reply);
	return bad ? EXIT_FAIL : EXIT_OK;
}

int cmd_health(int argc, char **argv)
{
	struct ctl_opts o = { 0 };
	json_object *reply;
	long status;
	int ret;

	ret = ctl_parse(argc, argv, "", health_usage, &o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (o.n_args) {
		fprintf(stderr, "weir: health: unknown argument '%s'\n", o.args[0]);
		cli_usage_error(NULL);
		return EXIT_USAGE;
	}
	if (ctl_call("health", &o, "GET", "/v1/health", NULL, &status, &reply))
		return EXIT_FAIL;
	if (!strcmp(jstr(reply, "version"), "-")) {
		fprintf(stderr, "weir: health: %s: no version in the answer\n", o.socket);
		json_object_put(reply);
		return EXIT_FAIL;
	}
	printf("ok: weir daemon %s, pid %llu, %llu attachments\n", jstr(reply, "version"),
	       jnum(reply, "pid"), jnum(reply, "attachments"));
	json_object_put(reply);
	return EXIT_OK;
}
