/* DMARC aggregate reporting (dmarc_reporting.h, docs/dmarc_reports.md):
 * recording the MX's evaluations, sending the due reports (aggregation in
 * the store, XML/gzip/mail in auth/dmarc_report.c, the queue in
 * outbound.c), the reporter thread, and keeping the reports other
 * receivers send to an account (parsing in auth/dmarc_feedback.c). */
#include "service/dmarc_reporting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dmarc_feedback.h"
#include "auth/dmarc_report.h"
#include "service/config.h"
#include "service/outbound.h"
#include "service/ticker.h"
#include "util/buf.h"
#include "util/log.h"

/* Reports generated per pass, and rows per report. */
#define REPORTS_PER_PASS 64
#define ROWS_MAX 100000
/* Reports attached to one received mail. */
#define INGEST_MAX 4

/* ---- recording an evaluation ---- */

static const char *align_name(enum dmarc_align a)
{
    return a == DMARC_ALIGN_STRICT ? "s" : "r";
}

int dmarc_eval_from_verdict(const struct auth_verdict *v, const char *client_ip,
                            const char *mail_from, bool report_only, int64_t now,
                            struct store_dmarc_eval *e)
{
    const struct dmarc_outcome *d = &v->dmarc;
    memset(e, 0, sizeof *e);
    if (!d->policy_domain[0] || d->record.nrua == 0)
        return 0;
    const struct dmarc_record *rec = &d->record;
    e->received_at = now;
    snprintf(e->policy_domain, sizeof e->policy_domain, "%s", d->policy_domain);
    json_t *pol = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "adkim", align_name(rec->adkim),
                            "aspf", align_name(rec->aspf), "p",
                            dmarc_policy_name(rec->p) ? dmarc_policy_name(rec->p) : "none", "sp",
                            dmarc_policy_name(rec->sp ? rec->sp : rec->p)
                                ? dmarc_policy_name(rec->sp ? rec->sp : rec->p) : "none",
                            "pct", (int)rec->pct, "fo", rec->fo[0] ? rec->fo : "0");
    struct buf rua;
    buf_init(&rua, 8192);
    int brc = 0;
    for (size_t i = 0; i < rec->nrua; i++)
        brc |= buf_printf(&rua, "%s%s!%llu", i ? "," : "", rec->rua[i].uri,
                          (unsigned long long)rec->rua[i].max_size);
    json_t *dk = json_array();
    for (size_t i = 0; dk && i < v->dkim.count; i++) {
        const struct dkim_signature_result *r = &v->dkim.sigs[i];
        json_array_append_new(dk, json_pack("[s, s, s]", r->domain, r->selector,
                                            dkim_result_name(r->result)));
    }
    char *policy = pol ? json_dumps(pol, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *dkim = dk ? json_dumps(dk, JSON_COMPACT) : NULL;
    json_decref(pol);
    json_decref(dk);
    char *rua_s = brc == 0 ? strdup(buf_cstr(&rua)) : NULL;
    buf_free(&rua);
    if (!policy || !dkim || !rua_s) {
        free(policy);
        free(dkim);
        free(rua_s);
        return -1;
    }
    e->policy = policy;
    e->dkim = dkim;
    e->rua = rua_s;
    snprintf(e->source_ip, sizeof e->source_ip, "%s", client_ip);
    snprintf(e->header_from, sizeof e->header_from, "%s", d->from_domain);
    const char *at = mail_from ? strrchr(mail_from, '@') : NULL;
    snprintf(e->envelope_from, sizeof e->envelope_from, "%s", at ? at + 1 : "");
    for (char *p = e->envelope_from; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    e->dkim_pass = d->dkim_aligned;
    e->spf_pass = d->spf_aligned;
    e->disposition = DMARC_P_NONE;
    if (d->result == DMARC_FAIL) {
        if (report_only && (d->policy == DMARC_P_QUARANTINE || d->policy == DMARC_P_REJECT)) {
            snprintf(e->reason_type, sizeof e->reason_type, "local_policy");
            snprintf(e->reason_comment, sizeof e->reason_comment,
                     "the receiving account applies DMARC in report-only mode");
        } else {
            e->disposition = d->disposition == DMARC_P_UNSET ? DMARC_P_NONE : d->disposition;
            if (d->sampled_out)
                snprintf(e->reason_type, sizeof e->reason_type, "sampled_out");
        }
    }
    snprintf(e->spf_domain, sizeof e->spf_domain, "%s", v->spf.domain);
    snprintf(e->spf_scope, sizeof e->spf_scope, "%s", mail_from && mail_from[0] ? "mfrom" : "helo");
    snprintf(e->spf_result, sizeof e->spf_result, "%s", spf_result_name(v->spf.result));
    return 1;
}

void dmarc_eval_release(struct store_dmarc_eval *e)
{
    free((char *)e->policy);
    free((char *)e->dkim);
    free((char *)e->rua);
    e->policy = e->dkim = e->rua = NULL;
}

/* ---- sending the due reports ---- */

struct due_item { char domain[DNS_MAX_NAME_LEN + 1]; int64_t bucket, earliest; };
struct due_list { struct due_item *v; size_t n; };

static int due_cb(const char *domain, int64_t bucket, int64_t earliest, void *arg)
{
    struct due_list *l = arg;
    if (l->n >= REPORTS_PER_PASS)
        return 1;
    snprintf(l->v[l->n].domain, sizeof l->v[0].domain, "%s", domain);
    l->v[l->n].bucket = bucket;
    l->v[l->n].earliest = earliest;
    l->n++;
    return 0;
}

/* The rows of one report, with their strings kept. */
struct row_set {
    struct dmarc_report_row *rows;
    struct dmarc_report_dkim *dkim;     /* DMARC_REPORT_MAX_DKIM per row */
    char **strings;                      /* everything strdup'd, to free */
    size_t n, cap, nstrings, capstrings;
    uint64_t messages;
    bool failed;
};

static const char *keep(struct row_set *s, const char *str)
{
    if (s->nstrings == s->capstrings) {
        size_t cap = s->capstrings ? 2 * s->capstrings : 256;
        char **p = realloc(s->strings, cap * sizeof *p);
        if (!p) {
            s->failed = true;
            return "";
        }
        s->strings = p;
        s->capstrings = cap;
    }
    char *d = strdup(str ? str : "");
    if (!d) {
        s->failed = true;
        return "";
    }
    s->strings[s->nstrings++] = d;
    return d;
}

static int row_cb(const struct store_dmarc_eval *e, void *arg)
{
    struct row_set *s = arg;
    if (s->n >= ROWS_MAX)
        return 1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct dmarc_report_row *r = realloc(s->rows, cap * sizeof *r);
        if (r)
            s->rows = r;
        struct dmarc_report_dkim *k = realloc(s->dkim, cap * DMARC_REPORT_MAX_DKIM * sizeof *k);
        if (k)
            s->dkim = k;
        if (!r || !k) {
            s->failed = true;
            return 1;
        }
        s->cap = cap;
    }
    struct dmarc_report_row *r = &s->rows[s->n];
    memset(r, 0, sizeof *r);
    r->source_ip = keep(s, e->source_ip);
    r->count = e->count;
    r->disposition = (enum dmarc_policy)e->disposition;
    r->dkim_pass = e->dkim_pass;
    r->spf_pass = e->spf_pass;
    r->reason_type = e->reason_type[0] ? keep(s, e->reason_type) : NULL;
    r->reason_comment = e->reason_comment[0] ? keep(s, e->reason_comment) : NULL;
    r->header_from = keep(s, e->header_from);
    r->envelope_from = keep(s, e->envelope_from);
    r->spf_domain = keep(s, e->spf_domain);
    r->spf_scope = keep(s, e->spf_scope);
    r->spf_result = keep(s, e->spf_result);
    struct dmarc_report_dkim *dk = &s->dkim[s->n * DMARC_REPORT_MAX_DKIM];
    json_t *arr = json_loads(e->dkim, 0, NULL);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        if (r->ndkim >= DMARC_REPORT_MAX_DKIM)
            break;
        const char *dom = json_string_value(json_array_get(x, 0));
        const char *sel = json_string_value(json_array_get(x, 1));
        const char *res = json_string_value(json_array_get(x, 2));
        if (!dom || !dom[0] || !res)
            continue;   /* an unreadable signature names no domain to report */
        dk[r->ndkim].domain = keep(s, dom);
        dk[r->ndkim].selector = sel && sel[0] ? keep(s, sel) : NULL;
        dk[r->ndkim].result = keep(s, res);
        r->ndkim++;
    }
    json_decref(arr);
    s->messages += e->count;
    s->n++;
    return 0;
}

