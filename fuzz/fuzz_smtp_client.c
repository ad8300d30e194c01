/* libFuzzer target: an SMTP client sending messages while the input plays
 * the server, fed at pseudo-random splits as a transport would (unconsumed
 * bytes kept and fed again). Input: 4 bytes of setup (TLS policy, TLS
 * available, AUTH, handshake outcome, split seed), then the server bytes.
 * The client sends a message whenever it is READY (up to 4), STARTTLS
 * completes at the next chunk, and the connection is aborted at the end.
 * Invariants: nothing is written or reported after FAILED/CLOSED; feed
 * never claims more than it was given and never leaves a transport more
 * than one reply line to hold; every write ends in CRLF; each accepted send
 * gets exactly one rcpt_done per recipient, in order, then one
 * message_done; nothing is reported for a message not in flight. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client.h"

struct fz {
    struct smtp_client *c;
    bool over;
    bool want_tls;
    bool tls_ok;
    bool in_msg;
    bool sending;             /* inside smtp_client_send */
    size_t nrcpt, next_rcpt;
    int attempts, sent, done;
};

static const char *const RCPTS[] = { "b@rcpt.test", "c@rcpt.test", "d@rcpt.test" };
static const char MSG[] = "Subject: x\r\n\r\n.dot\r\n\xc3\xa9\r\nend";

static void try_send(struct fz *f)
{
    if (f->over || f->in_msg || f->sending || f->attempts >= 6)
        return;
    int k = f->attempts++;
    size_t n = (size_t)(k % 3) + 1;
    f->in_msg = true;
    f->nrcpt = n;
    f->next_rcpt = 0;
    f->sending = true;
    int rc = smtp_client_send(f->c, k == 2 ? "" : "a@sender.test", false, RCPTS, n, MSG,
                              k % 2 ? 10 : sizeof MSG - 1);
    f->sending = false;
    if (rc == 0)
        f->sent++;
    else
        f->in_msg = false;   /* not ready, or refused here (message_done came) */
}

static void h_write(void *arg, const char *data, size_t len)
{
    struct fz *f = arg;
    if (f->over || len < 2 || data[len - 2] != '\r' || data[len - 1] != '\n')
        __builtin_trap();
}

static void h_starttls(void *arg)
{
    struct fz *f = arg;
    if (f->over || f->want_tls)
        __builtin_trap();
    f->want_tls = true;
}

static void h_event(void *arg, enum smtp_client_event ev, const struct smtp_client_reply *r)
{
    struct fz *f = arg;
    if (f->over || !r)
        __builtin_trap();
    if (memchr(r->text, '\0', sizeof r->text) == NULL ||
        memchr(r->enhanced, '\0', sizeof r->enhanced) == NULL)
        __builtin_trap();
    if (ev != SMTP_CLIENT_READY) {
        if (f->in_msg)
            __builtin_trap();   /* the message's outcome comes first */
        f->over = true;
        return;
    }
    try_send(f);
}

static void h_rcpt(void *arg, size_t index, const struct smtp_client_reply *r)
{
    struct fz *f = arg;
    if (!f->in_msg || index != f->next_rcpt || index >= f->nrcpt || !r)
        __builtin_trap();
    f->next_rcpt++;
}

static void h_done(void *arg, const struct smtp_client_reply *r)
{
    struct fz *f = arg;
    if (!r || f->over)
        __builtin_trap();
    if (!f->in_msg || f->next_rcpt != (f->sending ? 0 : f->nrcpt))
        __builtin_trap();
    for (size_t i = 0; i < sizeof r->text; i++) {
        unsigned char ch = (unsigned char)r->text[i];
        if (ch == '\0')
            break;
        if ((ch < 0x20 && ch != '\n') || ch >= 0x7f)
            __builtin_trap();
    }
    f->in_msg = false;
    if (!f->sending)
        f->done++;
    try_send(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct fz f;
    memset(&f, 0, sizeof f);
    struct smtp_client_params p = {
        .helo_name = "client.test",
        .tls = (enum smtp_client_tls)(data[0] % 3),
        .tls_available = (data[0] & 4) != 0,
        .auth_user = (data[0] & 8) ? "user" : NULL,
        .auth_password = (data[0] & 8) ? "pass" : NULL,
    };
    f.tls_ok = (data[0] & 16) != 0;
    bool quit_at_end = (data[0] & 32) != 0;
    unsigned seed = (unsigned)data[1] | (unsigned)data[2] << 8 | (unsigned)data[3] << 16;
    data += 4;
    size -= 4;
    struct smtp_client_hooks h = {
        .arg = &f, .write = h_write, .starttls = h_starttls, .event = h_event,
        .rcpt_done = h_rcpt, .message_done = h_done,
    };
    f.c = smtp_client_new(&p, &h);
    if (!f.c)
        __builtin_trap();

    char *pend = malloc(size + 1);
    if (!pend)
        return 0;
    size_t pendlen = 0, off = 0;
    while (off < size) {
        if (f.want_tls) {
            f.want_tls = false;
            smtp_client_tls_done(f.c, f.tls_ok);
        }
        seed = seed * 1103515245u + 12345u;
        size_t n = (size_t)(seed >> 16) % 64 + 1;
        if (n > size - off)
            n = size - off;
        memcpy(pend + pendlen, data + off, n);
        pendlen += n;
        off += n;
        size_t used = smtp_client_feed(f.c, pend, pendlen);
        if (used > pendlen)
            __builtin_trap();
        memmove(pend, pend + used, pendlen - used);
        pendlen -= used;
        if (pendlen >= SMTP_CLIENT_REPLY_LINE_MAX)
            __builtin_trap();
        if (!f.over && (seed & 0x100))
            (void)smtp_client_timeout_ms(f.c);
        try_send(&f);
    }
    if (quit_at_end)
        smtp_client_quit(f.c);
    smtp_client_abort(f.c, "end of input");
    if (!f.over || f.in_msg || f.done != f.sent)
        __builtin_trap();
    /* nothing happens after the end */
    if (smtp_client_feed(f.c, "250 ok\r\n", 8) != 8)
        __builtin_trap();
    smtp_client_tls_done(f.c, true);
    smtp_client_quit(f.c);
    free(pend);
    smtp_client_free(f.c);
    return 0;
}
