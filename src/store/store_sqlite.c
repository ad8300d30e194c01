/* The SQLite store (store.h): one file DATA_DIR/sesame.db in WAL mode with
 * synchronous=FULL, so a commit is durable when it returns; foreign keys on;
 * a 10 s busy timeout because every thread opens its own handle. The schema
 * is an ordered list of migration steps applied at open (PRAGMA
 * user_version counts the applied ones). Statements are prepared once per
 * handle and kept (SQLITE_PREPARE_PERSISTENT).
 *
 * It does not validate what callers store (names, JSON, addresses are the
 * service's business) beyond length caps, and nothing SQLite-specific
 * leaves this file: callers see store_rc codes, int64 ids and Unix times.
 * Writes that take several statements run in their own transaction (or a
 * savepoint inside the caller's), so each store_* call is atomic.
 *
 * Queue claims (deliveries, webhook jobs) select the due rows and lease them
 * in one BEGIN IMMEDIATE transaction, so concurrent claimers (threads or
 * processes, each with its own handle) never take the same row; the claim
 * is committed before the callbacks run, so a callback may use the handle.
 * A lease that runs out (the claimer died) makes the row due again. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_DB_FILE "sesame.db"
#define STORE_WAL_SIZE_LIMIT (64 * 1024 * 1024) /* WAL file kept after a checkpoint */

/* ---- schema ---- */

/* Applied in order, each once; never edit a step that has shipped, add one.
 * Statuses of outbound_recipients (TEXT, readable in the sqlite3 shell, and
 * enum store_rcpt_status in C): queued, sending, deferred (not final);
 * delivered, bounced, suppressed (final). Step 1 also named 'failed', which
 * nothing wrote; step 2 maps it to 'bounced'. */
static const char *const migrations[] = {
    /* 1: everything store.h describes */
    "CREATE TABLE accounts ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL COLLATE NOCASE UNIQUE,"
    "  sandbox INTEGER NOT NULL DEFAULT 1,"
    "  max_24h INTEGER NOT NULL,"
    "  max_rate INTEGER NOT NULL,"
    "  dmarc_report_only INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE credentials ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  kind INTEGER NOT NULL,"
    "  lookup TEXT NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (kind, lookup));"
    "CREATE INDEX credentials_account ON credentials(account_id);"
    "CREATE TABLE domains ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  domain TEXT NOT NULL,"
    "  status INTEGER NOT NULL DEFAULT 0,"
    "  verify_token TEXT NOT NULL DEFAULT '',"
    "  mail_from_domain TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  verified_at INTEGER NOT NULL DEFAULT 0,"
    "  checked_at INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (account_id, domain));"
    "CREATE UNIQUE INDEX domains_one_verified ON domains(domain) WHERE status = 1;"
    "CREATE TABLE senders ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL,"
    "  status INTEGER NOT NULL DEFAULT 0,"
    "  token TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL DEFAULT 0,"
    "  verified_at INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (account_id, address));"
    "CREATE UNIQUE INDEX senders_token ON senders(token) WHERE token <> '';"
    "CREATE TABLE inbound ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  received_at INTEGER NOT NULL,"
    "  mail_from TEXT NOT NULL,"
    "  rcpt_json TEXT NOT NULL,"
    "  client_ip TEXT NOT NULL,"
    "  helo TEXT NOT NULL,"
    "  spf TEXT NOT NULL,"
    "  dkim TEXT NOT NULL,"
    "  dmarc TEXT NOT NULL,"
    "  authres TEXT NOT NULL,"
    "  quarantine INTEGER NOT NULL DEFAULT 0,"
    "  message_id TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  from_hdr TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  raw BLOB NOT NULL);"   /* last, so listing never reads it */
    "CREATE INDEX inbound_account ON inbound(account_id, id);"
    "CREATE TABLE rules ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  json TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (account_id, position));"
    "CREATE TABLE outbound_messages ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  mail_from TEXT NOT NULL,"
    "  message_id TEXT NOT NULL DEFAULT '',"
    "  source TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  raw BLOB NOT NULL);"
    "CREATE INDEX outbound_messages_account ON outbound_messages(account_id, created_at);"
    "CREATE TABLE outbound_recipients ("
    "  id INTEGER PRIMARY KEY,"
    "  message_id INTEGER NOT NULL REFERENCES outbound_messages(id) ON DELETE CASCADE,"
    "  rcpt TEXT NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'queued',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL,"
    "  last_response TEXT NOT NULL DEFAULT '',"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX outbound_recipients_message ON outbound_recipients(message_id);"
    "CREATE INDEX outbound_recipients_due ON outbound_recipients(status, next_attempt_at);",

    /* 2: outbound (issue 6). Recipients get their lower-cased domain (the
     * part after the last '@', '' without one) so delivery can group by it;
     * the due index becomes a partial one on the rows not final, in the
     * order claims take them. */
    "ALTER TABLE outbound_recipients ADD COLUMN domain TEXT NOT NULL DEFAULT '';"
    "UPDATE outbound_recipients SET domain = CASE WHEN instr(rcpt, '@') = 0 THEN '' ELSE"
    "  lower(substr(rcpt, length(rtrim(rcpt, replace(rcpt, '@', ''))) + 1)) END;"
    "UPDATE outbound_recipients SET status = 'bounced' WHERE status = 'failed';"
    "DROP INDEX outbound_recipients_due;"
    "CREATE INDEX outbound_recipients_pending ON outbound_recipients(next_attempt_at, id)"
    "  WHERE status IN ('queued', 'sending', 'deferred');"
    "CREATE TABLE dkim_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
    "  selector TEXT NOT NULL,"
    "  algorithm TEXT NOT NULL,"
    "  key_path TEXT NOT NULL,"
    "  record TEXT NOT NULL,"
    "  status INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  retired_at INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (domain_id, selector));"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  message_id INTEGER NOT NULL DEFAULT 0,"   /* 0: about no message */
    "  type TEXT NOT NULL,"
    "  rcpt TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  json TEXT NOT NULL);"
    "CREATE INDEX events_message ON events(account_id, message_id, id);"
    "CREATE TABLE webhooks ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  url TEXT NOT NULL,"
    "  events TEXT NOT NULL DEFAULT '',"
    "  secret TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX webhooks_account ON webhooks(account_id, id);"
    "CREATE TABLE webhook_jobs ("
    "  id INTEGER PRIMARY KEY,"
    "  webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    "  event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL,"
    "  lease_until INTEGER NOT NULL DEFAULT 0);"   /* claimed until then; 0: not */
    "CREATE INDEX webhook_jobs_due ON webhook_jobs(next_attempt_at, id);"
    "CREATE INDEX webhook_jobs_webhook ON webhook_jobs(webhook_id);"
    "CREATE INDEX webhook_jobs_event ON webhook_jobs(event_id);"
    "CREATE TABLE suppressions ("
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  address TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  detail TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (account_id, address)) WITHOUT ROWID;"
    "CREATE TABLE secrets ("
    "  name TEXT PRIMARY KEY,"
    "  value BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL) WITHOUT ROWID;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- statements, prepared on first use and kept per handle ---- */

