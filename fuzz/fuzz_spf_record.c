/* libFuzzer target: the SPF record parser on arbitrary bytes, then every
 * domain-spec it accepted through the macro expander. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auth/spf_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spf_record rec;
    char err[160];
    if (spf_record_parse((const char *)data, size, &rec, err, sizeof err) != 0)
        return 0;
    struct spf_ip ip;
    spf_ip_parse("192.0.2.1", &ip);
    struct spf_macro_ctx ctx = {
        .sender = SV_LIT("user@example.com"), .local = SV_LIT("user"),
        .sender_domain = SV_LIT("example.com"), .domain = SV_LIT("example.com"),
        .ip = &ip, .helo = SV_LIT("mail.example.com"),
    };
    struct buf out;
    buf_init(&out, 4096);
    for (size_t i = 0; i < rec.nterms; i++)
        if (rec.terms[i].domain_spec.len)
            (void)!spf_macro_expand(rec.terms[i].domain_spec, false, &ctx, &out);
    if (rec.has_redirect)
        (void)!spf_macro_expand(rec.redirect, false, &ctx, &out);
    buf_free(&out);
    spf_record_free(&rec);
    return 0;
}
