/* The outbound half of the SQLite store (store.h, "outbound (issue 6)"):
 * the delivery queue (claims with leases, outcomes),
 * events and their webhook fan-out, webhook jobs, suppressions and service
 * secrets. Queue claims select the due rows and lease them in one BEGIN
 * IMMEDIATE transaction (a savepoint inside the caller's), so concurrent
 * claimers never take the same row; the claim is committed before the
 * callbacks run. store_sqlite.c has the schema and the rest. */
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_sqlite_internal.h"
#include "util/log.h"

/* ==== outbound (issue 6) ==== */

/* Bytes of s to keep so that it fits max bytes without splitting a UTF-8
 * sequence (the text ends up in JSON). */
static size_t utf8_fit(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Whole-address lower case (suppressions compare addresses case-insensitively,
 * as SES does). -1 when empty or too long. */
static int lower_address(const char *in, char *out, size_t size)
{
    size_t n = in ? strnlen(in, SMTP_MAX_PATH_LEN + 1) : 0;
    if (n == 0 || n > SMTP_MAX_PATH_LEN || n >= size)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
    out[n] = '\0';
    return 0;
}

/* Steps a write statement that names one row by id: STORE_NOTFOUND when no
 * row changed. */
int sq_write_one(struct store *st, sqlite3_stmt *s, const char *op)
{
    int rc = sq_write_rc(st, op, sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

/* ---- the delivery queue ---- */

/* last_response is kept to what struct store_delivery holds. */
#define STORE_RESPONSE_MAX (sizeof ((struct store_delivery *)0)->last_response - 1)

/* enum store_rcpt_status ↔ the TEXT kept in outbound_recipients.status */
static const char *const rcpt_status_names[] = {
    [STORE_RCPT_QUEUED] = "queued",
    [STORE_RCPT_SENDING] = "sending",
    [STORE_RCPT_DEFERRED] = "deferred",
    [STORE_RCPT_DELIVERED] = "delivered",
    [STORE_RCPT_BOUNCED] = "bounced",
    [STORE_RCPT_SUPPRESSED] = "suppressed",
};
#define RCPT_STATUS_N ((int)(sizeof rcpt_status_names / sizeof rcpt_status_names[0]))

static int rcpt_status_of(const unsigned char *t)
{
    for (int i = 0; t && i < RCPT_STATUS_N; i++)
        if (strcmp((const char *)t, rcpt_status_names[i]) == 0)
            return i;
    return STORE_RCPT_BOUNCED;   /* nothing else is written; a stranger is final, not retried */
}

/* A row of DLV_COLS. */
static void read_delivery(sqlite3_stmt *s, void *p)
{
    struct store_delivery *d = p;
    memset(d, 0, sizeof *d);
    d->rcpt_id = sqlite3_column_int64(s, 0);
    d->message_id = sqlite3_column_int64(s, 1);
    d->account_id = sqlite3_column_int64(s, 2);
    sq_col_text(s, 3, d->rcpt, sizeof d->rcpt);
    sq_col_text(s, 4, d->domain, sizeof d->domain);
    sq_col_text(s, 5, d->mail_from, sizeof d->mail_from);
    d->status = rcpt_status_of(sqlite3_column_text(s, 6));
    d->attempts = (unsigned)sqlite3_column_int64(s, 7);
    d->created_at = sqlite3_column_int64(s, 8);
    d->next_attempt_at = sqlite3_column_int64(s, 9);
    d->updated_at = sqlite3_column_int64(s, 10);
    sq_col_text(s, 11, d->last_response, sizeof d->last_response);
}

/* Selects up to max due rows and leases them, in the caller's (savepoint or)
 * transaction; *out is malloc'd, the rows as they are after the claim. */
static int delivery_claim_locked(struct store *st, int64_t now, int64_t lease_until,
                                 unsigned max, struct store_delivery **out, size_t *n)
{
    sqlite3_stmt *s = sq_stmt(st, S_DLV_DUE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, max);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct store_delivery *p = realloc(*out, ncap * sizeof *p);
            if (!p) {
                sq_done(s);
                log_msg(LOG_ERROR, "store", "op=delivery_claim error=\"out of memory\"");
                return STORE_ERROR;
            }
            *out = p;
            cap = ncap;
        }
        read_delivery(s, &(*out)[*n]);
        (*n)++;
    }
    sq_done(s);
    if (rc != SQLITE_DONE)
        return sq_fail(st, "delivery_claim", rc);
    if (*n && !(s = sq_stmt(st, S_DLV_MARK)))
        return STORE_ERROR;
    for (size_t i = 0; i < *n; i++) {
        sqlite3_bind_int64(s, 1, (*out)[i].rcpt_id);
        sqlite3_bind_int64(s, 2, lease_until);
        rc = sq_write_rc(st, "delivery_claim", sqlite3_step(s));
        sq_done(s);
        if (rc != STORE_OK)
            return rc;
        (*out)[i].status = STORE_RCPT_SENDING;
        (*out)[i].next_attempt_at = lease_until;
    }
    return STORE_OK;
}

int store_delivery_claim(struct store *st, int64_t now, int64_t lease_until, unsigned max,
                         int (*cb)(const struct store_delivery *d, void *arg), void *arg)
{
    if (max == 0)
        return STORE_OK;
    struct store_delivery *rows = NULL;
    size_t n = 0;
    if (sq_op_begin(st) != STORE_OK)
        return STORE_ERROR;
    int rc = sq_op_end(st, delivery_claim_locked(st, now, lease_until, max, &rows, &n));
    /* The claim is committed before any callback runs: a callback may use
     * the handle, and a crash after this point only delays the rows until
     * lease_until. */
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        if (cb(&rows[i], arg) != 0)
            break;
    free(rows);
    return rc;
}

int store_delivery_update(struct store *st, int64_t rcpt_id, int status, unsigned attempts,
                          int64_t next_attempt_at, const char *last_response, int64_t now)
{
    if (status < 0 || status >= RCPT_STATUS_N) {
        log_msg(LOG_ERROR, "store", "op=delivery_update error=\"bad status\" status=%d", status);
        return STORE_ERROR;
    }
    const char *resp = last_response ? last_response : "";
    sqlite3_stmt *s = sq_stmt(st, S_DLV_UPDATE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, rcpt_id);
    sq_bind_str(s, 2, rcpt_status_names[status]);
    sqlite3_bind_int64(s, 3, attempts);
    sqlite3_bind_int64(s, 4, next_attempt_at);
    sqlite3_bind_text(s, 5, resp, (int)utf8_fit(resp, STORE_RESPONSE_MAX), SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, sq_now_or(now));
    return sq_write_one(st, s, "delivery_update");
}

int store_delivery_next_due(struct store *st, int64_t *when)
{
    sqlite3_stmt *s = sq_stmt(st, S_DLV_NEXT_DUE);
    if (!s)
        return STORE_ERROR;
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        *when = sqlite3_column_int64(s, 0);
        ret = STORE_OK;
    } else {
        ret = rc == SQLITE_ROW ? STORE_NOTFOUND : sq_fail(st, "delivery_next_due", rc);
    }
    sq_done(s);
    return ret;
}

