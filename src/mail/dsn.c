/* Classifying what comes back to a bounce address: RFC 3464 DSNs, RFC 5965
 * ARF reports, plain-text bounces of MTAs that send no multipart/report
 * (a bounded heuristic), RFC 3834 auto-replies; see dsn.h and docs/mime.md.
 *
 * The MIME walk is mime_parse.c's; here the report parts are decoded (capped
 * at FEEDBACK_MAX_PART_SIZE) and their field groups read. Nothing is
 * matched to stored messages here (the caller has the VERP token) and
 * nothing is logged: every string copied out is unfolded, trimmed, cut to
 * its field and free of control octets. */
#include "mail/dsn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mail_address.h"
#include "mail/mail_header.h"
#include "mail/mime_parse.h"

#define TEXT_BOUNCE_LOOKBACK 8 /* lines above a status line searched for the recipient */

static int fail(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return -1;
}

/* ---- small text helpers ----------------------------------------------- */

/* The line at i of s[0..n): content end in *ce, returns the next line's start. */
static size_t next_line(const char *s, size_t n, size_t i, size_t *ce)
{
    const char *nl = memchr(s + i, '\n', n - i);
    size_t le = nl ? (size_t)(nl - s) : n, e = le;
    if (nl && e > i && s[e - 1] == '\r')
        e--;
    *ce = e;
    return nl ? le + 1 : n;
}

static bool blank(const char *s, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++)
        if (s[k] != ' ' && s[k] != '\t')
            return false;
    return true;
}

/* An RFC 3463 enhanced status code "c.sss.ddd" (c = 2, 4 or 5) at s[i],
 * not glued to other digits or dots; its length, 0 when there is none. */
static size_t status_at(const char *s, size_t n, size_t i)
{
    if (i >= n || (s[i] != '2' && s[i] != '4' && s[i] != '5'))
        return 0;
    if (i > 0 && (isdigit((unsigned char)s[i - 1]) || s[i - 1] == '.'))
        return 0;
    size_t k = i + 1;
    for (int part = 0; part < 2; part++) {
        if (k >= n || s[k] != '.')
            return 0;
        k++;
        size_t d = 0;
        while (k < n && isdigit((unsigned char)s[k]) && d < 4) {
            k++;
            d++;
        }
        if (d == 0 || d > 3)
            return 0;
    }
    if (k < n && (isdigit((unsigned char)s[k]) || (s[k] == '.' && k + 1 < n &&
                                                   isdigit((unsigned char)s[k + 1]))))
        return 0;
    return k - i;
}

/* The first enhanced status code in s[0..n) whose class is one of
 * classes into out (16 octets). */
static bool find_status(const char *s, size_t n, const char *classes, char *out)
{
    for (size_t i = 0; i < n; i++) {
        if (!s[i] || !strchr(classes, s[i]))
            continue;
        size_t l = status_at(s, n, i);
        if (l && l < 16) {
            memcpy(out, s + i, l);
            out[l] = '\0';
            return true;
        }
    }
    return false;
}

/* "type; value" (Final-Recipient, Remote-MTA, Reporting-MTA ...): the
 * value, unfolded, angle brackets removed. Without a ';' the whole. */
static void typed_value(struct sv v, char *out, size_t outlen)
{
    char tmp[1024];
    size_t n = mime_unfold(v, tmp, sizeof tmp);
    const char *semi = memchr(tmp, ';', n);
    struct sv s = semi ? sv_make(semi + 1, n - (size_t)(semi + 1 - tmp)) : sv_make(tmp, n);
    s = sv_trim(s);
    if (s.len >= 2 && s.p[0] == '<' && s.p[s.len - 1] == '>')
        s = sv_trim(sv_sub(s, 1, s.len - 1));
    mime_unfold(s, out, outlen);
}

static void copy_lower_token(struct sv v, char *out, size_t outlen)
{
    char tmp[64];
    size_t n = mime_unfold(v, tmp, sizeof tmp), k = 0;
    while (k < n && k + 1 < outlen && (isalnum((unsigned char)tmp[k]) || tmp[k] == '-' ||
                                       tmp[k] == '_')) {
        out[k] = (char)tolower((unsigned char)tmp[k]);
        k++;
    }
    out[k] = '\0';
}

