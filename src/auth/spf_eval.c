/* check_host() of RFC 7208: record lookup and selection (§4.4-4.5),
 * mechanism evaluation (§5), modifiers (§6), processing limits (§4.6.4)
 * and the explanation (§6.2).
 *
 * Every DNS answer comes through the dns_resolver interface; this file
 * opens no socket. Recursion (include, redirect) is bounded by the limit of
 * 10 DNS-querying terms, which is counted across the whole evaluation. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/spf_internal.h"
#include "dns/dns_rdata.h"
#include "util/limits.h"

/* A term's outcome: matched, not matched, or an error result. */
enum outcome { NO_MATCH, MATCH, ERR_TEMP, ERR_PERM };

struct eval {
    struct dns_resolver *dns;
    const struct spf_request *req;
    struct spf_response *resp;
    struct spf_ip ip;
    struct sv sender, local, sender_domain, helo, receiver;
    unsigned dns_terms, voids;
    struct timespec deadline;
    /* validated names of the client IP (ptr mechanism and %{p}) */
    bool ptr_done;
    enum dns_status ptr_status;
    size_t nptr;
    /* storage, not zeroed per evaluation: everything above is */
    char sender_buf[SMTP_MAX_PATH_LEN + 16];
    char ptr_names[SPF_MAX_PTR_NAMES][DNS_MAX_NAME_LEN + 1];
};

static enum spf_result check_host(struct eval *ev, const char *domain, bool want_exp,
                                  unsigned depth);

__attribute__((format(printf, 2, 3)))
static void problem(struct eval *ev, const char *fmt, ...)
{
    if (ev->resp->problem[0])
        return; /* the first (innermost) cause is the useful one */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->resp->problem, sizeof ev->resp->problem, fmt, ap);
    va_end(ap);
}

const char *spf_result_name(enum spf_result r)
{
    static const char *names[] = { "none", "neutral", "pass", "fail",
                                   "softfail", "temperror", "permerror" };
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

int spf_ip_parse(const char *text, struct spf_ip *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->addr) != 1)
        return -1;
    out->family = AF_INET6;
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (memcmp(out->addr, mapped, sizeof mapped) == 0) {
        /* §5: IPv4-mapped IPv6 is evaluated as IPv4. */
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
    }
    return 0;
}

/* §4.3: a usable <domain> has valid labels and at least two of them; an
 * address literal ("[192.0.2.1]") is not a domain. */
static bool domain_is_checkable(const char *d)
{
    size_t len = strlen(d);
    if (d[0] == '[' || !dns_name_is_valid(d, len))
        return false;
    const char *dot = memchr(d, '.', len);
    return dot && (size_t)(dot - d) + 1 < len;
}

static bool deadline_passed(struct eval *ev)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return now.tv_sec > ev->deadline.tv_sec ||
           (now.tv_sec == ev->deadline.tv_sec && now.tv_nsec > ev->deadline.tv_nsec);
}

static void query(struct eval *ev, const char *name, uint16_t type, struct dns_answer *a)
{
    if (deadline_passed(ev)) {
        memset(a, 0, sizeof *a);
        a->status = DNS_TEMPFAIL;
        return;
    }
    dns_query(ev->dns, name, type, a);
}

static bool ip_in_network(const struct spf_ip *ip, const uint8_t *net, unsigned bits)
{
    size_t full = bits / 8;
    if (memcmp(ip->addr, net, full) != 0)
        return false;
    unsigned rest = bits % 8;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (ip->addr[full] & mask) == (net[full] & mask);
}

/* Counts a DNS-querying term (§4.6.4); false when over the limit. */
static bool count_dns_term(struct eval *ev, const struct sv term)
{
    if (++ev->dns_terms > SPF_MAX_DNS_MECHANISMS) {
        problem(ev, "more than %d DNS-querying terms (at '%.*s')", SPF_MAX_DNS_MECHANISMS,
                (int)term.len, term.p);
        return false;
    }
    return true;
}

