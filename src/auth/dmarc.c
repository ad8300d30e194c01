/* DMARC (RFC 7489): the record parser (§6.3, §6.4), policy discovery
 * (§6.6.3), the organizational domain (§3.2, libpsl), identifier
 * alignment (§3.1) and the disposition with pct sampling (§6.6.4).
 * It opens no socket: DNS comes through the dns_resolver interface. */
#include "auth/dmarc.h"

#include <ctype.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns/dns_rdata.h"
#include "util/strview.h"

const char *dmarc_result_name(enum dmarc_result r)
{
    static const char *names[] = { "none", "pass", "fail", "temperror", "permerror" };
    return (unsigned)r < 5 ? names[r] : "?";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
    static const char *names[] = { NULL, "none", "quarantine", "reject" };
    return (unsigned)p < 4 ? names[p] : NULL;
}

/* ---- record parsing ---- */

__attribute__((format(printf, 2, 3)))
static void warn(struct dmarc_record *r, const char *fmt, ...)
{
    if (r->nwarnings == DMARC_MAX_WARNINGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings[r->nwarnings++], sizeof r->warnings[0], fmt, ap);
    va_end(ap);
}

static enum dmarc_policy parse_policy(struct sv v)
{
    if (sv_eq_ci_cstr(v, "none"))
        return DMARC_P_NONE;
    if (sv_eq_ci_cstr(v, "quarantine"))
        return DMARC_P_QUARANTINE;
    if (sv_eq_ci_cstr(v, "reject"))
        return DMARC_P_REJECT;
    return DMARC_P_UNSET;
}

/* "mailto:a@b.example!10m, mailto:c@d.example" → uris; returns how many
 * were valid; invalid ones are warned about. */
static size_t parse_uris(struct dmarc_record *r, const char *tag, struct sv v,
                         struct dmarc_uri *uris, size_t *n)
{
    size_t valid = 0;
    while (v.len) {
        size_t comma = sv_find(v, ',');
        struct sv one = sv_trim(sv_sub(v, 0, comma));
        v = comma < v.len ? sv_sub(v, comma + 1, v.len) : sv_make(v.p + v.len, 0);
        size_t bang = one.len;
        while (bang > 0 && one.p[bang - 1] != '!')
            bang--;
        unsigned long long size = 0;
        struct sv uri = one;
        if (bang > 0) {
            struct sv lim = sv_sub(one, bang, one.len);
            unsigned long long mult = 1;
            char unit = lim.len ? (char)tolower((unsigned char)lim.p[lim.len - 1]) : 0;
            if (unit == 'k' || unit == 'm' || unit == 'g' || unit == 't') {
                mult = unit == 'k' ? 1ULL << 10 : unit == 'm' ? 1ULL << 20
                     : unit == 'g' ? 1ULL << 30 : 1ULL << 40;
                lim.len--;
            }
            unsigned long digits;
            if (!sv_to_uint(lim, 1000000000UL, &digits)) {
                warn(r, "%s: bad size limit in '%.*s'", tag, (int)one.len, one.p);
                continue;
            }
            size = (unsigned long long)digits * mult;
            uri = sv_sub(one, 0, bang - 1);
        }
        if (!sv_has_prefix_ci(uri, "mailto:") || uri.len <= 7) {
            warn(r, "%s: '%.*s' is not a mailto: URI (only mailto: is used)", tag,
                 (int)(uri.len > 80 ? 80 : uri.len), uri.p);
            continue;
        }
        struct sv addr = sv_sub(uri, 7, uri.len);
        size_t at = addr.len;
        while (at > 0 && addr.p[at - 1] != '@')
            at--;
        struct sv dom = sv_sub(addr, at, addr.len);
        size_t q = sv_find(dom, '?'); /* mailto:a@b?subject=... */
        dom = sv_sub(dom, 0, q);
        if (at <= 1 || dom.len == 0 || dom.len > DNS_MAX_NAME_LEN ||
            !dns_name_is_valid(dom.p, dom.len) || uri.len >= sizeof uris[0].uri) {
            warn(r, "%s: '%.*s' has no valid address", tag,
                 (int)(uri.len > 80 ? 80 : uri.len), uri.p);
            continue;
        }
        valid++;
        if (*n == DMARC_MAX_URIS) {
            warn(r, "%s: more than %d URIs, the rest ignored", tag, DMARC_MAX_URIS);
            continue;
        }
        struct dmarc_uri *u = &uris[(*n)++];
        memcpy(u->uri, uri.p, uri.len);
        u->uri[uri.len] = '\0';
        for (size_t i = 0; i < dom.len; i++)
            u->domain[i] = (char)tolower((unsigned char)dom.p[i]);
        u->domain[dom.len] = '\0';
        u->max_size = size;
    }
    return valid;
}

