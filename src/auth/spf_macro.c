/* SPF macro-strings (RFC 7208 §7): syntax checks for macro-strings and
 * domain-specs, and expansion with the context of one check_host() call.
 * The only DNS-dependent letter, %{p}, is delegated to a callback so this
 * file does no I/O. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "auth/spf_internal.h"
#include "util/limits.h"

#define DELIMITERS ".-+,/_="

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* One parsed %{...} */
struct macro {
    char letter;        /* lower case */
    bool upper;         /* URL-escape the result */
    unsigned long keep; /* rightmost parts to keep; 0 = all */
    bool reverse;
    char delims[8];     /* NUL-terminated set; "" = default "." */
};

enum token { TOK_LITERAL, TOK_MACRO, TOK_ESCAPE };

/* Reads one token at *pos. For TOK_MACRO fills m; for TOK_ESCAPE and
 * TOK_LITERAL sets *text and *textlen to what it expands to. */
static int next_token(struct sv s, size_t *pos, bool exp_text, enum token *kind,
                      struct macro *m, const char **text, size_t *textlen,
                      char *err, size_t errlen)
{
    size_t i = *pos;
    char c = s.p[i];
    if (c != '%') {
        unsigned char u = (unsigned char)c;
        if (!((u >= 0x21 && u <= 0x7e) || (exp_text && u == ' '))) {
            snprintf(err, errlen, "invalid character 0x%02x in macro-string", u);
            return -1;
        }
        *kind = TOK_LITERAL;
        *text = s.p + i;
        *textlen = 1;
        *pos = i + 1;
        return 0;
    }
    if (i + 1 >= s.len) {
        snprintf(err, errlen, "'%%' at the end of a macro-string");
        return -1;
    }
    c = s.p[i + 1];
    *kind = TOK_ESCAPE;
    *pos = i + 2;
    switch (c) {
    case '%': *text = "%"; *textlen = 1; return 0;
    case '_': *text = " "; *textlen = 1; return 0;
    case '-': *text = "%20"; *textlen = 3; return 0;
    case '{': break;
    default:
        snprintf(err, errlen, "'%%' followed by '%c' (want {, %%, _ or -)", c);
        return -1;
    }
    i += 2;
    *kind = TOK_MACRO;
    memset(m, 0, sizeof *m);
    if (i >= s.len) {
        snprintf(err, errlen, "unterminated macro");
        return -1;
    }
    char letter = lower(s.p[i]);
    if (!strchr(exp_text ? "slodiphcrtv" : "slodiphv", letter) || !is_alpha(s.p[i])) {
        snprintf(err, errlen, "invalid macro letter '%c'%s", s.p[i],
                 strchr("crt", letter) ? " (c, r and t are for exp= text only)" : "");
        return -1;
    }
    m->letter = letter;
    m->upper = s.p[i] != letter;
    i++;
    size_t dstart = i;
    while (i < s.len && is_digit(s.p[i]))
        i++;
    if (i > dstart) {
        unsigned long keep;
        struct sv digits = sv_sub(s, dstart, i);
        /* Any count beyond the number of parts keeps them all. */
        if (!sv_to_uint(digits, 1000000, &keep))
            keep = 1000000;
        if (keep == 0) {
            snprintf(err, errlen, "macro transformer digit must be nonzero");
            return -1;
        }
        m->keep = keep;
    }
    if (i < s.len && (s.p[i] == 'r' || s.p[i] == 'R')) {
        m->reverse = true;
        i++;
    }
    size_t nd = 0;
    while (i < s.len && s.p[i] != '}') {
        if (!s.p[i] || !strchr(DELIMITERS, s.p[i])) {
            snprintf(err, errlen, "invalid macro delimiter '%c'", s.p[i]);
            return -1;
        }
        if (!strchr(m->delims, s.p[i]) && nd < sizeof m->delims - 1)
            m->delims[nd++] = s.p[i];
        i++;
    }
    if (i >= s.len) {
        snprintf(err, errlen, "unterminated macro");
        return -1;
    }
    *pos = i + 1;
    return 0;
}

