/* Building the messages sesame sends for the API (mime_build), checking raw
 * messages before they are queued (mime_check_raw) and RFC 2047 header
 * encoding (mime_encode_header); see mime_build.h and docs/mime.md.
 *
 * What is built: Date, From, Reply-To, To, Cc, Subject, Message-ID, the
 * caller's extra fields, MIME-Version and one text/plain or text/html body,
 * or a multipart/alternative of both. Non-ASCII display names and
 * unstructured text become encoded-words; bodies are 7bit when they can be,
 * else quoted-printable, or base64 when mostly non-ASCII. No attachments,
 * no signing (the DKIM signer does that), no I/O; the Message-ID and the
 * boundary come from libsodium's randombytes. */
#include "mail/mime_build.h"

#include "util/utf8.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/mail_address.h"
#include "mail/mail_header.h"
#include "mail/mime_parse.h"
#include "util/limits.h"

#define MAX_DISPLAY_NAME 1024   /* octets of one display name (decoded) */
#define BOUNDARY_TRIES   8      /* random boundaries tried before giving up */
#define B64_MOSTLY_PCT   30     /* more non-ASCII octets than this: base64, not QP */

__attribute__((format(printf, 3, 4))) static int errf(char *err, size_t errlen,
                                                      const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- text checks ------------------------------------------------------ */

/* Length of the UTF-8 sequence a (valid) lead octet starts. */
static size_t utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

static bool is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* Why s cannot go into a header field, or NULL when it can. */
static const char *header_text_problem(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n')
            return "contains CR or LF (header injection refused)";
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return "contains a control character";
    }
    if (!utf8_valid(s, n))
        return "is not valid UTF-8";
    return NULL;
}

/* The longest run of non-white-space octets. */
static size_t longest_word(const char *s, size_t n)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        run = (s[i] == ' ' || s[i] == '\t') ? 0 : run + 1;
        if (run > best)
            best = run;
    }
    return best;
}

/* ---- folding ---------------------------------------------------------- */

static bool wsp(char c) { return c == ' ' || c == '\t'; }

/* Appends the unfolded field s[0..n) ("Name: value") to out with CRLF
 * inserted before white space so that lines stay within MIME_FOLD_LEN
 * where the words allow. A fold goes before the first white space after a
 * word, never at or before min_break, never so that a line would hold
 * only white space. */
static int fold(struct buf *out, const char *s, size_t n, size_t min_break)
{
    size_t last = n; /* the last non-white-space octet */
    while (last > 0 && wsp(s[last - 1]))
        last--;
    size_t start = 0;
    while (n - start > MIME_FOLD_LEN) {
        size_t best = 0, p = start + 1;
        for (; p < last && p - start <= MIME_FOLD_LEN; p++)
            if (p > min_break && wsp(s[p]) && !wsp(s[p - 1]))
                best = p;
        for (; !best && p < last; p++)
            if (p > min_break && wsp(s[p]) && !wsp(s[p - 1]))
                best = p;
        if (!best)
            break;
        if (buf_append(out, s + start, best - start) != 0 || buf_append(out, "\r\n", 2) != 0)
            return -1;
        start = best;
    }
    return buf_append(out, s + start, n - start);
}

/* The longest line of s[0..n) (CRLF-separated). */
static size_t longest_line(const char *s, size_t n)
{
    size_t best = 0, i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n, l = e - i;
        if (nl && l && s[e - 1] == '\r')
            l--;
        if (l > best)
            best = l;
        i = nl ? e + 1 : n;
    }
    return best;
}

/* ---- RFC 2047 encoded-words ------------------------------------------- */

/* Octets a Q encoding (RFC 2047 §5 (3), the strictest, valid in phrases
 * too) writes as themselves; space becomes '_'. */
static bool q_plain(unsigned char c)
{
    return (c < 0x80 && isalnum(c)) || c == '!' || c == '*' || c == '+' || c == '-' ||
           c == '/' || c == ' ';
}

/* Appends s[0..n) (valid UTF-8) as encoded-words separated by single
 * spaces: the first at most first_max octets, the others at most
 * MIME_ENCODED_WORD_LEN; B or Q, whichever is shorter over the whole. */
