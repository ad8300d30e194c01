/* Webhook POSTs from the event loop with libevent's evhttp client.
 *
 * Each attempt is a fresh connection (Connection: close): for https
 * an OpenSSL bufferevent whose SSL object carries SNI and the expected
 * host name (X509_VERIFY_PARAM_set1_host, or the IP address for a literal),
 * verified against the client context's CA store. Host names are resolved
 * with evdns (the system's resolv.conf), never by blocking the loop.
 *
 * A failed attempt (no connection, TLS failure, timeout, non-2xx) waits on
 * a timer for the next delay of the backoff table; after the last retry the
 * post is logged (scheme, host and port only: paths and queries may carry
 * tokens) and dropped. Outcomes are counted in
 * sesame_webhook_posts_total{result="ok|retry|failed"}.
 *
 * libevent calls back from inside the connection's own code and, depending
 * on how the attempt ended, frees the connection afterwards or not
 * (free_on_completion misses refused connects), so we never ask it to:
 * finished connections and posts go on a list that a "reaper" event frees
 * outside any libevent callback.
 *
 * webhook_post_once is the single-attempt form for a caller that keeps its
 * own durable retry schedule (events.c): extra request headers, no
 * retries, and a completion callback with the HTTP status (0 when no
 * answer came), called from the reaper too, so never from inside
 * webhook_post_once nor from a libevent http callback.
 *
 * It does not persist anything, follow redirects or read the response
 * beyond its status (the body is capped and discarded). */
#include "service/webhook.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "service/metrics.h"
#include "util/log.h"

static const unsigned default_backoff_ms[] = { 1000, 5000, 25000 };

struct post {
    TAILQ_ENTRY(post) entry;
    struct webhook_client *c;
    bool https;
    char host[256];              /* to connect to: no brackets */
    char host_header[272];       /* as in the URL, with :port when given */
    unsigned port;
    bool ip_literal;
    char *path;                  /* path and query */
    char *body;
    size_t len;
    unsigned attempts;
    struct evhttp_connection *conn;   /* the current or last attempt's */
    bool done;                        /* delivered or dropped */
    bool reaping;                     /* on the reap list: conn (and p if done) to free */
    TAILQ_ENTRY(post) reap_entry;
    struct event *timer;              /* waiting for the next attempt */
    char last[64];                    /* why the last attempt failed */
    /* webhook_post_once: one attempt, extra headers, a callback */
    bool once;
    void (*done_cb)(void *arg, int http_status); /* NULL once called or cancelled */
    void *done_arg;
    int status;                       /* the last answer's HTTP status, 0 = none */
    char **hdrs;                      /* name, value, name, value... (2 * nhdrs) */
    size_t nhdrs;
};
TAILQ_HEAD(post_list, post);

struct webhook_client {
    struct event_base *base;
    SSL_CTX *ssl;
    struct evdns_base *dns;
    struct metric *m_ok, *m_retry, *m_failed;
    unsigned backoff[WEBHOOK_MAX_RETRIES];
    size_t nbackoff;
    unsigned timeout_ms;
    struct post_list posts;
    size_t npending;             /* posts not done, or done with a callback not yet called */
    struct post_list reap_list;
    struct event *reaper;
};

static void post_free(struct post *p);

/* Frees finished connections and posts, outside libevent's callbacks. */
static void reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct webhook_client *c = arg;
    struct post *p;
    while ((p = TAILQ_FIRST(&c->reap_list)) != NULL) {
        TAILQ_REMOVE(&c->reap_list, p, reap_entry);
        p->reaping = false;
        if (p->conn) {
            evhttp_connection_free(p->conn);
            p->conn = NULL;
        }
        if (!p->done)
            continue;
        void (*cb)(void *, int) = p->done_cb;
        void *cb_arg = p->done_arg;
        int status = p->status;
        post_free(p);
        /* after the free: the callback may post again, even to this list */
        if (cb)
            cb(cb_arg, status);
    }
}

