/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The command-line front: the subcommands main() dispatches. */
#ifndef WEIR_CLI_H
#define WEIR_CLI_H

#include "weir.h" /* exit codes, version */

/* Print "weir: MSG" (if any) and "try 'weir CMD --help'"; returns -EINVAL. */
int cli_usage_error(const char *msg);

int cmd_run(int argc, char **argv);
int cmd_policy(int argc, char **argv);
/* weir policy verify / suggest (lifecycle_cmd.c); argv[0] is "verify" or "suggest". */
int cmd_policy_verify(int argc, char **argv);
int cmd_policy_suggest(int argc, char **argv);
int cmd_daemon(int argc, char **argv);
/* Clients of weir daemon (daemonctl.c). */
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_health(int argc, char **argv);
/* The NRI plugin (nri_cmd.c). */
int cmd_nri(int argc, char **argv);
/* The OCI runtime hook (ocihook_cmd.c). */
int cmd_oci_hook(int argc, char **argv);

#endif /* WEIR_CLI_H */
