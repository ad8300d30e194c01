/* SMTP client transcripts: server reply bytes in, exact client output and
 * exact hook calls out. Every transcript runs fed whole, one byte at a time
 * and split at random points (with the unconsumed rest kept, as a transport
 * does); the output must be identical. Covers the greeting, EHLO/HELO
 * fallback, STARTTLS (opportunistic, required, never, refused, handshake
 * failure, response injection), AUTH PLAIN, pipelining and not, refused
 * recipients, DATA refusals, 4xx/5xx/421 at each step, multi-line and
 * malformed replies, line and reply limits, dot-stuffing, SIZE, 8BITMIME,
 * SMTPUTF8, two messages per connection, timeouts; then the client against
 * the real server engine (smtp_session) in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_session.h"
#include "util/buf.h"

/* ---- server lines ---- */
#define GREET "220 mx.test ESMTP\r\n"
#define EHLO "EHLO client.test\r\n"
#define HELO "HELO client.test\r\n"
#define EHLO_PIPE "250-mx.test\r\n250-SIZE 1000\r\n250-PIPELINING\r\n250-8BITMIME\r\n" \
                  "250-SMTPUTF8\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_NOPIPE "250-mx.test\r\n250-SIZE\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_BARE "250 mx.test\r\n"
#define EHLO_TLS "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
#define EHLO_AUTH_TLS "250-mx.test\r\n250-AUTH LOGIN PLAIN\r\n250 STARTTLS\r\n"
#define EHLO_AUTH "250-mx.test\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n"
#define MAIL_OK "250 2.1.0 Ok\r\n"
#define RCPT_OK "250 2.1.5 Ok\r\n"
#define GO "354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED "250 2.0.0 Ok: queued as 1\r\n"
#define RSET_OK "250 2.0.0 Ok\r\n"
#define UNKNOWN "550 5.1.1 <x>: User unknown\r\n"
#define BYE "221 2.0.0 Bye\r\n"
#define CLOSING "421 4.7.0 mx.test closing\r\n"

/* ---- client lines ---- */
#define M1_MAIL "MAIL FROM:<alice@sender.test> SIZE=22\r\n"
#define M1_MAIL_NOSIZE "MAIL FROM:<alice@sender.test>\r\n"
#define M1_RCPT0 "RCPT TO:<bob@rcpt.test>\r\n"
#define M1_RCPT1 "RCPT TO:<carol@rcpt.test>\r\n"
#define M1_PIPE M1_MAIL M1_RCPT0 M1_RCPT1 "DATA\r\n"
#define M1_DATA "Subject: hi\r\n\r\nHello\r\n.\r\n"

/* ---- logs ---- */
#define L_READY "READY 250;"
#define L_R_OK(i) "R" #i " 250 2.1.5 Ok;"
#define L_QUEUED "M 250 2.0.0 Ok: queued as 1;"
#define L_421 "421 4.7.0 mx.test closing;"

struct msg {
    const char *from;
    const char *rcpts[8];
    const char *body;
    bool smtputf8;
};

static const struct msg M1 = {
    "alice@sender.test", { "bob@rcpt.test", "carol@rcpt.test" },
    "Subject: hi\r\n\r\nHello\r\n", false,
};
static const struct msg M_ONE = {
    "alice@sender.test", { "bob@rcpt.test" }, "Subject: hi\r\n\r\nHello\r\n", false,
};

enum act { A_END = 0, A_FEED, A_SEND, A_TLS_OK, A_TLS_FAIL, A_QUIT, A_ABORT, A_TIMEOUT };

struct step {
    enum act a;
    const char *srv;        /* A_FEED: server bytes; A_TIMEOUT: unused */
    const struct msg *m;    /* A_SEND */
    int rc;                 /* A_SEND: expected return; A_TIMEOUT: expected ms */
    const char *out;        /* exact client output during the step */
    const char *log;        /* exact hook calls during the step */
};

#define FEED(s, o, l) { A_FEED, s, NULL, 0, o, l }
#define SEND(m, r, o, l) { A_SEND, NULL, m, r, o, l }
#define TLS_OK(o, l) { A_TLS_OK, NULL, NULL, 0, o, l }
#define TLS_FAIL(o, l) { A_TLS_FAIL, NULL, NULL, 0, o, l }
#define QUIT(o, l) { A_QUIT, NULL, NULL, 0, o, l }
#define ABORT(l) { A_ABORT, NULL, NULL, 0, "", l }
#define TIMEOUT(ms) { A_TIMEOUT, NULL, NULL, ms, "", "" }
#define END { A_END, NULL, NULL, 0, NULL, NULL }

enum feed_mode { FEED_WHOLE, FEED_BYTE, FEED_RANDOM };

struct rec {
    struct smtp_client *c;
    struct buf out, log;
    char *pend;
    size_t pendlen, pendcap;
    bool over;              /* FAILED or CLOSED reported */
    int tls_calls;
    size_t rcpt_expect;     /* next rcpt_done index */
    bool in_msg;
    unsigned seed;
};

static void log_reply(struct rec *r, const char *kind, const struct smtp_client_reply *rep,
                      bool full)
{
    assert_int_equal(buf_printf(&r->log, "%s %d", kind, rep->code), 0);
    if (full) {
        if (rep->enhanced[0])
            assert_int_equal(buf_printf(&r->log, " %s", rep->enhanced), 0);
        assert_int_equal(buf_append_char(&r->log, ' '), 0);
        for (const char *p = rep->text; *p; p++)
            assert_int_equal(buf_append_char(&r->log, *p == '\n' ? '/' : *p), 0);
    }
    assert_int_equal(buf_append_char(&r->log, ';'), 0);
}

static void h_write(void *arg, const char *data, size_t len)
{
    struct rec *r = arg;
    if (r->over)
        fail_msg("write after the session ended: %.*s", (int)len, data);
    assert_int_equal(buf_append(&r->out, data, len), 0);
}

static void h_starttls(void *arg)
{
    struct rec *r = arg;
    r->tls_calls++;
    assert_int_equal(buf_append_str(&r->log, "TLS;"), 0);
}

static void h_event(void *arg, enum smtp_client_event ev, const struct smtp_client_reply *rep)
{
    struct rec *r = arg;
    if (r->over)
        fail_msg("event after the session ended");
    switch (ev) {
    case SMTP_CLIENT_READY:
        log_reply(r, "READY", rep, false);
        break;
    case SMTP_CLIENT_FAILED:
        r->over = true;
        log_reply(r, "FAILED", rep, true);
        break;
    case SMTP_CLIENT_CLOSED:
        r->over = true;
        log_reply(r, "CLOSED", rep, true);
        break;
    }
}

static void h_rcpt(void *arg, size_t index, const struct smtp_client_reply *rep)
{
    struct rec *r = arg;
    if (!r->in_msg || index != r->rcpt_expect)
        fail_msg("rcpt_done %zu out of order (want %zu)", index, r->rcpt_expect);
    r->rcpt_expect++;
    char kind[16];
    snprintf(kind, sizeof kind, "R%zu", index);
    log_reply(r, kind, rep, true);
}

static void h_msg(void *arg, const struct smtp_client_reply *rep)
{
    struct rec *r = arg;
    r->in_msg = false;
    log_reply(r, "M", rep, true);
}

static struct rec *rec_new(const struct smtp_client_params *p, unsigned seed)
{
    struct rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    buf_init(&r->out, 1 << 24);
    buf_init(&r->log, 1 << 20);
    r->seed = seed;
    struct smtp_client_hooks h = {
        .arg = r, .write = h_write, .starttls = h_starttls, .event = h_event,
        .rcpt_done = h_rcpt, .message_done = h_msg,
    };
    r->c = smtp_client_new(p, &h);
    assert_non_null(r->c);
    return r;
}

static void rec_free(struct rec *r)
{
    smtp_client_free(r->c);
    buf_free(&r->out);
    buf_free(&r->log);
    free(r->pend);
    free(r);
}

static void pump(struct rec *r)
{
    size_t n = smtp_client_feed(r->c, r->pend, r->pendlen);
    assert_true(n <= r->pendlen);
    memmove(r->pend, r->pend + n, r->pendlen - n);
    r->pendlen -= n;
    /* the transport never holds more than one reply line */
    assert_true(r->pendlen < SMTP_CLIENT_REPLY_LINE_MAX);
}

