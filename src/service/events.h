/* Events (SPEC §4): what happened to a message, as Amazon SES event JSON
 * so existing consumers work — Send, Delivery, Bounce, Complaint, Reject,
 * DeliveryDelay — recorded in the store (GET /v1/messages/{id} shows them)
 * and delivered durably to the account's webhooks: each POST carries
 * X-Sesame-Timestamp and X-Sesame-Signature: sha256=HEX(HMAC-SHA256(secret,
 * timestamp "." body)), and is retried with backoff (10 s, 1 min, 5 min,
 * 30 min, 2 h, then every 6 h) for 24 hours. docs/events.md has the
 * shapes, the verification recipe and the schedule. */
#ifndef SESAME_SERVICE_EVENTS_H
#define SESAME_SERVICE_EVENTS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct event_base;
struct webhook_client;

/* The "mail" object every event has. */
struct event_mail {
    int64_t message_id;          /* ours; the event's mail.messageId is its decimal string */
    int64_t timestamp;           /* when the message was accepted */
    const char *source;          /* the From address */
    const char *const *destination; size_t ndestination;
    const char *header_message_id; /* the Message-ID field, may be NULL */
    const char *subject;         /* may be NULL */
    /* Added by D6 (optional; NULL/0 when unknown): the From and To header
     * fields for mail.commonHeaders (SES's "from" and "to" arrays). Without
     * header_from, commonHeaders.from is [source]. */
    const char *header_from;
    const char *const *header_to; size_t nheader_to;
};

/* The webhook retry schedule, seconds after a failed attempt (the last
 * entry repeats), and how long after the event delivery is given up. */
#define EVENTS_WEBHOOK_BACKOFF { 10, 60, 300, 1800, 7200, 21600 }
#define EVENTS_WEBHOOK_MAX_AGE_S   86400
#define EVENTS_WEBHOOK_LEASE_S     120   /* a claimed job is ours this long (crash recovery) */
#define EVENTS_WEBHOOK_INFLIGHT    64    /* POSTs at once per dispatcher */
#define EVENTS_WEBHOOK_BATCH       32    /* jobs claimed per store transaction */

/* Is type one of Send, Delivery, Bounce, Complaint, Reject, DeliveryDelay,
 * IdentityStatus, ReputationStatus? */
bool event_type_valid(const char *type);
/* The name used as reportingMTA (delivery: "NAME", bounce: "dsn; NAME"):
 * the [server] hostname, set once at startup before threads use events;
 * until then, this machine's host name. */
void event_set_reporting_mta(const char *hostname);

/* A new event object {"eventType": type, "mail": {...}} (not event_new:
 * that name is libevent's). */
json_t *event_create(const char *type, const struct event_mail *mail);
/* An identity changed status (sesame's own event; SES has no equivalent
 * in its event publishing): {"eventType": "IdentityStatus", "identity":
 * {"type": "domain"|"mail_from"|"address", "identity", "status",
 * "previousStatus", "reason", "timestamp"}}. status "records_missing":
 * a verified domain's records were not found (it fails after the grace). */
json_t *event_create_identity(const char *kind, const char *identity, const char *status,
                              const char *previous, const char *reason);
/* An account's reputation status changed (sesame's own event):
 * {"eventType": "ReputationStatus", "reputation": {"status":
 * "healthy"|"warning"|"paused", "previousStatus", "reason", "bounceRate",
 * "complaintRate", "sends", "timestamp"}}. */
json_t *event_create_reputation(const char *status, const char *previous, const char *reason,
                                double bounce_rate, double complaint_rate, int64_t sends);
/* remote_mta: the host delivered to, as delivery logs it ("IP", "IP:PORT",
 * "[IP]:PORT", "NAME (IP:PORT)"); its IP becomes delivery.remoteMtaIp.
 * reportingMTA is ours (event_set_reporting_mta). Called again, it adds
 * the recipient to delivery.recipients. */
