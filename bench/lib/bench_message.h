/* Shared by the benchmarks: the 4 KiB business mail they all sign, verify
 * and check, and a monotonic clock in seconds. */
#ifndef SESAME_BENCH_MESSAGE_H
#define SESAME_BENCH_MESSAGE_H
#include <stddef.h>

/* A plain-text message of about total octets (CRLF, 72-column lines),
 * From alice@example.test; malloc'd, length in *len. Exits on no memory. */
char *bench_make_message(size_t total, size_t *len);

double bench_now(void);

#endif