int store_delivery_get(struct store *st, int64_t rcpt_id, struct store_delivery *out)
{
    sqlite3_stmt *s = sq_stmt(st, S_DLV_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, rcpt_id);
    return sq_get_one(st, s, "delivery_get", read_delivery, out);
}

int store_outbound_get_raw(struct store *st, int64_t message_id, char **raw, size_t *len,
                           char *mail_from, size_t mflen)
{
    sqlite3_stmt *s = sq_stmt(st, S_OUT_GET_RAW);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, message_id);
    int rc = sqlite3_step(s), ret = STORE_OK;
    if (rc != SQLITE_ROW) {
        sq_done(s);
        return rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(st, "outbound_get_raw", rc);
    }
    size_t mn = (size_t)sqlite3_column_bytes(s, 0);
    if (mail_from) {
        if (mn >= mflen) {
            log_msg(LOG_ERROR, "store", "op=outbound_get_raw error=\"mail_from does not fit\"");
            ret = STORE_ERROR;
        } else {
            sq_col_text(s, 0, mail_from, mflen);
        }
    }
    if (ret == STORE_OK && raw) {
        const void *b = sqlite3_column_blob(s, 1);
        size_t n = (size_t)sqlite3_column_bytes(s, 1);
        char *p = malloc(n + 1);
        if (!p) {
            log_msg(LOG_ERROR, "store", "op=outbound_get_raw error=\"out of memory\"");
            ret = STORE_ERROR;
        } else {
            if (n)
                memcpy(p, b, n);
            p[n] = '\0';
            *raw = p;
            if (len)
                *len = n;
        }
    }
    sq_done(s);
    return ret;
}

