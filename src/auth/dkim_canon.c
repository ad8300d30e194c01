/* DKIM canonicalization (RFC 6376 §3.4): header fields (simple, relaxed),
 * the streaming body canonicalizer with its hash, and the header hash of
 * §3.7. A bare LF is read as CRLF everywhere. The body state machine keeps
 * only a few flags between chunks, so a CRLF or a run of whitespace split
 * across chunks, and empty lines at the end, come out the same whatever
 * the chunking. Plain runs are found 16 octets at a time (SSE2). */
#include <pthread.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "auth/dkim_internal.h"

/* SHA-256 fetched once: implicit fetches cost a lookup per init. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

const EVP_MD *dkim_sha256(void);
const EVP_MD *dkim_sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* ---- header fields ---- */

static bool wsp(char c) { return c == ' ' || c == '\t'; }

int dkim_canon_header(enum dkim_canon c, const char *field, size_t len, struct buf *out)
{
    if (c == DKIM_CANON_SIMPLE) {
        size_t run = 0;
        for (size_t i = 0; i < len; i++) {
            if (field[i] == '\n' && (i == 0 || field[i - 1] != '\r')) {
                if (buf_append(out, field + run, i - run) != 0 || buf_append(out, "\r\n", 2) != 0)
                    return -1;
                run = i + 1;
            }
        }
        if (buf_append(out, field + run, len - run) != 0)
            return -1;
        return buf_append(out, "\r\n", 2);
    }
    const char *colon = memchr(field, ':', len);
    size_t nlen = colon ? (size_t)(colon - field) : len;
    while (nlen && (wsp(field[nlen - 1]) || field[nlen - 1] == '\r' || field[nlen - 1] == '\n'))
        nlen--;
    size_t start = out->len;
    if (buf_append(out, field, nlen) != 0)
        return -1;
    for (size_t i = start; i < out->len; i++)
        if (out->data[i] >= 'A' && out->data[i] <= 'Z')
            out->data[i] = (char)(out->data[i] + ('a' - 'A'));
    if (buf_append_char(out, ':') != 0)
        return -1;
    if (colon) {
        size_t i = (size_t)(colon - field) + 1;
        bool pending = false, started = false;
        while (i < len) {
            char ch = field[i];
            if (ch == '\r' && i + 1 < len && field[i + 1] == '\n') {
                i += 2;
                continue;
            }
            if (ch == '\n') {
                i++;
                continue;
            }
            if (wsp(ch)) {
                pending = true;
                i++;
                continue;
            }
            /* A run of value octets up to the next whitespace or line end. */
            size_t j = i + 1;
            while (j < len && !wsp(field[j]) && field[j] != '\r' && field[j] != '\n')
                j++;
            if (pending && started && buf_append_char(out, ' ') != 0)
                return -1;
            if (buf_append(out, field + i, j - i) != 0)
                return -1;
            pending = false;
            started = true;
            i = j;
        }
    }
    return buf_append(out, "\r\n", 2);
}

/* ---- body ---- */

int dkim_body_init(struct dkim_body *b, enum dkim_canon c, int64_t limit, struct buf *sink)
{
    memset(b, 0, offsetof(struct dkim_body, stage));
    b->canon = c;
    b->limited = limit >= 0;
    b->limit = limit >= 0 ? (uint64_t)limit : 0;
    b->sink = sink;
    if (!sink) {
        b->md = EVP_MD_CTX_new();
        if (!b->md || EVP_DigestInit_ex(b->md, dkim_sha256(), NULL) != 1) {
            EVP_MD_CTX_free(b->md);
            b->md = NULL;
            return -1;
        }
    }
    return 0;
}

void dkim_body_free(struct dkim_body *b)
{
    EVP_MD_CTX_free(b->md);
    b->md = NULL;
}

static void out_raw(struct dkim_body *b, const char *p, size_t n)
{
    if (b->sink) {
        if (buf_append(b->sink, p, n) != 0)
            b->failed = true;
    } else if (EVP_DigestUpdate(b->md, p, n) != 1) {
        b->failed = true;
    }
}

static void flush(struct dkim_body *b)
{
    if (b->nstage) {
        out_raw(b, b->stage, b->nstage);
        b->nstage = 0;
    }
}

static void emit(struct dkim_body *b, const char *p, size_t n)
{
    b->total += n;
    b->any = true;
    if (b->limited) {
        if (b->hashed >= b->limit)
            return;
        if (n > b->limit - b->hashed)
            n = (size_t)(b->limit - b->hashed);
    }
    b->hashed += n;
    if (n > sizeof b->stage / 2) {
        flush(b);
        out_raw(b, p, n);
        return;
    }
    if (n > sizeof b->stage - b->nstage)
        flush(b);
    memcpy(b->stage + b->nstage, p, n);
    b->nstage += n;
}

/* Octets p[0..n) that are canonical as they are, on the current line. */
static void content(struct dkim_body *b, const char *p, size_t n)
{
    if (!b->line_content) {
        for (; b->empty_lines; b->empty_lines--)
            emit(b, "\r\n", 2);
        b->line_content = true;
    }
    if (b->wsp) {
        emit(b, " ", 1);
        b->wsp = false;
    }
    emit(b, p, n);
}

