/* Tests of service/identity_records.c: the record set of a domain identity
 * without DNS (order, values, required flags), then checked through the
 * real resolver path (libunbound forwarding to the test DNS server on
 * 127.0.0.1): a domain where every record is right; every failure reason
 * (token differs, no TXT, DKIM key mismatch, not a key record, several
 * TXT at a selector, a pending key not yet visible, two SPF records merged
 * into one that parses, SPF without our terms merged before ~all, too many
 * DNS lookups, DMARC without our rua merged, DMARC missing, DMARC of the
 * organizational domain kept, MX elsewhere, MAIL FROM without MX); retired
 * keys (left out when gone, "remove" while published); timeouts and
 * SERVFAIL as tempfail; the JSON zone lines (255-octet split, escaping)
 * and the overlay of stored states (garbage ignored). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/spf_internal.h"
#include "dns/dns.h"
#include "dns/dns_zone.h"
#include "service/identity_records.h"
#include "store/store.h"
#include "testdns.h"

#define TIMEOUT_MS 700

/* RFC 8032 §7.1 test 1 and test 2 public keys; the RFC 8463 RSA-1024 key. */
#define ED_P  "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define ED2_P "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="
#define RSA_P "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2" \
              "jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5Qj" \
              "vHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
#define ED_REC  "v=DKIM1; k=ed25519; p=" ED_P
#define ED2_REC "v=DKIM1; k=ed25519; p=" ED2_P
#define RSA_REC "v=DKIM1; k=rsa; p=" RSA_P

#define MX_HOST "mx.sesame.test"
#define TERMS   "a:mx.sesame.test"
#define REPORT  "dmarc@reports.sesame.test"

static const char ZONE[] =
    "{"
    /* good.example.test: everything right */
    " \"_sesame.good.example.test\": [{\"type\": \"TXT\", \"value\": [\"sesame-verification=\", \"tok123 \"]}],"
    " \"ed._domainkey.good.example.test\": [{\"type\": \"TXT\", \"value\": \"" ED_REC "\"}],"
    " \"rsa._domainkey.good.example.test\": [{\"type\": \"TXT\", \"value\": [\"v=DKIM1; k=rsa; \", \"p=" RSA_P "\"]}],"
    " \"gone._domainkey.good.example.test\": [{\"type\": \"TXT\", \"value\": \"" ED_REC "\"}],"
    " \"good.example.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 +A:MX.sesame.test ~all\"},"
    "                        {\"type\": \"TXT\", \"value\": \"google-site-verification=x\"},"
    "                        {\"type\": \"MX\", \"value\": [20, \"backup.good.example.test\"]},"
    "                        {\"type\": \"MX\", \"value\": [10, \"MX.sesame.test.\"]}],"
    " \"_dmarc.good.example.test\": [{\"type\": \"TXT\", \"value\": \"v=DMARC1; p=reject; rua=mailto:" REPORT "\"}],"
    " \"bounce.good.example.test\": [{\"type\": \"MX\", \"value\": [10, \"mx.sesame.test\"]},"
    "                               {\"type\": \"TXT\", \"value\": \"v=spf1 a:mx.sesame.test -all\"}],"
    /* bad.example.test: something wrong with each */
    " \"_sesame.bad.example.test\": [{\"type\": \"TXT\", \"value\": \"sesame-verification=other\\u0001tok\"}],"
    " \"ed._domainkey.bad.example.test\": [{\"type\": \"TXT\", \"value\": \"" ED2_REC "\"}],"
    " \"rsa._domainkey.bad.example.test\": [{\"type\": \"TXT\", \"value\": \"v=DKIM1; k=rsa; p=\"}],"
    " \"two._domainkey.bad.example.test\": [{\"type\": \"TXT\", \"value\": \"" ED_REC "\"},"
    "                                      {\"type\": \"TXT\", \"value\": \"" ED2_REC "\"}],"
    " \"bad.example.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 include:_spf.other.test +mx -all\"},"
    "                       {\"type\": \"TXT\", \"value\": \"v=spf1 ip4:192.0.2.0/24 mx ~all\"},"
    "                       {\"type\": \"MX\", \"value\": [10, \"mx.elsewhere.test\"]}],"
    " \"_dmarc.bad.example.test\": [{\"type\": \"TXT\", \"value\": \"v=DMARC1; p=quarantine; rua=mailto:me@bad.example.test; pct=50\"}],"
    " \"bounce.bad.example.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 ip4:198.51.100.7 -all\"}],"
    /* one.example.test: SPF without our terms, no DMARC anywhere, DMARC without rua */
    " \"one.example.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 mx include:_spf.mail.test ~all\"}],"
    /* three.example.test: three SPF records with redirect= and two exp= */
    " \"three.example.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 mx redirect=_spf.r.test\"},"
    "                         {\"type\": \"TXT\", \"value\": \"v=spf1 ip4:192.0.2.9 exp=a.test -all\"},"
    "                         {\"type\": \"TXT\", \"value\": \"v=spf1 exp=b.test +MX ?all\"}],"
    /* many.example.test: our terms make it 11 lookups */
    " \"many.example.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 a mx include:x1.test include:x2.test include:x3.test exists:x4.test a:x5.test a:x6.test a:x7.test a:x8.test -all\"}],"
    /* deep.example.test: our terms there, but an include costs 10 more */
    " \"deep.example.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 a:mx.sesame.test include:_spf.deep.test ~all\"}],"
    " \"_spf.deep.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 a:1.test a:2.test a:3.test a:4.test a:5.test a:6.test a:7.test a:8.test a:9.test -all\"}],"
    /* ten.example.test: 10 lookups with our term, the limit */
    " \"ten.example.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 a:mx.sesame.test include:_spf.ten.test ~all\"}],"
    " \"_spf.ten.test\": [{\"type\": \"TXT\", \"value\": \"v=spf1 a:1.test a:2.test a:3.test a:4.test a:5.test a:6.test a:7.test a:8.test -all\"}],"
    /* sub.strict.test: no DMARC record of its own, strict.test has p=reject */
    " \"_dmarc.strict.test\": [{\"type\": \"TXT\", \"value\": \"v=DMARC1; p=reject; sp=quarantine\"}],"
    /* norua.example.test: DMARC without rua, and a broken one */
    " \"_dmarc.norua.example.test\": [{\"type\": \"TXT\", \"value\": \"v=DMARC1; p=none;\"}],"
    " \"_dmarc.broken.example.test\": [{\"type\": \"TXT\", \"value\": \"v=DMARC1; p=bogus\"}],"
    " \"_dmarc.twice.example.test\": [{\"type\": \"TXT\", \"value\": \"v=DMARC1; p=bogus\"},"
    "                                 {\"type\": \"TXT\", \"value\": \"v=DMARC1; p=reject; rua=mailto:x@twice.example.test\"}],"
    /* slow.example.test: no answers */
    " \"_sesame.slow.example.test\": [{\"type\": \"TIMEOUT\"}],"
    " \"_dmarc.slow.example.test\": [{\"type\": \"CNAME\", \"value\": \"_dmarc.slow.example.test\"}]"
    "}";

