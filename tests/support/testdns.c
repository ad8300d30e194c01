/* The test DNS server of testdns.h: one thread, poll() over a UDP socket, a
 * TCP listener and its connections, answering from a struct dns_zone.
 * Queries are parsed with bounds and garbage is ignored (or FORMERR when the
 * header is sane). Answers compress only the owner name equal to the
 * question (a pointer to offset 12). It is for tests: no zone transfers,
 * no DNSSEC, no rate limiting, no wildcards. */
#include "testdns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns_rdata.h"
#include "util/limits.h"

#define MAX_CONNS      64
#define MSG_MAX        DNS_MAX_MESSAGE_LEN
#define UDP_MAX        65507     /* largest UDP payload over IPv4 */
#define UDP_DEFAULT    512       /* without EDNS0 (RFC 1035 §4.2.1) */
#define OUR_EDNS_SIZE  1232      /* what we advertise back */
#define WIRE_NAME_MAX  (DNS_MAX_NAME_LEN + 2)

#define T_OPT   41
#define CLASS_IN 1

enum { RC_NOERROR = 0, RC_FORMERR = 1, RC_SERVFAIL = 2, RC_NXDOMAIN = 3,
       RC_NOTIMP = 4, RC_REFUSED = 5 };

struct tconn {
    int fd;
    uint8_t *in;          /* MSG_MAX + 2 bytes */
    size_t inlen;
    uint8_t *out;         /* a framed response being written */
    size_t outlen, outoff;
    struct timespec last;
};

struct testdns {
    pthread_t thread;
    pthread_mutex_t mu;   /* guards zone and ttl */
    struct dns_zone *zone;
    uint32_t ttl;
    atomic_ulong queries, tcp_queries;
    int udp, tcp, wake[2];
    unsigned short port;
    char addr[32];
    struct tconn conns[MAX_CONNS];
    uint8_t rxbuf[MSG_MAX + 1];
    uint8_t txbuf[MSG_MAX];
};

/* ---- message writer ---------------------------------------------------- */

struct wr {
    uint8_t *p;
    size_t len, cap;
    int overflow;
};

static void put(struct wr *w, const void *data, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->len, data, n);
    w->len += n;
}

static void put16(struct wr *w, unsigned v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    put(w, b, 2);
}

static void put32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    put(w, b, 4);
}

static void set16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Writes one RR. owner NULL means "the question name" (pointer to 12). */
static void put_rr(struct wr *w, const char *owner, uint16_t type, uint32_t ttl,
                   const uint8_t *rdata, size_t rdlen)
{
    if (owner) {
        uint8_t wire[WIRE_NAME_MAX];
        int n = dns_wire_name(owner, wire, sizeof(wire));
        if (n < 0) {
            w->overflow = 1;
            return;
        }
        put(w, wire, (size_t)n);
    } else {
        put16(w, 0xC00C);
    }
    put16(w, type);
    put16(w, CLASS_IN);
    put32(w, ttl);
    if (rdlen > 0xffff) {
        w->overflow = 1;
        return;
    }
    put16(w, (unsigned)rdlen);
    put(w, rdata, rdlen);
}

/* The synthetic SOA of a negative answer, owned by the parent of name. */
static void put_soa(struct wr *w, const char *name, uint32_t ttl)
{
    uint8_t rd[128];
    struct wr r = { rd, 0, sizeof(rd), 0 };
    uint8_t wire[WIRE_NAME_MAX];
    int n = dns_wire_name("ns.testdns.invalid", wire, sizeof(wire));
    put(&r, wire, (size_t)n);
    n = dns_wire_name("hostmaster.testdns.invalid", wire, sizeof(wire));
    put(&r, wire, (size_t)n);
    put32(&r, 1);      /* serial */
    put32(&r, 3600);   /* refresh */
    put32(&r, 600);    /* retry */
    put32(&r, 86400);  /* expire */
    put32(&r, ttl);    /* minimum: the negative TTL (RFC 2308) */
    const char *dot = strchr(name, '.');
    put_rr(w, dot ? dot + 1 : "", 6 /* SOA */, ttl, rd, r.len);
}

