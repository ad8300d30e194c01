/* The service's life: set-up of every part (store, resolver, TLS, worker
 * pool, HTTP thread, SMTP listeners), the metrics it exports, signals
 * (SIGTERM/SIGINT drain and stop, SIGHUP reloads), and the tear-down. */
#include "service/service.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "service/events.h"
#include "service/dmarc_reporting.h"
#include "service/identities.h"
#include "service/reputation.h"
#include "service/service_internal.h"
#include "service/tls.h"
#include "util/log.h"

#define SHUTDOWN_GRACE_S 30   /* sessions and jobs in flight get this long */

static enum log_level level_of(const char *s)
{
    if (!strcmp(s, "debug"))
        return LOG_DEBUG;
    if (!strcmp(s, "warn"))
        return LOG_WARN;
    if (!strcmp(s, "error"))
        return LOG_ERROR;
    return LOG_INFO;
}

void service_queue_id(struct conn *c, char *out, size_t outlen)
{
    static atomic_ullong counter;
    unsigned long long n = atomic_fetch_add(&counter, 1) + 1;
    (void)c;
    snprintf(out, outlen, "%llX%05llX", (unsigned long long)time(NULL), n & 0xFFFFF);
}

void service_metrics_init(struct service *svc)
{
    struct metrics *m = svc->metrics;
    struct service_metrics *sm = &svc->m;
    static const char *roles[2] = { "listener=\"mx\"", "listener=\"submission\"" };
    for (int r = 0; r < 2; r++) {
        sm->conn_total[r] = metrics_counter(m, "sesame_smtp_connections_total",
                                            "SMTP connections accepted", roles[r]);
        sm->conn_open[r] = metrics_gauge(m, "sesame_smtp_connections_open",
                                         "SMTP connections open now", roles[r]);
        sm->msg_accepted[r] = metrics_counter(m, "sesame_messages_accepted_total",
                                              "messages acknowledged with 250 and stored", roles[r]);
        sm->data_latency[r] = metrics_histogram(m, "sesame_data_latency_seconds",
                                                "end of DATA to reply (checks and store)", roles[r],
                                                METRICS_LATENCY_BOUNDS, METRICS_LATENCY_NBOUNDS);
    }
    sm->conn_refused_limit = metrics_counter(m, "sesame_smtp_connections_refused_total",
                                             "connections refused by a limit", "reason=\"limit\"");
    const char *rej = "sesame_messages_rejected_total";
    const char *rejh = "recipients or messages refused, by reason";
    sm->msg_rejected_relay = metrics_counter(m, rej, rejh, "reason=\"relay\"");
    sm->msg_rejected_dmarc = metrics_counter(m, rej, rejh, "reason=\"dmarc\"");
    sm->msg_rejected_rule = metrics_counter(m, rej, rejh, "reason=\"rule\"");
    sm->msg_rejected_sender = metrics_counter(m, rej, rejh, "reason=\"sender\"");
    sm->msg_tempfail = metrics_counter(m, "sesame_messages_tempfail_total",
                                       "messages answered 4xx (store or DNS trouble)", NULL);
    sm->msg_dropped_rule = metrics_counter(m, "sesame_messages_dropped_total",
                                           "messages dropped by a rule", "reason=\"rule\"");
    sm->msg_quarantined = metrics_counter(m, "sesame_messages_quarantined_total",
                                          "messages stored with the quarantine flag", NULL);
    static const char *fb_kinds[4] = { "kind=\"bounce\"", "kind=\"transient\"",
                                       "kind=\"delay\"", "kind=\"complaint\"" };
    for (int i = 0; i < 4; i++)
        sm->feedback[i] = metrics_counter(m, "sesame_feedback_reports_total",
                                          "DSN and ARF reports received at VERP addresses",
                                          fb_kinds[i]);
    const char *au = "sesame_smtp_auth_total", *auh = "SMTP AUTH attempts";
    sm->auth_ok = metrics_counter(m, au, auh, "result=\"ok\"");
    sm->auth_failed = metrics_counter(m, au, auh, "result=\"failed\"");
    sm->auth_blocked = metrics_counter(m, au, auh, "result=\"blocked\"");
    static const char *spf_words[7] = { "none", "neutral", "pass", "fail", "softfail",
                                        "temperror", "permerror" };
    for (int i = 0; i < 7; i++) {
        char l[48];
        snprintf(l, sizeof l, "result=\"%s\"", spf_words[i]);
        sm->spf[i] = metrics_counter(m, "sesame_auth_spf_total", "SPF verdicts (MAIL FROM)", l);
    }
    const char *dk = "sesame_auth_dkim_total", *dkh = "DKIM verdicts (pass if any signature passes)";
    sm->dkim_pass = metrics_counter(m, dk, dkh, "result=\"pass\"");
    sm->dkim_fail = metrics_counter(m, dk, dkh, "result=\"fail\"");
    sm->dkim_none = metrics_counter(m, dk, dkh, "result=\"none\"");
    const char *dm = "sesame_auth_dmarc_total", *dmh = "DMARC verdicts";
    sm->dmarc_pass = metrics_counter(m, dm, dmh, "result=\"pass\"");
    sm->dmarc_fail = metrics_counter(m, dm, dmh, "result=\"fail\"");
    sm->dmarc_none = metrics_counter(m, dm, dmh, "result=\"none\"");
}

