/* Inbound header rewrite: forged Authentication-Results removal, our
 * Authentication-Results and Received fields prepended and folded, the
 * Received value, the listing summary, and the header-section walker
 * rules.c shares. See inbound_msg.h. Decides nothing about authentication
 * (auth/ does) and never reinterprets the fields it keeps. */
#include "service/inbound_msg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/authres.h"
#include "mail/mail_header.h"

/* ---- walking ---- */

void inbound_hdr_walk_init(struct inbound_hdr_walk *w, const char *head, size_t len)
{
    w->buf = head;
    w->len = len;
    w->pos = 0;
}

/* End of the line starting at i: past its LF, or len. *content_end is
 * where its terminator (CRLF or LF) begins. */
static size_t line_end(const char *buf, size_t len, size_t i, size_t *content_end)
{
    const char *nl = memchr(buf + i, '\n', len - i);
    if (!nl) {
        *content_end = len;
        return len;
    }
    size_t le = (size_t)(nl - buf);
    *content_end = le > i && buf[le - 1] == '\r' ? le - 1 : le;
    return le + 1;
}

bool inbound_hdr_next(struct inbound_hdr_walk *w, struct inbound_hdr_entity *e)
{
    if (w->pos >= w->len)
        return false;
    const char *buf = w->buf;
    size_t start = w->pos, ce;
    size_t next = line_end(buf, w->len, start, &ce);
    size_t last_ce = ce;
    /* continuation lines */
    while (next < w->len && (buf[next] == ' ' || buf[next] == '\t')) {
        next = line_end(buf, w->len, next, &last_ce);
    }
    *e = (struct inbound_hdr_entity){ .start = start, .end = next };
    if (buf[start] != ' ' && buf[start] != '\t') {
        struct sv line = sv_make(buf + start, ce - start);
        size_t colon = sv_find(line, ':');
        struct sv name = sv_sub(line, 0, colon);
        while (name.len && (name.p[name.len - 1] == ' ' || name.p[name.len - 1] == '\t'))
            name.len--;
        if (colon < line.len && mail_field_name_valid(name)) {
            e->name = name;
            e->value = sv_make(buf + start + colon + 1, last_ce - (start + colon + 1));
        }
    }
    w->pos = next;
    return true;
}

size_t inbound_unfold(struct sv v, char *out, size_t outlen)
{
    if (outlen == 0)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < v.len && n + 1 < outlen; i++) {
        char c = v.p[i];
        if (c == '\n' || (c == '\r' && i + 1 < v.len && v.p[i + 1] == '\n'))
            continue;
        if (n == 0 && (c == ' ' || c == '\t'))
            continue;
        out[n++] = c == '\0' ? ' ' : c;
    }
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
    return n;
}

/* ---- writing folded fields ---- */

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }

/* Checks and unfolds a value we are given: a line break is allowed only as
 * folding (followed by WSP) and is removed; WSP at both ends is trimmed. */
static int unfold_given(const char *v, struct buf *tmp)
{
    buf_reset(tmp);
    size_t len = strlen(v);
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '\r' || c == '\n') {
            size_t j = i + (c == '\r' && i + 1 < len && v[i + 1] == '\n');
            if (j + 1 >= len || !is_wsp(v[j + 1]) || (c == '\r' && j == i))
                return -1;   /* a bare CR, or a break that would start a new field */
            i = j;
            continue;
        }
        if (tmp->len == 0 && is_wsp(c))
            continue;
        if (buf_append_char(tmp, c) != 0)
            return -1;
    }
    while (tmp->len && is_wsp(tmp->data[tmp->len - 1]))
        tmp->data[--tmp->len] = '\0';
    return 0;
}

/* Writes "name: value" + eol, folding before white space so that lines
 * stay within INBOUND_FOLD_COLUMNS where possible. A break after ';' is
 * preferred (one result per line in Authentication-Results); a word
 * longer than a line stays whole. Folding only adds CRLF before existing
 * WSP, which unfolding removes again, so the value means the same. */