/* ---- query parsing --------------------------------------------------- */

/* Skips a wire name (pointers allowed: only for skipping). */
static int skip_name(const uint8_t *m, size_t len, size_t *off)
{
    size_t i = *off;
    for (;;) {
        if (i >= len)
            return -1;
        uint8_t l = m[i];
        if ((l & 0xC0) == 0xC0) {
            if (i + 2 > len)
                return -1;
            *off = i + 2;
            return 0;
        }
        if (l & 0xC0)
            return -1;
        i++;
        if (l == 0) {
            *off = i;
            return 0;
        }
        if (l > len - i)
            return -1;
        i += l;
    }
}

struct query {
    uint16_t id, flags, qtype, qclass;
    const uint8_t *question;  /* name + type + class, as sent */
    size_t question_len;
    char name[WIRE_NAME_MAX + 1]; /* presentation, for the zone */
    int name_ok;
    int edns;
    size_t udp_max;
};

/* 0: parsed; 1: answer FORMERR/NOTIMP with the header only (rcode in
 * *rcode); -1: garbage, ignore. */
static int parse_query(const uint8_t *m, size_t len, struct query *q, int *rcode)
{
    if (len < 12)
        return -1;
    q->id = (uint16_t)get16(m);
    q->flags = (uint16_t)get16(m + 2);
    if (q->flags & 0x8000)
        return -1; /* a response: never answer those */
    unsigned qd = get16(m + 4), an = get16(m + 6), ns = get16(m + 8), ar = get16(m + 10);
    if (((q->flags >> 11) & 0xF) != 0) {
        *rcode = RC_NOTIMP;
        return 1;
    }
    if (qd != 1) {
        *rcode = RC_FORMERR;
        return 1;
    }
    /* The question: an uncompressed name, type, class. */
    size_t off = 12, wlen = 0;
    for (;;) {
        if (off >= len) {
            *rcode = RC_FORMERR;
            return 1;
        }
        uint8_t l = m[off];
        if (l > DNS_MAX_LABEL_LEN || (wlen += (size_t)l + 1) > WIRE_NAME_MAX ||
            (size_t)l + 1 > len - off) {
            *rcode = RC_FORMERR;
            return 1;
        }
        off += (size_t)l + 1;
        if (l == 0)
            break;
    }
    if (len - off < 4) {
        *rcode = RC_FORMERR;
        return 1;
    }
    q->name_ok = dns_rdata_name(m + 12, off - 12, q->name, sizeof(q->name), NULL) == 0;
    q->qtype = (uint16_t)get16(m + off);
    q->qclass = (uint16_t)get16(m + off + 2);
    off += 4;
    q->question = m + 12;
    q->question_len = off - 12;
    /* EDNS0: look for an OPT RR in the additional section. */
    q->edns = 0;
    q->udp_max = UDP_DEFAULT;
    for (unsigned i = 0; i < an + ns + ar; i++) {
        if (skip_name(m, len, &off) != 0 || len - off < 10)
            break;
        unsigned type = get16(m + off), cls = get16(m + off + 2);
        size_t rdlen = get16(m + off + 8);
        off += 10;
        if (rdlen > len - off)
            break;
        off += rdlen;
        if (i >= an + ns && type == T_OPT) {
            q->edns = 1;
            q->udp_max = cls < UDP_DEFAULT ? UDP_DEFAULT : cls > UDP_MAX ? UDP_MAX : cls;
        }
    }
    return 0;
}

/* ---- answering --------------------------------------------------------- */

static void put_header(struct wr *w, const struct query *q, int rcode, int aa,
                       unsigned qd, unsigned an, unsigned ns, unsigned ar)
{
    unsigned flags = 0x8000 | (q->flags & 0x7800) /* opcode */ | (q->flags & 0x0100) /* RD */ |
                     0x0080 /* RA */ | (aa ? 0x0400 : 0) | (unsigned)(rcode & 0xF);
    put16(w, q->id);
    put16(w, flags);
    put16(w, qd);
    put16(w, an);
    put16(w, ns);
    put16(w, ar);
}

