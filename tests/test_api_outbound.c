/* The HTTP API's outbound routes through api_handle with a real store:
 * /v1/suppressions (normalisation, reasons, paging to the end, delete),
 * /v1/webhooks (secret shown once and stored, events checked and honoured
 * by the store's fan-out, URL checks, the per-account limit, delete),
 * GET /v1/messages/{id} (envelope, per-recipient status, attempts, last
 * response, next attempt, recorded events), GET /v1/account's quota, and
 * on every route: no key is 401, and account bob never reads, changes or
 * deletes alice's objects (404, not 403). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "api_fixture.h"
#include "service/events.h"

/* ---- suppressions ---- */

static void put(const char *auth, const char *body, int status)
{
    af_call("POST", "/v1/suppressions", auth, body);
    af_expect_status(status);
}

static void suppressions_basics(void **state)
{
    (void)state;
    af_call("GET", "/v1/suppressions", AUTH_A, NULL);
    af_expect_status(200);
    assert_int_equal(json_array_size(json_object_get(AF.json, "suppressions")), 0);
    assert_true(json_is_null(json_object_get(AF.json, "next")));

    put(AUTH_A, "{\"address\": \"Bob.Smith@Example.COM\"}", 201);
    assert_string_equal(af_str(AF.json, "address"), "bob.smith@example.com");
    assert_string_equal(af_str(AF.json, "reason"), "manual");
    assert_string_equal(af_str(AF.json, "detail"), "");
    const char *at = af_str(AF.json, "created_at");
    assert_int_equal(strlen(at), 20);
    assert_int_equal(json_object_size(AF.json), 4);
    struct store_suppression x;
    assert_int_equal(store_suppression_get(AF.st, AF.a.id, "bob.smith@example.com", &x),
                     STORE_OK);
    assert_string_equal(x.reason, "manual");

    /* a display name is fine; the reason can be given; put again replaces */
    put(AUTH_A, "{\"address\": \"Bob <bob.smith@example.com>\", \"reason\": \"complaint\"}",
        201);
    assert_string_equal(af_str(AF.json, "address"), "bob.smith@example.com");
    assert_string_equal(af_str(AF.json, "reason"), "complaint");

    static const char *bad_req[] = {
        "{}",
        "{\"address\": 5}",
        "{\"address\": \"a@example.com\", \"reason\": \"because\"}",
        "{\"address\": \"a@example.com\", \"reason\": null}",
        "{\"address\": \"a@example.com\", \"detail\": \"x\"}",
    };
    for (size_t i = 0; i < sizeof bad_req / sizeof bad_req[0]; i++) {
        af_call("POST", "/v1/suppressions", AUTH_A, bad_req[i]);
        af_expect_error(400, "invalid_request");
    }
    static const char *bad_addr[] = {
        "\"\"", "\"not an address\"", "\"a@b@example.com\"", "\"x@\"", "\"@example.com\"",
        "\"a@example.com, b@example.com\"", "\"\\\"two words\\\"@example.com\"",
        "\"a..b@example.com\"", "\"undisclosed-recipients:;\"", "\"a@exa_mple.com\"",
    };
    for (size_t i = 0; i < sizeof bad_addr / sizeof bad_addr[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"address\": %s}", bad_addr[i]);
        af_call("POST", "/v1/suppressions", AUTH_A, body);
        if (AF.status != 400)
            fail_msg("%s: %d %s", bad_addr[i], AF.status, AF.body);
        af_expect_error(400, "invalid_address");
    }
    char longaddr[400];
    memset(longaddr, 'a', sizeof longaddr);
    snprintf(longaddr + 250, sizeof longaddr - 250, "@example.com");
    char body[512];
    snprintf(body, sizeof body, "{\"address\": \"%s\"}", longaddr);
    af_call("POST", "/v1/suppressions", AUTH_A, body);
    af_expect_error(400, "invalid_address");

    /* what delivery put there shows its detail */
    struct store_suppression s;
    memset(&s, 0, sizeof s);
    s.account_id = AF.a.id;
    snprintf(s.address, sizeof s.address, "gone@example.net");
    snprintf(s.reason, sizeof s.reason, "bounce");
    snprintf(s.detail, sizeof s.detail, "550 5.1.1 user unknown");
    assert_int_equal(store_suppression_put(AF.st, &s), STORE_OK);
    af_call("GET", "/v1/suppressions", AUTH_A, NULL);
    af_expect_status(200);
    json_t *list = json_object_get(AF.json, "suppressions");
    assert_int_equal(json_array_size(list), 2);
    json_t *first = json_array_get(list, 0);     /* address order */
    assert_string_equal(af_str(first, "address"), "bob.smith@example.com");
    json_t *second = json_array_get(list, 1);
    assert_string_equal(af_str(second, "address"), "gone@example.net");
    assert_string_equal(af_str(second, "reason"), "bounce");
    assert_string_equal(af_str(second, "detail"), "550 5.1.1 user unknown");

    /* delete: the path segment is an address, any case, percent-encoded or not */
    af_call("DELETE", "/v1/suppressions/GONE%40example.NET", AUTH_A, NULL);
    af_expect_status(204);
    assert_int_equal(AF.len, 0);
    af_call("DELETE", "/v1/suppressions/gone@example.net", AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("DELETE", "/v1/suppressions/not%20an%20address", AUTH_A, NULL);
    af_expect_error(404, "not_found");
    assert_int_equal(store_suppression_get(AF.st, AF.a.id, "gone@example.net", &x),
                     STORE_NOTFOUND);
}

static void suppressions_paging(void **state)
{
    (void)state;
    /* 7 more for alice (one is there from the test above) */
    for (int i = 0; i < 7; i++) {
        char body[96];
        snprintf(body, sizeof body, "{\"address\": \"page%d@example.org\"}", i);
        put(AUTH_A, body, 201);
    }
    char seen[16][SMTP_MAX_PATH_LEN + 1];
    size_t n = 0;
    char after[SMTP_MAX_PATH_LEN + 8] = "";
    int pages = 0;
    for (;;) {
        char query[400];
        snprintf(query, sizeof query, "limit=3%s%s", after[0] ? "&after=" : "", after);
        af_callx("GET", "/v1/suppressions", query, AUTH_A, NULL, 0);
        af_expect_status(200);
        pages++;
        json_t *list = json_object_get(AF.json, "suppressions");
        assert_true(json_array_size(list) <= 3);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            assert_true(n < 16);
            snprintf(seen[n], sizeof seen[n], "%s", af_str(v, "address"));
            if (n > 0 && strcmp(seen[n - 1], seen[n]) >= 0)
                fail_msg("out of order: %s then %s", seen[n - 1], seen[n]);
            n++;
        }
        json_t *next = json_object_get(AF.json, "next");
        if (json_is_null(next))
            break;
        assert_int_equal(json_array_size(list), 3);
        snprintf(after, sizeof after, "%s", json_string_value(next));
        assert_string_equal(after, seen[n - 1]);
    }
    assert_int_equal(n, 8);
    assert_int_equal(pages, 3);
    /* the cursor is an address in any case */
    af_callx("GET", "/v1/suppressions", "limit=1&after=PAGE5%40EXAMPLE.ORG", AUTH_A, NULL, 0);
    af_expect_status(200);
    assert_string_equal(af_str(json_array_get(json_object_get(AF.json, "suppressions"), 0),
                               "address"),
                        "page6@example.org");

    static const char *bad[] = { "limit=0", "limit=1001", "limit=x", "limit=-1", "after=%zz",
                                 "limit=1&limit=2" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_callx("GET", "/v1/suppressions", bad[i], AUTH_A, NULL, 0);
        if (AF.status != 400)
            fail_msg("%s: %d", bad[i], AF.status);
        af_expect_error(400, "invalid_request");
    }
    af_callx("GET", "/v1/suppressions", "limit=1000", AUTH_A, NULL, 0);
    af_expect_status(200);
    assert_int_equal(json_array_size(json_object_get(AF.json, "suppressions")), 8);
}

