/* Prometheus metrics: the exact text of metrics_render for counters,
 * gauges and histograms (grouping, HELP/TYPE once, cumulative buckets,
 * _sum and _count, number formats, escaping), re-registration, the
 * buffer cap, and exact totals when threads register and update at once
 * while another renders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/metrics.h"
#include "util/buf.h"

static void render_equal(struct metrics *m, const char *want)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(metrics_render(m, &b), 0);
    if (strcmp(buf_cstr(&b), want) != 0)
        fail_msg("render:\n%s\nwant:\n%s", buf_cstr(&b), want);
    buf_free(&b);
}

static void test_empty(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    assert_non_null(m);
    render_equal(m, "");
    metrics_free(m);
    /* NULL series are ignored */
    metric_inc(NULL);
    metric_add(NULL, 3);
    metric_gauge_set(NULL, 1);
    metric_gauge_add(NULL, 1);
    metric_observe(NULL, 1.0);
    assert_int_equal(metric_value(NULL), 0);
}

static void test_counters_gauges(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metric *mx = metrics_counter(m, "sesame_connections_total", "Connections accepted",
                                        "listener=\"mx\"");
    struct metric *open = metrics_gauge(m, "sesame_connections_open", "Open connections", NULL);
    struct metric *sub = metrics_counter(m, "sesame_connections_total", "ignored: first wins",
                                         "listener=\"submission\"");
    struct metric *plain = metrics_counter(m, "sesame_up_total", "Line one\nback\\slash", NULL);
    assert_non_null(mx);
    assert_non_null(open);
    assert_non_null(sub);
    /* the same (name, labels) is the same series */
    assert_ptr_equal(metrics_counter(m, "sesame_connections_total", "x", "listener=\"mx\""), mx);
    assert_ptr_equal(metrics_gauge(m, "sesame_connections_open", "x", ""), open);

    metric_inc(mx);
    metric_inc(mx);
    metric_add(mx, 40);
    metric_inc(sub);
    metric_gauge_set(open, 10);
    metric_gauge_add(open, -13);
    assert_int_equal(metric_value(mx), 42);
    assert_int_equal((int64_t)metric_value(open), -3);
    /* wrong-kind updates do nothing */
    metric_gauge_set(mx, 7);
    metric_observe(mx, 1.0);
    assert_int_equal(metric_value(mx), 42);

    render_equal(m,
                 "# HELP sesame_connections_total Connections accepted\n"
                 "# TYPE sesame_connections_total counter\n"
                 "sesame_connections_total{listener=\"mx\"} 42\n"
                 "sesame_connections_total{listener=\"submission\"} 1\n"
                 "# HELP sesame_connections_open Open connections\n"
                 "# TYPE sesame_connections_open gauge\n"
                 "sesame_connections_open -3\n"
                 "# HELP sesame_up_total Line one\\nback\\\\slash\n"
                 "# TYPE sesame_up_total counter\n"
                 "sesame_up_total 0\n");
    (void)plain;
    metrics_free(m);
}

static void test_histogram(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    static const double bounds[] = { 0.005, 0.25, 1, 2.5 };
    struct metric *h = metrics_histogram(m, "sesame_data_seconds", "Time to accept",
                                         "listener=\"mx\"", bounds, 4);
    struct metric *h2 = metrics_histogram(m, "sesame_data_seconds", "Time to accept", NULL,
                                          bounds, 4);
    assert_non_null(h);
    assert_ptr_equal(metrics_histogram(m, "sesame_data_seconds", "", "listener=\"mx\"", bounds, 4),
                     h);
    metric_observe(h, 0.001);   /* 0.005 */
    metric_observe(h, 0.005);   /* on the bound: 0.005 */
    metric_observe(h, 0.1);     /* 0.25 */
    metric_observe(h, 0.2);     /* 0.25 */
    metric_observe(h, 3);       /* +Inf */
    metric_observe(h, 0.0 / 0.0); /* NaN: ignored */
    assert_int_equal(metric_value(h), 5);
    metric_inc(h);              /* not a counter: ignored */
    assert_int_equal(metric_value(h), 5);

    struct metric *lat = metrics_histogram(m, "sesame_latency_seconds", "Latency", NULL,
                                           METRICS_LATENCY_BOUNDS, METRICS_LATENCY_NBOUNDS);
    metric_observe(lat, 0.1);
    metric_observe(lat, 0.2);
    struct metric *none = metrics_histogram(m, "sesame_none", "No bounds", NULL, NULL, 0);
    metric_observe(none, 1e20);
    metric_observe(none, 0.5);

    render_equal(m,
                 "# HELP sesame_data_seconds Time to accept\n"
                 "# TYPE sesame_data_seconds histogram\n"
                 "sesame_data_seconds_bucket{listener=\"mx\",le=\"0.005\"} 2\n"
                 "sesame_data_seconds_bucket{listener=\"mx\",le=\"0.25\"} 4\n"
                 "sesame_data_seconds_bucket{listener=\"mx\",le=\"1\"} 4\n"
                 "sesame_data_seconds_bucket{listener=\"mx\",le=\"2.5\"} 4\n"
                 "sesame_data_seconds_bucket{listener=\"mx\",le=\"+Inf\"} 5\n"
                 "sesame_data_seconds_sum{listener=\"mx\"} 3.306\n"
                 "sesame_data_seconds_count{listener=\"mx\"} 5\n"
                 "sesame_data_seconds_bucket{le=\"0.005\"} 0\n"
                 "sesame_data_seconds_bucket{le=\"0.25\"} 0\n"
                 "sesame_data_seconds_bucket{le=\"1\"} 0\n"
                 "sesame_data_seconds_bucket{le=\"2.5\"} 0\n"
                 "sesame_data_seconds_bucket{le=\"+Inf\"} 0\n"
                 "sesame_data_seconds_sum 0\n"
                 "sesame_data_seconds_count 0\n"
                 "# HELP sesame_latency_seconds Latency\n"
                 "# TYPE sesame_latency_seconds histogram\n"
                 "sesame_latency_seconds_bucket{le=\"0.001\"} 0\n"
                 "sesame_latency_seconds_bucket{le=\"0.0025\"} 0\n"
                 "sesame_latency_seconds_bucket{le=\"0.005\"} 0\n"
                 "sesame_latency_seconds_bucket{le=\"0.01\"} 0\n"
                 "sesame_latency_seconds_bucket{le=\"0.025\"} 0\n"
                 "sesame_latency_seconds_bucket{le=\"0.05\"} 0\n"
                 "sesame_latency_seconds_bucket{le=\"0.1\"} 1\n"
                 "sesame_latency_seconds_bucket{le=\"0.25\"} 2\n"
                 "sesame_latency_seconds_bucket{le=\"0.5\"} 2\n"
                 "sesame_latency_seconds_bucket{le=\"1\"} 2\n"
                 "sesame_latency_seconds_bucket{le=\"2.5\"} 2\n"
                 "sesame_latency_seconds_bucket{le=\"5\"} 2\n"
                 "sesame_latency_seconds_bucket{le=\"10\"} 2\n"
                 "sesame_latency_seconds_bucket{le=\"30\"} 2\n"
                 "sesame_latency_seconds_bucket{le=\"+Inf\"} 2\n"
                 "sesame_latency_seconds_sum 0.30000000000000004\n"
                 "sesame_latency_seconds_count 2\n"
                 "# HELP sesame_none No bounds\n"
                 "# TYPE sesame_none histogram\n"
                 "sesame_none_bucket{le=\"+Inf\"} 2\n"
                 "sesame_none_sum 1e+20\n"
                 "sesame_none_count 2\n");
    (void)h2;
    metrics_free(m);
}

