/* The message builder and the raw checks: messages are built, then parsed
 * back with mail_header.h / mail_address.h and this file's own small
 * decoders (quoted-printable, RFC 2047; base64 through OpenSSL) — never with
 * the builder's code — and checked: fields, structure, UTF-8 round trips of
 * bodies and subjects, folding lengths, encoded-word lengths, the boundary,
 * refused header injections. Three representative messages are also read
 * by /usr/bin/python3's email package (policy=default). The raw checks are
 * fed good and bad messages (bare LF/CR, long lines, NUL, From counts,
 * size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mail/mail_address.h"
#include "mail/mail_header.h"
#include "mail/mime_build.h"
#include "util/limits.h"

#define NOW ((time_t)1764100800) /* Tue, 25 Nov 2025 20:00:00 +0000 */

/* ---- helpers ---------------------------------------------------------- */

static char *build_ok(const struct mime_message *m, size_t *len)
{
    struct buf out;
    buf_init(&out, 4 * 1024 * 1024);
    char err[256] = "";
    if (mime_build(m, &out, err, sizeof err) != 0)
        fail_msg("mime_build refused: %s", err);
    *len = out.len;
    char *s = buf_detach(&out);
    buf_free(&out);
    /* whatever is built passes the raw checks, with Date and Message-ID */
    bool has_date = false, has_msgid = false;
    if (mime_check_raw(s, *len, MAIL_MAX_MESSAGE_SIZE, &has_date, &has_msgid, err,
                       sizeof err) != 0)
        fail_msg("built message fails mime_check_raw: %s\n%s", err, s);
    assert_true(has_date);
    assert_true(has_msgid);
    return s;
}

static void build_refused(const struct mime_message *m, const char *why_part)
{
    struct buf out;
    buf_init(&out, 4 * 1024 * 1024);
    char err[256] = "";
    if (mime_build(m, &out, err, sizeof err) == 0)
        fail_msg("mime_build accepted what it should refuse (%s):\n%s", why_part, buf_cstr(&out));
    if (!strstr(err, why_part))
        fail_msg("error '%s' does not say '%s'", err, why_part);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

struct parsed {
    const char *msg;
    size_t len, head_len, body_off;
    struct mail_field f[64];
    size_t nf;
};

static void parse(struct parsed *p, const char *msg, size_t len)
{
    p->msg = msg;
    p->len = len;
    mail_split_message(msg, len, &p->head_len, &p->body_off);
    size_t malformed = 0;
    mail_header_fields(msg, p->head_len, p->f, 64, &p->nf, &malformed);
    assert_int_equal(malformed, 0);
    assert_true(p->nf <= 64);
}

static size_t count_field(const struct parsed *p, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nf; i++)
        n += sv_eq_ci_cstr(p->f[i].name, name);
    return n;
}

/* The value of the only field called name, unfolded (CRLFs removed),
 * leading white space removed; a malloc'd string. */
static char *field(const struct parsed *p, const char *name)
{
    if (count_field(p, name) != 1)
        fail_msg("%zu %s fields", count_field(p, name), name);
    for (size_t i = 0; i < p->nf; i++) {
        if (!sv_eq_ci_cstr(p->f[i].name, name))
            continue;
        struct sv v = mail_field_value(&p->f[i]);
        char *s = malloc(v.len + 1);
        size_t n = 0;
        for (size_t k = 0; k < v.len; k++)
            if (v.p[k] != '\r' && v.p[k] != '\n')
                s[n++] = v.p[k];
        s[n] = '\0';
        size_t lead = strspn(s, " \t");
        memmove(s, s + lead, n - lead + 1);
        return s;
    }
    return NULL;
}

/* Every line of the header section within max octets; every line of the
 * message within 998. */
static void check_lines(const char *msg, size_t len, size_t head_len, size_t max)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(msg + i, '\n', len - i);
        assert_non_null(nl);
        size_t l = (size_t)(nl - msg) - i - 1;
        if (i < head_len && l > max)
            fail_msg("header line of %zu octets: %.*s", l, (int)l, msg + i);
        assert_true(l <= 998);
        i = (size_t)(nl - msg) + 1;
    }
}

static int hexv(int c)
{
    return isdigit(c) ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* Quoted-printable as RFC 2045 §6.7 says, strictly: '=' is always followed
 * by two upper-case hex digits or a line break; lines are within 76. */
static char *qp_decode(const char *s, size_t n, size_t *outlen)
{
    char *o = malloc(n + 1);
    size_t k = 0, col = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') {
            if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
                assert_true(col + 1 <= 76);
                i += 2;
                col = 0;
                continue;
            }
            assert_true(i + 2 < n);
            int h = hexv((unsigned char)s[i + 1]), l = hexv((unsigned char)s[i + 2]);
            assert_true(h >= 0 && l >= 0);
            o[k++] = (char)(h * 16 + l);
            i += 2;
            col += 3;
            continue;
        }
        if (s[i] == '\r') {
            assert_true(i + 1 < n && s[i + 1] == '\n');
            assert_true(col <= 76);
            /* no white space is left at the end of an encoded line */
            assert_true(col == 0 || (s[i - 1] != ' ' && s[i - 1] != '\t'));
            o[k++] = '\r';
            o[k++] = '\n';
            i++;
            col = 0;
            continue;
        }
        assert_true((unsigned char)s[i] < 0x80);
        o[k++] = s[i];
        col++;
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

