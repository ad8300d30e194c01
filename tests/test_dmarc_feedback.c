/* DMARC aggregate reports received from other receivers
 * (auth/dmarc_feedback.c, util/zip_read.c): the samples of
 * tests/data/dmarc/ modelled on Google (plain XML, and the report mail with
 * a zip attachment), Microsoft (gzip, xsd/xsi namespace declarations,
 * envelope_to, reason), Yahoo (zip, CRLF) and the DMARCbis namespace with
 * extensions parse with their values; the JSON and the summary; reports
 * attached to built mails. Hostile input: DOCTYPE, entity bomb, external
 * and undefined entities, gzip and zip bombs, truncated and corrupt gzip
 * and zip, encrypted / zip64 / multi-disk / unknown-method zips, absurd
 * counts, bad addresses, deep nesting, invalid UTF-8, NULs, oversized
 * text, too many records, missing parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "auth/dmarc_feedback.h"
#include "util/buf.h"
#include "util/utf8.h"

/* ---- helpers ---------------------------------------------------------- */

static unsigned char *load(const char *name, size_t *len)
{
    const char *dir = getenv("SESAME_TEST_DATA");
    if (!dir)
        fail_msg("SESAME_TEST_DATA is not set");
    char path[512];
    snprintf(path, sizeof path, "%s/dmarc/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    s[n] = '\0';
    *len = (size_t)n;
    return s;
}

static void parse_ok(const void *data, size_t len, struct dmarc_feedback *f)
{
    char err[256] = "";
    if (dmarc_feedback_parse(data, len, f, err, sizeof err) != 0)
        fail_msg("parse failed: %s", err);
}

static void parse_str_ok(const char *xml, struct dmarc_feedback *f)
{
    parse_ok(xml, strlen(xml), f);
}

/* Refused, with want in the reason; out holds nothing afterwards. */
static void parse_fails(const void *data, size_t len, const char *want)
{
    struct dmarc_feedback f;
    char err[256] = "";
    if (dmarc_feedback_parse(data, len, &f, err, sizeof err) == 0) {
        dmarc_feedback_free(&f);
        fail_msg("parsed, want a refusal with '%s'", want);
    }
    if (!strstr(err, want))
        fail_msg("reason '%s', want '%s'", err, want);
    assert_null(f.rows);
    assert_null(f.mem);
    assert_int_equal(f.nrows, 0);
    dmarc_feedback_free(&f); /* harmless */
}

static void parse_str_fails(const char *xml, const char *want)
{
    parse_fails(xml, strlen(xml), want);
}

static unsigned char *gzip_bytes(const void *data, size_t len, size_t *outlen)
{
    z_stream zs = { 0 };
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (unsigned char *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *outlen = zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* Raw deflate (as in a zip member). */
static unsigned char *deflate_raw(const void *data, size_t len, size_t *outlen)
{
    z_stream zs = { 0 };
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (unsigned char *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *outlen = zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* size bytes of zeros, compressed (gzip when gz, else raw deflate) without
 * ever holding them: a bomb. */
static unsigned char *zeros_compressed(size_t size, bool gz, size_t *outlen)
{
    z_stream zs = { 0 };
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, gz ? 15 + 16 : -15, 9,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    static unsigned char zero[1 << 20];
    size_t cap = size / 500 + 4096;
    unsigned char *out = malloc(cap);
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    for (size_t done = 0; done < size; done += sizeof zero) {
        zs.next_in = zero;
        zs.avail_in = sizeof zero;
        int flush = done + sizeof zero >= size ? Z_FINISH : Z_NO_FLUSH;
        int rc = deflate(&zs, flush);
        assert_true(rc == Z_OK || rc == Z_STREAM_END);
        assert_int_equal(zs.avail_in, 0);
    }
    *outlen = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static void put16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

struct zmember {
    const char *name;
    const void *data;
    size_t len;
    bool deflate;
    uint32_t flags;              /* general purpose flags (bit 0: encrypted) */
    uint32_t method;             /* overrides the method when not 0 */
    uint32_t usize;              /* overrides the declared size when not 0 */
};

/* A zip archive of the members: local headers and data, the central
 * directory, the end record. */
static unsigned char *zip_build(const struct zmember *m, size_t n, size_t *outlen)
{
    struct buf b;
    buf_init(&b, 64 << 20);
    uint32_t offs[16];
    unsigned char *comp[16];
    size_t clen[16];
    for (size_t i = 0; i < n; i++) {
        comp[i] = m[i].deflate ? deflate_raw(m[i].data, m[i].len, &clen[i]) : NULL;
        if (!comp[i]) {
            comp[i] = malloc(m[i].len + 1);
            memcpy(comp[i], m[i].data, m[i].len);
            clen[i] = m[i].len;
        }
        uint32_t crc = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        uint32_t method = m[i].method ? m[i].method : m[i].deflate ? 8 : 0;
        uint32_t usize = m[i].usize ? m[i].usize : (uint32_t)m[i].len;
        unsigned char h[30] = { 0 };
        put32(h, 0x04034b50);
        put16(h + 4, 20);
        put16(h + 6, m[i].flags);
        put16(h + 8, method);
        put32(h + 14, crc);
        put32(h + 18, (uint32_t)clen[i]);
        put32(h + 22, usize);
        put16(h + 26, (uint32_t)strlen(m[i].name));
        offs[i] = (uint32_t)b.len;
        assert_int_equal(buf_append(&b, h, sizeof h), 0);
        assert_int_equal(buf_append_str(&b, m[i].name), 0);
        assert_int_equal(buf_append(&b, comp[i], clen[i]), 0);
    }
    size_t cd = b.len;
    for (size_t i = 0; i < n; i++) {
        uint32_t method = m[i].method ? m[i].method : m[i].deflate ? 8 : 0;
        uint32_t usize = m[i].usize ? m[i].usize : (uint32_t)m[i].len;
        unsigned char h[46] = { 0 };
        put32(h, 0x02014b50);
        put16(h + 4, 20);
        put16(h + 6, 20);
        put16(h + 8, m[i].flags);
        put16(h + 10, method);
        put32(h + 16, (uint32_t)crc32(0, m[i].data, (uInt)m[i].len));
        put32(h + 20, (uint32_t)clen[i]);
        put32(h + 24, usize);
        put16(h + 28, (uint32_t)strlen(m[i].name));
        put32(h + 42, offs[i]);
        assert_int_equal(buf_append(&b, h, sizeof h), 0);
        assert_int_equal(buf_append_str(&b, m[i].name), 0);
        free(comp[i]);
    }
    unsigned char e[22] = { 0 };
    put32(e, 0x06054b50);
    put16(e + 8, (uint32_t)n);
    put16(e + 10, (uint32_t)n);
    put32(e + 12, (uint32_t)(b.len - cd));
    put32(e + 16, (uint32_t)cd);
    assert_int_equal(buf_append(&b, e, sizeof e), 0);
    *outlen = b.len;
    return (unsigned char *)buf_detach(&b);
}

static char *b64(const void *data, size_t len)
{
    size_t n = 4 * ((len + 2) / 3);
    unsigned char *raw = malloc(n + 1);
    EVP_EncodeBlock(raw, data, (int)len);
    /* 76-character lines */
    char *out = malloc(n + 2 * (n / 76 + 1) + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i += 76) {
        size_t k = n - i < 76 ? n - i : 76;
        memcpy(out + w, raw + i, k);
        w += k;
        out[w++] = '\r';
        out[w++] = '\n';
    }
    out[w] = '\0';
    free(raw);
    return out;
}

/* A minimal report around some records (or other elements). */
static char *report_with(const char *policy_extra, const char *records)
{
    struct buf b;
    buf_init(&b, 64 << 20);
    assert_int_equal(buf_printf(&b,
        "<?xml version=\"1.0\"?>\n<feedback><report_metadata><org_name>test.example</org_name>"
        "<email>r@test.example</email><report_id>id-1</report_id><date_range>"
        "<begin>1714521600</begin><end>1714607999</end></date_range></report_metadata>"
        "<policy_published><domain>example.com</domain><p>none</p>%s</policy_published>",
        policy_extra), 0);
    assert_int_equal(buf_append_str(&b, records), 0);
    assert_int_equal(buf_append_str(&b, "</feedback>\n"), 0);
    return buf_detach(&b);
}

static const char rec_ok[] =
    "<record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated>"
    "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>"
    "<identifiers><header_from>example.com</header_from></identifiers>"
    "<auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results>"
    "</record>";

static char *one_record(const char *ip, const char *count)
{
    char rec[512];
    snprintf(rec, sizeof rec, "<record><row><source_ip>%s</source_ip><count>%s</count></row>"
             "<identifiers><header_from>example.com</header_from></identifiers></record>",
             ip, count);
    return report_with("", rec);
}

/* ---- the samples ------------------------------------------------------ */

static void check_google(const struct dmarc_feedback *f)
{
    assert_string_equal(f->org_name, "google.com");
    assert_string_equal(f->email, "noreply-dmarc-support@google.com");
    assert_string_equal(f->report_id, "8265837591039476310");
    assert_int_equal(f->begin, 1714521600);
    assert_int_equal(f->end, 1714607999);
    assert_string_equal(f->domain, "example.com");
    assert_string_equal(f->adkim, "r");
    assert_string_equal(f->aspf, "r");
    assert_string_equal(f->p, "none");
    assert_string_equal(f->sp, "none");
    assert_string_equal(f->fo, "");
    assert_int_equal(f->pct, 100);
    assert_int_equal(f->nrows, 5);
    assert_int_equal(f->nskipped, 0);

    const struct dmarc_feedback_row *r = &f->rows[0];
    assert_string_equal(r->source_ip, "198.51.100.25");
    assert_int_equal(r->count, 120);
    assert_string_equal(r->disposition, "none");
    assert_string_equal(r->dkim_eval, "pass");
    assert_string_equal(r->spf_eval, "pass");
    assert_string_equal(r->reason_type, "");
    assert_string_equal(r->reason_comment, "");
    assert_string_equal(r->header_from, "example.com");
    assert_string_equal(r->envelope_from, "");
    assert_string_equal(r->envelope_to, "");
    assert_int_equal(r->ndkim, 1);
    assert_string_equal(r->dkim[0].domain, "example.com");
    assert_string_equal(r->dkim[0].selector, "s2024");
    assert_string_equal(r->dkim[0].result, "pass");
    assert_int_equal(r->nspf, 1);
    assert_string_equal(r->spf[0].domain, "example.com");
    assert_string_equal(r->spf[0].scope, "");
    assert_string_equal(r->spf[0].result, "pass");

    r = &f->rows[1]; /* an ESP: two signatures, SPF on the ESP's bounce domain */
    assert_string_equal(r->source_ip, "192.0.2.77");
    assert_int_equal(r->count, 35);
    assert_string_equal(r->spf_eval, "fail");
    assert_int_equal(r->ndkim, 2);
    assert_string_equal(r->dkim[1].domain, "mail.esp.example");
    assert_string_equal(r->dkim[1].selector, "k1");
    assert_string_equal(r->spf[0].domain, "bounces.esp.example");

    r = &f->rows[2]; /* spoofed, no signature */
    assert_string_equal(r->source_ip, "203.0.113.9");
    assert_int_equal(r->ndkim, 0);
    assert_null(r->dkim);
    assert_string_equal(r->spf[0].result, "fail");

    assert_string_equal(f->rows[3].source_ip, "2001:db8::25"); /* canonical form */
    assert_string_equal(f->rows[4].header_from, "news.example.com");
}

static void google_xml(void **state)
{
    size_t len;
    unsigned char *data = load("google.xml", &len);
    struct dmarc_feedback f;
    parse_ok(data, len, &f);
    check_google(&f);
    dmarc_feedback_free(&f);
    dmarc_feedback_free(&f); /* twice: harmless */
    free(data);
}

static void microsoft_gz(void **state)
{
    size_t len;
    unsigned char *data = load("microsoft.xml.gz", &len);
    assert_true(data[0] == 0x1f && data[1] == 0x8b);
    struct dmarc_feedback f;
    parse_ok(data, len, &f);
    assert_string_equal(f.org_name, "Enterprise Outlook");
    assert_string_equal(f.email, "dmarcreport@microsoft.com");
    assert_string_equal(f.report_id, "4f1d0c2a8e7b4c3d9a6b5e4f3c2d1a0b");
    assert_int_equal(f.end, 1714608000);
    assert_string_equal(f.p, "quarantine");
    assert_string_equal(f.sp, "quarantine");
    assert_string_equal(f.fo, "1");
    assert_int_equal(f.nrows, 3);
    const struct dmarc_feedback_row *r = &f.rows[0];
    assert_string_equal(r->envelope_to, "contoso.example");
    assert_string_equal(r->envelope_from, "example.com");
    assert_string_equal(r->header_from, "example.com");
    assert_string_equal(r->spf[0].scope, "mfrom");
    assert_string_equal(r->dkim[0].selector, "s2024");
    r = &f.rows[1];
    assert_string_equal(r->source_ip, "203.0.113.200");
    assert_string_equal(r->reason_type, "forwarded");
    assert_string_equal(r->reason_comment, "arc=pass as.1.forwarder.example=pass");
    assert_string_equal(r->spf[0].domain, "forwarder.example");
    assert_string_equal(r->dkim[0].result, "fail");
    r = &f.rows[2];
    assert_string_equal(r->disposition, "quarantine");
    assert_string_equal(r->envelope_from, "example.com"); /* "Example.COM" lower-cased */
    assert_string_equal(r->dkim[0].result, "none");
    assert_string_equal(r->dkim[0].selector, "");
    assert_int_equal(r->count, 4);
    dmarc_feedback_free(&f);
    free(data);
}

static void yahoo_zip(void **state)
{
    size_t len;
    unsigned char *data = load("yahoo.zip", &len);
    struct dmarc_feedback f;
    parse_ok(data, len, &f);
    assert_string_equal(f.org_name, "Yahoo");
    assert_string_equal(f.report_id, "1714608512.592837");
    assert_string_equal(f.p, "reject");
    assert_string_equal(f.sp, "");
    assert_int_equal(f.nrows, 2);
    assert_string_equal(f.rows[0].dkim[0].selector, "s2024");
    const struct dmarc_feedback_row *r = &f.rows[1];
    assert_string_equal(r->source_ip, "203.0.113.50");
    assert_int_equal(r->count, 1);
    assert_string_equal(r->disposition, "reject");
    assert_int_equal(r->ndkim, 0);
    assert_int_equal(r->nspf, 1);
    assert_string_equal(r->spf[0].domain, "spoof.example");
    assert_string_equal(r->spf[0].result, "none");
    dmarc_feedback_free(&f);
    free(data);
}

static void dmarcbis_namespace(void **state)
{
    size_t len;
    unsigned char *data = load("dmarcbis.xml", &len);
    struct dmarc_feedback f;
    parse_ok(data, len, &f);
    assert_string_equal(f.org_name, "Receiver Example");
    assert_string_equal(f.adkim, "s");
    assert_string_equal(f.aspf, "r");
    assert_int_equal(f.nrows, 1);
    const struct dmarc_feedback_row *r = &f.rows[0];
    assert_int_equal(r->count, 11); /* <ext:count>999</ext:count> is an extension */
    assert_string_equal(r->source_ip, "2001:db8::25");
    assert_string_equal(r->envelope_from, "bounce.example.com");
    assert_string_equal(r->dkim[0].result, "pass");
    assert_string_equal(r->spf[0].scope, "mfrom");
    assert_string_equal(r->spf[0].result, "softfail");
    dmarc_feedback_free(&f);
    free(data);

    /* any namespace on the root; its own elements are read */
    const char *prefixed =
        "<d:feedback xmlns:d=\"http://dmarc.org/dmarc-xml/0.1\"><d:report_metadata>"
        "<d:org_name>o</d:org_name><d:report_id>i</d:report_id><d:date_range><d:begin>1</d:begin>"
        "<d:end>2</d:end></d:date_range></d:report_metadata><d:policy_published>"
        "<d:domain>Example.COM</d:domain></d:policy_published><d:record><d:row>"
        "<d:source_ip>192.0.2.1</d:source_ip><d:count>5</d:count></d:row></d:record>"
        "</d:feedback>";
    parse_str_ok(prefixed, &f);
    assert_string_equal(f.domain, "example.com");
    assert_int_equal(f.rows[0].count, 5);
    assert_string_equal(f.p, "");
    assert_string_equal(f.rows[0].header_from, "");
    dmarc_feedback_free(&f);
}

static void google_mail(void **state)
{
    size_t len;
    unsigned char *data = load("google.eml", &len);
    struct dmarc_feedback f[4];
    char err[256] = "";
    assert_int_equal(dmarc_feedback_from_message((char *)data, len, f, 4, err, sizeof err), 1);
    check_google(&f[0]);
    dmarc_feedback_free(&f[0]);

    /* forwarded as message/rfc822 */
    char *fwd = malloc(len + 512);
    int n = snprintf(fwd, len + 512,
                     "From: owner@example.com\r\nSubject: Fwd: report\r\nContent-Type: "
                     "multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n"
                     "\r\nsee attached\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n%s\r\n"
                     "--b--\r\n", (char *)data);
    assert_int_equal(dmarc_feedback_from_message(fwd, (size_t)n, f, 4, err, sizeof err), 1);
    check_google(&f[0]);
    dmarc_feedback_free(&f[0]);
    free(fwd);
    free(data);
}

static void built_mail(void **state)
{
    size_t glen, mlen, ylen, gzlen;
    unsigned char *g = load("google.xml", &glen);
    unsigned char *m = load("microsoft.xml.gz", &mlen);
    unsigned char *y = load("yahoo.zip", &ylen);
    unsigned char *gz = gzip_bytes(g, glen, &gzlen);
    char *mb = b64(m, mlen), *yb = b64(y, ylen), *gb = b64(gz, gzlen);
    size_t cap = strlen(mb) + strlen(yb) + strlen(gb) + glen + 4096;
    char *msg = malloc(cap);
    int n = snprintf(msg, cap,
        "From: dmarc@receiver.example\nTo: rua@example.com\nSubject: reports\n"
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n"
        "--XX\nContent-Type: text/plain\n\nhello <feedback> is not here\n"
        "--XX\nContent-Type: application/gzip; name=\"ms.xml.gz\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n"
        "--XX\nContent-Type: application/octet-stream\n"
        "Content-Disposition: attachment; filename=\"yahoo.zip\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n"
        "--XX\nContent-Type: text/xml; charset=utf-8\n\n%s\n"
        "--XX\nContent-Type: application/x-gzip\nContent-Transfer-Encoding: base64\n\n%s\n"
        "--XX--\n", mb, yb, (char *)g, gb);
    struct dmarc_feedback f[8];
    char err[256] = "";
    assert_int_equal(dmarc_feedback_from_message(msg, (size_t)n, f, 8, err, sizeof err), 4);
    assert_string_equal(f[0].org_name, "Enterprise Outlook");
    assert_string_equal(f[1].org_name, "Yahoo");
    check_google(&f[2]);
    check_google(&f[3]);
    for (size_t i = 0; i < 4; i++)
        dmarc_feedback_free(&f[i]);
    /* max is honoured */
    assert_int_equal(dmarc_feedback_from_message(msg, (size_t)n, f, 1, err, sizeof err), 1);
    assert_string_equal(f[0].org_name, "Enterprise Outlook");
    dmarc_feedback_free(&f[0]);
    free(msg);

    /* a broken attachment next to a good one: the good one */
#define TWO_PARTS                                                                          \
    "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/zip; "      \
    "name=broken.zip\nContent-Transfer-Encoding: base64\n\nUEsDBAAAAAA=\n--b\n"               \
    "Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n\n%s\n--b--\n"
    cap = strlen(gb) + 512;
    msg = malloc(cap);
    n = snprintf(msg, cap, TWO_PARTS, gb);
    assert_int_equal(dmarc_feedback_from_message(msg, (size_t)n, f, 8, err, sizeof err), 1);
    check_google(&f[0]);
    dmarc_feedback_free(&f[0]);
    free(msg);

    /* only broken: the first failure */
    const char *bad =
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/zip; "
        "name=\"broken.zip\"\nContent-Transfer-Encoding: base64\n\nUEsDBAAAAAA=\n--b--\n";
    assert_int_equal(dmarc_feedback_from_message(bad, strlen(bad), f, 8, err, sizeof err), 0);
    assert_non_null(strstr(err, "attachment broken.zip: the zip archive is truncated"));
    const char *badb64 =
        "Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n\n!!!!\n";
    assert_int_equal(dmarc_feedback_from_message(badb64, strlen(badb64), f, 8, err,
                                                  sizeof err), 0);
    assert_non_null(strstr(err, "encoding is invalid"));
    /* an attachment above the cap */
    size_t hlen = 64 + DMARC_FEEDBACK_MAX_INPUT + 16;
    char *huge = malloc(hlen);
    int hn = snprintf(huge, hlen, "Content-Type: application/xml; name=big.xml\n\n");
    memset(huge + hn, ' ', hlen - (size_t)hn);
    assert_int_equal(dmarc_feedback_from_message(huge, hlen, f, 8, err, sizeof err), 0);
    assert_string_equal(err, "attachment big.xml: the attachment is larger than 32 MiB");
    free(huge);
    /* nothing attached */
    const char *none = "From: a@example.com\nSubject: hi\n\nno report here\n";
    assert_int_equal(dmarc_feedback_from_message(none, strlen(none), f, 8, err, sizeof err), 0);
    assert_non_null(strstr(err, "no DMARC report is attached"));
    /* a NUL in the message */
    assert_int_equal(dmarc_feedback_from_message("a: b\n\n\0x", 8, f, 8, err, sizeof err), 0);
    assert_true(err[0] != '\0');

    free(g);
    free(m);
    free(y);
    free(gz);
    free(mb);
    free(yb);
    free(gb);
}

/* ---- JSON and summary ------------------------------------------------- */

static void json_shape(void **state)
{
    size_t len;
    unsigned char *data = load("microsoft.xml.gz", &len);
    struct dmarc_feedback f;
    parse_ok(data, len, &f);
    json_t *j = dmarc_feedback_json(&f);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "org_name")), "Enterprise Outlook");
    assert_string_equal(json_string_value(json_object_get(j, "begin")), "2024-05-01T00:00:00Z");
    assert_string_equal(json_string_value(json_object_get(j, "end")), "2024-05-02T00:00:00Z");
    json_t *pol = json_object_get(j, "policy");
    assert_string_equal(json_string_value(json_object_get(pol, "domain")), "example.com");
    assert_int_equal(json_integer_value(json_object_get(pol, "pct")), 100);
    assert_string_equal(json_string_value(json_object_get(pol, "fo")), "1");
    json_t *recs = json_object_get(j, "records");
    assert_int_equal(json_array_size(recs), 3);
    json_t *r0 = json_array_get(recs, 0), *r1 = json_array_get(recs, 1);
    assert_string_equal(json_string_value(json_object_get(r0, "source_ip")), "198.51.100.25");
    assert_int_equal(json_integer_value(json_object_get(r0, "count")), 42);
    assert_string_equal(json_string_value(json_object_get(r0, "dkim")), "pass");
    assert_true(json_is_null(json_object_get(r0, "reason")));
    json_t *reason = json_object_get(r1, "reason");
    assert_string_equal(json_string_value(json_object_get(reason, "type")), "forwarded");
    json_t *auth = json_object_get(r1, "auth_results");
    json_t *spf0 = json_array_get(json_object_get(auth, "spf"), 0);
    assert_string_equal(json_string_value(json_object_get(spf0, "scope")), "mfrom");
    assert_int_equal(json_integer_value(json_object_get(j, "skipped_records")), 0);
    assert_true(json_is_null(json_object_get(j, "skipped_reason")));
    json_decref(j);
    dmarc_feedback_free(&f);
    free(data);

    parse_str_ok("<feedback><report_metadata><org_name>o</org_name><report_id>i</report_id>"
                 "<date_range><begin>0</begin><end>0</end></date_range></report_metadata>"
                 "<policy_published><domain>d.example</domain></policy_published><record><row>"
                 "<source_ip>::1</source_ip><count>0</count></row></record></feedback>", &f);
    j = dmarc_feedback_json(&f);
    assert_true(json_is_null(json_object_get(j, "email")));
    json_t *r = json_array_get(json_object_get(j, "records"), 0);
    assert_true(json_is_null(json_object_get(r, "header_from")));
    assert_true(json_is_null(json_object_get(r, "disposition")));
    assert_int_equal(json_array_size(json_object_get(json_object_get(r, "auth_results"),
                                                     "dkim")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "begin")), "1970-01-01T00:00:00Z");
    json_decref(j);
    dmarc_feedback_free(&f);
}

static json_t *source(json_t *sum, size_t i) { return json_array_get(json_object_get(sum, "sources"), i); }
static json_int_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }
static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static void summary(void **state)
{
    const char *files[] = { "google.xml", "microsoft.xml.gz", "yahoo.zip" };
    struct dmarc_feedback f[3];
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        unsigned char *data = load(files[i], &len);
        parse_ok(data, len, &f[i]);
        free(data);
    }
    json_t *s = dmarc_feedback_summary(f, 3);
    assert_non_null(s);
    assert_string_equal(jstr(s, "domain"), "example.com");
    assert_int_equal(jint(s, "reports"), 3);
    assert_string_equal(jstr(s, "begin"), "2024-05-01T00:00:00Z");
    assert_string_equal(jstr(s, "end"), "2024-05-02T00:00:00Z");
    assert_int_equal(jint(s, "messages"), 228);
    assert_int_equal(jint(s, "passed"), 214);
    assert_int_equal(jint(s, "failed"), 14);
    static const struct { const char *ip; json_int_t m, p, f, dk, sp; } want[] = {
        { "198.51.100.25", 176, 176, 0, 176, 176 },
        { "192.0.2.77", 35, 35, 0, 35, 0 },
        { "203.0.113.9", 11, 0, 11, 0, 0 },
        { "2001:db8::25", 3, 3, 0, 0, 3 },
        { "203.0.113.200", 2, 0, 2, 0, 0 },
        { "203.0.113.50", 1, 0, 1, 0, 0 },
    };
    assert_int_equal(json_array_size(json_object_get(s, "sources")), 6);
    for (size_t i = 0; i < 6; i++) {
        json_t *src = source(s, i);
        assert_string_equal(jstr(src, "source_ip"), want[i].ip);
        assert_int_equal(jint(src, "messages"), want[i].m);
        assert_int_equal(jint(src, "passed"), want[i].p);
        assert_int_equal(jint(src, "failed"), want[i].f);
        assert_int_equal(jint(src, "dkim_passed"), want[i].dk);
        assert_int_equal(jint(src, "spf_passed"), want[i].sp);
    }
    json_t *hf = json_object_get(source(s, 0), "header_from");
    assert_int_equal(json_array_size(hf), 2);
    assert_string_equal(json_string_value(json_array_get(hf, 0)), "example.com");
    assert_string_equal(json_string_value(json_array_get(hf, 1)), "news.example.com");
    json_t *d = json_object_get(source(s, 2), "dispositions");
    assert_int_equal(jint(d, "none"), 7);
    assert_int_equal(jint(d, "quarantine"), 4);
    json_t *reasons = json_object_get(source(s, 4), "reasons");
    assert_string_equal(json_string_value(json_array_get(reasons, 0)), "forwarded");
    json_t *fails = json_object_get(s, "failing_sources");
    assert_int_equal(json_array_size(fails), 3);
    assert_string_equal(json_string_value(json_array_get(fails, 0)), "203.0.113.9");
    assert_string_equal(json_string_value(json_array_get(fails, 1)), "203.0.113.200");
    assert_string_equal(json_string_value(json_array_get(fails, 2)), "203.0.113.50");
    json_decref(s);

    /* one report alone */
    s = dmarc_feedback_summary(&f[2], 1);
    assert_int_equal(jint(s, "messages"), 10);
    assert_int_equal(jint(s, "failed"), 1);
    assert_string_equal(jstr(source(s, 1), "source_ip"), "203.0.113.50");
    json_decref(s);

    /* reports for different domains: no common domain */
    snprintf(f[1].domain, sizeof f[1].domain, "other.example");
    s = dmarc_feedback_summary(f, 2);
    assert_true(json_is_null(json_object_get(s, "domain")));
    json_decref(s);

    /* none */
    s = dmarc_feedback_summary(NULL, 0);
    assert_int_equal(jint(s, "messages"), 0);
    assert_true(json_is_null(json_object_get(s, "domain")));
    assert_int_equal(json_array_size(json_object_get(s, "sources")), 0);
    json_decref(s);
    for (size_t i = 0; i < 3; i++)
        dmarc_feedback_free(&f[i]);
}

