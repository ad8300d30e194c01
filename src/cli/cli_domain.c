/* sesame domain add|show|verify|rotate|delete DOMAIN --account NAME
 * (SPEC.md §1.5): the administrative side of domain identities, on the
 * store named by --config. The work is service/identities.c (shared with
 * the HTTP API); this file parses arguments and prints the records to
 * publish in zone-file form with their status as last seen, or
 * identity_domain_json with --json (verify and rotate add a "reason").
 * Exit 0 when it ran, a failed verification included; 2 for bad usage, a
 * bad domain, an unknown account or a domain not added; 1 when the store
 * or DNS fails (no DNS answer: status unchanged). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "service/config.h"
#include "service/identities.h"
#include "store/store.h"
#include "util/log.h"

static const char usage_text[] =
    "usage: sesame domain add|show|verify|rotate|delete DOMAIN --account NAME [--json]\n"
    "                     [--config FILE] [--dns ADDR[:PORT]]\n"
    "  add      adds DOMAIN to the account (pending), makes its DKIM keys and\n"
    "           prints every DNS record to publish; adding it again prints them again\n"
    "  show     prints the status and the records, each as last seen in DNS\n"
    "  verify   looks every record up in DNS now: verified when _sesame.DOMAIN\n"
    "           has the TXT record \"sesame-verification=TOKEN\"; DKIM keys sign\n"
    "           once their record is visible; says what is wrong with each record\n"
    "  rotate   makes new DKIM keys (pending: signing switches once they are\n"
    "           visible in DNS; the old keys stay published for the grace period)\n"
    "  delete   removes the identity and its keys\n"
    "The running service also checks in the background: pending domains with\n"
    "backoff for 72 hours, verified ones daily.\n"
    "A domain can be verified by one account only. DNS goes to --dns, else\n"
    "$SESAME_DNS, else the [dns] servers of the configuration, else the system\n"
    "resolver. Exit status 0 when it ran (a failed verification too), 1 when\n"
    "DNS or the store fails, 2 for bad usage or input.\n";

enum { O_ACCOUNT = 1, O_JSON, O_CONFIG, O_DNS, O_HELP };

static const struct option opts[] = {
    { "account", required_argument, NULL, O_ACCOUNT },
    { "json", no_argument, NULL, O_JSON },
    { "config", required_argument, NULL, O_CONFIG },
    { "dns", required_argument, NULL, O_DNS },
    { "help", no_argument, NULL, O_HELP },
    { 0 },
};

struct args {
    const char *cmd, *domain, *account, *config, *dns;
    bool json;
};

/* One record in zone-file form; TXT values quoted, in 255-octet strings. */
static void print_record(const char *type, const char *name, const char *value)
{
    printf("    %s. IN %s ", name, type);
    if (strcmp(type, "TXT") != 0) {
        printf("%s\n", value);
        return;
    }
    size_t len = strlen(value);
    for (size_t off = 0; off == 0 || off < len; off += DNS_MAX_TXT_STRING) {
        size_t n = len - off > DNS_MAX_TXT_STRING ? DNS_MAX_TXT_STRING : len - off;
        fputs(off ? " \"" : "\"", stdout);
        for (size_t i = 0; i < n; i++) {
            char c = value[off + i];
            if (c == '"' || c == '\\')
                putchar('\\');
            putchar(c);
        }
        putchar('"');
    }
    putchar('\n');
}

static void print_records(const json_t *j)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "records"), i, r) {
        const char *type = json_string_value(json_object_get(r, "type"));
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *value = json_string_value(json_object_get(r, "value"));
        const char *purpose = json_string_value(json_object_get(r, "purpose"));
        const char *status = json_string_value(json_object_get(r, "status"));
        const char *why = json_string_value(json_object_get(r, "reason"));
        bool required = json_is_true(json_object_get(r, "required"));
        if (!type || !name || !value)
            continue;
        printf("    ; %s%s: %s%s%s\n", purpose ? purpose : "", required ? "" : " (advised)",
               status ? status : "unchecked", why && why[0] ? " - " : "", why ? why : "");
        print_record(type, name, value);
    }
}

