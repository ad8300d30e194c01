/* libFuzzer target: an SMTP session fed the input split at pseudo-random
 * points, as a transport would (unconsumed bytes are kept and fed again).
 * Input: 4 bytes of setup (mode flags, split seed), then the client bytes.
 * Hooks answer at once, or at the next chunk when the "later" flag is set;
 * STARTTLS completes at the next chunk. Invariants: every write is whole,
 * well-formed reply lines (printable ASCII, CRLF, consistent multi-line
 * codes); nothing is written or consumed after close; feed never claims
 * more than it was given; every message handed over has CRLF line ends
 * only and fits the size limit. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_session.h"

struct fz {
    struct smtp_session *s;
    bool later;
    bool closed;
    bool want_tls;
    bool auth_pending, auth_ok;
    bool data_pending;
    size_t max_size;
    char *in;
    size_t inlen;
};

static void check_reply_bytes(const char *d, size_t len)
{
    if (len == 0 || len < 5 || d[len - 1] != '\n' || d[len - 2] != '\r')
        __builtin_trap();
    size_t i = 0;
    char code[3];
    bool multi = false;
    while (i < len) {
        const char *lf = memchr(d + i, '\n', len - i);
        if (!lf)
            __builtin_trap();
        size_t n = (size_t)(lf - (d + i)) + 1;
        const char *l = d + i;
        if (n < 6 || l[n - 2] != '\r')
            __builtin_trap();
        if (l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9')
            __builtin_trap();
        if (l[3] != ' ' && l[3] != '-')
            __builtin_trap();
        if (multi && memcmp(code, l, 3) != 0)
            __builtin_trap();
        for (size_t k = 4; k < n - 2; k++)
            if ((unsigned char)l[k] < 0x20 || (unsigned char)l[k] >= 0x7f)
                __builtin_trap();
        memcpy(code, l, 3);
        multi = l[3] == '-';
        i += n;
    }
    if (multi)
        __builtin_trap();
}

static void h_write(void *arg, const char *data, size_t len)
{
    struct fz *f = arg;
    if (f->closed)
        __builtin_trap();
    check_reply_bytes(data, len);
}

static void h_starttls(void *arg)
{
    struct fz *f = arg;
    f->want_tls = true;
}

static void h_auth(void *arg, const char *user, const char *pass)
{
    struct fz *f = arg;
    if (!user || !pass || !user[0])
        __builtin_trap();
    bool ok = strcmp(user, "alice") == 0 && strcmp(pass, "secret") == 0;
    if (f->later) {
        f->auth_pending = true;
        f->auth_ok = ok;
        return;
    }
    smtp_session_auth_done(f->s, ok, NULL);
}

static bool h_check_rcpt(void *arg, const struct smtp_envelope *env, const char *rcpt,
                         struct smtp_reply *r)
{
    (void)arg;
    (void)env;
    if (strncmp(rcpt, "unknown", 7) == 0) {
        smtp_reply_set(r, 550, "5.1.1", "<%s>: unknown\nsecond line", rcpt);
        return false;
    }
    return true;
}

static void h_data(void *arg, const struct smtp_envelope *env, char *msg, size_t len)
{
    struct fz *f = arg;
    if (env->nrcpt == 0 || len > f->max_size)
        __builtin_trap();
    /* CRLF line ends only */
    for (size_t i = 0; i < len; i++) {
        if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
            __builtin_trap();
        if (msg[i] == '\r' && (i + 1 >= len || msg[i + 1] != '\n'))
            __builtin_trap();
    }
    if (len && (len < 2 || msg[len - 2] != '\r' || msg[len - 1] != '\n'))
        __builtin_trap();
    free(msg);
    struct smtp_reply r;
    smtp_reply_set(&r, 250, "2.0.0", "Ok: queued");
    if (f->later) {
        f->data_pending = true;
        return;
    }
    smtp_session_data_done(f->s, &r);
}

static void h_close(void *arg)
{
    struct fz *f = arg;
    if (f->closed)
        __builtin_trap();
    f->closed = true;
}

static void pump(struct fz *f)
{
    while (f->inlen && !smtp_session_closed(f->s) && !smtp_session_waiting(f->s)) {
        size_t n = smtp_session_feed(f->s, f->in, f->inlen);
        if (n > f->inlen)
            __builtin_trap();
        memmove(f->in, f->in + n, f->inlen - n);
        f->inlen -= n;
        if (f->want_tls) {
            f->inlen = 0;   /* the transport drops the rest too */
            break;
        }
        if (n == 0)
            break;
    }
    if (smtp_session_closed(f->s) && !f->closed)
        __builtin_trap();
}

static void answer_pending(struct fz *f)
{
    if (f->want_tls) {
        f->want_tls = false;
        smtp_session_tls_started(f->s);
    }
    if (f->auth_pending) {
        f->auth_pending = false;
        smtp_session_auth_done(f->s, f->auth_ok, "alice@example.test");
    }
    if (f->data_pending) {
        f->data_pending = false;
        struct smtp_reply r;
        smtp_reply_set(&r, 451, "4.3.0", "try later");
        smtp_session_data_done(f->s, &r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t flags = data[0];
    uint32_t seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
    data += 4;
    size -= 4;

    struct fz f = { 0 };
    f.later = flags & 0x10;
    struct smtp_session_params p = {
        .hostname = "mx.fuzz.test",
        .submission = flags & 0x01,
        .offer_auth = flags & 0x02,
        .auth_needs_tls = flags & 0x04,
        .tls_available = flags & 0x08,
    };
    if (flags & 0x20) {
        p.max_message_size = 200;
        p.max_recipients = 3;
        p.max_errors = 5;
        p.max_nomail_cmds = 5;
    }
    f.max_size = p.max_message_size ? p.max_message_size : SMTP_DEFAULT_MAX_MESSAGE_SIZE;
    struct smtp_hooks h = {
        .arg = &f, .write = h_write, .starttls = h_starttls, .check_rcpt = h_check_rcpt,
        .auth = h_auth, .data = h_data, .close = h_close,
    };
    f.s = smtp_session_new(&p, &h);
    if (!f.s)
        return 0;
    f.in = malloc(size + 1);
    if (!f.in) {
        smtp_session_free(f.s);
        return 0;
    }
    smtp_session_start(f.s);
    size_t i = 0;
    while (i < size && !f.closed) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 97;
        if (n > size - i)
            n = size - i;
        memcpy(f.in + f.inlen, data + i, n);
        f.inlen += n;
        i += n;
        pump(&f);
        answer_pending(&f);
        pump(&f);
    }
    if (flags & 0x40)
        smtp_session_shutdown(f.s);
    else if (flags & 0x80)
        smtp_session_timeout(f.s);
    answer_pending(&f);
    /* closed: nothing more is consumed or written */
    if (f.closed && smtp_session_feed(f.s, "NOOP\r\n", 6) != 0)
        __builtin_trap();
    smtp_session_free(f.s);
    free(f.in);
    return 0;
}
