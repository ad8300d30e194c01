/* libFuzzer target: every dns_rdata.c parser on the same arbitrary bytes
 * (TXT, name, MX, A, AAAA, PTR/CNAME), plus the presentation → wire encoder
 * and name validation on the bytes as text. Checks invariants, not just
 * crashes: a parsed name re-encodes to exactly the bytes it came from, and
 * a parsed TXT is the rdata minus one length octet per string. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/dns_rdata.h"
#include "util/buf.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf txt;
    size_t nstrings = 0;
    buf_init(&txt, 65536);
    if (dns_rdata_txt(data, size, &txt, &nstrings) == 0) {
        CHECK(nstrings >= 1);
        CHECK(txt.len + nstrings == size);
    }
    buf_free(&txt);

    char name[256], back_name[256];
    uint8_t wire[256];
    size_t used = 0;
    if (dns_rdata_name(data, size, name, sizeof(name), &used) == 0) {
        CHECK(used >= 1 && used <= size && used <= 255);
        CHECK(strlen(name) <= 253);
        int n = dns_wire_name(name, wire, sizeof(wire));
        CHECK(n == (int)used);
        CHECK(memcmp(wire, data, used) == 0);
        CHECK(name[0] == '\0' || dns_name_is_valid(name, strlen(name)));
    }
    /* a small output buffer must fail cleanly, never overflow */
    char tiny[8];
    (void)dns_rdata_name(data, size, tiny, sizeof(tiny), &used);

    uint16_t pref;
    char host[256];
    if (dns_rdata_mx(data, size, &pref, host, sizeof(host)) == 0) {
        CHECK(size >= 3);
        CHECK(pref == (uint16_t)(data[0] << 8 | data[1]));
    }

    uint8_t a[4], aaaa[16];
    CHECK((dns_rdata_a(data, size, a) == 0) == (size == 4));
    CHECK((dns_rdata_aaaa(data, size, aaaa) == 0) == (size == 16));

    if (dns_rdata_ptr(data, size, back_name, sizeof(back_name)) == 0) {
        CHECK(dns_rdata_name(data, size, name, sizeof(name), &used) == 0);
        CHECK(used == size);
        CHECK(strcmp(name, back_name) == 0);
    }

    /* the bytes as a presentation-form name */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int valid = dns_name_is_valid(text, size);
    int n = dns_wire_name(text, wire, sizeof(wire));
    if (valid) {
        /* a valid name always encodes, and decodes to itself */
        CHECK(n > 1);
        CHECK(dns_rdata_ptr(wire, (size_t)n, name, sizeof(name)) == 0);
        size_t len = size - (text[size - 1] == '.');
        CHECK(strlen(name) == len && memcmp(name, text, len) == 0);
    }
    free(text);
    return 0;
}
