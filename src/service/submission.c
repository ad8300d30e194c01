/* The submission policy (RFC 6409): AUTH is required; the envelope sender
 * and every From address must be identities the account has verified (a
 * verified domain covers all its addresses); sandbox accounts may send
 * only to their own verified identities. Those are checked early (MAIL,
 * RCPT) for a clear refusal; the end of DATA goes through outbound_accept,
 * the path the HTTP API shares: From identities, quota and rate,
 * suppressions, Date/Message-ID (RFC 6409 §8), DKIM signing and the
 * durable queue, all before the 250. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/service_internal.h"
#include "util/log.h"

/* ---- AUTH, verified on a worker (argon2id is slow by design) ---- */

struct auth_job {
    struct workq_job job;
    struct conn *c;
    char user[256];
    char *password;
    size_t password_len;
    bool ok;
    bool blocked;
    struct store_account account;
};

static void auth_run(struct workq_job *job, struct store *st)
{
    struct auth_job *j = (struct auth_job *)job;
    struct service *svc = j->c->svc;
    if (!st)
        return;
    if (authfail_blocked(svc->authfail, j->c->ip, time(NULL))) {
        j->blocked = true;
        return;
    }
    int rc = account_verify_smtp(st, svc->creds, j->user, j->password, &j->account);
    j->ok = rc == STORE_OK;
    if (!j->ok && rc == STORE_NOTFOUND)
        authfail_record(svc->authfail, j->c->ip, time(NULL));
    else if (j->ok)
        authfail_clear(svc->authfail, j->c->ip);
}

static void auth_done(struct workq_job *job)
{
    struct auth_job *j = (struct auth_job *)job;
    struct conn *c = j->c;
    struct service *svc = c->svc;
    metric_inc(j->ok ? svc->m.auth_ok : j->blocked ? svc->m.auth_blocked : svc->m.auth_failed);
    log_msg(j->ok ? LOG_INFO : LOG_WARN, "submission",
            "event=auth conn=%llu ip=%s user=%s result=%s", (unsigned long long)c->id, c->ip,
            j->user, j->ok ? "ok" : j->blocked ? "blocked" : "failed");
    if (!conn_release_job(c)) {
        if (j->ok) {
            c->authed = true;
            c->account = j->account;
        }
        smtp_session_auth_done(c->sess, j->ok, j->ok ? j->user : NULL);
        conn_resume(c);
    }
    sodium_memzero(j->password, j->password_len);
    free(j->password);
    free(j);
}

static void sub_auth(void *arg, const char *user, const char *password)
{
    struct conn *c = arg;
    struct auth_job *j = calloc(1, sizeof *j);
    if (j)
        j->password = strdup(password);
    if (!j || !j->password) {
        free(j);
        smtp_session_auth_done(c->sess, false, NULL);
        return;
    }
    j->password_len = strlen(password);
    j->job.run = auth_run;
    j->job.done = auth_done;
    j->c = c;
    snprintf(j->user, sizeof j->user, "%s", user);
    c->job_pending = true;
    workq_submit(c->svc->workq, &j->job);
}

/* ---- MAIL and RCPT ---- */

static bool sub_check_mail(void *arg, const struct smtp_envelope *env, struct smtp_reply *r)
{
    struct conn *c = arg;
    if (!c->authed) {
        smtp_reply_set(r, 530, "5.7.0", "Authentication required");
        return false;
    }
    if (!env->mail_from[0]) {
        metric_inc(c->svc->m.msg_rejected_sender);
        smtp_reply_set(r, 550, "5.7.1", "A null sender <> cannot be submitted");
        return false;
    }
    bool ok = false;
    if (account_may_send_as(c->svc->st, c->account.id, env->mail_from, &ok) != STORE_OK) {
        smtp_reply_set(r, 451, "4.3.0", "Temporary lookup failure, try again later");
        return false;
    }
    if (!ok) {
        metric_inc(c->svc->m.msg_rejected_sender);
        smtp_reply_set(r, 550, "5.7.1", "Sender address <%s> is not a verified identity of "
                       "account %s: verify the address or its domain first",
                       env->mail_from, c->account.name);
        return false;
    }
    return true;
}

static bool sub_check_rcpt(void *arg, const struct smtp_envelope *env, const char *rcpt,
                           struct smtp_reply *r)
{
    (void)env;
    struct conn *c = arg;
    if (!c->account.sandbox)
        return true;
    bool ok = false;
    if (account_may_send_as(c->svc->st, c->account.id, rcpt, &ok) != STORE_OK) {
        smtp_reply_set(r, 451, "4.3.0", "Temporary lookup failure, try again later");
        return false;
    }
    if (!ok) {
        smtp_reply_set(r, 550, "5.7.1", "<%s>: account %s is in the sandbox and may send only "
                       "to its verified identities", rcpt, c->account.name);
        return false;
    }
    return true;
}

/* ---- DATA → the outbound queue, on a worker ---- */

