/* /v1/inbound: the mail the MX stored for the caller's account, newest
 * first, paged by id, with its authentication results; one message's
 * metadata; its raw text (message/rfc822). Another account's message is
 * not found.
 * It does not: delete or change messages (a later issue), or re-run any
 * check (the results are those of the moment the message arrived). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/api_internal.h"

#define CT_RFC822 "message/rfc822"

static json_t *rcpt_array(const char *rcpt_json)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    json_t *in = rcpt_json ? json_loads(rcpt_json, 0, NULL) : NULL;
    size_t i;
    json_t *v;
    if (json_is_array(in)) {
        json_array_foreach(in, i, v) {
            if (json_is_string(v) &&
                json_array_append_new(arr, api_strn(json_string_value(v),
                                                    json_string_length(v))) != 0) {
                json_decref(in);
                json_decref(arr);
                return NULL;
            }
        }
    }
    json_decref(in);
    return arr;
}

static json_t *message_json(const struct store_inbound *m)
{
    json_t *o = json_object();
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)m->id);
    if (!o || api_set(o, "id", json_string(id)) != 0 ||
        api_set(o, "received_at", api_time(m->received_at)) != 0 ||
        api_set(o, "mail_from", api_str(m->mail_from)) != 0 ||
        api_set(o, "rcpt_to", rcpt_array(m->rcpt_json)) != 0 ||
        api_set(o, "client_ip", api_str(m->client_ip)) != 0 ||
        api_set(o, "helo", api_str(m->helo)) != 0 ||
        api_set(o, "from", api_str(m->from)) != 0 ||
        api_set(o, "subject", api_str(m->subject)) != 0 ||
        api_set(o, "message_id", api_str(m->message_id)) != 0 ||
        api_set(o, "size", json_integer((json_int_t)m->size)) != 0 ||
        api_set(o, "quarantine", json_boolean(m->quarantine)) != 0 ||
        api_set(o, "spf", api_str(m->spf)) != 0 ||
        api_set(o, "dkim", api_str(m->dkim)) != 0 ||
        api_set(o, "dmarc", api_str(m->dmarc)) != 0 ||
        api_set(o, "authentication_results", api_str(m->authres)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

struct list_arg {
    json_t *arr;
    unsigned want;     /* messages returned; one more is asked to know if there is a next page */
    unsigned seen;
    int64_t last_id;   /* of the last one returned */
    bool more, failed;
};

static int list_cb(const struct store_inbound *m, void *arg)
{
    struct list_arg *a = arg;
    if (a->seen == a->want) {
        a->more = true;
        return 1;
    }
    json_t *j = message_json(m);
    if (!j || json_array_append_new(a->arr, j) != 0) {
        a->failed = true;
        return 1;
    }
    a->seen++;
    a->last_id = m->id;
    return 0;
}

void api_inbound_list(struct api_call *c)
{
    char v[32];
    unsigned limit = API_INBOUND_DEFAULT_LIMIT;
    int64_t before = 0;
    int rc = api_query_get(c->req->query, "limit", v, sizeof v);
    if (rc < 0) {
        api_error(c, 400, "invalid_request", "malformed query string");
        return;
    }
    if (rc == 1) {
        int64_t n;
        if (api_parse_id(v, &n) != 0 || n > API_INBOUND_MAX_LIMIT) {
            api_error(c, 400, "invalid_request", "limit must be a number from 1 to %d",
                      API_INBOUND_MAX_LIMIT);
            return;
        }
        limit = (unsigned)n;
    }
    rc = api_query_get(c->req->query, "before", v, sizeof v);
    if (rc < 0 || (rc == 1 && api_parse_id(v, &before) != 0)) {
        api_error(c, 400, "invalid_request", "before must be a message id (the \"next\" of "
                  "the previous page)");
        return;
    }
    struct list_arg a = { .arr = json_array(), .want = limit };
    if (!a.arr) {
        api_json(c, 500, NULL);
        return;
    }
    rc = store_inbound_list(c->ctx->st, c->account.id, before, limit + 1, list_cb, &a);
    if (a.failed) {
        json_decref(a.arr);
        api_json(c, 500, NULL);
        return;
    }
    if (rc != STORE_OK) {
        json_decref(a.arr);
        api_store_error(c);
        return;
    }
    json_t *next = json_null();
    if (a.more) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)a.last_id);
        next = json_string(id);
    }
    api_json(c, 200, next ? json_pack("{s:o, s:o}", "messages", a.arr, "next", next) : NULL);
}

/* Reads the message named by the path; on failure the response is set. */
static int get_message(struct api_call *c, struct store_inbound *m, char **raw, size_t *len)
{
    int64_t id;
    if (api_parse_id(c->params[0], &id) != 0) {
        api_error(c, 404, "not_found", "no such message in this account");
        return -1;
    }
    memset(m, 0, sizeof *m);
    int rc = store_inbound_get(c->ctx->st, c->account.id, id, m, raw, len);
    if (rc != STORE_OK) {
        store_inbound_free(m);
        if (raw) {
            free(*raw);
            *raw = NULL;
        }
        if (rc == STORE_NOTFOUND)
            api_error(c, 404, "not_found", "no such message in this account");
        else
            api_store_error(c);
        return -1;
    }
    return 0;
}

void api_inbound_get(struct api_call *c)
{
    struct store_inbound m;
    if (get_message(c, &m, NULL, NULL) != 0)
        return;
    api_json(c, 200, message_json(&m));
    store_inbound_free(&m);
}

void api_inbound_raw(struct api_call *c)
{
    struct store_inbound m;
    char *raw = NULL;
    size_t len = 0;
    if (get_message(c, &m, &raw, &len) != 0)
        return;
    store_inbound_free(&m);
    buf_reset(&c->resp->body);
    if (buf_append(&c->resp->body, raw ? raw : "", raw ? len : 0) != 0) {
        free(raw);
        api_error(c, 500, "internal", "the message is too large to return");
        return;
    }
    free(raw);
    c->resp->status = 200;
    c->resp->content_type = CT_RFC822;
}
