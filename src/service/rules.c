/* Receiving rules: the JSON rule format of rules.h parsed with jansson,
 * checked strictly (unknown keys, types, ranges, each error naming its
 * path), compiled (regexes, networks) and re-serialised canonically; their
 * evaluation against one message's envelope, header section and
 * authentication verdict; and the header edits they ask for.
 *
 * Not here: storing rules (store/), the HTTP routes (api), firing webhooks
 * or replying to the client (the MX acts on the outcome). Header sections
 * are walked with inbound_msg.h's walker, which stores nothing.
 *
 * Semantics beyond rules.h's comment:
 * - a rule without conditions always matches;
 * - recipient and header conditions hold when any recipient / any field of
 *   that name holds; the not_* ops hold when none does (an absent header
 *   satisfies not_equals and not_contains);
 * - header values are unfolded and trimmed first; at most MAIL_MAX_HEADERS
 *   fields are looked at; a regex sees at most RULES_REGEX_SUBJECT_MAX
 *   octets of a value;
 * - a rule may hold at most one of store, drop and reject; when a matching
 *   rule holds drop or reject, its other actions are still collected and
 *   the walk ends after it;
 * - webhooks with the same URL are fired once (include_raw if any asks);
 * - rule_apply_header_edits resets out; edits apply in order (a strip also
 *   removes fields added before it); continuation lines at the very top of
 *   the message are dropped when a field is added above them. */
#include "service/rules.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mail_header.h"
#include "service/inbound_msg.h"
#include "util/limits.h"

#define RULES_MAX_NAME          128     /* a rule's name, octets */
#define RULES_MAX_VALUE         1024    /* a condition's value */
#define RULES_MAX_REGEX         512     /* a regex pattern */
#define RULES_MAX_REGEX_COST    2000    /* pattern size with bounds multiplied out ("a{9}" = 9) */
#define RULES_REGEX_SUBJECT_MAX 65536   /* octets of one value a regex looks at */
#define RULES_MAX_REJECT_TEXT   200     /* reject message */
#define RULES_MAX_URL           1023    /* fits rule_webhook.url */
#define RULES_MAX_HEADER_NAME   127     /* fits rule_header_edit.name */
#define RULES_MAX_HEADER_VALUE  1023    /* fits rule_header_edit.value */
#define RULES_DEFAULT_REJECT_TEXT "Message rejected by recipient's rules"

enum field { F_RECIPIENT, F_SENDER, F_CLIENT_IP, F_HELO, F_HEADER, F_SPF, F_DKIM, F_DMARC, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "recipient", "sender", "client_ip", "helo", "header", "spf", "dkim", "dmarc",
};

enum op { OP_EQUALS, OP_NOT_EQUALS, OP_CONTAINS, OP_NOT_CONTAINS, OP_REGEX, OP_EXISTS,
          OP_NOT_EXISTS, OP_CIDR, OP_COUNT };
static const char *const op_names[OP_COUNT] = {
    "equals", "not_equals", "contains", "not_contains", "regex", "exists", "not_exists", "cidr",
};

/* which ops each field takes */
#define OPS_STRING ((1u << OP_EQUALS) | (1u << OP_NOT_EQUALS) | (1u << OP_CONTAINS) | \
                    (1u << OP_NOT_CONTAINS) | (1u << OP_REGEX))
static const unsigned field_ops[F_COUNT] = {
    [F_RECIPIENT] = OPS_STRING,
    [F_SENDER] = OPS_STRING,
    [F_CLIENT_IP] = OPS_STRING | (1u << OP_CIDR),
    [F_HELO] = OPS_STRING,
    [F_HEADER] = OPS_STRING | (1u << OP_EXISTS) | (1u << OP_NOT_EXISTS),
    [F_SPF] = (1u << OP_EQUALS) | (1u << OP_NOT_EQUALS) | (1u << OP_REGEX),
    [F_DKIM] = (1u << OP_EQUALS) | (1u << OP_NOT_EQUALS) | (1u << OP_REGEX),
    [F_DMARC] = (1u << OP_EQUALS) | (1u << OP_NOT_EQUALS) | (1u << OP_REGEX),
};

enum atype { A_STORE, A_DROP, A_REJECT, A_WEBHOOK, A_ADD_HEADER, A_STRIP_HEADER, A_COUNT };
static const char *const action_names[A_COUNT] = {
    "store", "drop", "reject", "webhook", "add_header", "strip_header",
};

struct cond {
    enum field field;
    enum op op;
    char *value;                /* NULL for exists / not_exists */
    char *header;               /* field "header" only */
    bool has_re;
    regex_t re;
    struct spf_ip ip;           /* cidr network, or client_ip equals */
    unsigned prefix;
};

struct action {
    enum atype type;
    int code;
    char enhanced[16];
    char *text;                 /* reject message; add_header value */
    char *url;
    bool include_raw;
    char *header;
};

struct rule {
    char *name;
    bool match_any, stop;
    size_t ncond, nact;
    struct cond *cond;
    struct action *act;
};

struct rule_set {
    struct rule **rules;
    size_t n, cap;
};

/* ---- parsing ---- */

struct pctx {
    char *err;
    size_t errlen;
    bool failed;
};

__attribute__((format(printf, 3, 4)))
static void fail(struct pctx *c, const char *path, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    if (!c->err || c->errlen == 0)
        return;
    int n = snprintf(c->err, c->errlen, "%s: ", path);
    if (n < 0 || (size_t)n >= c->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A key or value quoted into an error: printable ASCII kept, the rest '?',
 * at most 48 octets. */
static const char *shown(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *s && n + 4 < outlen && n < 48; s++)
        out[n++] = (*s >= 0x20 && *s < 0x7f && *s != '"') ? *s : '?';
    if (*s && n + 4 < outlen) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static int lookup(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static void subpath(char *out, size_t outlen, const char *base, const char *key)
{
    snprintf(out, outlen, "%s%s%s", base, base[0] ? "." : "", key);
}

/* Rejects keys of obj that are not in allowed (NULL-terminated). */
static bool check_keys(struct pctx *c, const char *base, json_t *obj, const char *const *allowed,
                       const char *type)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char path[160], k[64];
            subpath(path, sizeof path, base, shown(key, k, sizeof k));
            if (type)
                fail(c, path, "unknown key for type \"%s\"", type);
            else
                fail(c, path, "unknown key");
            return false;
        }
    }
    return true;
}

