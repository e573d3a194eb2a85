/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the mailroom command line. It only parses arguments and calls a
 * subcommand in src/cli/; the work is done by the library.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *out)
{
    fputs("usage: mailroom <command> [options]\n"
          "\n"
          "commands:\n"
          "  parse [FILE|-] [--pretty]   print the event JSON of one message\n"
          "  parse --jsonl PATH...       one event per line for many messages\n"
          "  version                     print the version\n"
          "\n"
          "Exit status: 0 ok, 64 usage, 65 not a message, 74 I/O error.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return MR_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "parse") == 0)
        return mr_cli_parse(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mailroom %s\n", MR_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "mailroom: unknown command '%s'\n", cmd);
    usage(stderr);
    return MR_EXIT_USAGE;
}
