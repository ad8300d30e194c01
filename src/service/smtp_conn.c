/* SMTP connections on the event loop: the listeners, connection limits
 * (in total and per client IP), one bufferevent per connection with idle
 * and total timeouts, STARTTLS by stacking an OpenSSL filter bufferevent,
 * and the plumbing between the socket and the session engine
 * (smtp/smtp_session.c). The policy of each role is in inbound.c and
 * submission.c; this file decides nothing about mail. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service/service_internal.h"
#include "service/tls.h"
#include "util/log.h"

#define CONN_MAX_PULLUP (256 * 1024)   /* > the longest line the session accepts */

static const char *role_name(enum conn_role r) { return r == ROLE_MX ? "mx" : "submission"; }

/* ---- per-IP connection counts ---- */

static unsigned ip_bucket(const char *ip)
{
    unsigned h = 2166136261u;
    for (const char *p = ip; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % IP_BUCKETS;
}

static struct ip_count **ip_find(struct service *svc, const char *ip)
{
    struct ip_count **pp = &svc->ip_table[ip_bucket(ip)];
    while (*pp && strcmp((*pp)->ip, ip) != 0)
        pp = &(*pp)->next;
    return pp;
}

static bool ip_acquire(struct service *svc, const char *ip)
{
    struct ip_count **pp = ip_find(svc, ip);
    if (!*pp) {
        struct ip_count *e = calloc(1, sizeof *e);
        if (!e)
            return false;
        snprintf(e->ip, sizeof e->ip, "%s", ip);
        *pp = e;
    }
    if ((*pp)->count >= svc->cfg.max_connections_per_ip)
        return false;
    (*pp)->count++;
    return true;
}

static void ip_release(struct service *svc, const char *ip)
{
    struct ip_count **pp = ip_find(svc, ip);
    if (*pp && --(*pp)->count == 0) {
        struct ip_count *e = *pp;
        *pp = e->next;
        free(e);
    }
}

/* ---- connection life ---- */

static void conn_free(struct conn *c)
{
    struct service *svc = c->svc;
    TAILQ_REMOVE(&svc->conns, c, entry);
    svc->nconns--;
    metric_gauge_add(svc->m.conn_open[c->role], -1);
    ip_release(svc, c->ip);
    if (c->total_timer)
        event_free(c->total_timer);
    if (c->bev)
        bufferevent_free(c->bev);
    smtp_session_free(c->sess);
    log_msg(LOG_DEBUG, "smtp", "event=disconnect conn=%llu role=%s ip=%s",
            (unsigned long long)c->id, role_name(c->role), c->ip);
    free(c);
}

/* After any call into the session from outside a read callback: closes the
 * connection when the session asked for it and the output is flushed. */
static void conn_after(struct conn *c)
{
    if (c->job_pending)
        return;
    if (c->dead) {
        conn_free(c);
        return;
    }
    if (c->closing) {
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_free(c);
    }
}

bool conn_release_job(struct conn *c)
{
    c->job_pending = false;
    if (c->dead) {
        conn_free(c);
        return true;
    }
    return false;
}

static void start_tls(struct conn *c);

static void process_input(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (!c->closing && !c->dead && !smtp_session_waiting(c->sess)) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        size_t take = len < CONN_MAX_PULLUP ? len : CONN_MAX_PULLUP;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
        if (!p)
            break;
        size_t n = smtp_session_feed(c->sess, p, take);
        evbuffer_drain(in, n);
        if (c->want_tls) {
            /* whatever else the client sent in the clear is dropped
             * (RFC 3207 §4.2, CVE-2011-0411) */
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        if (n == 0)
            break;
    }
    if (c->want_tls && !c->closing && !c->dead) {
        c->want_tls = false;
        start_tls(c);
        return;
    }
    conn_after(c);
}

void conn_resume(struct conn *c)
{
    if (c->dead || c->closing) {
        conn_after(c);
        return;
    }
    bufferevent_enable(c->bev, EV_READ);
    process_input(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->closing && !c->job_pending)
        conn_after(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* the TLS handshake finished */
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        tls_describe(ssl, c->tls_desc, sizeof c->tls_desc);
        log_msg(LOG_DEBUG, "smtp", "event=tls conn=%llu ip=%s tls=\"%s\"",
                (unsigned long long)c->id, c->ip, c->tls_desc);
        smtp_session_tls_started(c->sess);
        process_input(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->job_pending || smtp_session_waiting(c->sess)) {
            /* we are the slow one: keep waiting for the job */
            bufferevent_enable(c->bev, EV_READ);
            return;
        }
        log_msg(LOG_INFO, "smtp", "event=timeout conn=%llu role=%s ip=%s",
                (unsigned long long)c->id, role_name(c->role), c->ip);
        smtp_session_timeout(c->sess);
        conn_after(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        unsigned long e = bufferevent_get_openssl_error(c->bev);
        if (e) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            log_msg(LOG_INFO, "smtp", "event=tls_error conn=%llu ip=%s error=\"%s\"",
                    (unsigned long long)c->id, c->ip, buf);
        }
        if (c->job_pending) {
            c->dead = true;
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
            return;
        }
        conn_free(c);
    }
}

static void set_timeouts(struct conn *c)
{
    struct timeval idle = { (time_t)c->svc->cfg.idle_timeout, 0 };
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_setwatermark(c->bev, EV_READ, 0, SMTP_MAX_PIPELINE_BYTES + CONN_MAX_PULLUP);
}

static void start_tls(struct conn *c)
{
    SSL *ssl = SSL_new(c->svc->tls);
    if (!ssl) {
        conn_free(c);
        return;
    }
    struct bufferevent *tb = bufferevent_openssl_filter_new(
        c->svc->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!tb) {
        SSL_free(ssl);
        conn_free(c);
        return;
    }
    c->bev = tb;
    bufferevent_setcb(tb, on_read, on_write, on_event, c);
    set_timeouts(c);
    bufferevent_enable(tb, EV_READ | EV_WRITE);
}

/* ---- session hooks common to both roles ---- */

static void hook_write(void *arg, const char *data, size_t len)
{
    struct conn *c = arg;
    if (!c->dead && bufferevent_write(c->bev, data, len) != 0)
        c->closing = true;
}

static void hook_starttls(void *arg)
{
    struct conn *c = arg;
    c->want_tls = true;   /* process_input switches once the session returns */
}

static void hook_close(void *arg)
{
    struct conn *c = arg;
    c->closing = true;
}

static void on_total_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->job_pending)
        return;
    log_msg(LOG_INFO, "smtp", "event=session_timeout conn=%llu ip=%s",
            (unsigned long long)c->id, c->ip);
    smtp_session_timeout(c->sess);
    conn_after(c);
}

