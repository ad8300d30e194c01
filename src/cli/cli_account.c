/* sesame account (SPEC.md §1.5): create an account with its API key and
 * SMTP credentials (printed once; the store keeps argon2id hashes), show
 * an account's sandbox flag, quotas, reputation and identities (never
 * secrets), and resume an account the reputation guard paused.
 * Same code paths as the HTTP API (service/accounts.c).
 *
 * Exit codes: 0 done; 2 bad usage, an invalid name, a name that is taken
 * (create) or unknown (show), a bad configuration; 1 the store failed.
 * A taken name is bad input, not a runtime failure: retrying cannot help. */
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "service/accounts.h"
#include "service/config.h"
#include "service/reputation.h"
#include "store/store.h"
#include "util/strview.h"

static const char usage_text[] =
    "usage: sesame account create NAME [--production] [--max-24h N] [--max-rate N]\n"
    "                             [--json] [--config FILE]\n"
    "       sesame account show NAME [--json] [--config FILE]\n"
    "       sesame account resume NAME [--json] [--config FILE]\n"
    "create makes an account (NAME: 1 to 64 of A-Z a-z 0-9 . _ -) and prints its\n"
    "API key and SMTP credentials: they are shown once and stored only as hashes.\n"
    "New accounts are in the sandbox (send only to verified addresses, 200\n"
    "messages per 24 h, 1 message/s) unless --production (50000 per 24 h,\n"
    "14/s); --max-24h and --max-rate override the quotas. show prints an\n"
    "account's sandbox flag, quotas, reputation (bounce and complaint rates over\n"
    "the window, status) and domains, never its secrets. resume lets an account\n"
    "the reputation guard paused send again, with a fresh window.\n"
    "Exit status: 0 done, 2 bad usage or input (invalid, taken or unknown NAME),\n"
    "1 the store failed.\n";

enum { O_PRODUCTION = 256, O_MAX24H, O_MAXRATE, O_JSON, O_CONFIG, O_HELP };

static const struct option opts[] = {
    { "production", no_argument, NULL, O_PRODUCTION },
    { "max-24h", required_argument, NULL, O_MAX24H },
    { "max-rate", required_argument, NULL, O_MAXRATE },
    { "json", no_argument, NULL, O_JSON },
    { "config", required_argument, NULL, O_CONFIG },
    { "help", no_argument, NULL, O_HELP },
    { 0 },
};

struct args {
    const char *cmd, *name, *config;
    bool production, json;
    uint32_t max_24h, max_rate;     /* 0: the defaults */
};