struct fixture {
    struct dns_zone *zone;
    struct testdns *srv;
    struct dns_resolver *r;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_non_null(f);
    f->zone = dns_zone_new();
    assert_non_null(f->zone);
    if (dns_zone_load_json(f->zone, ZONE, strlen(ZONE), err, sizeof err) != 0)
        fail_msg("zone: %s", err);
    f->srv = testdns_start(f->zone);
    assert_non_null(f->srv);
    f->r = dns_unbound_new(testdns_addr(f->srv), TIMEOUT_MS, err, sizeof err);
    if (!f->r)
        fail_msg("dns_unbound_new: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dns_resolver_free(f->r);
    testdns_stop(f->srv);
    dns_zone_free(f->zone);
    free(f);
    return 0;
}

static struct idrec_input input(const char *domain, const char *mail_from,
                                const struct idrec_key *keys, size_t nkeys)
{
    struct idrec_input in = {
        .domain = domain, .token = "tok123", .mail_from_domain = mail_from,
        .mx_host = MX_HOST, .spf_terms = TERMS, .report_address = REPORT,
        .keys = keys, .nkeys = nkeys,
    };
    return in;
}

/* The record of that purpose (and selector for DKIM); fails the test when absent. */
static const struct idrec *find(const struct idrec_list *l, enum idrec_purpose p,
                                const char *selector)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].purpose == p && (!selector || strcmp(l->v[i].selector, selector) == 0))
            return &l->v[i];
    fail_msg("no %s record%s%s", identity_record_purpose_name(p), selector ? " " : "",
             selector ? selector : "");
    return NULL;
}

