/* Events (see events.h): SES-shaped JSON built with jansson, recorded in
 * the store (which queues one webhook job per subscribed webhook), signed
 * with HMAC-SHA256 (libsodium), and delivered by a dispatcher on an event
 * loop that claims due jobs from the store, POSTs each once through the
 * webhook client and writes the outcome back: done, or retry at the next
 * step of the schedule, until the event is a day old.
 *
 * Field names follow Amazon SES's event publishing records ("Contents of
 * event data that Amazon SES publishes"): eventType, mail{timestamp,
 * messageId, source, destination, headersTruncated, commonHeaders}, and
 * one of send, delivery, bounce, complaint, reject, deliveryDelay. Times
 * are ISO 8601 in UTC with milliseconds ("2024-05-01T12:00:00.000Z").
 *
 * It does not: decide what happened to a message (outbound.c, delivery
 * and the feedback parser do), choose which webhooks get an event (the
 * store does, from each webhook's event list), or keep anything in memory
 * across a restart (jobs live in the store; a crash mid-POST means the
 * job is retried when its lease ends, so receivers may see an event twice
 * and should deduplicate on X-Sesame-Event-Id). */
#include "service/events.h"

#include "util/utf8.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "service/reputation.h"
#include "service/webhook.h"
#include "util/log.h"

#define REPORTING_MTA_MAX 256
#define BACKOFF_MAX 16

/* ---- types and names ---- */

static const struct {
    const char *type;
    const char *key;             /* the object that carries its details */
} types[] = {
    { "Send", "send" },           { "Delivery", "delivery" },
    { "Bounce", "bounce" },       { "Complaint", "complaint" },
    { "Reject", "reject" },       { "DeliveryDelay", "deliveryDelay" },
    { "IdentityStatus", "identity" }, { "ReputationStatus", "reputation" },
};

static const char *type_key(const char *type)
{
    for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].type, type) == 0)
            return types[i].key;
    return NULL;
}

bool event_type_valid(const char *type)
{
    return type_key(type) != NULL;
}

static char reporting_mta[REPORTING_MTA_MAX];
static pthread_once_t reporting_once = PTHREAD_ONCE_INIT;

static void reporting_default(void)
{
    if (reporting_mta[0])
        return;
    char h[REPORTING_MTA_MAX] = "";
    if (gethostname(h, sizeof h - 1) != 0 || !h[0])
        snprintf(h, sizeof h, "localhost");
    snprintf(reporting_mta, sizeof reporting_mta, "%s", h);
}

void event_set_reporting_mta(const char *hostname)
{
    if (hostname && hostname[0])
        snprintf(reporting_mta, sizeof reporting_mta, "%s", hostname);
}

static const char *our_mta(void)
{
    pthread_once(&reporting_once, reporting_default);
    return reporting_mta;
}

/* ---- times ---- */

static void iso_ms(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char s[24];
    if (ms < 0 || !gmtime_r(&t, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, 32, "%s.%03dZ", s, (int)(ms % 1000));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *time_json(int64_t ms)
{
    char s[32];
    iso_ms(ms, s);
    return json_string(s);
}

json_t *event_create_reputation(const char *status, const char *previous, const char *reason,
                                double bounce_rate, double complaint_rate, int64_t sends)
{
    json_t *ev = json_object();
    json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f, s:I, s:o}", "status", status,
                          "previousStatus", previous, "reason", reason ? reason : "",
                          "bounceRate", bounce_rate, "complaintRate", complaint_rate,
                          "sends", (json_int_t)sends, "timestamp", time_json(now_ms()));
    if (!ev || !o || json_object_set_new(ev, "eventType", json_string("ReputationStatus")) != 0 ||
        json_object_set_new(ev, "reputation", o) != 0) {
        if (!ev)
            json_decref(o);
        json_decref(ev);
        return NULL;
    }
    return ev;
}

