/* SMTP session transcripts: client input in, exact replies out, through a
 * session with recording hooks (the auth and data hooks answer at once or
 * later, to exercise waiting). Every transcript runs three ways: each step
 * fed as one chunk, one byte at a time, and split at random points; the
 * replies must be identical. Covers every command and refusal, EHLO in each
 * mode, pipelining, STARTTLS injection, SMTP smuggling variants,
 * dot-unstuffing, size/recipient/error/nomail limits, timeouts, shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_session.h"

#define HOST "mx.example.test"
#define GREET "220 " HOST " ESMTP sesame\r\n"
#define EHLO_HEAD "250-" HOST "\r\n250-SIZE %s\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
                  "250-SMTPUTF8\r\n"
#define EHLO_MX_TLS "250-" HOST "\r\n250-SIZE 10485760\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
                    "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
#define EHLO_MX_PLAIN "250-" HOST "\r\n250-SIZE 10485760\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
                      "250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_SUB_BOTH "250-" HOST "\r\n250-SIZE 10485760\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
                      "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n" \
                      "250 AUTH PLAIN LOGIN\r\n"
#define EHLO_SUB_AUTH "250-" HOST "\r\n250-SIZE 10485760\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
                      "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n"
#define MAIL_OK "250 2.1.0 Ok\r\n"
#define RCPT_OK "250 2.1.5 Ok\r\n"
#define DATA_GO "354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED "250 2.0.0 Ok: queued\r\n"
#define OK "250 2.0.0 Ok\r\n"
#define BYE "221 2.0.0 Bye\r\n"
#define SMUGGLED "550 5.5.2 Error: bare LF/CR is not allowed (RFC 5321 section 2.3.8)\r\n"
#define TOO_BIG "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n"
#define NEED_HELO "503 5.5.1 Error: send HELO/EHLO first\r\n"
#define NEED_MAIL "503 5.5.1 Error: need MAIL command\r\n"
#define TLS_GO "220 2.0.0 Ready to start TLS\r\n"
#define AUTH_OK "235 2.7.0 Authentication successful\r\n"
#define AUTH_BAD "535 5.7.8 Authentication credentials invalid\r\n"
#define PLAIN_GOOD "AGFsaWNlAHNlY3JldA=="   /* \0alice\0secret */
#define PLAIN_WRONG "AGFsaWNlAHdyb25n"      /* \0alice\0wrong */
#define USER_B64 "YWxpY2U="                 /* alice */
#define PASS_B64 "c2VjcmV0"                 /* secret */

static const char NO_MSG[] = "(no message)";

struct step {
    const char *send;     /* client bytes, or an "@ACTION" */
    const char *expect;   /* exact output during this step */
    const char *msg;      /* message the data hook must get in this step;
                             NO_MSG: no call; NULL: not checked */
    size_t sendlen;       /* 0: strlen(send) */
};

enum answer { NOW, LATER };

struct transcript {
    const char *name;
    struct smtp_session_params p;
    enum answer auth, data;
    const struct step *steps;
};

enum feed_mode { FEED_CHUNK, FEED_BYTE, FEED_RANDOM };

struct rec {
    struct smtp_session *s;
    enum answer auth_mode, data_mode;
    char *out;
    size_t outlen, outcap;
    bool closed;
    int starttls;
    bool auth_pending, auth_ok;
    char user[300];
    int data_calls;
    bool data_pending;
    char *msg;
    size_t msglen;
    char from[300];
    size_t nrcpt;
    char *in;
    size_t inlen, incap;
    unsigned seed;
};

/* Checks that out is a sequence of well-formed replies: "ddd-..." lines
 * followed by a "ddd ..." line with the same code, all CRLF-ended, printable
 * ASCII. Returns false with a reason. */
static bool replies_well_formed(const char *out, size_t len, char *why, size_t whylen)
{
    size_t i = 0;
    char code[4] = "";
    bool in_multi = false;
    while (i < len) {
        const char *lf = memchr(out + i, '\n', len - i);
        if (!lf) {
            snprintf(why, whylen, "unterminated line at %zu", i);
            return false;
        }
        size_t n = (size_t)(lf - (out + i)) + 1;
        const char *l = out + i;
        if (n < 6 || l[n - 2] != '\r') {
            snprintf(why, whylen, "short or bare-LF line at %zu", i);
            return false;
        }
        for (int k = 0; k < 3; k++)
            if (l[k] < '0' || l[k] > '9') {
                snprintf(why, whylen, "bad code at %zu", i);
                return false;
            }
        if (l[0] < '2' || l[0] > '5' || (l[3] != ' ' && l[3] != '-')) {
            snprintf(why, whylen, "bad code/separator at %zu", i);
            return false;
        }
        if (in_multi && memcmp(code, l, 3) != 0) {
            snprintf(why, whylen, "code changes inside a multi-line reply at %zu", i);
            return false;
        }
        for (size_t k = 4; k < n - 2; k++)
            if ((unsigned char)l[k] < 0x20 || (unsigned char)l[k] >= 0x7f) {
                snprintf(why, whylen, "non-printable octet at %zu", i + k);
                return false;
            }
        memcpy(code, l, 3);
        in_multi = l[3] == '-';
        i += n;
    }
    if (in_multi) {
        snprintf(why, whylen, "multi-line reply not finished");
        return false;
    }
    return true;
}

/* ---- hooks ---- */

static void h_write(void *arg, const char *data, size_t len)
{
    struct rec *r = arg;
    if (r->closed)
        fail_msg("write after close: %.*s", (int)len, data);
    if (r->outlen + len + 1 > r->outcap) {
        r->outcap = (r->outlen + len + 1) * 2;
        r->out = realloc(r->out, r->outcap);
        assert_non_null(r->out);
    }
    memcpy(r->out + r->outlen, data, len);
    r->outlen += len;
    r->out[r->outlen] = '\0';
}

static void h_starttls(void *arg)
{
    struct rec *r = arg;
    r->starttls++;
}

static bool h_check_helo(void *arg, const struct smtp_envelope *env, struct smtp_reply *rep)
{
    (void)arg;
    if (strcmp(env->helo, "evil.test") == 0) {
        smtp_reply_set(rep, 550, "5.7.1", "HELO %s rejected", env->helo);
        return false;
    }
    return true;
}

static bool h_check_mail(void *arg, const struct smtp_envelope *env, struct smtp_reply *rep)
{
    (void)arg;
    if (strncmp(env->mail_from, "spammer@", 8) == 0) {
        smtp_reply_set(rep, 550, "5.7.1", "<%s>: Sender address rejected", env->mail_from);
        return false;
    }
    if (strncmp(env->mail_from, "bye@", 4) == 0) {
        smtp_reply_set(rep, 421, "4.7.0", HOST " go away");
        rep->close = true;
        return false;
    }
    return true;
}

