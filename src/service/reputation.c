/* The reputation guard (reputation.h, docs/reputation.md): counting events
 * per account and day, the window, the rates, the suspicious-activity
 * checks, the status transitions and their events. */
#include "service/reputation.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/config.h"
#include "service/events.h"
#include "util/log.h"

#define DAY 86400
/* Days before today whose average sets what a "normal" day is. */
#define VOLUME_HISTORY_DAYS 7
/* Sends between two volume checks. */
#define JUDGE_EVERY 50
/* Share of today's outcomes that must be unknown recipients for a burst. */
#define UNKNOWN_BURST_SHARE 0.10

static pthread_rwlock_t limits_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct reputation_limits limits = {
    .bounce_warning = 50000, .bounce_pause = 100000,
    .complaint_warning = 1000, .complaint_pause = 5000,
    .min_sends = 500, .window_sends = 10000, .window_days = 30,
    .volume_factor = 10, .unknown_burst = 50,
};

void reputation_limits_from_config(const struct sesame_config *cfg, struct reputation_limits *l)
{
    *l = (struct reputation_limits){
        .bounce_warning = cfg->reputation_bounce_warning,
        .bounce_pause = cfg->reputation_bounce_pause,
        .complaint_warning = cfg->reputation_complaint_warning,
        .complaint_pause = cfg->reputation_complaint_pause,
        .min_sends = cfg->reputation_min_sends,
        .window_sends = cfg->reputation_window_sends,
        .window_days = cfg->reputation_window_days,
        .volume_factor = cfg->reputation_volume_factor,
        .unknown_burst = cfg->reputation_noemail_burst,
    };
}

void reputation_configure(const struct reputation_limits *l)
{
    pthread_rwlock_wrlock(&limits_lock);
    limits = *l;
    pthread_rwlock_unlock(&limits_lock);
}

void reputation_limits_get(struct reputation_limits *out)
{
    pthread_rwlock_rdlock(&limits_lock);
    *out = limits;
    pthread_rwlock_unlock(&limits_lock);
}

const char *reputation_status_name(int status)
{
    switch (status) {
    case REPUTATION_WARNING: return "warning";
    case REPUTATION_PAUSED: return "paused";
    }
    return "healthy";
}

/* ---- the window ---- */

struct window {
    const struct reputation_limits *l;
    int64_t today;
    struct reputation *r;
    int64_t today_sends, today_outcomes, today_unknown;
    int64_t history_sends;       /* the VOLUME_HISTORY_DAYS before today */
    int history_days;
    bool full;
};

static int window_cb(const struct store_account_stats *d, void *arg)
{
    struct window *w = arg;
    if (d->day == w->today) {
        w->today_sends = d->sends;
        w->today_outcomes = d->delivered + d->bounces;
        w->today_unknown = d->unknown;
    } else if (d->day >= w->today - VOLUME_HISTORY_DAYS) {
        w->history_sends += d->sends;
    }
    /* the days read for the volume average may reach beyond the window */
    if (!w->full && d->day > w->today - (int64_t)w->l->window_days) {
        struct reputation *r = w->r;
        r->sends += d->sends;
        r->delivered += d->delivered;
        r->bounces += d->bounces;
        r->unknown += d->unknown;
        r->complaints += d->complaints;
        r->window_begin = d->day * DAY;
        /* the last window_sends sends: whole days, newest first */
        if (r->sends >= (int64_t)w->l->window_sends)
            w->full = true;
    }
    return 0;
}

static int read_window(struct store *st, int64_t account_id, int64_t now,
                       const struct reputation_limits *l, struct reputation *r, struct window *w)
{
    memset(w, 0, sizeof *w);
    w->l = l;
    w->today = now / DAY;
    w->r = r;
    int64_t since = w->today - (l->window_days > VOLUME_HISTORY_DAYS ? l->window_days - 1
                                                                      : VOLUME_HISTORY_DAYS);
    if (store_account_stats_list(st, account_id, since, window_cb, w) != STORE_OK)
        return STORE_ERROR;
    /* the history days that fell outside the window still told the average */
    if (r->window_begin && r->window_begin < (w->today - (int64_t)l->window_days + 1) * DAY)
        r->window_begin = (w->today - (int64_t)l->window_days + 1) * DAY;
    int64_t outcomes = r->delivered + r->bounces;
    r->window_days = r->window_begin ? w->today - r->window_begin / DAY + 1 : 0;
    r->bounce_rate = outcomes ? (double)r->bounces / (double)outcomes : 0.0;
    r->complaint_rate = r->delivered ? (double)r->complaints / (double)r->delivered : 0.0;
    r->judged = r->sends >= (int64_t)l->min_sends;
    return STORE_OK;
}