/* "v" *WSP "=" *WSP "DMARC1" then ';', WSP or the end. */
bool dmarc_is_record(const char *txt, size_t len)
{
    struct sv s = sv_make(txt, len);
    size_t i = 0;
    if (!s.len || s.p[0] != 'v')
        return false;
    for (i = 1; i < s.len && sv_is_wsp(s.p[i]); i++)
        ;
    if (i >= s.len || s.p[i] != '=')
        return false;
    for (i++; i < s.len && sv_is_wsp(s.p[i]); i++)
        ;
    if (s.len - i < 6 || memcmp(s.p + i, "DMARC1", 6) != 0)
        return false;
    i += 6;
    return i == s.len || s.p[i] == ';' || sv_is_wsp(s.p[i]);
}

int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->pct = 100;
    out->ri = 86400;
    memcpy(out->fo, "0", 2);
    if (!dmarc_is_record(txt, len)) {
        snprintf(err, errlen, "not a DMARC record (it must start with v=DMARC1)");
        return -1;
    }
    if (memchr(txt, '\0', len)) {
        snprintf(err, errlen, "record contains a NUL byte");
        return -1;
    }
    bool p_seen = false, p_bad = false, sp_bad = false;
    unsigned seen = 0; /* bit per known tag, for duplicates */
    struct sv rest = sv_make(txt, len);
    bool first = true;
    while (rest.len) {
        size_t semi = sv_find(rest, ';');
        struct sv item = sv_trim(sv_sub(rest, 0, semi));
        rest = semi < rest.len ? sv_sub(rest, semi + 1, rest.len) : sv_make(rest.p + rest.len, 0);
        if (!item.len)
            continue;
        size_t eq = sv_find(item, '=');
        if (eq == item.len) {
            warn(out, "'%.*s' is not tag=value", (int)(item.len > 60 ? 60 : item.len), item.p);
            continue;
        }
        struct sv tag = sv_trim(sv_sub(item, 0, eq)), v = sv_trim(sv_sub(item, eq + 1, item.len));
        if (first) { /* v=DMARC1, checked above */
            first = false;
            continue;
        }
        static const char *known[] = { "p", "sp", "adkim", "aspf", "pct", "rua", "ruf",
                                       "fo", "rf", "ri", "v" };
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && !sv_eq_ci_cstr(tag, known[k]))
            k++;
        if (k == sizeof known / sizeof known[0])
            continue; /* unknown tags are ignored (§6.3) */
        if (seen & (1u << k)) {
            warn(out, "tag %s appears more than once; the first is used", known[k]);
            continue;
        }
        seen |= 1u << k;
        unsigned long num;
        switch (k) {
        case 0:
            p_seen = true;
            out->p = parse_policy(v);
            p_bad = out->p == DMARC_P_UNSET;
            break;
        case 1:
            out->sp = parse_policy(v);
            sp_bad = out->sp == DMARC_P_UNSET;
            break;
        case 2:
        case 3: {
            enum dmarc_align *a = k == 2 ? &out->adkim : &out->aspf;
            if (sv_eq_ci_cstr(v, "r"))
                *a = DMARC_ALIGN_RELAXED;
            else if (sv_eq_ci_cstr(v, "s"))
                *a = DMARC_ALIGN_STRICT;
            else
                warn(out, "%s=%.*s is not r or s; relaxed is used", known[k],
                     (int)(v.len > 20 ? 20 : v.len), v.p);
            break;
        }
        case 4:
            if (sv_to_uint(v, 100, &num))
                out->pct = (unsigned)num;
            else
                warn(out, "pct=%.*s is not a number from 0 to 100; 100 is used",
                     (int)(v.len > 20 ? 20 : v.len), v.p);
            break;
        case 5:
            parse_uris(out, "rua", v, out->rua, &out->nrua);
            break;
        case 6:
            parse_uris(out, "ruf", v, out->ruf, &out->nruf);
            break;
        case 7: {
            bool ok = v.len > 0 && v.len < sizeof out->fo;
            for (size_t i = 0; ok && i < v.len; i++)
                ok = (i % 2 == 0) ? strchr("01ds", v.p[i]) != NULL : v.p[i] == ':';
            if (ok && v.len % 2 == 1) {
                memcpy(out->fo, v.p, v.len);
                out->fo[v.len] = '\0';
            } else {
                warn(out, "fo=%.*s is not a list of 0, 1, d, s; 0 is used",
                     (int)(v.len > 20 ? 20 : v.len), v.p);
            }
            break;
        }
        case 8:
            if (!sv_eq_ci_cstr(v, "afrf"))
                warn(out, "rf=%.*s: only afrf is defined", (int)(v.len > 20 ? 20 : v.len), v.p);
            break;
        case 9:
            if (sv_to_uint(v, 4294967295UL, &num))
                out->ri = num;
            else
                warn(out, "ri=%.*s is not a number of seconds; 86400 is used",
                     (int)(v.len > 20 ? 20 : v.len), v.p);
            break;
        case 10:
            warn(out, "v= appears again after the start");
            break;
        }
    }
    if (!p_seen || p_bad || sp_bad) {
        const char *what = !p_seen ? "no p= tag" : p_bad ? "p= is not none, quarantine or reject"
                                                         : "sp= is not none, quarantine or reject";
        if (out->nrua == 0) {
            snprintf(err, errlen, "%s (and no valid rua=), so the record is unusable", what);
            return -1;
        }
        warn(out, "%s; with a valid rua= this is read as p=none (RFC 7489 §6.6.3)", what);
        out->p = DMARC_P_NONE;
        out->sp = DMARC_P_UNSET;
    }
    return 0;
}

