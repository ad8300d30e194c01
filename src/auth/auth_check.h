/* What a receiving server concludes about one message: SPF for the MAIL
 * FROM (or HELO) identity, every DKIM signature, the RFC5322.From domain,
 * DMARC, and the Authentication-Results field that sums them up. The MX
 * and `sesame check` both call this, so they can never disagree. */
#ifndef SESAME_AUTH_AUTH_CHECK_H
#define SESAME_AUTH_AUTH_CHECK_H
#include <stddef.h>
#include <time.h>

#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "util/buf.h"

struct auth_check_input {
    struct spf_ip ip;
    const char *helo;
    const char *sender;        /* MAIL FROM; "" = null reverse-path */
    const char *authserv_id;
    time_t now;
    /* parsed DKIM keys shared across messages (NULL: none); the MX keeps
     * one per process, which saves decoding the same key for every message */
    struct dkim_keycache *keycache;
    /* pct sampling (NULL: always sampled) */
    unsigned (*random_percent)(void *arg);
    void *random_arg;
    /* also check the HELO identity (RFC 7208 §2.3; the MX does, as RFC
     * 7208 §2.3 recommends); it is reported, DMARC still uses MAIL FROM */
    bool check_helo;
};

struct auth_verdict {
    struct spf_response spf;
    struct spf_response spf_helo;  /* when check_helo and the MAIL FROM is not null */
    bool have_spf_helo;
    struct dkim_results dkim;
    char from_domain[DNS_MAX_NAME_LEN + 1]; /* "" when no usable From */
    char from_problem[200];                 /* why not ("" when usable) */
    struct dmarc_outcome dmarc;
    struct buf authres;        /* the one-line Authentication-Results field */
};

/* Runs every check on msg (headers and body, CRLF or LF). Returns 0, or -1
 * when memory ran out. Free the verdict with auth_verdict_free. */
int auth_check_message(struct dns_resolver *dns, const struct auth_check_input *in,
                       const char *msg, size_t len, struct auth_verdict *out);
/* The Authentication-Results field of a verdict again, folded for a
 * message header (CRLF + tab between results). */
int auth_verdict_authres(const struct auth_verdict *v, const struct auth_check_input *in,
                         bool folded, struct buf *out);
void auth_verdict_free(struct auth_verdict *v);

/* The From domain of a header section, by RFC 7489 §6.6.1: exactly one
 * From field with addresses all in one domain. On failure returns -1 with
 * the reason in problem. */
int auth_from_domain(const char *head, size_t len, char *domain, size_t domlen,
                     char *problem, size_t problen);

#endif
