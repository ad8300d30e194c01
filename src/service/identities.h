/* Identities: the domains and single addresses an account may send as,
 * and (domains) receive for. A domain is verified by a TXT record
 * "_sesame.DOMAIN TXT sesame-verification=TOKEN" the account publishes; a
 * verified domain belongs to one account only. This is the core the CLI
 * (`sesame domain ...`) and the API (/v1/domains) share; the DKIM, SPF,
 * DMARC, MAIL FROM and MX records are added to the list by the identities
 * issue that follows. */
#ifndef SESAME_SERVICE_IDENTITIES_H
#define SESAME_SERVICE_IDENTITIES_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "dns/dns.h"
#include "store/store.h"

#define IDENTITY_VERIFY_PREFIX "sesame-verification="
#define IDENTITY_VERIFY_LABEL  "_sesame"
/* Random bytes in a token; it is written as lower-case hex (DNS-safe). */
#define IDENTITY_TOKEN_BYTES   32
/* Longest domain accepted: _sesame.DOMAIN must still be a valid name. */
#define IDENTITY_DOMAIN_MAX    (DNS_MAX_NAME_LEN - (int)sizeof(IDENTITY_VERIFY_LABEL))
/* identity_domain_add/verify: the domain name given is not acceptable. */
#define IDENTITY_BADNAME       (-2)

/* Normalises a domain name given by a user: lower case, no trailing dot,
 * LDH labels, at least two labels. Returns 0, or -1 with err.
 * (Details: labels of 1..63 letters, digits and inner hyphens; non-ASCII
 * bytes are refused with a hint to give the xn-- form; an all-digit last
 * label is refused, so IP addresses are too; at most IDENTITY_DOMAIN_MAX.) */
int identity_domain_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen);

/* Adds DOMAIN to the account (pending, new token); adding it again returns
 * the existing identity. Returns STORE_OK, STORE_ERROR, or -2 for a bad
 * name (err says why). */
int identity_domain_add(struct store *st, int64_t account_id, const char *domain,
                        struct store_domain *out, char *err, size_t errlen);
/* Looks the verification record up now and updates the status: verified
 * when the TXT holds the token (STORE_EXISTS if another account verified
 * it first), failed when DNS answered without it, unchanged (and
 * *tempfail set) when DNS did not answer.
 * (Details: on STORE_OK err holds the reason for the outcome, one sentence
 * for a person; STORE_NOTFOUND when the account has not added the domain,
 * IDENTITY_BADNAME for a bad name. A domain already verified stays
 * verified when its record is gone: re-checking is the later issue's.
 * checked_at is written on every answer, STORE_EXISTS included.) */
int identity_domain_verify(struct store *st, struct dns_resolver *dns, int64_t account_id,
                           const char *domain, struct store_domain *out, bool *tempfail,
                           char *err, size_t errlen);
/* The SPEC §3 JSON of a domain identity: {"domain","status","records":[...]} */
json_t *identity_domain_json(const struct store_domain *d);
/* The same with the records that need the store (the DKIM keys). */
json_t *identity_domain_json_full(struct store *st, const struct store_domain *d);

/* Makes sure the domain has signing keys: when it has none, generates an
 * RSA-2048 and an Ed25519 key (DKIM_DEFAULT_RSA_BITS; selectors
 * sYYYYMMDDr / sYYYYMMDDe) into DATA_DIR/dkim/DOMAIN/SELECTOR.pem (0600,
 * directories 0700) and records them active. Returns STORE_OK or
 * STORE_ERROR with err. */
int identity_domain_keys(struct store *st, const char *data_dir, const struct store_domain *d,
                         char *err, size_t errlen);
/* "pending", "verified", "failed", "expired" (enum store_identity_status). */
const char *identity_status_name(int status);

#endif
