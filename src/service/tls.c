/* TLS contexts for the service (OpenSSL 3).
 *
 * Server: TLS 1.2 or newer, forward-secret AEAD suites for 1.2 (Mozilla's
 * "intermediate" list; 1.3 suites are OpenSSL's defaults), no compression
 * or renegotiation, buffers released while idle. The certificate chain and
 * key come from [tls] cert/key, or from data_dir/tls/{cert,key}.pem, which
 * are generated on first use: EC P-256, self-signed X509v3 for 10 years,
 * CN and subjectAltName = the host name (an IP address SAN when the host
 * name is an address literal). The directory is 0700, the key 0600, each
 * file written to a temporary name, synced and renamed; a lock file keeps
 * two processes from generating at once. Existing files are never
 * overwritten: a broken one is an error for the operator to look at.
 *
 * Client: TLS 1.2+, peers verified against the system CA store (the
 * caller sets the expected host name on each SSL).
 *
 * It does not do I/O on connections: the listeners wrap SSL objects made
 * from these contexts in bufferevents. */
#include "service/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

#define TLS_CERT_DAYS 3650
#define TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

/* "what: the OpenSSL reason" (or just what), and the OpenSSL queue emptied */
__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (e && n >= 0 && (size_t)n < errlen) {
        const char *reason = ERR_reason_error_string(e);
        if (reason)
            snprintf(err + n, errlen - (size_t)n, ": %s", reason);
        else
            snprintf(err + n, errlen - (size_t)n, ": OpenSSL error %lx", e);
    }
}

/* Encrypted keys fail instead of prompting on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return 0;
}

/* ---- generation ---- */

static EVP_PKEY *make_key(void)
{
    return EVP_EC_gen("P-256");
}

