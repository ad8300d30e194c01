/* MX routing (RFC 5321 §5.1, RFC 7505): a domain's MX hosts sorted by
 * preference (equal preferences shuffled with the caller's random), each
 * resolved to its A and AAAA addresses; the implicit MX when the domain
 * has no MX; the null MX; address literals ("[192.0.2.1]"). Synchronous
 * through the resolver interface, no state of its own (thread-safe as the
 * resolver is). It does not connect, remember failures of hosts, or
 * detect that we are one of the MX hosts (we are not a relay).
 * See dns_mx.h and docs/delivery_client.md. */
#include "dns/dns_mx.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns_rdata.h"
#include "util/limits.h"

struct mx_rr {
    unsigned pref;
    size_t idx;                       /* answer order, for a stable sort */
    char name[256];                   /* dns_rdata_mx wants 256 */
};

/* Appends "; text" to why (or text when empty), cut when full. */
__attribute__((format(printf, 2, 3)))
static void note(struct mx_route *out, const char *fmt, ...)
{
    size_t len = strnlen(out->why, sizeof out->why);
    if (len + 1 >= sizeof out->why)
        return;
    if (len) {
        int n = snprintf(out->why + len, sizeof out->why - len, "; ");
        if (n < 0 || (size_t)n >= sizeof out->why - len)
            return;
        len += (size_t)n;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->why + len, sizeof out->why - len, fmt, ap);
    va_end(ap);
}

