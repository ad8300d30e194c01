/* The reputation guard (docs/reputation.md): per account, the bounce rate
 * (permanent bounces / delivery outcomes) and the complaint rate
 * (complaints / deliveries) over a window of the last window_sends sends
 * or window_days days, whichever is smaller, counted per UTC day from the
 * events as they are recorded (one upsert per event, in the event's own
 * transaction). Statuses: healthy → warning → paused, with thresholds like
 * Amazon SES's (bounce 5 % / 10 %, complaint 0.1 % / 0.5 %), not judged
 * below min_sends; beside the rates, a sudden jump in daily volume or a
 * burst of sends to recipients that do not exist moves a healthy account
 * to warning. A paused account's sends are refused (HTTP 403 / SMTP 550
 * 5.7.1) until an operator resumes it (`sesame account resume`), which
 * starts a fresh window. Each change records a ReputationStatus event. */
#ifndef SESAME_SERVICE_REPUTATION_H
#define SESAME_SERVICE_REPUTATION_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

enum reputation_status { REPUTATION_HEALTHY = 0, REPUTATION_WARNING = 1, REPUTATION_PAUSED = 2 };

struct reputation_limits {
    uint32_t bounce_warning, bounce_pause;         /* parts per million */
    uint32_t complaint_warning, complaint_pause;   /* parts per million */
    uint32_t min_sends, window_sends, window_days;
    uint32_t volume_factor;      /* today's sends above this x the daily average of the 7 days before */
    uint32_t unknown_burst;      /* unknown-recipient bounces today from which it is a burst */
};
struct sesame_config;
void reputation_limits_from_config(const struct sesame_config *cfg, struct reputation_limits *l);
/* The limits every event is judged against (process-wide; set once at
 * startup, before threads; the defaults until then). */
void reputation_configure(const struct reputation_limits *l);
void reputation_limits_get(struct reputation_limits *out);

/* What an account's window shows. */
struct reputation {
    int status;                  /* enum reputation_status, as stored */
    char reason[256];            /* why (the last change) */
    int64_t status_at;
    int64_t window_begin;        /* the first day counted (Unix time) */
    int64_t window_days;
    int64_t sends, delivered, bounces, unknown, complaints;
    double bounce_rate, complaint_rate;
    bool judged;                 /* enough sends to judge the rates */
};
int reputation_get(struct store *st, int64_t account_id, int64_t now, struct reputation *out);
json_t *reputation_json(const struct reputation *r);

/* Counts an event (Send, Delivery, Bounce, Complaint) for the account and
 * judges the account again: a change of status is written with its reason,
 * logged, and recorded as a ReputationStatus event. Runs in the caller's
 * transaction (event_record's). */
int reputation_on_event(struct store *st, int64_t account_id, const json_t *ev, int64_t now);

/* An operator lets a paused (or warned) account send again: healthy, and
 * the window starts afresh. */
int reputation_resume(struct store *st, int64_t account_id, int64_t now);
const char *reputation_status_name(int status);

#endif
