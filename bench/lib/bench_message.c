/* The benchmarks' common message and clock; see bench_message.h. */
#include "bench_message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"

static void oom(void)
{
    fprintf(stderr, "bench: out of memory\n");
    exit(1);
}

char *bench_make_message(size_t total, size_t *len)
{
    struct buf b;
    buf_init(&b, total + 4096);
    if (buf_append_str(&b, "From: Alice Example <alice@example.test>\r\n"
                           "To: Bob Example <bob@example.net>\r\n"
                           "Subject: Quarterly report, as discussed on Monday\r\n"
                           "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
                           "Message-ID: <20240101100000.12345@example.test>\r\n"
                           "MIME-Version: 1.0\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "\r\n") != 0)
        oom();
    static const char *words[] = { "the", "quarterly", "numbers", "look", "good,", "and",
                                   "we", "expect", "growth", "in", "every", "region." };
    size_t col = 0, w = 0;
    while (b.len < total - 2) {
        const char *word = words[w++ % 12];
        size_t n = strlen(word);
        int rc = 0;
        if (col + n + 1 > 72) {
            rc = buf_append(&b, "\r\n", 2);
            col = 0;
        } else if (col) {
            rc = buf_append_char(&b, ' ');
            col++;
        }
        if (rc != 0 || buf_append(&b, word, n) != 0)
            oom();
        col += n;
    }
    if (buf_append(&b, "\r\n", 2) != 0)
        oom();
    *len = b.len;
    return buf_detach(&b);
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