static void row_set_free(struct row_set *s)
{
    for (size_t i = 0; i < s->nstrings; i++)
        free(s->strings[i]);
    free(s->strings);
    free(s->rows);
    free(s->dkim);
}

/* After collecting: point each row at its DKIM entries (the array may
 * have moved while growing). */
static void row_set_link(struct row_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->rows[i].dkim = s->rows[i].ndkim ? &s->dkim[i * DMARC_REPORT_MAX_DKIM] : NULL;
}

static enum dmarc_policy policy_of(const char *name)
{
    if (name && strcmp(name, "reject") == 0)
        return DMARC_P_REJECT;
    if (name && strcmp(name, "quarantine") == 0)
        return DMARC_P_QUARANTINE;
    return DMARC_P_NONE;
}

/* The stored "mailto:a@b!SIZE,..." back into a record's rua list. */
static void rua_parse(const char *rua, struct dmarc_record *rec)
{
    memset(rec, 0, sizeof *rec);
    const char *p = rua;
    while (*p && rec->nrua < DMARC_MAX_URIS) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char one[sizeof rec->rua[0].uri + 32];
        snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one - 1 ? n : sizeof one - 1), p);
        char *bang = strrchr(one, '!');
        unsigned long long size = 0;
        if (bang) {
            size = strtoull(bang + 1, NULL, 10);
            *bang = '\0';
        }
        struct dmarc_uri *u = &rec->rua[rec->nrua++];
        snprintf(u->uri, sizeof u->uri, "%.*s", (int)(sizeof u->uri - 1), one);
        u->max_size = size;
        const char *at = strrchr(one, '@');
        snprintf(u->domain, sizeof u->domain, "%s", at ? at + 1 : "");
        p = end ? end + 1 : p + n;
    }
}