static char *b64_decode(const char *s, size_t n, size_t *outlen)
{
    char *clean = calloc(1, n + 1);
    size_t c = 0;
    for (size_t i = 0; i < n; i += 78) { /* 76 + CRLF per line */
        size_t l = n - i < 78 ? n - i : 78;
        assert_true(l >= 2 && s[i + l - 2] == '\r' && s[i + l - 1] == '\n');
        assert_true(l - 2 <= 76);
        memcpy(clean + c, s + i, l - 2);
        c += l - 2;
    }
    unsigned char *o = malloc(c + 4);
    int r = EVP_DecodeBlock(o, (unsigned char *)clean, (int)c);
    assert_true(r >= 0);
    size_t k = (size_t)r;
    if (c >= 1 && clean[c - 1] == '=')
        k--;
    if (c >= 2 && clean[c - 2] == '=')
        k--;
    o[k] = '\0';
    *outlen = k;
    free(clean);
    return (char *)o;
}

/* A body decoded as its Content-Transfer-Encoding says. */
static char *decode_body(const char *cte, const char *s, size_t n, size_t *outlen)
{
    if (strcasecmp(cte, "quoted-printable") == 0)
        return qp_decode(s, n, outlen);
    if (strcasecmp(cte, "base64") == 0)
        return b64_decode(s, n, outlen);
    assert_string_equal(cte, "7bit");
    for (size_t i = 0; i < n; i++)
        assert_true((unsigned char)s[i] < 0x80 && s[i]);
    char *o = malloc(n + 1);
    memcpy(o, s, n);
    o[n] = '\0';
    *outlen = n;
    return o;
}

/* Decodes an unfolded header value made of encoded-words (RFC 2047) and
 * plain text; checks each encoded-word's length. */
static char *words_decode(const char *v, size_t *nwords)
{
    size_t n = strlen(v), k = 0;
    char *o = malloc(n + 1);
    *nwords = 0;
    bool prev_word = false;
    size_t i = 0, word_end = 0;
    while (i < n) {
        if (strncmp(v + i, "=?UTF-8?", 8) == 0) {
            const char *end = strstr(v + i + 10, "?=");
            assert_non_null(end);
            size_t wl = (size_t)(end + 2 - (v + i));
            if (wl > 75)
                fail_msg("encoded-word of %zu octets: %.*s", wl, (int)wl, v + i);
            char enc = v[i + 8];
            const char *p = v + i + 10;
            size_t pl = (size_t)(end - p);
            /* white space between two encoded-words is not text */
            if (prev_word)
                k = word_end;
            if (enc == 'B') {
                unsigned char tmp[80];
                int r = EVP_DecodeBlock(tmp, (const unsigned char *)p, (int)pl);
                assert_true(r >= 0);
                size_t dl = (size_t)r - (pl && p[pl - 1] == '=') - (pl > 1 && p[pl - 2] == '=');
                memcpy(o + k, tmp, dl);
                k += dl;
            } else {
                assert_int_equal(enc, 'Q');
                for (size_t j = 0; j < pl; j++) {
                    if (p[j] == '_') {
                        o[k++] = ' ';
                    } else if (p[j] == '=') {
                        o[k++] = (char)(hexv((unsigned char)p[j + 1]) * 16 +
                                        hexv((unsigned char)p[j + 2]));
                        j += 2;
                    } else {
                        assert_true(isalnum((unsigned char)p[j]) || strchr("!*+-/", p[j]));
                        o[k++] = p[j];
                    }
                }
            }
            i += wl;
            prev_word = true;
            word_end = k;
            (*nwords)++;
        } else {
            if (v[i] != ' ' && v[i] != '\t')
                prev_word = false;
            o[k++] = v[i++];
        }
    }
    o[k] = '\0';
    return o;
}

/* The text with CRLF line ends and a final CRLF: what a body decodes to. */
static char *crlf(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(2 * n + 3);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            o[k++] = '\r';
        o[k++] = s[i];
    }
    if (k && o[k - 1] != '\n') {
        o[k++] = '\r';
        o[k++] = '\n';
    }
    o[k] = '\0';
    return o;
}

static void check_body(const char *cte, const char *s, size_t n, const char *want)
{
    size_t dl;
    char *d = decode_body(cte, s, n, &dl);
    char *w = crlf(want);
    assert_int_equal(dl, strlen(w));
    assert_memory_equal(d, w, dl);
    free(d);
    free(w);
}

/* ---- building --------------------------------------------------------- */

