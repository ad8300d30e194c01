/* The policy records of the domain audit (doctor.h): DMARC at _dmarc (with
 * the organizational domain's record as fallback and the RFC 7489 §7.1
 * authorization of external report addresses), MTA-STS at _mta-sts and
 * TLS-RPT at _smtp._tls. DNS only: the MTA-STS policy file is not fetched
 * over HTTPS. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/doctor_internal.h"
#include "util/buf.h"
#include "util/strview.h"

/* ---- DMARC ---- */

/* The DMARC record txt with tag set to value (appended when absent), or
 * removed when value is NULL, as a TXT record line at _dmarc.at. */
static char *dmarc_with(struct doc_ctx *c, const char *at, const char *txt, size_t len,
                        const char *tag, const char *value)
{
    struct buf b;
    buf_init(&b, 8192);
    bool found = false, ok = true, first = true;
    struct sv rest = sv_make(txt, len);
    while (rest.len && ok) {
        size_t semi = sv_find(rest, ';');
        struct sv item = sv_trim(sv_sub(rest, 0, semi));
        rest = semi < rest.len ? sv_sub(rest, semi + 1, rest.len) : sv_make(rest.p + rest.len, 0);
        if (!item.len)
            continue;
        struct sv name = sv_trim(sv_sub(item, 0, sv_find(item, '=')));
        if (sv_eq_ci_cstr(name, tag)) {
            bool skip = found || !value;
            found = true;
            if (skip)
                continue;
            ok = buf_printf(&b, "%s%s=%s", first ? "" : "; ", tag, value) == 0;
        } else {
            ok = buf_printf(&b, "%s%.*s", first ? "" : "; ", (int)item.len, item.p) == 0;
        }
        first = false;
    }
    if (ok && !found && value)
        ok = buf_printf(&b, "; %s=%s", tag, value) == 0;
    char owner[DNS_MAX_NAME_LEN + 16];
    snprintf(owner, sizeof owner, "_dmarc.%s", at);
    char *rr = ok ? doc_txt_rr(c, owner, buf_cstr(&b)) : NULL;
    buf_free(&b);
    if (!ok)
        c->oom = true;
    return rr;
}

/* The record to start with: monitoring, reports to the domain itself. */
static char *starter_dmarc(struct doc_ctx *c, const char *at)
{
    char owner[DNS_MAX_NAME_LEN + 16], value[DNS_MAX_NAME_LEN + 64];
    snprintf(owner, sizeof owner, "_dmarc.%s", at);
    snprintf(value, sizeof value, "v=DMARC1; p=none; rua=mailto:dmarc-reports@%s", at);
    return doc_txt_rr(c, owner, value);
}

/* RFC 7489 §7.1: a report address in another organizational domain must
 * agree to receive reports for at: <at>._report._dmarc.<its domain>. */
static void check_report_uri(struct doc_ctx *c, const char *at, const char *org,
                             const struct dmarc_uri *u, const char *tag)
{
    char uorg[DNS_MAX_NAME_LEN + 2];
    dmarc_org_domain(u->domain, uorg, sizeof uorg);
    if (strcmp(uorg, org) == 0)
        return;
    char name[2 * DNS_MAX_NAME_LEN + 32];
    snprintf(name, sizeof name, "%s._report._dmarc.%s", at, u->domain);
    if (strlen(name) > DNS_MAX_NAME_LEN) {
        doc_add(c, DOCTOR_DMARC, DOCTOR_WARN,
                doc_fmt(c, "%s=%s: the authorization record name %s is too long for DNS, so "
                        "the report address cannot authorize reports for %s", tag, u->uri,
                        name, at),
                doc_fmt(c, "use a report address under %s", org));
        return;
    }
    struct doc_txts t;
    doc_query_txt(c, name, &t);
    bool ok = false;
    for (size_t i = 0; i < t.n && !ok; i++)
        ok = dmarc_is_record(t.recs[i].text, t.recs[i].len);
    if (t.status == DNS_TEMPFAIL) {
        doc_add(c, DOCTOR_DMARC, DOCTOR_WARN,
                doc_fmt(c, "%s=%s goes to another domain (%s), and the lookup of its "
                        "authorization record %s failed, so it could not be checked", tag,
                        u->uri, u->domain, name),
                doc_fmt(c, "run the check again; %s. IN TXT \"v=DMARC1\" must exist", name));
    } else if (!ok) {
        doc_add(c, DOCTOR_DMARC, DOCTOR_ERROR,
                doc_fmt(c, "%s=%s goes to another domain (%s), which has not authorized "
                        "reports for %s: without %s TXT \"v=DMARC1\" receivers send no %s "
                        "reports there (RFC 7489 §7.1)", tag, u->uri, u->domain, at, name,
                        strcmp(tag, "rua") == 0 ? "aggregate" : "failure"),
                doc_fmt(c, "ask the operator of %s to publish %s. IN TXT \"v=DMARC1\" (or "
                        "%s._report._dmarc.%s to accept reports for every domain), or send "
                        "the reports to an address under %s", u->domain, name, "*",
                        u->domain, org));
    }
    doc_txts_free(&t);
}

