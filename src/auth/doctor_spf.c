/* The SPF part of the domain audit (doctor.h): fetches a domain's SPF record,
 * checks its syntax and policy (the all term, ptr, size, badly joined
 * strings), and walks include: and redirect= recursively to count the
 * DNS-querying terms and void lookups a receiver spends in the worst case
 * (no term matching the client), which RFC 7208 §4.6.4 limits to 10 and 2.
 *
 * It does not evaluate the record for an IP address (`sesame spf` does),
 * and terms with macros (%{i}, %{l}, ...) are counted but not followed:
 * where they lead depends on the message. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/doctor_internal.h"
#include "auth/spf_internal.h"
#include "util/buf.h"
#include "util/limits.h"

#define WALK_MAX_DEPTH   10   /* include/redirect nesting followed */
#define WALK_MAX_RECORDS 40   /* records fetched for one audit */
#define SPF_ADVISED_LEN  450  /* RFC 7208 §3.4: small enough for a 512-byte UDP answer */

struct frame {
    char domain[DNS_MAX_NAME_LEN + 1];
    char via[DNS_MAX_NAME_LEN + 16]; /* the term that led here ("include:x"); "" at the top */
};

struct walk {
    struct doc_ctx *c;
    enum doctor_check chk;
    unsigned lookups, voids, records, macro_terms;
    struct frame stack[WALK_MAX_DEPTH + 1];
    size_t depth;            /* frames in use */
    struct buf breakdown;    /* "example.test 3, _spf.a.test 4" */
    struct buf void_names;   /* "a.example.test, mx:b.example.test" */
    char *over_at;           /* where the 11th DNS-querying term is (malloc'd) */
    bool truncated;          /* stopped following after WALK_MAX_RECORDS */
    bool breakdown_cut, void_names_cut; /* the lists hit their caps */
};

enum fetch { F_ONE, F_NONE, F_MANY, F_TEMP };

static size_t name_len(const char *s)
{
    size_t n = strlen(s);
    return n && s[n - 1] == '.' ? n - 1 : n;
}

/* Looks up the SPF records of domain: F_ONE with *rec pointing into t. */
static enum fetch fetch_spf(struct doc_ctx *c, const char *domain, struct doc_txts *t,
                            const struct doc_txt **rec, size_t *nfound)
{
    doc_query_txt(c, domain, t);
    *rec = NULL;
    *nfound = 0;
    if (t->status == DNS_TEMPFAIL)
        return F_TEMP;
    for (size_t i = 0; i < t->n; i++) {
        if (!spf_record_is_spf1(t->recs[i].text, t->recs[i].len))
            continue;
        if (!*rec)
            *rec = &t->recs[i];
        (*nfound)++;
    }
    return *nfound == 0 ? F_NONE : *nfound > 1 ? F_MANY : F_ONE;
}

/* "example.test -> include:_spf.a.test -> redirect=_spf.b.test" */
static void append_path(struct walk *w, struct buf *b)
{
    bool ok = buf_append_str(b, w->stack[0].domain) == 0;
    for (size_t i = 1; ok && i < w->depth; i++)
        ok = buf_printf(b, " -> %s", w->stack[i].via) == 0;
    if (!ok)
        w->c->oom = true;
}

/* "the SPF record of X" or "the SPF record of X (reached via A -> include:X)" */
static char *record_name(struct walk *w)
{
    struct buf b;
    buf_init(&b, 4096);
    const char *d = w->stack[w->depth - 1].domain;
    bool ok = buf_printf(&b, "the SPF record of %s", d) == 0;
    if (ok && w->depth > 1) {
        ok = buf_append_str(&b, " (reached via ") == 0;
        append_path(w, &b);
        ok = ok && buf_append_char(&b, ')') == 0;
    }
    char *s = ok ? buf_detach(&b) : NULL;
    buf_free(&b);
    if (!s)
        w->c->oom = true;
    return s;
}