static void put_opt(struct wr *w)
{
    put(w, "", 1); /* root */
    put16(w, T_OPT);
    put16(w, OUR_EDNS_SIZE);
    put32(w, 0);
    put16(w, 0);
}

/* A header-and-question reply: errors, and truncated answers. */
static size_t short_reply(const struct query *q, int rcode, int tc, uint8_t *out, size_t cap)
{
    struct wr w = { out, 0, cap, 0 };
    put_header(&w, q, rcode, rcode == RC_NOERROR || rcode == RC_NXDOMAIN,
               q->question ? 1 : 0, 0, 0, q->edns ? 1 : 0);
    if (tc)
        out[2] |= 0x02;
    if (q->question)
        put(&w, q->question, q->question_len);
    if (q->edns)
        put_opt(&w);
    return w.overflow ? 0 : w.len;
}

/* Builds the full answer into out (cap bytes). Returns its length, or 0 to
 * stay silent (a TIMEOUT name). Called with the zone locked. */
static size_t answer(const struct dns_zone *zone, uint32_t ttl, const struct query *q,
                     uint8_t *out, size_t cap)
{
    if (q->qclass != CLASS_IN)
        return short_reply(q, RC_REFUSED, 0, out, cap);
    if (!q->name_ok)
        return short_reply(q, RC_NXDOMAIN, 0, out, cap);

    struct wr w = { out, 12, cap, 0 };
    put(&w, q->question, q->question_len);
    unsigned an = 0, ns = 0;
    int rcode = RC_NOERROR;
    const char *cur = q->name, *cname;
    const struct dns_rr *rrs;
    size_t n;
    for (unsigned hops = 0;; hops++) {
        const char *owner = hops ? cur : NULL;
        enum dns_status st = dns_zone_lookup(zone, cur, q->qtype, &rrs, &n, &cname);
        if (st == DNS_OK) {
            for (size_t i = 0; i < n; i++)
                put_rr(&w, owner, q->qtype, ttl, rrs[i].data, rrs[i].len);
            an += (unsigned)n;
            break;
        }
        if (cname && q->qtype != DNS_T_CNAME) {
            if (hops == DNS_MAX_CNAME_CHAIN)
                return short_reply(q, RC_SERVFAIL, 0, out, cap);
            if (dns_zone_lookup(zone, cur, DNS_T_CNAME, &rrs, &n, NULL) == DNS_OK && n) {
                put_rr(&w, owner, DNS_T_CNAME, ttl, rrs[0].data, rrs[0].len);
                an++;
            }
            cur = cname;
            continue;
        }
        if (st == DNS_TEMPFAIL)
            return 0; /* never answers */
        rcode = st == DNS_NXDOMAIN ? RC_NXDOMAIN : RC_NOERROR;
        put_soa(&w, cur, ttl);
        ns = 1;
        break;
    }
    if (q->edns)
        put_opt(&w);
    if (w.overflow) /* larger than a DNS message can be */
        return short_reply(q, RC_SERVFAIL, 0, out, cap);
    size_t len = w.len;
    w.len = 0;
    put_header(&w, q, rcode, 1, 1, an, ns, q->edns ? 1 : 0);
    return len;
}

/* Handles one message; returns the reply length in out (0: no reply).
 * max is what the transport carries. */
static size_t handle(struct testdns *t, const uint8_t *m, size_t len, uint8_t *out,
                     size_t max, int tcp)
{
    struct query q;
    memset(&q, 0, sizeof(q));
    int rcode = 0;
    int rc = parse_query(m, len, &q, &rcode);
    if (rc < 0)
        return 0;
    if (rc > 0)
        return short_reply(&q, rcode, 0, out, MSG_MAX);
    atomic_fetch_add(&t->queries, 1);
    if (tcp)
        atomic_fetch_add(&t->tcp_queries, 1);
    pthread_mutex_lock(&t->mu);
    size_t n = t->zone ? answer(t->zone, t->ttl, &q, out, MSG_MAX)
                       : short_reply(&q, RC_REFUSED, 0, out, MSG_MAX);
    pthread_mutex_unlock(&t->mu);
    size_t limit = tcp ? max : (q.udp_max < max ? q.udp_max : max);
    if (n > limit)
        n = short_reply(&q, RC_NOERROR, 1, out, MSG_MAX);
    return n;
}

