// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* weir: the command-line entry point and subcommand table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "pins.h"
#include "policy.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int cmd_version(int argc, char **argv)
{
	printf("weir %s\n", WEIR_VERSION);
	return EXIT_OK;
}

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
	{ "run", cmd_run, "run a command with its egress confined to a policy" },
	{ "policy", cmd_policy, "check a policy file (weir policy check FILE)" },
	{ "status", cmd_status, "list weir runs on this machine, live and stale" },
	{ "cleanup", cmd_cleanup, "end stale runs: kill what is left, unpin, remove cgroups" },
	{ "version", cmd_version, "print the version" },
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
	printf("\nweir COMMAND --help for a command's options. Docs: docs/ in the source tree.\n"
	       "Example: sudo weir run --policy agent.yaml -- claude\n");
	return EXIT_OK;
}

int cli_usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "weir: %s\n", msg);
	fprintf(stderr, "try 'weir --help'\n");
	return -EINVAL;
}

static const char policy_usage[] =
	"Usage: weir policy check FILE\n"
	"Validate a policy file and print a summary of its rules.\n"
	"Exit status: 0 valid, 2 invalid (the error names file, line and column).\n";

static int policy_check(const char *path)
{
	char err[POLICY_ERR_LEN];
	struct policy *p;

	if (policy_load_file(path, &p, err)) {
		fprintf(stderr, "weir: %s\n", err);
		return EXIT_USAGE;
	}
	policy_print_summary(stdout, p);
	policy_print_warnings(stderr, p);
	policy_free(p);
	return EXIT_OK;
}

int cmd_policy(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(policy_usage, stdout);
		return EXIT_OK;
	}
	if (argc == 3 && !strcmp(argv[1], "check"))
		return policy_check(argv[2]);
	fputs(policy_usage, stderr);
	cli_usage_error(NULL);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : NULL;
	size_t i;

	log_hook_libbpf();
	if (!name) {
		cmd_help(0, NULL);
		return EXIT_USAGE;
	}
	if (!strcmp(name, "--help") || !strcmp(name, "-h"))
		return cmd_help(0, NULL);
	if (!strcmp(name, "--version"))
		return cmd_version(0, NULL);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "weir: unknown command '%s'\n", name);
	cli_usage_error(NULL);
	return EXIT_USAGE;
}
