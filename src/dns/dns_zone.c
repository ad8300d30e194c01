/* The in-memory zone of dns_zone.h: an open-addressing hash table of owner
 * names (lower case, no trailing dot), each with its RRsets, its CNAME
 * target and a "times out" flag; the JSON loader (jansson); and the
 * resolver answering from a zone.
 *
 * Lookups do not allocate and do not lock: any number of threads may look
 * up (or run zone resolvers on) a zone nobody changes. Changing a zone needs
 * exclusive access: the test DNS server offers testdns_lock()/
 * testdns_set_zone() for that. It does no wildcards, no delegations, no
 * DNSSEC, and does not interpret escapes in names (see dns_name_is_valid). */
#include "dns/dns_zone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns_rdata.h"
#include "util/buf.h"
#include "util/limits.h"
#include "util/strview.h"

#define ZONE_MIN_SLOTS   64
#define ZONE_FILE_MAX    (64u * 1024 * 1024) /* a zone file larger is a mistake */
#define WIRE_NAME_MAX    (DNS_MAX_NAME_LEN + 2)
#define RDATA_MAX        65535u               /* RDLENGTH is 16 bits */

struct zone_rrset {
    uint16_t type;
    struct dns_rr *rrs;   /* rrs[i].data is owned (malloc'd) */
    size_t count, cap;
};

struct zone_node {
    char *name;           /* lower case, no trailing dot */
    size_t namelen;
    uint64_t hash;
    int timeout;
    char *cname;          /* target of the first CNAME, as written, or NULL */
    struct zone_rrset *sets;
    size_t nsets, capsets;
};

struct dns_zone {
    struct zone_node **slots; /* power-of-two sized, linear probing */
    size_t nslots;
    size_t count;
};

/* ---- names and hashing ------------------------------------------------ */

/* Lower-cases name (ASCII only, as DNS compares) into out without the
 * trailing dot. Returns the length, or -1 when the name is not valid. */
/* The lookup key of name (lower case, no trailing dot) and its FNV-1a
 * hash, in one pass. validate: check the name first (names that came
 * through dns_query were checked there already). */
static int zone_key_hash(const char *name, char out[WIRE_NAME_MAX], bool validate,
                         uint64_t *hash)
{
    if (!name)
        return -1;
    size_t len = strlen(name);
    if (validate && !dns_name_is_valid(name, len))
        return -1;
    if (len && name[len - 1] == '.')
        len--;
    if (len >= WIRE_NAME_MAX)
        return -1;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        c = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        out[i] = c;
        h = (h ^ (unsigned char)c) * 1099511628211ULL;
    }
    out[len] = '\0';
    *hash = h;
    return (int)len;
}

static int zone_key(const char *name, char out[WIRE_NAME_MAX])
{
    uint64_t h;
    return zone_key_hash(name, out, true, &h);
}

static uint64_t zone_hash(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, as zone_key_hash */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return h;
}

static struct zone_node *zone_find(const struct dns_zone *z, const char *key,
                                   size_t len, uint64_t h)
{
    if (!z->nslots)
        return NULL;
    size_t mask = z->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct zone_node *n = z->slots[i];
        if (!n)
            return NULL;
        if (n->hash == h && n->namelen == len && memcmp(n->name, key, len) == 0)
            return n;
    }
}

static int zone_grow(struct dns_zone *z)
{
    size_t nslots = z->nslots ? z->nslots * 2 : ZONE_MIN_SLOTS;
    struct zone_node **slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < z->nslots; i++) {
        struct zone_node *n = z->slots[i];
        if (!n)
            continue;
        size_t j = (size_t)n->hash & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = n;
    }
    free(z->slots);
    z->slots = slots;
    z->nslots = nslots;
    return 0;
}

