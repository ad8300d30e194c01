/* The SMTP client session engine (RFC 5321 client side, with STARTTLS
 * RFC 3207, AUTH PLAIN RFC 4954/4616, PIPELINING RFC 2920, SIZE RFC 1870,
 * 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, enhanced codes RFC 2034/3463): an
 * explicit state machine whose reply table {state, name, timeout, handler}
 * says what each server reply answers, mirroring the server engine's
 * command table (smtp_session.c). It reads the bytes the transport feeds it
 * and writes commands through a hook; it owns no socket, timer or TLS.
 * Reply lines are not buffered here: an incomplete line stays with the
 * transport (the feed returns what it consumed). It does not choose hosts,
 * retry, or decide what an outcome means for a recipient (delivery does).
 * See smtp_client.h and docs/delivery_client.md. */
#include "smtp/smtp_client.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_cmd.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strview.h"

enum state {
    ST_GREETING,   /* connected, waiting for the 220 */
    ST_EHLO,       /* EHLO sent */
    ST_HELO,       /* HELO sent (EHLO was refused with 5xx) */
    ST_STARTTLS,   /* STARTTLS sent */
    ST_TLS_WAIT,   /* 220 to STARTTLS: the transport runs the handshake */
    ST_AUTH,       /* AUTH PLAIN sent (with its initial response) */
    ST_READY,      /* idle: smtp_client_send may start a transaction */
    ST_MAIL,       /* the next reply answers MAIL */
    ST_RCPT,       /* ... RCPT number t.rcpt_next */
    ST_DATA,       /* ... DATA */
    ST_DOT,        /* ... the end of the data */
    ST_RSET,       /* ... RSET after a failed transaction */
    ST_QUIT,       /* QUIT sent */
    ST_FAILED,
    ST_CLOSED,
    ST__COUNT
};

/* Extensions from the EHLO reply. */
enum {
    EXT_SIZE       = 1u << 0,
    EXT_PIPELINING = 1u << 1,
    EXT_8BITMIME   = 1u << 2,
    EXT_SMTPUTF8   = 1u << 3,
    EXT_STARTTLS   = 1u << 4,
    EXT_AUTH       = 1u << 5,
    EXT_ENHANCED   = 1u << 6,
    EXT_CHUNKING   = 1u << 7,   /* recorded, never used (no BDAT) */
    EXT_DSN        = 1u << 8,   /* recorded, not used yet */
};

static const struct {
    const char *name;
    unsigned bit;
} ext_names[] = {
    { "SIZE", EXT_SIZE },         { "PIPELINING", EXT_PIPELINING },
    { "8BITMIME", EXT_8BITMIME }, { "SMTPUTF8", EXT_SMTPUTF8 },
    { "STARTTLS", EXT_STARTTLS }, { "AUTH", EXT_AUTH },
    { "ENHANCEDSTATUSCODES", EXT_ENHANCED }, { "CHUNKING", EXT_CHUNKING },
    { "DSN", EXT_DSN },
};

/* The message in flight. */
struct txn {
    bool active;
    bool pipelined;
    char **rcpts;             /* copies, for RCPT lines written one by one */
    size_t nrcpt;
    size_t rcpt_next;         /* the recipient whose RCPT reply comes next */
    size_t rcpt_sent;         /* RCPT lines written */
    size_t accepted;          /* 2xx to RCPT */
    bool mail_ok;
    struct smtp_client_reply mail_reply;   /* a MAIL refusal */
    bool have_first_refusal;
    struct smtp_client_reply first_refusal; /* the first RCPT refusal */
    bool have_outcome;        /* message_done's reply is decided (RSET pending) */
    struct smtp_client_reply outcome;
    char *data;               /* the data to send after 354, dot-stuffed, CRLF.CRLF */
    size_t datalen;
};

struct smtp_client {
    struct smtp_client_hooks h;
    char helo[SMTP_MAX_DOMAIN_LEN + 1];
    enum smtp_client_tls tls;
    bool tls_available;
    char *auth_user;
    char *auth_password;
    double timeout_scale;

    enum state state;
    bool in_tls;
    unsigned ext;             /* offered, valid from READY */
    bool auth_plain;
    size_t max_size;

    /* EHLO keywords as they arrive (committed on the 2xx final line) */
    unsigned ext_pending;
    bool auth_plain_pending;
    size_t max_size_pending;

    /* the reply being read */
    struct smtp_client_reply rep;
    size_t rep_textlen;
    size_t rep_total;         /* octets of this reply so far */
    size_t rep_lines;
    bool rep_active;          /* a continuation line was read */
    bool skipping;            /* inside an over-long line, discarding to its LF */
    bool skip_counts;         /* ... and its octets belong to an unfinished reply */
    bool tls_cut;             /* 220 to STARTTLS read: drop the rest of this feed */

    struct txn t;
};

/* ---- small helpers ---- */

static bool terminal(const struct smtp_client *c)
{
    return c->state == ST_FAILED || c->state == ST_CLOSED;
}

