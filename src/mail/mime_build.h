/* Building the messages the API sends (POST /v1/messages): a structured
 * request becomes a correct RFC 5322 / MIME message (Date, Message-ID,
 * MIME-Version; text, html or multipart/alternative; encoded-words for
 * non-ASCII header text (RFC 2047); quoted-printable or base64 bodies;
 * header lines folded under 78 columns), and a raw message is checked
 * (size, line length, required fields) and kept byte-exact. */
#ifndef SESAME_MAIL_MIME_BUILD_H
#define SESAME_MAIL_MIME_BUILD_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util/buf.h"

struct mime_header { const char *name; const char *value; };

struct mime_message {
    const char *from;            /* "Name <addr>" or "addr"; required */
    const char *const *to; size_t nto;
    const char *const *cc; size_t ncc;
    /* bcc never appears in the header; the caller adds them to the envelope */
    const char *reply_to;        /* NULL: none */
    const char *subject;         /* UTF-8; NULL: empty */
    const char *text;            /* UTF-8 bodies; at least one of text/html */
    const char *html;
    const struct mime_header *headers; size_t nheaders; /* extra fields, checked */
    const char *message_id_domain;  /* right-hand side of the generated Message-ID */
    time_t now;                  /* Date */
};

/* Builds the message into out (CRLF line ends). Returns 0, or -1 with a
 * one-line reason in err (bad address, a header name or value that is not
 * allowed — e.g. CR/LF injection, a forbidden field such as Bcc or
 * DKIM-Signature in headers —, no body, too large for out's cap). */
int mime_build(const struct mime_message *m, struct buf *out, char *err, size_t errlen);

/* Checks a raw message before it is queued: at most max_size octets,
 * every line CRLF-terminated (a bare LF or CR is refused: the message is
 * kept byte-exact, so it must already be canonical) and at most
 * 998 octets plus CRLF, a header section with exactly one From and one
 * Date at most, no NUL. Returns 0, or -1 with err. has_date/has_msgid
 * tell the caller what to add (RFC 6409 §8). */
int mime_check_raw(const char *msg, size_t len, size_t max_size, bool *has_date,
                   bool *has_msgid, char *err, size_t errlen);

/* RFC 2047 encoded-word(s) for a header value when it is not printable
 * ASCII (else the value as is), folded for a field named name. */
int mime_encode_header(const char *name, const char *value, struct buf *out);

#endif
