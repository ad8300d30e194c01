/* Single sender addresses verified by an opt-in confirmation link; see
 * senders.h and docs/senders.md.
 *
 * The link carries 32 random bytes (libsodium) as hex; the store keeps
 * only their BLAKE2b hash (crypto_generichash, hex), so a copy of the
 * database cannot confirm anything. A resend replaces the hash: the
 * earlier link stops working. Confirming clears it: a link works once.
 *
 * Written around the store's interface: it has no delete for senders, so
 * a removed address is its row marked FAILED with no token (REMOVED below:
 * never an identity, reads as absent, and asking again reuses the row);
 * and it counts no mails per account, so the 24 h limit counts the
 * account's addresses mailed in the window (durable), and this process
 * also remembers every mail it queued per account, resends included
 * (lost at a restart, and per process).
 *
 * It does not: deliver the mail (delivery.c takes it from the queue),
 * speak HTTP or print. The token never reaches a log line. */
#include "service/senders.h"

#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/mail_address.h"
#include "mail/mime_build.h"
#include "service/config.h"
#include "service/identities.h"
#include "service/outbound.h"
#include "util/buf.h"
#include "util/log.h"

#define HASH_HEX_LEN (2 * SENDER_HASH_BYTES)
_Static_assert(HASH_HEX_LEN <= STORE_TOKEN_MAX, "the hash fits the store's token column");

/* A row the account removed (see the top of this file). */
static bool removed(const struct store_sender *s)
{
    return s->status == STORE_ID_FAILED;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- addresses ---------------------------------------------------------- */

static bool atext(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

int sender_address_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (outlen)
        out[0] = '\0';
    size_t n = in ? strnlen(in, 4 * SMTP_MAX_PATH_LEN + 1) : 0;
    if (n == 0 || n > 4 * SMTP_MAX_PATH_LEN)
        return fail(err, errlen, -1, "an address must be 1 to %d octets", SMTP_MAX_PATH_LEN);
    struct mail_address_list l;
    char perr[128] = "";
    if (mail_address_list_parse(in, n, &l, perr, sizeof perr) != 0)
        return fail(err, errlen, -1, "not an address (%s)", perr[0] ? perr : "syntax");
    if (l.count != 1)
        return fail(err, errlen, -1, "one address is expected, not %zu", l.count);
    const char *local = l.box[0].local;
    size_t ll = strlen(local);
    bool ok = ll > 0 && ll <= SMTP_MAX_LOCALPART_LEN && local[0] != '.' &&
              local[ll - 1] != '.' && strstr(local, "..") == NULL;
    for (size_t i = 0; ok && i < ll; i++)
        ok = local[i] == '.' || atext((unsigned char)local[i]);
    if (!ok)
        return fail(err, errlen, -1, "the local part must be 1 to %d ASCII characters of a "
                    "dot-atom (letters, digits, !#$%%&'*+-/=?^_`{|}~ and inner dots)",
                    SMTP_MAX_LOCALPART_LEN);
    char domain[DNS_MAX_NAME_LEN + 1], derr[320];
    if (identity_domain_normalize(l.box[0].domain, domain, sizeof domain, derr, sizeof derr) != 0)
        return fail(err, errlen, -1, "%s", derr);
    size_t total = ll + 1 + strlen(domain);
    if (total > SMTP_MAX_PATH_LEN || total >= outlen)
        return fail(err, errlen, -1, "the address is longer than %d octets", SMTP_MAX_PATH_LEN);
    snprintf(out, outlen, "%s@%s", local, domain);
    return 0;
}

static const char *domain_of(const char *address)
{
    const char *at = strrchr(address, '@');
    return at ? at + 1 : "";
}

/* ---- results -------------------------------------------------------------- */

const char *sender_status_name(int status)
{
    switch (status) {
    case STORE_ID_VERIFIED: return "verified";
    case STORE_ID_EXPIRED: return "expired";
    default: return "pending";
    }
}

/* The row as its account sees it now. */
static void from_row(const struct store_sender *s, const char *account, int64_t now,
                     struct sender_result *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->address, sizeof out->address, "%s", s->address);
    snprintf(out->account, sizeof out->account, "%s", account ? account : "");
    out->status = s->status;
    if (s->status == STORE_ID_PENDING && now > s->expires_at)
        out->status = STORE_ID_EXPIRED;
    out->requested_at = s->sent_at;
    if (out->status == STORE_ID_VERIFIED)
        out->verified_at = s->verified_at;
    else
        out->expires_at = s->expires_at;
}

