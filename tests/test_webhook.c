/* Webhook client against evhttp servers on 127.0.0.1 in the same event
 * loop: the body and headers arrive exactly; a 500 then 200 is retried
 * once; a refused connection and a silent server are retried on the
 * backoff table and then dropped; https verifies the server's certificate
 * and name; bad URLs are refused up front; freeing the client cancels
 * what is in flight. Outcomes are checked in the metrics too.
 * webhook_post_once: extra headers arrive, one attempt only, the callback
 * gets the status (0 without an answer) once and never synchronously,
 * cancelling stops it, bad headers are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "service/metrics.h"
#include "service/tls.h"
#include "service/webhook.h"

#define MAX_REQS 8

struct seen {
    char method[8];
    char uri[256];
    char ctype[64], clen[24], host[64], agent[32];
    char all[1024];              /* every header, "name: value\n" */
    char *body;
    size_t len;
    double at;
};

struct server {
    struct evhttp *http;
    unsigned port;
    int codes[MAX_REQS];         /* reply per request; 0 = never answer */
    size_t nreq;
    struct seen reqs[MAX_REQS];
    SSL_CTX *ssl;                /* https when set */
};

static struct event_base *base;
static struct event *tick;
static struct metrics *metrics;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void copy_header(struct evkeyvalq *h, const char *name, char *out, size_t n)
{
    const char *v = evhttp_find_header(h, name);
    snprintf(out, n, "%s", v ? v : "(none)");
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct server *s = arg;
    assert_true(s->nreq < MAX_REQS);
    struct seen *r = &s->reqs[s->nreq];
    int code = s->codes[s->nreq];
    s->nreq++;
    r->at = now_s();
    snprintf(r->method, sizeof r->method, "%s",
             evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "other");
    snprintf(r->uri, sizeof r->uri, "%s", evhttp_request_get_uri(req));
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    copy_header(h, "Content-Type", r->ctype, sizeof r->ctype);
    copy_header(h, "Content-Length", r->clen, sizeof r->clen);
    copy_header(h, "Host", r->host, sizeof r->host);
    copy_header(h, "User-Agent", r->agent, sizeof r->agent);
    r->all[0] = '\0';
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        size_t used = strlen(r->all);
        snprintf(r->all + used, sizeof r->all - used, "%s: %s\n", kv->key, kv->value);
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    r->len = evbuffer_get_length(in);
    r->body = malloc(r->len + 1);
    assert_non_null(r->body);
    evbuffer_remove(in, r->body, r->len);
    r->body[r->len] = '\0';
    if (code)
        evhttp_send_reply(req, code, code == 200 ? "OK" : "Nope", NULL);
    /* else: leave the request unanswered (a hung endpoint) */
}

