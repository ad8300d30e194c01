/* The DKIM signer (dkim_signer.h): key files refused when group/world
 * accessible, not regular, encrypted or not keys; RSA size limits; key
 * generation (mode 0600, no overwrite, RSA under 2048 only when forced)
 * and the key record it prints, which must verify what the key signs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "dkim_testutil.h"

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/sesame-dkim-signer-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void keygen_and_modes(void **state)
{
    char p[300], err[400];
    struct buf rec;
    buf_init(&rec, 8192);
    path_of(p, sizeof p, "ed.pem");
    assert_int_equal(dkim_keygen(DKIM_ALG_ED25519_SHA256, 0, false, p, &rec, err, sizeof err),
                     DKIM_OK);
    assert_true(strncmp(buf_cstr(&rec), "v=DKIM1; k=ed25519; p=", 22) == 0);
    assert_int_equal(rec.len, 22 + 44);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Never overwritten. */
    buf_reset(&rec);
    assert_int_equal(dkim_keygen(DKIM_ALG_ED25519_SHA256, 0, false, p, &rec, err, sizeof err),
                     DKIM_ESYS);
    assert_non_null(strstr(err, "not overwriting"));
    /* Load: fine at 0600 and 0400, refused with group or world bits. */
    struct dkim_signer *s = dkim_signer_load(p, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(dkim_signer_algorithm(s), DKIM_ALG_ED25519_SHA256);
    dkim_signer_free(s);
    assert_int_equal(chmod(p, 0400), 0);
    s = dkim_signer_load(p, err, sizeof err);
    assert_non_null(s);
    dkim_signer_free(s);
    static const mode_t bad[] = { 0640, 0604, 0660, 0644, 0610 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(p, bad[i]), 0);
        assert_null(dkim_signer_load(p, err, sizeof err));
        assert_non_null(strstr(err, "accessible by group or others"));
        assert_non_null(strstr(err, "chmod 600"));
    }
    assert_int_equal(chmod(p, 0600), 0);
    /* Missing file, a directory, not a key. */
    path_of(p, sizeof p, "missing.pem");
    assert_null(dkim_signer_load(p, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    assert_null(dkim_signer_load(dir, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));
    path_of(p, sizeof p, "junk.pem");
    FILE *f = fopen(p, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(chmod(p, 0600), 0);
    assert_null(dkim_signer_load(p, err, sizeof err));
    assert_non_null(strstr(err, "not a PEM private key"));
    buf_free(&rec);
}

static void rsa_sizes(void **state)
{
    char p[300], err[400];
    struct buf rec;
    buf_init(&rec, 8192);
    path_of(p, sizeof p, "rsa1024.pem");
    assert_int_equal(dkim_keygen(DKIM_ALG_RSA_SHA256, 1024, false, p, &rec, err, sizeof err),
                     DKIM_EINPUT);
    assert_non_null(strstr(err, "--force"));
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(dkim_keygen(DKIM_ALG_RSA_SHA256, 512, true, p, &rec, err, sizeof err),
                     DKIM_EINPUT);
    assert_int_equal(dkim_keygen(DKIM_ALG_RSA_SHA256, 1024, true, p, &rec, err, sizeof err),
                     DKIM_OK);
    struct dkim_signer *s = dkim_signer_load(p, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(dkim_signer_bits(s), 1024);
    /* The record printed by keygen is the one the signer derives. */
    struct buf rec2;
    buf_init(&rec2, 8192);
    assert_int_equal(dkim_signer_record(s, &rec2), 0);
    assert_string_equal(buf_cstr(&rec), buf_cstr(&rec2));
    /* And it verifies what the key signs. */
    struct dns_zone *z = dns_zone_new();
    tu_zone_txt(z, "k1._domainkey.example.test", buf_cstr(&rec));
    struct dns_resolver *r = dns_zone_resolver_new(z);
    struct dkim_sign_options o = { .domain = "example.test", .selector = "k1", .now = 5 };
    const char *msg = "From: a@example.test\r\n\r\nhi\r\n";
    struct buf out;
    buf_init(&out, 1 << 16);
    assert_int_equal(dkim_sign_message(s, &o, msg, strlen(msg), &out, err, sizeof err), DKIM_OK);
    assert_int_equal(buf_append_str(&out, msg), 0);
    struct dkim_clock clock = { 6 };
    struct dkim_results res;
    assert_int_equal(dkim_verify_message(r, &clock, out.data, out.len, &res), 0);
    assert_int_equal(res.count, 1);
    assert_int_equal(res.sigs[0].result, DKIM_PASS);
    assert_string_equal(res.sigs[0].algorithm, "rsa-sha256");
    dkim_results_free(&res);
    dkim_signer_free(s);
    dns_resolver_free(r);
    dns_zone_free(z);
    buf_free(&out);
    buf_free(&rec);
    buf_free(&rec2);
    /* Default size, and PKCS#1 "RSA PRIVATE KEY" PEM accepted. */
    EVP_PKEY *pk = tu_gen("RSA", 2048);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, pk, NULL, NULL, 0, NULL, NULL), 1);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    assert_non_null(strstr(pem, "BEGIN RSA PRIVATE KEY"));
    s = dkim_signer_from_pem(pem, (size_t)n, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(dkim_signer_bits(s), 2048);
    dkim_signer_free(s);
    BIO_free(b);
    EVP_PKEY_free(pk);
    /* Encrypted keys are refused with a reason. */
    pk = tu_gen("ED25519", 0);
    b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, pk, EVP_aes_128_cbc(), NULL, 0, NULL,
                                                   (void *)"secret"), 1);
    n = BIO_get_mem_data(b, &pem);
    assert_null(dkim_signer_from_pem(pem, (size_t)n, err, sizeof err));
    assert_non_null(strstr(err, "encrypted"));
    BIO_free(b);
    /* EC keys are not DKIM keys. */
    EVP_PKEY_free(pk);
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char *ecpem = tu_pem(pk);
    assert_null(dkim_signer_from_pem(ecpem, strlen(ecpem), err, sizeof err));
    assert_non_null(strstr(err, "neither RSA nor Ed25519"));
    free(ecpem);
    EVP_PKEY_free(pk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keygen_and_modes),
        cmocka_unit_test(rsa_sizes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