/* Finds or creates the node of name; NULL on a bad name or no memory. */
static struct zone_node *zone_node_get(struct dns_zone *z, const char *name)
{
    char key[WIRE_NAME_MAX];
    int len = zone_key(name, key);
    if (len < 0)
        return NULL;
    uint64_t h = zone_hash(key, (size_t)len);
    struct zone_node *n = zone_find(z, key, (size_t)len, h);
    if (n)
        return n;
    if ((z->count + 1) * 2 > z->nslots && zone_grow(z) != 0)
        return NULL;
    n = calloc(1, sizeof(*n));
    if (!n || !(n->name = strdup(key))) {
        free(n);
        return NULL;
    }
    n->namelen = (size_t)len;
    n->hash = h;
    size_t mask = z->nslots - 1;
    size_t i = (size_t)h & mask;
    while (z->slots[i])
        i = (i + 1) & mask;
    z->slots[i] = n;
    z->count++;
    return n;
}

static void zone_node_free(struct zone_node *n)
{
    for (size_t i = 0; i < n->nsets; i++) {
        for (size_t j = 0; j < n->sets[i].count; j++)
            free((void *)n->sets[i].rrs[j].data);
        free(n->sets[i].rrs);
    }
    free(n->sets);
    free(n->cname);
    free(n->name);
    free(n);
}

/* ---- building --------------------------------------------------------- */

struct dns_zone *dns_zone_new(void)
{
    return calloc(1, sizeof(struct dns_zone));
}

void dns_zone_free(struct dns_zone *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->nslots; i++)
        if (z->slots[i])
            zone_node_free(z->slots[i]);
    free(z->slots);
    free(z);
}

int dns_zone_add_rdata(struct dns_zone *z, const char *name, uint16_t type,
                       const uint8_t *rdata, size_t len)
{
    char target[WIRE_NAME_MAX + 1];
    if (!z || (!rdata && len) || len > RDATA_MAX)
        return -1;
    if (type == DNS_T_CNAME && dns_rdata_ptr(rdata, len, target, sizeof(target)) != 0)
        return -1;
    struct zone_node *n = zone_node_get(z, name);
    if (!n)
        return -1;
    struct zone_rrset *set = NULL;
    for (size_t i = 0; i < n->nsets; i++)
        if (n->sets[i].type == type)
            set = &n->sets[i];
    if (!set) {
        if (n->nsets == n->capsets) {
            size_t cap = n->capsets ? n->capsets * 2 : 2;
            struct zone_rrset *sets = realloc(n->sets, cap * sizeof(*sets));
            if (!sets)
                return -1;
            n->sets = sets;
            n->capsets = cap;
        }
        set = &n->sets[n->nsets++];
        memset(set, 0, sizeof(*set));
        set->type = type;
    }
    /* An RRset is a set: the same rdata twice is one record. */
    for (size_t i = 0; i < set->count; i++)
        if (set->rrs[i].len == len && (len == 0 || memcmp(set->rrs[i].data, rdata, len) == 0))
            return 0;
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1;
        struct dns_rr *rrs = realloc(set->rrs, cap * sizeof(*rrs));
        if (!rrs)
            return -1;
        set->rrs = rrs;
        set->cap = cap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    if (len)
        memcpy(copy, rdata, len);
    if (type == DNS_T_CNAME && !n->cname && !(n->cname = strdup(target))) {
        free(copy);
        return -1;
    }
    set->rrs[set->count].data = copy;
    set->rrs[set->count].len = len;
    set->count++;
    return 0;
}

int dns_zone_add_timeout(struct dns_zone *z, const char *name)
{
    struct zone_node *n = z ? zone_node_get(z, name) : NULL;
    if (!n)
        return -1;
    n->timeout = 1;
    return 0;
}

int dns_zone_add_empty(struct dns_zone *z, const char *name)
{
    return z && zone_node_get(z, name) ? 0 : -1;
}

/* TXT rdata from strings, each at most 255 octets; no string at all is
 * one empty string (a TXT rdata cannot be empty). */
static int txt_append(struct buf *rd, const char *s, size_t len)
{
    if (len > DNS_MAX_TXT_STRING)
        return -1;
    if (buf_append_char(rd, (char)(unsigned char)len) != 0 || buf_append(rd, s, len) != 0)
        return -1;
    return 0;
}

static int name_rdata(struct buf *rd, const char *name)
{
    uint8_t wire[WIRE_NAME_MAX];
    int n = dns_wire_name(name, wire, sizeof(wire));
    if (n < 0)
        return -1;
    return buf_append(rd, wire, (size_t)n);
}

