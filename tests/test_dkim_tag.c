/* DKIM parsers: the tag-list (RFC 6376 §3.2) with folding whitespace,
 * duplicates and bad octets; base64 with whitespace; key records
 * (§3.6.1, RFC 8463, RFC 8301: revoked keys, short RSA keys, v=, k=, s=,
 * h=, t=); and DKIM-Signature fields (§3.5: required tags, i= within d=,
 * h= must name From, l=, q=, x= before t=). Every rejection has a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dkim_testutil.h"

static void taglist_ok(void **state)
{
    struct dkim_taglist tl;
    char err[160] = "";
    const char *t1 = " v = 1 ;a=rsa-sha256;\r\n\tb=abc\r\n def ; empty=;x_y2=z;";
    if (dkim_taglist_parse(t1, strlen(t1), &tl, err, sizeof err) != 0)
        fail_msg("rejected: %s", err);
    assert_int_equal(tl.count, 5);
    assert_true(sv_eq_ci_cstr(tl.tags[0].name, "v"));
    assert_true(sv_eq_ci_cstr(tl.tags[0].value, "1"));
    assert_true(sv_eq_ci_cstr(tl.tags[2].value, "abc\r\n def"));
    assert_int_equal(tl.tags[3].value.len, 0);
    assert_non_null(dkim_taglist_find(&tl, "x_y2"));
    assert_null(dkim_taglist_find(&tl, "V"));   /* tag names are case-sensitive */
    /* Empty list, lone separators, LF-only folding. */
    assert_int_equal(dkim_taglist_parse("", 0, &tl, err, sizeof err), 0);
    assert_int_equal(tl.count, 0);
    assert_int_equal(dkim_taglist_parse("a=1;;b=2", 8, &tl, err, sizeof err), 0);
    assert_int_equal(tl.count, 2);
    assert_int_equal(dkim_taglist_parse("a=1;\n b=2", 9, &tl, err, sizeof err), 0);
    assert_int_equal(tl.count, 2);
}

static void taglist_errors(void **state)
{
    static const struct {
        const char *in;
        size_t len;   /* 0: strlen */
        const char *why;
    } t[] = {
        { "a=1; a=2", 0, "duplicate tag 'a'" },
        { "v=1; b=x; v=1", 0, "duplicate tag 'v'" },
        { "a", 0, "has no '='" },
        { "a=1; =2", 0, "tag name expected" },
        { "1a=2", 0, "tag name expected" },
        { "a-b=2", 0, "has no '='" },
        { "a=1\r\nb=2", 0, "invalid octet 0x0d" },
        { "a=x\x01y", 0, "invalid octet 0x01" },
        { "a=caf\xc3\xa9", 0, "invalid octet 0xc3" },
        { "a=x\0y", 5, "NUL octet" },
        { "\0", 1, "NUL octet" },
    };
    struct dkim_taglist tl;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char err[160] = "";
        size_t len = t[i].len ? t[i].len : strlen(t[i].in);
        if (dkim_taglist_parse(t[i].in, len, &tl, err, sizeof err) == 0)
            fail_msg("accepted: %s", t[i].in);
        if (!strstr(err, t[i].why))
            fail_msg("'%s': reason '%s' lacks '%s'", t[i].in, err, t[i].why);
    }
    /* Too many tags. */
    struct buf b;
    buf_init(&b, 1 << 16);
    for (int i = 0; i < DKIM_MAX_TAGS + 1; i++)
        assert_int_equal(buf_printf(&b, "t%d=x;", i), 0);
    char err[160];
    assert_int_equal(dkim_taglist_parse(b.data, b.len, &tl, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than"));
    buf_free(&b);
}

static void base64(void **state)
{
    static const struct {
        const char *in, *out, *why;
    } t[] = {
        { "", "", NULL },
        { "Zg==", "f", NULL },
        { "Zm8=", "fo", NULL },
        { "Zm9v", "foo", NULL },
        { " Zm\r\n 9v\tYmFy ", "foobar", NULL },
        { "Zm9vYg==", "foob", NULL },
        { "Zm9vYg", NULL, "multiple of 4" },
        { "Zm9v=", NULL, "multiple of 4" },
        { "Zg===", NULL, "too much" },
        { "Zg==Zm9v", NULL, "after '='" },
        { "Zm9*", NULL, "invalid character" },
    };
    unsigned char out[64];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = 0;
        const char *why = NULL;
        int rc = dkim_base64_decode(sv_cstr(t[i].in), out, sizeof out, &n, &why);
        if (t[i].out) {
            if (rc != 0)
                fail_msg("'%s' rejected: %s", t[i].in, why);
            assert_int_equal(n, strlen(t[i].out));
            assert_memory_equal(out, t[i].out, n);
        } else {
            assert_int_equal(rc, -1);
            if (!strstr(why, t[i].why))
                fail_msg("'%s': '%s' lacks '%s'", t[i].in, why, t[i].why);
        }
    }
    size_t n;
    const char *why;
    assert_int_equal(dkim_base64_decode(sv_cstr("Zm9vYmFy"), out, 5, &n, &why), -1);
    struct buf b;
    buf_init(&b, 100);
    assert_int_equal(dkim_base64_encode((const unsigned char *)"foob", 4, &b), 0);
    assert_string_equal(buf_cstr(&b), "Zm9vYg==");
    buf_free(&b);
}