static bool h_check_rcpt(void *arg, const struct smtp_envelope *env, const char *rcpt,
                         struct smtp_reply *rep)
{
    (void)arg;
    (void)env;
    if (strncmp(rcpt, "unknown", 7) == 0) {
        smtp_reply_set(rep, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown", rcpt);
        return false;
    }
    return true;
}

static void h_auth(void *arg, const char *user, const char *pass)
{
    struct rec *r = arg;
    snprintf(r->user, sizeof r->user, "%s", user);
    bool ok = strcmp(user, "alice") == 0 && strcmp(pass, "secret") == 0;
    if (r->auth_mode == NOW) {
        smtp_session_auth_done(r->s, ok, NULL);
        return;
    }
    r->auth_pending = true;
    r->auth_ok = ok;
}

static void h_data(void *arg, const struct smtp_envelope *env, char *msg, size_t len)
{
    struct rec *r = arg;
    r->data_calls++;
    free(r->msg);
    r->msg = msg;
    r->msglen = len;
    snprintf(r->from, sizeof r->from, "%s", env->mail_from);
    r->nrcpt = env->nrcpt;
    if (r->data_mode == NOW) {
        struct smtp_reply rep;
        smtp_reply_set(&rep, 250, "2.0.0", "Ok: queued");
        smtp_session_data_done(r->s, &rep);
        return;
    }
    r->data_pending = true;
}

static void h_close(void *arg)
{
    struct rec *r = arg;
    assert_false(r->closed);
    r->closed = true;
}

/* ---- the transport, as service/smtp_conn.c does it ---- */

static void pump(struct rec *r)
{
    while (r->inlen && !smtp_session_closed(r->s) && !smtp_session_waiting(r->s)) {
        size_t n = smtp_session_feed(r->s, r->in, r->inlen);
        assert_true(n <= r->inlen);
        memmove(r->in, r->in + n, r->inlen - n);
        r->inlen -= n;
        if (n == 0)
            break;
    }
}

static void deliver(struct rec *r, const char *p, size_t len, enum feed_mode mode)
{
    size_t i = 0;
    while (i < len) {
        size_t n = len - i;
        if (mode == FEED_BYTE)
            n = 1;
        else if (mode == FEED_RANDOM) {
            size_t k = (size_t)(rand_r(&r->seed) % 23) + 1;
            if (k < n)
                n = k;
        }
        if (r->inlen + n > r->incap) {
            r->incap = (r->inlen + n) * 2;
            r->in = realloc(r->in, r->incap);
            assert_non_null(r->in);
        }
        memcpy(r->in + r->inlen, p + i, n);
        r->inlen += n;
        i += n;
        pump(r);
    }
}

static struct rec *rec_new(const struct smtp_session_params *p, enum answer auth,
                           enum answer data, unsigned seed)
{
    struct rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->auth_mode = auth;
    r->data_mode = data;
    r->seed = seed;
    struct smtp_hooks h = {
        .arg = r, .write = h_write, .starttls = h_starttls, .check_helo = h_check_helo,
        .check_mail = h_check_mail, .check_rcpt = h_check_rcpt, .auth = h_auth,
        .data = h_data, .close = h_close,
    };
    r->s = smtp_session_new(p, &h);
    assert_non_null(r->s);
    return r;
}

static void rec_free(struct rec *r)
{
    smtp_session_free(r->s);
    free(r->out);
    free(r->in);
    free(r->msg);
    free(r);
}

static void show(const char *what, const char *s, size_t len)
{
    fprintf(stderr, "%s (%zu):\n", what, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n\n", stderr);
        else if (c == '\r')
            fputs("\\r", stderr);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fputc('\n', stderr);
}

static void run_steps(const char *name, const struct smtp_session_params *p, enum answer auth,
                      enum answer data, const struct step *steps, enum feed_mode mode,
                      unsigned seed)
{
    static const char *const mode_name[] = { "chunk", "byte", "random" };
    struct rec *r = rec_new(p, auth, data, seed);
    smtp_session_start(r->s);
    for (size_t i = 0; steps[i].send; i++) {
        const struct step *st = &steps[i];
        if (i > 0)
            r->outlen = 0;
        int calls = r->data_calls;
        const char *a = st->send;
        if (strcmp(a, "@START") == 0) {
            /* the greeting, already written */
        } else if (strcmp(a, "@TLS") == 0) {
            assert_true(r->starttls > 0);
            smtp_session_tls_started(r->s);
            pump(r);
        } else if (strcmp(a, "@AUTH") == 0) {
            assert_true(r->auth_pending);
            r->auth_pending = false;
            smtp_session_auth_done(r->s, r->auth_ok, NULL);
            pump(r);
        } else if (strcmp(a, "@DATA") == 0 || strcmp(a, "@DATA_REJECT") == 0) {
            assert_true(r->data_pending);
            r->data_pending = false;
            struct smtp_reply rep;
            if (a[5])
                smtp_reply_set(&rep, 550, "5.7.1", "Message rejected by DMARC policy");
            else
                smtp_reply_set(&rep, 250, "2.0.0", "Ok: queued");
            smtp_session_data_done(r->s, &rep);
            pump(r);
        } else if (strcmp(a, "@TIMEOUT") == 0) {
            smtp_session_timeout(r->s);
        } else if (strcmp(a, "@SHUTDOWN") == 0) {
            smtp_session_shutdown(r->s);
        } else if (strcmp(a, "@CLOSED") == 0) {
            if (!smtp_session_closed(r->s) || !r->closed)
                fail_msg("%s/%s step %zu: not closed", name, mode_name[mode], i);
        } else if (strcmp(a, "@OPEN") == 0) {
            if (smtp_session_closed(r->s) || r->closed)
                fail_msg("%s/%s step %zu: closed", name, mode_name[mode], i);
        } else if (strcmp(a, "@WAITING") == 0) {
            assert_true(smtp_session_waiting(r->s));
        } else {
            deliver(r, a, st->sendlen ? st->sendlen : strlen(a), mode);
        }
        size_t elen = strlen(st->expect);
        if (r->outlen != elen || memcmp(r->out ? r->out : "", st->expect, elen) != 0) {
            fprintf(stderr, "transcript %s, %s feeding, step %zu\n", name, mode_name[mode], i);
            show("sent", a, st->sendlen ? st->sendlen : strlen(a));
            show("expected", st->expect, elen);
            show("got", r->out ? r->out : "", r->outlen);
            fail_msg("transcript %s differs", name);
        }
        char why[128];
        if (!replies_well_formed(r->out ? r->out : "", r->outlen, why, sizeof why))
            fail_msg("%s step %zu: malformed replies: %s", name, i, why);
        if (st->msg == NO_MSG) {
            if (r->data_calls != calls)
                fail_msg("%s/%s step %zu: a message was delivered", name, mode_name[mode], i);
        } else if (st->msg) {
            if (r->data_calls != calls + 1)
                fail_msg("%s/%s step %zu: %d messages delivered, want 1", name, mode_name[mode],
                         i, r->data_calls - calls);
            if (r->msglen != strlen(st->msg) || memcmp(r->msg, st->msg, r->msglen) != 0) {
                show("message expected", st->msg, strlen(st->msg));
                show("message got", r->msg, r->msglen);
                fail_msg("%s/%s step %zu: message differs", name, mode_name[mode], i);
            }
        }
    }
    rec_free(r);
}

static void run(const struct transcript *t)
{
    run_steps(t->name, &t->p, t->auth, t->data, t->steps, FEED_CHUNK, 0);
    run_steps(t->name, &t->p, t->auth, t->data, t->steps, FEED_BYTE, 0);
    for (unsigned seed = 1; seed <= 5; seed++)
        run_steps(t->name, &t->p, t->auth, t->data, t->steps, FEED_RANDOM, seed);
}

#define P_MX { .hostname = HOST, .tls_available = true, .max_message_size = 10485760, \
               .max_errors = 100 }
#define P_MX_NOTLS { .hostname = HOST, .max_message_size = 10485760, .max_errors = 100 }
#define P_SUB_LOCAL { .hostname = HOST, .submission = true, .offer_auth = true, \
                      .tls_available = true, .max_message_size = 10485760, .max_errors = 100 }
