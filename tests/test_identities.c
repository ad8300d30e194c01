/* Tests of service/identities.c: domain name normalisation (table), adding
 * a domain (token shape, adding twice), verification through the real
 * resolver path (libunbound forwarding to the test DNS server on
 * 127.0.0.1, zone changed in place as an account publishes its record):
 * published, split in strings with surrounding spaces, wrong token, wrong
 * case, NXDOMAIN, NODATA, a name that never answers, a verified domain
 * whose record disappears, two accounts claiming one domain; and the JSON
 * of SPEC.md §3. The store is the real SQLite one in a temporary dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns/dns.h"
#include "dns/dns_zone.h"
#include "service/identities.h"
#include "store/store.h"
#include "testdns.h"

#define TIMEOUT_MS 700

struct fixture {
    char dir[64];
    struct store *st;
    struct dns_zone *zone;
    struct testdns *srv;
    struct dns_resolver *r;
    int64_t acct_a, acct_b;
};

static const char ZONE[] =
    "{"
    " \"example.test\": [{\"type\": \"A\", \"value\": \"192.0.2.1\"}],"
    " \"_sesame.empty.example.test\": [],"
    " \"_sesame.slow.example.test\": [{\"type\": \"TIMEOUT\"}]"
    "}";

static int64_t make_account(struct store *st, const char *name)
{
    struct store_account a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    a.sandbox = true;
    a.max_24h = 200;
    a.max_rate = 1;
    assert_int_equal(store_account_insert(st, &a), STORE_OK);
    assert_true(a.id > 0);
    return a.id;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_identities.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->st = store_open("sqlite", f->dir, err, sizeof err);
    if (!f->st)
        fail_msg("store_open: %s", err);
    f->acct_a = make_account(f->st, "alice");
    f->acct_b = make_account(f->st, "bob");
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

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dns_resolver_free(f->r);
    testdns_stop(f->srv);
    dns_zone_free(f->zone);
    store_close(f->st);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Publishes a TXT record (JSON "value": one string or a list) in the served zone. */
static void publish_json(struct fixture *f, const char *name, const char *value_json)
{
    char json[1024], err[256];
    snprintf(json, sizeof json, "{\"%s\": [{\"type\": \"TXT\", \"value\": %s}]}", name,
             value_json);
    testdns_lock(f->srv);
    int rc = dns_zone_load_json(f->zone, json, strlen(json), err, sizeof err);
    testdns_unlock(f->srv);
    if (rc != 0)
        fail_msg("publish %s: %s", json, err);
}

static void publish(struct fixture *f, const char *name, const char *value)
{
    char quoted[512];
    snprintf(quoted, sizeof quoted, "\"%s\"", value);
    publish_json(f, name, quoted);
}

/* Replaces the served zone by the base zone (records "disappear"). */
static void reset_zone(struct fixture *f)
{
    char err[256];
    struct dns_zone *z = dns_zone_new(), *old = f->zone;
    assert_non_null(z);
    assert_int_equal(dns_zone_load_json(z, ZONE, strlen(ZONE), err, sizeof err), 0);
    testdns_set_zone(f->srv, z);
    f->zone = z;
    dns_zone_free(old);
}

static void add_ok(struct fixture *f, int64_t acct, const char *domain, struct store_domain *d)
{
    char err[256] = "";
    int rc = identity_domain_add(f->st, acct, domain, d, err, sizeof err);
    if (rc != STORE_OK)
        fail_msg("add %s: rc %d: %s", domain, rc, err);
}