/* A string member: NULL with an error when wrong, NULL without one when
 * absent and optional. */
static const char *get_string(struct pctx *c, const char *base, json_t *obj, const char *key,
                              bool required, size_t maxlen)
{
    char path[160];
    subpath(path, sizeof path, base, key);
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            fail(c, path, "required");
        return NULL;
    }
    if (!json_is_string(v)) {
        fail(c, path, "must be a string");
        return NULL;
    }
    if (json_string_length(v) > maxlen) {
        fail(c, path, "too long (at most %zu octets)", maxlen);
        return NULL;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        fail(c, path, "contains a NUL");
        return NULL;
    }
    return s;
}

static bool has_controls(const char *s, bool tab_ok)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch < 0x20 && !(tab_ok && ch == '\t')) || ch == 0x7f)
            return true;
    }
    return false;
}

static bool header_name_ok(const char *s)
{
    return s[0] && strlen(s) <= RULES_MAX_HEADER_NAME && mail_field_name_valid(sv_cstr(s));
}

/* Walks an ERE and sums the size glibc's compiler expands it to, bounds
 * multiplied out (nested ones too): "(a{100}){100}" would be 10,000 nodes,
 * and "X+" is compiled as "XX*", so each + doubles X. A repetition
 * directly after another ("a++", "a*{2}": undefined in POSIX ERE) is
 * refused: glibc duplicates the tree for each, which the fuzzer turned
 * into gigabytes. Back-references (a glibc extension to ERE) are refused:
 * matching with them is exponential. Syntax errors are left to regcomp. */
static int regex_check(const char *p, const char **why)
{
    enum { DEPTH = 64 };
    unsigned long total[DEPTH] = { 0 }, last[DEPTH] = { 0 };
    const unsigned long cap = RULES_MAX_REGEX_COST + 1;
    int d = 0;
    size_t n = strlen(p);
    bool after_dup = false;   /* the previous token was a repetition */
    for (size_t i = 0; i < n;) {
        char ch = p[i];
        unsigned long atom = 1;
        bool is_dup = ch == '*' || ch == '+' || ch == '?' || (ch == '{' && last[d] > 0);
        if (is_dup && after_dup) {
            *why = "a repetition directly after another (like \"a++\") is not supported";
            return -1;
        }
        after_dup = false;
        if (ch == '\\') {
            if (i + 1 < n && p[i + 1] >= '1' && p[i + 1] <= '9') {
                *why = "back-references are not supported";
                return -1;
            }
            i += 2;
        } else if (ch == '[') {
            size_t j = i + 1;
            if (j < n && p[j] == '^')
                j++;
            if (j < n && p[j] == ']')
                j++;
            while (j < n && p[j] != ']') {
                if (p[j] == '[' && j + 1 < n && strchr(":.=", p[j + 1])) {
                    const char *end = NULL;
                    for (size_t k = j + 2; k + 1 < n && !end; k++)
                        if (p[k] == p[j + 1] && p[k + 1] == ']')
                            end = p + k;
                    j = end ? (size_t)(end - p) + 2 : n;
                } else {
                    j++;
                }
            }
            i = j + 1;
        } else if (ch == '(') {
            if (++d >= DEPTH) {
                *why = "nested too deeply";
                return -1;
            }
            total[d] = last[d] = 0;
            i++;
            continue;
        } else if (ch == ')' && d > 0) {
            atom = total[d] + 2 < cap ? total[d] + 2 : cap;
            d--;
            i++;
        } else if (ch == '{' && last[d] > 0) {
            unsigned long m = 0, mx;
            size_t j = i + 1;
            bool ok = j < n && p[j] >= '0' && p[j] <= '9';
            while (j < n && p[j] >= '0' && p[j] <= '9') {
                m = m < cap ? m * 10 + (unsigned long)(p[j] - '0') : cap;
                j++;
            }
            mx = m;
            if (ok && j < n && p[j] == ',') {
                unsigned long hi = 0;
                bool has_hi = false;
                for (j++; j < n && p[j] >= '0' && p[j] <= '9'; j++) {
                    hi = hi < cap ? hi * 10 + (unsigned long)(p[j] - '0') : cap;
                    has_hi = true;
                }
                mx = has_hi ? hi : m + 1;   /* {m,} costs about m + 1 */
            }
            if (ok && j < n && p[j] == '}') {
                unsigned long b = m > mx ? m : mx;
                b = b ? b : 1;
                unsigned long grown = last[d] > cap / b ? cap : last[d] * b;
                total[d] = total[d] - last[d] + grown;
                if (total[d] > cap)
                    total[d] = cap;
                last[d] = grown;
                if (total[d] >= cap) {
                    *why = "too complex (repetition bounds multiply past the limit)";
                    return -1;
                }
                after_dup = true;
                i = j + 1;
                continue;
            }
            i++;   /* not a bound: a literal '{' */
        } else if (ch == '*' || ch == '+' || ch == '?' || ch == '|') {
            unsigned long add = 1;
            if (ch == '+') {   /* X+ is XX*: X once more */
                add += last[d];
                last[d] = last[d] * 2 < cap ? last[d] * 2 : cap;
            }
            total[d] = total[d] + add < cap ? total[d] + add : cap;
            if (ch == '|')
                last[d] = 0;
            else
                after_dup = true;
            if (total[d] >= cap) {
                *why = "too complex";
                return -1;
            }
            i++;
            continue;
        } else {
            i++;
        }
        total[d] = total[d] + atom < cap ? total[d] + atom : cap;
        last[d] = atom;
        if (total[d] >= cap) {
            *why = "too complex";
            return -1;
        }
    }
    unsigned long sum = 0;
    for (int k = 0; k <= d; k++)
        sum += total[k];
    if (sum >= cap) {
        *why = "too complex";
        return -1;
    }
    return 0;
}