/* ---- sockets ----------------------------------------------------------- */

static int nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void conn_close(struct tconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static void udp_ready(struct testdns *t)
{
    for (;;) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(t->udp, t->rxbuf, sizeof(t->rxbuf), 0,
                             (struct sockaddr *)&from, &fromlen);
        if (n < 0)
            return;
        size_t r = handle(t, t->rxbuf, (size_t)n, t->txbuf, UDP_MAX, 0);
        if (r)
            (void)sendto(t->udp, t->txbuf, r, 0, (struct sockaddr *)&from, fromlen);
    }
}

static void tcp_accept(struct testdns *t)
{
    for (;;) {
        int fd = accept4(t->tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct tconn *slot = NULL, *oldest = NULL;
        for (int i = 0; i < MAX_CONNS; i++) {
            struct tconn *c = &t->conns[i];
            if (c->fd < 0) {
                slot = c;
                break;
            }
            if (!oldest || c->last.tv_sec < oldest->last.tv_sec ||
                (c->last.tv_sec == oldest->last.tv_sec && c->last.tv_nsec < oldest->last.tv_nsec))
                oldest = c;
        }
        if (!slot) {
            conn_close(oldest);
            slot = oldest;
        }
        slot->in = malloc(MSG_MAX + 2);
        if (!slot->in) {
            close(fd);
            continue;
        }
        slot->fd = fd;
        clock_gettime(CLOCK_MONOTONIC, &slot->last);
    }
}

/* Answers the complete messages buffered on c while nothing is being sent. */
static void tcp_process(struct testdns *t, struct tconn *c)
{
    while (!c->out && c->inlen >= 2) {
        size_t mlen = get16(c->in);
        if (c->inlen < mlen + 2)
            return;
        size_t r = handle(t, c->in + 2, mlen, t->txbuf, MSG_MAX, 1);
        memmove(c->in, c->in + 2 + mlen, c->inlen - 2 - mlen);
        c->inlen -= 2 + mlen;
        if (!r)
            continue;
        c->out = malloc(r + 2);
        if (!c->out) {
            conn_close(c);
            return;
        }
        set16(c->out, (unsigned)r);
        memcpy(c->out + 2, t->txbuf, r);
        c->outlen = r + 2;
        c->outoff = 0;
    }
}

static void tcp_ready(struct testdns *t, struct tconn *c, short revents)
{
    clock_gettime(CLOCK_MONOTONIC, &c->last);
    if (revents & POLLOUT && c->out) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            conn_close(c);
            return;
        }
        if (n > 0)
            c->outoff += (size_t)n;
        if (c->outoff == c->outlen) {
            free(c->out);
            c->out = NULL;
        }
    }
    if (revents & (POLLIN | POLLHUP | POLLERR) && c->inlen < MSG_MAX + 2) {
        ssize_t n = recv(c->fd, c->in + c->inlen, MSG_MAX + 2 - c->inlen, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);
            return;
        }
        if (n > 0)
            c->inlen += (size_t)n;
    }
    tcp_process(t, c);
}

static void *serve(void *arg)
{
    struct testdns *t = arg;
    struct pollfd pfd[3 + MAX_CONNS];
    int idx[MAX_CONNS];
    for (;;) {
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){ .fd = t->wake[0], .events = POLLIN };
        pfd[n++] = (struct pollfd){ .fd = t->udp, .events = POLLIN };
        pfd[n++] = (struct pollfd){ .fd = t->tcp, .events = POLLIN };
        int nc = 0;
        for (int i = 0; i < MAX_CONNS; i++) {
            struct tconn *c = &t->conns[i];
            if (c->fd < 0)
                continue;
            idx[nc++] = i;
            pfd[n++] = (struct pollfd){ .fd = c->fd,
                                        .events = (short)(c->out ? POLLOUT : POLLIN) };
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[0].revents)
            break;
        if (pfd[1].revents & POLLIN)
            udp_ready(t);
        if (pfd[2].revents & POLLIN)
            tcp_accept(t);
        for (int k = 0; k < nc; k++) {
            short re = pfd[3 + k].revents;
            struct tconn *c = &t->conns[idx[k]];
            if (re && c->fd == pfd[3 + k].fd)
                tcp_ready(t, c, re);
        }
    }
    return NULL;
}

