/* sesame sender add|show ADDRESS --account NAME (SPEC.md §1.5): single
 * sender addresses, on the store named by --config. The work is
 * service/senders.c (shared with POST/GET /v1/senders); this file parses
 * arguments and prints what happened, or the API's JSON with --json.
 * `add` queues the confirmation mail in the store's outbound queue with
 * an outbound engine of its own; the running `sesame serve` delivers it
 * (its delivery loop looks at the queue every second). Exit 0 when it ran
 * (the mail queued, or nothing to send); 2 for bad usage or input, an
 * unknown account, an address not added, or one that cannot be verified
 * (another account has it, the address is suppressed); 1 when the store
 * fails or the mail cannot be queued now (the minute between mails, the
 * 24 h limit). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "service/config.h"
#include "service/group_commit.h"
#include "service/outbound.h"
#include "service/senders.h"
#include "store/store.h"

static const char usage_text[] =
    "usage: sesame sender add|show ADDRESS --account NAME [--json] [--config FILE]\n"
    "  add      sends the opt-in confirmation mail to ADDRESS: the address is\n"
    "           verified for the account once the link in it is opened (valid\n"
    "           24 hours; asking again sends a new link and the old one stops\n"
    "           working). Nothing is sent when the account already has the\n"
    "           address, or its domain, verified. The mail is queued in the\n"
    "           store; the running `sesame serve` delivers it.\n"
    "  show     prints the status: pending, verified or expired\n"
    "An address can be verified by one account only. At most one mail per\n"
    "address per minute and 50 per account in 24 hours. Exit status 0 when it\n"
    "ran, 1 when the store fails or the mail cannot be sent now, 2 for bad\n"
    "usage or input (an address another account has included).\n";

enum { O_ACCOUNT = 1, O_JSON, O_CONFIG, O_HELP };

static const struct option opts[] = {
    { "account", required_argument, NULL, O_ACCOUNT },
    { "json", no_argument, NULL, O_JSON },
    { "config", required_argument, NULL, O_CONFIG },
    { "help", no_argument, NULL, O_HELP },
    { 0 },
};

struct args {
    const char *cmd, *address, *account, *config;
    bool json;
};

static const char *time_or(const json_t *j, const char *key, const char *none)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : none;
}

static void print_text(const struct args *a, const struct sender_result *r, const json_t *j)
{
    if (r->mail_sent)
        printf("sent a confirmation mail to %s for account %s\n"
               "the address is verified once the link in it is opened; the link expires "
               "at %s\n\n", r->address, a->account, time_or(j, "expires_at", "?"));
    else if (strcmp(a->cmd, "add") == 0)
        printf("%s is already verified for account %s%s: no mail sent\n\n", r->address,
               a->account, r->via_domain ? " through its domain" : "");
    printf("address:   %s\n", r->address);
    printf("account:   %s\n", a->account);
    printf("status:    %s%s\n", sender_status_name(r->status),
           r->status == STORE_ID_VERIFIED ? (r->via_domain ? " (its domain is verified)" : "")
                                          : "");
    if (!r->via_domain)
        printf("requested: %s\n", time_or(j, "requested_at", "never"));
    if (r->status != STORE_ID_VERIFIED)
        printf("expires:   %s\n", time_or(j, "expires_at", "-"));
    printf("verified:  %s\n", time_or(j, "verified_at", "never"));
    if (r->status == STORE_ID_EXPIRED)
        printf("\nthe link expired; send a new one: sesame sender add %s --account %s\n",
               r->address, a->account);
}

static int output(const struct args *a, const struct sender_result *r)
{
    json_t *j = sender_json(r);
    if (!j)
        return cli_runtime_error("sender", "out of memory");
    if (a->json) {
        cli_print_json(j);
        return EXIT_RAN;
    }
    print_text(a, r, j);
    json_decref(j);
    return EXIT_RAN;
}

/* The exit status of a refusal, with its line on stderr. */
static int refused(const struct args *a, int rc, const char *why)
{
    switch (rc) {
    case SENDER_BAD_INPUT:
    case SENDER_NOT_FOUND:
    case SENDER_TAKEN:
    case SENDER_SUPPRESSED:
        return cli_usage_error("sender", "%s %s: %s", a->cmd, a->address, why);
    default:
        return cli_runtime_error("sender", "%s %s: %s", a->cmd, a->address,
                                 why[0] ? why : "the store is not available");
    }
}