static void deliver(struct rec *r, const char *p, size_t len, enum feed_mode mode)
{
    size_t i = 0;
    while (i < len) {
        size_t n = len - i;
        if (mode == FEED_BYTE)
            n = 1;
        else if (mode == FEED_RANDOM) {
            size_t k = (size_t)(rand_r(&r->seed) % 29) + 1;
            if (k < n)
                n = k;
        }
        if (r->pendlen + n > r->pendcap) {
            r->pendcap = (r->pendlen + n) * 2;
            r->pend = realloc(r->pend, r->pendcap);
            assert_non_null(r->pend);
        }
        memcpy(r->pend + r->pendlen, p + i, n);
        r->pendlen += n;
        i += n;
        pump(r);
    }
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

static int do_send(struct rec *r, const struct msg *m)
{
    size_t n = 0;
    while (n < 8 && m->rcpts[n])
        n++;
    r->in_msg = true;
    r->rcpt_expect = 0;
    int rc = smtp_client_send(r->c, m->from, m->smtputf8, m->rcpts, n, m->body,
                              strlen(m->body));
    if (rc != 0 && r->in_msg)
        r->in_msg = false;   /* not ready: no message_done */
    return rc;
}

static void run_steps(const char *name, const struct smtp_client_params *p,
                      const struct step *steps, enum feed_mode mode, unsigned seed)
{
    static const char *const mode_name[] = { "whole", "byte", "random" };
    struct rec *r = rec_new(p, seed);
    for (size_t i = 0; steps[i].a != A_END; i++) {
        const struct step *st = &steps[i];
        buf_reset(&r->out);
        buf_reset(&r->log);
        switch (st->a) {
        case A_FEED:
            deliver(r, st->srv, strlen(st->srv), mode);
            break;
        case A_SEND: {
            int rc = do_send(r, st->m);
            if (rc != st->rc)
                fail_msg("%s/%s step %zu: send returned %d, want %d", name, mode_name[mode],
                         i, rc, st->rc);
            break;
        }
        case A_TLS_OK:
        case A_TLS_FAIL:
            assert_true(r->tls_calls > 0);
            smtp_client_tls_done(r->c, st->a == A_TLS_OK);
            break;
        case A_QUIT:
            smtp_client_quit(r->c);
            break;
        case A_ABORT:
            smtp_client_abort(r->c, "connection reset");
            break;
        case A_TIMEOUT:
            if (smtp_client_timeout_ms(r->c) != (unsigned)st->rc)
                fail_msg("%s step %zu: timeout %u, want %d", name, i,
                         smtp_client_timeout_ms(r->c), st->rc);
            break;
        case A_END:
            break;
        }
        const char *o = r->out.data ? r->out.data : "";
        const char *l = r->log.data ? r->log.data : "";
        if (r->out.len != strlen(st->out) || memcmp(o, st->out, r->out.len) != 0 ||
            strcmp(l, st->log) != 0) {
            fprintf(stderr, "transcript %s, %s feeding, step %zu\n", name, mode_name[mode], i);
            if (st->srv)
                show("server sent", st->srv, strlen(st->srv));
            show("expected output", st->out, strlen(st->out));
            show("got output", o, r->out.len);
            show("expected hooks", st->log, strlen(st->log));
            show("got hooks", l, r->log.len);
            fail_msg("transcript %s differs", name);
        }
    }
    rec_free(r);
}

static void run(const char *name, const struct smtp_client_params *p, const struct step *steps)
{
    run_steps(name, p, steps, FEED_WHOLE, 0);
    run_steps(name, p, steps, FEED_BYTE, 0);
    for (unsigned seed = 1; seed <= 6; seed++)
        run_steps(name, p, steps, FEED_RANDOM, seed);
}

#define P_PLAIN { .helo_name = "client.test", .tls = SMTP_TLS_OPPORTUNISTIC }
#define P_TLS { .helo_name = "client.test", .tls = SMTP_TLS_OPPORTUNISTIC, .tls_available = true }
#define P_TLS_REQ { .helo_name = "client.test", .tls = SMTP_TLS_REQUIRED, .tls_available = true }
#define P_TLS_NEVER { .helo_name = "client.test", .tls = SMTP_TLS_NEVER, .tls_available = true }
#define P_AUTH { .helo_name = "client.test", .tls = SMTP_TLS_REQUIRED, .tls_available = true, \
                 .auth_user = "user", .auth_password = "pass" }

/* ---- transcripts ---- */

