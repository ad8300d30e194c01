/* DMARC aggregate reports, the receiver's side (RFC 7489 §7.1, §7.2 and
 * Appendix C): the XML document from rows the caller has aggregated, its
 * gzip, the file name and the mail that carries it (§7.2.1.1), the rua
 * destinations a report of a given size may go to (mailto: with !size),
 * and the §7.1 check that an external destination agreed to receive them.
 *
 * It does not aggregate, store, schedule or send: the service does
 * (service/dmarc_reporting.c). Pure like the rest of auth/ but for the
 * Date and the random Message-ID/boundary of dmarc_report_message() and
 * the DNS lookup of dmarc_report_authorized() (through the resolver
 * interface). docs/dmarc_reports.md tells the whole story. */
#ifndef SESAME_AUTH_DMARC_REPORT_H
#define SESAME_AUTH_DMARC_REPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/dmarc.h"
#include "dns/dns.h"
#include "util/buf.h"

/* util/limits.h is not this module's file: the report limits live here. */
#define DMARC_REPORT_MAX_DKIM     8     /* DKIM results written per row */
#define DMARC_REPORT_FILENAME_LEN (2 * DNS_MAX_NAME_LEN + 2 * 20 + 16) /* §7.2.1.1 name */
#define DMARC_REPORT_AUTH_TXT_LEN 4096  /* one §7.1 authorization TXT record, strings joined */
#define DMARC_REPORT_MAX_ID_LEN   255   /* a report_id in the mail (Subject, Message-ID) */

struct dmarc_report_meta {
    const char *org_name;        /* the receiver: our [server] hostname */
    const char *email;           /* where the domain owner can write: e.g. dmarc-noreply@HOST */
    const char *extra_contact_info; /* may be NULL */
    const char *report_id;       /* unique per report */
    int64_t begin, end;          /* Unix seconds: [begin, end) */
};

struct dmarc_report_policy {     /* policy_published: the record as we found it */
    const char *domain;
    enum dmarc_align adkim, aspf;
    enum dmarc_policy p, sp;     /* sp UNSET: written as p */
    unsigned pct;                /* 0..100 */
    const char *fo;              /* NULL or "": written as "0", the default (the
                                  * RFC's schema requires <fo>) */
};

struct dmarc_report_dkim {
    const char *domain;          /* d= (required) */
    const char *selector;        /* s=, NULL: omitted */
    const char *result;          /* none|pass|fail|policy|neutral|temperror|permerror */
};

struct dmarc_report_row {
    const char *source_ip;       /* IPv4 or IPv6 text, any form inet_pton reads */
    uint64_t count;
    enum dmarc_policy disposition;      /* none|quarantine|reject as applied */
    bool dkim_pass, spf_pass;           /* policy_evaluated: aligned pass */
    const char *reason_type;            /* NULL or forwarded|sampled_out|trusted_forwarder|
                                         * mailing_list|local_policy|other */
    const char *reason_comment;         /* may be NULL (written only with a reason_type) */
    const char *header_from, *envelope_from;   /* envelope_from may be "" (or NULL) */
    const struct dmarc_report_dkim *dkim; size_t ndkim; /* ndkim <= DMARC_REPORT_MAX_DKIM */
    const char *spf_domain, *spf_scope, *spf_result;  /* scope: mfrom|helo; result: none|
                                         * neutral|pass|fail|softfail|temperror|permerror */
};

/* Appends the XML document (RFC 7489 Appendix C) to out: <feedback> with
 * <version>1.0</version>, report_metadata, policy_published and one
 * <record> per row, in row order. Elements carry no namespace: the RFC's
 * schema as published does not compile, and with its targetNamespace
 * removed (the usual repair, docs/dmarc_reports.md) this is the document
 * it validates, and the form report parsers expect. Every text is
 * escaped (& < > " '); octets that XML 1.0 cannot carry (invalid UTF-8,
 * control characters but TAB and LF) become U+FFFD. IPv6 source
 * addresses are written in full (eight groups: the schema's pattern takes
 * no "::"), IPv4-mapped ones as IPv4.
 * Returns 0, or -1 — out then as it was — for no memory / out's cap, or bad
 * input: a NULL required field (org_name, email, report_id, domain,
 * source_ip, header_from, spf_*, a DKIM domain or result), nrows == 0 (the
 * schema needs a record), begin < 0 or end < begin, pct > 100, an enum or
 * result/scope/reason string outside its list, an unreadable source_ip,
 * ndkim > DMARC_REPORT_MAX_DKIM. */
