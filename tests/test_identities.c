/* Tests of service/identities.c and identity_check.c: domain name
 * normalisation (table), adding a domain (token shape, keys, adding
 * twice), verification through the real resolver path (libunbound
 * forwarding to the test DNS server on 127.0.0.1, zone changed in place as
 * an account publishes its records): published, split in strings with
 * surrounding spaces, wrong token, wrong case, NXDOMAIN, NODATA, a name
 * that never answers, two accounts claiming one domain; DKIM keys active
 * only once visible; rotation switching only after publication, the grace
 * period and retirement (clock moved); records disappearing (flagged,
 * event, failed after the grace); the background schedule and the 72 h
 * window; the custom MAIL FROM domain; deletion; the JSON of SPEC.md §3.
 * The store is the real SQLite one in a temporary dir. */
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
    struct identity_env env;
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
    snprintf(f->env.mx_host, sizeof f->env.mx_host, "mx.sesame.test");
    snprintf(f->env.spf_terms, sizeof f->env.spf_terms, "ip4:192.0.2.25");
    snprintf(f->env.data_dir, sizeof f->env.data_dir, "%s", f->dir);
    f->env.check_interval = 60;
    f->env.verify_window = 72 * 3600;
    f->env.recheck_interval = 86400;
    f->env.missing_grace = 72 * 3600;
    f->env.dkim_grace = 7 * 86400;
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
    char json[8192], err[256];
    if ((size_t)snprintf(json, sizeof json, "{\"%s\": [{\"type\": \"TXT\", \"value\": %s}]}",
                         name, value_json) >= sizeof json)
        fail_msg("publish %s: record too long for the test", name);
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
    bool created;
    int rc = identity_domain_add(f->st, &f->env, acct, domain, d, &created, err, sizeof err);
    if (rc != STORE_OK)
        fail_msg("add %s: rc %d: %s", domain, rc, err);
}

static void value_of(const struct store_domain *d, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s", IDENTITY_VERIFY_PREFIX, d->verify_token);
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

struct keys { struct store_dkim_key v[64]; size_t n; };

static int keys_cb(const struct store_dkim_key *k, void *arg)
{
    struct keys *l = arg;
    if (l->n < sizeof l->v / sizeof l->v[0])
        l->v[l->n++] = *k;
    return 0;
}

static void list_keys(struct fixture *f, const struct store_domain *d, struct keys *l)
{
    l->n = 0;
    assert_int_equal(store_dkim_key_list(f->st, d->id, keys_cb, l), STORE_OK);
}

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
    /* the first background check is scheduled; two keys wait to be seen */
    assert_int_equal(d1.next_check_at, d1.created_at + f->env.check_interval);
    struct keys k = { 0 };
    list_keys(f, &d1, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.v[0].status, STORE_KEY_PENDING);
    assert_int_equal(k.v[1].status, STORE_KEY_PENDING);
    assert_string_equal(k.v[0].algorithm, "rsa-sha256");
    assert_string_equal(k.v[1].algorithm, "ed25519-sha256");
    /* per account: DATA_DIR/dkim/ACCOUNT/DOMAIN/SELECTOR.pem */
    char want[256];
    snprintf(want, sizeof want, "%s/dkim/%lld/twice.example.test/%s.pem", f->dir,
             (long long)f->acct_a, k.v[0].selector);
    assert_string_equal(k.v[0].key_path, want);

    add_ok(f, f->acct_a, "twice.example.test", &d2);
    assert_int_equal(d2.id, d1.id);
    assert_string_equal(d2.verify_token, d1.verify_token);

    /* another account gets its own row and its own token */
    add_ok(f, f->acct_b, "twice.example.test", &other);
    assert_int_not_equal(other.id, d1.id);
    assert_string_not_equal(other.verify_token, d1.verify_token);

    char err[256] = "";
    bool created = true;
    assert_int_equal(identity_domain_add(f->st, &f->env, f->acct_a, "bad_name.example", &d2,
                                         &created, err, sizeof err), IDENTITY_BADNAME);
    assert_false(created);
    assert_non_null(strstr(err, "'_'"));
}

