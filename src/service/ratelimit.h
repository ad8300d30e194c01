/* Failed-authentication limiter per client IP (SMTP AUTH and API keys):
 * after max failures within window seconds an IP is refused until the
 * oldest failure ages out. A fixed-size table (oldest entries evicted), so
 * an attacker with many addresses costs bounded memory. Thread-safe. */
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

#endif
