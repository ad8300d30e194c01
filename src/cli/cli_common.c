/* Shared CLI helpers; see cli_common.h. */
#include "cli/cli_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

static void vreport(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "sesame %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_runtime_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return EXIT_RUNTIME;
}

struct dns_resolver *cli_resolver(const char *cmd, const char *flag)
{
    char err[256];
    const char *server = dns_server_from_env(flag);
    struct dns_resolver *r = dns_unbound_new(server, 0, err, sizeof err);
    if (!r)
        cli_runtime_error(cmd, "cannot set up DNS%s%s: %s", server ? " via " : "",
                          server ? server : "", err);
    return r;
}

void cli_print_json(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s)
        puts(s);
    free(s);
    json_decref(obj);
}

json_t *cli_json_str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}
