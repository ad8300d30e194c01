/* Bounded parsers for the rdata sesame needs. Each takes (data, len) exactly
 * as a dns_rr holds it, never reads past len, and returns 0 on success or -1
 * when the rdata is malformed (a malformed record is treated by callers as
 * if it were absent, and reported). Names are returned in presentation form,
 * case preserved as sent, without the trailing dot (the root is ""); there
 * is no escape syntax, so a label holding '.' or NUL, which could not be
 * shown unambiguously, is malformed. Compression pointers cannot appear in
 * rdata handed out by resolvers (they are decompressed), and are rejected. */
#ifndef SESAME_DNS_RDATA_H
#define SESAME_DNS_RDATA_H
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* TXT: the character-strings concatenated without separator (RFC 7208 §3.3,
 * RFC 6376 §3.6.2.2) into out (reset first). Embedded NULs are kept: callers
 * that need text reject them. nstrings receives the number of strings. */
int dns_rdata_txt(const uint8_t *data, size_t len, struct buf *out, size_t *nstrings);

/* A wire-format domain name at data[0..len) → presentation form in out
 * (capacity outlen, at least 256). consumed receives the bytes used. */
int dns_rdata_name(const uint8_t *data, size_t len, char *out, size_t outlen,
                   size_t *consumed);

/* MX: preference and exchange. */
int dns_rdata_mx(const uint8_t *data, size_t len, uint16_t *pref, char *host,
                 size_t hostlen);

/* A (4 bytes) and AAAA (16 bytes). */
int dns_rdata_a(const uint8_t *data, size_t len, uint8_t out[4]);
int dns_rdata_aaaa(const uint8_t *data, size_t len, uint8_t out[16]);

/* PTR and CNAME: one name filling the whole rdata. */
int dns_rdata_ptr(const uint8_t *data, size_t len, char *out, size_t outlen);

/* Presentation → wire, for zones built by tests and benches. Return the
 * number of bytes written to out, or -1. */
int dns_wire_name(const char *name, uint8_t *out, size_t outlen);

#endif