static bool has_selector(const struct idrec_list *l, const char *selector)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].purpose == IDREC_DKIM && strcmp(l->v[i].selector, selector) == 0)
            return true;
    return false;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static void assert_state(const struct idrec *r, enum idrec_state want)
{
    if (r->state != want)
        fail_msg("%s %s: state %s, want %s (reason: %s)", identity_record_purpose_name(r->purpose),
                 r->name, identity_record_state_name(r->state), identity_record_state_name(want),
                 r->reason);
}

/* How many times term occurs as a whole term in an SPF record. */
static size_t term_count(const char *rec, const char *term)
{
    size_t n = 0, tl = strlen(term);
    for (const char *p = rec; (p = strstr(p, term)); p += tl)
        if ((p == rec || p[-1] == ' ') && (p[tl] == ' ' || p[tl] == '\0'))
            n++;
    return n;
}

static void assert_spf_parses(const char *rec)
{
    struct spf_record parsed;
    char err[160];
    if (spf_record_parse(rec, strlen(rec), &parsed, err, sizeof err) != 0)
        fail_msg("merged SPF \"%s\" does not parse: %s", rec, err);
    spf_record_free(&parsed);
}

/* ---- without DNS ---- */

static void test_unchecked_list(void **state)
{
    (void)state;
    const struct idrec_key keys[] = {
        { "s1", RSA_REC, STORE_KEY_ACTIVE, 0 },
        { "s2", ED_REC, STORE_KEY_PENDING, 0 },
        { "s0", ED2_REC, STORE_KEY_GRACE, 1700000000 },
        { "old", ED2_REC, STORE_KEY_RETIRED, 1600000000 },
    };
    struct idrec_input in = input("example.test", "bounce.example.test", keys, 4);
    in.spf_terms = "  ip4:192.0.2.1   ip6:2001:db8::1 ";
    struct idrec_list l;
    assert_int_equal(identity_records_build(&in, NULL, &l), 0);
    static const enum idrec_purpose order[] = {
        IDREC_VERIFICATION, IDREC_DKIM, IDREC_DKIM, IDREC_DKIM, IDREC_DKIM, IDREC_SPF,
        IDREC_DMARC, IDREC_MAIL_FROM_MX, IDREC_MAIL_FROM_SPF, IDREC_INBOUND_MX,
    };
    static const bool required[] = { true, true, true, false, false, false, false, true,
                                     true, false };
    assert_int_equal(l.n, sizeof order / sizeof order[0]);
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.v[i].purpose, order[i]);
        assert_int_equal(l.v[i].required, required[i]);
        assert_int_equal(l.v[i].state, i == 4 ? IDREC_REMOVE : IDREC_UNCHECKED);
    }
    assert_string_equal(l.v[0].name, "_sesame.example.test");
    assert_string_equal(l.v[0].value, "sesame-verification=tok123");
    assert_string_equal(l.v[0].type, "TXT");
    assert_string_equal(l.v[1].name, "s1._domainkey.example.test");
    assert_string_equal(l.v[1].selector, "s1");
    assert_string_equal(l.v[1].value, RSA_REC);
    assert_string_equal(l.v[2].selector, "s2");
    assert_string_equal(l.v[3].selector, "s0");
    assert_contains(l.v[3].reason, "rotated out; keep it published until 2023-11-14T22:13:20Z");
    assert_string_equal(l.v[4].selector, "old");
    assert_contains(l.v[4].reason, "retired on 2020-09-13T12:26:40Z: safe to remove from DNS");
    assert_string_equal(l.v[5].name, "example.test");
    assert_string_equal(l.v[5].value, "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ~all");
    assert_string_equal(l.v[6].name, "_dmarc.example.test");
    assert_string_equal(l.v[6].value, "v=DMARC1; p=none; rua=mailto:" REPORT);
    assert_string_equal(l.v[7].name, "bounce.example.test");
    assert_string_equal(l.v[7].type, "MX");
    assert_string_equal(l.v[7].value, "10 " MX_HOST);
    assert_string_equal(l.v[8].value, "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all");
    assert_string_equal(l.v[9].name, "example.test");
    assert_string_equal(l.v[9].value, "10 " MX_HOST);
    identity_records_free(&l);

    /* no MAIL FROM domain: no MAIL FROM records */
    in = input("example.test", "", NULL, 0);
    assert_int_equal(identity_records_build(&in, NULL, &l), 0);
    assert_int_equal(l.n, 4);
    for (size_t i = 0; i < l.n; i++)
        assert_true(l.v[i].purpose != IDREC_MAIL_FROM_MX && l.v[i].purpose != IDREC_MAIL_FROM_SPF);
    identity_records_free(&l);
}

