/* DKIM signing and verification end to end through an in-memory zone: the
 * RFC 8463 Appendix A vector (both signatures pass; bh= and the Ed25519 b=
 * reproduced exactly), sign/verify round trips for RSA and Ed25519 in all
 * four canonicalizations, tampering, over-signing, l=, x= against a set
 * clock, every key-record and DNS failure mapped to its result, rsa-sha1,
 * LF-only messages, and chunked input giving the same results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dkim_testutil.h"

static EVP_PKEY *rsa_key, *ed_key;
static struct dkim_signer *rsa_signer, *ed_signer;
static struct dns_zone *zone;
static struct dns_resolver *dns;

static const char *MSG =
    "From: Alice <alice@example.test>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Lunch\r\n"
    "  tomorrow?\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    "Message-ID: <1@example.test>\r\n"
    "X-Unsigned: yes\r\n"
    "\r\n"
    "Hello Bob,  \r\n"
    "\r\n"
    "see you.\r\n"
    "\r\n"
    "\r\n";

static int setup(void **state)
{
    rsa_key = tu_gen("RSA", 2048);
    ed_key = tu_gen("ED25519", 0);
    rsa_signer = tu_signer(rsa_key);
    ed_signer = tu_signer(ed_key);
    zone = dns_zone_new();
    char *r = tu_record(rsa_key, NULL), *e = tu_record(ed_key, NULL);
    tu_zone_txt(zone, "rsa._domainkey.example.test", r);
    tu_zone_txt(zone, "ed._domainkey.example.test", e);
    free(r);
    free(e);
    dns = dns_zone_resolver_new(zone);
    return 0;
}

static int teardown(void **state)
{
    dns_resolver_free(dns);
    dns_zone_free(zone);
    dkim_signer_free(rsa_signer);
    dkim_signer_free(ed_signer);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ed_key);
    return 0;
}

/* Signs msg; returns the signature field + msg (malloc'd). */
static char *sign_with(struct dkim_signer *s, const struct dkim_sign_options *o, const char *msg,
                       size_t len)
{
    struct buf out;
    char err[300];
    buf_init(&out, 1 << 28);
    enum dkim_status st = dkim_sign_message(s, o, msg, len, &out, err, sizeof err);
    if (st != DKIM_OK)
        fail_msg("signing failed: %s", err);
    assert_int_equal(buf_append(&out, msg, len), 0);
    return buf_detach(&out);
}

static struct dkim_sign_options opts(const char *selector)
{
    return (struct dkim_sign_options){ .domain = "example.test", .selector = selector,
                                       .now = 1700000000 };
}

static struct dkim_results verify_at(const char *msg, size_t len, time_t now)
{
    struct dkim_clock clock = { now };
    struct dkim_results r;
    assert_int_equal(dkim_verify_message(dns, &clock, msg, len, &r), 0);
    return r;
}

static void expect(const char *msg, enum dkim_result want, const char *reason)
{
    struct dkim_results r = verify_at(msg, strlen(msg), 1700000100);
    assert_int_equal(r.count, 1);
    if (r.sigs[0].result != want || (reason && !strstr(r.sigs[0].reason, reason)))
        fail_msg("got %s (%s), want %s (%s)", dkim_result_name(r.sigs[0].result),
                 r.sigs[0].reason, dkim_result_name(want), reason ? reason : "");
    dkim_results_free(&r);
}

