/* The domain audit of `sesame doctor` (doctor.h): the framework (findings,
 * a resolver wrapper that notices when DNS answers nothing at all, TXT
 * helpers) and the checks of MX, DKIM keys and the custom MAIL FROM
 * domain. The SPF walker is doctor_spf.c; DMARC, MTA-STS and TLS-RPT are
 * doctor_policy.c.
 *
 * It reads DNS only: it fetches no MTA-STS policy over HTTPS, opens no SMTP
 * connection and evaluates nothing for a particular message. */
#include "auth/doctor.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/dkim_internal.h"
#include "auth/doctor_internal.h"
#include "dns/dns_rdata.h"
#include "util/buf.h"
#include "util/strview.h"

#define DOC_MAX_MX_HOSTS   16   /* MX hosts checked one by one */
#define DOC_DEAD_AFTER     2    /* failed queries with no answer yet: DNS is unreachable */
#define DOC_RSA_ADVISED    DKIM_DEFAULT_RSA_BITS  /* RFC 8301 §3.2: SHOULD be at least 2048 */
#define DOC_RSA_PORTABLE   4096 /* RFC 8301 §3.2: verifiers MUST handle 1024..4096 */

const char *const doctor_common_selectors[] = {
    "default", "selector1", "selector2", "google", "s1", "s2", "k1", "sesame", NULL,
};

const char *doctor_check_name(enum doctor_check c)
{
    static const char *names[] = { "mx", "spf", "dkim", "dmarc", "mail_from", "mta_sts",
                                   "tls_rpt" };
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

const char *doctor_status_name(enum doctor_status s)
{
    static const char *names[] = { "ok", "warn", "error", "missing" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

/* ---- a resolver that counts, and gives up once DNS is clearly down ---- */

struct doc_resolver {
    struct dns_resolver base;
    struct dns_resolver *inner;
    unsigned long queries, answered, failed;
};

static void dr_query(struct dns_resolver *r, const char *name, uint16_t type,
                     struct dns_answer *out)
{
    struct doc_resolver *dr = (struct doc_resolver *)r;
    dr->queries++;
    if (dr->answered == 0 && dr->failed >= DOC_DEAD_AFTER) {
        memset(out, 0, sizeof *out);
        out->status = DNS_TEMPFAIL; /* no point waiting for every timeout again */
        dr->failed++;
        return;
    }
    dns_query(dr->inner, name, type, out);
    if (out->status == DNS_TEMPFAIL)
        dr->failed++;
    else
        dr->answered++;
}

static const struct dns_resolver_ops doc_resolver_ops = { .query = dr_query, .destroy = NULL };

/* ---- findings ---- */

char *doc_fmt(struct doc_ctx *c, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        c->oom = true;
        return NULL;
    }
    return s;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = (p[0] & 0xe0) == 0xc0   ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0)
        return 0;
    unsigned long cp = p[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const unsigned long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static void sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void doc_add(struct doc_ctx *c, enum doctor_check chk, enum doctor_status st, char *msg,
             char *fix)
{
    struct doctor_report *r = c->rep;
    if (!msg) {
        free(fix);
        c->oom = true;
        return;
    }
    if (r->count == r->alloc) {
        size_t n = r->alloc ? 2 * r->alloc : 16;
        struct doctor_finding *f = realloc(r->findings, n * sizeof *f);
        if (!f) {
            free(msg);
            free(fix);
            c->oom = true;
            return;
        }
        r->findings = f;
        r->alloc = n;
    }
    sanitize(msg);
    if (fix)
        sanitize(fix);
    r->findings[r->count++] = (struct doctor_finding){ chk, st, msg, fix };
}

const char *doc_excerpt(const char *s, size_t len, size_t max, char *out)
{
    size_t n = len > max ? max : len;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = ch < 0x20 || ch > 0x7e ? '?' : (char)ch;
    }
    memcpy(out + n, len > max ? "..." : "", len > max ? 4 : 1);
    return out;
}

char *doc_txt_rr(struct doc_ctx *c, const char *owner, const char *value)
{
    struct buf b;
    buf_init(&b, 16384);
    bool ok = buf_printf(&b, "%s. IN TXT \"", owner) == 0;
    size_t n = strlen(value);
    for (size_t i = 0; ok && i < n; i++) {
        if (i && i % DNS_MAX_TXT_STRING == 0)
            ok = buf_append_str(&b, "\" \"") == 0;
        if (ok && (value[i] == '"' || value[i] == '\\'))
            ok = buf_append_char(&b, '\\') == 0;
        ok = ok && buf_append_char(&b, value[i]) == 0;
    }
    ok = ok && buf_append_char(&b, '"') == 0;
    char *s = ok ? buf_detach(&b) : NULL;
    buf_free(&b);
    if (!s)
        c->oom = true;
    return s;
}

/* ---- DNS helpers ---- */

/* Does the string starting a TXT character-string look like a new SPF
 * term (so that gluing it to the previous string without a space breaks
 * the record)? */
static bool starts_like_term(const uint8_t *p, size_t n)
{
    size_t i = n && memchr("+-~?", p[0], 4) ? 1 : 0;
    static const char *const names[] = { "include:", "ip4:", "ip6:", "exists:", "redirect=",
                                          "exp=", "a:", "a/", "mx:", "mx/", "ptr:", "all",
                                          "ptr", "mx", "a" };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        size_t l = strlen(names[k]);
        if (n - i < l || strncasecmp((const char *)p + i, names[k], l) != 0)
            continue;
        if (strchr(":/=", names[k][l - 1]))
            return true;
        return n - i == l || p[i + l] == ' ';
    }
    return false;
}

void doc_query_txt(struct doc_ctx *c, const char *name, struct doc_txts *out)
{
    memset(out, 0, sizeof *out);
    struct dns_answer a;
    dns_query(c->dns, name, DNS_T_TXT, &a);
    out->status = a.status;
    if (a.status == DNS_OK && a.count) {
        out->recs = calloc(a.count, sizeof *out->recs);
        if (!out->recs)
            c->oom = true;
        for (size_t i = 0; out->recs && i < a.count; i++) {
            struct buf b;
            buf_init(&b, DNS_MAX_MESSAGE_LEN);
            struct doc_txt *t = &out->recs[out->n];
            if (dns_rdata_txt(a.rrs[i].data, a.rrs[i].len, &b, &t->nstrings) != 0) {
                buf_free(&b);
                continue; /* malformed: as if absent */
            }
            t->len = b.len;
            t->text = buf_detach(&b);
            if (!t->text) {
                c->oom = true;
                continue;
            }
            /* walk the character-strings for a bad join */
            const uint8_t *d = a.rrs[i].data;
            size_t pos = 0, off = 0, len = a.rrs[i].len;
            unsigned char prev_last = ' ';
            while (pos < len && !t->suspicious_join) {
                size_t sl = d[pos++];
                if (off && sl && prev_last != ' ' && d[pos] != ' ' &&
                    starts_like_term(d + pos, sl))
                    t->suspicious_join = off;
                if (sl)
                    prev_last = d[pos + sl - 1];
                pos += sl;
                off += sl;
            }
            out->n++;
        }
    }
    dns_answer_release(&a);
}

void doc_txts_free(struct doc_txts *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->recs[i].text);
    free(t->recs);
    memset(t, 0, sizeof *t);
}