static void test_render_cap(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    metric_inc(metrics_counter(m, "a_total", "A", NULL));
    char small[32];
    struct buf b;
    buf_init_fixed(&b, small, sizeof small);
    assert_int_equal(metrics_render(m, &b), -1);
    /* appends after what is there */
    struct buf big;
    buf_init(&big, 4096);
    assert_int_equal(buf_append_str(&big, "x\n"), 0);
    assert_int_equal(metrics_render(m, &big), 0);
    assert_string_equal(buf_cstr(&big), "x\n# HELP a_total A\n# TYPE a_total counter\na_total 1\n");
    buf_free(&big);
    assert_int_equal(metrics_render(NULL, &big), -1);
    metrics_free(m);
}

#define THREADS 4
#define ROUNDS 20000

struct worker {
    struct metrics *m;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char labels[32];
    snprintf(labels, sizeof labels, "thread=\"%d\"", w->id);
    for (int i = 0; i < ROUNDS; i++) {
        /* registration from every thread at once, as the API does per request */
        metric_inc(metrics_counter(w->m, "shared_total", "Shared", NULL));
        metric_inc(metrics_counter(w->m, "own_total", "Own", labels));
        metric_gauge_add(metrics_gauge(w->m, "level", "Level", NULL), (i & 1) ? -1 : 2);
        metric_observe(metrics_histogram(w->m, "obs", "Obs", NULL, METRICS_LATENCY_BOUNDS,
                                         METRICS_LATENCY_NBOUNDS),
                       0.5);
    }
    return NULL;
}

static void *renderer(void *arg)
{
    struct metrics *m = arg;
    for (int i = 0; i < 50; i++) {
        struct buf b;
        buf_init(&b, 1 << 20);
        assert_int_equal(metrics_render(m, &b), 0);
        buf_free(&b);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    pthread_t t[THREADS], r;
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){ m, i };
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    assert_int_equal(pthread_create(&r, NULL, renderer, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_join(r, NULL);

    assert_int_equal(metric_value(metrics_counter(m, "shared_total", "", NULL)),
                     THREADS * ROUNDS);
    for (int i = 0; i < THREADS; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "thread=\"%d\"", i);
        assert_int_equal(metric_value(metrics_counter(m, "own_total", "", labels)), ROUNDS);
    }
    assert_int_equal((int64_t)metric_value(metrics_gauge(m, "level", "", NULL)),
                     THREADS * (ROUNDS / 2));
    struct metric *h = metrics_histogram(m, "obs", "", NULL, METRICS_LATENCY_BOUNDS,
                                         METRICS_LATENCY_NBOUNDS);
    assert_int_equal(metric_value(h), THREADS * ROUNDS);

    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(metrics_render(m, &b), 0);
    char line[128];
    snprintf(line, sizeof line, "\nobs_sum %d\nobs_count %d\n", THREADS * ROUNDS / 2,
             THREADS * ROUNDS);
    assert_non_null(strstr(buf_cstr(&b), line));
    snprintf(line, sizeof line, "\nobs_bucket{le=\"0.25\"} 0\nobs_bucket{le=\"0.5\"} %d\n",
             THREADS * ROUNDS);
    assert_non_null(strstr(buf_cstr(&b), line));
    /* one HELP per name */
    const char *p = buf_cstr(&b);
    int helps = 0;
    while ((p = strstr(p, "# HELP own_total ")) != NULL) {
        helps++;
        p++;
    }
    assert_int_equal(helps, 1);
    buf_free(&b);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_counters_gauges),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_render_cap),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
