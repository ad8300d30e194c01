/* The HTTP API through api_handle, with a real SQLite store in a temporary
 * data_dir, two accounts made by account_create, and DNS from an in-memory
 * zone: authentication (missing, malformed, wrong, right), the failed-auth
 * limiter per client IP, the JSON error shape, every route's answers and
 * errors, body limits and JSON checks, and isolation: account B never
 * reads, verifies or deletes account A's objects (404, not 403). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns_zone.h"
#include "service/api.h"
#include "service/rules.h"

struct fixture {
    char dir[64];
    struct sesame_config cfg;
    struct store *st;
    struct dns_zone *zone;
    struct dns_resolver *dns;
    struct cred_cache *creds;
    struct authfail_limiter *authfail;
    struct metrics *metrics;
    struct api_context ctx;
    struct store_account a, b;
    struct account_secrets sa, sb;
    char auth_a[ACCOUNT_SECRET_MAX + 16], auth_b[ACCOUNT_SECRET_MAX + 16];
};

static struct fixture fx;

/* The last answer. */
struct res {
    int status;
    json_t *json;            /* NULL when the body is not JSON */
    char *body;
    size_t len;
    const char *content_type;
    const char *www_authenticate;
    char allow[64];
    unsigned retry_after;
    char account[STORE_NAME_MAX + 1];
    const char *error_code;
};
static struct res R;

static void res_clear(void)
{
    json_decref(R.json);
    free(R.body);
    memset(&R, 0, sizeof R);
}

static int callx(const char *method, const char *path, const char *query, const char *auth,
                 const char *ip, const char *body, size_t body_len)
{
    res_clear();
    struct api_request req = {
        .method = method, .path = path, .query = query, .authorization = auth,
        .client_ip = ip ? ip : "192.0.2.1", .body = body, .body_len = body_len,
    };
    struct api_response resp;
    memset(&resp, 0x5a, sizeof resp);     /* api_handle must set every field */
    api_handle(&fx.ctx, &req, &resp);
    R.status = resp.status;
    R.len = resp.body.len;
    R.body = malloc(R.len + 1);
    assert_non_null(R.body);
    if (R.len)
        memcpy(R.body, resp.body.data, R.len);
    R.body[R.len] = '\0';
    buf_free(&resp.body);
    R.content_type = resp.content_type;
    R.www_authenticate = resp.www_authenticate;
    memcpy(R.allow, resp.allow, sizeof R.allow);
    R.retry_after = resp.retry_after;
    memcpy(R.account, resp.account, sizeof R.account);
    R.error_code = resp.error_code;
    if (getenv("SESAME_TEST_API_DUMP"))   /* debugging aid: every exchange on stdout */
        printf("%s %s%s%s -> %d %s\n", method, path, query ? "?" : "", query ? query : "",
               R.status, R.len < 600 ? R.body : "(long body)\n");
    if (R.content_type && strcmp(R.content_type, "application/json") == 0) {
        json_error_t e;
        R.json = json_loadb(R.body, R.len, JSON_REJECT_DUPLICATES, &e);
        if (!R.json)
            fail_msg("response is not JSON: %s (%s)", R.body, e.text);
    }
    return R.status;
}

static int call(const char *method, const char *path, const char *auth, const char *body)
{
    return callx(method, path, NULL, auth, NULL, body, body ? strlen(body) : 0);
}

#define A fx.auth_a
#define B fx.auth_b

/* The error shape: exactly {"error": {"code": CODE, "message": "..."}}. */
static void expect_error(int status, const char *code)
{
    if (R.status != status)
        fail_msg("status %d, expected %d: %s", R.status, status, R.body);
    assert_non_null(R.json);
    assert_int_equal(json_object_size(R.json), 1);
    json_t *e = json_object_get(R.json, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 2);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    assert_non_null(R.error_code);
    assert_string_equal(R.error_code, code);
}

static void expect_status(int status)
{
    if (R.status != status)
        fail_msg("status %d, expected %d: %s", R.status, status, R.body);
    assert_null(R.error_code);
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        fail_msg("no string %s in %s", key, R.body);
    return s;
}