int doc_has_address(struct doc_ctx *c, const char *name)
{
    bool failed = false;
    static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA };
    for (size_t i = 0; i < 2; i++) {
        struct dns_answer a;
        dns_query(c->dns, name, types[i], &a);
        enum dns_status st = a.status;
        dns_answer_release(&a);
        if (st == DNS_OK)
            return 1;
        failed = failed || st == DNS_TEMPFAIL;
    }
    return failed ? -1 : 0;
}

/* ---- names ---- */

static bool name_chars_ok(const char *s, size_t n, size_t min_labels, char *err,
                          size_t errlen, const char *what)
{
    size_t labels = 0, label_len = 0;
    if (n == 0 || n > DNS_MAX_NAME_LEN) {
        snprintf(err, errlen, "%s '%s' is not a domain name (1 to %d characters)", what, s,
                 DNS_MAX_NAME_LEN);
        return false;
    }
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label_len == 0 || label_len > DNS_MAX_LABEL_LEN) {
                snprintf(err, errlen, "%s '%s' has an empty or too long label", what, s);
                return false;
            }
            labels++;
            label_len = 0;
            continue;
        }
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '-' && ch != '_') {
            snprintf(err, errlen, "%s '%s' holds '%c', which a domain name cannot", what, s,
                     isprint(ch) ? ch : '?');
            return false;
        }
        label_len++;
    }
    if (labels < min_labels) {
        snprintf(err, errlen, "%s '%s' is not a domain name (it needs at least %zu labels, "
                 "like example.com)", what, s, min_labels);
        return false;
    }
    const char *last = strrchr(s, '.');
    last = last ? last + 1 : s;
    bool all_digits = true;
    for (const char *p = last; p < s + n; p++)
        all_digits = all_digits && isdigit((unsigned char)*p);
    if (min_labels > 1 && all_digits) {
        snprintf(err, errlen, "%s '%s' is an IP address, not a domain name", what, s);
        return false;
    }
    return true;
}