enum sid {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
    S_ACC_INSERT, S_ACC_GET, S_ACC_GET_NAME, S_ACC_UPDATE,
    S_CRED_INSERT, S_CRED_GET,
    S_DOM_INSERT, S_DOM_GET, S_DOM_FIND_VERIFIED, S_DOM_OWNER, S_DOM_VERIFIED_ELSEWHERE,
    S_DOM_UPDATE, S_DOM_LIST,
    S_SND_INSERT, S_SND_GET, S_SND_GET_TOKEN, S_SND_UPDATE,
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

#define ACC_COLS "id, name, sandbox, max_24h, max_rate, dmarc_report_only, created_at"
#define DOM_COLS "id, account_id, domain, status, verify_token, mail_from_domain, " \
                 "created_at, verified_at, checked_at"
#define SND_COLS "id, account_id, address, status, token, created_at, expires_at, verified_at"
#define INB_COLS "id, account_id, received_at, mail_from, rcpt_json, client_ip, helo, " \
                 "spf, dkim, dmarc, authres, quarantine, message_id, subject, from_hdr, size"
#define KEY_COLS "id, domain_id, selector, algorithm, key_path, record, status, " \
                 "created_at, retired_at"
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

static const char *const sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT store_op",
    [S_RELEASE] = "RELEASE store_op",
    [S_ROLLBACK_TO] = "ROLLBACK TO store_op",
    [S_ACC_INSERT] = "INSERT INTO accounts (name, sandbox, max_24h, max_rate, "
                     "dmarc_report_only, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_ACC_GET] = "SELECT " ACC_COLS " FROM accounts WHERE id = ?1",
    [S_ACC_GET_NAME] = "SELECT " ACC_COLS " FROM accounts WHERE name = ?1",
    [S_ACC_UPDATE] = "UPDATE accounts SET sandbox = ?2, max_24h = ?3, max_rate = ?4, "
                     "dmarc_report_only = ?5 WHERE id = ?1",
    [S_CRED_INSERT] = "INSERT INTO credentials (account_id, kind, lookup, hash, created_at) "
                      "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_CRED_GET] = "SELECT account_id, hash FROM credentials WHERE kind = ?1 AND lookup = ?2",
    [S_DOM_INSERT] = "INSERT INTO domains (account_id, domain, status, verify_token, "
                     "mail_from_domain, created_at, verified_at, checked_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_DOM_GET] = "SELECT " DOM_COLS " FROM domains WHERE account_id = ?1 AND domain = ?2",
    [S_DOM_FIND_VERIFIED] = "SELECT " DOM_COLS " FROM domains WHERE domain = ?1 AND status = 1",
    [S_DOM_OWNER] = "SELECT account_id, domain FROM domains WHERE id = ?1",
    [S_DOM_VERIFIED_ELSEWHERE] = "SELECT 1 FROM domains WHERE domain = ?1 AND status = 1 "
                                 "AND account_id <> ?2 LIMIT 1",
    [S_DOM_UPDATE] = "UPDATE domains SET status = ?2, verify_token = ?3, mail_from_domain = ?4, "
                     "verified_at = ?5, checked_at = ?6 WHERE id = ?1",
    [S_DOM_LIST] = "SELECT " DOM_COLS " FROM domains WHERE account_id = ?1 ORDER BY domain",
    [S_SND_INSERT] = "INSERT INTO senders (account_id, address, status, token, created_at, "
                     "expires_at, verified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_SND_GET] = "SELECT " SND_COLS " FROM senders WHERE account_id = ?1 AND address = ?2",
    [S_SND_GET_TOKEN] = "SELECT " SND_COLS " FROM senders WHERE token = ?1 AND token <> ''",
    [S_SND_UPDATE] = "UPDATE senders SET status = ?2, verified_at = ?3 WHERE id = ?1",
    [S_INB_INSERT] = "INSERT INTO inbound (account_id, received_at, mail_from, rcpt_json, "
                     "client_ip, helo, spf, dkim, dmarc, authres, quarantine, message_id, "
                     "subject, from_hdr, size, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                     "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    [S_INB_LIST] = "SELECT " INB_COLS " FROM inbound WHERE account_id = ?1 AND id < ?2 "
                   "ORDER BY id DESC LIMIT ?3",
    [S_INB_GET] = "SELECT " INB_COLS ", raw FROM inbound WHERE id = ?1 AND account_id = ?2",
    [S_INB_COUNT] = "SELECT COUNT(*) FROM inbound",
    [S_RULE_INSERT] = "INSERT INTO rules (account_id, position, json, created_at) "
                      "SELECT ?1, COALESCE(MAX(position), 0) + 1, ?2, ?3 "
                      "FROM rules WHERE account_id = ?1",
    [S_RULE_DELETE] = "DELETE FROM rules WHERE id = ?1 AND account_id = ?2",
    [S_RULE_LIST] = "SELECT id, account_id, position, json FROM rules WHERE account_id = ?1 "
                    "ORDER BY position, id",
    [S_OUT_MSG_INSERT] = "INSERT INTO outbound_messages (account_id, mail_from, message_id, "
                         "source, created_at, size, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_OUT_RCPT_INSERT] = "INSERT INTO outbound_recipients (message_id, rcpt, status, attempts, "
                          "next_attempt_at, last_response, updated_at, domain) "
                          "VALUES (?1, ?2, 'queued', 0, ?3, '', ?3, ?4)",
    [S_OUT_COUNT_SINCE] = "SELECT COUNT(*) FROM outbound_messages "
                          "WHERE account_id = ?1 AND created_at >= ?2",
    [S_OUT_OLDEST_SINCE] = "SELECT MIN(created_at) FROM outbound_messages "
                           "WHERE account_id = ?1 AND created_at >= ?2",
    [S_OUT_COUNT] = "SELECT COUNT(*) FROM outbound_recipients WHERE " RCPT_PENDING,
    [S_KEY_INSERT] = "INSERT INTO dkim_keys (domain_id, selector, algorithm, key_path, record, "
                     "status, created_at, retired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_KEY_UPDATE] = "UPDATE dkim_keys SET status = ?2, retired_at = ?3 WHERE id = ?1",
    [S_KEY_LIST] = "SELECT " KEY_COLS " FROM dkim_keys WHERE domain_id = ?1 "
                   "ORDER BY created_at, id",
    [S_DLV_DUE] = "SELECT " DLV_COLS " FROM " DLV_FROM " WHERE r." RCPT_PENDING
                  " AND r.next_attempt_at <= ?1 ORDER BY r.next_attempt_at, r.id LIMIT ?2",
    [S_DLV_MARK] = "UPDATE outbound_recipients SET status = 'sending', next_attempt_at = ?2 "
                   "WHERE id = ?1",
    [S_DLV_UPDATE] = "UPDATE outbound_recipients SET status = ?2, attempts = ?3, "
                     "next_attempt_at = ?4, last_response = ?5, updated_at = ?6 WHERE id = ?1",
    [S_DLV_NEXT_DUE] = "SELECT MIN(next_attempt_at) FROM outbound_recipients WHERE " RCPT_PENDING,
    [S_DLV_GET] = "SELECT " DLV_COLS " FROM " DLV_FROM " WHERE r.id = ?1",
    [S_OUT_GET_RAW] = "SELECT mail_from, raw FROM outbound_messages WHERE id = ?1",
    [S_OUT_GET] = "SELECT id, account_id, mail_from, message_id, created_at, source, "
                  "(SELECT COUNT(*) FROM outbound_recipients WHERE message_id = ?1) "
                  "FROM outbound_messages WHERE id = ?1 AND account_id = ?2",
    [S_OUT_RCPTS] = "SELECT " DLV_COLS " FROM " DLV_FROM " WHERE r.message_id = ?1 "
                    "ORDER BY r.id",
    [S_EVT_MSG_OWNER] = "SELECT 1 FROM outbound_messages WHERE id = ?1 AND account_id = ?2",
    [S_EVT_INSERT] = "INSERT INTO events (account_id, message_id, type, rcpt, created_at, json) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* the webhook's list, spaces dropped, holds the type between commas */
    [S_EVT_FANOUT] = "INSERT INTO webhook_jobs (webhook_id, event_id, attempts, next_attempt_at, "
                     "lease_until) SELECT id, ?2, 0, ?4, 0 FROM webhooks WHERE account_id = ?1 "
                     "AND (events = '' OR instr(',' || replace(events, ' ', '') || ',', "
                     "',' || ?3 || ',') > 0) ORDER BY id",
    [S_EVT_LIST] = "SELECT " EVT_COLS " FROM events WHERE account_id = ?1 AND message_id = ?2 "
                   "ORDER BY id",
    [S_WH_INSERT] = "INSERT INTO webhooks (account_id, url, events, secret, created_at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_WH_DELETE] = "DELETE FROM webhooks WHERE id = ?1 AND account_id = ?2",
    [S_WH_LIST] = "SELECT " WH_COLS " FROM webhooks WHERE account_id = ?1 ORDER BY id",
    [S_JOB_DUE] = "SELECT j.id, j.webhook_id, j.event_id, j.attempts, w.url, w.secret, e.json "
                  "FROM webhook_jobs j JOIN webhooks w ON w.id = j.webhook_id "
                  "JOIN events e ON e.id = j.event_id "
                  "WHERE j.next_attempt_at <= ?1 AND j.lease_until <= ?1 "
                  "ORDER BY j.next_attempt_at, j.id LIMIT ?2",
    [S_JOB_MARK] = "UPDATE webhook_jobs SET lease_until = ?2 WHERE id = ?1",
    [S_JOB_DELETE] = "DELETE FROM webhook_jobs WHERE id = ?1",
    [S_JOB_RETRY] = "UPDATE webhook_jobs SET attempts = ?2, next_attempt_at = ?3, "
                    "lease_until = 0 WHERE id = ?1",
    [S_SUP_PUT] = "INSERT INTO suppressions (" SUP_COLS ") VALUES (?1, ?2, ?3, ?4, ?5) "
                  "ON CONFLICT (account_id, address) DO UPDATE SET reason = excluded.reason, "
                  "detail = excluded.detail, created_at = excluded.created_at",
    [S_SUP_GET] = "SELECT " SUP_COLS " FROM suppressions WHERE account_id = ?1 AND address = ?2",
    [S_SUP_DELETE] = "DELETE FROM suppressions WHERE account_id = ?1 AND address = ?2",
    [S_SUP_LIST] = "SELECT " SUP_COLS " FROM suppressions WHERE account_id = ?1 AND address > ?2 "
                   "ORDER BY address LIMIT ?3",
    [S_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
    [S_SECRET_INSERT] = "INSERT OR IGNORE INTO secrets (name, value, created_at) "
                        "VALUES (?1, ?2, ?3)",
};

struct store {
    sqlite3 *db;
    bool in_tx;                   /* inside store_begin .. store_commit/rollback */
    sqlite3_stmt *stmts[S_COUNT];
};

/* ---- helpers ---- */

static int fail(struct store *st, const char *op, int rc)
{
    log_msg(LOG_ERROR, "store", "op=%s code=%d error=\"%s\"", op, rc, sqlite3_errmsg(st->db));
    return STORE_ERROR;
}

static sqlite3_stmt *stmt(struct store *st, enum sid id)
{
    if (id > S_ROLLBACK_TO && st->in_tx && sqlite3_get_autocommit(st->db)) {
        /* an error rolled the caller's transaction back: writing now would
         * commit on its own, outside the transaction the caller thinks it has */
        log_msg(LOG_ERROR, "store", "error=\"the transaction was rolled back\"");
        return NULL;
    }
    if (!st->stmts[id]) {
        int rc = sqlite3_prepare_v3(st->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &st->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            fail(st, "prepare", rc);
            st->stmts[id] = NULL;
        }
    }
    return st->stmts[id];
}

/* Every statement is reset after use, so no read snapshot stays open. */
static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Runs a statement that returns no rows. */
static int exec_stmt(struct store *st, enum sid id, const char *op)
{
    sqlite3_stmt *s = stmt(st, id);
    if (!s)
        return STORE_ERROR;
    int rc = sqlite3_step(s);
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(st, op, rc);
}

/* The outcome of a write statement's step. */
static int write_rc(struct store *st, const char *op, int rc)
{
    switch (rc) {
    case SQLITE_DONE:
        return STORE_OK;
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return STORE_EXISTS;
    case SQLITE_CONSTRAINT_FOREIGNKEY:   /* the account (or message) is not there */
        return STORE_NOTFOUND;
    default:
        return fail(st, op, rc);
    }
}

static int64_t now_or(int64_t t)
{
    return t ? t : (int64_t)time(NULL);
}

/* Binds the C string in an array of size bytes, never reading past it. */
static int bind_arr(sqlite3_stmt *s, int i, const char *arr, size_t size)
{
    return sqlite3_bind_text(s, i, arr, (int)strnlen(arr, size), SQLITE_STATIC);
}

static int bind_str(sqlite3_stmt *s, int i, const char *str)
{
    return sqlite3_bind_text(s, i, str ? str : "", -1, SQLITE_STATIC);
}

/* true when s is NULL or longer than max bytes (caller bugs: logged). */
static bool too_long(const char *what, const char *s, size_t max)
{
    if (s && strnlen(s, max + 1) <= max)
        return false;
    log_msg(LOG_ERROR, "store", "event=bad_value field=%s error=\"%s\"", what,
            s ? "too long" : "missing");
    return true;
}

static void col_text(sqlite3_stmt *s, int i, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
    char *p = malloc(n + 1);
    if (p) {
        if (n)
            memcpy(p, t, n);
        p[n] = '\0';
    }
    return p;
}

/* Lower-cases ASCII and drops one trailing dot: the form domains are kept in. */
static int norm_domain(const char *in, char *out, size_t size)
{
    size_t n = strnlen(in, DNS_MAX_NAME_LEN + 2);
    if (n && in[n - 1] == '.')
        n--;
    if (n == 0 || n > DNS_MAX_NAME_LEN || n >= size)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return 0;
}

/* "local@Domain" → "local@domain" (the local part is kept as given). */
static int norm_address(const char *in, char *out, size_t size)
{
    size_t n = strnlen(in, SMTP_MAX_PATH_LEN + 1);
    if (n == 0 || n > SMTP_MAX_PATH_LEN || n >= size)
        return -1;
    const char *at = memrchr(in, '@', n);
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        out[i] = (at && in + i > at && c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return 0;
}

/* The domain delivery routes a recipient by: the part after the last '@',
 * ASCII lower-cased ("" when there is no '@'). -1 when longer than a DNS name. */
static int rcpt_domain(const char *rcpt, char *out, size_t size)
{
    size_t n = strnlen(rcpt, SMTP_MAX_PATH_LEN + 1);
    const char *at = memrchr(rcpt, '@', n);
    const char *d = at ? at + 1 : rcpt + n;
    size_t dn = (size_t)(rcpt + n - d);
    if (dn > DNS_MAX_NAME_LEN || dn >= size)
        return -1;
    for (size_t i = 0; i < dn; i++)
        out[i] = (d[i] >= 'A' && d[i] <= 'Z') ? (char)(d[i] - 'A' + 'a') : d[i];
    out[dn] = '\0';
    return 0;
}

/* Several statements as one: a transaction of their own, or a savepoint
 * inside the caller's transaction. */
static int op_begin(struct store *st)
{
    if (st->in_tx && sqlite3_get_autocommit(st->db))
        return STORE_ERROR;
    return exec_stmt(st, st->in_tx ? S_SAVEPOINT : S_BEGIN, "op_begin");
}

static int op_end(struct store *st, int rc)
{
    if (rc == STORE_OK) {
        if (exec_stmt(st, st->in_tx ? S_RELEASE : S_COMMIT, "op_commit") == STORE_OK)
            return STORE_OK;
        rc = STORE_ERROR;
    }
    if (st->in_tx) {
        if (!sqlite3_get_autocommit(st->db)) {
            (void)exec_stmt(st, S_ROLLBACK_TO, "op_rollback");
            (void)exec_stmt(st, S_RELEASE, "op_rollback");
        }
    } else if (!sqlite3_get_autocommit(st->db)) {
        (void)exec_stmt(st, S_ROLLBACK, "op_rollback");
    }
    return rc;
}

/* ---- open, close, migrations ---- */

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n >= sizeof path) {
        snprintf(err, errlen, "data_dir is too long");
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        path[i] = saved;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    return 0;
}

/* Creates the database file 0600 (or tightens an existing one). */
/* Creates the database file 0600, or fixes the mode of an existing one,
 * without opening an existing file: closing any descriptor of the database
 * in this process would drop the POSIX locks every other SQLite connection
 * of the process holds on it ("How To Corrupt An SQLite Database File"
 * §2.2), and another process could then delete the live WAL. A new file is
 * opened and closed before any connection can exist on it. */
static int prepare_file(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
            return -1;
        }
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        if (fd >= 0)
            close(fd);
        if (lstat(path, &sb) != 0) {
            snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        return -1;
    }
    if ((sb.st_mode & 0777) != 0600) {
        if (chmod(path, 0600) != 0) {
            snprintf(err, errlen, "cannot make %s mode 0600: %s", path, strerror(errno));
            return -1;
        }
        if (sb.st_size > 0)
            log_msg(LOG_WARN, "store", "event=mode_fixed file=\"%s\" old_mode=%03o new_mode=600",
                    path, (unsigned)(sb.st_mode & 0777));
    }
    return 0;
}

static int user_version(struct store *st, int *v)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

static int migrate(struct store *st, char *err, size_t errlen)
{
    int v = 0, rc = user_version(st, &v);
    if (rc == SQLITE_OK && v == SCHEMA_VERSION)
        return 0;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot read the schema version: %s", sqlite3_errmsg(st->db));
        return -1;
    }
    /* Read again under the write lock: another process may have migrated. */
    rc = user_version(st, &v);
    if (rc == SQLITE_OK && v > SCHEMA_VERSION) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        snprintf(err, errlen, "the database schema (version %d) is newer than this sesame "
                 "(version %d)", v, SCHEMA_VERSION);
        return -1;
    }
    for (int from = v; rc == SQLITE_OK && from < SCHEMA_VERSION; from++) {
        char setv[64];
        rc = sqlite3_exec(st->db, migrations[from], NULL, NULL, NULL);
        snprintf(setv, sizeof setv, "PRAGMA user_version = %d", from + 1);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(st->db, setv, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            log_msg(LOG_INFO, "store", "event=migrated schema_version=%d", from + 1);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "schema migration failed: %s", sqlite3_errmsg(st->db));
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int set_pragmas(struct store *st, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(s, 0);
            rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_ERROR;
            if (rc != SQLITE_OK) {
                snprintf(err, errlen, "the database cannot use WAL mode");
                sqlite3_finalize(s);
                return -1;
            }
        }
        sqlite3_finalize(s);
    }
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
             "PRAGMA journal_size_limit = %d", STORE_WAL_SIZE_LIMIT);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(st->db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot set up the database: %s", sqlite3_errmsg(st->db));
        return -1;
    }
    return 0;
}

