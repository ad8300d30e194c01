/* A growable byte buffer that carries its own cap (curl's dynbuf): appending
 * past the cap is an error the caller sees, never an unbounded realloc.
 * The content is always NUL-terminated for convenience, but may contain NULs. */
#ifndef SESAME_UTIL_BUF_H
#define SESAME_UTIL_BUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
    char  *data;   /* NULL until the first append */
    size_t len;    /* bytes used, excluding the terminating NUL */
    size_t alloc;  /* bytes allocated */
    size_t cap;    /* largest len allowed */
    bool fixed;    /* data is caller storage: never reallocated or freed */
};

void buf_init(struct buf *b, size_t cap);
/* A buffer on caller storage (e.g. the stack) of size bytes: cap is
 * size - 1, nothing is ever allocated; buf_free is then a no-op and
 * buf_detach returns a malloc'd copy. */
void buf_init_fixed(struct buf *b, char *storage, size_t size);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);          /* len = 0, keeps memory */

/* Each returns 0, or -1 when the cap would be exceeded or memory ran out;
 * on -1 the buffer is unchanged. */
__attribute__((warn_unused_result)) int buf_append(struct buf *b, const void *p, size_t n);
__attribute__((warn_unused_result)) int buf_append_str(struct buf *b, const char *s);
__attribute__((warn_unused_result)) int buf_append_char(struct buf *b, char c);
__attribute__((warn_unused_result, format(printf, 2, 3)))
int buf_printf(struct buf *b, const char *fmt, ...);

/* Hands the content to the caller (who frees it) and resets the buffer. */
char *buf_detach(struct buf *b);
const char *buf_cstr(const struct buf *b); /* "" when empty */

#endif
