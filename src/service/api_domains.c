/* /v1/domains: add, list, show and verify the caller's domain identities,
 * through service/identities (the same paths as `sesame domain ...`). A
 * domain another account added is simply not found here.
 * It does not: publish anything, or handle mail-from and DKIM rotation
 * (later issues). */
#include <stdio.h>
#include <string.h>

#include "service/api_internal.h"
#include "service/identities.h"

#define REASON_MAX 512

void api_domains_create(struct api_call *c)
{
    json_t *name = json_object_get(c->body, "domain");
    const char *key;
    json_t *v;
    json_object_foreach(c->body, key, v) {
        if (strcmp(key, "domain") != 0) {
            api_error(c, 400, "invalid_request", "unknown field '%.64s' (give {\"domain\": "
                      "\"example.com\"})", key);
            return;
        }
    }
    if (!json_is_string(name)) {
        api_error(c, 400, "invalid_request", "give {\"domain\": \"example.com\"}");
        return;
    }
    if (strlen(json_string_value(name)) != json_string_length(name)) {
        api_error(c, 400, "invalid_domain", "the domain name has a NUL character");
        return;
    }
    char norm[DNS_MAX_NAME_LEN + 1], err[REASON_MAX];
    if (identity_domain_normalize(json_string_value(name), norm, sizeof norm, err,
                                  sizeof err) != 0) {
        api_error(c, 400, "invalid_domain", "%s", err);
        return;
    }
    struct store_domain d;
    int rc = store_domain_get(c->ctx->st, c->account.id, norm, &d);
    bool existed = rc == STORE_OK;
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        api_store_error(c);
        return;
    }
    if (!existed) {
        rc = identity_domain_add(c->ctx->st, c->account.id, norm, &d, err, sizeof err);
        if (rc == IDENTITY_BADNAME) {
            api_error(c, 400, "invalid_domain", "%s", err);
            return;
        }
        if (rc != STORE_OK) {
            api_store_error(c);
            return;
        }
        if (identity_domain_keys(c->ctx->st, c->ctx->cfg->data_dir, &d, err, sizeof err) !=
            STORE_OK) {
            api_error(c, 500, "internal", "%s", err);
            return;
        }
    }
    api_json(c, existed ? 200 : 201, identity_domain_json_full(c->ctx->st, &d));
}

struct list_arg {
    struct store *st;
    json_t *arr;
    bool failed;
};

static int list_cb(const struct store_domain *d, void *arg)
{
    struct list_arg *a = arg;
    json_t *j = identity_domain_json_full(a->st, d);
    if (!j || json_array_append_new(a->arr, j) != 0) {
        a->failed = true;
        return 1;
    }
    return 0;
}

void api_domains_list(struct api_call *c)
{
    struct list_arg a = { c->ctx->st, json_array(), false };
    if (!a.arr) {
        api_json(c, 500, NULL);
        return;
    }
    int rc = store_domain_list(c->ctx->st, c->account.id, list_cb, &a);
    if (rc != STORE_OK && !a.failed) {
        json_decref(a.arr);
        api_store_error(c);
        return;
    }
    if (a.failed) {
        json_decref(a.arr);
        api_json(c, 500, NULL);
        return;
    }
    api_json(c, 200, json_pack("{s:o}", "domains", a.arr));
}

/* The caller's domain named by the path, or an error answered (-1). A
 * name that cannot be a domain cannot be the caller's: 404 too. */
static int domain_of_path(struct api_call *c, char *norm, size_t normlen)
{
    char err[REASON_MAX];
    if (identity_domain_normalize(c->params[0], norm, normlen, err, sizeof err) != 0) {
        api_error(c, 404, "not_found", "no such domain in this account");
        return -1;
    }
    return 0;
}

