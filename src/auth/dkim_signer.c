/* The DKIM signer (see dkim_signer.h): private key loading with mode checks,
 * signing a header digest, the public key record, and key generation. The
 * PEM text is wiped from memory once parsed. Signing contexts are set up
 * once per key and reused under a lock (what `openssl speed` measures). */
#include "auth/dkim_signer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/dkim_internal.h"

const EVP_MD *dkim_sha256(void);

struct dkim_signer {
    EVP_PKEY *pkey;
    enum dkim_algorithm alg;
    unsigned bits;
    pthread_mutex_t lock;
    EVP_PKEY_CTX *rsa_ctx;   /* sign_init done, PKCS#1 v1.5, SHA-256 */
    EVP_MD_CTX *ed_ctx;      /* DigestSignInit done */
};

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static int setup_ctx(struct dkim_signer *s)
{
    if (s->alg == DKIM_ALG_ED25519_SHA256) {
        EVP_MD_CTX_free(s->ed_ctx);
        s->ed_ctx = EVP_MD_CTX_new();
        return s->ed_ctx && EVP_DigestSignInit(s->ed_ctx, NULL, NULL, NULL, s->pkey) == 1 ? 0 : -1;
    }
    EVP_PKEY_CTX_free(s->rsa_ctx);
    s->rsa_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->pkey, NULL);
    return s->rsa_ctx && EVP_PKEY_sign_init(s->rsa_ctx) == 1 &&
                   EVP_PKEY_CTX_set_rsa_padding(s->rsa_ctx, RSA_PKCS1_PADDING) == 1 &&
                   EVP_PKEY_CTX_set_signature_md(s->rsa_ctx, dkim_sha256()) == 1
               ? 0
               : -1;
}

static struct dkim_signer *from_pkey(EVP_PKEY *pk, char *err, size_t errlen)
{
    struct dkim_signer *s = calloc(1, sizeof *s);
    if (!s) {
        EVP_PKEY_free(pk);
        dkim_err(err, errlen, "out of memory");
        return NULL;
    }
    s->pkey = pk;
    if (EVP_PKEY_is_a(pk, "ED25519")) {
        s->alg = DKIM_ALG_ED25519_SHA256;
        s->bits = 256;
    } else if (EVP_PKEY_is_a(pk, "RSA")) {
        int bits = EVP_PKEY_get_bits(pk);
        s->alg = DKIM_ALG_RSA_SHA256;
        s->bits = bits > 0 ? (unsigned)bits : 0;
        if (bits < DKIM_MIN_RSA_BITS || bits > DKIM_MAX_RSA_BITS) {
            dkim_err(err, errlen, "RSA key of %d bits: DKIM keys must have %d to %d bits "
                                  "(RFC 8301)", bits, DKIM_MIN_RSA_BITS, DKIM_MAX_RSA_BITS);
            EVP_PKEY_free(pk);
            free(s);
            return NULL;
        }
    } else {
        dkim_err(err, errlen, "the key is neither RSA nor Ed25519");
        EVP_PKEY_free(pk);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    if (setup_ctx(s) != 0) {
        dkim_err(err, errlen, "cannot set up signing with this key");
        dkim_signer_free(s);
        return NULL;
    }
    return s;
}

struct dkim_signer *dkim_signer_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
    if (len > DKIM_MAX_KEY_FILE) {
        dkim_err(err, errlen, "key larger than %d octets", DKIM_MAX_KEY_FILE);
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        dkim_err(err, errlen, "out of memory");
        return NULL;
    }
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!pk) {
        bool enc = len && memmem(pem, len, "ENCRYPTED", 9) != NULL;
        dkim_err(err, errlen, enc ? "the key is encrypted (a passphrase is not supported)"
                                  : "not a PEM private key");
        return NULL;
    }
    return from_pkey(pk, err, errlen);
}

struct dkim_signer *dkim_signer_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        dkim_err(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        dkim_err(err, errlen, "key file %s is not a regular file", path);
        return NULL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        dkim_err(err, errlen, "key file %s is accessible by group or others (mode %04o); "
                              "run: chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
        return NULL;
    }
    if (st.st_size > DKIM_MAX_KEY_FILE) {
        close(fd);
        dkim_err(err, errlen, "key file %s is larger than %d octets", path, DKIM_MAX_KEY_FILE);
        return NULL;
    }
    char *pem = malloc(DKIM_MAX_KEY_FILE + 1);
    if (!pem) {
        close(fd);
        dkim_err(err, errlen, "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, pem + n, DKIM_MAX_KEY_FILE + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            dkim_err(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
            close(fd);
            OPENSSL_cleanse(pem, n);
            free(pem);
            return NULL;
        }
        if (r == 0 || (n += (size_t)r) > DKIM_MAX_KEY_FILE)
            break;
    }
    close(fd);
    struct dkim_signer *s = NULL;
    if (n > DKIM_MAX_KEY_FILE) {
        dkim_err(err, errlen, "key file %s is larger than %d octets", path, DKIM_MAX_KEY_FILE);
    } else {
        char why[200];
        s = dkim_signer_from_pem(pem, n, why, sizeof why);
        if (!s)
            dkim_err(err, errlen, "key file %s: %s", path, why);
    }
    OPENSSL_cleanse(pem, n > DKIM_MAX_KEY_FILE ? DKIM_MAX_KEY_FILE + 1 : n);
    free(pem);
    return s;
}

