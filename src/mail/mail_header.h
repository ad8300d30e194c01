/* RFC 5322 header section helpers: finding where the header section ends
 * in a stream of any chunking, and splitting it into fields.
 *
 * Line ends are CRLF or a bare LF (messages handed over by local programs
 * often use LF only); both end a line. Nothing here decodes or unfolds
 * values: a field is kept as the exact octets it had, so that DKIM can
 * canonicalize it. This module does no I/O. */
#ifndef SESAME_MAIL_MAIL_HEADER_H
#define SESAME_MAIL_MAIL_HEADER_H
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/strview.h"

/* One header field. raw spans the whole field from the first octet of its
 * name to the end of its last line, without that line's terminator, folded
 * lines (and their CRLFs) included. name is the field name without any
 * whitespace before the colon. */
struct mail_field {
    struct sv name;
    struct sv raw;
};

/* The value: raw after the colon (leading whitespace kept). */
struct sv mail_field_value(const struct mail_field *f);

/* A field name is 1*ftext: printable US-ASCII but ':' (RFC 5322 §3.6.8). */
bool mail_field_name_valid(struct sv name);

/* Splits a header section (the bytes before the empty line) into fields.
 * At most max fields are stored in out; *count receives how many fields the
 * section holds (it may exceed max). Lines that are no field (no colon, an
 * invalid name, a continuation line before any field) are skipped and
 * counted in *malformed (may be NULL). Never reads past len. */
void mail_header_fields(const char *buf, size_t len, struct mail_field *out, size_t max,
                        size_t *count, size_t *malformed);

/* Finds the header section of a whole message: *head_len is the length of
 * the header section (its last line's terminator included), *body_off the
 * offset of the body (after the empty line), or len when there is no empty
 * line (the whole message is headers and the body is empty). */
void mail_split_message(const char *msg, size_t len, size_t *head_len, size_t *body_off);

/* The same as a stream: feed the message in chunks of any size; the header
 * section is collected in head (capped), the caller gets the body. */
struct mail_splitter {
    struct buf head;      /* the header section so far, terminators included */
    size_t line_start;    /* offset in head of the line being collected */
    size_t line_len;      /* octets of that line seen so far (LF excluded) */
    bool line_cr;         /* the line so far is exactly "\r" */
    bool in_body;         /* the empty line was seen */
    bool overflow;        /* the header section exceeded the cap (the rest was dropped) */
};

void mail_splitter_init(struct mail_splitter *s, size_t cap);
void mail_splitter_free(struct mail_splitter *s);
/* Consumes header-section octets from p[0..len). Returns the number of
 * octets consumed; when that is less than len, or when s->in_body became
 * true, the rest p[ret..len) is body. On overflow the octets past the cap
 * are consumed and dropped until the empty line. Returns (size_t)-1 only
 * when memory ran out. */
size_t mail_splitter_feed(struct mail_splitter *s, const char *p, size_t len);

#endif