static bool field(struct sv group, const char *name, struct sv *v)
{
    return mime_header_get(group, name, v);
}

/* ---- RFC 3464 delivery-status ----------------------------------------- */

static const char *const actions[] = { "failed", "delayed", "delivered", "relayed", "expanded" };

static void recipient_group(struct sv g, struct feedback *out)
{
    struct sv v;
    struct dsn_recipient r;
    memset(&r, 0, sizeof r);
    if (field(g, "Final-Recipient", &v))
        typed_value(v, r.final_recipient, sizeof r.final_recipient);
    if (field(g, "Original-Recipient", &v))
        typed_value(v, r.original_recipient, sizeof r.original_recipient);
    if (!r.final_recipient[0] && r.original_recipient[0])
        memcpy(r.final_recipient, r.original_recipient, sizeof r.final_recipient);
    if (field(g, "Diagnostic-Code", &v))
        mime_unfold(v, r.diagnostic, sizeof r.diagnostic);
    if (field(g, "Remote-MTA", &v))
        typed_value(v, r.remote_mta, sizeof r.remote_mta);
    if (field(g, "Status", &v)) {
        char tmp[64];
        size_t n = mime_unfold(v, tmp, sizeof tmp);
        size_t l = status_at(tmp, n, 0);
        if (l && l < sizeof r.status) {
            memcpy(r.status, tmp, l);
            r.status[l] = '\0';
        }
    }
    if (!r.status[0] && r.diagnostic[0])
        find_status(r.diagnostic, strlen(r.diagnostic), "245", r.status);
    if (field(g, "Action", &v))
        copy_lower_token(v, r.action, sizeof r.action);
    bool known = false;
    for (size_t k = 0; k < sizeof actions / sizeof actions[0]; k++)
        known = known || strcmp(r.action, actions[k]) == 0;
    if (!known) /* a missing or unknown Action: what the status class says */
        snprintf(r.action, sizeof r.action, "%s",
                 r.status[0] == '5' ? "failed" : r.status[0] == '4' ? "delayed"
                 : r.status[0] == '2' ? "delivered" : "");
    if (!r.status[0]) /* a missing Status: the class of the action */
        snprintf(r.status, sizeof r.status, "%s",
                 strcmp(r.action, "failed") == 0 ? "5.0.0"
                 : strcmp(r.action, "delayed") == 0 ? "4.0.0"
                 : r.action[0] ? "2.0.0" : "");
    if (!r.final_recipient[0] || !r.action[0])
        return; /* nothing a bounce can be made of */
    if (out->nrcpts < DSN_MAX_RECIPIENTS)
        out->rcpts[out->nrcpts++] = r;
}

/* The field groups of a delivery-status body: per-message, then one per
 * recipient, separated by blank lines. */
static int delivery_status(const char *s, size_t n, struct feedback *out, char *err,
                           size_t errlen)
{
    size_t i = 0, group = 0;
    while (i < n) {
        size_t ce, next = next_line(s, n, i, &ce);
        if (blank(s, i, ce)) {
            i = next;
            continue;
        }
        size_t gs = i, ge = n;
        while (i < n) {
            next = next_line(s, n, i, &ce);
            if (blank(s, i, ce)) {
                ge = i;
                break;
            }
            i = next;
        }
        struct sv g = sv_make(s + gs, ge - gs), v;
        bool is_rcpt = field(g, "Final-Recipient", &v) || field(g, "Original-Recipient", &v);
        if (group == 0 && !is_rcpt) {
            if (field(g, "Reporting-MTA", &v))
                typed_value(v, out->reporting_mta, sizeof out->reporting_mta);
        } else {
            recipient_group(g, out);
        }
        group++;
    }
    if (out->nrcpts == 0)
        return fail(err, errlen, "delivery-status report without a usable recipient group");
    return 0;
}

/* ---- the returned message --------------------------------------------- */