/* "192.0.2.0/24", "2001:db8::/32" or a bare address (one host). */
static int parse_network(const char *s, struct spf_ip *ip, unsigned *prefix, char *why,
                         size_t whylen)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof addr) {
        snprintf(why, whylen, "not an IP network (like 192.0.2.0/24 or 2001:db8::/32)");
        return -1;
    }
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (spf_ip_parse(addr, ip) != 0) {
        snprintf(why, whylen, "not an IP network (like 192.0.2.0/24 or 2001:db8::/32)");
        return -1;
    }
    bool written_v6 = strchr(addr, ':') != NULL;
    unsigned max = written_v6 ? 128 : 32;
    unsigned long pl = max;
    if (slash && !sv_to_uint(sv_cstr(slash + 1), max, &pl)) {
        snprintf(why, whylen, "prefix length must be 0 to %u", max);
        return -1;
    }
    if (written_v6 && ip->family == AF_INET) {  /* ::ffff:192.0.2.0/120 */
        if (pl < 96) {
            snprintf(why, whylen, "an IPv4-mapped network needs a prefix of at least 96");
            return -1;
        }
        pl -= 96;
    }
    size_t bytes = ip->family == AF_INET ? 4 : 16;
    for (size_t b = 0; b < bytes; b++) {
        unsigned keep = pl >= (b + 1) * 8 ? 8 : pl > b * 8 ? (unsigned)(pl - b * 8) : 0;
        uint8_t mask = keep ? (uint8_t)(0xff << (8 - keep)) : 0;
        if (ip->addr[b] & (uint8_t)~mask) {
            snprintf(why, whylen, "address has bits set past the /%lu prefix", pl);
            return -1;
        }
    }
    *prefix = (unsigned)pl;
    return 0;
}

/* The result words a verdict field can take. */
static bool verdict_word_ok(enum field f, const char *w)
{
    if (f == F_SPF) {
        for (int r = SPF_NONE; r <= SPF_PERMERROR; r++)
            if (strcmp(w, spf_result_name((enum spf_result)r)) == 0)
                return true;
    } else if (f == F_DKIM) {
        if (strcmp(w, "none") == 0)
            return true;
        for (int r = DKIM_PASS; r <= DKIM_PERMERROR; r++)
            if (strcmp(w, dkim_result_name((enum dkim_result)r)) == 0)
                return true;
    } else if (f == F_DMARC) {
        for (int r = DMARC_NONE; r <= DMARC_PERMERROR; r++)
            if (strcmp(w, dmarc_result_name((enum dmarc_result)r)) == 0)
                return true;
    }
    return false;
}

static const char *verdict_words(enum field f)
{
    return f == F_SPF ? "pass, fail, softfail, neutral, none, temperror, permerror"
         : f == F_DKIM ? "pass, fail, neutral, policy, temperror, permerror, none"
                       : "pass, fail, none, temperror, permerror";
}

static void cond_free(struct cond *c)
{
    if (c->has_re)
        regfree(&c->re);
    free(c->value);
    free(c->header);
}

