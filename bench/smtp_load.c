/* smtp_load: a multi-connection SMTP load generator for bench/bench_mta.sh
 * (issue 5, Performance). One thread, non-blocking sockets and poll().
 *
 * Load mode: C connections, each reads the banner, sends EHLO once, then
 * sends messages in sequence, lock-step (MAIL, RCPT, DATA, the message and
 * the final ".", each waiting for its reply; no pipelining, no RSET unless a
 * command was refused). After a warm-up of W seconds it measures for D
 * seconds: the messages whose final 250 arrived in that window, and for each
 * the latency from the moment the last byte of "<CRLF>.<CRLF>" was handed
 * to the kernel to the moment the whole 250 reply was read. Any reply other
 * than the expected one (250 to MAIL/RCPT/"." and 354 to DATA), a
 * connection closed by the server, a connect failure or a reply that takes
 * longer than --timeout is an error: counted, and the first distinct reply
 * texts reported. A refused command is followed by RSET; a closed connection
 * is reopened.
 * The message is a file sent as it is (CRLF line ends; dot-stuffed here).
 *
 * Idle mode (--idle N): opens N connections (at most 256 connects in
 * flight, RLIMIT_NOFILE raised as needed), reads each banner, sends EHLO,
 * reads its reply, prints one JSON line {"ready": ...} when every
 * connection is either idle or failed, then holds them open until stdin
 * reaches end of file (or --hold SECONDS pass, or SIGTERM/SIGINT), and
 * prints a closing JSON line with how many the server closed meanwhile.
 *
 * --write-message FILE [--size N] writes the benchmarks' shared N-octet
 * message (bench/lib) for the harness to sign, and exits.
 *
 * Source addresses: --sources K binds connection i to 127.0.0.(2 + i % K),
 * so the server sees K different client IPs (all of 127.0.0.0/8 is local
 * on Linux's loopback).
 *
 * Output (load mode), one JSON line on stdout: {"connections","seconds",
 * "messages","msg_per_s","p50_ms","p90_ms","p99_ms","max_ms","errors",
 * "error_samples":[...],"reconnects"}. Progress and problems go to stderr.
 * Not a conformance tester: it does not check what the server does with
 * the mail, only its replies. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_message.h"

#define RBUF_SIZE 8192             /* one reply, all its lines */
#define MAX_SAMPLES 8              /* distinct error replies reported */
#define MAX_CONNECTING 256         /* connects in flight in idle mode */
#define MAX_MESSAGE (1024 * 1024)  /* the message file */

enum state {
    S_CLOSED,   /* to (re)connect */
    S_CONNECTING,
    S_BANNER,
    S_EHLO,
    S_MAIL,
    S_RCPT,
    S_DATA,
    S_DOT,      /* message sent (or being sent), waiting for the 250 */
    S_RSET,
    S_IDLE,     /* idle mode: EHLO answered, holding */
    S_FAILED,   /* idle mode: gave up on this one */
};

struct conn {
    int fd;
    enum state st;
    unsigned src;            /* index into the source addresses */
    const char *out;         /* pending output */
    size_t outlen;
    char cmd[1024];          /* storage for the current command */
    char rbuf[RBUF_SIZE];
    size_t rlen;
    double sent_at;          /* when the last byte of the command left */
    double deadline;         /* reply expected by then */
    double retry_at;         /* S_CLOSED: reconnect not before */
};

struct opts {
    const char *host;
    unsigned port;
    unsigned connections;
    double seconds, warmup, timeout, hold;
    const char *message_file, *from, *rcpt, *helo;
    unsigned sources;
    unsigned idle;
    const char *write_message;
    size_t size;
};

static struct opts o = {
    .host = "127.0.0.1", .port = 2525, .connections = 32, .seconds = 10, .warmup = 2,
    .timeout = 30, .hold = 0, .helo = "client.example.com", .size = 4096,
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void die(const char *what)
{
    fprintf(stderr, "smtp_load: %s\n", what);
    exit(1);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: smtp_load --port N [--host A] --message FILE --from ADDR --rcpt ADDR\n"
            "                 [--helo NAME] [--connections C] [--seconds D] [--warmup W]\n"
            "                 [--sources K] [--timeout S]\n"
            "       smtp_load --idle N --port N [--host A] [--helo NAME] [--sources K]\n"
            "                 [--hold S]   (holds until stdin ends, S seconds or SIGTERM)\n"
            "       smtp_load --write-message FILE [--size N]\n");
    return 2;
}

