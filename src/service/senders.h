/* Single sender addresses, verified by an opt-in confirmation link (SPEC
 * §3 POST /v1/senders, GET /v1/confirm; `sesame sender add|show`): the
 * logic the HTTP API (api_senders.c) and the CLI (cli_sender.c) share.
 *   - sender_request: checks the address and who else holds it, applies
 *     the throttles, writes the row (pending, a hash of a fresh random
 *     token, expiring after [identities] confirm_ttl) and then queues the
 *     confirmation mail through the outbound path as the service's own
 *     mail (outbound_system_account);
 *   - sender_confirm: the link; single use, for the requesting account
 *     only, refused once expired or when another account got the address
 *     (or its domain) verified meanwhile;
 *   - sender_show / sender_list / sender_remove: the account's rows.
 * Every function takes the time (now) so tests can move the clock.
 * It does not: deliver (delivery.c), speak HTTP, or print.
 * docs/senders.md is the design. */
#ifndef SESAME_SERVICE_SENDERS_H
#define SESAME_SERVICE_SENDERS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* util/limits.h is not this module's file: its limits live here. */
#define SENDER_TOKEN_BYTES       32    /* random bytes in a link's token (libsodium) */
#define SENDER_TOKEN_HEX_LEN     (2 * SENDER_TOKEN_BYTES) /* the token as the link carries it */
#define SENDER_HASH_BYTES        32    /* crypto_generichash of the token, stored as hex */
#define SENDER_RESEND_INTERVAL_S 60    /* one confirmation mail per address per minute */
#define SENDER_MAX_MAILS_24H     50    /* confirmation mails per account per rolling 24 h */
#define SENDER_WINDOW_S          86400 /* that rolling window */
#define SENDER_LINK_MAX          (300 + 32 + SENDER_TOKEN_HEX_LEN) /* base + path + token */
#define SENDER_MESSAGE_MAX       (16 * 1024) /* the confirmation mail, built */
/* Accounts whose confirmation mails the process remembers (see
 * sender_request: resends of one address count against the 24 h limit). */
#define SENDER_LIMIT_ACCOUNTS    1024

enum sender_rc {
    SENDER_OK = 0,
    SENDER_BAD_INPUT,            /* 400 invalid_address / invalid_token: err says why */
    SENDER_NOT_FOUND,            /* 404 not_found: no such address, unknown or used link */
    SENDER_TAKEN,                /* 409 identity_taken: another account has it verified */
    SENDER_EXPIRED,              /* 410 link_expired: ask for a new link */
    SENDER_SUPPRESSED,           /* 422 address_suppressed: mail to it bounced before */
    SENDER_TOO_SOON,             /* 429 rate_limited: a mail went less than a minute ago */
    SENDER_QUOTA,                /* 429 quota_exceeded: 50 mails in 24 h */
    SENDER_UNAVAILABLE,          /* 503 unavailable: the mail could not be queued (row kept) */
    SENDER_STORE_ERROR,          /* 500 internal: the store failed (it logged why) */
};

/* What an address looks like to its account, and what a call did. */
struct sender_result {
    char address[SMTP_MAX_PATH_LEN + 1];     /* local part as given, domain lower case */
    char account[STORE_NAME_MAX + 1];        /* the account the row belongs to */
    int status;                  /* STORE_ID_PENDING, _VERIFIED or _EXPIRED as shown now */
    bool via_domain;             /* verified because the account verified the domain */
    bool mail_sent;              /* sender_request queued a confirmation mail */
    int64_t message_id;          /* that mail (the _sesame account's message) */
    int64_t requested_at;        /* the last confirmation mail; 0: none */
    int64_t expires_at;          /* pending: the link's end; else 0 */
    int64_t verified_at;         /* verified: when; else 0 */
    int64_t retry_at;            /* TOO_SOON, QUOTA: when asking again can work */
};

struct outbound;
struct sesame_config;

/* The address as it is kept: one mailbox ("a@b" or "Name <a@b>"), an ASCII
 * dot-atom local part of at most 64 octets, a domain name as
 * identity_domain_normalize takes it (lower case, no trailing dot, no IP
 * literal). Returns 0, or -1 with err. */
int sender_address_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen);

/* Asks for address to be verified for account. Nothing is sent when the
 * account already has the address or its domain verified (OK, status
 * verified, mail_sent false). Refused: TAKEN (another account has the
 * address or its domain verified), TOO_SOON (the last mail to it went
 * less than SENDER_RESEND_INTERVAL_S ago), QUOTA (SENDER_MAX_MAILS_24H
 * mails in the last 24 h: the account's addresses mailed in the window,
 * by the store, or all its mails resends included, as far as this process
 * saw them). Else a new token replaces any earlier one (its link stops
 * working), the row is written, then the mail is queued (ob NULL, or a
 * queue that refuses: UNAVAILABLE or SUPPRESSED, the row stays, so asking
 * again works without waiting). err says why for every refusal. */
__attribute__((warn_unused_result))
int sender_request(struct store *st, struct outbound *ob, const struct sesame_config *cfg,
                   const struct store_account *account, const char *address, int64_t now,
                   struct sender_result *out, char *err, size_t errlen);

/* The link: token is what it carries (SENDER_TOKEN_HEX_LEN hex digits;
 * else BAD_INPUT). NOT_FOUND for an unknown or already used token;
 * EXPIRED (the row is marked so) past expires_at; TAKEN when another
 * account has meanwhile verified the address or its domain; else the
 * row's account has the address verified, and the token is gone. out
 * names the address and the account in every case but BAD_INPUT and
 * NOT_FOUND. */
__attribute__((warn_unused_result))
int sender_confirm(struct store *st, const char *token, int64_t now, struct sender_result *out,
                   char *err, size_t errlen);

/* The account's address: its row, or (no row) verified via its domain;
 * NOT_FOUND when neither (or the address is not one). A pending row past
 * expires_at shows as expired. */
__attribute__((warn_unused_result))
int sender_show(struct store *st, const struct store_account *account, const char *address,
                int64_t now, struct sender_result *out);

/* Every address the account asked for, in address order (not those its
 * domains cover). cb returns non-zero to stop. OK or STORE_ERROR. */
typedef int (*sender_list_cb)(const struct sender_result *r, void *arg);
__attribute__((warn_unused_result))
int sender_list(struct store *st, const struct store_account *account, int64_t now,
                sender_list_cb cb, void *arg);

/* Removes the account's address (NOT_FOUND when it has none): it is no
 * longer an identity of the account and its link stops working. */
__attribute__((warn_unused_result))
int sender_remove(struct store *st, const struct store_account *account, const char *address);

/* {"address", "status": "pending|verified|expired", "requested_at",
 * "expires_at", "verified_at" (RFC 3339 or null), "via": "address|domain"
 * (verified only)} — the API's and the CLI's --json. NULL: out of memory. */
json_t *sender_json(const struct sender_result *r);
/* "pending", "verified", "expired". */
const char *sender_status_name(int status);
/* The HTTP status and error code of a refusal. */
int sender_http_status(int rc, const char **code);

/* Forgets the confirmation mails this process remembers (tests). */
void sender_limits_reset(void);

#endif
