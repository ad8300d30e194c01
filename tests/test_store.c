/* The SQLite store through store.h: files and modes, durability across
 * close, migrations, every function, uniqueness and cross-account
 * isolation, ordering and paging, transactions (group commit, rollback,
 * nesting) and concurrent writers on their own handles. Each test gets a
 * fresh data_dir under a temporary directory. */
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

struct fx {
    char tmp[64];
    char dir[128];      /* tmp/var/data: does not exist before the first open */
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
    snprintf(f->tmp, sizeof f->tmp, "/tmp/sesame-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    snprintf(f->dir, sizeof f->dir, "%s/var/data", f->tmp);
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
    assert_true(a.id > 0);
    return a.id;
}

/* Reads one integer with plain SQLite, to look under the interface. */
static int64_t sql_int(const char *db, const char *q)
{
    sqlite3 *h;
    sqlite3_stmt *s;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, q, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}

/* ---- open, files, durability, migrations ---- */

static void open_creates_private_files(void **state)
{
    struct fx *f = *state;
    mode_t old = umask(0);          /* even a permissive umask must not widen the modes */
    f->st = open_ok(f);
    umask(old);
    struct stat sb;
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    add_account(f->st, "acme");
    char wal[200];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    assert_int_equal(stat(wal, &sb), 0);     /* WAL mode */
    assert_int_equal(sb.st_mode & 0077, 0);

    /* an existing database with loose modes is tightened */
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(chmod(f->db, 0644), 0);
    f->st = open_ok(f);
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void open_refuses_other_stores(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    assert_null(store_open("postgresql://u:secret@db/sesame", f->dir, err, sizeof err));
    assert_string_equal(err, "the PostgreSQL store is not built yet; use store = sqlite");
    err[0] = '\0';
    assert_null(store_open("mysql://u:hunter2@db", f->dir, err, sizeof err));
    assert_non_null(strstr(err, "sqlite"));
    assert_null(strstr(err, "hunter2"));
    err[0] = '\0';
    assert_null(store_open("sqlite", "", err, sizeof err));
    assert_true(err[0] != '\0');
    /* NULL and "" mean sqlite */
    struct store *st = store_open(NULL, f->dir, err, sizeof err);
    assert_non_null(st);
    store_close(st);
    st = store_open("", f->dir, err, sizeof err);
    assert_non_null(st);
    store_close(st);
    /* a data_dir that is a file */
    char file[200];
    snprintf(file, sizeof file, "%s/plain", f->tmp);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    err[0] = '\0';
    assert_null(store_open("sqlite", file, err, sizeof err));
    assert_true(err[0] != '\0');
}

static void reopen_keeps_data_and_migrations_are_idempotent(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t id = add_account(f->st, "durable");
    store_close(f->st);
    f->st = NULL;
    int64_t v1 = sql_int(f->db, "PRAGMA user_version");
    assert_true(v1 >= 1);
    for (int i = 0; i < 3; i++) {
        f->st = open_ok(f);
        struct store_account a;
        assert_int_equal(store_account_get_by_name(f->st, "durable", &a), STORE_OK);
        assert_int_equal(a.id, id);
        store_close(f->st);
        f->st = NULL;
        assert_int_equal(sql_int(f->db, "PRAGMA user_version"), v1);
    }
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM accounts"), 1);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM sqlite_master "
                                    "WHERE name = 'domains_one_verified'"), 1);

    /* a schema from a newer sesame is refused, not downgraded */
    char q[64];
    snprintf(q, sizeof q, "PRAGMA user_version = %d", (int)v1 + 5);
    sql_int(f->db, q);
    char err[256] = "";
    assert_null(store_open("sqlite", f->dir, err, sizeof err));
    assert_non_null(strstr(err, "newer"));
}

/* ---- accounts and credentials ---- */