__attribute__((format(printf, 4, 5)))
static void reply_set(struct smtp_client_reply *r, int code, const char *enh, const char *fmt, ...)
{
    memset(r, 0, sizeof *r);
    r->code = code;
    snprintf(r->enhanced, sizeof r->enhanced, "%s", enh ? enh : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
}

static void out(struct smtp_client *c, const char *data, size_t len)
{
    if (!terminal(c) && len)
        c->h.write(c->h.arg, data, len);
}

static void out_str(struct smtp_client *c, const char *s)
{
    out(c, s, strlen(s));
}

/* Printable ASCII copy of up to max octets of p (for reasons in replies). */
static void sanitize(char *dst, size_t dstlen, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < dstlen; i++) {
        unsigned char ch = (unsigned char)p[i];
        dst[o++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    if (dstlen)
        dst[o] = '\0';
}

/* RFC 3463 §2: class "." subject "." detail, 1-3 digits each; returns its
 * length when p[0..n) starts with one followed by a space or the end. */
static size_t enhanced_prefix(const char *p, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 3; part++) {
        size_t d = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && d < 3) {
            i++;
            d++;
        }
        if (d == 0 || (part == 0 && d != 1))
            return 0;
        if (part < 2) {
            if (i >= n || p[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < n && p[i] != ' ')
        return 0;
    return i;
}

/* ---- ending ---- */

static void txn_clear(struct smtp_client *c)
{
    for (size_t i = 0; i < c->t.nrcpt; i++)
        free(c->t.rcpts[i]);
    free(c->t.rcpts);
    free(c->t.data);
    memset(&c->t, 0, sizeof c->t);
}

/* Everything still owed to the delivery gets r (a decided outcome keeps
 * its own reply), then the event. QUIT first when the server is sane. */
static void end_session(struct smtp_client *c, const struct smtp_client_reply *r, bool quit,
                        enum smtp_client_event ev)
{
    if (terminal(c))
        return;
    if (quit)
        out_str(c, "QUIT\r\n");
    c->state = ev == SMTP_CLIENT_CLOSED ? ST_CLOSED : ST_FAILED;
    c->skipping = false;
    if (c->t.active) {
        struct txn t = c->t;   /* the hooks may look at nothing of ours */
        memset(&c->t, 0, sizeof c->t);
        for (size_t i = t.rcpt_next; i < t.nrcpt; i++)
            if (c->h.rcpt_done)
                c->h.rcpt_done(c->h.arg, i, r);
        if (c->h.message_done)
            c->h.message_done(c->h.arg, t.have_outcome ? &t.outcome : r);
        c->t = t;
        txn_clear(c);
    }
    if (c->h.event)
        c->h.event(c->h.arg, ev, r);
}

__attribute__((format(printf, 3, 4)))
static void fail_local(struct smtp_client *c, bool quit, const char *fmt, ...)
{
    struct smtp_client_reply r;
    memset(&r, 0, sizeof r);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.text, sizeof r.text, fmt, ap);
    va_end(ap);
    end_session(c, &r, quit, SMTP_CLIENT_FAILED);
}

/* The server answered something that makes no sense at this step. */
static void protocol_error(struct smtp_client *c, const char *step,
                           const struct smtp_client_reply *r)
{
    char text[128];
    sanitize(text, sizeof text, r->text, strnlen(r->text, sizeof r->text));
    fail_local(c, false, "unexpected reply to %s: %d %s", step, r->code, text);
}

/* ---- the session's steps ---- */

static void write_ehlo(struct smtp_client *c, bool esmtp)
{
    char line[SMTP_MAX_DOMAIN_LEN + 8];
    int n = snprintf(line, sizeof line, "%s %s\r\n", esmtp ? "EHLO" : "HELO", c->helo);
    c->ext_pending = 0;
    c->auth_plain_pending = false;
    c->max_size_pending = 0;
    c->state = esmtp ? ST_EHLO : ST_HELO;
    out(c, line, (size_t)n);
}

static void ready(struct smtp_client *c, const struct smtp_client_reply *r)
{
    c->state = ST_READY;
    if (c->h.event)
        c->h.event(c->h.arg, SMTP_CLIENT_READY, r);
}

static void write_auth(struct smtp_client *c)
{
    size_t ulen = strlen(c->auth_user), plen = strlen(c->auth_password);
    size_t rawlen = ulen + plen + 2;
    unsigned char raw[SMTP_MAX_AUTH_LINE_LEN];
    char line[SMTP_MAX_AUTH_LINE_LEN + 16];
    /* lengths were checked by smtp_client_new */
    raw[0] = '\0';
    memcpy(raw + 1, c->auth_user, ulen);
    raw[1 + ulen] = '\0';
    memcpy(raw + 2 + ulen, c->auth_password, plen);
    memcpy(line, "AUTH PLAIN ", 11);
    sodium_bin2base64(line + 11, sizeof line - 13, raw, rawlen, sodium_base64_VARIANT_ORIGINAL);
    size_t n = strlen(line);
    line[n++] = '\r';
    line[n++] = '\n';
    c->state = ST_AUTH;
    out(c, line, n);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(line, sizeof line);
}

/* After EHLO/HELO (and after a refused STARTTLS): AUTH or READY. */
static void after_tls_step(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (c->auth_user) {
        if (!c->in_tls) {
            fail_local(c, true, "AUTH requires TLS, and the session is not encrypted");
            return;
        }
        if (!(c->ext & EXT_AUTH) || !c->auth_plain) {
            fail_local(c, true, "AUTH PLAIN required but not offered");
            return;
        }
        write_auth(c);
        return;
    }
    ready(c, r);
}

/* EHLO/HELO answered with 2xx. */
static void after_hello(struct smtp_client *c, const struct smtp_client_reply *r)
{
    bool can_tls = c->tls_available && c->h.starttls;
    if (!c->in_tls && c->tls != SMTP_TLS_NEVER) {
        if ((c->ext & EXT_STARTTLS) && can_tls) {
            c->state = ST_STARTTLS;
            out_str(c, "STARTTLS\r\n");
            return;
        }
        if (c->tls == SMTP_TLS_REQUIRED) {
            if (c->ext & EXT_STARTTLS)
                fail_local(c, true, "STARTTLS required but TLS is not available here");
            else
                fail_local(c, true, "STARTTLS required but not offered");
            return;
        }
    }
    after_tls_step(c, r);
}

static void on_greeting(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code != 220) {
        /* 554 (RFC 5321 §3.1) or anything else: no service here */
        end_session(c, r, true, SMTP_CLIENT_FAILED);
        return;
    }
    write_ehlo(c, true);
}

static void on_ehlo(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code / 100 == 5) {
        write_ehlo(c, false);   /* RFC 5321 §3.2: fall back to HELO */
        return;
    }
    if (r->code / 100 != 2) {
        end_session(c, r, true, SMTP_CLIENT_FAILED);
        return;
    }
    c->ext = c->ext_pending;
    c->auth_plain = c->auth_plain_pending;
    c->max_size = (c->ext & EXT_SIZE) ? c->max_size_pending : 0;
    after_hello(c, r);
}