/* The attempt's connection is finished; p is too when done. */
static void finish(struct post *p, bool done)
{
    struct webhook_client *c = p->c;
    if (done && !p->done) {
        p->done = true;
        if (!p->done_cb)             /* else counted until its callback (post_free) */
            c->npending--;
    }
    if (!p->reaping) {
        p->reaping = true;
        TAILQ_INSERT_TAIL(&c->reap_list, p, reap_entry);
    }
    event_active(c->reaper, EV_TIMEOUT, 0);
}

struct webhook_client *webhook_client_new(struct event_base *base, struct ssl_ctx_st *ssl_ctx,
                                          struct metrics *metrics)
{
    struct webhook_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    c->ssl = ssl_ctx;
    c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    /* without it libevent resolves with a blocking getaddrinfo: still
     * correct, and numeric hosts never block */
    if (!c->dns)
        log_msg(LOG_WARN, "webhook", "event=no_evdns resolver=blocking");
    TAILQ_INIT(&c->posts);
    TAILQ_INIT(&c->reap_list);
    c->reaper = event_new(base, -1, 0, reap, c);
    if (!c->reaper) {
        if (c->dns)
            evdns_base_free(c->dns, 0);
        free(c);
        return NULL;
    }
    webhook_client_set_backoff(c, default_backoff_ms,
                               sizeof default_backoff_ms / sizeof default_backoff_ms[0]);
    c->timeout_ms = WEBHOOK_TIMEOUT_MS;
    if (metrics) {
        static const char *help = "Webhook POSTs: delivered, attempts to retry, posts dropped";
        c->m_ok = metrics_counter(metrics, "sesame_webhook_posts_total", help, "result=\"ok\"");
        c->m_retry = metrics_counter(metrics, "sesame_webhook_posts_total", help,
                                     "result=\"retry\"");
        c->m_failed = metrics_counter(metrics, "sesame_webhook_posts_total", help,
                                      "result=\"failed\"");
    }
    return c;
}

void webhook_client_set_backoff(struct webhook_client *c, const unsigned *ms, size_t n)
{
    if (n > WEBHOOK_MAX_RETRIES)
        n = WEBHOOK_MAX_RETRIES;
    for (size_t i = 0; i < n; i++)
        c->backoff[i] = ms[i];
    c->nbackoff = n;
}

void webhook_client_set_timeout_ms(struct webhook_client *c, unsigned ms)
{
    c->timeout_ms = ms ? ms : WEBHOOK_TIMEOUT_MS;
}

size_t webhook_pending(const struct webhook_client *c)
{
    return c ? c->npending : 0;
}

/* Not from inside a libevent http callback (the reaper, a timer, free). */
static void post_free(struct post *p)
{
    struct webhook_client *c = p->c;
    TAILQ_REMOVE(&c->posts, p, entry);
    if (p->reaping)
        TAILQ_REMOVE(&c->reap_list, p, reap_entry);
    if (!p->done || p->done_cb)
        c->npending--;
    if (p->conn)
        evhttp_connection_free(p->conn);   /* frees its request; no callback */
    if (p->timer)
        event_free(p->timer);
    for (size_t i = 0; i < 2 * p->nhdrs; i++)
        free(p->hdrs[i]);
    free(p->hdrs);
    free(p->path);
    free(p->body);
    free(p);
}

void webhook_client_free(struct webhook_client *c)
{
    if (!c)
        return;
    while (!TAILQ_EMPTY(&c->posts))
        post_free(TAILQ_FIRST(&c->posts));
    event_free(c->reaper);
    if (c->dns)
        evdns_base_free(c->dns, 0);
    free(c);
}

static void attempt(struct post *p);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt(arg);
}

