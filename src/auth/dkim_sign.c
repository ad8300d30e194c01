/* DKIM signing (RFC 6376 §5, RFC 8463): the message streams through the
 * header/body splitter, the body hash is computed on the fly, and at the end
 * the DKIM-Signature field is built, its header hash computed and handed to
 * the signer (which alone holds the private key). */
#include <stdlib.h>
#include <string.h>

#include "auth/dkim_internal.h"
#include "auth/dkim_signer.h"

/* RFC 6376 §5.4.1 recommended fields, plus Message-ID and the MIME fields.
 * over: listed once more than present, so that an added copy breaks the
 * signature (§8.15). Only fields present are signed. */
static const struct {
    struct sv name;
    bool over;
} default_fields[] = {
    { SV_LIT("from"), true },        { SV_LIT("reply-to"), true },
    { SV_LIT("subject"), true },     { SV_LIT("date"), true },
    { SV_LIT("to"), true },          { SV_LIT("cc"), true },
    { SV_LIT("message-id"), true },  { SV_LIT("mime-version"), true },
    { SV_LIT("content-type"), true }, { SV_LIT("content-transfer-encoding"), true },
    { SV_LIT("resent-date"), false }, { SV_LIT("resent-from"), false },
    { SV_LIT("resent-to"), false },  { SV_LIT("resent-cc"), false },
    { SV_LIT("in-reply-to"), false }, { SV_LIT("references"), false },
    { SV_LIT("list-id"), false },    { SV_LIT("list-help"), false },
    { SV_LIT("list-unsubscribe"), false }, { SV_LIT("list-unsubscribe-post"), false },
    { SV_LIT("list-subscribe"), false }, { SV_LIT("list-post"), false },
    { SV_LIT("list-owner"), false }, { SV_LIT("list-archive"), false },
};

struct dkim_sign_ctx {
    struct dkim_signer *signer;
    struct dkim_sign_options opt;
    char *strings;                 /* the option strings, copied */
    struct mail_splitter split;
    struct dkim_body body;
    size_t nnames;                 /* user's h= names (NULL headers: 0) */
    struct sv names[DKIM_MAX_SIGNED_HEADERS];
};

static char *dup_into(char **pos, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = *pos;
    memcpy(d, s, n);
    *pos += n;
    return d;
}

static bool within(struct sv sub, struct sv dom)
{
    if (sub.len == dom.len)
        return sv_eq_ci(sub, dom);
    return sub.len > dom.len + 1 && sub.p[sub.len - dom.len - 1] == '.' &&
           sv_eq_ci(sv_sub(sub, sub.len - dom.len, sub.len), dom);
}

static int check_options(const struct dkim_sign_options *o, struct dkim_sign_ctx *ctx,
                         char *err, size_t errlen)
{
    if (!o->domain || !dkim_domain_valid(sv_cstr(o->domain)))
        return dkim_err(err, errlen, "domain '%s' is not a valid domain name",
                        o->domain ? o->domain : "");
    if (!o->selector || !dkim_domain_valid(sv_cstr(o->selector)))
        return dkim_err(err, errlen, "selector '%s' is not valid (letters, digits, '-', '_', "
                                     "dots)", o->selector ? o->selector : "");
    if (o->identity) {
        const char *at = strrchr(o->identity, '@');
        if (!at)
            return dkim_err(err, errlen, "identity '%s' has no '@'", o->identity);
        for (const char *c = o->identity; *c; c++)
            if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == ';')
                return dkim_err(err, errlen, "identity '%s' holds a character not allowed "
                                             "in i=", o->identity);
        if (!dkim_domain_valid(sv_cstr(at + 1)) ||
            !within(sv_cstr(at + 1), sv_cstr(o->domain)))
            return dkim_err(err, errlen, "identity '%s' is not in %s or a subdomain of it",
                            o->identity, o->domain);
    }
    if (o->headers) {
        struct sv h = sv_cstr(o->headers);
        bool from = false;
        size_t i = 0;
        for (;;) {
            size_t j = i + sv_find(sv_sub(h, i, h.len), ':');
            struct sv name = sv_sub(h, i, j);
            if (!mail_field_name_valid(name))
                return dkim_err(err, errlen, "--headers: '%.*s' is not a header field name",
                                (int)(name.len > 64 ? 64 : name.len), name.p);
            if (ctx->nnames == DKIM_MAX_SIGNED_HEADERS)
                return dkim_err(err, errlen, "--headers names more than %d fields",
                                DKIM_MAX_SIGNED_HEADERS);
            ctx->names[ctx->nnames++] = name;
            from = from || sv_eq_ci_cstr(name, "from");
            if (j >= h.len)
                break;
            i = j + 1;
        }
        if (!from)
            return dkim_err(err, errlen, "the signed headers must include From (RFC 6376 §5.4)");
    }
    return 0;
}

