/* DMARC aggregate reports received from other receivers: the file's
 * container (util/zip_read.h), the XML through expat's streaming parser
 * with a grammar table of the elements we read (RFC 7489 Appendix C; the
 * DMARCbis namespace and the older dmarc.org draft read the same), JSON,
 * and the per-source summary; see dmarc_feedback.h and
 * docs/dmarc_feedback.md.
 *
 * Safety: a DOCTYPE stops the parser at once (so no entity is declared or
 * expanded, no external subset named), depth, record count and text per
 * field are capped, NULs and invalid UTF-8 are refused. Strings of rows go
 * into an arena owned by the report, so memory follows the input's size,
 * not a fixed struct size per record. It does not look up DNS, check who
 * sent the report, nor keep extension elements. */
#include "auth/dmarc_feedback.h"

#include <arpa/inet.h>
#include <expat.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/mime_parse.h"
#include "util/buf.h"
#include "util/utf8.h"
#include "util/zip_read.h"

#define NS_SEP '\x01'                 /* between namespace URI and local name */
#define FEED_CHUNK (1024 * 1024)      /* bytes handed to expat at a time */
#define MAX_TIME 253402300799LL       /* 9999-12-31T23:59:59Z */
#define ARENA_BLOCK (64 * 1024)
#define SUMMARY_MAX_HEADER_FROM 16    /* distinct header From domains listed per source */
#define SUMMARY_MAX_KEYWORDS 8        /* distinct dispositions / reasons per source */

/* ---- arena: strings and auth results of the rows ---------------------- */

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
};