static void simple_text(void **state)
{
    const char *to[] = { "bob@example.net" };
    struct mime_message m = {
        .from = "alice@example.com", .to = to, .nto = 1, .subject = "Hello there",
        .text = "Hi Bob,\nsee you.\n", .message_id_domain = "mail.example.com", .now = NOW,
    };
    size_t len;
    char *msg = build_ok(&m, &len);
    struct parsed p;
    parse(&p, msg, len);
    char *v = field(&p, "Date");
    assert_string_equal(v, "Tue, 25 Nov 2025 20:00:00 +0000");
    free(v);
    v = field(&p, "From");
    assert_string_equal(v, "alice@example.com");
    free(v);
    v = field(&p, "To");
    assert_string_equal(v, "bob@example.net");
    free(v);
    v = field(&p, "Subject");
    assert_string_equal(v, "Hello there");
    free(v);
    v = field(&p, "MIME-Version");
    assert_string_equal(v, "1.0");
    free(v);
    v = field(&p, "Content-Type");
    assert_string_equal(v, "text/plain; charset=utf-8");
    free(v);
    char *cte = field(&p, "Content-Transfer-Encoding");
    assert_string_equal(cte, "7bit");
    v = field(&p, "Message-ID");
    assert_int_equal(strlen(v), 1 + 32 + 1 + strlen("mail.example.com") + 1);
    assert_true(v[0] == '<' && v[33] == '@' && strcmp(v + 34, "mail.example.com>") == 0);
    for (int i = 1; i <= 32; i++)
        assert_true(isxdigit((unsigned char)v[i]));
    free(v);
    assert_int_equal(count_field(&p, "Cc"), 0);
    assert_int_equal(count_field(&p, "Reply-To"), 0);
    assert_int_equal(count_field(&p, "Bcc"), 0);
    check_body(cte, msg + p.body_off, len - p.body_off, m.text);
    assert_memory_equal(msg + p.body_off, "Hi Bob,\r\nsee you.\r\n", len - p.body_off);
    free(cte);

    /* a second message: another Message-ID; no message_id_domain: From's */
    m.message_id_domain = NULL;
    size_t len2;
    char *msg2 = build_ok(&m, &len2);
    struct parsed p2;
    parse(&p2, msg2, len2);
    char *id1 = field(&p, "Message-ID"), *id2 = field(&p2, "Message-ID");
    assert_string_not_equal(id1, id2);
    assert_non_null(strstr(id2, "@example.com>"));
    free(id1);
    free(id2);
    free(msg2);
    free(msg);
}

static void utf8_text_and_subject(void **state)
{
    const char *to[] = { "J\xc3\xbcrgen M\xc3\xbcller <juergen@example.de>" };
    const char *subject = "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x80\x94 caf\xc3\xa9 \xe2\x98\x95";
    const char *text = "Hallo J\xc3\xbcrgen,\n\nder Kaffee kostet 3\xe2\x82\xac = drei Euro.\n"
                       "Trailing space here \nand a tab\t\n"
                       "A long line: " "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa4 end\n"
                       ".\nFrom the start of a line\nno final newline";
    struct mime_message m = {
        .from = "Caf\xc3\xa9 <news@example.com>", .to = to, .nto = 1, .subject = subject,
        .text = text, .message_id_domain = "example.com", .now = NOW,
    };
    size_t len;
    char *msg = build_ok(&m, &len);
    struct parsed p;
    parse(&p, msg, len);
    check_lines(msg, len, p.head_len, 78);
    char *cte = field(&p, "Content-Transfer-Encoding");
    assert_string_equal(cte, "quoted-printable");
    check_body(cte, msg + p.body_off, len - p.body_off, text);
    free(cte);

    size_t nw;
    char *v = field(&p, "Subject");
    char *d = words_decode(v, &nw);
    assert_true(nw >= 1);
    assert_string_equal(d, subject);
    free(d);
    free(v);

    /* display names: encoded-words, the address intact */
    v = field(&p, "To");
    assert_non_null(strstr(v, "=?UTF-8?"));
    assert_non_null(strstr(v, " <juergen@example.de>"));
    struct mail_address_list l;
    char err[128];
    assert_int_equal(mail_address_list_parse(v, strlen(v), &l, err, sizeof err), 0);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.box[0].local, "juergen");
    d = words_decode(v, &nw);
    assert_string_equal(d, "J\xc3\xbcrgen M\xc3\xbcller <juergen@example.de>");
    free(d);
    free(v);
    v = field(&p, "From");
    d = words_decode(v, &nw);
    assert_string_equal(d, "Caf\xc3\xa9 <news@example.com>");
    free(d);
    free(v);
    free(msg);
}

static void html_mostly_non_ascii_is_base64(void **state)
{
    const char *html = "<p>\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80! "
                       "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\xe4\xb8\x96\xe7\x95\x8c"
                       "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf</p>\n";
    const char *to[] = { "a@example.net" };
    struct mime_message m = {
        .from = "x@example.com", .to = to, .nto = 1, .subject = "\xd0\x9f\xd1\x80\xd0\xb8",
        .html = html, .now = NOW,
    };
    size_t len;
    char *msg = build_ok(&m, &len);
    struct parsed p;
    parse(&p, msg, len);
    char *v = field(&p, "Content-Type");
    assert_string_equal(v, "text/html; charset=utf-8");
    free(v);
    char *cte = field(&p, "Content-Transfer-Encoding");
    assert_string_equal(cte, "base64");
    check_body(cte, msg + p.body_off, len - p.body_off, html);
    free(cte);
    /* a short Cyrillic subject: B is shorter than Q */
    size_t nw;
    v = field(&p, "Subject");
    assert_non_null(strstr(v, "=?UTF-8?B?"));
    char *d = words_decode(v, &nw);
    assert_string_equal(d, m.subject);
    free(d);
    free(v);
    free(msg);
}

