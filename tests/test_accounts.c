/* Accounts on a real store in a temporary directory: creation and its
 * defaults, secrets' shapes, verification of API keys and SMTP passwords
 * (right, wrong, malformed, unknown), the cache of verified secrets, and who
 * may send as which address. Hashes use libsodium's MIN cost so the tests
 * run fast, except where the cache's speed-up is measured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/accounts.h"

struct fx {
    char tmp[64];
    struct store *st;
    struct cred_cache *cache;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->tmp, sizeof f->tmp, "/tmp/sesame-test-accounts-XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    char err[256];
    f->st = store_open("sqlite", f->tmp, err, sizeof err);
    if (!f->st)
        fail_msg("store_open: %s", err);
    f->cache = cred_cache_new();
    assert_non_null(f->cache);
    account_set_hash_cost(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    cred_cache_free(f->cache);
    store_close(f->st);
    nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void create(struct fx *f, const char *name, bool production, struct store_account *a,
                   struct account_secrets *s)
{
    char err[256] = "";
    if (account_create(f->st, name, production, 0, 0, a, s, err, sizeof err) != STORE_OK)
        fail_msg("account_create %s: %s", name, err);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool b64url(const char *s)
{
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *s))
            return false;
    return true;
}

static void names(void **state)
{
    (void)state;
    assert_true(account_name_valid("a"));
    assert_true(account_name_valid("Acme.Corp_2-prod"));
    char n64[65], n65[66];
    memset(n64, 'x', 64);
    n64[64] = '\0';
    memset(n65, 'x', 65);
    n65[65] = '\0';
    assert_true(account_name_valid(n64));
    assert_false(account_name_valid(n65));
    assert_false(account_name_valid(""));
    assert_false(account_name_valid(NULL));
    assert_false(account_name_valid("a b"));
    assert_false(account_name_valid("a/b"));
    assert_false(account_name_valid("caf\xc3\xa9"));
    assert_false(account_name_valid("a@b"));
    assert_false(account_name_valid("a\n"));
}

static void create_and_defaults(void **state)
{
    struct fx *f = *state;
    struct store_account a, p;
    struct account_secrets s, s2;
    create(f, "acme", false, &a, &s);
    assert_true(a.id > 0);
    assert_string_equal(a.name, "acme");
    assert_true(a.sandbox);
    assert_int_equal(a.max_24h, ACCOUNT_SANDBOX_MAX_24H);
    assert_int_equal(a.max_rate, ACCOUNT_SANDBOX_MAX_RATE);
    /* shapes: sk_<16 hex>_<43 base64url>, smtp_<16 hex>, a 43-character password */
    assert_int_equal(strlen(s.api_key), 3 + 16 + 1 + 43);
    assert_memory_equal(s.api_key, "sk_", 3);
    assert_int_equal(s.api_key[19], '_');
    assert_int_equal(strspn(s.api_key + 3, "0123456789abcdef"), 16);
    assert_true(b64url(s.api_key + 20));
    assert_int_equal(strlen(s.smtp_username), 5 + 16);
    assert_memory_equal(s.smtp_username, "smtp_", 5);
    assert_int_equal(strspn(s.smtp_username + 5, "0123456789abcdef"), 16);
    assert_true(strlen(s.smtp_password) >= 32);
    assert_true(b64url(s.smtp_password));

    create(f, "big", true, &p, &s2);
    assert_false(p.sandbox);
    assert_int_equal(p.max_24h, ACCOUNT_PRODUCTION_MAX_24H);
    assert_int_equal(p.max_rate, ACCOUNT_PRODUCTION_MAX_RATE);
    assert_string_not_equal(s.api_key, s2.api_key);
    assert_string_not_equal(s.smtp_username, s2.smtp_username);
    assert_string_not_equal(s.smtp_password, s2.smtp_password);

    char err[256] = "";
    struct store_account c;
    assert_int_equal(account_create(f->st, "custom", false, 10, 2, &c, &s2, err, sizeof err),
                     STORE_OK);
    assert_int_equal(c.max_24h, 10);
    assert_int_equal(c.max_rate, 2);
    assert_true(c.sandbox);
    struct store_account back;
    assert_int_equal(store_account_get_by_name(f->st, "custom", &back), STORE_OK);
    assert_int_equal(back.max_24h, 10);

    /* no secret starts with '-' or '_' (a leading '-' reads as an option
     * to swaks, curl, getopt): 2 of 64 would without the redraw */
    for (int i = 0; i < 60; i++) {
        char name[32];
        snprintf(name, sizeof name, "many%d", i);
        assert_int_equal(account_create(f->st, name, false, 0, 0, &c, &s2, err, sizeof err),
                         STORE_OK);
        /* sk_ID_SECRET: the id is hex, so the secret follows the second '_' */
        const char *pw = s2.smtp_password;
        const char *key = strchr(strchr(s2.api_key, '_') + 1, '_') + 1;
        if (pw[0] == '-' || pw[0] == '_' || key[0] == '-' || key[0] == '_')
            fail_msg("a secret starts with '-' or '_'");
    }

    /* taken names, in any case, and bad names */
    err[0] = '\0';
    assert_int_equal(account_create(f->st, "acme", true, 0, 0, &c, &s2, err, sizeof err),
                     STORE_EXISTS);
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(account_create(f->st, "ACME", true, 0, 0, &c, &s2, err, sizeof err),
                     STORE_EXISTS);
    err[0] = '\0';
    assert_int_equal(account_create(f->st, "no spaces", false, 0, 0, &c, &s2, err, sizeof err),
                     STORE_ERROR);
    assert_true(err[0] != '\0');

    /* the hashes, not the secrets, are stored */
    int64_t acct;
    char hash[STORE_HASH_MAX + 1], id[17];
    memcpy(id, s.api_key + 3, 16);
    id[16] = '\0';
    assert_int_equal(store_credential_get(f->st, STORE_CRED_API_KEY, id, &acct, hash,
                                          sizeof hash), STORE_OK);
    assert_int_equal(acct, a.id);
    assert_memory_equal(hash, "$argon2id$", 10);
    assert_null(strstr(hash, s.api_key + 20));
    assert_int_equal(store_credential_get(f->st, STORE_CRED_SMTP, s.smtp_username, &acct, hash,
                                          sizeof hash), STORE_OK);
    assert_int_equal(acct, a.id);
    assert_memory_equal(hash, "$argon2id$", 10);
}

