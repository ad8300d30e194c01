/* libFuzzer target: the DMARC record parser on arbitrary bytes. A record
 * it accepts must have a policy, pct within 0..100 and bounded URI lists. */
#include <stddef.h>
#include <stdint.h>

#include "auth/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_record r;
    char err[200];
    if (dmarc_record_parse((const char *)data, size, &r, err, sizeof err) != 0)
        return 0;
    if (r.p == DMARC_P_UNSET || r.pct > 100 || r.nrua > DMARC_MAX_URIS ||
        r.nruf > DMARC_MAX_URIS || r.nwarnings > DMARC_MAX_WARNINGS)
        __builtin_trap();
    for (size_t i = 0; i < r.nrua; i++)
        if (!r.rua[i].domain[0])
            __builtin_trap();
    return 0;
}
