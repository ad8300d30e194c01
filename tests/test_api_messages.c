/* POST /v1/messages through api_handle with a real store, group commit
 * and outbound engine: a structured message is built (parsed back from
 * the queue: fields, multipart/alternative, Bcc only in the envelope), a
 * raw one is queued byte for byte, GET /v1/messages/{id} shows what was
 * queued with its Send event; every refusal has its status and code
 * (shape, addresses, 50 recipients, sizes, header injection, bare LF,
 * identity, sandbox, suppression, quota and rate with Retry-After and
 * retry_at, no engine); and account bob cannot send as alice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <time.h>

#include "api_fixture.h"
#include "service/group_commit.h"
#include "service/identities.h"
#include "service/outbound.h"

static struct group_commit *gc;
static struct outbound *ob;

static int activate_cb(const struct store_dkim_key *k, void *arg)
{
    (void)arg;
    struct store_dkim_key a = *k;
    a.status = STORE_KEY_ACTIVE;
    a.published_at = (int64_t)time(NULL);
    assert_int_equal(store_dkim_key_update(AF.st, &a), STORE_OK);
    return 0;
}

static void verify_domain(int64_t account, const char *name)
{
    struct store_domain d;
    memset(&d, 0, sizeof d);
    d.account_id = account;
    snprintf(d.domain, sizeof d.domain, "%s", name);
    snprintf(d.verify_token, sizeof d.verify_token, "tok-%s", name);
    assert_int_equal(store_domain_insert(AF.st, &d), STORE_OK);
    d.status = STORE_ID_VERIFIED;
    d.verified_at = d.checked_at = (int64_t)time(NULL);
    assert_int_equal(store_domain_update(AF.st, &d), STORE_OK);
    /* its keys, as if seen in DNS: active (a verified domain without a
     * visible key cannot send: see pending_keys_refused) */
    struct identity_env env;
    memset(&env, 0, sizeof env);
    snprintf(env.data_dir, sizeof env.data_dir, "%s", AF.dir);
    char err[256];
    if (identity_domain_keys(AF.st, &env, &d, err, sizeof err) != STORE_OK)
        fail_msg("keys: %s", err);
    assert_int_equal(store_dkim_key_list(AF.st, d.id, activate_cb, NULL), STORE_OK);
}

static int setup(void **state)
{
    if (af_setup(state) != 0)
        return -1;
    verify_domain(AF.a.id, "alice.example");
    verify_domain(AF.b.id, "bob.example");
    /* alice (sandbox) has verified one outside address */
    struct store_sender s;
    memset(&s, 0, sizeof s);
    s.account_id = AF.a.id;
    snprintf(s.address, sizeof s.address, "friend@elsewhere.example");
    snprintf(s.token, sizeof s.token, "sendertok");
    s.expires_at = (int64_t)time(NULL) + 86400;
    if (store_sender_insert(AF.st, &s) != STORE_OK)
        return -1;
    s.status = STORE_ID_VERIFIED;
    s.verified_at = (int64_t)time(NULL);
    if (store_sender_update(AF.st, &s) != STORE_OK)
        return -1;
    /* bob sends a lot in these tests: no rate limit in the way */
    struct store_account b;
    if (store_account_get(AF.st, AF.b.id, &b) != STORE_OK)
        return -1;
    b.max_rate = 100000;
    if (store_account_update(AF.st, &b) != STORE_OK)
        return -1;
    gc = group_commit_new();
    char err[256] = "";
    ob = outbound_new(&AF.cfg, gc, AF.st, err, sizeof err);
    if (!gc || !ob) {
        fprintf(stderr, "outbound_new: %s\n", err);
        return -1;
    }
    AF.ctx.outbound = ob;
    return 0;
}

static int teardown(void **state)
{
    outbound_free(ob);
    group_commit_free(gc);
    return af_teardown(state);
}

static char *queued_raw(const char *id, size_t *len)
{
    char *raw = NULL;
    char from[SMTP_MAX_PATH_LEN + 1];
    assert_int_equal(store_outbound_get_raw(AF.st, strtoll(id, NULL, 10), &raw, len, from,
                                            sizeof from),
                     STORE_OK);
    return raw;
}

static json_t *get_message(const char *auth, const char *id)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/messages/%s", id);
    af_call("GET", path, auth, NULL);
    return AF.json;
}

