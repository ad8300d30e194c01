/* DMARC aggregate reports, the receiver's side: the RFC 7489 Appendix C
 * XML, its gzip, the §7.2.1.1 file name and mail, the rua destinations
 * (mailto:, !size) and the §7.1 external destination check.
 *
 * It does not aggregate rows, store, schedule or send anything, and it
 * does not parse reports (the sender's side reads them). */
#include "auth/dmarc_report.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <sodium.h>
#include <zlib.h>

#include "dns/dns_rdata.h"
#include "mail/mime_build.h"
#include "util/utf8.h"

#define REPLACEMENT "\xEF\xBF\xBD"      /* U+FFFD */
#define GZIP_WINDOW_BITS (15 + 16)      /* zlib: 32 KiB window, gzip wrapper */
#define GZIP_CHUNK 16384
#define B64_IN_PER_LINE (MIME_B64_LINE_LEN / 4 * 3) /* 57 octets → 76 characters */

/* On failure, put out back as it was. */
static int restore(struct buf *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
    return -1;
}

/* ---- XML ---- */

/* The document being written, with a sticky error. */
struct xw {
    struct buf *b;
    int err;
};

static void xw_raw(struct xw *x, const char *s, size_t n)
{
    if (!x->err && buf_append(x->b, s, n) != 0)
        x->err = -1;
}

static void xw_str(struct xw *x, const char *s)
{
    xw_raw(x, s, strlen(s));
}

/* Character data: & < > " ' escaped; what XML 1.0 cannot carry (invalid
 * UTF-8, C0 controls but TAB and LF, U+FFFE, U+FFFF) becomes U+FFFD. */
static void xw_text(struct xw *x, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), run = 0, i = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *rep = NULL;
        size_t adv = 1;
        if (c == '&')
            rep = "&amp;";
        else if (c == '<')
            rep = "&lt;";
        else if (c == '>')
            rep = "&gt;";
        else if (c == '"')
            rep = "&quot;";
        else if (c == '\'')
            rep = "&apos;";
        else if (c < 0x20 && c != '\t' && c != '\n')
            rep = REPLACEMENT;
        else if (c >= 0x80) {
            adv = utf8_seq_len(p + i, n - i);
            if (adv == 0) {
                rep = REPLACEMENT;
                adv = 1;
            } else if (adv == 3 && c == 0xEF && p[i + 1] == 0xBF &&
                       (p[i + 2] == 0xBE || p[i + 2] == 0xBF)) {
                rep = REPLACEMENT;
            }
        }
        if (rep) {
            xw_raw(x, s + run, i - run);
            xw_str(x, rep);
            run = i + adv;
        }
        i += adv;
    }
    xw_raw(x, s + run, n - run);
}

static void xw_indent(struct xw *x, int depth)
{
    static const char spaces[] = "                ";
    int n = 2 * depth;
    xw_raw(x, spaces, (size_t)(n < (int)sizeof spaces - 1 ? n : (int)sizeof spaces - 1));
}

/* <name>escaped text</name> on its own line. */
static void xw_elem(struct xw *x, int depth, const char *name, const char *text)
{
    xw_indent(x, depth);
    xw_str(x, "<");
    xw_str(x, name);
    xw_str(x, ">");
    xw_text(x, text);
    xw_str(x, "</");
    xw_str(x, name);
    xw_str(x, ">\n");
}

static void xw_open(struct xw *x, int depth, const char *name)
{
    xw_indent(x, depth);
    xw_str(x, "<");
    xw_str(x, name);
    xw_str(x, ">\n");
}

static void xw_close(struct xw *x, int depth, const char *name)
{
    xw_indent(x, depth);
    xw_str(x, "</");
    xw_str(x, name);
    xw_str(x, ">\n");
}