static int normalize(const char *in, size_t min_labels, char *out, size_t outlen, char *err,
                     size_t errlen, const char *what)
{
    size_t n = strlen(in);
    if (n && in[n - 1] == '.')
        n--;
    if (n >= outlen || n > DNS_MAX_NAME_LEN) {
        snprintf(err, errlen, "%s is longer than %d characters", what, DNS_MAX_NAME_LEN);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[n] = '\0';
    return name_chars_ok(out, n, min_labels, err, errlen, what) ? 0 : -1;
}

int doctor_domain_normalize(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
    return normalize(in, 2, out, outlen, err, errlen, "domain");
}

/* Is name equal to domain or under it? 0 outside, 1 equal, 2 under. */
static int name_under(const char *name, const char *domain)
{
    size_t n = strlen(name), d = strlen(domain);
    if (n == d)
        return strcasecmp(name, domain) == 0;
    return n > d && name[n - d - 1] == '.' && strcasecmp(name + n - d, domain) == 0 ? 2 : 0;
}

/* ---- MX ---- */

struct mx_host {
    uint16_t pref;
    char host[DNS_MAX_NAME_LEN + 2];
};

static bool is_ip_literal(const char *host)
{
    char tmp[DNS_MAX_NAME_LEN + 2];
    unsigned char addr[16];
    size_t n = strlen(host);
    if (n && host[0] == '[')
        return true;
    snprintf(tmp, sizeof tmp, "%s", host);
    return inet_pton(AF_INET, tmp, addr) == 1 || inet_pton(AF_INET6, tmp, addr) == 1;
}

/* Checks one MX host; returns true when it has no problem at all. */
static bool check_mx_host(struct doc_ctx *c, enum doctor_check chk, const char *domain,
                          const struct mx_host *m)
{
    if (is_ip_literal(m->host)) {
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "the MX of %s points to the IP address %s, not a host name: an MX "
                        "must name a host (RFC 5321 §5.1), most senders cannot deliver to it",
                        domain, m->host),
                doc_fmt(c, "give the server a name and point the MX at it: mx.%s. IN A %s and "
                        "%s. IN MX %u mx.%s.", domain, m->host, domain, m->pref, domain));
        return false;
    }
    bool usable = true;
    struct dns_answer a;
    dns_query(c->dns, m->host, DNS_T_CNAME, &a);
    if (a.status == DNS_OK && a.count) {
        usable = false; /* works with most senders, but not a name to recommend */
        char target[DNS_MAX_NAME_LEN + 2] = "";
        if (dns_rdata_ptr(a.rrs[0].data, a.rrs[0].len, target, sizeof target) != 0)
            snprintf(target, sizeof target, "?");
        doc_add(c, chk, DOCTOR_WARN,
                doc_fmt(c, "the MX host %s of %s is an alias (CNAME) of %s: RFC 2181 §10.3 "
                        "and RFC 5321 §5.1 forbid it and some senders refuse to deliver",
                        m->host, domain, target),
                doc_fmt(c, "point the MX at the real name: %s. IN MX %u %s.", domain, m->pref,
                        target));
    }
    dns_answer_release(&a);

    static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA };
    bool any = false, failed = false, loopback = false;
    for (size_t t = 0; t < 2; t++) {
        dns_query(c->dns, m->host, types[t], &a);
        if (a.status == DNS_TEMPFAIL)
            failed = true;
        for (size_t i = 0; a.status == DNS_OK && i < a.count; i++) {
            uint8_t ip[16];
            if (t == 0 && dns_rdata_a(a.rrs[i].data, a.rrs[i].len, ip) == 0) {
                any = true;
                loopback = loopback || ip[0] == 127 || (ip[0] | ip[1] | ip[2] | ip[3]) == 0;
            } else if (t == 1 && dns_rdata_aaaa(a.rrs[i].data, a.rrs[i].len, ip) == 0) {
                static const uint8_t zero[15];
                any = true;
                loopback = loopback || (memcmp(ip, zero, 15) == 0 && ip[15] <= 1);
            }
        }
        dns_answer_release(&a);
    }
    if (!any && failed) {
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "the address lookup of the MX host %s of %s failed (timeout or "
                        "server failure): senders will queue mail and retry", m->host, domain),
                doc_fmt(c, "make sure the nameservers of %s answer A/AAAA queries", m->host));
        usable = false;
    } else if (!any) {
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "the MX host %s of %s has no A or AAAA record: mail cannot be "
                        "delivered to it", m->host, domain),
                doc_fmt(c, "publish the mail server's address: %s. IN A <its IPv4 address> "
                        "(and AAAA for IPv6), or point the MX at a host that has one",
                        m->host));
        usable = false;
    } else if (loopback) {
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "the MX host %s of %s resolves to a loopback or unspecified "
                        "address: senders would deliver to themselves", m->host, domain),
                doc_fmt(c, "publish the mail server's public address for %s", m->host));
        usable = false;
    }
    return usable;
}