/* ---- verify through libunbound and the test DNS server ---- */

static void verify(struct fixture *f, int64_t acct, const char *domain, int want_rc,
                   bool want_tempfail, struct store_domain *d, char *err, size_t errlen)
{
    bool tempfail = !want_tempfail;
    err[0] = '\0';
    int rc = identity_domain_verify(f->st, f->r, &f->env, acct, domain, d, &tempfail, err,
                                    errlen);
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

    /* the record disappears: flagged, still verified within the grace */
    reset_zone(f);
    verify(f, f->acct_a, "pub.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    assert_non_null(strstr(err, "no TXT record at _sesame.pub.example.test"));
    assert_non_null(strstr(err, "stays verified"));
    stored(f, f->acct_a, "pub.example.test", &s);
    assert_int_equal(s.status, STORE_ID_VERIFIED);
    assert_true(s.missing_since >= now_s() - 5);
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
    (void)want;
    if (!strstr(err, "token differs") || !strstr(err, "sesame-verification=0123456789abcdef"))
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
    if (!strstr(err, "token differs"))
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
    if (!strstr(err, "no TXT record at _sesame.absent.example.test"))
        fail_msg("reason: %s", err);

    add_ok(f, f->acct_a, "empty.example.test", &d);
    verify(f, f->acct_a, "empty.example.test", STORE_OK, false, &d, err, sizeof err);
    assert_int_equal(d.status, STORE_ID_FAILED);
    if (!strstr(err, "no TXT record at _sesame.empty.example.test"))
        fail_msg("reason: %s", err);
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

/* ---- DKIM keys, rotation, schedule, MAIL FROM, JSON (identity_check.c) ---- */

/* Publishes a TXT value of any length (split in 255-octet strings). */
static void publish_long(struct fixture *f, const char *name, const char *value)
{
    char json[4096];
    size_t o = 0, len = strlen(value);
    o += (size_t)snprintf(json + o, sizeof json - o, "[");
    for (size_t off = 0; off < len; off += 255) {
        size_t n = len - off > 255 ? 255 : len - off;
        o += (size_t)snprintf(json + o, sizeof json - o, "%s\"%.*s\"", off ? ", " : "", (int)n,
                              value + off);
    }
    snprintf(json + o, sizeof json - o, "]");
    publish_json(f, name, json);
}

static void publish_mx(struct fixture *f, const char *name, const char *host)
{
    char json[512], err[256];
    snprintf(json, sizeof json, "{\"%s\": [{\"type\": \"MX\", \"value\": [10, \"%s\"]}]}", name,
             host);
    testdns_lock(f->srv);
    int rc = dns_zone_load_json(f->zone, json, strlen(json), err, sizeof err);
    testdns_unlock(f->srv);
    if (rc != 0)
        fail_msg("publish %s: %s", json, err);
}

static void publish_token(struct fixture *f, const struct store_domain *d)
{
    char name[300], value[128];
    snprintf(name, sizeof name, "_sesame.%s", d->domain);
    value_of(d, value, sizeof value);
    publish(f, name, value);
}

static void publish_key(struct fixture *f, const struct store_domain *d,
                        const struct store_dkim_key *k)
{
    char name[400];
    snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, d->domain);
    publish_long(f, name, k->record);
}

/* A background or on-demand check at a given time; the row is re-read. */
static void check_at(struct fixture *f, struct store_domain *d, int64_t now, bool on_demand,
                     struct identity_check *res)
{
    assert_int_equal(store_domain_get(f->st, d->account_id, d->domain, d), STORE_OK);
    int rc = identity_domain_check(f->st, f->r, &f->env, d, now, on_demand, res);
    if (rc != STORE_OK)
        fail_msg("check %s: %s", d->domain, res->reason);
}

static const struct store_dkim_key *key_by(const struct keys *k, const char *selector)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->v[i].selector, selector) == 0)
            return &k->v[i];
    fail_msg("no key %s", selector);
    return NULL;
}