struct store *store_open(const char *url, const char *data_dir, char *err, size_t errlen)
{
    if (url && url[0] && strcmp(url, "sqlite") != 0) {
        if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
            snprintf(err, errlen, "the PostgreSQL store is not built yet; use store = sqlite");
        else  /* not echoed: a mistyped URL may hold a password */
            snprintf(err, errlen, "store must be sqlite or a postgresql:// URL");
        return NULL;
    }
    if (!data_dir || !data_dir[0]) {
        snprintf(err, errlen, "no data_dir");
        return NULL;
    }
    if (!sqlite3_threadsafe()) {
        snprintf(err, errlen, "this SQLite library is built without thread support");
        return NULL;
    }
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", data_dir, STORE_DB_FILE) >= sizeof path) {
        snprintf(err, errlen, "data_dir is too long");
        return NULL;
    }
    if (mkdir_p(data_dir, err, errlen) != 0 || prepare_file(path, err, errlen) != 0)
        return NULL;
    struct store *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        store_close(st);
        return NULL;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
    if (set_pragmas(st, err, errlen) != 0 || migrate(st, err, errlen) != 0) {
        store_close(st);
        return NULL;
    }
    return st;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->db && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    if (st->db) {
        sqlite3_exec(st->db, "PRAGMA optimize", NULL, NULL, NULL);
        sqlite3_close(st->db);
    }
    free(st);
}

