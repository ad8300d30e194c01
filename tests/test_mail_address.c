/* RFC 5322 address lists as they appear in From: display names, comments,
 * quoted strings, groups, routes, obsolete forms, and garbage that must be
 * refused with a reason (never read past the value). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth/authres.h"
#include "mail/mail_address.h"

static void expect_list(const char *value, size_t n, const char *const *domains,
                        const char *first_local)
{
    struct mail_address_list l;
    char err[128] = "";
    if (mail_address_list_parse(value, strlen(value), &l, err, sizeof err) != 0)
        fail_msg("'%s' rejected: %s", value, err);
    if (l.count != n)
        fail_msg("'%s': %zu mailboxes, want %zu", value, l.count, n);
    for (size_t i = 0; i < n && i < MAIL_MAX_MAILBOXES; i++)
        assert_string_equal(l.box[i].domain, domains[i]);
    if (first_local)
        assert_string_equal(l.box[0].local, first_local);
}

static void good_lists(void **state)
{
    static const char *const one[] = { "example.com" };
    expect_list(" alice@example.com", 1, one, "alice");
    expect_list(" Alice Smith <alice@Example.COM>", 1, one, "alice");
    expect_list(" \"Smith, Alice\" <alice@example.com>", 1, one, "alice");
    expect_list(" \"Alice <evil@bad.test>\" <alice@example.com>", 1, one, "alice");
    expect_list(" alice@example.com (Alice (the real one))", 1, one, "alice");
    expect_list(" (comment) Alice\r\n <alice@example.com>", 1, one, "alice");
    expect_list(" \"a b\\\"c\"@example.com", 1, one, "a b\"c");
    expect_list(" <@route.test,@r2.test:alice@example.com>", 1, one, "alice");
    expect_list(" alice . smith @ example . com", 1, one, "alice.smith");
    expect_list(" alice@example.com.", 1, one, "alice");
    static const char *const two[] = { "example.com", "other.test" };
    expect_list(" a@example.com, B <b@other.test>", 2, two, "a");
    expect_list(" a@example.com,, b@other.test,", 2, two, "a");
    expect_list(" Team: a@example.com, b@other.test;", 2, two, "a");
    expect_list(" undisclosed-recipients:;", 0, NULL, NULL);
    static const char *const lit[] = { "[192.0.2.1]" };
    expect_list(" user@[192.0.2.1]", 1, lit, "user");
    static const char *const utf8[] = { "ex\xc3\xa4mple.com" };
    expect_list(" J\xc3\xb6rg <j\xc3\xb6rg@ex\xc3\xa4mple.com>", 1, utf8, "j\xc3\xb6rg");
}

static void bad_lists(void **state)
{
    static const char *bad[] = {
        " alice", " alice@", " <alice@example.com", " \"unterminated@example.com",
        " alice@example.com (open comment", " a@example.com b@example.com",
        " Alice <alice>", " @example.com", " a@b@c.test",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mail_address_list l;
        char err[128] = "";
        if (mail_address_list_parse(bad[i], strlen(bad[i]), &l, err, sizeof err) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
    /* embedded NUL */
    struct mail_address_list l;
    char err[128];
    assert_int_equal(mail_address_list_parse("a@b.test\0x", 10, &l, err, sizeof err), -1);
    /* bounded: no NUL terminator needed */
    char noterm[8];
    memcpy(noterm, "a@b.tes", 7);
    noterm[7] = 't';
    assert_int_equal(mail_address_list_parse(noterm, 8, &l, err, sizeof err), 0);
    assert_string_equal(l.box[0].domain, "b.test");
}

static void authres_written_and_matched(void **state)
{
    struct spf_response spf = { .result = SPF_PASS };
    strcpy(spf.mechanism, "ip4:192.0.2.0/24");
    struct dkim_signature_result sig = { .result = DKIM_FAIL };
    strcpy(sig.domain, "example.com");
    strcpy(sig.selector, "s1");
    strcpy(sig.algorithm, "rsa-sha256");
    strcpy(sig.b_prefix, "abcd1234");
    strcpy(sig.reason, "body hash did not verify (changed (in transit))");
    struct dkim_results dk = { 1, &sig };
    struct dmarc_outcome dm = { .result = DMARC_PASS, .policy = DMARC_P_REJECT,
                                .disposition = DMARC_P_NONE };
    strcpy(dm.from_domain, "example.com");
    struct authres_input in = { "mx.sesame.test", &spf, "bounce@example.com", "mail.test",
                                &dk, &dm, NULL };
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(authres_format(&in, false, &b), 0);
    assert_string_equal(buf_cstr(&b),
        "Authentication-Results: mx.sesame.test; spf=pass (ip4:192.0.2.0/24) "
        "smtp.mailfrom=bounce@example.com; dkim=fail (body hash did not verify \\(changed "
        "\\(in transit\\)\\)) header.d=example.com header.s=s1 header.a=rsa-sha256 "
        "header.b=abcd1234; dmarc=pass (p=reject dis=none) header.from=example.com "
        "policy.dmarc=reject");
    assert_int_equal(authres_format(&in, true, &b), 0);
    assert_non_null(strstr(buf_cstr(&b), "mx.sesame.test;\r\n\tspf=pass"));
    struct dkim_results none = { 0, NULL };
    in.dkim = &none;
    in.dmarc = NULL;
    in.mailfrom = "";
    assert_int_equal(authres_format(&in, false, &b), 0);
    assert_non_null(strstr(buf_cstr(&b), "smtp.helo=mail.test; dkim=none"));
    buf_free(&b);

    assert_true(authres_claims_id(sv_cstr(" mx.sesame.test; spf=pass"), "mx.sesame.test"));
    assert_true(authres_claims_id(sv_cstr(" (forged) MX.Sesame.Test 1; dkim=pass"),
                                  "mx.sesame.test"));
    assert_true(authres_claims_id(sv_cstr("\r\n\t\"mx.sesame.test\"; none"), "mx.sesame.test"));
    assert_false(authres_claims_id(sv_cstr(" mx.google.com; spf=pass"), "mx.sesame.test"));
    assert_false(authres_claims_id(sv_cstr(" mx.sesame.test.evil; spf=pass"), "mx.sesame.test"));
    assert_false(authres_claims_id(sv_cstr(""), "mx.sesame.test"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_lists),
        cmocka_unit_test(bad_lists),
        cmocka_unit_test(authres_written_and_matched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
