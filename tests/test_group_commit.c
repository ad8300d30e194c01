/* Group commit (service/group_commit.c): eight worker threads, each with
 * its own store connection, write received messages through one group
 * commit; every write must be stored exactly once, batches must actually
 * form (fewer commits than writes), and one failing write must not take
 * the others of its batch down. (The store regression where a second
 * connection in the service made another process delete the live WAL is
 * guarded end to end: e2e_serve_smtp reads the queue from another
 * process while the service runs.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/group_commit.h"
#include "store/store.h"

#define THREADS 8
#define WRITES_PER_THREAD 150

static char tmp[64], dir[128];
static int64_t account_id;
static struct group_commit *gc;
static atomic_int applies;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

struct write_arg {
    int thread, n;
    bool fail;
};

static int apply(struct store *st, void *arg)
{
    struct write_arg *a = arg;
    atomic_fetch_add(&applies, 1);
    struct store_inbound m;
    memset(&m, 0, sizeof m);
    m.account_id = account_id;
    m.received_at = 1;
    m.rcpt_json = (char *)"[\"a@example.test\"]";
    snprintf(m.subject, sizeof m.subject, "t%d-n%d", a->thread, a->n);
    snprintf(m.spf, sizeof m.spf, "pass");
    m.authres = (char *)"x";
    int64_t id;
    const char raw[] = "Subject: x\r\n\r\nbody\r\n";
    int rc = store_inbound_insert(st, &m, raw, sizeof raw - 1, &id);
    /* a failing write fails after it wrote: the group commit must undo it */
    return a->fail ? STORE_ERROR : rc;
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    char err[256];
    struct store *st = store_open("sqlite", dir, err, sizeof err);
    assert_non_null(st);
    for (int n = 0; n < WRITES_PER_THREAD; n++) {
        struct write_arg a = { t, n, (n % 50) == 7 };
        struct gc_write w = { .apply = apply, .arg = &a };
        int rc = group_commit_write(gc, st, &w);
        if (a.fail)
            assert_int_equal(rc, STORE_ERROR);
        else
            assert_int_equal(rc, STORE_OK);
    }
    store_close(st);
    return NULL;
}

static int count_cb(const struct store_inbound *m, void *arg)
{
    (void)m;
    (*(int *)arg)++;
    return 0;
}

static void test_concurrent_writers(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);

    char err[256];
    struct store *st = store_open("sqlite", dir, err, sizeof err);
    assert_non_null(st);
    int64_t n = 0;
    assert_int_equal(store_inbound_count(st, &n), STORE_OK);
    int failing = THREADS * (WRITES_PER_THREAD / 50 + (WRITES_PER_THREAD % 50 > 7));
    assert_int_equal(n, THREADS * WRITES_PER_THREAD - failing);
    /* every subject once: list them all */
    int listed = 0;
    assert_int_equal(store_inbound_list(st, account_id, 0, 100000, count_cb, &listed), STORE_OK);
    assert_int_equal(listed, n);
    unsigned long batches = 0, writes = 0;
    group_commit_stats(gc, &batches, &writes);
    assert_int_equal(writes, THREADS * WRITES_PER_THREAD);
    assert_int_equal(atomic_load(&applies), THREADS * WRITES_PER_THREAD);
    /* eight threads waiting on one fsync each time: batches form */
    assert_true(batches < writes);
    store_close(st);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/sesame-test-gc-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    snprintf(dir, sizeof dir, "%s/var", tmp);
    char err[256];
    struct store *st = store_open("sqlite", dir, err, sizeof err);
    if (!st)
        return 1;
    struct store_account a = { .max_24h = 200, .max_rate = 1 };
    snprintf(a.name, sizeof a.name, "gc");
    if (store_account_insert(st, &a) != STORE_OK)
        return 1;
    account_id = a.id;
    store_close(st);
    gc = group_commit_new();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_writers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    group_commit_free(gc);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