static bool is_returned_message(const char *type)
{
    return strcmp(type, "message/rfc822") == 0 || strcmp(type, "message/global") == 0 ||
           strcmp(type, "text/rfc822-headers") == 0 ||
           strcmp(type, "message/rfc822-headers") == 0 ||
           strcmp(type, "message/global-headers") == 0;
}

static void message_id_of(struct sv head, struct feedback *out)
{
    struct sv v;
    if (mime_header_get(head, "Message-ID", &v))
        mime_unfold(v, out->original_message_id, sizeof out->original_message_id);
}

static void returned_message(const struct mime_tree *t, size_t after, struct feedback *out)
{
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t k = pass ? 1 : after + 1; k < t->nparts; k++) {
            const struct mime_part *p = &t->part[k];
            if (!is_returned_message(p->type))
                continue;
            struct buf b;
            buf_init(&b, FEEDBACK_MAX_PART_SIZE);
            struct sv msg = p->body;
            if (p->cte == MIME_CTE_BASE64 || p->cte == MIME_CTE_QP) {
                /* only the header section matters: what fits the cap will do */
                if (mime_decode_body(p, &b) != 0 && b.len == 0) {
                    buf_free(&b);
                    continue;
                }
                msg = sv_make(buf_cstr(&b), b.len);
            }
            size_t head_len, body_off;
            mail_split_message(msg.p, msg.len, &head_len, &body_off);
            message_id_of(sv_make(msg.p, head_len), out);
            buf_free(&b);
            return;
        }
}

/* ---- multipart/report ------------------------------------------------- */

static int find_part(const struct mime_tree *t, const char *type1, const char *type2)
{
    for (size_t k = 1; k < t->nparts; k++)
        if (strcmp(t->part[k].type, type1) == 0 || (type2 && strcmp(t->part[k].type, type2) == 0))
            return (int)k;
    return -1;
}

/* The decoded body of part k into b (capped). */
static int decoded(const struct mime_tree *t, int k, struct buf *b, char *err, size_t errlen)
{
    if (mime_decode_body(&t->part[k], b) != 0)
        return fail(err, errlen, "report part too large or badly encoded");
    if (memchr(buf_cstr(b), '\0', b->len))
        return fail(err, errlen, "NUL octet in a report part");
    return 0;
}

static int parse_dsn(const struct mime_tree *t, struct feedback *out, char *err, size_t errlen)
{
    int k = find_part(t, "message/delivery-status", "message/global-delivery-status");
    if (k < 0)
        return fail(err, errlen, "delivery-status report without a message/delivery-status part");
    struct buf b;
    buf_init(&b, FEEDBACK_MAX_PART_SIZE);
    int rc = decoded(t, k, &b, err, errlen);
    if (rc == 0)
        rc = delivery_status(buf_cstr(&b), b.len, out, err, errlen);
    buf_free(&b);
    if (rc != 0)
        return -1;
    out->kind = FEEDBACK_DSN;
    returned_message(t, (size_t)k, out);
    return 0;
}

static int parse_arf(const struct mime_tree *t, struct feedback *out, char *err, size_t errlen)
{
    int k = find_part(t, "message/feedback-report", NULL);
    if (k < 0)
        return fail(err, errlen, "feedback report without a message/feedback-report part");
    struct buf b;
    buf_init(&b, FEEDBACK_MAX_PART_SIZE);
    if (decoded(t, k, &b, err, errlen) != 0) {
        buf_free(&b);
        return -1;
    }
    /* one group of fields; leading blank lines tolerated */
    const char *s = buf_cstr(&b);
    size_t i = 0, ce;
    while (i < b.len) {
        size_t next = next_line(s, b.len, i, &ce);
        if (!blank(s, i, ce))
            break;
        i = next;
    }
    struct sv g = sv_make(s + i, b.len - i), v;
    int rc = 0;
    if (!field(g, "Feedback-Type", &v)) {
        rc = fail(err, errlen, "feedback report without Feedback-Type");
    } else {
        copy_lower_token(v, out->feedback_type, sizeof out->feedback_type);
        if (!out->feedback_type[0])
            rc = fail(err, errlen, "feedback report with an empty Feedback-Type");
    }
    if (rc == 0) {
        if (field(g, "User-Agent", &v))
            mime_unfold(v, out->user_agent, sizeof out->user_agent);
        if (field(g, "Original-Rcpt-To", &v))
            typed_value(v, out->arf_original_rcpt, sizeof out->arf_original_rcpt);
        if (field(g, "Original-Mail-From", &v))
            typed_value(v, out->arf_original_mail_from, sizeof out->arf_original_mail_from);
        out->kind = FEEDBACK_ARF;
        returned_message(t, (size_t)k, out);
    }
    buf_free(&b);
    return rc;
}