/* The attempt failed: retry after the next delay, or drop the post. */
static void attempt_failed(struct post *p)
{
    struct webhook_client *c = p->c;
    if (p->once) {                  /* the caller retries, or not */
        metric_inc(c->m_retry);
        log_msg(LOG_INFO, "webhook", "event=attempt_failed target=%s://%s:%u last=\"%s\"",
                p->https ? "https" : "http", p->host, p->port, p->last);
        finish(p, true);
        return;
    }
    if (p->attempts > c->nbackoff) {
        metric_inc(c->m_failed);
        log_msg(LOG_WARN, "webhook", "event=dropped target=%s://%s:%u attempts=%u last=\"%s\"",
                p->https ? "https" : "http", p->host, p->port, p->attempts, p->last);
        finish(p, true);
        return;
    }
    metric_inc(c->m_retry);
    unsigned ms = c->backoff[p->attempts - 1];
    log_msg(LOG_INFO, "webhook", "event=retry target=%s://%s:%u attempt=%u in_ms=%u last=\"%s\"",
            p->https ? "https" : "http", p->host, p->port, p->attempts, ms, p->last);
    if (!p->timer)
        p->timer = evtimer_new(c->base, on_timer, p);
    finish(p, false);
    /* the loop's cached time may be older than now: delays count from now */
    event_base_update_cache_time(c->base);
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
    if (!p->timer || evtimer_add(p->timer, &tv) != 0) {
        metric_inc(c->m_failed);
        log_msg(LOG_ERROR, "webhook", "event=dropped reason=no_timer");
        finish(p, true);
        return;
    }
}

static void on_error(enum evhttp_request_error e, void *arg)
{
    struct post *p = arg;
    const char *what = e == EVREQ_HTTP_TIMEOUT          ? "timeout"
                       : e == EVREQ_HTTP_EOF            ? "connection closed or TLS failed"
                       : e == EVREQ_HTTP_INVALID_HEADER ? "invalid response"
                       : e == EVREQ_HTTP_DATA_TOO_LONG  ? "response too long"
                       : e == EVREQ_HTTP_BUFFER_ERROR   ? "I/O error"
                                                        : "cancelled";
    snprintf(p->last, sizeof p->last, "%s", what);
}

static void on_done(struct evhttp_request *req, void *arg)
{
    struct post *p = arg;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    p->status = code;
    if (code >= 200 && code <= 299) {
        metric_inc(p->c->m_ok);
        log_msg(LOG_DEBUG, "webhook", "event=delivered target=%s://%s:%u status=%d attempts=%u",
                p->https ? "https" : "http", p->host, p->port, code, p->attempts);
        finish(p, true);
        return;
    }
    if (code)
        snprintf(p->last, sizeof p->last, "HTTP %d", code);
    else if (!p->last[0])
        snprintf(p->last, sizeof p->last, "cannot connect");
    attempt_failed(p);
}

