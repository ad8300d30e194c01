/* The SQLite store's outbound half (store.h, "outbound (issue 6)"): DKIM
 * keys, the delivery queue (claims, leases, concurrent claimers on their
 * own handles, updates, next due time), messages and their recipients,
 * events and their fan-out to webhooks, durable webhook jobs, the
 * suppression list, service secrets, the migration from a schema-1
 * database that holds data, and isolation between accounts in every
 * account-scoped function. Each test gets a fresh data_dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

#define T0 1700000000

struct fx {
    char tmp[64];
    char dir[128];
    char db[160];
    struct store *st;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->tmp, sizeof f->tmp, "/tmp/sesame-test-storeout-XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    snprintf(f->dir, sizeof f->dir, "%s/data", f->tmp);
    snprintf(f->db, sizeof f->db, "%s/sesame.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    nftw(f->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static struct store *open_ok(struct fx *f)
{
    char err[256] = "";
    struct store *st = store_open("sqlite", f->dir, err, sizeof err);
    if (!st)
        fail_msg("store_open: %s", err);
    return st;
}

static int64_t add_account(struct store *st, const char *name)
{
    struct store_account a = { .sandbox = true, .max_24h = 200, .max_rate = 1 };
    snprintf(a.name, sizeof a.name, "%s", name);
    assert_int_equal(store_account_insert(st, &a), STORE_OK);
    return a.id;
}

static int64_t add_domain(struct store *st, int64_t account, const char *name)
{
    struct store_domain d = { .account_id = account };
    snprintf(d.domain, sizeof d.domain, "%s", name);
    assert_int_equal(store_domain_insert(st, &d), STORE_OK);
    return d.id;
}

/* Queues a message from app@example.test to rcpts, accepted at created. */
static int64_t add_message(struct store *st, int64_t account, int64_t created,
                           const char *const *rcpts, size_t n)
{
    struct store_outbound m = { .account_id = account, .rcpts = rcpts, .nrcpt = n,
                                .created_at = created, .source = "api" };
    snprintf(m.mail_from, sizeof m.mail_from, "app@example.test");
    snprintf(m.message_id, sizeof m.message_id, "<%lld@example.test>", (long long)created);
    assert_int_equal(store_outbound_insert(st, &m, "Subject: x\r\n\r\nbody\r\n", 20), STORE_OK);
    return m.id;
}

/* Reads one integer with plain SQLite (never open(2) on the file). */
static int64_t sql_int(const char *db, const char *q)
{
    sqlite3 *h;
    sqlite3_stmt *s;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    assert_int_equal(sqlite3_prepare_v2(h, q, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}

/* ---- migration from schema 1 ---- */

/* Schema step 1 exactly as it shipped (issue 5): a frozen fixture, so this
 * test keeps checking the upgrade path whatever later steps do. */
static const char step1[] =
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
    "CREATE INDEX outbound_recipients_due ON outbound_recipients(status, next_attempt_at);";

static void migration_from_step1_keeps_data(void **state)
{
    struct fx *f = *state;
    assert_int_equal(mkdir(f->dir, 0700), 0);
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(f->db, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(h, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; BEGIN;", NULL,
                          NULL, &err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, step1, NULL, NULL, &err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h,
            "PRAGMA user_version = 1;"
            "INSERT INTO accounts VALUES (7, 'old', 0, 1000, 10, 0, 1690000000);"
            "INSERT INTO domains (id, account_id, domain, status, created_at) "
            "  VALUES (3, 7, 'example.test', 1, 1690000000);"
            "INSERT INTO outbound_messages VALUES (11, 7, 'app@example.test', '<m@x>', 'smtp', "
            "  1690000100, 5, X'6869000a0d');"
            "INSERT INTO outbound_recipients (id, message_id, rcpt, status, attempts, "
            "  next_attempt_at, last_response, updated_at) VALUES "
            "  (21, 11, 'Bob@Example.COM', 'queued', 0, 1690000100, '', 1690000100),"
            "  (22, 11, 'x@Sub.Remote.TEST', 'deferred', 2, 1690000500, '451 later', 1690000200),"
            "  (23, 11, 'a@b@C.test', 'delivered', 1, 1690000100, '250 ok', 1690000150),"
            "  (24, 11, 'postmaster', 'failed', 1, 1690000100, '550 no', 1690000150);"
            "COMMIT;", NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("building the schema-1 database: %s", err ? err : "?");
    sqlite3_close(h);

    f->st = open_ok(f);
    assert_true(sql_int(f->db, "PRAGMA user_version") >= 2);
    struct store_account a;
    assert_int_equal(store_account_get_by_name(f->st, "old", &a), STORE_OK);
    assert_int_equal(a.id, 7);
    assert_int_equal(a.max_24h, 1000);
    struct store_domain d;
    assert_int_equal(store_domain_get(f->st, 7, "example.test", &d), STORE_OK);
    assert_int_equal(d.id, 3);

    /* the recipients, with their domain derived and their status mapped */
    struct store_delivery r;
    assert_int_equal(store_delivery_get(f->st, 21, &r), STORE_OK);
    assert_string_equal(r.rcpt, "Bob@Example.COM");
    assert_string_equal(r.domain, "example.com");
    assert_int_equal(r.status, STORE_RCPT_QUEUED);
    assert_int_equal(r.account_id, 7);
    assert_int_equal(r.message_id, 11);
    assert_string_equal(r.mail_from, "app@example.test");
    assert_int_equal(r.created_at, 1690000100);
    assert_int_equal(store_delivery_get(f->st, 22, &r), STORE_OK);
    assert_string_equal(r.domain, "sub.remote.test");
    assert_int_equal(r.status, STORE_RCPT_DEFERRED);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.next_attempt_at, 1690000500);
    assert_string_equal(r.last_response, "451 later");
    assert_int_equal(store_delivery_get(f->st, 23, &r), STORE_OK);
    assert_string_equal(r.domain, "c.test");          /* after the last '@' */
    assert_int_equal(r.status, STORE_RCPT_DELIVERED);
    assert_int_equal(store_delivery_get(f->st, 24, &r), STORE_OK);
    assert_string_equal(r.domain, "");                /* no '@' at all */
    assert_int_equal(r.status, STORE_RCPT_BOUNCED);   /* 'failed' was final */
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM outbound_recipients "
                                    "WHERE status = 'failed'"), 0);
    int64_t n;
    assert_int_equal(store_outbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 2);
    int64_t when;
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_OK);
    assert_int_equal(when, 1690000100);

    /* the message itself, byte-exact */
    char *raw = NULL, mf[SMTP_MAX_PATH_LEN + 1];
    size_t len = 0;
    assert_int_equal(store_outbound_get_raw(f->st, 11, &raw, &len, mf, sizeof mf), STORE_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(raw, "hi\0\n\r", 5);
    assert_string_equal(mf, "app@example.test");
    free(raw);

    /* the new tables work on the migrated database, and the new columns too */
    const char *rc2[] = { "New@Remote.Test" };
    int64_t m2 = add_message(f->st, 7, 1690001000, rc2, 1);
    assert_true(m2 > 11);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM outbound_recipients "
                                    "WHERE domain = 'remote.test'"), 1);
    struct store_suppression s = { .account_id = 7 };
    snprintf(s.address, sizeof s.address, "x@y.test");
    snprintf(s.reason, sizeof s.reason, "manual");
    assert_int_equal(store_suppression_put(f->st, &s), STORE_OK);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM sqlite_master "
                                    "WHERE name = 'outbound_recipients_due'"), 0);

    /* and a reopen changes nothing */
    store_close(f->st);
    f->st = open_ok(f);
    assert_int_equal(store_delivery_get(f->st, 22, &r), STORE_OK);
    assert_string_equal(r.domain, "sub.remote.test");
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM outbound_recipients"), 5);
}