static struct bufferevent *ssl_bevcb(struct event_base *b, void *arg)
{
    struct server *s = arg;
    return bufferevent_openssl_socket_new(b, -1, SSL_new(s->ssl), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void server_start(struct server *s, SSL_CTX *ssl)
{
    memset(s, 0, sizeof *s);
    s->ssl = ssl;
    s->http = evhttp_new(base);
    assert_non_null(s->http);
    if (ssl)
        evhttp_set_bevcb(s->http, ssl_bevcb, s);
    evhttp_set_gencb(s->http, handle, s);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    s->port = ntohs(sin.sin_port);
}

static void server_stop(struct server *s)
{
    evhttp_free(s->http);
    for (size_t i = 0; i < s->nreq; i++)
        free(s->reqs[i].body);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what; (void)arg;
}

/* Runs the loop until the client has nothing pending (or 5 s passed). */
static void run_until_idle(struct webhook_client *c)
{
    double deadline = now_s() + 5;
    while (webhook_pending(c) > 0 && now_s() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(webhook_pending(c), 0);
}

static uint64_t count(const char *result)
{
    char labels[32];
    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    return metric_value(metrics_counter(metrics, "sesame_webhook_posts_total", "", labels));
}

static int setup(void **state)
{
    (void)state;
    base = event_base_new();
    metrics = metrics_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = { 0, 10000 };
    event_add(tick, &tv);
    return base && metrics && tick ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    event_free(tick);
    event_base_free(base);
    metrics_free(metrics);
    return 0;
}

static const unsigned fast[] = { 20, 40, 60 };

static void test_body_and_headers(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, NULL);
    s.codes[0] = 200;
    s.codes[1] = 204;
    struct webhook_client *c = webhook_client_new(base, NULL, metrics);
    assert_non_null(c);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/hooks/in?token=abc&x=1", s.port);
    const char body[] = "{\"eventType\":\"Received\",\"text\":\"caf\xc3\xa9 \\\"q\\\"\\n\"}";
    assert_int_equal(webhook_post(c, url, body, sizeof body - 1), 0);
    assert_int_equal(webhook_pending(c), 1);
    run_until_idle(c);
    assert_int_equal(s.nreq, 1);
    struct seen *r = &s.reqs[0];
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->uri, "/hooks/in?token=abc&x=1");
    assert_string_equal(r->ctype, "application/json");
    char want[32];
    snprintf(want, sizeof want, "%zu", sizeof body - 1);
    assert_string_equal(r->clen, want);
    snprintf(want, sizeof want, "127.0.0.1:%u", s.port);
    assert_string_equal(r->host, want);
    assert_string_equal(r->agent, "sesame");
    assert_int_equal(r->len, sizeof body - 1);
    assert_memory_equal(r->body, body, sizeof body - 1);
    assert_int_equal(count("ok"), 1);
    assert_int_equal(count("retry"), 0);
    assert_int_equal(count("failed"), 0);

    /* a large body with every byte value, and no path in the URL */
    size_t big = 1 << 20;
    char *b = malloc(big);
    for (size_t i = 0; i < big; i++)
        b[i] = (char)(i * 7);
    snprintf(url, sizeof url, "http://127.0.0.1:%u", s.port);
    assert_int_equal(webhook_post(c, url, b, big), 0);
    run_until_idle(c);
    assert_int_equal(s.nreq, 2);
    assert_string_equal(s.reqs[1].uri, "/");
    assert_int_equal(s.reqs[1].len, big);
    assert_memory_equal(s.reqs[1].body, b, big);
    free(b);
    assert_int_equal(count("ok"), 2);   /* 204 is a success too */
    webhook_client_free(c);
    server_stop(&s);
}

static void test_retry_500_then_200(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, NULL);
    s.codes[0] = 500;
    s.codes[1] = 200;
    uint64_t ok0 = count("ok"), retry0 = count("retry"), failed0 = count("failed");
    struct webhook_client *c = webhook_client_new(base, NULL, metrics);
    webhook_client_set_backoff(c, fast, 3);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/h", s.port);
    assert_int_equal(webhook_post(c, url, "{}", 2), 0);
    run_until_idle(c);
    assert_int_equal(s.nreq, 2);
    assert_string_equal(s.reqs[1].body, "{}");
    assert_string_equal(s.reqs[1].uri, "/h");
    /* waited for the first delay (libevent may use a coarse clock: +-5 ms) */
    if (s.reqs[1].at - s.reqs[0].at < 0.015)
        fail_msg("retried after %.4f s", s.reqs[1].at - s.reqs[0].at);
    assert_int_equal(count("ok") - ok0, 1);
    assert_int_equal(count("retry") - retry0, 1);
    assert_int_equal(count("failed") - failed0, 0);

    /* always 503: the first try and three retries, then dropped */
    struct server t;
    server_start(&t, NULL);
    for (int i = 0; i < MAX_REQS; i++)
        t.codes[i] = 503;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/h", t.port);
    assert_int_equal(webhook_post(c, url, "{}", 2), 0);
    run_until_idle(c);
    assert_int_equal(t.nreq, 4);
    assert_int_equal(count("retry") - retry0, 4);
    assert_int_equal(count("failed") - failed0, 1);
    webhook_client_free(c);
    server_stop(&s);
    server_stop(&t);
}

static unsigned closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);   /* nobody listens there now */
    return ntohs(sin.sin_port);
}

static void test_refused(void **state)
{
    (void)state;
    uint64_t retry0 = count("retry"), failed0 = count("failed"), ok0 = count("ok");
    struct webhook_client *c = webhook_client_new(base, NULL, metrics);
    webhook_client_set_backoff(c, fast, 2);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/h", closed_port());
    double t0 = now_s();
    assert_int_equal(webhook_post(c, url, "{}", 2), 0);
    run_until_idle(c);
    if (now_s() - t0 < 0.05)                      /* 20 ms + 40 ms of backoff */
        fail_msg("dropped after %.4f s", now_s() - t0);
    assert_int_equal(count("retry") - retry0, 2);
    assert_int_equal(count("failed") - failed0, 1);
    assert_int_equal(count("ok") - ok0, 0);
    webhook_client_free(c);
}

