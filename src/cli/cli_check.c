/* sesame check (SPEC.md §1.3): what a receiving server concludes about a
 * message, and in text mode why, step by step, with what to change — the
 * answer to "why is my mail in spam?". The verdict comes from
 * auth_check_message, the same code the MX runs. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "auth/auth_check.h"
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "cli/cli_verdicts.h"
#include "util/limits.h"

static const char usage[] =
    "usage: sesame check --ip IP --helo NAME --sender ADDRESS [--authserv-id ID]\n"
    "                    [--dns ADDR[:PORT]] [--json]  < message\n"
    "Runs SPF, DKIM and DMARC on the message exactly as sesame's MX does, and\n"
    "explains the verdict: which domain each check used, whether it aligned\n"
    "with the From domain, and what to change. --sender \"\" is a bounce.\n";

static unsigned random_percent(void *arg)
{
    unsigned v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = (unsigned)time(NULL);
    return v % 100;
}

/* Advice gathered while explaining, printed numbered at the end. */
struct advice {
    int n;
    char items[8][600];
};

__attribute__((format(printf, 2, 3)))
static void advise(struct advice *a, const char *fmt, ...)
{
    if (a->n == (int)(sizeof a->items / sizeof a->items[0]))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->items[a->n++], sizeof a->items[0], fmt, ap);
    va_end(ap);
}

static const char *align_word(enum dmarc_align a)
{
    return a == DMARC_ALIGN_STRICT ? "strict" : "relaxed";
}

static void explain_spf(const struct auth_verdict *v, const char *ip, const char *sender,
                        const char *helo, struct advice *adv)
{
    const struct spf_response *s = &v->spf;
    const struct dmarc_outcome *d = &v->dmarc;
    printf("SPF: %s for %s\n", spf_result_name(s->result), s->domain[0] ? s->domain : "-");
    if (sender[0])
        printf("  checked the MAIL FROM <%s> domain %s for client %s\n", sender, s->domain, ip);
    else
        printf("  the MAIL FROM is empty (a bounce), so the HELO name %s was checked for "
               "client %s\n", helo, ip);
    if (s->mechanism[0])
        printf("  matched: %s\n", s->mechanism);
    if (s->problem[0])
        printf("  why: %s\n", s->problem);
    if (s->explanation)
        printf("  the domain explains: %s\n", s->explanation);
    switch (s->result) {
    case SPF_PASS:
        if (d->policy_domain[0] && d->result != DMARC_PERMERROR) {
            if (d->spf_aligned)
                printf("  aligned with the From domain %s (%s alignment)\n", v->from_domain,
                       align_word(d->aspf));
            else
                printf("  NOT aligned with the From domain %s (%s alignment needs %s)\n",
                       v->from_domain, align_word(d->aspf),
                       d->aspf == DMARC_ALIGN_STRICT ? "the very same domain"
                                                     : "the same organizational domain");
        }
        if (v->from_domain[0] && !d->spf_aligned && d->result != DMARC_PASS &&
            d->policy_domain[0])
            advise(adv, "SPF passed for %s but is not aligned with %s: set a custom MAIL FROM "
                   "domain under %s (for example bounce.%s) so the envelope sender is yours.",
                   s->domain, v->from_domain, v->from_domain, v->from_domain);
        break;
    case SPF_FAIL:
    case SPF_SOFTFAIL:
        advise(adv, "%s is not allowed by the SPF record of %s: add it (ip%c:%s) or send "
               "through a server that is listed there.", ip, s->domain,
               strchr(ip, ':') ? '6' : '4', ip);
        break;
    case SPF_NEUTRAL:
        advise(adv, "the SPF record of %s says nothing about %s (neutral): list your sending "
               "servers and end the record with -all or ~all.", s->domain, ip);
        break;
    case SPF_NONE:
        advise(adv, "%s has no SPF record: publish one listing your servers, e.g. "
               "\"v=spf1 ip4:%s -all\" (check it with sesame doctor %s).",
               s->domain[0] ? s->domain : helo, ip, s->domain[0] ? s->domain : helo);
        break;
    case SPF_PERMERROR:
        advise(adv, "the SPF record of %s is broken (%s): receivers treat that like no SPF at "
               "all. Run sesame doctor %s.", s->domain, s->problem, s->domain);
        break;
    case SPF_TEMPERROR:
        advise(adv, "SPF could not be checked because DNS failed (%s); receivers will retry "
               "or treat it as a temporary failure.", s->problem);
        break;
    }
}