static void structured(void **state)
{
    (void)state;
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"Bob News <news@bob.example>\","
            " \"to\": [\"Ann <ann@example.net>\", \"carl@example.org\"],"
            " \"cc\": [\"dora@example.com\"], \"bcc\": [\"secret@example.com\", "
            "\"CARL@example.org\"],"
            " \"reply_to\": \"help@bob.example\", \"subject\": \"Caf\\u00e9 news\","
            " \"text\": \"Hello, plain.\", \"html\": \"<p>Hello, <b>html</b>.</p>\","
            " \"headers\": {\"X-Campaign\": \"spring-7\"}}");
    af_expect_status(202);
    assert_int_equal(json_object_size(AF.json), 2);
    char id[24];
    snprintf(id, sizeof id, "%s", af_str(AF.json, "id"));
    assert_int_equal(json_integer_value(json_object_get(AF.json, "suppressed")), 0);

    size_t len;
    char *raw = queued_raw(id, &len);
    assert_non_null(strstr(raw, "From: Bob News <news@bob.example>\r\n"));
    assert_non_null(strstr(raw, "Reply-To: help@bob.example\r\n"));
    assert_non_null(strstr(raw, "X-Campaign: spring-7\r\n"));
    assert_non_null(strstr(raw, "Subject: =?UTF-8?"));        /* encoded-word */
    assert_non_null(strstr(raw, "multipart/alternative"));
    assert_non_null(strstr(raw, "Message-ID: <"));
    assert_non_null(strstr(raw, "@bob.example>"));
    assert_null(strstr(raw, "secret@example.com"));           /* Bcc: envelope only */
    assert_null(strstr(raw, "\nBcc:"));
    free(raw);

    json_t *m = get_message(AUTH_B, id);
    af_expect_status(200);
    assert_string_equal(af_str(m, "from"), "news@bob.example");
    assert_string_equal(af_str(m, "source"), "api");
    json_t *r = json_object_get(m, "recipients");
    assert_int_equal(json_array_size(r), 4);          /* carl once */
    const char *want[] = { "ann@example.net", "carl@example.org", "dora@example.com",
                           "secret@example.com" };
    for (size_t i = 0; i < 4; i++) {
        json_t *one = json_array_get(r, i);
        assert_string_equal(af_str(one, "address"), want[i]);
        assert_string_equal(af_str(one, "status"), "queued");
    }
    json_t *ev = json_array_get(json_object_get(m, "events"), 0);
    assert_string_equal(af_str(ev, "eventType"), "Send");
    assert_string_equal(af_str(json_object_get(ev, "mail"), "messageId"), id);

    /* text only is one text/plain part */
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"news@bob.example\", \"to\": [\"ann@example.net\"],"
            " \"subject\": \"plain\", \"text\": \"just text\"}");
    af_expect_status(202);
    raw = queued_raw(af_str(AF.json, "id"), &len);
    assert_null(strstr(raw, "multipart"));
    assert_non_null(strstr(raw, "text/plain"));
    free(raw);
}

static void raw_message(void **state)
{
    (void)state;
    const char msg[] = "From: Bob <news@bob.example>\r\n"
                       "To: ann@example.net\r\n"
                       "Subject: raw  spacing   kept\r\n"
                       "X-Odd:   \t value\r\n"
                       "\r\n"
                       "Body line one.\r\n"
                       ".leading dot\r\n"
                       "\r\n";
    char b64[512];
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)msg, sizeof msg - 1,
                      sodium_base64_VARIANT_ORIGINAL);
    /* base64 broken over lines, as mail tools write it */
    char wrapped[600];
    size_t n = strlen(b64), o = 0;
    for (size_t i = 0; i < n; i++) {
        wrapped[o++] = b64[i];
        if (i % 60 == 59) {
            wrapped[o++] = '\\';
            wrapped[o++] = 'n';
        }
    }
    wrapped[o] = '\0';
    char body[1024];
    snprintf(body, sizeof body, "{\"from\": \"news@bob.example\", \"to\": [\"ann@example.net\"],"
             " \"bcc\": [\"bcc@example.org\"], \"raw\": \"%s\"}", wrapped);
    af_call("POST", "/v1/messages", AUTH_B, body);
    af_expect_status(202);
    size_t len;
    char *raw = queued_raw(af_str(AF.json, "id"), &len);
    /* Date and Message-ID added on top; the rest byte for byte at the end */
    assert_true(len > sizeof msg - 1);
    assert_memory_equal(raw + len - (sizeof msg - 1), msg, sizeof msg - 1);
    assert_non_null(strstr(raw, "Date: "));
    assert_non_null(strstr(raw, "Message-ID: <"));
    free(raw);
    json_t *m = get_message(AUTH_B, af_str(AF.json, "id"));
    assert_int_equal(json_array_size(json_object_get(m, "recipients")), 2);
}