/* ---- DKIM keys ---- */

struct klist { int n; struct store_dkim_key k[8]; int stop_after; };

static int collect_key(const struct store_dkim_key *k, void *arg)
{
    struct klist *l = arg;
    l->k[l->n++] = *k;
    return l->stop_after && l->n >= l->stop_after;
}

static struct store_dkim_key key(int64_t domain_id, const char *sel, const char *alg,
                                 int64_t created)
{
    struct store_dkim_key k = { .domain_id = domain_id, .status = STORE_KEY_ACTIVE,
                                .created_at = created };
    snprintf(k.selector, sizeof k.selector, "%s", sel);
    snprintf(k.algorithm, sizeof k.algorithm, "%s", alg);
    snprintf(k.key_path, sizeof k.key_path, "/var/sesame/keys/%s.pem", sel);
    snprintf(k.record, sizeof k.record, "v=DKIM1; k=%s; p=AAAA",
             strcmp(alg, "rsa-sha256") == 0 ? "rsa" : "ed25519");
    return k;
}

static void dkim_keys(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a");
    int64_t d1 = add_domain(f->st, a, "one.test"), d2 = add_domain(f->st, a, "two.test");
    struct store_dkim_key k1 = key(d1, "s2", "rsa-sha256", T0 + 10);
    struct store_dkim_key k2 = key(d1, "s1", "ed25519-sha256", T0);
    assert_int_equal(store_dkim_key_insert(f->st, &k1), STORE_OK);
    assert_int_equal(store_dkim_key_insert(f->st, &k2), STORE_OK);
    assert_true(k1.id > 0 && k2.id > k1.id);
    struct store_dkim_key dup = key(d1, "s1", "rsa-sha256", T0);
    assert_int_equal(store_dkim_key_insert(f->st, &dup), STORE_EXISTS);
    struct store_dkim_key other = key(d2, "s1", "rsa-sha256", 0);   /* same selector, other domain */
    assert_int_equal(store_dkim_key_insert(f->st, &other), STORE_OK);
    assert_true(other.created_at > T0);                              /* filled */
    struct store_dkim_key orphan = key(d2 + 50, "s9", "rsa-sha256", 0);
    assert_int_equal(store_dkim_key_insert(f->st, &orphan), STORE_NOTFOUND);
    struct store_dkim_key bad = key(d1, "", "rsa-sha256", 0);
    assert_int_equal(store_dkim_key_insert(f->st, &bad), STORE_ERROR);

    struct klist l = { 0 };
    assert_int_equal(store_dkim_key_list(f->st, d1, collect_key, &l), STORE_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.k[0].selector, "s1");        /* oldest first */
    assert_string_equal(l.k[0].algorithm, "ed25519-sha256");
    assert_string_equal(l.k[0].record, "v=DKIM1; k=ed25519; p=AAAA");
    assert_string_equal(l.k[0].key_path, "/var/sesame/keys/s1.pem");
    assert_int_equal(l.k[0].created_at, T0);
    assert_int_equal(l.k[0].domain_id, d1);
    assert_string_equal(l.k[1].selector, "s2");
    l = (struct klist){ .stop_after = 1 };
    assert_int_equal(store_dkim_key_list(f->st, d1, collect_key, &l), STORE_OK);
    assert_int_equal(l.n, 1);

    k1.status = STORE_KEY_RETIRED;
    k1.retired_at = T0 + 99;
    assert_int_equal(store_dkim_key_update(f->st, &k1), STORE_OK);
    l = (struct klist){ 0 };
    assert_int_equal(store_dkim_key_list(f->st, d1, collect_key, &l), STORE_OK);
    assert_int_equal(l.k[1].status, STORE_KEY_RETIRED);
    assert_int_equal(l.k[1].retired_at, T0 + 99);
    assert_int_equal(l.k[0].status, STORE_KEY_ACTIVE);
    k1.id += 1000;
    assert_int_equal(store_dkim_key_update(f->st, &k1), STORE_NOTFOUND);
    l = (struct klist){ 0 };
    assert_int_equal(store_dkim_key_list(f->st, d2, collect_key, &l), STORE_OK);
    assert_int_equal(l.n, 1);
    l = (struct klist){ 0 };
    assert_int_equal(store_dkim_key_list(f->st, d2 + 50, collect_key, &l), STORE_OK);
    assert_int_equal(l.n, 0);
}

/* ---- the delivery queue ---- */

#define MAXC 64
struct claimed { int n; struct store_delivery d[MAXC]; int stop_after; struct store *st; };

