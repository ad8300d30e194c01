/* DMARC aggregate reporting, both sides (RFC 7489 §7.2; docs/dmarc_reports.md):
 *   - as a receiver: every DMARC evaluation at the MX whose policy has a
 *     rua is recorded (dmarc_eval_record); per interval (default daily, on
 *     UTC boundaries) the evaluations of each policy domain are aggregated
 *     into one report (auth/dmarc_report.h), gzipped, and sent through the
 *     outbound path as the service's own mail to the rua destinations that
 *     take it (!size, §7.1 authorization for external ones). The report row
 *     is written in the same transaction as the queued message and marks
 *     the evaluations it covers: a report is never sent twice, and a
 *     restart mid-way sends it on the next pass;
 *   - as a sender: mail for an account's report address is parsed
 *     (auth/dmarc_feedback.h) and kept per account (GET /v1/dmarc/reports).
 */
#ifndef SESAME_SERVICE_DMARC_REPORTING_H
#define SESAME_SERVICE_DMARC_REPORTING_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_check.h"
#include "dns/dns.h"
#include "store/store.h"

struct outbound;
struct sesame_config;

/* The evaluation of one message as a report row, when its policy asks for
 * aggregate reports (returns 1: e filled, its strings malloc'd — free with
 * dmarc_eval_release), 0 when there is nothing to report, -1 out of memory.
 * report_only: the account receiving it does not apply DMARC (reason
 * local_policy when the policy would have quarantined or rejected). */
int dmarc_eval_from_verdict(const struct auth_verdict *v, const char *client_ip,
                            const char *mail_from, bool report_only, int64_t now,
                            struct store_dmarc_eval *e);
void dmarc_eval_release(struct store_dmarc_eval *e);

/* Generates and queues every report whose interval ended before now
 * (force: also the interval in progress, closing it at now). Returns how
 * many reports were recorded (queued or skipped with a reason), -1 when
 * the store failed. dns: for the §7.1 authorization records. */
int dmarc_reports_send_due(struct store *st, struct outbound *ob, struct dns_resolver *dns,
                           const struct sesame_config *cfg, int64_t now, bool force);

/* The reporter thread of `sesame serve`: looks for due reports every minute. */
struct dmarc_reporter;
struct dmarc_reporter *dmarc_reporter_start(const struct sesame_config *cfg, struct outbound *ob,
                                            struct dns_resolver *dns, char *err, size_t errlen);
void dmarc_reporter_stop(struct dmarc_reporter *r);

/* Mail received for an account's report address (dmarc-reports@...):
 * parses the reports it carries and keeps them for the account. Returns
 * how many were kept (0: none, err says why), -1 when the store failed. */
int dmarc_ingest_message(struct store *st, int64_t account_id, const char *msg, size_t len,
                         char *err, size_t errlen);

#endif
