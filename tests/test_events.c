/* Events: the SES-shaped JSON of every type (compared whole with
 * json_equal once the times of the moment and the random feedbackId are
 * checked and removed), the signature against a vector computed with
 * Python's hmac module, recording (type check, other account's message),
 * and the dispatcher end to end against evhttp servers on 127.0.0.1 in
 * the same event loop with a real store: one POST per subscribed webhook
 * with a signature that verifies (checked again with OpenSSL's HMAC), a
 * 500 retried on the backoff, only subscribed types, a hung POST whose
 * job a new dispatcher delivers after the lease (restart), jobs left in
 * the store delivered by a new dispatcher, and giving up on a day-old
 * event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "service/events.h"
#include "service/webhook.h"
#include "store/store.h"
#include "util/log.h"

/* ---- shapes ---- */

static const char *const dest2[] = { "a@example.net", "b@example.org" };

static struct event_mail mail_fixture(void)
{
    static const char *const to[] = { "Ann <a@example.net>" };
    struct event_mail m = {
        .message_id = 42,
        .timestamp = 1714564800,          /* 2024-05-01T12:00:00Z */
        .source = "sender@example.com",
        .destination = dest2,
        .ndestination = 2,
        .header_message_id = "<abc@example.com>",
        .subject = "Hello caf\xc3\xa9",
        .header_from = "Sender <sender@example.com>",
        .header_to = to,
        .nheader_to = 1,
    };
    return m;
}

static const char *MAIL_JSON =
    "{\"timestamp\": \"2024-05-01T12:00:00.000Z\", \"messageId\": \"42\","
    " \"source\": \"sender@example.com\","
    " \"destination\": [\"a@example.net\", \"b@example.org\"], \"headersTruncated\": false,"
    " \"commonHeaders\": {\"from\": [\"Sender <sender@example.com>\"],"
    " \"to\": [\"Ann <a@example.net>\"], \"messageId\": \"<abc@example.com>\","
    " \"subject\": \"Hello caf\xc3\xa9\"}}";

/* Checks that o[key] is an ISO 8601 UTC time with milliseconds within a
 * minute of now, and removes it. */
static void take_now(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        fail_msg("no %s", key);
    assert_int_equal(strlen(s), 24);
    assert_true(s[4] == '-' && s[10] == 'T' && s[19] == '.' && s[23] == 'Z');
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H", &tm);
    if (strncmp(s, now, 13) != 0 && t % 3600 > 60)   /* the same hour, unless it just turned */
        fail_msg("%s = %s is not now (%s)", key, s, now);
    assert_int_equal(json_object_del(o, key), 0);
}

static void take_feedback_id(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "feedbackId"));
    assert_non_null(s);
    assert_int_equal(strlen(s), 32);
    assert_int_equal(strspn(s, "0123456789abcdef"), 32);
    assert_int_equal(json_object_del(o, "feedbackId"), 0);
}

static void expect_json(json_t *got, const char *want_text)
{
    json_error_t e;
    json_t *want = json_loads(want_text, 0, &e);
    if (!want)
        fail_msg("bad expected JSON: %s: %s", e.text, want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);
        fprintf(stderr, "got:  %s\nwant: %s\n", g, w);
        free(g);
        free(w);
        fail_msg("JSON differs");
    }
    json_decref(want);
}

static char *with_mail(const char *fmt)
{
    size_t n = strlen(fmt) + strlen(MAIL_JSON) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    const char *at = strstr(fmt, "MAIL");
    assert_non_null(at);
    snprintf(s, n, "%.*s%s%s", (int)(at - fmt), fmt, MAIL_JSON, at + 4);
    return s;
}

static void check_shape(json_t *ev, const char *fmt)
{
    char *want = with_mail(fmt);
    expect_json(ev, want);
    free(want);
}

static void test_send_reject(void **state)
{
    (void)state;
    struct event_mail m = mail_fixture();
    json_t *ev = event_create("Send", &m);
    assert_non_null(ev);
    check_shape(ev, "{\"eventType\": \"Send\", \"mail\": MAIL, \"send\": {}}");
    json_decref(ev);

    ev = event_create("Reject", &m);
    event_set_reject(ev, "b@example.org is on the suppression list");
    check_shape(ev, "{\"eventType\": \"Reject\", \"mail\": MAIL,"
                    " \"reject\": {\"reason\": \"b@example.org is on the suppression list\"}}");
    json_decref(ev);

    assert_null(event_create("Open", &m));
    assert_null(event_create("send", &m));
    assert_null(event_create(NULL, &m));
    assert_true(event_type_valid("DeliveryDelay"));
    assert_false(event_type_valid("Delivery,Bounce"));
    assert_false(event_type_valid(""));
}