static void summary_saturates(void **state)
{
    /* 10000 reports of the largest believable count */
    char *xml = one_record("192.0.2.9", "1000000000000");
    struct dmarc_feedback one;
    parse_str_ok(xml, &one);
    assert_int_equal(one.rows[0].count, 1000000000000ull);
    struct dmarc_feedback *many = calloc(10000, sizeof *many);
    for (size_t i = 0; i < 10000; i++)
        many[i] = one; /* shared rows: read only */
    json_t *s = dmarc_feedback_summary(many, 10000);
    assert_int_equal(jint(s, "messages"), 10000000000000000LL);
    assert_int_equal(jint(s, "failed"), 10000000000000000LL);
    json_decref(s);
    /* counts a caller filled in beyond the parser's cap: sums saturate */
    one.rows[0].count = UINT64_MAX / 2 + 1;
    s = dmarc_feedback_summary(many, 3);
    assert_int_equal(jint(s, "messages"), INT64_MAX);
    assert_int_equal(jint(source(s, 0), "failed"), INT64_MAX);
    json_decref(s);
    free(many);
    dmarc_feedback_free(&one);
    free(xml);
}

/* ---- hostile XML ------------------------------------------------------ */

static void doctype_refused(void **state)
{
    const char *bomb =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
        " <!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
        "]>\n<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>";
    parse_str_fails(bomb, "a DOCTYPE is not allowed in a DMARC report");
    parse_str_fails("<!DOCTYPE feedback SYSTEM \"http://attacker.example/x.dtd\"><feedback/>",
                    "a DOCTYPE is not allowed");
    parse_str_fails("<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY xxe SYSTEM "
                    "\"file:///etc/passwd\">]><feedback><report_metadata><org_name>&xxe;"
                    "</org_name></report_metadata></feedback>", "a DOCTYPE is not allowed");
    parse_str_fails("<!DOCTYPE feedback><feedback/>", "a DOCTYPE is not allowed");
    /* an entity without a DOCTYPE is undefined: not well-formed */
    char *xml = report_with("", "<record><row><source_ip>&xxe;</source_ip></row></record>");
    parse_str_fails(xml, "undefined entity");
    free(xml);
    /* the predefined entities and character references are fine */
    xml = report_with("", "<record><row><source_ip>192.0.2.&#49;</source_ip><count>1</count>"
                          "<policy_evaluated><reason><type>other</type><comment>a &amp; b "
                          "&lt;c&gt;</comment></reason></policy_evaluated></row></record>");
    struct dmarc_feedback f;
    parse_str_ok(xml, &f);
    assert_string_equal(f.rows[0].source_ip, "192.0.2.1");
    assert_string_equal(f.rows[0].reason_comment, "a & b <c>");
    dmarc_feedback_free(&f);
    free(xml);
}