static int add(const struct args *a, struct store *st, const struct sesame_config *cfg,
               const struct store_account *acct)
{
    char err[512] = "";
    struct group_commit *gc = group_commit_new();
    struct outbound *ob = gc ? outbound_new(cfg, gc, st, err, sizeof err) : NULL;
    if (!ob) {
        group_commit_free(gc);
        return cli_runtime_error("sender", "cannot queue mail: %s", err[0] ? err
                                                                           : "out of memory");
    }
    struct sender_result r;
    int rc = sender_request(st, ob, cfg, acct, a->address, (int64_t)time(NULL), &r, err,
                            sizeof err);
    outbound_free(ob);
    group_commit_free(gc);
    if (rc != SENDER_OK)
        return refused(a, rc, err);
    return output(a, &r);
}

static int run(const struct args *a, struct store *st, const struct sesame_config *cfg)
{
    struct store_account acct;
    int rc = store_account_get_by_name(st, a->account, &acct);
    if (rc == STORE_NOTFOUND)
        return cli_usage_error("sender", "no account named '%s' (sesame account create %s)",
                               a->account, a->account);
    if (rc != STORE_OK)
        return cli_runtime_error("sender", "cannot read the store");
    if (strcmp(a->cmd, "add") == 0)
        return add(a, st, cfg, &acct);
    struct sender_result r;
    rc = sender_show(st, &acct, a->address, (int64_t)time(NULL), &r);
    if (rc == SENDER_NOT_FOUND)
        return cli_usage_error("sender", "%s has not been added to account %s (sesame sender "
                               "add %s --account %s)", a->address, a->account, a->address,
                               a->account);
    if (rc != SENDER_OK)
        return cli_runtime_error("sender", "cannot read the store");
    return output(a, &r);
}

int cli_sender(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("sender", "missing subcommand: add or show (see --help)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_RAN;
    }
    struct args a = { .cmd = argv[1] };
    if (strcmp(a.cmd, "add") != 0 && strcmp(a.cmd, "show") != 0)
        return cli_usage_error("sender", "unknown subcommand '%s' (add or show)", a.cmd);
    int c;
    opterr = 0;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_ACCOUNT: a.account = optarg; break;
        case O_JSON: a.json = true; break;
        case O_CONFIG: a.config = optarg; break;
        case O_HELP: fputs(usage_text, stdout); return EXIT_RAN;
        default:
            return cli_usage_error("sender", "%s: unknown or incomplete option '%s' (see --help)",
                                   a.cmd, argv[optind - 1]);
        }
    }
    if (optind == argc)
        return cli_usage_error("sender", "%s: which address? (sesame sender %s ADDRESS "
                               "--account NAME)", a.cmd, a.cmd);
    if (optind + 1 < argc)
        return cli_usage_error("sender", "unexpected argument '%s'", argv[optind + 1]);
    if (!a.account)
        return cli_usage_error("sender", "%s: --account NAME is required", a.cmd);

    char norm[SMTP_MAX_PATH_LEN + 1], err[512];
    if (sender_address_normalize(argv[optind], norm, sizeof norm, err, sizeof err) != 0)
        return cli_usage_error("sender", "%s: %s", argv[optind], err);
    a.address = norm;

    struct sesame_config cfg;
    int code;
    struct store *st = cli_open_store("sender", a.config, &cfg, &code);
    if (!st)
        return code;
    code = run(&a, st, &cfg);
    store_close(st);
    return code;
}