static int mx_cmp(const void *a, const void *b)
{
    const struct mx_host *x = a, *y = b;
    return (int)x->pref - (int)y->pref;
}

/* Checks domain's MX records. summary gets "10 mx.example.com, ..." */
static void audit_mx(struct doc_ctx *c, enum doctor_check chk, const char *domain,
                     char *summary, size_t sumlen)
{
    bool mf = chk == DOCTOR_MAIL_FROM;
    const char *who = mf ? "the MAIL FROM domain " : "";
    summary[0] = '\0';
    char *mx_rr = mf && c->first_mx[0] ? doc_fmt(c, "%s. IN MX 10 %s.", domain, c->first_mx)
                                        : doc_fmt(c, "%s. IN MX 10 mx.%s.", domain, c->domain);
    struct dns_answer a;
    dns_query(c->dns, domain, DNS_T_MX, &a);
    if (a.status == DNS_TEMPFAIL) {
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "the MX lookup of %s%s failed (timeout or server failure)", who,
                        domain),
                doc_fmt(c, "make sure the nameservers of %s answer MX queries", domain));
    } else if (a.status != DNS_OK) {
        int addr = a.status == DNS_NODATA ? doc_has_address(c, domain) : 0;
        const char *what = a.status == DNS_NXDOMAIN ? "does not exist in DNS (NXDOMAIN)"
                                                    : "has no MX record";
        const char *effect =
            mf ? "bounces sent to it cannot be delivered, and receivers that check the "
                 "MAIL FROM domain may refuse the mail"
            : addr == 1 ? "senders deliver to its A/AAAA address instead (implicit MX, "
                          "RFC 5321 §5.1), which is rarely the mail server"
                        : "mail sent to it bounces";
        doc_add(c, chk, mf ? DOCTOR_ERROR : DOCTOR_MISSING,
                doc_fmt(c, "%s%s %s: %s", who, domain, what, effect),
                mx_rr ? doc_fmt(c, "publish %s (and an A record for that host)%s", mx_rr,
                                mf ? "; it receives the bounces"
                                   : "; if the domain receives no mail, publish a null MX "
                                     "instead: MX 0 .") : NULL);
    } else {
        struct mx_host hosts[DOC_MAX_MX_HOSTS];
        size_t nreal = 0, nnull = 0, more = 0;
        for (size_t i = 0; i < a.count; i++) {
            struct mx_host m;
            if (dns_rdata_mx(a.rrs[i].data, a.rrs[i].len, &m.pref, m.host, sizeof m.host) != 0)
                continue;
            if (!m.host[0])
                nnull++;
            else if (nreal < DOC_MAX_MX_HOSTS)
                hosts[nreal++] = m;
            else
                more++;
        }
        qsort(hosts, nreal, sizeof hosts[0], mx_cmp);
        if (nnull && nreal) {
            doc_add(c, chk, DOCTOR_ERROR,
                    doc_fmt(c, "%s%s publishes a null MX (\"MX 0 .\", no mail accepted) and "
                            "%zu other MX record%s; RFC 7505 §3 forbids mixing them and senders "
                            "disagree on what it means", who, domain, nreal + more,
                            nreal + more == 1 ? "" : "s"),
                    doc_fmt(c, "if %s receives mail, delete the \"MX 0 .\" record; if not, "
                            "delete the others", domain));
        } else if (nnull) {
            if (!mf)
                c->null_mx = true;
            doc_add(c, chk, mf ? DOCTOR_ERROR : DOCTOR_WARN,
                    mf ? doc_fmt(c, "the MAIL FROM domain %s has a null MX (RFC 7505): bounces "
                                 "to it are refused and receivers may reject mail using it "
                                 "(RFC 7505 §4.2)", domain)
                       : doc_fmt(c, "%s has a null MX (RFC 7505): it says it receives no mail, "
                                 "so replies, bounces and reports sent to it are refused",
                                 domain),
                    !mx_rr ? NULL
                    : mf ? doc_fmt(c, "replace \"MX 0 .\" with %s: the MAIL FROM domain must "
                                   "accept bounces", mx_rr)
                         : doc_fmt(c, "if %s should receive mail, replace \"MX 0 .\" with %s; "
                                   "if it also sends no mail, publish \"v=spf1 -all\" and a "
                                   "DMARC p=reject", domain, mx_rr));
        } else if (nreal == 0) {
            doc_add(c, chk, mf ? DOCTOR_ERROR : DOCTOR_MISSING,
                    doc_fmt(c, "%s%s has MX records, but none can be read", who, domain),
                    mx_rr ? doc_fmt(c, "publish %s", mx_rr) : NULL);
        }
        size_t used = 0;
        for (size_t i = 0; i < nreal; i++) {
            if (check_mx_host(c, chk, domain, &hosts[i]) && !mf && !c->first_mx[0])
                snprintf(c->first_mx, sizeof c->first_mx, "%s", hosts[i].host);
            if (used + 8 < sumlen) {
                int w = snprintf(summary + used, sumlen - used, "%s%u %s", i ? ", " : "",
                                 hosts[i].pref, hosts[i].host);
                used += w > 0 ? (size_t)w : 0;
                if (used >= sumlen)
                    used = sumlen - 1;
            }
        }
        if (more && used + 16 < sumlen)
            snprintf(summary + used, sumlen - used, " and %zu more", more);
    }
    dns_answer_release(&a);
    free(mx_rr);
}

