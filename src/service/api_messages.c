/* GET /v1/messages/{id}: one message the caller sent — its envelope, each
 * recipient's delivery status (attempts, the last SMTP reply, when the
 * next attempt is due) and the events recorded for it, as stored (the
 * SES-shaped objects the webhooks received). Another account's message is
 * not found.
 * It does not: send (api_send.c), or show the message's content (the
 * queue keeps it only until every recipient is final). */
#include <stdio.h>
#include <string.h>

#include "service/api_internal.h"
#include "util/log.h"

static const char *status_name(int status)
{
    switch (status) {
    case STORE_RCPT_QUEUED: return "queued";
    case STORE_RCPT_SENDING: return "sending";
    case STORE_RCPT_DEFERRED: return "deferred";
    case STORE_RCPT_DELIVERED: return "delivered";
    case STORE_RCPT_BOUNCED: return "bounced";
    case STORE_RCPT_SUPPRESSED: return "suppressed";
    default: return "unknown";
    }
}

struct get_arg {
    json_t *arr;
    bool failed;
};

static int rcpt_cb(const struct store_delivery *d, void *arg)
{
    struct get_arg *a = arg;
    /* next_attempt_at means "due then" only while waiting; while sending
     * it is the lease, and final rows have none */
    bool waiting = d->status == STORE_RCPT_QUEUED || d->status == STORE_RCPT_DEFERRED;
    json_t *o = json_object();
    if (!o || api_set(o, "address", api_str(d->rcpt)) != 0 ||
        api_set(o, "status", json_string(status_name(d->status))) != 0 ||
        api_set(o, "attempts", json_integer((json_int_t)d->attempts)) != 0 ||
        api_set(o, "last_response", d->last_response[0] ? api_str(d->last_response)
                                                        : json_null()) != 0 ||
        api_set(o, "updated_at", api_time(d->updated_at)) != 0 ||
        api_set(o, "next_attempt_at", waiting ? api_time(d->next_attempt_at) : json_null()) !=
            0 ||
        json_array_append_new(a->arr, o) != 0) {
        a->failed = true;
        return 1;
    }
    return 0;
}

static int event_cb(const struct store_event *e, void *arg)
{
    struct get_arg *a = arg;
    json_t *ev = json_loads(e->json, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(ev)) {
        /* not expected: events.c writes them; shown as a stub, not hidden */
        log_msg(LOG_WARN, "api", "event=event_unreadable account=%lld event=%lld",
                (long long)e->account_id, (long long)e->id);
        json_decref(ev);
        ev = json_pack("{s:s, s:b}", "eventType", e->type, "unreadable", 1);
    }
    if (!ev || json_array_append_new(a->arr, ev) != 0) {
        a->failed = true;
        return 1;
    }
    return 0;
}

void api_messages_get(struct api_call *c)
{
    int64_t id;
    if (api_parse_id(c->params[0], &id) != 0) {
        api_error(c, 404, "not_found", "no such message in this account");
        return;
    }
    struct store_outbound meta;
    struct get_arg rcpts = { .arr = json_array() }, events = { .arr = json_array() };
    if (!rcpts.arr || !events.arr) {
        json_decref(rcpts.arr);
        json_decref(events.arr);
        api_json(c, 500, NULL);
        return;
    }
    int rc = store_outbound_get(c->ctx->st, c->account.id, id, &meta, rcpt_cb, &rcpts);
    if (rc == STORE_OK && !rcpts.failed)
        rc = store_event_list(c->ctx->st, c->account.id, id, event_cb, &events);
    if (rc != STORE_OK || rcpts.failed || events.failed) {
        json_decref(rcpts.arr);
        json_decref(events.arr);
        if (rc == STORE_NOTFOUND)
            api_error(c, 404, "not_found", "no such message in this account");
        else if (rc == STORE_OK)
            api_json(c, 500, NULL);
        else
            api_store_error(c);
        return;
    }
    char sid[24];
    snprintf(sid, sizeof sid, "%lld", (long long)meta.id);
    json_t *o = json_object();
    if (!o || api_set(o, "id", json_string(sid)) != 0 ||
        api_set(o, "from", api_str(meta.mail_from)) != 0 ||
        api_set(o, "message_id", meta.message_id[0] ? api_str(meta.message_id) : json_null()) !=
            0 ||
        api_set(o, "created_at", api_time(meta.created_at)) != 0 ||
        api_set(o, "source", api_str(meta.source ? meta.source : "")) != 0 ||
        json_object_set(o, "recipients", rcpts.arr) != 0 ||
        json_object_set(o, "events", events.arr) != 0) {
        json_decref(o);
        o = NULL;                 /* a 500 */
    }
    json_decref(rcpts.arr);
    json_decref(events.arr);
    api_json(c, 200, o);
}