static int setup(void **state)
{
    memset(&fx, 0, sizeof fx);
    snprintf(fx.dir, sizeof fx.dir, "/tmp/sesame-test-api-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    config_defaults(&fx.cfg);
    snprintf(fx.cfg.data_dir, sizeof fx.cfg.data_dir, "%s", fx.dir);
    char err[256] = "";
    fx.st = store_open("sqlite", fx.dir, err, sizeof err);
    if (!fx.st)
        fail_msg("store_open: %s", err);
    fx.zone = dns_zone_new();
    fx.dns = dns_zone_resolver_new(fx.zone);
    fx.creds = cred_cache_new();
    fx.authfail = authfail_new(3, 600);
    fx.metrics = metrics_new();
    assert_non_null(fx.creds);
    assert_non_null(fx.authfail);
    assert_non_null(fx.metrics);
    fx.ctx = (struct api_context){ fx.st, fx.dns, fx.creds, fx.authfail, fx.metrics, &fx.cfg,
                                   NULL, NULL };
    account_set_hash_cost(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
    assert_int_equal(account_create(fx.st, "alice", false, 0, 0, &fx.a, &fx.sa, err, sizeof err),
                     STORE_OK);
    assert_int_equal(account_create(fx.st, "bob", true, 0, 0, &fx.b, &fx.sb, err, sizeof err),
                     STORE_OK);
    snprintf(fx.auth_a, sizeof fx.auth_a, "Bearer %s", fx.sa.api_key);
    snprintf(fx.auth_b, sizeof fx.auth_b, "Bearer %s", fx.sb.api_key);
    return 0;
}

static int teardown(void **state)
{
    res_clear();
    metrics_free(fx.metrics);
    authfail_free(fx.authfail);
    cred_cache_free(fx.creds);
    dns_resolver_free(fx.dns);
    dns_zone_free(fx.zone);
    store_close(fx.st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- auth ---- */

static void auth_missing_bad_good(void **state)
{
    callx("GET", "/v1/account", NULL, NULL, "198.51.100.1", NULL, 0);
    expect_error(401, "unauthorized");
    assert_string_equal(R.www_authenticate, "Bearer realm=\"sesame\"");
    assert_string_equal(R.account, "");

    callx("GET", "/v1/account", NULL, "Bearer sk_1_wrongwrongwrong", "198.51.100.1", NULL, 0);
    expect_error(401, "unauthorized");
    assert_string_equal(R.www_authenticate, "Bearer realm=\"sesame\", error=\"invalid_token\"");
    /* the key of another scheme, or none after Bearer */
    char basic[256];
    snprintf(basic, sizeof basic, "Basic %s", fx.sa.api_key);
    callx("GET", "/v1/account", NULL, basic, "198.51.100.2", NULL, 0);
    expect_error(401, "unauthorized");
    callx("GET", "/v1/account", NULL, "Bearer ", "198.51.100.2", NULL, 0);
    expect_error(401, "unauthorized");
    /* the right key with a trailing character is wrong */
    char longer[256];
    snprintf(longer, sizeof longer, "%sx", A);
    callx("GET", "/v1/account", NULL, longer, "198.51.100.3", NULL, 0);
    expect_error(401, "unauthorized");

    call("GET", "/v1/account", A, NULL);
    expect_status(200);
    assert_string_equal(R.account, "alice");
    assert_null(R.www_authenticate);
    /* scheme case-insensitive, extra blanks tolerated */
    char loose[256];
    snprintf(loose, sizeof loose, "  bearer   %s  ", fx.sb.api_key);
    call("GET", "/v1/account", loose, NULL);
    expect_status(200);
    assert_string_equal(jstr(R.json, "account"), "bob");
    /* routes without auth ignore a wrong key */
    call("GET", "/healthz", "Bearer nonsense", NULL);
    expect_status(200);
}

static void auth_rate_limited(void **state)
{
    const char *ip = "203.0.113.9";
    for (int i = 0; i < 3; i++) {
        callx("GET", "/v1/account", NULL, "Bearer sk_1_guess", ip, NULL, 0);
        expect_error(401, "unauthorized");
    }
    /* blocked: even the right key is refused without being checked */
    callx("GET", "/v1/account", NULL, A, ip, NULL, 0);
    expect_error(429, "rate_limited");
    assert_true(R.retry_after > 0 && R.retry_after <= 600);
    callx("GET", "/v1/rules", NULL, "Bearer another-guess", ip, NULL, 0);
    expect_error(429, "rate_limited");
    /* another address is unaffected */
    callx("GET", "/v1/account", NULL, A, "203.0.113.10", NULL, 0);
    expect_status(200);
    /* no credentials at all is not a failed attempt, and not refused */
    callx("GET", "/v1/account", NULL, NULL, "203.0.113.11", NULL, 0);
    callx("GET", "/v1/account", NULL, NULL, "203.0.113.11", NULL, 0);
    callx("GET", "/v1/account", NULL, NULL, "203.0.113.11", NULL, 0);
    callx("GET", "/v1/account", NULL, NULL, "203.0.113.11", NULL, 0);
    expect_error(401, "unauthorized");
    callx("GET", "/v1/account", NULL, A, "203.0.113.11", NULL, 0);
    expect_status(200);
    /* a success clears earlier failures of that address */
    callx("GET", "/v1/account", NULL, "Bearer x1", "203.0.113.12", NULL, 0);
    callx("GET", "/v1/account", NULL, "Bearer x2", "203.0.113.12", NULL, 0);
    callx("GET", "/v1/account", NULL, A, "203.0.113.12", NULL, 0);
    expect_status(200);
    callx("GET", "/v1/account", NULL, "Bearer x3", "203.0.113.12", NULL, 0);
    callx("GET", "/v1/account", NULL, "Bearer x4", "203.0.113.12", NULL, 0);
    callx("GET", "/v1/account", NULL, A, "203.0.113.12", NULL, 0);
    expect_status(200);
}

/* ---- routing and request checks ---- */

static void routing(void **state)
{
    call("GET", "/nope", A, NULL);
    expect_error(404, "not_found");
    call("GET", "/v1/rules/", A, NULL);
    expect_error(404, "not_found");
    call("GET", "/v1//rules", A, NULL);
    expect_error(404, "not_found");
    call("GET", "/v1/inbound/1/raw/more", A, NULL);
    expect_error(404, "not_found");
    call("GET", "/", NULL, NULL);
    expect_error(404, "not_found");

    call("POST", "/healthz", NULL, "{}");
    expect_error(405, "method_not_allowed");
    assert_string_equal(R.allow, "GET");
    call("PUT", "/v1/rules", A, "{}");
    expect_error(405, "method_not_allowed");
    assert_string_equal(R.allow, "GET, POST");
    call("GET", "/v1/rules/5", A, NULL);
    expect_error(405, "method_not_allowed");
    assert_string_equal(R.allow, "DELETE");
    call("BREW", "/v1/account", A, NULL);
    expect_error(405, "method_not_allowed");
    assert_string_equal(R.allow, "GET, PATCH");

    /* paths: percent-decoding is careful */
    call("GET", "/v1/domains/%zz", A, NULL);
    expect_error(400, "invalid_path");
    call("GET", "/v1/domains/a%00b.com", A, NULL);
    expect_error(400, "invalid_path");
    call("GET", "/v1/domains/a%0ab.com", A, NULL);
    expect_error(400, "invalid_path");
    call("GET", "/v1/domains/abc%4", A, NULL);
    expect_error(400, "invalid_path");
    call("GET", "/v1/domains/abc%", A, NULL);
    expect_error(400, "invalid_path");
    call("GET", "v1/account", A, NULL);
    expect_error(400, "invalid_path");
    call("GET", "", A, NULL);
    expect_error(400, "invalid_path");
    char longpath[API_MAX_PATH_LEN + 16];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    call("GET", longpath, A, NULL);
    expect_error(400, "invalid_path");
    /* an escaped route name is still the route */
    call("GET", "/v1/%61ccount", A, NULL);
    expect_status(200);
    /* a %2F inside a segment does not make a new segment */
    call("GET", "/v1/inbound%2F1", A, NULL);
    expect_error(404, "not_found");
}

static void bodies(void **state)
{
    call("POST", "/v1/domains", A, "{\"domain\": ");
    expect_error(400, "invalid_json");
    call("POST", "/v1/domains", A, "{\"domain\": \"a.example\", \"domain\": \"b.example\"}");
    expect_error(400, "invalid_json");
    call("POST", "/v1/domains", A, "[\"a.example\"]");
    expect_error(400, "invalid_json");
    call("POST", "/v1/domains", A, "");
    expect_error(400, "invalid_json");
    static const char with_nul[] = "{\"domain\":\"a\0.example\"}";
    callx("POST", "/v1/domains", NULL, A, NULL, with_nul, sizeof with_nul - 1);
    expect_error(400, "invalid_json");
    call("POST", "/v1/domains", A, "{\"domain\": \"\\u0000x.example\"}");
    expect_error(400, "invalid_json");
    call("POST", "/v1/domains", A, "{\"domain\": \"\xff.example\"}");
    expect_error(400, "invalid_json");

    size_t big = API_MAX_SMALL_BODY + 1;
    char *b = malloc(big + 1);
    assert_non_null(b);
    memset(b, ' ', big);
    b[0] = '{';
    b[big - 1] = '}';
    b[big] = '\0';
    callx("POST", "/v1/domains", NULL, A, NULL, b, big);
    expect_error(413, "payload_too_large");
    callx("PATCH", "/v1/account", NULL, A, NULL, b, big);
    expect_error(413, "payload_too_large");
    /* a rule is at most RULES_MAX_JSON bytes */
    callx("POST", "/v1/rules", NULL, A, NULL, b, RULES_MAX_JSON + 1);
    expect_error(413, "payload_too_large");
    /* the same body without auth is 401: nothing is parsed for strangers */
    callx("POST", "/v1/domains", NULL, NULL, NULL, b, big);
    expect_error(401, "unauthorized");
    free(b);
}

/* ---- health and metrics ---- */

static int64_t add_inbound(int64_t account, const char *subject, const char *raw)
{
    struct store_inbound m;
    memset(&m, 0, sizeof m);
    m.account_id = account;
    m.received_at = 1714564800;   /* 2024-05-01T12:00:00Z */
    snprintf(m.mail_from, sizeof m.mail_from, "sender@origin.example");
    m.rcpt_json = "[\"rcpt@dest.example\",\"other@dest.example\"]";
    snprintf(m.client_ip, sizeof m.client_ip, "192.0.2.25");
    snprintf(m.helo, sizeof m.helo, "mail.origin.example");
    snprintf(m.spf, sizeof m.spf, "pass");
    snprintf(m.dkim, sizeof m.dkim, "fail");
    snprintf(m.dmarc, sizeof m.dmarc, "none");
    m.authres = "mx.test; spf=pass smtp.mailfrom=origin.example";
    m.quarantine = true;
    snprintf(m.message_id, sizeof m.message_id, "<m1@origin.example>");
    snprintf(m.subject, sizeof m.subject, "%s", subject);
    snprintf(m.from, sizeof m.from, "Sender <sender@origin.example>");
    m.size = strlen(raw);
    int64_t id = 0;
    assert_int_equal(store_inbound_insert(fx.st, &m, raw, strlen(raw), &id), STORE_OK);
    return id;
}

static void health_and_metrics(void **state)
{
    call("GET", "/healthz", NULL, NULL);
    expect_status(200);
    assert_string_equal(jstr(R.json, "status"), "ok");

    int64_t before_in = 0;
    assert_int_equal(store_inbound_count(fx.st, &before_in), STORE_OK);
    add_inbound(fx.a.id, "metrics", "Subject: metrics\r\n\r\nhi\r\n");
    const char *rcpts[] = { "x@dest.example", "y@dest.example" };
    struct store_outbound o = { .account_id = fx.b.id, .rcpts = rcpts, .nrcpt = 2,
                                .created_at = (int64_t)time(NULL), .source = "api" };
    snprintf(o.mail_from, sizeof o.mail_from, "b@bob.example");
    assert_int_equal(store_outbound_insert(fx.st, &o, "Subject: x\r\n\r\nx\r\n", 16), STORE_OK);
    int64_t depth = 0;
    assert_int_equal(store_outbound_count(fx.st, &depth), STORE_OK);

    call("GET", "/metrics", NULL, NULL);
    expect_status(200);
    assert_string_equal(R.content_type, "text/plain; version=0.0.4");
    char want[96];
    snprintf(want, sizeof want, "\nsesame_inbound_stored %lld\n", (long long)before_in + 1);
    if (!strstr(R.body, want))
        fail_msg("no '%s' in metrics:\n%s", want + 1, R.body);
    snprintf(want, sizeof want, "\nsesame_queue_depth %lld\n", (long long)depth);
    if (!strstr(R.body, want))
        fail_msg("no '%s' in metrics:\n%s", want + 1, R.body);
    /* auth outcomes are counted */
    assert_non_null(strstr(R.body, "sesame_api_auth_total{result=\"ok\"}"));

    /* bob's one message (two recipients) shows in his account */
    call("GET", "/v1/account", B, NULL);
    expect_status(200);
    assert_int_equal(json_integer_value(json_object_get(R.json, "sent_last_24h")), 1);
}

/* ---- account ---- */

static void account_routes(void **state)
{
    call("GET", "/v1/account", A, NULL);
    expect_status(200);
    assert_string_equal(R.content_type, "application/json");
    assert_string_equal(jstr(R.json, "account"), "alice");
    assert_true(json_is_true(json_object_get(R.json, "sandbox")));
    assert_int_equal(json_integer_value(json_object_get(R.json, "max_24h")),
                     ACCOUNT_SANDBOX_MAX_24H);
    assert_int_equal(json_integer_value(json_object_get(R.json, "max_rate")),
                     ACCOUNT_SANDBOX_MAX_RATE);
    assert_true(json_is_integer(json_object_get(R.json, "sent_last_24h")));
    assert_true(json_is_false(json_object_get(R.json, "dmarc_report_only")));
    assert_int_equal(json_integer_value(json_object_get(R.json, "quota_remaining")),
                     ACCOUNT_SANDBOX_MAX_24H);    /* nothing sent yet */
    assert_int_equal(json_object_size(R.json), 8);
    /* the reputation guard: a new account is healthy, not yet judged */
    json_t *rep = json_object_get(R.json, "reputation");
    assert_string_equal(jstr(rep, "status"), "healthy");
    assert_true(json_is_false(json_object_get(rep, "judged")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "thresholds"),
                                                        "min_sends")), 500);

    call("GET", "/v1/account", B, NULL);
    assert_true(json_is_false(json_object_get(R.json, "sandbox")));
    assert_int_equal(json_integer_value(json_object_get(R.json, "max_24h")),
                     ACCOUNT_PRODUCTION_MAX_24H);

    call("PATCH", "/v1/account", A, "{\"dmarc_report_only\": true}");
    expect_status(200);
    assert_true(json_is_true(json_object_get(R.json, "dmarc_report_only")));
    call("GET", "/v1/account", A, NULL);
    assert_true(json_is_true(json_object_get(R.json, "dmarc_report_only")));
    struct store_account sa;
    assert_int_equal(store_account_get(fx.st, fx.a.id, &sa), STORE_OK);
    assert_true(sa.dmarc_report_only);
    /* bob is untouched */
    call("GET", "/v1/account", B, NULL);
    assert_true(json_is_false(json_object_get(R.json, "dmarc_report_only")));

    call("PATCH", "/v1/account", A, "{\"sandbox\": false}");
    expect_error(400, "invalid_request");
    call("PATCH", "/v1/account", A, "{\"dmarc_report_only\": false, \"max_24h\": 1000000}");
    expect_error(400, "invalid_request");
    call("PATCH", "/v1/account", A, "{\"dmarc_report_only\": \"no\"}");
    expect_error(400, "invalid_request");
    call("PATCH", "/v1/account", A, "{}");
    expect_error(400, "invalid_request");
    /* nothing changed by the refused requests */
    assert_int_equal(store_account_get(fx.st, fx.a.id, &sa), STORE_OK);
    assert_true(sa.dmarc_report_only);
    assert_true(sa.sandbox);
    call("PATCH", "/v1/account", A, "{\"dmarc_report_only\": false}");
    expect_status(200);
    assert_true(json_is_false(json_object_get(R.json, "dmarc_report_only")));
}

/* ---- domains ---- */

static const char *verification_value(void)
{
    json_t *recs = json_object_get(R.json, "records");
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r) {
        if (strcmp(json_string_value(json_object_get(r, "purpose")), "verification") == 0)
            return json_string_value(json_object_get(r, "value"));
    }
    fail_msg("no verification record in %s", R.body);
    return NULL;
}

static void domains(void **state)
{
    call("POST", "/v1/domains", A, "{\"domain\": \"Example.COM.\"}");
    expect_status(201);
    assert_string_equal(jstr(R.json, "domain"), "example.com");
    assert_string_equal(jstr(R.json, "status"), "pending");
    char token_a[256];
    snprintf(token_a, sizeof token_a, "%s", verification_value());
    call("POST", "/v1/domains", A, "{\"domain\": \"example.com\"}");
    expect_status(200);
    assert_string_equal(verification_value(), token_a);

    call("POST", "/v1/domains", A, "{\"domain\": \"bad_name.example\"}");
    expect_error(400, "invalid_domain");
    call("POST", "/v1/domains", A, "{\"domain\": \"localhost\"}");
    expect_error(400, "invalid_domain");
    call("POST", "/v1/domains", A, "{\"domain\": 7}");
    expect_error(400, "invalid_request");
    call("POST", "/v1/domains", A, "{\"domain\": \"x.example\", \"extra\": 1}");
    expect_error(400, "invalid_request");

    call("GET", "/v1/domains", A, NULL);
    expect_status(200);
    assert_int_equal(json_array_size(json_object_get(R.json, "domains")), 1);
    call("GET", "/v1/domains/example.com", A, NULL);
    expect_status(200);
    assert_string_equal(jstr(R.json, "domain"), "example.com");
    call("GET", "/v1/domains/EXAMPLE.com.", A, NULL);
    expect_status(200);
    call("GET", "/v1/domains/other.example", A, NULL);
    expect_error(404, "not_found");
    call("GET", "/v1/domains/not%20a%20domain", A, NULL);
    expect_error(404, "not_found");

    /* isolation: bob sees none of it */
    call("GET", "/v1/domains", B, NULL);
    expect_status(200);
    assert_int_equal(json_array_size(json_object_get(R.json, "domains")), 0);
    call("GET", "/v1/domains/example.com", B, NULL);
    expect_error(404, "not_found");
    call("POST", "/v1/domains/example.com/verify", B, NULL);
    expect_error(404, "not_found");

    /* verification: no record → failed; the record → verified */
    call("POST", "/v1/domains/example.com/verify", A, NULL);
    expect_status(200);
    assert_string_equal(jstr(R.json, "status"), "failed");
    assert_true(strlen(jstr(R.json, "reason")) > 0);
    assert_int_equal(dns_zone_add(fx.zone, "_sesame.example.com", "TXT", token_a), 0);
    call("POST", "/v1/domains/example.com/verify", A, NULL);
    expect_status(200);
    assert_string_equal(jstr(R.json, "status"), "verified");

    /* bob adds the same domain (pending is allowed), publishes his token
     * too, and cannot verify it: alice has */
    call("POST", "/v1/domains", B, "{\"domain\": \"example.com\"}");
    expect_status(201);
    char token_b[256];
    snprintf(token_b, sizeof token_b, "%s", verification_value());
    assert_string_not_equal(token_a, token_b);
    assert_int_equal(dns_zone_add(fx.zone, "_sesame.example.com", "TXT", token_b), 0);
    call("POST", "/v1/domains/example.com/verify", B, NULL);
    expect_error(409, "identity_taken");
    call("GET", "/v1/domains/example.com", B, NULL);
    assert_string_not_equal(jstr(R.json, "status"), "verified");
    call("GET", "/v1/domains/example.com", A, NULL);
    assert_string_equal(jstr(R.json, "status"), "verified");

    /* DNS does not answer: 503, status unchanged */
    call("POST", "/v1/domains", A, "{\"domain\": \"slow.example\"}");
    expect_status(201);
    assert_int_equal(dns_zone_add_timeout(fx.zone, "_sesame.slow.example"), 0);
    call("POST", "/v1/domains/slow.example/verify", A, NULL);
    expect_error(503, "dns_unavailable");
    call("GET", "/v1/domains/slow.example", A, NULL);
    assert_string_equal(jstr(R.json, "status"), "pending");
    call("GET", "/v1/domains/slow.example/verify", A, NULL);
    expect_error(405, "method_not_allowed");
}

/* ---- inbound ---- */

static void inbound(void **state)
{
    const char *raw1 = "From: a@origin.example\r\nSubject: one\r\n\r\nbody one\r\n";
    int64_t id1 = add_inbound(fx.a.id, "one", raw1);
    int64_t idb = add_inbound(fx.b.id, "bob's", "Subject: bob\r\n\r\nsecret\r\n");
    int64_t id2 = add_inbound(fx.a.id, "caf\xe9 \xff\xfe bytes", "Subject: two\r\n\r\n2\r\n");
    int64_t id3 = add_inbound(fx.a.id, "three \xe2\x9c\x93", "Subject: three\r\n\r\n3\r\n");
    char path[64], want[32];

    /* newest first, paged */
    call("GET", "/v1/inbound", A, NULL);
    expect_status(200);
    json_t *msgs = json_object_get(R.json, "messages");
    size_t total = json_array_size(msgs);
    assert_true(total >= 3);
    snprintf(want, sizeof want, "%lld", (long long)id3);
    assert_string_equal(jstr(json_array_get(msgs, 0), "id"), want);
    assert_true(json_is_null(json_object_get(R.json, "next")));
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        snprintf(want, sizeof want, "%lld", (long long)idb);
        assert_string_not_equal(jstr(m, "id"), want);   /* not bob's */
    }

    callx("GET", "/v1/inbound", "limit=2", A, NULL, NULL, 0);
    expect_status(200);
    msgs = json_object_get(R.json, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    char next[32];
    snprintf(next, sizeof next, "%s", jstr(R.json, "next"));
    snprintf(want, sizeof want, "%lld", (long long)id2);
    assert_string_equal(next, want);
    json_t *m3 = json_array_get(msgs, 0);
    assert_string_equal(jstr(m3, "subject"), "three \xe2\x9c\x93");
    json_t *m2 = json_array_get(msgs, 1);
    /* invalid UTF-8 from the wire becomes U+FFFD, never a missing field */
    assert_string_equal(jstr(m2, "subject"), "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd bytes");

    char q[64];
    snprintf(q, sizeof q, "before=%s&limit=1", next);
    callx("GET", "/v1/inbound", q, A, NULL, NULL, 0);
    expect_status(200);
    msgs = json_object_get(R.json, "messages");
    assert_int_equal(json_array_size(msgs), 1);
    snprintf(want, sizeof want, "%lld", (long long)id1);
    assert_string_equal(jstr(json_array_get(msgs, 0), "id"), want);

    /* the whole shape of one message */
    json_t *one = json_array_get(msgs, 0);
    assert_string_equal(jstr(one, "received_at"), "2024-05-01T12:00:00Z");
    assert_string_equal(jstr(one, "mail_from"), "sender@origin.example");
    json_t *rc = json_object_get(one, "rcpt_to");
    assert_int_equal(json_array_size(rc), 2);
    assert_string_equal(json_string_value(json_array_get(rc, 1)), "other@dest.example");
    assert_string_equal(jstr(one, "client_ip"), "192.0.2.25");
    assert_string_equal(jstr(one, "helo"), "mail.origin.example");
    assert_string_equal(jstr(one, "from"), "Sender <sender@origin.example>");
    assert_string_equal(jstr(one, "subject"), "one");
    assert_string_equal(jstr(one, "message_id"), "<m1@origin.example>");
    assert_int_equal(json_integer_value(json_object_get(one, "size")), strlen(raw1));
    assert_true(json_is_true(json_object_get(one, "quarantine")));
    assert_string_equal(jstr(one, "spf"), "pass");
    assert_string_equal(jstr(one, "dkim"), "fail");
    assert_string_equal(jstr(one, "dmarc"), "none");
    assert_string_equal(jstr(one, "authentication_results"),
                        "mx.test; spf=pass smtp.mailfrom=origin.example");

    /* bad paging parameters */
    const char *bad[] = { "limit=0", "limit=101", "limit=abc", "limit=-1", "limit=", "before=-1",
                          "before=0", "before=x", "limit=%zz", "limit=1&limit=2",
                          "before=99999999999999999999", "limit=%00" };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        callx("GET", "/v1/inbound", bad[k], A, NULL, NULL, 0);
        expect_error(400, "invalid_request");
    }
    callx("GET", "/v1/inbound", "limit=100&unknown=1&x", A, NULL, NULL, 0);
    expect_status(200);

    /* one message, its raw text */
    snprintf(path, sizeof path, "/v1/inbound/%lld", (long long)id1);
    call("GET", path, A, NULL);
    expect_status(200);
    assert_string_equal(jstr(R.json, "subject"), "one");
    snprintf(path, sizeof path, "/v1/inbound/%lld/raw", (long long)id1);
    call("GET", path, A, NULL);
    expect_status(200);
    assert_string_equal(R.content_type, "message/rfc822");
    assert_int_equal(R.len, strlen(raw1));
    assert_memory_equal(R.body, raw1, R.len);

    /* isolation both ways */
    snprintf(path, sizeof path, "/v1/inbound/%lld", (long long)id1);
    call("GET", path, B, NULL);
    expect_error(404, "not_found");
    snprintf(path, sizeof path, "/v1/inbound/%lld/raw", (long long)id1);
    call("GET", path, B, NULL);
    expect_error(404, "not_found");
    snprintf(path, sizeof path, "/v1/inbound/%lld/raw", (long long)idb);
    call("GET", path, A, NULL);
    expect_error(404, "not_found");
    call("GET", "/v1/inbound", B, NULL);
    msgs = json_object_get(R.json, "messages");
    json_array_foreach(msgs, i, m) {
        snprintf(want, sizeof want, "%lld", (long long)idb);
        assert_string_equal(jstr(m, "id"), want);
    }

    /* ids that cannot be */
    const char *ids[] = { "abc", "0", "-1", "01", "1e3", "%2B1", "99999999999999999999",
                          "9223372036854775808", "9223372036854775807" };
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        snprintf(path, sizeof path, "/v1/inbound/%s", ids[k]);
        call("GET", path, A, NULL);
        expect_error(404, "not_found");
    }
}