static void *arena_alloc(struct arena_block **head, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    struct arena_block *b = *head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        if (!(b = malloc(sizeof *b + size)))
            return NULL;
        b->next = *head;
        b->used = 0;
        b->size = size;
        *head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(struct arena_block *b)
{
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---- the grammar ------------------------------------------------------ */

enum el {
    E_IGNORE = 0, E_DOC, E_FEEDBACK,
    E_META, E_ORG, E_EMAIL, E_REPORT_ID, E_DATE_RANGE, E_BEGIN, E_END,
    E_POLICY, E_P_DOMAIN, E_ADKIM, E_ASPF, E_P, E_SP, E_PCT, E_FO,
    E_RECORD, E_ROW, E_SOURCE_IP, E_COUNT, E_EVAL, E_DISPOSITION, E_EVAL_DKIM, E_EVAL_SPF,
    E_REASON, E_REASON_TYPE, E_REASON_COMMENT,
    E_IDENTIFIERS, E_ENV_TO, E_ENV_FROM, E_HEADER_FROM,
    E_AUTH, E_DKIM, E_DKIM_DOMAIN, E_DKIM_SELECTOR, E_DKIM_RESULT,
    E_SPF, E_SPF_DOMAIN, E_SPF_SCOPE, E_SPF_RESULT,
};

static const struct grammar {
    enum el parent;
    const char *name;
    enum el el;
    bool leaf;                        /* its text is a field */
} grammar[] = {
    { E_FEEDBACK, "report_metadata", E_META, false },
    { E_META, "org_name", E_ORG, true },
    { E_META, "email", E_EMAIL, true },
    { E_META, "report_id", E_REPORT_ID, true },
    { E_META, "date_range", E_DATE_RANGE, false },
    { E_DATE_RANGE, "begin", E_BEGIN, true },
    { E_DATE_RANGE, "end", E_END, true },
    { E_FEEDBACK, "policy_published", E_POLICY, false },
    { E_POLICY, "domain", E_P_DOMAIN, true },
    { E_POLICY, "adkim", E_ADKIM, true },
    { E_POLICY, "aspf", E_ASPF, true },
    { E_POLICY, "p", E_P, true },
    { E_POLICY, "sp", E_SP, true },
    { E_POLICY, "pct", E_PCT, true },
    { E_POLICY, "fo", E_FO, true },
    { E_FEEDBACK, "record", E_RECORD, false },
    { E_RECORD, "row", E_ROW, false },
    { E_ROW, "source_ip", E_SOURCE_IP, true },
    { E_ROW, "count", E_COUNT, true },
    { E_ROW, "policy_evaluated", E_EVAL, false },
    { E_EVAL, "disposition", E_DISPOSITION, true },
    { E_EVAL, "dkim", E_EVAL_DKIM, true },
    { E_EVAL, "spf", E_EVAL_SPF, true },
    { E_EVAL, "reason", E_REASON, false },
    { E_REASON, "type", E_REASON_TYPE, true },
    { E_REASON, "comment", E_REASON_COMMENT, true },
    { E_RECORD, "identifiers", E_IDENTIFIERS, false },
    { E_IDENTIFIERS, "envelope_to", E_ENV_TO, true },
    { E_IDENTIFIERS, "envelope_from", E_ENV_FROM, true },
    { E_IDENTIFIERS, "header_from", E_HEADER_FROM, true },
    { E_RECORD, "auth_results", E_AUTH, false },
    { E_AUTH, "dkim", E_DKIM, false },
    { E_DKIM, "domain", E_DKIM_DOMAIN, true },
    { E_DKIM, "selector", E_DKIM_SELECTOR, true },
    { E_DKIM, "result", E_DKIM_RESULT, true },
    { E_AUTH, "spf", E_SPF, false },
    { E_SPF, "domain", E_SPF_DOMAIN, true },
    { E_SPF, "scope", E_SPF_SCOPE, true },
    { E_SPF, "result", E_SPF_RESULT, true },
};

static const struct grammar *grammar_find(enum el parent, const char *name)
{
    for (size_t i = 0; i < sizeof grammar / sizeof grammar[0]; i++)
        if (grammar[i].parent == parent && strcmp(grammar[i].name, name) == 0)
            return &grammar[i];
    return NULL;
}

static const char *el_name(enum el e)
{
    if (e == E_FEEDBACK)
        return "feedback";
    for (size_t i = 0; i < sizeof grammar / sizeof grammar[0]; i++)
        if (grammar[i].el == e)
            return grammar[i].name;
    return "?";
}

/* ---- parsing state ---------------------------------------------------- */

struct frame {
    enum el el;
    bool leaf;
};

struct ctx {
    XML_Parser xp;
    struct dmarc_feedback *f;
    struct arena_block *mem;
    size_t rows_alloc;
    struct frame stack[DMARC_FEEDBACK_MAX_DEPTH + 1]; /* [0] is the document */
    size_t depth;
    char *root_ns;                    /* namespace of <feedback>, "" for none */
    char text[DMARC_FEEDBACK_MAX_TEXT + 1];
    size_t textlen;
    bool failed;
    char err[256];
    bool seen_meta, seen_policy, seen_begin, seen_end;
    /* the record being read (its row is f->rows[f->nrows]) */
    char ip[DMARC_FEEDBACK_MAX_TEXT + 1];
    bool have_count, count_bad, reason_seen;
    char count_problem[96];
    struct dmarc_feedback_dkim dkim[DMARC_FEEDBACK_MAX_DKIM];
    struct dmarc_feedback_spf spf[DMARC_FEEDBACK_MAX_SPF];
    size_t ndkim, nspf;
};

__attribute__((format(printf, 2, 3)))
static void stop(struct ctx *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->failed = true;
    XML_StopParser(c->xp, XML_FALSE);
}

/* Copies n bytes of s into dst (size > 0), cut at a character boundary
 * (and before the space there would then be at the end). */
static void copy_cut(char *dst, size_t size, const char *s, size_t n)
{
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        while (n > 0 && s[n - 1] == ' ')
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static void lower_ascii(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
}

/* The collected text made presentable, in place: valid UTF-8 (else -1),
 * trimmed, white space runs as one space, C0/C1 controls and DEL as '?'. */
static int clean_text(char *s, size_t *len)
{
    size_t n = *len, w = 0;
    if (!utf8_valid(s, n))
        return -1;
    bool space = false;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            space = w > 0;
            i++;
            continue;
        }
        if (space) {
            s[w++] = ' ';
            space = false;
        }
        if (ch < 0x20 || ch == 0x7f) {
            s[w++] = '?';
            i++;
        } else if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            s[w++] = '?';                /* U+0080..U+009F */
            i += 2;
        } else {
            s[w++] = s[i++];
        }
    }
    s[w] = '\0';
    *len = w;
    return 0;
}

static const char *arena_str(struct ctx *c, const char *s, size_t n, bool lower)
{
    if (n == 0)
        return "";
    char *p = arena_alloc(&c->mem, n + 1);
    if (!p) {
        stop(c, "out of memory");
        return "";
    }
    memcpy(p, s, n);
    p[n] = '\0';
    if (lower)
        lower_ascii(p, n);
    return p;
}

static void keyword(char *dst, size_t size, const char *s, size_t n)
{
    copy_cut(dst, size, s, n);
    lower_ascii(dst, strlen(dst));
}