static void test_names(void **state)
{
    (void)state;
    for (int p = IDREC_VERIFICATION; p <= IDREC_INBOUND_MX; p++)
        assert_string_not_equal(identity_record_purpose_name((enum idrec_purpose)p), "unknown");
    assert_string_equal(identity_record_purpose_name(IDREC_MAIL_FROM_SPF), "mail_from_spf");
    assert_string_equal(identity_record_purpose_name(IDREC_INBOUND_MX), "inbound_mx");
    assert_string_equal(identity_record_state_name(IDREC_TEMPFAIL), "tempfail");
    assert_string_equal(identity_record_state_name(IDREC_REMOVE), "remove");
    assert_string_equal(identity_record_state_name(IDREC_UNCHECKED), "unchecked");
}

/* ---- through DNS ---- */

static void test_all_ok(void **state)
{
    struct fixture *f = *state;
    const struct idrec_key keys[] = {
        { "ed", ED_REC, STORE_KEY_ACTIVE, 0 },
        { "rsa", RSA_REC, STORE_KEY_GRACE, 1700000000 },
        { "old", ED2_REC, STORE_KEY_RETIRED, 1600000000 },   /* not published: left out */
        { "gone", ED_REC, STORE_KEY_RETIRED, 1600000000 },   /* still published */
    };
    struct idrec_input in = input("good.example.test", "bounce.good.example.test", keys, 4);
    struct idrec_list l;
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    assert_int_equal(l.n, 9);
    assert_false(has_selector(&l, "old"));
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.v[i].selector, "gone") == 0)
            continue;
        assert_state(&l.v[i], IDREC_OK);
    }
    const struct idrec *gone = find(&l, IDREC_DKIM, "gone");
    assert_int_equal(gone->state, IDREC_REMOVE);
    assert_false(gone->required);
    assert_contains(gone->reason, "safe to remove");
    assert_string_equal(find(&l, IDREC_VERIFICATION, NULL)->reason, "");
    assert_string_equal(find(&l, IDREC_DKIM, "ed")->reason, "");
    assert_contains(find(&l, IDREC_DKIM, "rsa")->reason, "rotated out; keep it published until");
    /* ok SPF and DMARC: the value is what is published */
    assert_string_equal(find(&l, IDREC_SPF, NULL)->value, "v=spf1 +A:MX.sesame.test ~all");
    assert_string_equal(find(&l, IDREC_DMARC, NULL)->value,
                        "v=DMARC1; p=reject; rua=mailto:" REPORT);
    assert_string_equal(find(&l, IDREC_DMARC, NULL)->reason, ""); /* p=reject: nothing to say */
    assert_string_equal(find(&l, IDREC_MAIL_FROM_SPF, NULL)->value, "v=spf1 a:mx.sesame.test -all");
    identity_records_free(&l);
}