static int bind_both(struct testdns *t, unsigned short port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    int one = 1;
    t->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (t->udp < 0 || bind(t->udp, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    socklen_t slen = sizeof(sa);
    if (getsockname(t->udp, (struct sockaddr *)&sa, &slen) != 0)
        return -1;
    t->tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->tcp < 0)
        return -1;
    setsockopt(t->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(t->tcp, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(t->tcp, 64) != 0)
        return -1;
    if (nonblock(t->udp) != 0 || nonblock(t->tcp) != 0)
        return -1;
    t->port = ntohs(sa.sin_port);
    return 0;
}

static void close_fds(struct testdns *t)
{
    if (t->udp >= 0)
        close(t->udp);
    if (t->tcp >= 0)
        close(t->tcp);
    t->udp = t->tcp = -1;
}

struct testdns *testdns_start_on(struct dns_zone *zone, unsigned short port)
{
    struct testdns *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->udp = t->tcp = t->wake[0] = t->wake[1] = -1;
    for (int i = 0; i < MAX_CONNS; i++)
        t->conns[i].fd = -1;
    t->zone = zone;
    atomic_init(&t->queries, 0);
    atomic_init(&t->tcp_queries, 0);
    pthread_mutex_init(&t->mu, NULL);
    /* The UDP port picked by the kernel may be taken for TCP: try again. */
    int ok = 0;
    for (int attempt = 0; attempt < 50 && !ok; attempt++) {
        ok = bind_both(t, port) == 0;
        if (!ok)
            close_fds(t);
        if (port)
            break;
    }
    if (!ok || pipe2(t->wake, O_CLOEXEC) != 0)
        goto fail;
    snprintf(t->addr, sizeof(t->addr), "127.0.0.1:%u", (unsigned)t->port);
    if (pthread_create(&t->thread, NULL, serve, t) != 0)
        goto fail;
    return t;
fail:
    close_fds(t);
    if (t->wake[0] >= 0) {
        close(t->wake[0]);
        close(t->wake[1]);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
    return NULL;
}

struct testdns *testdns_start(struct dns_zone *zone)
{
    return testdns_start_on(zone, 0);
}

unsigned short testdns_port(const struct testdns *t)
{
    return t ? t->port : 0;
}

const char *testdns_addr(const struct testdns *t)
{
    return t ? t->addr : NULL;
}

void testdns_set_zone(struct testdns *t, struct dns_zone *zone)
{
    pthread_mutex_lock(&t->mu);
    t->zone = zone;
    pthread_mutex_unlock(&t->mu);
}

void testdns_set_ttl(struct testdns *t, uint32_t ttl)
{
    pthread_mutex_lock(&t->mu);
    t->ttl = ttl;
    pthread_mutex_unlock(&t->mu);
}

void testdns_lock(struct testdns *t)
{
    pthread_mutex_lock(&t->mu);
}

void testdns_unlock(struct testdns *t)
{
    pthread_mutex_unlock(&t->mu);
}

unsigned long testdns_queries(const struct testdns *t)
{
    return t ? atomic_load(&((struct testdns *)t)->queries) : 0;
}

unsigned long testdns_tcp_queries(const struct testdns *t)
{
    return t ? atomic_load(&((struct testdns *)t)->tcp_queries) : 0;
}

void testdns_stop(struct testdns *t)
{
    if (!t)
        return;
    ssize_t w;
    do
        w = write(t->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(t->thread, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        if (t->conns[i].fd >= 0)
            conn_close(&t->conns[i]);
    close_fds(t);
    close(t->wake[0]);
    close(t->wake[1]);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
