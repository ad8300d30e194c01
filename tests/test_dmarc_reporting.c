/* Tests of service/dmarc_reporting.c and the store's DMARC part: an
 * evaluation becomes a row only when its policy has a rua, with the
 * disposition and reason as applied; rows aggregate per policy domain and
 * UTC interval with their counts; a due report is queued (as the service's
 * own mail, to the rua) together with its report row, and never twice; an
 * interval still running waits unless forced, and a forced report leaves
 * the rest of its interval to the next one; a rua on another
 * organizational domain without authorization is skipped (recorded, with
 * why). Real SQLite store, real outbound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api_fixture.h"
#include "service/dmarc_reporting.h"
#include "service/group_commit.h"
#include "service/outbound.h"

static struct group_commit *gc;
static struct outbound *ob;

#define DAY 86400

static int setup(void **state)
{
    if (af_setup(state) != 0)
        return -1;
    snprintf(AF.cfg.hostname, sizeof AF.cfg.hostname, "mx.receiver.example");
    AF.cfg.dmarc_report_interval = DAY;
    char err[256];
    gc = group_commit_new();
    ob = gc ? outbound_new(&AF.cfg, gc, AF.st, err, sizeof err) : NULL;
    return ob ? 0 : -1;
}

static int teardown(void **state)
{
    outbound_free(ob);
    group_commit_free(gc);
    return af_teardown(state);
}

/* A verdict as auth_check_message would leave it. */
static void verdict(struct auth_verdict *v, const char *policy_domain, const char *rua,
                    enum dmarc_result result, enum dmarc_policy disposition)
{
    memset(v, 0, sizeof *v);
    struct dmarc_outcome *d = &v->dmarc;
    d->result = result;
    snprintf(d->from_domain, sizeof d->from_domain, "%s", policy_domain);
    snprintf(d->policy_domain, sizeof d->policy_domain, "%s", policy_domain);
    d->policy = DMARC_P_REJECT;
    d->disposition = disposition;
    d->record.p = DMARC_P_REJECT;
    d->record.pct = 100;
    if (rua) {
        snprintf(d->record.rua[0].uri, sizeof d->record.rua[0].uri, "mailto:%s", rua);
        snprintf(d->record.rua[0].domain, sizeof d->record.rua[0].domain, "%s",
                 strrchr(rua, '@') + 1);
        d->record.nrua = 1;
    }
    d->spf_aligned = result == DMARC_PASS;
    v->spf.result = result == DMARC_PASS ? SPF_PASS : SPF_FAIL;
    snprintf(v->spf.domain, sizeof v->spf.domain, "%s", policy_domain);
}

static void record(const char *domain, const char *rua, const char *ip, enum dmarc_result r,
                   enum dmarc_policy disp, bool report_only, int64_t at)
{
    struct auth_verdict v;
    verdict(&v, domain, rua, r, disp);
    struct store_dmarc_eval e;
    assert_int_equal(dmarc_eval_from_verdict(&v, ip, "bounce@Sender.Example", report_only, at,
                                             &e), 1);
    assert_int_equal(store_dmarc_eval_insert(AF.st, &e), STORE_OK);
    dmarc_eval_release(&e);
}

struct rows { struct store_dmarc_eval v[8]; size_t n; };

static int rows_cb(const struct store_dmarc_eval *e, void *arg)
{
    struct rows *r = arg;
    if (r->n < 8)
        r->v[r->n++] = *e;   /* the string pointers are not used after the call */
    return 0;
}

static void eval_rows(void **state)
{
    (void)state;
    struct auth_verdict v;
    struct store_dmarc_eval e;
    /* no rua: nothing to report */
    verdict(&v, "norua.example", NULL, DMARC_FAIL, DMARC_P_REJECT);
    assert_int_equal(dmarc_eval_from_verdict(&v, "192.0.2.1", "a@norua.example", false, 1, &e), 0);
    /* report-only account: none applied, local_policy */
    verdict(&v, "shop.example", "dmarc-reports@shop.example", DMARC_FAIL, DMARC_P_REJECT);
    assert_int_equal(dmarc_eval_from_verdict(&v, "192.0.2.1", "a@Shop.Example", true, 1, &e), 1);
    assert_int_equal(e.disposition, DMARC_P_NONE);
    assert_string_equal(e.reason_type, "local_policy");
    assert_string_equal(e.envelope_from, "shop.example");
    assert_string_equal(e.spf_scope, "mfrom");
    assert_non_null(strstr(e.policy, "\"p\":\"reject\""));
    assert_string_equal(e.rua, "mailto:dmarc-reports@shop.example!0");
    dmarc_eval_release(&e);
    /* applied: reject; null sender: helo scope */
    assert_int_equal(dmarc_eval_from_verdict(&v, "192.0.2.1", "", false, 1, &e), 1);
    assert_int_equal(e.disposition, DMARC_P_REJECT);
    assert_string_equal(e.reason_type, "");
    assert_string_equal(e.spf_scope, "helo");
    dmarc_eval_release(&e);
}

