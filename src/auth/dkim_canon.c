/* DKIM canonicalization (RFC 6376 §3.4): header fields (simple, relaxed),
 * the streaming body canonicalizer with its hash, and the header hash of
 * §3.7. A bare LF is read as CRLF everywhere. The body state machine keeps
 * only a few flags between chunks, so a CRLF or a run of whitespace split
 * across chunks, and empty lines at the end, come out the same whatever
 * the chunking. It only steps octet by octet where the canonical form
 * differs from the input: SIMD scanners (SSE2, AVX2 when the CPU has it)
 * find the longest stretch, across any number of CRLF lines, that is
 * canonical as it is, and such a run goes to SHA-256 straight from the
 * caller's buffer, without a copy. Header fields are canonicalized into a
 * stack stage that feeds the hash. */
#include <pthread.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
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

/* Where canonical header octets go: a buffer (tests, fuzzers), or SHA-256
 * through a stage, so that the header hash needs no growing buffer. A
 * field is canonicalized straight into the stage when it fits. */
struct hout {
    struct buf *buf;       /* buffer mode when non-NULL */
    EVP_MD_CTX *md;        /* else: hash mode */
    bool failed;
    size_t n;              /* octets in stage (hash mode) */
    char stage[4096];
};

static void hout_write(struct hout *o, const char *p, size_t n)
{
    if (o->buf) {
        if (buf_append(o->buf, p, n) != 0)
            o->failed = true;
    } else if (n && EVP_DigestUpdate(o->md, p, n) != 1) {
        o->failed = true;
    }
}

static void hout_flush(struct hout *o)
{
    if (!o->buf && o->n) {
        hout_write(o, o->stage, o->n);
        o->n = 0;
    }
}

/* simple (§3.4.1): the octets as they are, a bare LF read as CRLF. d has
 * room for 2 * len + 2. */
static size_t canon_simple(const char *f, size_t len, char *d, bool crlf)
{
    size_t o = 0, run = 0;
    const char *nl;
    while (run < len && (nl = memchr(f + run, '\n', len - run))) {
        size_t i = (size_t)(nl - f);
        if (i == 0 || f[i - 1] != '\r') {
            memcpy(d + o, f + run, i - run);
            o += i - run;
            d[o++] = '\r';
            d[o++] = '\n';
            run = i + 1;
        } else {
            memcpy(d + o, f + run, i + 1 - run);
            o += i + 1 - run;
            run = i + 1;
        }
    }
    memcpy(d + o, f + run, len - run);
    o += len - run;
    if (crlf) {
        d[o++] = '\r';
        d[o++] = '\n';
    }
    return o;
}

static bool wsp(char c) { return c == ' ' || c == '\t'; }

/* relaxed (§3.4.2): name lowercased without the WSP before the colon,
 * line ends removed (a CRLF or a bare LF; a lone CR is an octet), WSP runs
 * as one SP, none at the start or end of the value. d has room for
 * len + 3. */
static size_t canon_relaxed(const char *f, size_t len, char *d, bool crlf)
{
    const char *colon = memchr(f, ':', len);
    size_t nlen = colon ? (size_t)(colon - f) : len;
    while (nlen && (wsp(f[nlen - 1]) || f[nlen - 1] == '\r' || f[nlen - 1] == '\n'))
        nlen--;
    size_t o = 0;
    for (size_t i = 0; i < nlen; i++) {
        char c = f[i];
        d[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
    }
    d[o++] = ':';
    if (colon) {
        size_t i = (size_t)(colon - f) + 1;
        bool pending = false, started = false;
        while (i < len) {
            unsigned char c = (unsigned char)f[i];
            if (c > ' ') {
                /* A run of value octets (the common case). */
                if (pending && started)
                    d[o++] = ' ';
                pending = false;
                started = true;
#if defined(__SSE2__)
                /* 16 at a time; storing 16 is safe: o <= i (every octet
                 * out consumed one in), so d + o + 16 <= d + len. */
                const __m128i sp = _mm_set1_epi8(' ');
                bool stopped = false;
                while (i + 16 <= len) {
                    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(f + i));
                    unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(v, sp), sp));
                    _mm_storeu_si128((__m128i *)(void *)(d + o), v);
                    if (m) {
                        size_t k = (size_t)__builtin_ctz(m);
                        i += k;
                        o += k;
                        stopped = true;
                        break;
                    }
                    i += 16;
                    o += 16;
                }
                if (stopped || i >= len || (c = (unsigned char)f[i]) <= ' ')
                    continue;
#endif
                do {
                    d[o++] = (char)c;
                } while (++i < len && (c = (unsigned char)f[i]) > ' ');
                continue;
            }
            if (c == ' ' || c == '\t') {
                pending = true;
                i++;
            } else if (c == '\n') {
                i++;
            } else if (c == '\r' && i + 1 < len && f[i + 1] == '\n') {
                i += 2;
            } else {
                /* Any other control octet, a lone CR included: content. */
                if (pending && started)
                    d[o++] = ' ';
                pending = false;
                started = true;
                d[o++] = (char)c;
                i++;
            }
        }
    }
    if (crlf) {
        d[o++] = '\r';
        d[o++] = '\n';
    }
    return o;
}

