/* sesame domain add|show|verify DOMAIN --account NAME (SPEC.md §1.5): the
 * administrative side of domain identities, on the store named by
 * --config. The work is service/identities.c (shared with the HTTP API);
 * this file parses arguments and prints the records to publish in
 * zone-file form, or identity_domain_json with --json (verify adds a
 * "reason"). Exit 0 when it ran, a failed verification included; 2 for bad
 * usage, a bad domain, an unknown account or a domain not added; 1 when
 * the store or DNS fails (no DNS answer: status unchanged).
 * `rotate` comes with the DKIM records, in a later issue. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "service/config.h"
#include "service/identities.h"
#include "store/store.h"
#include "util/log.h"

static const char usage_text[] =
    "usage: sesame domain add|show|verify DOMAIN --account NAME [--json]\n"
    "                     [--config FILE] [--dns ADDR[:PORT]]\n"
    "  add      adds DOMAIN to the account (pending) and prints the DNS records\n"
    "           to publish; adding it again prints the same records\n"
    "  show     prints the status and the records to publish\n"
    "  verify   looks the verification record up in DNS now: verified when\n"
    "           _sesame.DOMAIN has the TXT record \"sesame-verification=TOKEN\"\n"
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
        if (!type || !name || !value)
            continue;
        printf("    ; %s\n", purpose ? purpose : "");
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
    printf("\nrecords to publish in the DNS zone of %s:\n", d->domain);
    print_records(j);
    if (d->status != STORE_ID_VERIFIED)
        printf("\nonce published, run: sesame domain verify %s --account %s\n", d->domain,
               a->account);
}

static int output(struct store *st, const struct args *a, const struct store_domain *d,
                  const char *reason)
{
    json_t *j = identity_domain_json_full(st, d);
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

    char err[640] = "";
    struct store_domain d;
    if (strcmp(a->cmd, "add") == 0) {
        rc = identity_domain_add(st, acct.id, a->domain, &d, err, sizeof err);
        if (rc == IDENTITY_BADNAME)
            return cli_usage_error("domain", "%s", err);
        if (rc != STORE_OK)
            return cli_runtime_error("domain", "add %s: %s", a->domain, err);
        if (identity_domain_keys(st, cfg->data_dir, &d, err, sizeof err) != STORE_OK)
            return cli_runtime_error("domain", "add %s: %s", a->domain, err);
        return output(st, a, &d, NULL);
    }
    if (strcmp(a->cmd, "show") == 0) {
        rc = store_domain_get(st, acct.id, a->domain, &d);
        if (rc == STORE_NOTFOUND)
            return cli_usage_error("domain", "%s has not been added to account %s (sesame "
                                   "domain add %s --account %s)", a->domain, a->account,
                                   a->domain, a->account);
        if (rc != STORE_OK)
            return cli_runtime_error("domain", "cannot read the store");
        return output(st, a, &d, NULL);
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
    rc = identity_domain_verify(st, dns, acct.id, a->domain, &d, &tempfail, err, sizeof err);
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
    return output(st, a, &d, err);
}

int cli_domain(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("domain", "missing subcommand: add, show or verify (see --help)");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_RAN;
    }
    struct args a = { .cmd = argv[1] };
    if (strcmp(a.cmd, "add") != 0 && strcmp(a.cmd, "show") != 0 && strcmp(a.cmd, "verify") != 0)
        return cli_usage_error("domain", "unknown subcommand '%s' (add, show or verify)", a.cmd);
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