static const char *time_or_never(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "never";
}

/* Text for people: status, the records, what to do next. */
static void print_text(const struct args *a, const struct store_domain *d, const json_t *j,
                       const char *reason)
{
    printf("domain:   %s\n", d->domain);
    printf("account:  %s\n", a->account);
    printf("status:   %s\n", identity_status_name(d->status));
    if (reason)
        printf("reason:   %s\n", reason);
    if (strcmp(a->cmd, "add") != 0) {
        printf("verified: %s\n", time_or_never(j, "verified_at"));
        printf("checked:  %s\n", time_or_never(j, "checked_at"));
    }
    const json_t *mf = json_object_get(j, "mail_from");
    if (json_is_object(mf))
        printf("mail from: %s (%s; when broken: %s)\n",
               json_string_value(json_object_get(mf, "domain")),
               json_string_value(json_object_get(mf, "status")),
               json_string_value(json_object_get(mf, "behavior_on_mx_failure")));
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(j, "dkim"), i, k)
        printf("dkim key: %s %s %s\n", json_string_value(json_object_get(k, "selector")),
               json_string_value(json_object_get(k, "algorithm")),
               json_string_value(json_object_get(k, "status")));
    printf("\nrecords to publish in the DNS zone of %s:\n", d->domain);
    print_records(j);
    if (d->status != STORE_ID_VERIFIED)
        printf("\nonce published, run: sesame domain verify %s --account %s\n", d->domain,
               a->account);
}

static int output(struct store *st, const struct identity_env *env, const struct args *a,
                  const struct store_domain *d, const char *reason)
{
    json_t *j = identity_domain_json(st, env, d);
    if (!j)
        return cli_runtime_error("domain", "out of memory");
    if (a->json) {
        if (reason)
            json_object_set_new(j, "reason", json_string(reason));
        cli_print_json(j);
        return EXIT_RAN;
    }
    print_text(a, d, j, reason);
    json_decref(j);
    return EXIT_RAN;
}

