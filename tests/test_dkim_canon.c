/* DKIM canonicalization (RFC 6376 §3.4): the §3.4.5 examples, tables of
 * header and body cases for simple and relaxed, the body canonicalizer fed
 * in every chunking (byte by byte, every two-way split, random chunks) giving
 * the same octets and hash as the whole body, l= truncation, and the header
 * hash's bottom-up field selection with over-signed names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dkim_internal.h"

static char *canon_body(enum dkim_canon c, const char *in, size_t len, const size_t *cuts,
                        size_t ncuts, int64_t limit, size_t *outlen)
{
    struct buf sink;
    struct dkim_body b;
    buf_init(&sink, 1 << 26);
    assert_int_equal(dkim_body_init(&b, c, limit, &sink), 0);
    size_t pos = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        assert_int_equal(dkim_body_update(&b, in + pos, end - pos), 0);
        pos = end;
    }
    assert_int_equal(dkim_body_final(&b, NULL), 0);
    dkim_body_free(&b);
    *outlen = sink.len;
    char *s = buf_detach(&sink);
    return s;
}

static void expect_body(enum dkim_canon c, const char *in, size_t inlen, const char *want,
                        size_t wantlen)
{
    size_t n;
    char *got = canon_body(c, in, inlen, NULL, 0, -1, &n);
    if (n != wantlen || memcmp(got, want, n) != 0)
        fail_msg("%s body of [%s]: got [%.*s] (%zu), want [%s]", dkim_canon_name(c), in, (int)n,
                 got, n, want);
    /* Byte by byte, and every split in two and three pieces, the same. */
    size_t *cuts = calloc(inlen + 1, sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < inlen; i++)
        cuts[i] = i + 1;
    size_t n2;
    char *bytewise = canon_body(c, in, inlen, cuts, inlen ? inlen - 1 : 0, -1, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(bytewise, got, n);
    free(bytewise);
    for (size_t a = 0; a <= inlen; a++) {
        for (size_t bb = a; bb <= inlen; bb++) {
            size_t two[2] = { a, bb };
            char *split = canon_body(c, in, inlen, two, 2, -1, &n2);
            if (n2 != n || memcmp(split, got, n) != 0)
                fail_msg("%s body of [%s] split at %zu,%zu differs", dkim_canon_name(c), in, a, bb);
            free(split);
        }
    }
    free(cuts);
    free(got);
}

#define BODY(c, in, want) expect_body(c, in, sizeof(in) - 1, want, sizeof(want) - 1)