/* ---- explicit transactions ---- */

int store_begin(struct store *st)
{
    if (st->in_tx) {
        log_msg(LOG_ERROR, "store", "op=begin error=\"a transaction is already open\"");
        return STORE_ERROR;
    }
    if (exec_stmt(st, S_BEGIN, "begin") != STORE_OK)
        return STORE_ERROR;
    st->in_tx = true;
    return STORE_OK;
}

int store_commit(struct store *st)
{
    if (!st->in_tx) {
        log_msg(LOG_ERROR, "store", "op=commit error=\"no transaction is open\"");
        return STORE_ERROR;
    }
    st->in_tx = false;
    if (sqlite3_get_autocommit(st->db)) {
        /* an error inside the transaction made SQLite roll it back */
        log_msg(LOG_ERROR, "store", "op=commit error=\"the transaction was rolled back\"");
        return STORE_ERROR;
    }
    if (exec_stmt(st, S_COMMIT, "commit") == STORE_OK)
        return STORE_OK;
    if (!sqlite3_get_autocommit(st->db))
        (void)exec_stmt(st, S_ROLLBACK, "rollback");
    return STORE_ERROR;
}

int store_savepoint(struct store *st)
{
    if (!st->in_tx)
        return STORE_ERROR;
    return exec_stmt(st, S_SAVEPOINT, "savepoint");
}

int store_savepoint_end(struct store *st, bool keep)
{
    if (!st->in_tx || sqlite3_get_autocommit(st->db))
        return STORE_ERROR;
    if (keep)
        return exec_stmt(st, S_RELEASE, "savepoint_release");
    int rc = exec_stmt(st, S_ROLLBACK_TO, "savepoint_rollback");
    if (exec_stmt(st, S_RELEASE, "savepoint_rollback") != STORE_OK)
        rc = STORE_ERROR;
    return rc;
}

void store_rollback(struct store *st)
{
    if (!st->in_tx)
        return;
    st->in_tx = false;
    if (!sqlite3_get_autocommit(st->db))
        (void)exec_stmt(st, S_ROLLBACK, "rollback");
}

/* ---- accounts ---- */

int store_account_insert(struct store *st, struct store_account *a)
{
    if (too_long("account.name", a->name, STORE_NAME_MAX) || !a->name[0])
        return STORE_ERROR;
    sqlite3_stmt *s = stmt(st, S_ACC_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = now_or(a->created_at);
    bind_arr(s, 1, a->name, sizeof a->name);
    sqlite3_bind_int(s, 2, a->sandbox);
    sqlite3_bind_int64(s, 3, a->max_24h);
    sqlite3_bind_int64(s, 4, a->max_rate);
    sqlite3_bind_int(s, 5, a->dmarc_report_only);
    sqlite3_bind_int64(s, 6, created);
    int rc = write_rc(st, "account_insert", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK) {
        a->id = sqlite3_last_insert_rowid(st->db);
        a->created_at = created;
    }
    return rc;
}

static void read_account(sqlite3_stmt *s, struct store_account *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, out->name, sizeof out->name);
    out->sandbox = sqlite3_column_int(s, 2) != 0;
    out->max_24h = (uint32_t)sqlite3_column_int64(s, 3);
    out->max_rate = (uint32_t)sqlite3_column_int64(s, 4);
    out->dmarc_report_only = sqlite3_column_int(s, 5) != 0;
    out->created_at = sqlite3_column_int64(s, 6);
}

/* Steps a statement expected to return at most one row, read by fn. */
static int get_one(struct store *st, sqlite3_stmt *s, const char *op,
                   void (*fn)(sqlite3_stmt *, void *), void *out)
{
    int rc = sqlite3_step(s);
    int ret;
    if (rc == SQLITE_ROW) {
        fn(s, out);
        ret = STORE_OK;
    } else if (rc == SQLITE_DONE) {
        ret = STORE_NOTFOUND;
    } else {
        ret = fail(st, op, rc);
    }
    done(s);
    return ret;
}

static void read_account_cb(sqlite3_stmt *s, void *out) { read_account(s, out); }

