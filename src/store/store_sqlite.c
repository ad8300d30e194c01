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
 * Identities (domains, senders, DKIM keys) are store_sqlite_identity.c;
 * the outbound half (delivery queue, events, webhooks, suppressions,
 * secrets) is store_sqlite_outbound.c; store_sqlite_internal.h holds what
 * the parts share. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_sqlite_internal.h"
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
    /* 3: identities (issue 7). Domains get the custom MAIL FROM domain's
     * own status and failure behaviour, the background check schedule,
     * when verified records went missing, and the records as last seen in
     * DNS (JSON); keys get when they were first seen published; senders
     * when the last confirmation mail went out, and an address is
     * verified by one account at most. */
    "ALTER TABLE domains ADD COLUMN mail_from_status INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE domains ADD COLUMN mail_from_behavior INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE domains ADD COLUMN next_check_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE domains ADD COLUMN missing_since INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE domains ADD COLUMN check_attempts INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE domains ADD COLUMN records_json TEXT NOT NULL DEFAULT '';"
    "UPDATE domains SET mail_from_status = 1 WHERE mail_from_domain <> '';"
    "UPDATE domains SET next_check_at = checked_at + 86400 WHERE status = 1;"
    "CREATE INDEX domains_due ON domains(next_check_at) WHERE next_check_at > 0;"
    "ALTER TABLE dkim_keys ADD COLUMN published_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE senders ADD COLUMN sent_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX senders_one_verified ON senders(address) WHERE status = 1;",
    /* 4: DMARC aggregate reports (issue 8). Every DMARC evaluation at the MX
     * whose policy asks for reports, until a report covers it (report_id);
     * the reports sent (one per policy domain and interval: never twice);
     * the reports received for the accounts' domains. */
    "CREATE TABLE dmarc_evaluations ("
    "  id INTEGER PRIMARY KEY,"
    "  received_at INTEGER NOT NULL,"
    "  policy_domain TEXT NOT NULL,"
    "  policy TEXT NOT NULL,"          /* policy_published as JSON */
    "  rua TEXT NOT NULL,"             /* the rua URIs, comma-separated, with !size */
    "  source_ip TEXT NOT NULL,"
    "  header_from TEXT NOT NULL,"
    "  envelope_from TEXT NOT NULL,"
    "  disposition INTEGER NOT NULL,"
    "  dkim_pass INTEGER NOT NULL,"
    "  spf_pass INTEGER NOT NULL,"
    "  reason_type TEXT NOT NULL DEFAULT '',"
    "  reason_comment TEXT NOT NULL DEFAULT '',"
    "  dkim TEXT NOT NULL,"            /* JSON [[domain, selector, result], ...] */
    "  spf_domain TEXT NOT NULL,"
    "  spf_scope TEXT NOT NULL,"
    "  spf_result TEXT NOT NULL,"
    "  report_id INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX dmarc_evaluations_pending ON dmarc_evaluations(policy_domain, received_at)"
    "  WHERE report_id = 0;"
    "CREATE TABLE dmarc_reports_out ("
    "  id INTEGER PRIMARY KEY,"
    "  policy_domain TEXT NOT NULL,"
    "  begin_at INTEGER NOT NULL,"
    "  end_at INTEGER NOT NULL,"
    "  report_id TEXT NOT NULL,"
    "  rcpts TEXT NOT NULL,"
    "  message_id INTEGER NOT NULL DEFAULT 0,"   /* outbound message; 0: not sent */
    "  status TEXT NOT NULL,"                    /* queued | skipped */
    "  detail TEXT NOT NULL DEFAULT '',"
    "  records INTEGER NOT NULL,"
    "  messages INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (policy_domain, begin_at));"
    "CREATE TABLE dmarc_reports_in ("
    "  id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  domain TEXT NOT NULL,"
    "  org_name TEXT NOT NULL,"
    "  report_id TEXT NOT NULL,"
    "  begin_at INTEGER NOT NULL,"
    "  end_at INTEGER NOT NULL,"
    "  json TEXT NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  UNIQUE (account_id, org_name, report_id));"
    "CREATE INDEX dmarc_reports_in_domain ON dmarc_reports_in(account_id, domain, begin_at);",
    /* 5: the reputation guard (issue 9): an account's status, and its
     * sending outcomes counted per UTC day (cheap to update on every event,
     * cheap to sum over a window). */
    "ALTER TABLE accounts ADD COLUMN reputation INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE accounts ADD COLUMN reputation_reason TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE accounts ADD COLUMN reputation_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE account_stats ("
    "  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    "  day INTEGER NOT NULL,"            /* Unix time / 86400 */
    "  sends INTEGER NOT NULL DEFAULT 0,"
    "  delivered INTEGER NOT NULL DEFAULT 0,"
    "  bounces INTEGER NOT NULL DEFAULT 0,"    /* permanent */
    "  unknown INTEGER NOT NULL DEFAULT 0,"    /* permanent, recipient does not exist */
    "  complaints INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (account_id, day)) WITHOUT ROWID;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- statements, prepared on first use and kept per handle ---- */

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
                     "mail_from_domain, created_at, verified_at, checked_at, mail_from_status, "
                     "mail_from_behavior, next_check_at, missing_since, check_attempts) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [S_DOM_GET] = "SELECT " DOM_COLS " FROM domains WHERE account_id = ?1 AND domain = ?2",
    [S_DOM_FIND_VERIFIED] = "SELECT " DOM_COLS " FROM domains WHERE domain = ?1 AND status = 1",
    [S_DOM_OWNER] = "SELECT account_id, domain FROM domains WHERE id = ?1",
    [S_DOM_VERIFIED_ELSEWHERE] = "SELECT 1 FROM domains WHERE domain = ?1 AND status = 1 "
                                 "AND account_id <> ?2 LIMIT 1",
    [S_DOM_UPDATE] = "UPDATE domains SET status = ?2, verify_token = ?3, mail_from_domain = ?4, "
                     "verified_at = ?5, checked_at = ?6, mail_from_status = ?7, "
                     "mail_from_behavior = ?8, next_check_at = ?9, missing_since = ?10, "
                     "check_attempts = ?11 WHERE id = ?1",
    [S_DOM_LIST] = "SELECT " DOM_COLS " FROM domains WHERE account_id = ?1 ORDER BY domain",
    [S_DOM_FIND_MAIL_FROM] = "SELECT " DOM_COLS " FROM domains WHERE mail_from_domain = ?1 "
                             "AND status = 1 ORDER BY id LIMIT 1",
    [S_DOM_DELETE] = "DELETE FROM domains WHERE id = ?1 AND account_id = ?2",
    [S_DOM_DUE] = "SELECT " DOM_COLS " FROM domains WHERE next_check_at > 0 AND "
                  "next_check_at <= ?1 ORDER BY next_check_at, id LIMIT ?2",
    [S_DOM_REC_GET] = "SELECT records_json FROM domains WHERE id = ?1",
    [S_DOM_REC_SET] = "UPDATE domains SET records_json = ?2 WHERE id = ?1",
    [S_SND_INSERT] = "INSERT INTO senders (account_id, address, status, token, created_at, "
                     "expires_at, verified_at, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_SND_GET] = "SELECT " SND_COLS " FROM senders WHERE account_id = ?1 AND address = ?2",
    [S_SND_GET_TOKEN] = "SELECT " SND_COLS " FROM senders WHERE token = ?1 AND token <> ''",
    [S_SND_UPDATE] = "UPDATE senders SET status = ?2, verified_at = ?3, token = ?4, "
                     "expires_at = ?5, sent_at = ?6 WHERE id = ?1",
    [S_SND_LIST] = "SELECT " SND_COLS " FROM senders WHERE account_id = ?1 ORDER BY address",
    [S_SND_FIND_VERIFIED] = "SELECT " SND_COLS " FROM senders WHERE address = ?1 AND status = 1",
    [S_DM_EVAL_INSERT] = "INSERT INTO dmarc_evaluations (received_at, policy_domain, policy, rua, "
                         "source_ip, header_from, envelope_from, disposition, dkim_pass, "
                         "spf_pass, reason_type, reason_comment, dkim, spf_domain, spf_scope, "
                         "spf_result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                         "?13, ?14, ?15, ?16)",
    [S_DM_EVAL_DUE] = "SELECT policy_domain, received_at - received_at % ?2 AS b, "
                      "MIN(received_at) "
                      "FROM dmarc_evaluations WHERE report_id = 0 AND received_at < ?1 "
                      "GROUP BY policy_domain, b ORDER BY b, policy_domain LIMIT ?3",
    [S_DM_EVAL_ROWS] = "SELECT source_ip, header_from, envelope_from, disposition, dkim_pass, "
                       "spf_pass, reason_type, reason_comment, dkim, spf_domain, spf_scope, "
                       "spf_result, COUNT(*) FROM dmarc_evaluations WHERE policy_domain = ?1 "
                       "AND received_at >= ?2 AND received_at < ?3 AND report_id = 0 "
                       "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 ORDER BY 13 DESC, 1",
    [S_DM_EVAL_POLICY] = "SELECT policy, rua FROM dmarc_evaluations WHERE policy_domain = ?1 "
                         "AND received_at >= ?2 AND received_at < ?3 AND report_id = 0 "
                         "ORDER BY received_at DESC, id DESC LIMIT 1",
    [S_DM_EVAL_MARK] = "UPDATE dmarc_evaluations SET report_id = ?4 WHERE policy_domain = ?1 "
                       "AND received_at >= ?2 AND received_at < ?3 AND report_id = 0",
    [S_DM_OUT_INSERT] = "INSERT INTO dmarc_reports_out (policy_domain, begin_at, end_at, "
                        "report_id, rcpts, message_id, status, detail, records, messages, "
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [S_DM_OUT_LIST] = "SELECT id, policy_domain, begin_at, end_at, report_id, rcpts, message_id, "
                      "status, detail, records, messages, created_at FROM dmarc_reports_out "
                      "WHERE policy_domain = ?1 OR ?1 = '' ORDER BY id",
    [S_DM_IN_INSERT] = "INSERT INTO dmarc_reports_in (account_id, domain, org_name, report_id, "
                       "begin_at, end_at, json, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                       "?7, ?8)",
    [S_DM_IN_LIST] = "SELECT id, account_id, domain, org_name, report_id, begin_at, end_at, "
                     "json, received_at FROM dmarc_reports_in WHERE account_id = ?1 AND "
                     "(domain = ?2 OR ?2 = '') AND end_at >= ?3 ORDER BY begin_at DESC, id DESC "
                     "LIMIT ?4",
    [S_ACC_LIST] = "SELECT " ACC_COLS " FROM accounts ORDER BY id LIMIT ?1",
    [S_REP_SET] = "UPDATE accounts SET reputation = ?2, reputation_reason = ?3, "
                  "reputation_at = ?4 WHERE id = ?1",
    [S_REP_STATS_ADD] = "INSERT INTO account_stats (account_id, day, sends, delivered, bounces, "
                        "unknown, complaints) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                        "ON CONFLICT (account_id, day) DO UPDATE SET sends = sends + ?3, "
                        "delivered = delivered + ?4, bounces = bounces + ?5, "
                        "unknown = unknown + ?6, complaints = complaints + ?7 RETURNING sends",
    [S_REP_STATS_LIST] = "SELECT day, sends, delivered, bounces, unknown, complaints FROM "
                         "account_stats WHERE account_id = ?1 AND day >= ?2 ORDER BY day DESC",
    [S_REP_STATS_CLEAR] = "DELETE FROM account_stats WHERE account_id = ?1",
    [S_SND_VERIFIED_ELSEWHERE] = "SELECT 1 FROM senders WHERE address = ?1 AND status = 1 "
                                 "AND account_id <> ?2 LIMIT 1",
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
    [S_KEY_UPDATE] = "UPDATE dkim_keys SET status = ?2, retired_at = ?3, published_at = ?4 "
                     "WHERE id = ?1",
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


