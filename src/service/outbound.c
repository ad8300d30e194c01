/* Accepting a message to send; see outbound.h. The order matters: the
 * cheap refusals first (identities, sandbox, rate, quota), then the
 * suppression list, then signing, then one durable group-commit write that
 * queues the message and records its Send (and Reject) events together. */
#include "service/outbound.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/dkim.h"
#include "auth/dkim_signer.h"
#include "mail/mail_address.h"
#include "mail/mail_header.h"
#include "service/accounts.h"
#include "service/config.h"
#include "service/events.h"
#include "service/group_commit.h"
#include "service/reputation.h"
#include "service/inbound_msg.h"
#include "util/log.h"

#define RATE_BUCKETS 1024
#define SIGNER_CACHE_MAX 256
#define VERP_PREFIX "bounce+"
#define VERP_MAC_LEN 16           /* hex characters of the HMAC: 64 bits, RCPT is an oracle */

struct rate_bucket {
    struct rate_bucket *next;
    int64_t account_id;
    double tokens;
    double last;                  /* CLOCK_MONOTONIC seconds */
};

struct signer_entry {
    char path[1024];
    struct dkim_signer *signer;
};

struct outbound {
    char hostname[256];
    char bounce_domain[256];
    char system_from[300];        /* no-reply@hostname */
    struct group_commit *gc;
    unsigned char verp_key[32];
    pthread_mutex_t mu;           /* rate buckets and the signer cache */
    struct rate_bucket *buckets[RATE_BUCKETS];
    struct signer_entry signers[SIGNER_CACHE_MAX];
    size_t nsigners;
    void (*notify)(void *arg);
    void *notify_arg;
};

void outbound_set_notify(struct outbound *o, void (*fn)(void *arg), void *arg)
{
    o->notify = fn;
    o->notify_arg = arg;
}

struct outbound *outbound_new(const struct sesame_config *cfg, struct group_commit *gc,
                              struct store *st, char *err, size_t errlen)
{
    struct outbound *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(o->hostname, sizeof o->hostname, "%s", cfg->hostname);
    snprintf(o->system_from, sizeof o->system_from, "no-reply@%s", cfg->hostname);
    snprintf(o->bounce_domain, sizeof o->bounce_domain, "%s",
             cfg->delivery_bounce_domain[0] ? cfg->delivery_bounce_domain : cfg->hostname);
    o->gc = gc;
    pthread_mutex_init(&o->mu, NULL);
    if (store_secret_get(st, "verp", o->verp_key, sizeof o->verp_key) != STORE_OK) {
        snprintf(err, errlen, "cannot read the VERP key from the store");
        outbound_free(o);
        return NULL;
    }
    return o;
}

void outbound_free(struct outbound *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < RATE_BUCKETS; i++)
        while (o->buckets[i]) {
            struct rate_bucket *b = o->buckets[i];
            o->buckets[i] = b->next;
            free(b);
        }
    for (size_t i = 0; i < o->nsigners; i++)
        dkim_signer_free(o->signers[i].signer);
    sodium_memzero(o->verp_key, sizeof o->verp_key);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

const char *outbound_system_from(const struct outbound *o)
{
    return o->system_from;
}

int outbound_system_account(struct store *st, struct store_account *out)
{
    int rc = store_account_get_by_name(st, OUTBOUND_SYSTEM_ACCOUNT, out);
    if (rc != STORE_NOTFOUND)
        return rc == STORE_OK ? STORE_OK : STORE_ERROR;
    struct store_account a = { .sandbox = false, .max_24h = 0, .max_rate = 0 };
    snprintf(a.name, sizeof a.name, "%s", OUTBOUND_SYSTEM_ACCOUNT);
    rc = store_account_insert(st, &a);
    if (rc == STORE_EXISTS)   /* made meanwhile by another thread or process */
        rc = store_account_get_by_name(st, OUTBOUND_SYSTEM_ACCOUNT, &a);
    if (rc != STORE_OK)
        return STORE_ERROR;
    *out = a;
    return STORE_OK;
}

const char *outbound_bounce_domain(const struct outbound *o)
{
    return o->bounce_domain;
}

/* ---- VERP ---- */

