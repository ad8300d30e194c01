/* DMARC (RFC 7489) scenario tables on an in-memory zone: record parsing and
 * its fallbacks, policy discovery through the organizational domain (PSL
 * cases like co.uk), strict and relaxed alignment, sp for subdomains, pct
 * sampling with a fixed random source, multiple records, DNS failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/dmarc.h"
#include "dns/dns_zone.h"

static struct dns_zone *zone;
static struct dns_resolver *dns;

static int setup(void **state)
{
    zone = dns_zone_new();
    dns = dns_zone_resolver_new(zone);
    static const char *records[][2] = {
        { "_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:dmarc@example.com" },
        { "_dmarc.quar.test", "v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=s" },
        { "_dmarc.half.test", "v=DMARC1; p=reject; pct=50" },
        { "_dmarc.zero.test", "v=DMARC1; p=quarantine; pct=0" },
        { "_dmarc.example.co.uk", "v=DMARC1; p=reject" },
        { "_dmarc.co.uk", "v=DMARC1; p=none" },
        { "_dmarc.twice.test", "v=DMARC1; p=none" },
        { "_dmarc.twice.test", "v=DMARC1; p=reject" },
        { "_dmarc.bad.test", "v=DMARC1; p=bogus" },
        { "_dmarc.badrua.test", "v=DMARC1; p=bogus; rua=mailto:r@badrua.test" },
        { "_dmarc.nodmarc.test", "v=spf1 -all" },
        { "_dmarc.sub.example.com", "v=DMARC1; p=none" },
    };
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++)
        assert_int_equal(dns_zone_add(zone, records[i][0], "TXT", records[i][1]), 0);
    assert_int_equal(dns_zone_add_timeout(zone, "_dmarc.slow.test"), 0);
    return 0;
}

static int teardown(void **state)
{
    dns_resolver_free(dns);
    dns_zone_free(zone);
    return 0;
}

static void parse_ok(const char *txt, struct dmarc_record *r)
{
    char err[200] = "";
    if (dmarc_record_parse(txt, strlen(txt), r, err, sizeof err) != 0)
        fail_msg("'%s' rejected: %s", txt, err);
}

static void record_parsing(void **state)
{
    struct dmarc_record r;
    parse_ok("v=DMARC1;p=quarantine;sp=reject;adkim=s;aspf=r;pct=25;"
             "rua=mailto:a@rep.test!10m, mailto:b@example.com;ruf=mailto:f@x.test;"
             "fo=1:d;rf=afrf;ri=3600;future=tag", &r);
    assert_int_equal(r.p, DMARC_P_QUARANTINE);
    assert_int_equal(r.sp, DMARC_P_REJECT);
    assert_int_equal(r.adkim, DMARC_ALIGN_STRICT);
    assert_int_equal(r.aspf, DMARC_ALIGN_RELAXED);
    assert_int_equal(r.pct, 25);
    assert_int_equal(r.nrua, 2);
    assert_string_equal(r.rua[0].uri, "mailto:a@rep.test");
    assert_string_equal(r.rua[0].domain, "rep.test");
    assert_int_equal(r.rua[0].max_size, 10ULL << 20);
    assert_string_equal(r.rua[1].domain, "example.com");
    assert_int_equal(r.nruf, 1);
    assert_string_equal(r.fo, "1:d");
    assert_int_equal(r.ri, 3600);
    assert_int_equal(r.nwarnings, 0);

    parse_ok("v = DMARC1 ; p = none", &r); /* WSP around '=' and ';' */
    assert_int_equal(r.p, DMARC_P_NONE);
    assert_int_equal(r.pct, 100);
    assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);

    /* invalid values of optional tags: defaults, with a warning */
    parse_ok("v=DMARC1; p=reject; pct=150; adkim=x; fo=7; ri=soon; rua=http://x", &r);
    assert_int_equal(r.pct, 100);
    assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);
    assert_string_equal(r.fo, "0");
    assert_int_equal(r.nrua, 0);
    assert_int_equal(r.nwarnings, 5);

    /* an invalid p= with a valid rua= is read as p=none (§6.6.3) */
    parse_ok("v=DMARC1; p=bogus; rua=mailto:r@x.test", &r);
    assert_int_equal(r.p, DMARC_P_NONE);
    assert_true(r.nwarnings >= 1);

    static const char *bad[] = {
        "v=DMARC1", "v=DMARC1; p=bogus", "v=DMARC1; sp=reject", "v=dmarc1; p=none",
        "p=none; v=DMARC1", "v=DMARC2; p=none", "v=DMARC1x; p=none", "",
    };
    char err[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (dmarc_record_parse(bad[i], strlen(bad[i]), &r, err, sizeof err) == 0)
            fail_msg("'%s' accepted", bad[i]);
}

