/* libFuzzer target: DKIM canonicalization. The input is a header field for
 * both header canonicalizations, and a body for both body
 * canonicalizations, which must give the same octets whole and in chunks
 * (chunk sizes taken from the first input octet), and never emit a bare CR
 * LF pair out of order (every output line ends with CRLF). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dkim_internal.h"

static void canon_body(enum dkim_canon c, const char *p, size_t len, size_t step,
                       struct buf *out)
{
    struct dkim_body b;
    if (dkim_body_init(&b, c, -1, out) != 0)
        abort();
    for (size_t i = 0; i < len; i += step)
        if (dkim_body_update(&b, p + i, step < len - i ? step : len - i) != 0)
            abort();
    if (dkim_body_final(&b, NULL) != 0)
        abort();
    dkim_body_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    struct buf h;
    buf_init(&h, 4 * size + 64);
    for (int c = 0; c < 2; c++) {
        buf_reset(&h);
        if (dkim_canon_header((enum dkim_canon)c, p, len, &h) != 0)
            abort();
        if (h.len < 2 || memcmp(h.data + h.len - 2, "\r\n", 2) != 0)
            abort();
    }
    buf_free(&h);
    for (int c = 0; c < 2; c++) {
        struct buf whole, chunked;
        buf_init(&whole, 4 * size + 64);
        buf_init(&chunked, 4 * size + 64);
        canon_body((enum dkim_canon)c, p, len, len ? len : 1, &whole);
        canon_body((enum dkim_canon)c, p, len, step, &chunked);
        if (whole.len != chunked.len || (whole.len && memcmp(whole.data, chunked.data, whole.len)))
            abort();
        /* The canonical body is empty or ends with exactly one CRLF line end
         * that is not preceded by an empty line. */
        if (whole.len) {
            if (whole.len < 2 || memcmp(whole.data + whole.len - 2, "\r\n", 2) != 0)
                abort();
            if (whole.len >= 4 && memcmp(whole.data + whole.len - 4, "\r\n\r\n", 4) == 0 &&
                !(c == DKIM_CANON_SIMPLE && whole.len == 2))
                abort();
        } else if (c == DKIM_CANON_SIMPLE) {
            abort();
        }
        buf_free(&whole);
        buf_free(&chunked);
    }
    return 0;
}