static int collect_delivery(const struct store_delivery *d, void *arg)
{
    struct claimed *c = arg;
    if (c->n < MAXC)
        c->d[c->n] = *d;
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void delivery_claim(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");
    const char *r1[] = { "one@Remote.TEST", "two@other.test" };
    const char *r2[] = { "three@remote.test" };
    const char *r3[] = { "later@remote.test" };
    int64_t m2 = add_message(f->st, b, T0 + 5, r2, 1);
    int64_t m1 = add_message(f->st, a, T0, r1, 2);
    add_message(f->st, a, T0 + 100, r3, 1);           /* not due before T0 + 100 */

    struct claimed c = { 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 10, T0 + 70, 10, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 3);
    /* oldest due first (next_attempt_at, then id), whatever the account */
    assert_string_equal(c.d[0].rcpt, "one@Remote.TEST");
    assert_string_equal(c.d[0].domain, "remote.test");
    assert_int_equal(c.d[0].message_id, m1);
    assert_int_equal(c.d[0].account_id, a);
    assert_string_equal(c.d[0].mail_from, "app@example.test");
    assert_int_equal(c.d[0].status, STORE_RCPT_SENDING);
    assert_int_equal(c.d[0].next_attempt_at, T0 + 70);   /* the lease */
    assert_int_equal(c.d[0].attempts, 0);
    assert_int_equal(c.d[0].created_at, T0);
    assert_string_equal(c.d[1].rcpt, "two@other.test");
    assert_string_equal(c.d[1].domain, "other.test");
    assert_string_equal(c.d[2].rcpt, "three@remote.test");
    assert_int_equal(c.d[2].account_id, b);
    assert_int_equal(c.d[2].message_id, m2);
    /* durable: another handle sees the lease */
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM outbound_recipients "
                                    "WHERE status = 'sending' AND next_attempt_at = 1700000070"), 3);

    /* not claimed twice while leased, and nothing not yet due */
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 69, T0 + 200, 10, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 0);
    int64_t n;
    assert_int_equal(store_outbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 4);                              /* sending is not final */

    /* the lease runs out (the attempt crashed): claimable again, max respected */
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 70, T0 + 130, 2, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.d[0].rcpt, "three@remote.test");   /* same time: lower id first */
    assert_string_equal(c.d[1].rcpt, "one@Remote.TEST");
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 100, T0 + 160, 0, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 0);                            /* max 0 claims nothing */
    /* a callback that stops early: the rest stay claimed until their lease ends */
    c = (struct claimed){ .stop_after = 1 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 100, T0 + 160, 10, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.d[0].rcpt, "two@other.test");
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 101, T0 + 160, 10, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 0);
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 160, T0 + 220, 10, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 4);

    /* inside a caller's transaction the claim is part of it */
    assert_int_equal(store_begin(f->st), STORE_OK);
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 220, T0 + 300, 10, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 4);
    store_rollback(f->st);
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 220, T0 + 300, 10, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 4);
}

/* The callback records the outcome on the same handle. */
static int deliver_now(const struct store_delivery *d, void *arg)
{
    struct claimed *c = arg;
    collect_delivery(d, arg);
    assert_int_equal(store_delivery_update(c->st, d->rcpt_id, STORE_RCPT_DELIVERED, d->attempts + 1,
                                           0, "250 2.0.0 ok", T0 + 2), STORE_OK);
    return 0;
}

static void delivery_update_and_next_due(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a");
    int64_t when = 0;
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_NOTFOUND);
    const char *r[] = { "x@remote.test", "y@remote.test", "z@remote.test" };
    add_message(f->st, a, T0, r, 3);
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_OK);
    assert_int_equal(when, T0);

    struct claimed c = { 0 };
    assert_int_equal(store_delivery_claim(f->st, T0, T0 + 60, 10, collect_delivery, &c), STORE_OK);
    assert_int_equal(c.n, 3);
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_OK);
    assert_int_equal(when, T0 + 60);                     /* leases count: a crash is retried */

    /* x: deferred */
    assert_int_equal(store_delivery_update(f->st, c.d[0].rcpt_id, STORE_RCPT_DEFERRED, 1,
                                           T0 + 30, "451 4.7.1 greylisted", T0 + 1), STORE_OK);
    struct store_delivery d;
    assert_int_equal(store_delivery_get(f->st, c.d[0].rcpt_id, &d), STORE_OK);
    assert_int_equal(d.status, STORE_RCPT_DEFERRED);
    assert_int_equal(d.attempts, 1);
    assert_int_equal(d.next_attempt_at, T0 + 30);
    assert_int_equal(d.updated_at, T0 + 1);
    assert_string_equal(d.last_response, "451 4.7.1 greylisted");
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_OK);
    assert_int_equal(when, T0 + 30);
    /* y: bounced; z: delivered */
    assert_int_equal(store_delivery_update(f->st, c.d[1].rcpt_id, STORE_RCPT_BOUNCED, 1, 0,
                                           "550 5.1.1 no such user", T0 + 1), STORE_OK);
    assert_int_equal(store_delivery_update(f->st, c.d[2].rcpt_id, STORE_RCPT_DELIVERED, 1, 0,
                                           NULL, T0 + 1), STORE_OK);
    assert_int_equal(store_delivery_get(f->st, c.d[2].rcpt_id, &d), STORE_OK);
    assert_string_equal(d.last_response, "");
    int64_t n;
    assert_int_equal(store_outbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_OK);
    assert_int_equal(when, T0 + 30);                     /* final rows are never due */
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0 + 1000, T0 + 1060, 10, collect_delivery, &c),
                     STORE_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.d[0].attempts, 1);
    assert_string_equal(c.d[0].last_response, "451 4.7.1 greylisted");
    /* the callback may write through the handle */
    assert_int_equal(store_delivery_update(f->st, c.d[0].rcpt_id, STORE_RCPT_DEFERRED, 1, T0,
                                           "x", T0), STORE_OK);
    c = (struct claimed){ .st = f->st };
    assert_int_equal(store_delivery_claim(f->st, T0 + 1000, T0 + 1060, 10, deliver_now, &c),
                     STORE_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(store_delivery_get(f->st, c.d[0].rcpt_id, &d), STORE_OK);
    assert_int_equal(d.status, STORE_RCPT_DELIVERED);
    assert_int_equal(d.attempts, 2);
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_NOTFOUND);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM outbound_recipients WHERE "
                                    "status = 'delivered'"), 2);

    /* suppressed is final too */
    const char *r2[] = { "s@remote.test" };
    add_message(f->st, a, T0, r2, 1);
    c = (struct claimed){ 0 };
    assert_int_equal(store_delivery_claim(f->st, T0, T0 + 1, 10, collect_delivery, &c), STORE_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(store_delivery_update(f->st, c.d[0].rcpt_id, STORE_RCPT_SUPPRESSED, 0, 0,
                                           "suppressed", T0), STORE_OK);
    assert_int_equal(store_delivery_get(f->st, c.d[0].rcpt_id, &d), STORE_OK);
    assert_int_equal(d.status, STORE_RCPT_SUPPRESSED);
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_NOTFOUND);

    /* errors */
    assert_int_equal(store_delivery_update(f->st, 999999, STORE_RCPT_DEFERRED, 1, T0, "", T0),
                     STORE_NOTFOUND);
    assert_int_equal(store_delivery_update(f->st, c.d[0].rcpt_id, 6, 1, T0, "", T0), STORE_ERROR);
    assert_int_equal(store_delivery_update(f->st, c.d[0].rcpt_id, -1, 1, T0, "", T0), STORE_ERROR);
    assert_int_equal(store_delivery_get(f->st, 999999, &d), STORE_NOTFOUND);

    /* a long response is cut to fit, on a UTF-8 character boundary */
    char resp[700];
    size_t k = 0;
    memcpy(resp, "550 ", 4);
    k = 4;
    while (k + 2 < sizeof resp - 1) {
        resp[k++] = (char)0xc3;        /* "é" */
        resp[k++] = (char)0xa9;
    }
    resp[k] = '\0';
    assert_int_equal(store_delivery_update(f->st, c.d[0].rcpt_id, STORE_RCPT_BOUNCED, 1, 0, resp,
                                           T0), STORE_OK);
    assert_int_equal(store_delivery_get(f->st, c.d[0].rcpt_id, &d), STORE_OK);
    size_t dl = strlen(d.last_response);
    assert_true(dl <= sizeof d.last_response - 1 && dl >= sizeof d.last_response - 3);
    assert_int_equal(dl % 2, 0);                          /* "550 " + whole "é"s */
    assert_memory_equal(d.last_response, resp, dl);
}

