/* /v1/webhooks: where the caller's events go (docs/events.md). A webhook
 * is an http or https URL, the event types it wants (none listed: all),
 * and a secret made here (32 random bytes, hex) that signs every POST; the
 * secret is shown once, in the answer to POST, never again.
 * It does not: deliver anything (events.c does, from the store's jobs),
 * or check that the URL answers (a webhook that never answers only gets
 * its deliveries retried, then dropped). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "service/api_internal.h"
#include "service/events.h"
#include "service/webhook.h"

/* The events column ("Delivery,Bounce"; "" = all) as a JSON array. */
static json_t *events_array(const char *events)
{
    json_t *a = json_array();
    const char *p = events;
    while (a && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && *p == ' ') {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        if (n && json_array_append_new(a, api_strn(p, n)) != 0) {
            json_decref(a);
            return NULL;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return a;
}

static json_t *webhook_json(const struct store_webhook *w, bool with_secret)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)w->id);
    json_t *o = json_object();
    if (!o || api_set(o, "id", json_string(id)) != 0 ||
        api_set(o, "url", api_str(w->url)) != 0 ||
        api_set(o, "events", events_array(w->events)) != 0 ||
        (with_secret && api_set(o, "secret", api_str(w->secret)) != 0) ||
        api_set(o, "created_at", api_time(w->created_at)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

struct list_arg {
    json_t *arr;         /* NULL: only count */
    size_t count;
    bool failed;
};

static int list_cb(const struct store_webhook *w, void *arg)
{
    struct list_arg *a = arg;
    a->count++;
    if (!a->arr)
        return 0;
    json_t *j = webhook_json(w, false);
    if (!j || json_array_append_new(a->arr, j) != 0) {
        a->failed = true;
        return 1;
    }
    return 0;
}

void api_webhooks_list(struct api_call *c)
{
    struct list_arg a = { .arr = json_array() };
    if (!a.arr) {
        api_json(c, 500, NULL);
        return;
    }
    int rc = store_webhook_list(c->ctx->st, c->account.id, list_cb, &a);
    if (a.failed || rc != STORE_OK) {
        json_decref(a.arr);
        if (a.failed)
            api_json(c, 500, NULL);
        else
            api_store_error(c);
        return;
    }
    api_json(c, 200, json_pack("{s:o}", "webhooks", a.arr));
}

/* Joins the event types of v (an array of distinct known types) into out;
 * on failure the response is set and -1 returned. */
static int events_column(struct api_call *c, json_t *v, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        api_error(c, 400, "invalid_request", "events must be an array of event types");
        return -1;
    }
    size_t i, used = 0;
    json_t *t;
    json_array_foreach(v, i, t) {
        const char *s = json_string_value(t);
        if (!s || !event_type_valid(s)) {
            api_error(c, 400, "invalid_request", "events[%zu] is not one of Send, Delivery, "
                      "Bounce, Complaint, Reject, DeliveryDelay, IdentityStatus, ReputationStatus", i);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(json_string_value(json_array_get(v, k)), s) == 0) {
                api_error(c, 400, "invalid_request", "events lists %s twice", s);
                return -1;
            }
        int n = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", s);
        if (n < 0 || (size_t)n >= outlen - used) {     /* six names always fit */
            api_error(c, 400, "invalid_request", "too many event types");
            return -1;
        }
        used += (size_t)n;
    }
    return 0;
}

void api_webhooks_create(struct api_call *c)
{
    const char *key;
    json_t *v, *events = NULL;
    const char *url = NULL;
    json_object_foreach(c->body, key, v) {
        if (strcmp(key, "url") == 0 && json_is_string(v)) {
            url = json_string_value(v);
        } else if (strcmp(key, "events") == 0) {
            events = v;
        } else {
            api_error(c, 400, "invalid_request", "'%.64s' is not a field of a webhook, or not "
                      "a string: give {\"url\": \"https://...\", \"events\": [...]}", key);
            return;
        }
    }
    struct store_webhook w;
    memset(&w, 0, sizeof w);
    if (!url) {
        api_error(c, 400, "invalid_request", "url is required");
        return;
    }
    if (strlen(url) >= sizeof w.url || webhook_url_check(url, true) != 0) {
        api_error(c, 400, "invalid_url", "url must be an http:// or https:// URL with a host, "
                  "no user name or password, at most %zu characters", sizeof w.url - 1);
        return;
    }
    if (events_column(c, events, w.events, sizeof w.events) != 0)
        return;
    struct list_arg a = { .arr = NULL };
    int rc = store_webhook_list(c->ctx->st, c->account.id, list_cb, &a);
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    if (a.count >= API_MAX_WEBHOOKS) {
        api_error(c, 409, "limit_exceeded", "this account has %d webhooks already, the most "
                  "allowed; delete one first", API_MAX_WEBHOOKS);
        return;
    }
    unsigned char key_bytes[API_WEBHOOK_SECRET_BYTES];
    randombytes_buf(key_bytes, sizeof key_bytes);
    sodium_bin2hex(w.secret, sizeof w.secret, key_bytes, sizeof key_bytes);
    sodium_memzero(key_bytes, sizeof key_bytes);
    w.account_id = c->account.id;
    snprintf(w.url, sizeof w.url, "%s", url);
    rc = store_webhook_insert(c->ctx->st, &w);
    if (rc != STORE_OK) {
        sodium_memzero(w.secret, sizeof w.secret);
        api_store_error(c);
        return;
    }
    api_json(c, 201, webhook_json(&w, true));
    sodium_memzero(w.secret, sizeof w.secret);
}

void api_webhooks_delete(struct api_call *c)
{
    int64_t id;
    if (api_parse_id(c->params[0], &id) != 0) {
        api_error(c, 404, "not_found", "no such webhook in this account");
        return;
    }
    int rc = store_webhook_delete(c->ctx->st, c->account.id, id);
    if (rc == STORE_NOTFOUND) {
        api_error(c, 404, "not_found", "no such webhook in this account");
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    api_no_content(c);
}
