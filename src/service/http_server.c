/* The HTTP listener (see api.h): an evhttp server on its own thread, with
 * its own event_base and its own store connection, handing every request
 * to api_handle and writing one log line per request (method, path without
 * the query, status, account, duration; never the Authorization header or
 * the query, which may carry tokens).
 * It does not: speak TLS (put a proxy in front for a public listener), or
 * know any route. Bodies over HTTP_MAX_BODY_SIZE are refused by evhttp
 * itself (413, its own HTML body) before they reach the API. */
#include "service/api.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <unistd.h>

#include "util/log.h"

#define LOG_PATH_MAX 200

struct http_server {
    struct api_context ctx;          /* the template, with this thread's store */
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    pthread_t thread;
    bool running;
    unsigned port;
    struct metric *requests[6];      /* by status class: [1..5] */
    struct metric *latency;
    struct http_server *next;        /* the other lanes (the first one owns them) */
};

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "UNKNOWN";
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    }
    return "Status";
}

/* The path as a log value: printable ASCII without quotes, truncated. */
static void log_path(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; in && in[i] && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = c > 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    out[o] = '\0';
    if (in && strlen(in) > o && o >= 3)
        memcpy(out + o - 3, "...", 3);
}

static void free_body(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct http_server *h = arg;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    const char *method = method_name(evhttp_request_get_command(req));
    const char *uri = evhttp_request_get_uri(req);
    struct evhttp_uri *parsed = uri ? evhttp_uri_parse(uri) : NULL;
    const char *path = parsed ? evhttp_uri_get_path(parsed) : NULL;
    char ip[64] = "";
    char *peer = NULL;
    ev_uint16_t peer_port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn)
        evhttp_connection_get_peer(conn, &peer, &peer_port);
    if (peer)
        snprintf(ip, sizeof ip, "%s", peer);

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t body_len = evbuffer_get_length(in);
    const char *body = body_len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    struct api_request areq = {
        .method = method,
        /* an unparsable target is handed on as "" and refused by the API (400) */
        .path = path ? path : "",
        .query = parsed ? evhttp_uri_get_query(parsed) : NULL,
        .authorization = evhttp_find_header(evhttp_request_get_input_headers(req),
                                            "Authorization"),
        .client_ip = ip,
        .body = body,
        .body_len = body ? body_len : 0,
    };
    struct api_response resp;
    api_handle(&h->ctx, &areq, &resp);

    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (resp.content_type)
        evhttp_add_header(oh, "Content-Type", resp.content_type);
    evhttp_add_header(oh, "Cache-Control", "no-store");
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    if (resp.www_authenticate)
        evhttp_add_header(oh, "WWW-Authenticate", resp.www_authenticate);
    if (resp.allow[0])
        evhttp_add_header(oh, "Allow", resp.allow);
    if (resp.retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", resp.retry_after);
        evhttp_add_header(oh, "Retry-After", ra);
    }
    size_t out_len = resp.body.len;
    if (out_len && resp.status != 204) {
        char *data = buf_detach(&resp.body);
        if (!data ||
            evbuffer_add_reference(evhttp_request_get_output_buffer(req), data, out_len,
                                   free_body, NULL) != 0) {
            free(data);
            out_len = 0;
        }
    } else {
        out_len = 0;
    }
    buf_free(&resp.body);
    evhttp_send_reply(req, resp.status, reason(resp.status), NULL);

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int cls = resp.status / 100;
    if (cls >= 1 && cls <= 5)
        metric_inc(h->requests[cls]);
    metric_observe(h->latency, secs);
    char lp[LOG_PATH_MAX + 1];
    log_path(path ? path : "-", lp, sizeof lp);
    log_msg(LOG_INFO, "http", "method=%s path=%s status=%d account=%s ip=%s bytes=%zu "
            "duration_ms=%.1f%s%s", method, lp, resp.status,
            resp.account[0] ? resp.account : "-", ip[0] ? ip : "-", out_len, secs * 1000.0,
            resp.error_code ? " error=" : "", resp.error_code ? resp.error_code : "");
    if (parsed)
        evhttp_uri_free(parsed);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *h = arg;
    (void)fd;
    (void)what;
    event_base_loopbreak(h->base);
}

static void *run(void *arg)
{
    struct http_server *h = arg;
    event_base_dispatch(h->base);
    return NULL;
}

static void destroy(struct http_server *h)
{
    if (h->http)
        evhttp_free(h->http);
    if (h->stop_ev)
        event_free(h->stop_ev);
    if (h->base)
        event_base_free(h->base);
    if (h->ctx.st)
        store_close(h->ctx.st);
    free(h);
}