static json_t *parse_condition(struct pctx *c, json_t *obj, size_t idx, struct cond *out)
{
    char base[48], path[96], tmp[64];
    snprintf(base, sizeof base, "conditions[%zu]", idx);
    if (!json_is_object(obj)) {
        fail(c, base, "must be an object");
        return NULL;
    }
    static const char *const keys[] = { "field", "op", "value", "header", NULL };
    if (!check_keys(c, base, obj, keys, NULL))
        return NULL;
    const char *fs = get_string(c, base, obj, "field", true, 32);
    if (!fs)
        return NULL;
    int f = lookup(fs, field_names, F_COUNT);
    if (f < 0) {
        subpath(path, sizeof path, base, "field");
        fail(c, path, "unknown field \"%s\"", shown(fs, tmp, sizeof tmp));
        return NULL;
    }
    const char *os = get_string(c, base, obj, "op", true, 32);
    if (!os)
        return NULL;
    int op = lookup(os, op_names, OP_COUNT);
    subpath(path, sizeof path, base, "op");
    if (op < 0) {
        fail(c, path, "unknown op \"%s\"", shown(os, tmp, sizeof tmp));
        return NULL;
    }
    if (!(field_ops[f] & (1u << op))) {
        if (op == OP_EXISTS || op == OP_NOT_EXISTS)
            fail(c, path, "\"%s\" needs field \"header\"", op_names[op]);
        else if (op == OP_CIDR)
            fail(c, path, "\"cidr\" is for field \"client_ip\"");
        else
            fail(c, path, "\"%s\" does not apply to field \"%s\"", op_names[op], field_names[f]);
        return NULL;
    }
    out->field = (enum field)f;
    out->op = (enum op)op;

    json_t *canon = json_object();
    json_object_set_new(canon, "field", json_string(field_names[f]));
    json_object_set_new(canon, "op", json_string(op_names[op]));

    subpath(path, sizeof path, base, "header");
    if (f == F_HEADER) {
        const char *h = get_string(c, base, obj, "header", true, RULES_MAX_HEADER_NAME);
        if (!h)
            goto bad;
        if (!header_name_ok(h)) {
            fail(c, path, "not a header field name (printable ASCII but ':')");
            goto bad;
        }
        out->header = strdup(h);
        json_object_set_new(canon, "header", json_string(h));
    } else if (json_object_get(obj, "header")) {
        fail(c, path, "only for field \"header\"");
        goto bad;
    }

    subpath(path, sizeof path, base, "value");
    if (op == OP_EXISTS || op == OP_NOT_EXISTS) {
        if (json_object_get(obj, "value")) {
            fail(c, path, "not used with op \"%s\"", op_names[op]);
            goto bad;
        }
        if (f == F_HEADER && !out->header)
            goto nomem;
        return canon;
    }
    const char *v = get_string(c, base, obj, "value", true,
                               op == OP_REGEX ? RULES_MAX_REGEX : RULES_MAX_VALUE);
    if (!v)
        goto bad;
    if (has_controls(v, true)) {
        fail(c, path, "control characters are not allowed");
        goto bad;
    }
    if (!v[0] && op != OP_EQUALS && op != OP_NOT_EQUALS) {
        fail(c, path, "must not be empty");
        goto bad;
    }
    char lower[32] = "";
    if ((f == F_SPF || f == F_DKIM || f == F_DMARC) && op != OP_REGEX) {
        size_t n = strlen(v);
        for (size_t i = 0; i < n && i + 1 < sizeof lower; i++)
            lower[i] = (char)((v[i] >= 'A' && v[i] <= 'Z') ? v[i] + 32 : v[i]);
        lower[n < sizeof lower ? n : sizeof lower - 1] = '\0';
        if (n >= sizeof lower || !verdict_word_ok((enum field)f, lower)) {
            fail(c, path, "\"%s\" is not a %s result (%s)", shown(v, tmp, sizeof tmp),
                 field_names[f], verdict_words((enum field)f));
            goto bad;
        }
        v = lower;
    }
    if (op == OP_REGEX) {
        const char *why = NULL;
        if (regex_check(v, &why) != 0) {
            fail(c, path, "regex %s", why);
            goto bad;
        }
        int rc = regcomp(&out->re, v, REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &out->re, msg, sizeof msg);
            fail(c, path, "invalid regex: %s", msg);
            goto bad;
        }
        out->has_re = true;
    } else if (op == OP_CIDR) {
        char why[96];
        if (parse_network(v, &out->ip, &out->prefix, why, sizeof why) != 0) {
            fail(c, path, "%s", why);
            goto bad;
        }
    } else if (f == F_CLIENT_IP && (op == OP_EQUALS || op == OP_NOT_EQUALS)) {
        if (spf_ip_parse(v, &out->ip) != 0) {
            fail(c, path, "not an IP address");
            goto bad;
        }
    }
    out->value = strdup(v);
    if (!out->value || (f == F_HEADER && !out->header))
        goto nomem;
    json_object_set_new(canon, "value", json_string(v));
    return canon;
nomem:
    fail(c, base, "out of memory");
bad:
    json_decref(canon);
    return NULL;
}

/* RFC 3463 status-code: class "." subject "." detail, class matching. */
static bool enhanced_ok(const char *s, int code)
{
    if (!(s[0] == '4' || s[0] == '5') || s[0] - '0' != code / 100 || s[1] != '.')
        return false;
    const char *p = s + 2;
    for (int part = 0; part < 2; part++) {
        size_t n = 0;
        while (p[n] >= '0' && p[n] <= '9')
            n++;
        if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
            return false;
        p += n;
        if (part == 0) {
            if (*p != '.')
                return false;
            p++;
        }
    }
    return *p == '\0';
}

/* http(s)://host[:port][/...]: a host is required; no white space or
 * control characters anywhere. */
