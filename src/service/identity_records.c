/* The DNS record set of a domain identity (identity_records.h): the records
 * an account publishes for a sending domain, each checked against what DNS
 * publishes now, with a reason for a person; SPF and DMARC records the
 * domain already has are merged with sesame's terms rather than doubled.
 * The JSON (with zone-file lines) and the overlay of last-seen states.
 * docs/identity_records.md describes every check, reason and merge rule.
 *
 * It does not: read or write the store, decide a domain's status, or
 * evaluate SPF for an address (it only counts the DNS-querying terms a
 * record would cost a receiver). DNS text is untrusted: every TXT goes
 * through dns_rdata_txt, values taken from it are made printable ASCII and
 * text quoted in reasons is truncated. */
#include "service/identity_records.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/dkim_internal.h"
#include "auth/dmarc.h"
#include "auth/doctor_internal.h"
#include "auth/spf_internal.h"
#include "dns/dns_rdata.h"
#include "service/identities.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/strview.h"
#include "util/utf8.h"

#define ZONE_TTL           3600  /* TTL printed in zone-file lines */
#define SHOWN_MAX          80    /* DNS text quoted in a reason (doc_excerpt: + 4) */
#define MX_SHOWN           3     /* exchanges named in a reason */
#define TXT_RECORDS_MAX    64    /* TXT records of one name looked at */
#define OUR_TERMS_MAX      32    /* terms of spf_terms used */
#define MERGE_TOKENS_MAX   512   /* terms gathered when merging several SPF records */
#define MERGE_MODS_MAX     16    /* unknown modifiers kept when merging */
#define COUNT_MAX_DEPTH    10    /* include/redirect nesting followed when counting */
#define COUNT_MAX_RECORDS  40    /* records fetched to count one record's lookups */

static const char DMARC_ADVICE[] =
    "move to p=quarantine, then p=reject, once every legitimate source passes";

const char *identity_record_purpose_name(enum idrec_purpose p)
{
    switch (p) {
    case IDREC_VERIFICATION: return "verification";
    case IDREC_DKIM: return "dkim";
    case IDREC_SPF: return "spf";
    case IDREC_DMARC: return "dmarc";
    case IDREC_MAIL_FROM_MX: return "mail_from_mx";
    case IDREC_MAIL_FROM_SPF: return "mail_from_spf";
    case IDREC_INBOUND_MX: return "inbound_mx";
    }
    return "unknown";
}

const char *identity_record_state_name(enum idrec_state s)
{
    switch (s) {
    case IDREC_UNCHECKED: return "unchecked";
    case IDREC_OK: return "ok";
    case IDREC_MISSING: return "missing";
    case IDREC_WRONG: return "wrong";
    case IDREC_TEMPFAIL: return "tempfail";
    case IDREC_REMOVE: return "remove";
    }
    return "unchecked";
}

/* ---- small helpers ---- */

static bool printable(unsigned char c) { return c >= 0x20 && c < 0x7f; }

/* Cuts s back to whole UTF-8 characters (a cut reason may end inside
 * one: our own texts hold a few, "§"; text from DNS is ASCII by then). */
static void utf8_cut(char *s)
{
    size_t n = strlen(s);
    while (n && !utf8_valid(s, n))
        n--;
    s[n] = '\0';
}

/* Appends to the reason; what does not fit is cut. */
__attribute__((format(printf, 2, 3)))
static void reason_add(struct idrec *r, const char *fmt, ...)
{
    size_t used = strnlen(r->reason, sizeof r->reason);
    if (used + 1 >= sizeof r->reason)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->reason + used, sizeof r->reason - used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof r->reason - used)
        utf8_cut(r->reason);
}

/* Formats into out (size outlen); false when it did not fit. */
__attribute__((format(printf, 3, 4)))
static bool fmt_fits(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < outlen;
}

/* Sets the value from DNS-derived text: printable ASCII ('?' for other
 * octets). False (value unchanged) when it does not fit. */
static bool set_value(struct idrec *r, const char *s, size_t len)
{
    if (len >= sizeof r->value)
        return false;
    for (size_t i = 0; i < len; i++)
        r->value[i] = printable((unsigned char)s[i]) ? s[i] : '?';
    r->value[len] = '\0';
    return true;
}

/* Name without its trailing dot, as a view. */
static struct sv bare_name(const char *s)
{
    struct sv v = sv_cstr(s ? s : "");
    if (v.len && v.p[v.len - 1] == '.')
        v.len--;
    return v;
}

static void fmt_time(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "%s", "?");
}

static void set_tempfail(struct idrec *r, enum dns_status st)
{
    if (st == DNS_BADNAME) {
        r->state = IDREC_WRONG;
        reason_add(r, "%s is not a valid DNS name", r->name);
        return;
    }
    r->state = IDREC_TEMPFAIL;
    reason_add(r, "no answer from DNS for %s; try again later", r->name);
}

/* ---- TXT records of a name ---- */

struct txt { char *s; size_t len; };
struct txts {
    enum dns_status status;
    size_t n;                   /* decodable records (malformed ones are left out) */
    struct txt v[TXT_RECORDS_MAX];
};

static void txts_free(struct txts *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].s);
    t->n = 0;
}

/* Returns 0, or -1 when memory ran out (t is then empty). */
static int fetch_txt(struct dns_resolver *dns, const char *name, struct txts *t)
{
    t->n = 0;
    struct dns_answer a;
    dns_query(dns, name, DNS_T_TXT, &a);
    t->status = a.status;
    struct buf b;
    buf_init(&b, DNS_MAX_MESSAGE_LEN);
    int rc = 0;
    for (size_t i = 0; a.status == DNS_OK && i < a.count && t->n < TXT_RECORDS_MAX; i++) {
        size_t nstrings;
        if (dns_rdata_txt(a.rrs[i].data, a.rrs[i].len, &b, &nstrings) != 0)
            continue; /* malformed: as if absent */
        char *s = malloc(b.len + 1);
        if (!s) {
            rc = -1;
            break;
        }
        if (b.len)
            memcpy(s, b.data, b.len);
        s[b.len] = '\0';
        t->v[t->n].s = s;
        t->v[t->n].len = b.len;
        t->n++;
    }
    buf_free(&b);
    dns_answer_release(&a);
    if (rc != 0)
        txts_free(t);
    return rc;
}