static void verify_right_and_wrong(void **state)
{
    struct fx *f = *state;
    struct store_account a, b, got;
    struct account_secrets sa, sb;
    create(f, "a", false, &a, &sa);
    create(f, "b", true, &b, &sb);

    for (int pass = 0; pass < 2; pass++) {       /* without and with the cache */
        struct cred_cache *c = pass ? f->cache : NULL;
        memset(&got, 0, sizeof got);
        assert_int_equal(account_verify_api_key(f->st, c, sa.api_key, &got), STORE_OK);
        assert_int_equal(got.id, a.id);
        assert_string_equal(got.name, "a");
        assert_int_equal(account_verify_api_key(f->st, c, sb.api_key, &got), STORE_OK);
        assert_int_equal(got.id, b.id);
        assert_false(got.sandbox);
        assert_int_equal(account_verify_smtp(f->st, c, sa.smtp_username, sa.smtp_password, &got),
                         STORE_OK);
        assert_int_equal(got.id, a.id);

        /* a's id with b's secret, the secret changed by one character */
        char mixed[ACCOUNT_SECRET_MAX];
        snprintf(mixed, sizeof mixed, "%.20s%.100s", sa.api_key, sb.api_key + 20);
        assert_int_equal(account_verify_api_key(f->st, c, mixed, &got), STORE_NOTFOUND);
        snprintf(mixed, sizeof mixed, "%s", sa.api_key);
        mixed[40] = mixed[40] == 'A' ? 'B' : 'A';
        assert_int_equal(account_verify_api_key(f->st, c, mixed, &got), STORE_NOTFOUND);
        assert_int_equal(account_verify_smtp(f->st, c, sa.smtp_username, sb.smtp_password, &got),
                         STORE_NOTFOUND);
        assert_int_equal(account_verify_smtp(f->st, c, sb.smtp_username, sa.smtp_password, &got),
                         STORE_NOTFOUND);
        /* the API key is not an SMTP password, nor the reverse */
        assert_int_equal(account_verify_smtp(f->st, c, sa.smtp_username, sa.api_key, &got),
                         STORE_NOTFOUND);
        /* unknown ids of the right shape */
        snprintf(mixed, sizeof mixed, "sk_0000000000000000_%.80s", sa.api_key + 20);
        assert_int_equal(account_verify_api_key(f->st, c, mixed, &got), STORE_NOTFOUND);
        assert_int_equal(account_verify_smtp(f->st, c, "smtp_0000000000000000", sa.smtp_password,
                                             &got), STORE_NOTFOUND);
    }
}