static void accounts(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    struct store_account a = { .sandbox = false, .max_24h = 50000, .max_rate = 14,
                               .dmarc_report_only = true };
    snprintf(a.name, sizeof a.name, "Acme.Corp-1");
    assert_int_equal(store_account_insert(f->st, &a), STORE_OK);
    assert_true(a.created_at > 1600000000);

    struct store_account b;
    assert_int_equal(store_account_get(f->st, a.id, &b), STORE_OK);
    assert_string_equal(b.name, "Acme.Corp-1");
    assert_false(b.sandbox);
    assert_int_equal(b.max_24h, 50000);
    assert_int_equal(b.max_rate, 14);
    assert_true(b.dmarc_report_only);
    assert_int_equal(b.created_at, a.created_at);
    /* names compare case-insensitively: no look-alike accounts */
    assert_int_equal(store_account_get_by_name(f->st, "acme.corp-1", &b), STORE_OK);
    assert_int_equal(b.id, a.id);
    struct store_account dup = { .max_24h = 1, .max_rate = 1 };
    snprintf(dup.name, sizeof dup.name, "Acme.Corp-1");
    assert_int_equal(store_account_insert(f->st, &dup), STORE_EXISTS);
    snprintf(dup.name, sizeof dup.name, "ACME.CORP-1");
    assert_int_equal(store_account_insert(f->st, &dup), STORE_EXISTS);

    assert_int_equal(store_account_get(f->st, a.id + 100, &b), STORE_NOTFOUND);
    assert_int_equal(store_account_get_by_name(f->st, "nobody", &b), STORE_NOTFOUND);

    a.sandbox = true;
    a.max_24h = 7;
    a.max_rate = 3;
    a.dmarc_report_only = false;
    assert_int_equal(store_account_update(f->st, &a), STORE_OK);
    assert_int_equal(store_account_get(f->st, a.id, &b), STORE_OK);
    assert_true(b.sandbox);
    assert_int_equal(b.max_24h, 7);
    assert_int_equal(b.max_rate, 3);
    assert_false(b.dmarc_report_only);
    a.id += 100;
    assert_int_equal(store_account_update(f->st, &a), STORE_NOTFOUND);
}

