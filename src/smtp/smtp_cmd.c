/* SMTP command-line parsing: verb, RFC 5321 §4.1.2 paths (with RFC 6531
 * UTF-8), ESMTP parameters of MAIL/RCPT, the EHLO argument. Walks a cursor
 * over (buf, len), never past len; keeps no state and decides no policy
 * (which sender or recipient is acceptable is the session's hooks' job).
 * See smtp_cmd.h. */
#include "smtp/smtp_cmd.h"

#include "util/utf8.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static const char *const err_text[SMTP_CMD_ERR__COUNT] = {
    [SMTP_CMD_OK] = "ok",
    [SMTP_CMD_ERR_EMPTY] = "empty command",
    [SMTP_CMD_ERR_NUL] = "NUL character in command",
    [SMTP_CMD_ERR_CTRL] = "control character in command",
    [SMTP_CMD_ERR_KEYWORD] = "missing FROM:/TO: keyword",
    [SMTP_CMD_ERR_PATH_SYNTAX] = "address must be enclosed in <>",
    [SMTP_CMD_ERR_PATH_TOO_LONG] = "path too long",
    [SMTP_CMD_ERR_ROUTE] = "bad source route",
    [SMTP_CMD_ERR_LOCAL_SYNTAX] = "bad local part",
    [SMTP_CMD_ERR_LOCAL_TOO_LONG] = "local part too long",
    [SMTP_CMD_ERR_NO_DOMAIN] = "domain name required",
    [SMTP_CMD_ERR_DOMAIN_SYNTAX] = "bad domain name",
    [SMTP_CMD_ERR_DOMAIN_TOO_LONG] = "domain name too long",
    [SMTP_CMD_ERR_ADDR_LITERAL] = "bad address literal",
    [SMTP_CMD_ERR_UTF8_INVALID] = "invalid UTF-8",
    [SMTP_CMD_ERR_UTF8_NOT_ALLOWED] = "non-ASCII address requires SMTPUTF8",
    [SMTP_CMD_ERR_NULL_RCPT] = "null recipient not allowed",
    [SMTP_CMD_ERR_PARAM_SYNTAX] = "bad parameter syntax",
    [SMTP_CMD_ERR_PARAM_UNKNOWN] = "unknown parameter",
    [SMTP_CMD_ERR_PARAM_UNADVERTISED] = "parameter of an extension not offered",
    [SMTP_CMD_ERR_PARAM_DUPLICATE] = "duplicate parameter",
    [SMTP_CMD_ERR_SIZE_VALUE] = "bad SIZE value",
    [SMTP_CMD_ERR_BODY_VALUE] = "bad BODY value (7BIT or 8BITMIME)",
    [SMTP_CMD_ERR_SMTPUTF8_VALUE] = "SMTPUTF8 takes no value",
    [SMTP_CMD_ERR_AUTH_VALUE] = "bad AUTH value",
    [SMTP_CMD_ERR_RET_VALUE] = "bad RET value",
    [SMTP_CMD_ERR_ENVID_VALUE] = "bad ENVID value",
    [SMTP_CMD_ERR_NOTIFY_VALUE] = "bad NOTIFY value",
    [SMTP_CMD_ERR_ORCPT_VALUE] = "bad ORCPT value",
    [SMTP_CMD_ERR_HELO_SYNTAX] = "hostname required",
};

const char *smtp_cmd_strerror(enum smtp_cmd_err err)
{
    if ((unsigned)err >= SMTP_CMD_ERR__COUNT || !err_text[err])
        return "error";
    return err_text[err];
}

/* ---- characters ---- */