/* Audits the DMARC record found at _dmarc.at; inherited when at is the
 * organizational domain of c->domain (no record of its own). */
static void analyze_dmarc(struct doc_ctx *c, const char *at, const char *txt, size_t len,
                          bool inherited, char *summary, size_t sumlen)
{
    struct dmarc_record r;
    char err[200], quoted[208];
    doc_excerpt(txt, len, 200, quoted);
    if (dmarc_record_parse(txt, len, &r, err, sizeof err) != 0) {
        char *rr = starter_dmarc(c, at);
        doc_add(c, DOCTOR_DMARC, DOCTOR_ERROR,
                doc_fmt(c, "the DMARC record at _dmarc.%s is invalid: %s; receivers ignore it, "
                        "so no DMARC policy applies to %s. The record: \"%s\"", at, err,
                        c->domain, quoted),
                rr ? doc_fmt(c, "replace it with a valid record, for a start %s", rr) : NULL);
        free(rr);
        return;
    }
    c->dmarc_found = true;
    c->dmarc = r;
    snprintf(c->dmarc_at, sizeof c->dmarc_at, "%s", at);
    for (size_t i = 0; i < r.nwarnings; i++)
        doc_add(c, DOCTOR_DMARC, DOCTOR_WARN,
                doc_fmt(c, "the DMARC record at _dmarc.%s: %s", at, r.warnings[i]),
                doc_fmt(c, "correct that tag in the record at _dmarc.%s (RFC 7489 §6.3)", at));
    enum dmarc_policy eff = inherited && r.sp != DMARC_P_UNSET ? r.sp : r.p;
    const char *pname = dmarc_policy_name(eff);
    if (eff == DMARC_P_NONE) {
        const char *tag = inherited && r.sp != DMARC_P_UNSET ? "sp" : "p";
        char *rr = dmarc_with(c, at, txt, len, tag, "quarantine");
        doc_add(c, DOCTOR_DMARC, DOCTOR_WARN,
                doc_fmt(c, "%s=none at _dmarc.%s: monitoring only — receivers deliver mail "
                        "that fails DMARC as usual, so mail forged as %s is not stopped", tag,
                        at, c->domain),
                rr ? doc_fmt(c, "once the aggregate reports show all your own mail passing, "
                             "move to quarantine, then reject: %s", rr) : NULL);
        free(rr);
    }
    if (!inherited && r.p != DMARC_P_NONE && r.sp == DMARC_P_NONE) {
        char *rr = dmarc_with(c, at, txt, len, "sp", NULL);
        doc_add(c, DOCTOR_DMARC, DOCTOR_WARN,
                doc_fmt(c, "sp=none at _dmarc.%s: subdomains of %s are not protected — mail "
                        "forged as anything.%s that fails DMARC is delivered", at, at, at),
                rr ? doc_fmt(c, "drop sp= so that p=%s covers subdomains too: %s",
                             dmarc_policy_name(r.p), rr) : NULL);
        free(rr);
    }
    if (eff != DMARC_P_NONE && r.pct < 100) {
        char *rr = dmarc_with(c, at, txt, len, "pct", NULL);
        doc_add(c, DOCTOR_DMARC, DOCTOR_WARN,
                doc_fmt(c, "pct=%u at _dmarc.%s: the %s policy applies to only %u%% of the "
                        "mail that fails DMARC; the rest gets a milder treatment "
                        "(RFC 7489 §6.6.4)", r.pct, at, pname, r.pct),
                rr ? doc_fmt(c, "when you are confident, remove pct= (100 is the default): %s",
                             rr) : NULL);
        free(rr);
    }
    if (r.nrua == 0) {
        char value[DNS_MAX_NAME_LEN + 32];
        snprintf(value, sizeof value, "mailto:dmarc-reports@%s", at);
        char *rr = dmarc_with(c, at, txt, len, "rua", value);
        doc_add(c, DOCTOR_DMARC, DOCTOR_WARN,
                doc_fmt(c, "the DMARC record at _dmarc.%s has no rua=: you receive no "
                        "aggregate reports, so you cannot see who sends mail as %s or "
                        "whether your own mail passes", at, at),
                rr ? doc_fmt(c, "add a report address: %s", rr) : NULL);
        free(rr);
    }
    char org[DNS_MAX_NAME_LEN + 2];
    dmarc_org_domain(at, org, sizeof org);
    for (size_t i = 0; i < r.nrua + r.nruf; i++) {
        const struct dmarc_uri *u = i < r.nrua ? &r.rua[i] : &r.ruf[i - r.nrua];
        bool seen = false; /* one check per destination domain */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp((j < r.nrua ? &r.rua[j] : &r.ruf[j - r.nrua])->domain, u->domain) == 0;
        if (!seen)
            check_report_uri(c, at, org, u, i < r.nrua ? "rua" : "ruf");
    }
    snprintf(summary, sumlen, "%s%s%s: \"%s\" (policy %s%s%s)",
             inherited ? "no record at _dmarc." : "record at _dmarc.",
             inherited ? c->domain : at,
             inherited ? "; the organizational domain's record applies" : "", quoted,
             pname ? pname : "?", r.pct < 100 ? ", sampled" : "",
             r.nrua ? ", aggregate reports requested" : "");
}

