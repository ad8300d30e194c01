/* SPF record parsing (RFC 7208 §4.6, §5, §6, §12): every mechanism with its
 * arguments and CIDR lengths, modifiers, and a table of syntax errors that
 * must be permerror before any evaluation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "auth/spf_internal.h"

static void parse_ok(const char *txt, struct spf_record *rec)
{
    char err[160] = "";
    if (spf_record_parse(txt, strlen(txt), rec, err, sizeof err) != 0)
        fail_msg("'%s' rejected: %s", txt, err);
}

static void version_detection(void **state)
{
    assert_true(spf_record_is_spf1("v=spf1", 6));
    assert_true(spf_record_is_spf1("v=spf1 -all", 11));
    assert_true(spf_record_is_spf1("V=SPF1 -all", 11));
    assert_false(spf_record_is_spf1("v=spf10 -all", 12));
    assert_false(spf_record_is_spf1("v=spf1-all", 10));
    assert_false(spf_record_is_spf1("spf2.0/pra -all", 15));
    assert_false(spf_record_is_spf1(" v=spf1", 7));
}

static void every_mechanism(void **state)
{
    struct spf_record r;
    parse_ok("v=spf1 +all -include:_spf.example.com ~a ?a:b.example.com/24//64 mx "
             "mx:mail.example.com//48 ptr ptr:example.com ip4:192.0.2.0/24 "
             "ip6:2001:db8::/32 exists:%{ir}.%{v}._spf.%{d} a/0  ", &r);
    assert_int_equal(r.nterms, 12);
    assert_int_equal(r.terms[0].mech, SPF_M_ALL);
    assert_int_equal(r.terms[0].qualifier, SPF_PASS);
    assert_int_equal(r.terms[1].mech, SPF_M_INCLUDE);
    assert_int_equal(r.terms[1].qualifier, SPF_FAIL);
    assert_true(sv_eq_ci_cstr(r.terms[1].domain_spec, "_spf.example.com"));
    assert_int_equal(r.terms[2].qualifier, SPF_SOFTFAIL);
    assert_int_equal(r.terms[2].domain_spec.len, 0);
    assert_int_equal(r.terms[3].qualifier, SPF_NEUTRAL);
    assert_true(sv_eq_ci_cstr(r.terms[3].domain_spec, "b.example.com"));
    assert_int_equal(r.terms[3].cidr4, 24);
    assert_int_equal(r.terms[3].cidr6, 64);
    assert_true(sv_eq_ci_cstr(r.terms[3].text, "a:b.example.com/24//64"));
    assert_int_equal(r.terms[4].mech, SPF_M_MX);
    assert_int_equal(r.terms[4].cidr4, 32);
    assert_int_equal(r.terms[4].cidr6, 128);
    assert_int_equal(r.terms[5].cidr4, 32);
    assert_int_equal(r.terms[5].cidr6, 48);
    assert_int_equal(r.terms[6].mech, SPF_M_PTR);
    assert_int_equal(r.terms[7].mech, SPF_M_PTR);
    assert_int_equal(r.terms[8].mech, SPF_M_IP4);
    assert_int_equal(r.terms[8].cidr4, 24);
    assert_memory_equal(r.terms[8].addr, "\xc0\x00\x02\x00", 4);
    assert_int_equal(r.terms[9].mech, SPF_M_IP6);
    assert_int_equal(r.terms[9].cidr6, 32);
    assert_int_equal(r.terms[10].mech, SPF_M_EXISTS);
    assert_int_equal(r.terms[11].cidr4, 0);
    assert_true(r.has_all);
    assert_false(r.has_redirect);
    spf_record_free(&r);
}

static void modifiers(void **state)
{
    struct spf_record r;
    parse_ok("v=spf1 redirect=_spf.example.com exp=explain._spf.%{d} foo=bar x.y-z_=%{l}", &r);
    assert_int_equal(r.nterms, 0);
    assert_true(r.has_redirect);
    assert_true(r.has_exp);
    assert_true(sv_eq_ci_cstr(r.redirect, "_spf.example.com"));
    assert_true(sv_eq_ci_cstr(r.exp, "explain._spf.%{d}"));
    spf_record_free(&r);
    parse_ok("v=spf1 MX -ALL Redirect=example.com", &r);
    assert_int_equal(r.nterms, 2);
    assert_true(r.has_all);
    spf_record_free(&r);
}

static void syntax_errors_are_permerror(void **state)
{
    static const char *bad[] = {
        "v=spf1 foo",                  /* unknown mechanism */
        "v=spf1 all:example.com",      /* all takes nothing */
        "v=spf1 all/24",
        "v=spf1 include",              /* include needs a domain */
        "v=spf1 include:",
        "v=spf1 exists",
        "v=spf1 a:",
        "v=spf1 a:/24",
        "v=spf1 a/33",                 /* CIDR out of range */
        "v=spf1 a//129",
        "v=spf1 a/024",                /* leading zero */
        "v=spf1 a/",
        "v=spf1 a//",
        "v=spf1 a:com",                /* no top label after a dot */
        "v=spf1 a:example.123",        /* numeric top label */
        "v=spf1 ip4",
        "v=spf1 ip4:",
        "v=spf1 ip4:192.0.2",
        "v=spf1 ip4:192.0.2.256",
        "v=spf1 ip4:192.0.2.01",
        "v=spf1 ip4:192.0.2.0/33",
        "v=spf1 ip4:192.0.2.0/",
        "v=spf1 ip4:192.0.2.0//64",
        "v=spf1 ip6:2001:db8::/129",
        "v=spf1 ip6:2001:db8:::1",
        "v=spf1 ip6:192.0.2.1",
        "v=spf1 redirect=a.example.com redirect=b.example.com",
        "v=spf1 exp=a.example.com exp=b.example.com",
        "v=spf1 redirect=",
        "v=spf1 exp=",
        "v=spf1 redirect=%{c}.example.com",
        "v=spf1 foo=%",                /* unknown modifier, bad macro-string */
        "v=spf1 -redirect=example.com",/* a qualifier makes it a mechanism */
        "v=spf1 1foo=bar",             /* modifier names start with a letter */
        "v=spf1 a:exa%mple.com",
        "v=spf1 -all\t",               /* only SP separates terms */
        "v=spf1 ip4:192.0.2.1 caf\xc3\xa9",
        "v=spf1 -all\x01",
        "not spf at all",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spf_record r;
        char err[160] = "";
        if (spf_record_parse(bad[i], strlen(bad[i]), &r, err, sizeof err) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void embedded_nul_and_huge_records(void **state)
{
    struct spf_record r;
    char err[160];
    static const char nul[] = "v=spf1 ip4:192.0.2.1\0 -all";
    assert_int_equal(spf_record_parse(nul, sizeof nul - 1, &r, err, sizeof err), -1);
    /* 64 KiB of terms: refused by length, never read past */
    size_t len = 65536;
    char *big = malloc(len);
    memcpy(big, "v=spf1", 6);
    for (size_t i = 6; i < len; i++)
        big[i] = (i % 2 == 0) ? ' ' : 'a';
    assert_int_equal(spf_record_parse(big, len, &r, err, sizeof err), -1);
    /* many terms under the length limit still parse (a, a, a ...) */
    size_t n = 6 + 2 * 200;
    assert_int_equal(spf_record_parse(big, n, &r, err, sizeof err), 0);
    assert_int_equal(r.nterms, 200);
    spf_record_free(&r);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_detection),
        cmocka_unit_test(every_mechanism),
        cmocka_unit_test(modifiers),
        cmocka_unit_test(syntax_errors_are_permerror),
        cmocka_unit_test(embedded_nul_and_huge_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
