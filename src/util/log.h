/* Structured logging: one line per event, key=value pairs, to stderr.
 * Secrets are never passed here. */
#ifndef SESAME_UTIL_LOG_H
#define SESAME_UTIL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level min);
/* log_msg(LOG_INFO, "spf", "result=%s domain=%s", ...) prints
 * "ts=... level=info module=spf result=... domain=..." */
__attribute__((format(printf, 3, 4)))
void log_msg(enum log_level lvl, const char *module, const char *fmt, ...);

#endif
