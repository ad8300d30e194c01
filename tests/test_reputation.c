/* Tests of service/reputation.c through event_record (the path delivery
 * and feedback take) on a real store: counting, the window, not judging
 * below min_sends, healthy → warning → paused on bounces and on
 * complaints with their events, pause being sticky until resume (which
 * starts a fresh window), the paused account refused by outbound_accept
 * while another keeps sending, the unknown-recipient burst and the volume
 * jump, and the JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api_fixture.h"
#include "service/events.h"
#include "service/group_commit.h"
#include "service/outbound.h"
#include "service/reputation.h"

#define DAY 86400

static int setup(void **state)
{
    if (af_setup(state) != 0)
        return -1;
    struct reputation_limits l = {
        .bounce_warning = 50000, .bounce_pause = 100000,      /* 5 %, 10 % */
        .complaint_warning = 20000, .complaint_pause = 50000, /* 2 %, 5 % */
        .min_sends = 20, .window_sends = 1000, .window_days = 30,
        .volume_factor = 10, .unknown_burst = 10,
    };
    reputation_configure(&l);
    return 0;
}

static void ev(int64_t account, const char *json)
{
    json_t *e = json_loads(json, 0, NULL);
    assert_non_null(e);
    assert_int_equal(event_record(AF.st, account, 0, "", e), STORE_OK);
}

static void sends(int64_t account, int n)
{
    for (int i = 0; i < n; i++) {
        ev(account, "{\"eventType\":\"Send\",\"mail\":{\"destination\":[\"a@x.example\"]}}");
        ev(account, "{\"eventType\":\"Delivery\",\"delivery\":{\"recipients\":[\"a@x.example\"]}}");
    }
}

static void bounce(int64_t account, const char *sub)
{
    char j[256];
    ev(account, "{\"eventType\":\"Send\",\"mail\":{\"destination\":[\"b@x.example\"]}}");
    snprintf(j, sizeof j, "{\"eventType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
             "\"bounceSubType\":\"%s\",\"bouncedRecipients\":[{\"emailAddress\":\"b@x.example\"}]}}",
             sub);
    ev(account, j);
}

static int status_of(int64_t account, struct reputation *r)
{
    assert_int_equal(reputation_get(AF.st, account, (int64_t)time(NULL), r), STORE_OK);
    return r->status;
}

struct evs { int n; char last[1024]; };

static int evs_cb(const struct store_event *e, void *arg)
{
    struct evs *l = arg;
    if (strcmp(e->type, "ReputationStatus") == 0) {
        l->n++;
        snprintf(l->last, sizeof l->last, "%s", e->json);
    }
    return 0;
}

static void rep_events(int64_t account, struct evs *l)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(store_event_list(AF.st, account, 0, evs_cb, l), STORE_OK);
}

static void bounces_warn_then_pause(void **state)
{
    (void)state;
    struct reputation r;
    struct evs e;
    /* below min_sends nothing is judged, whatever the rate */
    for (int i = 0; i < 5; i++)
        bounce(AF.b.id, "General");
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_HEALTHY);
    assert_false(r.judged);
    assert_int_equal(r.bounces, 5);
    /* 95 delivered, then 5 bounced = 5 %: warning at the fifth */
    sends(AF.a.id, 95);
    for (int i = 0; i < 4; i++)
        bounce(AF.a.id, "General");
    assert_int_equal(status_of(AF.a.id, &r), REPUTATION_HEALTHY);
    bounce(AF.a.id, "General");
    assert_int_equal(status_of(AF.a.id, &r), REPUTATION_WARNING);
    assert_true(r.judged);
    assert_int_equal(r.sends, 100);
    assert_true(r.bounce_rate >= 0.05 && r.bounce_rate < 0.051);
    assert_non_null(strstr(r.reason, "bounce rate 5.00%"));
    rep_events(AF.a.id, &e);
    assert_int_equal(e.n, 1);
    assert_non_null(strstr(e.last, "\"status\":\"warning\""));
    assert_non_null(strstr(e.last, "\"previousStatus\":\"healthy\""));
    /* 6 more bounces: 11 / 106 > 10 %: paused */
    for (int i = 0; i < 6; i++)
        bounce(AF.a.id, "General");
    assert_int_equal(status_of(AF.a.id, &r), REPUTATION_PAUSED);
    rep_events(AF.a.id, &e);
    assert_int_equal(e.n, 2);
    assert_non_null(strstr(e.last, "\"status\":\"paused\""));
    /* good news does not lift a pause */
    sends(AF.a.id, 500);
    assert_int_equal(status_of(AF.a.id, &r), REPUTATION_PAUSED);

    /* a paused account is refused; another one sends */
    struct group_commit *gc = group_commit_new();
    char err[256];
    struct outbound *ob = outbound_new(&AF.cfg, gc, AF.st, err, sizeof err);
    assert_non_null(ob);
    struct store_account acct;
    assert_int_equal(store_account_get(AF.st, AF.a.id, &acct), STORE_OK);
    const char msg[] = "From: x@nowhere.example\r\nTo: y@x.example\r\nSubject: s\r\n\r\nbody\r\n";
    const char *rcpts[] = { "y@x.example" };
    struct outbound_request req = { .account = &acct, .rcpts = rcpts, .nrcpt = 1, .msg = msg,
                                    .len = sizeof msg - 1, .source = "api" };
    struct outbound_result res;
    outbound_accept(ob, AF.st, &req, &res);
    assert_int_equal(res.refusal, OUTBOUND_PAUSED);
    assert_non_null(strstr(res.why, "sending is paused for account"));
    assert_non_null(strstr(res.why, "bounce rate"));
    assert_non_null(strstr(res.why, "sesame account resume"));
    struct store_account other;
    assert_int_equal(store_account_get(AF.st, AF.b.id, &other), STORE_OK);
    req.account = &other;
    outbound_accept(ob, AF.st, &req, &res);
    assert_int_not_equal(res.refusal, OUTBOUND_PAUSED);   /* refused, if at all, for its identity */
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_HEALTHY);

    /* resume: healthy, a fresh window, and it may send again */
    assert_int_equal(reputation_resume(AF.st, AF.a.id, (int64_t)time(NULL)), STORE_OK);
    assert_int_equal(status_of(AF.a.id, &r), REPUTATION_HEALTHY);
    assert_int_equal(r.sends, 0);
    rep_events(AF.a.id, &e);
    assert_int_equal(e.n, 3);
    assert_non_null(strstr(e.last, "resumed by the operator"));
    req.account = &acct;
    outbound_accept(ob, AF.st, &req, &res);
    assert_int_not_equal(res.refusal, OUTBOUND_PAUSED);
    outbound_free(ob);
    group_commit_free(gc);
}

