/* What the parts of the SQLite store share (store_sqlite.c: schema,
 * open, transactions, accounts, received mail, rules, the outbound insert;
 * store_sqlite_identity.c: domains, senders, DKIM keys;
 * store_sqlite_dmarc.c: DMARC evaluations and reports;
 * store_sqlite_outbound.c: the delivery queue,
 * events, webhooks, suppressions, secrets): the statement table, the
 * handle, and the small helpers around sqlite3_step. Not for use outside
 * src/store. */
#ifndef SESAME_STORE_STORE_SQLITE_INTERNAL_H
#define SESAME_STORE_STORE_SQLITE_INTERNAL_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The statements, prepared on first use and kept per handle (sql[] in
 * store_sqlite.c). */
enum sid {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
    S_ACC_INSERT, S_ACC_GET, S_ACC_GET_NAME, S_ACC_UPDATE,
    S_CRED_INSERT, S_CRED_GET,
    S_DOM_INSERT, S_DOM_GET, S_DOM_FIND_VERIFIED, S_DOM_OWNER, S_DOM_VERIFIED_ELSEWHERE,
    S_DOM_UPDATE, S_DOM_LIST, S_DOM_DELETE, S_DOM_FIND_MAIL_FROM, S_DOM_DUE, S_DOM_REC_GET, S_DOM_REC_SET,
    S_SND_INSERT, S_SND_GET, S_SND_GET_TOKEN, S_SND_UPDATE, S_SND_LIST, S_SND_FIND_VERIFIED,
    S_SND_VERIFIED_ELSEWHERE,
    S_DM_EVAL_INSERT, S_DM_EVAL_DUE, S_DM_EVAL_ROWS, S_DM_EVAL_POLICY, S_DM_EVAL_MARK,
    S_DM_OUT_INSERT, S_DM_OUT_LIST, S_DM_IN_INSERT, S_DM_IN_LIST,
    S_ACC_LIST, S_REP_SET, S_REP_STATS_ADD, S_REP_STATS_LIST, S_REP_STATS_CLEAR,
    S_INB_INSERT, S_INB_LIST, S_INB_GET, S_INB_COUNT,
    S_RULE_INSERT, S_RULE_DELETE, S_RULE_LIST,
    S_OUT_MSG_INSERT, S_OUT_RCPT_INSERT, S_OUT_COUNT_SINCE, S_OUT_OLDEST_SINCE, S_OUT_COUNT,
    S_KEY_INSERT, S_KEY_UPDATE, S_KEY_LIST,
    S_DLV_DUE, S_DLV_MARK, S_DLV_UPDATE, S_DLV_NEXT_DUE, S_DLV_GET,
    S_OUT_GET_RAW, S_OUT_GET, S_OUT_RCPTS,
    S_EVT_MSG_OWNER, S_EVT_INSERT, S_EVT_FANOUT, S_EVT_LIST,
    S_WH_INSERT, S_WH_DELETE, S_WH_LIST,
    S_JOB_DUE, S_JOB_MARK, S_JOB_DELETE, S_JOB_RETRY,
    S_SUP_PUT, S_SUP_GET, S_SUP_DELETE, S_SUP_LIST,
    S_SECRET_GET, S_SECRET_INSERT,
    S_COUNT
};

#define ACC_COLS "id, name, sandbox, max_24h, max_rate, dmarc_report_only, created_at, " \
                 "reputation, reputation_reason, reputation_at"
#define DOM_COLS "id, account_id, domain, status, verify_token, mail_from_domain, " \
                 "created_at, verified_at, checked_at, mail_from_status, mail_from_behavior, " \
                 "next_check_at, missing_since, check_attempts"
#define SND_COLS "id, account_id, address, status, token, created_at, expires_at, " \
                 "verified_at, sent_at"
#define INB_COLS "id, account_id, received_at, mail_from, rcpt_json, client_ip, helo, " \
                 "spf, dkim, dmarc, authres, quarantine, message_id, subject, from_hdr, size"
#define KEY_COLS "id, domain_id, selector, algorithm, key_path, record, status, " \
                 "created_at, retired_at, published_at"
/* A recipient row with its message's columns (r: outbound_recipients, m:
 * outbound_messages); read by read_delivery. */
#define DLV_COLS "r.id, r.message_id, m.account_id, r.rcpt, r.domain, m.mail_from, r.status, " \
                 "r.attempts, m.created_at, r.next_attempt_at, r.updated_at, r.last_response"
#define DLV_FROM "outbound_recipients r JOIN outbound_messages m ON m.id = r.message_id"
/* Not final; the same expression as the partial index outbound_recipients_pending,
 * so the planner can use it. */
#define RCPT_PENDING "status IN ('queued', 'sending', 'deferred')"
#define EVT_COLS "id, account_id, message_id, type, rcpt, created_at, json"
#define WH_COLS "id, account_id, url, events, secret, created_at"
#define SUP_COLS "account_id, address, reason, detail, created_at"

struct store {
    sqlite3 *db;
    bool in_tx;                   /* inside store_begin .. store_commit/rollback */
    sqlite3_stmt *stmts[S_COUNT];
};

/* Logs a failed SQLite call (never values) and returns STORE_ERROR. */
int sq_fail(struct store *st, const char *op, int rc);
/* The prepared statement id (NULL after logging when it cannot be). */
sqlite3_stmt *sq_stmt(struct store *st, enum sid id);
/* Resets a statement for its next use. */
void sq_done(sqlite3_stmt *s);
/* The store_rc of a finished write step (constraint → STORE_EXISTS). */
int sq_write_rc(struct store *st, const char *op, int rc);
int64_t sq_now_or(int64_t t);           /* t, or now when 0 */
int sq_bind_arr(sqlite3_stmt *s, int i, const char *arr, size_t size);
int sq_bind_str(sqlite3_stmt *s, int i, const char *str);
bool sq_too_long(const char *what, const char *s, size_t max);
void sq_col_text(sqlite3_stmt *s, int i, char *dst, size_t size);
char *sq_col_dup(sqlite3_stmt *s, int i);
/* Steps a write statement that names one row by id: STORE_NOTFOUND when no
 * row changed. */
int sq_write_one(struct store *st, sqlite3_stmt *s, const char *op);
/* Lower-cases ASCII and drops one trailing dot: the form domains are kept in. */
int sq_norm_domain(const char *in, char *out, size_t size);
/* "local@Domain" -> "local@domain" (the local part is kept as given). */
int sq_norm_address(const char *in, char *out, size_t size);
/* Several statements as one: a transaction of their own, or a savepoint
 * inside the caller's; op_end commits or undoes and returns rc. */
int sq_op_begin(struct store *st);
int sq_op_end(struct store *st, int rc);
/* Steps a statement expected to return at most one row, read by fn. */
int sq_get_one(struct store *st, sqlite3_stmt *s, const char *op,
               void (*fn)(sqlite3_stmt *, void *), void *out);

#endif