void event_set_delivery(json_t *ev, const char *rcpt, const char *smtp_response,
                        long processing_ms, const char *remote_mta);
/* bounce_type "Permanent" | "Transient" | "Undetermined"; sub_type e.g.
 * "General", "NoEmail", "Suppressed", "MailboxFull" (SES names). */
/* status: the enhanced code ("5.1.1"), else taken from diagnostic;
 * diagnostic: an SMTP reply ("550 5.1.1 ...", sent as "smtp; 550 ...") or
 * a DSN Diagnostic-Code as is; reporting_mta: NAME ("dsn; NAME" is sent)
 * or a DSN's "dns; NAME" as is, NULL for ours. Called again, it adds a
 * bounced recipient. */
void event_set_bounce(json_t *ev, const char *bounce_type, const char *sub_type,
                      const char *rcpt, const char *status, const char *diagnostic,
                      const char *reporting_mta);
void event_set_complaint(json_t *ev, const char *rcpt, const char *feedback_type,
                         const char *user_agent);
void event_set_reject(json_t *ev, const char *reason);
void event_set_delay(json_t *ev, const char *rcpt, const char *status,
                     const char *diagnostic, int64_t expiration);
/* Overrides deliveryDelay.delayType, which event_set_delay derives from
 * the status: no SMTP answer or 4.4.x → TransientCommunicationFailure,
 * 4.2.2 → MailboxFull, 4.7.x → SpamDetected, another 4xx answer →
 * RecipientServerError, else General. */
void event_set_delay_type(json_t *ev, const char *delay_type);
/* Stores the event (and queues its webhook deliveries); takes ev. Returns
 * a store_rc (STORE_ERROR also when ev is NULL or has no valid eventType). */
int event_record(struct store *st, int64_t account_id, int64_t message_id, const char *rcpt,
                 json_t *ev);

/* The webhook signature header value for body at timestamp:
 * "sha256=" + lowercase hex of HMAC-SHA256 keyed with the secret's bytes
 * (the string as shown at creation) over "TIMESTAMP.BODY", TIMESTAMP in
 * decimal Unix seconds as sent in X-Sesame-Timestamp. */
void event_sign(const char *secret, int64_t timestamp, const char *body, size_t len,
                char out[80]);

/* Delivers queued webhook POSTs from an event loop (the delivery thread's):
 * claims due jobs every second (leased for EVENTS_WEBHOOK_LEASE_S), posts
 * them with Content-Type: application/json, X-Sesame-Timestamp,
 * X-Sesame-Signature and X-Sesame-Event-Id, and records the outcome: 2xx
 * deletes the job, anything else is retried on the schedule above until
 * the event is EVENTS_WEBHOOK_MAX_AGE_S old, then dropped (logged). st is
 * the loop thread's store connection; wc a client on the same base.
 * Free the dispatcher before the webhook client: its POSTs in flight are
 * cancelled and their jobs retried (by the next dispatcher) once their
 * lease ends. */
struct event_dispatcher;
struct event_dispatcher *event_dispatcher_new(struct event_base *base, struct store *st,
                                              struct webhook_client *wc);
void event_dispatcher_free(struct event_dispatcher *d);
/* Look now (an event was just recorded). From any thread once libevent
 * threading is on (evthread_use_pthreads before the base was made). */
void event_dispatcher_kick(struct event_dispatcher *d);
/* Tests: the retry delays (seconds; the last repeats), the lease, the
 * polling interval. */
void event_dispatcher_set_backoff(struct event_dispatcher *d, const unsigned *seconds, size_t n);
void event_dispatcher_set_lease(struct event_dispatcher *d, unsigned seconds);
void event_dispatcher_set_interval_ms(struct event_dispatcher *d, unsigned ms);
/* Jobs posted and not yet finished (tests, shutdown). */
size_t event_dispatcher_inflight(const struct event_dispatcher *d);

#endif
