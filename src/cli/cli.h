/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - subcommands of the mailroom binary. Each takes the arguments
 * after the program name (argv[0] is the subcommand) and returns a
 * sysexits.h-style exit status; each prints its own errors to stderr.
 */
#ifndef MR_CLI_H
#define MR_CLI_H

#define MR_VERSION "0.1.0"

enum mr_exit {
    MR_EXIT_OK = 0,
    MR_EXIT_USAGE = 64,   /* EX_USAGE */
    MR_EXIT_DATAERR = 65, /* EX_DATAERR: input is not a message */
    MR_EXIT_NOUSER = 67,  /* EX_NOUSER: no such recipient (MTAs bounce) */
    MR_EXIT_SOFTWARE = 70,/* EX_SOFTWARE: internal error */
    MR_EXIT_IOERR = 74,   /* EX_IOERR */
    MR_EXIT_TEMPFAIL = 75,/* EX_TEMPFAIL: try again later (MTAs retry) */
    MR_EXIT_CONFIG = 78,  /* EX_CONFIG: the configuration is wrong */
};

int mr_cli_parse(int argc, char **argv);
int mr_cli_serve(int argc, char **argv);
int mr_cli_ingest(int argc, char **argv);
int mr_cli_token(int argc, char **argv);
int mr_cli_dlq(int argc, char **argv);
int mr_cli_migrate(int argc, char **argv);
int mr_cli_content(int argc, char **argv);
int mr_cli_config(int argc, char **argv);
int mr_cli_tickets(int argc, char **argv);
int mr_cli_rules(int argc, char **argv);
int mr_cli_html(int argc, char **argv);
int mr_cli_webhooks(int argc, char **argv);
int mr_cli_deliveries(int argc, char **argv);
int mr_cli_outbound(int argc, char **argv);
int mr_cli_notifications(int argc, char **argv);
int mr_cli_attachments(int argc, char **argv);

#endif