json_t *event_create_identity(const char *kind, const char *identity, const char *status,
                              const char *previous, const char *reason)
{
    json_t *ev = json_object();
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "type", kind, "identity", identity,
                          "status", status, "previousStatus", previous, "reason", reason ? reason : "",
                          "timestamp", time_json(now_ms()));
    if (!ev || !o || json_object_set_new(ev, "eventType", json_string("IdentityStatus")) != 0 ||
        json_object_set_new(ev, "identity", o) != 0) {
        if (!ev)
            json_decref(o);
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* n decimal digits at s; -1 when one is not a digit. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff...]Z" → Unix seconds; -1 when not that. */
static int64_t iso_parse(const char *s)
{
    if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || se < 0 || se > 60)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = se };
    return (int64_t)timegm(&tm);
}

/* ---- building ---- */

/* A JSON string of s; bytes that are not UTF-8 (a subject taken from a
 * raw header may hold anything) become U+FFFD rather than lose the event. */
static json_t *jstr(const char *s)
{
    if (!s)
        s = "";
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s), o = 0;
    char *t = malloc(3 * n + 1);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(t + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(t + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    t[o] = '\0';
    j = json_string(t);
    free(t);
    return j;
}

static int set_str(json_t *o, const char *key, const char *v)
{
    json_t *j = jstr(v);
    return j ? json_object_set_new(o, key, j) : -1;
}

static json_t *str_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *s = jstr(v[i]);
        if (!s || json_array_append_new(a, s) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *event_create(const char *type, const struct event_mail *mail)
{
    const char *key = type_key(type);
    if (!key || !mail)
        return NULL;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, mail->message_id);
    json_t *ev = json_object(), *m = json_object();
    json_t *dest = str_array(mail->destination, mail->ndestination);
    if (!ev || !m || !dest || set_str(ev, "eventType", type) != 0 ||
        json_object_set(ev, "mail", m) != 0 ||
        json_object_set_new(m, "timestamp", time_json(mail->timestamp * 1000)) != 0 ||
        set_str(m, "messageId", id) != 0 || set_str(m, "source", mail->source) != 0 ||
        json_object_set(m, "destination", dest) != 0 ||
        json_object_set_new(m, "headersTruncated", json_false()) != 0)
        goto fail;
    if (mail->header_from || mail->nheader_to || mail->header_message_id || mail->subject) {
        json_t *ch = json_object();
        if (!ch || json_object_set_new(m, "commonHeaders", ch) != 0)
            goto fail;
        const char *from = mail->header_from ? mail->header_from : mail->source;
        json_t *fa = str_array(&from, 1);
        if (!fa || json_object_set_new(ch, "from", fa) != 0)
            goto fail;
        if (mail->nheader_to) {
            json_t *ta = str_array(mail->header_to, mail->nheader_to);
            if (!ta || json_object_set_new(ch, "to", ta) != 0)
                goto fail;
        }
        if (mail->header_message_id && set_str(ch, "messageId", mail->header_message_id) != 0)
            goto fail;
        if (mail->subject && set_str(ch, "subject", mail->subject) != 0)
            goto fail;
    }
    if (strcmp(type, "Send") == 0 && json_object_set_new(ev, "send", json_object()) != 0)
        goto fail;
    json_decref(m);
    json_decref(dest);
    return ev;
fail:
    json_decref(ev);
    json_decref(m);
    json_decref(dest);
    return NULL;
}

/* The details object under key, made (with a timestamp) when absent. */
static json_t *details(json_t *ev, const char *key)
{
    json_t *o = json_object_get(ev, key);
    if (json_is_object(o))
        return o;
    o = json_object();
    if (!o || json_object_set_new(ev, key, o) != 0)
        return NULL;
    if (json_object_set_new(o, "timestamp", time_json(now_ms())) != 0)
        return NULL;
    return o;
}

/* The array under key in o, made when absent. */
static json_t *array_in(json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key);
    if (json_is_array(a))
        return a;
    a = json_array();
    if (!a || json_object_set_new(o, key, a) != 0)
        return NULL;
    return a;
}

/* "smtp; 550 5.1.1 ..." for an SMTP reply; a DSN's Diagnostic-Code
 * ("smtp; ...", "x-unix; ...") as it is. */