static void complaints_and_recovery(void **state)
{
    (void)state;
    struct reputation r;
    sends(AF.b.id, 100);
    ev(AF.b.id, "{\"eventType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":"
       "[{\"emailAddress\":\"a@x.example\"},{\"emailAddress\":\"c@x.example\"}]}}");
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_WARNING);   /* 2 / 100 = 2 % */
    assert_int_equal(r.complaints, 2);
    assert_non_null(strstr(r.reason, "complaint rate"));
    /* more good deliveries bring it back under the warning */
    sends(AF.b.id, 100);
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_HEALTHY);
    assert_non_null(strstr(r.reason, "back under"));
    /* transient bounces and suppressed recipients do not count */
    ev(AF.b.id, "{\"eventType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Transient\","
       "\"bouncedRecipients\":[{\"emailAddress\":\"z@x.example\"}]}}");
    ev(AF.b.id, "{\"eventType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
       "\"bounceSubType\":\"Suppressed\",\"bouncedRecipients\":[{\"emailAddress\":\"z@x.example\"}]}}");
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_HEALTHY);
    assert_int_equal(r.bounces, 0);
    /* 6 complaints in ~200 deliveries: over 2 % → warning, and 11 → 5 %: paused */
    for (int i = 0; i < 11; i++)
        ev(AF.b.id, "{\"eventType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":"
           "[{\"emailAddress\":\"a@x.example\"}]}}");
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_PAUSED);
    json_t *j = reputation_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "paused");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "window"), "sends")),
                     200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "thresholds"),
                                                        "min_sends")), 20);
    json_decref(j);
}

static void burst_and_jump(void **state)
{
    (void)state;
    struct reputation r;
    /* unknown recipients: a burst of 10 today (all of today's outcomes)
     * warns even below min_sends, where the rates are not judged */
    for (int i = 0; i < 9; i++)
        bounce(AF.a.id, "NoEmail");
    assert_int_equal(status_of(AF.a.id, &r), REPUTATION_HEALTHY);
    assert_false(r.judged);
    assert_int_equal(r.unknown, 9);
    bounce(AF.a.id, "NoEmail");
    assert_int_equal(status_of(AF.a.id, &r), REPUTATION_WARNING);
    assert_non_null(strstr(r.reason, "recipients that do not exist"));

    /* a volume jump: 7 quiet days of 10 sends, then 1000 today */
    struct reputation_limits l;
    reputation_limits_get(&l);
    l.min_sends = 500;
    reputation_configure(&l);
    int64_t today = (int64_t)time(NULL) / DAY;
    for (int d = 1; d <= 7; d++) {
        struct store_account_stats s = { .sends = 10, .delivered = 10 };
        assert_int_equal(store_account_stats_add(AF.st, AF.b.id, today - d, &s, NULL),
                         STORE_OK);
    }
    sends(AF.b.id, 99);
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_HEALTHY);   /* below min_sends today */
    sends(AF.b.id, 501);
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_WARNING);
    assert_non_null(strstr(r.reason, "times the daily average"));

    /* a short window: days read for the volume average are not counted */
    l.window_days = 1;
    reputation_configure(&l);
    assert_int_equal(status_of(AF.b.id, &r), REPUTATION_WARNING);
    assert_int_equal(r.sends, 600);          /* today only, not the 70 before */
    assert_int_equal(r.window_days, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(bounces_warn_then_pause, setup, af_teardown),
        cmocka_unit_test_setup_teardown(complaints_and_recovery, setup, af_teardown),
        cmocka_unit_test_setup_teardown(burst_and_jump, setup, af_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
