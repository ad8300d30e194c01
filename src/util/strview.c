/* String view helpers that are too long to inline; see strview.h. */
#include "util/strview.h"

bool sv_to_uint(struct sv a, unsigned long max, unsigned long *out)
{
    if (a.len == 0)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < a.len; i++) {
        char c = a.p[i];
        if (c < '0' || c > '9')
            return false;
        unsigned long d = (unsigned long)(c - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}