/* Digits only (the XML text is already trimmed), at most max. */
static bool parse_uint(const char *s, size_t n, unsigned long long max, unsigned long long *out)
{
    if (n == 0 || n > 20)
        return false;
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static struct dmarc_feedback_row *cur_row(struct ctx *c) { return &c->f->rows[c->f->nrows]; }

static void start_record(struct ctx *c)
{
    struct dmarc_feedback *f = c->f;
    if (f->nrows >= DMARC_FEEDBACK_MAX_RECORDS) {
        stop(c, "the report has more than %d records", DMARC_FEEDBACK_MAX_RECORDS);
        return;
    }
    if (f->nrows == c->rows_alloc) {
        size_t n = c->rows_alloc ? c->rows_alloc * 2 : 16;
        if (n > DMARC_FEEDBACK_MAX_RECORDS)
            n = DMARC_FEEDBACK_MAX_RECORDS;
        struct dmarc_feedback_row *r = realloc(f->rows, n * sizeof *r);
        if (!r) {
            stop(c, "out of memory");
            return;
        }
        f->rows = r;
        c->rows_alloc = n;
    }
    struct dmarc_feedback_row *r = cur_row(c);
    memset(r, 0, sizeof *r);
    r->reason_comment = r->header_from = r->envelope_from = r->envelope_to = "";
    c->ip[0] = '\0';
    c->have_count = c->count_bad = c->reason_seen = false;
    c->count_problem[0] = '\0';
    c->ndkim = c->nspf = 0;
}

/* The value of a refused field, short enough to quote in a reason. */
static const char *quote(char *buf, size_t size, const char *value)
{
    copy_cut(buf, size, value, strlen(value));
    return buf;
}

__attribute__((format(printf, 2, 3)))
static void skip_record(struct ctx *c, const char *fmt, ...)
{
    struct dmarc_feedback *f = c->f;
    if (f->nskipped++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->skipped_reason, sizeof f->skipped_reason, fmt, ap);
        va_end(ap);
    }
}

static void end_record(struct ctx *c)
{
    struct dmarc_feedback_row *r = cur_row(c);
    unsigned char addr[16];
    char canon[INET6_ADDRSTRLEN];
    int af = AF_INET;
    char q[64];
    if (!c->ip[0]) {
        skip_record(c, "a record has no source_ip");
        return;
    }
    if (inet_pton(AF_INET, c->ip, addr) != 1) {
        af = AF_INET6;
        if (inet_pton(AF_INET6, c->ip, addr) != 1) {
            skip_record(c, "a record's source_ip '%s' is not an IP address",
                        quote(q, sizeof q, c->ip));
            return;
        }
    }
    if (!inet_ntop(af, addr, canon, sizeof canon)) {
        skip_record(c, "a record's source_ip '%s' is not an IP address",
                        quote(q, sizeof q, c->ip));
        return;
    }
    if (!c->have_count) {
        skip_record(c, "a record from %s has no count", canon);
        return;
    }
    if (c->count_bad) {
        skip_record(c, "a record's count '%s' is not a number up to 10^12",
                    quote(q, sizeof q, c->count_problem));
        return;
    }
    copy_cut(r->source_ip, sizeof r->source_ip, canon, strlen(canon));
    if (c->ndkim) {
        r->dkim = arena_alloc(&c->mem, c->ndkim * sizeof *r->dkim);
        if (!r->dkim) {
            stop(c, "out of memory");
            return;
        }
        memcpy(r->dkim, c->dkim, c->ndkim * sizeof *r->dkim);
        r->ndkim = c->ndkim;
    }
    if (c->nspf) {
        r->spf = arena_alloc(&c->mem, c->nspf * sizeof *r->spf);
        if (!r->spf) {
            stop(c, "out of memory");
            return;
        }
        memcpy(r->spf, c->spf, c->nspf * sizeof *r->spf);
        r->nspf = c->nspf;
    }
    c->f->nrows++;
}

