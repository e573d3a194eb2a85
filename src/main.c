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
          "  serve [--smtp A] [--lmtp A] [--http A]  run the server\n"
          "  ingest [--rcpt ADDR]... [--from ADDR] < MSG  queue one message "
          "(MTA pipe)\n"
          "  parse [FILE|-] [--pretty]   print the event JSON of one message\n"
          "        [--mime-only]         (without html_sanitized, stripped_text)\n"
          "  parse --jsonl PATH...       one event per line for many messages\n"
          "  config check FILE           validate a configuration file\n"
          "  rules check FILE            validate a rules file\n"
          "  rules test MSG --rules FILE print the rules' decisions for a "
          "message\n"
          "  token create|list|revoke    API tokens\n"
          "  dlq list|show|retry         the dead-letter queue\n"
          "  tickets list|show N         tickets and their messages\n"
          "  webhooks list               webhook subscriptions\n"
          "  deliveries list|redrive ID  webhook deliveries\n"
          "  outbound list|retry ID      outbound mail (acknowledgements)\n"
          "  notifications list|redrive ID  integrations' notifications\n"
          "  attachments rescan [--state S] [--since D]  scan attachments "
          "again\n"
          "  migrate [--status]          upgrade the database schema\n"
          "  html sanitize|text [FILE|-] [--remote-images] [--jsonl]\n"
          "                              sanitized HTML or its text\n"
          "  content resanitize          sanitize stored HTML again (new rules)\n"
          "  version                     print the version\n"
          "\n"
          "Server-side commands take --data DIR and --config FILE.\n"
          "Exit status: 0 ok, 64 usage, 65 bad input, 67 unknown recipient,\n"
          "74 I/O error, 75 try again later, 78 bad configuration.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return MR_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {
        {"parse", mr_cli_parse},   {"serve", mr_cli_serve},
        {"ingest", mr_cli_ingest}, {"config", mr_cli_config},
        {"token", mr_cli_token},   {"dlq", mr_cli_dlq},
        {"migrate", mr_cli_migrate}, {"tickets", mr_cli_tickets},
        {"rules", mr_cli_rules},     {"html", mr_cli_html},
        {"content", mr_cli_content},
        {"webhooks", mr_cli_webhooks}, {"deliveries", mr_cli_deliveries},
        {"outbound", mr_cli_outbound}, {"notifications", mr_cli_notifications},
        {"attachments", mr_cli_attachments},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
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