static void org_domains(void **state)
{
    char org[256];
    static const char *table[][2] = {
        { "mail.example.com", "example.com" }, { "example.com", "example.com" },
        { "a.b.example.co.uk", "example.co.uk" }, { "co.uk", "co.uk" },
        { "Sub.Example.COM.", "example.com" }, { "x.y.example.test", "example.test" },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        dmarc_org_domain(table[i][0], org, sizeof org);
        if (strcmp(org, table[i][1]) != 0)
            fail_msg("org(%s) = %s, want %s", table[i][0], org, table[i][1]);
    }
    assert_true(dmarc_aligned("bounce.example.com", "example.com", DMARC_ALIGN_RELAXED));
    assert_false(dmarc_aligned("bounce.example.com", "example.com", DMARC_ALIGN_STRICT));
    assert_true(dmarc_aligned("EXAMPLE.com.", "example.com", DMARC_ALIGN_STRICT));
    assert_false(dmarc_aligned("example.co.uk", "other.co.uk", DMARC_ALIGN_RELAXED));
    assert_false(dmarc_aligned("amazonses.com", "example.com", DMARC_ALIGN_RELAXED));
}

static unsigned fixed_roll;
static unsigned roll(void *arg) { return fixed_roll; }

struct scenario {
    const char *from;
    enum spf_result spf;
    const char *spf_domain;
    const char *dkim_d;          /* a passing signature's d=, or NULL */
    enum dkim_result dkim_res;
    unsigned roll;
    enum dmarc_result want;
    enum dmarc_policy want_policy, want_disposition;
    const char *want_policy_domain;
};

