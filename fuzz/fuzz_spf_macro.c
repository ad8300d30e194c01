/* libFuzzer target: the SPF macro-string checker and expander, for domain
 * names and explanation text, IPv4 and IPv6 clients. The first byte picks
 * the mode. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auth/spf_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool exp_text = data[0] & 1;
    struct spf_ip ip;
    spf_ip_parse((data[0] & 2) ? "2001:db8::cb01" : "192.0.2.3", &ip);
    struct spf_macro_ctx ctx = {
        .sender = SV_LIT("strong-bad@email.example.com"), .local = SV_LIT("strong-bad"),
        .sender_domain = SV_LIT("email.example.com"), .domain = SV_LIT("email.example.com"),
        .ip = &ip, .helo = SV_LIT("mx.example.org"), .now = 1234567890,
    };
    struct sv s = sv_make((const char *)data + 1, size - 1);
    char err[128];
    int checked = spf_macro_check(s, exp_text, err, sizeof err);
    struct buf out;
    buf_init(&out, 4096);
    int expanded = spf_macro_expand(s, exp_text, &ctx, &out);
    /* the checker and the expander agree on syntax (the expander may also
     * refuse an over-long result) */
    if (checked != 0 && expanded == 0)
        __builtin_trap();
    if (expanded == 0 && !exp_text) {
        size_t len = out.len;
        if (len && out.data[len - 1] == '.')
            len--;
        if (len > 253 && memchr(out.data, '.', len))
            __builtin_trap(); /* truncation leaves at most 253, or one label */
    }
    (void)!spf_domain_spec_check(s, err, sizeof err);
    buf_free(&out);
    return 0;
}