static void verp_mac(const struct outbound *o, int64_t rcpt_id, char hex[VERP_MAC_LEN + 1])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char msg[32];
    int n = snprintf(msg, sizeof msg, "%lld", (long long)rcpt_id);
    crypto_auth_hmacsha256(mac, (const unsigned char *)msg, (unsigned long long)n, o->verp_key);
    char full[2 * sizeof mac + 1];
    sodium_bin2hex(full, sizeof full, mac, sizeof mac);
    memcpy(hex, full, VERP_MAC_LEN);
    hex[VERP_MAC_LEN] = '\0';
}

int outbound_verp_address(struct outbound *o, int64_t rcpt_id, const char *domain, char *out,
                          size_t outlen)
{
    char mac[VERP_MAC_LEN + 1];
    verp_mac(o, rcpt_id, mac);
    int n = snprintf(out, outlen, VERP_PREFIX "%llx-%s@%s", (unsigned long long)rcpt_id, mac,
                     domain && domain[0] ? domain : o->bounce_domain);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

bool outbound_verp_parse(struct outbound *o, const char *local, int64_t *rcpt_id)
{
    size_t plen = strlen(VERP_PREFIX);
    if (strncasecmp(local, VERP_PREFIX, plen) != 0)
        return false;
    const char *p = local + plen;
    unsigned long long id = 0;
    size_t digits = 0;
    for (; *p && *p != '-'; p++, digits++) {
        int v = (*p >= '0' && *p <= '9') ? *p - '0'
              : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
              : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;
        if (v < 0 || digits >= 15)
            return false;
        id = id * 16 + (unsigned)v;
    }
    if (*p != '-' || digits == 0 || strlen(p + 1) != VERP_MAC_LEN)
        return false;
    char mac[VERP_MAC_LEN + 1], given[VERP_MAC_LEN + 1];
    verp_mac(o, (int64_t)id, mac);
    for (size_t i = 0; i < VERP_MAC_LEN; i++)
        given[i] = (char)((p[1 + i] >= 'A' && p[1 + i] <= 'F') ? p[1 + i] - 'A' + 'a' : p[1 + i]);
    given[VERP_MAC_LEN] = '\0';
    if (sodium_memcmp(mac, given, VERP_MAC_LEN) != 0)
        return false;
    *rcpt_id = (int64_t)id;
    return true;
}

/* ---- rate: a token bucket per account (max_rate per second, burst max_rate) ---- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Takes a token; on refusal returns the seconds until one is there. */
static double rate_take(struct outbound *o, const struct store_account *a)
{
    double rate = a->max_rate ? (double)a->max_rate : 1.0;
    double now = mono_now();
    pthread_mutex_lock(&o->mu);
    struct rate_bucket **pp = &o->buckets[(uint64_t)a->id % RATE_BUCKETS];
    while (*pp && (*pp)->account_id != a->id)
        pp = &(*pp)->next;
    if (!*pp) {
        struct rate_bucket *b = calloc(1, sizeof *b);
        if (!b) {
            pthread_mutex_unlock(&o->mu);
            return 0;   /* out of memory: do not refuse mail for it */
        }
        b->account_id = a->id;
        b->tokens = rate;
        b->last = now;
        *pp = b;
    }
    struct rate_bucket *b = *pp;
    b->tokens += (now - b->last) * rate;
    if (b->tokens > rate)
        b->tokens = rate;
    b->last = now;
    double wait = 0;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        wait = (1.0 - b->tokens) / rate;
    pthread_mutex_unlock(&o->mu);
    return wait;
}

/* ---- signing ---- */

static struct dkim_signer *signer_get(struct outbound *o, const char *path)
{
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < o->nsigners; i++)
        if (strcmp(o->signers[i].path, path) == 0) {
            struct dkim_signer *s = o->signers[i].signer;
            pthread_mutex_unlock(&o->mu);
            return s;
        }
    char err[256];
    struct dkim_signer *s = dkim_signer_load(path, err, sizeof err);
    if (!s) {
        log_msg(LOG_ERROR, "outbound", "event=dkim_key_unreadable path=\"%s\" error=\"%s\"", path, err);
    } else if (o->nsigners < SIGNER_CACHE_MAX) {
        snprintf(o->signers[o->nsigners].path, sizeof o->signers[0].path, "%s", path);
        o->signers[o->nsigners++].signer = s;
    } else {
        /* cache full: keep it anyway in the last slot (rare: > 256 keys in use) */
        dkim_signer_free(o->signers[SIGNER_CACHE_MAX - 1].signer);
        snprintf(o->signers[SIGNER_CACHE_MAX - 1].path, sizeof o->signers[0].path, "%s", path);
        o->signers[SIGNER_CACHE_MAX - 1].signer = s;
    }
    pthread_mutex_unlock(&o->mu);
    return s;
}

