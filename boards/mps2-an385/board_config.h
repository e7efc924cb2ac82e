/* mps2-an385: Cortex-M3 (no FPU, no DSP extension).
 * Memory map (Arm AN385 application note, "Memory map"; QEMU hw/arm/mps2.c):
 * ZBT SSRAM1 4 MiB at 0x00000000 (code), ZBT SSRAM2/3 4 MiB at 0x20000000
 * (data), PSRAM 16 MiB at 0x21000000. No memory-mapped flash: the image is
 * read through semihosting. */
#ifndef MF_BOARD_CONFIG_H
#define MF_BOARD_CONFIG_H

#define MF_BOARD_NAME "mps2-an385"

#ifndef MF_ARENA_BYTES
#define MF_ARENA_BYTES (1024u * 1024u)
#endif
#ifndef MF_CONTEXT_LEN
#define MF_CONTEXT_LEN 256
#endif
#define MF_DEFAULT_TOKENS 64
#define MF_DEFAULT_PROMPT "ROMEO:"

#endif
