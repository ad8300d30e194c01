/* The bounded MIME reader: part trees (nested, preamble and epilogue,
 * transport padding, look-alike delimiters, digest defaults, unclosed
 * multiparts, limits), Content-Type and its parameters (quoted, unquoted,
 * comments, folding), header lookup, transfer decoding, unfolding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mail/mime_parse.h"
#include "util/buf.h"

static struct mime_tree *tree(const char *msg)
{
    struct mime_tree *t = malloc(sizeof *t);
    char err[128];
    assert_int_equal(mime_parse(msg, strlen(msg), t, err, sizeof err), 0);
    return t;
}

static void body_is(const struct mime_part *p, const char *want)
{
    if (p->body.len != strlen(want) || memcmp(p->body.p, want, p->body.len) != 0)
        fail_msg("body '%.*s', want '%s'", (int)p->body.len, p->body.p, want);
}

static void nested_tree(void **state)
{
    const char *msg =
        "From: a@example.com\r\n"
        "Content-Type: multipart/mixed; boundary=\"outer b\" (a comment)\r\n"
        "\r\n"
        "preamble --outer b is not at a line start\r\n"
        "--outer b  \t\r\n"
        "Content-Type: multipart/alternative;\r\n boundary=inner\r\n"
        "\r\n"
        "--inner\r\n"
        "\r\n"
        "default text\r\n"
        "--inner-not-a-delimiter\r\n"
        "--inner\r\n"
        "Content-Type: TEXT/HTML; charset=utf-8\r\n"
        "\r\n"
        "<p>x</p>\r\n"
        "--inner--\r\n"
        "inner epilogue\r\n"
        "--outer b\r\n"
        "Content-Type: multipart/digest; boundary=d\r\n"
        "\r\n"
        "--d\r\n"
        "\r\n"
        "Subject: digest entry\r\n"
        "--d--\r\n"
        "--outer b--\r\n"
        "epilogue\r\n";
    struct mime_tree *t = tree(msg);
    assert_int_equal(t->nparts, 6);
    assert_false(t->truncated);
    const char *types[] = { "multipart/mixed", "multipart/alternative", "text/plain",
                            "text/html", "multipart/digest", "message/rfc822" };
    const int parents[] = { -1, 0, 1, 1, 0, 4 };
    const unsigned depths[] = { 0, 1, 2, 2, 1, 2 };
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(t->part[i].type, types[i]);
        assert_int_equal(t->part[i].parent, parents[i]);
        assert_int_equal(t->part[i].depth, depths[i]);
        assert_false(t->part[i].unterminated);
    }
    assert_true(t->part[0].multipart && t->part[1].multipart && t->part[4].multipart);
    /* the look-alike line stays in the body; the CRLF before a delimiter does not */
    body_is(&t->part[2], "default text\r\n--inner-not-a-delimiter");
    body_is(&t->part[3], "<p>x</p>");
    body_is(&t->part[5], "Subject: digest entry");
    assert_int_equal(t->part[2].head.len, 0);
    free(t);
}

static void lf_unclosed_and_leaves(void **state)
{
    struct mime_tree *t = tree("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                               "Content-Transfer-Encoding: Quoted-Printable\n\none\n--b\n\ntwo");
    assert_int_equal(t->nparts, 3);
    assert_true(t->part[0].unterminated);
    assert_int_equal(t->part[1].cte, MIME_CTE_QP);
    body_is(&t->part[1], "one");
    body_is(&t->part[2], "two");
    free(t);
    /* multipart without a boundary: a leaf */
    t = tree("Content-Type: multipart/mixed\r\n\r\n--b\r\nx\r\n--b--\r\n");
    assert_int_equal(t->nparts, 1);
    assert_false(t->part[0].multipart);
    free(t);
    /* no Content-Type, a broken one, an empty message */
    t = tree("Subject: x\r\n\r\nbody");
    assert_string_equal(t->part[0].type, "text/plain");
    body_is(&t->part[0], "body");
    free(t);
    t = tree("Content-Type: garbage\r\n\r\nbody");
    assert_string_equal(t->part[0].type, "text/plain");
    free(t);
    t = tree("");
    assert_int_equal(t->nparts, 1);
    free(t);
    char err[64];
    struct mime_tree tt;
    assert_int_equal(mime_parse("a\0b", 3, &tt, err, sizeof err), -1);
}

static void limits(void **state)
{
    /* more parts than MIME_MAX_PARTS */
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_printf(&b, "Content-Type: multipart/mixed; boundary=b\r\n\r\n"), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf_printf(&b, "--b\r\n\r\npart %d\r\n", i), 0);
    assert_int_equal(buf_printf(&b, "--b--\r\n"), 0);
    struct mime_tree *t = malloc(sizeof *t);
    char err[64];
    assert_int_equal(mime_parse(b.data, b.len, t, err, sizeof err), 0);
    assert_int_equal(t->nparts, MIME_MAX_PARTS);
    assert_true(t->truncated);
    body_is(&t->part[MIME_MAX_PARTS - 1], "part 62");
    /* deeper than MIME_MAX_DEPTH */
    buf_reset(&b);
    for (int d = 0; d < 12; d++)
        assert_int_equal(buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n",
                                    d, d), 0);
    assert_int_equal(buf_printf(&b, "\r\nleaf\r\n"), 0);
    assert_int_equal(mime_parse(b.data, b.len, t, err, sizeof err), 0);
    assert_true(t->truncated);
    assert_int_equal(t->nparts, MIME_MAX_DEPTH + 1);
    assert_int_equal(t->part[MIME_MAX_DEPTH].depth, MIME_MAX_DEPTH);
    assert_false(t->part[MIME_MAX_DEPTH].multipart);
    free(t);
    buf_free(&b);
}

