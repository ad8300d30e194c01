/* RFC 5322 address-list parser; see mail_address.h.
 *
 * A cursor walks (value, len) once. CFWS (folding white space and nested
 * comments) is skipped everywhere it may appear. A mailbox is either
 * "[display-name] <addr-spec>" or a bare addr-spec; a group is
 * "display-name: [mailbox-list] ;". Obsolete forms accepted: empty list
 * elements (",,"), a route in an angle-addr ("<@a,@b:user@d>"), CFWS
 * around the dots of a dot-atom. */
#include "mail/mail_address.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct cursor {
    const char *p;
    size_t len, pos;
    char *err;
    size_t errlen;
    bool failed;
};

static int fail(struct cursor *c, const char *why)
{
    if (!c->failed)
        snprintf(c->err, c->errlen, "%s at offset %zu", why, c->pos);
    c->failed = true;
    return -1;
}

static bool at_end(const struct cursor *c) { return c->pos >= c->len; }
static char peek(const struct cursor *c) { return at_end(c) ? '\0' : c->p[c->pos]; }

/* atext of RFC 5322 §3.2.3, plus 8-bit octets (RFC 6532 UTF-8). */
static bool is_atext(unsigned char ch)
{
    return isalnum(ch) || ch >= 0x80 || (ch && strchr("!#$%&'*+-/=?^_`{|}~", ch));
}

/* Skips white space, CRLFs and comments (nested, with quoted-pairs). */
static int skip_cfws(struct cursor *c)
{
    while (!at_end(c)) {
        char ch = peek(c);
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            c->pos++;
        } else if (ch == '(') {
            int depth = 0;
            do {
                if (at_end(c))
                    return fail(c, "unterminated comment");
                ch = c->p[c->pos++];
                if (ch == '\\' && !at_end(c))
                    c->pos++;
                else if (ch == '(')
                    depth++;
                else if (ch == ')')
                    depth--;
                else if (ch == '\0')
                    return fail(c, "NUL in comment");
            } while (depth > 0);
        } else {
            break;
        }
    }
    return 0;
}

/* Appends one octet to out (capacity cap) or fails. */
static int put(struct cursor *c, char *out, size_t cap, size_t *n, char ch)
{
    if (*n + 1 >= cap)
        return fail(c, "address part too long");
    out[(*n)++] = ch;
    out[*n] = '\0';
    return 0;
}

/* A quoted-string; its content (quoted-pairs resolved) appended to out. */
static int quoted_string(struct cursor *c, char *out, size_t cap, size_t *n)
{
    c->pos++; /* the opening quote */
    while (!at_end(c)) {
        char ch = c->p[c->pos++];
        if (ch == '"')
            return 0;
        if (ch == '\\') {
            if (at_end(c))
                break;
            ch = c->p[c->pos++];
        }
        if (ch == '\0')
            return fail(c, "NUL in quoted string");
        if (ch == '\r' || ch == '\n')
            continue; /* folding inside quotes */
        if (out && put(c, out, cap, n, ch) != 0)
            return -1;
    }
    return fail(c, "unterminated quoted string");
}

/* A dot-atom or obs-local-part: words separated by dots, CFWS allowed
 * around the dots (obsolete). Appended to out without the CFWS. */
static int dotted_words(struct cursor *c, char *out, size_t cap, size_t *n, bool allow_quoted)
{
    for (bool after_dot = false;; after_dot = true) {
        if (skip_cfws(c) != 0)
            return -1;
        /* a domain may end in a dot ("example.com."): the caller strips it */
        if (after_dot && !allow_quoted && !is_atext((unsigned char)peek(c)))
            return 0;
        if (allow_quoted && peek(c) == '"') {
            if (quoted_string(c, out, cap, n) != 0)
                return -1;
        } else {
            size_t start = c->pos;
            while (!at_end(c) && is_atext((unsigned char)peek(c)))
                if (put(c, out, cap, n, c->p[c->pos++]) != 0)
                    return -1;
            if (c->pos == start)
                return fail(c, "expected a word");
        }
        if (skip_cfws(c) != 0)
            return -1;
        if (peek(c) != '.')
            return 0;
        c->pos++;
        if (put(c, out, cap, n, '.') != 0)
            return -1;
    }
}