static void test_each_failure(void **state)
{
    struct fixture *f = *state;
    const struct idrec_key keys[] = {
        { "ed", ED_REC, STORE_KEY_ACTIVE, 0 },
        { "rsa", RSA_REC, STORE_KEY_ACTIVE, 0 },
        { "pend", ED_REC, STORE_KEY_PENDING, 0 },
        { "two", ED_REC, STORE_KEY_ACTIVE, 0 },
    };
    struct idrec_input in = input("bad.example.test", "bounce.bad.example.test", keys, 4);
    struct idrec_list l;
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    assert_int_equal(l.n, 10);

    const struct idrec *r = find(&l, IDREC_VERIFICATION, NULL);
    assert_state(r, IDREC_WRONG);
    /* the control character shown as '?' */
    assert_string_equal(r->reason, "TXT found but the token differs (found: "
                                   "\"sesame-verification=other?tok\")");

    r = find(&l, IDREC_DKIM, "ed");
    assert_state(r, IDREC_WRONG);
    assert_string_equal(r->reason, "DKIM key does not match: the record at "
                                   "ed._domainkey.bad.example.test has a different public key");
    r = find(&l, IDREC_DKIM, "rsa");
    assert_state(r, IDREC_WRONG);
    assert_contains(r->reason, "the record at rsa._domainkey.bad.example.test is not a DKIM key "
                               "record (key revoked");
    r = find(&l, IDREC_DKIM, "pend");
    assert_state(r, IDREC_MISSING);
    assert_true(r->required);   /* the domain cannot send until one is visible */
    assert_string_equal(r->reason, "no TXT record at pend._domainkey.bad.example.test; signing "
                                   "switches to this key once it is visible");
    r = find(&l, IDREC_DKIM, "two");
    assert_state(r, IDREC_WRONG);
    assert_contains(r->reason, "several TXT records at two._domainkey.bad.example.test: "
                               "receivers may pick either");

    /* two SPF records: one merged record that parses, our term once, one all */
    r = find(&l, IDREC_SPF, NULL);
    assert_state(r, IDREC_WRONG);
    assert_contains(r->reason, "two SPF records at bad.example.test: a permerror for every "
                               "receiver; replace them with this one record");
    /* (the resolver may give the two records in either order) */
    assert_spf_parses(r->value);
    assert_int_equal(strncmp(r->value, "v=spf1 ", 7), 0);
    size_t spaces = 0;
    for (const char *p = r->value; *p; p++)
        spaces += *p == ' ';
    assert_int_equal(spaces, 5); /* v=spf1 and five terms: mx once */
    assert_int_equal(term_count(r->value, TERMS), 1);
    assert_int_equal(term_count(r->value, "include:_spf.other.test"), 1);
    assert_int_equal(term_count(r->value, "ip4:192.0.2.0/24"), 1);
    assert_int_equal(term_count(r->value, "+mx") + term_count(r->value, "mx"), 1);
    assert_int_equal(term_count(r->value, "a:mx.sesame.test -all"), 1); /* strictest all, last */
    assert_int_equal(term_count(r->value, "~all"), 0);

    r = find(&l, IDREC_DMARC, NULL);
    assert_state(r, IDREC_WRONG);
    assert_string_equal(r->reason, "DMARC record found (p=quarantine) but its aggregate reports "
                                   "do not come to sesame: add mailto:" REPORT " to rua");
    assert_string_equal(r->value, "v=DMARC1; p=quarantine; rua=mailto:me@bad.example.test,"
                                  "mailto:" REPORT "; pct=50");

    r = find(&l, IDREC_MAIL_FROM_MX, NULL);
    assert_state(r, IDREC_MISSING);
    assert_true(r->required);
    assert_string_equal(r->reason, "no MX record at bounce.bad.example.test: bounces cannot come "
                                   "back, and receivers may refuse mail from it");
    r = find(&l, IDREC_MAIL_FROM_SPF, NULL);
    assert_state(r, IDREC_WRONG);
    assert_string_equal(r->value, "v=spf1 ip4:198.51.100.7 a:mx.sesame.test -all");
    assert_contains(r->reason, "does not authorise sesame (a:mx.sesame.test)");
    assert_contains(r->reason, "SPF for the envelope sender (MAIL FROM) is what aligns with DMARC");

    r = find(&l, IDREC_INBOUND_MX, NULL);
    assert_state(r, IDREC_WRONG);
    assert_false(r->required);
    assert_string_equal(r->reason, "bad.example.test's MX points to mx.elsewhere.test; point it "
                                   "to mx.sesame.test only if sesame is to receive "
                                   "bad.example.test's mail");
    identity_records_free(&l);
}