static void via_domain(const char *address, const struct store_domain *d, const char *account,
                       struct sender_result *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->address, sizeof out->address, "%s", address);
    snprintf(out->account, sizeof out->account, "%s", account);
    out->status = STORE_ID_VERIFIED;
    out->via_domain = true;
    out->verified_at = d->verified_at;
}

static json_t *time_json(int64_t t)
{
    if (t <= 0)
        return json_null();
    time_t tt = (time_t)t;
    struct tm tm;
    char s[32];
    if (!gmtime_r(&tt, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_null();
    return json_string(s);
}

json_t *sender_json(const struct sender_result *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    bool ok = json_object_set_new(o, "address", json_string(r->address)) == 0 &&
              json_object_set_new(o, "status", json_string(sender_status_name(r->status))) == 0 &&
              json_object_set_new(o, "requested_at", time_json(r->requested_at)) == 0 &&
              json_object_set_new(o, "expires_at", time_json(r->expires_at)) == 0 &&
              json_object_set_new(o, "verified_at", time_json(r->verified_at)) == 0;
    if (ok && r->status == STORE_ID_VERIFIED)
        ok = json_object_set_new(o, "via", json_string(r->via_domain ? "domain" : "address")) == 0;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int sender_http_status(int rc, const char **code)
{
    static const struct { int status; const char *code; } map[] = {
        [SENDER_OK] = { 200, NULL },
        [SENDER_BAD_INPUT] = { 400, "invalid_request" },
        [SENDER_NOT_FOUND] = { 404, "not_found" },
        [SENDER_TAKEN] = { 409, "identity_taken" },
        [SENDER_EXPIRED] = { 410, "link_expired" },
        [SENDER_SUPPRESSED] = { 422, "address_suppressed" },
        [SENDER_TOO_SOON] = { 429, "rate_limited" },
        [SENDER_QUOTA] = { 429, "quota_exceeded" },
        [SENDER_UNAVAILABLE] = { 503, "unavailable" },
        [SENDER_STORE_ERROR] = { 500, "internal" },
    };
    if (rc < 0 || (size_t)rc >= sizeof map / sizeof map[0])
        rc = SENDER_STORE_ERROR;
    *code = map[rc].code;
    return map[rc].status;
}

/* ---- the per-process memory of confirmation mails ------------------------ */

struct sent_log {
    int64_t account_id;
    int64_t at[SENDER_MAX_MAILS_24H];   /* a ring of the latest mails' times */
    unsigned n, next;
    struct sent_log *link;
};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sent_log *logs;
static size_t nlogs;

void sender_limits_reset(void)
{
    pthread_mutex_lock(&log_mu);
    while (logs) {
        struct sent_log *l = logs;
        logs = l->link;
        free(l);
    }
    nlogs = 0;
    pthread_mutex_unlock(&log_mu);
}

/* Mails of the account at or after since, and the oldest of them. */
static unsigned log_count(int64_t account_id, int64_t since, int64_t *oldest)
{
    unsigned count = 0;
    pthread_mutex_lock(&log_mu);
    for (struct sent_log *l = logs; l; l = l->link) {
        if (l->account_id != account_id)
            continue;
        for (unsigned i = 0; i < l->n; i++)
            if (l->at[i] >= since) {
                count++;
                if (*oldest == 0 || l->at[i] < *oldest)
                    *oldest = l->at[i];
            }
        break;
    }
    pthread_mutex_unlock(&log_mu);
    return count;
}

static int64_t newest(const struct sent_log *l)
{
    int64_t t = 0;
    for (unsigned i = 0; i < l->n; i++)
        if (l->at[i] > t)
            t = l->at[i];
    return t;
}

static void log_add(int64_t account_id, int64_t now)
{
    pthread_mutex_lock(&log_mu);
    struct sent_log *l = logs;
    while (l && l->account_id != account_id)
        l = l->link;
    if (!l && nlogs >= SENDER_LIMIT_ACCOUNTS) {
        /* make room: the account whose last mail is the oldest */
        struct sent_log **victim = &logs;
        for (struct sent_log **p = &logs; *p; p = &(*p)->link)
            if (newest(*p) < newest(*victim))
                victim = p;
        struct sent_log *v = *victim;
        *victim = v->link;
        free(v);
        nlogs--;
    }
    if (!l && (l = calloc(1, sizeof *l)) != NULL) {
        l->account_id = account_id;
        l->link = logs;
        logs = l;
        nlogs++;
    }
    if (l) {
        l->at[l->next] = now;
        l->next = (l->next + 1) % SENDER_MAX_MAILS_24H;
        if (l->n < SENDER_MAX_MAILS_24H)
            l->n++;
    }
    pthread_mutex_unlock(&log_mu);
}

/* ---- the 24 h limit, from the store ---------------------------------------- */

struct window {
    int64_t since;
    unsigned count;
    int64_t oldest;
};

static int window_cb(const struct store_sender *s, void *arg)
{
    struct window *w = arg;
    if (s->sent_at > 0 && s->sent_at >= w->since) {
        w->count++;
        if (w->oldest == 0 || s->sent_at < w->oldest)
            w->oldest = s->sent_at;
    }
    return 0;
}

/* SENDER_OK, SENDER_QUOTA (out->retry_at set) or SENDER_STORE_ERROR. */
static int check_quota(struct store *st, const struct store_account *account, int64_t now,
                       struct sender_result *out, char *err, size_t errlen)
{
    struct window w = { now - SENDER_WINDOW_S + 1, 0, 0 };
    if (store_sender_list(st, account->id, window_cb, &w) != STORE_OK)
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    int64_t mem_oldest = 0;
    unsigned mem = log_count(account->id, w.since, &mem_oldest);
    unsigned count = w.count;
    int64_t oldest = w.oldest;
    if (mem > count) {
        count = mem;
        oldest = mem_oldest;
    }
    if (count < SENDER_MAX_MAILS_24H)
        return SENDER_OK;
    out->retry_at = oldest > 0 ? oldest + SENDER_WINDOW_S : now + SENDER_WINDOW_S;
    return fail(err, errlen, SENDER_QUOTA, "account %s has sent %d confirmation mails in the "
                "last 24 hours, the most it may: these go to addresses it does not control yet",
                account->name, SENDER_MAX_MAILS_24H);
}

/* ---- the link and the mail ------------------------------------------------ */

static void hash_hex(const unsigned char token[SENDER_TOKEN_BYTES], char out[HASH_HEX_LEN + 1])
{
    unsigned char h[SENDER_HASH_BYTES];
    crypto_generichash(h, sizeof h, token, SENDER_TOKEN_BYTES, NULL, 0);
    sodium_bin2hex(out, HASH_HEX_LEN + 1, h, sizeof h);
    sodium_memzero(h, sizeof h);
}

/* The base of links: [server] public_url, else http:// + the HTTP listener. */
static int link_base(const struct sesame_config *cfg, char *out, size_t outlen)
{
    int n;
    if (cfg->public_url[0])
        n = snprintf(out, outlen, "%s", cfg->public_url);
    else if (cfg->http.text[0])
        n = snprintf(out, outlen, "http://%s", cfg->http.text);
    else
        return -1;
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

/* "24 hours", "90 minutes", "45 seconds" */
static void duration_text(int64_t s, char *out, size_t outlen)
{
    if (s >= 3600 && s % 3600 == 0)
        snprintf(out, outlen, "%lld hour%s", (long long)(s / 3600), s == 3600 ? "" : "s");
    else if (s >= 60 && s % 60 == 0)
        snprintf(out, outlen, "%lld minute%s", (long long)(s / 60), s == 60 ? "" : "s");
    else
        snprintf(out, outlen, "%lld second%s", (long long)s, s == 1 ? "" : "s");
}

static int build_mail(const struct sesame_config *cfg, struct outbound *ob,
                      const struct store_account *account, const char *address,
                      const char *link, int64_t now, int64_t expires_at, struct buf *msg,
                      char *err, size_t errlen)
{
    char from[320], subject[400], ttl[32], until[32] = "";
    snprintf(from, sizeof from, "sesame <%s>", outbound_system_from(ob));
    snprintf(subject, sizeof subject, "Confirm %s for sending with sesame", address);
    duration_text(expires_at - now, ttl, sizeof ttl);
    time_t t = (time_t)expires_at;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(until, sizeof until, "%Y-%m-%d %H:%M UTC", &tm);
    struct buf text;
    buf_init(&text, SENDER_MESSAGE_MAX / 2);
    int rc = buf_printf(&text,
        "Hello,\n"
        "\n"
        "The account \"%s\" of the sesame mail service at %s asked to\n"
        "send email with your address, %s, as its sender.\n"
        "\n"
        "If that is you, or you agree, open this link to confirm it:\n"
        "\n"
        "%s\n"
        "\n"
        "The link works once and expires in %s (%s).\n"
        "Until it is opened, the account cannot send as %s.\n"
        "\n"
        "If you did not ask for this, you can safely ignore this mail: nothing\n"
        "changes unless the link is opened, and no further mail follows from it.\n"
        "\n"
        "-- \n"
        "sesame at %s (an automatic message; replies are not read)\n",
        account->name, cfg->hostname, address, link, ttl, until, address, cfg->hostname);
    if (rc != 0) {
        buf_free(&text);
        return fail(err, errlen, -1, "the confirmation mail is too large");
    }
    const char *to[] = { address };
    const struct mime_header extra[] = {
        { "Auto-Submitted", "auto-generated" },     /* RFC 3834: no auto-replies */
        { "X-Sesame-Account", account->name },
    };
    struct mime_message m = {
        .from = from,
        .to = to, .nto = 1,
        .subject = subject,
        .text = buf_cstr(&text),
        .headers = extra, .nheaders = sizeof extra / sizeof extra[0],
        .message_id_domain = cfg->hostname,
        .now = (time_t)now,
    };
    char why[256] = "";
    rc = mime_build(&m, msg, why, sizeof why);
    sodium_memzero(text.data, text.len);
    buf_free(&text);
    if (rc != 0)
        return fail(err, errlen, -1, "cannot build the confirmation mail: %s", why);
    return 0;
}

/* ---- request ---------------------------------------------------------------- */

/* Who holds the address: OK (nobody: go on), TAKEN, STORE_ERROR, or OK
 * with out filled and *done when this account has it already (its domain
 * or the address verified: that wins over another account's claim, since
 * the account may send as it either way). */
static int holder(struct store *st, const struct store_account *account, const char *address,
                  struct sender_result *out, bool *done, char *err, size_t errlen)
{
    *done = false;
    struct store_domain d;
    int drc = store_domain_find_verified(st, domain_of(address), &d);
    if (drc != STORE_OK && drc != STORE_NOTFOUND)
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    if (drc == STORE_OK && d.account_id == account->id) {
        via_domain(address, &d, account->name, out);
        *done = true;
        return SENDER_OK;
    }
    struct store_sender s;
    int src = store_sender_find_verified(st, address, &s);
    if (src != STORE_OK && src != STORE_NOTFOUND)
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    if (src == STORE_OK && s.account_id == account->id) {
        from_row(&s, account->name, 0, out);
        *done = true;
        return SENDER_OK;
    }
    if (drc == STORE_OK)
        return fail(err, errlen, SENDER_TAKEN, "the domain %s is verified by another "
                    "account: only that account may send as its addresses", d.domain);
    if (src == STORE_OK)
        return fail(err, errlen, SENDER_TAKEN, "%s is verified by another account", address);
    return SENDER_OK;
}

/* Writes the pending row (insert, or update of the existing one). */
static int write_row(struct store *st, struct store_sender *row, bool exists)
{
    if (!exists) {
        int rc = store_sender_insert(st, row);
        if (rc != STORE_EXISTS)
            return rc;
        /* inserted meanwhile by another request: take it over */
        struct store_sender cur;
        if ((rc = store_sender_get(st, row->account_id, row->address, &cur)) != STORE_OK)
            return rc == STORE_NOTFOUND ? STORE_ERROR : rc;
        row->id = cur.id;
        row->created_at = cur.created_at;
    }
    return store_sender_update(st, row);
}

int sender_request(struct store *st, struct outbound *ob, const struct sesame_config *cfg,
                   const struct store_account *account, const char *address, int64_t now,
                   struct sender_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    char addr[SMTP_MAX_PATH_LEN + 1];
    if (sender_address_normalize(address, addr, sizeof addr, err, errlen) != 0)
        return SENDER_BAD_INPUT;
    snprintf(out->address, sizeof out->address, "%s", addr);
    snprintf(out->account, sizeof out->account, "%s", account->name);
    if (strcmp(account->name, OUTBOUND_SYSTEM_ACCOUNT) == 0)
        return fail(err, errlen, SENDER_BAD_INPUT, "the service's own account (%s) has no "
                    "sender addresses", OUTBOUND_SYSTEM_ACCOUNT);
    bool done = false;
    int rc = holder(st, account, addr, out, &done, err, errlen);
    if (rc != SENDER_OK || done)
        return rc;

    struct store_sender row;
    int grc = store_sender_get(st, account->id, addr, &row);
    if (grc != STORE_OK && grc != STORE_NOTFOUND)
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    bool exists = grc == STORE_OK;
    if (exists && row.sent_at > 0 && now - row.sent_at < SENDER_RESEND_INTERVAL_S) {
        out->retry_at = row.sent_at + SENDER_RESEND_INTERVAL_S;
        return fail(err, errlen, SENDER_TOO_SOON, "a confirmation mail went to %s %lld seconds "
                    "ago: ask again in %lld seconds", addr, (long long)(now - row.sent_at),
                    (long long)(out->retry_at - now));
    }
    if ((rc = check_quota(st, account, now, out, err, errlen)) != SENDER_OK)
        return rc;
    if (!ob)
        return fail(err, errlen, SENDER_UNAVAILABLE, "sending is not enabled in this process");
    struct store_account sys;
    if (outbound_system_account(st, &sys) != STORE_OK)
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    char base[SENDER_LINK_MAX - 32 - SENDER_TOKEN_HEX_LEN];
    if (link_base(cfg, base, sizeof base) != 0)
        return fail(err, errlen, SENDER_UNAVAILABLE, "no address for the link: set [server] "
                    "public_url (or a [listen] http address)");
    if (sodium_init() < 0)
        return fail(err, errlen, SENDER_UNAVAILABLE, "libsodium cannot start");

    /* the token, its hash, the link and the mail */
    unsigned char token[SENDER_TOKEN_BYTES];
    char token_hex[SENDER_TOKEN_HEX_LEN + 1], link[SENDER_LINK_MAX];
    randombytes_buf(token, sizeof token);
    sodium_bin2hex(token_hex, sizeof token_hex, token, sizeof token);
    int64_t old_sent = exists ? row.sent_at : 0;
    if (!exists) {
        memset(&row, 0, sizeof row);
        row.account_id = account->id;
        snprintf(row.address, sizeof row.address, "%s", addr);
        row.created_at = now;
    }
    hash_hex(token, row.token);
    row.status = STORE_ID_PENDING;
    row.verified_at = 0;
    row.expires_at = now + (int64_t)cfg->identities_confirm_ttl;
    row.sent_at = now;
    snprintf(link, sizeof link, "%s/v1/confirm?token=%s", base, token_hex);
    struct buf msg;
    buf_init(&msg, SENDER_MESSAGE_MAX);
    rc = build_mail(cfg, ob, account, addr, link, now, row.expires_at, &msg, err, errlen);
    sodium_memzero(token, sizeof token);
    sodium_memzero(token_hex, sizeof token_hex);
    sodium_memzero(link, sizeof link);
    if (rc != 0) {
        buf_free(&msg);
        return SENDER_UNAVAILABLE;
    }

    /* the row first: a link in a mail always has its row */
    if (write_row(st, &row, exists) != STORE_OK) {
        buf_free(&msg);
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    }
    const char *rcpts[] = { addr };
    struct outbound_request req = {
        .account = &sys,
        .mail_from = NULL,
        .rcpts = rcpts, .nrcpt = 1,
        .msg = buf_cstr(&msg), .len = msg.len,
        .source = "system",
        .system = true,
    };
    struct outbound_result res;
    memset(&res, 0, sizeof res);
    outbound_accept(ob, st, &req, &res);
    sodium_memzero(msg.data, msg.len);
    buf_free(&msg);
    if (res.refusal != OUTBOUND_OK) {
        /* nothing went: asking again must not wait for the minute */
        row.sent_at = old_sent;
        if (store_sender_update(st, &row) != STORE_OK)
            log_msg(LOG_WARN, "senders", "event=sent_at_not_restored account=%s address=%s",
                    account->name, addr);
        log_msg(LOG_WARN, "senders", "event=confirmation_not_queued account=%s address=%s "
                "why=\"%s\"", account->name, addr, res.why);
        if (res.refusal == OUTBOUND_ALL_SUPPRESSED)
            return fail(err, errlen, SENDER_SUPPRESSED, "mail to %s bounced or was reported "
                        "before (it is on the service's suppression list): no confirmation "
                        "can be sent to it", addr);
        return fail(err, errlen, SENDER_UNAVAILABLE, "the confirmation mail could not be "
                    "queued (%s): ask again", res.why[0] ? res.why : "refused");
    }
    log_add(account->id, now);
    from_row(&row, account->name, now, out);
    out->mail_sent = true;
    out->message_id = res.message_id;
    log_msg(LOG_INFO, "senders", "event=confirmation_queued account=%s address=%s "
            "message_id=%lld expires_at=%lld", account->name, addr, (long long)res.message_id,
            (long long)row.expires_at);
    return SENDER_OK;
}

/* ---- confirm ---------------------------------------------------------------- */

int sender_confirm(struct store *st, const char *token, int64_t now, struct sender_result *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    unsigned char raw[SENDER_TOKEN_BYTES];
    size_t n = 0;
    if (!token || strnlen(token, SENDER_TOKEN_HEX_LEN + 1) != SENDER_TOKEN_HEX_LEN ||
        sodium_init() < 0 ||
        sodium_hex2bin(raw, sizeof raw, token, SENDER_TOKEN_HEX_LEN, NULL, &n, NULL) != 0 ||
        n != sizeof raw)
        return fail(err, errlen, SENDER_BAD_INPUT, "this is not a confirmation link: its token "
                    "must be %d hexadecimal digits (copy the whole link from the mail)",
                    SENDER_TOKEN_HEX_LEN);
    char hash[HASH_HEX_LEN + 1];
    hash_hex(raw, hash);
    sodium_memzero(raw, sizeof raw);
    struct store_sender s;
    int rc = store_sender_get_by_token(st, hash, &s);
    if (rc == STORE_NOTFOUND || (rc == STORE_OK && s.status != STORE_ID_PENDING &&
                                 s.status != STORE_ID_EXPIRED))
        return fail(err, errlen, SENDER_NOT_FOUND, "unknown or already used link");
    if (rc != STORE_OK)
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    struct store_account acct;
    rc = store_account_get(st, s.account_id, &acct);
    if (rc != STORE_OK)
        return fail(err, errlen, rc == STORE_NOTFOUND ? SENDER_NOT_FOUND : SENDER_STORE_ERROR,
                    rc == STORE_NOTFOUND ? "unknown or already used link"
                                         : "the store is not available");
    if (s.status == STORE_ID_EXPIRED || now > s.expires_at) {
        if (s.status != STORE_ID_EXPIRED) {
            s.status = STORE_ID_EXPIRED;   /* the token stays: the link keeps saying so */
            if (store_sender_update(st, &s) != STORE_OK)
                return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
        }
        from_row(&s, acct.name, now, out);
        log_msg(LOG_INFO, "senders", "event=link_expired account=%s address=%s", acct.name,
                s.address);
        return fail(err, errlen, SENDER_EXPIRED, "this link to confirm %s expired; ask for a "
                    "new one: POST /v1/senders {\"address\": \"%s\"}, or `sesame sender add %s "
                    "--account %s`", s.address, s.address, s.address, acct.name);
    }
    from_row(&s, acct.name, now, out);
    struct store_domain d;
    rc = store_domain_find_verified(st, domain_of(s.address), &d);
    if (rc == STORE_OK && d.account_id != s.account_id)
        return fail(err, errlen, SENDER_TAKEN, "the domain %s is now verified by another "
                    "account: %s cannot be verified for account %s", d.domain, s.address,
                    acct.name);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    s.status = STORE_ID_VERIFIED;
    s.verified_at = now;
    s.token[0] = '\0';          /* single use */
    s.expires_at = 0;
    rc = store_sender_update(st, &s);
    if (rc == STORE_EXISTS)
        return fail(err, errlen, SENDER_TAKEN, "%s has meanwhile been verified by another "
                    "account", s.address);
    if (rc != STORE_OK)
        return fail(err, errlen, SENDER_STORE_ERROR, "the store is not available");
    from_row(&s, acct.name, now, out);
    log_msg(LOG_INFO, "senders", "event=verified account=%s address=%s", acct.name, s.address);
    return SENDER_OK;
}

/* ---- show, list, remove ------------------------------------------------------ */

int sender_show(struct store *st, const struct store_account *account, const char *address,
                int64_t now, struct sender_result *out)
{
    memset(out, 0, sizeof *out);
    char addr[SMTP_MAX_PATH_LEN + 1], err[16];
    if (sender_address_normalize(address, addr, sizeof addr, err, sizeof err) != 0)
        return SENDER_NOT_FOUND;
    struct store_sender s;
    int rc = store_sender_get(st, account->id, addr, &s);
    if (rc == STORE_OK && !removed(&s)) {
        from_row(&s, account->name, now, out);
        return SENDER_OK;
    }
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return SENDER_STORE_ERROR;
    struct store_domain d;
    rc = store_domain_get(st, account->id, domain_of(addr), &d);
    if (rc == STORE_OK && d.status == STORE_ID_VERIFIED) {
        via_domain(addr, &d, account->name, out);
        return SENDER_OK;
    }
    return rc == STORE_OK || rc == STORE_NOTFOUND ? SENDER_NOT_FOUND : SENDER_STORE_ERROR;
}

struct list_arg {
    const char *account;
    int64_t now;
    sender_list_cb cb;
    void *arg;
};

static int list_cb(const struct store_sender *s, void *arg)
{
    struct list_arg *a = arg;
    if (removed(s))
        return 0;
    struct sender_result r;
    from_row(s, a->account, a->now, &r);
    return a->cb(&r, a->arg);
}

int sender_list(struct store *st, const struct store_account *account, int64_t now,
                sender_list_cb cb, void *arg)
{
    struct list_arg a = { account->name, now, cb, arg };
    return store_sender_list(st, account->id, list_cb, &a) == STORE_OK ? SENDER_OK
                                                                       : SENDER_STORE_ERROR;
}

int sender_remove(struct store *st, const struct store_account *account, const char *address)
{
    char addr[SMTP_MAX_PATH_LEN + 1], err[16];
    if (sender_address_normalize(address, addr, sizeof addr, err, sizeof err) != 0)
        return SENDER_NOT_FOUND;
    struct store_sender s;
    int rc = store_sender_get(st, account->id, addr, &s);
    if (rc == STORE_NOTFOUND || (rc == STORE_OK && removed(&s)))
        return SENDER_NOT_FOUND;
    if (rc != STORE_OK)
        return SENDER_STORE_ERROR;
    /* no delete in the store: marked removed; sent_at stays (the minute
     * between mails still counts) */
    s.status = STORE_ID_FAILED;
    s.token[0] = '\0';
    s.verified_at = 0;
    s.expires_at = 0;
    if (store_sender_update(st, &s) != STORE_OK)
        return SENDER_STORE_ERROR;
    log_msg(LOG_INFO, "senders", "event=removed account=%s address=%s", account->name, addr);
    return SENDER_OK;
}
