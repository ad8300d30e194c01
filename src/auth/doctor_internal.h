/* Internals shared by the domain audit's files: doctor.c (the framework,
 * MX, DKIM, DMARC, MAIL FROM, MTA-STS, TLS-RPT) and doctor_spf.c (the SPF
 * record walker). Not an API for the rest of sesame. */
#ifndef SESAME_AUTH_DOCTOR_INTERNAL_H
#define SESAME_AUTH_DOCTOR_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>

#include "auth/dmarc.h"
#include "auth/doctor.h"

/* One audit in progress. */
struct doc_ctx {
    struct dns_resolver *dns;       /* counts answers (doctor.c) */
    struct doctor_report *rep;
    bool oom;                       /* sticky: a finding could not be stored */
    char domain[DNS_MAX_NAME_LEN + 1];
    char selectors[DOCTOR_MAX_SELECTORS][DNS_MAX_NAME_LEN + 1]; /* normalised */
    size_t nselectors;
    bool guess_selectors;
    char mail_from[DNS_MAX_NAME_LEN + 1]; /* full name, "" when not checked */
    bool null_mx;                   /* the domain says it receives no mail */
    char first_mx[DNS_MAX_NAME_LEN + 2]; /* its most preferred MX host, "" if none */
    /* The DMARC record that governs the domain (for the MAIL FROM check). */
    bool dmarc_found;
    struct dmarc_record dmarc;
    char dmarc_at[DNS_MAX_NAME_LEN + 1]; /* where it was found */
};

/* A malloc'd formatted string, or NULL (ctx->oom set). */
__attribute__((format(printf, 2, 3)))
char *doc_fmt(struct doc_ctx *c, const char *fmt, ...);

/* Appends a finding; takes ownership of msg and fix (fix may be NULL).
 * A NULL msg (failed doc_fmt) records nothing. Text that is not valid
 * UTF-8, and control characters, become '?' (DNS data can hold anything). */
void doc_add(struct doc_ctx *c, enum doctor_check chk, enum doctor_status st, char *msg,
             char *fix);

/* A bounded, printable excerpt of DNS text for messages: at most max bytes,
 * "..." appended when cut. out must hold max + 4 bytes. */
const char *doc_excerpt(const char *s, size_t len, size_t max, char *out);

/* A TXT record line to publish: owner. IN TXT "value", the value split into
 * 255-byte character-strings and '"' and '\' escaped. malloc'd or NULL. */
char *doc_txt_rr(struct doc_ctx *c, const char *owner, const char *value);

/* TXT records of one name, each with its character-strings joined. */
struct doc_txt {
    char *text;          /* NUL-terminated, may hold NULs before len */
    size_t len;
    size_t nstrings;
    /* Two character-strings joined with no space where the second starts
     * like a new SPF term ("include:a.example" "include:b.example" reads
     * "include:a.exampleinclude:b.example"): offset of the join in text,
     * or 0 when there is none. */
    size_t suspicious_join;
};
struct doc_txts {
    enum dns_status status;  /* of the query; DNS_OK may still hold n == 0 (all malformed) */
    size_t n;
    struct doc_txt *recs;
};
void doc_query_txt(struct doc_ctx *c, const char *name, struct doc_txts *out);
void doc_txts_free(struct doc_txts *t);

/* Whether name has an A or AAAA record: 1 yes, 0 no, -1 the lookups failed. */
int doc_has_address(struct doc_ctx *c, const char *name);

/* The SPF audit of domain (doctor_spf.c), reported under chk (DOCTOR_SPF, or
 * DOCTOR_MAIL_FROM for the custom MAIL FROM domain, where a missing record
 * is an error rather than "missing"). Adds a finding per problem and none
 * when all is well; summary receives a one-line description of the record
 * for the caller's "ok" finding. */
void doc_spf_audit(struct doc_ctx *c, enum doctor_check chk, const char *domain,
                   char *summary, size_t sumlen);

/* DMARC, MTA-STS and TLS-RPT (doctor_policy.c). The DMARC audit fills
 * c->dmarc* for the MAIL FROM check and, when it adds no finding, summary
 * for the "ok" one; the others add their own "ok". */
void doc_audit_dmarc(struct doc_ctx *c, char *summary, size_t sumlen);
void doc_audit_mta_sts(struct doc_ctx *c);
void doc_audit_tls_rpt(struct doc_ctx *c);

#endif
