/* /v1/rules: the caller's receiving rules. A rule is checked by
 * rule_parse (service/rules.h) before it is stored, and stored in its
 * canonical form, which is what listing returns with "id" and "position"
 * added. Another account's rule is not found.
 * It does not: evaluate rules (the MX does), or reorder them (rules are
 * appended; delete and add again to move one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/api_internal.h"
#include "service/rules.h"
#include "util/log.h"

#define RULE_ERR_MAX 512

/* {"id": "N", "position": P, ...the stored rule}. */
static json_t *rule_json(const struct store_rule *r)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)r->id);
    json_t *o = json_pack("{s:s, s:I}", "id", id, "position", (json_int_t)r->position);
    if (!o)
        return NULL;
    json_t *rule = r->json ? json_loads(r->json, 0, NULL) : NULL;
    if (json_is_object(rule)) {
        if (json_object_update_missing(o, rule) != 0) {
            json_decref(rule);
            json_decref(o);
            return NULL;
        }
    } else {
        /* Not expected: rules are checked before they are stored. Shown so
         * the account can see and delete it; the MX skips it. */
        log_msg(LOG_WARN, "api", "event=rule_unreadable account=%lld rule=%lld",
                (long long)r->account_id, (long long)r->id);
        if (api_set(o, "invalid", json_true()) != 0) {
            json_decref(rule);
            json_decref(o);
            return NULL;
        }
    }
    json_decref(rule);
    return o;
}

struct list_arg {
    json_t *arr;        /* NULL: only count */
    int64_t only_id;    /* > 0: keep just this rule */
    json_t *found;
    size_t count;
    bool failed;
};

static int list_cb(const struct store_rule *r, void *arg)
{
    struct list_arg *a = arg;
    a->count++;
    if (a->only_id > 0) {
        if (r->id == a->only_id && !a->found) {
            a->found = rule_json(r);
            a->failed = !a->found;
        }
        return a->failed;
    }
    if (!a->arr)
        return 0;
    json_t *j = rule_json(r);
    if (!j || json_array_append_new(a->arr, j) != 0) {
        a->failed = true;
        return 1;
    }
    return 0;
}

void api_rules_list(struct api_call *c)
{
    struct list_arg a = { .arr = json_array() };
    if (!a.arr) {
        api_json(c, 500, NULL);
        return;
    }
    int rc = store_rule_list(c->ctx->st, c->account.id, list_cb, &a);
    if (a.failed || rc != STORE_OK) {
        json_decref(a.arr);
        if (a.failed)
            api_json(c, 500, NULL);
        else
            api_store_error(c);
        return;
    }
    api_json(c, 200, json_pack("{s:o}", "rules", a.arr));
}

void api_rules_create(struct api_call *c)
{
    char err[RULE_ERR_MAX] = "";
    char *canonical = NULL;
    struct rule *r = rule_parse(c->req->body, c->req->body_len, &canonical, err, sizeof err);
    if (!r) {
        free(canonical);
        api_error(c, 400, "invalid_rule", "%s", err[0] ? err : "the rule is not valid");
        return;
    }
    rule_free(r);
    char *text = canonical ? canonical : json_dumps(c->body, JSON_COMPACT);
    if (!text) {
        api_json(c, 500, NULL);
        return;
    }
    struct list_arg a = { 0 };
    int rc = store_rule_list(c->ctx->st, c->account.id, list_cb, &a);
    if (rc != STORE_OK) {
        free(text);
        api_store_error(c);
        return;
    }
    if (a.count >= RULES_MAX_PER_ACCOUNT) {
        free(text);
        api_error(c, 409, "limit_exceeded", "this account has %d rules already, the most "
                  "allowed; delete one first", RULES_MAX_PER_ACCOUNT);
        return;
    }
    int64_t id = 0;
    rc = store_rule_insert(c->ctx->st, c->account.id, text, &id);
    free(text);
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    struct list_arg one = { .only_id = id };
    rc = store_rule_list(c->ctx->st, c->account.id, list_cb, &one);
    if (rc != STORE_OK || !one.found) {
        json_decref(one.found);
        if (one.failed)
            api_json(c, 500, NULL);
        else
            api_store_error(c);
        return;
    }
    api_json(c, 201, one.found);
}

void api_rules_delete(struct api_call *c)
{
    int64_t id;
    if (api_parse_id(c->params[0], &id) != 0) {
        api_error(c, 404, "not_found", "no such rule in this account");
        return;
    }
    int rc = store_rule_delete(c->ctx->st, c->account.id, id);
    if (rc == STORE_NOTFOUND) {
        api_error(c, 404, "not_found", "no such rule in this account");
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    api_no_content(c);
}