static void on_helo(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code / 100 != 2) {
        end_session(c, r, true, SMTP_CLIENT_FAILED);
        return;
    }
    c->ext = 0;
    c->auth_plain = false;
    c->max_size = 0;
    after_hello(c, r);
}

static void on_starttls(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 220) {
        c->state = ST_TLS_WAIT;
        /* whatever follows the 220 in the clear is dropped (RFC 3207 §4.2;
         * the client side of CVE-2011-0411, "response injection") */
        c->tls_cut = true;
        c->h.starttls(c->h.arg);
        return;
    }
    if (c->tls == SMTP_TLS_REQUIRED) {
        end_session(c, r, true, SMTP_CLIENT_FAILED);
        return;
    }
    char text[128];
    sanitize(text, sizeof text, r->text, strnlen(r->text, sizeof r->text));
    log_msg(LOG_WARN, "smtp_client", "event=starttls_refused code=%d reply=\"%s\" action=plaintext",
            r->code, text);
    after_tls_step(c, r);
}

static void on_auth(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code / 100 == 2) {
        ready(c, r);
        return;
    }
    /* 334 would ask for more (we sent the initial response): the server
     * now waits for a response line, so QUIT would not be understood */
    end_session(c, r, r->code != 334, SMTP_CLIENT_FAILED);
}

static void on_idle(struct smtp_client *c, const struct smtp_client_reply *r)
{
    protocol_error(c, "nothing (the client was idle)", r);
}

static void on_quit(struct smtp_client *c, const struct smtp_client_reply *r)
{
    end_session(c, r, false, SMTP_CLIENT_CLOSED);
}

/* ---- the transaction ---- */

static void write_rcpt(struct smtp_client *c, struct buf *b, size_t i)
{
    struct buf tmp;
    char storage[SMTP_MAX_PATH_LEN + 16];
    if (!b) {
        buf_init_fixed(&tmp, storage, sizeof storage);
        b = &tmp;
    }
    /* the address was checked by smtp_client_send: it fits */
    if (buf_printf(b, "RCPT TO:<%s>\r\n", c->t.rcpts[i]) != 0)
        return;
    c->t.rcpt_sent++;
    if (b == &tmp)
        out(c, tmp.data, tmp.len);
}

static void write_rset(struct smtp_client *c)
{
    c->state = ST_RSET;
    out_str(c, "RSET\r\n");
}

/* The transaction cannot complete: message_done's reply is the MAIL
 * refusal, else the first RCPT refusal when none was accepted, else the
 * DATA refusal. */
static void decide_outcome(struct smtp_client *c, const struct smtp_client_reply *data_reply)
{
    if (c->t.have_outcome)
        return;
    if (!c->t.mail_ok)
        c->t.outcome = c->t.mail_reply;
    else if (c->t.accepted == 0 && c->t.have_first_refusal)
        c->t.outcome = c->t.first_refusal;
    else if (data_reply)
        c->t.outcome = *data_reply;
    else
        reply_set(&c->t.outcome, 554, "5.5.1", "no valid recipients");
    c->t.have_outcome = true;
}

static void txn_abandon(struct smtp_client *c, const struct smtp_client_reply *data_reply)
{
    decide_outcome(c, data_reply);
    write_rset(c);
}

/* message_done with the client READY again. */
static void txn_finish(struct smtp_client *c, const struct smtp_client_reply *r)
{
    struct smtp_client_reply done = *r;
    txn_clear(c);
    c->state = ST_READY;
    if (c->h.message_done)
        c->h.message_done(c->h.arg, &done);
}