/* ---- SPF terms ---- */

struct terms {
    struct sv v[OUR_TERMS_MAX];
    size_t n;
};

static void split_terms(const char *s, struct terms *t)
{
    t->n = 0;
    struct sv rest = sv_cstr(s ? s : "");
    while (rest.len && t->n < OUR_TERMS_MAX) {
        while (rest.len && sv_is_wsp(rest.p[0]))
            rest = sv_sub(rest, 1, rest.len);
        size_t e = 0;
        while (e < rest.len && !sv_is_wsp(rest.p[e]))
            e++;
        if (e)
            t->v[t->n++] = sv_sub(rest, 0, e);
        rest = sv_sub(rest, e, rest.len);
    }
}

static struct sv unplus(struct sv t)
{
    return t.len && t.p[0] == '+' ? sv_sub(t, 1, t.len) : t;
}

/* Same mechanism: case-insensitive, a leading '+' ignored. */
static bool term_eq(struct sv a, struct sv b)
{
    return sv_eq_ci(unplus(a), unplus(b));
}

static bool is_all(struct sv t)
{
    if (t.len && memchr("+-~?", t.p[0], 4))
        t = sv_sub(t, 1, t.len);
    return sv_eq_ci_cstr(t, "all");
}

/* name "=" (RFC 7208 §12: name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )) */
static bool is_modifier(struct sv t)
{
    if (!t.len || !((t.p[0] | 0x20) >= 'a' && (t.p[0] | 0x20) <= 'z'))
        return false;
    for (size_t i = 1; i < t.len; i++) {
        char ch = t.p[i];
        if (ch == '=')
            return true;
        bool alnum = ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '-' && ch != '_' && ch != '.')
            return false;
    }
    return false;
}

/* The next space-separated token of *rest (empty at the end). */
static struct sv next_token(struct sv *rest)
{
    while (rest->len && rest->p[0] == ' ')
        *rest = sv_sub(*rest, 1, rest->len);
    size_t e = sv_find(*rest, ' ');
    struct sv tok = sv_sub(*rest, 0, e);
    *rest = sv_sub(*rest, e, rest->len);
    return tok;
}

/* Our terms joined by spaces, only those flagged missing when missing != NULL. */
static int join_terms(const struct terms *ours, const bool *present, struct buf *b)
{
    bool first = true;
    for (size_t i = 0; i < ours->n; i++) {
        if (present && present[i])
            continue;
        if (buf_printf(b, "%s%.*s", first ? "" : " ", (int)ours->v[i].len, ours->v[i].p) != 0)
            return -1;
        first = false;
    }
    return 0;
}

/* The record with our missing terms inserted before its first 'all' (or
 * before redirect=, or appended). *missing receives how many were missing
 * (0: out is untouched). Returns 0, or -1 when the result does not fit. */
static int merge_one(struct sv rec, const struct terms *ours, struct buf *out, size_t *missing)
{
    bool present[OUR_TERMS_MAX] = { false };
    size_t all_at = SIZE_MAX, redirect_at = SIZE_MAX;
    struct sv rest = sv_sub(rec, 6, rec.len); /* after "v=spf1" */
    for (;;) {
        struct sv tok = next_token(&rest);
        if (!tok.len)
            break;
        for (size_t i = 0; i < ours->n; i++)
            if (!present[i] && term_eq(tok, ours->v[i]))
                present[i] = true;
        size_t at = (size_t)(tok.p - rec.p);
        if (all_at == SIZE_MAX && is_all(tok))
            all_at = at;
        if (redirect_at == SIZE_MAX && sv_has_prefix_ci(tok, "redirect="))
            redirect_at = at;
    }
    *missing = 0;
    for (size_t i = 0; i < ours->n; i++)
        *missing += !present[i];
    if (!*missing)
        return 0;
    size_t at = all_at != SIZE_MAX ? all_at : redirect_at;
    if (at == SIZE_MAX)
        return buf_append(out, rec.p, rec.len) || buf_append_char(out, ' ') ||
               join_terms(ours, present, out) ? -1 : 0;
    return buf_append(out, rec.p, at) || join_terms(ours, present, out) ||
           buf_append_char(out, ' ') || buf_append(out, rec.p + at, rec.len - at) ? -1 : 0;
}

static bool seen_in(const struct sv *list, size_t n, struct sv t, bool ci_term)
{
    for (size_t i = 0; i < n; i++)
        if (ci_term ? term_eq(list[i], t) : sv_eq_ci(list[i], t))
            return true;
    return false;
}

/* One record from several: their mechanisms once each in order, then ours
 * that are missing, then one 'all' (the strictest of -all, ~all, ?all
 * found; +all is never kept; none: default_all). A redirect= becomes
 * include: before the all when an all is kept (a redirect after an all
 * would never be used), and stays redirect= otherwise. The first exp= and
 * other modifiers (once each) end the record. -1 when it does not fit. */