static void refuse(evutil_socket_t fd, const char *text)
{
    ssize_t w = send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    evutil_closesocket(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct service *svc = arg;
    enum conn_role role = (l == svc->listeners[ROLE_MX]) ? ROLE_MX : ROLE_SUBMISSION;
    char ip[STORE_IP_MAX] = "";
    bool loopback = false;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            loopback = s6->sin6_addr.s6_addr[12] == 127;
    }
    metric_inc(svc->m.conn_total[role]);
    if (svc->stopping) {
        refuse(fd, "421 4.3.2 Service shutting down\r\n");
        return;
    }
    if (svc->nconns >= svc->cfg.max_connections) {
        metric_inc(svc->m.conn_refused_limit);
        log_msg(LOG_WARN, "smtp", "event=refused reason=max_connections ip=%s", ip);
        refuse(fd, "421 4.7.0 Too many connections, try again later\r\n");
        return;
    }
    if (!ip_acquire(svc, ip)) {
        metric_inc(svc->m.conn_refused_limit);
        log_msg(LOG_WARN, "smtp", "event=refused reason=max_connections_per_ip ip=%s", ip);
        refuse(fd, "421 4.7.0 Too many connections from your address, try again later\r\n");
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        ip_release(svc, ip);
        refuse(fd, "421 4.3.0 Out of memory, try again later\r\n");
        return;
    }
    static uint64_t next_id;
    c->id = ++next_id;
    c->svc = svc;
    c->role = role;
    c->loopback = loopback;
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    if (spf_ip_parse(ip, &c->addr) != 0)
        memset(&c->addr, 0, sizeof c->addr);

    struct smtp_session_params p = {
        .hostname = svc->cfg.hostname,
        .submission = role == ROLE_SUBMISSION,
        .offer_auth = role == ROLE_SUBMISSION,
        .auth_needs_tls = !loopback,
        .tls_available = svc->tls != NULL,
        .max_message_size = (size_t)svc->cfg.max_message_size,
        .max_recipients = svc->cfg.max_recipients,
        .max_errors = svc->cfg.max_errors,
    };
    struct smtp_hooks h = { .arg = c, .write = hook_write, .starttls = hook_starttls,
                            .close = hook_close };
    if (role == ROLE_MX)
        inbound_hooks(c, &h);
    else
        submission_hooks(c, &h);
    c->sess = smtp_session_new(&p, &h);
    c->bev = bufferevent_socket_new(svc->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->total_timer = evtimer_new(svc->base, on_total_timeout, c);
    TAILQ_INSERT_TAIL(&svc->conns, c, entry);
    svc->nconns++;
    metric_gauge_add(svc->m.conn_open[role], 1);
    if (!c->sess || !c->bev || !c->total_timer) {
        if (!c->bev)
            evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    struct timeval total = { (time_t)svc->cfg.session_timeout, 0 };
    evtimer_add(c->total_timer, &total);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    set_timeouts(c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    log_msg(LOG_DEBUG, "smtp", "event=connect conn=%llu role=%s ip=%s",
            (unsigned long long)c->id, role_name(role), ip);
    smtp_session_start(c->sess);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    log_msg(LOG_WARN, "smtp", "event=accept_error error=\"%s\"", evutil_socket_error_to_string(e));
    (void)l;
}

static struct evconnlistener *listen_on(struct service *svc, const struct config_listen *cl,
                                        char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (evutil_parse_sockaddr_port(cl->text, (struct sockaddr *)&ss, &sslen) != 0) {
        snprintf(err, errlen, "cannot parse listen address %s", cl->text);
        return NULL;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        svc->base, on_accept, svc, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&ss, sslen);
    if (!l) {
        snprintf(err, errlen, "cannot listen on %s: %s", cl->text, strerror(errno));
        return NULL;
    }
    evconnlistener_set_error_cb(l, on_accept_error);
    return l;
}

int conn_listeners_start(struct service *svc, char *err, size_t errlen)
{
    const struct config_listen *which[2] = { &svc->cfg.mx, &svc->cfg.submission };
    for (int r = 0; r < 2; r++) {
        if (!which[r]->text[0])
            continue;
        svc->listeners[r] = listen_on(svc, which[r], err, errlen);
        if (!svc->listeners[r])
            return -1;
        log_msg(LOG_INFO, "service", "event=listening role=%s addr=%s", role_name((enum conn_role)r),
                which[r]->text);
    }
    return 0;
}

void conn_listeners_stop(struct service *svc)
{
    for (int r = 0; r < 2; r++)
        if (svc->listeners[r]) {
            evconnlistener_free(svc->listeners[r]);
            svc->listeners[r] = NULL;
        }
}

void conn_shutdown_all(struct service *svc)
{
    struct conn *c, *next;
    for (c = TAILQ_FIRST(&svc->conns); c; c = next) {
        next = TAILQ_NEXT(c, entry);
        if (c->dead)
            continue;
        smtp_session_shutdown(c->sess);
        conn_after(c);
    }
}
