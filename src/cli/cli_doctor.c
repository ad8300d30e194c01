/* sesame doctor (SPEC.md §1.4): audits what a domain publishes in DNS for
 * mail and prints each finding with its fix — text for people, --json for
 * scripts. The audit itself is auth/doctor.c; this file parses arguments
 * and prints. Exit 0 whatever it finds; 2 on bad usage or a bad domain; 1
 * when the resolver cannot be set up or DNS answers nothing at all. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/doctor.h"
#include "cli/cli.h"
#include "cli/cli_common.h"

static const char usage[] =
    "usage: sesame doctor DOMAIN [--selector S ...] [--mail-from SUBDOMAIN]\n"
    "                     [--dns ADDR[:PORT]] [--json]\n"
    "Audits the DNS records of DOMAIN for mail: MX, SPF, DKIM keys of the given\n"
    "selectors (without --selector, a few common selector names are tried),\n"
    "DMARC, the custom MAIL FROM domain (a full name under DOMAIN, or one label),\n"
    "MTA-STS and TLS-RPT. Each finding is ok, warn, error or missing, with the\n"
    "record to publish or change. Exit status 0 whatever it finds.\n";

static const char *mark(enum doctor_status s)
{
    switch (s) {
    case DOCTOR_OK: return "[ok]     ";
    case DOCTOR_WARN: return "[warn]   ";
    case DOCTOR_ERROR: return "[error]  ";
    case DOCTOR_MISSING: return "[missing]";
    }
    return "[?]      ";
}

static void print_text(const struct doctor_report *r)
{
    size_t n[4] = { 0 };
    for (size_t i = 0; i < r->count; i++)
        n[r->findings[i].status]++;
    printf("sesame doctor %s: %zu ok, %zu warning%s, %zu error%s, %zu missing\n\n", r->domain,
           n[DOCTOR_OK], n[DOCTOR_WARN], n[DOCTOR_WARN] == 1 ? "" : "s", n[DOCTOR_ERROR],
           n[DOCTOR_ERROR] == 1 ? "" : "s", n[DOCTOR_MISSING]);
    for (size_t i = 0; i < r->count; i++) {
        const struct doctor_finding *f = &r->findings[i];
        printf("%s %-9s %s\n", mark(f->status), doctor_check_name(f->check), f->message);
        if (f->fix)
            printf("%20s fix: %s\n", "", f->fix);
    }
}

static json_t *report_json(const struct doctor_report *r)
{
    json_t *checks = json_array();
    for (size_t i = 0; checks && i < r->count; i++) {
        const struct doctor_finding *f = &r->findings[i];
        json_array_append_new(checks,
                              json_pack("{s:s, s:s, s:s, s:o}", "name",
                                        doctor_check_name(f->check), "status",
                                        doctor_status_name(f->status), "message", f->message,
                                        "fix", cli_json_str_or_null(f->fix)));
    }
    return json_pack("{s:s, s:o}", "domain", r->domain, "checks", checks ? checks : json_array());
}

int cli_doctor(int argc, char **argv)
{
    static const struct option opts[] = {
        { "selector", required_argument, NULL, 's' },
        { "mail-from", required_argument, NULL, 'm' },
        { "dns", required_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *selectors[DOCTOR_MAX_SELECTORS];
    size_t nsel = 0;
    const char *mail_from = NULL, *dns = NULL;
    bool json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (nsel == DOCTOR_MAX_SELECTORS)
                return cli_usage_error("doctor", "at most %d --selector options",
                                       DOCTOR_MAX_SELECTORS);
            selectors[nsel++] = optarg;
            break;
        case 'm':
            if (mail_from)
                return cli_usage_error("doctor", "--mail-from given twice");
            mail_from = optarg;
            break;
        case 'd': dns = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_RAN;
        default:
            return cli_usage_error("doctor", "unknown or incomplete option '%s' (see --help)",
                                   argv[optind - 1]);
        }
    }
    if (optind == argc)
        return cli_usage_error("doctor", "which domain? (sesame doctor DOMAIN, see --help)");
    if (optind + 1 < argc)
        return cli_usage_error("doctor", "unexpected argument '%s'", argv[optind + 1]);
    struct doctor_options opt = {
        .domain = argv[optind], .selectors = selectors, .nselectors = nsel,
        .guess_selectors = true, .mail_from = mail_from,
    };
    /* Bad input is refused before any DNS is set up. */
    char norm[DNS_MAX_NAME_LEN + 1], err[320];
    if (doctor_domain_normalize(opt.domain, norm, sizeof norm, err, sizeof err) != 0)
        return cli_usage_error("doctor", "%s", err);

    int code;
    struct dns_resolver *resolver = cli_resolver("doctor", dns, &code);
    if (!resolver)
        return code;
    struct doctor_report rep;
    int rc = doctor_run(resolver, &opt, &rep, err, sizeof err);
    dns_resolver_free(resolver);
    if (rc == -1)
        return cli_usage_error("doctor", "%s", err);
    if (rc != 0)
        return cli_runtime_error("doctor", "%s", err);
    if (rep.dns_unreachable) {
        doctor_report_free(&rep);
        return cli_runtime_error("doctor", "no DNS answer for %s: every lookup timed out or "
                                 "failed (is the DNS server%s%s reachable, and do the "
                                 "nameservers of %s answer?)", norm,
                                 dns_server_from_env(dns) ? " " : "",
                                 dns_server_from_env(dns) ? dns_server_from_env(dns) : "", norm);
    }
    if (json)
        cli_print_json(report_json(&rep));
    else
        print_text(&rep);
    doctor_report_free(&rep);
    return EXIT_RAN;
}
