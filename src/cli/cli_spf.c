/* sesame spf (SPEC.md §1.1): check_host() for one client IP, MAIL FROM and
 * HELO, through the real resolver; text for people, --json for scripts. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/spf.h"
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "cli/cli_verdicts.h"

static const char usage[] =
    "usage: sesame spf --ip IP --sender ADDRESS [--helo NAME] [--receiver NAME]\n"
    "                  [--scope mailfrom|helo] [--dns ADDR[:PORT]] [--json]\n"
    "Evaluates SPF (RFC 7208 check_host) for the client IP and the MAIL FROM\n"
    "identity (--sender \"\" is the null reverse-path: postmaster@HELO is\n"
    "checked), or the HELO identity with --scope helo.\n";

static void print_text(const struct spf_request *req, const char *ip_text,
                       const struct spf_response *r, bool helo_scope)
{
    printf("SPF %s for %s\n", spf_result_name(r->result), r->domain[0] ? r->domain : "(none)");
    printf("  checked: client %s, %s <%s>, HELO %s\n", ip_text,
           helo_scope ? "HELO identity" : "MAIL FROM",
           req->sender && req->sender[0] ? req->sender : "", req->helo[0] ? req->helo : "-");
    if (r->mechanism[0])
        printf("  matched: %s\n", r->mechanism);
    else if (r->result == SPF_NEUTRAL)
        printf("  matched: no mechanism (the default result is neutral)\n");
    if (r->problem[0])
        printf("  why: %s\n", r->problem);
    if (r->explanation)
        printf("  explanation: %s\n", r->explanation);
    printf("  DNS-querying terms: %u of 10, void lookups: %u of 2\n", r->dns_lookups,
           r->void_lookups);
}

int cli_spf(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ip", required_argument, NULL, 'i' },
        { "sender", required_argument, NULL, 's' },
        { "helo", required_argument, NULL, 'h' },
        { "receiver", required_argument, NULL, 'r' },
        { "scope", required_argument, NULL, 'S' },
        { "dns", required_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, '?' + 256 },
        { 0 },
    };
    const char *ip = NULL, *sender = NULL, *helo = "", *receiver = NULL, *dns = NULL;
    bool json = false, helo_scope = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': ip = optarg; break;
        case 's': sender = optarg; break;
        case 'h': helo = optarg; break;
        case 'r': receiver = optarg; break;
        case 'd': dns = optarg; break;
        case 'j': json = true; break;
        case 'S':
            if (strcmp(optarg, "helo") != 0 && strcmp(optarg, "mailfrom") != 0)
                return cli_usage_error("spf", "--scope is mailfrom or helo, not '%s'", optarg);
            helo_scope = strcmp(optarg, "helo") == 0;
            break;
        case '?' + 256: fputs(usage, stdout); return EXIT_RAN;
        default:
            return cli_usage_error("spf", "unknown or incomplete option '%s' (see --help)",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("spf", "unexpected argument '%s'", argv[optind]);
    if (!ip)
        return cli_usage_error("spf", "--ip is required");
    if (!sender && !helo_scope)
        return cli_usage_error("spf", "--sender is required (\"\" for the null reverse-path)");
    if (helo_scope && !helo[0])
        return cli_usage_error("spf", "--scope helo needs --helo");
    struct spf_request req = {
        .sender = sender ? sender : "", .helo = helo, .receiver = receiver, .now = time(NULL),
    };
    if (spf_ip_parse(ip, &req.ip) != 0)
        return cli_usage_error("spf", "--ip '%s' is not an IPv4 or IPv6 address", ip);

    int code;
    struct dns_resolver *resolver = cli_resolver("spf", dns, &code);
    if (!resolver)
        return code;
    struct spf_response r;
    if (helo_scope)
        spf_check_helo(resolver, &req, &r);
    else
        spf_check_mailfrom(resolver, &req, &r);
    dns_resolver_free(resolver);

    if (json) {
        json_t *o = cli_spf_json(&r);
        cli_print_json(o);
    } else {
        print_text(&req, ip, &r, helo_scope);
    }
    spf_response_free(&r);
    return EXIT_RAN;
}
