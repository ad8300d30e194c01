/* The delivery engine; see delivery.h. Everything here runs on the
 * delivery thread's event loop except the route lookups (dns_mx_route on
 * the worker pool). Outcomes are written in batches (one transaction per
 * flush): a crash between the remote 250 and the flush only means that
 * recipient is sent again (at-least-once), never lost. */
#include "service/delivery.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "dns/dns_mx.h"
#include "service/config.h"
#include "service/events.h"
#include "service/group_commit.h"
#include "service/outbound.h"
#include "service/webhook.h"
#include "service/workq.h"
#include "smtp/smtp_client.h"
#include "store/store.h"
#include "util/log.h"

#define CLAIM_BATCH        500    /* recipients claimed per look */
#define CLAIM_SPACING_MS   20     /* kicks closer than this share one claim */
#define OUTCOME_FLUSH_MS   25     /* outcomes gathered into one store write */
#define MAX_UNITS_HELD     5000   /* claimed and not finished, in memory */
#define ROUTE_TTL_S        300
#define PAUSE_AFTER_421_S  60
#define CONNECT_TIMEOUT_S  30
#define DEST_BUCKETS       1024
#define INFLIGHT_BUCKETS   4096

struct dest;

struct unit {                    /* one recipient, claimed */
    TAILQ_ENTRY(unit) entry;
    struct store_delivery d;
    struct dest *dest;
    struct unit *hnext;          /* in-flight set */
};
TAILQ_HEAD(unit_list, unit);

struct dest {                    /* one recipient domain */
    struct dest *next;
    char domain[DNS_MAX_NAME_LEN + 1];
    struct unit_list pending;
    size_t npending;
    struct mx_route route;
    bool route_valid, route_pending;
    time_t route_expires;
    unsigned conns, max_conns;
    unsigned sent_in_minute;
    time_t minute_start;
    time_t paused_until;         /* a 421 after the greeting: wait */
    time_t recover_at;           /* then one more connection per interval */
    time_t notls_until;          /* TLS failed here: opportunistic retries go in the clear */
};

struct oconn {                   /* one SMTP client connection */
    TAILQ_ENTRY(oconn) entry;
    struct delivery *dl;
    struct dest *dest;
    struct bufferevent *bev;
    struct smtp_client *cl;
    struct event *timer;         /* step timeout; made active when the session ended */
    struct event *next_ev;       /* send the next recipient (outside the client's hooks) */
    size_t host, addr;           /* where we are in the route */
    char remote[64], remote_host[DNS_MAX_NAME_LEN + 1];
    struct unit *cur;
    char *msg;
    struct smtp_client_reply rcpt_reply;
    bool rcpt_refused;
    bool ready, failed_before_ready, ended;
    bool want_tls;               /* STARTTLS answered: switch once the input is drained */
    bool tls_failed;
    struct smtp_client_reply last_fail;  /* why the session ended, for the record */
    struct timespec t0;
};

struct route_job {
    struct workq_job job;
    struct delivery *dl;
    struct dest *dest;
    struct mx_route route;
};

struct outcome {                 /* waiting for the next flush */
    struct outcome *next;
    struct store_delivery d;
    int status;
    int64_t next_attempt;
    char response[512];
    char event_type[24];         /* "" = no event */
    char bounce_type[16], bounce_sub[24], status_code[16], delay_type[40];
    char remote[DNS_MAX_NAME_LEN + 80];
    long processing_ms;
    bool suppress;
};

TAILQ_HEAD(oconn_list, oconn);

struct delivery {
    struct sesame_config cfg;
    struct group_commit *gc;     /* shared with the service's writers */
    struct store_delivery *claim_rows;  /* CLAIM_BATCH rows, reused */
    struct event *claim_later;   /* a claim deferred by CLAIM_SPACING_MS */
    double last_claim;           /* CLOCK_MONOTONIC seconds */
    struct oconn_list oconns;
    struct outbound *ob;
    struct dns_resolver *dns;
    SSL_CTX *tls;
    struct event_base *base;
    struct store *st;
    struct workq *routes;
    struct webhook_client *wc;
    struct event_dispatcher *events;
    struct event *tick, *kick, *stop_ev, *flush_ev;
    pthread_t thread;
    struct dest *dests[DEST_BUCKETS];
    struct unit *inflight[INFLIGHT_BUCKETS];
    size_t units_held;
    unsigned conns;
    struct outcome *outcomes, **outcomes_tail;
    size_t noutcomes;
    bool stopping;
};

static void schedule(struct delivery *dl);
static void conn_close(struct oconn *c);

/* ---- small helpers ---- */

static unsigned bucket_of(const char *s, unsigned n)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % n;
}

static unsigned rnd_below(unsigned n)
{
    return n ? randombytes_uniform(n) : 0;
}

static struct dest *dest_get(struct delivery *dl, const char *domain)
{
    struct dest **pp = &dl->dests[bucket_of(domain, DEST_BUCKETS)];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->domain, domain) == 0)
            return *pp;
    struct dest *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    snprintf(d->domain, sizeof d->domain, "%s", domain);
    TAILQ_INIT(&d->pending);
    d->max_conns = dl->cfg.delivery_max_connections_per_domain;
    *pp = d;
    return d;
}

static bool inflight_has(struct delivery *dl, int64_t rcpt_id)
{
    for (struct unit *u = dl->inflight[(uint64_t)rcpt_id % INFLIGHT_BUCKETS]; u; u = u->hnext)
        if (u->d.rcpt_id == rcpt_id)
            return true;
    return false;
}