static void structure_refused(void **state)
{
    parse_str_fails("", "empty");
    parse_str_fails("   \n", "not a DMARC report");
    parse_str_fails("hello", "not a DMARC report: neither XML, gzip nor zip");
    parse_str_fails("<html><body/></html>", "the root element is <html>, not <feedback>");
    parse_str_fails("<feedback/>", "no <report_metadata>");
    parse_str_fails("<feedback><report_metadata><org_name>x</org_name>", "not well-formed");
    parse_str_fails("<feedback><report_metadata/></feedback>", "no <org_name>");
    parse_str_fails("<feedback><report_metadata><org_name>o</org_name></report_metadata>"
                    "</feedback>", "no <report_id>");
    parse_str_fails("<feedback><report_metadata><org_name>o</org_name><report_id>i</report_id>"
                    "</report_metadata></feedback>", "no <date_range>");
    parse_str_fails("<feedback><report_metadata><org_name>o</org_name><report_id>i</report_id>"
                    "<date_range><begin>5</begin><end>4</end></date_range></report_metadata>"
                    "</feedback>", "ends before it begins");
    parse_str_fails("<feedback><report_metadata><org_name>o</org_name><report_id>i</report_id>"
                    "<date_range><begin>yesterday</begin><end>4</end></date_range>"
                    "</report_metadata></feedback>", "<begin> of the date range is not a time");
    parse_str_fails("<feedback><report_metadata><org_name>o</org_name><report_id>i</report_id>"
                    "<date_range><begin>1</begin><end>-4</end></date_range></report_metadata>"
                    "</feedback>", "<end> of the date range is not a time");
    parse_str_fails("<feedback><report_metadata><org_name>o</org_name><report_id>i</report_id>"
                    "<date_range><begin>1</begin><end>4</end></date_range></report_metadata>"
                    "</feedback>", "no <policy_published>");
    parse_str_fails("<feedback><report_metadata><org_name>o</org_name><report_id>i</report_id>"
                    "<date_range><begin>1</begin><end>4</end></date_range></report_metadata>"
                    "<policy_published><p>none</p></policy_published></feedback>",
                    "no <domain> in <policy_published>");
    char *xml = report_with("", "");
    parse_str_fails(xml, "no <record>");
    free(xml);
    xml = report_with("", "<report_metadata/>");
    parse_str_fails(xml, "more than one <report_metadata>");
    free(xml);
    xml = report_with("", "<policy_published/>");
    parse_str_fails(xml, "more than one <policy_published>");
    free(xml);
    char longdom[400];
    memset(longdom, 'a', 300);
    longdom[300] = '\0';
    char policy[512];
    snprintf(policy, sizeof policy, "<domain>%s</domain>", longdom);
    xml = report_with(policy, rec_ok);
    parse_str_fails(xml, "domain is longer than 253");
    free(xml);
}

