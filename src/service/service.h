/* `sesame serve`: one process with the inbound MX and the submission
 * listener (one SMTP session engine, two policies), the HTTP API in its own
 * thread, a worker pool for checks and store writes, and the signals
 * (SIGTERM/SIGINT: stop accepting, finish sessions in flight, flush, exit;
 * SIGHUP: reload the configuration). */
#ifndef SESAME_SERVICE_SERVICE_H
#define SESAME_SERVICE_SERVICE_H
#include <stddef.h>

#include "service/config.h"

struct service;

/* Opens the store, the resolver and TLS, binds the listeners. config_path
 * (may be NULL) is re-read on SIGHUP. NULL with err on failure. */
struct service *service_new(const struct sesame_config *cfg, const char *config_path,
                            char *err, size_t errlen);
/* Runs until SIGTERM/SIGINT (or service_stop), then shuts down cleanly.
 * Returns 0, or -1 after a fatal error. */
int service_run(struct service *svc);
/* Asks a running service to stop (async-signal-unsafe; loop thread or tests). */
void service_stop(struct service *svc);
void service_free(struct service *svc);

#endif
