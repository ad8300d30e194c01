/* Bounded MIME reader: part tree, header lookup, Content-Type parameters,
 * transfer-encoding decoding; see mime_parse.h. Every walk is over
 * (pointer, length) and never looks past it; recursion is bounded by
 * MIME_MAX_DEPTH, the tree by MIME_MAX_PARTS. No charset conversion, no
 * RFC 2047 decoding, no I/O. */
#include "mail/mime_parse.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "mail/mail_header.h"

/* ---- header fields ---------------------------------------------------- */

/* The line starting at i: *ce its content end (CR LF excluded), returns the
 * start of the next line (len when none). */
static size_t line_at(const char *p, size_t len, size_t i, size_t *ce)
{
    const char *nl = memchr(p + i, '\n', len - i);
    size_t le = nl ? (size_t)(nl - p) : len;
    size_t e = le;
    if (nl && e > i && p[e - 1] == '\r')
        e--;
    *ce = e;
    return nl ? le + 1 : len;
}

bool mime_header_next(struct sv head, size_t *pos, struct sv *name, struct sv *value)
{
    size_t i = *pos;
    while (i < head.len) {
        size_t ce, next = line_at(head.p, head.len, i, &ce);
        if (ce == i && next > i && next <= head.len && head.p[next - 1] == '\n')
            break; /* the empty line ends the section */
        char c0 = head.p[i];
        if (c0 == ' ' || c0 == '\t') {
            i = next; /* continuation of a field skipped below */
            continue;
        }
        struct sv line = sv_make(head.p + i, ce - i);
        size_t colon = sv_find(line, ':');
        struct sv n = sv_sub(line, 0, colon);
        while (n.len && (n.p[n.len - 1] == ' ' || n.p[n.len - 1] == '\t'))
            n.len--;
        if (colon == line.len || !mail_field_name_valid(n)) {
            i = next;
            continue;
        }
        size_t vstart = i + colon + 1, vend = ce, j = next;
        while (j < head.len && (head.p[j] == ' ' || head.p[j] == '\t')) {
            size_t ce2, next2 = line_at(head.p, head.len, j, &ce2);
            vend = ce2;
            j = next2;
        }
        *name = n;
        *value = sv_make(head.p + vstart, vend - vstart);
        *pos = j;
        return true;
    }
    *pos = head.len;
    return false;
}

bool mime_header_get(struct sv head, const char *name, struct sv *value)
{
    size_t pos = 0;
    struct sv n, v;
    while (mime_header_next(head, &pos, &n, &v))
        if (sv_eq_ci_cstr(n, name)) {
            *value = v;
            return true;
        }
    return false;
}

size_t mime_header_count(struct sv head, const char *name)
{
    size_t pos = 0, count = 0;
    struct sv n, v;
    while (mime_header_next(head, &pos, &n, &v))
        if (sv_eq_ci_cstr(n, name))
            count++;
    return count;
}

/* ---- Content-Type ----------------------------------------------------- */

/* Skips white space (folding included) and nested comments. */
static void skip_cfws(struct sv v, size_t *i)
{
    while (*i < v.len) {
        char c = v.p[*i];
        if (sv_is_wsp(c)) {
            (*i)++;
        } else if (c == '(') {
            int depth = 0;
            while (*i < v.len) {
                c = v.p[(*i)++];
                if (c == '\\' && *i < v.len)
                    (*i)++;
                else if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    break;
            }
        } else {
            break;
        }
    }
}