static void nesting(void **state)
{
    struct buf deep;
    buf_init(&deep, 1 << 20);
    for (int i = 0; i < 40; i++)
        assert_int_equal(buf_append_str(&deep, "<x>"), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(buf_append_str(&deep, "</x>"), 0);
    char *xml = report_with("", buf_cstr(&deep));
    parse_str_fails(xml, "nested deeper than 32 levels");
    free(xml);
    /* 25 levels of unknown elements inside a record: ignored, fine */
    buf_reset(&deep);
    assert_int_equal(buf_append_str(&deep, "<record><row><source_ip>192.0.2.3</source_ip>"
                                           "<count>2</count>"), 0);
    for (int i = 0; i < 25; i++)
        assert_int_equal(buf_append_str(&deep, "<x><count>7</count>"), 0);
    for (int i = 0; i < 25; i++)
        assert_int_equal(buf_append_str(&deep, "</x>"), 0);
    assert_int_equal(buf_append_str(&deep, "</row></record>"), 0);
    xml = report_with("", buf_cstr(&deep));
    struct dmarc_feedback f;
    parse_str_ok(xml, &f);
    assert_int_equal(f.rows[0].count, 2);
    dmarc_feedback_free(&f);
    free(xml);
    buf_free(&deep);
}

static void bytes_refused(void **state)
{
    /* NUL */
    char *xml = report_with("", rec_ok);
    size_t len = strlen(xml);
    xml[60] = '\0';
    parse_fails(xml, len, "a NUL octet is not allowed");
    free(xml);
    /* invalid UTF-8 */
    xml = report_with("", "<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row>"
                          "<identifiers><header_from>\xff\xfe.example</header_from>"
                          "</identifiers></record>");
    parse_str_fails(xml, "not well-formed");
    free(xml);
    xml = report_with("", "<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row>"
                          "<identifiers><header_from>\xed\xa0\x80.example</header_from>"
                          "</identifiers></record>"); /* a surrogate */
    parse_str_fails(xml, "not well-formed");
    free(xml);
    /* UTF-16 */
    parse_fails("\xff\xfe<\0f\0", 6, "UTF-16");
    /* ISO-8859-1 is converted */
    struct dmarc_feedback f;
    parse_str_ok("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><feedback><report_metadata>"
                 "<org_name>R\xe9seau</org_name><report_id>1</report_id><date_range><begin>1"
                 "</begin><end>2</end></date_range></report_metadata><policy_published><domain>"
                 "x.example</domain></policy_published><record><row><source_ip>192.0.2.1"
                 "</source_ip><count>1</count></row></record></feedback>", &f);
    assert_string_equal(f.org_name, "R\xc3\xa9seau");
    dmarc_feedback_free(&f);
    /* a BOM and white space before the declaration */
    xml = report_with("", rec_ok);
    char *bom = malloc(strlen(xml) + 8);
    memcpy(bom, "\xef\xbb\xbf", 3);
    memcpy(bom + 3, xml, strlen(xml) + 1);
    parse_str_ok(bom, &f);
    assert_int_equal(f.nrows, 1);
    dmarc_feedback_free(&f);
    bom[3] = '\n';                    /* white space before the XML declaration: tolerated */
    memmove(bom + 4, xml, strlen(xml) + 1);
    parse_str_ok(bom, &f);
    assert_int_equal(f.nrows, 1);
    dmarc_feedback_free(&f);
    free(bom);
    free(xml);
}

static void text_cleaned_and_capped(void **state)
{
    char big[1200];
    memset(big, 'a', 1025);
    big[1025] = '\0';
    char rec[1600];
    snprintf(rec, sizeof rec, "<record><row><source_ip>192.0.2.1</source_ip><count>1</count>"
                              "</row><identifiers><header_from>%s</header_from></identifiers>"
                              "</record>", big);
    char *xml = report_with("", rec);
    parse_str_fails(xml, "the text of <header_from> is longer than 1024 bytes");
    free(xml);

    /* 1000 bytes of 'é': org_name is cut at a character boundary */
    char org[1100] = "";
    for (int i = 0; i < 500; i++)
        memcpy(org + 2 * i, "\xc3\xa9", 3);
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_printf(&b, "<feedback><report_metadata><org_name>%s</org_name>"
                                    "<report_id>i</report_id><date_range><begin>1</begin><end>2"
                                    "</end></date_range></report_metadata><policy_published>"
                                    "<domain>x.example</domain></policy_published>%s"
                                    "</feedback>", org, rec_ok), 0);
    struct dmarc_feedback f;
    parse_str_ok(buf_cstr(&b), &f);
    assert_int_equal(strlen(f.org_name), 126);
    assert_true(utf8_valid(f.org_name, strlen(f.org_name)));
    dmarc_feedback_free(&f);
    buf_free(&b);

    /* white space collapsed, controls (C1 and DEL) shown as '?', keywords
     * and domains lower-cased, text in CDATA */
    xml = report_with("<adkim>S</adkim><aspf>x</aspf><pct>250</pct>",
                      "<record><row><source_ip> 192.0.2.1\n</source_ip><count>\t1 </count>"
                      "<policy_evaluated><disposition>QUARANTINE</disposition><dkim>Pass</dkim>"
                      "<reason><type>Local_Policy</type><comment>\t a \n\n b&#x85;c&#x7f; "
                      "</comment></reason><reason><type>second</type></reason>"
                      "</policy_evaluated></row><identifiers><header_from><![CDATA[Mail."
                      "Example.COM]]></header_from></identifiers></record>");
    parse_str_ok(xml, &f);
    assert_string_equal(f.adkim, "s");
    assert_string_equal(f.aspf, "r");   /* not r or s: the default */
    assert_int_equal(f.pct, 100);       /* out of range: the default */
    const struct dmarc_feedback_row *r = &f.rows[0];
    assert_string_equal(r->source_ip, "192.0.2.1");
    assert_int_equal(r->count, 1);
    assert_string_equal(r->disposition, "quarantine");
    assert_string_equal(r->dkim_eval, "pass");
    assert_string_equal(r->reason_type, "local_policy");
    assert_string_equal(r->reason_comment, "a b?c?");
    assert_string_equal(r->header_from, "mail.example.com");
    dmarc_feedback_free(&f);
    free(xml);
}