static void rfc6376_example(void **state)
{
    /* §3.4.5 */
    const char *h1 = "A: X", *h2 = "B : Y\t\r\n\tZ  ";
    struct buf out;
    buf_init(&out, 4096);
    assert_int_equal(dkim_canon_header(DKIM_CANON_RELAXED, h1, strlen(h1), &out), 0);
    assert_int_equal(dkim_canon_header(DKIM_CANON_RELAXED, h2, strlen(h2), &out), 0);
    assert_string_equal(buf_cstr(&out), "a:X\r\nb:Y Z\r\n");
    buf_reset(&out);
    assert_int_equal(dkim_canon_header(DKIM_CANON_SIMPLE, h1, strlen(h1), &out), 0);
    assert_int_equal(dkim_canon_header(DKIM_CANON_SIMPLE, h2, strlen(h2), &out), 0);
    assert_string_equal(buf_cstr(&out), "A: X\r\nB : Y\t\r\n\tZ  \r\n");
    buf_free(&out);
    BODY(DKIM_CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
    BODY(DKIM_CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n");
}

static void body_table(void **state)
{
    const enum dkim_canon S = DKIM_CANON_SIMPLE, R = DKIM_CANON_RELAXED;
    /* Empty bodies: simple is one CRLF, relaxed is nothing (errata 1384). */
    BODY(S, "", "\r\n");
    BODY(R, "", "");
    BODY(S, "\r\n", "\r\n");
    BODY(R, "\r\n", "");
    BODY(S, "\r\n\r\n\r\n", "\r\n");
    BODY(R, "\r\n \r\n\t\r\n", "");
    BODY(S, " \r\n", " \r\n");
    /* A missing final CRLF is added. */
    BODY(S, "abc", "abc\r\n");
    BODY(R, "abc", "abc\r\n");
    BODY(R, "abc  \t", "abc\r\n");
    /* Trailing empty lines go, inner ones stay. */
    BODY(S, "a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n");
    BODY(R, "a\r\n  \r\nb\r\n \r\n", "a\r\n\r\nb\r\n");
    /* Whitespace runs, leading and trailing whitespace. */
    BODY(R, "  a\t\t b  \r\n", " a b\r\n");
    BODY(R, "a \t\r\n", "a\r\n");
    BODY(S, "a \t\r\n", "a \t\r\n");
    /* Bare LF is a line end; a lone CR is content. */
    BODY(S, "a\nb\n\n", "a\r\nb\r\n");
    BODY(R, "a \nb\n\n\n", "a\r\nb\r\n");
    BODY(S, "a\rb\r\n", "a\rb\r\n");
    BODY(R, "a\r b\r\n", "a\r b\r\n");
    BODY(S, "a\r", "a\r\r\n");
    BODY(S, "\r", "\r\r\n");
    /* Mixed endings. */
    BODY(S, "x\r\ny\nz\r\n\n\r\n", "x\r\ny\r\nz\r\n");
    /* 8-bit and NUL octets are just octets. */
    BODY(S, "caf\xc3\xa9 \x00x\r\n", "caf\xc3\xa9 \x00x\r\n");
    BODY(R, "caf\xc3\xa9  \x00x\r\n", "caf\xc3\xa9 \x00x\r\n");
}

/* Long inputs through the SIMD paths: random text of words, runs of
 * whitespace and line ends, against a plain reference implementation. */
static size_t ref_relaxed(const char *in, size_t len, char *out)
{
    /* Line by line, RFC 6376 §3.4.4 taken literally. */
    size_t o = 0, pending_empty = 0, i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && in[e] != '\n' && !(in[e] == '\r' && e + 1 < len && in[e + 1] == '\n'))
            e++;
        bool eol = e < len;
        /* Collapse WSP, drop trailing. */
        char line[70000];
        size_t n = 0;
        bool ws = false;
        for (size_t k = i; k < e; k++) {
            if (in[k] == ' ' || in[k] == '\t') {
                ws = true;
                continue;
            }
            if (ws)
                line[n++] = ' ';
            ws = false;
            line[n++] = in[k];
        }
        if (n == 0 && eol) {
            pending_empty++;
        } else if (n > 0) {
            for (; pending_empty; pending_empty--)
                o += (memcpy(out + o, "\r\n", 2), 2);
            memcpy(out + o, line, n);
            o += n;
            o += (memcpy(out + o, "\r\n", 2), 2);
        }
        i = eol ? e + (in[e] == '\r' ? 2 : 1) : e;
    }
    return o;
}

static void random_bodies(void **state)
{
    static const char *pieces[] = { "word", " ", "  ", "\t", "\r\n", "\n", "x", " \r\n",
                                    "longerwordthatspansmorethansixteenoctets", "\r\n\r\n",
                                    "\xe2\x82\xac", "a b c d e f g h i j k l m" };
    srand(12345);
    for (int round = 0; round < 200; round++) {
        char in[8192];
        size_t len = 0;
        while (len < sizeof in - 64) {
            const char *p = pieces[rand() % (int)(sizeof pieces / sizeof pieces[0])];
            memcpy(in + len, p, strlen(p));
            len += strlen(p);
            if (rand() % 50 == 0)
                break;
        }
        char *want = malloc(2 * len + 4);
        size_t wn = ref_relaxed(in, len, want);
        size_t cuts[16], ncuts = (size_t)(rand() % 16);
        for (size_t i = 0; i < ncuts; i++)
            cuts[i] = len ? (size_t)rand() % len : 0;
        for (size_t i = 1; i < ncuts; i++)   /* sort */
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        size_t n;
        char *got = canon_body(DKIM_CANON_RELAXED, in, len, cuts, ncuts, -1, &n);
        if (n != wn || memcmp(got, want, n) != 0)
            fail_msg("round %d: relaxed body differs from the reference (%zu vs %zu octets)",
                     round, n, wn);
        free(got);
        free(want);
    }
}