static int merge_many(const struct txts *t, const struct terms *ours, const char *default_all,
                      struct buf *out)
{
    struct sv *mech = malloc(MERGE_TOKENS_MAX * sizeof *mech);
    if (!mech)
        return -1;
    struct sv mods[MERGE_MODS_MAX], redirect = { NULL, 0 };
    size_t nmech = 0, nmods = 0;
    int all_rank = -1; /* -1 none; 0 +all; 1 ?all; 2 ~all; 3 -all */
    bool have_exp = false;
    int rc = 0;
    for (size_t r = 0; r < t->n && rc == 0; r++) {
        if (!spf_record_is_spf1(t->v[r].s, t->v[r].len))
            continue;
        struct sv rest = sv_sub(sv_make(t->v[r].s, t->v[r].len), 6, t->v[r].len);
        for (;;) {
            struct sv tok = next_token(&rest);
            if (!tok.len)
                break;
            if (is_all(tok)) {
                char q = tok.len == 4 ? tok.p[0] : '+';
                int rank = q == '-' ? 3 : q == '~' ? 2 : q == '?' ? 1 : 0;
                if (rank > all_rank)
                    all_rank = rank;
            } else if (sv_has_prefix_ci(tok, "redirect=")) {
                if (!redirect.len)
                    redirect = sv_sub(tok, 9, tok.len);
            } else if (sv_has_prefix_ci(tok, "exp=")) {
                if (!have_exp && nmods < MERGE_MODS_MAX) {
                    have_exp = true; /* a second exp= would be a syntax error */
                    mods[nmods++] = tok;
                }
            } else if (is_modifier(tok)) {
                if (!seen_in(mods, nmods, tok, false)) {
                    if (nmods == MERGE_MODS_MAX)
                        rc = -1;
                    else
                        mods[nmods++] = tok;
                }
            } else if (!seen_in(mech, nmech, tok, true)) {
                if (nmech == MERGE_TOKENS_MAX)
                    rc = -1;
                else
                    mech[nmech++] = tok;
            }
            if (rc != 0)
                break;
        }
    }
    bool present[OUR_TERMS_MAX] = { false };
    for (size_t i = 0; i < ours->n; i++)
        present[i] = seen_in(mech, nmech, ours->v[i], true);
    bool any_missing = false;
    for (size_t i = 0; i < ours->n; i++)
        any_missing |= !present[i];
    if (rc == 0)
        rc = buf_append_str(out, "v=spf1");
    for (size_t i = 0; rc == 0 && i < nmech; i++)
        rc = buf_printf(out, " %.*s", (int)mech[i].len, mech[i].p);
    if (rc == 0 && any_missing)
        rc = buf_append_char(out, ' ') || join_terms(ours, present, out) ? -1 : 0;
    if (rc == 0 && all_rank >= 0) {
        static const char *const alls[] = { NULL, "?all", "~all", "-all" };
        if (redirect.len)
            rc = buf_printf(out, " include:%.*s", (int)redirect.len, redirect.p);
        if (rc == 0)
            rc = buf_printf(out, " %s", all_rank > 0 ? alls[all_rank] : default_all);
    } else if (rc == 0) {
        rc = redirect.len ? buf_printf(out, " redirect=%.*s", (int)redirect.len, redirect.p)
                          : buf_printf(out, " %s", default_all);
    }
    for (size_t i = 0; rc == 0 && i < nmods; i++)
        rc = buf_printf(out, " %.*s", (int)mods[i].len, mods[i].p);
    free(mech);
    return rc;
}

/* ---- counting the DNS-querying terms (RFC 7208 §4.6.4) ---- */

struct counter {
    struct dns_resolver *dns;
    unsigned lookups;   /* stops growing soon after SPF_MAX_DNS_MECHANISMS */
    unsigned records;
};

static void count_record(struct counter *c, const char *txt, size_t len, unsigned depth);

static void count_target(struct counter *c, struct sv target, unsigned depth)
{
    char name[DNS_MAX_NAME_LEN + 1];
    if (!target.len || depth > COUNT_MAX_DEPTH || c->records >= COUNT_MAX_RECORDS ||
        c->lookups > SPF_MAX_DNS_MECHANISMS || memchr(target.p, '%', target.len) ||
        target.len > DNS_MAX_NAME_LEN || !dns_name_is_valid(target.p, target.len))
        return; /* macros depend on the message: counted, not followed */
    c->records++;
    memcpy(name, target.p, target.len);
    name[target.len] = '\0';
    struct txts t;
    if (fetch_txt(c->dns, name, &t) != 0)
        return;
    const struct txt *one = NULL;
    size_t n = 0;
    for (size_t i = 0; i < t.n; i++)
        if (spf_record_is_spf1(t.v[i].s, t.v[i].len) && n++ == 0)
            one = &t.v[i];
    if (n == 1)
        count_record(c, one->s, one->len, depth + 1);
    txts_free(&t);
}

static void count_record(struct counter *c, const char *txt, size_t len, unsigned depth)
{
    struct spf_record rec;
    char err[160];
    if (spf_record_parse(txt, len, &rec, err, sizeof err) != 0)
        return;
    for (size_t i = 0; i < rec.nterms && c->lookups <= SPF_MAX_DNS_MECHANISMS; i++) {
        const struct spf_term *t = &rec.terms[i];
        switch (t->mech) {
        case SPF_M_INCLUDE:
            c->lookups++;
            count_target(c, t->domain_spec, depth);
            break;
        case SPF_M_A:
        case SPF_M_MX:
        case SPF_M_PTR:
        case SPF_M_EXISTS:
            c->lookups++;
            break;
        default:
            break;
        }
    }
    if (rec.has_redirect && !rec.has_all && c->lookups <= SPF_MAX_DNS_MECHANISMS) {
        c->lookups++;
        count_target(c, rec.redirect, depth);
    }
    spf_record_free(&rec);
}

/* ---- the context of one build ---- */

struct ctx {
    const struct idrec_input *in;
    struct dns_resolver *dns;
    struct idrec_list *out;
    size_t alloc;
    struct terms ours;
    struct sv mx_host;          /* no trailing dot */
    const char *domain;         /* in->domain, "" when NULL */
};

static struct idrec *add(struct ctx *c, enum idrec_purpose p, const char *type, bool required)
{
    if (c->out->n == c->alloc)
        return NULL; /* sized up front: cannot happen */
    struct idrec *r = &c->out->v[c->out->n++];
    memset(r, 0, sizeof *r);
    r->purpose = p;
    snprintf(r->type, sizeof r->type, "%s", type);
    r->required = required;
    r->state = IDREC_UNCHECKED;
    return r;
}

/* Sets r->name from prefix and domain; false (state WRONG, reason set) when
 * the name would be longer than a DNS name. */
static bool set_name(struct idrec *r, const char *prefix, const char *domain)
{
    if (fmt_fits(r->name, sizeof r->name, "%s%s%s", prefix, prefix[0] ? "." : "", domain) &&
        dns_name_is_valid(r->name, strlen(r->name)))
        return true;
    r->state = IDREC_WRONG;
    reason_add(r, "the name %s%s%s is not a valid DNS name (longer than %d characters?)",
               prefix, prefix[0] ? "." : "", domain, DNS_MAX_NAME_LEN);
    return false;
}

/* ---- verification ---- */