void api_domains_get(struct api_call *c)
{
    char norm[DNS_MAX_NAME_LEN + 1];
    if (domain_of_path(c, norm, sizeof norm) != 0)
        return;
    struct store_domain d;
    int rc = store_domain_get(c->ctx->st, c->account.id, norm, &d);
    if (rc == STORE_NOTFOUND) {
        api_error(c, 404, "not_found", "no such domain in this account");
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    api_json(c, 200, identity_domain_json_full(c->ctx->st, &d));
}

void api_domains_verify(struct api_call *c)
{
    char norm[DNS_MAX_NAME_LEN + 1], err[REASON_MAX] = "";
    if (domain_of_path(c, norm, sizeof norm) != 0)
        return;
    if (!c->ctx->dns) {
        api_error(c, 503, "dns_unavailable", "no DNS resolver is configured");
        return;
    }
    struct store_domain d;
    bool tempfail = false;
    int rc = identity_domain_verify(c->ctx->st, c->ctx->dns, c->account.id, norm, &d,
                                    &tempfail, err, sizeof err);
    switch (rc) {
    case STORE_OK:
        break;
    case STORE_NOTFOUND:
    case IDENTITY_BADNAME:
        api_error(c, 404, "not_found", "no such domain in this account");
        return;
    case STORE_EXISTS:
        api_error(c, 409, "identity_taken", "%s is verified by another account", norm);
        return;
    default:
        api_store_error(c);
        return;
    }
    if (tempfail) {
        api_error(c, 503, "dns_unavailable", "%s", err);
        return;
    }
    json_t *j = identity_domain_json_full(c->ctx->st, &d);
    if (j && api_set(j, "reason", api_str(err)) != 0) {
        json_decref(j);
        j = NULL;
    }
    api_json(c, 200, j);
}

/* PUT /v1/domains/{d}/mail-from {"mail_from_domain": "bounce.example.com"}:
 * the custom MAIL FROM (bounce) domain, a subdomain of d; messages from d
 * then leave with bounce+TOKEN@ that domain, so SPF aligns for DMARC.
 * {"mail_from_domain": null} removes it. Publishing its MX and SPF and
 * checking them is the identities issue's work. */
void api_domains_mail_from(struct api_call *c)
{
    char norm[DNS_MAX_NAME_LEN + 1];
    if (domain_of_path(c, norm, sizeof norm) != 0)
        return;
    json_t *v = json_object_get(c->body, "mail_from_domain");
    if (json_object_size(c->body) != 1 || (!json_is_string(v) && !json_is_null(v))) {
        api_error(c, 400, "invalid_request", "give {\"mail_from_domain\": \"bounce.%s\"}", norm);
        return;
    }
    struct store_domain d;
    int rc = store_domain_get(c->ctx->st, c->account.id, norm, &d);
    if (rc == STORE_NOTFOUND) {
        api_error(c, 404, "not_found", "no such domain in this account");
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    char mf[DNS_MAX_NAME_LEN + 1] = "", err[REASON_MAX];
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v) ||
            identity_domain_normalize(json_string_value(v), mf, sizeof mf, err, sizeof err) != 0) {
            api_error(c, 400, "invalid_domain", "the MAIL FROM domain is not a domain name");
            return;
        }
        size_t ml = strlen(mf), dl = strlen(norm);
        if (ml <= dl + 1 || mf[ml - dl - 1] != '.' || strcmp(mf + ml - dl, norm) != 0) {
            api_error(c, 400, "invalid_domain", "the MAIL FROM domain must be a subdomain of %s "
                      "(for example bounce.%s)", norm, norm);
            return;
        }
    }
    snprintf(d.mail_from_domain, sizeof d.mail_from_domain, "%s", mf);
    if (store_domain_update(c->ctx->st, &d) != STORE_OK) {
        api_store_error(c);
        return;
    }
    json_t *j = identity_domain_json_full(c->ctx->st, &d);
    if (j && api_set(j, "mail_from_domain", mf[0] ? api_str(mf) : json_null()) != 0) {
        json_decref(j);
        j = NULL;
    }
    api_json(c, 200, j);
}