/* ---- concurrent claimers ---- */

#define CLAIMERS 4
#define CLAIM_MSGS 150
#define CLAIM_RCPTS 4

struct claimer {
    const char *dir;
    pthread_barrier_t *start;
    int64_t ids[CLAIM_MSGS * CLAIM_RCPTS];
    int n, failures, rounds;
    struct store *st;
};

static int claimer_cb(const struct store_delivery *d, void *arg)
{
    struct claimer *c = arg;
    if (c->n < CLAIM_MSGS * CLAIM_RCPTS)
        c->ids[c->n] = d->rcpt_id;
    c->n++;
    if (d->status != STORE_RCPT_SENDING)
        c->failures++;
    usleep(100);         /* work outside the claim's transaction: the others get their turn */
    /* half of them delivered at once, the rest left leased (a crashed attempt) */
    if (d->rcpt_id % 2 == 0 &&
        store_delivery_update(c->st, d->rcpt_id, STORE_RCPT_DELIVERED, 1, 0, "250 ok",
                              T0 + 1) != STORE_OK)
        c->failures++;
    return 0;
}

static void *claimer(void *arg)
{
    struct claimer *c = arg;
    char err[256];
    c->st = store_open("sqlite", c->dir, err, sizeof err);
    pthread_barrier_wait(c->start);
    if (!c->st) {
        c->failures++;
        return NULL;
    }
    for (;;) {
        int before = c->n;
        c->rounds++;
        if (store_delivery_claim(c->st, T0 + 10, T0 + 3600, 7, claimer_cb, c) != STORE_OK) {
            c->failures++;
            break;
        }
        if (c->n == before)
            break;
    }
    store_close(c->st);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void concurrent_claimers(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a");
    assert_int_equal(store_begin(f->st), STORE_OK);
    for (int i = 0; i < CLAIM_MSGS; i++) {
        const char *r[CLAIM_RCPTS] = { "a@one.test", "b@two.test", "c@one.test", "d@three.test" };
        add_message(f->st, a, T0 + i % 7, r, CLAIM_RCPTS);
    }
    assert_int_equal(store_commit(f->st), STORE_OK);

    static struct claimer c[CLAIMERS];
    pthread_t t[CLAIMERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CLAIMERS);
    for (int i = 0; i < CLAIMERS; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].dir = f->dir;
        c[i].start = &start;
        assert_int_equal(pthread_create(&t[i], NULL, claimer, &c[i]), 0);
    }
    for (int i = 0; i < CLAIMERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);

    static int64_t all[CLAIM_MSGS * CLAIM_RCPTS];
    int total = 0, busy = 0;
    for (int i = 0; i < CLAIMERS; i++) {
        assert_int_equal(c[i].failures, 0);
        assert_true(c[i].n <= CLAIM_MSGS * CLAIM_RCPTS);
        for (int k = 0; k < c[i].n; k++)
            all[total++] = c[i].ids[k];
        busy += c[i].n > 0;
    }
    /* every row claimed exactly once */
    assert_int_equal(total, CLAIM_MSGS * CLAIM_RCPTS);
    qsort(all, (size_t)total, sizeof all[0], cmp_id);
    for (int i = 1; i < total; i++)
        assert_true(all[i] != all[i - 1]);
    assert_true(busy >= 2);                              /* they did race */
    int64_t n;
    assert_int_equal(store_outbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, CLAIM_MSGS * CLAIM_RCPTS / 2);   /* the odd ones stay leased */
    int64_t when;
    assert_int_equal(store_delivery_next_due(f->st, &when), STORE_OK);
    assert_int_equal(when, T0 + 3600);
}

/* ---- a message and its recipients (GET /v1/messages/{id}) ---- */

