/* Helpers for the DKIM unit tests (header-only, static): key generation
 * into signers and key records, an in-memory zone with key records, and
 * reading test data files. */
#ifndef SESAME_TESTS_DKIM_TESTUTIL_H
#define SESAME_TESTS_DKIM_TESTUTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/dkim.h"
#include "auth/dkim_internal.h"
#include "auth/dkim_signer.h"
#include "dns/dns_zone.h"

static __attribute__((unused)) EVP_PKEY *tu_gen(const char *type, unsigned bits)
{
    EVP_PKEY *pk = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, type);
    if (!pk)
        abort();
    return pk;
}

static __attribute__((unused)) char *tu_pem(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static __attribute__((unused)) struct dkim_signer *tu_signer(EVP_PKEY *pk)
{
    char *pem = tu_pem(pk);
    char err[200];
    struct dkim_signer *s = dkim_signer_from_pem(pem, strlen(pem), err, sizeof err);
    free(pem);
    if (!s) {
        fprintf(stderr, "signer: %s\n", err);
        abort();
    }
    return s;
}

/* "v=DKIM1; k=...; p=..." for any key (RSA keys of any size included). */
static __attribute__((unused)) char *tu_record(EVP_PKEY *pk, const char *extra)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    if (EVP_PKEY_is_a(pk, "ED25519")) {
        unsigned char raw[32];
        size_t n = 32;
        EVP_PKEY_get_raw_public_key(pk, raw, &n);
        if (buf_printf(&b, "v=DKIM1; k=ed25519; %sp=", extra ? extra : "") != 0 ||
            dkim_base64_encode(raw, n, &b) != 0)
            abort();
    } else {
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(pk, &der);
        if (buf_printf(&b, "v=DKIM1; k=rsa; %sp=", extra ? extra : "") != 0 ||
            dkim_base64_encode(der, (size_t)n, &b) != 0)
            abort();
        OPENSSL_free(der);
    }
    return buf_detach(&b);
}

/* Adds a TXT record, split into 255-octet strings, as wire rdata. */
static __attribute__((unused)) void tu_zone_txt(struct dns_zone *z, const char *name, const char *value)
{
    size_t len = strlen(value);
    unsigned char *rd = malloc(len + len / 255 + 2);
    size_t o = 0, i = 0;
    do {
        size_t n = len - i > 255 ? 255 : len - i;
        rd[o++] = (unsigned char)n;
        memcpy(rd + o, value + i, n);
        o += n;
        i += n;
    } while (i < len);
    if (dns_zone_add_rdata(z, name, DNS_T_TXT, rd, o) != 0)
        abort();
    free(rd);
}

static __attribute__((unused)) char *tu_read_file(const char *name, size_t *len)
{
    const char *dir = getenv("SESAME_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/dkim/%s", dir ? dir : "tests/data", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    struct buf b;
    buf_init(&b, 1 << 26);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, n) != 0)
            abort();
    fclose(f);
    *len = b.len;
    return buf_detach(&b);
}

#endif
