/* The SMTP client session (RFC 5321 client side) as a state machine
 * without sockets, mirroring smtp_session.h: the transport feeds it the
 * server's bytes and sends what it writes. It reads the greeting, says
 * EHLO (HELO when EHLO is refused), takes STARTTLS when offered (or
 * required), AUTH PLAIN when relaying through a smarthost, then sends
 * messages one after another on the same connection (PIPELINING of MAIL
 * and RCPTs when offered; SIZE, 8BITMIME and SMTPUTF8 negotiated), and
 * reports one outcome per recipient and per message. Timeouts are the
 * transport's: it asks smtp_client_timeout_ms() what RFC 5321 §4.5.3.2
 * allows for the current step. */
#ifndef SESAME_SMTP_SMTP_CLIENT_H
#define SESAME_SMTP_SMTP_CLIENT_H
#include <stdbool.h>
#include <stddef.h>

#include "util/limits.h"

/* Reply limits (to move into util/limits.h): a reply line is 512 octets
 * with its CRLF (RFC 5321 §4.5.3.1.5); a longer one is cut there and the
 * rest of it discarded. A whole (multi-line) reply over 64 KiB ends the
 * session (FAILED). */
#define SMTP_CLIENT_REPLY_LINE_MAX 512
#define SMTP_CLIENT_REPLY_MAX      65536

enum smtp_client_tls { SMTP_TLS_OPPORTUNISTIC = 0, SMTP_TLS_REQUIRED, SMTP_TLS_NEVER };

struct smtp_client_params {
    const char *helo_name;       /* our host name */
    enum smtp_client_tls tls;
    bool tls_available;          /* the transport can do TLS */
    const char *auth_user;       /* smarthost AUTH (NULL: none); only over TLS */
    const char *auth_password;
};

/* One server reply as received (multi-line joined with '\n'). */
struct smtp_client_reply {
    int code;                    /* 0: no reply (connection lost, timeout) */
    char enhanced[16];           /* "5.1.1" or "" */
    char text[512];
};

enum smtp_client_event {
    SMTP_CLIENT_READY,           /* greeted, EHLO (and TLS, AUTH) done: can send */
    SMTP_CLIENT_FAILED,          /* the session cannot be used (reply says why) */
    SMTP_CLIENT_CLOSED,          /* QUIT answered, or the server closed */
};

/* Hooks are called from inside smtp_client_feed / _send / _tls_done /
 * _abort. message_done and the READY event may call smtp_client_send or
 * smtp_client_quit (the client is READY by then); no hook may call
 * smtp_client_free, and write must not call back into the client (a
 * transport that sees a write error calls smtp_client_abort afterwards).
 * After FAILED or CLOSED nothing more is written or reported. */
struct smtp_client_hooks {
    void *arg;
    void (*write)(void *arg, const char *data, size_t len);
    /* Start TLS now (after "220" to STARTTLS); call smtp_client_tls_done. */
    void (*starttls)(void *arg);
    void (*event)(void *arg, enum smtp_client_event ev, const struct smtp_client_reply *r);
    /* Per recipient of the current message, in order; accepted = 2xx to
     * RCPT (the final word comes with message_done). */
    void (*rcpt_done)(void *arg, size_t index, const struct smtp_client_reply *r);
    /* The message: the DATA reply (or the MAIL / DATA refusal, or code 0
     * when the connection was lost). Recipients refused at RCPT keep their
     * own reply; the others share this one. */
    void (*message_done)(void *arg, const struct smtp_client_reply *r);
};

struct smtp_client;

struct smtp_client *smtp_client_new(const struct smtp_client_params *p,
                                    const struct smtp_client_hooks *h);
void smtp_client_free(struct smtp_client *c);

/* Feeds server bytes; returns how many were consumed (the rest is an
 * incomplete line: feed it again with what follows). */
size_t smtp_client_feed(struct smtp_client *c, const char *data, size_t len);
void smtp_client_tls_done(struct smtp_client *c, bool ok);
/* What the server offered (valid after READY). */
bool smtp_client_has(const struct smtp_client *c, const char *extension); /* "PIPELINING" */
size_t smtp_client_max_size(const struct smtp_client *c);  /* SIZE, 0 = none */

/* Sends one message (msg with CRLF line ends; the client dot-stuffs).
 * Only when READY and no message is in flight. Returns 0, or -1 (not
 * ready, or the message cannot go: SIZE exceeded, 8-bit or UTF-8 without
 * the extension — message_done then reports 5xx-equivalent code 554). */
int smtp_client_send(struct smtp_client *c, const char *mail_from, bool smtputf8,
                     const char *const *rcpts, size_t nrcpt, const char *msg, size_t len);
/* RSET between messages is implicit; QUIT when done. */
void smtp_client_quit(struct smtp_client *c);
/* The transport lost the connection or timed out: ends everything with
 * code 0 replies. */
void smtp_client_abort(struct smtp_client *c, const char *why);
/* Milliseconds the current step may wait for the server (RFC 5321
 * §4.5.3.2: greeting 5 min, MAIL 5, RCPT 5, DATA 2, data block 3, end of
 * data 10 min); tests may scale them with smtp_client_set_timeout_scale. */
unsigned smtp_client_timeout_ms(const struct smtp_client *c);
/* Added: how long one write may take to drain (the "data block" timeout of
 * §4.5.3.2.5, 3 min), for the transport's write timeout; scaled too. */
unsigned smtp_client_write_timeout_ms(const struct smtp_client *c);
/* Added: multiplies every timeout above (tests: 0.001 makes 5 min 300 ms).
 * Default 1. */
void smtp_client_set_timeout_scale(struct smtp_client *c, double scale);

#endif
