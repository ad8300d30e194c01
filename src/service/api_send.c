/* POST /v1/messages (SPEC §3): a structured message built with mime_build
 * ({"from","to","cc","bcc","reply_to","subject","text","html","headers"})
 * or a raw one ({"from","to","cc","bcc","raw": base64}) checked with
 * mime_check_raw and kept byte-exact (outbound_accept adds a missing Date
 * or Message-ID field on top, RFC 6409 §8), then handed to it — the one
 * path the submission listener shares: identities, sandbox, quota, rate,
 * suppressions, signing, the queue, the Send event — whose refusal maps
 * to a status and error code here.
 * It does not: deliver (delivery.c), sign (outbound.c), or decide policy;
 * it checks the shape of the request and the limits of this route. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/mime_build.h"
#include "service/api_internal.h"
#include "service/outbound.h"

#define WHY_MAX 256

struct send {
    char from_addr[SMTP_MAX_PATH_LEN + 1];      /* envelope sender */
    const char *from;                            /* as given (header) */
    const char *to[API_MAX_RECIPIENTS], *cc[API_MAX_RECIPIENTS];
    size_t nto, ncc;
    char rcpt[API_MAX_RECIPIENTS][SMTP_MAX_PATH_LEN + 1];  /* the envelope, deduplicated */
    const char *rcpts[API_MAX_RECIPIENTS];
    size_t nrcpt, ngiven;
    struct mime_header headers[API_MAX_EXTRA_HEADERS];
    size_t nheaders;
};

/* Adds the addresses of array v (to, cc or bcc) to the envelope, and to
 * list (the header's) when list is not NULL. On failure the response is
 * set and -1 returned. */
static int add_rcpts(struct api_call *c, struct send *s, const char *field, json_t *v,
                     const char **list, size_t *nlist)
{
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        api_error(c, 400, "invalid_request", "%s must be an array of addresses", field);
        return -1;
    }
    size_t i;
    json_t *a;
    json_array_foreach(v, i, a) {
        const char *str = json_string_value(a);
        if (!str) {
            api_error(c, 400, "invalid_request", "%s[%zu] must be a string", field, i);
            return -1;
        }
        if (++s->ngiven > API_MAX_RECIPIENTS) {
            api_error(c, 400, "too_many_recipients", "at most %d recipients (to, cc and bcc "
                      "together) per message", API_MAX_RECIPIENTS);
            return -1;
        }
        char addr[SMTP_MAX_PATH_LEN + 1], err[160];
        if (api_address(str, addr, sizeof addr, err, sizeof err) != 0) {
            api_error(c, 400, "invalid_address", "%s[%zu]: %s", field, i, err);
            return -1;
        }
        if (list)
            list[(*nlist)++] = str;
        bool dup = false;
        for (size_t k = 0; k < s->nrcpt && !dup; k++)
            dup = strcasecmp(s->rcpt[k], addr) == 0;
        if (!dup) {
            memcpy(s->rcpt[s->nrcpt], addr, strlen(addr) + 1);
            s->rcpts[s->nrcpt] = s->rcpt[s->nrcpt];
            s->nrcpt++;
        }
    }
    return 0;
}

