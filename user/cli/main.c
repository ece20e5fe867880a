// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* weir: the command-line entry point and subcommand table. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "compile.h"
#include "log.h"
#include "policy.h"
#include "runs.h"
#include "shipped.h"
#include "unixsock.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int cmd_version(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: weir version (or weir --version)\n"
		       "Print the version: `git describe --always --dirty` of the source weir was\n"
		       "built from, or the release number when it was not built from git.\n");
		return EXIT_OK;
	}
	if (argc > 1) {
		cli_usage_error("version: takes no arguments");
		return EXIT_USAGE;
	}
	printf("weir %s\n", weir_version());
	return EXIT_OK;
}

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
	{ "run", cmd_run, "run a command with its egress confined to a policy" },
	{ "policy", cmd_policy, "check, show, verify and suggest policies" },
	{ "status", cmd_status, "list weir runs on this machine, live and stale" },
	{ "cleanup", cmd_cleanup, "end stale runs: kill what is left, unpin, remove cgroups" },
	{ "daemon", cmd_daemon, "enforce policies on many cgroups, in the foreground" },
	{ "attach", cmd_attach, "ask the daemon to enforce a policy on a cgroup" },
	{ "detach", cmd_detach, "ask the daemon to stop enforcing on a cgroup" },
	{ "ps", cmd_ps, "list the daemon's attachments" },
	{ "reload", cmd_reload, "make the daemon re-read its policy directory" },
	{ "health", cmd_health, "say whether the daemon answers (for probes)" },
	{ "nri", cmd_nri, "bind pods' policies from the runtime's NRI (Kubernetes)" },
	{ "oci-hook", cmd_oci_hook, "the OCI runtime hook: a container's policy from its annotation" },
	{ "version", cmd_version, "print the version (git describe of the build)" },
	{ "help", cmd_help, "this help" },
};

static int cmd_help(int argc, char **argv)
{
	size_t i;

	printf("Usage: weir COMMAND [OPTIONS]\n"
	       "eBPF egress enforcement for a process tree: every connect() and sendmsg()\n"
	       "is checked in the kernel against a policy, and every decision is audited.\n\n"
	       "Commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		printf("  %-9s %s\n", commands[i].name, commands[i].summary);
	printf("\nweir COMMAND --help for a command's options; man 8 weir. Docs: docs/ in the\n"
	       "source tree, share/doc/weir/ where installed.\n"
	       "Example: sudo weir run --policy agent.yaml -- claude\n");
	return EXIT_OK;
}

/* The command being run, for the hint: its own --help lists its options. */
static const char *cli_cmd;

int cli_usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "weir: %s\n", msg);
	if (cli_cmd)
		fprintf(stderr, "try 'weir %s --help'\n", cli_cmd);
	else
		fprintf(stderr, "try 'weir --help'\n");
	return -EINVAL;
}

static const char policy_usage[] =
	"Usage: weir policy check FILE\n"
	"       weir policy show [NAME]\n"
	"       weir policy verify --policy FILE [EVENTS.jsonl ...]\n"
	"       weir policy suggest [--base POLICY] [EVENTS.jsonl ...]\n"
	"\n"
	"  check FILE    validate a policy file, compile it as weir run would (no\n"
	"                names resolved) and print a summary of its rules and of the\n"
	"                prefixes and port sets it compiles to (FILE /dev/stdin reads\n"
	"                standard input)\n"
	"  show [NAME]   print a shipped policy, to copy and edit: agent-default (the\n"
	"                built-in default of weir run, when NAME is not given), demo,\n"
	"                or a preset: preset:npm, preset:github, ... (include: them);\n"
	"                on stderr, as # comments, the unix: section weir enforces\n"
	"                with it (the built-in list and the policy's patterns)\n"
	"  verify        replay recorded events (weir run -e) against a policy: what\n"
	"                would it deny? (exit 1 when something)\n"
	"  suggest       print a policy allowing what recorded events reached\n"
	"\n"
	"Exit status: 0 valid; 2 invalid (the error names file, line and column), or\n"
	"a bad command line. weir policy verify --help and suggest --help for theirs.\n";

static bool is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/* ARGS of a policy subcommand: --help, "--" ends options, no other option. */
static int policy_args(int argc, char **argv, int max, char ***args, int *n)
{
	if (argc > 1 && is_help(argv[1])) {
		fputs(policy_usage, stdout);
		return 1;
	}
	if (argc > 1 && !strcmp(argv[1], "--")) {
		argc--;
		argv++;
	} else if (argc > 1 && argv[1][0] == '-' && argv[1][1]) {
		fprintf(stderr, "weir: policy %s: unknown option '%s'\n", argv[0], argv[1]);
		return cli_usage_error(NULL);
	}
	*args = argv + 1;
	*n = argc - 1;
	if (*n <= max)
		return 0;
	fprintf(stderr, "weir: policy %s: too many arguments\n", argv[0]);
	return cli_usage_error(NULL);
}