static void hash_chunking_and_limit(void **state)
{
    /* 1 MiB of lines, hashed whole and byte by byte in odd chunks. */
    size_t len = 1 << 20;
    char *in = malloc(len);
    for (size_t i = 0; i < len; i++)
        in[i] = (i % 77 == 75) ? '\r' : (i % 77 == 76) ? '\n' : (i % 9 == 0) ? ' ' : 'a' + i % 26;
    for (int c = 0; c < 2; c++) {
        unsigned char d1[32], d2[32];
        struct dkim_body b;
        assert_int_equal(dkim_body_init(&b, (enum dkim_canon)c, -1, NULL), 0);
        assert_int_equal(dkim_body_update(&b, in, len), 0);
        assert_int_equal(dkim_body_final(&b, d1), 0);
        uint64_t total = b.total;
        dkim_body_free(&b);
        assert_int_equal(dkim_body_init(&b, (enum dkim_canon)c, -1, NULL), 0);
        for (size_t i = 0, step = 1; i < len; i += step, step = step * 3 % 1021 + 1)
            assert_int_equal(dkim_body_update(&b, in + i, step < len - i ? step : len - i), 0);
        assert_int_equal(dkim_body_final(&b, d2), 0);
        assert_int_equal(b.total, total);
        dkim_body_free(&b);
        assert_memory_equal(d1, d2, 32);
    }
    free(in);
    /* l= keeps the first l canonical octets; total counts them all. */
    size_t n;
    char *got = canon_body(DKIM_CANON_RELAXED, "hello  world\r\nmore\r\n", 20, NULL, 0, 7, &n);
    assert_int_equal(n, 7);
    assert_memory_equal(got, "hello w", 7);
    free(got);
    got = canon_body(DKIM_CANON_SIMPLE, "", 0, NULL, 0, 0, &n);
    assert_int_equal(n, 0);
    free(got);
}

static void header_table(void **state)
{
    static const struct {
        const char *in, *relaxed, *simple;
    } t[] = {
        { "Subject: hello", "subject:hello\r\n", "Subject: hello\r\n" },
        { "SUBJECT :  a  b \t", "subject:a b\r\n", "SUBJECT :  a  b \t\r\n" },
        { "To: a,\r\n  b,\r\n\tc", "to:a, b, c\r\n", "To: a,\r\n  b,\r\n\tc\r\n" },
        { "To: a,\n b", "to:a, b\r\n", "To: a,\r\n b\r\n" },
        { "X-Empty:", "x-empty:\r\n", "X-Empty:\r\n" },
        { "X-Empty:   ", "x-empty:\r\n", "X-Empty:   \r\n" },
        { "X-Fold:\r\n value", "x-fold:value\r\n", "X-Fold:\r\n value\r\n" },
        { "X-8bit: caf\xc3\xa9", "x-8bit:caf\xc3\xa9\r\n", "X-8bit: caf\xc3\xa9\r\n" },
        { "X-Colon: a:b", "x-colon:a:b\r\n", "X-Colon: a:b\r\n" },
    };
    struct buf out;
    buf_init(&out, 4096);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        buf_reset(&out);
        assert_int_equal(dkim_canon_header(DKIM_CANON_RELAXED, t[i].in, strlen(t[i].in), &out), 0);
        assert_string_equal(buf_cstr(&out), t[i].relaxed);
        buf_reset(&out);
        assert_int_equal(dkim_canon_header(DKIM_CANON_SIMPLE, t[i].in, strlen(t[i].in), &out), 0);
        assert_string_equal(buf_cstr(&out), t[i].simple);
    }
    buf_free(&out);
}

