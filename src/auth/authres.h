/* Authentication-Results (RFC 8601): the header field a receiver adds with
 * its SPF, DKIM and DMARC verdicts, and the check that finds copies which
 * claim our authserv-id (forged upstream) so they can be removed first. */
#ifndef SESAME_AUTH_AUTHRES_H
#define SESAME_AUTH_AUTHRES_H
#include <stdbool.h>
#include <stddef.h>

#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "util/buf.h"
#include "util/strview.h"

struct authres_input {
    const char *authserv_id;             /* our host name */
    const struct spf_response *spf;      /* NULL: no spf= */
    const char *mailfrom;                /* the MAIL FROM address ("" = null) */
    const char *helo;
    const struct dkim_results *dkim;     /* NULL: no dkim=; count 0: dkim=none */
    const struct dmarc_outcome *dmarc;   /* NULL: no dmarc= */
    /* the HELO identity's own check (RFC 7208 §2.3), printed as a second
     * spf= with smtp.helo when the MAIL FROM is not null; NULL: none */
    const struct spf_response *spf_helo;
};

/* Writes "Authentication-Results: id; spf=...; dkim=...; dmarc=..." to out
 * (reset first). folded: CRLF + tab before each result (for a message),
 * else one line (for JSON). No trailing CRLF. Returns 0 or -1 (cap). */
int authres_format(const struct authres_input *in, bool folded, struct buf *out);

/* Whether the value of an Authentication-Results field starts with
 * authserv_id (case-insensitive, CFWS and a version number allowed). */
bool authres_claims_id(struct sv value, const char *authserv_id);

#endif