static bool is_alpha(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
static bool is_hexupper(unsigned char c) { return is_digit(c) || (c >= 'A' && c <= 'F'); }

/* RFC 5322 atext */
static bool is_atext(unsigned char c)
{
    if (is_alnum(c))
        return true;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

bool smtp_utf8_valid(const char *buf, size_t len)
{
    return utf8_valid(buf, len);
}

/* ---- the verb ---- */

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    { "HELO", SMTP_VERB_HELO },     { "EHLO", SMTP_VERB_EHLO },
    { "MAIL", SMTP_VERB_MAIL },     { "RCPT", SMTP_VERB_RCPT },
    { "DATA", SMTP_VERB_DATA },     { "RSET", SMTP_VERB_RSET },
    { "NOOP", SMTP_VERB_NOOP },     { "QUIT", SMTP_VERB_QUIT },
    { "VRFY", SMTP_VERB_VRFY },     { "EXPN", SMTP_VERB_EXPN },
    { "HELP", SMTP_VERB_HELP },     { "STARTTLS", SMTP_VERB_STARTTLS },
    { "AUTH", SMTP_VERB_AUTH },     { "BDAT", SMTP_VERB_BDAT },
    { "SEND", SMTP_VERB_OBSOLETE }, { "SOML", SMTP_VERB_OBSOLETE },
    { "SAML", SMTP_VERB_OBSOLETE }, { "TURN", SMTP_VERB_OBSOLETE },
    { "ETRN", SMTP_VERB_OBSOLETE }, { "ATRN", SMTP_VERB_OBSOLETE },
    /* other protocols (Postfix's smtpd_forbidden_commands, plus POP3) */
    { "GET", SMTP_VERB_NON_SMTP },  { "POST", SMTP_VERB_NON_SMTP },
    { "HEAD", SMTP_VERB_NON_SMTP }, { "PUT", SMTP_VERB_NON_SMTP },
    { "DELETE", SMTP_VERB_NON_SMTP }, { "OPTIONS", SMTP_VERB_NON_SMTP },
    { "CONNECT", SMTP_VERB_NON_SMTP }, { "TRACE", SMTP_VERB_NON_SMTP },
    { "PATCH", SMTP_VERB_NON_SMTP }, { "USER", SMTP_VERB_NON_SMTP },
};

enum smtp_cmd_err smtp_cmd_split(const char *buf, size_t len, enum smtp_verb *verb,
                                 struct sv *arg)
{
    *verb = SMTP_VERB_UNKNOWN;
    *arg = sv_make(buf, 0);
    if (len == 0)
        return SMTP_CMD_ERR_EMPTY;
    if (memchr(buf, '\0', len))
        return SMTP_CMD_ERR_NUL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 || c == 0x7f)
            return SMTP_CMD_ERR_CTRL;
    }
    size_t v = 0;
    while (v < len && buf[v] != ' ')
        v++;
    size_t a = v;
    while (a < len && buf[a] == ' ')
        a++;
    size_t e = len;
    while (e > a && buf[e - 1] == ' ')
        e--;
    *arg = sv_make(buf + a, e - a);
    if (v == 0)
        return SMTP_CMD_ERR_EMPTY;   /* the line starts with a space */
    struct sv name = sv_make(buf, v);
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (sv_eq_ci_cstr(name, verbs[i].name)) {
            *verb = verbs[i].verb;
            break;
        }
    return SMTP_CMD_OK;
}

/* ---- paths ---- */

struct cur {
    const unsigned char *p;
    size_t len;
    size_t i;
};

static bool cur_peek(const struct cur *c, unsigned char *ch)
{
    if (c->i >= c->len)
        return false;
    *ch = c->p[c->i];
    return true;
}

static bool cur_eat(struct cur *c, unsigned char ch)
{
    if (c->i < c->len && c->p[c->i] == ch) {
        c->i++;
        return true;
    }
    return false;
}

/* One UTF-8 non-ASCII character at the cursor (lead byte >= 0x80). */
static enum smtp_cmd_err eat_utf8(struct cur *c, bool *utf8)
{
    size_t n = utf8_seq_len(c->p + c->i, c->len - c->i);
    if (n == 0)
        return SMTP_CMD_ERR_UTF8_INVALID;
    c->i += n;
    *utf8 = true;
    return SMTP_CMD_OK;
}

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
 * (RFC 6531: or a U-label). */
