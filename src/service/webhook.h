/* Webhook delivery: POST a JSON body to an http:// or https:// URL from
 * the event loop (libevent evhttp client; https through an OpenSSL
 * bufferevent that verifies the server certificate). A failed POST (no
 * connection, timeout, non-2xx) is retried 3 times with backoff (1 s, 5 s,
 * 25 s), then logged and dropped. Posts live in memory: durable event
 * delivery belongs to the events work that follows. */
#ifndef SESAME_SERVICE_WEBHOOK_H
#define SESAME_SERVICE_WEBHOOK_H
#include <stddef.h>

struct event_base;
struct ssl_ctx_st;
struct metrics;

struct webhook_client;

/* ssl_ctx may be NULL (https URLs then fail); metrics may be NULL. */
struct webhook_client *webhook_client_new(struct event_base *base, struct ssl_ctx_st *ssl_ctx,
                                          struct metrics *metrics);
/* Cancels posts in flight. */
void webhook_client_free(struct webhook_client *c);
/* Queues a POST of body (copied) with Content-Type application/json.
 * Returns 0, or -1 for a URL it cannot use (scheme, host, length). */
__attribute__((warn_unused_result))
int webhook_post(struct webhook_client *c, const char *url, const char *body, size_t len);
/* Posts not yet finished (tests, shutdown). */
size_t webhook_pending(const struct webhook_client *c);

#endif