static void pipelined_two_messages(void **state)
{
    (void)state;
    static const struct msg m2 = {
        "", { "dave@rcpt.test" }, "X: y\r\n\r\nsecond\r\n", false,
    };
    static const struct step steps[] = {
        TIMEOUT(300000),
        FEED(GREET, EHLO, ""),
        TIMEOUT(300000),
        FEED(EHLO_PIPE, "", L_READY),
        TIMEOUT(0),
        SEND(&M1, 0, M1_PIPE, ""),
        TIMEOUT(300000),
        FEED(MAIL_OK RCPT_OK, "", L_R_OK(0)),
        FEED(RCPT_OK, "", L_R_OK(1)),
        TIMEOUT(120000),
        FEED(GO, M1_DATA, ""),
        TIMEOUT(600000),
        FEED(QUEUED, "", L_QUEUED),
        /* the next message: no RSET after a complete transaction */
        SEND(&m2, 0, "MAIL FROM:<> SIZE=16\r\nRCPT TO:<dave@rcpt.test>\r\nDATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, "X: y\r\n\r\nsecond\r\n.\r\n", L_R_OK(0)),
        FEED("250 2.0.0 Ok: queued as 2\r\n", "", "M 250 2.0.0 Ok: queued as 2;"),
        QUIT("QUIT\r\n", ""),
        FEED(BYE, "", "CLOSED 221 2.0.0 Bye;"),
        TIMEOUT(0),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("pipelined_two_messages", &p, steps);
}

static void one_at_a_time(void **state)
{
    (void)state;
    static const struct step steps[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_NOPIPE, "", L_READY),
        /* SIZE without a number: no limit, but SIZE= is given */
        SEND(&M1, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(RCPT_OK, M1_RCPT1, L_R_OK(0)),
        FEED(RCPT_OK, "DATA\r\n", L_R_OK(1)),
        FEED(GO, M1_DATA, ""),
        FEED(QUEUED, "", L_QUEUED),
        SEND(&M1, 0, M1_MAIL, ""),
        /* the second recipient refused: the message goes to the first */
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(RCPT_OK, M1_RCPT1, L_R_OK(0)),
        FEED("450 4.2.0 <carol@rcpt.test>: mailbox busy\r\n", "DATA\r\n",
             "R1 450 4.2.0 <carol@rcpt.test>: mailbox busy;"),
        FEED(GO, M1_DATA, ""),
        FEED(QUEUED, "", L_QUEUED),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("one_at_a_time", &p, steps);
}

static void helo_fallback(void **state)
{
    (void)state;
    static const struct msg m8 = {
        "alice@sender.test", { "bob@rcpt.test" }, "Subject: caf\xc3\xa9\r\n\r\nx\r\n", false,
    };
    static const struct step steps[] = {
        FEED(GREET, EHLO, ""),
        FEED("500 5.5.1 command unrecognized\r\n", HELO, ""),
        FEED("250 mx.test\r\n", "", L_READY),
        /* no extensions: no parameters, one command at a time */
        SEND(&M_ONE, 0, M1_MAIL_NOSIZE, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(RCPT_OK, "DATA\r\n", L_R_OK(0)),
        FEED(GO, M1_DATA, ""),
        FEED("250 ok\r\n", "", "M 250 ok;"),
        /* 8-bit message, no 8BITMIME: refused here, nothing written */
        SEND(&m8, -1, "", "M 554 5.6.3 server does not support 8BITMIME;"),
        SEND(&M_ONE, 0, M1_MAIL_NOSIZE, ""),
        FEED(MAIL_OK RCPT_OK, M1_RCPT0 "DATA\r\n", L_R_OK(0)),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("helo_fallback", &p, steps);
}

static void hello_refused(void **state)
{
    (void)state;
    static const struct step ehlo_4xx[] = {
        FEED(GREET, EHLO, ""),
        FEED("450 4.3.2 try later\r\n", "QUIT\r\n", "FAILED 450 4.3.2 try later;"),
        FEED(BYE, "", ""),
        END,
    };
    static const struct step helo_5xx[] = {
        FEED(GREET, EHLO, ""),
        FEED("502 5.5.2 no\r\n", HELO, ""),
        FEED("550 5.7.1 go away\r\n", "QUIT\r\n", "FAILED 550 5.7.1 go away;"),
        END,
    };
    static const struct step ehlo_421[] = {
        FEED(GREET, EHLO, ""),
        FEED(CLOSING, "", "FAILED " L_421),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("ehlo_4xx", &p, ehlo_4xx);
    run("helo_5xx", &p, helo_5xx);
    run("ehlo_421", &p, ehlo_421);
}

static void greetings(void **state)
{
    (void)state;
    static const struct step g554[] = {
        FEED("554 5.7.1 mx.test no service for you\r\n", "QUIT\r\n",
             "FAILED 554 5.7.1 mx.test no service for you;"),
        END,
    };
    static const struct step g421[] = {
        FEED("421 4.3.2 mx.test busy\r\n", "", "FAILED 421 4.3.2 mx.test busy;"),
        END,
    };
    static const struct step g250[] = {
        FEED("250 mx.test hello\r\n", "QUIT\r\n", "FAILED 250 mx.test hello;"),
        END,
    };
    static const struct step gmulti[] = {
        FEED("220-mx.test ESMTP\r\n220-please be nice\r\n220 really\r\n", EHLO, ""),
        FEED(EHLO_BARE, "", L_READY),
        END,
    };
    static const struct step gnothing[] = {
        ABORT("FAILED 0 connection reset;"),
        FEED(GREET, "", ""),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("greeting_554", &p, g554);
    run("greeting_421", &p, g421);
    run("greeting_250", &p, g250);
    run("greeting_multi", &p, gmulti);
    run("greeting_none", &p, gnothing);
}

static void starttls(void **state)
{
    (void)state;
    static const struct step offered[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_TLS, "STARTTLS\r\n", ""),
        TIMEOUT(300000),
        /* the injected reply after the 220, in the clear, is dropped */
        FEED("220 2.0.0 Ready to start TLS\r\n250 injected\r\n", "", "TLS;"),
        FEED("250 more injected\r\n", "", ""),
        TLS_OK(EHLO, ""),
        FEED("250-mx.test\r\n250 PIPELINING\r\n", "", L_READY),
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test>\r\n" M1_RCPT0 "DATA\r\n", ""),
        END,
    };
    static const struct step refused[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_TLS, "STARTTLS\r\n", ""),
        FEED("454 4.7.0 TLS not available\r\n", "", "READY 454;"),
        END,
    };
    static const struct step handshake_fails[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_TLS, "STARTTLS\r\n", ""),
        FEED("220 go ahead\r\n", "", "TLS;"),
        TLS_FAIL("", "FAILED 0 TLS handshake failed;"),
        END,
    };
    static const struct step required_missing[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_PIPE, "QUIT\r\n", "FAILED 0 STARTTLS required but not offered;"),
        END,
    };
    static const struct step required_refused[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_TLS, "STARTTLS\r\n", ""),
        FEED("454 4.7.0 TLS not available\r\n", "QUIT\r\n",
             "FAILED 454 4.7.0 TLS not available;"),
        END,
    };
    static const struct step required_ok[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_TLS, "STARTTLS\r\n", ""),
        FEED("220 2.0.0 Ready\r\n", "", "TLS;"),
        TLS_OK(EHLO, ""),
        /* after TLS the server need not offer STARTTLS again */
        FEED(EHLO_BARE, "", L_READY),
        END,
    };
    static const struct step never[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_TLS, "", L_READY),
        END,
    };
    struct smtp_client_params p = P_TLS;
    run("starttls_offered", &p, offered);
    run("starttls_refused", &p, refused);
    run("starttls_handshake_fails", &p, handshake_fails);
    struct smtp_client_params req = P_TLS_REQ;
    run("starttls_required_missing", &req, required_missing);
    run("starttls_required_refused", &req, required_refused);
    run("starttls_required_ok", &req, required_ok);
    struct smtp_client_params nv = P_TLS_NEVER;
    run("starttls_never", &nv, never);
    /* offered, but this transport cannot do TLS: plaintext */
    struct smtp_client_params plain = P_PLAIN;
    run("starttls_unavailable", &plain, never);
    static const struct step req_unavailable[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_TLS, "QUIT\r\n", "FAILED 0 STARTTLS required but TLS is not available here;"),
        END,
    };
    struct smtp_client_params ru = P_TLS_REQ;
    ru.tls_available = false;
    run("starttls_required_unavailable", &ru, req_unavailable);
}

/* "\0user\0pass" */
#define AUTH_LINE "AUTH PLAIN AHVzZXIAcGFzcw==\r\n"

static void auth(void **state)
{
    (void)state;
    static const struct step ok[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_AUTH_TLS, "STARTTLS\r\n", ""),
        FEED("220 2.0.0 Ready\r\n", "", "TLS;"),
        TLS_OK(EHLO, ""),
        FEED(EHLO_AUTH, AUTH_LINE, ""),
        TIMEOUT(300000),
        FEED("235 2.7.0 Authentication successful\r\n", "", "READY 235;"),
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test>\r\n" M1_RCPT0 "DATA\r\n", ""),
        END,
    };
    static const struct step bad[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_AUTH_TLS, "STARTTLS\r\n", ""),
        FEED("220 2.0.0 Ready\r\n", "", "TLS;"),
        TLS_OK(EHLO, ""),
        FEED(EHLO_AUTH, AUTH_LINE, ""),
        FEED("535 5.7.8 Authentication credentials invalid\r\n", "QUIT\r\n",
             "FAILED 535 5.7.8 Authentication credentials invalid;"),
        END,
    };
    static const struct step not_offered[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_AUTH_TLS, "STARTTLS\r\n", ""),
        FEED("220 2.0.0 Ready\r\n", "", "TLS;"),
        TLS_OK(EHLO, ""),
        FEED("250-mx.test\r\n250 AUTH LOGIN CRAM-MD5\r\n", "QUIT\r\n",
             "FAILED 0 AUTH PLAIN required but not offered;"),
        END,
    };
    static const struct step challenge[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_AUTH_TLS, "STARTTLS\r\n", ""),
        FEED("220 2.0.0 Ready\r\n", "", "TLS;"),
        TLS_OK(EHLO, ""),
        FEED("250-mx.test\r\n250 AUTH=PLAIN\r\n", AUTH_LINE, ""),
        FEED("334 \r\n", "", "FAILED 334 ;"),
        END,
    };
    static const struct step no_tls[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_AUTH, "QUIT\r\n", "FAILED 0 AUTH requires TLS, and the session is not encrypted;"),
        END,
    };
    struct smtp_client_params p = P_AUTH;
    run("auth_ok", &p, ok);
    run("auth_bad", &p, bad);
    run("auth_not_offered", &p, not_offered);
    run("auth_challenge", &p, challenge);
    struct smtp_client_params nt = P_AUTH;
    nt.tls = SMTP_TLS_NEVER;
    run("auth_no_tls", &nt, no_tls);
}

#define READY_PIPE FEED(GREET, EHLO, ""), FEED(EHLO_PIPE, "", L_READY)
#define READY_NOPIPE FEED(GREET, EHLO, ""), FEED(EHLO_NOPIPE, "", L_READY)
#define R_UNKNOWN(i) "R" #i " 550 5.1.1 <x>: User unknown;"