static const char *opt_string(struct api_call *c, json_t *v, const char *field, bool *bad)
{
    if (!v || *bad)
        return NULL;
    if (!json_is_string(v)) {
        api_error(c, 400, "invalid_request", "%s must be a string", field);
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

static int extra_headers(struct api_call *c, struct send *s, json_t *v)
{
    if (!v)
        return 0;
    if (!json_is_object(v)) {
        api_error(c, 400, "invalid_request", "headers must be an object of name: value");
        return -1;
    }
    if (json_object_size(v) > API_MAX_EXTRA_HEADERS) {
        api_error(c, 400, "invalid_request", "at most %d extra headers", API_MAX_EXTRA_HEADERS);
        return -1;
    }
    const char *name;
    json_t *val;
    json_object_foreach(v, name, val) {
        if (!json_is_string(val)) {
            api_error(c, 400, "invalid_request", "headers.%.64s must be a string", name);
            return -1;
        }
        s->headers[s->nheaders].name = name;
        s->headers[s->nheaders].value = json_string_value(val);
        s->nheaders++;
    }
    return 0;
}

/* Decodes raw (base64, whitespace ignored) into out; on failure the
 * response is set and -1 returned. */
static int decode_raw(struct api_call *c, const char *b64, size_t b64len, size_t max,
                      struct buf *out)
{
    size_t cap = b64len / 4 * 3 + 3;
    char *bin = malloc(cap ? cap : 1);
    if (!bin) {
        api_json(c, 500, NULL);
        return -1;
    }
    size_t n = 0;
    if (sodium_base642bin((unsigned char *)bin, cap, b64, b64len, " \t\r\n", &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(bin);
        api_error(c, 400, "invalid_request", "raw must be the message in base64");
        return -1;
    }
    if (n > max) {
        free(bin);
        api_error(c, 413, "message_too_large", "the message is larger than %zu bytes", max);
        return -1;
    }
    int rc = buf_append(out, bin, n);
    free(bin);
    if (rc != 0) {
        api_json(c, 500, NULL);
        return -1;
    }
    return 0;
}

static void refusal(struct api_call *c, const struct outbound_result *res)
{
    const char *why = res->why[0] ? res->why : "refused";
    int64_t now = (int64_t)time(NULL);
    switch (res->refusal) {
    case OUTBOUND_BAD_MESSAGE:
        api_error(c, 400, "bad_message", "%s", why);
        return;
    case OUTBOUND_IDENTITY:
        api_error(c, 400, "identity_not_verified", "%s", why);
        return;
    case OUTBOUND_SANDBOX:
        api_error(c, 400, "sandbox_recipient", "%s", why);
        return;
    case OUTBOUND_PAUSED:
        api_error(c, 403, "account_paused", "%s", why);
        return;
    case OUTBOUND_ALL_SUPPRESSED:
        api_error(c, 422, "all_recipients_suppressed", "%s", why);
        return;
    case OUTBOUND_QUOTA:
    case OUTBOUND_RATE: {
        bool quota = res->refusal == OUTBOUND_QUOTA;
        int64_t at = res->retry_at > now ? res->retry_at : now + 1;
        c->resp->retry_after = (unsigned)(at - now);
        api_error(c, 429, quota ? "quota_exceeded" : "rate_limited", "%s", why);
        /* and when, for programs: {"error": {..., "retry_at": RFC 3339}} */
        json_t *body = json_loadb(c->resp->body.data, c->resp->body.len, 0, NULL);
        json_t *e = json_object_get(body, "error");
        if (e && json_object_set_new(e, "retry_at", api_time(at)) == 0)
            api_json(c, 429, body);
        else
            json_decref(body);
        c->resp->error_code = quota ? "quota_exceeded" : "rate_limited";
        return;
    }
    case OUTBOUND_TEMPFAIL:
    case OUTBOUND_OK:
    default:
        api_error(c, 503, "unavailable", "%s", why);
        return;
    }
}

void api_messages_send(struct api_call *c)
{
    if (!c->ctx->outbound) {
        api_error(c, 503, "unavailable", "sending is not enabled in this process");
        return;
    }
    struct send *s = calloc(1, sizeof *s);
    struct buf msg;
    size_t max = (size_t)c->ctx->cfg->max_message_size;
    buf_init(&msg, max);
    if (!s) {
        api_json(c, 500, NULL);
        return;
    }
    json_t *jfrom = NULL, *jto = NULL, *jcc = NULL, *jbcc = NULL, *jraw = NULL, *jhdr = NULL;
    json_t *jreply = NULL, *jsubject = NULL, *jtext = NULL, *jhtml = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(c->body, key, v) {
        json_t **slot = strcmp(key, "from") == 0       ? &jfrom
                        : strcmp(key, "to") == 0       ? &jto
                        : strcmp(key, "cc") == 0       ? &jcc
                        : strcmp(key, "bcc") == 0      ? &jbcc
                        : strcmp(key, "raw") == 0      ? &jraw
                        : strcmp(key, "headers") == 0  ? &jhdr
                        : strcmp(key, "reply_to") == 0 ? &jreply
                        : strcmp(key, "subject") == 0  ? &jsubject
                        : strcmp(key, "text") == 0     ? &jtext
                        : strcmp(key, "html") == 0     ? &jhtml
                                                       : NULL;
        if (!slot) {
            api_error(c, 400, "invalid_request", "'%.64s' is not a field of a message", key);
            goto out;
        }
        *slot = v;
    }
    if (jraw && (jhdr || jreply || jsubject || jtext || jhtml)) {
        api_error(c, 400, "invalid_request", "a raw message takes only from, to, cc and bcc "
                  "besides raw: its header says the rest");
        goto out;
    }
    if (!json_is_string(jfrom)) {
        api_error(c, 400, "invalid_request", "from is required: the sender's address");
        goto out;
    }
    s->from = json_string_value(jfrom);
    char err[WHY_MAX];
    if (api_address(s->from, s->from_addr, sizeof s->from_addr, err, sizeof err) != 0) {
        api_error(c, 400, "invalid_address", "from: %s", err);
        goto out;
    }
    if (add_rcpts(c, s, "to", jto, s->to, &s->nto) != 0 ||
        add_rcpts(c, s, "cc", jcc, s->cc, &s->ncc) != 0 ||
        add_rcpts(c, s, "bcc", jbcc, NULL, NULL) != 0)
        goto out;
    if (s->nrcpt == 0) {
        api_error(c, 400, "invalid_request", "no recipient: give to, cc or bcc");
        goto out;
    }
    if (jraw) {
        if (!json_is_string(jraw)) {
            api_error(c, 400, "invalid_request", "raw must be a string (base64)");
            goto out;
        }
        if (decode_raw(c, json_string_value(jraw), json_string_length(jraw), max, &msg) != 0)
            goto out;
        bool has_date = false, has_msgid = false;
        if (mime_check_raw(buf_cstr(&msg), msg.len, max, &has_date, &has_msgid, err,
                           sizeof err) != 0) {
            api_error(c, 400, "bad_message", "%s", err);
            goto out;
        }
    } else {
        bool bad = false;
        struct mime_message m = {
            .from = s->from,
            .to = s->to, .nto = s->nto,
            .cc = s->cc, .ncc = s->ncc,
            .reply_to = opt_string(c, jreply, "reply_to", &bad),
            .subject = opt_string(c, jsubject, "subject", &bad),
            .text = opt_string(c, jtext, "text", &bad),
            .html = opt_string(c, jhtml, "html", &bad),
            .message_id_domain = strrchr(s->from_addr, '@') + 1,
            .now = time(NULL),
        };
        if (bad || extra_headers(c, s, jhdr) != 0)
            goto out;
        if (!m.text && !m.html) {
            api_error(c, 400, "invalid_request", "a message needs text, html or raw");
            goto out;
        }
        size_t body = (m.text ? strlen(m.text) : 0) + (m.html ? strlen(m.html) : 0);
        if (body > max) {
            api_error(c, 413, "message_too_large", "the message is larger than %zu bytes", max);
            goto out;
        }
        m.headers = s->headers;
        m.nheaders = s->nheaders;
        if (mime_build(&m, &msg, err, sizeof err) != 0) {
            api_error(c, 400, "bad_message", "%s", err);
            goto out;
        }
    }

    /* the account as stored now: the authenticated one may be cached */
    struct store_account account;
    int rc = store_account_get(c->ctx->st, c->account.id, &account);
    if (rc != STORE_OK) {
        if (rc == STORE_NOTFOUND)
            api_error(c, 404, "not_found", "the account no longer exists");
        else
            api_store_error(c);
        goto out;
    }
    struct outbound_request req = {
        .account = &account,
        .mail_from = s->from_addr,
        .rcpts = s->rcpts,
        .nrcpt = s->nrcpt,
        .msg = buf_cstr(&msg),
        .len = msg.len,
        .source = "api",
    };
    struct outbound_result res;
    memset(&res, 0, sizeof res);
    outbound_accept(c->ctx->outbound, c->ctx->st, &req, &res);
    if (res.refusal != OUTBOUND_OK) {
        refusal(c, &res);
        goto out;
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)res.message_id);
    api_json(c, 202, json_pack("{s:s, s:I}", "id", id, "suppressed", (json_int_t)res.suppressed));
out:
    buf_free(&msg);
    free(s);
}
