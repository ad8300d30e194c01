/* sesame: one binary, subcommands (SPEC.md §1). This file only dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    { "spf", cli_spf, "evaluate SPF (RFC 7208) for an IP, sender and HELO" },
    { "dkim", cli_dkim, "DKIM keys, signing and verification (RFC 6376, RFC 8463)" },
    { "check", cli_check, "why a message passes or fails SPF, DKIM and DMARC" },
    { "doctor", cli_doctor, "audit a domain's DNS for mail: MX, SPF, DKIM, DMARC, MTA-STS" },
    { "serve", cli_serve, "run the service: inbound MX, SMTP submission, HTTP API" },
    { "account", cli_account, "create accounts (API key and SMTP credentials)" },
    { "domain", cli_domain, "add and verify domain identities" },
    { "sender", cli_sender, "verify single sender addresses by a confirmation link" },
    { "dmarc", cli_dmarc, "DMARC aggregate reports: show a report file; send due reports" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sesame COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(f, "\nRun 'sesame COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_RAN;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sesame: unknown command '%s' (try 'sesame --help')\n", argv[1]);
    return EXIT_USAGE;
}
