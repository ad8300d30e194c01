/* Domain identities: name normalisation, the verification token, the TXT
 * check at _sesame.DOMAIN and the JSON the CLI and the API print (see
 * identities.h and docs/identities.md).
 * It does not: re-check verified domains on a schedule, or produce the
 * DKIM, SPF, DMARC, MAIL FROM and MX records (the identities issue that
 * follows adds them to domain_records()); single addresses (senders) are
 * confirmed by mail, elsewhere. */
#include "service/identities.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dns/dns_rdata.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/strview.h"

_Static_assert(2 * IDENTITY_TOKEN_BYTES <= STORE_TOKEN_MAX, "hex token must fit the store");
_Static_assert(IDENTITY_DOMAIN_MAX + (int)sizeof(IDENTITY_VERIFY_LABEL) == DNS_MAX_NAME_LEN,
               "_sesame.DOMAIN fits a DNS name");

/* What a non-matching TXT record shows of itself in the reason. */
#define FOUND_SHOWN_MAX 80
#define FOUND_RECORDS_SHOWN 2
/* What an unacceptable domain name shows of itself in the reason. */
#define NAME_SHOWN_MAX 64

const char *identity_status_name(int status)
{
    switch (status) {
    case STORE_ID_PENDING: return "pending";
    case STORE_ID_VERIFIED: return "verified";
    case STORE_ID_FAILED: return "failed";
    case STORE_ID_EXPIRED: return "expired";
    }
    return "pending";
}

static bool is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* The name as given, for messages: printable ASCII only (a message may
 * end up in JSON, which wants UTF-8), truncated. */
