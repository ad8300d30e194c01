/* Non-owning views of byte ranges, for parsers that walk a cursor over
 * (buf, len) input and must never look past len. */
#ifndef SESAME_UTIL_STRVIEW_H
#define SESAME_UTIL_STRVIEW_H
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct sv {
    const char *p;
    size_t len;
};

#define SV_LIT(s) ((struct sv){ (s), sizeof(s) - 1 })

static inline struct sv sv_make(const char *p, size_t len) { return (struct sv){ p, len }; }
static inline struct sv sv_cstr(const char *s) { return (struct sv){ s, strlen(s) }; }

static inline bool sv_eq_ci(struct sv a, struct sv b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.p, b.p, a.len) == 0);
}

static inline bool sv_eq_ci_cstr(struct sv a, const char *s)
{
    return sv_eq_ci(a, sv_cstr(s));
}

static inline bool sv_has_prefix_ci(struct sv a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && strncasecmp(a.p, prefix, n) == 0;
}

/* Index of the first c in a, or a.len when absent. */
static inline size_t sv_find(struct sv a, char c)
{
    const char *q = a.len ? memchr(a.p, c, a.len) : NULL;
    return q ? (size_t)(q - a.p) : a.len;
}

static inline struct sv sv_sub(struct sv a, size_t from, size_t to)
{
    if (to > a.len) to = a.len;
    if (from > to) from = to;
    return (struct sv){ a.p + from, to - from };
}

/* White space as header fields and DNS TXT tag lists use it (WSP, CR, LF). */
static inline bool sv_is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static inline struct sv sv_trim(struct sv s)
{
    while (s.len && sv_is_wsp(s.p[0]))
        s = sv_sub(s, 1, s.len);
    while (s.len && sv_is_wsp(s.p[s.len - 1]))
        s.len--;
    return s;
}

/* Parses a decimal number of at most max; false on anything else
 * (empty, non-digits, overflow). */
bool sv_to_uint(struct sv a, unsigned long max, unsigned long *out);

#endif
