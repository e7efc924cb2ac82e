/* Placeholder until the convert command lands; replaced by its implementation. */
#include <stdio.h>

#include "commands.h"

int cmd_convert(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "moeflash convert: not built yet\n");
    return 2;
}
