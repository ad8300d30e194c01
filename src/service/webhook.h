/* Webhook delivery: POST a JSON body to an http:// or https:// URL from
 * the event loop (libevent evhttp client; https through an OpenSSL
 * bufferevent that verifies the server certificate). A failed POST (no
 * connection, timeout, non-2xx) is retried 3 times with backoff (1 s, 5 s,
 * 25 s), then logged and dropped. Posts live in memory; durable event
 * delivery (events.c) keeps its own schedule in the store and uses
 * webhook_post_once: one attempt, extra headers, a completion callback. */
#ifndef SESAME_SERVICE_WEBHOOK_H
#define SESAME_SERVICE_WEBHOOK_H
#include <stdbool.h>
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
#define WEBHOOK_MAX_HEADERS  8                    /* extra headers of webhook_post_once */
#define WEBHOOK_HEADER_MAX   1024                 /* characters of one extra header value */

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
/* One attempt, no retries: POSTs body (copied) with the extra headers
 * headers[0..2*nheaders) = name, value, name, value... (nheaders counts
 * pairs; a Content-Type among them replaces application/json; Host,
 * Content-Length, Connection, Transfer-Encoding and User-Agent are the
 * client's own and refused, as are names that are not tokens and values
 * with control characters). done(arg, status) is called exactly once
 * unless the post is cancelled or the client freed first, always from the
 * event loop and never from inside this call: status is the answer's HTTP
 * status (2xx is success), 0 when no answer came (no connection, TLS
 * failure, timeout). Returns 0, or -1 without calling done for what
 * webhook_post refuses, bad headers, or a NULL done. */
__attribute__((warn_unused_result))
int webhook_post_once(struct webhook_client *c, const char *url, const char *body, size_t len,
                      const char *const *headers, size_t nheaders,
                      void (*done)(void *arg, int http_status), void *arg);
/* Cancels the webhook_post_once posts made with arg (their done is never
 * called). Not from inside a done callback for another client. */
void webhook_cancel(struct webhook_client *c, void *arg);
/* Would webhook_post take this URL (http, or https when have_tls)? 0 / -1. */
int webhook_url_check(const char *url, bool have_tls);
/* Tests: replaces the retry delays (n retries, ms[i] before retry i + 1;
 * n is capped at WEBHOOK_MAX_RETRIES) and the per-attempt timeout. */
void webhook_client_set_backoff(struct webhook_client *c, const unsigned *ms, size_t n);
void webhook_client_set_timeout_ms(struct webhook_client *c, unsigned ms);
/* Posts not yet finished (tests, shutdown). */
size_t webhook_pending(const struct webhook_client *c);

#endif