static struct bufferevent *tls_bev(struct post *p)
{
    SSL *ssl = SSL_new(p->c->ssl);
    if (!ssl)
        return NULL;
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    int ok;
    if (p->ip_literal) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, p->host);
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(param, p->host, 0) &&
             SSL_set_tlsext_host_name(ssl, p->host);
    }
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        p->c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void attempt(struct post *p)
{
    struct webhook_client *c = p->c;
    if (p->reaping) {               /* the last attempt's, not reaped yet */
        TAILQ_REMOVE(&c->reap_list, p, reap_entry);
        p->reaping = false;
    }
    if (p->conn) {
        evhttp_connection_free(p->conn);
        p->conn = NULL;
    }
    p->attempts++;
    p->last[0] = '\0';
    struct bufferevent *bev = NULL;
    struct evhttp_request *req = NULL;
    if (p->https) {
        bev = tls_bev(p);
        if (!bev) {
            snprintf(p->last, sizeof p->last, "cannot set up TLS");
            goto fail;
        }
    }
    /* the connection owns bev from here on */
    p->conn = evhttp_connection_base_bufferevent_new(c->base, c->dns, bev, p->host,
                                                     (unsigned short)p->port);
    if (!p->conn) {
        if (bev)
            bufferevent_free(bev);
        snprintf(p->last, sizeof p->last, "cannot create a connection");
        goto fail;
    }
    struct timeval tv = { .tv_sec = c->timeout_ms / 1000,
                          .tv_usec = (suseconds_t)(c->timeout_ms % 1000) * 1000 };
    evhttp_connection_set_timeout_tv(p->conn, &tv);
    evhttp_connection_set_retries(p->conn, 0);
    evhttp_connection_set_max_body_size(p->conn, WEBHOOK_MAX_RESPONSE);
    evhttp_connection_set_max_headers_size(p->conn, WEBHOOK_MAX_RESPONSE);

    req = evhttp_request_new(on_done, p);
    if (!req) {
        snprintf(p->last, sizeof p->last, "out of memory");
        goto fail_conn;
    }
    evhttp_request_set_error_cb(req, on_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", p->len);
    bool own_ctype = false;
    for (size_t i = 0; i < p->nhdrs; i++) {
        own_ctype |= strcasecmp(p->hdrs[2 * i], "Content-Type") == 0;
        if (evhttp_add_header(h, p->hdrs[2 * i], p->hdrs[2 * i + 1]) != 0) {
            evhttp_request_free(req);
            snprintf(p->last, sizeof p->last, "cannot add a header");
            goto fail_conn;
        }
    }
    if (evhttp_add_header(h, "Host", p->host_header) != 0 ||
        (!own_ctype && evhttp_add_header(h, "Content-Type", "application/json") != 0) ||
        evhttp_add_header(h, "Content-Length", clen) != 0 ||
        evhttp_add_header(h, "User-Agent", "sesame") != 0 ||
        evhttp_add_header(h, "Connection", "close") != 0 ||
        evbuffer_add(evhttp_request_get_output_buffer(req), p->body, p->len) != 0) {
        evhttp_request_free(req);
        snprintf(p->last, sizeof p->last, "out of memory");
        goto fail_conn;
    }
    /* on failure libevent has freed or dropped the request */
    if (evhttp_make_request(p->conn, req, EVHTTP_REQ_POST, p->path) != 0) {
        snprintf(p->last, sizeof p->last, "cannot start the request");
        goto fail_conn;
    }
    return;
fail_conn:
    evhttp_connection_free(p->conn);
    p->conn = NULL;
fail:
    attempt_failed(p);
}

/* Splits the URL into p; -1 when it is not one we can use. */
static int parse_url(struct post *p, const char *url, bool have_tls)
{
    size_t n = strlen(url);
    if (n == 0 || n > WEBHOOK_URL_MAX)
        return -1;
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u)
        return -1;
    int rc = -1;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    int port = evhttp_uri_get_port(u);
    if (!scheme || !host || !host[0] || evhttp_uri_get_userinfo(u))
        goto out;
    if (strcasecmp(scheme, "https") == 0)
        p->https = true;
    else if (strcasecmp(scheme, "http") != 0)
        goto out;
    if (p->https && !have_tls)
        goto out;
    if (port == 0 || port > 65535)
        goto out;
    p->port = port < 0 ? (p->https ? 443 : 80) : (unsigned)port;

    size_t hl = strlen(host);
    if (hl >= sizeof p->host)
        goto out;
    unsigned char addr[16];
    if (host[0] == '[') {
        if (hl < 3 || host[hl - 1] != ']')
            goto out;
        memcpy(p->host, host + 1, hl - 2);
        p->host[hl - 2] = '\0';
        if (inet_pton(AF_INET6, p->host, addr) != 1)
            goto out;
        p->ip_literal = true;
    } else {
        memcpy(p->host, host, hl + 1);
        p->ip_literal = inet_pton(AF_INET, p->host, addr) == 1;
    }
    if (port < 0)
        snprintf(p->host_header, sizeof p->host_header, "%s", host);
    else
        snprintf(p->host_header, sizeof p->host_header, "%s:%d", host, port);

    size_t pl = path && path[0] ? strlen(path) : 1, ql = query ? strlen(query) + 1 : 0;
    p->path = malloc(pl + ql + 1);
    if (!p->path)
        goto out;
    memcpy(p->path, path && path[0] ? path : "/", pl);
    if (query) {
        p->path[pl] = '?';
        memcpy(p->path + pl + 1, query, ql - 1);
    }
    p->path[pl + ql] = '\0';
    rc = 0;
out:
    evhttp_uri_free(u);
    return rc;
}