/* One canonical field into o, with its CRLF when crlf. */
static void hout_field(struct hout *o, enum dkim_canon c, const char *field, size_t len,
                       bool crlf)
{
    size_t need = c == DKIM_CANON_SIMPLE ? 2 * len + 2 : len + 3;
    char *heap = NULL, *d;
    bool in_stage = false;
    if (need <= sizeof o->stage) {
        if (o->buf) {
            d = o->stage;               /* buffer mode: the stage is a free temporary */
        } else {
            if (need > sizeof o->stage - o->n)
                hout_flush(o);
            d = o->stage + o->n;
            in_stage = true;
        }
    } else if (!(d = heap = malloc(need))) {
        o->failed = true;
        return;
    }
    size_t n = c == DKIM_CANON_SIMPLE ? canon_simple(field, len, d, crlf)
                                      : canon_relaxed(field, len, d, crlf);
    if (in_stage) {
        o->n += n;
    } else {
        hout_flush(o);
        hout_write(o, d, n);
    }
    free(heap);
}

int dkim_canon_header(enum dkim_canon c, const char *field, size_t len, struct buf *out)
{
    struct hout o;
    o.buf = out;
    o.md = NULL;
    o.failed = false;
    o.n = 0;
    hout_field(&o, c, field, len, true);
    return o.failed ? -1 : 0;
}

/* ---- body ---- */

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

/* Runs at least this long go to the hash as they are, without a copy. */
#define DIRECT_MIN 256

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
    if (n >= DIRECT_MIN) {
        flush(b);
        out_raw(b, p, n);
        return;
    }
    if (n > sizeof b->stage - b->nstage)
        flush(b);
    memcpy(b->stage + b->nstage, p, n);
    b->nstage += n;
}

/* The empty lines held back: content follows, so they are not trailing. */
static void emit_empty_lines(struct dkim_body *b)
{
    static const char crlfs[] = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n";
    while (b->empty_lines) {
        size_t k = b->empty_lines < 16 ? (size_t)b->empty_lines : 16;
        emit(b, crlfs, 2 * k);
        b->empty_lines -= k;
    }
}

