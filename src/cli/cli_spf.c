/* sesame spf (SPEC.md §1.1) — placeholder until the engine lands. */
#include <stdio.h>
#include "cli/cli.h"
int cli_spf(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "sesame spf: not built yet\n");
    return EXIT_RUNTIME;
}