static void inflight_add(struct delivery *dl, struct unit *u)
{
    struct unit **pp = &dl->inflight[(uint64_t)u->d.rcpt_id % INFLIGHT_BUCKETS];
    u->hnext = *pp;
    *pp = u;
    dl->units_held++;
}

static void unit_free(struct delivery *dl, struct unit *u)
{
    struct unit **pp = &dl->inflight[(uint64_t)u->d.rcpt_id % INFLIGHT_BUCKETS];
    while (*pp && *pp != u)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = u->hnext;
    dl->units_held--;
    free(u);
}

/* ---- outcomes, written in batches ---- */

static void flush_outcomes(struct delivery *dl);

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_outcomes(arg);
}

static int event_for(struct delivery *dl, struct store *st, const struct outcome *o)
{
    struct store_outbound meta;
    memset(&meta, 0, sizeof meta);
    struct event_mail em = { .message_id = o->d.message_id, .timestamp = o->d.created_at,
                             .source = o->d.mail_from };
    const char *dest[1] = { o->d.rcpt };
    em.destination = dest;
    em.ndestination = 1;
    if (store_outbound_get(st, o->d.account_id, o->d.message_id, &meta, NULL, NULL) ==
        STORE_OK && meta.message_id[0])
        em.header_message_id = meta.message_id;
    json_t *ev = event_create(o->event_type, &em);
    if (!ev)
        return STORE_ERROR;
    if (!strcmp(o->event_type, "Delivery"))
        event_set_delivery(ev, o->d.rcpt, o->response, o->processing_ms, o->remote);
    else if (!strcmp(o->event_type, "Bounce"))
        event_set_bounce(ev, o->bounce_type, o->bounce_sub, o->d.rcpt, o->status_code,
                         o->response, dl->cfg.hostname);
    else if (!strcmp(o->event_type, "DeliveryDelay"))
        event_set_delay(ev, o->d.rcpt, o->status_code, o->response,
                        o->d.created_at + dl->cfg.delivery_lifetime);
    return event_record(st, o->d.account_id, o->d.message_id, o->d.rcpt, ev);
}

struct outcome_write {
    struct delivery *dl;
    struct outcome *list;
};

/* One batch of outcomes, applied on whichever thread leads the group
 * commit (st is its connection); the delivery thread waits meanwhile. */
static int apply_outcomes(struct store *st, void *arg)
{
    struct outcome_write *w = arg;
    int64_t now = (int64_t)time(NULL);
    for (struct outcome *o = w->list; o; o = o->next) {
        if (store_delivery_update(st, o->d.rcpt_id, o->status, o->d.attempts + 1,
                                  o->next_attempt, o->response, now) != STORE_OK)
            return STORE_ERROR;
        if (o->event_type[0] && event_for(w->dl, st, o) != STORE_OK)
            return STORE_ERROR;
        if (o->suppress) {
            struct store_suppression sp = { .account_id = o->d.account_id, .created_at = now };
            snprintf(sp.address, sizeof sp.address, "%s", o->d.rcpt);
            snprintf(sp.reason, sizeof sp.reason, "bounce");
            snprintf(sp.detail, sizeof sp.detail, "%.255s", o->response);
            if (store_suppression_put(st, &sp) != STORE_OK)
                return STORE_ERROR;
        }
    }
    return STORE_OK;
}

static void flush_outcomes(struct delivery *dl)
{
    struct outcome *list = dl->outcomes;
    size_t n = dl->noutcomes;
    dl->outcomes = NULL;
    dl->outcomes_tail = &dl->outcomes;
    dl->noutcomes = 0;
    if (!list)
        return;
    /* through the group commit the API and MX workers use, so in-process
     * writers queue instead of sleeping on SQLite's lock */
    struct outcome_write ow = { dl, list };
    struct gc_write w = { .apply = apply_outcomes, .arg = &ow };
    if (group_commit_write(dl->gc, dl->st, &w) != STORE_OK)
        /* the leases expire and the recipients are tried again */
        log_msg(LOG_ERROR, "delivery", "event=outcomes_not_saved count=%zu", n);
    while (list) {
        struct outcome *next = list->next;
        free(list);
        list = next;
    }
    if (dl->events)
        event_dispatcher_kick(dl->events);
}

static int64_t retry_delay(const struct delivery *dl, unsigned attempts)
{
    double d = dl->cfg.delivery_first_retry;
    for (unsigned i = 1; i < attempts && d < dl->cfg.delivery_max_retry_interval; i++)
        d *= 2;
    if (d > dl->cfg.delivery_max_retry_interval)
        d = dl->cfg.delivery_max_retry_interval;
    /* ±20 % jitter so retries of one burst spread out */
    double jitter = ((double)rnd_below(4001) / 10000.0) - 0.2;
    d *= 1.0 + jitter;
    return d < 1 ? 1 : (int64_t)d;
}

static void extract_status(const struct smtp_client_reply *r, char *out, size_t outlen)
{
    if (r->enhanced[0])
        snprintf(out, outlen, "%s", r->enhanced);
    else if (r->code >= 500)
        snprintf(out, outlen, "5.0.0");
    else
        snprintf(out, outlen, "4.0.0");
}

