/* mps2-an386: Cortex-M4 with FPU (single precision) and the DSP extension
 * (SMLAD), same board and memory map as mps2-an385 (Arm AN386).
 * Memory map (Arm AN386 application note, "Memory map"; QEMU hw/arm/mps2.c):
 * ZBT SSRAM1 4 MiB at 0x00000000 (code), ZBT SSRAM2/3 4 MiB at 0x20000000
 * (data), PSRAM 16 MiB at 0x21000000. No memory-mapped flash: the image is
 * read through semihosting. */
#ifndef MF_BOARD_CONFIG_H
#define MF_BOARD_CONFIG_H

#define MF_BOARD_NAME "mps2-an386"

#ifndef MF_ARENA_BYTES
#define MF_ARENA_BYTES (1024u * 1024u)
#endif
#ifndef MF_CONTEXT_LEN
#define MF_CONTEXT_LEN 256
#endif
#define MF_DEFAULT_TOKENS 64
#define MF_DEFAULT_PROMPT "ROMEO:"

#endif
