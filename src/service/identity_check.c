/* Checking a domain identity against DNS and applying what is found
 * (identities.h, docs/identities.md): verification (exclusive per domain),
 * DKIM keys pending → active once visible (the key replaced moves to its
 * grace period, then retired), the custom MAIL FROM domain's status,
 * records that disappeared from a verified domain (flagged with an event,
 * failed after the grace), and the next background check. Also the
 * background checker thread. The record set and each record's check are
 * identity_records.c. */
#include "service/identities.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/config.h"
#include "service/events.h"
#include "service/identities_internal.h"
#include "service/ticker.h"
#include "util/log.h"

/* Domains checked per pass of the background checker. */
#define CHECKER_BATCH 32

static const struct idrec *find_purpose(const struct idrec_list *l, enum idrec_purpose p)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].purpose == p)
            return &l->v[i];
    return NULL;
}

/* An IdentityStatus event for the account (webhooks, GET /v1/events). */
static int identity_event(struct store *st, const struct store_domain *d, const char *kind,
                          const char *identity, const char *status, const char *previous,
                          const char *reason)
{
    json_t *ev = event_create_identity(kind, identity, status, previous, reason);
    if (!ev)
        return STORE_ERROR;
    log_msg(LOG_INFO, "identities", "event=identity_status account=%lld kind=%s identity=%s "
            "status=%s previous=%s", (long long)d->account_id, kind, identity, status, previous);
    return event_record(st, d->account_id, 0, "", ev);
}

/* A pending thing is polled with backoff: check_interval, doubled per
 * attempt, at most IDENTITY_POLL_MAX_S apart. */
static int64_t poll_delay(const struct identity_env *env, int attempts)
{
    int64_t delay = env->check_interval > 0 ? env->check_interval : 1;
    for (int i = 0; i < attempts && delay < IDENTITY_POLL_MAX_S; i++)
        delay *= 2;
    return delay < IDENTITY_POLL_MAX_S ? delay : IDENTITY_POLL_MAX_S;
}

/* What the key rows become after the DKIM records were looked up. A
 * signing key whose record went away loses its published_at (the
 * transition is reported once: *vanished names it). */
static void apply_keys(const struct identity_env *env, struct key_json *kj,
                       const struct idrec_list *recs, int64_t now, bool *changed,
                       char *vanished, size_t vanishedlen)
{
    for (size_t i = 0; i < recs->n; i++) {
        const struct idrec *r = &recs->v[i];
        if (r->purpose != IDREC_DKIM)
            continue;
        if (r->state == IDREC_MISSING || r->state == IDREC_WRONG) {
            for (size_t k = 0; k < kj->n; k++) {
                struct store_dkim_key *key = &kj->rows[k];
                if (strcmp(key->selector, r->selector) == 0 && key->status == STORE_KEY_ACTIVE &&
                    key->published_at) {
                    key->published_at = 0;
                    changed[k] = true;
                    if (!vanished[0])
                        snprintf(vanished, vanishedlen, "%s", r->reason);
                }
            }
            continue;
        }
        if (r->state != IDREC_OK)
            continue;
        for (size_t k = 0; k < kj->n; k++) {
            struct store_dkim_key *key = &kj->rows[k];
            if (strcmp(key->selector, r->selector) != 0)
                continue;
            if (key->published_at == 0) {
                key->published_at = now;
                changed[k] = true;
            }
            if (key->status != STORE_KEY_PENDING)
                break;
            /* visible: it signs from now on, and the active key of the
             * same algorithm is rotated out */
            key->status = STORE_KEY_ACTIVE;
            changed[k] = true;
            log_msg(LOG_INFO, "identities", "event=dkim_key_active domain_id=%lld selector=%s",
                    (long long)key->domain_id, key->selector);
            for (size_t o = 0; o < kj->n; o++) {
                struct store_dkim_key *old = &kj->rows[o];
                if (o == k || old->status != STORE_KEY_ACTIVE ||
                    strcmp(old->algorithm, key->algorithm) != 0)
                    continue;
                old->status = STORE_KEY_GRACE;
                old->retired_at = now + env->dkim_grace;
                changed[o] = true;
            }
            break;
        }
    }
    for (size_t k = 0; k < kj->n; k++) {
        struct store_dkim_key *key = &kj->rows[k];
        if (key->status == STORE_KEY_GRACE && now >= key->retired_at) {
            key->status = STORE_KEY_RETIRED;   /* safe to remove from DNS since retired_at */
            changed[k] = true;
        }
    }
}