static void test_spf_merge_and_missing(void **state)
{
    struct fixture *f = *state;
    struct idrec_input in = input("one.example.test", NULL, NULL, 0);
    struct idrec_list l;
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    const struct idrec *r = find(&l, IDREC_SPF, NULL);
    assert_state(r, IDREC_WRONG);
    assert_string_equal(r->value, "v=spf1 mx include:_spf.mail.test a:mx.sesame.test ~all");
    assert_spf_parses(r->value);
    assert_string_equal(r->reason, "the SPF record does not authorise sesame (a:mx.sesame.test): "
                                   "publish this merged record in its place (a second SPF record "
                                   "would be a permerror)");

    r = find(&l, IDREC_VERIFICATION, NULL);
    assert_state(r, IDREC_MISSING);
    assert_string_equal(r->reason, "no TXT record at _sesame.one.example.test");
    r = find(&l, IDREC_DMARC, NULL);
    assert_state(r, IDREC_MISSING);
    assert_string_equal(r->value, "v=DMARC1; p=none; rua=mailto:" REPORT);
    assert_string_equal(r->reason, "no DMARC record: start with p=none and read the aggregate "
                                   "reports; move to p=quarantine, then p=reject, once every "
                                   "legitimate source passes");
    r = find(&l, IDREC_INBOUND_MX, NULL);
    assert_state(r, IDREC_MISSING);
    assert_contains(r->reason, "no MX record at one.example.test: mail to one.example.test "
                               "cannot be received");
    identity_records_free(&l);

    /* three records: redirect= kept as include:, the strictest all, one exp= */
    in = input("three.example.test", NULL, NULL, 0);
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    r = find(&l, IDREC_SPF, NULL);
    assert_state(r, IDREC_WRONG);
    assert_contains(r->reason, "3 SPF records at three.example.test");
    assert_spf_parses(r->value);
    assert_int_equal(term_count(r->value, "include:_spf.r.test -all"), 1);
    assert_int_equal(term_count(r->value, "a:mx.sesame.test"), 1);
    assert_int_equal(term_count(r->value, "ip4:192.0.2.9"), 1);
    assert_int_equal(term_count(r->value, "mx") + term_count(r->value, "+MX"), 1);
    assert_null(strstr(r->value, "redirect="));
    assert_null(strstr(r->value, "?all"));
    const char *exp = strstr(r->value, "exp=");
    assert_non_null(exp);
    assert_null(strstr(exp + 1, "exp="));
    identity_records_free(&l);

    /* SPF missing entirely: the fresh record */
    in = input("nothing.example.test", "bounce.nothing.example.test", NULL, 0);
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    r = find(&l, IDREC_SPF, NULL);
    assert_state(r, IDREC_MISSING);
    assert_string_equal(r->value, "v=spf1 a:mx.sesame.test ~all");
    r = find(&l, IDREC_MAIL_FROM_SPF, NULL);
    assert_state(r, IDREC_MISSING);
    assert_string_equal(r->value, "v=spf1 a:mx.sesame.test -all");
    assert_contains(r->reason, "no SPF record at bounce.nothing.example.test");
    assert_contains(r->reason, "aligns with DMARC");
    identity_records_free(&l);
}

static void test_spf_lookup_limit(void **state)
{
    struct fixture *f = *state;
    struct idrec_input in = input("many.example.test", NULL, NULL, 0);
    struct idrec_list l;
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    const struct idrec *r = find(&l, IDREC_SPF, NULL);
    assert_state(r, IDREC_WRONG);
    assert_contains(r->value, "a:x8.test a:mx.sesame.test -all");
    assert_contains(r->reason, "publish this merged record");
    assert_contains(r->reason, "needs more than 10 DNS lookups");
    identity_records_free(&l);

    /* our term is there, but an include brings it over 10: not ok */
    in = input("deep.example.test", NULL, NULL, 0);
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    r = find(&l, IDREC_SPF, NULL);
    assert_state(r, IDREC_WRONG);
    assert_string_equal(r->value, "v=spf1 a:mx.sesame.test include:_spf.deep.test ~all");
    assert_contains(r->reason, "needs more than 10 DNS lookups");
    identity_records_free(&l);

    /* 10 exactly is fine */
    in = input("ten.example.test", NULL, NULL, 0);
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    r = find(&l, IDREC_SPF, NULL);
    assert_state(r, IDREC_OK);
    assert_string_equal(r->reason, "");
    identity_records_free(&l);
}