static void test_minimal_mail(void **state)
{
    (void)state;
    /* nothing known of the header: no commonHeaders */
    struct event_mail m = { .message_id = 7, .timestamp = 1714564800, .source = "s@example.com",
                            .destination = dest2, .ndestination = 1 };
    json_t *ev = event_create("Send", &m);
    expect_json(ev, "{\"eventType\": \"Send\", \"send\": {}, \"mail\": {"
                    "\"timestamp\": \"2024-05-01T12:00:00.000Z\", \"messageId\": \"7\","
                    " \"source\": \"s@example.com\", \"destination\": [\"a@example.net\"],"
                    " \"headersTruncated\": false}}");
    json_decref(ev);
    /* only a subject: from falls back to the source */
    m.subject = "Hi";
    ev = event_create("Send", &m);
    expect_json(json_object_get(json_object_get(ev, "mail"), "commonHeaders"),
                "{\"from\": [\"s@example.com\"], \"subject\": \"Hi\"}");
    json_decref(ev);
    /* bytes that are not UTF-8 (a Latin-1 subject, a truncated sequence)
     * become U+FFFD; the event is not lost */
    m.subject = "caf\xe9 \xe2\x82";
    ev = event_create("Send", &m);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(ev, "mail"), "commonHeaders"),
                            "subject")),
                        "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
    json_decref(ev);
}

static void test_delivery(void **state)
{
    (void)state;
    event_set_reporting_mta("mx.sesame.test");
    struct event_mail m = mail_fixture();
    json_t *ev = event_create("Delivery", &m);
    event_set_delivery(ev, "a@example.net", "250 2.0.0 Ok: queued as 4VXYZ", 1234,
                       "mx1.example.net (192.0.2.25:25)");
    json_t *d = json_object_get(ev, "delivery");
    take_now(d, "timestamp");
    check_shape(ev, "{\"eventType\": \"Delivery\", \"mail\": MAIL, \"delivery\": {"
                    "\"processingTimeMillis\": 1234, \"recipients\": [\"a@example.net\"],"
                    " \"smtpResponse\": \"250 2.0.0 Ok: queued as 4VXYZ\","
                    " \"remoteMtaIp\": \"192.0.2.25\", \"reportingMTA\": \"mx.sesame.test\"}}");
    json_decref(ev);

    /* the remote's forms; a name alone gives no remoteMtaIp */
    static const struct { const char *remote, *ip; } forms[] = {
        { "192.0.2.1", "192.0.2.1" },
        { "192.0.2.1:2525", "192.0.2.1" },
        { "[2001:db8::1]:25", "2001:db8::1" },
        { "mx.example.net ([2001:db8::2]:25)", "2001:db8::2" },
        { "2001:db8::3", "2001:db8::3" },
        { "mx.example.net", NULL },
        { "", NULL },
        { NULL, NULL },
        { "[2001:db8::1", NULL },
        { "mx (999.1.1.1:25)", NULL },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        ev = event_create("Delivery", &m);
        event_set_delivery(ev, "a@example.net", "250 ok", 5, forms[i].remote);
        const char *ip = json_string_value(
            json_object_get(json_object_get(ev, "delivery"), "remoteMtaIp"));
        if (forms[i].ip) {
            if (!ip || strcmp(ip, forms[i].ip) != 0)
                fail_msg("%s: %s", forms[i].remote, ip ? ip : "(none)");
        } else if (ip) {
            fail_msg("%s: %s", forms[i].remote ? forms[i].remote : "NULL", ip);
        }
        json_decref(ev);
    }

    /* a second recipient joins the first */
    ev = event_create("Delivery", &m);
    event_set_delivery(ev, "a@example.net", "250 ok", 5, NULL);
    event_set_delivery(ev, "b@example.org", "250 ok", 6, NULL);
    d = json_object_get(ev, "delivery");
    take_now(d, "timestamp");
    expect_json(d, "{\"processingTimeMillis\": 6, \"recipients\": [\"a@example.net\","
                   " \"b@example.org\"], \"smtpResponse\": \"250 ok\","
                   " \"reportingMTA\": \"mx.sesame.test\"}");
    json_decref(ev);
}