/* Records what happened to u and frees it. reply may be NULL with text. */
static void finish_unit(struct delivery *dl, struct unit *u, const struct smtp_client_reply *r,
                        const char *text, const char *remote, long ms, bool rcpt_stage)
{
    struct outcome *o = calloc(1, sizeof *o);
    if (!o) {
        unit_free(dl, u);
        return;
    }
    o->d = u->d;
    o->processing_ms = ms;
    snprintf(o->remote, sizeof o->remote, "%s", remote ? remote : "");
    int code = r ? r->code : 0;
    if (r && r->code > 0)
        snprintf(o->response, sizeof o->response, "%d %s%s%.480s", r->code, r->enhanced,
                 r->enhanced[0] ? " " : "", r->text);
    else if (r && r->text[0])
        snprintf(o->response, sizeof o->response, "%.500s", r->text);
    else
        snprintf(o->response, sizeof o->response, "%s", text ? text : "no answer");
    for (char *p = o->response; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    int64_t now = (int64_t)time(NULL);
    if (r)
        extract_status(r, o->status_code, sizeof o->status_code);
    if (code >= 200 && code < 300) {
        o->status = STORE_RCPT_DELIVERED;
        snprintf(o->event_type, sizeof o->event_type, "Delivery");
    } else if (code >= 500 || code == -5) {
        /* permanent: a 5xx, or a route that can never work (code -5) */
        o->status = STORE_RCPT_BOUNCED;
        snprintf(o->event_type, sizeof o->event_type, "Bounce");
        snprintf(o->bounce_type, sizeof o->bounce_type, "Permanent");
        const char *st = o->status_code;
        snprintf(o->bounce_sub, sizeof o->bounce_sub, "%s",
                 code == -5 ? "General" : (!strcmp(st, "5.1.1") || !strcmp(st, "5.1.10"))
                                              ? "NoEmail" : "General");
        if (code == -5)
            snprintf(o->status_code, sizeof o->status_code, "5.1.2");
        /* only what is about the address: a refused RCPT, 5.1.x (bad
         * mailbox or domain), 5.2.1 (disabled); a policy refusal of the
         * message (5.7.x, a listed IP, content) must not suppress a valid
         * address (SES calls those ContentRejected) */
        const char *sc = o->status_code;
        o->suppress = code == -5 || (rcpt_stage && code >= 500) || !strncmp(sc, "5.1.", 4) ||
                      !strcmp(sc, "5.2.1");
        if (!o->suppress && code != -5)
            snprintf(o->bounce_sub, sizeof o->bounce_sub, "ContentRejected");
    } else if (now - u->d.created_at >= (int64_t)dl->cfg.delivery_lifetime) {
        o->status = STORE_RCPT_BOUNCED;
        snprintf(o->event_type, sizeof o->event_type, "Bounce");
        snprintf(o->bounce_type, sizeof o->bounce_type, "Transient");
        snprintf(o->bounce_sub, sizeof o->bounce_sub, "General");
        if (!o->status_code[0])
            snprintf(o->status_code, sizeof o->status_code, "4.4.7");
        char gaveup[sizeof o->response];
        snprintf(gaveup, sizeof gaveup, "gave up after %u attempts: %.400s", u->d.attempts + 1,
                 o->response);
        memcpy(o->response, gaveup, sizeof gaveup);
    } else {
        o->status = STORE_RCPT_DEFERRED;
        o->next_attempt = now + retry_delay(dl, u->d.attempts + 1);
        snprintf(o->event_type, sizeof o->event_type, "DeliveryDelay");
        if (!o->status_code[0])
            snprintf(o->status_code, sizeof o->status_code, "4.4.1");
    }
    log_msg(o->status == STORE_RCPT_DELIVERED ? LOG_INFO : LOG_WARN, "delivery",
            "event=%s message=%lld rcpt=<%s> attempt=%u remote=%s response=\"%s\"",
            o->status == STORE_RCPT_DELIVERED ? "delivered"
            : o->status == STORE_RCPT_BOUNCED ? "bounced" : "deferred",
            (long long)u->d.message_id, u->d.rcpt, u->d.attempts + 1, o->remote[0] ? o->remote : "-",
            o->response);
    *dl->outcomes_tail = o;
    dl->outcomes_tail = &o->next;
    if (++dl->noutcomes >= 256) {
        flush_outcomes(dl);
    } else if (!evtimer_pending(dl->flush_ev, NULL)) {
        /* a commit blocks this loop for a group-commit round: gather the
         * outcomes of the next few milliseconds into one */
        struct timeval tv = { 0, OUTCOME_FLUSH_MS * 1000 };
        evtimer_add(dl->flush_ev, &tv);
    }
    unit_free(dl, u);
}

/* Every unit waiting for this domain gets the same outcome. */
static void finish_pending(struct delivery *dl, struct dest *d, int code, const char *text)
{
    struct smtp_client_reply r = { .code = code > 0 ? code : 0 };
    snprintf(r.text, sizeof r.text, "%s", text);
    struct unit *u;
    while ((u = TAILQ_FIRST(&d->pending))) {
        TAILQ_REMOVE(&d->pending, u, entry);
        d->npending--;
        if (code == -5) {
            struct smtp_client_reply p = { .code = -5 };
            snprintf(p.text, sizeof p.text, "%s", text);
            finish_unit(dl, u, &p, text, NULL, 0, false);
        } else {
            finish_unit(dl, u, code > 0 ? &r : NULL, text, NULL, 0, false);
        }
    }
}

/* ---- routes ---- */

static void route_run(struct workq_job *job, struct store *st)
{
    (void)st;
    struct route_job *j = (struct route_job *)job;
    const char *relay = j->dl->cfg.delivery_relay;
    if (relay[0]) {
        /* the smarthost: host[:port]; a name is looked up like an implicit MX */
        char host[256];
        snprintf(host, sizeof host, "%s", relay);
        char *colon = strrchr(host, ':');
        if (colon && !strchr(host, ']'))
            *colon = '\0';
        if (host[0] == '[') {
            memmove(host, host + 1, strlen(host));
            char *rb = strchr(host, ']');
            if (rb)
                *rb = '\0';
        }
        unsigned char tmp[16];
        memset(&j->route, 0, sizeof j->route);
        if (inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1) {
            j->route.status = MX_OK;
            j->route.nhosts = 1;
            snprintf(j->route.hosts[0].name, sizeof j->route.hosts[0].name, "%.253s", host);
            j->route.hosts[0].naddrs = 1;
            snprintf(j->route.hosts[0].addrs[0], sizeof j->route.hosts[0].addrs[0], "%.45s", host);
        } else {
            dns_mx_route(j->dl->dns, host, &j->route, rnd_below);
        }
        return;
    }
    dns_mx_route(j->dl->dns, j->dest->domain, &j->route, rnd_below);
}

static void route_done(struct workq_job *job)
{
    struct route_job *j = (struct route_job *)job;
    struct delivery *dl = j->dl;
    struct dest *d = j->dest;
    d->route_pending = false;
    if (!dl->stopping) {
        switch (j->route.status) {
        case MX_OK:
            d->route = j->route;
            d->route_valid = true;
            d->route_expires = time(NULL) + ROUTE_TTL_S;
            break;
        case MX_TEMPFAIL:
            finish_pending(dl, d, 0, j->route.why[0] ? j->route.why : "DNS lookup failed");
            break;
        default:  /* null MX, NXDOMAIN, no address: permanent */
            finish_pending(dl, d, -5, j->route.why[0] ? j->route.why : "no route to the domain");
            break;
        }
    }
    free(j);
    schedule(dl);
}

/* ---- connections ---- */

static unsigned delivery_port(const struct delivery *dl)
{
    const char *relay = dl->cfg.delivery_relay;
    const char *colon = strrchr(relay, ':');
    if (relay[0] && colon && (!strchr(relay, ']') || colon > strchr(relay, ']'))) {
        unsigned long p = strtoul(colon + 1, NULL, 10);
        if (p > 0 && p < 65536)
            return (unsigned)p;
    }
    return dl->cfg.delivery_smtp_port;
}

static void conn_start_next(struct oconn *c);
static bool conn_connect(struct oconn *c);

static void arm_timer(struct oconn *c, unsigned ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(c->timer, &tv);
}

static void hook_write(void *arg, const char *data, size_t len)
{
    struct oconn *c = arg;
    if (c->bev)
        bufferevent_write(c->bev, data, len);
    arm_timer(c, smtp_client_timeout_ms(c->cl));
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void hook_starttls(void *arg)
{
    /* the 220 to STARTTLS is still in the input buffer: on_read starts
     * TLS once the client returned and the buffer is drained */
    ((struct oconn *)arg)->want_tls = true;
}

static void start_tls(struct oconn *c)
{
    SSL *ssl = SSL_new(c->dl->tls);
    if (!ssl) {
        smtp_client_tls_done(c->cl, false);
        return;
    }
    SSL_set_tlsext_host_name(ssl, c->remote_host);
    if (!strcmp(c->dl->cfg.delivery_tls_verify, "yes")) {
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), c->remote_host, 0);
    } else {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    }
    struct bufferevent *tb = bufferevent_openssl_filter_new(
        c->dl->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!tb) {
        SSL_free(ssl);
        smtp_client_tls_done(c->cl, false);
        return;
    }
    c->bev = tb;
    bufferevent_setcb(tb, on_read, NULL, on_event, c);
    bufferevent_enable(tb, EV_READ | EV_WRITE);
}