static void test_timeout(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, NULL);        /* codes all 0: never answers */
    uint64_t retry0 = count("retry"), failed0 = count("failed");
    struct webhook_client *c = webhook_client_new(base, NULL, metrics);
    webhook_client_set_backoff(c, fast, 1);
    webhook_client_set_timeout_ms(c, 200);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/slow", s.port);
    double t0 = now_s();
    assert_int_equal(webhook_post(c, url, "{}", 2), 0);
    run_until_idle(c);
    double took = now_s() - t0;
    assert_true(took >= 0.4 && took < 3);
    assert_int_equal(s.nreq, 2);
    assert_int_equal(count("retry") - retry0, 1);
    assert_int_equal(count("failed") - failed0, 1);
    webhook_client_free(c);
    server_stop(&s);
}

static void test_bad_urls(void **state)
{
    (void)state;
    struct webhook_client *c = webhook_client_new(base, NULL, NULL);
    static const char *bad[] = {
        "", "not a url", "ftp://example.test/", "http://", "http:///path", "//example.test/",
        "/just/a/path", "http://user:pw@example.test/", "https://example.test/",
        "http://example.test:0/", "http://example.test:99999/", "http://[::1/",
        "http://[zz::1]/", "http://exa mple.test/", "http://example.test/a b",
        "mailto:a@example.test", "http://example.test\r\nX: y/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (webhook_post(c, bad[i], "{}", 2) != -1)
            fail_msg("accepted %s", bad[i]);
    char *longurl = malloc(WEBHOOK_URL_MAX + 64);
    int n = snprintf(longurl, 64, "http://example.test/");
    memset(longurl + n, 'a', WEBHOOK_URL_MAX);
    longurl[n + WEBHOOK_URL_MAX] = '\0';
    assert_int_equal(webhook_post(c, longurl, "{}", 2), -1);
    free(longurl);
    assert_int_equal(webhook_post(c, "http://127.0.0.1:9/", "{}", (size_t)WEBHOOK_BODY_MAX + 1),
                     -1);
    assert_int_equal(webhook_post(NULL, "http://127.0.0.1:9/", "{}", 2), -1);
    assert_int_equal(webhook_pending(c), 0);
    webhook_client_free(c);
}

static SSL_CTX *server_tls(const char *dir, const char *host, char *certpath, size_t n)
{
    char data[256], err[256];
    snprintf(data, sizeof data, "%s/%s", dir, host);
    SSL_CTX *ctx = tls_server_ctx("", "", data, host, err, sizeof err);
    if (!ctx)
        fail_msg("%s", err);
    snprintf(certpath, n, "%s/tls/cert.pem", data);
    return ctx;
}

static void trust(SSL_CTX *client, const char *certpath)
{
    FILE *f = fopen(certpath, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(client), x), 1);
    X509_free(x);
}