static void malformed(void **state)
{
    struct fx *f = *state;
    struct store_account a, got;
    struct account_secrets s;
    create(f, "a", false, &a, &s);
    char k[512];
    const char *bad[] = {
        "", "sk_", "sk", "sk__", "nounderscore", "Bearer", "sk_0123456789abcdef",
        "\x01\x02\x03", "\xff\xfe\xfd\xfc", "sk_\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(account_verify_api_key(f->st, f->cache, bad[i], &got), STORE_NOTFOUND);
    assert_int_equal(account_verify_api_key(f->st, f->cache, NULL, &got), STORE_NOTFOUND);
    /* the right key with a suffix, a prefix, a space, upper-case id, wrong separator */
    snprintf(k, sizeof k, "%sx", s.api_key);
    assert_int_equal(account_verify_api_key(f->st, f->cache, k, &got), STORE_NOTFOUND);
    snprintf(k, sizeof k, " %s", s.api_key);
    assert_int_equal(account_verify_api_key(f->st, f->cache, k, &got), STORE_NOTFOUND);
    snprintf(k, sizeof k, "%s", s.api_key);
    k[19] = '-';
    assert_int_equal(account_verify_api_key(f->st, f->cache, k, &got), STORE_NOTFOUND);
    snprintf(k, sizeof k, "%s", s.api_key);
    for (int i = 3; i < 19; i++)
        if (k[i] >= 'a' && k[i] <= 'f')
            k[i] = (char)(k[i] - 'a' + 'A');
    if (strcmp(k, s.api_key) != 0)
        assert_int_equal(account_verify_api_key(f->st, f->cache, k, &got), STORE_NOTFOUND);
    snprintf(k, sizeof k, "%s", s.api_key);
    k[30] = '\x80';
    assert_int_equal(account_verify_api_key(f->st, f->cache, k, &got), STORE_NOTFOUND);
    /* very long */
    memset(k, 'a', sizeof k - 1);
    k[sizeof k - 1] = '\0';
    memcpy(k, s.api_key, strlen(s.api_key));
    assert_int_equal(account_verify_api_key(f->st, f->cache, k, &got), STORE_NOTFOUND);
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, k, &got),
                     STORE_NOTFOUND);
    assert_int_equal(account_verify_smtp(f->st, f->cache, k, s.smtp_password, &got),
                     STORE_NOTFOUND);
    /* SMTP names and passwords */
    assert_int_equal(account_verify_smtp(f->st, f->cache, "", s.smtp_password, &got),
                     STORE_NOTFOUND);
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, "", &got),
                     STORE_NOTFOUND);
    assert_int_equal(account_verify_smtp(f->st, f->cache, NULL, NULL, &got), STORE_NOTFOUND);
    assert_int_equal(account_verify_smtp(f->st, f->cache, "smtp_", s.smtp_password, &got),
                     STORE_NOTFOUND);
    assert_int_equal(account_verify_smtp(f->st, f->cache, "a", s.smtp_password, &got),
                     STORE_NOTFOUND);
    snprintf(k, sizeof k, "%s", s.smtp_username);
    k[0] = 'S';
    assert_int_equal(account_verify_smtp(f->st, f->cache, k, s.smtp_password, &got),
                     STORE_NOTFOUND);
    snprintf(k, sizeof k, "%s\xff", s.smtp_password);
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, k, &got),
                     STORE_NOTFOUND);
    /* still fine afterwards */
    assert_int_equal(account_verify_api_key(f->st, f->cache, s.api_key, &got), STORE_OK);
    assert_int_equal(got.id, a.id);
}

/* The cache: a hit skips argon2id (measured with a real cost), and a wrong
 * secret after a right one is still refused. */
