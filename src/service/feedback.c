/* Feedback that comes back to a VERP address (bounce+TOKEN@...): the MX
 * accepted it because the token's HMAC names one outbound recipient row.
 * On a worker: the report is parsed (mail/dsn.h); a failed DSN becomes a
 * Bounce event (Permanent for 5.x.x, suppressing the address; Transient for
 * 4.x.x), a delayed DSN a DeliveryDelay event, an ARF report a Complaint
 * event and a suppression; auto-replies and anything else are logged and
 * dropped. The sender always hears 250 once this is recorded: a report is
 * never bounced back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/dsn.h"
#include "service/events.h"
#include "service/service_internal.h"
#include "util/log.h"

struct feedback_job {
    struct workq_job job;
    struct conn *c;
    struct service *svc;
    int64_t rcpt_id;
    char mail_from[SMTP_MAX_PATH_LEN + 1];   /* the report's envelope sender */
    char *msg;
    size_t len;
    char queue_id[40];
    const char *outcome;
    struct smtp_reply reply;
};

static const char *bounce_subtype(const char *status)
{
    if (!strcmp(status, "5.1.1") || !strcmp(status, "5.1.10") || !strcmp(status, "5.1.2"))
        return "NoEmail";
    if (!strcmp(status, "5.2.2") || !strcmp(status, "4.2.2"))
        return "MailboxFull";
    if (!strcmp(status, "5.3.4"))
        return "MessageTooLarge";
    return "General";
}

struct fb_write {
    const struct store_delivery *d;
    const struct feedback *fb;
    const struct dsn_recipient *dr;   /* DSN: the recipient concerned */
    const char *kind;                 /* "bounce", "transient", "delay", "complaint" */
};

static int apply_feedback(struct store *st, void *arg)
{
    struct fb_write *w = arg;
    const struct store_delivery *d = w->d;
    const char *dest[1] = { d->rcpt };
    struct event_mail em = { .message_id = d->message_id, .timestamp = d->created_at,
                             .source = d->mail_from, .destination = dest, .ndestination = 1 };
    int64_t now = (int64_t)time(NULL);
    json_t *ev;
    if (!strcmp(w->kind, "complaint")) {
        ev = event_create("Complaint", &em);
        if (!ev)
            return STORE_ERROR;
        event_set_complaint(ev, d->rcpt, w->fb->feedback_type[0] ? w->fb->feedback_type : "abuse",
                            w->fb->user_agent);
    } else if (!strcmp(w->kind, "delay")) {
        ev = event_create("DeliveryDelay", &em);
        if (!ev)
            return STORE_ERROR;
        event_set_delay(ev, d->rcpt, w->dr->status, w->dr->diagnostic, 0);
    } else {
        bool permanent = !strcmp(w->kind, "bounce");
        ev = event_create("Bounce", &em);
        if (!ev)
            return STORE_ERROR;
        event_set_bounce(ev, permanent ? "Permanent" : "Transient", bounce_subtype(w->dr->status),
                         d->rcpt, w->dr->status, w->dr->diagnostic, w->fb->reporting_mta);
        if (permanent && store_delivery_update(st, d->rcpt_id, STORE_RCPT_BOUNCED, d->attempts, 0,
                                               w->dr->diagnostic, now) != STORE_OK) {
            json_decref(ev);
            return STORE_ERROR;
        }
    }
    if (event_record(st, d->account_id, d->message_id, d->rcpt, ev) != STORE_OK)
        return STORE_ERROR;
    if (!strcmp(w->kind, "complaint") || !strcmp(w->kind, "bounce")) {
        struct store_suppression s = { .account_id = d->account_id, .created_at = now };
        snprintf(s.address, sizeof s.address, "%s", d->rcpt);
        snprintf(s.reason, sizeof s.reason, "%s", !strcmp(w->kind, "bounce") ? "bounce" : "complaint");
        snprintf(s.detail, sizeof s.detail, "%.255s",
                 w->dr ? w->dr->diagnostic : w->fb->feedback_type);
        return store_suppression_put(st, &s);
    }
    return STORE_OK;
}