/* Counts a void lookup; false when over the limit. */
static bool count_void(struct eval *ev, const char *name)
{
    if (++ev->voids > SPF_MAX_VOID_LOOKUPS) {
        problem(ev, "more than %d void DNS lookups (the last for %s)", SPF_MAX_VOID_LOOKUPS,
                name);
        return false;
    }
    return true;
}

/* Looks up A or AAAA (as the client's family) for name and tells whether
 * one of them is in the network ip/cidr. */
static enum outcome match_addresses(struct eval *ev, const char *name, unsigned cidr4,
                                    unsigned cidr6, bool count_voids)
{
    bool v4 = ev->ip.family == AF_INET;
    struct dns_answer a;
    query(ev, name, v4 ? DNS_T_A : DNS_T_AAAA, &a);
    enum outcome out = NO_MATCH;
    if (a.status == DNS_TEMPFAIL) {
        problem(ev, "DNS lookup of %s %s failed", v4 ? "A" : "AAAA", name);
        out = ERR_TEMP;
    } else if (a.status != DNS_OK) {
        if (count_voids && a.status != DNS_BADNAME && !count_void(ev, name))
            out = ERR_PERM;
    } else {
        for (size_t i = 0; i < a.count && out == NO_MATCH; i++) {
            uint8_t addr[16];
            int rc = v4 ? dns_rdata_a(a.rrs[i].data, a.rrs[i].len, addr)
                        : dns_rdata_aaaa(a.rrs[i].data, a.rrs[i].len, addr);
            if (rc == 0 && ip_in_network(&ev->ip, addr, v4 ? cidr4 : cidr6))
                out = MATCH;
        }
    }
    dns_answer_release(&a);
    return out;
}

/* Fills ev->ptr_names with the client IP's validated names (§5.5). */
static void validate_ptr_names(struct eval *ev)
{
    if (ev->ptr_done)
        return;
    ev->ptr_done = true;
    char rev[80];
    spf_ip_reverse_name(&ev->ip, rev, sizeof rev);
    struct dns_answer a;
    query(ev, rev, DNS_T_PTR, &a);
    ev->ptr_status = a.status;
    size_t limit = a.status == DNS_OK ? a.count : 0;
    if (limit > SPF_MAX_PTR_NAMES)
        limit = SPF_MAX_PTR_NAMES; /* §4.6.4: the rest is ignored */
    for (size_t i = 0; i < limit; i++) {
        char *name = ev->ptr_names[ev->nptr];
        if (dns_rdata_ptr(a.rrs[i].data, a.rrs[i].len, name, DNS_MAX_NAME_LEN + 1) != 0 ||
            !name[0])
            continue;
        /* a DNS error on the address lookup skips the name (§5.5) */
        if (match_addresses(ev, name, 32, 128, false) == MATCH)
            ev->nptr++;
    }
    dns_answer_release(&a);
}

static size_t strip_dot(const char *s)
{
    size_t n = strlen(s);
    return (n && s[n - 1] == '.') ? n - 1 : n;
}

/* name equals domain, or is a subdomain of it (case-insensitive). */
static bool name_within(const char *name, const char *domain)
{
    size_t n = strip_dot(name), d = strip_dot(domain);
    if (n < d || strncasecmp(name + n - d, domain, d) != 0)
        return false;
    return n == d || name[n - d - 1] == '.';
}

/* %{p} (§7.3): the validated name that is <domain>, else one under it,
 * else any; "unknown" when there is none. */
static int macro_ptr_name(void *arg, struct sv domain, struct buf *out)
{
    struct eval *ev = arg;
    validate_ptr_names(ev);
    char d[DNS_MAX_NAME_LEN + 2];
    snprintf(d, sizeof d, "%.*s", (int)domain.len, domain.p);
    const char *best = NULL;
    for (size_t i = 0; i < ev->nptr && !best; i++)
        if (strip_dot(ev->ptr_names[i]) == strip_dot(d) && name_within(ev->ptr_names[i], d))
            best = ev->ptr_names[i];
    for (size_t i = 0; i < ev->nptr && !best; i++)
        if (name_within(ev->ptr_names[i], d))
            best = ev->ptr_names[i];
    if (!best && ev->nptr)
        best = ev->ptr_names[0];
    return buf_append_str(out, best ? best : "unknown");
}