/* ---- DKIM ---- */

static bool has_tag(const struct dkim_taglist *tl, const char *name)
{
    return dkim_taglist_find(tl, name) != NULL;
}

/* Audits one key record; returns 1 for a usable RSA key, 2 for Ed25519,
 * 0 otherwise. sel_desc is "selector 's1'" (with how it was found). */
static int audit_key(struct doc_ctx *c, const char *sel, const char *sel_desc,
                     const char *owner, const struct doc_txt *rec)
{
    char why[200];
    char *keygen = doc_fmt(c, "generate a new key (sesame dkim keygen --algorithm rsa-sha256 "
                           "--bits 2048 --domain %s --selector NEW --out NEW.pem), publish the "
                           "record it prints, sign with it, then revoke %s by publishing "
                           "\"v=DKIM1; p=\"", c->domain, sel);
    int kind = 0;
    struct dkim_taglist tl;
    if (memchr(rec->text, '\0', rec->len) ||
        dkim_taglist_parse(rec->text, rec->len, &tl, why, sizeof why) != 0) {
        if (memchr(rec->text, '\0', rec->len))
            snprintf(why, sizeof why, "it holds a NUL byte");
        doc_add(c, DOCTOR_DKIM, DOCTOR_ERROR,
                doc_fmt(c, "%s: the key record at %s has bad syntax (%s); signatures with it "
                        "fail (permerror)", sel_desc, owner, why),
                doc_fmt(c, "publish it as a tag list: %s. IN TXT \"v=DKIM1; k=rsa; p=<base64 "
                        "public key>\" (sesame dkim keygen prints it)", owner));
        goto out;
    }
    const struct dkim_tag *p = dkim_taglist_find(&tl, "p");
    if (p && p->value.len == 0) {
        doc_add(c, DOCTOR_DKIM, DOCTOR_ERROR,
                doc_fmt(c, "%s: the key at %s is revoked (empty p=): every signature made with "
                        "it fails", sel_desc, owner),
                doc_fmt(c, "if you still sign with %s, publish its public key again; if you "
                        "rotated away from it, stop signing with it (this check then only "
                        "confirms the revocation)", sel));
        goto out;
    }
    struct dkim_key key;
    if (dkim_key_parse(rec->text, rec->len, &key, why, sizeof why) != 0) {
        if (strncmp(why, "key record ", 11) == 0) /* we say "the key record at X" already */
            memmove(why, why + 11, strlen(why + 11) + 1);
        bool short_key = strstr(why, "too short") != NULL;
        bool bad_k = strstr(why, "unknown key type") != NULL;
        doc_add(c, DOCTOR_DKIM, DOCTOR_ERROR,
                doc_fmt(c, "%s: the key record at %s is unusable: %s; signatures with it fail "
                        "(permerror)", sel_desc, owner, why),
                short_key ? (keygen ? doc_fmt(c, "%s", keygen) : NULL)
                : bad_k ? doc_fmt(c, "set k=rsa or k=ed25519 (the only key types defined, "
                                  "RFC 6376 §3.6.1, RFC 8463) to match the key in p=")
                : !has_tag(&tl, "p") ? doc_fmt(c, "add the public key: %s. IN TXT \"v=DKIM1; "
                                               "k=rsa; p=<base64 public key>\"", owner)
                : doc_fmt(c, "publish the record exactly as `sesame dkim keygen` (or your "
                          "signing service) prints it"));
        goto out;
    }
    bool rsa = key.type == DKIM_KEY_RSA;
    bool problems = false;
    if (rsa && key.bits < DOC_RSA_ADVISED) {
        doc_add(c, DOCTOR_DKIM, DOCTOR_WARN,
                doc_fmt(c, "%s: RSA key of %u bits at %s; RFC 8301 §3.2 asks for at least %d, "
                        "and shorter keys are being retired by receivers", sel_desc, key.bits,
                        owner, DOC_RSA_ADVISED),
                keygen ? doc_fmt(c, "%s", keygen) : NULL);
        problems = true;
    } else if (rsa && key.bits > DOC_RSA_PORTABLE) {
        doc_add(c, DOCTOR_DKIM, DOCTOR_WARN,
                doc_fmt(c, "%s: RSA key of %u bits at %s; verifiers are only required to "
                        "handle up to %d (RFC 8301 §3.2), some fail on longer keys", sel_desc,
                        key.bits, owner, DOC_RSA_PORTABLE),
                keygen ? doc_fmt(c, "%s", keygen) : NULL);
        problems = true;
    }
    if (!key.sha256_ok) {
        doc_add(c, DOCTOR_DKIM, DOCTOR_ERROR,
                doc_fmt(c, "%s: the key at %s has an h= that excludes sha256: every "
                        "%s-sha256 signature with it fails", sel_desc, owner,
                        rsa ? "rsa" : "ed25519"),
                doc_fmt(c, "remove the h= tag from the record at %s (sha1 must not be used, "
                        "RFC 8301)", owner));
        problems = true;
    }
    if (key.testing) {
        doc_add(c, DOCTOR_DKIM, DOCTOR_WARN,
                doc_fmt(c, "%s: the key at %s is in testing mode (t=y): receivers may treat "
                        "its signatures as if the message were unsigned (RFC 6376 §3.6.1)",
                        sel_desc, owner),
                doc_fmt(c, "remove t=y from the record at %s once signing works", owner));
        problems = true;
    }
    if (!problems) {
        if (rsa)
            doc_add(c, DOCTOR_DKIM, DOCTOR_OK,
                    doc_fmt(c, "%s: RSA key of %u bits at %s", sel_desc, key.bits, owner), NULL);
        else
            doc_add(c, DOCTOR_DKIM, DOCTOR_OK,
                    doc_fmt(c, "%s: Ed25519 key at %s", sel_desc, owner), NULL);
    }
    kind = key.sha256_ok ? (rsa ? 1 : 2) : 0;
    dkim_key_clear(&key);
out:
    free(keygen);
    return kind;
}