static int rec_verification(struct ctx *c)
{
    struct idrec *r = add(c, IDREC_VERIFICATION, "TXT", true);
    if (!r)
        return -1;
    fmt_fits(r->value, sizeof r->value, "%s%s", IDENTITY_VERIFY_PREFIX,
             c->in->token ? c->in->token : "");
    if (!set_name(r, IDENTITY_VERIFY_LABEL, c->domain) || !c->dns)
        return 0;
    struct txts t;
    if (fetch_txt(c->dns, r->name, &t) != 0)
        return -1;
    if (t.status != DNS_OK && t.status != DNS_NXDOMAIN && t.status != DNS_NODATA) {
        set_tempfail(r, t.status);
    } else if (t.n == 0) {
        r->state = IDREC_MISSING;
        reason_add(r, "no TXT record at %s", r->name);
    } else {
        struct sv want = sv_cstr(r->value);
        const struct txt *other = NULL;
        r->state = IDREC_WRONG;
        for (size_t i = 0; i < t.n; i++) {
            struct sv v = sv_trim(sv_make(t.v[i].s, t.v[i].len));
            if (v.len == want.len && memcmp(v.p, want.p, want.len) == 0)
                r->state = IDREC_OK;
            else if (!other || (v.len >= sizeof IDENTITY_VERIFY_PREFIX - 1 &&
                                strncasecmp(v.p, IDENTITY_VERIFY_PREFIX,
                                            sizeof IDENTITY_VERIFY_PREFIX - 1) == 0))
                other = &t.v[i];   /* show a token-like record first: the likely typo */
        }
        if (r->state == IDREC_WRONG) {
            struct sv v = sv_trim(sv_make(other->s, other->len));
            char shown[SHOWN_MAX + 4];
            reason_add(r, "TXT found but the token differs (found: \"%s\"%s)",
                       doc_excerpt(v.p, v.len, SHOWN_MAX, shown),
                       t.n > 1 ? (t.n > 2 ? " and others" : " and another") : "");
        }
    }
    txts_free(&t);
    return 0;
}

/* ---- DKIM ---- */

/* Whether two key records carry the same key: k= (default rsa) equal but
 * for case, p= equal ignoring white space. */
static bool same_key(const char *a, size_t alen, const char *b, size_t blen)
{
    struct dkim_taglist *ta = malloc(2 * sizeof *ta);
    if (!ta)
        return false;
    struct dkim_taglist *tb = ta + 1;
    char err[160];
    bool same = false;
    if (dkim_taglist_parse(a, alen, ta, err, sizeof err) == 0 &&
        dkim_taglist_parse(b, blen, tb, err, sizeof err) == 0) {
        const struct dkim_tag *ka = dkim_taglist_find(ta, "k"), *kb = dkim_taglist_find(tb, "k");
        const struct dkim_tag *pa = dkim_taglist_find(ta, "p"), *pb = dkim_taglist_find(tb, "p");
        struct sv kva = ka ? ka->value : sv_cstr("rsa"), kvb = kb ? kb->value : sv_cstr("rsa");
        if (pa && pb && sv_eq_ci(kva, kvb)) {
            size_t i = 0, j = 0;
            struct sv x = pa->value, y = pb->value;
            same = true;
            for (;;) {
                while (i < x.len && sv_is_wsp(x.p[i]))
                    i++;
                while (j < y.len && sv_is_wsp(y.p[j]))
                    j++;
                if (i == x.len || j == y.len) {
                    same = i == x.len && j == y.len;
                    break;
                }
                if (x.p[i++] != y.p[j++]) {
                    same = false;
                    break;
                }
            }
        }
    }
    free(ta);
    return same;
}

/* A retired key: listed to be removed, or (with DNS, no longer published
 * as ours) left out. */
static int rec_dkim_retired(struct ctx *c, const struct idrec_key *k, const char *record)
{
    struct idrec *r = add(c, IDREC_DKIM, "TXT", false);
    if (!r)
        return -1;
    snprintf(r->selector, sizeof r->selector, "%s", k->selector ? k->selector : "");
    if (!fmt_fits(r->value, sizeof r->value, "%s", record))
        r->value[0] = '\0';
    r->state = IDREC_REMOVE;
    char when[40];
    fmt_time(k->retired_at, when, sizeof when);
    if (k->retired_at > 0)
        reason_add(r, "retired on %s: safe to remove from DNS", when);
    else
        reason_add(r, "retired: safe to remove from DNS");
    char label[80];
    if (!fmt_fits(label, sizeof label, "%s._domainkey", r->selector) ||
        !set_name(r, label, c->domain)) {
        c->out->n--; /* a name that cannot exist was never published */
        return 0;
    }
    if (!c->dns)
        return 0;
    struct txts t;
    if (fetch_txt(c->dns, r->name, &t) != 0)
        return -1;
    bool published = t.status == DNS_TEMPFAIL; /* cannot tell: keep the advice */
    for (size_t i = 0; i < t.n && !published; i++)
        published = same_key(t.v[i].s, t.v[i].len, record, strlen(record));
    txts_free(&t);
    if (!published)
        c->out->n--;
    return 0;
}

static int rec_dkim(struct ctx *c, const struct idrec_key *k)
{
    const char *record = k->record ? k->record : "";
    if (k->status == STORE_KEY_RETIRED)
        return rec_dkim_retired(c, k, record);
    /* active keys sign; pending ones must appear before they can (the
     * domain cannot send until one does, a rotation cannot finish); a key
     * in its grace period is only kept for mail already signed */
    struct idrec *r = add(c, IDREC_DKIM, "TXT", k->status == STORE_KEY_ACTIVE ||
                                                 k->status == STORE_KEY_PENDING);
    if (!r)
        return -1;
    snprintf(r->selector, sizeof r->selector, "%s", k->selector ? k->selector : "");
    if (!set_value(r, record, strlen(record))) {
        r->state = IDREC_WRONG;
        reason_add(r, "the key record is longer than %d characters", IDREC_VALUE_MAX - 1);
    }
    char label[80];
    bool named = fmt_fits(label, sizeof label, "%s._domainkey", r->selector) &&
                 set_name(r, label, c->domain);
    char grace[200] = "";
    if (k->status == STORE_KEY_GRACE) {
        char when[40];
        fmt_time(k->retired_at, when, sizeof when);
        snprintf(grace, sizeof grace, "rotated out; keep it published until %s so mail "
                 "signed before the rotation still verifies", when);
    }
    if (!named || r->state != IDREC_UNCHECKED || !c->dns) {
        if (!named && !r->reason[0])
            reason_add(r, "the selector cannot form a DNS name");
        if (grace[0])
            reason_add(r, "%s%s", r->reason[0] ? "; " : "", grace);
        return 0;
    }
    struct txts t;
    if (fetch_txt(c->dns, r->name, &t) != 0)
        return -1;
    if (t.status != DNS_OK && t.status != DNS_NXDOMAIN && t.status != DNS_NODATA) {
        set_tempfail(r, t.status);
    } else if (t.n == 0) {
        r->state = IDREC_MISSING;
        reason_add(r, "no TXT record at %s", r->name);
        if (k->status == STORE_KEY_PENDING)
            reason_add(r, "; signing switches to this key once it is visible");
    } else if (t.n > 1) {
        r->state = IDREC_WRONG;
        reason_add(r, "several TXT records at %s: receivers may pick either; keep only this one",
                   r->name);
    } else {
        struct dkim_key key;
        char err[200];
        if (dkim_key_parse(t.v[0].s, t.v[0].len, &key, err, sizeof err) != 0) {
            r->state = IDREC_WRONG;
            char shown[SHOWN_MAX + 4];
            doc_excerpt(err, strlen(err), SHOWN_MAX, shown);
            reason_add(r, "the record at %s is not a DKIM key record (%s)", r->name, shown);
        } else {
            dkim_key_clear(&key);
            if (same_key(t.v[0].s, t.v[0].len, record, strlen(record))) {
                r->state = IDREC_OK;
            } else {
                r->state = IDREC_WRONG;
                reason_add(r, "DKIM key does not match: the record at %s has a different "
                           "public key", r->name);
            }
        }
    }
    txts_free(&t);
    if (grace[0])
        reason_add(r, "%s%s", r->reason[0] ? "; " : "", grace);
    return 0;
}