/* The parts of a multipart body, split on the boundary by hand. */
static size_t split_parts(const char *body, size_t n, const char *boundary, const char **part,
                          size_t *plen, size_t max)
{
    char delim[128];
    snprintf(delim, sizeof delim, "--%s", boundary);
    size_t dl = strlen(delim), np = 0;
    assert_true(n >= dl && memcmp(body, delim, dl) == 0); /* no preamble */
    const char *p = body;
    for (;;) {
        p += dl;
        if (p[0] == '-' && p[1] == '-') {
            assert_memory_equal(p, "--\r\n", 4);
            assert_true(p + 4 == body + n); /* no epilogue */
            return np;
        }
        assert_memory_equal(p, "\r\n", 2);
        p += 2;
        char needle[132];
        snprintf(needle, sizeof needle, "\r\n%s", delim);
        const char *next = memmem(p, (size_t)(body + n - p), needle, strlen(needle));
        assert_non_null(next);
        assert_true(np < max);
        part[np] = p;
        plen[np++] = (size_t)(next - p);
        p = next + 2;
    }
}

static void alternative(void **state)
{
    const char *text = "Plain \xc3\xa9t\xc3\xa9 text\n";
    const char *html = "<html><body><p>HTML \xc3\xa9t\xc3\xa9</p>\n<p>line two</p></body></html>";
    const char *to[] = { "a@example.net", "\"Smith, John\" <john@example.org>, c@example.org" };
    const char *cc[] = { "Carol <carol@example.net>" };
    struct mime_message m = {
        .from = "Sender Name <s@example.com>", .to = to, .nto = 2, .cc = cc, .ncc = 1,
        .reply_to = "replies@example.com", .subject = "Both", .text = text, .html = html,
        .now = NOW,
    };
    size_t len;
    char *msg = build_ok(&m, &len);
    struct parsed p;
    parse(&p, msg, len);
    check_lines(msg, len, p.head_len, 78);
    char *v = field(&p, "Content-Type");
    assert_true(strncmp(v, "multipart/alternative;", 22) == 0);
    const char *b = strstr(v, "boundary=\"");
    assert_non_null(b);
    char boundary[80];
    b += 10;
    size_t bl = strcspn(b, "\"");
    assert_true(bl > 10 && bl <= 70);
    memcpy(boundary, b, bl);
    boundary[bl] = '\0';
    free(v);
    assert_int_equal(count_field(&p, "Content-Transfer-Encoding"), 0);
    /* the boundary appears in no body */
    assert_null(memmem(text, strlen(text), boundary, bl));
    const char *part[4];
    size_t plen[4];
    size_t np = split_parts(msg + p.body_off, len - p.body_off, boundary, part, plen, 4);
    assert_int_equal(np, 2);
    const char *want_type[] = { "text/plain; charset=utf-8", "text/html; charset=utf-8" };
    const char *want_body[] = { text, html };
    for (size_t i = 0; i < 2; i++) {
        assert_null(memmem(part[i], plen[i], boundary, bl));
        struct parsed pp;
        parse(&pp, part[i], plen[i]);
        assert_int_equal(pp.nf, 2);
        v = field(&pp, "Content-Type");
        assert_string_equal(v, want_type[i]);
        free(v);
        char *cte = field(&pp, "Content-Transfer-Encoding");
        assert_string_equal(cte, "quoted-printable");
        check_body(cte, part[i] + pp.body_off, plen[i] - pp.body_off, want_body[i]);
        free(cte);
    }
    /* addresses: all of them, quoted where needed */
    v = field(&p, "To");
    assert_string_equal(v, "a@example.net, \"Smith, John\" <john@example.org>, c@example.org");
    free(v);
    v = field(&p, "Cc");
    assert_string_equal(v, "Carol <carol@example.net>");
    free(v);
    v = field(&p, "Reply-To");
    assert_string_equal(v, "replies@example.com");
    free(v);

    /* another build, another boundary */
    size_t len2;
    char *msg2 = build_ok(&m, &len2);
    assert_null(memmem(msg2, len2, boundary, bl));
    free(msg2);
    free(msg);
}

static void boundary_never_in_bodies(void **state)
{
    /* bodies full of boundary-looking lines: the chosen one differs */
    const char *text = "--=_sesame_\n--=_sesame_0000\n=_sesame_ffffffffffffffffffffffff\n";
    struct mime_message m = {
        .from = "s@example.com", .text = text, .html = "<b>--=_sesame_</b>", .now = NOW,
    };
    for (int round = 0; round < 20; round++) {
        size_t len;
        char *msg = build_ok(&m, &len);
        const char *b = strstr(msg, "boundary=\"") + 10;
        size_t bl = strcspn(b, "\"");
        /* the boundary string occurs only as delimiters: 3 times plus the parameter */
        size_t count = 0;
        for (const char *q = msg; (q = memmem(q, len - (size_t)(q - msg), b, bl)); q++)
            count++;
        assert_int_equal(count, 4);
        free(msg);
    }
}