void dkim_signer_free(struct dkim_signer *s)
{
    if (!s)
        return;
    EVP_PKEY_CTX_free(s->rsa_ctx);
    EVP_MD_CTX_free(s->ed_ctx);
    EVP_PKEY_free(s->pkey);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

enum dkim_algorithm dkim_signer_algorithm(const struct dkim_signer *s) { return s->alg; }
unsigned dkim_signer_bits(const struct dkim_signer *s) { return s->bits; }

static int sign_locked(struct dkim_signer *s, const unsigned char digest[32], unsigned char *sig,
                       size_t *siglen)
{
    size_t n = DKIM_MAX_SIG_LEN;
    int ok;
    if (s->alg == DKIM_ALG_ED25519_SHA256)
        ok = s->ed_ctx && EVP_DigestSign(s->ed_ctx, sig, &n, digest, 32) == 1;
    else
        ok = s->rsa_ctx && EVP_PKEY_sign(s->rsa_ctx, sig, &n, digest, 32) == 1;
    if (!ok)
        return -1;
    *siglen = n;
    return 0;
}

int dkim_signer_sign(struct dkim_signer *s, const unsigned char digest[32], unsigned char *sig,
                     size_t *siglen)
{
    pthread_mutex_lock(&s->lock);
    int rc = sign_locked(s, digest, sig, siglen);
    if (rc != 0 && setup_ctx(s) == 0)   /* a context that refuses reuse: start afresh */
        rc = sign_locked(s, digest, sig, siglen);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int record_of(EVP_PKEY *pk, bool ed, struct buf *out)
{
    unsigned char raw[32];
    unsigned char *der = NULL;
    int rc = -1;
    if (ed) {
        size_t n = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(pk, raw, &n) == 1 && n == 32 &&
            buf_append_str(out, "v=DKIM1; k=ed25519; p=") == 0 &&
            dkim_base64_encode(raw, n, out) == 0)
            rc = 0;
        return rc;
    }
    int n = i2d_PUBKEY(pk, &der);
    if (n > 0 && buf_append_str(out, "v=DKIM1; k=rsa; p=") == 0 &&
        dkim_base64_encode(der, (size_t)n, out) == 0)
        rc = 0;
    OPENSSL_free(der);
    return rc;
}

int dkim_signer_record(const struct dkim_signer *s, struct buf *out)
{
    return record_of(s->pkey, s->alg == DKIM_ALG_ED25519_SHA256, out);
}

enum dkim_status dkim_keygen(enum dkim_algorithm alg, unsigned bits, bool force,
                             const char *path, struct buf *record, char *err, size_t errlen)
{
    bool ed = alg == DKIM_ALG_ED25519_SHA256;
    if (alg == DKIM_ALG_RSA_SHA1) {
        dkim_err(err, errlen, "rsa-sha1 must not be used for signing (RFC 8301)");
        return DKIM_EINPUT;
    }
    if (!ed) {
        if (bits == 0)
            bits = DKIM_DEFAULT_RSA_BITS;
        if (bits < DKIM_MIN_RSA_BITS || bits > DKIM_MAX_RSA_BITS) {
            dkim_err(err, errlen, "RSA keys must have %d to %d bits (RFC 8301)",
                     DKIM_MIN_RSA_BITS, DKIM_MAX_RSA_BITS);
            return DKIM_EINPUT;
        }
        if (bits < 2048 && !force) {
            dkim_err(err, errlen, "RSA keys under 2048 bits are weak (RFC 8301 §3.2); "
                                  "add --force to generate one anyway");
            return DKIM_EINPUT;
        }
    }
    EVP_PKEY *pk = ed ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                      : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    if (!pk) {
        dkim_err(err, errlen, "key generation failed");
        return DKIM_ESYS;
    }
    enum dkim_status st = DKIM_ESYS;
    BIO *mem = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pemlen = 0;
    if (!mem || PEM_write_bio_PrivateKey(mem, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
        (pemlen = BIO_get_mem_data(mem, &pem)) <= 0 || record_of(pk, ed, record) != 0) {
        dkim_err(err, errlen, "cannot encode the new key");
        goto out;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        dkim_err(err, errlen, errno == EEXIST ? "%s exists; not overwriting a key (remove it "
                                                "first)" : "cannot create %s: %s",
                 path, strerror(errno));
        goto out;
    }
    size_t off = 0;
    bool ok = fchmod(fd, 0600) == 0;
    while (ok && off < (size_t)pemlen) {
        ssize_t w = write(fd, pem + off, (size_t)pemlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            ok = false;
        else
            off += (size_t)w;
    }
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        dkim_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        goto out;
    }
    st = DKIM_OK;
out:
    if (pem && pemlen > 0)
        OPENSSL_cleanse(pem, (size_t)pemlen);
    BIO_free(mem);
    EVP_PKEY_free(pk);
    return st;
}