struct submit_job {
    struct workq_job job;
    struct conn *c;
    struct service *svc;
    int64_t account_id;
    char mail_from[SMTP_MAX_PATH_LEN + 1];
    char **rcpts;
    size_t nrcpt;
    char *msg;
    size_t len;
    char queue_id[40];
    struct smtp_reply reply;
    int64_t stored_id;
};

static void submit_run(struct workq_job *job, struct store *st)
{
    struct submit_job *j = (struct submit_job *)job;
    struct service *svc = j->svc;
    smtp_reply_set(&j->reply, 451, "4.3.0", "Temporary failure, try again later");
    if (!st)
        return;
    struct store_account acct;
    if (store_account_get(st, j->account_id, &acct) != STORE_OK)
        return;
    struct outbound_request req = {
        .account = &acct, .mail_from = j->mail_from, .rcpts = (const char *const *)j->rcpts,
        .nrcpt = j->nrcpt, .msg = j->msg, .len = j->len, .source = "smtp",
    };
    struct outbound_result res;
    outbound_accept(svc->outbound, st, &req, &res);
    char when[40] = "";
    if (res.retry_at) {
        time_t t = (time_t)res.retry_at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    switch (res.refusal) {
    case OUTBOUND_OK:
        j->stored_id = res.message_id;
        smtp_reply_set(&j->reply, 250, "2.0.0", "Ok: queued as %lld%s", (long long)res.message_id,
                       res.suppressed ? " (suppressed recipients left out)" : "");
        break;
    case OUTBOUND_BAD_MESSAGE:
        smtp_reply_set(&j->reply, 550, "5.6.0", "%s", res.why);
        break;
    case OUTBOUND_IDENTITY:
    case OUTBOUND_SANDBOX:
    case OUTBOUND_PAUSED:
        metric_inc(svc->m.msg_rejected_sender);
        smtp_reply_set(&j->reply, 550, "5.7.1", "%s", res.why);
        break;
    case OUTBOUND_QUOTA:
    case OUTBOUND_RATE:
        smtp_reply_set(&j->reply, 451, "4.7.1", "%s; try again after %s", res.why, when);
        break;
    case OUTBOUND_ALL_SUPPRESSED:
        smtp_reply_set(&j->reply, 550, "5.7.1", "%s", res.why);
        break;
    case OUTBOUND_TEMPFAIL:
        smtp_reply_set(&j->reply, 451, "4.3.0", "%s", res.why);
        break;
    }
}

static void submit_done(struct workq_job *job)
{
    struct submit_job *j = (struct submit_job *)job;
    struct conn *c = j->c;
    struct service *svc = j->svc;
    if (j->reply.code == 250)
        metric_inc(svc->m.msg_accepted[ROLE_SUBMISSION]);
    else if (j->reply.code < 500)
        metric_inc(svc->m.msg_tempfail);
    log_msg(LOG_INFO, "submission", "event=message id=%s account=%s from=<%s> rcpts=%zu size=%zu "
            "queued=%lld reply=%d", j->queue_id, c->account.name, j->mail_from, j->nrcpt, j->len,
            (long long)j->stored_id, j->reply.code);
    if (!conn_release_job(c)) {
        smtp_session_data_done(c->sess, &j->reply);
        conn_resume(c);
    }
    for (size_t i = 0; i < j->nrcpt; i++)
        free(j->rcpts[i]);
    free(j->rcpts);
    free(j->msg);
    free(j);
}

static void sub_data(void *arg, const struct smtp_envelope *env, char *msg, size_t len)
{
    struct conn *c = arg;
    struct submit_job *j = calloc(1, sizeof *j);
    if (j)
        j->rcpts = calloc(env->nrcpt ? env->nrcpt : 1, sizeof *j->rcpts);
    if (!j || !j->rcpts) {
        free(msg);
        free(j);
        struct smtp_reply r;
        smtp_reply_set(&r, 451, "4.3.0", "Out of memory, try again later");
        smtp_session_data_done(c->sess, &r);
        return;
    }
    j->job.run = submit_run;
    j->job.done = submit_done;
    j->c = c;
    j->svc = c->svc;
    j->account_id = c->account.id;
    j->msg = msg;
    j->len = len;
    snprintf(j->mail_from, sizeof j->mail_from, "%s", env->mail_from);
    for (size_t i = 0; i < env->nrcpt; i++) {
        j->rcpts[i] = strdup(env->rcpts[i]);
        if (j->rcpts[i])
            j->nrcpt++;
    }
    service_queue_id(c, j->queue_id, sizeof j->queue_id);
    c->job_pending = true;
    workq_submit(c->svc->workq, &j->job);
}

void submission_hooks(struct conn *c, struct smtp_hooks *h)
{
    (void)c;
    h->auth = sub_auth;
    h->check_mail = sub_check_mail;
    h->check_rcpt = sub_check_rcpt;
    h->data = sub_data;
}