static void folding(void **state)
{
    char subject[600] = "";
    for (int i = 0; i < 40; i++)
        strcat(subject, i % 3 ? "word " : "longerword ");
    strcat(subject, "end");
    struct mime_message m = { .from = "s@example.com", .text = "x", .subject = subject,
                              .now = NOW };
    size_t len;
    char *msg = build_ok(&m, &len);
    struct parsed p;
    parse(&p, msg, len);
    check_lines(msg, len, p.head_len, 78);
    char *v = field(&p, "Subject");
    assert_string_equal(v, subject); /* folds removed: the same text */
    free(v);
    /* a folded field: continuation lines start with white space */
    assert_non_null(strstr(msg, "\r\n word"));
    free(msg);

    /* long non-ASCII: many encoded-words, each <= 75, lines <= 78 */
    char usub[2000] = "";
    for (int i = 0; i < 60; i++)
        strcat(usub, i % 2 ? "\xe6\x97\xa5\xe6\x9c\xac " : "caf\xc3\xa9 ");
    m.subject = usub;
    msg = build_ok(&m, &len);
    parse(&p, msg, len);
    check_lines(msg, len, p.head_len, 78);
    size_t nw;
    v = field(&p, "Subject");
    char *d = words_decode(v, &nw);
    assert_true(nw > 5);
    assert_string_equal(d, usub);
    free(d);
    free(v);
    free(msg);

    /* a 4-byte character is never split across encoded-words */
    char emoji[400] = "";
    for (int i = 0; i < 60; i++)
        strcat(emoji, "\xf0\x9f\x98\x80");
    m.subject = emoji;
    msg = build_ok(&m, &len);
    parse(&p, msg, len);
    check_lines(msg, len, p.head_len, 78);
    v = field(&p, "Subject");
    d = words_decode(v, &nw);
    assert_string_equal(d, emoji);
    free(d);
    free(v);
    free(msg);

    /* an ASCII word too long for 998: encoded, still round-trips */
    char longword[1500];
    memset(longword, 'x', 1200);
    longword[1200] = '\0';
    m.subject = longword;
    msg = build_ok(&m, &len);
    parse(&p, msg, len);
    check_lines(msg, len, p.head_len, 78);
    v = field(&p, "Subject");
    d = words_decode(v, &nw);
    assert_string_equal(d, longword);
    free(d);
    free(v);
    free(msg);

    /* many recipients: the To field folds */
    const char *to[30];
    char names[30][64];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof names[i], "Person %d <person%d@example.org>", i, i);
        to[i] = names[i];
    }
    m.subject = "x";
    m.to = to;
    m.nto = 30;
    msg = build_ok(&m, &len);
    parse(&p, msg, len);
    check_lines(msg, len, p.head_len, 78);
    v = field(&p, "To");
    struct mail_address_list l;
    char err[128];
    assert_int_equal(mail_address_list_parse(v, strlen(v), &l, err, sizeof err), 0);
    assert_int_equal(l.count, 30);
    free(v);
    free(msg);
}

static void line_ends_and_7bit_limits(void **state)
{
    struct mime_message m = { .from = "s@example.com", .text = "a\r\nb\rc\nd", .now = NOW };
    size_t len;
    char *msg = build_ok(&m, &len);
    struct parsed p;
    parse(&p, msg, len);
    assert_memory_equal(msg + p.body_off, "a\r\nb\r\nc\r\nd\r\n", len - p.body_off);
    free(msg);
    /* an ASCII line of 999 octets: not 7bit */
    char big[1100];
    memset(big, 'y', 999);
    big[999] = '\0';
    m.text = big;
    msg = build_ok(&m, &len);
    parse(&p, msg, len);
    char *cte = field(&p, "Content-Transfer-Encoding");
    assert_string_equal(cte, "quoted-printable");
    check_body(cte, msg + p.body_off, len - p.body_off, big);
    free(cte);
    free(msg);
    /* 998 is still 7bit */
    big[998] = '\0';
    msg = build_ok(&m, &len);
    parse(&p, msg, len);
    cte = field(&p, "Content-Transfer-Encoding");
    assert_string_equal(cte, "7bit");
    free(cte);
    free(msg);
    /* an empty text body */
    m.text = "";
    msg = build_ok(&m, &len);
    parse(&p, msg, len);
    assert_int_equal(p.body_off, len);
    free(msg);
}