int store_account_get(struct store *st, int64_t id, struct store_account *out)
{
    sqlite3_stmt *s = stmt(st, S_ACC_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return get_one(st, s, "account_get", read_account_cb, out);
}

int store_account_get_by_name(struct store *st, const char *name, struct store_account *out)
{
    if (!name || strnlen(name, STORE_NAME_MAX + 1) > STORE_NAME_MAX)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = stmt(st, S_ACC_GET_NAME);
    if (!s)
        return STORE_ERROR;
    bind_str(s, 1, name);
    return get_one(st, s, "account_get_by_name", read_account_cb, out);
}

int store_account_update(struct store *st, const struct store_account *a)
{
    sqlite3_stmt *s = stmt(st, S_ACC_UPDATE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int(s, 2, a->sandbox);
    sqlite3_bind_int64(s, 3, a->max_24h);
    sqlite3_bind_int64(s, 4, a->max_rate);
    sqlite3_bind_int(s, 5, a->dmarc_report_only);
    int rc = write_rc(st, "account_update", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

/* ---- credentials ---- */

int store_credential_insert(struct store *st, int64_t account_id, enum store_cred_kind kind,
                            const char *lookup, const char *hash)
{
    if (too_long("credential.lookup", lookup, STORE_LOOKUP_MAX) ||
        too_long("credential.hash", hash, STORE_HASH_MAX))
        return STORE_ERROR;
    sqlite3_stmt *s = stmt(st, S_CRED_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int(s, 2, (int)kind);
    bind_str(s, 3, lookup);
    bind_str(s, 4, hash);
    sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
    int rc = write_rc(st, "credential_insert", sqlite3_step(s));
    done(s);
    return rc;
}

int store_credential_get(struct store *st, enum store_cred_kind kind, const char *lookup,
                         int64_t *account_id, char *hash, size_t hashlen)
{
    if (!lookup || strnlen(lookup, STORE_LOOKUP_MAX + 1) > STORE_LOOKUP_MAX)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = stmt(st, S_CRED_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, (int)kind);
    bind_str(s, 2, lookup);
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 1);
        const unsigned char *h = sqlite3_column_text(s, 1);
        if (!h || n >= hashlen) {
            log_msg(LOG_ERROR, "store", "op=credential_get error=\"hash does not fit\"");
            ret = STORE_ERROR;
        } else {
            memcpy(hash, h, n + 1);
            *account_id = sqlite3_column_int64(s, 0);
            ret = STORE_OK;
        }
    } else {
        ret = rc == SQLITE_DONE ? STORE_NOTFOUND : fail(st, "credential_get", rc);
    }
    done(s);
    return ret;
}

/* ---- domains ---- */

static void read_domain(sqlite3_stmt *s, void *p)
{
    struct store_domain *d = p;
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(s, 0);
    d->account_id = sqlite3_column_int64(s, 1);
    col_text(s, 2, d->domain, sizeof d->domain);
    d->status = sqlite3_column_int(s, 3);
    col_text(s, 4, d->verify_token, sizeof d->verify_token);
    col_text(s, 5, d->mail_from_domain, sizeof d->mail_from_domain);
    d->created_at = sqlite3_column_int64(s, 6);
    d->verified_at = sqlite3_column_int64(s, 7);
    d->checked_at = sqlite3_column_int64(s, 8);
}

int store_domain_insert(struct store *st, struct store_domain *d)
{
    char dom[DNS_MAX_NAME_LEN + 1];
    if (norm_domain(d->domain, dom, sizeof dom) != 0) {
        log_msg(LOG_ERROR, "store", "op=domain_insert error=\"bad domain\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = stmt(st, S_DOM_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = now_or(d->created_at);
    sqlite3_bind_int64(s, 1, d->account_id);
    bind_str(s, 2, dom);
    sqlite3_bind_int(s, 3, d->status);
    bind_arr(s, 4, d->verify_token, sizeof d->verify_token);
    bind_arr(s, 5, d->mail_from_domain, sizeof d->mail_from_domain);
    sqlite3_bind_int64(s, 6, created);
    sqlite3_bind_int64(s, 7, d->verified_at);
    sqlite3_bind_int64(s, 8, d->checked_at);
    int rc = write_rc(st, "domain_insert", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK) {
        d->id = sqlite3_last_insert_rowid(st->db);
        d->created_at = created;
        memcpy(d->domain, dom, strlen(dom) + 1);
    }
    return rc;
}

int store_domain_get(struct store *st, int64_t account_id, const char *domain,
                     struct store_domain *out)
{
    char dom[DNS_MAX_NAME_LEN + 1];
    if (!domain || norm_domain(domain, dom, sizeof dom) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = stmt(st, S_DOM_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    bind_str(s, 2, dom);
    return get_one(st, s, "domain_get", read_domain, out);
}

int store_domain_find_verified(struct store *st, const char *domain, struct store_domain *out)
{
    char dom[DNS_MAX_NAME_LEN + 1];
    if (!domain || norm_domain(domain, dom, sizeof dom) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = stmt(st, S_DOM_FIND_VERIFIED);
    if (!s)
        return STORE_ERROR;
    bind_str(s, 1, dom);
    return get_one(st, s, "domain_find_verified", read_domain, out);
}

struct owner {
    int64_t account_id;
    char domain[DNS_MAX_NAME_LEN + 1];
};

static void read_owner(sqlite3_stmt *s, void *p)
{
    struct owner *o = p;
    o->account_id = sqlite3_column_int64(s, 0);
    col_text(s, 1, o->domain, sizeof o->domain);
}

static int domain_update_locked(struct store *st, const struct store_domain *d)
{
    struct owner o;
    sqlite3_stmt *s = stmt(st, S_DOM_OWNER);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, d->id);
    int rc = get_one(st, s, "domain_update", read_owner, &o);
    if (rc != STORE_OK)
        return rc;
    if (d->status == STORE_ID_VERIFIED) {
        if (!(s = stmt(st, S_DOM_VERIFIED_ELSEWHERE)))
            return STORE_ERROR;
        bind_str(s, 1, o.domain);
        sqlite3_bind_int64(s, 2, o.account_id);
        rc = sqlite3_step(s);
        done(s);
        if (rc == SQLITE_ROW)
            return STORE_EXISTS;
        if (rc != SQLITE_DONE)
            return fail(st, "domain_update", rc);
    }
    if (!(s = stmt(st, S_DOM_UPDATE)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, d->id);
    sqlite3_bind_int(s, 2, d->status);
    bind_arr(s, 3, d->verify_token, sizeof d->verify_token);
    bind_arr(s, 4, d->mail_from_domain, sizeof d->mail_from_domain);
    sqlite3_bind_int64(s, 5, d->verified_at);
    sqlite3_bind_int64(s, 6, d->checked_at);
    rc = write_rc(st, "domain_update", sqlite3_step(s));
    done(s);
    return rc;
}

int store_domain_update(struct store *st, const struct store_domain *d)
{
    if (op_begin(st) != STORE_OK)
        return STORE_ERROR;
    return op_end(st, domain_update_locked(st, d));
}

int store_domain_list(struct store *st, int64_t account_id, store_domain_cb cb, void *arg)
{
    sqlite3_stmt *s = stmt(st, S_DOM_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_domain d;
        read_domain(s, &d);
        if (cb(&d, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(st, "domain_list", rc);
}

/* ---- senders ---- */

static void read_sender(sqlite3_stmt *s, void *p)
{
    struct store_sender *x = p;
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(s, 0);
    x->account_id = sqlite3_column_int64(s, 1);
    col_text(s, 2, x->address, sizeof x->address);
    x->status = sqlite3_column_int(s, 3);
    col_text(s, 4, x->token, sizeof x->token);
    x->created_at = sqlite3_column_int64(s, 5);
    x->expires_at = sqlite3_column_int64(s, 6);
    x->verified_at = sqlite3_column_int64(s, 7);
}

int store_sender_insert(struct store *st, struct store_sender *x)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (norm_address(x->address, addr, sizeof addr) != 0 ||
        too_long("sender.token", x->token, STORE_TOKEN_MAX)) {
        log_msg(LOG_ERROR, "store", "op=sender_insert error=\"bad address or token\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = stmt(st, S_SND_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = now_or(x->created_at);
    sqlite3_bind_int64(s, 1, x->account_id);
    bind_str(s, 2, addr);
    sqlite3_bind_int(s, 3, x->status);
    bind_arr(s, 4, x->token, sizeof x->token);
    sqlite3_bind_int64(s, 5, created);
    sqlite3_bind_int64(s, 6, x->expires_at);
    sqlite3_bind_int64(s, 7, x->verified_at);
    int rc = write_rc(st, "sender_insert", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK) {
        x->id = sqlite3_last_insert_rowid(st->db);
        x->created_at = created;
        memcpy(x->address, addr, strlen(addr) + 1);
    }
    return rc;
}

int store_sender_get(struct store *st, int64_t account_id, const char *address,
                     struct store_sender *out)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (!address || norm_address(address, addr, sizeof addr) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = stmt(st, S_SND_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    bind_str(s, 2, addr);
    return get_one(st, s, "sender_get", read_sender, out);
}

int store_sender_get_by_token(struct store *st, const char *token, struct store_sender *out)
{
    if (!token || !token[0] || strnlen(token, STORE_TOKEN_MAX + 1) > STORE_TOKEN_MAX)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = stmt(st, S_SND_GET_TOKEN);
    if (!s)
        return STORE_ERROR;
    bind_str(s, 1, token);
    return get_one(st, s, "sender_get_by_token", read_sender, out);
}

int store_sender_update(struct store *st, const struct store_sender *x)
{
    sqlite3_stmt *s = stmt(st, S_SND_UPDATE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, x->id);
    sqlite3_bind_int(s, 2, x->status);
    sqlite3_bind_int64(s, 3, x->verified_at);
    int rc = write_rc(st, "sender_update", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

/* ---- received mail ---- */

int store_inbound_insert(struct store *st, const struct store_inbound *m,
                         const char *raw, size_t len, int64_t *id)
{
    sqlite3_stmt *s = stmt(st, S_INB_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, m->account_id);
    sqlite3_bind_int64(s, 2, now_or(m->received_at));
    bind_arr(s, 3, m->mail_from, sizeof m->mail_from);
    bind_str(s, 4, m->rcpt_json ? m->rcpt_json : "[]");
    bind_arr(s, 5, m->client_ip, sizeof m->client_ip);
    bind_arr(s, 6, m->helo, sizeof m->helo);
    bind_arr(s, 7, m->spf, sizeof m->spf);
    bind_arr(s, 8, m->dkim, sizeof m->dkim);
    bind_arr(s, 9, m->dmarc, sizeof m->dmarc);
    bind_str(s, 10, m->authres);
    sqlite3_bind_int(s, 11, m->quarantine);
    bind_arr(s, 12, m->message_id, sizeof m->message_id);
    bind_arr(s, 13, m->subject, sizeof m->subject);
    bind_arr(s, 14, m->from, sizeof m->from);
    sqlite3_bind_int64(s, 15, (int64_t)len);
    sqlite3_bind_blob64(s, 16, raw && len ? raw : "", raw ? len : 0, SQLITE_STATIC);
    int rc = write_rc(st, "inbound_insert", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

/* Fills m from a row of INB_COLS; the heap fields are malloc'd. */
static int read_inbound(sqlite3_stmt *s, struct store_inbound *m)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(s, 0);
    m->account_id = sqlite3_column_int64(s, 1);
    m->received_at = sqlite3_column_int64(s, 2);
    col_text(s, 3, m->mail_from, sizeof m->mail_from);
    m->rcpt_json = col_dup(s, 4);
    col_text(s, 5, m->client_ip, sizeof m->client_ip);
    col_text(s, 6, m->helo, sizeof m->helo);
    col_text(s, 7, m->spf, sizeof m->spf);
    col_text(s, 8, m->dkim, sizeof m->dkim);
    col_text(s, 9, m->dmarc, sizeof m->dmarc);
    m->authres = col_dup(s, 10);
    m->quarantine = sqlite3_column_int(s, 11) != 0;
    col_text(s, 12, m->message_id, sizeof m->message_id);
    col_text(s, 13, m->subject, sizeof m->subject);
    col_text(s, 14, m->from, sizeof m->from);
    m->size = (size_t)sqlite3_column_int64(s, 15);
    if (!m->rcpt_json || !m->authres) {
        store_inbound_free(m);
        log_msg(LOG_ERROR, "store", "op=inbound_read error=\"out of memory\"");
        return STORE_ERROR;
    }
    return STORE_OK;
}

int store_inbound_list(struct store *st, int64_t account_id, int64_t before_id, unsigned limit,
                       store_inbound_cb cb, void *arg)
{
    sqlite3_stmt *s = stmt(st, S_INB_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int64(s, 3, limit);
    int rc, ret = STORE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_inbound m;
        if ((ret = read_inbound(s, &m)) != STORE_OK)
            break;
        int stop = cb(&m, arg);
        store_inbound_free(&m);
        if (stop)
            break;
    }
    if (ret == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = fail(st, "inbound_list", rc);
    done(s);
    return ret;
}

int store_inbound_get(struct store *st, int64_t account_id, int64_t id,
                      struct store_inbound *meta, char **raw, size_t *len)
{
    sqlite3_stmt *s = stmt(st, S_INB_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, account_id);
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW) {
        struct store_inbound m;
        ret = read_inbound(s, &m);
        if (ret == STORE_OK && raw) {
            const void *b = sqlite3_column_blob(s, 16);
            size_t n = (size_t)sqlite3_column_bytes(s, 16);
            char *p = malloc(n + 1);
            if (!p) {
                log_msg(LOG_ERROR, "store", "op=inbound_get error=\"out of memory\"");
                store_inbound_free(&m);
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
        if (ret == STORE_OK) {
            if (meta)
                *meta = m;
            else
                store_inbound_free(&m);
        }
    } else {
        ret = rc == SQLITE_DONE ? STORE_NOTFOUND : fail(st, "inbound_get", rc);
    }
    done(s);
    return ret;
}

static int count(struct store *st, enum sid id, const char *op, int64_t a, int64_t b, int64_t *n)
{
    sqlite3_stmt *s = stmt(st, id);
    if (!s)
        return STORE_ERROR;
    if (sqlite3_bind_parameter_count(s) >= 2) {
        sqlite3_bind_int64(s, 1, a);
        sqlite3_bind_int64(s, 2, b);
    }
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    done(s);
    return rc == SQLITE_ROW ? STORE_OK : fail(st, op, rc);
}

int store_inbound_count(struct store *st, int64_t *n)
{
    return count(st, S_INB_COUNT, "inbound_count", 0, 0, n);
}

void store_inbound_free(struct store_inbound *m)
{
    if (!m)
        return;
    free(m->rcpt_json);
    free(m->authres);
    m->rcpt_json = NULL;
    m->authres = NULL;
}

/* ---- receiving rules ---- */

int store_rule_insert(struct store *st, int64_t account_id, const char *json, int64_t *id)
{
    if (!json)
        return STORE_ERROR;
    sqlite3_stmt *s = stmt(st, S_RULE_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    bind_str(s, 2, json);
    sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
    int rc = write_rc(st, "rule_insert", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int store_rule_delete(struct store *st, int64_t account_id, int64_t id)
{
    sqlite3_stmt *s = stmt(st, S_RULE_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, account_id);
    int rc = write_rc(st, "rule_delete", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_rule_list(struct store *st, int64_t account_id, store_rule_cb cb, void *arg)
{
    sqlite3_stmt *s = stmt(st, S_RULE_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *json = (const char *)sqlite3_column_text(s, 3);
        struct store_rule r = {
            .id = sqlite3_column_int64(s, 0),
            .account_id = sqlite3_column_int64(s, 1),
            .position = sqlite3_column_int64(s, 2),
            .json = json ? json : "",
        };
        if (cb(&r, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(st, "rule_list", rc);
}

/* ---- outbound queue ---- */

static int outbound_insert_locked(struct store *st, struct store_outbound *m, const char *raw,
                                  size_t len, int64_t created)
{
    sqlite3_stmt *s = stmt(st, S_OUT_MSG_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, m->account_id);
    bind_arr(s, 2, m->mail_from, sizeof m->mail_from);
    bind_arr(s, 3, m->message_id, sizeof m->message_id);
    bind_str(s, 4, m->source ? m->source : "api");
    sqlite3_bind_int64(s, 5, created);
    sqlite3_bind_int64(s, 6, (int64_t)len);
    sqlite3_bind_blob64(s, 7, raw && len ? raw : "", raw ? len : 0, SQLITE_STATIC);
    int rc = write_rc(st, "outbound_insert", sqlite3_step(s));
    done(s);
    if (rc != STORE_OK)
        return rc;
    int64_t msg = sqlite3_last_insert_rowid(st->db);
    if (!(s = stmt(st, S_OUT_RCPT_INSERT)))
        return STORE_ERROR;
    for (size_t i = 0; i < m->nrcpt && rc == STORE_OK; i++) {
        char dom[DNS_MAX_NAME_LEN + 1];
        if (rcpt_domain(m->rcpts[i], dom, sizeof dom) != 0)
            return STORE_ERROR;         /* checked by the caller */
        sqlite3_bind_int64(s, 1, msg);
        bind_str(s, 2, m->rcpts[i]);
        sqlite3_bind_int64(s, 3, created);
        bind_str(s, 4, dom);
        rc = write_rc(st, "outbound_insert", sqlite3_step(s));
        done(s);
    }
    if (rc == STORE_OK)
        m->id = msg;
    return rc;
}

int store_outbound_insert(struct store *st, struct store_outbound *m, const char *raw, size_t len)
{
    if (m->nrcpt == 0 || !m->rcpts) {
        log_msg(LOG_ERROR, "store", "op=outbound_insert error=\"no recipients\"");
        return STORE_ERROR;
    }
    for (size_t i = 0; i < m->nrcpt; i++) {
        char dom[DNS_MAX_NAME_LEN + 1];
        if (too_long("outbound.rcpt", m->rcpts[i], SMTP_MAX_PATH_LEN))
            return STORE_ERROR;
        if (rcpt_domain(m->rcpts[i], dom, sizeof dom) != 0) {
            log_msg(LOG_ERROR, "store", "op=outbound_insert error=\"recipient domain too long\"");
            return STORE_ERROR;
        }
    }
    int64_t created = now_or(m->created_at);
    if (op_begin(st) != STORE_OK)
        return STORE_ERROR;
    int rc = op_end(st, outbound_insert_locked(st, m, raw, len, created));
    if (rc == STORE_OK)
        m->created_at = created;
    return rc;
}

int store_outbound_oldest_since(struct store *st, int64_t account_id, int64_t since, int64_t *at)
{
    sqlite3_stmt *s = stmt(st, S_OUT_OLDEST_SINCE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, since);
    int rc = sqlite3_step(s);
    int out = STORE_NOTFOUND;
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        *at = sqlite3_column_int64(s, 0);
        out = STORE_OK;
    }
    done(s);
    return rc == SQLITE_ROW ? out : fail(st, "outbound_oldest_since", rc);
}

int store_outbound_count_since(struct store *st, int64_t account_id, int64_t since, int64_t *n)
{
    return count(st, S_OUT_COUNT_SINCE, "outbound_count_since", account_id, since, n);
}

int store_outbound_count(struct store *st, int64_t *n)
{
    return count(st, S_OUT_COUNT, "outbound_count", 0, 0, n);
}

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
static int write_one(struct store *st, sqlite3_stmt *s, const char *op)
{
    int rc = write_rc(st, op, sqlite3_step(s));
    done(s);
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

/* ---- DKIM keys ---- */

static void read_key(sqlite3_stmt *s, struct store_dkim_key *k)
{
    memset(k, 0, sizeof *k);
    k->id = sqlite3_column_int64(s, 0);
    k->domain_id = sqlite3_column_int64(s, 1);
    col_text(s, 2, k->selector, sizeof k->selector);
    col_text(s, 3, k->algorithm, sizeof k->algorithm);
    col_text(s, 4, k->key_path, sizeof k->key_path);
    col_text(s, 5, k->record, sizeof k->record);
    k->status = sqlite3_column_int(s, 6);
    k->created_at = sqlite3_column_int64(s, 7);
    k->retired_at = sqlite3_column_int64(s, 8);
}

int store_dkim_key_insert(struct store *st, struct store_dkim_key *k)
{
    if (!k->selector[0] || !k->algorithm[0] || !k->key_path[0] ||
        too_long("dkim_key.selector", k->selector, sizeof k->selector - 1) ||
        too_long("dkim_key.algorithm", k->algorithm, sizeof k->algorithm - 1) ||
        too_long("dkim_key.key_path", k->key_path, sizeof k->key_path - 1) ||
        too_long("dkim_key.record", k->record, sizeof k->record - 1)) {
        log_msg(LOG_ERROR, "store", "op=dkim_key_insert error=\"bad key fields\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = stmt(st, S_KEY_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = now_or(k->created_at);
    sqlite3_bind_int64(s, 1, k->domain_id);
    bind_arr(s, 2, k->selector, sizeof k->selector);
    bind_arr(s, 3, k->algorithm, sizeof k->algorithm);
    bind_arr(s, 4, k->key_path, sizeof k->key_path);
    bind_arr(s, 5, k->record, sizeof k->record);
    sqlite3_bind_int(s, 6, k->status);
    sqlite3_bind_int64(s, 7, created);
    sqlite3_bind_int64(s, 8, k->retired_at);
    int rc = write_rc(st, "dkim_key_insert", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK) {
        k->id = sqlite3_last_insert_rowid(st->db);
        k->created_at = created;
    }
    return rc;
}

int store_dkim_key_update(struct store *st, const struct store_dkim_key *k)
{
    sqlite3_stmt *s = stmt(st, S_KEY_UPDATE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, k->id);
    sqlite3_bind_int(s, 2, k->status);
    sqlite3_bind_int64(s, 3, k->retired_at);
    return write_one(st, s, "dkim_key_update");
}

int store_dkim_key_list(struct store *st, int64_t domain_id, store_dkim_key_cb cb, void *arg)
{
    sqlite3_stmt *s = stmt(st, S_KEY_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, domain_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_dkim_key k;
        read_key(s, &k);
        if (cb(&k, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(st, "dkim_key_list", rc);
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
    col_text(s, 3, d->rcpt, sizeof d->rcpt);
    col_text(s, 4, d->domain, sizeof d->domain);
    col_text(s, 5, d->mail_from, sizeof d->mail_from);
    d->status = rcpt_status_of(sqlite3_column_text(s, 6));
    d->attempts = (unsigned)sqlite3_column_int64(s, 7);
    d->created_at = sqlite3_column_int64(s, 8);
    d->next_attempt_at = sqlite3_column_int64(s, 9);
    d->updated_at = sqlite3_column_int64(s, 10);
    col_text(s, 11, d->last_response, sizeof d->last_response);
}

/* Selects up to max due rows and leases them, in the caller's (savepoint or)
 * transaction; *out is malloc'd, the rows as they are after the claim. */
static int delivery_claim_locked(struct store *st, int64_t now, int64_t lease_until,
                                 unsigned max, struct store_delivery **out, size_t *n)
{
    sqlite3_stmt *s = stmt(st, S_DLV_DUE);
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
                done(s);
                log_msg(LOG_ERROR, "store", "op=delivery_claim error=\"out of memory\"");
                return STORE_ERROR;
            }
            *out = p;
            cap = ncap;
        }
        read_delivery(s, &(*out)[*n]);
        (*n)++;
    }
    done(s);
    if (rc != SQLITE_DONE)
        return fail(st, "delivery_claim", rc);
    if (*n && !(s = stmt(st, S_DLV_MARK)))
        return STORE_ERROR;
    for (size_t i = 0; i < *n; i++) {
        sqlite3_bind_int64(s, 1, (*out)[i].rcpt_id);
        sqlite3_bind_int64(s, 2, lease_until);
        rc = write_rc(st, "delivery_claim", sqlite3_step(s));
        done(s);
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
    if (op_begin(st) != STORE_OK)
        return STORE_ERROR;
    int rc = op_end(st, delivery_claim_locked(st, now, lease_until, max, &rows, &n));
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
    sqlite3_stmt *s = stmt(st, S_DLV_UPDATE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, rcpt_id);
    bind_str(s, 2, rcpt_status_names[status]);
    sqlite3_bind_int64(s, 3, attempts);
    sqlite3_bind_int64(s, 4, next_attempt_at);
    sqlite3_bind_text(s, 5, resp, (int)utf8_fit(resp, STORE_RESPONSE_MAX), SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, now_or(now));
    return write_one(st, s, "delivery_update");
}

int store_delivery_next_due(struct store *st, int64_t *when)
{
    sqlite3_stmt *s = stmt(st, S_DLV_NEXT_DUE);
    if (!s)
        return STORE_ERROR;
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        *when = sqlite3_column_int64(s, 0);
        ret = STORE_OK;
    } else {
        ret = rc == SQLITE_ROW ? STORE_NOTFOUND : fail(st, "delivery_next_due", rc);
    }
    done(s);
    return ret;
}

int store_delivery_get(struct store *st, int64_t rcpt_id, struct store_delivery *out)
{
    sqlite3_stmt *s = stmt(st, S_DLV_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, rcpt_id);
    return get_one(st, s, "delivery_get", read_delivery, out);
}

int store_outbound_get_raw(struct store *st, int64_t message_id, char **raw, size_t *len,
                           char *mail_from, size_t mflen)
{
    sqlite3_stmt *s = stmt(st, S_OUT_GET_RAW);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, message_id);
    int rc = sqlite3_step(s), ret = STORE_OK;
    if (rc != SQLITE_ROW) {
        done(s);
        return rc == SQLITE_DONE ? STORE_NOTFOUND : fail(st, "outbound_get_raw", rc);
    }
    size_t mn = (size_t)sqlite3_column_bytes(s, 0);
    if (mail_from) {
        if (mn >= mflen) {
            log_msg(LOG_ERROR, "store", "op=outbound_get_raw error=\"mail_from does not fit\"");
            ret = STORE_ERROR;
        } else {
            col_text(s, 0, mail_from, mflen);
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
    done(s);
    return ret;
}

int store_outbound_get(struct store *st, int64_t account_id, int64_t message_id,
                       struct store_outbound *meta,
                       int (*cb)(const struct store_delivery *d, void *arg), void *arg)
{
    sqlite3_stmt *s = stmt(st, S_OUT_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, message_id);
    sqlite3_bind_int64(s, 2, account_id);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        done(s);
        return rc == SQLITE_DONE ? STORE_NOTFOUND : fail(st, "outbound_get", rc);
    }
    if (meta) {
        memset(meta, 0, sizeof *meta);
        meta->id = sqlite3_column_int64(s, 0);
        meta->account_id = sqlite3_column_int64(s, 1);
        col_text(s, 2, meta->mail_from, sizeof meta->mail_from);
        col_text(s, 3, meta->message_id, sizeof meta->message_id);
        meta->created_at = sqlite3_column_int64(s, 4);
        const unsigned char *src = sqlite3_column_text(s, 5);
        meta->source = src && strcmp((const char *)src, "smtp") == 0 ? "smtp" : "api";
        meta->rcpts = NULL;
        meta->nrcpt = (size_t)sqlite3_column_int64(s, 6);
    }
    done(s);
    if (!cb)
        return STORE_OK;
    if (!(s = stmt(st, S_OUT_RCPTS)))
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
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(st, "outbound_get", rc);
}

/* ---- events ---- */

static int event_insert_locked(struct store *st, struct store_event *e, int64_t created)
{
    sqlite3_stmt *s;
    int rc;
    if (e->message_id != 0) {       /* only about a message of the same account */
        if (!(s = stmt(st, S_EVT_MSG_OWNER)))
            return STORE_ERROR;
        sqlite3_bind_int64(s, 1, e->message_id);
        sqlite3_bind_int64(s, 2, e->account_id);
        rc = sqlite3_step(s);
        done(s);
        if (rc == SQLITE_DONE)
            return STORE_NOTFOUND;
        if (rc != SQLITE_ROW)
            return fail(st, "event_insert", rc);
    }
    if (!(s = stmt(st, S_EVT_INSERT)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->account_id);
    sqlite3_bind_int64(s, 2, e->message_id);
    bind_arr(s, 3, e->type, sizeof e->type);
    bind_arr(s, 4, e->rcpt, sizeof e->rcpt);
    sqlite3_bind_int64(s, 5, created);
    bind_str(s, 6, e->json);
    rc = write_rc(st, "event_insert", sqlite3_step(s));
    done(s);
    if (rc != STORE_OK)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    if (!(s = stmt(st, S_EVT_FANOUT)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->account_id);
    sqlite3_bind_int64(s, 2, id);
    bind_arr(s, 3, e->type, sizeof e->type);
    sqlite3_bind_int64(s, 4, created);
    rc = write_rc(st, "event_insert", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK)
        e->id = id;
    return rc;
}

int store_event_insert(struct store *st, struct store_event *e)
{
    if (!e->json || !e->type[0] || strchr(e->type, ',') ||
        too_long("event.type", e->type, sizeof e->type - 1) ||
        too_long("event.rcpt", e->rcpt, sizeof e->rcpt - 1)) {
        log_msg(LOG_ERROR, "store", "op=event_insert error=\"bad event fields\"");
        return STORE_ERROR;
    }
    int64_t created = now_or(e->created_at);
    if (op_begin(st) != STORE_OK)
        return STORE_ERROR;
    int rc = op_end(st, event_insert_locked(st, e, created));
    if (rc == STORE_OK)
        e->created_at = created;
    return rc;
}

int store_event_list(struct store *st, int64_t account_id, int64_t message_id,
                     int (*cb)(const struct store_event *e, void *arg), void *arg)
{
    sqlite3_stmt *s = stmt(st, S_EVT_LIST);
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
        col_text(s, 3, e.type, sizeof e.type);
        col_text(s, 4, e.rcpt, sizeof e.rcpt);
        e.created_at = sqlite3_column_int64(s, 5);
        const unsigned char *json = sqlite3_column_text(s, 6);
        e.json = json ? (const char *)json : "";
        if (cb(&e, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(st, "event_list", rc);
}

/* ---- webhooks ---- */

int store_webhook_insert(struct store *st, struct store_webhook *w)
{
    if (!w->url[0] || !w->secret[0] ||
        too_long("webhook.url", w->url, sizeof w->url - 1) ||
        too_long("webhook.events", w->events, sizeof w->events - 1) ||
        too_long("webhook.secret", w->secret, sizeof w->secret - 1)) {
        log_msg(LOG_ERROR, "store", "op=webhook_insert error=\"bad webhook fields\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = stmt(st, S_WH_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = now_or(w->created_at);
    sqlite3_bind_int64(s, 1, w->account_id);
    bind_arr(s, 2, w->url, sizeof w->url);
    bind_arr(s, 3, w->events, sizeof w->events);
    bind_arr(s, 4, w->secret, sizeof w->secret);
    sqlite3_bind_int64(s, 5, created);
    int rc = write_rc(st, "webhook_insert", sqlite3_step(s));
    done(s);
    if (rc == STORE_OK) {
        w->id = sqlite3_last_insert_rowid(st->db);
        w->created_at = created;
    }
    return rc;
}

int store_webhook_delete(struct store *st, int64_t account_id, int64_t id)
{
    sqlite3_stmt *s = stmt(st, S_WH_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, account_id);
    return write_one(st, s, "webhook_delete");   /* its pending jobs go with it */
}

int store_webhook_list(struct store *st, int64_t account_id,
                       int (*cb)(const struct store_webhook *w, void *arg), void *arg)
{
    sqlite3_stmt *s = stmt(st, S_WH_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_webhook w;
        memset(&w, 0, sizeof w);
        w.id = sqlite3_column_int64(s, 0);
        w.account_id = sqlite3_column_int64(s, 1);
        col_text(s, 2, w.url, sizeof w.url);
        col_text(s, 3, w.events, sizeof w.events);
        col_text(s, 4, w.secret, sizeof w.secret);
        w.created_at = sqlite3_column_int64(s, 5);
        if (cb(&w, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(st, "webhook_list", rc);
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
    sqlite3_stmt *s = stmt(st, S_JOB_DUE);
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
        col_text(s, 4, j->url, sizeof j->url);
        col_text(s, 5, j->secret, sizeof j->secret);
        if (!(j->json = col_dup(s, 6)))
            break;
        (*n)++;
    }
    done(s);
    if (rc == SQLITE_ROW) {
        log_msg(LOG_ERROR, "store", "op=webhook_job_claim error=\"out of memory\"");
        return STORE_ERROR;
    }
    if (rc != SQLITE_DONE)
        return fail(st, "webhook_job_claim", rc);
    if (*n && !(s = stmt(st, S_JOB_MARK)))
        return STORE_ERROR;
    for (size_t i = 0; i < *n; i++) {
        sqlite3_bind_int64(s, 1, (*out)[i].id);
        sqlite3_bind_int64(s, 2, lease_until);
        rc = write_rc(st, "webhook_job_claim", sqlite3_step(s));
        done(s);
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
    if (op_begin(st) != STORE_OK)
        return STORE_ERROR;
    int rc = op_end(st, job_claim_locked(st, now, lease_until, max, &jobs, &n));
    for (size_t i = 0; rc == STORE_OK && i < n; i++)   /* committed first, as deliveries */
        if (cb(&jobs[i], arg) != 0)
            break;
    jobs_free(jobs, n);
    return rc;
}

int store_webhook_job_finish(struct store *st, int64_t id, bool finished, unsigned attempts,
                             int64_t next_attempt_at)
{
    sqlite3_stmt *s = stmt(st, finished ? S_JOB_DELETE : S_JOB_RETRY);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    if (!finished) {
        sqlite3_bind_int64(s, 2, attempts);
        sqlite3_bind_int64(s, 3, next_attempt_at);
    }
    return write_one(st, s, "webhook_job_finish");
}

/* ---- suppressions ---- */

int store_suppression_put(struct store *st, const struct store_suppression *x)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (lower_address(x->address, addr, sizeof addr) != 0 || !x->reason[0] ||
        too_long("suppression.reason", x->reason, sizeof x->reason - 1)) {
        log_msg(LOG_ERROR, "store", "op=suppression_put error=\"bad address or reason\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = stmt(st, S_SUP_PUT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, x->account_id);
    bind_str(s, 2, addr);
    bind_arr(s, 3, x->reason, sizeof x->reason);
    sqlite3_bind_text(s, 4, x->detail, (int)utf8_fit(x->detail, sizeof x->detail - 1),
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, now_or(x->created_at));
    int rc = write_rc(st, "suppression_put", sqlite3_step(s));
    done(s);
    return rc;
}

static void read_suppression(sqlite3_stmt *s, void *p)
{
    struct store_suppression *x = p;
    memset(x, 0, sizeof *x);
    x->account_id = sqlite3_column_int64(s, 0);
    col_text(s, 1, x->address, sizeof x->address);
    col_text(s, 2, x->reason, sizeof x->reason);
    col_text(s, 3, x->detail, sizeof x->detail);
    x->created_at = sqlite3_column_int64(s, 4);
}

int store_suppression_get(struct store *st, int64_t account_id, const char *address,
                          struct store_suppression *out)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (lower_address(address, addr, sizeof addr) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = stmt(st, S_SUP_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    bind_str(s, 2, addr);
    return get_one(st, s, "suppression_get", read_suppression, out);
}

int store_suppression_delete(struct store *st, int64_t account_id, const char *address)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (lower_address(address, addr, sizeof addr) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = stmt(st, S_SUP_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    bind_str(s, 2, addr);
    return write_one(st, s, "suppression_delete");
}

int store_suppression_list(struct store *st, int64_t account_id, const char *after, unsigned limit,
                           int (*cb)(const struct store_suppression *s, void *arg), void *arg)
{
    char from[SMTP_MAX_PATH_LEN + 1] = "";
    if (after && after[0] && lower_address(after, from, sizeof from) != 0)
        return STORE_OK;         /* longer than any address: nothing sorts after it */
    sqlite3_stmt *s = stmt(st, S_SUP_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    bind_str(s, 2, from);
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
    done(s);
    return rc == SQLITE_DONE ? STORE_OK : fail(st, "suppression_list", rc);
}

/* ---- service secrets ---- */

#define SECRET_MIN 32
#define SECRET_MAX 64

/* 1 and the value in out when the secret exists with len bytes, 0 when it
 * does not exist, -1 on an error (logged). */
static int secret_read(struct store *st, const char *name, unsigned char *out, size_t len)
{
    sqlite3_stmt *s = stmt(st, S_SECRET_GET);
    if (!s)
        return -1;
    bind_str(s, 1, name);
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
        ret = rc == SQLITE_DONE ? 0 : (fail(st, "secret_get", rc), -1);
    }
    done(s);
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
    sqlite3_stmt *s = stmt(st, S_SECRET_INSERT);
    int rc = STORE_ERROR;
    if (s) {
        bind_str(s, 1, name);
        sqlite3_bind_blob(s, 2, fresh, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
        rc = write_rc(st, "secret_get", sqlite3_step(s));
        done(s);
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
