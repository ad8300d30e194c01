/* Prometheus metrics (text exposition format 0.0.4). Families (one name,
 * help and type) hold series (one label set each), both in registration
 * order, which is also the order of the output. Registration and rendering
 * take a mutex; updates are C11 atomics on the series and never lock.
 *
 * A histogram keeps one non-cumulative count per bucket; rendering adds
 * them up, so the +Inf bucket and _count always agree even while other
 * threads observe. Label sets are written as given (the caller quotes and
 * escapes them); registering a name again with another type, a bad name
 * or unsorted bounds is a bug and aborts. It does not expose anything over
 * HTTP: api.c serves metrics_render's text. */
#include "service/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

static const char *const kind_names[] = { "counter", "gauge", "histogram" };

struct family;

struct metric {
    struct metric *next;         /* in the family */
    enum kind kind;
    char *labels;                /* "" when none */
    _Atomic uint64_t value;      /* counter; gauge as two's complement */
    /* histogram */
    size_t nbounds;
    double *bounds;
    _Atomic uint64_t *buckets;   /* nbounds + 1, the last is +Inf; not cumulative */
    _Atomic uint64_t sum_bits;   /* the double sum, as bits (CAS) */
};

struct family {
    struct family *next;
    char *name, *help;
    enum kind kind;
    struct metric *first, **tail;
};

struct metrics {
    pthread_mutex_t mu;
    struct family *first, **tail;
};

const double METRICS_LATENCY_BOUNDS[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,  0.5,    1,     2.5,  5,     10,   30 };
const size_t METRICS_LATENCY_NBOUNDS = sizeof METRICS_LATENCY_BOUNDS / sizeof(double);

__attribute__((noreturn)) static void bug(const char *what, const char *name)
{
    fprintf(stderr, "metrics: %s: %s\n", what, name);
    abort();
}

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->tail = &m->first;
    return m;
}