static void suppressions_isolation(void **state)
{
    (void)state;
    af_call("GET", "/v1/suppressions", AUTH_B, NULL);
    af_expect_status(200);
    assert_int_equal(json_array_size(json_object_get(AF.json, "suppressions")), 0);
    af_call("DELETE", "/v1/suppressions/page1@example.org", AUTH_B, NULL);
    af_expect_error(404, "not_found");
    struct store_suppression x;
    assert_int_equal(store_suppression_get(AF.st, AF.a.id, "page1@example.org", &x), STORE_OK);
    /* bob's own entry for the same address is bob's only */
    put(AUTH_B, "{\"address\": \"page1@example.org\", \"reason\": \"bounce\"}", 201);
    assert_int_equal(store_suppression_get(AF.st, AF.a.id, "page1@example.org", &x), STORE_OK);
    assert_string_equal(x.reason, "manual");
    af_call("DELETE", "/v1/suppressions/page1@example.org", AUTH_B, NULL);
    af_expect_status(204);
    assert_int_equal(store_suppression_get(AF.st, AF.a.id, "page1@example.org", &x), STORE_OK);
    af_callx("GET", "/v1/suppressions", "limit=1000", AUTH_A, NULL, 0);
    assert_int_equal(json_array_size(json_object_get(AF.json, "suppressions")), 8);
}