static void outbound_get(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");
    const char *r[] = { "z@remote.test", "a@Remote.test", "m@other.test" };
    struct store_outbound m = { .account_id = a, .rcpts = r, .nrcpt = 3, .created_at = T0,
                                .source = "smtp" };
    snprintf(m.mail_from, sizeof m.mail_from, "bounce@example.test");
    snprintf(m.message_id, sizeof m.message_id, "<abc@example.test>");
    const char raw[] = "From: a@example.test\r\n\r\n\0binary\xff\r\n";
    assert_int_equal(store_outbound_insert(f->st, &m, raw, sizeof raw - 1), STORE_OK);
    const char *r2[] = { "q@remote.test" };
    int64_t other = add_message(f->st, b, T0, r2, 1);

    struct store_outbound meta;
    memset(&meta, 0xaa, sizeof meta);
    struct claimed c = { 0 };
    assert_int_equal(store_outbound_get(f->st, a, m.id, &meta, collect_delivery, &c), STORE_OK);
    assert_int_equal(meta.id, m.id);
    assert_int_equal(meta.account_id, a);
    assert_string_equal(meta.mail_from, "bounce@example.test");
    assert_string_equal(meta.message_id, "<abc@example.test>");
    assert_int_equal(meta.created_at, T0);
    assert_string_equal(meta.source, "smtp");
    assert_null(meta.rcpts);
    assert_int_equal(meta.nrcpt, 3);
    assert_int_equal(c.n, 3);                             /* insertion order */
    assert_string_equal(c.d[0].rcpt, "z@remote.test");
    assert_string_equal(c.d[1].rcpt, "a@Remote.test");
    assert_string_equal(c.d[1].domain, "remote.test");
    assert_string_equal(c.d[2].rcpt, "m@other.test");
    assert_int_equal(c.d[0].status, STORE_RCPT_QUEUED);
    assert_int_equal(c.d[0].message_id, m.id);
    /* stopping early, and meta or cb optional */
    c = (struct claimed){ .stop_after = 2 };
    assert_int_equal(store_outbound_get(f->st, a, m.id, NULL, collect_delivery, &c), STORE_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(store_outbound_get(f->st, b, other, &meta, NULL, NULL), STORE_OK);
    assert_string_equal(meta.source, "api");
    assert_int_equal(meta.nrcpt, 1);
    /* another account's message is not found, and nothing is called */
    c = (struct claimed){ 0 };
    assert_int_equal(store_outbound_get(f->st, b, m.id, &meta, collect_delivery, &c),
                     STORE_NOTFOUND);
    assert_int_equal(store_outbound_get(f->st, a, other, &meta, collect_delivery, &c),
                     STORE_NOTFOUND);
    assert_int_equal(store_outbound_get(f->st, a, other + 100, &meta, collect_delivery, &c),
                     STORE_NOTFOUND);
    assert_int_equal(c.n, 0);

    /* raw bytes, byte-exact */
    char *got = NULL, mf[SMTP_MAX_PATH_LEN + 1];
    size_t len = 0;
    assert_int_equal(store_outbound_get_raw(f->st, m.id, &got, &len, mf, sizeof mf), STORE_OK);
    assert_int_equal(len, sizeof raw - 1);
    assert_memory_equal(got, raw, len);
    assert_int_equal(got[len], '\0');
    assert_string_equal(mf, "bounce@example.test");
    free(got);
    char small[8];
    got = NULL;
    assert_int_equal(store_outbound_get_raw(f->st, m.id, &got, &len, small, sizeof small),
                     STORE_ERROR);
    assert_null(got);
    assert_int_equal(store_outbound_get_raw(f->st, m.id, NULL, NULL, mf, sizeof mf), STORE_OK);
    assert_int_equal(store_outbound_get_raw(f->st, other + 100, &got, &len, mf, sizeof mf),
                     STORE_NOTFOUND);

    /* a recipient domain longer than a DNS name is refused at insert */
    char longr[SMTP_MAX_PATH_LEN + 1];    /* "u@" and a 254-octet domain */
    memset(longr, 'd', sizeof longr - 1);
    longr[0] = 'u';
    longr[1] = '@';
    longr[sizeof longr - 1] = '\0';
    const char *r3[] = { longr };
    struct store_outbound m3 = m;
    m3.rcpts = r3;
    m3.nrcpt = 1;
    assert_int_equal(store_outbound_insert(f->st, &m3, raw, 3), STORE_ERROR);
}

/* ---- events and webhooks ---- */

struct wlist { int n; struct store_webhook w[8]; };

static int collect_webhook(const struct store_webhook *w, void *arg)
{
    struct wlist *l = arg;
    l->w[l->n++] = *w;
    return 0;
}

struct elist {
    int n;
    int64_t id[16];
    char type[16][24], json[16][64], rcpt[16][SMTP_MAX_PATH_LEN + 1];
};

static int collect_event(const struct store_event *e, void *arg)
{
    struct elist *l = arg;
    l->id[l->n] = e->id;
    snprintf(l->type[l->n], sizeof l->type[0], "%s", e->type);
    snprintf(l->json[l->n], sizeof l->json[0], "%s", e->json);
    snprintf(l->rcpt[l->n], sizeof l->rcpt[0], "%s", e->rcpt);
    l->n++;
    return 0;
}

struct jlist { int n; struct store_webhook_job j[16]; char json[16][64]; int stop_after; };

static int collect_job(const struct store_webhook_job *j, void *arg)
{
    struct jlist *l = arg;
    l->j[l->n] = *j;
    snprintf(l->json[l->n], sizeof l->json[0], "%s", j->json);
    l->j[l->n].json = NULL;                             /* only valid during the call */
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static int64_t add_webhook(struct store *st, int64_t account, const char *url, const char *events)
{
    struct store_webhook w = { .account_id = account };
    snprintf(w.url, sizeof w.url, "%s", url);
    snprintf(w.events, sizeof w.events, "%s", events);
    snprintf(w.secret, sizeof w.secret, "secret-%s", url);
    assert_int_equal(store_webhook_insert(st, &w), STORE_OK);
    assert_true(w.id > 0 && w.created_at > 0);
    return w.id;
}

static int add_event(struct store *st, int64_t account, int64_t msg, const char *type,
                     const char *json, int64_t created, int64_t *id)
{
    struct store_event e = { .account_id = account, .message_id = msg, .created_at = created,
                             .json = json };
    snprintf(e.type, sizeof e.type, "%s", type);
    snprintf(e.rcpt, sizeof e.rcpt, "x@remote.test");
    int rc = store_event_insert(st, &e);
    if (id)
        *id = e.id;
    return rc;
}

static int job_for(const struct jlist *l, int64_t webhook)
{
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += l->j[i].webhook_id == webhook;
    return n;
}

static void events_fan_out(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");
    const char *r[] = { "x@remote.test" };
    int64_t ma = add_message(f->st, a, T0, r, 1), mb = add_message(f->st, b, T0, r, 1);
    int64_t all = add_webhook(f->st, a, "https://a.test/all", "");
    int64_t bc = add_webhook(f->st, a, "https://a.test/bc", "Bounce,Complaint");
    int64_t dl = add_webhook(f->st, a, "https://a.test/d", "Delivery");
    int64_t pre = add_webhook(f->st, a, "https://a.test/pre", "Bounc,DeliveryDelay");
    int64_t sp = add_webhook(f->st, a, "https://a.test/sp", "Send, Bounce");
    int64_t lower = add_webhook(f->st, a, "https://a.test/lc", "bounce");
    int64_t ball = add_webhook(f->st, b, "https://b.test/all", "");

    int64_t ev;
    assert_int_equal(add_event(f->st, a, ma, "Bounce", "{\"eventType\":\"Bounce\"}", T0 + 5, &ev),
                     STORE_OK);
    assert_true(ev > 0);
    struct jlist jl = { 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 5, T0 + 65, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 3);
    assert_int_equal(job_for(&jl, all), 1);
    assert_int_equal(job_for(&jl, bc), 1);
    assert_int_equal(job_for(&jl, sp), 1);              /* spaces in the list are ignored */
    assert_int_equal(job_for(&jl, dl) + job_for(&jl, pre) + job_for(&jl, lower) +
                     job_for(&jl, ball), 0);            /* exact, case-sensitive, own account */
    for (int i = 0; i < jl.n; i++) {
        assert_int_equal(jl.j[i].event_id, ev);
        assert_int_equal(jl.j[i].attempts, 0);
        assert_string_equal(jl.json[i], "{\"eventType\":\"Bounce\"}");
        char want[1100];
        snprintf(want, sizeof want, "secret-%s", jl.j[i].url);
        assert_string_equal(jl.j[i].secret, want);       /* the webhook's own url and secret */
    }
    /* due at the event's time, not before */
    assert_int_equal(add_event(f->st, a, ma, "Delivery", "{\"d\":1}", T0 + 50, NULL), STORE_OK);
    jl = (struct jlist){ 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 49, T0 + 109, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 0);
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 50, T0 + 110, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 2);
    assert_int_equal(job_for(&jl, all) + job_for(&jl, dl), 2);

    /* account b's event reaches only b's webhook */
    assert_int_equal(add_event(f->st, b, mb, "Send", "{\"b\":1}", T0 + 50, NULL), STORE_OK);
    jl = (struct jlist){ 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 50, T0 + 110, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 1);
    assert_int_equal(jl.j[0].webhook_id, ball);
    assert_string_equal(jl.json[0], "{\"b\":1}");

    /* an event about another account's message, or for no account: refused */
    assert_int_equal(add_event(f->st, a, mb, "Send", "{}", T0, NULL), STORE_NOTFOUND);
    assert_int_equal(add_event(f->st, b + 10, 0, "Send", "{}", T0, NULL), STORE_NOTFOUND);
    assert_int_equal(add_event(f->st, a, 0, "", "{}", T0, NULL), STORE_ERROR);
    assert_int_equal(add_event(f->st, a, 0, "Send", NULL, T0, NULL), STORE_ERROR);
    assert_int_equal(add_event(f->st, a, 0, "Send,Bounce", "{}", T0, NULL), STORE_ERROR);
    /* about no message */
    assert_int_equal(add_event(f->st, a, 0, "Reject", "{\"r\":1}", 0, &ev), STORE_OK);

    /* inside a caller's transaction: rolled back with it, jobs too */
    int64_t jobs = sql_int(f->db, "SELECT COUNT(*) FROM webhook_jobs");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(add_event(f->st, a, ma, "Complaint", "{}", T0, NULL), STORE_OK);
    store_rollback(f->st);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM webhook_jobs"), jobs);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM events WHERE type = 'Complaint'"), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(add_event(f->st, a, ma, "Complaint", "{}", T0, NULL), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM webhook_jobs"), jobs + 2);

    /* the list: per account and message, in order */
    struct elist el = { 0 };
    assert_int_equal(store_event_list(f->st, a, ma, collect_event, &el), STORE_OK);
    assert_int_equal(el.n, 3);
    assert_string_equal(el.type[0], "Bounce");
    assert_string_equal(el.type[1], "Delivery");
    assert_string_equal(el.type[2], "Complaint");
    assert_string_equal(el.json[1], "{\"d\":1}");
    assert_string_equal(el.rcpt[0], "x@remote.test");
    assert_true(el.id[0] < el.id[1] && el.id[1] < el.id[2]);
    el = (struct elist){ 0 };
    assert_int_equal(store_event_list(f->st, b, ma, collect_event, &el), STORE_OK);
    assert_int_equal(el.n, 0);                           /* not b's message */
    assert_int_equal(store_event_list(f->st, a, mb, collect_event, &el), STORE_OK);
    assert_int_equal(el.n, 0);
    assert_int_equal(store_event_list(f->st, a, 0, collect_event, &el), STORE_OK);
    assert_int_equal(el.n, 1);                           /* message 0: about no message */
    assert_string_equal(el.type[0], "Reject");

    /* webhooks: list and delete per account; a deleted webhook's jobs go */
    struct wlist wl = { 0 };
    assert_int_equal(store_webhook_list(f->st, a, collect_webhook, &wl), STORE_OK);
    assert_int_equal(wl.n, 6);
    assert_int_equal(wl.w[1].id, bc);
    assert_string_equal(wl.w[1].url, "https://a.test/bc");
    assert_string_equal(wl.w[1].events, "Bounce,Complaint");
    assert_string_equal(wl.w[1].secret, "secret-https://a.test/bc");
    assert_int_equal(wl.w[1].account_id, a);
    wl = (struct wlist){ 0 };
    assert_int_equal(store_webhook_list(f->st, b, collect_webhook, &wl), STORE_OK);
    assert_int_equal(wl.n, 1);
    assert_int_equal(store_webhook_delete(f->st, b, bc), STORE_NOTFOUND);
    assert_int_equal(store_webhook_delete(f->st, a, ball), STORE_NOTFOUND);
    assert_int_equal(store_webhook_delete(f->st, a, bc), STORE_OK);
    assert_int_equal(store_webhook_delete(f->st, a, bc), STORE_NOTFOUND);
    char q[128];
    snprintf(q, sizeof q, "SELECT COUNT(*) FROM webhook_jobs WHERE webhook_id = %lld",
             (long long)bc);
    assert_int_equal(sql_int(f->db, q), 0);
    wl = (struct wlist){ 0 };
    assert_int_equal(store_webhook_list(f->st, b, collect_webhook, &wl), STORE_OK);
    assert_int_equal(wl.n, 1);                           /* b's untouched */
    struct store_webhook w = { .account_id = b + 10 };
    snprintf(w.url, sizeof w.url, "https://x.test/");
    snprintf(w.secret, sizeof w.secret, "s");
    assert_int_equal(store_webhook_insert(f->st, &w), STORE_NOTFOUND);
    w.account_id = a;
    w.url[0] = '\0';
    assert_int_equal(store_webhook_insert(f->st, &w), STORE_ERROR);
}

static void webhook_jobs(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a");
    int64_t w1 = add_webhook(f->st, a, "https://a.test/1", "");
    add_webhook(f->st, a, "https://a.test/2", "");
    assert_int_equal(add_event(f->st, a, 0, "Send", "{\"n\":1}", T0, NULL), STORE_OK);

    struct jlist jl = { 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0, T0 + 60, 0, collect_job, &jl), STORE_OK);
    assert_int_equal(jl.n, 0);
    assert_int_equal(store_webhook_job_claim(f->st, T0, T0 + 60, 16, collect_job, &jl), STORE_OK);
    assert_int_equal(jl.n, 2);
    int64_t j1 = jl.j[0].webhook_id == w1 ? jl.j[0].id : jl.j[1].id;
    int64_t j2 = jl.j[0].webhook_id == w1 ? jl.j[1].id : jl.j[0].id;
    /* leased: not claimed again before the lease ends */
    jl = (struct jlist){ 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 59, T0 + 120, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 0);

    /* j1 failed: retry at T0 + 10 with attempts 1, lease cleared */
    assert_int_equal(store_webhook_job_finish(f->st, j1, false, 1, T0 + 10), STORE_OK);
    jl = (struct jlist){ 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 9, T0 + 70, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 0);
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 10, T0 + 70, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 1);
    assert_int_equal(jl.j[0].id, j1);
    assert_int_equal(jl.j[0].attempts, 1);
    assert_string_equal(jl.json[0], "{\"n\":1}");
    /* j1 delivered: gone */
    assert_int_equal(store_webhook_job_finish(f->st, j1, true, 2, 0), STORE_OK);
    assert_int_equal(store_webhook_job_finish(f->st, j1, true, 2, 0), STORE_NOTFOUND);
    assert_int_equal(store_webhook_job_finish(f->st, j1, false, 2, T0), STORE_NOTFOUND);

    /* j2's lease ran out (the dispatcher died): claimable again */
    jl = (struct jlist){ 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 60, T0 + 120, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 1);
    assert_int_equal(jl.j[0].id, j2);
    assert_int_equal(jl.j[0].attempts, 0);
    assert_int_equal(store_webhook_job_finish(f->st, j2, true, 1, 0), STORE_OK);
    jl = (struct jlist){ 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 10000, T0 + 10060, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 0);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM webhook_jobs"), 0);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM events"), 1);   /* events stay */

    /* max and early stop; the callback may finish jobs through the handle */
    for (int i = 0; i < 3; i++)
        assert_int_equal(add_event(f->st, a, 0, "Send", "{}", T0 + i, NULL), STORE_OK);
    jl = (struct jlist){ .stop_after = 2 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 100, T0 + 160, 4, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 2);
    assert_true(jl.j[0].id < jl.j[1].id);
    jl = (struct jlist){ 0 };
    assert_int_equal(store_webhook_job_claim(f->st, T0 + 100, T0 + 160, 16, collect_job, &jl),
                     STORE_OK);
    assert_int_equal(jl.n, 2);                           /* 6 jobs, 4 leased above */
}

