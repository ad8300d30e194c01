/* The domain audit behind `sesame doctor` (SPEC.md §1.4): what a domain
 * publishes in DNS for mail — MX, SPF, DKIM keys, DMARC, a custom MAIL FROM
 * domain, MTA-STS and TLS-RPT — checked against the RFCs, each problem
 * turned into a finding with a status, a message in plain words and the
 * record to publish or change.
 *
 * Pure like the rest of auth/: every answer comes from the dns_resolver it
 * is given; it prints nothing (cli_doctor.c does). docs/doctor.md lists the
 * checks and why each status was chosen. */
#ifndef SESAME_AUTH_DOCTOR_H
#define SESAME_AUTH_DOCTOR_H
#include <stdbool.h>
#include <stddef.h>

#include "dns/dns.h"
#include "util/limits.h"

/* In report order. */
enum doctor_check {
    DOCTOR_MX = 0,
    DOCTOR_SPF,
    DOCTOR_DKIM,
    DOCTOR_DMARC,
    DOCTOR_MAIL_FROM,
    DOCTOR_MTA_STS,
    DOCTOR_TLS_RPT,
};

enum doctor_status {
    DOCTOR_OK = 0,      /* in order */
    DOCTOR_WARN,        /* works, but weak or risky */
    DOCTOR_ERROR,       /* broken: receivers will fail, ignore or reject something */
    DOCTOR_MISSING,     /* not published at all */
};

/* One finding. A check with nothing to report has exactly one DOCTOR_OK
 * finding that summarises what was found; otherwise it has one finding per
 * problem (so a name may repeat, e.g. one dkim finding per selector). */
struct doctor_finding {
    enum doctor_check check;
    enum doctor_status status;
    char *message;   /* plain words, never NULL */
    char *fix;       /* the record to publish or the change to make; NULL when none */
};

struct doctor_report {
    char domain[DNS_MAX_NAME_LEN + 1];  /* normalised: lower case, no trailing dot */
    struct doctor_finding *findings;
    size_t count;
    size_t alloc;
    /* DNS answered nothing at all (every query timed out or failed): the
     * findings say little, the caller should report a runtime failure. */
    bool dns_unreachable;
    unsigned long queries;              /* DNS queries asked */
};

#define DOCTOR_MAX_SELECTORS 32

struct doctor_options {
    const char *domain;                 /* required */
    const char *const *selectors;       /* DKIM selectors to check */
    size_t nselectors;
    /* When no selector is given, try the common names (default, selector1,
     * selector2, google, s1, s2, k1, sesame) and report the keys found. */
    bool guess_selectors;
    /* The custom MAIL FROM domain: a full name under domain, or one label
     * ("bounce" → bounce.<domain>). NULL: not checked. */
    const char *mail_from;
};

/* The common selectors tried when none is given (NULL-terminated). */
extern const char *const doctor_common_selectors[];

/* Normalises a domain given by a user: trailing dot dropped, lower case;
 * labels of letters, digits, '-' and '_', at least two labels, not an IP
 * address. Returns 0, or -1 with the reason in err. */
int doctor_domain_normalize(const char *in, char *out, size_t outlen, char *err,
                            size_t errlen);

/* Runs every check. Returns 0 with *out filled (free it with
 * doctor_report_free); -1 with the reason in err when the input is not
 * usable (domain, selector or MAIL FROM syntax), -2 when memory ran out;
 * *out is then empty. */
__attribute__((warn_unused_result))
int doctor_run(struct dns_resolver *dns, const struct doctor_options *opt,
               struct doctor_report *out, char *err, size_t errlen);
void doctor_report_free(struct doctor_report *r);

const char *doctor_check_name(enum doctor_check c);    /* "mx", "spf", ..., "tls_rpt" */
const char *doctor_status_name(enum doctor_status s);  /* "ok", "warn", "error", "missing" */

#endif
