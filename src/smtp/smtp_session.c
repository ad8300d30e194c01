/* The SMTP server session engine (RFC 5321 with SIZE, PIPELINING, 8BITMIME,
 * SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS, AUTH PLAIN/LOGIN): an explicit
 * state machine driven by a command table {verb, allowed states, flags,
 * handler}, as in OpenSMTPD's smtp_session.c and Postfix's smtpd_cmd_table.
 * It reads bytes the transport feeds it and writes replies through a hook;
 * it owns no socket, timer or TLS, and decides no policy (the hooks do).
 * Command lines are not buffered here: an incomplete line is left to the
 * transport (the feed returns what it consumed), so an idle session is
 * about 1.3 KiB. The message buffer exists only during DATA.
 * See smtp_session.h and docs/smtp.md. */
#include "smtp/smtp_session.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_cmd.h"
#include "util/buf.h"
#include "util/strview.h"

enum state {
    ST_INIT,       /* greeted, no HELO/EHLO yet */
    ST_HELO,       /* HELO/EHLO done, no transaction */
    ST_MAIL,       /* MAIL accepted, no recipient yet */
    ST_RCPT,       /* at least one recipient accepted */
    ST_DATA,       /* reading the message */
    ST_DATA_WAIT,  /* message handed to the data hook */
    ST_AUTH_PLAIN, /* "334 " sent, waiting for the PLAIN response */
    ST_AUTH_USER,  /* LOGIN: "334 VXNlcm5hbWU6" sent */
    ST_AUTH_PASS,  /* LOGIN: "334 UGFzc3dvcmQ6" sent */
    ST_AUTH_WAIT,  /* credentials handed to the auth hook */
    ST_TLS_WAIT,   /* "220 Ready to start TLS" sent, waiting for the handshake */
    ST_CLOSED,
};

#define S(st) (1u << (st))
#define S_IDLE (S(ST_INIT) | S(ST_HELO) | S(ST_MAIL) | S(ST_RCPT))

/* Formatting a reply of up to 511 text octets split in lines never needs
 * more: every line adds at most 3+1+15+1+2 octets. */
#define REPLY_OUT_MAX (sizeof(((struct smtp_reply *)0)->text) * 23)

struct smtp_session {
    struct smtp_hooks h;
    char hostname[SMTP_MAX_DOMAIN_LEN + 1];
    bool submission, offer_auth, auth_needs_tls, tls_available;
    size_t max_size;
    unsigned max_rcpt, max_errors, max_nomail;

    enum state state;
    unsigned errors;          /* refused commands so far */
    unsigned nomail;          /* NOOP/RSET/VRFY/HELP/EHLO/HELO/EXPN since the last MAIL */
    bool shutdown_pending;    /* 421 once the outstanding answer is written */
    bool skipping;            /* inside an over-long line, discarding to its LF */

    struct smtp_envelope env;
    size_t rcpt_alloc;
    unsigned rcpt_refused;    /* RCPTs refused in this transaction */

    /* DATA (only meaningful in ST_DATA) */
    struct buf msg;
    bool data_crlf;           /* the previous line ended in CRLF */
    bool data_last_cr;        /* while skipping: last octet consumed was CR */
    bool data_bad_eol;        /* a bare CR or LF was seen */
    bool data_long_line;
    bool data_too_big;
    bool data_oom;

    char *auth_login_user;    /* LOGIN username between the two 334s, or the
                                 user whose credentials the hook checks */
};

/* ---- replies ---- */

static bool enhanced_valid(const char *e)
{
    /* class "." subject "." detail, RFC 3463 §2: [245].1*3digit.1*3digit */
    if (!e || (e[0] != '2' && e[0] != '4' && e[0] != '5') || e[1] != '.')
        return false;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (e[i] >= '0' && e[i] <= '9' && d < 3) {
            i++;
            d++;
        }
        if (d == 0)
            return false;
        if (part == 0) {
            if (e[i] != '.')
                return false;
            i++;
        }
    }
    return e[i] == '\0';
}

void smtp_reply_format(const struct smtp_reply *r, char *out, size_t outlen, size_t *written)
{
    *written = 0;
    if (!out || outlen == 0)
        return;
    out[0] = '\0';
    int code = (r->code >= 200 && r->code <= 599) ? r->code : 451;
    char enh[sizeof r->enhanced];
    enh[0] = '\0';
    if (memchr(r->enhanced, '\0', sizeof r->enhanced) && enhanced_valid(r->enhanced) &&
        r->enhanced[0] - '0' == code / 100)
        memcpy(enh, r->enhanced, strlen(r->enhanced) + 1);
    size_t tlen = strnlen(r->text, sizeof r->text);
    if (tlen > 0 && r->text[tlen - 1] == '\n')
        tlen--;   /* a trailing newline does not make an empty last line */

    size_t pos = 0;
    size_t last_sep = SIZE_MAX;   /* where the previous line's '-' is */
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < tlen && r->text[j] != '\n')
            j++;
        bool last = j >= tlen;
        size_t need = 3 + 1 + (enh[0] ? strlen(enh) + (j > i ? 1 : 0) : 0) + (j - i) + 2;
        if (pos + need + 1 > outlen) {
            /* does not fit: end the reply at the previous line */
            if (last_sep != SIZE_MAX)
                out[last_sep] = ' ';
            break;
        }
        int n = snprintf(out + pos, outlen - pos, "%03d", code);
        if (n != 3)
            break;
        pos += 3;
        last_sep = pos;
        out[pos++] = last ? ' ' : '-';
        if (enh[0]) {
            size_t el = strlen(enh);
            memcpy(out + pos, enh, el);
            pos += el;
            if (j > i)
                out[pos++] = ' ';
        }
        for (size_t k = i; k < j; k++) {
            unsigned char c = (unsigned char)r->text[k];
            out[pos++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
        }
        out[pos++] = '\r';
        out[pos++] = '\n';
        if (last)
            break;
        i = j + 1;
    }
    out[pos] = '\0';
    *written = pos;
}