struct events { char text[8][1024]; size_t n; };

static int events_cb(const struct store_event *e, void *arg)
{
    struct events *l = arg;
    if (l->n < 8)
        snprintf(l->text[l->n++], sizeof l->text[0], "%s", e->json);
    return 0;
}

static void list_events(struct fixture *f, int64_t acct, struct events *l)
{
    l->n = 0;
    assert_int_equal(store_event_list(f->st, acct, 0, events_cb, l), STORE_OK);
}

static void dkim_active_only_when_visible(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    struct identity_check res;
    struct keys k;
    add_ok(f, f->acct_a, "keys.example.test", &d);
    publish_token(f, &d);
    int64_t t0 = now_s();
    check_at(f, &d, t0, true, &res);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    list_keys(f, &d, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.v[0].status, STORE_KEY_PENDING);   /* not in DNS: nothing signs */
    assert_int_equal(k.v[1].status, STORE_KEY_PENDING);
    /* pending keys keep the domain on the short poll */
    assert_int_equal(d.next_check_at, t0 + f->env.check_interval);

    publish_key(f, &d, &k.v[0]);
    check_at(f, &d, t0 + 60, false, &res);
    list_keys(f, &d, &k);
    assert_int_equal(k.v[0].status, STORE_KEY_ACTIVE);
    assert_int_equal(k.v[0].published_at, t0 + 60);
    assert_int_equal(k.v[1].status, STORE_KEY_PENDING);

    publish_key(f, &d, &k.v[1]);
    check_at(f, &d, t0 + 180, false, &res);
    list_keys(f, &d, &k);
    assert_int_equal(k.v[1].status, STORE_KEY_ACTIVE);
    /* nothing pending any more: the daily re-check */
    assert_int_equal(d.next_check_at, t0 + 180 + f->env.recheck_interval);
    assert_int_equal(d.check_attempts, 0);

    /* a signing key's record disappears: one event, published_at cleared */
    struct events ev;
    list_events(f, f->acct_a, &ev);
    size_t before = ev.n;
    reset_zone(f);
    publish_token(f, &d);
    publish_key(f, &d, &k.v[1]);
    check_at(f, &d, t0 + 86400, false, &res);
    list_keys(f, &d, &k);
    assert_int_equal(k.v[0].published_at, 0);
    assert_int_equal(k.v[0].status, STORE_KEY_ACTIVE);   /* nothing else could sign */
    list_events(f, f->acct_a, &ev);
    assert_int_equal(ev.n, before + 1);
    assert_non_null(strstr(ev.text[ev.n - 1], "\"type\":\"dkim\""));
    assert_non_null(strstr(ev.text[ev.n - 1], "\"status\":\"records_missing\""));
    check_at(f, &d, t0 + 2 * 86400, false, &res);
    list_events(f, f->acct_a, &ev);
    assert_int_equal(ev.n, before + 1);                  /* reported once */
    publish_key(f, &d, &k.v[0]);
    check_at(f, &d, t0 + 3 * 86400, false, &res);
    list_keys(f, &d, &k);
    assert_int_equal(k.v[0].published_at, t0 + 3 * 86400);
}

