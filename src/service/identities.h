/* Identities: the domains and single addresses an account may send as,
 * and (domains) receive for. This is the core the CLI (`sesame domain
 * ...`) and the API (/v1/domains) share:
 *   - a domain is added with a verification token and DKIM keys (RSA-2048
 *     and Ed25519, pending until seen in DNS), and the full record set to
 *     publish (service/identity_records.h);
 *   - identity_domain_check looks every record up and applies what it
 *     finds: verification (exclusive: one account per domain), DKIM keys
 *     pending → active once visible (the key they replace kept published
 *     for a grace period, then retired), the custom MAIL FROM domain's
 *     status, records that disappeared from a verified domain (flagged,
 *     then failed), and when to look again;
 *   - identity_checker runs those checks in the background (pending
 *     domains polled with backoff for 72 h, verified ones daily).
 * docs/identities.md is the design. Single addresses (senders) are
 * service/senders.h. */
#ifndef SESAME_SERVICE_IDENTITIES_H
#define SESAME_SERVICE_IDENTITIES_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"
#include "store/store.h"

#define IDENTITY_VERIFY_PREFIX "sesame-verification="
#define IDENTITY_VERIFY_LABEL  "_sesame"
/* The mailbox the suggested DMARC record sends aggregate reports to:
 * dmarc-reports@ the custom MAIL FROM domain (its MX is this service),
 * else @ the domain itself. Same organizational domain: no external
 * authorization record is needed (RFC 7489 §7.1). */
#define IDENTITY_REPORT_LOCALPART "dmarc-reports"
/* Random bytes in a token; it is written as lower-case hex (DNS-safe). */
#define IDENTITY_TOKEN_BYTES   32
/* Longest domain accepted: _sesame.DOMAIN must still be a valid name. */
#define IDENTITY_DOMAIN_MAX    (DNS_MAX_NAME_LEN - (int)sizeof(IDENTITY_VERIFY_LABEL))
/* identity_domain_add/verify: the domain name given is not acceptable. */
#define IDENTITY_BADNAME       (-2)
/* Retired keys are still listed (as safe to remove) this long. */
#define IDENTITY_RETIRED_SHOWN_S (30 * 86400)
/* Background checks of something pending are at most this far apart. */
#define IDENTITY_POLL_MAX_S    3600
/* Keys a domain may have at once (rotations included). */
#define IDENTITY_MAX_KEYS      16

struct sesame_config;

/* What the records and the checks need from the configuration. */
struct identity_env {
    char mx_host[256];           /* [identities] inbound_host, else [server] hostname */
    char spf_terms[300];         /* [identities] spf, else "a:HOSTNAME" */
    char data_dir[1024];         /* keys live in DATA_DIR/dkim/ACCOUNT_ID/DOMAIN/ */
    int64_t check_interval;      /* first background check after a change; doubles */
    int64_t verify_window;       /* a pending domain is polled this long, then failed */
    int64_t recheck_interval;    /* a verified domain is checked again after this */
    int64_t missing_grace;       /* a verified domain's records gone this long: failed */
    int64_t dkim_grace;          /* a rotated-out key stays published this long */
};
void identity_env_init(struct identity_env *env, const struct sesame_config *cfg);

/* Normalises a domain name given by a user: lower case, no trailing dot,
 * LDH labels, at least two labels. Returns 0, or -1 with err.
 * (Details: labels of 1..63 letters, digits and inner hyphens; non-ASCII
 * bytes are refused with a hint to give the xn-- form; an all-digit last
 * label is refused, so IP addresses are too; at most IDENTITY_DOMAIN_MAX.) */
int identity_domain_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen);

/* Adds DOMAIN to the account (pending, new token, DKIM keys made, first
 * background check scheduled); adding it again returns the existing
 * identity (*created false). Returns STORE_OK, STORE_ERROR, or
 * IDENTITY_BADNAME for a bad name (err says why). */
int identity_domain_add(struct store *st, const struct identity_env *env, int64_t account_id,
                        const char *domain, struct store_domain *out, bool *created,
                        char *err, size_t errlen);