static int put_folded(struct buf *out, const char *name, const char *value, const char *eol)
{
    struct buf tmp;
    buf_init(&tmp, MAIL_MAX_HEADER_SECTION);
    if (unfold_given(value, &tmp) != 0) {
        buf_free(&tmp);
        return -1;
    }
    const char *v = buf_cstr(&tmp);
    size_t n = tmp.len, pos = 0;
    size_t col = strlen(name) + 2;
    int rc = buf_append_str(out, name);
    rc |= buf_append_str(out, ": ");
    while (rc == 0 && col + (n - pos) > INBOUND_FOLD_COLUMNS) {
        size_t best = 0, best_semi = 0, first = 0;
        for (size_t j = pos + 1; j < n; j++) {
            if (!is_wsp(v[j]) || is_wsp(v[j - 1]))
                continue;
            size_t k = j;   /* the new line must not be white space only */
            while (k < n && is_wsp(v[k]))
                k++;
            if (k == n)
                break;
            if (col + (j - pos) > INBOUND_FOLD_COLUMNS) {
                first = first ? first : j;
                break;
            }
            best = j;
            if (v[j - 1] == ';')
                best_semi = j;
        }
        size_t cut = best_semi ? best_semi : best ? best : first;
        if (cut == 0)
            break;
        rc |= buf_append(out, v + pos, cut - pos);
        rc |= buf_append_str(out, eol);
        pos = cut;
        col = 0;
    }
    rc |= buf_append(out, v + pos, n - pos);
    rc |= buf_append_str(out, eol);
    buf_free(&tmp);
    return rc ? -1 : 0;
}

/* ---- the rewrite ---- */

int inbound_msg_rewrite(const char *msg, size_t len, const char *authserv_id,
                        const char *authres_value, const char *received_value, struct buf *out,
                        size_t *removed)
{
    static const char ar_name[] = "Authentication-Results";
    size_t dropped = 0;
    if (removed)
        *removed = 0;
    buf_reset(out);
    if (!msg || !authres_value || !received_value)
        return -1;
    size_t head_len, body_off;
    mail_split_message(msg, len, &head_len, &body_off);

    /* lines we add end like the message's first line */
    const char *nl = memchr(msg, '\n', len);
    const char *eol = nl && (nl == msg || nl[-1] != '\r') ? "\n" : "\r\n";

    struct sv given = sv_cstr(authres_value);
    if (sv_has_prefix_ci(given, ar_name) && given.len > strlen(ar_name) &&
        given.p[strlen(ar_name)] == ':')
        authres_value += strlen(ar_name) + 1;

    /* RFC 8601 §4: the Authentication-Results field SHOULD be inserted
     * above any other trace field the same MTA prepends, and §7.1: a
     * trusted one appears above the Received field its MTA added, which is
     * how readers (SpamAssassin among them) tell which results to trust.
     * Hence ours goes first and our Received (RFC 5321 §4.4, prepended
     * like every trace field) right below it, both above all that arrived. */
    if (put_folded(out, ar_name, authres_value, eol) != 0 ||
        put_folded(out, "Received", received_value, eol) != 0)
        return -1;

    /* RFC 8601 §5: fields claiming our authserv-id did not come from us;
     * every one of them goes, however it is folded or spelled. */
    struct inbound_hdr_walk w;
    struct inbound_hdr_entity e;
    size_t copied = 0;   /* msg[0..copied) has been handled */
    inbound_hdr_walk_init(&w, msg, head_len);
    while (inbound_hdr_next(&w, &e)) {
        /* continuation lines with no field above them would continue our
         * Received field once it is put above them: they belong to no
         * field, so they go */
        if (e.start == 0 && (msg[0] == ' ' || msg[0] == '\t')) {
            copied = e.end;
            continue;
        }
        if (e.name.len && sv_eq_ci_cstr(e.name, ar_name) && authserv_id && authserv_id[0] &&
            authres_claims_id(e.value, authserv_id)) {
            if (buf_append(out, msg + copied, e.start - copied) != 0)
                return -1;
            copied = e.end;
            dropped++;
        }
    }
    if (buf_append(out, msg + copied, len - copied) != 0)
        return -1;
    if (removed)
        *removed = dropped;
    return 0;
}

/* ---- Received ---- */

/* A Domain of RFC 5321 §4.1.2 (letters, digits, '-', '.'; '_' tolerated as
 * real HELO names carry it), at most 255 octets. */
static bool is_domain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" whose address parses. */
static bool is_address_literal(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 64 || s[0] != '[' || s[n - 1] != ']')
        return false;
    char inner[64];
    memcpy(inner, s + 1, n - 2);
    inner[n - 2] = '\0';
    unsigned char addr[16];
    if (strncasecmp(inner, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, inner + 5, addr) == 1;
    return inet_pton(AF_INET, inner, addr) == 1;
}

/* An atom of letters, digits and "-._" (ids, protocol keywords). */
static bool is_token(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

/* A Path we may write as "<rcpt>": printable, no white space, no <>. */
static bool is_path(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')' ||
            c == ';' || c == '\\' || c == '"')
            return false;
    }
    return true;
}