static void refused_requests(void **state)
{
    (void)state;
    static const struct { const char *body, *code; int status; } bad[] = {
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\","
          " \"priority\": 1}", "invalid_request", 400 },
        { "{\"to\": [\"a@example.net\"], \"text\": \"x\"}", "invalid_request", 400 },
        { "{\"from\": 7, \"to\": [\"a@example.net\"], \"text\": \"x\"}", "invalid_request", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": \"a@example.net\", \"text\": \"x\"}",
          "invalid_request", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [1], \"text\": \"x\"}", "invalid_request",
          400 },
        { "{\"from\": \"news@bob.example\", \"to\": [], \"text\": \"x\"}", "invalid_request",
          400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"]}", "invalid_request",
          400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": 5}",
          "invalid_request", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\","
          " \"headers\": [\"X-A: b\"]}", "invalid_request", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\","
          " \"headers\": {\"X-A\": 1}}", "invalid_request", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"raw\": \"AAAA\","
          " \"subject\": \"s\"}", "invalid_request", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"raw\": \"!!!\"}",
          "invalid_request", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"raw\": 1}",
          "invalid_request", 400 },
        { "{\"from\": \"not an address\", \"to\": [\"a@example.net\"], \"text\": \"x\"}",
          "invalid_address", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@b@example.net\"], \"text\": \"x\"}",
          "invalid_address", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"bcc\": "
          "[\"\\\"q u\\\"@example.net\"], \"text\": \"x\"}", "invalid_address", 400 },
        /* header injection and fields the builder owns */
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\","
          " \"headers\": {\"X-A\": \"b\\r\\nBcc: victim@example.com\"}}", "bad_message", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\","
          " \"headers\": {\"Bcc\": \"victim@example.com\"}}", "bad_message", 400 },
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\","
          " \"subject\": \"a\\r\\nBcc: victim@example.com\"}", "bad_message", 400 },
        /* a raw message with a bare LF: "From: news@bob.example\nTo: a\n\nhi\n" */
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"],"
          " \"raw\": \"RnJvbTogbmV3c0Bib2IuZXhhbXBsZQpUbzogYQoKaGkK\"}", "bad_message", 400 },
        /* raw without From: "To: a@example.net\r\n\r\nhi\r\n" */
        { "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"],"
          " \"raw\": \"VG86IGFAZXhhbXBsZS5uZXQNCg0KaGkNCg==\"}", "bad_message", 400 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_call("POST", "/v1/messages", AUTH_B, bad[i].body);
        if (AF.status != bad[i].status)
            fail_msg("%s: %d %s", bad[i].body, AF.status, AF.body);
        af_expect_error(bad[i].status, bad[i].code);
    }

    /* 50 recipients in all is the most */
    char *body = malloc(8192);
    assert_non_null(body);
    for (int total = 50; total <= 51; total++) {
        size_t o = (size_t)snprintf(body, 8192, "{\"from\": \"news@bob.example\", \"text\": \"x\","
                                                " \"to\": [");
        for (int i = 0; i < total - 10; i++)
            o += (size_t)snprintf(body + o, 8192 - o, "%s\"r%d@example.net\"", i ? ", " : "", i);
        o += (size_t)snprintf(body + o, 8192 - o, "], \"bcc\": [");
        for (int i = 0; i < 10; i++)
            o += (size_t)snprintf(body + o, 8192 - o, "%s\"b%d@example.net\"", i ? ", " : "", i);
        snprintf(body + o, 8192 - o, "]}");
        af_call("POST", "/v1/messages", AUTH_B, body);
        if (total == 50)
            af_expect_status(202);
        else
            af_expect_error(400, "too_many_recipients");
    }
    free(body);
}

static void sizes(void **state)
{
    (void)state;
    uint64_t saved = AF.cfg.max_message_size;
    AF.cfg.max_message_size = 2000;
    char *big = malloc(4096);
    assert_non_null(big);
    memset(big, 'a', 3000);
    big[3000] = '\0';
    char *body = malloc(8192);
    assert_non_null(body);
    snprintf(body, 8192, "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"],"
             " \"text\": \"%s\"}", big);
    af_call("POST", "/v1/messages", AUTH_B, body);
    af_expect_error(413, "message_too_large");
    /* a raw message over the size */
    char msg[2600];
    int n = snprintf(msg, sizeof msg, "From: news@bob.example\r\nTo: a@example.net\r\n\r\n");
    for (int i = 0; n < 2500; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "line %04d of the body\r\n", i);
    char b64[4000];
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)msg, (size_t)n,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(body, 8192, "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"],"
             " \"raw\": \"%s\"}", b64);
    af_call("POST", "/v1/messages", AUTH_B, body);
    af_expect_error(413, "message_too_large");
    AF.cfg.max_message_size = saved;
    /* the same raw message fits the default size */
    af_call("POST", "/v1/messages", AUTH_B, body);
    af_expect_status(202);
    free(big);
    free(body);
    /* a body over the transport's ceiling is refused before it is read */
    af_callx("POST", "/v1/messages", NULL, AUTH_B, "{}", (size_t)HTTP_MAX_BODY_SIZE + 1);
    af_expect_error(413, "payload_too_large");
}