static bool in_list(const char *s, const char *const *list)
{
    if (!s)
        return false;
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static const char *const DKIM_RESULTS[] = { "none", "pass", "fail", "policy", "neutral",
                                            "temperror", "permerror", NULL };
static const char *const SPF_RESULTS[] = { "none", "neutral", "pass", "fail", "softfail",
                                           "temperror", "permerror", NULL };
static const char *const SPF_SCOPES[] = { "helo", "mfrom", NULL };
static const char *const REASONS[] = { "forwarded", "sampled_out", "trusted_forwarder",
                                       "mailing_list", "local_policy", "other", NULL };

static const char *align_name(enum dmarc_align a)
{
    return a == DMARC_ALIGN_RELAXED ? "r" : a == DMARC_ALIGN_STRICT ? "s" : NULL;
}

/* A disposition or published policy: none, quarantine or reject. */
static const char *policy_name(enum dmarc_policy p)
{
    return p == DMARC_P_NONE || p == DMARC_P_QUARANTINE || p == DMARC_P_REJECT
               ? dmarc_policy_name(p) : NULL;
}

/* The source address in the form the schema's IPAddress pattern takes:
 * dotted IPv4, or IPv6 as eight groups (no "::"); IPv4-mapped → IPv4. */
static int format_ip(const char *s, char *out, size_t outlen)
{
    unsigned char a[16];
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    int n;
    if (inet_pton(AF_INET, s, a) == 1) {
        n = snprintf(out, outlen, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    } else if (inet_pton(AF_INET6, s, a) != 1) {
        return -1;
    } else if (memcmp(a, mapped, sizeof mapped) == 0) {
        n = snprintf(out, outlen, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
    } else {
        n = snprintf(out, outlen, "%x:%x:%x:%x:%x:%x:%x:%x", a[0] << 8 | a[1],
                     a[2] << 8 | a[3], a[4] << 8 | a[5], a[6] << 8 | a[7], a[8] << 8 | a[9],
                     a[10] << 8 | a[11], a[12] << 8 | a[13], a[14] << 8 | a[15]);
    }
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static bool row_ok(const struct dmarc_report_row *r)
{
    if (!r->source_ip || !r->header_from || !r->spf_domain ||
        !in_list(r->spf_scope, SPF_SCOPES) || !in_list(r->spf_result, SPF_RESULTS) ||
        !policy_name(r->disposition) || (r->reason_type && !in_list(r->reason_type, REASONS)) ||
        r->ndkim > DMARC_REPORT_MAX_DKIM || (r->ndkim && !r->dkim))
        return false;
    for (size_t k = 0; k < r->ndkim; k++)
        if (!r->dkim[k].domain || !in_list(r->dkim[k].result, DKIM_RESULTS))
            return false;
    return true;
}

static void write_row(struct xw *x, const struct dmarc_report_row *r, const char *ip)
{
    char num[32];
    xw_open(x, 1, "record");
    xw_open(x, 2, "row");
    xw_elem(x, 3, "source_ip", ip);
    snprintf(num, sizeof num, "%" PRIu64, r->count);
    xw_elem(x, 3, "count", num);
    xw_open(x, 3, "policy_evaluated");
    xw_elem(x, 4, "disposition", policy_name(r->disposition));
    xw_elem(x, 4, "dkim", r->dkim_pass ? "pass" : "fail");
    xw_elem(x, 4, "spf", r->spf_pass ? "pass" : "fail");
    if (r->reason_type) {
        xw_open(x, 4, "reason");
        xw_elem(x, 5, "type", r->reason_type);
        if (r->reason_comment)
            xw_elem(x, 5, "comment", r->reason_comment);
        xw_close(x, 4, "reason");
    }
    xw_close(x, 3, "policy_evaluated");
    xw_close(x, 2, "row");
    xw_open(x, 2, "identifiers");
    xw_elem(x, 3, "envelope_from", r->envelope_from ? r->envelope_from : "");
    xw_elem(x, 3, "header_from", r->header_from);
    xw_close(x, 2, "identifiers");
    xw_open(x, 2, "auth_results");
    for (size_t k = 0; k < r->ndkim; k++) {
        xw_open(x, 3, "dkim");
        xw_elem(x, 4, "domain", r->dkim[k].domain);
        if (r->dkim[k].selector)
            xw_elem(x, 4, "selector", r->dkim[k].selector);
        xw_elem(x, 4, "result", r->dkim[k].result);
        xw_close(x, 3, "dkim");
    }
    xw_open(x, 3, "spf");
    xw_elem(x, 4, "domain", r->spf_domain);
    xw_elem(x, 4, "scope", r->spf_scope);
    xw_elem(x, 4, "result", r->spf_result);
    xw_close(x, 3, "spf");
    xw_close(x, 2, "auth_results");
    xw_close(x, 1, "record");
}

int dmarc_report_xml(const struct dmarc_report_meta *m, const struct dmarc_report_policy *p,
                     const struct dmarc_report_row *rows, size_t nrows, struct buf *out)
{
    if (!m || !p || !rows || !out || nrows == 0 || !m->org_name || !m->email ||
        !m->report_id || m->begin < 0 || m->end < m->begin || !p->domain || p->pct > 100 ||
        !align_name(p->adkim) || !align_name(p->aspf) || !policy_name(p->p) ||
        (p->sp != DMARC_P_UNSET && !policy_name(p->sp)))
        return -1;
    for (size_t i = 0; i < nrows; i++) {
        char ip[INET6_ADDRSTRLEN + 8];
        if (!row_ok(&rows[i]) || format_ip(rows[i].source_ip, ip, sizeof ip) != 0)
            return -1;
    }
    size_t start = out->len;
    struct xw x = { out, 0 };
    char num[32];
    xw_str(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n");
    xw_elem(&x, 1, "version", "1.0");
    xw_open(&x, 1, "report_metadata");
    xw_elem(&x, 2, "org_name", m->org_name);
    xw_elem(&x, 2, "email", m->email);
    if (m->extra_contact_info)
        xw_elem(&x, 2, "extra_contact_info", m->extra_contact_info);
    xw_elem(&x, 2, "report_id", m->report_id);
    xw_open(&x, 2, "date_range");
    snprintf(num, sizeof num, "%" PRId64, m->begin);
    xw_elem(&x, 3, "begin", num);
    snprintf(num, sizeof num, "%" PRId64, m->end);
    xw_elem(&x, 3, "end", num);
    xw_close(&x, 2, "date_range");
    xw_close(&x, 1, "report_metadata");

    xw_open(&x, 1, "policy_published");
    xw_elem(&x, 2, "domain", p->domain);
    xw_elem(&x, 2, "adkim", align_name(p->adkim));
    xw_elem(&x, 2, "aspf", align_name(p->aspf));
    xw_elem(&x, 2, "p", policy_name(p->p));
    xw_elem(&x, 2, "sp", policy_name(p->sp == DMARC_P_UNSET ? p->p : p->sp));
    snprintf(num, sizeof num, "%u", p->pct);
    xw_elem(&x, 2, "pct", num);
    xw_elem(&x, 2, "fo", p->fo && p->fo[0] ? p->fo : "0");
    xw_close(&x, 1, "policy_published");

    for (size_t i = 0; i < nrows && !x.err; i++) {
        char ip[INET6_ADDRSTRLEN + 8];
        if (format_ip(rows[i].source_ip, ip, sizeof ip) != 0)
            return restore(out, start);
        write_row(&x, &rows[i], ip);
    }
    xw_str(&x, "</feedback>\n");
    return x.err ? restore(out, start) : 0;
}

/* ---- gzip ---- */

int dmarc_report_gzip(const char *data, size_t len, struct buf *out)
{
    if (!out || (!data && len))
        return -1;
    size_t start = out->len;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, GZIP_WINDOW_BITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    unsigned char chunk[GZIP_CHUNK];
    size_t off = 0;
    int rc = Z_OK;
    for (;;) {
        size_t n = len - off;
        if (n > UINT_MAX / 2)
            n = UINT_MAX / 2;
        zs.next_in = (Bytef *)(uintptr_t)(data ? data + off : "");
        zs.avail_in = (uInt)n;
        off += n;
        int flush = off == len ? Z_FINISH : Z_NO_FLUSH;
        do {
            zs.next_out = chunk;
            zs.avail_out = sizeof chunk;
            rc = deflate(&zs, flush);
            if (rc == Z_STREAM_ERROR)
                break;
            if (buf_append(out, chunk, sizeof chunk - zs.avail_out) != 0) {
                rc = Z_STREAM_ERROR;
                break;
            }
        } while (zs.avail_out == 0);
        if (rc == Z_STREAM_ERROR || flush == Z_FINISH)
            break;
    }
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : restore(out, start);
}

/* ---- the file name and the mail ---- */

/* A DNS name of letters, digits, '-', '_' and '.' (safe in a quoted MIME
 * parameter and a file name). */
static bool plain_domain(const char *s)
{
    if (!s || !*s || !dns_name_is_valid(s, strlen(s)))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

int dmarc_report_filename(const char *receiver, const char *policy_domain, int64_t begin,
                          int64_t end, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return -1;
    out[0] = '\0';
    if (!plain_domain(receiver) || !plain_domain(policy_domain) || begin < 0 || end < 0)
        return -1;
    int n = snprintf(out, outlen, "%s!%s!%" PRId64 "!%" PRId64 ".xml.gz", receiver,
                     policy_domain, begin, end);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* RFC 5322 atext. */
static bool is_atext(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* dot-atom-text: atext runs separated by single dots. */
static bool dot_atom(const char *s, size_t maxlen)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > maxlen || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return false;
        } else if (!is_atext((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* One address (or "Name <addr>"): printable ASCII and spaces, an '@'. */
static bool address_ok(const char *s, size_t n)
{
    if (n == 0 || n > MAIL_MAX_LINE_LEN - 8 || !memchr(s, '@', n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* "Name: a, b, c" folded after a comma when a line would pass 78. */
static int address_field(struct buf *b, const char *name, const char *list)
{
    if (!list || buf_printf(b, "%s:", name) != 0)
        return -1;
    size_t col = strlen(name) + 1, count = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        while (n && *s == ' ') {
            s++;
            n--;
        }
        while (n && s[n - 1] == ' ')
            n--;
        if (!address_ok(s, n))
            return -1;
        if (count && col + n + 2 > MIME_FOLD_LEN) {
            if (buf_append_str(b, "\r\n") != 0)
                return -1;
            col = 0;
        }
        if (buf_append_char(b, ' ') != 0 || buf_append(b, s, n) != 0)
            return -1;
        col += n + 1;
        count++;
        if (!comma)
            break;
        if (buf_append_char(b, ',') != 0)
            return -1;
        col++;
        p = comma + 1;
    }
    return buf_append_str(b, "\r\n");
}

static int utc_tm(int64_t t, struct tm *tm)
{
    time_t tt = (time_t)t;
    if ((int64_t)tt != t || !gmtime_r(&tt, tm) || tm->tm_year + 1900 > 9999)
        return -1;
    return 0;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char r[32];
    if (nbytes > sizeof r)
        nbytes = sizeof r;
    randombytes_buf(r, nbytes);
    sodium_bin2hex(out, 2 * nbytes + 1, r, nbytes);
}

static int base64_lines(struct buf *b, const unsigned char *p, size_t n)
{
    unsigned char line[MIME_B64_LINE_LEN + 4];
    for (size_t off = 0; off < n; off += B64_IN_PER_LINE) {
        size_t k = n - off < B64_IN_PER_LINE ? n - off : B64_IN_PER_LINE;
        int w = EVP_EncodeBlock(line, p + off, (int)k);
        if (w < 0 || buf_append(b, line, (size_t)w) != 0 || buf_append_str(b, "\r\n") != 0)
            return -1;
    }
    return 0;
}

int dmarc_report_message(const struct dmarc_report_meta *m, const char *policy_domain,
                         const char *from_addr, const char *to_addr, const char *gz, size_t gzlen,
                         struct buf *out)
{
    static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    char filename[DMARC_REPORT_FILENAME_LEN];
    struct tm now, tb, te;
    if (!m || !out || !gz || gzlen == 0 || !from_addr || !to_addr ||
        !plain_domain(m->org_name) || !dot_atom(m->report_id, DMARC_REPORT_MAX_ID_LEN) ||
        dmarc_report_filename(m->org_name, policy_domain, m->begin, m->end, filename,
                              sizeof filename) != 0 ||
        !address_ok(from_addr, strlen(from_addr)) || strchr(from_addr, ',') ||
        utc_tm(m->begin, &tb) != 0 || utc_tm(m->end, &te) != 0 ||
        utc_tm((int64_t)time(NULL), &now) != 0)
        return -1;
    char boundary[40], msgid_rand[32];
    random_hex(boundary, 16);
    random_hex(msgid_rand, 12);

    size_t start = out->len;
    struct buf subject;
    buf_init(&subject, 2048);
    int rc = buf_printf(&subject, "Report Domain: %s Submitter: %s Report-ID: <%s@%s>",
                        policy_domain, m->org_name, m->report_id, m->org_name);
    rc = rc || buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
                          wday[now.tm_wday], now.tm_mday, mon[now.tm_mon], now.tm_year + 1900,
                          now.tm_hour, now.tm_min, now.tm_sec);
    rc = rc || address_field(out, "From", from_addr);
    rc = rc || address_field(out, "To", to_addr);
    rc = rc || buf_printf(out, "Message-ID: <dmarc.%s@%s>\r\n", msgid_rand, m->org_name);
    rc = rc || buf_append_str(out, "Subject: ");
    rc = rc || mime_encode_header("Subject", buf_cstr(&subject), out);
    rc = rc || buf_append_str(out, "\r\nMIME-Version: 1.0\r\n"
                                   "Auto-Submitted: auto-generated\r\n");
    rc = rc || buf_printf(out, "Content-Type: multipart/mixed;\r\n\tboundary=\"=_%s\"\r\n\r\n"
                          "This is a DMARC aggregate report in MIME format.\r\n\r\n", boundary);
    rc = rc || buf_printf(out, "--=_%s\r\n"
                          "Content-Type: text/plain; charset=us-ascii\r\n"
                          "Content-Transfer-Encoding: 7bit\r\n\r\n"
                          "This is a DMARC aggregate report (RFC 7489) from %s\r\n"
                          "for %s, covering %04d-%02d-%02d %02d:%02d:%02d to "
                          "%04d-%02d-%02d %02d:%02d:%02d UTC.\r\n"
                          "Report-ID: <%s@%s>\r\n"
                          "The report is the attached file, XML compressed with gzip:\r\n"
                          "%s\r\n\r\n",
                          boundary, m->org_name, policy_domain, tb.tm_year + 1900, tb.tm_mon + 1,
                          tb.tm_mday, tb.tm_hour, tb.tm_min, tb.tm_sec, te.tm_year + 1900,
                          te.tm_mon + 1, te.tm_mday, te.tm_hour, te.tm_min, te.tm_sec,
                          m->report_id, m->org_name, filename);
    rc = rc || buf_printf(out, "--=_%s\r\n"
                          "Content-Type: application/gzip;\r\n\tname=\"%s\"\r\n"
                          "Content-Transfer-Encoding: base64\r\n"
                          "Content-Disposition: attachment;\r\n\tfilename=\"%s\"\r\n\r\n",
                          boundary, filename, filename);
    rc = rc || base64_lines(out, (const unsigned char *)gz, gzlen);
    rc = rc || buf_printf(out, "--=_%s--\r\n", boundary);
    buf_free(&subject);
    return rc ? restore(out, start) : 0;
}

/* ---- destinations ---- */

static void add_reason(char reasons[][160], size_t *nreasons, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_reason(char reasons[][160], size_t *nreasons, const char *fmt, ...)
{
    if (*nreasons >= DMARC_MAX_URIS)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(reasons[*nreasons], 160, fmt, ap) >= 0)
        (*nreasons)++;
    va_end(ap);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "mailto:local@domain[?hfields]" → "local@domain" (%-decoded, domain in
 * lower case); NULL, or the reason it is not usable. */
static const char *mailto_address(const char *uri, char *out, size_t outlen)
{
    if (strncasecmp(uri, "mailto:", 7) != 0)
        return "not a mailto: URI (only mailto: is supported)";
    const char *p = uri + 7;
    size_t n = strcspn(p, "?"), k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return "bad %-escape in the address";
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (k + 1 >= outlen)
            return "address too long";
        out[k++] = c;
    }
    out[k] = '\0';
    char *at = strrchr(out, '@');
    if (!at || at == out || !at[1])
        return "no address in the URI";
    size_t llen = (size_t)(at - out);
    if (llen > SMTP_MAX_LOCALPART_LEN)
        return "local part too long";
    for (size_t i = 0; i < llen; i++)
        if (out[i] != '.' && !is_atext((unsigned char)out[i]))
            return "not a single plain address (local@domain)";
    for (char *d = at + 1; *d; d++)
        *d = (char)tolower((unsigned char)*d);
    if (!plain_domain(at + 1) || strlen(at + 1) > DNS_MAX_NAME_LEN)
        return "the address has no valid domain";
    return NULL;
}

size_t dmarc_report_destinations(const struct dmarc_record *rec, size_t size,
                                 char out[][DNS_MAX_NAME_LEN + 80], char reasons[][160],
                                 size_t *nreasons)
{
    size_t n = 0, nr = 0;
    for (size_t i = 0; rec && i < rec->nrua && i < DMARC_MAX_URIS; i++) {
        const struct dmarc_uri *u = &rec->rua[i];
        char addr[DNS_MAX_NAME_LEN + 80];
        const char *why = mailto_address(u->uri, addr, sizeof addr);
        if (why) {
            add_reason(reasons, &nr, "%.80s: %s", u->uri, why);
            continue;
        }
        if (u->max_size && size > u->max_size) {
            add_reason(reasons, &nr, "%.80s: the report mail is %zu octets, over its "
                       "%llu-octet limit (!size)", u->uri, size, u->max_size);
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcasecmp(out[k], addr) == 0;
        if (dup) {
            add_reason(reasons, &nr, "%.80s: listed twice", u->uri);
            continue;
        }
        memcpy(out[n++], addr, strlen(addr) + 1);
    }
    if (nreasons)
        *nreasons = nr;
    return n;
}

/* ---- §7.1 external destinations ---- */

/* Lower case, no trailing dot; false when it does not fit. */
static bool lower_name(const char *s, char *out, size_t outlen)
{
    size_t n = s ? strlen(s) : 0;
    if (n && s[n - 1] == '.')
        n--;
    if (n == 0 || n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return true;
}

bool dmarc_report_needs_authorization(const char *policy_domain, const char *rua_domain,
                                      char *name, size_t namelen)
{
    char pd[DNS_MAX_NAME_LEN + 2], rd[DNS_MAX_NAME_LEN + 2];
    char po[DNS_MAX_NAME_LEN + 2], ro[DNS_MAX_NAME_LEN + 2];
    if (name && namelen)
        name[0] = '\0';
    if (!lower_name(policy_domain, pd, sizeof pd) || !lower_name(rua_domain, rd, sizeof rd))
        return true;
    dmarc_org_domain(pd, po, sizeof po);
    dmarc_org_domain(rd, ro, sizeof ro);
    if (strcmp(po, ro) == 0)
        return false;
    char full[2 * DNS_MAX_NAME_LEN + 32];
    int n = snprintf(full, sizeof full, "%s._report._dmarc.%s", pd, rd);
    if (name && n > 0 && (size_t)n <= DNS_MAX_NAME_LEN && (size_t)n < namelen)
        memcpy(name, full, (size_t)n + 1);
    return true;
}

int dmarc_report_authorized(struct dns_resolver *dns, const char *name)
{
    if (!dns)
        return -1;
    if (!name || !name[0] || !dns_name_is_valid(name, strlen(name)))
        return 0;
    struct dns_answer a;
    dns_query(dns, name, DNS_T_TXT, &a);
    int ret = 0;
    if (a.status == DNS_TEMPFAIL) {
        ret = -1;
    } else if (a.status == DNS_OK) {
        struct buf t;
        buf_init(&t, DMARC_REPORT_AUTH_TXT_LEN);
        for (size_t i = 0; i < a.count && ret == 0; i++) {
            size_t nstrings;
            if (dns_rdata_txt(a.rrs[i].data, a.rrs[i].len, &t, &nstrings) == 0 && t.len &&
                !memchr(t.data, '\0', t.len) && dmarc_is_record(t.data, t.len))
                ret = 1;
        }
        buf_free(&t);
    }
    dns_answer_release(&a);
    return ret;
}