static void cache(void **state)
{
    struct fx *f = *state;
    account_set_hash_cost(2, 16u * 1024 * 1024);
    struct store_account a, got;
    struct account_secrets s;
    create(f, "cached", false, &a, &s);

    double t0 = now_s();
    assert_int_equal(account_verify_api_key(f->st, f->cache, s.api_key, &got), STORE_OK);
    double miss = now_s() - t0;
    t0 = now_s();
    for (int i = 0; i < 10; i++) {
        memset(&got, 0, sizeof got);
        assert_int_equal(account_verify_api_key(f->st, f->cache, s.api_key, &got), STORE_OK);
        assert_int_equal(got.id, a.id);
    }
    double hit = (now_s() - t0) / 10;
    print_message("first verification %.6f s, cache hit %.6f s\n", miss, hit);
    if (!(hit * 10 < miss))
        fail_msg("a cache hit took %.6f s, the first verification %.6f s", hit, miss);

    char wrong[ACCOUNT_SECRET_MAX];
    snprintf(wrong, sizeof wrong, "%s", s.api_key);
    wrong[62] = wrong[62] == 'x' ? 'y' : 'x';
    assert_int_equal(account_verify_api_key(f->st, f->cache, wrong, &got), STORE_NOTFOUND);
    assert_int_equal(account_verify_api_key(f->st, f->cache, wrong, &got), STORE_NOTFOUND);
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, s.smtp_password,
                                         &got), STORE_OK);
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, s.smtp_password,
                                         &got), STORE_OK);
    snprintf(wrong, sizeof wrong, "%s", s.smtp_password);
    wrong[0] = wrong[0] == 'x' ? 'y' : 'x';
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, wrong, &got),
                     STORE_NOTFOUND);
    /* a password that is a prefix of the right one */
    snprintf(wrong, sizeof wrong, "%.*s", (int)strlen(s.smtp_password) - 1, s.smtp_password);
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, wrong, &got),
                     STORE_NOTFOUND);

    /* the unknown-id path costs an argon2id too (no cheap "no such id"):
     * the slowest of three unknown-id answers against the fastest of three
     * wrong-secret answers for a known id (scheduler noise only slows) */
    char unknown[ACCOUNT_SECRET_MAX];
    snprintf(unknown, sizeof unknown, "sk_ffffffffffffffff_%.80s", s.api_key + 20);
    snprintf(wrong, sizeof wrong, "%s", s.api_key);
    wrong[62] = wrong[62] == 'x' ? 'y' : 'x';
    (void)account_verify_api_key(f->st, NULL, unknown, &got);   /* makes the dummy hash */
    double unknown_t = 0, known_t = 1e9;
    for (int i = 0; i < 3; i++) {
        t0 = now_s();
        assert_int_equal(account_verify_api_key(f->st, NULL, unknown, &got), STORE_NOTFOUND);
        double u = now_s() - t0;
        t0 = now_s();
        assert_int_equal(account_verify_api_key(f->st, NULL, wrong, &got), STORE_NOTFOUND);
        double k = now_s() - t0;
        unknown_t = u > unknown_t ? u : unknown_t;
        known_t = k < known_t ? k : known_t;
    }
    print_message("unknown id %.6f s, known id with a wrong secret %.6f s\n", unknown_t, known_t);
    if (!(unknown_t > known_t / 2))
        fail_msg("an unknown id took %.6f s, a known one %.6f s", unknown_t, known_t);
}

/* Wrong secrets never enter the cache, and many cached accounts all verify. */
static void cache_many(void **state)
{
    struct fx *f = *state;
    struct store_account a, got;
    struct account_secrets s;
    create(f, "many", false, &a, &s);
    /* many distinct wrong-but-well-formed SMTP passwords never get in; the
     * right one still works after thousands of other verifications */
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, s.smtp_password,
                                         &got), STORE_OK);
    char pw[64];
    for (int i = 0; i < 300; i++) {
        snprintf(pw, sizeof pw, "wrong-%d", i);
        assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, pw, &got),
                         STORE_NOTFOUND);
    }
    assert_int_equal(account_verify_smtp(f->st, f->cache, s.smtp_username, s.smtp_password,
                                         &got), STORE_OK);
    /* many accounts, each verified once: all verify again */
    struct account_secrets many[40];
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        create(f, name, false, NULL, &many[i]);
        assert_int_equal(account_verify_api_key(f->st, f->cache, many[i].api_key, &got),
                         STORE_OK);
    }
    for (int i = 0; i < 40; i++)
        assert_int_equal(account_verify_api_key(f->st, f->cache, many[i].api_key, &got),
                         STORE_OK);
}