static void refused_recipients(void **state)
{
    (void)state;
    static const struct step some[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(MAIL_OK UNKNOWN RCPT_OK GO, M1_DATA, R_UNKNOWN(0) L_R_OK(1)),
        FEED(QUEUED, "", L_QUEUED),
        END,
    };
    /* every RCPT refused: DATA's 554 (or 503) arrives, RSET instead of data */
    static const struct step all_554[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(MAIL_OK UNKNOWN "450 4.2.1 busy\r\n", "", R_UNKNOWN(0) "R1 450 4.2.1 busy;"),
        FEED("554 5.5.1 Error: no valid recipients\r\n", "RSET\r\n", ""),
        FEED(RSET_OK, "", "M 550 5.1.1 <x>: User unknown;"),
        SEND(&M1, 0, M1_PIPE, ""),
        END,
    };
    static const struct step all_503_one_chunk[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(MAIL_OK UNKNOWN UNKNOWN "503 5.5.1 need RCPT\r\n" RSET_OK, "RSET\r\n",
             R_UNKNOWN(0) R_UNKNOWN(1) "M 550 5.1.1 <x>: User unknown;"),
        END,
    };
    /* a server that says 354 anyway: an empty message, then RSET (RFC 2920) */
    static const struct step all_354[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(MAIL_OK UNKNOWN UNKNOWN GO, ".\r\n", R_UNKNOWN(0) R_UNKNOWN(1)),
        FEED("554 5.5.1 no recipients\r\n", "RSET\r\n", ""),
        FEED(RSET_OK, "", "M 550 5.1.1 <x>: User unknown;"),
        END,
    };
    static const struct step all_one_at_a_time[] = {
        READY_NOPIPE,
        SEND(&M1, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(UNKNOWN, M1_RCPT1, R_UNKNOWN(0)),
        FEED(UNKNOWN, "RSET\r\n", R_UNKNOWN(1)),
        FEED(RSET_OK, "", "M 550 5.1.1 <x>: User unknown;"),
        SEND(&M1, 0, M1_MAIL, ""),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("some_refused", &p, some);
    run("all_refused_554", &p, all_554);
    run("all_refused_503", &p, all_503_one_chunk);
    run("all_refused_354", &p, all_354);
    run("all_refused_one_at_a_time", &p, all_one_at_a_time);
}

#define SENDER_REFUSED "550 5.7.1 <alice@sender.test>: Sender address rejected\r\n"
#define L_SENDER_REFUSED(k) k " 550 5.7.1 <alice@sender.test>: Sender address rejected;"

static void mail_and_data_refused(void **state)
{
    (void)state;
    static const struct step mail_pipe[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(SENDER_REFUSED "503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n",
             "", L_SENDER_REFUSED("R0") L_SENDER_REFUSED("R1")),
        FEED("503 5.5.1 need MAIL\r\n", "RSET\r\n", ""),
        FEED(RSET_OK, "", L_SENDER_REFUSED("M")),
        END,
    };
    static const struct step mail_one[] = {
        READY_NOPIPE,
        SEND(&M1, 0, M1_MAIL, ""),
        FEED(SENDER_REFUSED, "RSET\r\n", L_SENDER_REFUSED("R0") L_SENDER_REFUSED("R1")),
        FEED(RSET_OK, "", L_SENDER_REFUSED("M")),
        /* SIZE refused by the server at MAIL */
        SEND(&M1, 0, M1_MAIL, ""),
        FEED("552 5.3.4 message too big\r\n", "RSET\r\n",
             "R0 552 5.3.4 message too big;R1 552 5.3.4 message too big;"),
        FEED(RSET_OK, "", "M 552 5.3.4 message too big;"),
        END,
    };
    static const struct step data_pipe[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(MAIL_OK RCPT_OK RCPT_OK "451 4.3.0 try later\r\n", "RSET\r\n",
             L_R_OK(0) L_R_OK(1)),
        FEED(RSET_OK, "", "M 451 4.3.0 try later;"),
        END,
    };
    static const struct step data_one[] = {
        READY_NOPIPE,
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(RCPT_OK, "DATA\r\n", L_R_OK(0)),
        FEED("554 5.7.0 no\r\n", "RSET\r\n", ""),
        FEED(RSET_OK, "", "M 554 5.7.0 no;"),
        END,
    };
    static const struct step end_of_data[] = {
        READY_PIPE,
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, M1_DATA, L_R_OK(0)),
        FEED("550 5.7.1 rejected by DMARC policy\r\n", "",
             "M 550 5.7.1 rejected by DMARC policy;"),
        /* the transaction is over on both sides: no RSET */
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, M1_DATA, L_R_OK(0)),
        FEED("452 4.3.1 insufficient storage\r\n", "", "M 452 4.3.1 insufficient storage;"),
        END,
    };
    static const struct step rset_refused[] = {
        READY_NOPIPE,
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED(SENDER_REFUSED, "RSET\r\n", L_SENDER_REFUSED("R0")),
        FEED("500 5.5.2 what\r\n", "QUIT\r\n", L_SENDER_REFUSED("M") "FAILED 500 5.5.2 what;"),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("mail_refused_pipelined", &p, mail_pipe);
    run("mail_refused_one_at_a_time", &p, mail_one);
    run("data_refused_pipelined", &p, data_pipe);
    run("data_refused_one_at_a_time", &p, data_one);
    run("end_of_data_refused", &p, end_of_data);
    run("rset_refused", &p, rset_refused);
}

static void closing_421(void **state)
{
    (void)state;
    static const struct step at_mail[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(CLOSING, "", "R0 " L_421 "R1 " L_421 "M " L_421 "FAILED " L_421),
        FEED(RCPT_OK, "", ""),
        END,
    };
    static const struct step at_rcpt_pipe[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(MAIL_OK RCPT_OK CLOSING, "", L_R_OK(0) "R1 " L_421 "M " L_421 "FAILED " L_421),
        END,
    };
    static const struct step at_rcpt_one[] = {
        READY_NOPIPE,
        SEND(&M1, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(CLOSING, "", "R0 " L_421 "R1 " L_421 "M " L_421 "FAILED " L_421),
        END,
    };
    static const struct step at_data[] = {
        READY_NOPIPE,
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(RCPT_OK, "DATA\r\n", L_R_OK(0)),
        FEED(CLOSING, "", "M " L_421 "FAILED " L_421),
        END,
    };
    static const struct step at_dot[] = {
        READY_PIPE,
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, M1_DATA, L_R_OK(0)),
        FEED(CLOSING, "", "M " L_421 "FAILED " L_421),
        SEND(&M_ONE, -1, "", ""),
        END,
    };
    /* the outcome decided before the 421 stands */
    static const struct step at_rset[] = {
        READY_NOPIPE,
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED(SENDER_REFUSED, "RSET\r\n", L_SENDER_REFUSED("R0")),
        FEED(CLOSING, "", L_SENDER_REFUSED("M") "FAILED " L_421),
        END,
    };
    static const struct step idle[] = {
        READY_PIPE,
        FEED(CLOSING, "", "FAILED " L_421),
        END,
    };
    static const struct step at_starttls[] = {
        FEED(GREET, EHLO, ""),
        FEED(EHLO_TLS, "STARTTLS\r\n", ""),
        FEED(CLOSING, "", "FAILED " L_421),
        END,
    };
    struct smtp_client_params p = P_TLS;
    run("421_at_mail", &p, at_mail);
    run("421_at_rcpt_pipelined", &p, at_rcpt_pipe);
    run("421_at_rcpt", &p, at_rcpt_one);
    run("421_at_data", &p, at_data);
    run("421_at_dot", &p, at_dot);
    run("421_at_rset", &p, at_rset);
    run("421_idle", &p, idle);
    run("421_at_starttls", &p, at_starttls);
}

static void temporary_and_permanent(void **state)
{
    (void)state;
    /* 4xx and 5xx at MAIL, RCPT, DATA, end of data in one session */
    static const struct step steps[] = {
        READY_NOPIPE,
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED("451 4.3.0 try later\r\n", "RSET\r\n", "R0 451 4.3.0 try later;"),
        FEED(RSET_OK, "", "M 451 4.3.0 try later;"),
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED("450 4.1.1 later\r\n", "RSET\r\n", "R0 450 4.1.1 later;"),
        FEED(RSET_OK, "", "M 450 4.1.1 later;"),
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(RCPT_OK, "DATA\r\n", L_R_OK(0)),
        FEED("451 4.3.0 later\r\n", "RSET\r\n", ""),
        FEED(RSET_OK, "", "M 451 4.3.0 later;"),
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(RCPT_OK, "DATA\r\n", L_R_OK(0)),
        FEED(GO, M1_DATA, ""),
        FEED("451 4.7.1 greylisted\r\n", "", "M 451 4.7.1 greylisted;"),
        SEND(&M_ONE, 0, M1_MAIL, ""),
        FEED(MAIL_OK, M1_RCPT0, ""),
        FEED(RCPT_OK, "DATA\r\n", L_R_OK(0)),
        FEED(GO, M1_DATA, ""),
        FEED("554 5.6.0 bad message\r\n", "", "M 554 5.6.0 bad message;"),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("temporary_and_permanent", &p, steps);
}

static void multiline_and_enhanced(void **state)
{
    (void)state;
    static const struct step steps[] = {
        READY_PIPE,
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED(MAIL_OK "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
             "550-5.1.1 Please try double-checking the recipient's email address\r\n"
             "550 5.1.1 for typos.\r\n"
             "554 5.5.1 no valid recipients\r\n", "RSET\r\n",
             "R0 550 5.1.1 The email account that you tried to reach does not exist./"
             "Please try double-checking the recipient's email address/for typos.;"),
        FEED(RSET_OK, "", "M 550 5.1.1 The email account that you tried to reach does not "
             "exist./Please try double-checking the recipient's email address/for typos.;"),
        /* a bare code line is fine; control characters become '?' */
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED("250\r\n250 2.1.5 a\x01" "b\r\n" GO, M1_DATA, "R0 250 2.1.5 a?b;"),
        FEED("250-2.0.0 queued\r\n250 2.0.0 as 7\r\n", "", "M 250 2.0.0 queued/as 7;"),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("multiline_and_enhanced", &p, steps);
}

/* The enhanced code field itself: extracted when it starts the text and
 * has the reply's class. */
static struct smtp_client_reply last_done;

static void keep_done(void *arg, const struct smtp_client_reply *rep)
{
    (void)arg;
    last_done = *rep;
}

static void noop_write(void *arg, const char *d, size_t n)
{
    (void)arg;
    (void)d;
    (void)n;
}

static void enhanced_codes(void **state)
{
    (void)state;
    static const struct {
        const char *reply;
        const char *enh, *text;
    } cases[] = {
        { "550 5.1.1 user unknown\r\n", "5.1.1", "user unknown" },
        { "550 2.1.1 user unknown\r\n", "", "2.1.1 user unknown" },   /* wrong class */
        { "550 5.1.1\r\n", "5.1.1", "" },
        { "550 5.1.1x no\r\n", "", "5.1.1x no" },
        { "550 5.1234.1 no\r\n", "", "5.1234.1 no" },
        { "550 55.1.1 no\r\n", "", "55.1.1 no" },
        { "550 5.123.456 long\r\n", "5.123.456", "long" },
        { "550-5.7.1 first\r\n550-second\r\n550 5.7.2 third\r\n", "5.7.1", "first\nsecond\nthird" },
        { "550\r\n", "", "" },
        { "550 \r\n", "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct smtp_client_params p = P_PLAIN;
        struct smtp_client_hooks h = { .write = noop_write, .message_done = keep_done };
        struct smtp_client *c = smtp_client_new(&p, &h);
        assert_non_null(c);
        const char *pre = GREET EHLO_NOPIPE;
        assert_int_equal(smtp_client_feed(c, pre, strlen(pre)), strlen(pre));
        const char *to[1] = { "b@y.test" };
        assert_int_equal(smtp_client_send(c, "a@x.test", false, to, 1, "x\r\n", 3), 0);
        size_t n = strlen(cases[i].reply);
        assert_int_equal(smtp_client_feed(c, cases[i].reply, n), n);
        assert_int_equal(smtp_client_feed(c, RSET_OK, strlen(RSET_OK)), strlen(RSET_OK));
        assert_int_equal(last_done.code, 550);
        assert_string_equal(last_done.enhanced, cases[i].enh);
        assert_string_equal(last_done.text, cases[i].text);
        smtp_client_free(c);
    }
}

static void malformed(void **state)
{
    (void)state;
    static const struct step words[] = {
        FEED("hello there\r\n", "", "FAILED 0 malformed reply from server (no reply code): "
             "\"hello there\";"),
        END,
    };
    static const struct step code_change[] = {
        FEED("220-mx.test\r\n250 oops\r\n", "",
             "FAILED 0 malformed reply from server (code changed inside a multi-line reply): "
             "\"250 oops\";"),
        END,
    };
    static const struct step one_xx[] = {
        FEED("199 odd\r\n", "", "FAILED 0 malformed reply from server (no reply code): "
             "\"199 odd\";"),
        END,
    };
    static const struct step long_code[] = {
        FEED("2200 x\r\n", "", "FAILED 0 malformed reply from server (no separator after the "
             "code): \"2200 x\";"),
        END,
    };
    static const struct step tab[] = {
        READY_PIPE,
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK "354\tgo\r\n", "",
             L_R_OK(0) "M 0 malformed reply from server (no separator after the code): "
             "\"354?go\";FAILED 0 malformed reply from server (no separator after the code): "
             "\"354?go\";"),
        END,
    };
    static const struct step unexpected[] = {
        READY_PIPE,
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED(MAIL_OK "354 what\r\n", "", "R0 0 unexpected reply to RCPT: 354 what;"
             "M 0 unexpected reply to RCPT: 354 what;"
             "FAILED 0 unexpected reply to RCPT: 354 what;"),
        END,
    };
    static const struct step unsolicited[] = {
        READY_PIPE,
        FEED("250 hello?\r\n", "", "FAILED 0 unexpected reply to nothing (the client was "
             "idle): 250 hello?;"),
        END,
    };
    static const struct step data_250[] = {
        READY_PIPE,
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK "250 sure\r\n", "", L_R_OK(0) "M 0 unexpected reply to DATA: 250 "
             "sure;FAILED 0 unexpected reply to DATA: 250 sure;"),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("malformed_words", &p, words);
    run("malformed_code_change", &p, code_change);
    run("malformed_1xx", &p, one_xx);
    run("malformed_long_code", &p, long_code);
    run("malformed_tab", &p, tab);
    run("unexpected_354", &p, unexpected);
    run("unsolicited", &p, unsolicited);
    run("data_250", &p, data_250);
}

static void nul_in_reply(void **state)
{
    (void)state;
    /* transcripts are C strings: fed by hand */
    struct smtp_client_params p = P_PLAIN;
    struct rec *r = rec_new(&p, 0);
    static const char g[] = "220 mx\0.test\r\n";
    size_t n = smtp_client_feed(r->c, g, sizeof g - 1);
    assert_int_equal(n, sizeof g - 1);
    assert_string_equal(r->log.data,
                        "FAILED 0 malformed reply from server (NUL octet): \"220 mx?.test\";");
    assert_int_equal(r->out.len, 0);
    rec_free(r);
}

static void long_lines(void **state)
{
    (void)state;
    char big[2000];
    /* a 1200-octet greeting line: read, cut to 510 octets of content */
    memcpy(big, "220 ", 4);
    memset(big + 4, 'a', 1194);
    memcpy(big + 1198, "\r\n", 3);
    struct smtp_client_params p = P_PLAIN;
    for (int mode = 0; mode < 3; mode++) {
        struct rec *r = rec_new(&p, 7);
        deliver(r, big, strlen(big), (enum feed_mode)mode);
        assert_string_equal(r->out.data, EHLO);
        deliver(r, EHLO_BARE, strlen(EHLO_BARE), (enum feed_mode)mode);
        assert_string_equal(r->log.data, L_READY);
        /* an over-long continuation line: cut, the reply goes on */
        buf_reset(&r->log);
        assert_int_equal(do_send(r, &M_ONE), 0);
        char line[1500];
        memcpy(line, "250-", 4);
        memset(line + 4, 'b', 1000);
        memcpy(line + 1004, "\r\n250 2.1.0 end\r\n", 18);
        deliver(r, line, strlen(line), (enum feed_mode)mode);
        deliver(r, "550 5.1.1 nope\r\n", 16, (enum feed_mode)mode);
        /* the text is cut at 511 octets: 508 b's, then nothing of "end" */
        assert_string_equal(r->log.data, "R0 550 5.1.1 nope;");
        assert_string_equal(r->out.data + strlen(EHLO), M1_MAIL_NOSIZE M1_RCPT0 "RSET\r\n");
        rec_free(r);
    }
}

static void reply_too_long(void **state)
{
    (void)state;
    struct smtp_client_params p = P_PLAIN;
    for (int mode = 0; mode < 3; mode += 2) {
        struct rec *r = rec_new(&p, 3);
        deliver(r, GREET, strlen(GREET), (enum feed_mode)mode);
        char line[502];
        memcpy(line, "250-", 4);
        memset(line + 4, 'k', 495);
        memcpy(line + 499, "\r\n", 3);
        for (int i = 0; i < 140 && !r->over; i++)
            deliver(r, line, strlen(line), (enum feed_mode)mode);
        assert_true(r->over);
        assert_string_equal(r->log.data, "FAILED 0 reply longer than 65536 octets;");
        assert_string_equal(r->out.data, EHLO);
        /* everything after is dropped */
        assert_int_equal(smtp_client_feed(r->c, "250 x\r\n", 7), 7);
        rec_free(r);
    }
    /* over-long lines without their end count too */
    struct rec *r = rec_new(&p, 3);
    deliver(r, GREET "250-x\r\n250-", strlen(GREET) + 11, FEED_WHOLE);
    char chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    for (int i = 0; i < 20 && !r->over; i++)
        deliver(r, chunk, sizeof chunk, FEED_WHOLE);
    assert_true(r->over);
    assert_string_equal(r->log.data, "FAILED 0 reply longer than 65536 octets;");
    rec_free(r);
}

static void dot_stuffing(void **state)
{
    (void)state;
    static const struct msg dots = {
        "a@x.test", { "b@y.test" },
        ".\r\n..\r\n.hidden\r\nnot.\r\n\r\n.\r\nlast line without CRLF", false,
    };
    static const struct msg bare = {
        "a@x.test", { "b@y.test" }, "one\ntwo\r\n.\nthree\rfour\r\n.", false,
    };
    static const struct msg empty = { "a@x.test", { "b@y.test" }, "", false };
    static const struct step steps[] = {
        READY_PIPE,
        SEND(&dots, 0, "MAIL FROM:<a@x.test> SIZE=51\r\nRCPT TO:<b@y.test>\r\nDATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO,
             "..\r\n...\r\n..hidden\r\nnot.\r\n\r\n..\r\nlast line without CRLF\r\n.\r\n",
             "R0 250 2.1.5 Ok;"),
        FEED(QUEUED, "", L_QUEUED),
        /* bare LF and CR become CRLF: no "\n.\n" reaches the next hop */
        SEND(&bare, 0, "MAIL FROM:<a@x.test> SIZE=29\r\nRCPT TO:<b@y.test>\r\nDATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, "one\r\ntwo\r\n..\r\nthree\r\nfour\r\n..\r\n.\r\n",
             "R0 250 2.1.5 Ok;"),
        FEED(QUEUED, "", L_QUEUED),
        SEND(&empty, 0, "MAIL FROM:<a@x.test> SIZE=0\r\nRCPT TO:<b@y.test>\r\nDATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, ".\r\n", "R0 250 2.1.5 Ok;"),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("dot_stuffing", &p, steps);
}

static void size_8bit_utf8(void **state)
{
    (void)state;
    static char body[1200];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    static const struct msg m8 = {
        "a@x.test", { "b@y.test" }, "Subject: caf\xc3\xa9\r\n\r\n\xff\r\n", false,
    };
    static const struct msg mu = {
        "j\xc3\xb6rg@x.test", { "b@\xc3\xa9xample.test" }, "x\r\n", true,
    };
    static const struct msg mu_unasked = {
        "j\xc3\xb6rg@x.test", { "b@y.test" }, "x\r\n", false,
    };
    static const struct msg bad_rcpt = {
        "a@x.test", { "b@y.test", "evil>\r\nRSET@x" }, "x\r\n", false,
    };
    static const struct msg bad_from = {
        "a@x.test> SIZE=1", { "b@y.test" }, "x\r\n", false,
    };
    static const struct msg routed = {
        "@relay.test:a@x.test", { "b@y.test" }, "x\r\n", false,
    };
    struct msg toobig = { "a@x.test", { "b@y.test" }, body, false };
    const struct step steps[] = {
        READY_PIPE,
        /* SIZE 1000: 1201 octets (with the CRLF added) cannot go */
        SEND(&toobig, -1, "", "M 554 5.3.4 message size 1201 exceeds the server's fixed "
             "maximum of 1000;"),
        SEND(&m8, 0, "MAIL FROM:<a@x.test> SIZE=21 BODY=8BITMIME\r\nRCPT TO:<b@y.test>\r\n"
             "DATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, "Subject: caf\xc3\xa9\r\n\r\n\xff\r\n.\r\n", "R0 250 2.1.5 Ok;"),
        FEED(QUEUED, "", L_QUEUED),
        SEND(&mu, 0, "MAIL FROM:<j\xc3\xb6rg@x.test> SIZE=3 SMTPUTF8\r\n"
             "RCPT TO:<b@\xc3\xa9xample.test>\r\nDATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, "x\r\n.\r\n", "R0 250 2.1.5 Ok;"),
        FEED(QUEUED, "", L_QUEUED),
        SEND(&mu_unasked, -1, "", "M 554 5.6.7 non-ASCII sender address without SMTPUTF8;"),
        SEND(&bad_rcpt, -1, "", "M 554 5.1.3 invalid recipient address: control character in command;"),
        SEND(&bad_from, -1, "", "M 554 5.1.7 invalid sender address: parameter of an "
             "extension not offered;"),
        SEND(&routed, -1, "", "M 554 5.1.7 invalid sender address: not a plain mailbox;"),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("size_8bit_utf8", &p, steps);

    static const struct step no_utf8[] = {
        READY_NOPIPE,
        SEND(&mu, -1, "", "M 554 5.6.7 server does not support SMTPUTF8;"),
        SEND(&m8, 0, "MAIL FROM:<a@x.test> SIZE=21 BODY=8BITMIME\r\n", ""),
        END,
    };
    run("no_smtputf8", &p, no_utf8);
}

static void abort_and_quit(void **state)
{
    (void)state;
    static const struct step abort_mid[] = {
        READY_PIPE,
        SEND(&M1, 0, M1_PIPE, ""),
        FEED(MAIL_OK RCPT_OK, "", L_R_OK(0)),
        ABORT("R1 0 connection reset;M 0 connection reset;FAILED 0 connection reset;"),
        FEED(RCPT_OK, "", ""),
        SEND(&M1, -1, "", ""),
        QUIT("", ""),
        END,
    };
    static const struct step abort_in_data[] = {
        READY_PIPE,
        SEND(&M_ONE, 0, "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n", ""),
        FEED(MAIL_OK RCPT_OK GO, M1_DATA, L_R_OK(0)),
        ABORT("M 0 connection reset;FAILED 0 connection reset;"),
        END,
    };
    static const struct step quit_lost[] = {
        READY_PIPE,
        QUIT("QUIT\r\n", ""),
        QUIT("", ""),
        ABORT("CLOSED 0 connection reset;"),
        END,
    };
    static const struct step quit_early[] = {
        FEED(GREET, EHLO, ""),
        QUIT("", "CLOSED 0 session ended by the client during EHLO;"),
        END,
    };
    static const struct step send_not_ready[] = {
        SEND(&M1, -1, "", ""),
        FEED(GREET, EHLO, ""),
        SEND(&M1, -1, "", ""),
        FEED(EHLO_PIPE, "", L_READY),
        SEND(&M1, 0, M1_PIPE, ""),
        SEND(&M1, -1, "", ""),
        END,
    };
    struct smtp_client_params p = P_PLAIN;
    run("abort_mid_transaction", &p, abort_mid);
    run("abort_in_data", &p, abort_in_data);
    run("quit_lost", &p, quit_lost);
    run("quit_early", &p, quit_early);
    run("send_not_ready", &p, send_not_ready);
}

/* ---- API details ---- */

static void extensions_and_params(void **state)
{
    (void)state;
    struct smtp_client_params p = P_PLAIN;
    struct rec *r = rec_new(&p, 0);
    deliver(r, GREET, strlen(GREET), FEED_WHOLE);
    const char ehlo[] = "250-mx.test greets you\r\n250-size 52428800\r\n250-pipelining\r\n"
                        "250-DSN\r\n250-AUTH=LOGIN PLAIN\r\n250 8BITMIME\r\n";
    deliver(r, ehlo, strlen(ehlo), FEED_WHOLE);
    assert_true(smtp_client_has(r->c, "PIPELINING"));
    assert_true(smtp_client_has(r->c, "8bitmime"));
    assert_true(smtp_client_has(r->c, "DSN"));
    assert_true(smtp_client_has(r->c, "AUTH"));
    assert_true(smtp_client_has(r->c, "AUTH=PLAIN"));
    assert_false(smtp_client_has(r->c, "SMTPUTF8"));
    assert_false(smtp_client_has(r->c, "STARTTLS"));
    assert_false(smtp_client_has(r->c, "XYZZY"));
    assert_int_equal(smtp_client_max_size(r->c), 52428800);
    rec_free(r);

    /* bad parameters */
    struct smtp_client_hooks h = { .write = h_write };
    struct smtp_client_params bad = { .helo_name = "two words" };
    assert_null(smtp_client_new(&bad, &h));
    bad.helo_name = "inject\r\nMAIL";
    assert_null(smtp_client_new(&bad, &h));
    bad.helo_name = "ok.test";
    bad.auth_user = "u";
    assert_null(smtp_client_new(&bad, &h));   /* no password */
    struct smtp_client_hooks nowrite = { 0 };
    struct smtp_client_params good = P_PLAIN;
    assert_null(smtp_client_new(&good, &nowrite));
    good.helo_name = NULL;   /* "localhost" */
    struct rec *r2 = rec_new(&good, 0);
    deliver(r2, GREET, strlen(GREET), FEED_WHOLE);
    assert_string_equal(r2->out.data, "EHLO localhost\r\n");
    rec_free(r2);
}

static void timeouts(void **state)
{
    (void)state;
    struct smtp_client_params p = P_PLAIN;
    struct rec *r = rec_new(&p, 0);
    assert_int_equal(smtp_client_write_timeout_ms(r->c), 180000);
    smtp_client_set_timeout_scale(r->c, 0.001);
    assert_int_equal(smtp_client_timeout_ms(r->c), 300);
    assert_int_equal(smtp_client_write_timeout_ms(r->c), 180);
    smtp_client_set_timeout_scale(r->c, 0.000001);
    assert_int_equal(smtp_client_timeout_ms(r->c), 1);
    smtp_client_set_timeout_scale(r->c, 1);
    deliver(r, GREET EHLO_NOPIPE, strlen(GREET EHLO_NOPIPE), FEED_WHOLE);
    assert_int_equal(smtp_client_timeout_ms(r->c), 0);
    assert_int_equal(do_send(r, &M_ONE), 0);
    assert_int_equal(smtp_client_timeout_ms(r->c), 300000);   /* MAIL */
    deliver(r, MAIL_OK, strlen(MAIL_OK), FEED_WHOLE);
    assert_int_equal(smtp_client_timeout_ms(r->c), 300000);   /* RCPT */
    deliver(r, RCPT_OK, strlen(RCPT_OK), FEED_WHOLE);
    assert_int_equal(smtp_client_timeout_ms(r->c), 120000);   /* DATA */
    deliver(r, GO, strlen(GO), FEED_WHOLE);
    assert_int_equal(smtp_client_timeout_ms(r->c), 600000);   /* end of data */
    deliver(r, QUEUED, strlen(QUEUED), FEED_WHOLE);
    assert_int_equal(smtp_client_timeout_ms(r->c), 0);
    rec_free(r);
}

/* message_done may start the next message at once */
struct chain {
    struct rec r;
    int sent;
};

static void chain_msg(void *arg, const struct smtp_client_reply *rep)
{
    struct chain *ch = arg;
    h_msg(&ch->r, rep);
    if (ch->sent < 3) {
        ch->sent++;
        assert_int_equal(do_send(&ch->r, &M_ONE), 0);
    }
}

static void send_from_message_done(void **state)
{
    (void)state;
    struct chain *ch = calloc(1, sizeof *ch);
    assert_non_null(ch);
    buf_init(&ch->r.out, 1 << 20);
    buf_init(&ch->r.log, 1 << 20);
    struct smtp_client_hooks h = { .arg = ch, .write = h_write, .event = h_event,
                                   .rcpt_done = h_rcpt, .message_done = chain_msg };
    struct smtp_client_params p = P_PLAIN;
    ch->r.c = smtp_client_new(&p, &h);
    assert_non_null(ch->r.c);
    /* h_write etc. take struct rec *: it is the first member */
    deliver(&ch->r, GREET EHLO_PIPE, strlen(GREET EHLO_PIPE), FEED_WHOLE);
    ch->sent = 1;
    assert_int_equal(do_send(&ch->r, &M_ONE), 0);
    /* three whole transactions' replies in one chunk */
    const char *all = MAIL_OK RCPT_OK GO QUEUED MAIL_OK RCPT_OK GO QUEUED MAIL_OK RCPT_OK GO QUEUED;
    buf_reset(&ch->r.out);
    deliver(&ch->r, all, strlen(all), FEED_WHOLE);
    const char *one = "MAIL FROM:<alice@sender.test> SIZE=22\r\n" M1_RCPT0 "DATA\r\n";
    char want[1024];
    snprintf(want, sizeof want, "%s%s%s%s%s", M1_DATA, one, M1_DATA, one, M1_DATA);
    assert_string_equal(ch->r.out.data, want);
    assert_int_equal(ch->sent, 3);
    smtp_client_free(ch->r.c);
    buf_free(&ch->r.out);
    buf_free(&ch->r.log);
    free(ch->r.pend);
    free(ch);
}

/* ---- the client against the real server engine ---- */

struct wire {
    struct smtp_client *c;
    struct smtp_session *s;
    struct buf to_server, to_client;
    bool server_closed, client_over;
    bool tls_pending;
    /* what arrived */
    char *msgs[8];
    size_t msglens[8];
    char froms[8][300];
    size_t nrcpts[8];
    int nmsgs;
    int ready, failed, closed;
    int done_code[8];
    int ndone;
    int rcpt_codes[8][4];
};

static void w_cwrite(void *arg, const char *d, size_t n)
{
    struct wire *w = arg;
    assert_false(w->client_over);
    assert_int_equal(buf_append(&w->to_server, d, n), 0);
}

static void w_swrite(void *arg, const char *d, size_t n)
{
    struct wire *w = arg;
    assert_int_equal(buf_append(&w->to_client, d, n), 0);
}

static void w_cstarttls(void *arg)
{
    struct wire *w = arg;
    w->tls_pending = true;
}

static void w_sstarttls(void *arg)
{
    (void)arg;
}

static void w_event(void *arg, enum smtp_client_event ev, const struct smtp_client_reply *r)
{
    struct wire *w = arg;
    (void)r;
    if (ev == SMTP_CLIENT_READY)
        w->ready++;
    else if (ev == SMTP_CLIENT_FAILED) {
        w->failed++;
        w->client_over = true;
        fprintf(stderr, "FAILED: %d %s\n", r->code, r->text);
    } else {
        w->closed++;
        w->client_over = true;
    }
}

static void w_rcpt(void *arg, size_t i, const struct smtp_client_reply *r)
{
    struct wire *w = arg;
    if (i < 4)
        w->rcpt_codes[w->ndone][i] = r->code;
}

static void w_done(void *arg, const struct smtp_client_reply *r)
{
    struct wire *w = arg;
    w->done_code[w->ndone++] = r->code;
}

static bool w_check_rcpt(void *arg, const struct smtp_envelope *env, const char *rcpt,
                         struct smtp_reply *rep)
{
    (void)arg;
    (void)env;
    if (strncmp(rcpt, "nobody@", 7) == 0) {
        smtp_reply_set(rep, 550, "5.1.1", "<%s>: User unknown", rcpt);
        return false;
    }
    return true;
}

static void w_data(void *arg, const struct smtp_envelope *env, char *msg, size_t len)
{
    struct wire *w = arg;
    assert_true(w->nmsgs < 8);
    w->msgs[w->nmsgs] = msg;
    w->msglens[w->nmsgs] = len;
    snprintf(w->froms[w->nmsgs], sizeof w->froms[0], "%s", env->mail_from);
    w->nrcpts[w->nmsgs] = env->nrcpt;
    w->nmsgs++;
    struct smtp_reply rep;
    smtp_reply_set(&rep, 250, "2.0.0", "Ok: queued as %d", w->nmsgs);
    smtp_session_data_done(w->s, &rep);
}

static void w_sclose(void *arg)
{
    struct wire *w = arg;
    w->server_closed = true;
}

/* Moves bytes both ways (split at odd points) until nothing moves. */
static void w_pump(struct wire *w, unsigned *seed)
{
    for (int rounds = 0; rounds < 100000; rounds++) {
        bool moved = false;
        if (w->to_server.len && !w->server_closed) {
            size_t n = w->to_server.len;
            size_t k = (size_t)(rand_r(seed) % 97) + 1;
            if (k < n)
                n = k;
            size_t used = smtp_session_feed(w->s, w->to_server.data, n);
            if (used) {
                memmove(w->to_server.data, w->to_server.data + used, w->to_server.len - used);
                w->to_server.len -= used;
                moved = true;
            } else if (n < w->to_server.len) {
                /* an incomplete line: offer more next time */
                size_t all = smtp_session_feed(w->s, w->to_server.data, w->to_server.len);
                if (all) {
                    memmove(w->to_server.data, w->to_server.data + all, w->to_server.len - all);
                    w->to_server.len -= all;
                    moved = true;
                }
            }
        }
        if (w->to_client.len && !w->client_over) {
            size_t n = w->to_client.len;
            size_t k = (size_t)(rand_r(seed) % 13) + 1;
            if (k < n)
                n = k;
            size_t used = smtp_client_feed(w->c, w->to_client.data, n);
            if (used == 0 && n < w->to_client.len)
                used = smtp_client_feed(w->c, w->to_client.data, w->to_client.len);
            if (used) {
                memmove(w->to_client.data, w->to_client.data + used, w->to_client.len - used);
                w->to_client.len -= used;
                moved = true;
            }
        }
        if (w->tls_pending && w->to_server.len == 0) {
            /* "TLS": both ends just say it is up */
            w->tls_pending = false;
            smtp_session_tls_started(w->s);
            smtp_client_tls_done(w->c, true);
            moved = true;
        }
        if (!moved)
            return;
    }
    fail_msg("the wire never settled");
}

static void with_server(void **state)
{
    (void)state;
    /* messages with dots, empty lines, 8-bit octets, no final CRLF */
    static const char *const bodies[] = {
        "From: a@sender.test\r\nTo: b@rcpt.test\r\nSubject: one\r\n\r\nHello.\r\n",
        "Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n\r\n.\r\nend\r\n",
        "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n",
        "Subject: no final line end\r\n\r\nlast",
        "Subject: refused recipient\r\n\r\nx\r\n",
    };
    static const char *const want[] = {
        "From: a@sender.test\r\nTo: b@rcpt.test\r\nSubject: one\r\n\r\nHello.\r\n",
        "Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n\r\n.\r\nend\r\n",
        "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n",
        "Subject: no final line end\r\n\r\nlast\r\n",
        "Subject: refused recipient\r\n\r\nx\r\n",
    };
    for (unsigned seed = 1; seed <= 20; seed++) {
        for (int tls = 0; tls < 2; tls++) {
            struct wire *w = calloc(1, sizeof *w);
            assert_non_null(w);
            buf_init(&w->to_server, 1 << 20);
            buf_init(&w->to_client, 1 << 20);
            struct smtp_session_params sp = { .hostname = "mx.test", .tls_available = tls,
                                              .max_message_size = 100000 };
            struct smtp_hooks sh = { .arg = w, .write = w_swrite, .starttls = w_sstarttls,
                                     .check_rcpt = w_check_rcpt, .data = w_data,
                                     .close = w_sclose };
            w->s = smtp_session_new(&sp, &sh);
            struct smtp_client_params cp = { .helo_name = "client.test",
                                             .tls = tls ? SMTP_TLS_REQUIRED : SMTP_TLS_NEVER,
                                             .tls_available = tls };
            struct smtp_client_hooks ch = { .arg = w, .write = w_cwrite,
                                            .starttls = w_cstarttls, .event = w_event,
                                            .rcpt_done = w_rcpt, .message_done = w_done };
            w->c = smtp_client_new(&cp, &ch);
            assert_non_null(w->s);
            assert_non_null(w->c);
            unsigned sd = seed;
            smtp_session_start(w->s);
            w_pump(w, &sd);
            assert_int_equal(w->ready, 1);
            assert_true(smtp_client_has(w->c, "PIPELINING"));
            assert_int_equal(smtp_client_max_size(w->c), 100000);
            for (int m = 0; m < 5; m++) {
                const char *rcpts[3] = { "b@rcpt.test", "c@rcpt.test", "nobody@rcpt.test" };
                size_t n = m == 4 ? 3 : 2;
                if (m == 4)
                    rcpts[0] = "nobody@rcpt.test";
                assert_int_equal(smtp_client_send(w->c, m == 1 ? "" : "a@sender.test", false,
                                                  rcpts, n, bodies[m], strlen(bodies[m])), 0);
                w_pump(w, &sd);
                assert_int_equal(w->ndone, m + 1);
                assert_int_equal(w->done_code[m], 250);
            }
            /* every RCPT refused: nothing arrives, the session goes on */
            const char *nobody[1] = { "nobody@rcpt.test" };
            assert_int_equal(smtp_client_send(w->c, "a@sender.test", false, nobody, 1, "x\r\n", 3),
                             0);
            w_pump(w, &sd);
            assert_int_equal(w->ndone, 6);
            assert_int_equal(w->done_code[5], 550);
            assert_int_equal(w->rcpt_codes[5][0], 550);
            smtp_client_quit(w->c);
            w_pump(w, &sd);
            assert_int_equal(w->closed, 1);
            assert_int_equal(w->failed, 0);
            assert_true(w->server_closed);
            assert_int_equal(w->nmsgs, 5);
            for (int m = 0; m < 5; m++) {
                if (w->msglens[m] != strlen(want[m]) ||
                    memcmp(w->msgs[m], want[m], w->msglens[m]) != 0)
                    fail_msg("seed %u message %d differs: %.*s", seed, m, (int)w->msglens[m],
                             w->msgs[m]);
                free(w->msgs[m]);
            }
            assert_string_equal(w->froms[1], "");
            assert_int_equal(w->nrcpts[0], 2);
            assert_int_equal(w->nrcpts[4], 1);
            assert_int_equal(w->rcpt_codes[4][0], 550);
            assert_int_equal(w->rcpt_codes[4][1], 250);
            assert_int_equal(w->rcpt_codes[4][2], 550);
            smtp_client_free(w->c);
            smtp_session_free(w->s);
            buf_free(&w->to_server);
            buf_free(&w->to_client);
            free(w);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pipelined_two_messages),
        cmocka_unit_test(one_at_a_time),
        cmocka_unit_test(helo_fallback),
        cmocka_unit_test(hello_refused),
        cmocka_unit_test(greetings),
        cmocka_unit_test(starttls),
        cmocka_unit_test(auth),
        cmocka_unit_test(refused_recipients),
        cmocka_unit_test(mail_and_data_refused),
        cmocka_unit_test(closing_421),
        cmocka_unit_test(temporary_and_permanent),
        cmocka_unit_test(multiline_and_enhanced),
        cmocka_unit_test(enhanced_codes),
        cmocka_unit_test(malformed),
        cmocka_unit_test(nul_in_reply),
        cmocka_unit_test(long_lines),
        cmocka_unit_test(reply_too_long),
        cmocka_unit_test(dot_stuffing),
        cmocka_unit_test(size_8bit_utf8),
        cmocka_unit_test(abort_and_quit),
        cmocka_unit_test(extensions_and_params),
        cmocka_unit_test(timeouts),
        cmocka_unit_test(send_from_message_done),
        cmocka_unit_test(with_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
