/* A background thread that runs one function periodically and on demand:
 * the identities' checker and the DMARC reporter are two. fn runs on the
 * ticker's own thread (and is given the ticker: ticker_start may not have
 * returned yet), every interval and soon after ticker_kick; a long
 * fn can ask ticker_stopping() to end early. ticker_stop wakes the thread,
 * waits for fn to return and joins it. */
#ifndef SESAME_SERVICE_TICKER_H
#define SESAME_SERVICE_TICKER_H
#include <stdbool.h>
#include <stddef.h>

struct ticker;
struct ticker *ticker_start(void (*fn)(struct ticker *t, void *arg), void *arg, unsigned interval_ms, char *err,
                            size_t errlen);
void ticker_kick(struct ticker *t);
bool ticker_stopping(struct ticker *t);
void ticker_stop(struct ticker *t);   /* NULL: nothing */

#endif
