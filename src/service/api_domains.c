/* /v1/domains: add, list, show, verify, delete the caller's domain
 * identities, set their custom MAIL FROM domain and rotate their DKIM keys,
 * through service/identities (the same paths as `sesame domain ...`). A
 * domain another account added is simply not found here. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/api_internal.h"
#include "service/identities.h"

#define REASON_MAX 700

static void env_of(const struct api_call *c, struct identity_env *env)
{
    identity_env_init(env, c->ctx->cfg);
}

/* Answers the domain's JSON (plus "reason" when given). */
static void answer(struct api_call *c, int status, const struct store_domain *d,
                   const char *reason)
{
    struct identity_env env;
    env_of(c, &env);
    json_t *j = identity_domain_json(c->ctx->st, &env, d);
    if (j && reason && api_set(j, "reason", api_str(reason)) != 0) {
        json_decref(j);
        j = NULL;
    }
    api_json(c, status, j);
}

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
    struct identity_env env;
    env_of(c, &env);
    bool created = false;
    int rc = identity_domain_add(c->ctx->st, &env, c->account.id, norm, &d, &created, err,
                                 sizeof err);
    if (rc == IDENTITY_BADNAME) {
        api_error(c, 400, "invalid_domain", "%s", err);
        return;
    }
    if (rc != STORE_OK) {
        api_error(c, 500, "internal", "%s", err);
        return;
    }
    if (created && c->ctx->checker)
        identity_checker_kick(c->ctx->checker);
    answer(c, created ? 201 : 200, &d, NULL);
}

struct list_arg {
    struct store *st;
    const struct identity_env *env;
    json_t *arr;
    bool failed;
};

static int list_cb(const struct store_domain *d, void *arg)
{
    struct list_arg *a = arg;
    json_t *j = identity_domain_json(a->st, a->env, d);
    if (!j || json_array_append_new(a->arr, j) != 0) {
        a->failed = true;
        return 1;
    }
    return 0;
}

void api_domains_list(struct api_call *c)
{
    struct identity_env env;
    env_of(c, &env);
    struct list_arg a = { c->ctx->st, &env, json_array(), false };
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

/* The caller's domain named by the path into d, or an error answered (-1). */
static int load_domain(struct api_call *c, struct store_domain *d)
{
    char norm[DNS_MAX_NAME_LEN + 1];
    if (domain_of_path(c, norm, sizeof norm) != 0)
        return -1;
    int rc = store_domain_get(c->ctx->st, c->account.id, norm, d);
    if (rc == STORE_NOTFOUND) {
        api_error(c, 404, "not_found", "no such domain in this account");
        return -1;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return -1;
    }
    return 0;
}

void api_domains_get(struct api_call *c)
{
    struct store_domain d;
    if (load_domain(c, &d) == 0)
        answer(c, 200, &d, NULL);
}

/* DELETE /v1/domains/{d}: the identity, its keys (rows and files) and its
 * schedule. Mail already queued was signed already and still goes. */
void api_domains_delete(struct api_call *c)
{
    struct store_domain d;
    char err[REASON_MAX];
    if (load_domain(c, &d) != 0)
        return;
    int rc = identity_domain_delete(c->ctx->st, &d, err, sizeof err);
    if (rc == STORE_NOTFOUND) {
        api_error(c, 404, "not_found", "no such domain in this account");
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    api_no_content(c);
}

/* POST /v1/domains/{d}/dkim/rotate: new keys, pending until visible in DNS. */
void api_domains_rotate(struct api_call *c)
{
    struct store_domain d;
    char err[REASON_MAX];
    if (load_domain(c, &d) != 0)
        return;
    struct identity_env env;
    env_of(c, &env);
    int rc = identity_domain_rotate(c->ctx->st, &env, &d, (int64_t)time(NULL), err, sizeof err);
    if (rc == STORE_EXISTS) {
        api_error(c, 409, "rotation_pending", "%s", err);
        return;
    }
    if (rc != STORE_OK) {
        api_error(c, 500, "internal", "%s", err);
        return;
    }
    if (c->ctx->checker)
        identity_checker_kick(c->ctx->checker);
    answer(c, 202, &d, "new DKIM keys are pending: publish their _domainkey records; signing "
           "switches to them once they are visible in DNS, and the keys they replace stay "
           "published for the grace period");
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
    struct identity_env env;
    env_of(c, &env);
    int rc = identity_domain_verify(c->ctx->st, c->ctx->dns, &env, c->account.id, norm, &d,
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
    answer(c, 200, &d, err);
}

/* PUT /v1/domains/{d}/mail-from {"mail_from_domain": "bounce.example.com",
 * "behavior_on_mx_failure": "use_default"|"reject"}: the custom MAIL FROM
 * (bounce) domain, a subdomain of d. Once its MX and SPF are seen in DNS,
 * messages from d leave with bounce+TOKEN@ that domain, so SPF aligns for
 * DMARC; while they are not, the service's bounce domain is used, or
 * (reject) sending from d is refused. {"mail_from_domain": null} removes it. */
void api_domains_mail_from(struct api_call *c)
{
    struct store_domain d;
    if (load_domain(c, &d) != 0)
        return;
    json_t *v = json_object_get(c->body, "mail_from_domain");
    json_t *b = json_object_get(c->body, "behavior_on_mx_failure");
    size_t known = (v ? 1 : 0) + (b ? 1 : 0);
    if (!v || json_object_size(c->body) != known || (!json_is_string(v) && !json_is_null(v)) ||
        (b && !json_is_string(b))) {
        api_error(c, 400, "invalid_request", "give {\"mail_from_domain\": \"bounce.%s\", "
                  "\"behavior_on_mx_failure\": \"use_default\"|\"reject\"}", d.domain);
        return;
    }
    int behavior = b ? identity_mail_from_behavior_parse(json_string_value(b))
                     : d.mail_from_behavior;
    if (behavior < 0) {
        api_error(c, 400, "invalid_request", "behavior_on_mx_failure is \"use_default\" (fall "
                  "back to the service's bounce domain) or \"reject\" (refuse to send)");
        return;
    }
    const char *mf = json_is_string(v) ? json_string_value(v) : "";
    if (json_is_string(v) && strlen(mf) != json_string_length(v)) {
        api_error(c, 400, "invalid_domain", "the MAIL FROM domain has a NUL character");
        return;
    }
    struct identity_env env;
    env_of(c, &env);
    char err[REASON_MAX];
    int rc = identity_domain_set_mail_from(c->ctx->st, &env, &d, mf, behavior,
                                           (int64_t)time(NULL), err, sizeof err);
    if (rc == IDENTITY_BADNAME) {
        api_error(c, 400, "invalid_domain", "%s", err);
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(c);
        return;
    }
    if (c->ctx->checker)
        identity_checker_kick(c->ctx->checker);
    answer(c, 200, &d, d.mail_from_domain[0] ? "publish the mail_from_mx and mail_from_spf "
           "records; the envelope sender switches once they are visible in DNS" : NULL);
}