static int parse_report(const struct mime_tree *t, struct feedback *out, char *err,
                        size_t errlen)
{
    struct sv ct;
    char rtype[64] = "";
    if (mime_header_get(t->part[0].head, "Content-Type", &ct))
        mime_param(ct, "report-type", rtype, sizeof rtype);
    for (char *c = rtype; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (!t->part[0].multipart || t->nparts < 2)
        return fail(err, errlen, "multipart/report without parts");
    if (strcmp(rtype, "delivery-status") == 0 || strcmp(rtype, "global-delivery-status") == 0)
        return parse_dsn(t, out, err, errlen);
    if (strcmp(rtype, "feedback-report") == 0)
        return parse_arf(t, out, err, errlen);
    if (rtype[0])
        return 0; /* another kind of report (disposition-notification, tlsrpt ...) */
    if (find_part(t, "message/delivery-status", "message/global-delivery-status") > 0)
        return parse_dsn(t, out, err, errlen);
    if (find_part(t, "message/feedback-report", NULL) > 0)
        return parse_arf(t, out, err, errlen);
    return fail(err, errlen, "multipart/report without report-type");
}

/* ---- plain-text bounces ----------------------------------------------- */

static bool from_mailer_daemon(struct sv head)
{
    struct sv v;
    struct mail_address_list l;
    char e[64];
    if (!mime_header_get(head, "From", &v) ||
        mail_address_list_parse(v.p, v.len, &l, e, sizeof e) != 0 || l.count != 1)
        return false;
    return strcasecmp(l.box[0].local, "mailer-daemon") == 0 ||
           strcasecmp(l.box[0].local, "postmaster") == 0;
}

static bool null_sender(struct sv head, const char *mail_from)
{
    if (mail_from)
        return mail_from[0] == '\0';
    struct sv v;
    if (!mime_header_get(head, "Return-Path", &v))
        return true; /* unknown: From MAILER-DAEMON is all there is */
    char tmp[16];
    size_t n = mime_unfold(v, tmp, sizeof tmp), k = 0;
    for (size_t i = 0; i < n; i++)
        if (tmp[i] != ' ')
            tmp[k++] = tmp[i];
    tmp[k] = '\0';
    return strcmp(tmp, "<>") == 0;
}

/* A basic reply code "[45]dd" at the start of the (trimmed) line or after
 * ": ", followed by a space or '-': its offset, or len when there is none. */
static size_t basic_code(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++) {
        bool start = blank(s, 0, i) || (i >= 2 && s[i - 1] == ' ' && s[i - 2] == ':');
        if (start && (s[i] == '4' || s[i] == '5') && isdigit((unsigned char)s[i + 1]) &&
            isdigit((unsigned char)s[i + 2]) && (s[i + 3] == ' ' || s[i + 3] == '-'))
            return i;
    }
    return n;
}

/* An address in s[0..n): the first <local@domain>, else the first bare
 * word with an '@'; it must parse as one mailbox. */
