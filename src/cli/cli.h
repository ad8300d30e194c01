/* Subcommands of the sesame binary. Each takes argc/argv starting at its own
 * name and returns the process exit code of SPEC.md §1: 0 ran (whatever the
 * verdict), 1 runtime failure, 2 bad usage or bad input. */
#ifndef SESAME_CLI_CLI_H
#define SESAME_CLI_CLI_H

enum { EXIT_RAN = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

int cli_spf(int argc, char **argv);
int cli_dkim(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_doctor(int argc, char **argv);
int cli_serve(int argc, char **argv);     /* cli_serve.c */
int cli_account(int argc, char **argv);   /* cli_account.c */
int cli_domain(int argc, char **argv);    /* cli_domain.c */
int cli_sender(int argc, char **argv);    /* cli_sender.c */
int cli_dmarc(int argc, char **argv);     /* cli_dmarc.c */

/* The store named by --config FILE (or the embedded defaults), for the
 * administrative commands; NULL after printing why (sets *exit_code). */
struct store;
struct sesame_config;
struct store *cli_open_store(const char *cmd, const char *config_path,
                             struct sesame_config *cfg, int *exit_code);

#endif