/* ---- suppressions ---- */

struct slist { int n; struct store_suppression s[8]; };

static int collect_sup(const struct store_suppression *s, void *arg)
{
    struct slist *l = arg;
    l->s[l->n++] = *s;
    return 0;
}

static int put(struct store *st, int64_t account, const char *addr, const char *reason,
               int64_t at)
{
    struct store_suppression s = { .account_id = account, .created_at = at };
    snprintf(s.address, sizeof s.address, "%s", addr);
    snprintf(s.reason, sizeof s.reason, "%s", reason);
    snprintf(s.detail, sizeof s.detail, "%s: 5.1.1", reason);
    return store_suppression_put(st, &s);
}

static void suppressions(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");
    assert_int_equal(put(f->st, a, "Bob@Example.TEST", "bounce", T0), STORE_OK);
    assert_int_equal(put(f->st, a, "carol@example.test", "complaint", T0 + 1), STORE_OK);
    assert_int_equal(put(f->st, a, "alice@example.test", "manual", T0 + 2), STORE_OK);
    assert_int_equal(put(f->st, b, "bob@example.test", "manual", T0 + 3), STORE_OK);

    struct store_suppression s;
    assert_int_equal(store_suppression_get(f->st, a, "BOB@example.test", &s), STORE_OK);
    assert_string_equal(s.address, "bob@example.test");  /* the whole address lower-cased */
    assert_string_equal(s.reason, "bounce");
    assert_string_equal(s.detail, "bounce: 5.1.1");
    assert_int_equal(s.created_at, T0);
    assert_int_equal(s.account_id, a);
    assert_int_equal(store_suppression_get(f->st, a, "nobody@example.test", &s), STORE_NOTFOUND);
    assert_int_equal(store_suppression_get(f->st, a, "", &s), STORE_NOTFOUND);

    /* replace */
    assert_int_equal(put(f->st, a, "bob@EXAMPLE.test", "complaint", T0 + 9), STORE_OK);
    assert_int_equal(store_suppression_get(f->st, a, "bob@example.test", &s), STORE_OK);
    assert_string_equal(s.reason, "complaint");
    assert_int_equal(s.created_at, T0 + 9);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM suppressions"), 4);
    /* b's is its own */
    assert_int_equal(store_suppression_get(f->st, b, "bob@example.test", &s), STORE_OK);
    assert_string_equal(s.reason, "manual");

    /* paging: in address order, after a cursor */
    struct slist l = { 0 };
    assert_int_equal(store_suppression_list(f->st, a, "", 2, collect_sup, &l), STORE_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.s[0].address, "alice@example.test");
    assert_string_equal(l.s[1].address, "bob@example.test");
    l = (struct slist){ 0 };
    assert_int_equal(store_suppression_list(f->st, a, "Bob@example.test", 2, collect_sup, &l),
                     STORE_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.s[0].address, "carol@example.test");
    assert_string_equal(l.s[0].reason, "complaint");
    l = (struct slist){ 0 };
    assert_int_equal(store_suppression_list(f->st, a, "carol@example.test", 2, collect_sup, &l),
                     STORE_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(store_suppression_list(f->st, a, NULL, 10, collect_sup, &l), STORE_OK);
    assert_int_equal(l.n, 3);
    l = (struct slist){ 0 };
    assert_int_equal(store_suppression_list(f->st, b, "", 10, collect_sup, &l), STORE_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.s[0].account_id, b);

    /* delete: case-insensitive, per account */
    assert_int_equal(store_suppression_delete(f->st, b, "carol@example.test"), STORE_NOTFOUND);
    assert_int_equal(store_suppression_delete(f->st, a, "CAROL@example.test"), STORE_OK);
    assert_int_equal(store_suppression_delete(f->st, a, "carol@example.test"), STORE_NOTFOUND);
    assert_int_equal(store_suppression_get(f->st, a, "carol@example.test", &s), STORE_NOTFOUND);
    assert_int_equal(store_suppression_delete(f->st, b, "bob@example.test"), STORE_OK);
    assert_int_equal(store_suppression_get(f->st, a, "bob@example.test", &s), STORE_OK);

    /* errors */
    assert_int_equal(put(f->st, b + 10, "x@example.test", "manual", 0), STORE_NOTFOUND);
    assert_int_equal(put(f->st, a, "", "manual", 0), STORE_ERROR);
    assert_int_equal(put(f->st, a, "x@example.test", "", 0), STORE_ERROR);
    assert_int_equal(put(f->st, a, "now@example.test", "manual", 0), STORE_OK);
    assert_int_equal(store_suppression_get(f->st, a, "now@example.test", &s), STORE_OK);
    assert_true(s.created_at > T0);
}

/* ---- service secrets ---- */

struct racer {
    const char *dir;
    pthread_barrier_t *start;
    unsigned char key[32];
    int rc;
};

static void *secret_racer(void *arg)
{
    struct racer *r = arg;
    char err[256];
    struct store *st = store_open("sqlite", r->dir, err, sizeof err);
    pthread_barrier_wait(r->start);
    r->rc = st ? store_secret_get(st, "race", r->key, sizeof r->key) : STORE_ERROR;
    store_close(st);
    return NULL;
}

static void secrets(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    struct store *other = open_ok(f);
    unsigned char k1[32], k2[32], k3[32], zero[32] = { 0 };
    assert_int_equal(store_secret_get(f->st, "verp", k1, sizeof k1), STORE_OK);
    assert_memory_not_equal(k1, zero, sizeof k1);
    assert_int_equal(store_secret_get(other, "verp", k2, sizeof k2), STORE_OK);
    assert_memory_equal(k1, k2, sizeof k1);                 /* created once */
    assert_int_equal(store_secret_get(f->st, "verp", k2, sizeof k2), STORE_OK);
    assert_memory_equal(k1, k2, sizeof k1);
    assert_int_equal(store_secret_get(f->st, "other", k3, sizeof k3), STORE_OK);
    assert_memory_not_equal(k1, k3, sizeof k1);             /* one per name */
    unsigned char big[64], small[16];
    assert_int_equal(store_secret_get(f->st, "verp", big, sizeof big), STORE_ERROR);
    assert_int_equal(store_secret_get(f->st, "big", big, sizeof big), STORE_OK);
    assert_int_equal(store_secret_get(f->st, "tiny", small, sizeof small), STORE_ERROR);
    assert_int_equal(store_secret_get(f->st, "", k3, sizeof k3), STORE_ERROR);
    store_close(other);
    store_close(f->st);
    f->st = open_ok(f);
    assert_int_equal(store_secret_get(f->st, "verp", k2, sizeof k2), STORE_OK);
    assert_memory_equal(k1, k2, sizeof k1);                 /* durable */

    /* handles racing to create one: all agree */
    struct racer r[4];
    pthread_t t[4];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 4);
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){ .dir = f->dir, .start = &start };
        assert_int_equal(pthread_create(&t[i], NULL, secret_racer, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].rc, STORE_OK);
        assert_memory_equal(r[i].key, r[0].key, sizeof r[0].key);
    }
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM secrets WHERE name = 'race'"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migration_from_step1_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(dkim_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(delivery_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(delivery_update_and_next_due, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_claimers, setup, teardown),
        cmocka_unit_test_setup_teardown(outbound_get, setup, teardown),
        cmocka_unit_test_setup_teardown(events_fan_out, setup, teardown),
        cmocka_unit_test_setup_teardown(webhook_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(suppressions, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