void smtp_reply_set(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
{
    r->code = code;
    r->close = false;
    snprintf(r->enhanced, sizeof r->enhanced, "%s", enhanced ? enhanced : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
}

static void emit(struct smtp_session *s, const struct smtp_reply *r)
{
    if (s->state == ST_CLOSED)
        return;
    char out[REPLY_OUT_MAX];
    size_t n;
    smtp_reply_format(r, out, sizeof out, &n);
    if (n)
        s->h.write(s->h.arg, out, n);
}

static void do_close(struct smtp_session *s)
{
    if (s->state == ST_CLOSED)
        return;
    s->state = ST_CLOSED;
    s->skipping = false;
    if (s->h.close)
        s->h.close(s->h.arg);
}

__attribute__((format(printf, 4, 5)))
static void say(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
    struct smtp_reply r;
    r.code = code;
    r.close = false;
    snprintf(r.enhanced, sizeof r.enhanced, "%s", enh);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.text, sizeof r.text, fmt, ap);
    va_end(ap);
    emit(s, &r);
}

/* 421: the only reply with which a server may end a session on its own. */
static void say_421(struct smtp_session *s, const char *enh, const char *why)
{
    say(s, 421, enh, "%s %s", s->hostname, why);
    do_close(s);
}

/* A refusal of a command: counts toward max_errors. */
static void refuse_reply(struct smtp_session *s, const struct smtp_reply *r)
{
    emit(s, r);
    if (r->close) {
        do_close(s);
        return;
    }
    if (++s->errors >= s->max_errors)
        say_421(s, "4.7.0", "Error: too many errors");
}

__attribute__((format(printf, 4, 5)))
static void refuse(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
    struct smtp_reply r;
    r.code = code;
    r.close = false;
    snprintf(r.enhanced, sizeof r.enhanced, "%s", enh);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.text, sizeof r.text, fmt, ap);
    va_end(ap);
    refuse_reply(s, &r);
}

/* Runs a policy hook's refusal: a hook that forgot to fill r, or filled a
 * non-refusal code, refuses with a generic 550 5.7.1. */
static void refuse_policy(struct smtp_session *s, struct smtp_reply *r)
{
    if (r->code < 400 || r->code > 599)
        smtp_reply_set(r, 550, "5.7.1", "Error: rejected by policy");
    refuse_reply(s, r);
}

static void policy_default(struct smtp_reply *r)
{
    memset(r, 0, sizeof *r);
    smtp_reply_set(r, 550, "5.7.1", "Error: rejected by policy");
}

/* ---- session state ---- */

static void free_login_user(struct smtp_session *s)
{
    if (s->auth_login_user) {
        sodium_memzero(s->auth_login_user, strlen(s->auth_login_user));
        free(s->auth_login_user);
        s->auth_login_user = NULL;
    }
}

static void data_reset(struct smtp_session *s)
{
    buf_free(&s->msg);
    s->data_crlf = true;
    s->data_last_cr = false;
    s->data_bad_eol = s->data_long_line = s->data_too_big = s->data_oom = false;
}

static void transaction_reset(struct smtp_session *s)
{
    for (size_t i = 0; i < s->env.nrcpt; i++)
        free(s->env.rcpts[i]);
    free(s->env.rcpts);
    s->env.rcpts = NULL;
    s->env.nrcpt = 0;
    s->rcpt_alloc = 0;
    s->rcpt_refused = 0;
    s->env.mail_from[0] = '\0';
    s->env.smtputf8 = false;
    s->env.body_8bit = false;
    s->env.declared_size = 0;
    data_reset(s);
}

static bool auth_advertised(const struct smtp_session *s)
{
    return s->offer_auth && (s->env.tls || !s->auth_needs_tls);
}

static bool starttls_advertised(const struct smtp_session *s)
{
    return s->tls_available && s->h.starttls && !s->env.tls;
}

/* ---- commands ---- */

