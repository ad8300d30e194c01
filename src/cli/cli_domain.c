/* placeholder while the service is being built; replaced by its owner */
#include <stdio.h>
#include "cli/cli.h"
int cli_domain(int argc, char **argv) { (void)argc; (void)argv; fputs("sesame domain: not built yet\n", stderr); return EXIT_RUNTIME; }