static bool good_txn(const struct smtp_client *c)
{
    return c->t.mail_ok && c->t.accepted > 0;
}

static void on_mail(struct smtp_client *c, const struct smtp_client_reply *r)
{
    int cls = r->code / 100;
    if (cls != 2 && cls != 4 && cls != 5) {
        protocol_error(c, "MAIL", r);
        return;
    }
    c->t.mail_ok = cls == 2;
    if (!c->t.mail_ok)
        c->t.mail_reply = *r;
    if (c->t.pipelined) {
        c->state = ST_RCPT;   /* RCPTs and DATA are on their way */
        return;
    }
    if (!c->t.mail_ok) {
        /* every recipient shares the refusal, as when pipelining */
        for (size_t i = 0; i < c->t.nrcpt; i++) {
            c->t.rcpt_next = i + 1;
            if (c->h.rcpt_done)
                c->h.rcpt_done(c->h.arg, i, r);
            if (terminal(c))
                return;
        }
        txn_abandon(c, NULL);
        return;
    }
    c->state = ST_RCPT;
    write_rcpt(c, NULL, 0);
}

static void on_rcpt(struct smtp_client *c, const struct smtp_client_reply *r)
{
    int cls = r->code / 100;
    if (cls != 2 && cls != 4 && cls != 5) {
        protocol_error(c, "RCPT", r);
        return;
    }
    size_t i = c->t.rcpt_next++;
    const struct smtp_client_reply *mine = c->t.mail_ok ? r : &c->t.mail_reply;
    if (c->t.mail_ok) {
        if (cls == 2)
            c->t.accepted++;
        else if (!c->t.have_first_refusal) {
            c->t.first_refusal = *r;
            c->t.have_first_refusal = true;
        }
    }
    if (c->h.rcpt_done)
        c->h.rcpt_done(c->h.arg, i, mine);
    if (terminal(c))
        return;
    if (c->t.rcpt_next < c->t.nrcpt) {
        if (!c->t.pipelined)
            write_rcpt(c, NULL, c->t.rcpt_next);
        return;
    }
    if (c->t.pipelined) {
        c->state = ST_DATA;   /* DATA was sent with the RCPTs */
        return;
    }
    if (good_txn(c)) {
        c->state = ST_DATA;
        out_str(c, "DATA\r\n");
        return;
    }
    txn_abandon(c, NULL);   /* every RCPT refused: RSET instead of DATA */
}

static void on_data(struct smtp_client *c, const struct smtp_client_reply *r)
{
    int cls = r->code / 100;
    if (r->code == 354) {
        if (good_txn(c)) {
            c->state = ST_DOT;
            char *d = c->t.data;
            size_t n = c->t.datalen;
            c->t.data = NULL;
            c->t.datalen = 0;
            out(c, d, n);
            free(d);
            return;
        }
        /* RFC 2920 §3.1: DATA accepted although nothing can be sent (MAIL
         * or every RCPT refused): send an empty message, then RSET */
        decide_outcome(c, NULL);
        c->state = ST_DOT;
        out_str(c, ".\r\n");
        return;
    }
    if (cls != 4 && cls != 5) {
        protocol_error(c, "DATA", r);
        return;
    }
    /* DATA refused: 503/554 expected when nothing was accepted */
    txn_abandon(c, r);
}

static void on_dot(struct smtp_client *c, const struct smtp_client_reply *r)
{
    int cls = r->code / 100;
    if (cls != 2 && cls != 4 && cls != 5) {
        protocol_error(c, "the end of the data", r);
        return;
    }
    if (c->t.have_outcome) {   /* the empty message of a failed pipeline */
        write_rset(c);
        return;
    }
    txn_finish(c, r);
}

static void on_rset(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code / 100 != 2) {
        /* message_done still gets the decided outcome (end_session) */
        int cls = r->code / 100;
        end_session(c, r, cls == 4 || cls == 5, SMTP_CLIENT_FAILED);
        return;
    }
    struct smtp_client_reply outcome = c->t.outcome;
    txn_finish(c, &outcome);
}

/* ---- the reply table ---- */

static const struct step {
    const char *name;
    unsigned timeout_s;        /* RFC 5321 §4.5.3.2; 0: nothing awaited */
    void (*reply)(struct smtp_client *c, const struct smtp_client_reply *r);
} steps[ST__COUNT] = {
    [ST_GREETING] = { "greeting", 300, on_greeting },  /* §4.5.3.2.1 */
    [ST_EHLO]     = { "EHLO", 300, on_ehlo },
    [ST_HELO]     = { "HELO", 300, on_helo },
    [ST_STARTTLS] = { "STARTTLS", 300, on_starttls },
    [ST_TLS_WAIT] = { "TLS handshake", 300, NULL },
    [ST_AUTH]     = { "AUTH", 300, on_auth },
    [ST_READY]    = { "idle", 0, on_idle },
    [ST_MAIL]     = { "MAIL", 300, on_mail },           /* §4.5.3.2.2 */
    [ST_RCPT]     = { "RCPT", 300, on_rcpt },           /* §4.5.3.2.3 */
    [ST_DATA]     = { "DATA", 120, on_data },           /* §4.5.3.2.4 */
    [ST_DOT]      = { "end of data", 600, on_dot },     /* §4.5.3.2.6 */
    [ST_RSET]     = { "RSET", 300, on_rset },
    [ST_QUIT]     = { "QUIT", 300, on_quit },
    [ST_FAILED]   = { "failed", 0, NULL },
    [ST_CLOSED]   = { "closed", 0, NULL },
};