static void rfc8463_vector(void **state)
{
    size_t len;
    char *msg = tu_read_file("rfc8463.eml", &len);
    struct dns_zone *z = dns_zone_new();
    tu_zone_txt(z, "brisbane._domainkey.football.example.com",
                "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    tu_zone_txt(z, "test._domainkey.football.example.com",
                "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
                "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
                "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
                "Ip3G+2kryOTIKT+l/K4w3QIDAQAB");
    struct dns_resolver *r = dns_zone_resolver_new(z);
    struct dkim_clock clock = { 1528637909 };
    struct dkim_results res;
    assert_int_equal(dkim_verify_message(r, &clock, msg, len, &res), 0);
    assert_int_equal(res.count, 2);
    for (size_t i = 0; i < 2; i++)
        if (res.sigs[i].result != DKIM_PASS)
            fail_msg("signature %zu: %s (%s)", i, dkim_result_name(res.sigs[i].result),
                     res.sigs[i].reason);
    assert_string_equal(res.sigs[0].algorithm, "ed25519-sha256");
    assert_string_equal(res.sigs[0].selector, "brisbane");
    assert_string_equal(res.sigs[0].domain, "football.example.com");
    assert_string_equal(res.sigs[0].b_prefix, "/gCrinpcQOoIfuHN");
    assert_string_equal(res.sigs[1].algorithm, "rsa-sha256");
    dkim_results_free(&res);

    /* The private key of Appendix A.1 (RFC 8032 §7.1 test 1) gives the
     * published public key and, over the same header data, the same b=. */
    static const char *seed_b64 = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    unsigned char seed[32];
    size_t n;
    const char *why;
    assert_int_equal(dkim_base64_decode(sv_cstr(seed_b64), seed, 32, &n, &why), 0);
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    struct dkim_signer *s = tu_signer(pk);
    struct buf rec;
    buf_init(&rec, 1024);
    assert_int_equal(dkim_signer_record(s, &rec), 0);
    assert_string_equal(buf_cstr(&rec),
                        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    buf_free(&rec);

    size_t hl, bo;
    mail_split_message(msg, len, &hl, &bo);
    struct mail_field f[16];
    size_t nf;
    mail_header_fields(msg, hl, f, 16, &nf, NULL);
    assert_int_equal(nf, 7);
    struct dkim_sig *sig = malloc(sizeof *sig);
    char err[200];
    assert_int_equal(dkim_sig_parse(f[0].raw.p, f[0].raw.len, sig, err, sizeof err), 0);
    /* bh= of the relaxed body. */
    unsigned char bh[32];
    struct dkim_body body;
    assert_int_equal(dkim_body_init(&body, DKIM_CANON_RELAXED, -1, NULL), 0);
    assert_int_equal(dkim_body_update(&body, msg + bo, len - bo), 0);
    assert_int_equal(dkim_body_final(&body, bh), 0);
    dkim_body_free(&body);
    struct buf b64;
    buf_init(&b64, 1024);
    assert_int_equal(dkim_base64_encode(bh, 32, &b64), 0);
    assert_string_equal(buf_cstr(&b64), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
    /* b= */
    struct buf field, scratch;
    buf_init(&field, 4096);
    buf_init(&scratch, 1 << 16);
    assert_int_equal(buf_append(&field, f[0].raw.p, sig->b_off), 0);
    assert_int_equal(buf_append(&field, f[0].raw.p + sig->b_off + sig->b_len,
                                f[0].raw.len - sig->b_off - sig->b_len), 0);
    unsigned char digest[32], out[DKIM_MAX_SIG_LEN];
    size_t outlen = 0;
    assert_int_equal(dkim_header_digest(sig->hc, f, nf, sig->names, sig->nnames, field.data,
                                        field.len, &scratch, digest), 0);
    assert_int_equal(dkim_signer_sign(s, digest, out, &outlen), 0);
    buf_reset(&b64);
    assert_int_equal(dkim_base64_encode(out, outlen, &b64), 0);
    assert_string_equal(buf_cstr(&b64), "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11B"
                                        "usFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");

    /* Our own signer on the unsigned message: same bh=, and it verifies. */
    const char *unsigned_msg = msg + (f[2].raw.p - msg);
    struct dkim_sign_options o = {
        .domain = "football.example.com", .selector = "brisbane",
        .identity = "@football.example.com", .now = 1528637909,
        .headers = "from:to:subject:date:message-id:from:subject:date",
    };
    char *signed_msg = sign_with(s, &o, unsigned_msg, len - (size_t)(unsigned_msg - msg));
    assert_non_null(strstr(signed_msg, "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="));
    assert_non_null(strstr(signed_msg, "i=@football.example.com;"));
    assert_int_equal(dkim_verify_message(r, &clock, signed_msg, strlen(signed_msg), &res), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.sigs[0].result, DKIM_PASS);
    dkim_results_free(&res);

    free(signed_msg);
    buf_free(&field);
    buf_free(&scratch);
    buf_free(&b64);
    free(sig);
    dkim_signer_free(s);
    EVP_PKEY_free(pk);
    dns_resolver_free(r);
    dns_zone_free(z);
    free(msg);
}

static void round_trips(void **state)
{
    static const enum dkim_canon c[4][2] = {
        { DKIM_CANON_RELAXED, DKIM_CANON_RELAXED }, { DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE },
        { DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE }, { DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED },
    };
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 4; i++) {
            struct dkim_sign_options o = opts(k ? "ed" : "rsa");
            o.header_canon = c[i][0];
            o.body_canon = c[i][1];
            char *m = sign_with(k ? ed_signer : rsa_signer, &o, MSG, strlen(MSG));
            expect(m, DKIM_PASS, NULL);
            /* An unsigned header may be added; a signed one not changed. */
            struct buf t;
            buf_init(&t, 1 << 20);
            assert_int_equal(buf_printf(&t, "X-Added: 1\r\n%s", m), 0);
            expect(t.data, DKIM_PASS, NULL);
            buf_reset(&t);
            char *at = strstr(m, "Lunch");
            assert_int_equal(buf_append(&t, m, (size_t)(at - m)), 0);
            assert_int_equal(buf_printf(&t, "Brunch%s", at + 5), 0);
            expect(t.data, DKIM_FAIL, "signature did not verify");
            buf_reset(&t);
            at = strstr(m, "see you");
            assert_int_equal(buf_append(&t, m, (size_t)(at - m)), 0);
            assert_int_equal(buf_printf(&t, "SEE you%s", at + 7), 0);
            expect(t.data, DKIM_FAIL, "body hash did not verify");
            /* Over-signed: a second Subject or From breaks it. */
            buf_reset(&t);
            assert_int_equal(buf_printf(&t, "%s", m), 0);
            at = strstr(t.data, "\r\n\r\n");
            char *rest = strdup(at);
            t.len = (size_t)(at - t.data);
            assert_int_equal(buf_printf(&t, "\r\nFrom: mallory@evil.test%s", rest), 0);
            expect(t.data, DKIM_FAIL, NULL);
            free(rest);
            /* Trailing blank lines added: simple and relaxed both ignore them. */
            buf_reset(&t);
            assert_int_equal(buf_printf(&t, "%s\r\n\r\n", m), 0);
            expect(t.data, DKIM_PASS, NULL);
            /* Relaxed tolerates whitespace changes, simple does not. */
            buf_reset(&t);
            at = strstr(m, "Hello Bob,");
            assert_int_equal(buf_append(&t, m, (size_t)(at - m)), 0);
            assert_int_equal(buf_printf(&t, "Hello   Bob,%s", at + 10), 0);
            expect(t.data, c[i][1] == DKIM_CANON_RELAXED ? DKIM_PASS : DKIM_FAIL, NULL);
            buf_free(&t);
            free(m);
        }
    }
}