static enum smtp_cmd_err parse_domain(struct cur *c, bool *utf8)
{
    size_t start = c->i;
    for (;;) {
        size_t lstart = c->i;
        bool label_utf8 = false;
        unsigned char last = 0;
        unsigned char ch;
        while (cur_peek(c, &ch)) {
            if (ch >= 0x80) {
                enum smtp_cmd_err e = eat_utf8(c, utf8);
                if (e)
                    return e;
                label_utf8 = true;
                last = 'a';
            } else if (is_alnum(ch) || ch == '-') {
                if (ch == '-' && c->i == lstart)
                    return SMTP_CMD_ERR_DOMAIN_SYNTAX;
                c->i++;
                last = ch;
            } else {
                break;
            }
            if (c->i - start > SMTP_MAX_DOMAIN_LEN)
                return SMTP_CMD_ERR_DOMAIN_TOO_LONG;
        }
        if (c->i == lstart || last == '-')
            return SMTP_CMD_ERR_DOMAIN_SYNTAX;
        if (!label_utf8 && c->i - lstart > DNS_MAX_LABEL_LEN)
            return SMTP_CMD_ERR_DOMAIN_TOO_LONG;
        if (!cur_eat(c, '.'))
            break;
    }
    return SMTP_CMD_OK;
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General ) "]"; the cursor
 * is on '['. General-address-literals have no registered tag: refused. */
static enum smtp_cmd_err parse_addr_literal(struct cur *c)
{
    c->i++; /* '[' */
    size_t start = c->i;
    while (c->i < c->len && c->p[c->i] != ']') {
        unsigned char ch = c->p[c->i];
        if (ch < 0x21 || ch > 0x7e || ch == '[' || ch == '\\')
            return SMTP_CMD_ERR_ADDR_LITERAL;
        c->i++;
    }
    if (c->i >= c->len)
        return SMTP_CMD_ERR_ADDR_LITERAL;
    const unsigned char *lit = c->p + start;
    size_t n = c->i - start;
    c->i++; /* ']' */
    if (n > 5 && strncasecmp((const char *)lit, "IPv6:", 5) == 0) {
        char tmp[INET6_ADDRSTRLEN];
        unsigned char a6[16];
        if (n - 5 >= sizeof tmp)
            return SMTP_CMD_ERR_ADDR_LITERAL;
        for (size_t k = 5; k < n; k++)
            if (!(is_digit(lit[k]) || (lit[k] >= 'a' && lit[k] <= 'f') ||
                  (lit[k] >= 'A' && lit[k] <= 'F') || lit[k] == ':' || lit[k] == '.'))
                return SMTP_CMD_ERR_ADDR_LITERAL;
        memcpy(tmp, lit + 5, n - 5);
        tmp[n - 5] = '\0';
        return inet_pton(AF_INET6, tmp, a6) == 1 ? SMTP_CMD_OK : SMTP_CMD_ERR_ADDR_LITERAL;
    }
    /* IPv4-address-literal = Snum 3("." Snum), Snum = 1*3DIGIT (0-255) */
    size_t k = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (k >= n || lit[k] != '.')
                return SMTP_CMD_ERR_ADDR_LITERAL;
            k++;
        }
        unsigned v = 0;
        size_t d = 0;
        while (k < n && is_digit(lit[k]) && d < 3) {
            v = v * 10 + (unsigned)(lit[k] - '0');
            k++;
            d++;
        }
        if (d == 0 || v > 255 || (k < n && is_digit(lit[k])))
            return SMTP_CMD_ERR_ADDR_LITERAL;
    }
    return k == n ? SMTP_CMD_OK : SMTP_CMD_ERR_ADDR_LITERAL;
}

/* Local-part = Dot-string / Quoted-string */
static enum smtp_cmd_err parse_local(struct cur *c, bool *utf8, bool *quoted)
{
    unsigned char ch;
    *quoted = false;
    if (cur_eat(c, '"')) {
        *quoted = true;
        for (;;) {
            if (!cur_peek(c, &ch))
                return SMTP_CMD_ERR_LOCAL_SYNTAX;
            if (ch == '"') {
                c->i++;
                return SMTP_CMD_OK;
            }
            if (ch == '\\') {
                c->i++;
                if (!cur_peek(c, &ch) || ch < 32 || ch > 126)
                    return SMTP_CMD_ERR_LOCAL_SYNTAX;
                c->i++;
            } else if (ch >= 0x80) {
                enum smtp_cmd_err e = eat_utf8(c, utf8);
                if (e)
                    return e;
            } else if (ch >= 32 && ch <= 126) {
                c->i++;
            } else {
                return SMTP_CMD_ERR_LOCAL_SYNTAX;
            }
        }
    }
    for (;;) {
        size_t astart = c->i;
        while (cur_peek(c, &ch)) {
            if (ch >= 0x80) {
                enum smtp_cmd_err e = eat_utf8(c, utf8);
                if (e)
                    return e;
            } else if (is_atext(ch)) {
                c->i++;
            } else {
                break;
            }
        }
        if (c->i == astart)
            return SMTP_CMD_ERR_LOCAL_SYNTAX;
        if (!cur_eat(c, '.'))
            return SMTP_CMD_OK;
    }
}

