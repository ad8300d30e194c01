/* DKIM key records (RFC 6376 §3.6.1, RFC 8463 §4, RFC 8301 §3.2): the TXT
 * text at selector._domainkey.domain parsed into a public key and its
 * flags. Every rejection says why; the caller turns it into a permerror. */
#include <string.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/dkim_internal.h"

static bool list_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Does the colon-separated list (FWS around items) hold word? */
bool dkim_list_has(struct sv list, const char *word);
bool dkim_list_has(struct sv list, const char *word)
{
    size_t i = 0;
    while (i <= list.len) {
        size_t j = i;
        while (j < list.len && list.p[j] != ':')
            j++;
        struct sv item = sv_sub(list, i, j);
        while (item.len && list_ws(item.p[0])) {
            item.p++;
            item.len--;
        }
        while (item.len && list_ws(item.p[item.len - 1]))
            item.len--;
        if (sv_eq_ci_cstr(item, word))
            return true;
        i = j + 1;
    }
    return false;
}

const EVP_MD *dkim_sha256(void);

void dkim_key_clear(struct dkim_key *k)
{
    EVP_PKEY_CTX_free(k->vctx);
    EVP_MD_CTX_free(k->edctx);
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof *k);
}

/* The verification context, set up once per key. */
static int prepare(struct dkim_key *k)
{
    if (k->type == DKIM_KEY_ED25519) {
        k->edctx = EVP_MD_CTX_new();
        return k->edctx && EVP_DigestVerifyInit(k->edctx, NULL, NULL, NULL, k->pkey) == 1 ? 0 : -1;
    }
    k->vctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    return k->vctx && EVP_PKEY_verify_init(k->vctx) == 1 &&
                   EVP_PKEY_CTX_set_rsa_padding(k->vctx, RSA_PKCS1_PADDING) == 1 &&
                   EVP_PKEY_CTX_set_signature_md(k->vctx, dkim_sha256()) == 1
               ? 0
               : -1;
}

int dkim_key_dup(const struct dkim_key *src, struct dkim_key *dst)
{
    *dst = *src;
    dst->vctx = NULL;
    dst->edctx = NULL;
    if (EVP_PKEY_up_ref(src->pkey) != 1) {
        dst->pkey = NULL;
        return -1;
    }
    if (src->vctx)
        dst->vctx = EVP_PKEY_CTX_dup(src->vctx);
    if (src->edctx && (dst->edctx = EVP_MD_CTX_new()) &&
        EVP_MD_CTX_copy_ex(dst->edctx, src->edctx) != 1) {
        EVP_MD_CTX_free(dst->edctx);
        dst->edctx = NULL;
    }
    if ((src->vctx && !dst->vctx) || (src->edctx && !dst->edctx)) {
        /* Not every provider can copy a context: set up a new one. */
        EVP_PKEY_CTX_free(dst->vctx);
        EVP_MD_CTX_free(dst->edctx);
        dst->vctx = NULL;
        dst->edctx = NULL;
        if (prepare(dst) != 0) {
            dkim_key_clear(dst);
            return -1;
        }
    }
    return 0;
}

static EVP_PKEY *rsa_from_der(const unsigned char *der, size_t len)
{
    const unsigned char *q = der;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)len);
    if (pk && q == der + len && EVP_PKEY_is_a(pk, "RSA"))
        return pk;
    EVP_PKEY_free(pk);
    /* Some publish the bare RSAPublicKey (PKCS#1); dkimpy and OpenDKIM
     * accept it, so do we. */
    q = der;
    pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)len);
    if (pk && q == der + len)
        return pk;
    EVP_PKEY_free(pk);
    return NULL;
}

static EVP_PKEY *ed25519_from_der(const unsigned char *der, size_t len)
{
    if (len == 32)
        return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, len);
    /* Not RFC 8463, but seen: a SubjectPublicKeyInfo. */
    const unsigned char *q = der;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &q, (long)len);
    if (pk && q == der + len && EVP_PKEY_is_a(pk, "ED25519"))
        return pk;
    EVP_PKEY_free(pk);
    return NULL;
}