/* domain = dot-atom / domain-literal */
static int domain(struct cursor *c, struct mail_mailbox *box)
{
    size_t n = 0;
    if (skip_cfws(c) != 0)
        return -1;
    if (peek(c) == '[') {
        while (!at_end(c) && peek(c) != ']')
            if (put(c, box->domain, sizeof box->domain, &n, c->p[c->pos++]) != 0)
                return -1;
        if (at_end(c))
            return fail(c, "unterminated domain literal");
        c->pos++;
        return put(c, box->domain, sizeof box->domain, &n, ']');
    }
    if (dotted_words(c, box->domain, sizeof box->domain, &n, false) != 0)
        return -1;
    if (n && box->domain[n - 1] == '.')
        box->domain[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        box->domain[i] = (char)tolower((unsigned char)box->domain[i]);
    return 0;
}

static int addr_spec(struct cursor *c, struct mail_mailbox *box)
{
    size_t n = 0;
    box->local[0] = box->domain[0] = '\0';
    if (dotted_words(c, box->local, sizeof box->local, &n, true) != 0)
        return -1;
    if (peek(c) != '@')
        return fail(c, "expected '@'");
    c->pos++;
    return domain(c, box);
}

static void store(struct mail_address_list *out, const struct mail_mailbox *box)
{
    if (out->count < MAIL_MAX_MAILBOXES)
        out->box[out->count] = *box;
    out->count++;
}

/* angle-addr after '<': [obs-route] addr-spec '>' */
static int angle_addr(struct cursor *c, struct mail_address_list *out)
{
    c->pos++;
    if (skip_cfws(c) != 0)
        return -1;
    if (peek(c) == '@') { /* obs-route: skip up to ':' */
        const char *colon = memchr(c->p + c->pos, ':', c->len - c->pos);
        if (!colon)
            return fail(c, "bad route in angle address");
        c->pos = (size_t)(colon - c->p) + 1;
    }
    struct mail_mailbox box;
    if (addr_spec(c, &box) != 0 || skip_cfws(c) != 0)
        return -1;
    if (peek(c) != '>')
        return fail(c, "expected '>'");
    c->pos++;
    store(out, &box);
    return 0;
}

/* One mailbox or group. A phrase (display name) is words and quoted
 * strings; what follows it decides: '<' angle-addr, ':' group, else it was
 * the local-part of a bare addr-spec (re-parsed from its start). */
static int address(struct cursor *c, struct mail_address_list *out, bool in_group)
{
    size_t start = c->pos;
    bool words = false;
    for (;;) {
        if (skip_cfws(c) != 0)
            return -1;
        char ch = peek(c);
        if (ch == '"') {
            if (quoted_string(c, NULL, 0, NULL) != 0)
                return -1;
            words = true;
        } else if (is_atext((unsigned char)ch) || ch == '.') {
            while (!at_end(c) && (is_atext((unsigned char)peek(c)) || peek(c) == '.'))
                c->pos++;
            words = true;
        } else {
            break;
        }
    }
    char ch = peek(c);
    if (ch == '<')
        return angle_addr(c, out);
    if (ch == ':' && words && !in_group) {
        c->pos++;
        for (;;) {
            if (skip_cfws(c) != 0)
                return -1;
            if (peek(c) == ';') {
                c->pos++;
                return 0;
            }
            if (peek(c) == ',') {
                c->pos++;
                continue;
            }
            if (at_end(c))
                return fail(c, "unterminated group");
            if (address(c, out, true) != 0)
                return -1;
        }
    }
    c->pos = start;
    struct mail_mailbox box;
    if (addr_spec(c, &box) != 0)
        return -1;
    store(out, &box);
    return 0;
}

int mail_address_list_parse(const char *value, size_t len, struct mail_address_list *out,
                            char *err, size_t errlen)
{
    struct cursor c = { value, len, 0, err, errlen, false };
    out->count = 0;
    if (err && errlen)
        err[0] = '\0';
    if (memchr(value, '\0', len))
        return fail(&c, "NUL in header value");
    for (;;) {
        if (skip_cfws(&c) != 0)
            return -1;
        if (at_end(&c))
            break;
        if (peek(&c) == ',') { /* obs-addr-list: empty elements */
            c.pos++;
            continue;
        }
        if (address(&c, out, false) != 0)
            return -1;
        if (skip_cfws(&c) != 0)
            return -1;
        if (!at_end(&c) && peek(&c) != ',')
            return fail(&c, "expected ',' between addresses");
    }
    return 0;
}
