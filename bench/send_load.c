/* send_load: the HTTP load generator of bench/bench_send.sh (issue 6,
 * Performance): C keep-alive HTTP/1.1 connections, each POSTing
 * /v1/messages in lock-step (one request in flight per connection, the next
 * one as soon as the answer is read). One thread, non-blocking sockets and
 * poll().
 *
 * Each request is the structured JSON form with a text body of about
 * --size octets (default 2048) and the Subject "bench seq=N t=NS", where NS
 * is CLOCK_REALTIME in nanoseconds when the request was handed to the
 * kernel: the sink (bench/send/send_sink.c) reads it back on arrival, which
 * gives the end-to-end latency from POST to the recipient's MX.
 *
 * After W seconds of warm-up it measures D seconds: the 202 answers that
 * arrived in that window (accepted/s) and their HTTP latency (request
 * written → whole answer read). Then it stops sending, waits for the answers
 * in flight (up to --timeout) and prints one JSON line:
 *   {"connections","seconds","warmup","accepted","accepted_per_s",
 *    "accepted_total","requests","window_start_ns","window_end_ns",
 *    "p50_ms","p90_ms","p99_ms","max_ms","status":{"202":N,...},
 *    "errors","error_samples":[...],"reconnects"}
 * window_*_ns are CLOCK_REALTIME, for the harness to count the sink's
 * arrivals over the same window; accepted_total counts every 202 (warm-up
 * and tail included): what the sink must eventually receive.
 * A non-202 answer, a connection error or a timeout is an error (counted,
 * first distinct samples kept); a closed connection is reopened.
 * Not a conformance tester: it reads the status and Content-Length only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define RBUF_SIZE (64 * 1024)   /* one answer, headers and body */
#define REQ_SIZE (64 * 1024)    /* one request */
#define MAX_SAMPLES 8
#define MAX_CONNS 1024

enum state { S_CLOSED, S_CONNECTING, S_SENDING, S_READING };

struct conn {
    int fd;
    enum state st;
    char req[REQ_SIZE];
    size_t reqlen, reqoff;
    char rbuf[RBUF_SIZE + 1];
    size_t rlen;
    double t_sent;               /* monotonic, when the request was fully written */
    double t_deadline;
};

static struct conn *conns;
static int nconns = 16;
static const char *host = "127.0.0.1";
static unsigned port;
static const char *api_key, *from_addr, *rcpt_addr;
static double seconds = 10, warmup = 2, timeout_s = 30;
static size_t text_size = 2048;
static char *text_json;          /* the text, JSON-escaped */
static unsigned long long seq;

static double *lat;              /* ms, of the 202s in the window */
static size_t nlat, caplat;
static unsigned long long accepted, accepted_total, requests, errors, reconnects;
static unsigned long status_count[600];
static json_t *samples;

static void die(const char *what)
{
    fprintf(stderr, "send_load: %s\n", what);
    exit(1);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sample(const char *s)
{
    size_t n = json_array_size(samples);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(json_string_value(json_array_get(samples, i)), s))
            return;
    if (n < MAX_SAMPLES)
        json_array_append_new(samples, json_string(s));
}

static void make_text(void)
{
    static const char *words[] = { "your", "order", "has", "shipped", "and", "will",
                                   "arrive", "within", "three", "business", "days;",
                                   "thank", "you", "for", "shopping", "with", "us." };
    size_t cap = text_size * 2 + 64, w = 0, col = 0, plain = 0;
    text_json = malloc(cap);
    if (!text_json)
        die("out of memory");
    size_t len = 0;
    while (plain < text_size) {
        const char *word = words[w++ % (sizeof words / sizeof words[0])];
        size_t n = strlen(word);
        if (col + n + 1 > 72) {
            memcpy(text_json + len, "\\n", 2);
            len += 2;
            plain++;
            col = 0;
        } else if (col) {
            text_json[len++] = ' ';
            plain++;
            col++;
        }
        memcpy(text_json + len, word, n);
        len += n;
        plain += n;
        col += n;
    }
    text_json[len] = '\0';
}

static void build_request(struct conn *c)
{
    char body[REQ_SIZE / 2];
    int bl = snprintf(body, sizeof body,
                      "{\"from\":\"Bench <%s>\",\"to\":[\"%s\"],"
                      "\"subject\":\"bench seq=%llu t=%lld\",\"text\":\"%s\"}",
                      from_addr, rcpt_addr, ++seq, real_ns(), text_json);
    if (bl < 0 || (size_t)bl >= sizeof body)
        die("the request body is too large");
    int n = snprintf(c->req, sizeof c->req,
                     "POST /v1/messages HTTP/1.1\r\nHost: %s:%u\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     host, port, api_key, bl, body);
    if (n < 0 || (size_t)n >= sizeof c->req)
        die("the request is too large");
    c->reqlen = (size_t)n;
    c->reqoff = 0;
    c->rlen = 0;
    requests++;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = S_CLOSED;
}

static void conn_open(struct conn *c, double now)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("--host must be an IPv4 address");
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket failed");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        errors++;
        sample("connect failed");
        conn_close(c);
        return;
    }
    c->st = S_CONNECTING;
    c->t_deadline = now + timeout_s;
}

