/* The SMTP server session (RFC 5321, ESMTP extensions) as a state machine
 * with a command table, independent of sockets: the transport feeds it
 * bytes and it writes replies through a hook. Both listeners (MX and
 * submission) use it; the policy (which recipients, which senders, what to
 * do with a message) lives in hooks, so transcript tests and fuzzers drive
 * it with no network at all.
 *
 * Two steps are asynchronous because they are slow: AUTH (an argon2id
 * verify) and the end of DATA (authentication checks, then a durable store
 * write). The session then waits: it consumes no more input until the
 * service calls smtp_session_auth_done or smtp_session_data_done, so a
 * pipelining client's next commands stay in the transport's buffer.
 *
 * Extensions: SIZE, PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
 * STARTTLS, AUTH PLAIN LOGIN. DATA ends only at CRLF.CRLF; a bare CR or LF
 * anywhere in DATA makes the whole message refused (SMTP smuggling). */
#ifndef SESAME_SMTP_SMTP_SESSION_H
#define SESAME_SMTP_SMTP_SESSION_H
#include <stdbool.h>
#include <stddef.h>

#include "util/limits.h"

/* One reply. text may hold several lines separated by '\n'; each becomes
 * "code-enhanced text" / "code enhanced text". enhanced "" = none. */
struct smtp_reply {
    int code;
    char enhanced[16];
    char text[512];
    bool close;          /* close the connection after this reply */
};

struct smtp_session_params {
    const char *hostname;        /* greeting and EHLO reply */
    bool submission;             /* AUTH required before MAIL (530 5.7.0) */
    bool offer_auth;             /* AUTH advertised and accepted */
    bool auth_needs_tls;         /* AUTH only after STARTTLS (538/530 5.7.0 before) */
    bool tls_available;          /* STARTTLS advertised (a certificate is loaded) */
    size_t max_message_size;     /* SIZE; 0 = SMTP_DEFAULT_MAX_MESSAGE_SIZE */
    unsigned max_recipients;     /* 0 = SMTP_MAX_RECIPIENTS */
    unsigned max_errors;         /* 0 = SMTP_MAX_ERRORS */
    unsigned max_nomail_cmds;    /* 0 = SMTP_MAX_NOMAIL_CMDS */
};

/* What the session knows; valid for the hooks' duration. */
struct smtp_envelope {
    char helo[SMTP_MAX_DOMAIN_LEN + 1];
    bool esmtp;                  /* EHLO (not HELO) */
    bool tls;                    /* STARTTLS done */
    bool authenticated;
    char auth_user[256];         /* the AUTH identity once authenticated */
    char mail_from[SMTP_MAX_PATH_LEN + 1]; /* "" = null reverse-path <> */
    bool smtputf8;               /* MAIL ... SMTPUTF8 */
    bool body_8bit;              /* BODY=8BITMIME */
    size_t declared_size;        /* SIZE= (0 when absent) */
    char **rcpts;                /* accepted recipients, as given (no <>) */
    size_t nrcpt;
};

struct smtp_hooks {
    void *arg;
    /* Bytes for the client, in order. Required. */
    void (*write)(void *arg, const char *data, size_t len);
    /* The session wrote "220 2.0.0 Ready to start TLS": the transport must
     * flush that, then run the TLS handshake before feeding more input, and
     * call smtp_session_tls_started. Any input already fed after STARTTLS is
     * discarded by the session (RFC 3207 §4.2 / CVE-2011-0411). */
    void (*starttls)(void *arg);
    /* Policy checks, synchronous; NULL = accept. Return false and fill r to
     * refuse. check_mail sees env->mail_from and the parameters; check_rcpt
     * sees the recipient before it is added to env->rcpts. */
    bool (*check_helo)(void *arg, const struct smtp_envelope *env, struct smtp_reply *r);
    bool (*check_mail)(void *arg, const struct smtp_envelope *env, struct smtp_reply *r);
    bool (*check_rcpt)(void *arg, const struct smtp_envelope *env, const char *rcpt,
                       struct smtp_reply *r);
    /* AUTH: start verifying; answer later with smtp_session_auth_done (which
     * may also be called before the hook returns; user and password are
     * only valid until the answer or the hook's return, whichever is first). */
    void (*auth)(void *arg, const char *user, const char *password);
    /* End of DATA with a well-formed message (CRLF line ends, dots
     * unstuffed). The hook owns msg (free() it). Answer later with
     * smtp_session_data_done (possibly before returning: env is then no
     * longer valid). */
    void (*data)(void *arg, const struct smtp_envelope *env, char *msg, size_t len);
    /* The session is over (QUIT, 421, too many errors): flush pending
     * output, then close. The session must not be fed again. */
    void (*close)(void *arg);
};

struct smtp_session;

struct smtp_session *smtp_session_new(const struct smtp_session_params *p,
                                      const struct smtp_hooks *h);
void smtp_session_free(struct smtp_session *s);

/* Writes the 220 greeting. */
void smtp_session_start(struct smtp_session *s);
/* Feeds input; returns how many bytes were consumed. Unconsumed bytes are
 * an incomplete line, or input that arrived while the session waits: keep
 * them and feed them again (with whatever follows) later. A line longer
 * than the limit is consumed and refused (500 5.5.2 / 552 5.3.4 in DATA). */
size_t smtp_session_feed(struct smtp_session *s, const char *data, size_t len);
/* True while an AUTH or DATA answer is outstanding. */
bool smtp_session_waiting(const struct smtp_session *s);
/* True once the session has asked to close. */
bool smtp_session_closed(const struct smtp_session *s);
/* Bytes the session holds now (struct, recipients, message buffer): about
 * 1.3 KiB when idle; for metrics and the memory-per-session budget. */
size_t smtp_session_memory(const struct smtp_session *s);

/* TLS is up: forget HELO, AUTH and the transaction (RFC 3207 §4.2). */
void smtp_session_tls_started(struct smtp_session *s);
/* The AUTH outcome: 235 2.7.0, or 535 5.7.8 (counts as an error). */
void smtp_session_auth_done(struct smtp_session *s, bool ok, const char *identity);
/* The reply to the end of DATA; the transaction is reset either way. */
void smtp_session_data_done(struct smtp_session *s, const struct smtp_reply *r);

/* 421 4.4.2 idle timeout, then close. */
void smtp_session_timeout(struct smtp_session *s);
/* 421 4.3.2 shutting down, then close; if waiting, after the answer. */
void smtp_session_shutdown(struct smtp_session *s);

/* Writes one reply (helper also used by the service for early refusals:
 * "421 4.7.0 too many connections" before any session exists). */
void smtp_reply_format(const struct smtp_reply *r, char *out, size_t outlen, size_t *written);
void smtp_reply_set(struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