#define DATA_BLOCK_TIMEOUT_S 180   /* §4.5.3.2.5 */

/* ---- reading replies ---- */

static void rep_reset(struct smtp_client *c)
{
    memset(&c->rep, 0, sizeof c->rep);
    c->rep_textlen = 0;
    c->rep_total = 0;
    c->rep_lines = 0;
    c->rep_active = false;
}

static void garbage(struct smtp_client *c, const char *why, const char *p, size_t n)
{
    char shown[80];
    sanitize(shown, sizeof shown, p, n < 64 ? n : 64);
    rep_reset(c);
    fail_local(c, false, "malformed reply from server (%s): \"%s\"", why, shown);
}

/* One EHLO keyword line (RFC 5321 §4.1.1.1: ehlo-keyword *(SP ehlo-param)). */
static void ehlo_keyword(struct smtp_client *c, const char *p, size_t n)
{
    struct sv line = sv_make(p, n);
    size_t sp = sv_find(line, ' ');
    struct sv kw = sv_sub(line, 0, sp);
    struct sv params = sv_sub(line, sp + 1, line.len);
    /* the old "AUTH=PLAIN LOGIN" form some servers still send */
    size_t eq = sv_find(kw, '=');
    if (eq < kw.len && sv_eq_ci_cstr(sv_sub(kw, 0, eq), "AUTH")) {
        params = sv_sub(line, eq + 1, line.len);
        kw = sv_sub(kw, 0, eq);
    }
    for (size_t i = 0; i < sizeof ext_names / sizeof ext_names[0]; i++) {
        if (!sv_eq_ci_cstr(kw, ext_names[i].name))
            continue;
        c->ext_pending |= ext_names[i].bit;
        if (ext_names[i].bit == EXT_SIZE) {
            /* RFC 1870: SIZE [number]; absent or 0 means no fixed limit */
            size_t v = 0;
            bool ok = params.len > 0;
            for (size_t k = 0; k < params.len && ok; k++) {
                char d = params.p[k];
                if (d < '0' || d > '9') {
                    ok = false;
                    break;
                }
                if (v > (SIZE_MAX - 9) / 10)
                    v = SIZE_MAX;   /* saturate: larger than anything we send */
                else
                    v = v * 10 + (size_t)(d - '0');
            }
            c->max_size_pending = ok ? v : 0;
        } else if (ext_names[i].bit == EXT_AUTH) {
            struct sv rest = params;
            while (rest.len) {
                size_t e = sv_find(rest, ' ');
                if (sv_eq_ci_cstr(sv_sub(rest, 0, e), "PLAIN"))
                    c->auth_plain_pending = true;
                rest = sv_sub(rest, e + 1, rest.len);
            }
        }
        return;
    }
}

/* One reply line: content p[0..n) without CR/LF; octets is what it took
 * on the wire (for the 64 KiB bound). */
static void reply_line(struct smtp_client *c, const char *p, size_t n, size_t octets)
{
    if (memchr(p, '\0', n)) {
        garbage(c, "NUL octet", p, n);
        return;
    }
    if (n < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
        p[2] > '9') {
        garbage(c, "no reply code", p, n);
        return;
    }
    char sep = n > 3 ? p[3] : ' ';
    if (sep != ' ' && sep != '-') {
        garbage(c, "no separator after the code", p, n);
        return;
    }
    int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (c->rep_active && code != c->rep.code) {
        garbage(c, "code changed inside a multi-line reply", p, n);
        return;
    }
    c->rep_total += octets;
    if (c->rep_total > SMTP_CLIENT_REPLY_MAX) {
        rep_reset(c);
        fail_local(c, false, "reply longer than %d octets", SMTP_CLIENT_REPLY_MAX);
        return;
    }
    c->rep.code = code;
    const char *text = n > 4 ? p + 4 : p + n;
    size_t tlen = n > 4 ? n - 4 : 0;

    if (c->state == ST_EHLO && code / 100 == 2 && c->rep_lines > 0)
        ehlo_keyword(c, text, tlen);
    c->rep_lines++;

    size_t el = enhanced_prefix(text, tlen);
    if (el && text[0] - '0' == code / 100) {
        if (!c->rep.enhanced[0] && el < sizeof c->rep.enhanced) {
            memcpy(c->rep.enhanced, text, el);
            c->rep.enhanced[el] = '\0';
        }
        text += el;
        tlen -= el;
        if (tlen && text[0] == ' ') {
            text++;
            tlen--;
        }
    }
    size_t room = sizeof c->rep.text - 1;
    if (c->rep_lines > 1 && c->rep_textlen < room)
        c->rep.text[c->rep_textlen++] = '\n';
    size_t take = tlen < room - c->rep_textlen ? tlen : room - c->rep_textlen;
    sanitize(c->rep.text + c->rep_textlen, take + 1, text, take);
    c->rep_textlen += take;
    c->rep.text[c->rep_textlen] = '\0';

    if (sep == '-') {
        c->rep_active = true;
        return;
    }
    struct smtp_client_reply r = c->rep;
    rep_reset(c);
    if (r.code == 421 && c->state != ST_QUIT) {
        /* the server is closing (RFC 5321 §3.8): every outcome is this */
        end_session(c, &r, false, SMTP_CLIENT_FAILED);
        return;
    }
    if (steps[c->state].reply)
        steps[c->state].reply(c, &r);
}