static void value_of(const struct store_domain *d, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s", IDENTITY_VERIFY_PREFIX, d->verify_token);
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* ---- normalisation ---- */

static void normalize_table(void **state)
{
    (void)state;
    char long_label[70], long_name[310], max_name[300];
    memset(long_label, 'a', 64);
    memcpy(long_label + 64, ".com", 5);                      /* a 64-octet label */
    /* 245 octets is the longest (IDENTITY_DOMAIN_MAX); 246 is refused */
    size_t n = 0;
    while (n + 50 < IDENTITY_DOMAIN_MAX) {
        memset(max_name + n, 'b', 49);
        max_name[n + 49] = '.';
        n += 50;
    }
    memset(max_name + n, 'c', (size_t)IDENTITY_DOMAIN_MAX - n);
    max_name[IDENTITY_DOMAIN_MAX] = '\0';
    assert_int_equal(strlen(max_name), IDENTITY_DOMAIN_MAX);
    snprintf(long_name, sizeof long_name, "d%s", max_name);

    static const struct {
        const char *in, *want, *why;  /* want NULL: refused, why in err */
    } cases[] = {
        { "Example.COM", "example.com", NULL },
        { "example.com.", "example.com", NULL },
        { "MAIL.Example.Test.", "mail.example.test", NULL },
        { "a-b.c-d.example", "a-b.c-d.example", NULL },
        { "xn--bcher-kva.example", "xn--bcher-kva.example", NULL },
        { "1.2.3.example", "1.2.3.example", NULL },
        { "b\xc3\xbc" "cher.example", NULL, "xn--" },
        { "caf\xe9.example", NULL, "non-ASCII" },
        { "example", NULL, "two labels" },
        { "example.", NULL, "two labels" },
        { "", NULL, "empty" },
        { ".", NULL, "empty" },
        { "example..com", NULL, "empty label" },
        { ".example.com", NULL, "empty label" },
        { "-bad.example.com", NULL, "start or end with '-'" },
        { "bad-.example.com", NULL, "start or end with '-'" },
        { "ok.-bad.com", NULL, "start or end with '-'" },
        { "under_score.example.com", NULL, "character '_'" },
        { "sp ace.example.com", NULL, "character ' '" },
        { "tab\t.example.com", NULL, "control character" },
        { "192.0.2.1", NULL, "IP address" },
        { "example.com..", NULL, "empty label" },
    };
    char out[DNS_MAX_NAME_LEN + 1], err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rc = identity_domain_normalize(cases[i].in, out, sizeof out, err, sizeof err);
        if (cases[i].want) {
            if (rc != 0 || strcmp(out, cases[i].want) != 0)
                fail_msg("case %zu '%s': rc %d out '%s' err '%s'", i, cases[i].in, rc, out, err);
        } else if (rc != -1 || !strstr(err, cases[i].why)) {
            fail_msg("case %zu '%s': rc %d err '%s', want refusal with '%s'", i, cases[i].in,
                     rc, err, cases[i].why);
        }
    }
    assert_int_equal(identity_domain_normalize(long_label, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "label longer than 63"));
    long_label[63] = '.';                                    /* 63 octets is fine */
    memcpy(long_label + 64, "com", 4);
    assert_int_equal(identity_domain_normalize(long_label, out, sizeof out, err, sizeof err), 0);
    assert_int_equal(identity_domain_normalize(max_name, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, max_name);
    assert_int_equal(identity_domain_normalize(long_name, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 245"));
    /* messages stay printable ASCII (they end up in JSON) */
    assert_int_equal(identity_domain_normalize("caf\xe9.example", out, sizeof out, err,
                                               sizeof err), -1);
    for (const char *p = err; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    assert_int_equal(identity_domain_normalize(NULL, out, sizeof out, err, sizeof err), -1);
}

/* ---- add ---- */

static void add_twice_same_token(void **state)
{
    struct fixture *f = *state;
    struct store_domain d1, d2, other;
    add_ok(f, f->acct_a, "Twice.Example.TEST.", &d1);
    assert_string_equal(d1.domain, "twice.example.test");
    assert_int_equal(d1.status, STORE_ID_PENDING);
    assert_int_equal(d1.account_id, f->acct_a);
    assert_int_equal(strlen(d1.verify_token), 2 * IDENTITY_TOKEN_BYTES);
    for (const char *p = d1.verify_token; *p; p++)
        assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    assert_int_equal(d1.verified_at, 0);
    assert_int_equal(d1.checked_at, 0);
    assert_true(d1.created_at >= now_s() - 5 && d1.created_at <= now_s());

    add_ok(f, f->acct_a, "twice.example.test", &d2);
    assert_int_equal(d2.id, d1.id);
    assert_string_equal(d2.verify_token, d1.verify_token);

    /* another account gets its own row and its own token */
    add_ok(f, f->acct_b, "twice.example.test", &other);
    assert_int_not_equal(other.id, d1.id);
    assert_string_not_equal(other.verify_token, d1.verify_token);

    char err[256] = "";
    assert_int_equal(identity_domain_add(f->st, f->acct_a, "bad_name.example", &d2, err,
                                         sizeof err), IDENTITY_BADNAME);
    assert_non_null(strstr(err, "'_'"));
}

/* ---- verify through libunbound and the test DNS server ---- */

static void verify(struct fixture *f, int64_t acct, const char *domain, int want_rc,
                   bool want_tempfail, struct store_domain *d, char *err, size_t errlen)
{
    bool tempfail = !want_tempfail;
    err[0] = '\0';
    int rc = identity_domain_verify(f->st, f->r, acct, domain, d, &tempfail, err, errlen);
    if (rc != want_rc || tempfail != want_tempfail)
        fail_msg("verify %s: rc %d tempfail %d (want %d, %d): %s", domain, rc, tempfail,
                 want_rc, want_tempfail, err);
}

/* The row as the store has it now. */
static void stored(struct fixture *f, int64_t acct, const char *domain, struct store_domain *d)
{
    assert_int_equal(store_domain_get(f->st, acct, domain, d), STORE_OK);
}

static void verify_published(void **state)
{
    struct fixture *f = *state;
    struct store_domain d, s;
    char value[128], err[512];
    add_ok(f, f->acct_a, "pub.example.test", &d);
    value_of(&d, value, sizeof value);
    publish(f, "_sesame.pub.example.test", "v=spf1 -all"); /* another TXT beside it */
    publish(f, "_sesame.pub.example.test", value);
    verify(f, f->acct_a, "PUB.example.test.", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    assert_non_null(strstr(err, "holds the token"));
    assert_true(d.verified_at >= now_s() - 5 && d.verified_at <= now_s());
    assert_int_equal(d.checked_at, d.verified_at);
    stored(f, f->acct_a, "pub.example.test", &s);
    assert_int_equal(s.status, STORE_ID_VERIFIED);
    assert_int_equal(s.verified_at, d.verified_at);
    assert_int_equal(store_domain_find_verified(f->st, "pub.example.test", &s), STORE_OK);
    assert_int_equal(s.account_id, f->acct_a);

    /* verifying again keeps it verified (and the first verified_at) */
    int64_t first = d.verified_at;
    verify(f, f->acct_a, "pub.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    assert_int_equal(d.verified_at, first);

    /* the record disappears: still verified here (re-checks are a later issue's) */
    reset_zone(f);
    verify(f, f->acct_a, "pub.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    assert_non_null(strstr(err, "no TXT record at _sesame.pub.example.test"));
    assert_non_null(strstr(err, "stays verified"));
    stored(f, f->acct_a, "pub.example.test", &s);
    assert_int_equal(s.status, STORE_ID_VERIFIED);
}

static void verify_split_strings_and_spaces(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    char json[512], err[512];
    add_ok(f, f->acct_a, "split.example.test", &d);
    /* one record of three strings, joined: "  sesame-verification=TOKEN \t" */
    snprintf(json, sizeof json, "[\"  sesame-\", \"verification=%.*s\", \"%s \\t\"]", 10,
             d.verify_token, d.verify_token + 10);
    publish_json(f, "_sesame.split.example.test", json);
    verify(f, f->acct_a, "split.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
}

static void verify_wrong_token(void **state)
{
    struct fixture *f = *state;
    struct store_domain d, s;
    char value[128], want[160], err[512];
    add_ok(f, f->acct_a, "wrong.example.test", &d);
    publish(f, "_sesame.wrong.example.test", "sesame-verification=0123456789abcdef");
    verify(f, f->acct_a, "wrong.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_FAILED);
    value_of(&d, value, sizeof value);
    snprintf(want, sizeof want, "TXT records found but none is %s", value);
    if (!strstr(err, want) || !strstr(err, "\"sesame-verification=0123456789abcdef\""))
        fail_msg("reason: %s", err);
    assert_int_equal(d.verified_at, 0);
    assert_true(d.checked_at >= now_s() - 5 && d.checked_at <= now_s());
    stored(f, f->acct_a, "wrong.example.test", &s);
    assert_int_equal(s.status, STORE_ID_FAILED);
    assert_int_equal(s.checked_at, d.checked_at);
    assert_int_equal(store_domain_find_verified(f->st, "wrong.example.test", &s),
                     STORE_NOTFOUND);

    /* the prefix is exact: another case does not count */
    char upper[128];
    snprintf(upper, sizeof upper, "SESAME-VERIFICATION=%s", d.verify_token);
    publish(f, "_sesame.wrong.example.test", upper);
    verify(f, f->acct_a, "wrong.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_FAILED);
    if (!strstr(err, "\"SESAME-VERIFICATION=") || !strstr(err, "\"sesame-verification=0123"))
        fail_msg("reason: %s", err);

    /* publishing the right one afterwards verifies */
    publish(f, "_sesame.wrong.example.test", value);
    verify(f, f->acct_a, "wrong.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
}

static void verify_nxdomain_nodata(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    char err[512];
    add_ok(f, f->acct_a, "absent.example.test", &d);
    verify(f, f->acct_a, "absent.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_FAILED);
    assert_string_equal(err, "no TXT record at _sesame.absent.example.test");

    add_ok(f, f->acct_a, "empty.example.test", &d);
    verify(f, f->acct_a, "empty.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_FAILED);
    assert_string_equal(err, "no TXT record at _sesame.empty.example.test");
}

static void verify_timeout_unchanged(void **state)
{
    struct fixture *f = *state;
    struct store_domain d, before, s;
    char err[512];
    add_ok(f, f->acct_a, "slow.example.test", &before);
    verify(f, f->acct_a, "slow.example.test", STORE_OK, true, &d, err, sizeof err);
    assert_non_null(strstr(err, "no answer from DNS"));
    assert_int_equal(d.status, STORE_ID_PENDING);
    stored(f, f->acct_a, "slow.example.test", &s);
    assert_int_equal(s.status, STORE_ID_PENDING);
    assert_int_equal(s.checked_at, before.checked_at);
    assert_int_equal(s.verified_at, 0);
}

static void verify_unknown_and_bad(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    char err[512];
    verify(f, f->acct_a, "never-added.example.test", STORE_NOTFOUND, false, &d, err, sizeof err);
    assert_non_null(strstr(err, "has not been added"));
    verify(f, f->acct_a, "-x.example.test", IDENTITY_BADNAME, false, &d, err, sizeof err);
}

static void two_accounts(void **state)
{
    struct fixture *f = *state;
    struct store_domain a, b, s;
    char va[128], vb[128], err[512];
    add_ok(f, f->acct_a, "shared.example.test", &a);
    add_ok(f, f->acct_b, "shared.example.test", &b);
    value_of(&a, va, sizeof va);
    value_of(&b, vb, sizeof vb);
    publish(f, "_sesame.shared.example.test", va);
    publish(f, "_sesame.shared.example.test", vb);   /* B publishes its token too */
    verify(f, f->acct_a, "shared.example.test", STORE_OK, false, &a, err, sizeof err);
    assert_int_equal(a.status, STORE_ID_VERIFIED);

    verify(f, f->acct_b, "shared.example.test", STORE_EXISTS, false, &b, err, sizeof err);
    assert_string_equal(err, "shared.example.test is verified by another account");
    assert_int_not_equal(b.status, STORE_ID_VERIFIED);
    assert_int_equal(b.verified_at, 0);
    stored(f, f->acct_b, "shared.example.test", &s);
    assert_int_equal(s.status, STORE_ID_PENDING);
    assert_int_equal(s.verified_at, 0);

    assert_int_equal(store_domain_find_verified(f->st, "shared.example.test", &s), STORE_OK);
    assert_int_equal(s.account_id, f->acct_a);
    assert_int_equal(s.id, a.id);
}

/* ---- JSON ---- */

static void json_shape(void **state)
{
    (void)state;
    struct store_domain d;
    memset(&d, 0, sizeof d);
    d.id = 7;
    d.account_id = 3;
    snprintf(d.domain, sizeof d.domain, "example.com");
    snprintf(d.verify_token, sizeof d.verify_token, "%s", "00ff");
    d.status = STORE_ID_PENDING;
    d.created_at = 1700000000;

    json_t *j = identity_domain_json(&d);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s,
        "{\"checked_at\":null,\"domain\":\"example.com\",\"records\":[{\"name\":"
        "\"_sesame.example.com\",\"purpose\":\"verification\",\"type\":\"TXT\",\"value\":"
        "\"sesame-verification=00ff\"}],\"status\":\"pending\",\"verified_at\":null}");
    free(s);
    json_decref(j);

    d.status = STORE_ID_VERIFIED;
    d.verified_at = 1700000000;   /* 2023-11-14T22:13:20Z */
    d.checked_at = 1700000061;
    j = identity_domain_json(&d);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "verified");
    assert_string_equal(json_string_value(json_object_get(j, "verified_at")),
                        "2023-11-14T22:13:20Z");
    assert_string_equal(json_string_value(json_object_get(j, "checked_at")),
                        "2023-11-14T22:14:21Z");
    json_decref(j);

    d.status = STORE_ID_FAILED;
    j = identity_domain_json(&d);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
    json_decref(j);
    assert_string_equal(identity_status_name(STORE_ID_EXPIRED), "expired");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize_table),
        cmocka_unit_test(json_shape),
        cmocka_unit_test_setup_teardown(add_twice_same_token, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_published, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_split_strings_and_spaces, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_wrong_token, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_nxdomain_nodata, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_timeout_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_unknown_and_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(two_accounts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