static void macro_ctx(struct eval *ev, const char *domain, struct spf_macro_ctx *ctx)
{
    *ctx = (struct spf_macro_ctx){
        .sender = ev->sender, .local = ev->local, .sender_domain = ev->sender_domain,
        .domain = sv_cstr(domain), .ip = &ev->ip, .helo = ev->helo,
        .receiver = ev->receiver, .now = ev->req->now,
        .ptr_name = macro_ptr_name, .ptr_arg = ev,
    };
}

/* Expands a term's domain-spec into name (or copies <domain> when it has
 * none). false on an expansion error (permerror). */
static bool target_name(struct eval *ev, const char *domain, struct sv spec, char *name,
                        size_t namelen)
{
    if (spec.len == 0) {
        size_t n = strlen(domain);
        if (n >= namelen)
            return false;
        memcpy(name, domain, n + 1);
        return true;
    }
    struct spf_macro_ctx ctx;
    macro_ctx(ev, domain, &ctx);
    struct buf out;
    buf_init_fixed(&out, name, namelen);
    if (spf_macro_expand(spec, false, &ctx, &out) == 0)
        return true;
    problem(ev, "cannot expand '%.*s'", (int)spec.len, spec.p);
    return false;
}

static enum outcome eval_term(struct eval *ev, const char *domain, const struct spf_term *t,
                              unsigned depth)
{
    char target[SPF_MAX_EXPANSION_LEN + 1];
    switch (t->mech) {
    case SPF_M_ALL:
        return MATCH;
    case SPF_M_IP4:
    case SPF_M_IP6:
        if ((t->mech == SPF_M_IP4) != (ev->ip.family == AF_INET))
            return NO_MATCH;
        return ip_in_network(&ev->ip, t->addr, t->mech == SPF_M_IP4 ? t->cidr4 : t->cidr6)
                   ? MATCH : NO_MATCH;
    default:
        break;
    }
    if (!count_dns_term(ev, t->text))
        return ERR_PERM;
    if (!target_name(ev, domain, t->domain_spec, target, sizeof target))
        return ERR_PERM;
    if (t->mech == SPF_M_INCLUDE) {
        enum spf_result r = check_host(ev, target, false, depth + 1);
        switch (r) {
        case SPF_PASS: return MATCH;
        case SPF_FAIL: case SPF_SOFTFAIL: case SPF_NEUTRAL: return NO_MATCH;
        case SPF_TEMPERROR: return ERR_TEMP;
        case SPF_NONE:
            problem(ev, "include:%s has no SPF record", target);
            return ERR_PERM;
        default: return ERR_PERM;
        }
    }
    /* A target that cannot be a DNS name (dns_query answers DNS_BADNAME
     * without asking) is treated as non-existent and is not a void lookup
     * (RFC 7208 §4.3 by analogy; the suite accepts fail or permerror). */
    if (t->mech == SPF_M_A)
        return match_addresses(ev, target, t->cidr4, t->cidr6, true);

    if (t->mech == SPF_M_EXISTS) {
        struct dns_answer a;
        query(ev, target, DNS_T_A, &a); /* always A, whatever the client's family */
        enum outcome out = MATCH;
        if (a.status == DNS_TEMPFAIL) {
            problem(ev, "DNS lookup of A %s failed", target);
            out = ERR_TEMP;
        } else if (a.status == DNS_BADNAME) {
            out = NO_MATCH;
        } else if (a.status != DNS_OK) {
            out = count_void(ev, target) ? NO_MATCH : ERR_PERM;
        }
        dns_answer_release(&a);
        return out;
    }

    if (t->mech == SPF_M_PTR) {
        bool first = !ev->ptr_done;
        validate_ptr_names(ev);
        if (first && (ev->ptr_status == DNS_NXDOMAIN || ev->ptr_status == DNS_NODATA) &&
            !count_void(ev, "the client's PTR name"))
            return ERR_PERM;
        for (size_t i = 0; i < ev->nptr; i++)
            if (name_within(ev->ptr_names[i], target))
                return MATCH;
        return NO_MATCH;
    }

    /* SPF_M_MX */
    struct dns_answer mx;
    query(ev, target, DNS_T_MX, &mx);
    enum outcome out = NO_MATCH;
    if (mx.status == DNS_TEMPFAIL) {
        problem(ev, "DNS lookup of MX %s failed", target);
        out = ERR_TEMP;
    } else if (mx.status == DNS_BADNAME) {
        out = NO_MATCH;
    } else if (mx.status != DNS_OK) {
        out = count_void(ev, target) ? NO_MATCH : ERR_PERM;
    } else if (mx.count > SPF_MAX_MX_NAMES) {
        problem(ev, "%s has %zu MX records (more than %d)", target, mx.count,
                SPF_MAX_MX_NAMES);
        out = ERR_PERM;
    } else {
        for (size_t i = 0; i < mx.count && out == NO_MATCH; i++) {
            uint16_t pref;
            char host[DNS_MAX_NAME_LEN + 2];
            if (dns_rdata_mx(mx.rrs[i].data, mx.rrs[i].len, &pref, host, sizeof host) != 0 ||
                !host[0])
                continue; /* malformed or null MX (RFC 7505) */
            out = match_addresses(ev, host, t->cidr4, t->cidr6, false);
        }
    }
    dns_answer_release(&mx);
    return out;
}

