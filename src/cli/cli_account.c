/* placeholder while the service is being built; replaced by its owner */
#include <stdio.h>
#include "cli/cli.h"
int cli_account(int argc, char **argv) { (void)argc; (void)argv; fputs("sesame account: not built yet\n", stderr); return EXIT_RUNTIME; }