static void register_metrics(struct http_server *h)
{
    struct metrics *m = h->ctx.metrics;
    if (!m)
        return;
    for (int cls = 1; cls <= 5; cls++) {
        char labels[32];
        snprintf(labels, sizeof labels, "code=\"%dxx\"", cls);
        h->requests[cls] = metrics_counter(m, "sesame_http_requests_total",
                                           "HTTP API requests by status class", labels);
    }
    h->latency = metrics_histogram(m, "sesame_http_request_duration_seconds",
                                   "HTTP API request handling time", NULL,
                                   METRICS_LATENCY_BOUNDS, METRICS_LATENCY_NBOUNDS);
}

/* One lane: a thread with its event loop, its evhttp and its store
 * connection. Several lanes accept on the same listening socket, so slow
 * requests (a message to sign and queue) run in parallel and their store
 * writes share group commits. */
static struct http_server *lane_new(struct api_context *proto, char *err, size_t errlen)
{
    struct http_server *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "http: out of memory");
        return NULL;
    }
    h->ctx = *proto;
    h->ctx.st = NULL;
    char serr[256] = "";
    h->ctx.st = store_open(proto->cfg->store, proto->cfg->data_dir, serr, sizeof serr);
    if (!h->ctx.st) {
        snprintf(err, errlen, "http: cannot open the store: %s", serr);
        destroy(h);
        return NULL;
    }
    h->base = event_base_new();
    if (!h->base || evthread_make_base_notifiable(h->base) != 0) {
        snprintf(err, errlen, "http: cannot make an event loop (is libevent threading on? "
                 "evthread_use_pthreads)");
        destroy(h);
        return NULL;
    }
    h->http = evhttp_new(h->base);
    h->stop_ev = event_new(h->base, -1, 0, on_stop, h);
    if (!h->http || !h->stop_ev) {
        snprintf(err, errlen, "http: out of memory");
        destroy(h);
        return NULL;
    }
    evhttp_set_max_body_size(h->http, HTTP_MAX_BODY_SIZE);
    evhttp_set_max_headers_size(h->http, HTTP_MAX_HEADERS_SIZE);
    evhttp_set_timeout(h->http, HTTP_TIMEOUT_S);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(h->http, on_request, h);
    register_metrics(h);
    return h;
}

static int lane_run(struct http_server *h, char *err, size_t errlen)
{
    if (pthread_create(&h->thread, NULL, run, h) != 0) {
        snprintf(err, errlen, "http: cannot start a thread");
        return -1;
    }
    h->running = true;
    return 0;
}

struct http_server *http_server_start(const struct config_listen *listen, struct api_context *proto,
                                      char *err, size_t errlen)
{
    if (!listen || !proto || !proto->cfg) {
        snprintf(err, errlen, "http: no configuration");
        return NULL;
    }
    struct http_server *h = lane_new(proto, err, errlen);
    if (!h)
        return NULL;
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h->http, listen->host,
                                                                    (ev_uint16_t)listen->port);
    if (!bs) {
        snprintf(err, errlen, "http: cannot listen on %s:%u", listen->host, listen->port);
        destroy(h);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(bs);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    for (unsigned i = 1; i < HTTP_THREADS; i++) {
        struct http_server *lane = lane_new(proto, err, errlen);
        evutil_socket_t dfd = lane ? dup(fd) : -1;
        if (!lane || dfd < 0 || evutil_make_socket_nonblocking(dfd) != 0 ||
            !evhttp_accept_socket_with_handle(lane->http, dfd)) {
            if (dfd >= 0)
                close(dfd);
            if (lane)
                destroy(lane);
            if (!err[0])
                snprintf(err, errlen, "http: cannot share the listening socket");
            http_server_stop(h);
            return NULL;
        }
        lane->next = h->next;
        h->next = lane;
    }
    for (struct http_server *l = h; l; l = l->next)
        if (lane_run(l, err, errlen) != 0) {
            http_server_stop(h);
            return NULL;
        }
    log_msg(LOG_INFO, "http", "event=listening addr=%s port=%u threads=%u", listen->host, h->port,
            HTTP_THREADS);
    return h;
}

unsigned http_server_port(const struct http_server *h)
{
    return h ? h->port : 0;
}

void http_server_stop(struct http_server *h)
{
    while (h) {
        struct http_server *next = h->next;
        if (h->running) {
            event_active(h->stop_ev, 0, 0);
            pthread_join(h->thread, NULL);
        }
        destroy(h);
        h = next;
    }
}