static int cmp_rr(const void *a, const void *b)
{
    const struct mx_rr *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* An exchange written as an address: not a host name (RFC 5321 §5.1: the
 * exchange is a domain name, and an address there is a misconfiguration
 * that must not be dialled). */
static bool looks_like_ip(const char *name)
{
    unsigned char tmp[16];
    if (name[0] == '[')
        return true;
    if (inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1)
        return true;
    return strchr(name, ':') != NULL;
}

/* Adds the addresses of one family to h; *tempfail when the lookup
 * tempfailed. */
static void add_family(struct dns_resolver *dns, const char *name, uint16_t type,
                       struct mx_host *h, bool *tempfail)
{
    struct dns_answer a;
    dns_query(dns, name, type, &a);
    if (a.status == DNS_TEMPFAIL)
        *tempfail = true;
    if (a.status == DNS_OK) {
        for (size_t i = 0; i < a.count && h->naddrs < MX_MAX_ADDRS; i++) {
            uint8_t raw[16];
            int ok = type == DNS_T_A ? dns_rdata_a(a.rrs[i].data, a.rrs[i].len, raw)
                                     : dns_rdata_aaaa(a.rrs[i].data, a.rrs[i].len, raw);
            if (ok != 0)
                continue;   /* malformed: as if absent */
            if (!inet_ntop(type == DNS_T_A ? AF_INET : AF_INET6, raw, h->addrs[h->naddrs],
                           sizeof h->addrs[0]))
                continue;
            h->naddrs++;
        }
    }
    dns_answer_release(&a);
}

static void resolve_host(struct dns_resolver *dns, struct mx_host *h, enum mx_addr_order order,
                         bool *tempfail)
{
    h->naddrs = 0;
    switch (order) {
    case MX_ADDR_IPV4_ONLY:
        add_family(dns, h->name, DNS_T_A, h, tempfail);
        break;
    case MX_ADDR_IPV6_ONLY:
        add_family(dns, h->name, DNS_T_AAAA, h, tempfail);
        break;
    case MX_ADDR_IPV6_FIRST:
        add_family(dns, h->name, DNS_T_AAAA, h, tempfail);
        add_family(dns, h->name, DNS_T_A, h, tempfail);
        break;
    case MX_ADDR_IPV4_FIRST:
    default:
        add_family(dns, h->name, DNS_T_A, h, tempfail);
        add_family(dns, h->name, DNS_T_AAAA, h, tempfail);
        break;
    }
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3): that address. */
static void route_literal(const char *domain, size_t len, struct mx_route *out)
{
    char inner[64];
    if (len < 3 || domain[len - 1] != ']' || len - 2 >= sizeof inner) {
        out->status = MX_NO_ADDRESS;
        note(out, "not a valid address literal");
        return;
    }
    memcpy(inner, domain + 1, len - 2);
    inner[len - 2] = '\0';
    unsigned char raw[16];
    int af = AF_INET;
    const char *ip = inner;
    if (strncasecmp(inner, "IPv6:", 5) == 0) {
        af = AF_INET6;
        ip = inner + 5;
    }
    struct mx_host *h = &out->hosts[0];
    if (inet_pton(af, ip, raw) != 1 || !inet_ntop(af, raw, h->addrs[0], sizeof h->addrs[0])) {
        out->status = MX_NO_ADDRESS;
        note(out, "not a valid address literal");
        return;
    }
    snprintf(h->name, sizeof h->name, "%.*s", (int)len, domain);
    h->naddrs = 1;
    out->nhosts = 1;
    out->implicit = true;
    out->status = MX_OK;
    note(out, "address literal: no DNS lookup");
}

static void route_implicit(struct dns_resolver *dns, const char *domain, struct mx_route *out,
                           enum mx_addr_order order)
{
    bool tempfail = false;
    struct mx_host *h = &out->hosts[0];
    snprintf(h->name, sizeof h->name, "%.*s", (int)(sizeof h->name - 1), domain);
    h->preference = 0;
    resolve_host(dns, h, order, &tempfail);
    if (h->naddrs) {
        out->implicit = true;
        out->nhosts = 1;
        out->status = MX_OK;
        note(out, "no MX: the domain's own address (implicit MX)");
        return;
    }
    memset(h, 0, sizeof *h);
    if (tempfail) {
        out->status = MX_TEMPFAIL;
        note(out, "no MX, and the address lookup of %s failed temporarily", domain);
    } else {
        out->status = MX_NO_ADDRESS;
        note(out, "%s has no MX and no address", domain);
    }
}

void dns_mx_route_order(struct dns_resolver *dns, const char *domain, struct mx_route *out,
                        unsigned (*rnd)(unsigned n), enum mx_addr_order order)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!domain) {
        out->status = MX_NXDOMAIN;
        note(out, "no domain");
        return;
    }
    char dom[DNS_MAX_NAME_LEN + 2];
    size_t len = strlen(domain);
    if (len && domain[0] == '[') {
        route_literal(domain, len, out);
        return;
    }
    if (len > 1 && domain[len - 1] == '.')
        len--;   /* a trailing dot changes nothing */
    if (len == 0 || len > DNS_MAX_NAME_LEN || !dns_name_is_valid(domain, len)) {
        out->status = MX_NXDOMAIN;
        note(out, "not a valid domain name");
        return;
    }
    memcpy(dom, domain, len);
    dom[len] = '\0';

    struct dns_answer a;
    dns_query(dns, dom, DNS_T_MX, &a);
    switch (a.status) {
    case DNS_OK:
        break;
    case DNS_NODATA:
        dns_answer_release(&a);
        route_implicit(dns, dom, out, order);
        return;
    case DNS_NXDOMAIN:
    case DNS_BADNAME:
        dns_answer_release(&a);
        out->status = MX_NXDOMAIN;
        note(out, "%s does not exist (NXDOMAIN)", dom);
        return;
    case DNS_TEMPFAIL:
    default:
        dns_answer_release(&a);
        out->status = MX_TEMPFAIL;
        note(out, "the MX lookup for %s failed temporarily", dom);
        return;
    }

    struct mx_rr *rr = calloc(a.count ? a.count : 1, sizeof *rr);
    if (!rr) {
        dns_answer_release(&a);
        out->status = MX_TEMPFAIL;
        note(out, "out of memory");
        return;
    }
    size_t n = 0, nnull = 0, bad = 0;
    for (size_t i = 0; i < a.count; i++) {
        uint16_t pref;
        if (dns_rdata_mx(a.rrs[i].data, a.rrs[i].len, &pref, rr[n].name, sizeof rr[n].name) != 0 ||
            strlen(rr[n].name) > DNS_MAX_NAME_LEN) {
            bad++;
            continue;
        }
        rr[n].pref = pref;
        rr[n].idx = i;
        if (rr[n].name[0] == '\0')
            nnull++;
        n++;
    }
    dns_answer_release(&a);
    if (bad)
        note(out, "%zu malformed MX record%s ignored", bad, bad == 1 ? "" : "s");
    if (n > 0 && nnull == n) {
        /* RFC 7505 §3: a null MX says the domain accepts no mail */
        free(rr);
        out->status = MX_NULL;
        out->why[0] = '\0';
        note(out, "%s accepts no mail (null MX, RFC 7505)", dom);
        return;
    }
    if (nnull)
        note(out, "null MX \".\" listed with other MX hosts: ignored");

    qsort(rr, n, sizeof *rr, cmp_rr);
    if (rnd) {
        /* RFC 5321 §5.1: equal preferences in random order (Fisher-Yates
         * within each run) */
        for (size_t s = 0; s < n;) {
            size_t e = s + 1;
            while (e < n && rr[e].pref == rr[s].pref)
                e++;
            for (size_t k = e - s; k > 1; k--) {
                size_t j = rnd((unsigned)k) % k;
                struct mx_rr tmp = rr[s + k - 1];
                rr[s + k - 1] = rr[s + j];
                rr[s + j] = tmp;
            }
            s = e;
        }
    }

    bool tempfail = false, truncated = false;
    const char *seen[MX_MAX_HOSTS];
    size_t nseen = 0;
    for (size_t i = 0; i < n; i++) {
        if (rr[i].name[0] == '\0')
            continue;
        if (looks_like_ip(rr[i].name)) {
            note(out, "MX %s is an address, not a host name: skipped", rr[i].name);
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < nseen && !dup; k++)
            dup = strcasecmp(seen[k], rr[i].name) == 0;
        if (dup)
            continue;   /* listed twice: its best preference counts */
        if (nseen == MX_MAX_HOSTS) {
            truncated = true;
            break;
        }
        seen[nseen++] = rr[i].name;
        struct mx_host *h = &out->hosts[out->nhosts];
        memset(h, 0, sizeof *h);
        memcpy(h->name, rr[i].name, strlen(rr[i].name) + 1);   /* <= 253, checked */
        h->preference = rr[i].pref;
        bool tf = false;
        resolve_host(dns, h, order, &tf);
        if (tf)
            tempfail = true;
        if (h->naddrs == 0) {
            note(out, "MX %s: %s", rr[i].name, tf ? "address lookup failed temporarily"
                                                  : "no address");
            memset(h, 0, sizeof *h);
            continue;
        }
        out->nhosts++;
    }
    if (truncated)
        note(out, "only the best %d MX hosts are used", MX_MAX_HOSTS);

    if (out->nhosts > 0) {
        free(rr);
        out->status = MX_OK;
        return;
    }
    if (tempfail) {
        out->status = MX_TEMPFAIL;
        note(out, "no MX host of %s resolved, and some lookups failed temporarily", dom);
    } else {
        out->status = MX_NO_ADDRESS;
        note(out, "no MX host of %s has an address", dom);
    }
    free(rr);
}

void dns_mx_route(struct dns_resolver *dns, const char *domain, struct mx_route *out,
                  unsigned (*random)(unsigned n))
{
    dns_mx_route_order(dns, domain, out, random, MX_ADDR_IPV4_FIRST);
}