static void cmd_ehlo_helo(struct smtp_session *s, struct sv arg, bool esmtp)
{
    char name[SMTP_MAX_DOMAIN_LEN + 1];
    if (smtp_cmd_parse_helo(arg.p, arg.len, name, sizeof name) != SMTP_CMD_OK) {
        refuse(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return;
    }
    transaction_reset(s);
    memcpy(s->env.helo, name, strlen(name) + 1);
    s->env.esmtp = esmtp;
    s->state = ST_HELO;
    if (s->h.check_helo) {
        struct smtp_reply r;
        policy_default(&r);
        if (!s->h.check_helo(s->h.arg, &s->env, &r)) {
            s->env.helo[0] = '\0';
            s->env.esmtp = false;
            s->state = ST_INIT;
            refuse_policy(s, &r);
            return;
        }
    }
    if (!esmtp) {
        say(s, 250, "", "%s", s->hostname);
        return;
    }
    say(s, 250, "", "%s\nSIZE %zu\nPIPELINING\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES%s%s",
        s->hostname, s->max_size, starttls_advertised(s) ? "\nSTARTTLS" : "",
        auth_advertised(s) ? "\nAUTH PLAIN LOGIN" : "");
}

static void cmd_ehlo(struct smtp_session *s, struct sv arg) { cmd_ehlo_helo(s, arg, true); }
static void cmd_helo(struct smtp_session *s, struct sv arg) { cmd_ehlo_helo(s, arg, false); }

/* The reply to a MAIL/RCPT parse error; each error its own text. */
static void refuse_parse(struct smtp_session *s, enum smtp_cmd_err e, bool rcpt)
{
    const char *why = smtp_cmd_strerror(e);
    switch (e) {
    case SMTP_CMD_ERR_KEYWORD:
        refuse(s, 501, "5.5.4", "Syntax: %s", rcpt ? "RCPT TO:<address>" : "MAIL FROM:<address>");
        return;
    case SMTP_CMD_ERR_PARAM_SYNTAX:
    case SMTP_CMD_ERR_PARAM_DUPLICATE:
    case SMTP_CMD_ERR_SIZE_VALUE:
    case SMTP_CMD_ERR_BODY_VALUE:
    case SMTP_CMD_ERR_SMTPUTF8_VALUE:
    case SMTP_CMD_ERR_AUTH_VALUE:
    case SMTP_CMD_ERR_RET_VALUE:
    case SMTP_CMD_ERR_ENVID_VALUE:
    case SMTP_CMD_ERR_NOTIFY_VALUE:
    case SMTP_CMD_ERR_ORCPT_VALUE:
    case SMTP_CMD_ERR_NUL:
    case SMTP_CMD_ERR_CTRL:
        refuse(s, 501, "5.5.4", "Error: %s", why);
        return;
    case SMTP_CMD_ERR_PARAM_UNKNOWN:
    case SMTP_CMD_ERR_PARAM_UNADVERTISED:
        refuse(s, 555, "5.5.4", "Error: %s", why);
        return;
    case SMTP_CMD_ERR_UTF8_NOT_ALLOWED:
        refuse(s, 553, "5.6.7", "Error: non-ASCII %s requires SMTPUTF8",
               rcpt ? "recipient" : "sender");
        return;
    default:
        if (rcpt)
            refuse(s, 501, "5.1.3", "Bad recipient address syntax: %s", why);
        else
            refuse(s, 501, "5.1.7", "Bad sender address syntax: %s", why);
        return;
    }
}

static void cmd_mail(struct smtp_session *s, struct sv arg)
{
    if (s->submission && !s->env.authenticated) {
        if (s->offer_auth && s->auth_needs_tls && !s->env.tls)
            refuse(s, 530, "5.7.0", "Must issue a STARTTLS command first");
        else
            refuse(s, 530, "5.7.0", "Authentication required");
        return;
    }
    unsigned ext = 0;
    if (s->env.esmtp)
        ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
              (auth_advertised(s) ? SMTP_EXT_AUTH : 0);
    struct smtp_path path;
    struct smtp_mail_params mp;
    enum smtp_cmd_err e = smtp_cmd_parse_mail(arg.p, arg.len, ext, &path, &mp);
    if (e != SMTP_CMD_OK) {
        refuse_parse(s, e, false);
        return;
    }
    if (mp.has_size && mp.size > (uint64_t)s->max_size) {
        refuse(s, 552, "5.3.4", "Error: message size exceeds fixed maximum message size");
        return;
    }
    memcpy(s->env.mail_from, path.addr, strlen(path.addr) + 1);
    s->env.smtputf8 = mp.smtputf8;
    s->env.body_8bit = mp.body == SMTP_BODY_8BITMIME;
    s->env.declared_size = mp.has_size ? (size_t)mp.size : 0;
    if (s->h.check_mail) {
        struct smtp_reply r;
        policy_default(&r);
        if (!s->h.check_mail(s->h.arg, &s->env, &r)) {
            transaction_reset(s);
            refuse_policy(s, &r);
            return;
        }
    }
    s->state = ST_MAIL;
    s->nomail = 0;
    say(s, 250, "2.1.0", "Ok");
}

static void cmd_rcpt(struct smtp_session *s, struct sv arg)
{
    struct smtp_path path;
    struct smtp_rcpt_params rp;
    /* DSN is not offered: NOTIFY= and ORCPT= are refused (555) */
    enum smtp_cmd_err e = smtp_cmd_parse_rcpt(arg.p, arg.len, 0, s->env.smtputf8, &path, &rp);
    if (e != SMTP_CMD_OK) {
        refuse_parse(s, e, true);
        return;
    }
    if (s->env.nrcpt >= s->max_rcpt) {
        /* RFC 5321 §4.5.3.1.10: 452, the client sends the rest later */
        say(s, 452, "4.5.3", "Error: too many recipients");
        return;
    }
    if (s->h.check_rcpt) {
        struct smtp_reply r;
        policy_default(&r);
        if (!s->h.check_rcpt(s->h.arg, &s->env, path.addr, &r)) {
            s->rcpt_refused++;
            refuse_policy(s, &r);
            return;
        }
    }
    if (s->env.nrcpt == s->rcpt_alloc) {
        size_t n = s->rcpt_alloc ? s->rcpt_alloc * 2 : 4;
        char **p = realloc(s->env.rcpts, n * sizeof *p);
        if (!p) {
            say(s, 452, "4.3.1", "Error: insufficient system storage");
            return;
        }
        s->env.rcpts = p;
        s->rcpt_alloc = n;
    }
    char *copy = strdup(path.addr);
    if (!copy) {
        say(s, 452, "4.3.1", "Error: insufficient system storage");
        return;
    }
    s->env.rcpts[s->env.nrcpt++] = copy;
    s->state = ST_RCPT;
    say(s, 250, "2.1.5", "Ok");
}

static void cmd_data(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    if (s->env.nrcpt == 0) {
        if (s->rcpt_refused)
            refuse(s, 554, "5.5.1", "Error: no valid recipients");
        else
            refuse(s, 503, "5.5.1", "Error: need RCPT command");
        return;
    }
    data_reset(s);
    buf_init(&s->msg, s->max_size);
    s->state = ST_DATA;
    say(s, 354, "", "End data with <CR><LF>.<CR><LF>");
}

static void cmd_rset(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    transaction_reset(s);
    if (s->state != ST_INIT)
        s->state = ST_HELO;
    say(s, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    say(s, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    say(s, 221, "2.0.0", "Bye");
    do_close(s);
}

static void cmd_vrfy(struct smtp_session *s, struct sv arg)
{
    if (arg.len == 0) {
        refuse(s, 501, "5.5.4", "Syntax: VRFY address");
        return;
    }
    say(s, 252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    refuse(s, 502, "5.5.1", "Error: EXPN not supported");
}

static void cmd_help(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    say(s, 214, "2.0.0",
        "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
}

static void cmd_bdat(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    refuse(s, 502, "5.5.1", "Error: CHUNKING not supported");
}

static void cmd_obsolete(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    refuse(s, 502, "5.5.1", "Error: command not implemented");
}

static void cmd_starttls(struct smtp_session *s, struct sv arg)
{
    (void)arg;
    if (s->env.tls) {
        refuse(s, 503, "5.5.1", "Error: TLS already active");
        return;
    }
    if (!starttls_advertised(s)) {
        refuse(s, 502, "5.5.1", "Error: STARTTLS not available");
        return;
    }
    if (s->state == ST_MAIL || s->state == ST_RCPT) {
        refuse(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    say(s, 220, "2.0.0", "Ready to start TLS");
    s->state = ST_TLS_WAIT;
    s->h.starttls(s->h.arg);
}

/* ---- AUTH (RFC 4954, RFC 4616 PLAIN, draft LOGIN) ---- */

/* Decodes one base64 line (RFC 4648 with padding); "=" alone is the empty
 * initial response (RFC 4954 §4). Returns false when it is not base64. */
static bool b64_decode(struct sv in, unsigned char *out, size_t outlen, size_t *n, bool initial)
{
    *n = 0;
    if (initial && in.len == 1 && in.p[0] == '=')
        return true;
    if (in.len % 4 != 0)
        return false;
    if (in.len == 0)
        return true;
    const char *end = NULL;
    if (sodium_base642bin(out, outlen, in.p, in.len, NULL, n, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return false;
    return end == in.p + in.len;
}

static void start_auth(struct smtp_session *s, const char *user, const char *pass)
{
    if (!s->h.auth) {
        s->state = ST_HELO;
        refuse(s, 454, "4.7.0", "Temporary authentication failure");
        return;
    }
    if (s->auth_login_user != user) {
        free_login_user(s);
        s->auth_login_user = strdup(user);
        if (!s->auth_login_user) {
            s->state = ST_HELO;
            say(s, 454, "4.7.0", "Temporary authentication failure");
            return;
        }
    }
    s->state = ST_AUTH_WAIT;
    /* the hook may answer at once (smtp_session_auth_done): nothing of the
     * session's state is used after this call */
    s->h.auth(s->h.arg, s->auth_login_user, pass);
}

static void auth_fail(struct smtp_session *s, int code, const char *enh, const char *text)
{
    free_login_user(s);
    s->state = ST_HELO;
    refuse(s, code, enh, "%s", text);
}

/* authzid NUL authcid NUL passwd (RFC 4616 §2) */
static void auth_plain(struct smtp_session *s, const unsigned char *d, size_t n)
{
    const unsigned char *nul1 = memchr(d, '\0', n);
    const unsigned char *nul2 = nul1 ? memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - d)) : NULL;
    if (!nul1 || !nul2 || memchr(nul2 + 1, '\0', n - (size_t)(nul2 + 1 - d))) {
        auth_fail(s, 501, "5.5.2", "Error: malformed AUTH PLAIN response");
        return;
    }
    size_t zlen = (size_t)(nul1 - d);
    size_t ulen = (size_t)(nul2 - nul1 - 1);
    size_t plen = n - (size_t)(nul2 + 1 - d);
    if (ulen == 0 || plen == 0 || ulen >= sizeof s->env.auth_user) {
        auth_fail(s, 501, "5.5.2", "Error: malformed AUTH PLAIN response");
        return;
    }
    /* acting for another identity (authzid) is not supported */
    if (zlen && (zlen != ulen || memcmp(d, nul1 + 1, ulen) != 0)) {
        auth_fail(s, 535, "5.7.8", "Authentication credentials invalid");
        return;
    }
    char user[sizeof s->env.auth_user];
    memcpy(user, nul1 + 1, ulen);
    user[ulen] = '\0';
    /* the password is NUL-terminated in place: d has room (n < outlen) */
    start_auth(s, user, (const char *)nul2 + 1);
}

static void auth_response(struct smtp_session *s, struct sv line, bool initial)
{
    unsigned char dec[SMTP_MAX_AUTH_LINE_LEN];
    size_t n;
    if (!initial && line.len == 1 && line.p[0] == '*') {
        auth_fail(s, 501, "5.0.0", "Authentication cancelled");
        return;
    }
    if (!b64_decode(line, dec, sizeof dec - 1, &n, initial)) {
        sodium_memzero(dec, sizeof dec);
        auth_fail(s, 501, "5.5.2", "Error: invalid base64 data");
        return;
    }
    dec[n] = '\0';
    switch (s->state) {
    case ST_AUTH_PLAIN:
        auth_plain(s, dec, n);
        break;
    case ST_AUTH_USER:
        if (n == 0 || n >= sizeof s->env.auth_user || memchr(dec, '\0', n)) {
            auth_fail(s, 501, "5.5.2", "Error: malformed AUTH LOGIN username");
            break;
        }
        free_login_user(s);
        s->auth_login_user = strdup((const char *)dec);
        if (!s->auth_login_user) {
            s->state = ST_HELO;
            say(s, 454, "4.7.0", "Temporary authentication failure");
            break;
        }
        s->state = ST_AUTH_PASS;
        say(s, 334, "", "UGFzc3dvcmQ6");
        break;
    case ST_AUTH_PASS:
        if (n == 0 || memchr(dec, '\0', n)) {
            auth_fail(s, 501, "5.5.2", "Error: malformed AUTH LOGIN password");
            break;
        }
        start_auth(s, s->auth_login_user, (const char *)dec);
        break;
    default:
        break;
    }
    sodium_memzero(dec, sizeof dec);
}

static void cmd_auth(struct smtp_session *s, struct sv arg)
{
    if (s->state == ST_INIT || !s->env.esmtp) {
        refuse(s, 503, "5.5.1", "Error: send EHLO first");
        return;
    }
    if (!s->offer_auth) {
        refuse(s, 503, "5.5.1", "Error: authentication not enabled");
        return;
    }
    if (s->auth_needs_tls && !s->env.tls) {
        refuse(s, 538, "5.7.11", "Encryption required for requested authentication mechanism");
        return;
    }
    if (s->env.authenticated) {
        refuse(s, 503, "5.5.1", "Error: already authenticated");
        return;
    }
    if (s->state == ST_MAIL || s->state == ST_RCPT) {
        refuse(s, 503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    size_t sp = sv_find(arg, ' ');
    struct sv mech = sv_sub(arg, 0, sp);
    struct sv ir = sv_sub(arg, sp + 1, arg.len);
    bool has_ir = sp < arg.len;
    if (mech.len == 0 || sv_find(ir, ' ') < ir.len) {
        refuse(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
        return;
    }
    if (sv_eq_ci_cstr(mech, "PLAIN")) {
        s->state = ST_AUTH_PLAIN;
        if (has_ir)
            auth_response(s, ir, true);
        else
            say(s, 334, "", "%s", "");
    } else if (sv_eq_ci_cstr(mech, "LOGIN")) {
        s->state = ST_AUTH_USER;
        if (has_ir)
            auth_response(s, ir, true);
        else
            say(s, 334, "", "VXNlcm5hbWU6");
    } else {
        refuse(s, 504, "5.5.4", "Unrecognized authentication type");
    }
}

/* ---- the command table ---- */

enum {
    CMD_NOMAIL = 1u << 0,   /* counts toward max_nomail_cmds */
    CMD_NOARG = 1u << 1,    /* takes no argument (501 5.5.4) */
};

struct cmd {
    enum smtp_verb verb;
    const char *name;
    unsigned states;        /* where it is allowed */
    unsigned flags;
    const char *seq_text;   /* 503 text elsewhere (ST_INIT: "send HELO/EHLO first") */
    void (*handler)(struct smtp_session *s, struct sv arg);
};

static const struct cmd cmd_table[] = {
    { SMTP_VERB_EHLO, "EHLO", S_IDLE, CMD_NOMAIL, NULL, cmd_ehlo },
    { SMTP_VERB_HELO, "HELO", S_IDLE, CMD_NOMAIL, NULL, cmd_helo },
    { SMTP_VERB_MAIL, "MAIL", S(ST_HELO), 0, "Error: nested MAIL command", cmd_mail },
    { SMTP_VERB_RCPT, "RCPT", S(ST_MAIL) | S(ST_RCPT), 0, "Error: need MAIL command", cmd_rcpt },
    { SMTP_VERB_DATA, "DATA", S(ST_MAIL) | S(ST_RCPT), CMD_NOARG, "Error: need MAIL command",
      cmd_data },
    { SMTP_VERB_RSET, "RSET", S_IDLE, CMD_NOMAIL | CMD_NOARG, NULL, cmd_rset },
    { SMTP_VERB_NOOP, "NOOP", S_IDLE, CMD_NOMAIL, NULL, cmd_noop },
    { SMTP_VERB_QUIT, "QUIT", S_IDLE, CMD_NOARG, NULL, cmd_quit },
    { SMTP_VERB_VRFY, "VRFY", S_IDLE, CMD_NOMAIL, NULL, cmd_vrfy },
    { SMTP_VERB_EXPN, "EXPN", S_IDLE, CMD_NOMAIL, NULL, cmd_expn },
    { SMTP_VERB_HELP, "HELP", S_IDLE, CMD_NOMAIL, NULL, cmd_help },
    { SMTP_VERB_STARTTLS, "STARTTLS", S_IDLE, CMD_NOARG, NULL, cmd_starttls },
    { SMTP_VERB_AUTH, "AUTH", S_IDLE, 0, NULL, cmd_auth },
    { SMTP_VERB_BDAT, "BDAT", S_IDLE, 0, NULL, cmd_bdat },
    { SMTP_VERB_OBSOLETE, "", S_IDLE, 0, NULL, cmd_obsolete },
};

static void command_line(struct smtp_session *s, const char *line, size_t len)
{
    enum smtp_verb verb;
    struct sv arg;
    switch (smtp_cmd_split(line, len, &verb, &arg)) {
    case SMTP_CMD_OK:
        break;
    case SMTP_CMD_ERR_NUL:
        refuse(s, 500, "5.5.2", "Error: NUL character in command");
        return;
    case SMTP_CMD_ERR_CTRL:
        refuse(s, 500, "5.5.2", "Error: control character in command");
        return;
    default:
        refuse(s, 500, "5.5.2", "Error: bad syntax");
        return;
    }
    if (verb == SMTP_VERB_NON_SMTP) {
        /* a web browser or proxy talking to us (Postfix: "non-SMTP command") */
        say_421(s, "4.7.0", "Error: non-SMTP command, closing connection");
        return;
    }
    const struct cmd *c = NULL;
    for (size_t i = 0; i < sizeof cmd_table / sizeof cmd_table[0]; i++)
        if (cmd_table[i].verb == verb) {
            c = &cmd_table[i];
            break;
        }
    if (!c) {
        refuse(s, 500, "5.5.2", "Error: command not recognized");
        return;
    }
    if ((c->flags & CMD_NOMAIL) && ++s->nomail > s->max_nomail) {
        say_421(s, "4.7.0", "Error: too many commands");
        return;
    }
    if (!(c->states & S(s->state))) {
        refuse(s, 503, "5.5.1", "%s",
               s->state == ST_INIT || !c->seq_text ? "Error: send HELO/EHLO first" : c->seq_text);
        return;
    }
    if ((c->flags & CMD_NOARG) && arg.len) {
        refuse(s, 501, "5.5.4", "Syntax: %s", c->name);
        return;
    }
    c->handler(s, arg);
}

/* ---- DATA ---- */

static void data_end(struct smtp_session *s)
{
    if (s->data_bad_eol || s->data_long_line || s->data_too_big || s->data_oom) {
        if (s->data_bad_eol)
            say(s, 550, "5.5.2", "Error: bare LF/CR is not allowed (RFC 5321 section 2.3.8)");
        else if (s->data_long_line)
            say(s, 552, "5.3.4", "Error: message line too long (limit %d octets)",
                SMTP_MAX_DATA_LINE_LEN);
        else if (s->data_too_big)
            say(s, 552, "5.3.4", "Error: message size exceeds fixed maximum message size");
        else
            say(s, 452, "4.3.1", "Error: insufficient system storage");
        transaction_reset(s);
        s->state = ST_HELO;
        return;
    }
    size_t len = s->msg.len;
    char *msg;
    if (s->msg.data) {
        msg = buf_detach(&s->msg);
    } else {
        msg = malloc(1);   /* the empty message */
        if (msg)
            msg[0] = '\0';
    }
    if (!msg) {
        say(s, 452, "4.3.1", "Error: insufficient system storage");
        transaction_reset(s);
        s->state = ST_HELO;
        return;
    }
    if (!s->h.data) {
        free(msg);
        say(s, 451, "4.3.0", "Error: no message handler");
        transaction_reset(s);
        s->state = ST_HELO;
        return;
    }
    s->state = ST_DATA_WAIT;
    /* the hook may answer at once (smtp_session_data_done) */
    s->h.data(s->h.arg, &s->env, msg, len);
}

/* A complete DATA line of n octets (LF included, n <= the cap). */
static void data_line(struct smtp_session *s, const char *p, size_t n)
{
    bool crlf = n >= 2 && p[n - 2] == '\r';
    size_t clen = n - (crlf ? 2 : 1);
    if (!crlf || (clen && memchr(p, '\r', clen)))
        s->data_bad_eol = true;
    if (crlf && s->data_crlf && clen == 1 && p[0] == '.') {
        data_end(s);
        return;
    }
    s->data_crlf = crlf;
    if (s->data_bad_eol || s->data_long_line || s->data_too_big || s->data_oom) {
        buf_free(&s->msg);   /* the message is refused: keep nothing */
        return;
    }
    if (clen && p[0] == '.') {   /* RFC 5321 §4.5.2 */
        p++;
        clen--;
    }
    if (s->msg.len + clen + 2 > s->max_size) {
        s->data_too_big = true;
        buf_free(&s->msg);
        return;
    }
    if (buf_append(&s->msg, p, clen) != 0 || buf_append(&s->msg, "\r\n", 2) != 0) {
        s->data_oom = true;
        buf_free(&s->msg);
    }
}

/* Octets of an over-long DATA line, discarded, watched for bare CR/LF and
 * for the line's end (which decides whether the next "." ends the data). */
static void data_skip(struct smtp_session *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (s->data_last_cr && c != '\n')
            s->data_bad_eol = true;
        if (c == '\n') {
            if (!s->data_last_cr)
                s->data_bad_eol = true;
            s->data_crlf = s->data_last_cr;
            s->data_last_cr = false;
            continue;
        }
        s->data_last_cr = c == '\r';
    }
}

/* ---- feeding ---- */

static size_t line_cap(const struct smtp_session *s, const char *p, size_t avail)
{
    switch (s->state) {
    case ST_DATA:
        return SMTP_MAX_DATA_LINE_LEN;
    case ST_AUTH_PLAIN:
    case ST_AUTH_USER:
    case ST_AUTH_PASS:
        return SMTP_MAX_AUTH_LINE_LEN;
    default:
        if (avail >= 5 && strncasecmp(p, "AUTH ", 5) == 0)
            return SMTP_MAX_AUTH_LINE_LEN;
        return SMTP_MAX_CMD_LINE_LEN;
    }
}

/* A line (or the start of one) longer than the cap: refused. */
static void long_line(struct smtp_session *s)
{
    switch (s->state) {
    case ST_DATA:
        s->data_long_line = true;
        buf_free(&s->msg);
        break;
    case ST_AUTH_PLAIN:
    case ST_AUTH_USER:
    case ST_AUTH_PASS:
        auth_fail(s, 500, "5.5.6", "Authentication exchange line is too long");
        break;
    default:
        refuse(s, 500, "5.5.2", "Error: line too long");
        break;
    }
}

static bool waiting_state(enum state st) { return st == ST_AUTH_WAIT || st == ST_DATA_WAIT; }

/* One complete line of n octets (LF included). */
static void dispatch_line(struct smtp_session *s, const char *p, size_t n)
{
    if (s->state == ST_DATA) {
        data_line(s, p, n);
        return;
    }
    size_t len = n - 1;
    if (len && p[len - 1] == '\r')
        len--;
    switch (s->state) {
    case ST_AUTH_PLAIN:
    case ST_AUTH_USER:
    case ST_AUTH_PASS:
        if (memchr(p, '\0', len) || memchr(p, '\r', len)) {
            auth_fail(s, 501, "5.5.2", "Error: invalid base64 data");
            return;
        }
        auth_response(s, sv_make(p, len), false);
        return;
    default:
        command_line(s, p, len);
        return;
    }
}

size_t smtp_session_feed(struct smtp_session *s, const char *data, size_t len)
{
    if (!s || s->state == ST_CLOSED || waiting_state(s->state))
        return 0;
    size_t off = 0;
    while (off < len) {
        if (s->state == ST_CLOSED || waiting_state(s->state))
            break;
        if (s->state == ST_TLS_WAIT) {
            /* whatever followed STARTTLS in the clear is dropped
             * (RFC 3207 §4.2, CVE-2011-0411) */
            off = len;
            break;
        }
        const char *p = data + off;
        size_t avail = len - off;
        const char *lf = memchr(p, '\n', avail);
        if (s->skipping) {
            size_t m = lf ? (size_t)(lf - p) + 1 : avail;
            if (s->state == ST_DATA)
                data_skip(s, p, m);
            off += m;
            if (lf)
                s->skipping = false;
            continue;
        }
        size_t cap = line_cap(s, p, avail);
        if (!lf) {
            if (avail >= cap) {
                /* can never fit: refuse now, discard up to its end */
                if (s->state == ST_DATA)
                    data_skip(s, p, avail);
                long_line(s);
                if (s->state != ST_CLOSED)
                    s->skipping = true;
                off = len;
            }
            break;
        }
        size_t n = (size_t)(lf - p) + 1;
        off += n;
        if (n > cap) {
            if (s->state == ST_DATA)
                data_skip(s, p, n);
            long_line(s);
            continue;
        }
        dispatch_line(s, p, n);
    }
    return off;
}

/* ---- life ---- */

struct smtp_session *smtp_session_new(const struct smtp_session_params *p,
                                      const struct smtp_hooks *h)
{
    if (!p || !h || !h->write)
        return NULL;
    struct smtp_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->h = *h;
    const char *host = p->hostname && p->hostname[0] ? p->hostname : "localhost";
    snprintf(s->hostname, sizeof s->hostname, "%s", host);
    s->submission = p->submission;
    s->offer_auth = p->offer_auth;
    s->auth_needs_tls = p->auth_needs_tls;
    s->tls_available = p->tls_available;
    s->max_size = p->max_message_size ? p->max_message_size : SMTP_DEFAULT_MAX_MESSAGE_SIZE;
    s->max_rcpt = p->max_recipients ? p->max_recipients : SMTP_MAX_RECIPIENTS;
    s->max_errors = p->max_errors ? p->max_errors : SMTP_MAX_ERRORS;
    s->max_nomail = p->max_nomail_cmds ? p->max_nomail_cmds : SMTP_MAX_NOMAIL_CMDS;
    s->state = ST_INIT;
    buf_init(&s->msg, s->max_size);
    data_reset(s);
    return s;
}

void smtp_session_free(struct smtp_session *s)
{
    if (!s)
        return;
    transaction_reset(s);
    free_login_user(s);
    sodium_memzero(s->env.auth_user, sizeof s->env.auth_user);
    free(s);
}

void smtp_session_start(struct smtp_session *s)
{
    say(s, 220, "", "%s ESMTP sesame", s->hostname);
}

bool smtp_session_waiting(const struct smtp_session *s)
{
    return s && waiting_state(s->state);
}

bool smtp_session_closed(const struct smtp_session *s)
{
    return !s || s->state == ST_CLOSED;
}

void smtp_session_tls_started(struct smtp_session *s)
{
    if (!s || s->state != ST_TLS_WAIT)
        return;
    transaction_reset(s);
    free_login_user(s);
    s->env.helo[0] = '\0';
    s->env.esmtp = false;
    s->env.authenticated = false;
    s->env.auth_user[0] = '\0';
    s->env.tls = true;
    s->skipping = false;
    s->state = ST_INIT;
}

/* After an outstanding answer: the shutdown that waited for it. */
static void after_answer(struct smtp_session *s)
{
    if (s->state != ST_CLOSED && s->shutdown_pending)
        say_421(s, "4.3.2", "Service shutting down");
}

void smtp_session_auth_done(struct smtp_session *s, bool ok, const char *identity)
{
    if (!s || s->state != ST_AUTH_WAIT)
        return;
    s->state = ST_HELO;
    if (ok) {
        const char *who = identity && identity[0] ? identity
                          : s->auth_login_user ? s->auth_login_user : "";
        snprintf(s->env.auth_user, sizeof s->env.auth_user, "%s", who);
        s->env.authenticated = true;
        free_login_user(s);
        say(s, 235, "2.7.0", "Authentication successful");
    } else {
        free_login_user(s);
        refuse(s, 535, "5.7.8", "Authentication credentials invalid");
    }
    after_answer(s);
}

void smtp_session_data_done(struct smtp_session *s, const struct smtp_reply *r)
{
    if (!s || s->state != ST_DATA_WAIT)
        return;
    struct smtp_reply def;
    if (!r) {
        smtp_reply_set(&def, 451, "4.3.0", "Error: local error in processing");
        r = &def;
    }
    s->state = ST_HELO;
    transaction_reset(s);
    emit(s, r);
    if (r->close)
        do_close(s);
    after_answer(s);
}

void smtp_session_timeout(struct smtp_session *s)
{
    if (!s || s->state == ST_CLOSED)
        return;
    say_421(s, "4.4.2", "Error: timeout exceeded");
}

void smtp_session_shutdown(struct smtp_session *s)
{
    if (!s || s->state == ST_CLOSED)
        return;
    if (waiting_state(s->state)) {
        s->shutdown_pending = true;
        return;
    }
    say_421(s, "4.3.2", "Service shutting down");
}

size_t smtp_session_memory(const struct smtp_session *s)
{
    if (!s)
        return 0;
    size_t n = sizeof *s + s->rcpt_alloc * sizeof(char *) + s->msg.alloc;
    for (size_t i = 0; i < s->env.nrcpt; i++)
        n += strlen(s->env.rcpts[i]) + 1;
    if (s->auth_login_user)
        n += strlen(s->auth_login_user) + 1;
    return n;
}