static int mx_rdata(struct buf *rd, unsigned long pref, const char *host)
{
    if (pref > 0xffff)
        return -1;
    char p[2] = { (char)(pref >> 8), (char)(pref & 0xff) };
    if (buf_append(rd, p, 2) != 0)
        return -1;
    return name_rdata(rd, host);
}

static int addr_rdata(struct buf *rd, int af, const char *text)
{
    uint8_t a[16];
    if (!text || inet_pton(af, text, a) != 1)
        return -1;
    return buf_append(rd, a, af == AF_INET ? 4 : 16);
}

int dns_zone_add(struct dns_zone *z, const char *name, const char *type,
                 const char *value)
{
    if (!z || !name || !type)
        return -1;
    if (strcasecmp(type, "TIMEOUT") == 0)
        return dns_zone_add_timeout(z, name);
    int t = dns_type_from_name(type);
    if (t < 0 || (!value && t != DNS_T_TXT && t != DNS_T_SPF))
        return -1;
    struct buf rd;
    buf_init(&rd, RDATA_MAX);
    int rc = -1;
    switch (t) {
    case DNS_T_TXT:
    case DNS_T_SPF: {
        /* One string; longer than 255 octets it is split in 255-octet
         * character-strings, as published DKIM keys are. */
        size_t len = value ? strlen(value) : 0, off = 0;
        rc = 0;
        do {
            size_t l = len - off > DNS_MAX_TXT_STRING ? DNS_MAX_TXT_STRING : len - off;
            rc = txt_append(&rd, value ? value + off : "", l);
            off += l;
        } while (rc == 0 && off < len);
        break;
    }
    case DNS_T_A:
        rc = addr_rdata(&rd, AF_INET, value);
        break;
    case DNS_T_AAAA:
        rc = addr_rdata(&rd, AF_INET6, value);
        break;
    case DNS_T_MX: {
        struct sv v = sv_cstr(value);
        size_t sp = sv_find(v, ' ');
        unsigned long pref;
        if (sp < v.len && sv_to_uint(sv_sub(v, 0, sp), 0xffff, &pref)) {
            while (value[sp] == ' ')
                sp++;
            rc = mx_rdata(&rd, pref, value + sp);
        }
        break;
    }
    case DNS_T_PTR:
    case DNS_T_CNAME:
    case DNS_T_NS:
        rc = name_rdata(&rd, value);
        break;
    default:
        break;
    }
    if (rc == 0)
        rc = dns_zone_add_rdata(z, name, (uint16_t)t, (const uint8_t *)rd.data, rd.len);
    buf_free(&rd);
    return rc;
}

/* ---- JSON ------------------------------------------------------------- */