/* A comment's text: '(' ')' '\' escaped, controls made spaces. */
static int put_comment_text(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c == '(' || c == ')' || c == '\\') && buf_append_char(b, '\\') != 0)
            return -1;
        if (buf_append_char(b, c < 0x20 || c == 0x7f ? ' ' : (char)c) != 0)
            return -1;
    }
    return 0;
}

static int put_date(struct buf *b, time_t when)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    if (!gmtime_r(&when, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11)
        return -1;
    /* RFC 5322 §3.3 date-time; UTC as +0000 */
    return buf_printf(b, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                      months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int inbound_msg_received(char *out, size_t outlen, const char *helo, const char *client_ip,
                         const char *rdns, const char *by_host, const char *protocol,
                         const char *tls_desc, const char *id, const char *for_rcpt,
                         time_t when)
{
    if (!out || outlen == 0)
        return -1;
    out[0] = '\0';
    if (!client_ip || !by_host || !protocol || !id || !is_domain(by_host) ||
        !is_token(protocol, 32) || !is_token(id, 128))
        return -1;
    char literal[64];
    unsigned char addr[16];
    if (inet_pton(AF_INET, client_ip, addr) == 1)
        snprintf(literal, sizeof literal, "[%s]", client_ip);
    else if (strlen(client_ip) < 46 && inet_pton(AF_INET6, client_ip, addr) == 1)
        snprintf(literal, sizeof literal, "[IPv6:%s]", client_ip);
    else
        return -1;

    struct buf b;
    buf_init_fixed(&b, out, outlen);
    bool helo_ok = helo && (is_domain(helo) || is_address_literal(helo));
    int rc = buf_printf(&b, "from %s (", helo_ok ? helo : literal);
    if (rdns && is_domain(rdns))
        rc |= buf_printf(&b, "%s ", rdns);
    rc |= buf_printf(&b, "%s) by %s with %s", literal, by_host, protocol);
    if (tls_desc && tls_desc[0]) {
        rc |= buf_append_str(&b, " (");
        rc |= put_comment_text(&b, tls_desc);
        rc |= buf_append_char(&b, ')');
    }
    rc |= buf_printf(&b, " id %s", id);
    if (for_rcpt && is_path(for_rcpt))
        rc |= buf_printf(&b, " for <%s>", for_rcpt);
    rc |= buf_append_str(&b, "; ");
    rc |= put_date(&b, when);
    if (rc != 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* ---- summary ---- */

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    unsigned cp = c & (0x7f >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

/* Unfolds value into out (size outlen > 0) as the listing shows it. */
static void summary_value(struct sv value, char *out, size_t outlen)
{
    /* a value longer than what fits is cut anyway: unfold only a prefix
     * (after unfolding, each output octet stands for one octet of tmp) */
    char *tmp = malloc(outlen + 4);
    if (!tmp) {
        out[0] = '\0';
        return;
    }
    size_t n = inbound_unfold(value, tmp, outlen + 4);
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)tmp;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0) {
            if (o + 1 >= outlen)
                break;
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + k >= outlen)
            break;
        if (k == 1)
            out[o++] = s[i] < 0x20 || s[i] == 0x7f ? ' ' : (char)s[i];
        else
            memcpy(out + o, s + i, k), o += k;
        i += k;
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    free(tmp);
}

int inbound_msg_summary(const char *msg, size_t len, char *message_id, size_t mid_len,
                        char *subject, size_t subject_len, char *from, size_t from_len)
{
    if (!message_id || !subject || !from || mid_len == 0 || subject_len == 0 || from_len == 0)
        return -1;
    message_id[0] = subject[0] = from[0] = '\0';
    bool got_mid = false, got_subject = false, got_from = false;
    size_t head_len, body_off;
    mail_split_message(msg, len, &head_len, &body_off);
    struct inbound_hdr_walk w;
    struct inbound_hdr_entity e;
    inbound_hdr_walk_init(&w, msg, head_len);
    while ((!got_mid || !got_subject || !got_from) && inbound_hdr_next(&w, &e)) {
        if (!e.name.len)
            continue;
        if (!got_mid && sv_eq_ci_cstr(e.name, "Message-ID")) {
            summary_value(e.value, message_id, mid_len);
            got_mid = true;
        } else if (!got_subject && sv_eq_ci_cstr(e.name, "Subject")) {
            summary_value(e.value, subject, subject_len);
            got_subject = true;
        } else if (!got_from && sv_eq_ci_cstr(e.name, "From")) {
            summary_value(e.value, from, from_len);
            got_from = true;
        }
    }
    return 0;
}