int spf_macro_check(struct sv s, bool exp_text, char *err, size_t errlen)
{
    size_t pos = 0;
    enum token kind;
    struct macro m;
    const char *text;
    size_t textlen;
    while (pos < s.len)
        if (next_token(s, &pos, exp_text, &kind, &m, &text, &textlen, err, errlen) != 0)
            return -1;
    return 0;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool is_toplabel(struct sv l)
{
    if (l.len == 0)
        return false;
    bool alpha = false, hyphen = false;
    for (size_t i = 0; i < l.len; i++) {
        if (l.p[i] == '-')
            hyphen = true;
        else if (is_alpha(l.p[i]))
            alpha = true;
        else if (!is_digit(l.p[i]))
            return false;
    }
    if (hyphen)
        return is_alnum(l.p[0]) && is_alnum(l.p[l.len - 1]);
    return alpha;
}

int spf_domain_spec_check(struct sv s, char *err, size_t errlen)
{
    if (s.len == 0) {
        snprintf(err, errlen, "empty domain-spec");
        return -1;
    }
    size_t pos = 0, literal_start = 0;
    enum token kind = TOK_LITERAL;
    /* Most domain-specs have no macro: then the whole string is one
     * literal run, checked here in one branch-free pass. */
    if (!memchr(s.p, '%', s.len)) {
        unsigned bad = 0;
        for (size_t i = 0; i < s.len; i++)
            bad |= (unsigned char)(s.p[i] - 0x21) > 0x5d;
        if (!bad)
            pos = s.len;
    }
    struct macro m;
    const char *text;
    size_t textlen;
    while (pos < s.len) {
        if (next_token(s, &pos, false, &kind, &m, &text, &textlen, err, errlen) != 0)
            return -1;
        if (kind != TOK_LITERAL)
            literal_start = pos;
    }
    if (kind != TOK_LITERAL)
        return 0; /* domain-end = macro-expand */
    struct sv lit = sv_sub(s, literal_start, s.len);
    if (lit.len && lit.p[lit.len - 1] == '.')
        lit.len--;
    size_t dot = lit.len;
    while (dot > 0 && lit.p[dot - 1] != '.')
        dot--;
    if (dot == 0 || !is_toplabel(sv_sub(lit, dot, lit.len))) {
        snprintf(err, errlen, "domain-spec '%.*s' does not end in a valid top label",
                 (int)(s.len > 80 ? 80 : s.len), s.p);
        return -1;
    }
    return 0;
}

void spf_ip_reverse_name(const struct spf_ip *ip, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    if (ip->family == AF_INET) {
        snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", ip->addr[3], ip->addr[2],
                 ip->addr[1], ip->addr[0]);
        return;
    }
    size_t n = 0;
    for (int i = 15; i >= 0 && n + 4 < outlen; i--) {
        out[n++] = hex[ip->addr[i] & 0xf];
        out[n++] = '.';
        out[n++] = hex[ip->addr[i] >> 4];
        out[n++] = '.';
    }
    snprintf(out + n, outlen - n, "ip6.arpa");
}

/* The raw value of a macro letter, into val. */
static int letter_value(char letter, const struct spf_macro_ctx *ctx, struct buf *val)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[INET6_ADDRSTRLEN + 1];
    switch (letter) {
    case 's': return buf_append(val, ctx->sender.p, ctx->sender.len);
    case 'l': return buf_append(val, ctx->local.p, ctx->local.len);
    case 'o': return buf_append(val, ctx->sender_domain.p, ctx->sender_domain.len);
    case 'd': return buf_append(val, ctx->domain.p, ctx->domain.len);
    case 'h': return buf_append(val, ctx->helo.p, ctx->helo.len);
    case 'v': return buf_append_str(val, ctx->ip->family == AF_INET ? "in-addr" : "ip6");
    case 'r':
        return ctx->receiver.len ? buf_append(val, ctx->receiver.p, ctx->receiver.len)
                                 : buf_append_str(val, "unknown");
    case 't': return buf_printf(val, "%lld", (long long)ctx->now);
    case 'p':
        if (!ctx->ptr_name)
            return buf_append_str(val, "unknown");
        return ctx->ptr_name(ctx->ptr_arg, ctx->domain, val);
    case 'c':
        if (!inet_ntop(ctx->ip->family, ctx->ip->addr, tmp, sizeof tmp))
            return -1;
        return buf_append_str(val, tmp);
    case 'i':
        if (ctx->ip->family == AF_INET) {
            for (int i = 0; i < 4; i++) {
                char dec[4];
                size_t n = 0;
                unsigned v = ctx->ip->addr[i];
                if (v >= 100)
                    dec[n++] = (char)('0' + v / 100);
                if (v >= 10)
                    dec[n++] = (char)('0' + v / 10 % 10);
                dec[n++] = (char)('0' + v % 10);
                dec[n++] = '.';
                if (buf_append(val, dec, i < 3 ? n : n - 1) != 0)
                    return -1;
            }
            return 0;
        }
        for (int i = 0; i < 16; i++) {
            char nib[4] = { hex[ctx->ip->addr[i] >> 4], '.', hex[ctx->ip->addr[i] & 0xf],
                            i < 15 ? '.' : '\0' };
            if (buf_append(val, nib, i < 15 ? 4 : 3) != 0)
                return -1;
        }
        return 0;
    }
    return -1;
}

