/* Placeholder until the generate command lands; replaced by its implementation. */
#include <stdio.h>

#include "commands.h"

int cmd_generate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "moeflash generate: not built yet\n");
    return 2;
}
