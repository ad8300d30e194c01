/* The identities part of the SQLite store (store.h, "identities" and
 * "DKIM keys"): domains with their verification state, background check
 * schedule and last-seen DNS records; single sender addresses with their
 * confirmation tokens (stored hashed by the caller); DKIM key rows. A
 * domain or an address is verified by one account at most: the update
 * that would make a second one returns STORE_EXISTS (and a partial unique
 * index backs it). store_sqlite.c has the schema. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_internal.h"
#include "util/log.h"

/* ---- domains ---- */

static void read_domain(sqlite3_stmt *s, void *p)
{
    struct store_domain *d = p;
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(s, 0);
    d->account_id = sqlite3_column_int64(s, 1);
    sq_col_text(s, 2, d->domain, sizeof d->domain);
    d->status = sqlite3_column_int(s, 3);
    sq_col_text(s, 4, d->verify_token, sizeof d->verify_token);
    sq_col_text(s, 5, d->mail_from_domain, sizeof d->mail_from_domain);
    d->created_at = sqlite3_column_int64(s, 6);
    d->verified_at = sqlite3_column_int64(s, 7);
    d->checked_at = sqlite3_column_int64(s, 8);
    d->mail_from_status = sqlite3_column_int(s, 9);
    d->mail_from_behavior = sqlite3_column_int(s, 10);
    d->next_check_at = sqlite3_column_int64(s, 11);
    d->missing_since = sqlite3_column_int64(s, 12);
    d->check_attempts = sqlite3_column_int(s, 13);
}