/* ---- rules ---- */

static const char *RULE1 =
    "{\"name\": \"drop newsletters\", \"match\": \"all\", \"conditions\": [{\"field\": "
    "\"header\", \"op\": \"exists\", \"header\": \"List-Unsubscribe\"}], \"actions\": "
    "[{\"type\": \"drop\"}], \"stop\": true}";

static void rules(void **state)
{
    call("GET", "/v1/rules", A, NULL);
    expect_status(200);
    assert_int_equal(json_array_size(json_object_get(R.json, "rules")), 0);

    call("POST", "/v1/rules", A, RULE1);
    expect_status(201);
    char id[32];
    snprintf(id, sizeof id, "%s", jstr(R.json, "id"));
    assert_true(json_is_integer(json_object_get(R.json, "position")));
    assert_string_equal(jstr(R.json, "name"), "drop newsletters");
    assert_true(json_is_array(json_object_get(R.json, "conditions")));

    call("GET", "/v1/rules", A, NULL);
    json_t *list = json_object_get(R.json, "rules");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "id"), id);
    assert_string_equal(jstr(json_array_get(list, 0), "name"), "drop newsletters");

    /* rule_parse's verdicts are 400 with its message */
    call("POST", "/v1/rules", A,
         "{\"name\": \"x\", \"conditions\": [{\"field\": \"sender\", \"op\": \"like\", "
         "\"value\": \"a\"}], \"actions\": [{\"type\": \"drop\"}]}");
    expect_error(400, "invalid_rule");
    assert_non_null(strstr(jstr(json_object_get(R.json, "error"), "message"), "like"));
    call("POST", "/v1/rules", A, "{\"actions\": [{\"type\": \"explode\"}]}");
    expect_error(400, "invalid_rule");

    /* isolation */
    call("GET", "/v1/rules", B, NULL);
    assert_int_equal(json_array_size(json_object_get(R.json, "rules")), 0);
    char path[64];
    snprintf(path, sizeof path, "/v1/rules/%s", id);
    call("DELETE", path, B, NULL);
    expect_error(404, "not_found");
    call("GET", "/v1/rules", A, NULL);
    assert_int_equal(json_array_size(json_object_get(R.json, "rules")), 1);

    call("DELETE", path, A, NULL);
    expect_status(204);
    assert_int_equal(R.len, 0);
    assert_null(R.content_type);
    call("DELETE", path, A, NULL);
    expect_error(404, "not_found");
    call("DELETE", "/v1/rules/abc", A, NULL);
    expect_error(404, "not_found");

    /* at most RULES_MAX_PER_ACCOUNT */
    for (int i = 0; i < RULES_MAX_PER_ACCOUNT; i++) {
        call("POST", "/v1/rules", B, RULE1);
        expect_status(201);
    }
    call("POST", "/v1/rules", B, RULE1);
    expect_error(409, "limit_exceeded");
    call("GET", "/v1/rules", B, NULL);
    list = json_object_get(R.json, "rules");
    assert_int_equal(json_array_size(list), RULES_MAX_PER_ACCOUNT);
    /* positions ascend in list order */
    for (size_t k = 1; k < json_array_size(list); k++)
        assert_true(json_integer_value(json_object_get(json_array_get(list, k), "position")) >
                    json_integer_value(json_object_get(json_array_get(list, k - 1), "position")));
    /* alice is not limited by bob's rules */
    call("POST", "/v1/rules", A, RULE1);
    expect_status(201);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auth_missing_bad_good),
        cmocka_unit_test(auth_rate_limited),
        cmocka_unit_test(routing),
        cmocka_unit_test(bodies),
        cmocka_unit_test(health_and_metrics),
        cmocka_unit_test(account_routes),
        cmocka_unit_test(domains),
        cmocka_unit_test(inbound),
        cmocka_unit_test(rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
