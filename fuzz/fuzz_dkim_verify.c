/* libFuzzer target: whole-message DKIM verification through an in-memory
 * zone (dns_zone_resolver_new) holding an Ed25519 and an RSA key, for any
 * message: streamed in chunks and in one piece, which must agree. Then the
 * message is signed with the Ed25519 key and the signed message must pass
 * (when the signer accepted it). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/dkim_internal.h"
#include "auth/dkim_signer.h"
#include "dns/dns_zone.h"

static struct dns_zone *zone;
static struct dns_resolver *dns;
static struct dkim_signer *signer;

/* A fixed Ed25519 key (RFC 8032 §7.1 test 1), published as "ed"; the RFC
 * 8463 RSA key as "rsa" (signatures in the seed corpus use it). */
static void add_txt(const char *name, const char *value)
{
    unsigned char rd[1024];
    size_t len = strlen(value), o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = len - i > 255 ? 255 : len - i;
        rd[o++] = (unsigned char)n;
        memcpy(rd + o, value + i, n);
        o += n;
        i += n;
    }
    dns_zone_add_rdata(zone, name, DNS_T_TXT, rd, o);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    zone = dns_zone_new();
    add_txt("ed._domainkey.example.test",
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    add_txt("brisbane._domainkey.football.example.com",
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    add_txt("test._domainkey.football.example.com",
            "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3id"
            "Y6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lx"
            "j+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB");
    dns_zone_add_timeout(zone, "slow._domainkey.example.test");
    dns = dns_zone_resolver_new(zone);
    static const unsigned char seed[32] = {
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
        0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
    };
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    char err[200];
    signer = dkim_signer_from_pem(pem, (size_t)n, err, sizeof err);
    BIO_free(b);
    EVP_PKEY_free(pk);
    if (!signer)
        abort();
    return 0;
}

static bool same(const struct dkim_results *a, const struct dkim_results *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (a->sigs[i].result != b->sigs[i].result ||
            strcmp(a->sigs[i].reason, b->sigs[i].reason) != 0)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct dkim_clock clock = { 1528637909 };
    struct dkim_results whole, chunked;
    if (dkim_verify_message(dns, &clock, msg, size, &whole) != 0)
        abort();
    struct dkim_verify_ctx *v = dkim_verify_begin(dns, &clock);
    size_t step = size ? (size_t)data[size - 1] % 61 + 1 : 1;
    for (size_t i = 0; i < size; i += step)
        if (dkim_verify_write(v, msg + i, step < size - i ? step : size - i) != 0)
            abort();
    if (dkim_verify_finish(v, &chunked) != 0)
        abort();
    dkim_verify_free(v);
    if (!same(&whole, &chunked))
        abort();
    dkim_results_free(&whole);
    dkim_results_free(&chunked);

    /* Sign and check (a message starting with a continuation line would
     * fold it into the new field: not a message one can sign). */
    if (size && (data[0] == ' ' || data[0] == '\t'))
        return 0;
    struct dkim_sign_options o = { .domain = "example.test", .selector = "ed", .now = 1 };
    struct buf out;
    buf_init(&out, size + 8192);
    char err[300];
    if (dkim_sign_message(signer, &o, msg, size, &out, err, sizeof err) == DKIM_OK) {
        if (buf_append(&out, msg, size) != 0)
            abort();
        struct dkim_results r;
        if (dkim_verify_message(dns, &clock, out.data, out.len, &r) != 0 || r.count < 1)
            abort();
        /* The new signature is on top; it must pass unless the message's own
         * header section is too large or malformed beyond use. */
        if (r.sigs[0].result != DKIM_PASS && strstr(r.sigs[0].reason, "did not verify"))
            abort();
        dkim_results_free(&r);
    }
    buf_free(&out);
    return 0;
}