struct sign_ctx {
    struct outbound *o;
    const char *domain;
    const char *msg;
    size_t len;
    time_t now;
    struct buf *sigs;
    size_t signed_count;
    bool failed;
};

static int sign_key_cb(const struct store_dkim_key *k, void *arg)
{
    struct sign_ctx *c = arg;
    if (k->status != STORE_KEY_ACTIVE)
        return 0;
    struct dkim_signer *s = signer_get(c->o, k->key_path);
    if (!s) {
        c->failed = true;
        return 0;
    }
    struct dkim_sign_options opt = { .domain = c->domain, .selector = k->selector, .now = c->now };
    char err[256];
    if (dkim_sign_message(s, &opt, c->msg, c->len, c->sigs, err, sizeof err) != DKIM_OK) {
        log_msg(LOG_ERROR, "outbound", "event=dkim_sign_failed domain=%s selector=%s error=\"%s\"",
                c->domain, k->selector, err);
        c->failed = true;
        return 0;
    }
    c->signed_count++;
    return 0;
}

/* ---- the header: From addresses, Date, Message-ID ---- */

struct header_facts {
    struct mail_address_list from;
    size_t nfrom_fields;
    bool has_date, has_msgid;
    char message_id[256], subject[256], from_text[256];
};

static int read_header(const char *msg, size_t len, struct header_facts *h, char *why, size_t whylen)
{
    memset(h, 0, sizeof *h);
    size_t head_len, body_off;
    mail_split_message(msg, len, &head_len, &body_off);
    struct mail_field *fields = malloc(MAIL_MAX_HEADERS * sizeof *fields);
    if (!fields) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    size_t count = 0;
    mail_header_fields(msg, head_len, fields, MAIL_MAX_HEADERS, &count, NULL);
    if (count > MAIL_MAX_HEADERS) {
        /* a From past the ones we look at must not escape the checks */
        snprintf(why, whylen, "the message has more than %d header fields", MAIL_MAX_HEADERS);
        free(fields);
        return -1;
    }
    const struct mail_field *from = NULL;
    for (size_t i = 0; i < count; i++) {
        if (sv_eq_ci_cstr(fields[i].name, "From")) {
            from = &fields[i];
            h->nfrom_fields++;
        } else if (sv_eq_ci_cstr(fields[i].name, "Date")) {
            h->has_date = true;
        } else if (sv_eq_ci_cstr(fields[i].name, "Message-ID")) {
            h->has_msgid = true;
        }
    }
    int rc = 0;
    char err[128];
    if (h->nfrom_fields != 1) {
        snprintf(why, whylen, "the message must have exactly one From field (it has %zu)",
                 h->nfrom_fields);
        rc = -1;
    } else {
        struct sv v = mail_field_value(from);
        if (mail_address_list_parse(v.p, v.len, &h->from, err, sizeof err) != 0 ||
            h->from.count == 0 || h->from.count > MAIL_MAX_MAILBOXES) {
            snprintf(why, whylen, "the From field cannot be parsed");
            rc = -1;
        }
    }
    free(fields);
    if (rc == 0 &&
        inbound_msg_summary(msg, len, h->message_id, sizeof h->message_id, h->subject,
                            sizeof h->subject, h->from_text, sizeof h->from_text) != 0)
        h->message_id[0] = h->subject[0] = h->from_text[0] = '\0';
    return rc;
}

/* ---- the durable write: queue + events in one transaction ---- */

struct queue_write {
    struct store_outbound *m;
    const char *raw;
    size_t len;
    const struct outbound_request *req;
    const char *from_addr;
    const struct header_facts *h;
    const bool *suppressed;       /* per req->rcpts */
};

static void mail_object(const struct queue_write *w, int64_t message_id, struct event_mail *em)
{
    memset(em, 0, sizeof *em);
    em->message_id = message_id;
    em->timestamp = w->m->created_at;
    em->source = w->from_addr;
    em->destination = w->req->rcpts;
    em->ndestination = w->req->nrcpt;
    em->header_message_id = w->h->message_id[0] ? w->h->message_id : NULL;
    em->subject = w->h->subject[0] ? w->h->subject : NULL;
}