/* Does a TXT record at a guessed selector look like a DKIM key (so that a
 * wildcard TXT record is not reported as a broken key)? */
static bool looks_like_key(const struct doc_txt *t)
{
    struct dkim_taglist tl;
    char why[8];
    if (memchr(t->text, '\0', t->len) || dkim_taglist_parse(t->text, t->len, &tl, why, sizeof why))
        return strstr(t->text, "v=DKIM1") != NULL;
    const struct dkim_tag *v = dkim_taglist_find(&tl, "v");
    return dkim_taglist_find(&tl, "p") || (v && sv_eq_ci_cstr(v->value, "DKIM1"));
}

/* One selector; returns the kinds of usable keys found (bit 1 RSA, bit 2
 * Ed25519), or -1 when guessing and nothing is there. */
static int audit_selector(struct doc_ctx *c, const char *sel, bool guessed)
{
    char owner[DNS_MAX_NAME_LEN + 32];
    snprintf(owner, sizeof owner, "%s._domainkey.%s", sel, c->domain);
    char desc[96];
    snprintf(desc, sizeof desc, "selector '%.40s'%s", sel,
             guessed ? " (found by trying common selector names)" : "");
    struct doc_txts t;
    if (strlen(owner) > DNS_MAX_NAME_LEN) {
        if (!guessed)
            doc_add(c, DOCTOR_DKIM, DOCTOR_ERROR,
                    doc_fmt(c, "%s: %s is longer than a DNS name may be", desc, owner),
                    doc_fmt(c, "use a shorter selector"));
        return guessed ? -1 : 0;
    }
    doc_query_txt(c, owner, &t);
    int kinds = 0;
    if (guessed) {
        bool found = false;
        for (size_t i = 0; i < t.n && !found; i++)
            found = looks_like_key(&t.recs[i]);
        if (!found) {
            doc_txts_free(&t);
            return -1;
        }
    }
    if (t.status == DNS_TEMPFAIL) {
        doc_add(c, DOCTOR_DKIM, DOCTOR_ERROR,
                doc_fmt(c, "%s: the lookup of %s failed (timeout or server failure): "
                        "verifiers get temperror", desc, owner),
                doc_fmt(c, "make sure the nameservers of %s answer TXT queries", c->domain));
    } else if (t.n == 0) {
        doc_add(c, DOCTOR_DKIM, DOCTOR_ERROR,
                doc_fmt(c, "%s: no DKIM key at %s (%s): every signature with s=%s fails "
                        "(permerror, no key)", desc, owner,
                        t.status == DNS_NXDOMAIN ? "the name does not exist" : "no TXT record",
                        sel),
                doc_fmt(c, "publish the public key: %s. IN TXT \"v=DKIM1; k=rsa; p=<base64 "
                        "public key>\" (sesame dkim keygen --domain %s --selector %s prints "
                        "it), or check the selector name in your signer", owner, c->domain,
                        sel));
    } else {
        if (t.n > 1)
            doc_add(c, DOCTOR_DKIM, DOCTOR_WARN,
                    doc_fmt(c, "%s: %s has %zu TXT records; verifiers may use any of them, so "
                            "signatures fail at random", desc, owner, t.n),
                    doc_fmt(c, "keep only the key record at %s", owner));
        for (size_t i = 0; i < t.n; i++) {
            if (guessed && !looks_like_key(&t.recs[i]))
                continue;
            int k = audit_key(c, sel, desc, owner, &t.recs[i]);
            kinds |= k == 1 ? 1 : k == 2 ? 2 : 0;
        }
    }
    doc_txts_free(&t);
    return kinds;
}