static bool url_ok(const char *u, const char **why)
{
    *why = "must be an http:// or https:// URL with a host";
    size_t n = strlen(u);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f) {
            *why = "must not contain white space, control or non-ASCII characters";
            return false;
        }
    size_t skip;
    if (strncasecmp(u, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(u, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    const char *a = u + skip;
    size_t alen = strcspn(a, "/?#");
    struct sv auth = sv_make(a, alen);
    for (size_t i = auth.len; i > 0; i--)   /* userinfo@ */
        if (auth.p[i - 1] == '@') {
            auth = sv_sub(auth, i, auth.len);
            break;
        }
    struct sv host = auth, port = { NULL, 0 };
    if (auth.len && auth.p[0] == '[') {
        size_t close = sv_find(auth, ']');
        if (close == auth.len || close < 2 || close - 1 >= 64)
            return false;
        char v6[64];
        memcpy(v6, auth.p + 1, close - 1);
        v6[close - 1] = '\0';
        unsigned char bin[16];
        if (inet_pton(AF_INET6, v6, bin) != 1)
            return false;
        struct sv rest = sv_sub(auth, close + 1, auth.len);
        if (rest.len && rest.p[0] != ':')
            return false;
        port = rest.len ? sv_sub(rest, 1, rest.len) : rest;
        if (rest.len && port.len == 0)
            return false;
    } else {
        size_t colon = sv_find(auth, ':');
        host = sv_sub(auth, 0, colon);
        if (host.len == 0)
            return false;
        for (size_t i = 0; i < host.len; i++) {
            char ch = host.p[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '-' || ch == '_' || ch == '~' || ch == '%'))
                return false;
        }
        if (colon < auth.len) {
            port = sv_sub(auth, colon + 1, auth.len);
            if (port.len == 0)
                return false;
        }
    }
    unsigned long pn;
    if (port.len && (!sv_to_uint(port, 65535, &pn) || pn == 0)) {
        *why = "port must be 1 to 65535";
        return false;
    }
    return true;
}

static void action_free(struct action *a)
{
    free(a->text);
    free(a->url);
    free(a->header);
}

static json_t *parse_action(struct pctx *c, json_t *obj, size_t idx, struct action *out)
{
    char base[48], path[96], tmp[64];
    snprintf(base, sizeof base, "actions[%zu]", idx);
    if (!json_is_object(obj)) {
        fail(c, base, "must be an object");
        return NULL;
    }
    const char *ts = get_string(c, base, obj, "type", true, 32);
    if (!ts)
        return NULL;
    int t = lookup(ts, action_names, A_COUNT);
    if (t < 0) {
        subpath(path, sizeof path, base, "type");
        fail(c, path, "unknown type \"%s\"", shown(ts, tmp, sizeof tmp));
        return NULL;
    }
    static const char *const k_plain[] = { "type", NULL };
    static const char *const k_reject[] = { "type", "code", "enhanced", "message", NULL };
    static const char *const k_webhook[] = { "type", "url", "include_raw", NULL };
    static const char *const k_add[] = { "type", "header", "value", NULL };
    static const char *const k_strip[] = { "type", "header", NULL };
    static const char *const *const keys[A_COUNT] = {
        [A_STORE] = k_plain, [A_DROP] = k_plain, [A_REJECT] = k_reject,
        [A_WEBHOOK] = k_webhook, [A_ADD_HEADER] = k_add, [A_STRIP_HEADER] = k_strip,
    };
    if (!check_keys(c, base, obj, keys[t], action_names[t]))
        return NULL;
    out->type = (enum atype)t;
    json_t *canon = json_object();
    json_object_set_new(canon, "type", json_string(action_names[t]));

    if (t == A_REJECT) {
        json_t *code = json_object_get(obj, "code");
        subpath(path, sizeof path, base, "code");
        out->code = 550;
        if (code) {
            json_int_t v = json_is_integer(code) ? json_integer_value(code) : 0;
            if (!json_is_integer(code) || v < 400 || v > 599 || (v / 10) % 10 > 5) {
                fail(c, path, "must be a 4xx or 5xx reply code (like 550 or 450)");
                goto bad;
            }
            out->code = (int)v;
        }
        const char *e = get_string(c, base, obj, "enhanced", false, 15);
        if (c->failed)
            goto bad;
        subpath(path, sizeof path, base, "enhanced");
        if (e && !enhanced_ok(e, out->code)) {
            fail(c, path, "must be an RFC 3463 code of class %d (like \"%d.7.1\")",
                 out->code / 100, out->code / 100);
            goto bad;
        }
        if (e)
            snprintf(out->enhanced, sizeof out->enhanced, "%s", e);
        else
            snprintf(out->enhanced, sizeof out->enhanced, "%d.7.1", out->code / 100);
        const char *m = get_string(c, base, obj, "message", false, RULES_MAX_REJECT_TEXT);
        if (c->failed)
            goto bad;
        subpath(path, sizeof path, base, "message");
        if (m) {
            if (!m[0]) {
                fail(c, path, "must not be empty");
                goto bad;
            }
            for (const char *p = m; *p; p++)
                if (*p < 0x20 || *p > 0x7e) {
                    fail(c, path, "must be printable ASCII on one line");
                    goto bad;
                }
        }
        out->text = strdup(m ? m : RULES_DEFAULT_REJECT_TEXT);
        if (!out->text)
            goto nomem;
        json_object_set_new(canon, "code", json_integer(out->code));
        json_object_set_new(canon, "enhanced", json_string(out->enhanced));
        json_object_set_new(canon, "message", json_string(out->text));
    } else if (t == A_WEBHOOK) {
        const char *u = get_string(c, base, obj, "url", true, RULES_MAX_URL);
        if (!u)
            goto bad;
        const char *why;
        if (!url_ok(u, &why)) {
            subpath(path, sizeof path, base, "url");
            fail(c, path, "%s", why);
            goto bad;
        }
        json_t *raw = json_object_get(obj, "include_raw");
        if (raw && !json_is_boolean(raw)) {
            subpath(path, sizeof path, base, "include_raw");
            fail(c, path, "must be true or false");
            goto bad;
        }
        out->include_raw = raw && json_is_true(raw);
        out->url = strdup(u);
        if (!out->url)
            goto nomem;
        json_object_set_new(canon, "url", json_string(u));
        json_object_set_new(canon, "include_raw", json_boolean(out->include_raw));
    } else if (t == A_ADD_HEADER || t == A_STRIP_HEADER) {
        const char *h = get_string(c, base, obj, "header", true, RULES_MAX_HEADER_NAME);
        if (!h)
            goto bad;
        if (!header_name_ok(h)) {
            subpath(path, sizeof path, base, "header");
            fail(c, path, "not a header field name (printable ASCII but ':')");
            goto bad;
        }
        out->header = strdup(h);
        if (!out->header)
            goto nomem;
        json_object_set_new(canon, "header", json_string(h));
        if (t == A_ADD_HEADER) {
            const char *v = get_string(c, base, obj, "value", true, RULES_MAX_HEADER_VALUE);
            if (!v)
                goto bad;
            subpath(path, sizeof path, base, "value");
            if (has_controls(v, true)) {
                fail(c, path, "must be one line without control characters (it is not folded)");
                goto bad;
            }
            if (strlen(h) + 2 + strlen(v) > MAIL_MAX_LINE_LEN) {
                fail(c, path, "too long: the header line would exceed %d octets",
                     MAIL_MAX_LINE_LEN);
                goto bad;
            }
            out->text = strdup(v);
            if (!out->text)
                goto nomem;
            json_object_set_new(canon, "value", json_string(v));
        }
    }
    return canon;
nomem:
    fail(c, base, "out of memory");
bad:
    json_decref(canon);
    return NULL;
}

void rule_free(struct rule *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ncond; i++)
        cond_free(&r->cond[i]);
    for (size_t i = 0; i < r->nact; i++)
        action_free(&r->act[i]);
    free(r->cond);
    free(r->act);
    free(r->name);
    free(r);
}

