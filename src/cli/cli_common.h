/* Helpers every subcommand shares: the one-line error conventions of
 * SPEC.md §1, the resolver chosen by --dns / $SESAME_DNS, JSON output. */
#ifndef SESAME_CLI_COMMON_H
#define SESAME_CLI_COMMON_H
#include <jansson.h>

#include "dns/dns.h"
#include "util/buf.h"

/* Prints "sesame CMD: message" on stderr and returns EXIT_USAGE. */
__attribute__((format(printf, 2, 3)))
int cli_usage_error(const char *cmd, const char *fmt, ...);

/* Prints "sesame CMD: message" on stderr and returns EXIT_RUNTIME. */
__attribute__((format(printf, 2, 3)))
int cli_runtime_error(const char *cmd, const char *fmt, ...);

/* The resolver for --dns (flag may be NULL: $SESAME_DNS, else the system's).
 * On failure prints why, sets *exit_code (EXIT_USAGE for a malformed
 * address, EXIT_RUNTIME otherwise) and returns NULL. */
struct dns_resolver *cli_resolver(const char *cmd, const char *flag, int *exit_code);

/* Reads all of stdin into b (up to its cap). Returns 0, EXIT_USAGE when
 * the input is larger than the cap, EXIT_RUNTIME on a read error. */
int cli_read_stdin(struct buf *b);

/* Prints obj as one line of JSON on stdout and drops the reference. */
void cli_print_json(json_t *obj);

/* A JSON string, or null for NULL / empty. */
json_t *cli_json_str_or_null(const char *s);

#endif
