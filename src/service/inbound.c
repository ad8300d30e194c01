/* The inbound MX policy: which recipients we take (verified domains only:
 * no open relay), and what happens at the end of DATA, on a worker thread:
 * SPF (MAIL FROM and HELO), DKIM and DMARC through the auth engine, the
 * account's DMARC stance and receiving rules, the rewritten header (forged
 * Authentication-Results removed, ours and a Received prepended), and the
 * durable store write that must finish before the 250. Rule webhooks are
 * posted from the loop once the message is stored. */
#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth_check.h"
#include "mail/mail_header.h"
#include "service/dmarc_reporting.h"
#include "service/identities.h"
#include "service/inbound_msg.h"
#include "service/rules.h"
#include "service/service_internal.h"
#include "util/log.h"

struct inbound_job {
    struct workq_job job;
    struct conn *c;
    struct service *svc;
    char *msg;
    size_t len;
    char mail_from[SMTP_MAX_PATH_LEN + 1];
    char helo[SMTP_MAX_DOMAIN_LEN + 1];
    char **rcpts;
    size_t nrcpt;
    int64_t account_id;
    char ip[STORE_IP_MAX];
    struct spf_ip addr;
    char protocol[16];
    char tls_desc[96];
    char queue_id[40];
    struct timespec t0;
    /* results */
    struct smtp_reply reply;
    const char *outcome;          /* stored, quarantined, rejected_dmarc, ... */
    char spf[16], dkim[16], dmarc[16];
    int64_t stored_id;
    char *webhook_body;           /* JSON, shared by the webhooks */
    char *webhook_body_raw;       /* the same with the raw message */
    struct rule_webhook webhooks[RULES_MAX_WEBHOOKS];
    size_t nwebhooks;
};

