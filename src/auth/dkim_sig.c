/* DKIM-Signature fields (RFC 6376 §3.5): the tag-list checked tag by tag
 * into a struct dkim_sig, with a reason for every rejection. What can be
 * read (d=, s=, a=, i=, b= prefix) is kept even when the field is broken,
 * so that a permerror still names its signature. */
#include <string.h>

#include "auth/dkim_internal.h"

bool dkim_list_has(struct sv list, const char *word);
int dkim_canon_parse_sv(struct sv text, enum dkim_canon *header, enum dkim_canon *body);

static int clip(size_t n) { return (int)(n > 64 ? 64 : n); }

static void copy_sv(char *dst, size_t cap, struct sv v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[n] = '\0';
}

/* A decimal of up to 20 digits that fits in 64 bits (t=, x= are at most 12
 * digits, l= at most 76 by the grammar). */
static bool dec64(struct sv v, uint64_t *out)
{
    if (v.len == 0 || v.len > 20)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(v.p[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

static bool fws_char(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static struct sv trim(struct sv v)
{
    while (v.len && fws_char(v.p[0])) {
        v.p++;
        v.len--;
    }
    while (v.len && fws_char(v.p[v.len - 1]))
        v.len--;
    return v;
}

static int parse_h(struct sv h, struct dkim_sig *s, char *err, size_t errlen)
{
    bool from = false;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < h.len && h.p[j] != ':')
            j++;
        struct sv name = trim(sv_sub(h, i, j));
        if (!mail_field_name_valid(name))
            return dkim_err(err, errlen, "h= holds an invalid header field name '%.*s'",
                            clip(name.len), name.p);
        if (s->nnames == DKIM_MAX_SIGNED_HEADERS)
            return dkim_err(err, errlen, "h= names more than %d fields", DKIM_MAX_SIGNED_HEADERS);
        s->names[s->nnames++] = name;
        if (sv_eq_ci_cstr(name, "from"))
            from = true;
        if (j >= h.len)
            break;
        i = j + 1;
    }
    if (!from)
        return dkim_err(err, errlen, "h= does not include From (RFC 6376 §5.4)");
    return 0;
}

/* Is sub equal to dom or a subdomain of it (case-insensitive)? */
static bool within(struct sv sub, struct sv dom)
{
    if (sub.len == dom.len)
        return sv_eq_ci(sub, dom);
    if (sub.len < dom.len + 1)
        return false;
    return sub.p[sub.len - dom.len - 1] == '.' &&
           sv_eq_ci(sv_sub(sub, sub.len - dom.len, sub.len), dom);
}

int dkim_sig_parse(const char *field, size_t len, struct dkim_sig *s, char *err, size_t errlen)
{
    s->nnames = 0;
    s->domain[0] = s->selector[0] = s->identity[0] = s->algorithm[0] = s->b_prefix[0] = '\0';
    s->blen = 0;
    s->has_l = s->has_t = s->has_x = false;
    s->hc = s->bc = DKIM_CANON_SIMPLE;
    s->alg = DKIM_ALG_RSA_SHA256;
    if (len > DKIM_MAX_SIG_FIELD_LEN)
        return dkim_err(err, errlen, "DKIM-Signature longer than %d octets", DKIM_MAX_SIG_FIELD_LEN);
    const char *colon = memchr(field, ':', len);
    if (!colon)
        return dkim_err(err, errlen, "not a header field");
    size_t voff = (size_t)(colon - field) + 1;
    struct dkim_taglist tl;
    char why[160];
    if (dkim_taglist_parse(field + voff, len - voff, &tl, why, sizeof why) != 0)
        return dkim_err(err, errlen, "signature syntax: %s", why);

    /* What names the signature, first. */
    const struct dkim_tag *d = dkim_taglist_find(&tl, "d");
    const struct dkim_tag *sel = dkim_taglist_find(&tl, "s");
    const struct dkim_tag *a = dkim_taglist_find(&tl, "a");
    const struct dkim_tag *b = dkim_taglist_find(&tl, "b");
    const struct dkim_tag *i = dkim_taglist_find(&tl, "i");
    if (d)
        copy_sv(s->domain, sizeof s->domain, d->value);
    if (sel)
        copy_sv(s->selector, sizeof s->selector, sel->value);
    if (a)
        copy_sv(s->algorithm, sizeof s->algorithm, a->value);
    if (b) {
        size_t n = 0;
        for (size_t k = 0; k < b->value.len && n < DKIM_B_PREFIX_LEN; k++)
            if (!fws_char(b->value.p[k]))
                s->b_prefix[n++] = b->value.p[k];
        s->b_prefix[n] = '\0';
        s->b_off = (size_t)(b->after_eq - field);
        s->b_len = (size_t)(b->value.p + b->value.len - b->after_eq);
    }
    if (i)
        copy_sv(s->identity, sizeof s->identity, i->value);
    else if (d && d->value.len < sizeof s->identity - 1)
        s->identity[0] = '@', copy_sv(s->identity + 1, sizeof s->identity - 1, d->value);

    const struct dkim_tag *t = dkim_taglist_find(&tl, "v");
    if (!t)
        return dkim_err(err, errlen, "signature has no v= tag");
    if (t->value.len != 1 || t->value.p[0] != '1')
        return dkim_err(err, errlen, "unsupported signature version v=%.*s", clip(t->value.len),
                        t->value.p);
    if (!a)
        return dkim_err(err, errlen, "signature has no a= tag");
    if (sv_eq_ci_cstr(a->value, "rsa-sha256"))
        s->alg = DKIM_ALG_RSA_SHA256;
    else if (sv_eq_ci_cstr(a->value, "ed25519-sha256"))
        s->alg = DKIM_ALG_ED25519_SHA256;
    else if (sv_eq_ci_cstr(a->value, "rsa-sha1"))
        s->alg = DKIM_ALG_RSA_SHA1;
    else
        return dkim_err(err, errlen, "unknown signing algorithm a=%.*s", clip(a->value.len),
                        a->value.p);
    if (!b)
        return dkim_err(err, errlen, "signature has no b= tag");
    const char *bwhy = NULL;
    if (dkim_base64_decode(b->value, s->b, sizeof s->b, &s->blen, &bwhy) != 0)
        return dkim_err(err, errlen, "b= is not valid base64 (%s)", bwhy);
    if (s->blen == 0)
        return dkim_err(err, errlen, "b= is empty");
    if (!(t = dkim_taglist_find(&tl, "bh")))
        return dkim_err(err, errlen, "signature has no bh= tag");
    unsigned char bh[64];
    size_t bhlen = 0;
    if (dkim_base64_decode(t->value, bh, sizeof bh, &bhlen, &bwhy) != 0)
        return dkim_err(err, errlen, "bh= is not valid base64 (%s)", bwhy);
    if (s->alg != DKIM_ALG_RSA_SHA1) {
        if (bhlen != DKIM_SHA256_LEN)
            return dkim_err(err, errlen, "bh= is %zu octets, a SHA-256 hash is 32", bhlen);
        memcpy(s->bh, bh, DKIM_SHA256_LEN);
    }
    if ((t = dkim_taglist_find(&tl, "c")) && dkim_canon_parse_sv(t->value, &s->hc, &s->bc) != 0)
        return dkim_err(err, errlen, "unknown canonicalization c=%.*s", clip(t->value.len),
                        t->value.p);
    if (!d)
        return dkim_err(err, errlen, "signature has no d= tag");
    if (!dkim_domain_valid(d->value))
        return dkim_err(err, errlen, "d=%.*s is not a domain name", clip(d->value.len), d->value.p);
    if (!(t = dkim_taglist_find(&tl, "h")))
        return dkim_err(err, errlen, "signature has no h= tag");
    if (parse_h(t->value, s, err, errlen) != 0)
        return -1;
    if (i) {
        struct sv iv = i->value;
        size_t at = iv.len;
        for (size_t k = iv.len; k-- > 0;)
            if (iv.p[k] == '@') {
                at = k;
                break;
            }
        if (at == iv.len)
            return dkim_err(err, errlen, "i=%.*s has no '@'", clip(iv.len), iv.p);
        struct sv idom = sv_sub(iv, at + 1, iv.len);
        if (!dkim_domain_valid(idom))
            return dkim_err(err, errlen, "i=%.*s has no valid domain", clip(iv.len), iv.p);
        if (!within(idom, d->value))
            return dkim_err(err, errlen, "i= domain %.*s is not d=%.*s or a subdomain of it",
                            clip(idom.len), idom.p, clip(d->value.len), d->value.p);
    }
    if ((t = dkim_taglist_find(&tl, "l"))) {
        if (t->value.len > 76 || !dec64(t->value, &s->l))
            return dkim_err(err, errlen, "l=%.*s is not a usable body length", clip(t->value.len),
                            t->value.p);
        s->has_l = true;
    }
    if ((t = dkim_taglist_find(&tl, "q")) && !dkim_list_has(t->value, "dns/txt"))
        return dkim_err(err, errlen, "no supported query method in q=%.*s", clip(t->value.len),
                        t->value.p);
    if (!sel)
        return dkim_err(err, errlen, "signature has no s= tag");
    if (!dkim_domain_valid(sel->value))
        return dkim_err(err, errlen, "s=%.*s is not a valid selector", clip(sel->value.len),
                        sel->value.p);
    if ((t = dkim_taglist_find(&tl, "t"))) {
        if (!dec64(t->value, &s->t))
            return dkim_err(err, errlen, "t=%.*s is not a timestamp", clip(t->value.len), t->value.p);
        s->has_t = true;
    }
    if ((t = dkim_taglist_find(&tl, "x"))) {
        if (!dec64(t->value, &s->x))
            return dkim_err(err, errlen, "x=%.*s is not a timestamp", clip(t->value.len), t->value.p);
        s->has_x = true;
    }
    if (s->has_t && s->has_x && s->x < s->t)
        return dkim_err(err, errlen, "x= is before t= (RFC 6376 §3.5)");
    return 0;
}