static void hook_event(void *arg, enum smtp_client_event ev, const struct smtp_client_reply *r)
{
    struct oconn *c = arg;
    struct delivery *dl = c->dl;
    if (ev == SMTP_CLIENT_READY) {
        c->ready = true;
        event_active(c->next_ev, EV_TIMEOUT, 0);
        return;
    }
    if (r && r->code == 421 && c->ready) {
        /* the destination asks us to slow down (a 421 at the greeting only
         * sends us to the next address) */
        c->dest->paused_until = time(NULL) + PAUSE_AFTER_421_S;
        c->dest->recover_at = c->dest->paused_until + PAUSE_AFTER_421_S;
        if (c->dest->max_conns > 1)
            c->dest->max_conns = 1;
        log_msg(LOG_WARN, "delivery", "event=throttled domain=%s remote=%s seconds=%d",
                c->dest->domain, c->remote, PAUSE_AFTER_421_S);
    }
    if (r && (r->code > 0 || r->text[0]))
        c->last_fail = *r;
    if (ev == SMTP_CLIENT_FAILED && !c->ready) {
        c->failed_before_ready = true;
        log_msg(LOG_INFO, "delivery", "event=session_failed domain=%s remote=%s reply=\"%d %s\"",
                c->dest->domain, c->remote, r ? r->code : 0, r ? r->text : "");
    }
    (void)dl;
    /* the connection is done; close from the loop (not inside the client) */
    c->ready = false;
    c->ended = true;
    event_active(c->timer, EV_TIMEOUT, 0);
}

static void hook_rcpt_done(void *arg, size_t index, const struct smtp_client_reply *r)
{
    (void)index;
    struct oconn *c = arg;
    if (r->code < 200 || r->code >= 300) {
        c->rcpt_refused = true;
        c->rcpt_reply = *r;
    }
}

