/* The DMARC part of the SQLite store (store.h, "DMARC aggregate reports"):
 * the evaluations the MX records for policies that ask for reports, their
 * aggregation per policy domain and interval (GROUP BY: one row per
 * distinct result with its count), the reports sent (recorded together
 * with marking the evaluations they cover, so an interval is reported at
 * most once), and the reports received for the accounts' domains.
 * store_sqlite.c has the schema. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_internal.h"
#include "util/log.h"

int store_dmarc_eval_insert(struct store *st, const struct store_dmarc_eval *e)
{
    if (!e->policy || !e->rua || !e->dkim) {
        log_msg(LOG_ERROR, "store", "op=dmarc_eval_insert error=\"missing fields\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = sq_stmt(st, S_DM_EVAL_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, sq_now_or(e->received_at));
    sq_bind_arr(s, 2, e->policy_domain, sizeof e->policy_domain);
    sq_bind_str(s, 3, e->policy);
    sq_bind_str(s, 4, e->rua);
    sq_bind_arr(s, 5, e->source_ip, sizeof e->source_ip);
    sq_bind_arr(s, 6, e->header_from, sizeof e->header_from);
    sq_bind_arr(s, 7, e->envelope_from, sizeof e->envelope_from);
    sqlite3_bind_int(s, 8, e->disposition);
    sqlite3_bind_int(s, 9, e->dkim_pass);
    sqlite3_bind_int(s, 10, e->spf_pass);
    sq_bind_arr(s, 11, e->reason_type, sizeof e->reason_type);
    sq_bind_arr(s, 12, e->reason_comment, sizeof e->reason_comment);
    sq_bind_str(s, 13, e->dkim);
    sq_bind_arr(s, 14, e->spf_domain, sizeof e->spf_domain);
    sq_bind_arr(s, 15, e->spf_scope, sizeof e->spf_scope);
    sq_bind_arr(s, 16, e->spf_result, sizeof e->spf_result);
    int rc = sq_write_rc(st, "dmarc_eval_insert", sqlite3_step(s));
    sq_done(s);
    return rc;
}

int store_dmarc_eval_due(struct store *st, int64_t before, int64_t interval, int limit,
                         int (*cb)(const char *policy_domain, int64_t bucket,
                                   int64_t earliest, void *arg),
                         void *arg)
{
    if (interval <= 0)
        return STORE_ERROR;
    sqlite3_stmt *s = sq_stmt(st, S_DM_EVAL_DUE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, before);
    sqlite3_bind_int64(s, 2, interval);
    sqlite3_bind_int(s, 3, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char domain[DNS_MAX_NAME_LEN + 1];
        sq_col_text(s, 0, domain, sizeof domain);
        if (cb(domain, sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2), arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "dmarc_eval_due", rc);
}

int store_dmarc_eval_rows(struct store *st, const char *policy_domain, int64_t begin,
                          int64_t end, int (*cb)(const struct store_dmarc_eval *e, void *arg),
                          void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_DM_EVAL_ROWS);
    if (!s)
        return STORE_ERROR;
    sq_bind_str(s, 1, policy_domain);
    sqlite3_bind_int64(s, 2, begin);
    sqlite3_bind_int64(s, 3, end);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_dmarc_eval e;
        memset(&e, 0, sizeof e);
        snprintf(e.policy_domain, sizeof e.policy_domain, "%s", policy_domain);
        sq_col_text(s, 0, e.source_ip, sizeof e.source_ip);
        sq_col_text(s, 1, e.header_from, sizeof e.header_from);
        sq_col_text(s, 2, e.envelope_from, sizeof e.envelope_from);
        e.disposition = sqlite3_column_int(s, 3);
        e.dkim_pass = sqlite3_column_int(s, 4) != 0;
        e.spf_pass = sqlite3_column_int(s, 5) != 0;
        sq_col_text(s, 6, e.reason_type, sizeof e.reason_type);
        sq_col_text(s, 7, e.reason_comment, sizeof e.reason_comment);
        const unsigned char *dk = sqlite3_column_text(s, 8);
        e.dkim = dk ? (const char *)dk : "[]";
        sq_col_text(s, 9, e.spf_domain, sizeof e.spf_domain);
        sq_col_text(s, 10, e.spf_scope, sizeof e.spf_scope);
        sq_col_text(s, 11, e.spf_result, sizeof e.spf_result);
        e.count = (uint64_t)sqlite3_column_int64(s, 12);
        e.policy = e.rua = "";
        if (cb(&e, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "dmarc_eval_rows", rc);
}

struct two { char *a, *b; };

static void read_two(sqlite3_stmt *s, void *p)
{
    struct two *t = p;
    t->a = sq_col_dup(s, 0);
    t->b = sq_col_dup(s, 1);
}

int store_dmarc_eval_policy(struct store *st, const char *policy_domain, int64_t begin,
                            int64_t end, char **policy, char **rua)
{
    *policy = *rua = NULL;
    sqlite3_stmt *s = sq_stmt(st, S_DM_EVAL_POLICY);
    if (!s)
        return STORE_ERROR;
    sq_bind_str(s, 1, policy_domain);
    sqlite3_bind_int64(s, 2, begin);
    sqlite3_bind_int64(s, 3, end);
    struct two t = { NULL, NULL };
    int rc = sq_get_one(st, s, "dmarc_eval_policy", read_two, &t);
    if (rc == STORE_OK && (!t.a || !t.b)) {
        free(t.a);
        free(t.b);
        return STORE_ERROR;
    }
    *policy = t.a;
    *rua = t.b;
    return rc;
}

static int report_out_locked(struct store *st, struct store_dmarc_report_out *r)
{
    sqlite3_stmt *s = sq_stmt(st, S_DM_OUT_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = sq_now_or(r->created_at);
    sq_bind_arr(s, 1, r->policy_domain, sizeof r->policy_domain);
    sqlite3_bind_int64(s, 2, r->begin);
    sqlite3_bind_int64(s, 3, r->end);
    sq_bind_arr(s, 4, r->report_id, sizeof r->report_id);
    sq_bind_arr(s, 5, r->rcpts, sizeof r->rcpts);
    sqlite3_bind_int64(s, 6, r->message_id);
    sq_bind_arr(s, 7, r->status, sizeof r->status);
    sq_bind_arr(s, 8, r->detail, sizeof r->detail);
    sqlite3_bind_int64(s, 9, r->records);
    sqlite3_bind_int64(s, 10, r->messages);
    sqlite3_bind_int64(s, 11, created);
    int rc = sq_write_rc(st, "dmarc_report_out_insert", sqlite3_step(s));
    sq_done(s);
    if (rc != STORE_OK)
        return rc;
    r->id = sqlite3_last_insert_rowid(st->db);
    r->created_at = created;
    if (!(s = sq_stmt(st, S_DM_EVAL_MARK)))
        return STORE_ERROR;
    sq_bind_arr(s, 1, r->policy_domain, sizeof r->policy_domain);
    sqlite3_bind_int64(s, 2, r->begin);
    sqlite3_bind_int64(s, 3, r->end);
    sqlite3_bind_int64(s, 4, r->id);
    rc = sq_write_rc(st, "dmarc_eval_mark", sqlite3_step(s));
    sq_done(s);
    return rc;
}

int store_dmarc_report_out_record(struct store *st, struct store_dmarc_report_out *r)
{
    if (sq_op_begin(st) != STORE_OK)
        return STORE_ERROR;
    return sq_op_end(st, report_out_locked(st, r));
}

int store_dmarc_report_out_list(struct store *st, const char *policy_domain,
                                int (*cb)(const struct store_dmarc_report_out *r, void *arg),
                                void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_DM_OUT_LIST);
    if (!s)
        return STORE_ERROR;
    sq_bind_str(s, 1, policy_domain ? policy_domain : "");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_dmarc_report_out r;
        memset(&r, 0, sizeof r);
        r.id = sqlite3_column_int64(s, 0);
        sq_col_text(s, 1, r.policy_domain, sizeof r.policy_domain);
        r.begin = sqlite3_column_int64(s, 2);
        r.end = sqlite3_column_int64(s, 3);
        sq_col_text(s, 4, r.report_id, sizeof r.report_id);
        sq_col_text(s, 5, r.rcpts, sizeof r.rcpts);
        r.message_id = sqlite3_column_int64(s, 6);
        sq_col_text(s, 7, r.status, sizeof r.status);
        sq_col_text(s, 8, r.detail, sizeof r.detail);
        r.records = sqlite3_column_int64(s, 9);
        r.messages = sqlite3_column_int64(s, 10);
        r.created_at = sqlite3_column_int64(s, 11);
        if (cb(&r, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "dmarc_report_out_list", rc);
}

int store_dmarc_report_in_insert(struct store *st, struct store_dmarc_report_in *r)
{
    if (!r->json) {
        log_msg(LOG_ERROR, "store", "op=dmarc_report_in_insert error=\"missing json\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = sq_stmt(st, S_DM_IN_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t received = sq_now_or(r->received_at);
    sqlite3_bind_int64(s, 1, r->account_id);
    sq_bind_arr(s, 2, r->domain, sizeof r->domain);
    sq_bind_arr(s, 3, r->org_name, sizeof r->org_name);
    sq_bind_arr(s, 4, r->report_id, sizeof r->report_id);
    sqlite3_bind_int64(s, 5, r->begin);
    sqlite3_bind_int64(s, 6, r->end);
    sq_bind_str(s, 7, r->json);
    sqlite3_bind_int64(s, 8, received);
    int rc = sq_write_rc(st, "dmarc_report_in_insert", sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK) {
        r->id = sqlite3_last_insert_rowid(st->db);
        r->received_at = received;
    }
    return rc;
}

int store_dmarc_report_in_list(struct store *st, int64_t account_id, const char *domain,
                               int64_t since, int limit,
                               int (*cb)(const struct store_dmarc_report_in *r, void *arg),
                               void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_DM_IN_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sq_bind_str(s, 2, domain ? domain : "");
    sqlite3_bind_int64(s, 3, since);
    sqlite3_bind_int(s, 4, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_dmarc_report_in r;
        memset(&r, 0, sizeof r);
        r.id = sqlite3_column_int64(s, 0);
        r.account_id = sqlite3_column_int64(s, 1);
        sq_col_text(s, 2, r.domain, sizeof r.domain);
        sq_col_text(s, 3, r.org_name, sizeof r.org_name);
        sq_col_text(s, 4, r.report_id, sizeof r.report_id);
        r.begin = sqlite3_column_int64(s, 5);
        r.end = sqlite3_column_int64(s, 6);
        const unsigned char *j = sqlite3_column_text(s, 7);
        r.json = j ? (const char *)j : "{}";
        r.received_at = sqlite3_column_int64(s, 8);
        if (cb(&r, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "dmarc_report_in_list", rc);
}