static void extra_headers(void **state)
{
    struct mime_header h[] = {
        { "X-Campaign", "spring-2026" },
        { "List-Unsubscribe", "<https://example.com/unsubscribe?token=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>" },
        { "X-Note", "na\xc3\xafve" },
        { "In-Reply-To", "<abc@example.net>" },
    };
    struct mime_message m = { .from = "s@example.com", .text = "x", .headers = h,
                              .nheaders = 4, .now = NOW };
    size_t len;
    char *msg = build_ok(&m, &len);
    struct parsed p;
    parse(&p, msg, len);
    char *v = field(&p, "X-Campaign");
    assert_string_equal(v, "spring-2026");
    free(v);
    /* a long structured value is kept whole (folded at its own spaces only) */
    v = field(&p, "List-Unsubscribe");
    assert_string_equal(v, h[1].value);
    free(v);
    size_t nw;
    v = field(&p, "X-Note");
    char *d = words_decode(v, &nw);
    assert_int_equal(nw, 1);
    assert_string_equal(d, "na\xc3\xafve");
    free(d);
    free(v);
    free(msg);
}

static void refused(void **state)
{
    const char *to[] = { "a@example.net" };
    struct mime_message base = { .from = "s@example.com", .to = to, .nto = 1, .text = "x",
                                 .subject = "s", .now = NOW };
    struct mime_message m = base;

    m.subject = "hello\r\nBcc: victim@example.org";
    build_refused(&m, "header injection");
    m.subject = "hello\nBcc: victim@example.org";
    build_refused(&m, "header injection");
    m.subject = "bad \xc3\x28 utf8";
    build_refused(&m, "UTF-8");
    m.subject = "overlong \xc0\xaf";
    build_refused(&m, "UTF-8");
    m.subject = "surrogate \xed\xa0\x80";
    build_refused(&m, "UTF-8");
    m.subject = "bell \x07";
    build_refused(&m, "control");
    m = base;
    m.text = "bad \xff body";
    build_refused(&m, "not valid UTF-8");
    m = base;
    m.text = NULL;
    build_refused(&m, "no body");
    m = base;
    m.from = NULL;
    build_refused(&m, "From");
    m.from = "a@example.com, b@example.com";
    build_refused(&m, "exactly one");
    m.from = "not an address";
    build_refused(&m, "not an address");
    m.from = "s@example.com\r\nBcc: x@example.org";
    build_refused(&m, "header injection");
    m = base;
    const char *bad_to[] = { "a@example.net\nBcc: x@example.org" };
    m.to = bad_to;
    build_refused(&m, "header injection");
    const char *group[] = { "Team: a@example.net, b@example.net;" };
    m.to = group;
    build_refused(&m, "groups");
    const char *utf8_local[] = { "j\xc3\xbcrgen@example.de" };
    m.to = utf8_local;
    build_refused(&m, "SMTPUTF8");
    const char *empty[] = { " , " };
    m.to = empty;
    build_refused(&m, "no address");
    const char *two_angles[] = { "A <a@example.net> <b@example.net>" };
    m.to = two_angles;
    build_refused(&m, "not an address");
    m = base;
    m.reply_to = "no-at-sign";
    build_refused(&m, "Reply-To");
    m = base;
    m.message_id_domain = "bad domain>";
    build_refused(&m, "message_id_domain");

    static const char *const forbidden[] = {
        "Bcc", "From", "to", "CC", "Date", "Message-Id", "MIME-Version", "Content-Type",
        "content-transfer-encoding", "DKIM-Signature", "Received", "Return-Path", "Subject",
        "Reply-To", "ARC-Seal", "Authentication-Results",
    };
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
        struct mime_header h = { forbidden[i], "x" };
        m = base;
        m.headers = &h;
        m.nheaders = 1;
        build_refused(&m, "not allowed");
    }
    struct mime_header bad[] = {
        { "X-Evil", "a\r\nBcc: victim@example.org" },
        { "X-Evil", "a\nb" },
        { "X-Evil", "a\rb" },
        { "X Space", "v" },
        { "X:Colon", "v" },
        { "", "v" },
        { "X-\xc3\xa9", "v" },
    };
    const char *why[] = { "header injection", "header injection", "header injection",
                          "not a valid field name", "not a valid field name",
                          "not a valid field name", "not a valid field name" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = base;
        m.headers = &bad[i];
        m.nheaders = 1;
        build_refused(&m, why[i]);
    }
    struct mime_header twice[] = { { "In-Reply-To", "<a@b>" }, { "in-reply-to", "<c@d>" } };
    m = base;
    m.headers = twice;
    m.nheaders = 2;
    build_refused(&m, "twice");

    /* too large for the buffer: refused, the buffer as it was */
    m = base;
    struct buf out;
    buf_init(&out, 200);
    assert_int_equal(buf_append_str(&out, "keep"), 0);
    char err[256];
    assert_int_equal(mime_build(&m, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "too large"));
    assert_string_equal(buf_cstr(&out), "keep");
    buf_free(&out);
}

