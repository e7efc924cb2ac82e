#include "board.h"
#include "board_config.h"
int main(void)
{
    con_puts("hello from " MF_BOARD_NAME "\n");
    const char *c = board_cmdline();
    con_puts("cmdline: ");
    con_puts(c ? c : "(none)");
    con_puts("\n");
    return 3;
}