static int set_diagnostic(json_t *o, const char *diagnostic)
{
    if (!diagnostic || !diagnostic[0])
        return 0;
    if (diagnostic[0] >= '0' && diagnostic[0] <= '9') {
        size_t n = strlen(diagnostic) + 8;
        char *s = malloc(n);
        if (!s)
            return -1;
        snprintf(s, n, "smtp; %s", diagnostic);
        int rc = set_str(o, "diagnosticCode", s);
        free(s);
        return rc;
    }
    return set_str(o, "diagnosticCode", diagnostic);
}

/* The enhanced status code (RFC 3463 "c.s.d") at the start of s, or after
 * a basic three-digit reply code; "" when there is none. */
static void status_from(const char *s, char out[16])
{
    out[0] = '\0';
    if (!s)
        return;
    if (strncmp(s, "smtp;", 5) == 0)
        s += 5;
    while (*s == ' ')
        s++;
    if (s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
        s[2] <= '9' && (s[3] == ' ' || s[3] == '-')) {
        s += 4;
        while (*s == ' ')
            s++;
    }
    size_t i = 0, dots = 0;
    if (!(s[0] == '2' || s[0] == '4' || s[0] == '5') || s[1] != '.')
        return;
    while (i < 15 && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) {
        dots += s[i] == '.';
        i++;
    }
    if (dots != 2 || s[i - 1] == '.' || (s[i] && s[i] != ' '))
        return;
    memcpy(out, s, i);
    out[i] = '\0';
}

static int set_status(json_t *o, const char *status, const char *diagnostic)
{
    if (status && status[0])
        return set_str(o, "status", status);
    char st[16];
    status_from(diagnostic, st);
    return st[0] ? set_str(o, "status", st) : 0;
}

/* The remote MTA's IP address in what delivery reports: "IP",
 * "IP:PORT", "[IP]:PORT", "NAME (IP:PORT)", "NAME ([IP]:PORT)"; false
 * when there is none. */
static bool remote_ip(const char *remote, char out[INET6_ADDRSTRLEN])
{
    if (!remote)
        return false;
    const char *s = remote, *e;
    const char *open = strchr(remote, '(');
    if (open) {
        s = open + 1;
        e = strchr(s, ')');
        if (!e)
            return false;
    } else {
        e = s + strlen(s);
    }
    if (*s == '[') {
        s++;
        const char *close = memchr(s, ']', (size_t)(e - s));
        if (!close)
            return false;
        e = close;
    } else {
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (colon && !memchr(colon + 1, ':', (size_t)(e - colon - 1)))
            e = colon;     /* IPv4:PORT; more colons: a bare IPv6 address */
    }
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= INET6_ADDRSTRLEN)
        return false;
    char ip[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1)
        return false;
    memcpy(out, ip, n + 1);
    return true;
}

static void fail_log(const char *what)
{
    log_msg(LOG_ERROR, "events", "event=build_failed part=%s reason=out_of_memory", what);
}

void event_set_delivery(json_t *ev, const char *rcpt, const char *smtp_response,
                        long processing_ms, const char *remote_mta)
{
    json_t *d = details(ev, "delivery");
    json_t *r = d ? array_in(d, "recipients") : NULL;
    json_t *addr = jstr(rcpt);
    char ip[INET6_ADDRSTRLEN];
    if (!r || !addr || json_array_append_new(r, addr) != 0 ||
        json_object_set_new(d, "processingTimeMillis",
                            json_integer(processing_ms < 0 ? 0 : processing_ms)) != 0 ||
        set_str(d, "smtpResponse", smtp_response) != 0 ||
        (remote_ip(remote_mta, ip) && set_str(d, "remoteMtaIp", ip) != 0) ||
        set_str(d, "reportingMTA", our_mta()) != 0)
        fail_log("delivery");
}

static int set_feedback_id(json_t *o)
{
    if (json_object_get(o, "feedbackId"))
        return 0;
    unsigned char r[16];
    char hex[33];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(hex, sizeof hex, r, sizeof r);
    return set_str(o, "feedbackId", hex);
}

