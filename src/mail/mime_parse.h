/* A small, bounded MIME reader for the messages sesame has to understand
 * (delivery status notifications, abuse reports, DMARC report mail): the
 * part tree of a message (RFC 2045/2046 multiparts, nested up to
 * MIME_MAX_DEPTH, at most MIME_MAX_PARTS parts), Content-Type and its
 * parameters, header fields looked up by name, and Content-Transfer-Encoding
 * decoding (base64, quoted-printable). CRLF or bare LF line ends.
 *
 * It does not descend into message/rfc822 parts (their body is the whole
 * attached message, which a caller may parse again), does not decode
 * RFC 2047 encoded-words, RFC 2231 parameter continuations or charsets.
 * Parts point into the caller's buffer: nothing is copied. No I/O. */
#ifndef SESAME_MAIL_MIME_PARSE_H
#define SESAME_MAIL_MIME_PARSE_H
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/strview.h"

/* util/limits.h is not this module's file: the MIME limits live here. */
#define MIME_MAX_DEPTH        8     /* nested multiparts (the message is depth 0) */
#define MIME_MAX_PARTS        64    /* parts kept per message, the message included */
#define MIME_MAX_BOUNDARY_LEN 70    /* RFC 2046 §5.1.1 */
#define MIME_MAX_TYPE_LEN     127   /* "type/subtype" kept */

enum mime_cte {
    MIME_CTE_IDENTITY = 0,       /* 7bit, 8bit, binary or absent */
    MIME_CTE_BASE64,
    MIME_CTE_QP,
    MIME_CTE_OTHER,              /* an encoding we do not know: decoded as identity */
};

struct mime_part {
    struct sv head;              /* header section (terminators included); may be empty */
    struct sv body;              /* body as found, still transfer-encoded; for a
                                    multipart, everything after its header section */
    char type[MIME_MAX_TYPE_LEN + 1]; /* lower-cased type/subtype; the RFC 2045/2046
                                    default when absent or unparsable */
    enum mime_cte cte;
    int parent;                  /* index of the enclosing multipart; -1 for the message */
    unsigned depth;              /* 0 for the message itself */
    bool multipart;              /* a multipart (any subtype): its children follow it */
    bool unterminated;           /* multipart whose close-delimiter never came */
};

struct mime_tree {
    struct mime_part part[MIME_MAX_PARTS]; /* depth first, document order; [0] is the message */
    size_t nparts;
    bool truncated;              /* parts beyond MIME_MAX_PARTS or deeper than
                                    MIME_MAX_DEPTH were not kept */
};

/* Reads the part tree of a whole message. Lenient like a mail reader: a
 * multipart without boundary is a leaf, a missing close-delimiter ends the
 * last part at the end of its parent (unterminated is set), preamble and
 * epilogue are ignored. Returns 0, or -1 (err set) for input that is not a
 * message at all: a NUL octet. */
int mime_parse(const char *msg, size_t len, struct mime_tree *t, char *err, size_t errlen);

/* Walks the fields of a header section: *pos starts at 0; each call gives
 * the next field's name and its raw value (after the colon, folding kept).
 * Lines that are no field are skipped. Returns false at the end. */
bool mime_header_next(struct sv head, size_t *pos, struct sv *name, struct sv *value);
/* The first field called name (case-insensitive); false when absent. */
bool mime_header_get(struct sv head, const char *name, struct sv *value);
size_t mime_header_count(struct sv head, const char *name);

/* A Content-Type value's "type/subtype", lower-cased, into out; false (out
 * empty) when it has none. Comments and white space are skipped. */
bool mime_content_type(struct sv value, char *out, size_t outlen);
/* The value of parameter name (case-insensitive) of a Content-Type (or
 * Content-Disposition) value: token or quoted-string (quotes and
 * quoted-pairs removed). False when absent, empty or longer than outlen-1. */
bool mime_param(struct sv value, const char *name, char *out, size_t outlen);

/* The body of p with its Content-Transfer-Encoding undone, appended to out
 * (base64 through OpenSSL; quoted-printable leniently: a bad escape is
 * kept as it is, soft line breaks removed). Returns 0, or -1 when out's
 * cap is reached or the base64 is invalid. */
__attribute__((warn_unused_result)) int mime_decode_body(const struct mime_part *p,
                                                         struct buf *out);

/* A header value made presentable: folding removed, leading and trailing
 * white space trimmed, runs of white space collapsed to one space, control
 * octets replaced by '?', cut (at a UTF-8 character boundary) to fit
 * outlen-1. Returns the length written. */
size_t mime_unfold(struct sv value, char *out, size_t outlen);

#endif