int store_domain_insert(struct store *st, struct store_domain *d)
{
    char dom[DNS_MAX_NAME_LEN + 1];
    if (sq_norm_domain(d->domain, dom, sizeof dom) != 0) {
        log_msg(LOG_ERROR, "store", "op=domain_insert error=\"bad domain\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = sq_stmt(st, S_DOM_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = sq_now_or(d->created_at);
    sqlite3_bind_int64(s, 1, d->account_id);
    sq_bind_str(s, 2, dom);
    sqlite3_bind_int(s, 3, d->status);
    sq_bind_arr(s, 4, d->verify_token, sizeof d->verify_token);
    sq_bind_arr(s, 5, d->mail_from_domain, sizeof d->mail_from_domain);
    sqlite3_bind_int64(s, 6, created);
    sqlite3_bind_int64(s, 7, d->verified_at);
    sqlite3_bind_int64(s, 8, d->checked_at);
    sqlite3_bind_int(s, 9, d->mail_from_status);
    sqlite3_bind_int(s, 10, d->mail_from_behavior);
    sqlite3_bind_int64(s, 11, d->next_check_at);
    sqlite3_bind_int64(s, 12, d->missing_since);
    sqlite3_bind_int(s, 13, d->check_attempts);
    int rc = sq_write_rc(st, "domain_insert", sqlite3_step(s));
    sq_done(s);
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
    if (!domain || sq_norm_domain(domain, dom, sizeof dom) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_DOM_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sq_bind_str(s, 2, dom);
    return sq_get_one(st, s, "domain_get", read_domain, out);
}

int store_domain_find_verified(struct store *st, const char *domain, struct store_domain *out)
{
    char dom[DNS_MAX_NAME_LEN + 1];
    if (!domain || sq_norm_domain(domain, dom, sizeof dom) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_DOM_FIND_VERIFIED);
    if (!s)
        return STORE_ERROR;
    sq_bind_str(s, 1, dom);
    return sq_get_one(st, s, "domain_find_verified", read_domain, out);
}

struct owner {
    int64_t account_id;
    char domain[DNS_MAX_NAME_LEN + 1];
};

static void read_owner(sqlite3_stmt *s, void *p)
{
    struct owner *o = p;
    o->account_id = sqlite3_column_int64(s, 0);
    sq_col_text(s, 1, o->domain, sizeof o->domain);
}

static int domain_update_locked(struct store *st, const struct store_domain *d)
{
    struct owner o;
    sqlite3_stmt *s = sq_stmt(st, S_DOM_OWNER);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, d->id);
    int rc = sq_get_one(st, s, "domain_update", read_owner, &o);
    if (rc != STORE_OK)
        return rc;
    if (d->status == STORE_ID_VERIFIED) {
        if (!(s = sq_stmt(st, S_DOM_VERIFIED_ELSEWHERE)))
            return STORE_ERROR;
        sq_bind_str(s, 1, o.domain);
        sqlite3_bind_int64(s, 2, o.account_id);
        rc = sqlite3_step(s);
        sq_done(s);
        if (rc == SQLITE_ROW)
            return STORE_EXISTS;
        if (rc != SQLITE_DONE)
            return sq_fail(st, "domain_update", rc);
    }
    if (!(s = sq_stmt(st, S_DOM_UPDATE)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, d->id);
    sqlite3_bind_int(s, 2, d->status);
    sq_bind_arr(s, 3, d->verify_token, sizeof d->verify_token);
    sq_bind_arr(s, 4, d->mail_from_domain, sizeof d->mail_from_domain);
    sqlite3_bind_int64(s, 5, d->verified_at);
    sqlite3_bind_int64(s, 6, d->checked_at);
    sqlite3_bind_int(s, 7, d->mail_from_status);
    sqlite3_bind_int(s, 8, d->mail_from_behavior);
    sqlite3_bind_int64(s, 9, d->next_check_at);
    sqlite3_bind_int64(s, 10, d->missing_since);
    sqlite3_bind_int(s, 11, d->check_attempts);
    rc = sq_write_rc(st, "domain_update", sqlite3_step(s));
    sq_done(s);
    return rc;
}

int store_domain_update(struct store *st, const struct store_domain *d)
{
    if (sq_op_begin(st) != STORE_OK)
        return STORE_ERROR;
    return sq_op_end(st, domain_update_locked(st, d));
}

int store_domain_list(struct store *st, int64_t account_id, store_domain_cb cb, void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_DOM_LIST);
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
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "domain_list", rc);
}

int store_domain_find_by_mail_from(struct store *st, const char *mail_from_domain,
                                   struct store_domain *out)
{
    char dom[DNS_MAX_NAME_LEN + 1];
    if (!mail_from_domain || sq_norm_domain(mail_from_domain, dom, sizeof dom) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_DOM_FIND_MAIL_FROM);
    if (!s)
        return STORE_ERROR;
    sq_bind_str(s, 1, dom);
    return sq_get_one(st, s, "domain_find_by_mail_from", read_domain, out);
}

int store_domain_delete(struct store *st, int64_t account_id, int64_t id)
{
    sqlite3_stmt *s = sq_stmt(st, S_DOM_DELETE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, account_id);
    return sq_write_one(st, s, "domain_delete");   /* its keys go with it (cascade) */
}

int store_domain_due(struct store *st, int64_t now, int limit, store_domain_cb cb, void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_DOM_DUE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int(s, 2, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_domain d;
        read_domain(s, &d);
        if (cb(&d, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "domain_due", rc);
}

static void read_records(sqlite3_stmt *s, void *p)
{
    *(char **)p = sq_col_dup(s, 0);
}

int store_domain_records_get(struct store *st, int64_t id, char **json)
{
    *json = NULL;
    sqlite3_stmt *s = sq_stmt(st, S_DOM_REC_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    int rc = sq_get_one(st, s, "domain_records_get", read_records, json);
    if (rc == STORE_OK && !*json)
        return STORE_ERROR;   /* out of memory */
    return rc;
}

int store_domain_records_set(struct store *st, int64_t id, const char *json)
{
    sqlite3_stmt *s = sq_stmt(st, S_DOM_REC_SET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, id);
    sq_bind_str(s, 2, json ? json : "");
    return sq_write_one(st, s, "domain_records_set");
}

/* ---- senders ---- */


static void read_sender(sqlite3_stmt *s, void *p)
{
    struct store_sender *x = p;
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(s, 0);
    x->account_id = sqlite3_column_int64(s, 1);
    sq_col_text(s, 2, x->address, sizeof x->address);
    x->status = sqlite3_column_int(s, 3);
    sq_col_text(s, 4, x->token, sizeof x->token);
    x->created_at = sqlite3_column_int64(s, 5);
    x->expires_at = sqlite3_column_int64(s, 6);
    x->verified_at = sqlite3_column_int64(s, 7);
    x->sent_at = sqlite3_column_int64(s, 8);
}

int store_sender_insert(struct store *st, struct store_sender *x)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (sq_norm_address(x->address, addr, sizeof addr) != 0 ||
        sq_too_long("sender.token", x->token, STORE_TOKEN_MAX)) {
        log_msg(LOG_ERROR, "store", "op=sender_insert error=\"bad address or token\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = sq_stmt(st, S_SND_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = sq_now_or(x->created_at);
    sqlite3_bind_int64(s, 1, x->account_id);
    sq_bind_str(s, 2, addr);
    sqlite3_bind_int(s, 3, x->status);
    sq_bind_arr(s, 4, x->token, sizeof x->token);
    sqlite3_bind_int64(s, 5, created);
    sqlite3_bind_int64(s, 6, x->expires_at);
    sqlite3_bind_int64(s, 7, x->verified_at);
    sqlite3_bind_int64(s, 8, x->sent_at);
    int rc = sq_write_rc(st, "sender_insert", sqlite3_step(s));
    sq_done(s);
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
    if (!address || sq_norm_address(address, addr, sizeof addr) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_SND_GET);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    sq_bind_str(s, 2, addr);
    return sq_get_one(st, s, "sender_get", read_sender, out);
}

int store_sender_get_by_token(struct store *st, const char *token, struct store_sender *out)
{
    if (!token || !token[0] || strnlen(token, STORE_TOKEN_MAX + 1) > STORE_TOKEN_MAX)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_SND_GET_TOKEN);
    if (!s)
        return STORE_ERROR;
    sq_bind_str(s, 1, token);
    return sq_get_one(st, s, "sender_get_by_token", read_sender, out);
}

static int sender_update_locked(struct store *st, const struct store_sender *x)
{
    sqlite3_stmt *s;
    if (x->status == STORE_ID_VERIFIED) {
        char addr[SMTP_MAX_PATH_LEN + 1];
        if (sq_norm_address(x->address, addr, sizeof addr) != 0)
            return STORE_ERROR;
        if (!(s = sq_stmt(st, S_SND_VERIFIED_ELSEWHERE)))
            return STORE_ERROR;
        sq_bind_str(s, 1, addr);
        sqlite3_bind_int64(s, 2, x->account_id);
        int rc = sqlite3_step(s);
        sq_done(s);
        if (rc == SQLITE_ROW)
            return STORE_EXISTS;
        if (rc != SQLITE_DONE)
            return sq_fail(st, "sender_update", rc);
    }
    if (!(s = sq_stmt(st, S_SND_UPDATE)))
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, x->id);
    sqlite3_bind_int(s, 2, x->status);
    sqlite3_bind_int64(s, 3, x->verified_at);
    sq_bind_arr(s, 4, x->token, sizeof x->token);
    sqlite3_bind_int64(s, 5, x->expires_at);
    sqlite3_bind_int64(s, 6, x->sent_at);
    return sq_write_one(st, s, "sender_update");
}

int store_sender_update(struct store *st, const struct store_sender *x)
{
    if (sq_too_long("sender.token", x->token, STORE_TOKEN_MAX))
        return STORE_ERROR;
    if (sq_op_begin(st) != STORE_OK)
        return STORE_ERROR;
    return sq_op_end(st, sender_update_locked(st, x));
}

int store_sender_find_verified(struct store *st, const char *address, struct store_sender *out)
{
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (!address || sq_norm_address(address, addr, sizeof addr) != 0)
        return STORE_NOTFOUND;
    sqlite3_stmt *s = sq_stmt(st, S_SND_FIND_VERIFIED);
    if (!s)
        return STORE_ERROR;
    sq_bind_str(s, 1, addr);
    return sq_get_one(st, s, "sender_find_verified", read_sender, out);
}

int store_sender_list(struct store *st, int64_t account_id, store_sender_cb cb, void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_SND_LIST);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, account_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_sender x;
        read_sender(s, &x);
        if (cb(&x, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "sender_list", rc);
}

/* ---- DKIM keys ---- */

static void read_key(sqlite3_stmt *s, struct store_dkim_key *k)
{
    memset(k, 0, sizeof *k);
    k->id = sqlite3_column_int64(s, 0);
    k->domain_id = sqlite3_column_int64(s, 1);
    sq_col_text(s, 2, k->selector, sizeof k->selector);
    sq_col_text(s, 3, k->algorithm, sizeof k->algorithm);
    sq_col_text(s, 4, k->key_path, sizeof k->key_path);
    sq_col_text(s, 5, k->record, sizeof k->record);
    k->status = sqlite3_column_int(s, 6);
    k->created_at = sqlite3_column_int64(s, 7);
    k->retired_at = sqlite3_column_int64(s, 8);
    k->published_at = sqlite3_column_int64(s, 9);
}

int store_dkim_key_insert(struct store *st, struct store_dkim_key *k)
{
    if (!k->selector[0] || !k->algorithm[0] || !k->key_path[0] ||
        sq_too_long("dkim_key.selector", k->selector, sizeof k->selector - 1) ||
        sq_too_long("dkim_key.algorithm", k->algorithm, sizeof k->algorithm - 1) ||
        sq_too_long("dkim_key.key_path", k->key_path, sizeof k->key_path - 1) ||
        sq_too_long("dkim_key.record", k->record, sizeof k->record - 1)) {
        log_msg(LOG_ERROR, "store", "op=dkim_key_insert error=\"bad key fields\"");
        return STORE_ERROR;
    }
    sqlite3_stmt *s = sq_stmt(st, S_KEY_INSERT);
    if (!s)
        return STORE_ERROR;
    int64_t created = sq_now_or(k->created_at);
    sqlite3_bind_int64(s, 1, k->domain_id);
    sq_bind_arr(s, 2, k->selector, sizeof k->selector);
    sq_bind_arr(s, 3, k->algorithm, sizeof k->algorithm);
    sq_bind_arr(s, 4, k->key_path, sizeof k->key_path);
    sq_bind_arr(s, 5, k->record, sizeof k->record);
    sqlite3_bind_int(s, 6, k->status);
    sqlite3_bind_int64(s, 7, created);
    sqlite3_bind_int64(s, 8, k->retired_at);
    int rc = sq_write_rc(st, "dkim_key_insert", sqlite3_step(s));
    sq_done(s);
    if (rc == STORE_OK) {
        k->id = sqlite3_last_insert_rowid(st->db);
        k->created_at = created;
    }
    return rc;
}

int store_dkim_key_update(struct store *st, const struct store_dkim_key *k)
{
    sqlite3_stmt *s = sq_stmt(st, S_KEY_UPDATE);
    if (!s)
        return STORE_ERROR;
    sqlite3_bind_int64(s, 1, k->id);
    sqlite3_bind_int(s, 2, k->status);
    sqlite3_bind_int64(s, 3, k->retired_at);
    sqlite3_bind_int64(s, 4, k->published_at);
    return sq_write_one(st, s, "dkim_key_update");
}

int store_dkim_key_list(struct store *st, int64_t domain_id, store_dkim_key_cb cb, void *arg)
{
    sqlite3_stmt *s = sq_stmt(st, S_KEY_LIST);
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
    sq_done(s);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(st, "dkim_key_list", rc);
}