static EVP_PKEY *rsa1024, *rsa512, *ed;

static int setup_keys(void **state)
{
    rsa1024 = tu_gen("RSA", 1024);
    rsa512 = tu_gen("RSA", 512);
    ed = tu_gen("ED25519", 0);
    return 0;
}

static int teardown_keys(void **state)
{
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(rsa512);
    EVP_PKEY_free(ed);
    return 0;
}

static const char *p_of(const char *rec) { return strstr(rec, "p="); }

static void key_records(void **state)
{
    char *rsa = tu_record(rsa1024, NULL), *edr = tu_record(ed, NULL), *short_rsa = tu_record(rsa512, NULL);
    char rec[4096], err[200];
    struct dkim_key k;
#define KEY_OK(...) do { snprintf(rec, sizeof rec, __VA_ARGS__); \
        if (dkim_key_parse(rec, strlen(rec), &k, err, sizeof err) != 0) \
            fail_msg("'%s' rejected: %s", rec, err); } while (0)
#define KEY_BAD(why, ...) do { snprintf(rec, sizeof rec, __VA_ARGS__); \
        if (dkim_key_parse(rec, strlen(rec), &k, err, sizeof err) == 0) \
            fail_msg("'%s' accepted", rec); \
        if (!strstr(err, why)) fail_msg("'%s': '%s' lacks '%s'", rec, err, why); } while (0)

    KEY_OK("%s", rsa);
    assert_int_equal(k.type, DKIM_KEY_RSA);
    assert_int_equal(k.bits, 1024);
    assert_true(k.sha256_ok);
    assert_false(k.testing);
    dkim_key_clear(&k);
    KEY_OK("%s", p_of(rsa));                 /* v= and k= are optional */
    dkim_key_clear(&k);
    KEY_OK("%s", edr);
    assert_int_equal(k.type, DKIM_KEY_ED25519);
    dkim_key_clear(&k);
    KEY_OK("v=DKIM1; h=sha1:sha256; s=email; t=y:s; n=notes; zz=unknown; k=rsa; %s", p_of(rsa));
    assert_true(k.testing);
    assert_true(k.strict);
    assert_true(k.sha256_ok);
    dkim_key_clear(&k);
    KEY_OK("k=rsa; s=*; t=y; %s", p_of(rsa));
    assert_true(k.testing);
    assert_false(k.strict);
    dkim_key_clear(&k);
    KEY_OK("k=rsa; h=sha1; %s", p_of(rsa));
    assert_false(k.sha256_ok);
    dkim_key_clear(&k);
    /* p= folded with spaces (TXT records often are). */
    {
        const char *p = p_of(rsa) + 2;
        snprintf(rec, sizeof rec, "k=rsa; p=%.40s %.40s  %s", p, p + 40, p + 80);
        assert_int_equal(dkim_key_parse(rec, strlen(rec), &k, err, sizeof err), 0);
        dkim_key_clear(&k);
    }
    /* PKCS#1 RSAPublicKey instead of SubjectPublicKeyInfo. */
    {
        unsigned char *der = NULL;
        int n = i2d_PublicKey(rsa1024, &der);
        struct buf b;
        buf_init(&b, 4096);
        assert_int_equal(buf_append_str(&b, "k=rsa; p="), 0);
        assert_int_equal(dkim_base64_encode(der, (size_t)n, &b), 0);
        OPENSSL_free(der);
        assert_int_equal(dkim_key_parse(b.data, b.len, &k, err, sizeof err), 0);
        assert_int_equal(k.bits, 1024);
        dkim_key_clear(&k);
        buf_free(&b);
    }

    KEY_BAD("revoked", "v=DKIM1; k=rsa; p=");
    KEY_BAD("revoked", "v=DKIM1; p= ; k=ed25519");
    KEY_BAD("no p= tag", "v=DKIM1; k=rsa");
    KEY_BAD("not DKIM1", "v=DKIM2; %s", p_of(rsa));
    KEY_BAD("not DKIM1", "v=dkim1; %s", p_of(rsa));
    KEY_BAD("not the first tag", "k=rsa; v=DKIM1; %s", p_of(rsa));
    KEY_BAD("unknown key type", "k=dsa; %s", p_of(rsa));
    KEY_BAD("not for email", "s=tlsrpt; %s", p_of(rsa));
    KEY_BAD("too short", "%s", short_rsa);
    KEY_BAD("RFC 8301", "%s", short_rsa);
    KEY_BAD("not an RSA public key", "k=rsa; %s", p_of(edr));
    KEY_BAD("not an Ed25519 public key", "k=ed25519; %s", p_of(rsa));
    KEY_BAD("not valid base64", "k=rsa; p=!!!!");
    KEY_BAD("not an RSA public key", "k=rsa; p=QUJD");
    KEY_BAD("duplicate tag 'p'", "%s; p=QUJD", rsa);
    assert_int_equal(dkim_key_parse("k=rsa\0; p=x", 11, &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "NUL"));
    free(rsa);
    free(edr);
    free(short_rsa);
}