static void test_bounce(void **state)
{
    (void)state;
    event_set_reporting_mta("mx.sesame.test");
    struct event_mail m = mail_fixture();
    json_t *ev = event_create("Bounce", &m);
    event_set_bounce(ev, "Permanent", "General", "b@example.org", NULL,
                     "550 5.1.1 <b@example.org>: user unknown", NULL);
    json_t *b = json_object_get(ev, "bounce");
    take_now(b, "timestamp");
    take_feedback_id(b);
    check_shape(ev, "{\"eventType\": \"Bounce\", \"mail\": MAIL, \"bounce\": {"
                    "\"bounceType\": \"Permanent\", \"bounceSubType\": \"General\","
                    " \"bouncedRecipients\": [{\"emailAddress\": \"b@example.org\","
                    " \"action\": \"failed\", \"status\": \"5.1.1\","
                    " \"diagnosticCode\": \"smtp; 550 5.1.1 <b@example.org>: user unknown\"}],"
                    " \"reportingMTA\": \"dsn; mx.sesame.test\"}}");
    json_decref(ev);

    /* from a DSN: status given, Diagnostic-Code and Reporting-MTA as they are */
    ev = event_create("Bounce", &m);
    event_set_bounce(ev, "Transient", "MailboxFull", "a@example.net", "4.2.2",
                     "smtp; 452 4.2.2 Mailbox full", "dns; mx.example.net");
    event_set_bounce(ev, "Transient", "MailboxFull", "b@example.org", "4.2.2", NULL,
                     "dns; mx.example.net");
    b = json_object_get(ev, "bounce");
    take_now(b, "timestamp");
    take_feedback_id(b);
    expect_json(b, "{\"bounceType\": \"Transient\", \"bounceSubType\": \"MailboxFull\","
                   " \"bouncedRecipients\": [{\"emailAddress\": \"a@example.net\","
                   " \"action\": \"failed\", \"status\": \"4.2.2\","
                   " \"diagnosticCode\": \"smtp; 452 4.2.2 Mailbox full\"},"
                   " {\"emailAddress\": \"b@example.org\", \"action\": \"failed\","
                   " \"status\": \"4.2.2\"}],"
                   " \"reportingMTA\": \"dns; mx.example.net\"}");
    json_decref(ev);

    /* no enhanced code anywhere: no status; a basic-code-only reply */
    ev = event_create("Bounce", &m);
    event_set_bounce(ev, "Permanent", "Suppressed", "b@example.org", NULL, "550 no such user",
                     "other.example");
    b = json_object_get(ev, "bounce");
    json_t *r = json_array_get(json_object_get(b, "bouncedRecipients"), 0);
    assert_null(json_object_get(r, "status"));
    assert_string_equal(json_string_value(json_object_get(r, "diagnosticCode")),
                        "smtp; 550 no such user");
    assert_string_equal(json_string_value(json_object_get(b, "reportingMTA")),
                        "dsn; other.example");
    json_decref(ev);
}

static void test_complaint(void **state)
{
    (void)state;
    struct event_mail m = mail_fixture();
    json_t *ev = event_create("Complaint", &m);
    event_set_complaint(ev, "a@example.net", "abuse", "Mail-Provider-FBL/2.0");
    json_t *c = json_object_get(ev, "complaint");
    take_now(c, "timestamp");
    take_feedback_id(c);
    check_shape(ev, "{\"eventType\": \"Complaint\", \"mail\": MAIL, \"complaint\": {"
                    "\"complainedRecipients\": [{\"emailAddress\": \"a@example.net\"}],"
                    " \"complaintSubType\": null, \"complaintFeedbackType\": \"abuse\","
                    " \"userAgent\": \"Mail-Provider-FBL/2.0\"}}");
    json_decref(ev);

    /* a redacted report: no recipient, no type, no agent */
    ev = event_create("Complaint", &m);
    event_set_complaint(ev, NULL, NULL, NULL);
    c = json_object_get(ev, "complaint");
    take_now(c, "timestamp");
    take_feedback_id(c);
    expect_json(c, "{\"complainedRecipients\": [], \"complaintSubType\": null}");
    json_decref(ev);
}

