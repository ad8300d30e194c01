/* SPF macro expansion and syntax (RFC 7208 §7): the RFC's own examples
 * (§7.4), URL escaping, exp-only letters, truncation to 253 characters and
 * every kind of syntax error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "auth/spf_internal.h"

static struct spf_ip ip4, ip6;
static struct spf_macro_ctx ctx;

static int setup(void **state)
{
    assert_int_equal(spf_ip_parse("192.0.2.3", &ip4), 0);
    assert_int_equal(spf_ip_parse("2001:db8::cb01", &ip6), 0);
    ctx = (struct spf_macro_ctx){
        .sender = SV_LIT("strong-bad@email.example.com"),
        .local = SV_LIT("strong-bad"),
        .sender_domain = SV_LIT("email.example.com"),
        .domain = SV_LIT("email.example.com"),
        .ip = &ip4,
        .helo = SV_LIT("mx.example.org"),
        .now = 1234567890,
    };
    return 0;
}

static void expect(const char *in, bool exp_text, const char *want)
{
    struct buf out;
    buf_init(&out, 8192);
    int rc = spf_macro_expand(sv_cstr(in), exp_text, &ctx, &out);
    if (rc != 0 || strcmp(buf_cstr(&out), want) != 0)
        fail_msg("%s: got rc=%d '%s', want '%s'", in, rc, buf_cstr(&out), want);
    buf_free(&out);
}

static void expect_error(const char *in, bool exp_text)
{
    struct buf out;
    buf_init(&out, 8192);
    char err[128];
    if (spf_macro_expand(sv_cstr(in), exp_text, &ctx, &out) != -1)
        fail_msg("%s: expanded to '%s', want a syntax error", in, buf_cstr(&out));
    assert_int_equal(spf_macro_check(sv_cstr(in), exp_text, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    buf_free(&out);
}

static void rfc7208_section_7_4_examples(void **state)
{
    static const char *table[][2] = {
        { "%{s}", "strong-bad@email.example.com" },
        { "%{o}", "email.example.com" },
        { "%{d}", "email.example.com" },
        { "%{d4}", "email.example.com" },
        { "%{d3}", "email.example.com" },
        { "%{d2}", "example.com" },
        { "%{d1}", "com" },
        { "%{dr}", "com.example.email" },
        { "%{d2r}", "example.email" },
        { "%{l}", "strong-bad" },
        { "%{l-}", "strong.bad" },
        { "%{lr}", "strong-bad" },
        { "%{lr-}", "bad.strong" },
        { "%{l1r-}", "strong" },
        { "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
        { "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
        { "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
        { "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com" },
        { "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        expect(table[i][0], false, table[i][1]);
    ctx.ip = &ip6;
    expect("%{ir}.%{v}._spf.%{d2}", false,
           "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
    expect("%{c}", true, "2001:db8::cb01");
    ctx.ip = &ip4;
}

static void escapes_and_uppercase(void **state)
{
    expect("%%%_%-", false, "% %20");
    expect("%{L}", false, "strong-bad");
    struct spf_macro_ctx saved = ctx;
    ctx.local = SV_LIT("a/b c~d");
    expect("%{L}", false, "a%2Fb%20c~d");
    expect("%{l}", false, "a/b c~d");
    ctx = saved;
    expect("%{D2}", false, "example.com");
    expect("%{d22}", false, "email.example.com");          /* more than the parts */
    expect("%{d99999999999999999999}", false, "email.example.com");
    expect("%{l+-=,/_}", false, "strong.bad");
}

static void explanation_only_letters(void **state)
{
    expect("%{c} %{r} %{t}", true, "192.0.2.3 unknown 1234567890");
    expect("%{i} is not one of %{d}'s designated mail servers.", true,
           "192.0.2.3 is not one of email.example.com's designated mail servers.");
    expect_error("%{c}", false);
    expect_error("%{r}", false);
    expect_error("%{t}", false);
}

static void syntax_errors(void **state)
{
    expect_error("%", false);
    expect_error("abc%", false);
    expect_error("%x", false);
    expect_error("%{", false);
    expect_error("%{d", false);
    expect_error("%{x}", false);
    expect_error("%{d0}", false);
    expect_error("%{d2q}", false);
    expect_error("%{dr2}", false);
    expect_error("a b", false);  /* space only in exp text */
    expect("a b", true, "a b");
    expect_error("\x7f", true);
    expect_error("caf\xc3\xa9", true);
}

static void domain_truncated_to_253(void **state)
{
    struct spf_macro_ctx saved = ctx;
    char local[64];
    memset(local, 'a', 63);
    local[63] = '\0';
    ctx.local = sv_cstr(local);
    struct buf out;
    buf_init(&out, 8192);
    /* 5 labels of 63 + "example.com" is far over 253 */
    assert_int_equal(spf_macro_expand(SV_LIT("%{l}.%{l}.%{l}.%{l}.%{l}.example.com"), false,
                                      &ctx, &out), 0);
    assert_true(out.len <= 253);
    assert_string_equal(buf_cstr(&out) + out.len - 12, ".example.com");
    assert_int_equal(out.data[0], 'a');
    assert_int_equal((out.len - 11) % 64, 0); /* whole labels were dropped */
    buf_free(&out);
    ctx = saved;
}

static void domain_spec_syntax(void **state)
{
    char err[160];
    static const char *good[] = { "example.com", "example.com.", "%{d}", "_spf.%{d2}",
                                  "foo.com-bar", "%{ir}.%{v}._spf.%{d2}", "x.a1", "x.1-1",
                                  "foo.%%", "a.b.c/d.e" };
    static const char *bad[] = { "", "com", "com.", "example.123", "example.-com",
                                 "example.com-", "%{d}com", "foo.com/", "example..",
                                 "exa%mple.com", "foo.%{c}" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (spf_domain_spec_check(sv_cstr(good[i]), err, sizeof err) != 0)
            fail_msg("'%s' rejected: %s", good[i], err);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (spf_domain_spec_check(sv_cstr(bad[i]), err, sizeof err) == 0)
            fail_msg("'%s' accepted", bad[i]);
}

static void reverse_names(void **state)
{
    char name[80];
    spf_ip_reverse_name(&ip4, name, sizeof name);
    assert_string_equal(name, "3.2.0.192.in-addr.arpa");
    spf_ip_reverse_name(&ip6, name, sizeof name);
    assert_string_equal(name,
                        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    struct spf_ip mapped;
    assert_int_equal(spf_ip_parse("::ffff:192.0.2.3", &mapped), 0);
    assert_int_equal(mapped.family, AF_INET);
    assert_memory_equal(mapped.addr, ip4.addr, 4);
    assert_int_equal(spf_ip_parse("192.0.2", &mapped), -1);
    assert_int_equal(spf_ip_parse("", &mapped), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc7208_section_7_4_examples),
        cmocka_unit_test(escapes_and_uppercase),
        cmocka_unit_test(explanation_only_letters),
        cmocka_unit_test(syntax_errors),
        cmocka_unit_test(domain_truncated_to_253),
        cmocka_unit_test(domain_spec_syntax),
        cmocka_unit_test(reverse_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