static void lower_ascii(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* ---- RCPT and MAIL ---- */

static bool mx_check_mail(void *arg, const struct smtp_envelope *env, struct smtp_reply *r)
{
    (void)env;
    (void)r;
    struct conn *c = arg;
    c->rcpt_account = 0;     /* a new transaction */
    c->feedback_rcpt = 0;
    return true;
}

static bool mx_check_rcpt(void *arg, const struct smtp_envelope *env, const char *rcpt,
                          struct smtp_reply *r)
{
    (void)env;
    struct conn *c = arg;
    struct service *svc = c->svc;
    const char *at = strrchr(rcpt, '@');
    char domain[DNS_MAX_NAME_LEN + 2];
    if (!at || strlen(at + 1) > DNS_MAX_NAME_LEN || at[1] == '[') {
        metric_inc(svc->m.msg_rejected_relay);
        smtp_reply_set(r, 550, "5.7.1", "<%s>: Relay access denied", rcpt);
        return false;
    }
    /* feedback to a VERP address: bounce+TOKEN@ any of our bounce domains
     * (the token's HMAC is the authority, not the domain) */
    size_t local_len = (size_t)(at - rcpt);
    if (local_len < SMTP_MAX_LOCALPART_LEN + 1 && strncasecmp(rcpt, "bounce+", 7) == 0) {
        char local[SMTP_MAX_LOCALPART_LEN + 1];
        memcpy(local, rcpt, local_len);
        local[local_len] = '\0';
        int64_t rid;
        struct store_delivery sd;
        int grc = STORE_NOTFOUND;
        if (outbound_verp_parse(svc->outbound, local, &rid) &&
            (grc = store_delivery_get(svc->st, rid, &sd)) == STORE_ERROR) {
            /* a genuine report must not be lost to a store hiccup */
            smtp_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure, try again later", rcpt);
            return false;
        }
        if (grc == STORE_OK) {
            if (c->rcpt_account && (c->rcpt_account != sd.account_id || c->feedback_rcpt == 0 ||
                                    c->feedback_rcpt != rid)) {
                smtp_reply_set(r, 452, "4.5.3", "<%s>: One report per transaction, send it in "
                               "another", rcpt);
                return false;
            }
            c->rcpt_account = sd.account_id;
            c->feedback_rcpt = rid;
            return true;
        }
    }
    if (c->feedback_rcpt) {
        smtp_reply_set(r, 452, "4.5.3", "<%s>: One report per transaction, send it in another",
                       rcpt);
        return false;
    }
    snprintf(domain, sizeof domain, "%s", at + 1);
    lower_ascii(domain);
    size_t dl = strlen(domain);
    if (dl && domain[dl - 1] == '.')
        domain[dl - 1] = '\0';
    struct store_domain d;
    int rc = store_domain_find_verified(svc->st, domain, &d);
    /* DMARC reports to dmarc-reports@ a custom MAIL FROM domain (the rua
     * the identities suggest) belong to that domain's account */
    if (rc == STORE_NOTFOUND && local_len == sizeof IDENTITY_REPORT_LOCALPART - 1 &&
        strncasecmp(rcpt, IDENTITY_REPORT_LOCALPART, local_len) == 0)
        rc = store_domain_find_by_mail_from(svc->st, domain, &d);
    if (rc == STORE_NOTFOUND) {
        metric_inc(svc->m.msg_rejected_relay);
        log_msg(LOG_INFO, "mx", "event=rcpt_refused conn=%llu ip=%s reason=relay domain=%s",
                (unsigned long long)c->id, c->ip, domain);
        smtp_reply_set(r, 550, "5.7.1", "<%s>: Relay access denied", rcpt);
        return false;
    }
    if (rc != STORE_OK) {
        metric_inc(svc->m.msg_tempfail);
        smtp_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure, try again later", rcpt);
        return false;
    }
    if (c->rcpt_account && c->rcpt_account != d.account_id) {
        /* one transaction = one account, so its rules and DMARC stance
         * apply unambiguously; the client sends the rest in a new one */
        smtp_reply_set(r, 452, "4.5.3", "<%s>: Too many recipients for this transaction, "
                       "send it in another", rcpt);
        return false;
    }
    c->rcpt_account = d.account_id;
    return true;
}

/* ---- the end of DATA, on a worker ---- */

static unsigned random_percent(void *arg)
{
    (void)arg;
    return randombytes_uniform(100);
}

static const char *dkim_word(const struct dkim_results *d)
{
    if (d->count == 0)
        return "none";
    for (size_t i = 0; i < d->count; i++)
        if (d->sigs[i].result == DKIM_PASS)
            return "pass";
    return dkim_result_name(d->sigs[0].result);
}

/* The Authentication-Results value without its field name. */
static const char *authres_value(const struct buf *b)
{
    const char *s = buf_cstr(b);
    const char *prefix = "Authentication-Results: ";
    return strncmp(s, prefix, strlen(prefix)) == 0 ? s + strlen(prefix) : s;
}

static int load_rules(struct store *st, int64_t account_id, struct rule_set **out);

static int rule_cb(const struct store_rule *r, void *arg)
{
    struct rule_set *set = arg;
    char err[256];
    struct rule *rule = rule_parse(r->json, strlen(r->json), NULL, err, sizeof err);
    if (!rule) {
        /* validated on insert; a rule that no longer parses is skipped */
        log_msg(LOG_WARN, "mx", "event=rule_invalid rule=%lld error=\"%s\"", (long long)r->id, err);
        return 0;
    }
    if (rule_set_add(set, rule) != 0)
        rule_free(rule);
    return 0;
}

static int load_rules(struct store *st, int64_t account_id, struct rule_set **out)
{
    struct rule_set *set = rule_set_new();
    if (!set)
        return STORE_ERROR;
    int rc = store_rule_list(st, account_id, rule_cb, set);
    if (rc != STORE_OK) {
        rule_set_free(set);
        return rc;
    }
    *out = set;
    return STORE_OK;
}

static char *webhook_payload(const struct inbound_job *j, const struct auth_verdict *v,
                             const char *authres, bool quarantine, const char *raw, size_t rawlen)
{
    json_t *o = json_object();
    json_t *rc = json_array();
    for (size_t i = 0; i < j->nrcpt; i++)
        json_array_append_new(rc, json_string(j->rcpts[i]));
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)j->stored_id);
    char url[256] = "";
    const struct config_listen *h = &j->svc->cfg.http;
    if (h->text[0] && j->stored_id)
        snprintf(url, sizeof url, "http://%s/v1/inbound/%s/raw", h->text, id);
    json_object_set_new(o, "eventType", json_string("Received"));
    json_object_set_new(o, "id", j->stored_id ? json_string(id) : json_null());
    json_object_set_new(o, "mail_from", json_string(j->mail_from));
    json_object_set_new(o, "rcpt_to", rc);
    json_object_set_new(o, "client_ip", json_string(j->ip));
    json_object_set_new(o, "helo", json_string(j->helo));
    json_object_set_new(o, "spf", json_string(spf_result_name(v->spf.result)));
    json_object_set_new(o, "dkim", json_string(dkim_word(&v->dkim)));
    json_object_set_new(o, "dmarc", json_string(dmarc_result_name(v->dmarc.result)));
    json_object_set_new(o, "authentication_results", json_string(authres));
    json_object_set_new(o, "quarantine", json_boolean(quarantine));
    if (url[0])
        json_object_set_new(o, "raw_url", json_string(url));
    if (raw) {
        size_t b64len = sodium_base64_encoded_len(rawlen, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(b64len);
        if (b64) {
            sodium_bin2base64(b64, b64len, (const unsigned char *)raw, rawlen,
                              sodium_base64_VARIANT_ORIGINAL);
            json_object_set_new(o, "raw", json_string(b64));
            free(b64);
        }
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

struct inbound_write {
    const struct store_inbound *meta;
    const char *raw;
    size_t len;
    int64_t *id;
    const struct store_dmarc_eval *eval;   /* for the aggregate report, or NULL */
};

static int apply_inbound(struct store *st, void *arg)
{
    struct inbound_write *w = arg;
    if (w->eval && store_dmarc_eval_insert(st, w->eval) != STORE_OK)
        return STORE_ERROR;
    return w->meta ? store_inbound_insert(st, w->meta, w->raw, w->len, w->id) : STORE_OK;
}

/* The DMARC evaluation of a message that is not stored (refused or
 * dropped): it counts in the aggregate report all the same. */
static void record_eval_alone(struct service *svc, struct store *st,
                              const struct store_dmarc_eval *e)
{
    struct inbound_write iw = { .eval = e };
    struct gc_write w = { .apply = apply_inbound, .arg = &iw };
    if (group_commit_write(svc->gc, st, &w) != STORE_OK)
        log_msg(LOG_WARN, "mx", "event=dmarc_eval_not_recorded domain=%s", e->policy_domain);
}

/* Is this a report address: dmarc-reports@ (the identities' rua)? */
static bool report_rcpt(const struct inbound_job *j)
{
    for (size_t i = 0; i < j->nrcpt; i++)
        if (strncasecmp(j->rcpts[i], IDENTITY_REPORT_LOCALPART "@",
                        sizeof IDENTITY_REPORT_LOCALPART) == 0)
            return true;
    return false;
}

static void inbound_run(struct workq_job *job, struct store *st)
{
    struct inbound_job *j = (struct inbound_job *)job;
    struct service *svc = j->svc;
    j->outcome = "tempfail";
    smtp_reply_set(&j->reply, 451, "4.3.0", "Temporary failure, try again later");
    if (!st)
        return;

    struct auth_check_input in = {
        .ip = j->addr, .helo = j->helo, .sender = j->mail_from,
        .authserv_id = svc->cfg.hostname, .now = time(NULL), .keycache = svc->keycache,
        .random_percent = random_percent, .check_helo = true,
    };
    struct auth_verdict v;
    if (auth_check_message(svc->dns, &in, j->msg, j->len, &v) != 0) {
        auth_verdict_free(&v);
        return;
    }
    snprintf(j->spf, sizeof j->spf, "%s", spf_result_name(v.spf.result));
    snprintf(j->dkim, sizeof j->dkim, "%s", dkim_word(&v.dkim));
    snprintf(j->dmarc, sizeof j->dmarc, "%s", dmarc_result_name(v.dmarc.result));

    struct store_account acct;
    struct rule_set *rules = NULL;
    struct rule_outcome *ro = calloc(1, sizeof *ro);
    struct buf folded, rewritten, edited;
    buf_init(&folded, 64 * 1024);
    buf_init(&rewritten, svc->cfg.max_message_size + 256 * 1024);
    buf_init(&edited, svc->cfg.max_message_size + 512 * 1024);
    struct store_dmarc_eval eval;
    int have_eval = 0;
    bool eval_written = false;
    if (!ro || store_account_get(st, j->account_id, &acct) != STORE_OK ||
        load_rules(st, j->account_id, &rules) != STORE_OK)
        goto out;
    if (svc->cfg.dmarc_reports[0] == 'y')
        have_eval = dmarc_eval_from_verdict(&v, j->ip, j->mail_from, acct.dmarc_report_only,
                                            (int64_t)time(NULL), &eval);

    /* DMARC: p=reject → refuse; p=quarantine → store flagged, unless the
     * account asked to only report */
    bool quarantine = false;
    if (v.dmarc.result == DMARC_FAIL && !acct.dmarc_report_only) {
        if (v.dmarc.disposition == DMARC_P_REJECT) {
            j->outcome = "rejected_dmarc";
            smtp_reply_set(&j->reply, 550, "5.7.1",
                           "Message rejected: the DMARC policy of %s is reject (%s)",
                           v.dmarc.policy_domain, v.dmarc.reason);
            goto out;
        }
        if (v.dmarc.disposition == DMARC_P_QUARANTINE)
            quarantine = true;
    }

    /* the header we store: forged Authentication-Results out, ours and a
     * Received in; the rules then see that header, so no rule can be
     * steered by a field forged in our name */
    char received[1024];
    if (auth_verdict_authres(&v, &in, true, &folded) != 0 ||
        inbound_msg_received(received, sizeof received, j->helo, j->ip, NULL,
                             svc->cfg.hostname, j->protocol, j->tls_desc[0] ? j->tls_desc : NULL,
                             j->queue_id, j->nrcpt == 1 ? j->rcpts[0] : NULL, time(NULL)) != 0)
        goto out;
    size_t removed = 0;
    if (inbound_msg_rewrite(j->msg, j->len, svc->cfg.hostname, authres_value(&folded), received,
                            &rewritten, &removed) != 0)
        goto out;

    size_t head_len, body_off;
    mail_split_message(rewritten.data, rewritten.len, &head_len, &body_off);
    struct rule_subject subj = {
        .mail_from = j->mail_from, .rcpts = (const char *const *)j->rcpts, .nrcpt = j->nrcpt,
        .client_ip = j->ip, .helo = j->helo, .head = rewritten.data, .head_len = head_len,
        .verdict = &v,
    };
    rule_set_evaluate(rules, &subj, ro);
    if (ro->final == RULE_FINAL_REJECT) {
        j->outcome = "rejected_rule";
        smtp_reply_set(&j->reply, ro->reject_code, ro->reject_enhanced, "%s", ro->reject_text);
        goto out;
    }
    const char *final_msg = rewritten.data;
    size_t final_len = rewritten.len;
    if (ro->nedits) {
        if (rule_apply_header_edits(ro, rewritten.data, rewritten.len, &edited) != 0)
            goto out;
        final_msg = edited.data;
        final_len = edited.len;
    }
    if (removed)
        log_msg(LOG_INFO, "mx", "event=forged_authres_removed id=%s count=%zu", j->queue_id, removed);

    if (ro->final == RULE_FINAL_DROP) {
        j->outcome = "dropped_rule";
        smtp_reply_set(&j->reply, 250, "2.0.0", "Ok: queued as %s", j->queue_id);
    } else {
        struct store_inbound meta;
        memset(&meta, 0, sizeof meta);
        meta.account_id = j->account_id;
        meta.received_at = time(NULL);
        snprintf(meta.mail_from, sizeof meta.mail_from, "%s", j->mail_from);
        json_t *ra = json_array();
        for (size_t i = 0; i < j->nrcpt; i++)
            json_array_append_new(ra, json_string(j->rcpts[i]));
        meta.rcpt_json = json_dumps(ra, JSON_COMPACT);
        json_decref(ra);
        snprintf(meta.client_ip, sizeof meta.client_ip, "%s", j->ip);
        snprintf(meta.helo, sizeof meta.helo, "%s", j->helo);
        snprintf(meta.spf, sizeof meta.spf, "%s", j->spf);
        snprintf(meta.dkim, sizeof meta.dkim, "%s", j->dkim);
        snprintf(meta.dmarc, sizeof meta.dmarc, "%s", j->dmarc);
        meta.authres = (char *)authres_value(&v.authres);
        meta.quarantine = quarantine;
        meta.size = final_len;
        if (inbound_msg_summary(final_msg, final_len, meta.message_id, sizeof meta.message_id,
                                meta.subject, sizeof meta.subject, meta.from,
                                sizeof meta.from) != 0)
            meta.message_id[0] = meta.subject[0] = meta.from[0] = '\0';
        struct inbound_write iw = { &meta, final_msg, final_len, &j->stored_id,
                                    have_eval == 1 ? &eval : NULL };
        struct gc_write w = { .apply = apply_inbound, .arg = &iw };
        int rc = meta.rcpt_json ? group_commit_write(svc->gc, st, &w) : STORE_ERROR;
        free(meta.rcpt_json);
        if (rc != STORE_OK)
            goto out;
        eval_written = true;
        j->outcome = quarantine ? "quarantined" : "stored";
        smtp_reply_set(&j->reply, 250, "2.0.0", "Ok: queued as %s", j->queue_id);
        /* a DMARC aggregate report for one of the account's domains */
        if (report_rcpt(j)) {
            char why[256] = "";
            int kept = dmarc_ingest_message(st, j->account_id, final_msg, final_len, why,
                                            sizeof why);
            if (kept <= 0)
                log_msg(LOG_INFO, "mx", "event=dmarc_report_unreadable id=%s reason=\"%s\"",
                        j->queue_id, kept < 0 ? "store failed" : why);
        }
    }

    if (ro->nwebhooks) {
        const char *ar = authres_value(&v.authres);
        bool want_raw = false;
        for (size_t i = 0; i < ro->nwebhooks; i++)
            want_raw |= ro->webhooks[i].include_raw;
        j->webhook_body = webhook_payload(j, &v, ar, quarantine, NULL, 0);
        if (want_raw)
            j->webhook_body_raw = webhook_payload(j, &v, ar, quarantine, final_msg, final_len);
        memcpy(j->webhooks, ro->webhooks, ro->nwebhooks * sizeof ro->webhooks[0]);
        j->nwebhooks = ro->nwebhooks;
    }

out:
    if (have_eval == 1) {
        if (!eval_written && strcmp(j->outcome, "tempfail") != 0)
            record_eval_alone(svc, st, &eval);   /* refused or dropped: reported too */
        dmarc_eval_release(&eval);
    }
    buf_free(&folded);
    buf_free(&rewritten);
    buf_free(&edited);
    free(ro);
    rule_set_free(rules);
    auth_verdict_free(&v);
}

static void job_free(struct inbound_job *j)
{
    free(j->msg);
    for (size_t i = 0; i < j->nrcpt; i++)
        free(j->rcpts[i]);
    free(j->rcpts);
    free(j->webhook_body);
    free(j->webhook_body_raw);
    free(j);
}

static void count_outcome(struct service *svc, const struct inbound_job *j)
{
    const char *o = j->outcome;
    if (!strcmp(o, "stored") || !strcmp(o, "quarantined"))
        metric_inc(svc->m.msg_accepted[ROLE_MX]);
    if (!strcmp(o, "quarantined"))
        metric_inc(svc->m.msg_quarantined);
    else if (!strcmp(o, "rejected_dmarc"))
        metric_inc(svc->m.msg_rejected_dmarc);
    else if (!strcmp(o, "rejected_rule"))
        metric_inc(svc->m.msg_rejected_rule);
    else if (!strcmp(o, "dropped_rule"))
        metric_inc(svc->m.msg_dropped_rule);
    else if (!strcmp(o, "tempfail"))
        metric_inc(svc->m.msg_tempfail);
    if (!strcmp(o, "tempfail"))
        return;
    static const char *spf_words[7] = { "none", "neutral", "pass", "fail", "softfail",
                                         "temperror", "permerror" };
    for (int i = 0; i < 7; i++)
        if (!strcmp(j->spf, spf_words[i]))
            metric_inc(svc->m.spf[i]);
    metric_inc(!strcmp(j->dkim, "pass") ? svc->m.dkim_pass
               : !strcmp(j->dkim, "none") ? svc->m.dkim_none : svc->m.dkim_fail);
    metric_inc(!strcmp(j->dmarc, "pass") ? svc->m.dmarc_pass
               : !strcmp(j->dmarc, "fail") ? svc->m.dmarc_fail : svc->m.dmarc_none);
}

static void inbound_done(struct workq_job *job)
{
    struct inbound_job *j = (struct inbound_job *)job;
    struct service *svc = j->svc;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - j->t0.tv_sec) + (double)(t1.tv_nsec - j->t0.tv_nsec) / 1e9;
    metric_observe(svc->m.data_latency[ROLE_MX], secs);
    count_outcome(svc, j);
    log_msg(LOG_INFO, "mx", "event=message id=%s ip=%s helo=%s from=<%s> rcpts=%zu size=%zu "
            "spf=%s dkim=%s dmarc=%s outcome=%s stored=%lld reply=%d ms=%.1f",
            j->queue_id, j->ip, j->helo, j->mail_from, j->nrcpt, j->len, j->spf, j->dkim,
            j->dmarc, j->outcome, (long long)j->stored_id, j->reply.code, secs * 1000);
    for (size_t i = 0; i < j->nwebhooks; i++) {
        const char *body = j->webhooks[i].include_raw && j->webhook_body_raw
                               ? j->webhook_body_raw : j->webhook_body;
        if (body && webhook_post(svc->webhooks, j->webhooks[i].url, body, strlen(body)) != 0)
            log_msg(LOG_WARN, "mx", "event=webhook_refused id=%s", j->queue_id);
    }
    struct conn *c = j->c;
    if (!conn_release_job(c)) {
        smtp_session_data_done(c->sess, &j->reply);
        conn_resume(c);
    }
    job_free(j);
}

static void mx_data(void *arg, const struct smtp_envelope *env, char *msg, size_t len)
{
    struct conn *c = arg;
    struct service *svc = c->svc;
    if (c->feedback_rcpt) {
        feedback_submit(c, env->mail_from, msg, len);
        return;
    }
    struct inbound_job *j = calloc(1, sizeof *j);
    if (j)
        j->rcpts = calloc(env->nrcpt ? env->nrcpt : 1, sizeof *j->rcpts);
    if (!j || !j->rcpts) {
        free(msg);
        if (j)
            free(j);
        struct smtp_reply r;
        smtp_reply_set(&r, 451, "4.3.0", "Out of memory, try again later");
        smtp_session_data_done(c->sess, &r);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &j->t0);
    j->job.run = inbound_run;
    j->job.done = inbound_done;
    j->c = c;
    j->svc = svc;
    j->msg = msg;
    j->len = len;
    snprintf(j->mail_from, sizeof j->mail_from, "%s", env->mail_from);
    snprintf(j->helo, sizeof j->helo, "%s", env->helo);
    for (size_t i = 0; i < env->nrcpt; i++) {
        j->rcpts[i] = strdup(env->rcpts[i]);
        if (j->rcpts[i])
            j->nrcpt++;
    }
    j->account_id = c->rcpt_account;
    snprintf(j->ip, sizeof j->ip, "%s", c->ip);
    j->addr = c->addr;
    /* RFC 3848 protocol types */
    snprintf(j->protocol, sizeof j->protocol, "%s%s%s", env->smtputf8 ? "UTF8SMTP" : "",
             env->esmtp ? (env->smtputf8 ? "" : "ESMTP") : (env->smtputf8 ? "" : "SMTP"),
             env->tls ? "S" : "");
    snprintf(j->tls_desc, sizeof j->tls_desc, "%s", env->tls ? c->tls_desc : "");
    service_queue_id(c, j->queue_id, sizeof j->queue_id);
    c->job_pending = true;
    workq_submit(svc->workq, &j->job);
}

void inbound_hooks(struct conn *c, struct smtp_hooks *h)
{
    (void)c;
    h->check_mail = mx_check_mail;
    h->check_rcpt = mx_check_rcpt;
    h->data = mx_data;
}