/* ---- helpers ---- */

int sq_fail(struct store *st, const char *op, int rc)
{
    log_msg(LOG_ERROR, "store", "op=%s code=%d error=\"%s\"", op, rc, sqlite3_errmsg(st->db));
    return STORE_ERROR;
}

sqlite3_stmt *sq_stmt(struct store *st, enum sid id)
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
            sq_fail(st, "prepare", rc);
            st->stmts[id] = NULL;
        }
    }
    return st->stmts[id];
}

/* Every statement is reset after use, so no read snapshot stays open. */
void sq_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Runs a statement that returns no rows. */
static int exec_stmt(struct store *st, enum sid id, const char *op)
{
    sqlite3_stmt *s = sq_stmt(st, id);
    if (!s)
        return STORE_ERROR;
    int rc = sqlite3_step(s);
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, op, rc);
}

/* The outcome of a write statement's step. */
int sq_write_rc(struct store *st, const char *op, int rc)
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
        return sq_fail(st, op, rc);
    }
}

int64_t sq_now_or(int64_t t)
{
    return t ? t : (int64_t)time(NULL);
}

/* Binds the C string in an array of size bytes, never reading past it. */
int sq_bind_arr(sqlite3_stmt *s, int i, const char *arr, size_t size)
{
    return sqlite3_bind_text(s, i, arr, (int)strnlen(arr, size), SQLITE_STATIC);
}

