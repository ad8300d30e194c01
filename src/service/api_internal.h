/* What the API's files share (api.c: routing, auth, errors and helpers;
 * api_account.c, api_domains.c, api_senders.c, api_inbound.c, api_rules.c,
 * api_send.c, api_messages.c, api_suppressions.c, api_webhooks.c: the
 * handlers of one area each). Not for use outside src/service/api*.c. */
#ifndef SESAME_SERVICE_API_INTERNAL_H
#define SESAME_SERVICE_API_INTERNAL_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "service/api.h"

#define API_MAX_PARAMS 4

/* One request being answered. */
struct api_call {
    struct api_context *ctx;
    const struct api_request *req;
    struct api_response *resp;
    struct store_account account;        /* valid when the route needs auth */
    const char *params[API_MAX_PARAMS];  /* the {} path segments, percent-decoded */
    size_t nparams;
    json_t *body;                        /* the parsed body, for routes that take JSON */
};

typedef void (*api_handler)(struct api_call *c);

/* Answers {"error": {"code", "message"}}. code is a static string. */
__attribute__((format(printf, 4, 5)))
void api_error(struct api_call *c, int status, const char *code, const char *fmt, ...);
/* 500 "internal" for a store that failed (the store logged why). */
void api_store_error(struct api_call *c);
/* Answers obj (taking the reference) as JSON; NULL (out of memory) is a 500. */
void api_json(struct api_call *c, int status, json_t *obj);
/* 204, no body. */
void api_no_content(struct api_call *c);

/* A JSON string of s, with invalid UTF-8 replaced by U+FFFD (never NULL
 * unless memory ran out). Store fields come from mail: they may hold
 * anything. */
json_t *api_str(const char *s);
json_t *api_strn(const char *s, size_t len);
/* RFC 3339 UTC ("2024-05-01T12:00:00Z"), null for t <= 0. */
json_t *api_time(int64_t t);
/* A decimal id: 1..INT64_MAX, no sign, no leading zero, digits only.
 * Returns 0 or -1. */
int api_parse_id(const char *s, int64_t *out);
/* The value of name in the raw query (percent-decoded into out). Returns
 * 1 when found, 0 when absent, -1 when the query is malformed (bad
 * escape, NUL, value too long, name given twice). */
int api_query_get(const char *query, const char *name, char *out, size_t outlen);
/* Adds key → value to obj; returns -1 when memory ran out. */
int api_set(json_t *obj, const char *key, json_t *value);

/* An envelope address from a JSON value: "addr@domain" or "Name
 * <addr@domain>", one mailbox, a dot-atom local part (UTF-8 allowed),
 * the domain lower case, at most SMTP_MAX_PATH_LEN octets. Writes
 * local@domain to out. Returns 0, or -1 with a reason in err.
 * (api_suppressions.c) */
int api_address(const char *s, char *out, size_t outlen, char *err, size_t errlen);

/* Handlers */
void api_account_get(struct api_call *c);
void api_account_patch(struct api_call *c);
void api_domains_create(struct api_call *c);
void api_domains_list(struct api_call *c);
void api_domains_get(struct api_call *c);
void api_domains_verify(struct api_call *c);
void api_domains_mail_from(struct api_call *c);
void api_domains_delete(struct api_call *c);
void api_domains_rotate(struct api_call *c);
/* api_senders.c: single sender addresses and the confirmation link */
void api_senders_list(struct api_call *c);
void api_senders_create(struct api_call *c);
void api_senders_get(struct api_call *c);
void api_senders_delete(struct api_call *c);
void api_senders_confirm(struct api_call *c);
/* api_dmarc.c: DMARC aggregate reports received for the caller's domains */
void api_dmarc_reports_list(struct api_call *c);
void api_dmarc_reports_get(struct api_call *c);
void api_inbound_list(struct api_call *c);
void api_inbound_get(struct api_call *c);
void api_inbound_raw(struct api_call *c);
void api_rules_list(struct api_call *c);
void api_rules_create(struct api_call *c);
void api_rules_delete(struct api_call *c);
void api_messages_send(struct api_call *c);
void api_messages_get(struct api_call *c);
void api_suppressions_list(struct api_call *c);
void api_suppressions_put(struct api_call *c);
void api_suppressions_delete(struct api_call *c);
void api_webhooks_create(struct api_call *c);
void api_webhooks_list(struct api_call *c);
void api_webhooks_delete(struct api_call *c);

#endif
