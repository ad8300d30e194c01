/* Reading DMARC aggregate reports (RFC 7489 §7.2 and Appendix C, and the
 * DMARCbis draft's urn:ietf:params:xml:ns:dmarc-2.0 form) that other
 * receivers send to a domain's rua address: a report file (plain XML,
 * gzip, or a zip archive's first .xml member), or the report attached to a
 * mail, parsed into a struct, as JSON, and summed up per source IP.
 *
 * Hostile input is refused, never expanded: any DOCTYPE (so no entity is
 * ever declared, let alone expanded), more than DMARC_FEEDBACK_MAX_INPUT
 * bytes after decompression (inflating stops at the cap; a declared size is
 * never trusted), elements deeper than DMARC_FEEDBACK_MAX_DEPTH, more than
 * DMARC_FEEDBACK_MAX_RECORDS records, a field's text above
 * DMARC_FEEDBACK_MAX_TEXT, NUL octets, invalid UTF-8, encrypted, zip64 or
 * multi-disk zip archives. Memory stays within a small multiple of the
 * decompressed size.
 *
 * No I/O, no DNS, nothing logged. It does not check that the report is about
 * a domain the caller owns, nor de-duplicate reports: the caller does. */
#ifndef SESAME_AUTH_DMARC_FEEDBACK_H
#define SESAME_AUTH_DMARC_FEEDBACK_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/limits.h"

/* util/limits.h is not this module's file: its limits live here. */
#define DMARC_FEEDBACK_MAX_INPUT   (32u * 1024 * 1024) /* XML after decompression */
#define DMARC_FEEDBACK_MAX_DEPTH   32      /* nested elements (the schema needs 5) */
#define DMARC_FEEDBACK_MAX_RECORDS 200000  /* <record>s in one report */
#define DMARC_FEEDBACK_MAX_TEXT    1024    /* bytes of one field's text */
#define DMARC_FEEDBACK_MAX_DKIM    8       /* <dkim> results kept per record (more are ignored) */
#define DMARC_FEEDBACK_MAX_SPF     4       /* <spf> results kept per record (more are ignored) */
#define DMARC_FEEDBACK_MAX_COUNT   1000000000000ull /* a row's <count>; more is not believed */
#define DMARC_FEEDBACK_MAX_ZIP_MEMBERS 1024 /* central directory entries looked at */

/* Strings: every field is valid UTF-8 without control characters (white
 * space inside a value becomes one space; C0/C1 controls and DEL would be
 * '?', though XML forbids most of them), trimmed, never NULL ("" when the
 * report did not give it). Fixed arrays hold keywords and report-level
 * fields, cut at a character boundary when the report's text is longer;
 * the `const char *` fields point into memory the report owns (freed by
 * dmarc_feedback_free). Domain names are lower-cased; keywords
 * (disposition, pass/fail, results, scope, reason type) too. */
struct dmarc_feedback_dkim {
    const char *domain;
    const char *selector;
    char result[16];                    /* none|pass|fail|policy|neutral|temperror|permerror */
};
struct dmarc_feedback_spf {
    const char *domain;
    char scope[8];                      /* helo|mfrom, "" when not reported */
    char result[16];                    /* none|neutral|pass|fail|softfail|temperror|permerror */
};
struct dmarc_feedback_row {
    char source_ip[46];                 /* an IPv4/IPv6 address (inet_pton), in inet_ntop's
                                           canonical form; a record without one is skipped */
    uint64_t count;                     /* <= DMARC_FEEDBACK_MAX_COUNT */
    char disposition[16];               /* none|quarantine|reject (as reported) */
    char dkim_eval[8], spf_eval[8];     /* policy_evaluated: pass|fail */
    char reason_type[24];               /* the first <reason>: forwarded, mailing_list, ... */
    const char *reason_comment;
    const char *header_from, *envelope_from, *envelope_to;
    struct dmarc_feedback_dkim *dkim;   /* auth_results, in report order */
    size_t ndkim;                       /* <= DMARC_FEEDBACK_MAX_DKIM */
    struct dmarc_feedback_spf *spf;
    size_t nspf;                        /* <= DMARC_FEEDBACK_MAX_SPF */
};
struct dmarc_feedback {
    char org_name[128], email[256], report_id[128];
    int64_t begin, end;                 /* date_range, seconds since the epoch, begin <= end */
    char domain[DNS_MAX_NAME_LEN + 1];  /* policy_published */
    char adkim[2], aspf[2];             /* "r" or "s"; "r" when not reported (RFC 7489 default) */
    char p[16], sp[16], fo[16];         /* as reported, "" when absent */
    unsigned pct;                       /* 0..100; 100 when not reported */
    struct dmarc_feedback_row *rows;
    size_t nrows;
    /* Records left out because they could not be believed (no valid
     * source_ip, no or an absurd count): how many, and the first reason. */
    size_t nskipped;
    char skipped_reason[160];
    void *mem;                          /* private: the strings' storage */
};