static void test_dmarc_cases(void **state)
{
    struct fixture *f = *state;
    struct idrec_list l;
    /* no rua at all, p=none: rua added */
    struct idrec_input in = input("norua.example.test", NULL, NULL, 0);
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    const struct idrec *r = find(&l, IDREC_DMARC, NULL);
    assert_state(r, IDREC_WRONG);
    assert_string_equal(r->value, "v=DMARC1; p=none; rua=mailto:" REPORT);
    assert_contains(r->reason, "DMARC record found (p=none)");
    identity_records_free(&l);

    /* unusable: the parser's reason, the fresh record */
    in = input("broken.example.test", NULL, NULL, 0);
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    r = find(&l, IDREC_DMARC, NULL);
    assert_state(r, IDREC_WRONG);
    assert_contains(r->reason, "the DMARC record at _dmarc.broken.example.test is not usable: ");
    assert_string_equal(r->value, "v=DMARC1; p=none; rua=mailto:" REPORT);
    identity_records_free(&l);

    /* two records */
    in = input("twice.example.test", NULL, NULL, 0);
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    r = find(&l, IDREC_DMARC, NULL);
    assert_state(r, IDREC_WRONG);
    assert_contains(r->reason, "several DMARC records at _dmarc.twice.example.test: receivers "
                               "ignore DMARC then (RFC 7489 §6.6.3); keep one");
    /* the usable one, with our rua */
    assert_string_equal(r->value, "v=DMARC1; p=reject; rua=mailto:x@twice.example.test,"
                                  "mailto:" REPORT);
    identity_records_free(&l);

    /* below an organizational domain with p=reject (sp=quarantine): keep it */
    in = input("sub.strict.test", NULL, NULL, 0);
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    r = find(&l, IDREC_DMARC, NULL);
    assert_state(r, IDREC_MISSING);
    assert_string_equal(r->value, "v=DMARC1; p=quarantine; rua=mailto:" REPORT);
    assert_contains(r->reason, "receivers apply the one of strict.test (p=quarantine)");
    identity_records_free(&l);

    /* ok with p=none: the advice */
    in = input("norua.example.test", NULL, NULL, 0);
    in.report_address = NULL; /* no report address: any record will do */
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    r = find(&l, IDREC_DMARC, NULL);
    assert_state(r, IDREC_OK);
    assert_string_equal(r->value, "v=DMARC1; p=none;");
    assert_contains(r->reason, "p=none: read the aggregate reports; move to p=quarantine");
    identity_records_free(&l);
}

static void test_tempfail(void **state)
{
    struct fixture *f = *state;
    struct idrec_input in = input("slow.example.test", NULL, NULL, 0);
    struct idrec_list l;
    assert_int_equal(identity_records_build(&in, f->r, &l), 0);
    const struct idrec *r = find(&l, IDREC_VERIFICATION, NULL);   /* timeout */
    assert_state(r, IDREC_TEMPFAIL);
    assert_string_equal(r->reason, "no answer from DNS for _sesame.slow.example.test; try again "
                                   "later");
    r = find(&l, IDREC_DMARC, NULL);                             /* SERVFAIL */
    assert_state(r, IDREC_TEMPFAIL);
    assert_string_equal(r->reason, "no answer from DNS for _dmarc.slow.example.test; try again "
                                   "later");
    assert_string_equal(r->value, "v=DMARC1; p=none; rua=mailto:" REPORT);
    assert_state(find(&l, IDREC_SPF, NULL), IDREC_MISSING);    /* NXDOMAIN */
    identity_records_free(&l);
}

/* ---- JSON and overlay ---- */

static void test_json_zone_lines(void **state)
{
    (void)state;
    char rec[401];
    memset(rec, 'A', 400);
    memcpy(rec, "v=DKIM1; k=rsa; p=", 18);
    rec[400] = '\0';
    const struct idrec_key keys[] = { { "s1", rec, STORE_KEY_ACTIVE, 0 } };
    struct idrec_input in = input("example.com", NULL, keys, 1);
    in.mx_host = "mx.host.";
    in.token = "a\"b\\c";
    struct idrec_list l;
    assert_int_equal(identity_records_build(&in, NULL, &l), 0);
    json_t *j = identity_records_json(&l);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), l.n);

    json_t *dkim = json_array_get(j, 1);
    assert_string_equal(json_string_value(json_object_get(dkim, "purpose")), "dkim");
    assert_string_equal(json_string_value(json_object_get(dkim, "type")), "TXT");
    assert_string_equal(json_string_value(json_object_get(dkim, "name")), "s1._domainkey.example.com");
    assert_string_equal(json_string_value(json_object_get(dkim, "value")), rec);
    assert_string_equal(json_string_value(json_object_get(dkim, "status")), "unchecked");
    assert_true(json_is_true(json_object_get(dkim, "required")));
    assert_string_equal(json_string_value(json_object_get(dkim, "reason")), "");
    char want[600];
    snprintf(want, sizeof want, "s1._domainkey.example.com. 3600 IN TXT \"%.255s\" \"%s\"", rec,
             rec + 255);
    assert_string_equal(json_string_value(json_object_get(dkim, "zone")), want);

    json_t *ver = json_array_get(j, 0);
    assert_string_equal(json_string_value(json_object_get(ver, "zone")),
                        "_sesame.example.com. 3600 IN TXT \"sesame-verification=a\\\"b\\\\c\"");
    json_t *mx = json_array_get(j, json_array_size(j) - 1);
    assert_string_equal(json_string_value(json_object_get(mx, "purpose")), "inbound_mx");
    assert_string_equal(json_string_value(json_object_get(mx, "value")), "10 mx.host");
    assert_string_equal(json_string_value(json_object_get(mx, "zone")),
                        "example.com. 3600 IN MX 10 mx.host.");
    json_decref(j);
    identity_records_free(&l);
}

