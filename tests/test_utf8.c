/* util/utf8: the RFC 3629 table — valid sequences of each length, and the
 * refusals that matter for security: overlong forms (a "/" or NUL in
 * disguise), surrogates, code points past U+10FFFF, truncated and stray
 * continuation octets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/utf8.h"

static void test_table(void **state)
{
    (void)state;
    static const struct { const char *s; size_t n; bool ok; size_t first; } t[] = {
        { "a", 1, true, 1 },
        { "\xc3\xa9", 2, true, 2 },                  /* é */
        { "\xe2\x82\xac", 3, true, 3 },              /* € */
        { "\xf0\x9f\x93\xa7", 4, true, 4 },          /* 📧 */
        { "\xf4\x8f\xbf\xbf", 4, true, 4 },          /* U+10FFFF */
        { "\xc0\xaf", 2, false, 0 },                 /* overlong "/" */
        { "\xc1\xbf", 2, false, 0 },
        { "\xe0\x80\xaf", 3, false, 0 },             /* overlong, 3 octets */
        { "\xf0\x80\x80\xaf", 4, false, 0 },         /* overlong, 4 octets */
        { "\xed\xa0\x80", 3, false, 0 },             /* surrogate U+D800 */
        { "\xed\xbf\xbf", 3, false, 0 },             /* surrogate U+DFFF */
        { "\xf4\x90\x80\x80", 4, false, 0 },         /* U+110000 */
        { "\xf5\x80\x80\x80", 4, false, 0 },
        { "\xe2\x82", 2, false, 0 },                 /* truncated */
        { "\x80", 1, false, 0 },                     /* stray continuation */
        { "\xc3\x28", 2, false, 0 },                 /* bad continuation */
        { "\xff", 1, false, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_int_equal(utf8_valid(t[i].s, t[i].n), t[i].ok);
        assert_int_equal(utf8_seq_len((const unsigned char *)t[i].s, t[i].n), t[i].first);
    }
    const char mixed[] = "Bestellbest\xc3\xa4tigung \xe2\x82\xac 12";
    assert_true(utf8_valid(mixed, strlen(mixed)));
    assert_false(utf8_valid(mixed, strlen("Bestellbest\xc3")));   /* cut inside é */
    assert_true(utf8_valid("", 0));
    assert_int_equal(utf8_seq_len((const unsigned char *)"", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_table) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