/* §6.2: the explanation of a fail, or NULL when exp= gives none. */
static char *explanation(struct eval *ev, const char *domain, struct sv exp_spec)
{
    char target[SPF_MAX_EXPANSION_LEN + 1];
    if (!target_name(ev, domain, exp_spec, target, sizeof target) ||
        !dns_name_is_valid(target, strlen(target)))
        return NULL;
    struct dns_answer a;
    query(ev, target, DNS_T_TXT, &a);
    char *result = NULL;
    if (a.status == DNS_OK && a.count == 1) {
        struct buf txt, out;
        buf_init(&txt, SPF_MAX_EXPANSION_LEN);
        buf_init(&out, SPF_MAX_EXP_LEN);
        struct spf_macro_ctx ctx;
        macro_ctx(ev, domain, &ctx);
        if (dns_rdata_txt(a.rrs[0].data, a.rrs[0].len, &txt, NULL) == 0 &&
            spf_macro_expand(sv_make(buf_cstr(&txt), txt.len), true, &ctx, &out) == 0)
            result = buf_detach(&out);
        buf_free(&txt);
        buf_free(&out);
    }
    dns_answer_release(&a);
    return result;
}

/* Whether TXT rdata starts with "v=spf1" and a space or its end, reading
 * only as many character-strings as that takes (a record may be split
 * anywhere, even inside the version). */
static bool txt_is_spf1(const uint8_t *rdata, size_t len)
{
    char head[8];
    size_t have = 0, pos = 0;
    while (pos < len && have < sizeof head) {
        size_t n = rdata[pos++];
        if (n > len - pos)
            return false;
        size_t take = n < sizeof head - have ? n : sizeof head - have;
        memcpy(head + have, rdata + pos, take);
        have += take;
        pos += n;
    }
    return spf_record_is_spf1(head, have > 7 ? 7 : have);
}

