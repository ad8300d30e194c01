/* libFuzzer target: api_handle on arbitrary requests, against a real
 * SQLite store in a temporary data_dir made once, holding one account
 * (whose key the input may use, so authenticated routes are reached), a
 * few stored messages and a rule, an outbound message with its events, a
 * suppression and a webhook (and the same of another account), a verified
 * domain (sender.example). Sending (POST /v1/messages) goes through a real
 * outbound engine; the account's 24 h quota is small, so the queue stays
 * small however long the fuzzer runs (then sends are 429). DNS answers from an empty in-memory
 * zone. The answer must always be well formed: a status from the known
 * set, a body (JSON that parses, with the error shape for errors) except
 * for 204.
 *
 * Input: byte 0 picks the method, byte 1 the credentials (none, the real
 * key, the real key with garbage after it, or garbage), byte 2 the number
 * of failed attempts recorded for the client before the call (so the 429
 * path is reached deterministically: the limiter is new for each input);
 * then "PATH\nQUERY\nAUTH\n" and the rest is the body. An empty QUERY
 * line is no query. */
#include <ftw.h>
#include <jansson.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns_zone.h"
#include "service/api.h"
#include "service/events.h"
#include "service/group_commit.h"
#include "service/outbound.h"
#include "util/log.h"

static char dir[64];
static struct sesame_config cfg;
static struct store *st;
static struct dns_zone *zone;
static struct dns_resolver *dns;
static struct cred_cache *creds;
static struct metrics *metrics;
static char api_key[ACCOUNT_SECRET_MAX];
static struct group_commit *gc;
static struct outbound *ob;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    outbound_free(ob);
    group_commit_free(gc);
    store_close(st);
    cred_cache_free(creds);
    metrics_free(metrics);
    dns_resolver_free(dns);
    dns_zone_free(zone);
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void add_message(int64_t account, const char *subject)
{
    struct store_inbound m;
    memset(&m, 0, sizeof m);
    m.account_id = account;
    m.received_at = 1714564800;
    snprintf(m.mail_from, sizeof m.mail_from, "a@origin.example");
    m.rcpt_json = "[\"r@fuzz.example\"]";
    snprintf(m.client_ip, sizeof m.client_ip, "192.0.2.1");
    snprintf(m.helo, sizeof m.helo, "origin.example");
    snprintf(m.spf, sizeof m.spf, "pass");
    snprintf(m.dkim, sizeof m.dkim, "none");
    snprintf(m.dmarc, sizeof m.dmarc, "fail");
    m.authres = "mx.test; spf=pass";
    snprintf(m.subject, sizeof m.subject, "%s", subject);
    const char raw[] = "Subject: x\r\n\r\nbody\r\n";
    m.size = sizeof raw - 1;
    int64_t id;
    if (store_inbound_insert(st, &m, raw, sizeof raw - 1, &id) != STORE_OK)
        abort();
}

/* An outbound message of account with a Send and a Delivery event, a
 * suppression and a webhook. */
