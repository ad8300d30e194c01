/* RFC 5322 header section splitting: where the header section ends (in a
 * whole message or a stream) and which fields it holds. See mail_header.h.
 * Values are never decoded or unfolded here. */
#include "mail/mail_header.h"

#include <string.h>

struct sv mail_field_value(const struct mail_field *f)
{
    size_t colon = sv_find(f->raw, ':');
    return sv_sub(f->raw, colon < f->raw.len ? colon + 1 : f->raw.len, f->raw.len);
}

bool mail_field_name_valid(struct sv name)
{
    if (name.len == 0)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.p[i];
        if (c < 33 || c > 126 || c == ':')
            return false;
    }
    return true;
}

void mail_header_fields(const char *buf, size_t len, struct mail_field *out, size_t max,
                        size_t *count, size_t *malformed)
{
    size_t n = 0, bad = 0;
    bool open = false;          /* a field is being collected in out[n-1] */
    const char *field_start = NULL;
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t le = nl ? (size_t)(nl - buf) : len;   /* line end (LF excluded) */
        size_t ce = le;                                /* content end */
        if (nl && ce > i && buf[ce - 1] == '\r')
            ce--;
        size_t next = nl ? le + 1 : len;
        if (ce == i && nl)                             /* the empty line: the end */
            break;
        char c0 = buf[i];
        if (c0 == ' ' || c0 == '\t') {
            if (!open)
                bad++;
            else if (n <= max)
                out[n - 1].raw.len = (size_t)(buf + ce - field_start);
            i = next;
            continue;
        }
        open = false;
        struct sv line = sv_make(buf + i, ce - i);
        size_t colon = sv_find(line, ':');
        struct sv name = sv_sub(line, 0, colon);
        while (name.len && (name.p[name.len - 1] == ' ' || name.p[name.len - 1] == '\t'))
            name.len--;
        if (colon == line.len || !mail_field_name_valid(name)) {
            bad++;
            i = next;
            continue;
        }
        n++;
        open = true;
        field_start = buf + i;
        if (n <= max)
            out[n - 1] = (struct mail_field){ .name = name, .raw = line };
        i = next;
    }
    *count = n;
    if (malformed)
        *malformed = bad;
}

void mail_split_message(const char *msg, size_t len, size_t *head_len, size_t *body_off)
{
    size_t i = 0;
    while (i < len) {
        if (msg[i] == '\n') {
            *head_len = i;
            *body_off = i + 1;
            return;
        }
        if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
            *head_len = i;
            *body_off = i + 2;
            return;
        }
        const char *nl = memchr(msg + i, '\n', len - i);
        if (!nl)
            break;
        i = (size_t)(nl - msg) + 1;
    }
    *head_len = len;
    *body_off = len;
}

void mail_splitter_init(struct mail_splitter *s, size_t cap)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->head, cap);
}

void mail_splitter_free(struct mail_splitter *s)
{
    buf_free(&s->head);
}

/* Keeps p[0..n) of the header section unless the cap was reached, in which
 * case the section is cut back to its last complete line. */
static int keep(struct mail_splitter *s, const char *p, size_t n)
{
    if (s->overflow || n == 0)
        return 0;
    if (s->head.len + n > s->head.cap) {
        s->overflow = true;
        s->head.len = s->line_start;
        if (s->head.data)
            s->head.data[s->head.len] = '\0';
        return 0;
    }
    return buf_append(&s->head, p, n);
}

/* Keeps the complete lines p[0..n) (each ends with its LF; the first may
 * finish a line begun in an earlier chunk): in one piece when they fit,
 * else line by line up to the cap. */
static int keep_lines(struct mail_splitter *s, const char *p, size_t n)
{
    if (n == 0 || s->overflow)
        return 0;
    if (s->head.len + n <= s->head.cap) {
        if (buf_append(&s->head, p, n) != 0)
            return -1;
        s->line_start = s->head.len;
        return 0;
    }
    size_t i = 0;
    while (i < n && !s->overflow) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t end = (size_t)(nl - p) + 1;
        if (keep(s, p + i, end - i) != 0)
            return -1;
        if (!s->overflow)
            s->line_start = s->head.len;
        i = end;
    }
    return 0;
}

size_t mail_splitter_feed(struct mail_splitter *s, const char *p, size_t len)
{
    if (s->in_body)
        return 0;
    size_t i = 0, pend = 0;   /* p[pend..i): complete lines not yet kept */
    while (i < len) {
        const char *nl = memchr(p + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - p) : len;     /* LF excluded */
        size_t n = end - i;
        if (n > 0) {
            s->line_cr = s->line_len == 0 && n == 1 && p[i] == '\r';
            s->line_len += n;
        }
        if (!nl) {
            if (keep_lines(s, p + pend, i - pend) != 0 || keep(s, p + i, n) != 0)
                return (size_t)-1;
            return len;
        }
        if (s->line_len == 0 || (s->line_len == 1 && s->line_cr)) {
            if (keep_lines(s, p + pend, i - pend) != 0)
                return (size_t)-1;
            /* The empty line: it belongs to neither part (a CR of it may
             * have been kept when a chunk ended between CR and LF). */
            if (!s->overflow && s->head.len > s->line_start) {
                s->head.len = s->line_start;
                s->head.data[s->head.len] = '\0';
            }
            s->in_body = true;
            return end + 1;
        }
        s->line_len = 0;
        s->line_cr = false;
        i = end + 1;
    }
    if (keep_lines(s, p + pend, len - pend) != 0)
        return (size_t)-1;
    return len;
}