static int apply_queue(struct store *st, void *arg)
{
    struct queue_write *w = arg;
    int64_t account = w->req->account->id;
    int64_t mid = 0;
    if (w->m->nrcpt > 0) {
        int rc = store_outbound_insert(st, w->m, w->raw, w->len);
        if (rc != STORE_OK)
            return rc;
        mid = w->m->id;
        if (w->req->within && w->req->within(st, mid, w->req->within_arg) != STORE_OK)
            return STORE_ERROR;
        if (w->req->system)
            return STORE_OK;   /* the service's own mail: no events */
        struct event_mail em;
        mail_object(w, mid, &em);
        json_t *ev = event_create("Send", &em);
        if (!ev || event_record(st, account, mid, "", ev) != STORE_OK)
            return STORE_ERROR;
    }
    for (size_t i = 0; i < w->req->nrcpt; i++) {
        if (!w->suppressed[i])
            continue;
        struct event_mail em;
        mail_object(w, mid, &em);
        json_t *ev = event_create("Reject", &em);
        if (!ev)
            return STORE_ERROR;
        char reason[SMTP_MAX_PATH_LEN + 64];
        snprintf(reason, sizeof reason, "%s is on the suppression list", w->req->rcpts[i]);
        event_set_reject(ev, reason);
        if (event_record(st, account, mid, w->req->rcpts[i], ev) != STORE_OK)
            return STORE_ERROR;
    }
    return STORE_OK;
}

static void refuse(struct outbound_result *res, enum outbound_refusal r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(struct outbound_result *res, enum outbound_refusal r, const char *fmt, ...)
{
    res->refusal = r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->why, sizeof res->why, fmt, ap);
    va_end(ap);
}

static int active_key_cb(const struct store_dkim_key *k, void *arg)
{
    if (k->status == STORE_KEY_ACTIVE)
        *(bool *)arg = true;
    return k->status == STORE_KEY_ACTIVE;
}

/* Who may send what: every From address and the envelope sender are
 * verified identities of the account; a verified From domain has a DKIM
 * key receivers can find; a broken custom MAIL FROM domain set to refuse
 * mail refuses it; the sandbox sends to verified addresses only. false
 * with res filled when refused. */
static bool identity_policy(struct store *st, const struct outbound_request *req,
                            const struct header_facts *h, const char *envelope,
                            const struct store_domain *dom, struct outbound_result *res)
{
    const struct store_account *acct = req->account;
    bool ok = false;
    for (size_t i = 0; i < h->from.count; i++) {
        char addr[SMTP_MAX_LOCALPART_LEN * 4 + SMTP_MAX_DOMAIN_LEN + 2];
        snprintf(addr, sizeof addr, "%s@%s", h->from.box[i].local, h->from.box[i].domain);
        if (account_may_send_as(st, acct->id, addr, &ok) != STORE_OK) {
            refuse(res, OUTBOUND_TEMPFAIL, "the store is not available");
            return false;
        }
        if (!ok) {
            refuse(res, OUTBOUND_IDENTITY, "From address %s is not a verified identity of "
                   "account %s", addr, acct->name);
            return false;
        }
    }
    if (account_may_send_as(st, acct->id, envelope, &ok) != STORE_OK) {
        refuse(res, OUTBOUND_TEMPFAIL, "the store is not available");
        return false;
    }
    if (!ok) {
        refuse(res, OUTBOUND_IDENTITY, "sender %s is not a verified identity of account %s",
               envelope, acct->name);
        return false;
    }
    if (dom && dom->status == STORE_ID_VERIFIED) {
        bool active = false;
        if (store_dkim_key_list(st, dom->id, active_key_cb, &active) != STORE_OK) {
            refuse(res, OUTBOUND_TEMPFAIL, "the store is not available");
            return false;
        }
        if (!active) {
            refuse(res, OUTBOUND_IDENTITY, "%s has no DKIM key visible in DNS yet: publish its "
                   "_domainkey records and verify the domain again", dom->domain);
            return false;
        }
        if (dom->mail_from_domain[0] && dom->mail_from_status != STORE_ID_VERIFIED &&
            dom->mail_from_behavior == STORE_MF_REJECT) {
            refuse(res, OUTBOUND_IDENTITY, "the MAIL FROM domain %s of %s is %s in DNS and %s "
                   "is set to refuse mail then (behavior_on_mx_failure reject): publish its MX "
                   "and SPF records and verify", dom->mail_from_domain, dom->domain,
                   dom->mail_from_status == STORE_ID_FAILED ? "failing" : "not verified yet",
                   dom->domain);
            return false;
        }
    }
    if (acct->sandbox)
        for (size_t i = 0; i < req->nrcpt; i++) {
            if (account_may_send_as(st, acct->id, req->rcpts[i], &ok) != STORE_OK) {
                refuse(res, OUTBOUND_TEMPFAIL, "the store is not available");
                return false;
            }
            if (!ok) {
                refuse(res, OUTBOUND_SANDBOX, "account %s is in the sandbox: %s is not one of "
                       "its verified identities", acct->name, req->rcpts[i]);
                return false;
            }
        }
    return true;
}

