/* Domain identities: name normalisation, adding a domain (token and DKIM
 * keys), key rotation, the custom MAIL FROM setting, deletion, and the
 * JSON the CLI and the API print (identities.h, docs/identities.md). The
 * DNS checks and the background checker are identity_check.c; the record
 * set itself is identity_records.c. */
#include "service/identities.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include <dirent.h>
#include <unistd.h>

#include "auth/dkim_signer.h"
#include "service/config.h"
#include "service/identities_internal.h"
#include "util/buf.h"
#include "util/log.h"

_Static_assert(2 * IDENTITY_TOKEN_BYTES <= STORE_TOKEN_MAX, "hex token must fit the store");
_Static_assert(IDENTITY_DOMAIN_MAX + (int)sizeof(IDENTITY_VERIFY_LABEL) == DNS_MAX_NAME_LEN,
               "_sesame.DOMAIN fits a DNS name");

/* What an unacceptable domain name shows of itself in the reason. */
#define NAME_SHOWN_MAX 64

void identity_env_init(struct identity_env *env, const struct sesame_config *cfg)
{
    memset(env, 0, sizeof *env);
    snprintf(env->mx_host, sizeof env->mx_host, "%s",
             cfg->identities_inbound_host[0] ? cfg->identities_inbound_host : cfg->hostname);
    if (cfg->identities_spf[0])
        snprintf(env->spf_terms, sizeof env->spf_terms, "%s", cfg->identities_spf);
    else
        snprintf(env->spf_terms, sizeof env->spf_terms, "a:%.280s", cfg->hostname);
    snprintf(env->data_dir, sizeof env->data_dir, "%s", cfg->data_dir);
    env->check_interval = cfg->identities_check_interval;
    env->verify_window = cfg->identities_verify_window;
    env->recheck_interval = cfg->identities_recheck_interval;
    env->missing_grace = cfg->identities_missing_grace;
    env->dkim_grace = cfg->identities_dkim_grace;
}

const char *identity_key_status_name(int status)
{
    switch (status) {
    case STORE_KEY_ACTIVE: return "active";
    case STORE_KEY_PENDING: return "pending";
    case STORE_KEY_GRACE: return "grace";
    case STORE_KEY_RETIRED: return "retired";
    }
    return "pending";
}

const char *identity_mail_from_behavior_name(int behavior)
{
    return behavior == STORE_MF_REJECT ? "reject" : "use_default";
}

int identity_mail_from_behavior_parse(const char *name)
{
    if (name && strcmp(name, "use_default") == 0)
        return STORE_MF_USE_DEFAULT;
    if (name && strcmp(name, "reject") == 0)
        return STORE_MF_REJECT;
    return -1;
}

void identity_report_address(const struct store_domain *d, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s@%s", IDENTITY_REPORT_LOCALPART,
             d->mail_from_domain[0] ? d->mail_from_domain : d->domain);
}

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


int identity_domain_add(struct store *st, const struct identity_env *env, int64_t account_id,
                        const char *domain, struct store_domain *out, bool *created,
                        char *err, size_t errlen)
{
    *created = false;
    char norm[DNS_MAX_NAME_LEN + 1];
    if (identity_domain_normalize(domain, norm, sizeof norm, err, errlen) != 0)
        return IDENTITY_BADNAME;
    int rc = store_domain_get(st, account_id, norm, out);
    if (rc == STORE_OK)
        return identity_domain_keys(st, env, out, err, errlen); /* keys left by a failed add */
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
    d.next_check_at = d.created_at + env->check_interval;
    if (new_token(d.verify_token, sizeof d.verify_token) != 0) {
        snprintf(err, errlen, "cannot make a random token (libsodium)");
        return STORE_ERROR;
    }
    rc = store_domain_insert(st, &d);
    if (rc == STORE_EXISTS) /* added meanwhile by another process: that one stands */
        rc = store_domain_get(st, account_id, norm, &d);
    else if (rc == STORE_OK)
        *created = true;
    if (rc != STORE_OK) {
        snprintf(err, errlen, "cannot write the store");
        return STORE_ERROR;
    }
    if (*created)
        log_msg(LOG_INFO, "identities", "event=domain_added account=%lld domain=%s",
                (long long)account_id, norm);
    *out = d;
    return identity_domain_keys(st, env, &d, err, errlen);
}