static void feedback_run(struct workq_job *job, struct store *st)
{
    struct feedback_job *j = (struct feedback_job *)job;
    struct service *svc = j->svc;
    smtp_reply_set(&j->reply, 451, "4.3.0", "Temporary failure, try again later");
    j->outcome = "tempfail";
    if (!st)
        return;
    struct store_delivery d;
    if (store_delivery_get(st, j->rcpt_id, &d) != STORE_OK)
        return;
    struct feedback *fb = calloc(1, sizeof *fb);
    if (!fb)
        return;
    char err[256] = "";
    struct fb_write w = { .d = &d, .fb = fb };
    if (feedback_parse_envelope(j->msg, j->len, j->mail_from, fb, err, sizeof err) != 0) {
        j->outcome = "malformed";
    } else if (fb->kind == FEEDBACK_ARF) {
        w.kind = "complaint";
    } else if (fb->kind == FEEDBACK_DSN) {
        /* the report's recipient for our row (else the first that failed) */
        for (size_t i = 0; i < fb->nrcpts && !w.dr; i++)
            if (!strcasecmp(fb->rcpts[i].final_recipient, d.rcpt) ||
                !strcasecmp(fb->rcpts[i].original_recipient, d.rcpt))
                w.dr = &fb->rcpts[i];
        for (size_t i = 0; i < fb->nrcpts && !w.dr; i++)
            if (!strcasecmp(fb->rcpts[i].action, "failed") || !strcasecmp(fb->rcpts[i].action, "delayed"))
                w.dr = &fb->rcpts[i];
        if (!w.dr)
            j->outcome = "no_failure";
        else if (!strcasecmp(w.dr->action, "delayed"))
            w.kind = "delay";
        else if (!strcasecmp(w.dr->action, "failed"))
            w.kind = w.dr->status[0] == '4' ? "transient" : "bounce";
        else
            j->outcome = "not_a_failure";
    } else {
        j->outcome = fb->kind == FEEDBACK_AUTOREPLY ? "autoreply" : "not_a_report";
    }
    if (w.kind) {
        struct gc_write gw = { .apply = apply_feedback, .arg = &w };
        if (group_commit_write(svc->gc, st, &gw) != STORE_OK) {
            free(fb);
            return;
        }
        j->outcome = w.kind;
    }
    if (err[0])
        log_msg(LOG_INFO, "feedback", "event=unparsed id=%s why=\"%s\"", j->queue_id, err);
    free(fb);
    smtp_reply_set(&j->reply, 250, "2.0.0", "Ok: report recorded as %s", j->queue_id);
}

static void feedback_done(struct workq_job *job)
{
    struct feedback_job *j = (struct feedback_job *)job;
    struct service *svc = j->svc;
    log_msg(LOG_INFO, "feedback", "event=report id=%s rcpt_row=%lld outcome=%s reply=%d",
            j->queue_id, (long long)j->rcpt_id, j->outcome, j->reply.code);
    static const char *kinds[4] = { "bounce", "transient", "delay", "complaint" };
    for (int i = 0; i < 4; i++)
        if (!strcmp(j->outcome, kinds[i]))
            metric_inc(svc->m.feedback[i]);
    struct conn *c = j->c;
    if (!conn_release_job(c)) {
        smtp_session_data_done(c->sess, &j->reply);
        conn_resume(c);
    }
    free(j->msg);
    free(j);
}

void feedback_submit(struct conn *c, const char *mail_from, char *msg, size_t len)
{
    struct feedback_job *j = calloc(1, sizeof *j);
    if (!j) {
        free(msg);
        struct smtp_reply r;
        smtp_reply_set(&r, 451, "4.3.0", "Out of memory, try again later");
        smtp_session_data_done(c->sess, &r);
        return;
    }
    j->job.run = feedback_run;
    j->job.done = feedback_done;
    j->c = c;
    j->svc = c->svc;
    j->rcpt_id = c->feedback_rcpt;
    snprintf(j->mail_from, sizeof j->mail_from, "%s", mail_from);
    j->msg = msg;
    j->len = len;
    service_queue_id(c, j->queue_id, sizeof j->queue_id);
    c->job_pending = true;
    workq_submit(c->svc->workq, &j->job);
}