static bool key_pending(const struct key_json *kj)
{
    for (size_t k = 0; k < kj->n; k++)
        if (kj->rows[k].status == STORE_KEY_PENDING)
            return true;
    return false;
}

static bool key_missing(const struct key_json *kj, const struct idrec_list *recs)
{
    for (size_t i = 0; i < recs->n; i++) {
        const struct idrec *r = &recs->v[i];
        if (r->purpose != IDREC_DKIM || (r->state != IDREC_MISSING && r->state != IDREC_WRONG))
            continue;
        for (size_t k = 0; k < kj->n; k++)
            if (strcmp(kj->rows[k].selector, r->selector) == 0 &&
                (kj->rows[k].status == STORE_KEY_ACTIVE || kj->rows[k].status == STORE_KEY_GRACE))
                return true;
    }
    return false;
}

/* Both MAIL FROM records as one state: ok, tempfail, or broken. */
static enum idrec_state mail_from_state(const struct idrec_list *recs, char *why, size_t whylen)
{
    enum idrec_state st = IDREC_OK;
    why[0] = '\0';
    for (size_t i = 0; i < recs->n; i++) {
        const struct idrec *r = &recs->v[i];
        if (r->purpose != IDREC_MAIL_FROM_MX && r->purpose != IDREC_MAIL_FROM_SPF)
            continue;
        if (r->state == IDREC_TEMPFAIL && st == IDREC_OK)
            st = IDREC_TEMPFAIL;
        if (r->state == IDREC_MISSING || r->state == IDREC_WRONG) {
            st = IDREC_WRONG;
            if (!why[0])
                snprintf(why, whylen, "%s", r->reason);
        }
    }
    return st;
}

struct check_write {
    struct store_domain *d;
    struct key_json *kj;
    const bool *changed;
    const char *records;
};

static int write_check(struct store *st, const struct check_write *w, int previous_status,
                       bool *taken)
{
    for (size_t k = 0; k < w->kj->n; k++)
        if (w->changed[k] && store_dkim_key_update(st, &w->kj->rows[k]) != STORE_OK)
            return STORE_ERROR;
    int rc = store_domain_update(st, w->d);
    if (rc == STORE_EXISTS) {
        /* the token is there, but another account has the domain */
        *taken = true;
        w->d->status = previous_status == STORE_ID_VERIFIED ? STORE_ID_FAILED : previous_status;
        w->d->verified_at = 0;
        rc = store_domain_update(st, w->d);
    }
    if (rc != STORE_OK)
        return STORE_ERROR;
    return store_domain_records_set(st, w->d->id, w->records);
}