static void credentials(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");
    const char *h1 = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
    assert_int_equal(store_credential_insert(f->st, a, STORE_CRED_API_KEY, "0123abcd", h1),
                     STORE_OK);
    /* unique per kind, whichever account */
    assert_int_equal(store_credential_insert(f->st, b, STORE_CRED_API_KEY, "0123abcd", "x"),
                     STORE_EXISTS);
    assert_int_equal(store_credential_insert(f->st, b, STORE_CRED_SMTP, "0123abcd", "y"),
                     STORE_OK);
    /* no such account */
    assert_int_equal(store_credential_insert(f->st, b + 99, STORE_CRED_SMTP, "zz", "y"),
                     STORE_NOTFOUND);

    int64_t acct = 0;
    char hash[STORE_HASH_MAX + 1];
    assert_int_equal(store_credential_get(f->st, STORE_CRED_API_KEY, "0123abcd", &acct,
                                          hash, sizeof hash), STORE_OK);
    assert_int_equal(acct, a);
    assert_string_equal(hash, h1);
    assert_int_equal(store_credential_get(f->st, STORE_CRED_SMTP, "0123abcd", &acct,
                                          hash, sizeof hash), STORE_OK);
    assert_int_equal(acct, b);
    assert_string_equal(hash, "y");
    assert_int_equal(store_credential_get(f->st, STORE_CRED_API_KEY, "0123abcD", &acct,
                                          hash, sizeof hash), STORE_NOTFOUND);
    assert_int_equal(store_credential_get(f->st, STORE_CRED_API_KEY, "", &acct,
                                          hash, sizeof hash), STORE_NOTFOUND);
    /* a buffer too small is an error, never a truncated hash */
    char small[8];
    assert_int_equal(store_credential_get(f->st, STORE_CRED_API_KEY, "0123abcd", &acct,
                                          small, sizeof small), STORE_ERROR);
    /* over-long values are refused */
    char longv[STORE_HASH_MAX + 10];
    memset(longv, 'h', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(store_credential_insert(f->st, a, STORE_CRED_SMTP, "ok", longv), STORE_ERROR);
    assert_int_equal(store_credential_insert(f->st, a, STORE_CRED_SMTP, longv, "h"), STORE_ERROR);
}

/* ---- domains and senders ---- */

struct dlist { int n; char names[8][DNS_MAX_NAME_LEN + 1]; int stop_after; };

static int collect_domain(const struct store_domain *d, void *arg)
{
    struct dlist *l = arg;
    snprintf(l->names[l->n], sizeof l->names[0], "%s", d->domain);
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static void domains(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");

    struct store_domain d = { .account_id = a };
    snprintf(d.domain, sizeof d.domain, "Example.TEST.");
    snprintf(d.verify_token, sizeof d.verify_token, "tok-a");
    assert_int_equal(store_domain_insert(f->st, &d), STORE_OK);
    assert_string_equal(d.domain, "example.test");      /* kept lower case, no dot */
    assert_true(d.id > 0 && d.created_at > 0);
    struct store_domain dup = { .account_id = a };
    snprintf(dup.domain, sizeof dup.domain, "example.test");
    assert_int_equal(store_domain_insert(f->st, &dup), STORE_EXISTS);

    /* another account may claim it while nobody has it verified */
    struct store_domain db = { .account_id = b };
    snprintf(db.domain, sizeof db.domain, "example.test");
    assert_int_equal(store_domain_insert(f->st, &db), STORE_OK);

    struct store_domain got;
    assert_int_equal(store_domain_find_verified(f->st, "example.test", &got), STORE_NOTFOUND);
    d.status = STORE_ID_VERIFIED;
    d.verified_at = 1700000000;
    d.checked_at = 1700000001;
    snprintf(d.mail_from_domain, sizeof d.mail_from_domain, "bounce.example.test");
    assert_int_equal(store_domain_update(f->st, &d), STORE_OK);
    assert_int_equal(store_domain_find_verified(f->st, "EXAMPLE.test.", &got), STORE_OK);
    assert_int_equal(got.account_id, a);
    assert_int_equal(got.id, d.id);
    assert_string_equal(got.verify_token, "tok-a");
    assert_string_equal(got.mail_from_domain, "bounce.example.test");
    assert_int_equal(got.verified_at, 1700000000);
    assert_int_equal(got.checked_at, 1700000001);

    /* only one account can have it verified: b's update changes nothing */
    db.status = STORE_ID_VERIFIED;
    db.checked_at = 42;
    assert_int_equal(store_domain_update(f->st, &db), STORE_EXISTS);
    assert_int_equal(store_domain_get(f->st, b, "example.test", &got), STORE_OK);
    assert_int_equal(got.status, STORE_ID_PENDING);
    assert_int_equal(got.checked_at, 0);
    /* nor insert it verified */
    int64_t c = add_account(f->st, "c");
    struct store_domain dc = { .account_id = c, .status = STORE_ID_VERIFIED };
    snprintf(dc.domain, sizeof dc.domain, "example.test");
    assert_int_equal(store_domain_insert(f->st, &dc), STORE_EXISTS);
    /* a's own re-verification is fine */
    assert_int_equal(store_domain_update(f->st, &d), STORE_OK);
    /* once a loses it, b can verify */
    d.status = STORE_ID_FAILED;
    assert_int_equal(store_domain_update(f->st, &d), STORE_OK);
    assert_int_equal(store_domain_update(f->st, &db), STORE_OK);
    assert_int_equal(store_domain_find_verified(f->st, "example.test", &got), STORE_OK);
    assert_int_equal(got.account_id, b);

    /* isolation and missing rows */
    assert_int_equal(store_domain_get(f->st, c, "example.test", &got), STORE_NOTFOUND);
    assert_int_equal(store_domain_find_verified(f->st, "sub.example.test", &got), STORE_NOTFOUND);
    assert_int_equal(store_domain_find_verified(f->st, "", &got), STORE_NOTFOUND);
    struct store_domain ghost = d;
    ghost.id = 9999;
    assert_int_equal(store_domain_update(f->st, &ghost), STORE_NOTFOUND);

    /* list: this account's, by name; the callback can stop it */
    const char *more[] = { "zulu.test", "alpha.test", "mike.test" };
    for (int i = 0; i < 3; i++) {
        struct store_domain x = { .account_id = a };
        snprintf(x.domain, sizeof x.domain, "%s", more[i]);
        assert_int_equal(store_domain_insert(f->st, &x), STORE_OK);
    }
    struct dlist l = { 0 };
    assert_int_equal(store_domain_list(f->st, a, collect_domain, &l), STORE_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.names[0], "alpha.test");
    assert_string_equal(l.names[1], "example.test");
    assert_string_equal(l.names[2], "mike.test");
    assert_string_equal(l.names[3], "zulu.test");
    struct dlist l2 = { .stop_after = 2 };
    assert_int_equal(store_domain_list(f->st, a, collect_domain, &l2), STORE_OK);
    assert_int_equal(l2.n, 2);
    struct dlist l3 = { 0 };
    assert_int_equal(store_domain_list(f->st, c, collect_domain, &l3), STORE_OK);
    assert_int_equal(l3.n, 0);
}

static void senders(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");
    struct store_sender s = { .account_id = a, .expires_at = 1700086400 };
    snprintf(s.address, sizeof s.address, "Alice@Example.TEST");
    snprintf(s.token, sizeof s.token, "confirm-token-1");
    assert_int_equal(store_sender_insert(f->st, &s), STORE_OK);
    assert_string_equal(s.address, "Alice@example.test");   /* local part kept as given */
    assert_true(s.id > 0);

    struct store_sender got;
    assert_int_equal(store_sender_get(f->st, a, "Alice@EXAMPLE.test", &got), STORE_OK);
    assert_int_equal(got.id, s.id);
    assert_int_equal(got.status, STORE_ID_PENDING);
    assert_int_equal(got.expires_at, 1700086400);
    assert_string_equal(got.token, "confirm-token-1");
    assert_int_equal(store_sender_get(f->st, a, "alice@example.test", &got), STORE_NOTFOUND);
    assert_int_equal(store_sender_get(f->st, b, "Alice@example.test", &got), STORE_NOTFOUND);
    assert_int_equal(store_sender_get_by_token(f->st, "confirm-token-1", &got), STORE_OK);
    assert_int_equal(got.account_id, a);
    assert_int_equal(store_sender_get_by_token(f->st, "confirm-token-2", &got), STORE_NOTFOUND);
    assert_int_equal(store_sender_get_by_token(f->st, "", &got), STORE_NOTFOUND);

    struct store_sender dup = { .account_id = a };
    snprintf(dup.address, sizeof dup.address, "Alice@example.test");
    snprintf(dup.token, sizeof dup.token, "other");
    assert_int_equal(store_sender_insert(f->st, &dup), STORE_EXISTS);
    /* the same address for another account is its own identity, tokens are unique */
    struct store_sender sb = { .account_id = b };
    snprintf(sb.address, sizeof sb.address, "Alice@example.test");
    snprintf(sb.token, sizeof sb.token, "confirm-token-1");
    assert_int_equal(store_sender_insert(f->st, &sb), STORE_EXISTS);
    snprintf(sb.token, sizeof sb.token, "confirm-token-b");
    assert_int_equal(store_sender_insert(f->st, &sb), STORE_OK);

    s.status = STORE_ID_VERIFIED;
    s.verified_at = 1700000500;
    assert_int_equal(store_sender_update(f->st, &s), STORE_OK);
    assert_int_equal(store_sender_get(f->st, a, "Alice@example.test", &got), STORE_OK);
    assert_int_equal(got.status, STORE_ID_VERIFIED);
    assert_int_equal(got.verified_at, 1700000500);
    assert_int_equal(store_sender_get(f->st, b, "Alice@example.test", &got), STORE_OK);
    assert_int_equal(got.status, STORE_ID_PENDING);
    s.id = 9999;
    assert_int_equal(store_sender_update(f->st, &s), STORE_NOTFOUND);
}

/* ---- inbound ---- */

static struct store_inbound sample(int64_t account, int i)
{
    struct store_inbound m = { .account_id = account, .received_at = 1700000000 + i };
    snprintf(m.mail_from, sizeof m.mail_from, "sender%d@foreign.test", i);
    snprintf(m.client_ip, sizeof m.client_ip, "127.0.0.%d", 1 + i % 200);
    snprintf(m.helo, sizeof m.helo, "mail.foreign.test");
    snprintf(m.spf, sizeof m.spf, "pass");
    snprintf(m.dkim, sizeof m.dkim, "fail");
    snprintf(m.dmarc, sizeof m.dmarc, "none");
    snprintf(m.message_id, sizeof m.message_id, "<%d@foreign.test>", i);
    snprintf(m.subject, sizeof m.subject, "message %d", i);
    snprintf(m.from, sizeof m.from, "Sender <sender%d@foreign.test>", i);
    m.rcpt_json = "[\"rcpt@example.test\"]";
    m.authres = "mx.sesame.test; spf=pass smtp.mailfrom=foreign.test";
    return m;
}

static int64_t put_inbound(struct store *st, int64_t account, int i)
{
    struct store_inbound m = sample(account, i);
    char raw[64];
    int n = snprintf(raw, sizeof raw, "Subject: message %d\r\n\r\nbody\r\n", i);
    int64_t id = 0;
    assert_int_equal(store_inbound_insert(st, &m, raw, (size_t)n, &id), STORE_OK);
    assert_true(id > 0);
    return id;
}

struct ilist { int n; int64_t ids[64]; int stop_after; };

static int collect_inbound(const struct store_inbound *m, void *arg)
{
    struct ilist *l = arg;
    assert_non_null(m->rcpt_json);
    assert_non_null(m->authres);
    l->ids[l->n++] = m->id;
    return l->stop_after && l->n >= l->stop_after;
}

static void inbound(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");

    struct store_inbound m = sample(a, 7);
    m.quarantine = true;
    const char raw[] = "Subject: bin\r\n\r\n\x00\x01\xff binary \x00 body\r\n";
    int64_t id;
    assert_int_equal(store_inbound_insert(f->st, &m, raw, sizeof raw - 1, &id), STORE_OK);

    struct store_inbound got;
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(store_inbound_get(f->st, a, id, &got, &body, &len), STORE_OK);
    assert_int_equal(len, sizeof raw - 1);
    assert_memory_equal(body, raw, len);
    assert_int_equal(got.id, id);
    assert_int_equal(got.account_id, a);
    assert_int_equal(got.received_at, 1700000007);
    assert_string_equal(got.mail_from, "sender7@foreign.test");
    assert_string_equal(got.rcpt_json, "[\"rcpt@example.test\"]");
    assert_string_equal(got.client_ip, "127.0.0.8");
    assert_string_equal(got.helo, "mail.foreign.test");
    assert_string_equal(got.spf, "pass");
    assert_string_equal(got.dkim, "fail");
    assert_string_equal(got.dmarc, "none");
    assert_string_equal(got.authres, "mx.sesame.test; spf=pass smtp.mailfrom=foreign.test");
    assert_true(got.quarantine);
    assert_string_equal(got.message_id, "<7@foreign.test>");
    assert_string_equal(got.subject, "message 7");
    assert_string_equal(got.from, "Sender <sender7@foreign.test>");
    assert_int_equal(got.size, sizeof raw - 1);
    store_inbound_free(&got);
    assert_null(got.rcpt_json);
    free(body);

    /* metadata only */
    assert_int_equal(store_inbound_get(f->st, a, id, &got, NULL, NULL), STORE_OK);
    assert_int_equal(got.size, sizeof raw - 1);
    store_inbound_free(&got);
    /* another account's message does not exist for b */
    body = NULL;
    assert_int_equal(store_inbound_get(f->st, b, id, &got, &body, &len), STORE_NOTFOUND);
    assert_null(body);
    assert_int_equal(store_inbound_get(f->st, a, id + 1000, &got, &body, &len), STORE_NOTFOUND);
    /* no such account */
    struct store_inbound orphan = sample(b + 50, 1);
    assert_int_equal(store_inbound_insert(f->st, &orphan, "x", 1, &id), STORE_NOTFOUND);
    /* NULL heap fields and an empty message */
    struct store_inbound bare = { .account_id = b };
    assert_int_equal(store_inbound_insert(f->st, &bare, NULL, 0, &id), STORE_OK);
    assert_int_equal(store_inbound_get(f->st, b, id, &got, &body, &len), STORE_OK);
    assert_int_equal(len, 0);
    assert_string_equal(got.rcpt_json, "[]");
    assert_string_equal(got.authres, "");
    assert_true(got.received_at > 1600000000);
    store_inbound_free(&got);
    free(body);

    /* listing: newest first, paging by before_id, per account */
    int64_t ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = put_inbound(f->st, a, i);
    struct ilist l = { 0 };
    assert_int_equal(store_inbound_list(f->st, a, 0, 4, collect_inbound, &l), STORE_OK);
    assert_int_equal(l.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(l.ids[i], ids[9 - i]);
    struct ilist page2 = { 0 };
    assert_int_equal(store_inbound_list(f->st, a, l.ids[3], 4, collect_inbound, &page2),
                     STORE_OK);
    assert_int_equal(page2.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(page2.ids[i], ids[5 - i]);
    struct ilist all = { 0 };
    assert_int_equal(store_inbound_list(f->st, a, 0, 64, collect_inbound, &all), STORE_OK);
    assert_int_equal(all.n, 11);      /* ten plus the binary one, which is oldest */
    for (int i = 1; i < all.n; i++)
        assert_true(all.ids[i] < all.ids[i - 1]);
    struct ilist stopped = { .stop_after = 3 };
    assert_int_equal(store_inbound_list(f->st, a, 0, 64, collect_inbound, &stopped), STORE_OK);
    assert_int_equal(stopped.n, 3);
    struct ilist onlyb = { 0 };
    assert_int_equal(store_inbound_list(f->st, b, 0, 64, collect_inbound, &onlyb), STORE_OK);
    assert_int_equal(onlyb.n, 1);

    int64_t n = 0;
    assert_int_equal(store_inbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 12);
}

/* ---- rules ---- */

struct rlist { int n; int64_t ids[32]; int64_t pos[32]; char json[32][32]; };

static int collect_rule(const struct store_rule *r, void *arg)
{
    struct rlist *l = arg;
    assert_true(l->n < 32);
    l->ids[l->n] = r->id;
    l->pos[l->n] = r->position;
    snprintf(l->json[l->n], sizeof l->json[0], "%s", r->json);
    l->n++;
    return 0;
}

static void rules(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");
    int64_t r1, r2, r3, rb;
    assert_int_equal(store_rule_insert(f->st, a, "{\"n\":1}", &r1), STORE_OK);
    assert_int_equal(store_rule_insert(f->st, b, "{\"b\":1}", &rb), STORE_OK);
    assert_int_equal(store_rule_insert(f->st, a, "{\"n\":2}", &r2), STORE_OK);
    assert_int_equal(store_rule_insert(f->st, a, "{\"n\":3}", &r3), STORE_OK);
    assert_int_equal(store_rule_insert(f->st, b + 40, "{}", &rb), STORE_NOTFOUND);

    struct rlist l = { 0 };
    assert_int_equal(store_rule_list(f->st, a, collect_rule, &l), STORE_OK);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.ids[0], r1);
    assert_int_equal(l.ids[1], r2);
    assert_int_equal(l.ids[2], r3);
    assert_true(l.pos[0] < l.pos[1] && l.pos[1] < l.pos[2]);
    assert_string_equal(l.json[1], "{\"n\":2}");

    /* b cannot delete a's rule */
    assert_int_equal(store_rule_delete(f->st, b, r2), STORE_NOTFOUND);
    assert_int_equal(store_rule_delete(f->st, a, r2), STORE_OK);
    assert_int_equal(store_rule_delete(f->st, a, r2), STORE_NOTFOUND);
    /* appended after the last one, even when the last is deleted in between */
    assert_int_equal(store_rule_delete(f->st, a, r3), STORE_OK);
    int64_t r4;
    assert_int_equal(store_rule_insert(f->st, a, "{\"n\":4}", &r4), STORE_OK);
    struct rlist l2 = { 0 };
    assert_int_equal(store_rule_list(f->st, a, collect_rule, &l2), STORE_OK);
    assert_int_equal(l2.n, 2);
    assert_int_equal(l2.ids[0], r1);
    assert_int_equal(l2.ids[1], r4);
    assert_true(l2.pos[1] > l2.pos[0]);
    struct rlist lb = { 0 };
    assert_int_equal(store_rule_list(f->st, b, collect_rule, &lb), STORE_OK);
    assert_int_equal(lb.n, 1);
    assert_string_equal(lb.json[0], "{\"b\":1}");
}

/* ---- outbound ---- */

static void outbound(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a"), b = add_account(f->st, "b");
    const char *rcpts[] = { "x@remote.test", "y@remote.test", "z@other.test" };
    struct store_outbound m = { .account_id = a, .rcpts = rcpts, .nrcpt = 3,
                                .created_at = 1700000000, .source = "smtp" };
    snprintf(m.mail_from, sizeof m.mail_from, "app@example.test");
    snprintf(m.message_id, sizeof m.message_id, "<1@example.test>");
    const char raw[] = "From: app@example.test\r\n\r\nhello\r\n";
    assert_int_equal(store_outbound_insert(f->st, &m, raw, sizeof raw - 1), STORE_OK);
    assert_true(m.id > 0);
    int64_t n = 0;
    assert_int_equal(store_outbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 3);
    /* the rows delivery starts from */
    char q[200];
    snprintf(q, sizeof q, "SELECT COUNT(*) FROM outbound_recipients WHERE message_id = %lld "
             "AND status = 'queued' AND attempts = 0 AND next_attempt_at = 1700000000",
             (long long)m.id);
    assert_int_equal(sql_int(f->db, q), 3);

    m.created_at = 1700003600;
    m.nrcpt = 1;
    assert_int_equal(store_outbound_insert(f->st, &m, raw, sizeof raw - 1), STORE_OK);
    assert_int_equal(store_outbound_count_since(f->st, a, 1700000000, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_outbound_count_since(f->st, a, 1700000001, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_outbound_count_since(f->st, b, 0, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* when a full quota frees up: the oldest message in the window */
    int64_t at = 0;
    assert_int_equal(store_outbound_oldest_since(f->st, a, 1700000000, &at), STORE_OK);
    assert_int_equal(at, 1700000000);
    assert_int_equal(store_outbound_oldest_since(f->st, a, 1700000001, &at), STORE_OK);
    assert_int_equal(at, 1700003600);
    assert_int_equal(store_outbound_oldest_since(f->st, b, 0, &at), STORE_NOTFOUND);

    /* atomic: a failing recipient leaves no message behind */
    const char *bad[] = { "ok@remote.test", NULL };
    struct store_outbound m2 = m;
    m2.rcpts = bad;
    m2.nrcpt = 2;
    char longr[SMTP_MAX_PATH_LEN + 20];
    memset(longr, 'r', sizeof longr - 1);
    longr[sizeof longr - 1] = '\0';
    bad[1] = longr;
    assert_int_equal(store_outbound_insert(f->st, &m2, raw, 3), STORE_ERROR);
    struct store_outbound m3 = m;
    m3.account_id = b + 77;       /* no such account */
    assert_int_equal(store_outbound_insert(f->st, &m3, raw, 3), STORE_NOTFOUND);
    m3.account_id = a;
    m3.nrcpt = 0;
    assert_int_equal(store_outbound_insert(f->st, &m3, raw, 3), STORE_ERROR);
    assert_int_equal(store_outbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(sql_int(f->db, "SELECT COUNT(*) FROM outbound_messages"), 2);
}

/* ---- transactions ---- */

static void group_commit_and_rollback(void **state)
{
    struct fx *f = *state;
    f->st = open_ok(f);
    int64_t a = add_account(f->st, "a");
    int64_t n;

    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_begin(f->st), STORE_ERROR);       /* no nesting */
    for (int i = 0; i < 100; i++)
        put_inbound(f->st, a, i);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_ERROR);      /* nothing open */
    assert_int_equal(store_inbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 100);
    /* durable: another handle sees them after the first is gone */
    store_close(f->st);
    f->st = open_ok(f);
    assert_int_equal(store_inbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 100);

    assert_int_equal(store_begin(f->st), STORE_OK);
    for (int i = 0; i < 5; i++)
        put_inbound(f->st, a, i);
    int64_t rid;
    assert_int_equal(store_rule_insert(f->st, a, "{}", &rid), STORE_OK);
    store_rollback(f->st);
    store_rollback(f->st);     /* harmless */
    assert_int_equal(store_inbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 100);
    struct rlist l = { 0 };
    assert_int_equal(store_rule_list(f->st, a, collect_rule, &l), STORE_OK);
    assert_int_equal(l.n, 0);

    /* a failing multi-statement write inside a transaction undoes only itself */
    assert_int_equal(store_begin(f->st), STORE_OK);
    put_inbound(f->st, a, 1);
    const char *rc1[] = { "x@remote.test" };
    struct store_outbound m = { .account_id = a + 99, .rcpts = rc1, .nrcpt = 1 };
    assert_int_equal(store_outbound_insert(f->st, &m, "x", 1), STORE_NOTFOUND);
    struct store_account dup = { .max_24h = 1, .max_rate = 1 };
    snprintf(dup.name, sizeof dup.name, "a");
    assert_int_equal(store_account_insert(f->st, &dup), STORE_EXISTS);
    put_inbound(f->st, a, 2);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_inbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 102);
    /* the handle works normally afterwards, and another handle can write */
    put_inbound(f->st, a, 3);
    struct store *other = open_ok(f);
    put_inbound(other, a, 4);
    assert_int_equal(store_begin(other), STORE_OK);
    put_inbound(other, a, 5);
    assert_int_equal(store_commit(other), STORE_OK);
    store_close(other);
    assert_int_equal(store_inbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, 105);
}

/* ---- concurrency ---- */

struct worker {
    const char *dir;
    int64_t account, rule_account;
    int failures;
};

#define WORKERS 4
#define WORKER_SINGLE 20
#define WORKER_BATCHES 5
#define WORKER_BATCH 5
#define WORKER_RULES 5

static void *writer(void *arg)
{
    struct worker *w = arg;
    char err[256];
    struct store *st = store_open("sqlite", w->dir, err, sizeof err);
    if (!st) {
        w->failures++;
        return NULL;
    }
    struct store_inbound m = sample(w->account, 1);
    for (int i = 0; i < WORKER_SINGLE; i++) {
        int64_t id;
        if (store_inbound_insert(st, &m, "raw", 3, &id) != STORE_OK)
            w->failures++;
    }
    for (int b = 0; b < WORKER_BATCHES; b++) {
        if (store_begin(st) != STORE_OK) {
            w->failures++;
            continue;
        }
        for (int i = 0; i < WORKER_BATCH; i++) {
            int64_t id;
            if (store_inbound_insert(st, &m, "raw", 3, &id) != STORE_OK)
                w->failures++;
        }
        if (store_commit(st) != STORE_OK)
            w->failures++;
    }
    /* every worker appends rules to the same account: positions stay unique */
    for (int i = 0; i < WORKER_RULES; i++) {
        int64_t id;
        if (store_rule_insert(st, w->rule_account, "{}", &id) != STORE_OK)
            w->failures++;
    }
    store_close(st);
    return NULL;
}

static void concurrent_writers(void **state)
{
    struct fx *f = *state;
    pthread_t t[WORKERS];
    struct worker w[WORKERS];
    struct store *first = open_ok(f);
    int64_t acc[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        acc[i] = add_account(first, name);
    }
    store_close(first);
    /* threads racing to create and migrate a fresh database: no open fails */
    char fresh[200];
    snprintf(fresh, sizeof fresh, "%s/fresh", f->tmp);
    struct worker opener[WORKERS];
    pthread_t to[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        opener[i] = (struct worker){ .dir = fresh, .account = 1, .rule_account = 1 };
        assert_int_equal(pthread_create(&to[i], NULL, writer, &opener[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(to[i], NULL);
    /* no account 1 there: every insert is refused, but no open or migration failed */
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(opener[i].failures,
                         WORKER_SINGLE + WORKER_BATCHES * WORKER_BATCH + WORKER_RULES);

    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct worker){ .dir = f->dir, .account = acc[i], .rule_account = acc[0] };
        assert_int_equal(pthread_create(&t[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(w[i].failures, 0);
    f->st = open_ok(f);
    int64_t n;
    assert_int_equal(store_inbound_count(f->st, &n), STORE_OK);
    assert_int_equal(n, WORKERS * (WORKER_SINGLE + WORKER_BATCHES * WORKER_BATCH));
    struct rlist l = { 0 };
    assert_int_equal(store_rule_list(f->st, acc[0], collect_rule, &l), STORE_OK);
    assert_int_equal(l.n, WORKERS * WORKER_RULES);
    for (int i = 1; i < l.n; i++)
        assert_true(l.pos[i] > l.pos[i - 1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(open_creates_private_files, setup, teardown),
        cmocka_unit_test_setup_teardown(open_refuses_other_stores, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_keeps_data_and_migrations_are_idempotent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(domains, setup, teardown),
        cmocka_unit_test_setup_teardown(senders, setup, teardown),
        cmocka_unit_test_setup_teardown(inbound, setup, teardown),
        cmocka_unit_test_setup_teardown(rules, setup, teardown),
        cmocka_unit_test_setup_teardown(outbound, setup, teardown),
        cmocka_unit_test_setup_teardown(group_commit_and_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