/* RFC 2045 §5.1 token character. */
static bool is_token(char c)
{
    unsigned char u = (unsigned char)c;
    return u > 32 && u < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* A token at *i; empty when there is none. */
static struct sv token(struct sv v, size_t *i)
{
    size_t s = *i;
    while (*i < v.len && is_token(v.p[*i]))
        (*i)++;
    return sv_sub(v, s, *i);
}

static bool copy_lower(struct sv s, char *out, size_t outlen)
{
    if (s.len + 1 > outlen)
        return false;
    for (size_t k = 0; k < s.len; k++)
        out[k] = (char)tolower((unsigned char)s.p[k]);
    out[s.len] = '\0';
    return true;
}

bool mime_content_type(struct sv value, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    size_t i = 0;
    skip_cfws(value, &i);
    struct sv type = token(value, &i);
    skip_cfws(value, &i);
    if (!type.len || i >= value.len || value.p[i] != '/')
        return false;
    i++;
    skip_cfws(value, &i);
    struct sv sub = token(value, &i);
    if (!sub.len || type.len + 1 + sub.len + 1 > outlen)
        return false;
    copy_lower(type, out, outlen);
    out[type.len] = '/';
    copy_lower(sub, out + type.len + 1, outlen - type.len - 1);
    return true;
}

bool mime_param(struct sv value, const char *name, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    size_t i = 0;
    /* past type/subtype: to the first ';' outside quotes and comments */
    while (i < value.len && value.p[i] != ';') {
        if (value.p[i] == '(')
            skip_cfws(value, &i);
        else
            i++;
    }
    while (i < value.len) {
        if (value.p[i] != ';') { /* garbage between parameters: skip it */
            i++;
            continue;
        }
        i++;
        skip_cfws(value, &i);
        struct sv attr = token(value, &i);
        skip_cfws(value, &i);
        if (i >= value.len || value.p[i] != '=')
            continue;
        i++;
        skip_cfws(value, &i);
        size_t n = 0;
        bool match = attr.len && sv_eq_ci_cstr(attr, name), fits = true;
        if (i < value.len && value.p[i] == '"') {
            i++;
            while (i < value.len && value.p[i] != '"') {
                char c = value.p[i++];
                if (c == '\\' && i < value.len)
                    c = value.p[i++];
                else if (c == '\r' || c == '\n')
                    continue; /* folding inside the quotes */
                if (match && fits) {
                    if (n + 1 < outlen)
                        out[n++] = c;
                    else
                        fits = false;
                }
            }
            if (i < value.len)
                i++; /* closing quote */
        } else {
            /* lenient: up to white space or ';' (real mail has '=' and '/' here) */
            while (i < value.len && value.p[i] != ';' && !sv_is_wsp(value.p[i])) {
                char c = value.p[i++];
                if (match && fits) {
                    if (n + 1 < outlen)
                        out[n++] = c;
                    else
                        fits = false;
                }
            }
        }
        if (match) {
            if (!fits || n == 0) {
                if (outlen)
                    out[0] = '\0';
                return false;
            }
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

/* ---- the part tree ---------------------------------------------------- */

/* Is the line p[0..n) a delimiter "--boundary" (then *close false) or a
 * close-delimiter "--boundary--" (then *close true), transport padding
 * allowed after it? */
static bool is_delimiter(const char *p, size_t n, const char *boundary, size_t blen, bool *close)
{
    if (n < 2 + blen || p[0] != '-' || p[1] != '-' || memcmp(p + 2, boundary, blen) != 0)
        return false;
    size_t i = 2 + blen;
    *close = false;
    if (n - i >= 2 && p[i] == '-' && p[i + 1] == '-') {
        *close = true;
        i += 2;
    }
    for (; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t')
            return false;
    return true;
}

static enum mime_cte parse_cte(struct sv head)
{
    struct sv v;
    if (!mime_header_get(head, "Content-Transfer-Encoding", &v))
        return MIME_CTE_IDENTITY;
    size_t i = 0;
    skip_cfws(v, &i);
    struct sv t = token(v, &i);
    if (sv_eq_ci_cstr(t, "base64"))
        return MIME_CTE_BASE64;
    if (sv_eq_ci_cstr(t, "quoted-printable"))
        return MIME_CTE_QP;
    if (sv_eq_ci_cstr(t, "7bit") || sv_eq_ci_cstr(t, "8bit") || sv_eq_ci_cstr(t, "binary") ||
        t.len == 0)
        return MIME_CTE_IDENTITY;
    return MIME_CTE_OTHER;
}

static void parse_entity(struct mime_tree *t, const char *p, size_t n, int parent,
                         unsigned depth, const char *default_type)
{
    if (t->nparts >= MIME_MAX_PARTS) {
        t->truncated = true;
        return;
    }
    size_t idx = t->nparts++;
    struct mime_part *part = &t->part[idx];
    memset(part, 0, sizeof *part);
    part->parent = parent;
    part->depth = depth;

    size_t head_len, body_off;
    mail_split_message(p, n, &head_len, &body_off);
    part->head = sv_make(p, head_len);
    part->body = sv_make(p + body_off, n - body_off);
    part->cte = parse_cte(part->head);

    struct sv ct;
    bool have = mime_header_get(part->head, "Content-Type", &ct) &&
                mime_content_type(ct, part->type, sizeof part->type);
    if (!have) {
        snprintf(part->type, sizeof part->type, "%s", default_type);
        return;
    }
    if (strncmp(part->type, "multipart/", 10) != 0)
        return;
    char boundary[MIME_MAX_BOUNDARY_LEN + 1];
    if (!mime_param(ct, "boundary", boundary, sizeof boundary))
        return; /* no usable boundary: a leaf */
    if (depth + 1 > MIME_MAX_DEPTH) {
        t->truncated = true;
        return;
    }
    part->multipart = true;
    const char *child_default =
        strcmp(part->type, "multipart/digest") == 0 ? "message/rfc822" : "text/plain";
    size_t blen = strlen(boundary);
    const char *b = part->body.p;
    size_t bn = part->body.len, i = 0, start = 0;
    bool in_part = false, closed = false;
    while (i < bn) {
        size_t ce, next = line_at(b, bn, i, &ce);
        bool close;
        if (is_delimiter(b + i, ce - i, boundary, blen, &close)) {
            if (in_part) {
                size_t end = i; /* the line break before a delimiter belongs to it */
                if (end > start && b[end - 1] == '\n') {
                    end--;
                    if (end > start && b[end - 1] == '\r')
                        end--;
                }
                parse_entity(t, b + start, end - start, (int)idx, depth + 1, child_default);
            }
            if (close) {
                closed = true;
                break;
            }
            in_part = true;
            start = next;
        }
        i = next;
    }
    if (!closed) {
        part->unterminated = true;
        if (in_part && start < bn)
            parse_entity(t, b + start, bn - start, (int)idx, depth + 1, child_default);
    }
}

int mime_parse(const char *msg, size_t len, struct mime_tree *t, char *err, size_t errlen)
{
    t->nparts = 0;
    t->truncated = false;
    if (err && errlen)
        err[0] = '\0';
    const char *nul = len ? memchr(msg, '\0', len) : NULL;
    if (nul) {
        if (err && errlen)
            snprintf(err, errlen, "NUL octet at offset %zu", (size_t)(nul - msg));
        return -1;
    }
    parse_entity(t, msg, len, -1, 0, "text/plain");
    return 0;
}

/* ---- transfer decoding ------------------------------------------------ */

static int decode_base64(struct sv in, struct buf *out)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (!ctx)
        return -1;
    EVP_DecodeInit(ctx);
    unsigned char tmp[3200];
    int rc = 0;
    size_t i = 0;
    while (i < in.len && rc == 0) {
        size_t n = in.len - i < 4000 ? in.len - i : 4000;
        int outl = 0;
        int r = EVP_DecodeUpdate(ctx, tmp, &outl, (const unsigned char *)in.p + i, (int)n);
        if (r < 0 || (outl > 0 && buf_append(out, tmp, (size_t)outl) != 0))
            rc = -1;
        i += n;
        if (r == 0)
            break; /* padding seen: the end of the data */
    }
    if (rc == 0) {
        int outl = 0;
        if (EVP_DecodeFinal(ctx, tmp, &outl) < 0 ||
            (outl > 0 && buf_append(out, tmp, (size_t)outl) != 0))
            rc = -1;
    }
    EVP_ENCODE_CTX_free(ctx);
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int decode_qp(struct sv in, struct buf *out)
{
    size_t i = 0;
    while (i < in.len) {
        size_t ce, next = line_at(in.p, in.len, i, &ce);
        size_t e = ce;
        while (e > i && (in.p[e - 1] == ' ' || in.p[e - 1] == '\t'))
            e--; /* RFC 2045 §6.7 (3): trailing white space is not data */
        bool soft = e > i && in.p[e - 1] == '=';
        if (soft)
            e--;
        size_t run = i; /* in.p[run..k) is literal, not yet appended */
        for (size_t k = i; k < e;) {
            if (in.p[k] == '=' && k + 2 < e && hexval(in.p[k + 1]) >= 0 &&
                hexval(in.p[k + 2]) >= 0) {
                if (buf_append(out, in.p + run, k - run) != 0 ||
                    buf_append_char(out, (char)(hexval(in.p[k + 1]) * 16 +
                                                hexval(in.p[k + 2]))) != 0)
                    return -1;
                k += 3;
                run = k;
            } else {
                k++;
            }
        }
        if (buf_append(out, in.p + run, e - run) != 0)
            return -1;
        if (!soft && next > ce && buf_append(out, in.p + ce, next - ce) != 0)
            return -1; /* the hard line break as it was (CRLF or LF) */
        i = next;
    }
    return 0;
}

int mime_decode_body(const struct mime_part *p, struct buf *out)
{
    switch (p->cte) {
    case MIME_CTE_BASE64:
        return decode_base64(p->body, out);
    case MIME_CTE_QP:
        return decode_qp(p->body, out);
    default:
        return buf_append(out, p->body.p, p->body.len);
    }
}

/* ---- presentation ----------------------------------------------------- */

static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    if ((c & 0xf8) == 0xf0)
        return 4;
    return 1;
}

size_t mime_unfold(struct sv value, char *out, size_t outlen)
{
    if (!outlen)
        return 0;
    size_t n = 0;
    bool space = false, truncated = false;
    for (size_t i = 0; i < value.len; i++) {
        unsigned char c = (unsigned char)value.p[i];
        if (sv_is_wsp((char)c)) {
            space = n > 0;
            continue;
        }
        if (c < 0x20 || c == 0x7f)
            c = '?';
        size_t need = space ? 2 : 1;
        if (n + need >= outlen) {
            truncated = true;
            break;
        }
        if (space)
            out[n++] = ' ';
        space = false;
        out[n++] = (char)c;
    }
    if (truncated) {
        /* drop a UTF-8 sequence cut in the middle */
        size_t k = n;
        while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
            k--;
        if (k > 0 && (unsigned char)out[k - 1] >= 0xc0 &&
            utf8_seq_len((unsigned char)out[k - 1]) > n - (k - 1))
            n = k - 1;
        while (n > 0 && out[n - 1] == ' ')
            n--;
    }
    out[n] = '\0';
    return n;
}