/* Path = "<" [ A-d-l ":" ] Mailbox ">" (or "<>" / "<Postmaster>"); the
 * cursor ends after '>'. */
static enum smtp_cmd_err parse_path(struct cur *c, bool is_rcpt, struct smtp_path *out)
{
    memset(out, 0, sizeof *out);
    size_t open = c->i;
    if (!cur_eat(c, '<'))
        return SMTP_CMD_ERR_PATH_SYNTAX;
    if (cur_eat(c, '>')) {
        if (is_rcpt)
            return SMTP_CMD_ERR_NULL_RCPT;
        out->null_path = true;
        return SMTP_CMD_OK;
    }
    bool utf8 = false;
    if (cur_eat(c, '@')) {
        /* A-d-l: parsed, then ignored (RFC 5321 §4.1.1.3, Appendix C) */
        for (;;) {
            bool ignored = false;
            if (parse_domain(c, &ignored) != SMTP_CMD_OK)
                return SMTP_CMD_ERR_ROUTE;
            if (cur_eat(c, ':'))
                break;
            if (!cur_eat(c, ',') || !cur_eat(c, '@'))
                return SMTP_CMD_ERR_ROUTE;
        }
    }
    size_t mstart = c->i;
    bool quoted;
    enum smtp_cmd_err e = parse_local(c, &utf8, &quoted);
    if (e)
        return e;
    size_t local_len = c->i - mstart;
    if (local_len > SMTP_MAX_LOCALPART_LEN)
        return SMTP_CMD_ERR_LOCAL_TOO_LONG;
    unsigned char ch;
    if (is_rcpt && !quoted && c->i < c->len && c->p[c->i] == '>' &&
        local_len == 10 && strncasecmp((const char *)c->p + mstart, "Postmaster", 10) == 0) {
        c->i++;
        memcpy(out->addr, c->p + mstart, local_len);
        out->local_len = local_len;
        return SMTP_CMD_OK;
    }
    if (!cur_eat(c, '@')) {
        if (cur_peek(c, &ch) && ch == '>')
            return SMTP_CMD_ERR_NO_DOMAIN;
        return SMTP_CMD_ERR_LOCAL_SYNTAX;
    }
    if (!cur_peek(c, &ch) || ch == '>')
        return SMTP_CMD_ERR_NO_DOMAIN;
    if (ch == '[')
        e = parse_addr_literal(c);
    else
        e = parse_domain(c, &utf8);
    if (e)
        return e;
    size_t mend = c->i;
    if (!cur_eat(c, '>')) {
        /* "<a@b_c>", "<a@b@c>": junk in the domain; "<a@b" or "<a@b c>": no '>' */
        if (c->i < c->len && c->p[c->i] != ' ')
            return SMTP_CMD_ERR_DOMAIN_SYNTAX;
        return SMTP_CMD_ERR_PATH_SYNTAX;
    }
    if (c->i - open > SMTP_MAX_PATH_LEN)
        return SMTP_CMD_ERR_PATH_TOO_LONG;
    /* mend - mstart < path length <= SMTP_MAX_PATH_LEN: fits addr */
    memcpy(out->addr, c->p + mstart, mend - mstart);
    out->addr[mend - mstart] = '\0';
    out->local_len = local_len;
    out->utf8 = utf8;
    return SMTP_CMD_OK;
}

/* ---- parameters ---- */

/* xtext = *( xchar / "+" 2HEXDIGUPPER ), xchar = %d33-42 / %d44-60 / %d62-126 */
static bool xtext_valid(struct sv v)
{
    if (v.len == 0)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c == '+') {
            if (v.len - i < 3)
                return false;
            if (!is_hexupper((unsigned char)v.p[i + 1]) || !is_hexupper((unsigned char)v.p[i + 2]))
                return false;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return true;
}

