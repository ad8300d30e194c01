/* libFuzzer target: the inbound header rewrite. A message is rewritten;
 * the result must start with our two fields, and rewriting it again must
 * find exactly one field claiming our authserv-id (ours: every forged one
 * went the first time). The summary and the Received value are built from
 * the same bytes; neither may hold a line break. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/inbound_msg.h"
#include "util/limits.h"

#define ID "mx.example.test"

static void take(const uint8_t **p, size_t *n, char *out, size_t cap)
{
    size_t k = *n < cap - 1 ? *n : cap - 1;
    const uint8_t *sep = memchr(*p, '|', k);
    if (sep)
        k = (size_t)(sep - *p);
    memcpy(out, *p, k);
    out[k] = '\0';
    if (memchr(out, '\0', k))
        out[0] = '\0';
    *p += k + (k < *n);
    *n -= k + (k < *n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct buf out, again;
    buf_init(&out, size + 4096);
    buf_init(&again, size + 8192);
    size_t removed = 0, removed2 = 0;
    const char *ar = ID "; spf=pass smtp.mailfrom=a@sender.test; dkim=none; dmarc=none "
                        "header.from=sender.test";
    const char *rcv = "from a.test ([192.0.2.1]) by " ID " with ESMTP id x; "
                      "Thu, 1 Jan 1970 00:00:00 +0000";
    if (inbound_msg_rewrite(msg, size, ID, ar, rcv, &out, &removed) != 0)
        __builtin_trap();
    if (strncmp(buf_cstr(&out), "Authentication-Results: " ID ";", 40) != 0)
        __builtin_trap();
    if (inbound_msg_rewrite(out.data, out.len, ID, ar, rcv, &again, &removed2) != 0 ||
        removed2 != 1)
        __builtin_trap();
    buf_free(&out);
    buf_free(&again);

    char mid[64], subj[256], from[16];
    if (inbound_msg_summary(msg, size, mid, sizeof mid, subj, sizeof subj, from, sizeof from) != 0)
        __builtin_trap();
    if (strpbrk(mid, "\r\n") || strpbrk(subj, "\r\n") || strpbrk(from, "\r\n"))
        __builtin_trap();

    const uint8_t *p = data;
    size_t n = size;
    char helo[300], ip[64], rdns[300], tls[128], rcpt[300];
    take(&p, &n, helo, sizeof helo);
    take(&p, &n, ip, sizeof ip);
    take(&p, &n, rdns, sizeof rdns);
    take(&p, &n, tls, sizeof tls);
    take(&p, &n, rcpt, sizeof rcpt);
    char value[2048];
    if (inbound_msg_received(value, sizeof value, helo, ip[0] ? ip : "192.0.2.1",
                             rdns[0] ? rdns : NULL, ID, "ESMTPS", tls, "id1",
                             rcpt[0] ? rcpt : NULL, (time_t)size * 86400) == 0) {
        if (strpbrk(value, "\r\n") || strncmp(value, "from ", 5) != 0)
            __builtin_trap();
    }
    return 0;
}