#define SIG_PREFIX "DKIM-Signature: "
#define GOOD_B "b=dGVzdA==; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

static void signature_fields(void **state)
{
    struct dkim_sig *s = malloc(sizeof *s);
    char err[200];
    const char *f = SIG_PREFIX "v=1; a=rsa-sha256; c=relaxed/simple; d=Example.COM;\r\n"
                    "\ts=sel.x; h=From : To:subject; i=user@sub.example.com; l=42;\r\n"
                    "\tq=dns/txt; t=100; x=200; z=From:foo|To:bar;\r\n"
                    "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=dGVz\r\n\t dA==";
    if (dkim_sig_parse(f, strlen(f), s, err, sizeof err) != 0)
        fail_msg("rejected: %s", err);
    assert_int_equal(s->alg, DKIM_ALG_RSA_SHA256);
    assert_int_equal(s->hc, DKIM_CANON_RELAXED);
    assert_int_equal(s->bc, DKIM_CANON_SIMPLE);
    assert_string_equal(s->domain, "Example.COM");
    assert_string_equal(s->selector, "sel.x");
    assert_string_equal(s->identity, "user@sub.example.com");
    assert_int_equal(s->nnames, 3);
    assert_true(sv_eq_ci_cstr(s->names[0], "from"));
    assert_true(sv_eq_ci_cstr(s->names[1], "to"));
    assert_true(sv_eq_ci_cstr(s->names[2], "subject"));
    assert_true(s->has_l && s->l == 42);
    assert_true(s->has_t && s->t == 100 && s->has_x && s->x == 200);
    assert_int_equal(s->blen, 4);
    assert_memory_equal(s->b, "test", 4);
    assert_string_equal(s->b_prefix, "dGVzdA==");
    /* The b= value span runs from after '=' to its last octet. */
    assert_memory_equal(f + s->b_off, "dGVz\r\n\t dA==", s->b_len);
    /* Defaults: c= simple/simple, i= @d. */
    const char *g = SIG_PREFIX "v=1; a=ed25519-sha256; d=example.com; s=s; h=from; " GOOD_B;
    assert_int_equal(dkim_sig_parse(g, strlen(g), s, err, sizeof err), 0);
    assert_int_equal(s->hc, DKIM_CANON_SIMPLE);
    assert_int_equal(s->bc, DKIM_CANON_SIMPLE);
    assert_string_equal(s->identity, "@example.com");
    assert_int_equal(s->alg, DKIM_ALG_ED25519_SHA256);
    const char *h = SIG_PREFIX "v=1; a=rsa-sha256; c=relaxed; d=example.com; s=s; h=from; " GOOD_B;
    assert_int_equal(dkim_sig_parse(h, strlen(h), s, err, sizeof err), 0);
    assert_int_equal(s->hc, DKIM_CANON_RELAXED);
    assert_int_equal(s->bc, DKIM_CANON_SIMPLE);

    static const struct {
        const char *tags, *why;
    } bad[] = {
        { "a=rsa-sha256; d=example.com; s=s; h=from; " GOOD_B, "no v= tag" },
        { "v=2; a=rsa-sha256; d=example.com; s=s; h=from; " GOOD_B, "unsupported signature version" },
        { "v=1; d=example.com; s=s; h=from; " GOOD_B, "no a= tag" },
        { "v=1; a=rsa-md5; d=example.com; s=s; h=from; " GOOD_B, "unknown signing algorithm" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "no b= tag" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; b=; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "b= is empty" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; b=dGVzdA", "b= is not valid base64" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; b=dGVzdA==", "no bh= tag" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; b=dGVzdA==; bh=dGVzdA==", "a SHA-256 hash is 32" },
        { "v=1; a=rsa-sha256; c=fancy; d=example.com; s=s; h=from; " GOOD_B, "unknown canonicalization" },
        { "v=1; a=rsa-sha256; c=simple/fancy; d=example.com; s=s; h=from; " GOOD_B, "unknown canonicalization" },
        { "v=1; a=rsa-sha256; s=s; h=from; " GOOD_B, "no d= tag" },
        { "v=1; a=rsa-sha256; d=exa mple.com; s=s; h=from; " GOOD_B, "not a domain name" },
        { "v=1; a=rsa-sha256; d=example.com.; s=s; h=from; " GOOD_B, "not a domain name" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; " GOOD_B, "no h= tag" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=to:subject; " GOOD_B, "does not include From" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from::to; " GOOD_B, "invalid header field name" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; i=user; " GOOD_B, "has no '@'" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; i=@example.org; " GOOD_B, "not d=example.com or a subdomain" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; i=@badexample.com; " GOOD_B, "not d=example.com or a subdomain" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; l=-1; " GOOD_B, "not a usable body length" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; l=99999999999999999999999; " GOOD_B, "not a usable body length" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; q=http; " GOOD_B, "no supported query method" },
        { "v=1; a=rsa-sha256; d=example.com; h=from; " GOOD_B, "no s= tag" },
        { "v=1; a=rsa-sha256; d=example.com; s=a b; h=from; " GOOD_B, "not a valid selector" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; t=abc; " GOOD_B, "not a timestamp" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; x=1.5; " GOOD_B, "not a timestamp" },
        { "v=1; a=rsa-sha256; d=example.com; s=s; h=from; t=200; x=100; " GOOD_B, "x= is before t=" },
        { "v=1; v=1; a=rsa-sha256; d=example.com; s=s; h=from; " GOOD_B, "duplicate tag 'v'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char field[1024];
        snprintf(field, sizeof field, SIG_PREFIX "%s", bad[i].tags);
        err[0] = '\0';
        if (dkim_sig_parse(field, strlen(field), s, err, sizeof err) == 0)
            fail_msg("accepted: %s", bad[i].tags);
        if (!strstr(err, bad[i].why))
            fail_msg("'%s': '%s' lacks '%s'", bad[i].tags, err, bad[i].why);
    }
    /* Even broken, a signature is named by what could be read. */
    const char *broken = SIG_PREFIX "v=1; a=rsa-sha256; d=example.com; s=sel; h=to; b=AAAA";
    assert_int_equal(dkim_sig_parse(broken, strlen(broken), s, err, sizeof err), -1);
    assert_string_equal(s->domain, "example.com");
    assert_string_equal(s->selector, "sel");
    assert_string_equal(s->algorithm, "rsa-sha256");
    assert_string_equal(s->b_prefix, "AAAA");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(taglist_ok),
        cmocka_unit_test(taglist_errors),
        cmocka_unit_test(base64),
        cmocka_unit_test(key_records),
        cmocka_unit_test(signature_fields),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
