/* The submission policy (RFC 6409): AUTH is required; the envelope sender
 * and every From address must be identities the account has verified (a
 * verified domain covers all its addresses); sandbox accounts may send
 * only to their own verified identities. An accepted message gets Date and
 * Message-ID when it lacks them (RFC 6409 §8) and is handed to the
 * outbound queue in the store before the 250. Delivery, DKIM signing and
 * quotas build on that queue. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/mail_address.h"
#include "mail/mail_header.h"
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

/* Checks the From field against the account's identities and finds
 * whether Date / Message-ID are present. Returns 0, or -1 with r set. */
static int check_header(struct store *st, int64_t account_id, const char *head, size_t len,
                        bool *has_date, bool *has_msgid, char *msgid, size_t msgidlen,
                        struct smtp_reply *r)
{
    size_t count = 0;
    struct mail_field *fields = malloc(MAIL_MAX_HEADERS * sizeof *fields);
    if (!fields) {
        smtp_reply_set(r, 451, "4.3.0", "Out of memory, try again later");
        return -1;
    }
    mail_header_fields(head, len, fields, MAIL_MAX_HEADERS, &count, NULL);
    if (count > MAIL_MAX_HEADERS)
        count = MAIL_MAX_HEADERS;
    const struct mail_field *from = NULL;
    size_t nfrom = 0;
    *has_date = *has_msgid = false;
    msgid[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        if (sv_eq_ci_cstr(fields[i].name, "From")) {
            from = &fields[i];
            nfrom++;
        } else if (sv_eq_ci_cstr(fields[i].name, "Date")) {
            *has_date = true;
        } else if (sv_eq_ci_cstr(fields[i].name, "Message-ID")) {
            *has_msgid = true;
            struct sv v = sv_trim(mail_field_value(&fields[i]));
            snprintf(msgid, msgidlen, "%.*s", (int)(v.len < msgidlen ? v.len : msgidlen - 1),
                     v.p);
        }
    }
    int rc = -1;
    struct mail_address_list list;
    char err[128];
    if (nfrom != 1) {
        smtp_reply_set(r, 550, "5.6.0", "The message must have exactly one From field (it has %zu)",
                       nfrom);
    } else {
        struct sv v = mail_field_value(from);
        if (mail_address_list_parse(v.p, v.len, &list, err, sizeof err) != 0 || list.count == 0 ||
            list.count > MAIL_MAX_MAILBOXES) {
            smtp_reply_set(r, 550, "5.6.0", "The From field cannot be parsed");
        } else {
            rc = 0;
            for (size_t i = 0; i < list.count && rc == 0; i++) {
                char addr[SMTP_MAX_LOCALPART_LEN * 4 + SMTP_MAX_DOMAIN_LEN + 2];
                snprintf(addr, sizeof addr, "%s@%s", list.box[i].local, list.box[i].domain);
                bool ok = false;
                if (account_may_send_as(st, account_id, addr, &ok) != STORE_OK) {
                    smtp_reply_set(r, 451, "4.3.0", "Temporary lookup failure, try again later");
                    rc = -1;
                } else if (!ok) {
                    smtp_reply_set(r, 550, "5.7.1", "From address <%s> is not a verified "
                                   "identity of this account", addr);
                    rc = -1;
                }
            }
        }
    }
    free(fields);
    return rc;
}

struct outbound_write {
    struct store_outbound *m;
    const char *raw;
    size_t len;
};

static int apply_outbound(struct store *st, void *arg)
{
    struct outbound_write *w = arg;
    return store_outbound_insert(st, w->m, w->raw, w->len);
}

static void submit_run(struct workq_job *job, struct store *st)
{
    struct submit_job *j = (struct submit_job *)job;
    struct service *svc = j->svc;
    smtp_reply_set(&j->reply, 451, "4.3.0", "Temporary failure, try again later");
    if (!st)
        return;
    size_t head_len, body_off;
    mail_split_message(j->msg, j->len, &head_len, &body_off);
    bool has_date, has_msgid;
    char msgid[256];
    if (check_header(st, j->account_id, j->msg, head_len, &has_date, &has_msgid, msgid,
                     sizeof msgid, &j->reply) != 0) {
        if (j->reply.code >= 500)
            metric_inc(svc->m.msg_rejected_sender);
        return;
    }
    /* RFC 6409 §8.2, §8.3: add what the client left out */
    struct buf out;
    buf_init(&out, j->len + 1024);
    int rc = 0;
    if (!has_date) {
        char date[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
        rc |= buf_printf(&out, "Date: %s\r\n", date);
    }
    if (!has_msgid) {
        unsigned char rnd[12];
        randombytes_buf(rnd, sizeof rnd);
        char hex[25];
        sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
        snprintf(msgid, sizeof msgid, "<%s@%.200s>", hex, svc->cfg.hostname);
        rc |= buf_printf(&out, "Message-ID: %s\r\n", msgid);
    }
    rc |= buf_append(&out, j->msg, j->len);
    if (rc != 0) {
        buf_free(&out);
        return;
    }
    struct store_outbound m = {
        .account_id = j->account_id, .rcpts = (const char *const *)j->rcpts,
        .nrcpt = j->nrcpt, .created_at = time(NULL), .source = "smtp",
    };
    snprintf(m.mail_from, sizeof m.mail_from, "%s", j->mail_from);
    snprintf(m.message_id, sizeof m.message_id, "%s", msgid);
    struct outbound_write ow = { &m, out.data, out.len };
    struct gc_write w = { .apply = apply_outbound, .arg = &ow };
    if (group_commit_write(svc->gc, st, &w) == STORE_OK) {
        j->stored_id = m.id;
        smtp_reply_set(&j->reply, 250, "2.0.0", "Ok: queued as %lld", (long long)m.id);
    }
    buf_free(&out);
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