static void default_headers(void **state)
{
    struct dkim_sign_options o = opts("ed");
    char *m = sign_with(ed_signer, &o, MSG, strlen(MSG));
    /* Present recommended fields; From, To, Subject, Date, Message-ID over-signed. */
    char *h = strstr(m, "h=");
    assert_non_null(h);
    const char *want_h = "h=from:from:subject:subject:date:date:to:to:message-id:message-id;\r\n";
    assert_memory_equal(h, want_h, strlen(want_h));
    assert_non_null(strstr(m, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; "
                              "d=example.test; s=ed;\r\n\tt=1700000000;\r\n"));
    assert_null(strstr(m, "l="));
    assert_null(strstr(m, "x="));
    assert_null(strstr(m, "x-unsigned"));
    free(m);
    /* No From: cannot sign. */
    struct buf out;
    buf_init(&out, 1 << 16);
    char err[200];
    const char *nofrom = "To: a@b\r\n\r\nx\r\n";
    assert_int_equal(dkim_sign_message(ed_signer, &o, nofrom, strlen(nofrom), &out, err, sizeof err),
                     DKIM_EINPUT);
    assert_non_null(strstr(err, "no From"));
    /* Bad options. */
    o.identity = "user@other.test";
    assert_int_equal(dkim_sign_message(ed_signer, &o, MSG, strlen(MSG), &out, err, sizeof err),
                     DKIM_EINPUT);
    assert_non_null(strstr(err, "not in example.test"));
    o.identity = NULL;
    o.headers = "to:subject";
    assert_int_equal(dkim_sign_message(ed_signer, &o, MSG, strlen(MSG), &out, err, sizeof err),
                     DKIM_EINPUT);
    assert_non_null(strstr(err, "include From"));
    o.headers = NULL;
    o.domain = "bad domain";
    assert_int_equal(dkim_sign_message(ed_signer, &o, MSG, strlen(MSG), &out, err, sizeof err),
                     DKIM_EINPUT);
    buf_free(&out);
}