/* ---- the message ---- */

static char *payload;     /* dot-stuffed message + ".\r\n" */
static size_t payload_len;

static void load_message(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open the message file");
    char *raw = malloc(MAX_MESSAGE + 1);
    if (!raw)
        die("out of memory");
    size_t n = fread(raw, 1, MAX_MESSAGE + 1, f);
    fclose(f);
    if (n == 0 || n > MAX_MESSAGE)
        die("the message file is empty or larger than 1 MiB");
    /* Worst case every line gains a dot; plus the CRLF and ".\r\n". */
    payload = malloc(2 * n + 8);
    if (!payload)
        die("out of memory");
    size_t w = 0;
    bool bol = true;
    for (size_t i = 0; i < n; i++) {
        if (bol && raw[i] == '.')
            payload[w++] = '.';
        payload[w++] = raw[i];
        bol = raw[i] == '\n';
        if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
            die("the message file has a bare LF: it must use CRLF line ends");
    }
    if (!bol) {
        payload[w++] = '\r';
        payload[w++] = '\n';
    }
    memcpy(payload + w, ".\r\n", 3);
    payload_len = w + 3;
    free(raw);
}

static int write_message(const char *path, size_t size)
{
    size_t len;
    char *m = bench_make_message(size, &len);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(m, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "smtp_load: cannot write %s\n", path);
        free(m);
        return 1;
    }
    free(m);
    return 0;
}

/* ---- statistics ---- */

static double *lat;       /* seconds, measuring window only */
static size_t nlat, alat;
static unsigned long errors, reconnects;
static char samples[MAX_SAMPLES][160];
static unsigned nsamples;
static double window_start, window_end;

static bool measuring(double now)
{
    return now >= window_start && now < window_end;
}

static void add_latency(double v)
{
    if (nlat == alat) {
        alat = alat ? 2 * alat : 65536;
        lat = realloc(lat, alat * sizeof(*lat));
        if (!lat)
            die("out of memory");
    }
    lat[nlat++] = v;
}

/* Counts an error (in the window only, except in idle mode) and keeps
 * its text when it is new. */
static void error_seen(double now, const char *what, const char *reply, size_t len)
{
    if (!o.idle && !measuring(now))
        return;
    errors++;
    char text[160];
    if (len > 100)
        len = 100;
    snprintf(text, sizeof text, "%s: %.*s", what, (int)len, reply ? reply : "");
    for (char *p = text; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    for (size_t n = strlen(text); n && text[n - 1] == ' ';)
        text[--n] = '\0';
    for (unsigned i = 0; i < nsamples; i++)
        if (strcmp(samples[i], text) == 0)
            return;
    if (nsamples < MAX_SAMPLES)
        snprintf(samples[nsamples++], sizeof samples[0], "%s", text);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double p)
{
    if (nlat == 0)
        return 0;
    size_t i = (size_t)(p * (double)(nlat - 1) + 0.5);
    return lat[i] * 1000.0;
}

/* ---- connections ---- */

static struct conn *conns;
static unsigned nconns;
static struct sockaddr_in dest;

static void conn_close(struct conn *c, enum state next, double now)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = next;
    c->rlen = 0;
    c->outlen = 0;
    c->retry_at = now + 0.05;
}

