/* SPF record parser (RFC 7208 §4.5, §4.6, §5, §6, §12 ABNF).
 *
 * Turns the text of one record into terms, checking the whole record's
 * syntax first, as §4.6 requires ("any syntax errors anywhere in the record"
 * → permerror before evaluation). It does no DNS and no macro expansion:
 * domain-specs are validated here and expanded by the evaluator. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/spf_internal.h"
#include "util/limits.h"

#define SPF_VERSION "v=spf1"

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool spf_record_is_spf1(const char *txt, size_t len)
{
    size_t n = sizeof SPF_VERSION - 1;
    return len >= n && strncasecmp(txt, SPF_VERSION, n) == 0 &&
           (len == n || txt[n] == ' ');
}

static int fail(char *err, size_t errlen, const char *what, struct sv term)
{
    snprintf(err, errlen, "%s: '%.*s'", what, (int)(term.len > 80 ? 80 : term.len), term.p);
    return -1;
}

/* ip4-cidr-length / ip6-cidr-length digits: "0" or no leading zero, <= max. */
static bool parse_cidr_digits(struct sv d, unsigned max, uint8_t *out)
{
    unsigned long v;
    if (d.len == 0 || d.len > 3 || (d.len > 1 && d.p[0] == '0'))
        return false;
    if (!sv_to_uint(d, max, &v))
        return false;
    *out = (uint8_t)v;
    return true;
}

/* Length of the run of digits ending arg (0 when it does not end in one). */
static size_t trailing_digits(struct sv arg)
{
    size_t n = 0;
    while (n < arg.len && is_digit(arg.p[arg.len - 1 - n]))
        n++;
    return n;
}

/* Strips a trailing dual-cidr-length ("/N", "//M" or "/N//M") from *arg.
 * Returns false on a malformed or out-of-range length. Anything else left
 * at the end is judged by the domain-spec check. */
static bool strip_dual_cidr(struct sv *arg, uint8_t *cidr4, uint8_t *cidr6)
{
    *cidr4 = 32;
    *cidr6 = 128;
    size_t n = trailing_digits(*arg);
    if (n && arg->len >= n + 2 && arg->p[arg->len - n - 1] == '/' &&
        arg->p[arg->len - n - 2] == '/') {
        if (!parse_cidr_digits(sv_sub(*arg, arg->len - n, arg->len), 128, cidr6))
            return false;
        arg->len -= n + 2;
        n = trailing_digits(*arg);
    }
    if (n && arg->len >= n + 1 && arg->p[arg->len - n - 1] == '/') {
        if (!parse_cidr_digits(sv_sub(*arg, arg->len - n, arg->len), 32, cidr4))
            return false;
        arg->len -= n + 1;
    }
    return true;
}

/* ip4-network: four qnums, no leading zeros (RFC 7208 §12). */
static bool parse_ip4(struct sv s, uint8_t out[4])
{
    size_t pos = 0;
    for (int octet = 0; octet < 4; octet++) {
        size_t start = pos;
        while (pos < s.len && is_digit(s.p[pos]))
            pos++;
        struct sv d = sv_sub(s, start, pos);
        unsigned long v;
        if (d.len == 0 || d.len > 3 || (d.len > 1 && d.p[0] == '0') || !sv_to_uint(d, 255, &v))
            return false;
        out[octet] = (uint8_t)v;
        if (octet < 3) {
            if (pos >= s.len || s.p[pos] != '.')
                return false;
            pos++;
        }
    }
    return pos == s.len;
}

static bool parse_ip6(struct sv s, uint8_t out[16])
{
    char tmp[64];
    if (s.len == 0 || s.len >= sizeof tmp)
        return false;
    memcpy(tmp, s.p, s.len);
    tmp[s.len] = '\0';
    return inet_pton(AF_INET6, tmp, out) == 1;
}

