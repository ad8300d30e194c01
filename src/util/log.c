/* Key=value log lines on stderr; see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_level log_min = LOG_INFO;

void log_set_level(enum log_level min)
{
    log_min = min;
}

void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    if (lvl < log_min)
        return;
    char ts[32];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "ts=%s.%03ldZ level=%s module=%s ", ts,
                     now.tv_nsec / 1000000, names[lvl], module);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