static void header_selection(void **state)
{
    /* Instances are taken bottom up; a name listed more often than present
     * adds nothing (the null string). */
    const char *head = "From: a\r\nSubject: one\r\nTo: x\r\nSubject: two\r\n";
    struct mail_field f[8];
    size_t n = 0;
    mail_header_fields(head, strlen(head), f, 8, &n, NULL);
    assert_int_equal(n, 4);
    struct sv names[] = { SV_LIT("subject"), SV_LIT("from"), SV_LIT("subject"),
                          SV_LIT("subject"), SV_LIT("x-absent") };
    const char *sig = "DKIM-Signature: v=1; b=";
    struct buf scratch;
    buf_init(&scratch, 1 << 16);
    unsigned char d[32], want[32];
    assert_int_equal(dkim_header_digest(DKIM_CANON_RELAXED, f, n, names, 5, sig, strlen(sig),
                                        &scratch, d), 0);
    const char *expect = "subject:two\r\nfrom:a\r\nsubject:one\r\ndkim-signature:v=1; b=";
    assert_int_equal(scratch.len, strlen(expect));
    assert_memory_equal(scratch.data, expect, scratch.len);
    unsigned int dl = 0;
    EVP_Digest(expect, strlen(expect), want, &dl, EVP_sha256(), NULL);
    assert_memory_equal(d, want, 32);
    buf_free(&scratch);
}

static void splitter_chunks(void **state)
{
    const char *msg = "From: a\r\nSubject: x\r\n y\r\n\r\nbody\r\n";
    size_t len = strlen(msg);
    size_t hl, bo;
    mail_split_message(msg, len, &hl, &bo);
    assert_int_equal(hl, 25);
    assert_int_equal(bo, 27);
    for (size_t step = 1; step <= len; step++) {
        struct mail_splitter s;
        mail_splitter_init(&s, 1 << 16);
        struct buf body;
        buf_init(&body, 1 << 16);
        for (size_t i = 0; i < len; i += step) {
            size_t n = step < len - i ? step : len - i;
            size_t used = s.in_body ? 0 : mail_splitter_feed(&s, msg + i, n);
            assert_int_equal(buf_append(&body, msg + i + used, n - used), 0);
        }
        assert_true(s.in_body);
        assert_int_equal(s.head.len, 25);
        assert_memory_equal(s.head.data, msg, 25);
        assert_string_equal(buf_cstr(&body), "body\r\n");
        mail_splitter_free(&s);
        buf_free(&body);
    }
    /* LF only, and no body at all. */
    mail_split_message("A: b\n\nx", 7, &hl, &bo);
    assert_int_equal(hl, 5);
    assert_int_equal(bo, 6);
    mail_split_message("A: b\r\n", 6, &hl, &bo);
    assert_int_equal(hl, 6);
    assert_int_equal(bo, 6);
    mail_split_message("\r\nbody", 6, &hl, &bo);
    assert_int_equal(hl, 0);
    assert_int_equal(bo, 2);
}

static void field_splitting(void **state)
{
    const char *head = " orphan\r\nFrom : a\r\n\tb\r\nnocolon\r\nBad Name: x\r\nX: 1\nY:2";
    struct mail_field f[8];
    size_t n = 0, bad = 0;
    mail_header_fields(head, strlen(head), f, 8, &n, &bad);
    assert_int_equal(n, 3);
    assert_int_equal(bad, 3);
    assert_true(sv_eq_ci_cstr(f[0].name, "from"));
    assert_int_equal(f[0].raw.len, strlen("From : a\r\n\tb"));
    assert_true(sv_eq_ci_cstr(f[1].name, "x"));
    assert_int_equal(f[1].raw.len, 4);
    assert_true(sv_eq_ci_cstr(f[2].name, "y"));
    assert_int_equal(f[2].raw.len, 3);
    /* More fields than room: counted, not stored. */
    mail_header_fields("A: 1\r\nB: 2\r\nC: 3\r\n", 18, f, 2, &n, NULL);
    assert_int_equal(n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6376_example),
        cmocka_unit_test(body_table),
        cmocka_unit_test(random_bodies),
        cmocka_unit_test(hash_chunking_and_limit),
        cmocka_unit_test(header_table),
        cmocka_unit_test(header_selection),
        cmocka_unit_test(splitter_chunks),
        cmocka_unit_test(field_splitting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