static void count_lookup(struct walk *w, const char *domain, struct sv term)
{
    if (++w->lookups != SPF_MAX_DNS_MECHANISMS + 1 || w->over_at)
        return;
    struct buf b;
    buf_init(&b, 4096);
    bool ok = buf_printf(&b, "'%.*s' in the record of %s", (int)(term.len > 80 ? 80 : term.len),
                         term.p, domain) == 0;
    if (ok && w->depth > 1) {
        ok = buf_append_str(&b, ", reached via ") == 0;
        append_path(w, &b);
    }
    w->over_at = ok ? buf_detach(&b) : NULL;
    buf_free(&b);
    if (!w->over_at)
        w->c->oom = true;
}

static void note_void(struct walk *w, const char *what, const char *name)
{
    w->voids++;
    /* the list is for the message only: past its cap it is cut short */
    if (buf_printf(&w->void_names, "%s%s%s", w->void_names.len ? ", " : "", what, name) != 0)
        w->void_names_cut = true;
}

/* The record at owner with term (and its qualifier) replaced by
 * replacement, or removed when replacement is "", as a TXT record line. */
static char *record_with(struct doc_ctx *c, const char *owner, const char *txt, size_t len,
                         const struct spf_term *t, const char *replacement)
{
    size_t start = (size_t)(t->text.p - txt), end = start + t->text.len;
    if (start > 0 && memchr("+-~?", txt[start - 1], 4))
        start--;
    if (!replacement[0]) {
        if (start > 0 && txt[start - 1] == ' ')
            start--;
        else if (end < len && txt[end] == ' ')
            end++;
    }
    char *value = doc_fmt(c, "%.*s%s%.*s", (int)start, txt, replacement, (int)(len - end),
                          txt + end);
    if (!value)
        return NULL;
    char *rr = doc_txt_rr(c, owner, value);
    free(value);
    return rr;
}

static void walk_record(struct walk *w, const char *domain, const char *txt, size_t len,
                        bool policy);

/* Follows include: (policy false) or redirect= to target. */
static void follow(struct walk *w, const char *target, bool policy, bool include,
                   struct sv term)
{
    struct doc_ctx *c = w->c;
    const char *from = w->stack[w->depth - 1].domain;
    char via[sizeof w->stack[0].via];
    snprintf(via, sizeof via, "%s%.*s", include ? "include:" : "redirect=",
             (int)name_len(target), target);
    for (size_t i = 0; i < w->depth; i++) {
        if (name_len(w->stack[i].domain) == name_len(target) &&
            strncasecmp(w->stack[i].domain, target, name_len(target)) == 0) {
            struct buf b;
            buf_init(&b, 4096);
            append_path(w, &b);
            doc_add(c, w->chk, DOCTOR_ERROR,
                    doc_fmt(c, "SPF loop: %s -> %s comes back to %s; receivers go round "
                            "until the limit of %d DNS lookups and return permerror",
                            buf_cstr(&b), via, target, SPF_MAX_DNS_MECHANISMS),
                    doc_fmt(c, "remove '%s' from the SPF record of %s", via, from));
            buf_free(&b);
            return;
        }
    }
    if (w->depth > WALK_MAX_DEPTH) {
        doc_add(c, w->chk, DOCTOR_ERROR,
                doc_fmt(c, "SPF includes are nested more than %d levels deep at '%s' in the "
                        "record of %s", WALK_MAX_DEPTH, via, from),
                doc_fmt(c, "flatten the includes: list the ip4:/ip6: ranges directly"));
        return;
    }
    if (++w->records > WALK_MAX_RECORDS) {
        w->truncated = true;
        return;
    }
    struct doc_txts t;
    const struct doc_txt *rec;
    size_t n;
    enum fetch f = fetch_spf(c, target, &t, &rec, &n);
    const char *result = include ? "SPF of the whole domain ends in" : "receivers return";
    switch (f) {
    case F_TEMP:
        doc_add(c, w->chk, DOCTOR_ERROR,
                doc_fmt(c, "'%.*s' in the SPF record of %s: the DNS lookup of %s failed "
                        "(timeout or server failure); receivers get temperror",
                        (int)term.len, term.p, from, target),
                doc_fmt(c, "make sure the nameservers of %s answer, or remove '%s' from the "
                        "SPF record of %s", target, via, from));
        break;
    case F_NONE:
        doc_add(c, w->chk, DOCTOR_ERROR,
                doc_fmt(c, "'%.*s' in the SPF record of %s points to %s, which has no SPF "
                        "record: %s permerror for every message (RFC 7208 §%s)",
                        (int)term.len, term.p, from, target, result, include ? "5.2" : "6.1"),
                doc_fmt(c, "correct the name (the sending service documents the one to "
                        "include) or remove '%s' from the SPF record of %s", via, from));
        break;
    case F_MANY:
        doc_add(c, w->chk, DOCTOR_ERROR,
                doc_fmt(c, "'%.*s' in the SPF record of %s points to %s, which publishes %zu "
                        "SPF records: %s permerror (RFC 7208 §4.5)", (int)term.len, term.p,
                        from, target, n, result),
                doc_fmt(c, "%s must publish exactly one SPF record; ask its operator, or "
                        "remove '%s' from the SPF record of %s", target, via, from));
        break;
    case F_ONE: {
        struct frame *fr = &w->stack[w->depth++];
        snprintf(fr->domain, sizeof fr->domain, "%.*s", (int)name_len(target), target);
        memcpy(fr->via, via, sizeof via);
        walk_record(w, fr->domain, rec->text, rec->len, policy);
        w->depth--;
        break;
    }
    }
    doc_txts_free(&t);
}

