/* The store: every durable thing sesame keeps (accounts, credentials,
 * identities, received mail, receiving rules, the outbound queue) behind
 * one interface. store_sqlite.c is the default implementation (one file in
 * data_dir, WAL); a PostgreSQL implementation can follow for several nodes,
 * so nothing here assumes SQLite: ids are 64-bit integers the store hands
 * out, times are Unix seconds, and a handle is one connection used by one
 * thread at a time (open one per thread).
 *
 * Every function returns a store_rc. STORE_ERROR is logged by the store
 * (never with secrets) and means "try later" to a caller: the MX answers
 * 451 4.3.0, the API 500. */
#ifndef SESAME_STORE_STORE_H
#define SESAME_STORE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

#define STORE_NAME_MAX    64   /* account names: [A-Za-z0-9._-], 1..64 */
#define STORE_LOOKUP_MAX  64   /* credential lookup ids (API key id, SMTP user) */
#define STORE_HASH_MAX    128  /* an argon2id string from libsodium (crypto_pwhash_STRBYTES) */
#define STORE_TOKEN_MAX   64   /* verification tokens */
#define STORE_IP_MAX      46   /* INET6_ADDRSTRLEN */

enum store_rc {
    STORE_OK = 0,
    STORE_NOTFOUND = 1,     /* no such row (or it belongs to another account) */
    STORE_EXISTS = 2,       /* a unique name/identity is taken */
    STORE_ERROR = -1,       /* I/O, corruption, out of memory */
};

struct store;

/* url: "sqlite" (or NULL/"") for data_dir/sesame.db; "postgresql://..." is
 * reserved for the cluster store and fails here with a clear err. Creates
 * data_dir (0700) and the database (0600), and applies schema migrations. */
struct store *store_open(const char *url, const char *data_dir, char *err, size_t errlen);
void store_close(struct store *st);

/* Explicit transactions, so a caller can commit several writes with one
 * durable flush (group commit). Writes outside a transaction commit on
 * their own. A commit returns only once the data is durable on disk. */
__attribute__((warn_unused_result)) int store_begin(struct store *st);
__attribute__((warn_unused_result)) int store_commit(struct store *st);
void store_rollback(struct store *st);
/* Inside a transaction: a savepoint, then either keep what was written
 * since (keep = true) or undo it, leaving the rest of the transaction.
 * The group commit wraps each write in one, so a failed write never
 * commits half of itself with its batch. */
__attribute__((warn_unused_result)) int store_savepoint(struct store *st);
int store_savepoint_end(struct store *st, bool keep);

/* ---- accounts ---- */
struct store_account {
    int64_t id;
    char name[STORE_NAME_MAX + 1];
    bool sandbox;               /* send only to verified addresses */
    uint32_t max_24h;           /* messages per rolling 24 h */
    uint32_t max_rate;          /* messages per second */
    bool dmarc_report_only;     /* MX: never reject/quarantine on DMARC for this account */
    int64_t created_at;
    int reputation;             /* service/reputation.h: healthy, warning, paused */
    char reputation_reason[256];
    int64_t reputation_at;      /* when it last changed */
};
/* Fills a->id and a->created_at (when 0). STORE_EXISTS when the name is taken;
 * names compare case-insensitively ("Acme" and "acme" are one account). */
int store_account_insert(struct store *st, struct store_account *a);
int store_account_get(struct store *st, int64_t id, struct store_account *out);
int store_account_get_by_name(struct store *st, const char *name, struct store_account *out);
/* Updates sandbox, max_24h, max_rate, dmarc_report_only of a->id. */
int store_account_update(struct store *st, const struct store_account *a);
/* Every account, oldest first, at most limit. */
int store_account_list(struct store *st, int limit,
                       int (*cb)(const struct store_account *a, void *arg), void *arg);
/* The reputation guard's status of an account (and why, and when). */
int store_account_reputation_set(struct store *st, int64_t account_id, int status,
                                 const char *reason, int64_t at);
/* Sending outcomes of an account per UTC day (day = Unix time / 86400). */
struct store_account_stats {
    int64_t day;
    int64_t sends, delivered, bounces, unknown, complaints;
};
/* Adds the counts of d to the account's row for day; *sends_today (may
 * be NULL) gets that day's sends after the addition. */
