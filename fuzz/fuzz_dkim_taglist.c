/* libFuzzer target: the DKIM tag-list parser on arbitrary bytes, every value
 * through the base64 decoder, and the same bytes as a DKIM-Signature field
 * through the signature parser. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "auth/dkim_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dkim_taglist tl;
    char err[200];
    if (dkim_taglist_parse((const char *)data, size, &tl, err, sizeof err) == 0) {
        unsigned char out[4096];
        for (size_t i = 0; i < tl.count; i++) {
            size_t n;
            const char *why;
            if (tl.tags[i].value.p < (const char *)data ||
                tl.tags[i].value.p + tl.tags[i].value.len > (const char *)data + size)
                abort();
            (void)dkim_base64_decode(tl.tags[i].value, out, sizeof out, &n, &why);
        }
    }
    /* As a signature field. */
    static const char prefix[] = "DKIM-Signature:";
    char *field = malloc(sizeof prefix - 1 + size);
    if (!field)
        return 0;
    memcpy(field, prefix, sizeof prefix - 1);
    if (size)
        memcpy(field + sizeof prefix - 1, data, size);
    struct dkim_sig *sig = malloc(sizeof *sig);
    if (sig && dkim_sig_parse(field, sizeof prefix - 1 + size, sig, err, sizeof err) == 0) {
        if (sig->b_off + sig->b_len > sizeof prefix - 1 + size || sig->nnames == 0)
            abort();
    }
    free(sig);
    free(field);
    return 0;
}