/* A report file's bytes (XML, gzip or zip, told apart by their magic
 * bytes: 1f 8b is gzip, "PK\3\4" zip, else XML after an optional UTF-8 BOM
 * and white space). Returns 0, or -1 with err set to one sentence saying
 * what is wrong ("a DOCTYPE is not allowed in a DMARC report",
 * "decompressed size exceeds 32 MiB", "no <report_metadata>"); after -1 out
 * holds nothing to free (dmarc_feedback_free on it is harmless). A report
 * needs <feedback> as its root (no namespace, or any namespace: elements in
 * another namespace than the root's are extensions and ignored),
 * report_metadata with org_name, report_id and date_range, a
 * policy_published domain and at least one believable record. */
__attribute__((warn_unused_result))
int dmarc_feedback_parse(const unsigned char *data, size_t len, struct dmarc_feedback *out,
                         char *err, size_t errlen);

/* The report(s) attached to a mail (RFC 5322 message, CRLF or LF): every
 * part (mail/mime_parse.h) whose type or file name says gzip, zip or XML
 * (application/gzip, application/x-gzip, application/zip,
 * application/x-zip-compressed, application/xml, text/xml, or a name
 * ending .xml, .gz or .zip), decoded (base64/quoted-printable) and parsed;
 * an attached message/rfc822 (a forwarded report) is looked into once.
 * Returns how many parsed into out[0..max) (each to be freed with
 * dmarc_feedback_free), with err describing the first failure when none
 * did (or that there is no report attachment). */
size_t dmarc_feedback_from_message(const char *msg, size_t len, struct dmarc_feedback *out,
                                   size_t max, char *err, size_t errlen);

void dmarc_feedback_free(struct dmarc_feedback *f);

/* {"org_name","email","report_id","begin","end" (RFC 3339 UTC),
 *  "policy":{"domain","adkim","aspf","p","sp","pct","fo"},
 *  "records":[{"source_ip","count","disposition","dkim","spf",
 *              "reason":{"type","comment"}|null,
 *              "header_from","envelope_from","envelope_to",
 *              "auth_results":{"dkim":[{"domain","selector","result"}],
 *                              "spf":[{"domain","scope","result"}]}}],
 *  "skipped_records":N, "skipped_reason":"..."|null}
 * — strings absent from the report are null. NULL when out of memory. */
json_t *dmarc_feedback_json(const struct dmarc_feedback *f);

/* Sums reports up per source IP: messages, those that passed DMARC (the
 * policy_evaluated dkim or spf is pass: aligned and authenticated) and
 * those that failed.
 * {"domain": the policy domain when all reports agree, else null,
 *  "reports": n, "begin","end" (RFC 3339: earliest begin, latest end),
 *  "messages","passed","failed",
 *  "sources":[{"source_ip","messages","passed","failed",
 *              "dkim_passed","spf_passed" (aligned passes of each),
 *              "dispositions":{"none":N,"quarantine":N,"reject":N,...},
 *              "reasons":[types reported], "header_from":[...]}]
 *      sorted by messages (descending), then address,
 *  "failing_sources":[addresses with failures, most failures first]}
 * Sums saturate at INT64_MAX. NULL when out of memory. */
json_t *dmarc_feedback_summary(const struct dmarc_feedback *reports, size_t n);

#endif