size_t smtp_client_feed(struct smtp_client *c, const char *data, size_t len)
{
    if (!c || !data)
        return 0;
    if (terminal(c) || c->state == ST_TLS_WAIT)
        return len;   /* nothing more is read: dropped */
    size_t off = 0;
    while (off < len) {
        if (terminal(c) || c->state == ST_TLS_WAIT || c->tls_cut) {
            c->tls_cut = false;
            off = len;
            break;
        }
        const char *p = data + off;
        size_t avail = len - off;
        const char *lf = memchr(p, '\n', avail);
        if (c->skipping) {
            size_t m = lf ? (size_t)(lf - p) + 1 : avail;
            off += m;
            if (c->skip_counts) {
                c->rep_total += m;
                if (c->rep_total > SMTP_CLIENT_REPLY_MAX) {
                    rep_reset(c);
                    fail_local(c, false, "reply longer than %d octets", SMTP_CLIENT_REPLY_MAX);
                    break;
                }
            }
            if (lf)
                c->skipping = false;
            continue;
        }
        size_t n;
        if (!lf) {
            if (avail < SMTP_CLIENT_REPLY_LINE_MAX)
                break;   /* incomplete: the transport keeps it */
            n = avail;   /* over-long: cut, the rest discarded up to its LF */
        } else {
            n = (size_t)(lf - p) + 1;
        }
        off += n;
        size_t content = n;
        bool whole = lf != NULL && n <= SMTP_CLIENT_REPLY_LINE_MAX;
        if (whole) {
            content = n - 1;
            if (content && p[content - 1] == '\r')
                content--;
        } else {
            content = SMTP_CLIENT_REPLY_LINE_MAX - 2;
        }
        if (!lf) {
            c->skipping = true;
        }
        reply_line(c, p, content, n);
        c->skip_counts = c->skipping && c->rep_active;
        if (terminal(c))
            c->skipping = false;
    }
    if (c->tls_cut) {
        c->tls_cut = false;
        off = len;
    }
    return off;
}

/* ---- the message ---- */

/* Validates an address by the grammar the server side uses (smtp_cmd.c):
 * no CR/LF/NUL/controls, a valid path, non-ASCII only with SMTPUTF8; and
 * the path parsed must be the whole address (no source route, no '>'
 * smuggling parameters in). SMTP_CMD_ERR__COUNT: that last check. */
static enum smtp_cmd_err check_path(const char *addr, bool rcpt, bool smtputf8)
{
    char line[SMTP_MAX_PATH_LEN + 32];
    size_t alen = strlen(addr);
    if (alen > SMTP_MAX_PATH_LEN)
        return SMTP_CMD_ERR_PATH_TOO_LONG;
    struct smtp_path path;
    enum smtp_cmd_err e;
    int n;
    if (rcpt) {
        n = snprintf(line, sizeof line, "TO:<%s>", addr);
        struct smtp_rcpt_params rp;
        e = smtp_cmd_parse_rcpt(line, (size_t)n, 0, smtputf8, &path, &rp);
    } else {
        n = snprintf(line, sizeof line, "FROM:<%s>%s", addr, smtputf8 ? " SMTPUTF8" : "");
        struct smtp_mail_params mp;
        e = smtp_cmd_parse_mail(line, (size_t)n, SMTP_EXT_SMTPUTF8, &path, &mp);
    }
    if (e == SMTP_CMD_OK && strcmp(path.addr, addr) != 0)
        return SMTP_CMD_ERR__COUNT;
    return e;
}

static const char *path_error(enum smtp_cmd_err e)
{
    return e == SMTP_CMD_ERR__COUNT ? "not a plain mailbox" : smtp_cmd_strerror(e);
}

/* The data as sent: every line end made CRLF (a bare CR or LF becomes one,
 * so no "\n.\n" can end the data early at the next hop), lines starting
 * with '.' stuffed (RFC 5321 §4.5.2), a final CRLF added when missing, then
 * ".\r\n". size: the octets the server counts (unstuffed, CRLF included). */