static int encode_words(struct buf *out, const char *s, size_t n, size_t first_max)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t qlen = 0;
    for (size_t i = 0; i < n; i++)
        qlen += q_plain((unsigned char)s[i]) ? 1 : 3;
    bool b64 = 4 * ((n + 2) / 3) < qlen;
    const size_t overhead = 12; /* "=?UTF-8?B?" "?=" */
    size_t max = first_max, i = 0;
    while (i < n) {
        size_t room = max - overhead, j = i, cost = 0;
        while (j < n) {
            size_t cl = utf8_len((unsigned char)s[j]);
            if (cl > n - j)
                cl = n - j;
            size_t c = cost;
            if (b64)
                c = 4 * ((j + cl - i + 2) / 3);
            else
                for (size_t k = j; k < j + cl; k++)
                    c += q_plain((unsigned char)s[k]) ? 1 : 3;
            if (c > room && j > i)
                break;
            cost = c;
            j += cl;
        }
        if (i > 0 && buf_append_char(out, ' ') != 0)
            return -1;
        if (buf_append_str(out, b64 ? "=?UTF-8?B?" : "=?UTF-8?Q?") != 0)
            return -1;
        if (b64) {
            unsigned char enc[4 * ((MIME_ENCODED_WORD_LEN + 2) / 3) + 8];
            int el = EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)(j - i));
            if (el < 0 || buf_append(out, enc, (size_t)el) != 0)
                return -1;
        } else {
            for (size_t k = i; k < j; k++) {
                unsigned char c = (unsigned char)s[k];
                char t[3] = { '=', hex[c >> 4], hex[c & 15] };
                int r = c == ' ' ? buf_append_char(out, '_')
                        : q_plain(c) ? buf_append_char(out, (char)c)
                                     : buf_append(out, t, 3);
                if (r != 0)
                    return -1;
            }
        }
        if (buf_append(out, "?=", 2) != 0)
            return -1;
        i = j;
        max = MIME_ENCODED_WORD_LEN;
    }
    return 0;
}

/* The first encoded-word's size so that "Name: " and it fit one line. */
static size_t first_word_max(size_t name_len)
{
    size_t room = MIME_FOLD_LEN > name_len + 2 ? MIME_FOLD_LEN - name_len - 2 : 0;
    if (room > MIME_ENCODED_WORD_LEN)
        room = MIME_ENCODED_WORD_LEN;
    return room < 24 ? MIME_ENCODED_WORD_LEN : room;
}

/* Appends "Name: value" folded (no CRLF) for an unstructured value that
 * passed header_text_problem: as it is when ASCII and foldable within
 * MAIL_MAX_LINE_LEN, else as encoded-words. */
static int unstructured_field(struct buf *out, const char *name, size_t nlen, const char *v,
                              size_t vlen)
{
    size_t start = out->len;
    struct buf line;
    buf_init(&line, MAIL_MAX_HEADER_SECTION);
    int rc = -1;
    if (buf_append(&line, name, nlen) != 0 || buf_append(&line, ": ", 2) != 0)
        goto done;
    if (is_ascii(v, vlen) && nlen + 2 + longest_word(v, vlen) <= MAIL_MAX_LINE_LEN) {
        if (buf_append(&line, v, vlen) != 0)
            goto done;
    } else if (encode_words(&line, v, vlen, first_word_max(nlen)) != 0) {
        goto done;
    }
    if (fold(out, line.data, line.len, nlen + 1) != 0)
        goto done;
    if (longest_line(out->data + start, out->len - start) > MAIL_MAX_LINE_LEN)
        goto done;
    rc = 0;
done:
    if (rc != 0 && out->len > start) {
        out->len = start;
        out->data[start] = '\0';
    }
    buf_free(&line);
    return rc;
}

int mime_encode_header(const char *name, const char *value, struct buf *out)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    if (!mail_field_name_valid(sv_make(name, nlen)) || header_text_problem(value, vlen))
        return -1;
    struct buf field;
    buf_init(&field, MAIL_MAX_HEADER_SECTION);
    int rc = unstructured_field(&field, name, nlen, value, vlen);
    if (rc == 0)
        rc = buf_append(out, field.data + nlen + 2, field.len - nlen - 2);
    buf_free(&field);
    return rc;
}

