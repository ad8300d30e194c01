/* A pool of worker threads for the slow steps of a session (argon2id
 * checks, SPF/DKIM/DMARC with their DNS waits, durable store writes), so
 * the event loop never blocks on them. A job runs on a worker, then its
 * completion runs back on the event loop thread (woken through a libevent
 * event made active from the worker; libevent threading must be on).
 * Each worker owns one store connection, handed to the job. */
#ifndef SESAME_SERVICE_WORKQ_H
#define SESAME_SERVICE_WORKQ_H
#include <stddef.h>

struct event_base;
struct store;

struct workq_job {
    /* on a worker; st is that worker's store connection (may be NULL if the
     * store could not be opened: the job must then fail cleanly) */
    void (*run)(struct workq_job *job, struct store *st);
    /* on the event loop thread, after run */
    void (*done)(struct workq_job *job);
    struct workq_job *next;  /* internal */
};

struct workq;

/* Starts nthreads workers, each opening the store (url, data_dir). */
struct workq *workq_new(struct event_base *base, unsigned nthreads,
                        const char *store_url, const char *data_dir,
                        char *err, size_t errlen);
void workq_submit(struct workq *q, struct workq_job *job);
/* Jobs submitted and not yet done. */
size_t workq_inflight(const struct workq *q);
/* Lets the workers finish what is queued, runs no more completions, joins
 * the threads. Call from the loop thread after the loop has stopped. */
void workq_free(struct workq *q);

#endif