/* The outcome of a check, beside the updated row. */
struct identity_check {
    bool tempfail;               /* DNS did not answer for the verification record */
    bool taken;                  /* the token is there, but another account has the domain */
    int previous_status;         /* the domain's status before the check */
    char reason[640];            /* the verification outcome, one or two sentences */
};
/* Looks every record of d up now and applies what it finds (see the top
 * of this file and docs/identities.md), writes the row, its keys and the
 * records as seen, and records IdentityStatus events for changes.
 * on_demand: asked by the user (a failed verification marks the domain
 * failed at once) rather than the background poll (pending stays pending
 * until the verify window ends). Returns STORE_OK or STORE_ERROR. */
int identity_domain_check(struct store *st, struct dns_resolver *dns,
                          const struct identity_env *env, struct store_domain *d, int64_t now,
                          bool on_demand, struct identity_check *out);
/* The account's DOMAIN, normalised and checked on demand: STORE_NOTFOUND
 * when not added, IDENTITY_BADNAME for a bad name, STORE_EXISTS when the
 * token is there but another account has the domain verified, else
 * STORE_OK (verified or failed: see out->status) or STORE_ERROR. err gets
 * the outcome for a person; *tempfail when DNS did not answer (status
 * unchanged). */
int identity_domain_verify(struct store *st, struct dns_resolver *dns,
                           const struct identity_env *env, int64_t account_id, const char *domain,
                           struct store_domain *out, bool *tempfail, char *err, size_t errlen);

/* Starts a DKIM key rotation: a new key per algorithm in use, pending
 * (nothing signs with it) until its record is seen in DNS; then it signs
 * and the key it replaces is kept published for env->dkim_grace. Returns
 * STORE_OK, STORE_EXISTS when a rotation is already waiting for its keys
 * to appear (err names them), STORE_ERROR. */
int identity_domain_rotate(struct store *st, const struct identity_env *env,
                           struct store_domain *d, int64_t now, char *err, size_t errlen);

/* Sets (or with "" removes) the custom MAIL FROM domain, a subdomain of d
 * (IDENTITY_BADNAME otherwise, err says why), and what happens when its
 * records break (enum store_mail_from_behavior). A new MAIL FROM domain
 * is pending until its MX and SPF are seen. */
int identity_domain_set_mail_from(struct store *st, const struct identity_env *env,
                                  struct store_domain *d, const char *mail_from, int behavior,
                                  int64_t now, char *err, size_t errlen);

/* Removes the identity, its keys (rows and files) and its schedule. */
int identity_domain_delete(struct store *st, const struct store_domain *d, char *err,
                           size_t errlen);

/* The SPEC §3 JSON of a domain identity: {"domain","status","records":[...],
 * "dkim":[...],"mail_from":{...}|null,...}, the records with their status
 * as last seen in DNS. NULL when memory or the store failed. */
json_t *identity_domain_json(struct store *st, const struct identity_env *env,
                             const struct store_domain *d);

/* Makes sure the domain has signing keys: when it has none, generates an
 * RSA-2048 and an Ed25519 key (selectors sYYYYMMDDr / sYYYYMMDDe) into
 * DATA_DIR/dkim/ACCOUNT_ID/DOMAIN/SELECTOR.pem (0600, directories 0700),
 * recorded pending. Returns STORE_OK or STORE_ERROR with err. */
int identity_domain_keys(struct store *st, const struct identity_env *env,
                         const struct store_domain *d, char *err, size_t errlen);
/* The rua mailbox of the suggested DMARC record (IDENTITY_REPORT_LOCALPART). */
void identity_report_address(const struct store_domain *d, char *out, size_t outlen);
/* "pending", "verified", "failed", "expired" (enum store_identity_status). */
const char *identity_status_name(int status);
/* "active", "pending", "retired", "grace" (enum store_key_status). */
const char *identity_key_status_name(int status);
/* "use_default" | "reject" (enum store_mail_from_behavior); parse: -1 if neither. */
const char *identity_mail_from_behavior_name(int behavior);
int identity_mail_from_behavior_parse(const char *name);

/* The background checker: its own thread and store connection; every
 * tick it checks the domains whose next_check_at is due. */
struct identity_checker;
struct identity_checker *identity_checker_start(const struct sesame_config *cfg,
                                                struct dns_resolver *dns, char *err,
                                                size_t errlen);
void identity_checker_stop(struct identity_checker *c);
/* Look now (a domain was added or changed). */
void identity_checker_kick(struct identity_checker *c);

#endif
