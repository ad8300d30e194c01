/* libFuzzer target: Authentication-Results round trip. Verdicts carrying
 * fuzzed domains, reasons and ids are written; the field must be one line
 * (unfolded), must be claimed by its own authserv-id, and the id matcher
 * must survive the raw input as a field value. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auth/authres.h"

static void take(const uint8_t **p, size_t *n, char *out, size_t cap)
{
    size_t k = *n < cap - 1 ? *n : cap - 1;
    const uint8_t *nul = memchr(*p, 0, k);
    if (nul)
        k = (size_t)(nul - *p);
    memcpy(out, *p, k);
    out[k] = '\0';
    *p += k + (k < *n);
    *n -= k + (k < *n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)authres_claims_id(sv_make((const char *)data, size), "mx.example.test");
    if (size < 2)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    char id[64], domain[64];
    struct spf_response spf = { .result = (enum spf_result)(data[0] % 7) };
    struct dkim_signature_result sig = { .result = (enum dkim_result)(data[0] % 6) };
    struct dmarc_outcome dm = { .result = (enum dmarc_result)(data[0] % 5),
                                .policy = (enum dmarc_policy)(data[0] % 4),
                                .disposition = DMARC_P_NONE };
    take(&p, &n, id, sizeof id);
    take(&p, &n, domain, sizeof domain);
    take(&p, &n, spf.problem, sizeof spf.problem);
    take(&p, &n, sig.reason, sizeof sig.reason);
    take(&p, &n, sig.domain, sizeof sig.domain);
    take(&p, &n, dm.from_domain, sizeof dm.from_domain);
    struct dkim_results dk = { 1, &sig };
    /* the writer only promises tokens for ids without white space/specials */
    bool plain_id = id[0] != '\0';
    for (const char *c = id; *c; c++)
        plain_id = plain_id && ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                                *c == '.' || *c == '-');
    struct authres_input in = { plain_id ? id : "mx.example.test", &spf, domain, "helo.test",
                                &dk, &dm, NULL };
    struct buf out;
    buf_init(&out, 65536);
    if (authres_format(&in, false, &out) == 0) {
        if (memchr(out.data, '\r', out.len) || memchr(out.data, '\n', out.len))
            __builtin_trap();
        struct sv value = sv_cstr(buf_cstr(&out) + strlen("Authentication-Results:"));
        if (!authres_claims_id(value, in.authserv_id))
            __builtin_trap();
    }
    buf_free(&out);
    return 0;
}
