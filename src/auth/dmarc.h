/* DMARC (RFC 7489): record parsing, policy discovery through the
 * organizational domain (Public Suffix List, libpsl), identifier alignment
 * and the disposition with pct sampling.
 *
 * Pure like the rest of auth/: DNS through the dns_resolver interface, the
 * sampling through a random source the caller passes (tests fix it). */
#ifndef SESAME_AUTH_DMARC_H
#define SESAME_AUTH_DMARC_H
#include <stdbool.h>
#include <stddef.h>

#include "auth/dkim.h"
#include "auth/spf.h"
#include "dns/dns.h"
#include "util/limits.h"

enum dmarc_result { DMARC_NONE = 0, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };
enum dmarc_policy { DMARC_P_UNSET = 0, DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };
enum dmarc_align { DMARC_ALIGN_RELAXED = 0, DMARC_ALIGN_STRICT };

#define DMARC_MAX_URIS 8
#define DMARC_MAX_WARNINGS 8

struct dmarc_uri {
    char uri[DNS_MAX_NAME_LEN + 80]; /* "mailto:addr" without the !size */
    char domain[DNS_MAX_NAME_LEN + 1]; /* of a mailto: URI, lower case */
    unsigned long long max_size;       /* !size in bytes, 0 = no limit */
};

struct dmarc_record {
    enum dmarc_policy p, sp;        /* sp UNSET: p applies to subdomains */
    enum dmarc_align adkim, aspf;
    unsigned pct;                   /* 0..100, default 100 */
    struct dmarc_uri rua[DMARC_MAX_URIS], ruf[DMARC_MAX_URIS];
    size_t nrua, nruf;
    char fo[16];                    /* default "0" */
    unsigned long ri;               /* default 86400 */
    /* problems that did not make the record unusable, in words */
    char warnings[DMARC_MAX_WARNINGS][160];
    size_t nwarnings;
};

/* Whether txt starts like a DMARC record: "v" *WSP "=" *WSP "DMARC1" and
 * then ';', white space or the end (§6.6.3 discards the others). */
bool dmarc_is_record(const char *txt, size_t len);

/* Parses a record's text. Returns 0 when it is usable (a valid p=, or an
 * invalid p= with a valid rua=, which RFC 7489 §6.6.3 reads as p=none),
 * -1 with the reason in err when it is not a DMARC record or not usable. */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *out, char *err,
                       size_t errlen);

/* The organizational domain of domain (RFC 7489 §3.2) into out: the
 * registrable domain by the Public Suffix List; domain itself when it is a
 * public suffix or unknown. Lower case, no trailing dot. */
void dmarc_org_domain(const char *domain, char *out, size_t outlen);

/* Whether a and b are aligned (strict: equal; relaxed: same org domain). */
bool dmarc_aligned(const char *a, const char *b, enum dmarc_align mode);

/* Policy discovery (§6.6.3) for from_domain. On DMARC_PASS-like success
 * returns 0 with *rec filled and policy_domain set ("" when there is no
 * record); DNS trouble returns DMARC_TEMPERROR, an unusable record
 * DMARC_PERMERROR, "none found" DMARC_NONE — each with a reason. */
enum dmarc_result dmarc_discover(struct dns_resolver *dns, const char *from_domain,
                                 struct dmarc_record *rec, char *policy_domain,
                                 size_t pdlen, char *why, size_t whylen);

/* What the DMARC check needs to know about a message. */
struct dmarc_input {
    const char *from_domain;        /* RFC5322.From domain; NULL when unusable */
    const char *from_problem;       /* why there is no usable From (NULL if there is) */
    enum spf_result spf;            /* MAIL FROM check (or HELO when MAIL FROM is null) */
    const char *spf_domain;         /* the domain SPF checked */
    const struct dkim_results *dkim;
    /* a number in [0, 100) for pct sampling; NULL → always sampled */
    unsigned (*random_percent)(void *arg);
    void *random_arg;
};

struct dmarc_outcome {
    enum dmarc_result result;
    char from_domain[DNS_MAX_NAME_LEN + 1];
    char policy_domain[DNS_MAX_NAME_LEN + 1]; /* "" when no record */
    enum dmarc_policy policy;       /* p or sp that applies; UNSET without record */
    enum dmarc_policy disposition;  /* after pct sampling: NONE, QUARANTINE, REJECT */
    bool sampled_out;               /* pct made the disposition milder */
    bool subdomain_policy;          /* sp applied (From is under the policy domain) */
    bool spf_aligned, dkim_aligned;
    char dkim_aligned_domain[DNS_MAX_NAME_LEN + 1]; /* the d= that aligned */
    enum dmarc_align adkim, aspf;
    struct dmarc_record record;     /* valid when policy_domain[0] */
    char reason[320];               /* why the result, in words */
};

/* Evaluates DMARC for one message. */
void dmarc_check(struct dns_resolver *dns, const struct dmarc_input *in,
                 struct dmarc_outcome *out);

const char *dmarc_result_name(enum dmarc_result r);  /* "pass", ... */
const char *dmarc_policy_name(enum dmarc_policy p);  /* "none", "quarantine", "reject", NULL */

#endif