/* The mechanisms, their names and what may follow the name. */
enum arg_rule { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };
static const struct {
    const char *name;
    enum spf_mech mech;
    enum arg_rule domain;  /* ":" domain-spec */
    bool dual_cidr;
} mechanisms[] = {
    { "all", SPF_M_ALL, ARG_NONE, false },
    { "include", SPF_M_INCLUDE, ARG_REQUIRED, false },
    { "a", SPF_M_A, ARG_OPTIONAL, true },
    { "mx", SPF_M_MX, ARG_OPTIONAL, true },
    { "ptr", SPF_M_PTR, ARG_OPTIONAL, false },
    { "ip4", SPF_M_IP4, ARG_REQUIRED, false },
    { "ip6", SPF_M_IP6, ARG_REQUIRED, false },
    { "exists", SPF_M_EXISTS, ARG_REQUIRED, false },
};

static int parse_directive(struct sv term, struct spf_term *t, char *err, size_t errlen)
{
    struct sv rest = term;
    t->qualifier = SPF_PASS;
    switch (rest.len ? rest.p[0] : 0) {
    case '+': t->qualifier = SPF_PASS; rest = sv_sub(rest, 1, rest.len); break;
    case '-': t->qualifier = SPF_FAIL; rest = sv_sub(rest, 1, rest.len); break;
    case '~': t->qualifier = SPF_SOFTFAIL; rest = sv_sub(rest, 1, rest.len); break;
    case '?': t->qualifier = SPF_NEUTRAL; rest = sv_sub(rest, 1, rest.len); break;
    }
    t->text = rest;
    size_t name_end = 0;
    while (name_end < rest.len && rest.p[name_end] != ':' && rest.p[name_end] != '/')
        name_end++;
    struct sv name = sv_sub(rest, 0, name_end);
    struct sv arg = sv_sub(rest, name_end, rest.len);
    char lname[8];
    size_t m = sizeof mechanisms / sizeof mechanisms[0];
    if (name.len < sizeof lname) {
        for (size_t i = 0; i < name.len; i++)
            lname[i] = (char)tolower((unsigned char)name.p[i]);
        lname[name.len] = '\0';
        for (m = 0; m < sizeof mechanisms / sizeof mechanisms[0]; m++)
            if (lname[0] == mechanisms[m].name[0] && strcmp(lname, mechanisms[m].name) == 0)
                break;
    }
    if (m == sizeof mechanisms / sizeof mechanisms[0])
        return fail(err, errlen, "unknown mechanism", term);
    t->mech = mechanisms[m].mech;
    t->domain_spec = sv_make(NULL, 0);
    t->cidr4 = 32;
    t->cidr6 = 128;

    if (t->mech == SPF_M_IP4 || t->mech == SPF_M_IP6) {
        if (arg.len < 2 || arg.p[0] != ':')
            return fail(err, errlen, "ip4/ip6 needs an address", term);
        arg = sv_sub(arg, 1, arg.len);
        size_t slash = sv_find(arg, '/');
        struct sv addr = sv_sub(arg, 0, slash);
        bool v4 = t->mech == SPF_M_IP4;
        if (slash < arg.len) {
            uint8_t *cidr = v4 ? &t->cidr4 : &t->cidr6;
            if (!parse_cidr_digits(sv_sub(arg, slash + 1, arg.len), v4 ? 32 : 128, cidr))
                return fail(err, errlen, "invalid CIDR length", term);
        }
        if (v4 ? !parse_ip4(addr, t->addr) : !parse_ip6(addr, t->addr))
            return fail(err, errlen, v4 ? "invalid IPv4 network" : "invalid IPv6 network", term);
        return 0;
    }

    if (mechanisms[m].dual_cidr && !strip_dual_cidr(&arg, &t->cidr4, &t->cidr6))
        return fail(err, errlen, "invalid CIDR length", term);
    if (arg.len == 0) {
        if (mechanisms[m].domain == ARG_REQUIRED)
            return fail(err, errlen, "mechanism needs a domain", term);
        return 0;
    }
    if (arg.p[0] != ':' || mechanisms[m].domain == ARG_NONE)
        return fail(err, errlen, "unexpected text after mechanism", term);
    t->domain_spec = sv_sub(arg, 1, arg.len);
    if (spf_domain_spec_check(t->domain_spec, err, errlen) != 0)
        return -1;
    return 0;
}