int sq_bind_str(sqlite3_stmt *s, int i, const char *str)
{
    return sqlite3_bind_text(s, i, str ? str : "", -1, SQLITE_STATIC);
}

/* true when s is NULL or longer than max bytes (caller bugs: logged). */
bool sq_too_long(const char *what, const char *s, size_t max)
{
    if (s && strnlen(s, max + 1) <= max)
        return false;
    log_msg(LOG_ERROR, "store", "event=bad_value field=%s error=\"%s\"", what,
            s ? "too long" : "missing");
    return true;
}

void sq_col_text(sqlite3_stmt *s, int i, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

char *sq_col_dup(sqlite3_stmt *s, int i)
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

int sq_norm_domain(const char *in, char *out, size_t size)
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

int sq_norm_address(const char *in, char *out, size_t size)
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
int sq_op_begin(struct store *st)
{
    if (st->in_tx && sqlite3_get_autocommit(st->db))
        return STORE_ERROR;
    return exec_stmt(st, st->in_tx ? S_SAVEPOINT : S_BEGIN, "op_begin");
}

int sq_op_end(struct store *st, int rc)
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
    if (sq_too_long("account.name", a->name, STORE_NAME_MAX) || !a->name[0])
        return STORE_ERROR;
    sqlite3_stmt *s = sq_stmt(st, S_ACC_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = sq_now_or(a->created_at);
    sq_bind_arr(s, 1, a->name, sizeof a->name);
    sqlite3_bind_int(s, 2, a->sandbox);
    sqlite3_bind_int64(s, 3, a->max_24h);
    sqlite3_bind_int64(s, 4, a->max_rate);
    sqlite3_bind_int(s, 5, a->dmarc_report_only);
    sqlite3_bind_int64(s, 6, created);
    int rc = sq_write_rc(st, "account_insert", sqlite3_step(s));
    sq_done(s);
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
    sq_col_text(s, 1, out->name, sizeof out->name);
    out->sandbox = sqlite3_column_int(s, 2) != 0;
    out->max_24h = (uint32_t)sqlite3_column_int64(s, 3);
    out->max_rate = (uint32_t)sqlite3_column_int64(s, 4);
    out->dmarc_report_only = sqlite3_column_int(s, 5) != 0;
    out->created_at = sqlite3_column_int64(s, 6);
    out->reputation = sqlite3_column_int(s, 7);
    sq_col_text(s, 8, out->reputation_reason, sizeof out->reputation_reason);
    out->reputation_at = sqlite3_column_int64(s, 9);
}

/* Steps a statement expected to return at most one row, read by fn. */
int sq_get_one(struct store *st, sqlite3_stmt *s, const char *op,
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
        ret = sq_fail(st, op, rc);
    }
    sq_done(s);
    return ret;
}