/* ---- SPF ---- */

/* Adds the lookup count of value to the reason when it is over the limit
 * (an ok record then becomes wrong: receivers return permerror). */
static void check_lookups(struct ctx *c, struct idrec *r)
{
    struct counter k = { .dns = c->dns };
    count_record(&k, r->value, strlen(r->value), 0);
    if (k.lookups <= SPF_MAX_DNS_MECHANISMS)
        return;
    if (r->state == IDREC_OK)
        r->state = IDREC_WRONG;
    reason_add(r, "%sthe record needs more than %d DNS lookups when no term matches "
               "(RFC 7208 §4.6.4): receivers return permerror; replace include/a/mx terms "
               "with the ip4:/ip6: ranges they stand for", r->reason[0] ? "; " : "",
               SPF_MAX_DNS_MECHANISMS);
}

static int rec_spf(struct ctx *c, enum idrec_purpose p, const char *domain)
{
    bool mf = p == IDREC_MAIL_FROM_SPF;
    const char *default_all = mf ? "-all" : "~all";
    struct idrec *r = add(c, p, "TXT", mf);
    if (!r)
        return -1;
    struct buf b;
    buf_init(&b, IDREC_VALUE_MAX - 1);
    int rc = buf_append_str(&b, "v=spf1 ");
    if (rc == 0 && c->ours.n)
        rc = join_terms(&c->ours, NULL, &b) || buf_append_char(&b, ' ') ? -1 : 0;
    if (rc == 0)
        rc = buf_append_str(&b, default_all);
    if (rc == 0)
        set_value(r, b.data, b.len);
    buf_free(&b);
    if (rc != 0) {
        r->state = IDREC_WRONG;
        reason_add(r, "the SPF terms do not fit in one record");
        return 0;
    }
    if (!set_name(r, "", domain) || !c->dns)
        return 0;
    const char *why_mf = mf ? "; SPF for the envelope sender (MAIL FROM) is what aligns "
                              "with DMARC" : "";
    char terms[IDREC_VALUE_MAX];
    struct buf tb;
    buf_init_fixed(&tb, terms, sizeof terms);
    if (join_terms(&c->ours, NULL, &tb) != 0)
        terms[0] = '\0';
    char shown_terms[SHOWN_MAX + 4];
    doc_excerpt(terms, strlen(terms), SHOWN_MAX, shown_terms);

    struct txts t;
    if (fetch_txt(c->dns, r->name, &t) != 0)
        return -1;
    size_t nspf = 0;
    const struct txt *one = NULL;
    for (size_t i = 0; i < t.n; i++)
        if (spf_record_is_spf1(t.v[i].s, t.v[i].len) && nspf++ == 0)
            one = &t.v[i];
    if (t.status != DNS_OK && t.status != DNS_NXDOMAIN && t.status != DNS_NODATA) {
        set_tempfail(r, t.status);
        txts_free(&t);
        return 0;
    }
    buf_init(&b, IDREC_VALUE_MAX - 1);
    if (nspf == 0) {
        r->state = IDREC_MISSING;
        if (mf)
            reason_add(r, "no SPF record at %s: publish this one%s", r->name, why_mf);
        else
            reason_add(r, "no SPF record at %s: publish this one so that receivers know "
                       "sesame may send as %s", r->name, r->name);
    } else if (nspf == 1) {
        struct sv rec = sv_trim(sv_make(one->s, one->len));
        struct spf_record parsed;
        char err[160];
        bool syntax_ok = spf_record_parse(rec.p, rec.len, &parsed, err, sizeof err) == 0;
        if (syntax_ok)
            spf_record_free(&parsed);
        size_t missing = 0;
        rc = merge_one(rec, &c->ours, &b, &missing);
        r->state = missing || !syntax_ok ? IDREC_WRONG : IDREC_OK;
        if (rc != 0) {
            reason_add(r, "the SPF record at %s is too long to merge sesame's terms (%s) "
                       "into here: add them to it by hand, before its 'all'%s", r->name,
                       shown_terms, why_mf);
        } else if (!set_value(r, missing ? b.data : rec.p, missing ? b.len : rec.len)) {
            r->state = IDREC_WRONG;
            reason_add(r, "the SPF record at %s is longer than the %d characters sesame "
                       "handles: shorten it (a record that long does not fit a DNS answer "
                       "over UDP)", r->name, IDREC_VALUE_MAX - 1);
        } else {
            if (!syntax_ok) {
                char shown[SHOWN_MAX + 4];
                doc_excerpt(err, strlen(err), SHOWN_MAX, shown);
                reason_add(r, "the SPF record at %s has a syntax error (%s): receivers "
                           "return permerror for every message; correct it", r->name, shown);
            }
            if (missing)
                reason_add(r, "%sthe SPF record does not authorise sesame (%s): publish this "
                           "merged record in its place (a second SPF record would be a "
                           "permerror)", r->reason[0] ? "; " : "", shown_terms);
            if (r->state == IDREC_WRONG)
                reason_add(r, "%s", why_mf);
            check_lookups(c, r);
        }
    } else {
        r->state = IDREC_WRONG;
        if (nspf == 2)
            reason_add(r, "two SPF records at %s: a permerror for every receiver; replace "
                       "them with this one record", r->name);
        else
            reason_add(r, "%zu SPF records at %s: a permerror for every receiver; replace "
                       "them with this one record", nspf, r->name);
        reason_add(r, "%s", why_mf);
        if (merge_many(&t, &c->ours, default_all, &b) != 0 || !set_value(r, b.data, b.len)) {
            reason_add(r, " (merged by hand: together they are too long to merge here)");
        } else {
            struct spf_record parsed;
            char err[160];
            if (spf_record_parse(r->value, strlen(r->value), &parsed, err, sizeof err) == 0) {
                spf_record_free(&parsed);
                check_lookups(c, r);
            } else {
                char shown[SHOWN_MAX + 4];
                doc_excerpt(err, strlen(err), SHOWN_MAX, shown);
                reason_add(r, "; the merged record keeps a syntax error of theirs (%s): "
                           "correct it before publishing", shown);
            }
        }
    }
    buf_free(&b);
    txts_free(&t);
    return 0;
}