static void test_delay(void **state)
{
    (void)state;
    struct event_mail m = mail_fixture();
    json_t *ev = event_create("DeliveryDelay", &m);
    event_set_delay(ev, "a@example.net", NULL, "421 4.4.1 Unable to connect", 1714824000);
    json_t *d = json_object_get(ev, "deliveryDelay");
    take_now(d, "timestamp");
    check_shape(ev, "{\"eventType\": \"DeliveryDelay\", \"mail\": MAIL, \"deliveryDelay\": {"
                    "\"delayType\": \"TransientCommunicationFailure\","
                    " \"expirationTime\": \"2024-05-04T12:00:00.000Z\","
                    " \"delayedRecipients\": [{\"emailAddress\": \"a@example.net\","
                    " \"status\": \"4.4.1\","
                    " \"diagnosticCode\": \"smtp; 421 4.4.1 Unable to connect\"}]}}");
    json_decref(ev);

    static const struct { const char *status, *diag, *type; } types[] = {
        { NULL, "connection refused", "TransientCommunicationFailure" },
        { NULL, NULL, "TransientCommunicationFailure" },
        { "4.2.2", "452 4.2.2 over quota", "MailboxFull" },
        { NULL, "450 4.7.1 greylisted, try later", "SpamDetected" },
        { NULL, "451 local error", "RecipientServerError" },
        { NULL, "450 4.3.2 shutting down", "RecipientServerError" },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        ev = event_create("DeliveryDelay", &m);
        event_set_delay(ev, "a@example.net", types[i].status, types[i].diag, 1714824000);
        const char *t = json_string_value(
            json_object_get(json_object_get(ev, "deliveryDelay"), "delayType"));
        if (!t || strcmp(t, types[i].type) != 0)
            fail_msg("%s: %s, expected %s", types[i].diag ? types[i].diag : "NULL", t,
                     types[i].type);
        json_decref(ev);
    }
    ev = event_create("DeliveryDelay", &m);
    event_set_delay(ev, "a@example.net", NULL, "451 x", 1714824000);
    event_set_delay_type(ev, "IPFailure");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(ev, "deliveryDelay"), "delayType")),
                        "IPFailure");
    json_decref(ev);
}

/* ---- signature ---- */

static void test_sign_vector(void **state)
{
    (void)state;
    /* python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test_4f2a",
     *   b"1714564800." + BODY, hashlib.sha256).hexdigest())' */
    const char body[] = "{\"eventType\":\"Delivery\",\"x\":\"caf\xc3\xa9\"}";
    char sig[80];
    memset(sig, 'x', sizeof sig);
    event_sign("whsec_test_4f2a", 1714564800, body, sizeof body - 1, sig);
    assert_string_equal(sig, "sha256=ba22632dc7e625c8df18feda0a15e294fc3d2beb8987d26fe6ea21fc"
                             "ecbea496");
    event_sign("k", 0, "", 0, sig);
    assert_string_equal(sig, "sha256=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329"
                             "167641e7");
    /* another timestamp, body or key: another signature */
    char other[80];
    event_sign("whsec_test_4f2a", 1714564801, body, sizeof body - 1, other);
    assert_string_not_equal(sig, other);
}

/* The signature recomputed with OpenSSL, independently of libsodium. */
static void verify_signature(const char *secret, const char *ts, const char *body, size_t len,
                             const char *sig)
{
    size_t tl = strlen(ts);
    unsigned char *msg = malloc(tl + 1 + len);
    assert_non_null(msg);
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, body, len);
    unsigned char mac[32];
    unsigned int ml = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tl + 1 + len, mac, &ml));
    free(msg);
    char want[80] = "sha256=";
    for (unsigned i = 0; i < ml; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(sig, want);
}

/* ---- the dispatcher, end to end ---- */

#define MAX_REQS 16

struct seen {
    char uri[128], ctype[64], ts[32], sig[80], evid[24];
    double at;                   /* CLOCK_MONOTONIC seconds */
    char *body;
    size_t len;
};

struct server {
    struct evhttp *http;
    unsigned port;
    int codes[MAX_REQS];         /* reply per request; 0 = never answer */
    size_t nreq;
    struct seen reqs[MAX_REQS];
};