static void conn_open(struct conn *c, double now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_seen(now, "socket", strerror(errno), strlen(strerror(errno)));
        c->st = o.idle ? S_FAILED : S_CLOSED;
        c->retry_at = now + 0.5;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o.sources) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(0x7f000002u + c->src);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            error_seen(now, "bind", strerror(errno), strlen(strerror(errno)));
            close(fd);
            c->st = o.idle ? S_FAILED : S_CLOSED;
            c->retry_at = now + 0.5;
            return;
        }
    }
    c->fd = fd;
    c->rlen = 0;
    c->outlen = 0;
    c->deadline = now + o.timeout;
    if (connect(fd, (struct sockaddr *)&dest, sizeof dest) == 0 || errno == EINPROGRESS) {
        c->st = S_CONNECTING;
        return;
    }
    error_seen(now, "connect", strerror(errno), strlen(strerror(errno)));
    conn_close(c, o.idle ? S_FAILED : S_CLOSED, now);
}

/* Queues the command line "<verb><arg><close>CRLF" or the payload. */
static void send_cmd(struct conn *c, enum state next, const char *verb, const char *arg,
                     const char *close_with)
{
    snprintf(c->cmd, sizeof c->cmd, "%s%s%s\r\n", verb, arg ? arg : "", close_with);
    c->out = c->cmd;
    c->outlen = strlen(c->cmd);
    c->st = next;
}

static void send_payload(struct conn *c)
{
    c->out = payload;
    c->outlen = payload_len;
    c->st = S_DOT;
}

static void start_message(struct conn *c)
{
    send_cmd(c, S_MAIL, "MAIL FROM:<", o.from, ">");
}

/* Writes what is pending; returns -1 when the connection broke. */
static int flush_out(struct conn *c, double now)
{
    while (c->outlen) {
        ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -1;
        }
        c->out += n;
        c->outlen -= (size_t)n;
    }
    c->sent_at = now;
    c->deadline = now + o.timeout;
    return 0;
}

/* One complete reply is in rbuf[0..len): acts on it. */
static void on_reply(struct conn *c, const char *r, size_t len, double now)
{
    int code = (len >= 3 && r[0] >= '1' && r[0] <= '5' && r[1] >= '0' && r[1] <= '9' &&
                r[2] >= '0' && r[2] <= '9')
                   ? (r[0] - '0') * 100 + (r[1] - '0') * 10 + (r[2] - '0')
                   : 0;
    /* The last line of a multi-line reply has the final text. */
    const char *last = r;
    for (size_t i = 0; i + 1 < len; i++)
        if (r[i] == '\n')
            last = r + i + 1;
    size_t lastlen = len - (size_t)(last - r);

    switch (c->st) {
    case S_BANNER:
        if (code != 220) {
            error_seen(now, "banner", last, lastlen);
            conn_close(c, o.idle ? S_FAILED : S_CLOSED, now);
            return;
        }
        send_cmd(c, S_EHLO, "EHLO ", o.helo, "");
        return;
    case S_EHLO:
        if (code != 250) {
            error_seen(now, "EHLO", last, lastlen);
            conn_close(c, o.idle ? S_FAILED : S_CLOSED, now);
            return;
        }
        if (o.idle)
            c->st = S_IDLE;
        else
            start_message(c);
        return;
    case S_MAIL:
        if (code != 250) {
            error_seen(now, "MAIL", last, lastlen);
            send_cmd(c, S_RSET, "RSET", NULL, "");
            return;
        }
        send_cmd(c, S_RCPT, "RCPT TO:<", o.rcpt, ">");
        return;
    case S_RCPT:
        if (code != 250) {
            error_seen(now, "RCPT", last, lastlen);
            send_cmd(c, S_RSET, "RSET", NULL, "");
            return;
        }
        send_cmd(c, S_DATA, "DATA", NULL, "");
        return;
    case S_DATA:
        if (code != 354) {
            error_seen(now, "DATA", last, lastlen);
            send_cmd(c, S_RSET, "RSET", NULL, "");
            return;
        }
        send_payload(c);
        return;
    case S_DOT:
        if (c->outlen) { /* a reply before the whole message was sent */
            error_seen(now, "reply during DATA", last, lastlen);
            conn_close(c, S_CLOSED, now);
            return;
        }
        if (code != 250)
            error_seen(now, "end of data", last, lastlen);
        else if (measuring(now))
            add_latency(now - c->sent_at);
        start_message(c);
        return;
    case S_RSET:
        if (code != 250) {
            error_seen(now, "RSET", last, lastlen);
            conn_close(c, S_CLOSED, now);
            return;
        }
        start_message(c);
        return;
    case S_IDLE:
        /* Something unsolicited, e.g. a 421 before closing. */
        error_seen(now, "while idle", last, lastlen);
        return;
    default:
        return;
    }
}