/* ---- DMARC ---- */

/* The record with mailto:REPORT added to its rua= (or a rua= tag added). */
static int add_rua(struct sv rec, const char *report, struct buf *out)
{
    size_t pos = 0;
    while (pos < rec.len) {
        size_t semi = pos + sv_find(sv_sub(rec, pos, rec.len), ';');
        struct sv spec = sv_sub(rec, pos, semi);
        size_t eq = sv_find(spec, '=');
        if (eq < spec.len && sv_eq_ci_cstr(sv_trim(sv_sub(spec, 0, eq)), "rua")) {
            struct sv val = sv_trim(sv_sub(spec, eq + 1, spec.len));
            size_t end = val.len ? (size_t)(val.p + val.len - rec.p) : pos + eq + 1;
            return buf_append(out, rec.p, end) ||
                   buf_printf(out, "%smailto:%s", val.len ? "," : "", report) ||
                   buf_append(out, rec.p + end, rec.len - end) ? -1 : 0;
        }
        pos = semi + 1;
    }
    while (rec.len && (rec.p[rec.len - 1] == ';' || sv_is_wsp(rec.p[rec.len - 1])))
        rec.len--;
    return buf_append(out, rec.p, rec.len) || buf_printf(out, "; rua=mailto:%s", report)
               ? -1 : 0;
}

static bool has_rua(const struct dmarc_record *d, const char *report)
{
    for (size_t i = 0; i < d->nrua; i++)
        if (strcasecmp(d->rua[i].uri + 7, report) == 0) /* after "mailto:" */
            return true;
    return false;
}

static const char *policy_word(enum dmarc_policy p)
{
    const char *s = dmarc_policy_name(p);
    return s ? s : "none";
}

/* No record at _dmarc.D: when D is below its organizational domain and that
 * publishes a policy, receivers apply it; p=none for D would weaken it. */
static int dmarc_org_fallback(struct ctx *c, struct idrec *r, const char *report,
                              struct dmarc_record *d)
{
    char org[DNS_MAX_NAME_LEN + 1], name[DNS_MAX_NAME_LEN + 1];
    dmarc_org_domain(c->domain, org, sizeof org);
    if (strcasecmp(org, c->domain) == 0 || !fmt_fits(name, sizeof name, "_dmarc.%s", org))
        return 0;
    struct txts t;
    if (fetch_txt(c->dns, name, &t) != 0)
        return -1;
    const struct txt *one = NULL;
    size_t n = 0;
    for (size_t i = 0; i < t.n; i++)
        if (dmarc_is_record(t.v[i].s, t.v[i].len) && n++ == 0)
            one = &t.v[i];
    char err[200];
    if (n == 1 && dmarc_record_parse(one->s, one->len, d, err, sizeof err) == 0) {
        enum dmarc_policy p = d->sp != DMARC_P_UNSET ? d->sp : d->p;
        if (p == DMARC_P_QUARANTINE || p == DMARC_P_REJECT) {
            char v[IDREC_VALUE_MAX];
            if (fmt_fits(v, sizeof v, "v=DMARC1; p=%s%s%s", policy_word(p),
                         report[0] ? "; rua=mailto:" : "", report))
                set_value(r, v, strlen(v));
            r->reason[0] = '\0';
            reason_add(r, "no DMARC record at %s: receivers apply the one of %s (p=%s); to "
                       "get aggregate reports for %s, publish this record, which keeps that "
                       "policy", r->name, org, policy_word(p), c->domain);
        }
    }
    txts_free(&t);
    return 0;
}