void event_set_bounce(json_t *ev, const char *bounce_type, const char *sub_type,
                      const char *rcpt, const char *status, const char *diagnostic,
                      const char *reporting)
{
    json_t *b = details(ev, "bounce");
    json_t *list = b ? array_in(b, "bouncedRecipients") : NULL;
    json_t *one = json_object();
    char mta[REPORTING_MTA_MAX + 8];
    const char *name = reporting && reporting[0] ? reporting : our_mta();
    if (strchr(name, ';'))
        snprintf(mta, sizeof mta, "%s", name);
    else
        snprintf(mta, sizeof mta, "dsn; %s", name);
    if (!list || !one || json_array_append(list, one) != 0 ||
        set_str(b, "bounceType", bounce_type ? bounce_type : "Undetermined") != 0 ||
        set_str(b, "bounceSubType", sub_type ? sub_type : "General") != 0 ||
        set_str(one, "emailAddress", rcpt) != 0 || set_str(one, "action", "failed") != 0 ||
        set_status(one, status, diagnostic) != 0 || set_diagnostic(one, diagnostic) != 0 ||
        set_feedback_id(b) != 0 || set_str(b, "reportingMTA", mta) != 0)
        fail_log("bounce");
    json_decref(one);
}

void event_set_complaint(json_t *ev, const char *rcpt, const char *feedback_type,
                         const char *user_agent)
{
    json_t *c = details(ev, "complaint");
    json_t *list = c ? array_in(c, "complainedRecipients") : NULL;
    if (!list || set_feedback_id(c) != 0 ||
        json_object_set_new(c, "complaintSubType", json_null()) != 0)
        goto fail;
    if (rcpt && rcpt[0]) {
        json_t *one = json_object();
        if (!one || json_array_append_new(list, one) != 0 ||
            set_str(one, "emailAddress", rcpt) != 0)
            goto fail;
    }
    if (feedback_type && feedback_type[0] &&
        set_str(c, "complaintFeedbackType", feedback_type) != 0)
        goto fail;
    if (user_agent && user_agent[0] && set_str(c, "userAgent", user_agent) != 0)
        goto fail;
    return;
fail:
    fail_log("complaint");
}

void event_set_reject(json_t *ev, const char *reason)
{
    json_t *r = json_object_get(ev, "reject");
    if (!json_is_object(r)) {
        r = json_object();
        if (!r || json_object_set_new(ev, "reject", r) != 0) {
            fail_log("reject");
            return;
        }
    }
    if (set_str(r, "reason", reason) != 0)
        fail_log("reject");
}

static const char *delay_type_for(const char *status, const char *diagnostic)
{
    char st[16];
    if (status && status[0])
        snprintf(st, sizeof st, "%s", status);
    else
        status_from(diagnostic, st);
    bool answered = diagnostic && diagnostic[0] >= '0' && diagnostic[0] <= '9';
    if (!st[0] && !answered)
        return "TransientCommunicationFailure";
    if (strncmp(st, "4.4.", 4) == 0)
        return "TransientCommunicationFailure";
    if (strcmp(st, "4.2.2") == 0)
        return "MailboxFull";
    if (strncmp(st, "4.7.", 4) == 0)
        return "SpamDetected";
    if (st[0] == '4' || (answered && diagnostic[0] == '4'))
        return "RecipientServerError";
    return "General";
}

void event_set_delay(json_t *ev, const char *rcpt, const char *status, const char *diagnostic,
                     int64_t expiration)
{
    json_t *d = details(ev, "deliveryDelay");
    json_t *list = d ? array_in(d, "delayedRecipients") : NULL;
    json_t *one = json_object();
    if (!list || !one || json_array_append(list, one) != 0 ||
        set_str(one, "emailAddress", rcpt) != 0 || set_status(one, status, diagnostic) != 0 ||
        set_diagnostic(one, diagnostic) != 0 ||
        (!json_object_get(d, "delayType") &&
         set_str(d, "delayType", delay_type_for(status, diagnostic)) != 0) ||
        json_object_set_new(d, "expirationTime", time_json(expiration * 1000)) != 0)
        fail_log("deliveryDelay");
    json_decref(one);
}