enum param_id {
    P_SIZE, P_BODY, P_SMTPUTF8, P_AUTH, P_RET, P_ENVID, P_NOTIFY, P_ORCPT, P__COUNT
};

static const struct {
    const char *name;
    unsigned ext;
    bool rcpt;       /* a RCPT parameter (else MAIL) */
} params[P__COUNT] = {
    [P_SIZE] = { "SIZE", SMTP_EXT_SIZE, false },
    [P_BODY] = { "BODY", SMTP_EXT_8BITMIME, false },
    [P_SMTPUTF8] = { "SMTPUTF8", SMTP_EXT_SMTPUTF8, false },
    [P_AUTH] = { "AUTH", SMTP_EXT_AUTH, false },
    [P_RET] = { "RET", SMTP_EXT_DSN, false },
    [P_ENVID] = { "ENVID", SMTP_EXT_DSN, false },
    [P_NOTIFY] = { "NOTIFY", SMTP_EXT_DSN, true },
    [P_ORCPT] = { "ORCPT", SMTP_EXT_DSN, true },
};

#define ENVID_MAX_LEN 100   /* RFC 3461 §4.4 */
#define ORCPT_MAX_LEN 500   /* RFC 3461 §4.2 */

static enum smtp_cmd_err param_value(enum param_id id, bool has_value, struct sv v,
                                     struct smtp_mail_params *mp, struct smtp_rcpt_params *rp)
{
    switch (id) {
    case P_SIZE: {
        if (!has_value || v.len == 0 || v.len > 20)
            return SMTP_CMD_ERR_SIZE_VALUE;
        uint64_t n = 0;
        for (size_t i = 0; i < v.len; i++) {
            if (!is_digit((unsigned char)v.p[i]))
                return SMTP_CMD_ERR_SIZE_VALUE;
            unsigned d = (unsigned)(v.p[i] - '0');
            n = (n > (UINT64_MAX - d) / 10) ? UINT64_MAX : n * 10 + d;
        }
        mp->has_size = true;
        mp->size = n;
        return SMTP_CMD_OK;
    }
    case P_BODY:
        if (has_value && sv_eq_ci_cstr(v, "7BIT"))
            mp->body = SMTP_BODY_7BIT;
        else if (has_value && sv_eq_ci_cstr(v, "8BITMIME"))
            mp->body = SMTP_BODY_8BITMIME;
        else
            return SMTP_CMD_ERR_BODY_VALUE;
        return SMTP_CMD_OK;
    case P_SMTPUTF8:
        if (has_value)
            return SMTP_CMD_ERR_SMTPUTF8_VALUE;
        mp->smtputf8 = true;
        return SMTP_CMD_OK;
    case P_AUTH:
        /* RFC 4954 §5: AUTH=<> or AUTH=xtext mailbox; never trusted */
        if (!has_value || !(sv_eq_ci_cstr(v, "<>") || xtext_valid(v)))
            return SMTP_CMD_ERR_AUTH_VALUE;
        mp->has_auth = true;
        return SMTP_CMD_OK;
    case P_RET:
        if (has_value && sv_eq_ci_cstr(v, "FULL"))
            mp->ret = SMTP_RET_FULL;
        else if (has_value && sv_eq_ci_cstr(v, "HDRS"))
            mp->ret = SMTP_RET_HDRS;
        else
            return SMTP_CMD_ERR_RET_VALUE;
        return SMTP_CMD_OK;
    case P_ENVID:
        if (!has_value || v.len > ENVID_MAX_LEN || !xtext_valid(v))
            return SMTP_CMD_ERR_ENVID_VALUE;
        mp->has_envid = true;
        return SMTP_CMD_OK;
    case P_NOTIFY: {
        if (!has_value)
            return SMTP_CMD_ERR_NOTIFY_VALUE;
        unsigned flags = 0;
        size_t i = 0;
        while (i <= v.len) {
            size_t j = i;
            while (j < v.len && v.p[j] != ',')
                j++;
            struct sv w = sv_make(v.p + i, j - i);
            unsigned f;
            if (sv_eq_ci_cstr(w, "NEVER"))
                f = SMTP_NOTIFY_NEVER;
            else if (sv_eq_ci_cstr(w, "SUCCESS"))
                f = SMTP_NOTIFY_SUCCESS;
            else if (sv_eq_ci_cstr(w, "FAILURE"))
                f = SMTP_NOTIFY_FAILURE;
            else if (sv_eq_ci_cstr(w, "DELAY"))
                f = SMTP_NOTIFY_DELAY;
            else
                return SMTP_CMD_ERR_NOTIFY_VALUE;
            if (flags & f)
                return SMTP_CMD_ERR_NOTIFY_VALUE;
            flags |= f;
            i = j + 1;
        }
        /* NEVER stands alone (RFC 3461 §4.1) */
        if ((flags & SMTP_NOTIFY_NEVER) && flags != SMTP_NOTIFY_NEVER)
            return SMTP_CMD_ERR_NOTIFY_VALUE;
        rp->notify = flags;
        return SMTP_CMD_OK;
    }
    case P_ORCPT: {
        /* addr-type ";" xtext (RFC 3461 §4.2; utf-8-addr-xtext of RFC 6533
         * is xtext too, with \x{...} escapes inside) */
        if (!has_value || v.len > ORCPT_MAX_LEN)
            return SMTP_CMD_ERR_ORCPT_VALUE;
        size_t semi = sv_find(v, ';');
        if (semi == 0 || semi >= v.len)
            return SMTP_CMD_ERR_ORCPT_VALUE;
        for (size_t i = 0; i < semi; i++)
            if (!is_atext((unsigned char)v.p[i]))
                return SMTP_CMD_ERR_ORCPT_VALUE;
        if (!xtext_valid(sv_sub(v, semi + 1, v.len)))
            return SMTP_CMD_ERR_ORCPT_VALUE;
        rp->has_orcpt = true;
        return SMTP_CMD_OK;
    }
    case P__COUNT:
        break;
    }
    return SMTP_CMD_ERR_PARAM_UNKNOWN;
}