static void test_overlay(void **state)
{
    struct fixture *f = *state;
    const struct idrec_key keys[] = {
        { "ed", ED_REC, STORE_KEY_ACTIVE, 0 },
        { "old", ED2_REC, STORE_KEY_RETIRED, 1600000000 },
    };
    struct idrec_input in = input("bad.example.test", "bounce.bad.example.test", keys, 2);
    struct idrec_list checked, fresh;
    assert_int_equal(identity_records_build(&in, f->r, &checked), 0);
    json_t *stored = identity_records_json(&checked);
    assert_non_null(stored);
    /* stored and read back, as the store would */
    char *text = json_dumps(stored, 0);
    assert_non_null(text);
    json_t *last = json_loads(text, 0, NULL);
    assert_non_null(last);
    /* garbage among the entries */
    json_array_append_new(last, json_string("nonsense"));
    json_array_append_new(last, json_pack("{s:s}", "purpose", "spf"));
    json_array_append_new(last, json_pack("{s:s, s:s, s:s, s:s}", "purpose", "spf", "type", "TXT",
                                          "name", "bad.example.test", "status", "bogus"));
    json_array_append_new(last, json_pack("{s:s, s:s, s:s, s:i}", "purpose", "dmarc", "type",
                                          "TXT", "name", "_dmarc.bad.example.test", "status", 3));
    json_array_append_new(last, json_pack("{s:s, s:s, s:s, s:s}", "purpose", "dkim", "type",
                                          "TXT", "name", "old._domainkey.bad.example.test",
                                          "status", "ok"));

    /* old is retired: without DNS it stays listed, to be removed */
    assert_int_equal(identity_records_build(&in, NULL, &fresh), 0);
    assert_int_equal(fresh.n, checked.n + 1);
    identity_records_overlay(&fresh, last);
    for (size_t i = 0, k = 0; i < fresh.n; i++) {
        const struct idrec *r = &fresh.v[i];
        if (r->purpose == IDREC_DKIM && strcmp(r->selector, "old") == 0) {
            assert_int_equal(r->state, IDREC_REMOVE); /* a retired key keeps "remove" */
            continue;
        }
        const struct idrec *c = &checked.v[k++];
        assert_string_equal(r->name, c->name);
        assert_int_equal(r->state, c->state);
        assert_string_equal(r->reason, c->reason);
        assert_string_equal(r->value, c->value); /* merged SPF, DMARC, MAIL FROM SPF copied */
    }
    assert_int_equal(find(&fresh, IDREC_SPF, NULL)->state, IDREC_WRONG);
    assert_int_equal(term_count(find(&fresh, IDREC_SPF, NULL)->value, "ip4:192.0.2.0/24"), 1);

    /* nothing but garbage: nothing changes */
    struct idrec_list again;
    assert_int_equal(identity_records_build(&in, NULL, &again), 0);
    json_t *junk = json_pack("[s, i, {s:s, s:s, s:s, s:s, s:i}, {s:s, s:s, s:s, s:s}]",
                             "x", 3, "purpose", "spf", "type", "TXT", "name", "bad.example.test",
                             "status", "ok", "reason", 7, "purpose", "spf", "type", "MX",
                             "name", "bad.example.test", "status", "ok");
    assert_non_null(junk);
    identity_records_overlay(&again, junk);
    json_t *obj = json_pack("{s:s}", "purpose", "spf");
    identity_records_overlay(&again, obj);
    identity_records_overlay(&again, NULL);
    for (size_t i = 0; i < again.n; i++)
        assert_int_equal(again.v[i].state, again.v[i].selector[0] && strcmp(again.v[i].selector,
                         "old") == 0 ? IDREC_REMOVE : IDREC_UNCHECKED);
    assert_string_equal(find(&again, IDREC_SPF, NULL)->value, "v=spf1 a:mx.sesame.test ~all");

    json_decref(obj);
    json_decref(junk);
    json_decref(last);
    json_decref(stored);
    free(text);
    identity_records_free(&again);
    identity_records_free(&fresh);
    identity_records_free(&checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchecked_list),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_json_zone_lines),
        cmocka_unit_test_setup_teardown(test_all_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spf_merge_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spf_lookup_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dmarc_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tempfail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlay, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