int store_outbound_get(struct store *st, int64_t account_id, int64_t message_id,
                       struct store_outbound *meta,
                       int (*cb)(const struct store_delivery *d, void *arg), void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_OUT_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, message_id);
    sqlite3_bind_int64(s, 2, account_id);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sq_done(s);
        return rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(st, "outbound_get", rc);
    }
    if (meta) {
        memset(meta, 0, sizeof *meta);
        meta->id = sqlite3_column_int64(s, 0);
        meta->account_id = sqlite3_column_int64(s, 1);
        sq_col_text(s, 2, meta->mail_from, sizeof meta->mail_from);
        sq_col_text(s, 3, meta->message_id, sizeof meta->message_id);
        meta->created_at = sqlite3_column_int64(s, 4);
        const unsigned char *src = sqlite3_column_text(s, 5);
        meta->source = src && strcmp((const char *)src, "smtp") == 0 ? "smtp" : "api";
        meta->rcpts = NULL;
        meta->nrcpt = (size_t)sqlite3_column_int64(s, 6);
    }
    sq_done(s);
    if (!cb)
        return STORE_OK;
    if (!(s = sq_stmt(st, S_OUT_RCPTS)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, message_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_delivery d;
        read_delivery(s, &d);
        if (cb(&d, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "outbound_get", rc);
}

/* ---- events ---- */

static int event_insert_locked(struct store *st, struct store_event *e, int64_t created)
{
    sqlite3_stmt *s;
    int rc;
    if (e->message_id != 0) {       /* only about a message of the same account */
        if (!(s = sq_stmt(st, S_EVT_MSG_OWNER)))
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, e->message_id);
        sqlite3_bind_int64(s, 2, e->account_id);
        rc = sqlite3_step(s);
        sq_done(s);
        if (rc == SQLITE_DONE)
            return STORE_NOTFOUND;
        if (rc != SQLITE_ROW)
            return sq_fail(st, "event_insert", rc);
    }
    if (!(s = sq_stmt(st, S_EVT_INSERT)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->account_id);
    sqlite3_bind_int64(s, 2, e->message_id);
    sq_bind_arr(s, 3, e->type, sizeof e->type);
    sq_bind_arr(s, 4, e->rcpt, sizeof e->rcpt);
    sqlite3_bind_int64(s, 5, created);
    sq_bind_str(s, 6, e->json);
    rc = sq_write_rc(st, "event_insert", sqlite3_step(s));
    sq_done(s);
    if (rc != STORE_OK)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    if (!(s = sq_stmt(st, S_EVT_FANOUT)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->account_id);
    sqlite3_bind_int64(s, 2, id);
    sq_bind_arr(s, 3, e->type, sizeof e->type);
    sqlite3_bind_int64(s, 4, created);
    rc = sq_write_rc(st, "event_insert", sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK)
        e->id = id;
    return rc;
}

int store_event_insert(struct store *st, struct store_event *e)
{
    if (!e->json || !e->type[0] || strchr(e->type, ',') ||
        sq_too_long("event.type", e->type, sizeof e->type - 1) ||
        sq_too_long("event.rcpt", e->rcpt, sizeof e->rcpt - 1)) {
        log_msg(LOG_ERROR, "store", "op=event_insert error=\"bad event fields\"");
        return STORE_ERROR;
    }
    int64_t created = sq_now_or(e->created_at);
    if (sq_op_begin(st) != STORE_OK)
        return STORE_ERROR;
    int rc = sq_op_end(st, event_insert_locked(st, e, created));
    if (rc == STORE_OK)
        e->created_at = created;
    return rc;
}

int store_event_list(struct store *st, int64_t account_id, int64_t message_id,
                     int (*cb)(const struct store_event *e, void *arg), void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_EVT_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, message_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_event e;
        memset(&e, 0, sizeof e);
        e.id = sqlite3_column_int64(s, 0);
        e.account_id = sqlite3_column_int64(s, 1);
        e.message_id = sqlite3_column_int64(s, 2);
        sq_col_text(s, 3, e.type, sizeof e.type);
        sq_col_text(s, 4, e.rcpt, sizeof e.rcpt);
        e.created_at = sqlite3_column_int64(s, 5);
        const unsigned char *json = sqlite3_column_text(s, 6);
        e.json = json ? (const char *)json : "";
        if (cb(&e, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "event_list", rc);
}

/* ---- webhooks ---- */

int store_webhook_insert(struct store *st, struct store_webhook *w)
{
    if (!w->url[0] || !w->secret[0] ||
        sq_too_long("webhook.url", w->url, sizeof w->url - 1) ||
        sq_too_long("webhook.events", w->events, sizeof w->events - 1) ||
        sq_too_long("webhook.secret", w->secret, sizeof w->secret - 1)) {
        log_msg(LOG_ERROR, "store", "op=webhook_insert error=\"bad webhook fields\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = sq_stmt(st, S_WH_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = sq_now_or(w->created_at);
    sqlite3_bind_int64(s, 1, w->account_id);
    sq_bind_arr(s, 2, w->url, sizeof w->url);
    sq_bind_arr(s, 3, w->events, sizeof w->events);
    sq_bind_arr(s, 4, w->secret, sizeof w->secret);
    sqlite3_bind_int64(s, 5, created);
    int rc = sq_write_rc(st, "webhook_insert", sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK) {
        w->id = sqlite3_last_insert_rowid(st->db);
        w->created_at = created;
    }
    return rc;
}

int store_webhook_delete(struct store *st, int64_t account_id, int64_t id)
{
    sqlite3_stmt *s = sq_stmt(st, S_WH_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, account_id);
    return sq_write_one(st, s, "webhook_delete");   /* its pending jobs go with it */
}

int store_webhook_list(struct store *st, int64_t account_id,
                       int (*cb)(const struct store_webhook *w, void *arg), void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_WH_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_webhook w;
        memset(&w, 0, sizeof w);
        w.id = sqlite3_column_int64(s, 0);
        w.account_id = sqlite3_column_int64(s, 1);
        sq_col_text(s, 2, w.url, sizeof w.url);
        sq_col_text(s, 3, w.events, sizeof w.events);
        sq_col_text(s, 4, w.secret, sizeof w.secret);
        w.created_at = sqlite3_column_int64(s, 5);
        if (cb(&w, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "webhook_list", rc);
}

static void jobs_free(struct store_webhook_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sodium_memzero(jobs[i].secret, sizeof jobs[i].secret);
        free(jobs[i].json);
    }
    free(jobs);
}

static int job_claim_locked(struct store *st, int64_t now, int64_t lease_until, unsigned max,
                            struct store_webhook_job **out, size_t *n)
{
    sqlite3_stmt *s = sq_stmt(st, S_JOB_DUE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, max);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct store_webhook_job *p = realloc(*out, ncap * sizeof *p);
            if (!p)
                break;
            *out = p;
            cap = ncap;
        }
        struct store_webhook_job *j = &(*out)[*n];
        memset(j, 0, sizeof *j);
        j->id = sqlite3_column_int64(s, 0);
        j->webhook_id = sqlite3_column_int64(s, 1);
        j->event_id = sqlite3_column_int64(s, 2);
        j->attempts = (unsigned)sqlite3_column_int64(s, 3);
        sq_col_text(s, 4, j->url, sizeof j->url);
        sq_col_text(s, 5, j->secret, sizeof j->secret);
        if (!(j->json = sq_col_dup(s, 6)))
            break;
        (*n)++;
    }
    sq_done(s);
    if (rc == SQLITE_ROW) {
        log_msg(LOG_ERROR, "store", "op=webhook_job_claim error=\"out of memory\"");
        return STORE_ERROR;
    }
    if (rc != SQLITE_DONE)
        return sq_fail(st, "webhook_job_claim", rc);
    if (*n && !(s = sq_stmt(st, S_JOB_MARK)))
        return STORE_ERROR;
    for (size_t i = 0; i < *n; i++) {
        sqlite3_bind_int64(s, 1, (*out)[i].id);
        sqlite3_bind_int64(s, 2, lease_until);
        rc = sq_write_rc(st, "webhook_job_claim", sqlite3_step(s));
        sq_done(s);
        if (rc != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

int store_webhook_job_claim(struct store *st, int64_t now, int64_t lease_until, unsigned max,
                            int (*cb)(const struct store_webhook_job *j, void *arg), void *arg)
{
    if (max == 0)
        return STORE_OK;
    struct store_webhook_job *jobs = NULL;
    size_t n = 0;
    if (sq_op_begin(st) != STORE_OK)
        return STORE_ERROR;
    int rc = sq_op_end(st, job_claim_locked(st, now, lease_until, max, &jobs, &n));
    for (size_t i = 0; rc == STORE_OK && i < n; i++)   /* committed first, as deliveries */
        if (cb(&jobs[i], arg) != 0)
            break;
    jobs_free(jobs, n);
    return rc;
}

int store_webhook_job_finish(struct store *st, int64_t id, bool finished, unsigned attempts,
                             int64_t next_attempt_at)
{
    sqlite3_stmt *s = sq_stmt(st, finished ? S_JOB_DELETE : S_JOB_RETRY);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    if (!finished) {
        sqlite3_bind_int64(s, 2, attempts);
        sqlite3_bind_int64(s, 3, next_attempt_at);
    }
    return sq_write_one(st, s, "webhook_job_finish");
}

/* ---- suppressions ---- */

int store_suppression_put(struct store *st, const struct store_suppression *x)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (lower_address(x->address, addr, sizeof addr) != 0 || !x->reason[0] ||
        sq_too_long("suppression.reason", x->reason, sizeof x->reason - 1)) {
        log_msg(LOG_ERROR, "store", "op=suppression_put error=\"bad address or reason\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = sq_stmt(st, S_SUP_PUT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, x->account_id);
    sq_bind_str(s, 2, addr);
    sq_bind_arr(s, 3, x->reason, sizeof x->reason);
    sqlite3_bind_text(s, 4, x->detail, (int)utf8_fit(x->detail, sizeof x->detail - 1),
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, sq_now_or(x->created_at));
    int rc = sq_write_rc(st, "suppression_put", sqlite3_step(s));
    sq_done(s);
    return rc;
}

static void read_suppression(sqlite3_stmt *s, void *p)
{
    struct store_suppression *x = p;
    memset(x, 0, sizeof *x);
    x->account_id = sqlite3_column_int64(s, 0);
    sq_col_text(s, 1, x->address, sizeof x->address);
    sq_col_text(s, 2, x->reason, sizeof x->reason);
    sq_col_text(s, 3, x->detail, sizeof x->detail);
    x->created_at = sqlite3_column_int64(s, 4);
}

int store_suppression_get(struct store *st, int64_t account_id, const char *address,
                          struct store_suppression *out)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (lower_address(address, addr, sizeof addr) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_SUP_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sq_bind_str(s, 2, addr);
    return sq_get_one(st, s, "suppression_get", read_suppression, out);
}

int store_suppression_delete(struct store *st, int64_t account_id, const char *address)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (lower_address(address, addr, sizeof addr) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_SUP_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sq_bind_str(s, 2, addr);
    return sq_write_one(st, s, "suppression_delete");
}

int store_suppression_list(struct store *st, int64_t account_id, const char *after, unsigned limit,
                           int (*cb)(const struct store_suppression *s, void *arg), void *arg)
{
    char from[SMTP_MAX_PATH_LEN + 1] = "";
    if (after && after[0] && lower_address(after, from, sizeof from) != 0)
        return STORE_OK;         /* longer than any address: nothing sorts after it */
    sqlite3_stmt *s = sq_stmt(st, S_SUP_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sq_bind_str(s, 2, from);
    sqlite3_bind_int64(s, 3, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_suppression x;
        read_suppression(s, &x);
        if (cb(&x, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "suppression_list", rc);
}

/* ---- service secrets ---- */

#define SECRET_MIN 32
#define SECRET_MAX 64

/* 1 and the value in out when the secret exists with len bytes, 0 when it
 * does not exist, -1 on an error (logged). */
static int secret_read(struct store *st, const char *name, unsigned char *out, size_t len)
{
    sqlite3_stmt *s = sq_stmt(st, S_SECRET_GET);
    if (!s)
        return -1;
    sq_bind_str(s, 1, name);
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(s, 0);
        if (b && (size_t)sqlite3_column_bytes(s, 0) == len) {
            memcpy(out, b, len);
            ret = 1;
        } else {   /* the name is the caller's: one name, one length */
            log_msg(LOG_ERROR, "store", "op=secret_get name=%s error=\"stored with another length\"",
                    name);
            ret = -1;
        }
    } else {
        ret = rc == SQLITE_DONE ? 0 : (sq_fail(st, "secret_get", rc), -1);
    }
    sq_done(s);
    return ret;
}

int store_secret_get(struct store *st, const char *name, unsigned char *out, size_t len)
{
    if (!name || !name[0] || strnlen(name, STORE_NAME_MAX + 1) > STORE_NAME_MAX ||
        len < SECRET_MIN || len > SECRET_MAX) {
        log_msg(LOG_ERROR, "store", "op=secret_get error=\"bad name or length\"");
        return STORE_ERROR;
    }
    int got = secret_read(st, name, out, len);
    if (got != 0)
        return got > 0 ? STORE_OK : STORE_ERROR;
    if (sodium_init() < 0) {
        log_msg(LOG_ERROR, "store", "op=secret_get error=\"libsodium cannot start\"");
        return STORE_ERROR;
    }
    /* Two processes may get here at once: the first insert wins and both
     * read back the winner. */
    unsigned char fresh[SECRET_MAX];
    randombytes_buf(fresh, len);
    sqlite3_stmt *s = sq_stmt(st, S_SECRET_INSERT);
    int rc = STORE_ERROR;
    if (s) {
        sq_bind_str(s, 1, name);
        sqlite3_bind_blob(s, 2, fresh, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
        rc = sq_write_rc(st, "secret_get", sqlite3_step(s));
        sq_done(s);
    }
    sodium_memzero(fresh, sizeof fresh);
    if (rc != STORE_OK)
        return STORE_ERROR;
    if (secret_read(st, name, out, len) != 1) {
        log_msg(LOG_ERROR, "store", "op=secret_get name=%s error=\"not there after insert\"", name);
        return STORE_ERROR;
    }
    log_msg(LOG_INFO, "store", "op=secret_get name=%s event=ready", name);  /* never the value */
    return STORE_OK;
}