/* ---- organizational domain and alignment ---- */

static const psl_ctx_t *psl;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static void psl_load(void)
{
    psl = psl_latest(NULL); /* Debian's publicsuffix data, or the built-in copy */
    if (!psl)
        psl = psl_builtin();
}

void dmarc_org_domain(const char *domain, char *out, size_t outlen)
{
    char lower[DNS_MAX_NAME_LEN + 2];
    size_t n = strlen(domain);
    if (n && domain[n - 1] == '.')
        n--;
    if (n >= sizeof lower || outlen == 0) {
        if (outlen)
            snprintf(out, outlen, "%.*s", (int)n, domain);
        return;
    }
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)tolower((unsigned char)domain[i]);
    lower[n] = '\0';
    pthread_once(&psl_once, psl_load);
    const char *reg = psl ? psl_registrable_domain(psl, lower) : NULL;
    snprintf(out, outlen, "%s", reg ? reg : lower);
}

static size_t name_len(const char *s)
{
    size_t n = strlen(s);
    return (n && s[n - 1] == '.') ? n - 1 : n;
}

bool dmarc_aligned(const char *a, const char *b, enum dmarc_align mode)
{
    size_t na = name_len(a), nb = name_len(b);
    if (na == 0 || nb == 0)
        return false;
    if (na == nb && strncasecmp(a, b, na) == 0)
        return true;
    if (mode == DMARC_ALIGN_STRICT)
        return false;
    char oa[DNS_MAX_NAME_LEN + 2], ob[DNS_MAX_NAME_LEN + 2];
    dmarc_org_domain(a, oa, sizeof oa);
    dmarc_org_domain(b, ob, sizeof ob);
    return strcmp(oa, ob) == 0;
}

/* ---- discovery ---- */

/* Looks up _dmarc.domain: DMARC_PASS with the one record in txt,
 * DMARC_NONE when there is none (or several: *several set), TEMPERROR. */
static enum dmarc_result fetch(struct dns_resolver *dns, const char *domain, struct buf *txt,
                               size_t *several)
{
    char name[DNS_MAX_NAME_LEN + 16];
    snprintf(name, sizeof name, "_dmarc.%s", domain);
    struct dns_answer a;
    dns_query(dns, name, DNS_T_TXT, &a);
    enum dmarc_result r = DMARC_NONE;
    *several = 0;
    if (a.status == DNS_TEMPFAIL) {
        r = DMARC_TEMPERROR;
    } else if (a.status == DNS_OK) {
        struct buf one;
        buf_init(&one, DNS_MAX_MESSAGE_LEN);
        size_t found = 0;
        for (size_t i = 0; i < a.count; i++) {
            if (dns_rdata_txt(a.rrs[i].data, a.rrs[i].len, &one, NULL) != 0 ||
                !dmarc_is_record(one.data ? one.data : "", one.len))
                continue;
            if (++found == 1) {
                buf_reset(txt);
                if (buf_append(txt, one.data, one.len) != 0)
                    found = 2; /* cannot be a sane record */
            }
        }
        buf_free(&one);
        if (found == 1)
            r = DMARC_PASS;
        else
            *several = found;
    }
    dns_answer_release(&a);
    return r;
}