/* Reads what is there and handles every complete reply. Returns -1 when
 * the connection is to be closed. */
static int read_in(struct conn *c, double now)
{
    for (;;) {
        if (c->rlen == sizeof c->rbuf) {
            error_seen(now, "reply", "longer than 8 KiB", 17);
            return -1;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
        if (n == 0) {
            if (c->st != S_CLOSED)
                error_seen(now, "connection", "closed by the server", 20);
            return -1;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            error_seen(now, "recv", strerror(errno), strlen(strerror(errno)));
            return -1;
        }
        c->rlen += (size_t)n;
        /* Complete replies: lines until one whose 4th octet is not '-'. */
        size_t start = 0, pos = 0;
        while (pos < c->rlen) {
            char *nl = memchr(c->rbuf + pos, '\n', c->rlen - pos);
            if (!nl)
                break;
            size_t line = pos, end = (size_t)(nl - c->rbuf) + 1;
            pos = end;
            if (end - line >= 4 && c->rbuf[line + 3] == '-')
                continue;
            on_reply(c, c->rbuf + start, end - start, now);
            if (c->fd < 0)
                return 0; /* closed by on_reply */
            start = end;
            if (c->outlen && flush_out(c, now) != 0) {
                error_seen(now, "send", strerror(errno), strlen(strerror(errno)));
                return -1;
            }
        }
        memmove(c->rbuf, c->rbuf + start, c->rlen - start);
        c->rlen -= start;
    }
}

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur >= want)
        return;
    if (rl.rlim_max < want)
        rl.rlim_max = want; /* works as root */
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        fprintf(stderr, "smtp_load: RLIMIT_NOFILE is %llu, fewer than the %llu wanted\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)want);
    }
}

/* ---- the loop ---- */

struct counts {
    unsigned connecting, idle, failed;
};

static struct counts count_states(void)
{
    struct counts k = { 0, 0, 0 };
    for (unsigned i = 0; i < nconns; i++) {
        if (conns[i].st == S_IDLE)
            k.idle++;
        else if (conns[i].st == S_FAILED)
            k.failed++;
        else if (conns[i].st != S_CLOSED)
            k.connecting++;
    }
    return k;
}

/* One round of poll over every open connection. stdin_fd >= 0 is watched
 * for end of file (idle mode); returns true when it ended. */
static bool poll_round(struct pollfd *pfd, unsigned *map, int stdin_fd, int wait_ms)
{
    double now = bench_now();
    nfds_t n = 0;
    for (unsigned i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->fd < 0)
            continue;
        pfd[n].fd = c->fd;
        pfd[n].events = POLLIN;
        if (c->st == S_CONNECTING || c->outlen)
            pfd[n].events |= POLLOUT;
        pfd[n].revents = 0;
        map[n++] = i;
    }
    nfds_t nsock = n;
    if (stdin_fd >= 0) {
        pfd[n].fd = stdin_fd;
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        n++;
    }
    int r = poll(pfd, n, wait_ms);
    if (r < 0) {
        if (errno == EINTR)
            return false;
        die("poll failed");
    }
    now = bench_now();
    bool stdin_done = false;
    for (nfds_t k = 0; k < nsock; k++) {
        struct conn *c = &conns[map[k]];
        short ev = pfd[k].revents;
        if (!ev) {
            if (c->st != S_IDLE && now > c->deadline) {
                error_seen(now, "timeout", "no reply in time", 16);
                conn_close(c, o.idle ? S_FAILED : S_CLOSED, now);
            }
            continue;
        }
        if (c->st == S_CONNECTING) {
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err) {
                error_seen(now, "connect", strerror(err), strlen(strerror(err)));
                conn_close(c, o.idle ? S_FAILED : S_CLOSED, now);
                continue;
            }
            c->st = S_BANNER;
            c->deadline = now + o.timeout;
        }
        if ((ev & POLLOUT) && c->outlen && flush_out(c, now) != 0) {
            error_seen(now, "send", strerror(errno), strlen(strerror(errno)));
            conn_close(c, o.idle ? S_FAILED : S_CLOSED, now);
            continue;
        }
        if (ev & (POLLIN | POLLHUP | POLLERR)) {
            if (read_in(c, now) != 0) {
                enum state was = c->st;
                conn_close(c, o.idle ? S_FAILED : S_CLOSED, now);
                if (was == S_IDLE)
                    c->st = S_FAILED;
            }
        }
    }
    if (stdin_fd >= 0 && pfd[nsock].revents) {
        char tmp[256];
        ssize_t got = read(stdin_fd, tmp, sizeof tmp);
        if (got <= 0)
            stdin_done = true;
    }
    return stdin_done;
}

