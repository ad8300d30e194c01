/* DKIM text helpers: the tag-list parser of RFC 6376 §3.2 (signature fields
 * and key records share it), base64 with folding whitespace, domain syntax,
 * and the names of results, algorithms and canonicalizations. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "auth/dkim_internal.h"
#include "dns/dns.h"

int dkim_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *dkim_result_name(enum dkim_result r)
{
    switch (r) {
    case DKIM_PASS: return "pass";
    case DKIM_FAIL: return "fail";
    case DKIM_NEUTRAL: return "neutral";
    case DKIM_POLICY: return "policy";
    case DKIM_TEMPERROR: return "temperror";
    case DKIM_PERMERROR: return "permerror";
    }
    return "permerror";
}

const char *dkim_algorithm_name(enum dkim_algorithm a)
{
    switch (a) {
    case DKIM_ALG_RSA_SHA256: return "rsa-sha256";
    case DKIM_ALG_ED25519_SHA256: return "ed25519-sha256";
    case DKIM_ALG_RSA_SHA1: return "rsa-sha1";
    }
    return "?";
}

const char *dkim_canon_name(enum dkim_canon c)
{
    return c == DKIM_CANON_SIMPLE ? "simple" : "relaxed";
}

static int canon_word(struct sv w, enum dkim_canon *out)
{
    if (sv_eq_ci_cstr(w, "simple"))
        *out = DKIM_CANON_SIMPLE;
    else if (sv_eq_ci_cstr(w, "relaxed"))
        *out = DKIM_CANON_RELAXED;
    else
        return -1;
    return 0;
}

/* "h/b" or "h" (body simple), RFC 6376 §3.5 c=. */
static int canon_parse_sv(struct sv text, enum dkim_canon *header, enum dkim_canon *body)
{
    size_t slash = sv_find(text, '/');
    if (canon_word(sv_sub(text, 0, slash), header) != 0)
        return -1;
    if (slash == text.len) {
        *body = DKIM_CANON_SIMPLE;
        return 0;
    }
    return canon_word(sv_sub(text, slash + 1, text.len), body);
}

int dkim_canon_parse(const char *text, enum dkim_canon *header, enum dkim_canon *body)
{
    return canon_parse_sv(sv_cstr(text), header, body);
}

/* Exposed to dkim_sig.c through this file only. */
int dkim_canon_parse_sv(struct sv text, enum dkim_canon *header, enum dkim_canon *body);
int dkim_canon_parse_sv(struct sv text, enum dkim_canon *header, enum dkim_canon *body)
{
    return canon_parse_sv(text, header, body);
}

bool dkim_domain_valid(struct sv d)
{
    if (d.len == 0 || d.p[d.len - 1] == '.' || !dns_name_is_valid(d.p, d.len))
        return false;
    for (size_t i = 0; i < d.len; i++) {
        unsigned char c = (unsigned char)d.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* ---- tag-list ---- */

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Length of the FWS at buf[i..len): WSP, or CRLF / LF followed by WSP. */
static size_t fws_len(const char *buf, size_t i, size_t len)
{
    size_t start = i;
    for (;;) {
        if (i < len && is_wsp(buf[i])) {
            i++;
        } else if (i + 2 < len && buf[i] == '\r' && buf[i + 1] == '\n' && is_wsp(buf[i + 2])) {
            i += 3;
        } else if (i + 1 < len && buf[i] == '\n' && is_wsp(buf[i + 1])) {
            i += 2;
        } else {
            return i - start;
        }
    }
}

/* How many octets from p are value characters (%x21-3A / %x3C-7E). */
static size_t value_run(const char *p, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i lo = _mm_set1_epi8(0x21), span = _mm_set1_epi8(0x7e - 0x21);
    const __m128i semi = _mm_set1_epi8(';');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i t = _mm_sub_epi8(v, lo);   /* in range: t <= span, unsigned */
        __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(v, semi),
                                      _mm_cmpeq_epi8(_mm_min_epu8(t, span), t));
        unsigned bad = ~(unsigned)_mm_movemask_epi8(ok) & 0xffff;
        if (bad)
            return i + (size_t)__builtin_ctz(bad);
    }
#endif
    while (i < n && (unsigned char)p[i] >= 0x21 && (unsigned char)p[i] <= 0x7e && p[i] != ';')
        i++;
    return i;
}