struct dkim_sign_ctx *dkim_sign_begin(struct dkim_signer *signer,
                                      const struct dkim_sign_options *opt,
                                      enum dkim_status *status, char *err, size_t errlen)
{
    *status = DKIM_ESYS;
    size_t slen = 0;
    const char *strs[] = { opt->domain, opt->selector, opt->headers, opt->identity };
    for (size_t i = 0; i < 4; i++)
        slen += strs[i] ? strlen(strs[i]) + 1 : 0;
    /* Not calloc: the body's 8 KiB stage and the h= names need no zeroing
     * (dkim_body_init sets the rest of the body; nnames counts the names). */
    struct dkim_sign_ctx *ctx = malloc(sizeof *ctx);
    char *strings = malloc(slen + 1);
    if (!ctx || !strings) {
        free(ctx);
        free(strings);
        dkim_err(err, errlen, "out of memory");
        return NULL;
    }
    ctx->nnames = 0;
    ctx->body.md = NULL;   /* dkim_sign_free before dkim_body_init */
    ctx->signer = signer;
    ctx->opt = *opt;
    ctx->strings = strings;
    char *pos = strings;
    ctx->opt.domain = dup_into(&pos, opt->domain);
    ctx->opt.selector = dup_into(&pos, opt->selector);
    ctx->opt.headers = dup_into(&pos, opt->headers);
    ctx->opt.identity = dup_into(&pos, opt->identity);
    mail_splitter_init(&ctx->split, MAIL_MAX_HEADER_SECTION);
    if (check_options(&ctx->opt, ctx, err, errlen) != 0) {
        *status = DKIM_EINPUT;
        dkim_sign_free(ctx);
        return NULL;
    }
    if (dkim_body_init(&ctx->body, opt->body_canon, -1, NULL) != 0) {
        dkim_err(err, errlen, "cannot set up SHA-256");
        dkim_sign_free(ctx);
        return NULL;
    }
    *status = DKIM_OK;
    return ctx;
}

void dkim_sign_free(struct dkim_sign_ctx *ctx)
{
    if (!ctx)
        return;
    mail_splitter_free(&ctx->split);
    dkim_body_free(&ctx->body);
    free(ctx->strings);
    free(ctx);
}

enum dkim_status dkim_sign_write(struct dkim_sign_ctx *ctx, const char *p, size_t len)
{
    if (!ctx->split.in_body) {
        size_t used = mail_splitter_feed(&ctx->split, p, len);
        if (used == (size_t)-1)
            return DKIM_ESYS;
        p += used;
        len -= used;
    }
    if (len && dkim_body_update(&ctx->body, p, len) != 0)
        return DKIM_ESYS;
    return DKIM_OK;
}

/* Appends v in decimal (what "%lld" writes). */
static int append_int(struct buf *out, long long v)
{
    char d[24];
    size_t i = sizeof d;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        d[--i] = '-';
    return buf_append(out, d + i, sizeof d - i);
}

/* Appends "name:name:..." folding before a name that would pass column 76. */
static int append_names(struct buf *out, const struct sv *names, size_t n, size_t *col)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            if (buf_append_char(out, ':') != 0)
                return -1;
            (*col)++;
        }
        if (*col + names[i].len > 76) {
            if (buf_append(out, "\r\n\t", 3) != 0)
                return -1;
            *col = 1;
        }
        if (buf_append(out, names[i].p, names[i].len) != 0)
            return -1;
        *col += names[i].len;
    }
    return 0;
}