/* Rotations go on for ever: keys retired long ago do not count. */
static void many_rotations(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    struct identity_check res;
    struct keys k;
    char err[512];
    add_ok(f, f->acct_a, "many.example.test", &d);
    publish_token(f, &d);
    list_keys(f, &d, &k);
    publish_key(f, &d, &k.v[0]);
    publish_key(f, &d, &k.v[1]);
    int64_t t = now_s();
    check_at(f, &d, t, true, &res);
    for (int i = 0; i < 9; i++) {
        t += 40 * 86400;   /* a rotation every 40 days */
        if (identity_domain_rotate(f->st, &f->env, &d, t, err, sizeof err) != STORE_OK)
            fail_msg("rotation %d: %s", i + 1, err);
        list_keys(f, &d, &k);
        publish_key(f, &d, &k.v[k.n - 2]);
        publish_key(f, &d, &k.v[k.n - 1]);
        check_at(f, &d, t + 60, false, &res);
        list_keys(f, &d, &k);
        assert_int_equal(k.v[k.n - 1].status, STORE_KEY_ACTIVE);
        assert_int_equal(k.v[k.n - 2].status, STORE_KEY_ACTIVE);
    }
    /* many at once within a month: refused with a reason, not for ever */
    for (int i = 0; i < 8; i++) {
        t += 60;
        int rc = identity_domain_rotate(f->st, &f->env, &d, t, err, sizeof err);
        if (rc == STORE_EXISTS && strstr(err, "retired less than"))
            return;
        assert_int_equal(rc, STORE_OK);
        list_keys(f, &d, &k);
        publish_key(f, &d, &k.v[k.n - 2]);
        publish_key(f, &d, &k.v[k.n - 1]);
        check_at(f, &d, t + 1, false, &res);
    }
    fail_msg("no cap on keys in use");
}

static void rotation_switches_after_publication(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    struct identity_check res;
    struct keys k;
    char err[512];
    add_ok(f, f->acct_a, "rot.example.test", &d);
    publish_token(f, &d);
    list_keys(f, &d, &k);
    publish_key(f, &d, &k.v[0]);
    publish_key(f, &d, &k.v[1]);
    int64_t t0 = now_s();
    check_at(f, &d, t0, true, &res);
    char old_rsa[64], old_ed[64];
    list_keys(f, &d, &k);
    snprintf(old_rsa, sizeof old_rsa, "%s", k.v[0].selector);
    snprintf(old_ed, sizeof old_ed, "%s", k.v[1].selector);
    assert_int_equal(k.v[0].status, STORE_KEY_ACTIVE);

    assert_int_equal(identity_domain_rotate(f->st, &f->env, &d, t0 + 10, err, sizeof err),
                     STORE_OK);
    list_keys(f, &d, &k);
    assert_int_equal(k.n, 4);
    assert_int_equal(k.v[2].status, STORE_KEY_PENDING);
    assert_int_equal(k.v[3].status, STORE_KEY_PENDING);
    assert_string_not_equal(k.v[2].selector, old_rsa);
    assert_string_equal(k.v[2].algorithm, "rsa-sha256");
    assert_string_equal(k.v[3].algorithm, "ed25519-sha256");
    struct store_dkim_key new_rsa = k.v[2], new_ed = k.v[3];
    /* a second rotation waits for the first */
    assert_int_equal(identity_domain_rotate(f->st, &f->env, &d, t0 + 11, err, sizeof err),
                     STORE_EXISTS);
    assert_non_null(strstr(err, new_rsa.selector));

    /* not published yet: the old keys still sign */
    check_at(f, &d, t0 + 70, false, &res);
    list_keys(f, &d, &k);
    assert_int_equal(key_by(&k, old_rsa)->status, STORE_KEY_ACTIVE);
    assert_int_equal(key_by(&k, new_rsa.selector)->status, STORE_KEY_PENDING);

    /* the new RSA key appears: it signs, the old RSA key enters its grace */
    publish_key(f, &d, &new_rsa);
    check_at(f, &d, t0 + 200, false, &res);
    list_keys(f, &d, &k);
    assert_int_equal(key_by(&k, new_rsa.selector)->status, STORE_KEY_ACTIVE);
    assert_int_equal(key_by(&k, old_rsa)->status, STORE_KEY_GRACE);
    assert_int_equal(key_by(&k, old_rsa)->retired_at, t0 + 200 + f->env.dkim_grace);
    assert_int_equal(key_by(&k, old_ed)->status, STORE_KEY_ACTIVE);
    assert_int_equal(key_by(&k, new_ed.selector)->status, STORE_KEY_PENDING);

    publish_key(f, &d, &new_ed);
    check_at(f, &d, t0 + 400, false, &res);
    list_keys(f, &d, &k);
    assert_int_equal(key_by(&k, old_ed)->status, STORE_KEY_GRACE);

    /* the grace ends: retired, listed as safe to remove */
    check_at(f, &d, t0 + 400 + f->env.dkim_grace + 1, false, &res);
    list_keys(f, &d, &k);
    assert_int_equal(key_by(&k, old_rsa)->status, STORE_KEY_RETIRED);
    assert_int_equal(key_by(&k, old_ed)->status, STORE_KEY_RETIRED);
    assert_int_equal(key_by(&k, new_rsa.selector)->status, STORE_KEY_ACTIVE);
}

