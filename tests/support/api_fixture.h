/* A fixture for tests of the HTTP API's outbound routes (header-only,
 * static; include after cmocka.h): a real SQLite store in a temporary
 * data_dir, two accounts made by account_create (alice in the sandbox,
 * bob in production), an API context without DNS, and api_handle called
 * directly with the last answer parsed into AF (status, JSON, headers). */
#ifndef SESAME_TESTS_API_FIXTURE_H
#define SESAME_TESTS_API_FIXTURE_H
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/api.h"

struct api_fixture {
    char dir[64];
    struct sesame_config cfg;
    struct store *st;
    struct cred_cache *creds;
    struct authfail_limiter *authfail;
    struct api_context ctx;
    struct store_account a, b;
    struct account_secrets sa, sb;
    char auth_a[ACCOUNT_SECRET_MAX + 16], auth_b[ACCOUNT_SECRET_MAX + 16];
    /* the last answer */
    int status;
    json_t *json;            /* NULL when the body is not JSON */
    char *body;
    size_t len;
    const char *content_type;
    unsigned retry_after;
    const char *error_code;
};

static struct api_fixture AF;

#define AUTH_A AF.auth_a
#define AUTH_B AF.auth_b

static __attribute__((unused)) int af_setup(void **state)
{
    (void)state;
    memset(&AF, 0, sizeof AF);
    snprintf(AF.dir, sizeof AF.dir, "/tmp/sesame-test-apiout-XXXXXX");
    if (!mkdtemp(AF.dir))
        return -1;
    config_defaults(&AF.cfg);
    snprintf(AF.cfg.data_dir, sizeof AF.cfg.data_dir, "%s", AF.dir);
    char err[256] = "";
    AF.st = store_open("sqlite", AF.dir, err, sizeof err);
    if (!AF.st) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    AF.creds = cred_cache_new();
    AF.authfail = authfail_new(3, 600);
    if (!AF.creds || !AF.authfail)
        return -1;
    AF.ctx = (struct api_context){ .st = AF.st, .creds = AF.creds, .authfail = AF.authfail,
                                   .cfg = &AF.cfg };
    account_set_hash_cost(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
    if (account_create(AF.st, "alice", false, 0, 0, &AF.a, &AF.sa, err, sizeof err) != STORE_OK ||
        account_create(AF.st, "bob", true, 0, 0, &AF.b, &AF.sb, err, sizeof err) != STORE_OK)
        return -1;
    snprintf(AF.auth_a, sizeof AF.auth_a, "Bearer %s", AF.sa.api_key);
    snprintf(AF.auth_b, sizeof AF.auth_b, "Bearer %s", AF.sb.api_key);
    return 0;
}

static void af_clear(void)
{
    json_decref(AF.json);
    AF.json = NULL;
    free(AF.body);
    AF.body = NULL;
}

static __attribute__((unused)) int af_teardown(void **state)
{
    (void)state;
    af_clear();
    authfail_free(AF.authfail);
    cred_cache_free(AF.creds);
    store_close(AF.st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", AF.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static __attribute__((unused)) int af_callx(const char *method, const char *path,
                                            const char *query, const char *auth,
                                            const char *body, size_t body_len)
{
    af_clear();
    struct api_request req = {
        .method = method, .path = path, .query = query, .authorization = auth,
        .client_ip = "192.0.2.1", .body = body, .body_len = body_len,
    };
    struct api_response resp;
    memset(&resp, 0x5a, sizeof resp);     /* api_handle must set every field */
    api_handle(&AF.ctx, &req, &resp);
    AF.status = resp.status;
    AF.len = resp.body.len;
    AF.body = malloc(AF.len + 1);
    assert_non_null(AF.body);
    if (AF.len)
        memcpy(AF.body, resp.body.data, AF.len);
    AF.body[AF.len] = '\0';
    buf_free(&resp.body);
    AF.content_type = resp.content_type;
    AF.retry_after = resp.retry_after;
    AF.error_code = resp.error_code;
    if (getenv("SESAME_TEST_API_DUMP"))
        printf("%s %s%s%s -> %d %s\n", method, path, query ? "?" : "", query ? query : "",
               AF.status, AF.len < 2000 ? AF.body : "(long body)\n");
    if (AF.content_type && strcmp(AF.content_type, "application/json") == 0) {
        json_error_t e;
        AF.json = json_loadb(AF.body, AF.len, JSON_REJECT_DUPLICATES, &e);
        if (!AF.json)
            fail_msg("response is not JSON: %s (%s)", AF.body, e.text);
    }
    return AF.status;
}

static __attribute__((unused)) int af_call(const char *method, const char *path,
                                           const char *auth, const char *body)
{
    return af_callx(method, path, NULL, auth, body, body ? strlen(body) : 0);
}

/* The error shape: {"error": {"code": CODE, "message": "...", ...}}. */
static __attribute__((unused)) void af_expect_error(int status, const char *code)
{
    if (AF.status != status)
        fail_msg("status %d, expected %d: %s", AF.status, status, AF.body);
    assert_non_null(AF.json);
    assert_int_equal(json_object_size(AF.json), 1);
    json_t *e = json_object_get(AF.json, "error");
    assert_true(json_is_object(e));
    const char *c = json_string_value(json_object_get(e, "code"));
    if (!c || strcmp(c, code) != 0)
        fail_msg("code %s, expected %s: %s", c ? c : "(none)", code, AF.body);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    assert_non_null(AF.error_code);
    assert_string_equal(AF.error_code, code);
}

static __attribute__((unused)) void af_expect_status(int status)
{
    if (AF.status != status)
        fail_msg("status %d, expected %d: %s", AF.status, status, AF.body);
    assert_null(AF.error_code);
}

static __attribute__((unused)) const char *af_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        fail_msg("no string %s in %s", key, AF.body);
    return s;
}

#endif
