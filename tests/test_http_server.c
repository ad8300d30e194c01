/* The HTTP listener over real sockets: http_server_start on 127.0.0.1 with
 * an ephemeral port, requests from a small blocking client, status, headers
 * (Content-Type, WWW-Authenticate, Allow, Retry-After, Cache-Control) and
 * bodies as the API answers them; query strings and client IPs reach the
 * API; bodies over the API's limits and over HTTP_MAX_BODY_SIZE are 413;
 * the log line names the request but never the key; stop is clean (ASan
 * checks the leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns_zone.h"
#include "service/api.h"

static struct {
    char dir[64];
    char logfile[96];
    int saved_stderr;
    struct sesame_config cfg;
    struct store *st;
    struct dns_zone *zone;
    struct dns_resolver *dns;
    struct cred_cache *creds;
    struct authfail_limiter *authfail;
    struct metrics *metrics;
    struct http_server *srv;
    unsigned port;
    struct account_secrets sa;
    char auth[ACCOUNT_SECRET_MAX + 16];
} fx;

struct reply {
    int status;
    char headers[4096];
    char *body;
    size_t len;
};

static void reply_free(struct reply *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* The value of header name in r (case-insensitive name), or NULL. */
static const char *header(const struct reply *r, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)(eol - v), v);
            return out;
        }
        p = eol + 2;
    }
    return NULL;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;   /* the server may close early (413): what it said is read next */
        p += w;
        n -= (size_t)w;
    }
}

/* Reads a whole response (the server closes: Connection: close). */
static void read_reply(int fd, struct reply *r)
{
    memset(r, 0, sizeof *r);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end)
        fail_msg("no complete response: '%s'", buf);
    char *sp = strchr(buf, ' ');
    assert_non_null(sp);
    r->status = (int)strtol(sp + 1, NULL, 10);
    char *hdr = strstr(buf, "\r\n") + 2;
    size_t hl = (size_t)(end + 2 - hdr);
    assert_true(hl < sizeof r->headers);
    memcpy(r->headers, hdr, hl);
    r->headers[hl] = '\0';
    r->len = len - (size_t)(end + 4 - buf);
    r->body = malloc(r->len + 1);
    memcpy(r->body, end + 4, r->len);
    r->body[r->len] = '\0';
    char cl[32];
    if (header(r, "Content-Length", cl, sizeof cl))
        assert_int_equal(strtoul(cl, NULL, 10), r->len);
    free(buf);
}

static void request(const char *method, const char *target, const char *auth, const char *body,
                    size_t body_len, struct reply *r)
{
    int fd = connect_server();
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, target, auth ? "Authorization: " : "", auth ? auth : "",
                     auth ? "\r\n" : "", body_len);
    assert_true(n > 0 && (size_t)n < sizeof head);
    send_all(fd, head, (size_t)n);
    if (body_len)
        send_all(fd, body, body_len);
    read_reply(fd, r);
    close(fd);
}

static json_t *body_json(const struct reply *r)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    if (!j)
        fail_msg("not JSON: '%s'", r->body);
    return j;
}

