/* TLS contexts: the self-signed pair generated into data_dir/tls (modes,
 * P-256, X509v3 SAN, 10 years), reused on the next start, configured
 * files, errors for bad or mismatched files, TLS 1.2 as the floor, and real
 * handshakes between the server and client contexts over a socketpair
 * (host name verification passing and failing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "service/tls.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sesame-test-tls-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", tmpdir, rel);
}

static mode_t mode_of(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

static X509 *read_cert(const char *p)
{
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_generate_and_reuse(void **state)
{
    (void)state;
    char data[512], dir[512], cert[512], key[512], err[512] = "";
    path(data, sizeof data, "var");
    path(dir, sizeof dir, "var/tls");
    path(cert, sizeof cert, "var/tls/cert.pem");
    path(key, sizeof key, "var/tls/key.pem");

    SSL_CTX *ctx = tls_server_ctx("", "", data, "mx.example.test", err, sizeof err);
    if (!ctx)
        fail_msg("%s", err);
    assert_int_equal(mode_of(dir), 0700);
    assert_int_equal(mode_of(key), 0600);
    assert_int_equal(mode_of(cert), 0644);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);

    /* the certificate: v3, P-256, CN and SAN = host name, 10 years */
    X509 *x = read_cert(cert);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
    char group[64];
    assert_true(EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, NULL));
    assert_string_equal(group, "prime256v1");
    char cn[128];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                          sizeof cn) > 0);
    assert_string_equal(cn, "mx.example.test");
    assert_int_equal(X509_check_host(x, "mx.example.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "other.example.test", 0, 0, NULL), 0);
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(sans);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 1);
    assert_int_equal(sk_GENERAL_NAME_value(sans, 0)->type, GEN_DNS);
    GENERAL_NAMES_free(sans);
    int days, secs;
    assert_true(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
    assert_true(days >= 3650 && days <= 3651);
    assert_true(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
    assert_true(X509_get_extension_flags(x) & EXFLAG_SS);
    /* the context serves this certificate */
    assert_int_equal(X509_cmp(SSL_CTX_get0_certificate(ctx), x), 0);
    SSL_CTX_free(ctx);

    /* second start: the same files, nothing rewritten */
    struct stat before, after;
    assert_int_equal(stat(key, &before), 0);
    ctx = tls_server_ctx(NULL, NULL, data, "mx.example.test", err, sizeof err);
    assert_non_null(ctx);
    assert_int_equal(stat(key, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(X509_cmp(SSL_CTX_get0_certificate(ctx), x), 0);
    SSL_CTX_free(ctx);
    /* no temporary files left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | grep -vc '^\\.lock$') -eq 2", dir);
    assert_int_equal(system(cmd), 0);

    /* a lost certificate (crash between the renames) makes a new pair */
    assert_int_equal(unlink(cert), 0);
    ctx = tls_server_ctx("", "", data, "mx.example.test", err, sizeof err);
    assert_non_null(ctx);
    X509 *y = read_cert(cert);
    assert_int_not_equal(X509_cmp(x, y), 0);
    X509_free(y);
    SSL_CTX_free(ctx);
    X509_free(x);

    /* the same files as configured [tls] cert and key */
    ctx = tls_server_ctx(cert, key, NULL, NULL, err, sizeof err);
    assert_non_null(ctx);
    SSL_CTX_free(ctx);
}

static void test_ip_hostname(void **state)
{
    (void)state;
    char data[512], cert[512], err[512];
    path(data, sizeof data, "ip");
    path(cert, sizeof cert, "ip/tls/cert.pem");
    SSL_CTX *ctx = tls_server_ctx("", "", data, "127.0.0.1", err, sizeof err);
    assert_non_null(ctx);
    X509 *x = read_cert(cert);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    X509_free(x);
    SSL_CTX_free(ctx);

    /* a host name longer than a CN may be still goes into the SAN */
    char longname[200];
    memset(longname, 'a', 70);
    memcpy(longname + 70, ".example.test", 14);
    path(data, sizeof data, "long");
    path(cert, sizeof cert, "long/tls/cert.pem");
    ctx = tls_server_ctx("", "", data, longname, err, sizeof err);
    if (!ctx)
        fail_msg("%s", err);
    x = read_cert(cert);
    assert_int_equal(X509_check_host(x, longname, 0, 0, NULL), 1);
    X509_free(x);
    SSL_CTX_free(ctx);
}

static void test_errors(void **state)
{
    (void)state;
    char err[512] = "", bad[512], data[512], cert[512], key[512], cert2[512], key2[512];
    /* only one of cert and key */
    assert_null(tls_server_ctx("/x.pem", "", NULL, NULL, err, sizeof err));
    assert_string_equal(err, "[tls] cert and key go together: key is missing");
    assert_null(tls_server_ctx(NULL, "/x.pem", NULL, NULL, err, sizeof err));
    assert_string_equal(err, "[tls] cert and key go together: cert is missing");

    /* a missing and a garbage file */
    path(bad, sizeof bad, "garbage.pem");
    write_file(bad, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    path(data, sizeof data, "e");
    path(cert, sizeof cert, "e/tls/cert.pem");
    path(key, sizeof key, "e/tls/key.pem");
    SSL_CTX *ctx = tls_server_ctx("", "", data, "a.test", err, sizeof err);
    assert_non_null(ctx);
    SSL_CTX_free(ctx);

    assert_null(tls_server_ctx("/nonexistent/cert.pem", key, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/cert.pem: cannot load the certificate"));
    assert_null(tls_server_ctx(bad, key, NULL, NULL, err, sizeof err));
    assert_true(strncmp(err, bad, strlen(bad)) == 0);
    assert_non_null(strstr(err, "cannot load the certificate: "));
    assert_null(tls_server_ctx(cert, bad, NULL, NULL, err, sizeof err));
    assert_true(strncmp(err, bad, strlen(bad)) == 0);
    assert_non_null(strstr(err, "cannot load the private key"));

    /* a certificate with another pair's key */
    path(data, sizeof data, "f");
    path(cert2, sizeof cert2, "f/tls/cert.pem");
    path(key2, sizeof key2, "f/tls/key.pem");
    ctx = tls_server_ctx("", "", data, "b.test", err, sizeof err);
    assert_non_null(ctx);
    SSL_CTX_free(ctx);
    assert_null(tls_server_ctx(cert, key2, NULL, NULL, err, sizeof err));
    if (!strstr(err, "key.pem: cannot load the private key: key values mismatch"))
        fail_msg("%s", err);

    /* a broken generated file is reported, not silently replaced */
    write_file(key2, "junk\n");
    assert_null(tls_server_ctx("", "", data, "b.test", err, sizeof err));
    assert_non_null(strstr(err, "key.pem: cannot load the private key"));
    struct stat st;
    assert_int_equal(stat(key2, &st), 0);
    assert_int_equal(st.st_size, 5);

    /* an encrypted key fails instead of prompting */
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    FILE *f = fopen(key2, "w");
    assert_non_null(f);
    assert_true(PEM_write_PrivateKey(f, pk, EVP_aes_128_cbc(), (unsigned char *)"pw", 2, NULL,
                                     NULL));
    fclose(f);
    EVP_PKEY_free(pk);
    assert_null(tls_server_ctx(cert2, key2, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot load the private key"));

    /* data_dir that cannot be created */
    assert_null(tls_server_ctx("", "", "/nonexistent/dir/var", "a.test", err, sizeof err));
    assert_string_equal(err, "/nonexistent/dir/var: cannot create: No such file or directory");
    path(data, sizeof data, "garbage.pem");   /* a file, not a directory */
    assert_null(tls_server_ctx("", "", data, "a.test", err, sizeof err));
    assert_non_null(strstr(err, "not a directory"));
    /* nothing to make a certificate for */
    assert_null(tls_server_ctx("", "", NULL, "a.test", err, sizeof err));
    assert_null(tls_server_ctx("", "", tmpdir, "", err, sizeof err));
    assert_int_equal(ERR_peek_error(), 0);   /* the OpenSSL queue is left clean */
}

/* Drives both ends of a handshake over a non-blocking socketpair.
 * Returns 1 when both finished, 0 when either failed. */
static int handshake(SSL *srv, SSL *cli)
{
    int sdone = 0, cdone = 0;
    for (int i = 0; i < 1000 && !(sdone && cdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(cli);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(cli, r) != SSL_ERROR_WANT_READ)
                return 0;
        }
        if (!sdone) {
            int r = SSL_do_handshake(srv);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(srv, r) != SSL_ERROR_WANT_READ)
                return 0;
        }
    }
    return sdone && cdone;
}

struct pair {
    int fds[2];
    SSL *srv, *cli;
};

static void pair_new(struct pair *p, SSL_CTX *sctx, SSL_CTX *cctx, const char *host)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fds), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(p->fds[i], F_SETFL, O_NONBLOCK), 0);
    p->srv = SSL_new(sctx);
    p->cli = SSL_new(cctx);
    assert_non_null(p->srv);
    assert_non_null(p->cli);
    SSL_set_fd(p->srv, p->fds[0]);
    SSL_set_fd(p->cli, p->fds[1]);
    SSL_set_accept_state(p->srv);
    SSL_set_connect_state(p->cli);
    SSL_set_tlsext_host_name(p->cli, host);
    assert_int_equal(X509_VERIFY_PARAM_set1_host(SSL_get0_param(p->cli), host, 0), 1);
}

static void pair_free(struct pair *p)
{
    SSL_free(p->srv);
    SSL_free(p->cli);
    close(p->fds[0]);
    close(p->fds[1]);
    ERR_clear_error();
}

static void test_handshake(void **state)
{
    (void)state;
    char data[512], cert[512], err[512] = "";
    path(data, sizeof data, "hs");
    path(cert, sizeof cert, "hs/tls/cert.pem");
    SSL_CTX *sctx = tls_server_ctx("", "", data, "mx.example.test", err, sizeof err);
    assert_non_null(sctx);
    SSL_CTX *cctx = tls_client_ctx(err, sizeof err);
    if (!cctx)
        fail_msg("%s", err);
    assert_int_equal(SSL_CTX_get_min_proto_version(cctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_verify_mode(cctx), SSL_VERIFY_PEER);

    /* the system store does not know our self-signed certificate */
    struct pair p;
    pair_new(&p, sctx, cctx, "mx.example.test");
    assert_int_equal(handshake(p.srv, p.cli), 0);
    assert_int_equal(SSL_get_verify_result(p.cli), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    pair_free(&p);

    /* trusted, right name: TLS 1.3, data flows both ways */
    X509 *x = read_cert(cert);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), x), 1);
    X509_free(x);
    pair_new(&p, sctx, cctx, "mx.example.test");
    assert_int_equal(handshake(p.srv, p.cli), 1);
    assert_int_equal(SSL_get_verify_result(p.cli), X509_V_OK);
    char desc[96];
    tls_describe(p.srv, desc, sizeof desc);
    assert_true(strncmp(desc, "TLSv1.3 TLS_", 12) == 0);
    char cdesc[96];
    tls_describe(p.cli, cdesc, sizeof cdesc);
    assert_string_equal(desc, cdesc);
    assert_int_equal(SSL_write(p.cli, "EHLO", 4), 4);
    char buf[16];
    assert_int_equal(SSL_read(p.srv, buf, sizeof buf), 4);
    assert_memory_equal(buf, "EHLO", 4);
    assert_int_equal(SSL_write(p.srv, "250", 3), 3);
    assert_int_equal(SSL_read(p.cli, buf, sizeof buf), 3);
    pair_free(&p);

    /* trusted, wrong name */
    pair_new(&p, sctx, cctx, "other.example.test");
    assert_int_equal(handshake(p.srv, p.cli), 0);
    assert_int_equal(SSL_get_verify_result(p.cli), X509_V_ERR_HOSTNAME_MISMATCH);
    pair_free(&p);

    /* TLS 1.2 works; a client that stops at TLS 1.1 is refused */
    pair_new(&p, sctx, cctx, "mx.example.test");
    SSL_set_max_proto_version(p.cli, TLS1_2_VERSION);
    assert_int_equal(handshake(p.srv, p.cli), 1);
    tls_describe(p.srv, desc, sizeof desc);
    assert_true(strncmp(desc, "TLSv1.2 ECDHE-ECDSA-", 20) == 0);
    pair_free(&p);

    pair_new(&p, sctx, cctx, "mx.example.test");
    SSL_set_security_level(p.cli, 0);
    SSL_set_min_proto_version(p.cli, TLS1_VERSION);
    SSL_set_max_proto_version(p.cli, TLS1_1_VERSION);
    assert_int_equal(handshake(p.srv, p.cli), 0);
    pair_free(&p);

    /* before a handshake there is nothing to describe */
    SSL *s = SSL_new(sctx);
    snprintf(desc, sizeof desc, "x");
    tls_describe(s, desc, sizeof desc);
    assert_string_equal(desc, "");
    tls_describe(NULL, desc, sizeof desc);
    assert_string_equal(desc, "");
    SSL_free(s);

    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_reuse),
        cmocka_unit_test(test_ip_hostname),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_handshake),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