static void records_missing_then_failed(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    struct identity_check res;
    struct events ev;
    add_ok(f, f->acct_a, "gone.example.test", &d);
    publish_token(f, &d);
    int64_t t0 = now_s();
    check_at(f, &d, t0, true, &res);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    list_events(f, f->acct_a, &ev);
    assert_int_equal(ev.n, 1);
    assert_non_null(strstr(ev.text[0], "\"eventType\":\"IdentityStatus\""));
    assert_non_null(strstr(ev.text[0], "\"status\":\"verified\""));

    reset_zone(f);
    check_at(f, &d, t0 + 86400, false, &res);
    assert_int_equal(d.status, STORE_ID_VERIFIED);      /* within the grace */
    assert_int_equal(d.missing_since, t0 + 86400);
    assert_true(d.next_check_at <= t0 + 86400 + IDENTITY_POLL_MAX_S);
    list_events(f, f->acct_a, &ev);
    assert_int_equal(ev.n, 2);
    assert_non_null(strstr(ev.text[1], "\"status\":\"records_missing\""));

    /* still gone after the grace: failed, with an event; the MX stops taking its mail */
    check_at(f, &d, t0 + 86400 + f->env.missing_grace, false, &res);
    assert_int_equal(d.status, STORE_ID_FAILED);
    list_events(f, f->acct_a, &ev);
    assert_int_equal(ev.n, 3);
    assert_non_null(strstr(ev.text[2], "\"status\":\"failed\""));
    assert_non_null(strstr(ev.text[2], "\"previousStatus\":\"verified\""));
    struct store_domain s;
    assert_int_equal(store_domain_find_verified(f->st, "gone.example.test", &s), STORE_NOTFOUND);

    /* back again: verified, flag cleared */
    publish_token(f, &d);
    check_at(f, &d, t0 + 86400 + f->env.missing_grace + 60, true, &res);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    assert_int_equal(d.missing_since, 0);
}

static int count_due(const struct store_domain *d, void *arg)
{
    (void)d;
    (*(size_t *)arg)++;
    return 0;
}

static void schedule_and_window(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    struct identity_check res;
    add_ok(f, f->acct_a, "sched.example.test", &d);
    int64_t t0 = d.created_at;
    /* background checks of a pending domain: pending stays pending, backoff doubles */
    check_at(f, &d, t0 + 60, false, &res);
    assert_int_equal(d.status, STORE_ID_PENDING);
    assert_int_equal(d.next_check_at, t0 + 60 + 60);
    check_at(f, &d, t0 + 120, false, &res);
    assert_int_equal(d.next_check_at, t0 + 120 + 120);
    check_at(f, &d, t0 + 240, false, &res);
    assert_int_equal(d.next_check_at, t0 + 240 + 240);
    /* capped */
    for (int i = 0; i < 10; i++)
        check_at(f, &d, t0 + 1000 + i, false, &res);
    assert_int_equal(d.next_check_at, t0 + 1009 + IDENTITY_POLL_MAX_S);
    /* the window ends: failed, no more polling */
    check_at(f, &d, t0 + f->env.verify_window, false, &res);
    assert_int_equal(d.status, STORE_ID_FAILED);
    assert_int_equal(d.next_check_at, 0);
    size_t due = 0;
    assert_int_equal(store_domain_due(f->st, t0 + 10 * f->env.verify_window, 10, count_due, &due),
                     STORE_OK);
    assert_int_equal(due, 0);   /* the failed domain is not polled any more */
    /* timeouts leave the status alone and poll again soon */
    add_ok(f, f->acct_a, "slow.example.test", &d);
    check_at(f, &d, d.created_at + 60, false, &res);
    assert_true(res.tempfail);
    assert_int_equal(d.status, STORE_ID_PENDING);
    assert_int_equal(d.checked_at, 0);
}