int identity_domain_check(struct store *st, struct dns_resolver *dns,
                          const struct identity_env *env, struct store_domain *d, int64_t now,
                          bool on_demand, struct identity_check *out)
{
    memset(out, 0, sizeof *out);
    out->previous_status = d->status;
    struct key_json kj;
    if (identity_load_keys(st, d, now, &kj) != 0) {
        snprintf(out->reason, sizeof out->reason, "cannot read the store");
        return STORE_ERROR;
    }
    char report[DNS_MAX_NAME_LEN + 32];
    struct idrec_input in;
    identity_records_input(env, d, kj.keys, kj.n, report, sizeof report, &in);
    struct idrec_list recs = { 0 };
    if (identity_records_build(&in, dns, &recs) != 0) {
        identity_keys_free(&kj);
        snprintf(out->reason, sizeof out->reason, "out of memory");
        return STORE_ERROR;
    }

    /* verification */
    const struct idrec *v = find_purpose(&recs, IDREC_VERIFICATION);
    int previous = d->status;
    enum idrec_state vs = v ? v->state : IDREC_TEMPFAIL;
    const char *vreason = v ? v->reason : "";
    bool flagged_now = false;
    switch (vs) {
    case IDREC_OK:
        snprintf(out->reason, sizeof out->reason, "the TXT record at %s.%s holds the token",
                 IDENTITY_VERIFY_LABEL, d->domain);
        if (d->status != STORE_ID_VERIFIED) {
            d->status = STORE_ID_VERIFIED;
            d->verified_at = now;
        }
        d->missing_since = 0;
        break;
    case IDREC_TEMPFAIL:
    case IDREC_UNCHECKED:
        out->tempfail = true;
        snprintf(out->reason, sizeof out->reason, "%s; status unchanged, try again later",
                 vreason[0] ? vreason : "no answer from DNS");
        break;
    default:
        if (d->status == STORE_ID_VERIFIED) {
            if (!d->missing_since) {
                d->missing_since = now;
                flagged_now = true;
            }
            if (now - d->missing_since >= env->missing_grace) {
                d->status = STORE_ID_FAILED;
                snprintf(out->reason, sizeof out->reason, "%.200s; gone since the check of %lld "
                         "s ago: %s is no longer verified", vreason,
                         (long long)(now - d->missing_since), d->domain);
            } else {
                snprintf(out->reason, sizeof out->reason, "%.200s; %s stays verified for now, "
                         "but fails if the record is not back within %lld hours", vreason,
                         d->domain, (long long)((env->missing_grace - (now - d->missing_since) +
                                                 3599) / 3600));
            }
        } else {
            snprintf(out->reason, sizeof out->reason, "%s", vreason);
            if (on_demand || now >= d->created_at + env->verify_window)
                d->status = STORE_ID_FAILED;
        }
        break;
    }

    /* DKIM keys */
    bool changed[IDENTITY_MAX_KEYS] = { false };
    char vanished[IDREC_REASON_MAX] = "";
    apply_keys(env, &kj, &recs, now, changed, vanished, sizeof vanished);

    /* the custom MAIL FROM domain */
    int mf_previous = d->mail_from_status;
    char mf_why[IDREC_REASON_MAX];
    if (d->mail_from_domain[0]) {
        switch (mail_from_state(&recs, mf_why, sizeof mf_why)) {
        case IDREC_OK: d->mail_from_status = STORE_ID_VERIFIED; break;
        case IDREC_WRONG:
            /* broken after it worked, or the user asked: failed (a pending
             * one keeps being polled in the background) */
            if (d->mail_from_status == STORE_ID_VERIFIED || on_demand)
                d->mail_from_status = STORE_ID_FAILED;
            break;
        default: break;
        }
    }

    /* when to look again */
    bool pending = d->status == STORE_ID_PENDING || key_pending(&kj) ||
                   (d->mail_from_domain[0] && d->mail_from_status != STORE_ID_VERIFIED);
    if (d->status == STORE_ID_FAILED && previous != STORE_ID_VERIFIED &&
        now >= d->created_at + env->verify_window) {
        d->next_check_at = 0;   /* given up: the user verifies on demand */
    } else if (out->tempfail || d->missing_since || pending) {
        d->next_check_at = now + poll_delay(env, d->check_attempts);
        if (d->check_attempts < 30)
            d->check_attempts++;
    } else {
        d->next_check_at = now + env->recheck_interval;
        d->check_attempts = 0;
    }
    if (!out->tempfail)
        d->checked_at = now;

    json_t *rj = identity_records_json(&recs);
    char *records = rj ? json_dumps(rj, JSON_COMPACT) : NULL;
    json_decref(rj);
    bool dkim_missing = key_missing(&kj, &recs);
    identity_records_free(&recs);
    if (!records) {
        identity_keys_free(&kj);
        snprintf(out->reason, sizeof out->reason, "out of memory");
        return STORE_ERROR;
    }

    struct check_write w = { d, &kj, changed, records };
    int rc = store_begin(st);
    if (rc == STORE_OK)
        rc = write_check(st, &w, previous, &out->taken);
    if (out->taken)
        snprintf(out->reason, sizeof out->reason, "%s is verified by another account",
                 d->domain);
    /* events for what changed */
    if (rc == STORE_OK && d->status != previous && !out->taken)
        rc = identity_event(st, d, "domain", d->domain, identity_status_name(d->status),
                            identity_status_name(previous), out->reason);
    if (rc == STORE_OK && flagged_now && d->status == STORE_ID_VERIFIED)
        rc = identity_event(st, d, "domain", d->domain, "records_missing", "verified",
                            out->reason);
    if (rc == STORE_OK && vanished[0])
        rc = identity_event(st, d, "dkim", d->domain, "records_missing", "verified", vanished);
    if (rc == STORE_OK && d->mail_from_domain[0] && d->mail_from_status != mf_previous)
        rc = identity_event(st, d, "mail_from", d->mail_from_domain,
                            identity_status_name(d->mail_from_status),
                            identity_status_name(mf_previous),
                            d->mail_from_status == STORE_ID_VERIFIED ? "its MX and SPF records are "
                            "published: the envelope sender uses it" : mf_why);
    if (rc == STORE_OK) {
        rc = store_commit(st);
    } else {
        store_rollback(st);
        rc = STORE_ERROR;
    }
    free(records);
    identity_keys_free(&kj);
    if (rc != STORE_OK) {
        snprintf(out->reason, sizeof out->reason, "cannot write the store");
        return STORE_ERROR;
    }
    log_msg(LOG_INFO, "identities", "event=domain_check account=%lld domain=%s on_demand=%d "
            "status=%s mail_from=%s dkim_missing=%d tempfail=%d taken=%d next_check_in=%lld",
            (long long)d->account_id, d->domain, on_demand, identity_status_name(d->status),
            d->mail_from_domain[0] ? identity_status_name(d->mail_from_status) : "-",
            dkim_missing, out->tempfail, out->taken,
            d->next_check_at ? (long long)(d->next_check_at - now) : -1LL);
    return STORE_OK;
}