/* Octets p[0..n) that are canonical as they are, on the current line. */
static void content(struct dkim_body *b, const char *p, size_t n)
{
    if (!b->line_content) {
        emit_empty_lines(b);
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

/* A run: p[0..n), n > 0, not ending in CR, whose line ends are all CRLF
 * and whose octets are canonical as they are (the scanners below found
 * nothing to change), possibly spanning many lines. It goes to the hash
 * in one piece, but for empty lines at its start (held back until content
 * follows) and at its end (held back: they may be the trailing ones). */
static void run(struct dkim_body *b, const char *p, size_t n)
{
    if (!b->line_content) {
        size_t s = 0;
        while (s + 2 <= n && p[s] == '\r' && p[s + 1] == '\n')
            s += 2;
        if (s == n) {
            b->empty_lines += n / 2;
            return;
        }
        /* Content follows: the lines held from before go out, those in p
         * go with it. */
        emit_empty_lines(b);
        b->line_content = true;
    }
    size_t t = n, k = 0;
    while (t >= 2 && p[t - 2] == '\r' && p[t - 1] == '\n') {
        t -= 2;
        k++;
    }
    if (k == 0) {
        emit(b, p, n);
        return;
    }
    /* The first CRLF of the tail ends a line with content (the run's, or
     * the one before it); the rest are empty lines. */
    emit(b, p, t + 2);
    b->empty_lines = k - 1;
    b->line_content = false;
}

/* ---- scanners: how far from p a run goes ----
 * simple: up to the first bare LF (an LF at p[0] counts as bare: a CR
 * before it was handled already). relaxed: also up to an HTAB, or a SP
 * that is followed by an octet <= 0x20 (SP, HTAB, CR, LF; other control
 * octets too, which is merely cautious) or by the end of the data
 * (p[0..avail)): there a WSP run may need collapsing or removing. n <= avail
 * bounds the scan; positions before n are judged exactly. */

static bool relaxed_stop(const char *p, size_t j, size_t avail)
{
    char c = p[j];
    if (c == '\t')
        return true;
    if (c == '\n')
        return j == 0 || p[j - 1] != '\r';
    if (c == ' ')
        return j + 1 >= avail || (unsigned char)p[j + 1] <= ' ';
    return false;
}

static size_t scan_simple_scalar(const char *p, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (p[j] == '\n' && (j == 0 || p[j - 1] != '\r'))
            return j;
    return n;
}

static size_t scan_relaxed_scalar(const char *p, size_t n, size_t avail)
{
    for (size_t j = 0; j < n; j++)
        if (relaxed_stop(p, j, avail))
            return j;
    return n;
}

#if defined(__SSE2__)
static size_t scan_simple_sse2(const char *p, size_t n)
{
    if (n == 0 || p[0] == '\n')
        return 0;
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    size_t j = 1;
    for (; j + 16 <= n; j += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + j));
        __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(p + j - 1));
        int m = _mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(w, cr), _mm_cmpeq_epi8(v, lf)));
        if (m)
            return j + (size_t)__builtin_ctz((unsigned)m);
    }
    for (; j < n; j++)
        if (p[j] == '\n' && p[j - 1] != '\r')
            return j;
    return n;
}

static size_t scan_relaxed_sse2(const char *p, size_t n, size_t avail)
{
    if (n == 0 || relaxed_stop(p, 0, avail))
        return 0;
    const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    size_t j = 1;
    for (; j + 16 <= n && j + 17 <= avail; j += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + j));
        __m128i w = _mm_loadu_si128((const __m128i *)(const void *)(p + j - 1));
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + j + 1));
        __m128i bare_lf = _mm_andnot_si128(_mm_cmpeq_epi8(w, cr), _mm_cmpeq_epi8(v, lf));
        __m128i sp_ws = _mm_and_si128(_mm_cmpeq_epi8(v, sp),
                                      _mm_cmpeq_epi8(_mm_min_epu8(x, sp), x));
        __m128i stop = _mm_or_si128(_mm_or_si128(bare_lf, sp_ws), _mm_cmpeq_epi8(v, tab));
        int m = _mm_movemask_epi8(stop);
        if (m)
            return j + (size_t)__builtin_ctz((unsigned)m);
    }
    for (; j < n; j++)
        if (relaxed_stop(p, j, avail))
            return j;
    return n;
}
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_SCAN 1
__attribute__((target("avx2"))) static size_t scan_simple_avx2(const char *p, size_t n)
{
    if (n == 0 || p[0] == '\n')
        return 0;
    const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
    size_t j = 1;
    for (; j + 32 <= n; j += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + j));
        __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(p + j - 1));
        unsigned m = (unsigned)_mm256_movemask_epi8(
            _mm256_andnot_si256(_mm256_cmpeq_epi8(w, cr), _mm256_cmpeq_epi8(v, lf)));
        if (m)
            return j + (size_t)__builtin_ctz(m);
    }
    for (; j < n; j++)
        if (p[j] == '\n' && p[j - 1] != '\r')
            return j;
    return n;
}

