/* Feedback that comes back to the bounce address: delivery status
 * notifications (RFC 3464 multipart/report; report-type=delivery-status)
 * and abuse reports (RFC 5965 ARF; report-type=feedback-report). Parsers
 * of hostile input: bounded, never past len, sticky errors. Auto-replies
 * (RFC 3834 Auto-Submitted, "out of office") are recognised so they are
 * never taken for bounces. */
#ifndef SESAME_MAIL_DSN_H
#define SESAME_MAIL_DSN_H
#include <stdbool.h>
#include <stddef.h>

#include "util/limits.h"

#define DSN_MAX_RECIPIENTS 32
/* A report part (message/delivery-status, message/feedback-report, the
 * returned headers, a text bounce) is decoded into at most this much. */
#define FEEDBACK_MAX_PART_SIZE (256 * 1024)

enum feedback_kind {
    FEEDBACK_NONE = 0,           /* neither: an ordinary message */
    FEEDBACK_DSN,                /* delivery status notification */
    FEEDBACK_ARF,                /* abuse/complaint report */
    FEEDBACK_AUTOREPLY,          /* vacation / auto-responder: not a bounce */
};

struct dsn_recipient {
    char final_recipient[SMTP_MAX_PATH_LEN + 1];    /* address only, "rfc822;" removed */
    char original_recipient[SMTP_MAX_PATH_LEN + 1];
    char action[16];             /* failed, delayed, delivered, relayed, expanded */
    char status[16];             /* "5.1.1" */
    char diagnostic[512];        /* Diagnostic-Code, e.g. "smtp; 550 5.1.1 no such user" */
    char remote_mta[256];
};

struct feedback {
    enum feedback_kind kind;
    /* DSN */
    char reporting_mta[256];
    struct dsn_recipient rcpts[DSN_MAX_RECIPIENTS];
    size_t nrcpts;
    /* ARF */
    char feedback_type[32];      /* abuse, fraud, virus, other, not-spam */
    char user_agent[128];
    char arf_original_rcpt[SMTP_MAX_PATH_LEN + 1]; /* Original-Rcpt-To, if given */
    char arf_original_mail_from[SMTP_MAX_PATH_LEN + 1]; /* Original-Mail-From, if given */
    /* both: the returned original message's Message-ID, when present */
    char original_message_id[256];
    /* DSN read from a plain-text bounce (no multipart/report): one
     * recipient, guessed from the text (see docs/mime.md) */
    bool heuristic;
};

/* Classifies and parses a whole message (header and body, CRLF or LF).
 * Returns 0 (out->kind says what it is, FEEDBACK_NONE included), or -1 for
 * a report that claims to be one but is malformed (err says why). */
int feedback_parse(const char *msg, size_t len, struct feedback *out, char *err, size_t errlen);

/* The same, knowing the envelope sender the message came with (MAIL FROM,
 * "" for the null reverse-path; NULL: unknown, then a Return-Path field is
 * believed when there is one). A plain-text bounce is only recognised
 * from the null reverse-path. feedback_parse is this with NULL. */
int feedback_parse_envelope(const char *msg, size_t len, const char *mail_from,
                            struct feedback *out, char *err, size_t errlen);

#endif