static struct event_base *base;
static struct store *st;
static char dir[64];
static struct store_account acc, other;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void copy_header(struct evkeyvalq *h, const char *name, char *out, size_t n)
{
    const char *v = evhttp_find_header(h, name);
    snprintf(out, n, "%s", v ? v : "");
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    assert_true(s->nreq < MAX_REQS);
    struct seen *r = &s->reqs[s->nreq];
    int code = s->codes[s->nreq];
    s->nreq++;
    r->at = now_s();
    snprintf(r->uri, sizeof r->uri, "%s", evhttp_request_get_uri(req));
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    copy_header(h, "Content-Type", r->ctype, sizeof r->ctype);
    copy_header(h, "X-Sesame-Timestamp", r->ts, sizeof r->ts);
    copy_header(h, "X-Sesame-Signature", r->sig, sizeof r->sig);
    copy_header(h, "X-Sesame-Event-Id", r->evid, sizeof r->evid);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    r->len = evbuffer_get_length(in);
    r->body = malloc(r->len + 1);
    assert_non_null(r->body);
    evbuffer_remove(in, r->body, r->len);
    r->body[r->len] = '\0';
    if (code)
        evhttp_send_reply(req, code, code < 300 ? "OK" : "Nope", NULL);
}

static void server_start(struct server *s)
{
    memset(s, 0, sizeof *s);
    s->http = evhttp_new(base);
    assert_non_null(s->http);
    evhttp_set_gencb(s->http, handle, s);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    s->port = ntohs(sin.sin_port);
}

static void server_stop(struct server *s)
{
    evhttp_free(s->http);
    for (size_t i = 0; i < s->nreq; i++)
        free(s->reqs[i].body);
}

/* Runs the loop until *n reaches want (or timeout s passed); then a little
 * longer when settle > 0, to see that nothing more comes. */