static void records_checked(void **state)
{
    struct dmarc_feedback f;
    static const struct { const char *ip, *count, *why; } bad[] = {
        { "999.1.2.3", "1", "source_ip '999.1.2.3' is not an IP address" },
        { "example.com", "1", "source_ip 'example.com' is not an IP address" },
        { "192.0.2.0/24", "1", "is not an IP address" },
        { "fe80::1%eth0", "1", "is not an IP address" },
        { "", "1", "has no source_ip" },
        { "192.0.2.1", "99999999999999999999", "count '99999999999999999999' is not a number" },
        { "192.0.2.1", "1000000000001", "is not a number up to 10^12" },
        { "192.0.2.1", "-1", "is not a number" },
        { "192.0.2.1", "1e3", "is not a number" },
        { "192.0.2.1", "", "is not a number" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *xml = one_record(bad[i].ip, bad[i].count);
        parse_str_fails(xml, "no record could be read");
        parse_str_fails(xml, bad[i].why);
        free(xml);
    }
    char *xml = report_with("", "<record><row><source_ip>192.0.2.1</source_ip></row></record>");
    parse_str_fails(xml, "has no count");
    free(xml);

    /* a bad record among good ones is skipped and counted */
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_printf(&b, "%s<record><row><source_ip>999.0.0.1</source_ip><count>5"
                                    "</count></row></record><record><row><source_ip>::ffff:"
                                    "192.0.2.7</source_ip><count>1000000000000</count></row>"
                                    "</record><record><row><source_ip>192.0.2.8</source_ip>"
                                    "<count>123456789012345</count></row></record>", rec_ok), 0);
    xml = report_with("", buf_cstr(&b));
    parse_str_ok(xml, &f);
    assert_int_equal(f.nrows, 2);
    assert_int_equal(f.nskipped, 2);
    assert_non_null(strstr(f.skipped_reason, "'999.0.0.1'"));
    assert_string_equal(f.rows[1].source_ip, "::ffff:192.0.2.7");
    assert_int_equal(f.rows[1].count, 1000000000000ull);
    json_t *j = dmarc_feedback_json(&f);
    assert_int_equal(json_integer_value(json_object_get(j, "skipped_records")), 2);
    json_decref(j);
    dmarc_feedback_free(&f);
    free(xml);
    buf_free(&b);

    /* more than 8 DKIM and 4 SPF results: the first ones kept */
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_str(&b, "<record><row><source_ip>192.0.2.1</source_ip><count>1"
                                        "</count></row><auth_results>"), 0);
    for (int i = 0; i < 12; i++)
        assert_int_equal(buf_printf(&b, "<dkim><domain>d%d.example</domain><result>pass"
                                        "</result></dkim><spf><domain>s%d.example</domain>"
                                        "<result>fail</result></spf>", i, i), 0);
    assert_int_equal(buf_append_str(&b, "</auth_results></record>"), 0);
    xml = report_with("", buf_cstr(&b));
    parse_str_ok(xml, &f);
    assert_int_equal(f.rows[0].ndkim, DMARC_FEEDBACK_MAX_DKIM);
    assert_int_equal(f.rows[0].nspf, DMARC_FEEDBACK_MAX_SPF);
    assert_string_equal(f.rows[0].dkim[7].domain, "d7.example");
    assert_string_equal(f.rows[0].spf[3].domain, "s3.example");
    dmarc_feedback_free(&f);
    free(xml);
    buf_free(&b);
}