static void explain_dkim(const struct auth_verdict *v, struct advice *adv)
{
    const struct dmarc_outcome *d = &v->dmarc;
    if (v->dkim.count == 0) {
        printf("DKIM: none (the message is not signed)\n");
        if (v->from_domain[0])
            advise(adv, "sign the message with a DKIM key of %s (d=%s): "
                   "sesame dkim keygen --domain %s --selector s1 --out s1.pem, publish the "
                   "record it prints, then sign with it.", v->from_domain, v->from_domain,
                   v->from_domain);
        return;
    }
    printf("DKIM: %zu signature%s\n", v->dkim.count, v->dkim.count > 1 ? "s" : "");
    bool any_pass = false;
    for (size_t i = 0; i < v->dkim.count; i++) {
        const struct dkim_signature_result *s = &v->dkim.sigs[i];
        printf("  - %s for d=%s (selector %s, %s)", dkim_result_name(s->result),
               s->domain[0] ? s->domain : "?", s->selector[0] ? s->selector : "?",
               s->algorithm[0] ? s->algorithm : "?");
        if (s->reason[0])
            printf(": %s", s->reason);
        putchar('\n');
        if (s->result == DKIM_PASS) {
            any_pass = true;
            if (v->from_domain[0] && d->policy_domain[0] && d->result != DMARC_PERMERROR) {
                bool al = dmarc_aligned(s->domain, v->from_domain, d->adkim);
                printf("    %s with the From domain %s (%s alignment)\n",
                       al ? "aligned" : "NOT aligned", v->from_domain, align_word(d->adkim));
            }
        }
        if (s->testing)
            printf("    the key is in testing mode (t=y)\n");
    }
    if (!d->dkim_aligned && v->from_domain[0] && d->result != DMARC_PASS) {
        if (any_pass)
            advise(adv, "no passing DKIM signature is aligned with %s: sign with d=%s (or a "
                   "subdomain of it, if adkim is relaxed).", v->from_domain, v->from_domain);
        else
            advise(adv, "no DKIM signature verifies. If the reason is a body or header change, "
                   "something altered the message after signing (a footer, a mailing list, "
                   "a gateway); if it is the key, check the selector's record with "
                   "sesame doctor %s --selector SELECTOR.", v->from_domain);
    }
}

static void explain_dmarc(const struct auth_verdict *v, struct advice *adv)
{
    const struct dmarc_outcome *d = &v->dmarc;
    printf("DMARC: %s", dmarc_result_name(d->result));
    if (v->from_domain[0])
        printf(" for the From domain %s", v->from_domain);
    putchar('\n');
    if (!v->from_domain[0]) {
        printf("  why: %s\n", d->reason);
        advise(adv, "%s: DMARC needs exactly one From address.", v->from_problem);
        return;
    }
    if (d->policy_domain[0] && d->result != DMARC_PERMERROR) {
        const struct dmarc_record *r = &d->record;
        printf("  policy found at _dmarc.%s: p=%s%s%s adkim=%s aspf=%s pct=%u\n",
               d->policy_domain, dmarc_policy_name(r->p), r->sp ? " sp=" : "",
               r->sp ? dmarc_policy_name(r->sp) : "", align_word(r->adkim),
               align_word(r->aspf), r->pct);
        if (d->subdomain_policy)
            printf("  %s is a subdomain of %s, so sp=%s applies\n", v->from_domain,
                   d->policy_domain, dmarc_policy_name(d->policy));
    }
    printf("  why: %s\n", d->reason);
    switch (d->result) {
    case DMARC_PASS:
        if (d->policy == DMARC_P_NONE)
            advise(adv, "DMARC passes, but p=none only monitors: once the aggregate reports "
                   "show all your mail passing, move %s to p=quarantine, then p=reject.",
                   d->policy_domain);
        break;
    case DMARC_FAIL:
        printf("  disposition: %s%s\n", dmarc_policy_name(d->disposition),
               d->sampled_out ? " (pct sampling made it milder this time)" : "");
        break;
    case DMARC_NONE:
        advise(adv, "publish a DMARC record: _dmarc.%s TXT \"v=DMARC1; p=none; "
               "rua=mailto:dmarc-reports@%s\" to start monitoring.", v->from_domain,
               v->from_domain);
        break;
    case DMARC_PERMERROR:
        advise(adv, "fix the DMARC record (%s); run sesame doctor %s.", d->reason,
               v->from_domain);
        break;
    case DMARC_TEMPERROR:
        break;
    }
}

