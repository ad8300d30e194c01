/* GET and PATCH /v1/account: the caller's own account, its quotas, its
 * reputation (service/reputation.h), what
 * it sent in the last 24 hours and what it may still send in them. The only field an account changes itself
 * is dmarc_report_only; sandbox and quotas are the operator's
 * (`sesame account ...`). */
#include <string.h>
#include <time.h>

#include "service/api_internal.h"
#include "service/reputation.h"

#define DAY_S 86400

static void account_reply(struct api_call *c, const struct store_account *a)
{
    int64_t sent = 0;
    if (store_outbound_count_since(c->ctx->st, a->id, (int64_t)time(NULL) - DAY_S, &sent) !=
        STORE_OK) {
        api_store_error(c);
        return;
    }
    struct reputation r;
    if (reputation_get(c->ctx->st, a->id, (int64_t)time(NULL), &r) != STORE_OK) {
        api_store_error(c);
        return;
    }
    json_t *name = api_str(a->name);
    json_t *rep = reputation_json(&r);
    int64_t remaining = (int64_t)a->max_24h - sent;
    api_json(c, 200, name && rep ? json_pack("{s:o, s:b, s:I, s:I, s:I, s:I, s:b, s:o}",
                                             "account", name, "sandbox", a->sandbox, "max_24h",
                                             (json_int_t)a->max_24h, "max_rate",
                                             (json_int_t)a->max_rate, "sent_last_24h",
                                             (json_int_t)sent, "quota_remaining",
                                             (json_int_t)(remaining > 0 ? remaining : 0),
                                             "dmarc_report_only", a->dmarc_report_only,
                                             "reputation", rep)
                                 : NULL);
    if (!name || !rep) {
        json_decref(name);
        json_decref(rep);
    }
}

/* The account as stored now (the one auth saw may come from a cache). */
static int reload(struct api_call *c, struct store_account *a)
{
    int rc = store_account_get(c->ctx->st, c->account.id, a);
    if (rc == STORE_NOTFOUND) {
        api_error(c, 404, "not_found", "the account no longer exists");
        return -1;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return -1;
    }
    return 0;
}

void api_account_get(struct api_call *c)
{
    struct store_account a;
    if (reload(c, &a) == 0)
        account_reply(c, &a);
}

void api_account_patch(struct api_call *c)
{
    const char *key;
    json_t *v;
    json_t *report_only = NULL;
    json_object_foreach(c->body, key, v) {
        if (strcmp(key, "dmarc_report_only") == 0) {
            if (!json_is_boolean(v)) {
                api_error(c, 400, "invalid_request", "dmarc_report_only must be true or false");
                return;
            }
            report_only = v;
        } else {
            api_error(c, 400, "invalid_request", "'%.64s' cannot be changed here: an account "
                      "may change only dmarc_report_only (sandbox and quotas are set by the "
                      "operator)", key);
            return;
        }
    }
    if (!report_only) {
        api_error(c, 400, "invalid_request", "nothing to change: give {\"dmarc_report_only\": "
                  "true|false}");
        return;
    }
    struct store_account a;
    if (reload(c, &a) != 0)
        return;
    a.dmarc_report_only = json_is_true(report_only);
    if (store_account_update(c->ctx->st, &a) != STORE_OK) {
        api_store_error(c);
        return;
    }
    account_reply(c, &a);
}
