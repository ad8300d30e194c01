/* /v1/dmarc/reports: the DMARC aggregate reports other receivers sent for
 * the caller's domains (kept by service/dmarc_reporting.c as parsed JSON),
 * listed with a summary per domain: which source IPs send as the domain,
 * how much, how much passed DMARC (aligned SPF or DKIM), and which sources
 * fail: the unauthorized senders, or the legitimate ones still to fix
 * before p=reject. GET /v1/dmarc/reports/{id} is one report whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/api_internal.h"
#include "service/identities.h"

#define REPORTS_MAX 1000
#define DAYS_DEFAULT 30
#define SOURCES_SHOWN 50

/* One domain's totals while reading the reports. */
struct dom_sum {
    char domain[DNS_MAX_NAME_LEN + 1];
    int64_t reports, messages, passed, failed;
    json_t *sources;             /* {"ip": {"messages","passed","failed"}} */
};

struct list_ctx {
    json_t *reports;
    struct dom_sum *sums;
    size_t nsums;
    bool failed;
};

static struct dom_sum *sum_of(struct list_ctx *x, const char *domain)
{
    for (size_t i = 0; i < x->nsums; i++)
        if (strcmp(x->sums[i].domain, domain) == 0)
            return &x->sums[i];
    struct dom_sum *p = realloc(x->sums, (x->nsums + 1) * sizeof *p);
    if (!p)
        return NULL;
    x->sums = p;
    struct dom_sum *s = &p[x->nsums++];
    memset(s, 0, sizeof *s);
    snprintf(s->domain, sizeof s->domain, "%s", domain);
    s->sources = json_object();
    return s->sources ? s : NULL;
}

static void add_count(json_t *o, const char *key, int64_t n)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    json_object_set_new(o, key, json_integer(v + n));
}

static int report_cb(const struct store_dmarc_report_in *r, void *arg)
{
    struct list_ctx *x = arg;
    json_t *j = json_loads(r->json, 0, NULL);
    struct dom_sum *s = sum_of(x, r->domain);
    if (!j || !s) {
        json_decref(j);
        x->failed = true;
        return 1;
    }
    int64_t messages = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(j, "records"), i, rec) {
        const char *ip = json_string_value(json_object_get(rec, "source_ip"));
        json_int_t count = json_integer_value(json_object_get(rec, "count"));
        const char *dk = json_string_value(json_object_get(rec, "dkim"));
        const char *sp = json_string_value(json_object_get(rec, "spf"));
        if (!ip || count <= 0)
            continue;
        bool pass = (dk && strcmp(dk, "pass") == 0) || (sp && strcmp(sp, "pass") == 0);
        json_t *src = json_object_get(s->sources, ip);
        if (!src) {
            src = json_object();
            json_object_set_new(s->sources, ip, src);
        }
        add_count(src, "messages", count);
        add_count(src, pass ? "passed" : "failed", count);
        messages += count;
        s->messages += count;
        if (pass)
            s->passed += count;
        else
            s->failed += count;
    }
    s->reports++;
    json_t *item = json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:I}", "id",
                             (json_int_t)r->id, "domain", r->domain, "org_name", r->org_name,
                             "report_id", r->report_id, "begin", api_time(r->begin), "end",
                             api_time(r->end), "received_at", api_time(r->received_at),
                             "records", (json_int_t)json_array_size(json_object_get(j, "records")),
                             "messages", (json_int_t)messages);
    json_decref(j);
    if (!item || json_array_append_new(x->reports, item) != 0) {
        x->failed = true;
        return 1;
    }
    return 0;
}

static int by_messages(const void *a, const void *b)
{
    json_int_t ma = json_integer_value(json_object_get(*(json_t *const *)a, "messages"));
    json_int_t mb = json_integer_value(json_object_get(*(json_t *const *)b, "messages"));
    return ma < mb ? 1 : ma > mb ? -1 : 0;
}

