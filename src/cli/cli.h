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
    MR_EXIT_IOERR = 74,   /* EX_IOERR */
};

int mr_cli_parse(int argc, char **argv);
int mr_cli_config(int argc, char **argv);

#endif
