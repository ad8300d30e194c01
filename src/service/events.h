/* Events (SPEC §4): what happened to a message, as Amazon SES event JSON
 * so existing consumers work — Send, Delivery, Bounce, Complaint, Reject,
 * DeliveryDelay — recorded in the store (GET /v1/messages/{id} shows them)
 * and delivered durably to the account's webhooks: each POST carries
 * X-Sesame-Timestamp and X-Sesame-Signature: sha256=HEX(HMAC-SHA256(secret,
 * timestamp "." body)), and is retried with backoff (10 s, 1 min, 5 min,
 * 30 min, 2 h, then every 6 h) for 24 hours. */
#ifndef SESAME_SERVICE_EVENTS_H
#define SESAME_SERVICE_EVENTS_H
#include <jansson.h>
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
};

/* A new event object {"eventType": type, "mail": {...}} (not event_new:
 * that name is libevent's). */
json_t *event_create(const char *type, const struct event_mail *mail);
void event_set_delivery(json_t *ev, const char *rcpt, const char *smtp_response,
                        long processing_ms, const char *remote_mta);
/* bounce_type "Permanent" | "Transient" | "Undetermined"; sub_type e.g.
 * "General", "NoEmail", "Suppressed", "MailboxFull" (SES names). */
void event_set_bounce(json_t *ev, const char *bounce_type, const char *sub_type,
                      const char *rcpt, const char *status, const char *diagnostic,
                      const char *reporting_mta);
void event_set_complaint(json_t *ev, const char *rcpt, const char *feedback_type,
                         const char *user_agent);
void event_set_reject(json_t *ev, const char *reason);
void event_set_delay(json_t *ev, const char *rcpt, const char *status,
                     const char *diagnostic, int64_t expiration);
/* Stores the event (and queues its webhook deliveries); takes ev. */
int event_record(struct store *st, int64_t account_id, int64_t message_id, const char *rcpt,
                 json_t *ev);

/* The webhook signature header value for body at timestamp. */
void event_sign(const char *secret, int64_t timestamp, const char *body, size_t len,
                char out[80]);

/* Delivers queued webhook POSTs from an event loop (the delivery thread's):
 * claims due jobs every second, posts them, records the outcome. */
struct event_dispatcher;
struct event_dispatcher *event_dispatcher_new(struct event_base *base, struct store *st,
                                              struct webhook_client *wc);
void event_dispatcher_free(struct event_dispatcher *d);
/* Look now (an event was just recorded). */
void event_dispatcher_kick(struct event_dispatcher *d);

#endif