static void leaf_text(struct ctx *c, enum el e)
{
    struct dmarc_feedback *f = c->f;
    size_t n = c->textlen;
    char *s = c->text;
    s[n] = '\0';
    if (clean_text(s, &n) != 0) {
        stop(c, "the text of <%s> is not valid UTF-8", el_name(e));
        return;
    }
    unsigned long long v;
    struct dmarc_feedback_row *r = f->nrows < c->rows_alloc ? cur_row(c) : NULL;
    struct dmarc_feedback_dkim *dk = c->ndkim ? &c->dkim[c->ndkim - 1] : NULL;
    struct dmarc_feedback_spf *sp = c->nspf ? &c->spf[c->nspf - 1] : NULL;
    switch (e) {
    case E_ORG: copy_cut(f->org_name, sizeof f->org_name, s, n); break;
    case E_EMAIL: copy_cut(f->email, sizeof f->email, s, n); break;
    case E_REPORT_ID: copy_cut(f->report_id, sizeof f->report_id, s, n); break;
    case E_BEGIN:
    case E_END:
        if (!parse_uint(s, n, MAX_TIME, &v)) {
            stop(c, "<%s> of the date range is not a time in seconds since 1970",
                 el_name(e));
            return;
        }
        if (e == E_BEGIN) {
            f->begin = (int64_t)v;
            c->seen_begin = true;
        } else {
            f->end = (int64_t)v;
            c->seen_end = true;
        }
        break;
    case E_P_DOMAIN:
        if (n > DNS_MAX_NAME_LEN) {
            stop(c, "the policy_published domain is longer than %d characters",
                 DNS_MAX_NAME_LEN);
            return;
        }
        keyword(f->domain, sizeof f->domain, s, n);
        break;
    case E_ADKIM:
    case E_ASPF:
        if (n == 1 && (s[0] == 'r' || s[0] == 's' || s[0] == 'R' || s[0] == 'S'))
            keyword(e == E_ADKIM ? f->adkim : f->aspf, 2, s, n);
        break;
    case E_P: keyword(f->p, sizeof f->p, s, n); break;
    case E_SP: keyword(f->sp, sizeof f->sp, s, n); break;
    case E_FO: copy_cut(f->fo, sizeof f->fo, s, n); break;
    case E_PCT:
        if (parse_uint(s, n, 100, &v))
            f->pct = (unsigned)v;
        break;
    case E_SOURCE_IP: copy_cut(c->ip, sizeof c->ip, s, n); break;
    case E_COUNT:
        c->have_count = true;
        c->count_bad = !parse_uint(s, n, DMARC_FEEDBACK_MAX_COUNT, &v);
        if (c->count_bad)
            copy_cut(c->count_problem, sizeof c->count_problem, s, n);
        else
            r->count = v;
        break;
    case E_DISPOSITION: keyword(r->disposition, sizeof r->disposition, s, n); break;
    case E_EVAL_DKIM: keyword(r->dkim_eval, sizeof r->dkim_eval, s, n); break;
    case E_EVAL_SPF: keyword(r->spf_eval, sizeof r->spf_eval, s, n); break;
    case E_REASON_TYPE: keyword(r->reason_type, sizeof r->reason_type, s, n); break;
    case E_REASON_COMMENT: r->reason_comment = arena_str(c, s, n, false); break;
    case E_ENV_TO: r->envelope_to = arena_str(c, s, n, true); break;
    case E_ENV_FROM: r->envelope_from = arena_str(c, s, n, true); break;
    case E_HEADER_FROM: r->header_from = arena_str(c, s, n, true); break;
    case E_DKIM_DOMAIN: dk->domain = arena_str(c, s, n, true); break;
    case E_DKIM_SELECTOR: dk->selector = arena_str(c, s, n, false); break;
    case E_DKIM_RESULT: keyword(dk->result, sizeof dk->result, s, n); break;
    case E_SPF_DOMAIN: sp->domain = arena_str(c, s, n, true); break;
    case E_SPF_SCOPE: keyword(sp->scope, sizeof sp->scope, s, n); break;
    case E_SPF_RESULT: keyword(sp->result, sizeof sp->result, s, n); break;
    default: break;
    }
}

/* ---- expat handlers --------------------------------------------------- */

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct ctx *c = ud;
    (void)atts;
    if (c->failed)
        return;
    if (c->depth >= DMARC_FEEDBACK_MAX_DEPTH) {
        stop(c, "elements are nested deeper than %d levels", DMARC_FEEDBACK_MAX_DEPTH);
        return;
    }
    const char *sep = strrchr(name, NS_SEP);
    const char *local = sep ? sep + 1 : name;
    size_t nslen = sep ? (size_t)(sep - name) : 0;
    enum el parent = c->stack[c->depth].el;
    struct frame fr = { E_IGNORE, false };

    if (parent == E_DOC) {
        if (strcmp(local, "feedback") != 0) {
            char shown[64];
            copy_cut(shown, sizeof shown, local, strlen(local));
            stop(c, "not a DMARC aggregate report: the root element is <%s>, not <feedback>",
                 shown);
            return;
        }
        if (!(c->root_ns = strndup(name, nslen))) {
            stop(c, "out of memory");
            return;
        }
        fr.el = E_FEEDBACK;
    } else if (parent != E_IGNORE &&
               (nslen == 0 ||
                (strlen(c->root_ns) == nslen && memcmp(c->root_ns, name, nslen) == 0))) {
        const struct grammar *g = grammar_find(parent, local);
        if (g) {
            fr.el = g->el;
            fr.leaf = g->leaf;
        }
    }

    switch (fr.el) {
    case E_META:
        if (c->seen_meta) {
            stop(c, "more than one <report_metadata>");
            return;
        }
        c->seen_meta = true;
        break;
    case E_POLICY:
        if (c->seen_policy) {
            stop(c, "more than one <policy_published>");
            return;
        }
        c->seen_policy = true;
        break;
    case E_RECORD:
        start_record(c);
        if (c->failed)
            return;
        break;
    case E_REASON:
        if (c->reason_seen)
            fr.el = E_IGNORE;          /* the first reason is kept */
        c->reason_seen = true;
        break;
    case E_DKIM:
        if (c->ndkim == DMARC_FEEDBACK_MAX_DKIM) {
            fr.el = E_IGNORE;
        } else {
            struct dmarc_feedback_dkim *d = &c->dkim[c->ndkim++];
            memset(d, 0, sizeof *d);
            d->domain = d->selector = "";
        }
        break;
    case E_SPF:
        if (c->nspf == DMARC_FEEDBACK_MAX_SPF) {
            fr.el = E_IGNORE;
        } else {
            struct dmarc_feedback_spf *s = &c->spf[c->nspf++];
            memset(s, 0, sizeof *s);
            s->domain = "";
        }
        break;
    default:
        break;
    }
    if (fr.leaf)
        c->textlen = 0;
    c->stack[++c->depth] = fr;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct ctx *c = ud;
    (void)name;
    if (c->failed || c->depth == 0)
        return;
    struct frame fr = c->stack[c->depth--];
    if (fr.leaf)
        leaf_text(c, fr.el);
    else if (fr.el == E_RECORD)
        end_record(c);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct ctx *c = ud;
    if (c->failed || len <= 0 || !c->stack[c->depth].leaf)
        return;
    if ((size_t)len > DMARC_FEEDBACK_MAX_TEXT - c->textlen) {
        stop(c, "the text of <%s> is longer than %d bytes", el_name(c->stack[c->depth].el),
             DMARC_FEEDBACK_MAX_TEXT);
        return;
    }
    memcpy(c->text + c->textlen, s, (size_t)len);
    c->textlen += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    stop(ud, "a DOCTYPE is not allowed in a DMARC report");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param,
                              const XML_Char *value, int value_length, const XML_Char *base,
                              const XML_Char *sysid, const XML_Char *pubid,
                              const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_length, (void)base, (void)sysid,
        (void)pubid, (void)notation;
    stop(ud, "an entity declaration is not allowed in a DMARC report");
}