/* ---- addresses -------------------------------------------------------- */

static bool atext(unsigned char c)
{
    return (c < 0x80 && isalnum(c)) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool dot_atom(const char *s)
{
    size_t n = strlen(s);
    if (!n || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(atext((unsigned char)s[i]) || (s[i] == '.' && s[i + 1] != '.')))
            return false;
    return true;
}

static int quoted(struct buf *out, const char *s, size_t n)
{
    if (buf_append_char(out, '"') != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((s[i] == '"' || s[i] == '\\') && buf_append_char(out, '\\') != 0)
            return -1;
        else if (buf_append_char(out, s[i]) != 0)
            return -1;
    return buf_append_char(out, '"');
}

/* Skips a comment starting at s[*i] == '('; false when unterminated. */
static bool skip_comment(const char *s, size_t n, size_t *i)
{
    int depth = 0;
    while (*i < n) {
        char c = s[(*i)++];
        if (c == '\\' && *i < n)
            (*i)++;
        else if (c == '(')
            depth++;
        else if (c == ')' && --depth == 0)
            return true;
    }
    return false;
}

/* The display name of a phrase s[0..n): words and quoted strings joined
 * by single spaces, comments dropped, quoted-pairs resolved. */
static int phrase_text(const char *s, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (wsp(c)) {
            i++;
            continue;
        }
        if (c == '(') {
            skip_comment(s, n, &i);
            continue;
        }
        if (out->len && buf_append_char(out, ' ') != 0)
            return -1;
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++) {
                if (s[i] == '\\' && i + 1 < n)
                    i++;
                if (buf_append_char(out, s[i]) != 0)
                    return -1;
            }
            i++;
        } else {
            size_t st = i;
            while (i < n && !wsp(s[i]) && s[i] != '"' && s[i] != '(')
                i++;
            if (buf_append(out, s + st, i - st) != 0)
                return -1;
        }
    }
    return 0;
}

/* A display name as it goes into a header: as atoms when it can, a quoted
 * string when it has specials, encoded-words when it is not ASCII. */
static int render_phrase(struct buf *out, const char *s, size_t n)
{
    if (!is_ascii(s, n) || longest_word(s, n) > MIME_FOLD_LEN - 2)
        return encode_words(out, s, n, MIME_ENCODED_WORD_LEN);
    bool atoms = true;
    for (size_t i = 0; i < n; i++)
        atoms = atoms && (atext((unsigned char)s[i]) || s[i] == ' ');
    return atoms ? buf_append(out, s, n) : quoted(out, s, n);
}

struct addr_ctx {
    const char *what;            /* the field, for messages */
    size_t count;                /* mailboxes rendered */
    char first_domain[SMTP_MAX_DOMAIN_LEN + 1];
    char *err;
    size_t errlen;
};