void doc_audit_dmarc(struct doc_ctx *c, char *summary, size_t sumlen)
{
    summary[0] = '\0';
    char org[DNS_MAX_NAME_LEN + 2];
    dmarc_org_domain(c->domain, org, sizeof org);
    const char *tries[2] = { c->domain, org };
    bool near_reported = false;
    for (int k = 0; k < 2; k++) {
        const char *at = tries[k];
        if (k == 1 && strcmp(org, c->domain) == 0)
            break;
        char name[DNS_MAX_NAME_LEN + 16];
        snprintf(name, sizeof name, "_dmarc.%s", at);
        struct doc_txts t;
        doc_query_txt(c, name, &t);
        if (t.status == DNS_TEMPFAIL) {
            doc_add(c, DOCTOR_DMARC, DOCTOR_ERROR,
                    doc_fmt(c, "the lookup of %s failed (timeout or server failure): "
                            "receivers get temperror for DMARC", name),
                    doc_fmt(c, "make sure the nameservers of %s answer TXT queries", at));
            doc_txts_free(&t);
            return;
        }
        size_t found = 0, which = 0;
        const struct doc_txt *near = NULL;
        for (size_t i = 0; i < t.n; i++) {
            if (dmarc_is_record(t.recs[i].text, t.recs[i].len)) {
                if (!found++)
                    which = i;
            } else if (!near && strcasestr(t.recs[i].text, "dmarc1")) {
                near = &t.recs[i];
            }
        }
        if (near && k == 0) {
            char quoted[128];
            doc_excerpt(near->text, near->len, 100, quoted);
            doc_add(c, DOCTOR_DMARC, DOCTOR_ERROR,
                    doc_fmt(c, "the TXT record at %s does not start with \"v=DMARC1\" exactly, "
                            "so receivers ignore it: \"%s\"", name, quoted),
                    doc_fmt(c, "begin the record with \"v=DMARC1;\" (capitals, as the first "
                            "tag, RFC 7489 §6.4)"));
            near_reported = true;
        }
        if (found > 1) {
            doc_add(c, DOCTOR_DMARC, DOCTOR_ERROR,
                    doc_fmt(c, "%s has %zu DMARC records: receivers apply no policy at all "
                            "when there is more than one (RFC 7489 §6.6.3)", name, found),
                    doc_fmt(c, "delete all but one of the records at %s", name));
            doc_txts_free(&t);
            return;
        }
        if (found == 1) {
            analyze_dmarc(c, at, t.recs[which].text, t.recs[which].len, k == 1, summary,
                          sumlen);
            doc_txts_free(&t);
            return;
        }
        doc_txts_free(&t);
    }
    if (near_reported)
        return;
    char *rr = starter_dmarc(c, c->domain);
    doc_add(c, DOCTOR_DMARC, DOCTOR_MISSING,
            doc_fmt(c, "no DMARC record at _dmarc.%s%s%s: receivers apply no policy to mail "
                    "forged as %s, and you get no reports", c->domain,
                    strcmp(org, c->domain) ? " or _dmarc." : "",
                    strcmp(org, c->domain) ? org : "", c->domain),
            rr ? doc_fmt(c, "publish %s to start collecting reports, then move to "
                         "p=quarantine and p=reject once they show all your mail passing",
                         rr) : NULL);
    free(rr);
}

