/* Domain identities: name normalisation, the verification token, the TXT
 * check at _sesame.DOMAIN and the JSON the CLI and the API print (see
 * identities.h and docs/identities.md).
 * It does not: re-check verified domains on a schedule, or produce the
 * DKIM, SPF, DMARC, MAIL FROM and MX records (the identities issue that
 * follows adds them to domain_records()); single addresses (senders) are
 * confirmed by mail, elsewhere. */
#include "service/identities.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "auth/dkim_signer.h"
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

/* ---- DKIM keys ---- */

struct key_list { json_t *records; const char *domain; size_t n; };

static int key_record_cb(const struct store_dkim_key *k, void *arg)
{
    struct key_list *l = arg;
    l->n++;
    if (k->status == STORE_KEY_RETIRED)
        return 0;
    char name[DNS_MAX_NAME_LEN + 80];
    snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, l->domain);
    return add_record(l->records, "TXT", name, k->record, "dkim") != 0;
}

json_t *identity_domain_json_full(struct store *st, const struct store_domain *d)
{
    json_t *j = identity_domain_json(d);
    if (!j)
        return NULL;
    struct key_list l = { json_object_get(j, "records"), d->domain, 0 };
    if (store_dkim_key_list(st, d->id, key_record_cb, &l) != STORE_OK) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int count_cb(const struct store_dkim_key *k, void *arg)
{
    (void)k;
    (*(size_t *)arg)++;
    return 0;
}

static int mkdir_0700(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

int identity_domain_keys(struct store *st, const char *data_dir, const struct store_domain *d,
                         char *err, size_t errlen)
{
    size_t n = 0;
    if (store_dkim_key_list(st, d->id, count_cb, &n) != STORE_OK) {
        snprintf(err, errlen, "cannot read the store");
        return STORE_ERROR;
    }
    if (n > 0)
        return STORE_OK;
    char dir[900];
    if (strlen(data_dir) + strlen(d->domain) + 16 >= sizeof dir) {
        snprintf(err, errlen, "data_dir is too long");
        return STORE_ERROR;
    }
    snprintf(dir, sizeof dir, "%s/dkim", data_dir);
    if (mkdir_0700(dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return STORE_ERROR;
    }
    snprintf(dir, sizeof dir, "%s/dkim/%s", data_dir, d->domain);
    if (mkdir_0700(dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return STORE_ERROR;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char day[16];
    strftime(day, sizeof day, "%Y%m%d", &tm);
    static const struct { enum dkim_algorithm alg; char suffix; } kinds[] = {
        { DKIM_ALG_RSA_SHA256, 'r' }, { DKIM_ALG_ED25519_SHA256, 'e' },
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct store_dkim_key k;
        memset(&k, 0, sizeof k);
        k.domain_id = d->id;
        snprintf(k.selector, sizeof k.selector, "s%s%c", day, kinds[i].suffix);
        snprintf(k.algorithm, sizeof k.algorithm, "%s", dkim_algorithm_name(kinds[i].alg));
        snprintf(k.key_path, sizeof k.key_path, "%s/%s.pem", dir, k.selector);
        k.status = STORE_KEY_ACTIVE;
        k.created_at = (int64_t)now;
        struct buf rec;
        buf_init(&rec, sizeof k.record - 1);
        char kerr[256];
        struct stat sb;
        enum dkim_status ks = DKIM_OK;
        if (stat(k.key_path, &sb) == 0) {
            /* left by an earlier attempt that did not reach the store */
            struct dkim_signer *sg = dkim_signer_load(k.key_path, kerr, sizeof kerr);
            ks = sg && dkim_signer_record(sg, &rec) == 0 ? DKIM_OK : DKIM_ESYS;
            dkim_signer_free(sg);
        } else {
            ks = dkim_keygen(kinds[i].alg, 0, false, k.key_path, &rec, kerr, sizeof kerr);
        }
        if (ks != DKIM_OK) {
            buf_free(&rec);
            snprintf(err, errlen, "cannot make the DKIM key %s: %s", k.key_path, kerr);
            return STORE_ERROR;
        }
        snprintf(k.record, sizeof k.record, "%s", buf_cstr(&rec));
        buf_free(&rec);
        int rc = store_dkim_key_insert(st, &k);
        if (rc != STORE_OK && rc != STORE_EXISTS) {
            snprintf(err, errlen, "cannot write the store");
            return STORE_ERROR;
        }
        log_msg(LOG_INFO, "identities", "event=dkim_key_created domain=%s selector=%s "
                "algorithm=%s", d->domain, k.selector, k.algorithm);
    }
    return STORE_OK;
}