__attribute__((warn_unused_result))
int dmarc_report_xml(const struct dmarc_report_meta *m, const struct dmarc_report_policy *p,
                     const struct dmarc_report_row *rows, size_t nrows, struct buf *out);

/* Appends the gzip (RFC 1952) of data to out. 0, or -1 (zlib, out's cap;
 * out then as it was). */
__attribute__((warn_unused_result))
int dmarc_report_gzip(const char *data, size_t len, struct buf *out);

/* "receiver!policy-domain!begin!end.xml.gz" (§7.2.1.1) into out. 0, or -1
 * when a domain is not a DNS name of letters, digits, '-', '_' and '.',
 * a time is negative, or out is too small (DMARC_REPORT_FILENAME_LEN fits). */
__attribute__((warn_unused_result))
int dmarc_report_filename(const char *receiver, const char *policy_domain, int64_t begin,
                          int64_t end, char *out, size_t outlen);

/* Appends the whole mail (CRLF) to out: Date (now), From, To (one address
 * or several separated by commas), Message-ID <...@org_name>, Subject per
 * §7.2.1.1 "Report Domain: D Submitter: org_name Report-ID: <report_id@org_name>",
 * Auto-Submitted: auto-generated, MIME multipart/mixed with a short
 * text/plain part and the gzip as an application/gzip attachment (base64;
 * the dmarc_report_filename() name in Content-Type name= and
 * Content-Disposition filename=). m->org_name must be a host name and
 * m->report_id a dot-atom (letters, digits, ".", and the other RFC 5322
 * atext characters, at most DMARC_REPORT_MAX_ID_LEN), since both go into
 * the Subject's msg-id. from_addr and to_addr are printable ASCII with an
 * '@' in each address.
 * Returns 0, or -1 (bad input, no memory, out's cap; out then as it was). */
__attribute__((warn_unused_result))
int dmarc_report_message(const struct dmarc_report_meta *m, const char *policy_domain,
                         const char *from_addr, const char *to_addr, const char *gz, size_t gzlen,
                         struct buf *out);

/* Splits a rua list (struct dmarc_record's rua) into the destinations a
 * report mail of `size` octets may go to: mailto: only, the address
 * %-decoded, URI header fields (?subject=...) ignored, !size honoured (a
 * mail larger than max_size is not sent there), duplicates dropped, at
 * most DMARC_MAX_URIS. Returns how many were kept in out ("local@domain",
 * the domain in lower case); each URI left out gets a one-line reason in
 * reasons, *nreasons of them. out and reasons each hold DMARC_MAX_URIS
 * entries. The §7.1 check is the caller's, with the two functions below. */
size_t dmarc_report_destinations(const struct dmarc_record *rec, size_t size,
                                 char out[][DNS_MAX_NAME_LEN + 80], char reasons[][160],
                                 size_t *nreasons);

/* True when a report for policy_domain going to an address at rua_domain
 * needs the §7.1 authorization: their organizational domains
 * (dmarc_org_domain) differ. name then gets
 * "<policy-domain>._report._dmarc.<rua-domain>" (lower case), the TXT name
 * to look up, or "" when that name would be longer than DNS allows or than
 * namelen — a name that cannot be looked up authorizes nothing. */
bool dmarc_report_needs_authorization(const char *policy_domain, const char *rua_domain,
                                      char *name, size_t namelen);

/* Looks the §7.1 record up: 1 when a TXT record at name starts with
 * v=DMARC1 (authorized), 0 when none does (NXDOMAIN, no TXT, other TXT, an
 * empty or invalid name), -1 on a temporary DNS failure or without a
 * resolver (try later). */
int dmarc_report_authorized(struct dns_resolver *dns, const char *name);

#endif
