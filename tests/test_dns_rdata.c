/* Unit tests of dns_rdata.c: every parser on good rdata, and on malformed
 * rdata (truncations, compression pointers, long labels and names,
 * trailing garbage), plus the presentation → wire encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns/dns_rdata.h"
#include "util/buf.h"

#define R(s) (const uint8_t *)(s), sizeof(s) - 1

/* ---- TXT ---- */

static void txt_single(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 65536);
    size_t n = 99;
    assert_int_equal(dns_rdata_txt(R("\x0bv=spf1 -all"), &b, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b.len, 11);
    assert_string_equal(buf_cstr(&b), "v=spf1 -all");
    buf_free(&b);
}

static void txt_multi_concatenated(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 65536);
    size_t n = 0;
    assert_int_equal(dns_rdata_txt(R("\x07v=spf1 \x00\x04-all"), &b, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(buf_cstr(&b), "v=spf1 -all");
    /* reset first: a second parse does not append */
    assert_int_equal(dns_rdata_txt(R("\x01x"), &b, &n), 0);
    assert_string_equal(buf_cstr(&b), "x");
    assert_int_equal(n, 1);
    buf_free(&b);
}

static void txt_empty_string_and_nul(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);
    size_t n = 0;
    assert_int_equal(dns_rdata_txt(R("\x00"), &b, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b.len, 0);
    /* embedded NUL kept */
    assert_int_equal(dns_rdata_txt(R("\x03" "a\0b"), &b, &n), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 3);
    /* nstrings may be NULL */
    assert_int_equal(dns_rdata_txt(R("\x01z"), &b, NULL), 0);
    buf_free(&b);
}

static void txt_malformed(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);
    size_t n = 7;
    /* no string at all */
    assert_int_equal(dns_rdata_txt((const uint8_t *)"", 0, &b, &n), -1);
    /* truncated strings */
    assert_int_equal(dns_rdata_txt(R("\x05" "abc"), &b, &n), -1);
    assert_int_equal(dns_rdata_txt(R("\x02" "ab\x03" "c"), &b, &n), -1);
    assert_int_equal(dns_rdata_txt(R("\x01"), &b, &n), -1);
    assert_int_equal(dns_rdata_txt(R("\xff"), &b, &n), -1);
    /* past the buffer's cap */
    struct buf small;
    buf_init(&small, 4);
    assert_int_equal(dns_rdata_txt(R("\x03" "abc\x03" "def"), &small, &n), -1);
    assert_int_equal(dns_rdata_txt(R("\x02" "ab\x02" "cd"), &small, &n), 0);
    assert_string_equal(buf_cstr(&small), "abcd");
    buf_free(&small);
    buf_free(&b);
}

static void txt_64k(void **state)
{
    (void)state;
    /* 255 strings of 255 octets: a 65280-octet rdata */
    size_t len = 255 * 256;
    uint8_t *rd = malloc(len);
    assert_non_null(rd);
    for (size_t i = 0; i < 255; i++) {
        rd[i * 256] = 255;
        memset(rd + i * 256 + 1, 'a' + (int)(i % 26), 255);
    }
    struct buf b;
    buf_init(&b, 65536);
    size_t n = 0;
    assert_int_equal(dns_rdata_txt(rd, len, &b, &n), 0);
    assert_int_equal(n, 255);
    assert_int_equal(b.len, 255 * 255);
    assert_int_equal(b.data[0], 'a');
    assert_int_equal(b.data[255], 'b');
    assert_int_equal(b.data[255 * 255 - 1], 'a' + 254 % 26);
    /* one byte less: the last string is truncated */
    assert_int_equal(dns_rdata_txt(rd, len - 1, &b, &n), -1);
    buf_free(&b);
    free(rd);
}

/* ---- names ---- */

static void name_good(void **state)
{
    (void)state;
    char out[256];
    size_t used = 0;
    assert_int_equal(dns_rdata_name(R("\x04Mail\x07" "Example\x03" "COM\x00"), out, sizeof(out), &used), 0);
    assert_string_equal(out, "Mail.Example.COM"); /* case preserved */
    assert_int_equal(used, 18);
    /* consumed stops at the root label; what follows is the caller's */
    assert_int_equal(dns_rdata_name(R("\x01" "a\x00" "garbage"), out, sizeof(out), &used), 0);
    assert_string_equal(out, "a");
    assert_int_equal(used, 3);
    /* the root is "" */
    assert_int_equal(dns_rdata_name(R("\x00"), out, sizeof(out), &used), 0);
    assert_string_equal(out, "");
    assert_int_equal(used, 1);
    /* odd but legal octets stay */
    assert_int_equal(dns_rdata_name(R("\x07" "foo:b/r\x00"), out, sizeof(out), NULL), 0);
    assert_string_equal(out, "foo:b/r");
}

