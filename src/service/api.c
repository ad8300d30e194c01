/* The HTTP API as a function (see api.h): the route table, path decoding,
 * Bearer authentication with the failed-authentication limiter, JSON
 * bodies and errors, the shared helpers of api_internal.h, and the two
 * routes without an account (/healthz, /metrics).
 * It does not: touch sockets (http_server.c does), or know the areas'
 * objects (api_account.c, api_domains.c, api_inbound.c, api_rules.c,
 * api_send.c, api_messages.c, api_suppressions.c, api_webhooks.c). */
#include "service/api.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "service/api_internal.h"
#include "service/reputation.h"
#include "util/utf8.h"
#include "service/rules.h"
#include "util/log.h"

#define API_MAX_SEGMENTS 16
#define ERROR_MESSAGE_MAX 512

#define CT_JSON    "application/json"
#define CT_METRICS "text/plain; version=0.0.4"

#define WWW_AUTH_MISSING "Bearer realm=\"sesame\""
#define WWW_AUTH_INVALID "Bearer realm=\"sesame\", error=\"invalid_token\""

enum {
    ROUTE_AUTH = 1,        /* needs Authorization: Bearer API_KEY */
    ROUTE_JSON = 2,        /* takes a JSON object body */
};

struct route {
    const char *method;
    const char *pattern;   /* "/v1/rules/{}": {} is one path segment, a parameter */
    api_handler handler;
    unsigned flags;
    size_t max_body;       /* ROUTE_JSON: larger bodies are 413 */
};

static void health_get(struct api_call *c);
static void metrics_get(struct api_call *c);

static const struct route routes[] = {
    { "GET", "/healthz", health_get, 0, 0 },
    { "GET", "/metrics", metrics_get, 0, 0 },
    { "GET", "/v1/account", api_account_get, ROUTE_AUTH, 0 },
    { "PATCH", "/v1/account", api_account_patch, ROUTE_AUTH | ROUTE_JSON, API_MAX_SMALL_BODY },
    { "GET", "/v1/domains", api_domains_list, ROUTE_AUTH, 0 },
    { "POST", "/v1/domains", api_domains_create, ROUTE_AUTH | ROUTE_JSON, API_MAX_SMALL_BODY },
    { "GET", "/v1/domains/{}", api_domains_get, ROUTE_AUTH, 0 },
    { "DELETE", "/v1/domains/{}", api_domains_delete, ROUTE_AUTH, 0 },
    { "POST", "/v1/domains/{}/dkim/rotate", api_domains_rotate, ROUTE_AUTH, 0 },
    { "POST", "/v1/domains/{}/verify", api_domains_verify, ROUTE_AUTH, 0 },
    { "PUT", "/v1/domains/{}/mail-from", api_domains_mail_from, ROUTE_AUTH | ROUTE_JSON,
      API_MAX_SMALL_BODY },
    { "GET", "/v1/senders", api_senders_list, ROUTE_AUTH, 0 },
    { "POST", "/v1/senders", api_senders_create, ROUTE_AUTH | ROUTE_JSON, API_MAX_SMALL_BODY },
    { "GET", "/v1/senders/{}", api_senders_get, ROUTE_AUTH, 0 },
    { "DELETE", "/v1/senders/{}", api_senders_delete, ROUTE_AUTH, 0 },
    { "GET", "/v1/confirm", api_senders_confirm, 0, 0 },
    { "GET", "/v1/dmarc/reports", api_dmarc_reports_list, ROUTE_AUTH, 0 },
    { "GET", "/v1/dmarc/reports/{}", api_dmarc_reports_get, ROUTE_AUTH, 0 },
    { "GET", "/v1/inbound", api_inbound_list, ROUTE_AUTH, 0 },
    { "GET", "/v1/inbound/{}", api_inbound_get, ROUTE_AUTH, 0 },
    { "GET", "/v1/inbound/{}/raw", api_inbound_raw, ROUTE_AUTH, 0 },
    { "GET", "/v1/rules", api_rules_list, ROUTE_AUTH, 0 },
    { "POST", "/v1/rules", api_rules_create, ROUTE_AUTH | ROUTE_JSON, RULES_MAX_JSON },
    { "DELETE", "/v1/rules/{}", api_rules_delete, ROUTE_AUTH, 0 },
    { "POST", "/v1/messages", api_messages_send, ROUTE_AUTH | ROUTE_JSON, HTTP_MAX_BODY_SIZE },
    { "GET", "/v1/messages/{}", api_messages_get, ROUTE_AUTH, 0 },
    { "GET", "/v1/suppressions", api_suppressions_list, ROUTE_AUTH, 0 },
    { "POST", "/v1/suppressions", api_suppressions_put, ROUTE_AUTH | ROUTE_JSON,
      API_MAX_SMALL_BODY },
    { "DELETE", "/v1/suppressions/{}", api_suppressions_delete, ROUTE_AUTH, 0 },
    { "GET", "/v1/webhooks", api_webhooks_list, ROUTE_AUTH, 0 },
    { "POST", "/v1/webhooks", api_webhooks_create, ROUTE_AUTH | ROUTE_JSON, API_MAX_SMALL_BODY },
    { "DELETE", "/v1/webhooks/{}", api_webhooks_delete, ROUTE_AUTH, 0 },
};