void event_set_delay_type(json_t *ev, const char *delay_type)
{
    json_t *d = details(ev, "deliveryDelay");
    if (!d || set_str(d, "delayType", delay_type) != 0)
        fail_log("deliveryDelay");
}

int event_record(struct store *st, int64_t account_id, int64_t message_id, const char *rcpt,
                 json_t *ev)
{
    const char *type = json_string_value(json_object_get(ev, "eventType"));
    if (!event_type_valid(type)) {
        json_decref(ev);
        return STORE_ERROR;
    }
    struct store_event e;
    memset(&e, 0, sizeof e);
    e.account_id = account_id;
    e.message_id = message_id;
    snprintf(e.type, sizeof e.type, "%s", type);
    snprintf(e.rcpt, sizeof e.rcpt, "%s", rcpt ? rcpt : "");
    e.created_at = (int64_t)time(NULL);
    char *text = json_dumps(ev, JSON_COMPACT);
    if (!text) {
        json_decref(ev);
        fail_log("record");
        return STORE_ERROR;
    }
    e.json = text;
    int rc = store_event_insert(st, &e);
    free(text);
    /* the reputation guard counts it in the same transaction */
    if (rc == STORE_OK)
        rc = reputation_on_event(st, account_id, ev, e.created_at);
    json_decref(ev);
    return rc;
}

void event_sign(const char *secret, int64_t timestamp, const char *body, size_t len,
                char out[80])
{
    char ts[24];
    int tn = snprintf(ts, sizeof ts, "%" PRId64, timestamp);
    crypto_auth_hmacsha256_state s;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&s, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)ts, (unsigned long long)tn);
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&s, mac);
    sodium_memzero(&s, sizeof s);
    memcpy(out, "sha256=", 7);
    sodium_bin2hex(out + 7, 80 - 7, mac, sizeof mac);
}

/* ---- the dispatcher ---- */

struct job {
    TAILQ_ENTRY(job) entry;
    struct event_dispatcher *d;
    int64_t id, webhook_id, event_id;
    unsigned attempts;           /* before this one */
    int64_t event_time;          /* Unix seconds; -1 unknown */
    char *url;
    char *json;
    char secret[80];
    bool posted;
};
TAILQ_HEAD(job_list, job);

struct event_dispatcher {
    struct event_base *base;
    struct store *st;
    struct webhook_client *wc;
    struct event *timer, *kick;
    struct job_list inflight;
    size_t ninflight;
    unsigned backoff[BACKOFF_MAX];
    size_t nbackoff;
    unsigned lease_s;
    unsigned interval_ms;
};

static void job_free(struct job *j)
{
    if (!j)
        return;
    sodium_memzero(j->secret, sizeof j->secret);
    free(j->url);
    free(j->json);
    free(j);
}

/* When the event happened: its details' timestamp, else the message's. */
static int64_t event_time(const char *text)
{
    json_t *ev = json_loads(text, 0, NULL);
    const char *key = type_key(json_string_value(json_object_get(ev, "eventType")));
    json_t *d = key ? json_object_get(ev, key) : NULL;
    int64_t t = iso_parse(json_string_value(json_object_get(d, "timestamp")));
    if (t < 0)
        t = iso_parse(json_string_value(
            json_object_get(json_object_get(ev, "mail"), "timestamp")));
    json_decref(ev);
    return t;
}

static unsigned delay_after(const struct event_dispatcher *d, unsigned attempt)
{
    size_t i = attempt ? attempt - 1 : 0;
    return d->backoff[i < d->nbackoff ? i : d->nbackoff - 1];
}