int reputation_get(struct store *st, int64_t account_id, int64_t now, struct reputation *out)
{
    memset(out, 0, sizeof *out);
    struct store_account a;
    int rc = store_account_get(st, account_id, &a);
    if (rc != STORE_OK)
        return rc;
    out->status = a.reputation;
    snprintf(out->reason, sizeof out->reason, "%s", a.reputation_reason);
    out->status_at = a.reputation_at;
    struct reputation_limits l;
    reputation_limits_get(&l);
    struct window w;
    return read_window(st, account_id, now, &l, out, &w);
}

static json_t *time_or_null(int64_t t)
{
    if (t <= 0)
        return json_null();
    time_t tt = (time_t)t;
    struct tm tm;
    char s[32];
    gmtime_r(&tt, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(s);
}

json_t *reputation_json(const struct reputation *r)
{
    struct reputation_limits l;
    reputation_limits_get(&l);
    return json_pack("{s:s, s:s, s:o, s:f, s:f, s:b, s:{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
                     "s:{s:f, s:f, s:f, s:f, s:I, s:I, s:I}}",
                     "status", reputation_status_name(r->status), "reason", r->reason,
                     "status_changed_at", time_or_null(r->status_at),
                     "bounce_rate", r->bounce_rate, "complaint_rate", r->complaint_rate,
                     "judged", r->judged,
                     "window", "begin", time_or_null(r->window_begin),
                     "days", (json_int_t)r->window_days, "sends", (json_int_t)r->sends,
                     "delivered", (json_int_t)r->delivered, "bounces", (json_int_t)r->bounces,
                     "unknown_recipients", (json_int_t)r->unknown,
                     "complaints", (json_int_t)r->complaints,
                     "max_sends", (json_int_t)l.window_sends,
                     "thresholds", "bounce_warning", l.bounce_warning / 1e6,
                     "bounce_pause", l.bounce_pause / 1e6,
                     "complaint_warning", l.complaint_warning / 1e6,
                     "complaint_pause", l.complaint_pause / 1e6,
                     "min_sends", (json_int_t)l.min_sends,
                     "window_sends", (json_int_t)l.window_sends,
                     "window_days", (json_int_t)l.window_days);
}

/* ---- judging ---- */

/* The status the numbers call for, with why (and "" for healthy). */
static int judge(const struct reputation_limits *l, const struct reputation *r,
                 const struct window *w, char *why, size_t whylen)
{
    why[0] = '\0';
    double bp = l->bounce_pause / 1e6, bw = l->bounce_warning / 1e6;
    double cp = l->complaint_pause / 1e6, cw = l->complaint_warning / 1e6;
    if (r->judged) {
        if (r->bounce_rate >= bp) {
            snprintf(why, whylen, "bounce rate %.2f%% over the last %lld sends is at or above "
                     "%.2f%%", r->bounce_rate * 100, (long long)r->sends, bp * 100);
            return REPUTATION_PAUSED;
        }
        if (r->complaint_rate >= cp) {
            snprintf(why, whylen, "complaint rate %.3f%% over the last %lld sends is at or above "
                     "%.3f%%", r->complaint_rate * 100, (long long)r->sends, cp * 100);
            return REPUTATION_PAUSED;
        }
        if (r->bounce_rate >= bw) {
            snprintf(why, whylen, "bounce rate %.2f%% over the last %lld sends is at or above "
                     "%.2f%%", r->bounce_rate * 100, (long long)r->sends, bw * 100);
            return REPUTATION_WARNING;
        }
        if (r->complaint_rate >= cw) {
            snprintf(why, whylen, "complaint rate %.3f%% over the last %lld sends is at or above "
                     "%.3f%%", r->complaint_rate * 100, (long long)r->sends, cw * 100);
            return REPUTATION_WARNING;
        }
    }
    /* suspicious activity, whatever the volume judged */
    if (w->today_unknown >= (int64_t)l->unknown_burst &&
        (double)w->today_unknown >= UNKNOWN_BURST_SHARE * (double)w->today_outcomes) {
        snprintf(why, whylen, "%lld sends today went to recipients that do not exist (%.0f%% of "
                 "today's outcomes): is the list bought or stale?", (long long)w->today_unknown,
                 w->today_outcomes ? 100.0 * (double)w->today_unknown / (double)w->today_outcomes
                                   : 100.0);
        return REPUTATION_WARNING;
    }
    double avg = (double)w->history_sends / VOLUME_HISTORY_DAYS;
    if (w->history_sends > 0 && w->today_sends >= (int64_t)l->min_sends &&
        (double)w->today_sends > avg * l->volume_factor) {
        snprintf(why, whylen, "%lld sends today, more than %u times the daily average of the "
                 "last %d days (%.0f)", (long long)w->today_sends, l->volume_factor,
                 VOLUME_HISTORY_DAYS, avg);
        return REPUTATION_WARNING;
    }
    return REPUTATION_HEALTHY;
}

static int set_status(struct store *st, int64_t account_id, int previous, int status,
                      const char *why, const struct reputation *r, int64_t now)
{
    int rc = store_account_reputation_set(st, account_id, status, why, now);
    if (rc != STORE_OK)
        return rc;
    log_msg(status == REPUTATION_PAUSED ? LOG_WARN : LOG_INFO, "reputation",
            "event=status account=%lld status=%s previous=%s bounce_rate=%.4f "
            "complaint_rate=%.5f sends=%lld reason=\"%s\"", (long long)account_id,
            reputation_status_name(status), reputation_status_name(previous), r->bounce_rate,
            r->complaint_rate, (long long)r->sends, why);
    json_t *ev = event_create_reputation(reputation_status_name(status),
                                         reputation_status_name(previous), why, r->bounce_rate,
                                         r->complaint_rate, r->sends);
    return ev ? event_record(st, account_id, 0, "", ev) : STORE_ERROR;
}

/* How many recipients an event names under key (an array), at least 1. */
static int64_t count_of(const json_t *o, const char *key)
{
    size_t n = json_array_size(json_object_get(o, key));
    return n ? (int64_t)n : 1;
}

int reputation_on_event(struct store *st, int64_t account_id, const json_t *ev, int64_t now)
{
    const char *type = json_string_value(json_object_get(ev, "eventType"));
    struct store_account_stats d = { 0 };
    if (!type)
        return STORE_OK;
    if (strcmp(type, "Send") == 0) {
        d.sends = count_of(json_object_get(ev, "mail"), "destination");
    } else if (strcmp(type, "Delivery") == 0) {
        d.delivered = count_of(json_object_get(ev, "delivery"), "recipients");
    } else if (strcmp(type, "Bounce") == 0) {
        const json_t *b = json_object_get(ev, "bounce");
        const char *kind = json_string_value(json_object_get(b, "bounceType"));
        if (!kind || strcmp(kind, "Permanent") != 0)
            return STORE_OK;   /* transient and undetermined do not count */
        const char *sub = json_string_value(json_object_get(b, "bounceSubType"));
        if (sub && strcmp(sub, "Suppressed") == 0)
            return STORE_OK;   /* never sent */
        d.bounces = count_of(b, "bouncedRecipients");
        if (sub && strcmp(sub, "NoEmail") == 0)
            d.unknown = d.bounces;
    } else if (strcmp(type, "Complaint") == 0) {
        d.complaints = count_of(json_object_get(ev, "complaint"), "complainedRecipients");
    } else {
        return STORE_OK;
    }
    int64_t sends_today = 0;
    int rc = store_account_stats_add(st, account_id, now / DAY, &d, &sends_today);
    if (rc != STORE_OK)
        return rc;
    struct reputation_limits l;
    reputation_limits_get(&l);
    /* Judging reads the window: after every bounce and complaint (what
     * can worsen the rates), but after a send only every JUDGE_EVERY sends
     * of the day (the volume rule), and after a delivery only when the
     * account is warned (what can lift it): deliveries and sends are most
     * events, and delivery writes them in its hot loop. */
    bool worse = d.bounces || d.complaints;
    int64_t before = sends_today - d.sends;
    if (d.sends && !worse && before / JUDGE_EVERY == sends_today / JUDGE_EVERY &&
        !(before < (int64_t)l.min_sends && sends_today >= (int64_t)l.min_sends))
        return STORE_OK;
    struct store_account a;
    if ((rc = store_account_get(st, account_id, &a)) != STORE_OK)
        return rc;
    if (a.reputation == REPUTATION_PAUSED)
        return STORE_OK;   /* only an operator lifts a pause */
    if (d.delivered && a.reputation == REPUTATION_HEALTHY)
        return STORE_OK;
    struct reputation r;
    memset(&r, 0, sizeof r);
    struct window w;
    if (read_window(st, account_id, now, &l, &r, &w) != STORE_OK)
        return STORE_ERROR;
    char why[256];
    int status = judge(&l, &r, &w, why, sizeof why);
    if (status == a.reputation)
        return STORE_OK;
    /* a warning for a burst or a jump lasts the day: only the rates lift it */
    if (status == REPUTATION_HEALTHY && a.reputation == REPUTATION_WARNING &&
        a.reputation_at / DAY == now / DAY && strstr(a.reputation_reason, "today"))
        return STORE_OK;
    if (status == REPUTATION_HEALTHY)
        snprintf(why, sizeof why, "the rates are back under the warning thresholds");
    return set_status(st, account_id, a.reputation, status, why, &r, now);
}

int reputation_resume(struct store *st, int64_t account_id, int64_t now)
{
    struct store_account a;
    int rc = store_account_get(st, account_id, &a);
    if (rc != STORE_OK)
        return rc;
    if ((rc = store_begin(st)) != STORE_OK)
        return rc;
    struct reputation r;
    memset(&r, 0, sizeof r);
    rc = store_account_stats_clear(st, account_id);
    if (rc == STORE_OK)
        rc = set_status(st, account_id, a.reputation, REPUTATION_HEALTHY,
                        "resumed by the operator: the window starts afresh", &r, now);
    if (rc != STORE_OK) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st);
}