static void too_many_records(void **state)
{
    struct buf b;
    buf_init(&b, 40 << 20);
    const char *rec = "<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row>"
                      "</record>\n";
    for (int i = 0; i <= DMARC_FEEDBACK_MAX_RECORDS; i++)
        assert_int_equal(buf_append_str(&b, rec), 0);
    char *xml = report_with("", buf_cstr(&b));
    parse_str_fails(xml, "more than 200000 records");
    free(xml);
    buf_free(&b);

    /* above 32 MiB of plain XML */
    size_t big = DMARC_FEEDBACK_MAX_INPUT + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '<';
    parse_fails(huge, big, "larger than 32 MiB");
    free(huge);
}

/* ---- gzip and zip ----------------------------------------------------- */

static void gzip_hostile(void **state)
{
    size_t glen, zlen;
    unsigned char *g = load("google.xml", &glen);
    unsigned char *gz = gzip_bytes(g, glen, &zlen);
    struct dmarc_feedback f;
    parse_ok(gz, zlen, &f);
    check_google(&f);
    dmarc_feedback_free(&f);
    /* truncated, at several places */
    for (size_t cut = 2; cut < zlen; cut += zlen / 7 + 1)
        parse_fails(gz, cut, "gzip");
    parse_fails(gz, zlen - 4, "truncated");
    /* the trailer's CRC does not match */
    unsigned char *bad = malloc(zlen);
    memcpy(bad, gz, zlen);
    bad[zlen - 6] ^= 0x55;
    parse_fails(bad, zlen, "corrupt");
    /* corrupt deflate data */
    memcpy(bad, gz, zlen);
    memset(bad + 10, 0xff, 8);        /* the first block's type: 3 (reserved) */
    parse_fails(bad, zlen, "gzip data is corrupt");
    free(bad);
    /* two members concatenated: one stream; trailing zeros ignored */
    unsigned char *two = calloc(1, 2 * zlen + 16);
    size_t half = glen / 2;
    size_t l1, l2;
    unsigned char *p1 = gzip_bytes(g, half, &l1), *p2 = gzip_bytes(g + half, glen - half, &l2);
    memcpy(two, p1, l1);
    memcpy(two + l1, p2, l2);
    parse_ok(two, l1 + l2 + 16, &f);
    check_google(&f);
    dmarc_feedback_free(&f);
    free(p1);
    free(p2);
    free(two);
    /* gzip of something that is not a report */
    unsigned char *notxml = gzip_bytes("hello", 5, &zlen);
    parse_fails(notxml, zlen, "not a DMARC report");
    free(notxml);
    free(gz);
    free(g);
}