/* A verified domain whose DKIM keys are not visible in DNS yet cannot
 * send: nothing leaves signed with a key receivers cannot find; a MAIL
 * FROM domain set to refuse mail while unverified refuses it too. */
static void pending_keys_refused(void **state)
{
    (void)state;
    struct store_domain d;
    memset(&d, 0, sizeof d);
    d.account_id = AF.b.id;
    snprintf(d.domain, sizeof d.domain, "fresh.example");
    snprintf(d.verify_token, sizeof d.verify_token, "tok-fresh");
    assert_int_equal(store_domain_insert(AF.st, &d), STORE_OK);
    d.status = STORE_ID_VERIFIED;
    d.verified_at = (int64_t)time(NULL);
    assert_int_equal(store_domain_update(AF.st, &d), STORE_OK);
    struct identity_env env;
    memset(&env, 0, sizeof env);
    snprintf(env.data_dir, sizeof env.data_dir, "%s", AF.dir);
    char err[256];
    assert_int_equal(identity_domain_keys(AF.st, &env, &d, err, sizeof err), STORE_OK);
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"a@fresh.example\", \"to\": [\"x@example.net\"], \"text\": \"x\"}");
    af_expect_error(400, "identity_not_verified");
    assert_non_null(strstr(AF.body, "no DKIM key visible in DNS yet"));
    /* once a key is active it sends; unless its MAIL FROM domain refuses */
    assert_int_equal(store_dkim_key_list(AF.st, d.id, activate_cb, NULL), STORE_OK);
    snprintf(d.mail_from_domain, sizeof d.mail_from_domain, "bounce.fresh.example");
    d.mail_from_behavior = STORE_MF_REJECT;
    d.mail_from_status = STORE_ID_PENDING;
    assert_int_equal(store_domain_update(AF.st, &d), STORE_OK);
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"a@fresh.example\", \"to\": [\"x@example.net\"], \"text\": \"x\"}");
    af_expect_error(400, "identity_not_verified");
    assert_non_null(strstr(AF.body, "behavior_on_mx_failure reject"));
    d.mail_from_behavior = STORE_MF_USE_DEFAULT;
    assert_int_equal(store_domain_update(AF.st, &d), STORE_OK);
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"a@fresh.example\", \"to\": [\"x@example.net\"], \"text\": \"x\"}");
    if (AF.status != 202)
        fail_msg("status %d: %s", AF.status, AF.body);
}

static void identity_and_sandbox(void **state)
{
    (void)state;
    /* bob may not send as alice, nor from a domain nobody verified */
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"ceo@alice.example\", \"to\": [\"a@example.net\"], \"text\": \"x\"}");
    af_expect_error(400, "identity_not_verified");
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"x@unverified.example\", \"to\": [\"a@example.net\"], \"text\": \"x\"}");
    af_expect_error(400, "identity_not_verified");
    /* a raw message whose From field is alice's, under bob's own envelope */
    const char msg[] = "From: ceo@alice.example\r\nTo: a@example.net\r\n\r\nhi\r\n";
    char b64[256], body[512];
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)msg, sizeof msg - 1,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(body, sizeof body, "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"],"
             " \"raw\": \"%s\"}", b64);
    af_call("POST", "/v1/messages", AUTH_B, body);
    af_expect_error(400, "identity_not_verified");

    /* alice is in the sandbox: only verified recipients */
    af_call("POST", "/v1/messages", AUTH_A,
            "{\"from\": \"ceo@alice.example\", \"to\": [\"stranger@example.net\"],"
            " \"text\": \"x\"}");
    af_expect_error(400, "sandbox_recipient");
    af_call("POST", "/v1/messages", AUTH_A,
            "{\"from\": \"ceo@alice.example\", \"to\": [\"friend@elsewhere.example\"],"
            " \"bcc\": [\"stranger@example.net\"], \"text\": \"x\"}");
    af_expect_error(400, "sandbox_recipient");
    af_call("POST", "/v1/messages", AUTH_A,
            "{\"from\": \"ceo@alice.example\", \"to\": [\"friend@elsewhere.example\","
            " \"team@alice.example\"], \"text\": \"x\"}");
    af_expect_status(202);
    char id[24];
    snprintf(id, sizeof id, "%s", af_str(AF.json, "id"));
    /* alice's rate is 1 per second: at once again is too soon */
    af_call("POST", "/v1/messages", AUTH_A,
            "{\"from\": \"ceo@alice.example\", \"to\": [\"friend@elsewhere.example\"],"
            " \"text\": \"again\"}");
    af_expect_error(429, "rate_limited");
    assert_true(AF.retry_after >= 1 && AF.retry_after <= 2);
    json_t *e = json_object_get(AF.json, "error");
    assert_int_equal(strlen(af_str(e, "retry_at")), 20);
    /* bob never sees alice's message */
    get_message(AUTH_B, id);
    af_expect_error(404, "not_found");
    get_message(AUTH_A, id);
    af_expect_status(200);
}

