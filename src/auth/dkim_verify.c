/* DKIM verification (RFC 6376 §6, RFC 8301, RFC 8463): every
 * DKIM-Signature field gets its own result. At the end of the header
 * section the signatures are parsed and their keys fetched through the
 * resolver; the body then streams through one hasher per distinct (c=, l=);
 * at the end body hashes and header signatures are checked. Also the
 * shared cache of parsed public keys. No I/O but the resolver's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rsa.h>

#include "auth/dkim_internal.h"
#include "dns/dns_rdata.h"

const EVP_MD *dkim_sha256(void);

/* ---- key cache ---- */

struct kc_entry {
    char *rec;
    size_t len;
    uint64_t hash;
    uint64_t used;
    struct dkim_key key;
};

struct dkim_keycache {
    pthread_mutex_t lock;
    size_t max, n;
    uint64_t tick;
    struct kc_entry *e;
};

struct dkim_keycache *dkim_keycache_new(size_t max_entries)
{
    struct dkim_keycache *c = calloc(1, sizeof *c);
    if (!c || max_entries == 0 || !(c->e = calloc(max_entries, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    c->max = max_entries;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void dkim_keycache_free(struct dkim_keycache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].rec);
        dkim_key_clear(&c->e[i].key);
    }
    free(c->e);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* A quick hash of the record, eight octets at a step (a byte-wise FNV-1a
 * of a 400-octet RSA record took 2% of a verification): it only sorts out
 * entries before the full comparison, so it need not be strong. */
static uint64_t rec_hash(const char *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 32);
}

/* A copy of the cached key (its own reference to the EVP_PKEY), or false. */
static bool kc_get(struct dkim_keycache *c, const char *rec, size_t len, uint64_t h,
                   struct dkim_key *out)
{
    bool found = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        struct kc_entry *e = &c->e[i];
        if (e->hash == h && e->len == len && memcmp(e->rec, rec, len) == 0) {
            if (dkim_key_dup(&e->key, out) == 0) {
                e->used = ++c->tick;
                found = true;
            }
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

static void kc_put(struct dkim_keycache *c, const char *rec, size_t len, uint64_t h,
                   const struct dkim_key *key)
{
    char *copy = malloc(len + 1);
    struct dkim_key mine;
    if (!copy)
        return;
    memcpy(copy, rec, len);
    if (dkim_key_dup(key, &mine) != 0) {
        free(copy);
        return;
    }
    pthread_mutex_lock(&c->lock);
    struct kc_entry *slot;
    if (c->n < c->max) {
        slot = &c->e[c->n++];
    } else {
        slot = &c->e[0];
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < slot->used)
                slot = &c->e[i];
        free(slot->rec);
        dkim_key_clear(&slot->key);
    }
    *slot = (struct kc_entry){ copy, len, h, ++c->tick, mine };
    pthread_mutex_unlock(&c->lock);
}

/* ---- verification ---- */

struct vsig {
    size_t result;        /* index in results */
    size_t field;         /* index of its field in fields */
    size_t body;          /* index in bodies */
    struct dkim_key key;
    struct dkim_sig sig;
};

struct hasher {
    enum dkim_canon canon;
    bool limited;
    uint64_t l;
    struct dkim_body b;
    unsigned char digest[DKIM_SHA256_LEN];
};

struct dkim_verify_ctx {
    struct dns_resolver *dns;
    struct dkim_clock clock;
    struct dkim_keycache *cache;
    struct mail_splitter split;
    bool eoh;
    bool oom;
    struct mail_field *fields;
    size_t nfields;
    struct dkim_signature_result *results;
    size_t nresults;
    struct vsig *vs[DKIM_MAX_SIGNATURES];
    size_t nvs;
    struct hasher *bodies[DKIM_MAX_SIGNATURES];
    size_t nbodies;
    struct buf txt;
    bool vs0_busy, h0_busy;
    /* Not zeroed at begin (dkim_verify_begin clears what precedes them).
     * The first signature and hasher live here: a message with one
     * signature needs no allocation for them. */
    struct mail_field few_fields[64];   /* most messages: no 32 KiB array */
    char txt_mem[DKIM_MAX_KEY_RECORD_LEN + 1];
    struct vsig vs0;
    struct hasher h0;
};

static struct vsig *vsig_new(struct dkim_verify_ctx *v)
{
    if (!v->vs0_busy) {
        v->vs0_busy = true;
        return &v->vs0;
    }
    return malloc(sizeof(struct vsig));
}

static void vsig_free(struct dkim_verify_ctx *v, struct vsig *s)
{
    dkim_key_clear(&s->key);
    if (s == &v->vs0)
        v->vs0_busy = false;
    else
        free(s);
}

struct dkim_verify_ctx *dkim_verify_begin(struct dns_resolver *dns, const struct dkim_clock *clock)
{
    struct dkim_verify_ctx *v = malloc(sizeof *v);
    if (!v)
        return NULL;
    memset(v, 0, offsetof(struct dkim_verify_ctx, few_fields));
    v->dns = dns;
    v->clock = *clock;
    mail_splitter_init(&v->split, MAIL_MAX_HEADER_SECTION);
    buf_init_fixed(&v->txt, v->txt_mem, sizeof v->txt_mem);
    return v;
}

void dkim_verify_set_keycache(struct dkim_verify_ctx *v, struct dkim_keycache *cache)
{
    v->cache = cache;
}

void dkim_verify_free(struct dkim_verify_ctx *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nvs; i++)
        vsig_free(v, v->vs[i]);
    for (size_t i = 0; i < v->nbodies; i++) {
        dkim_body_free(&v->bodies[i]->b);
        if (v->bodies[i] != &v->h0)
            free(v->bodies[i]);
    }
    free(v->results);
    if (v->fields != v->few_fields)
        free(v->fields);
    mail_splitter_free(&v->split);
    buf_free(&v->txt);
    free(v);
}

void dkim_results_free(struct dkim_results *r)
{
    free(r->sigs);
    r->sigs = NULL;
    r->count = 0;
}

__attribute__((format(printf, 3, 4)))
static void set(struct dkim_signature_result *r, enum dkim_result res, const char *fmt, ...)
{
    va_list ap;
    r->result = res;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

/* Fetches and checks the key of s; 0 when usable, else the result is set. */
static int fetch_key(struct dkim_verify_ctx *v, struct vsig *s, struct dkim_signature_result *r)
{
    char name[DNS_MAX_NAME_LEN + 2];
    size_t sl = strlen(s->sig.selector), dl = strlen(s->sig.domain);
    size_t n = sl + sizeof "._domainkey." - 1 + dl;
    if (n < sizeof name) {
        memcpy(name, s->sig.selector, sl);
        memcpy(name + sl, "._domainkey.", sizeof "._domainkey." - 1);
        memcpy(name + sl + sizeof "._domainkey." - 1, s->sig.domain, dl + 1);
    }
    if (n >= sizeof name || !dns_name_is_valid(name, n)) {
        set(r, DKIM_PERMERROR, "key name %s._domainkey.%s is not a valid DNS name",
            s->sig.selector, s->sig.domain);
        return -1;
    }
    struct dns_answer ans;
    dns_query(v->dns, name, DNS_T_TXT, &ans);
    int rc = -1;
    switch (ans.status) {
    case DNS_OK:
        break;
    case DNS_TEMPFAIL:
        set(r, DKIM_TEMPERROR, "DNS lookup of %s failed (timeout or server failure)", name);
        goto out;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
        set(r, DKIM_PERMERROR, "no key record at %s (%s)", name,
            ans.status == DNS_NXDOMAIN ? "NXDOMAIN" : "no TXT record");
        goto out;
    default:
        set(r, DKIM_PERMERROR, "key name %s cannot be looked up", name);
        goto out;
    }
    char why[600] = "";
    bool have = false;
    for (size_t i = 0; i < ans.count && !have; i++) {
        size_t nstr = 0;
        if (dns_rdata_txt(ans.rrs[i].data, ans.rrs[i].len, &v->txt, &nstr) != 0) {
            if (!why[0])
                snprintf(why, sizeof why, "key record at %s is malformed or longer than %d "
                                          "octets", name, DKIM_MAX_KEY_RECORD_LEN);
            continue;
        }
        const char *rec = v->txt.data ? v->txt.data : "";
        uint64_t h = 0;
        if (v->cache) {
            h = rec_hash(rec, v->txt.len);
            if (kc_get(v->cache, rec, v->txt.len, h, &s->key)) {
                have = true;
                break;
            }
        }
        char kwhy[160];
        if (dkim_key_parse(rec, v->txt.len, &s->key, kwhy, sizeof kwhy) != 0) {
            if (!why[0])
                snprintf(why, sizeof why, "%s (%s)", kwhy, name);
            continue;
        }
        have = true;
        if (v->cache)
            kc_put(v->cache, rec, v->txt.len, h, &s->key);
    }
    if (!have) {
        set(r, DKIM_PERMERROR, "%s", why[0] ? why : "no usable key record");
        goto out;
    }
    bool ed = s->sig.alg == DKIM_ALG_ED25519_SHA256;
    if (ed != (s->key.type == DKIM_KEY_ED25519)) {
        set(r, DKIM_PERMERROR, "key type k=%s does not match a=%s",
            s->key.type == DKIM_KEY_ED25519 ? "ed25519" : "rsa", s->sig.algorithm);
        goto out;
    }
    if (!s->key.sha256_ok) {
        set(r, DKIM_PERMERROR, "key record h= does not allow sha256");
        goto out;
    }
    r->testing = s->key.testing;
    if (s->key.strict) {
        const char *at = strrchr(s->sig.identity, '@');
        if (at && strcasecmp(at + 1, s->sig.domain) != 0) {
            set(r, DKIM_PERMERROR, "key has t=s: i= domain %s must be exactly d=%s", at + 1,
                s->sig.domain);
            goto out;
        }
    }
    rc = 0;
out:
    dns_answer_release(&ans);
    return rc;
}

static int body_for(struct dkim_verify_ctx *v, const struct dkim_sig *s, size_t *idx)
{
    for (size_t i = 0; i < v->nbodies; i++) {
        struct hasher *h = v->bodies[i];
        if (h->canon == s->bc && h->limited == s->has_l && (!s->has_l || h->l == s->l)) {
            *idx = i;
            return 0;
        }
    }
    /* Not calloc: dkim_body_init sets everything but its 8 KiB stage. */
    struct hasher *h = v->h0_busy ? malloc(sizeof *h) : &v->h0;
    if (!h)
        return -1;
    h->canon = s->bc;
    h->limited = s->has_l;
    h->l = s->l;
    int64_t lim = s->has_l ? (s->l > INT64_MAX ? INT64_MAX : (int64_t)s->l) : -1;
    if (dkim_body_init(&h->b, s->bc, lim, NULL) != 0) {
        if (h != &v->h0)
            free(h);
        return -1;
    }
    if (h == &v->h0)
        v->h0_busy = true;
    *idx = v->nbodies;
    v->bodies[v->nbodies++] = h;
    return 0;
}

int dkim_verify_eoh(struct dkim_verify_ctx *v)
{
    if (v->eoh)
        return v->oom ? -1 : 0;
    v->eoh = true;
    v->split.in_body = true;
    size_t count = 0;
    const char *head = v->split.head.data ? v->split.head.data : "";
    v->fields = v->few_fields;
    mail_header_fields(head, v->split.head.len, v->fields, sizeof v->few_fields /
                       sizeof v->few_fields[0], &count, NULL);
    if (count > sizeof v->few_fields / sizeof v->few_fields[0]) {
        v->fields = malloc(MAIL_MAX_HEADERS * sizeof *v->fields);
        if (!v->fields) {
            v->oom = true;
            return -1;
        }
        mail_header_fields(head, v->split.head.len, v->fields, MAIL_MAX_HEADERS, &count, NULL);
    }
    bool too_many = count > MAIL_MAX_HEADERS;
    v->nfields = too_many ? MAIL_MAX_HEADERS : count;
    size_t nsig = 0;
    for (size_t i = 0; i < v->nfields; i++)
        nsig += dkim_name_eq(v->fields[i].name, SV_LIT("DKIM-Signature"));
    if (nsig == 0)
        return 0;
    v->results = calloc(nsig, sizeof *v->results);
    if (!v->results) {
        v->oom = true;
        return -1;
    }
    struct dkim_sig *scratch_sig = NULL;
    for (size_t i = 0; i < v->nfields; i++) {
        if (!dkim_name_eq(v->fields[i].name, SV_LIT("DKIM-Signature")))
            continue;
        struct dkim_signature_result *r = &v->results[v->nresults++];
        bool evaluate = v->nvs < DKIM_MAX_SIGNATURES;
        struct vsig *s = NULL;
        struct dkim_sig *sig;
        if (evaluate) {
            /* Not zeroed (the struct is ~6 KiB, mostly h= names and b=):
             * dkim_sig_parse sets what is read later; the key starts empty. */
            s = vsig_new(v);
            if (!s) {
                v->oom = true;
                set(r, DKIM_TEMPERROR, "out of memory");
                continue;
            }
            memset(&s->key, 0, sizeof s->key);
            sig = &s->sig;
        } else {
            if (!scratch_sig && !(scratch_sig = malloc(sizeof *scratch_sig))) {
                v->oom = true;
                set(r, DKIM_TEMPERROR, "out of memory");
                continue;
            }
            sig = scratch_sig;
        }
        char why[200];
        int prc = dkim_sig_parse(v->fields[i].raw.p, v->fields[i].raw.len, sig, why, sizeof why);
        memcpy(r->domain, sig->domain, sizeof r->domain);
        memcpy(r->selector, sig->selector, sizeof r->selector);
        memcpy(r->algorithm, sig->algorithm, sizeof r->algorithm);
        memcpy(r->identity, sig->identity, sizeof r->identity);
        memcpy(r->b_prefix, sig->b_prefix, sizeof r->b_prefix);
        if (!evaluate) {
            set(r, DKIM_NEUTRAL, "not evaluated: more than %d signatures", DKIM_MAX_SIGNATURES);
            continue;
        }
        s->result = v->nresults - 1;
        s->field = i;
        bool keep = false;
        if (prc != 0) {
            set(r, DKIM_PERMERROR, "%s", why);
        } else if (v->split.overflow) {
            set(r, DKIM_PERMERROR, "header section larger than %d octets", MAIL_MAX_HEADER_SECTION);
        } else if (too_many) {
            set(r, DKIM_PERMERROR, "more than %d header fields", MAIL_MAX_HEADERS);
        } else if (sig->alg == DKIM_ALG_RSA_SHA1) {
            set(r, DKIM_POLICY, "rsa-sha1 signatures are not accepted (RFC 8301)");
        } else if (sig->has_x && (int64_t)sig->x < (int64_t)v->clock.now) {
            set(r, DKIM_PERMERROR, "signature expired at %llu (now %lld)",
                (unsigned long long)sig->x, (long long)v->clock.now);
        } else if (fetch_key(v, s, r) == 0) {
            if (body_for(v, sig, &s->body) != 0) {
                v->oom = true;
                set(r, DKIM_TEMPERROR, "out of memory");
            } else {
                keep = true;
            }
        }
        if (!keep) {
            vsig_free(v, s);
            continue;
        }
        v->vs[v->nvs++] = s;
    }
    free(scratch_sig);
    return v->oom ? -1 : 0;
}

int dkim_verify_header(struct dkim_verify_ctx *v, const char *field, size_t len)
{
    if (v->eoh || v->split.overflow)
        return 0;
    bool eol = len && field[len - 1] == '\n';
    size_t need = len + (eol ? 0 : 2);
    if (v->split.head.len + need > v->split.head.cap) {
        v->split.overflow = true;
        return 0;
    }
    if (buf_append(&v->split.head, field, len) != 0 ||
        (!eol && buf_append(&v->split.head, "\r\n", 2) != 0)) {
        v->oom = true;
        return -1;
    }
    return 0;
}

int dkim_verify_body(struct dkim_verify_ctx *v, const char *p, size_t len)
{
    if (!v->eoh && dkim_verify_eoh(v) != 0)
        return -1;
    for (size_t i = 0; i < v->nbodies; i++)
        if (dkim_body_update(&v->bodies[i]->b, p, len) != 0)
            v->oom = true;
    return v->oom ? -1 : 0;
}

int dkim_verify_write(struct dkim_verify_ctx *v, const char *p, size_t len)
{
    if (!v->eoh) {
        size_t used = mail_splitter_feed(&v->split, p, len);
        if (used == (size_t)-1) {
            v->oom = true;
            return -1;
        }
        if (!v->split.in_body)
            return 0;
        if (dkim_verify_eoh(v) != 0)
            return -1;
        p += used;
        len -= used;
    }
    return len ? dkim_verify_body(v, p, len) : 0;
}

static bool check_sig(struct vsig *s, const unsigned char digest[DKIM_SHA256_LEN])
{
    if (s->sig.alg == DKIM_ALG_ED25519_SHA256)
        return s->key.edctx &&
               EVP_DigestVerify(s->key.edctx, s->sig.b, s->sig.blen, digest, DKIM_SHA256_LEN) == 1;
    return s->key.vctx &&
           EVP_PKEY_verify(s->key.vctx, s->sig.b, s->sig.blen, digest, DKIM_SHA256_LEN) == 1;
}

int dkim_verify_finish(struct dkim_verify_ctx *v, struct dkim_results *out)
{
    out->count = 0;
    out->sigs = NULL;
    if (!v->eoh && dkim_verify_eoh(v) != 0 && !v->results)
        return -1;
    for (size_t i = 0; i < v->nbodies; i++)
        if (dkim_body_final(&v->bodies[i]->b, v->bodies[i]->digest) != 0)
            v->oom = true;
    for (size_t i = 0; i < v->nvs; i++) {
        struct vsig *s = v->vs[i];
        struct dkim_signature_result *r = &v->results[s->result];
        struct hasher *h = v->bodies[s->body];
        if (v->oom) {
            set(r, DKIM_TEMPERROR, "out of memory");
            continue;
        }
        if (s->sig.has_l && s->sig.l > h->b.total) {
            set(r, DKIM_FAIL, "l=%llu is longer than the body (%llu octets)",
                (unsigned long long)s->sig.l, (unsigned long long)h->b.total);
            continue;
        }
        if (memcmp(h->digest, s->sig.bh, DKIM_SHA256_LEN) != 0) {
            set(r, DKIM_FAIL, "body hash did not verify");
            continue;
        }
        /* The field with b= emptied. */
        const struct mail_field *f = &v->fields[s->field];
        struct buf sf;
        char stackbuf[2048];
        buf_init(&sf, DKIM_MAX_SIG_FIELD_LEN);
        if (f->raw.len < sizeof stackbuf)
            buf_init_fixed(&sf, stackbuf, sizeof stackbuf);
        unsigned char digest[DKIM_SHA256_LEN];
        if (buf_append(&sf, f->raw.p, s->sig.b_off) != 0 ||
            buf_append(&sf, f->raw.p + s->sig.b_off + s->sig.b_len,
                       f->raw.len - s->sig.b_off - s->sig.b_len) != 0 ||
            dkim_header_digest(s->sig.hc, v->fields, v->nfields, s->sig.names, s->sig.nnames,
                               sf.data, sf.len, NULL, digest) != 0) {
            buf_free(&sf);
            set(r, DKIM_TEMPERROR, "header hash failed");
            continue;
        }
        buf_free(&sf);
        if (check_sig(s, digest)) {
            r->result = DKIM_PASS;
            r->reason[0] = '\0';
        } else {
            set(r, DKIM_FAIL, "signature did not verify");
        }
    }
    out->count = v->nresults;
    out->sigs = v->results;
    v->results = NULL;
    v->nresults = 0;
    return 0;
}

int dkim_verify_message(struct dns_resolver *dns, const struct dkim_clock *clock,
                        const char *msg, size_t len, struct dkim_results *out)
{
    out->count = 0;
    out->sigs = NULL;
    struct dkim_verify_ctx *v = dkim_verify_begin(dns, clock);
    if (!v)
        return -1;
    size_t head_len, body_off;
    mail_split_message(msg, len, &head_len, &body_off);
    int rc = 0;
    if (head_len > MAIL_MAX_HEADER_SECTION) {
        v->split.overflow = true;
        /* keep the fields that fit */
        size_t cut = MAIL_MAX_HEADER_SECTION;
        while (cut > 0 && msg[cut - 1] != '\n')
            cut--;
        head_len = cut;
    }
    if (buf_append(&v->split.head, msg, head_len) != 0)
        rc = -1;
    if (rc == 0 && dkim_verify_eoh(v) != 0 && !v->results)
        rc = -1;
    if (rc == 0 && body_off < len && dkim_verify_body(v, msg + body_off, len - body_off) != 0)
        rc = -1;
    if (dkim_verify_finish(v, out) != 0)
        rc = -1;
    dkim_verify_free(v);
    return rc;
}