static void encode_header(void **state)
{
    struct buf out;
    buf_init(&out, 4096);
    assert_int_equal(mime_encode_header("Subject", "plain ascii", &out), 0);
    assert_string_equal(buf_cstr(&out), "plain ascii");
    buf_reset(&out);
    assert_int_equal(mime_encode_header("Subject", "\xc3\xa9t\xc3\xa9", &out), 0);
    assert_string_equal(buf_cstr(&out), "=?UTF-8?B?w6l0w6k=?="); /* B: shorter than Q */
    buf_reset(&out);
    assert_int_equal(mime_encode_header("Subject", "caf\xc3\xa9 au lait", &out), 0);
    assert_string_equal(buf_cstr(&out), "=?UTF-8?Q?caf=C3=A9_au_lait?=");
    buf_reset(&out);
    assert_int_equal(mime_encode_header("Subject", "a\r\nb", &out), -1);
    assert_int_equal(mime_encode_header("Bad Name", "x", &out), -1);
    assert_int_equal(mime_encode_header("Subject", "\xff", &out), -1);
    assert_int_equal(out.len, 0);
    /* the value only, folded for "Subject: " */
    char v[400] = "";
    for (int i = 0; i < 30; i++)
        strcat(v, "\xc3\xa9l\xc3\xa8ve ");
    assert_int_equal(mime_encode_header("Subject", v, &out), 0);
    char line[1200];
    snprintf(line, sizeof line, "Subject: %s\r\n", buf_cstr(&out));
    check_lines(line, strlen(line), strlen(line), 78);
    buf_free(&out);
}

/* ---- python's email package ------------------------------------------- */

static const char py_check[] =
    "import sys, email, email.policy\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "want = [open(f, 'rb').read().decode('utf-8') for f in sys.argv[2:5]]\n"
    "m = email.message_from_bytes(raw, policy=email.policy.default)\n"
    "def nl(s): return s.replace('\\r\\n', '\\n')\n"
    "assert not m.defects, m.defects\n"
    "for part in m.walk(): assert not part.defects, part.defects\n"
    "assert str(m['subject']) == want[0], (str(m['subject']), want[0])\n"
    "for kind, w in (('plain', want[1]), ('html', want[2])):\n"
    "    b = m.get_body(preferencelist=(kind,))\n"
    "    if w == '-': assert b is None or b.get_content_subtype() != kind; continue\n"
    "    assert b is not None and b.get_content_subtype() == kind\n"
    "    got = nl(b.get_content())\n"
    "    assert got == nl(w) or got == nl(w) + '\\n', (got, w)\n"
    "to = m['to'].addresses\n"
    "assert to[0].display_name == sys.argv[5], (to[0].display_name, sys.argv[5])\n"
    "assert m['message-id'].startswith('<') and m['date'].datetime.year == 2025\n";

static void write_file(const char *path, const char *s, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    fclose(f);
}

static void python_reads(const struct mime_message *m, const char *to_name)
{
    size_t len;
    char *msg = build_ok(m, &len);
    char dir[] = "/tmp/sesame-mime-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[5][128];
    const char *names[] = { "check.py", "msg.eml", "subject", "text", "html" };
    for (int i = 0; i < 5; i++)
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
    write_file(path[0], py_check, strlen(py_check));
    write_file(path[1], msg, len);
    const char *sub = m->subject ? m->subject : "";
    write_file(path[2], sub, strlen(sub));
    write_file(path[3], m->text ? m->text : "-", strlen(m->text ? m->text : "-"));
    write_file(path[4], m->html ? m->html : "-", strlen(m->html ? m->html : "-"));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %s %s '%s'", path[0], path[1], path[2],
             path[3], path[4], to_name);
    int rc = system(cmd);
    for (int i = 0; i < 5; i++)
        unlink(path[i]);
    rmdir(dir);
    if (rc != 0)
        fail_msg("python's email package disagrees (exit %d) about:\n%s", rc, msg);
    free(msg);
}

static void python_email_package(void **state)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        fail_msg("/usr/bin/python3 is needed");
    const char *to1[] = { "Bob Example <bob@example.net>" };
    struct mime_message plain = {
        .from = "alice@example.com", .to = to1, .nto = 1, .subject = "Meeting at 10",
        .text = "Hi Bob,\n\nthe meeting is at 10.\n", .now = NOW,
    };
    python_reads(&plain, "Bob Example");

    const char *to2[] = { "J\xc3\xbcrgen M\xc3\xbcller <juergen@example.de>", "x@example.org" };
    char subject[800] = "";
    for (int i = 0; i < 12; i++)
        strcat(subject, "Gr\xc3\xbc\xc3\x9f" "e \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac ");
    strcat(subject, "\xf0\x9f\x98\x80");
    struct mime_message intl = {
        .from = "\xc3\x89quipe <team@example.com>", .to = to2, .nto = 2, .subject = subject,
        .text = "Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f" "e, = sign, trailing space \nline\n",
        .html = "<p>\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80 "
                "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e</p>",
        .now = NOW,
    };
    python_reads(&intl, "J\xc3\xbcrgen M\xc3\xbcller");

    const char *to3[] = { "\"Smith, John\" <john@example.org>" };
    struct mime_header h[] = { { "X-Tag", "t\xc3\xa4g" } };
    char longtext[4000] = "";
    for (int i = 0; i < 40; i++)
        strcat(longtext, "A line of text that is long enough to need soft breaks when encoded \xe2\x9c\x93 ");
    struct mime_message html_only = {
        .from = "s@example.com", .to = to3, .nto = 1, .subject = "HTML only", .html = longtext,
        .headers = h, .nheaders = 1, .now = NOW,
    };
    python_reads(&html_only, "Smith, John");
}