static void audit_dkim(struct doc_ctx *c)
{
    int kinds = 0;
    if (c->nselectors) {
        for (size_t i = 0; i < c->nselectors; i++) {
            int k = audit_selector(c, c->selectors[i], false);
            kinds |= k > 0 ? k : 0;
        }
    } else {
        size_t found = 0;
        struct buf tried;
        buf_init(&tried, 512);
        for (size_t i = 0; c->guess_selectors && doctor_common_selectors[i]; i++) {
            int k = audit_selector(c, doctor_common_selectors[i], true);
            if (k >= 0) {
                found++;
                kinds |= k;
            }
            if (buf_printf(&tried, "%s%s", i ? ", " : "", doctor_common_selectors[i]) != 0)
                c->oom = true;
        }
        if (!found)
            doc_add(c, DOCTOR_DKIM, DOCTOR_MISSING,
                    c->guess_selectors
                        ? doc_fmt(c, "no --selector given, and none of the common selectors "
                                  "(%s) has a key under _domainkey.%s: DKIM was not checked",
                                  buf_cstr(&tried), c->domain)
                        : doc_fmt(c, "no --selector given: DKIM was not checked"),
                    doc_fmt(c, "run again with --selector S for each selector you sign with "
                            "(the s= of your DKIM-Signature headers); if you do not sign yet, "
                            "sesame dkim keygen --algorithm rsa-sha256 --domain %s --selector "
                            "S --out S.pem prints the record to publish", c->domain));
        buf_free(&tried);
    }
    if (kinds == 2)
        doc_add(c, DOCTOR_DKIM, DOCTOR_WARN,
                doc_fmt(c, "only Ed25519 keys: many receivers do not verify Ed25519 yet, so "
                        "for them your mail is effectively unsigned (RFC 8463 §4 suggests "
                        "signing with RSA as well)"),
                doc_fmt(c, "add an RSA selector and sign with both keys"));
}

/* ---- custom MAIL FROM domain ---- */

static void audit_mail_from(struct doc_ctx *c, const char *mf)
{
    size_t start = c->rep->count;
    int under = name_under(mf, c->domain);
    if (under != 2) {
        doc_add(c, DOCTOR_MAIL_FROM, DOCTOR_ERROR,
                doc_fmt(c, "the MAIL FROM domain %s is %s%s: a custom MAIL FROM domain must "
                        "be a subdomain of %s, with its own MX and SPF records, so that SPF "
                        "aligns with %s for DMARC and bounces reach you", mf,
                        under ? c->domain : "not under ", under ? " itself" : c->domain,
                        c->domain, c->domain),
                doc_fmt(c, "use a dedicated subdomain such as bounce.%s", c->domain));
        return;
    }
    char mxsum[512], spfsum[600];
    audit_mx(c, DOCTOR_MAIL_FROM, mf, mxsum, sizeof mxsum);
    doc_spf_audit(c, DOCTOR_MAIL_FROM, mf, spfsum, sizeof spfsum);
    const char *align = "no DMARC record to align with";
    if (c->dmarc_found) {
        if (!dmarc_aligned(mf, c->domain, c->dmarc.aspf)) {
            bool strict = c->dmarc.aspf == DMARC_ALIGN_STRICT;
            doc_add(c, DOCTOR_MAIL_FROM, DOCTOR_ERROR,
                    strict ? doc_fmt(c, "aspf=s in the DMARC record at _dmarc.%s: SPF for the "
                                     "MAIL FROM domain %s never aligns with %s (strict "
                                     "alignment needs the exact name), so DMARC can pass only "
                                     "through DKIM", c->dmarc_at, mf, c->domain)
                           : doc_fmt(c, "the MAIL FROM domain %s is not in the same "
                                     "organizational domain as %s (Public Suffix List), so SPF "
                                     "never aligns for DMARC", mf, c->domain),
                    strict ? doc_fmt(c, "set aspf=r (or remove aspf=, relaxed is the default) "
                                     "in the record at _dmarc.%s", c->dmarc_at)
                           : doc_fmt(c, "use a MAIL FROM domain under %s", c->domain));
        } else {
            align = c->dmarc.aspf == DMARC_ALIGN_STRICT ? "aligned (strict)"
                                                          : "aligned with relaxed SPF alignment";
        }
    }
    if (c->rep->count == start)
        doc_add(c, DOCTOR_MAIL_FROM, DOCTOR_OK,
                doc_fmt(c, "%s: MX %s; SPF %s; %s", mf, mxsum, spfsum, align), NULL);
}