/* One element of an address list: a mailbox, "Name <addr>" or "addr". */
static int render_mailbox(struct buf *line, struct addr_ctx *a, const char *e, size_t n)
{
    struct sv el = sv_trim(sv_make(e, n));
    if (!el.len)
        return 0;
    int shown = el.len > 80 ? 80 : (int)el.len;
    struct mail_address_list l;
    char perr[128];
    if (mail_address_list_parse(el.p, el.len, &l, perr, sizeof perr) != 0)
        return errf(a->err, a->errlen, "%s: '%.*s' is not an address (%s)", a->what, shown,
                    el.p, perr);
    if (l.count != 1)
        return errf(a->err, a->errlen, "%s: '%.*s' is not one mailbox", a->what, shown, el.p);
    const struct mail_mailbox *b = &l.box[0];
    if (!b->local[0] || !b->domain[0])
        return errf(a->err, a->errlen, "%s: '%.*s' has an empty local part or domain", a->what,
                    shown, el.p);
    if (!is_ascii(b->local, strlen(b->local)) || !is_ascii(b->domain, strlen(b->domain)))
        return errf(a->err, a->errlen,
                    "%s: '%.*s': non-ASCII addresses (SMTPUTF8) are not supported; write the "
                    "domain in punycode", a->what, shown, el.p);
    if (strlen(b->local) > SMTP_MAX_LOCALPART_LEN)
        return errf(a->err, a->errlen, "%s: '%.*s': local part longer than %d octets", a->what,
                    shown, el.p, SMTP_MAX_LOCALPART_LEN);
    /* the display name: the phrase before a top-level '<' */
    size_t lt = el.len;
    bool inq = false;
    for (size_t i = 0; i < el.len && lt == el.len; i++) {
        char c = el.p[i];
        if (inq) {
            if (c == '\\')
                i++;
            else if (c == '"')
                inq = false;
        } else if (c == '"') {
            inq = true;
        } else if (c == '(') {
            skip_comment(el.p, el.len, &i);
            i--;
        } else if (c == '<') {
            lt = i;
        }
    }
    struct buf name;
    buf_init(&name, MAX_DISPLAY_NAME);
    if (lt < el.len && phrase_text(el.p, lt, &name) != 0) {
        buf_free(&name);
        return errf(a->err, a->errlen, "%s: display name longer than %d octets", a->what,
                    MAX_DISPLAY_NAME);
    }
    int rc = 0;
    if (a->count && buf_append(line, ", ", 2) != 0)
        rc = -1;
    if (rc == 0 && name.len)
        rc = render_phrase(line, name.data, name.len) != 0 || buf_append(line, " <", 2) != 0;
    if (rc == 0)
        rc = (dot_atom(b->local) ? buf_append_str(line, b->local)
                                 : quoted(line, b->local, strlen(b->local))) != 0 ||
             buf_printf(line, "@%s", b->domain) != 0 ||
             (name.len && buf_append_char(line, '>') != 0);
    buf_free(&name);
    if (rc != 0)
        return errf(a->err, a->errlen, "%s: too long", a->what);
    if (!a->count)
        snprintf(a->first_domain, sizeof a->first_domain, "%s", b->domain);
    a->count++;
    return 0;
}

/* An API address string (one or more mailboxes, comma-separated; no
 * groups) appended to line. */
static int render_addresses(struct buf *line, struct addr_ctx *a, const char *s)
{
    size_t n = strlen(s);
    const char *why = header_text_problem(s, n);
    if (why)
        return errf(a->err, a->errlen, "%s: the address %s", a->what, why);
    size_t start = 0;
    bool inq = false, angle = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (inq) {
            if (c == '\\')
                i++;
            else if (c == '"')
                inq = false;
            continue;
        }
        if (c == '"') {
            inq = true;
        } else if (c == '(') {
            if (!skip_comment(s, n, &i))
                return errf(a->err, a->errlen, "%s: unterminated comment", a->what);
            i--;
        } else if (c == '<') {
            angle = true;
        } else if (c == '>') {
            angle = false;
        } else if (c == ':' && !angle) {
            return errf(a->err, a->errlen, "%s: groups are not supported", a->what);
        } else if (c == ',' && !angle) {
            if (render_mailbox(line, a, s + start, i - start) != 0)
                return -1;
            start = i + 1;
        }
    }
    return render_mailbox(line, a, s + start, n - start);
}

/* Appends "Name: list" (folded, CRLF) for the address strings v[0..nv). */
static int address_field(struct buf *out, const char *name, const char *const *v, size_t nv,
                         struct addr_ctx *a)
{
    struct buf line;
    buf_init(&line, MAIL_MAX_HEADER_SECTION);
    a->what = name;
    a->count = 0;
    size_t nlen = strlen(name);
    size_t start = out->len;
    int rc = buf_printf(&line, "%s: ", name);
    for (size_t i = 0; rc == 0 && i < nv; i++) {
        if (!v[i])
            rc = errf(a->err, a->errlen, "%s: a NULL address", name);
        else
            rc = render_addresses(&line, a, v[i]);
    }
    if (rc == 0 && a->count == 0)
        rc = errf(a->err, a->errlen, "%s: no address", name);
    /* a fold may follow the colon: a long encoded display name comes first */
    if (rc == 0 && (fold(out, line.data, line.len, nlen) != 0 ||
                    buf_append(out, "\r\n", 2) != 0))
        rc = errf(a->err, a->errlen, "message too large");
    if (rc == 0 && longest_line(out->data + start, out->len - start) > MAIL_MAX_LINE_LEN)
        rc = errf(a->err, a->errlen, "%s: an address makes a line longer than %d octets", name,
                  MAIL_MAX_LINE_LEN);
    buf_free(&line);
    return rc;
}