#define P_SUB_REMOTE { .hostname = HOST, .submission = true, .offer_auth = true, \
                       .auth_needs_tls = true, .tls_available = true, \
                       .max_message_size = 10485760, .max_errors = 100 }

/* ---- transcripts ---- */

static void mx_transaction(void **state)
{
    static const struct step steps[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO client.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "MAIL FROM:<alice@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<bob@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "RCPT TO:<carol@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NO_MSG, 0 },
        { "Subject: hi\r\n\r\nHello.\r\n.\r\n", QUEUED, "Subject: hi\r\n\r\nHello.\r\n", 0 },
        /* the transaction is over, HELO stays */
        { "RCPT TO:<bob@example.test>\r\n", NEED_MAIL, NULL, 0 },
        { "MAIL FROM:<>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<bob@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { ".\r\n", QUEUED, "", 0 },   /* an empty message */
        { "QUIT\r\n", BYE, NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { "NOOP\r\n", "", NULL, 0 },   /* nothing after close */
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "mx_transaction", P_MX, NOW, NOW, steps };
    run(&t);
}

static void helo_no_extensions(void **state)
{
    static const struct step steps[] = {
        { "@START", GREET, NULL, 0 },
        { "HELO client.example.net\r\n", "250 " HOST "\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net> SIZE=10\r\n",
          "555 5.5.4 Error: parameter of an extension not offered\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net> BODY=8BITMIME\r\n",
          "555 5.5.4 Error: parameter of an extension not offered\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RSET\r\n", OK, NULL, 0 },
        /* AUTH needs EHLO */
        { "AUTH PLAIN " PLAIN_GOOD "\r\n", "503 5.5.1 Error: send EHLO first\r\n", NULL, 0 },
        { "EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname\r\n", NULL, 0 },
        { "HELO\r\n", "501 5.5.4 Syntax: HELO hostname\r\n", NULL, 0 },
        { "HELO   \r\n", "501 5.5.4 Syntax: HELO hostname\r\n", NULL, 0 },
        { "HELO evil.test\r\n", "550 5.7.1 HELO evil.test rejected\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", NEED_HELO, NULL, 0 },
        { "helo [192.0.2.1]\r\n", "250 " HOST "\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "helo_no_extensions", P_MX, NOW, NOW, steps };
    run(&t);
}

static void sequence_errors(void **state)
{
    static const struct step steps[] = {
        { "@START", GREET, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", NEED_HELO, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", NEED_HELO, NULL, 0 },
        { "DATA\r\n", NEED_HELO, NULL, 0 },
        { "EHLO client.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", NEED_MAIL, NULL, 0 },
        { "DATA\r\n", NEED_MAIL, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", "503 5.5.1 Error: nested MAIL command\r\n", NULL, 0 },
        { "DATA\r\n", "503 5.5.1 Error: need RCPT command\r\n", NULL, 0 },
        { "RCPT TO:<unknown1@example.test>\r\n",
          "550 5.1.1 <unknown1@example.test>: Recipient address rejected: User unknown\r\n",
          NULL, 0 },
        { "RCPT TO:<unknown2@example.test>\r\n",
          "550 5.1.1 <unknown2@example.test>: Recipient address rejected: User unknown\r\n",
          NULL, 0 },
        { "DATA\r\n", "554 5.5.1 Error: no valid recipients\r\n", NO_MSG, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", "503 5.5.1 Error: nested MAIL command\r\n", NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { "x\r\n.\r\n", QUEUED, "x\r\n", 0 },
        /* a second EHLO resets the transaction */
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "EHLO again.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "DATA\r\n", NEED_MAIL, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", NEED_MAIL, NULL, 0 },
        /* and RSET too */
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RSET\r\n", OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", NEED_MAIL, NULL, 0 },
        /* a refused sender leaves no transaction */
        { "MAIL FROM:<spammer@example.net>\r\n",
          "550 5.7.1 <spammer@example.net>: Sender address rejected\r\n", NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", NEED_MAIL, NULL, 0 },
        /* a policy refusal may close */
        { "MAIL FROM:<bye@example.net>\r\n", "421 4.7.0 " HOST " go away\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "sequence_errors", P_MX, NOW, NOW, steps };
    run(&t);
}

static void other_commands(void **state)
{
    static const struct step steps[] = {
        { "@START", GREET, NULL, 0 },
        { "NOOP\r\n", OK, NULL, 0 },
        { "noop whatever you like\r\n", OK, NULL, 0 },
        { "RSET\r\n", OK, NULL, 0 },
        { "VRFY bob\r\n",
          "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n", NULL, 0 },
        { "VRFY\r\n", "501 5.5.4 Syntax: VRFY address\r\n", NULL, 0 },
        { "EXPN staff\r\n", "502 5.5.1 Error: EXPN not supported\r\n", NULL, 0 },
        { "HELP\r\n",
          "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH\r\n",
          NULL, 0 },
        { "BDAT 100 LAST\r\n", "502 5.5.1 Error: CHUNKING not supported\r\n", NULL, 0 },
        { "ETRN example.test\r\n", "502 5.5.1 Error: command not implemented\r\n", NULL, 0 },
        { "XYZZY\r\n", "500 5.5.2 Error: command not recognized\r\n", NULL, 0 },
        { "MAILFROM:<a@b.test>\r\n", "500 5.5.2 Error: command not recognized\r\n", NULL, 0 },
        { "\r\n", "500 5.5.2 Error: bad syntax\r\n", NULL, 0 },
        { " NOOP\r\n", "500 5.5.2 Error: bad syntax\r\n", NULL, 0 },
        { "NOOP\0x\r\n", "500 5.5.2 Error: NUL character in command\r\n", NULL, 8 },
        { "NOOP\tx\r\n", "500 5.5.2 Error: control character in command\r\n", NULL, 0 },
        { "NOOP\rx\r\n", "500 5.5.2 Error: control character in command\r\n", NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "DATA now\r\n", NEED_MAIL, NULL, 0 },   /* the sequence is checked first */
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA now\r\n", "501 5.5.4 Syntax: DATA\r\n", NULL, 0 },
        { "RSET all\r\n", "501 5.5.4 Syntax: RSET\r\n", NULL, 0 },
        { "STARTTLS please\r\n", "501 5.5.4 Syntax: STARTTLS\r\n", NULL, 0 },
        { "QUIT now\r\n", "501 5.5.4 Syntax: QUIT\r\n", NULL, 0 },
        /* commands end at LF too (CR optional), and are case-insensitive */
        { "noop\n", OK, NULL, 0 },
        { "qUiT\r\n", BYE, NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "other_commands", P_MX, NOW, NOW, steps };
    run(&t);
}

static void non_smtp(void **state)
{
    static const struct step get[] = {
        { "@START", GREET, NULL, 0 },
        { "GET / HTTP/1.1\r\nHost: mx.example.test\r\n\r\n",
          "421 4.7.0 " HOST " Error: non-SMTP command, closing connection\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t1 = { "non_smtp_get", P_MX, NOW, NOW, get };
    run(&t1);
    static const struct step post[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "POST /x HTTP/1.0\r\nMAIL FROM:<a@b.test>\r\n",
          "421 4.7.0 " HOST " Error: non-SMTP command, closing connection\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t2 = { "non_smtp_post", P_MX, NOW, NOW, post };
    run(&t2);
    static const char *const verbs[] = { "CONNECT mx:25 HTTP/1.1", "HEAD / HTTP/1.0", "PUT /",
                                         "USER bob" };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s\r\nNOOP\r\n", verbs[i]);
        struct step s[] = {
            { "@START", GREET, NULL, 0 },
            { line, "421 4.7.0 " HOST " Error: non-SMTP command, closing connection\r\n", NULL, 0 },
            { "@CLOSED", "", NULL, 0 },
            { NULL, NULL, NULL, 0 },
        };
        struct transcript t = { verbs[i], P_MX, NOW, NOW, s };
        run(&t);
    }
}

static void ehlo_modes(void **state)
{
    static const struct step mx_notls[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_PLAIN, NULL, 0 },
        { "STARTTLS\r\n", "502 5.5.1 Error: STARTTLS not available\r\n", NULL, 0 },
        { "AUTH PLAIN " PLAIN_GOOD "\r\n", "503 5.5.1 Error: authentication not enabled\r\n",
          NULL, 0 },
        { "MAIL FROM:<a@b.test> AUTH=<>\r\n",
          "555 5.5.4 Error: parameter of an extension not offered\r\n", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t1 = { "ehlo_mx_notls", P_MX_NOTLS, NOW, NOW, mx_notls };
    run(&t1);

    /* submission on loopback: AUTH offered before TLS */
    static const struct step sub_local[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { "MAIL FROM:<alice@example.test>\r\n", "530 5.7.0 Authentication required\r\n", NULL, 0 },
        { "AUTH PLAIN " PLAIN_GOOD "\r\n", AUTH_OK, NULL, 0 },
        { "MAIL FROM:<alice@example.test> AUTH=<>\r\n", MAIL_OK, NULL, 0 },
        { "AUTH PLAIN " PLAIN_GOOD "\r\n", "503 5.5.1 Error: already authenticated\r\n", NULL, 0 },
        { "RCPT TO:<bob@example.net>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { "Subject: s\r\n\r\nb\r\n.\r\n", QUEUED, "Subject: s\r\n\r\nb\r\n", 0 },
        /* AUTH survives the transaction and a new EHLO */
        { "EHLO c.example.net\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { "MAIL FROM:<alice@example.test>\r\n", MAIL_OK, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t2 = { "ehlo_sub_local", P_SUB_LOCAL, NOW, NOW, sub_local };
    run(&t2);

    /* submission from elsewhere: AUTH only after STARTTLS */
    static const struct step sub_remote[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "AUTH PLAIN " PLAIN_GOOD "\r\n",
          "538 5.7.11 Encryption required for requested authentication mechanism\r\n", NULL, 0 },
        { "MAIL FROM:<alice@example.test>\r\n", "530 5.7.0 Must issue a STARTTLS command first\r\n",
          NULL, 0 },
        { "STARTTLS\r\n", TLS_GO, NULL, 0 },
        { "@TLS", "", NULL, 0 },
        { "MAIL FROM:<alice@example.test>\r\n", NEED_HELO, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_SUB_AUTH, NULL, 0 },
        { "STARTTLS\r\n", "503 5.5.1 Error: TLS already active\r\n", NULL, 0 },
        { "MAIL FROM:<alice@example.test>\r\n", "530 5.7.0 Authentication required\r\n", NULL, 0 },
        { "AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", NULL, 0 },
        { USER_B64 "\r\n", "334 UGFzc3dvcmQ6\r\n", NULL, 0 },
        { PASS_B64 "\r\n", AUTH_OK, NULL, 0 },
        { "MAIL FROM:<alice@example.test>\r\n", MAIL_OK, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t3 = { "ehlo_sub_remote", P_SUB_REMOTE, NOW, NOW, sub_remote };
    run(&t3);

    /* no certificate: nothing to offer on a remote submission connection */
    static const struct step sub_notls[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_PLAIN, NULL, 0 },
        { "STARTTLS\r\n", "502 5.5.1 Error: STARTTLS not available\r\n", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t4 = { "ehlo_sub_notls",
                             { .hostname = HOST, .submission = true, .offer_auth = true,
                               .auth_needs_tls = true, .max_message_size = 10485760 },
                             NOW, NOW, sub_notls };
    run(&t4);

    /* SIZE shows the configured limit; 0 means the default */
    char ehlo_default[512];
    char size[32];
    snprintf(size, sizeof size, "%d", SMTP_DEFAULT_MAX_MESSAGE_SIZE);
    snprintf(ehlo_default, sizeof ehlo_default, EHLO_HEAD "250 ENHANCEDSTATUSCODES\r\n", size);
    struct step def[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", ehlo_default, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t5 = { "ehlo_default_size", { .hostname = HOST }, NOW, NOW, def };
    run(&t5);
}

static void starttls(void **state)
{
    /* CVE-2011-0411: commands pipelined after STARTTLS in the clear are
     * dropped, never run after the handshake */
    static const struct step inject[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "STARTTLS\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.test>\r\n",
          TLS_GO, NULL, 0 },
        { "@TLS", "", NULL, 0 },
        { "RCPT TO:<victim@example.test>\r\n", NEED_HELO, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_PLAIN, NULL, 0 },
        { "RCPT TO:<victim@example.test>\r\n", NEED_MAIL, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t1 = { "starttls_inject", P_MX, NOW, NOW, inject };
    run(&t1);

    static const struct step before_ehlo[] = {
        { "@START", GREET, NULL, 0 },
        { "STARTTLS\r\n", TLS_GO, NULL, 0 },
        { "@TLS", "", NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_PLAIN, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t2 = { "starttls_before_ehlo", P_MX, NOW, NOW, before_ehlo };
    run(&t2);

    static const struct step in_txn[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "STARTTLS\r\n", "503 5.5.1 Error: MAIL transaction in progress\r\n", NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        /* AUTH on a connection that does not offer it */
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t3 = { "starttls_in_transaction", P_MX, NOW, NOW, in_txn };
    run(&t3);

    /* the session itself drops what follows STARTTLS in the same feed and
     * says it consumed it; until the handshake, it takes nothing */
    struct smtp_session_params p = P_MX;
    struct rec *r = rec_new(&p, NOW, NOW, 0);
    smtp_session_start(r->s);
    const char *in = "EHLO x.test\r\nSTARTTLS\r\nMAIL FROM:<e@x.test>\r\nRCPT TO:<v@y.test>\r\nPART";
    assert_int_equal(smtp_session_feed(r->s, in, strlen(in)), strlen(in));
    assert_int_equal(r->starttls, 1);
    assert_non_null(strstr(r->out, TLS_GO));
    assert_null(strstr(r->out, "2.1.0"));
    r->outlen = 0;
    assert_int_equal(smtp_session_feed(r->s, "NOOP\r\n", 6), 6);
    assert_int_equal(r->outlen, 0);
    smtp_session_tls_started(r->s);
    assert_int_equal(smtp_session_feed(r->s, "NOOP\r\n", 6), 6);
    assert_string_equal(r->out, OK);
    rec_free(r);
}

static void auth(void **state)
{
    static const struct step steps[] = {
        { "@START", GREET, NULL, 0 },
        { "AUTH PLAIN " PLAIN_GOOD "\r\n", "503 5.5.1 Error: send EHLO first\r\n", NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { "AUTH\r\n", "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n", NULL, 0 },
        { "AUTH CRAM-MD5\r\n", "504 5.5.4 Unrecognized authentication type\r\n", NULL, 0 },
        { "AUTH PLAIN a b\r\n", "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n", NULL,
          0 },
        /* PLAIN with a 334 challenge, cancelled */
        { "AUTH PLAIN\r\n", "334 \r\n", NULL, 0 },
        { "*\r\n", "501 5.0.0 Authentication cancelled\r\n", NULL, 0 },
        /* bad base64 (characters, padding, length) */
        { "AUTH PLAIN\r\n", "334 \r\n", NULL, 0 },
        { "not base64!\r\n", "501 5.5.2 Error: invalid base64 data\r\n", NULL, 0 },
        { "AUTH PLAIN AGFsaWNlAHNlY3JldA\r\n", "501 5.5.2 Error: invalid base64 data\r\n", NULL,
          0 },
        { "AUTH PLAIN AGFsaWNlAHNlY3JldA=\r\n", "501 5.5.2 Error: invalid base64 data\r\n", NULL,
          0 },
        { "AUTH PLAIN ====\r\n", "501 5.5.2 Error: invalid base64 data\r\n", NULL, 0 },
        /* malformed PLAIN messages */
        { "AUTH PLAIN =\r\n", "501 5.5.2 Error: malformed AUTH PLAIN response\r\n", NULL, 0 },
        { "AUTH PLAIN AGFsaWNl\r\n", "501 5.5.2 Error: malformed AUTH PLAIN response\r\n", NULL,
          0 },
        { "AUTH PLAIN AGFsaWNlAHNlY3JldAB4\r\n",
          "501 5.5.2 Error: malformed AUTH PLAIN response\r\n", NULL, 0 },
        /* authzid other than the user */
        { "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n", AUTH_BAD, NULL, 0 },
        /* wrong password */
        { "AUTH PLAIN " PLAIN_WRONG "\r\n", AUTH_BAD, NULL, 0 },
        /* LOGIN, cancelled at each step */
        { "AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", NULL, 0 },
        { "*\r\n", "501 5.0.0 Authentication cancelled\r\n", NULL, 0 },
        { "AUTH LOGIN " USER_B64 "\r\n", "334 UGFzc3dvcmQ6\r\n", NULL, 0 },
        { "*\r\n", "501 5.0.0 Authentication cancelled\r\n", NULL, 0 },
        { "AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", NULL, 0 },
        { "\r\n", "501 5.5.2 Error: malformed AUTH LOGIN username\r\n", NULL, 0 },
        /* a transaction blocks AUTH */
        { "MAIL FROM:<a@example.test>\r\n", "530 5.7.0 Authentication required\r\n", NULL, 0 },
        /* authzid = authcid is fine */
        { "AUTH PLAIN YWxpY2UAYWxpY2UAc2VjcmV0\r\n", AUTH_OK, NULL, 0 },
        { "MAIL FROM:<a@example.test>\r\n", MAIL_OK, NULL, 0 },
        { "AUTH PLAIN " PLAIN_GOOD "\r\n", "503 5.5.1 Error: already authenticated\r\n", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "auth", P_SUB_LOCAL, NOW, NOW, steps };
    run(&t);

    /* an MX that offers AUTH to its own users (no submission rule) */
    struct transcript t2 = { "auth_in_transaction",
                             { .hostname = HOST, .offer_auth = true, .tls_available = true,
                               .auth_needs_tls = false, .max_message_size = 10485760 },
                             NOW, NOW, NULL };
    static const struct step txn2[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { "MAIL FROM:<a@example.test>\r\n", MAIL_OK, NULL, 0 },
        { "AUTH PLAIN " PLAIN_GOOD "\r\n", "503 5.5.1 Error: MAIL transaction in progress\r\n",
          NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    t2.steps = txn2;
    run(&t2);

    /* the answer comes later: pipelined commands wait for it */
    static const struct step later[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { "AUTH PLAIN " PLAIN_GOOD "\r\nMAIL FROM:<alice@example.test>\r\n"
          "RCPT TO:<b@example.net>\r\n", "", NULL, 0 },
        { "@WAITING", "", NULL, 0 },
        { "@AUTH", AUTH_OK MAIL_OK RCPT_OK, NULL, 0 },
        { "AUTH LOGIN\r\n", "503 5.5.1 Error: already authenticated\r\n", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t3 = { "auth_later", P_SUB_LOCAL, LATER, NOW, later };
    run(&t3);

    static const struct step later_fail[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { "AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", NULL, 0 },
        { USER_B64 "\r\n", "334 UGFzc3dvcmQ6\r\n", NULL, 0 },
        { "d3Jvbmc=\r\nMAIL FROM:<alice@example.test>\r\n", "", NULL, 0 },
        { "@AUTH", AUTH_BAD "530 5.7.0 Authentication required\r\n", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t4 = { "auth_later_fail", P_SUB_LOCAL, LATER, NOW, later_fail };
    run(&t4);
}

static void data_dots(void **state)
{
    static const struct step steps[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { "a\r\n..b\r\n...\r\n.c\r\n\r\n. \r\n..\r\nend\r\n.\r\n", QUEUED,
          "a\r\n.b\r\n..\r\nc\r\n\r\n \r\n.\r\nend\r\n", 0 },
        /* 8-bit and NUL octets pass through untouched */
        { "MAIL FROM:<a@example.net> BODY=8BITMIME\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { "caf\xc3\xa9\r\nx\0y\r\n.\r\n", QUEUED, NULL, 15 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "data_dots", P_MX, NOW, NOW, steps };
    run(&t);
}

/* Each smuggling variant followed by an injected transaction; none may end
 * the data or run, the whole message is refused at the real CRLF.CRLF. */
static void smuggling(void **state)
{
    static const char *const variants[] = {
        "\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\r", "\n.\r", ".\n", "\r\n.\r\r\n",
        "\r\n\r.\r\n", "\r\n.\r\n" /* the control: a real end */,
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        bool control = i == sizeof variants / sizeof variants[0] - 1;
        char body[512];
        snprintf(body, sizeof body,
                 "Subject: test\r\n\r\nbody%sMAIL FROM:<evil@example.net>\r\n"
                 "RCPT TO:<victim@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n",
                 variants[i]);
        struct step s[] = {
            { "@START", GREET, NULL, 0 },
            { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
            { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
            { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
            { "DATA\r\n", DATA_GO, NULL, 0 },
            { body, control ? QUEUED MAIL_OK RCPT_OK DATA_GO QUEUED : SMUGGLED,
              control ? NULL : NO_MSG, 0 },
            /* the transaction is gone: nothing more was accepted */
            { "RCPT TO:<b@example.test>\r\n", NEED_MAIL, NULL, 0 },
            { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
            { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
            { "DATA\r\n", DATA_GO, NULL, 0 },
            { "clean\r\n.\r\n", QUEUED, "clean\r\n", 0 },
            { NULL, NULL, NULL, 0 },
        };
        char name[64];
        snprintf(name, sizeof name, "smuggling_%zu", i);
        struct transcript t = { name, P_MX, NOW, NOW, s };
        run(&t);
    }
    /* a bare LF and no CRLF.CRLF ever: the data never ends (timeout) */
    static const struct step stuck[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { "x\n.\nQUIT\n", "", NO_MSG, 0 },
        { "@OPEN", "", NULL, 0 },
        { "@TIMEOUT", "421 4.4.2 " HOST " Error: timeout exceeded\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "smuggling_stuck", P_MX, NOW, NOW, stuck };
    run(&t);
}

static void size_limit(void **state)
{
    /* 100 octets: 98 + CRLF is the largest message (a line of 98 fits) */
    char line98[128], line99[128];
    memset(line98, 'x', 98);
    memcpy(line98 + 98, "\r\n.\r\n", 6);
    memset(line99, 'y', 99);
    memcpy(line99 + 99, "\r\n.\r\n", 6);
    char msg98[128];
    memcpy(msg98, line98, 100);
    msg98[100] = '\0';
    struct step s[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n",
          "250-" HOST "\r\n250-SIZE 100\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
          "250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net> SIZE=101\r\n", TOO_BIG, NULL, 0 },
        { "MAIL FROM:<a@example.net> SIZE=99999999999999999999\r\n", TOO_BIG, NULL, 0 },
        { "MAIL FROM:<a@example.net> SIZE=100\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { line98, QUEUED, msg98, 0 },
        /* one octet more: read to the end, then refused */
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { line99, TOO_BIG, NO_MSG, 0 },
        { "RCPT TO:<b@example.test>\r\n", NEED_MAIL, NULL, 0 },
        /* the limit counts unstuffed octets: ".x" is 1 + CRLF */
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { "..\r\n.\r\n", QUEUED, ".\r\n", 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "size_limit",
                            { .hostname = HOST, .max_message_size = 100, .max_errors = 100 },
                            NOW, NOW, s };
    run(&t);
}

static void long_lines(void **state)
{
    /* command lines: 1000 octets with CRLF is the limit */
    size_t n = SMTP_MAX_CMD_LINE_LEN;
    char *at = malloc(n + 1), *over = malloc(n + 2);
    assert_non_null(at);
    assert_non_null(over);
    memcpy(at, "NOOP ", 5);
    memset(at + 5, 'a', n - 7);
    memcpy(at + n - 2, "\r\n", 3);
    memcpy(over, "NOOP ", 5);
    memset(over + 5, 'a', n - 6);
    memcpy(over + n - 1, "\r\n", 3);
    /* a 3000-octet line that is still incomplete: refused and discarded up
     * to its end, which comes in the next step */
    char *partial = malloc(3001);
    assert_non_null(partial);
    memset(partial, 'z', 3000);
    partial[3000] = '\0';
    /* AUTH lines may be longer */
    char *authline = malloc(SMTP_MAX_AUTH_LINE_LEN + 8);
    assert_non_null(authline);
    memcpy(authline, "AUTH PLAIN ", 11);
    memset(authline + 11, 'A', 1500);
    memcpy(authline + 1511, "\r\n", 3);
    char *authover = malloc(SMTP_MAX_AUTH_LINE_LEN + 8);
    assert_non_null(authover);
    memset(authover, 'A', SMTP_MAX_AUTH_LINE_LEN);
    memcpy(authover + SMTP_MAX_AUTH_LINE_LEN, "\r\n", 3);
    struct step s[] = {
        { "@START", GREET, NULL, 0 },
        { at, OK, NULL, 0 },
        { over, "500 5.5.2 Error: line too long\r\n", NULL, 0 },
        { partial, "500 5.5.2 Error: line too long\r\n", NULL, 0 },
        { "zzzz\r\nNOOP\r\n", OK, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { authline, "501 5.5.2 Error: malformed AUTH PLAIN response\r\n", NULL, 0 },
        { "AUTH PLAIN\r\n", "334 \r\n", NULL, 0 },
        { authover, "500 5.5.6 Authentication exchange line is too long\r\n", NULL, 0 },
        { "NOOP\r\n", OK, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "long_command_lines", P_SUB_LOCAL, NOW, NOW, s };
    run(&t);

    /* DATA lines: 65536 octets with CRLF is the limit; longer is refused at
     * the end of the message, which is still read to its end */
    size_t d = SMTP_MAX_DATA_LINE_LEN;
    char *datat = malloc(d + 8), *datao = malloc(d + 16), *expect_msg = malloc(d + 8);
    assert_non_null(datat);
    assert_non_null(datao);
    assert_non_null(expect_msg);
    memset(datat, 'q', d - 2);
    memcpy(datat + d - 2, "\r\n.\r\n", 6);
    memcpy(expect_msg, datat, d);
    expect_msg[d] = '\0';
    memset(datao, 'r', d - 1);
    memcpy(datao + d - 1, "\r\n.\r\n", 6);
    struct step ds[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { datat, QUEUED, expect_msg, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { datao, "552 5.3.4 Error: message line too long (limit 65536 octets)\r\n", NO_MSG, 0 },
        { "RCPT TO:<b@example.test>\r\n", NEED_MAIL, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t2 = { "long_data_lines", P_MX, NOW, NOW, ds };
    run_steps(t2.name, &t2.p, NOW, NOW, ds, FEED_CHUNK, 0);
    run_steps(t2.name, &t2.p, NOW, NOW, ds, FEED_BYTE, 0);
    run_steps(t2.name, &t2.p, NOW, NOW, ds, FEED_RANDOM, 7);

    /* an over-long DATA line ending in a bare LF is smuggling first */
    memset(datao, 'r', d);
    memcpy(datao + d, "\n\r\n.\r\n", 7);
    ds[9].expect = SMUGGLED;
    run_steps("long_data_bare_lf", &t2.p, NOW, NOW, ds, FEED_CHUNK, 0);
    run_steps("long_data_bare_lf", &t2.p, NOW, NOW, ds, FEED_BYTE, 0);
    free(at);
    free(over);
    free(partial);
    free(authline);
    free(authover);
    free(datat);
    free(datao);
    free(expect_msg);
}

static void recipient_limit(void **state)
{
    static const struct step s[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<b1@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "RCPT TO:<b2@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "RCPT TO:<b3@example.test>\r\n", "452 4.5.3 Error: too many recipients\r\n", NULL, 0 },
        { "RCPT TO:<b4@example.test>\r\n", "452 4.5.3 Error: too many recipients\r\n", NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { "m\r\n.\r\n", QUEUED, "m\r\n", 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "recipient_limit",
                            { .hostname = HOST, .tls_available = true,
                              .max_message_size = 10485760, .max_recipients = 2,
                              .max_errors = 3 },
                            NOW, NOW, s };
    run(&t);
}

static void error_limit(void **state)
{
    static const struct step s[] = {
        { "@START", GREET, NULL, 0 },
        { "FOO\r\n", "500 5.5.2 Error: command not recognized\r\n", NULL, 0 },
        { "MAIL FROM:<a@b.test>\r\n", NEED_HELO, NULL, 0 },
        { "BAR\r\nNOOP\r\n",
          "500 5.5.2 Error: command not recognized\r\n421 4.7.0 " HOST " Error: too many errors\r\n",
          NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "error_limit", { .hostname = HOST, .max_errors = 3 }, NOW, NOW, s };
    run(&t);

    /* failed AUTH counts */
    static const struct step a[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { "AUTH PLAIN " PLAIN_WRONG "\r\n", AUTH_BAD, NULL, 0 },
        { "AUTH PLAIN " PLAIN_WRONG "\r\n",
          AUTH_BAD "421 4.7.0 " HOST " Error: too many errors\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t2 = { "error_limit_auth",
                             { .hostname = HOST, .submission = true, .offer_auth = true,
                               .tls_available = true, .max_message_size = 10485760,
                               .max_errors = 2 },
                             NOW, NOW, a };
    run(&t2);

    /* the default is SMTP_MAX_ERRORS */
    struct smtp_session_params p = { .hostname = HOST };
    struct rec *r = rec_new(&p, NOW, NOW, 0);
    for (int i = 0; i < SMTP_MAX_ERRORS - 1; i++)
        deliver(r, "X\r\n", 3, FEED_CHUNK);
    assert_false(smtp_session_closed(r->s));
    deliver(r, "X\r\n", 3, FEED_CHUNK);
    assert_true(smtp_session_closed(r->s));
    assert_non_null(strstr(r->out, "421 4.7.0 " HOST " Error: too many errors\r\n"));
    rec_free(r);
}

static void nomail_limit(void **state)
{
    static const struct step s[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "NOOP\r\n", OK, NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },   /* resets the count */
        { "RSET\r\n", OK, NULL, 0 },
        { "NOOP\r\n", OK, NULL, 0 },
        { "HELP\r\n",
          "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH\r\n",
          NULL, 0 },
        { "VRFY x\r\nNOOP\r\n",
          "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n"
          "421 4.7.0 " HOST " Error: too many commands\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "nomail_limit",
                            { .hostname = HOST, .tls_available = true,
                              .max_message_size = 10485760, .max_nomail_cmds = 4 },
                            NOW, NOW, s };
    run(&t);
    static const struct step e[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO a.test\r\nEHLO a.test\r\nEHLO a.test\r\n", EHLO_MX_PLAIN EHLO_MX_PLAIN
          "421 4.7.0 " HOST " Error: too many commands\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t2 = { "nomail_limit_ehlo",
                             { .hostname = HOST, .max_message_size = 10485760,
                               .max_nomail_cmds = 2 },
                             NOW, NOW, e };
    run(&t2);
}

static void pipelining(void **state)
{
    static const struct step now[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.test>\r\n"
          "RCPT TO:<unknown@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n"
          "Subject: p\r\n\r\npipelined\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.test>\r\n"
          "DATA\r\n.\r\nQUIT\r\nNOOP\r\n",
          EHLO_MX_TLS MAIL_OK RCPT_OK
          "550 5.1.1 <unknown@example.test>: Recipient address rejected: User unknown\r\n"
          RCPT_OK DATA_GO QUEUED MAIL_OK RCPT_OK DATA_GO QUEUED BYE, NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "pipelining_now", P_MX, NOW, NOW, now };
    run(&t);

    /* the data hook answers later: the rest waits in the transport */
    static const struct step later[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.test>\r\n"
          "DATA\r\nhello\r\n.\r\nMAIL FROM:<x@example.net>\r\nRCPT TO:<b@example.test>\r\n"
          "DATA\r\nsecond\r\n.\r\nNOOP\r\n",
          EHLO_MX_TLS MAIL_OK RCPT_OK DATA_GO, "hello\r\n", 0 },
        { "@WAITING", "", NULL, 0 },
        { "@DATA", QUEUED MAIL_OK RCPT_OK DATA_GO, "second\r\n", 0 },
        { "@DATA_REJECT", "550 5.7.1 Message rejected by DMARC policy\r\n" OK, NULL, 0 },
        { "RCPT TO:<b@example.test>\r\n", NEED_MAIL, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t2 = { "pipelining_later", P_MX, NOW, LATER, later };
    run(&t2);

    /* a line split anywhere waits for its end */
    static const struct step split[] = {
        { "@START", GREET, NULL, 0 },
        { "NO", "", NULL, 0 },
        { "OP\r", "", NULL, 0 },
        { "\nNOOP\r\nNO", OK OK, NULL, 0 },
        { "OP\r\n", OK, NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t3 = { "split_lines", P_MX, NOW, NOW, split };
    run(&t3);
}

static void timeout_shutdown(void **state)
{
    static const struct step idle[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "@TIMEOUT", "421 4.4.2 " HOST " Error: timeout exceeded\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { "NOOP\r\n", "", NULL, 0 },
        { "@TIMEOUT", "", NULL, 0 },
        { "@SHUTDOWN", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "timeout", P_MX, NOW, NOW, idle };
    run(&t);

    static const struct step sd[] = {
        { "@START", GREET, NULL, 0 },
        { "@SHUTDOWN", "421 4.3.2 " HOST " Service shutting down\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t2 = { "shutdown_idle", P_MX, NOW, NOW, sd };
    run(&t2);

    /* while the data hook works: its answer first, then 421 */
    static const struct step wait[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.test>\r\n"
          "DATA\r\nm\r\n.\r\nQUIT\r\n", EHLO_MX_TLS MAIL_OK RCPT_OK DATA_GO, "m\r\n", 0 },
        { "@SHUTDOWN", "", NULL, 0 },
        { "@OPEN", "", NULL, 0 },
        { "@DATA", QUEUED "421 4.3.2 " HOST " Service shutting down\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t3 = { "shutdown_waiting_data", P_MX, NOW, LATER, wait };
    run(&t3);

    static const struct step wait_auth[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\nAUTH PLAIN " PLAIN_GOOD "\r\n", EHLO_SUB_BOTH, NULL, 0 },
        { "@SHUTDOWN", "", NULL, 0 },
        { "@AUTH", AUTH_OK "421 4.3.2 " HOST " Service shutting down\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t4 = { "shutdown_waiting_auth", P_SUB_LOCAL, LATER, NOW, wait_auth };
    run(&t4);

    /* in the middle of DATA: no answer is outstanding, 421 at once */
    static const struct step mid[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.test>\r\n"
          "DATA\r\npartial\r\n", EHLO_MX_TLS MAIL_OK RCPT_OK DATA_GO, NULL, 0 },
        { "@SHUTDOWN", "421 4.3.2 " HOST " Service shutting down\r\n", NULL, 0 },
        { "@CLOSED", "", NULL, 0 },
        { ".\r\n", "", NO_MSG, 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t5 = { "shutdown_in_data", P_MX, NOW, NOW, mid };
    run(&t5);
}

static void params_and_utf8(void **state)
{
    static const struct step s[] = {
        { "@START", GREET, NULL, 0 },
        { "EHLO c.example.net\r\n", EHLO_MX_TLS, NULL, 0 },
        { "MAIL FROM <a@example.net>\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>\r\n", NULL, 0 },
        { "MAIL FROM:a@example.net\r\n",
          "501 5.1.7 Bad sender address syntax: address must be enclosed in <>\r\n", NULL, 0 },
        { "MAIL FROM:<a..b@example.net>\r\n", "501 5.1.7 Bad sender address syntax: bad local part\r\n",
          NULL, 0 },
        { "MAIL FROM:<a@example.net> FOO=1\r\n", "555 5.5.4 Error: unknown parameter\r\n", NULL,
          0 },
        { "MAIL FROM:<a@example.net> RET=FULL\r\n",
          "555 5.5.4 Error: parameter of an extension not offered\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net> SIZE=abc\r\n", "501 5.5.4 Error: bad SIZE value\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net> BODY=BINARYMIME\r\n",
          "501 5.5.4 Error: bad BODY value (7BIT or 8BITMIME)\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net> SIZE=1 SIZE=1\r\n", "501 5.5.4 Error: duplicate parameter\r\n",
          NULL, 0 },
        { "MAIL FROM:<p\xc3\xa9@example.net>\r\n",
          "553 5.6.7 Error: non-ASCII sender requires SMTPUTF8\r\n", NULL, 0 },
        { "MAIL FROM:<a@example.net>\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<>\r\n", "501 5.1.3 Bad recipient address syntax: null recipient not allowed\r\n",
          NULL, 0 },
        { "RCPT TO:<b@example.test> NOTIFY=NEVER\r\n",
          "555 5.5.4 Error: parameter of an extension not offered\r\n", NULL, 0 },
        { "RCPT TO:<\xc3\xbc@example.test>\r\n",
          "553 5.6.7 Error: non-ASCII recipient requires SMTPUTF8\r\n", NULL, 0 },
        { "RCPT TO b@example.test\r\n", "501 5.5.4 Syntax: RCPT TO:<address>\r\n", NULL, 0 },
        { "RCPT TO:<Postmaster>\r\n", RCPT_OK, NULL, 0 },
        { "RSET\r\n", OK, NULL, 0 },
        { "MAIL FROM:<p\xc3\xa9@ex\xc3\xa4mple.net> SMTPUTF8 BODY=8BITMIME\r\n", MAIL_OK, NULL, 0 },
        { "RCPT TO:<\xc3\xbc@example.test>\r\n", RCPT_OK, NULL, 0 },
        { "DATA\r\n", DATA_GO, NULL, 0 },
        { "Subject: caf\xc3\xa9\r\n\r\n.\r\n", QUEUED, "Subject: caf\xc3\xa9\r\n\r\n", 0 },
        { NULL, NULL, NULL, 0 },
    };
    struct transcript t = { "params_and_utf8", P_MX, NOW, NOW, s };
    run(&t);
}

/* The envelope the hooks see. */
static struct smtp_envelope seen_env;
static char *seen_rcpts[4];
static void env_data(void *arg, const struct smtp_envelope *env, char *msg, size_t len)
{
    struct rec *r = arg;
    seen_env = *env;
    for (size_t i = 0; i < env->nrcpt && i < 4; i++)
        seen_rcpts[i] = strdup(env->rcpts[i]);
    free(msg);
    (void)len;
    struct smtp_reply rep;
    smtp_reply_set(&rep, 250, "2.0.0", "Ok");
    smtp_session_data_done(r->s, &rep);
}

static void envelope(void **state)
{
    struct smtp_session_params p = P_SUB_LOCAL;
    struct rec *r = rec_new(&p, NOW, NOW, 0);
    struct smtp_hooks h = { .arg = r, .write = h_write, .starttls = h_starttls,
                            .auth = h_auth, .data = env_data, .close = h_close };
    smtp_session_free(r->s);
    r->s = smtp_session_new(&p, &h);
    smtp_session_start(r->s);
    const char *in = "EHLO client.example.net\r\nAUTH LOGIN " USER_B64 "\r\n" PASS_B64 "\r\n"
                     "MAIL FROM:<alice@example.test> SIZE=42 BODY=8BITMIME SMTPUTF8\r\n"
                     "RCPT TO:<@hop.test:b@example.net>\r\nRCPT TO:<\"c d\"@example.net>\r\n"
                     "DATA\r\nx\r\n.\r\n";
    deliver(r, in, strlen(in), FEED_CHUNK);
    assert_string_equal(seen_env.helo, "client.example.net");
    assert_true(seen_env.esmtp);
    assert_false(seen_env.tls);
    assert_true(seen_env.authenticated);
    assert_string_equal(seen_env.auth_user, "alice");
    assert_string_equal(seen_env.mail_from, "alice@example.test");
    assert_true(seen_env.smtputf8);
    assert_true(seen_env.body_8bit);
    assert_int_equal(seen_env.declared_size, 42);
    assert_int_equal(seen_env.nrcpt, 2);
    assert_string_equal(seen_rcpts[0], "b@example.net");
    assert_string_equal(seen_rcpts[1], "\"c d\"@example.net");
    free(seen_rcpts[0]);
    free(seen_rcpts[1]);
    rec_free(r);
}

static void memory(void **state)
{
    struct smtp_session_params p = P_MX;
    struct rec *r = rec_new(&p, NOW, NOW, 0);
    smtp_session_start(r->s);
    size_t idle = smtp_session_memory(r->s);
    assert_true(idle <= 4096);
    const char *in = "EHLO c.example.net\r\nMAIL FROM:<a@example.net>\r\n"
                     "RCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n";
    deliver(r, in, strlen(in), FEED_CHUNK);
    char line[1002];
    memset(line, 'x', 998);
    memcpy(line + 998, "\r\n", 2);
    for (int i = 0; i < 100; i++)
        deliver(r, line, 1000, FEED_CHUNK);
    assert_true(smtp_session_memory(r->s) > idle + 100000);
    deliver(r, ".\r\n", 3, FEED_CHUNK);
    assert_int_equal(r->msglen, 100000);
    /* back to idle: the message buffer and recipients are gone */
    assert_int_equal(smtp_session_memory(r->s), idle);
    rec_free(r);
}

static void reply_format(void **state)
{
    struct smtp_reply r;
    char out[256];
    size_t n;
    smtp_reply_set(&r, 250, "2.1.0", "Ok");
    smtp_reply_format(&r, out, sizeof out, &n);
    assert_string_equal(out, "250 2.1.0 Ok\r\n");
    assert_int_equal(n, 14);
    smtp_reply_set(&r, 550, "5.7.1", "line one\nline two\nthree\n");
    smtp_reply_format(&r, out, sizeof out, &n);
    assert_string_equal(out, "550-5.7.1 line one\r\n550-5.7.1 line two\r\n550 5.7.1 three\r\n");
    /* control characters never reach the wire; bad enhanced codes are dropped */
    smtp_reply_set(&r, 451, "9.9", "a\rb\x01" "c\xff");
    smtp_reply_format(&r, out, sizeof out, &n);
    assert_string_equal(out, "451 a?b?c?\r\n");
    smtp_reply_set(&r, 250, "5.0.0", "class mismatch");
    smtp_reply_format(&r, out, sizeof out, &n);
    assert_string_equal(out, "250 class mismatch\r\n");
    smtp_reply_set(&r, 99, "", "x");
    smtp_reply_format(&r, out, sizeof out, &n);
    assert_string_equal(out, "451 x\r\n");
    /* too small a buffer ends the reply at a whole line */
    smtp_reply_set(&r, 250, "", "first\nsecond\nthird");
    smtp_reply_format(&r, out, 24, &n);
    assert_string_equal(out, "250-first\r\n250 second\r\n");
    smtp_reply_format(&r, out, 8, &n);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mx_transaction),
        cmocka_unit_test(helo_no_extensions),
        cmocka_unit_test(sequence_errors),
        cmocka_unit_test(other_commands),
        cmocka_unit_test(non_smtp),
        cmocka_unit_test(ehlo_modes),
        cmocka_unit_test(starttls),
        cmocka_unit_test(auth),
        cmocka_unit_test(data_dots),
        cmocka_unit_test(smuggling),
        cmocka_unit_test(size_limit),
        cmocka_unit_test(long_lines),
        cmocka_unit_test(recipient_limit),
        cmocka_unit_test(error_limit),
        cmocka_unit_test(nomail_limit),
        cmocka_unit_test(pipelining),
        cmocka_unit_test(timeout_shutdown),
        cmocka_unit_test(params_and_utf8),
        cmocka_unit_test(envelope),
        cmocka_unit_test(memory),
        cmocka_unit_test(reply_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