static void mail_from_domain(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    struct identity_check res;
    struct keys k;
    char err[512];
    add_ok(f, f->acct_a, "mf.example.test", &d);
    int64_t t0 = now_s();
    assert_int_equal(identity_domain_set_mail_from(f->st, &f->env, &d, "bounce.other.test",
                                                   STORE_MF_USE_DEFAULT, t0, err, sizeof err),
                     IDENTITY_BADNAME);
    assert_non_null(strstr(err, "subdomain of mf.example.test"));
    assert_int_equal(identity_domain_set_mail_from(f->st, &f->env, &d, "mf.example.test",
                                                   STORE_MF_USE_DEFAULT, t0, err, sizeof err),
                     IDENTITY_BADNAME);
    assert_int_equal(identity_domain_set_mail_from(f->st, &f->env, &d, "Bounce.MF.example.test",
                                                   STORE_MF_REJECT, t0, err, sizeof err),
                     STORE_OK);
    assert_string_equal(d.mail_from_domain, "bounce.mf.example.test");
    assert_int_equal(d.mail_from_status, STORE_ID_PENDING);
    assert_int_equal(d.mail_from_behavior, STORE_MF_REJECT);

    publish_token(f, &d);
    list_keys(f, &d, &k);
    publish_key(f, &d, &k.v[0]);
    publish_key(f, &d, &k.v[1]);
    check_at(f, &d, t0 + 60, false, &res);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    assert_int_equal(d.mail_from_status, STORE_ID_PENDING);   /* background: still pending */
    assert_int_equal(d.next_check_at, t0 + 60 + 60);          /* and polled */

    publish_mx(f, "bounce.mf.example.test", "mx.sesame.test");
    publish(f, "bounce.mf.example.test", "v=spf1 ip4:192.0.2.25 -all");
    check_at(f, &d, t0 + 120, false, &res);
    assert_int_equal(d.mail_from_status, STORE_ID_VERIFIED);
    struct events ev;
    list_events(f, f->acct_a, &ev);
    bool seen = false;
    for (size_t i = 0; i < ev.n; i++)
        seen |= strstr(ev.text[i], "\"type\":\"mail_from\"") &&
                strstr(ev.text[i], "\"status\":\"verified\"");
    assert_true(seen);

    /* the MX goes elsewhere: failed (it had worked), the domain itself stays verified */
    reset_zone(f);
    publish_token(f, &d);
    publish_key(f, &d, &k.v[0]);
    publish_key(f, &d, &k.v[1]);
    publish_mx(f, "bounce.mf.example.test", "mx.elsewhere.test");
    publish(f, "bounce.mf.example.test", "v=spf1 ip4:192.0.2.25 -all");
    check_at(f, &d, t0 + 86400, false, &res);
    assert_int_equal(d.status, STORE_ID_VERIFIED);
    assert_int_equal(d.mail_from_status, STORE_ID_FAILED);

    /* removing it */
    assert_int_equal(identity_domain_set_mail_from(f->st, &f->env, &d, "", STORE_MF_USE_DEFAULT,
                                                   t0, err, sizeof err), STORE_OK);
    assert_string_equal(d.mail_from_domain, "");
}