/* The a, mx and exists terms: is the name a void lookup? */
static void check_void(struct walk *w, const char *from, const struct spf_term *t,
                       const char *target)
{
    struct doc_ctx *c = w->c;
    if (t->mech == SPF_M_A) {
        int has = doc_has_address(c, target);
        if (has == 0)
            note_void(w, "a:", target);
        else if (has < 0)
            doc_add(c, w->chk, DOCTOR_ERROR,
                    doc_fmt(c, "'%.*s' in the SPF record of %s: the address lookup of %s "
                            "failed; receivers get temperror", (int)t->text.len, t->text.p,
                            from, target),
                    doc_fmt(c, "make sure the nameservers of %s answer", target));
        return;
    }
    struct dns_answer a;
    dns_query(c->dns, target, t->mech == SPF_M_MX ? DNS_T_MX : DNS_T_A, &a);
    if (a.status == DNS_NXDOMAIN || a.status == DNS_NODATA) {
        note_void(w, t->mech == SPF_M_MX ? "mx:" : "exists:", target);
    } else if (a.status == DNS_TEMPFAIL) {
        doc_add(c, w->chk, DOCTOR_ERROR,
                doc_fmt(c, "'%.*s' in the SPF record of %s: the DNS lookup of %s failed; "
                        "receivers get temperror", (int)t->text.len, t->text.p, from, target),
                doc_fmt(c, "make sure the nameservers of %s answer", target));
    } else if (a.status == DNS_OK && t->mech == SPF_M_MX && a.count > SPF_MAX_MX_NAMES) {
        doc_add(c, w->chk, DOCTOR_ERROR,
                doc_fmt(c, "'%.*s' in the SPF record of %s: %s has %zu MX records, more than "
                        "the %d an 'mx' term may look at; receivers return permerror "
                        "(RFC 7208 §4.6.4)", (int)t->text.len, t->text.p, from, target,
                        a.count, SPF_MAX_MX_NAMES),
                doc_fmt(c, "list the sending hosts with ip4:/ip6: instead of 'mx'"));
    }
    dns_answer_release(&a);
}

static void check_all(struct walk *w, const char *domain, const char *txt, size_t len,
                      const struct spf_term *t, bool policy)
{
    struct doc_ctx *c = w->c;
    bool open_net = t->mech != SPF_M_ALL; /* ip4:0.0.0.0/0, ip6:::/0 */
    if (t->qualifier == SPF_PASS) {
        char *who = record_name(w);
        if (!who)
            return;
        char term[64];
        snprintf(term, sizeof term, "%s%.*s", t->text.p > txt && t->text.p[-1] == '+' ? "+" : "",
                 (int)(t->text.len > 48 ? 48 : t->text.len), t->text.p);
        doc_add(c, w->chk, DOCTOR_ERROR,
                doc_fmt(c, "%s has '%s': every host on the internet passes SPF for %s%s", who,
                        term, w->stack[0].domain,
                        policy ? "" : " (an include that matches everything makes the whole "
                                      "record pass)"),
                w->depth == 1 ? record_with(c, domain, txt, len, t, open_net ? "" : "-all")
                              : doc_fmt(c, "%s must not match every address: ask its operator "
                                        "to fix it, or remove '%s' from the SPF record of %s",
                                        domain, w->stack[1].via, w->stack[0].domain));
        free(who);
        return;
    }
    if (!policy || open_net || t->qualifier != SPF_NEUTRAL)
        return;
    char *who = record_name(w);
    if (!who)
        return;
    doc_add(c, w->chk, DOCTOR_WARN,
            doc_fmt(c, "%s ends in '?all': hosts it does not list get neutral, which receivers "
                    "treat like no SPF at all", who),
            record_with(c, domain, txt, len, t, "-all"));
    free(who);
}