static int rec_dmarc(struct ctx *c)
{
    struct idrec *r = add(c, IDREC_DMARC, "TXT", false);
    if (!r)
        return -1;
    const char *report = c->in->report_address ? c->in->report_address : "";
    char fresh[IDREC_VALUE_MAX];
    if (!fmt_fits(fresh, sizeof fresh, "v=DMARC1; p=none%s%s", report[0] ? "; rua=mailto:" : "",
                  report))
        snprintf(fresh, sizeof fresh, "%s", "v=DMARC1; p=none");
    set_value(r, fresh, strlen(fresh));
    if (!set_name(r, "_dmarc", c->domain) || !c->dns)
        return 0;
    struct txts t;
    if (fetch_txt(c->dns, r->name, &t) != 0)
        return -1;
    if (t.status != DNS_OK && t.status != DNS_NXDOMAIN && t.status != DNS_NODATA) {
        set_tempfail(r, t.status);
        txts_free(&t);
        return 0;
    }
    struct dmarc_record *d = malloc(sizeof *d);
    if (!d) {
        txts_free(&t);
        return -1;
    }
    size_t n = 0;
    const struct txt *first = NULL;
    for (size_t i = 0; i < t.n; i++)
        if (dmarc_is_record(t.v[i].s, t.v[i].len) && n++ == 0)
            first = &t.v[i];
    int rc = 0;
    char err[200], shown[SHOWN_MAX + 4];
    struct buf b;
    buf_init(&b, IDREC_VALUE_MAX - 1);
    if (n == 0) {
        r->state = IDREC_MISSING;
        reason_add(r, "no DMARC record: start with p=none and read the aggregate reports; %s",
                   DMARC_ADVICE);
        rc = dmarc_org_fallback(c, r, report, d);
    } else if (n > 1) {
        r->state = IDREC_WRONG;
        reason_add(r, "several DMARC records at %s: receivers ignore DMARC then (RFC 7489 "
                   "§6.6.3); keep one", r->name);
        /* the value: the first usable one, with our rua */
        for (size_t i = 0; i < t.n; i++) {
            if (!dmarc_is_record(t.v[i].s, t.v[i].len) ||
                dmarc_record_parse(t.v[i].s, t.v[i].len, d, err, sizeof err) != 0)
                continue;
            struct sv rec = sv_trim(sv_make(t.v[i].s, t.v[i].len));
            buf_reset(&b);
            if (!report[0] || has_rua(d, report) ? buf_append(&b, rec.p, rec.len) == 0
                                                 : add_rua(rec, report, &b) == 0)
                set_value(r, b.data, b.len);
            reason_add(r, " (this is the first usable one%s)",
                       report[0] ? ", with sesame's reports" : "");
            break;
        }
    } else if (dmarc_record_parse(first->s, first->len, d, err, sizeof err) != 0) {
        r->state = IDREC_WRONG;
        doc_excerpt(err, strlen(err), SHOWN_MAX, shown);
        reason_add(r, "the DMARC record at %s is not usable: %s; publish this one in its place",
                   r->name, shown);
    } else {
        struct sv rec = sv_trim(sv_make(first->s, first->len));
        bool none = d->p != DMARC_P_QUARANTINE && d->p != DMARC_P_REJECT;
        if (!report[0] || has_rua(d, report)) {
            r->state = IDREC_OK;
            if (!set_value(r, rec.p, rec.len)) {
                r->state = IDREC_WRONG;
                reason_add(r, "the DMARC record at %s is longer than the %d characters sesame "
                           "handles: shorten it", r->name, IDREC_VALUE_MAX - 1);
            } else if (none)
                reason_add(r, "the policy is p=none: read the aggregate reports; %s",
                           DMARC_ADVICE);
        } else {
            r->state = IDREC_WRONG;
            reason_add(r, "DMARC record found (p=%s) but its aggregate reports do not come to "
                       "sesame: add mailto:%s to rua", policy_word(d->p), report);
            if (add_rua(rec, report, &b) != 0 || !set_value(r, b.data, b.len))
                reason_add(r, " (by hand: the record is too long to merge here)");
        }
    }
    buf_free(&b);
    free(d);
    txts_free(&t);
    return rc;
}

/* ---- MX ---- */

static int rec_mx(struct ctx *c, enum idrec_purpose p, const char *owner)
{
    bool inbound = p == IDREC_INBOUND_MX;
    struct idrec *r = add(c, p, "MX", !inbound);
    if (!r)
        return -1;
    fmt_fits(r->value, sizeof r->value, "10 %.*s", (int)c->mx_host.len, c->mx_host.p);
    if (!set_name(r, "", owner) || !c->dns)
        return 0;
    struct dns_answer a;
    dns_query(c->dns, r->name, DNS_T_MX, &a);
    if (a.status != DNS_OK && a.status != DNS_NXDOMAIN && a.status != DNS_NODATA) {
        set_tempfail(r, a.status);
        dns_answer_release(&a);
        return 0;
    }
    char shown[MX_SHOWN * (SHOWN_MAX + 16) + 32] = "";
    size_t valid = 0;
    for (size_t i = 0; a.status == DNS_OK && i < a.count && r->state != IDREC_OK; i++) {
        uint16_t pref;
        char host[DNS_MAX_NAME_LEN + 3];
        if (dns_rdata_mx(a.rrs[i].data, a.rrs[i].len, &pref, host, sizeof host) != 0)
            continue;
        struct sv h = bare_name(host);
        if (h.len && sv_eq_ci(h, c->mx_host))
            r->state = IDREC_OK;
        if (valid++ < MX_SHOWN) {
            char one[SHOWN_MAX + 4];
            size_t used = strlen(shown);
            snprintf(shown + used, sizeof shown - used, "%s%s", used ? ", " : "",
                     h.len ? doc_excerpt(h.p, h.len, SHOWN_MAX, one) : ". (a null MX: no mail)");
        } else if (valid == MX_SHOWN + 1) {
            size_t used = strlen(shown);
            snprintf(shown + used, sizeof shown - used, "%s", ", ...");
        }
    }
    dns_answer_release(&a);
    if (r->state == IDREC_OK)
        return 0;
    if (valid == 0) {
        r->state = IDREC_MISSING;
        if (inbound)
            reason_add(r, "no MX record at %s: mail to %s cannot be received (publish it if "
                       "sesame is to receive %s's mail)", r->name, r->name, r->name);
        else
            reason_add(r, "no MX record at %s: bounces cannot come back, and receivers may "
                       "refuse mail from it", r->name);
    } else {
        r->state = IDREC_WRONG;
        if (inbound)
            reason_add(r, "%s's MX points to %s; point it to %.*s only if sesame is to "
                       "receive %s's mail", r->name, shown, (int)c->mx_host.len, c->mx_host.p,
                       r->name);
        else
            reason_add(r, "the MX at %s points to %s, not to %.*s", r->name, shown,
                       (int)c->mx_host.len, c->mx_host.p);
    }
    return 0;
}

/* ---- the list ---- */