static bool address_in(const char *s, size_t n, char *out, size_t outlen)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            size_t a, b;
            if (pass == 0) {
                if (s[i] != '<')
                    continue;
                const char *gt = memchr(s + i, '>', n - i);
                if (!gt)
                    break;
                a = i + 1;
                b = (size_t)(gt - s);
            } else {
                if (s[i] != '@' || i == 0)
                    continue;
                a = i;
                while (a > 0 && !strchr(" \t<(\"'", s[a - 1]))
                    a--;
                b = i;
                while (b < n && !strchr(" \t>)\"',;", s[b]))
                    b++;
                while (b > i && strchr(".:", s[b - 1]))
                    b--;
            }
            if (b <= a || !memchr(s + a, '@', b - a) || b - a + 1 > outlen)
                continue;
            struct mail_address_list l;
            char e[64];
            if (mail_address_list_parse(s + a, b - a, &l, e, sizeof e) != 0 || l.count != 1)
                continue;
            int w = snprintf(out, outlen, "%.*s@%.*s", SMTP_MAX_LOCALPART_LEN * 4,
                             l.box[0].local, SMTP_MAX_DOMAIN_LEN, l.box[0].domain);
            if (w < 0 || (size_t)w >= outlen)
                continue;
            return true;
        }
    return false;
}

/* The text of a plain bounce: the message body when it is text, else the
 * first text/plain part. */
static int bounce_text(const struct mime_tree *t, struct buf *b)
{
    for (size_t k = 0; k < t->nparts; k++) {
        const struct mime_part *p = &t->part[k];
        if (p->multipart || strncmp(p->type, "text/", 5) != 0 ||
            (k > 0 && strcmp(p->type, "text/plain") != 0))
            continue;
        if (mime_decode_body(p, b) != 0 && b->len == 0)
            return -1;
        return 0;
    }
    return -1;
}

static void text_bounce(const struct mime_tree *t, const char *mail_from, struct feedback *out)
{
    struct sv head = t->part[0].head;
    if (!from_mailer_daemon(head) || !null_sender(head, mail_from))
        return;
    struct buf b;
    buf_init(&b, FEEDBACK_MAX_PART_SIZE);
    if (bounce_text(t, &b) != 0 || memchr(buf_cstr(&b), '\0', b.len)) {
        buf_free(&b);
        return;
    }
    const char *s = buf_cstr(&b);
    size_t n = b.len;
    /* the first line with an enhanced status code, else with a basic code */
    size_t starts[TEXT_BOUNCE_LOOKBACK] = { 0 };
    size_t nstarts = 0, hit = n, hit_end = n;
    char status[16] = "";
    for (int pass = 0; pass < 2 && hit == n; pass++) {
        nstarts = 0;
        for (size_t i = 0, ce; i < n;) {
            size_t next = next_line(s, n, i, &ce);
            bool found = pass == 0 ? find_status(s + i, ce - i, "45", status)
                                   : basic_code(s + i, ce - i) < ce - i;
            if (found) {
                hit = i;
                hit_end = ce;
                if (pass == 1) {
                    size_t c = i + basic_code(s + i, ce - i);
                    snprintf(status, sizeof status, "%c.0.0", s[c]);
                }
                break;
            }
            /* the last lines before the hit, oldest first */
            if (nstarts == TEXT_BOUNCE_LOOKBACK) {
                memmove(starts, starts + 1, (TEXT_BOUNCE_LOOKBACK - 1) * sizeof starts[0]);
                nstarts--;
            }
            starts[nstarts++] = i;
            i = next;
        }
    }
    if (hit == n) {
        buf_free(&b);
        return;
    }
    struct dsn_recipient *r = &out->rcpts[0];
    memset(r, 0, sizeof *r);
    mime_unfold(sv_make(s + hit, hit_end - hit), r->diagnostic, sizeof r->diagnostic);
    snprintf(r->status, sizeof r->status, "%s", status);
    snprintf(r->action, sizeof r->action, "%s", status[0] == '5' ? "failed" : "delayed");
    if (!address_in(s + hit, hit_end - hit, r->final_recipient, sizeof r->final_recipient))
        for (size_t k = nstarts; k-- > 0;) {
            size_t ce;
            next_line(s, n, starts[k], &ce);
            if (address_in(s + starts[k], ce - starts[k], r->final_recipient,
                           sizeof r->final_recipient))
                break;
        }
    out->nrcpts = 1;
    out->kind = FEEDBACK_DSN;
    out->heuristic = true;
    /* the returned message: attached, or copied into the text after the status */
    returned_message(t, 0, out);
    for (size_t i = hit_end, ce; i < n && !out->original_message_id[0];) {
        size_t next = next_line(s, n, i, &ce);
        struct sv line = sv_trim(sv_make(s + i, ce - i));
        if (sv_has_prefix_ci(line, "Message-ID:"))
            mime_unfold(sv_sub(line, 11, line.len), out->original_message_id,
                        sizeof out->original_message_id);
        i = next;
    }
    buf_free(&b);
}