enum dmarc_result dmarc_discover(struct dns_resolver *dns, const char *from_domain,
                                 struct dmarc_record *rec, char *policy_domain,
                                 size_t pdlen, char *why, size_t whylen)
{
    char org[DNS_MAX_NAME_LEN + 2];
    struct buf txt;
    buf_init(&txt, DNS_MAX_MESSAGE_LEN);
    policy_domain[0] = '\0';
    dmarc_org_domain(from_domain, org, sizeof org);
    const char *tried[2] = { from_domain, org };
    enum dmarc_result r = DMARC_NONE;
    size_t several = 0;
    for (int i = 0; i < 2; i++) {
        if (i == 1 && strcasecmp(org, from_domain) == 0)
            break;
        r = fetch(dns, tried[i], &txt, &several);
        if (r == DMARC_TEMPERROR) {
            snprintf(why, whylen, "DNS lookup of _dmarc.%s failed", tried[i]);
            break;
        }
        if (several > 1) {
            snprintf(why, whylen, "_dmarc.%s has %zu DMARC records; with more than one, "
                     "no policy applies (RFC 7489 §6.6.3)", tried[i], several);
            r = DMARC_NONE;
            break;
        }
        if (r == DMARC_PASS) {
            snprintf(policy_domain, pdlen, "%s", tried[i]);
            char err[200];
            if (dmarc_record_parse(txt.data, txt.len, rec, err, sizeof err) != 0) {
                snprintf(why, whylen, "the DMARC record of %s is invalid: %s", tried[i], err);
                r = DMARC_PERMERROR;
            }
            break;
        }
    }
    if (r == DMARC_NONE && several == 0)
        snprintf(why, whylen, "no DMARC record at _dmarc.%s%s%s", from_domain,
                 strcasecmp(org, from_domain) ? " or _dmarc." : "",
                 strcasecmp(org, from_domain) ? org : "");
    buf_free(&txt);
    return r;
}

/* ---- the check ---- */

void dmarc_check(struct dns_resolver *dns, const struct dmarc_input *in,
                 struct dmarc_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->disposition = DMARC_P_NONE;
    if (!in->from_domain || !in->from_domain[0]) {
        out->result = DMARC_PERMERROR;
        snprintf(out->reason, sizeof out->reason, "%s",
                 in->from_problem ? in->from_problem : "the message has no usable From address");
        return;
    }
    snprintf(out->from_domain, sizeof out->from_domain, "%s", in->from_domain);
    char why[256] = "";
    enum dmarc_result r = dmarc_discover(dns, in->from_domain, &out->record, out->policy_domain,
                                         sizeof out->policy_domain, why, sizeof why);
    if (r != DMARC_PASS) {
        out->result = r;
        out->policy_domain[0] = r == DMARC_PERMERROR ? out->policy_domain[0] : '\0';
        snprintf(out->reason, sizeof out->reason, "%s", why);
        return;
    }
    const struct dmarc_record *rec = &out->record;
    out->adkim = rec->adkim;
    out->aspf = rec->aspf;

    /* §3.1: SPF aligns when it passed for a domain aligned with From;
     * DKIM when any passing signature's d= is. */
    out->spf_aligned = in->spf == SPF_PASS && in->spf_domain &&
                       dmarc_aligned(in->spf_domain, in->from_domain, rec->aspf);
    for (size_t i = 0; in->dkim && i < in->dkim->count && !out->dkim_aligned; i++) {
        const struct dkim_signature_result *s = &in->dkim->sigs[i];
        if (s->result == DKIM_PASS && dmarc_aligned(s->domain, in->from_domain, rec->adkim)) {
            out->dkim_aligned = true;
            snprintf(out->dkim_aligned_domain, sizeof out->dkim_aligned_domain, "%s", s->domain);
        }
    }
    out->subdomain_policy = strcasecmp(out->policy_domain, in->from_domain) != 0 &&
                            rec->sp != DMARC_P_UNSET;
    out->policy = out->subdomain_policy ? rec->sp : rec->p;

    if (out->spf_aligned || out->dkim_aligned) {
        out->result = DMARC_PASS;
        snprintf(out->reason, sizeof out->reason, "%s aligned with %s",
                 out->dkim_aligned ? "DKIM" : "SPF", in->from_domain);
        return;
    }
    out->result = DMARC_FAIL;
    snprintf(out->reason, sizeof out->reason, "neither SPF nor DKIM passed aligned with %s",
             in->from_domain);
    out->disposition = out->policy;
    if (out->policy == DMARC_P_QUARANTINE || out->policy == DMARC_P_REJECT) {
        unsigned roll = in->random_percent ? in->random_percent(in->random_arg) % 100 : 0;
        if (roll >= rec->pct) { /* §6.6.4: not sampled, one step milder */
            out->sampled_out = true;
            out->disposition = out->policy == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
        }
    }
}
