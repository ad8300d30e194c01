/* The store for the administrative commands (account, domain, ...): the
 * configuration named by --config (or the embedded defaults), then the
 * store it names. Prints the one-line error of SPEC.md §1 on failure: a
 * bad configuration is bad input (2), a store that cannot open is a
 * runtime failure (1). It does not close the store: the caller does. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "service/config.h"
#include "store/store.h"
#include "util/log.h"

struct store *cli_open_store(const char *cmd, const char *config_path,
                             struct sesame_config *cfg, int *exit_code)
{
    struct sesame_config local;
    char err[CONFIG_STR_MAX + 256];
    if (!cfg)
        cfg = &local;
    if (config_path) {
        if (config_load(cfg, config_path, err, sizeof err) != 0) {
            *exit_code = cli_usage_error(cmd, "%s", err);
            return NULL;
        }
    } else {
        config_defaults(cfg);
    }
    /* A command prints its own outcome; the service's info lines (schema
     * migrations, accounts created) would only repeat it on stderr. */
    enum log_level lvl = LOG_WARN;
    if (strcmp(cfg->log_level, "debug") == 0)
        lvl = LOG_DEBUG;
    else if (strcmp(cfg->log_level, "error") == 0)
        lvl = LOG_ERROR;
    log_set_level(lvl);
    struct store *st = store_open(cfg->store, cfg->data_dir, err, sizeof err);
    if (!st) {
        *exit_code = cli_runtime_error(cmd, "cannot open the store: %s", err);
        return NULL;
    }
    *exit_code = EXIT_RAN;
    return st;
}