/* ---- bodies ----------------------------------------------------------- */

enum cte { CTE_7BIT, CTE_QP, CTE_B64 };
static const char *const cte_names[] = { "7bit", "quoted-printable", "base64" };

/* CRLF line ends (LF, CR and CRLF in), and a final CRLF when the text does
 * not end with a line break. */
static int normalize(const char *s, struct buf *o)
{
    size_t n = strlen(s), run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            continue;
        if (buf_append(o, s + run, i - run) != 0 || buf_append(o, "\r\n", 2) != 0)
            return -1;
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        run = i + 1;
    }
    if (buf_append(o, s + run, n - run) != 0)
        return -1;
    if (run < n && buf_append(o, "\r\n", 2) != 0)
        return -1;
    return 0;
}

static enum cte choose_cte(const char *s, size_t n)
{
    size_t high = 0, line = 0, longest = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80)
            high++;
        if (s[i] == '\n')
            line = 0;
        else if (s[i] != '\r' && ++line > longest)
            longest = line;
    }
    if (!high && longest <= MAIL_MAX_LINE_LEN)
        return CTE_7BIT;
    return high * 100 > n * B64_MOSTLY_PCT ? CTE_B64 : CTE_QP;
}

/* RFC 2045 §6.7 on CRLF-terminated lines: printable ASCII but '=' as is,
 * white space as is except at the end of a line, soft breaks so no line
 * passes MIME_QP_LINE_LEN. */
static int qp_encode(const char *s, size_t n, struct buf *o)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) - 1 : n; /* normalized: CR before LF */
        size_t col = 0;
        for (size_t k = i; k < e; k++) {
            unsigned char c = (unsigned char)s[k];
            bool last = k + 1 == e;
            char t[3];
            size_t tl;
            if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
                t[0] = (char)c;
                tl = 1;
            } else {
                t[0] = '=', t[1] = hex[c >> 4], t[2] = hex[c & 15];
                tl = 3;
            }
            /* room for the soft break's '=' unless this ends the line */
            if (col + tl > (last ? MIME_QP_LINE_LEN : MIME_QP_LINE_LEN - 1)) {
                if (buf_append(o, "=\r\n", 3) != 0)
                    return -1;
                col = 0;
            }
            if (buf_append(o, t, tl) != 0)
                return -1;
            col += tl;
        }
        if (buf_append(o, "\r\n", 2) != 0)
            return -1;
        i = nl ? (size_t)(nl - s) + 1 : n;
    }
    return 0;
}

static int b64_encode(const char *s, size_t n, struct buf *o)
{
    const size_t chunk = MIME_B64_LINE_LEN / 4 * 3;
    unsigned char enc[MIME_B64_LINE_LEN + 4];
    for (size_t i = 0; i < n; i += chunk) {
        size_t l = n - i < chunk ? n - i : chunk;
        int el = EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)l);
        if (el < 0 || buf_append(o, enc, (size_t)el) != 0 || buf_append(o, "\r\n", 2) != 0)
            return -1;
    }
    return 0;
}

struct body {
    const char *type;            /* text/plain, text/html */
    enum cte cte;
    struct buf enc;              /* the encoded body, CRLF lines */
};