static void series_free(struct metric *s)
{
    free(s->labels);
    free(s->bounds);
    free((void *)s->buckets);
    free(s);
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    struct family *f = m->first;
    while (f) {
        struct family *fn = f->next;
        struct metric *s = f->first;
        while (s) {
            struct metric *sn = s->next;
            series_free(s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static bool name_ok(const char *n)
{
    if (!n || !*n)
        return false;
    for (const char *p = n; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p > n && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Finds or creates the series; called with the mutex held. */
static struct metric *get_series(struct metrics *m, enum kind kind, const char *name,
                                 const char *help, const char *labels, const double *bounds,
                                 size_t nbounds)
{
    if (!name_ok(name))
        bug("bad metric name", name);
    if (!labels)
        labels = "";
    struct family *f;
    for (f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (f && f->kind != kind)
        bug("registered again with another type", name);
    if (f)
        for (struct metric *s = f->first; s; s = s->next)
            if (strcmp(s->labels, labels) == 0)
                return s;
    if (kind == K_HISTOGRAM)
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                bug("histogram bounds must be finite and ascending", name);

    struct metric *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    s->labels = strdup(labels);
    if (!s->labels)
        goto oom;
    if (kind == K_HISTOGRAM) {
        s->nbounds = nbounds;
        s->bounds = malloc((nbounds ? nbounds : 1) * sizeof(double));
        s->buckets = calloc(nbounds + 1, sizeof *s->buckets);
        if (!s->bounds || !s->buckets)
            goto oom;
        if (nbounds)
            memcpy(s->bounds, bounds, nbounds * sizeof(double));
        double zero = 0;
        uint64_t bits;
        memcpy(&bits, &zero, sizeof bits);
        atomic_init(&s->sum_bits, bits);
    }
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            goto oom;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        if (!f->name || !f->help) {
            free(f->name);
            free(f->help);
            free(f);
            goto oom;
        }
        f->kind = kind;
        f->tail = &f->first;
        *m->tail = f;
        m->tail = &f->next;
    }
    *f->tail = s;
    f->tail = &s->next;
    return s;
oom:
    series_free(s);
    return NULL;
}

static struct metric *reg(struct metrics *m, enum kind kind, const char *name, const char *help,
                          const char *labels, const double *bounds, size_t nbounds)
{
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->mu);
    struct metric *s = get_series(m, kind, name, help, labels, bounds, nbounds);
    pthread_mutex_unlock(&m->mu);
    return s;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels)
{
    return reg(m, K_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels)
{
    return reg(m, K_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t nbounds)
{
    return reg(m, K_HISTOGRAM, name, help, labels, bounds, nbounds);
}

void metric_inc(struct metric *c)
{
    metric_add(c, 1);
}

void metric_add(struct metric *c, uint64_t n)
{
    if (c && c->kind != K_HISTOGRAM)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void metric_gauge_set(struct metric *g, int64_t v)
{
    if (g && g->kind == K_GAUGE)
        atomic_store_explicit(&g->value, (uint64_t)v, memory_order_relaxed);
}

void metric_gauge_add(struct metric *g, int64_t delta)
{
    if (g && g->kind == K_GAUGE)
        atomic_fetch_add_explicit(&g->value, (uint64_t)delta, memory_order_relaxed);
}

void metric_observe(struct metric *h, double v)
{
    if (!h || h->kind != K_HISTOGRAM || isnan(v))
        return;
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed), nw;
    do {
        double sum;
        memcpy(&sum, &old, sizeof sum);
        sum += v;
        memcpy(&nw, &sum, sizeof nw);
    } while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, nw, memory_order_relaxed,
                                                    memory_order_relaxed));
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
}

uint64_t metric_value(const struct metric *c)
{
    if (!c)
        return 0;
    if (c->kind != K_HISTOGRAM)
        return atomic_load_explicit(&c->value, memory_order_relaxed);
    uint64_t n = 0;
    for (size_t i = 0; i <= c->nbounds; i++)
        n += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
    return n;
}

/* ---- rendering ---- */

/* The shortest text that reads back as v: "0.005", "2.5", "1e+20", "+Inf". */
static void fmt_double(double v, char *out, size_t outlen)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(out, outlen, "0");
        return;
    }
    int p;
    for (p = 1; p < 17; p++) {
        snprintf(out, outlen, "%.*e", p - 1, v);
        if (strtod(out, NULL) == v)
            break;
    }
    snprintf(out, outlen, "%.*e", p - 1, v);
    const char *e = strchr(out, 'e');
    long x = e ? strtol(e + 1, NULL, 10) : 0;
    if (x >= -4 && x < 15) {
        int decimals = p - 1 - (int)x;
        snprintf(out, outlen, "%.*f", decimals > 0 ? decimals : 0, v);
    }
}

static int put_help(struct buf *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        int rc = *p == '\\' ? buf_append_str(out, "\\\\")
                 : *p == '\n' ? buf_append_str(out, "\\n")
                              : buf_append_char(out, *p);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* name{labels} or name{labels,le="x"}; extra may be NULL */
static int put_series(struct buf *out, const char *name, const char *suffix, const char *labels,
                      const char *le)
{
    if (buf_printf(out, "%s%s", name, suffix) != 0)
        return -1;
    if (!labels[0] && !le)
        return buf_append_char(out, ' ');
    return buf_printf(out, "{%s%s%s%s%s} ", labels, labels[0] && le ? "," : "", le ? "le=\"" : "",
                      le ? le : "", le ? "\"" : "");
}

static int render_series(struct buf *out, const struct family *f, const struct metric *s)
{
    char num[64];
    switch (f->kind) {
    case K_COUNTER:
        return put_series(out, f->name, "", s->labels, NULL) ||
               buf_printf(out, "%llu\n", (unsigned long long)metric_value(s));
    case K_GAUGE:
        return put_series(out, f->name, "", s->labels, NULL) ||
               buf_printf(out, "%lld\n", (long long)(int64_t)metric_value(s));
    case K_HISTOGRAM: {
        uint64_t cum = 0;
        for (size_t i = 0; i <= s->nbounds; i++) {
            cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
            if (i < s->nbounds)
                fmt_double(s->bounds[i], num, sizeof num);
            else
                snprintf(num, sizeof num, "+Inf");
            if (put_series(out, f->name, "_bucket", s->labels, num) ||
                buf_printf(out, "%llu\n", (unsigned long long)cum))
                return -1;
        }
        uint64_t bits = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
        double sum;
        memcpy(&sum, &bits, sizeof sum);
        fmt_double(sum, num, sizeof num);
        return put_series(out, f->name, "_sum", s->labels, NULL) ||
               buf_printf(out, "%s\n", num) ||
               put_series(out, f->name, "_count", s->labels, NULL) ||
               buf_printf(out, "%llu\n", (unsigned long long)cum);
    }
    }
    return -1;
}

int metrics_render(struct metrics *m, struct buf *out)
{
    if (!m)
        return -1;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    for (const struct family *f = m->first; f && rc == 0; f = f->next) {
        rc = buf_printf(out, "# HELP %s ", f->name) || put_help(out, f->help) ||
             buf_printf(out, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (const struct metric *s = f->first; s && rc == 0; s = s->next)
            rc = render_series(out, f, s);
    }
    pthread_mutex_unlock(&m->mu);
    return rc ? -1 : 0;
}
