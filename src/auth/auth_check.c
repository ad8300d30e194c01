/* One message through SPF, DKIM and DMARC; see auth_check.h. */
#include "auth/auth_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/authres.h"
#include "mail/mail_address.h"
#include "mail/mail_header.h"

int auth_from_domain(const char *head, size_t len, char *domain, size_t domlen,
                     char *problem, size_t problen)
{
    size_t count = 0, nfrom = 0;
    struct mail_field *fields = malloc(MAIL_MAX_HEADERS * sizeof *fields);
    if (!fields) {
        snprintf(problem, problen, "out of memory");
        return -1;
    }
    mail_header_fields(head, len, fields, MAIL_MAX_HEADERS, &count, NULL);
    const struct mail_field *from = NULL;
    for (size_t i = 0; i < count && i < MAIL_MAX_HEADERS; i++)
        if (sv_eq_ci_cstr(fields[i].name, "From")) {
            nfrom++;
            from = &fields[i];
        }
    int rc = -1;
    domain[0] = '\0';
    if (nfrom == 0) {
        snprintf(problem, problen, "the message has no From field");
    } else if (nfrom > 1) {
        snprintf(problem, problen, "the message has %zu From fields (RFC 5322 allows one)", nfrom);
    } else {
        struct mail_address_list list;
        char err[128];
        struct sv value = mail_field_value(from);
        if (mail_address_list_parse(value.p, value.len, &list, err, sizeof err) != 0) {
            snprintf(problem, problen, "the From field cannot be parsed: %s", err);
        } else if (list.count == 0) {
            snprintf(problem, problen, "the From field has no address");
        } else if (list.count > MAIL_MAX_MAILBOXES) {
            snprintf(problem, problen, "the From field has %zu addresses", list.count);
        } else {
            rc = 0;
            for (size_t i = 1; i < list.count && rc == 0; i++)
                if (strcmp(list.box[i].domain, list.box[0].domain) != 0) {
                    snprintf(problem, problen, "the From field has addresses in different "
                             "domains (%s, %s)", list.box[0].domain, list.box[i].domain);
                    rc = -1;
                }
            const char *d = list.box[0].domain;
            if (rc == 0 && (d[0] == '[' || !dns_name_is_valid(d, strlen(d)))) {
                snprintf(problem, problen, "the From domain '%s' is not a domain name", d);
                rc = -1;
            }
            if (rc == 0)
                snprintf(domain, domlen, "%s", d);
        }
    }
    free(fields);
    return rc;
}

int auth_check_message(struct dns_resolver *dns, const struct auth_check_input *in,
                       const char *msg, size_t len, struct auth_verdict *out)
{
    memset(out, 0, sizeof *out);
    buf_init(&out->authres, 64 * 1024);

    struct spf_request req = { .ip = in->ip, .sender = in->sender, .helo = in->helo,
                               .receiver = in->authserv_id, .now = in->now };
    spf_check_mailfrom(dns, &req, &out->spf);
    if (in->check_helo && in->sender && in->sender[0] && in->helo && in->helo[0]) {
        spf_check_helo(dns, &req, &out->spf_helo);
        out->have_spf_helo = true;
    }

    struct dkim_clock clock = { .now = in->now };
    struct dkim_verify_ctx *v = dkim_verify_begin(dns, &clock);
    if (!v)
        return -1;
    if (in->keycache)
        dkim_verify_set_keycache(v, in->keycache);
    int rc = dkim_verify_write(v, msg, len);
    if (rc == 0)
        rc = dkim_verify_finish(v, &out->dkim);
    dkim_verify_free(v);
    if (rc != 0)
        return -1;

    size_t head_len, body_off;
    mail_split_message(msg, len, &head_len, &body_off);
    if (auth_from_domain(msg, head_len, out->from_domain, sizeof out->from_domain,
                         out->from_problem, sizeof out->from_problem) != 0)
        out->from_domain[0] = '\0';

    struct dmarc_input din = {
        .from_domain = out->from_domain[0] ? out->from_domain : NULL,
        .from_problem = out->from_problem,
        .spf = out->spf.result,
        .spf_domain = out->spf.domain,
        .dkim = &out->dkim,
        .random_percent = in->random_percent,
        .random_arg = in->random_arg,
    };
    dmarc_check(dns, &din, &out->dmarc);

    return auth_verdict_authres(out, in, false, &out->authres);
}

int auth_verdict_authres(const struct auth_verdict *v, const struct auth_check_input *in,
                         bool folded, struct buf *out)
{
    struct authres_input ar = { .authserv_id = in->authserv_id, .spf = &v->spf,
                                .spf_helo = v->have_spf_helo ? &v->spf_helo : NULL,
                                .mailfrom = in->sender, .helo = in->helo,
                                .dkim = &v->dkim, .dmarc = &v->dmarc };
    return authres_format(&ar, folded, out);
}

void auth_verdict_free(struct auth_verdict *v)
{
    spf_response_free(&v->spf);
    if (v->have_spf_helo)
        spf_response_free(&v->spf_helo);
    dkim_results_free(&v->dkim);
    buf_free(&v->authres);
}