/* ---- the XML document ------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return -1;
}

static int check_complete(const struct ctx *c, char *err, size_t errlen)
{
    const struct dmarc_feedback *f = c->f;
    if (!c->seen_meta)
        return fail(err, errlen, "no <report_metadata>");
    if (!f->org_name[0])
        return fail(err, errlen, "no <org_name> in <report_metadata>");
    if (!f->report_id[0])
        return fail(err, errlen, "no <report_id> in <report_metadata>");
    if (!c->seen_begin || !c->seen_end)
        return fail(err, errlen, "no <date_range> with <begin> and <end> in <report_metadata>");
    if (f->end < f->begin)
        return fail(err, errlen, "the date range ends before it begins");
    if (!c->seen_policy)
        return fail(err, errlen, "no <policy_published>");
    if (!f->domain[0])
        return fail(err, errlen, "no <domain> in <policy_published>");
    if (f->nrows == 0) {
        if (f->nskipped) {
            char why[256];
            snprintf(why, sizeof why, "no record could be read: %s", f->skipped_reason);
            return fail(err, errlen, why);
        }
        return fail(err, errlen, "no <record>");
    }
    return 0;
}

static int parse_xml(const unsigned char *data, size_t len, struct dmarc_feedback *f,
                     char *err, size_t errlen)
{
    if (len >= 2 && ((data[0] == 0xfe && data[1] == 0xff) || (data[0] == 0xff && data[1] == 0xfe)))
        return fail(err, errlen, "UTF-16 reports are not supported");
    if (memchr(data, '\0', len))
        return fail(err, errlen, "a NUL octet is not allowed in a DMARC report");
    size_t i = 0;
    if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf)
        i = 3;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    if (i == len || data[i] != '<')
        return fail(err, errlen, "not a DMARC report: neither XML, gzip nor zip");
    data += i;                        /* expat wants the declaration first */
    len -= i;

    struct ctx *c = calloc(1, sizeof *c);
    if (!c)
        return fail(err, errlen, "out of memory");
    c->f = f;
    c->stack[0].el = E_DOC;
    f->pct = 100;
    memcpy(f->adkim, "r", 2);
    memcpy(f->aspf, "r", 2);
    c->xp = XML_ParserCreateNS(NULL, NS_SEP);
    if (!c->xp) {
        free(c);
        return fail(err, errlen, "out of memory");
    }
    XML_SetUserData(c->xp, c);
    XML_SetElementHandler(c->xp, on_start, on_end);
    XML_SetCharacterDataHandler(c->xp, on_text);
    XML_SetStartDoctypeDeclHandler(c->xp, on_doctype);
    XML_SetEntityDeclHandler(c->xp, on_entity);
    XML_SetParamEntityParsing(c->xp, XML_PARAM_ENTITY_PARSING_NEVER);

    int rc = 0;
    size_t off = 0;
    do {
        size_t n = len - off < FEED_CHUNK ? len - off : FEED_CHUNK;
        bool last = off + n == len;
        if (XML_Parse(c->xp, (const char *)data + off, (int)n, last) != XML_STATUS_OK) {
            if (c->failed) {
                rc = fail(err, errlen, c->err);
            } else {
                char why[256];
                snprintf(why, sizeof why, "the XML is not well-formed: %s (line %lu, "
                         "column %lu)", XML_ErrorString(XML_GetErrorCode(c->xp)),
                         (unsigned long)XML_GetCurrentLineNumber(c->xp),
                         (unsigned long)XML_GetCurrentColumnNumber(c->xp) + 1);
                rc = fail(err, errlen, why);
            }
            break;
        }
        off += n;
    } while (off < len);
    if (rc == 0 && c->failed) /* stopped in the last handler call */
        rc = fail(err, errlen, c->err);
    if (rc == 0)
        rc = check_complete(c, err, errlen);
    XML_ParserFree(c->xp);
    free(c->root_ns);
    f->mem = c->mem;
    free(c);
    return rc;
}