int store_account_stats_add(struct store *st, int64_t account_id, int64_t day,
                            const struct store_account_stats *d, int64_t *sends_today);
/* The account's days from since_day on, newest first. */
int store_account_stats_list(struct store *st, int64_t account_id, int64_t since_day,
                             int (*cb)(const struct store_account_stats *d, void *arg), void *arg);
/* Forgets the account's counts (an operator resumed it: a fresh window). */
int store_account_stats_clear(struct store *st, int64_t account_id);

/* ---- credentials: API keys and SMTP passwords, stored as argon2id hashes ---- */
enum store_cred_kind { STORE_CRED_API_KEY = 1, STORE_CRED_SMTP = 2 };
/* lookup: the public part (the API key's id, the SMTP user name); unique per kind. */
int store_credential_insert(struct store *st, int64_t account_id, enum store_cred_kind kind,
                            const char *lookup, const char *hash);
int store_credential_get(struct store *st, enum store_cred_kind kind, const char *lookup,
                         int64_t *account_id, char *hash, size_t hashlen);

/* ---- identities: domains and single addresses ---- */
enum store_identity_status {
    STORE_ID_PENDING = 0,
    STORE_ID_VERIFIED = 1,
    STORE_ID_FAILED = 2,
    STORE_ID_EXPIRED = 3,       /* addresses: the 24 h link was not followed */
};
struct store_domain {
    int64_t id;
    int64_t account_id;
    char domain[DNS_MAX_NAME_LEN + 1];      /* lower case, no trailing dot */
    int status;                              /* enum store_identity_status */
    char verify_token[STORE_TOKEN_MAX + 1]; /* published as TXT at _sesame.DOMAIN */
    char mail_from_domain[DNS_MAX_NAME_LEN + 1]; /* "" = none yet */
    int64_t created_at, verified_at, checked_at;
    int mail_from_status;       /* enum store_identity_status of the MAIL FROM records */
    int mail_from_behavior;     /* enum store_mail_from_behavior */
    int64_t next_check_at;      /* when the background check looks again; 0: never */
    int64_t missing_since;      /* verified, but its records not seen since; 0: seen */
    int check_attempts;         /* background checks of a pending domain so far */
};
/* What happens to a domain's mail when its custom MAIL FROM domain's
 * records break (Amazon SES's BehaviorOnMXFailure). */
enum store_mail_from_behavior {
    STORE_MF_USE_DEFAULT = 0,   /* fall back to the service's bounce domain */
    STORE_MF_REJECT = 1,        /* refuse to send until the records are back */
};
/* Domains are kept and compared lower case without a trailing dot (insert
 * normalizes d->domain); sender addresses with the domain part lower case
 * and the local part as given.
 * In the list functions, the callback may use the handle, but not call the
 * same list function again; heap fields live only during the call.
 * Updates of an id that does not exist return STORE_NOTFOUND; inserts that
 * name a missing account return STORE_NOTFOUND.
 * STORE_EXISTS when this account already has the domain. Several accounts
 * may have it pending; only one can have it verified (see set_status). */
int store_domain_insert(struct store *st, struct store_domain *d);
int store_domain_get(struct store *st, int64_t account_id, const char *domain, struct store_domain *out);
/* The account that has verified this exact domain (the MX's question). */
int store_domain_find_verified(struct store *st, const char *domain, struct store_domain *out);
/* Writes every field but id, account_id, domain and created_at. Moving to VERIFIED returns STORE_EXISTS, changing nothing, when
 * another account has the domain verified. */
int store_domain_update(struct store *st, const struct store_domain *d);
typedef int (*store_domain_cb)(const struct store_domain *d, void *arg); /* non-zero stops */
int store_domain_list(struct store *st, int64_t account_id, store_domain_cb cb, void *arg);
/* The verified domain whose custom MAIL FROM domain this is (its mail:
 * bounces, and the DMARC reports sent to dmarc-reports@ it). */
int store_domain_find_by_mail_from(struct store *st, const char *mail_from_domain,
                                   struct store_domain *out);