static void header_list_null_string(void **state)
{
    /* h= names Subject twice and Cc once, the message has one Subject and no
     * Cc: the extra names hash nothing, so adding either breaks it. */
    struct dkim_sign_options o = opts("rsa");
    o.headers = "from:subject:subject:cc";
    o.identity = "alice@mail.example.test";
    char *m = sign_with(rsa_signer, &o, MSG, strlen(MSG));
    expect(m, DKIM_PASS, NULL);
    struct buf t;
    buf_init(&t, 1 << 20);
    assert_int_equal(buf_printf(&t, "Cc: eve@evil.test\r\n%s", m), 0);
    expect(t.data, DKIM_FAIL, NULL);
    buf_reset(&t);
    assert_int_equal(buf_printf(&t, "Subject: other\r\n%s", m), 0);
    expect(t.data, DKIM_FAIL, NULL);
    buf_reset(&t);
    assert_int_equal(buf_printf(&t, "To: another@example.net\r\n%s", m), 0);
    expect(t.data, DKIM_PASS, NULL);   /* To was not signed */
    buf_free(&t);
    free(m);
}

static void body_length(void **state)
{
    struct dkim_sign_options o = opts("ed");
    o.body_length = true;
    char *m = sign_with(ed_signer, &o, MSG, strlen(MSG));
    assert_non_null(strstr(m, " l=24;"));   /* "Hello Bob,\r\n\r\nsee you.\r\n" relaxed */
    expect(m, DKIM_PASS, NULL);
    struct buf t;
    buf_init(&t, 1 << 20);
    assert_int_equal(buf_printf(&t, "%sappended text\r\n", m), 0);
    expect(t.data, DKIM_PASS, NULL);
    /* A body shorter than l= fails. */
    buf_reset(&t);
    char *at = strstr(m, "see you.\r\n");
    assert_int_equal(buf_append(&t, m, (size_t)(at - m)), 0);
    expect(t.data, DKIM_FAIL, "longer than the body");
    buf_free(&t);
    free(m);
}

static void expiry(void **state)
{
    struct dkim_sign_options o = opts("ed");
    o.expire = 3600;
    char *m = sign_with(ed_signer, &o, MSG, strlen(MSG));
    assert_non_null(strstr(m, " x=1700003600;"));
    struct dkim_results r = verify_at(m, strlen(m), 1700003600);
    assert_int_equal(r.sigs[0].result, DKIM_PASS);
    dkim_results_free(&r);
    r = verify_at(m, strlen(m), 1700003601);
    assert_int_equal(r.sigs[0].result, DKIM_PERMERROR);
    assert_non_null(strstr(r.sigs[0].reason, "expired"));
    dkim_results_free(&r);
    free(m);
}