static void scenarios(void **state)
{
    const struct scenario table[] = {
        /* aligned SPF via a subdomain (relaxed) passes */
        { "example.com", SPF_PASS, "bounce.example.com", NULL, 0, 0, DMARC_PASS,
          DMARC_P_REJECT, DMARC_P_NONE, "example.com" },
        /* SPF passes for another domain, no DKIM: fail, reject */
        { "example.com", SPF_PASS, "amazonses.com", NULL, 0, 0, DMARC_FAIL,
          DMARC_P_REJECT, DMARC_P_REJECT, "example.com" },
        /* aligned DKIM rescues unaligned SPF */
        { "example.com", SPF_PASS, "amazonses.com", "mail.example.com", DKIM_PASS, 0,
          DMARC_PASS, DMARC_P_REJECT, DMARC_P_NONE, "example.com" },
        /* a failing aligned DKIM signature does not count */
        { "example.com", SPF_FAIL, "example.com", "example.com", DKIM_FAIL, 0, DMARC_FAIL,
          DMARC_P_REJECT, DMARC_P_REJECT, "example.com" },
        /* strict alignment: a subdomain is not aligned */
        { "quar.test", SPF_PASS, "bounce.quar.test", "sub.quar.test", DKIM_PASS, 0,
          DMARC_FAIL, DMARC_P_QUARANTINE, DMARC_P_QUARANTINE, "quar.test" },
        { "quar.test", SPF_PASS, "quar.test", NULL, 0, 0, DMARC_PASS, DMARC_P_QUARANTINE,
          DMARC_P_NONE, "quar.test" },
        /* a subdomain without its own record: sp= of the org domain */
        { "news.quar.test", SPF_NONE, NULL, NULL, 0, 0, DMARC_FAIL, DMARC_P_NONE,
          DMARC_P_NONE, "quar.test" },
        /* without sp=, p= applies to subdomains */
        { "deep.sub2.example.com", SPF_NONE, NULL, NULL, 0, 0, DMARC_FAIL, DMARC_P_REJECT,
          DMARC_P_REJECT, "example.com" },
        /* a subdomain with its own record uses it */
        { "sub.example.com", SPF_NONE, NULL, NULL, 0, 0, DMARC_FAIL, DMARC_P_NONE,
          DMARC_P_NONE, "sub.example.com" },
        /* pct=50: sampled (roll 10) rejects, not sampled (roll 70) quarantines */
        { "half.test", SPF_FAIL, "half.test", NULL, 0, 10, DMARC_FAIL, DMARC_P_REJECT,
          DMARC_P_REJECT, "half.test" },
        { "half.test", SPF_FAIL, "half.test", NULL, 0, 70, DMARC_FAIL, DMARC_P_REJECT,
          DMARC_P_QUARANTINE, "half.test" },
        /* pct=0: quarantine never applies */
        { "zero.test", SPF_FAIL, "zero.test", NULL, 0, 0, DMARC_FAIL, DMARC_P_QUARANTINE,
          DMARC_P_NONE, "zero.test" },
        /* PSL: co.uk's record is never the policy of example.co.uk's subdomains */
        { "mail.example.co.uk", SPF_NONE, NULL, NULL, 0, 0, DMARC_FAIL, DMARC_P_REJECT,
          DMARC_P_REJECT, "example.co.uk" },
        { "other.co.uk", SPF_NONE, NULL, NULL, 0, 0, DMARC_NONE, DMARC_P_UNSET,
          DMARC_P_NONE, "" },
        /* no record, multiple records, a non-DMARC TXT: none */
        { "nowhere.test", SPF_PASS, "nowhere.test", NULL, 0, 0, DMARC_NONE, DMARC_P_UNSET,
          DMARC_P_NONE, "" },
        { "twice.test", SPF_FAIL, "twice.test", NULL, 0, 0, DMARC_NONE, DMARC_P_UNSET,
          DMARC_P_NONE, "" },
        { "nodmarc.test", SPF_FAIL, "nodmarc.test", NULL, 0, 0, DMARC_NONE, DMARC_P_UNSET,
          DMARC_P_NONE, "" },
        /* unusable record: permerror; usable thanks to rua=: p=none */
        { "bad.test", SPF_FAIL, "bad.test", NULL, 0, 0, DMARC_PERMERROR, DMARC_P_UNSET,
          DMARC_P_NONE, "bad.test" },
        { "badrua.test", SPF_FAIL, "badrua.test", NULL, 0, 0, DMARC_FAIL, DMARC_P_NONE,
          DMARC_P_NONE, "badrua.test" },
        /* DNS failure: temperror */
        { "slow.test", SPF_PASS, "slow.test", NULL, 0, 0, DMARC_TEMPERROR, DMARC_P_UNSET,
          DMARC_P_NONE, "" },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct scenario *s = &table[i];
        struct dkim_signature_result sig = { .result = s->dkim_res };
        struct dkim_results dk = { .count = s->dkim_d ? 1 : 0, .sigs = &sig };
        if (s->dkim_d)
            snprintf(sig.domain, sizeof sig.domain, "%s", s->dkim_d);
        fixed_roll = s->roll;
        struct dmarc_input in = { .from_domain = s->from, .spf = s->spf,
                                  .spf_domain = s->spf_domain, .dkim = &dk,
                                  .random_percent = roll };
        struct dmarc_outcome out;
        dmarc_check(dns, &in, &out);
        if (out.result != s->want || out.policy != s->want_policy ||
            out.disposition != s->want_disposition ||
            strcmp(out.policy_domain, s->want_policy_domain) != 0)
            fail_msg("scenario %zu (%s): got %s p=%s dis=%s at '%s' (%s)", i, s->from,
                     dmarc_result_name(out.result), dmarc_policy_name(out.policy),
                     dmarc_policy_name(out.disposition), out.policy_domain, out.reason);
        assert_true(out.reason[0] != '\0');
    }
}

static void no_usable_from(void **state)
{
    struct dmarc_input in = { .from_domain = NULL, .from_problem = "2 From fields" };
    struct dmarc_outcome out;
    dmarc_check(dns, &in, &out);
    assert_int_equal(out.result, DMARC_PERMERROR);
    assert_string_equal(out.reason, "2 From fields");
    assert_int_equal(out.disposition, DMARC_P_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(record_parsing),
        cmocka_unit_test(org_domains),
        cmocka_unit_test(scenarios),
        cmocka_unit_test(no_usable_from),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