/* A paused account sends nothing (the status is read fresh: the account
 * the caller holds may be older than the pause). */
static bool reputation_policy(struct store *st, const struct store_account *acct,
                              struct outbound_result *res)
{
    struct store_account now;
    int rc = store_account_get(st, acct->id, &now);
    if (rc != STORE_OK) {
        refuse(res, OUTBOUND_TEMPFAIL, "the store is not available");
        return false;
    }
    if (now.reputation != REPUTATION_PAUSED)
        return true;
    refuse(res, OUTBOUND_PAUSED, "sending is paused for account %s: %.160s; clean the list "
           "(suppress bounced and complaining addresses), then ask the operator to resume it "
           "(sesame account resume %s)", acct->name, now.reputation_reason, acct->name);
    return false;
}

/* The quota over a rolling 24 h, then the rate. */
static bool volume_policy(struct outbound *o, struct store *st, const struct outbound_request *req,
                          time_t now, struct outbound_result *res)
{
    const struct store_account *acct = req->account;
    int64_t sent = 0;
    if (store_outbound_count_since(st, acct->id, (int64_t)now - 86400, &sent) != STORE_OK) {
        refuse(res, OUTBOUND_TEMPFAIL, "the store is not available");
        return false;
    }
    if (acct->max_24h && sent >= (int64_t)acct->max_24h) {
        int64_t oldest = 0;
        res->retry_at = store_outbound_oldest_since(st, acct->id, (int64_t)now - 86400,
                                                    &oldest) == STORE_OK
                            ? oldest + 86400 : (int64_t)now + 3600;
        refuse(res, OUTBOUND_QUOTA, "account %s has sent its %u messages of the last 24 hours",
               acct->name, acct->max_24h);
        return false;
    }
    double wait = rate_take(o, acct);
    if (wait > 0) {
        res->retry_at = (int64_t)now + (int64_t)(wait + 0.999);
        refuse(res, OUTBOUND_RATE, "account %s sends at most %u messages per second",
               acct->name, acct->max_rate ? acct->max_rate : 1);
        return false;
    }
    return true;
}