static void params(void **state)
{
    char out[80], type[64];
    struct sv v = SV_LIT(" Multipart/Report (c) ; report-type=delivery-status;\r\n\tboundary=\"a \\\"q\\\" b\"; x=y");
    assert_true(mime_content_type(v, type, sizeof type));
    assert_string_equal(type, "multipart/report");
    assert_true(mime_param(v, "Report-Type", out, sizeof out));
    assert_string_equal(out, "delivery-status");
    assert_true(mime_param(v, "boundary", out, sizeof out));
    assert_string_equal(out, "a \"q\" b");
    assert_true(mime_param(v, "x", out, sizeof out));
    assert_string_equal(out, "y");
    assert_false(mime_param(v, "charset", out, sizeof out));
    /* unquoted values with characters real mail has there */
    v = sv_cstr("multipart/alternative; boundary=----=_Part_1_2.3");
    assert_true(mime_param(v, "boundary", out, sizeof out));
    assert_string_equal(out, "----=_Part_1_2.3");
    /* too long for out: refused, not cut */
    assert_false(mime_param(v, "boundary", out, 5));
    assert_string_equal(out, "");
    /* a parameter named in a comment or a value is not a parameter */
    v = sv_cstr("text/plain (boundary=no); name=\"boundary=no\"");
    assert_false(mime_param(v, "boundary", out, sizeof out));
    assert_false(mime_content_type(sv_cstr("text"), type, sizeof type));
    assert_false(mime_content_type(sv_cstr("/plain"), type, sizeof type));
}

static void headers(void **state)
{
    struct sv head = SV_LIT("From: a\r\nX-A: 1\r\n  folded\r\nbad line\r\n x-a : 2\r\nx-A: 3\r\n\r\nX-A: body\r\n");
    struct sv v;
    assert_true(mime_header_get(head, "x-a", &v));
    assert_int_equal(v.len, strlen(" 1\r\n  folded"));
    /* " x-a : 2" is a continuation line (of a line that is no field) */
    assert_int_equal(mime_header_count(head, "X-A"), 2);
    assert_false(mime_header_get(head, "Subject", &v));
    char out[64];
    assert_int_equal(mime_unfold(sv_cstr("  a\r\n\t b \x01 c  "), out, sizeof out), 7);
    assert_string_equal(out, "a b ? c");
    /* cut at a character boundary: "é" is two octets */
    assert_int_equal(mime_unfold(sv_cstr("ab\xc3\xa9"), out, 4), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(mime_unfold(sv_cstr("ab\xc3\xa9"), out, 5), 4);
}

static void decoding(void **state)
{
    struct mime_part p = { .cte = MIME_CTE_QP };
    p.body = sv_cstr("caf=C3=A9 =3D soft=\r\nbreak  \r\nbad =ZZ and =\r\n=4");
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(mime_decode_body(&p, &b), 0);
    assert_string_equal(buf_cstr(&b), "caf\xc3\xa9 = softbreak\r\nbad =ZZ and =4");
    buf_reset(&b);
    p.cte = MIME_CTE_BASE64;
    p.body = sv_cstr("aGVsbG8g\r\nd29ybGQ=\r\n");
    assert_int_equal(mime_decode_body(&p, &b), 0);
    assert_string_equal(buf_cstr(&b), "hello world");
    buf_reset(&b);
    p.body = sv_cstr("!!!!");
    assert_int_equal(mime_decode_body(&p, &b), -1);
    /* the cap holds */
    struct buf small;
    buf_init(&small, 4);
    p.body = sv_cstr("aGVsbG8gd29ybGQ=");
    assert_int_equal(mime_decode_body(&p, &small), -1);
    buf_free(&small);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nested_tree),
        cmocka_unit_test(lf_unclosed_and_leaves),
        cmocka_unit_test(limits),
        cmocka_unit_test(params),
        cmocka_unit_test(headers),
        cmocka_unit_test(decoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