/* Mail-parameters = esmtp-param *(SP esmtp-param) after the path. */
static enum smtp_cmd_err parse_params(struct cur *c, bool is_rcpt, unsigned ext,
                                      struct smtp_mail_params *mp, struct smtp_rcpt_params *rp)
{
    unsigned seen = 0;
    for (;;) {
        /* the path or previous parameter must be followed by SP or end */
        if (c->i >= c->len)
            return SMTP_CMD_OK;
        if (c->p[c->i] != ' ')
            return SMTP_CMD_ERR_PATH_SYNTAX;
        while (c->i < c->len && c->p[c->i] == ' ')
            c->i++;
        if (c->i >= c->len)
            return SMTP_CMD_OK;
        size_t start = c->i;
        while (c->i < c->len && c->p[c->i] != ' ')
            c->i++;
        struct sv tok = sv_make((const char *)c->p + start, c->i - start);
        size_t eq = sv_find(tok, '=');
        struct sv key = sv_sub(tok, 0, eq);
        bool has_value = eq < tok.len;
        struct sv val = has_value ? sv_sub(tok, eq + 1, tok.len) : sv_make(tok.p, 0);
        /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
        if (key.len == 0 || !is_alnum((unsigned char)key.p[0]))
            return SMTP_CMD_ERR_PARAM_SYNTAX;
        for (size_t i = 1; i < key.len; i++)
            if (!is_alnum((unsigned char)key.p[i]) && key.p[i] != '-')
                return SMTP_CMD_ERR_PARAM_SYNTAX;
        /* esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii) */
        if (has_value) {
            if (val.len == 0)
                return SMTP_CMD_ERR_PARAM_SYNTAX;
            for (size_t i = 0; i < val.len; i++) {
                unsigned char ch = (unsigned char)val.p[i];
                if (ch == '=' || ch < 33 || ch == 127)
                    return SMTP_CMD_ERR_PARAM_SYNTAX;
            }
            if (!smtp_utf8_valid(val.p, val.len))
                return SMTP_CMD_ERR_UTF8_INVALID;
        }
        int id = -1;
        for (int k = 0; k < P__COUNT; k++)
            if (params[k].rcpt == is_rcpt && sv_eq_ci_cstr(key, params[k].name)) {
                id = k;
                break;
            }
        if (id < 0)
            return SMTP_CMD_ERR_PARAM_UNKNOWN;
        if (!(ext & params[id].ext))
            return SMTP_CMD_ERR_PARAM_UNADVERTISED;
        if (seen & (1u << id))
            return SMTP_CMD_ERR_PARAM_DUPLICATE;
        seen |= 1u << id;
        enum smtp_cmd_err e = param_value((enum param_id)id, has_value, val, mp, rp);
        if (e)
            return e;
    }
}

