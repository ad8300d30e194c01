/* Delivery: the queue's recipients to their destinations. One thread with
 * its own event loop and store connection: a scheduler claims due
 * recipients, groups them by recipient domain, resolves routes (MX per
 * RFC 5321 §5.1, on worker threads), opens SMTP client connections within
 * the per-domain limits (connections, messages per minute; a 421 slows the
 * domain down), sends each recipient with its own VERP envelope sender,
 * reuses connections, and records every outcome: Delivery, DeliveryDelay
 * (retry with exponential backoff and jitter), Bounce (5xx, null MX, gave
 * up after the lifetime) with hard bounces suppressed. The webhook event
 * dispatcher runs on the same loop. */
#ifndef SESAME_SERVICE_DELIVERY_H
#define SESAME_SERVICE_DELIVERY_H
#include <openssl/ssl.h>
#include <stddef.h>

struct sesame_config;
struct outbound;
struct dns_resolver;

struct delivery;

struct group_commit;
/* gc: the service's group commit, which the delivery's writes join. */
struct delivery *delivery_start(const struct sesame_config *cfg, struct outbound *ob,
                                struct group_commit *gc, struct dns_resolver *dns,
                                SSL_CTX *client_tls, char *err, size_t errlen);
/* Something was queued: look now (any thread). */
void delivery_kick(struct delivery *d);
/* Stops the thread: connections are closed, recipients not finished are
 * handed back to the queue (due now). */
void delivery_stop(struct delivery *d);

#endif