static void hook_message_done(void *arg, const struct smtp_client_reply *r)
{
    struct oconn *c = arg;
    struct unit *u = c->cur;
    c->cur = NULL;
    free(c->msg);
    c->msg = NULL;
    if (!u)
        return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (long)((t1.tv_sec - c->t0.tv_sec) * 1000 + (t1.tv_nsec - c->t0.tv_nsec) / 1000000);
    char remote[DNS_MAX_NAME_LEN + 80];
    snprintf(remote, sizeof remote, "%s (%s)", c->remote_host, c->remote);
    finish_unit(c->dl, u, c->rcpt_refused ? &c->rcpt_reply : r,
                r->code ? NULL : "connection lost", remote, ms, c->rcpt_refused);
    if (r->code == 421)
        return;   /* the event hook closes */
    if (c->ready)
        event_active(c->next_ev, EV_TIMEOUT, 0);
}

static void on_next(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct oconn *c = arg;
    if (c->ready && !c->cur && !c->ended)
        conn_start_next(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct oconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (!len || !c->cl)
            break;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        size_t n = smtp_client_feed(c->cl, p, len);
        evbuffer_drain(in, n);
        if (c->want_tls) {
            c->want_tls = false;
            evbuffer_drain(in, evbuffer_get_length(in));   /* RFC 3207 §4.2 */
            start_tls(c);
            return;
        }
        if (n == 0)
            break;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct oconn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (bufferevent_openssl_get_ssl(c->bev)) {
            smtp_client_tls_done(c->cl, true);
        } else {
            arm_timer(c, smtp_client_timeout_ms(c->cl));
        }
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (!c->ready && !c->cur)
            c->failed_before_ready = true;   /* no connection, or lost before READY */
        if (c->cl && !c->ended) {
            char why[256];
            unsigned long e = bufferevent_get_openssl_error(c->bev);
            if (e) {
                char eb[96];
                ERR_error_string_n(e, eb, sizeof eb);
                snprintf(why, sizeof why, "TLS with %s failed: %s", c->remote, eb);
                c->tls_failed = true;
                if (strcmp(c->dl->cfg.delivery_tls_verify, "yes") != 0) {
                    /* RFC 7435: opportunistic TLS that fails is retried in
                     * the clear rather than not at all */
                    c->dest->notls_until = time(NULL) + 3600;
                    log_msg(LOG_WARN, "delivery", "event=tls_failed domain=%s remote=%s "
                            "error=\"%s\" note=\"clear text for an hour\"", c->dest->domain,
                            c->remote, eb);
                }
            } else {
                snprintf(why, sizeof why, "connection with %s lost", c->remote);
            }
            smtp_client_abort(c->cl, why);
        }
        c->ended = true;
        event_active(c->timer, EV_TIMEOUT, 0);
    }
}

/* The timer: a step took too long, or the session ended (made active). */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct oconn *c = arg;
    if (!c->ended && c->cl) {
        /* a real timeout while the session was alive: the client ends
         * everything in flight with "no answer" */
        smtp_client_abort(c->cl, "timeout");
    }
    c->ended = true;
    if (c->failed_before_ready && !c->cur && !c->dl->stopping) {
        /* try the next address of the route on a fresh connection */
        c->failed_before_ready = false;
        c->ended = false;
        c->ready = false;
        if (c->bev) {
            bufferevent_free(c->bev);
            c->bev = NULL;
        }
        smtp_client_free(c->cl);
        c->cl = NULL;
        if (!c->tls_failed || c->dest->notls_until <= time(NULL))
            c->addr++;         /* else: the same address again, in the clear */
        c->tls_failed = false;
        if (conn_connect(c))
            return;
        /* nothing left: the domain's waiting recipients are deferred */
        char why[320];
        snprintf(why, sizeof why, "could not connect to any mail server of %s", c->dest->domain);
        finish_pending(c->dl, c->dest, 0, why);
    }
    conn_close(c);
}

static bool next_target(struct oconn *c, char *ip, size_t iplen)
{
    const struct mx_route *r = &c->dest->route;
    while (c->host < r->nhosts) {
        const struct mx_host *h = &r->hosts[c->host];
        if (c->addr < h->naddrs) {
            snprintf(ip, iplen, "%s", h->addrs[c->addr]);
            snprintf(c->remote_host, sizeof c->remote_host, "%s", h->name);
            return true;
        }
        c->host++;
        c->addr = 0;
    }
    return false;
}