enum dkim_status dkim_sign_finish(struct dkim_sign_ctx *ctx, struct buf *out, char *err,
                                  size_t errlen)
{
    const struct dkim_sign_options *o = &ctx->opt;
    unsigned char bh[DKIM_SHA256_LEN], digest[DKIM_SHA256_LEN], sig[DKIM_MAX_SIG_LEN];
    size_t siglen = 0;
    enum dkim_status st = DKIM_ESYS;
    struct mail_field few_fields[64], *fields = NULL, *heap_fields = NULL;
    /* On the stack: the field (at most DKIM_MAX_SIG_FIELD_LEN) and b= in
     * base64 need no growing heap buffers. */
    char hdr_mem[DKIM_MAX_SIG_FIELD_LEN + 1], b64_mem[(DKIM_MAX_SIG_LEN + 2) / 3 * 4 + 1];
    struct buf hdr, scratch;
    buf_init_fixed(&hdr, hdr_mem, sizeof hdr_mem);
    buf_init_fixed(&scratch, b64_mem, sizeof b64_mem);

    if (ctx->split.overflow) {
        dkim_err(err, errlen, "header section larger than %d octets", MAIL_MAX_HEADER_SECTION);
        st = DKIM_EINPUT;
        goto out;
    }
    if (dkim_body_final(&ctx->body, bh) != 0) {
        dkim_err(err, errlen, "body hash failed");
        goto out;
    }
    /* Most messages have a few dozen fields: a stack array, the full
     * MAIL_MAX_HEADERS one only when needed. */
    const char *head = ctx->split.head.data ? ctx->split.head.data : "";
    size_t nfields = 0;
    fields = few_fields;
    mail_header_fields(head, ctx->split.head.len, fields, sizeof few_fields / sizeof few_fields[0],
                       &nfields, NULL);
    if (nfields > sizeof few_fields / sizeof few_fields[0]) {
        if (!(fields = heap_fields = malloc(MAIL_MAX_HEADERS * sizeof *fields))) {
            dkim_err(err, errlen, "out of memory");
            goto out;
        }
        mail_header_fields(head, ctx->split.head.len, fields, MAIL_MAX_HEADERS, &nfields, NULL);
    }
    if (nfields > MAIL_MAX_HEADERS) {
        dkim_err(err, errlen, "more than %d header fields", MAIL_MAX_HEADERS);
        st = DKIM_EINPUT;
        goto out;
    }
    size_t nfrom = 0;
    for (size_t i = 0; i < nfields; i++)
        nfrom += dkim_name_eq(fields[i].name, SV_LIT("from"));
    if (nfrom == 0) {
        dkim_err(err, errlen, "the message has no From header field (RFC 6376 §5.4)");
        st = DKIM_EINPUT;
        goto out;
    }

    /* h= */
    struct sv defnames[DKIM_MAX_SIGNED_HEADERS];
    const struct sv *names = ctx->names;
    size_t nnames = ctx->nnames;
    if (!o->headers) {
        nnames = 0;
        for (size_t d = 0; d < sizeof default_fields / sizeof default_fields[0]; d++) {
            size_t present = 0;
            for (size_t i = 0; i < nfields; i++)
                present += dkim_name_eq(fields[i].name, default_fields[d].name);
            size_t times = present ? present + (default_fields[d].over ? 1 : 0) : 0;
            for (size_t k = 0; k < times && nnames < DKIM_MAX_SIGNED_HEADERS; k++)
                defnames[nnames++] = default_fields[d].name;
        }
        names = defnames;
    }

    /* The field without b='s value. */
    enum dkim_algorithm alg = dkim_signer_algorithm(ctx->signer);
    /* Appended piece by piece: buf_printf's vsnprintf cost more than the
     * rest of the field. */
    int ok = buf_append_str(&hdr, "DKIM-Signature: v=1; a=") == 0 &&
             buf_append_str(&hdr, dkim_algorithm_name(alg)) == 0 &&
             buf_append_str(&hdr, "; c=") == 0 &&
             buf_append_str(&hdr, dkim_canon_name(o->header_canon)) == 0 &&
             buf_append_char(&hdr, '/') == 0 &&
             buf_append_str(&hdr, dkim_canon_name(o->body_canon)) == 0 &&
             buf_append_str(&hdr, "; d=") == 0 && buf_append_str(&hdr, o->domain) == 0 &&
             buf_append_str(&hdr, "; s=") == 0 && buf_append_str(&hdr, o->selector) == 0 &&
             buf_append_str(&hdr, ";\r\n\tt=") == 0 && append_int(&hdr, (long long)o->now) == 0 &&
             buf_append_char(&hdr, ';') == 0;
    if (ok && o->expire)
        ok = buf_append_str(&hdr, " x=") == 0 &&
             append_int(&hdr, (long long)o->now + (long long)o->expire) == 0 &&
             buf_append_char(&hdr, ';') == 0;
    if (ok && o->identity)
        ok = buf_append_str(&hdr, " i=") == 0 && buf_append_str(&hdr, o->identity) == 0 &&
             buf_append_char(&hdr, ';') == 0;
    if (ok && o->body_length)
        ok = buf_printf(&hdr, " l=%llu;", (unsigned long long)ctx->body.total) == 0;
    size_t col = 3;
    ok = ok && buf_append(&hdr, "\r\n\th=", 5) == 0 &&
         append_names(&hdr, names, nnames, &col) == 0 && buf_append(&hdr, ";\r\n\tbh=", 7) == 0 &&
         dkim_base64_encode(bh, sizeof bh, &hdr) == 0 && buf_append(&hdr, ";\r\n\tb=", 6) == 0;
    if (!ok) {
        dkim_err(err, errlen, "DKIM-Signature field too long");
        st = DKIM_EINPUT;
        goto out;
    }
    if (dkim_header_digest(o->header_canon, fields, nfields, names, nnames, hdr.data, hdr.len,
                           NULL, digest) != 0) {
        dkim_err(err, errlen, "header hash failed");
        goto out;
    }
    if (dkim_signer_sign(ctx->signer, digest, sig, &siglen) != 0) {
        dkim_err(err, errlen, "signing failed");
        goto out;
    }
    buf_reset(&scratch);
    if (dkim_base64_encode(sig, siglen, &scratch) != 0)
        goto out;
    /* b= folded at 72 columns. */
    col = 3;
    for (size_t i = 0; i < scratch.len;) {
        size_t n = scratch.len - i < 72 - col ? scratch.len - i : 72 - col;
        if (buf_append(&hdr, scratch.data + i, n) != 0)
            goto out;
        i += n;
        if (i < scratch.len) {
            if (buf_append(&hdr, "\r\n\t", 3) != 0)
                goto out;
            col = 1;
        }
    }
    if (buf_append(&hdr, "\r\n", 2) != 0 || buf_append(out, hdr.data, hdr.len) != 0) {
        dkim_err(err, errlen, "out of memory");
        goto out;
    }
    st = DKIM_OK;
out:
    free(heap_fields);
    buf_free(&hdr);
    buf_free(&scratch);
    return st;
}

enum dkim_status dkim_sign_message(struct dkim_signer *signer,
                                   const struct dkim_sign_options *opt,
                                   const char *msg, size_t len, struct buf *out,
                                   char *err, size_t errlen)
{
    enum dkim_status st;
    struct dkim_sign_ctx *ctx = dkim_sign_begin(signer, opt, &st, err, errlen);
    if (!ctx)
        return st;
    st = dkim_sign_write(ctx, msg, len);
    if (st == DKIM_OK)
        st = dkim_sign_finish(ctx, out, err, errlen);
    else
        dkim_err(err, errlen, "out of memory");
    dkim_sign_free(ctx);
    return st;
}