/* ---- auto-replies (RFC 3834) ------------------------------------------ */

static bool header_token_is(struct sv head, const char *name, const char *const *values)
{
    size_t pos = 0;
    struct sv n, v;
    while (mime_header_next(head, &pos, &n, &v)) {
        if (!sv_eq_ci_cstr(n, name))
            continue;
        char tok[32];
        copy_lower_token(v, tok, sizeof tok);
        for (size_t k = 0; values[k]; k++)
            if (strcmp(tok, values[k]) == 0)
                return true;
    }
    return false;
}

static bool vacation_subject(struct sv head)
{
    static const char *const prefixes[] = {
        "auto:", "automatic reply", "auto-reply", "autoreply", "auto reply",
        "out of office", "out of the office", "vacation", "away from",
        "abwesenheitsnotiz", "automatische antwort", "réponse automatique",
        "respuesta automática", "risposta automatica", NULL,
    };
    struct sv v;
    if (!mime_header_get(head, "Subject", &v))
        return false;
    char subj[128];
    size_t n = mime_unfold(v, subj, sizeof subj);
    for (size_t k = 0; prefixes[k]; k++)
        if (sv_has_prefix_ci(sv_make(subj, n), prefixes[k]))
            return true;
    return false;
}

static bool autoreply(struct sv head)
{
    static const char *const replied[] = { "auto-replied", NULL };
    static const char *const generated[] = { "auto-generated", "auto-notified", NULL };
    static const char *const prec_reply[] = { "auto_reply", "auto-reply", NULL };
    static const char *const prec_bulk[] = { "bulk", "junk", NULL };
    static const char *const no[] = { "no", "false", "0", NULL };
    struct sv v;
    /* strong: said by the responder itself */
    if (header_token_is(head, "Auto-Submitted", replied) ||
        header_token_is(head, "Precedence", prec_reply) ||
        header_token_is(head, "X-Precedence", prec_reply))
        return true;
    if ((mime_header_get(head, "X-Autoreply", &v) &&
         !header_token_is(head, "X-Autoreply", no)) ||
        (mime_header_get(head, "X-Autorespond", &v) &&
         !header_token_is(head, "X-Autorespond", no)))
        return true;
    /* weak: automated, and the subject of a vacation notice */
    bool automated = header_token_is(head, "Auto-Submitted", generated) ||
                     header_token_is(head, "Precedence", prec_bulk) ||
                     mime_header_get(head, "X-Auto-Response-Suppress", &v);
    return automated && vacation_subject(head);
}

/* ---- entry points ----------------------------------------------------- */

int feedback_parse_envelope(const char *msg, size_t len, const char *mail_from,
                            struct feedback *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    struct mime_tree *t = calloc(1, sizeof *t);
    if (!t)
        return fail(err, errlen, "out of memory");
    int rc = 0;
    if (mime_parse(msg, len, t, err, errlen) != 0) {
        rc = -1;
    } else if (strcmp(t->part[0].type, "multipart/report") == 0) {
        rc = parse_report(t, out, err, errlen);
    } else {
        text_bounce(t, mail_from, out);
        if (out->kind == FEEDBACK_NONE && autoreply(t->part[0].head))
            out->kind = FEEDBACK_AUTOREPLY;
    }
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        out->kind = FEEDBACK_NONE;
    }
    free(t);
    return rc;
}

int feedback_parse(const char *msg, size_t len, struct feedback *out, char *err, size_t errlen)
{
    return feedback_parse_envelope(msg, len, NULL, out, err, errlen);
}