static bool conn_connect(struct oconn *c)
{
    struct delivery *dl = c->dl;
    char ip[46];
    while (next_target(c, ip, sizeof ip)) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        socklen_t sl;
        unsigned port = delivery_port(dl);
        if (strchr(ip, ':')) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)port);
            if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1) {
                c->addr++;
                continue;
            }
            sl = sizeof *s6;
            snprintf(c->remote, sizeof c->remote, "[%s]:%u", ip, port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)port);
            if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1) {
                c->addr++;
                continue;
            }
            sl = sizeof *s4;
            snprintf(c->remote, sizeof c->remote, "%s:%u", ip, port);
        }
        struct smtp_client_params p = {
            .helo_name = dl->cfg.hostname,
            .tls = SMTP_TLS_OPPORTUNISTIC,
            .tls_available = dl->tls != NULL,
            .auth_user = dl->cfg.delivery_relay[0] && dl->cfg.delivery_relay_user[0]
                             ? dl->cfg.delivery_relay_user : NULL,
            .auth_password = dl->cfg.delivery_relay_password,
        };
        if (!strcmp(dl->cfg.delivery_tls_verify, "yes"))
            p.tls = SMTP_TLS_REQUIRED;
        else if (c->dest->notls_until > time(NULL))
            p.tls = SMTP_TLS_NEVER;
        struct smtp_client_hooks h = {
            .arg = c, .write = hook_write, .starttls = hook_starttls, .event = hook_event,
            .rcpt_done = hook_rcpt_done, .message_done = hook_message_done,
        };
        c->cl = smtp_client_new(&p, &h);
        c->bev = bufferevent_socket_new(dl->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!c->cl || !c->bev) {
            smtp_client_free(c->cl);
            c->cl = NULL;
            if (c->bev)
                bufferevent_free(c->bev);
            c->bev = NULL;
            return false;
        }
        bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        struct timeval tv = { CONNECT_TIMEOUT_S, 0 };
        bufferevent_set_timeouts(c->bev, NULL, &tv);
        if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)sl) == 0) {
            log_msg(LOG_DEBUG, "delivery", "event=connect domain=%s remote=%s host=%s",
                    c->dest->domain, c->remote, c->remote_host);
            arm_timer(c, CONNECT_TIMEOUT_S * 1000);
            return true;
        }
        bufferevent_free(c->bev);
        c->bev = NULL;
        smtp_client_free(c->cl);
        c->cl = NULL;
        c->addr++;
    }
    return false;
}

static void conn_close(struct oconn *c)
{
    struct delivery *dl = c->dl;
    if (c->cur) {
        struct unit *u = c->cur;
        c->cur = NULL;
        finish_unit(dl, u, c->last_fail.text[0] ? &c->last_fail : NULL,
                    "connection closed before the message was sent", c->remote, 0, false);
    }
    free(c->msg);
    if (c->timer)
        event_free(c->timer);
    if (c->next_ev)
        event_free(c->next_ev);
    if (c->bev)
        bufferevent_free(c->bev);
    smtp_client_free(c->cl);
    c->dest->conns--;
    dl->conns--;
    TAILQ_REMOVE(&dl->oconns, c, entry);
    free(c);
    schedule(dl);
}

/* Sends the domain's next recipient on this connection, or says QUIT. */
static bool conn_start_one(struct oconn *c);

static void conn_start_next(struct oconn *c)
{
    while (!conn_start_one(c))
        ;
}

/* Returns false when it should be called again (that recipient failed
 * before anything was sent). */
static bool conn_start_one(struct oconn *c)
{
    struct delivery *dl = c->dl;
    struct dest *d = c->dest;
    time_t now = time(NULL);
    if (now - d->minute_start >= 60) {
        d->minute_start = now;
        d->sent_in_minute = 0;
    }
    struct unit *u = TAILQ_FIRST(&d->pending);
    if (!u || dl->stopping || d->sent_in_minute >= dl->cfg.delivery_messages_per_minute_per_domain ||
        d->paused_until > now) {
        if (d->sent_in_minute >= dl->cfg.delivery_messages_per_minute_per_domain &&
            d->paused_until < d->minute_start + 60)
            d->paused_until = d->minute_start + 60;   /* no reconnecting until then */
        smtp_client_quit(c->cl);
        return true;
    }
    TAILQ_REMOVE(&d->pending, u, entry);
    d->npending--;
    d->sent_in_minute++;
    char *raw = NULL;
    size_t len = 0;
    char mail_from[SMTP_MAX_PATH_LEN + 1];
    if (store_outbound_get_raw(dl->st, u->d.message_id, &raw, &len, mail_from,
                               sizeof mail_from) != STORE_OK) {
        finish_unit(dl, u, NULL, "the message cannot be read from the store", NULL, 0, false);
        return false;
    }
    /* VERP: bounce+TOKEN@ the sender domain's custom MAIL FROM domain,
     * else the service's bounce domain */
    char verp[SMTP_MAX_PATH_LEN + 1];
    const char *at = strrchr(mail_from, '@');
    struct store_domain sd;
    const char *mf_domain = NULL;
    if (at && store_domain_get(dl->st, u->d.account_id, at + 1, &sd) == STORE_OK &&
        sd.status == STORE_ID_VERIFIED && sd.mail_from_domain[0] &&
        sd.mail_from_status == STORE_ID_VERIFIED)   /* its MX and SPF are seen in DNS */
        mf_domain = sd.mail_from_domain;
    if (outbound_verp_address(dl->ob, u->d.rcpt_id, mf_domain, verp, sizeof verp) != 0) {
        free(raw);
        finish_unit(dl, u, NULL, "the envelope sender does not fit", NULL, 0, false);
        return false;
    }
    c->cur = u;
    c->msg = raw;
    c->rcpt_refused = false;
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    const char *rcpts[1] = { u->d.rcpt };
    bool utf8 = false;
    for (const char *p = u->d.rcpt; *p; p++)
        utf8 |= (unsigned char)*p >= 0x80;
    if (smtp_client_send(c->cl, verp, utf8, rcpts, 1, raw, len) != 0 && c->cur == u) {
        /* refused locally before anything was sent (message_done not called) */
        c->cur = NULL;
        free(c->msg);
        c->msg = NULL;
        struct smtp_client_reply r = { .code = 554 };
        snprintf(r.text, sizeof r.text, "the message cannot be sent to %s", c->remote_host);
        finish_unit(dl, u, &r, NULL, c->remote, 0, false);
        smtp_client_quit(c->cl);
    }
    return true;
}