/* ---- public: parse, free ---------------------------------------------- */

void dmarc_feedback_free(struct dmarc_feedback *f)
{
    if (!f)
        return;
    free(f->rows);
    arena_free(f->mem);
    memset(f, 0, sizeof *f);
}

int dmarc_feedback_parse(const unsigned char *data, size_t len, struct dmarc_feedback *out,
                         char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!data || len == 0)
        return fail(err, errlen, "the report is empty");
    unsigned char *xml = NULL;
    size_t xmllen = 0;
    if (gzip_magic(data, len)) {
        if (gzip_inflate(data, len, DMARC_FEEDBACK_MAX_INPUT, &xml, &xmllen, err, errlen) != 0)
            return -1;
    } else if (zip_magic(data, len)) {
        if (zip_extract(data, len, ".xml", DMARC_FEEDBACK_MAX_ZIP_MEMBERS,
                        DMARC_FEEDBACK_MAX_INPUT, &xml, &xmllen, NULL, 0, err, errlen) != 0)
            return -1;
    } else if (len > DMARC_FEEDBACK_MAX_INPUT) {
        return fail(err, errlen, "the report is larger than 32 MiB");
    }
    int rc = xml ? parse_xml(xml, xmllen, out, err, errlen) : parse_xml(data, len, out, err,
                                                                         errlen);
    free(xml);
    if (rc != 0)
        dmarc_feedback_free(out);
    return rc;
}

/* ---- reports attached to a mail --------------------------------------- */