static void name_compression_rejected(void **state)
{
    (void)state;
    char out[256];
    size_t used;
    assert_int_equal(dns_rdata_name(R("\xc0\x0c"), out, sizeof(out), &used), -1);
    assert_int_equal(dns_rdata_name(R("\x03" "www\xc0\x0c"), out, sizeof(out), &used), -1);
    /* 0x40 and 0x80: extended label types, also rejected */
    assert_int_equal(dns_rdata_name(R("\x41" "a\x00"), out, sizeof(out), &used), -1);
    assert_int_equal(dns_rdata_name(R("\x80\x00"), out, sizeof(out), &used), -1);
}

static void name_limits(void **state)
{
    (void)state;
    uint8_t wire[400];
    char out[300];
    size_t used;
    /* a 63-octet label is fine, 64 is not */
    wire[0] = 63;
    memset(wire + 1, 'x', 63);
    wire[64] = 0;
    assert_int_equal(dns_rdata_name(wire, 65, out, sizeof(out), &used), 0);
    assert_int_equal(strlen(out), 63);
    wire[0] = 64;
    memset(wire + 1, 'x', 64);
    wire[65] = 0;
    assert_int_equal(dns_rdata_name(wire, 66, out, sizeof(out), &used), -1);

    /* exactly 255 wire octets: 3 x 63 + 61, presentation 253 */
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        wire[o++] = 63;
        memset(wire + o, 'a' + i, 63);
        o += 63;
    }
    wire[o++] = 61;
    memset(wire + o, 'd', 61);
    o += 61;
    wire[o++] = 0;
    assert_int_equal(o, 255);
    assert_int_equal(dns_rdata_name(wire, o, out, sizeof(out), &used), 0);
    assert_int_equal(strlen(out), 253);
    assert_int_equal(used, 255);
    /* an output buffer one short fails rather than truncating */
    assert_int_equal(dns_rdata_name(wire, o, out, 253, &used), -1);
    /* 256 octets (3 x 63 + 62): too long */
    wire[192] = 62;
    memset(wire + 193, 'd', 62);
    wire[255] = 0;
    assert_int_equal(dns_rdata_name(wire, 256, out, sizeof(out), &used), -1);
    /* 5 x 63 labels: too long, no matter the buffer */
    o = 0;
    for (int i = 0; i < 5; i++) {
        wire[o++] = 63;
        memset(wire + o, 'a', 63);
        o += 63;
    }
    wire[o++] = 0;
    assert_int_equal(dns_rdata_name(wire, o, out, sizeof(out), &used), -1);
}

static void name_malformed(void **state)
{
    (void)state;
    char out[256];
    size_t used;
    assert_int_equal(dns_rdata_name((const uint8_t *)"", 0, out, sizeof(out), &used), -1);
    assert_int_equal(dns_rdata_name(R("\x03" "ab"), out, sizeof(out), &used), -1);
    assert_int_equal(dns_rdata_name(R("\x03" "abc"), out, sizeof(out), &used), -1); /* no root */
    assert_int_equal(dns_rdata_name(R("\x03" "a.b\x00"), out, sizeof(out), &used), -1);
    assert_int_equal(dns_rdata_name(R("\x03" "a\0b\x00"), out, sizeof(out), &used), -1);
    assert_int_equal(dns_rdata_name(R("\x01" "a\x00"), out, 1, &used), -1);
    assert_int_equal(dns_rdata_name(R("\x01" "a\x00"), out, 2, &used), 0);
}

/* ---- MX, A, AAAA, PTR ---- */

static void mx(void **state)
{
    (void)state;
    char host[256];
    uint16_t pref = 0;
    assert_int_equal(dns_rdata_mx(R("\x00\x0a\x02mx\x07" "example\x03" "com\x00"), &pref, host, sizeof(host)), 0);
    assert_int_equal(pref, 10);
    assert_string_equal(host, "mx.example.com");
    assert_int_equal(dns_rdata_mx(R("\xff\xfe\x01" "a\x00"), &pref, host, sizeof(host)), 0);
    assert_int_equal(pref, 65534);
    /* null MX (RFC 7505) */
    assert_int_equal(dns_rdata_mx(R("\x00\x00\x00"), &pref, host, sizeof(host)), 0);
    assert_int_equal(pref, 0);
    assert_string_equal(host, "");
    /* malformed */
    assert_int_equal(dns_rdata_mx(R("\x00\x0a"), &pref, host, sizeof(host)), -1);
    assert_int_equal(dns_rdata_mx(R("\x00"), &pref, host, sizeof(host)), -1);
    assert_int_equal(dns_rdata_mx(R("\x00\x0a\x01" "a\x00x"), &pref, host, sizeof(host)), -1);
    assert_int_equal(dns_rdata_mx(R("\x00\x0a\xc0\x0c"), &pref, host, sizeof(host)), -1);
    assert_int_equal(dns_rdata_mx(R("\x00\x0a\x05" "a\x00"), &pref, host, sizeof(host)), -1);
}