struct report_write { struct store_dmarc_report_out *out; };

static int record_within(struct store *st, int64_t message_id, void *arg)
{
    struct report_write *w = arg;
    w->out->message_id = message_id;
    return store_dmarc_report_out_record(st, w->out);
}

/* One report: 1 recorded (queued or skipped), 0 postponed (DNS), -1 error. */
static int send_one(struct store *st, struct outbound *ob, struct dns_resolver *dns,
                    const struct sesame_config *cfg, const char *domain, int64_t begin,
                    int64_t end)
{
    char *policy_json = NULL, *rua = NULL;
    int rc = store_dmarc_eval_policy(st, domain, begin, end, &policy_json, &rua);
    if (rc == STORE_NOTFOUND)
        return 0;
    if (rc != STORE_OK)
        return -1;
    struct row_set rs = { 0 };
    int ret = -1;
    struct buf xml, gz, mail;
    buf_init(&xml, 256 * 1024 * 1024);
    buf_init(&gz, 64 * 1024 * 1024);
    buf_init(&mail, 96 * 1024 * 1024);
    json_t *pol = json_loads(policy_json, 0, NULL);
    if (store_dmarc_eval_rows(st, domain, begin, end, row_cb, &rs) != STORE_OK || rs.failed ||
        !pol)
        goto out;
    row_set_link(&rs);

    struct store_dmarc_report_out out;
    memset(&out, 0, sizeof out);
    snprintf(out.policy_domain, sizeof out.policy_domain, "%s", domain);
    out.begin = begin;
    out.end = end;
    out.records = (int64_t)rs.n;
    out.messages = (int64_t)rs.messages;
    snprintf(out.report_id, sizeof out.report_id, "%lld.%lld.%.60s", (long long)begin,
             (long long)end, domain);
    char email[300];
    snprintf(email, sizeof email, "dmarc-noreply@%s", cfg->hostname);
    struct dmarc_report_meta meta = {
        .org_name = cfg->hostname, .email = email, .extra_contact_info = NULL,
        .report_id = out.report_id, .begin = begin, .end = end,
    };
    const char *pstr = json_string_value(json_object_get(pol, "adkim"));
    const char *fo = json_string_value(json_object_get(pol, "fo"));
    struct dmarc_report_policy p = {
        .domain = domain,
        .adkim = pstr && pstr[0] == 's' ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED,
        .p = policy_of(json_string_value(json_object_get(pol, "p"))),
        .sp = policy_of(json_string_value(json_object_get(pol, "sp"))),
        .pct = (unsigned)json_integer_value(json_object_get(pol, "pct")),
        .fo = fo,
    };
    pstr = json_string_value(json_object_get(pol, "aspf"));
    p.aspf = pstr && pstr[0] == 's' ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
    if (dmarc_report_xml(&meta, &p, rs.rows, rs.n, &xml) != 0 ||
        dmarc_report_gzip(xml.data, xml.len, &gz) != 0)
        goto out;
    /* the size of the mail decides which destinations take it (!size) */
    if (dmarc_report_message(&meta, domain, outbound_system_from(ob), "x@x.invalid", gz.data,
                             gz.len, &mail) != 0)
        goto out;
    struct dmarc_record rec;
    rua_parse(rua, &rec);
    char dest[DMARC_MAX_URIS][DNS_MAX_NAME_LEN + 80];
    char reasons[DMARC_MAX_URIS][160];
    size_t nreasons = 0;
    size_t ndest = dmarc_report_destinations(&rec, mail.len, dest, reasons, &nreasons);
    const char *rcpts[DMARC_MAX_URIS];
    size_t nrcpt = 0;
    struct buf detail;   /* why destinations were left out, for the record */
    buf_init(&detail, sizeof out.detail - 1);
    for (size_t i = 0; i < nreasons; i++)
        if (buf_printf(&detail, "%s%s", detail.len ? "; " : "", reasons[i]) != 0)
            break;   /* full: the rest is left out of the note */
    for (size_t i = 0; i < ndest; i++) {
        const char *at = strrchr(dest[i], '@');
        char name[2 * DNS_MAX_NAME_LEN + 32];
        if (at && dmarc_report_needs_authorization(domain, at + 1, name, sizeof name)) {
            int a = dns ? dmarc_report_authorized(dns, name) : -1;
            if (a < 0) {
                log_msg(LOG_INFO, "dmarc", "event=report_postponed domain=%s reason=\"no DNS "
                        "answer for %s\"", domain, name);
                buf_free(&detail);
                ret = 0;
                goto out;
            }
            if (a == 0) {
                if (buf_printf(&detail, "%s%s: not authorized (no v=DMARC1 at %s)",
                               detail.len ? "; " : "", dest[i], name) != 0)
                    log_msg(LOG_DEBUG, "dmarc", "event=detail_truncated domain=%s", domain);
                continue;
            }
        }
        rcpts[nrcpt++] = dest[i];
    }
    snprintf(out.detail, sizeof out.detail, "%.*s", (int)(sizeof out.detail - 1),
             buf_cstr(&detail));
    buf_free(&detail);
    if (nrcpt == 0) {
        snprintf(out.status, sizeof out.status, "skipped");
        rc = store_dmarc_report_out_record(st, &out);
        ret = rc == STORE_OK || rc == STORE_EXISTS ? 1 : -1;
        log_msg(LOG_INFO, "dmarc", "event=report_skipped domain=%s begin=%lld end=%lld "
                "records=%zu reason=\"%s\"", domain, (long long)begin, (long long)end, rs.n,
                out.detail);
        goto out;
    }
    struct buf to;
    buf_init(&to, 4096);
    int trc = 0;
    for (size_t i = 0; i < nrcpt; i++)
        trc |= buf_printf(&to, "%s%s", i ? ", " : "", rcpts[i]);
    snprintf(out.rcpts, sizeof out.rcpts, "%s", buf_cstr(&to));
    buf_reset(&mail);
    int mrc = trc != 0 ? -1 : dmarc_report_message(&meta, domain, outbound_system_from(ob), buf_cstr(&to),
                                   gz.data, gz.len, &mail);
    buf_free(&to);
    if (mrc != 0)
        goto out;
    snprintf(out.status, sizeof out.status, "queued");
    struct store_account sys;
    if (outbound_system_account(st, &sys) != STORE_OK)
        goto out;
    struct report_write w = { &out };
    struct outbound_request req = {
        .account = &sys, .mail_from = NULL, .rcpts = rcpts, .nrcpt = nrcpt, .msg = mail.data,
        .len = mail.len, .source = "system", .system = true, .within = record_within,
        .within_arg = &w,
    };
    struct outbound_result res;
    outbound_accept(ob, st, &req, &res);
    if (res.refusal != OUTBOUND_OK) {
        /* STORE_EXISTS inside: reported already (another process) */
        log_msg(LOG_WARN, "dmarc", "event=report_not_queued domain=%s begin=%lld why=\"%s\"",
                domain, (long long)begin, res.why);
        goto out;
    }
    log_msg(LOG_INFO, "dmarc", "event=report_queued domain=%s begin=%lld end=%lld records=%zu "
            "messages=%llu size=%zu to=\"%s\" id=%lld", domain, (long long)begin,
            (long long)end, rs.n, (unsigned long long)rs.messages, mail.len, out.rcpts,
            (long long)res.message_id);
    ret = 1;
out:
    json_decref(pol);
    free(policy_json);
    free(rua);
    row_set_free(&rs);
    buf_free(&xml);
    buf_free(&gz);
    buf_free(&mail);
    return ret;
}