static void test_https(void **state)
{
    (void)state;
    char dir[] = "/tmp/sesame-test-webhook-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert_ip[512], cert_name[512], err[256];
    SSL_CTX *ok_ctx = server_tls(dir, "127.0.0.1", cert_ip, sizeof cert_ip);
    SSL_CTX *other_ctx = server_tls(dir, "hooks.example.test", cert_name, sizeof cert_name);
    SSL_CTX *client = tls_client_ctx(err, sizeof err);
    assert_non_null(client);

    struct server s, t;
    server_start(&s, ok_ctx);
    server_start(&t, other_ctx);
    s.codes[0] = 200;
    for (int i = 0; i < MAX_REQS; i++)
        t.codes[i] = 200;
    uint64_t ok0 = count("ok"), failed0 = count("failed");
    struct webhook_client *c = webhook_client_new(base, client, metrics);
    webhook_client_set_backoff(c, fast, 1);
    char url[128];

    /* not trusted yet: the self-signed certificate is refused */
    snprintf(url, sizeof url, "https://127.0.0.1:%u/tls", s.port);
    assert_int_equal(webhook_post(c, url, "{\"a\":1}", 7), 0);
    run_until_idle(c);
    assert_int_equal(s.nreq, 0);
    assert_int_equal(count("failed") - failed0, 1);

    trust(client, cert_ip);
    trust(client, cert_name);
    assert_int_equal(webhook_post(c, url, "{\"a\":1}", 7), 0);
    run_until_idle(c);
    assert_int_equal(s.nreq, 1);
    assert_string_equal(s.reqs[0].body, "{\"a\":1}");
    assert_string_equal(s.reqs[0].uri, "/tls");
    assert_int_equal(count("ok") - ok0, 1);

    /* trusted, but issued to another name than the URL's host */
    snprintf(url, sizeof url, "https://127.0.0.1:%u/tls", t.port);
    assert_int_equal(webhook_post(c, url, "{}", 2), 0);
    run_until_idle(c);
    assert_int_equal(t.nreq, 0);
    assert_int_equal(count("failed") - failed0, 2);
    assert_int_equal(count("ok") - ok0, 1);

    webhook_client_free(c);
    server_stop(&s);
    server_stop(&t);
    SSL_CTX_free(client);
    SSL_CTX_free(ok_ctx);
    SSL_CTX_free(other_ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_free_in_flight(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, NULL);        /* never answers */
    struct webhook_client *c = webhook_client_new(base, NULL, metrics);
    static const unsigned slow[] = { 60000 };
    webhook_client_set_backoff(c, slow, 1);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", s.port);
    assert_int_equal(webhook_post(c, url, "{}", 2), 0);            /* in flight */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", closed_port());
    assert_int_equal(webhook_post(c, url, "{}", 2), 0);            /* will wait 60 s */
    double deadline = now_s() + 2;
    while (s.nreq == 0 && now_s() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.nreq, 1);
    assert_int_equal(webhook_pending(c), 2);
    webhook_client_free(c);        /* ASan: nothing leaks, nothing fires later */
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_ONCE);
    server_stop(&s);
}

/* ---- webhook_post_once ---- */

struct outcome {
    int calls;
    int status;
};

static void once_done(void *arg, int status)
{
    struct outcome *o = arg;
    o->calls++;
    o->status = status;
}

static void run_until_called(struct outcome *o, int calls)
{
    double deadline = now_s() + 5;
    while (o->calls < calls && now_s() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(o->calls, calls);
}

struct repost {
    struct outcome o;
    struct webhook_client *c;
    const char *url;
};

static void repost_done(void *arg, int status)
{
    struct repost *r = arg;
    once_done(&r->o, status);
    if (r->o.calls == 1 && webhook_post_once(r->c, r->url, "{}", 2, NULL, 0, repost_done, r) != 0)
        fail_msg("cannot post again");
}

static void test_once(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, NULL);
    s.codes[0] = 500;
    s.codes[1] = 202;
    s.codes[2] = 200;     /* a post whose callback posts again */
    s.codes[3] = 200;
    uint64_t ok0 = count("ok"), retry0 = count("retry"), failed0 = count("failed");
    struct webhook_client *c = webhook_client_new(base, NULL, metrics);
    webhook_client_set_backoff(c, fast, 3);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ev", s.port);
    const char *h[] = { "X-Sesame-Signature", "sha256=00ff", "X-Sesame-Event-Id", "42" };
    struct outcome o = { 0 };
    assert_int_equal(webhook_post_once(c, url, "{\"a\":1}", 7, h, 2, once_done, &o), 0);
    assert_int_equal(o.calls, 0);               /* never from inside the call */
    assert_int_equal(webhook_pending(c), 1);
    run_until_called(&o, 1);
    assert_int_equal(o.status, 500);            /* and no retry of its own */
    assert_int_equal(webhook_pending(c), 0);
    for (int i = 0; i < 10; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(s.nreq, 1);
    assert_string_equal(s.reqs[0].body, "{\"a\":1}");
    assert_string_equal(s.reqs[0].ctype, "application/json");
    assert_non_null(strstr(s.reqs[0].all, "X-Sesame-Signature: sha256=00ff\n"));
    assert_non_null(strstr(s.reqs[0].all, "X-Sesame-Event-Id: 42\n"));
    assert_int_equal(count("retry") - retry0, 1);
    assert_int_equal(count("failed") - failed0, 0);

    /* 202, with our own Content-Type */
    const char *h2[] = { "content-type", "application/cloudevents+json" };
    memset(&o, 0, sizeof o);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, h2, 1, once_done, &o), 0);
    run_until_called(&o, 1);
    assert_int_equal(o.status, 202);
    assert_string_equal(s.reqs[1].ctype, "application/cloudevents+json");
    assert_int_equal(count("ok") - ok0, 1);

    /* no answer at all: status 0, once */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ev", closed_port());
    memset(&o, 0, sizeof o);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, NULL, 0, once_done, &o), 0);
    run_until_called(&o, 1);
    assert_int_equal(o.status, 0);
    for (int i = 0; i < 10; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(o.calls, 1);

    /* the callback may post again from inside its call */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/again", s.port);
    struct repost r = { .c = c, .url = url };
    assert_int_equal(webhook_post_once(c, url, "{}", 2, NULL, 0, repost_done, &r), 0);
    run_until_called(&r.o, 2);
    assert_int_equal(r.o.status, 200);
    assert_int_equal(s.nreq, 4);
    assert_string_equal(s.reqs[3].uri, "/again");
    assert_int_equal(webhook_pending(c), 0);
    webhook_client_free(c);
    server_stop(&s);
}

