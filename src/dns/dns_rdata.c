/* Bounded parsers for rdata (TXT, names, MX, A, AAAA, PTR/CNAME) and the
 * presentation → wire name encoder. Every parser walks a cursor over
 * (data, len) and never reads past len. It does not decompress names (rdata
 * from resolvers is already decompressed, so a pointer is an error), does
 * not interpret escapes (a label octet is a label octet), and does no I/O. */
#include "dns/dns_rdata.h"

#include <string.h>

#include "util/limits.h"

/* A wire name is at most 255 octets, the root label included (RFC 1035). */
#define WIRE_NAME_MAX (DNS_MAX_NAME_LEN + 2)

int dns_rdata_txt(const uint8_t *data, size_t len, struct buf *out, size_t *nstrings)
{
    size_t n = 0, i = 0;
    if (out)
        buf_reset(out);
    if (nstrings)
        *nstrings = 0;
    if (!data || !out || len == 0)
        return -1; /* a TXT rdata holds one or more strings */
    while (i < len) {
        size_t l = data[i++];
        if (l > len - i)
            return -1; /* truncated character-string */
        if (buf_append(out, data + i, l) != 0)
            return -1;
        i += l;
        n++;
    }
    if (nstrings)
        *nstrings = n;
    return 0;
}

int dns_rdata_name(const uint8_t *data, size_t len, char *out, size_t outlen,
                   size_t *consumed)
{
    size_t i = 0, o = 0;
    if (!data || !out || outlen == 0)
        return -1;
    out[0] = '\0';
    for (;;) {
        if (i >= len || i >= WIRE_NAME_MAX)
            return -1; /* truncated, or longer than 255 octets */
        size_t l = data[i++];
        if (l == 0)
            break;
        if (l > DNS_MAX_LABEL_LEN)
            return -1; /* compression pointer (0xC0) or extended label type */
        if (l > len - i || i + l >= WIRE_NAME_MAX)
            return -1;
        /* '.' or '\0' inside a label cannot be shown unambiguously. */
        if (memchr(data + i, '.', l) || memchr(data + i, '\0', l))
            return -1;
        size_t need = (o ? 1 : 0) + l + 1;
        if (need > outlen - o)
            return -1;
        if (o)
            out[o++] = '.';
        memcpy(out + o, data + i, l);
        o += l;
        i += l;
    }
    out[o] = '\0';
    if (consumed)
        *consumed = i;
    return 0;
}

int dns_rdata_mx(const uint8_t *data, size_t len, uint16_t *pref, char *host,
                 size_t hostlen)
{
    size_t used = 0;
    if (!data || len < 3)
        return -1;
    if (dns_rdata_name(data + 2, len - 2, host, hostlen, &used) != 0)
        return -1;
    if (used != len - 2)
        return -1; /* trailing garbage */
    if (pref)
        *pref = (uint16_t)((data[0] << 8) | data[1]);
    return 0;
}

int dns_rdata_a(const uint8_t *data, size_t len, uint8_t out[4])
{
    if (!data || len != 4)
        return -1;
    memcpy(out, data, 4);
    return 0;
}

int dns_rdata_aaaa(const uint8_t *data, size_t len, uint8_t out[16])
{
    if (!data || len != 16)
        return -1;
    memcpy(out, data, 16);
    return 0;
}

int dns_rdata_ptr(const uint8_t *data, size_t len, char *out, size_t outlen)
{
    size_t used = 0;
    if (dns_rdata_name(data, len, out, outlen, &used) != 0)
        return -1;
    return used == len ? 0 : -1;
}

int dns_wire_name(const char *name, uint8_t *out, size_t outlen)
{
    if (!name || !out)
        return -1;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    size_t o = 0, i = 0;
    while (i < len) {
        const char *dot = memchr(name + i, '.', len - i);
        size_t l = dot ? (size_t)(dot - (name + i)) : len - i;
        if (l == 0 || l > DNS_MAX_LABEL_LEN)
            return -1;
        if (o + 1 + l + 1 > WIRE_NAME_MAX || o + 1 + l + 1 > outlen)
            return -1;
        out[o++] = (uint8_t)l;
        memcpy(out + o, name + i, l);
        o += l;
        i += l + 1;
    }
    if (len > 0 && name[len - 1] == '.')
        return -1; /* "a.." : an empty last label */
    if (o + 1 > outlen)
        return -1;
    out[o++] = 0;
    return (int)o;
}