static void gzip_bomb(void **state)
{
    size_t len;
    unsigned char *bomb = zeros_compressed((size_t)100 << 20, true, &len);
    assert_true(len < 200 * 1024);    /* 100 MiB of zeros in ~100 KiB */
    parse_fails(bomb, len, "decompressed size exceeds 32 MiB");
    free(bomb);
    /* just under the cap: inflated, then refused as XML (NULs) */
    bomb = zeros_compressed((size_t)31 << 20, true, &len);
    parse_fails(bomb, len, "NUL");
    free(bomb);
}

static void zip_hostile(void **state)
{
    size_t glen, len;
    unsigned char *g = load("google.xml", &glen);
    struct dmarc_feedback f;

    /* the first .xml member is read, stored or deflated, names in any case */
    struct zmember ok[] = {
        { .name = "README.txt", .data = "not this", .len = 8 },
        { .name = "dir/", .data = "", .len = 0 },
        { .name = "google.com!example.com!1!2.XML", .data = g, .len = glen, .deflate = true },
        { .name = "second.xml", .data = "<nope/>", .len = 7 },
    };
    unsigned char *z = zip_build(ok, 4, &len);
    parse_ok(z, len, &f);
    check_google(&f);
    dmarc_feedback_free(&f);
    /* truncated anywhere: refused */
    for (size_t cut = 4; cut < len; cut += len / 9 + 1)
        parse_fails(z, cut, "zip");
    parse_fails(z, len - 1, "no end of central directory");
    free(z);
    ok[2].deflate = false;
    z = zip_build(ok, 3, &len);
    parse_ok(z, len, &f);
    check_google(&f);
    dmarc_feedback_free(&f);
    free(z);

    struct { struct zmember m; const char *why; } bad[] = {
        { { .name = "r.xml", .data = g, .len = glen, .deflate = true, .flags = 1 },
          "the zip member is encrypted" },
        { { .name = "r.xml", .data = g, .len = glen, .flags = 0x41 }, "encrypted" },
        { { .name = "r.xml", .data = g, .len = glen, .method = 99 }, "encrypted" },
        { { .name = "r.xml", .data = g, .len = glen, .method = 12 },
          "zip compression method 12 is not supported" },
        { { .name = "r.xml", .data = g, .len = glen, .usize = 0xffffffffu },
          "zip64 archives are not supported" },
        { { .name = "r.xml", .data = g, .len = glen, .usize = 40u << 20, .deflate = true },
          "decompressed size exceeds 32 MiB" },
        { { .name = "r.xml", .data = g, .len = glen, .usize = 100, .deflate = true },
          "size or CRC-32 mismatch" },
        { { .name = "r.xml", .data = g, .len = glen, .usize = 100 }, "sizes differ" },
        { { .name = "report.txt", .data = g, .len = glen }, "the zip archive has no .xml file" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        z = zip_build(&bad[i].m, 1, &len);
        parse_fails(z, len, bad[i].why);
        free(z);
    }

    /* CRC mismatch: data changed after the headers were written */
    struct zmember one = { .name = "r.xml", .data = g, .len = glen };
    z = zip_build(&one, 1, &len);
    unsigned char *data = memmem(z, len, "google.com", 10);
    assert_non_null(data);
    data[0] = 'G';
    parse_fails(z, len, "CRC-32 mismatch");
    free(z);
    /* multi-disk, zip64 locator, central directory out of bounds, bad local header */
    z = zip_build(&one, 1, &len);
    put16(z + len - 22 + 4, 1);
    parse_fails(z, len, "several disks");
    free(z);
    z = zip_build(&one, 1, &len);
    put16(z + len - 22 + 8, 0xffff);
    parse_fails(z, len, "zip64");
    free(z);
    z = zip_build(&one, 1, &len);
    put32(z + len - 22 + 16, (uint32_t)len);
    parse_fails(z, len, "central directory out of bounds");
    free(z);
    z = zip_build(&one, 1, &len);
    put32(z + len - 22 - 46 - 5 + 42, 7); /* the local header offset points into nowhere */
    parse_fails(z, len, "bad local header");
    free(z);
    z = zip_build(&one, 1, &len);
    put16(z + 26, 0xffff);            /* local name length runs past the data */
    parse_fails(z, len, "member data out of bounds");
    free(z);
    z = zip_build(&one, 1, &len);
    put32(z + len - 22 - 46 - 5, 0x12345678); /* not a central directory header */
    parse_fails(z, len, "central directory is damaged");
    free(z);

    /* a zip bomb: 100 MiB of zeros declared as 1 KiB */
    size_t blen;
    unsigned char *zeros = zeros_compressed((size_t)100 << 20, false, &blen);
    struct buf b;
    buf_init(&b, 1 << 20);
    unsigned char h[30] = { 0 };
    put32(h, 0x04034b50);
    put16(h + 8, 8);
    put32(h + 18, (uint32_t)blen);
    put32(h + 22, 1024);
    put16(h + 26, 5);
    assert_int_equal(buf_append(&b, h, 30), 0);
    assert_int_equal(buf_append(&b, "b.xml", 5), 0);
    assert_int_equal(buf_append(&b, zeros, blen), 0);
    size_t cd = b.len;
    unsigned char c[46] = { 0 };
    put32(c, 0x02014b50);
    put16(c + 10, 8);
    put32(c + 20, (uint32_t)blen);
    put32(c + 24, 1024);
    put16(c + 28, 5);
    assert_int_equal(buf_append(&b, c, 46), 0);
    assert_int_equal(buf_append(&b, "b.xml", 5), 0);
    unsigned char e[22] = { 0 };
    put32(e, 0x06054b50);
    put16(e + 8, 1);
    put16(e + 10, 1);
    put32(e + 12, (uint32_t)(b.len - cd));
    put32(e + 16, (uint32_t)cd);
    assert_int_equal(buf_append(&b, e, 22), 0);
    parse_fails(b.data, b.len, "decompressed size exceeds 32 MiB");
    buf_free(&b);
    free(zeros);
    /* the empty archive */
    parse_fails("PK\5\6\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22, "no .xml file");
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(google_xml),
        cmocka_unit_test(microsoft_gz),
        cmocka_unit_test(yahoo_zip),
        cmocka_unit_test(dmarcbis_namespace),
        cmocka_unit_test(google_mail),
        cmocka_unit_test(built_mail),
        cmocka_unit_test(json_shape),
        cmocka_unit_test(summary),
        cmocka_unit_test(summary_saturates),
        cmocka_unit_test(doctype_refused),
        cmocka_unit_test(structure_refused),
        cmocka_unit_test(nesting),
        cmocka_unit_test(bytes_refused),
        cmocka_unit_test(text_cleaned_and_capped),
        cmocka_unit_test(records_checked),
        cmocka_unit_test(too_many_records),
        cmocka_unit_test(gzip_hostile),
        cmocka_unit_test(gzip_bomb),
        cmocka_unit_test(zip_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
