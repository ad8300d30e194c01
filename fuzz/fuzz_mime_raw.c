/* libFuzzer target: the raw-message checks and the MIME reader. A message
 * mime_check_raw accepts is CRLF-canonical (no bare CR or LF, no NUL, lines
 * within 998) with exactly one From; accepting depends on the size limit
 * only through the size. Every part mime_parse finds lies inside the input
 * and decodes (capped) without crashing. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mail/mime_build.h"
#include "mail/mime_parse.h"
#include "util/limits.h"

static struct mime_tree tree;

static void check_canonical(const char *s, size_t n)
{
    if (n < 2 || s[n - 1] != '\n' || s[n - 2] != '\r' || memchr(s, '\0', n))
        __builtin_trap();
    size_t line = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            __builtin_trap();
        if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
            __builtin_trap();
        line = s[i] == '\n' ? 0 : line + 1;
        if (line > MAIL_MAX_LINE_LEN + 1)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    char err[256];
    bool d = false, m = false;
    int rc = mime_check_raw(msg, size, MAIL_MAX_MESSAGE_SIZE, &d, &m, err, sizeof err);
    if (rc == 0) {
        check_canonical(msg, size);
        bool d2, m2;
        if (mime_check_raw(msg, size, size, &d2, &m2, err, sizeof err) != 0 || d != d2 || m != m2)
            __builtin_trap();
        if (size && mime_check_raw(msg, size, size - 1, &d2, &m2, err, sizeof err) == 0)
            __builtin_trap();
    } else if (!err[0]) {
        __builtin_trap(); /* a refusal says why */
    }

    if (mime_parse(msg, size, &tree, err, sizeof err) != 0)
        return 0;
    if (tree.nparts == 0 || tree.nparts > MIME_MAX_PARTS)
        __builtin_trap();
    for (size_t i = 0; i < tree.nparts; i++) {
        const struct mime_part *p = &tree.part[i];
        if (p->head.p < msg || p->head.p + p->head.len > msg + size || p->body.p < msg ||
            p->body.p + p->body.len > msg + size || p->depth > MIME_MAX_DEPTH ||
            (i > 0 && (p->parent < 0 || (size_t)p->parent >= i)))
            __builtin_trap();
        struct buf b;
        buf_init(&b, 65536);
        (void)!mime_decode_body(p, &b);
        buf_free(&b);
    }
    return 0;
}