/* Looks up the SPF record of domain (§4.4, §4.5) into txt. */
static enum spf_result fetch_record(struct eval *ev, const char *domain, struct buf *txt)
{
    struct dns_answer a;
    query(ev, domain, DNS_T_TXT, &a);
    enum spf_result r = SPF_NONE;
    if (a.status == DNS_TEMPFAIL) {
        problem(ev, "DNS lookup of TXT %s failed", domain);
        r = SPF_TEMPERROR;
    } else if (a.status != DNS_OK) {
        problem(ev, "%s: %s, no SPF record", domain,
                a.status == DNS_NXDOMAIN ? "domain does not exist" : "no TXT records");
    } else {
        size_t found = 0;
        for (size_t i = 0; i < a.count; i++) {
            if (!txt_is_spf1(a.rrs[i].data, a.rrs[i].len))
                continue;
            if (++found == 1 && dns_rdata_txt(a.rrs[i].data, a.rrs[i].len, txt, NULL) != 0) {
                problem(ev, "the SPF record of %s is malformed or longer than %d bytes",
                        domain, SPF_MAX_RECORD_LEN);
                r = SPF_PERMERROR;
            }
        }
        if (found > 1) {
            problem(ev, "%s publishes %zu SPF records (there must be one)", domain, found);
            r = SPF_PERMERROR;
        } else if (found == 0) {
            problem(ev, "%s has no SPF record", domain);
        } else if (r != SPF_PERMERROR) {
            r = SPF_PASS; /* found: the caller evaluates it */
        }
    }
    dns_answer_release(&a);
    return r;
}

static enum spf_result check_host(struct eval *ev, const char *domain, bool want_exp,
                                  unsigned depth)
{
    if (!domain_is_checkable(domain)) {
        problem(ev, "'%s' is not a valid domain name", domain);
        return SPF_NONE;
    }
    char record[SPF_MAX_RECORD_LEN + 1];
    struct buf txt;
    buf_init_fixed(&txt, record, sizeof record);
    enum spf_result r = fetch_record(ev, domain, &txt);
    if (r != SPF_PASS) {
        buf_free(&txt);
        return r;
    }
    struct spf_record rec;
    char err[160];
    if (spf_record_parse(buf_cstr(&txt), txt.len, &rec, err, sizeof err) != 0) {
        problem(ev, "syntax error in the SPF record of %s: %s", domain, err);
        buf_free(&txt);
        return SPF_PERMERROR;
    }
    const struct spf_term *matched = NULL;
    r = SPF_NEUTRAL;
    for (size_t i = 0; i < rec.nterms && !matched; i++) {
        enum outcome o = eval_term(ev, domain, &rec.terms[i], depth);
        if (o == ERR_TEMP || o == ERR_PERM) {
            r = o == ERR_TEMP ? SPF_TEMPERROR : SPF_PERMERROR;
            goto done;
        }
        if (o == MATCH)
            matched = &rec.terms[i];
    }
    if (matched) {
        r = matched->qualifier;
        size_t n = matched->text.len < sizeof ev->resp->mechanism
                       ? matched->text.len : sizeof ev->resp->mechanism - 1;
        memcpy(ev->resp->mechanism, matched->text.p, n);
        ev->resp->mechanism[n] = '\0';
    } else if (rec.has_redirect && !rec.has_all) {
        char target[SPF_MAX_EXPANSION_LEN + 1];
        struct sv term = SV_LIT("redirect");
        if (!count_dns_term(ev, term) ||
            !target_name(ev, domain, rec.redirect, target, sizeof target)) {
            r = SPF_PERMERROR;
            goto done;
        }
        r = check_host(ev, target, want_exp, depth + 1);
        if (r == SPF_NONE) {
            problem(ev, "redirect=%s has no SPF record", target);
            r = SPF_PERMERROR;
        }
        goto done; /* the target's own exp= applies, not ours */
    }
    if (r == SPF_FAIL && want_exp && rec.has_exp && !ev->resp->explanation)
        ev->resp->explanation = explanation(ev, domain, rec.exp);
done:
    spf_record_free(&rec);
    buf_free(&txt);
    return r;
}

/* Splits the sender into local-part and domain (§4.3: no local-part →
 * "postmaster"); a null sender becomes postmaster@<helo>. */
