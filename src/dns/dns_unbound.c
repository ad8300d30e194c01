/* The libunbound resolver: dns_unbound_new() configures one ub_ctx (system
 * resolvers, or every query forwarded to one server, special-use zones
 * included) and answers dns_query() synchronously with a hard per-query
 * deadline (ub_resolve_async + poll on ub_fd + ub_cancel). Threads share the
 * context and its cache; one of the waiting threads at a time polls and runs
 * ub_process() for all of them (leader/followers under one mutex).
 * It does not validate DNSSEC (no trust anchor; DANE later) and does not
 * retry: a query that misses its deadline is DNS_TEMPFAIL.
 * See docs/dns.md for the options and why. */
#include "dns/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>

#include "util/limits.h"
#include "util/log.h"
#include "util/strview.h"

#define RCODE_NOERROR  0
#define RCODE_NXDOMAIN 3
#define CLASS_IN       1

struct ub_resolver {
    struct dns_resolver base;
    struct ub_ctx *ctx;
    unsigned timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* signalled when the poller hands over */
    int polling;           /* a thread is in poll() on ub_fd */
};

/* One outstanding query; lives on the asking thread's stack. */
struct ub_pending {
    int done;
    int err;
    struct ub_result *result;
};

/* Special-use zones libunbound answers locally by default (RFC 6761,
 * RFC 6303, RFC 7686, RFC 8375). When forwarding to an explicit server they
 * are made transparent, so the server answers them. The RFC 1918 and other
 * AS112 reverse zones are covered by unblock-lan-zones; they are listed
 * anyway so that a libunbound with a longer default list still forwards. */
static const char *const special_zones[] = {
    "localhost.", "test.", "invalid.", "onion.", "local.",
    "home.arpa.", "resolver.arpa.", "service.arpa.",
    "127.in-addr.arpa.", "0.in-addr.arpa.", "10.in-addr.arpa.",
    "254.169.in-addr.arpa.", "168.192.in-addr.arpa.",
    "16.172.in-addr.arpa.", "17.172.in-addr.arpa.", "18.172.in-addr.arpa.",
    "19.172.in-addr.arpa.", "20.172.in-addr.arpa.", "21.172.in-addr.arpa.",
    "22.172.in-addr.arpa.", "23.172.in-addr.arpa.", "24.172.in-addr.arpa.",
    "25.172.in-addr.arpa.", "26.172.in-addr.arpa.", "27.172.in-addr.arpa.",
    "28.172.in-addr.arpa.", "29.172.in-addr.arpa.", "30.172.in-addr.arpa.",
    "31.172.in-addr.arpa.",
    "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
    "113.0.203.in-addr.arpa.", "255.255.255.255.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.", "a.e.f.ip6.arpa.",
    "b.e.f.ip6.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.",
};

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "ADDR", "ADDR:PORT", "[V6]" or "[V6]:PORT" → unbound's "ADDR@PORT".
 * Returns the address family, or 0 if the text is not one of those. */
static int parse_server(const char *server, char *out, size_t outlen)
{
    char addr[INET6_ADDRSTRLEN];
    struct sv s = sv_cstr(server), host, port = { NULL, 0 };
    if (s.len > 0 && s.p[0] == '[') {
        size_t close = sv_find(s, ']');
        if (close == s.len)
            return 0;
        host = sv_sub(s, 1, close);
        struct sv rest = sv_sub(s, close + 1, s.len);
        if (rest.len) {
            if (rest.p[0] != ':')
                return 0;
            port = sv_sub(rest, 1, rest.len);
        }
    } else {
        size_t colon = sv_find(s, ':');
        if (colon < s.len && memchr(s.p + colon + 1, ':', s.len - colon - 1)) {
            host = s; /* a bare IPv6 address */
        } else {
            host = sv_sub(s, 0, colon);
            if (colon < s.len)
                port = sv_sub(s, colon + 1, s.len);
        }
    }
    if (host.len == 0 || host.len >= sizeof(addr))
        return 0;
    memcpy(addr, host.p, host.len);
    addr[host.len] = '\0';
    unsigned char bin[16];
    int af = inet_pton(AF_INET, addr, bin) == 1 ? AF_INET
           : inet_pton(AF_INET6, addr, bin) == 1 ? AF_INET6 : 0;
    if (!af)
        return 0;
    unsigned long p = 53;
    if (port.p && (!sv_to_uint(port, 65535, &p) || p == 0))
        return 0;
    int n = snprintf(out, outlen, "%s@%lu", addr, p);
    return n > 0 && (size_t)n < outlen ? af : 0;
}

static int set_opt(struct ub_ctx *ctx, const char *opt, const char *val,
                   char *err, size_t errlen)
{
    int rc = ub_ctx_set_option(ctx, opt, val);
    if (rc != 0) {
        set_err(err, errlen, "libunbound option %s %s: %s", opt, val, ub_strerror(rc));
        return -1;
    }
    return 0;
}

/* Our names have no escape syntax; unbound's parser has. Every octet that
 * is not a letter, digit, '-' or '_' is written as \DDD. */