/* ---- raw checks ------------------------------------------------------- */

static int raw(const char *msg, size_t len, size_t max, bool *d, bool *i, char *err)
{
    return mime_check_raw(msg, len, max, d, i, err, 256);
}

static void raw_refused(const char *msg, size_t len, const char *why)
{
    char err[256] = "";
    bool d, i;
    if (raw(msg, len, 1 << 20, &d, &i, err) == 0)
        fail_msg("raw message accepted, should be refused for '%s'", why);
    if (!strstr(err, why))
        fail_msg("error '%s' does not say '%s'", err, why);
}

#define RAW_REFUSED(s, why) raw_refused((s), sizeof(s) - 1, (why))

static void raw_checks(void **state)
{
    char err[256];
    bool d = true, i = true;
    const char good[] = "From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_int_equal(raw(good, sizeof good - 1, 1 << 20, &d, &i, err), 0);
    assert_false(d);
    assert_false(i);
    const char full[] = "Date: Wed, 26 Nov 2025 20:00:00 +0000\r\nMessage-ID: <x@y>\r\n"
                        "From: A <a@example.com>\r\nSubject: folded\r\n more\r\n\r\n";
    assert_int_equal(raw(full, sizeof full - 1, 1 << 20, &d, &i, err), 0);
    assert_true(d);
    assert_true(i);
    /* no body at all, no empty line: still a message */
    const char headonly[] = "From: a@example.com\r\n";
    assert_int_equal(raw(headonly, sizeof headonly - 1, 1 << 20, NULL, NULL, err), 0);
    /* 8-bit body and 8-bit header (RFC 6532) are not refused here */
    const char eight[] = "From: a@example.com\r\nSubject: caf\xc3\xa9\r\n\r\n\xc3\xa9\r\n";
    assert_int_equal(raw(eight, sizeof eight - 1, 1 << 20, NULL, NULL, err), 0);

    RAW_REFUSED("From: a@example.com\nSubject: x\r\n\r\nb\r\n", "bare LF");
    RAW_REFUSED("From: a@example.com\r\n\r\nbody\nmore\r\n", "bare LF");
    RAW_REFUSED("From: a@example.com\r\n\r\nbo\rdy\r\n", "bare CR");
    RAW_REFUSED("From: a@example.com\r\n\r\nbody", "does not end with CRLF");
    RAW_REFUSED("From: a@example.com\r\n\r\nb\0dy\r\n", "NUL");
    RAW_REFUSED("Subject: x\r\n\r\nb\r\n", "no From");
    RAW_REFUSED("From: a@example.com\r\nFrom: b@example.com\r\n\r\nb\r\n", "2 From");
    RAW_REFUSED("From: a@example.com, b@example.com\r\n\r\nb\r\n", "2 addresses");
    RAW_REFUSED("From: nobody\r\n\r\nb\r\n", "not an address");
    RAW_REFUSED("From: a@example.com\r\nDate: x\r\nDate: y\r\n\r\nb\r\n", "2 Date");
    RAW_REFUSED("From: a@example.com\r\nMessage-ID: <a@b>\r\nMessage-Id: <c@d>\r\n\r\n",
                "2 Message-ID");
    RAW_REFUSED("From: a@example.com\r\nthis is no field\r\n\r\nb\r\n", "not fields");
    RAW_REFUSED("\r\nFrom: a@example.com\r\n", "no header section");
    assert_int_equal(raw("", 0, 100, NULL, NULL, err), -1);
    assert_non_null(strstr(err, "empty"));

    /* line length: 998 + CRLF passes, 999 does not */
    char *msg = malloc(2000);
    size_t n = (size_t)snprintf(msg, 2000, "From: a@example.com\r\n\r\n");
    memset(msg + n, 'z', 998);
    memcpy(msg + n + 998, "\r\n", 2);
    assert_int_equal(raw(msg, n + 1000, 1 << 20, NULL, NULL, err), 0);
    memset(msg + n, 'z', 999);
    memcpy(msg + n + 999, "\r\n", 2);
    assert_int_equal(raw(msg, n + 1001, 1 << 20, NULL, NULL, err), -1);
    assert_non_null(strstr(err, "999 octets"));
    /* size */
    assert_int_equal(raw(good, sizeof good - 1, sizeof good - 1, NULL, NULL, err), 0);
    assert_int_equal(raw(good, sizeof good - 1, sizeof good - 2, NULL, NULL, err), -1);
    assert_non_null(strstr(err, "over the limit"));
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_text),
        cmocka_unit_test(utf8_text_and_subject),
        cmocka_unit_test(html_mostly_non_ascii_is_base64),
        cmocka_unit_test(alternative),
        cmocka_unit_test(boundary_never_in_bodies),
        cmocka_unit_test(folding),
        cmocka_unit_test(line_ends_and_7bit_limits),
        cmocka_unit_test(extra_headers),
        cmocka_unit_test(refused),
        cmocka_unit_test(encode_header),
        cmocka_unit_test(python_email_package),
        cmocka_unit_test(raw_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