static int run_idle(void)
{
    raise_nofile((rlim_t)o.idle + 64);
    nconns = o.idle;
    conns = calloc(nconns, sizeof *conns);
    struct pollfd *pfd = calloc(nconns + 1, sizeof *pfd);
    unsigned *map = calloc(nconns + 1, sizeof *map);
    if (!conns || !pfd || !map)
        die("out of memory");
    for (unsigned i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].st = S_CLOSED;
        conns[i].src = o.sources ? i % o.sources : 0;
    }
    double t0 = bench_now();
    unsigned next = 0;
    for (;;) {
        struct counts k = count_states();
        while (next < nconns && k.connecting < MAX_CONNECTING && !stop_signal) {
            conn_open(&conns[next++], bench_now());
            k.connecting++;
        }
        if (next == nconns) {
            k = count_states();
            if (k.connecting == 0)
                break;
        }
        if (stop_signal)
            break;
        poll_round(pfd, map, -1, 100);
    }
    struct counts k = count_states();
    double took = bench_now() - t0;
    printf("{\"ready\": %u, \"failed\": %u, \"seconds\": %.3f}\n", k.idle, k.failed, took);
    fflush(stdout);
    fprintf(stderr, "smtp_load: %u idle connections established in %.2f s (%u failed)\n",
            k.idle, took, k.failed);
    /* Hold until stdin ends, the hold time passes or a signal comes. */
    unsigned ready = k.idle;
    int stdin_fd = o.hold > 0 ? -1 : 0;
    double until = o.hold > 0 ? bench_now() + o.hold : 0;
    while (!stop_signal && (until == 0 || bench_now() < until)) {
        if (poll_round(pfd, map, stdin_fd, 200))
            break;
    }
    k = count_states();
    json_t *j = json_pack("{s:i, s:i, s:i}", "held", (json_int_t)ready, "still_open",
                          (json_int_t)k.idle, "closed_by_server",
                          (json_int_t)(ready > k.idle ? ready - k.idle : 0));
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(j);
    for (unsigned i = 0; i < nconns; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    free(conns);
    free(pfd);
    free(map);
    return 0;
}