static int escape_name(const char *name, char *out, size_t outlen)
{
    size_t len = strlen(name), o = 0;
    if (len > 0 && name[len - 1] == '.')
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (outlen - o < 6)
            return -1;
        if (plain) {
            out[o++] = (char)c;
        } else {
            snprintf(out + o, outlen - o, "\\%03u", c);
            o += 4;
        }
    }
    if (outlen - o < 2)
        return -1;
    out[o++] = '.';
    out[o] = '\0';
    return 0;
}

static void ub_callback(void *mydata, int err, struct ub_result *result)
{
    struct ub_pending *p = mydata;
    p->err = err;
    p->result = result;
    p->done = 1;
}

static long ms_between(const struct timespec *a, const struct timespec *b)
{
    return (long)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

static void answer_release(struct dns_answer *a)
{
    free(a->priv);
}

/* Copies the records into one allocation the answer owns. */
static void fill_answer(struct dns_answer *out, const struct ub_result *res)
{
    size_t count = 0, total = 0;
    for (; res->data && res->data[count]; count++)
        total += (size_t)res->len[count];
    if (count == 0) {
        out->status = DNS_NODATA;
        return;
    }
    struct dns_rr *rrs = malloc(count * sizeof(*rrs) + total + 1);
    if (!rrs) {
        out->status = DNS_TEMPFAIL;
        return;
    }
    uint8_t *p = (uint8_t *)(rrs + count);
    for (size_t i = 0; i < count; i++) {
        size_t l = (size_t)res->len[i];
        if (l)
            memcpy(p, res->data[i], l);
        rrs[i].data = p;
        rrs[i].len = l;
        p += l;
    }
    out->status = DNS_OK;
    out->rrs = rrs;
    out->count = count;
    out->priv = rrs;
    out->release = answer_release;
}

static void ubr_query(struct dns_resolver *r, const char *name, uint16_t type,
                      struct dns_answer *out)
{
    struct ub_resolver *u = (struct ub_resolver *)r;
    char qname[DNS_MAX_NAME_LEN * 4 + 8];
    struct ub_pending p = { 0, 0, NULL };
    int id = 0;

    out->status = DNS_TEMPFAIL;
    out->count = 0;
    out->rrs = NULL;
    out->release = NULL;
    out->priv = NULL;
    if (escape_name(name, qname, sizeof(qname)) != 0) {
        out->status = DNS_BADNAME;
        return;
    }

    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc = ub_resolve_async(u->ctx, qname, type, CLASS_IN, &p, ub_callback, &id);
    if (rc != 0) {
        log_msg(LOG_WARN, "dns", "event=resolve_async_failed name=%s error=\"%s\"",
                name, ub_strerror(rc));
        return;
    }

    struct timespec deadline = start;
    deadline.tv_sec += u->timeout_ms / 1000;
    deadline.tv_nsec += (long)(u->timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock(&u->mu);
    while (!p.done) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = ms_between(&now, &deadline);
        if (left <= 0)
            break;
        if (u->polling) {
            /* Another thread polls and will run our callback; it wakes us
             * when it hands over. */
            pthread_cond_timedwait(&u->cv, &u->mu, &deadline);
            continue;
        }
        u->polling = 1;
        pthread_mutex_unlock(&u->mu);
        struct pollfd pfd = { .fd = ub_fd(u->ctx), .events = POLLIN };
        int n = poll(&pfd, 1, (int)(left > 0x7fffffffL ? 0x7fffffffL : left));
        pthread_mutex_lock(&u->mu);
        if (n > 0) {
            rc = ub_process(u->ctx); /* callbacks run here, under mu */
            if (rc != 0)
                log_msg(LOG_WARN, "dns", "event=process_failed error=\"%s\"", ub_strerror(rc));
        } else if (n < 0 && errno != EINTR) {
            log_msg(LOG_WARN, "dns", "event=poll_failed error=\"%s\"", strerror(errno));
        }
        u->polling = 0;
        pthread_cond_broadcast(&u->cv);
    }
    if (!p.done)
        ub_cancel(u->ctx, id); /* under mu: the callback cannot run any more */
    pthread_mutex_unlock(&u->mu);

    if (!p.done) {
        log_msg(LOG_DEBUG, "dns", "event=timeout name=%s type=%u timeout_ms=%u",
                name, (unsigned)type, u->timeout_ms);
        return; /* DNS_TEMPFAIL */
    }
    if (p.err != 0 || !p.result) {
        log_msg(LOG_DEBUG, "dns", "event=error name=%s type=%u error=\"%s\"", name,
                (unsigned)type, ub_strerror(p.err));
    } else if (p.result->bogus || p.result->was_ratelimited) {
        out->status = DNS_TEMPFAIL;
    } else if (p.result->rcode == RCODE_NXDOMAIN) {
        out->status = DNS_NXDOMAIN;
    } else if (p.result->rcode == RCODE_NOERROR) {
        if (p.result->havedata)
            fill_answer(out, p.result);
        else
            out->status = DNS_NODATA;
    } else {
        log_msg(LOG_DEBUG, "dns", "event=rcode name=%s type=%u rcode=%d", name,
                (unsigned)type, p.result->rcode);
    }
    if (p.result)
        ub_resolve_free(p.result);
}

static void ubr_destroy(struct dns_resolver *r)
{
    struct ub_resolver *u = (struct ub_resolver *)r;
    ub_ctx_delete(u->ctx);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

static const struct dns_resolver_ops ub_resolver_ops = {
    .query = ubr_query,
    .destroy = ubr_destroy,
};

/* Options for both modes; docs/dns.md has the measurements behind them.
 * optional: not every libunbound knows it (max-sent-count is 1.19, and a
 * Debian security backport in 1.17); without it things still work. */
static const struct {
    const char *opt, *val;
    int optional;
} common_options[] = {
    /* No trust anchor is configured, so the validator would only cost. */
    { "module-config:", "iterator", 0 },
    /* libunbound's default is 16 UDP ports: queries we gave up on keep
     * retrying in the background and would make new ones wait for a port. */
    { "outgoing-range:", "256", 0 },
    { "outgoing-num-tcp:", "16", 0 },
    /* Forget a server's timeouts after a second. With the default (900 s)
     * a burst of unanswered queries backs the RTO off until the server is
     * "down" and every query gets SERVFAIL for minutes; keep-probing alone
     * does not prevent that, and a small infra-cache-max-rtt makes it worse
     * (the server is down after three timeouts, below PROBE_MAXRTO). */
    { "infra-host-ttl:", "1", 0 },
    { "infra-keep-probing:", "yes", 0 },
    /* Bound the background retries of a query we cancelled (default 32). */
    { "max-sent-count:", "8", 1 },
    /* Exactly the asked name goes upstream, and only when asked. */
    { "qname-minimisation:", "no", 0 },
    { "prefetch:", "no", 0 },
    /* Forwarders on the loopback (systemd-resolved's 127.0.0.53, the test
     * server) must be usable; we never recurse from the root ourselves. */
    { "do-not-query-localhost:", "no", 0 },
};

struct dns_resolver *dns_unbound_new(const char *server, unsigned timeout_ms,
                                     char *err, size_t errlen)
{
    char fwd[INET6_ADDRSTRLEN + 8];
    int af = 0;
    if (server) {
        af = parse_server(server, fwd, sizeof(fwd));
        if (!af) {
            set_err(err, errlen, "bad DNS server \"%s\": expected ADDR, ADDR:PORT or [V6]:PORT",
                    server);
            return NULL;
        }
    }
    struct ub_resolver *u = calloc(1, sizeof(*u));
    if (!u) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    u->base.ops = &ub_resolver_ops;
    u->timeout_ms = timeout_ms ? timeout_ms : DNS_QUERY_TIMEOUT_MS;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&u->mu, NULL);

    u->ctx = ub_ctx_create();
    if (!u->ctx) {
        set_err(err, errlen, "cannot create the libunbound context");
        goto fail;
    }
    int rc = ub_ctx_async(u->ctx, 1); /* a thread, not a forked process */
    if (rc != 0) {
        set_err(err, errlen, "libunbound async mode: %s", ub_strerror(rc));
        goto fail;
    }
    for (size_t i = 0; i < sizeof(common_options) / sizeof(common_options[0]); i++) {
        if (common_options[i].optional) {
            rc = ub_ctx_set_option(u->ctx, common_options[i].opt, common_options[i].val);
            if (rc != 0)
                log_msg(LOG_DEBUG, "dns", "event=option_unsupported option=%s",
                        common_options[i].opt);
        } else if (set_opt(u->ctx, common_options[i].opt, common_options[i].val, err,
                           errlen) != 0) {
            goto fail;
        }
    }

    if (server) {
        if (set_opt(u->ctx, "do-ip6:", af == AF_INET6 ? "yes" : "no", err, errlen) != 0 ||
            set_opt(u->ctx, "unblock-lan-zones:", "yes", err, errlen) != 0 ||
            set_opt(u->ctx, "insecure-lan-zones:", "yes", err, errlen) != 0)
            goto fail;
        for (size_t i = 0; i < sizeof(special_zones) / sizeof(special_zones[0]); i++) {
            char zone[128];
            snprintf(zone, sizeof(zone), "%s transparent", special_zones[i]);
            if (set_opt(u->ctx, "local-zone:", zone, err, errlen) != 0)
                goto fail;
        }
        rc = ub_ctx_set_fwd(u->ctx, fwd);
        if (rc != 0) {
            set_err(err, errlen, "DNS server %s: %s", server, ub_strerror(rc));
            goto fail;
        }
    } else {
        rc = ub_ctx_resolvconf(u->ctx, NULL);
        if (rc != 0) {
            set_err(err, errlen, "system resolvers (/etc/resolv.conf): %s", ub_strerror(rc));
            goto fail;
        }
        rc = ub_ctx_hosts(u->ctx, NULL);
        if (rc != 0)
            log_msg(LOG_WARN, "dns", "event=hosts_unreadable error=\"%s\"", ub_strerror(rc));
    }
    return &u->base;
fail:
    if (u->ctx)
        ub_ctx_delete(u->ctx);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u);
    return NULL;
}