int dkim_taglist_parse(const char *buf, size_t len, struct dkim_taglist *out, char *err,
                       size_t errlen)
{
    out->count = 0;
    size_t i = 0;
    for (;;) {
        i += fws_len(buf, i, len);
        if (i >= len)
            return 0;
        if (buf[i] == ';') {        /* an empty tag-spec: tolerated */
            i++;
            continue;
        }
        if (!is_alpha(buf[i])) {
            if (buf[i] == '\0')
                return dkim_err(err, errlen, "NUL octet in tag-list");
            if (buf[i] == '\r' || buf[i] == '\n')
                return dkim_err(err, errlen, "line break not followed by whitespace in tag-list");
            return dkim_err(err, errlen, "tag name expected at offset %zu", i);
        }
        size_t ns = i;
        while (i < len && (is_alpha(buf[i]) || is_digit(buf[i]) || buf[i] == '_'))
            i++;
        struct sv name = sv_make(buf + ns, i - ns);
        i += fws_len(buf, i, len);
        if (i >= len || buf[i] != '=')
            return dkim_err(err, errlen, "tag '%.*s' has no '='", (int)(name.len > 32 ? 32 : name.len),
                            name.p);
        i++;
        size_t eq_end = i;
        i += fws_len(buf, i, len);
        size_t vs = i, ve = i;
        while (i < len && buf[i] != ';') {
            size_t r = value_run(buf + i, len - i);
            if (r) {
                i += r;
                ve = i;
                continue;
            }
            unsigned char c = (unsigned char)buf[i];
            if (c >= 0x21 && c <= 0x7e) {
                i++;
                ve = i;
                continue;
            }
            size_t f = fws_len(buf, i, len);
            if (f > 0) {
                i += f;
                continue;
            }
            if (c == 0)
                return dkim_err(err, errlen, "NUL octet in the value of tag '%.*s'",
                                (int)(name.len > 32 ? 32 : name.len), name.p);
            return dkim_err(err, errlen, "invalid octet 0x%02x in the value of tag '%.*s'", c,
                            (int)(name.len > 32 ? 32 : name.len), name.p);
        }
        for (size_t k = 0; k < out->count; k++)
            if (out->tags[k].name.len == name.len && memcmp(out->tags[k].name.p, name.p, name.len) == 0)
                return dkim_err(err, errlen, "duplicate tag '%.*s'",
                                (int)(name.len > 32 ? 32 : name.len), name.p);
        if (out->count == DKIM_MAX_TAGS)
            return dkim_err(err, errlen, "more than %d tags", DKIM_MAX_TAGS);
        out->tags[out->count++] = (struct dkim_tag){ name, sv_make(buf + vs, ve - vs), buf + eq_end };
        if (i < len)
            i++;    /* the ';' */
    }
}

/* ---- base64 ---- */

/* Octet classes, stored plus one so that the default 0 is "invalid":
 * b64_code[c] - 1 is 0..63 for data, B64_WS for folding whitespace
 * (skipped), B64_PAD for '=', B64_BAD for anything else. */
enum { B64_BAD = -1, B64_WS = 64, B64_PAD = 65 };
static const unsigned char b64_code[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
    ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
    ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
    ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
    ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
    ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
    ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
    [' '] = B64_WS + 1, ['\t'] = B64_WS + 1, ['\r'] = B64_WS + 1, ['\n'] = B64_WS + 1,
    ['='] = B64_PAD + 1,
};

int dkim_base64_decode(struct sv in, unsigned char *out, size_t cap, size_t *outlen,
                       const char **why)
{
    const unsigned char *p = (const unsigned char *)in.p;
    uint32_t acc = 0;
    size_t nchars = 0, pad = 0, n = 0;
    for (size_t i = 0; i < in.len;) {
        /* Whole quanta of four data characters, the common case. */
        if (nchars % 4 == 0 && !pad) {
            while (i + 4 <= in.len) {
                int a = b64_code[p[i]] - 1, b = b64_code[p[i + 1]] - 1,
                    c = b64_code[p[i + 2]] - 1, d = b64_code[p[i + 3]] - 1;
                if ((a | b | c | d) & ~63)
                    break;
                if (n + 3 > cap) {
                    *why = "too long";
                    return -1;
                }
                uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
                out[n++] = (unsigned char)(v >> 16);
                out[n++] = (unsigned char)(v >> 8);
                out[n++] = (unsigned char)v;
                nchars += 4;
                i += 4;
            }
            if (i >= in.len)
                break;
        }
        unsigned char ch = p[i++];
        int v = b64_code[ch] - 1;
        if (v == B64_WS)
            continue;
        if (v == B64_PAD) {
            if (++pad > 2) {
                *why = "too much '=' padding";
                return -1;
            }
            nchars++;
            continue;
        }
        if (v < 0) {
            *why = ch == 0 ? "NUL octet" : "invalid character";
            return -1;
        }
        if (pad) {
            *why = "data after '=' padding";
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        nchars++;
        if (nchars % 4 == 0) {
            if (n + 3 > cap) {
                *why = "too long";
                return -1;
            }
            out[n++] = (unsigned char)(acc >> 16);
            out[n++] = (unsigned char)(acc >> 8);
            out[n++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (nchars % 4 != 0) {
        *why = "length is not a multiple of 4 (missing padding?)";
        return -1;
    }
    if (pad) {
        /* The last quantum held 4 - pad characters, already shifted in as
         * if the padding were zeros: undo it. */
        size_t keep = 3 - pad;
        if (nchars / 4 == 0 || nchars - pad < (nchars / 4 - 1) * 4 + 2) {
            *why = "bad '=' padding";
            return -1;
        }
        /* acc holds 4 - pad sextets. */
        uint32_t full = acc << (6 * pad);
        if (n + keep > cap) {
            *why = "too long";
            return -1;
        }
        out[n++] = (unsigned char)(full >> 16);
        if (keep == 2)
            out[n++] = (unsigned char)(full >> 8);
    }
    *outlen = n;
    return 0;
}

int dkim_base64_encode(const unsigned char *in, size_t len, struct buf *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[256];   /* 48 input octets at a time → 64 characters */
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        q[n++] = tbl[(v >> 18) & 63];
        q[n++] = tbl[(v >> 12) & 63];
        q[n++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        q[n++] = i + 2 < len ? tbl[v & 63] : '=';
        if (n == sizeof q) {
            if (buf_append(out, q, n) != 0)
                return -1;
            n = 0;
        }
    }
    return n && buf_append(out, q, n) != 0 ? -1 : 0;
}