static void print_text(const struct auth_verdict *v, const char *ip, const char *sender,
                       const char *helo)
{
    const struct dmarc_outcome *d = &v->dmarc;
    struct advice adv = { 0 };
    const char *fate = "would be accepted";
    if (d->disposition == DMARC_P_REJECT)
        fate = "would be REJECTED by a receiver that enforces DMARC";
    else if (d->disposition == DMARC_P_QUARANTINE)
        fate = "would go to SPAM/quarantine at a receiver that enforces DMARC";
    else if (d->result != DMARC_PASS)
        fate = "would be accepted, but without DMARC's protection it is more likely to be "
               "filtered as spam";
    printf("Verdict: DMARC %s", dmarc_result_name(d->result));
    if (v->from_domain[0])
        printf(" for %s", v->from_domain);
    printf(" — the message %s.\n\n", fate);
    explain_spf(v, ip, sender, helo, &adv);
    explain_dkim(v, &adv);
    explain_dmarc(v, &adv);
    if (adv.n == 0)
        printf("\nNothing to change: SPF, DKIM and DMARC are in order for this message.\n");
    else
        printf("\nWhat to change:\n");
    for (int i = 0; i < adv.n; i++)
        printf("  %d. %s\n", i + 1, adv.items[i]);
    printf("\n%s\n", buf_cstr(&v->authres));
}

int cli_check(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ip", required_argument, NULL, 'i' },
        { "helo", required_argument, NULL, 'h' },
        { "sender", required_argument, NULL, 's' },
        { "authserv-id", required_argument, NULL, 'a' },
        { "dns", required_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'H' },
        { 0 },
    };
    const char *ip = NULL, *helo = NULL, *sender = NULL, *authserv = "localhost", *dns = NULL;
    bool json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': ip = optarg; break;
        case 'h': helo = optarg; break;
        case 's': sender = optarg; break;
        case 'a': authserv = optarg; break;
        case 'd': dns = optarg; break;
        case 'j': json = true; break;
        case 'H': fputs(usage, stdout); return EXIT_RAN;
        default:
            return cli_usage_error("check", "unknown or incomplete option '%s' (see --help)",
                                   argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
    if (!ip || !helo || !sender)
        return cli_usage_error("check", "--ip, --helo and --sender are required");
    struct auth_check_input in = { .helo = helo, .sender = sender, .authserv_id = authserv,
                                   .now = time(NULL), .random_percent = random_percent };
    if (spf_ip_parse(ip, &in.ip) != 0)
        return cli_usage_error("check", "--ip '%s' is not an IPv4 or IPv6 address", ip);

    struct buf msg;
    buf_init(&msg, MAIL_MAX_MESSAGE_SIZE);
    int rc = cli_read_stdin(&msg);
    if (rc != 0) {
        buf_free(&msg);
        return rc == EXIT_USAGE
                   ? cli_usage_error("check", "the message is larger than %d bytes",
                                     MAIL_MAX_MESSAGE_SIZE)
                   : cli_runtime_error("check", "cannot read the message from stdin");
    }
    if (msg.len == 0) {
        buf_free(&msg);
        return cli_usage_error("check", "no message on stdin");
    }
    int code;
    struct dns_resolver *resolver = cli_resolver("check", dns, &code);
    if (!resolver) {
        buf_free(&msg);
        return code;
    }
    struct auth_verdict v;
    rc = auth_check_message(resolver, &in, buf_cstr(&msg), msg.len, &v);
    dns_resolver_free(resolver);
    buf_free(&msg);
    if (rc != 0) {
        auth_verdict_free(&v);
        return cli_runtime_error("check", "out of memory");
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "spf", cli_spf_json(&v.spf));
        json_object_set_new(o, "dkim", cli_dkim_json(&v.dkim));
        json_object_set_new(o, "dmarc", cli_dmarc_json(&v.dmarc));
        json_object_set_new(o, "authentication_results", json_string(buf_cstr(&v.authres)));
        cli_print_json(o);
    } else {
        print_text(&v, ip, sender, helo);
    }
    auth_verdict_free(&v);
    return EXIT_RAN;
}