static bool parse_rule(struct pctx *c, json_t *root, struct rule *r, json_t *canon)
{
    static const char *const keys[] = { "name", "match", "conditions", "actions", "stop", NULL };
    if (!check_keys(c, "", root, keys, NULL))
        return false;
    const char *name = get_string(c, "", root, "name", false, RULES_MAX_NAME);
    if (c->failed)
        return false;
    if (name && has_controls(name, false)) {
        fail(c, "name", "control characters are not allowed");
        return false;
    }
    r->name = strdup(name ? name : "");
    const char *match = get_string(c, "", root, "match", false, 8);
    if (c->failed)
        return false;
    if (match && strcmp(match, "all") != 0 && strcmp(match, "any") != 0) {
        char tmp[64];
        fail(c, "match", "must be \"all\" or \"any\", not \"%s\"", shown(match, tmp, sizeof tmp));
        return false;
    }
    r->match_any = match && strcmp(match, "any") == 0;
    json_t *stop = json_object_get(root, "stop");
    if (stop && !json_is_boolean(stop)) {
        fail(c, "stop", "must be true or false");
        return false;
    }
    r->stop = stop && json_is_true(stop);

    json_t *conds = json_object_get(root, "conditions");
    json_t *cc = json_array();
    json_object_set_new(canon, "conditions", cc);
    if (conds) {
        if (!json_is_array(conds)) {
            fail(c, "conditions", "must be an array");
            return false;
        }
        if (json_array_size(conds) > RULES_MAX_CONDITIONS) {
            fail(c, "conditions", "at most %d conditions", RULES_MAX_CONDITIONS);
            return false;
        }
        r->cond = calloc(json_array_size(conds) + 1, sizeof *r->cond);
        if (!r->cond)
            return false;
        for (size_t i = 0; i < json_array_size(conds); i++) {
            json_t *one = parse_condition(c, json_array_get(conds, i), i, &r->cond[i]);
            if (!one) {
                cond_free(&r->cond[i]);
                return false;
            }
            r->ncond++;
            json_array_append_new(cc, one);
        }
    }

    json_t *acts = json_object_get(root, "actions");
    if (!acts) {
        fail(c, "actions", "required (at least one action)");
        return false;
    }
    if (!json_is_array(acts)) {
        fail(c, "actions", "must be an array");
        return false;
    }
    size_t na = json_array_size(acts);
    if (na == 0 || na > RULES_MAX_ACTIONS) {
        fail(c, "actions", "must hold 1 to %d actions", RULES_MAX_ACTIONS);
        return false;
    }
    json_t *ac = json_array();
    json_object_set_new(canon, "actions", ac);
    r->act = calloc(na, sizeof *r->act);
    if (!r->act)
        return false;
    int disposition = -1;
    for (size_t i = 0; i < na; i++) {
        json_t *one = parse_action(c, json_array_get(acts, i), i, &r->act[i]);
        if (!one) {
            action_free(&r->act[i]);
            return false;
        }
        r->nact++;
        json_array_append_new(ac, one);
        enum atype t = r->act[i].type;
        if (t == A_STORE || t == A_DROP || t == A_REJECT) {
            if (disposition >= 0) {
                char path[48];
                snprintf(path, sizeof path, "actions[%zu].type", i);
                fail(c, path, "\"%s\" conflicts with \"%s\": a rule holds at most one of "
                     "store, drop and reject", action_names[t], action_names[disposition]);
                return false;
            }
            disposition = (int)t;
        }
    }
    json_object_set_new(canon, "name", json_string(r->name ? r->name : ""));
    json_object_set_new(canon, "match", json_string(r->match_any ? "any" : "all"));
    json_object_set_new(canon, "stop", json_boolean(r->stop));
    return r->name != NULL;
}

struct rule *rule_parse(const char *json, size_t len, char **canonical, char *err, size_t errlen)
{
    struct pctx c = { err, errlen, false };
    if (err && errlen)
        err[0] = '\0';
    if (canonical)
        *canonical = NULL;
    if (!json) {
        fail(&c, "rule", "missing");
        return NULL;
    }
    if (len > RULES_MAX_JSON) {
        fail(&c, "rule", "larger than %d octets", RULES_MAX_JSON);
        return NULL;
    }
    if (memchr(json, '\0', len)) {
        fail(&c, "rule", "contains a NUL octet");
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        fail(&c, "rule", "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fail(&c, "rule", "must be a JSON object");
        return NULL;
    }
    struct rule *r = calloc(1, sizeof *r);
    json_t *canon = json_object();
    bool ok = r && canon && parse_rule(&c, root, r, canon);
    if (ok && canonical) {
        *canonical = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
        ok = *canonical != NULL;
    }
    json_decref(canon);
    json_decref(root);
    if (!ok) {
        if (!c.failed)
            fail(&c, "rule", "out of memory");
        rule_free(r);
        return NULL;
    }
    return r;
}

/* ---- sets ---- */

struct rule_set *rule_set_new(void)
{
    return calloc(1, sizeof(struct rule_set));
}

/* On failure (the set is full, no memory) the caller keeps r. */
int rule_set_add(struct rule_set *set, struct rule *r)
{
    if (!set || !r || set->n >= RULES_MAX_PER_ACCOUNT)
        return -1;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        struct rule **p = realloc(set->rules, cap * sizeof *p);
        if (!p)
            return -1;
        set->rules = p;
        set->cap = cap;
    }
    set->rules[set->n++] = r;
    return 0;
}

void rule_set_free(struct rule_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        rule_free(set->rules[i]);
    free(set->rules);
    free(set);
}

/* ---- evaluation ---- */

/* The header section's fields, unfolded, built on first need. */
struct hfield {
    struct sv name;
    const char *value;
    size_t len;
};
struct hcache {
    bool built, failed;
    struct hfield *f;
    size_t n;
    char *arena;
};