static void may_send_as(void **state)
{
    struct fx *f = *state;
    struct store_account a, b;
    struct account_secrets s;
    create(f, "a", false, &a, &s);
    create(f, "b", false, &b, &s);
    struct store_domain d = { .account_id = a.id, .status = STORE_ID_VERIFIED };
    snprintf(d.domain, sizeof d.domain, "example.test");
    assert_int_equal(store_domain_insert(f->st, &d), STORE_OK);
    struct store_domain pend = { .account_id = a.id, .status = STORE_ID_PENDING };
    snprintf(pend.domain, sizeof pend.domain, "pending.test");
    assert_int_equal(store_domain_insert(f->st, &pend), STORE_OK);
    struct store_domain other = { .account_id = b.id, .status = STORE_ID_VERIFIED };
    snprintf(other.domain, sizeof other.domain, "other.test");
    assert_int_equal(store_domain_insert(f->st, &other), STORE_OK);
    struct store_sender one = { .account_id = a.id, .status = STORE_ID_VERIFIED };
    snprintf(one.address, sizeof one.address, "me@gmail.test");
    snprintf(one.token, sizeof one.token, "t1");
    assert_int_equal(store_sender_insert(f->st, &one), STORE_OK);
    struct store_sender unconfirmed = { .account_id = a.id, .status = STORE_ID_PENDING };
    snprintf(unconfirmed.address, sizeof unconfirmed.address, "you@gmail.test");
    snprintf(unconfirmed.token, sizeof unconfirmed.token, "t2");
    assert_int_equal(store_sender_insert(f->st, &unconfirmed), STORE_OK);
    struct store_sender expired = { .account_id = a.id, .status = STORE_ID_EXPIRED };
    snprintf(expired.address, sizeof expired.address, "old@gmail.test");
    snprintf(expired.token, sizeof expired.token, "t3");
    assert_int_equal(store_sender_insert(f->st, &expired), STORE_OK);

    static const struct { const char *addr; bool ok; } cases[] = {
        { "anyone@example.test", true },          /* a domain covers every local part */
        { "Some.Body+tag@EXAMPLE.Test", true },   /* domain case does not matter */
        { "\"odd@local\"@example.test", true },
        { "x@sub.example.test", false },          /* not subdomains */
        { "x@example.test.evil", false },
        { "x@notexample.test", false },
        { "x@pending.test", false },              /* not verified yet */
        { "x@other.test", false },                /* b's domain */
        { "me@gmail.test", true },                /* a verified single address */
        { "me@GMAIL.TEST", true },
        { "you@gmail.test", false },              /* pending */
        { "old@gmail.test", false },              /* expired */
        { "other@gmail.test", false },            /* only that address */
        { "example.test", false },
        { "@example.test", false },
        { "x@", false },
        { "", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool ok = !cases[i].ok;
        assert_int_equal(account_may_send_as(f->st, a.id, cases[i].addr, &ok), STORE_OK);
        if (ok != cases[i].ok)
            fail_msg("may_send_as(a, %s) = %d", cases[i].addr, ok);
    }
    bool ok = true;
    assert_int_equal(account_may_send_as(f->st, b.id, "x@example.test", &ok), STORE_OK);
    assert_false(ok);
    assert_int_equal(account_may_send_as(f->st, b.id, "me@gmail.test", &ok), STORE_OK);
    assert_false(ok);
    assert_int_equal(account_may_send_as(f->st, b.id, "x@other.test", &ok), STORE_OK);
    assert_true(ok);
    char longaddr[400];
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    memcpy(longaddr + sizeof longaddr - 14, "@example.test", 13);
    assert_int_equal(account_may_send_as(f->st, a.id, longaddr, &ok), STORE_OK);
    assert_false(ok);
    assert_int_equal(account_may_send_as(f->st, a.id, NULL, &ok), STORE_OK);
    assert_false(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test_setup_teardown(create_and_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_right_and_wrong, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(cache, setup, teardown),
        cmocka_unit_test_setup_teardown(cache_many, setup, teardown),
        cmocka_unit_test_setup_teardown(may_send_as, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