static void walk_record(struct walk *w, const char *domain, const char *txt, size_t len,
                        bool policy)
{
    struct doc_ctx *c = w->c;
    struct spf_record rec;
    char err[160], quoted[SPF_ADVISED_LEN + 8];
    if (spf_record_parse(txt, len, &rec, err, sizeof err) != 0) {
        char *who = record_name(w);
        if (!who)
            return;
        doc_excerpt(txt, len, SPF_ADVISED_LEN, quoted);
        doc_add(c, w->chk, DOCTOR_ERROR,
                doc_fmt(c, "%s has a syntax error: %s; receivers return permerror for every "
                        "message (RFC 7208 §4.6). The record: \"%s\"", who, err, quoted),
                w->depth == 1
                    ? doc_fmt(c, "correct the record at %s (`sesame spf` shows the same error "
                              "for any sender)", domain)
                    : doc_fmt(c, "%s is not yours to fix: ask its operator, or remove '%s' "
                              "from the SPF record of %s", domain, w->stack[w->depth - 1].via,
                              w->stack[w->depth - 2].domain));
        free(who);
        return;
    }
    unsigned own = rec.has_redirect && !rec.has_all ? 1 : 0;
    for (size_t i = 0; i < rec.nterms; i++)
        own += rec.terms[i].mech != SPF_M_ALL && rec.terms[i].mech != SPF_M_IP4 &&
               rec.terms[i].mech != SPF_M_IP6;
    if (buf_printf(&w->breakdown, "%s%s %u", w->breakdown.len ? ", " : "", domain, own) != 0)
        w->breakdown_cut = true; /* for the message only */

    const struct spf_term *all = NULL;
    bool ptr_seen = false;
    for (size_t i = 0; i < rec.nterms; i++) {
        const struct spf_term *t = &rec.terms[i];
        if (all && t == all + 1) {
            char *who = record_name(w);
            if (who)
                doc_add(c, w->chk, DOCTOR_WARN,
                        doc_fmt(c, "%s has terms after 'all', which are never evaluated "
                                "(from '%.*s' on)", who, (int)(t->text.len > 60 ? 60
                                : t->text.len), t->text.p),
                        doc_fmt(c, "move 'all' to the end of the record at %s", domain));
            free(who);
        }
        switch (t->mech) {
        case SPF_M_ALL:
            if (!all) {
                all = t;
                check_all(w, domain, txt, len, t, policy);
            }
            continue;
        case SPF_M_IP4:
        case SPF_M_IP6:
            if ((t->mech == SPF_M_IP4 ? t->cidr4 : t->cidr6) == 0)
                check_all(w, domain, txt, len, t, policy);
            continue;
        default:
            break;
        }
        count_lookup(w, domain, t->text);
        if (t->domain_spec.len && memchr(t->domain_spec.p, '%', t->domain_spec.len)) {
            w->macro_terms++;
            continue;
        }
        char target[DNS_MAX_NAME_LEN + 2];
        struct sv spec = t->domain_spec.len ? t->domain_spec : sv_cstr(domain);
        if (spec.len >= sizeof target || !dns_name_is_valid(spec.p, spec.len)) {
            char *who = record_name(w);
            bool inc = t->mech == SPF_M_INCLUDE;
            if (who)
                doc_add(c, w->chk, inc ? DOCTOR_ERROR : DOCTOR_WARN,
                        doc_fmt(c, "%s has '%.*s', whose domain is not a valid DNS name (labels "
                                "of 1 to 63 characters, 253 in all): %s", who,
                                (int)(t->text.len > 80 ? 80 : t->text.len), t->text.p,
                                inc ? "receivers return permerror"
                                    : "the term never matches"),
                        doc_fmt(c, "correct the name in the record at %s", domain));
            free(who);
            continue;
        }
        snprintf(target, sizeof target, "%.*s", (int)spec.len, spec.p);
        switch (t->mech) {
        case SPF_M_INCLUDE:
            follow(w, target, false, true, t->text);
            break;
        case SPF_M_PTR:
            if (!ptr_seen) {
                ptr_seen = true;
                char *who = record_name(w);
                if (who)
                    doc_add(c, w->chk, DOCTOR_WARN,
                            doc_fmt(c, "%s uses 'ptr', which RFC 7208 §5.5 says not to use: "
                                    "it is slow, depends on reverse DNS you may not control, "
                                    "and some receivers ignore it", who),
                            w->depth == 1
                                ? record_with(c, domain, txt, len, t, "")
                                : doc_fmt(c, "ask the operator of %s to drop 'ptr'", domain));
                free(who);
            }
            break;
        default:
            /* receivers stop at the 11th lookup: later names are never asked */
            if (w->lookups <= SPF_MAX_DNS_MECHANISMS)
                check_void(w, domain, t, target);
            break;
        }
    }
    if (rec.has_redirect && rec.has_all) {
        char *who = record_name(w);
        if (who)
            doc_add(c, w->chk, DOCTOR_WARN,
                    doc_fmt(c, "%s has both 'all' and 'redirect=': the redirect is never used "
                            "(RFC 7208 §6.1)", who),
                    doc_fmt(c, "remove 'redirect=%.*s' or 'all' from the record at %s",
                            (int)rec.redirect.len, rec.redirect.p, domain));
        free(who);
    } else if (rec.has_redirect) {
        struct sv term = sv_make(rec.redirect.p - 9, rec.redirect.len + 9); /* "redirect=" */
        count_lookup(w, domain, term);
        if (memchr(rec.redirect.p, '%', rec.redirect.len)) {
            w->macro_terms++;
        } else if (rec.redirect.len >= DNS_MAX_NAME_LEN + 2 ||
                   !dns_name_is_valid(rec.redirect.p, rec.redirect.len)) {
            char *who = record_name(w);
            if (who)
                doc_add(c, w->chk, DOCTOR_ERROR,
                        doc_fmt(c, "%s has a redirect= whose domain is not a valid DNS name: "
                                "receivers return permerror", who),
                        doc_fmt(c, "correct the name in the record at %s", domain));
            free(who);
        } else {
            char target[DNS_MAX_NAME_LEN + 2];
            snprintf(target, sizeof target, "%.*s", (int)rec.redirect.len, rec.redirect.p);
            follow(w, target, policy, false, term);
        }
    } else if (!all && policy) {
        char *who = record_name(w);
        if (who) {
            char *value = doc_fmt(c, "%.*s -all", (int)len, txt);
            doc_add(c, w->chk, DOCTOR_WARN,
                    doc_fmt(c, "%s has no 'all' term and no 'redirect=': hosts it does not "
                            "list get neutral (the default), which protects nothing", who),
                    value ? doc_txt_rr(c, domain, value) : NULL);
            free(value);
        }
        free(who);
    }
    spf_record_free(&rec);
}