static json_t *record_of(json_t *j, const char *purpose)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "records"), i, r)
        if (strcmp(json_string_value(json_object_get(r, "purpose")), purpose) == 0)
            return r;
    return NULL;
}

static void json_full_and_delete(void **state)
{
    struct fixture *f = *state;
    struct store_domain d;
    struct identity_check res;
    struct keys k;
    char err[512];
    add_ok(f, f->acct_a, "json.example.test", &d);
    json_t *j = identity_domain_json(f->st, &f->env, &d);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
    assert_true(json_is_null(json_object_get(j, "mail_from")));
    assert_string_equal(json_string_value(json_object_get(j, "dmarc_report_address")),
                        "dmarc-reports@json.example.test");
    /* every record to publish: verification, 2 dkim, spf, dmarc, inbound mx */
    assert_int_equal(json_array_size(json_object_get(j, "records")), 6);
    json_t *v = record_of(j, "verification");
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "unchecked");
    assert_non_null(record_of(j, "spf"));
    assert_non_null(record_of(j, "dmarc"));
    assert_non_null(record_of(j, "inbound_mx"));
    assert_int_equal(json_array_size(json_object_get(j, "dkim")), 2);
    json_decref(j);

    /* after a check: the status of each record as last seen */
    publish_token(f, &d);
    check_at(f, &d, now_s(), true, &res);
    j = identity_domain_json(f->st, &f->env, &d);
    assert_string_equal(json_string_value(json_object_get(record_of(j, "verification"),
                                                          "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(record_of(j, "dkim"), "status")),
                        "missing");
    assert_string_equal(json_string_value(json_object_get(record_of(j, "spf"), "status")),
                        "missing");
    json_decref(j);

    /* with a MAIL FROM domain: its MX and SPF, and the reports go there */
    assert_int_equal(identity_domain_set_mail_from(f->st, &f->env, &d, "bounce.json.example.test",
                                                   STORE_MF_USE_DEFAULT, now_s(), err,
                                                   sizeof err), STORE_OK);
    j = identity_domain_json(f->st, &f->env, &d);
    assert_int_equal(json_array_size(json_object_get(j, "records")), 8);
    assert_non_null(record_of(j, "mail_from_mx"));
    assert_non_null(record_of(j, "mail_from_spf"));
    assert_string_equal(json_string_value(json_object_get(j, "dmarc_report_address")),
                        "dmarc-reports@bounce.json.example.test");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "mail_from"),
                                                          "behavior_on_mx_failure")),
                        "use_default");
    json_decref(j);

    /* delete: the row, the key rows and the key files */
    list_keys(f, &d, &k);
    assert_int_equal(access(k.v[0].key_path, F_OK), 0);
    assert_int_equal(identity_domain_delete(f->st, &d, err, sizeof err), STORE_OK);
    assert_int_not_equal(access(k.v[0].key_path, F_OK), 0);
    assert_int_not_equal(access(k.v[1].key_path, F_OK), 0);
    struct store_domain s;
    assert_int_equal(store_domain_get(f->st, f->acct_a, "json.example.test", &s),
                     STORE_NOTFOUND);
    struct keys none;
    list_keys(f, &d, &none);
    assert_int_equal(none.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize_table),
        cmocka_unit_test_setup_teardown(add_twice_same_token, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_published, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_split_strings_and_spaces, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_wrong_token, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_nxdomain_nodata, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_timeout_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_unknown_and_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(two_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(dkim_active_only_when_visible, setup, teardown),
        cmocka_unit_test_setup_teardown(rotation_switches_after_publication, setup, teardown),
        cmocka_unit_test_setup_teardown(many_rotations, setup, teardown),
        cmocka_unit_test_setup_teardown(records_missing_then_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(schedule_and_window, setup, teardown),
        cmocka_unit_test_setup_teardown(mail_from_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(json_full_and_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