/* Deletes the account's domain id and its DKIM key rows (not the key files). */
int store_domain_delete(struct store *st, int64_t account_id, int64_t id);
/* Every domain whose next_check_at is set and due (<= now), soonest first,
 * at most limit. */
int store_domain_due(struct store *st, int64_t now, int limit, store_domain_cb cb, void *arg);
/* The records as last seen in DNS (a JSON text the identities code owns;
 * "" before the first check), malloc'd into *json. */
int store_domain_records_get(struct store *st, int64_t id, char **json);
int store_domain_records_set(struct store *st, int64_t id, const char *json);

struct store_sender {
    int64_t id;
    int64_t account_id;
    char address[SMTP_MAX_PATH_LEN + 1];    /* local part as given, domain lower case */
    int status;                              /* enum store_identity_status */
    char token[STORE_TOKEN_MAX + 1];         /* a hash of the confirmation link's token */
    int64_t created_at, expires_at, verified_at;
    int64_t sent_at;                         /* the last confirmation mail */
};
int store_sender_insert(struct store *st, struct store_sender *s);
int store_sender_get(struct store *st, int64_t account_id, const char *address, struct store_sender *out);
int store_sender_get_by_token(struct store *st, const char *token, struct store_sender *out);
/* Writes status, verified_at, token, expires_at, sent_at. Moving to
 * VERIFIED returns STORE_EXISTS, changing nothing, when another account
 * has the address verified. */
int store_sender_update(struct store *st, const struct store_sender *s);
/* The account that has verified this exact address. */
int store_sender_find_verified(struct store *st, const char *address, struct store_sender *out);
typedef int (*store_sender_cb)(const struct store_sender *s, void *arg); /* non-zero stops */
int store_sender_list(struct store *st, int64_t account_id, store_sender_cb cb, void *arg);

/* ---- received mail ---- */
struct store_inbound {
    int64_t id;
    int64_t account_id;
    int64_t received_at;
    char mail_from[SMTP_MAX_PATH_LEN + 1];
    char *rcpt_json;            /* JSON array of the envelope recipients */
    char client_ip[STORE_IP_MAX];
    char helo[SMTP_MAX_DOMAIN_LEN + 1];
    char spf[16], dkim[16], dmarc[16];       /* result words: pass, fail, none, ... */
    char *authres;              /* the Authentication-Results value we wrote */
    bool quarantine;            /* DMARC p=quarantine (or a rule) applied */
    char message_id[256], subject[256], from[256]; /* from the header, truncated */
    size_t size;
};
/* Stores the message (headers as we rewrote them, and body). *id is set. */
int store_inbound_insert(struct store *st, const struct store_inbound *meta,
                         const char *raw, size_t len, int64_t *id);
typedef int (*store_inbound_cb)(const struct store_inbound *m, void *arg);
/* Newest first, ids below before_id (0 = from the newest), at most limit. */
int store_inbound_list(struct store *st, int64_t account_id, int64_t before_id, unsigned limit,
                       store_inbound_cb cb, void *arg);
/* STORE_NOTFOUND when the id is not this account's. raw may be NULL; *raw is malloc'd. */
int store_inbound_get(struct store *st, int64_t account_id, int64_t id,
                      struct store_inbound *meta, char **raw, size_t *len);
int store_inbound_count(struct store *st, int64_t *n);   /* all accounts (metrics, tests) */
void store_inbound_free(struct store_inbound *m);        /* frees the heap fields */

/* ---- receiving rules (JSON text, validated by service/rules before insert) ---- */
struct store_rule {
    int64_t id;
    int64_t account_id;
    int64_t position;           /* evaluation order, ascending */
    const char *json;
};
/* Appends after the account's last rule. */
int store_rule_insert(struct store *st, int64_t account_id, const char *json, int64_t *id);
int store_rule_delete(struct store *st, int64_t account_id, int64_t id);
typedef int (*store_rule_cb)(const struct store_rule *r, void *arg);
int store_rule_list(struct store *st, int64_t account_id, store_rule_cb cb, void *arg);