static void conn_open(struct delivery *dl, struct dest *d)
{
    struct oconn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->dl = dl;
    c->dest = d;
    c->timer = evtimer_new(dl->base, on_timer, c);
    c->next_ev = event_new(dl->base, -1, 0, on_next, c);
    d->conns++;
    dl->conns++;
    TAILQ_INSERT_TAIL(&dl->oconns, c, entry);
    if (!c->timer || !c->next_ev || !conn_connect(c)) {
        char why[320];
        snprintf(why, sizeof why, "could not connect to any mail server of %s", d->domain);
        finish_pending(dl, d, 0, why);
        if (c->timer)
            event_free(c->timer);
        if (c->next_ev)
            event_free(c->next_ev);
        d->conns--;
        dl->conns--;
        TAILQ_REMOVE(&dl->oconns, c, entry);
        free(c);
    }
}

/* ---- the scheduler ---- */

struct claim_arg {
    struct delivery *dl;
    size_t n;
};

static int claim_one(const struct store_delivery *d, struct claim_arg *a)
{
    struct delivery *dl = a->dl;
    if (inflight_has(dl, d->rcpt_id))
        return 0;   /* our own attempt is still running: its lease was renewed */
    struct dest *dst = dest_get(dl, d->domain[0] ? d->domain : "invalid");
    struct unit *u = calloc(1, sizeof *u);
    if (!dst || !u) {
        free(u);
        return 1;
    }
    u->d = *d;
    u->dest = dst;
    inflight_add(dl, u);
    TAILQ_INSERT_TAIL(&dst->pending, u, entry);
    dst->npending++;
    a->n++;
    return 0;
}

/* The claim runs inside a group commit, maybe on another thread: it only
 * copies the rows; the delivery thread takes them once it returns. */
struct claim_write {
    int64_t now, lease_until;
    unsigned max;
    struct store_delivery *rows;
    size_t nrows;
};

static int claim_copy(const struct store_delivery *d, void *arg)
{
    struct claim_write *c = arg;
    if (c->nrows < c->max)
        c->rows[c->nrows++] = *d;
    return 0;
}

static int apply_claim(struct store *st, void *arg)
{
    struct claim_write *c = arg;
    c->nrows = 0;
    return store_delivery_claim(st, c->now, c->lease_until, c->max, claim_copy, c);
}

static void schedule(struct delivery *dl)
{
    if (dl->stopping)
        return;
    time_t now = time(NULL);
    struct timespec mt;
    clock_gettime(CLOCK_MONOTONIC, &mt);
    double mnow = (double)mt.tv_sec + (double)mt.tv_nsec / 1e9;
    bool claim = dl->units_held < MAX_UNITS_HELD;
    if (claim && mnow - dl->last_claim < CLAIM_SPACING_MS / 1000.0) {
        /* a burst of kicks (one per message accepted): one claim for all */
        claim = false;
        if (!evtimer_pending(dl->claim_later, NULL)) {
            struct timeval tv = { 0, CLAIM_SPACING_MS * 1000 };
            evtimer_add(dl->claim_later, &tv);
        }
    }
    if (claim) {
        dl->last_claim = mnow;
        struct claim_arg a = { dl, 0 };
        unsigned max = CLAIM_BATCH;
        if (max > MAX_UNITS_HELD - dl->units_held)
            max = (unsigned)(MAX_UNITS_HELD - dl->units_held);
        struct claim_write cw = { (int64_t)now, (int64_t)now + dl->cfg.delivery_lease, max,
                                  dl->claim_rows, 0 };
        struct gc_write w = { .apply = apply_claim, .arg = &cw };
        if (group_commit_write(dl->gc, dl->st, &w) != STORE_OK)
            log_msg(LOG_ERROR, "delivery", "event=claim_failed");
        else
            for (size_t i = 0; i < cw.nrows; i++)
                if (claim_one(&cw.rows[i], &a) != 0)
                    break;
    }
    for (size_t b = 0; b < DEST_BUCKETS; b++)
        for (struct dest **dp = &dl->dests[b]; *dp;) {
            struct dest *d = *dp;
            if (!d->npending) {
                /* forget idle domains (their route too) once nothing refers to them */
                if (!d->conns && !d->route_pending && d->route_expires < now &&
                    d->paused_until <= now && d->notls_until <= now) {
                    *dp = d->next;
                    free(d);
                    continue;
                }
                dp = &d->next;
                continue;
            }
            dp = &d->next;
            if (d->route_valid && d->route_expires < now)
                d->route_valid = false;
            if (!d->route_valid) {
                if (!d->route_pending) {
                    struct route_job *j = calloc(1, sizeof *j);
                    if (!j)
                        continue;
                    j->job.run = route_run;
                    j->job.done = route_done;
                    j->dl = dl;
                    j->dest = d;
                    d->route_pending = true;
                    workq_submit(dl->routes, &j->job);
                }
                continue;
            }
            if (d->paused_until > now)
                continue;
            if (now - d->minute_start < 60 &&
                d->sent_in_minute >= dl->cfg.delivery_messages_per_minute_per_domain)
                continue;   /* this minute's budget is spent */
            if (d->max_conns < dl->cfg.delivery_max_connections_per_domain && d->recover_at <= now) {
                d->max_conns++;   /* recover one connection per interval after a 421 */
                d->recover_at = now + PAUSE_AFTER_421_S;
            }
            /* one connection per 8 waiting recipients, within the caps */
            size_t need = (d->npending + 7) / 8;
            while (d->conns < need && d->conns < d->max_conns &&
                   dl->conns < dl->cfg.delivery_max_connections)
                conn_open(dl, d);
        }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    schedule(arg);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct delivery *dl = arg;
    dl->stopping = true;
    event_base_loopexit(dl->base, NULL);
}