/* "v=spf1 a b -all" from several records: their terms once each, one all. */
static char *merged_record(struct doc_ctx *c, const char *owner, const struct doc_txts *t)
{
    struct buf b;
    buf_init(&b, 8192);
    bool ok = buf_append_str(&b, "v=spf1") == 0;
    char all[8] = "";
    for (size_t i = 0; ok && i < t->n; i++) {
        struct sv rest = sv_make(t->recs[i].text, t->recs[i].len);
        if (!spf_record_is_spf1(rest.p, rest.len))
            continue;
        rest = sv_sub(rest, 6, rest.len);
        while (rest.len && ok) {
            size_t sp = sv_find(rest, ' ');
            struct sv tok = sv_sub(rest, 0, sp);
            rest = sv_sub(rest, sp < rest.len ? sp + 1 : sp, rest.len);
            if (!tok.len)
                continue;
            struct sv bare = memchr("+-~?", tok.p[0], 4) ? sv_sub(tok, 1, tok.len) : tok;
            if (sv_eq_ci_cstr(bare, "all")) {
                /* keep the strictest; never +all */
                static const char order[] = "-~?";
                char q = tok.len == 4 ? tok.p[0] : '+';
                const char *rank = strchr(order, q), *have = all[0] ? strchr(order, all[0]) : NULL;
                if (q && rank && (!have || rank < have))
                    snprintf(all, sizeof all, "%call", q);
                continue;
            }
            if (sv_has_prefix_ci(tok, "redirect="))
                continue;
            char needle[600];
            if (tok.len + 2 >= sizeof needle)
                continue;
            snprintf(needle, sizeof needle, " %.*s ", (int)tok.len, tok.p);
            struct buf probe;
            buf_init(&probe, b.len + 2);
            bool dup = buf_printf(&probe, "%s ", buf_cstr(&b)) == 0 &&
                       strstr(buf_cstr(&probe), needle) != NULL;
            buf_free(&probe);
            if (!dup)
                ok = buf_printf(&b, " %.*s", (int)tok.len, tok.p) == 0;
        }
    }
    ok = ok && buf_printf(&b, " %s", all[0] ? all : "-all") == 0;
    char *rr = ok ? doc_txt_rr(c, owner, buf_cstr(&b)) : NULL;
    buf_free(&b);
    if (!ok)
        c->oom = true;
    return rr;
}

