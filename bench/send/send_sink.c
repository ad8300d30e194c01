/* send_sink: the fast "recipient MX" of bench/bench_send.sh (issue 6,
 * Performance). One thread, epoll, non-blocking sockets. It accepts every
 * message and discards it, answering as a plain ESMTP server with
 * PIPELINING (replies to a pipelined group are written together), 8BITMIME,
 * SMTPUTF8, SIZE and ENHANCEDSTATUSCODES; no STARTTLS (so both clients
 * under test send in plaintext), no AUTH, no checks.
 *
 * For each message (each end of DATA) it appends one line to the log:
 *     ARRIVAL_NS STAMP_NS
 * ARRIVAL_NS is CLOCK_REALTIME when the final "." was read; STAMP_NS is the
 * number after "t=" in the Subject field, or 0 when there is none (the
 * benchmark's load generator stamps its send time there). The log is
 * flushed every 100 ms, so a harness can count lines to see progress.
 * --save N DIR keeps the first N messages whole as DIR/K.eml (first line
 * "X-Sink-Envelope: MAIL-FROM RCPT"), for the harness to check signatures.
 *
 *   send_sink --listen IP:PORT [--listen IP:PORT ...] --log FILE
 *             [--save N --save-dir DIR]
 *
 * Prints "ready" on stdout once listening; on SIGTERM/SIGINT flushes the
 * log, prints {"messages": N, "connections": M} and exits 0.
 * Not a conformance test: it does not validate commands beyond their verb. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN 8
#define IN_CAP (64 * 1024)         /* unprocessed input per connection */
#define OUT_CAP (16 * 1024)        /* replies not yet written */
#define SAVE_CAP (8 * 1024 * 1024) /* one saved message */

struct conn {
    int fd;
    bool data;          /* inside DATA */
    bool in_headers;    /* inside DATA, before the empty line */
    bool midline;       /* inside DATA, a line longer than the buffer is being skipped */
    bool quit;          /* close once the output is written */
    unsigned rcpts;
    long long stamp;
    char *in;
    size_t inlen;
    char out[OUT_CAP];
    size_t outlen, outoff;
    char envelope[600];
    char *save;         /* the message being saved, or NULL */
    size_t savelen;
};

static volatile sig_atomic_t stop_flag;
static FILE *log_fp;
static bool log_dirty;
static unsigned long long nmessages, nconnections;
static long save_left;
static const char *save_dir;
static unsigned long save_seq;
static int ep;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "send_sink: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void reply(struct conn *c, const char *s)
{
    size_t n = strlen(s);
    if (c->outlen + n > OUT_CAP) {
        c->quit = true;   /* a client that never reads: drop it */
        return;
    }
    memcpy(c->out + c->outlen, s, n);
    c->outlen += n;
}

static void conn_free(struct conn *c)
{
    close(c->fd);
    free(c->in);
    free(c->save);
    free(c);
}

/* The Subject line (without CRLF): the number after "t=". */
static long long parse_stamp(const char *p, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (p[i] == 't' && p[i + 1] == '=' && (i == 0 || p[i - 1] == ' ')) {
            long long v = 0;
            for (size_t j = i + 2; j < n && p[j] >= '0' && p[j] <= '9'; j++)
                v = v * 10 + (p[j] - '0');
            return v;
        }
    }
    return 0;
}

static void save_append(struct conn *c, const char *p, size_t n)
{
    if (!c->save)
        return;
    if (c->savelen + n > SAVE_CAP) {
        free(c->save);
        c->save = NULL;
        return;
    }
    memcpy(c->save + c->savelen, p, n);
    c->savelen += n;
}

static void message_end(struct conn *c)
{
    long long t = now_ns();
    nmessages++;
    fprintf(log_fp, "%lld %lld\n", t, c->stamp);
    log_dirty = true;
    if (c->save) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%lu.eml", save_dir, ++save_seq);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(c->save, 1, c->savelen, f);
            fclose(f);
        }
        free(c->save);
        c->save = NULL;
    }
    char r[80];
    snprintf(r, sizeof r, "250 2.0.0 Ok: queued as S%llu\r\n", nmessages);
    reply(c, r);
    c->data = false;
    c->rcpts = 0;
}

/* One line of DATA, CRLF included (n >= 1). */
static void data_line(struct conn *c, const char *p, size_t n)
{
    if (n == 3 && memcmp(p, ".\r\n", 3) == 0) {
        message_end(c);
        return;
    }
    if (c->in_headers) {
        if (n <= 2 && (p[0] == '\r' || p[0] == '\n'))
            c->in_headers = false;
        else if (n > 8 && strncasecmp(p, "Subject:", 8) == 0)
            c->stamp = parse_stamp(p + 8, n - 8);
    }
    if (p[0] == '.') {
        p++;
        n--;
    }
    save_append(c, p, n);
}

static bool verb(const char *p, size_t n, const char *v)
{
    size_t k = strlen(v);
    return n >= k && strncasecmp(p, v, k) == 0 && (n == k || p[k] == ' ' || p[k] == '\r');
}

