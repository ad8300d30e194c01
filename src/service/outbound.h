/* Accepting a message to send — one path for POST /v1/messages and the
 * submission listener: the identity rules (From and the envelope sender
 * are verified identities of the account), the sandbox (verified
 * recipients only), the quota (messages per 24 h) and rate (token bucket,
 * messages per second), the suppression list (suppressed recipients get a
 * Reject event and are not queued), DKIM signing with the From domain's
 * active keys (RSA and Ed25519 when both exist), the durable queue insert,
 * and the Send event. Delivery (delivery.c) takes it from the queue. */
#ifndef SESAME_SERVICE_OUTBOUND_H
#define SESAME_SERVICE_OUTBOUND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct outbound;                 /* process-wide: rate buckets, signer cache */
struct group_commit;
struct sesame_config;

/* st: for the VERP key (a service secret in the store). */
struct outbound *outbound_new(const struct sesame_config *cfg, struct group_commit *gc,
                              struct store *st, char *err, size_t errlen);
void outbound_free(struct outbound *o);

struct outbound_request {
    const struct store_account *account;
    const char *mail_from;       /* envelope sender; NULL: the From address */
    const char *const *rcpts;    /* envelope recipients (to + cc + bcc) */
    size_t nrcpt;
    const char *msg;             /* complete message, CRLF */
    size_t len;
    const char *source;          /* "api" | "smtp" | "system" */
    /* A message the service itself sends (sender confirmations, DMARC
     * reports), under outbound_system_account: no identity, sandbox,
     * quota or rate checks, and no Send/Reject events. */
    bool system;
    /* Optional: runs in the queue insert's transaction once the message
     * has its id; a non-zero return undoes the insert (the service's own
     * records that must go with the message, e.g. a DMARC report row). */
    int (*within)(struct store *st, int64_t message_id, void *arg);
    void *within_arg;
};

enum outbound_refusal {
    OUTBOUND_OK = 0,
    OUTBOUND_BAD_MESSAGE,        /* 400 / 550 5.6.0 */
    OUTBOUND_IDENTITY,           /* 403? no: 400 "identity_not_verified" / 550 5.7.1 */
    OUTBOUND_SANDBOX,            /* 400 "sandbox_recipient" / 550 5.7.1 */
    OUTBOUND_QUOTA,              /* 429 / 451 4.7.1, with reset time */
    OUTBOUND_RATE,               /* 429 / 451 4.7.1 */
    OUTBOUND_ALL_SUPPRESSED,     /* every recipient suppressed: queued nothing (Reject events) */
    OUTBOUND_TEMPFAIL,           /* 503 / 451 4.3.0 */
    OUTBOUND_PAUSED,             /* 403 "account_paused" / 550 5.7.1: the reputation guard */
};

struct outbound_result {
    enum outbound_refusal refusal;
    char why[256];               /* one sentence for the client */
    int64_t retry_at;            /* QUOTA/RATE: when it may succeed */
    int64_t message_id;          /* OK */
    size_t suppressed;           /* recipients left out */
};

/* Runs on the caller's thread with its store connection (a worker or the
 * HTTP thread). */
void outbound_accept(struct outbound *o, struct store *st, const struct outbound_request *req,
                     struct outbound_result *res);

/* The VERP envelope sender for a recipient row: bounce+TOKEN@DOMAIN, and
 * back: the rcpt_id a token names (false for a forged or malformed one). */
int outbound_verp_address(struct outbound *o, int64_t rcpt_id, const char *domain,
                          char *out, size_t outlen);
bool outbound_verp_parse(struct outbound *o, const char *local_part, int64_t *rcpt_id);
/* The service's own bounce domain ([delivery] bounce_domain, else the
 * hostname), used when the From domain has no custom MAIL FROM domain. */
const char *outbound_bounce_domain(const struct outbound *o);
/* The service's own account, "_sesame" (created on first use: production,
 * no quota), under which its own mail is queued; a leading '_' is refused
 * for user accounts. Returns STORE_OK or STORE_ERROR. */
#define OUTBOUND_SYSTEM_ACCOUNT "_sesame"
int outbound_system_account(struct store *st, struct store_account *out);
/* The From address of the service's own mail: no-reply@HOSTNAME. */
const char *outbound_system_from(const struct outbound *o);
/* Called after every message queued (delivery_kick). */
void outbound_set_notify(struct outbound *o, void (*fn)(void *arg), void *arg);

#endif