/* ---- helpers shared by the handlers ---- */

json_t *api_strn(const char *s, size_t len)
{
    if (!s)
        return json_string("");
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq_len(p + i, len - i);
        if (k == 0)
            break;
        i += k;
    }
    if (i == len)
        return json_stringn(s, len);
    /* Invalid UTF-8: each bad byte becomes U+FFFD. */
    struct buf b;
    buf_init(&b, len * 3 + 1);
    if (buf_append(&b, s, i) != 0) {
        buf_free(&b);
        return NULL;
    }
    while (i < len) {
        size_t k = utf8_seq_len(p + i, len - i);
        int rc = k ? buf_append(&b, p + i, k) : buf_append(&b, "\xef\xbf\xbd", 3);
        if (rc != 0) {
            buf_free(&b);
            return NULL;
        }
        i += k ? k : 1;
    }
    json_t *j = json_stringn(buf_cstr(&b), b.len);
    buf_free(&b);
    return j;
}

json_t *api_str(const char *s)
{
    return api_strn(s, s ? strlen(s) : 0);
}

json_t *api_time(int64_t t)
{
    if (t <= 0)
        return json_null();
    time_t tt = (time_t)t;
    struct tm tm;
    char s[40];
    if (!gmtime_r(&tt, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_null();
    return json_string(s);
}

int api_set(json_t *obj, const char *key, json_t *value)
{
    if (!value)
        return -1;
    return json_object_set_new(obj, key, value);
}

int api_parse_id(const char *s, int64_t *out)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 19 || s[0] == '0')
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes p[0..n) into out (room for outlen bytes and a NUL; out
 * NULL only checks): refuses bad escapes, NUL and other control
 * characters; '+' becomes a space when plus is set (query strings).
 * Returns the length or -1. */
static long pct_decode(const char *p, size_t n, bool plus, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (unsigned char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (out) {
            if (o + 1 >= outlen)
                return -1;
            out[o] = (char)c;
        }
        o++;
    }
    if (out)
        out[o] = '\0';
    return (long)o;
}

int api_query_get(const char *query, const char *name, char *out, size_t outlen)
{
    if (!query)
        return 0;
    int found = 0;
    size_t namelen = strlen(name);
    const char *p = query;
    for (;;) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t klen = eq ? (size_t)(eq - p) : n;
        const char *v = eq ? eq + 1 : p + n;
        size_t vlen = eq ? n - klen - 1 : 0;
        char key[64];
        long kn = pct_decode(p, klen, true, NULL, 0);
        if (kn < 0 || pct_decode(v, vlen, true, NULL, 0) < 0)
            return -1;
        if ((size_t)kn == namelen && pct_decode(p, klen, true, key, sizeof key) >= 0 &&
            strcmp(key, name) == 0) {
            if (found || pct_decode(v, vlen, true, out, outlen) < 0)
                return -1;
            found = 1;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return found;
}

static void set_body(struct api_call *c, int status, json_t *obj)
{
    struct api_response *r = c->resp;
    buf_reset(&r->body);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text || buf_append_str(&r->body, text) != 0 || buf_append_char(&r->body, '\n') != 0) {
        free(text);
        buf_reset(&r->body);
        r->status = 500;
        r->content_type = CT_JSON;
        r->error_code = "internal";
        if (buf_append_str(&r->body, "{\"error\":{\"code\":\"internal\",\"message\":"
                                     "\"out of memory\"}}\n") != 0)
            buf_reset(&r->body);
        return;
    }
    free(text);
    r->status = status;
    r->content_type = CT_JSON;
}

void api_error(struct api_call *c, int status, const char *code, const char *fmt, ...)
{
    char msg[ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *m = api_str(msg);
    json_t *obj = m ? json_pack("{s:{s:s, s:o}}", "error", "code", code, "message", m) : NULL;
    set_body(c, status, obj);
    if (c->resp->status == status)
        c->resp->error_code = code;
}

void api_store_error(struct api_call *c)
{
    api_error(c, 500, "internal", "the store failed; try again later");
}

void api_json(struct api_call *c, int status, json_t *obj)
{
    set_body(c, status, obj);
}

void api_no_content(struct api_call *c)
{
    buf_reset(&c->resp->body);
    c->resp->status = 204;
    c->resp->content_type = NULL;
}

/* ---- /healthz and /metrics ---- */

static void health_get(struct api_call *c)
{
    /* The cheapest real question: a primary-key lookup that finds nothing. */
    struct store_account a;
    int rc = c->ctx->st ? store_account_get(c->ctx->st, 0, &a) : STORE_ERROR;
    if (rc == STORE_ERROR) {
        api_error(c, 503, "unavailable", "the store does not answer");
        return;
    }
    api_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

/* Per account: the reputation guard's rates (parts per million) and status. */
#define METRICS_ACCOUNTS_MAX 1000
struct account_metrics { struct metrics *m; struct store *st; };

static int account_metrics_cb(const struct store_account *a, void *arg)
{
    struct account_metrics *am = arg;
    struct reputation r;
    char labels[STORE_NAME_MAX + 16];
    if (a->name[0] == '_' || reputation_get(am->st, a->id, (int64_t)time(NULL), &r) != STORE_OK)
        return 0;
    snprintf(labels, sizeof labels, "account=\"%s\"", a->name);   /* names are [A-Za-z0-9._-] */
    metric_gauge_set(metrics_gauge(am->m, "sesame_account_bounce_rate_ppm",
                                   "Permanent bounces per million delivery outcomes, in the "
                                   "reputation window", labels),
                     (int64_t)(r.bounce_rate * 1e6));
    metric_gauge_set(metrics_gauge(am->m, "sesame_account_complaint_rate_ppm",
                                   "Complaints per million deliveries, in the reputation window",
                                   labels),
                     (int64_t)(r.complaint_rate * 1e6));
    metric_gauge_set(metrics_gauge(am->m, "sesame_account_window_sends",
                                   "Sends in the reputation window", labels), r.sends);
    metric_gauge_set(metrics_gauge(am->m, "sesame_account_reputation_status",
                                   "0 healthy, 1 warning, 2 paused", labels), r.status);
    return 0;
}

static void metrics_get(struct api_call *c)
{
    struct metrics *m = c->ctx->metrics;
    if (!m) {
        api_error(c, 404, "not_found", "metrics are not enabled");
        return;
    }
    int64_t n;
    if (store_outbound_count(c->ctx->st, &n) == STORE_OK)
        metric_gauge_set(metrics_gauge(m, "sesame_queue_depth",
                                       "Outbound recipients not yet delivered or bounced", NULL),
                         n);
    struct account_metrics am = { m, c->ctx->st };
    (void)store_account_list(c->ctx->st, METRICS_ACCOUNTS_MAX, account_metrics_cb, &am);
    if (store_inbound_count(c->ctx->st, &n) == STORE_OK)
        metric_gauge_set(metrics_gauge(m, "sesame_inbound_stored",
                                       "Received messages kept in the store", NULL),
                         n);
    buf_reset(&c->resp->body);
    if (metrics_render(m, &c->resp->body) != 0) {
        api_error(c, 500, "internal", "cannot render the metrics");
        return;
    }
    c->resp->status = 200;
    c->resp->content_type = CT_METRICS;
}

/* ---- routing ---- */

/* The request path split into percent-decoded segments. */
struct path {
    char store[API_MAX_PATH_LEN + 1];
    const char *seg[API_MAX_SEGMENTS];
    size_t nseg;
};

/* Returns 0, or -1 (bad escape, NUL or control character, too long, too
 * many segments, no leading '/'). */
static int path_split(const char *raw, struct path *p)
{
    size_t n = strlen(raw);
    if (n == 0 || raw[0] != '/' || n > API_MAX_PATH_LEN)
        return -1;
    p->nseg = 0;
    size_t used = 0;
    const char *s = raw + 1;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (p->nseg == API_MAX_SEGMENTS)
            return -1;
        long dn = pct_decode(s, len, false, p->store + used, sizeof p->store - used);
        if (dn < 0)
            return -1;
        p->seg[p->nseg++] = p->store + used;
        used += (size_t)dn + 1;
        if (!slash)
            break;
        s = slash + 1;
    }
    return 0;
}

/* Does the path match pattern? Fills params with the {} segments. */
static bool route_match(const char *pattern, const struct path *p, const char **params,
                        size_t *nparams)
{
    const char *s = pattern + 1;
    size_t i = 0, np = 0;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (i >= p->nseg)
            return false;
        if (len == 2 && s[0] == '{' && s[1] == '}') {
            if (!p->seg[i][0] || np == API_MAX_PARAMS)
                return false;
            params[np++] = p->seg[i];
        } else if (strlen(p->seg[i]) != len || memcmp(p->seg[i], s, len) != 0) {
            return false;
        }
        i++;
        if (!slash)
            break;
        s = slash + 1;
    }
    if (i != p->nseg)
        return false;
    *nparams = np;
    return true;
}

static void allow_add(char *allow, size_t size, const char *method)
{
    if (strstr(allow, method))   /* methods are distinct words: no false hit here */
        return;
    size_t n = strlen(allow);
    snprintf(allow + n, size - n, "%s%s", n ? ", " : "", method);
}

static void count_auth(struct api_context *ctx, const char *result)
{
    if (!ctx->metrics)
        return;
    char labels[48];
    snprintf(labels, sizeof labels, "result=\"%s\"", result);
    metric_inc(metrics_counter(ctx->metrics, "sesame_api_auth_total",
                               "API key checks by outcome", labels));
}

/* The Bearer token of an Authorization value, copied into tok. Returns 0,
 * or -1 when the value is not "Bearer TOKEN" with a plausible token. */
static int bearer_token(const char *h, char *tok, size_t toklen)
{
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return -1;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = 0;
    while (h[n] && h[n] != ' ' && h[n] != '\t')
        n++;
    for (size_t k = n; h[k]; k++)
        if (h[k] != ' ' && h[k] != '\t')
            return -1;
    if (n == 0 || n >= toklen)
        return -1;
    for (size_t k = 0; k < n; k++)
        if (!isgraph((unsigned char)h[k]))
            return -1;
    memcpy(tok, h, n);
    tok[n] = '\0';
    return 0;
}

/* Authenticates the call; on failure the response is set and -1 returned. */
static int authenticate(struct api_call *c)
{
    struct api_context *ctx = c->ctx;
    const char *ip = c->req->client_ip ? c->req->client_ip : "";
    const char *h = c->req->authorization;
    if (!h || !*h) {
        c->resp->www_authenticate = WWW_AUTH_MISSING;
        api_error(c, 401, "unauthorized", "this route needs an API key: "
                  "Authorization: Bearer API_KEY");
        return -1;
    }
    time_t now = time(NULL);
    unsigned wait = authfail_retry_after(ctx->authfail, ip, now);
    if (wait) {
        c->resp->retry_after = wait;
        count_auth(ctx, "blocked");
        api_error(c, 429, "rate_limited", "too many failed authentications from this "
                  "address; try again in %u seconds", wait);
        return -1;
    }
    char tok[ACCOUNT_SECRET_MAX];
    int rc = STORE_NOTFOUND;
    if (bearer_token(h, tok, sizeof tok) == 0)
        rc = account_verify_api_key(ctx->st, ctx->creds, tok, &c->account);
    sodium_memzero(tok, sizeof tok);
    if (rc == STORE_OK) {
        authfail_clear(ctx->authfail, ip);
        count_auth(ctx, "ok");
        snprintf(c->resp->account, sizeof c->resp->account, "%s", c->account.name);
        return 0;
    }
    if (rc == STORE_NOTFOUND) {
        authfail_record(ctx->authfail, ip, now);
        count_auth(ctx, "invalid");
        c->resp->www_authenticate = WWW_AUTH_INVALID;
        api_error(c, 401, "unauthorized", "invalid API key");
        return -1;
    }
    api_store_error(c);
    return -1;
}

/* Parses the JSON body of the call; on failure the response is set and -1
 * returned. */
static int parse_body(struct api_call *c, size_t max)
{
    const struct api_request *req = c->req;
    if (req->body_len > max || req->body_len > HTTP_MAX_BODY_SIZE) {
        api_error(c, 413, "payload_too_large", "the body is larger than %zu bytes",
                  max < HTTP_MAX_BODY_SIZE ? max : (size_t)HTTP_MAX_BODY_SIZE);
        return -1;
    }
    if (!req->body || req->body_len == 0) {
        api_error(c, 400, "invalid_json", "this route takes a JSON object body");
        return -1;
    }
    json_error_t jerr;
    c->body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!c->body) {
        api_error(c, 400, "invalid_json", "malformed JSON at line %d column %d: %s", jerr.line,
                  jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(c->body)) {
        api_error(c, 400, "invalid_json", "the body must be a JSON object");
        return -1;
    }
    return 0;
}

void api_handle(struct api_context *ctx, const struct api_request *req, struct api_response *resp)
{
    buf_init(&resp->body, API_MAX_RESPONSE_SIZE);
    resp->status = 500;
    resp->content_type = NULL;
    resp->www_authenticate = NULL;
    resp->allow[0] = '\0';
    resp->retry_after = 0;
    resp->account[0] = '\0';
    resp->error_code = NULL;

    struct api_call c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.req = req;
    c.resp = resp;

    struct path path;
    struct path *pp = &path;
    if (!req->method || !req->path || path_split(req->path, pp) != 0) {
        api_error(&c, 400, "invalid_path", "the request path is malformed (bad percent-escape, "
                  "control character, or longer than %d bytes)", API_MAX_PATH_LEN);
        return;
    }

    const struct route *match = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *params[API_MAX_PARAMS];
        size_t np = 0;
        if (!route_match(routes[i].pattern, pp, params, &np))
            continue;
        path_known = true;
        allow_add(resp->allow, sizeof resp->allow, routes[i].method);
        if (strcmp(routes[i].method, req->method) == 0 && !match) {
            match = &routes[i];
            memcpy(c.params, params, sizeof params);
            c.nparams = np;
        }
    }
    if (!match) {
        if (path_known) {
            api_error(&c, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)",
                      strlen(req->method) < 16 ? req->method : "this method", resp->allow);
        } else {
            resp->allow[0] = '\0';
            api_error(&c, 404, "not_found", "no such route");
        }
        return;
    }
    resp->allow[0] = '\0';
    if ((match->flags & ROUTE_AUTH) && authenticate(&c) != 0)
        return;
    if ((match->flags & ROUTE_JSON) && parse_body(&c, match->max_body) != 0) {
        json_decref(c.body);
        return;
    }
    match->handler(&c);
    json_decref(c.body);
}