static void test_once_refused_up_front(void **state)
{
    (void)state;
    struct webhook_client *c = webhook_client_new(base, NULL, NULL);
    struct outcome o = { 0 };
    const char *url = "http://127.0.0.1:9/";
    const char *crlf[] = { "X-A", "b\r\nX-Injected: 1" };
    const char *badname[] = { "X A", "b" };
    const char *host[] = { "Host", "evil.example" };
    const char *clen[] = { "content-length", "1" };
    const char *empty[] = { "", "b" };
    assert_int_equal(webhook_post_once(c, url, "{}", 2, crlf, 1, once_done, &o), -1);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, badname, 1, once_done, &o), -1);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, host, 1, once_done, &o), -1);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, clen, 1, once_done, &o), -1);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, empty, 1, once_done, &o), -1);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, NULL, 1, once_done, &o), -1);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, NULL, 0, NULL, &o), -1);
    assert_int_equal(webhook_post_once(c, "ftp://x/", "{}", 2, NULL, 0, once_done, &o), -1);
    assert_int_equal(webhook_post_once(c, "https://x/", "{}", 2, NULL, 0, once_done, &o), -1);
    assert_int_equal(webhook_pending(c), 0);
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(o.calls, 0);

    assert_int_equal(webhook_url_check("http://127.0.0.1:8/x?y", false), 0);
    assert_int_equal(webhook_url_check("https://hooks.example/x", true), 0);
    assert_int_equal(webhook_url_check("https://hooks.example/x", false), -1);
    assert_int_equal(webhook_url_check("http://u:p@hooks.example/", true), -1);
    assert_int_equal(webhook_url_check("gopher://hooks.example/", true), -1);
    assert_int_equal(webhook_url_check(NULL, true), -1);
    webhook_client_free(c);
}

static void test_once_cancel(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, NULL);        /* never answers */
    struct webhook_client *c = webhook_client_new(base, NULL, NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", s.port);
    struct outcome a = { 0 }, b = { 0 }, d = { 0 };
    assert_int_equal(webhook_post_once(c, url, "{}", 2, NULL, 0, once_done, &a), 0);
    assert_int_equal(webhook_post_once(c, url, "{}", 2, NULL, 0, once_done, &b), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", closed_port());
    assert_int_equal(webhook_post_once(c, url, "{}", 2, NULL, 0, once_done, &d), 0);
    webhook_cancel(c, &d);         /* before its attempt ended */
    double deadline = now_s() + 2;
    while (s.nreq < 2 && now_s() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(s.nreq, 2);
    webhook_cancel(c, &a);         /* in flight */
    assert_int_equal(webhook_pending(c), 1);
    for (int i = 0; i < 10; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(a.calls + d.calls, 0);
    webhook_client_free(c);        /* b: cancelled by the free, never called */
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(b.calls, 0);
    server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_and_headers),
        cmocka_unit_test(test_retry_500_then_200),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_https),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_once),
        cmocka_unit_test(test_once_refused_up_front),
        cmocka_unit_test(test_once_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