static int load_record(struct dns_zone *z, const char *name, const json_t *rec,
                       char *err, size_t errlen)
{
    const json_t *jt = json_is_object(rec) ? json_object_get(rec, "type") : NULL;
    const char *type = json_string_value(jt);
    if (!type) {
        snprintf(err, errlen, "%s: a record must be an object with a \"type\"", name);
        return -1;
    }
    if (strcmp(type, "TIMEOUT") == 0) {
        if (dns_zone_add_timeout(z, name) != 0) {
            snprintf(err, errlen, "%s: out of memory", name);
            return -1;
        }
        return 0;
    }
    int t = dns_type_from_name(type);
    const json_t *v = json_object_get(rec, "value");
    if (t < 0 || t == DNS_T_SOA) {
        snprintf(err, errlen, "%s: unsupported record type \"%s\"", name, type);
        return -1;
    }
    if (!v) {
        snprintf(err, errlen, "%s: %s record without a \"value\"", name, type);
        return -1;
    }
    struct buf rd;
    buf_init(&rd, RDATA_MAX);
    const char *what = "bad value";
    int rc = -1;
    switch (t) {
    case DNS_T_TXT:
    case DNS_T_SPF:
        what = "value must be a string or an array of strings";
        if (json_is_string(v) || json_is_array(v)) {
            size_t i, n = json_is_string(v) ? 1 : json_array_size(v);
            rc = 0;
            for (i = 0; i < n && rc == 0; i++) {
                const json_t *s = json_is_string(v) ? v : json_array_get(v, i);
                rc = -1;
                if (!json_is_string(s))
                    break;
                if (json_string_length(s) > DNS_MAX_TXT_STRING)
                    what = "a string is longer than 255 bytes";
                else if ((rc = txt_append(&rd, json_string_value(s), json_string_length(s))) != 0)
                    what = "the record is longer than 65535 bytes";
            }
            if (rc == 0 && n == 0)
                rc = txt_append(&rd, "", 0); /* [] is one empty string */
        }
        break;
    case DNS_T_A:
    case DNS_T_AAAA:
        what = t == DNS_T_A ? "value must be an IPv4 address" : "value must be an IPv6 address";
        if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
            rc = addr_rdata(&rd, t == DNS_T_A ? AF_INET : AF_INET6, json_string_value(v));
        break;
    case DNS_T_MX: {
        what = "value must be [preference 0..65535, \"host\"]";
        const json_t *p = json_array_get(v, 0), *h = json_array_get(v, 1);
        if (json_array_size(v) == 2 && json_is_integer(p) && json_is_string(h) &&
            json_integer_value(p) >= 0 && json_integer_value(p) <= 0xffff &&
            strlen(json_string_value(h)) == json_string_length(h))
            rc = mx_rdata(&rd, (unsigned long)json_integer_value(p), json_string_value(h));
        break;
    }
    default: /* PTR, CNAME, NS */
        what = "value must be a domain name";
        if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
            rc = name_rdata(&rd, json_string_value(v));
        break;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s: %s", name, type, what);
    } else if (dns_zone_add_rdata(z, name, (uint16_t)t, (const uint8_t *)rd.data, rd.len) != 0) {
        snprintf(err, errlen, "%s: %s: cannot add the record", name, type);
        rc = -1;
    }
    buf_free(&rd);
    return rc;
}