void outbound_accept(struct outbound *o, struct store *st, const struct outbound_request *req,
                     struct outbound_result *res)
{
    memset(res, 0, sizeof *res);
    const struct store_account *acct = req->account;
    time_t now = time(NULL);
    struct header_facts *h = calloc(1, sizeof *h);
    bool *suppressed = calloc(req->nrcpt ? req->nrcpt : 1, sizeof *suppressed);
    const char **queued = calloc(req->nrcpt ? req->nrcpt : 1, sizeof *queued);
    struct buf signed_msg;
    buf_init(&signed_msg, req->len + 64 * 1024);
    if (!h || !suppressed || !queued) {
        refuse(res, OUTBOUND_TEMPFAIL, "out of memory");
        goto out;
    }
    if (req->nrcpt == 0) {
        refuse(res, OUTBOUND_BAD_MESSAGE, "the message has no recipients");
        goto out;
    }
    char why[256];
    if (read_header(req->msg, req->len, h, why, sizeof why) != 0) {
        refuse(res, OUTBOUND_BAD_MESSAGE, "%s", why);
        goto out;
    }
    /* identities: every From address, and the envelope sender */
    char from_addr[SMTP_MAX_LOCALPART_LEN * 4 + SMTP_MAX_DOMAIN_LEN + 2];
    snprintf(from_addr, sizeof from_addr, "%s@%s", h->from.box[0].local, h->from.box[0].domain);
    const char *envelope = req->mail_from && req->mail_from[0] ? req->mail_from : from_addr;
    struct store_domain dom;
    int drc = store_domain_get(st, acct->id, h->from.box[0].domain, &dom);
    if (drc == STORE_ERROR) {
        refuse(res, OUTBOUND_TEMPFAIL, "the store is not available");
        goto out;
    }
    if (!req->system && !reputation_policy(st, acct, res))
        goto out;
    if (!req->system && (!identity_policy(st, req, h, envelope, drc == STORE_OK ? &dom : NULL,
                                          res) ||
                         !volume_policy(o, st, req, now, res)))
        goto out;
    /* the suppression list */
    size_t nqueued = 0;
    for (size_t i = 0; i < req->nrcpt; i++) {
        struct store_suppression s;
        int rc = store_suppression_get(st, acct->id, req->rcpts[i], &s);
        if (rc == STORE_ERROR) {
            refuse(res, OUTBOUND_TEMPFAIL, "the store is not available");
            goto out;
        }
        suppressed[i] = rc == STORE_OK;
        if (suppressed[i])
            res->suppressed++;
        else
            queued[nqueued++] = req->rcpts[i];
    }
    /* Date and Message-ID when missing (RFC 6409 §8), then the signatures
     * of the From domain's active keys, on top */
    struct buf body;
    buf_init(&body, req->len + 1024);
    int brc = 0;
    if (!h->has_date) {
        char date[64];
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
        brc |= buf_printf(&body, "Date: %s\r\n", date);
    }
    if (!h->has_msgid) {
        unsigned char rnd[12];
        char hex[25];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
        snprintf(h->message_id, sizeof h->message_id, "<%s@%.200s>", hex, o->hostname);
        brc |= buf_printf(&body, "Message-ID: %s\r\n", h->message_id);
    }
    brc |= buf_append(&body, req->msg, req->len);
    if (brc != 0) {
        buf_free(&body);
        refuse(res, OUTBOUND_BAD_MESSAGE, "the message is too large");
        goto out;
    }
    struct sign_ctx sc = { o, h->from.box[0].domain, body.data, body.len, now, &signed_msg, 0, false };
    if (drc == STORE_OK && dom.status == STORE_ID_VERIFIED &&
        store_dkim_key_list(st, dom.id, sign_key_cb, &sc) != STORE_OK)
        sc.failed = true;
    if (drc == STORE_ERROR || sc.failed) {
        buf_free(&body);
        refuse(res, OUTBOUND_TEMPFAIL, "the message cannot be signed now");
        goto out;
    }
    if (buf_append(&signed_msg, body.data, body.len) != 0) {
        buf_free(&body);
        refuse(res, OUTBOUND_BAD_MESSAGE, "the message is too large");
        goto out;
    }
    buf_free(&body);

    struct store_outbound m = {
        .account_id = acct->id, .rcpts = queued, .nrcpt = nqueued, .created_at = (int64_t)now,
        .source = req->source,
    };
    snprintf(m.mail_from, sizeof m.mail_from, "%.256s", envelope);
    snprintf(m.message_id, sizeof m.message_id, "%s", h->message_id);
    struct queue_write qw = { &m, signed_msg.data, signed_msg.len, req, from_addr, h, suppressed };
    struct gc_write w = { .apply = apply_queue, .arg = &qw };
    if (group_commit_write(o->gc, st, &w) != STORE_OK) {
        refuse(res, OUTBOUND_TEMPFAIL, "the queue is not available now");
        goto out;
    }
    if (nqueued == 0) {
        refuse(res, OUTBOUND_ALL_SUPPRESSED, "every recipient is on the suppression list");
        goto out;
    }
    res->message_id = m.id;
    if (o->notify)
        o->notify(o->notify_arg);
    log_msg(LOG_INFO, "outbound", "event=queued id=%lld account=%s source=%s from=<%s> rcpts=%zu "
            "suppressed=%zu size=%zu dkim=%zu", (long long)m.id, acct->name, req->source,
            envelope, nqueued, res->suppressed, signed_msg.len, sc.signed_count);
out:
    buf_free(&signed_msg);
    free(h);
    free(suppressed);
    free(queued);
}