/* The latest end of the domain's reports that reach into the interval. */
struct covered { int64_t bucket, end; };

static int covered_cb(const struct store_dmarc_report_out *r, void *arg)
{
    struct covered *c = arg;
    if (r->end > c->bucket && r->end > c->end)
        c->end = r->end;
    return 0;
}

int dmarc_reports_send_due(struct store *st, struct outbound *ob, struct dns_resolver *dns,
                           const struct sesame_config *cfg, int64_t now, bool force)
{
    int64_t interval = cfg->dmarc_report_interval ? cfg->dmarc_report_interval : 86400;
    int64_t before = force ? now + 1 : now - now % interval;
    struct due_list due = { calloc(REPORTS_PER_PASS, sizeof *due.v), 0 };
    if (!due.v)
        return -1;
    if (store_dmarc_eval_due(st, before, interval, REPORTS_PER_PASS, due_cb, &due) != STORE_OK) {
        free(due.v);
        return -1;
    }
    int done = 0;
    for (size_t i = 0; i < due.n; i++) {
        /* a report covers its whole interval, unless a forced report took the
         * start of it: then it starts where that one ended */
        struct covered cv = { due.v[i].bucket, 0 };
        if (store_dmarc_report_out_list(st, due.v[i].domain, covered_cb, &cv) != STORE_OK) {
            free(due.v);
            return -1;
        }
        int64_t begin = cv.end > due.v[i].bucket ? cv.end : due.v[i].bucket;
        if (begin > due.v[i].earliest)
            begin = due.v[i].earliest;   /* never leave a pending evaluation out */
        int64_t end = due.v[i].bucket + interval;
        if (force && end > now + 1)
            end = now + 1;
        int r = send_one(st, ob, dns, cfg, due.v[i].domain, begin, end);
        if (r < 0) {
            free(due.v);
            return -1;
        }
        done += r;
    }
    free(due.v);
    return done;
}