static void shown_name(const char *in, char *out, size_t outlen)
{
    size_t o = 0, i = 0;
    for (; in[i] && i < NAME_SHOWN_MAX && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (in[i] && o + 3 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

int identity_domain_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    if (outlen)
        out[0] = '\0';
    if (!in || !in[0] || strcmp(in, ".") == 0) {
        snprintf(err, errlen, "the domain name is empty");
        return -1;
    }
    char shown[NAME_SHOWN_MAX + 4];
    shown_name(in, shown, sizeof shown);
    size_t n = strlen(in);
    if (in[n - 1] == '.')
        n--;
    if (n > IDENTITY_DOMAIN_MAX) {
        snprintf(err, errlen, "domain '%s' is longer than %d characters (%s.DOMAIN "
                 "must fit the %d of a DNS name)", shown, IDENTITY_DOMAIN_MAX,
                 IDENTITY_VERIFY_LABEL, DNS_MAX_NAME_LEN);
        return -1;
    }
    if (n >= outlen) {
        snprintf(err, errlen, "domain name buffer too small");
        return -1;
    }
    size_t labels = 0, label_start = 0;
    bool all_digits = true;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = i < n ? (unsigned char)in[i] : '.';
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c == '.') {
            size_t len = i - label_start;
            if (len == 0) {
                snprintf(err, errlen, "domain '%s' has an empty label", shown);
                return -1;
            }
            if (len > DNS_MAX_LABEL_LEN) {
                snprintf(err, errlen, "domain '%s' has a label longer than %d characters",
                         shown, DNS_MAX_LABEL_LEN);
                return -1;
            }
            if (out[label_start] == '-' || out[i - 1] == '-') {
                snprintf(err, errlen, "domain '%s': a label cannot start or end with '-'", shown);
                return -1;
            }
            labels++;
            all_digits = true;
            for (size_t k = label_start; k < i; k++)
                if (out[k] < '0' || out[k] > '9')
                    all_digits = false;
            label_start = i + 1;
        } else if (c >= 0x80) {
            snprintf(err, errlen, "domain '%s' has non-ASCII characters: give an "
                     "internationalized name in its ASCII (xn--...) form", shown);
            return -1;
        } else if (!is_ldh(c)) {
            if (c >= 0x20 && c < 0x7f)
                snprintf(err, errlen, "domain '%s' has the character '%c': only letters, "
                         "digits, '-' and '.' are allowed", shown, c);
            else
                snprintf(err, errlen, "domain has a control character: only letters, digits, "
                         "'-' and '.' are allowed");
            return -1;
        }
        if (i < n)
            out[i] = (char)c;
    }
    out[n] = '\0';
    if (labels < 2) {
        snprintf(err, errlen, "'%s' is not a domain of its own: give at least two labels "
                 "(example.com)", out);
        out[0] = '\0';
        return -1;
    }
    if (all_digits) {
        snprintf(err, errlen, "'%s' is not a domain name (the last label is a number: an IP "
                 "address?)", out);
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static int new_token(char *out, size_t outlen)
{
    unsigned char raw[IDENTITY_TOKEN_BYTES];
    if (outlen < 2 * sizeof raw + 1 || sodium_init() < 0)
        return -1;
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, outlen, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

int identity_domain_add(struct store *st, int64_t account_id, const char *domain,
                        struct store_domain *out, char *err, size_t errlen)
{
    char norm[DNS_MAX_NAME_LEN + 1];
    if (identity_domain_normalize(domain, norm, sizeof norm, err, errlen) != 0)
        return IDENTITY_BADNAME;
    int rc = store_domain_get(st, account_id, norm, out);
    if (rc == STORE_OK)
        return STORE_OK;
    if (rc != STORE_NOTFOUND) {
        snprintf(err, errlen, "cannot read the store");
        return STORE_ERROR;
    }
    struct store_domain d;
    memset(&d, 0, sizeof d);
    d.account_id = account_id;
    memcpy(d.domain, norm, strlen(norm) + 1);
    d.status = STORE_ID_PENDING;
    d.created_at = (int64_t)time(NULL);
    if (new_token(d.verify_token, sizeof d.verify_token) != 0) {
        snprintf(err, errlen, "cannot make a random token (libsodium)");
        return STORE_ERROR;
    }
    rc = store_domain_insert(st, &d);
    if (rc == STORE_EXISTS) /* added meanwhile by another process: that one stands */
        rc = store_domain_get(st, account_id, norm, &d);
    if (rc != STORE_OK) {
        snprintf(err, errlen, "cannot write the store");
        return STORE_ERROR;
    }
    log_msg(LOG_INFO, "identities", "event=domain_added account=%lld domain=%s",
            (long long)account_id, norm);
    *out = d;
    return STORE_OK;
}

/* Appends a record's text for a person: printable ASCII, truncated. */
static int show_value(struct buf *b, const char *s, size_t len)
{
    size_t n = len > FOUND_SHOWN_MAX ? FOUND_SHOWN_MAX : len;
    if (buf_append_char(b, '"') != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (buf_append_char(b, c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?') != 0)
            return -1;
    }
    return buf_append_str(b, n < len ? "\"..." : "\"");
}

enum txt_outcome { TXT_MATCH, TXT_NONE, TXT_OTHER, TXT_TEMPFAIL };

/* Asks DNS for the TXT records at name and looks for want among them. For
 * TXT_OTHER, found receives a few of the values seen. */
static enum txt_outcome lookup_token(struct dns_resolver *dns, const char *name,
                                     const char *want, struct buf *found)
{
    struct dns_answer a;
    dns_query(dns, name, DNS_T_TXT, &a);
    enum txt_outcome res;
    switch (a.status) {
    case DNS_OK: res = TXT_OTHER; break;
    case DNS_NXDOMAIN:
    case DNS_NODATA: res = TXT_NONE; break;
    default: res = TXT_TEMPFAIL; break; /* BADNAME cannot happen: names are checked */
    }
    struct buf txt;
    buf_init(&txt, DNS_MAX_MESSAGE_LEN);
    size_t shown = 0, wantlen = strlen(want);
    for (size_t i = 0; res == TXT_OTHER && i < a.count; i++) {
        size_t nstrings;
        if (dns_rdata_txt(a.rrs[i].data, a.rrs[i].len, &txt, &nstrings) != 0)
            continue; /* malformed: as if absent */
        struct sv v = sv_trim(sv_make(buf_cstr(&txt), txt.len));
        if (v.len == wantlen && memcmp(v.p, want, wantlen) == 0) {
            res = TXT_MATCH;
        } else if (shown < FOUND_RECORDS_SHOWN) {
            if ((shown && buf_append_str(found, ", ") != 0) || show_value(found, v.p, v.len) != 0)
                continue;
            shown++;
        }
    }
    /* On a full buffer the reason only says less. */
    if (res == TXT_OTHER && a.count > shown && shown &&
        buf_printf(found, " and %zu more", a.count - shown) != 0)
        log_msg(LOG_DEBUG, "identities", "event=reason_truncated name=%s", name);
    buf_free(&txt);
    dns_answer_release(&a);
    return res;
}

int identity_domain_verify(struct store *st, struct dns_resolver *dns, int64_t account_id,
                           const char *domain, struct store_domain *out, bool *tempfail,
                           char *err, size_t errlen)
{
    *tempfail = false;
    char norm[DNS_MAX_NAME_LEN + 1], name[sizeof IDENTITY_VERIFY_LABEL + DNS_MAX_NAME_LEN + 1];
    char want[sizeof IDENTITY_VERIFY_PREFIX + STORE_TOKEN_MAX];
    if (identity_domain_normalize(domain, norm, sizeof norm, err, errlen) != 0)
        return IDENTITY_BADNAME;
    struct store_domain d;
    int rc = store_domain_get(st, account_id, norm, &d);
    if (rc == STORE_NOTFOUND) {
        snprintf(err, errlen, "%s has not been added to this account (add it first)", norm);
        return STORE_NOTFOUND;
    }
    if (rc != STORE_OK) {
        snprintf(err, errlen, "cannot read the store");
        return STORE_ERROR;
    }
    *out = d;
    snprintf(name, sizeof name, "%s.%s", IDENTITY_VERIFY_LABEL, norm);
    snprintf(want, sizeof want, "%s%s", IDENTITY_VERIFY_PREFIX, d.verify_token);

    struct buf found;
    buf_init(&found, 2 * FOUND_RECORDS_SHOWN * (FOUND_SHOWN_MAX + 8) + 32);
    enum txt_outcome res = lookup_token(dns, name, want, &found);
    int64_t now = (int64_t)time(NULL);
    const char *word;
    switch (res) {
    case TXT_TEMPFAIL:
        snprintf(err, errlen, "no answer from DNS for the TXT record at %s (timeout or server "
                 "failure); status unchanged, try again later", name);
        *tempfail = true;
        buf_free(&found);
        log_msg(LOG_INFO, "identities", "event=domain_verify account=%lld domain=%s "
                "result=tempfail", (long long)account_id, norm);
        return STORE_OK;
    case TXT_MATCH:
        word = "verified";
        if (d.status == STORE_ID_VERIFIED) {
            snprintf(err, errlen, "the TXT record at %s holds the token; %s stays verified",
                     name, norm);
        } else {
            snprintf(err, errlen, "the TXT record at %s holds the token", name);
            d.status = STORE_ID_VERIFIED;
            d.verified_at = now;
        }
        break;
    case TXT_NONE:
    case TXT_OTHER:
        word = "failed";
        if (res == TXT_NONE)
            snprintf(err, errlen, "no TXT record at %s", name);
        else
            snprintf(err, errlen, "TXT records found but none is %s (at %s: %s)", want, name,
                     buf_cstr(&found));
        if (d.status == STORE_ID_VERIFIED) {
            /* Verified stays verified: when a domain that lost its record
             * stops counting is the re-check policy of the issue that follows. */
            size_t used = strlen(err);
            snprintf(err + used, errlen > used ? errlen - used : 0,
                     "; %s was verified before and stays verified", norm);
            word = "verified";
        } else {
            d.status = STORE_ID_FAILED;
        }
        break;
    }
    buf_free(&found);
    d.checked_at = now;
    rc = store_domain_update(st, &d);
    if (rc == STORE_EXISTS) {
        snprintf(err, errlen, "%s is verified by another account", norm);
        /* Keep the status this account had; record that it was checked. */
        d = *out;
        d.checked_at = now;
        if (store_domain_update(st, &d) == STORE_OK)
            *out = d;
        log_msg(LOG_INFO, "identities", "event=domain_verify account=%lld domain=%s "
                "result=taken", (long long)account_id, norm);
        return STORE_EXISTS;
    }
    if (rc != STORE_OK) {
        snprintf(err, errlen, "cannot write the store");
        return STORE_ERROR;
    }
    *out = d;
    log_msg(LOG_INFO, "identities", "event=domain_verify account=%lld domain=%s result=%s",
            (long long)account_id, norm, word);
    return STORE_OK;
}

static json_t *time_json(int64_t t)
{
    if (t <= 0)
        return json_null();
    time_t tt = (time_t)t;
    struct tm tm;
    char s[32];
    if (!gmtime_r(&tt, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_null();
    return json_string(s);
}

static int add_record(json_t *records, const char *type, const char *name, const char *value,
                      const char *purpose)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "name", name, "value", value,
                          "purpose", purpose);
    return r ? json_array_append_new(records, r) : -1;
}

/* Every record the account publishes for the domain. The identities issue
 * that follows appends DKIM, SPF, DMARC, MAIL FROM (MX and SPF) and the
 * inbound MX here; the CLI's zone-file text is printed from this list. */
static int domain_records(const struct store_domain *d, json_t *records)
{
    /* sized for any domain; normalised ones make names of at most DNS_MAX_NAME_LEN */
    char name[sizeof IDENTITY_VERIFY_LABEL + DNS_MAX_NAME_LEN + 1];
    char value[sizeof IDENTITY_VERIFY_PREFIX + STORE_TOKEN_MAX];
    snprintf(name, sizeof name, "%s.%s", IDENTITY_VERIFY_LABEL, d->domain);
    snprintf(value, sizeof value, "%s%s", IDENTITY_VERIFY_PREFIX, d->verify_token);
    return add_record(records, "TXT", name, value, "verification");
}

json_t *identity_domain_json(const struct store_domain *d)
{
    json_t *records = json_array();
    if (!records || domain_records(d, records) != 0) {
        json_decref(records);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "domain", d->domain, "status",
                     identity_status_name(d->status), "records", records, "verified_at",
                     time_json(d->verified_at), "checked_at", time_json(d->checked_at));
}