static bool name_says_report(const char *name)
{
    static const char *const suffixes[] = { ".xml", ".gz", ".gzip", ".zip" };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t s = strlen(suffixes[i]);
        if (n > s && strcasecmp(name + n - s, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static bool part_is_report(const struct mime_part *p, char *name, size_t namelen)
{
    static const char *const types[] = {
        "application/gzip", "application/x-gzip", "application/zip",
        "application/x-zip-compressed", "application/x-zip", "application/xml", "text/xml",
    };
    struct sv v;
    name[0] = '\0';
    if (mime_header_get(p->head, "Content-Disposition", &v))
        mime_param(v, "filename", name, namelen);
    if (!name[0] && mime_header_get(p->head, "Content-Type", &v))
        mime_param(v, "name", name, namelen);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(p->type, types[i]) == 0)
            return true;
    return name[0] && name_says_report(name);
}

struct msg_walk {
    struct dmarc_feedback *out;
    size_t max, count;
    char *err;
    size_t errlen;
    bool have_err;
};

static void walk_error(struct msg_walk *w, const char *name, const char *why)
{
    if (w->have_err || !w->err || !w->errlen)
        return;
    char shown[80];
    size_t n = mime_unfold(sv_cstr(name), shown, sizeof shown);
    if (n)
        snprintf(w->err, w->errlen, "attachment %s: %s", shown, why);
    else
        snprintf(w->err, w->errlen, "%s", why);
    w->have_err = true;
}

static void walk_message(struct msg_walk *w, const char *msg, size_t len, int level)
{
    char why[256];
    struct mime_tree *t = malloc(sizeof *t);
    if (!t) {
        walk_error(w, "", "out of memory");
        return;
    }
    if (mime_parse(msg, len, t, why, sizeof why) != 0) {
        free(t);
        walk_error(w, "", why);
        return;
    }
    for (size_t i = 0; i < t->nparts && w->count < w->max; i++) {
        const struct mime_part *p = &t->part[i];
        char name[256];
        if (p->multipart)
            continue;
        bool nested = level == 0 && strcmp(p->type, "message/rfc822") == 0;
        if (!nested && !part_is_report(p, name, sizeof name))
            continue;
        if (nested)
            name[0] = '\0';
        struct buf b;
        buf_init(&b, nested ? MAIL_MAX_MESSAGE_SIZE : DMARC_FEEDBACK_MAX_INPUT);
        if (mime_decode_body(p, &b) != 0) {
            /* decoded, it would be at most this long: was it the cap? */
            size_t most = p->cte == MIME_CTE_BASE64 ? p->body.len / 4 * 3 : p->body.len;
            walk_error(w, name, most <= b.cap ? "the attachment's encoding is invalid"
                                : nested      ? "the attached message is too large"
                                              : "the attachment is larger than 32 MiB");
            buf_free(&b);
            continue;
        }
        if (nested) {
            walk_message(w, b.data ? b.data : "", b.len, level + 1);
        } else {
            if (dmarc_feedback_parse((const unsigned char *)b.data, b.len, &w->out[w->count],
                                     why, sizeof why) == 0)
                w->count++;
            else
                walk_error(w, name, why);
        }
        buf_free(&b);
    }
    free(t);
}

size_t dmarc_feedback_from_message(const char *msg, size_t len, struct dmarc_feedback *out,
                                   size_t max, char *err, size_t errlen)
{
    struct msg_walk w = { .out = out, .max = max, .err = err, .errlen = errlen };
    if (err && errlen)
        err[0] = '\0';
    if (max == 0)
        return 0;
    walk_message(&w, msg, len, 0);
    if (w.count == 0 && !w.have_err)
        fail(err, errlen, "no DMARC report is attached (no gzip, zip or XML part)");
    return w.count;
}

/* ---- JSON ------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *time_json(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char s[32];
    if (!gmtime_r(&tt, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_null();
    return json_string(s);
}

static json_t *row_json(const struct dmarc_feedback_row *r)
{
    json_t *dkim = json_array(), *spf = json_array();
    for (size_t i = 0; i < r->ndkim; i++)
        json_array_append_new(dkim, json_pack("{s:o,s:o,s:o}",
                                              "domain", str_or_null(r->dkim[i].domain),
                                              "selector", str_or_null(r->dkim[i].selector),
                                              "result", str_or_null(r->dkim[i].result)));
    for (size_t i = 0; i < r->nspf; i++)
        json_array_append_new(spf, json_pack("{s:o,s:o,s:o}",
                                             "domain", str_or_null(r->spf[i].domain),
                                             "scope", str_or_null(r->spf[i].scope),
                                             "result", str_or_null(r->spf[i].result)));
    json_t *reason = r->reason_type[0] || r->reason_comment[0]
                         ? json_pack("{s:o,s:o}", "type", str_or_null(r->reason_type),
                                     "comment", str_or_null(r->reason_comment))
                         : json_null();
    return json_pack("{s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:o,s:o}}",
                     "source_ip", r->source_ip,
                     "count", (json_int_t)r->count,
                     "disposition", str_or_null(r->disposition),
                     "dkim", str_or_null(r->dkim_eval),
                     "spf", str_or_null(r->spf_eval),
                     "reason", reason,
                     "header_from", str_or_null(r->header_from),
                     "envelope_from", str_or_null(r->envelope_from),
                     "envelope_to", str_or_null(r->envelope_to),
                     "auth_results", "dkim", dkim, "spf", spf);
}

json_t *dmarc_feedback_json(const struct dmarc_feedback *f)
{
    json_t *records = json_array();
    if (!records)
        return NULL;
    for (size_t i = 0; i < f->nrows; i++) {
        json_t *r = row_json(&f->rows[i]);
        if (!r || json_array_append_new(records, r) != 0) {
            json_decref(records);
            return NULL;
        }
    }
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:{s:o,s:o,s:o,s:o,s:o,s:I,s:o},s:o,s:I,s:o}",
                     "org_name", str_or_null(f->org_name),
                     "email", str_or_null(f->email),
                     "report_id", str_or_null(f->report_id),
                     "begin", time_json(f->begin),
                     "end", time_json(f->end),
                     "policy",
                     "domain", str_or_null(f->domain),
                     "adkim", str_or_null(f->adkim),
                     "aspf", str_or_null(f->aspf),
                     "p", str_or_null(f->p),
                     "sp", str_or_null(f->sp),
                     "pct", (json_int_t)f->pct,
                     "fo", str_or_null(f->fo),
                     "records", records,
                     "skipped_records", (json_int_t)f->nskipped,
                     "skipped_reason", str_or_null(f->skipped_reason));
}

/* ---- the summary ------------------------------------------------------ */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static json_int_t jint(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v;
}

static bool row_passed(const struct dmarc_feedback_row *r)
{
    return strcmp(r->dkim_eval, "pass") == 0 || strcmp(r->spf_eval, "pass") == 0;
}

static int by_ip(const void *a, const void *b)
{
    const struct dmarc_feedback_row *x = *(const struct dmarc_feedback_row *const *)a;
    const struct dmarc_feedback_row *y = *(const struct dmarc_feedback_row *const *)b;
    return strcmp(x->source_ip, y->source_ip);
}

struct source {
    const char *ip;
    uint64_t messages, passed, dkim_passed, spf_passed;
    json_t *json;
};

static int by_messages(const void *a, const void *b)
{
    const struct source *x = a, *y = b;
    if (x->messages != y->messages)
        return x->messages > y->messages ? -1 : 1;
    return strcmp(x->ip, y->ip);
}

static int by_failed(const void *a, const void *b)
{
    const struct source *x = *(const struct source *const *)a;
    const struct source *y = *(const struct source *const *)b;
    uint64_t fx = x->messages - x->passed, fy = y->messages - y->passed;
    if (fx != fy)
        return fx > fy ? -1 : 1;
    return strcmp(x->ip, y->ip);
}

/* Adds count to key in a small {keyword: N} object (at most max keys). */
static void count_key(json_t *obj, const char *key, uint64_t count, size_t max)
{
    json_t *v = json_object_get(obj, key);
    if (v)
        json_integer_set(v, jint(sat_add((uint64_t)json_integer_value(v), count)));
    else if (json_object_size(obj) < max)
        json_object_set_new(obj, key, json_integer(jint(count)));
}

static void add_distinct(json_t *arr, const char *s, size_t max)
{
    if (!s[0] || json_array_size(arr) >= max)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (strcmp(json_string_value(v), s) == 0)
            return;
    json_array_append_new(arr, json_string(s));
}

/* The source made of rows[from, to) (same address). */
static int make_source(struct source *s, const struct dmarc_feedback_row *const *rows,
                       size_t from, size_t to)
{
    json_t *disp = json_object(), *reasons = json_array(), *hfrom = json_array();
    if (!disp || !reasons || !hfrom) {
        json_decref(disp);
        json_decref(reasons);
        json_decref(hfrom);
        return -1;
    }
    s->ip = rows[from]->source_ip;
    for (size_t i = from; i < to; i++) {
        const struct dmarc_feedback_row *r = rows[i];
        s->messages = sat_add(s->messages, r->count);
        if (row_passed(r))
            s->passed = sat_add(s->passed, r->count);
        if (strcmp(r->dkim_eval, "pass") == 0)
            s->dkim_passed = sat_add(s->dkim_passed, r->count);
        if (strcmp(r->spf_eval, "pass") == 0)
            s->spf_passed = sat_add(s->spf_passed, r->count);
        count_key(disp, r->disposition[0] ? r->disposition : "unknown", r->count,
                  SUMMARY_MAX_KEYWORDS);
        add_distinct(reasons, r->reason_type, SUMMARY_MAX_KEYWORDS);
        add_distinct(hfrom, r->header_from, SUMMARY_MAX_HEADER_FROM);
    }
    s->json = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o}",
                        "source_ip", s->ip,
                        "messages", jint(s->messages),
                        "passed", jint(s->passed),
                        "failed", jint(s->messages - s->passed),
                        "dkim_passed", jint(s->dkim_passed),
                        "spf_passed", jint(s->spf_passed),
                        "dispositions", disp,
                        "reasons", reasons,
                        "header_from", hfrom);
    return s->json ? 0 : -1;
}