/* ---- webhooks ---- */

static char created_id[24], created_secret[80];
static int64_t bob_message;

struct secret_of {
    int64_t id;
    char secret[80];
};

static int secret_cb(const struct store_webhook *w, void *arg)
{
    struct secret_of *q = arg;
    if (w->id == q->id)
        snprintf(q->secret, sizeof q->secret, "%s", w->secret);
    return 0;
}

static void webhooks_create_list(void **state)
{
    (void)state;
    af_call("GET", "/v1/webhooks", AUTH_A, NULL);
    af_expect_status(200);
    assert_int_equal(json_array_size(json_object_get(AF.json, "webhooks")), 0);

    af_call("POST", "/v1/webhooks", AUTH_A,
            "{\"url\": \"https://hooks.example.com/ses?token=1\", "
            "\"events\": [\"Delivery\", \"Bounce\"]}");
    af_expect_status(201);
    snprintf(created_id, sizeof created_id, "%s", af_str(AF.json, "id"));
    assert_string_equal(af_str(AF.json, "url"), "https://hooks.example.com/ses?token=1");
    json_t *ev = json_object_get(AF.json, "events");
    assert_int_equal(json_array_size(ev), 2);
    assert_string_equal(json_string_value(json_array_get(ev, 0)), "Delivery");
    assert_string_equal(json_string_value(json_array_get(ev, 1)), "Bounce");
    const char *secret = af_str(AF.json, "secret");
    assert_int_equal(strlen(secret), 2 * API_WEBHOOK_SECRET_BYTES);
    assert_int_equal(strspn(secret, "0123456789abcdef"), 2 * API_WEBHOOK_SECRET_BYTES);
    snprintf(created_secret, sizeof created_secret, "%s", secret);
    assert_int_equal(strlen(af_str(AF.json, "created_at")), 20);

    /* no events: all of them; a second secret differs from the first */
    af_call("POST", "/v1/webhooks", AUTH_A, "{\"url\": \"http://127.0.0.1:9/all\"}");
    af_expect_status(201);
    assert_int_equal(json_array_size(json_object_get(AF.json, "events")), 0);
    assert_string_not_equal(af_str(AF.json, "secret"), created_secret);
    af_call("POST", "/v1/webhooks", AUTH_A,
            "{\"url\": \"http://[::1]:8080/x\", \"events\": []}");
    af_expect_status(201);

    /* the list never shows a secret */
    af_call("GET", "/v1/webhooks", AUTH_A, NULL);
    af_expect_status(200);
    json_t *list = json_object_get(AF.json, "webhooks");
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(af_str(json_array_get(list, 0), "id"), created_id);
    size_t i;
    json_t *w;
    json_array_foreach(list, i, w) {
        assert_null(json_object_get(w, "secret"));
        assert_int_equal(json_object_size(w), 4);
    }
    assert_null(strstr(AF.body, created_secret));

    /* the stored secret is the one shown */
    struct secret_of q = { strtoll(created_id, NULL, 10), "" };
    assert_int_equal(store_webhook_list(AF.st, AF.a.id, secret_cb, &q), STORE_OK);
    assert_string_equal(q.secret, created_secret);
}

