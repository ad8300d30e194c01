/* SPF check_host() of RFC 7208, for the MAIL FROM and HELO identities.
 *
 * The engine is pure: every DNS answer comes from the dns_resolver it is
 * given, and the time (for the %{t} macro) from the request. It is
 * reentrant; one evaluation runs on one thread. */
#ifndef SESAME_AUTH_SPF_H
#define SESAME_AUTH_SPF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dns/dns.h"
#include "util/limits.h"

enum spf_result {
    SPF_NONE = 0,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR,
};

/* An IP address as SPF sees it: IPv4-mapped IPv6 is treated as IPv4
 * (RFC 7208 §5). */
struct spf_ip {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t addr[16];    /* 4 or 16 bytes used */
};

/* Parses "192.0.2.1", "2001:db8::1" or "::ffff:192.0.2.1"; 0 or -1. */
int spf_ip_parse(const char *text, struct spf_ip *out);

struct spf_request {
    struct spf_ip ip;           /* the SMTP client's address */
    const char *sender;         /* MAIL FROM address; "" = null reverse-path */
    const char *helo;           /* HELO/EHLO name ("" when unknown) */
    const char *receiver;       /* %{r}; NULL → "unknown" */
    time_t now;                 /* %{t}; tests set it */
    /* Text to report on fail when the record gives no usable exp=
     * (NULL: explanation stays NULL). */
    const char *default_explanation;
};

struct spf_response {
    enum spf_result result;
    char domain[DNS_MAX_NAME_LEN + 1];   /* the <domain> check_host() started at */
    char mechanism[256];  /* the term that matched, e.g. "ip4:192.0.2.0/24" ("" none;
                             "default" when no term matched and ?all was implied) */
    char *explanation;    /* malloc'd, fail only (or NULL) */
    unsigned dns_lookups; /* DNS-querying terms counted against the limit of 10 */
    unsigned void_lookups;
    char problem[256];    /* why permerror/temperror/none, in words ("" otherwise) */
};

/* check_host() for the MAIL FROM identity (RFC 7208 §2.4): the domain of
 * sender, or of postmaster@helo when the sender is null. */
void spf_check_mailfrom(struct dns_resolver *dns, const struct spf_request *req,
                        struct spf_response *out);
/* check_host() for the HELO identity (§2.3). */
void spf_check_helo(struct dns_resolver *dns, const struct spf_request *req,
                    struct spf_response *out);
void spf_response_free(struct spf_response *r);

const char *spf_result_name(enum spf_result r); /* "pass", "permerror", ... */

#endif