/* ---- the audit ---- */

void doctor_report_free(struct doctor_report *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->findings[i].message);
        free(r->findings[i].fix);
    }
    free(r->findings);
    r->findings = NULL;
    r->count = r->alloc = 0;
}

/* Checks and normalises the options into c; 0, or -1 with the reason. */
static int setup(struct doc_ctx *c, const struct doctor_options *opt, char *err, size_t errlen)
{
    if (!opt->domain) {
        snprintf(err, errlen, "no domain given");
        return -1;
    }
    if (doctor_domain_normalize(opt->domain, c->domain, sizeof c->domain, err, errlen) != 0)
        return -1;
    if (opt->nselectors > DOCTOR_MAX_SELECTORS) {
        snprintf(err, errlen, "at most %d selectors", DOCTOR_MAX_SELECTORS);
        return -1;
    }
    for (size_t i = 0; i < opt->nselectors; i++)
        if (normalize(opt->selectors[i], 1, c->selectors[i], sizeof c->selectors[i], err,
                      errlen, "selector") != 0)
            return -1;
    c->nselectors = opt->nselectors;
    c->guess_selectors = opt->guess_selectors;
    if (opt->mail_from) {
        char given[DNS_MAX_NAME_LEN + 1];
        if (normalize(opt->mail_from, 1, given, sizeof given, err, errlen,
                      "MAIL FROM domain") != 0)
            return -1;
        /* one label is a name under the domain; anything else is taken as written */
        int n = strchr(given, '.')
                    ? snprintf(c->mail_from, sizeof c->mail_from, "%s", given)
                    : snprintf(c->mail_from, sizeof c->mail_from, "%s.%s", given, c->domain);
        if (n < 0 || (size_t)n >= sizeof c->mail_from) {
            snprintf(err, errlen, "MAIL FROM domain '%s.%s' is too long", given, c->domain);
            return -1;
        }
    }
    return 0;
}

int doctor_run(struct dns_resolver *dns, const struct doctor_options *opt,
               struct doctor_report *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct doc_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -2;
    }
    if (setup(c, opt, err, errlen) != 0) {
        free(c);
        return -1;
    }
    struct doc_resolver dr = { .base = { &doc_resolver_ops }, .inner = dns };
    c->dns = &dr.base;
    c->rep = out;
    snprintf(out->domain, sizeof out->domain, "%s", c->domain);

    char summary[1024];
    size_t start = out->count;
    audit_mx(c, DOCTOR_MX, c->domain, summary, sizeof summary);
    if (out->count == start)
        doc_add(c, DOCTOR_MX, DOCTOR_OK, doc_fmt(c, "MX %s (each host has an address)",
                                                 summary), NULL);
    start = out->count;
    doc_spf_audit(c, DOCTOR_SPF, c->domain, summary, sizeof summary);
    if (out->count == start)
        doc_add(c, DOCTOR_SPF, DOCTOR_OK, doc_fmt(c, "%s", summary), NULL);
    audit_dkim(c);
    start = out->count;
    doc_audit_dmarc(c, summary, sizeof summary);
    if (out->count == start)
        doc_add(c, DOCTOR_DMARC, DOCTOR_OK, doc_fmt(c, "%s", summary), NULL);
    if (c->mail_from[0])
        audit_mail_from(c, c->mail_from);
    doc_audit_mta_sts(c);
    doc_audit_tls_rpt(c);

    out->queries = dr.queries;
    out->dns_unreachable = dr.answered == 0 && dr.failed > 0;
    bool oom = c->oom;
    free(c);
    if (oom) {
        doctor_report_free(out);
        snprintf(err, errlen, "out of memory");
        return -2;
    }
    return 0;
}