static void suppressed(void **state)
{
    (void)state;
    af_call("POST", "/v1/suppressions", AUTH_B, "{\"address\": \"gone@example.net\"}");
    af_expect_status(201);
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"news@bob.example\", \"to\": [\"GONE@example.net\", \"here@example.net\"],"
            " \"text\": \"x\"}");
    af_expect_status(202);
    assert_int_equal(json_integer_value(json_object_get(AF.json, "suppressed")), 1);
    char id[24];
    snprintf(id, sizeof id, "%s", af_str(AF.json, "id"));
    json_t *m = get_message(AUTH_B, id);
    json_t *r = json_object_get(m, "recipients");
    assert_int_equal(json_array_size(r), 1);
    assert_string_equal(af_str(json_array_get(r, 0), "address"), "here@example.net");
    size_t i;
    json_t *ev;
    bool reject = false;
    json_array_foreach(json_object_get(m, "events"), i, ev)
        reject |= strcmp(af_str(ev, "eventType"), "Reject") == 0;
    assert_true(reject);
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"news@bob.example\", \"to\": [\"gone@example.net\"], \"text\": \"x\"}");
    af_expect_error(422, "all_recipients_suppressed");
    /* alice's list is hers: the address is not suppressed for her */
    struct store_suppression x;
    assert_int_equal(store_suppression_get(AF.st, AF.a.id, "gone@example.net", &x),
                     STORE_NOTFOUND);
}

static void quota(void **state)
{
    (void)state;
    af_call("GET", "/v1/account", AUTH_B, NULL);
    int64_t sent = json_integer_value(json_object_get(AF.json, "sent_last_24h"));
    assert_true(sent > 0);
    struct store_account b;
    assert_int_equal(store_account_get(AF.st, AF.b.id, &b), STORE_OK);
    uint32_t saved = b.max_24h;
    b.max_24h = (uint32_t)sent;
    assert_int_equal(store_account_update(AF.st, &b), STORE_OK);
    af_call("GET", "/v1/account", AUTH_B, NULL);
    assert_int_equal(json_integer_value(json_object_get(AF.json, "quota_remaining")), 0);
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\"}");
    af_expect_error(429, "quota_exceeded");
    /* the oldest message of the day frees a slot within 24 h */
    assert_true(AF.retry_after >= 1 && AF.retry_after <= 86400);
    const char *at = af_str(json_object_get(AF.json, "error"), "retry_at");
    assert_int_equal(strlen(at), 20);
    assert_true(at[10] == 'T' && at[19] == 'Z');
    b.max_24h = saved;
    assert_int_equal(store_account_update(AF.st, &b), STORE_OK);
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\"}");
    af_expect_status(202);
}

static void no_engine(void **state)
{
    (void)state;
    AF.ctx.outbound = NULL;
    af_call("POST", "/v1/messages", AUTH_B,
            "{\"from\": \"news@bob.example\", \"to\": [\"a@example.net\"], \"text\": \"x\"}");
    af_expect_error(503, "unavailable");
    AF.ctx.outbound = ob;
    af_call("POST", "/v1/messages", NULL, "{}");
    af_expect_error(401, "unauthorized");
    af_call("PUT", "/v1/messages", AUTH_B, "{}");
    af_expect_error(405, "method_not_allowed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(structured),
        cmocka_unit_test(raw_message),
        cmocka_unit_test(refused_requests),
        cmocka_unit_test(sizes),
        cmocka_unit_test(identity_and_sandbox),
        cmocka_unit_test(pending_keys_refused),
        cmocka_unit_test(suppressed),
        cmocka_unit_test(quota),
        cmocka_unit_test(no_engine),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
