/* libFuzzer target: DMARC aggregate reports received from other receivers
 * (auth/dmarc_feedback.c: XML through expat, gzip and zip through
 * util/zip_read.c, reports attached to a mail). Never a crash or a leak;
 * a refusal leaves nothing behind and says why; an accepted report obeys
 * every promise of the header: fields terminated in their arrays, valid
 * UTF-8 without control characters, a real IP address, counts and lists
 * within their caps, begin <= end; the JSON and the summary build and the
 * summary adds up. The same input gzipped parses the same way. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "auth/dmarc_feedback.h"
#include "util/utf8.h"
#include "util/zip_read.h"

#define MAX_MESSAGE_REPORTS 3

static void check_text(const char *s)
{
    if (!s)
        __builtin_trap();
    size_t n = strlen(s);
    if (!utf8_valid(s, n))
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            __builtin_trap();
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f)
            __builtin_trap();
    }
    if (n && (s[0] == ' ' || s[n - 1] == ' '))
        __builtin_trap();
}

#define FIELD_OK(f)                                   \
    do {                                              \
        if (strnlen((f), sizeof(f)) == sizeof(f))     \
            __builtin_trap();                         \
        check_text(f);                                \
    } while (0)

static void check_report(const struct dmarc_feedback *f)
{
    FIELD_OK(f->org_name);
    FIELD_OK(f->email);
    FIELD_OK(f->report_id);
    FIELD_OK(f->domain);
    FIELD_OK(f->adkim);
    FIELD_OK(f->aspf);
    FIELD_OK(f->p);
    FIELD_OK(f->sp);
    FIELD_OK(f->fo);
    FIELD_OK(f->skipped_reason);
    if (!f->org_name[0] || !f->report_id[0] || !f->domain[0] || f->begin > f->end ||
        f->begin < 0 || f->pct > 100 || f->nrows == 0 ||
        f->nrows > DMARC_FEEDBACK_MAX_RECORDS || (f->nskipped != 0) != (f->skipped_reason[0] != 0))
        __builtin_trap();
    for (size_t i = 0; i < f->nrows; i++) {
        const struct dmarc_feedback_row *r = &f->rows[i];
        unsigned char a[16];
        FIELD_OK(r->source_ip);
        if (inet_pton(AF_INET, r->source_ip, a) != 1 && inet_pton(AF_INET6, r->source_ip, a) != 1)
            __builtin_trap();
        if (r->count > DMARC_FEEDBACK_MAX_COUNT || r->ndkim > DMARC_FEEDBACK_MAX_DKIM ||
            r->nspf > DMARC_FEEDBACK_MAX_SPF || (r->ndkim && !r->dkim) || (r->nspf && !r->spf))
            __builtin_trap();
        FIELD_OK(r->disposition);
        FIELD_OK(r->dkim_eval);
        FIELD_OK(r->spf_eval);
        FIELD_OK(r->reason_type);
        check_text(r->reason_comment);
        check_text(r->header_from);
        check_text(r->envelope_from);
        check_text(r->envelope_to);
        for (size_t k = 0; k < r->ndkim; k++) {
            check_text(r->dkim[k].domain);
            check_text(r->dkim[k].selector);
            FIELD_OK(r->dkim[k].result);
        }
        for (size_t k = 0; k < r->nspf; k++) {
            check_text(r->spf[k].domain);
            FIELD_OK(r->spf[k].scope);
            FIELD_OK(r->spf[k].result);
        }
    }
    json_t *j = dmarc_feedback_json(f);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!s)
        __builtin_trap();
    free(s);
    json_decref(j);
    json_t *sum = dmarc_feedback_summary(f, 1);
    if (!sum)
        __builtin_trap();
    json_int_t m = json_integer_value(json_object_get(sum, "messages"));
    json_int_t p = json_integer_value(json_object_get(sum, "passed"));
    json_int_t x = json_integer_value(json_object_get(sum, "failed"));
    if (m != p + x || m < 0 || p < 0 || x < 0)
        __builtin_trap();
    json_decref(sum);
}

static int parse(const uint8_t *data, size_t size, struct dmarc_feedback *f)
{
    char err[256];
    err[0] = '\0';
    int rc = dmarc_feedback_parse(data, size, f, err, sizeof err);
    if (rc == 0)
        check_report(f);
    else if (rc != -1 || !err[0] || f->rows || f->mem || f->nrows)
        __builtin_trap();
    return rc;
}

/* data as a gzip file (level 1: cheap). NULL when it does not fit. */
static unsigned char *gzip(const uint8_t *data, size_t size, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&zs, size) + 32;
    unsigned char *out = malloc(cap);
    zs.next_in = (unsigned char *)data;
    zs.avail_in = (uInt)size;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (!out || deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        free(out);
        out = NULL;
    }
    *outlen = zs.total_out;
    deflateEnd(&zs);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_feedback f;
    int rc = parse(data, size, &f);
    size_t nrows = f.nrows, nskipped = f.nskipped;
    dmarc_feedback_free(&f);

    /* gzipped, the same input reads the same */
    if (size && size < 65536 && !gzip_magic(data, size) && !zip_magic(data, size)) {
        size_t glen;
        unsigned char *gz = gzip(data, size, &glen);
        if (gz) {
            struct dmarc_feedback g;
            int grc = parse(gz, glen, &g);
            if (grc != rc || g.nrows != nrows || g.nskipped != nskipped)
                __builtin_trap();
            dmarc_feedback_free(&g);
            free(gz);
        }
    }

    /* as a mail */
    struct dmarc_feedback m[MAX_MESSAGE_REPORTS];
    char err[256];
    size_t n = dmarc_feedback_from_message((const char *)data, size, m, MAX_MESSAGE_REPORTS,
                                           err, sizeof err);
    if (n > MAX_MESSAGE_REPORTS || (n == 0 && !err[0]))
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        check_report(&m[i]);
        dmarc_feedback_free(&m[i]);
    }
    return 0;
}