static void setup(struct eval *ev, struct dns_resolver *dns, const struct spf_request *req,
                  struct spf_response *out, const char *sender)
{
    /* only the heads of the response's strings: they are 1 KiB together */
    out->result = SPF_NONE;
    out->domain[0] = out->mechanism[0] = out->problem[0] = '\0';
    out->explanation = NULL;
    out->dns_lookups = out->void_lookups = 0;
    memset(ev, 0, offsetof(struct eval, sender_buf));
    ev->dns = dns;
    ev->req = req;
    ev->resp = out;
    ev->ip = req->ip;
    ev->helo = sv_cstr(req->helo ? req->helo : "");
    ev->receiver = sv_cstr(req->receiver ? req->receiver : "");
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ev->deadline);
    ev->deadline.tv_sec += SPF_EVAL_TIMEOUT_MS / 1000;

    const char *at = strrchr(sender, '@');
    struct sv local = at ? sv_make(sender, (size_t)(at - sender)) : SV_LIT("");
    struct sv domain = sv_cstr(at ? at + 1 : sender);
    if (local.len == 0)
        local = SV_LIT("postmaster");
    if (local.len + 1 + domain.len >= sizeof ev->sender_buf || domain.len >= sizeof out->domain)
        return; /* ev->sender stays empty: run() reports it */
    char *p = ev->sender_buf;
    memcpy(p, local.p, local.len);
    p[local.len] = '@';
    memcpy(p + local.len + 1, domain.p, domain.len);
    p[local.len + 1 + domain.len] = '\0';
    ev->sender = sv_make(p, local.len + 1 + domain.len);
    ev->local = sv_sub(ev->sender, 0, local.len);
    ev->sender_domain = sv_sub(ev->sender, local.len + 1, ev->sender.len);
    memcpy(out->domain, domain.p, domain.len + 1);
}

static void run(struct eval *ev)
{
    struct spf_response *out = ev->resp;
    if (ev->sender.len == 0) {
        snprintf(out->problem, sizeof out->problem, "the sender address is too long");
        out->result = SPF_NONE;
    } else {
        out->result = check_host(ev, out->domain, true, 0);
    }
    out->dns_lookups = ev->dns_terms > SPF_MAX_DNS_MECHANISMS ? SPF_MAX_DNS_MECHANISMS + 1
                                                               : ev->dns_terms;
    out->void_lookups = ev->voids;
    if (out->result != SPF_PASS && out->result != SPF_FAIL && out->result != SPF_SOFTFAIL &&
        out->result != SPF_NEUTRAL)
        out->mechanism[0] = '\0';
    else
        out->problem[0] = '\0';
    if (out->result == SPF_FAIL && !out->explanation && ev->req->default_explanation)
        out->explanation = strdup(ev->req->default_explanation);
    if (out->result != SPF_FAIL) {
        free(out->explanation);
        out->explanation = NULL;
    }
}

void spf_check_mailfrom(struct dns_resolver *dns, const struct spf_request *req,
                        struct spf_response *out)
{
    struct eval ev;
    const char *sender = req->sender && req->sender[0] ? req->sender : NULL;
    char null_sender[DNS_MAX_NAME_LEN + 16];
    if (!sender) {
        snprintf(null_sender, sizeof null_sender, "postmaster@%s", req->helo ? req->helo : "");
        sender = null_sender;
    }
    setup(&ev, dns, req, out, sender);
    run(&ev);
}

void spf_check_helo(struct dns_resolver *dns, const struct spf_request *req,
                    struct spf_response *out)
{
    struct eval ev;
    char sender[DNS_MAX_NAME_LEN + 16];
    snprintf(sender, sizeof sender, "postmaster@%s", req->helo ? req->helo : "");
    setup(&ev, dns, req, out, sender);
    run(&ev);
}

void spf_response_free(struct spf_response *r)
{
    free(r->explanation);
    r->explanation = NULL;
}