/* Writes what it can of the request; moves to S_READING when all is out. */
static void conn_send(struct conn *c, double now)
{
    while (c->reqoff < c->reqlen) {
        ssize_t w = send(c->fd, c->req + c->reqoff, c->reqlen - c->reqoff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            errors++;
            sample("send failed");
            conn_close(c);
            return;
        }
        c->reqoff += (size_t)w;
    }
    c->st = S_READING;
    c->t_sent = now;
    c->t_deadline = now + timeout_s;
}

/* 1: a whole answer is in rbuf (status, total length set), 0: not yet,
 * -1: malformed. */
static int parse_answer(struct conn *c, int *status, size_t *total, bool *close_after)
{
    c->rbuf[c->rlen] = '\0';
    char *end = strstr(c->rbuf, "\r\n\r\n");
    if (!end)
        return c->rlen >= RBUF_SIZE ? -1 : 0;
    if (strncmp(c->rbuf, "HTTP/1.", 7) != 0 || c->rlen < 12)
        return -1;
    *status = (int)strtol(c->rbuf + 9, NULL, 10);
    size_t clen = 0;
    *close_after = strncmp(c->rbuf, "HTTP/1.0", 8) == 0;
    for (char *l = strstr(c->rbuf, "\r\n") + 2; l < end; l = strstr(l, "\r\n") + 2) {
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            clen = strtoul(l + 15, NULL, 10);
        else if (strncasecmp(l, "Connection:", 11) == 0 && strcasestr(l, "close") &&
                 strcasestr(l, "close") < strstr(l, "\r\n"))
            *close_after = true;
    }
    size_t hdr = (size_t)(end + 4 - c->rbuf);
    if (hdr + clen > RBUF_SIZE)
        return -1;
    if (c->rlen < hdr + clen)
        return 0;
    *total = hdr + clen;
    return 1;
}