static X509 *make_cert(EVP_PKEY *key, const char *hostname)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    GENERAL_NAMES *sans = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    bool ok = x && serial && sans && gn;
    ok = ok && X509_set_version(x, X509_VERSION_3);
    ok = ok && BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
         BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x));
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
         X509_time_adj_ex(X509_getm_notAfter(x), TLS_CERT_DAYS, 0, NULL);
    ok = ok && X509_set_pubkey(x, key);
    X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
    /* CN is at most 64 characters (RFC 5280 ub-common-name); the SAN
     * carries the name either way */
    if (ok && strlen(hostname) <= 64)
        ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                        (const unsigned char *)hostname, -1, -1, 0);
    ok = ok && X509_set_issuer_name(x, name);
    if (ok) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(hostname);
        ERR_clear_error();
        if (ip) {
            GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        } else {
            ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
            ok = dns && ASN1_STRING_set(dns, hostname, -1);
            if (ok)
                GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
            else
                ASN1_IA5STRING_free(dns);
        }
    }
    ok = ok && sk_GENERAL_NAME_push(sans, gn);
    if (ok)
        gn = NULL;   /* owned by sans now */
    ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) == 1;
    if (ok) {
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        static const struct { int nid; const char *value; } exts[] = {
            { NID_basic_constraints, "critical,CA:FALSE" },
            { NID_key_usage, "critical,digitalSignature" },
            { NID_ext_key_usage, "serverAuth" },
            { NID_subject_key_identifier, "hash" },
        };
        for (size_t i = 0; ok && i < sizeof exts / sizeof exts[0]; i++) {
            X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
            ok = ext && X509_add_ext(x, ext, -1);
            X509_EXTENSION_free(ext);
        }
    }
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(sans);
    BN_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes path through a temporary file in the same directory, synced and
 * renamed, with the given mode. Either key or cert is written. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, char *err,
                     size_t errlen)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        set_err(err, errlen, "%s: path too long", path);
        return -1;
    }
    int fd = mkstemp(tmp);   /* mode 0600 */
    if (fd < 0) {
        set_err(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    BIO *b = BIO_new_fd(fd, BIO_NOCLOSE);
    bool ok = b && fchmod(fd, mode) == 0;
    if (ok)
        ok = key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_bio_X509(b, cert);
    ok = ok && BIO_flush(b) == 1;
    BIO_free(b);
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        int e = errno;
        unlink(tmp);
        set_err(err, errlen, "%s: cannot write: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

static int make_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        set_err(err, errlen, "%s: not a directory", path);
        return -1;
    }
    set_err(err, errlen, "%s: cannot create: %s", path, strerror(errno));
    return -1;
}

/* 1 exists, 0 absent, -1 error */
static int exists(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    set_err(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
}

/* data_dir/tls/{cert,key}.pem, generated when either is missing */
static int self_signed(const char *data_dir, const char *hostname, char *certp, char *keyp,
                       size_t plen, char *err, size_t errlen)
{
    char dir[PATH_MAX], lockp[PATH_MAX];
    if (!data_dir || !data_dir[0] || !hostname || !hostname[0]) {
        set_err(err, errlen, "no [tls] cert and key, and no data_dir and hostname to make one");
        return -1;
    }
    if ((size_t)snprintf(dir, sizeof dir, "%s/tls", data_dir) >= sizeof dir ||
        (size_t)snprintf(lockp, sizeof lockp, "%s/.lock", dir) >= sizeof lockp ||
        (size_t)snprintf(certp, plen, "%s/cert.pem", dir) >= plen ||
        (size_t)snprintf(keyp, plen, "%s/key.pem", dir) >= plen) {
        set_err(err, errlen, "%s: path too long", data_dir);
        return -1;
    }
    if (make_dir(data_dir, err, errlen) != 0 || make_dir(dir, err, errlen) != 0)
        return -1;
    int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0) {
        set_err(err, errlen, "%s: %s", lockp, strerror(errno));
        return -1;
    }
    if (flock(lock, LOCK_EX) != 0) {
        set_err(err, errlen, "%s: lock: %s", lockp, strerror(errno));
        close(lock);
        return -1;
    }
    int rc = -1;
    int hc = exists(certp, err, errlen), hk = hc < 0 ? -1 : exists(keyp, err, errlen);
    if (hc < 0 || hk < 0)
        goto out;
    if (hc && hk) {
        rc = 0;
        goto out;
    }
    EVP_PKEY *key = make_key();
    X509 *cert = key ? make_cert(key, hostname) : NULL;
    if (!cert) {
        set_err(err, errlen, "cannot make a self-signed certificate for %s", hostname);
    } else if (write_pem(keyp, 0600, key, NULL, err, errlen) == 0 &&
               write_pem(certp, 0644, NULL, cert, err, errlen) == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        log_msg(LOG_INFO, "tls", "event=self_signed_generated cert=%s host=%s", certp, hostname);
        rc = 0;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
out:
    flock(lock, LOCK_UN);
    close(lock);
    return rc;
}

/* ---- contexts ---- */

SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *data_dir,
                        const char *hostname, char *err, size_t errlen)
{
    char certp[PATH_MAX], keyp[PATH_MAX];
    bool has_cert = cert && cert[0], has_key = key && key[0];
    if (has_cert != has_key) {
        set_err(err, errlen, "[tls] cert and key go together: %s is missing",
                has_cert ? "key" : "cert");
        return NULL;
    }
    if (has_cert) {
        if ((size_t)snprintf(certp, sizeof certp, "%s", cert) >= sizeof certp ||
            (size_t)snprintf(keyp, sizeof keyp, "%s", key) >= sizeof keyp) {
            set_err(err, errlen, "[tls] path too long");
            return NULL;
        }
    } else if (self_signed(data_dir, hostname, certp, keyp, sizeof certp, err, errlen) != 0) {
        return NULL;
    }

    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        set_err(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
        set_err(err, errlen, "cannot configure the TLS context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_dh_auto(ctx, 1);
    static const unsigned char sid[] = "sesame";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);

    if (SSL_CTX_use_certificate_chain_file(ctx, certp) != 1) {
        set_err(err, errlen, "%s: cannot load the certificate", certp);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, keyp, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "%s: cannot load the private key", keyp);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, errlen, "%s does not match %s", keyp, certp);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *tls_client_ctx(char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        set_err(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        set_err(err, errlen, "cannot configure the TLS context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        set_err(err, errlen, "cannot load the system CA certificates");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void tls_describe(const SSL *ssl, char *out, size_t outlen)
{
    if (!outlen)
        return;
    const SSL_CIPHER *c = ssl ? SSL_get_current_cipher(ssl) : NULL;
    if (!c) {
        out[0] = '\0';
        return;
    }
    snprintf(out, outlen, "%s %s", SSL_get_version(ssl), SSL_CIPHER_get_name(c));
}
