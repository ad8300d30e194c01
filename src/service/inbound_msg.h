/* The header rewrite the inbound MX applies to every message it accepts:
 * Authentication-Results fields that claim our authserv-id (forged
 * upstream, RFC 8601 §5) are removed, ours and a Received field are
 * prepended, folded; plus the Received value itself (RFC 5321 §4.4) and the
 * listing summary the store keeps (Message-ID, Subject, From).
 *
 * Also the header-section walker and value unfolding that the receiving
 * rules (rules.c) share. Nothing here does I/O or decides anything about
 * authentication: the verdict comes from auth/ as text. */
#ifndef SESAME_SERVICE_INBOUND_MSG_H
#define SESAME_SERVICE_INBOUND_MSG_H
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util/buf.h"
#include "util/strview.h"

/* Header fields we write are folded so that no line exceeds this many
 * columns where white space allows (RFC 5322 §2.1.1 SHOULD). */
#define INBOUND_FOLD_COLUMNS 78

/* Rewrites msg (header section and body; CRLF, or LF only): drops every
 * Authentication-Results field whose authserv-id is authserv_id, then puts
 * "Authentication-Results: <authres_value>" on top and
 * "Received: <received_value>" right below it, both folded at
 * INBOUND_FOLD_COLUMNS. authres_value may carry a leading
 * "Authentication-Results:" (auth_verdict.authres is the whole field); it
 * is dropped. Values may be folded already (CRLF + WSP); any other CR or LF
 * in them is refused. Lines we add end like the message's first line
 * (CRLF when it has none); everything else is copied verbatim, except
 * continuation lines at the very top, which belong to no field and would
 * otherwise continue our Received field.
 * out is reset first. *removed (may be NULL) is how many fields were
 * dropped. Returns 0, or -1 on a refused value or when out hit its cap. */
__attribute__((warn_unused_result))
int inbound_msg_rewrite(const char *msg, size_t len, const char *authserv_id,
                        const char *authres_value, const char *received_value, struct buf *out,
                        size_t *removed);

/* The value of our Received field (RFC 5321 §4.4 Stamp):
 *   from HELO (RDNS [IP]) by HOST with PROTO (TLS) id ID for <RCPT>; DATE
 * A HELO that is neither a domain nor an address literal is not repeated:
 * the client's address literal stands in for it. rdns, tls_desc and
 * for_rcpt may be NULL (then their part is left out; an unusable rdns or
 * for_rcpt is left out too). protocol is a RFC 3848 / RFC 6531 keyword
 * (ESMTP, ESMTPS, ESMTPSA, UTF8SMTPS, ...). DATE is RFC 5322, in UTC.
 * Returns 0, or -1 when an argument is unusable (client_ip not an
 * address, by_host, protocol or id not a token) or out is too small. */
__attribute__((warn_unused_result))
int inbound_msg_received(char *out, size_t outlen, const char *helo, const char *client_ip,
                         const char *rdns, const char *by_host, const char *protocol,
                         const char *tls_desc, const char *id, const char *for_rcpt,
                         time_t when);

/* The first Message-ID, Subject and From values of msg's header section,
 * unfolded, white space trimmed, control characters made spaces, invalid
 * UTF-8 octets made '?', and cut at a character boundary to fit (each
 * buffer is always NUL-terminated; "" when the field is absent). Encoded
 * words are left as they are. Returns 0, or -1 when a size is 0. */
int inbound_msg_summary(const char *msg, size_t len, char *message_id, size_t mid_len,
                        char *subject, size_t subject_len, char *from, size_t from_len);

/* ---- header section walking (shared with rules.c) ---- */

/* One entity of a header section: a field with its continuation lines, or
 * a line that is no field (no colon, invalid name, a continuation with
 * nothing before it) with the continuation lines that follow it. */
struct inbound_hdr_entity {
    size_t start, end;  /* offsets in the section; end is past the last line's LF */
    struct sv name;     /* the field name, WSP before the colon excluded; len 0: no field */
    struct sv value;    /* after the colon up to the last line's terminator (excluded) */
};

struct inbound_hdr_walk {
    const char *buf;
    size_t len, pos;
};

/* head is a header section without the empty line that ends it (the
 * head_len of mail_split_message). Walking stores nothing, so sections of
 * any field count take linear time. */
void inbound_hdr_walk_init(struct inbound_hdr_walk *w, const char *head, size_t len);
bool inbound_hdr_next(struct inbound_hdr_walk *w, struct inbound_hdr_entity *e);

/* Unfolds a field value into out (always NUL-terminated, at most
 * outlen - 1 octets): line breaks inside it (CRLF or LF, each followed by
 * WSP) are removed so the WSP stays, leading and trailing WSP are trimmed,
 * and NULs become spaces. Returns the length written. */
size_t inbound_unfold(struct sv value, char *out, size_t outlen);

#endif
