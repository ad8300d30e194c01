/* sesame dmarc report send [--now] [--config FILE] [--dns ADDR] [--json]
 * (SPEC.md §1.5): generates and queues the due DMARC aggregate reports on
 * the store named by --config, the same code path as the service's
 * reporter thread (service/dmarc_reporting.c); --now also closes the
 * interval in progress. A running `sesame serve` delivers what is queued.
 * Exit 0 when it ran, 1 when the store or the queue fails, 2 for bad usage. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "service/config.h"
#include "service/dmarc_reporting.h"
#include "service/group_commit.h"
#include "service/outbound.h"
#include "store/store.h"
#include "util/log.h"

int cli_dmarc_report_send(int argc, char **argv);

static const char usage_text[] =
    "usage: sesame dmarc report send [--now] [--config FILE] [--dns ADDR[:PORT]] [--json]\n"
    "  generates the DMARC aggregate reports whose interval ([dmarc] report_interval,\n"
    "  default one day, UTC) has ended and queues them for the rua destinations;\n"
    "  --now also reports the interval in progress. A report is never sent twice.\n";

enum { O_NOW = 1, O_CONFIG, O_DNS, O_JSON, O_HELP };

static const struct option opts[] = {
    { "now", no_argument, NULL, O_NOW },
    { "config", required_argument, NULL, O_CONFIG },
    { "dns", required_argument, NULL, O_DNS },
    { "json", no_argument, NULL, O_JSON },
    { "help", no_argument, NULL, O_HELP },
    { 0 },
};

/* The [dns] servers of the configuration: the first of a list. */
static const char *first_server(const char *list, char *out, size_t outlen)
{
    list += strspn(list, " \t,");
    size_t n = strcspn(list, " \t,");
    if (n == 0 || n >= outlen)
        return NULL;
    memcpy(out, list, n);
    out[n] = '\0';
    return out;
}

int cli_dmarc_report_send(int argc, char **argv)
{
    bool now_flag = false, json = false;
    const char *config = NULL, *dns_flag = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_NOW: now_flag = true; break;
        case O_CONFIG: config = optarg; break;
        case O_DNS: dns_flag = optarg; break;
        case O_JSON: json = true; break;
        case O_HELP: fputs(usage_text, stdout); return EXIT_RAN;
        default:
            return cli_usage_error("dmarc", "report send: unknown or incomplete option '%s' "
                                   "(see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("dmarc", "report send: unexpected argument '%s'", argv[optind]);
    struct sesame_config cfg;
    int code;
    struct store *st = cli_open_store("dmarc", config, &cfg, &code);
    if (!st)
        return code;
    log_set_level(strcmp(cfg.log_level, "debug") == 0 ? LOG_DEBUG : LOG_WARN);
    char server_buf[256];
    const char *server = dns_server_from_env(dns_flag);
    if (!server)
        server = first_server(cfg.dns_servers, server_buf, sizeof server_buf);
    struct dns_resolver *dns = cli_resolver("dmarc", server, &code);
    if (!dns) {
        store_close(st);
        return code;
    }
    char err[256];
    struct group_commit *gc = group_commit_new();
    struct outbound *ob = gc ? outbound_new(&cfg, gc, st, err, sizeof err) : NULL;
    int n = ob ? dmarc_reports_send_due(st, ob, dns, &cfg, (int64_t)time(NULL), now_flag) : -1;
    outbound_free(ob);
    group_commit_free(gc);
    dns_resolver_free(dns);
    store_close(st);
    if (n < 0)
        return cli_runtime_error("dmarc", "report send: the store or the queue failed (see the "
                                 "log)");
    if (json)
        cli_print_json(json_pack("{s:i}", "reports", n));
    else
        printf("%d DMARC aggregate report%s generated%s\n", n, n == 1 ? "" : "s",
               n ? " (queued for delivery by the running service)" : "");
    return EXIT_RAN;
}