static int policy_check(int argc, char **argv)
{
	char err[POLICY_ERR_LEN], cerr[COMPILE_ERR_LEN], **args;
	struct policy *p;
	int n, ret;

	ret = policy_args(argc, argv, 1, &args, &n);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (n != 1) {
		cli_usage_error("policy check: no FILE given");
		return EXIT_USAGE;
	}
	if (policy_load_file(args[0], &p, err)) {
		fprintf(stderr, "weir: %s\n", err);
		return EXIT_USAGE;
	}
	/* What only compiling finds (the prefixes and port sets weir run
	 * will write) is checked here too, so run cannot fail on it later. */
	policy_print_summary(stdout, p);
	ret = compile_check(p, stdout, cerr);
	if (ret)
		fprintf(stderr, "weir: %s: %s\n", p->source, cerr);
	else
		policy_print_warnings(stderr, p);
	policy_free(p);
	return ret ? EXIT_USAGE : EXIT_OK;
}

/*
 * After a shipped policy, the unix: section weir enforces with it (the
 * built-in list and the policy's own patterns), as `weir policy check`
 * prints it: on stderr, as YAML comments, so that stdout stays the file
 * byte for byte (policy_sha256 is its hash) and 2>&1 still parses.
 */
static void show_unix(const char *name, const char *text, size_t len)
{
	char err[POLICY_ERR_LEN];
	struct policy *p;

	if (policy_load_buffer(name, text, len, &p, err)) {
		fprintf(stderr, "# weir: %s\n", err);
		return;
	}
	fprintf(stderr, "# The unix: section weir enforces with %s (weir policy check):\n", name);
	unix_print_effective(stderr, p, "# ");
	policy_free(p);
}

static int policy_show(int argc, char **argv)
{
	const char *name = POLICY_BUILTIN, *text;
	char **args;
	size_t len;
	int n, ret;

	ret = policy_args(argc, argv, 1, &args, &n);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	if (n == 1)
		name = args[0];
	text = shipped_policy(name, &len);
	if (!text) {
		fprintf(stderr, "weir: policy show: no shipped policy '%s'; there are: ", name);
		shipped_policy_list(stderr);
		fputc('\n', stderr);
		return EXIT_USAGE;
	}
	if (fwrite(text, 1, len, stdout) != len || fflush(stdout))
		return EXIT_FAIL;
	show_unix(name, text, len);
	return EXIT_OK;
}

static const struct command policy_commands[] = {
	{ "check", policy_check, "validate a policy file" },
	{ "show", policy_show, "print a shipped policy" },
	{ "verify", cmd_policy_verify, "replay recorded events against a policy" },
	{ "suggest", cmd_policy_suggest, "print a policy allowing what events reached" },
};

int cmd_policy(int argc, char **argv)
{
	size_t i;

	if (argc >= 2 && is_help(argv[1])) {
		fputs(policy_usage, stdout);
		return EXIT_OK;
	}
	for (i = 0; argc >= 2 && i < sizeof(policy_commands) / sizeof(policy_commands[0]); i++)
		if (!strcmp(argv[1], policy_commands[i].name))
			return policy_commands[i].fn(argc - 1, argv + 1);
	if (argc >= 2)
		fprintf(stderr, "weir: policy: unknown command '%s'\n", argv[1]);
	fputs(policy_usage, stderr);
	cli_usage_error(NULL);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : NULL;
	size_t i;

	log_stderr_init();
	log_hook_libbpf();
	/*
	 * weir uses libcrypto for SHA-256 alone (the identity of a policy
	 * and of its lists): the system's openssl.cnf (providers, engines)
	 * changes no digest, and OpenSSL reading it was ~3 ms of every
	 * weir run, one through the daemon included (docs/performance.md).
	 * The hash is OpenSSL's block code called directly (sha256.h): no
	 * provider is ever set up, and nothing is left to take down at exit.
	 */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL);
	if (!name) {
		cmd_help(0, NULL);
		return EXIT_USAGE;
	}
	if (!strcmp(name, "--help") || !strcmp(name, "-h"))
		return cmd_help(0, NULL);
	if (!strcmp(name, "--version"))
		return cmd_version(0, NULL);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name)) {
			cli_cmd = commands[i].name;
			return commands[i].fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "weir: unknown command '%s'\n", name);
	cli_usage_error(NULL);
	return EXIT_USAGE;
}