int dkim_key_parse(const char *rec, size_t len, struct dkim_key *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > DKIM_MAX_KEY_RECORD_LEN)
        return dkim_err(err, errlen, "key record longer than %d octets", DKIM_MAX_KEY_RECORD_LEN);
    if (len && memchr(rec, '\0', len))
        return dkim_err(err, errlen, "key record holds a NUL octet");
    struct dkim_taglist tl;
    char why[160];
    if (dkim_taglist_parse(rec, len, &tl, why, sizeof why) != 0)
        return dkim_err(err, errlen, "key record syntax: %s", why);

    const struct dkim_tag *t = dkim_taglist_find(&tl, "v");
    if (t) {
        if (t != &tl.tags[0])
            return dkim_err(err, errlen, "key record v= is not the first tag");
        if (t->value.len != 5 || memcmp(t->value.p, "DKIM1", 5) != 0)
            return dkim_err(err, errlen, "key record v=%.*s is not DKIM1",
                            (int)(t->value.len > 16 ? 16 : t->value.len), t->value.p);
    }
    out->sha256_ok = out->sha1_ok = true;
    if ((t = dkim_taglist_find(&tl, "h"))) {
        out->sha256_ok = dkim_list_has(t->value, "sha256");
        out->sha1_ok = dkim_list_has(t->value, "sha1");
    }
    out->type = DKIM_KEY_RSA;
    if ((t = dkim_taglist_find(&tl, "k"))) {
        if (sv_eq_ci_cstr(t->value, "rsa"))
            out->type = DKIM_KEY_RSA;
        else if (sv_eq_ci_cstr(t->value, "ed25519"))
            out->type = DKIM_KEY_ED25519;
        else
            return dkim_err(err, errlen, "key record has unknown key type k=%.*s",
                            (int)(t->value.len > 32 ? 32 : t->value.len), t->value.p);
    }
    if ((t = dkim_taglist_find(&tl, "s")) && !dkim_list_has(t->value, "*") &&
        !dkim_list_has(t->value, "email"))
        return dkim_err(err, errlen, "key record is not for email (s=%.*s)",
                        (int)(t->value.len > 32 ? 32 : t->value.len), t->value.p);
    if ((t = dkim_taglist_find(&tl, "t"))) {
        out->testing = dkim_list_has(t->value, "y");
        out->strict = dkim_list_has(t->value, "s");
    }
    if (!(t = dkim_taglist_find(&tl, "p")))
        return dkim_err(err, errlen, "key record has no p= tag");
    if (t->value.len == 0)
        return dkim_err(err, errlen, "key revoked (empty p=)");

    unsigned char der[2048];
    size_t derlen = 0;
    const char *bwhy = NULL;
    if (dkim_base64_decode(t->value, der, sizeof der, &derlen, &bwhy) != 0)
        return dkim_err(err, errlen, "key record p= is not valid base64 (%s)", bwhy);
    if (out->type == DKIM_KEY_ED25519) {
        out->pkey = ed25519_from_der(der, derlen);
        if (!out->pkey)
            return dkim_err(err, errlen, "key record p= is not an Ed25519 public key "
                                         "(%zu octets, want 32)", derlen);
        out->bits = 256;
        if (prepare(out) != 0) {
            dkim_key_clear(out);
            return dkim_err(err, errlen, "cannot set up Ed25519 verification");
        }
        return 0;
    }
    out->pkey = rsa_from_der(der, derlen);
    if (!out->pkey)
        return dkim_err(err, errlen, "key record p= is not an RSA public key");
    int bits = EVP_PKEY_get_bits(out->pkey);
    out->bits = bits > 0 ? (unsigned)bits : 0;
    if (bits < DKIM_MIN_RSA_BITS) {
        dkim_key_clear(out);
        return dkim_err(err, errlen, "RSA key of %d bits is too short (RFC 8301: at least %d)",
                        bits, DKIM_MIN_RSA_BITS);
    }
    if (bits > DKIM_MAX_RSA_BITS) {
        dkim_key_clear(out);
        return dkim_err(err, errlen, "RSA key of %d bits is longer than %d", bits,
                        DKIM_MAX_RSA_BITS);
    }
    if (prepare(out) != 0) {
        dkim_key_clear(out);
        return dkim_err(err, errlen, "cannot set up RSA verification");
    }
    return 0;
}