static void hcache_build(struct hcache *h, const struct rule_subject *s)
{
    h->built = true;
    if (!s->head || s->head_len == 0)
        return;
    size_t head_len, body_off;
    mail_split_message(s->head, s->head_len, &head_len, &body_off);
    h->f = calloc(MAIL_MAX_HEADERS, sizeof *h->f);
    h->arena = malloc(head_len + MAIL_MAX_HEADERS + 1);
    if (!h->f || !h->arena) {
        h->failed = true;
        return;
    }
    size_t used = 0;
    struct inbound_hdr_walk w;
    struct inbound_hdr_entity e;
    inbound_hdr_walk_init(&w, s->head, head_len);
    while (h->n < MAIL_MAX_HEADERS && inbound_hdr_next(&w, &e)) {
        if (!e.name.len)
            continue;
        char *dst = h->arena + used;
        size_t n = inbound_unfold(e.value, dst, e.value.len + 1);
        h->f[h->n++] = (struct hfield){ e.name, dst, n };
        used += n + 1;
    }
}

static void hcache_free(struct hcache *h)
{
    free(h->f);
    free(h->arena);
}

static bool ci_contains(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

/* The base op (equals, contains, regex) on one string of length len. */
static bool str_test(const struct cond *c, enum op base, const char *s, size_t len)
{
    switch (base) {
    case OP_EQUALS:
        return strcasecmp(s, c->value) == 0;
    case OP_CONTAINS:
        return ci_contains(s, c->value);
    case OP_REGEX: {
        regmatch_t m[1] = { { 0, (regoff_t)(len < RULES_REGEX_SUBJECT_MAX ? len
                                                                          : RULES_REGEX_SUBJECT_MAX) } };
        return c->has_re && regexec(&c->re, s, 1, m, REG_STARTEND) == 0;
    }
    default:
        return false;
    }
}

static enum op base_op(enum op op, bool *negate)
{
    *negate = op == OP_NOT_EQUALS || op == OP_NOT_CONTAINS || op == OP_NOT_EXISTS;
    return op == OP_NOT_EQUALS ? OP_EQUALS : op == OP_NOT_CONTAINS ? OP_CONTAINS
         : op == OP_NOT_EXISTS ? OP_EXISTS : op;
}

static const char *dkim_word(const struct auth_verdict *v)
{
    if (!v || v->dkim.count == 0 || !v->dkim.sigs)
        return "none";
    for (size_t i = 0; i < v->dkim.count; i++)
        if (v->dkim.sigs[i].result == DKIM_PASS)
            return "pass";
    return dkim_result_name(v->dkim.sigs[0].result);
}

static bool net_contains(const struct cond *c, const char *ip_text)
{
    struct spf_ip ip;
    if (!ip_text || spf_ip_parse(ip_text, &ip) != 0 || ip.family != c->ip.family)
        return false;
    unsigned pl = c->prefix;
    size_t full = pl / 8;
    if (memcmp(ip.addr, c->ip.addr, full) != 0)
        return false;
    if (pl % 8 == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - pl % 8));
    return (ip.addr[full] & mask) == (c->ip.addr[full] & mask);
}

static bool cond_holds(const struct cond *c, const struct rule_subject *s, struct hcache *h)
{
    bool negate;
    enum op base = base_op(c->op, &negate);
    bool any = false;
    switch (c->field) {
    case F_RECIPIENT:
        for (size_t i = 0; i < s->nrcpt && !any; i++)
            if (s->rcpts && s->rcpts[i])
                any = str_test(c, base, s->rcpts[i], strlen(s->rcpts[i]));
        break;
    case F_SENDER:
    case F_HELO: {
        const char *v = c->field == F_SENDER ? s->mail_from : s->helo;
        v = v ? v : "";
        any = str_test(c, base, v, strlen(v));
        break;
    }
    case F_CLIENT_IP: {
        const char *v = s->client_ip ? s->client_ip : "";
        if (base == OP_CIDR) {
            any = net_contains(c, v);
        } else if (base == OP_EQUALS) {
            struct spf_ip ip;
            any = spf_ip_parse(v, &ip) == 0 && ip.family == c->ip.family &&
                  memcmp(ip.addr, c->ip.addr, ip.family == AF_INET ? 4 : 16) == 0;
        } else {
            any = str_test(c, base, v, strlen(v));
        }
        break;
    }
    case F_HEADER:
        if (!h->built)
            hcache_build(h, s);
        if (h->failed)
            return false;
        for (size_t i = 0; i < h->n && !any; i++) {
            if (!sv_eq_ci_cstr(h->f[i].name, c->header))
                continue;
            any = base == OP_EXISTS || str_test(c, base, h->f[i].value, h->f[i].len);
        }
        break;
    case F_SPF:
    case F_DKIM:
    case F_DMARC: {
        const struct auth_verdict *v = s->verdict;
        const char *w = c->field == F_SPF ? (v ? spf_result_name(v->spf.result) : "none")
                      : c->field == F_DKIM ? dkim_word(v)
                                           : (v ? dmarc_result_name(v->dmarc.result) : "none");
        any = str_test(c, base, w, strlen(w));
        break;
    }
    default:
        return false;
    }
    return negate ? !any : any;
}

static bool rule_matches(const struct rule *r, const struct rule_subject *s, struct hcache *h)
{
    if (r->ncond == 0)
        return true;
    for (size_t i = 0; i < r->ncond; i++) {
        bool ok = cond_holds(&r->cond[i], s, h);
        if (r->match_any && ok)
            return true;
        if (!r->match_any && !ok)
            return false;
    }
    return !r->match_any;
}