/* The name as typed, when it is safe to echo on one line. */
static const char *shown(const char *name)
{
    for (const char *p = name; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return "(with unprintable characters)";
    return strnlen(name, STORE_NAME_MAX * 2) < STORE_NAME_MAX * 2 ? name : "(too long)";
}

static int parse_quota(const char *opt, const char *v, uint32_t *out)
{
    unsigned long n;
    if (!sv_to_uint(sv_cstr(v), UINT32_MAX, &n) || n == 0)
        return cli_usage_error("account", "%s: '%s' is not a number from 1 to %" PRIu32, opt,
                               shown(v), UINT32_MAX);
    *out = (uint32_t)n;
    return 0;
}

static const char *status_word(int status)
{
    switch (status) {
    case STORE_ID_PENDING: return "pending";
    case STORE_ID_VERIFIED: return "verified";
    case STORE_ID_FAILED: return "failed";
    case STORE_ID_EXPIRED: return "expired";
    }
    return "unknown";
}

static int cmd_create(const struct args *a, struct store *st)
{
    struct store_account acct;
    struct account_secrets sec;
    char err[256];
    int rc = account_create(st, a->name, a->production, a->max_24h, a->max_rate, &acct, &sec,
                            err, sizeof err);
    if (rc == STORE_EXISTS)
        return cli_usage_error("account", "an account named '%s' already exists", a->name);
    if (rc != STORE_OK)
        return cli_runtime_error("account", "cannot create account '%s': %s", a->name, err);
    if (a->json) {
        json_t *o = json_object();
        json_object_set_new(o, "account", json_string(acct.name));
        json_object_set_new(o, "api_key", json_string(sec.api_key));
        json_object_set_new(o, "smtp_username", json_string(sec.smtp_username));
        json_object_set_new(o, "smtp_password", json_string(sec.smtp_password));
        json_object_set_new(o, "sandbox", json_boolean(acct.sandbox));
        json_object_set_new(o, "max_24h", json_integer(acct.max_24h));
        json_object_set_new(o, "max_rate", json_integer(acct.max_rate));
        cli_print_json(o);
    } else {
        printf("Account %s created (%s, %" PRIu32 " messages per 24 h, %" PRIu32
               " message%s/s).\n\n",
               acct.name, acct.sandbox ? "sandbox: sends only to verified addresses"
                                       : "production",
               acct.max_24h, acct.max_rate, acct.max_rate == 1 ? "" : "s");
        printf("  API key        %s\n", sec.api_key);
        printf("  SMTP username  %s\n", sec.smtp_username);
        printf("  SMTP password  %s\n\n", sec.smtp_password);
        printf("These secrets are shown only this once and stored as hashes: keep them\n"
               "now. Use the API key as 'Authorization: Bearer KEY' for the HTTP API, the\n"
               "SMTP username and password with AUTH on the submission port.\n");
    }
    sodium_memzero(&sec, sizeof sec);
    return fflush(stdout) == 0 ? EXIT_RAN : cli_runtime_error("account", "cannot write output");
}

struct domains {
    json_t *arr;
    int failed;
};

static int add_domain(const struct store_domain *d, void *arg)
{
    struct domains *l = arg;
    json_t *o = json_pack("{s:s, s:s}", "domain", d->domain, "status", status_word(d->status));
    if (!o || json_array_append_new(l->arr, o) != 0)
        l->failed = 1;
    return l->failed;
}

static int cmd_show(const struct args *a, struct store *st)
{
    struct store_account acct;
    int rc = store_account_get_by_name(st, a->name, &acct);
    if (rc == STORE_NOTFOUND)
        return cli_usage_error("account", "no account named '%s'", a->name);
    int64_t sent = 0;
    struct domains doms = { .arr = json_array() };
    if (rc == STORE_OK)
        rc = store_outbound_count_since(st, acct.id, (int64_t)time(NULL) - 24 * 3600, &sent);
    if (rc == STORE_OK)
        rc = store_domain_list(st, acct.id, add_domain, &doms);
    if (rc != STORE_OK || doms.failed || !doms.arr) {
        json_decref(doms.arr);
        return cli_runtime_error("account", "cannot read account '%s' from the store", a->name);
    }
    struct reputation rep;
    if (reputation_get(st, acct.id, (int64_t)time(NULL), &rep) != STORE_OK) {
        json_decref(doms.arr);
        return cli_runtime_error("account", "cannot read account '%s' from the store", a->name);
    }
    if (a->json) {
        json_t *o = json_object();
        json_object_set_new(o, "reputation", reputation_json(&rep));
        json_object_set_new(o, "account", json_string(acct.name));
        json_object_set_new(o, "id", json_integer(acct.id));
        json_object_set_new(o, "sandbox", json_boolean(acct.sandbox));
        json_object_set_new(o, "max_24h", json_integer(acct.max_24h));
        json_object_set_new(o, "max_rate", json_integer(acct.max_rate));
        json_object_set_new(o, "sent_24h", json_integer(sent));
        json_object_set_new(o, "dmarc_report_only", json_boolean(acct.dmarc_report_only));
        json_object_set_new(o, "created_at", json_integer(acct.created_at));
        json_object_set_new(o, "domains", doms.arr);
        cli_print_json(o);
    } else {
        char when[64] = "?";
        time_t t = (time_t)acct.created_at;
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        printf("Account %s\n", acct.name);
        printf("  sandbox   %s\n", acct.sandbox ? "yes: sends only to verified addresses"
                                                : "no (production)");
        printf("  quota     %" PRIu32 " messages per 24 h (%" PRId64 " sent in the last 24 h), "
               "%" PRIu32 " message%s/s\n", acct.max_24h, sent, acct.max_rate,
               acct.max_rate == 1 ? "" : "s");
        printf("  DMARC     %s\n", acct.dmarc_report_only
                                       ? "report only (never rejects or quarantines)"
                                       : "senders' policies applied to inbound mail");
        printf("  reputation %s: bounce rate %.2f%%, complaint rate %.3f%% over %lld sends "
               "(%lld days)%s%s\n", reputation_status_name(rep.status), rep.bounce_rate * 100,
               rep.complaint_rate * 100, (long long)rep.sends, (long long)rep.window_days,
               rep.reason[0] ? " - " : "", rep.reason);
        if (!rep.judged)
            printf("             (not judged on rates below the minimum volume)\n");
        printf("  created   %s\n", when);
        size_t n = json_array_size(doms.arr);
        if (n == 0)
            printf("  domains   none yet (sesame domain add DOMAIN --account %s)\n", acct.name);
        for (size_t i = 0; i < n; i++) {
            json_t *d = json_array_get(doms.arr, i);
            printf("  %s %s (%s)\n", i == 0 ? "domains  " : "         ",
                   json_string_value(json_object_get(d, "domain")),
                   json_string_value(json_object_get(d, "status")));
        }
        json_decref(doms.arr);
    }
    return fflush(stdout) == 0 ? EXIT_RAN : cli_runtime_error("account", "cannot write output");
}

static int cmd_resume(const struct args *a, struct store *st)
{
    struct store_account acct;
    int rc = store_account_get_by_name(st, a->name, &acct);
    if (rc == STORE_NOTFOUND)
        return cli_usage_error("account", "no account named '%s'", a->name);
    if (rc == STORE_OK)
        rc = reputation_resume(st, acct.id, (int64_t)time(NULL));
    if (rc != STORE_OK)
        return cli_runtime_error("account", "cannot resume '%s': the store failed", a->name);
    if (a->json)
        cli_print_json(json_pack("{s:s, s:s, s:s}", "account", acct.name, "status", "healthy",
                                 "previous", reputation_status_name(acct.reputation)));
    else
        printf("Account %s resumed (was %s): it may send again; its reputation window starts "
               "afresh\n", acct.name, reputation_status_name(acct.reputation));
    return EXIT_RAN;
}

static bool allowed(const char *cmd, int opt)
{
    switch (opt) {
    case O_JSON: case O_CONFIG: case O_HELP: return true;
    case O_PRODUCTION: case O_MAX24H: case O_MAXRATE: return strcmp(cmd, "create") == 0;
    }
    return false;
}

int cli_account(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("account", "missing subcommand: create, show or resume (see --help)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_RAN;
    }
    struct args a = { .cmd = argv[1] };
    if (strcmp(a.cmd, "create") != 0 && strcmp(a.cmd, "show") != 0 &&
        strcmp(a.cmd, "resume") != 0)
        return cli_usage_error("account", "unknown subcommand '%s' (create, show or resume)",
                               shown(a.cmd));
    int c;
    opterr = 0;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == '?' || c == ':' || !allowed(a.cmd, c))
            return cli_usage_error("account", "%s: unknown or incomplete option '%s' "
                                   "(see --help)", a.cmd, shown(argv[optind - 1]));
        switch (c) {
        case O_PRODUCTION: a.production = true; break;
        case O_MAX24H:
            if (parse_quota("--max-24h", optarg, &a.max_24h) != 0)
                return EXIT_USAGE;
            break;
        case O_MAXRATE:
            if (parse_quota("--max-rate", optarg, &a.max_rate) != 0)
                return EXIT_USAGE;
            break;
        case O_JSON: a.json = true; break;
        case O_CONFIG: a.config = optarg; break;
        case O_HELP: fputs(usage_text, stdout); return EXIT_RAN;
        }
    }
    if (optind >= argc)
        return cli_usage_error("account", "%s: which account? (sesame account %s NAME)", a.cmd,
                               a.cmd);
    if (optind + 1 < argc)
        return cli_usage_error("account", "unexpected argument '%s'", shown(argv[optind + 1]));
    a.name = argv[optind];
    if (!account_name_valid(a.name))
        return cli_usage_error("account", "invalid account name '%s': use 1 to %d of "
                               "A-Z a-z 0-9 . _ -", shown(a.name), STORE_NAME_MAX);

    struct sesame_config cfg;
    int code;
    struct store *st = cli_open_store("account", a.config, &cfg, &code);
    if (!st)
        return code;
    if (strcmp(a.cmd, "resume") == 0)
        code = cmd_resume(&a, st);
    else
        code = strcmp(a.cmd, "create") == 0 ? cmd_create(&a, st) : cmd_show(&a, st);
    store_close(st);
    return code;
}
