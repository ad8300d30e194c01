/* libFuzzer target: DKIM key records (RFC 6376 §3.6.1, RFC 8463) on
 * arbitrary bytes: tag-list, flags, base64 and the DER decoders. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "auth/dkim_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dkim_key k;
    char err[200];
    if (dkim_key_parse((const char *)data, size, &k, err, sizeof err) == 0) {
        if (!k.pkey)
            abort();
        if (k.type == DKIM_KEY_RSA && k.bits < DKIM_MIN_RSA_BITS)
            abort();
        dkim_key_clear(&k);
    }
    return 0;
}