int identity_records_build(const struct idrec_input *in, struct dns_resolver *dns,
                           struct idrec_list *out)
{
    out->v = NULL;
    out->n = 0;
    const char *mf = in->mail_from_domain && in->mail_from_domain[0] ? in->mail_from_domain
                                                                     : NULL;
    const char *domain = in->domain ? in->domain : "";
    struct ctx c = { .in = in, .dns = dns, .out = out, .mx_host = bare_name(in->mx_host),
                     .domain = domain };
    split_terms(in->spf_terms, &c.ours);
    c.alloc = 1 + in->nkeys + 2 + (mf ? 2 : 0) + 1;
    out->v = calloc(c.alloc, sizeof *out->v);
    if (!out->v)
        return -1;
    int rc = rec_verification(&c);
    for (size_t i = 0; rc == 0 && i < in->nkeys; i++)
        rc = rec_dkim(&c, &in->keys[i]);
    if (rc == 0)
        rc = rec_spf(&c, IDREC_SPF, domain);
    if (rc == 0)
        rc = rec_dmarc(&c);
    if (rc == 0 && mf && c.mx_host.len)
        rc = rec_mx(&c, IDREC_MAIL_FROM_MX, mf);
    if (rc == 0 && mf)
        rc = rec_spf(&c, IDREC_MAIL_FROM_SPF, mf);
    if (rc == 0 && c.mx_host.len)
        rc = rec_mx(&c, IDREC_INBOUND_MX, domain);
    if (rc != 0) {
        identity_records_free(out);
        return -1;
    }
    return 0;
}

void identity_records_free(struct idrec_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* ---- JSON ---- */

/* `name. 3600 IN TXT "..." "..."` or `name. 3600 IN MX 10 host.` */
static char *zone_line(const struct idrec *r)
{
    struct buf b;
    buf_init(&b, 4 * IDREC_VALUE_MAX + 2 * DNS_MAX_NAME_LEN + 64);
    bool ok = buf_printf(&b, "%s. %d IN %s ", r->name, ZONE_TTL, r->type) == 0;
    if (strcmp(r->type, "TXT") == 0) {
        size_t n = strlen(r->value);
        ok = ok && buf_append_char(&b, '"') == 0;
        for (size_t i = 0; ok && i < n; i++) {
            unsigned char ch = (unsigned char)r->value[i];
            if (i && i % DNS_MAX_TXT_STRING == 0)
                ok = buf_append_str(&b, "\" \"") == 0;
            if (!ok)
                break;
            if (ch == '"' || ch == '\\')
                ok = buf_append_char(&b, '\\') == 0 && buf_append_char(&b, (char)ch) == 0;
            else if (!printable(ch))
                ok = buf_printf(&b, "\\%03u", ch) == 0;
            else
                ok = buf_append_char(&b, (char)ch) == 0;
        }
        ok = ok && buf_append_char(&b, '"') == 0;
    } else {
        struct sv v = sv_cstr(r->value);
        ok = ok && buf_append(&b, v.p, v.len) == 0;
        if (ok && v.len && v.p[v.len - 1] != '.')
            ok = buf_append_char(&b, '.') == 0;
    }
    char *s = ok ? buf_detach(&b) : NULL;
    buf_free(&b);
    return s;
}

/* A JSON string of s; when s is not valid UTF-8, octets that are not
 * printable ASCII become '?'. */
static json_t *text_json(const char *s)
{
    size_t n = strlen(s);
    if (utf8_valid(s, n))
        return json_stringn(s, n);
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = printable((unsigned char)s[i]) ? s[i] : '?';
    json_t *j = json_stringn(copy, n);
    free(copy);
    return j;
}

json_t *identity_records_json(const struct idrec_list *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < l->n; i++) {
        const struct idrec *r = &l->v[i];
        char *zone = zone_line(r);
        json_t *o = json_object();
        bool ok = zone && o &&
                  json_object_set_new(o, "type", text_json(r->type)) == 0 &&
                  json_object_set_new(o, "name", text_json(r->name)) == 0 &&
                  json_object_set_new(o, "value", text_json(r->value)) == 0 &&
                  json_object_set_new(o, "purpose",
                                      json_string(identity_record_purpose_name(r->purpose))) == 0 &&
                  json_object_set_new(o, "status",
                                      json_string(identity_record_state_name(r->state))) == 0 &&
                  json_object_set_new(o, "required", json_boolean(r->required)) == 0 &&
                  json_object_set_new(o, "reason", text_json(r->reason)) == 0 &&
                  json_object_set_new(o, "zone", text_json(zone)) == 0;
        free(zone);
        if (!ok || json_array_append_new(arr, o) != 0) {
            if (!ok)
                json_decref(o);
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static bool state_from_name(const char *s, enum idrec_state *out)
{
    for (int i = IDREC_UNCHECKED; i <= IDREC_REMOVE; i++) {
        if (strcmp(s, identity_record_state_name((enum idrec_state)i)) == 0) {
            *out = (enum idrec_state)i;
            return true;
        }
    }
    return false;
}

/* Copies s into out, cut to fit: control characters become '?'; with
 * utf8, whole UTF-8 characters are kept (s is valid UTF-8: jansson's),
 * without, only printable ASCII. */
static void copy_text(char *out, size_t outlen, const char *s, bool utf8)
{
    size_t i = 0;
    for (; s[i] && i + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = printable(ch) || (utf8 && ch >= 0x80) ? s[i] : '?';
    }
    out[i] = '\0';
    if (utf8)
        utf8_cut(out);
}

void identity_records_overlay(struct idrec_list *l, const json_t *last)
{
    if (!l || !json_is_array(last))
        return;
    size_t i;
    const json_t *e;
    json_array_foreach(last, i, e) {
        const char *p = json_string_value(json_object_get(e, "purpose"));
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *n = json_string_value(json_object_get(e, "name"));
        const char *s = json_string_value(json_object_get(e, "status"));
        const json_t *reason = json_object_get(e, "reason");
        const json_t *value = json_object_get(e, "value");
        enum idrec_state st;
        if (!p || !t || !n || !s || !state_from_name(s, &st) || st == IDREC_REMOVE ||
            (reason && !json_is_string(reason)))
            continue;
        for (size_t k = 0; k < l->n; k++) {
            struct idrec *r = &l->v[k];
            if (r->state == IDREC_REMOVE || strcmp(identity_record_purpose_name(r->purpose), p) ||
                strcmp(r->type, t) || strcasecmp(r->name, n))
                continue;
            r->state = st;
            copy_text(r->reason, sizeof r->reason, reason ? json_string_value(reason) : "", true);
            if ((r->purpose == IDREC_SPF || r->purpose == IDREC_DMARC ||
                 r->purpose == IDREC_MAIL_FROM_SPF) && json_is_string(value) &&
                json_string_length(value) < sizeof r->value &&
                strlen(json_string_value(value)) == json_string_length(value))
                copy_text(r->value, sizeof r->value, json_string_value(value), false);
            break;
        }
    }
}