static int prepare_body(struct body *b, const char *type, const char *text, size_t cap,
                        char *err, size_t errlen)
{
    b->type = type;
    buf_init(&b->enc, cap);
    size_t n = strlen(text);
    if (!utf8_valid(text, n))
        return errf(err, errlen, "the %s body is not valid UTF-8", type);
    struct buf norm;
    buf_init(&norm, cap);
    int rc = normalize(text, &norm);
    if (rc == 0) {
        b->cte = choose_cte(buf_cstr(&norm), norm.len);
        rc = b->cte == CTE_7BIT ? buf_append(&b->enc, buf_cstr(&norm), norm.len)
             : b->cte == CTE_QP ? qp_encode(buf_cstr(&norm), norm.len, &b->enc)
                                : b64_encode(buf_cstr(&norm), norm.len, &b->enc);
    }
    buf_free(&norm);
    if (rc != 0)
        return errf(err, errlen, "message too large");
    return 0;
}

static int part_header(struct buf *out, const struct body *b)
{
    return buf_printf(out, "Content-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n",
                      b->type, cte_names[b->cte]);
}

/* ---- the message ------------------------------------------------------ */

static const char *const reserved_fields[] = {
    "Bcc", "From", "To", "Cc", "Date", "Message-ID", "MIME-Version", "DKIM-Signature",
    "Received", "Return-Path", "Subject", "Reply-To", "Authentication-Results", NULL,
};
static const char *const reserved_prefixes[] = { "Content-", "ARC-", NULL };
static const char *const single_fields[] = { "Sender", "In-Reply-To", "References", NULL };

static int check_extra(const struct mime_message *m, size_t k, char *err, size_t errlen)
{
    const struct mime_header *h = &m->headers[k];
    if (!h->name || !h->value)
        return errf(err, errlen, "extra header %zu: no name or value", k);
    size_t nlen = strlen(h->name);
    int shown = nlen > 80 ? 80 : (int)nlen;
    if (!mail_field_name_valid(sv_make(h->name, nlen)))
        return errf(err, errlen, "extra header '%.*s': not a valid field name", shown, h->name);
    if (nlen > MIME_MAX_FIELD_NAME_LEN)
        return errf(err, errlen, "extra header '%.*s...': name longer than %d octets", shown,
                    h->name, MIME_MAX_FIELD_NAME_LEN);
    for (size_t i = 0; reserved_fields[i]; i++)
        if (strcasecmp(h->name, reserved_fields[i]) == 0)
            return errf(err, errlen, "extra header '%s' is not allowed: sesame sets it",
                        h->name);
    for (size_t i = 0; reserved_prefixes[i]; i++)
        if (strncasecmp(h->name, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
            return errf(err, errlen, "extra header '%s' is not allowed: sesame sets %s* fields",
                        h->name, reserved_prefixes[i]);
    for (size_t i = 0; single_fields[i]; i++)
        if (strcasecmp(h->name, single_fields[i]) == 0)
            for (size_t j = 0; j < k; j++)
                if (m->headers[j].name && strcasecmp(m->headers[j].name, h->name) == 0)
                    return errf(err, errlen, "extra header '%s' given twice", h->name);
    const char *why = header_text_problem(h->value, strlen(h->value));
    if (why)
        return errf(err, errlen, "extra header '%s': the value %s", h->name, why);
    return 0;
}

/* A right-hand side for a Message-ID: a host name. */
static bool host_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > DNS_MAX_NAME_LEN || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || (s[i] == '.' && s[i + 1] != '.')))
            return false;
    return true;
}

static int random_hex(char *out, size_t bytes)
{
    unsigned char r[32];
    if (bytes > sizeof r || sodium_init() < 0)
        return -1;
    randombytes_buf(r, bytes);
    sodium_bin2hex(out, bytes * 2 + 1, r, bytes);
    return 0;
}