/* ---- outbound queue (submission hands messages here; delivery builds on it) ---- */
struct store_outbound {
    int64_t id;
    int64_t account_id;
    char mail_from[SMTP_MAX_PATH_LEN + 1];
    const char *const *rcpts;
    size_t nrcpt;
    char message_id[256];       /* the Message-ID header value, "" if none */
    int64_t created_at;
    const char *source;         /* "smtp" or "api" */
};
/* One message row and one queued row per recipient; fills m->id. */
int store_outbound_insert(struct store *st, struct store_outbound *m, const char *raw, size_t len);
/* Messages the account queued at or after since (quota checks). */
int store_outbound_count_since(struct store *st, int64_t account_id, int64_t since, int64_t *n);
int store_outbound_count(struct store *st, int64_t *n);  /* queue depth: recipients not final */
/* The creation time of the account's oldest message at or after since
 * (when a full 24 h quota frees up); STORE_NOTFOUND when none. */
int store_outbound_oldest_since(struct store *st, int64_t account_id, int64_t since, int64_t *at);

/* ==== outbound (issue 6): keys, queue, events, webhooks, suppressions ==== */

/* ---- DKIM keys of a domain (private keys live in files under data_dir,
 * mode 0600, read by the signer; the store keeps where and what) ---- */
/* A key is PENDING until its record is seen in DNS (nothing signs with
 * it), then ACTIVE (signs); a rotation moves the key it replaces to GRACE
 * (still published, no longer signing) until retired_at, then RETIRED
 * (safe to remove from DNS). */
enum store_key_status {
    STORE_KEY_ACTIVE = 0, STORE_KEY_PENDING = 1, STORE_KEY_RETIRED = 2, STORE_KEY_GRACE = 3,
};
struct store_dkim_key {
    int64_t id;
    int64_t domain_id;
    char selector[64];
    char algorithm[24];          /* "rsa-sha256" | "ed25519-sha256" */
    char key_path[1024];
    char record[2048];           /* the TXT value to publish: "v=DKIM1; k=...; p=..." */
    int status;                  /* enum store_key_status */
    int64_t created_at, retired_at;  /* GRACE: until; RETIRED: since */
    int64_t published_at;        /* first seen in DNS; 0: not yet */
};
int store_dkim_key_insert(struct store *st, struct store_dkim_key *k);   /* fills id */
/* status, retired_at, published_at */
int store_dkim_key_update(struct store *st, const struct store_dkim_key *k);
typedef int (*store_dkim_key_cb)(const struct store_dkim_key *k, void *arg);
/* Every key of the domain, oldest first. */
int store_dkim_key_list(struct store *st, int64_t domain_id, store_dkim_key_cb cb, void *arg);

/* ---- the delivery queue: one row per (message, recipient) ---- */
enum store_rcpt_status {
    STORE_RCPT_QUEUED = 0,       /* waiting for its first attempt */
    STORE_RCPT_SENDING = 1,      /* claimed by a delivery attempt (lease) */
    STORE_RCPT_DEFERRED = 2,     /* 4xx or no connection: retried at next_attempt_at */
    STORE_RCPT_DELIVERED = 3,    /* 2xx: final */
    STORE_RCPT_BOUNCED = 4,      /* 5xx, or gave up after the lifetime: final */
    STORE_RCPT_SUPPRESSED = 5,   /* on the suppression list: never sent, final */
};
struct store_delivery {
    int64_t rcpt_id;             /* outbound_recipients.id */
    int64_t message_id;          /* outbound_messages.id */
    int64_t account_id;
    char rcpt[SMTP_MAX_PATH_LEN + 1];
    char domain[DNS_MAX_NAME_LEN + 1];      /* the recipient's domain, lower case */
    char mail_from[SMTP_MAX_PATH_LEN + 1];  /* the message's envelope sender as submitted */
    int status;                  /* enum store_rcpt_status */
    unsigned attempts;
    int64_t created_at, next_attempt_at, updated_at;
    char last_response[512];     /* the last SMTP reply or connection error */
};
/* Claims up to max recipients due at now (queued or deferred with
 * next_attempt_at <= now), oldest first, marking them SENDING with
 * next_attempt_at = lease_until (a crashed attempt is retried after it),
 * in one transaction; calls cb for each. */