static int build_data(const char *msg, size_t len, char **outp, size_t *outlen, size_t *size,
                      bool *eightbit)
{
    *eightbit = false;
    if (len > (SIZE_MAX - 16) / 2)
        return -1;
    struct buf b;
    buf_init(&b, 2 * len + 16);
    size_t unstuffed = 0;
    size_t i = 0;
    bool line_start = true;
    while (i < len) {
        if (line_start && msg[i] == '.') {
            if (buf_append_char(&b, '.') != 0)
                goto oom;
        }
        size_t j = i;
        while (j < len && msg[j] != '\r' && msg[j] != '\n') {
            if ((unsigned char)msg[j] >= 0x80)
                *eightbit = true;
            j++;
        }
        if (buf_append(&b, msg + i, j - i) != 0)
            goto oom;
        unstuffed += j - i;
        if (j >= len) {
            line_start = j == i ? line_start : false;
            i = j;
            break;
        }
        if (msg[j] == '\r' && j + 1 < len && msg[j + 1] == '\n')
            j += 2;
        else
            j += 1;
        if (buf_append(&b, "\r\n", 2) != 0)
            goto oom;
        unstuffed += 2;
        line_start = true;
        i = j;
    }
    if (!line_start) {
        if (buf_append(&b, "\r\n", 2) != 0)
            goto oom;
        unstuffed += 2;
    }
    if (buf_append(&b, ".\r\n", 3) != 0)
        goto oom;
    *size = unstuffed;
    *outlen = b.len;
    *outp = buf_detach(&b);
    return *outp ? 0 : -1;
oom:
    buf_free(&b);
    return -1;
}

__attribute__((format(printf, 4, 5)))
static int refuse_local(struct smtp_client *c, int code, const char *enh, const char *fmt, ...)
{
    struct smtp_client_reply r;
    memset(&r, 0, sizeof r);
    r.code = code;
    snprintf(r.enhanced, sizeof r.enhanced, "%s", enh);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.text, sizeof r.text, fmt, ap);
    va_end(ap);
    if (c->h.message_done)
        c->h.message_done(c->h.arg, &r);
    return -1;
}

int smtp_client_send(struct smtp_client *c, const char *mail_from, bool smtputf8,
                     const char *const *rcpts, size_t nrcpt, const char *msg, size_t len)
{
    if (!c || c->state != ST_READY || c->t.active || !mail_from || !rcpts || nrcpt == 0 ||
        (!msg && len))
        return -1;
    for (size_t i = 0; i < nrcpt; i++)
        if (!rcpts[i])
            return -1;

    enum smtp_cmd_err e = check_path(mail_from, false, smtputf8);
    if (e == SMTP_CMD_ERR_UTF8_NOT_ALLOWED)
        return refuse_local(c, 554, "5.6.7", "non-ASCII sender address without SMTPUTF8");
    if (e != SMTP_CMD_OK)
        return refuse_local(c, 554, "5.1.7", "invalid sender address: %s", path_error(e));
    for (size_t i = 0; i < nrcpt; i++) {
        e = check_path(rcpts[i], true, smtputf8);
        if (e == SMTP_CMD_ERR_UTF8_NOT_ALLOWED)
            return refuse_local(c, 554, "5.6.7", "non-ASCII recipient address without SMTPUTF8");
        if (e != SMTP_CMD_OK)
            return refuse_local(c, 554, "5.1.3", "invalid recipient address: %s",
                                path_error(e));
    }
    if (smtputf8 && !(c->ext & EXT_SMTPUTF8))
        return refuse_local(c, 554, "5.6.7", "server does not support SMTPUTF8");

    char *data = NULL;
    size_t datalen = 0, size = 0;
    bool eightbit = false;
    if (build_data(msg ? msg : "", len, &data, &datalen, &size, &eightbit) != 0)
        return refuse_local(c, 451, "4.3.0", "out of memory preparing the message");
    if (eightbit && !(c->ext & EXT_8BITMIME)) {
        free(data);
        return refuse_local(c, 554, "5.6.3", "server does not support 8BITMIME");
    }
    if ((c->ext & EXT_SIZE) && c->max_size && size > c->max_size) {
        free(data);
        return refuse_local(c, 554, "5.3.4",
                            "message size %zu exceeds the server's fixed maximum of %zu", size,
                            c->max_size);
    }

    struct txn t;
    memset(&t, 0, sizeof t);
    t.rcpts = calloc(nrcpt, sizeof *t.rcpts);
    if (!t.rcpts) {
        free(data);
        return refuse_local(c, 451, "4.3.0", "out of memory preparing the message");
    }
    t.nrcpt = nrcpt;
    for (size_t i = 0; i < nrcpt; i++) {
        t.rcpts[i] = strdup(rcpts[i]);
        if (!t.rcpts[i]) {
            c->t = t;
            txn_clear(c);
            free(data);
            return refuse_local(c, 451, "4.3.0", "out of memory preparing the message");
        }
    }
    t.active = true;
    t.pipelined = (c->ext & EXT_PIPELINING) != 0;
    t.data = data;
    t.datalen = datalen;
    c->t = t;

    /* MAIL FROM:<x> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8] */
    size_t cap = (t.pipelined ? nrcpt + 2 : 1) * (SMTP_MAX_PATH_LEN + 64);
    struct buf b;
    buf_init(&b, cap);
    int rc = buf_printf(&b, "MAIL FROM:<%s>", mail_from);
    if (rc == 0 && (c->ext & EXT_SIZE))
        rc = buf_printf(&b, " SIZE=%zu", size);
    if (rc == 0 && eightbit)
        rc = buf_append_str(&b, " BODY=8BITMIME");
    if (rc == 0 && smtputf8)
        rc = buf_append_str(&b, " SMTPUTF8");
    if (rc == 0)
        rc = buf_append(&b, "\r\n", 2);
    if (rc == 0 && t.pipelined) {
        /* RFC 2920: MAIL, every RCPT and DATA in one write */
        for (size_t i = 0; i < nrcpt; i++)
            write_rcpt(c, &b, i);
        rc = c->t.rcpt_sent == nrcpt ? buf_append(&b, "DATA\r\n", 6) : -1;
    }
    if (rc != 0) {
        buf_free(&b);
        txn_clear(c);
        return refuse_local(c, 451, "4.3.0", "out of memory preparing the message");
    }
    c->state = ST_MAIL;
    out(c, b.data, b.len);
    buf_free(&b);
    return 0;
}