static bool contains(const struct buf *b, const char *needle)
{
    return b->len && memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

static int build(const struct mime_message *m, struct buf *out, char *err, size_t errlen)
{
    static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    if (!m->from)
        return errf(err, errlen, "no From address");
    if (!m->text && !m->html)
        return errf(err, errlen, "no body: give text, html or both");
    if ((m->nto && !m->to) || (m->ncc && !m->cc) || (m->nheaders && !m->headers))
        return errf(err, errlen, "bad request: a list without its entries");
    for (size_t k = 0; k < m->nheaders; k++)
        if (check_extra(m, k, err, errlen) != 0)
            return -1;
    const char *subject = m->subject ? m->subject : "";
    const char *why = header_text_problem(subject, strlen(subject));
    if (why)
        return errf(err, errlen, "Subject %s", why);
    if (m->message_id_domain && m->message_id_domain[0] && !host_name_ok(m->message_id_domain))
        return errf(err, errlen, "message_id_domain is not a host name");
    struct tm tm;
    if (!gmtime_r(&m->now, &tm) || tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 9999)
        return errf(err, errlen, "the time is out of range for a Date field");

    struct addr_ctx a = { .err = err, .errlen = errlen };
    char from_domain[SMTP_MAX_DOMAIN_LEN + 1];
    int rc = buf_printf(out, "Date: %s, %d %s %04d %02d:%02d:%02d +0000\r\n", wday[tm.tm_wday],
                        tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                        tm.tm_sec);
    if (rc != 0)
        return errf(err, errlen, "message too large");
    if (address_field(out, "From", &m->from, 1, &a) != 0)
        return -1;
    if (a.count != 1)
        return errf(err, errlen, "From: exactly one address, not %zu", a.count);
    memcpy(from_domain, a.first_domain, sizeof from_domain);
    if (m->reply_to && m->reply_to[0] && address_field(out, "Reply-To", &m->reply_to, 1, &a) != 0)
        return -1;
    if (m->nto && address_field(out, "To", m->to, m->nto, &a) != 0)
        return -1;
    if (m->ncc && address_field(out, "Cc", m->cc, m->ncc, &a) != 0)
        return -1;
    if (subject[0]) {
        if (unstructured_field(out, "Subject", 7, subject, strlen(subject)) != 0 ||
            buf_append(out, "\r\n", 2) != 0)
            return errf(err, errlen, "message too large (at Subject)");
    }
    const char *idhost = m->message_id_domain && m->message_id_domain[0] ? m->message_id_domain
                                                                         : from_domain;
    char id[33];
    if (random_hex(id, 16) != 0)
        return errf(err, errlen, "no randomness (libsodium)");
    if (buf_printf(out, "Message-ID: <%s@%s>\r\n", id, idhost) != 0)
        return errf(err, errlen, "message too large");
    for (size_t k = 0; k < m->nheaders; k++) {
        const struct mime_header *h = &m->headers[k];
        if (unstructured_field(out, h->name, strlen(h->name), h->value, strlen(h->value)) != 0 ||
            buf_append(out, "\r\n", 2) != 0)
            return errf(err, errlen, "message too large (at extra header '%s')", h->name);
    }
    if (buf_append_str(out, "MIME-Version: 1.0\r\n") != 0)
        return errf(err, errlen, "message too large");

    struct body bodies[2];
    size_t nb = 0;
    rc = 0;
    if (m->text)
        rc = prepare_body(&bodies[nb++], "text/plain", m->text, out->cap, err, errlen);
    if (rc == 0 && m->html)
        rc = prepare_body(&bodies[nb++], "text/html", m->html, out->cap, err, errlen);
    if (rc == 0 && nb == 1) {
        if (part_header(out, &bodies[0]) != 0 || buf_append(out, "\r\n", 2) != 0 ||
            buf_append(out, bodies[0].enc.data, bodies[0].enc.len) != 0)
            rc = errf(err, errlen, "message too large");
    } else if (rc == 0) {
        char boundary[64], hex[25];
        bool ok = false;
        for (int t = 0; t < BOUNDARY_TRIES && !ok; t++) {
            if (random_hex(hex, 12) != 0)
                break;
            snprintf(boundary, sizeof boundary, "=_sesame_%s", hex);
            ok = !contains(&bodies[0].enc, boundary) && !contains(&bodies[1].enc, boundary);
        }
        if (!ok) {
            rc = errf(err, errlen, "no boundary could be found");
        } else {
            rc = buf_printf(out, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n",
                            boundary);
            for (size_t k = 0; rc == 0 && k < nb; k++)
                rc = buf_printf(out, "--%s\r\n", boundary) != 0 || part_header(out, &bodies[k]) != 0 ||
                     buf_append(out, "\r\n", 2) != 0 ||
                     buf_append(out, bodies[k].enc.data, bodies[k].enc.len) != 0 ||
                     buf_append(out, "\r\n", 2) != 0;
            if (rc == 0)
                rc = buf_printf(out, "--%s--\r\n", boundary);
            if (rc != 0)
                rc = errf(err, errlen, "message too large");
        }
    }
    for (size_t k = 0; k < nb; k++)
        buf_free(&bodies[k].enc);
    return rc;
}

int mime_build(const struct mime_message *m, struct buf *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    size_t start = out->len;
    int rc = build(m, out, err, errlen);
    if (rc != 0 && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

/* ---- raw messages ----------------------------------------------------- */

int mime_check_raw(const char *msg, size_t len, size_t max_size, bool *has_date,
                   bool *has_msgid, char *err, size_t errlen)
{
    if (has_date)
        *has_date = false;
    if (has_msgid)
        *has_msgid = false;
    if (err && errlen)
        err[0] = '\0';
    if (!msg || len == 0)
        return errf(err, errlen, "empty message");
    if (len > max_size)
        return errf(err, errlen, "message is %zu octets, over the limit of %zu", len, max_size);
    const char *nul = memchr(msg, '\0', len);
    if (nul)
        return errf(err, errlen, "NUL octet at offset %zu", (size_t)(nul - msg));
    size_t line = 1;
    for (size_t i = 0; i < len; line++) {
        const char *nl = memchr(msg + i, '\n', len - i);
        if (!nl)
            return errf(err, errlen, "line %zu does not end with CRLF", line);
        size_t e = (size_t)(nl - msg);
        if (e == i || msg[e - 1] != '\r')
            return errf(err, errlen, "bare LF at the end of line %zu (lines must end with CRLF)",
                        line);
        if (memchr(msg + i, '\r', e - 1 - i))
            return errf(err, errlen, "bare CR in line %zu", line);
        if (e - 1 - i > MAIL_MAX_LINE_LEN)
            return errf(err, errlen, "line %zu is %zu octets long (at most %d before CRLF)", line,
                        e - 1 - i, MAIL_MAX_LINE_LEN);
        i = e + 1;
    }
    size_t head_len, body_off;
    mail_split_message(msg, len, &head_len, &body_off);
    if (head_len == 0)
        return errf(err, errlen, "no header section");
    if (head_len > MAIL_MAX_HEADER_SECTION)
        return errf(err, errlen, "header section larger than %d octets", MAIL_MAX_HEADER_SECTION);
    size_t count, malformed;
    mail_header_fields(msg, head_len, NULL, 0, &count, &malformed);
    if (malformed)
        return errf(err, errlen, "%zu header line(s) are not fields (no name and colon)",
                    malformed);
    if (count > MAIL_MAX_HEADERS)
        return errf(err, errlen, "more than %d header fields", MAIL_MAX_HEADERS);
    struct sv head = sv_make(msg, head_len), v;
    size_t nfrom = mime_header_count(head, "From");
    if (nfrom == 0)
        return errf(err, errlen, "no From field");
    if (nfrom > 1)
        return errf(err, errlen, "%zu From fields (exactly one is allowed)", nfrom);
    struct mail_address_list l;
    char perr[128];
    if (!mime_header_get(head, "From", &v) ||
        mail_address_list_parse(v.p, v.len, &l, perr, sizeof perr) != 0)
        return errf(err, errlen, "From is not an address: %s", perr);
    if (l.count != 1)
        return errf(err, errlen, "From holds %zu addresses (exactly one is allowed)", l.count);
    static const char *const once[] = { "Date", "Message-ID", "Sender", "Subject", NULL };
    for (size_t k = 0; once[k]; k++)
        if (mime_header_count(head, once[k]) > 1)
            return errf(err, errlen, "%zu %s fields (at most one is allowed)",
                        mime_header_count(head, once[k]), once[k]);
    if (has_date)
        *has_date = mime_header_count(head, "Date") == 1;
    if (has_msgid)
        *has_msgid = mime_header_count(head, "Message-ID") == 1;
    return 0;
}