static json_t *summary_json(const struct dom_sum *s)
{
    size_t n = json_object_size(s->sources), k = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return NULL;
    const char *ip;
    json_t *src;
    json_object_foreach(s->sources, ip, src) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:I}", "source_ip", ip, "messages",
                              json_integer_value(json_object_get(src, "messages")), "passed",
                              json_integer_value(json_object_get(src, "passed")), "failed",
                              json_integer_value(json_object_get(src, "failed")));
        if (o)
            v[k++] = o;
    }
    qsort(v, k, sizeof *v, by_messages);
    json_t *sources = json_array(), *failing = json_array();
    for (size_t i = 0; i < k; i++) {
        if (json_integer_value(json_object_get(v[i], "failed")) > 0)
            json_array_append_new(failing, json_string(json_string_value(
                                               json_object_get(v[i], "source_ip"))));
        if (i < SOURCES_SHOWN)
            json_array_append(sources, v[i]);
        json_decref(v[i]);
    }
    free(v);
    char advice[400];
    if (s->messages == 0)
        snprintf(advice, sizeof advice, "no messages reported yet");
    else if (s->failed == 0)
        snprintf(advice, sizeof advice, "every reported message passed DMARC: it looks safe to "
                 "move %s to p=quarantine, then p=reject", s->domain);
    else
        snprintf(advice, sizeof advice, "%lld of %lld messages from %zu source(s) failed DMARC: "
                 "unauthorized senders, or legitimate ones whose SPF or DKIM does not align yet "
                 "(fix those before p=reject)", (long long)s->failed, (long long)s->messages,
                 json_array_size(failing));
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:s}", "domain", s->domain,
                     "reports", (json_int_t)s->reports, "messages", (json_int_t)s->messages,
                     "passed", (json_int_t)s->passed, "failed", (json_int_t)s->failed,
                     "pass_rate", s->messages ? (double)s->passed / (double)s->messages : 0.0,
                     "sources", sources, "failing_sources", failing, "advice", advice);
}

/* GET /v1/dmarc/reports[?domain=D][&days=N] */
void api_dmarc_reports_list(struct api_call *c)
{
    char domain[DNS_MAX_NAME_LEN + 1] = "", days_s[16] = "";
    char raw[DNS_MAX_NAME_LEN + 2], err[256];
    int q = api_query_get(c->req->query, "domain", raw, sizeof raw);
    int qd = api_query_get(c->req->query, "days", days_s, sizeof days_s);
    if (q < 0 || qd < 0) {
        api_error(c, 400, "invalid_request", "malformed query string");
        return;
    }
    if (q == 1 && identity_domain_normalize(raw, domain, sizeof domain, err, sizeof err) != 0) {
        api_error(c, 400, "invalid_domain", "%s", err);
        return;
    }
    int64_t days = DAYS_DEFAULT;
    if (qd == 1 && (api_parse_id(days_s, &days) != 0 || days > 3660)) {
        api_error(c, 400, "invalid_request", "days is a whole number of days, 1 to 3660");
        return;
    }
    struct list_ctx x = { json_array(), NULL, 0, false };
    x.failed = !x.reports;
    int rc = x.failed ? STORE_ERROR
                      : store_dmarc_report_in_list(c->ctx->st, c->account.id, domain,
                                                   (int64_t)time(NULL) - days * 86400,
                                                   REPORTS_MAX, report_cb, &x);
    json_t *summary = json_array();
    for (size_t i = 0; summary && i < x.nsums && !x.failed; i++) {
        json_t *sj = summary_json(&x.sums[i]);
        if (!sj || json_array_append_new(summary, sj) != 0)
            x.failed = true;
    }
    for (size_t i = 0; i < x.nsums; i++)
        json_decref(x.sums[i].sources);
    free(x.sums);
    if (rc != STORE_OK || x.failed || !summary) {
        json_decref(x.reports);
        json_decref(summary);
        if (rc != STORE_OK)
            api_store_error(c);
        else
            api_json(c, 500, NULL);
        return;
    }
    api_json(c, 200, json_pack("{s:o, s:o}", "summary", summary, "reports", x.reports));
}

struct one_ctx { int64_t id; json_t *out; };

static int one_cb(const struct store_dmarc_report_in *r, void *arg)
{
    struct one_ctx *o = arg;
    if (r->id != o->id)
        return 0;
    o->out = json_loads(r->json, 0, NULL);
    return 1;
}

/* GET /v1/dmarc/reports/{id}: the report as parsed. */
void api_dmarc_reports_get(struct api_call *c)
{
    struct one_ctx o = { 0, NULL };
    if (api_parse_id(c->params[0], &o.id) != 0) {
        api_error(c, 404, "not_found", "no such report");
        return;
    }
    if (store_dmarc_report_in_list(c->ctx->st, c->account.id, "", 0, 1000000, one_cb, &o) !=
        STORE_OK) {
        json_decref(o.out);
        api_store_error(c);
        return;
    }
    if (!o.out) {
        api_error(c, 404, "not_found", "no such report");
        return;
    }
    api_json(c, 200, o.out);
}
