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
#include "util/limits.h"

struct outbound;

struct api_context {
    struct store *st;                    /* this thread's connection */
    struct dns_resolver *dns;            /* domain verification */
    struct cred_cache *creds;
    struct authfail_limiter *authfail;
    struct metrics *metrics;
    const struct sesame_config *cfg;
    /* Added by D6: POST /v1/messages hands over here (service/outbound.h);
     * NULL: that route answers 503. */
    struct outbound *outbound;
    /* Identities: looked at soon after a change (NULL: on its schedule). */
    struct identity_checker *checker;
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
    const char *content_type;            /* static string; NULL when there is no body (204) */
    struct buf body;                     /* initialised by api_handle; caller frees */
    /* Added by H5, for the transport: */
    const char *www_authenticate;        /* 401: the WWW-Authenticate value (static), else NULL */
    char allow[64];                      /* 405: the Allow value ("GET, POST"), else "" */
    unsigned retry_after;                /* 429: seconds for Retry-After, else 0 */
    char account[STORE_NAME_MAX + 1];    /* the authenticated account's name (logs), else "" */
    const char *error_code;              /* the error's "code" (static), NULL on success (logs) */
};

/* Largest response body: a raw stored message (GET /v1/inbound/{id}/raw). */
#define API_MAX_RESPONSE_SIZE   MAIL_MAX_MESSAGE_SIZE
/* Raw request paths longer than this are refused (400). */
#define API_MAX_PATH_LEN        2048
/* GET /v1/inbound: page size when no limit= is given, and the largest. */
#define API_INBOUND_DEFAULT_LIMIT 50
#define API_INBOUND_MAX_LIMIT     100
/* Bodies of the small JSON routes (everything but sending mail). */
#define API_MAX_SMALL_BODY      65536
/* Added by D6 (issue 6). POST /v1/messages: envelope recipients (to + cc +
 * bcc) per message, as Amazon SES allows; extra header fields. */
#define API_MAX_RECIPIENTS        50
#define API_MAX_EXTRA_HEADERS     50
/* GET /v1/suppressions: page size when no limit= is given, and the largest. */
#define API_SUPPRESSIONS_DEFAULT_LIMIT 100
#define API_SUPPRESSIONS_MAX_LIMIT     1000
/* Webhooks per account (SES: 10 event destinations per configuration set). */
#define API_MAX_WEBHOOKS          10
/* Bytes of random webhook secret (shown as hex). */
#define API_WEBHOOK_SECRET_BYTES  32

/* Never fails: every outcome, including running out of memory, is a
 * status and (except 204) a body. */
void api_handle(struct api_context *ctx, const struct api_request *req, struct api_response *resp);

/* The HTTP listener: its own thread and event loop, so API work (argon2
 * checks, store queries) never stalls SMTP sessions. */
struct http_server;
struct http_server *http_server_start(const struct config_listen *listen, struct api_context *proto,
                                      char *err, size_t errlen);
void http_server_stop(struct http_server *h);
/* The port the server is bound to (listen->port 0 picks a free one). Added by H5. */
unsigned http_server_port(const struct http_server *h);

#endif
