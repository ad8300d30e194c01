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

#define WEBHOOK_URL_MAX      2048                 /* characters of a URL */
#define WEBHOOK_BODY_MAX     (128 * 1024 * 1024)  /* a POST body (JSON with a raw message) */
#define WEBHOOK_MAX_PENDING  10000                /* posts held in memory at once */
#define WEBHOOK_MAX_RETRIES  8                    /* entries of a backoff table */
#define WEBHOOK_TIMEOUT_MS   10000                /* connect, send, answer: each */
#define WEBHOOK_MAX_RESPONSE (64 * 1024)          /* response body read (and ignored) */

/* ssl_ctx may be NULL (https URLs then fail); metrics may be NULL. */
struct webhook_client *webhook_client_new(struct event_base *base, struct ssl_ctx_st *ssl_ctx,
                                          struct metrics *metrics);
/* Cancels posts in flight. */
void webhook_client_free(struct webhook_client *c);
/* Queues a POST of body (copied) with Content-Type application/json.
 * Returns 0, or -1 for a URL it cannot use (scheme, host, length, user
 * info), a body over WEBHOOK_BODY_MAX, or WEBHOOK_MAX_PENDING posts
 * already waiting. */
__attribute__((warn_unused_result))
int webhook_post(struct webhook_client *c, const char *url, const char *body, size_t len);
/* Tests: replaces the retry delays (n retries, ms[i] before retry i + 1;
 * n is capped at WEBHOOK_MAX_RETRIES) and the per-attempt timeout. */
void webhook_client_set_backoff(struct webhook_client *c, const unsigned *ms, size_t n);
void webhook_client_set_timeout_ms(struct webhook_client *c, unsigned ms);
/* Posts not yet finished (tests, shutdown). */
size_t webhook_pending(const struct webhook_client *c);

#endif