/* ---- MTA-STS and TLS-RPT ---- */

/* Does txt start with "v=<version>" followed by ';', WSP or the end? */
static bool starts_version(const struct doc_txt *t, const char *version)
{
    size_t n = strlen(version);
    return t->len >= n + 2 && memcmp(t->text, "v=", 2) == 0 &&
           memcmp(t->text + 2, version, n) == 0 &&
           (t->len == n + 2 || t->text[n + 2] == ';' || sv_is_wsp(t->text[n + 2]));
}

/* The value of tag in a "k=v; k=v" record, or a zero-length view. */
static struct sv field(const struct doc_txt *t, const char *tag, bool *present)
{
    struct sv rest = sv_make(t->text, t->len);
    *present = false;
    while (rest.len) {
        size_t semi = sv_find(rest, ';');
        struct sv item = sv_trim(sv_sub(rest, 0, semi));
        rest = semi < rest.len ? sv_sub(rest, semi + 1, rest.len) : sv_make(rest.p + rest.len, 0);
        size_t eq = sv_find(item, '=');
        if (eq < item.len && sv_eq_ci_cstr(sv_trim(sv_sub(item, 0, eq)), tag)) {
            *present = true;
            return sv_trim(sv_sub(item, eq + 1, item.len));
        }
    }
    return sv_make(t->text, 0);
}

/* Looks up name and finds the records starting with v=version. */
static const struct doc_txt *find_versioned(struct doc_ctx *c, enum doctor_check chk,
                                            const char *name, const char *version,
                                            struct doc_txts *t, size_t *found)
{
    doc_query_txt(c, name, t);
    const struct doc_txt *rec = NULL;
    *found = 0;
    if (t->status == DNS_TEMPFAIL) {
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "the lookup of %s failed (timeout or server failure)", name),
                doc_fmt(c, "make sure the nameservers answer TXT queries for %s", name));
        return NULL;
    }
    for (size_t i = 0; i < t->n; i++)
        if (starts_version(&t->recs[i], version) && !(*found)++)
            rec = &t->recs[i];
    if (*found > 1) {
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "%s has %zu v=%s records: senders treat that as no policy at all",
                        name, *found, version),
                doc_fmt(c, "delete all but one of the v=%s records at %s", version, name));
        return NULL;
    }
    return rec;
}

