/* Placeholder until the ppl command lands; replaced by its implementation. */
#include <stdio.h>

#include "commands.h"

int cmd_ppl(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "moeflash ppl: not built yet\n");
    return 2;
}