static void webhooks_refused(void **state)
{
    (void)state;
    static const struct { const char *body, *code; } bad[] = {
        { "{}", "invalid_request" },
        { "{\"url\": 1}", "invalid_request" },
        { "{\"url\": \"https://h.example/\", \"secret\": \"mine\"}", "invalid_request" },
        { "{\"url\": \"https://h.example/\", \"events\": \"Delivery\"}", "invalid_request" },
        { "{\"url\": \"https://h.example/\", \"events\": [\"Open\"]}", "invalid_request" },
        { "{\"url\": \"https://h.example/\", \"events\": [\"delivery\"]}", "invalid_request" },
        { "{\"url\": \"https://h.example/\", \"events\": [\"Send\", \"Send\"]}",
          "invalid_request" },
        { "{\"url\": \"https://h.example/\", \"events\": [\"Send,Bounce\"]}",
          "invalid_request" },
        { "{\"url\": \"https://h.example/\", \"events\": [null]}", "invalid_request" },
        { "{\"url\": \"ftp://h.example/\"}", "invalid_url" },
        { "{\"url\": \"https://user:pw@h.example/\"}", "invalid_url" },
        { "{\"url\": \"h.example/hook\"}", "invalid_url" },
        { "{\"url\": \"\"}", "invalid_url" },
        { "{\"url\": \"http://h.example:99999/\"}", "invalid_url" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        af_call("POST", "/v1/webhooks", AUTH_A, bad[i].body);
        if (AF.status != 400)
            fail_msg("%s: %d %s", bad[i].body, AF.status, AF.body);
        af_expect_error(400, bad[i].code);
    }
    char body[1200] = "{\"url\": \"https://h.example/";
    size_t n = strlen(body);
    memset(body + n, 'a', 1030);
    snprintf(body + n + 1030, sizeof body - n - 1030, "\"}");
    af_call("POST", "/v1/webhooks", AUTH_A, body);
    af_expect_error(400, "invalid_url");

    /* the per-account limit (alice has 3) */
    for (int i = 3; i < API_MAX_WEBHOOKS; i++) {
        af_call("POST", "/v1/webhooks", AUTH_A, "{\"url\": \"https://h.example/more\"}");
        af_expect_status(201);
    }
    af_call("POST", "/v1/webhooks", AUTH_A, "{\"url\": \"https://h.example/one-more\"}");
    af_expect_error(409, "limit_exceeded");
    /* bob is not limited by alice's */
    af_call("POST", "/v1/webhooks", AUTH_B, "{\"url\": \"https://bob.example/h\", "
                                            "\"events\": [\"Complaint\"]}");
    af_expect_status(201);
}

static void webhooks_isolation_and_delete(void **state)
{
    (void)state;
    af_call("GET", "/v1/webhooks", AUTH_B, NULL);
    af_expect_status(200);
    json_t *list = json_object_get(AF.json, "webhooks");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(af_str(json_array_get(list, 0), "url"), "https://bob.example/h");
    char bobs[24];
    snprintf(bobs, sizeof bobs, "%s", af_str(json_array_get(list, 0), "id"));

    char path[64];
    snprintf(path, sizeof path, "/v1/webhooks/%s", created_id);
    af_call("DELETE", path, AUTH_B, NULL);
    af_expect_error(404, "not_found");
    af_call("GET", "/v1/webhooks", AUTH_A, NULL);
    assert_int_equal(json_array_size(json_object_get(AF.json, "webhooks")), API_MAX_WEBHOOKS);

    af_call("DELETE", path, AUTH_A, NULL);
    af_expect_status(204);
    af_call("DELETE", path, AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("DELETE", "/v1/webhooks/0", AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("DELETE", "/v1/webhooks/abc", AUTH_A, NULL);
    af_expect_error(404, "not_found");
    snprintf(path, sizeof path, "/v1/webhooks/%s", bobs);
    af_call("DELETE", path, AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("GET", "/v1/webhooks", AUTH_B, NULL);
    assert_int_equal(json_array_size(json_object_get(AF.json, "webhooks")), 1);
    af_call("GET", "/v1/webhooks", AUTH_A, NULL);
    assert_int_equal(json_array_size(json_object_get(AF.json, "webhooks")),
                     API_MAX_WEBHOOKS - 1);
    /* room again */
    af_call("POST", "/v1/webhooks", AUTH_A, "{\"url\": \"https://h.example/again\"}");
    af_expect_status(201);
}

/* ---- GET /v1/messages/{id} ---- */

static int64_t add_message(int64_t account, const char *from, const char *const *rcpts,
                           size_t n)
{
    struct store_outbound m;
    memset(&m, 0, sizeof m);
    m.account_id = account;
    snprintf(m.mail_from, sizeof m.mail_from, "%s", from);
    m.rcpts = rcpts;
    m.nrcpt = n;
    snprintf(m.message_id, sizeof m.message_id, "<msg1@example.com>");
    m.source = "api";
    const char raw[] = "From: x@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_int_equal(store_outbound_insert(AF.st, &m, raw, sizeof raw - 1), STORE_OK);
    return m.id;
}

struct rcpt_ids {
    int64_t id[8];
    size_t n;
};

static int rcpt_ids_cb(const struct store_delivery *d, void *arg)
{
    struct rcpt_ids *r = arg;
    if (r->n < 8)
        r->id[r->n++] = d->rcpt_id;
    return 0;
}

static void messages_get(void **state)
{
    (void)state;
    const char *rcpts[] = { "one@example.net", "two@example.org", "three@example.com" };
    int64_t mid = add_message(AF.a.id, "sender@alice.example", rcpts, 3);
    struct rcpt_ids r = { .n = 0 };
    assert_int_equal(store_outbound_get(AF.st, AF.a.id, mid, NULL, rcpt_ids_cb, &r), STORE_OK);
    assert_int_equal(r.n, 3);
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(store_delivery_update(AF.st, r.id[0], STORE_RCPT_DELIVERED, 1, 0,
                                           "250 2.0.0 Ok: queued as X", now),
                     STORE_OK);
    assert_int_equal(store_delivery_update(AF.st, r.id[1], STORE_RCPT_DEFERRED, 2, now + 600,
                                           "451 4.7.1 greylisted", now),
                     STORE_OK);
    const char *dest[] = { "one@example.net" };
    struct event_mail em = { .message_id = mid, .timestamp = now, .source = "sender@alice.example",
                             .destination = dest, .ndestination = 1 };
    json_t *ev = event_create("Send", &em);
    assert_int_equal(event_record(AF.st, AF.a.id, mid, "", ev), STORE_OK);
    ev = event_create("Delivery", &em);
    event_set_delivery(ev, "one@example.net", "250 2.0.0 Ok: queued as X", 321, "192.0.2.7:25");
    assert_int_equal(event_record(AF.st, AF.a.id, mid, "one@example.net", ev), STORE_OK);

    char path[64];
    snprintf(path, sizeof path, "/v1/messages/%lld", (long long)mid);
    af_call("GET", path, AUTH_A, NULL);
    af_expect_status(200);
    char sid[24];
    snprintf(sid, sizeof sid, "%lld", (long long)mid);
    assert_string_equal(af_str(AF.json, "id"), sid);
    assert_string_equal(af_str(AF.json, "from"), "sender@alice.example");
    assert_string_equal(af_str(AF.json, "message_id"), "<msg1@example.com>");
    assert_string_equal(af_str(AF.json, "source"), "api");
    assert_int_equal(strlen(af_str(AF.json, "created_at")), 20);
    json_t *list = json_object_get(AF.json, "recipients");
    assert_int_equal(json_array_size(list), 3);
    json_t *one = json_array_get(list, 0), *two = json_array_get(list, 1),
           *three = json_array_get(list, 2);
    assert_string_equal(af_str(one, "address"), "one@example.net");
    assert_string_equal(af_str(one, "status"), "delivered");
    assert_int_equal(json_integer_value(json_object_get(one, "attempts")), 1);
    assert_string_equal(af_str(one, "last_response"), "250 2.0.0 Ok: queued as X");
    assert_true(json_is_null(json_object_get(one, "next_attempt_at")));
    assert_int_equal(strlen(af_str(one, "updated_at")), 20);
    assert_string_equal(af_str(two, "status"), "deferred");
    assert_int_equal(json_integer_value(json_object_get(two, "attempts")), 2);
    assert_string_equal(af_str(two, "last_response"), "451 4.7.1 greylisted");
    char t[32];
    time_t tt = (time_t)(now + 600);
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    assert_string_equal(af_str(two, "next_attempt_at"), t);
    assert_string_equal(af_str(three, "status"), "queued");
    assert_int_equal(json_integer_value(json_object_get(three, "attempts")), 0);
    assert_true(json_is_null(json_object_get(three, "last_response")));
    assert_true(json_is_string(json_object_get(three, "next_attempt_at")));
    assert_int_equal(json_object_size(three), 6);

    json_t *events = json_object_get(AF.json, "events");
    assert_int_equal(json_array_size(events), 2);
    assert_string_equal(af_str(json_array_get(events, 0), "eventType"), "Send");
    json_t *d = json_array_get(events, 1);
    assert_string_equal(af_str(d, "eventType"), "Delivery");
    json_t *dd = json_object_get(d, "delivery");
    assert_int_equal(json_integer_value(json_object_get(dd, "processingTimeMillis")), 321);
    assert_string_equal(af_str(dd, "remoteMtaIp"), "192.0.2.7");
    assert_string_equal(af_str(json_object_get(d, "mail"), "messageId"), sid);

    /* bob: not found, exactly like a message that does not exist */
    af_call("GET", path, AUTH_B, NULL);
    af_expect_error(404, "not_found");
    snprintf(path, sizeof path, "/v1/messages/%lld", (long long)mid + 1000);
    af_call("GET", path, AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("GET", "/v1/messages/0", AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("GET", "/v1/messages/-1", AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("GET", "/v1/messages/99999999999999999999", AUTH_A, NULL);
    af_expect_error(404, "not_found");

    /* bob's own message, from smtp, with no events and no Message-ID */
    const char *brcpt[] = { "x@example.net" };
    struct store_outbound m;
    memset(&m, 0, sizeof m);
    m.account_id = AF.b.id;
    snprintf(m.mail_from, sizeof m.mail_from, "b@bob.example");
    m.rcpts = brcpt;
    m.nrcpt = 1;
    m.source = "smtp";
    assert_int_equal(store_outbound_insert(AF.st, &m, "x\r\n", 3), STORE_OK);
    snprintf(path, sizeof path, "/v1/messages/%lld", (long long)m.id);
    af_call("GET", path, AUTH_A, NULL);
    af_expect_error(404, "not_found");
    af_call("GET", path, AUTH_B, NULL);
    af_expect_status(200);
    assert_string_equal(af_str(AF.json, "source"), "smtp");
    assert_true(json_is_null(json_object_get(AF.json, "message_id")));
    assert_int_equal(json_array_size(json_object_get(AF.json, "events")), 0);
    bob_message = m.id;
}

struct job_count {
    int64_t webhook_id;
    int n;
};

static int job_cb(const struct store_webhook_job *j, void *arg)
{
    struct job_count *c = arg;
    c->n += j->webhook_id == c->webhook_id;
    return 0;
}

/* The event list a webhook was created with is the one the store's
 * fan-out honours. */
static void webhook_events_honoured(void **state)
{
    (void)state;
    af_call("GET", "/v1/webhooks", AUTH_B, NULL);
    af_expect_status(200);
    json_t *w = json_array_get(json_object_get(AF.json, "webhooks"), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(w, "events"), 0)),
                        "Complaint");
    struct job_count c = { strtoll(af_str(w, "id"), NULL, 10), 0 };
    const char *dest[] = { "x@example.net" };
    struct event_mail em = { .message_id = bob_message, .timestamp = time(NULL),
                             .source = "b@bob.example", .destination = dest,
                             .ndestination = 1 };
    assert_int_equal(event_record(AF.st, AF.b.id, bob_message, "",
                                  event_create("Send", &em)), STORE_OK);
    json_t *ev = event_create("Complaint", &em);
    event_set_complaint(ev, "x@example.net", "abuse", NULL);
    assert_int_equal(event_record(AF.st, AF.b.id, bob_message, "x@example.net", ev), STORE_OK);
    int64_t far = (int64_t)time(NULL) + 86400;
    assert_int_equal(store_webhook_job_claim(AF.st, far, far + 1, 1000, job_cb, &c), STORE_OK);
    assert_int_equal(c.n, 1);
}

/* ---- account ---- */

static void account_quota(void **state)
{
    (void)state;
    /* alice queued one message (messages_get) */
    af_call("GET", "/v1/account", AUTH_A, NULL);
    af_expect_status(200);
    int64_t max = json_integer_value(json_object_get(AF.json, "max_24h"));
    int64_t sent = json_integer_value(json_object_get(AF.json, "sent_last_24h"));
    assert_int_equal(sent, 1);
    assert_int_equal(json_integer_value(json_object_get(AF.json, "quota_remaining")), max - 1);
    assert_int_equal(json_integer_value(json_object_get(AF.json, "max_rate")),
                     ACCOUNT_SANDBOX_MAX_RATE);
    /* over quota (the operator lowered it): 0, never negative */
    struct store_account a;
    assert_int_equal(store_account_get(AF.st, AF.a.id, &a), STORE_OK);
    a.max_24h = 0;
    assert_int_equal(store_account_update(AF.st, &a), STORE_OK);
    af_call("GET", "/v1/account", AUTH_A, NULL);
    assert_int_equal(json_integer_value(json_object_get(AF.json, "quota_remaining")), 0);
    a.max_24h = ACCOUNT_SANDBOX_MAX_24H;
    assert_int_equal(store_account_update(AF.st, &a), STORE_OK);
}

/* ---- every route: a key is needed; methods ---- */

static void routes_need_a_key(void **state)
{
    (void)state;
    static const struct { const char *method, *path; } routes[] = {
        { "GET", "/v1/suppressions" }, { "POST", "/v1/suppressions" },
        { "DELETE", "/v1/suppressions/a@example.com" }, { "GET", "/v1/webhooks" },
        { "POST", "/v1/webhooks" }, { "DELETE", "/v1/webhooks/1" }, { "GET", "/v1/messages/1" },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        af_call(routes[i].method, routes[i].path, NULL, "{}");
        af_expect_error(401, "unauthorized");
        af_call(routes[i].method, routes[i].path, "Bearer sk_1_nope", "{}");
        af_expect_error(401, "unauthorized");
        authfail_clear(AF.authfail, "192.0.2.1");
    }
    af_call("PUT", "/v1/webhooks", AUTH_A, "{}");
    af_expect_error(405, "method_not_allowed");
    af_call("GET", "/v1/webhooks/1", AUTH_A, NULL);
    af_expect_error(405, "method_not_allowed");
    af_call("PATCH", "/v1/suppressions", AUTH_A, "{}");
    af_expect_error(405, "method_not_allowed");
    af_call("POST", "/v1/suppressions", AUTH_A, "[1]");
    af_expect_error(400, "invalid_json");
    char *big = malloc(API_MAX_SMALL_BODY + 2);
    assert_non_null(big);
    memset(big, ' ', API_MAX_SMALL_BODY + 1);
    big[0] = '{';
    big[API_MAX_SMALL_BODY] = '}';
    big[API_MAX_SMALL_BODY + 1] = '\0';
    af_call("POST", "/v1/webhooks", AUTH_A, big);
    af_expect_error(413, "payload_too_large");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(suppressions_basics),
        cmocka_unit_test(suppressions_paging),
        cmocka_unit_test(suppressions_isolation),
        cmocka_unit_test(webhooks_create_list),
        cmocka_unit_test(webhooks_refused),
        cmocka_unit_test(webhooks_isolation_and_delete),
        cmocka_unit_test(messages_get),
        cmocka_unit_test(webhook_events_honoured),
        cmocka_unit_test(account_quota),
        cmocka_unit_test(routes_need_a_key),
    };
    return cmocka_run_group_tests(tests, af_setup, af_teardown);
}
