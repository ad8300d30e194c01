/* UTF-8 validation by the RFC 3629 table (no overlong forms, no
 * surrogates, nothing past U+10FFFF): one implementation for the SMTP
 * parser (SMTPUTF8), the MIME builder, the API's JSON strings and events. */
#ifndef SESAME_UTIL_UTF8_H
#define SESAME_UTIL_UTF8_H
#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid sequence at p, which has n > 0 octets; 0
 * when the octets there are not valid UTF-8. */
size_t utf8_seq_len(const unsigned char *p, size_t n);
/* Whether all n octets of s are valid UTF-8 (NUL counts as valid ASCII). */
bool utf8_valid(const char *s, size_t n);

#endif