static bool is_unreserved(char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Splits val on the delimiters, reverses, keeps the rightmost parts, joins
 * with '.', URL-escapes when asked, and appends the result to out. */
static int transform(const struct macro *m, struct sv val, struct buf *out)
{
    enum { MAX_PARTS = 128 };
    struct sv parts[MAX_PARTS];
    size_t n = 0;
    const char *delims = m->delims[0] ? m->delims : ".";
    bool transformed = m->keep || m->reverse || m->delims[0];
    if (transformed) {
        size_t start = 0;
        for (size_t i = 0; i <= val.len; i++) {
            if (i == val.len || strchr(delims, val.p[i])) {
                if (n == MAX_PARTS)
                    return -1;
                parts[n++] = sv_sub(val, start, i);
                start = i + 1;
            }
        }
    } else {
        parts[n++] = val;
    }
    if (m->reverse)
        for (size_t i = 0; i < n / 2; i++) {
            struct sv t = parts[i];
            parts[i] = parts[n - 1 - i];
            parts[n - 1 - i] = t;
        }
    size_t first = (m->keep && m->keep < n) ? n - m->keep : 0;
    for (size_t i = first; i < n; i++) {
        if (i > first && buf_append_char(out, '.') != 0)
            return -1;
        if (!m->upper) {
            if (buf_append(out, parts[i].p, parts[i].len) != 0)
                return -1;
            continue;
        }
        for (size_t k = 0; k < parts[i].len; k++) {
            unsigned char c = (unsigned char)parts[i].p[k];
            int rc = is_unreserved((char)c) ? buf_append_char(out, (char)c)
                                            : buf_printf(out, "%%%02X", c);
            if (rc != 0)
                return -1;
        }
    }
    return 0;
}

int spf_macro_expand(struct sv s, bool exp_text, const struct spf_macro_ctx *ctx,
                     struct buf *out)
{
    char err[128];
    char valbuf[SPF_MAX_EXPANSION_LEN + 1];
    struct buf val;
    buf_init_fixed(&val, valbuf, sizeof valbuf);
    buf_reset(out);
    size_t pos = 0;
    int rc = 0;
    while (pos < s.len && rc == 0) {
        /* copy a run of literal characters at once */
        const char *pct = memchr(s.p + pos, '%', s.len - pos);
        size_t run = pct ? (size_t)(pct - s.p) - pos : s.len - pos;
        if (run) {
            for (size_t k = pos; k < pos + run; k++) {
                unsigned char u = (unsigned char)s.p[k];
                if (!((u >= 0x21 && u <= 0x7e) || (exp_text && u == ' ')))
                    rc = -1;
            }
            if (rc == 0)
                rc = buf_append(out, s.p + pos, run);
            pos += run;
            continue;
        }
        enum token kind;
        struct macro m;
        const char *text;
        size_t textlen;
        if (next_token(s, &pos, exp_text, &kind, &m, &text, &textlen, err, sizeof err) != 0) {
            rc = -1;
            break;
        }
        if (kind != TOK_MACRO) {
            rc = buf_append(out, text, textlen);
            continue;
        }
        buf_reset(&val);
        rc = letter_value(m.letter, ctx, &val);
        if (rc == 0)
            rc = transform(&m, sv_make(buf_cstr(&val), val.len), out);
    }
    buf_free(&val);
    if (rc != 0)
        return -1;
    if (!exp_text) {
        /* §4.8: drop labels from the left until the name fits in 253. */
        size_t len = out->len, skip = 0;
        if (len && out->data[len - 1] == '.')
            len--;
        while (len - skip > DNS_MAX_NAME_LEN) {
            const char *dot = memchr(out->data + skip, '.', len - skip);
            if (!dot)
                break;
            skip = (size_t)(dot - out->data) + 1;
        }
        if (skip) {
            memmove(out->data, out->data + skip, out->len - skip + 1);
            out->len -= skip;
        }
    }
    return 0;
}