/* ---- signals ---- */

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct service *svc = arg;
    static time_t deadline;
    if (!deadline)
        deadline = time(NULL) + SHUTDOWN_GRACE_S;
    size_t jobs = workq_inflight(svc->workq);
    if ((svc->nconns == 0 && jobs == 0) || time(NULL) >= deadline) {
        log_msg(LOG_INFO, "service", "event=stopped sessions_left=%u jobs_left=%zu",
                svc->nconns, jobs);
        event_base_loopexit(svc->base, NULL);
        return;
    }
    struct timeval tv = { 0, 100 * 1000 };
    evtimer_add(svc->drain_timer, &tv);
}

void service_stop(struct service *svc)
{
    if (svc->stopping)
        return;
    svc->stopping = true;
    log_msg(LOG_INFO, "service", "event=stopping sessions=%u", svc->nconns);
    conn_listeners_stop(svc);
    conn_shutdown_all(svc);
    on_drain(-1, 0, svc);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    log_msg(LOG_INFO, "service", "event=signal signal=%s", sig == SIGINT ? "INT" : "TERM");
    service_stop(arg);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct service *svc = arg;
    if (!svc->config_path[0]) {
        log_msg(LOG_INFO, "service", "event=reload result=skipped reason=\"no config file\"");
        return;
    }
    struct sesame_config next;
    char err[512];
    if (config_load(&next, svc->config_path, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "service", "event=reload result=failed error=\"%s\"", err);
        return;
    }
    if (strcmp(next.mx.text, svc->cfg.mx.text) || strcmp(next.submission.text, svc->cfg.submission.text) ||
        strcmp(next.http.text, svc->cfg.http.text) || strcmp(next.data_dir, svc->cfg.data_dir) ||
        strcmp(next.store, svc->cfg.store) || strcmp(next.dns_servers, svc->cfg.dns_servers) ||
        next.workers != svc->cfg.workers)
        log_msg(LOG_WARN, "service", "event=reload note=\"listen addresses, store, dns and workers "
                "change only on restart\"");
    if (strcmp(next.tls_cert, svc->cfg.tls_cert) || strcmp(next.tls_key, svc->cfg.tls_key) ||
        strcmp(next.hostname, svc->cfg.hostname)) {
        SSL_CTX *ctx = tls_server_ctx(next.tls_cert, next.tls_key, svc->cfg.data_dir,
                                      next.hostname, err, sizeof err);
        if (!ctx) {
            log_msg(LOG_ERROR, "service", "event=reload result=failed error=\"%s\"", err);
            return;
        }
        SSL_CTX_free(svc->tls);   /* sessions in TLS hold their own reference */
        svc->tls = ctx;
    }
    /* what new sessions see */
    snprintf(svc->cfg.hostname, sizeof svc->cfg.hostname, "%s", next.hostname);
    snprintf(svc->cfg.tls_cert, sizeof svc->cfg.tls_cert, "%s", next.tls_cert);
    snprintf(svc->cfg.tls_key, sizeof svc->cfg.tls_key, "%s", next.tls_key);
    svc->cfg.max_message_size = next.max_message_size;
    svc->cfg.max_recipients = next.max_recipients;
    svc->cfg.max_connections = next.max_connections;
    svc->cfg.max_connections_per_ip = next.max_connections_per_ip;
    svc->cfg.idle_timeout = next.idle_timeout;
    svc->cfg.session_timeout = next.session_timeout;
    svc->cfg.max_errors = next.max_errors;
    snprintf(svc->cfg.log_level, sizeof svc->cfg.log_level, "%s", next.log_level);
    log_set_level(level_of(next.log_level));
    log_msg(LOG_INFO, "service", "event=reload result=ok");
}