/* The attempt (number j->attempts + 1) ended with status. */
static void job_outcome(struct job *j, int status)
{
    struct event_dispatcher *d = j->d;
    unsigned attempt = j->attempts + 1;
    int64_t now = (int64_t)time(NULL);
    int rc;
    if (status >= 200 && status <= 299) {
        rc = store_webhook_job_finish(d->st, j->id, true, attempt, 0);
        log_msg(LOG_DEBUG, "events", "event=webhook_delivered webhook=%" PRId64
                " event_id=%" PRId64 " status=%d attempts=%u", j->webhook_id, j->event_id,
                status, attempt);
    } else {
        /* Without a readable event time, give up once the schedule has
         * spent the whole day since the first attempt. */
        int64_t age = 0;
        if (j->event_time >= 0) {
            age = now - j->event_time;
        } else {
            for (unsigned k = 1; k <= attempt; k++)
                age += delay_after(d, k);
        }
        unsigned wait = delay_after(d, attempt);
        if (age + (int64_t)wait > EVENTS_WEBHOOK_MAX_AGE_S) {
            rc = store_webhook_job_finish(d->st, j->id, true, attempt, 0);
            log_msg(LOG_WARN, "events", "event=webhook_gave_up webhook=%" PRId64
                    " event_id=%" PRId64 " attempts=%u last_status=%d", j->webhook_id,
                    j->event_id, attempt, status);
        } else {
            rc = store_webhook_job_finish(d->st, j->id, false, attempt, now + wait);
            log_msg(LOG_INFO, "events", "event=webhook_retry webhook=%" PRId64
                    " event_id=%" PRId64 " attempt=%u status=%d in_s=%u", j->webhook_id,
                    j->event_id, attempt, status, wait);
        }
    }
    /* on a store failure the lease runs out and the job comes back */
    if (rc != STORE_OK)
        log_msg(LOG_ERROR, "events", "event=webhook_finish_failed job=%" PRId64, j->id);
}

static void on_posted(void *arg, int status)
{
    struct job *j = arg;
    struct event_dispatcher *d = j->d;
    TAILQ_REMOVE(&d->inflight, j, entry);
    d->ninflight--;
    job_outcome(j, status);
    job_free(j);
    /* room again: due jobs may be waiting */
    event_active(d->kick, EV_TIMEOUT, 0);
}

static void post_job(struct event_dispatcher *d, struct job *j)
{
    int64_t ts = (int64_t)time(NULL);
    char tsbuf[24], idbuf[24], sig[80];
    snprintf(tsbuf, sizeof tsbuf, "%" PRId64, ts);
    snprintf(idbuf, sizeof idbuf, "%" PRId64, j->event_id);
    size_t len = strlen(j->json);
    event_sign(j->secret, ts, j->json, len, sig);
    const char *h[] = {
        "Content-Type", "application/json", "X-Sesame-Timestamp", tsbuf,
        "X-Sesame-Signature", sig, "X-Sesame-Event-Id", idbuf,
    };
    TAILQ_INSERT_TAIL(&d->inflight, j, entry);
    d->ninflight++;
    if (webhook_post_once(d->wc, j->url, j->json, len, h, 4, on_posted, j) != 0) {
        TAILQ_REMOVE(&d->inflight, j, entry);
        d->ninflight--;
        job_outcome(j, 0);
        job_free(j);
    }
}

struct claim_arg {
    struct job_list got;
    bool oom;
};

static int claim_cb(const struct store_webhook_job *sj, void *arg)
{
    struct claim_arg *a = arg;
    struct job *j = calloc(1, sizeof *j);
    if (j) {
        j->id = sj->id;
        j->webhook_id = sj->webhook_id;
        j->event_id = sj->event_id;
        j->attempts = sj->attempts;
        j->url = strdup(sj->url);
        j->json = strdup(sj->json ? sj->json : "");
        snprintf(j->secret, sizeof j->secret, "%s", sj->secret);
    }
    if (!j || !j->url || !j->json) {
        job_free(j);
        a->oom = true;       /* the job stays leased and comes back */
        return 0;
    }
    TAILQ_INSERT_TAIL(&a->got, j, entry);
    return 0;
}