static int run_load(void)
{
    load_message(o.message_file);
    raise_nofile((rlim_t)o.connections + 64);
    nconns = o.connections;
    conns = calloc(nconns, sizeof *conns);
    struct pollfd *pfd = calloc(nconns, sizeof *pfd);
    unsigned *map = calloc(nconns, sizeof *map);
    if (!conns || !pfd || !map)
        die("out of memory");
    double t0 = bench_now();
    window_start = t0 + o.warmup;
    window_end = window_start + o.seconds;
    for (unsigned i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].src = o.sources ? i % o.sources : 0;
        conn_open(&conns[i], t0);
    }
    for (;;) {
        double now = bench_now();
        if (now >= window_end || stop_signal)
            break;
        for (unsigned i = 0; i < nconns; i++) {
            if (conns[i].st == S_CLOSED && now >= conns[i].retry_at) {
                reconnects++;
                conn_open(&conns[i], now);
            }
        }
        int wait_ms = (int)((window_end - now) * 1000) + 1;
        poll_round(pfd, map, -1, wait_ms > 50 ? 50 : wait_ms);
    }
    double end = bench_now();
    if (end > window_end)
        end = window_end;
    double measured = end - window_start;
    if (measured <= 0)
        die("stopped before the measuring window began");
    /* Polite goodbyes on connections between messages are not needed:
     * closing is enough, and a message in flight is simply abandoned. */
    for (unsigned i = 0; i < nconns; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);

    qsort(lat, nlat, sizeof *lat, cmp_double);
    json_t *samp = json_array();
    for (unsigned i = 0; i < nsamples; i++)
        json_array_append_new(samp, json_string(samples[i]));
    json_t *j = json_pack("{s:i, s:f, s:i, s:f, s:f, s:f, s:f, s:f, s:i, s:o, s:i, s:i}",
                          "connections", (json_int_t)o.connections, "seconds", measured,
                          "messages", (json_int_t)nlat, "msg_per_s", (double)nlat / measured,
                          "p50_ms", pct(0.50), "p90_ms", pct(0.90), "p99_ms", pct(0.99),
                          "max_ms", nlat ? lat[nlat - 1] * 1000.0 : 0.0, "errors",
                          (json_int_t)errors, "error_samples", samp, "reconnects",
                          (json_int_t)(reconnects), "message_octets",
                          (json_int_t)payload_len);
    if (!j)
        die("out of memory");
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    printf("%s\n", s);
    free(s);
    json_decref(j);
    fprintf(stderr, "smtp_load: %zu messages in %.1f s = %.0f msg/s, p50 %.2f ms, p99 %.2f ms, "
            "%lu errors\n", nlat, measured, (double)nlat / measured, pct(0.5), pct(0.99), errors);
    free(conns);
    free(pfd);
    free(map);
    free(lat);
    free(payload);
    return 0;
}

/* ---- arguments ---- */

static int num(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--port") == 0 && num(v, 1, 65535, &d) == 0)
            o.port = (unsigned)d;
        else if (strcmp(a, "--connections") == 0 && num(v, 1, 100000, &d) == 0)
            o.connections = (unsigned)d;
        else if (strcmp(a, "--seconds") == 0 && num(v, 0.1, 86400, &d) == 0)
            o.seconds = d;
        else if (strcmp(a, "--warmup") == 0 && num(v, 0, 3600, &d) == 0)
            o.warmup = d;
        else if (strcmp(a, "--timeout") == 0 && num(v, 0.1, 3600, &d) == 0)
            o.timeout = d;
        else if (strcmp(a, "--hold") == 0 && num(v, 0, 86400, &d) == 0)
            o.hold = d;
        else if (strcmp(a, "--message") == 0)
            o.message_file = v;
        else if (strcmp(a, "--from") == 0)
            o.from = v;
        else if (strcmp(a, "--rcpt") == 0)
            o.rcpt = v;
        else if (strcmp(a, "--helo") == 0)
            o.helo = v;
        else if (strcmp(a, "--sources") == 0 && num(v, 0, 250, &d) == 0)
            o.sources = (unsigned)d;
        else if (strcmp(a, "--idle") == 0 && num(v, 1, 1000000, &d) == 0)
            o.idle = (unsigned)d;
        else if (strcmp(a, "--write-message") == 0)
            o.write_message = v;
        else if (strcmp(a, "--size") == 0 && num(v, 512, MAX_MESSAGE, &d) == 0)
            o.size = (size_t)d;
        else
            return usage();
    }
    if (o.write_message)
        return write_message(o.write_message, o.size);
    if (!o.idle && (!o.message_file || !o.from || !o.rcpt))
        return usage();
    if (strlen(o.helo) > 255 || (o.from && strlen(o.from) > 256) ||
        (o.rcpt && strlen(o.rcpt) > 256))
        return usage();
    dest.sin_family = AF_INET;
    dest.sin_port = htons((uint16_t)o.port);
    if (inet_pton(AF_INET, o.host, &dest.sin_addr) != 1)
        return usage();

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return o.idle ? run_idle() : run_load();
}
