/* /v1/senders and /v1/confirm (SPEC §3): single sender addresses verified
 * by an opt-in confirmation link, through service/senders.c (the same
 * paths as `sesame sender ...`). POST sends the confirmation mail (202)
 * or answers 200 when the address is already verified (itself or through
 * its domain); GET shows pending, verified or expired; DELETE removes the
 * address from the account; GET /v1/confirm?token=T is the link in the
 * mail (no API key: the token is the credential) and answers a sentence
 * for the person who clicked it. Another account's address is simply
 * not found here.
 * It does not: decide anything (senders.c does) or send the mail itself
 * (the outbound path queues it, delivery sends it). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/api_internal.h"
#include "service/senders.h"

#define WHY_MAX 512

/* The refusal rc as {"error": ...}; 429s carry Retry-After and retry_at. */
static void refuse(struct api_call *c, int rc, const struct sender_result *r, const char *why,
                   const char *code_override)
{
    const char *code = NULL;
    int status = sender_http_status(rc, &code);
    if (code_override)
        code = code_override;
    if (rc == SENDER_STORE_ERROR) {
        api_store_error(c);
        return;
    }
    if (status != 429) {
        api_error(c, status, code, "%s", why[0] ? why : "refused");
        return;
    }
    int64_t now = (int64_t)time(NULL);
    int64_t at = r->retry_at > now ? r->retry_at : now + 1;
    c->resp->retry_after = (unsigned)(at - now);
    api_error(c, 429, code, "%s", why);
    /* and when, for programs: {"error": {..., "retry_at": RFC 3339}} */
    json_t *body = json_loadb(c->resp->body.data, c->resp->body.len, 0, NULL);
    json_t *e = json_object_get(body, "error");
    if (e && json_object_set_new(e, "retry_at", api_time(at)) == 0)
        api_json(c, 429, body);
    else
        json_decref(body);
    c->resp->error_code = code;
}

void api_senders_create(struct api_call *c)
{
    const char *key;
    json_t *v;
    json_object_foreach(c->body, key, v) {
        if (strcmp(key, "address") != 0) {
            api_error(c, 400, "invalid_request", "unknown field '%.64s' (give {\"address\": "
                      "\"name@example.com\"})", key);
            return;
        }
    }
    json_t *addr = json_object_get(c->body, "address");
    if (!json_is_string(addr)) {
        api_error(c, 400, "invalid_request", "give {\"address\": \"name@example.com\"}");
        return;
    }
    if (strlen(json_string_value(addr)) != json_string_length(addr)) {
        api_error(c, 400, "invalid_address", "the address has a NUL character");
        return;
    }
    /* the account as stored now: the authenticated one may be cached */
    struct store_account account;
    int rc = store_account_get(c->ctx->st, c->account.id, &account);
    if (rc != STORE_OK) {
        if (rc == STORE_NOTFOUND)
            api_error(c, 404, "not_found", "the account no longer exists");
        else
            api_store_error(c);
        return;
    }
    struct sender_result r;
    char why[WHY_MAX] = "";
    rc = sender_request(c->ctx->st, c->ctx->outbound, c->ctx->cfg, &account,
                        json_string_value(addr), (int64_t)time(NULL), &r, why, sizeof why);
    if (rc != SENDER_OK) {
        refuse(c, rc, &r, why, rc == SENDER_BAD_INPUT ? "invalid_address" : NULL);
        return;
    }
    json_t *j = sender_json(&r);
    if (j && r.mail_sent &&
        api_set(j, "message", json_sprintf("a confirmation mail was sent to %s; the address "
                                           "is verified once the link in it is opened",
                                           r.address)) != 0) {
        json_decref(j);
        j = NULL;
    }
    api_json(c, r.mail_sent ? 202 : 200, j);
}

struct list_arg {
    json_t *arr;
    bool failed;
};

static int list_cb(const struct sender_result *r, void *arg)
{
    struct list_arg *a = arg;
    json_t *j = sender_json(r);
    if (!j || json_array_append_new(a->arr, j) != 0) {
        a->failed = true;
        return 1;
    }
    return 0;
}

void api_senders_list(struct api_call *c)
{
    struct list_arg a = { json_array(), false };
    if (!a.arr) {
        api_json(c, 500, NULL);
        return;
    }
    int rc = sender_list(c->ctx->st, &c->account, (int64_t)time(NULL), list_cb, &a);
    if (a.failed) {
        json_decref(a.arr);
        api_json(c, 500, NULL);
        return;
    }
    if (rc != SENDER_OK) {
        json_decref(a.arr);
        api_store_error(c);
        return;
    }
    api_json(c, 200, json_pack("{s:o}", "senders", a.arr));
}

void api_senders_get(struct api_call *c)
{
    struct sender_result r;
    int rc = sender_show(c->ctx->st, &c->account, c->params[0], (int64_t)time(NULL), &r);
    if (rc == SENDER_NOT_FOUND) {
        api_error(c, 404, "not_found", "no such sender address in this account");
        return;
    }
    if (rc != SENDER_OK) {
        api_store_error(c);
        return;
    }
    api_json(c, 200, sender_json(&r));
}

void api_senders_delete(struct api_call *c)
{
    int rc = sender_remove(c->ctx->st, &c->account, c->params[0]);
    if (rc == SENDER_NOT_FOUND) {
        api_error(c, 404, "not_found", "no such sender address in this account");
        return;
    }
    if (rc != SENDER_OK) {
        api_store_error(c);
        return;
    }
    api_no_content(c);
}

/* The link in the mail, opened by a person: every answer says in a
 * sentence what happened and what to do. */
void api_senders_confirm(struct api_call *c)
{
    char token[SENDER_TOKEN_HEX_LEN + 2] = "";
    int q = api_query_get(c->req->query, "token", token, sizeof token);
    if (q <= 0) {
        api_error(c, 400, "invalid_token", "this is not a confirmation link: it has no "
                  "token=... (copy the whole link from the mail)");
        return;
    }
    struct sender_result r;
    char why[WHY_MAX] = "";
    int rc = sender_confirm(c->ctx->st, token, (int64_t)time(NULL), &r, why, sizeof why);
    if (rc != SENDER_OK) {
        refuse(c, rc, &r, why, rc == SENDER_BAD_INPUT ? "invalid_token" : NULL);
        return;
    }
    json_t *j = json_object();
    if (j && (api_set(j, "address", api_str(r.address)) != 0 ||
              api_set(j, "status", json_string("verified")) != 0 ||
              api_set(j, "account", api_str(r.account)) != 0 ||
              api_set(j, "message", json_sprintf("Thank you: %s is confirmed. Account %s may "
                                                 "now send email as this address.", r.address,
                                                 r.account)) != 0)) {
        json_decref(j);
        j = NULL;
    }
    api_json(c, 200, j);
}