static void *delivery_main(void *arg)
{
    struct delivery *dl = arg;
    log_msg(LOG_INFO, "delivery", "event=started port=%u relay=%s", dl->cfg.delivery_smtp_port,
            dl->cfg.delivery_relay[0] ? dl->cfg.delivery_relay : "-");
    schedule(dl);
    event_base_dispatch(dl->base);
    /* connections still open: closed without recording; their units are
     * handed back below with everything else not finished */
    struct oconn *oc;
    while ((oc = TAILQ_FIRST(&dl->oconns))) {
        TAILQ_REMOVE(&dl->oconns, oc, entry);
        if (oc->timer)
            event_free(oc->timer);
        if (oc->next_ev)
            event_free(oc->next_ev);
        if (oc->bev)
            bufferevent_free(oc->bev);
        smtp_client_free(oc->cl);
        free(oc->msg);
        free(oc);
    }
    /* hand back what was claimed and not finished: due now */
    flush_outcomes(dl);
    int64_t now = (int64_t)time(NULL);
    for (size_t b = 0; b < INFLIGHT_BUCKETS; b++)
        for (struct unit *u = dl->inflight[b]; u; u = u->hnext)
            store_delivery_update(dl->st, u->d.rcpt_id, STORE_RCPT_DEFERRED, u->d.attempts, now,
                                  u->d.last_response, now);
    return NULL;
}

struct delivery *delivery_start(const struct sesame_config *cfg, struct outbound *ob,
                                struct group_commit *gc, struct dns_resolver *dns,
                                SSL_CTX *client_tls, char *err, size_t errlen)
{
    struct delivery *dl = calloc(1, sizeof *dl);
    if (dl)
        dl->claim_rows = calloc(CLAIM_BATCH, sizeof *dl->claim_rows);
    if (!dl || !dl->claim_rows) {
        free(dl);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    dl->gc = gc;
    dl->cfg = *cfg;
    dl->ob = ob;
    dl->dns = dns;
    dl->tls = client_tls;
    dl->outcomes_tail = &dl->outcomes;
    TAILQ_INIT(&dl->oconns);
    dl->base = event_base_new();
    dl->st = store_open(cfg->store, cfg->data_dir, err, errlen);
    if (!dl->base || !dl->st)
        goto fail;
    dl->routes = workq_new(dl->base, 4, cfg->store, cfg->data_dir, err, errlen);
    dl->wc = webhook_client_new(dl->base, client_tls, NULL);
    if (!dl->routes || !dl->wc)
        goto fail;
    dl->events = event_dispatcher_new(dl->base, dl->st, dl->wc);
    dl->tick = event_new(dl->base, -1, EV_PERSIST, on_tick, dl);
    dl->kick = event_new(dl->base, -1, 0, on_tick, dl);
    dl->stop_ev = event_new(dl->base, -1, 0, on_stop, dl);
    dl->flush_ev = event_new(dl->base, -1, 0, on_flush, dl);
    dl->claim_later = evtimer_new(dl->base, on_tick, dl);
    if (!dl->events || !dl->tick || !dl->kick || !dl->stop_ev || !dl->flush_ev ||
        !dl->claim_later) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct timeval one = { 1, 0 };
    event_add(dl->tick, &one);
    if (pthread_create(&dl->thread, NULL, delivery_main, dl) != 0) {
        snprintf(err, errlen, "cannot start the delivery thread");
        goto fail;
    }
    return dl;
fail:
    if (dl->events)
        event_dispatcher_free(dl->events);
    if (dl->wc)
        webhook_client_free(dl->wc);
    workq_free(dl->routes);
    store_close(dl->st);
    if (dl->tick)
        event_free(dl->tick);
    if (dl->kick)
        event_free(dl->kick);
    if (dl->stop_ev)
        event_free(dl->stop_ev);
    if (dl->flush_ev)
        event_free(dl->flush_ev);
    if (dl->claim_later)
        event_free(dl->claim_later);
    if (dl->base)
        event_base_free(dl->base);
    free(dl->claim_rows);
    free(dl);
    return NULL;
}

void delivery_kick(struct delivery *d)
{
    if (d)
        event_active(d->kick, EV_TIMEOUT, 0);
}

void delivery_stop(struct delivery *dl)
{
    if (!dl)
        return;
    event_active(dl->stop_ev, EV_TIMEOUT, 0);
    pthread_join(dl->thread, NULL);
    /* connections still open: close without recording (handed back above) */
    event_dispatcher_free(dl->events);
    webhook_client_free(dl->wc);
    workq_free(dl->routes);
    for (size_t b = 0; b < DEST_BUCKETS; b++)
        while (dl->dests[b]) {
            struct dest *d = dl->dests[b];
            dl->dests[b] = d->next;
            free(d);
        }
    for (size_t b = 0; b < INFLIGHT_BUCKETS; b++)
        while (dl->inflight[b]) {
            struct unit *u = dl->inflight[b];
            dl->inflight[b] = u->hnext;
            free(u);
        }
    event_free(dl->tick);
    event_free(dl->kick);
    event_free(dl->stop_ev);
    event_free(dl->flush_ev);
    event_free(dl->claim_later);
    store_close(dl->st);
    event_base_free(dl->base);
    free(dl->claim_rows);
    free(dl);
}
