/* Failed-authentication limiter per client IP (SMTP AUTH and API keys):
 * after max failures within window seconds an IP is refused until the
 * oldest failure ages out. A fixed-size table (oldest entries evicted), so
 * an attacker with many addresses costs bounded memory. Thread-safe.
 *
 * IPv6 clients are counted per /64 (one host usually owns a whole /64, so
 * counting single addresses would let it rotate past the limit); IPv4 and
 * IPv4-mapped IPv6 per address. max_failures of 0 disables the limiter. */
#ifndef SESAME_SERVICE_RATELIMIT_H
#define SESAME_SERVICE_RATELIMIT_H
#include <stdbool.h>
#include <time.h>

struct authfail_limiter;

struct authfail_limiter *authfail_new(unsigned max_failures, unsigned window_s);
void authfail_free(struct authfail_limiter *l);
bool authfail_blocked(struct authfail_limiter *l, const char *ip, time_t now);
void authfail_record(struct authfail_limiter *l, const char *ip, time_t now);
void authfail_clear(struct authfail_limiter *l, const char *ip); /* after a success */

/* Added by the API (H5): */
#define AUTHFAIL_TABLE_SIZE   4096  /* client IPs (or IPv6 /64s) tracked at once */
#define AUTHFAIL_MAX_TRACKED  256   /* max_failures is capped at this (memory: ring per entry) */
/* Seconds until ip is no longer blocked (the Retry-After of a 429); 0 when
 * it is not blocked. */
unsigned authfail_retry_after(struct authfail_limiter *l, const char *ip, time_t now);
/* Entries in use (tests: memory stays bounded). */
unsigned authfail_tracked(struct authfail_limiter *l);

#endif
