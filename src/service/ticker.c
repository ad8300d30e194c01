/* Periodic background threads (ticker.h): a mutex, a condition variable
 * signalled by kick and stop, and a timed wait between runs. */
#include "service/ticker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct ticker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, kicked;
    unsigned interval_ms;
    void (*fn)(struct ticker *t, void *arg);
    void *arg;
};

static void *ticker_main(void *arg)
{
    struct ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        t->kicked = false;
        pthread_mutex_unlock(&t->mu);
        t->fn(t, t->arg);
        pthread_mutex_lock(&t->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += t->interval_ms / 1000;
        until.tv_nsec += (long)(t->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!t->stop && !t->kicked &&
               pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

struct ticker *ticker_start(void (*fn)(struct ticker *t, void *arg), void *arg, unsigned interval_ms, char *err,
                            size_t errlen)
{
    struct ticker *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->fn = fn;
    t->arg = arg;
    t->interval_ms = interval_ms ? interval_ms : 1000;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        snprintf(err, errlen, "cannot start a background thread");
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    return t;
}

void ticker_kick(struct ticker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->kicked = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

bool ticker_stopping(struct ticker *t)
{
    pthread_mutex_lock(&t->mu);
    bool stop = t->stop;
    pthread_mutex_unlock(&t->mu);
    return stop;
}

void ticker_stop(struct ticker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