/* One command line, CRLF included. */
static void command(struct conn *c, const char *p, size_t n)
{
    if (verb(p, n, "EHLO")) {
        reply(c, "250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
                 "250-SIZE 52428800\r\n250 ENHANCEDSTATUSCODES\r\n");
    } else if (verb(p, n, "HELO")) {
        reply(c, "250 sink.test\r\n");
    } else if (n >= 10 && strncasecmp(p, "MAIL FROM:", 10) == 0) {
        c->rcpts = 0;
        size_t k = n - 10;
        while (k && (p[10 + k - 1] == '\r' || p[10 + k - 1] == '\n'))
            k--;
        if (k > 280)
            k = 280;
        snprintf(c->envelope, sizeof c->envelope, "%.*s", (int)k, p + 10);
        reply(c, "250 2.1.0 Ok\r\n");
    } else if (n >= 8 && strncasecmp(p, "RCPT TO:", 8) == 0) {
        c->rcpts++;
        if (c->rcpts == 1) {
            size_t k = n - 8, have = strlen(c->envelope);
            while (k && (p[8 + k - 1] == '\r' || p[8 + k - 1] == '\n'))
                k--;
            if (k > 280)
                k = 280;
            snprintf(c->envelope + have, sizeof c->envelope - have, " %.*s", (int)k, p + 8);
        }
        reply(c, "250 2.1.5 Ok\r\n");
    } else if (verb(p, n, "DATA")) {
        if (!c->rcpts) {
            reply(c, "554 5.5.1 No valid recipients\r\n");
            return;
        }
        c->data = true;
        c->in_headers = true;
        c->midline = false;
        c->stamp = 0;
        if (save_left > 0) {
            save_left--;
            c->save = malloc(SAVE_CAP);
            c->savelen = 0;
            if (c->save) {
                char h[700];
                int k = snprintf(h, sizeof h, "X-Sink-Envelope: %s\r\n", c->envelope);
                save_append(c, h, (size_t)k);
            }
        }
        reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
    } else if (verb(p, n, "RSET")) {
        c->rcpts = 0;
        reply(c, "250 2.0.0 Ok\r\n");
    } else if (verb(p, n, "NOOP")) {
        reply(c, "250 2.0.0 Ok\r\n");
    } else if (verb(p, n, "QUIT")) {
        reply(c, "221 2.0.0 Bye\r\n");
        c->quit = true;
    } else {
        reply(c, "502 5.5.2 Command not recognized\r\n");
    }
}

static void process(struct conn *c)
{
    size_t off = 0;
    while (off < c->inlen && !c->quit) {
        char *nl = memchr(c->in + off, '\n', c->inlen - off);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (c->in + off)) + 1;
        if (c->data) {
            if (c->midline)
                c->midline = false;   /* the end of a skipped long line */
            else
                data_line(c, c->in + off, n);
        } else {
            command(c, c->in + off, n);
        }
        off += n;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
    if (c->inlen == IN_CAP) {
        if (!c->data) {
            c->quit = true;   /* a command line of 64 KiB */
            return;
        }
        save_append(c, c->in, c->inlen);
        c->midline = true;
        c->inlen = 0;
    }
}

static bool flush_out(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return false;
        }
        c->outoff += (size_t)w;
    }
    if (c->outoff == c->outlen)
        c->outoff = c->outlen = 0;
    struct epoll_event ev = { .events = EPOLLIN | (c->outlen ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return !(c->quit && c->outlen == 0);
}

static void on_conn(struct conn *c, unsigned events)
{
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            if (c->inlen == IN_CAP)
                break;
            ssize_t r = recv(c->fd, c->in + c->inlen, IN_CAP - c->inlen, 0);
            if (r == 0) {
                conn_free(c);
                return;
            }
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                if (errno == EINTR)
                    continue;
                conn_free(c);
                return;
            }
            c->inlen += (size_t)r;
            process(c);
            if (c->quit)
                break;
        }
    }
    if (!flush_out(c))
        conn_free(c);
}

static int listen_on(const char *spec)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "send_sink: --listen wants IP:PORT\n");
        exit(2);
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10)) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "send_sink: bad address %s\n", host);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die(spec);
    if (listen(fd, 1024) != 0)
        die("listen");
    return fd;
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c || !(c->in = malloc(IN_CAP))) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        nconnections++;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        reply(c, "220 sink.test ESMTP\r\n");
        if (!flush_out(c))
            conn_free(c);
    }
}

int main(int argc, char **argv)
{
    const char *listens[MAX_LISTEN];
    int nlisten = 0;
    const char *log_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        if (!strcmp(a, "--listen") && nlisten < MAX_LISTEN)
            listens[nlisten++] = v;
        else if (!strcmp(a, "--log"))
            log_path = v;
        else if (!strcmp(a, "--save"))
            save_left = strtol(v, NULL, 10);
        else if (!strcmp(a, "--save-dir"))
            save_dir = v;
        else
            goto usage;
        i++;
    }
    if (!nlisten || !log_path || (save_left > 0 && !save_dir))
        goto usage;
    log_fp = fopen(log_path, "w");
    if (!log_fp)
        die(log_path);
    static char logbuf[1 << 20];
    setvbuf(log_fp, logbuf, _IOFBF, sizeof logbuf);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    int lfds[MAX_LISTEN];
    for (int i = 0; i < nlisten; i++) {
        lfds[i] = listen_on(listens[i]);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &lfds[i] };
        epoll_ctl(ep, EPOLL_CTL_ADD, lfds[i], &ev);
    }
    printf("ready\n");
    fflush(stdout);
    long long last_flush = now_ns();
    struct epoll_event evs[256];
    while (!stop_flag) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p >= (void *)&lfds[0] && p < (void *)&lfds[nlisten])
                accept_all(*(int *)p);
            else
                on_conn(p, evs[i].events);
        }
        long long t = now_ns();
        if (log_dirty && t - last_flush >= 100000000LL) {
            fflush(log_fp);
            log_dirty = false;
            last_flush = t;
        }
    }
    fflush(log_fp);
    fclose(log_fp);
    printf("{\"messages\": %llu, \"connections\": %llu}\n", nmessages, nconnections);
    return 0;
usage:
    fprintf(stderr, "usage: send_sink --listen IP:PORT [--listen IP:PORT ...] --log FILE\n"
                    "                 [--save N --save-dir DIR]\n");
    return 2;
}