/* The [dns] servers of the configuration: the first of a list. */
static const char *config_dns(const struct sesame_config *cfg, char *out, size_t outlen)
{
    const char *s = cfg->dns_servers;
    s += strspn(s, " \t,");
    size_t n = strcspn(s, " \t,");
    if (n == 0 || n >= outlen)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

static int run(const struct args *a, struct store *st, const struct sesame_config *cfg)
{
    struct store_account acct;
    int rc = store_account_get_by_name(st, a->account, &acct);
    if (rc == STORE_NOTFOUND)
        return cli_usage_error("domain", "no account named '%s' (sesame account create %s)",
                               a->account, a->account);
    if (rc != STORE_OK)
        return cli_runtime_error("domain", "cannot read the store");

    char err[700] = "";
    struct store_domain d;
    struct identity_env env;
    identity_env_init(&env, cfg);
    if (strcmp(a->cmd, "add") == 0) {
        bool created;
        rc = identity_domain_add(st, &env, acct.id, a->domain, &d, &created, err, sizeof err);
        if (rc == IDENTITY_BADNAME)
            return cli_usage_error("domain", "%s", err);
        if (rc != STORE_OK)
            return cli_runtime_error("domain", "add %s: %s", a->domain, err);
        return output(st, &env, a, &d, NULL);
    }
    if (strcmp(a->cmd, "verify") != 0) {
        rc = store_domain_get(st, acct.id, a->domain, &d);
        if (rc == STORE_NOTFOUND)
            return cli_usage_error("domain", "%s has not been added to account %s (sesame "
                                   "domain add %s --account %s)", a->domain, a->account,
                                   a->domain, a->account);
        if (rc != STORE_OK)
            return cli_runtime_error("domain", "cannot read the store");
    }
    if (strcmp(a->cmd, "show") == 0)
        return output(st, &env, a, &d, NULL);
    if (strcmp(a->cmd, "rotate") == 0) {
        rc = identity_domain_rotate(st, &env, &d, (int64_t)time(NULL), err, sizeof err);
        if (rc == STORE_EXISTS)
            return cli_usage_error("domain", "rotate %s: %s", a->domain, err);
        if (rc != STORE_OK)
            return cli_runtime_error("domain", "rotate %s: %s", a->domain, err);
        return output(st, &env, a, &d, "new DKIM keys are pending: publish their _domainkey "
                      "records; signing switches to them once they are visible in DNS");
    }
    if (strcmp(a->cmd, "delete") == 0) {
        if (identity_domain_delete(st, &d, err, sizeof err) != STORE_OK)
            return cli_runtime_error("domain", "delete %s: %s", a->domain, err);
        if (a->json)
            cli_print_json(json_pack("{s:s, s:b}", "domain", d.domain, "deleted", 1));
        else
            printf("deleted %s (and its DKIM keys) from account %s\n", d.domain, a->account);
        return EXIT_RAN;
    }

    /* verify */
    char cfg_server[256];
    const char *server = dns_server_from_env(a->dns);
    if (!server)
        server = config_dns(cfg, cfg_server, sizeof cfg_server);
    int code;
    struct dns_resolver *dns = cli_resolver("domain", server, &code);
    if (!dns)
        return code;
    bool tempfail = false;
    rc = identity_domain_verify(st, dns, &env, acct.id, a->domain, &d, &tempfail, err,
                                sizeof err);
    dns_resolver_free(dns);
    if (rc == STORE_NOTFOUND)
        return cli_usage_error("domain", "%s has not been added to account %s (sesame domain "
                               "add %s --account %s)", a->domain, a->account, a->domain,
                               a->account);
    if (rc == IDENTITY_BADNAME)
        return cli_usage_error("domain", "%s", err);
    if (rc == STORE_ERROR)
        return cli_runtime_error("domain", "verify %s: %s", a->domain, err);
    if (tempfail)
        return cli_runtime_error("domain", "verify %s: %s%s%s", a->domain, err,
                                 server ? "; DNS server " : "", server ? server : "");
    /* STORE_OK (verified, failed) or STORE_EXISTS (another account has it):
     * the check ran either way, the status and the reason say how it went. */
    return output(st, &env, a, &d, err);
}

int cli_domain(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("domain", "missing subcommand: add, show, verify, rotate or "
                               "delete (see --help)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_RAN;
    }
    struct args a = { .cmd = argv[1] };
    static const char *const cmds[] = { "add", "show", "verify", "rotate", "delete" };
    bool known = false;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        known |= strcmp(a.cmd, cmds[i]) == 0;
    if (!known)
        return cli_usage_error("domain", "unknown subcommand '%s' (add, show, verify, rotate "
                               "or delete)", a.cmd);
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
        case O_DNS: a.dns = optarg; break;
        case O_HELP: fputs(usage_text, stdout); return EXIT_RAN;
        default:
            return cli_usage_error("domain", "%s: unknown or incomplete option '%s' (see --help)",
                                   a.cmd, argv[optind - 1]);
        }
    }
    if (optind == argc)
        return cli_usage_error("domain", "%s: which domain? (sesame domain %s DOMAIN --account "
                               "NAME)", a.cmd, a.cmd);
    if (optind + 1 < argc)
        return cli_usage_error("domain", "unexpected argument '%s'", argv[optind + 1]);
    if (!a.account)
        return cli_usage_error("domain", "%s: --account NAME is required", a.cmd);

    char norm[DNS_MAX_NAME_LEN + 1], err[320];
    if (identity_domain_normalize(argv[optind], norm, sizeof norm, err, sizeof err) != 0)
        return cli_usage_error("domain", "%s", err);
    a.domain = norm;

    struct sesame_config cfg;
    int code;
    struct store *st = cli_open_store("domain", a.config, &cfg, &code);
    if (!st)
        return code;
    /* This command prints its own outcome: the service's info lines would
     * only repeat it on stderr. */
    log_set_level(strcmp(cfg.log_level, "debug") == 0 ? LOG_DEBUG : LOG_WARN);
    code = run(&a, st, &cfg);
    store_close(st);
    return code;
}