/* ---- life ---- */

struct smtp_client *smtp_client_new(const struct smtp_client_params *p,
                                    const struct smtp_client_hooks *h)
{
    if (!p || !h || !h->write)
        return NULL;
    const char *name = p->helo_name && p->helo_name[0] ? p->helo_name : "localhost";
    char helo[SMTP_MAX_DOMAIN_LEN + 1];
    if (smtp_cmd_parse_helo(name, strlen(name), helo, sizeof helo) != SMTP_CMD_OK ||
        strcmp(helo, name) != 0)
        return NULL;
    if (p->auth_user) {
        if (!p->auth_password || !p->auth_user[0] || !p->auth_password[0])
            return NULL;
        size_t raw = strlen(p->auth_user) + strlen(p->auth_password) + 2;
        /* base64 of the PLAIN response must fit an AUTH line */
        if (raw > (SMTP_MAX_AUTH_LINE_LEN - 32) / 4 * 3)
            return NULL;
    }
    struct smtp_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->h = *h;
    memcpy(c->helo, helo, strlen(helo) + 1);
    c->tls = p->tls;
    c->tls_available = p->tls_available;
    c->timeout_scale = 1.0;
    if (p->auth_user) {
        c->auth_user = strdup(p->auth_user);
        c->auth_password = strdup(p->auth_password);
        if (!c->auth_user || !c->auth_password) {
            smtp_client_free(c);
            return NULL;
        }
    }
    c->state = ST_GREETING;
    return c;
}

static void free_secret(char **s)
{
    if (*s) {
        sodium_memzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void smtp_client_free(struct smtp_client *c)
{
    if (!c)
        return;
    txn_clear(c);
    free_secret(&c->auth_user);
    free_secret(&c->auth_password);
    free(c);
}

void smtp_client_tls_done(struct smtp_client *c, bool ok)
{
    if (!c || c->state != ST_TLS_WAIT)
        return;
    if (!ok) {
        /* the connection is in no known state: no QUIT */
        fail_local(c, false, "TLS handshake failed");
        return;
    }
    c->in_tls = true;
    c->skipping = false;
    c->ext = 0;
    c->auth_plain = false;
    c->max_size = 0;
    rep_reset(c);
    write_ehlo(c, true);   /* RFC 3207 §4.2: forget what was learnt in the clear */
}

bool smtp_client_has(const struct smtp_client *c, const char *extension)
{
    if (!c || !extension)
        return false;
    for (size_t i = 0; i < sizeof ext_names / sizeof ext_names[0]; i++)
        if (strcasecmp(extension, ext_names[i].name) == 0)
            return (c->ext & ext_names[i].bit) != 0;
    if (strcasecmp(extension, "AUTH=PLAIN") == 0)
        return c->auth_plain;
    return false;
}

size_t smtp_client_max_size(const struct smtp_client *c)
{
    return c ? c->max_size : 0;
}

void smtp_client_quit(struct smtp_client *c)
{
    if (!c || terminal(c) || c->state == ST_QUIT)
        return;
    if (c->state == ST_READY) {
        c->state = ST_QUIT;
        out_str(c, "QUIT\r\n");
        return;
    }
    /* mid-step: abandon the session; nothing is written */
    struct smtp_client_reply r;
    reply_set(&r, 0, "", "session ended by the client during %s", steps[c->state].name);
    end_session(c, &r, false, SMTP_CLIENT_CLOSED);
}

void smtp_client_abort(struct smtp_client *c, const char *why)
{
    if (!c || terminal(c))
        return;
    struct smtp_client_reply r;
    reply_set(&r, 0, "", "%s", why && why[0] ? why : "connection lost");
    end_session(c, &r, false, c->state == ST_QUIT ? SMTP_CLIENT_CLOSED : SMTP_CLIENT_FAILED);
}

static unsigned scaled(const struct smtp_client *c, unsigned seconds)
{
    if (seconds == 0)
        return 0;
    double ms = (double)seconds * 1000.0 * c->timeout_scale;
    if (ms < 1.0)
        return 1;
    if (ms > 4e9)
        return 4000000000u;
    return (unsigned)ms;
}

unsigned smtp_client_timeout_ms(const struct smtp_client *c)
{
    if (!c)
        return 0;
    return scaled(c, steps[c->state].timeout_s);
}

unsigned smtp_client_write_timeout_ms(const struct smtp_client *c)
{
    return c ? scaled(c, DATA_BLOCK_TIMEOUT_S) : 0;
}

void smtp_client_set_timeout_scale(struct smtp_client *c, double scale)
{
    if (c && scale > 0)
        c->timeout_scale = scale;
}
