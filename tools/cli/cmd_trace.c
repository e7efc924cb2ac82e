/* Placeholder until the trace command lands; replaced by its implementation. */
#include <stdio.h>

#include "commands.h"

int cmd_trace(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "moeflash trace: not built yet\n");
    return 2;
}