int store_delivery_claim(struct store *st, int64_t now, int64_t lease_until, unsigned max,
                         int (*cb)(const struct store_delivery *d, void *arg), void *arg);
/* Records an attempt's outcome: status, attempts, next_attempt_at,
 * last_response, updated_at = now. */
int store_delivery_update(struct store *st, int64_t rcpt_id, int status, unsigned attempts,
                          int64_t next_attempt_at, const char *last_response, int64_t now);
/* The earliest next_attempt_at of a non-final recipient (STORE_NOTFOUND
 * when none): when the scheduler should look again. */
int store_delivery_next_due(struct store *st, int64_t *when);
/* A message's raw bytes (malloc'd) and envelope sender. */
int store_outbound_get_raw(struct store *st, int64_t message_id, char **raw, size_t *len,
                           char *mail_from, size_t mflen);
/* For GET /v1/messages/{id}: the message (STORE_NOTFOUND when not this
 * account's) and each recipient's row. */
int store_outbound_get(struct store *st, int64_t account_id, int64_t message_id,
                       struct store_outbound *meta,
                       int (*cb)(const struct store_delivery *d, void *arg), void *arg);
/* A recipient row by id (bounce processing: the VERP token names it). */
int store_delivery_get(struct store *st, int64_t rcpt_id, struct store_delivery *out);

/* ---- events: what happened to a message, SES-shaped JSON (SPEC §4) ---- */
struct store_event {
    int64_t id;
    int64_t account_id;
    int64_t message_id;          /* 0 when none */
    char type[24];               /* Send, Delivery, Bounce, Complaint, Reject, DeliveryDelay */
    char rcpt[SMTP_MAX_PATH_LEN + 1]; /* "" when about the whole message */
    int64_t created_at;
    const char *json;            /* the event body as delivered to webhooks */
};
/* Also queues one webhook delivery per matching webhook of the account. */
int store_event_insert(struct store *st, struct store_event *e);
int store_event_list(struct store *st, int64_t account_id, int64_t message_id,
                     int (*cb)(const struct store_event *e, void *arg), void *arg);

/* ---- webhooks and their durable deliveries ---- */
struct store_webhook {
    int64_t id;
    int64_t account_id;
    char url[1024];
    char events[256];            /* comma-separated event types; "" = all */
    char secret[80];             /* HMAC-SHA256 key, shown once at creation */
    int64_t created_at;
};
int store_webhook_insert(struct store *st, struct store_webhook *w);
int store_webhook_delete(struct store *st, int64_t account_id, int64_t id);
int store_webhook_list(struct store *st, int64_t account_id,
                       int (*cb)(const struct store_webhook *w, void *arg), void *arg);
struct store_webhook_job {
    int64_t id;                  /* the delivery row */
    int64_t webhook_id, event_id;
    unsigned attempts;
    char url[1024];
    char secret[80];
    char *json;                  /* owned by the store during the callback */
};
/* Claims due webhook deliveries (lease like store_delivery_claim). */
int store_webhook_job_claim(struct store *st, int64_t now, int64_t lease_until, unsigned max,
                            int (*cb)(const struct store_webhook_job *j, void *arg), void *arg);
/* done: delete the row; else retry at next_attempt_at (attempts + 1). */
int store_webhook_job_finish(struct store *st, int64_t id, bool done, unsigned attempts,
                             int64_t next_attempt_at);

/* ---- suppression list, per account ---- */
struct store_suppression {
    int64_t account_id;
    char address[SMTP_MAX_PATH_LEN + 1];   /* lower case */
    char reason[16];             /* "bounce", "complaint", "manual" */
    char detail[256];            /* the diagnostic, or "" */
    int64_t created_at;
};
/* Inserts or replaces. */
int store_suppression_put(struct store *st, const struct store_suppression *s);
int store_suppression_get(struct store *st, int64_t account_id, const char *address,
                          struct store_suppression *out);
int store_suppression_delete(struct store *st, int64_t account_id, const char *address);
/* Addresses after "after" (""= from the first), in order, at most limit. */
int store_suppression_list(struct store *st, int64_t account_id, const char *after, unsigned limit,
                           int (*cb)(const struct store_suppression *s, void *arg), void *arg);