/* The record to suggest to a domain without one. */
static char *suggested(struct doc_ctx *c, enum doctor_check chk, const char *domain)
{
    if (chk == DOCTOR_SPF && c->null_mx)
        return doc_fmt(c, "if %s sends no mail, publish %s. IN TXT \"v=spf1 -all\"", domain,
                       domain);
    char *rr = doc_txt_rr(c, domain, "v=spf1 mx -all");
    char *fix = rr ? doc_fmt(c, "publish %s — 'mx' authorizes the hosts of %s's MX; add "
                             "ip4:/ip6:/include: for every other server or service that "
                             "sends as %s", rr, domain, domain) : NULL;
    free(rr);
    return fix;
}

void doc_spf_audit(struct doc_ctx *c, enum doctor_check chk, const char *domain,
                   char *summary, size_t sumlen)
{
    summary[0] = '\0';
    struct doc_txts t;
    const struct doc_txt *rec;
    size_t n;
    char quoted[SPF_ADVISED_LEN + 8];
    enum fetch f = fetch_spf(c, domain, &t, &rec, &n);
    if (f == F_TEMP) {
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "the TXT lookup of %s failed (timeout or server failure): "
                        "receivers get temperror for SPF", domain),
                doc_fmt(c, "make sure the nameservers of %s answer TXT queries", domain));
        doc_txts_free(&t);
        return;
    }
    if (f == F_NONE) {
        const struct doc_txt *near = NULL;
        for (size_t i = 0; i < t.n && !near; i++)
            if (t.recs[i].len < 4096 && strcasestr(t.recs[i].text, "spf1"))
                near = &t.recs[i];
        if (near)
            doc_excerpt(near->text, near->len, 120, quoted);
        doc_add(c, chk, chk == DOCTOR_MAIL_FROM ? DOCTOR_ERROR : DOCTOR_MISSING,
                doc_fmt(c, "%s%s has no SPF record%s%s%s: %s", chk == DOCTOR_MAIL_FROM
                        ? "the MAIL FROM domain " : "", domain,
                        near ? " (a TXT record looks like one but does not start with "
                               "'v=spf1 ': \"" : "",
                        near ? quoted : "", near ? "\")" : "",
                        chk == DOCTOR_MAIL_FROM
                            ? "SPF is none for mail sent with it, so DMARC cannot pass "
                              "through SPF"
                            : "receivers cannot tell which servers may send as it (SPF none)"),
                suggested(c, chk, domain));
        doc_txts_free(&t);
        return;
    }
    if (f == F_MANY) {
        char *merged = merged_record(c, domain, &t);
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "%s publishes %zu SPF records: receivers return permerror for every "
                        "message (RFC 7208 §4.5)", domain, n),
                merged ? doc_fmt(c, "merge them into one record and delete the others: %s",
                                 merged) : NULL);
        free(merged);
        doc_txts_free(&t);
        return;
    }

    doc_excerpt(rec->text, rec->len, SPF_ADVISED_LEN, quoted);
    if (rec->len > SPF_ADVISED_LEN)
        doc_add(c, chk, DOCTOR_WARN,
                doc_fmt(c, "the SPF record of %s is %zu bytes; above %d the DNS answer may not "
                        "fit in 512 bytes and some receivers fail to fetch it (RFC 7208 §3.4)",
                        domain, rec->len, SPF_ADVISED_LEN),
                doc_fmt(c, "shorten it: merge ip4:/ip6: ranges into wider prefixes, or move "
                        "part of it to include:_spf.%s", domain));
    if (rec->suspicious_join) {
        size_t j = rec->suspicious_join;
        size_t from = j > 30 ? j - 30 : 0, to = j + 30 < rec->len ? j + 30 : rec->len;
        char around[80];
        doc_excerpt(rec->text + from, to - from, 60, around);
        doc_add(c, chk, DOCTOR_WARN,
                doc_fmt(c, "the SPF record of %s is split into %zu strings that are joined "
                        "without a space, which glues two terms together: \"...%s...\"",
                        domain, rec->nstrings, around),
                doc_fmt(c, "end each string with a space (or start the next with one): "
                        "receivers concatenate the strings exactly as published "
                        "(RFC 7208 §3.3)"));
    }

    struct walk w = { .c = c, .chk = chk };
    buf_init(&w.breakdown, 16384);
    buf_init(&w.void_names, 4096);
    snprintf(w.stack[0].domain, sizeof w.stack[0].domain, "%s", domain);
    w.depth = 1;
    walk_record(&w, domain, rec->text, rec->len, true);
    if (w.lookups > SPF_MAX_DNS_MECHANISMS)
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "SPF for %s needs %u DNS lookups when no term matches (limit %d, "
                        "RFC 7208 §4.6.4): %s%s. The %dth is %s; receivers stop there with "
                        "permerror%s", domain, w.lookups, SPF_MAX_DNS_MECHANISMS,
                        buf_cstr(&w.breakdown), w.breakdown_cut ? ", ..." : "",
                        SPF_MAX_DNS_MECHANISMS + 1,
                        w.over_at ? w.over_at : "?",
                        w.macro_terms ? " (terms with macros were counted once each)" : ""),
                doc_fmt(c, "bring it to %d or fewer: remove include: of services you no "
                        "longer use, replace a/mx/include with the ip4:/ip6: ranges they "
                        "stand for, drop ptr", SPF_MAX_DNS_MECHANISMS));
    if (w.voids > SPF_MAX_VOID_LOOKUPS)
        doc_add(c, chk, DOCTOR_ERROR,
                doc_fmt(c, "SPF for %s has %u void lookups (names that do not exist or have "
                        "no records: %s%s); receivers return permerror after %d (RFC 7208 "
                        "§4.6.4)", domain, w.voids, buf_cstr(&w.void_names),
                        w.void_names_cut ? ", ..." : "", SPF_MAX_VOID_LOOKUPS),
                doc_fmt(c, "remove the terms that point at those names, or publish records "
                        "for them"));
    if (w.truncated)
        doc_add(c, chk, DOCTOR_WARN,
                doc_fmt(c, "SPF for %s includes more than %d records; the audit stopped "
                        "following them there", domain, WALK_MAX_RECORDS),
                doc_fmt(c, "simplify the record: most of those includes are not needed"));
    snprintf(summary, sumlen, "\"%.*s\"%s (%u of %d DNS lookups%s, %u void)",
             (int)(strlen(quoted) > 200 ? 200 : strlen(quoted)), quoted,
             strlen(quoted) > 200 ? "..." : "", w.lookups, SPF_MAX_DNS_MECHANISMS,
             w.macro_terms ? ", macros counted once" : "", w.voids);
    free(w.over_at);
    buf_free(&w.breakdown);
    buf_free(&w.void_names);
    doc_txts_free(&t);
}
