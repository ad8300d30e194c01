/* Group commit by leader election; see group_commit.h. */
#include "service/group_commit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "store/store.h"
#include "util/log.h"

#define GC_MAX_BATCH 256   /* writes in one transaction */

struct group_commit {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gc_write *head, *tail;   /* waiting for a leader */
    bool leading;                   /* a batch is being committed */
    unsigned long batches, writes;
};

void group_commit_stats(struct group_commit *g, unsigned long *batches, unsigned long *writes)
{
    pthread_mutex_lock(&g->mu);
    *batches = g->batches;
    *writes = g->writes;
    pthread_mutex_unlock(&g->mu);
}

struct group_commit *group_commit_new(void)
{
    struct group_commit *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    return g;
}

void group_commit_free(struct group_commit *g)
{
    if (!g)
        return;
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* Runs one batch on st; called without the lock. */
static size_t commit_batch(struct store *st, struct gc_write *batch)
{
    if (store_begin(st) != STORE_OK) {
        size_t n = 0;
        for (struct gc_write *w = batch; w; w = w->next, n++)
            w->rc = STORE_ERROR;
        return n;
    }
    size_t n = 0, ok = 0;
    for (struct gc_write *w = batch; w; w = w->next) {
        /* each write all or nothing: a failed one is undone, its batch
         * commits the others (a write answered "failed" must not be sent) */
        if (store_savepoint(st) != STORE_OK) {
            w->rc = STORE_ERROR;
        } else {
            w->rc = w->apply(st, w->arg);
            if (store_savepoint_end(st, w->rc == STORE_OK) != STORE_OK && w->rc == STORE_OK)
                w->rc = STORE_ERROR;
        }
        n++;
        ok += w->rc == STORE_OK;
    }
    if (store_commit(st) != STORE_OK) {
        store_rollback(st);
        log_msg(LOG_ERROR, "store", "event=group_commit_failed writes=%zu", n);
        for (struct gc_write *w = batch; w; w = w->next)
            if (w->rc == STORE_OK)
                w->rc = STORE_ERROR;
    }
    log_msg(LOG_DEBUG, "store", "event=group_commit writes=%zu ok=%zu", n, ok);
    return n;
}

int group_commit_write(struct group_commit *g, struct store *st, struct gc_write *w)
{
    w->done = 0;
    w->rc = STORE_ERROR;
    w->next = NULL;
    pthread_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = w;
    else
        g->head = w;
    g->tail = w;
    while (!w->done) {
        if (g->leading) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        /* lead: take up to GC_MAX_BATCH waiting writes (ours among them) */
        g->leading = true;
        struct gc_write *batch = g->head, *last = batch;
        for (size_t n = 1; n < GC_MAX_BATCH && last->next; n++)
            last = last->next;
        g->head = last->next;
        if (!g->head)
            g->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&g->mu);
        size_t n = commit_batch(st, batch);
        pthread_mutex_lock(&g->mu);
        g->batches++;
        g->writes += n;
        for (struct gc_write *x = batch, *next; x; x = next) {
            next = x->next;
            x->done = 1;
        }
        g->leading = false;
        pthread_cond_broadcast(&g->cv);
    }
    int rc = w->rc;
    pthread_mutex_unlock(&g->mu);
    return rc;
}