/* ---- DKIM keys ---- */

static int mkdir_0700(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* DATA_DIR/dkim/ACCOUNT_ID/DOMAIN, made (0700 each) when missing. Keys
 * are per account: two accounts adding the same domain never share one. */
static int key_dir(const struct identity_env *env, const struct store_domain *d, char *dir,
                   size_t dirlen, char *err, size_t errlen)
{
    if (strlen(env->data_dir) + strlen(d->domain) + 40 >= dirlen) {
        snprintf(err, errlen, "data_dir is too long");
        return -1;
    }
    for (int level = 0; level < 3; level++) {
        if (level == 0)
            snprintf(dir, dirlen, "%s/dkim", env->data_dir);
        else if (level == 1)
            snprintf(dir, dirlen, "%s/dkim/%lld", env->data_dir, (long long)d->account_id);
        else
            snprintf(dir, dirlen, "%s/dkim/%lld/%s", env->data_dir, (long long)d->account_id,
                     d->domain);
        if (mkdir_0700(dir) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* One new key of alg, recorded with status; the selector is sYYYYMMDD + r/e,
 * with a digit added when taken (a second rotation the same day). */
static int make_key(struct store *st, const struct identity_env *env, const struct store_domain *d,
                    enum dkim_algorithm alg, int status, int64_t now, char *err, size_t errlen)
{
    char dir[1200];
    if (key_dir(env, d, dir, sizeof dir, err, errlen) != 0)
        return STORE_ERROR;
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[16];
    strftime(day, sizeof day, "%Y%m%d", &tm);
    char suffix = alg == DKIM_ALG_ED25519_SHA256 ? 'e' : 'r';
    for (int n = 1; n <= 9; n++) {
        struct store_dkim_key k;
        memset(&k, 0, sizeof k);
        k.domain_id = d->id;
        if (n == 1)
            snprintf(k.selector, sizeof k.selector, "s%s%c", day, suffix);
        else
            snprintf(k.selector, sizeof k.selector, "s%s%c%d", day, suffix, n);
        snprintf(k.algorithm, sizeof k.algorithm, "%s", dkim_algorithm_name(alg));
        if ((size_t)snprintf(k.key_path, sizeof k.key_path, "%s/%s.pem", dir, k.selector) >=
            sizeof k.key_path) {
            snprintf(err, errlen, "data_dir is too long");
            return STORE_ERROR;
        }
        k.status = status;
        k.created_at = now;
        struct buf rec;
        buf_init(&rec, sizeof k.record - 1);
        char kerr[256];
        struct stat sb;
        enum dkim_status ks;
        if (stat(k.key_path, &sb) == 0) {
            /* left by an earlier attempt that did not reach the store */
            struct dkim_signer *sg = dkim_signer_load(k.key_path, kerr, sizeof kerr);
            ks = sg && dkim_signer_algorithm(sg) == alg && dkim_signer_record(sg, &rec) == 0
                     ? DKIM_OK : DKIM_ESYS;
            dkim_signer_free(sg);
            if (ks != DKIM_OK)
                snprintf(kerr, sizeof kerr, "an unusable file is in the way");
        } else {
            ks = dkim_keygen(alg, 0, false, k.key_path, &rec, kerr, sizeof kerr);
        }
        if (ks != DKIM_OK) {
            buf_free(&rec);
            snprintf(err, errlen, "cannot make the DKIM key %s: %s", k.key_path, kerr);
            return STORE_ERROR;
        }
        snprintf(k.record, sizeof k.record, "%s", buf_cstr(&rec));
        buf_free(&rec);
        int rc = store_dkim_key_insert(st, &k);
        if (rc == STORE_EXISTS)
            continue;   /* that selector is taken: the next one */
        if (rc != STORE_OK) {
            snprintf(err, errlen, "cannot write the store");
            return STORE_ERROR;
        }
        log_msg(LOG_INFO, "identities", "event=dkim_key_created domain=%s selector=%s "
                "algorithm=%s status=%s", d->domain, k.selector, k.algorithm,
                identity_key_status_name(status));
        return STORE_OK;
    }
    snprintf(err, errlen, "no free DKIM selector left for today: rotate again tomorrow");
    return STORE_EXISTS;
}

struct key_scan {
    int64_t now;
    size_t n, shown, pending;
    bool rsa_in_use, ed_in_use;  /* an active or pending key of that algorithm */
    char pending_names[160];
};

static int scan_cb(const struct store_dkim_key *k, void *arg)
{
    struct key_scan *s = arg;
    s->n++;
    if (k->status != STORE_KEY_RETIRED || k->retired_at >= s->now - IDENTITY_RETIRED_SHOWN_S)
        s->shown++;   /* what identity_load_keys lists (at most IDENTITY_MAX_KEYS) */
    if (k->status != STORE_KEY_ACTIVE && k->status != STORE_KEY_PENDING)
        return 0;
    bool ed = strcmp(k->algorithm, dkim_algorithm_name(DKIM_ALG_ED25519_SHA256)) == 0;
    if (ed)
        s->ed_in_use = true;
    else
        s->rsa_in_use = true;
    if (k->status == STORE_KEY_PENDING) {
        size_t used = strlen(s->pending_names);
        snprintf(s->pending_names + used, sizeof s->pending_names - used, "%s%s",
                 s->pending ? ", " : "", k->selector);
        s->pending++;
    }
    return 0;
}

int identity_domain_keys(struct store *st, const struct identity_env *env,
                         const struct store_domain *d, char *err, size_t errlen)
{
    struct key_scan scan = { .now = (int64_t)time(NULL) };
    if (store_dkim_key_list(st, d->id, scan_cb, &scan) != STORE_OK) {
        snprintf(err, errlen, "cannot read the store");
        return STORE_ERROR;
    }
    if (scan.n > 0)
        return STORE_OK;
    int64_t now = (int64_t)time(NULL);
    int rc = make_key(st, env, d, DKIM_ALG_RSA_SHA256, STORE_KEY_PENDING, now, err, errlen);
    if (rc == STORE_OK)
        rc = make_key(st, env, d, DKIM_ALG_ED25519_SHA256, STORE_KEY_PENDING, now, err, errlen);
    return rc == STORE_OK ? STORE_OK : STORE_ERROR;
}

int identity_domain_rotate(struct store *st, const struct identity_env *env,
                           struct store_domain *d, int64_t now, char *err, size_t errlen)
{
    struct key_scan scan = { .now = now };
    if (store_dkim_key_list(st, d->id, scan_cb, &scan) != STORE_OK) {
        snprintf(err, errlen, "cannot read the store");
        return STORE_ERROR;
    }
    if (scan.pending > 0) {
        snprintf(err, errlen, "a rotation is already waiting for %s to appear in DNS: publish "
                 "it and verify the domain, or wait for the background check", scan.pending_names);
        return STORE_EXISTS;
    }
    if (scan.shown + 2 > IDENTITY_MAX_KEYS) {
        snprintf(err, errlen, "%s has %zu keys in use or retired less than %d days ago: rotate "
                 "again once older ones have been retired that long", d->domain, scan.shown,
                 IDENTITY_RETIRED_SHOWN_S / 86400);
        return STORE_EXISTS;
    }
    bool rsa = scan.rsa_in_use || !scan.ed_in_use;   /* none in use: both */
    bool ed = scan.ed_in_use || !scan.rsa_in_use;
    int rc = STORE_OK;
    if (rsa)
        rc = make_key(st, env, d, DKIM_ALG_RSA_SHA256, STORE_KEY_PENDING, now, err, errlen);
    if (rc == STORE_OK && ed)
        rc = make_key(st, env, d, DKIM_ALG_ED25519_SHA256, STORE_KEY_PENDING, now, err, errlen);
    if (rc != STORE_OK)
        return rc;
    /* look for the new records soon */
    d->next_check_at = now + env->check_interval;
    d->check_attempts = 0;
    if (store_domain_update(st, d) != STORE_OK) {
        snprintf(err, errlen, "cannot write the store");
        return STORE_ERROR;
    }
    log_msg(LOG_INFO, "identities", "event=dkim_rotation_started account=%lld domain=%s",
            (long long)d->account_id, d->domain);
    return STORE_OK;
}

/* ---- the custom MAIL FROM domain ---- */

int identity_domain_set_mail_from(struct store *st, const struct identity_env *env,
                                  struct store_domain *d, const char *mail_from, int behavior,
                                  int64_t now, char *err, size_t errlen)
{
    char mf[DNS_MAX_NAME_LEN + 1] = "";
    if (mail_from && mail_from[0]) {
        if (identity_domain_normalize(mail_from, mf, sizeof mf, err, errlen) != 0)
            return IDENTITY_BADNAME;
        size_t ml = strlen(mf), dl = strlen(d->domain);
        if (ml <= dl + 1 || mf[ml - dl - 1] != '.' || strcmp(mf + ml - dl, d->domain) != 0) {
            snprintf(err, errlen, "the MAIL FROM domain must be a subdomain of %s (for example "
                     "bounce.%s)", d->domain, d->domain);
            return IDENTITY_BADNAME;
        }
        if (strncmp(mf, "_", 1) == 0 || strncmp(mf, IDENTITY_VERIFY_LABEL ".", 8) == 0) {
            snprintf(err, errlen, "the MAIL FROM domain must be a host name");
            return IDENTITY_BADNAME;
        }
    }
    if (behavior != STORE_MF_USE_DEFAULT && behavior != STORE_MF_REJECT) {
        snprintf(err, errlen, "behavior_on_mx_failure is use_default or reject");
        return IDENTITY_BADNAME;
    }
    if (strcmp(mf, d->mail_from_domain) != 0) {
        memcpy(d->mail_from_domain, mf, strlen(mf) + 1);
        d->mail_from_status = STORE_ID_PENDING;
        if (mf[0]) {
            d->next_check_at = now + env->check_interval;
            d->check_attempts = 0;
        }
    }
    d->mail_from_behavior = behavior;
    if (store_domain_update(st, d) != STORE_OK) {
        snprintf(err, errlen, "cannot write the store");
        return STORE_ERROR;
    }
    log_msg(LOG_INFO, "identities", "event=mail_from_set account=%lld domain=%s mail_from=%s "
            "behavior=%s", (long long)d->account_id, d->domain, mf[0] ? mf : "-",
            identity_mail_from_behavior_name(behavior));
    return STORE_OK;
}

/* ---- delete ---- */

struct path_list { char (*paths)[1024]; size_t n; };

static int path_cb(const struct store_dkim_key *k, void *arg)
{
    struct path_list *l = arg;
    if (l->n < IDENTITY_MAX_KEYS * 2)
        snprintf(l->paths[l->n++], sizeof l->paths[0], "%s", k->key_path);
    return 0;
}

int identity_domain_delete(struct store *st, const struct store_domain *d, char *err,
                           size_t errlen)
{
    struct path_list l = { calloc(IDENTITY_MAX_KEYS * 2, sizeof *l.paths), 0 };
    if (!l.paths) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    int rc = store_dkim_key_list(st, d->id, path_cb, &l);
    if (rc == STORE_OK)
        rc = store_domain_delete(st, d->account_id, d->id);
    if (rc != STORE_OK) {
        free(l.paths);
        snprintf(err, errlen, rc == STORE_NOTFOUND ? "no such domain" : "cannot write the store");
        return rc;
    }
    /* the rows are gone: now the private keys (and their directory) */
    char dir[1024] = "";
    for (size_t i = 0; i < l.n; i++) {
        if (unlink(l.paths[i]) != 0 && errno != ENOENT)
            log_msg(LOG_WARN, "identities", "event=key_unlink_failed path=\"%s\" error=\"%s\"",
                    l.paths[i], strerror(errno));
        char *slash = strrchr(l.paths[i], '/');
        if (slash) {
            *slash = '\0';
            snprintf(dir, sizeof dir, "%s", l.paths[i]);
        }
    }
    free(l.paths);
    if (dir[0])
        (void)rmdir(dir);   /* empty unless something else is in it: then it stays */
    log_msg(LOG_INFO, "identities", "event=domain_deleted account=%lld domain=%s keys=%zu",
            (long long)d->account_id, d->domain, l.n);
    return STORE_OK;
}

/* ---- JSON ---- */

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


static int key_json_cb(const struct store_dkim_key *k, void *arg)
{
    struct key_json *kj = arg;
    if (k->status == STORE_KEY_RETIRED && k->retired_at < kj->now - IDENTITY_RETIRED_SHOWN_S)
        return 0;
    if (kj->n >= IDENTITY_MAX_KEYS)
        return 0;
    kj->rows[kj->n] = *k;
    json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:o}", "selector", k->selector, "algorithm",
                          k->algorithm, "status", identity_key_status_name(k->status),
                          "published_at", time_json(k->published_at),
                          k->status == STORE_KEY_RETIRED ? "retired_at" : "retire_at",
                          time_json(k->status == STORE_KEY_GRACE ||
                                    k->status == STORE_KEY_RETIRED ? k->retired_at : 0));
    if (!j || json_array_append_new(kj->arr, j) != 0)
        kj->failed = true;
    kj->n++;
    return 0;
}

int identity_load_keys(struct store *st, const struct store_domain *d, int64_t now,
                       struct key_json *kj)
{
    memset(kj, 0, sizeof *kj);
    kj->arr = json_array();
    kj->rows = calloc(IDENTITY_MAX_KEYS, sizeof *kj->rows);
    kj->now = now;
    kj->failed = !kj->arr || !kj->rows;
    if (kj->failed || store_dkim_key_list(st, d->id, key_json_cb, kj) != STORE_OK || kj->failed) {
        identity_keys_free(kj);
        return -1;
    }
    for (size_t i = 0; i < kj->n; i++)
        kj->keys[i] = (struct idrec_key){ kj->rows[i].selector, kj->rows[i].record,
                                          kj->rows[i].status, kj->rows[i].retired_at };
    return 0;
}

void identity_keys_free(struct key_json *kj)
{
    json_decref(kj->arr);
    free(kj->rows);
    kj->arr = NULL;
    kj->rows = NULL;
}

void identity_records_input(const struct identity_env *env, const struct store_domain *d,
                            const struct idrec_key *keys, size_t nkeys, char *report,
                            size_t reportlen, struct idrec_input *in)
{
    identity_report_address(d, report, reportlen);
    *in = (struct idrec_input){
        .domain = d->domain, .token = d->verify_token, .mail_from_domain = d->mail_from_domain,
        .mx_host = env->mx_host, .spf_terms = env->spf_terms, .report_address = report,
        .keys = keys, .nkeys = nkeys,
    };
}

json_t *identity_domain_json(struct store *st, const struct identity_env *env,
                             const struct store_domain *d)
{
    struct key_json kj;
    if (identity_load_keys(st, d, (int64_t)time(NULL), &kj) != 0)
        return NULL;
    char report[DNS_MAX_NAME_LEN + 32];
    struct idrec_input in;
    identity_records_input(env, d, kj.keys, kj.n, report, sizeof report, &in);
    struct idrec_list recs = { 0 };
    char *last = NULL;
    if (identity_records_build(&in, NULL, &recs) != 0 ||
        store_domain_records_get(st, d->id, &last) != STORE_OK) {
        identity_records_free(&recs);
        identity_keys_free(&kj);
        free(last);
        return NULL;
    }
    json_t *seen = last[0] ? json_loads(last, 0, NULL) : NULL;
    free(last);
    if (seen)
        identity_records_overlay(&recs, seen);
    json_decref(seen);
    json_t *records = identity_records_json(&recs);
    identity_records_free(&recs);
    json_t *mf = json_null();
    if (d->mail_from_domain[0])
        mf = json_pack("{s:s, s:s, s:s}", "domain", d->mail_from_domain, "status",
                       identity_status_name(d->mail_from_status), "behavior_on_mx_failure",
                       identity_mail_from_behavior_name(d->mail_from_behavior));
    json_t *dkim = kj.arr;
    kj.arr = NULL;
    identity_keys_free(&kj);
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}",
                     "domain", d->domain, "status", identity_status_name(d->status),
                     "records", records, "dkim", dkim, "mail_from", mf,
                     "mail_from_domain", d->mail_from_domain[0] ? json_string(d->mail_from_domain)
                                                                : json_null(),
                     "verified_at", time_json(d->verified_at),
                     "checked_at", time_json(d->checked_at),
                     "next_check_at", time_json(d->next_check_at),
                     "records_missing_since", time_json(d->missing_since),
                     "dmarc_report_address", report);
}