static void read_account_cb(sqlite3_stmt *s, void *out) { read_account(s, out); }

int store_account_get(struct store *st, int64_t id, struct store_account *out)
{
    sqlite3_stmt *s = sq_stmt(st, S_ACC_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    return sq_get_one(st, s, "account_get", read_account_cb, out);
}

int store_account_get_by_name(struct store *st, const char *name, struct store_account *out)
{
    if (!name || strnlen(name, STORE_NAME_MAX + 1) > STORE_NAME_MAX)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_ACC_GET_NAME);
    if (!s)
        return STORE_ERROR;
    sq_bind_str(s, 1, name);
    return sq_get_one(st, s, "account_get_by_name", read_account_cb, out);
}

int store_account_update(struct store *st, const struct store_account *a)
{
    sqlite3_stmt *s = sq_stmt(st, S_ACC_UPDATE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, a->id);
    sqlite3_bind_int(s, 2, a->sandbox);
    sqlite3_bind_int64(s, 3, a->max_24h);
    sqlite3_bind_int64(s, 4, a->max_rate);
    sqlite3_bind_int(s, 5, a->dmarc_report_only);
    int rc = sq_write_rc(st, "account_update", sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

/* ---- credentials ---- */

int store_credential_insert(struct store *st, int64_t account_id, enum store_cred_kind kind,
                            const char *lookup, const char *hash)
{
    if (sq_too_long("credential.lookup", lookup, STORE_LOOKUP_MAX) ||
        sq_too_long("credential.hash", hash, STORE_HASH_MAX))
        return STORE_ERROR;
    sqlite3_stmt *s = sq_stmt(st, S_CRED_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int(s, 2, (int)kind);
    sq_bind_str(s, 3, lookup);
    sq_bind_str(s, 4, hash);
    sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
    int rc = sq_write_rc(st, "credential_insert", sqlite3_step(s));
    sq_done(s);
    return rc;
}

int store_credential_get(struct store *st, enum store_cred_kind kind, const char *lookup,
                         int64_t *account_id, char *hash, size_t hashlen)
{
    if (!lookup || strnlen(lookup, STORE_LOOKUP_MAX + 1) > STORE_LOOKUP_MAX)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_CRED_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, (int)kind);
    sq_bind_str(s, 2, lookup);
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
        ret = rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(st, "credential_get", rc);
    }
    sq_done(s);
    return ret;
}

/* ---- received mail ---- */

int store_inbound_insert(struct store *st, const struct store_inbound *m,
                         const char *raw, size_t len, int64_t *id)
{
    sqlite3_stmt *s = sq_stmt(st, S_INB_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, m->account_id);
    sqlite3_bind_int64(s, 2, sq_now_or(m->received_at));
    sq_bind_arr(s, 3, m->mail_from, sizeof m->mail_from);
    sq_bind_str(s, 4, m->rcpt_json ? m->rcpt_json : "[]");
    sq_bind_arr(s, 5, m->client_ip, sizeof m->client_ip);
    sq_bind_arr(s, 6, m->helo, sizeof m->helo);
    sq_bind_arr(s, 7, m->spf, sizeof m->spf);
    sq_bind_arr(s, 8, m->dkim, sizeof m->dkim);
    sq_bind_arr(s, 9, m->dmarc, sizeof m->dmarc);
    sq_bind_str(s, 10, m->authres);
    sqlite3_bind_int(s, 11, m->quarantine);
    sq_bind_arr(s, 12, m->message_id, sizeof m->message_id);
    sq_bind_arr(s, 13, m->subject, sizeof m->subject);
    sq_bind_arr(s, 14, m->from, sizeof m->from);
    sqlite3_bind_int64(s, 15, (int64_t)len);
    sqlite3_bind_blob64(s, 16, raw && len ? raw : "", raw ? len : 0, SQLITE_STATIC);
    int rc = sq_write_rc(st, "inbound_insert", sqlite3_step(s));
    sq_done(s);
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
    sq_col_text(s, 3, m->mail_from, sizeof m->mail_from);
    m->rcpt_json = sq_col_dup(s, 4);
    sq_col_text(s, 5, m->client_ip, sizeof m->client_ip);
    sq_col_text(s, 6, m->helo, sizeof m->helo);
    sq_col_text(s, 7, m->spf, sizeof m->spf);
    sq_col_text(s, 8, m->dkim, sizeof m->dkim);
    sq_col_text(s, 9, m->dmarc, sizeof m->dmarc);
    m->authres = sq_col_dup(s, 10);
    m->quarantine = sqlite3_column_int(s, 11) != 0;
    sq_col_text(s, 12, m->message_id, sizeof m->message_id);
    sq_col_text(s, 13, m->subject, sizeof m->subject);
    sq_col_text(s, 14, m->from, sizeof m->from);
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
    sqlite3_stmt *s = sq_stmt(st, S_INB_LIST);
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
        ret = sq_fail(st, "inbound_list", rc);
    sq_done(s);
    return ret;
}

int store_inbound_get(struct store *st, int64_t account_id, int64_t id,
                      struct store_inbound *meta, char **raw, size_t *len)
{
    sqlite3_stmt *s = sq_stmt(st, S_INB_GET);
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
        ret = rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(st, "inbound_get", rc);
    }
    sq_done(s);
    return ret;
}