static void a_aaaa(void **state)
{
    (void)state;
    uint8_t a[4], aaaa[16];
    assert_int_equal(dns_rdata_a(R("\xc0\x00\x02\x01"), a), 0);
    assert_memory_equal(a, "\xc0\x00\x02\x01", 4);
    assert_int_equal(dns_rdata_a(R("\xc0\x00\x02"), a), -1);
    assert_int_equal(dns_rdata_a(R("\xc0\x00\x02\x01\x00"), a), -1);
    assert_int_equal(dns_rdata_a((const uint8_t *)"", 0, a), -1);
    const char *v6 = "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01";
    assert_int_equal(dns_rdata_aaaa((const uint8_t *)v6, 16, aaaa), 0);
    assert_memory_equal(aaaa, v6, 16);
    assert_int_equal(dns_rdata_aaaa((const uint8_t *)v6, 15, aaaa), -1);
    assert_int_equal(dns_rdata_aaaa((const uint8_t *)v6, 4, aaaa), -1);
}

static void ptr_cname(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(dns_rdata_ptr(R("\x04host\x07" "example\x04test\x00"), out, sizeof(out)), 0);
    assert_string_equal(out, "host.example.test");
    assert_int_equal(dns_rdata_ptr(R("\x00"), out, sizeof(out)), 0);
    assert_string_equal(out, "");
    /* trailing garbage, pointers, truncation */
    assert_int_equal(dns_rdata_ptr(R("\x01" "a\x00\x00"), out, sizeof(out)), -1);
    assert_int_equal(dns_rdata_ptr(R("\x01" "a\xc0\x0c"), out, sizeof(out)), -1);
    assert_int_equal(dns_rdata_ptr(R("\x04host"), out, sizeof(out)), -1);
    assert_int_equal(dns_rdata_ptr((const uint8_t *)"", 0, out, sizeof(out)), -1);
}

/* ---- presentation → wire ---- */

static void wire_name(void **state)
{
    (void)state;
    uint8_t w[300];
    char back[256];
    assert_int_equal(dns_wire_name("example.com", w, sizeof(w)), 13);
    assert_memory_equal(w, "\x07" "example\x03" "com\x00", 13);
    assert_int_equal(dns_wire_name("Example.COM.", w, sizeof(w)), 13);
    assert_memory_equal(w, "\x07" "Example\x03" "COM\x00", 13);
    assert_int_equal(dns_wire_name("", w, sizeof(w)), 1);
    assert_int_equal(w[0], 0);
    assert_int_equal(dns_wire_name(".", w, sizeof(w)), 1);
    assert_int_equal(dns_wire_name("a..b", w, sizeof(w)), -1);
    assert_int_equal(dns_wire_name(".a", w, sizeof(w)), -1);
    assert_int_equal(dns_wire_name("a..", w, sizeof(w)), -1);
    assert_int_equal(dns_wire_name("..", w, sizeof(w)), -1);
    assert_int_equal(dns_wire_name("example.com", w, 12), -1);
    assert_int_equal(dns_wire_name(NULL, w, sizeof(w)), -1);
    /* no escape syntax: a backslash is an octet */
    assert_int_equal(dns_wire_name("a\\.b", w, sizeof(w)), 6);
    assert_memory_equal(w, "\x02" "a\\\x01" "b\x00", 6);

    char label[70];
    memset(label, 'x', 64);
    label[64] = '\0';
    assert_int_equal(dns_wire_name(label, w, sizeof(w)), -1);
    label[63] = '\0';
    assert_int_equal(dns_wire_name(label, w, sizeof(w)), 65);

    /* 253 characters is the longest name; 254 is too long */
    char name[300];
    memset(name, 'a', 253);
    for (int i = 63; i < 253; i += 64)
        name[i] = '.';
    name[253] = '\0';
    int n = dns_wire_name(name, w, sizeof(w));
    assert_int_equal(n, 255);
    assert_int_equal(dns_rdata_ptr(w, (size_t)n, back, sizeof(back)), 0);
    assert_string_equal(back, name);
    name[253] = 'a';
    name[254] = '\0';
    assert_int_equal(dns_wire_name(name, w, sizeof(w)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(txt_single),
        cmocka_unit_test(txt_multi_concatenated),
        cmocka_unit_test(txt_empty_string_and_nul),
        cmocka_unit_test(txt_malformed),
        cmocka_unit_test(txt_64k),
        cmocka_unit_test(name_good),
        cmocka_unit_test(name_compression_rejected),
        cmocka_unit_test(name_limits),
        cmocka_unit_test(name_malformed),
        cmocka_unit_test(mx),
        cmocka_unit_test(a_aaaa),
        cmocka_unit_test(ptr_cname),
        cmocka_unit_test(wire_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