void doc_audit_mta_sts(struct doc_ctx *c)
{
    if (c->null_mx) {
        doc_add(c, DOCTOR_MTA_STS, DOCTOR_OK,
                doc_fmt(c, "not needed: %s has a null MX and receives no mail", c->domain), NULL);
        return;
    }
    char name[DNS_MAX_NAME_LEN + 16], host[DNS_MAX_NAME_LEN + 16];
    snprintf(name, sizeof name, "_mta-sts.%s", c->domain);
    snprintf(host, sizeof host, "mta-sts.%s", c->domain);
    struct doc_txts t;
    size_t found;
    size_t start = c->rep->count;
    const struct doc_txt *rec = find_versioned(c, DOCTOR_MTA_STS, name, "STSv1", &t, &found);
    if (!rec && c->rep->count == start) {
        doc_add(c, DOCTOR_MTA_STS, DOCTOR_WARN,
                doc_fmt(c, "no MTA-STS policy (%s TXT \"v=STSv1; id=...\"): senders deliver "
                        "to %s over TLS only opportunistically, so a forged MX or a stripped "
                        "STARTTLS goes unnoticed (RFC 8461)", name, c->domain),
                doc_fmt(c, "serve https://%s/.well-known/mta-sts.txt containing \"version: "
                        "STSv1\\nmode: testing\\nmx: %s\\nmax_age: 604800\" (mode: enforce "
                        "once TLS-RPT reports are clean), then publish %s. IN TXT \"v=STSv1; "
                        "id=20240101T000000\" (change id= whenever the policy changes)",
                        host, c->first_mx[0] ? c->first_mx : "<your MX host>", name));
    } else if (rec) {
        bool present;
        struct sv id = field(rec, "id", &present);
        bool id_ok = present && id.len >= 1 && id.len <= 32;
        for (size_t i = 0; id_ok && i < id.len; i++)
            id_ok = isalnum((unsigned char)id.p[i]) != 0;
        if (!id_ok) {
            char quoted[128];
            doc_excerpt(rec->text, rec->len, 100, quoted);
            doc_add(c, DOCTOR_MTA_STS, DOCTOR_ERROR,
                    doc_fmt(c, "the MTA-STS record at %s has %s id= (1 to 32 letters and "
                            "digits, RFC 8461 §3.1), so senders ignore it: \"%s\"", name,
                            present ? "an invalid" : "no", quoted),
                    doc_fmt(c, "publish %s. IN TXT \"v=STSv1; id=20240101T000000\"", name));
        }
        int has = doc_has_address(c, host);
        if (has == 0)
            doc_add(c, DOCTOR_MTA_STS, DOCTOR_ERROR,
                    doc_fmt(c, "%s publishes MTA-STS, but the policy host %s has no address: "
                            "senders cannot fetch the policy, so it is not in effect", name,
                            host),
                    doc_fmt(c, "publish %s. IN A <web server address> and serve "
                            "https://%s/.well-known/mta-sts.txt with a valid certificate",
                            host, host));
        if (c->rep->count == start)
            doc_add(c, DOCTOR_MTA_STS, DOCTOR_OK,
                    doc_fmt(c, "MTA-STS announced at %s (id=%.*s)%s; the policy file at "
                            "https://%s/.well-known/mta-sts.txt was not fetched (doctor reads "
                            "DNS only)", name, (int)id.len, id.p,
                            has < 0 ? ", the address of the policy host could not be looked up"
                                    : "", host), NULL);
    }
    doc_txts_free(&t);
}

void doc_audit_tls_rpt(struct doc_ctx *c)
{
    if (c->null_mx) {
        doc_add(c, DOCTOR_TLS_RPT, DOCTOR_OK,
                doc_fmt(c, "not needed: %s has a null MX and receives no mail", c->domain), NULL);
        return;
    }
    char name[DNS_MAX_NAME_LEN + 16];
    snprintf(name, sizeof name, "_smtp._tls.%s", c->domain);
    struct doc_txts t;
    size_t found;
    size_t start = c->rep->count;
    const struct doc_txt *rec = find_versioned(c, DOCTOR_TLS_RPT, name, "TLSRPTv1", &t, &found);
    char *rr = doc_fmt(c, "%s. IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@%s\"", name,
                       c->domain);
    if (!rec && c->rep->count == start) {
        doc_add(c, DOCTOR_TLS_RPT, DOCTOR_WARN,
                doc_fmt(c, "no TLS-RPT record (%s TXT \"v=TLSRPTv1; rua=...\"): you get no "
                        "reports when senders fail to deliver to %s over TLS (RFC 8460)",
                        name, c->domain),
                rr ? doc_fmt(c, "publish %s", rr) : NULL);
    } else if (rec) {
        bool present;
        struct sv rua = field(rec, "rua", &present);
        bool ok = present && rua.len > 0;
        struct sv rest = rua;
        while (ok && rest.len) {
            size_t comma = sv_find(rest, ',');
            struct sv uri = sv_trim(sv_sub(rest, 0, comma));
            rest = comma < rest.len ? sv_sub(rest, comma + 1, rest.len)
                                    : sv_make(rest.p + rest.len, 0);
            ok = (sv_has_prefix_ci(uri, "mailto:") && uri.len > 7 && sv_find(uri, '@') < uri.len) ||
                 (sv_has_prefix_ci(uri, "https://") && uri.len > 8);
        }
        char quoted[208];
        doc_excerpt(rec->text, rec->len, 200, quoted);
        if (!ok)
            doc_add(c, DOCTOR_TLS_RPT, DOCTOR_ERROR,
                    doc_fmt(c, "the TLS-RPT record at %s has %s rua= (mailto: or https: URIs, "
                            "RFC 8460 §3), so no reports are sent: \"%s\"", name,
                            present ? "an invalid" : "no", quoted),
                    rr ? doc_fmt(c, "publish %s", rr) : NULL);
        else
            doc_add(c, DOCTOR_TLS_RPT, DOCTOR_OK,
                    doc_fmt(c, "TLS-RPT reports requested at %s: \"%s\"", name, quoted), NULL);
    }
    free(rr);
    doc_txts_free(&t);
}
