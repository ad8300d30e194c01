/* Worker threads with completions on the event loop; see workq.h. Jobs are
 * a FIFO under one mutex; finished jobs go to a second list that the loop
 * drains when the "done" event fires. */
#include "service/workq.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"
#include "util/log.h"

struct workq {
    struct event_base *base;
    struct event *done_ev;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct workq_job *head, *tail;      /* to run */
    struct workq_job *done_head, *done_tail;
    size_t inflight;
    bool stopping;
    unsigned nthreads;
    pthread_t *threads;
    char store_url[1024], data_dir[1024];
};

static void push(struct workq_job **head, struct workq_job **tail, struct workq_job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static void *worker_main(void *arg)
{
    struct workq *q = arg;
    char err[256];
    struct store *st = store_open(q->store_url, q->data_dir, err, sizeof err);
    if (!st)
        log_msg(LOG_ERROR, "workq", "event=store_open_failed error=\"%s\"", err);
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        if (!q->head && q->stopping)
            break;
        struct workq_job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        pthread_mutex_unlock(&q->mu);
        j->run(j, st);
        pthread_mutex_lock(&q->mu);
        push(&q->done_head, &q->done_tail, j);
        if (!q->stopping)
            event_active(q->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&q->mu);
    store_close(st);
    return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct workq *q = arg;
    pthread_mutex_lock(&q->mu);
    struct workq_job *j = q->done_head;
    q->done_head = q->done_tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while (j) {
        struct workq_job *next = j->next;
        pthread_mutex_lock(&q->mu);
        q->inflight--;
        pthread_mutex_unlock(&q->mu);
        j->done(j);
        j = next;
    }
}

struct workq *workq_new(struct event_base *base, unsigned nthreads,
                        const char *store_url, const char *data_dir,
                        char *err, size_t errlen)
{
    struct workq *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->base = base;
    snprintf(q->store_url, sizeof q->store_url, "%s", store_url ? store_url : "");
    snprintf(q->data_dir, sizeof q->data_dir, "%s", data_dir ? data_dir : "");
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->done_ev = event_new(base, -1, 0, on_done, q);
    q->threads = calloc(nthreads ? nthreads : 1, sizeof *q->threads);
    if (!q->done_ev || !q->threads) {
        snprintf(err, errlen, "out of memory");
        workq_free(q);
        return NULL;
    }
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0) {
            snprintf(err, errlen, "cannot start worker thread %u", i);
            workq_free(q);
            return NULL;
        }
        q->nthreads++;
    }
    return q;
}

void workq_submit(struct workq *q, struct workq_job *job)
{
    pthread_mutex_lock(&q->mu);
    push(&q->head, &q->tail, job);
    q->inflight++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

size_t workq_inflight(const struct workq *q)
{
    struct workq *mq = (struct workq *)q;
    pthread_mutex_lock(&mq->mu);
    size_t n = mq->inflight;
    pthread_mutex_unlock(&mq->mu);
    return n;
}

void workq_free(struct workq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (unsigned i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    if (q->done_ev)
        event_free(q->done_ev);
    free(q->threads);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
