/*
 * What the board-independent firmware (boards/common/main.c) needs from a
 * board. Each board implements these in boards/NAME/board.c; the startup
 * code (startup.c, or a board's own) calls board_init() after .data/.bss are
 * set up and the FPU is on, then main(), then board_exit(status).
 *
 * boards/NAME/board_config.h (on the include path) sets:
 *   MF_ARENA_BYTES     size of the static arena
 *   MF_BOARD_NAME      a string
 *   MF_CONTEXT_LEN     KV-cache positions (0 = the image's max_seq)
 *   MF_DEFAULT_TOKENS  tokens to generate when nothing is passed in
 *   MF_DEFAULT_PROMPT  prompt when nothing is passed in
 */
#ifndef MF_BOARD_H
#define MF_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "../../port/port.h"

void board_init(void);
/* Writes bytes to the console (UART or semihosting). */
void board_write(const void *buf, size_t len);
/* Opens the model image: fills *port (the board owns the port's context).
 * `path` is the image path given on the command line (may be NULL). */
int board_open_image(mf_port *port, const char *path);
/* The command line (NUL-terminated), or NULL when the board has none. */
const char *board_cmdline(void);
/* Monotonic nanoseconds, 0 when the board has no clock. */
uint64_t board_now_ns(void);
/* Stops the program with this status (QEMU exits with it). */
void board_exit(int status) __attribute__((noreturn));

/* Bytes of stack used so far (high-water mark; boards/common/startup.c). */
size_t board_stack_used(void);

/* Console helpers (console.c), no printf and no heap. */
void con_puts(const char *s);
void con_putu(uint64_t v);
void con_puti(int64_t v);
void con_putf(double v, int decimals);
void con_puthex(uint32_t v);

#endif
