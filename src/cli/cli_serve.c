/* `sesame serve [--config FILE]`: runs the service on the file's settings,
 * or on the embedded defaults of SPEC.md §2 when there is no file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "service/config.h"
#include "service/service.h"

static int usage(void)
{
    fputs("usage: sesame serve [--config FILE]\n"
          "  Runs the inbound MX, the submission listener and the HTTP API.\n"
          "  Without --config every setting takes its default (SPEC.md §2):\n"
          "  MX 127.0.0.1:2525, submission 127.0.0.1:5870, HTTP 127.0.0.1:8080,\n"
          "  data in ./var. SIGTERM stops gracefully, SIGHUP reloads the file.\n",
          stdout);
    return EXIT_RAN;
}

int cli_serve(int argc, char **argv)
{
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage();
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config_path = argv[++i];
        else
            return cli_usage_error("serve", "unexpected argument '%s' (try --help)", argv[i]);
    }
    struct sesame_config cfg;
    char err[1024];
    if (config_path) {
        if (config_load(&cfg, config_path, err, sizeof err) != 0)
            return cli_usage_error("serve", "%s", err);
    } else {
        config_defaults(&cfg);
    }
    struct service *svc = service_new(&cfg, config_path, err, sizeof err);
    if (!svc)
        return cli_runtime_error("serve", "%s", err);
    int rc = service_run(svc);
    service_free(svc);
    return rc == 0 ? EXIT_RAN : EXIT_RUNTIME;
}