static void record(int status, const char *body, double latency_ms, double now,
                   double w_start, double w_end)
{
    if (status >= 0 && status < 600)
        status_count[status]++;
    if (status == 202) {
        accepted_total++;
        if (now >= w_start && now < w_end) {
            accepted++;
            if (nlat == caplat) {
                caplat = caplat ? caplat * 2 : 65536;
                lat = realloc(lat, caplat * sizeof *lat);
                if (!lat)
                    die("out of memory");
            }
            lat[nlat++] = latency_ms;
        }
        return;
    }
    errors++;
    char s[200];
    snprintf(s, sizeof s, "HTTP %d %.150s", status, body);
    for (char *p = s; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    sample(s);
}

static void conn_read(struct conn *c, double now, double w_start, double w_end, bool sending)
{
    for (;;) {
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            errors++;
            sample(r == 0 ? "connection closed by the server" : "recv failed");
            conn_close(c);
            reconnects++;
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        c->rlen += (size_t)r;
        int status = 0;
        size_t total = 0;
        bool close_after = false;
        int pr = parse_answer(c, &status, &total, &close_after);
        if (pr == 0)
            continue;
        if (pr < 0) {
            errors++;
            sample("malformed HTTP answer");
            conn_close(c);
            reconnects++;
            return;
        }
        const char *body = strstr(c->rbuf, "\r\n\r\n") + 4;
        record(status, body, (now - c->t_sent) * 1000.0, now, w_start, w_end);
        if (close_after) {
            conn_close(c);
            reconnects++;
            return;
        }
        if (!sending) {
            c->st = S_CLOSED;   /* done: no new request */
            close(c->fd);
            c->fd = -1;
            return;
        }
        build_request(c);
        c->st = S_SENDING;
        conn_send(c, now);
        return;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!nlat)
        return 0;
    size_t i = (size_t)(p * (double)(nlat - 1) + 0.5);
    return lat[i];
}

static int usage(void)
{
    fprintf(stderr, "usage: send_load --port N [--host IPv4] --key API_KEY --from ADDR --rcpt ADDR\n"
                    "                 [--connections C] [--seconds D] [--warmup W] [--size N]\n"
                    "                 [--timeout S]\n");
    return 2;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(a, "--port"))
            port = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--host"))
            host = v;
        else if (!strcmp(a, "--key"))
            api_key = v;
        else if (!strcmp(a, "--from"))
            from_addr = v;
        else if (!strcmp(a, "--rcpt"))
            rcpt_addr = v;
        else if (!strcmp(a, "--connections"))
            nconns = (int)strtol(v, NULL, 10);
        else if (!strcmp(a, "--seconds"))
            seconds = strtod(v, NULL);
        else if (!strcmp(a, "--warmup"))
            warmup = strtod(v, NULL);
        else if (!strcmp(a, "--size"))
            text_size = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--timeout"))
            timeout_s = strtod(v, NULL);
        else
            return usage();
        i++;
    }
    if (!port || port > 65535 || !api_key || !from_addr || !rcpt_addr || nconns < 1 ||
        nconns > MAX_CONNS || seconds <= 0 || warmup < 0 || text_size < 16 ||
        text_size > REQ_SIZE / 4)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    samples = json_array();
    make_text();
    conns = calloc((size_t)nconns, sizeof *conns);
    struct pollfd *pfd = calloc((size_t)nconns, sizeof *pfd);
    if (!conns || !pfd || !samples)
        die("out of memory");
    for (int i = 0; i < nconns; i++)
        conns[i].fd = -1;

    double t0 = mono();
    double w_start = t0 + warmup, w_end = w_start + seconds, hard_end = w_end + timeout_s;
    long long rw_start = 0, rw_end = 0;
    bool sending = true;
    for (;;) {
        double now = mono();
        if (!rw_start && now >= w_start)
            rw_start = real_ns();
        if (sending && now >= w_end) {
            rw_end = real_ns();
            sending = false;
            fprintf(stderr, "send_load: window over, waiting for the answers in flight\n");
        }
        if (now >= hard_end)
            break;
        int active = 0;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &conns[i];
            if (c->st == S_CLOSED && sending)
                conn_open(c, now);
            if (c->st != S_CLOSED && now > c->t_deadline) {
                errors++;
                sample(c->st == S_CONNECTING ? "connect timeout" : "answer timeout");
                conn_close(c);
                reconnects++;
            }
            pfd[i].fd = c->fd;
            pfd[i].events = c->st == S_CONNECTING || c->st == S_SENDING ? POLLOUT
                            : c->st == S_READING ? POLLIN : 0;
            pfd[i].revents = 0;
            if (c->st == S_CONNECTING && !sending) {
                conn_close(c);
                pfd[i].fd = -1;
            }
            if (c->st != S_CLOSED)
                active++;
        }
        if (!sending && !active)
            break;
        int n = poll(pfd, (nfds_t)nconns, 50);
        if (n < 0 && errno != EINTR)
            die("poll failed");
        now = mono();
        for (int i = 0; i < nconns && n > 0; i++) {
            struct conn *c = &conns[i];
            if (!pfd[i].revents || pfd[i].fd < 0 || c->st == S_CLOSED)
                continue;
            if (c->st == S_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    errors++;
                    sample("connect refused");
                    conn_close(c);
                    usleep(10000);
                    continue;
                }
                build_request(c);
                c->st = S_SENDING;
            }
            if (c->st == S_SENDING)
                conn_send(c, now);
            else if (c->st == S_READING)
                conn_read(c, now, w_start, w_end, sending);
        }
    }
    if (!rw_end)
        rw_end = real_ns();
    qsort(lat, nlat, sizeof *lat, cmp_double);
    json_t *st = json_object();
    for (int s = 0; s < 600; s++)
        if (status_count[s]) {
            char k[16];
            snprintf(k, sizeof k, "%d", s);
            json_object_set_new(st, k, json_integer((json_int_t)status_count[s]));
        }
    json_t *out = json_pack(
        "{s:i, s:f, s:f, s:I, s:f, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:o, s:I, s:o, s:I}",
        "connections", nconns, "seconds", seconds, "warmup", warmup,
        "accepted", (json_int_t)accepted, "accepted_per_s", (double)accepted / seconds,
        "accepted_total", (json_int_t)accepted_total, "requests", (json_int_t)requests,
        "window_start_ns", (json_int_t)rw_start, "window_end_ns", (json_int_t)rw_end,
        "p50_ms", pct(0.50), "p90_ms", pct(0.90), "p99_ms", pct(0.99),
        "max_ms", nlat ? lat[nlat - 1] : 0.0, "status", st, "errors", (json_int_t)errors,
        "error_samples", samples, "reconnects", (json_int_t)reconnects);
    if (!out)
        die("cannot build the JSON result");
    char *s = json_dumps(out, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(out);
    free(pfd);
    free(conns);
    free(lat);
    free(text_json);
    return 0;
}