static enum smtp_cmd_err check_line(const char *buf, size_t len)
{
    if (memchr(buf, '\0', len))
        return SMTP_CMD_ERR_NUL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 || c == 0x7f)
            return SMTP_CMD_ERR_CTRL;
    }
    return SMTP_CMD_OK;
}

/* "FROM:" / "TO:" then optional spaces (tolerated, as Postfix does). */
static enum smtp_cmd_err eat_keyword(struct cur *c, const char *kw)
{
    size_t n = strlen(kw);
    if (c->len < n || strncasecmp((const char *)c->p, kw, n) != 0)
        return SMTP_CMD_ERR_KEYWORD;
    c->i = n;
    while (c->i < c->len && c->p[c->i] == ' ')
        c->i++;
    return SMTP_CMD_OK;
}

enum smtp_cmd_err smtp_cmd_parse_mail(const char *buf, size_t len, unsigned ext,
                                      struct smtp_path *path, struct smtp_mail_params *mp)
{
    memset(path, 0, sizeof *path);
    memset(mp, 0, sizeof *mp);
    enum smtp_cmd_err e = check_line(buf, len);
    if (e)
        return e;
    struct cur c = { (const unsigned char *)buf, len, 0 };
    if ((e = eat_keyword(&c, "FROM:")) != SMTP_CMD_OK)
        return e;
    if ((e = parse_path(&c, false, path)) != SMTP_CMD_OK)
        return e;
    struct smtp_rcpt_params unused;
    memset(&unused, 0, sizeof unused);
    if ((e = parse_params(&c, false, ext, mp, &unused)) != SMTP_CMD_OK)
        return e;
    if (path->utf8 && !mp->smtputf8)
        return SMTP_CMD_ERR_UTF8_NOT_ALLOWED;
    return SMTP_CMD_OK;
}

enum smtp_cmd_err smtp_cmd_parse_rcpt(const char *buf, size_t len, unsigned ext, bool smtputf8,
                                      struct smtp_path *path, struct smtp_rcpt_params *rp)
{
    memset(path, 0, sizeof *path);
    memset(rp, 0, sizeof *rp);
    enum smtp_cmd_err e = check_line(buf, len);
    if (e)
        return e;
    struct cur c = { (const unsigned char *)buf, len, 0 };
    if ((e = eat_keyword(&c, "TO:")) != SMTP_CMD_OK)
        return e;
    if ((e = parse_path(&c, true, path)) != SMTP_CMD_OK)
        return e;
    struct smtp_mail_params unused;
    memset(&unused, 0, sizeof unused);
    if ((e = parse_params(&c, true, ext, &unused, rp)) != SMTP_CMD_OK)
        return e;
    if (path->utf8 && !smtputf8)
        return SMTP_CMD_ERR_UTF8_NOT_ALLOWED;
    return SMTP_CMD_OK;
}

enum smtp_cmd_err smtp_cmd_parse_helo(const char *buf, size_t len, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    enum smtp_cmd_err e = check_line(buf, len);
    if (e)
        return e;
    size_t i = 0;
    while (i < len && buf[i] == ' ')
        i++;
    size_t start = i;
    while (i < len && buf[i] != ' ') {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x21 || c > 0x7e)
            return SMTP_CMD_ERR_HELO_SYNTAX;
        i++;
    }
    size_t n = i - start;
    if (n == 0 || n > SMTP_MAX_DOMAIN_LEN || n + 1 > outlen)
        return SMTP_CMD_ERR_HELO_SYNTAX;
    memcpy(out, buf + start, n);
    out[n] = '\0';
    return SMTP_CMD_OK;
}
