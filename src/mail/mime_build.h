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

/* util/limits.h is not this module's file: the MIME building limits live here. */
#define MIME_FOLD_LEN           78  /* RFC 5322 §2.1.1: header lines SHOULD be shorter */
#define MIME_ENCODED_WORD_LEN   75  /* RFC 2047 §2: one encoded-word */
#define MIME_QP_LINE_LEN        76  /* RFC 2045 §6.7 (5): encoded lines, soft break '=' included */
#define MIME_B64_LINE_LEN       76  /* RFC 2045 §6.8 */
#define MIME_MAX_FIELD_NAME_LEN 76  /* an extra header's name ("Name: " fits a folded line) */

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
 * ASCII (else the value as is), folded for a field named name.
 * Appends the value only: the caller writes "Name: " before it and CRLF
 * after it; folds are CRLF + the white space that was there (ASCII values
 * are folded at their own spaces; encoded-words are UTF-8, B or Q, whichever
 * is shorter, each at most 75 octets, one per line when needed so lines
 * stay within 78 octets). An ASCII value is encoded anyway when one of its
 * words would make a line longer than 998 octets. Returns 0, or -1 for an
 * invalid name, a value that is not UTF-8 or holds CR, LF or another
 * control octet but TAB, or out's cap (out is then unchanged). */
int mime_encode_header(const char *name, const char *value, struct buf *out);

#endif