json_t *dmarc_feedback_summary(const struct dmarc_feedback *reports, size_t n)
{
    size_t total = 0;
    const char *domain = n ? reports[0].domain : NULL;
    int64_t begin = 0, end = 0;
    for (size_t i = 0; i < n; i++) {
        total += reports[i].nrows;
        if (domain && strcmp(domain, reports[i].domain) != 0)
            domain = NULL;
        if (i == 0 || reports[i].begin < begin)
            begin = reports[i].begin;
        if (i == 0 || reports[i].end > end)
            end = reports[i].end;
    }
    const struct dmarc_feedback_row **rows = malloc((total ? total : 1) * sizeof *rows);
    struct source *src = calloc(total ? total : 1, sizeof *src);
    const struct source **failing = malloc((total ? total : 1) * sizeof *failing);
    json_t *sources = json_array(), *fails = json_array(), *out = NULL;
    if (!rows || !src || !failing || !sources || !fails)
        goto done;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < reports[i].nrows; j++)
            rows[k++] = &reports[i].rows[j];
    qsort(rows, total, sizeof *rows, by_ip);

    size_t nsrc = 0, nfail = 0;
    uint64_t messages = 0, passed = 0;
    for (size_t i = 0; i < total;) {
        size_t j = i + 1;
        while (j < total && strcmp(rows[j]->source_ip, rows[i]->source_ip) == 0)
            j++;
        if (make_source(&src[nsrc], rows, i, j) != 0)
            goto done;
        messages = sat_add(messages, src[nsrc].messages);
        passed = sat_add(passed, src[nsrc].passed);
        nsrc++;
        i = j;
    }
    qsort(src, nsrc, sizeof *src, by_messages);
    for (size_t i = 0; i < nsrc; i++) {
        json_array_append(sources, src[i].json);
        if (src[i].messages > src[i].passed)
            failing[nfail++] = &src[i];
    }
    qsort(failing, nfail, sizeof *failing, by_failed);
    for (size_t i = 0; i < nfail; i++)
        json_array_append_new(fails, json_string(failing[i]->ip));
    out = json_pack("{s:o,s:I,s:o,s:o,s:I,s:I,s:I,s:O,s:O}",
                    "domain", domain && domain[0] ? json_string(domain) : json_null(),
                    "reports", (json_int_t)n,
                    "begin", n ? time_json(begin) : json_null(),
                    "end", n ? time_json(end) : json_null(),
                    "messages", jint(messages),
                    "passed", jint(passed),
                    "failed", jint(messages - passed),
                    "sources", sources,
                    "failing_sources", fails);
done:
    if (src)
        for (size_t i = 0; i < total; i++)
            json_decref(src[i].json);
    json_decref(sources);
    json_decref(fails);
    free(rows);
    free(src);
    free(failing);
    return out;
}
