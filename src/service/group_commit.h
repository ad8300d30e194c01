/* Group commit: the workers' store writes (a received message, a queued
 * submission) are applied in batches, one transaction and one durable
 * flush for every write waiting at that moment. The first waiting worker
 * becomes the leader and commits the batch on its own store connection;
 * the others sleep until their write is durable (or failed). In-process
 * writers then never collide on SQLite's write lock (whose busy handler
 * sleeps for milliseconds), and one fsync serves many messages. */
#ifndef SESAME_SERVICE_GROUP_COMMIT_H
#define SESAME_SERVICE_GROUP_COMMIT_H

struct store;
struct group_commit;

/* A write: apply runs inside the batch's transaction on the leader's
 * connection and returns a store_rc; it must not begin or commit. */
struct gc_write {
    int (*apply)(struct store *st, void *arg);
    void *arg;
    /* internal */
    int rc;
    int done;
    struct gc_write *next;
};

struct group_commit *group_commit_new(void);
void group_commit_free(struct group_commit *g);
/* Applies w durably with whatever else is waiting; returns its store_rc
 * (STORE_ERROR for all of a batch whose commit failed). st is the calling
 * worker's connection, used if it leads. */
int group_commit_write(struct group_commit *g, struct store *st, struct gc_write *w);
/* Commits made and writes applied so far (tests, metrics). */
void group_commit_stats(struct group_commit *g, unsigned long *batches, unsigned long *writes);

#endif