static void aggregate_and_send_once(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    int64_t today = now - now % DAY, yesterday = today - DAY;
    const char *rua = "dmarc-reports@shop.example";
    record("shop.example", rua, "192.0.2.1", DMARC_PASS, DMARC_P_NONE, false, yesterday + 10);
    record("shop.example", rua, "192.0.2.1", DMARC_PASS, DMARC_P_NONE, false, yesterday + 20);
    record("shop.example", rua, "192.0.2.1", DMARC_PASS, DMARC_P_NONE, false, yesterday + 30);
    record("shop.example", rua, "203.0.113.9", DMARC_FAIL, DMARC_P_REJECT, false, yesterday + 40);
    record("shop.example", rua, "203.0.113.9", DMARC_FAIL, DMARC_P_REJECT, false, today + 5);

    struct rows r = { .n = 0 };
    assert_int_equal(store_dmarc_eval_rows(AF.st, "shop.example", yesterday, today, rows_cb, &r),
                     STORE_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.v[0].source_ip, "192.0.2.1");   /* most frequent first */
    assert_int_equal(r.v[0].count, 3);
    assert_int_equal(r.v[1].count, 1);
    assert_int_equal(r.v[1].disposition, DMARC_P_REJECT);

    /* yesterday is due; today is not over */
    assert_int_equal(dmarc_reports_send_due(AF.st, ob, NULL, &AF.cfg, now, false), 1);
    assert_int_equal(dmarc_reports_send_due(AF.st, ob, NULL, &AF.cfg, now, false), 0);
    struct store_account sys;
    assert_int_equal(outbound_system_account(AF.st, &sys), STORE_OK);
    int64_t queued = 0;
    assert_int_equal(store_outbound_count_since(AF.st, sys.id, 0, &queued), STORE_OK);
    assert_int_equal(queued, 1);

    /* forced: today's row so far, and what comes later today goes in the next one */
    assert_int_equal(dmarc_reports_send_due(AF.st, ob, NULL, &AF.cfg, now, true), 1);
    record("shop.example", rua, "203.0.113.9", DMARC_FAIL, DMARC_P_REJECT, false, now + 1);
    assert_int_equal(dmarc_reports_send_due(AF.st, ob, NULL, &AF.cfg, now + 2, true), 1);
    assert_int_equal(dmarc_reports_send_due(AF.st, ob, NULL, &AF.cfg, now + 2, true), 0);
    assert_int_equal(store_outbound_count_since(AF.st, sys.id, 0, &queued), STORE_OK);
    assert_int_equal(queued, 3);
}

struct outs { struct store_dmarc_report_out v[8]; size_t n; };

static int outs_cb(const struct store_dmarc_report_out *o, void *arg)
{
    struct outs *l = arg;
    if (l->n < 8)
        l->v[l->n++] = *o;
    return 0;
}

static void external_without_authorization_skipped(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    int64_t yesterday = now - now % DAY - DAY;
    record("ext.example", "reports@collector.example", "192.0.2.7", DMARC_PASS, DMARC_P_NONE,
           false, yesterday + 1);
    /* no resolver: authorization cannot be looked up, the report waits */
    assert_int_equal(dmarc_reports_send_due(AF.st, ob, NULL, &AF.cfg, now, false), 0);
    struct outs l = { .n = 0 };
    assert_int_equal(store_dmarc_report_out_list(AF.st, "ext.example", outs_cb, &l), STORE_OK);
    assert_int_equal(l.n, 0);
    /* a store-level skip: the record keeps why and covers the interval */
    struct store_dmarc_report_out o = { .begin = yesterday, .end = yesterday + DAY,
                                        .records = 1, .messages = 1 };
    snprintf(o.policy_domain, sizeof o.policy_domain, "ext.example");
    snprintf(o.status, sizeof o.status, "skipped");
    snprintf(o.detail, sizeof o.detail, "not authorized");
    assert_int_equal(store_dmarc_report_out_record(AF.st, &o), STORE_OK);
    assert_int_equal(store_dmarc_report_out_record(AF.st, &o), STORE_EXISTS);
    assert_int_equal(dmarc_reports_send_due(AF.st, ob, NULL, &AF.cfg, now, false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eval_rows),
        cmocka_unit_test_setup_teardown(aggregate_and_send_once, setup, teardown),
        cmocka_unit_test_setup_teardown(external_without_authorization_skipped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
