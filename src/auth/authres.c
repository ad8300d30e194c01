/* Authentication-Results writer and authserv-id matcher (RFC 8601 §2.2,
 * §2.7; header.b from RFC 6008). Values are written as RFC 8601 tokens or
 * quoted strings; comments have '(' ')' '\' escaped. */
#include "auth/authres.h"

#include <string.h>
#include <strings.h>

/* pvalue (RFC 8601 §2.2): written bare when it is a token or an
 * addr-spec / domain ('@', '.' and '/' allowed), else as a quoted-string. */
static int put_value(struct buf *b, const char *v)
{
    bool token = v[0] != '\0';
    for (const char *p = v; *p && token; p++)
        token = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f &&
                !strchr("()<>,;:\\\"[]?= ", *p);
    if (token)
        return buf_append_str(b, v);
    if (buf_append_char(b, '"') != 0)
        return -1;
    for (const char *p = v; *p; p++) {
        if ((*p == '"' || *p == '\\') && buf_append_char(b, '\\') != 0)
            return -1;
        if (buf_append_char(b, (unsigned char)*p < 0x20 ? ' ' : *p) != 0)
            return -1;
    }
    return buf_append_char(b, '"');
}

static int put_comment(struct buf *b, const char *text)
{
    if (!text || !text[0])
        return 0;
    if (buf_append_str(b, " (") != 0)
        return -1;
    for (const char *p = text; *p; p++) {
        if ((*p == '(' || *p == ')' || *p == '\\') && buf_append_char(b, '\\') != 0)
            return -1;
        if (buf_append_char(b, (unsigned char)*p < 0x20 ? ' ' : *p) != 0)
            return -1;
    }
    return buf_append_char(b, ')');
}

static int put_prop(struct buf *b, const char *name, const char *value)
{
    if (!value || !value[0])
        return 0;
    if (buf_append_char(b, ' ') != 0 || buf_append_str(b, name) != 0 ||
        buf_append_char(b, '=') != 0)
        return -1;
    return put_value(b, value);
}

static int separator(struct buf *b, bool folded)
{
    return buf_append_str(b, folded ? ";\r\n\t" : "; ");
}

int authres_format(const struct authres_input *in, bool folded, struct buf *out)
{
    buf_reset(out);
    int rc = buf_append_str(out, "Authentication-Results: ");
    rc |= put_value(out, in->authserv_id && in->authserv_id[0] ? in->authserv_id : "localhost");
    bool any = false;
    if (in->spf) {
        rc |= separator(out, folded);
        rc |= buf_printf(out, "spf=%s", spf_result_name(in->spf->result));
        rc |= put_comment(out, in->spf->problem[0] ? in->spf->problem
                               : in->spf->mechanism[0] ? in->spf->mechanism : NULL);
        if (in->mailfrom && in->mailfrom[0])
            rc |= put_prop(out, "smtp.mailfrom", in->mailfrom);
        else
            rc |= put_prop(out, "smtp.helo", in->helo);
        any = true;
    }
    if (in->spf_helo && in->mailfrom && in->mailfrom[0] && in->helo && in->helo[0]) {
        rc |= separator(out, folded);
        rc |= buf_printf(out, "spf=%s", spf_result_name(in->spf_helo->result));
        rc |= put_comment(out, in->spf_helo->problem[0] ? in->spf_helo->problem
                               : in->spf_helo->mechanism[0] ? in->spf_helo->mechanism : NULL);
        rc |= put_prop(out, "smtp.helo", in->helo);
        any = true;
    }
    if (in->dkim) {
        if (in->dkim->count == 0) {
            rc |= separator(out, folded);
            rc |= buf_append_str(out, "dkim=none");
        }
        for (size_t i = 0; i < in->dkim->count; i++) {
            const struct dkim_signature_result *s = &in->dkim->sigs[i];
            rc |= separator(out, folded);
            rc |= buf_printf(out, "dkim=%s", dkim_result_name(s->result));
            rc |= put_comment(out, s->reason);
            rc |= put_prop(out, "header.d", s->domain);
            rc |= put_prop(out, "header.s", s->selector);
            rc |= put_prop(out, "header.a", s->algorithm);
            rc |= put_prop(out, "header.b", s->b_prefix);
        }
        any = true;
    }
    if (in->dmarc) {
        const struct dmarc_outcome *d = in->dmarc;
        rc |= separator(out, folded);
        rc |= buf_printf(out, "dmarc=%s", dmarc_result_name(d->result));
        if (d->policy != DMARC_P_UNSET)
            rc |= buf_printf(out, " (p=%s dis=%s)", dmarc_policy_name(d->policy),
                             dmarc_policy_name(d->disposition));
        else
            rc |= put_comment(out, d->reason);
        rc |= put_prop(out, "header.from", d->from_domain);
        if (d->policy != DMARC_P_UNSET)
            rc |= put_prop(out, "policy.dmarc", dmarc_policy_name(d->policy));
        any = true;
    }
    if (!any) {
        rc |= separator(out, folded);
        rc |= buf_append_str(out, "none");
    }
    return rc ? -1 : 0;
}

bool authres_claims_id(struct sv v, const char *authserv_id)
{
    size_t i = 0;
    for (;;) { /* CFWS */
        while (i < v.len && strchr(" \t\r\n", v.p[i]))
            i++;
        if (i < v.len && v.p[i] == '(') {
            int depth = 0;
            for (; i < v.len; i++) {
                if (v.p[i] == '\\') {
                    i++;
                    continue;
                }
                depth += v.p[i] == '(' ? 1 : v.p[i] == ')' ? -1 : 0;
                if (depth == 0) {
                    i++;
                    break;
                }
            }
            continue;
        }
        break;
    }
    size_t start = i;
    char quoted[256];
    size_t qn = 0;
    struct sv id;
    if (i < v.len && v.p[i] == '"') {
        for (i++; i < v.len && v.p[i] != '"' && qn + 1 < sizeof quoted; i++) {
            if (v.p[i] == '\\' && i + 1 < v.len)
                i++;
            quoted[qn++] = v.p[i];
        }
        id = sv_make(quoted, qn);
    } else {
        while (i < v.len && !strchr(" \t\r\n;(", v.p[i]))
            i++;
        id = sv_sub(v, start, i);
    }
    return id.len > 0 && sv_eq_ci_cstr(id, authserv_id);
}