static void claim(struct event_dispatcher *d)
{
    if (d->ninflight >= EVENTS_WEBHOOK_INFLIGHT)
        return;
    size_t room = EVENTS_WEBHOOK_INFLIGHT - d->ninflight;
    unsigned max = room < EVENTS_WEBHOOK_BATCH ? (unsigned)room : EVENTS_WEBHOOK_BATCH;
    int64_t now = (int64_t)time(NULL);
    struct claim_arg a = { .oom = false };
    TAILQ_INIT(&a.got);
    int rc = store_webhook_job_claim(d->st, now, now + d->lease_s, max, claim_cb, &a);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        log_msg(LOG_ERROR, "events", "event=webhook_claim_failed");
    if (a.oom)
        log_msg(LOG_ERROR, "events", "event=webhook_claim_failed reason=out_of_memory");
    unsigned n = 0;
    struct job *j;
    while ((j = TAILQ_FIRST(&a.got)) != NULL) {
        TAILQ_REMOVE(&a.got, j, entry);
        j->d = d;
        j->event_time = event_time(j->json);
        post_job(d, j);
        n++;
    }
    /* a full batch: there may be more due */
    if (n == max && rc == STORE_OK)
        event_active(d->kick, EV_TIMEOUT, 0);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    claim(arg);
}

static int arm_timer(struct event_dispatcher *d)
{
    struct timeval tv = { .tv_sec = d->interval_ms / 1000,
                          .tv_usec = (suseconds_t)(d->interval_ms % 1000) * 1000 };
    return event_add(d->timer, &tv);
}

struct event_dispatcher *event_dispatcher_new(struct event_base *base, struct store *st,
                                              struct webhook_client *wc)
{
    if (!base || !st || !wc)
        return NULL;
    struct event_dispatcher *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->base = base;
    d->st = st;
    d->wc = wc;
    TAILQ_INIT(&d->inflight);
    static const unsigned backoff[] = EVENTS_WEBHOOK_BACKOFF;
    event_dispatcher_set_backoff(d, backoff, sizeof backoff / sizeof backoff[0]);
    d->lease_s = EVENTS_WEBHOOK_LEASE_S;
    d->interval_ms = 1000;
    d->timer = event_new(base, -1, EV_PERSIST, on_timer, d);
    d->kick = event_new(base, -1, 0, on_timer, d);
    if (!d->timer || !d->kick || arm_timer(d) != 0) {
        event_dispatcher_free(d);
        return NULL;
    }
    /* what is due already (jobs left by the last run) */
    event_active(d->kick, EV_TIMEOUT, 0);
    return d;
}

void event_dispatcher_free(struct event_dispatcher *d)
{
    if (!d)
        return;
    struct job *j;
    while ((j = TAILQ_FIRST(&d->inflight)) != NULL) {
        TAILQ_REMOVE(&d->inflight, j, entry);
        webhook_cancel(d->wc, j);
        job_free(j);
    }
    if (d->timer)
        event_free(d->timer);
    if (d->kick)
        event_free(d->kick);
    free(d);
}

void event_dispatcher_kick(struct event_dispatcher *d)
{
    if (d)
        event_active(d->kick, EV_TIMEOUT, 0);
}

void event_dispatcher_set_backoff(struct event_dispatcher *d, const unsigned *seconds, size_t n)
{
    if (n == 0)
        return;
    if (n > BACKOFF_MAX)
        n = BACKOFF_MAX;
    memcpy(d->backoff, seconds, n * sizeof *seconds);
    d->nbackoff = n;
}

void event_dispatcher_set_lease(struct event_dispatcher *d, unsigned seconds)
{
    d->lease_s = seconds ? seconds : EVENTS_WEBHOOK_LEASE_S;
}

void event_dispatcher_set_interval_ms(struct event_dispatcher *d, unsigned ms)
{
    d->interval_ms = ms ? ms : 1000;
    if (arm_timer(d) != 0)
        log_msg(LOG_ERROR, "events", "event=timer_failed");
}

size_t event_dispatcher_inflight(const struct event_dispatcher *d)
{
    return d ? d->ninflight : 0;
}