static void run_until(const size_t *n, size_t want, double timeout, double settle)
{
    double deadline = now_s() + timeout;
    while (*n < want && now_s() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    if (*n < want)
        fail_msg("%zu requests, expected %zu", *n, want);
    deadline = now_s() + settle;
    while (now_s() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
}

static int64_t add_message(int64_t account)
{
    const char *rcpts[] = { "a@example.net" };
    struct store_outbound m;
    memset(&m, 0, sizeof m);
    m.account_id = account;
    snprintf(m.mail_from, sizeof m.mail_from, "sender@example.com");
    m.rcpts = rcpts;
    m.nrcpt = 1;
    snprintf(m.message_id, sizeof m.message_id, "<m@example.com>");
    m.source = "api";
    const char raw[] = "From: sender@example.com\r\nSubject: x\r\n\r\nhi\r\n";
    assert_int_equal(store_outbound_insert(st, &m, raw, sizeof raw - 1), STORE_OK);
    return m.id;
}

static int64_t add_webhook(int64_t account, unsigned port, const char *path, const char *events,
                           const char *secret)
{
    struct store_webhook w;
    memset(&w, 0, sizeof w);
    w.account_id = account;
    snprintf(w.url, sizeof w.url, "http://127.0.0.1:%u%s", port, path);
    snprintf(w.events, sizeof w.events, "%s", events);
    snprintf(w.secret, sizeof w.secret, "%s", secret);
    assert_int_equal(store_webhook_insert(st, &w), STORE_OK);
    return w.id;
}

static json_t *make_event(const char *type, int64_t mid, int64_t accepted_at)
{
    const char *dest[] = { "a@example.net" };
    struct event_mail m = { .message_id = mid, .timestamp = accepted_at,
                            .source = "sender@example.com", .destination = dest,
                            .ndestination = 1 };
    json_t *ev = event_create(type, &m);
    assert_non_null(ev);
    if (strcmp(type, "Delivery") == 0)
        event_set_delivery(ev, "a@example.net", "250 ok", 10, "192.0.2.1:25");
    else if (strcmp(type, "Bounce") == 0)
        event_set_bounce(ev, "Permanent", "General", "a@example.net", NULL, "550 5.1.1 no", NULL);
    return ev;
}

struct ev_row {
    int64_t id;
    char *json;
};

static int last_event_cb(const struct store_event *e, void *arg)
{
    struct ev_row *r = arg;
    r->id = e->id;
    free(r->json);
    r->json = strdup(e->json);
    return 0;
}

static struct ev_row last_event(int64_t account, int64_t mid)
{
    struct ev_row r = { 0, NULL };
    assert_int_equal(store_event_list(st, account, mid, last_event_cb, &r), STORE_OK);
    assert_non_null(r.json);
    return r;
}

static int count_cb(const struct store_webhook_job *j, void *arg)
{
    (void)j;
    (*(int *)arg)++;
    return 0;
}

/* Jobs left in the store, whenever due (claims them: call last). */
static int jobs_left(void)
{
    int n = 0;
    int64_t far = (int64_t)time(NULL) + 10 * 86400;
    assert_int_equal(store_webhook_job_claim(st, far, far + 1, 1000, count_cb, &n), STORE_OK);
    return n;
}

static int setup_store(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/sesame-test-events-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char err[256];
    st = store_open("sqlite", dir, err, sizeof err);
    if (!st)
        fail_msg("store_open: %s", err);
    base = event_base_new();
    assert_non_null(base);
    return 0;
}

static int teardown_store(void **state)
{
    (void)state;
    store_close(st);
    st = NULL;
    event_base_free(base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void new_accounts(void)
{
    static int n;
    memset(&acc, 0, sizeof acc);
    memset(&other, 0, sizeof other);
    snprintf(acc.name, sizeof acc.name, "acc%d", n);
    snprintf(other.name, sizeof other.name, "other%d", n++);
    acc.max_24h = other.max_24h = 200;
    acc.max_rate = other.max_rate = 1;
    assert_int_equal(store_account_insert(st, &acc), STORE_OK);
    assert_int_equal(store_account_insert(st, &other), STORE_OK);
}

static struct event_dispatcher *dispatcher(struct webhook_client *wc)
{
    struct event_dispatcher *d = event_dispatcher_new(base, st, wc);
    assert_non_null(d);
    event_dispatcher_set_interval_ms(d, 50);
    return d;
}

static void test_record(void **state)
{
    (void)state;
    new_accounts();
    int64_t mid = add_message(acc.id);
    assert_int_equal(event_record(st, acc.id, mid, "", make_event("Send", mid, 1714564800)),
                     STORE_OK);
    struct ev_row r = last_event(acc.id, mid);
    json_t *ev = json_loads(r.json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "eventType")), "Send");
    json_decref(ev);
    free(r.json);
    /* another account's message is not found; a bad event is refused */
    assert_int_equal(event_record(st, other.id, mid, "", make_event("Send", mid, 1714564800)),
                     STORE_NOTFOUND);
    json_t *bad = make_event("Send", mid, 1714564800);
    json_object_set_new(bad, "eventType", json_string("Open"));
    assert_int_equal(event_record(st, acc.id, mid, "", bad), STORE_ERROR);
    assert_int_equal(event_record(st, acc.id, mid, "", NULL), STORE_ERROR);
}

static void test_delivered_once_signed(void **state)
{
    (void)state;
    new_accounts();
    struct server s, t;
    server_start(&s);
    server_start(&t);
    for (int i = 0; i < MAX_REQS; i++)
        s.codes[i] = t.codes[i] = 200;
    const char *secret = "9f2c0e5b7a1d4c3e8f6a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6";
    add_webhook(acc.id, s.port, "/hooks/ses?k=1", "", secret);
    add_webhook(other.id, t.port, "/other", "", "other-secret");  /* never sees acc's */
    struct webhook_client *wc = webhook_client_new(base, NULL, NULL);
    struct event_dispatcher *d = dispatcher(wc);
    int64_t mid = add_message(acc.id);
    assert_int_equal(event_record(st, acc.id, mid, "a@example.net",
                                  make_event("Delivery", mid, (int64_t)time(NULL))),
                     STORE_OK);
    event_dispatcher_kick(d);
    run_until(&s.nreq, 1, 5, 0.5);
    assert_int_equal(s.nreq, 1);                 /* once */
    assert_int_equal(t.nreq, 0);
    struct seen *r = &s.reqs[0];
    assert_string_equal(r->uri, "/hooks/ses?k=1");
    assert_string_equal(r->ctype, "application/json");
    struct ev_row e = last_event(acc.id, mid);
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, e.id);
    assert_string_equal(r->evid, idbuf);
    assert_string_equal(r->body, e.json);        /* the stored body, byte for byte */
    free(e.json);
    int64_t ts = strtoll(r->ts, NULL, 10);
    assert_true(llabs(ts - (int64_t)time(NULL)) < 10);
    verify_signature(secret, r->ts, r->body, r->len, r->sig);
    char sig[80];
    event_sign(secret, ts, r->body, r->len, sig);
    assert_string_equal(r->sig, sig);
    assert_int_equal(event_dispatcher_inflight(d), 0);
    event_dispatcher_free(d);
    webhook_client_free(wc);
    assert_int_equal(jobs_left(), 0);
    server_stop(&s);
    server_stop(&t);
}

static void test_retry_500_then_200(void **state)
{
    (void)state;
    new_accounts();
    struct server s;
    server_start(&s);
    s.codes[0] = 500;
    s.codes[1] = 200;
    add_webhook(acc.id, s.port, "/h", "Delivery", "k1");
    struct webhook_client *wc = webhook_client_new(base, NULL, NULL);
    struct event_dispatcher *d = dispatcher(wc);
    static const unsigned one[] = { 1 };
    event_dispatcher_set_backoff(d, one, 1);
    int64_t mid = add_message(acc.id);
    assert_int_equal(event_record(st, acc.id, mid, "a@example.net",
                                  make_event("Delivery", mid, (int64_t)time(NULL))),
                     STORE_OK);
    run_until(&s.nreq, 2, 6, 0.3);
    assert_int_equal(s.nreq, 2);
    /* waited for the backoff (store times are whole seconds) */
    assert_true(strtoll(s.reqs[1].ts, NULL, 10) >= strtoll(s.reqs[0].ts, NULL, 10) + 1);
    assert_string_equal(s.reqs[0].body, s.reqs[1].body);
    assert_string_equal(s.reqs[0].evid, s.reqs[1].evid);
    verify_signature("k1", s.reqs[1].ts, s.reqs[1].body, s.reqs[1].len, s.reqs[1].sig);
    event_dispatcher_free(d);
    webhook_client_free(wc);
    assert_int_equal(jobs_left(), 0);
    server_stop(&s);
}

static void test_only_subscribed(void **state)
{
    (void)state;
    new_accounts();
    struct server all, dlv, bnc;
    server_start(&all);
    server_start(&dlv);
    server_start(&bnc);
    for (int i = 0; i < MAX_REQS; i++)
        all.codes[i] = dlv.codes[i] = bnc.codes[i] = 200;
    add_webhook(acc.id, all.port, "/all", "", "a");
    add_webhook(acc.id, dlv.port, "/dlv", "Delivery", "b");
    add_webhook(acc.id, bnc.port, "/bnc", "Bounce, Complaint", "c");
    struct webhook_client *wc = webhook_client_new(base, NULL, NULL);
    struct event_dispatcher *d = dispatcher(wc);
    int64_t mid = add_message(acc.id);
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(event_record(st, acc.id, mid, "", make_event("Send", mid, now)), STORE_OK);
    assert_int_equal(event_record(st, acc.id, mid, "a@example.net",
                                  make_event("Delivery", mid, now)), STORE_OK);
    assert_int_equal(event_record(st, acc.id, mid, "a@example.net",
                                  make_event("Bounce", mid, now)), STORE_OK);
    run_until(&all.nreq, 3, 5, 0.5);
    assert_int_equal(all.nreq, 3);
    assert_int_equal(dlv.nreq, 1);
    assert_int_equal(bnc.nreq, 1);
    assert_non_null(strstr(dlv.reqs[0].body, "\"eventType\":\"Delivery\""));
    assert_non_null(strstr(bnc.reqs[0].body, "\"eventType\":\"Bounce\""));
    verify_signature("b", dlv.reqs[0].ts, dlv.reqs[0].body, dlv.reqs[0].len, dlv.reqs[0].sig);
    verify_signature("c", bnc.reqs[0].ts, bnc.reqs[0].body, bnc.reqs[0].len, bnc.reqs[0].sig);
    event_dispatcher_free(d);
    webhook_client_free(wc);
    assert_int_equal(jobs_left(), 0);
    server_stop(&all);
    server_stop(&dlv);
    server_stop(&bnc);
}

static void test_restart(void **state)
{
    (void)state;
    new_accounts();
    struct server s;
    server_start(&s);
    s.codes[0] = 0;              /* the first POST hangs: the process "dies" during it */
    s.codes[1] = 200;
    s.codes[2] = 200;
    add_webhook(acc.id, s.port, "/r", "", "k");
    int64_t mid = add_message(acc.id);
    assert_int_equal(event_record(st, acc.id, mid, "", make_event("Send", mid, time(NULL))),
                     STORE_OK);
    struct webhook_client *wc = webhook_client_new(base, NULL, NULL);
    struct event_dispatcher *d = dispatcher(wc);
    event_dispatcher_set_lease(d, 2);
    run_until(&s.nreq, 1, 5, 0);
    assert_int_equal(event_dispatcher_inflight(d), 1);
    event_dispatcher_free(d);                     /* its job stays leased */
    webhook_client_free(wc);

    /* a new dispatcher (and client): the job comes back once the lease ends */
    wc = webhook_client_new(base, NULL, NULL);
    d = dispatcher(wc);
    run_until(&s.nreq, 2, 6, 0.3);
    assert_int_equal(s.nreq, 2);
    /* not before the lease (2 s from the claim, in whole seconds) ended */
    assert_true(strtoll(s.reqs[1].ts, NULL, 10) >= strtoll(s.reqs[0].ts, NULL, 10) + 1);
    assert_true(s.reqs[1].at - s.reqs[0].at >= 0.9);
    assert_string_equal(s.reqs[0].evid, s.reqs[1].evid);
    event_dispatcher_free(d);
    webhook_client_free(wc);
    assert_int_equal(jobs_left(), 0);

    /* recorded while no dispatcher runs: the next one delivers it */
    assert_int_equal(event_record(st, acc.id, mid, "", make_event("Send", mid, time(NULL))),
                     STORE_OK);
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(s.nreq, 2);
    wc = webhook_client_new(base, NULL, NULL);
    d = dispatcher(wc);
    run_until(&s.nreq, 3, 5, 0.2);
    assert_int_equal(s.nreq, 3);
    event_dispatcher_free(d);
    webhook_client_free(wc);
    assert_int_equal(jobs_left(), 0);
    server_stop(&s);
}

static void test_give_up_after_a_day(void **state)
{
    (void)state;
    new_accounts();
    struct server s;
    server_start(&s);
    for (int i = 0; i < MAX_REQS; i++)
        s.codes[i] = 503;
    add_webhook(acc.id, s.port, "/old", "", "k");
    struct webhook_client *wc = webhook_client_new(base, NULL, NULL);
    struct event_dispatcher *d = dispatcher(wc);
    static const unsigned one[] = { 1 };
    event_dispatcher_set_backoff(d, one, 1);
    int64_t mid = add_message(acc.id);
    /* a Send event is as old as its message: accepted 25 hours ago */
    int64_t old = (int64_t)time(NULL) - 25 * 3600;
    assert_int_equal(event_record(st, acc.id, mid, "", make_event("Send", mid, old)), STORE_OK);
    /* a fresh one next to it keeps being retried */
    assert_int_equal(event_record(st, acc.id, mid, "", make_event("Send", mid, time(NULL))),
                     STORE_OK);
    run_until(&s.nreq, 3, 6, 0);
    double settle = now_s() + 1.2;
    while (now_s() < settle)
        event_base_loop(base, EVLOOP_ONCE);
    size_t old_posts = 0;
    struct ev_row e = last_event(acc.id, mid);
    char fresh[24];
    snprintf(fresh, sizeof fresh, "%" PRId64, e.id);
    free(e.json);
    for (size_t i = 0; i < s.nreq; i++)
        old_posts += strcmp(s.reqs[i].evid, fresh) != 0;
    assert_int_equal(old_posts, 1);               /* tried once, then given up */
    assert_true(s.nreq - old_posts >= 2);         /* the fresh one: tried again */
    event_dispatcher_free(d);
    webhook_client_free(wc);
    assert_int_equal(jobs_left(), 1);             /* only the fresh one is left */
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest shapes[] = {
        cmocka_unit_test(test_send_reject),
        cmocka_unit_test(test_minimal_mail),
        cmocka_unit_test(test_delivery),
        cmocka_unit_test(test_bounce),
        cmocka_unit_test(test_complaint),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_sign_vector),
    };
    const struct CMUnitTest dispatch[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_delivered_once_signed),
        cmocka_unit_test(test_retry_500_then_200),
        cmocka_unit_test(test_only_subscribed),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_give_up_after_a_day),
    };
    int failed = cmocka_run_group_tests_name("shapes", shapes, NULL, NULL);
    failed += cmocka_run_group_tests_name("dispatcher", dispatch, setup_store, teardown_store);
    return failed;
}