/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ); returns the index of
 * the '=' that makes term a modifier, or 0 when it is not one. */
static size_t modifier_eq(struct sv term)
{
    if (term.len == 0 || !is_alpha(term.p[0]))
        return 0;
    for (size_t i = 1; i < term.len; i++) {
        char c = term.p[i];
        if (c == '=')
            return i;
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.')
            return 0;
    }
    return 0;
}

int spf_record_parse(const char *txt, size_t len, struct spf_record *out,
                     char *err, size_t errlen)
{
    out->terms = out->inline_terms;
    out->nterms = 0;
    out->redirect = out->exp = sv_make(NULL, 0);
    out->has_redirect = out->has_exp = out->has_all = false;
    if (len > SPF_MAX_RECORD_LEN) {
        snprintf(err, errlen, "record longer than %d bytes", SPF_MAX_RECORD_LEN);
        return -1;
    }
    if (!spf_record_is_spf1(txt, len)) {
        snprintf(err, errlen, "not an SPF record");
        return -1;
    }
    unsigned bad = 0; /* branch-free, so the compiler vectorizes it */
    for (size_t i = 0; i < len; i++)
        bad |= (unsigned char)(txt[i] - 0x20) > 0x5e;
    for (size_t i = 0; bad && i < len; i++) {
        unsigned char c = (unsigned char)txt[i];
        if (c < 0x20 || c > 0x7e) {
            snprintf(err, errlen, "record contains a %s character at offset %zu",
                     c > 0x7e ? "non-ASCII" : "control", i);
            return -1;
        }
    }
    size_t cap = SPF_INLINE_TERMS;
    out->terms = out->inline_terms;
    size_t pos = sizeof SPF_VERSION - 1;
    while (pos < len) {
        while (pos < len && txt[pos] == ' ')
            pos++;
        size_t start = pos;
        const char *sp = memchr(txt + pos, ' ', len - pos);
        pos = sp ? (size_t)(sp - txt) : len;
        if (pos == start)
            break;
        struct sv term = sv_make(txt + start, pos - start);
        size_t eq = modifier_eq(term);
        if (eq) {
            struct sv name = sv_sub(term, 0, eq), value = sv_sub(term, eq + 1, term.len);
            bool redirect = sv_eq_ci_cstr(name, "redirect"), exp = sv_eq_ci_cstr(name, "exp");
            if (redirect || exp) {
                if (redirect ? out->has_redirect : out->has_exp) {
                    fail(err, errlen, "modifier appears twice", term);
                    goto bad;
                }
                if (spf_domain_spec_check(value, err, errlen) != 0)
                    goto bad;
                if (redirect) {
                    out->redirect = value;
                    out->has_redirect = true;
                } else {
                    out->exp = value;
                    out->has_exp = true;
                }
            } else if (spf_macro_check(value, false, err, errlen) != 0) {
                goto bad; /* unknown modifiers are ignored, but must parse */
            }
            continue;
        }
        if (out->nterms == SPF_MAX_TERMS) {
            snprintf(err, errlen, "more than %d mechanisms", SPF_MAX_TERMS);
            goto bad;
        }
        if (out->nterms == cap) {
            struct spf_term *n = out->terms == out->inline_terms
                                     ? malloc(2 * cap * sizeof *n)
                                     : realloc(out->terms, 2 * cap * sizeof *n);
            if (!n) {
                snprintf(err, errlen, "out of memory");
                goto bad;
            }
            if (out->terms == out->inline_terms)
                memcpy(n, out->inline_terms, sizeof out->inline_terms);
            out->terms = n;
            cap *= 2;
        }
        struct spf_term *t = &out->terms[out->nterms];
        if (parse_directive(term, t, err, errlen) != 0)
            goto bad;
        out->nterms++;
        if (t->mech == SPF_M_ALL)
            out->has_all = true;
    }
    return 0;
bad:
    spf_record_free(out);
    return -1;
}

void spf_record_free(struct spf_record *r)
{
    if (r->terms != r->inline_terms)
        free(r->terms);
    r->terms = NULL;
    r->nterms = 0;
}