static void note_match(struct rule_outcome *o, const struct rule *r, size_t pos, bool *full)
{
    if (*full)
        return;
    char unnamed[32];
    const char *name = r->name && r->name[0] ? r->name : unnamed;
    if (name == unnamed)
        snprintf(unnamed, sizeof unnamed, "#%zu", pos + 1);
    size_t have = strlen(o->matched), need = strlen(name) + (have ? 1 : 0);
    if (have + need < sizeof o->matched) {
        snprintf(o->matched + have, sizeof o->matched - have, "%s%s", have ? "," : "", name);
        return;
    }
    *full = true;
    if (have + 4 < sizeof o->matched)
        snprintf(o->matched + have, sizeof o->matched - have, "%s", have ? ",..." : "...");
}

static void add_webhook(struct rule_outcome *o, const struct action *a)
{
    for (size_t i = 0; i < o->nwebhooks; i++)
        if (strcmp(o->webhooks[i].url, a->url) == 0) {
            o->webhooks[i].include_raw |= a->include_raw;
            return;
        }
    if (o->nwebhooks >= RULES_MAX_WEBHOOKS)
        return;
    struct rule_webhook *w = &o->webhooks[o->nwebhooks++];
    snprintf(w->url, sizeof w->url, "%s", a->url);
    w->include_raw = a->include_raw;
}

static void add_edit(struct rule_outcome *o, const struct action *a)
{
    if (o->nedits >= RULES_MAX_HEADER_EDITS)
        return;
    struct rule_header_edit *e = &o->edits[o->nedits++];
    e->add = a->type == A_ADD_HEADER;
    snprintf(e->name, sizeof e->name, "%s", a->header);
    snprintf(e->value, sizeof e->value, "%s", e->add && a->text ? a->text : "");
}

void rule_set_evaluate(const struct rule_set *set, const struct rule_subject *subj,
                       struct rule_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->final = RULE_FINAL_STORE;
    if (!set || !subj)
        return;
    struct hcache h = { 0 };
    bool matched_full = false;
    for (size_t i = 0; i < set->n; i++) {
        const struct rule *r = set->rules[i];
        if (!rule_matches(r, subj, &h))
            continue;
        note_match(out, r, i, &matched_full);
        bool final = false;
        for (size_t k = 0; k < r->nact; k++) {
            const struct action *a = &r->act[k];
            switch (a->type) {
            case A_DROP:
                out->final = RULE_FINAL_DROP;
                final = true;
                break;
            case A_REJECT:
                out->final = RULE_FINAL_REJECT;
                out->reject_code = a->code;
                snprintf(out->reject_enhanced, sizeof out->reject_enhanced, "%s", a->enhanced);
                snprintf(out->reject_text, sizeof out->reject_text, "%s", a->text ? a->text : "");
                final = true;
                break;
            case A_WEBHOOK:
                add_webhook(out, a);
                break;
            case A_ADD_HEADER:
            case A_STRIP_HEADER:
                add_edit(out, a);
                break;
            default:
                break;
            }
        }
        if (final || r->stop)
            break;
    }
    hcache_free(&h);
}

/* ---- header edits ---- */

static bool edit_add_ok(const struct rule_header_edit *e)
{
    size_t vlen = strnlen(e->value, sizeof e->value);
    size_t nlen = strnlen(e->name, sizeof e->name);
    return nlen < sizeof e->name && vlen < sizeof e->value &&
           mail_field_name_valid(sv_make(e->name, nlen)) && !memchr(e->value, '\r', vlen) &&
           !memchr(e->value, '\n', vlen);
}

int rule_apply_header_edits(const struct rule_outcome *o, const char *msg, size_t len,
                            struct buf *out)
{
    buf_reset(out);
    size_t n = o ? (o->nedits < RULES_MAX_HEADER_EDITS ? o->nedits : RULES_MAX_HEADER_EDITS) : 0;
    /* Edits run in order: a strip removes the fields of that name the
     * message came with and those added before it; an add goes on top. */
    bool dead[RULES_MAX_HEADER_EDITS] = { false };
    for (size_t k = 0; k < n; k++) {
        const struct rule_header_edit *e = &o->edits[k];
        if (e->add)
            continue;
        for (size_t j = 0; j < k; j++)
            if (o->edits[j].add && strcasecmp(o->edits[j].name, e->name) == 0)
                dead[j] = true;
    }
    const char *nl = len ? memchr(msg, '\n', len) : NULL;
    const char *eol = nl && (nl == msg || nl[-1] != '\r') ? "\n" : "\r\n";
    bool added = false;
    for (size_t k = n; k-- > 0;) {   /* the last added is on top */
        const struct rule_header_edit *e = &o->edits[k];
        if (!e->add || dead[k] || !edit_add_ok(e))
            continue;
        if (buf_printf(out, "%s: %s%s", e->name, e->value, eol) != 0)
            return -1;
        added = true;
    }
    size_t head_len, body_off;
    mail_split_message(msg, len, &head_len, &body_off);
    struct inbound_hdr_walk w;
    struct inbound_hdr_entity ent;
    size_t copied = 0;
    inbound_hdr_walk_init(&w, msg, head_len);
    while (n && inbound_hdr_next(&w, &ent)) {
        /* continuation lines with no field above them would continue the
         * field we added: they belong to no field, so they go */
        if (added && ent.start == 0 && (msg[0] == ' ' || msg[0] == '\t')) {
            copied = ent.end;
            continue;
        }
        if (!ent.name.len)
            continue;
        bool strip = false;
        for (size_t k = 0; k < n && !strip; k++)
            strip = !o->edits[k].add && sv_eq_ci_cstr(ent.name, o->edits[k].name);
        if (!strip)
            continue;
        if (buf_append(out, msg + copied, ent.start - copied) != 0)
            return -1;
        copied = ent.end;
    }
    if (len > copied && buf_append(out, msg + copied, len - copied) != 0)
        return -1;
    return 0;
}
