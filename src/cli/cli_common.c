/* Shared CLI helpers; see cli_common.h. */
#include "cli/cli_common.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "util/strview.h"

__attribute__((format(printf, 2, 0)))
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

/* "ADDR", "ADDR:PORT", "[V6]" or "[V6]:PORT" with a literal address. */
static bool server_syntax_ok(const char *s)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port = NULL;
    size_t n;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || (end[1] && end[1] != ':'))
            return false;
        n = (size_t)(end - s - 1);
        port = end[1] ? end + 2 : NULL;
        s++;
    } else {
        const char *colon = strchr(s, ':');
        bool v6 = colon && strchr(colon + 1, ':');
        n = (!v6 && colon) ? (size_t)(colon - s) : strlen(s);
        port = (!v6 && colon) ? colon + 1 : NULL;
    }
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, s, n);
    host[n] = '\0';
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1)
        return false;
    unsigned long p;
    return !port || (sv_to_uint(sv_cstr(port), 65535, &p) && p > 0);
}

struct dns_resolver *cli_resolver(const char *cmd, const char *flag, int *exit_code)
{
    char err[256];
    const char *server = dns_server_from_env(flag);
    if (server && !server_syntax_ok(server)) {
        *exit_code = cli_usage_error(cmd, "DNS server '%s' is not ADDR, ADDR:PORT or "
                                          "[ADDR]:PORT", server);
        return NULL;
    }
    struct dns_resolver *r = dns_unbound_new(server, 0, err, sizeof err);
    if (!r)
        *exit_code = cli_runtime_error(cmd, "cannot set up DNS%s%s: %s", server ? " via " : "",
                          server ? server : "", err);
    return r;
}

int cli_read_stdin(struct buf *b)
{
    char chunk[65536];
    for (;;) {
        size_t n = fread(chunk, 1, sizeof chunk, stdin);
        if (n && buf_append(b, chunk, n) != 0)
            return b->len + n > b->cap ? EXIT_USAGE : EXIT_RUNTIME;
        if (n < sizeof chunk)
            return ferror(stdin) ? EXIT_RUNTIME : 0;
    }
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
