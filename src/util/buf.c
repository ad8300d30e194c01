/* Capped growable buffer; see buf.h. */
#include "util/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t cap)
{
    b->data = NULL;
    b->len = b->alloc = 0;
    b->cap = cap;
    b->fixed = false;
}

void buf_init_fixed(struct buf *b, char *storage, size_t size)
{
    b->data = storage;
    b->len = 0;
    b->alloc = size;
    b->cap = size ? size - 1 : 0;
    b->fixed = true;
    if (size)
        storage[0] = '\0';
}

void buf_free(struct buf *b)
{
    if (b->fixed) {
        buf_reset(b);
        return;
    }
    free(b->data);
    buf_init(b, b->cap);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int buf_reserve(struct buf *b, size_t n)
{
    if (n > b->cap || b->len > b->cap - n)
        return -1;
    size_t need = b->len + n + 1;
    if (need <= b->alloc)
        return 0;
    if (b->fixed)
        return -1;
    size_t nalloc = b->alloc ? b->alloc : 64;
    while (nalloc < need)
        nalloc = nalloc > SIZE_MAX / 2 ? need : nalloc * 2;
    if (nalloc > b->cap + 1)
        nalloc = b->cap + 1;
    char *p = realloc(b->data, nalloc);
    if (!p)
        return -1;
    b->data = p;
    b->alloc = nalloc;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_append_char(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *buf_detach(struct buf *b)
{
    if (b->fixed) {
        char *copy = malloc(b->len + 1);
        if (copy) {
            memcpy(copy, b->data, b->len);
            copy[b->len] = '\0';
        }
        buf_reset(b);
        return copy;
    }
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    buf_init(b, b->cap);
    return p;
}

const char *buf_cstr(const struct buf *b)
{
    return b->data ? b->data : "";
}
