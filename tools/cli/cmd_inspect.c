/* Placeholder until the inspect command lands; replaced by its implementation. */
#include <stdio.h>

#include "commands.h"

int cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "moeflash inspect: not built yet\n");
    return 2;
}
