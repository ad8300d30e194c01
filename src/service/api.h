/* The HTTP API (SPEC §3) as a function of a request: routing, Bearer
 * authentication, JSON bodies and errors, with no sockets, so tests and the
 * fuzzer call api_handle directly. http_server.c puts it on evhttp.
 * Errors are {"error": {"code": "...", "message": "..."}}. Every route that
 * names an object checks that it belongs to the caller's account; another
 * account's object is 404, never 403 (no existence oracle). */
#ifndef SESAME_SERVICE_API_H
#define SESAME_SERVICE_API_H
#include <stddef.h>

#include "dns/dns.h"
#include "service/accounts.h"
#include "service/config.h"
#include "service/metrics.h"
#include "service/ratelimit.h"
#include "store/store.h"
#include "util/buf.h"

struct api_context {
    struct store *st;                    /* this thread's connection */
    struct dns_resolver *dns;            /* domain verification */
    struct cred_cache *creds;
    struct authfail_limiter *authfail;
    struct metrics *metrics;
    const struct sesame_config *cfg;
};

struct api_request {
    const char *method;                  /* "GET", "POST", ... */
    const char *path;                    /* "/v1/rules/3", percent-decoded by the caller? no: raw */
    const char *query;                   /* after '?', raw; NULL when none */
    const char *authorization;           /* the header value, NULL when absent */
    const char *client_ip;
    const char *body;
    size_t body_len;
};

struct api_response {
    int status;
    const char *content_type;            /* static string */
    struct buf body;                     /* initialised by api_handle; caller frees */
};

void api_handle(struct api_context *ctx, const struct api_request *req, struct api_response *resp);

/* The HTTP listener: its own thread and event loop, so API work (argon2
 * checks, store queries) never stalls SMTP sessions. */
struct http_server;
struct http_server *http_server_start(const struct config_listen *listen, struct api_context *proto,
                                      char *err, size_t errlen);
void http_server_stop(struct http_server *h);

#endif