int dns_zone_load_object(struct dns_zone *z, const struct json_t *obj,
                         char *err, size_t errlen)
{
    const char *name;
    json_t *recs;
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (!z || !json_is_object(obj)) {
        snprintf(err, errlen, "a zone must be a JSON object {\"name\": [records]}");
        return -1;
    }
    json_object_foreach((json_t *)obj, name, recs) {
        size_t len = strlen(name);
        if (!dns_name_is_valid(name, len)) {
            snprintf(err, errlen, "%s: not a valid domain name", name);
            return -1;
        }
        if (!json_is_array(recs)) {
            snprintf(err, errlen, "%s: records must be an array", name);
            return -1;
        }
        if (dns_zone_add_empty(z, name) != 0) {
            snprintf(err, errlen, "%s: out of memory", name);
            return -1;
        }
        size_t i;
        const json_t *rec;
        json_array_foreach(recs, i, rec) {
            if (load_record(z, name, rec, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

int dns_zone_load_json(struct dns_zone *z, const char *json, size_t len,
                       char *err, size_t errlen)
{
    json_error_t je;
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    json_t *root = json ? json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je) : NULL;
    if (!root) {
        snprintf(err, errlen, "JSON line %d column %d: %s", json ? je.line : 0,
                 json ? je.column : 0, json ? je.text : "no input");
        return -1;
    }
    int rc = dns_zone_load_object(z, root, err, errlen);
    json_decref(root);
    return rc;
}

int dns_zone_load_file(struct dns_zone *z, const char *path, char *err,
                       size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path ? path : "(null)", strerror(errno));
        return -1;
    }
    struct buf b;
    buf_init(&b, ZONE_FILE_MAX);
    char chunk[16384];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (buf_append(&b, chunk, n) != 0) {
            snprintf(err, errlen, "%s: larger than %u bytes", path, ZONE_FILE_MAX);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    fclose(f);
    if (rc == 0) {
        char inner[512];
        rc = dns_zone_load_json(z, buf_cstr(&b), b.len, inner, sizeof(inner));
        if (rc != 0)
            snprintf(err, errlen, "%s: %s", path, inner);
    }
    buf_free(&b);
    return rc;
}

/* ---- lookups ---------------------------------------------------------- */

static enum dns_status zone_lookup(const struct dns_zone *z, const char *name, bool validate,
                                   uint16_t type, const struct dns_rr **rrs, size_t *count,
                                   const char **cname)
{
    if (rrs)
        *rrs = NULL;
    if (count)
        *count = 0;
    if (cname)
        *cname = NULL;
    char key[WIRE_NAME_MAX];
    uint64_t h = 0;
    int len = z ? zone_key_hash(name, key, validate, &h) : -1;
    if (len < 0)
        return DNS_NXDOMAIN;
    const struct zone_node *n = zone_find(z, key, (size_t)len, h);
    if (!n)
        return DNS_NXDOMAIN;
    if (cname)
        *cname = n->cname;
    for (size_t i = 0; i < n->nsets; i++) {
        if (n->sets[i].type == type && n->sets[i].count) {
            if (rrs)
                *rrs = n->sets[i].rrs;
            if (count)
                *count = n->sets[i].count;
            return DNS_OK;
        }
    }
    return n->timeout ? DNS_TEMPFAIL : DNS_NODATA;
}

enum dns_status dns_zone_lookup(const struct dns_zone *z, const char *name,
                                uint16_t type, const struct dns_rr **rrs,
                                size_t *count, const char **cname)
{
    return zone_lookup(z, name, true, type, rrs, count, cname);
}

static enum dns_status zone_resolve(const struct dns_zone *z, const char *name, bool validate,
                                   uint16_t type, const struct dns_rr **rrs, size_t *count)
{
    const char *cur = name, *cname;
    const struct dns_rr *r;
    size_t n;
    if (rrs)
        *rrs = NULL;
    if (count)
        *count = 0;
    for (unsigned hops = 0;; hops++) {
        /* CNAME targets come from the zone and were checked when added */
        enum dns_status st = zone_lookup(z, cur, validate && hops == 0, type, &r, &n, &cname);
        if (st == DNS_OK) {
            if (rrs)
                *rrs = r;
            if (count)
                *count = n;
            return DNS_OK;
        }
        if (!cname || type == DNS_T_CNAME)
            return st;
        if (hops == DNS_MAX_CNAME_CHAIN)
            return DNS_TEMPFAIL; /* a loop, or a chain too long */
        cur = cname;
    }
}

enum dns_status dns_zone_resolve(const struct dns_zone *z, const char *name,
                                 uint16_t type, const struct dns_rr **rrs,
                                 size_t *count)
{
    return zone_resolve(z, name, true, type, rrs, count);
}

/* ---- the zone resolver ------------------------------------------------ */

struct zone_resolver {
    struct dns_resolver base;
    const struct dns_zone *zone;
    atomic_ulong queries;
};

static void zres_query(struct dns_resolver *r, const char *name, uint16_t type,
                       struct dns_answer *out)
{
    struct zone_resolver *zr = (struct zone_resolver *)r;
    atomic_fetch_add_explicit(&zr->queries, 1, memory_order_relaxed);
    const struct dns_rr *rrs;
    size_t count;
    /* dns_query checked the name already */
    out->status = zone_resolve(zr->zone, name, false, type, &rrs, &count);
    out->rrs = out->status == DNS_OK ? rrs : NULL;
    out->count = out->status == DNS_OK ? count : 0;
    out->release = NULL; /* the records belong to the zone */
    out->priv = NULL;
}

static void zres_destroy(struct dns_resolver *r)
{
    free(r);
}

static const struct dns_resolver_ops zone_resolver_ops = {
    .query = zres_query,
    .destroy = zres_destroy,
};

struct dns_resolver *dns_zone_resolver_new(const struct dns_zone *z)
{
    if (!z)
        return NULL;
    struct zone_resolver *zr = calloc(1, sizeof(*zr));
    if (!zr)
        return NULL;
    zr->base.ops = &zone_resolver_ops;
    zr->zone = z;
    atomic_init(&zr->queries, 0);
    return &zr->base;
}

unsigned long dns_zone_resolver_queries(const struct dns_resolver *r)
{
    if (!r || r->ops != &zone_resolver_ops)
        return 0;
    const struct zone_resolver *zr = (const struct zone_resolver *)r;
    return atomic_load_explicit(&((struct zone_resolver *)zr)->queries, memory_order_relaxed);
}