static int count(struct store *st, enum sid id, const char *op, int64_t a, int64_t b, int64_t *n)
{
    sqlite3_stmt *s = sq_stmt(st, id);
    if (!s)
        return STORE_ERROR;
    if (sqlite3_bind_parameter_count(s) >= 2) {
        sqlite3_bind_int64(s, 1, a);
        sqlite3_bind_int64(s, 2, b);
    }
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    sq_done(s);
    return rc == SQLITE_ROW ? STORE_OK : sq_fail(st, op, rc);
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
    sqlite3_stmt *s = sq_stmt(st, S_RULE_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sq_bind_str(s, 2, json);
    sqlite3_bind_int64(s, 3, (int64_t)time(NULL));
    int rc = sq_write_rc(st, "rule_insert", sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int store_rule_delete(struct store *st, int64_t account_id, int64_t id)
{
    sqlite3_stmt *s = sq_stmt(st, S_RULE_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, account_id);
    int rc = sq_write_rc(st, "rule_delete", sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_rule_list(struct store *st, int64_t account_id, store_rule_cb cb, void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_RULE_LIST);
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
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "rule_list", rc);
}

/* ---- outbound queue ---- */

static int outbound_insert_locked(struct store *st, struct store_outbound *m, const char *raw,
                                  size_t len, int64_t created)
{
    sqlite3_stmt *s = sq_stmt(st, S_OUT_MSG_INSERT);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, m->account_id);
    sq_bind_arr(s, 2, m->mail_from, sizeof m->mail_from);
    sq_bind_arr(s, 3, m->message_id, sizeof m->message_id);
    sq_bind_str(s, 4, m->source ? m->source : "api");
    sqlite3_bind_int64(s, 5, created);
    sqlite3_bind_int64(s, 6, (int64_t)len);
    sqlite3_bind_blob64(s, 7, raw && len ? raw : "", raw ? len : 0, SQLITE_STATIC);
    int rc = sq_write_rc(st, "outbound_insert", sqlite3_step(s));
    sq_done(s);
    if (rc != STORE_OK)
        return rc;
    int64_t msg = sqlite3_last_insert_rowid(st->db);
    if (!(s = sq_stmt(st, S_OUT_RCPT_INSERT)))
        return STORE_ERROR;
    for (size_t i = 0; i < m->nrcpt && rc == STORE_OK; i++) {
        char dom[DNS_MAX_NAME_LEN + 1];
        if (rcpt_domain(m->rcpts[i], dom, sizeof dom) != 0)
            return STORE_ERROR;         /* checked by the caller */
        sqlite3_bind_int64(s, 1, msg);
        sq_bind_str(s, 2, m->rcpts[i]);
        sqlite3_bind_int64(s, 3, created);
        sq_bind_str(s, 4, dom);
        rc = sq_write_rc(st, "outbound_insert", sqlite3_step(s));
        sq_done(s);
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
        if (sq_too_long("outbound.rcpt", m->rcpts[i], SMTP_MAX_PATH_LEN))
            return STORE_ERROR;
        if (rcpt_domain(m->rcpts[i], dom, sizeof dom) != 0) {
            log_msg(LOG_ERROR, "store", "op=outbound_insert error=\"recipient domain too long\"");
            return STORE_ERROR;
        }
    }
    int64_t created = sq_now_or(m->created_at);
    if (sq_op_begin(st) != STORE_OK)
        return STORE_ERROR;
    int rc = sq_op_end(st, outbound_insert_locked(st, m, raw, len, created));
    if (rc == STORE_OK)
        m->created_at = created;
    return rc;
}

int store_outbound_oldest_since(struct store *st, int64_t account_id, int64_t since, int64_t *at)
{
    sqlite3_stmt *s = sq_stmt(st, S_OUT_OLDEST_SINCE);
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
    sq_done(s);
    return rc == SQLITE_ROW ? out : sq_fail(st, "outbound_oldest_since", rc);
}

int store_outbound_count_since(struct store *st, int64_t account_id, int64_t since, int64_t *n)
{
    return count(st, S_OUT_COUNT_SINCE, "outbound_count_since", account_id, since, n);
}

int store_outbound_count(struct store *st, int64_t *n)
{
    return count(st, S_OUT_COUNT, "outbound_count", 0, 0, n);
}

/* ---- the reputation guard ---- */

int store_account_list(struct store *st, int limit,
                       int (*cb)(const struct store_account *a, void *arg), void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_ACC_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int(s, 1, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_account a;
        read_account(s, &a);
        if (cb(&a, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "account_list", rc);
}

int store_account_reputation_set(struct store *st, int64_t account_id, int status,
                                 const char *reason, int64_t at)
{
    sqlite3_stmt *s = sq_stmt(st, S_REP_SET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int(s, 2, status);
    sq_bind_str(s, 3, reason ? reason : "");
    sqlite3_bind_int64(s, 4, at);
    int rc = sq_write_rc(st, "account_reputation_set", sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_account_stats_add(struct store *st, int64_t account_id, int64_t day,
                            const struct store_account_stats *d, int64_t *sends_today)
{
    sqlite3_stmt *s = sq_stmt(st, S_REP_STATS_ADD);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, day);
    sqlite3_bind_int64(s, 3, d->sends);
    sqlite3_bind_int64(s, 4, d->delivered);
    sqlite3_bind_int64(s, 5, d->bounces);
    sqlite3_bind_int64(s, 6, d->unknown);
    sqlite3_bind_int64(s, 7, d->complaints);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        if (sends_today)
            *sends_today = sqlite3_column_int64(s, 0);
        step = sqlite3_step(s);
    }
    int rc = sq_write_rc(st, "account_stats_add", step);
    sq_done(s);
    return rc;
}

int store_account_stats_list(struct store *st, int64_t account_id, int64_t since_day,
                             int (*cb)(const struct store_account_stats *d, void *arg), void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_REP_STATS_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, since_day);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_account_stats d = {
            .day = sqlite3_column_int64(s, 0), .sends = sqlite3_column_int64(s, 1),
            .delivered = sqlite3_column_int64(s, 2), .bounces = sqlite3_column_int64(s, 3),
            .unknown = sqlite3_column_int64(s, 4), .complaints = sqlite3_column_int64(s, 5),
        };
        if (cb(&d, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "account_stats_list", rc);
}

int store_account_stats_clear(struct store *st, int64_t account_id)
{
    sqlite3_stmt *s = sq_stmt(st, S_REP_STATS_CLEAR);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    int rc = sq_write_rc(st, "account_stats_clear", sqlite3_step(s));
    sq_done(s);
    return rc;
}
