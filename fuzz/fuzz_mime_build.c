/* libFuzzer target: the message builder. The input is split into the
 * fields of a request (see below); whatever builds must pass
 * mime_check_raw with a Date and a Message-ID, hold exactly the fields we
 * write (no Bcc, one From, whatever the input smuggles), and read back as
 * the MIME structure asked for. mime_encode_header on the subject yields
 * a value whose only line breaks are folds.
 *
 * Input: byte 0 is flags (1 text, 2 html, 4 reply_to, 8 no subject, 16 no
 * message_id_domain); the rest is fields separated by NUL: from, to, cc,
 * reply_to, subject, text, html, headers, message_id_domain. In to, cc and
 * headers, entries are separated by 0x1f; a header entry is name 0x1e value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mime_build.h"
#include "mail/mime_parse.h"
#include "util/limits.h"

#define MAX_ENTRIES 16

static size_t split(char *s, char sep, char **out, size_t max)
{
    size_t n = 0;
    while (s && n < max) {
        out[n++] = s;
        s = strchr(s, sep);
        if (s)
            *s++ = '\0';
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    unsigned flags = data[0];
    char *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    char *field[9] = { 0 };
    size_t nf = 0;
    for (char *p = copy; nf < 9 && p < copy + size; p += strlen(p) + 1)
        field[nf++] = p;
    for (size_t i = nf; i < 9; i++)
        field[i] = "";

    char *to[MAX_ENTRIES], *cc[MAX_ENTRIES], *hs[MAX_ENTRIES];
    struct mime_header headers[MAX_ENTRIES];
    size_t nto = field[1][0] ? split(field[1], 0x1f, to, MAX_ENTRIES) : 0;
    size_t ncc = field[2][0] ? split(field[2], 0x1f, cc, MAX_ENTRIES) : 0;
    size_t nh = field[7][0] ? split(field[7], 0x1f, hs, MAX_ENTRIES) : 0;
    for (size_t i = 0; i < nh; i++) {
        char *v = strchr(hs[i], 0x1e);
        if (v)
            *v++ = '\0';
        headers[i] = (struct mime_header){ hs[i], v ? v : "" };
    }
    struct mime_message m = {
        .from = field[0],
        .to = (const char *const *)to, .nto = nto,
        .cc = (const char *const *)cc, .ncc = ncc,
        .reply_to = (flags & 4) ? field[3] : NULL,
        .subject = (flags & 8) ? NULL : field[4],
        .text = (flags & 1) ? field[5] : NULL,
        .html = (flags & 2) ? field[6] : NULL,
        .headers = headers, .nheaders = nh,
        .message_id_domain = (flags & 16) ? NULL : field[8],
        .now = (time_t)1764100800 + (time_t)(flags * 86400),
    };
    struct buf out;
    buf_init(&out, 4 * 1024 * 1024);
    char err[256];
    if (mime_build(&m, &out, err, sizeof err) == 0) {
        bool d = false, id = false;
        if (mime_check_raw(out.data, out.len, MAIL_MAX_MESSAGE_SIZE, &d, &id, err,
                           sizeof err) != 0 || !d || !id)
            __builtin_trap();
        static struct mime_tree t;
        if (mime_parse(out.data, out.len, &t, err, sizeof err) != 0)
            __builtin_trap();
        struct sv head = t.part[0].head;
        if (mime_header_count(head, "Bcc") || mime_header_count(head, "From") != 1 ||
            mime_header_count(head, "Content-Type") != 1 ||
            mime_header_count(head, "MIME-Version") != 1 ||
            mime_header_count(head, "DKIM-Signature") || mime_header_count(head, "Received"))
            __builtin_trap();
        size_t want = (m.text && m.html) ? 3 : 1;
        if (t.nparts != want || t.truncated || t.part[0].unterminated)
            __builtin_trap();
        if (want == 3 && (strcmp(t.part[1].type, "text/plain") != 0 ||
                          strcmp(t.part[2].type, "text/html") != 0))
            __builtin_trap();
        if (want == 1 && strcmp(t.part[0].type, m.text ? "text/plain" : "text/html") != 0)
            __builtin_trap();
    } else if (!err[0] || out.len != 0) {
        __builtin_trap();
    }
    buf_free(&out);

    struct buf enc;
    buf_init(&enc, 1024 * 1024);
    if (mime_encode_header("Subject", field[4], &enc) == 0)
        for (size_t i = 0; i < enc.len; i++)
            if ((enc.data[i] == '\r' && (i + 2 >= enc.len || enc.data[i + 1] != '\n' ||
                                         (enc.data[i + 2] != ' ' && enc.data[i + 2] != '\t'))) ||
                (enc.data[i] == '\n' && (i == 0 || enc.data[i - 1] != '\r')))
                __builtin_trap();
    buf_free(&enc);
    free(copy);
    return 0;
}