/* ---- service secrets (the VERP token key): created once, random ---- */
int store_secret_get(struct store *st, const char *name, unsigned char *out, size_t len);

/* ==== DMARC aggregate reports (issue 8) ==== */

/* One DMARC evaluation at the MX, for a policy that asks for reports. */
struct store_dmarc_eval {
    int64_t received_at;
    char policy_domain[DNS_MAX_NAME_LEN + 1];
    const char *policy;          /* policy_published, JSON */
    const char *rua;             /* "mailto:a@b!10485760,mailto:..." */
    char source_ip[STORE_IP_MAX];
    char header_from[DNS_MAX_NAME_LEN + 1];
    char envelope_from[DNS_MAX_NAME_LEN + 1];
    int disposition;             /* enum dmarc_policy as applied: none/quarantine/reject */
    bool dkim_pass, spf_pass;    /* aligned */
    char reason_type[24];
    char reason_comment[128];
    const char *dkim;            /* JSON [[domain, selector, result], ...] */
    char spf_domain[DNS_MAX_NAME_LEN + 1];
    char spf_scope[8];
    char spf_result[16];
    uint64_t count;              /* aggregated rows: how many evaluations */
};
int store_dmarc_eval_insert(struct store *st, const struct store_dmarc_eval *e);
/* The (policy domain, interval) pairs with evaluations not yet reported
 * that were received before `before`, oldest first, at most limit:
 * intervals are multiples of `interval` seconds since the epoch (bucket is
 * the start), earliest the first pending evaluation in it. */
int store_dmarc_eval_due(struct store *st, int64_t before, int64_t interval, int limit,
                         int (*cb)(const char *policy_domain, int64_t bucket,
                                   int64_t earliest, void *arg),
                         void *arg);
/* The distinct rows of [begin, end) for the policy domain, each with its
 * count (the callback's strings live during the call), most frequent first. */
int store_dmarc_eval_rows(struct store *st, const char *policy_domain, int64_t begin,
                          int64_t end, int (*cb)(const struct store_dmarc_eval *e, void *arg),
                          void *arg);
/* The policy and rua of the latest evaluation in [begin, end) (malloc'd). */
int store_dmarc_eval_policy(struct store *st, const char *policy_domain, int64_t begin,
                            int64_t end, char **policy, char **rua);

struct store_dmarc_report_out {
    int64_t id;
    char policy_domain[DNS_MAX_NAME_LEN + 1];
    int64_t begin, end;
    char report_id[96];
    char rcpts[1024];            /* where it went, comma-separated ("" when skipped) */
    int64_t message_id;          /* the outbound message; 0 when skipped */
    char status[16];             /* "queued" | "skipped" */
    char detail[256];            /* why skipped, or notes */
    int64_t records, messages;
    int64_t created_at;
};
/* Records a report and marks the evaluations of its interval as reported,
 * in one step (a savepoint inside the caller's transaction): the same
 * interval of a domain is never reported twice (STORE_EXISTS). Fills id. */
int store_dmarc_report_out_record(struct store *st, struct store_dmarc_report_out *r);
/* The reports sent for a policy domain ("" = all), oldest first. */
int store_dmarc_report_out_list(struct store *st, const char *policy_domain,
                                int (*cb)(const struct store_dmarc_report_out *r, void *arg),
                                void *arg);

/* A report received for one of an account's domains (JSON as parsed). */
struct store_dmarc_report_in {
    int64_t id, account_id;
    char domain[DNS_MAX_NAME_LEN + 1];
    char org_name[128];
    char report_id[128];
    int64_t begin, end, received_at;
    const char *json;
};
/* STORE_EXISTS when this account already has the reporter's report id. */
int store_dmarc_report_in_insert(struct store *st, struct store_dmarc_report_in *r);
/* The account's reports ("" domain = all) that end at or after since,
 * newest first, at most limit. */
int store_dmarc_report_in_list(struct store *st, int64_t account_id, const char *domain,
                               int64_t since, int limit,
                               int (*cb)(const struct store_dmarc_report_in *r, void *arg),
                               void *arg);

#endif