static void line_end(struct dkim_body *b)
{
    b->wsp = false;
    if (b->line_content) {
        emit(b, "\r\n", 2);
        b->line_content = false;
    } else {
        b->empty_lines++;
    }
}

/* simple: the octets before the next CR or LF. */
static size_t span_simple(const char *p, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (m)
            return i + (size_t)__builtin_ctz((unsigned)m);
        i += 16;
    }
#endif
    while (i < n && p[i] != '\r' && p[i] != '\n')
        i++;
    return i;
}

static bool ws_or_eol(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* relaxed: the octets that are canonical as they are: anything but HTAB,
 * CR, LF, and SP unless a single SP before such an octet. A SP at the end
 * of the chunk is left for the state machine (what follows is unknown). */
static size_t span_relaxed(const char *p, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    while (i + 17 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 1));
        __m128i eol_v = _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf));
        __m128i bad_v = _mm_or_si128(eol_v, _mm_cmpeq_epi8(v, tab));
        __m128i ws_w = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, sp), _mm_cmpeq_epi8(w, tab)),
                                    _mm_or_si128(_mm_cmpeq_epi8(w, cr), _mm_cmpeq_epi8(w, lf)));
        __m128i dev = _mm_or_si128(bad_v, _mm_and_si128(_mm_cmpeq_epi8(v, sp), ws_w));
        int m = _mm_movemask_epi8(dev);
        if (m)
            return i + (size_t)__builtin_ctz((unsigned)m);
        i += 16;
    }
#endif
    while (i < n) {
        char c = p[i];
        if (c == '\t' || c == '\r' || c == '\n')
            break;
        if (c == ' ' && (i + 1 >= n || ws_or_eol(p[i + 1])))
            break;
        i++;
    }
    return i;
}

int dkim_body_update(struct dkim_body *b, const char *p, size_t len)
{
    size_t i = 0;
    bool relaxed = b->canon == DKIM_CANON_RELAXED;
    if (len == 0)
        return b->failed ? -1 : 0;
    if (b->cr) {
        b->cr = false;
        if (p[0] == '\n') {
            line_end(b);
            i = 1;
        } else {
            content(b, "\r", 1);
        }
    }
    while (i < len) {
        if (!b->wsp) {
            size_t k = relaxed ? span_relaxed(p + i, len - i) : span_simple(p + i, len - i);
            if (k) {
                content(b, p + i, k);
                i += k;
                continue;
            }
        }
        char c = p[i];
        if (c == '\r') {
            if (i + 1 == len) {
                b->cr = true;
                i++;
            } else if (p[i + 1] == '\n') {
                line_end(b);
                i += 2;
            } else {
                content(b, "\r", 1);
                i++;
            }
        } else if (c == '\n') {
            line_end(b);
            i++;
        } else if (relaxed && (c == ' ' || c == '\t')) {
            b->wsp = true;
            i++;
        } else {
            content(b, p + i, 1);
            i++;
        }
    }
    return b->failed ? -1 : 0;
}

int dkim_body_final(struct dkim_body *b, unsigned char digest[DKIM_SHA256_LEN])
{
    if (b->cr) {
        b->cr = false;
        content(b, "\r", 1);
    }
    b->wsp = false;
    if (b->line_content) {
        emit(b, "\r\n", 2);
        b->line_content = false;
    }
    if (b->canon == DKIM_CANON_SIMPLE && !b->any)
        emit(b, "\r\n", 2);
    flush(b);
    if (b->failed)
        return -1;
    if (b->md) {
        unsigned int n = 0;
        if (EVP_DigestFinal_ex(b->md, digest, &n) != 1 || n != DKIM_SHA256_LEN)
            return -1;
    }
    return 0;
}

/* ---- header hash ---- */

int dkim_header_digest(enum dkim_canon hc, const struct mail_field *fields, size_t nfields,
                       const struct sv *names, size_t nnames, const char *sig_field,
                       size_t sig_len, struct buf *scratch,
                       unsigned char digest[DKIM_SHA256_LEN])
{
    bool used[MAIL_MAX_HEADERS];
    if (nfields > MAIL_MAX_HEADERS)
        return -1;
    memset(used, 0, nfields * sizeof used[0]);
    buf_reset(scratch);
    for (size_t k = 0; k < nnames; k++) {
        for (size_t j = nfields; j-- > 0;) {
            if (!used[j] && sv_eq_ci(fields[j].name, names[k])) {
                used[j] = true;
                if (dkim_canon_header(hc, fields[j].raw.p, fields[j].raw.len, scratch) != 0)
                    return -1;
                break;
            }
        }
    }
    if (dkim_canon_header(hc, sig_field, sig_len, scratch) != 0)
        return -1;
    scratch->len -= 2;   /* without its CRLF (§3.7) */
    unsigned int n = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, dkim_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, scratch->data, scratch->len) == 1 &&
             EVP_DigestFinal_ex(md, digest, &n) == 1 && n == DKIM_SHA256_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}