int webhook_url_check(const char *url, bool have_tls)
{
    if (!url)
        return -1;
    struct post p;
    memset(&p, 0, sizeof p);
    int rc = parse_url(&p, url, have_tls);
    free(p.path);
    return rc;
}

/* Header names a caller may not set: the transport's own. */
static bool reserved_header(const char *name)
{
    static const char *const reserved[] = { "Host", "Content-Length", "Connection",
                                            "Transfer-Encoding", "User-Agent" };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

/* A header name is an RFC 9110 token; a value is visible ASCII, spaces and
 * tabs, with no CR, LF or NUL (no header injection). */
static bool header_ok(const char *name, const char *value)
{
    if (!name || !value || !name[0] || strlen(name) > 64 || strlen(value) > WEBHOOK_HEADER_MAX)
        return false;
    for (const char *q = name; *q; q++)
        if (!strchr("!#$%&'*+-.^_`|~", *q) && !(*q >= '0' && *q <= '9') &&
            !(*q >= 'a' && *q <= 'z') && !(*q >= 'A' && *q <= 'Z'))
            return false;
    for (const unsigned char *q = (const unsigned char *)value; *q; q++)
        if ((*q < 0x20 && *q != '\t') || *q == 0x7f)
            return false;
    return !reserved_header(name);
}

static struct post *post_new(struct webhook_client *c, const char *url, const char *body,
                             size_t len)
{
    if (!c || !url || (!body && len) || len > WEBHOOK_BODY_MAX ||
        c->npending >= WEBHOOK_MAX_PENDING)
        return NULL;
    struct post *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->c = c;
    if (parse_url(p, url, c->ssl != NULL) != 0) {
        free(p->path);
        free(p);
        return NULL;
    }
    p->body = malloc(len ? len : 1);
    if (!p->body) {
        free(p->path);
        free(p);
        return NULL;
    }
    if (len)
        memcpy(p->body, body, len);
    p->len = len;
    return p;
}

/* Not yet on the client's lists. */
static void post_discard(struct post *p)
{
    for (size_t i = 0; i < 2 * p->nhdrs; i++)
        free(p->hdrs[i]);
    free(p->hdrs);
    free(p->path);
    free(p->body);
    free(p);
}

int webhook_post(struct webhook_client *c, const char *url, const char *body, size_t len)
{
    struct post *p = post_new(c, url, body, len);
    if (!p)
        return -1;
    TAILQ_INSERT_TAIL(&c->posts, p, entry);
    c->npending++;
    attempt(p);
    return 0;
}

int webhook_post_once(struct webhook_client *c, const char *url, const char *body, size_t len,
                      const char *const *headers, size_t nheaders,
                      void (*done)(void *arg, int http_status), void *arg)
{
    if (!done || nheaders > WEBHOOK_MAX_HEADERS || (nheaders && !headers))
        return -1;
    for (size_t i = 0; i < nheaders; i++)
        if (!header_ok(headers[2 * i], headers[2 * i + 1]))
            return -1;
    struct post *p = post_new(c, url, body, len);
    if (!p)
        return -1;
    if (nheaders) {
        p->hdrs = calloc(2 * nheaders, sizeof *p->hdrs);
        if (!p->hdrs) {
            post_discard(p);
            return -1;
        }
        p->nhdrs = nheaders;
        for (size_t i = 0; i < 2 * nheaders; i++) {
            p->hdrs[i] = strdup(headers[i]);
            if (!p->hdrs[i]) {
                post_discard(p);
                return -1;
            }
        }
    }
    p->once = true;
    p->done_cb = done;
    p->done_arg = arg;
    TAILQ_INSERT_TAIL(&c->posts, p, entry);
    c->npending++;
    attempt(p);
    return 0;
}

void webhook_cancel(struct webhook_client *c, void *arg)
{
    if (!c)
        return;
    struct post *p = TAILQ_FIRST(&c->posts);
    while (p) {
        struct post *next = TAILQ_NEXT(p, entry);
        if (p->once && p->done_arg == arg)
            post_free(p);
        p = next;
    }
}