static const char *error_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static int setup(void **state)
{
    memset(&fx, 0, sizeof fx);
    assert_int_equal(evthread_use_pthreads(), 0);
    snprintf(fx.dir, sizeof fx.dir, "/tmp/sesame-test-http-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    config_defaults(&fx.cfg);
    snprintf(fx.cfg.data_dir, sizeof fx.cfg.data_dir, "%s", fx.dir);
    char err[256] = "";
    fx.st = store_open(fx.cfg.store, fx.dir, err, sizeof err);
    if (!fx.st)
        fail_msg("store_open: %s", err);
    account_set_hash_cost(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
    struct store_account a;
    assert_int_equal(account_create(fx.st, "alice", false, 0, 0, &a, &fx.sa, err, sizeof err),
                     STORE_OK);
    snprintf(fx.auth, sizeof fx.auth, "Bearer %s", fx.sa.api_key);
    fx.zone = dns_zone_new();
    fx.dns = dns_zone_resolver_new(fx.zone);
    fx.creds = cred_cache_new();
    fx.authfail = authfail_new(3, 600);
    fx.metrics = metrics_new();

    snprintf(fx.logfile, sizeof fx.logfile, "%s/log", fx.dir);
    struct api_context proto = { fx.st, fx.dns, fx.creds, fx.authfail, fx.metrics, &fx.cfg, NULL,
                                 NULL };
    struct config_listen l;
    memset(&l, 0, sizeof l);
    snprintf(l.host, sizeof l.host, "127.0.0.1");
    l.port = 0;
    fx.srv = http_server_start(&l, &proto, err, sizeof err);
    if (!fx.srv)
        fail_msg("http_server_start: %s", err);
    fx.port = http_server_port(fx.srv);
    assert_true(fx.port > 0);
    return 0;
}

static int teardown(void **state)
{
    http_server_stop(fx.srv);
    metrics_free(fx.metrics);
    authfail_free(fx.authfail);
    cred_cache_free(fx.creds);
    dns_resolver_free(fx.dns);
    dns_zone_free(fx.zone);
    store_close(fx.st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void healthz(void **state)
{
    struct reply r;
    char v[128];
    request("GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json");
    assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "no-store");
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    reply_free(&r);

    request("GET", "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "text/plain; version=0.0.4");
    assert_non_null(strstr(r.body, "sesame_inbound_stored"));
    /* the request before this one was counted */
    assert_non_null(strstr(r.body, "sesame_http_requests_total{code=\"2xx\"}"));
    reply_free(&r);
}

static void auth_and_routes(void **state)
{
    struct reply r;
    char v[128];
    request("GET", "/v1/account", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(header(&r, "WWW-Authenticate", v, sizeof v), "Bearer realm=\"sesame\"");
    json_t *j = body_json(&r);
    assert_string_equal(error_code(j), "unauthorized");
    json_decref(j);
    reply_free(&r);

    request("GET", "/v1/account", fx.auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "account")), "alice");
    json_decref(j);
    reply_free(&r);

    /* the query reaches the API; the absolute form of the target too */
    request("GET", "/v1/inbound?limit=0", fx.auth, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    request("GET", "http://127.0.0.1/v1/inbound?limit=5", fx.auth, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_true(json_is_array(json_object_get(j, "messages")));
    json_decref(j);
    reply_free(&r);

    request("PUT", "/v1/account", fx.auth, "{}", 2, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow", v, sizeof v), "GET, PATCH");
    reply_free(&r);

    request("GET", "/v1/domains/%zz", fx.auth, NULL, 0, &r);
    assert_int_equal(r.status, 400);
    reply_free(&r);

    const char *rule = "{\"name\": \"r\", \"conditions\": [], \"actions\": [{\"type\": \"store\"}]}";
    request("POST", "/v1/rules", fx.auth, rule, strlen(rule), &r);
    assert_int_equal(r.status, 201);
    j = body_json(&r);
    char path[64];
    snprintf(path, sizeof path, "/v1/rules/%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    reply_free(&r);
    request("DELETE", path, fx.auth, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    reply_free(&r);
}

static void too_large(void **state)
{
    /* over the route's limit: the API's JSON 413 */
    size_t n = API_MAX_SMALL_BODY + 10;
    char *b = malloc(n);
    memset(b, ' ', n);
    b[0] = '{';
    b[n - 1] = '}';
    struct reply r;
    request("POST", "/v1/domains", fx.auth, b, n, &r);
    assert_int_equal(r.status, 413);
    json_t *j = body_json(&r);
    assert_string_equal(error_code(j), "payload_too_large");
    json_decref(j);
    reply_free(&r);
    free(b);

    /* over HTTP_MAX_BODY_SIZE: refused from the Content-Length, before any body */
    int fd = connect_server();
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/domains HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Content-Length: %lld\r\n\r\n{",
                      (long long)HTTP_MAX_BODY_SIZE + 1);
    send_all(fd, head, (size_t)hn);
    read_reply(fd, &r);
    close(fd);
    assert_int_equal(r.status, 413);
    reply_free(&r);
}

/* The server's log text once it holds needle (the line is written just
 * after the reply, from the server's thread), or NULL after 2 s. */
static char *wait_log(const char *needle)
{
    static char text[1 << 16];
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(fx.logfile, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof text - 1, f);
            fclose(f);
            text[n] = '\0';
            if (strstr(text, needle))
                return text;
        }
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void log_lines(void **state)
{
    /* stderr (the log) goes to a file for this request */
    fflush(stderr);
    fx.saved_stderr = dup(STDERR_FILENO);
    int lf = open(fx.logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(lf >= 0);
    dup2(lf, STDERR_FILENO);
    close(lf);
    struct reply r;
    request("GET", "/v1/account?secret_token=abc123", fx.auth, NULL, 0, &r);
    const char *want = "method=GET path=/v1/account status=200 account=alice ip=127.0.0.1";
    char *text = wait_log(want);
    fflush(stderr);
    dup2(fx.saved_stderr, STDERR_FILENO);
    close(fx.saved_stderr);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    if (!text)
        fail_msg("no log line with '%s'", want);
    assert_non_null(strstr(text, "duration_ms="));
    assert_null(strstr(text, fx.sa.api_key));
    assert_null(strstr(text, "abc123"));
    assert_null(strstr(text, "Bearer"));
}

static void port_in_use(void **state)
{
    struct api_context proto = { fx.st, fx.dns, fx.creds, fx.authfail, fx.metrics, &fx.cfg, NULL,
                                 NULL };
    struct config_listen l;
    memset(&l, 0, sizeof l);
    snprintf(l.host, sizeof l.host, "127.0.0.1");
    l.port = fx.port;
    char err[256] = "";
    assert_null(http_server_start(&l, &proto, err, sizeof err));
    assert_non_null(strstr(err, "cannot listen"));
    /* without a configuration there is nothing to open */
    proto.cfg = NULL;
    l.port = 0;
    assert_null(http_server_start(&l, &proto, err, sizeof err));
    /* a second server on another port runs alongside and stops cleanly */
    proto.cfg = &fx.cfg;
    struct http_server *h2 = http_server_start(&l, &proto, err, sizeof err);
    assert_non_null(h2);
    assert_int_not_equal(http_server_port(h2), fx.port);
    http_server_stop(h2);
    http_server_stop(NULL);
}

/* Last: it blocks 127.0.0.1. */
static void rate_limited(void **state)
{
    struct reply r;
    char v[64];
    for (int i = 0; i < 3; i++) {
        request("GET", "/v1/account", "Bearer sk_1_not-the-key", NULL, 0, &r);
        assert_int_equal(r.status, 401);
        assert_non_null(header(&r, "WWW-Authenticate", v, sizeof v));
        reply_free(&r);
    }
    request("GET", "/v1/account", fx.auth, NULL, 0, &r);
    assert_int_equal(r.status, 429);
    assert_non_null(header(&r, "Retry-After", v, sizeof v));
    assert_true(strtol(v, NULL, 10) > 0);
    json_t *j = body_json(&r);
    assert_string_equal(error_code(j), "rate_limited");
    json_decref(j);
    reply_free(&r);
    /* routes without auth still answer */
    request("GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(healthz),
        cmocka_unit_test(auth_and_routes),
        cmocka_unit_test(too_large),
        cmocka_unit_test(log_lines),
        cmocka_unit_test(port_in_use),
        cmocka_unit_test(rate_limited),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