static void add_outbound(int64_t account, const char *who)
{
    const char *rcpts[] = { "r1@fuzz.example", "r2@fuzz.example" };
    struct store_outbound m;
    memset(&m, 0, sizeof m);
    m.account_id = account;
    snprintf(m.mail_from, sizeof m.mail_from, "%s@sender.example", who);
    m.rcpts = rcpts;
    m.nrcpt = 2;
    snprintf(m.message_id, sizeof m.message_id, "<%s@sender.example>", who);
    m.source = "api";
    const char raw[] = "From: s@sender.example\r\nSubject: x\r\n\r\nbody\r\n";
    if (store_outbound_insert(st, &m, raw, sizeof raw - 1) != STORE_OK)
        abort();
    struct event_mail em = { .message_id = m.id, .timestamp = 1714564800,
                             .source = m.mail_from, .destination = rcpts, .ndestination = 2 };
    json_t *ev = event_create("Delivery", &em);
    event_set_delivery(ev, "r1@fuzz.example", "250 ok", 12, "192.0.2.9:25");
    if (event_record(st, account, m.id, "", event_create("Send", &em)) != STORE_OK ||
        event_record(st, account, m.id, "r1@fuzz.example", ev) != STORE_OK)
        abort();
    struct store_suppression x;
    memset(&x, 0, sizeof x);
    x.account_id = account;
    snprintf(x.address, sizeof x.address, "%s@suppressed.example", who);
    snprintf(x.reason, sizeof x.reason, "bounce");
    struct store_webhook w;
    memset(&w, 0, sizeof w);
    w.account_id = account;
    snprintf(w.url, sizeof w.url, "https://hooks.example/%s", who);
    snprintf(w.events, sizeof w.events, "Delivery,Bounce");
    snprintf(w.secret, sizeof w.secret, "secret-%s", who);
    if (store_suppression_put(st, &x) != STORE_OK || store_webhook_insert(st, &w) != STORE_OK)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/sesame-fuzz-api-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
    char err[256];
    st = store_open("sqlite", dir, err, sizeof err);
    if (!st) {
        fprintf(stderr, "fuzz_api: %s\n", err);
        abort();
    }
    zone = dns_zone_new();
    dns = dns_zone_resolver_new(zone);
    creds = cred_cache_new();
    metrics = metrics_new();
    account_set_hash_cost(crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
    struct store_account a, other;
    struct account_secrets s, s2;
    if (account_create(st, "fuzz", false, 0, 0, &a, &s, err, sizeof err) != STORE_OK ||
        account_create(st, "other", false, 0, 0, &other, &s2, err, sizeof err) != STORE_OK)
        abort();
    snprintf(api_key, sizeof api_key, "%s", s.api_key);
    add_message(a.id, "one");
    add_message(other.id, "not yours");
    add_message(a.id, "caf\xe9");
    int64_t rid;
    if (store_rule_insert(st, a.id, "{\"name\":\"r\",\"actions\":[{\"type\":\"store\"}]}", &rid) !=
        STORE_OK)
        abort();
    add_outbound(a.id, "fuzz");            /* message 1, webhook 1 */
    add_outbound(other.id, "other");       /* message 2, webhook 2 */
    struct store_domain d;
    memset(&d, 0, sizeof d);
    d.account_id = a.id;
    snprintf(d.domain, sizeof d.domain, "sender.example");
    snprintf(d.verify_token, sizeof d.verify_token, "fuzztoken");
    if (store_domain_insert(st, &d) != STORE_OK)
        abort();
    d.status = STORE_ID_VERIFIED;
    a.max_24h = 20;
    if (store_domain_update(st, &d) != STORE_OK || store_account_update(st, &a) != STORE_OK)
        abort();
    gc = group_commit_new();
    ob = gc ? outbound_new(&cfg, gc, st, err, sizeof err) : NULL;
    if (!ob) {
        fprintf(stderr, "fuzz_api: %s\n", err);
        abort();
    }
    return 0;
}

/* The next '\n'-terminated field of data as a malloc'd string (exactly
 * sized, so ASan sees any overread); NULs end it early, as in C. */
static char *field(const uint8_t **p, size_t *n)
{
    const uint8_t *nl = memchr(*p, '\n', *n);
    size_t len = nl ? (size_t)(nl - *p) : *n;
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, *p, len);
    s[len] = '\0';
    *p += nl ? len + 1 : len;
    *n -= nl ? len + 1 : len;
    return s;
}

static void check(const struct api_response *r)
{
    static const int known[] = { 200, 201, 202, 204, 400, 401, 404, 405,
                                 409, 413, 422, 429, 500, 503 };
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ok |= r->status == known[i];
    if (!ok)
        __builtin_trap();
    if (r->status == 204) {
        if (r->body.len != 0)
            __builtin_trap();
        return;
    }
    if (!r->content_type || r->body.len == 0)
        __builtin_trap();
    if (strcmp(r->content_type, "application/json") != 0)
        return;
    json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
    if (!j)
        __builtin_trap();
    if (r->status >= 400) {
        json_t *e = json_object_get(j, "error");
        if (!json_is_string(json_object_get(e, "code")) ||
            !json_is_string(json_object_get(e, "message")) || !r->error_code)
            __builtin_trap();
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *methods[] = { "GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "get" };
    if (size < 3)
        return 0;
    const char *method = methods[data[0] % (sizeof methods / sizeof methods[0])];
    unsigned auth_mode = data[1] % 4;
    unsigned prior_failures = data[2] % 4;
    const uint8_t *p = data + 3;
    size_t n = size - 3;
    char *path = field(&p, &n);
    char *query = field(&p, &n);
    char *garbage = field(&p, &n);
    char *body = malloc(n ? n : 1);
    if (!body)
        abort();
    if (n)
        memcpy(body, p, n);

    char auth[ACCOUNT_SECRET_MAX * 2 + 16];
    switch (auth_mode) {
    case 1: snprintf(auth, sizeof auth, "Bearer %s", api_key); break;
    case 2: snprintf(auth, sizeof auth, "Bearer %s%.64s", api_key, garbage); break;
    case 3: snprintf(auth, sizeof auth, "%.200s", garbage); break;
    default: auth[0] = '\0'; break;
    }

    struct authfail_limiter *authfail = authfail_new(3, 600);
    if (!authfail)
        abort();
    for (unsigned i = 0; i < prior_failures; i++)
        authfail_record(authfail, "192.0.2.77", time(NULL));
    struct api_context ctx = { st, dns, creds, authfail, metrics, &cfg, ob };
    struct api_request req = {
        .method = method,
        .path = path,
        .query = query[0] ? query : NULL,
        .authorization = auth_mode ? auth : NULL,
        .client_ip = "192.0.2.77",
        .body = n ? body : NULL,
        .body_len = n,
    };
    struct api_response resp;
    api_handle(&ctx, &req, &resp);
    check(&resp);
    buf_free(&resp.body);
    authfail_free(authfail);
    free(path);
    free(query);
    free(garbage);
    free(body);
    return 0;
}
