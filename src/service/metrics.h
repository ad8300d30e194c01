/* Prometheus metrics: counters, gauges and histograms registered at start
 * (name, help, optional label set) and updated lock-free from any thread
 * (C11 atomics). metrics_render writes the text exposition format
 * (version 0.0.4) for GET /metrics. */
#ifndef SESAME_SERVICE_METRICS_H
#define SESAME_SERVICE_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct metrics;
struct metric;   /* one time series */

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Registration returns the series for (name, labels); registering the same
 * pair twice returns the same series. labels is the inside of {...}, e.g.
 * "listener=\"mx\",reason=\"relay\"", or NULL. Thread-safe; NULL only when
 * memory ran out (updates on NULL are ignored). */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels);
/* bounds: ascending upper bounds (the +Inf bucket is implicit). */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t nbounds);

void metric_inc(struct metric *c);
void metric_add(struct metric *c, uint64_t n);
void metric_gauge_set(struct metric *g, int64_t v);
void metric_gauge_add(struct metric *g, int64_t delta);
void metric_observe(struct metric *h, double v);
uint64_t metric_value(const struct metric *c);   /* counters and gauges (tests) */

/* Appends every series, grouped by name with one HELP and TYPE each. */
__attribute__((warn_unused_result)) int metrics_render(struct metrics *m, struct buf *out);

/* Latency buckets in seconds, shared by the service's histograms. */
extern const double METRICS_LATENCY_BOUNDS[];
extern const size_t METRICS_LATENCY_NBOUNDS;

#endif
