/* /v1/suppressions: the caller's suppression list (addresses sesame will
 * not send to: hard bounces and complaints put them there, the account
 * may add and remove its own), paged in address order; and api_address,
 * the envelope-address check the sending routes share.
 * It does not: decide what gets suppressed on its own (delivery and the
 * feedback parser do), or look at other accounts' lists (each account has
 * its own; another account's entry is not found). */
#include <stdio.h>
#include <string.h>

#include "mail/mail_address.h"
#include "service/api_internal.h"

static bool atext(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

int api_address(const char *s, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 4 * SMTP_MAX_PATH_LEN) {
        snprintf(err, errlen, "an address must be 1 to %d octets", SMTP_MAX_PATH_LEN);
        return -1;
    }
    struct mail_address_list l;
    char perr[128] = "";
    if (mail_address_list_parse(s, n, &l, perr, sizeof perr) != 0) {
        snprintf(err, errlen, "not an address (%s)", perr[0] ? perr : "syntax");
        return -1;
    }
    if (l.count != 1) {
        snprintf(err, errlen, "one address is expected, not %zu", l.count);
        return -1;
    }
    const char *local = l.box[0].local, *domain = l.box[0].domain;
    size_t ll = strlen(local), dl = strlen(domain);
    bool ok = ll > 0 && dl > 0 && local[0] != '.' && local[ll - 1] != '.' &&
              strstr(local, "..") == NULL;
    for (size_t i = 0; ok && i < ll; i++)
        ok = local[i] == '.' || atext((unsigned char)local[i]);
    if (!ok) {
        snprintf(err, errlen, "the local part must be a dot-atom (no quoted or empty local "
                 "parts)");
        return -1;
    }
    bool literal = domain[0] == '[' && domain[dl - 1] == ']';
    for (size_t i = 0; !literal && i < dl; i++) {
        unsigned char ch = (unsigned char)domain[i];
        if (!(ch >= 0x80 || ch == '.' || ch == '-' || (ch >= 'a' && ch <= 'z') ||
              (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) {
            snprintf(err, errlen, "the domain is not a host name");
            return -1;
        }
    }
    if (ll + 1 + dl > SMTP_MAX_PATH_LEN || ll + 1 + dl >= outlen) {
        snprintf(err, errlen, "the address is longer than %d octets", SMTP_MAX_PATH_LEN);
        return -1;
    }
    snprintf(out, outlen, "%s@%s", local, domain);
    return 0;
}

/* Addresses of the list are lower case (the store compares them so). */
static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static json_t *suppression_json(const struct store_suppression *x)
{
    json_t *o = json_object();
    if (!o || api_set(o, "address", api_str(x->address)) != 0 ||
        api_set(o, "reason", api_str(x->reason)) != 0 ||
        api_set(o, "detail", api_str(x->detail)) != 0 ||
        api_set(o, "created_at", api_time(x->created_at)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

struct list_arg {
    json_t *arr;
    unsigned want;       /* one more is asked for, to know there is a next page */
    unsigned seen;
    char last[SMTP_MAX_PATH_LEN + 1];
    bool more, failed;
};

static int list_cb(const struct store_suppression *x, void *arg)
{
    struct list_arg *a = arg;
    if (a->seen == a->want) {
        a->more = true;
        return 1;
    }
    json_t *j = suppression_json(x);
    if (!j || json_array_append_new(a->arr, j) != 0) {
        a->failed = true;
        return 1;
    }
    a->seen++;
    snprintf(a->last, sizeof a->last, "%s", x->address);
    return 0;
}

void api_suppressions_list(struct api_call *c)
{
    char v[SMTP_MAX_PATH_LEN * 4 + 1];
    unsigned limit = API_SUPPRESSIONS_DEFAULT_LIMIT;
    int rc = api_query_get(c->req->query, "limit", v, sizeof v);
    if (rc < 0) {
        api_error(c, 400, "invalid_request", "malformed query string");
        return;
    }
    if (rc == 1) {
        int64_t n;
        if (api_parse_id(v, &n) != 0 || n > API_SUPPRESSIONS_MAX_LIMIT) {
            api_error(c, 400, "invalid_request", "limit must be a number from 1 to %d",
                      API_SUPPRESSIONS_MAX_LIMIT);
            return;
        }
        limit = (unsigned)n;
    }
    char after[SMTP_MAX_PATH_LEN + 1] = "";
    rc = api_query_get(c->req->query, "after", v, sizeof v);
    if (rc < 0 || (rc == 1 && strlen(v) > SMTP_MAX_PATH_LEN)) {
        api_error(c, 400, "invalid_request", "after must be an address (the \"next\" of the "
                  "previous page)");
        return;
    }
    if (rc == 1) {
        memcpy(after, v, strlen(v) + 1);     /* fits: checked above */
        lower(after);
    }
    struct list_arg a = { .arr = json_array(), .want = limit };
    if (!a.arr) {
        api_json(c, 500, NULL);
        return;
    }
    rc = store_suppression_list(c->ctx->st, c->account.id, after, limit + 1, list_cb, &a);
    if (a.failed || rc != STORE_OK) {
        json_decref(a.arr);
        if (a.failed)
            api_json(c, 500, NULL);
        else
            api_store_error(c);
        return;
    }
    json_t *next = a.more ? api_str(a.last) : json_null();
    api_json(c, 200, next ? json_pack("{s:o, s:o}", "suppressions", a.arr, "next", next) : NULL);
}

void api_suppressions_put(struct api_call *c)
{
    const char *key;
    json_t *v;
    const char *address = NULL, *reason = "manual";
    json_object_foreach(c->body, key, v) {
        if (strcmp(key, "address") == 0 && json_is_string(v)) {
            address = json_string_value(v);
        } else if (strcmp(key, "reason") == 0 && json_is_string(v)) {
            reason = json_string_value(v);
        } else {
            api_error(c, 400, "invalid_request", "'%.64s' is not a field of a suppression, or "
                      "not a string: give {\"address\": \"...\", \"reason\": \"manual|bounce|"
                      "complaint\"}", key);
            return;
        }
    }
    if (!address) {
        api_error(c, 400, "invalid_request", "address is required");
        return;
    }
    if (strcmp(reason, "manual") != 0 && strcmp(reason, "bounce") != 0 &&
        strcmp(reason, "complaint") != 0) {
        api_error(c, 400, "invalid_request", "reason must be manual, bounce or complaint");
        return;
    }
    struct store_suppression x;
    memset(&x, 0, sizeof x);
    char err[160];
    if (api_address(address, x.address, sizeof x.address, err, sizeof err) != 0) {
        api_error(c, 400, "invalid_address", "%s", err);
        return;
    }
    lower(x.address);
    x.account_id = c->account.id;
    snprintf(x.reason, sizeof x.reason, "%s", reason);
    int rc = store_suppression_put(c->ctx->st, &x);
    struct store_suppression got;
    if (rc == STORE_OK)
        rc = store_suppression_get(c->ctx->st, c->account.id, x.address, &got);
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    api_json(c, 201, suppression_json(&got));
}

void api_suppressions_delete(struct api_call *c)
{
    char addr[SMTP_MAX_PATH_LEN + 1], err[160];
    if (api_address(c->params[0], addr, sizeof addr, err, sizeof err) != 0) {
        api_error(c, 404, "not_found", "no such address on this account's suppression list");
        return;
    }
    lower(addr);
    int rc = store_suppression_delete(c->ctx->st, c->account.id, addr);
    if (rc == STORE_NOTFOUND) {
        api_error(c, 404, "not_found", "no such address on this account's suppression list");
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    api_no_content(c);
}