__attribute__((target("avx2"))) static size_t scan_relaxed_avx2(const char *p, size_t n,
                                                                 size_t avail)
{
    if (n == 0 || relaxed_stop(p, 0, avail))
        return 0;
    const __m256i sp = _mm256_set1_epi8(' '), tab = _mm256_set1_epi8('\t');
    const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
    size_t j = 1;
    for (; j + 32 <= n && j + 33 <= avail; j += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + j));
        __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(p + j - 1));
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + j + 1));
        __m256i bare_lf = _mm256_andnot_si256(_mm256_cmpeq_epi8(w, cr), _mm256_cmpeq_epi8(v, lf));
        __m256i sp_ws = _mm256_and_si256(_mm256_cmpeq_epi8(v, sp),
                                         _mm256_cmpeq_epi8(_mm256_min_epu8(x, sp), x));
        __m256i stop = _mm256_or_si256(_mm256_or_si256(bare_lf, sp_ws), _mm256_cmpeq_epi8(v, tab));
        unsigned m = (unsigned)_mm256_movemask_epi8(stop);
        if (m)
            return j + (size_t)__builtin_ctz(m);
    }
    for (; j < n; j++)
        if (relaxed_stop(p, j, avail))
            return j;
    return n;
}
#endif

static size_t (*scan_simple)(const char *p, size_t n) = scan_simple_scalar;
static size_t (*scan_relaxed)(const char *p, size_t n, size_t avail) = scan_relaxed_scalar;
static pthread_once_t scan_once = PTHREAD_ONCE_INIT;

static void scan_pick(void)
{
#if defined(__SSE2__)
    scan_simple = scan_simple_sse2;
    scan_relaxed = scan_relaxed_sse2;
#endif
#if defined(HAVE_AVX2_SCAN)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        scan_simple = scan_simple_avx2;
        scan_relaxed = scan_relaxed_avx2;
    }
#endif
}

int dkim_body_init(struct dkim_body *b, enum dkim_canon c, int64_t limit, struct buf *sink)
{
    memset(b, 0, offsetof(struct dkim_body, stage));
    b->canon = c;
    b->limited = limit >= 0;
    b->limit = limit >= 0 ? (uint64_t)limit : 0;
    b->sink = sink;
    pthread_once(&scan_once, scan_pick);
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

/* Longest run handed over at once: scanned and hashed while in L1/L2. */
#define RUN_MAX (16 * 1024)

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
            size_t avail = len - i, m = avail < RUN_MAX ? avail : RUN_MAX;
            size_t k = relaxed ? scan_relaxed(p + i, m, avail) : scan_simple(p + i, m);
            if (k && p[i + k - 1] == '\r')
                k--;            /* a CR is left to the state machine: an LF may follow */
            if (k) {
                run(b, p + i, k);
                i += k;
                continue;
            }
        }
        /* One step of the state machine: p[i] is a CR, an LF, WSP in
         * relaxed, or an octet after held-back WSP. */
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
    struct hout o;
    o.buf = scratch;
    o.md = NULL;
    o.failed = false;
    o.n = 0;
    if (scratch) {
        buf_reset(scratch);
    } else if (!(o.md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(o.md, dkim_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(o.md);
        return -1;
    }
    for (size_t k = 0; k < nnames && !o.failed; k++) {
        struct sv name = names[k];
        for (size_t j = nfields; j-- > 0;) {
            if (!used[j] && dkim_name_eq(fields[j].name, name)) {
                used[j] = true;
                hout_field(&o, hc, fields[j].raw.p, fields[j].raw.len, true);
                break;
            }
        }
    }
    /* The signature field last, without its CRLF (§3.7). */
    hout_field(&o, hc, sig_field, sig_len, false);
    hout_flush(&o);
    unsigned int n = 0;
    int ok;
    if (scratch) {
        ok = !o.failed && EVP_Digest(scratch->data ? scratch->data : "", scratch->len, digest,
                                     &n, dkim_sha256(), NULL) == 1;
    } else {
        ok = !o.failed && EVP_DigestFinal_ex(o.md, digest, &n) == 1;
        EVP_MD_CTX_free(o.md);
    }
    return ok && n == DKIM_SHA256_LEN ? 0 : -1;
}