/* Signs MSG with a key published at sel._domainkey.keys.test as record. */
static struct dkim_results with_record(struct dkim_signer *s, const char *record, bool timeout,
                                       const char *identity)
{
    struct dns_zone *z = dns_zone_new();
    if (record)
        tu_zone_txt(z, "sel._domainkey.keys.test", record);
    if (timeout)
        assert_int_equal(dns_zone_add_timeout(z, "sel._domainkey.keys.test"), 0);
    struct dns_resolver *r = dns_zone_resolver_new(z);
    struct dkim_sign_options o = { .domain = "keys.test", .selector = "sel", .now = 1,
                                   .identity = identity };
    char *m = sign_with(s, &o, MSG, strlen(MSG));
    struct dkim_clock clock = { 2 };
    struct dkim_results res;
    assert_int_equal(dkim_verify_message(r, &clock, m, strlen(m), &res), 0);
    assert_int_equal(res.count, 1);
    free(m);
    dns_resolver_free(r);
    dns_zone_free(z);
    return res;
}

static void key_problems(void **state)
{
    static const struct {
        const char *extra;   /* tags put before p= of the right key */
        const char *record;  /* or a whole record */
        bool ed, timeout;
        const char *identity;
        enum dkim_result want;
        const char *why;
    } t[] = {
        { "", NULL, false, false, NULL, DKIM_PASS, "" },
        { "t=y; ", NULL, true, false, NULL, DKIM_PASS, "" },
        { NULL, "v=DKIM1; k=rsa; p=", false, false, NULL, DKIM_PERMERROR, "revoked" },
        { NULL, NULL, false, false, NULL, DKIM_PERMERROR, "no key record" },
        { NULL, NULL, false, true, NULL, DKIM_TEMPERROR, "DNS lookup" },
        { "h=sha1; ", NULL, false, false, NULL, DKIM_PERMERROR, "does not allow sha256" },
        { "s=tlsrpt; ", NULL, false, false, NULL, DKIM_PERMERROR, "not for email" },
        { "t=s; ", NULL, true, false, "a@sub.keys.test", DKIM_PERMERROR, "t=s" },
        { "t=s; ", NULL, true, false, "a@keys.test", DKIM_PASS, "" },
        { NULL, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", true,
          false, NULL, DKIM_FAIL, "signature did not verify" },
        { NULL, "garbage", false, false, NULL, DKIM_PERMERROR, "key record syntax" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *rec = NULL;
        if (t[i].extra)
            rec = tu_record(t[i].ed ? ed_key : rsa_key, t[i].extra);
        struct dkim_results r = with_record(t[i].ed ? ed_signer : rsa_signer,
                                            rec ? rec : t[i].record, t[i].timeout, t[i].identity);
        if (r.sigs[0].result != t[i].want || !strstr(r.sigs[0].reason, t[i].why))
            fail_msg("case %zu: %s (%s), want %s (%s)", i, dkim_result_name(r.sigs[0].result),
                     r.sigs[0].reason, dkim_result_name(t[i].want), t[i].why);
        if (t[i].extra && strstr(t[i].extra, "t=y"))
            assert_true(r.sigs[0].testing);
        dkim_results_free(&r);
        free(rec);
    }
    /* Key type and algorithm must agree: an Ed25519 signature, RSA key. */
    char *rsarec = tu_record(rsa_key, NULL);
    struct dkim_results r = with_record(ed_signer, rsarec, false, NULL);
    assert_int_equal(r.sigs[0].result, DKIM_PERMERROR);
    assert_non_null(strstr(r.sigs[0].reason, "does not match"));
    dkim_results_free(&r);
    free(rsarec);
    /* RSA keys under 1024 bits (RFC 8301). */
    EVP_PKEY *small = tu_gen("RSA", 768);
    char *smallrec = tu_record(small, NULL);
    struct dkim_signer *ss;
    {
        char *pem = tu_pem(small);
        char err[200];
        ss = dkim_signer_from_pem(pem, strlen(pem), err, sizeof err);
        assert_null(ss);   /* the signer refuses it too */
        assert_non_null(strstr(err, "768 bits"));
        free(pem);
    }
    /* Verify a signature made by hand with the short key: take a good
     * RSA-2048 signed message and publish the short key instead. */
    r = with_record(rsa_signer, smallrec, false, NULL);
    assert_int_equal(r.sigs[0].result, DKIM_PERMERROR);
    assert_non_null(strstr(r.sigs[0].reason, "too short"));
    dkim_results_free(&r);
    free(smallrec);
    EVP_PKEY_free(small);
}

static void rsa_sha1_and_broken(void **state)
{
    struct dkim_sign_options o = opts("rsa");
    char *m = sign_with(rsa_signer, &o, MSG, strlen(MSG));
    char *a = strstr(m, "a=rsa-sha256");
    memcpy(a, "a=rsa-sha1;;", 12);   /* same length, an empty tag-spec after */
    expect(m, DKIM_POLICY, "RFC 8301");
    free(m);
    const char *broken = "DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=rsa; h=to; "
                         "b=AAAA; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\r\n"
                         "From: a@example.test\r\n\r\nbody\r\n";
    expect(broken, DKIM_PERMERROR, "does not include From");
    /* Unsigned. */
    struct dkim_results r = verify_at(MSG, strlen(MSG), 1);
    assert_int_equal(r.count, 0);
    assert_null(r.sigs);
    dkim_results_free(&r);
}

static void lf_only_and_chunks(void **state)
{
    struct dkim_sign_options o = opts("rsa");
    o.header_canon = DKIM_CANON_SIMPLE;
    o.body_canon = DKIM_CANON_SIMPLE;
    char *m = sign_with(rsa_signer, &o, MSG, strlen(MSG));
    /* The same message with LF line ends verifies (bare LF is CRLF). */
    char *lf = strdup(m);
    size_t w = 0;
    for (size_t i = 0; lf[i]; i++)
        if (lf[i] != '\r')
            lf[w++] = lf[i];
    lf[w] = '\0';
    expect(lf, DKIM_PASS, NULL);
    /* Fed byte by byte, and in every chunk size up to 64: same result. */
    for (size_t step = 1; step <= 64; step++) {
        struct dkim_clock clock = { 1700000100 };
        struct dkim_verify_ctx *v = dkim_verify_begin(dns, &clock);
        size_t len = strlen(m);
        for (size_t i = 0; i < len; i += step)
            assert_int_equal(dkim_verify_write(v, m + i, step < len - i ? step : len - i), 0);
        struct dkim_results r;
        assert_int_equal(dkim_verify_finish(v, &r), 0);
        dkim_verify_free(v);
        assert_int_equal(r.count, 1);
        if (r.sigs[0].result != DKIM_PASS)
            fail_msg("step %zu: %s (%s)", step, dkim_result_name(r.sigs[0].result),
                     r.sigs[0].reason);
        dkim_results_free(&r);
    }
    /* Field by field, then the body in pieces. */
    {
        struct dkim_clock clock = { 1700000100 };
        struct dkim_verify_ctx *v = dkim_verify_begin(dns, &clock);
        size_t hl, bo, len = strlen(m);
        mail_split_message(m, len, &hl, &bo);
        struct mail_field f[32];
        size_t nf;
        mail_header_fields(m, hl, f, 32, &nf, NULL);
        for (size_t i = 0; i < nf; i++)
            assert_int_equal(dkim_verify_header(v, f[i].raw.p, f[i].raw.len), 0);
        assert_int_equal(dkim_verify_eoh(v), 0);
        for (size_t i = bo; i < len; i += 5)
            assert_int_equal(dkim_verify_body(v, m + i, len - i < 5 ? len - i : 5), 0);
        struct dkim_results r;
        assert_int_equal(dkim_verify_finish(v, &r), 0);
        dkim_verify_free(v);
        assert_int_equal(r.sigs[0].result, DKIM_PASS);
        dkim_results_free(&r);
    }
    /* Signing fed in chunks gives the same signature as in one piece
     * (Ed25519 is deterministic). */
    struct dkim_sign_options oe = opts("ed");
    struct buf one, two;
    buf_init(&one, 1 << 16);
    buf_init(&two, 1 << 16);
    char err[200];
    assert_int_equal(dkim_sign_message(ed_signer, &oe, MSG, strlen(MSG), &one, err, sizeof err), 0);
    enum dkim_status st;
    struct dkim_sign_ctx *c = dkim_sign_begin(ed_signer, &oe, &st, err, sizeof err);
    for (size_t i = 0; MSG[i]; i++)
        assert_int_equal(dkim_sign_write(c, MSG + i, 1), DKIM_OK);
    assert_int_equal(dkim_sign_finish(c, &two, err, sizeof err), DKIM_OK);
    dkim_sign_free(c);
    assert_string_equal(buf_cstr(&one), buf_cstr(&two));
    buf_free(&one);
    buf_free(&two);
    free(lf);
    free(m);
}

static void many_signatures(void **state)
{
    struct buf t;
    buf_init(&t, 1 << 22);
    assert_int_equal(buf_append_str(&t, MSG), 0);
    for (int i = 0; i < DKIM_MAX_SIGNATURES + 2; i++) {
        struct dkim_sign_options o = opts(i % 2 ? "rsa" : "ed");
        struct buf sig;
        buf_init(&sig, 1 << 16);
        char err[200];
        assert_int_equal(dkim_sign_message(i % 2 ? rsa_signer : ed_signer, &o, t.data, t.len,
                                           &sig, err, sizeof err), 0);
        assert_int_equal(buf_append(&sig, t.data, t.len), 0);
        buf_free(&t);
        t = sig;
        t.cap = 1 << 22;
    }
    struct dkim_results r = verify_at(t.data, t.len, 1700000100);
    assert_int_equal(r.count, DKIM_MAX_SIGNATURES + 2);
    for (size_t i = 0; i < r.count; i++)
        assert_int_equal(r.sigs[i].result, i < DKIM_MAX_SIGNATURES ? DKIM_PASS : DKIM_NEUTRAL);
    dkim_results_free(&r);
    buf_free(&t);
}

static void key_cache(void **state)
{
    struct dkim_keycache *kc = dkim_keycache_new(2);
    struct dkim_sign_options o = opts("rsa");
    char *m = sign_with(rsa_signer, &o, MSG, strlen(MSG));
    for (int i = 0; i < 3; i++) {
        struct dkim_clock clock = { 1700000100 };
        struct dkim_verify_ctx *v = dkim_verify_begin(dns, &clock);
        dkim_verify_set_keycache(v, kc);
        assert_int_equal(dkim_verify_write(v, m, strlen(m)), 0);
        struct dkim_results r;
        assert_int_equal(dkim_verify_finish(v, &r), 0);
        dkim_verify_free(v);
        assert_int_equal(r.sigs[0].result, DKIM_PASS);
        dkim_results_free(&r);
    }
    dkim_keycache_free(kc);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc8463_vector),
        cmocka_unit_test(round_trips),
        cmocka_unit_test(default_headers),
        cmocka_unit_test(header_list_null_string),
        cmocka_unit_test(body_length),
        cmocka_unit_test(expiry),
        cmocka_unit_test(key_problems),
        cmocka_unit_test(rsa_sha1_and_broken),
        cmocka_unit_test(lf_only_and_chunks),
        cmocka_unit_test(many_signatures),
        cmocka_unit_test(key_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