/* ---- the reporter thread ---- */

struct dmarc_reporter {
    struct ticker *ticker;
    struct store *st;
    struct outbound *ob;
    struct dns_resolver *dns;
    struct sesame_config cfg;    /* its own copy: SIGHUP rewrites the service's */
};

static void report_pass(struct ticker *t, void *arg)
{
    (void)t;
    struct dmarc_reporter *r = arg;
    if (dmarc_reports_send_due(r->st, r->ob, r->dns, &r->cfg, (int64_t)time(NULL), false) < 0)
        log_msg(LOG_WARN, "dmarc", "event=report_pass_failed");
}

struct dmarc_reporter *dmarc_reporter_start(const struct sesame_config *cfg, struct outbound *ob,
                                            struct dns_resolver *dns, char *err, size_t errlen)
{
    struct dmarc_reporter *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    r->ob = ob;
    r->dns = dns;
    r->st = store_open(cfg->store, cfg->data_dir, err, errlen);
    /* a pass a minute (a second for the short intervals of tests) */
    if (r->st)
        r->ticker = ticker_start(report_pass, r, cfg->dmarc_report_interval < 600 ? 1000 : 60000,
                                 err, errlen);
    if (!r->ticker) {
        store_close(r->st);
        free(r);
        return NULL;
    }
    return r;
}

void dmarc_reporter_stop(struct dmarc_reporter *r)
{
    if (!r)
        return;
    ticker_stop(r->ticker);
    store_close(r->st);
    free(r);
}

/* ---- reports received for an account ---- */

int dmarc_ingest_message(struct store *st, int64_t account_id, const char *msg, size_t len,
                         char *err, size_t errlen)
{
    struct dmarc_feedback *fb = calloc(INGEST_MAX, sizeof *fb);
    if (!fb) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = dmarc_feedback_from_message(msg, len, fb, INGEST_MAX, err, errlen);
    int kept = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *j = dmarc_feedback_json(&fb[i]);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        struct store_dmarc_report_in r = { .account_id = account_id, .begin = fb[i].begin,
                                           .end = fb[i].end, .json = text };
        snprintf(r.domain, sizeof r.domain, "%s", fb[i].domain);
        for (char *p = r.domain; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        snprintf(r.org_name, sizeof r.org_name, "%s", fb[i].org_name);
        snprintf(r.report_id, sizeof r.report_id, "%s", fb[i].report_id);
        int rc = text ? store_dmarc_report_in_insert(st, &r) : STORE_ERROR;
        free(text);
        if (rc == STORE_OK) {
            kept++;
            log_msg(LOG_INFO, "dmarc", "event=report_received account=%lld domain=%s "
                    "org=\"%s\" records=%zu", (long long)account_id, r.domain, r.org_name,
                    fb[i].nrows);
        } else if (rc == STORE_EXISTS) {
            log_msg(LOG_INFO, "dmarc", "event=report_duplicate account=%lld domain=%s",
                    (long long)account_id, r.domain);
        } else {
            kept = -1;
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        dmarc_feedback_free(&fb[i]);
    free(fb);
    return kept;
}
