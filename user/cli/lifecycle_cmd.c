// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* weir policy verify and weir policy suggest: the command lines. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "judge.h"
#include "policy.h"
#include "suggest.h"
#include "verify.h"

static const char verify_usage[] =
	"Usage: weir policy verify --policy FILE [EVENTS.jsonl ...]\n"
	"\n"
	"Replay the decisions recorded by weir run -e (files, or standard input when\n"
	"none is given) against the policy FILE, in userspace with the kernel's own\n"
	"matcher (no root, no BPF), as enforce mode would judge them, and print each\n"
	"destination it would deny: name or address, port and protocol, how many\n"
	"decisions, which processes. DNS queries are judged by their name; a\n"
	"connection to an address learned from a name counts as allowed when FILE\n"
	"allows the name on that port.\n"
	"\n"
	"  -p, --policy FILE   the policy to verify against (required)\n"
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 nothing would be denied; 1 something would; 2 bad input (a\n"
	"bad policy, or a malformed event line, named by FILE:LINE) or a bad command\n"
	"line.\n"
	"Example (CI): weir policy verify --policy prod.yaml audit.jsonl\n";

static const char suggest_usage[] =
	"Usage: weir policy suggest [--base POLICY] [EVENTS.jsonl ...]\n"
	"\n"
	"Print a policy (YAML that passes weir policy check) allowing what the\n"
	"decisions recorded by weir run -e show the workload reached (files, or\n"
	"standard input when none is given): names wherever the events know them,\n"
	"addresses only for destinations reached by address, the ports and protocols\n"
	"seen, and a comment per rule with how often and which processes (with the\n"
	"flows' close events: how much was sent and received, and a commented\n"
	"upload_budget of twice what was sent). Three or more sibling names under\n"
	"one registrable domain become a wildcard (never of a public suffix). Cloud\n"
	"metadata endpoints, and names weir's resolver refuses as malformed or\n"
	"escaped, are never suggested; what is left out, and why, is said on stderr.\n"
	"\n"
	"  -b, --base POLICY   print only what POLICY does not allow already, as\n"
	"                      include: [POLICY] plus the new rules (POLICY is\n"
	"                      written as given: relative to where the output goes)\n"
	"  -h, --help          this help\n"
	"\n"
	"Exit status: 0 printed; 2 bad input (a bad base policy, or a malformed event\n"
	"line, named by FILE:LINE) or a bad command line.\n"
	"Example: sudo weir run --audit -e audit.jsonl -- make test\n"
	"         weir policy suggest audit.jsonl >policy.yaml\n";

/* Parse the options of verify (policy) or suggest (base): 1 --help, 0, <0. */
static int lc_options(int argc, char **argv, const char *usage, const char **file)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "base", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	bool verify = !strcmp(argv[0], "verify");
	char msg[128];
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, verify ? "+:p:h" : "+:b:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		if ((c == 'p' && verify) || (c == 'b' && !verify)) {
			*file = optarg;
			continue;
		}
		if (c == ':')
			snprintf(msg, sizeof(msg), "policy %s: %s needs an argument", argv[0],
				 argv[optind - 1]);
		else
			snprintf(msg, sizeof(msg), "policy %s: unknown option '%s'", argv[0],
				 argv[optind - 1]);
		return cli_usage_error(msg);
	}
	return 0;
}

/* An empty policy: what every policy allows (loopback). */
static const char empty_policy[] = "version: 1\n";

static int load_matcher(const char *path, struct matcher **m)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN];
	struct policy *p;
	int ret;

	ret = path ? policy_load_file(path, &p, err) :
		     policy_load_buffer("<empty policy>", empty_policy, sizeof(empty_policy) - 1, &p,
					err);
	if (ret) {
		fprintf(stderr, "weir: %s\n", err);
		return ret;
	}
	ret = matcher_new(p, m, cerr);
	if (ret)
		fprintf(stderr, "weir: %s: %s\n", path, cerr);
	return ret;
}

int cmd_policy_verify(int argc, char **argv)
{
	const char *policy = NULL;
	char err[EVREAD_ERR_LEN];
	struct matcher *m;
	int ret;

	ret = lc_options(argc, argv, verify_usage, &policy);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (!policy) {
		cli_usage_error("policy verify: --policy FILE is required");
		return EXIT_USAGE;
	}
	if (load_matcher(policy, &m))
		return EXIT_USAGE;
	ret = verify_events(m, argv + optind, argc - optind, stdout, err);
	matcher_free(m);
	if (ret < 0) {
		fflush(stdout);
		fprintf(stderr, "weir: policy verify: %s\n", err);
		return EXIT_USAGE;
	}
	if (fflush(stdout))
		return EXIT_USAGE;
	return ret ? EXIT_FAIL : EXIT_OK;
}

int cmd_policy_suggest(int argc, char **argv)
{
	struct suggest_opts o = { .out = stdout, .notes = stderr };
	char err[EVREAD_ERR_LEN];
	struct matcher *m;
	int ret;

	ret = lc_options(argc, argv, suggest_usage, &o.base_path);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (load_matcher(o.base_path, &m))
		return EXIT_USAGE;
	o.base = m;
	ret = suggest_events(&o, argv + optind, argc - optind, err);
	matcher_free(m);
	if (ret < 0) {
		fprintf(stderr, "weir: policy suggest: %s\n", err);
		return EXIT_USAGE;
	}
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}