/* ---- life ---- */

struct service *service_new(const struct sesame_config *cfg, const char *config_path,
                            char *err, size_t errlen)
{
    static bool threads_on;
    if (!threads_on) {
        if (evthread_use_pthreads() != 0 || sodium_init() < 0) {
            snprintf(err, errlen, "cannot initialise libevent threads or libsodium");
            return NULL;
        }
        threads_on = true;
    }
    struct service *svc = calloc(1, sizeof *svc);
    if (!svc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    svc->cfg = *cfg;
    svc->http_cfg = *cfg;   /* the HTTP lanes' copy: SIGHUP never writes it (no data race) */
    snprintf(svc->config_path, sizeof svc->config_path, "%s", config_path ? config_path : "");
    TAILQ_INIT(&svc->conns);
    log_set_level(level_of(cfg->log_level));

    svc->st = store_open(cfg->store, cfg->data_dir, err, errlen);
    if (!svc->st)
        goto fail;
    const char *dns_server = cfg->dns_servers[0] ? cfg->dns_servers : getenv("SESAME_DNS");
    svc->dns = dns_unbound_new(dns_server && dns_server[0] ? dns_server : NULL,
                               cfg->dns_timeout_ms, err, errlen);
    if (!svc->dns)
        goto fail;
    svc->tls = tls_server_ctx(cfg->tls_cert, cfg->tls_key, cfg->data_dir, cfg->hostname, err,
                              errlen);
    if (!svc->tls)
        goto fail;
    char cerr[256];
    svc->client_tls = tls_client_ctx(cerr, sizeof cerr);
    if (!svc->client_tls)
        log_msg(LOG_WARN, "service", "event=no_client_tls error=\"%s\" note=\"https webhooks "
                "will fail\"", cerr);
    svc->keycache = dkim_keycache_new(1024);
    svc->creds = cred_cache_new();
    svc->authfail = authfail_new(cfg->auth_failures_per_ip, 600);
    svc->metrics = metrics_new();
    svc->gc = group_commit_new();
    svc->base = event_base_new();
    if (!svc->keycache || !svc->creds || !svc->authfail || !svc->metrics || !svc->base || !svc->gc) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    service_metrics_init(svc);
    svc->webhooks = webhook_client_new(svc->base, svc->client_tls, svc->metrics);
    svc->workq = workq_new(svc->base, cfg->workers, cfg->store, cfg->data_dir, err, errlen);
    if (!svc->webhooks || !svc->workq)
        goto fail;
    event_set_reporting_mta(cfg->hostname);
    struct reputation_limits rl;
    reputation_limits_from_config(cfg, &rl);
    reputation_configure(&rl);
    svc->outbound = outbound_new(cfg, svc->gc, svc->st, err, errlen);
    if (!svc->outbound)
        goto fail;
    svc->delivery = delivery_start(cfg, svc->outbound, svc->gc, svc->dns, svc->client_tls, err,
                                   errlen);
    if (!svc->delivery)
        goto fail;
    outbound_set_notify(svc->outbound, (void (*)(void *))delivery_kick, svc->delivery);
    svc->checker = identity_checker_start(cfg, svc->dns, err, errlen);
    if (!svc->checker)
        goto fail;
    if (cfg->dmarc_reports[0] == 'y') {
        svc->reporter = dmarc_reporter_start(&svc->cfg, svc->outbound, svc->dns, err, errlen);
        if (!svc->reporter)
            goto fail;
    }
    if (cfg->http.text[0]) {
        struct api_context proto = { .st = NULL, .dns = svc->dns, .creds = svc->creds,
                                     .authfail = svc->authfail, .metrics = svc->metrics,
                                     .cfg = &svc->http_cfg, .outbound = svc->outbound,
                                     .checker = svc->checker };
        svc->http = http_server_start(&cfg->http, &proto, err, errlen);
        if (!svc->http)
            goto fail;
        log_msg(LOG_INFO, "service", "event=listening role=http addr=%s", cfg->http.text);
    }
    if (conn_listeners_start(svc, err, errlen) != 0)
        goto fail;
    svc->sig_term = evsignal_new(svc->base, SIGTERM, on_term, svc);
    svc->sig_int = evsignal_new(svc->base, SIGINT, on_term, svc);
    svc->sig_hup = evsignal_new(svc->base, SIGHUP, on_hup, svc);
    svc->drain_timer = evtimer_new(svc->base, on_drain, svc);
    if (!svc->sig_term || !svc->sig_int || !svc->sig_hup || !svc->drain_timer) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    evsignal_add(svc->sig_term, NULL);
    evsignal_add(svc->sig_int, NULL);
    evsignal_add(svc->sig_hup, NULL);
    signal(SIGPIPE, SIG_IGN);
    return svc;
fail:
    service_free(svc);
    return NULL;
}

int service_run(struct service *svc)
{
    log_msg(LOG_INFO, "service", "event=started hostname=%s data_dir=%s store=%s workers=%u",
            svc->cfg.hostname, svc->cfg.data_dir, svc->cfg.store, svc->cfg.workers);
    if (event_base_dispatch(svc->base) < 0)
        return -1;
    return svc->exit_code;
}

void service_free(struct service *svc)
{
    if (!svc)
        return;
    conn_listeners_stop(svc);
    if (svc->http)
        http_server_stop(svc->http);
    /* the workers first: a job still queued may notify the delivery */
    workq_free(svc->workq);
    svc->workq = NULL;
    identity_checker_stop(svc->checker);
    dmarc_reporter_stop(svc->reporter);
    delivery_stop(svc->delivery);
    outbound_free(svc->outbound);
    group_commit_free(svc->gc);
    if (svc->webhooks)
        webhook_client_free(svc->webhooks);
    while (!TAILQ_EMPTY(&svc->conns)) {
        struct conn *c = TAILQ_FIRST(&svc->conns);
        c->job_pending = false;
        c->dead = true;
        conn_release_job(c);
    }
    for (size_t i = 0; i < IP_BUCKETS; i++)
        while (svc->ip_table[i]) {
            struct ip_count *e = svc->ip_table[i];
            svc->ip_table[i] = e->next;
            free(e);
        }
    if (svc->sig_term)
        event_free(svc->sig_term);
    if (svc->sig_int)
        event_free(svc->sig_int);
    if (svc->sig_hup)
        event_free(svc->sig_hup);
    if (svc->drain_timer)
        event_free(svc->drain_timer);
    if (svc->base)
        event_base_free(svc->base);
    metrics_free(svc->metrics);
    authfail_free(svc->authfail);
    cred_cache_free(svc->creds);
    dkim_keycache_free(svc->keycache);
    if (svc->tls)
        SSL_CTX_free(svc->tls);
    if (svc->client_tls)
        SSL_CTX_free(svc->client_tls);
    if (svc->dns)
        dns_resolver_free(svc->dns);
    store_close(svc->st);
    free(svc);
}