int identity_domain_verify(struct store *st, struct dns_resolver *dns,
                           const struct identity_env *env, int64_t account_id, const char *domain,
                           struct store_domain *out, bool *tempfail, char *err, size_t errlen)
{
    *tempfail = false;
    char norm[DNS_MAX_NAME_LEN + 1];
    if (identity_domain_normalize(domain, norm, sizeof norm, err, errlen) != 0)
        return IDENTITY_BADNAME;
    int rc = store_domain_get(st, account_id, norm, out);
    if (rc == STORE_NOTFOUND) {
        snprintf(err, errlen, "%s has not been added to this account (add it first)", norm);
        return STORE_NOTFOUND;
    }
    if (rc != STORE_OK) {
        snprintf(err, errlen, "cannot read the store");
        return STORE_ERROR;
    }
    struct identity_check res;
    rc = identity_domain_check(st, dns, env, out, (int64_t)time(NULL), true, &res);
    snprintf(err, errlen, "%s", res.reason);
    *tempfail = res.tempfail;
    if (rc != STORE_OK)
        return STORE_ERROR;
    return res.taken ? STORE_EXISTS : STORE_OK;
}

/* ---- the background checker ---- */

struct identity_checker {
    struct ticker *ticker;
    struct store *st;
    struct dns_resolver *dns;
    struct identity_env env;
};

struct due { struct store_domain *v; size_t n; };

static int due_cb(const struct store_domain *d, void *arg)
{
    struct due *due = arg;
    if (due->n < CHECKER_BATCH)
        due->v[due->n++] = *d;
    return 0;
}

/* One pass: the domains whose check is due. */
static void check_due(struct ticker *t, void *arg)
{
    struct identity_checker *c = arg;
    struct store_domain *v = calloc(CHECKER_BATCH, sizeof *v);
    struct due due = { v, 0 };
    if (!v || store_domain_due(c->st, (int64_t)time(NULL), CHECKER_BATCH, due_cb, &due) !=
                  STORE_OK) {
        free(v);
        return;
    }
    for (size_t i = 0; i < due.n && !ticker_stopping(t); i++) {
        struct identity_check res;
        if (identity_domain_check(c->st, c->dns, &c->env, &v[i], (int64_t)time(NULL), false,
                                  &res) != STORE_OK)
            log_msg(LOG_WARN, "identities", "event=background_check_failed domain=%s "
                    "error=\"%s\"", v[i].domain, res.reason);
    }
    free(v);
}

struct identity_checker *identity_checker_start(const struct sesame_config *cfg,
                                                struct dns_resolver *dns, char *err,
                                                size_t errlen)
{
    struct identity_checker *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    identity_env_init(&c->env, cfg);
    c->dns = dns;
    c->st = store_open(cfg->store, cfg->data_dir, err, errlen);
    if (c->st)
        c->ticker = ticker_start(check_due, c, 1000, err, errlen);
    if (!c->ticker) {
        store_close(c->st);
        free(c);
        return NULL;
    }
    return c;
}

void identity_checker_kick(struct identity_checker *c)
{
    if (c)
        ticker_kick(c->ticker);
}

void identity_checker_stop(struct identity_checker *c)
{
    if (!c)
        return;
    ticker_stop(c->ticker);
    store_close(c->st);
    free(c);
}
